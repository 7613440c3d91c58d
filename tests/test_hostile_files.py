"""pynn.load on files made to hurt: each is a ValueError, in bounded memory, running no code.

tests/test_io.py covers round trips and the ordinary bad files (corrupted
bytes, foreign archives, wrong sizes); these are the deliberate ones.
"""
import io
import json
import os
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import pynn
from pynn import io as pio

# Every refusal below must stay far under this: no declared size is believed.
MAX_PEAK_BYTES = 8 << 20


@pytest.fixture
def saved(tmp_path):
    net = pynn.Sequential([pynn.Dense(6, activation="relu", input_dim=3),
                           pynn.Dense(2)], seed=1)
    net.compile(loss="mse", optimizer=pynn.Adam(0.01))
    x = np.linspace(-1, 1, 30).reshape(10, 3)
    net.fit(x, x[:, :2], epochs=1, batch_size=4, verbose=0)
    net.save(tmp_path / "good.npz")
    return tmp_path / "good.npz"


def entries(path):
    """The file's entries as raw .npy bytes, by name."""
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def npy_header(shape, dtype="<f4", payload=b"\0" * 64):
    """An .npy file whose header declares ``shape`` and which holds ``payload``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def config_of(path):
    with np.load(path) as f:
        return json.loads(f["config"].tobytes())


def json_npy(text):
    return npy(np.frombuffer(text.encode() if isinstance(text, str) else text, np.uint8))


def refused(path, match="cannot load a pynn model"):
    """pynn.load(path) raises ValueError, allocating little on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match) as info:
            pynn.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"peak {peak} bytes while refusing {path}"
    return str(info.value)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_truncated_anywhere(saved, tmp_path, fraction):
    raw = saved.read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(raw[:int(len(raw) * fraction)])
    refused(bad)


def test_truncated_in_every_entry(saved, tmp_path):
    # each entry cut short inside an otherwise well-formed archive
    members = entries(saved)
    for name, data in members.items():
        write(tmp_path / "t.npz", {**members, name: data[:len(data) - 3]})
        refused(tmp_path / "t.npz")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    rng = np.random.default_rng(seed)
    bad = tmp_path / "random.npz"
    bad.write_bytes(rng.integers(0, 256, size=int(rng.integers(1, 5000)),
                                 dtype=np.uint8).tobytes())
    refused(bad)


def test_random_bytes_behind_a_zip_signature(saved, tmp_path):
    rng = np.random.default_rng(7)
    raw = bytearray(saved.read_bytes())
    # flip bytes in the middle, keeping the local header and central directory
    for i in rng.integers(60, len(raw) - 200, size=40):
        raw[i] ^= 0x5A
    (tmp_path / "flipped.npz").write_bytes(bytes(raw))
    refused(tmp_path / "flipped.npz")


class Trap:
    """Unpickling an array of these would call open() on the marker path."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("entry", ["params.npy", "config.npy", "optimizer_state.npy"])
def test_pickled_object_array_is_not_unpickled(saved, tmp_path, entry):
    marker = tmp_path / "unpickled"
    payload = npy(np.array([Trap(marker)] * 3, dtype=object))
    write(tmp_path / "pickle.npz", {**entries(saved), entry: payload})
    message = refused(tmp_path / "pickle.npz")
    assert "object" in message and "never unpickles" in message
    assert not marker.exists()


def test_declared_shape_of_a_trillion_elements(saved, tmp_path):
    for shape in [(10**12,), (10**6, 10**6), (2**62,), (0,)]:
        write(tmp_path / "huge.npz", {**entries(saved), "params.npy": npy_header(shape)})
        message = refused(tmp_path / "huge.npz")
        assert str(shape) in message


def test_header_claiming_less_than_the_entry_holds(saved, tmp_path):
    write(tmp_path / "short.npz", {**entries(saved),
                                   "params.npy": npy_header((2,), payload=b"\0" * 400)})
    refused(tmp_path / "short.npz", match="declares shape")


def test_malformed_npy_header(saved, tmp_path):
    members = entries(saved)
    good = members["params.npy"]
    evil = good.replace(b"'descr'", b"'descr':__import__('os').system('x'),'d'", 1)
    for data in [b"\x93NUMPY\x07\x00" + good[8:], b"NOTNUMPY" + good[8:], evil,
                 good[:12] + b"\xff" * 20 + good[32:]]:
        write(tmp_path / "h.npz", {**members, "params.npy": data})
        refused(tmp_path / "h.npz")


def test_shapes_contradicting_the_architecture(saved, tmp_path):
    members = entries(saved)
    n = np.load(saved)["params"].shape[0]
    for params in [np.zeros((n, 1), np.float32), np.zeros((1, n), np.float32),
                   np.zeros(n + 1, np.float32), np.zeros(n, ">f4"),
                   np.zeros(n, np.int32), np.zeros(n, np.complex64)]:
        write(tmp_path / "s.npz", {**members, "params.npy": npy(params)})
        refused(tmp_path / "s.npz")
    for state in [np.zeros((2, n), np.float32), np.zeros(2 * n + 1, np.float32)]:
        write(tmp_path / "s.npz", {**members, "optimizer_state.npy": npy(state)})
        refused(tmp_path / "s.npz", match="optimizer state")
    for iterations in [np.array(-1), np.array(1.5), np.array([3])]:
        write(tmp_path / "s.npz", {**members, "optimizer_iterations.npy": npy(iterations)})
        refused(tmp_path / "s.npz", match="optimizer_iterations")


def test_architecture_too_big_for_its_params_is_never_allocated(saved, tmp_path):
    config = config_of(saved)
    config["input_dim"] = 10**6
    config["layers"][0]["units"] = 10**6           # 4 TB of float32 if believed
    write(tmp_path / "big.npz", {**entries(saved), "config.npy": json_npy(json.dumps(config))})
    message = refused(tmp_path / "big.npz", match="do not fit the architecture")
    assert str(10**12 + 10**6 + 2 * 10**6 + 2) in message


def test_not_json(saved, tmp_path):
    for text in [b"\xff\xfe\x00", b"{'single': 'quotes'}", b"", b"[1, 2", b"null",
                 b'"just a string"', b"NaN"]:
        write(tmp_path / "j.npz", {**entries(saved), "config.npy": json_npy(text)})
        refused(tmp_path / "j.npz")


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json(saved, tmp_path, depth):
    for opener, closer in [("[", "]"), ('{"a":', "}")]:
        text = opener * depth + "1" + closer * depth
        write(tmp_path / "deep.npz", {**entries(saved), "config.npy": json_npy(text)})
        assert "levels deep" in refused(tmp_path / "deep.npz")


def test_brackets_inside_strings_do_not_count_as_nesting(saved, tmp_path):
    config = config_of(saved)
    config["layers"][0]["name"] = '[[[{{{"\\' * 30      # 180 brackets, escaped quotes
    write(tmp_path / "named.npz", {**entries(saved), "config.npy": json_npy(json.dumps(config))})
    assert pynn.load(tmp_path / "named.npz").layers[0].name == config["layers"][0]["name"]


def test_json_bombs(saved, tmp_path, monkeypatch):
    config = config_of(saved)
    cases = [json.dumps({**config, "seed": 0}).replace('"seed": 0', '"seed": ' + "9" * 5000),
             json.dumps({**config, "input_dim": 1e308 * 10}),          # Infinity
             json.dumps({**config, "layers": [config["layers"][0]] * 10_000})]
    for text in cases:
        write(tmp_path / "bomb.npz", {**entries(saved), "config.npy": json_npy(text)})
        refused(tmp_path / "bomb.npz")
    # the size bound itself, made small so that the test stays small
    monkeypatch.setattr(pio, "_MAX_JSON_BYTES", 100)
    write(tmp_path / "long.npz", {**entries(saved),
                                  "config.npy": json_npy(json.dumps(config))})
    refused(tmp_path / "long.npz", match="bytes of JSON")


@pytest.mark.parametrize("version", [2, 0, -1, "1", 1.0000001, None, [1], {"v": 1}])
def test_unknown_format_versions(saved, tmp_path, version):
    config = {**config_of(saved), "format_version": version}
    if version is None:
        del config["format_version"]
    write(tmp_path / "v.npz", {**entries(saved), "config.npy": json_npy(json.dumps(config))})
    refused(tmp_path / "v.npz", match="format version")


def test_config_naming_code_builds_nothing(saved, tmp_path):
    config = config_of(saved)
    for loss in [{"class_name": "__import__", "config": {"name": "os"}},
                 {"class_name": "eval", "config": {"source": "1"}},
                 {"class_name": "MeanSquaredError", "config": {"__class__": "x"}},
                 "os.system"]:
        text = json.dumps({**config, "loss": loss})
        write(tmp_path / "c.npz", {**entries(saved), "config.npy": json_npy(text)})
        refused(tmp_path / "c.npz")


def test_zip_bomb(saved, tmp_path):
    # 64 MiB of zeros deflate to about 64 KiB: a 1000:1 ratio no float
    # weights reach.  Refused from the declared size, before inflating.
    members = entries(saved)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name != "params.npy":
                zf.writestr(name, data)
        with zf.open("params.npy", "w", force_zip64=True) as f:
            f.write(npy_header((16 << 20,), payload=b""))
            chunk = bytes(1 << 20)
            for _ in range(64):
                f.write(chunk)
    assert bomb.stat().st_size < 1 << 20
    assert "zip bomb" in refused(bomb)


def test_compressed_file_of_real_weights_still_loads(saved, tmp_path):
    net = pynn.load(saved)
    write(tmp_path / "z.npz", entries(saved), compression=zipfile.ZIP_DEFLATED)
    back = pynn.load(tmp_path / "z.npz")
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)


def test_unknown_and_duplicate_entries(saved, tmp_path):
    members = entries(saved)
    write(tmp_path / "extra.npz", {**members, "payload.npy": npy(np.ones(3))})
    refused(tmp_path / "extra.npz", match="'payload.npy'")
    write(tmp_path / "odd.npz", {**members, "../params.npy": npy(np.ones(3))})
    refused(tmp_path / "odd.npz")
    with pytest.warns(UserWarning, match="Duplicate"):
        with zipfile.ZipFile(tmp_path / "dup.npz", "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
            zf.writestr("params.npy", members["params.npy"])
    refused(tmp_path / "dup.npz", match="twice")


def test_bad_generator_state(saved, tmp_path):
    members = entries(saved)
    for text in ['{"state": "x", "inc": 1}', "[]", '{"state": -1, "inc": 1}', "{"]:
        write(tmp_path / "g.npz", {**members, "generator_state.npy": json_npy(text)})
        refused(tmp_path / "g.npz", match="generator state")


def test_path_of_wrong_type():
    with pytest.raises(TypeError, match="path.*12"):
        pynn.load(12)
    with pytest.raises(TypeError, match="path.*None"):
        pynn.load(None)


def claim_sizes(path, entry, compress_size, file_size):
    """Rewrite the central directory record of ``entry`` to claim these sizes."""
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(entry)] != entry.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 20:at + 28] = np.array([compress_size, file_size], "<u4").tobytes()
    path.write_bytes(bytes(data))


def test_sizes_claimed_past_the_end_of_the_file(saved, tmp_path):
    # a 4 GB entry claimed by a file of a few KB: refused from the file's
    # real size before any buffer is allocated for the claim
    claim = 0xF000_0000
    payload = npy_header((claim - 128,), dtype="|u1", payload=b"\0" * 64)
    assert len(payload) == 128 + 64
    path = write(tmp_path / "claims.npz", {**entries(saved), "params.npy": payload})
    claim_sizes(path, "params.npy", claim, claim)
    assert path.stat().st_size < 1 << 13
    assert "past the end of the file" in refused(path)


def test_stored_entry_whose_sizes_disagree(saved, tmp_path):
    path = write(tmp_path / "stored.npz", entries(saved))
    size = len(entries(saved)["params.npy"])
    claim_sizes(path, "params.npy", size, 40 * size)
    assert "declares" in refused(path)


def test_npy_header_with_an_unclosed_bracket(saved, tmp_path):
    members = entries(saved)
    good = members["params.npy"]
    start = good.index(b"(")
    for cut in [good.index(b")"), good.index(b"}")]:
        # the same length, so the header's length field still holds
        evil = good[:cut] + b" " + good[cut + 1:]
        assert len(evil) == len(good) and evil[start:start + 1] == b"("
        write(tmp_path / "h.npz", {**members, "params.npy": evil})
        assert "malformed .npy header" in refused(tmp_path / "h.npz")


def test_json_depth_scan_takes_linear_time(saved, tmp_path):
    # Strings of escaped quotes, closed and not: a scan restarting at every
    # quote took tens of seconds on 80 KB; a linear one takes milliseconds.
    # The bound is generous (a loaded machine) yet far below the quadratic time.
    n = 40_000
    for text in [b'"' + b'\\"' * n, b'\\"' * n, b'["' + b'\\"' * n + b'"]', b'"' * 2 * n]:
        write(tmp_path / "q.npz", {**entries(saved), "config.npy": json_npy(text)})
        start = time.perf_counter()
        refused(tmp_path / "q.npz")
        assert time.perf_counter() - start < 5.0


def test_json_depth_scan_counts_only_brackets_outside_strings():
    depth = pio._json_depth
    assert depth(b'[[["a"]]]') == 3
    assert depth(b'["[[[[", "\\"[[[", "\\\\"]') == 1
    assert depth(b'{"a": "\\\\\\"{{{"}') == 1
    assert depth(b'"\\\\" [[ "\\\\\\\\" ]]') == 2
    with pytest.raises(ValueError, match="never opened"):
        depth(b"[]][[[")


def test_generator_state_depth_is_bounded(saved, tmp_path):
    write(tmp_path / "g.npz", {**entries(saved),
                               "generator_state.npy": json_npy("[" * 50_000 + "]" * 50_000)})
    assert "generator state nests" in refused(tmp_path / "g.npz")


def test_config_with_a_loss_but_no_optimizer(saved, tmp_path):
    config = config_of(saved)
    del config["optimizer"]
    members = {k: v for k, v in entries(saved).items() if not k.startswith("optimizer")}
    write(tmp_path / "o.npz", {**members, "config.npy": json_npy(json.dumps(config))})
    refused(tmp_path / "o.npz", match="no optimizer")


def test_from_arrays_refuses_what_is_not_an_array(saved):
    arrays = dict(np.load(saved))
    for name, value in [("config", b"{}"), ("config", '{"format": 1}'),
                        ("params", [0.0, 1.0]), ("params", None)]:
        with pytest.raises(ValueError, match=f"entry '{name}' is a"):
            pio.from_arrays({**arrays, name: value})
    with pytest.raises(TypeError, match="mapping"):
        pio.from_arrays([("config", arrays["config"])])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_is_refused_unread():
    assert "not a regular file" in refused("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert "not a regular file" in refused(tmp_path / "fifo")


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(IsADirectoryError):
        pynn.load(tmp_path)

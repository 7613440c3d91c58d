"""A mutation fuzzer for pynn.load: every mutated save file is refused or sound.

Seeded random mutations of a real save file, at every level a file can be
damaged or forged: raw bytes (the zip's CRCs then catch most), whole
entries rewritten with valid CRCs (the .npy headers and payloads), the
JSON of the config and of the generator state (values swapped for hostile
ones, keys dropped), and the archive's layout.  Each case must end in one
of two ways, within a bounded time and a bounded peak of traced memory:

- ``ValueError`` (or IsADirectoryError and the like: never here);
- a model identical to the original (a mutation of bytes nothing reads),
  or, for a mutation that rewrites an entry consistently, a sound model:
  finite parameters, a summary, and a save/load round trip to itself.

CI runs it for a few seconds; ``PYNN_FUZZ_SECONDS`` runs it longer, and
``PYNN_FUZZ_SEED`` replays a run (each failure names its seed and case).
"""
import io
import json
import os
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import pynn
from pynn import io as pio

SECONDS = float(os.environ.get("PYNN_FUZZ_SECONDS", "3"))
SEED = int(os.environ.get("PYNN_FUZZ_SEED", "20261202"))
MIN_CASES = 200
# Per case: generous bounds (a loaded machine), still far below what a
# believed claim, a quadratic scan or an unbounded read would take.
MAX_SECONDS_PER_CASE = 2.0
MAX_PEAK_BYTES = 8 << 20

# Values that have broken parsers and builders elsewhere: sizes, signs,
# floats at the edge, types where another is expected, nests, odd strings.
HOSTILE = [0, -1, 1, 2**31, 2**63, 10**400, -(10**30), 0.5, 1e-320, 1e308, -0.0,
           True, False, None, "", "relu", "x" * 300, '"[{\\', "\u0000\n", "\ud800",
           [], [1], {}, {"class_name": "SGD"}, {"class_name": "os.system", "config": {}},
           [[[[]]]], {"a": {"b": {"c": []}}}, "sgd", "float16", "float64"]


def model():
    net = pynn.Sequential([pynn.Dense(5, activation="tanh", input_dim=3, name="h"),
                           pynn.Dense(2, activation="softmax")], seed=4)
    net.compile(loss="categorical_crossentropy",
                optimizer=pynn.Adam(pynn.ExponentialDecay(0.01, 3, 0.9)),
                metrics=["accuracy"])
    x = np.linspace(-1, 1, 24).reshape(8, 3)
    net.fit(x, np.eye(2)[np.arange(8) % 2], epochs=2, batch_size=4, verbose=0)
    return net


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def archive(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", compression=compression) as zf:
        warnings.simplefilter("ignore")         # duplicate names are among the mutations
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def flip_bytes(rng, data):
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        data[int(rng.integers(len(data)))] = int(rng.integers(256))
    return bytes(data)


def splice(rng, data):
    at = int(rng.integers(len(data) + 1))
    kind = rng.integers(3)
    if kind == 0:
        return data[:at]                                   # truncated
    if kind == 1:
        return data[:at] + rng.bytes(int(rng.integers(1, 64))) + data[at:]
    return data[:at] + data[at + int(rng.integers(1, 64)):]


def mutate_json(rng, obj):
    """``obj`` with one random place replaced by a hostile value, or dropped."""
    if isinstance(obj, (dict, list)) and len(obj) and rng.random() < 0.75:
        keys = list(obj) if isinstance(obj, dict) else list(range(len(obj)))
        key = keys[int(rng.integers(len(keys)))]
        obj = dict(obj) if isinstance(obj, dict) else list(obj)
        if rng.random() < 0.15:
            del obj[key]
        else:
            obj[key] = mutate_json(rng, obj[key])
        return obj
    return HOSTILE[int(rng.integers(len(HOSTILE)))]


def mutate_entry(rng, name, data):
    """An entry's .npy bytes, its header or payload damaged, or a forged array."""
    kind = rng.integers(4)
    if kind == 0:                      # bytes of the header (magic, length, dict)
        head = min(len(data), 128)
        cut = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            cut[int(rng.integers(head))] = int(rng.choice(list(b"()[]{}',: 0123456789<>|fiu")))
        return bytes(cut)
    if kind == 1:
        return flip_bytes(rng, data)
    if kind == 2:
        return splice(rng, data)
    forged = [np.zeros(int(rng.integers(0, 80)), rng.choice(["<f4", "<f8", "<i8", "|u1"])),
              np.full(3, np.nan), np.array(7), np.zeros((2, 2)), np.array([1e39])]
    return npy(forged[int(rng.integers(len(forged)))])


def cases(rng, good, members):
    """Endless (kind, file bytes, must_be_identical) mutations of the good file."""
    names = [n for n, _ in members]
    while True:
        kind = int(rng.integers(6))
        if kind == 0:
            yield "bytes", flip_bytes(rng, good), True
        elif kind == 1:
            yield "splice", splice(rng, good), True
        elif kind == 2:
            i = int(rng.integers(len(members)))
            new = list(members)
            new[i] = (names[i], mutate_entry(rng, names[i], members[i][1]))
            yield "entry " + names[i], archive(new), False
        elif kind in (3, 4):
            which = "config.npy" if kind == 3 else "generator_state.npy"
            i = names.index(which)
            obj = json.loads(np.load(io.BytesIO(members[i][1])).tobytes())
            text = json.dumps(mutate_json(rng, obj)).encode()
            new = list(members)
            new[i] = (which, npy(np.frombuffer(text, np.uint8)))
            yield "json " + which, archive(new), False
        else:
            layout = rng.integers(4)
            new = list(members)
            if layout == 0:
                new.pop(int(rng.integers(len(new))))
            elif layout == 1:
                new.append(new[int(rng.integers(len(new)))])
            elif layout == 2:
                i = int(rng.integers(len(new)))
                new[i] = (str(rng.choice(names + ["x.npy", "params", "../params.npy"])),
                          new[i][1])
            else:
                rng.shuffle(new)
            yield "layout", archive(new, rng.choice([zipfile.ZIP_STORED,
                                                     zipfile.ZIP_DEFLATED])), False


def same(a, b):
    x, y = pio.to_arrays(a), pio.to_arrays(b)
    return x.keys() == y.keys() and all(
        x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]) for k in x)


def sound(net, tmp_path):
    assert np.isfinite(net.params).all()
    net.summary(print_fn=None)
    again = pynn.load(net.save(tmp_path / "again.npz"))
    return same(net, again)


def test_mutated_save_files_are_refused_or_sound(tmp_path):
    original = model()
    path = original.save(tmp_path / "good.npz")
    good = open(path, "rb").read()
    with zipfile.ZipFile(path) as zf:
        members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    rng = np.random.default_rng(SEED)
    target = tmp_path / "case.npz"
    outcomes = {"refused": 0, "identical": 0, "sound": 0}
    worst_time = worst_peak = 0
    deadline = time.monotonic() + SECONDS
    for n, (kind, data, must_be_identical) in enumerate(cases(rng, good, members)):
        if n >= MIN_CASES and time.monotonic() > deadline:
            break
        target.write_bytes(data)
        where = f"case {n} ({kind}) of seed {SEED}"
        tracemalloc.start()
        start = time.perf_counter()
        try:
            loaded = pynn.load(target)
        except ValueError:
            loaded = None
        except Exception as exc:       # anything else is a failure of the promise
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
        finally:
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        worst_time, worst_peak = max(worst_time, elapsed), max(worst_peak, peak)
        assert elapsed < MAX_SECONDS_PER_CASE, f"{where}: {elapsed:.2f} s"
        assert peak < MAX_PEAK_BYTES, f"{where}: peak {peak} bytes"
        if loaded is None:
            outcomes["refused"] += 1
        elif same(loaded, original):
            outcomes["identical"] += 1
        else:
            assert not must_be_identical, f"{where}: a damaged file loaded as another model"
            assert sound(loaded, tmp_path), f"{where}: the loaded model does not round-trip"
            outcomes["sound"] += 1
    print(f"\n{n} mutated files in {SECONDS:g} s: {outcomes}; slowest {worst_time * 1e3:.1f} ms,"
          f" largest traced peak {worst_peak / 1024:.0f} KiB")
    assert outcomes["refused"] > n // 2        # the mutations do reach the checks

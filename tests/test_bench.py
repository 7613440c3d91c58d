"""The benchmark's contenders compute the same step, and its limit the right products."""
import io
import json
import os

import numpy as np
import pytest

from pynn import _bench_worker as work
from pynn import reference

SIZES, BATCH = (7, 5, 4, 3), 6


def _data(dtype):
    return work.initial_weights(SIZES, dtype, seed=4), *work.step_batch(SIZES, BATCH, dtype)


def _after_steps(train_step, x, y, n=3):
    return [train_step(x, y) for _ in range(n)]


def test_numpy_loop_is_the_reference_formula():
    weights, x, y = _data(np.float64)
    mlp = work.NumpyMLP(weights)
    ref = reference.ReferenceNetwork(weights, ["relu", "relu", "linear"],
                                     learning_rate=work.LEARNING_RATE,
                                     momentum=work.MOMENTUM, nesterov=True)
    losses = _after_steps(mlp.train_step, x, y)
    ref_losses = _after_steps(ref.train_step, x, y)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-13)
    for a, b in zip(mlp.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert not np.allclose(mlp.get_weights()[0], weights[0])


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-11)])
def test_pynn_contender_trains_as_the_numpy_loop(dtype, rtol):
    weights, x, y = _data(dtype)
    model = work.pynn_model(weights, dtype)
    mlp = work.NumpyMLP(weights)
    np.testing.assert_allclose(_after_steps(model.train_on_batch, x, y),
                               _after_steps(mlp.train_step, x, y), rtol=rtol)
    for a, b in zip(model.get_weights(), mlp.get_weights()):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)


def test_torch_contender_trains_as_the_numpy_loop():
    torch = pytest.importorskip("torch")
    weights, x, y = _data(np.float64)
    model, step = work.torch_mlp(weights, n_threads=1)
    mlp = work.NumpyMLP(weights)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    torch_losses = [float(step(tx, ty)) for _ in range(3)]
    np.testing.assert_allclose(torch_losses, _after_steps(mlp.train_step, x, y), rtol=1e-12)
    mods = [m for m in model if isinstance(m, torch.nn.Linear)]
    for lin, W, b in zip(mods, mlp.W, mlp.b):
        np.testing.assert_allclose(lin.weight.detach().numpy(), W, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(lin.bias.detach().numpy(), b, rtol=1e-11, atol=1e-14)


def test_gemm_sequence_lists_the_products_of_a_step():
    # forward A @ W.T per layer; dW = dZ.T @ A per layer; dA = dZ @ W past the first
    assert sorted(work.gemm_sequence(SIZES, BATCH)) == sorted([
        (6, 5, 7, False, True), (6, 4, 5, False, True), (6, 3, 4, False, True),
        (5, 7, 6, True, False), (4, 5, 6, True, False), (3, 4, 6, True, False),
        (6, 5, 4, False, False), (6, 4, 3, False, False)])
    assert work.n_params(SIZES) == 7 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3


def _backends():
    out = ["openblas"]
    if work.find_mkl() is not None:
        out.append("mkl")
    return out


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_limit_gemm_computes_op_a_times_op_b(backend, dtype):
    rng = np.random.default_rng(5)
    gemm = work.blas_gemm(backend, dtype)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a, b, c = work.operands(3, 5, 4, trans_a, trans_b, dtype, rng)
            c[...] = np.nan
            gemm(a, b, c, trans_a, trans_b)()
            expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
            np.testing.assert_allclose(c, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_limit_case_reports_gemm_and_update_parts():
    case = work.LimitCase(SIZES, BATCH, np.float64, "openblas", 1, (0.0, 0.001))
    result = case.run()
    assert result["seconds"] == pytest.approx(result["gemm"] + result["update"])
    assert result["update"] > 0 and result["bandwidth"] > 0
    assert case.update_bytes == 5 * work.n_params(SIZES) * 8


def test_digit_like_images_have_blank_corners_and_one_hot_targets():
    x, y = work.digits_like(500, 784, 10, np.float32)
    assert x.dtype == y.dtype == np.float32
    img = x.reshape(500, 28, 28)
    assert not img[:, :3, :3].any() and not img[:, -3:, -3:].any()
    assert np.count_nonzero(img[:, 0, :]) < 0.001 * img[:, 0, :].size
    assert img[:, 10:18, 10:18].mean() > 0.1
    np.testing.assert_array_equal(y.sum(axis=1), 1)


def _serve(*requests):
    out = io.StringIO()
    work.serve(io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_worker_answers_each_request_and_reports_errors():
    case = {"case": "c", "kind": "step", "contender": "numpy", "sizes": list(SIZES),
            "batch": BATCH, "dtype": "float64", "threads": 1, "block": [0.0, 0.001]}
    hello, setup, ran, dropped, missing, bad = _serve(
        {"op": "hello", "contender": "numpy"}, dict(case, op="setup"),
        {"op": "run", "case": "c"}, {"op": "drop", "case": "c"},
        {"op": "run", "case": "c"}, {"op": "fly"})
    assert hello["info"]["contender"] == "numpy" and "blas" in hello["info"]
    assert setup == {} and dropped == {}
    assert ran["seconds"] > 0
    assert "KeyError" in missing["error"]
    assert "fly" in bad["error"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_worker_limit_on_a_tiny_config_gives_finite_positive_parts(dtype):
    setup = {"case": "lim", "kind": "limit", "contender": "limit", "backend": "openblas",
             "sizes": list(SIZES), "batch": BATCH, "dtype": dtype, "threads": 1,
             "block": [0.0, 0.002]}
    hello, ready, ran = _serve({"op": "hello", "contender": "limit", "backend": "openblas"},
                               dict(setup, op="setup"), {"op": "run", "case": "lim"})
    assert hello["info"]["backend"] == "openblas" and ready == {}
    assert "error" not in ran, ran
    positive = ("seconds", "update", "bandwidth", "gemm_measured", "call_overhead")
    for key in positive + ("gemm",):
        assert np.isfinite(ran[key]), (key, ran[key])
    for key in positive:
        assert ran[key] > 0, (key, ran[key])
    # the wrapper's cost comes off the measured products, never more than all of it
    assert 0 <= ran["gemm"] <= ran["gemm_measured"]
    assert ran["gemm"] == pytest.approx(
        max(ran["gemm_measured"] - ran["n_gemm"] * ran["call_overhead"], 0.0))
    assert ran["seconds"] == pytest.approx(ran["gemm"] + ran["update"])
    itemsize = np.dtype(dtype).itemsize
    assert ran["update_bytes"] == 5 * work.n_params(SIZES) * itemsize
    assert ran["update"] == pytest.approx(ran["update_bytes"] / ran["bandwidth"])
    assert ran["n_gemm"] == len(work.gemm_sequence(SIZES, BATCH))
    assert ran["threads"] == 1


def test_pynn_worker_reports_its_gemm_and_element_wise_paths():
    from pynn import _elementwise
    root = os.path.dirname(os.path.dirname(work.__file__))
    (hello,) = _serve({"op": "hello", "contender": "pynn", "pynn_root": root})
    assert hello["info"]["vmath"] == _elementwise.isa()
    assert hello["info"]["gemm"] in ("openblas", "mkl")
    from pynn import _gemm, bench
    assert hello["info"]["tile_gemm"] is _gemm.tile_gemm_on()
    line = bench.describe_worker(hello["info"])
    assert ("tile GEMM" in line) is _gemm.tile_gemm_on()


def test_elementwise_mode_prints_a_row_per_function_and_a_column_per_path(capsys):
    from pynn import _elementwise, bench
    bench.print_elementwise(["float32"], rounds=1, n_elements=256)
    text = capsys.readouterr().out
    header = [line for line in text.splitlines() if line.startswith("| function")][0]
    for path in _elementwise.supported_isas():
        assert f"pynn {path}" in header
    for name in _elementwise.FUNCTIONS:
        row = [line for line in text.splitlines() if line.startswith(f"| {name} |")][0]
        cells = [c.strip() for c in row.strip("|").split("|")][1:-1]
        assert all(float(c) > 0 for c in cells), row


def test_the_tile_limit_plans_the_products_as_pynn_splits_them():
    from pynn import _gemm
    sizes, batch = (784, 128, 10), 32
    for dtype in ("float32", "float64"):
        two = work.tile_plan(sizes, batch, dtype, 2)
        one = work.tile_plan(sizes, batch, dtype, 1)
        whole = [(m, n, k, ta, tb, False, 1)
                 for m, n, k, ta, tb in work.gemm_sequence(sizes, batch)]
        assert len(two) == len(one) == len(whole)
        # 784 -> 128 at batch 32 is split: its larger half (64 units) on the
        # tiles, once with two cores, twice with one; 128 -> 10 is not
        fits = _gemm.tile_gemm_fits(dtype, False, True, 32, 64, 784)
        assert two[0] == ((32, 64, 784, False, True, True, 1) if fits else whole[0])
        assert one[0][-1] == (2 if fits else 1)
        assert two[1] == whole[1]                        # the 10-unit forward
        assert two[2] == ((64, 784, 32, True, False, True, 1) if fits else whole[2])
        assert two[3:] == whole[3:]
    # wide's halves are past the tiles' sizes: every product whole on the BLAS
    wide = work.tile_plan((1024, 2048, 2048, 1024), 256, "float32", 2)
    assert all(not tiles for *_, tiles, times in wide)


def test_the_tile_limit_times_the_step_where_the_cpu_runs_it():
    from pynn import _gemm
    root = os.path.dirname(os.path.dirname(work.__file__))
    (hello,) = _serve({"op": "hello", "contender": "limit", "backend": "tiles",
                       "pynn_root": root})
    if not _gemm.tile_gemm_cpu():
        assert "AVX-512F" in hello["skip"]
        return
    case = work.LimitCase((300, 256, 10), 32, np.float32, "tiles", 2, (0.0, 0.002))
    result = case.run()
    assert result["n_gemm"] == len(work.gemm_sequence((300, 256, 10), 32))
    assert result["seconds"] == pytest.approx(result["gemm"] + result["update"])
    assert result["gemm_measured"] > 0

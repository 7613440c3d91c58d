"""Data-parallel fit over MPI: two ranks on this machine (mpiexec -n 2).

The scenarios run in one mpiexec launch (tests/mpi_scenarios.py); here their
outcomes are compared with one process training on the same samples.
"""
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import pynn
from pynn import distributed

import mpi_scenarios as sc

mpi4py = pytest.importorskip(
    "mpi4py", reason="mpi4py is not installed: pip install -e '.[mpi]' (CI does)")


def _mpiexec():
    # the mpiexec of the MPI that mpi4py loads: the mpich wheel puts it
    # beside the interpreter
    here = os.path.dirname(sys.executable)
    return shutil.which("mpiexec", path=here + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("mpi4py is installed but no mpiexec was found")
    out = tmp_path_factory.mktemp("mpi") / "out.npz"
    pkg_root = os.path.dirname(os.path.dirname(pynn.__file__))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]))
    script = os.path.join(os.path.dirname(__file__), "mpi_scenarios.py")
    try:
        run = subprocess.run([mpiexec, "-n", "2", sys.executable, script, str(out)],
                             env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec -n 2 did not finish in {exc.timeout} s (a rank waiting "
                    f"for another?): {exc.stdout!r} {exc.stderr!r}")
    assert run.returncode == 0, run.stdout + run.stderr
    with np.load(out) as data:
        params = {k: data[k] for k in data.files if k != "info"}
        info = json.loads(str(data["info"]))
    return types.SimpleNamespace(params=params, info=info, stdout=run.stdout)


def _single_process(dtype, opt, n):
    x, y = sc.make_data(n, dtype)
    net = sc.make_model(dtype, sc.optimizer(opt), seed=1)     # rank 0's seed
    hist = net.fit(x, y, epochs=3, batch_size=2 * sc.B, shuffle=False,
                   validation_data=sc.make_data(40, dtype, seed=1), verbose=0)
    return net, hist


@pytest.mark.slow   # launches mpiexec -n 2
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frozen_layers_regularizers_and_clipping_over_two_ranks(outcome, dtype):
    key = f"{dtype}-trimmed"
    assert outcome.info[key]["identical"], "the ranks' weights differ"
    x, y = sc.make_data(sc.EVEN, dtype)
    net = sc.make_trimmed_model(dtype, seed=1)
    frozen = net.layers[1].W.copy()
    hist = net.fit(x, y, epochs=2, batch_size=2 * sc.B, shuffle=False, verbose=0)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outcome.params[key], net.params, **tol)
    np.testing.assert_allclose(outcome.info[key]["history"]["loss"], hist.history["loss"], **tol)
    np.testing.assert_array_equal(net.layers[1].W, frozen)


@pytest.mark.slow   # launches mpiexec -n 2
@pytest.mark.parametrize("source", ["arrays", "stream"])
@pytest.mark.parametrize("opt, n", [("sgd", sc.EVEN), ("adam", sc.UNEVEN)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_ranks_match_one_process_at_twice_the_batch(outcome, dtype, opt, n, source):
    key = f"{dtype}-{opt}-{source}"
    info = outcome.info[key]
    assert info["identical"], "the ranks' weights differ"
    net, hist = _single_process(dtype, opt, n)
    assert info["iterations"] == net.optimizer.iterations == 3 * 5
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outcome.params[key], net.params, **tol)
    # logs are means over both ranks' samples: those of the single process
    for name in ("loss", "mae", "val_loss", "val_mae"):
        np.testing.assert_allclose(info["history"][name], hist.history[name], **tol)


@pytest.mark.slow   # launches mpiexec -n 2
def test_one_diverging_rank_stops_every_rank_at_the_same_step(outcome):
    stop, raised = outcome.info["diverge-stop"], outcome.info["diverge-raise"]
    frozen = outcome.info["diverge-stop-frozen"]
    for case in (stop, frozen):
        assert case["outcomes"] == ["epochs=0", "epochs=0"] and case["warned"] == [True, True]
    assert raised["outcomes"] == ["DivergenceError"] * 2
    for case in (stop, raised, frozen):
        assert case["identical"] and case["finite"]
        assert case["iterations"][0] == case["iterations"][1] > 0


@pytest.mark.slow   # launches mpiexec -n 2
def test_a_rank_that_refuses_its_data_stops_the_others(outcome):
    rank0, rank1 = outcome.info["refuse-features"]
    assert rank1 == "x has 4 features, the model expects 6"
    assert "rank 1 refused its data" in rank0 and "4 features" in rank0
    for message in outcome.info["refuse-batches"]:
        assert "plans differ" in message and "batches per epoch=10" in message


@pytest.mark.slow   # launches mpiexec -n 2
def test_rank_zero_alone_prints_and_checkpoints(outcome):
    assert outcome.stdout.count("Epoch 1/2") == 1
    assert outcome.info["checkpoint-calls"] == [2, 0]


def test_batch_norm_moving_statistics_are_the_same_on_every_rank(outcome):
    assert outcome.info["batchnorm"] == {"identical": True, "moved": True}


def test_dropout_frozen_layers_l2_and_clipnorm_keep_the_ranks_together(outcome):
    # each rank draws its own masks; the update and the averaged moving
    # statistics keep every rank's model the same, the frozen parts fixed
    assert outcome.info["mixed"] == {"identical": True, "frozen": True, "moved": True}


def test_one_rank_comm_trains_like_plain_fit():
    # COMM_SELF in this process: the collective path with one rank
    from mpi4py import MPI
    x, y = sc.make_data(sc.EVEN, "float64")
    nets = [sc.make_model("float64", sc.optimizer("adam"), seed=1) for _ in range(2)]
    h0 = nets[0].fit(x, y, epochs=2, batch_size=sc.B, verbose=0)
    h1 = distributed.fit(nets[1], x, y, comm=MPI.COMM_SELF, epochs=2, batch_size=sc.B,
                         verbose=0)
    np.testing.assert_allclose(nets[1].params, nets[0].params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.history["loss"], h0.history["loss"], rtol=1e-12)
    # nothing of the session stays with the model: a plain fit afterwards
    # trains as a plain fit does
    for net in nets:
        net.fit(x, y, epochs=1, batch_size=sc.B, verbose=0)
    np.testing.assert_allclose(nets[1].params, nets[0].params, rtol=1e-12, atol=1e-14)
    assert nets[1].optimizer.iterations == nets[0].optimizer.iterations


def test_comm_must_be_a_communicator():
    x, y = sc.make_data(32, "float64")
    net = sc.make_model("float64", "sgd", seed=1)
    with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
        net.fit(x, y, comm="world", verbose=0)

"""The command line: python -m pynn demo / info / bench."""
import re
import subprocess
import sys

import pytest


def run(*args):
    out = subprocess.run([sys.executable, "-m", "pynn", *args], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_demo_loss_falls_and_accuracy_rises():
    text = run("demo", "--epochs", "10")
    losses = [float(v) for v in re.findall(r"loss:? ([0-9.]+)", text)]
    assert len(losses) >= 3
    assert losses[-1] < losses[0] / 10
    before, after = (float(v) for v in re.findall(r"accuracy ([0-9.]+)%", text))
    assert before < 50 < 95 < after


def test_info_names_versions_and_blas():
    text = run("info")
    for word in ("pynn", "numpy", "scipy", "Cython", "float32", "bounds checks"):
        assert word in text


@pytest.mark.slow
def test_bench_prints_a_table():
    text = run("bench", "--configs", "tiny", "--dtypes", "float32", "--rounds", "2", "--no-fit",
               "--ceiling-size", "256")
    assert "GEMM ceiling" in text
    row = [line for line in text.splitlines() if line.startswith("| tiny")]
    assert row and re.search(r"\d+\.\d+x", row[0])


@pytest.mark.slow
def test_bench_profile_splits_phases():
    text = run("bench", "--profile", "--configs", "tiny", "--dtypes", "float64", "--rounds", "2")
    for phase in ("data", "forward", "loss", "backward", "update", "total"):
        assert f"| {phase} |" in text


def test_unknown_command_fails():
    out = subprocess.run([sys.executable, "-m", "pynn", "nope"], capture_output=True, text=True)
    assert out.returncode != 0 and "invalid choice" in out.stderr

"""The scripts in examples/ run (with small settings) and say what they claim."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name, *args):
    import pynn
    # the pynn under test (an in-place build or an installed one), also for
    # the child processes the examples start themselves
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(pynn.__file__).resolve().parent.parent)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_two_threads():
    # the script itself asserts that threaded losses equal sequential ones
    out = run_example("two_threads.py", "--samples", "2000", "--epochs", "2",
                      "--hidden", "16")
    assert out.count("loss") == 2 and "two threads:" in out


def test_embed_predict(tmp_path):
    path = tmp_path / "model.npz"
    out = run_example("embed_predict.py", "--epochs", "3", "--path", str(path))
    assert path.is_file()
    assert "bit for bit" in out and out.count("host program:") == 2


def test_digits_vs_sklearn():
    pytest.importorskip("sklearn")
    out = run_example("digits_vs_sklearn.py", "--epochs", "2", "--repeats", "1",
                      "--hidden", "8")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "model" not in line]
    assert len(rows) == 9  # adam: 5 contenders, lbfgs: 4

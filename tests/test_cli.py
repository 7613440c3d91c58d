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


def _number(cell):
    """The number a table cell starts with ("12.3 µs ±4%", "1.50×", "87%")."""
    match = re.match(r"\s*([0-9][0-9,]*\.?[0-9]*)", cell)
    assert match, f"no number in {cell!r}"
    return float(match.group(1).replace(",", ""))


def _table(text, first_header):
    """Rows (lists of cells) of the markdown table whose header starts so."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    assert set(rows[1][0]) == {"-"}
    return rows[0], rows[2:]


@pytest.mark.slow
def test_bench_quick_prints_every_contender_and_the_limit():
    text = run("bench", "--quick")
    try:
        import torch  # noqa: F401
        contenders = ["pynn", "NumPy loop", "PyTorch"]
    except ImportError:
        contenders = ["pynn", "NumPy loop"]
        assert "PyTorch not installed" in text
    assert "CPU:" in text and "load average" in text
    assert re.search(r"kernel \S+, \d+ threads", text)
    header, rows = _table(text, "config")
    for name in contenders + ["limit", "pynn's share of limit"]:
        assert name in header
    assert {(r[0].split()[0], r[1]) for r in rows} == {
        (c, d) for c in ("tiny", "small") for d in ("float32", "float64")}
    for r in rows:
        for name in contenders + ["limit"]:
            assert _number(r[header.index(name)]) > 0
        assert r[header.index("pynn vs NumPy")].endswith("×")
    header, rows = _table(text, "fit epoch")
    assert [r[1] for r in rows] == ["float32", "float64"]
    for name in contenders:
        for col in (f"{name} epoch 1", f"{name} later"):
            assert all(_number(r[header.index(col)]) > 0 for r in rows)


def test_bench_markdown_prints_the_readme_table():
    text = run("bench", "--quick", "--markdown", "--configs", "tiny,fit", "--dtype", "float32",
               "--epochs", "1")
    header, rows = _table(text, "config")
    assert header[:4] == ["config", "dtype", "pynn", "NumPy loop"]
    assert len(rows) == 1 and rows[0][0] == "tiny 64-32-10, batch 16"
    assert "±" not in "".join(rows[0])
    assert _table(text, "fit epoch")[1][0][1] == "float32"
    text = run("bench", "--quick", "--configs", "tiny,fit", "--no-fit", "--dtype", "float32")
    assert "| config |" in text and "| fit epoch |" not in text


def test_bench_refuses_unknown_configs_and_dtypes():
    for args in (["--configs", "huge"], ["--dtype", "float16"], ["--rounds", "0"]):
        out = subprocess.run([sys.executable, "-m", "pynn", "bench", *args],
                             capture_output=True, text=True)
        assert out.returncode != 0 and args[1] in out.stderr


def test_bench_profile_splits_phases():
    text = run("bench", "--profile", "--configs", "tiny", "--dtype", "float64", "--rounds", "2")
    for phase in ("data", "forward", "loss", "backward", "update", "total"):
        assert f"| {phase} |" in text


def test_unknown_command_fails():
    out = subprocess.run([sys.executable, "-m", "pynn", "nope"], capture_output=True, text=True)
    assert out.returncode != 0 and "invalid choice" in out.stderr

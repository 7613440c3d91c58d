"""Build a wheel, install it into a fresh virtual environment, and use it
from outside the source tree.

The wheel is built without build isolation (from this environment's Cython,
NumPy, SciPy and setuptools: nothing is downloaded) from a copy of the
sources, so the source tree is not written to.  It is built with
PYNN_DEBUG=1 unless PYNN_WHEEL_TEST_OPTIMIZED=1: the files, metadata and
entry points are those of a release wheel, only the compiler flags differ
(-O0 and bounds checks compile several times faster than -O3, and the small
training run below then runs with bounds checks on).  The venv gets NumPy
and SciPy from this environment through a .pth file, so this works when
pytest itself runs in a venv (where --system-site-packages would reach the
base interpreter's packages instead).
"""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy
import pytest
import scipy

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow       # builds pynn from source: a minute or more

pytest.importorskip("Cython", minversion="3.0")
pytest.importorskip("setuptools", minversion="70.1")

TRAIN = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    import pynn

    here = Path(pynn.__file__).resolve()
    assert Path(sys.prefix).resolve() in here.parents, (here, sys.prefix)
    assert (here.parent / "py.typed").is_file()
    # the kernels' declarations, installed for other Cython code to cimport
    kernels = Path(pynn.get_include())
    assert here.parent / "kernels" == kernels, kernels
    for name in ("__init__.pxd", "activation_kernels.pxd", "codes.pxd", "vmath.h"):
        assert (kernels / name).is_file(), name
    from pynn import _dense
    assert _dense.ISA in _dense.built_isas()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3))
    y = (x @ [1.0, -2.0, 0.5])[:, None]
    net = pynn.Sequential([pynn.Dense(8, "tanh", input_dim=3), pynn.Dense(1)], seed=0)
    net.compile(pynn.SGD(0.05, momentum=0.9), "mse")
    loss = net.fit(x, y, epochs=30, batch_size=32, verbose=0).history["loss"]
    assert loss[-1] < 0.1 * loss[0], loss
    print(here)
    print("loss", loss[0], "->", loss[-1])
""")


def _run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert result.returncode == 0, (cmd, result.stdout[-3000:], result.stderr[-3000:])
    return result


def test_wheel_installs_and_trains_outside_the_source_tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__", "*.html")
    for name in ("pynn", "csrc"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    # both cores for the C compiler (setuptools' build_ext --parallel)
    (src / "setup.cfg").write_text("[build_ext]\nparallel = 2\n")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if os.environ.get("PYNN_WHEEL_TEST_OPTIMIZED", "0") in ("", "0"):
        env["PYNN_DEBUG"] = "1"
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
          "--no-build-isolation", "--no-index", "-q", "-w", str(dist)], env=env, cwd=tmp_path)
    wheels = list(dist.glob("pynn-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                env=env).stdout.strip()
    deps = {str(Path(mod.__file__).resolve().parent.parent) for mod in (numpy, scipy)}
    Path(site, "outer-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "-q", str(wheels[0])], env=env, cwd=tmp_path)

    out = _run([str(python), "-c", TRAIN], env=env, cwd=tmp_path).stdout
    assert str(venv.resolve()) in out.splitlines()[0]
    # the console script the wheel declares
    script = venv / ("Scripts/pynn.exe" if os.name == "nt" else "bin/pynn")
    info = _run([str(script), "info"], env=env, cwd=tmp_path).stdout
    assert "pynn" in info

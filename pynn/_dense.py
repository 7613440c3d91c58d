"""The network kernels, in the build for the widest instruction set this CPU runs.

setup.py compiles csrc/dense.pyx once per instruction set on x86-64
(``pynn._dense_default``, ``_dense_avx2``, ``_dense_avx512f``), so that
the element-wise loops are vectorised as wide as the CPU allows; every
build gives the same bits.  This module imports one of them and gives its
names: the widest that the CPU and OS run, or the one ``PYNN_ISA`` names
(``default``, ``avx2`` or ``avx512f``).  A name that is unknown, not
built, or that this CPU cannot run falls back to the widest, with a
RuntimeWarning; ``python -m pynn info`` says which runs.
"""
import importlib
import importlib.util
import os
import warnings

from . import _elementwise

ISAS = ("default", "avx2", "avx512f")   # narrowest first, as csrc/pynn/kernels/vmath.h's paths


def _built():
    return [isa for isa in ISAS
            if importlib.util.find_spec(f"{__package__}._dense_{isa}") is not None]


def _choose(requested):
    runs = [isa for isa in _built() if isa in _elementwise.supported_isas()]
    widest = runs[-1]
    if requested is None or requested == "":
        return widest, None
    if requested not in ISAS:
        problem = f"PYNN_ISA={requested!r} is not one of {', '.join(ISAS)}"
    elif requested not in runs:
        problem = (f"PYNN_ISA={requested!r}: this CPU or build does not run it "
                   f"(it runs {', '.join(runs)})")
    else:
        return requested, "honoured"
    warnings.warn(f"{problem}; the {widest} build runs", RuntimeWarning, stacklevel=3)
    return widest, "ignored"


ISA, REQUEST = _choose(os.environ.get("PYNN_ISA", "").strip().lower() or None)
MODULE = importlib.import_module(f"{__package__}._dense_{ISA}")

Network = MODULE.Network
HotStep = MODULE.HotStep
CSRRows = MODULE.CSRRows
dense_forward = MODULE.dense_forward
dense_backward = MODULE.dense_backward
split_units = MODULE.split_units
LAYOUT_WIDTH = MODULE.LAYOUT_WIDTH
SETTINGS_WIDTH = MODULE.SETTINGS_WIDTH


def built_isas():
    """The builds installed, narrowest first (only 'default' off x86-64)."""
    return tuple(_built())


def get_include():
    """The folder of pynn's kernel declarations and C headers, for Cython code
    that cimports them (``from pynn.kernels.activation_kernels cimport
    activate``): give it to the C compiler's include dirs, and the folder two
    levels up to Cython's include path (an installed wheel's site-packages,
    which Cython searches anyway, or a source tree's csrc/)."""
    spec = importlib.util.find_spec(f"{__package__}.kernels")
    if spec is not None and spec.submodule_search_locations:
        for where in spec.submodule_search_locations:
            if os.path.isfile(os.path.join(where, "__init__.pxd")):
                return str(where)
    # a source tree used in place, without an install
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(here, "csrc", "pynn", "kernels")

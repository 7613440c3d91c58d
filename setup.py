"""Build the Cython kernels in csrc/ as extension modules of the pynn package.

csrc/NAME.pyx becomes pynn._NAME.  PYNN_DEBUG=1 rebuilds with bounds,
wraparound and initialisation checks on and without optimisation, for
debugging a kernel that reads or writes out of bounds.
"""
import os
from pathlib import Path

import Cython
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
DEBUG = os.environ.get("PYNN_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}
# -O3 but never -march=native: a wheel must run on any x86-64 (csrc/vmath.h
# compiles its loops for wider instruction sets too, chosen at run time).
# No contraction into fused multiply-adds: AVX-512F has them, and the paths
# for each instruction set must give the same bits.
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
compile_args.append("-ffp-contract=off")

extensions = [
    Extension(
        f"pynn._{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[numpy.get_include(), "csrc"],
        extra_compile_args=compile_args,
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            # what `python -m pynn info` reports of the build
            ("PYNN_BUILD_DEBUG", "1" if DEBUG else "0"),
            ("PYNN_BUILD_CFLAGS", '"' + " ".join(compile_args) + '"'),
            ("PYNN_BUILD_CYTHON", '"' + Cython.__version__ + '"'),
        ],
    )
    for pyx in sorted((HERE / "csrc").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["csrc"],
        # one folder per mode: switching PYNN_DEBUG regenerates the C code
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
)

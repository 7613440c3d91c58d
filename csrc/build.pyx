# What `python -m pynn info` reports of the build: setup.py defines the
# macros for every extension module alike.
from pynn.kernels.fpenv cimport FPENV_MODE

cdef extern from *:
    """
    #ifndef PYNN_BUILD_DEBUG
    #define PYNN_BUILD_DEBUG 0
    #define PYNN_BUILD_CFLAGS "unknown"
    #define PYNN_BUILD_CYTHON "unknown"
    #endif
    """
    int PYNN_BUILD_DEBUG
    const char* PYNN_BUILD_CFLAGS
    const char* PYNN_BUILD_CYTHON

BUILD = {
    "debug": bool(PYNN_BUILD_DEBUG),
    "cflags": PYNN_BUILD_CFLAGS.decode(),
    "cython": PYNN_BUILD_CYTHON.decode(),
    # what the compiled calls do with subnormal floats (fpenv.h)
    "subnormals": FPENV_MODE.decode(),
}

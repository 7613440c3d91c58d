"""The BLAS that pynn's kernels call: which library multiplies, and its threads.

The kernels' GEMM goes through one function pointer per dtype
(csrc/pynn/kernels/blas_backend.h), chosen once, at import of pynn, by `install_backend`:

- ``openblas``: SciPy's BLAS through ``scipy.linalg.cython_blas`` (OpenBLAS in
  SciPy's wheels).  The default when MKL is not installed.
- ``mkl``: ``cblas_sgemm``/``cblas_dgemm`` of Intel's oneMKL, from the ``mkl``
  wheel (``pip install pynn[mkl]``), loaded with dlopen here and never linked
  at build time.  The default when it is installed and takes one of its
  CPU-specific code paths here (`mkl_optimises_this_cpu`): on a 2-core
  AVX-512 Xeon its GEMM is 10-25% faster than OpenBLAS's on the benchmark's
  shapes.  On a CPU where MKL names no such path (seen: a 2-core AMD EPYC
  with AVX-512) OpenBLAS stays the default: there MKL's GEMM was slower on
  every benchmark configuration (a 784-512-512-10 step at batch 128,
  float32: 4.22 ms against 3.47) and it generates no JIT kernels.
  Products of at most ``pynn._gemm.SMALL_GEMM_MAX`` multiply-adds run on
  MKL's JIT GEMM, a kernel generated per shape (``mkl_cblas_jit_create_?gemm``,
  kept in a table of blas_backend.h), where MKL generates them (a probe at
  install, `_jit_generates`); else on OpenBLAS's small-matrix kernels.

``PYNN_BLAS=openblas`` or ``PYNN_BLAS=mkl`` forces one (``mkl`` whatever the
CPU); forcing ``mkl`` without the wheel is an ImportError that says so.  The
choice is made once: results are bit-reproducible per backend, not across
backends.

Threads: OpenBLAS 0.3.27+ exports ``openblas_set_num_threads_local`` and MKL
``MKL_Set_Num_Threads_Local``; both set the thread count of the calling
thread only.  OpenBLAS's is called directly (0 drops the override); MKL's
through a wrapper in csrc/pynn/kernels/blas_backend.h that restores the value it found,
since threadpoolctl limits MKL through that same per-thread count.  The kernels use it
to run a training step's big Dense layers in two halves of their units,
each on one BLAS thread, the second on the helper thread below (csrc/dense.pyx,
"A Dense layer's products in two halves": each core keeps its half of the
weights in its cache, where the BLAS's two threads would pass them between
the cores every step); to run other small calls on one thread (waking a
second costs more than it saves there); and to honour a model's
``n_threads``, leaving the process-wide count, and so threadpoolctl's
limits, alone.  Without such a function the BLAS decides alone.

The passes outside the products (the optimizer's check and update of a big
model, the activations of big layers) take a second thread, the helper of
csrc/pynn/kernels/workers.h, when the model's ``n_threads`` is 2 or more, or,
without it, when the BLAS's current count says so (`thread_count_getter`:
``openblas_get_num_threads`` or ``MKL_Get_Max_Threads``, the counts that
threadpoolctl's limits set), read at each call.
"""
import ctypes
import functools
import importlib.machinery
import os
import sys
from pathlib import Path

# A call with fewer floating-point operations than this runs its products on
# one thread (a training step with a big Dense layer splits it instead, see
# above; this holds for the others: predict, evaluate, steps of small layers).  Measured on a 2-core AVX-512 machine, one thread against two,
# train_on_batch in processes of their own (784-128-10 and 784-256-10 relu
# MLPs, float32): at 13 and 26 million operations per step (784-128-10 at
# batch 32 and 64, 784-256-10 at 32) one thread is 17-25% faster on MKL
# and 0-10% on OpenBLAS (the second thread's wake-ups and waits cost more
# than it computes); from 52 million (784-128-10 at batch 128) two are
# 15-27% faster on both.
MIN_PARALLEL_FLOPS = 4e7

BACKENDS = ("openblas", "mkl")
_OPENBLAS_SETTERS = ("openblas_set_num_threads_local",
                     "scipy_openblas_set_num_threads_local")
_OPENBLAS_GETTERS = ("openblas_get_num_threads", "scipy_openblas_get_num_threads")
# mkl_set_interface_layer's code for 32-bit integers, as the kernels pass them
_MKL_INTERFACE_LP64 = 0

# the backend in use and its library once install_backend has run
# (passed_over: the path of an installed libmkl_rt not taken by default, as
# it takes none of its CPU-specific code paths here)
_state = {"name": None, "lib": None, "path": None, "threads": 0, "passed_over": None}


def mkl_library_path():
    """Path of ``libmkl_rt`` in the installed ``mkl`` wheel, or None."""
    from importlib import metadata
    try:
        files = metadata.distribution("mkl").files or ()
    except metadata.PackageNotFoundError:
        return None
    prefix = {"win32": "mkl_rt", "darwin": "libmkl_rt"}.get(sys.platform, "libmkl_rt.so")
    for f in files:
        if f.name.startswith(prefix) and not f.name.endswith((".a", ".lib")):
            path = Path(f.locate())
            if path.exists():
                return str(path)
    return None


def _load_mkl():
    path = mkl_library_path()
    if path is None:
        return None, None
    lib = ctypes.CDLL(path)
    # before any other MKL call: 32-bit integers, whatever MKL_INTERFACE_LAYER says
    lib.MKL_Set_Interface_Layer.argtypes = [ctypes.c_int]
    lib.MKL_Set_Interface_Layer(_MKL_INTERFACE_LP64)
    return lib, path


# mkl_cbwr.h: MKL_CBWR_AUTO 2, MKL_CBWR_COMPATIBLE 3; the instruction-set
# branches from MKL_CBWR_SSE2, 4
_MKL_CBWR_FIRST_ISA_BRANCH = 4


def mkl_optimises_this_cpu(lib):
    """True when MKL (``lib``, its libmkl_rt) takes one of its CPU-specific
    code paths here: mkl_cbwr_get_auto_branch names an instruction-set
    branch, not MKL_CBWR_AUTO or MKL_CBWR_COMPATIBLE (seen: AUTO on an AMD
    EPYC with AVX-512).  True when MKL lacks the function."""
    branch = getattr(lib, "mkl_cbwr_get_auto_branch", None)
    if branch is None:
        return True
    branch.restype = ctypes.c_int
    branch.argtypes = []
    return branch() >= _MKL_CBWR_FIRST_ISA_BRANCH


def _kernel_modules():
    """The compiled modules of pynn that hold a GEMM pointer table: of the
    network kernels' per-instruction-set builds, only the one imported."""
    here = Path(__file__).parent
    found = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        found += sorted(p for p in here.glob("_*" + suffix)
                        if not p.name.startswith("_dense_")
                        or f"{__package__}.{p.name[:-len(suffix)]}" in sys.modules)
    return found


# MKL's JIT small GEMM: the pointer of blas_backend.h each of its functions
# goes to
_JIT_POINTERS = {"mkl_cblas_jit_create_sgemm": "pynn_mkl_jit_create_sgemm",
                 "mkl_cblas_jit_create_dgemm": "pynn_mkl_jit_create_dgemm",
                 "mkl_jit_get_sgemm_ptr": "pynn_mkl_jit_get_sgemm_ptr",
                 "mkl_jit_get_dgemm_ptr": "pynn_mkl_jit_get_dgemm_ptr",
                 "mkl_jit_destroy": "pynn_mkl_jit_destroy"}


# mkl.h's codes for a row-major product without transposes, and
# MKL_JIT_SUCCESS
_MKL_ROW_MAJOR, _MKL_NO_TRANS, _MKL_JIT_SUCCESS = 101, 111, 0


def _jit_generates(lib):
    """True when MKL generates a kernel here: one 4 x 4 x 4 product asked
    for and its kernel destroyed.  MKL answers MKL_NO_JIT (a kernel that
    only calls its standard GEMM) for every shape on CPUs it has no
    generator for (seen on an AMD EPYC with AVX-512); the small products
    then stay on OpenBLAS."""
    create = lib.mkl_cblas_jit_create_sgemm
    create.restype = ctypes.c_int
    create.argtypes = ([ctypes.POINTER(ctypes.c_void_p)] + [ctypes.c_int] * 6
                       + [ctypes.c_float, ctypes.c_int, ctypes.c_int, ctypes.c_float,
                          ctypes.c_int])
    lib.mkl_jit_destroy.argtypes = [ctypes.c_void_p]
    jitter = ctypes.c_void_p()
    status = create(ctypes.byref(jitter), _MKL_ROW_MAJOR, _MKL_NO_TRANS, _MKL_NO_TRANS,
                    4, 4, 4, 1.0, 4, 4, 0.0, 4)
    if jitter.value:
        lib.mkl_jit_destroy(jitter)
    return status == _MKL_JIT_SUCCESS and bool(jitter.value)


def _jit_functions(lib):
    """{pointer name: address} of MKL's JIT GEMM in lib, or all None when
    lib is None, lacks one of them or generates no kernels on this CPU
    (the small products then stay on OpenBLAS)."""
    found = {}
    for function, pointer in _JIT_POINTERS.items():
        fn = getattr(lib, function, None) if lib is not None else None
        if fn is None:
            return dict.fromkeys(_JIT_POINTERS.values())
        found[pointer] = ctypes.cast(fn, ctypes.c_void_p).value
    if not _jit_generates(lib):
        return dict.fromkeys(_JIT_POINTERS.values())
    return found


def _set_pointers(sgemm, dgemm, set_threads, jit, tile_gemm):
    """Write the backend's addresses, and whether the tile GEMM takes the
    split layers' halves, into each kernel module's table.

    Returns the address of the thread wrapper of csrc/pynn/kernels/blas_backend.h in the
    network's module (0 when no module holds one).
    """
    wrapper = 0
    for path in _kernel_modules():
        lib = ctypes.CDLL(str(path))   # the module already loaded: the same handle
        try:
            s = ctypes.c_void_p.in_dll(lib, "pynn_cblas_sgemm")
            d = ctypes.c_void_p.in_dll(lib, "pynn_cblas_dgemm")
            t = ctypes.c_void_p.in_dll(lib, "pynn_mkl_set_num_threads_local")
            j = {name: ctypes.c_void_p.in_dll(lib, name) for name in jit}
            tile = ctypes.c_int.in_dll(lib, "pynn_tile_gemm")
        except ValueError:
            continue   # a module without products
        # the JIT's pointers cleared first and its create set last: the
        # kernels take the JIT path on that one pointer
        j["pynn_mkl_jit_create_sgemm"].value = None
        for name, address in jit.items():
            if name != "pynn_mkl_jit_create_sgemm":
                j[name].value = address
        j["pynn_mkl_jit_create_sgemm"].value = jit["pynn_mkl_jit_create_sgemm"]
        s.value, d.value, t.value = sgemm, dgemm, set_threads
        tile.value = int(tile_gemm)
        if path.name.startswith("_dense"):
            wrapper = ctypes.cast(lib.pynn_mkl_threads_local, ctypes.c_void_p).value
    return wrapper


# PYNN_TILE_GEMM: "0" keeps the halves' products on the backend, "1" puts
# them on the tile GEMM whatever the backend (where the CPU runs it)
_TILE_GEMM_SETTINGS = ("", "0", "1")


def tile_gemm_wanted(backend_name):
    """True when a split layer's halves multiply on the tile GEMM
    (csrc/pynn/kernels/tile_gemm.h) with this backend: the CPU runs its
    code (AVX-512F and FMA), and SciPy's OpenBLAS is the backend (measured
    faster than its one-thread kernels on those shapes) unless
    ``PYNN_TILE_GEMM`` says otherwise."""
    from pynn import _gemm
    setting = os.environ.get("PYNN_TILE_GEMM", "").strip()
    if setting not in _TILE_GEMM_SETTINGS:
        raise ValueError(f"PYNN_TILE_GEMM must be 0 or 1; got {setting!r}")
    if not _gemm.tile_gemm_cpu() or setting == "0":
        return False
    return setting == "1" or backend_name == "openblas"


def install_backend(requested=None):
    """Choose the GEMM backend (``PYNN_BLAS`` unless *requested*) and install it.

    Returns the backend's name.  Called once at import of pynn, before any
    kernel runs; calling it again while products run is not safe.
    """
    if requested is None:
        requested = os.environ.get("PYNN_BLAS", "").strip().lower() or None
    if requested is not None and requested not in BACKENDS:
        raise ValueError(f"PYNN_BLAS must be one of {', '.join(BACKENDS)}; "
                         f"got {requested!r}")
    lib = path = None
    passed_over = None
    if requested in (None, "mkl"):
        lib, path = _load_mkl()
        if lib is None and requested == "mkl":
            raise ImportError("PYNN_BLAS=mkl but the mkl wheel is not installed "
                              "(pip install 'pynn[mkl]'), or holds no libmkl_rt")
        if lib is not None and requested is None and not mkl_optimises_this_cpu(lib):
            passed_over, lib, path = path, None, None
    if lib is not None:
        # the C entry point; lowercase mkl_set_num_threads_local is the
        # Fortran one, which takes its argument by reference
        wrapper = _set_pointers(ctypes.cast(lib.cblas_sgemm, ctypes.c_void_p).value,
                                ctypes.cast(lib.cblas_dgemm, ctypes.c_void_p).value,
                                ctypes.cast(lib.MKL_Set_Num_Threads_Local,
                                            ctypes.c_void_p).value,
                                _jit_functions(lib), tile_gemm_wanted("mkl"))
        name = "mkl"
    else:
        wrapper = _set_pointers(None, None, None, _jit_functions(None),
                                tile_gemm_wanted("openblas"))
        name = "openblas"
    _state.update(name=name, lib=lib, path=path, threads=wrapper, passed_over=passed_over)
    local_thread_setter.cache_clear()
    thread_count_getter.cache_clear()
    return name


def backend():
    """Name of the GEMM backend the kernels call: ``"openblas"`` or ``"mkl"``."""
    return _state["name"] or install_backend()


def backend_description():
    """One line: the backend and where its library comes from."""
    name = backend()
    if name == "mkl":
        from pynn import _gemm
        small = ("MKL's JIT kernels, one per shape" if _gemm.small_path() == "mkl-jit"
                 else "SciPy's OpenBLAS")
        generic = ("" if mkl_optimises_this_cpu(_state["lib"])
                   else "; MKL takes none of its CPU-specific code paths here")
        return (f"mkl (cblas_sgemm/cblas_dgemm from {Path(_state['path']).name}, the mkl "
                f"wheel; products of at most {_gemm.SMALL_GEMM_MAX} multiply-adds on "
                f"{small}{generic}{_tile_gemm_words()})")
    if _state["passed_over"]:
        return ("openblas (SciPy's BLAS through scipy.linalg.cython_blas; the mkl wheel "
                "is installed, but MKL takes none of its CPU-specific code paths here, "
                f"slower than OpenBLAS: PYNN_BLAS=mkl takes it{_tile_gemm_words()})")
    return f"openblas (SciPy's BLAS through scipy.linalg.cython_blas{_tile_gemm_words()})"


def _tile_gemm_words():
    from pynn import _gemm
    return ("; a split layer's halves on pynn's AVX-512 tile GEMM"
            if _gemm.tile_gemm_on() else "")


def _openblas_function(names):
    """Address of the first of names in SciPy's BLAS, or 0."""
    try:
        from scipy.linalg import cython_blas
        # dlsym on the module's handle searches the module, then the libraries
        # it was linked against: it finds the BLAS that cython_blas calls.
        lib = ctypes.CDLL(cython_blas.__file__)
    except (ImportError, OSError):
        return 0
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            return ctypes.cast(fn, ctypes.c_void_p).value or 0
    return 0


@functools.lru_cache(maxsize=None)
def local_thread_setter():
    """Address of the per-thread thread-count setter the kernels call, or 0."""
    if backend() == "mkl":
        return _state["threads"] or 0
    return _openblas_function(_OPENBLAS_SETTERS)


@functools.lru_cache(maxsize=None)
def thread_count_getter():
    """Address of the BLAS's ``int f(void)`` that gives the threads it would
    use now (threadpoolctl's limits included: they set this count), or 0.

    The kernels read it at each call to decide whether the passes outside
    the products may take a second thread (optim_kernels.pxd).
    """
    if backend() == "mkl":
        return ctypes.cast(_state["lib"].MKL_Get_Max_Threads, ctypes.c_void_p).value or 0
    return _openblas_function(_OPENBLAS_GETTERS)


def local_thread_setter_name():
    """Name of the function `local_thread_setter` points to."""
    return "MKL_Set_Num_Threads_Local" if backend() == "mkl" else "openblas_set_num_threads_local"

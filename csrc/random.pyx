# A seedable PCG64 generator and the distributions the initializers need.
#
# The bit generator is PCG64 as in NumPy's numpy.random.PCG64 (O'Neill's
# pcg_setseq_128 with the XSL-RR 128/64 output function): a 128-bit LCG
# state advanced by state = state * MULT + inc, and a 64-bit output taken
# from the advanced state.  Given the same (state, inc) both produce the same
# stream of uint64s bit for bit; tests/test_random.py checks that.
#
# Every distribution writes straight into the caller's C-contiguous array
# (float32 or float64) in a nogil loop.  The state lives in a local variable
# for the length of a loop and is stored back once at the end.
#
# There is no global generator: every Generator owns its state.  A Generator
# is not thread-safe (its loops run without the GIL); use one per thread.
import math
import numbers
import operator
import os

import numpy as np

from cython cimport floating
from libc.math cimport erfc, exp, log, sqrt, nextafter, nextafterf, INFINITY
from libc.stdint cimport uint64_t, int64_t, uint32_t

from pynn.kernels.pcg cimport PCG_MULT, pcg_double, pcg_next, pcg_t, uint128_t

cdef object _MASK64 = (1 << 64) - 1
cdef object _MASK128 = (1 << 128) - 1

# 2**-53 and 2**-24: scale a 53-bit (24-bit) integer into [0, 1).
cdef double TWO_M53 = 1.0 / 9007199254740992.0
cdef float TWO_M24 = <float>(1.0 / 16777216.0)


# --------------------------------------------------------------------------
# PCG64 core
# --------------------------------------------------------------------------

cdef inline uint64_t bounded(pcg_t* rng, uint64_t s) noexcept nogil:
    # Uniform integer in [0, s), s >= 1, without modulo bias: Lemire's
    # multiply-and-reject method ("Fast random integer generation in an
    # interval", ACM TOMACS 2019).  The division happens only when the first
    # draw lands in the biased low zone, which is rare.
    cdef uint64_t x = pcg_next(rng)
    cdef uint128_t m = <uint128_t>x * s
    cdef uint64_t low = <uint64_t>m
    cdef uint64_t threshold
    if low < s:
        threshold = (0 - s) % s
        while low < threshold:
            x = pcg_next(rng)
            m = <uint128_t>x * s
            low = <uint64_t>m
    return <uint64_t>(m >> 64)


cdef void pcg_seed(pcg_t* rng, uint128_t initstate, uint128_t initseq) noexcept nogil:
    # The PCG reference seeding pcg_setseq_128_srandom_r.
    rng.state = 0
    rng.inc = (initseq << 1) | 1
    pcg_next(rng)
    rng.state += initstate
    pcg_next(rng)


cdef uint64_t splitmix64(uint64_t* x) noexcept nogil:
    # Vigna's SplitMix64 (public domain reference constants).
    x[0] += 0x9E3779B97F4A7C15ULL
    cdef uint64_t z = x[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint128_t _to_u128(object value):
    return ((<uint128_t><uint64_t>(value >> 64)) << 64) | <uint128_t><uint64_t>(value & _MASK64)


cdef inline object _from_u128(uint128_t value):
    return (int(<uint64_t>(value >> 64)) << 64) | int(<uint64_t>value)


# --------------------------------------------------------------------------
# Ziggurat tables for the standard normal (Marsaglia & Tsang, 2000)
# --------------------------------------------------------------------------
#
# 256 layers of equal area V under f(x) = exp(-x^2/2) (x >= 0).  Layer 0 is
# the base: the rectangle [0, R] x [0, f(R)] plus the tail beyond R, seen as
# one box of pseudo-width X[0] = V / f(R).  Layer i >= 1 is the box
# [0, X[i]] x [f(X[i]), f(X[i+1])] with X[1] = R > X[2] > ... > X[256] = 0.
# R is found at import by bisection so that the layers close exactly at the
# mode (the published value for 256 layers is R = 3.6541528853610088).
#
# A draw takes one 64-bit output: the low 8 bits pick the layer i, bit 8 the
# sign and the top 53 bits u the position x = u * X[i] / 2^53.  If
# u < K[i] = 2^53 X[i+1] / X[i], the point is inside the part of the layer
# that lies under the curve and x is returned at once (about 99% of draws).
# Otherwise layer 0 draws from the tail and layers >= 1 test the wedge
# between the box and the curve with a second uniform, redrawing on failure.

cdef enum:
    ZIG_N = 256

cdef double zig_x[ZIG_N + 1]    # X[i]
cdef double zig_w[ZIG_N]        # X[i] / 2^53: u * zig_w[i] is x
cdef uint64_t zig_k[ZIG_N]      # fast-accept thresholds on u
cdef double zig_f[ZIG_N + 1]    # f(X[i])
cdef double zig_r               # R


cdef int _zig_layers(double r, double* x, double* fx) noexcept nogil:
    # Fill x[0..ZIG_N] for base boundary r.  Returns 1 if the layers reach
    # the mode before the last one (r too small: area V too large), -1 if
    # they do not close (r too large), 0 on success.
    cdef double fr = exp(-0.5 * r * r)
    cdef double v = r * fr + sqrt(0.5 * 3.141592653589793) * erfc(r / sqrt(2.0))
    cdef double y
    cdef int i
    x[0] = v / fr
    x[1] = r
    fx[0] = 0.0
    fx[1] = fr
    for i in range(1, ZIG_N - 1):
        y = fx[i] + v / x[i]
        if y >= 1.0:
            return 1
        x[i + 1] = sqrt(-2.0 * log(y))
        fx[i + 1] = y
    # The top layer must end at f = 1: its area V = X[255] * (1 - f(X[255])).
    y = fx[ZIG_N - 1] + v / x[ZIG_N - 1]
    x[ZIG_N] = 0.0
    fx[ZIG_N] = 1.0
    return 0 if y <= 1.0 else 1


cdef void _zig_init() noexcept nogil:
    global zig_r
    cdef double lo = 3.0, hi = 4.5, mid
    cdef int it
    for it in range(200):
        mid = 0.5 * (lo + hi)
        if mid == lo or mid == hi:
            break
        if _zig_layers(mid, zig_x, zig_f) == 1:
            lo = mid        # layers overshoot the mode: need a larger r
        else:
            hi = mid
    _zig_layers(hi, zig_x, zig_f)
    zig_r = hi
    cdef int i
    for i in range(ZIG_N):
        zig_w[i] = zig_x[i] * TWO_M53
        zig_k[i] = <uint64_t>((zig_x[i + 1] / zig_x[i]) * 9007199254740992.0)
    # The base box's inner part is [0, R]: X[1] = R, so K[0] = 2^53 R / X[0]
    # already, as for the other layers.


_zig_init()


def _ziggurat_r():
    """The ziggurat's base boundary R (for tests)."""
    return zig_r


cdef inline double std_normal(pcg_t* rng) noexcept nogil:
    cdef uint64_t r
    cdef uint64_t u
    cdef int i
    cdef double x, y, a
    while True:
        r = pcg_next(rng)
        i = <int>(r & 0xFF)
        u = r >> 11
        x = <double>u * zig_w[i]
        if u < zig_k[i]:
            return -x if (r & 0x100) else x
        if i == 0:
            # Tail beyond R (Marsaglia 1964): x = R + e1/R accepted when
            # 2 e2 > (e1/R)^2, with e1, e2 standard exponentials.
            while True:
                a = -log(1.0 - pcg_double(rng)) / zig_r
                y = -log(1.0 - pcg_double(rng))
                if 2.0 * y > a * a:
                    break
            x = zig_r + a
            return -x if (r & 0x100) else x
        # Wedge: uniform height in [f(X[i]), f(X[i+1])] under the curve?
        y = zig_f[i] + pcg_double(rng) * (zig_f[i + 1] - zig_f[i])
        if y < exp(-0.5 * x * x):
            return -x if (r & 0x100) else x


# --------------------------------------------------------------------------
# Fill loops (fused over float32 / float64)
# --------------------------------------------------------------------------

cdef void _fill_uniform(pcg_t* rng, floating* out, Py_ssize_t n,
                        double low, double span, floating below_high) noexcept nogil:
    cdef pcg_t st = rng[0]
    cdef Py_ssize_t i
    cdef uint64_t r
    cdef floating v
    if floating is double:
        for i in range(n):
            v = low + span * (<double>(pcg_next(&st) >> 11) * TWO_M53)
            out[i] = v if v <= below_high else below_high
    else:
        # Two floats per output: the top 24 bits of each 32-bit half.
        i = 0
        while i + 1 < n:
            r = pcg_next(&st)
            v = <float>(low + span * <double>(<float>(r >> 40) * TWO_M24))
            out[i] = v if v <= below_high else below_high
            v = <float>(low + span * <double>(<float>((r >> 8) & 0xFFFFFF) * TWO_M24))
            out[i + 1] = v if v <= below_high else below_high
            i += 2
        if i < n:
            r = pcg_next(&st)
            v = <float>(low + span * <double>(<float>(r >> 40) * TWO_M24))
            out[i] = v if v <= below_high else below_high
    rng[0] = st


cdef void _fill_normal(pcg_t* rng, floating* out, Py_ssize_t n,
                       double mean, double std) noexcept nogil:
    cdef pcg_t st = rng[0]
    cdef Py_ssize_t i
    if mean == 0.0 and std == 1.0:
        for i in range(n):
            out[i] = <floating>std_normal(&st)
    else:
        for i in range(n):
            out[i] = <floating>(mean + std * std_normal(&st))
    rng[0] = st


cdef void _fill_truncated(pcg_t* rng, floating* out, Py_ssize_t n,
                          double mean, double std) noexcept nogil:
    # Standard normals outside [-2, 2] are dropped and redrawn (as Keras and
    # tf.random.truncated_normal); about 4.6% of draws are redrawn.
    cdef pcg_t st = rng[0]
    cdef Py_ssize_t i
    cdef double z
    for i in range(n):
        z = std_normal(&st)
        while z < -2.0 or z > 2.0:
            z = std_normal(&st)
        out[i] = <floating>(mean + std * z)
    rng[0] = st


cdef void _shuffle(pcg_t* rng, int64_t* a, Py_ssize_t n) noexcept nogil:
    # Fisher-Yates, from the end: swap a[i] with a uniform a[j], j in [0, i].
    cdef pcg_t st = rng[0]
    cdef Py_ssize_t i, j
    cdef int64_t t
    i = n - 1
    while i > 0:
        j = <Py_ssize_t>bounded(&st, <uint64_t>(i + 1))
        t = a[i]
        a[i] = a[j]
        a[j] = t
        i -= 1
    rng[0] = st


# --------------------------------------------------------------------------
# Argument checking (all before any compiled loop runs)
# --------------------------------------------------------------------------

cdef object _check_out(object out):
    # The caller's array, flattened as a view (never a copy).
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float64 and out.dtype != np.float32:
        raise TypeError(f"out must have dtype float32 or float64, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous (got a non-contiguous array)")
    if not out.flags.writeable:
        raise ValueError("out must be writeable (got a read-only array)")
    return out.reshape(-1)


cdef double _real(str name, object value) except? -1.0:
    # A finite real number as a double, or TypeError/ValueError naming it.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    cdef double v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


cdef double _std(str name, object value) except? -1.0:
    cdef double v = _real(name, value)
    if v < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


cdef object _count(str name, object value):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


cdef object _state_int(str name, object value):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"state[{name!r}] must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"state[{name!r}] must be an integer, got {value!r}") from None
    if v < 0 or v > _MASK128:
        raise ValueError(f"state[{name!r}] must be in [0, 2**128), got {value!r}")
    return v


# --------------------------------------------------------------------------
# The Generator
# --------------------------------------------------------------------------

cdef class Generator:
    """Seedable PCG64 random generator filling arrays in place.

    Parameters
    ----------
    seed : int or None, optional
        An integer in ``[0, 2**64)``, or None (the default) for fresh entropy
        from ``os.urandom``.  Bools, floats and other non-integers raise
        TypeError; negative or too large integers raise ValueError.

    Notes
    -----
    The bit generator is PCG64 exactly as ``numpy.random.PCG64`` (128-bit
    LCG with multiplier 0x2360ED051FC65DA44385DF649FCCF645 and an odd
    increment, XSL-RR output): from the same ``get_state()`` both produce the
    same 64-bit stream.  NumPy seeds through ``SeedSequence``, this class
    does not, so the same integer seed gives different streams in the two.

    Seeding: the seed starts a SplitMix64 sequence (Vigna's constants) whose
    first four outputs ``z0, z1, z2, z3`` form ``initstate = z0 << 64 | z1``
    and ``initseq = z2 << 64 | z3``; these go through the PCG reference
    seeding ``pcg_setseq_128_srandom_r``: ``inc = initseq << 1 | 1``,
    ``state = 0``, one step, ``state += initstate``, one step.  With
    ``seed=None``, ``initstate`` and ``initseq`` are 32 bytes from
    ``os.urandom``, read little-endian.

    A Generator has no shared or global state but is not thread-safe: its
    loops run without the GIL, so use one Generator per thread.
    """

    cdef pcg_t rng

    def __cinit__(self):
        # Keep the increment odd even for an instance made with __new__
        # (copy() and unpickling set the real state right after).
        self.rng.state = 0
        self.rng.inc = 1

    def __init__(self, seed=None):
        cdef uint64_t x
        cdef uint64_t z[4]
        cdef int i
        if seed is None:
            raw = os.urandom(32)
            initstate = int.from_bytes(raw[:16], "little")
            initseq = int.from_bytes(raw[16:], "little")
            pcg_seed(&self.rng, _to_u128(initstate), _to_u128(initseq))
            return
        if isinstance(seed, (bool, np.bool_)):
            raise TypeError(f"seed must be an integer or None, got {seed!r}")
        try:
            s = operator.index(seed)
        except TypeError:
            raise TypeError(f"seed must be an integer or None, got {seed!r}") from None
        if s < 0 or s > _MASK64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed!r}")
        x = <uint64_t>s
        for i in range(4):
            z[i] = splitmix64(&x)
        pcg_seed(&self.rng,
                 ((<uint128_t>z[0]) << 64) | z[1],
                 ((<uint128_t>z[2]) << 64) | z[3])

    # ---- state -----------------------------------------------------------

    def get_state(self):
        """Return the state as ``{"state": int, "inc": int}``.

        Returns
        -------
        dict
            The 128-bit LCG state and increment as Python ints, in the form
            of ``numpy.random.PCG64().state["state"]``.
        """
        return {"state": _from_u128(self.rng.state), "inc": _from_u128(self.rng.inc)}

    def set_state(self, state):
        """Set the state from a ``get_state()`` dict.

        Parameters
        ----------
        state : dict
            ``{"state": int, "inc": int}`` with both in ``[0, 2**128)`` and
            ``inc`` odd.  NumPy's full ``PCG64().state`` dict (with
            ``"bit_generator": "PCG64"``) is accepted as well; its buffered
            32-bit value, if any, is ignored.

        Raises
        ------
        TypeError
            If ``state`` is not a dict or a value is not an integer.
        ValueError
            If keys are missing or unknown, a value is out of range or
            ``inc`` is even.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        if "bit_generator" in state:
            if state["bit_generator"] != "PCG64":
                raise ValueError(
                    f"state is for bit generator {state['bit_generator']!r}, not 'PCG64'")
            state = state.get("state")
            if not isinstance(state, dict):
                raise TypeError(f"state['state'] must be a dict, got {type(state).__name__}")
        keys = set(state)
        if keys != {"state", "inc"}:
            raise ValueError(
                f"state must have exactly the keys 'state' and 'inc', got {sorted(map(repr, keys))}")
        s = _state_int("state", state["state"])
        inc = _state_int("inc", state["inc"])
        if inc % 2 == 0:
            raise ValueError(f"state['inc'] must be odd, got {inc}")
        self.rng.state = _to_u128(s)
        self.rng.inc = _to_u128(inc)

    def state_address(self):
        """The address of the PCG64 state (a ``pcg_t``, csrc/pynn/kernels/pcg.pxd), for
        compiled code that draws from this generator in place: the network's
        dropout masks.  Valid while the Generator lives; the caller keeps a
        reference to it and never draws from two threads at once."""
        return <size_t>&self.rng

    def copy(self):
        """Return an independent Generator in the same state."""
        cdef Generator g = Generator.__new__(Generator)
        g.rng = self.rng
        return g

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (_from_state, (self.get_state(),))

    def __repr__(self):
        return f"Generator(PCG64 state=0x{_from_u128(self.rng.state):032x})"

    # ---- raw and integer draws -------------------------------------------

    def random_raw(self, n):
        """Return the next ``n`` raw 64-bit outputs.

        Parameters
        ----------
        n : int
            Number of outputs, >= 0.

        Returns
        -------
        numpy.ndarray
            uint64 array of shape ``(n,)``, the same values
            ``numpy.random.PCG64.random_raw(n)`` gives from the same state.
        """
        cdef Py_ssize_t count = _count("n", n)
        out = np.empty(count, dtype=np.uint64)
        cdef uint64_t[::1] o = out
        cdef Py_ssize_t i
        cdef pcg_t st = self.rng
        with nogil:
            for i in range(count):
                o[i] = pcg_next(&st)
        self.rng = st
        return out

    def integers(self, bound, size):
        """Return uniform integers in ``[0, bound)`` without modulo bias.

        Parameters
        ----------
        bound : int
            Exclusive upper bound, ``1 <= bound <= 2**63``.
        size : int
            Number of values, >= 0.

        Returns
        -------
        numpy.ndarray
            int64 array of shape ``(size,)``.
        """
        b = _count("bound", bound)
        if b < 1 or b > (1 << 63):
            raise ValueError(f"bound must be in [1, 2**63], got {bound!r}")
        cdef Py_ssize_t count = _count("size", size)
        cdef uint64_t ub = <uint64_t>b
        out = np.empty(count, dtype=np.int64)
        cdef int64_t[::1] o = out
        cdef Py_ssize_t i
        cdef pcg_t st = self.rng
        with nogil:
            for i in range(count):
                o[i] = <int64_t>bounded(&st, ub)
        self.rng = st
        return out

    def shuffle(self, a):
        """Shuffle a 1-D int64 array in place (Fisher-Yates).

        Parameters
        ----------
        a : numpy.ndarray
            C-contiguous, writeable, 1-D, dtype int64.
        """
        if not isinstance(a, np.ndarray):
            raise TypeError(f"a must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype != np.int64:
            raise TypeError(f"a must have dtype int64, got {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"a must be 1-D, got shape {a.shape}")
        if not a.flags.c_contiguous:
            raise ValueError("a must be C-contiguous (got a non-contiguous array)")
        if not a.flags.writeable:
            raise ValueError("a must be writeable (got a read-only array)")
        cdef int64_t[::1] v = a
        cdef Py_ssize_t n = v.shape[0]
        if n > 1:
            with nogil:
                _shuffle(&self.rng, &v[0], n)

    def permutation(self, n):
        """Return a uniformly random permutation of ``0 .. n-1``.

        Parameters
        ----------
        n : int
            Length, >= 0.

        Returns
        -------
        numpy.ndarray
            int64 array of shape ``(n,)``.
        """
        cdef Py_ssize_t count = _count("n", n)
        out = np.arange(count, dtype=np.int64)
        self.shuffle(out)
        return out

    # ---- real distributions ----------------------------------------------

    def uniform(self, out, low=0.0, high=1.0):
        """Fill ``out`` in place with uniform values in ``[low, high)``.

        Parameters
        ----------
        out : numpy.ndarray
            C-contiguous, writeable, float32 or float64, any shape.
        low, high : float
            Finite bounds with ``low < high`` (also after rounding to the
            dtype of ``out``).

        Returns
        -------
        numpy.ndarray
            ``out``.

        Notes
        -----
        float64 values are ``low + (high - low) * u`` with ``u`` the top 53
        bits of one output over 2**53; float32 values use 24 bits, two per
        64-bit output.  A value that rounds up to ``high`` is replaced by the
        largest value below ``high``, so ``high`` itself never occurs.
        """
        flat = _check_out(out)
        cdef double lo = _real("low", low)
        cdef double hi = _real("high", high)
        if not lo < hi:
            raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
        span = hi - lo
        if not math.isfinite(span):
            raise ValueError(f"high - low must be finite, got low={low!r}, high={high!r}")
        cdef double[::1] d
        cdef float[::1] f
        cdef float flo, fhi
        if flat.dtype == np.float64:
            d = flat
            if d.shape[0]:
                with nogil:
                    _fill_uniform(&self.rng, &d[0], d.shape[0], lo, span,
                                  nextafter(hi, -INFINITY))
        else:
            flo = <float>lo
            fhi = <float>hi
            if not flo < fhi or not math.isfinite(fhi) or not math.isfinite(flo):
                raise ValueError(
                    f"low and high must differ as float32, got low={low!r}, high={high!r}")
            f = flat
            if f.shape[0]:
                with nogil:
                    _fill_uniform(&self.rng, &f[0], f.shape[0], lo, span,
                                  nextafterf(fhi, -INFINITY))
        return out

    def standard_normal(self, out):
        """Fill ``out`` in place with standard normal values.

        Parameters
        ----------
        out : numpy.ndarray
            C-contiguous, writeable, float32 or float64, any shape.

        Returns
        -------
        numpy.ndarray
            ``out``.

        Notes
        -----
        The algorithm is the Marsaglia-Tsang ziggurat with 256 layers, tables
        computed at import.  About 99% of values cost one 64-bit output, a
        multiply and a compare, with no transcendental function; Box-Muller
        and the polar method need a log (and a sqrt or sin/cos) per pair,
        which makes them several times slower.  float32 values are float64
        values rounded.
        """
        return self.normal(out, 0.0, 1.0)

    def normal(self, out, mean=0.0, std=1.0):
        """Fill ``out`` in place with normal values ``mean + std * z``.

        Parameters
        ----------
        out : numpy.ndarray
            C-contiguous, writeable, float32 or float64, any shape.
        mean : float
            Finite mean.
        std : float
            Finite standard deviation, >= 0.

        Returns
        -------
        numpy.ndarray
            ``out``.

        See Also
        --------
        standard_normal : the algorithm.
        """
        flat = _check_out(out)
        cdef double m = _real("mean", mean)
        cdef double s = _std("std", std)
        cdef double[::1] d
        cdef float[::1] f
        if flat.dtype == np.float64:
            d = flat
            if d.shape[0]:
                with nogil:
                    _fill_normal(&self.rng, &d[0], d.shape[0], m, s)
        else:
            f = flat
            if f.shape[0]:
                with nogil:
                    _fill_normal(&self.rng, &f[0], f.shape[0], m, s)
        return out

    def truncated_normal(self, out, mean=0.0, std=1.0):
        """Fill ``out`` with normal values truncated to ``mean +- 2 std``.

        Draws of the standard normal outside ``[-2, 2]`` are discarded and
        redrawn, as in Keras' ``TruncatedNormal``.  The result has standard
        deviation about ``0.8796 * std``.

        Parameters
        ----------
        out : numpy.ndarray
            C-contiguous, writeable, float32 or float64, any shape.
        mean : float
            Finite mean.
        std : float
            Finite standard deviation of the untruncated normal, >= 0.

        Returns
        -------
        numpy.ndarray
            ``out``.
        """
        flat = _check_out(out)
        cdef double m = _real("mean", mean)
        cdef double s = _std("std", std)
        cdef double[::1] d
        cdef float[::1] f
        if flat.dtype == np.float64:
            d = flat
            if d.shape[0]:
                with nogil:
                    _fill_truncated(&self.rng, &d[0], d.shape[0], m, s)
        else:
            f = flat
            if f.shape[0]:
                with nogil:
                    _fill_truncated(&self.rng, &f[0], f.shape[0], m, s)
        return out


def _from_state(state):
    """Rebuild a Generator from get_state() output (used by pickle)."""
    cdef Generator g = Generator.__new__(Generator)
    g.set_state(state)
    return g

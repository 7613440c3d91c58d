# The PCG64 bit generator's state and step, shared by the generator
# (random.pyx) and the kernels that draw inside a compiled step (dropout's
# masks in layer_kernels.pxd).  See random.pyx for the algorithm.
from libc.stdint cimport uint64_t

cdef extern from *:
    ctypedef unsigned long long uint128_t "unsigned __int128"

cdef extern from *:
    """
    #define PYNN_PCG_MULT ((((unsigned __int128)0x2360ED051FC65DA4ULL) << 64) \\
                           | (unsigned __int128)0x4385DF649FCCF645ULL)
    """
    # The PCG 128-bit multiplier (a compile-time constant).
    uint128_t PCG_MULT "PYNN_PCG_MULT"


cdef struct pcg_t:
    uint128_t state
    uint128_t inc


cdef inline uint64_t pcg_output(uint128_t s) noexcept nogil:
    # XSL-RR: the output of a state
    cdef uint64_t x = (<uint64_t>(s >> 64)) ^ (<uint64_t>s)
    cdef unsigned int rot = <unsigned int>(s >> 122)
    return (x >> rot) | (x << ((64 - rot) & 63))


cdef inline uint64_t pcg_next(pcg_t* rng) noexcept nogil:
    # Advance, then output XSL-RR of the new state (as pcg64_random_r).
    cdef uint128_t s = rng.state * PCG_MULT + rng.inc
    rng.state = s
    return pcg_output(s)


cdef inline double pcg_double(pcg_t* rng) noexcept nogil:
    # Uniform on [0, 1) from the top 53 bits of one output (2**-53 scales them).
    return <double>(pcg_next(rng) >> 11) * (1.0 / 9007199254740992.0)

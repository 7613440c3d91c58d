# Flush subnormals to zero inside a compiled call, the caller's mode restored
# on the way out (fpenv.h says why).  Every entry point that does
# floating-point work wraps its nogil block in
#     env = fpenv_enter()  ...  fpenv_exit(env)
cdef extern from "fpenv.h" nogil:
    ctypedef unsigned long fpenv_t "pynn_fpenv_t"
    const char* FPENV_MODE "PYNN_FPENV_MODE"
    fpenv_t fpenv_enter "pynn_fpenv_enter"() noexcept
    void fpenv_exit "pynn_fpenv_exit"(fpenv_t old) noexcept

# The package path of pynn's kernel declarations (csrc/pynn/kernels/), for cimport.

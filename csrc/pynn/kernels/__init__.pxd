# pynn's kernel declarations: cimport them as pynn.kernels.NAME (see pynn.get_include()).

"""Build the compiled core: C99 kernels (csrc/) and the Cython engine over scipy's BLAS."""
import os
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

CFLAGS = ["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"] if os.name != "nt" else ["/O2"]
common = dict(
    include_dirs=[np.get_include(), "csrc"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=CFLAGS,
)
extensions = [
    Extension("vgfast._blas", ["vgfast/_blas.pyx"], **common),
    Extension("vgfast._core", ["vgfast/_core.pyx", "csrc/vg_kernels.c", "csrc/vg_direct.c"],
              depends=sorted(glob("csrc/*.h")), **common),
]
setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}),
)

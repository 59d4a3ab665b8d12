"""Build of the C extension focal._core; metadata lives in pyproject.toml."""
import sys

import numpy
from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = []
else:
    # Nothing here may change a rounding: no -ffast-math, -Ofast or -march=native.
    # -fno-math-errno and -fno-trapping-math only say that no one reads errno or
    # the floating-point exception flags; they let the compiler turn the kernels'
    # selects into vector blends, and change no result.  -ffp-contract=off keeps
    # a*b+c unfused, so every instruction-set variant rounds exactly alike.
    compile_args = ["-O3", "-std=c11", "-fno-math-errno", "-fno-trapping-math",
                    "-ffp-contract=off", "-pthread", "-Wall", "-Wextra",
                    "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "focal._core",
            sources=["src/module.c", "src/elementwise.c", "src/rowwise.c", "src/simd.c", "src/parallel.c"],
            depends=[f"src/{name}" for name in (
                "glue.h", "numeric.h", "vector_math.h", "sigmoid_focal.h", "softmax_focal.h",
                "element_block.h", "block_io.h", "simd.h", "parallel.h", "row_access.h")],
            include_dirs=[numpy.get_include(), "src"],
            extra_compile_args=compile_args,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
        )
    ]
)

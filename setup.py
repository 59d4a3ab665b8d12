"""Build of the C extension focal._core; metadata lives in pyproject.toml."""
import sys

import numpy
from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = []
else:
    # -fno-math-errno lets exp/log be inlined without changing any result;
    # nothing here may change rounding (no -ffast-math, -Ofast or -march=native).
    compile_args = ["-O3", "-std=c11", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "focal._core",
            sources=["src/module.c", "src/elementwise.c", "src/rowwise.c"],
            depends=["src/glue.h", "src/numeric.h", "src/sigmoid_focal.h", "src/softmax_focal.h", "src/row_access.h"],
            include_dirs=[numpy.get_include(), "src"],
            extra_compile_args=compile_args,
        )
    ]
)

"""Build of the C extension _focal_core (focal._core re-exports it); metadata lives in pyproject.toml.

The extension is a top-level module, not one inside the package, so that the
source folder ./focal cannot hide it when Python runs from the checkout's root
(see focal/_core.py).
"""
import glob
import os
import sys

import numpy
from setuptools import Extension, setup
from setuptools.command.build_py import build_py


class build_py_without_stale_core(build_py):
    """The extension of focal 0.1 lived inside the package (focal/_core.*.so);
    a build/ folder left from then still holds it, and copied into a new wheel
    it would shadow focal/_core.py, which Python imports after an extension of
    the same name.  Drop it before the package is copied."""

    def run(self):
        for stale in glob.glob(os.path.join(self.build_lib, "focal", "_core.*")):
            if not stale.endswith((".py", ".pyi")):
                os.remove(stale)
        super().run()


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
    # Release builds carry no debug information (it would make the wheel's
    # extension several MB); FOCAL_DEBUG_BUILD=1 pip install . keeps it, for gdb,
    # perf and valgrind's line numbers.  Flags here come after Python's own -g.
    if os.environ.get("FOCAL_DEBUG_BUILD", "") not in ("", "0"):
        compile_args.append("-g")
    else:
        compile_args.append("-g0")

setup(
    cmdclass={"build_py": build_py_without_stale_core},
    ext_modules=[
        Extension(
            "_focal_core",
            sources=["src/module.c", "src/driver.c", "src/kernels.c", "src/rowwise.c",
                     "src/softmax_kernels.c", "src/parallel.c"],
            # Every header: a rebuild follows any change, and the sdist carries them all.
            depends=sorted(glob.glob("src/*.h")),
            include_dirs=[numpy.get_include(), "src"],
            extra_compile_args=compile_args,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
        )
    ]
)

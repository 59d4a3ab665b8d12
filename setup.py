"""Build of the C extension _focal_core (focal._core re-exports it); metadata lives in pyproject.toml.

The extension is a top-level module, not one inside the package, so that the
source folder ./focal cannot hide it when Python runs from the checkout's root
(see focal/_core.py).
"""
import glob
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
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


class build_ext_in_parallel(build_ext):
    """Compile the extension's sources side by side, one per core.

    The table of losses is compiled once per instruction set, in a file of
    its own per level (src/kernels_*.c); each takes minutes, so a build on
    two cores is nearly twice as fast.  distutils compiles an extension's
    sources one after the other: this does what its Unix compiler's
    compile() does, with the per-source step (_compile) in a thread pool.
    Other compilers (MSVC) keep their own compile()."""

    def build_extensions(self):
        compiler = self.compiler
        jobs = min(os.cpu_count() or 1, 8)
        if compiler.compiler_type == "unix" and jobs > 1:
            def compile_in_parallel(sources, output_dir=None, macros=None, include_dirs=None,
                                    debug=0, extra_preargs=None, extra_postargs=None,
                                    depends=None):
                macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
                    output_dir, macros, include_dirs, sources, depends, extra_postargs)
                cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)

                def compile_one(obj):
                    source, extension = build[obj]
                    compiler._compile(obj, source, extension, cc_args, extra_postargs, pp_opts)

                # distutils sorts an extension's sources by name before this
                # is called, so the order of `sources` below is not kept: the
                # sorted order starts the two longest (kernels_avx2.c and
                # kernels_avx512.c, about 3 minutes each on one core of a Zen 3)
                # side by side, then kernels_baseline.c (about 2) while the
                # short ones fill in: about 5 minutes in all on two cores
                with ThreadPoolExecutor(jobs) as pool:
                    list(pool.map(compile_one, objects))
                return objects

            compiler.compile = compile_in_parallel
        super().build_extensions()


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
    cmdclass={"build_py": build_py_without_stale_core, "build_ext": build_ext_in_parallel},
    ext_modules=[
        Extension(
            "_focal_core",
            # (compiled in the order of their names: build_ext_in_parallel)
            sources=["src/kernels_avx512.c", "src/kernels_avx2.c", "src/kernels_baseline.c",
                     "src/softmax_kernels.c", "src/rowwise.c", "src/driver.c", "src/kernels.c",
                     "src/module.c", "src/parallel.c", "src/xla_ffi.c"],
            # Every header: a rebuild follows any change, and the sdist carries them all.
            depends=sorted(glob.glob("src/*.h")),
            include_dirs=[numpy.get_include(), "src"],
            extra_compile_args=compile_args,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
        )
    ]
)

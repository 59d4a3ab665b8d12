#!/usr/bin/env bash
# Sanitizers: build focal._core with gcc's AddressSanitizer and
# UndefinedBehaviorSanitizer into a fresh virtual environment and run the
# whole test suite against it.  Exits non-zero on any sanitizer report or test
# failure.
#
#   .ci/sanitizers.sh                 # the whole suite
#   .ci/sanitizers.sh tests/test_tails.py -x   # extra arguments go to pytest
#   SANITIZERS_KEEP=1 .ci/sanitizers.sh ...      # keep the instrumented venv
#   FOCAL_SANITIZERS_EXTRAS=test,gbdt .ci/sanitizers.sh   # extras to install (default: test)
#   CC=clang SANITIZERS_DIR=/tmp/inst .ci/sanitizers.sh   # clang, the build kept for fuzz.sh
#   SANITIZERS_NUMPY="1.24.*" .ci/sanitizers.sh          # the suite on that NumPy (built against 2.x)
#   SANITIZERS_STAGE=build SANITIZERS_DIR=DIR .ci/sanitizers.sh  # only build into DIR
#   SANITIZERS_STAGE=test SANITIZERS_DIR=DIR .ci/sanitizers.sh   # only run the suite on DIR's build
#
# Two compilers
# - gcc (the default): ASan and UBSan, gcc's runtimes.
# - clang (CC=clang, what CI runs): ASan, UBSan and libFuzzer's edge
#   coverage (inline 8-bit counters), so that the same build serves
#   .ci/fuzz.sh: SANITIZERS_DIR=DIR builds in DIR and keeps it, and
#   FOCAL_FUZZ_FROM=DIR .ci/fuzz.sh fuzzes that build.  The core, the longest
#   build of CI, is then compiled instrumented once, and clang compiles it in
#   less than half gcc's time with ASan.  The runtime is atheris's
#   asan_with_fuzzer.so (ASan with libFuzzer's callbacks linked in), which
#   atheris makes when it is built from source with the same clang.
#
# How it works
# - The sources are copied (the files git knows, tracked or not ignored) to a
#   temporary folder and built there, so no stale object file of an ordinary
#   build (./build) is linked in and the work tree is left alone.  The install
#   is editable (pip install -e) and the suite runs in that copy's root, so
#   this run also proves the suite passes in that install mode.
# - CFLAGS / LDFLAGS are appended by setuptools' build_ext to the compiler and
#   linker command lines; pip passes the environment on to the isolated build.
#   The extension's own -O3 etc. (setup.py) stay.  The script checks that the
#   built .so really calls the ASan and UBSan runtimes.
# - Python itself is not instrumented, so the ASan runtime has to be the first
#   library loaded: LD_PRELOAD=$(gcc -print-file-name=libasan.so) (clang:
#   asan_with_fuzzer.so, which carries UBSan's handlers too), then libstdc++
#   (see below); gcc's libubsan is pulled in by the extension's own DT_NEEDED
#   entry and needs no preload.
# - The C core takes its own memory from the raw domain only (PyMem_RawMalloc
#   and PyMem_RawCalloc, malloc underneath), and NumPy its arrays' data from
#   malloc, so ASan puts redzones around the core's buffers and the arrays
#   it reads and writes whatever CPython's allocator is; the script refuses
#   a source that calls a pymalloc allocator (PyMem_Malloc, PyObject_New...),
#   whose small blocks live in pymalloc's arenas, where an overrun would go
#   unseen.  CPython keeps pymalloc for its own objects.  That leaves out one
#   thing PYTHONMALLOC=malloc covered: a read past the end of a small object
#   CPython or NumPy allocated that the core reads (its argument and keyword
#   tuples, the module state, NumPy's iterator).  PYTHONMALLOC=malloc made the
#   Python-heavy tests (mpmath references) 2.6 times slower, and the suite
#   took 8.3 to 11.5 minutes instead of 6.9.
# - detect_leaks=0: CPython does not free everything at exit (interned strings,
#   static types, the state of NumPy and other extension modules, caches), so
#   LeakSanitizer would print thousands of "leaks" that are no bugs.  Leaks of
#   focal's own are tested by tests/test_memory.py (reference counts, no growth
#   over many calls) and by .ci/valgrind.sh.
# - Reports go to files (log_path) as well as being fatal
#   (halt_on_error / -fno-sanitize-recover), so a report printed inside a
#   pytest capture, or by a subprocess a test starts, is not lost: any such
#   file fails the run and is printed.
# - FOCAL_SANITIZERS=1 is set for the tests, so that a test whose measure means
#   nothing under ASan (the resident set, with freed memory in quarantine) can
#   skip that part.
# NumPy's and CPython's own code is not instrumented; only focal's C is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

CC="${CC:-gcc}"
if ! command -v "$CC" >/dev/null; then
    echo "sanitizers.sh: $CC not found" >&2
    exit 2
fi
sanitize="address,undefined"
case "$(basename "$CC")" in
clang*)
    flavour=clang
    # libFuzzer's edge counters, without fuzzer-no-link's trace-cmp: that
    # calls into the fuzzer at every comparison, which makes the suite's
    # kernels several times slower; the fuzzer keeps its edge coverage
    # (fuzz.sh's own build, for long runs, has trace-cmp too)
    coverage="-fsanitize-coverage=inline-8bit-counters,pc-table"
    ;;
*)
    flavour=gcc
    coverage=""
    libasan="$("$CC" -print-file-name=libasan.so)"
    if [ ! -e "$libasan" ]; then
        echo "sanitizers.sh: the ASan runtime ($libasan) is missing (apt-get install libasan8?)" >&2
        exit 2
    fi
    ;;
esac
# (see "How it works": the core's own memory comes from the raw domain only;
# checked before the build, every pymalloc allocator and deallocator name)
if grep -nE '\bPyMem_(Malloc|Calloc|Realloc|Resize|New|Free|Del|MALLOC|REALLOC|RESIZE|NEW|FREE|DEL)\b|\bPyObject_(GC_)?(Malloc|Calloc|Realloc|Free|New|NewVar|Del|MALLOC|REALLOC|FREE|NEW|NEW_VAR|DEL)\b' \
        "$root"/src/*.c "$root"/src/*.h; then
    echo "sanitizers.sh: the lines above take memory from pymalloc's arenas, which ASan" \
         "does not see into; use PyMem_RawMalloc / PyMem_RawCalloc / PyMem_RawFree" >&2
    exit 2
fi
# libstdc++ is preloaded too: ASan intercepts __cxa_throw and must find the
# real one when it starts; a C++ extension that a test loads later (Matplotlib,
# XGBoost, LightGBM, pyzmq...) would otherwise abort on its first exception
# ("CHECK failed: ... real___cxa_throw != 0")
libstdcxx="$(g++ -print-file-name=libstdc++.so.6 2>/dev/null || "$CC" -print-file-name=libstdc++.so.6)"

# SANITIZERS_STAGE: "build" builds and installs, then stops; "test" runs the
# suite on what a build stage left in SANITIZERS_DIR (CI builds in the
# background while its single-process steps run); unset, both.
stage="${SANITIZERS_STAGE:-all}"
case "$stage" in
all | build | test) ;;
*)
    echo "sanitizers.sh: SANITIZERS_STAGE must be build, test or unset, not $stage" >&2
    exit 2
    ;;
esac
if [ "$stage" != all ] && [ -z "${SANITIZERS_DIR:-}" ]; then
    echo "sanitizers.sh: SANITIZERS_STAGE=$stage needs SANITIZERS_DIR" >&2
    exit 2
fi

# SANITIZERS_KEEP=1 keeps the build folder (venv, reports) for a closer look;
# SANITIZERS_DIR names it (a new or empty folder, or a build stage's) and keeps it
if [ -n "${SANITIZERS_DIR:-}" ]; then
    work="$SANITIZERS_DIR"
    SANITIZERS_KEEP=1
    mkdir -p "$work"
    if [ "$stage" = test ] && [ ! -x "$work/venv/bin/python" ]; then
        echo "sanitizers.sh: SANITIZERS_DIR=$work holds no build (run SANITIZERS_STAGE=build first)" >&2
        exit 2
    fi
    if [ "$stage" != test ] && [ -n "$(ls -A "$work")" ]; then
        echo "sanitizers.sh: SANITIZERS_DIR=$work is not empty" >&2
        exit 2
    fi
else
    work="$(mktemp -d -t focal-sanitizers.XXXXXX)"
fi
cleanup() {
    if [ "${SANITIZERS_KEEP:-0}" = 1 ]; then
        echo "sanitizers.sh: kept $work (venv: $work/venv)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
reports="$work/reports"
mkdir -p "$work/src" "$reports"
py="$work/venv/bin/python"

if [ "$stage" != test ]; then
# the project's files, without ./build, egg-info or other ignored debris
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$work/src" -xf -

start=$(date +%s)
python3 -m venv "$work/venv"
"$py" -m pip install --quiet --upgrade pip
# SANITIZERS_NUMPY: the NumPy the suite runs on, held by a constraints file
# while the test extra installs (-c on the command line: the isolated build
# environment does not see it, and builds against NumPy 2.x as
# [build-system] requires).  CI runs this suite on the oldest NumPy declared,
# so that one run of the whole suite checks both the sanitizers and that a
# build against NumPy 2.x runs on NumPy 1.x.
constraints=()
if [ -n "${SANITIZERS_NUMPY:-}" ]; then
    echo "numpy==$SANITIZERS_NUMPY" > "$work/constraints.txt"
    constraints=(-c "$work/constraints.txt")
    "$py" -m pip install --quiet "${constraints[@]}" "numpy==$SANITIZERS_NUMPY"
fi
atheris_pid=""
if [ "$flavour" = clang ]; then
    # atheris from source, against this clang: only then does it make
    # asan_with_fuzzer.so (pip keeps the wheel it builds in its cache).  Its
    # wheel builds on one core (minutes on a fresh machine) beside focal's
    # build below, whose instruction-set tables leave a core idle part of the
    # time; it is installed once both are done.
    CC="$CC" "$py" -m pip wheel --quiet --no-deps --no-binary atheris -w "$work/wheels" atheris \
        > "$work/atheris-build.log" 2>&1 &
    atheris_pid=$!
fi
# (LDSHARED follows CC: setuptools swaps the compiler in)
CC="$CC" \
CFLAGS="-fsanitize=$sanitize $coverage -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g" \
LDFLAGS="-fsanitize=$sanitize $coverage" \
    "$py" -m pip install --quiet --no-cache-dir "${constraints[@]}" \
        -e "$work/src[${FOCAL_SANITIZERS_EXTRAS:-test}]"
if [ -n "$atheris_pid" ]; then
    if ! wait "$atheris_pid"; then
        cat "$work/atheris-build.log" >&2
        echo "sanitizers.sh: building atheris from source failed" >&2
        exit 2
    fi
    "$py" -m pip install --quiet --no-index --find-links "$work/wheels" atheris
fi
echo "sanitizers.sh: $flavour build and install took $(( $(date +%s) - start )) s"
"$py" -m pip check
fi  # (the build stage)
if [ "$flavour" = clang ]; then
    libasan="$("$py" -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"
    if [ ! -e "$libasan" ]; then
        echo "sanitizers.sh: atheris made no $libasan (was it built from source with clang?)" >&2
        exit 2
    fi
fi
preload="$libasan"
if [ -e "$libstdcxx" ]; then
    preload="$libasan:$libstdcxx"
fi
"$py" -c 'import numpy; print(f"sanitizers.sh: the suite runs on NumPy {numpy.__version__}")'
if [ -n "${SANITIZERS_NUMPY:-}" ]; then
    "$py" - "$SANITIZERS_NUMPY" <<'PY'
import fnmatch, sys, numpy
assert fnmatch.fnmatch(numpy.__version__, sys.argv[1]), (numpy.__version__, sys.argv[1])
PY
fi

# the installed extension must call into both runtimes
# (importing it without the preload fails on purpose: ASan must come first)
so="$(find "$work/venv" "$work/src" -name '_focal_core*.so' | head -n 1)"
symbols="$(nm -D --undefined-only "$so")"  # (not piped into grep -q: pipefail and SIGPIPE)
if ! grep -q '__asan_report' <<<"$symbols" || ! grep -q '__ubsan_handle' <<<"$symbols"; then
    echo "sanitizers.sh: $so is not instrumented (CFLAGS not honoured?)" >&2
    exit 1
fi
if [ "$flavour" = clang ] && ! grep -q '__sanitizer_cov' <<<"$symbols"; then
    echo "sanitizers.sh: $so lacks libFuzzer's coverage instrumentation" >&2
    exit 1
fi
echo "sanitizers.sh: instrumented extension: $so"
if [ "$stage" = build ]; then
    exit 0
fi

# Tests too slow under ASan can be marked "huge" or "slow" (registered in
# pyproject.toml); they are skipped here only when those markers exist.
select=()
markers="$(python3 - <<'PY'
import re
try:
    import tomllib
    with open("pyproject.toml", "rb") as handle:
        declared = tomllib.load(handle)["tool"]["pytest"]["ini_options"].get("markers", [])
except Exception:  # no tomllib (Python < 3.11) or no markers: deselect nothing
    declared = []
names = {re.split(r"[:(\s]", m.strip(), maxsplit=1)[0] for m in declared}
print(" and ".join(f"not {m}" for m in ("huge", "slow") if m in names))
PY
)"
if [ -n "$markers" ]; then
    select=(-m "$markers")
    echo "sanitizers.sh: deselecting: $markers"
fi

# Modules that reach no C path the others do not (the CLI demo, the README's
# and the notebook's blocks, the bench, the framework adapters, whose one C
# path of their own, focal.jax's XLA FFI handler, test_xla_ffi.py drives
# without JAX, and Dask): their minutes under ASan buy nothing; the quick
# tier runs them uninstrumented.
for module in test_cli test_readme test_notebook test_bench test_docstrings test_jax test_torch \
              test_dask test_dask_cluster; do
    select+=(--ignore "tests/$module.py")
done
# The failing call over tiles of a 16M-element buffer: the same driver and
# tiles for every elementwise row, so under ASan the sigmoid and softmax
# families stand for the others (each case takes seconds instrumented).
select+=(-k "not (tiles and not sigmoid and not softmax)")
# The quick leak runs assert that the resident set does not grow; ASan keeps
# freed memory in quarantine (256 MiB) and its shadow grows with it, so that
# measure means nothing here (the reference-count part would still hold).
# Their control test needs mallinfo (0 under ASan's allocator) to see a leak.
select+=(--deselect tests/test_leaks.py::test_quick_no_leak)
select+=(--deselect tests/test_leaks.py::test_control_the_measures_see_leaks)

start=$(date +%s)
status=0
(
cd "$work/src"
LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=1:log_path=$reports/asan" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan" \
FOCAL_SANITIZERS=1 \
    "$py" -m pytest -p no:cacheprovider "${select[@]}" "$@"
) || status=$?
echo "sanitizers.sh: the test suite took $(( $(date +%s) - start )) s under ASan+UBSan"

found=0
for report in "$reports"/*; do
    [ -e "$report" ] || continue
    found=1
    echo "===== sanitizer report $(basename "$report") =====" >&2
    cat "$report" >&2
done
if [ "$found" -ne 0 ]; then
    echo "sanitizers.sh: FAILED: sanitizer reports above" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "sanitizers.sh: FAILED: pytest exited with status $status" >&2
    exit "$status"
fi
echo "sanitizers.sh: no sanitizer report"

#!/usr/bin/env bash
# Valgrind memcheck over the test suite (or a part of it): invalid reads and
# writes, use of uninitialised values and bad frees in focal's C core, on the
# ordinary (uninstrumented) build with debug information.
#
#   .ci/valgrind.sh                                  # the default subset (CI)
#   .ci/valgrind.sh tests                            # the whole suite (many hours)
#   .ci/valgrind.sh tests/test_tails.py -k sigmoid   # any pytest arguments
#   FOCAL_VALGRIND_LEAKS=1 .ci/valgrind.sh ...       # also list definite leaks
#
# - PYTHONMALLOC=malloc: CPython's small-object allocator reads memory it does
#   not own by design (address_in_range), which memcheck would report; with
#   plain malloc every Python allocation is also checked, and no suppression
#   file from CPython's source tree (Misc/valgrind-python.supp) is needed.
# - .ci/valgrind.supp suppresses reports that lie wholly in CPython, NumPy or
#   OpenBLAS and never in focal (see the file).  Every error that is left
#   makes the run fail (--error-exitcode).
# - Leaks are not checked by default: the interpreter keeps much of its memory
#   until exit on purpose.  focal's own leaks are covered by
#   tests/test_memory.py (reference counts, no growth over many calls).
# - Valgrind 3.19 does not run AVX-512 code; its virtual CPU does not report
#   AVX-512, so focal (and NumPy, OpenBLAS) choose AVX2 or baseline by
#   themselves.  The AVX-512 kernels are checked by .ci/sanitizers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

if ! command -v valgrind >/dev/null; then
    echo "valgrind.sh: installing valgrind"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq valgrind >/dev/null
fi
valgrind --version

work="$(mktemp -d -t focal-valgrind.XXXXXX)"
cleanup() {
    if [ "${FOCAL_VALGRIND_KEEP:-0}" = 1 ]; then
        echo "valgrind.sh: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$work/src" -xf -

start=$(date +%s)
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
# debug information for readable stacks; setup.py's -O3 and the rest stay
CFLAGS="-g -fno-omit-frame-pointer" "$py" -m pip install --quiet --no-cache-dir "$work/src[test]"
echo "valgrind.sh: build and install took $(( $(date +%s) - start )) s"

# Without arguments: the fuzzer's seed corpus (every public function over
# layouts, dtypes, byte orders, bad values and out= aliases; the harness
# checks every result) and the paper's examples.  With arguments: pytest's.
default_run=0
if [ "$#" -eq 0 ]; then
    default_run=1
fi

leaks=(--leak-check=no)
if [ "${FOCAL_VALGRIND_LEAKS:-0}" = 1 ]; then
    leaks=(--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none)
fi

memcheck() {
    echo "valgrind.sh: $*"
    PYTHONMALLOC=malloc \
        valgrind --tool=memcheck --error-exitcode=97 --trace-children=yes \
            --suppressions="$root/.ci/valgrind.supp" --num-callers=30 --track-origins=yes \
            --log-file="$work/valgrind.%p.log" "${leaks[@]}" "$@"
}

start=$(date +%s)
status=0
if [ "$default_run" = 1 ]; then
    memcheck "$py" "$work/src/fuzz/fuzz_focal.py" --replay "$root/fuzz/corpus" || status=$?
    memcheck "$py" -m pytest -p no:cacheprovider -n 0 -q tests/test_paper.py || status=$?
else
    memcheck "$py" -m pytest -p no:cacheprovider -n 0 -q "$@" || status=$?
fi
echo "valgrind.sh: the run took $(( $(date +%s) - start )) s under memcheck"

errors=0
for log in "$work"/valgrind.*.log; do
    summary="$(grep -E 'ERROR SUMMARY: [0-9]+' "$log" | tail -n 1 || true)"
    count="$(echo "$summary" | sed -E 's/.*ERROR SUMMARY: ([0-9]+).*/\1/')"
    if [ -n "$count" ] && [ "$count" != 0 ]; then
        errors=1
        echo "===== $(basename "$log"): $summary =====" >&2
        cat "$log" >&2
    elif [ "${FOCAL_VALGRIND_LEAKS:-0}" = 1 ] && grep -q 'definitely lost' "$log"; then
        grep -A40 'definitely lost in' "$log" | grep -B2 -A40 '_core' >&2 || true
    fi
done
if [ "$errors" -ne 0 ]; then
    echo "valgrind.sh: FAILED: memcheck errors above" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "valgrind.sh: FAILED: pytest exited with status $status" >&2
    exit "$status"
fi
echo "valgrind.sh: no memcheck error"

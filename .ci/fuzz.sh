#!/usr/bin/env bash
# Fuzzing: focal._core built by clang with AddressSanitizer and libFuzzer's
# coverage instrumentation, driven by the atheris harness fuzz/fuzz_focal.py
# for a bounded time.  Exits non-zero when the fuzzer finds a crash, a
# sanitizer report or a failed check of the harness (the input is printed in
# base64 and copied to fuzz/crashes/, which git ignores).
#
#   .ci/fuzz.sh                              # 60 s (CI)
#   FOCAL_FUZZ_SECONDS=3600 .ci/fuzz.sh      # the long run (fuzz/README.md)
#   FOCAL_FUZZ_KEEP=1 .ci/fuzz.sh            # keep the venv and the grown corpus
#   FOCAL_FUZZ_FROM=DIR .ci/fuzz.sh          # fuzz the clang build sanitizers.sh kept in DIR
#
# As atheris documents for native extensions (native_extension_fuzzing.md):
# the extension is compiled with -fsanitize=address,fuzzer-no-link, atheris is
# built from source against the same clang (so that it makes
# asan_with_fuzzer.so, the ASan runtime with libFuzzer linked in), and that
# library is LD_PRELOADed into Python.  detect_leaks=0 because CPython does
# not free everything at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${FOCAL_FUZZ_SECONDS:-60}"

# FOCAL_FUZZ_FROM=DIR: fuzz the build .ci/sanitizers.sh made and kept in DIR
# with CC=clang (the same instrumentation; CI builds the core once for both)
from="${FOCAL_FUZZ_FROM:-}"

work="$(mktemp -d -t focal-fuzz.XXXXXX)"
cleanup() {
    if [ "${FOCAL_FUZZ_KEEP:-0}" = 1 ]; then
        echo "fuzz.sh: kept $work (venv, corpus, crashes)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
mkdir -p "$work/corpus" "$work/crashes"

start=$(date +%s)
if [ -n "$from" ]; then
    src="$from/src"
    py="$from/venv/bin/python"
    if [ ! -x "$py" ] || [ ! -d "$src" ]; then
        echo "fuzz.sh: FOCAL_FUZZ_FROM=$from holds no build of sanitizers.sh (venv/, src/)" >&2
        exit 2
    fi
else
    # clang with libFuzzer (Debian: the clang package brings compiler-rt's libFuzzer)
    if ! command -v clang >/dev/null; then
        echo "fuzz.sh: installing clang"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq clang >/dev/null
    fi
    clang --version | head -n 1
    fuzzer_lib="$(clang -print-file-name=libclang_rt.fuzzer_no_main-x86_64.a)"
    if [ ! -e "$fuzzer_lib" ]; then
        fuzzer_lib="$(find "$(dirname "$(clang -print-libgcc-file-name)")" /usr/lib/llvm-* \
            -name 'libclang_rt.fuzzer_no_main*.a' 2>/dev/null | head -n 1 || true)"
    fi
    if [ -z "$fuzzer_lib" ]; then
        echo "fuzz.sh: clang has no libFuzzer (libclang_rt.fuzzer_no_main); install compiler-rt" >&2
        exit 2
    fi
    src="$work/src"
    mkdir -p "$src"
    git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$src" -xf -
    python3 -m venv "$work/venv"
    py="$work/venv/bin/python"
    "$py" -m pip install --quiet --upgrade pip
    # atheris from source, against this clang: only then does it make asan_with_fuzzer.so
    # (pip keeps the wheel it builds in its cache: later runs on this machine reuse it)
    "$py" -m pip install --quiet --no-binary atheris atheris
    # focal, instrumented (LDSHARED follows CC: setuptools swaps the compiler in)
    CC=clang \
    CFLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g" \
    LDFLAGS="-fsanitize=address,undefined,fuzzer-no-link" \
        "$py" -m pip install --quiet --no-cache-dir "$src"
fi
atheris_dir="$("$py" -c 'import atheris; print(atheris.path())')"
preload="$atheris_dir/asan_with_fuzzer.so"
if [ ! -e "$preload" ]; then
    echo "fuzz.sh: atheris made no $preload (was it built from source with clang?)" >&2
    exit 2
fi
so="$("$py" -I -c 'import importlib.util; print(importlib.util.find_spec("_focal_core").origin)')"
symbols="$(nm -D --undefined-only "$so")"  # (not piped into grep -q: pipefail and SIGPIPE)
if ! grep -q '__asan_report' <<<"$symbols" || ! grep -q '__sanitizer_cov' <<<"$symbols"; then
    echo "fuzz.sh: $so lacks ASan or coverage instrumentation" >&2
    exit 1
fi
echo "fuzz.sh: setup took $(( $(date +%s) - start )) s"

# the run: new inputs go to $work/corpus, the seeds are read from fuzz/corpus.
# -malloc_limit_mb above -rss_limit_mb: a call over a huge broadcast shape may
# rightly allocate a result larger than the RSS limit (a row loss of 2**31
# float32 rows, 8 GiB, never touched but a page before the deadline stops
# the call), which libFuzzer otherwise reports as out of memory at the
# malloc; the RSS limit still stops memory actually used.
status=0
cd "$work"
LD_PRELOAD="$preload" \
ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:symbolize=1" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    "$py" "$src/fuzz/fuzz_focal.py" \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=8192 -malloc_limit_mb=65536 \
        -max_len=1024 \
        -print_final_stats=1 -artifact_prefix="$work/crashes/" \
        "$work/corpus" "$root/fuzz/corpus" >"$work/fuzz.log" 2>&1 || status=$?
cd "$root"
# libFuzzer prints a line per new input: show the end of the log, the whole
# of it being kept with FOCAL_FUZZ_KEEP=1
if [ "$status" -ne 0 ]; then
    tail -n 150 "$work/fuzz.log"
else
    grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 3
    grep -E '^(stat::|Done)' "$work/fuzz.log" || true
fi

found=0
for crash in "$work"/crashes/*; do
    [ -e "$crash" ] || continue
    case "$(basename "$crash")" in
    slow-unit-*)
        # slower than 10 s, not a failure: worth a look if it keeps coming
        echo "fuzz.sh: note: slow input $(basename "$crash") ($(base64 -w 0 "$crash"))"
        ;;
    *)
        found=1
        mkdir -p "$root/fuzz/crashes"
        cp "$crash" "$root/fuzz/crashes/"
        echo "===== crash input fuzz/crashes/$(basename "$crash") (base64) =====" >&2
        base64 -w 76 "$crash" >&2
        echo "reproduce: python fuzz/fuzz_focal.py --replay fuzz/crashes/$(basename "$crash")" >&2
        ;;
    esac
done
if [ "${FOCAL_FUZZ_KEEP:-0}" = 1 ]; then
    echo "fuzz.sh: $(ls "$work/corpus" | wc -l) new corpus inputs in $work/corpus"
fi
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "fuzz.sh: FAILED (libFuzzer status $status)" >&2
    exit 1
fi
echo "fuzz.sh: no finding in $seconds s"

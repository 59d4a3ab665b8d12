#!/usr/bin/env bash
# Compatibility and packaging: the sdist is complete, and the wheel built from
# it against NumPy 2.x (build isolation, as [build-system] requires) passes the
# sdist's own test suite on the oldest NumPy that [project] dependencies
# declare (numpy>=1.24, so NumPy 1.24.x).
#
# One venv: build the sdist, then the wheel from the sdist with the venv's pip
# (isolated build env, NumPy 2.x headers); check both carry LICENSE; install
# NumPy 1.24.x, then the wheel and its test extra with NumPy held at 1.24.x by
# a constraints file, and run the test suite of the unpacked sdist from its
# root (tests/conftest.py makes the installed focal the one under test).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Keep in step with dependencies = ["numpy>=..."].  NumPy 1.24 has wheels for
# CPython 3.8 to 3.11 only: on a newer python3 use its oldest NumPy instead
# (1.26 for 3.12).
OLDEST_NUMPY="1.24.*"

start=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet --upgrade pip

# 1. the sdist, and the wheel built from it against NumPy 2.x in pip's
#    isolated build env
"$py" -m pip install --quiet build
"$py" -m build --sdist --outdir "$work/dist" . >/dev/null
sdist="$(ls "$work"/dist/focal-*.tar.gz)"
tar -C "$work" -xzf "$sdist"
unpacked="$(ls -d "$work"/focal-*/)"
# Every file of the C core (a header missing from the sdist fails only when a
# user builds from it).
for file in src/*; do
    [ -e "$unpacked/$file" ] || { echo "compat: the sdist lacks $file" >&2; exit 1; }
done
"$py" -m pip wheel --quiet --no-deps -w "$work/dist" "$sdist"
wheel="$(ls "$work"/dist/focal-*.whl)"
for file in LICENSE README.md tests/conftest.py tests/reference.py tests/layouts.py examples/quickstart.ipynb; do
    [ -e "$unpacked/$file" ] || { echo "compat: the sdist lacks $file" >&2; exit 1; }
done
echo "compat: built $(basename "$wheel") in $((SECONDS - start)) s"
# NumPy 2.x headers make import_array() try numpy._core first; 1.x headers
# only know numpy.core.  Check the build really used NumPy 2.x.
"$py" - "$wheel" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    ext = [n for n in wheel.namelist() if n.startswith("_focal_core") and n.endswith((".so", ".pyd"))]
    assert len(ext) == 1, ext
    assert b"numpy._core._multiarray_umath" in wheel.read(ext[0]), \
        "_focal_core was not compiled against NumPy 2.x headers"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist()), \
        "the wheel lacks LICENSE"
    # A release build carries no debug information: no DWARF section names
    # in the ELF section-name table (FOCAL_DEBUG_BUILD=1 would add them).
    # The size is printed, not bounded: it is the kernels' code (every row of
    # the loss table for each instruction set, precision, form and outputs).
    binary = wheel.read(ext[0])
    assert b".debug_info" not in binary and b".debug_line" not in binary, \
        f"{ext[0]} carries debug information in a release build"
    print(f"compat: {ext[0]} is {len(binary) / 2**20:.1f} MiB, no debug information")
EOF

# 2. the oldest supported NumPy, then the wheel and its test extra without
#    letting anything upgrade NumPy
echo "numpy==$OLDEST_NUMPY" > "$work/constraints.txt"
"$py" -m pip install --quiet -c "$work/constraints.txt" "numpy==$OLDEST_NUMPY"
"$py" -m pip install --quiet -c "$work/constraints.txt" "$wheel[test]"
"$py" -m pip check
"$py" -I - <<EOF  # -I: no current directory on sys.path
import fnmatch, numpy, focal
assert fnmatch.fnmatch(numpy.__version__, "$OLDEST_NUMPY"), numpy.__version__
assert "site-packages" in focal.__file__, focal.__file__
print(f"compat: numpy {numpy.__version__}, focal {focal.__version__} from {focal.__file__}")
EOF
echo "compat: environment ready in $((SECONDS - start)) s"

# 3. the sdist's test suite, from its root (arguments go to pytest)
(cd "$unpacked" && "$py" -m pytest "$@")
echo "compat: done in $((SECONDS - start)) s"

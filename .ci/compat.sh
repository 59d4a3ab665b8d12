#!/usr/bin/env bash
# Compatibility: the wheel built against NumPy 2.x (build isolation, as
# [build-system] requires) must pass the test suite on the oldest NumPy that
# [project] dependencies declare (numpy>=1.24, so NumPy 1.24.x).
#
# One venv: build the wheel with the venv's pip (isolated build env, NumPy 2.x
# headers), install NumPy 1.24.x, then the wheel and its test extra with NumPy
# held at 1.24.x by a constraints file, and run the suite from the repo root
# (tests/conftest.py makes the installed focal the one under test).
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

# 1. the wheel, built once against NumPy 2.x in pip's isolated build env
"$py" -m pip wheel --quiet --no-deps -w "$work/dist" .
wheel="$(ls "$work"/dist/focal-*.whl)"
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

# 3. the test suite, from the repository root (arguments go to pytest)
"$py" -m pytest "$@"
echo "compat: done in $((SECONDS - start)) s"

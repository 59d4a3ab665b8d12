"""The environment variables FOCAL_NUM_THREADS and FOCAL_SIMD, read at import.

A value that cannot be used must not make ``import focal`` fail: that would
also break the unpickling of every model that holds a focal objective.  It
gives a RuntimeWarning naming the variable and the value, and the default.
Each case runs in a fresh interpreter, where the variable is read (pytest's
filterwarnings=error does not reach it; the warning is read from stderr).
"""
import json
import os
import pickle
import subprocess
import sys

import pytest

import focal
from focal import _core

_REPORT = """
import json, focal
from focal import _core, _settings
print(json.dumps({"threads": focal.get_num_threads(), "simd": _core.simd_level(),
                  "default_threads": min(_settings._available_cores(), 256)}))
"""


def _run(code, tmp_path, **variables):
    """Runs `code` in a new interpreter with only the given FOCAL_* variables set."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FOCAL_")}
    env.update(variables, PYTHONIOENCODING="utf-8")
    # from an empty folder, so that `import focal` finds the installed package
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, encoding="utf-8", timeout=120)


def _report(tmp_path, **variables):
    result = _run(_REPORT, tmp_path, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("value", ["0", "300", "2.0", "abc", "-2", "1e2", "0x4", "+", "\u0663",
                                   "9" * 5000, "000", "+0", "++4", "+-4", "0257", "4 4"])
def test_bad_thread_count_warns_and_uses_the_default(tmp_path, value):
    report, stderr = _report(tmp_path, FOCAL_NUM_THREADS=value)
    assert report["threads"] == report["default_threads"]
    assert "RuntimeWarning" in stderr and "FOCAL_NUM_THREADS=" in stderr
    assert repr(value)[:40] in stderr  # the value, as given


# (a sign and leading zeros as int() reads them: review 87's "0004" and "+4"
# were warned about as not a whole number)
@pytest.mark.parametrize("value, threads", [("3", 3), (" 3 ", 3), ("007", 7), ("1", 1),
                                            ("256", 256), ("0004", 4), ("+4", 4), ("+0256", 256)])
def test_good_thread_count_is_used_silently(tmp_path, value, threads):
    report, stderr = _report(tmp_path, FOCAL_NUM_THREADS=value)
    assert report["threads"] == threads
    assert stderr == ""


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_thread_count_is_unset(tmp_path, value):
    report, stderr = _report(tmp_path, FOCAL_NUM_THREADS=value)
    assert report["threads"] == report["default_threads"]
    assert stderr == ""


def test_unpickling_a_focal_objective_survives_a_bad_setting(tmp_path):
    objectives = [focal.xgboost_objective(alpha=0.5, gamma=1.0, hessian_floor=0.02),
                  focal.lightgbm_objective(None, 3.0), focal.xgboost_metric(0.4, 1.5),
                  focal.lightgbm_metric()]
    path = tmp_path / "objectives.pkl"
    path.write_bytes(pickle.dumps(objectives))
    code = (f"import pickle; objectives = pickle.loads(open({str(path)!r}, 'rb').read()); "
            "print([repr(o) for o in objectives])")
    result = _run(code, tmp_path, FOCAL_NUM_THREADS="abc", FOCAL_SIMD="fastest")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr([repr(o) for o in objectives])
    assert "FOCAL_NUM_THREADS='abc'" in result.stderr and "FOCAL_SIMD='fastest'" in result.stderr


@pytest.mark.parametrize("variables", [{"FOCAL_NUM_THREADS": "abc"}, {"FOCAL_SIMD": "zz"}])
def test_a_bad_setting_where_warnings_are_errors(tmp_path, variables):
    """python -W error (or pytest's filterwarnings = error) turned the warning
    into an exception at import: the import and the default still hold, and
    the message reaches stderr."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FOCAL_")}
    env.update(variables, PYTHONIOENCODING="utf-8")
    result = subprocess.run([sys.executable, "-W", "error", "-c", _REPORT], cwd=tmp_path,
                            env=env, capture_output=True, encoding="utf-8", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["threads"] == report["default_threads"]
    assert "RuntimeWarning" in result.stderr and next(iter(variables)) in result.stderr


@pytest.mark.parametrize("level", _core.supported_simd_levels())
def test_simd_level_in_any_case(tmp_path, level):
    for spelling in (level.upper(), level.capitalize(), f" {level} "):
        report, stderr = _report(tmp_path, FOCAL_SIMD=spelling)
        assert report["simd"] == level, spelling
        assert stderr == ""


@pytest.mark.parametrize("value", ["sse4", "AVX3", "avx-512", "best"])
def test_unknown_simd_level_warns_and_uses_the_best(tmp_path, value):
    report, stderr = _report(tmp_path, FOCAL_SIMD=value)
    assert report["simd"] == _core.supported_simd_levels()[-1]
    assert "RuntimeWarning" in stderr and f"FOCAL_SIMD={value!r}" in stderr
    assert "baseline, avx2, avx512" in stderr  # what it expected


def test_simd_level_above_the_cpu_warns_and_uses_the_best(tmp_path):
    supported = _core.supported_simd_levels()
    missing = [level for level in ("baseline", "avx2", "avx512") if level not in supported]
    if not missing:
        pytest.skip("this CPU runs every instruction set focal has")
    report, stderr = _report(tmp_path, FOCAL_SIMD=missing[-1])
    assert report["simd"] == supported[-1]
    assert "RuntimeWarning" in stderr and "does not run" in stderr


def test_unset_variables_give_the_defaults(tmp_path):
    report, stderr = _report(tmp_path)
    assert report["threads"] == report["default_threads"]
    assert report["simd"] == _core.supported_simd_levels()[-1]
    assert stderr == ""

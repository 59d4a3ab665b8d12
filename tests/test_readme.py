"""Every Python block of README.md runs as a script and prints what the README shows.

A ```python block is run on its own in a fresh interpreter (from a temporary
folder, against the installed focal).  The ```text block right after it is
its output: compared line for line, exactly, unless the comment
``<!-- output: numbers vary -->`` stands between the two, in which case the
words must match and each number may differ by a stated tolerance (results of
other libraries, which move between their releases).
"""
import ast
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
VARIES = "<!-- output: numbers vary -->"
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
# how far a varying number may move (AP values and round counts of boosting
# runs, which change with the libraries' releases)
VARYING_ABSOLUTE, VARYING_RELATIVE = 0.05, 0.25


def _blocks():
    """(name, code, expected output or None, numbers vary) for each Python block."""
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    fences = list(FENCE.finditer(text))
    blocks = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        line = text.count("\n", 0, fence.start()) + 1
        expected, varies = None, False
        if i + 1 < len(fences) and fences[i + 1].group(1) == "text":
            between = text[fence.end():fences[i + 1].start()].strip()
            if between in ("", VARIES):
                expected, varies = fences[i + 1].group(2), between == VARIES
        blocks.append((f"README.md:{line}", fence.group(2), expected, varies))
    return blocks


BLOCKS = _blocks()


def _needs(code):
    """The optional libraries a block imports (it is skipped when one is missing)."""
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return sorted(modules - {"numpy", "focal"} - set(sys.stdlib_module_names))


def test_the_readme_has_checked_examples():
    assert len(BLOCKS) >= 2
    assert all(expected is not None for _, _, expected, _ in BLOCKS), (
        "every Python block of the README is followed by the output it prints")


@pytest.mark.parametrize("name, code, expected, varies", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_readme_block_runs_and_prints_what_it_shows(name, code, expected, varies, tmp_path):
    if not os.environ.get("FOCAL_REQUIRE_GBDT"):  # CI's boosting tier: missing is a failure
        for module in _needs(code):
            pytest.importorskip(module)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{name} failed:\n{result.stderr}"
    shown = expected.rstrip("\n").splitlines()
    printed = result.stdout.rstrip("\n").splitlines()
    if not varies:
        assert printed == shown, f"{name} prints\n{result.stdout}"
        return
    assert [NUMBER.sub("#", line) for line in printed] == [NUMBER.sub("#", line) for line in shown], (
        f"{name} prints\n{result.stdout}")
    for got_line, shown_line in zip(printed, shown):
        for got, want in zip(NUMBER.findall(got_line), NUMBER.findall(shown_line)):
            assert float(got) == pytest.approx(float(want), abs=VARYING_ABSOLUTE, rel=VARYING_RELATIVE), (
                f"{name}: {got_line!r} against the README's {shown_line!r}")

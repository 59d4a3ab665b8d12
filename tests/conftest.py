"""Test configuration: import the installed focal, not the source folder.

``python -m pytest`` run from the repository root puts the current directory
on sys.path, so ``import focal`` would find ./focal, which has no compiled
_core.  Drop that entry (and any other spelling of the root) so the installed
package, with its extension, is the one under test.
"""
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [
    entry for entry in sys.path
    if entry not in ("", ".") and os.path.abspath(entry) != _ROOT
]


def pytest_report_header(config):
    """Name the tiers in the header of every run: the default run leaves the
    long ones out (pyproject.toml's addopts), which should not go unnoticed."""
    selected = config.getoption("markexpr")
    return [
        f"focal test tiers: this run selects {f'-m {selected!r}' if selected else 'every tier'}",
        "  python -m pytest (quick) | -m slow (leaks over 20,000 calls a path, the demo) | -m huge (more than "
        "2**31 elements) | -m '' (all); FOCAL_HYPOTHESIS_PROFILE=long: 2,000 examples per property",
    ]

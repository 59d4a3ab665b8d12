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

"""Shared parameter text filled into the public functions' docstrings."""
from __future__ import annotations

import textwrap
from typing import Any, Callable, TypeVar

_Function = TypeVar("_Function", bound=Callable[..., Any])

# the end of the Notes of every function that can take out=
INTERRUPTION = """\
A long call can be interrupted: Ctrl-C raises KeyboardInterrupt from it
within a few tens of milliseconds (as does any exception a Python signal
handler raises, checked every 20 ms).  `out` is then left partly written,
and so are the logits or targets when `out` is one of them.  A target or
label the pass finds bad raises its ValueError when found, and `out` is
then partly written too; an input never is (where `out` shares memory with
one, every value is checked before anything is written)."""


def fill_docstring(**fragments: str) -> Callable[[_Function], _Function]:
    """A decorator that fills ``{name}`` fields of a docstring with `fragments`,
    indented to the docstring's four spaces (numpydoc sections).

    Docstrings are absent under ``python -OO``; then there is nothing to fill.
    """
    indented = {key: textwrap.indent(text, "    ").strip() for key, text in fragments.items()}

    def decorate(function: _Function) -> _Function:
        if function.__doc__ is not None:
            function.__doc__ = function.__doc__.format(**indented)
        return function

    return decorate

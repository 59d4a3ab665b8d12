"""The examples in the public docstrings run and print what they show."""
import doctest
import importlib

import pytest

import focal


@pytest.mark.parametrize("module", ["focal._sigmoid", "focal._softmax", "focal._star",
                                    "focal._settings"])
def test_docstring_examples(module):
    threads = focal.get_num_threads()
    try:
        result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    finally:
        focal.set_num_threads(threads)  # an example sets it
    assert result.failed == 0
    assert result.attempted > 0


def test_every_public_function_has_a_numpydoc_docstring():
    for name in focal.__all__:
        doc = getattr(focal, name).__doc__
        assert doc, name
        assert "Parameters" in doc or "Returns" in doc, name
        assert "Examples" in doc, name

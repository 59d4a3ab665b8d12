"""Type aliases of the public signatures (internal).

They say what the functions return at run time: a reduced loss is a NumPy
scalar of the result dtype (float32 or float64), an elementwise result an
array of that dtype.  The reduction literals let the overloads tell the two
apart from the call.
"""
from __future__ import annotations

import numbers
from typing import Any, Literal, SupportsFloat, Union

import numpy as np
import numpy.typing as npt

Scalar = np.floating[Any]
Array = npt.NDArray[np.floating[Any]]
# A real number where the functions take one: a Python number, a NumPy
# scalar or any other numbers.Real (a Fraction), as _args.real_scalar takes
# them, and what float() takes (SupportsFloat): a 0-d array or tensor works
# at run time too, and no type tells it from a larger one, which is refused
# at run time; a string or None is not a number to mypy either.
Real = Union[float, np.floating[Any], np.integer[Any], numbers.Real, SupportsFloat]

# Unions of one-value literals rather than Literal["mean", "sum", ...]: the
# same type, but a Union at run time as well, which is what stubtest expects
# of a union of literals.
SoftmaxScalarReduction = Union[Literal["mean"], Literal["sum"]]
ScalarReduction = Union[SoftmaxScalarReduction, Literal["sum_over_positives"]]
SoftmaxReduction = Union[Literal["none"], SoftmaxScalarReduction]
Reduction = Union[Literal["none"], ScalarReduction]

"""Type aliases of the public signatures (internal).

They say what the functions return at run time: a reduced loss is a NumPy
scalar of the result dtype (float32 or float64), an elementwise result an
array of that dtype.  The reduction literals let the overloads tell the two
apart from the call.
"""
from __future__ import annotations

import numbers
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt

Scalar = np.floating[Any]
Array = npt.NDArray[np.floating[Any]]
# A real number where the functions take one: a Python number, a NumPy
# scalar or any other numbers.Real (a Fraction), as _args.real_scalar takes
# them (0-d arrays work at run time too, but no type tells them apart).
Real = Union[float, np.floating[Any], np.integer[Any], numbers.Real]

# Unions of one-value literals rather than Literal["mean", "sum", ...]: the
# same type, but a Union at run time as well, which is what stubtest expects
# of a union of literals.
SoftmaxScalarReduction = Union[Literal["mean"], Literal["sum"]]
ScalarReduction = Union[SoftmaxScalarReduction, Literal["sum_over_positives"]]
SoftmaxReduction = Union[Literal["none"], SoftmaxScalarReduction]
Reduction = Union[Literal["none"], ScalarReduction]

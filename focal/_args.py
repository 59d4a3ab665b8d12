"""Argument checks shared by the public functions.

Every check raises a TypeError (wrong kind of thing) or a ValueError (right
kind, wrong value or shape) whose message starts with the argument's name and
says what was expected.  Nothing here copies a large array or modifies an input.
"""
from __future__ import annotations

import math
import operator
import sys
from typing import Any, Dict, Optional, Tuple

import numpy as np

REDUCTIONS = ("none", "sum", "mean", "sum_over_positives")
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
# result dtypes of the common logits dtypes, by type character (byte order aside)
_RESULT_DTYPES: Dict[str, np.dtype] = {"e": _FLOAT32, "f": _FLOAT32, "d": _FLOAT64}


def _masked_array_type() -> Optional[type]:
    """numpy.ma.MaskedArray if numpy.ma was imported, else None.

    Asking for np.ma would import numpy.ma (about 1 MiB) on a first call; when
    no one imported it, no masked array can exist.
    """
    module = sys.modules.get("numpy.ma")
    return getattr(module, "MaskedArray", None)


def _reject_masked(name: str, value: Any) -> None:
    masked = _masked_array_type()
    if masked is not None and isinstance(value, masked):
        raise TypeError(
            f"{name}: masked arrays are not supported (the mask would be silently "
            "dropped); pass weights=~mask or select the valid elements"
        )


def as_array(name: str, value: Any, kinds: str, what: str) -> np.ndarray:
    """`value` as an ndarray (no copy when it is one) of a dtype kind in `kinds`."""
    if type(value) is np.ndarray and value.dtype.kind in kinds and value.dtype.itemsize <= 8:
        return value  # the common case, checked first: a call costs microseconds
    _reject_masked(name, value)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected {what}, got a string")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}: expected {what}; could not make an array ({error})") from None
    if array.dtype.kind not in kinds:
        raise TypeError(f"{name}: expected {what}, got an array of dtype {array.dtype}")
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        raise TypeError(
            f"{name}: dtype {array.dtype} (long double) is not supported; use float64 or float32"
        )
    return array


def logits_array(logits: Any) -> Tuple[np.ndarray, np.dtype]:
    """The logits and the dtype of every result computed from them.

    float32 and float64 keep their dtype; float16 is computed in float32;
    integers are converted as NumPy's own math functions convert them.
    """
    x = as_array("logits", logits, "iuf", "a real array (float16, float32, float64 or integer)")
    result = _RESULT_DTYPES.get(x.dtype.char)
    if result is None:
        dtype = np.result_type(x.dtype, np.float16)
        result = _FLOAT64 if dtype == np.float64 else _FLOAT32
    return x, result


def target_array(targets: Any, x: np.ndarray) -> Tuple[np.ndarray, bool]:
    """The targets and whether they are class indices (one dimension fewer)."""
    t = as_array("targets", targets, "biuf", "an array of targets in [0, 1] or of class indices")
    if t.ndim == x.ndim:
        if any(n != m and n != 1 for n, m in zip(t.shape, x.shape)):
            raise ValueError(
                f"targets: shape {t.shape} does not match logits shape {x.shape}; each "
                "dimension must equal the logits' or be 1"
            )
        return t, False
    if t.ndim == x.ndim - 1:
        if t.dtype.kind not in "iu":
            raise TypeError(
                f"targets: with one dimension fewer than the logits, targets are class "
                f"indices and must be integers, got dtype {t.dtype}"
            )
        if t.shape != x.shape[:-1]:
            raise ValueError(
                f"targets: class indices must have shape logits.shape[:-1] = {x.shape[:-1]}, "
                f"got {t.shape}"
            )
        refuse_unrepresentable_labels("targets", t)
        return t, True
    raise ValueError(
        f"targets: expected dense targets of shape {x.shape} (or broadcastable, with "
        f"{x.ndim} dimensions) or class indices of shape {x.shape[:-1]}, got shape {t.shape}"
    )


def refuse_unrepresentable_labels(name: str, labels: np.ndarray) -> None:
    """Unsigned 64-bit class indices past intp's range would wrap (the largest to
    -1, a common ignore_index) or clamp inside C: refuse them here."""
    if labels.dtype.kind == "u" and labels.dtype.itemsize == 8 and labels.size:
        largest = labels.max()
        if int(largest) > np.iinfo(np.intp).max:
            raise ValueError(f"{name}: class index {largest} is out of range")


def real_scalar(name: str, value: Any, what: str) -> float:
    """A real Python or NumPy scalar (or 0-d array) as a float; bool is refused."""
    if type(value) is float:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{name}: expected {what}, got an integer too large for a float") from None
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected {what}, got {value!r}")
    _reject_masked(name, value)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise TypeError(f"{name}: expected {what}, got {value!r}") from None
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected {what}, got {value!r}")
    return float(array)


def gamma_value(gamma: Any, *, positive: bool = False) -> float:
    bound = "> 0" if positive else ">= 0"
    value = real_scalar("gamma", gamma, f"a finite real number {bound}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"gamma: expected a finite real number {bound}, got {value!r}")
    return value


def alpha_values(alpha: Any, x: np.ndarray) -> Tuple[Optional[float], Optional[np.ndarray]]:
    """(scalar alpha or None, per-class alpha array or None)."""
    if alpha is None:
        return None, None
    if type(alpha) is float and 0.0 <= alpha <= 1.0:
        return alpha, None
    what = "None, a number in [0, 1], or one value in [0, 1] per class"
    if isinstance(alpha, (bool, np.bool_, str, bytes)):
        raise TypeError(f"alpha: expected {what}, got {alpha!r}")
    array = as_array("alpha", alpha, "iuf", what)
    if array.ndim == 0:
        value = float(array)
        if value < 0:
            raise ValueError(
                f"alpha: {value!r} is outside [0, 1]; to turn alpha weighting off pass "
                "alpha=None (torchvision's alpha=-1 means the same)"
            )
        if not 0 <= value <= 1:
            raise ValueError(f"alpha: expected a number in [0, 1], got {value!r}")
        return value, None
    if array.ndim != 1:
        raise ValueError(f"alpha: expected a scalar or a 1-D array, got shape {array.shape}")
    num_classes = x.shape[-1] if x.ndim else 0
    if x.ndim == 0 or array.shape[0] != num_classes:
        raise ValueError(
            f"alpha: expected {num_classes} values, one per class (the last axis of the "
            f"logits), got {array.shape[0]}"
        )
    if not within_unit_interval(array):
        raise ValueError("alpha: every per-class value must lie in [0, 1] (NaN is not allowed)")
    return None, array  # read in place by the C pass (any real dtype, layout, byte order)


def within_unit_interval(values: np.ndarray) -> bool:
    """Whether every value lies in [0, 1] (NaN does not), without a temporary
    of the array's size: two reductions, in which NaN propagates."""
    if values.size == 0:
        return True
    return bool(values.min() >= 0) and bool(values.max() <= 1)


def reduction_value(reduction: Any) -> str:
    if reduction in REDUCTIONS and type(reduction) is str:
        return reduction
    if not isinstance(reduction, str):
        raise TypeError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def ignore_index_value(ignore_index: Any, num_classes: int, labels: bool) -> int:
    if type(ignore_index) is int and not (labels and 0 <= ignore_index <= num_classes) and (
            -(2**62) <= ignore_index <= 2**62):
        return ignore_index
    if isinstance(ignore_index, (bool, np.bool_)):
        raise TypeError(f"ignore_index: expected an integer, got {ignore_index!r}")
    try:
        value = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index: expected an integer, got {ignore_index!r}") from None
    info = np.iinfo(np.intp)
    if not info.min <= value <= info.max:
        raise ValueError(f"ignore_index: {value} does not fit in a C index")
    if labels and 0 <= value <= num_classes:
        raise ValueError(
            f"ignore_index: {value} is a valid class index (classes are 0..{num_classes - 1} "
            f"and {num_classes} marks a background row); choose a value outside "
            f"[0, {num_classes}], such as -1"
        )
    return value


def weights_array(weights: Any, x: np.ndarray) -> Optional[np.ndarray]:
    if weights is None:
        return None
    w = as_array("weights", weights, "biuf", "a real array broadcastable to the logits")
    try:
        shape = np.broadcast_shapes(w.shape, x.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ValueError(
            f"weights: shape {w.shape} is not broadcastable to the logits' shape {x.shape}"
        )
    return w


# the array's own attributes, which a subclass cannot override (the C pass
# writes through them, whatever the subclass's properties say)
_ARRAY_SHAPE = np.ndarray.shape.__get__
_ARRAY_DTYPE = np.ndarray.dtype.__get__
_ARRAY_FLAGS = np.ndarray.flags.__get__


def out_array(out: Any, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    masked = _masked_array_type()
    if masked is not None and isinstance(out, masked):
        raise TypeError("out: expected a plain NumPy array, got a masked array")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a NumPy array, got {type(out).__name__}")
    out_shape = _ARRAY_SHAPE(out)
    if out_shape != shape:
        raise ValueError(f"out: expected shape {shape} (the logits' shape), got {out_shape}")
    out_dtype = _ARRAY_DTYPE(out)
    if out_dtype != dtype:
        raise TypeError(f"out: expected dtype {dtype} (the result dtype), got {out_dtype}")
    if not _ARRAY_FLAGS(out).writeable:
        raise ValueError("out: the array is read-only")
    return out


def plain(out: np.ndarray) -> np.ndarray:
    """`out` itself, or for a subclass a plain ndarray view of it: the
    computation then calls none of the subclass's methods or overrides
    (__array_function__ included); the caller still returns `out` itself."""
    return out if type(out) is np.ndarray else np.ndarray.view(out, np.ndarray)


def new_result(shape: Tuple[int, ...], dtype: np.dtype, name: str = "logits") -> np.ndarray:
    """An uninitialised result array of the inputs' shape.

    NumPy refuses an array of more than 2**63 - 1 bytes with a ValueError of
    its own: a float32 result of an int8 broadcast view of 2**62 elements is
    one.  Said here with the argument's name; a result that fits the address
    space but not memory stays NumPy's MemoryError.
    """
    try:
        return np.empty(shape, dtype)
    except ValueError:
        raise ValueError(
            f"{name}: a result of shape {shape} and dtype {dtype} would be larger than the "
            "largest array NumPy can make; reduce the input or use a reduction") from None


def probability(name: str, value: Any) -> float:
    number = real_scalar(name, value, "a probability strictly between 0 and 1")
    if not 0 < number < 1:
        raise ValueError(f"{name}: expected a probability strictly between 0 and 1, got {number!r}")
    return number

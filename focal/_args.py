"""Argument checks shared by the public functions.

Every check raises a TypeError (wrong kind of thing) or a ValueError (right
kind, wrong value or shape) whose message starts with the argument's name and
says what was expected.  Nothing here copies a large array or modifies an input.
"""
from __future__ import annotations

import contextlib
import contextvars
import fractions
import itertools
import math
import numbers
import operator
import re
import sys
import types
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _overlap as _overlap_module

REDUCTIONS = ("none", "sum", "mean", "sum_over_positives")
SOFTMAX_REDUCTIONS = ("none", "sum", "mean")
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


def _is_masked(value: Any) -> bool:
    masked = _masked_array_type()
    return masked is not None and isinstance(value, masked)


def _reject_masked(name: str, value: Any) -> None:
    if _is_masked(value):
        raise TypeError(
            f"{name}: masked arrays are not supported (the mask would be silently "
            "dropped); pass weights=~mask or select the valid elements"
        )


def renamed(compute: Callable[..., Any], names: Tuple[Tuple[str, str], ...]) -> Callable[..., Any]:
    """`compute` with its messages naming the caller's arguments: `names` pairs
    focal's prefix of a message ("targets:") with the caller's ("labels:"),
    for the adapters whose arguments bear other names.  The names are replaced
    as words throughout a message ("weights: ... does not broadcast to logits
    shape" names the caller's `inputs` too), each once: a pair that swaps two
    names stays a swap."""
    words = {focal_name.rstrip(":"): own_name.rstrip(":") for focal_name, own_name in names}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b")

    def call(*args: Any) -> Any:
        try:
            return compute(*args)
        except (TypeError, ValueError) as error:
            message = str(error)
            own = pattern.sub(lambda word: words[word.group(1)], message)
            if own != message:
                raise type(error)(own) from None
            raise
    return call


def as_array(name: str, value: Any, kinds: str, what: str,
             keep_bfloat16: bool = False) -> np.ndarray:
    """`value` as an ndarray (no copy when it is one) of a dtype kind in `kinds`;
    bfloat16 kept as it is with `keep_bfloat16` (a pass that casts it itself)."""
    if type(value) is np.ndarray and value.dtype.kind in kinds and value.dtype.itemsize <= 8:
        return value  # the common case, checked first: a call costs microseconds
    _reject_masked(name, value)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected {what}, got a string")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}: expected {what}; could not make an array ({error})") from None
    if "f" in kinds and is_bfloat16(array.dtype):
        # ml_dtypes' bfloat16 (JAX, Keras): computed in float32 like float16.
        # The elementwise pass casts it block by block through NumPy's
        # iterator (ml_dtypes registers the cast); elsewhere it is the one
        # input converted before the pass: a float32 copy, twice its size.
        return array if keep_bfloat16 else converted(name, array, _FLOAT32)
    if array.dtype.kind not in kinds:
        raise TypeError(f"{name}: expected {what}, got an array of dtype {array.dtype}")
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        raise TypeError(
            f"{name}: dtype {array.dtype} (long double) is not supported; use float64 or float32"
        )
    return array


# --------------------------------------------------------------------------
# whole-array passes made in Python, in pieces
#
# NumPy checks no signal inside a reduction or a cast: a pass over a large
# array (a zero-stride view may have 2**61 elements; a float16 one is
# reduced at about 2 ns an element) would hold Ctrl-C for seconds or hours
# before the C pass, which checks for signals, even starts.  The passes here
# go through the array a piece at a time, and the interpreter runs pending
# signal handlers between pieces; a piece takes a few milliseconds at most.
# Each step is a C call (ufunc reductions rather than the methods, which run
# through NumPy's Python code): Ctrl-C is raised in these functions' frames.

# elements of one piece
_PIECE = 1 << 20
# elements of a piece of weights whose mask and copy are a scan's temporaries
# (256 KiB of float64 at most)
_WEIGHT_PIECE = 1 << 15
# elements of a float16 piece cast to float32 for a scan: a 64 KiB scratch,
# the size of NumPy's own buffers (pieces of _PIECE took 4 MiB)
_CAST_PIECE = 1 << 14


def _piece_indices(shape: Tuple[int, ...],
                   size: int) -> Iterator[Tuple[Union[int, slice], ...]]:
    """Indices cutting an array of `shape` into pieces of at most `size`
    elements, in C order (each piece is a run of consecutive C-order flat
    indices).  The trailing axes that fit a piece are taken whole, the axis
    before them in runs, each earlier index one at a time; every piece but
    the last of a run holds at least half of `size` elements, so there are
    at most about 2 (array size) / size + 1 of them."""
    inner, axis = 1, len(shape)
    while axis > 0 and inner * shape[axis - 1] <= size:
        axis -= 1
        inner *= shape[axis]
    if axis == 0:
        yield ()
        return
    axis -= 1  # the axis cut in runs
    step = max(1, size // inner)
    for outer in itertools.product(*map(range, shape[:axis])):
        for start in range(0, shape[axis], step):
            yield outer + (slice(start, start + step),)


def pieces(*arrays: np.ndarray, c_order: bool = False,
           size: Optional[int] = None) -> Iterator[Tuple[np.ndarray, ...]]:
    """Views of `arrays` (all of one shape) a piece at a time: each tuple holds
    the same elements of every array, and the pieces together hold every
    element once.  Cut in the memory order of the first array (its axes by
    decreasing stride, so that a piece is read in few runs of memory), or
    with `c_order`, in C order; at most `size` elements a piece (_PIECE by
    default).  No data is copied."""
    views = list(arrays)
    if not c_order and views[0].ndim > 1:
        strides = views[0].strides
        axes = sorted(range(views[0].ndim), key=lambda a: -abs(strides[a]))
        views = [np.ndarray.transpose(v, axes) for v in views]
    for index in _piece_indices(views[0].shape, _PIECE if size is None else size):
        yield tuple(v[index + (Ellipsis,)] for v in views)  # (arrays, also 0-d)


def _readable_pieces(values: np.ndarray) -> Iterator[np.ndarray]:
    """The pieces of `values`; float16 ones cast to float32 in a scratch
    array of _CAST_PIECE elements (exact, and NumPy reduces float32 several
    times faster)."""
    if values.dtype.char != "e":
        for (piece,) in pieces(values):
            yield piece
        return
    scratch = np.empty(_CAST_PIECE, _FLOAT32)
    for (piece,) in pieces(values, size=_CAST_PIECE):
        part = scratch[:piece.size].reshape(piece.shape)
        part[...] = piece
        yield part


def _distinct(values: np.ndarray) -> np.ndarray:
    """`values` with each axis of stride 0 cut to its first entry: the same
    values, read once (a per-class alpha broadcast over 2**34 classes was
    read whole, 13 s, before the output's allocation failed)."""
    if values.size == 0 or 0 not in values.strides:
        return values
    return values[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in values.strides)]


def largest(values: np.ndarray) -> Any:
    """values.max() of a non-empty array, NaN propagating, read in pieces."""
    values = _distinct(values)
    if values.size <= _PIECE:
        return np.maximum.reduce(values, axis=None)
    result: Any = None
    for piece in _readable_pieces(values):
        high = np.maximum.reduce(piece, axis=None)
        result = high if result is None else np.maximum(result, high)
    return result


def extremes(values: np.ndarray) -> Tuple[Any, Any]:
    """(min, max) of a non-empty array, NaN propagating, read in pieces
    (each piece reduced twice while it is in the cache)."""
    values = _distinct(values)
    if values.size <= _PIECE:
        return np.minimum.reduce(values, axis=None), np.maximum.reduce(values, axis=None)
    low: Any = None
    high: Any = None
    for piece in _readable_pieces(values):
        piece_low = np.minimum.reduce(piece, axis=None)
        piece_high = np.maximum.reduce(piece, axis=None)
        if low is None:
            low, high = piece_low, piece_high
        else:
            low, high = np.minimum(low, piece_low), np.maximum(high, piece_high)
    return low, high


def converted(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """array.astype(dtype) (a new array of the same layout), cast in pieces;
    a copy larger than NumPy's largest array is refused naming `name`."""
    if array.size <= _PIECE:
        return array.astype(dtype)
    try:
        result = np.empty_like(array, dtype=dtype)
    except ValueError:  # NumPy's "array is too big": more than 2**63 - 1 bytes
        raise ValueError(
            f"{name}: a {dtype} copy of shape {array.shape} would be larger than the largest "
            "array NumPy can make") from None
    for source, target in pieces(array, result):
        target[...] = source
    return result


def is_bfloat16(dtype: np.dtype) -> bool:
    """Whether `dtype` is ml_dtypes' bfloat16 (an extension dtype of kind "V").

    Told by its name and module, so ml_dtypes is never imported here: without
    it no such array can exist."""
    return dtype.kind == "V" and dtype.name == "bfloat16" and (
        getattr(dtype.type, "__module__", "").split(".")[0] == "ml_dtypes")


def logits_array(logits: Any, keep_bfloat16: bool = False) -> Tuple[np.ndarray, np.dtype]:
    """The logits and the dtype of every result computed from them.

    float32 and float64 keep their dtype; float16 and bfloat16 are computed
    in float32 (bfloat16 kept as it is with `keep_bfloat16`, for a pass that
    casts it); integers are converted as NumPy's own math functions convert
    them.
    """
    x = as_array("logits", logits, "iuf", "a real array (float16, float32, float64 or integer)",
                 keep_bfloat16)
    if is_bfloat16(x.dtype):
        return x, _FLOAT32
    result = _RESULT_DTYPES.get(x.dtype.char)
    if result is None:
        dtype = np.result_type(x.dtype, np.float16)
        result = _FLOAT64 if dtype == np.float64 else _FLOAT32
    return x, result


# Set by the adapters around the calls they make on a user's behalf once they
# have warned themselves, at the user's line and in their own arguments' names
# (focal.jax's `labels`); a context variable: those calls run in Dask's worker
# threads and in XLA's host calls, where a warnings filter would be global.
_ADAPTER_WARNED: contextvars.ContextVar[bool] = contextvars.ContextVar("focal_adapter_warned",
                                                                      default=False)


@contextlib.contextmanager
def adapter_warned() -> Iterator[None]:
    """focal's own warnings about its arguments (warn_at_caller) left out."""
    token = _ADAPTER_WARNED.set(True)
    try:
        yield
    finally:
        _ADAPTER_WARNED.reset(token)


# the packages focal is called through: its own layers, and those of the
# frameworks its adapters hand calls to (torch's autograd, jax's transformations)
_THROUGH = ("focal", "torch", "jax", "jaxlib")


def warn_at_caller(message: str) -> None:
    """A UserWarning at the first frame outside focal and the frameworks it
    is called through: the user's line, however many layers lie between."""
    if _ADAPTER_WARNED.get():
        return
    frame: Optional[types.FrameType] = sys._getframe(1)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in _THROUGH:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def one_class_indices(name: str) -> str:
    """The warning about class indices over one class (see focal._sigmoid)."""
    return (f"{name}: class indices over a class axis of one class (the logits' last axis has "
            "length 1): index 0 makes that class positive and 1 (background) negative, the "
            f"reverse of 0/1 labels, which take the logits' shape ({name}[..., None])")


def one_class_softmax(name: str, axis_name: str, axis: int) -> str:
    """The warning about a softmax over one class (see focal._softmax)."""
    return (f"{name}: the class {axis_name} ({axis_name} {axis}) has a single class; the softmax "
            "over it is 1 and the focal loss identically 0")


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
        index = largest(labels)
        if int(index) > np.iinfo(np.intp).max:
            raise ValueError(f"{name}: class index {index} is out of range")


def real_scalar(name: str, value: Any, what: str) -> float:
    """A real scalar as a float; bool, complex and strings are refused.

    Python and NumPy numbers, 0-d arrays of them, any other `numbers.Real`
    (a Fraction) and ml_dtypes' scalars (bfloat16, float8, ...) are taken,
    each converted as float() converts it (the nearest double)."""
    if type(value) is float:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _float_of(name, value, what)
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected {what}, got {value!r}")
    _reject_masked(name, value)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise TypeError(f"{name}: expected {what}, got {value!r}") from None
    if array.ndim == 0:
        if array.dtype.kind in "iuf":
            return float(array)
        if array.dtype.kind == "O":  # a number NumPy does not know, such as a Fraction
            number = array.item()
            if isinstance(number, numbers.Real) and not isinstance(number, bool):
                return _float_of(name, number, what)
        if _is_ml_dtypes(array.dtype):  # kind "V": NumPy casts it through ml_dtypes' casts
            return float(array.astype(_FLOAT64))
    raise TypeError(f"{name}: expected {what}, got {value!r}")


def _float_of(name: str, number: Any, what: str) -> float:
    """float(number), an OverflowError said with the argument's name."""
    try:
        return float(number)
    except OverflowError:
        raise ValueError(f"{name}: expected {what}, got a number too large for a float") from None


def _is_ml_dtypes(dtype: np.dtype) -> bool:
    """Whether `dtype` is one of ml_dtypes' (bfloat16, float8_*, int4, ...), which
    are real numbers NumPy can cast to float64; told as is_bfloat16 tells them."""
    return dtype.kind == "V" and (
        getattr(dtype.type, "__module__", "").split(".")[0] == "ml_dtypes")


def gamma_value(gamma: Any, *, positive: bool = False) -> float:
    bound = "> 0" if positive else ">= 0"
    value = real_scalar("gamma", gamma, f"a finite real number {bound}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"gamma: expected a finite real number {bound}, got {value!r}")
    return value


def alpha_values(alpha: Any, x: np.ndarray) -> Tuple[Optional[float], Optional[np.ndarray]]:
    """(scalar alpha or None, per-class alpha array or None) of the sigmoid
    forms, whose classes are the last axis of the logits."""
    return class_alpha(alpha, x.shape[-1] if x.ndim else None, class_axis=None)


def class_alpha(alpha: Any, num_classes: Optional[int], class_axis: Optional[int]
                ) -> Tuple[Optional[float], Optional[np.ndarray]]:
    """(scalar alpha or None, per-class alpha array or None).

    `num_classes` is None for 0-d logits (no class axis); `class_axis` is None
    for the sigmoid forms (the classes are the last axis; a negative alpha gets
    torchvision's hint), the softmax's axis otherwise.
    """
    if alpha is None:
        return None, None
    if type(alpha) is float and 0.0 <= alpha <= 1.0:
        return alpha, None
    what = "None, a number in [0, 1], or one value in [0, 1] per class"
    if isinstance(alpha, (bool, np.bool_, str, bytes)):
        raise TypeError(f"alpha: expected {what}, got {alpha!r}")
    _reject_masked("alpha", alpha)
    if isinstance(alpha, np.ndarray):
        # a plain view: a subclass's own ndim or __array_function__ does not
        # answer for it (NumPy makes the view in C)
        alpha = np.asarray(alpha)
    try:
        scalar = np.ndim(alpha) == 0
    except (ValueError, TypeError):
        scalar = False  # as_array says why
    if scalar:
        value = real_scalar("alpha", alpha, what)  # read as every scalar parameter
        if value < 0 and class_axis is None:
            raise ValueError(
                f"alpha: {value!r} is outside [0, 1]; to turn alpha weighting off pass "
                "alpha=None (torchvision's alpha=-1 means the same)"
            )
        if not 0 <= value <= 1:
            raise ValueError(f"alpha: expected a number in [0, 1], got {value!r}")
        return value, None
    array = as_array("alpha", alpha, "iuf", what)
    if class_axis is not None:
        if array.ndim != 1 or array.shape[0] != num_classes:
            raise ValueError(
                f"alpha: expected a scalar or {num_classes} values (one per class along the "
                f"class axis), got shape {array.shape}"
            )
    else:
        if array.ndim != 1:
            raise ValueError(f"alpha: expected a scalar or a 1-D array, got shape {array.shape}")
        if num_classes is None or array.shape[0] != num_classes:
            raise ValueError(
                f"alpha: expected {num_classes or 0} values, one per class (the last axis of the "
                f"logits), got {array.shape[0]}"
            )
    if not within_unit_interval(array):
        raise ValueError("alpha: every per-class value must lie in [0, 1] (NaN is not allowed)")
    return None, array  # read in place by the C pass (any real dtype, layout, byte order)


def within_unit_interval(values: np.ndarray) -> bool:
    """Whether every value lies in [0, 1] (NaN does not), without a temporary
    of the array's size: its extremes, in which NaN propagates, read in pieces."""
    if values.size == 0:
        return True
    low, high = extremes(values)
    return bool(low >= 0) and bool(high <= 1)


def reduction_value(reduction: Any, allowed: Tuple[str, ...] = REDUCTIONS) -> str:
    if type(reduction) is str and reduction in allowed:
        return reduction
    if not isinstance(reduction, str):
        raise TypeError(f"reduction: expected one of {allowed}, got {reduction!r}")
    if reduction not in allowed:
        raise ValueError(f"reduction: expected one of {allowed}, got {reduction!r}")
    return reduction


def normalizer_value(normalizer: Any, reduction: str) -> Optional[float]:
    """The explicit denominator of a mean, or None.

    It replaces the mean's own (the weight sum or the count of elements):
    the reduced loss is sum(w l) / normalizer and the gradient is divided by
    it alike, as in data-parallel training where the count is summed over
    every worker first.  Any other reduction has a denominator of its own,
    which the normalizer would contradict.
    """
    if normalizer is None:
        return None
    if reduction != "mean":
        raise ValueError(
            f"normalizer: replaces the denominator of reduction='mean' and cannot be "
            f"combined with reduction={reduction!r}; pass reduction='mean' or normalizer=None"
        )
    value = real_scalar("normalizer", normalizer, "a finite real number > 0")
    if not (0 < value < math.inf):
        raise ValueError(f"normalizer: expected a finite real number > 0, got {value!r}")
    return value


def axis_value(axis: Any, ndim: int) -> int:
    """A class axis of an array of `ndim` dimensions, as a non-negative index."""
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis: expected an integer, got {axis!r}")
    try:
        value = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis: expected an integer, got {axis!r}") from None
    if not -ndim <= value < ndim:
        raise ValueError(f"axis: {value} is out of range for logits with {ndim} dimensions")
    return value % ndim


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


def broadcast_shape(*shapes: Tuple[int, ...]) -> Tuple[int, ...]:
    """The shape the arrays of `shapes` broadcast to, by NumPy's rule; a
    ValueError where they do not.  np.broadcast_shapes takes at most 32
    dimensions, NumPy's arrays up to 64: logits of 33 dimensions with weights
    met its RuntimeError."""
    ndim = max((len(shape) for shape in shapes), default=0)
    result = [1] * ndim
    for shape in shapes:
        for axis, length in enumerate(shape, ndim - len(shape)):
            if length != 1:
                if result[axis] not in (1, length):
                    raise ValueError(f"shapes {shapes} do not broadcast together")
                result[axis] = length
    return tuple(result)


def weights_array(weights: Any, x: np.ndarray, rows: Optional[Tuple[int, ...]] = None
                  ) -> Optional[np.ndarray]:
    """The weights, broadcastable to the logits (or with `rows`, the shape of
    the softmax's rows)."""
    if weights is None:
        return None
    if rows is None:
        what, target, whose = "a real array broadcastable to the logits", x.shape, "the logits'"
    else:
        what, target, whose = "row weights broadcastable to the rows", rows, "the rows'"
    w = as_array("weights", weights, "biuf", what)
    try:
        shape = broadcast_shape(w.shape, target)
    except ValueError:
        shape = None
    if shape != target:
        raise ValueError(f"weights: shape {w.shape} is not broadcastable to {whose} shape {target}")
    return w


def base_view(array: np.ndarray) -> np.ndarray:
    """A plain ndarray over the same memory as `array`, which may be a subclass.

    ndarray.view is called through the base class, so a subclass's own `view`,
    `__array_function__` or `__array_finalize__` never runs: what NumPy is
    then asked about (overlap, shape, strides) is the memory itself.
    """
    if type(array) is np.ndarray:
        return array
    return np.ndarray.view(array, np.ndarray)


def largest_counted(weights: np.ndarray, labels: np.ndarray, ignore: int,
                    shape: Tuple[int, ...]) -> Any:
    """The largest of `weights` (broadcastable to `shape`) over the elements
    whose class index in `labels` (of `shape`, or of its leading axes: one
    per row of the class axis) is not `ignore`: 0 where every one is, NaN
    propagating.  Ignored rows weigh nothing in the sums, so a heavy weight
    of theirs must not set the reductions' scale (weights of 0.5 on ignored
    rows took the others, 5e-324, below the smallest subnormal: a mean of
    0.25 for 0.283).  The largest of all the weights is the answer unless
    only ignored rows hold it (looks at the rows of one kind, stopping at
    the first that reaches it); then the rows that count are reduced on
    their own.  The weights as broadcast against the labels only (row
    weights: one per row), a piece at a time, a row longer than a piece in
    parts: the temporaries (a piece's mask and comparison) stay within
    _WEIGHT_PIECE elements whatever the class count."""
    high = largest(weights)
    if not 0 < high < math.inf:
        return high  # (a NaN, infinite or negative weight: the pass refuses it)
    rows = labels.shape
    per_row = len(shape) - labels.ndim  # (1: the sigmoid's classes; 0: the softmax's rows)
    common = broadcast_shape(weights.shape, rows + (1,) * per_row)
    w = np.broadcast_to(weights, common)

    def pieces() -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """(ignored, weights) of each piece: whether its rows are ignored
        (broadcast against its weights), and its weights"""
        for index in _piece_indices(common, _WEIGHT_PIECE):
            ignored = labels[index[:labels.ndim]] == ignore
            yield (ignored[..., None] if per_row else ignored), w[index]

    def reached(ignored: bool) -> bool:
        return any(np.any(piece >= high, where=mask == ignored) for mask, piece in pieces())

    if not reached(True) or reached(False):
        return high
    result: Any = 0.0
    for mask, piece in pieces():
        result = np.maximum(result, np.maximum.reduce(piece, axis=None, where=~mask, initial=0))
    return result


def weight_exponent(weights: Optional[np.ndarray], high: Any = None) -> int:
    """e with the largest weight times 2^-e in [1/4, 1/2): the reductions' scale.

    Weights enter the sums as w l and w; the largest near 1 keeps those sums
    from overflowing (weights of 1e308: the mean's sum of weights was inf, the
    mean 0 and its gradient 0) and the products from going subnormal (weights
    of 5e-324: w l lost every digit); below 1/2, no w l overflows either.  A
    power of two scales exactly; a weight it takes below the normal range is
    one the largest outweighs by 2^1020, below the rounding of any sum.  e
    lies within [-1072, 1025]; 2^-e is not a double below e = -1023 (all
    weights subnormal), which `_reduce.Plan` splits into two.  0 without
    weights, or when the largest is not a positive finite number (the pass
    then names the bad weight).
    """
    if weights is None or weights.size == 0:
        return 0
    # (high: the largest that counts, where the caller knows it; in pieces)
    high = float(largest(weights) if high is None else high)
    if not 0.0 < high < math.inf:
        return 0
    return math.frexp(high)[1] + 1


# the pass's second loss sum is the first times 2^-SMALL_SUM_EXPONENT
# (FOCAL_SMALL_SUM in the C core)
SMALL_SUM_EXPONENT = 64


def finite_sum(loss_sum: float, loss_sum_small: float, exponent: int) -> Tuple[float, int]:
    """(sum, its exponent): the pass's loss sum, or where that overflowed
    while its scaled twin did not, the twin and the exponent that restores it."""
    if math.isinf(loss_sum) and math.isfinite(loss_sum_small):
        return loss_sum_small, exponent + SMALL_SUM_EXPONENT
    return loss_sum, exponent


def scale_back(value: float, exponent: int) -> float:
    """value 2^exponent: a reduced loss computed with weights scaled by
    2^-exponent.  A result beyond the double range is inf: the correctly
    rounded value of a true sum that large."""
    if exponent == 0 or not math.isfinite(value):
        return value
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def result_scalar(value: float, dtype: np.dtype) -> Any:
    """A reduced value as a NumPy scalar of the result dtype.  A float32 beyond
    its range is inf, the correctly rounded value, without NumPy's warning."""
    if dtype == _FLOAT32 and abs(value) > FLOAT32_MAX:
        with np.errstate(over="ignore"):
            return dtype.type(value)
    return dtype.type(value)


# the array's own attributes, which a subclass cannot override (the C pass
# writes through them, whatever the subclass's properties say)
_ARRAY_SHAPE = np.ndarray.shape.__get__
_ARRAY_DTYPE = np.ndarray.dtype.__get__
_ARRAY_FLAGS = np.ndarray.flags.__get__


def out_array(out: Any, shape: Tuple[int, ...], dtype: np.dtype,
              shape_name: str = "the logits' shape") -> np.ndarray:
    """The checked `out`, as a plain ndarray view (the caller returns `out`
    itself); `shape_name` says in the message what `shape` is."""
    if _is_masked(out):
        raise TypeError("out: expected a plain NumPy array, got a masked array")
    if not issubclass(type(out), np.ndarray):
        raise TypeError(f"out: expected a NumPy array, got {type(out).__name__}")
    out_shape = _ARRAY_SHAPE(out)
    if out_shape != shape:
        raise ValueError(f"out: expected shape {shape} ({shape_name}), got {out_shape}")
    out_dtype = _ARRAY_DTYPE(out)
    if out_dtype != dtype:
        raise TypeError(f"out: expected dtype {dtype} (the result dtype), got {out_dtype}")
    if not _ARRAY_FLAGS(out).writeable:
        raise ValueError("out: the array is read-only")
    return base_view(out)


# Work NumPy's exact overlap solver may spend on one pair of arrays before the
# pair is taken to overlap (about a millisecond at worst; ordinary views of
# one buffer are decided in a few steps).
_OVERLAP_WORK = 100_000
_TooHardError = getattr(getattr(np, "exceptions", np), "TooHardError")


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two plain ndarrays share a byte.

    np.may_share_memory compares the bounds of the two memory extents, in
    constant time; only when those meet is np.shares_memory asked for the exact
    answer (interleaved views such as buf[::2] and buf[1::2] meet without
    sharing), with bounded work: a pair too hard to decide is taken to
    overlap, which costs memory or a pass but never a wrong result.
    """
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=_OVERLAP_WORK))  # type: ignore[arg-type]
    except _TooHardError:
        return True


def _may_overlap_itself(a: np.ndarray) -> bool:
    """Whether two elements of `a` may share memory (conservative).

    With the axes of more than one element sorted by stride, the addresses are
    distinct when every stride spans at least everything the smaller axes
    cover; any other layout (a zero stride, rows of an as_strided view that
    share elements) is taken to overlap.
    """
    if a.size <= 1:
        return False
    extent = a.itemsize
    for stride, length in sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1):
        if stride < extent:
            return True
        extent += stride * (length - 1)
    return False


def _same_elements(a: np.ndarray, out: np.ndarray) -> bool:
    """Whether `a` and `out` put every element at the same address, same dtype."""
    if a.shape != out.shape or a.dtype != out.dtype:
        return False
    if a.ctypes.data != out.ctypes.data:
        return False
    return all(s == t for s, t, n in zip(a.strides, out.strides, out.shape) if n > 1)


def resolve_out_overlap(
    out: Optional[np.ndarray],
    inputs: Dict[str, Optional[np.ndarray]],
    in_step: Tuple[str, ...] = (),
) -> Tuple[Dict[str, Optional[np.ndarray]], bool, bool]:
    """How to write into `out` when it shares memory with arguments.

    The one place every family decides overlap.  `out` is the checked plain
    view (out_array); `inputs` are the array arguments read by the pass, by
    name; `in_step` names those the pass reads element by element (row by row
    for the softmax) just before it writes the same element of `out`, so that
    one holding exactly out's elements (out=logits) can be overwritten in place.

    Returns (inputs, fresh, validate_first):
    - fresh: compute into a new array and copy it into `out` once the call has
      succeeded.  Chosen when out may overlap itself (two of its elements
      share memory: the result would depend on the order of the writes), or
      when that array is smaller than the arguments that would otherwise have
      to be copied.
    - otherwise each argument that overlaps `out` in any other way is replaced
      by a copy (an alpha or row weights are small; a copied logits array is
      the price of out= over it in another layout); and
    - validate_first: some argument shares memory with `out`, so a first pass
      must check every value before the first element is overwritten.
    Every check is made on plain ndarray views, so a subclass of `out` cannot
    answer it.
    """
    if out is None or out.size == 0:
        return inputs, False, False
    if _may_overlap_itself(out):
        return inputs, True, False
    shared, hazards = out_hazards(out, inputs, in_step)
    if not shared:
        return inputs, False, False
    if hazards:
        if sum(inputs[name].nbytes for name in hazards) >= out.nbytes:  # type: ignore
            return inputs, True, False
        inputs = dict(inputs)
        for name in hazards:
            source = inputs[name]
            assert source is not None
            inputs[name] = copy_of(source)
    return inputs, False, True


def copy_into(dst: np.ndarray, src: np.ndarray) -> None:
    """np.copyto(dst, src) (arrays of one shape) in pieces (see `pieces`), so
    that Ctrl-C ends a copy of gigabytes at once.

    The pieces follow dst's memory, axes by decreasing stride, each walked
    towards higher addresses: the order in which NumPy writes one whole
    assignment, so that where elements of dst share memory the last write
    wins as it would there.  Interrupted, dst holds the pieces written.
    """
    if dst.size <= _PIECE:
        np.copyto(dst, src)
        return
    upward = tuple(slice(None, None, -1) if s < 0 else slice(None) for s in dst.strides)
    for target, source in pieces(dst[upward], src[upward]):
        np.copyto(target, source)


def copy_of(a: np.ndarray) -> np.ndarray:
    """A copy of `a` (as a plain ndarray, its layout kept: order "K"), made in
    pieces (see copy_into)."""
    a = base_view(a)
    result = np.empty_like(a, order="K")
    copy_into(result, a)
    return result


def out_hazards(
    out: np.ndarray,
    inputs: Dict[str, Optional[np.ndarray]],
    in_step: Tuple[str, ...] = (),
) -> Tuple[List[str], List[str]]:
    """(shared, hazards): the names of the `inputs` that share memory with
    `out` (on plain views, as resolve_out_overlap decides), and of those among
    them that out would overwrite before the pass has read them (all but an
    `in_step` argument holding exactly out's elements)."""
    shared, hazards = [], []
    for name, value in inputs.items():
        if value is None:
            continue
        array = base_view(value)
        if not _overlap(array, out):
            continue
        shared.append(name)
        if not (name in in_step and _same_elements(array, out)):
            hazards.append(name)
    return shared, hazards


def may_overlap_itself(a: np.ndarray) -> bool:
    """Whether two elements of `a` may share memory (see _may_overlap_itself)."""
    return _may_overlap_itself(a)


def overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two plain ndarrays share a byte (see _overlap)."""
    return _overlap(a, b)


def reflected_out(
    out: Optional[np.ndarray],
    inputs: Sequence[Optional[np.ndarray]],
    others: Sequence[Optional[np.ndarray]] = (),
) -> Tuple[Optional[Tuple[int, ...]], List[np.ndarray]]:
    """(axes, shared) when `out` is an input with some axes reversed
    (out=logits[::-1]): every one of `inputs` that shares memory with `out`
    (decided as resolve_out_overlap decides it, on plain views) views exactly
    out's elements with those same axes reversed, none of `others` (a
    per-class alpha) shares memory with `out`, and `out` does not overlap
    itself.  Such a call is written by pairs of mirrored blocks (_overlap),
    copying no input; `shared` lists the inputs (the objects given) that out
    overwrites.  (None, []) for any other call, which resolve_out_overlap
    then handles.
    """
    if out is None or out.size == 0 or _may_overlap_itself(out):
        return None, []
    if any(o is not None and _overlap(base_view(o), out) for o in others):
        return None, []
    shared = [a for a in inputs if a is not None and _overlap(base_view(a), out)]
    if not shared:
        return None, []
    axes = _overlap_module.reflected_axes(out, [base_view(a) for a in shared])
    return (axes, shared) if axes else (None, [])


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


def log_of(ratio: fractions.Fraction) -> float:
    """log(ratio) of an exact positive rational, within 1.5 ULP.

    The prior biases are logs of ratios of probabilities and class counts
    whose logs cancel near a bias of 0 (log(K - 1) + log1p(-pi) - log(pi) was
    5.7e-16 for 3.7e-16 at K = 11, pi = 10/11): the ratio is formed exactly,
    rounded once, and its log taken as log1p of ratio - 1 (exact) near 1, or
    as its mantissa's log plus its exponent times log 2 beyond the doubles.
    """
    if fractions.Fraction(1, 2) <= ratio <= 2:
        return math.log1p(float(ratio - 1))
    shift = ratio.numerator.bit_length() - ratio.denominator.bit_length()
    if abs(shift) < 1000:  # a normal double
        return math.log(float(ratio))
    return math.log(float(ratio / fractions.Fraction(2) ** shift)) + shift * math.log(2.0)


def probability(name: str, value: Any) -> float:
    number = real_scalar(name, value, "a probability strictly between 0 and 1")
    if not 0 < number < 1:
        raise ValueError(f"{name}: expected a probability strictly between 0 and 1, got {number!r}")
    return number

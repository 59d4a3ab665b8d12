"""The focal loss of chunked `dask.array` inputs, computed block by block.

Each block is computed by the NumPy functions of `focal`; what crosses blocks
is the reduction.  "mean" and "sum_over_positives" divide by a denominator of
the whole array (the number or the weight sum of the elements not ignored,
the number of positives), so it is summed over every block first and passed
to each block as its ``normalizer``: the result equals the in-memory call on
the same data.  Every function is lazy: it returns dask arrays (a 0-d one for
a reduced loss) and computes nothing until asked.

Needs Dask: ``pip install "focal[dask]"``.
"""
from __future__ import annotations

import functools
import math
import operator
import string
from typing import Any, Callable, Dict, Optional, SupportsIndex, Tuple, TypeVar

import numpy as np

try:
    import dask.array as da
except ImportError:  # (tested in a subprocess) Dask's own error stays attached as the context
    raise ImportError('focal.dask needs Dask: install the extra with pip install "focal[dask]"')

from . import _args
from ._reduce import reduced_value
from ._typing import Real, Reduction, SoftmaxReduction
# (the families' private entries, which the public stubs do not declare: they
# give a block's loss sum unrounded, see _block_call)
from ._sigmoid import _entry as _sigmoid_entry  # type: ignore[attr-defined]
from ._softmax import _entry as _softmax_entry  # type: ignore[attr-defined]
from ._sigmoid import loss_and_grad as _np_loss_and_grad, loss as _np_loss, grad as _np_grad
from ._softmax import (softmax_grad as _np_softmax_grad, softmax_loss as _np_softmax_loss,
                       softmax_loss_and_grad as _np_softmax_loss_and_grad)

__all__ = ["loss", "grad", "loss_and_grad", "softmax_loss", "softmax_grad",
           "softmax_loss_and_grad"]

_SIGMOID_PARAMETERS = """\
logits : dask.array.Array
    Raw scores x, any shape and chunks; the last axis is the class axis.
    Each block is read as `focal.loss` reads an array.
targets : dask.array.Array
    Dense targets y in [0, 1] with as many dimensions as `logits` (each
    equal or 1), chunked like `logits` along the axes they share; or integer
    class indices of shape ``logits.shape[:-1]`` chunked like
    ``logits.chunks[:-1]``, and then the class axis of `logits` must be one
    chunk (``logits.rechunk({-1: -1})``): a row's classes are read together.
alpha : None, float or array_like, default 0.25
    Weight of the positive targets, as in `focal.loss`: a float in [0, 1],
    one value per class (length C), or None.
gamma : float, default 2.0
    Focusing parameter >= 0.
reduction : {"mean", "sum", "none", "sum_over_positives"}, default "mean"
    As in `focal.loss`; the denominators of "mean" and
    "sum_over_positives" are those of the whole array.
weights : dask.array.Array, optional
    Non-negative weights broadcastable to ``logits.shape``, chunked like
    `logits` along the axes where they are not broadcast.
ignore_index : int, default -1
    With class-index targets, the value that marks an ignored row.
normalizer : float, optional
    With reduction="mean", the mean's denominator given instead of the
    whole array's count or weight sum, as in `focal.loss`.  A number: a
    dask array here (as alpha, gamma or ignore_index) is refused, since it
    would be computed while the graph is built; compute it first."""

_SOFTMAX_PARAMETERS = """\
logits : dask.array.Array
    Raw scores, any shape; `axis` is the class axis, which must be one
    chunk (``logits.rechunk({axis: -1})``): the softmax reads a whole row.
labels : dask.array.Array
    Integer class indices with the logits' shape minus `axis`, chunked like
    `logits` along the other axes; or dense probability targets of the
    logits' shape and chunks.
alpha : None, float or array_like, default None
    As in `focal.softmax_loss`: None, a number, or one value per class.
gamma : float, default 2.0
    Focusing parameter >= 0.
axis : int, default -1
    The class axis.
reduction : {"mean", "sum", "none"}, default "mean"
    As in `focal.softmax_loss`; the mean's denominator is that of the whole
    array.
weights : dask.array.Array, optional
    Non-negative row weights broadcastable to the rows' shape (the logits'
    shape minus `axis`), chunked like the rows where not broadcast.
ignore_index : int, default -100
    The class index that marks an ignored row.
normalizer : float, optional
    With reduction="mean", the mean's denominator given instead of the
    whole array's row count or weight sum, as in `focal.softmax_loss`.  A
    number: a dask array here (as alpha, gamma or ignore_index) is refused,
    since it would be computed while the graph is built; compute it first."""

_NOTES = """\
Each block runs the NumPy function of the same name.  For "mean" and
"sum_over_positives", a first pass over the targets and weights alone (no
logits, no loss) sums the denominator of the whole array.  Each block is then
the NumPy call with that denominator as its ``normalizer``: its gradient is
divided inside the pass and rounded once, in the logits' dtype (no copy of
the block in float64), and the loss is the sum of the blocks' unrounded
double loss sums, divided once and rounded once.  So the result does not
depend on the chunks: it is the in-memory call's up to the order of the
double sums (the denominator's and the loss's), a few units in the last
place in float64; in float32 both are one rounding of double values a few
double ulps apart, so they agree within one unit in the last place (and
almost always bit for bit).  With ``reduction="none"`` each block is the
in-memory call on that block, bit for bit.  Weights near the ends of the
double range (beyond 2^300 or below 2^-300) are scaled by a power of two for
the weighted mean, as in memory: a weight sum beyond the double range (1e308
weights) or subnormal products with the loss still give the in-memory
result (at the cost of a temporary of each block of the weights).

Arguments are checked when the function is called, without computing
anything: dask arrays with known chunks that line up, and alpha, gamma,
reduction and ignore_index as the NumPy function checks them.  Values
(class indices out of range, targets outside [0, 1], negative weights) are
checked by the NumPy function as each block is computed, and raise then."""


_Function = TypeVar("_Function", bound=Callable[..., Any])


def _document(parameters: str) -> Callable[[_Function], _Function]:
    # (typed to keep the function's own signature for mypy)
    def decorate(function: _Function) -> _Function:
        assert function.__doc__ is not None
        function.__doc__ = function.__doc__.format(parameters=parameters, notes=_NOTES)
        return function
    return decorate


# --- arguments -----------------------------------------------------------------------------

def _dask_array(name: str, value: Any) -> "da.Array":
    if not isinstance(value, da.Array):
        raise TypeError(
            f"{name}: expected a dask.array.Array, got {type(value).__module__}."
            f"{type(value).__name__}; wrap an in-memory array with "
            "dask.array.from_array(array, chunks=...), or call the NumPy function in focal"
        )
    if any(math.isnan(size) for sizes in value.chunks for size in sizes):
        raise ValueError(f"{name}: the chunk sizes are unknown (nan); call "
                         f"{name}.compute_chunk_sizes() first")
    # Empty chunks are dropped (an axis of length 0 keeps its one): Dask
    # computes an axis of length 1 chunked (0, 1) wrongly in blockwise calls
    # with another argument, the row twice (dask 2026.8: x * 2 of shape
    # (1, 2) computed to shape (2, 2)), which took a mean's gradient to the
    # wrong shape and its loss to twice its value.  A mask and
    # compute_chunk_sizes(), as the message above suggests, make such chunks.
    if any(0 in sizes and len(sizes) > 1 for sizes in value.chunks):
        value = value.rechunk(tuple(tuple(size for size in sizes if size) or sizes
                                    for sizes in value.chunks))
    return value


def _refuse_lazy(**values: Any) -> None:
    """alpha, gamma, ignore_index and normalizer are numbers that shape the
    graph: a dask array there would be computed while the graph is built,
    against the promise that nothing is computed until asked."""
    for name, value in values.items():
        if isinstance(value, da.Array):
            raise TypeError(
                f"{name}: expected a number or an in-memory array, got a dask array (it would "
                f"be computed while the graph is built); compute it first: "
                f"{name}={name}.compute()"
            )


def _aligned(name: str, value: "da.Array", shape: Tuple[int, ...],
             chunks: Tuple[Tuple[int, ...], ...], reference: str) -> "da.Array":
    """`value` broadcast to `shape` with `chunks`, lazily; its axes of the
    full length must already have those chunks (no silent rechunking)."""
    offset = len(shape) - value.ndim
    for axis, (size, sizes) in enumerate(zip(value.shape, value.chunks)):
        full = axis + offset
        if size != 1 and sizes != chunks[full]:
            raise ValueError(
                f"{name}: chunks {sizes} along axis {axis} do not match the chunks "
                f"{chunks[full]} of {reference}; rechunk it alike "
                f"({name}.rechunk(...)) so that the blocks line up"
            )
    if value.shape == shape:
        return value
    return da.broadcast_to(value, shape, chunks=chunks)


def _broadcastable(name: str, value: "da.Array", shape: Tuple[int, ...], what: str) -> None:
    try:
        broadcast = _args.broadcast_shape(value.shape, shape)
    except ValueError:
        broadcast = None
    if broadcast != shape:
        raise ValueError(f"{name}: shape {value.shape} is not broadcastable to {what} {shape}")


def _class_axis_whole(logits: "da.Array", axis: int, why: str) -> None:
    if logits.numblocks[axis] > 1:
        raise ValueError(
            f"logits: the class axis ({axis}) is split into {logits.numblocks[axis]} chunks "
            f"{logits.chunks[axis]}; {why}, so it must be one chunk: "
            f"logits.rechunk({{{axis}: -1}})"
        )


def _axis_value(axis: Any, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis: expected an integer, got {axis!r}")
    try:
        value = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis: expected an integer, got {axis!r}") from None
    if not -ndim <= value < ndim:
        raise ValueError(f"axis: {value} is out of range for logits with {ndim} dimensions")
    return value % ndim


def _probe_arrays(logits: "da.Array", targets: "da.Array", weights: Optional["da.Array"],
                  class_axis: int, class_indices: bool, row_weights: bool, alpha: Any):
    """Arrays of one row with the dtypes of the dask arrays: the NumPy
    function, called on them, checks every argument but the data as it
    would check them in memory, and tells the result dtype.

    The row holds at most two classes, or all of them where the checks
    count them: a per-class alpha (a NumPy array the caller holds) must
    match them, and class indices (whose class axis is one chunk) are
    checked against them, ignore_index too.  A whole class axis was the
    whole input for one-dimensional logits, made and computed on the client
    while the graph was built (2**28 margins: 3 GiB traced).
    """
    shape = tuple(min(size, 1) for size in logits.shape)
    if logits.ndim:
        classes = logits.shape[class_axis]
        counted = class_indices or (alpha is not None and np.ndim(alpha) == 1)
        kept = classes if counted else min(classes, 2)
        shape = shape[:class_axis] + (kept,) + shape[class_axis + 1:]
    row_shape = shape[:class_axis] + shape[class_axis + 1:] if logits.ndim else ()
    x = np.zeros(shape, dtype=logits.dtype)
    t = np.zeros(row_shape if class_indices else shape, dtype=targets.dtype)
    w = None
    if weights is not None:
        w = np.ones(row_shape if row_weights else shape, dtype=weights.dtype)
    return x, t, w


# --- the blocks ----------------------------------------------------------------------------

def _block_call(entry: Callable[..., Any], x: np.ndarray, t: np.ndarray, w: Any,
                alpha: Any, options: Dict[str, Any], divisor: Any, want_loss: bool,
                want_grad: bool, ndim: int):
    """One block: (its loss, its gradient), each None when not wanted.

    With reduction="none", the loss is per element (per row), the block is
    the in-memory call on it.  Otherwise the block is the NumPy call with
    reduction="mean" and the global divisor as its normalizer (1 for "sum",
    and when no gradient is wanted): its gradient is divided inside the pass
    and rounded once, in the logits' dtype.  Its loss is the block's sum
    s 2^e of w l, unrounded and undivided, as a block of one element
    [s, e] along a last axis of 2, so that the sums of every block are
    added before the one division.
    """
    mode = (want_loss, want_grad, False, "grad" if want_grad else "loss")
    if options["reduction"] == "none":
        loss_value, gradient, _ = entry(mode, x, t, alpha, weights=w, **options)
        return loss_value, gradient
    normalizer, exponent = 1.0, 0
    if divisor is not None:
        normalizer, exponent = float(divisor[0]), int(divisor[1])
    if exponent:
        # a weighted mean whose weights lie near the ends of the double range:
        # the divisor is their sum times 2^-exponent, so they are scaled alike
        # (exactly: a power of two; temporaries of the weights' block only).
        # A weight that counts is at most that sum; one the scale takes past
        # the range is an ignored row's, which weighs nothing: it is left at
        # the largest double (an infinite, NaN or negative weight stays, to be
        # refused: a negative one's -inf too)
        given = np.asarray(w, dtype=np.float64)
        with np.errstate(over="ignore"):
            w = np.asarray(np.ldexp(given, -exponent))  # (a 0-d block's is a scalar)
        np.copyto(w, np.finfo(np.float64).max, where=(w == np.inf) & np.isfinite(given))
    loss_sum, gradient, _ = entry(mode, x, t, alpha, weights=w,
                                  **{**options, "reduction": "mean"},
                                  normalizer=normalizer, raw_sum=True)
    if loss_sum is not None:
        loss_sum = np.array([loss_sum[0], loss_sum[1] + exponent],
                            dtype=np.float64).reshape((1,) * ndim + (2,))
    return loss_sum, gradient


def _block_task(entry, weighted, alpha_blocks, divided, alpha, options, want_loss,
                want_grad, x, t, *rest):
    """_block_call with the blocks of the optional arguments in `rest`: the
    weights, the per-class alpha, the divisor, each when present."""
    rest = list(rest)
    w = rest.pop(0) if weighted else None
    alpha = rest.pop(0) if alpha_blocks else alpha
    divisor = rest.pop(0) if divided else None
    # (the call that built the graph gave focal's warnings, at the user's line)
    with _args.adapter_warned():
        return _block_call(entry, x, t, w, alpha, options, divisor, want_loss, want_grad, x.ndim)


# Weights whose largest lies beyond 2^+-_EXTREME are scaled by a power of two
# for the weighted mean (as the NumPy functions do, see _args.weight_exponent):
# their sum could overflow, or their products with the loss lose digits below
# the normal range.  Others are read as they are (no temporary).
_EXTREME = 300


def _share(denominator_block, largest_block, validate_block, weighted_mean, t, w=None):
    """A block's share [s, e] of the denominator, s 2^e, as a block of one
    element along a last axis of 2 (e is 0 but for a weighted mean, from the
    largest weight that counts: largest_block(t, w)).  The block's targets
    and weights are checked first, as the in-memory call checks them
    (validate_block): every share is computed before any block of a result
    is divided by their sum.  Left to the blocks of the result, a target of
    2, a label out of range or a weight of -5 entered the sum, and a block
    without it, computed alone (`grad(...)[:2]`), came out divided by that
    sum without an error; an infinite weight was refused as a normalizer."""
    with _args.adapter_warned():  # (as _block_task)
        validate_block(t, w)
    exponent = 0
    # (a block of no elements, from slicing or concatenating, has no largest
    # weight: it shares 0, as its denominator_block says)
    if weighted_mean and w is not None and np.size(w) > 0:
        exponent = _args.weight_exponent(np.asarray(w), largest_block(t, np.asarray(w)))
        if abs(exponent) <= _EXTREME:
            exponent = 0
        else:
            # (an ignored row's weight may pass the range: it is not summed)
            with np.errstate(over="ignore"):
                w = np.ldexp(np.asarray(w, dtype=np.float64), -exponent)
    return np.array([denominator_block(t, w), exponent],
                    dtype=np.float64).reshape((1,) * t.ndim + (2,))


def _added(sums: np.ndarray) -> Tuple[float, int]:
    """(S, E) with S 2^E the sum of the blocks' [s, e] (each s 2^e): added
    at the largest exponent of a block whose sum is not 0 (a block of zero
    weights, or of ignored rows only, says 0: taken, it pushed the others'
    scaled sums of tiny weights back below the normal range)."""
    sums = sums.reshape(-1, 2)
    counted = sums[:, 1][sums[:, 0] != 0]
    exponent = int(counted.max()) if counted.size else 0
    terms = np.ldexp(sums[:, 0], (sums[:, 1] - exponent).astype(np.int64))
    with np.errstate(over="ignore"):
        total = float(np.sum(terms))
    if math.isinf(total) and np.isfinite(terms).all():
        # finite blocks whose sum passes the double range (the in-memory
        # pass takes its sum's scaled twin there): added 2^64 times smaller
        exponent += _args.SMALL_SUM_EXPONENT
        total = float(np.sum(np.ldexp(terms, -_args.SMALL_SUM_EXPONENT)))
    return total, exponent


def _first(pair):
    return pair[0]


def _first_of_one(pairs):
    """The loss of the one block along a dropped axis (blockwise passes a list)."""
    (pair,) = pairs
    return pair[0]


def _second(pair):
    return pair[1]


def _finish_loss(loss_sums: np.ndarray, shares: np.ndarray, reduction: str,
                 dtype: np.dtype) -> np.ndarray:
    """The reduced loss from the blocks' loss sums and denominator shares,
    each [s, e] (see _block_call, _share): each added, then divided and
    scaled back as the in-memory call's (`_reduce.reduced_value`: as fractions
    with the exponents apart, so that neither a lifted sum over a tiny
    normalizer overflows nor a scaled one over a large normalizer underflows
    before it is scaled back), rounded once to the result dtype."""
    total, exponent = _added(loss_sums)
    denominator, denominator_exponent = _added(shares)
    if reduction == "sum_over_positives":
        denominator = max(denominator, 1.0)  # (a count: its exponent is 0)
    elif reduction != "mean":
        denominator, denominator_exponent = 1.0, 0
    return np.asarray(reduced_value(total, total, denominator, exponent, denominator_exponent,
                                    dtype))


def _gradient_divisor(shares: np.ndarray, reduction: str) -> np.ndarray:
    """[what the gradient of a reduced loss is divided by, the exponent e of
    the weights' scale 2^-e]: the denominator S of S 2^e (see _share), at
    least 1 for "sum_over_positives", and 1 when a mean has none (then every
    element is ignored or weighs 0, and the gradient is 0)."""
    value, exponent = _added(shares)
    if reduction == "sum_over_positives":
        value = max(value, 1.0)
    return np.array([value if value > 0 else 1.0, exponent])


# the blockwise index of the last axis of 2 of the blocks' [s, e]
_PAIR = string.ascii_letters[-1]

# an entry's mode that wants no result: its pass only checks the targets
# (labels) and weights (_pass.run)
_CHECK_ONLY = (False, False, False, "grad")


# --- the graph, shared by both families ----------------------------------------------------

def _build(entry, x, t, w, alpha, alpha_blocks, options, index, t_index, w_index,
           denominator_block, largest_block, validate_block, static_denominator, dtype,
           want_loss, want_grad, row_index=None):
    """The dask graph of one call.

    index, t_index, w_index: blockwise indices of the logits, targets and
    weights; row_index, for a softmax, that of the rows (index without the
    class axis).  denominator_block(t, w) -> the block's share of the
    denominator, or None when static_denominator (a number) is known
    without reading the data; largest_block(t, w) -> the block's largest
    weight that counts (the scale of a weighted mean's shares);
    validate_block(t, w) raises the in-memory call's error for a block's bad
    target, label or weight.
    """
    reduction = options["reduction"]
    ndim = len(index)
    arrays = [x, index, t, t_index]
    if w is not None:
        arrays += [w, w_index]
    if alpha_blocks is not None:
        arrays += [alpha_blocks, index[-1]]

    denominator = None
    if reduction in ("mean", "sum_over_positives"):
        if static_denominator is not None:
            denominator = da.from_array(np.array([float(static_denominator), 0.0]), chunks=2)
        else:
            # each block's share [s, e] along a new last axis (see _share)
            denominator = da.blockwise(
                functools.partial(_share, denominator_block, largest_block, validate_block,
                                  reduction == "mean"),
                t_index + _PAIR,
                *(arrays[2:6] if w is not None else arrays[2:4]),
                new_axes={_PAIR: 2}, adjust_chunks={letter: 1 for letter in t_index},
                dtype=np.float64, meta=np.empty((0,) * (len(t_index) + 1), dtype=np.float64),
                concatenate=True)
    if denominator is None:  # "sum"
        denominator = da.from_array(np.array([1.0, 0.0]), chunks=2)
    # the shares in one block of their own (a few numbers per block of
    # logits), its indices unlike the blocks' (letters from the end)
    denominator = denominator.rechunk(-1)
    whole = string.ascii_letters[-denominator.ndim:]
    divisor = None
    if want_grad and reduction in ("mean", "sum_over_positives"):
        divisor = da.blockwise(_gradient_divisor, "", denominator, whole, reduction, None,
                               concatenate=True, dtype=np.float64,
                               meta=np.empty((), dtype=np.float64))

    # (a partial of a module function holding only small values: the task
    # that ships to a worker carries no array but its block)
    block = functools.partial(_block_task, entry, w is not None, alpha_blocks is not None,
                              divisor is not None, alpha, options, want_loss, want_grad)

    # Each task of `pairs` computes one block's loss and gradient in one pass
    # and returns them as a pair (a chunk that is not an array: `pairs` stays
    # internal); the loss and the gradient are then taken apart from it.
    extra = [divisor, ()] if divisor is not None else []
    pairs = da.blockwise(block, index, *arrays, *extra, dtype=dtype,
                         meta=np.empty((0,) * ndim, dtype=dtype))
    gradient = None
    if want_grad:
        gradient = pairs.map_blocks(_second, dtype=dtype, meta=np.empty((0,) * ndim, dtype=dtype))
    if not want_loss:
        return None, gradient
    if reduction == "none":
        if row_index is not None:
            # a softmax loss per row: the class axis (one block) is not in the result
            loss_array = da.blockwise(_first_of_one, row_index, pairs, index, dtype=dtype,
                                      meta=np.empty((0,) * (ndim - 1), dtype=dtype))
        else:
            loss_array = pairs.map_blocks(_first, dtype=dtype,
                                          meta=np.empty((0,) * ndim, dtype=dtype))
        return loss_array, gradient
    # each block's sum as [s, e] along a new last axis (see _block_call),
    # all of them read by the one task that adds them
    sums = pairs.map_blocks(_first, chunks=tuple((1,) * n for n in pairs.numblocks) + ((2,),),
                            new_axis=ndim, dtype=np.float64,
                            meta=np.empty((0,) * (ndim + 1), dtype=np.float64))
    loss_value = da.blockwise(_finish_loss, "", sums.rechunk(-1), string.ascii_letters[:ndim + 1],
                              denominator, whole, reduction, None, dtype, None, dtype=dtype,
                              concatenate=True, meta=np.empty((), dtype=dtype))
    return loss_value, gradient


# --- the sigmoid focal loss ----------------------------------------------------------------

def _sigmoid(logits, targets, alpha, gamma, reduction, weights, ignore_index, normalizer, *,
             want_loss, want_grad):
    _refuse_lazy(alpha=alpha, gamma=gamma, ignore_index=ignore_index, normalizer=normalizer)
    x = _dask_array("logits", logits)
    t = _dask_array("targets", targets)
    w = None if weights is None else _dask_array("weights", weights)
    if t.ndim == x.ndim:
        class_indices = False
        if any(n != m and n != 1 for n, m in zip(t.shape, x.shape)):
            raise ValueError(f"targets: shape {t.shape} does not match logits shape {x.shape}; "
                             "each dimension must equal the logits' or be 1")
    elif t.ndim == x.ndim - 1:
        class_indices = True
        if t.shape != x.shape[:-1]:
            raise ValueError(f"targets: class indices must have shape logits.shape[:-1] = "
                             f"{x.shape[:-1]}, got {t.shape}")
    else:
        raise ValueError(f"targets: expected dense targets of shape {x.shape} (or "
                         f"broadcastable, with {x.ndim} dimensions) or class indices of shape "
                         f"{x.shape[:-1]}, got shape {t.shape}")
    if w is not None:
        _broadcastable("weights", w, x.shape, "the logits' shape")

    function = (_np_loss_and_grad if want_loss and want_grad
                else _np_loss if want_loss else _np_grad)
    # every argument but the data, checked as in memory, on one row
    probe_x, probe_t, probe_w = _probe_arrays(x, t, w, x.ndim - 1, class_indices, False, alpha)
    probe = function(probe_x, probe_t, alpha, gamma, reduction=reduction, weights=probe_w,
                     ignore_index=ignore_index, normalizer=normalizer)
    dtype = (probe[1] if want_loss and want_grad else probe).dtype
    reduction = str(reduction)
    ignore = operator.index(ignore_index)

    if class_indices:
        _class_axis_whole(x, x.ndim - 1, "class-index targets need each row's classes together")
        t = _aligned("targets", t, x.shape[:-1], x.chunks[:-1],
                     "logits (without the class axis)")
    else:
        t = _aligned("targets", t, x.shape, x.chunks, "logits")
    if w is not None:
        w = _aligned("weights", w, x.shape, x.chunks, "logits")
    alpha_blocks = None
    if alpha is not None and np.ndim(alpha) == 1 and x.numblocks[-1] > 1:
        # one value per class, split along the class axis like the logits
        alpha_blocks = da.from_array(np.asarray(alpha), chunks=(x.chunks[-1],))

    num_classes = x.shape[-1] if x.ndim else 1
    static = None

    def denominator_block(tb, wb):
        if reduction == "sum_over_positives":
            if class_indices:
                return np.count_nonzero((tb >= 0) & (tb < num_classes))
            return np.sum(tb, dtype=np.float64)  # soft targets count their value
        if class_indices:
            kept = tb != ignore
            if wb is None:
                return np.count_nonzero(kept) * num_classes
            # (an ignored row's sum may pass the range: it is dropped)
            with np.errstate(over="ignore"):
                return np.sum(np.sum(wb, axis=-1, dtype=np.float64)[kept])
        return np.sum(wb, dtype=np.float64)

    def largest_block(tb, wb):  # the largest weight that counts (rows not ignored)
        if class_indices:
            return _args.largest_counted(wb, tb, ignore, tb.shape + (num_classes,))
        return _args.largest(wb)

    def validate_block(tb, wb):  # (logits of the block's shape, not read)
        shape = tb.shape + (num_classes,) if class_indices else tb.shape
        _sigmoid_entry(_CHECK_ONLY, np.broadcast_to(np.float32(0), shape), tb, None, gamma,
                       weights=wb, ignore_index=ignore, plain_tried=True)

    if reduction == "mean" and w is None and not class_indices:
        static = x.size
    if normalizer is not None:  # checked by the probe: a mean's denominator given
        static = float(normalizer)
    index = string.ascii_letters[:x.ndim]
    options = dict(gamma=gamma, reduction=reduction, ignore_index=ignore_index)
    return _build(_sigmoid_entry, x, t, w, alpha, alpha_blocks, options, index,
                  index[:-1] if class_indices else index, index, denominator_block,
                  largest_block, validate_block, static, dtype, want_loss, want_grad)


@_document(_SIGMOID_PARAMETERS)
def loss(logits: Any, targets: Any, alpha: Any = 0.25, gamma: Real = 2.0, *,
         reduction: Reduction = "mean", weights: Any = None, ignore_index: SupportsIndex = -1,
         normalizer: Optional[Real] = None) -> "da.Array":
    """Sigmoid focal loss of dask arrays, block by block (lazy).

    Parameters
    ----------
    {parameters}

    Returns
    -------
    dask.array.Array
        0-d with a reduction, of the logits' shape and chunks with
        ``reduction="none"``; float64 for float64 logits, float32 for
        float32 and float16.  Nothing is computed until asked
        (``.compute()``).

    See Also
    --------
    focal.loss, grad, loss_and_grad

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import numpy as np, dask.array as da, focal, focal.dask
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(1000, 3)), rng.integers(0, 4, 1000)
    >>> lazy = focal.dask.loss(da.from_array(x, chunks=(250, 3)), da.from_array(y, chunks=250))
    >>> bool(np.isclose(lazy.compute(), focal.loss(x, y), rtol=1e-12, atol=0))
    True
    """
    return _sigmoid(logits, targets, alpha, gamma, reduction, weights, ignore_index, normalizer,
                    want_loss=True, want_grad=False)[0]


@_document(_SIGMOID_PARAMETERS)
def grad(logits: Any, targets: Any, alpha: Any = 0.25, gamma: Real = 2.0, *,
         reduction: Reduction = "mean", weights: Any = None, ignore_index: SupportsIndex = -1,
         normalizer: Optional[Real] = None) -> "da.Array":
    """Gradient of the sigmoid focal loss of dask arrays with respect to the logits (lazy).

    Parameters
    ----------
    {parameters}

    Returns
    -------
    dask.array.Array
        The gradient of the reduced loss (of each element's loss with
        ``reduction="none"``), of the logits' shape and chunks.

    See Also
    --------
    focal.grad, loss, loss_and_grad

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import numpy as np, dask.array as da, focal, focal.dask
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(1000, 3)), rng.random((1000, 3))   # soft targets
    >>> lazy = focal.dask.grad(da.from_array(x, chunks=(400, 2)), da.from_array(y, chunks=(400, 2)))
    >>> lazy.chunks
    ((400, 400, 200), (2, 1))
    >>> bool(np.allclose(lazy.compute(), focal.grad(x, y), rtol=1e-12, atol=0))
    True
    """
    return _sigmoid(logits, targets, alpha, gamma, reduction, weights, ignore_index, normalizer,
                    want_loss=False, want_grad=True)[1]


@_document(_SIGMOID_PARAMETERS)
def loss_and_grad(logits: Any, targets: Any, alpha: Any = 0.25, gamma: Real = 2.0, *,
                  reduction: Reduction = "mean", weights: Any = None,
                  ignore_index: SupportsIndex = -1, normalizer: Optional[Real] = None
                  ) -> Tuple["da.Array", "da.Array"]:
    """Sigmoid focal loss and its gradient of dask arrays, one pass per block (lazy).

    Parameters
    ----------
    {parameters}

    Returns
    -------
    loss : dask.array.Array
        As returned by `loss`.
    grad : dask.array.Array
        As returned by `grad`.  Compute both together
        (``dask.compute(loss, grad)``) so that each block is computed once.

    See Also
    --------
    focal.loss_and_grad, loss, grad

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import dask, numpy as np, dask.array as da, focal, focal.dask
    >>> x = da.random.default_rng(0).normal(size=(1000, 4), chunks=(100, 4))
    >>> y = (x[:, :1] > 1.0).astype(np.float64)   # broadcast over the classes
    >>> lazy = focal.dask.loss_and_grad(x, y, reduction="sum_over_positives")
    >>> value, gradient = dask.compute(*lazy)
    >>> gradient.shape
    (1000, 4)
    """
    loss_value, gradient = _sigmoid(logits, targets, alpha, gamma, reduction, weights,
                                    ignore_index, normalizer, want_loss=True, want_grad=True)
    return loss_value, gradient


# --- the softmax focal loss ----------------------------------------------------------------

def _softmax(logits, labels, alpha, gamma, axis, reduction, weights, ignore_index,
             normalizer, *,
             want_loss, want_grad):
    _refuse_lazy(alpha=alpha, gamma=gamma, ignore_index=ignore_index, normalizer=normalizer)
    x = _dask_array("logits", logits)
    t = _dask_array("labels", labels)
    w = None if weights is None else _dask_array("weights", weights)
    if x.ndim == 0:
        raise ValueError("logits: the softmax needs at least one axis (the classes)")
    axis = _axis_value(axis, x.ndim)
    row_shape = x.shape[:axis] + x.shape[axis + 1:]
    row_chunks = x.chunks[:axis] + x.chunks[axis + 1:]
    if t.ndim == x.ndim - 1:
        class_indices = True
        if t.shape != row_shape:
            raise ValueError(f"labels: class indices must have shape {row_shape} (the logits' "
                             f"shape minus axis {axis}), got {t.shape}")
    elif t.ndim == x.ndim:
        class_indices = False
        if t.shape != x.shape:
            raise ValueError(f"labels: dense targets must have the logits' shape {x.shape}, "
                             f"got {t.shape}")
    else:
        raise ValueError(f"labels: expected class indices of shape {row_shape} or dense "
                         f"targets of shape {x.shape}, got shape {t.shape}")
    if w is not None:
        _broadcastable("weights", w, row_shape, "the rows' shape")

    function = (_np_softmax_loss_and_grad if want_loss and want_grad
                else _np_softmax_loss if want_loss else _np_softmax_grad)
    probe_x, probe_t, probe_w = _probe_arrays(x, t, w, axis, class_indices, True, alpha)
    probe = function(probe_x, probe_t, alpha, gamma, axis=axis, reduction=reduction,
                     weights=probe_w, ignore_index=ignore_index, normalizer=normalizer)
    dtype = (probe[1] if want_loss and want_grad else probe).dtype
    reduction = str(reduction)
    ignore = operator.index(ignore_index)

    _class_axis_whole(x, axis, "the softmax reads a whole row")
    if class_indices:
        t = _aligned("labels", t, row_shape, row_chunks, "logits (without the class axis)")
    else:
        t = _aligned("labels", t, x.shape, x.chunks, "logits")
    if w is not None:
        w = _aligned("weights", w, row_shape, row_chunks, "logits (without the class axis)")

    def denominator_block(tb, wb):  # the mean's: rows not ignored, or their weights
        if not class_indices:
            return np.sum(wb, dtype=np.float64)
        kept = tb != ignore
        return np.count_nonzero(kept) if wb is None else np.sum(wb[kept], dtype=np.float64)

    def largest_block(tb, wb):  # the largest row weight that counts (rows not ignored)
        if class_indices:
            return _args.largest_counted(wb, tb, ignore, tb.shape)
        return _args.largest(wb)

    classes = (x.shape[axis],)  # (a number: a closure over x would ship x's graph)

    def validate_block(tb, wb):  # (logits of the block's shape, not read)
        shape = tb.shape[:axis] + classes + tb.shape[axis:] if class_indices else tb.shape
        _softmax_entry(_CHECK_ONLY, np.broadcast_to(np.float32(0), shape), tb, None, gamma,
                       axis=axis, weights=wb, ignore_index=ignore, plain_tried=True)

    static = math.prod(row_shape) if reduction == "mean" and w is None and not class_indices \
        else None
    if normalizer is not None:  # checked by the probe: a mean's denominator given
        static = float(normalizer)
    index = string.ascii_letters[:x.ndim]
    row_index = index[:axis] + index[axis + 1:]
    options = dict(gamma=gamma, axis=axis, reduction=reduction, ignore_index=ignore_index)
    return _build(_softmax_entry, x, t, w, alpha, None, options, index,
                  row_index if class_indices else index, row_index, denominator_block,
                  largest_block, validate_block, static, dtype, want_loss, want_grad,
                  row_index=row_index)


@_document(_SOFTMAX_PARAMETERS)
def softmax_loss(logits: Any, labels: Any, alpha: Any = None, gamma: Real = 2.0, *,
                 axis: SupportsIndex = -1, reduction: SoftmaxReduction = "mean",
                 weights: Any = None, ignore_index: SupportsIndex = -100,
                 normalizer: Optional[Real] = None) -> "da.Array":
    """Softmax focal loss of dask arrays along `axis`, block by block (lazy).

    Parameters
    ----------
    {parameters}

    Returns
    -------
    dask.array.Array
        0-d with a reduction; with ``reduction="none"`` one value per row,
        of the logits' shape and chunks without `axis`.

    See Also
    --------
    focal.softmax_loss, softmax_grad, softmax_loss_and_grad

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import numpy as np, dask.array as da, focal, focal.dask
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(1000, 5)), rng.integers(0, 5, 1000)
    >>> y[::10] = -100   # ignored rows
    >>> lazy = focal.dask.softmax_loss(da.from_array(x, chunks=(300, 5)),
    ...                                da.from_array(y, chunks=300))
    >>> bool(np.isclose(lazy.compute(), focal.softmax_loss(x, y), rtol=1e-12, atol=0))
    True
    """
    return _softmax(logits, labels, alpha, gamma, axis, reduction, weights, ignore_index,
                    normalizer, want_loss=True, want_grad=False)[0]


@_document(_SOFTMAX_PARAMETERS)
def softmax_grad(logits: Any, labels: Any, alpha: Any = None, gamma: Real = 2.0, *,
                 axis: SupportsIndex = -1, reduction: SoftmaxReduction = "mean",
                 weights: Any = None, ignore_index: SupportsIndex = -100,
                 normalizer: Optional[Real] = None) -> "da.Array":
    """Gradient of the softmax focal loss of dask arrays with respect to the logits (lazy).

    Parameters
    ----------
    {parameters}

    Returns
    -------
    dask.array.Array
        The gradient, of the logits' shape and chunks.

    See Also
    --------
    focal.softmax_grad, softmax_loss, softmax_loss_and_grad

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import numpy as np, dask.array as da, focal, focal.dask
    >>> x = da.random.default_rng(0).normal(size=(10, 1000), chunks=(10, 250))
    >>> y = da.zeros(1000, dtype=np.int64, chunks=250)
    >>> focal.dask.softmax_grad(x, y, axis=0).chunks   # classes along axis 0
    ((10,), (250, 250, 250, 250))
    """
    return _softmax(logits, labels, alpha, gamma, axis, reduction, weights, ignore_index,
                    normalizer, want_loss=False, want_grad=True)[1]


@_document(_SOFTMAX_PARAMETERS)
def softmax_loss_and_grad(logits: Any, labels: Any, alpha: Any = None, gamma: Real = 2.0, *,
                          axis: SupportsIndex = -1, reduction: SoftmaxReduction = "mean",
                          weights: Any = None, ignore_index: SupportsIndex = -100,
                          normalizer: Optional[Real] = None
                          ) -> Tuple["da.Array", "da.Array"]:
    """Softmax focal loss and its gradient of dask arrays, one pass per block (lazy).

    Parameters
    ----------
    {parameters}

    Returns
    -------
    loss : dask.array.Array
        As returned by `softmax_loss`.
    grad : dask.array.Array
        As returned by `softmax_grad`.  Compute both together
        (``dask.compute(loss, grad)``) so that each block is computed once.

    See Also
    --------
    focal.softmax_loss_and_grad, softmax_loss, softmax_grad

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import dask, numpy as np, dask.array as da, focal, focal.dask
    >>> x = da.random.default_rng(0).normal(size=(1000, 10), chunks=(250, 10))
    >>> y = da.from_array(np.arange(1000) % 10, chunks=250)
    >>> value, gradient = dask.compute(*focal.dask.softmax_loss_and_grad(x, y, gamma=0))
    >>> bool(np.isclose(value, focal.softmax_loss(x.compute(), y.compute(), gamma=0)))
    True
    """
    loss_value, gradient = _softmax(logits, labels, alpha, gamma, axis, reduction, weights,
                                    ignore_index, normalizer, want_loss=True, want_grad=True)
    return loss_value, gradient

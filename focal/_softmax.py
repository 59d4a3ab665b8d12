"""Multi-class (softmax) focal loss and the softmax prior initialisation."""
from __future__ import annotations

import math
import operator
from typing import Any, Literal, Optional, SupportsIndex, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from . import _args, _core, _overlap
from ._docs import INTERRUPTION, fill_docstring
from ._typing import Array, Real, Scalar, SoftmaxReduction, SoftmaxScalarReduction

_PARAMETERS = """\
logits : array_like
    Raw scores, any shape; `axis` is the class axis (C classes).  float32 and
    float64 keep their dtype, float16 is computed in float32.  Read in place
    along any axis, layout, byte order or alignment: no transposed copy.
labels : array_like
    Integer class indices with the logits' shape minus `axis`; rows equal to
    `ignore_index` contribute nothing and get zero gradient.  Or dense
    probability targets of the logits' shape (one-hot or label-smoothed rows,
    values in [0, 1]).
alpha : None, float or array_like, default None
    None: no weighting; a number in [0, 1] multiplies every row (the mmcv and
    Keras convention); one value per class weights each row by its class
    (Detectron's background/foreground weighting is ``[1 - a, a, ..., a]``).
gamma : float, default 2.0
    Focusing parameter >= 0; 0 gives (weighted) softmax cross-entropy.
axis : int, default -1
    The class axis.
reduction : {"mean", "sum", "none"}, default "mean"
    "none": one value per row (the logits' shape minus `axis`); "sum";
    "mean": sum of w l over the sum of w, over rows not ignored (nan when
    there are none).
weights : array_like, optional
    Non-negative row weights, broadcastable to the rows' shape.
ignore_index : int, default -100
    The class index that marks an ignored row (PyTorch's and kornia's
    convention); it must not be a class (0..C-1)."""

_NOTES = """\
Notes
-----
With p = softmax(z) along `axis`, a row whose true class is k has

    FL = -alpha_k (1 - p_k)^gamma log(p_k),

and a row of dense targets y has FL = sum_c -alpha_c y_c (1 - p_c)^gamma
log(p_c).  log(p_k) = (z_k - max z) - log(sum_j e^(z_j - max z)) and
1 - p_k is the other classes' share of that sum, so any spread of logits is
exact: nothing overflows and 1 - p_k is never 1 minus a rounded p_k.

""" + INTERRUPTION


_document = fill_docstring(parameters=_PARAMETERS, notes=_NOTES)


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


def _alpha_values(alpha: Any, num_classes: int) -> Tuple[Optional[float], Optional[np.ndarray]]:
    if alpha is None:
        return None, None
    what = "None, a number in [0, 1], or one value in [0, 1] per class"
    if isinstance(alpha, (bool, np.bool_, str, bytes)):
        raise TypeError(f"alpha: expected {what}, got {alpha!r}")
    array = _args.as_array("alpha", alpha, "iuf", what)
    if array.ndim == 0:
        value = float(array)
        if not 0 <= value <= 1:
            raise ValueError(f"alpha: expected a number in [0, 1], got {value!r}")
        return value, None
    if array.ndim != 1 or array.shape[0] != num_classes:
        raise ValueError(
            f"alpha: expected a scalar or {num_classes} values (one per class along the "
            f"class axis), got shape {array.shape}"
        )
    if not _args.within_unit_interval(array):
        raise ValueError("alpha: every per-class value must lie in [0, 1] (NaN is not allowed)")
    return None, array  # read in place by the C pass, one class at a time


def _run(logits, labels, alpha, gamma, axis, reduction, weights, ignore_index, out, *,
         want_loss, want_grad, out_receives="grad"):
    """Checks the arguments, runs the C pass once, applies the reduction."""
    x, dtype = _args.logits_array(logits)
    if x.ndim == 0:
        raise ValueError("logits: the softmax needs at least one axis (the classes)")
    axis = _axis_value(axis, x.ndim)
    num_classes = x.shape[axis]
    if num_classes == 0:
        raise ValueError("logits: the class axis is empty")
    row_shape = x.shape[:axis] + x.shape[axis + 1:]

    t = _args.as_array("labels", labels, "biuf",
                       "integer class indices or dense probability targets")
    if t.ndim == x.ndim - 1:
        if t.dtype.kind not in "iu":
            raise TypeError(
                f"labels: class indices (the logits' shape minus axis) must be integers, "
                f"got dtype {t.dtype}")
        if t.shape != row_shape:
            raise ValueError(f"labels: class indices must have shape {row_shape} (the logits' "
                             f"shape minus axis {axis}), got {t.shape}")
        _args.refuse_unrepresentable_labels("labels", t)
        class_indices = True
    elif t.ndim == x.ndim:
        if t.shape != x.shape:
            raise ValueError(f"labels: dense targets must have the logits' shape {x.shape}, "
                             f"got {t.shape}")
        class_indices = False
    else:
        raise ValueError(f"labels: expected class indices of shape {row_shape} or dense "
                         f"targets of shape {x.shape}, got shape {t.shape}")

    if isinstance(ignore_index, (bool, np.bool_)):
        raise TypeError(f"ignore_index: expected an integer, got {ignore_index!r}")
    ignore = _args.ignore_index_value(ignore_index, num_classes - 1, False)
    if class_indices and 0 <= ignore < num_classes:
        raise ValueError(f"ignore_index: {ignore} is a valid class (0..{num_classes - 1}); "
                         "choose a value outside, such as -100")
    alpha_scalar, alpha_per_class = _alpha_values(alpha, num_classes)
    gamma_ = _args.gamma_value(gamma)
    if not isinstance(reduction, str):
        raise TypeError(f"reduction: expected one of ('none', 'sum', 'mean'), got {reduction!r}")
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"reduction: expected one of ('none', 'sum', 'mean'), got {reduction!r}")
    w = None
    if weights is not None:
        w = _args.as_array("weights", weights, "biuf", "row weights broadcastable to the rows")
        try:
            broadcast = np.broadcast_shapes(w.shape, row_shape)
        except ValueError:
            broadcast = None
        if broadcast != row_shape:
            raise ValueError(f"weights: shape {w.shape} is not broadcastable to the rows' "
                             f"shape {row_shape}")

    row_loss = want_loss and reduction == "none"
    out_view = None
    if out is not None:
        if out_receives == "loss" and not row_loss:
            raise ValueError(f"out: the loss is a scalar with reduction={reduction!r}; out= "
                             "is only used with reduction='none'")
        out_view = _args.out_array(out, row_shape if out_receives == "loss" else x.shape, dtype)

    # Writing over an input.  A gradient out= that is an input with axes
    # reversed (out=logits[::-1]) is written by pairs of mirrored blocks of
    # rows (see _overlap), copying no input.  Otherwise each row is read
    # (logits, dense targets, its label and weight; a row of many classes
    # piece by piece, each piece just before it is written) before its
    # gradient or loss is written, so an argument holding exactly out's
    # elements may be overwritten in place (out=logits), after a first pass
    # has validated every row; any other overlap is resolved by
    # _args.resolve_out_overlap, the same rule as the sigmoid's.
    x_moved = np.moveaxis(x, axis, -1)
    targets_moved = t if class_indices else np.moveaxis(t, axis, -1)
    mirrored = None  # the reversed axes, when out is an input in reverse order
    copied = [False, False, False]
    fresh = validate_first = False
    if out_view is not None and out_receives == "grad":
        # the class axis last, as the pass sees the arrays
        moved = [x_moved, targets_moved, w]
        mirrored, shared = _args.reflected_out(
            np.moveaxis(out_view, axis, -1), moved, (alpha_per_class,))
        copied = [any(a is s for s in shared) for a in moved]
    if not mirrored:
        inputs, fresh, validate_first = _args.resolve_out_overlap(
            out_view, {"logits": x, "labels": t, "weights": w, "alpha": alpha_per_class},
            in_step=("labels", "weights") if out_receives == "loss" else ("logits", "labels"))
        x, t, w = inputs["logits"], inputs["labels"], inputs["weights"]
        alpha_per_class = inputs["alpha"]
        x_moved = np.moveaxis(x, axis, -1)
        targets_moved = t if class_indices else np.moveaxis(t, axis, -1)
    target = None if fresh else out_view  # where the pass writes out='s result

    loss_out = grad_out = None
    if row_loss:
        loss_out = target if (target is not None and out_receives == "loss") else _args.new_result(
            row_shape, dtype)
    if want_grad:
        grad_out = target if (target is not None and out_receives == "grad") else _args.new_result(
            x.shape, dtype)

    # Extreme row weights are scaled by a power of two where they enter the
    # sums, as in the sigmoid form (_args.weight_exponent): the mean divides
    # by the weight sum scaled alike, the sum is scaled back at the end, and
    # the gradient's weights are scaled for the mean, whose divisor that is.
    weighted_mean = reduction == "mean" and w is not None
    weight_exponent = _args.weight_exponent(w) if reduction != "none" else 0
    exponent = weight_exponent  # of the loss sum: its value is loss_sum 2^exponent
    arguments = dict(
        labels=class_indices, alpha=alpha_scalar, alpha_per_class=alpha_per_class, gamma=gamma_,
        weights=w, ignore_index=ignore, double_precision=dtype == np.float64,
        loss_weight_scale=math.ldexp(1.0, -weight_exponent),
        grad_weight_scale=math.ldexp(1.0, -weight_exponent) if weighted_mean else 1.0)
    # The mean's normaliser is applied inside the pass (one rounding of the
    # gradient).  With weights, a first pass without the kernel sums them; it
    # also validates every row before out= overwrites an input.
    grad_divisor = 1.0
    if want_grad and reduction == "mean" and w is None:
        rows = math.prod(row_shape)
        if class_indices:
            rows -= _core.count_labels(t, num_classes, ignore)[0]
        grad_divisor = float(rows) if rows else 1.0
    grad_moved = None if grad_out is None else np.moveaxis(grad_out, axis, -1)
    if mirrored:
        # one pass over the untouched inputs validates them and takes the sums
        loss_sum, weight_sum, loss_sum_small = _core.softmax_focal(
            x_moved, targets_moved, loss_out=None, grad_out=None, grad_divisor=1.0,
            **arguments)
        if want_grad and reduction == "mean" and w is not None and weight_sum > 0:
            grad_divisor = weight_sum
        _write_mirrored_rows(x_moved, targets_moved, class_indices, w, copied, mirrored,
                             arguments, loss_out, grad_moved, grad_divisor)
    else:
        if validate_first or (want_grad and reduction == "mean" and w is not None):
            _, weight_sum, _ = _core.softmax_focal(x_moved, targets_moved, loss_out=None,
                                                   grad_out=None, grad_divisor=1.0,
                                                   sums_only=True, **arguments)
            if want_grad and reduction == "mean" and w is not None and weight_sum > 0:
                grad_divisor = weight_sum
        loss_sum, weight_sum, loss_sum_small = _core.softmax_focal(
            x_moved, targets_moved, loss_out=loss_out, grad_out=grad_moved,
            grad_divisor=grad_divisor, **arguments)

    # a sum of row losses near the double range may overflow where their mean
    # does not: the pass also sums them times 2^-SMALL_SUM_EXPONENT
    loss_sum, exponent = _args.finite_sum(loss_sum, loss_sum_small, exponent)

    # the mean's weight sum carries the weights' scale, which cancels
    denominator = weight_sum if reduction == "mean" else 1.0
    if row_loss:
        loss_result = loss_out
    elif want_loss:
        value = loss_sum / denominator if denominator > 0 else math.nan
        value = _args.scale_back(value, exponent - (weight_exponent if reduction == "mean" else 0))
        loss_result = _args.result_scalar(value, dtype)
    else:
        loss_result = None
    if out_view is not None:
        if target is None:  # computed apart: out receives it only now
            np.copyto(out_view, loss_out if out_receives == "loss" else grad_out)
        if out_receives == "loss":
            loss_result = out
        else:
            grad_out = out
    return loss_result, grad_out


def _write_mirrored_rows(x, targets, class_indices, w, copied, reflected, arguments, loss_out,
                         grad_out, grad_divisor):
    """The rows' results into a gradient out= that is an input with `reflected`
    axes reversed (the class axis last), by pairs of mirrored blocks of whole
    rows (see _overlap): both blocks' inputs that out overlaps (`copied`, for
    x, targets and w) are copied before either block is written."""
    ndim = x.ndim

    def part(a, copy, index, size, leading=False):
        piece = _overlap.block_of(a, index, size, leading)
        return np.array(piece) if copy else piece

    copy_x, copy_t, copy_w = copied
    for block, mirror in _overlap.paired_blocks(x.shape, reflected, whole_last=True):
        indices = [block] if mirror == block else [block, mirror]
        inputs = [(part(x, copy_x, index, ndim),
                   part(targets, copy_t, index, ndim, leading=class_indices),
                   part(w, copy_w, index[:-1], ndim - 1)) for index in indices]
        for index, (xs, ts, ws) in zip(indices, inputs):
            _core.softmax_focal(xs, ts, **dict(arguments, weights=ws),
                                loss_out=None if loss_out is None else _overlap.view(
                                    loss_out, index[:-1]),
                                grad_out=grad_out[index], grad_divisor=grad_divisor)


@overload
def softmax_loss(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: None = ...,
) -> Scalar: ...
@overload
def softmax_loss(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...
@overload
def softmax_loss(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxReduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Union[Scalar, Array]: ...
@_document
def softmax_loss(
    logits: Any,
    labels: Any,
    alpha: Any = None,
    gamma: Any = 2.0,
    *,
    axis: SupportsIndex = -1,
    reduction: SoftmaxReduction = "mean",
    weights: Any = None,
    ignore_index: SupportsIndex = -100,
    out: Optional[np.ndarray] = None,
) -> Union[Scalar, Array]:
    """Multi-class (softmax) focal loss.

    Parameters
    ----------
    {parameters}
    out : ndarray, optional
        With ``reduction="none"``, a writable array of the rows' shape and the
        result dtype that receives the per-row loss.

    Returns
    -------
    numpy scalar or ndarray
        The reduced loss as a NumPy scalar of the result dtype, or with
        ``reduction="none"`` one value per row.

    See Also
    --------
    softmax_grad, softmax_loss_and_grad, softmax_prior_bias

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    >>> float(focal.softmax_loss(logits, np.array([0, 2]), gamma=0.0, reduction="sum"))
    0.3362...
    """
    value, _ = _run(logits, labels, alpha, gamma, axis, reduction, weights, ignore_index, out,
                    want_loss=True, want_grad=False, out_receives="loss")
    return value


@_document
def softmax_grad(
    logits: Any,
    labels: Any,
    alpha: Any = None,
    gamma: Any = 2.0,
    *,
    axis: SupportsIndex = -1,
    reduction: SoftmaxReduction = "mean",
    weights: Any = None,
    ignore_index: SupportsIndex = -100,
    out: Optional[np.ndarray] = None,
) -> Array:
    """Gradient of the reduced softmax focal loss with respect to every logit.

    Parameters
    ----------
    {parameters}
    out : ndarray, optional
        A writable array of the logits' shape and the result dtype that
        receives the gradient; it may be `logits` itself.

    Returns
    -------
    ndarray
        The gradient, of the logits' shape; ignored rows get 0.  Each row's
        gradient sums to 0 (the softmax is shift-invariant).

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> g = focal.softmax_grad(np.zeros((2, 4)), np.array([1, -100]))
    >>> float(g[1].sum()), float(abs(g[0].sum()) < 1e-15)
    (0.0, 1.0)
    """
    _, gradient = _run(logits, labels, alpha, gamma, axis, reduction, weights, ignore_index, out,
                       want_loss=False, want_grad=True)
    return gradient


@overload
def softmax_loss_and_grad(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Scalar, Array]: ...
@overload
def softmax_loss_and_grad(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Array, Array]: ...
@overload
def softmax_loss_and_grad(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxReduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Union[Scalar, Array], Array]: ...
@_document
def softmax_loss_and_grad(
    logits: Any,
    labels: Any,
    alpha: Any = None,
    gamma: Any = 2.0,
    *,
    axis: SupportsIndex = -1,
    reduction: SoftmaxReduction = "mean",
    weights: Any = None,
    ignore_index: SupportsIndex = -100,
    out: Optional[np.ndarray] = None,
) -> Tuple[Union[Scalar, Array], Array]:
    """Softmax focal loss and its gradient, computed together in one pass.

    Parameters
    ----------
    {parameters}
    out : ndarray, optional
        A writable array of the logits' shape and the result dtype that
        receives the gradient.

    Returns
    -------
    loss : numpy scalar or ndarray
        As returned by `softmax_loss`.
    grad : ndarray
        As returned by `softmax_grad`.

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> logits = np.random.default_rng(0).normal(size=(8, 5, 4)).astype(np.float32)
    >>> value, g = focal.softmax_loss_and_grad(logits, np.zeros((8, 4), int), axis=1)
    >>> g.shape, g.dtype
    ((8, 5, 4), dtype('float32'))
    """
    return _run(logits, labels, alpha, gamma, axis, reduction, weights, ignore_index, out,
                want_loss=True, want_grad=True)


def softmax_prior_bias(num_classes: SupportsIndex, pi: Real = 0.01) -> npt.NDArray[np.float64]:
    """Biases that start a softmax classifier at the paper's prior.

    Detectron's initialisation of a softmax head: class 0 (background)
    starts at probability 1 - pi and each of the other num_classes - 1
    classes at pi / (num_classes - 1).

    Parameters
    ----------
    num_classes : int
        Number of classes including the background class 0; at least 2.
    pi : float, default 0.01
        Total prior probability of the foreground classes, in (0, 1).

    Returns
    -------
    ndarray of float64, shape (num_classes,)
        ``[log((num_classes - 1)(1 - pi) / pi), 0, ..., 0]``.

    Examples
    --------
    >>> import numpy as np, focal
    >>> b = focal.softmax_prior_bias(81)
    >>> p = np.exp(b) / np.exp(b).sum()
    >>> round(float(p[0]), 6), round(float(p[1]), 8)
    (0.99, 0.000125)
    """
    if isinstance(num_classes, (bool, np.bool_)):
        raise TypeError(f"num_classes: expected an integer, got {num_classes!r}")
    try:
        count = operator.index(num_classes)
    except TypeError:
        raise TypeError(f"num_classes: expected an integer, got {num_classes!r}") from None
    if count < 2:
        raise ValueError(f"num_classes: expected at least 2 (background and one class), got {count}")
    value = _args.probability("pi", pi)
    try:
        bias = np.zeros(count, dtype=np.float64)
    except ValueError:  # NumPy's "array is too big": more than 2**63 - 1 bytes
        raise ValueError(f"num_classes: {count} biases would be larger than the largest array "
                         "NumPy can make") from None
    except MemoryError:
        raise MemoryError(f"num_classes: no memory for {count} float64 biases") from None
    bias[0] = math.log(count - 1) + math.log1p(-value) - math.log(value)
    return bias

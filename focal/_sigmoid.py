"""Sigmoid focal loss: the public functions over the C pass in focal._core."""
from __future__ import annotations

import math
from typing import Any, Dict, Literal, Optional, SupportsIndex, Tuple, Union, overload

import numpy as np

from . import _args, _core, _overlap
from ._docs import INTERRUPTION, fill_docstring
from ._typing import Array, Real, Reduction, Scalar, ScalarReduction

_SHARED_PARAMETERS = """\
logits : array_like
    Raw scores x, any shape; the last axis is the class axis.  float32 and
    float64 keep their dtype, float16 is computed in float32, integers are
    converted as NumPy's math functions convert them.  Read in place, any
    layout or byte order.
targets : array_like
    Either dense targets y in [0, 1] with as many dimensions as `logits`
    (each equal or 1; bool, integer or float; soft values allowed), or
    integer class indices of shape ``logits.shape[:-1]``: c in [0, C) makes
    class c positive and the others negative in that row, C (the number of
    classes) marks a background row, `ignore_index` a row that contributes
    nothing.  Class indices never build a one-hot array.
alpha : None, float or array_like, default 0.25
    Weight of the positive targets: alpha_t = alpha y + (1 - alpha)(1 - y).
    A float in [0, 1], one value per class (length C), or None for no
    weighting (torchvision's ``alpha=-1``).
gamma : float, default 2.0
    Focusing parameter >= 0; 0 gives alpha-balanced cross-entropy.
"""

_WEIGHT_PARAMETERS = """\
weights : array_like, optional
    Non-negative weights broadcastable to ``logits.shape``; each element's
    loss is multiplied by its weight.
ignore_index : int, default -1
    With class-index targets, the value that marks an ignored row; it must
    not be a class (0..C) itself.
"""

_REDUCTION = """\
reduction : {"mean", "sum", "none", "sum_over_positives"}, default "mean"
    "none": one value per element; "sum"; "mean": sum of w l over the sum of
    w, over elements not ignored (nan when there are none);
    "sum_over_positives": the sum over the number of positive targets (at
    least 1; for soft targets the sum of target values), the paper's
    normalisation.
"""

_NOTES = """\
Notes
-----
With p = sigmoid(x), 1 - p_t = p (1 - y) + (1 - p) y and
CE = -(y log p + (1 - y) log(1 - p)), the loss of an element is

    FL = alpha_t (1 - p_t)^gamma CE,

Eq. 5 of Lin et al. (2017) for y in {0, 1} and torchvision's formula for
soft y.  Everything is computed in double precision with log-space forms:
1 - p_t is a sigmoid of -x or x, never 1 minus a rounded probability, so
extreme logits keep their digits and gamma < 1 gives no NaN.

""" + INTERRUPTION


_document = fill_docstring(
    shared=_SHARED_PARAMETERS, weights=_WEIGHT_PARAMETERS, reduction=_REDUCTION, notes=_NOTES
)


def _run(
    logits: Any,
    targets: Any,
    alpha: Any,
    gamma: Any,
    reduction: Any,
    weights: Any,
    ignore_index: Any,
    out: Any,
    *,
    want_loss: bool,
    want_grad: bool,
    want_hess: bool = False,
    out_receives: str = "grad",
    star: bool = False,
    beta: Any = 0.0,
):
    """Checks the arguments, runs the C pass once, and applies the reduction.

    Serves the sigmoid focal loss and, with star=True, FL* (same glue, another
    kernel).  Returns (reduced loss or per-element loss array or None,
    gradient or None, hessian or None).
    """
    x, dtype = _args.logits_array(logits)
    t, labels = _args.target_array(targets, x)
    num_classes = x.shape[-1] if x.ndim else 1
    ignore = _args.ignore_index_value(ignore_index, num_classes, labels)
    alpha_scalar, alpha_per_class = _args.alpha_values(alpha, x)
    gamma_ = _args.gamma_value(gamma, positive=star)
    beta_ = _args.real_scalar("beta", beta, "a finite real number") if star else 0.0
    if not math.isfinite(beta_):
        raise ValueError(f"beta: expected a finite real number, got {beta_!r}")
    reduction = _args.reduction_value(reduction)
    w = _args.weights_array(weights, x)

    elementwise_loss = want_loss and reduction == "none"
    out_view = None
    if out is not None:
        if out_receives == "loss" and not elementwise_loss:
            raise ValueError(
                f"out: the loss is a scalar with reduction={reduction!r}; out= is only "
                "used with reduction='none'"
            )
        out_view = _args.out_array(out, x.shape, dtype)
    # out= over an input with axes reversed (out=logits[::-1]): written by
    # pairs of mirrored blocks, copying no input (see _overlap).  Every other
    # overlap: each element is read just before the same element is written,
    # so an argument holding exactly out's elements may be overwritten in
    # place; any other is resolved by _args.resolve_out_overlap.
    reflected, shared = _args.reflected_out(
        None if want_hess else out_view, (x, t, w), (alpha_per_class,))
    fresh = validate_first = False
    if not reflected:
        inputs, fresh, validate_first = _args.resolve_out_overlap(
            out_view, {"logits": x, "targets": t, "weights": w, "alpha": alpha_per_class},
            in_step=("logits", "targets", "weights"))
        logits_in, targets_in = inputs["logits"], inputs["targets"]
        assert logits_in is not None and targets_in is not None  # only absent ones come back None
        x, t, w = logits_in, targets_in, inputs["weights"]
        alpha_per_class = inputs["alpha"]
    target = None if fresh else out_view  # where the pass writes out='s result

    loss_out = grad_out = hess_out = None
    if elementwise_loss:
        loss_out = target if out_receives == "loss" and target is not None else _args.new_result(
            x.shape, dtype)
    if want_grad:
        grad_out = target if out_receives == "grad" and target is not None else _args.new_result(
            x.shape, dtype)
    if want_hess:
        hess_out = _args.new_result(x.shape, dtype)

    # The reduction's denominator: counted here when it does not depend on the
    # data (no weights; class indices counted in a pass over the labels
    # alone), otherwise summed by the C pass.  The gradient's normaliser is
    # applied inside the pass, so the gradient is rounded once; when it must
    # be summed first, a cheap first pass (no kernel) does it.
    denominator: Optional[float] = 1.0
    if reduction == "mean" and w is None:
        ignored = _core.count_labels(t, num_classes, ignore)[0] if labels else 0
        denominator = float(x.size - ignored * num_classes)
    elif reduction == "sum_over_positives" and labels:
        denominator = float(max(_core.count_labels(t, num_classes, ignore)[1], 1))
    elif reduction in ("mean", "sum_over_positives"):
        denominator = None  # weights, or soft targets: summed by the pass
    sum_weights = reduction == "mean" and denominator is None
    sum_positives = reduction == "sum_over_positives" and denominator is None
    grad_divisor = denominator if denominator else 1.0  # nothing counted: all zeros
    if labels and num_classes == 0 and t.size:
        # no element to check the class indices in: check them here, counted in
        # C (0 is the only valid class index: background), then the first bad
        # one found block by block, with no temporary of the labels' size
        ignored, background = _core.count_labels(t, 1, ignore)
        if ignored + background < t.size:
            for block in np.nditer(t, flags=["external_loop", "buffered", "zerosize_ok"],
                                   order="C", buffersize=1 << 16):
                invalid = block[(block != 0) & (block != ignore)]
                if invalid.size:
                    raise ValueError(
                        f"targets: class indices must lie in [0, 0] (0 marks a background "
                        f"row) or equal ignore_index={ignore}; found {invalid[0]}")

    # Extreme weights (1e308 or 5e-324) are scaled by 2^-exponent where they
    # enter a reduction (see _args.weight_exponent); the mean's weight sum is
    # scaled alike, so the scale cancels there, and the other reductions are
    # scaled back at the end.  The gradient's weights are scaled only for the
    # mean, whose divisor is that scaled sum.
    weight_exponent = _args.weight_exponent(w) if reduction != "none" else 0
    exponent = weight_exponent  # of the loss sum: its value is loss_sum 2^exponent
    arguments: Dict[str, Any] = dict(
        labels=labels,
        alpha=alpha_scalar,
        alpha_per_class=alpha_per_class,
        gamma=gamma_,
        weights=w,
        ignore_index=ignore,
        double_precision=dtype == np.float64,
        star=star,
        beta=beta_,
        loss_weight_scale=math.ldexp(1.0, -weight_exponent),
        grad_weight_scale=math.ldexp(1.0, -weight_exponent) if sum_weights else 1.0,
    )
    # Writing over an input (out=logits) needs every target and weight
    # validated before a single element is overwritten: the first pass does it.
    sums_first = want_grad and denominator is None
    if reflected:
        # out views an input in reverse order: a first pass over the untouched
        # inputs validates them and takes every sum, then the results are
        # written by pairs of mirrored blocks (no copy of the input)
        loss_sum, weight_sum, positive_sum, loss_sum_small = _core.sigmoid_focal(
            x, t, loss_out=None, grad_out=None, hess_out=None, grad_divisor=1.0,
            sums_only=elementwise_loss or not want_loss, sum_weights=sum_weights,
            sum_positives=sum_positives, **arguments)
        if denominator is None:
            denominator = weight_sum if sum_weights else max(positive_sum, 1.0)
            grad_divisor = denominator if denominator > 0 else 1.0
        _write_mirrored(x, t, w, shared, reflected, labels, arguments, alpha_per_class,
                        loss_out, grad_out, grad_divisor)
    elif sums_first or validate_first:
        _, weight_sum, positive_sum, _ = _core.sigmoid_focal(
            x, t, loss_out=None, grad_out=None, hess_out=None, grad_divisor=1.0,
            sums_only=True, sum_weights=sum_weights, sum_positives=sum_positives, **arguments)
        if sums_first:
            denominator = weight_sum if sum_weights else max(positive_sum, 1.0)
            grad_divisor = denominator if denominator > 0 else 1.0
    if not reflected:
        loss_sum, weight_sum, positive_sum, loss_sum_small = _core.sigmoid_focal(
            x, t, loss_out=loss_out, grad_out=grad_out, hess_out=hess_out,
            grad_divisor=grad_divisor, sum_weights=sum_weights and not sums_first,
            sum_positives=sum_positives and not sums_first, **arguments)
    if denominator is None:
        denominator = weight_sum if sum_weights else max(positive_sum, 1.0)
    # a sum of losses near the double range may overflow where their mean
    # does not: the pass also sums them times 2^-SMALL_SUM_EXPONENT
    loss_sum, exponent = _args.finite_sum(loss_sum, loss_sum_small, exponent)

    if out_view is not None and target is None:
        # computed apart (see resolve_out_overlap): out receives it only now
        computed = loss_out if out_receives == "loss" else grad_out
        assert computed is not None
        np.copyto(out_view, computed)
        if out_receives == "loss":
            loss_out = out
        else:
            grad_out = out
    elif out is not None:
        if out_receives == "loss":
            loss_out = out
        else:
            grad_out = out
    if elementwise_loss:
        loss_result = loss_out
    elif want_loss:
        value = loss_sum / denominator if denominator > 0 else math.nan
        # (the weight sum of a weighted mean carries the weights' scale)
        value = _args.scale_back(value, exponent - (weight_exponent if sum_weights else 0))
        loss_result = _args.result_scalar(value, dtype)
    else:
        loss_result = None
    return loss_result, grad_out, hess_out


def _write_mirrored(x, t, w, shared, reflected, labels, arguments, alpha_per_class, loss_out,
                    grad_out, grad_divisor):
    """The per-element results into an out= that is an input with `reflected`
    axes reversed, by pairs of mirrored blocks (see _overlap): both blocks'
    inputs that out overlaps are copied before either block is written."""
    ndim = x.ndim

    def part(a, index, leading=False):
        piece = _overlap.block_of(a, index, ndim, leading)
        return np.array(piece) if any(a is s for s in shared) else piece

    for block, mirror in _overlap.paired_blocks(x.shape, reflected, whole_last=labels):
        indices = [block] if mirror == block else [block, mirror]
        inputs = [(part(x, index), part(t, index, leading=labels), part(w, index))
                  for index in indices]
        for index, (xs, ts, ws) in zip(indices, inputs):
            alpha = None if alpha_per_class is None else alpha_per_class[index[-1]]
            _core.sigmoid_focal(
                xs, ts, **dict(arguments, weights=ws, alpha_per_class=alpha),
                loss_out=None if loss_out is None else loss_out[index],
                grad_out=None if grad_out is None else grad_out[index], hess_out=None,
                grad_divisor=grad_divisor, sum_weights=False, sum_positives=False)


@overload
def loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: None = ...,
) -> Scalar: ...
@overload
def loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...
@overload
def loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Union[Scalar, Array]: ...
@_document
def loss(
    logits: Any,
    targets: Any,
    alpha: Any = 0.25,
    gamma: Any = 2.0,
    *,
    reduction: Reduction = "mean",
    weights: Any = None,
    ignore_index: SupportsIndex = -1,
    out: Optional[np.ndarray] = None,
) -> Union[Scalar, Array]:
    """Sigmoid focal loss of Lin et al. (RetinaNet).

    Parameters
    ----------
    {shared}
    {reduction}
    {weights}
    out : ndarray, optional
        With ``reduction="none"``, a writable array of the logits' shape and
        the result dtype that receives the per-element loss (it may be `logits`).

    Returns
    -------
    numpy scalar or ndarray
        The reduced loss as a NumPy scalar of the result dtype (float32 or
        float64), or with ``reduction="none"`` an array of the logits' shape.

    See Also
    --------
    grad, loss_and_grad, grad_hess

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> logits = np.array([[2.0, -1.0, 0.5]], dtype=np.float32)
    >>> float(focal.loss(logits, np.array([0]), reduction="sum"))  # class 0 positive
    0.3005...
    """
    result, _, _ = _run(
        logits, targets, alpha, gamma, reduction, weights, ignore_index, out,
        want_loss=True, want_grad=False, out_receives="loss",
    )
    return result


@_document
def grad(
    logits: Any,
    targets: Any,
    alpha: Any = 0.25,
    gamma: Any = 2.0,
    *,
    reduction: Reduction = "mean",
    weights: Any = None,
    ignore_index: SupportsIndex = -1,
    out: Optional[np.ndarray] = None,
) -> Array:
    """Gradient of the reduced sigmoid focal loss with respect to the logits.

    Parameters
    ----------
    {shared}
    {reduction}
    {weights}
    out : ndarray, optional
        A writable array of the logits' shape and the result dtype that
        receives the gradient; it may be `logits` itself (in place).

    Returns
    -------
    ndarray
        d(reduced loss)/d(logits), the logits' shape; with ``reduction="none"``
        the elementwise derivative.  Ignored rows get 0.

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> g = focal.grad(np.zeros((2, 3)), np.array([1, 3]), reduction="sum")
    >>> g.shape
    (2, 3)
    """
    _, gradient, _ = _run(
        logits, targets, alpha, gamma, reduction, weights, ignore_index, out,
        want_loss=False, want_grad=True,
    )
    return gradient


@overload
def loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Scalar, Array]: ...
@overload
def loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Array, Array]: ...
@overload
def loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Union[Scalar, Array], Array]: ...
@_document
def loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = 0.25,
    gamma: Any = 2.0,
    *,
    reduction: Reduction = "mean",
    weights: Any = None,
    ignore_index: SupportsIndex = -1,
    out: Optional[np.ndarray] = None,
) -> Tuple[Union[Scalar, Array], Array]:
    """Sigmoid focal loss and its gradient, computed together in one pass.

    Parameters
    ----------
    {shared}
    {reduction}
    {weights}
    out : ndarray, optional
        A writable array of the logits' shape and the result dtype that
        receives the gradient; it may be `logits` itself (in place).

    Returns
    -------
    loss : numpy scalar or ndarray
        As returned by `loss`.
    grad : ndarray
        As returned by `grad`.

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> x = np.full((4, 80), focal.prior_bias(0.01), dtype=np.float32)
    >>> value, g = focal.loss_and_grad(x, np.array([3, 80, 80, -1]))
    >>> g.dtype
    dtype('float32')
    """
    value, gradient, _ = _run(
        logits, targets, alpha, gamma, reduction, weights, ignore_index, out,
        want_loss=True, want_grad=True,
    )
    return value, gradient


@_document
def grad_hess(
    logits: Any,
    targets: Any,
    alpha: Any = 0.25,
    gamma: Any = 2.0,
    *,
    weights: Any = None,
    ignore_index: SupportsIndex = -1,
) -> Tuple[Array, Array]:
    """Elementwise first and second derivatives of the weighted focal loss.

    What gradient-boosting objectives (XGBoost, LightGBM) need: both
    derivatives of each element's unreduced, weighted loss with respect to
    its logit, in one pass.

    Parameters
    ----------
    {shared}
    {weights}

    Returns
    -------
    grad, hess : ndarray
        Arrays of the logits' shape and the result dtype.

    Notes
    -----
    The focal loss is not convex for gamma > 0: the second derivative is
    negative for confidently wrong logits (for y = 1 and gamma = 2, below
    x = -2.79; below -2.94 for gamma = 5).  Boosting needs a positive
    hessian: `xgboost_objective` and `lightgbm_objective` raise it to a floor
    (0.01 by default; much smaller floors let Newton steps diverge on
    imbalanced data).

    Examples
    --------
    >>> import numpy as np, focal
    >>> x = np.array([[-8.0], [0.0], [8.0]])
    >>> g, h = focal.grad_hess(x, np.ones_like(x), alpha=None)
    >>> bool(h[0, 0] < 0)  # confidently wrong: the loss is concave there
    True
    """
    _, gradient, hessian = _run(
        logits, targets, alpha, gamma, "none", weights, ignore_index, None,
        want_loss=False, want_grad=True, want_hess=True,
    )
    return gradient, hessian


def prior_bias(pi: Real = 0.01) -> float:
    """Bias that makes a sigmoid output start at probability `pi`.

    The paper's initialisation of the last classification layer: with
    b = -log((1 - pi) / pi) every anchor starts at p = pi, so the flood of
    easy negatives does not swamp the first iterations.

    Parameters
    ----------
    pi : float, default 0.01
        Prior probability of the positive class, strictly between 0 and 1.

    Returns
    -------
    float
        -log((1 - pi) / pi); -4.59512 for the default.

    Examples
    --------
    >>> import focal
    >>> round(focal.prior_bias(0.01), 5)
    -4.59512
    """
    value = _args.probability("pi", pi)
    return math.log(value) - math.log1p(-value)

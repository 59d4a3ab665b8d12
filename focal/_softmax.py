"""Multi-class (softmax) focal loss: its specification and the softmax
family's entry over the C pass; the softmax prior initialisation."""
from __future__ import annotations

import fractions
import math
import operator
from typing import Any, SupportsIndex, Tuple

import numpy as np
import numpy.typing as npt

from . import _args, _core, _pass, _spec
from ._docs import INTERRUPTION
from ._spec import FunctionDoc, LossSpec, Parameter
from ._typing import Real

class _Softmax(_pass.Family):
    """Losses of one row each along a class axis: the C pass softmax_focal,
    class indices (one per row) or dense probability rows; weights per row."""

    rows = True
    # the pass reads a row (logits and dense targets, its label and weight)
    # before it writes the row's gradient or loss
    in_step = {"loss": ("targets", "weights"), "grad": ("logits", "targets")}

    def mirrors(self, out_receives: str, want_hess: bool) -> bool:
        return out_receives == "grad"

    def count(self, ops: _pass.Operands) -> float:
        rows = math.prod(ops.loss_shape)
        if ops.labels:
            rows -= _core.count_labels(ops.t, ops.num_classes, ops.ignore)[0]
        return float(rows)

    def call(self, ops, plan, x, t, w, alpha_per_class, *, loss_out, grad_out, hess_out,
             grad_divisor, sums_only, sum_weights, sum_positives, check_targets=True):
        # (the pass always sums the row weights; it has no positives' sum)
        loss_sum, weight_sum, loss_sum_small = _core.softmax_focal(
            x, t, labels=ops.labels, alpha=ops.alpha, alpha_per_class=alpha_per_class,
            weights=w, ignore_index=ops.ignore, loss_out=loss_out, grad_out=grad_out,
            grad_divisor=grad_divisor, double_precision=ops.dtype == np.float64,
            sums_only=sums_only, loss_weight_scale=plan.loss_weight_scale,
            grad_weight_scale=plan.grad_weight_scale,
            weight_prescale=plan.weight_prescale, hess_out=hess_out,
            check_targets=check_targets, **ops.kernel)
        return loss_sum, weight_sum, 0.0, loss_sum_small


_SOFTMAX = _Softmax()


def label_array(labels: Any, x: np.ndarray, axis: int) -> Tuple[np.ndarray, bool]:
    """The labels and whether they are class indices (the logits' shape without
    `axis`) rather than dense targets (the logits' shape); focal.jax checks
    their shape with it before tracing."""
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
    return t, class_indices


def _entry(mode: Any, logits: Any, labels: Any, alpha: Any, gamma: Any, axis: Any = -1,
           reduction: Any = "mean", weights: Any = None, ignore_index: Any = -100,
           normalizer: Any = None, out: Any = None, raw_sum: bool = False,
           loss_into: Any = None, plain_tried: bool = False) -> Any:
    """Checks a call of a softmax loss and runs it: (loss, grad, hess).

    mode: (want_loss, want_grad, want_hess, out_receives), from _spec.KINDS;
    raw_sum and loss_into: see _pass.run; plain_tried: the caller has had
    _plain's answer (the public functions, _spec.LossSpec's plain).
    """
    # The common call (plain float32 or float64 logits, the class axis last,
    # class indices, plain numbers and defaults elsewhere) is made whole by
    # the C core, which answers NotImplemented to any other; each of its
    # comparisons is a check the full path below makes (_core's
    # softmax_plain says which).
    if loss_into is None and not plain_tried:
        result = _plain(mode, logits, labels, alpha, gamma, axis, reduction, weights,
                        ignore_index, normalizer, out, raw_sum)
        if result is not NotImplemented:
            return result
    x, dtype = _args.logits_array(logits)
    if x.ndim == 0:
        raise ValueError("logits: the softmax needs at least one axis (the classes)")
    axis = _args.axis_value(axis, x.ndim)
    num_classes = x.shape[axis]
    if num_classes == 0:
        raise ValueError("logits: the class axis is empty")
    row_shape = x.shape[:axis] + x.shape[axis + 1:]

    t, class_indices = label_array(labels, x, axis)
    want_loss, want_grad, want_hess, out_receives = mode
    if want_hess and not class_indices:
        raise ValueError(f"labels: softmax_grad_hess takes integer class indices of shape "
                         f"{row_shape}, not dense targets")

    if isinstance(ignore_index, (bool, np.bool_)):
        raise TypeError(f"ignore_index: expected an integer, got {ignore_index!r}")
    ignore = _args.ignore_index_value(ignore_index, num_classes - 1, False)
    if class_indices and 0 <= ignore < num_classes:
        raise ValueError(f"ignore_index: {ignore} is a valid class (0..{num_classes - 1}); "
                         "choose a value outside, such as -100")
    alpha_scalar, alpha_per_class = _args.class_alpha(alpha, num_classes, class_axis=axis)
    gamma_ = _args.gamma_value(gamma)
    reduction = _args.reduction_value(reduction, _args.SOFTMAX_REDUCTIONS)
    w = _args.weights_array(weights, x, rows=row_shape)
    if num_classes == 1:
        # Keras warns too: p = 1 in every row, so the loss and its gradient are 0
        _args.warn_at_caller(_args.one_class_softmax("logits", "axis", axis))
    ops = _pass.Operands(x, t, w, class_indices, num_classes, ignore, alpha_scalar,
                         alpha_per_class, dtype, row_shape, axis, {"gamma": gamma_})
    return _pass.run(_SOFTMAX, ops, reduction, normalizer, out, want_loss=want_loss,
                     want_grad=want_grad, want_hess=want_hess, out_receives=out_receives,
                     raw_sum=raw_sum, loss_into=loss_into,
                     sources=(logits, labels, weights, alpha))


_plain = _core.softmax_plain


# --- the specification ----------------------------------------------------

_P = dict(keyword_only=True)
_PARAMETERS = (
    Parameter("logits", """\
logits : array_like
    Raw scores, any shape; `axis` is the class axis (C classes).  float32 and
    float64 keep their dtype, float16 and bfloat16 (ml_dtypes) are computed
    in float32.  Read in place along any axis, layout, byte order or
    alignment: no transposed copy (bfloat16 is read through a float32 copy)."""),
    Parameter("labels", """\
labels : array_like
    Integer class indices with the logits' shape minus `axis`; rows equal to
    `ignore_index` contribute nothing and get zero gradient.  Or dense
    probability targets of the logits' shape (one-hot or label-smoothed rows,
    values in [0, 1]), but for softmax_grad_hess, which takes class indices
    only."""),
    Parameter("alpha", """\
alpha : None, float or array_like, default None
    None: no weighting; a number in [0, 1] multiplies every row (the mmcv and
    Keras convention); one value per class weights each row by its class
    (Detectron's background/foreground weighting is ``[1 - a, a, ..., a]``).""",
              default=None),
    Parameter("gamma", """\
gamma : float, default 2.0
    Focusing parameter >= 0; 0 gives (weighted) softmax cross-entropy.""",
              default=2.0, stub="Real"),
    Parameter("axis", """\
axis : int, default -1
    The class axis.  One class only is allowed but warned about (a
    UserWarning): the softmax of one class is 1, the loss identically 0.""",
              default=-1, stub="SupportsIndex", **_P),
    Parameter("reduction", """\
reduction : {"mean", "sum", "none"}, default "mean"
    "none": one value per row (the logits' shape minus `axis`); "sum";
    "mean": sum of w l over the sum of w, over rows not ignored (nan when
    there are none).""", default="mean", **_P),
    Parameter("weights", """\
weights : array_like, optional
    Non-negative row weights, broadcastable to the rows' shape.""", default=None, **_P),
    Parameter("ignore_index", """\
ignore_index : int, default -100
    The class index that marks an ignored row (PyTorch's and kornia's
    convention); it must not be a class (0..C-1).""", default=-100, stub="SupportsIndex", **_P),
    _spec.NORMALIZER,
    Parameter("out", "", default=None, **_P),
)

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

_SPEC = LossSpec(
    name="softmax focal loss",
    family="softmax",
    prefix="softmax_",
    parameters=_PARAMETERS,
    entry=_entry,
    plain=_plain,
    reductions=_args.SOFTMAX_REDUCTIONS,
    notes=_NOTES,
    docs={
        "loss": FunctionDoc(
            summary="Multi-class (softmax) focal loss.",
            out="""\
With ``reduction="none"``, a writable array of the rows' shape and the
result dtype that receives the per-row loss.""",
            returns="""\
numpy scalar or ndarray
    The reduced loss as a NumPy scalar of the result dtype, or with
    ``reduction="none"`` one value per row.""",
            see_also="softmax_grad, softmax_loss_and_grad, softmax_prior_bias",
            examples="""\
>>> import numpy as np, focal
>>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
>>> float(focal.softmax_loss(logits, np.array([0, 2]), gamma=0.0, reduction="sum"))
0.3362..."""),
        "grad": FunctionDoc(
            summary="Gradient of the reduced softmax focal loss with respect to every logit.",
            out="""\
A writable array of the logits' shape and the result dtype that
receives the gradient; it may be `logits` itself.""",
            returns="""\
ndarray
    The gradient, of the logits' shape; ignored rows get 0.  Each row's
    gradient sums to 0 (the softmax is shift-invariant).""",
            examples="""\
>>> import numpy as np, focal
>>> g = focal.softmax_grad(np.zeros((2, 4)), np.array([1, -100]))
>>> float(g[1].sum()), float(abs(g[0].sum()) < 1e-15)
(0.0, 1.0)"""),
        "loss_and_grad": FunctionDoc(
            summary="Softmax focal loss and its gradient, computed together in one pass.",
            out="""\
A writable array of the logits' shape and the result dtype that
receives the gradient.""",
            examples="""\
>>> import numpy as np, focal
>>> logits = np.random.default_rng(0).normal(size=(8, 5, 4)).astype(np.float32)
>>> value, g = focal.softmax_loss_and_grad(logits, np.zeros((8, 4), int), axis=1)
>>> g.shape, g.dtype
((8, 5, 4), dtype('float32'))"""),
        "grad_hess": FunctionDoc(
            summary="Gradient and diagonal second derivatives of the weighted softmax focal loss.",
            extended="""\
What multi-class gradient boosting (`xgboost_objective` and
`lightgbm_objective` with ``multiclass=True``) needs: for each row's
unreduced loss times its weight, the derivative with respect to every
logit and the second derivative d2FL/dz_j^2 (the hessian's diagonal), in
one pass.  Class indices only.""",
            out="",
            returns="""\
grad, hess : ndarray
    Arrays of the logits' shape and the result dtype; ignored rows get 0.""",
            see_also="softmax_grad, grad_hess",
            notes="""\
Notes
-----
With p = softmax(z), c the row's class, q = 1 - p_c (the other classes'
share), L = -log p_c, h = p_c L / q and the row's weight folded into
alpha_c, the gradient is -alpha_c e_j G with e_j = [j = c] - p_j and
G = q^gamma (gamma h + 1), and the diagonal of the hessian is

    d2FL/dz_c^2 = q (p_c G - P),
    d2FL/dz_j^2 = p_j ((1 - p_j) G - (p_j / q) P)    (j != c),
    P = alpha_c gamma q^gamma ((1 - gamma) p_c h + p_c L - 2 p_c),

which is alpha_c [p_j (1 - p_j) G - p_c e_j^2 dG/dp_c] written so that no
negative power of q appears and L enters as p_c L <= 1/e: every factor is
bounded for gamma >= 0, so the result has no NaN for finite logits.  At gamma 0 it is softmax
cross-entropy's p_j (1 - p_j).  The loss is not convex for gamma > 0:
the label's second derivative is negative where p_c is small (L large).
Computed in double precision one row at a time.""",
            examples="""\
>>> import numpy as np, focal
>>> g, h = focal.softmax_grad_hess(np.zeros((1, 4)), np.array([2]), gamma=0.0)
>>> h.tolist()  # softmax cross-entropy: p (1 - p) with p = 1/4
[[0.1875, 0.1875, 0.1875, 0.1875]]"""),
    },
)

_spec.define(_SPEC, globals())


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
    pi_exact = fractions.Fraction(value)
    bias[0] = _args.log_of((count - 1) * (1 - pi_exact) / pi_exact)
    return bias

"""Sigmoid focal loss: its specification, and the elementwise family's entry
over the C pass (shared with FL*, focal._star)."""
from __future__ import annotations

import fractions
import math
from typing import Any, Optional

import numpy as np

from . import _args, _core, _pass, _spec
from ._docs import INTERRUPTION
from ._spec import FunctionDoc, LossSpec, Parameter
from ._typing import Real


class _Elementwise(_pass.Family):
    """Losses of one element each (sigmoid focal loss, FL*): the C pass
    sigmoid_focal, dense targets or class indices along the last axis."""

    def mirrors(self, out_receives: str, want_hess: bool) -> bool:
        return not want_hess

    def count(self, ops: _pass.Operands) -> float:
        ignored = _core.count_labels(ops.t, ops.num_classes, ops.ignore)[0] if ops.labels else 0
        return float(ops.x.size - ignored * ops.num_classes)

    def positives(self, ops: _pass.Operands) -> Optional[float]:
        return float(_core.count_labels(ops.t, ops.num_classes, ops.ignore)[1])

    def check_targets(self, ops: _pass.Operands) -> None:
        t = ops.t
        if not (ops.labels and ops.num_classes == 0 and t.size):
            return
        # no element to check the class indices in: check them here, counted in
        # C (0 is the only valid class index: background), then the first bad
        # one found block by block, with no temporary of the labels' size
        ignored, background = _core.count_labels(t, 1, ops.ignore)
        if ignored + background < t.size:
            for block in np.nditer(t, flags=["external_loop", "buffered", "zerosize_ok"],
                                   order="C", buffersize=1 << 16):
                invalid = block[(block != 0) & (block != ops.ignore)]
                if invalid.size:
                    raise ValueError(
                        f"targets: class indices must lie in [0, 0] (0 marks a background "
                        f"row) or equal ignore_index={ops.ignore}; found {invalid[0]}")

    def call(self, ops, plan, x, t, w, alpha_per_class, *, loss_out, grad_out, hess_out,
             grad_divisor, sums_only, sum_weights, sum_positives, check_targets=True):
        return _core.sigmoid_focal(
            x, t, labels=ops.labels, alpha=ops.alpha, alpha_per_class=alpha_per_class,
            weights=w, ignore_index=ops.ignore, loss_out=loss_out, grad_out=grad_out,
            hess_out=hess_out, grad_divisor=grad_divisor,
            double_precision=ops.dtype == np.float64, sums_only=sums_only,
            sum_weights=sum_weights, sum_positives=sum_positives, check_targets=check_targets,
            loss_weight_scale=plan.loss_weight_scale, grad_weight_scale=plan.grad_weight_scale,
            weight_prescale=plan.weight_prescale,
            **ops.kernel)


_ELEMENTWISE = _Elementwise()


def _entry(mode: Any, logits: Any, targets: Any, alpha: Any, gamma: Any, reduction: Any = "none",
          weights: Any = None, ignore_index: Any = -1, normalizer: Any = None, out: Any = None,
          beta: Any = 0.0, star: bool = False, loss: int = 0, extra: float = 0.0,
          extra2: float = 0.0, extra3: float = 0.0, extra4: float = 0.0,
          raw_sum: bool = False, loss_into: Any = None, plain_tried: bool = False) -> Any:
    """Checks a call of an elementwise loss and runs it: (loss, grad, hess).

    mode: (want_loss, want_grad, want_hess, out_receives), from _spec.KINDS;
    loss: the row of the C table of losses (src/losses.h) by number
    (_core.elementwise_losses), 0 for the sigmoid focal loss (FL* with
    star); extra to extra4: that row's own parameters,
    checked by its caller (focal._poly1, ...); raw_sum and loss_into: see
    _pass.run; plain_tried: the caller has had _plain's answer (the public
    functions, _spec.LossSpec's plain).
    """
    # The common call (plain float32 or float64 arrays of logits and dense
    # targets of the same shape, plain floats and defaults elsewhere) is told
    # apart and made whole by the C core, which answers NotImplemented to any
    # other; each of its comparisons is a check the full path below makes, so
    # the two agree on every call (_core's sigmoid_plain says which).
    if loss_into is None and not plain_tried:
        result = _plain(mode, logits, targets, alpha, gamma, reduction, weights, ignore_index,
                        normalizer, out, beta, star, loss, extra, extra2, extra3, extra4, raw_sum)
        if result is not NotImplemented:
            return result
    x, dtype = _args.logits_array(logits, keep_bfloat16=True)
    t, labels = _args.target_array(targets, x)
    num_classes = x.shape[-1] if x.ndim else 1
    if labels and num_classes == 1:
        # a binary classifier's (N, 1) logits with its 0/1 labels of shape (N,)
        # would be read reversed, without a word (torchvision refuses the shapes)
        _args.warn_at_caller(_args.one_class_indices("targets"))
    ignore = _args.ignore_index_value(ignore_index, num_classes, labels)
    alpha_scalar, alpha_per_class = _args.alpha_values(alpha, x)
    gamma_ = _args.gamma_value(gamma, positive=star)
    beta_ = _args.real_scalar("beta", beta, "a finite real number") if star else 0.0
    if not math.isfinite(beta_):
        raise ValueError(f"beta: expected a finite real number, got {beta_!r}")
    reduction = _args.reduction_value(reduction)
    w = _args.weights_array(weights, x)
    ops = _pass.Operands(x, t, w, labels, num_classes, ignore, alpha_scalar, alpha_per_class,
                         dtype, x.shape, None,
                         {"gamma": gamma_, "star": star, "beta": beta_, "loss": loss, "extra": extra,
                          "extra2": extra2, "extra3": extra3, "extra4": extra4})
    want_loss, want_grad, want_hess, out_receives = mode
    return _pass.run(_ELEMENTWISE, ops, reduction, normalizer, out, want_loss=want_loss,
                     want_grad=want_grad, want_hess=want_hess, out_receives=out_receives,
                     raw_sum=raw_sum, loss_into=loss_into,
                     sources=(logits, targets, weights, alpha))


_plain = _core.sigmoid_plain


# --- the specification ----------------------------------------------------

_LOGITS = Parameter("logits", """\
logits : array_like
    Raw scores x, any shape; the last axis is the class axis.  float32 and
    float64 keep their dtype, float16 and bfloat16 (ml_dtypes) are computed
    in float32, integers are converted as NumPy's math functions convert
    them.  Read in place, any layout or byte order (bfloat16 too, cast block
    by block).""")
_TARGETS = Parameter("targets", """\
targets : array_like
    Either dense targets y in [0, 1] with as many dimensions as `logits`
    (each equal or 1; bool, integer or float; soft values allowed), or
    integer class indices of shape ``logits.shape[:-1]``: c in [0, C) makes
    class c positive and the others negative in that row, C (the number of
    classes) marks a background row, `ignore_index` a row that contributes
    nothing.  Class indices never build a one-hot array.  Over one class
    (a last axis of length 1) index 0 is that class's positive and 1
    background, the reverse of 0/1 labels: a UserWarning says so.""")
_ALPHA = Parameter("alpha", """\
alpha : None, float or array_like, default 0.25
    Weight of the positive targets: alpha_t = alpha y + (1 - alpha)(1 - y).
    A float in [0, 1], one value per class (length C), or None for no
    weighting (torchvision's ``alpha=-1``).""", default=0.25)
_GAMMA = Parameter("gamma", """\
gamma : float, default 2.0
    Focusing parameter >= 0; 0 gives alpha-balanced cross-entropy.""", default=2.0, stub="Real")
_REDUCTION = Parameter("reduction", """\
reduction : {"mean", "sum", "none", "sum_over_positives"}, default "mean"
    "none": one value per element; "sum"; "mean": sum of w l over the sum of
    w, over elements not ignored (nan when there are none);
    "sum_over_positives": the sum over the number of positive targets (at
    least 1; for soft targets the sum of target values), the paper's
    normalisation.""", default="mean", keyword_only=True)
_WEIGHTS = Parameter("weights", """\
weights : array_like, optional
    Non-negative weights broadcastable to ``logits.shape``; each element's
    loss is multiplied by its weight.""", default=None, keyword_only=True)
_IGNORE_INDEX = Parameter("ignore_index", """\
ignore_index : int, default -1
    With class-index targets, the value that marks an ignored row; it must
    not be a class (0..C) itself.""", default=-1, keyword_only=True, stub="SupportsIndex")
_OUT = Parameter("out", "", default=None, keyword_only=True)

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

_GRAD_OUT = """\
A writable array of the logits' shape and the result dtype that
receives the gradient; it may be `logits` itself (in place)."""

_SPEC = LossSpec(
    name="sigmoid focal loss",
    family="elementwise",
    prefix="",
    parameters=(_LOGITS, _TARGETS, _ALPHA, _GAMMA, _REDUCTION, _WEIGHTS, _IGNORE_INDEX,
                _spec.NORMALIZER, _OUT),
    entry=_entry,
    plain=_plain,
    reductions=_args.REDUCTIONS,
    notes=_NOTES,
    docs={
        "loss": FunctionDoc(
            summary="Sigmoid focal loss of Lin et al. (RetinaNet).",
            out="""\
With ``reduction="none"``, a writable array of the logits' shape and
the result dtype that receives the per-element loss (it may be `logits`).""",
            returns="""\
numpy scalar or ndarray
    The reduced loss as a NumPy scalar of the result dtype (float32 or
    float64), or with ``reduction="none"`` an array of the logits' shape.""",
            see_also="grad, loss_and_grad, grad_hess",
            examples="""\
>>> import numpy as np, focal
>>> logits = np.array([[2.0, -1.0, 0.5]], dtype=np.float32)
>>> float(focal.loss(logits, np.array([0]), reduction="sum"))  # class 0 positive
0.3005...
>>> # a mean over a count known beforehand (here 4 positives on all workers)
>>> float(focal.loss(logits, np.array([0]), normalizer=4.0))
0.0751..."""),
        "grad": FunctionDoc(
            summary="Gradient of the reduced sigmoid focal loss with respect to the logits.",
            out=_GRAD_OUT,
            returns="""\
ndarray
    d(reduced loss)/d(logits), the logits' shape; with ``reduction="none"``
    the elementwise derivative.  Ignored rows get 0.""",
            examples="""\
>>> import numpy as np, focal
>>> g = focal.grad(np.zeros((2, 3)), np.array([1, 3]), reduction="sum")
>>> g.shape
(2, 3)"""),
        "loss_and_grad": FunctionDoc(
            summary="Sigmoid focal loss and its gradient, computed together in one pass.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> x = np.full((4, 80), focal.prior_bias(0.01), dtype=np.float32)
>>> value, g = focal.loss_and_grad(x, np.array([3, 80, 80, -1]))
>>> g.dtype
dtype('float32')"""),
        "grad_hess": FunctionDoc(
            summary="Elementwise first and second derivatives of the weighted focal loss.",
            extended="""\
What gradient-boosting objectives (XGBoost, LightGBM) need: both
derivatives of each element's unreduced, weighted loss with respect to
its logit, in one pass.""",
            out="",
            notes="""\
Notes
-----
The focal loss is not convex for gamma > 0: the second derivative is
negative for confidently wrong logits (for y = 1 and gamma = 2, below
x = -2.79; below -2.94 for gamma = 5).  Boosting needs a positive
hessian: `xgboost_objective` and `lightgbm_objective` raise it to a floor
(0.01 by default; much smaller floors let Newton steps diverge on
imbalanced data).""",
            examples="""\
>>> import numpy as np, focal
>>> x = np.array([[-8.0], [0.0], [8.0]])
>>> g, h = focal.grad_hess(x, np.ones_like(x), alpha=None)
>>> bool(h[0, 0] < 0)  # confidently wrong: the loss is concave there
True"""),
    },
)

_spec.define(_SPEC, globals())


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
    value = fractions.Fraction(_args.probability("pi", pi))
    return _args.log_of(value / (1 - value))

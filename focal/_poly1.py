"""The Poly-1 focal loss (Leng et al., PolyLoss, ICLR 2022): its specification,
an elementwise loss run by the sigmoid form's entry with its own row of the C
table of losses."""
from __future__ import annotations

import math
from typing import Any

from . import _args, _core, _sigmoid, _spec
from ._docs import INTERRUPTION
from ._sigmoid import _IGNORE_INDEX, _LOGITS, _OUT, _REDUCTION, _TARGETS, _WEIGHTS
from ._spec import FunctionDoc, LossSpec, Parameter

# its row of the table of losses (src/losses.h)
_ROW = _core.elementwise_losses.index("poly1")


def _entry(mode: Any, logits: Any, targets: Any, alpha: Any, gamma: Any, epsilon: Any,
           reduction: Any = "none", weights: Any = None, ignore_index: Any = -1,
           normalizer: Any = None, out: Any = None) -> Any:
    """Checks epsilon and runs the call as the sigmoid focal loss's entry does."""
    value = _args.real_scalar("epsilon", epsilon, "a finite real number >= -1")
    if not (math.isfinite(value) and value >= -1.0):
        raise ValueError(f"epsilon: expected a finite real number >= -1, got {value!r}")
    return _sigmoid._entry(mode, logits, targets, alpha, gamma, reduction=reduction,
                           weights=weights, ignore_index=ignore_index, normalizer=normalizer,
                           out=out, loss=_ROW, extra=value)


_ALPHA = Parameter("alpha", """\
alpha : None, float or array_like, default 0.25
    alpha_t = alpha y + (1 - alpha)(1 - y) multiplies the whole loss, the
    poly term included (see Notes).  A float in [0, 1], one value per class
    (length C), or None for no weighting.""", default=0.25)
_GAMMA = Parameter("gamma", """\
gamma : float, default 2.0
    Focusing parameter >= 0 of the focal term.""", default=2.0, stub="Real")
_EPSILON = Parameter("epsilon", """\
epsilon : float, default 1.0
    Coefficient of the poly term, a finite number >= -1 (the paper tunes it
    per task, sometimes negative; from -1 on the loss of a hard target is
    never negative).  0 gives the focal loss.""", default=1.0, stub="Real")

_NOTES = """\
Notes
-----
With p = sigmoid(x), q = 1 - p_t = p (1 - y) + (1 - p) y and
CE = -(y log p + (1 - y) log(1 - p)), the loss of an element is

    Poly-1 = alpha_t (q^gamma CE + epsilon q^(gamma + 1))
           = alpha_t q^gamma (CE + epsilon q),

the focal loss plus the leading term of its expansion in powers of q with
its coefficient moved by epsilon.  alpha_t weighs the poly term too, as
class weights and `weights` do: the PolyLoss paper's listing adds
epsilon q^(gamma + 1) after alpha_t has weighed the focal term only; both
agree with ``alpha=None``, the way to keep the poly term unweighted.

With a = 1 - 2y, w = p (1 - p) and r = w / q, the derivatives are those of
the focal loss with CE replaced by C = CE + epsilon q:

    dL/dx   = q^gamma [gamma a r C + C'],      C' = p - y + epsilon a w,
    d2L/dx2 = q^gamma [gamma (gamma - 1) a^2 r^2 C + gamma a r (1 - 2p) C
                       + 2 gamma a r C' + w (1 + epsilon a (1 - 2p))],

computed in log space as the focal loss is (q a sigmoid, CE softplus
terms), so extreme logits keep their digits.  For -1 <= epsilon < 0 the
sum CE + epsilon q would cancel where q is small (CE is q + q^2/2 + ...
there); it is formed as (CE - q) + (1 + epsilon) q instead, with
-log(1 - u) - u from a series of its own, and C' and the second
derivative's w (1 + epsilon - 2 epsilon q) likewise as sums of terms of
one sign, so that the accuracy holds there too.  That form costs about
2.8x the time of epsilon >= 0 (float32, whose blocks of hard targets take
the focal loss's staged loop); above gamma 8 every element takes the
scalar path (about 27x).

""" + INTERRUPTION

_GRAD_OUT = """\
A writable array of the logits' shape and the result dtype that
receives the gradient; it may be `logits` itself (in place)."""

_SPEC = LossSpec(
    name="Poly-1 focal loss",
    family="elementwise",
    prefix="poly1_",
    parameters=(_LOGITS, _TARGETS, _ALPHA, _GAMMA, _EPSILON, _REDUCTION, _WEIGHTS,
                _IGNORE_INDEX, _spec.NORMALIZER, _OUT),
    entry=_entry,
    reductions=_args.REDUCTIONS,
    notes=_NOTES,
    docs={
        "loss": FunctionDoc(
            summary="Poly-1 focal loss of Leng et al. (PolyLoss, 2022).",
            out="""\
With ``reduction="none"``, a writable array of the logits' shape and
the result dtype that receives the per-element loss (it may be `logits`).""",
            see_also="poly1_grad, poly1_loss_and_grad, poly1_grad_hess, loss",
            examples="""\
>>> import numpy as np, focal
>>> x = np.array([2.0, -1.0]); y = np.array([1.0, 1.0])
>>> bool(focal.poly1_loss(x, y) > focal.loss(x, y))  # epsilon > 0 adds to the focal loss
True
>>> float(focal.poly1_loss(x, y, epsilon=0.0)) == float(focal.loss(x, y))
True"""),
        "grad": FunctionDoc(
            summary="Gradient of the reduced Poly-1 focal loss with respect to the logits.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> g = focal.poly1_grad(np.zeros((2, 3)), np.array([1, 3]), reduction="sum")
>>> g.shape
(2, 3)"""),
        "loss_and_grad": FunctionDoc(
            summary="Poly-1 focal loss and its gradient, computed together in one pass.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> value, g = focal.poly1_loss_and_grad(np.zeros((2, 3)), np.array([0, 3]), epsilon=2.0)
>>> g.dtype
dtype('float64')"""),
        "grad_hess": FunctionDoc(
            summary="Elementwise first and second derivatives of the weighted Poly-1 focal loss.",
            out="",
            examples="""\
>>> import numpy as np, focal
>>> g, h = focal.poly1_grad_hess(np.array([[-3.0], [3.0]]), np.ones((2, 1)), alpha=None)
>>> bool(g[0, 0] < g[1, 0] < 0)
True"""),
    },
)

_spec.define(_SPEC, globals())

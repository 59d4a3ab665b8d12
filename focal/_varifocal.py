"""The varifocal loss (Zhang et al., VarifocalNet, CVPR 2021): its
specification, an elementwise loss run by the sigmoid form's entry with its
own row of the C table of losses."""
from __future__ import annotations

import math
from typing import Any

from . import _args, _core, _sigmoid, _spec
from ._docs import INTERRUPTION
from ._sigmoid import _IGNORE_INDEX, _LOGITS, _OUT, _REDUCTION, _WEIGHTS
from ._spec import FunctionDoc, LossSpec, Parameter

# its row of the table of losses (src/losses.h)
_ROW = _core.elementwise_losses.index("varifocal")


def _entry(mode: Any, logits: Any, targets: Any, alpha: Any, gamma: Any,
           reduction: Any = "none", weights: Any = None, ignore_index: Any = -1,
           normalizer: Any = None, out: Any = None) -> Any:
    """Checks alpha and runs the call as the sigmoid focal loss's entry does
    (with no alpha_t: alpha weighs the q = 0 branch only, in the kernel)."""
    value = _args.real_scalar("alpha", alpha, "a finite real number >= 0")
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"alpha: expected a finite real number >= 0, got {value!r}")
    return _sigmoid._entry(mode, logits, targets, None, gamma, reduction=reduction,
                           weights=weights, ignore_index=ignore_index, normalizer=normalizer,
                           out=out, loss=_ROW, extra=value)


_TARGETS = Parameter("targets", """\
targets : array_like
    Either the IoU-aware classification score q in [0, 1] of each element
    (the IoU of the predicted box with its ground truth at the positive
    class, 0 elsewhere), with as many dimensions as `logits` (each equal or
    1), or integer class indices of shape ``logits.shape[:-1]`` (q = 1 for
    the row's class, 0 for the others; C marks a background row,
    `ignore_index` an ignored row).""")
_ALPHA = Parameter("alpha", """\
alpha : float, default 0.75
    Weight of the negatives (q = 0), a finite number >= 0.  Positives are
    weighed by q itself.""", default=0.75)
_GAMMA = Parameter("gamma", """\
gamma : float, default 2.0
    Exponent >= 0 of p in the negatives' weight.""", default=2.0, stub="Real")

_NOTES = """\
Notes
-----
With p = sigmoid(x), the loss of an element of target q is

    q > 0:  VFL = -q (q log p + (1 - q) log(1 - p)),
    q = 0:  VFL = -alpha p^gamma log(1 - p),

Eq. 2 of Zhang et al. (2021), mmdetection's ``VarifocalLoss`` with
``iou_weighted=True``.  The derivatives:

    q > 0:  dVFL/dx = q (p - q),  d2VFL/dx2 = q p (1 - p),
    q = 0:  dVFL/dx = alpha p^gamma [gamma (1 - p) S + p],
            d2VFL/dx2 = alpha p^gamma [gamma (1 - p)(gamma (1 - p) - p) S
                                       + 2 gamma (1 - p) p + p (1 - p)],

with S = -log(1 - p) = softplus(x).  Everything is computed in log space:
log p and log(1 - p) are softplus terms, 1 - p a sigmoid of -x, never 1
minus a rounded probability, so extreme logits keep their digits.

""" + INTERRUPTION

_GRAD_OUT = """\
A writable array of the logits' shape and the result dtype that
receives the gradient; it may be `logits` itself (in place)."""

_SPEC = LossSpec(
    name="varifocal loss",
    family="elementwise",
    prefix="varifocal_",
    parameters=(_LOGITS, _TARGETS, _ALPHA, _GAMMA, _REDUCTION, _WEIGHTS, _IGNORE_INDEX,
                _spec.NORMALIZER, _OUT),
    entry=_entry,
    reductions=_args.REDUCTIONS,
    notes=_NOTES,
    docs={
        "loss": FunctionDoc(
            summary="Varifocal loss of Zhang et al. (VarifocalNet, 2021).",
            out="""\
With ``reduction="none"``, a writable array of the logits' shape and
the result dtype that receives the per-element loss (it may be `logits`).""",
            see_also="varifocal_grad, varifocal_loss_and_grad, varifocal_grad_hess",
            examples="""\
>>> import numpy as np, focal
>>> x = np.array([-2.0, -2.0]); q = np.array([0.8, 0.0])  # an IoU of 0.8, a negative
>>> loss = focal.varifocal_loss(x, q, reduction="none")
>>> bool(loss[1] < loss[0])
True"""),
        "grad": FunctionDoc(
            summary="Gradient of the reduced varifocal loss with respect to the logits.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> focal.varifocal_grad(np.zeros(2), np.array([0.5, 0.0]), reduction="sum")
array([0.       , 0.2237151])"""),
        "loss_and_grad": FunctionDoc(
            summary="Varifocal loss and its gradient, computed together in one pass.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> value, g = focal.varifocal_loss_and_grad(np.zeros((2, 3)), np.array([0, 3]))
>>> g.shape
(2, 3)"""),
        "grad_hess": FunctionDoc(
            summary="Elementwise first and second derivatives of the weighted varifocal loss.",
            out="",
            examples="""\
>>> import numpy as np, focal
>>> g, h = focal.varifocal_grad_hess(np.zeros(2), np.array([0.5, 0.0]))
>>> h  # q p (1 - p) for q = 0.5
array([0.125     , 0.29935755])"""),
    },
)

_spec.define(_SPEC, globals())

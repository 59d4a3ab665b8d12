"""The quality focal loss (Li et al., Generalized Focal Loss, NeurIPS 2020):
its specification, an elementwise loss run by the sigmoid form's entry with
its own row of the C table of losses."""
from __future__ import annotations

import math
from typing import Any

from . import _args, _core, _sigmoid, _spec
from ._docs import INTERRUPTION
from ._sigmoid import _IGNORE_INDEX, _LOGITS, _OUT, _REDUCTION, _WEIGHTS
from ._spec import FunctionDoc, LossSpec, Parameter

# its row of the table of losses (src/losses.h)
_ROW = _core.elementwise_losses.index("quality")


def _entry(mode: Any, logits: Any, targets: Any, beta: Any, reduction: Any = "none",
           weights: Any = None, ignore_index: Any = -1, normalizer: Any = None,
           out: Any = None) -> Any:
    """Checks beta and runs the call as the sigmoid focal loss's entry does,
    beta in gamma's place (the row reads its exponent there) and no alpha."""
    value = _args.real_scalar("beta", beta, "a finite real number >= 0")
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"beta: expected a finite real number >= 0, got {value!r}")
    return _sigmoid._entry(mode, logits, targets, None, value, reduction=reduction,
                           weights=weights, ignore_index=ignore_index, normalizer=normalizer,
                           out=out, loss=_ROW)


_TARGETS = Parameter("targets", """\
targets : array_like
    Either the quality score y in [0, 1] of each element (the IoU of the
    predicted box with its ground truth at the positive class, 0 elsewhere),
    with as many dimensions as `logits` (each equal or 1), or integer class
    indices of shape ``logits.shape[:-1]`` (y = 1 for the row's class, 0 for
    the others; C marks a background row, `ignore_index` an ignored row).""")
_BETA = Parameter("beta", """\
beta : float, default 2.0
    Exponent >= 0 of the scaling factor |y - p|.  There is no alpha: the
    quality focal loss has none (weigh classes or elements with
    `weights`).""", default=2.0, stub="Real")

_NOTES = """\
Notes
-----
With p = sigmoid(x) and CE = -(y log p + (1 - y) log(1 - p)), the loss of
an element of quality target y is

    QFL = |y - p|^beta CE,

the quality focal loss of Li et al. (2020), mmdetection's
``QualityFocalLoss``.  For y in {0, 1} it is the focal loss at
gamma = beta without alpha, and the values are the focal loss's, bit for
bit in blocks of hard targets.  With u = p - y, w = p (1 - p) and
rho = w / u, the derivatives are

    dQFL/dx   = |u|^beta [beta rho CE + u],
    d2QFL/dx2 = |u|^beta [beta (beta - 1) rho^2 CE + beta rho (1 - 2p) CE
                          + 2 beta rho u + w].

Everything is computed in log space (log p and log(1 - p) as softplus
terms, 1 - p as a sigmoid of -x, never 1 minus a rounded probability), and
u = (1 - y) p - y (1 - p) in double-double from a p of about 100 bits (of
double-double accuracy for float32 results), so its sign and digits are
right even where p is close to y: float64 results lose bits only within
about 1e-14 p of p = y, where they are off by about beta 2^-104 p / |u|
relative (3.4 ULP at the logits next to logit(0.3), a few hundred ULP at
the double nearest logit(y) for some targets near 1/2).

Where p approaches a soft target y (u -> 0) the gradient grows like
|u|^(beta - 1) and the second derivative like |u|^(beta - 2): for
beta < 1, and beta < 2 respectively, they are unbounded there, yet finite
at every u != 0 where their exact values are (+-inf only beyond the dtype's
range, as at beta 0.5 and x = 1e-300 with y = 0.5).  Where |u| is tiny or
beta |w / u| huge the terms are formed as c |u|^m in log space and scaled
last, so no factor overflows or underflows on its own.  At u == 0 exactly (x = 0 with y = 0.5) the loss is 0 (CE
for beta = 0); the gradient is 0, its limit for beta > 1 and beta = 0 and
the mean of its one-sided limits for beta = 1 (for 0 < beta < 1 it has no
limit; 0 is where the loss is smallest); the second derivative is its
limit p (1 - p) for beta = 0 and 2 (p (1 - p))^2 CE for beta = 2, and 0
for every other beta (0 for beta > 2 is its limit; for 0 < beta < 2 it is
unbounded there, and the value is that of its bounded terms).  No finite
logit and no accepted beta gives NaN.

""" + INTERRUPTION

_GRAD_OUT = """\
A writable array of the logits' shape and the result dtype that
receives the gradient; it may be `logits` itself (in place)."""

_SPEC = LossSpec(
    name="quality focal loss",
    family="elementwise",
    prefix="quality_",
    parameters=(_LOGITS, _TARGETS, _BETA, _REDUCTION, _WEIGHTS, _IGNORE_INDEX,
                _spec.NORMALIZER, _OUT),
    entry=_entry,
    reductions=_args.REDUCTIONS,
    notes=_NOTES,
    docs={
        "loss": FunctionDoc(
            summary="Quality focal loss of Li et al. (Generalized Focal Loss, 2020).",
            out="""\
With ``reduction="none"``, a writable array of the logits' shape and
the result dtype that receives the per-element loss (it may be `logits`).""",
            see_also="quality_grad, quality_loss_and_grad, quality_grad_hess",
            examples="""\
>>> import numpy as np, focal
>>> x = np.array([0.0, 0.0, 3.0]); y = np.array([0.5, 0.9, 0.9])
>>> focal.quality_loss(x, y, reduction="none")  # 0 where p = y
array([0.        , 0.11090355, 0.00096351])"""),
        "grad": FunctionDoc(
            summary="Gradient of the reduced quality focal loss with respect to the logits.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> focal.quality_grad(np.zeros(2), np.array([0.5, 0.9]), reduction="sum")
array([ 0.        , -0.20262944])"""),
        "loss_and_grad": FunctionDoc(
            summary="Quality focal loss and its gradient, computed together in one pass.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> value, g = focal.quality_loss_and_grad(np.zeros((2, 3)), np.array([0, 3]))
>>> g.shape
(2, 3)"""),
        "grad_hess": FunctionDoc(
            summary="Elementwise first and second derivatives of the weighted quality focal loss.",
            out="",
            examples="""\
>>> import numpy as np, focal
>>> g, h = focal.quality_grad_hess(np.zeros(2), np.array([0.5, 0.9]))
>>> h  # 2 (p (1 - p))^2 CE at p = y (beta 2)
array([0.0866434, 0.2866434])"""),
    },
)

_spec.define(_SPEC, globals())

"""The asymmetric loss (Ridnik et al., Asymmetric Loss For Multi-Label
Classification, ICCV 2021): its specification, an elementwise loss run by the
sigmoid form's entry with its own row of the C table of losses."""
from __future__ import annotations

import decimal
import functools
import math
from typing import Any, Tuple

from . import _args, _core, _sigmoid, _spec
from ._docs import INTERRUPTION
from ._sigmoid import _IGNORE_INDEX, _LOGITS, _OUT, _REDUCTION, _WEIGHTS
from ._spec import FunctionDoc, LossSpec, Parameter

# its row of the table of losses (src/losses.h)
_ROW = _core.elementwise_losses.index("asymmetric")


def _exponent(name: str, value: Any) -> float:
    number = _args.real_scalar(name, value, "a finite real number >= 0")
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{name}: expected a finite real number >= 0, got {number!r}")
    return number


@functools.lru_cache(maxsize=64)
def _logit_parts(clip: float) -> Tuple[float, float]:
    """logit(clip) = log(m / (1 - m)) as a double-double (hi, lo), from
    50-digit decimal logarithms of the exact clip: the kernel's e^d - 1 form
    of p - m (src/focal_family.h) needs it to 2^-106.  (0, 0) for clip 0."""
    if clip == 0.0:
        return 0.0, 0.0
    with decimal.localcontext() as context:
        context.prec = 50
        m = decimal.Decimal(clip)
        exact = m.ln() - (1 - m).ln()
        hi = float(exact)
        return hi, float(exact - decimal.Decimal(hi))


def _entry(mode: Any, logits: Any, targets: Any, gamma_pos: Any, gamma_neg: Any, clip: Any,
           reduction: Any = "none", weights: Any = None, ignore_index: Any = -1,
           normalizer: Any = None, out: Any = None) -> Any:
    """Checks gamma_pos, gamma_neg and clip and runs the call as the sigmoid
    focal loss's entry does (no alpha_t; gamma_neg as its gamma, see
    src/losses.h)."""
    positive = _exponent("gamma_pos", gamma_pos)
    negative = _exponent("gamma_neg", gamma_neg)
    shift = _args.real_scalar("clip", clip, "a real number in [0, 1)")
    if not 0.0 <= shift < 1.0:
        raise ValueError(f"clip: expected a real number in [0, 1), got {shift!r}")
    logit_hi, logit_lo = _logit_parts(shift)
    return _sigmoid._entry(mode, logits, targets, None, negative, reduction=reduction,
                           weights=weights, ignore_index=ignore_index, normalizer=normalizer,
                           out=out, loss=_ROW, extra=positive, extra2=shift, extra3=logit_hi,
                           extra4=logit_lo)


_TARGETS = Parameter("targets", """\
targets : array_like
    Hard multi-label targets: dense values in {0, 1} with as many
    dimensions as `logits` (each equal or 1), or integer class indices of
    shape ``logits.shape[:-1]`` (1 for the row's class, 0 for the others; C
    marks a background row, `ignore_index` an ignored row).  Soft targets
    are refused.""")
_GAMMA_POS = Parameter("gamma_pos", """\
gamma_pos : float, default 0.0
    Focusing exponent >= 0 of the positives, on 1 - p.""", default=0.0, stub="Real")
_GAMMA_NEG = Parameter("gamma_neg", """\
gamma_neg : float, default 4.0
    Focusing exponent >= 0 of the negatives, on the shifted probability
    p_m.""", default=4.0, stub="Real")
_CLIP = Parameter("clip", """\
clip : float, default 0.05
    The probability shift m in [0, 1): p_m = max(p - m, 0); 0 shifts
    nothing.""", default=0.05, stub="Real")

_NOTES = """\
Notes
-----
With p = sigmoid(x) and p_m = max(p - m, 0) (m = `clip`), the loss of an
element is

    y = 1:  L+ = -(1 - p)^gamma_pos log p,
    y = 0:  L- = -p_m^gamma_neg log(1 - p_m),

Eq. 1 to 4 of Ridnik et al. (2021).  Negatives with p <= m have loss,
gradient and second derivative 0.  Above the clip, with P = p_m,
w = p (1 - p), u = 1 - P and sigma = -log(u) / P,

    dL-/dx   = w P^g (g sigma + 1/u),
    d2L-/dx2 = w P^g [(1 - 2p)(g sigma + 1/u)
                      + (w / P)(g (g - 1) sigma + 2g/u) + w / u^2]

(g = gamma_neg); the positives' are the focal loss's (gamma_pos, target 1).

The kink at p = m: the gradient is continuous there for gamma_neg > 0 and
jumps from 0 to w for gamma_neg = 0; the second derivative jumps for
gamma_neg <= 1 (from 0 to w (1 - 2m) + w^2 at gamma_neg 0, to 2 w^2 at
gamma_neg 1, without bound for 0 < gamma_neg < 1) and is continuous above
1.  At p = m itself every value is taken from below: loss, gradient and
second derivative 0 (for gamma_neg = 0, a subgradient).

Targets are hard (0 or 1), as multi-label classification gives them, or
class indices; a soft target raises ValueError (the authors' code mixes
soft targets nonlinearly, which is not defined here).  Everything is
computed in log space: 1 - p_m = (1 - p) + m with 1 - p a sigmoid of -x
(no rounded 1 - p), log(1 - p_m) as log1p(-p_m) while p_m <= 1/4, and
no clamp, so extreme logits keep their digits where the authors' clamp at
1e-8 does not (their loss of a positive at x = -30 is 18.42, not 30).
Near the clip, where p - m would cancel, p_m is computed as
m (1 - p)(e^d - 1) with d = x - logit(m), exact to the last bit.

""" + INTERRUPTION

_GRAD_OUT = """\
A writable array of the logits' shape and the result dtype that
receives the gradient; it may be `logits` itself (in place)."""

_SPEC = LossSpec(
    name="asymmetric loss",
    family="elementwise",
    prefix="asymmetric_",
    parameters=(_LOGITS, _TARGETS, _GAMMA_POS, _GAMMA_NEG, _CLIP, _REDUCTION, _WEIGHTS,
                _IGNORE_INDEX, _spec.NORMALIZER, _OUT),
    entry=_entry,
    reductions=_args.REDUCTIONS,
    notes=_NOTES,
    docs={
        "loss": FunctionDoc(
            summary="Asymmetric loss of Ridnik et al. (multi-label classification, 2021).",
            out="""\
With ``reduction="none"``, a writable array of the logits' shape and
the result dtype that receives the per-element loss (it may be `logits`).""",
            see_also="asymmetric_grad, asymmetric_loss_and_grad, asymmetric_grad_hess",
            examples="""\
>>> import numpy as np, focal
>>> x = np.array([-4.0, 1.0, 1.0]); y = np.array([0.0, 0.0, 1.0])
>>> focal.asymmetric_loss(x, y, reduction="none")  # p = 0.018 is below the clip
array([0.        , 0.24586022, 0.31326169])"""),
        "grad": FunctionDoc(
            summary="Gradient of the reduced asymmetric loss with respect to the logits.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> focal.asymmetric_grad(np.zeros(2), np.array([1.0, 0.0]), reduction="sum")
array([-0.5      ,  0.0731171])"""),
        "loss_and_grad": FunctionDoc(
            summary="Asymmetric loss and its gradient, computed together in one pass.",
            out=_GRAD_OUT,
            examples="""\
>>> import numpy as np, focal
>>> value, g = focal.asymmetric_loss_and_grad(np.zeros((2, 3)), np.array([0, 3]))
>>> g.shape
(2, 3)"""),
        "grad_hess": FunctionDoc(
            summary="Elementwise first and second derivatives of the weighted asymmetric loss.",
            out="",
            examples="""\
>>> import numpy as np, focal
>>> g, h = focal.asymmetric_grad_hess(np.zeros(2), np.array([1.0, 0.0]), gamma_neg=0.0)
>>> float(h[0])  # p (1 - p) for a positive at gamma_pos 0
0.25"""),
    },
)

_spec.define(_SPEC, globals())

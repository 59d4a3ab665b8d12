"""FL*, the alternative focal loss of the paper's Appendix A: its specification
(an elementwise loss, run by the sigmoid form's entry with the FL* kernel)."""
from __future__ import annotations

from . import _args, _spec
from ._docs import INTERRUPTION
from ._sigmoid import _LOGITS, _OUT, _entry
from ._spec import FunctionDoc, LossSpec, Parameter

_TARGETS = Parameter("targets", """\
targets : array_like
    Hard targets: dense values in {0, 1} with as many dimensions as `logits`
    (each equal or 1), or integer class indices of shape
    ``logits.shape[:-1]`` with the sigmoid form's conventions (C marks a
    background row, -1 an ignored row).""")
_ALPHA = Parameter("alpha", """\
alpha : None, float or array_like, default 0.25
    alpha_t = alpha for positive targets, 1 - alpha for negative ones (the
    paper uses 0.25 in every FL* run); one value per class, or None.""", default=0.25)
_GAMMA = Parameter("gamma", """\
gamma : float, default 4.0
    Sharpness, > 0.""", default=4.0, stub="Real")
_BETA = Parameter("beta", """\
beta : float, default 0.0
    Shift of the logit.  Table 3's best settings are gamma 4, beta 0 and
    gamma 2, beta 1.""", default=0.0, stub="Real")
_REDUCTION = Parameter("reduction", """\
reduction : {"mean", "sum", "none", "sum_over_positives"}, default "mean"
    As for `focal.loss`.""", default="mean", keyword_only=True)
_WEIGHTS = Parameter("weights", """\
weights : array_like, optional
    Non-negative weights broadcastable to ``logits.shape``.""", default=None, keyword_only=True)

_NOTES = """\
Notes
-----
With s = +1 for a positive target and -1 for a negative one,
x_t = s x, p*_t = sigmoid(gamma x_t + beta) and

    FL* = alpha_t (-log p*_t) / gamma,   d(FL*)/dx = alpha_t s (p*_t - 1).

The loss is a softplus and 1 - p*_t a sigmoid of -(gamma x_t + beta), both
computed from one exp and one log1p, exact in the tails.

""" + INTERRUPTION

_GRAD_OUT = """\
A writable array of the logits' shape and the result dtype that
receives the gradient; it may be `logits` itself."""

_SPEC = LossSpec(
    name="FL*",
    family="elementwise",
    prefix="star_",
    parameters=(_LOGITS, _TARGETS, _ALPHA, _GAMMA, _BETA, _REDUCTION, _WEIGHTS,
                _spec.NORMALIZER, _OUT),
    entry=_entry,
    reductions=_args.REDUCTIONS,
    fixed={"ignore_index": -1, "star": True},
    notes=_NOTES,
    docs={
        "loss": FunctionDoc(
            summary="FL*, the alternative focal loss of Appendix A of Lin et al. (2017).",
            out="""\
With ``reduction="none"``, a writable array of the logits' shape and
the result dtype that receives the per-element loss.""",
            returns="""\
numpy scalar or ndarray
    The reduced loss, or with ``reduction="none"`` one value per element.""",
            see_also="star_grad, star_loss_and_grad, loss",
            examples="""\
>>> import numpy as np, focal
>>> x = np.array([2.0, -1.0]); y = np.array([1, 0])
>>> bool(focal.star_loss(x, y) < focal.star_loss(-x, y))
True"""),
        "grad": FunctionDoc(
            summary="Gradient of the reduced FL* with respect to the logits.",
            out=_GRAD_OUT,
            returns="""\
ndarray
    The gradient, of the logits' shape.""",
            examples="""\
>>> import numpy as np, focal
>>> focal.star_grad(np.zeros(2), np.array([1, 0]), alpha=None, reduction="sum")
array([-0.5,  0.5])"""),
        "loss_and_grad": FunctionDoc(
            summary="FL* and its gradient, computed together in one pass.",
            out="""\
A writable array of the logits' shape and the result dtype that
receives the gradient.""",
            examples="""\
>>> import numpy as np, focal
>>> value, g = focal.star_loss_and_grad(np.zeros((2, 3)), np.array([0, 3]), gamma=2, beta=1)
>>> g.shape
(2, 3)"""),
    },
)

_spec.define(_SPEC, globals())

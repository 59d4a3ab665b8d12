"""A slow, plain NumPy twin of focal, to test the C core against.

Everything is computed in float64 straight from the formulas (PAPER.md and
the docstrings of focal), with no care for extreme logits: callers keep
|x| <= 30 or so.  Class-index targets are expanded to a one-hot array and an
ignore mask, which the package itself never builds.

    p = sigmoid(x), CE = -(y log p + (1 - y) log(1 - p))
    q = 1 - p_t = p (1 - y) + (1 - p) y
    alpha_t = alpha y + (1 - alpha)(1 - y)       (1 when alpha is None)
    FL = alpha_t q^gamma CE, times the element weight w

With a = 1 - 2y, s = p (1 - p) (dp/dx), d = p - y (dCE/dx) and dq/dx = a s:

    dFL/dx   = alpha_t [gamma a s q^(gamma-1) CE + q^gamma d]
    d2FL/dx2 = alpha_t q^gamma [gamma (gamma-1) a^2 (s/q)^2 CE
                                + gamma a (s/q) (1 - 2p) CE + 2 gamma a (s/q) d + s]
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


def result_dtype(logits_dtype) -> np.dtype:
    """float64 when NumPy's math would give float64 for the logits, else float32."""
    if np.result_type(np.dtype(logits_dtype), np.float16) == np.float64:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


class Targets(NamedTuple):
    y: np.ndarray          # float64, the logits' shape; 0 in ignored rows
    valid: np.ndarray      # bool, the logits' shape; False in ignored rows
    positives: float       # number of positive targets (sum of y for soft targets)
    labels: bool           # whether the targets were class indices


def expand_targets(targets, shape, ignore_index=-1) -> Targets:
    """Dense targets broadcast to `shape`, or class indices as one-hot rows."""
    t = np.asarray(targets)
    if t.ndim == len(shape):
        y = np.broadcast_to(t.astype(np.float64), shape).copy()
        assert np.all((y >= 0) & (y <= 1)), "reference: dense targets outside [0, 1]"
        return Targets(y, np.ones(shape, dtype=bool), float(y.sum()), False)
    assert t.ndim == len(shape) - 1 and t.dtype.kind in "iu", "reference: not class indices"
    num_classes = shape[-1]
    labels = t.astype(np.int64)[..., np.newaxis]
    ignored = labels == ignore_index
    assert np.all(ignored | ((labels >= 0) & (labels <= num_classes))), "reference: bad label"
    y = (labels == np.arange(num_classes)).astype(np.float64)
    valid = np.broadcast_to(~ignored, shape).copy()
    positives = float(np.count_nonzero((labels >= 0) & (labels < num_classes)))
    return Targets(y, valid, positives, True)


def alpha_weight(alpha, y: np.ndarray) -> np.ndarray:
    """alpha_t; a 1-D alpha is one value per class (the last axis)."""
    if alpha is None:
        return np.ones_like(y)
    alpha = np.asarray(alpha, dtype=np.float64)
    return alpha * y + (1.0 - alpha) * (1.0 - y)


class Elementwise(NamedTuple):
    """Unweighted per-element values (alpha_t included) and error scales.

    The *_scale arrays hold the sum of the absolute values of the terms that
    are added (p - y, 1 - 2p and the bracket terms), which bounds the rounding
    error of any evaluation of the same formula where the terms cancel.
    """
    loss: np.ndarray
    grad: np.ndarray
    hess: np.ndarray
    grad_scale: np.ndarray
    hess_scale: np.ndarray


def elementwise(x: np.ndarray, y: np.ndarray, alpha_t: np.ndarray, gamma: float) -> Elementwise:
    x = np.asarray(x, dtype=np.float64)
    g = float(gamma)
    log_p = -np.logaddexp(0.0, -x)            # log sigmoid(x)
    log_1mp = -np.logaddexp(0.0, x)           # log sigmoid(-x) = log(1 - p)
    p = np.exp(log_p)
    one_minus_p = np.exp(log_1mp)
    ce = -(y * log_p + (1.0 - y) * log_1mp)
    q = p * (1.0 - y) + one_minus_p * y
    a = 1.0 - 2.0 * y
    s = p * one_minus_p
    d = p * (1.0 - y) - one_minus_p * y   # = p - y, without cancelling against y = 1
    q_g = q ** g
    fl = alpha_t * q_g * ce
    dfl = alpha_t * (g * a * s * q ** (g - 1.0) * ce + q_g * d)
    r = s / q
    bracket = g * (g - 1.0) * a**2 * r**2 * ce + g * a * r * (1.0 - 2.0 * p) * ce + 2.0 * g * a * r * d + s
    d2fl = alpha_t * q_g * bracket
    # |p - y| <= (1 - y) p + y (1 - p) = q and |1 - 2p| <= 1 bound the cancelling parts
    grad_scale = alpha_t * q_g * (g * np.abs(a) * r * ce + q)
    hess_scale = alpha_t * q_g * (
        g * abs(g - 1.0) * a**2 * r**2 * ce + g * np.abs(a) * r * ce + 2.0 * g * np.abs(a) * r * q + s
    )
    return Elementwise(fl, dfl, d2fl, grad_scale, hess_scale)


class Reference(NamedTuple):
    loss: object               # float, or an array for reduction="none"
    grad: np.ndarray           # derivative of the reduced loss
    grad_scale: np.ndarray     # error scale of grad (see Elementwise)
    elementwise_grad: np.ndarray   # derivative of the weighted unreduced loss (grad_hess)
    elementwise_grad_scale: np.ndarray
    hess: np.ndarray
    hess_scale: np.ndarray
    denominator: float         # what the sum is divided by (1 for "none" and "sum")


def focal_reference(
    logits,
    targets,
    alpha=0.25,
    gamma=2.0,
    *,
    reduction: str = "mean",
    weights=None,
    ignore_index: int = -1,
) -> Reference:
    x = np.asarray(logits, dtype=np.float64)
    shape = x.shape
    t = expand_targets(targets, shape, ignore_index)
    alpha_t = alpha_weight(alpha, t.y)
    values = elementwise(x, t.y, alpha_t, gamma)
    w = np.ones(shape) if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64), shape)
    w = np.where(t.valid, w, 0.0)   # an ignored row counts nowhere

    loss = w * values.loss
    grad = w * values.grad
    grad_scale = w * values.grad_scale
    hess = w * values.hess
    hess_scale = w * values.hess_scale

    if reduction == "none":
        reduced, denominator = loss, 1.0
    elif reduction == "sum":
        reduced, denominator = float(loss.sum()), 1.0
    elif reduction == "mean":
        denominator = float(w.sum())
        reduced = float(loss.sum()) / denominator if denominator > 0 else float("nan")
    elif reduction == "sum_over_positives":
        denominator = max(t.positives, 1.0)
        reduced = float(loss.sum()) / denominator
    else:
        raise ValueError(reduction)
    # With nothing to divide by every element has weight 0 or is ignored: gradient 0.
    divisor = denominator if denominator > 0 else 1.0
    return Reference(
        loss=reduced,
        grad=grad / divisor,
        grad_scale=grad_scale / divisor,
        elementwise_grad=grad,
        elementwise_grad_scale=grad_scale,
        hess=hess,
        hess_scale=hess_scale,
        denominator=denominator,
    )


def tolerance(dtype, expected, scale=0.0):
    """Allowed |actual - expected| for a result stored in `dtype`.

    float64: 1e-12 relative to the value and to the scale of cancelling terms.
    float32: the same double-precision error plus a few float32 roundings (of
    the value itself, wherever it is computed), and a few subnormal spacings
    for values that underflow float32.
    """
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    expected = np.abs(np.asarray(expected, dtype=np.float64))
    tiny = 4 * float(info.smallest_subnormal)
    if dtype == np.float64:
        return 1e-12 * (expected + scale) + tiny
    return 4 * float(info.eps) * expected + 1e-12 * scale + tiny

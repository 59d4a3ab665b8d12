"""Slow, obviously-correct twins of focal's losses, to test the C core against.

One twin per loss, each formula written once (PAPER.md and the docstrings of
focal):

* sigmoid focal loss: `focal_reference` (NumPy) and `sigmoid_focal_mp` (mpmath);
* FL*: `star_reference` and `star_mp`;
* Poly-1 focal loss: `poly1_reference` and `poly1_mp`;
* varifocal loss: `varifocal_reference` and `varifocal_mp`;
* quality focal loss: `quality_reference` and `quality_mp`;
* asymmetric loss: `asymmetric_reference` and `asymmetric_mp`;
* softmax focal loss: `softmax_reference` and `softmax_mp`.

The NumPy twins compute in float64 with no care for extreme logits (callers
keep |x| <= 30 or so) and share one reduction (`reduce_values`); class-index
targets are expanded to a one-hot array and an ignore mask, which the package
itself never builds.  The mpmath twins evaluate one element (or one softmax
row) with at least 50 significant digits, for the ULP accuracy tests; they
take their inputs exactly (float logits are converted without rounding).

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

import math
from typing import NamedTuple, Optional

import mpmath
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
        # (fsum: the exact sum, rounded once; NumPy's pairwise sum of soft
        # targets can be a few units of 2^-53 off, more than the reductions'
        # tests allow for their own rounding)
        return Targets(y, np.ones(shape, dtype=bool), math.fsum(y.ravel()), False)
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
    hess: Optional[np.ndarray]     # None for a loss without a second derivative
    hess_scale: Optional[np.ndarray]
    denominator: float         # what the sum is divided by (1 for "none" and "sum")


def reduce_values(loss, grad, grad_scale, w, positives, reduction, hess=None, hess_scale=None):
    """The reductions of focal applied to unweighted values (any loss).

    `w` holds the weights, 0 where a row is ignored; its shape is that of
    `loss`, which the gradient's shape extends by the class axis for softmax
    rows.  A weight-0 element counts nowhere, even where its loss is infinite.
    """
    loss = np.where(w > 0, w * loss, 0.0)
    wg = w if np.ndim(w) == np.ndim(grad) else w[..., np.newaxis]
    grad = wg * grad
    grad_scale = wg * grad_scale
    if hess is not None:
        hess, hess_scale = wg * hess, wg * hess_scale
    if reduction == "none":
        reduced, denominator = loss, 1.0
    elif reduction == "sum":
        reduced, denominator = float(loss.sum()), 1.0
    elif reduction == "mean":
        denominator = float(w.sum())
        reduced = float(loss.sum()) / denominator if denominator > 0 else float("nan")
    elif reduction == "sum_over_positives":
        denominator = max(positives, 1.0)
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


def _weights(weights, shape, valid) -> np.ndarray:
    w = np.ones(shape) if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64), shape)
    return np.where(valid, w, 0.0)   # an ignored row counts nowhere


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
    """focal.loss / grad / grad_hess in float64, from the formulas above."""
    x = np.asarray(logits, dtype=np.float64)
    t = expand_targets(targets, x.shape, ignore_index)
    v = elementwise(x, t.y, alpha_weight(alpha, t.y), gamma)
    w = _weights(weights, x.shape, t.valid)
    return reduce_values(v.loss, v.grad, v.grad_scale, w, t.positives, reduction, v.hess, v.hess_scale)


# ---------------------------------------------------------------- FL*


def star_elementwise(x: np.ndarray, y: np.ndarray, alpha_t: np.ndarray, gamma: float, beta: float):
    """FL* (Appendix A) per element and its derivative, y in {0, 1}.

    With s = 2y - 1 and z = gamma s x + beta: FL* = alpha_t (-log sigmoid(z)) / gamma,
    dFL*/dx = alpha_t s (sigmoid(z) - 1) = -alpha_t s sigmoid(-z).  Both terms
    are of one sign: the error scale of the gradient is its magnitude.
    """
    x = np.asarray(x, dtype=np.float64)
    s = 2.0 * y - 1.0
    z = gamma * s * x + beta
    loss = alpha_t * np.logaddexp(0.0, -z) / gamma
    grad = -alpha_t * s * np.exp(-np.logaddexp(0.0, z))
    return loss, grad


def star_reference(
    logits,
    targets,
    alpha=0.25,
    gamma=4.0,
    beta=0.0,
    *,
    reduction: str = "mean",
    weights=None,
    ignore_index: int = -1,
) -> Reference:
    """focal.star_loss / star_grad in float64 (class-index rows equal to -1 are ignored)."""
    x = np.asarray(logits, dtype=np.float64)
    t = expand_targets(targets, x.shape, ignore_index)
    loss, grad = star_elementwise(x, t.y, alpha_weight(alpha, t.y), float(gamma), float(beta))
    w = _weights(weights, x.shape, t.valid)
    return reduce_values(loss, grad, np.abs(grad), w, t.positives, reduction)


# ---------------------------------------------------------------- Poly-1


def poly1_reference(
    logits,
    targets,
    alpha=0.25,
    gamma=2.0,
    epsilon=1.0,
    *,
    reduction: str = "mean",
    weights=None,
    ignore_index: int = -1,
) -> Reference:
    """focal.poly1_loss / grad / grad_hess in float64: the focal loss plus
    alpha_t epsilon q^(gamma+1), whose derivatives are
    alpha_t epsilon (gamma+1) q^gamma a s and
    alpha_t epsilon (gamma+1) q^gamma s (gamma a^2 s / q + a (1 - 2p))."""
    x = np.asarray(logits, dtype=np.float64)
    t = expand_targets(targets, x.shape, ignore_index)
    alpha_t = alpha_weight(alpha, t.y)
    g, eps = float(gamma), float(epsilon)
    v = elementwise(x, t.y, alpha_t, g)
    p = np.exp(-np.logaddexp(0.0, -x))
    one_minus_p = np.exp(-np.logaddexp(0.0, x))
    q = p * (1.0 - t.y) + one_minus_p * t.y
    a = 1.0 - 2.0 * t.y
    s = p * one_minus_p
    q_g = q ** g
    poly = alpha_t * eps * q_g * q
    dpoly = alpha_t * eps * (g + 1.0) * q_g * a * s
    d2poly = alpha_t * eps * (g + 1.0) * q_g * s * (g * a**2 * s / q + a * (1.0 - 2.0 * p))
    d2scale = np.abs(alpha_t * eps * (g + 1.0) * q_g * s) * (g * a**2 * s / q + np.abs(a))
    w = _weights(weights, x.shape, t.valid)
    return reduce_values(v.loss + poly, v.grad + dpoly, v.grad_scale + np.abs(dpoly), w,
                         t.positives, reduction, v.hess + d2poly, v.hess_scale + d2scale)


# ---------------------------------------------------------------- varifocal


def varifocal_reference(
    logits,
    targets,
    alpha=0.75,
    gamma=2.0,
    *,
    reduction: str = "mean",
    weights=None,
    ignore_index: int = -1,
) -> Reference:
    """focal.varifocal_loss / grad / grad_hess in float64.  q > 0: q CE(q),
    derivatives q (p - q) and q s; q = 0: alpha p^gamma S with S = softplus(x),
    derivatives alpha p^gamma (gamma (1 - p) S + p) and
    alpha p^gamma (gamma (1 - p)(gamma (1 - p) - p) S + 2 gamma (1 - p) p + s)."""
    x = np.asarray(logits, dtype=np.float64)
    t = expand_targets(targets, x.shape, ignore_index)
    q, g, a = t.y, float(gamma), float(alpha)
    log_p = -np.logaddexp(0.0, -x)
    softplus = np.logaddexp(0.0, x)           # -log(1 - p)
    p = np.exp(log_p)
    one_minus_p = np.exp(-softplus)
    s = p * one_minus_p
    ce = -(q * log_p) + (1.0 - q) * softplus
    d = p * (1.0 - q) - one_minus_p * q       # p - q
    p_g = p ** g
    negative = q == 0.0
    loss = np.where(negative, a * p_g * softplus, q * ce)
    grad = np.where(negative, a * p_g * (g * one_minus_p * softplus + p), q * d)
    grad_scale = np.where(negative, np.abs(grad), q * (p * (1.0 - q) + one_minus_p * q))
    bracket = [g * one_minus_p * (g * one_minus_p - p) * softplus, 2.0 * g * one_minus_p * p, s]
    hess = np.where(negative, a * p_g * sum(bracket), q * s)
    hess_scale = np.where(negative, a * p_g * sum(np.abs(b) for b in bracket), q * s)
    w = _weights(weights, x.shape, t.valid)
    return reduce_values(loss, grad, grad_scale, w, t.positives, reduction, hess, hess_scale)


# ---------------------------------------------------------------- asymmetric


def asymmetric_reference(
    logits,
    targets,
    gamma_pos=0.0,
    gamma_neg=4.0,
    clip=0.05,
    *,
    reduction: str = "mean",
    weights=None,
    ignore_index: int = -1,
) -> Reference:
    """focal.asymmetric_loss / grad / grad_hess in float64.  y = 1: the focal
    loss of target 1 at gamma_pos; y = 0: P^g S with P = max(p - m, 0),
    S = -log(1 - P), g = gamma_neg, derivatives w P^g (g S/P + 1/u) and
    w P^g ((1 - 2p)(g S/P + 1/u) + (w/P)(g (g - 1) S/P + 2g/u) + w/u^2),
    u = 1 - P, all 0 where P = 0."""
    x = np.asarray(logits, dtype=np.float64)
    t = expand_targets(targets, x.shape, ignore_index)
    y, gp, g, m = t.y, float(gamma_pos), float(gamma_neg), float(clip)
    assert np.all((y == 0) | (y == 1)), "reference: the asymmetric loss takes hard targets"
    positive = elementwise(x, np.ones_like(x), np.ones_like(x), gp)
    p = 1.0 / (1.0 + np.exp(-x))
    one_minus_p = 1.0 / (1.0 + np.exp(x))
    w = p * one_minus_p
    above = p > m
    big_p = np.where(above, p - m, 0.5)
    u = one_minus_p + m
    big_s = np.where(big_p > 0.25, -np.log(u), -np.log1p(-big_p))   # (1 - P rounded loses P)
    sigma = big_s / big_p
    p_g = big_p ** g
    bracket = g * sigma + 1.0 / u
    terms = [(1.0 - 2.0 * p) * bracket, (w / big_p) * (g * (g - 1.0) * sigma + 2.0 * g / u),
             w / u ** 2]
    negative_loss = np.where(above, p_g * big_s, 0.0)
    negative_grad = np.where(above, w * p_g * bracket, 0.0)
    negative_hess = np.where(above, w * p_g * sum(terms), 0.0)
    negative_hess_scale = np.where(above, w * p_g * sum(np.abs(a) for a in terms), 0.0)
    is_positive = y == 1.0
    loss = np.where(is_positive, positive.loss, negative_loss)
    grad = np.where(is_positive, positive.grad, negative_grad)
    grad_scale = np.where(is_positive, positive.grad_scale, np.abs(negative_grad))
    hess = np.where(is_positive, positive.hess, negative_hess)
    hess_scale = np.where(is_positive, positive.hess_scale, negative_hess_scale)
    weight = _weights(weights, x.shape, t.valid)
    return reduce_values(loss, grad, grad_scale, weight, t.positives, reduction, hess, hess_scale)


# ---------------------------------------------------------------- quality focal loss


def quality_reference(
    logits,
    targets,
    beta=2.0,
    *,
    reduction: str = "mean",
    weights=None,
    ignore_index: int = -1,
) -> Reference:
    """focal.quality_loss / grad / grad_hess in float64.  With u = p - y,
    s = p (1 - p) and rho = s / u: QFL = |u|^beta CE, derivatives
    |u|^beta (beta rho CE + u) and
    |u|^beta (beta (beta - 1) rho^2 CE + beta rho (1 - 2p) CE + 2 beta rho u + s);
    at u == 0, rho is taken as 0 and the second derivative is 2 s^2 CE at
    beta 2 (focal.quality_loss's Notes)."""
    x = np.asarray(logits, dtype=np.float64)
    t = expand_targets(targets, x.shape, ignore_index)
    y, b = t.y, float(beta)
    log_p = -np.logaddexp(0.0, -x)
    log_1mp = -np.logaddexp(0.0, x)
    p, one_minus_p = np.exp(log_p), np.exp(log_1mp)
    s = p * one_minus_p
    ce = -(y * log_p + (1.0 - y) * log_1mp)
    u = p * (1.0 - y) - one_minus_p * y
    zero = u == 0.0
    rho = np.where(zero, 0.0, s / np.where(zero, 1.0, u))
    u_b = np.abs(u) ** b
    loss = u_b * ce
    grad = u_b * (b * rho * ce + u)
    grad_scale = u_b * (b * np.abs(rho) * ce + np.abs(u))
    terms = [b * (b - 1.0) * rho**2 * ce, b * rho * (1.0 - 2.0 * p) * ce, 2.0 * b * rho * u, s]
    hess = np.where(zero & (b == 2.0), 2.0 * s**2 * ce, u_b * sum(terms))
    hess_scale = np.where(zero & (b == 2.0), 2.0 * s**2 * ce,
                          u_b * sum(np.abs(term) for term in terms))
    w = _weights(weights, x.shape, t.valid)
    return reduce_values(loss, grad, grad_scale, w, t.positives, reduction, hess, hess_scale)


# ---------------------------------------------------------------- softmax


def softmax_rows(z: np.ndarray, y: np.ndarray, a: np.ndarray, gamma: float):
    """(row losses, gradient, its error scale) of unweighted rows, class axis last.

    p = softmax(z), q_c = 1 - p_c taken as the other classes' share of the
    exponential sum (never 1 minus a rounded p_c), -log p_c = log1p(S - 1) +
    max z - z_c; FL = sum_c a_c y_c q_c^gamma (-log p_c) and
    dFL/dz_j = p_j G - G_j, G_c = a_c y_c q_c^gamma (gamma h_c + 1),
    h_c = p_c (-log p_c) / q_c, G = sum_c G_c.  The error scale is
    p_j |G| + |G_j|, the magnitude of the two terms that cancel.
    """
    num_classes = z.shape[-1]
    d = z - z.max(axis=-1, keepdims=True)
    e = np.exp(d)
    others = (e[..., None, :] * (1.0 - np.eye(num_classes))).sum(axis=-1)   # S - E_c
    total = e.sum(axis=-1, keepdims=True)
    rest = np.take_along_axis(others, np.argmax(z, axis=-1)[..., None], axis=-1)   # S - 1
    neg_log_p = np.log1p(rest) - d
    p = e / total
    q = others / total
    ay = a * y
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(others > 0, e * neg_log_p / np.where(others > 0, others, 1.0), 1.0)
        q_gamma = q ** gamma
    loss = (ay * q_gamma * neg_log_p).sum(axis=-1)
    g = ay * q_gamma * (gamma * h + 1.0)
    g_total = g.sum(axis=-1, keepdims=True)
    return loss, p * g_total - g, p * np.abs(g_total) + np.abs(g)


def softmax_reference(
    logits,
    targets,
    alpha=None,
    gamma=2.0,
    *,
    axis: int = -1,
    reduction: str = "mean",
    weights=None,
    ignore_index: int = -100,
) -> Reference:
    """focal.softmax_loss / softmax_grad in float64; `targets` are class
    indices (the logits' shape without `axis`) or dense rows along `axis`.

    The loss with reduction="none" has one value per row; the gradient and
    its error scale have the logits' shape.
    """
    x = np.asarray(logits).astype(np.float64)
    t = np.asarray(targets)
    z = np.moveaxis(x, axis, -1)
    num_classes = z.shape[-1]
    if t.ndim == x.ndim - 1:
        labels = t.astype(np.int64)
        valid = labels != ignore_index
        y = (np.where(valid, labels, -1)[..., None] == np.arange(num_classes)).astype(np.float64)
    else:
        y = np.moveaxis(t, axis, -1).astype(np.float64)
        valid = np.ones(z.shape[:-1], dtype=bool)
    a = np.ones(num_classes) if alpha is None else np.broadcast_to(
        np.asarray(alpha, dtype=np.float64), (num_classes,))
    loss, grad, scale = softmax_rows(z, y, a, float(gamma))
    w = _weights(weights, z.shape[:-1], valid)
    ref = reduce_values(loss, grad, scale, w, float(valid.sum()), reduction)
    return ref._replace(
        grad=np.moveaxis(ref.grad, -1, axis),
        grad_scale=np.moveaxis(ref.grad_scale, -1, axis),
        elementwise_grad=np.moveaxis(ref.elementwise_grad, -1, axis),
        elementwise_grad_scale=np.moveaxis(ref.elementwise_grad_scale, -1, axis),
    )


# ---------------------------------------------------------------- mpmath twins

MP_DIGITS = 50


def _mp(value):
    """An mpmath number equal to float(value) (taken exactly), or `value` itself if mpmath's."""
    if isinstance(value, mpmath.mpf):
        return mpmath.mpf(value)
    return mpmath.mpf(float(value))


def _precision():
    """At least MP_DIGITS digits, more when the caller works at more (mpmath.diff does)."""
    return mpmath.workdps(max(MP_DIGITS, mpmath.mp.dps))


class SigmoidMP(NamedTuple):
    loss: mpmath.mpf
    grad: mpmath.mpf
    hess: mpmath.mpf
    condition: mpmath.mpf    # sum of |terms| / |sum| of the second derivative's bracket


def sigmoid_focal_mp(x, y, gamma, alpha="0.25") -> SigmoidMP:
    """alpha_t FL at one logit, its first and second derivative (module docstring's closed forms)."""
    with _precision():
        x, y, gamma = _mp(x), _mp(y), _mp(gamma)
        alpha_t = 1 if alpha is None else _mp(alpha) * y + (1 - _mp(alpha)) * (1 - y)
        p = 1 / (1 + mpmath.exp(-x))
        one_minus_p = 1 / (1 + mpmath.exp(x))
        ce = y * mpmath.log1p(mpmath.exp(-x)) + (1 - y) * mpmath.log1p(mpmath.exp(x))
        q = p * (1 - y) + one_minus_p * y
        a = 1 - 2 * y
        s = p * one_minus_p
        r = s / q
        d = (1 - y) * p - y * one_minus_p   # p - y without losing 1 - p to rounding
        q_gamma = q ** gamma
        loss = alpha_t * q_gamma * ce
        grad = alpha_t * q_gamma * (gamma * a * r * ce + d)
        terms = [
            gamma * (gamma - 1) * a * a * r * r * ce,
            gamma * a * r * (one_minus_p - p) * ce,
            2 * gamma * a * r * d,
            s,
        ]
        bracket = sum(terms)
        hess = alpha_t * q_gamma * bracket
        condition = sum(abs(t) for t in terms) / abs(bracket) if bracket != 0 else mpmath.inf
        return SigmoidMP(+loss, +grad, +hess, +condition)


def sigmoid_focal_definition_mp(x, y, gamma, alpha="0.25"):
    """The textbook form alpha_t (1 - p_t)^gamma CE (Eq. 5), to differentiate numerically."""
    with _precision():
        x, y, gamma = _mp(x), _mp(y), _mp(gamma)
        alpha_t = 1 if alpha is None else _mp(alpha) * y + (1 - _mp(alpha)) * (1 - y)
        p = 1 / (1 + mpmath.exp(-x))
        q = p * (1 - y) + (1 - p) * y
        return alpha_t * q ** gamma * -(y * mpmath.log(p) + (1 - y) * mpmath.log(1 - p))


def star_mp(x, y, gamma, beta, alpha=None):
    """(FL*, dFL*/dx) at one logit, y in {0, 1}."""
    with _precision():
        s = 1 if y == 1 else -1
        gamma = _mp(gamma)
        z = gamma * s * _mp(x) + _mp(beta)
        loss = mpmath.log1p(mpmath.exp(-z)) / gamma
        grad = -s / (1 + mpmath.exp(z))
        if alpha is not None:
            alpha_t = _mp(alpha) if y == 1 else 1 - _mp(alpha)
            loss, grad = alpha_t * loss, alpha_t * grad
        return +loss, +grad


def poly1_mp(x, y, gamma, epsilon, alpha="0.25"):
    """(loss, dloss/dx, d2loss/dx2) of Poly-1 at one logit: sigmoid_focal_mp
    plus alpha_t epsilon q^(gamma+1) and its derivatives (poly1_reference).

    With epsilon < 0 the two parts cancel where CE is nearly q (CE - q is
    about q^2 / 2, q about e^-|x|): the sum is taken with |x| / ln 10 digits
    more, which the cancellation costs."""
    digits = max(MP_DIGITS, mpmath.mp.dps)
    if _mp(epsilon) < 0 and mpmath.isfinite(_mp(x)):
        digits += int(abs(_mp(x)) / mpmath.log(10)) + 10
    with mpmath.workdps(digits):
        focal_part = sigmoid_focal_mp(x, y, gamma, alpha)
        x, y, gamma, epsilon = _mp(x), _mp(y), _mp(gamma), _mp(epsilon)
        alpha_t = 1 if alpha is None else _mp(alpha) * y + (1 - _mp(alpha)) * (1 - y)
        p = 1 / (1 + mpmath.exp(-x))
        one_minus_p = 1 / (1 + mpmath.exp(x))
        q = p * (1 - y) + one_minus_p * y
        a = 1 - 2 * y
        s = p * one_minus_p
        q_gamma = q ** gamma
        loss = focal_part.loss + alpha_t * epsilon * q_gamma * q
        grad = focal_part.grad + alpha_t * epsilon * (gamma + 1) * q_gamma * a * s
        hess = focal_part.hess + alpha_t * epsilon * (gamma + 1) * q_gamma * s * (
            gamma * a * a * s / q + a * (one_minus_p - p))
        return +loss, +grad, +hess


def poly1_definition_mp(x, y, gamma, epsilon, alpha="0.25"):
    """alpha_t (q^gamma CE + epsilon q^(gamma+1)) as written, to differentiate numerically."""
    with _precision():
        x, y, gamma, epsilon = _mp(x), _mp(y), _mp(gamma), _mp(epsilon)
        alpha_t = 1 if alpha is None else _mp(alpha) * y + (1 - _mp(alpha)) * (1 - y)
        p = 1 / (1 + mpmath.exp(-x))
        q = p * (1 - y) + (1 - p) * y
        ce = -(y * mpmath.log(p) + (1 - y) * mpmath.log(1 - p))
        return alpha_t * (q ** gamma * ce + epsilon * q ** (gamma + 1))


def varifocal_mp(x, y, gamma, alpha="0.75"):
    """(loss, dloss/dx, d2loss/dx2) of the varifocal loss at one logit (varifocal_reference)."""
    with _precision():
        x, q, gamma, alpha = _mp(x), _mp(y), _mp(gamma), _mp(alpha)
        p = 1 / (1 + mpmath.exp(-x))
        one_minus_p = 1 / (1 + mpmath.exp(x))
        softplus = mpmath.log1p(mpmath.exp(x))
        s = p * one_minus_p
        if q > 0:
            ce = q * mpmath.log1p(mpmath.exp(-x)) + (1 - q) * softplus
            return +(q * ce), +(q * ((1 - q) * p - q * one_minus_p)), +(q * s)
        p_g = p ** gamma if gamma else mpmath.mpf(1)
        loss = alpha * p_g * softplus
        grad = alpha * p_g * (gamma * one_minus_p * softplus + p)
        hess = alpha * p_g * (gamma * one_minus_p * (gamma * one_minus_p - p) * softplus
                              + 2 * gamma * one_minus_p * p + s)
        return +loss, +grad, +hess


def varifocal_definition_mp(x, y, gamma, alpha="0.75"):
    """Eq. 2 of VarifocalNet as written, to differentiate numerically."""
    with _precision():
        x, q, gamma, alpha = _mp(x), _mp(y), _mp(gamma), _mp(alpha)
        p = 1 / (1 + mpmath.exp(-x))
        if q > 0:
            return -q * (q * mpmath.log(p) + (1 - q) * mpmath.log(1 - p))
        return -alpha * p ** gamma * mpmath.log(1 - p)


def asymmetric_mp(x, y, gamma_pos, gamma_neg, clip):
    """(loss, dloss/dx, d2loss/dx2) of the asymmetric loss at one logit
    (asymmetric_reference); at p = m exactly, 0 (the values from below)."""
    with _precision():
        x, y, gp, g, m = _mp(x), _mp(y), _mp(gamma_pos), _mp(gamma_neg), _mp(clip)
        p = 1 / (1 + mpmath.exp(-x))
        one_minus_p = 1 / (1 + mpmath.exp(x))
        w = p * one_minus_p
        if y == 1:
            focal = sigmoid_focal_mp(x, 1, gp, None)
            return focal.loss, focal.grad, focal.hess
        big_p = p - m
        if big_p <= 0:
            zero = mpmath.mpf(0)
            return zero, zero, zero
        u = one_minus_p + m
        big_s = -mpmath.log(u) if big_p > 0.5 else -mpmath.log1p(-big_p)
        sigma = big_s / big_p
        p_g = big_p ** g if g else mpmath.mpf(1)
        bracket = g * sigma + 1 / u
        hess = w * p_g * ((1 - 2 * p) * bracket + (w / big_p) * (g * (g - 1) * sigma + 2 * g / u)
                          + w / u ** 2)
        return +(p_g * big_s), +(w * p_g * bracket), +hess


def asymmetric_definition_mp(x, y, gamma_pos, gamma_neg, clip):
    """Eq. 3-4 of Ridnik et al. as written, to differentiate numerically."""
    with _precision():
        x, y, gp, g, m = _mp(x), _mp(y), _mp(gamma_pos), _mp(gamma_neg), _mp(clip)
        p = 1 / (1 + mpmath.exp(-x))
        if y == 1:
            return -(1 - p) ** gp * mpmath.log(p)
        p_m = mpmath.mpf(0) if p <= m else p - m
        return -p_m ** g * mpmath.log(1 - p_m)


def quality_mp(x, y, beta):
    """(loss, dloss/dx, d2loss/dx2) of the quality focal loss at one logit
    (quality_reference's closed forms and its convention at u == 0)."""
    with _precision():
        x, y, beta = _mp(x), _mp(y), _mp(beta)
        p = 1 / (1 + mpmath.exp(-x))
        one_minus_p = 1 / (1 + mpmath.exp(x))
        s = p * one_minus_p
        ce = y * mpmath.log1p(mpmath.exp(-x)) + (1 - y) * mpmath.log1p(mpmath.exp(x))
        u = (1 - y) * p - y * one_minus_p
        if u == 0:
            at_zero = 2 * s**2 * ce if beta == 2 else s if beta == 0 else mpmath.mpf(0)
            return +(ce if beta == 0 else mpmath.mpf(0)), mpmath.mpf(0), +at_zero
        rho = s / u
        u_beta = abs(u) ** beta
        loss = u_beta * ce
        grad = u_beta * (beta * rho * ce + u)
        hess = u_beta * (beta * (beta - 1) * rho**2 * ce + beta * rho * (one_minus_p - p) * ce
                         + 2 * beta * rho * u + s)
        return +loss, +grad, +hess


def quality_definition_mp(x, y, beta):
    """The quality focal loss as Li et al. write it, to differentiate numerically."""
    with _precision():
        x, y, beta = _mp(x), _mp(y), _mp(beta)
        p = 1 / (1 + mpmath.exp(-x))
        return -abs(y - p) ** beta * ((1 - y) * mpmath.log(1 - p) + y * mpmath.log(p))


def softmax_mp(z, y, gamma, alpha=None, counts=None):
    """(loss, gradient, magnitude of each gradient component's terms) of one row.

    `y` is the row's dense target (a one-hot row for a class index), `alpha`
    None, a number or one value per class.  Even at 50 digits 1 + tiny rounds
    to 1, so -log p_c is log1p(S - 1) + (max z - z_c) and 1 - p_c the other
    classes' sum over the total, as in `softmax_rows`.  `counts` (None: one
    each): how many equal classes (logit, target and alpha) each entry stands
    for, so that a long row of repeated classes costs a few terms; the loss
    is the whole row's, the gradient that of each of an entry's classes.
    """
    with _precision():
        z = [_mp(v) for v in z]
        count = len(z)
        counts = [1] * count if counts is None else [int(k) for k in counts]
        if alpha is None or np.ndim(alpha) == 0:
            alpha = [1 if alpha is None else alpha] * count
        m = max(z)
        e = [mpmath.exp(v - m) for v in z]
        others = [mpmath.fsum(counts[i] * e[i] for i in range(count) if i != j)
                  + (counts[j] - 1) * e[j] for j in range(count)]
        argmax = max(range(count), key=lambda j: z[j])
        total = 1 + others[argmax]
        log_total = mpmath.log1p(others[argmax])
        p = [v / total for v in e]
        q = [v / total for v in others]
        gamma = _mp(gamma)
        loss = mpmath.mpf(0)
        g = []
        for c in range(count):
            weight = _mp(alpha[c]) * _mp(y[c])
            if weight == 0:
                g.append(mpmath.mpf(0))
                continue
            neg_log_p = log_total - (z[c] - m)
            q_gamma = q[c] ** gamma if q[c] or gamma else mpmath.mpf(1)
            loss += counts[c] * weight * q_gamma * neg_log_p
            h = e[c] * neg_log_p / others[c] if others[c] else mpmath.mpf(1)
            g.append(weight * q_gamma * (gamma * h + 1))
        s = mpmath.fsum(k * g_c for k, g_c in zip(counts, g))
        grad = [p[j] * (s - g[j]) - g[j] * q[j] for j in range(count)]
        magnitude = [p[j] * s + g[j] * q[j] for j in range(count)]
        return +loss, grad, magnitude


def doubles_around_zero(gradient, lo=-40.0, hi=40.0):
    """The two adjacent doubles between which `gradient` (an mpmath function of
    one sign change in [lo, hi]) changes sign, by bisection on its sign."""
    lo_positive = gradient(lo) > 0
    assert (gradient(hi) > 0) != lo_positive
    while True:
        middle = (lo + hi) / 2
        if middle in (lo, hi):
            return lo, hi
        if (gradient(middle) > 0) == lo_positive:
            lo = middle
        else:
            hi = middle


# ---------------------------------------------------------------- errors


def spacing(exact, dtype) -> float:
    """The spacing of `dtype` at |exact|, never below its smallest subnormal."""
    info = np.finfo(dtype)
    value = abs(float(exact))
    rounded = dtype(value) if value < float(info.max) else dtype(info.max)
    return max(float(np.spacing(rounded)), float(info.smallest_subnormal))


def ulp_error(computed, exact, dtype) -> float:
    """|computed - exact| in units of the spacing of `dtype` at `exact`."""
    return float(abs(mpmath.mpf(float(computed)) - exact)) / spacing(exact, dtype)


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


def softmax_tolerance(dtype, expected, scale=0.0):
    """Allowed |actual - expected| for softmax results stored in `dtype`.

    Wider than `tolerance`: a row's values sum over its classes, and the
    gradient's two terms cancel (its scale is their magnitude).
    """
    expected = np.abs(np.asarray(expected, np.float64))
    if np.dtype(dtype) == np.float64:
        return 1e-11 * (expected + scale) + 1e-300
    return 4 * float(np.finfo(np.float32).eps) * expected + 1e-10 * scale + 1e-44

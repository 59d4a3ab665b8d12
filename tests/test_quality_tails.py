"""The quality focal loss where |u| = |p - y| is tiny (soft targets): the
factors |u|^beta, rho = w / u and rho^2 CE leave the double range there while
the loss and its derivatives do not (see README, accuracy)."""
import mpmath
import numpy as np
import pytest

import focal
import reference
from reference import spacing, ulp_error

BETAS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 9.0, 1e300)
TARGETS = (0.5, 0.3, 1e-30, 0.999)
# (1e-18 to 1e-12: float32 results at y = 1/2 took 1 - 2p from p rounded in
# double there, a second derivative 86% off at beta 1, x = 1e-18)
TINY = (1e-300, 1e-200, 1e-160, 1e-155, 1e-100, 1e-20, 1e-18, 1e-15, 1e-12, 1e-10)


def _logits(y, dtype):
    """The TINY logits of both signs, logit(y) and its four nearest neighbours."""
    with mpmath.workdps(60):
        centre = dtype(float(mpmath.log(mpmath.mpf(y) / (1 - mpmath.mpf(y)))))
    near = [centre]
    for direction in (-np.inf, np.inf):
        x = centre
        for _ in range(2):
            x = np.nextafter(x, dtype(direction))
            near.append(x)
    tiny = [dtype(s * t) for t in TINY for s in (1.0, -1.0)]
    return np.array([x for x in tiny + near if x != 0], dtype)


def _exact(x, y, beta):
    """(loss, gradient, second derivative, largest term of the second
    derivative) at 700 digits: enough for u = p - y at x = 1e-300."""
    with mpmath.workdps(700):
        loss, grad, hess = reference.quality_mp(x, y, beta)
        xm, ym, bm = mpmath.mpf(float(x)), mpmath.mpf(y), mpmath.mpf(beta)
        p = 1 / (1 + mpmath.exp(-xm))
        w = p * (1 - p)
        u = p - ym
        ce = ym * mpmath.log1p(mpmath.exp(-xm)) + (1 - ym) * mpmath.log1p(mpmath.exp(xm))
        au = abs(u)
        terms = (bm * (bm - 1) * w**2 * ce * au ** (bm - 2), bm * w * (1 - 2 * p) * ce * au ** (bm - 1),
                 (2 * bm + 1) * w * au**bm)
        # near logit(y) u keeps the digits of p beyond y's, about 2^-100 p:
        # a relative error 2^-100 p / |u| in u, beta times that in |u|^beta
        # (at the tiny logits u is exact: no slack)
        near = abs(xm) > mpmath.mpf("1e-5") and au != 0
        slack = max(bm, 1) * mpmath.mpf(2) ** -100 * p / au if near else 0
        return loss, grad, hess, max(abs(t) for t in terms), slack


def _check(computed, exact, dtype, bound, slack, scale=None):
    """Within `bound` ULP of the exact value (of `scale` where terms cancel);
    +-inf exactly where the exact value is beyond the dtype's range."""
    top = mpmath.mpf(float(np.finfo(dtype).max))
    if abs(exact) > top * (1 + mpmath.mpf(2) ** -60):
        return computed == (np.inf if exact > 0 else -np.inf)
    if not np.isfinite(computed):
        return False
    error = float(abs(mpmath.mpf(float(computed)) - exact))
    unit = spacing(exact, dtype) if scale is None else max(spacing(exact, dtype), spacing(scale, dtype))
    return error <= bound * unit + float(slack * abs(exact if scale is None else scale))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("y", TARGETS)
def test_quality_at_tiny_u_against_mpmath(dtype, y):
    # float64 within 4 ULP (the near-target bound of test_family), float32
    # within 1, plus where p ~ y the conditioning of u's digits; the second
    # derivative's terms can cancel, so it is held to the largest term's ULP
    bound = 1.0 if dtype == np.float32 else 4.0
    x = _logits(y, dtype)
    t = np.full(x.shape, y)
    for beta in BETAS:
        loss = focal.quality_loss(x, t, beta, reduction="none")
        grad, hess = focal.quality_grad_hess(x, t, beta)
        _, grad_none = focal.quality_loss_and_grad(x, t, beta, reduction="none")
        assert np.array_equal(grad, grad_none, equal_nan=True)
        for i in range(x.size):
            e_loss, e_grad, e_hess, scale, slack = _exact(x[i], y, beta)
            where = (y, beta, float(x[i]))
            assert _check(loss[i], e_loss, dtype, bound, slack), (where, loss[i], e_loss)
            assert _check(grad[i], e_grad, dtype, bound, slack), (where, grad[i], e_grad)
            assert _check(hess[i], e_hess, dtype, bound, slack, scale), (where, hess[i], e_hess)


def test_quality_at_tiny_logits_examples():
    # y = 1/2, beta = 2: u = x/4, the gradient 2 w CE u = x ln2 / 8 and the
    # second derivative 2 w^2 CE = ln2 / 8 at x -> 0
    for x in (1e-200, 1e-160, 1e-300, -1e-155):
        grad, hess = focal.quality_grad_hess(np.array([x]), np.array([0.5]))
        assert abs(grad[0] - x * np.log(2) / 8) <= 2 * np.spacing(abs(x * np.log(2) / 8))
        assert abs(hess[0] - np.log(2) / 8) <= 2 * np.spacing(np.log(2) / 8)

"""FL* in its far tail, for any gamma > 0 and shift beta, against mpmath.

FL* = alpha_t (-log sigmoid(z)) / gamma with z = gamma s x + beta.  Once
z > ~745, -log sigmoid(z) = log1p(e^-z) underflows before the division by a
small gamma brings the value back into range (gamma 1e-300, beta 1000: the
loss is 5.08e-135).  The grid crosses every regime: gamma from 1e-300 to
1e300, beta from -1000 to 1000, logits from subnormal to 1e300, both targets,
float32 and float64, and asserts the README's bound for FL*: 4 ULP (the
spacing of the result dtype at the exact value, never below its smallest
subnormal).  A loss whose exact value lies beyond the dtype's range is inf.
"""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

import focal

mpmath.mp.prec = 200

GAMMAS = (1e-300, 1e-200, 1e-100, 1e-20, 1e-5, 0.3, 2.0, 1e3, 1e100, 1e300)
BETAS = (-1000.0, -30.0, 0.0, 1.0, 30.0, 600.0, 700.0, 745.0, 800.0, 1000.0)


def _grid():
    magnitudes = np.concatenate([np.logspace(-320, -30, 6), np.logspace(-30, 5, 24),
                                 [1.0, 100.0, 300.0, 372.5, 700.0, 745.0, 1e4, 1e300]])
    return np.unique(np.concatenate([-magnitudes, [0.0], magnitudes]))


GRID = _grid()


def exact(x, y, gamma, beta):
    """(loss, gradient) of one element, alpha None, at 200 bits."""
    s = 1 if y == 1 else -1
    z = mpmath.mpf(float(gamma)) * s * mpmath.mpf(float(x)) + mpmath.mpf(float(beta))
    return mpmath.log1p(mpmath.exp(-z)) / mpmath.mpf(float(gamma)), -s / (1 + mpmath.exp(z))


def ulp_error(computed, value, dtype):
    info = np.finfo(dtype)
    magnitude = abs(float(value))
    largest = np.nextafter(info.max, dtype(0))
    rounded = dtype(magnitude) if magnitude < float(largest) else largest
    spacing = max(float(np.spacing(rounded)), float(info.smallest_subnormal))
    return float(abs(mpmath.mpf(float(computed)) - value)) / spacing


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_within_4_ulp_for_every_gamma_and_beta(dtype, gamma):
    with np.errstate(over="ignore"):
        x = np.unique(GRID.astype(dtype))
    x = x[np.isfinite(x)]
    limit = mpmath.mpf(float(np.finfo(dtype).max))
    checked = 0
    for beta in BETAS:
        for y in (0, 1):
            loss, grad = focal.star_loss_and_grad(x, np.full(x.shape, y, dtype), None, gamma,
                                                  beta, reduction="none")
            for i, xi in enumerate(x):
                want_loss, want_grad = exact(xi, y, gamma, beta)
                where = (np.dtype(dtype).name, gamma, beta, float(xi), y)
                if want_loss > limit * (1 + mpmath.mpf(2) ** -30):
                    assert loss[i] == np.inf, (where, loss[i])
                else:
                    assert ulp_error(loss[i], want_loss, dtype) <= 4, (where, loss[i], want_loss)
                assert ulp_error(grad[i], want_grad, dtype) <= 4, (where, grad[i], want_grad)
                checked += 1
    assert checked > 1000


def test_tiny_gamma_with_a_large_shift():
    value = focal.star_loss(0.0, 1, alpha=None, gamma=1e-300, beta=1000.0)
    assert ulp_error(value, exact(0.0, 1, 1e-300, 1000.0)[0], np.float64) <= 1
    assert 5.07e-135 < value < 5.09e-135
    value = focal.star_loss(0.0, 1, alpha=None, gamma=1e-20, beta=745.0)
    assert ulp_error(value, exact(0.0, 1, 1e-20, 745.0)[0], np.float64) <= 1


def test_far_tail_inside_blocks_with_alpha_weights_and_reductions():
    """Far-tail elements take the scalar path among ordinary ones; the block
    results, alpha_t, weights and the reductions apply to them as to the rest."""
    rng = np.random.default_rng(7)
    n = 600
    x = rng.normal(0.0, 2.0, n)
    x[::7] = rng.uniform(400.0, 800.0, x[::7].shape)  # z = 2 x + 1 beyond 600 for y = 1
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    w = rng.uniform(0.5, 2.0, n)
    gamma, beta = 2.0, 1.0
    loss, grad = focal.star_loss_and_grad(x, y, 0.25, gamma, beta, reduction="none", weights=w)
    for i in range(0, n, 3):
        want_loss, want_grad = exact(x[i], int(y[i]), gamma, beta)
        alpha_t = 0.25 if y[i] == 1 else 0.75
        factor = mpmath.mpf(alpha_t) * mpmath.mpf(float(w[i]))
        assert ulp_error(loss[i], factor * want_loss, np.float64) <= 4, i
        assert ulp_error(grad[i], factor * want_grad, np.float64) <= 4, i
    total = focal.star_loss(x, y, 0.25, gamma, beta, reduction="sum", weights=w)
    assert total == pytest.approx(float(np.sum(loss)), rel=1e-14)
    # the same values whatever the instruction set
    levels = focal._core.supported_simd_levels()
    current = focal._core.simd_level()
    try:
        results = []
        for level in levels:
            focal._core.set_simd_level(level)
            results.append(focal.star_loss_and_grad(x, y, 0.25, gamma, beta, reduction="none"))
    finally:
        focal._core.set_simd_level(current)
    for other in results[1:]:
        np.testing.assert_array_equal(other[0], results[0][0])
        np.testing.assert_array_equal(other[1], results[0][1])


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 1e-300, 1e300])
def test_a_shift_and_a_logit_near_the_top_of_the_range(gamma):
    """z = gamma s x + beta with x and beta near 1e308: the vector loop's test of z took s = 1
    only, so the other side's z = -inf (x = 1e308, beta = -1e308, target 0) stayed in the loop
    and gave NaN for the loss and the gradient.  Every element against mpmath, both targets,
    the loss inf where its exact value lies beyond the doubles, in blocks beside ordinary
    elements and through the reductions."""
    tops = [1e308, 1.797e308, 5e307, 1e300, 1.0, -1e308, -1.797e308, -5e307]
    limit = mpmath.mpf(float(np.finfo(np.float64).max))
    for beta in (-1e308, 1e308, -2e307, -1.797e308, 1.797e308, 0.0):
        x = np.array(tops * 2)
        y = np.repeat([0.0, 1.0], len(tops))
        loss, grad = focal.star_loss_and_grad(x, y, None, gamma, beta, reduction="none")
        for i in range(len(x)):
            want_loss, want_grad = exact(x[i], y[i], gamma, beta)
            where = (gamma, beta, float(x[i]), y[i])
            if want_loss > limit * (1 + mpmath.mpf(2) ** -30):
                assert loss[i] == np.inf, (where, loss[i])
            else:
                assert ulp_error(loss[i], want_loss, np.float64) <= 4, (where, loss[i], want_loss)
            assert ulp_error(grad[i], want_grad, np.float64) <= 4, (where, grad[i], want_grad)
        mean_grad = focal.star_grad(x, y, None, gamma, beta, reduction="mean")
        assert not np.isnan(mean_grad).any(), (gamma, beta, mean_grad)
        assert not np.isnan(focal.star_loss(x, y, None, gamma, beta, reduction="mean"))


@pytest.mark.parametrize("gamma", [1.5, 3.0, 3.5, 6.0, 7.0, 9.0, 1.0, 2.0])
def test_a_shift_at_the_largest_double_over_any_gamma(gamma):
    """z = -1.8e308 exactly: FL* = softplus(-z) / gamma divided the double-double by gamma, and
    the quotient times gamma (its remainder's first step) rounded past the double range where
    gamma is not a power of two: inf - inf, a NaN loss.  The quotient is kept plain there."""
    top = float(np.finfo(np.float64).max)
    cases = [(0.0, 1.0, -top), (1.0, 0.0, -top), (-6.5e306, 1.0, -1.7e308),
             (6.5e306, 0.0, -1.7e308)]
    limit = mpmath.mpf(top)
    for x, y, beta in cases:
        loss, grad = focal.star_loss_and_grad(np.array([x]), np.array([y]), None, gamma, beta,
                                              reduction="none")
        want_loss, want_grad = exact(x, y, gamma, beta)
        where = (gamma, x, y, beta)
        if want_loss > limit * (1 + mpmath.mpf(2) ** -30):
            assert loss[0] == np.inf, (where, loss[0])
        else:
            assert ulp_error(loss[0], want_loss, np.float64) <= 4, (where, loss[0], want_loss)
        assert ulp_error(grad[0], want_grad, np.float64) <= 4, (where, grad[0], want_grad)

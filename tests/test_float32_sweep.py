"""float32 results over a dense sweep of logits: within 1 ULP everywhere.

The float32 kernels compute in plain double with polynomials sized for
float32 results (src/vector_math.h: relative errors near 2^-43, so a result
is off by at most 0.5 ULP + 2^-19 before its one rounding).  The grid of
test_accuracy.py samples every magnitude; this sweep checks the polynomials
between its points: 2**20 float32 logits spread evenly over [-110, 110] (the
whole range where e^-|x| is a normal float32 number and more), the tails out
to the largest float32, the subnormals, and the edges of the kernels'
argument reduction and clamps.

Every point is compared with focal's own float64 results (double-double
internally, within about 1 ULP of double: 2^-29 float32 ULP, invisible at this
scale), which test_accuracy.py holds to the 50-digit mpmath reference: the
float32 loss and gradient must be within 1 ULP, and in fact within 0.5 ULP +
2^-12 (one rounding of a double good to 2^-42).  The worst points of each
setting, and a random sample, are then checked against that mpmath reference
directly.
"""
import mpmath
import numpy as np
import pytest

import focal
from reference import sigmoid_focal_mp, ulp_error

F32 = np.finfo(np.float32)


def _sweep():
    dense = np.linspace(-110.0, 110.0, 2 ** 20)
    tails = np.logspace(np.log10(110.0), np.log10(float(F32.max)), 4000)
    subnormals = np.logspace(np.log10(float(F32.smallest_subnormal)), np.log10(float(F32.tiny)), 500)
    # the argument reduction's edges (multiples of ln2 / 2), the clamp of
    # e^-|x| at 746 and where float32 and double underflow
    edges = np.concatenate([np.arange(1, 2200) * np.log(2.0) / 2,
                            [88.72, 103.28, 103.97, 708.39, 709.78, 744.44, 745.13, 746.0, 800.0]])
    magnitudes = np.concatenate([tails, subnormals, edges, [F32.tiny, F32.max]]).astype(np.float32)
    below = magnitudes[magnitudes < F32.max]
    neighbours = np.concatenate([np.nextafter(magnitudes, np.float32(0)),
                                 np.nextafter(below, np.float32(np.inf))])
    grid = np.concatenate([dense.astype(np.float32), magnitudes, -magnitudes,
                           neighbours, -neighbours, [np.float32(0.0)]])
    grid = grid[np.isfinite(grid)]
    return np.unique(grid)


X32 = _sweep()
X64 = X32.astype(np.float64)


def _ulps(computed, exact):
    """|computed - exact| in float32 ULP at exact, vectorised (exact: float64)."""
    rounded = np.abs(exact).astype(np.float32)
    rounded = np.where(np.isinf(rounded), F32.max, rounded)
    spacing = np.maximum(np.spacing(rounded).astype(np.float64), float(F32.smallest_subnormal))
    return np.abs(computed.astype(np.float64) - exact) / spacing


def _values(x, y, gamma):
    targets = np.full_like(x, y)
    loss = focal.loss(x, targets, alpha=0.25, gamma=gamma, reduction="none")
    grad, hess = focal.grad_hess(x, targets, alpha=0.25, gamma=gamma)
    return {"loss": loss, "grad": grad, "hess": hess}


def test_the_sweep_is_dense():
    assert X32.size > 2 ** 20
    inside = X32[np.abs(X32) <= 110]
    assert np.max(np.diff(inside.astype(np.float64))) < 2.2e-4
    assert np.count_nonzero((X32 != 0) & (np.abs(X32) < F32.tiny)) >= 500


@pytest.mark.parametrize("y", [0.0, 1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 7.3])
def test_float32_within_1_ulp_over_the_sweep(gamma, y):
    single = _values(X32, y, gamma)
    double = _values(X64, y, gamma)
    rng = np.random.default_rng(int(gamma * 10) + int(y))
    errors = {name: _ulps(single[name], double[name]) for name in ("loss", "grad")}
    for name, error in errors.items():
        # the float64 results are within 2^-29 float32 ULP of the exact values
        assert error.max() <= 1.0 - 1e-6, (name, error.max(), X32[np.argmax(error)])
        # and the double values behind the float32 ones carry about 2^-42:
        # anything visible beyond the final rounding is a polynomial or a
        # reduction gone wrong, long before it reaches 1 ULP
        assert error.max() <= 0.5 + 2.0 ** -12, (name, error.max(), X32[np.argmax(error)])
    # the worst points and a random sample, against the 120-bit reference
    worst = np.concatenate([np.argpartition(error, -12)[-12:] for error in errors.values()])
    sample = np.unique(np.concatenate([worst, rng.choice(X32.size, 24, replace=False)]))
    for i in sample:
        exact_loss, exact_grad, exact_hess, condition = sigmoid_focal_mp(X32[i], y, gamma)
        assert ulp_error(single["loss"][i], exact_loss, np.float32) <= 1, (X32[i], "loss")
        assert ulp_error(single["grad"][i], exact_grad, np.float32) <= 1, (X32[i], "grad")
        if abs(exact_hess) >= F32.tiny:
            # the second derivative sums terms of both signs (see test_accuracy.py)
            hess_error = ulp_error(single["hess"][i], exact_hess, np.float32) / (1 + float(condition))
            assert hess_error <= 1, (X32[i], "hess")


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_soft_target_loss_within_1_ulp_over_the_sweep(gamma):
    # soft targets take the series of the float64 kernels (their gradient
    # cancels where p ~ y); their loss does not cancel
    y = float(np.float32(0.3))
    errors = _ulps(_values(X32, y, gamma)["loss"], _values(X64, y, gamma)["loss"])
    assert errors.max() <= 0.5 + 2.0 ** -12, (errors.max(), X32[np.argmax(errors)])


def test_sample_reference_is_the_mpmath_one():
    # the twin of tests/reference.py works at 50 digits (at least 120 bits),
    # whatever precision the caller has set
    with mpmath.workprec(53):
        low = sigmoid_focal_mp(1 / 3, 1.0, 2.0).loss
    with mpmath.workprec(400):
        high = sigmoid_focal_mp(1 / 3, 1.0, 2.0).loss
        assert abs(low - high) <= abs(high) * mpmath.mpf(2) ** -120

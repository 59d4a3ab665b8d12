"""Any finite gamma >= 0 gives finite, correct values: against mpmath.

gamma from 1e-300 to 1.7e308 for the sigmoid loss, its gradient and second
derivative (grad_hess), and the softmax loss and gradient (FL*: see
test_star_tails.py).  The reference raises 1 - p_t to gamma as
e^(gamma log(1 - p_t)) with the log taken where it is exact (a softplus, a
log1p), since even at 200 bits 1 - 1e-300 rounds to 1.

Bounds, in units of the spacing of the result dtype at the exact value,
plus a relative |gamma log q| 2^-53 (q = 1 - p_t): the double-double exp
and log the kernels are built from are good to 2^-54 or better (their
correction terms are plain doubles; measured: 2^-54.6 for the log of a soft
target's q near 0.7, 2^-54.4 for a softmax row), and q^gamma =
e^(gamma log q) multiplies the error of log q by gamma.  For float32 results
that term is below 0.03 ULP; for float64 it is 1 ULP at |gamma log q| = 1
and reaches 370 ULP where q^gamma nears underflow (|gamma log q| = 745).
- sigmoid, hard targets: loss and gradient 4 ULP; the second derivative
  4 ULP of (1 + its condition number), or an absolute 2^14 subnormal units
  where it is itself subnormal (the README's rule);
- sigmoid, soft targets, and the softmax form: 8 ULP.
The sigmoid's float64 results above gamma 8 have no gamma term: their
kernels take e^-|x|, log q and the exp to about 2^-100 (exp_accurate,
log_newton_step), and are held to LARGE_GAMMA_BOUND ULP (loss and gradient)
and 4 ULP of (1 + the condition number) (second derivative), hard and soft
targets alike.  Before, at gamma 1000 the loss was up to 60 ULP off for a
hard target (x = -0.72) and 113 ULP for a soft one (y = 0.3, x = 103.9);
measured now (gamma 10 to 1e300, targets 0, 1, 0.3, 0.999 and 1e-10, this
grid and random logits): loss 1.05 ULP, gradient 1.09 ULP, second
derivative 1.6 ULP of (1 + the condition number).
The softmax's float64 results above gamma 8 likewise (exp_accurate for the
E_j, the row's sums and G_c in double-double): loss and gradient within
LARGE_GAMMA_BOUND ULP for class indices and soft targets, the hessian's
diagonal within 8 units of 2^-53 of its terms' size.  Before, at gamma 1000,
the loss was 47 ULP off, the gradient 61 (2,600 for soft targets) and the
diagonal 70 units; measured now: loss 0.50 ULP, gradient 0.51 ULP, diagonal
5.3 units.
"""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

import focal
from reference import poly1_mp

mpmath.mp.prec = 200
ALPHA = mpmath.mpf("0.25")

GAMMAS = (0.0, 1e-300, 1e-100, 1e-20, 1e-5, 0.3, 7.3, 50.0, 1e3, 1e5, 1e20, 1e100, 1e155,
          1e200, 1e300, 1.7e308)


def _grid():
    magnitudes = np.concatenate([
        np.logspace(-320, -30, 5), np.logspace(-30, 4, 40),
        [0.5, 1.0, 36.7, 88.7, 103.9, 699.0, 701.0, 708.0, 709.0, 720.0, 745.0, 746.0, 1e4]])
    return np.unique(np.concatenate([-magnitudes, [0.0], magnitudes]))


GRID = _grid()


def sigmoid_exact(x, y, gamma, alpha=ALPHA):
    """(loss, grad, hess, condition of the hess's sum, |gamma log q|)."""
    x, y, g = mpmath.mpf(float(x)), mpmath.mpf(float(y)), mpmath.mpf(float(gamma))
    p = 1 / (1 + mpmath.exp(-x))
    one_minus_p = 1 / (1 + mpmath.exp(x))
    softplus_x = mpmath.log1p(mpmath.exp(x))       # -log(1 - p)
    softplus_mx = mpmath.log1p(mpmath.exp(-x))     # -log p
    ce = y * softplus_mx + (1 - y) * softplus_x
    if y == 1:
        q, log_q = one_minus_p, -softplus_x
    elif y == 0:
        q, log_q = p, -softplus_mx
    else:
        q = p * (1 - y) + one_minus_p * y
        log_q = mpmath.log(q)
    q_gamma = mpmath.exp(g * log_q) if g != 0 else mpmath.mpf(1)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    a = 1 - 2 * y
    w = p * one_minus_p
    r = w / q
    d = (1 - y) * p - y * one_minus_p
    terms = [g * (g - 1) * a * a * r * r * ce, g * a * r * (one_minus_p - p) * ce,
             2 * g * a * r * d, w]
    total = mpmath.fsum(terms)
    condition = mpmath.fsum(abs(t) for t in terms) / abs(total) if total != 0 else mpmath.inf
    return (alpha_t * q_gamma * ce, alpha_t * q_gamma * (g * a * r * ce + d),
            alpha_t * q_gamma * total, condition, abs(g * log_q))


def spacing(value, dtype):
    info = np.finfo(dtype)
    magnitude = abs(float(value))
    largest = np.nextafter(info.max, dtype(0))
    rounded = dtype(magnitude) if magnitude < float(largest) else largest
    return max(float(np.spacing(rounded)), float(info.smallest_subnormal))


def ulp_error(computed, value, dtype):
    return float(abs(mpmath.mpf(float(computed)) - value)) / spacing(value, dtype)


def amplification(log_power, dtype):
    """ULP that an error of 2^-53 relative in log q becomes in q^gamma."""
    return float(log_power) * 2.0 ** -53 / float(np.finfo(dtype).eps)


LARGE_GAMMA_BOUND = 2


def sigmoid_bounds(log_power, dtype, gamma, plain):
    """(loss and gradient, second derivative) bounds of the sigmoid form."""
    if dtype == np.float64 and gamma > 8:
        return LARGE_GAMMA_BOUND, 4
    bound = plain + amplification(log_power, dtype)
    return bound, bound


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_hard_targets(dtype, gamma):
    with np.errstate(over="ignore"):
        x = np.unique(GRID.astype(dtype))
    x = x[np.isfinite(x)]
    tiny = float(np.finfo(dtype).tiny)
    subnormal_bound = 2.0 ** 14 * float(np.finfo(dtype).smallest_subnormal)
    for y in (0.0, 1.0):
        targets = np.full(x.shape, y, dtype)
        loss = focal.loss(x, targets, 0.25, gamma, reduction="none")
        grad, hess = focal.grad_hess(x, targets, 0.25, gamma)
        assert np.isfinite(loss).all() and np.isfinite(grad).all() and np.isfinite(hess).all()
        assert np.array_equal(grad, focal.grad(x, targets, 0.25, gamma, reduction="none"))
        for i, xi in enumerate(x):
            want_loss, want_grad, want_hess, condition, log_power = sigmoid_exact(xi, y, gamma)
            bound, hess_bound = sigmoid_bounds(log_power, dtype, gamma, 4)
            where = (np.dtype(dtype).name, gamma, float(xi), y)
            assert ulp_error(loss[i], want_loss, dtype) <= bound, (where, loss[i], want_loss)
            assert ulp_error(grad[i], want_grad, dtype) <= bound, (where, grad[i], want_grad)
            if abs(want_hess) < tiny:
                assert abs(mpmath.mpf(float(hess[i])) - want_hess) <= subnormal_bound, where
            else:
                error = ulp_error(hess[i], want_hess, dtype) / (1 + float(condition))
                assert error <= hess_bound, (where, hess[i], want_hess, error)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_soft_targets(dtype, gamma):
    """|x| <= 700 (beyond, e^-|x| is subnormal and soft targets keep its absolute error)."""
    with np.errstate(over="ignore"):
        x = np.unique(GRID[np.abs(GRID) <= 700].astype(dtype))
    tiny = float(np.finfo(dtype).tiny)
    subnormal_bound = 2.0 ** 14 * float(np.finfo(dtype).smallest_subnormal)
    for y in (0.3, 0.999):
        targets = np.full(x.shape, y, dtype)
        loss = focal.loss(x, targets, 0.25, gamma, reduction="none")
        grad, hess = focal.grad_hess(x, targets, 0.25, gamma)
        assert np.isfinite(loss).all() and np.isfinite(grad).all() and np.isfinite(hess).all()
        for i, xi in enumerate(x):
            want_loss, want_grad, want_hess, condition, log_power = sigmoid_exact(
                xi, targets[i], gamma)
            bound, hess_bound = sigmoid_bounds(log_power, dtype, gamma, 8)
            where = (np.dtype(dtype).name, gamma, float(xi), y)
            assert ulp_error(loss[i], want_loss, dtype) <= bound, (where, loss[i], want_loss)
            assert ulp_error(grad[i], want_grad, dtype) <= bound, (where, grad[i], want_grad)
            if abs(want_hess) < tiny:
                assert abs(mpmath.mpf(float(hess[i])) - want_hess) <= subnormal_bound, where
            else:
                error = ulp_error(hess[i], want_hess, dtype) / (1 + float(condition))
                assert error <= hess_bound, (where, hess[i], want_hess, error)


@pytest.mark.parametrize("gamma", [8.5, 1e3, 1e20])
def test_sigmoid_float64_large_gamma_without_a_gamma_term(gamma):
    """Random logits where |gamma log q| spans 0 to beyond underflow, targets
    near 0 and 1 too (1 - q then holds the digits of q)."""
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.uniform(-45.0, 45.0, 40), rng.uniform(-2.0, 2.0, 20)])
    for y in (0.0, 1.0, 0.3, 1e-10, 1.0 - 2.0 ** -40):
        targets = np.full(x.shape, y)
        loss = focal.loss(x, targets, 0.25, gamma, reduction="none")
        grad, hess = focal.grad_hess(x, targets, 0.25, gamma)
        for i, xi in enumerate(x):
            want_loss, want_grad, want_hess, condition, _ = sigmoid_exact(xi, y, gamma)
            where = (gamma, float(xi), y)
            assert ulp_error(loss[i], want_loss, np.float64) <= LARGE_GAMMA_BOUND, where
            assert ulp_error(grad[i], want_grad, np.float64) <= LARGE_GAMMA_BOUND, where
            if abs(want_hess) >= np.finfo(np.float64).tiny:
                error = ulp_error(hess[i], want_hess, np.float64) / (1 + float(condition))
                assert error <= 4, (where, error)


@pytest.mark.parametrize("gamma", [1e3, 6e4, 7e4, 1e8, 1e10, 1e16, 1e20])
def test_sigmoid_float32_soft_targets_at_large_gamma(gamma):
    """float32 results of soft targets near 0 and 1, where 1 - p_t lies within
    2^-53 of 1 and gamma multiplies its rounding (a 1e-30 target at x = 40 and
    gamma 1e20 gave 30 instead of 0; gamma 1e10, 12 ULP): above gamma 2^16
    the double-double kernels compute them.  Within 1 ULP, the second
    derivative 4 ULP of its conditioning."""
    rng = np.random.default_rng(16)
    x = np.concatenate([np.linspace(20.0, 45.0, 26), -np.linspace(20.0, 45.0, 26),
                        rng.uniform(-5.0, 5.0, 20)]).astype(np.float32)
    tiny = float(np.finfo(np.float32).tiny)
    for y in (1e-30, 1e-10, 0.3, 1.0 - 2.0 ** -20):
        targets = np.full(x.shape, y, np.float32)
        loss = focal.loss(x, targets, 0.25, gamma, reduction="none")
        grad, hess = focal.grad_hess(x, targets, 0.25, gamma)
        poly1 = focal.poly1_loss(x, targets, 0.25, gamma, epsilon=0.0, reduction="none")
        assert np.array_equal(poly1, loss)
        for i, xi in enumerate(x):
            want_loss, want_grad, want_hess, condition, _ = sigmoid_exact(xi, targets[i], gamma)
            where = (gamma, float(xi), y)
            assert ulp_error(loss[i], want_loss, np.float32) <= 1, (where, loss[i], want_loss)
            assert ulp_error(grad[i], want_grad, np.float32) <= 1, (where, grad[i], want_grad)
            if abs(want_hess) >= tiny:
                error = ulp_error(hess[i], want_hess, np.float32) / (1 + float(condition))
                assert error <= 4, (where, hess[i], want_hess, error)


def test_grad_hess_at_gamma_1e155_is_finite_and_right():
    x = np.linspace(-30.0, 30.0, 7)
    y = (x > 0).astype(np.float64)
    for gamma in (1e155, 1e300):
        grad, hess = focal.grad_hess(x, y, gamma=gamma)
        assert np.isfinite(grad).all() and np.isfinite(hess).all()
        for i in range(7):
            _, want_grad, want_hess, _, log_power = sigmoid_exact(x[i], y[i], gamma)
            bound, hess_bound = sigmoid_bounds(log_power, np.float64, gamma, 4)
            assert ulp_error(grad[i], want_grad, np.float64) <= bound
            assert ulp_error(hess[i], want_hess, np.float64) <= hess_bound


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("epsilon", [1e4, 1e100, 1e300])
def test_poly1_with_large_epsilon_and_gamma(dtype, epsilon):
    """Poly-1, q^g (CE + epsilon q): with epsilon and gamma both large, g a r C
    and g (g - 1) r^2 C overflowed where q^g is 0 (NaN gradients and second
    derivatives, -inf beyond |x| = 700).  Every value is finite where the
    exact one is, and right: against 800-digit mpmath (q = 1 - 1e-309 needs
    the digits).  Soft targets stay within |x| < 705, where w = p (1 - p) is
    normal (beyond, with epsilon large, the kernel's w is subnormal), and at
    |x| = 1e4."""
    largest = float(np.finfo(dtype).max)
    logits = [-1e4, -745.0, -720.0, -710.0, -40.0, -3.0, -1.0, -1e-5, 0.0, 1e-5, 1.0,
              3.0, 40.0, 710.0, 720.0, 745.0, 1e4]
    checked = 0
    with mpmath.workdps(800):
        for gamma in (1e5, 1e10, 1e300):
            for y in (0.0, 1.0, 0.5, 1e-30):
                x = np.array([v for v in logits
                              if y in (0.0, 1.0) or abs(v) < 705 or abs(v) >= 1e4], dtype)
                t = np.full_like(x, y)
                loss = focal.poly1_loss(x, t, gamma=gamma, epsilon=epsilon, reduction="none")
                grad, hess = focal.poly1_grad_hess(x, t, gamma=gamma, epsilon=epsilon)
                for i in range(x.size):
                    want = poly1_mp(float(x[i]), y, gamma, epsilon)
                    where = (np.dtype(dtype).name, gamma, y, float(x[i]))
                    for got, exact, bound in zip((loss[i], grad[i], hess[i]), want,
                                                 (1, 2, 8) if dtype is np.float64 else (1, 1, 1)):
                        if abs(exact) > largest:
                            assert np.isinf(got) and np.sign(got) == mpmath.sign(exact), where
                            continue
                        assert np.isfinite(got), (where, got, exact)
                        assert ulp_error(got, exact, dtype) <= bound, (where, got, exact)
                        checked += 1
    assert checked > 300


@pytest.mark.parametrize("gamma", [0.0, 2.0, 1e10, 1e300])
def test_poly1_loss_beyond_the_double_range_is_inf_not_nan(gamma):
    """CE + epsilon q beyond the double range (x = 1e308, epsilon 1.7e308): the
    loss is inf, as exact, and the derivatives stay finite; the double-double
    sum's error term was inf - inf, a NaN loss (the fuzzer found it)."""
    x = np.array([1e308, -1e308, 1e308, -1e308])
    y = np.array([0.0, 1.0, 1e-30, 0.5])
    loss = focal.poly1_loss(x, y, None, gamma, epsilon=1.7e308, reduction="none")
    grad, hess = focal.poly1_grad_hess(x, y, None, gamma, epsilon=1.7e308)
    with mpmath.workdps(800):
        for i in range(x.size):
            exact_loss, exact_grad, _ = poly1_mp(x[i], y[i], gamma, 1.7e308, alpha=None)
            if exact_loss > np.finfo(np.float64).max:
                assert loss[i] == np.inf, (i, loss[i])
            else:
                assert ulp_error(loss[i], exact_loss, np.float64) <= 1, (i, loss[i], exact_loss)
            assert np.isfinite(grad[i]) and np.isfinite(hess[i]), (i, grad[i], hess[i])
            assert ulp_error(grad[i], exact_grad, np.float64) <= 2, (i, grad[i], exact_grad)


# --------------------------------------------------------------------------
# the softmax form


def softmax_parts(z):
    """One row, exact: (z, its max m, the argmax, e_j = e^(z_j - m), and
    rest, the sum of e_j but the argmax's)."""
    z = [mpmath.mpf(float(v)) for v in z]
    m = max(z)
    argmax = max(range(len(z)), key=lambda j: z[j])
    e = [mpmath.exp(v - m) for v in z]
    return z, m, argmax, e, mpmath.fsum(e[j] for j in range(len(z)) if j != argmax)


def softmax_exact(z, label, gamma):
    """(loss, gradient, |gamma log(1 - p_label)|) of one row, alpha None."""
    z, m, argmax, e, rest = softmax_parts(z)
    count, total = len(z), 1 + rest
    p = [v / total for v in e]
    others = mpmath.fsum(e[j] for j in range(count) if j != label)
    log_q = mpmath.log(others / total) if label == argmax else mpmath.log1p(-p[label])
    g = mpmath.mpf(float(gamma))
    q_gamma = mpmath.exp(g * log_q) if g != 0 else mpmath.mpf(1)
    neg_log_p = mpmath.log1p(rest) - (z[label] - m)
    h = e[label] * neg_log_p / others if others else mpmath.mpf(1)
    big_g = q_gamma * (g * h + 1)
    grad = [-big_g * others / total if j == label else p[j] * big_g for j in range(count)]
    return q_gamma * neg_log_p, grad, abs(g * log_q)


def _rows():
    rng = np.random.default_rng(11)
    rows = [rng.normal(0.0, spread, 5) for spread in (0.1, 1.0, 5.0, 30.0, 300.0, 3000.0)
            for _ in range(2)]
    rows += [np.array([0.0, -40.0, -40.0]), np.array([0.0, -700.0, 3.0]),
             np.array([0.0, -745.0, -30.0]), np.array([1e4, -1e4, 0.0]),
             np.array([2.0, 2.0, 2.0, 2.0])]
    return rows


ROWS = _rows()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gamma", [g for g in GAMMAS if g <= 1e300])
def test_softmax(dtype, gamma):
    for z in ROWS:
        z = z.astype(dtype)
        labels = np.arange(len(z))
        batch = np.broadcast_to(z, (len(z), len(z)))
        loss, grad = focal.softmax_loss_and_grad(batch, labels, None, gamma, reduction="none")
        assert np.isfinite(loss).all() and np.isfinite(grad).all()
        for label in labels:
            want_loss, want_grad, log_power = softmax_exact(z, label, gamma)
            bound = 8 + amplification(log_power, dtype)
            where = (np.dtype(dtype).name, gamma, z.tolist(), label)
            assert ulp_error(loss[label], want_loss, dtype) <= bound, (where, loss[label])
            largest = max(abs(v) for v in want_grad)
            for j, want in enumerate(want_grad):
                scale = max(abs(want), largest * mpmath.mpf(float(np.finfo(dtype).eps)))
                error = float(abs(mpmath.mpf(float(grad[label, j])) - want)) / spacing(scale, dtype)
                assert error <= bound, (where, j, grad[label, j], want, error)


def test_softmax_near_one_is_not_one_to_a_huge_power():
    """1 - p_c that rounds to 1 in double, raised to a huge gamma (the loss was -1e284)."""
    z = np.array([[0.0, -40.0, -40.0]])
    for gamma in (1e17, 1e20, 1e300):
        loss = focal.softmax_loss(z, np.array([1]), None, gamma, reduction="none")[0]
        want = softmax_exact(z[0], 1, gamma)[0]
        assert ulp_error(loss, want, np.float64) <= 8, (gamma, loss, want)


# float64 softmax results above gamma 8: no gamma term (LARGE_GAMMA_BOUND ULP)

LARGE_GAMMAS = (8.5, 10.0, 50.0, 1e3, 1e6, 1e20, 1e300)


def softmax_exact_dense(z, y, gamma):
    """(loss, gradient) of one row with target weights y (a class index's
    one-hot row or soft targets), alpha None: FL = sum_c y_c q_c^gamma L_c."""
    z, m, argmax, e, rest = softmax_parts(z)
    count, total = len(z), 1 + rest
    p = [v / total for v in e]
    others = [mpmath.fsum(e[j] for j in range(count) if j != c) for c in range(count)]
    g = mpmath.mpf(float(gamma))
    loss, big_g = mpmath.mpf(0), [mpmath.mpf(0)] * count
    for c in range(count):
        if y[c] == 0:
            continue
        log_q = mpmath.log(others[c] / total) if c == argmax else mpmath.log1p(-p[c])
        q_gamma = mpmath.exp(g * log_q)
        neg_log_p = mpmath.log1p(rest) - (z[c] - m)
        h = e[c] * neg_log_p / others[c] if others[c] else mpmath.mpf(1)
        a = mpmath.mpf(float(y[c]))
        loss += a * q_gamma * neg_log_p
        big_g[c] = a * q_gamma * (g * h + 1)
    g_total = mpmath.fsum(big_g)
    grad = [p[j] * (g_total - big_g[j]) - big_g[j] * others[j] / total for j in range(count)]
    return loss, grad


def softmax_gradient_error(computed, want):
    """The worst error of a row's gradient in ULP of the larger of abs(g_j)
    and eps times the row's largest component (as test_softmax)."""
    largest = max(abs(v) for v in want)
    worst = 0.0
    for j, value in enumerate(want):
        scale = max(abs(value), largest * mpmath.mpf(float(np.finfo(np.float64).eps)))
        worst = max(worst, float(abs(mpmath.mpf(float(computed[j])) - value))
                    / spacing(scale, np.float64))
    return worst


def _large_gamma_rows():
    rng = np.random.default_rng(12)
    rows = [rng.normal(0.0, spread, 5) for spread in (0.1, 1.0, 5.0, 30.0, 300.0)]
    rows += [np.array([0.0, -40.0, -40.0]),   # p near 1 (the argmax) and near 0
             np.array([30.0, 0.0, -5.0]),
             np.array([0.0, -690.0, -5.0]),   # p_1 near 1e-300: 1 - p_1 rounds to 1
             np.array([0.0, -745.0, -30.0]),
             np.array([0.0, -36.0, -37.0, -38.0]),
             np.array([2.0, 2.0, 2.0, 2.0]),
             np.array([1e-3, 0.0, 2e-3]),
             rng.normal(0.0, 0.1, 81)]        # 1 - p_c near 1 for every class
    return rows


LARGE_GAMMA_ROWS = _large_gamma_rows()


def softmax_large_gamma_errors(rows, gamma, dense):
    """The worst float64 loss and gradient errors (ULP) over `rows`, every
    label of each (dense: soft rows of targets, one per row)."""
    rng = np.random.default_rng(13)
    worst_loss = worst_grad = 0.0
    for z in rows:
        count = len(z)
        if dense:
            soft = rng.random((3, count))
            soft[1] = 0.1 / count
            soft[1, count // 2] += 0.9                 # a label-smoothed row
            soft[2, rng.random(count) < 0.5] = 0.0     # some classes without target
            soft[2, 0] = 0.5
            targets = soft / soft.sum(1, keepdims=True)
            loss, grad = focal.softmax_loss_and_grad(
                np.broadcast_to(z, targets.shape), targets, None, gamma, reduction="none")
        else:
            labels = np.arange(count) if count < 10 else np.array([0, np.argmax(z), count - 1])
            targets = np.eye(count)[labels]
            loss, grad = focal.softmax_loss_and_grad(
                np.broadcast_to(z, (len(labels), count)), labels, None, gamma,
                reduction="none")
        for k, y in enumerate(targets):
            want_loss, want_grad = softmax_exact_dense(z, y, gamma)
            where = (gamma, z.tolist()[:6], y.tolist()[:6])
            worst_loss = max(worst_loss, ulp_error(loss[k], want_loss, np.float64))
            worst_grad = max(worst_grad, softmax_gradient_error(grad[k], want_grad))
    return worst_loss, worst_grad


@pytest.mark.parametrize("dense", [False, True], ids=["labels", "dense"])
@pytest.mark.parametrize("gamma", LARGE_GAMMAS)
def test_softmax_float64_large_gamma_without_a_gamma_term(gamma, dense):
    """Rows near one-hot (p_c near 1 and near 0), ties, near uniform, 81
    classes; class indices at and away from the argmax, and soft targets."""
    worst_loss, worst_grad = softmax_large_gamma_errors(LARGE_GAMMA_ROWS, gamma, dense)
    assert worst_loss <= LARGE_GAMMA_BOUND, (gamma, worst_loss)
    assert worst_grad <= LARGE_GAMMA_BOUND, (gamma, worst_grad)


@pytest.mark.parametrize("gamma", [10.0, 1e3, 1e6])
def test_softmax_float64_large_gamma_long_row(gamma):
    """A row longer than the row code reads at once (2048 classes): read in
    pieces, its exponentials computed again in each pass."""
    rng = np.random.default_rng(14)
    z = rng.normal(0.0, 0.05, 2100)
    z[1500] = 3.0
    worst_loss, worst_grad = softmax_large_gamma_errors([z], gamma, dense=False)
    assert worst_loss <= LARGE_GAMMA_BOUND, (gamma, worst_loss)
    assert worst_grad <= LARGE_GAMMA_BOUND, (gamma, worst_grad)


def softmax_exact_hessian(z, label, gamma):
    """The hessian's diagonal of one row of class `label` (alpha None) by
    softmax_focal.h's formula (test_gbdt_multiclass.py checks it against
    numerical derivatives), and the size of its terms."""
    z, m, argmax, e, rest = softmax_parts(z)
    count, c, total = len(z), label, 1 + rest
    p = [v / total for v in e]
    others = [mpmath.fsum(e[j] for j in range(count) if j != k) for k in range(count)]
    g = mpmath.mpf(float(gamma))
    q = others[c] / total
    log_q = mpmath.log(q) if c == argmax else mpmath.log1p(-p[c])
    q_gamma = mpmath.exp(g * log_q)
    neg_log_p = mpmath.log1p(rest) - (z[c] - m)
    h = e[c] * neg_log_p / others[c] if others[c] else mpmath.mpf(1)
    big_g = q_gamma * (g * h + 1)
    parts = [(1 - g) * p[c] * h, p[c] * neg_log_p, -2 * p[c]]
    curvature = g * q_gamma * mpmath.fsum(parts)
    curvature_size = g * q_gamma * mpmath.fsum(abs(t) for t in parts)
    diagonal, size = [], []
    for j in range(count):
        if j == c:
            diagonal.append(q * (p[c] * big_g - curvature))
            size.append(q * (p[c] * big_g + curvature_size))
        else:
            share = e[j] / others[c]
            diagonal.append(p[j] * (others[j] / total * big_g - share * curvature))
            size.append(p[j] * (others[j] / total * big_g + share * curvature_size))
    return diagonal, size


@pytest.mark.parametrize("gamma", LARGE_GAMMAS)
def test_softmax_hessian_float64_large_gamma(gamma):
    """The diagonal within 8 ULP (of 2^-53) of its terms' size, the bound
    of test_gbdt_multiclass.py at gamma 5 and below (whose size leaves out
    q^gamma, which matters only at large gamma); where it is subnormal (p_j
    near e^-745), an absolute 2^14 subnormal units (the sigmoid's rule).  A
    label whose E_c is subnormal: test_softmax_faint_label."""
    for z in LARGE_GAMMA_ROWS:
        labels = np.arange(len(z)) if len(z) < 10 else np.array([0, np.argmax(z), len(z) - 1])
        _, hess = focal.softmax_grad_hess(np.broadcast_to(z, (len(labels), len(z))), labels,
                                          None, gamma)
        for k, label in enumerate(labels):
            assert_hessian_row(z, label, gamma, hess[k])


def assert_hessian_row(z, label, gamma, hess, dtype=np.float64, subnormal_units=2.0 ** 14):
    """The diagonal within 8 ULP (of the dtype's eps / 2) of its terms'
    size, or where it is below the normal range an absolute
    `subnormal_units` subnormal units."""
    eps = float(np.finfo(dtype).eps) / 2
    tiny = float(np.finfo(dtype).tiny)
    subnormal_bound = subnormal_units * float(np.finfo(dtype).smallest_subnormal)
    want, size = softmax_exact_hessian(z, label, gamma)
    for j in range(len(z)):
        error = abs(mpmath.mpf(float(hess[j])) - want[j])
        where = (gamma, z.tolist()[:6], label, j, hess[j], float(want[j]))
        if abs(want[j]) < tiny:
            assert error <= subnormal_bound, where
        else:
            assert error <= 8 * eps * size[j], where


FAINT_ROWS = [np.array(row) for row in ([0.0, -708.0], [0.0, -713.5], [3.0, -713.6, 1.0],
                                        [0.0, -720.3], [3.0, -730.1, 1.0], [0.0, -740.1],
                                        [0.0, -744.0], [3.0, -744.1, 1.0], [0.0, -760.0],
                                        [0.0, -1000.0, 1.0])]


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 8.5, 1e4, 1e300, 1e303, 1.7e308])
def test_softmax_faint_label(gamma):
    """A label class 708 to 1,000 below its row's maximum, whose E_c is
    below the normal range or 0: gamma p_c from its log, not from E_c's few
    digits.  Before, the float64 diagonal was up to 4,600 ULP of its terms'
    size off at gamma 100, [0, -744] at gamma 1e300 gave -7.33e-21 for
    -5.69e-21 (float32 too), and at gamma 1.7e308 the loss and gradient of
    [0, -720.3] were 3 and 1,334 ULP off.  Loss and gradient within
    LARGE_GAMMA_BOUND ULP, the diagonal as test_softmax_hessian_float64_large_gamma
    but within 4 subnormal units where it is below the normal range (704
    before, [0, -720.3] at gamma 2)."""
    for z in FAINT_ROWS:
        label = np.array([1])
        loss, grad = focal.softmax_loss_and_grad(z[None], label, None, gamma, reduction="none")
        want_loss, want_grad = softmax_exact_dense(z, np.eye(len(z))[1], gamma)
        assert ulp_error(loss[0], want_loss, np.float64) <= LARGE_GAMMA_BOUND, (z, loss[0])
        assert softmax_gradient_error(grad[0], want_grad) <= LARGE_GAMMA_BOUND, (z, grad[0])
        for dtype in (np.float64, np.float32):
            if not np.isfinite(z.astype(dtype)).all():
                continue
            _, hess = focal.softmax_grad_hess(z.astype(dtype)[None], label, None, gamma)
            assert hess.dtype == dtype
            assert_hessian_row(z.astype(dtype).astype(np.float64), 1, gamma, hess[0], dtype,
                               subnormal_units=4.0)

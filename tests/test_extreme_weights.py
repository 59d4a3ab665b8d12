"""Reductions with weights anywhere in the double range, against mpmath.

Weights from the smallest subnormal (5e-324) to 1.7e308, alone or mixed,
for every reduction of the sigmoid form, FL* and the softmax form: the
reduced loss and the gradient must be the correctly rounded value of the
exact reduction to a few ULP.  The sums of w l and of w are formed with the
weights scaled by a power of two (the largest near 1), which is exact; a
mean of values near the double range whose sum overflows is summed again
scaled down.  A "sum" (or a per-element value) whose exact value lies beyond
the largest double is inf: that is the correctly rounded result.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import focal
from reference import asymmetric_mp, poly1_mp, quality_mp, varifocal_mp
from reference import sigmoid_focal_mp as sigmoid_reference
from reference import softmax_mp as softmax_reference
from reference import star_mp as star_reference

mpmath.mp.prec = 120
TINY = 5e-324
HUGE = 1.7e308

# one row of weights per scale: uniform at the extremes, and mixed
WEIGHTS = {
    "subnormal": lambda n, rng: np.full(n, TINY),
    "smallest-normal": lambda n, rng: np.full(n, 2.2250738585072014e-308),
    "huge": lambda n, rng: np.full(n, HUGE),
    "1e308": lambda n, rng: np.full(n, 1e308),
    "mixed-extremes": lambda n, rng: np.resize([HUGE, TINY, 1.0, 1e-300, 1e300, 0.0], n),
    "log-uniform": lambda n, rng: 10.0 ** rng.uniform(-320, 308, n),
    "tiny-and-zero": lambda n, rng: np.resize([TINY, 0.0, 3 * TINY], n),
}
REDUCTIONS = ("mean", "sum", "sum_over_positives")


def spacing(exact, dtype):
    info = np.finfo(dtype)
    value = abs(float(exact))
    largest = np.nextafter(info.max, dtype(0))  # (the spacing at the largest value overflows)
    rounded = dtype(value) if value < float(largest) else largest
    return max(float(np.spacing(rounded)), float(info.smallest_subnormal))


def assert_close(computed, exact, dtype, bound, what):
    """Within `bound` ULP of the exact value, or inf where that lies beyond the dtype."""
    computed = float(computed)
    if exact != exact:
        assert computed != computed, (what, computed)
        return
    if abs(exact) > mpmath.mpf(float(np.finfo(dtype).max)) * (1 + mpmath.mpf(2) ** -30):
        assert math.isinf(computed) and (computed > 0) == (exact > 0), (what, computed, exact)
        return
    assert math.isfinite(computed), (what, computed, exact)
    error = float(abs(mpmath.mpf(computed) - exact)) / spacing(exact, dtype)
    assert error <= bound, (what, error, computed, float(exact))


def reduce_exact(losses, grads, weights, positives, reduction):
    """The exact reduced loss and gradient from exact per-element values."""
    total = mpmath.fsum(w * l for w, l in zip(weights, losses))
    if reduction == "sum":
        denominator = mpmath.mpf(1)
    elif reduction == "mean":
        denominator = mpmath.fsum(weights)
    else:
        denominator = max(positives, mpmath.mpf(1))
    if denominator == 0:
        return mpmath.nan, [mpmath.mpf(0) * mpmath.mpf(0) for _ in grads]

    def scaled(w, g):  # g: one element's derivative, or a row's (softmax)
        return [w * v / denominator for v in g] if isinstance(g, list) else w * g / denominator
    return total / denominator, [scaled(w, g) for w, g in zip(weights, grads)]


def elementwise_case(rng, n, dtype):
    x = rng.normal(0.0, 4.0, n).astype(dtype)
    y = (rng.uniform(size=n) < 0.4).astype(dtype)
    return x, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", list(WEIGHTS))
def test_sigmoid_reductions(scale, dtype):
    rng = np.random.default_rng(len(scale))
    n = 24
    x, y = elementwise_case(rng, n, dtype)
    w = WEIGHTS[scale](n, rng)
    exact = [sigmoid_reference(xi, yi, 2.0) for xi, yi in zip(x, y)]
    losses = [e[0] for e in exact]
    grads = [e[1] for e in exact]
    weights = [mpmath.mpf(float(v)) for v in w]
    for reduction in REDUCTIONS:
        value, grad = focal.loss_and_grad(x, y, 0.25, 2.0, reduction=reduction, weights=w)
        want_value, want_grad = reduce_exact(losses, grads, weights, mpmath.mpf(float(y.sum())),
                                             reduction)
        where = f"sigmoid {reduction} {scale} {np.dtype(dtype).name}"
        assert_close(value, want_value, dtype, 4, where)
        assert value == focal.loss(x, y, 0.25, 2.0, reduction=reduction, weights=w)
        for i in range(n):
            assert_close(grad[i], want_grad[i], dtype, 4, f"{where} gradient {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", list(WEIGHTS))
def test_star_reductions(scale, dtype):
    rng = np.random.default_rng(100 + len(scale))
    n = 24
    x, y = elementwise_case(rng, n, dtype)
    w = WEIGHTS[scale](n, rng)
    exact = [star_reference(xi, int(yi), 2.0, 1.0, 0.25) for xi, yi in zip(x, y)]
    weights = [mpmath.mpf(float(v)) for v in w]
    for reduction in REDUCTIONS:
        value, grad = focal.star_loss_and_grad(x, y, 0.25, 2.0, 1.0, reduction=reduction,
                                               weights=w)
        want_value, want_grad = reduce_exact([e[0] for e in exact], [e[1] for e in exact],
                                             weights, mpmath.mpf(float(y.sum())), reduction)
        where = f"FL* {reduction} {scale} {np.dtype(dtype).name}"
        assert_close(value, want_value, dtype, 4, where)
        for i in range(n):
            assert_close(grad[i], want_grad[i], dtype, 4, f"{where} gradient {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", list(WEIGHTS))
def test_softmax_reductions(scale, dtype):
    rng = np.random.default_rng(200 + len(scale))
    rows, classes = 12, 4
    x = rng.normal(0.0, 3.0, (rows, classes)).astype(dtype)
    labels = rng.integers(0, classes, rows)
    w = WEIGHTS[scale](rows, rng)
    exact = [softmax_reference(x[r], np.eye(classes)[labels[r]], 2.0, np.ones(classes))
             for r in range(rows)]
    weights = [mpmath.mpf(float(v)) for v in w]
    for reduction in ("mean", "sum"):
        value, grad = focal.softmax_loss_and_grad(x, labels, None, 2.0, reduction=reduction,
                                                  weights=w)
        want_value, want_grad = reduce_exact([e[0] for e in exact], [e[1] for e in exact],
                                             weights, None, reduction)
        where = f"softmax {reduction} {scale} {np.dtype(dtype).name}"
        assert_close(value, want_value, dtype, 8, where)
        for r in range(rows):
            # the components of a row cancel: judged against the row's largest
            largest = max(abs(v) for v in want_grad[r])
            for j in range(classes):
                exact_j = want_grad[r][j]
                if abs(exact_j) > mpmath.mpf(float(np.finfo(dtype).max)):
                    assert_close(grad[r, j], exact_j, dtype, 8, f"{where} gradient")  # inf
                    continue
                scale_j = max(abs(exact_j), largest * mpmath.mpf(float(np.finfo(dtype).eps)))
                error = float(abs(mpmath.mpf(float(grad[r, j])) - exact_j))
                error /= spacing(scale_j, dtype)
                assert error <= 8, (where, r, j, error)


def test_uniform_weights_of_any_size_give_the_unweighted_values():
    x = np.linspace(-30.0, 30.0, 7)
    y = (x > 0).astype(np.float64)
    unweighted = focal.loss(x, y)
    # uniform weights of any size give the unweighted mean and gradient (a
    # power of two exactly; other weights round w l differently)
    for value in (2.0 ** 1023, 2.0 ** -1074, 2.0 ** -1040, 1e308, HUGE, TINY, 1e-310):
        w = np.full(7, value)
        exact = value in (2.0 ** 1023, 2.0 ** -1074, 2.0 ** -1040)
        compare = np.testing.assert_array_equal if exact else (
            lambda a, b: np.testing.assert_allclose(a, b, rtol=4e-16, atol=0))
        compare(focal.loss(x, y, weights=w), unweighted)
        compare(focal.grad(x, y, weights=w), focal.grad(x, y))
    labels = np.array([0, 1, 2, 0, 1])
    logits = np.random.default_rng(0).normal(size=(5, 3))
    for value in (2.0 ** 1023, 2.0 ** -1074):
        w = np.full(5, value)
        assert focal.softmax_loss(logits, labels, weights=w) == focal.softmax_loss(logits, labels)
        np.testing.assert_array_equal(focal.softmax_grad(logits, labels, weights=w),
                                      focal.softmax_grad(logits, labels))


def test_a_sum_beyond_the_double_range_is_inf():
    x = np.zeros(4)
    y = np.ones(4)
    w = np.full(4, HUGE)
    # each w l is 1.7e308 ln 2 = 1.18e308: their sum exceeds the largest double
    assert focal.loss(x, y, None, 0.0, reduction="sum", weights=w) == math.inf
    # while the mean and the sum over positives divide it back into range
    assert focal.loss(x, y, None, 0.0, reduction="mean", weights=w) == math.log(2)
    assert focal.loss(x, y, None, 0.0, reduction="sum_over_positives",
                      weights=w) == pytest.approx(HUGE * math.log(2), rel=1e-15)
    # float32: beyond 3.4e38 is inf in float32
    x32 = np.zeros(4, np.float32)
    assert focal.loss(x32, y, None, 0.0, reduction="sum", weights=np.full(4, 2e38)) == np.inf
    assert focal.loss(x32, y, None, 0.0, reduction="mean", weights=np.full(4, 2e38)) == \
        np.float32(math.log(2))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_means_of_values_near_the_double_range(dtype):
    """Unweighted too: losses near the largest value sum past it, their mean does not."""
    big = float(np.finfo(dtype).max) / 2
    x = np.array([-big, -big, -big, 1.0], dtype=dtype)
    y = np.array([1.0, 1.0, 1.0, 0.0], dtype=dtype)
    exact = [sigmoid_reference(xi, yi, 0.0, mpmath.mpf(1) / 2) for xi, yi in zip(x, y)]
    mean = mpmath.fsum(e[0] for e in exact) / 4
    assert_close(focal.loss(x, y, 0.5, 0.0), mean, dtype, 4, "mean")
    assert_close(focal.loss(x, y, 0.5, 0.0, reduction="sum_over_positives"),
                 mpmath.fsum(e[0] for e in exact) / 3, dtype, 4, "sum over positives")
    assert focal.loss(x, y, None, 0.0, reduction="sum") == np.inf
    # FL*: gamma x overflows for the first three: each loss is |x| - beta / gamma
    star = focal.star_loss(x, y, 0.5, 1.0, 0.0)
    assert math.isfinite(star) and star == pytest.approx(0.5 * 3 * big / 4, rel=1e-6)
    # the softmax form: rows whose losses are near the largest value
    logits = np.zeros((3, 2), dtype=dtype)
    logits[:, 0] = big
    value = focal.softmax_loss(logits, np.array([1, 1, 1]), 0.5, 0.0)
    assert value == pytest.approx(0.5 * big, rel=1e-6)
    weighted = focal.softmax_loss(logits, np.array([1, 1, 1]), 0.5, 0.0,
                                  weights=np.array([1e300, 1e300, 1e300]))
    assert weighted == pytest.approx(value, rel=4 * float(np.finfo(dtype).eps))


def test_an_infinite_loss_stays_infinite_beside_scaled_weights():
    x = np.array([np.inf, 0.0, 1.0])
    y = np.array([0.0, 1.0, 1.0])
    for w in ([TINY, HUGE, 1.0], [HUGE, TINY, 1.0], [1e-300, 1e300, 0.5]):
        assert focal.loss(x, y, weights=np.array(w)) == np.inf
        assert focal.loss(x, y, weights=np.array(w), reduction="sum") == np.inf


def test_softmax_logits_further_apart_than_the_double_range():
    """m - z_c overflows, the loss alpha_c (m - z_c + log S) need not."""
    z = np.array([[HUGE, -HUGE, 0.0]])
    value = focal.softmax_loss(z, np.array([1]), np.array([0.25, 0.25, 0.25]), 2.0,
                               reduction="none")[0]
    assert value == pytest.approx(0.25 * 2 * HUGE, rel=1e-15)
    assert focal.softmax_loss(z, np.array([1]), None, 2.0, reduction="none")[0] == np.inf
    grad = focal.softmax_grad(z, np.array([1]), np.array([0.25, 0.25, 0.25]), 2.0)
    np.testing.assert_array_equal(grad, [[0.25, -0.25, 0.0]])


def test_an_overflowing_sum_in_place():
    """The loss sum that overflows is rescued in the same pass, so out= over
    the logits (written in that pass) gives the out-of-place values."""
    big = float(np.finfo(np.float64).max) / 2
    x = np.array([-big, -big, -big, 1.0, 2.0])
    y = np.array([1.0, 1.0, 1.0, 0.0, 1.0])
    for reduction in ("mean", "sum_over_positives"):
        for weights in (None, np.array([1.0, 2.0, 3.0, 4.0, 1e308])):
            want_value, want_grad = focal.loss_and_grad(x, y, 0.5, 0.0, reduction=reduction,
                                                        weights=weights)
            assert math.isfinite(want_value)
            inplace = x.copy()
            value, grad = focal.loss_and_grad(inplace, y, 0.5, 0.0, reduction=reduction,
                                              weights=weights, out=inplace)
            assert grad is inplace and value == want_value
            np.testing.assert_array_equal(inplace, want_grad)
    logits = np.zeros((3, 2))
    logits[:, 0] = big
    want_value, want_grad = focal.softmax_loss_and_grad(logits, np.array([1, 1, 1]), 0.5, 0.0)
    inplace = logits.copy()
    value, _ = focal.softmax_loss_and_grad(inplace, np.array([1, 1, 1]), 0.5, 0.0, out=inplace)
    assert value == want_value and math.isfinite(value)
    np.testing.assert_array_equal(inplace, want_grad)


@pytest.mark.parametrize("weight, normalizer", [(1e-320, 1e-322), (1e-310, 1e-300),
                                                (5e-324, 1e-310), (1e300, 1e305)])
def test_extreme_weights_with_a_normalizer(weight, normalizer):
    """A normalizer as small as the weights: the loss does not overflow before the weights'
    scale is put back, and the gradient is not rounded as a subnormal before the division."""
    x = np.array([[1.0], [0.5], [-2.0]])
    y = np.array([[1.0], [0.0], [1.0]])
    w = np.full(x.shape, weight)
    loss, grad = focal.loss_and_grad(x, y, weights=w, normalizer=normalizer)
    with mpmath.workdps(50):
        exact = [sigmoid_reference(xi, yi, 2.0) for xi, yi in zip(x.ravel(), y.ravel())]
        exact_loss = float(sum(mpmath.mpf(weight) * e.loss for e in exact) / mpmath.mpf(normalizer))
        exact_grad = [float(mpmath.mpf(weight) * e.grad / mpmath.mpf(normalizer)) for e in exact]
    assert abs(float(loss) - exact_loss) <= np.spacing(exact_loss)
    np.testing.assert_allclose(grad.ravel(), exact_grad, rtol=4e-16, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reduced_value_common_case_has_the_bits_of_the_fraction_path(dtype):
    # reduced_value divides directly when nothing is scaled; equal scales on
    # the sum and the denominator cancel, but take the path of fractions and
    # exponents: both must give the same bits, near the subnormal range too
    from focal import _reduce
    rng = np.random.default_rng(11)
    sums = np.concatenate([rng.uniform(0, 10, 300), 2.0 ** rng.uniform(-1074, -1000, 300),
                           2.0 ** rng.uniform(1000, 1023, 100), [0.0, 5e-324, np.inf, np.nan]])
    denominators = np.concatenate([rng.integers(1, 10**6, 700).astype(float), [1.0, 3.0, 7.0, 1e300]])
    for total, denominator in zip(sums, denominators):
        small = total * 2.0 ** -64
        fast = _reduce.reduced_value(total, small, denominator, 0, 0, np.dtype(dtype))
        scaled = _reduce.reduced_value(total, small, denominator, 3, 3, np.dtype(dtype))
        assert type(fast) is type(scaled)
        assert np.array_equal(fast, scaled, equal_nan=True), (total, denominator, fast, scaled)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction, normalizer", [("none", None), ("sum", None),
                                                   ("sum_over_positives", None),
                                                   ("mean", 8.0), ("mean", 0.5)])
def test_weighted_gradients_near_the_top_of_the_double_range(dtype, reduction, normalizer):
    """w g beyond the largest double on the way, where the divisor (the count of
    positives, a normalizer) may bring w g / D back into range: never NaN, the
    exact value where it is finite, inf where it is not (a fuzzer's finding: at
    gamma 4 the gradient's |alpha_t g| exceeds 1, and weights of 1.5e308 gave NaN)."""
    x = np.array([3.8129962338385637, 2.5, 6.0, -1.0, 0.25, 12.0, -30.0, 1.5], dtype=dtype)
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0], dtype=dtype)
    w = np.full(x.shape, 1.5488e308)
    value, grad = focal.loss_and_grad(x, y, 0.01, 4.0, weights=w, reduction=reduction,
                                      normalizer=normalizer)
    assert not np.any(np.isnan(grad)) and not np.any(np.isnan(value)), (value, grad)
    exact = [sigmoid_reference(float(xi), float(yi), 4.0, alpha="0.01") for xi, yi in zip(x, y)]
    weights = [mpmath.mpf(float(v)) for v in w]
    denominator = (mpmath.mpf(normalizer) if normalizer else
                   max(mpmath.mpf(float(y.sum())), 1) if reduction == "sum_over_positives" else 1)
    for i in range(x.size):
        want = weights[i] * exact[i].grad / denominator
        assert_close(grad[i], want, dtype, 2, f"{reduction} gradient {i}")


# weight / normalizer pairs whose quotient passes the double range although w g / D
# (g the unweighted gradient) need not: the factor must not be formed alone
QUOTIENTS_BEYOND_THE_RANGE = [(1e300, 1e-10), (1e308, 1e-300), (1.7e308, 0.5), (1e200, 1e-200)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weight, normalizer", QUOTIENTS_BEYOND_THE_RANGE)
def test_softmax_weights_over_a_normalizer_beyond_the_double_range(dtype, weight, normalizer):
    """alpha w (p - y) / D with w / D > 1.8e308 (an adversarial review's finding: the factor
    w / D was formed first, inf, and the gradient became inf, -inf and NaN where the exact
    values were 1e10 (p - y)).  Both row paths: class indices (float32: the vectorised
    rows) and dense targets, the gradient alone and with the loss."""
    logits = np.array([[0.0, 0.0, 0.0], [-30.0, 2.0, 0.5], [-700.0, 700.0, 0.0]], dtype=dtype)
    labels = np.array([0, 1, 2])
    dense = np.eye(3, dtype=dtype)[labels]
    alpha = 1e-300 if weight * 1e-300 / normalizer < 1e300 else 0.25
    w = np.full(3, weight)
    for targets in (labels, dense):
        grads = [focal.softmax_grad(logits, targets, alpha, 0.0, weights=w, normalizer=normalizer),
                 focal.softmax_loss_and_grad(logits, targets, alpha, 0.0, weights=w,
                                             normalizer=normalizer)[1]]
        for grad in grads:
            assert not np.any(np.isnan(grad)), grad
            for i, row in enumerate(logits):
                _, exact_grad, _ = softmax_reference([float(v) for v in row], dense[i].tolist(),
                                                     0.0, alpha)
                for j in range(3):
                    if abs(exact_grad[j]) < mpmath.mpf(2) ** -1000:
                        # a value a weight brings up from below 1e-308: the README's gap
                        # (formed after the unweighted value is rounded), not NaN (above)
                        continue
                    want = mpmath.mpf(weight) * exact_grad[j] / mpmath.mpf(normalizer)
                    assert_close(grad[i, j], want, dtype, 2, (i, j))


@pytest.mark.parametrize("weight, normalizer",
                         QUOTIENTS_BEYOND_THE_RANGE + [(1.7e308, 1e305), (1.5e308, 0.9e308)])
def test_sigmoid_float32_weights_over_a_normalizer_beyond_the_double_range(weight, normalizer):
    """The float32 kernels folded w / D into one factor (inf) and met a gradient that
    underflowed to 0: NaN for every logit from 600 to 800.  Exact: about -1e-304 w / D,
    -0 or a float32 number.  And where they divided (a factor below 2^-1000), w g
    overflowed before the division although w g / D is finite (|g| reaches 1.1 at
    x = -2.2: -inf where the exact value is -1874).  Every sigmoid family with hard
    targets, both signs of x."""
    x = np.concatenate([np.linspace(600.0, 800.0, 9), -np.linspace(600.0, 800.0, 9),
                        [0.5, -3.0, -2.2, 2.2, -1.5]]).astype(np.float32)
    for y in (np.ones(x.size, np.float32), np.zeros(x.size, np.float32)):
        w = np.full(x.size, weight)
        grads = {
            "grad": focal.grad(x, y, weights=w, normalizer=normalizer),
            "quality_grad": focal.quality_grad(x, y, weights=w, normalizer=normalizer),
            "poly1_grad": focal.poly1_grad(x, y, weights=w, normalizer=normalizer),
        }
        for name, grad in grads.items():
            assert not np.any(np.isnan(grad)), (name, grad)
        for i in range(x.size):
            exact = sigmoid_reference(float(x[i]), float(y[i]), 2.0)
            want = mpmath.mpf(weight) * exact.grad / mpmath.mpf(normalizer)
            assert_close(grads["grad"][i], want, np.float32, 1, (float(x[i]), float(y[i])))


@pytest.mark.parametrize("name", ["poly1", "varifocal"])
def test_float32_descendants_normalise_before_a_gradient_leaves_the_range(name):
    """Poly-1's epsilon and varifocal's alpha of 1e200 give unweighted gradients near 1e200;
    times weights of 1e112 they pass the double range before a normaliser of 1e282 brings
    them back (about 1e29).  The descendants' float32 loop formed g w first: inf.  Against
    mpmath, both targets (varifocal's positives carry no alpha: ordinary values)."""
    x = np.array([-0.25, 0.5, -3.0, 2.0, 0.0, -30.0], np.float32)
    w = np.full(x.size, 1e112)
    for target in (0.0, 1.0):
        y = np.full(x.size, target, np.float32)
        if name == "poly1":
            grad = focal.poly1_grad(x, y, None, 2.0, 1e200, weights=w, normalizer=1e282)
            exact = [poly1_mp(float(v), target, 2.0, 1e200, alpha=None)[1] for v in x]
        else:
            grad = focal.varifocal_grad(x, y, 1e200, 1.0, weights=w, normalizer=1e282)
            exact = [varifocal_mp(float(v), target, 1.0, alpha=1e200)[1] for v in x]
        for i in range(x.size):
            want = mpmath.mpf(1e112) * exact[i] / mpmath.mpf(1e282)
            assert_close(grad[i], want, np.float32, 1, (name, float(x[i]), target))


@pytest.mark.parametrize("name, parameters, weight, normalizer", [
    ("varifocal", (1.7e308, 2.0), 2.0, 1.7e308), ("varifocal", (1e300, 1.0), 1e20, 1e308),
    ("poly1", (0.25, 2.0, 1.7e308), 10.0, 1.7e308), ("poly1", (None, 0.0, 1e300), 1e10, 1.7e308),
    ("poly1", (None, 2.0, 1e300), 1e10, 2.0**900)])
def test_float32_gradients_over_a_normalizer_near_the_top_of_the_range(name, parameters, weight,
                                                                       normalizer):
    """Where w g passes the double range and D brings the quotient back into
    float32's (D above 2^896), the float32 loop formed w g unshrunk: inf for
    varifocal's alpha 1.7e308, w = 2, D = 1.7e308, where the value is 1.54
    (review 92; float64's results were right).  Against mpmath, both targets."""
    x = np.array([-0.25, 0.5, -3.0, 2.0, 0.0, -30.0, 1.0], np.float32)
    w = np.full(x.size, weight)
    for target in (0.0, 1.0):
        y = np.full(x.size, target, np.float32)
        if name == "poly1":
            alpha, gamma, epsilon = parameters
            grad = focal.poly1_grad(x, y, alpha, gamma, epsilon, weights=w, normalizer=normalizer)
            exact = [poly1_mp(float(v), target, gamma, epsilon, alpha=alpha)[1] for v in x]
        else:
            alpha, gamma = parameters
            grad = focal.varifocal_grad(x, y, alpha, gamma, weights=w, normalizer=normalizer)
            exact = [varifocal_mp(float(v), target, gamma, alpha=alpha)[1] for v in x]
        for i in range(x.size):
            if abs(exact[i]) > np.finfo(np.float64).max:
                continue  # (g itself past the doubles: the README's own class, inf)
            want = mpmath.mpf(weight) * exact[i] / mpmath.mpf(normalizer)
            assert_close(grad[i], want, np.float32, 1, (name, float(x[i]), target))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_infinite_loss_beside_a_weight_the_scale_takes_to_zero(dtype):
    """An unweighted loss beyond the double range (varifocal with alpha 1.7e308, FL* with
    beta -1.7e308) times a 5e-324 weight: the reductions' scale (weights [5e-324, 1] scale by
    2^-2) took that weight below the smallest subnormal, and 0 * inf made the sum NaN.  The
    sum and mean are inf, as the elements are under reduction "none".  (Left: under "none",
    an alpha_t w that itself underflows, 0.25 * 5e-324, still masks its element to 0 beside
    its twin's inf; that one case is not asserted here.)"""
    x = np.array([30.0, 30.0], dtype=dtype)
    for w in ([5e-324, 1.0], [1.0, 5e-324], [5e-324, 5e-324], [5e-324, 1e308]):
        w = np.array(w)
        for reduction in ("none", "sum", "mean"):
            values = [
                focal.varifocal_loss(x, np.zeros(2, dtype), 1.7e308, 0.0, weights=w,
                                     reduction=reduction),
                focal.varifocal_loss_and_grad(x, np.zeros(2, dtype), 1.7e308, 0.0, weights=w,
                                              reduction=reduction)[0],
                focal.star_loss(np.zeros(2, dtype), np.zeros(2, dtype), 0.25, 1e-300, -1.7e308,
                                weights=w, reduction=reduction),
                focal.star_loss(np.zeros(2, dtype), np.array([0.0, 1.0], dtype), 0.25, 1e-300,
                                -1.7e308, weights=w, reduction=reduction),
            ]
            if reduction == "none" and w[1] == 5e-324:
                values.pop()  # (the case left, above)
            for value in values:
                assert np.all(np.isposinf(value)), (w, reduction, value)


# every elementwise family; parameters that make the unweighted gradient large
# (Poly-1's epsilon, varifocal's alpha), tiny, or plain
GRADIENT_FAMILIES = [
    ("grad", dict(alpha=0.25, gamma=2.0)),
    ("grad", dict(alpha=None, gamma=0.0)),
    ("star_grad", dict(alpha=0.25, gamma=4.0, beta=0.0)),
    ("poly1_grad", dict(alpha=0.25, gamma=1e300, epsilon=1e300)),
    ("poly1_grad", dict(alpha=None, gamma=0.0, epsilon=1e300)),
    ("varifocal_grad", dict(alpha=1e300, gamma=0.0)),
    ("quality_grad", dict(beta=2.0)),
    ("asymmetric_grad", dict(gamma_pos=0.0, gamma_neg=4.0, clip=0.05)),
]
POWERS = (-1074, -1022, -1000, -600, 0, 600, 1000, 1023)


def _scaled_expectation(base, shift, dtype):
    """base 2^shift in dtype, and which entries to compare: those whose base
    is a finite normal number (a subnormal base has no more digits to scale, an
    infinite one none: float32's inf of varifocal's 1e300 p is finite weighted)."""
    with np.errstate(over="ignore", under="ignore"):
        expected = np.ldexp(base.astype(np.float64), shift).astype(dtype)
    return expected, np.isfinite(base) & (np.abs(base) >= np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, parameters", GRADIENT_FAMILIES)
def test_gradients_over_weights_and_normalizers_that_are_powers_of_two(dtype, name, parameters):
    """w g / D with w = 2^k and D = 2^j is the unweighted gradient times 2^(k - j),
    exactly while that is a normal number.  An adversarial review's findings: w g
    overflowed where D brought it back (g = 5e299 from varifocal's alpha 1e300, w = D
    = 1e10: inf); the 2^64 shrink chosen by w's size alone put w g / D through the
    subnormal range (g = 1e-304, w = D = 1e300: 5.8% off; w = 2^1000, D = 2^1023: -0
    where -1.2e-311 is exact); g w below the normal range before a tiny D (w = D =
    2^-1074: 4e-5 off)."""
    function = getattr(focal, name)
    x = np.repeat(np.array([0.0, -1.0, 3.0, -17.0, 36.0, -233.0, 700.0, -700.0, 745.0, 1e4],
                           dtype), 2)
    y = np.tile(np.array([0.0, 1.0], dtype), x.size // 2)
    base = function(x, y, **parameters, reduction="none")
    for k in POWERS:
        w = np.full(x.size, math.ldexp(1.0, k))
        for j in POWERS:
            got = function(x, y, **parameters, weights=w, normalizer=math.ldexp(1.0, j))
            expected, compared = _scaled_expectation(base, k - j, dtype)
            _compare_scaled(got, expected, compared, dtype, (name, parameters, k, j))


def _compare_scaled(got, expected, compared, dtype, what):
    """got against expected (see _scaled_expectation) where compared."""
    info = np.finfo(dtype)
    assert not np.any(np.isnan(got)), (what, got)
    for i in np.flatnonzero(compared):
        e, g = float(expected[i]), float(got[i])
        if math.isinf(e):
            assert g == e, (what, i, g, e)
        elif abs(e) >= info.tiny:
            assert abs(g - e) <= 2 * float(info.eps) * abs(e), (what, i, g, e)
        else:  # a subnormal result: rounded once more at most
            assert abs(g - e) <= float(info.smallest_subnormal), (what, i, g, e)


# one call's weights: powers of two and others, from 5e-324 to 1.7e308
MIXED_WEIGHTS = np.array([math.ldexp(1.0, k) for k in POWERS + (-900, -830, -300)]
                         + [5e-324, 3e-310, 7e-300, 1e-250, 1e-230, 1e-200, 1e-20, 0.3, 1e300,
                            1.7e308])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, parameters", GRADIENT_FAMILIES)
def test_gradients_over_mixed_weights_in_one_call(dtype, name, parameters):
    """Every weight of MIXED_WEIGHTS in one call, over normalizers from 5e-324
    to 1.7e308 and a weighted mean: each element's w g / D is the unweighted
    gradient times w / D, rounded (2 units of the dtype's epsilon, or one
    subnormal step), whatever the other weights.  The reductions' scale is
    chosen per call by the largest weight; an adversarial probe found the
    elements it leaves far from 1 wrong: Poly-1's g = 1.9e299 under w =
    1e-300 (lifted 2^600) over D = 1e-250 beside w = 1e-10 gave inf for
    4.7e248 (the quotient overflowed before the lift's 2^-600 applied); g w
    that underflowed even 2^600 larger gave 0 (the focal loss's 8e-304 under
    w = 1e-310 beside 1e-290 over 5e-324, for 4e-291; its 6e-261 under w =
    1e-250 over D = 1e-250, for 6e-261); alpha_t w 2^600 under a weighted
    mean's scale 2^-997 underflowed (Poly-1's g = 1e300 under w = 1e-300
    beside 1e300: 0 for 2.4e-301); float32 results took g w unlifted over a
    tiny D (w = D = 2^-1074 beside 2^1023: 0 for 0.22)."""
    function = getattr(focal, name)
    x = np.repeat(np.array([0.0, -1.0, 3.0, -17.0, 36.0, -60.0, -200.0, -233.0, 233.0, 700.0,
                            -700.0, 745.0, 1e4], dtype), 2)
    y = np.tile(np.array([0.0, 1.0], dtype), x.size // 2)
    count = MIXED_WEIGHTS.size
    base = np.tile(function(x, y, **parameters, reduction="none"), count)
    w = np.repeat(MIXED_WEIGHTS, x.size)
    xs, ys = np.tile(x, count), np.tile(y, count)
    compared = np.isfinite(base) & (np.abs(base) >= np.finfo(dtype).tiny)
    exact_weights = [mpmath.mpf(float(v)) for v in w]
    for normalizer in [math.ldexp(1.0, j) for j in POWERS] + [5e-324, 1e-300, 1e-250, 3e10,
                                                              1.7e308, None]:
        got = function(xs, ys, **parameters, weights=w, normalizer=normalizer)
        denominator = (mpmath.fsum(exact_weights) if normalizer is None
                       else mpmath.mpf(normalizer))
        expected = np.zeros_like(base)
        with np.errstate(over="ignore", under="ignore"):
            for i in np.flatnonzero(compared):  # (the scaled value, rounded once)
                expected[i] = float(mpmath.mpf(float(base[i])) * exact_weights[i] / denominator)
        _compare_scaled(got, expected, compared, dtype, (name, parameters, normalizer))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, parameters", GRADIENT_FAMILIES)
def test_reduced_losses_over_a_tiny_normalizer(dtype, name, parameters):
    """sum(w l) / D with D far below 1, its value carried by a term w l below
    the normal range: the terms kept few digits before D brought them back
    (an adversarial probe: weights [1e-230, 1] over D = 1e-230 gave 0 for
    2e-261; per-class alpha [1e-300, 1] under weights [1e-20, 1] over D =
    1e-320, 0.0672 for 0.0676).  Against the float64 unweighted losses
    weighed and summed exactly."""
    function = getattr(focal, name.replace("grad", "loss"))
    info = np.finfo(dtype)
    for x0 in (3.0, 0.5, -60.0, -200.0):
        # the second element's loss is 0 or negligible, its weight 1 the largest
        x, y = np.array([x0, -800.0]), np.array([0.0, 0.0])
        base = function(x, y, **parameters, reduction="none")
        for small in (5e-324, 3e-310, 1e-300, 1e-250, 1e-230):
            w = np.array([small, 1.0])
            for normalizer in (small, small * 1e-10, small * 1e10, 5e-324, 1e-320):
                if not normalizer > 0.0:
                    continue
                got = function(x.astype(dtype), y.astype(dtype), **parameters, weights=w,
                               normalizer=normalizer)
                exact = mpmath.fsum(mpmath.mpf(float(b)) * mpmath.mpf(float(v))
                                    for b, v in zip(base, w)) / mpmath.mpf(normalizer)
                with np.errstate(over="ignore", under="ignore"):
                    expected = np.array([float(exact)]).astype(dtype)
                _compare_scaled(np.array([got]), expected, np.array([True]), dtype,
                                (name, parameters, x0, small, normalizer, float(exact)))
    if name == "grad":
        # per-class alpha: the sigmoid form folds alpha_t w before the scale
        x = np.array([[0.5, 0.5]], dtype)
        got = focal.loss(x, np.array([[1.0, 0.0]], dtype), alpha=np.array([1e-300, 1.0]),
                         weights=np.array([1e-20, 1.0]), normalizer=1e-320)
        base = focal.loss(x.astype(np.float64), np.array([[1.0, 0.0]]),
                          alpha=np.array([1e-300, 1.0]), reduction="none")[0]
        exact = (mpmath.mpf(float(base[0])) * mpmath.mpf(1e-20) + mpmath.mpf(float(base[1])))
        exact /= mpmath.mpf(1e-320)
        assert abs(float(got) - float(exact)) <= 2 * float(info.eps) * float(exact), (got, exact)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("family", ["focal", "poly1", "star"])
def test_a_subnormal_alpha_t_over_a_normalizer_below_one(dtype, family):
    """alpha_t w l / D with alpha_t subnormal, w above 1 and D below 1: the
    weights' scale undid the normalizer's shift, and the term alpha_t w l
    was rounded below the normal range before D brought it back (alpha
    5e-324 under a weight of 1e10 over 1e-10: 36 bits of 2.2e-304; FL*
    8.4e5 ULP off; review 83).  Against mpmath, within 2 ULP; the gradient
    of the same call too."""
    x = 0.10340628762699511
    for alpha, weight, normalizer in [(5e-324, 1e10, 1e-10), (1e-315, 1e10, 1e-10),
                                      (5e-324, 1e100, 1e-100), (1e-320, 2.0, 0.5 ** 30),
                                      (5e-324, 1e200, 1e-30)]:
        if family == "focal":
            exact = sigmoid_reference(x, 1.0, 0.5, alpha)[:2]
            loss, grad = focal.loss_and_grad(np.array([x], dtype), np.array([1.0], dtype), alpha,
                                             0.5, weights=np.array([weight]),
                                             normalizer=normalizer)
        elif family == "poly1":
            exact = poly1_mp(x, 1.0, 0.5, 1.0, alpha)[:2]
            loss, grad = focal.poly1_loss_and_grad(np.array([x], dtype), np.array([1.0], dtype),
                                                   alpha, 0.5, 1.0, weights=np.array([weight]),
                                                   normalizer=normalizer)
        else:
            exact = star_reference(x, 1.0, 2.0, 1.0, alpha)
            loss, grad = focal.star_loss_and_grad(np.array([x], dtype), np.array([1.0], dtype),
                                                  alpha, 2.0, 1.0, weights=np.array([weight]),
                                                  normalizer=normalizer)
        factor = mpmath.mpf(weight) / mpmath.mpf(normalizer)
        where = f"{family}, alpha {alpha:g}, weight {weight:g}, normalizer {normalizer:g}"
        assert_close(loss, exact[0] * factor, dtype, 2, f"{where}: loss")
        assert_close(grad[0], exact[1] * factor, dtype, 2, f"{where}: gradient")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_infinite_loss_times_a_tiny_alpha_t_w_stays_infinite(dtype):
    """The case test_an_infinite_loss_beside_a_weight_the_scale_takes_to_zero left:
    under "none", alpha_t w = 0.25 * 5e-324 underflowed to 0 and masked an infinite
    loss (FL* with beta -1.7e308) to 0 beside its twin's inf (float64 results; float32
    ones until they took the lift as well)."""
    w = np.array([5e-324, 5e-324])
    value = focal.star_loss(np.zeros(2, dtype), np.array([0.0, 1.0]), 0.25, 1e-300, -1.7e308,
                            weights=w, reduction="none")
    assert np.all(np.isposinf(value)), value


@pytest.mark.parametrize("power", [-1022, -1023, -1040, -1060, -1074])
def test_subnormal_weights_keep_the_digits_of_tiny_losses(power):
    """All weights subnormal: the sums' scale of the weights exceeds the doubles (up to 2^1072).
    The part beyond 2^1022 is applied to each weight as it is read, so a mean of losses near
    1e-300 keeps every digit (with the scale stopped at 2^1022 the largest weight reached only
    2^-52, and w l lost 20 bits or, for a loss of 1e-309, all of them)."""
    w = 2.0 ** power
    x = np.array([-690.0, -689.5, -700.0, -705.0])  # y = 0: losses (1 - alpha) p, 1e-300 to 1e-306
    y = np.zeros(4)
    weights = np.full(4, w)
    plain_value, plain_grad = focal.loss_and_grad(x, y, 0.25, 0.0)
    value, grad = focal.loss_and_grad(x, y, 0.25, 0.0, weights=weights)
    # uniform weights, a power of two: every scaled product is exact, the same bits
    assert value == plain_value and plain_value > 0
    np.testing.assert_array_equal(grad, plain_grad)
    assert focal.star_loss(x, y, 0.25, 0.5, 1.0, weights=weights) == \
        focal.star_loss(x, y, 0.25, 0.5, 1.0)
    logits = np.stack([np.zeros(4), -x], axis=1)  # rows whose loss is e^x near 1e-300
    labels = np.ones(4, dtype=np.intp)
    assert focal.softmax_loss(logits, labels, None, 0.0, weights=weights) == \
        focal.softmax_loss(logits, labels, None, 0.0)
    np.testing.assert_array_equal(focal.softmax_grad(logits, labels, None, 0.0, weights=weights),
                                  focal.softmax_grad(logits, labels, None, 0.0))
    # unequal subnormal weights against mpmath
    mixed = np.array([w, 3 * w if power < -1060 else w / 3, 0.0, 7 * TINY])
    exact = [sigmoid_reference(xi, yi, 0.0, mpmath.mpf(1) / 4) for xi, yi in zip(x, y)]
    weights_mp = [mpmath.mpf(float(v)) for v in mixed]
    want_value, want_grad = reduce_exact([e[0] for e in exact], [e[1] for e in exact],
                                         weights_mp, None, "mean")
    value, grad = focal.loss_and_grad(x, y, 0.25, 0.0, weights=mixed)
    assert_close(value, want_value, np.float64, 1, f"mean, weights 2^{power}")
    for i in range(4):
        assert_close(grad[i], want_grad[i], np.float64, 1, f"gradient {i}, weights 2^{power}")


def test_a_subnormal_loss_under_subnormal_weights_is_not_lost():
    """A loss of 2e-309 (itself subnormal) under weights of 5e-324: its mean was 0.  Now
    each w l is formed at a weight of 1/4, rounded as a subnormal once: within a few units
    of the smallest subnormal of the unweighted mean."""
    x = np.full(3, -710.5)
    y = np.zeros(3)
    plain = focal.loss(x, y, 0.25, 0.0)
    assert 0 < plain < 2.2250738585072014e-308
    for weights in (np.full(3, TINY), np.array([TINY, 2 * TINY, TINY])):
        value = focal.loss(x, y, 0.25, 0.0, weights=weights)
        assert abs(value - plain) <= 3 * TINY, (weights, value, plain)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_zero_alpha_t_masks_huge_weights(alpha, dtype):
    """alpha 1 (or 0) gives the negatives (positives) alpha_t = 0: their values are 0 whatever
    the weight.  A weight of 1e308 was lifted by 2^600 to inf as if alpha_t w were tiny, and
    0 * inf made NaN."""
    x = np.array([1.0, -1.0, 0.0, 3.0, -2.0, 40.0], dtype)
    y = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype)
    masked = y == (0.0 if alpha == 1.0 else 1.0)
    for weight in (1e308, 1.7e308, 1e300, 2.0 ** 900):
        w = np.full(len(x), weight)
        for gamma in (2.0, 7.3e-230, 0.0):
            loss, grad = focal.loss_and_grad(x, y, alpha, gamma, weights=w, reduction="none")
            _, hess = focal.grad_hess(x, y, alpha, gamma, weights=w)
            for values in (loss, grad, hess):
                assert not np.isnan(values).any(), (weight, gamma, values)
                assert (values[masked] == 0).all(), (weight, gamma, values)
            total = focal.loss(x, y, alpha, gamma, weights=w, reduction="mean")
            assert np.isfinite(total)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "sum_over_positives"])
@pytest.mark.parametrize("alpha, target", [(1e-300, 1.0), (1e-320, 1.0), (1.0, 1e-300),
                                           (5e-324, 1.0), (2.0 ** -960, 1.0)])
def test_a_tiny_alpha_t_times_a_huge_weight(alpha, target, reduction):
    """alpha_t = 1e-300 and w = 1e300: alpha_t w (about 1) times the reductions' scale is tiny,
    so the product is lifted by 2^600 on the way.  The lift went into the weight, 1e300 2^600
    = inf, and every reduced value was NaN (the per-element values, not lifted, were right)."""
    x = np.array([0.0, 1.5, -2.0])
    y = np.array([target, 0.0, target])
    for weight in (1e300, 1e150, 1.7e308):
        # (the middle weight within 2^900 of the others: a term weighted below 2^-1022 times
        # the largest weight is subnormal once scaled, and where such terms make up the sum
        # it keeps fewer digits, a gap the README lists)
        w = np.array([weight, weight * 2.0 ** -900, weight * 0.5])
        exact = [sigmoid_reference(xi, yi, 2.0, alpha=alpha) for xi, yi in zip(x, y)]
        want_value, want_grad = reduce_exact(
            [e[0] for e in exact], [e[1] for e in exact], [mpmath.mpf(float(v)) for v in w],
            mpmath.mpf(float(y.sum())), reduction)
        value, grad = focal.loss_and_grad(x, y, alpha, 2.0, reduction=reduction, weights=w)
        where = f"alpha {alpha} target {target} weight {weight} {reduction}"
        if reduction == "none":
            for i in range(len(x)):
                assert_close(value[i], exact[i][0] * mpmath.mpf(float(w[i])), np.float64, 4,
                             f"{where} loss {i}")
        else:
            assert_close(value, want_value, np.float64, 4, where)
            for i in range(len(x)):
                assert_close(grad[i], want_grad[i], np.float64, 4, f"{where} gradient {i}")
        for name in ("poly1_loss", "star_loss"):
            extra = {"epsilon": 0.0} if name == "poly1_loss" else {"gamma": 2.0, "beta": 1.0}
            if name == "star_loss" and target not in (0.0, 1.0):
                continue
            value = getattr(focal, name)(x, y, alpha, reduction=reduction, weights=w,
                                         **({"gamma": 2.0} if name == "poly1_loss" else {}),
                                         **extra)
            assert not np.isnan(value).any(), (name, where, value)


# rows whose parameters make unweighted values near the double range: (name,
# parameters, the exact (loss, gradient, second derivative or None) at (x, y))
LARGE_VALUE_ROWS = [
    ("poly1", dict(alpha=0.25, gamma=2.0, epsilon=1e300),
     lambda x, y: poly1_mp(x, y, 2.0, 1e300, alpha=0.25)),
    ("poly1", dict(alpha=None, gamma=0.0, epsilon=3e299),
     lambda x, y: poly1_mp(x, y, 0.0, 3e299, alpha=None)),
    ("star", dict(alpha=0.25, gamma=1e-300, beta=0.0),
     lambda x, y: star_reference(x, y, 1e-300, 0.0, alpha=0.25) + (None,)),
    ("star", dict(alpha=0.75, gamma=1.0, beta=-1e300),
     lambda x, y: star_reference(x, y, 1.0, -1e300, alpha=0.75) + (None,)),
    ("varifocal", dict(alpha=1e300, gamma=2.0),
     lambda x, y: varifocal_mp(x, y, 2.0, alpha=1e300)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, parameters, exact", LARGE_VALUE_ROWS)
def test_tiny_weights_times_large_unweighted_values(name, parameters, exact, dtype):
    """A subnormal weight (or alpha_t w) times a row's value near the double range
    lands in float32's range.  float32 results computed alpha_t w as a double first
    (0.25 * 5e-324 is 0, 0.75 * 5e-324 rounds to 5e-324): Poly-1 of epsilon 1e300 and
    FL* of gamma 1e-300 gave 0 for 1.5e-25 and a value 4/3 too large (an adversarial
    review); float64 results lift such scales by 2^600, and now float32 ones do too."""
    x = np.repeat(np.array([0.0, 2.5, -3.0], dtype), 2)
    y = np.tile(np.array([0.0, 1.0]), 3)
    weights = np.array([5e-324, 3 * 5e-324, 1e-310, 2e-308, 1e-320, 7e-315])
    functions = {kind: getattr(focal, f"{name}_{kind}") for kind in ("loss", "grad")}
    loss = functions["loss"](x, y, **parameters, reduction="none", weights=weights)
    grad = functions["grad"](x, y, **parameters, reduction="none", weights=weights)
    hess = None
    if name != "star":
        _, hess = getattr(focal, f"{name}_grad_hess")(x, y, **parameters, weights=weights)
    # the suite's bounds: float32 results within 1 ULP (computed in double), float64 within
    # the 4 ULP the tests assert for the elementwise forms (FL*'s unweighted loss at gamma
    # 1e-300 is 0.68 ULP off, 1.14 once weighted), the second derivative alike (its terms
    # here are of one sign and size)
    bound = 1 if dtype is np.float32 else 4
    for i in range(x.size):
        values = exact(float(x[i]), float(y[i]))
        w = mpmath.mpf(float(weights[i]))
        where = (name, parameters, float(x[i]), float(y[i]), float(weights[i]))
        assert_close(loss[i], values[0] * w, dtype, bound, ("loss",) + where)
        assert_close(grad[i], values[1] * w, dtype, bound, ("gradient",) + where)
        if hess is not None:
            assert_close(hess[i], values[2] * w, dtype, 4, ("second derivative",) + where)


# Reduced losses whose weights' scale takes the sum out of range: the heaviest elements' losses
# are 0 (or tiny), so the sum is made of light terms the scale took below the normal range; or a
# normalizer's shift took a term near the double range past it.  (name, parameters, logits,
# targets, weights, dtype, the exact per-element losses)
def _sigmoid_rows(x, y, gamma, alpha):
    return [sigmoid_reference(xi, yi, gamma, alpha=alpha).loss for xi, yi in zip(x, y)]


def _poly1_rows(x, y, gamma, epsilon, alpha):
    return [poly1_mp(xi, yi, gamma, epsilon, alpha=alpha)[0] for xi, yi in zip(x, y)]


LIGHT_TERMS = [
    ("loss", dict(alpha=0.25, gamma=0.0), [-1e308, 600.0], [0.0, 1.0], [1e100, 1.0], np.float64,
     lambda x, y: _sigmoid_rows(x, y, 0.0, 0.25)),
    ("loss", dict(alpha=0.25, gamma=0.0), [-3e38, 80.0], [0.0, 1.0], [1e300, 1.0], np.float32,
     lambda x, y: _sigmoid_rows(x, y, 0.0, 0.25)),
    ("loss", dict(alpha=1.0, gamma=0.0), [0.0, 10.0], [0.0, 1e-300], [2.0 ** 80, 1.0],
     np.float64, lambda x, y: _sigmoid_rows(x, y, 0.0, 1.0)),
    # (taken again with the weights unscaled: a lift of at most 2^900 left the light term at
    # 2^-1072, 2 bits; weights 2^1017 gave 0)
    ("loss", dict(alpha=None, gamma=0.0), [-1.7e308, 700.0], [0.0, 1.0], [2.0 ** 960, 1.0],
     np.float64, lambda x, y: _sigmoid_rows(x, y, 0.0, None)),
    ("loss", dict(alpha=None, gamma=0.0), [-1.7e308, 700.0], [0.0, 1.0], [2.0 ** 1017, 1.0],
     np.float64, lambda x, y: _sigmoid_rows(x, y, 0.0, None)),
    ("star_loss", dict(alpha=None, gamma=1.0, beta=0.0), [-1e308, 600.0], [0.0, 1.0],
     [1e200, 3.0], np.float64,
     lambda x, y: [star_reference(xi, yi, 1.0, 0.0)[0] for xi, yi in zip(x, y)]),
    # alpha_t w below 2^-1674 once scaled: the loss's weight lifted twice (Poly-1's loss of
    # 4.5e295 before alpha_t = 1e-300 gave 568 for 4.5e-5)
    ("poly1_loss", dict(alpha=1e-300, gamma=0.0, epsilon=1e300), [-1e308, 10.0], [0.0, 1.0],
     [2.0 ** 700, 1.0], np.float64, lambda x, y: _poly1_rows(x, y, 0.0, 1e300, 1e-300)),
    ("poly1_loss", dict(alpha=1.0, gamma=0.0, epsilon=1e308), [0.0, 10.0], [0.0, 1e-300],
     [1e250, 1.0], np.float64, lambda x, y: _poly1_rows(x, y, 0.0, 1e308, 1.0)),
    # weights more than 2^1074 apart: the light weight scaled to 0 once stood in as 5e-324,
    # which overstated a large unweighted loss (float32 inf for 1.3e-149; 3.6e267 for 4.2e-18)
    ("poly1_loss", dict(alpha=1.0, gamma=0.0, epsilon=1e200), [60.0, -3e38], [1.0, 0.0],
     [1.5e-323, 1e308], np.float32, lambda x, y: _poly1_rows(x, y, 0.0, 1e200, 1.0)),
    ("poly1_loss", dict(alpha=1.0, gamma=0.0, epsilon=1e200), [60.0, -3e38], [1.0, 0.0],
     [1e-20, 1e308], np.float32, lambda x, y: _poly1_rows(x, y, 0.0, 1e200, 1.0)),
    ("poly1_loss", dict(alpha=1.0, gamma=0.0, epsilon=1e300), [-1e308, 40.0], [0.0, 1.0],
     [1e308, 1e-300], np.float64, lambda x, y: _poly1_rows(x, y, 0.0, 1e300, 1.0)),
    # the loss's second lift rounded its scale below the smallest subnormal on the way (alpha_t
    # w 2^600 2^-615 = 0.75 2^-1074 became 2^-1074: 4/3 of the light term; the fuzzer's find)
    ("poly1_loss", dict(alpha=0.25, gamma=1e300, epsilon=1e300), [-1.7e308, 1e4], [0.0, 0.0],
     [2.0 ** 613, 2.0 ** -1059], np.float64,
     lambda x, y: _poly1_rows(x, y, 1e300, 1e300, 0.25)),
]


@pytest.mark.parametrize("reduction, normalizer", [("sum", None), ("mean", None),
                                                   ("mean", 1e-200), ("mean", 1e10)])
@pytest.mark.parametrize("name, parameters, x, y, weights, dtype, exact", LIGHT_TERMS)
def test_light_terms_beside_heavy_zero_losses(name, parameters, x, y, weights, dtype, exact,
                                              reduction, normalizer):
    """The sum over weights [1e100, 1] whose heavier loss is 0 was 0 for 6.6e-262: the
    weights' scale (the largest near 1/2) took the light term below the normal range.  Such a
    sum is taken again with its weights larger; out= over the logits (in place or reversed)
    gives the same values, its first pass summing the loss before anything is written."""
    x, y, w = np.array(x, dtype), np.array(y), np.array(weights)
    losses = exact([float(v) for v in x], [float(v) for v in y])
    mw = [mpmath.mpf(float(v)) for v in w]
    total = mpmath.fsum(a * b for a, b in zip(mw, losses))
    denominator = (mpmath.mpf(1) if reduction == "sum" else mpmath.mpf(normalizer)
                   if normalizer is not None else mpmath.fsum(mw))
    function = getattr(focal, name)
    options = dict(parameters, reduction=reduction, weights=w, normalizer=normalizer)
    value = function(x, y, **options)
    assert_close(value, total / denominator, dtype, 1 if dtype is np.float32 else 4,
                 (name, reduction, normalizer))
    if name == "star_loss":
        return
    pair = getattr(focal, name.replace("_loss", "") + "_loss_and_grad" if name != "loss"
                   else "loss_and_grad")
    want_value, want_grad = pair(x, y, **options)
    assert want_value == value
    for view in (lambda a: a, lambda a: a[::-1]):
        logits = x.copy()
        got_value, got_grad = pair(logits, y, **options, out=view(logits))
        assert got_value == value, (got_value, value)
        np.testing.assert_array_equal(view(logits), want_grad, strict=True)


# softmax rows whose weights are more than 2^1074 apart, the heavy row's loss 0: (dtype, logits,
# weights).  The light weight scaled to 0 once stood in as 5e-324, which overstated the row's
# large loss (float64: 3.0e293 for 2.1e56; float32: inf for 3e18).
LIGHT_ROWS = [
    (np.float64, [[1.7e308, -2.03], [1e20, -1.43]], [1.2e-252, 1e308]),
    (np.float32, [[3e38, -2.0], [1e20, -1.43]], [1e-20, 1e308]),
    (np.float32, [[1e20, -1.43], [3e38, -2.0]], [1e308, 1e-20]),
]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype, logits, weights", LIGHT_ROWS)
def test_softmax_light_rows_beside_heavy_zero_losses(dtype, logits, weights, reduction):
    """The reduced loss is the light row's own term, out of place and in place."""
    x = np.array(logits, dtype)
    heavy = int(np.argmax(weights))
    labels = np.array([1, 1])
    labels[heavy] = 0
    w = np.array(weights)
    losses = [softmax_reference([float(v) for v in x[r]], np.eye(2)[labels[r]], 2.0)[0]
              for r in range(2)]
    mw = [mpmath.mpf(v) for v in weights]
    total = mpmath.fsum(a * b for a, b in zip(mw, losses))
    want = total if reduction == "sum" else total / mpmath.fsum(mw)
    options = dict(gamma=2.0, reduction=reduction, weights=w)
    value = focal.softmax_loss(x, labels, **options)
    assert_close(value, want, dtype, 8, (reduction, weights))
    pair_value, grad = focal.softmax_loss_and_grad(x, labels, **options)
    assert pair_value == value
    logits_copy = x.copy()
    got_value, got_grad = focal.softmax_loss_and_grad(logits_copy, labels, **options,
                                                      out=logits_copy)
    assert got_value == value
    np.testing.assert_array_equal(got_grad, grad, strict=True)


@pytest.mark.parametrize("out", [False, True])
@pytest.mark.parametrize("weights, normalizer", [([1e-30], 1e-30), ([1e-30, 3e-31], 1e-29),
                                                 ([1e-100, 1e-100], 1e-99)])
def test_terms_a_normalizer_takes_past_the_double_range(weights, normalizer, out):
    """Over a normalizer below 1 the loss's weights are taken 2^k larger (k near -log2 D) so that
    tiny terms keep their digits; a term near the double range then overflowed, and its twin
    scaled 2^-64 too: Poly-1 of epsilon 1.7e308 over weights 1e-30 and D = 1e-30 was inf for
    2.1e306.  Such a sum is taken again without that shift."""
    x = np.resize(np.array([1e-10, 0.5]), len(weights))
    y = np.resize(np.array([0.9, 0.2]), len(weights))
    w = np.array(weights)
    parameters = dict(alpha=5e-324, gamma=2.0, epsilon=1.7e308)
    losses = _poly1_rows([float(v) for v in x], [float(v) for v in y], 2.0, 1.7e308, 5e-324)
    want = mpmath.fsum(mpmath.mpf(a) * b for a, b in zip(weights, losses)) / mpmath.mpf(normalizer)
    options = dict(parameters, reduction="mean", weights=w, normalizer=normalizer)
    value = focal.poly1_loss(x, y, **options)
    assert_close(value, want, np.float64, 4, (weights, normalizer))
    if out:
        _, want_grad = focal.poly1_loss_and_grad(x, y, **options)
        logits = x.copy()
        got, grad = focal.poly1_loss_and_grad(logits, y, **options, out=logits)
        assert got == value
        np.testing.assert_array_equal(grad, want_grad, strict=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("light", [TINY, 3 * TINY, 1e-320, 1e-310, 1e-300])
@pytest.mark.parametrize("heavy", [0.5, 1e300, HUGE])
def test_heavy_weights_on_ignored_rows_do_not_set_the_scale(dtype, light, heavy):
    # ignored rows weigh nothing in the sums: the reductions' scale comes from
    # the weights that count (their largest set it, those of ignored rows
    # included, and took the others below the smallest subnormal: a weighted
    # mean of 0.25 for 0.283, a sum of 0 or one digit), for the sigmoid's
    # class indices and the softmax, every reduction, against mpmath
    rng = np.random.default_rng(17)
    rows, classes = 8, 3
    x = rng.normal(0.0, 3.0, (rows, classes)).astype(dtype)
    labels = rng.integers(0, classes, rows)
    labels[:3] = -1
    w = np.where(labels == -1, heavy, light * (1 + np.arange(rows) % 3))
    counted = [r for r in range(rows) if labels[r] != -1]
    weights = [mpmath.mpf(float(w[r])) for r in counted]
    # the sigmoid's class indices: one weight per row, broadcast over the classes
    exact = [sigmoid_reference(x[r, c], float(labels[r] == c), 2.0)
             for r in counted for c in range(classes)]
    for reduction in ("mean", "sum"):
        value, grad = focal.loss_and_grad(x, labels, 0.25, 2.0, reduction=reduction,
                                          weights=w[:, None])
        want_value, want_grad = reduce_exact(
            [e[0] for e in exact], [e[1] for e in exact],
            [v for v in weights for _ in range(classes)], None, reduction)
        where = f"sigmoid {reduction} {heavy} {light} {np.dtype(dtype).name}"
        assert_close(value, want_value, dtype, 4, where)
        for k, (r, c) in enumerate((r, c) for r in counted for c in range(classes)):
            assert_close(grad[r, c], want_grad[k], dtype, 4, f"{where} gradient {r} {c}")
        assert not grad[:3].any()
    softmax_labels = np.where(labels == -1, -100, labels)
    exact = [softmax_reference(x[r], np.eye(classes)[labels[r]], 2.0, np.ones(classes))
             for r in counted]
    for reduction in ("mean", "sum"):
        value = focal.softmax_loss(x, softmax_labels, None, 2.0, reduction=reduction, weights=w)
        want_value, _ = reduce_exact([e[0] for e in exact], [e[1] for e in exact], weights,
                                     None, reduction)
        assert_close(value, want_value, dtype, 8,
                     f"softmax {reduction} {heavy} {light} {np.dtype(dtype).name}")


@pytest.mark.parametrize("row, label, gamma, weight", [
    ([-300.0, 300.0, -760.0], 0, 1e260, 1e307),
    ([-300.0, -745.0, 300.0], 0, 7.2e258, 1.7e308),
    ([0.0, -800.0, 0.0, -900.0], 0, 1e280, 1e307),
])
def test_float32_softmax_gradient_under_a_coefficient_past_the_double_range(row, label, gamma,
                                                                            weight):
    """A weight near the top of the double range at a huge gamma takes the
    row's one coefficient (the weight times G over the sum, which multiplies
    each stored exponential) past the double range: each class's value is
    its exponential times G, then times the weight, so a class whose
    exponential underflowed is 0 (its exact value is below float32's range),
    not 0 times inf (NaN), and the others are inf of their sign or their
    value."""
    x = np.array([row], dtype=np.float32)
    classes = len(row)
    want = softmax_reference([float(v) for v in row], np.eye(classes)[label], gamma,
                             np.ones(classes))[1]
    for reduction in ("none", "sum"):
        grad = focal.softmax_grad(x, np.array([label]), gamma=gamma, weights=np.array([weight]),
                                  reduction=reduction)[0]
        assert not np.isnan(grad).any(), (reduction, grad)
        for j in range(classes):
            assert_close(grad[j], want[j] * mpmath.mpf(weight), np.float32, 1,
                         f"{reduction} class {j}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gamma", [0.0, 0.01, 0.5])
def test_a_heavy_weight_brings_back_the_far_tail_of_a_hard_target(dtype, gamma):
    """The right side of a hard target beyond |x| = 708 is below the normal
    range (e^-(1+g)|x|); a weight up to 1.7e308 brings it back, so it is
    formed 2^1000 larger, times the weight, and scaled back: x = -745 at
    gamma 0 under a weight of 1e300 gave 4.94e-24 for 2.82e-24, x = -760
    gave 0 for 8.6e-31.  Loss, gradient and second derivative per element,
    and the sum beside a light element, within an ULP or two."""
    x = np.array([-709.0, -745.0, -760.0, -1000.0, 720.0, 745.0, -3.0], dtype)
    y = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype)
    w = np.array([1e300, 1e300, 1.7e308, 1.7e308, 1e300, 3e200, 1.0])
    exact = [sigmoid_reference(float(a), float(b), gamma, "0.25") for a, b in zip(x, y)]
    weights = [mpmath.mpf(float(v)) for v in w]
    loss = focal.loss(x, y, 0.25, gamma, reduction="none", weights=w)
    grad, hess = focal.grad_hess(x, y, 0.25, gamma, weights=w)
    for i, (e, weight) in enumerate(zip(exact, weights)):
        where = f"x = {x[i]}, gamma {gamma}, {np.dtype(dtype).name}"
        assert_close(loss[i], e.loss * weight, dtype, 1, f"{where} loss")
        assert_close(grad[i], e.grad * weight, dtype, 1, f"{where} gradient")
        assert_close(hess[i], e.hess * weight, dtype, 2, f"{where} second derivative")
    total = focal.loss(x, y, 0.25, gamma, reduction="sum", weights=w)
    assert_close(total, mpmath.fsum(e.loss * v for e, v in zip(exact, weights)), dtype, 2,
                 f"gamma {gamma} sum")


FAR_TAIL_DESCENDANTS = {
    # name: (parameters, reference of (x, y), logits, targets)
    "varifocal": ({"alpha": 0.75, "gamma": 0.5},
                  lambda x, y: varifocal_mp(x, y, 0.5, "0.75"),
                  [-745.0, -760.0, -1000.0, 720.0, 745.0], [0.0, 0.0, 0.0, 1.0, 1.0]),
    "quality": ({"beta": 0.5}, lambda x, y: quality_mp(x, y, 0.5),
                [-745.0, -760.0, 720.0, 760.0], [0.0, 0.0, 1.0, 1.0]),
    "asymmetric": ({"gamma_neg": 0.0, "gamma_pos": 0.5, "clip": 0.0},
                   lambda x, y: asymmetric_mp(x, y, 0.5, 0.0, 0.0),
                   [-745.0, -760.0, 720.0, 760.0], [0.0, 0.0, 1.0, 1.0]),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(FAR_TAIL_DESCENDANTS))
def test_a_heavy_weight_brings_back_the_far_tail_of_the_descendants(dtype, name):
    """The varifocal loss, the quality focal loss and the asymmetric loss
    (without a clip) share the focal loss's far right side: under a weight
    of 1e300 their values beyond |x| = 708 are formed times it too."""
    parameters, reference, logits, targets = FAR_TAIL_DESCENDANTS[name]
    x, y = np.array(logits, dtype), np.array(targets, dtype)
    w = np.full(x.shape, 1e300)
    loss = getattr(focal, f"{name}_loss")(x, y, **parameters, reduction="none", weights=w)
    grad, hess = getattr(focal, f"{name}_grad_hess")(x, y, **parameters, weights=w)
    for i in range(x.size):
        exact = reference(float(x[i]), float(y[i]))
        where = f"{name} x = {x[i]}, y = {y[i]}, {np.dtype(dtype).name}"
        for computed, value, what in zip((loss[i], grad[i], hess[i]), exact,
                                         ("loss", "gradient", "second derivative")):
            assert_close(computed, value * mpmath.mpf(1e300), dtype, 2, f"{where} {what}")


# (x, gamma, alpha, weight) of a negative whose alpha w passes the double range
VARIFOCAL_FACTORS_BEYOND_THE_RANGE = [
    (-36.0, 30.0, 1e300, 1.4e294),   # the exact form; 3.0e109 (was 0)
    (-36.0, 30.0, 1e300, 1e10),      # 2.1e-175 (was 0)
    (-906.0, 0.0, 3.0, 1.7e308),     # the far form; 1.7e-85 (was 0)
    (-720.0, 0.0, 1e308, 1e308),     # 2.6e303: alpha's values, e^-10.8, take the unweighted path
    (-800.0, 0.5, 1e300, 1e300),     # 7.0e78
    (-400.0, 0.5, 1e308, 1e308),     # beyond the double range: inf
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", VARIFOCAL_FACTORS_BEYOND_THE_RANGE)
def test_varifocal_alpha_times_a_weight_beyond_the_double_range(dtype, case):
    """A faint negative of the varifocal loss is formed times alpha w; where
    that product passes the double range it is the product of the two
    mantissas times a power of two (x = -36 at gamma 30, alpha 1e300 under a
    weight of 1.4e294 gave 0 for 3.0e109).  Loss, gradient and second
    derivative against mpmath times the weight, a light element beside it
    keeping its bits; inf where the exact value passes the range."""
    _assert_weighted_varifocal_negative(*case, dtype)


def _assert_weighted_varifocal_negative(x, gamma, alpha, weight, dtype):
    """A negative at x under `weight` beside a light positive: its loss,
    gradient and second derivative within 2 ULP of mpmath's times the
    weight, the positive's loss the bits it has alone."""
    logits, targets = np.array([x, 0.5], dtype), np.array([0.0, 1.0], dtype)
    w = np.array([weight, 1.0])
    loss = focal.varifocal_loss(logits, targets, alpha, gamma, reduction="none", weights=w)
    grad, hess = focal.varifocal_grad_hess(logits, targets, alpha, gamma, weights=w)
    light = focal.varifocal_loss(logits[1:], targets[1:], alpha, gamma, reduction="none")
    assert loss[1] == light[0]
    exact = varifocal_mp(float(logits[0]), 0.0, gamma, alpha=alpha)
    where = f"x = {x}, gamma {gamma}, alpha {alpha:g}, weight {weight:g}, {np.dtype(dtype).name}"
    for computed, value, what in zip((loss[0], grad[0], hess[0]), exact,
                                     ("loss", "gradient", "second derivative")):
        assert_close(computed, value * mpmath.mpf(weight), dtype, 2, f"{where} {what}")


# (x, gamma, alpha = weight): the weighted value passes the double range, its
# mean (the unweighted value) does not
VARIFOCAL_WEIGHTED_BEYOND_THE_RANGE = [(-703.0, 0.0, 1.7e308), (-118.3, 5.0, 1.7e308),
                                       (-40.93, 16.2, 1.7e308), (-41.31, 16.2, 1.7e308)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", VARIFOCAL_WEIGHTED_BEYOND_THE_RANGE)
def test_varifocal_alpha_w_beyond_the_range_under_the_reductions_scale(dtype, case):
    """Where alpha w passes the double range and so does the weighted value,
    the element is weighed with the reductions' scale as any other: its
    value per element is inf, its mean (the weight over itself) the
    unweighted value, and a mean beside a light element finite (a review of
    the mantissas' form: NaN per element and in the mean, inf in float32's
    mean gradient)."""
    x, gamma, alpha = case
    logits, targets, w = np.array([x], dtype), np.array([0.0], dtype), np.array([alpha])
    exact = varifocal_mp(float(logits[0]), 0.0, gamma, alpha=alpha)
    where = f"x = {x}, gamma {gamma}, alpha = weight {alpha:g}, {np.dtype(dtype).name}"
    loss = focal.varifocal_loss(logits, targets, alpha, gamma, reduction="none", weights=w)
    grad = focal.varifocal_grad(logits, targets, alpha, gamma, reduction="none", weights=w)
    assert_close(loss[0], exact[0] * mpmath.mpf(alpha), dtype, 2, f"{where} loss")
    assert_close(grad[0], exact[1] * mpmath.mpf(alpha), dtype, 2, f"{where} gradient")
    mean = focal.varifocal_loss(logits, targets, alpha, gamma, reduction="mean", weights=w)
    mean_grad = focal.varifocal_grad(logits, targets, alpha, gamma, reduction="mean", weights=w)
    assert_close(mean, exact[0], dtype, 2, f"{where} mean")
    assert_close(mean_grad[0], exact[1], dtype, 2, f"{where} mean's gradient")
    pair = focal.varifocal_loss(np.array([x, 1.0], dtype), np.array([0.0, 1.0], dtype), alpha,
                                gamma, reduction="mean", weights=np.array([alpha, 1.0]))
    assert math.isfinite(float(pair)), (where, pair)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_varifocal_large_alpha_below_the_far_form_at_a_large_gamma(dtype):
    """Without a weight, alpha above 1 brings back a negative's values that
    p^g CE took below the normal range, from (1 + g)|x| = 700; above gamma 17
    that is nearer than the far form holds (38 + log(1 + g)), where the
    exact form times alpha now serves (alpha 1e300, gamma 30 at x = -30 gave
    0 for 1.3e-104; gamma 17.5 at x = -39.5 was 1.2e-7 off).  A light element
    beside them keeps its bits."""
    cases = [(-30.0, 30.0, 1e300), (-25.0, 30.0, 1e300), (-20.0, 40.0, 1e200),
             (-10.0, 100.0, 1e300),
             # a review's: 1.2e-7 relative (a normal result, 1.1e9 ULP); subnormal, 7.6 ULP
             (-39.5, 17.5, 1e300), (-39.5, 17.5, 1e10), (-38.0, 18.0, 30.0),
             # near x = 0, p^g is e^-974 at gamma 1000; from gamma 1010 every x
             (-0.5, 1000.0, 1e300), (0.0, 2000.0, 1e300)]
    for x, gamma, alpha in cases:
        logits, targets = np.array([x, 0.5], dtype), np.array([0.0, 1.0], dtype)
        loss = focal.varifocal_loss(logits, targets, alpha, gamma, reduction="none")
        grad, hess = focal.varifocal_grad_hess(logits, targets, alpha, gamma)
        light = focal.varifocal_loss(logits[1:], targets[1:], alpha, gamma, reduction="none")
        assert loss[1] == light[0]
        exact = varifocal_mp(float(logits[0]), 0.0, gamma, alpha=alpha)
        where = f"x = {x}, gamma {gamma}, alpha {alpha:g}, {np.dtype(dtype).name}"
        for computed, value, what in zip((loss[0], grad[0], hess[0]), exact,
                                         ("loss", "gradient", "second derivative")):
            assert_close(computed, value, dtype, 2, f"{where} {what}")


# (x, gamma, alpha, weight): alpha w below 1, alpha p^g CE below the normal
# range, the weighted value within it (review 83: the first two gave 0)
VARIFOCAL_TINY_ALPHA_UNDER_A_HEAVY_WEIGHT = [
    (-1.0, 0.0, 5e-324, 1e300),      # 1.5e-24
    (-5.0, 50.0, 1e-250, 1e100),     # 6.5e-260
    (-1.0, 0.0, 1e-315, 1e300),      # alpha subnormal: 3.1e-16, its digits
    (-30.0, 2.0, 1e-300, 1e250),     # 2.9e-77
    (2.0, 0.0, 5e-324, 1e300),       # the wrong side: 1.1e-23
    (2.0, 2.0, 1e-320, 1e300),       # 1.4e-20
    (0.2, 1100.0, 1e-100, 1e90),     # the wrong side at a large gamma: 1.2e-296
    # alpha w rounded below the normal range, the first take of this fix's
    (100.0, 0.0, 5e-324, 1.5),       # 7.4e-322 (was 9.9e-322; review 85)
    (500.0, 0.0, 1e-310, 1.5),       # 7.5e-308 (125 ULP)
    (-30.0, 0.0, 1e-315, 3.0),       # the right side: 2.8e-328 below the doubles, 0
    # the wrong side with alpha w above 1, alpha q^g below the doubles (review 85)
    (0.5, 1000.0, 1e-200, 1e300),    # 1.3e-98 (was 0)
    (1e-300, 50.0, 1e-300, 1e300),   # 6.156383674493297e-16 (was 1.7e-9 off)
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", VARIFOCAL_TINY_ALPHA_UNDER_A_HEAVY_WEIGHT)
def test_varifocal_tiny_alpha_under_a_heavy_weight(dtype, case):
    """A negative's alpha p^g CE below the normal range, brought back by a
    weight although alpha w stays below 1: formed times alpha w, as the
    elements whose factor is above 1 are (alpha 5e-324, gamma 0 at x = -1
    under a weight of 1e300 gave 0 for 1.5e-24; review 83).  Loss, gradient
    and second derivative against mpmath times the weight, a light element
    beside it keeping its bits."""
    _assert_weighted_varifocal_negative(*case, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_a_heavy_weight_brings_back_the_far_tail_of_fl_star(dtype, alpha):
    """FL*'s far tail e^-z / gamma (z = gamma s x + beta) and its gradient
    -s e^-z are below the normal range from z = 708, where a weight up to
    1.7e308 brings them back: z = 750 at gamma 1 under a weight of 1e300 gave
    0 for 1.9e-26, z = 720 a loss 3e-12 off, and a gamma of 1e-300 with beta
    1000 a gradient of 0 for -5.1e-135.  Per element and summed."""
    cases = [  # (x, y, gamma, beta, weight)
        (750.0, 1.0, 1.0, 0.0, 1e300), (-720.0, 0.0, 1.0, 0.0, 1e300),
        (800.0, 1.0, 1.0, 0.0, 1.7e308), (2.0, 1.0, 1e-300, 1000.0, 1e300),
        (-3.0, 0.0, 250.0, 0.0, 2.0**1000), (700.0, 1.0, 1.0, 10.0, 1e250),
        (1.0, 1.0, 1e-200, 700.0, 1e300), (0.5, 0.0, 2.0, 0.0, 1e300)]
    for x, y, gamma, beta, weight in cases:
        logits, targets = np.array([x, 1.0], dtype), np.array([y, 1.0], dtype)
        w = np.array([weight, 1.0])
        exact = star_reference(x, y, gamma, beta, alpha)
        light = star_reference(1.0, 1.0, gamma, beta, alpha)
        where = f"x = {x}, gamma {gamma}, beta {beta}, weight {weight:g}, {np.dtype(dtype).name}"
        heavy = mpmath.mpf(weight)
        loss = focal.star_loss(logits, targets, alpha, gamma, beta, reduction="none", weights=w)
        assert_close(loss[0], exact[0] * heavy, dtype, 1, f"{where} loss")
        grad = focal.star_grad(logits, targets, alpha, gamma, beta, reduction="sum", weights=w)
        assert_close(grad[0], exact[1] * heavy, dtype, 1, f"{where} gradient")
        total = focal.star_loss(logits, targets, alpha, gamma, beta, reduction="sum", weights=w)
        assert_close(total, exact[0] * heavy + light[0], dtype, 2, f"{where} sum")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gamma, epsilon", [(0.0, 1.0), (0.5, 2.0), (2.0, 1e10), (1.0, -0.5)])
def test_a_heavy_weight_brings_back_the_far_tail_of_poly1(dtype, gamma, epsilon):
    """Poly-1's far right side is the focal loss's times 1 + epsilon, below the
    normal range from (1 + g)|x| = 708: under a weight of 1e300, x = -745 at
    gamma 0 gave 3.7e-24 for 4.23e-24 and x = -760 at gamma 0.5 gave 0 for
    1.8e-195.  Loss, gradient and second derivative."""
    x = np.array([-745.0, -760.0, 720.0, 900.0, -1000.0], dtype)
    y = np.array([0.0, 0.0, 1.0, 1.0, 0.0], dtype)
    w = np.array([1e300, 1e300, 1.7e308, 1e300, 1.7e308])
    loss = focal.poly1_loss(x, y, 0.25, gamma, epsilon, reduction="none", weights=w)
    grad, hess = focal.poly1_grad_hess(x, y, 0.25, gamma, epsilon, weights=w)
    for i in range(x.size):
        exact = poly1_mp(float(x[i]), float(y[i]), gamma, epsilon)
        heavy = mpmath.mpf(float(w[i]))
        where = f"x = {x[i]}, gamma {gamma}, epsilon {epsilon}, {np.dtype(dtype).name}"
        for computed, value, what in zip((loss[i], grad[i], hess[i]), exact,
                                         ("loss", "gradient", "second derivative")):
            assert_close(computed, value * heavy, dtype, 2, f"{where} {what}")


FAINT_CASES = {
    # name: (call's parameters, reference of (x, y), logits, targets); every
    # logit within |x| = 700, its right side's values below 2^-900
    "focal": ({"alpha": 0.25, "gamma": 1.0},
              lambda x, y: sigmoid_reference(x, y, 1.0, "0.25")[:3],
              [-500.0, -360.0, 400.0, -60.0], [0.0, 0.0, 1.0, 0.0]),
    "focal gamma 6": ({"alpha": 0.25, "gamma": 6.0},
                      lambda x, y: sigmoid_reference(x, y, 6.0, "0.25")[:3],
                      [-100.0, -110.0, 120.0], [0.0, 0.0, 1.0]),
    # below |x| = 38 + log(1 + gamma) the far form does not hold: the exact one
    "focal gamma 30": ({"alpha": 0.25, "gamma": 30.0},
                       lambda x, y: sigmoid_reference(x, y, 30.0, "0.25")[:3],
                       [-30.0, -20.0, 25.0, -39.0], [0.0, 0.0, 1.0, 0.0]),
    "focal gamma 1000": ({"alpha": None, "gamma": 1000.0},
                         lambda x, y: sigmoid_reference(x, y, 1000.0, None)[:3],
                         [-1.0, -1.5, 1.2], [0.0, 0.0, 1.0]),
    "varifocal gamma 30": ({"alpha": 0.75, "gamma": 30.0},
                           lambda x, y: varifocal_mp(x, y, 30.0, "0.75"),
                           [-30.0, -25.0], [0.0, 0.0]),
    "poly1": ({"alpha": 0.25, "gamma": 1.0, "epsilon": -0.25},
              lambda x, y: poly1_mp(x, y, 1.0, -0.25),
              [-500.0, -360.0, 400.0], [0.0, 0.0, 1.0]),
    "varifocal": ({"alpha": 0.75, "gamma": 2.0},
                  lambda x, y: varifocal_mp(x, y, 2.0, "0.75"),
                  [-300.0, -250.0], [0.0, 0.0]),
    "quality": ({"beta": 1.0}, lambda x, y: quality_mp(x, y, 1.0),
                [-500.0, 400.0], [0.0, 1.0]),
    "asymmetric": ({"gamma_neg": 1.0, "gamma_pos": 2.0, "clip": 0.0},
                   lambda x, y: asymmetric_mp(x, y, 2.0, 1.0, 0.0),
                   [-500.0, 300.0], [0.0, 1.0]),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(FAINT_CASES))
def test_a_heavy_weight_brings_back_values_that_underflow_within_the_kernels_range(dtype, name):
    """Within |x| = 700 a hard target's right side is e^-(1+g)|x| and
    underflows from (1 + g)|x| = 745; a weight of 1e300 brings it back (x =
    -500 at gamma 1: 0 for 5.1e-135; x = -30 at gamma 30: 0 for 9.6e-105).
    The kernel's block leaves such elements, faint beside their weight, to
    the row's far form, which holds from |x| = 38 + log(1 + gamma), or below
    that to the exact form times the weight.  A light element beside them
    keeps its bits."""
    parameters, reference, logits, targets = FAINT_CASES[name]
    function = "" if name.startswith("focal") else f"{name.split()[0]}_"
    x, y = np.array(logits + [0.5], dtype), np.array(targets + [1.0], dtype)
    w = np.array([1e300] * len(logits) + [1.0])
    loss = getattr(focal, f"{function}loss")(x, y, **parameters, reduction="none", weights=w)
    grad, hess = getattr(focal, f"{function}grad_hess")(x, y, **parameters, weights=w)
    light_loss = getattr(focal, f"{function}loss")(x[-1:], y[-1:], **parameters, reduction="none")
    assert loss[-1] == light_loss[0]
    for i in range(len(logits)):
        exact = reference(float(x[i]), float(y[i]))
        where = f"{name} x = {x[i]}, {np.dtype(dtype).name}"
        for computed, value, what in zip((loss[i], grad[i], hess[i]), exact,
                                         ("loss", "gradient", "second derivative")):
            assert_close(computed, value * mpmath.mpf(1e300), dtype, 2, f"{where} {what}")


# (x, gamma, weight): q^g times the weight below the normal range while the
# gradient and second derivative, that many times larger, are normal
SUBNORMAL_POWER_CASES = [(-0.5, 1000.0, 2.2793285341604758e110),
                         (-0.5, 1000.0, 1.0396133952446965e113),
                         (-2.0, 400.0, 5.791161256428488e58),
                         (-1.0, 900.0, 1e200)]


@pytest.mark.parametrize("family", ["focal", "quality", "asymmetric", "varifocal"])
@pytest.mark.parametrize("case", SUBNORMAL_POWER_CASES)
def test_a_subnormal_power_brought_back_by_a_weight_keeps_its_digits(family, case):
    """Below |x| = 38 + log(1 + gamma) the faint elements' exact form takes
    P = q^g w, whose value may be subnormal where the gradient P B and the
    second derivative, with B and g B up to about 1e8, are normal: formed
    from a subnormal P they kept its few digits (x = -0.5 at gamma 1000 under
    a weight of 2.3e110: a second derivative 217,285 ULP off).  The four
    families whose target-0 right side is the focal loss's give its values."""
    x0, gamma, weight = case
    call = {"focal": ("", {"alpha": None, "gamma": gamma}),
            "quality": ("quality_", {"beta": gamma}),
            "asymmetric": ("asymmetric_", {"gamma_neg": gamma, "gamma_pos": 0.0, "clip": 0.0}),
            "varifocal": ("varifocal_", {"alpha": 1.0, "gamma": gamma})}[family]
    prefix, parameters = call
    x, y, w = np.array([x0, 0.5]), np.array([0.0, 1.0]), np.array([weight, 1.0])
    loss = getattr(focal, f"{prefix}loss")(x, y, **parameters, reduction="none", weights=w)
    grad, hess = getattr(focal, f"{prefix}grad_hess")(x, y, **parameters, weights=w)
    exact = sigmoid_reference(x0, 0.0, gamma, None)[:3]
    for computed, value, what in zip((loss[0], grad[0], hess[0]), exact,
                                     ("loss", "gradient", "second derivative")):
        assert_close(computed, value * mpmath.mpf(weight), np.float64, 2,
                     f"{family} x = {x0}, gamma {gamma}, weight {weight:g}: {what}")


# (x, soft target, gamma, weight): q^g below the normal range, times a weight
# that brings the values back
SOFT_FAINT_CASES = [(0.0, 0.5, 1100.0, 1e300),
                    (-1.0, 0.3, 1000.0, 1.5116964513798817e96),
                    (-79.0, 1e-160, 8.5, 4.65e246),
                    (3.0, 0.75, 600.0, 1e280),
                    (-0.25, 0.5, 2000.0, 1.7e308),
                    (-467.3556519744186, 1e-200, 2.0, 1e300)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", SOFT_FAINT_CASES)
@pytest.mark.parametrize("epsilon", [None, -0.5, 1.0])
def test_a_heavy_weight_brings_back_a_soft_targets_values(dtype, case, epsilon):
    """A soft target's q^g underflows at a large gamma (or a tiny target); a weight
    above 1 brings its values back, where the kernel's were 0 (x = 0, y = 1/2 at
    gamma 1100 under a weight of 1e300: 0 for 5.1e-32).  The focal loss and Poly-1
    (epsilon not None; x = -467.36, y = 1e-200, gamma 2, epsilon -0.5 under 1e300
    gave a gradient of 0 for -4.67e-311) form such a faint element with q^g taken
    2^E larger (E the weight's binary exponent); a light element beside it keeps
    its bits."""
    x0, y0, gamma, weight = case
    # (float32 holds the targets rounded, 1e-160 as 0: the reference reads them back)
    x, y = np.array([x0, 0.5], dtype), np.array([y0, 0.25], dtype)
    w = np.array([weight, 1.0])
    if epsilon is None:
        loss = focal.loss(x, y, 0.25, gamma, reduction="none", weights=w)
        grad, hess = focal.grad_hess(x, y, 0.25, gamma, weights=w)
        light = focal.grad_hess(x[1:], y[1:], 0.25, gamma)
        exact = sigmoid_reference(float(x[0]), float(y[0]), gamma, "0.25")[:3]
    else:
        loss = focal.poly1_loss(x, y, 0.25, gamma, epsilon, reduction="none", weights=w)
        grad, hess = focal.poly1_grad_hess(x, y, 0.25, gamma, epsilon, weights=w)
        light = focal.poly1_grad_hess(x[1:], y[1:], 0.25, gamma, epsilon)
        exact = poly1_mp(float(x[0]), float(y[0]), gamma, epsilon, "0.25")
    assert grad[1] == light[0][0] and hess[1] == light[1][0]
    for computed, value, what in zip((loss[0], grad[0], hess[0]), exact,
                                     ("loss", "gradient", "second derivative")):
        assert_close(computed, value * mpmath.mpf(weight), dtype, 4,
                     f"x = {x0}, y = {y0}, gamma {gamma}, {np.dtype(dtype).name}: {what}")


# (x, target, gamma): the wrong side of a hard target (q >= 1/2), where q^g
# underflows from gamma about 1,000
WRONG_SIDE_CASES = [(0.5, 0.0, 2000.0), (0.1, 0.0, 1500.0), (2.0, 0.0, 1e4), (0.0, 1.0, 1100.0),
                    (-0.5, 1.0, 2000.0), (-30.0, 1.0, 1e15), (5.0, 0.0, 1e5)]


@pytest.mark.parametrize("family", ["focal", "quality", "asymmetric", "varifocal"])
@pytest.mark.parametrize("case", WRONG_SIDE_CASES)
def test_the_wrong_side_of_a_hard_target_under_a_heavy_weight_at_a_large_gamma(family, case):
    """On the wrong side of a hard target q = p_wrong >= 1/2, and q^g
    underflows only from gamma about 1,000, where a weight above 1 brings
    the values back: x = 0.5, target 0 at gamma 2000 under a weight of 1e300
    gave 0 for 1.6e-112.  They are formed times the weight (the accurate
    form, q^g to about 2^-100), in every family whose hard targets are the
    focal loss's (the varifocal loss's target 0 only; the asymmetric loss's
    positives at gamma_pos, its negatives at gamma_neg without a clip).  A
    light element beside them keeps its bits."""
    x0, y0, gamma = case
    if family == "varifocal" and y0 == 1.0:
        pytest.skip("the varifocal loss's target 1 is its cross-entropy, without q^g")
    call = {"focal": ("", {"alpha": None, "gamma": gamma}),
            "quality": ("quality_", {"beta": gamma}),
            "asymmetric": ("asymmetric_", {"gamma_neg": gamma, "gamma_pos": gamma, "clip": 0.0}),
            "varifocal": ("varifocal_", {"alpha": 1.0, "gamma": gamma})}[family]
    prefix, parameters = call
    x, y, w = np.array([x0, 0.5]), np.array([y0, 1.0]), np.array([1e300, 1.0])
    loss = getattr(focal, f"{prefix}loss")(x, y, **parameters, reduction="none", weights=w)
    grad, hess = getattr(focal, f"{prefix}grad_hess")(x, y, **parameters, weights=w)
    light = getattr(focal, f"{prefix}loss")(x[1:], y[1:], **parameters, reduction="none")
    assert loss[1] == light[0]
    exact = sigmoid_reference(x0, y0, gamma, None)[:3]
    for computed, value, what in zip((loss[0], grad[0], hess[0]), exact,
                                     ("loss", "gradient", "second derivative")):
        assert_close(computed, value * mpmath.mpf(1e300), np.float64, 2,
                     f"{family} x = {x0}, y = {y0}, gamma {gamma}: {what}")
    total = getattr(focal, f"{prefix}loss")(x[:1], y[:1], **parameters, reduction="sum",
                                            weights=w[:1])
    assert_close(total, exact[0] * mpmath.mpf(1e300), np.float64, 2, f"{family} sum")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [(0.5, 2000.0, 1e300, None), (0.1, 1500.0, 1e300, None),
                                  (0.0, 1100.0, 1e300, None), (3.0, 1e5, 1e300, None),
                                  (0.5, 2000.0, 1e300, 1e300), (1.0, 3000.0, 1e250, 1e308)])
def test_varifocal_large_alpha_on_the_wrong_side_of_target_0(dtype, case):
    """alpha above 1 brings back what p^g took below the normal range on the
    wrong side of target 0 (x >= 0, p >= 1/2) from gamma about 1,000: x =
    0.5, gamma 2000, alpha 1e300 gave 0 for 1.6e-112; under a weight too,
    also where alpha w passes the double range (taken as its mantissas'
    product times 2^X).  Float32 results of values beyond its range are 0 or
    inf, the correctly rounded answers."""
    x0, gamma, alpha, weight = case
    logits, targets = np.array([x0, 0.5], dtype), np.array([0.0, 1.0], dtype)
    w = None if weight is None else np.array([weight, 1.0])
    loss = focal.varifocal_loss(logits, targets, alpha, gamma, reduction="none", weights=w)
    grad, hess = focal.varifocal_grad_hess(logits, targets, alpha, gamma, weights=w)
    light = focal.varifocal_loss(logits[1:], targets[1:], alpha, gamma, reduction="none")
    assert loss[1] == light[0]
    factor = mpmath.mpf(alpha) * (1 if weight is None else mpmath.mpf(weight))
    exact = [value * factor / mpmath.mpf(alpha) for value in
             varifocal_mp(float(logits[0]), 0.0, gamma, alpha=alpha)]
    where = f"x = {x0}, gamma {gamma}, alpha {alpha:g}, weight {weight}, {np.dtype(dtype).name}"
    for computed, value, what in zip((loss[0], grad[0], hess[0]), exact,
                                     ("loss", "gradient", "second derivative")):
        assert_close(computed, value, dtype, 2, f"{where} {what}")


def _above_logit(clip, steps):
    """The double `steps` spacings above the one nearest logit(clip)."""
    centre = float(mpmath.log(mpmath.mpf(clip) / (1 - mpmath.mpf(clip))))
    return centre + steps * np.spacing(abs(centre)) if centre else steps * 5e-324


# (x, clip, gamma_neg, weight): a negative just above the clip, whose values
# (P^g S, P^g w (...)) lie below the doubles before a weight brings them back
ASYMMETRIC_FAINT_CASES = [(1e-315, 0.5, 0.5, 1e300),
                          (1e-300, 0.5, 2.0, 1e250),
                          (1e-200, 0.5, 4.0, 1e300),
                          (1e-280, 0.5, 1.9, 1e300),
                          (_above_logit(0.05, 3), 0.05, 20.0, 1e300),
                          (_above_logit(0.3, 30), 0.3, 20.5, 1e290),
                          (_above_logit(1e-300, 1), 1e-300, 0.5, 1e300)]


def _assert_weighted_asymmetric_negative(case):
    """The loss, gradient and second derivative of a negative x0 under a
    weight, beside a positive of weight 1, within 4 ULP of mpmath's."""
    x0, clip, gamma_neg, weight = case
    x, y, w = np.array([x0, 0.5]), np.array([0.0, 1.0]), np.array([weight, 1.0])
    parameters = {"gamma_pos": 0.0, "gamma_neg": gamma_neg, "clip": clip}
    loss = focal.asymmetric_loss(x, y, **parameters, reduction="none", weights=w)
    grad, hess = focal.asymmetric_grad_hess(x, y, **parameters, weights=w)
    with mpmath.workdps(400):
        exact = [value * mpmath.mpf(weight)
                 for value in asymmetric_mp(x0, 0.0, 0.0, gamma_neg, clip)]
    assert exact[0] > 0
    for computed, value, what in zip((loss[0], grad[0], hess[0]), exact,
                                     ("loss", "gradient", "second derivative")):
        assert_close(computed, value, np.float64, 4,
                     f"x = {x0}, clip {clip}, gamma_neg {gamma_neg}, weight {weight:g}: {what}")


@pytest.mark.parametrize("case", ASYMMETRIC_FAINT_CASES)
def test_a_heavy_weight_brings_back_the_asymmetric_negatives_above_the_clip(case):
    """Next to the clip P = p - m is small and the negatives' values P^g S
    and their derivatives may lie below the doubles, where a weight brings
    them back: the weight multiplied what had underflowed (clip 1/2,
    gamma_neg 0.5, x = 1e-315 under a weight of 1e300: a loss of 0 for
    3.95e-174).  The negatives' kernel takes the weight before it scales its
    values back (its faint elements, as the other families' far tails):
    within 4 ULP of the weighted values."""
    _assert_weighted_asymmetric_negative(case)


# (x, clip, gamma_neg, weight): a negative next to a clip of 1/2 at a small
# gamma_neg, whose second derivative, about g P^(g - 1) / 16 for a subnormal
# P, lies beyond the doubles before a weight below 1 brings it back
ASYMMETRIC_OVERFLOWED_CASES = [(5e-324, 0.5, 1e-8, 5e-324),
                               (5e-324, 0.5, 1e-8, 1e-10),
                               (1e-322, 0.5, 1e-3, 1e-300),
                               (5e-324, 0.5, 0.01, 1e-10),
                               (3e-323, 0.5, 0.02, 1e-6),
                               (1e-320, 0.5, 1e-5, 1e-12),
                               (1e-320, 0.5, 1e-8, 7.892781570959951e-163)]


@pytest.mark.parametrize("case", ASYMMETRIC_OVERFLOWED_CASES)
def test_a_light_weight_brings_back_an_asymmetric_second_derivative_beyond_the_doubles(case):
    """The negatives' second derivative next to a clip of 1/2 at a small
    gamma_neg is beyond the doubles at the smallest logits (x = 5e-324,
    gamma_neg 1e-8: about 5e314), where a weight below 1 brings it back:
    the weight multiplied inf (5e-324: inf for 2.5e-9).  Such elements are
    formed again with the weight inside the power: within 4 ULP.  Their loss
    and gradient keep the loss and gradient kernels' bits (review 78)."""
    _assert_weighted_asymmetric_negative(case)
    x0, clip, gamma_neg, weight = case
    x, y, w = np.array([x0, 0.5]), np.array([0.0, 1.0]), np.array([weight, 1.0])
    parameters = {"gamma_pos": 0.0, "gamma_neg": gamma_neg, "clip": clip, "weights": w}
    grad, _ = focal.asymmetric_grad_hess(x, y, **parameters)
    np.testing.assert_array_equal(grad, focal.asymmetric_grad(x, y, **parameters,
                                                              reduction="none"))

"""FL*, the paper's Appendix A variant, against its NumPy and mpmath twins (tests/reference.py).

With s = +1 for a positive target and -1 for a negative one,
p*_t = sigmoid(gamma s x + beta), FL* = alpha_t (-log p*_t) / gamma and
d FL* / dx = alpha_t s (p*_t - 1), alpha_t = alpha for positives and
1 - alpha for negatives (None: 1).  Checked here: the references, the paper's
defaults, ULP accuracy over every magnitude of logit, the limits at +-inf,
NaN, central differences of every reduction, class-index targets (background
and ignored rows), alpha forms, out= and every bad input.
"""
import inspect
import math

import mpmath
import numpy as np
import pytest

import focal
from reference import star_mp, star_reference, ulp_error
from registry import STAR
from test_derivatives import numeric_gradient  # the five-point stencil, shared

mpmath.mp.prec = 120

RNG = np.random.default_rng(19)
FUNCTIONS = tuple(STAR.functions.values())   # star_loss, star_grad, star_loss_and_grad
SETTINGS = ((4.0, 0.0), (2.0, 1.0), (1.0, 0.0), (0.5, -2.0), (3.3, 0.7))


# --------------------------------------------------------------------------
# definition, defaults and the paper's settings


def test_mp_reference_gradient_is_the_derivative():
    for x in (-7.5, -0.3, 0.0, 0.2, 3.0):
        for y in (0, 1):
            for gamma, beta in SETTINGS:
                def loss_at(t, y=y, gamma=gamma, beta=beta):
                    s = 1 if y == 1 else -1
                    return -mpmath.log(1 / (1 + mpmath.exp(-(gamma * s * t + beta)))) / gamma
                loss, grad = star_mp(x, y, gamma, beta)
                assert mpmath.almosteq(loss, loss_at(mpmath.mpf(x)), rel_eps=mpmath.mpf(2) ** -100)
                assert mpmath.almosteq(grad, mpmath.diff(loss_at, mpmath.mpf(x)),
                                       rel_eps=mpmath.mpf(2) ** -80)


def test_defaults_are_the_papers_gamma_4_beta_0_alpha_quarter():
    for function in FUNCTIONS:
        parameters = inspect.signature(function).parameters
        assert parameters["alpha"].default == 0.25
        assert parameters["gamma"].default == 4.0
        assert parameters["beta"].default == 0.0
        assert parameters["reduction"].default == "mean"
    x = RNG.normal(0, 2, size=(8, 3))
    y = (RNG.uniform(size=(8, 3)) < 0.3).astype(np.float64)
    ref = star_reference(x, y, alpha=0.25, gamma=4.0, beta=0.0, reduction="none")
    loss, grad = ref.loss, ref.grad
    assert focal.star_loss(x, y) == pytest.approx(loss.mean(), rel=1e-14)
    np.testing.assert_allclose(focal.star_grad(x, y), grad / x.size, rtol=1e-14)


@pytest.mark.parametrize("gamma, beta", SETTINGS)
@pytest.mark.parametrize("alpha", [None, 0.25, 0.0, 1.0, "per-class"])
def test_matches_numpy_reference(gamma, beta, alpha):
    x = RNG.normal(0, 3, size=(6, 4))
    y = (RNG.uniform(size=(6, 4)) < 0.4).astype(np.float64)
    alpha_value = np.array([0.1, 0.25, 0.5, 0.9]) if alpha == "per-class" else alpha
    ref = star_reference(x, y, alpha_value, gamma, beta, reduction="none")
    loss_ref, grad_ref = ref.loss, ref.grad
    loss, grad = focal.star_loss_and_grad(x, y, alpha_value, gamma, beta, reduction="none")
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-13, atol=1e-300)
    np.testing.assert_array_equal(focal.star_loss(x, y, alpha_value, gamma, beta, reduction="none"), loss)
    np.testing.assert_array_equal(focal.star_grad(x, y, alpha_value, gamma, beta, reduction="none"), grad)


def test_table_3_settings_are_reachable_and_differ():
    x = np.linspace(-3, 3, 13)
    y = (np.arange(13) % 2).astype(np.float64)
    best = focal.star_loss(x, y, gamma=4, beta=0, reduction="none")
    other = focal.star_loss(x, y, gamma=2, beta=1, reduction="none")
    np.testing.assert_allclose(other, star_reference(x, y, 0.25, 2.0, 1.0, reduction="none").loss, rtol=1e-14)
    np.testing.assert_allclose(best, star_reference(x, y, 0.25, 4.0, 0.0, reduction="none").loss, rtol=1e-14)
    assert not np.allclose(best, other)
    # positional form: (logits, targets, alpha, gamma, beta)
    np.testing.assert_array_equal(focal.star_loss(x, y, 0.25, 2, 1, reduction="none"), other)


def test_gamma_1_beta_0_is_cross_entropy():
    # -log sigmoid(s x) is the binary cross-entropy: the focal loss with gamma 0
    x = np.concatenate([np.linspace(-30, 30, 61), RNG.normal(0, 4, 30)])
    y = (RNG.uniform(size=x.size) < 0.5).astype(np.float64)
    for alpha in (None, 0.25, 0.8):
        np.testing.assert_allclose(
            focal.star_loss(x, y, alpha, 1.0, 0.0, reduction="none"),
            focal.loss(x, y, alpha, 0.0, reduction="none"), rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(
            focal.star_grad(x, y, alpha, 1.0, 0.0, reduction="none"),
            focal.grad(x, y, alpha, 0.0, reduction="none"), rtol=1e-14, atol=1e-300)


def test_papers_derivative_form():
    # Appendix B: d FL* / dx = y (p*_t - 1), y in {-1, +1}, without alpha
    x = np.linspace(-4, 4, 17)
    for target in (0.0, 1.0):
        s = 2 * target - 1
        p_star = 1 / (1 + np.exp(-(4.0 * s * x)))
        np.testing.assert_allclose(
            focal.star_grad(x, np.full_like(x, target), None, reduction="none"),
            s * (p_star - 1), rtol=1e-12, atol=4e-16)  # the textbook form cancels


# --------------------------------------------------------------------------
# accuracy in ULP


def _grid():
    magnitudes = np.concatenate([
        np.logspace(-320, -30, 20),
        np.logspace(-30, 4, 200),
        np.linspace(0.0, 40.0, 81)[1:],
        [5e-324, 1e-310, 0.5, 1.0, 2.0, 36.7, 88.7, 103.9, 177.0, 180.0, 186.0, 354.0,
         372.0, 709.0, 745.0, 1e4],
    ])
    return np.unique(np.concatenate([-magnitudes, [0.0], magnitudes]))


GRID = _grid()


def grid_errors(dtype, gamma, beta):
    """Worst loss and gradient errors in ULP over the logit grid, both targets, alpha forms."""
    x = np.unique(GRID.astype(dtype))
    worst = {"loss": (0.0, None), "grad": (0.0, None)}
    for alpha in (None, 0.25):
        for y in (0, 1):
            targets = np.full(x.shape, y, dtype=dtype)
            loss, grad = focal.star_loss_and_grad(x, targets, alpha, gamma, beta, reduction="none")
            assert loss.dtype == grad.dtype == dtype
            for i, xi in enumerate(x):
                exact_loss, exact_grad = star_mp(xi, y, gamma, beta, alpha)
                for name, computed, exact in (("loss", loss[i], exact_loss),
                                              ("grad", grad[i], exact_grad)):
                    e = ulp_error(computed, exact, dtype)
                    if e > worst[name][0]:
                        worst[name] = (e, (float(xi), y, alpha))
    return worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma, beta", SETTINGS)
def test_within_4_ulp_over_every_magnitude(dtype, gamma, beta):
    worst = grid_errors(dtype, gamma, beta)
    assert worst["loss"][0] <= 4, worst
    assert worst["grad"][0] <= 4, worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_limits_at_infinity(dtype):
    x = np.array([np.inf, np.inf, -np.inf, -np.inf], dtype=dtype)
    y = np.array([1.0, 0.0, 1.0, 0.0], dtype=dtype)
    for gamma, beta in SETTINGS:
        loss, grad = focal.star_loss_and_grad(x, y, None, gamma, beta, reduction="none")
        # certainly right: nothing to learn; certainly wrong: infinite loss, slope -s
        np.testing.assert_array_equal(loss, [0.0, np.inf, np.inf, 0.0])
        np.testing.assert_array_equal(grad, [0.0, 1.0, -1.0, 0.0])
        loss, grad = focal.star_loss_and_grad(x, y, 0.25, gamma, beta, reduction="none")
        np.testing.assert_array_equal(loss, [0.0, np.inf, np.inf, 0.0])
        np.testing.assert_array_equal(grad, [0.0, 0.75, -0.25, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_nan_for_any_finite_logit(dtype):
    big = float(np.finfo(dtype).max)
    x = np.array([-big, -big / 3, -1e4, -800.0, 0.0, 800.0, 1e4, big / 3, big], dtype=dtype)
    for gamma, beta in SETTINGS:
        for target in (0.0, 1.0):
            y = np.full(x.shape, target, dtype)
            loss, grad = focal.star_loss_and_grad(x, y, None, gamma, beta, reduction="none")
            assert not np.isnan(loss).any(), (dtype, gamma, beta, target, loss)
            assert not np.isnan(grad).any(), (dtype, gamma, beta, target, grad)
            s = 2 * target - 1
            right = s * x.astype(np.float64) > 1e3
            wrong = s * x.astype(np.float64) < -1e3
            # right side: nothing; wrong side: the loss is |x| - beta / gamma, slope -s
            np.testing.assert_array_equal(loss[right], 0.0)
            np.testing.assert_array_equal(grad[right], 0.0)
            np.testing.assert_array_equal(grad[wrong], -s)
            magnitude = np.abs(x.astype(np.float64))
            with np.errstate(over="ignore"):
                representable = np.isfinite(dtype(gamma) * x.astype(dtype))
            exact = wrong & representable  # gamma x is finite in the dtype
            np.testing.assert_allclose(loss[exact], magnitude[exact] - beta / gamma,
                                       rtol=1e-6 if dtype == np.float32 else 1e-15)
            # where gamma x itself overflows, the loss may overflow too, not go NaN
            assert (loss[wrong & ~representable] >= 0.99 * magnitude[wrong & ~representable]).all()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nan_logit_gives_nan(dtype):
    x = np.array([np.nan, 0.5], dtype=dtype)
    for target in (0.0, 1.0):
        y = np.full(2, target)
        for alpha in (None, 0.25, 1.0, 0.0):
            loss, grad = focal.star_loss_and_grad(x, y, alpha, reduction="none")
            assert np.isnan(loss[0]) and np.isnan(grad[0]), (alpha, target)
            assert np.isfinite(loss[1]) and np.isfinite(grad[1])
            assert math.isnan(focal.star_loss(x, y, alpha, reduction="sum"))
    # a zero weight masks it
    assert focal.star_loss(x, [1.0, 1.0], weights=[0.0, 1.0], reduction="sum") == focal.star_loss(
        x[1:], [1.0], reduction="sum")


def test_float16_is_computed_in_float32():
    x16 = RNG.normal(0, 4, size=50).astype(np.float16)
    y = (RNG.uniform(size=50) < 0.5).astype(np.float32)
    loss, grad = focal.star_loss_and_grad(x16, y, reduction="none")
    assert loss.dtype == grad.dtype == np.float32
    loss32, grad32 = focal.star_loss_and_grad(x16.astype(np.float32), y, reduction="none")
    np.testing.assert_array_equal(loss, loss32)
    np.testing.assert_array_equal(grad, grad32)


# --------------------------------------------------------------------------
# derivatives of the reduced loss


def derivative_problems():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1.5, size=(4, 5))
    hard = (rng.uniform(size=(4, 5)) < 0.3).astype(np.float64)
    labels = np.array([0, 5, -1, 3])  # a class, background, ignored, a class
    weights = rng.uniform(0.1, 2.0, size=(1, 5))
    yield "dense", x, hard, None
    yield "dense+weights", x, hard, weights
    yield "labels", x, labels, None
    yield "labels+weights", x, labels, rng.uniform(0.1, 2.0, size=(4, 1))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "sum_over_positives"])
@pytest.mark.parametrize("gamma, beta", [(4.0, 0.0), (2.0, 1.0), (0.5, -1.0)])
@pytest.mark.parametrize("alpha", [None, 0.25, "per-class"])
def test_grad_is_the_derivative_of_the_reduced_loss(reduction, gamma, beta, alpha):
    for name, x, targets, weights in derivative_problems():
        alpha_value = np.linspace(0.1, 0.9, 5) if alpha == "per-class" else alpha
        kwargs = dict(alpha=alpha_value, gamma=gamma, beta=beta, weights=weights,
                      reduction=reduction)
        gradient = focal.star_grad(x, targets, **kwargs)
        numeric = numeric_gradient(lambda z: float(np.sum(focal.star_loss(z, targets, **kwargs))), x)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-10, err_msg=name)
        value, gradient_2 = focal.star_loss_and_grad(x, targets, **kwargs)
        np.testing.assert_array_equal(gradient_2, gradient)
        np.testing.assert_array_equal(value, focal.star_loss(x, targets, **kwargs))


# --------------------------------------------------------------------------
# targets, alpha, reductions


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "sum_over_positives"])
@pytest.mark.parametrize("alpha", [None, 0.25, "per-class"])
def test_reductions_match_reference(reduction, alpha):
    x = RNG.normal(0, 2, size=(7, 3))
    y = (RNG.uniform(size=(7, 3)) < 0.3).astype(np.float64)
    weights = RNG.uniform(0, 2, size=(7, 1))
    alpha_value = np.array([0.2, 0.5, 0.7]) if alpha == "per-class" else alpha
    for w in (None, weights):
        expected = star_reference(x, y, alpha_value, 2.0, 1.0, reduction=reduction, weights=w)
        expected_loss, expected_grad = expected.loss, expected.grad
        value, gradient = focal.star_loss_and_grad(x, y, alpha_value, 2.0, 1.0, reduction=reduction,
                                                   weights=w)
        np.testing.assert_allclose(value, expected_loss, rtol=1e-13)
        np.testing.assert_allclose(gradient, expected_grad, rtol=1e-13, atol=1e-300)


def test_sum_over_positives_with_no_positive_divides_by_one():
    x = RNG.normal(size=(3, 2))
    y = np.zeros((3, 2))
    assert focal.star_loss(x, y, reduction="sum_over_positives") == focal.star_loss(
        x, y, reduction="sum")


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "sum_over_positives"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, ">i8", np.int8])
def test_class_index_targets(reduction, dtype):
    # class c: one positive in the row; C: a background row (all negative);
    # -1: an ignored row (no loss, no gradient, not counted in the mean)
    x = RNG.normal(0, 2, size=(6, 4))
    raw = np.array([0, 4, 2, -1, 3, 4])
    if np.dtype(dtype).kind == "u":
        raw = np.where(raw < 0, 0, raw)  # unsigned: no ignored row
    labels = raw.astype(dtype)
    active = (raw != -1)[:, None] * np.ones((1, 4))
    dense = (raw[:, None] == np.arange(4)).astype(np.float64)
    for alpha in (None, 0.25, np.array([0.1, 0.3, 0.6, 0.9])):
        expected = star_reference(x, labels, alpha, 2.0, 1.0, reduction=reduction)
        expected_loss, expected_grad = expected.loss, expected.grad
        value, gradient = focal.star_loss_and_grad(x, labels, alpha, 2.0, 1.0, reduction=reduction)
        np.testing.assert_allclose(value, expected_loss, rtol=1e-13)
        np.testing.assert_allclose(gradient, expected_grad, rtol=1e-13, atol=1e-300)
        # the same as dense targets with the ignored rows weighted 0
        value_2, gradient_2 = focal.star_loss_and_grad(x, dense, alpha, 2.0, 1.0,
                                                       reduction=reduction, weights=active)
        np.testing.assert_allclose(value, value_2, rtol=1e-14)
        np.testing.assert_allclose(gradient, gradient_2, rtol=1e-14, atol=1e-300)
        if -1 in raw:
            assert not gradient[raw == -1].any()


def test_dense_targets_broadcast_and_dtypes():
    x = RNG.normal(size=(4, 3))
    column = np.array([[1], [0], [0], [1]])
    expected = focal.star_loss_and_grad(x, np.broadcast_to(column, (4, 3)).astype(float),
                                        reduction="none")
    for targets in (column, column.astype(bool), column.astype(np.float32),
                    column.astype(">f8"), column.astype(np.uint8)):
        value, gradient = focal.star_loss_and_grad(x, targets, reduction="none")
        np.testing.assert_array_equal(value, expected[0])
        np.testing.assert_array_equal(gradient, expected[1])


def test_alpha_forms():
    x = RNG.normal(size=(5, 3))
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=float)
    plain = focal.star_loss(x, y, None, reduction="none")
    for alpha in (0.0, 0.25, 0.5, 1.0):
        np.testing.assert_allclose(focal.star_loss(x, y, alpha, reduction="none"),
                                   np.where(y == 1, alpha, 1 - alpha) * plain, rtol=1e-15)
    per_class = np.array([0.1, 0.6, 0.95])
    np.testing.assert_allclose(focal.star_loss(x, y, per_class, reduction="none"),
                               np.where(y == 1, per_class, 1 - per_class) * plain, rtol=1e-15)
    # alpha 0.5 halves the unweighted loss
    np.testing.assert_allclose(focal.star_loss(x, y, 0.5), 0.5 * focal.star_loss(x, y, None),
                               rtol=1e-15)


def test_out_and_in_place():
    x = RNG.normal(size=(5, 3))
    y = (RNG.uniform(size=(5, 3)) < 0.5).astype(float)
    loss_ref, grad_ref = focal.star_loss_and_grad(x, y, reduction="none")
    out = np.full_like(x, np.nan)
    assert focal.star_loss(x, y, reduction="none", out=out) is out
    np.testing.assert_array_equal(out, loss_ref)
    base = np.full((3, 5), np.nan)
    focal.star_grad(x, y, reduction="none", out=base.T)
    np.testing.assert_array_equal(base.T, grad_ref)
    z = x.copy()
    assert focal.star_grad(z, y, reduction="none", out=z) is z
    np.testing.assert_array_equal(z, grad_ref)
    original = x.copy()
    focal.star_loss_and_grad(x, y, reduction="none")
    np.testing.assert_array_equal(x, original)  # inputs unchanged
    with pytest.raises(ValueError, match="^out"):
        focal.star_loss(x, y, reduction="mean", out=np.empty_like(x))
    with pytest.raises(TypeError, match="^out"):
        focal.star_grad(x, y, out=np.empty(x.shape, np.float32))


# --------------------------------------------------------------------------
# bad input

X = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -0.5]])
Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def bad_calls():
    yield "gamma 0", "gamma", ValueError, (X, Y), dict(gamma=0.0)
    yield "gamma -0.0", "gamma", ValueError, (X, Y), dict(gamma=-0.0)
    yield "gamma < 0", "gamma", ValueError, (X, Y), dict(gamma=-1.0)
    yield "gamma nan", "gamma", ValueError, (X, Y), dict(gamma=math.nan)
    yield "gamma inf", "gamma", ValueError, (X, Y), dict(gamma=math.inf)
    yield "gamma string", "gamma", TypeError, (X, Y), dict(gamma="4")
    yield "gamma None", "gamma", TypeError, (X, Y), dict(gamma=None)
    yield "soft target 0.5", "targets", ValueError, (X, np.where(Y > 0, 0.5, 0.0)), {}
    yield "soft target 0.999", "targets", ValueError, (X, Y * 0.999), {}
    yield "target 2", "targets", ValueError, (X, Y * 2), {}
    yield "target -1 dense", "targets", ValueError, (X, -Y), {}
    yield "target nan", "targets", ValueError, (X, np.where(Y > 0, np.nan, 0.0)), {}
    yield "target wrong shape", "targets", ValueError, (X, np.ones((2, 2))), {}
    yield "class index C + 1", "targets", ValueError, (X, np.array([0, 4])), {}
    yield "class index -2", "targets", ValueError, (X, np.array([0, -2])), {}
    yield "class index float", "targets", TypeError, (X, np.array([0.0, 1.0])), {}
    yield "class index uint64 max", "targets", ValueError, (
        X, np.array([0, np.iinfo(np.uint64).max], np.uint64)), {}
    yield "beta nan", "beta", ValueError, (X, Y), dict(beta=math.nan)
    yield "beta inf", "beta", ValueError, (X, Y), dict(beta=math.inf)
    yield "beta -inf", "beta", ValueError, (X, Y), dict(beta=-math.inf)
    yield "beta string", "beta", TypeError, (X, Y), dict(beta="1")
    yield "beta None", "beta", TypeError, (X, Y), dict(beta=None)
    yield "beta array", "beta", TypeError, (X, Y), dict(beta=[1.0])
    yield "beta bool", "beta", TypeError, (X, Y), dict(beta=True)
    yield "alpha > 1", "alpha", ValueError, (X, Y), dict(alpha=1.5)
    yield "alpha < 0", "alpha", ValueError, (X, Y), dict(alpha=-0.25)
    yield "alpha wrong length", "alpha", ValueError, (X, Y), dict(alpha=[0.25, 0.5])
    yield "reduction unknown", "reduction", ValueError, (X, Y), dict(reduction="avg")
    yield "weights negative", "weights", ValueError, (X, Y), dict(weights=-1.0)
    yield "weights shape", "weights", ValueError, (X, Y), dict(weights=np.ones(2))
    yield "logits string", "logits", TypeError, ("abc", Y), {}


BAD_CALLS = list(bad_calls())


@pytest.mark.parametrize("name, argument, error, args, kwargs", BAD_CALLS,
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_naming_the_argument(name, argument, error, args, kwargs):
    for function in FUNCTIONS:
        with pytest.raises(error, match=f"^{argument}\\b"):
            function(*args, **kwargs)

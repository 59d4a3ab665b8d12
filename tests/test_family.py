"""The focal loss's descendants (Poly-1, varifocal, asymmetric, quality focal loss, ...): what
the registry's matrices do not reach.  Loss, gradient and second derivative against the mpmath twins
over logits of every magnitude (subnormal to 1e4, beyond the registry's
moderate grid) for hard and soft targets, the closed forms against mpmath's
differentiation of the definitions, the limits at +-inf, and no NaN for any
finite logit or accepted parameter.
"""
import itertools

import mpmath
import numpy as np
import pytest

import focal
import reference
import registry
from reference import spacing, ulp_error

mpmath.mp.prec = 120

# Poly-1 with epsilon < 0, where CE + epsilon q cancels on the right side (all
# of it at epsilon = -1, which left 0 for 6.9e-164 at x = -150, gamma 0.5):
# gamma 0, an integer and a general gamma (the vector loop's negative form,
# which takes every gamma up to 8 as exp(gamma log q)), and one above 8 (the
# scalar path, with the large gamma's accurate q^gamma)
NEGATIVE_EPSILON = ({"alpha": None, "gamma": 0.5, "epsilon": -1.0},
                    {"alpha": 0.25, "gamma": 2.0, "epsilon": -1.0},
                    {"alpha": 0.75, "gamma": 0.0, "epsilon": -0.999999},
                    {"alpha": None, "gamma": 3.7, "epsilon": -0.5},
                    {"alpha": 0.25, "gamma": 10.0, "epsilon": -1.0})

# name: (functions, full mpmath twin (loss, grad, hess), definition, parameter settings)
FAMILY = {
    "poly1": (
        (focal.poly1_loss, focal.poly1_grad_hess),
        lambda x, y, alpha, gamma, epsilon: reference.poly1_mp(x, y, gamma, epsilon, alpha),
        lambda x, y, alpha, gamma, epsilon: reference.poly1_definition_mp(x, y, gamma, epsilon,
                                                                          alpha),
        ({"alpha": 0.25, "gamma": 2.0, "epsilon": 1.0}, {"alpha": None, "gamma": 0.0, "epsilon": 1.0},
         {"alpha": 0.75, "gamma": 0.5, "epsilon": 3.0}, {"alpha": None, "gamma": 3.7, "epsilon": 0.5},
         # epsilon < 0: CE + epsilon q cancels on the right side (NEGATIVE_EPSILON)
         *NEGATIVE_EPSILON),
    ),
    "varifocal": (
        (focal.varifocal_loss, focal.varifocal_grad_hess),
        lambda x, y, alpha, gamma: reference.varifocal_mp(x, y, gamma, alpha),
        lambda x, y, alpha, gamma: reference.varifocal_definition_mp(x, y, gamma, alpha),
        ({"alpha": 0.75, "gamma": 2.0}, {"alpha": 1.0, "gamma": 0.0},
         {"alpha": 0.5, "gamma": 0.5}, {"alpha": 2.5, "gamma": 3.7}),
    ),
    "asymmetric": (
        (focal.asymmetric_loss, focal.asymmetric_grad_hess),
        lambda x, y, **params: reference.asymmetric_mp(x, y, **params),
        lambda x, y, **params: reference.asymmetric_definition_mp(x, y, **params),
        ({"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05},
         {"gamma_pos": 1.0, "gamma_neg": 0.0, "clip": 0.0},
         {"gamma_pos": 0.5, "gamma_neg": 2.5, "clip": 0.2},
         {"gamma_pos": 2.0, "gamma_neg": 1.0, "clip": 0.9},
         {"gamma_pos": 3.7, "gamma_neg": 9.5, "clip": 0.3}),
    ),
    "quality": (
        (focal.quality_loss, focal.quality_grad_hess),
        lambda x, y, beta: reference.quality_mp(x, y, beta),
        lambda x, y, beta: reference.quality_definition_mp(x, y, beta),
        ({"beta": 2.0}, {"beta": 0.0}, {"beta": 0.5}, {"beta": 1.0}, {"beta": 3.7},
         {"beta": 12.0}),
    ),
}
# losses defined for hard targets only (a soft target is refused)
HARD_ONLY = {"asymmetric"}


def _grid():
    magnitudes = np.concatenate([np.logspace(-320, -30, 30), np.logspace(-30, 4, 300),
                                 [5e-324, 0.5, 1.0, 2.0, 36.7, 88.7, 103.9, 699.0, 701.0, 709.0,
                                  745.0, 1e4]])
    return np.unique(np.concatenate([-magnitudes, [0.0], magnitudes]))


def worst_errors(name, params, y, dtype):
    """Worst ULP errors of loss, gradient and second derivative (the latter
    judged at the magnitude of its largest term, as the focal loss's are)."""
    (loss_function, grad_hess), mp_twin = FAMILY[name][:2]
    x = np.unique(_grid().astype(dtype))
    x = x[np.isfinite(x)]
    t = np.full_like(x, y)
    loss = loss_function(x, t, **params, reduction="none")
    grad, hess = grad_hess(x, t, **params)
    worst = {"loss": (0.0, None), "grad": (0.0, None), "hess": (0.0, None)}
    for i, xi in enumerate(x):
        exact = mp_twin(xi, y, **params)
        for key, computed, value in zip(worst, (loss[i], grad[i], hess[i]), exact):
            if key == "hess":
                # the second derivative's terms cancel near its sign changes:
                # in ULP of the gradient's magnitude times a few (absolute)
                scale = max(abs(float(value)), abs(float(exact[1])), float(np.finfo(dtype).tiny))
                error = float(abs(mpmath.mpf(float(computed)) - value)) / spacing(scale, dtype)
            else:
                error = ulp_error(computed, value, dtype)
            if error > worst[key][0]:
                worst[key] = (error, float(xi))
    return worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("y", [0.0, 1.0])
@pytest.mark.parametrize("name, settings", [(n, s) for n, f in FAMILY.items() for s in f[3]])
def test_hard_targets_every_magnitude(name, settings, y, dtype):
    worst = worst_errors(name, settings, y, dtype)
    # the asymmetric loss's p_m^gamma_neg at a general gamma_neg is
    # exp(gamma_neg log p_m), whose error gamma_neg multiplies (1.43 ULP at 9.5)
    bound = 1.5 if settings.get("gamma_neg", 0) > 8 and dtype == np.float64 else 1.0
    assert worst["loss"][0] <= bound, worst
    assert worst["grad"][0] <= bound, worst
    assert worst["hess"][0] <= 4.0, worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [name for name in FAMILY if name not in HARD_ONLY])
def test_soft_target_loss_every_magnitude(name, dtype):
    # a soft target's gradient p - y cancels where p ~ y (as the focal
    # loss's does); its loss does not.  The focal loss's own float64 loss of a
    # soft target is 1.08 ULP off at worst (its sum of two logs).
    worst = worst_errors(name, FAMILY[name][3][0], float(dtype(0.3)), dtype)
    assert worst["loss"][0] <= 1.5, worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("y", [0.3, 1e-30, 0.999999])
@pytest.mark.parametrize("settings", NEGATIVE_EPSILON)
def test_poly1_negative_epsilon_soft_target_loss(settings, y, dtype):
    # CE - q = y h(1 - p) + (1 - y) h(p): a target of 1e-30 leaves a loss of
    # about 39 y at x = -40 beside a CE and q of 4e-18 each
    worst = worst_errors("poly1", settings, float(dtype(y)), dtype)
    assert worst["loss"][0] <= 1.5, worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("epsilon", [-1.0, -0.999999, -0.3, -0.001, 0.0, 0.3])
def test_poly1_gradient_at_target_one_half(epsilon, dtype):
    # at y = 1/2, a = 0 and q = 1/2: the gradient is 2^-gamma (p - 1/2),
    # about x / 4 near 0, which a form rounding (1 + epsilon) - epsilon p and
    # (1 + epsilon) - epsilon (1 - p) apart lost (0 for 6.25e-302 at x = 1e-300).
    # (float32 results take p in plain double, whose p - 1/2 keeps its digits
    # from |x| = 1e-5 on, for every epsilon and the focal loss alike).  Below
    # 2^-1020 the squares (1 - y) p^2 - y (1 - p)^2 of epsilon < 0 rounded
    # p's subnormal low part apart: 2^-1065 for x/4 at x = 1.2633e-320 (127
    # subnormal spacings, review 83; 64 at x = 2.2e-308)
    tiny = [5e-324, 1e-322, 1.2633e-320, -3e-315, 2.2e-308, 1e-300, 1e-40, 1e-20, 3e-9
            ] if dtype == np.float64 else []
    x = np.array(tiny + [1e-5, 0.3, -2.0, 40.0], dtype=dtype)
    y = np.full_like(x, 0.5)
    for gamma in (0.0, 0.5, 2.0):
        grad = focal.poly1_grad(x, y, alpha=None, gamma=gamma, epsilon=epsilon, reduction="none")
        for xi, gi in zip(x, grad):
            with mpmath.workdps(400):  # p - 1/2 at x = 1e-300 needs the digits
                exact = reference.poly1_mp(xi, 0.5, gamma, epsilon, None)[1]
            assert ulp_error(gi, exact, dtype) <= 1.0, (gamma, float(xi), float(gi), exact)


@pytest.mark.parametrize("name", list(FAMILY))
def test_closed_forms_are_the_derivatives_of_the_definition(name):
    _, mp_twin, definition, settings = FAMILY[name]
    for params in settings:
        for y in ("0", "1") if name in HARD_ONLY else ("0", "1", "0.3"):
            for x in (-7.5, -1.25, -0.01, 0.3, 2.0, 11.0):
                exact = mp_twin(x, y, **params)
                f = lambda t: definition(t, y, **params)  # noqa: E731
                at = mpmath.mpf(x)
                assert mpmath.almosteq(exact[0], f(at), rel_eps=mpmath.mpf(2) ** -100)
                assert mpmath.almosteq(exact[1], mpmath.diff(f, at, 1), rel_eps=mpmath.mpf(2) ** -80)
                assert mpmath.almosteq(exact[2], mpmath.diff(f, at, 2), rel_eps=mpmath.mpf(2) ** -70,
                                       abs_eps=mpmath.mpf(2) ** -200)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(FAMILY))
def test_limits_and_no_nan(name, dtype):
    (loss_function, grad_hess), mp_twin, _, settings = FAMILY[name]
    info = np.finfo(dtype)
    finite = np.array([-info.max, -1e4, -800, -40, -1, -info.smallest_subnormal, 0.0,
                       info.smallest_subnormal, 1, 40, 800, 1e4, info.max], dtype=dtype)
    for params in settings:
        for y in (0.0, 1.0) if name in HARD_ONLY else (0.0, 1.0, 0.5, 1e-300):
            t = np.full_like(finite, y)
            values = [loss_function(finite, t, **params, reduction="none"),
                      *grad_hess(finite, t, **params)]
            assert not any(np.isnan(v).any() for v in values), (params, y, values)
            # finite derivatives, unless the exact value overflows the dtype
            # (the quality focal loss's near p = y at beta < 2, in float32)
            for k in (1, 2):
                for i in np.flatnonzero(~np.isfinite(values[k])):
                    with mpmath.workdps(800):  # u = p - y at x = 5e-324 needs the digits
                        exact = mp_twin(finite[i], y, **params)[k]
                    assert abs(exact) > info.max, (params, y, finite[i], k, values[k][i])
                    assert np.sign(values[k][i]) == mpmath.sign(exact)
        # x = +-inf: the limits of the formulas, exactly
        x = np.array([-np.inf, np.inf], dtype=dtype)
        for y in (0.0, 1.0):
            t = np.full_like(x, y)
            loss = loss_function(x, t, **params, reduction="none")
            grad, hess = grad_hess(x, t, **params)
            far = np.array([-1e4, 1e4])
            near_loss = [mp_twin(v, y, **params)[0] for v in far]
            near_grad = [float(mp_twin(v, y, **params)[1]) for v in far]
            # 0 or inf, but for the asymmetric loss's negatives at +inf:
            # (1 - m)^gamma_neg (-log m), which x = 1e4 already reaches
            expected_loss = [np.inf if value > 1e3 else 0.0 if value < 1e-300 else float(value)
                             for value in near_loss]
            np.testing.assert_allclose(loss, np.array(expected_loss, dtype=dtype),
                                       rtol=float(np.finfo(dtype).eps), atol=0)
            np.testing.assert_array_equal(grad, np.array(near_grad, dtype=dtype))
            np.testing.assert_array_equal(hess, np.zeros(2, dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(FAMILY))
def test_a_nan_logit_gives_nan_and_leaves_its_neighbours(name, dtype):
    """NaN logits among finite ones, in blocks of hard and of soft targets:
    NaN values there (the scalar path's), the other elements' bits as
    without them, the neighbours including far logits (the scalar path) and,
    for soft targets, y = 1/2 at tiny logits (the quality focal loss's steep
    region).  (The quality focal loss's block loop took a NaN logit of a soft
    target into that steep region, where ilogb(NaN), INT_MIN on x86's C
    libraries, was negated: undefined behaviour, which the sanitizer run
    reports, and 2.6 to 3.8 us an element.)"""
    (loss_function, grad_hess), _, _, settings = FAMILY[name]
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 4.0, 700)
    far = np.arange(1, x.size, 23)
    x[far] = rng.choice([800.0, -800.0, 1e4, -1e4], far.size)
    tiny = np.arange(5, x.size, 31)
    x[tiny] = rng.choice([1e-20, -1e-30, 3e-25], tiny.size)
    x = x.astype(dtype)
    nan_at = rng.choice(np.setdiff1d(np.arange(x.size), np.r_[far, tiny]), 40, replace=False)
    with_nan = x.copy()
    with_nan[nan_at] = np.nan
    others = np.setdiff1d(np.arange(x.size), nan_at)
    targets = [rng.integers(0, 2, x.size).astype(dtype)]
    if name not in HARD_ONLY:
        soft = rng.random(x.size)
        soft[tiny] = 0.5
        targets.append(soft.astype(dtype))
    for params in settings:
        for t in targets:
            clean = [loss_function(x, t, **params, reduction="none"), *grad_hess(x, t, **params)]
            dirty = [loss_function(with_nan, t, **params, reduction="none"),
                     *grad_hess(with_nan, t, **params)]
            for a, b in zip(clean, dirty):
                assert np.isnan(b[nan_at]).all(), (params, b[nan_at])
                assert np.array_equal(a[others].view(np.uint8), b[others].view(np.uint8)), params


def test_poly1_epsilon_zero_is_the_focal_loss():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 8, (64, 5))
    y = rng.uniform(0, 1, x.shape)
    for dtype in (np.float32, np.float64):
        xs = x.astype(dtype)
        assert np.array_equal(focal.poly1_loss(xs, y, epsilon=0.0, reduction="none"),
                              focal.loss(xs, y, reduction="none"))
        assert np.array_equal(focal.poly1_grad_hess(xs, y, epsilon=0.0), focal.grad_hess(xs, y))


def test_poly1_class_indices_equal_one_hot_targets():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 3, (50, 4))
    labels = rng.integers(-1, 5, 50)   # -1 ignored, 4 background
    one_hot = (labels[:, None] == np.arange(4)).astype(float)
    weights = np.broadcast_to((labels != -1)[:, None], x.shape).astype(float)
    a = focal.poly1_loss_and_grad(x, labels, epsilon=2.0, reduction="sum")
    b = focal.poly1_loss_and_grad(x, one_hot, epsilon=2.0, weights=weights, reduction="sum")
    assert float(a[0]) == pytest.approx(float(b[0]), rel=1e-15)
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("module", ["focal._poly1", "focal._varifocal", "focal._asymmetric",
                                    "focal._quality"])
def test_docstring_examples(module):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_varifocal_is_mmdetections_formula():
    # mmdetection's VarifocalLoss (iou_weighted): BCE-with-logits(x, q) times
    # q where q > 0 and alpha |p - q|^gamma where q = 0, at moderate logits
    rng = np.random.default_rng(5)
    x = rng.normal(0, 4, (200, 3))
    q = np.where(rng.uniform(size=x.shape) < 0.5, 0.0, rng.uniform(0, 1, x.shape))
    p = 1 / (1 + np.exp(-x))
    bce = np.logaddexp(0, x) - q * x
    weight = np.where(q > 0, q, 0.75 * np.abs(p - q) ** 2.0)
    np.testing.assert_allclose(focal.varifocal_loss(x, q, reduction="none"), bce * weight,
                               rtol=1e-12)


# ---------------------------------------------------------------- quality focal loss


def _ulps(a, b):
    """|a - b| in units of the spacing at the larger of the two."""
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a.astype(np.float64) - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0, 3.7, 12.0])
def test_quality_of_hard_targets_is_the_focal_loss(beta):
    # |y - p| = 1 - p_t for y in {0, 1}: QFL is the focal loss at gamma = beta
    # without alpha.  Blocks of hard targets run the focal loss's own block
    # (bit for bit); hard targets among soft ones take the quality kernel,
    # the same operations in float64 (bit for bit) and double-double parts
    # where the focal loss's float32 kernel has plain ones (within 1 ULP).
    rng = np.random.default_rng(6)
    x = rng.normal(0, 8, (64, 5))
    x[0, :5] = [-1e4, 750.0, np.inf, -np.inf, -745.0]
    hard = (rng.uniform(size=x.shape) < 0.3).astype(float)
    labels = rng.integers(-1, 6, 64)        # -1 ignored, 5 background
    mixed = hard.copy()
    mixed[::3, 0] = 0.3                     # a soft target in every block
    at_hard = mixed != 0.3
    for dtype in (np.float32, np.float64):
        xs = x.astype(dtype)
        assert np.array_equal(focal.quality_loss(xs, hard, beta, reduction="none"),
                              focal.loss(xs, hard, None, beta, reduction="none"))
        assert np.array_equal(focal.quality_grad_hess(xs, hard, beta),
                              focal.grad_hess(xs, hard, None, beta))
        a = focal.quality_loss_and_grad(xs, labels, beta, reduction="sum")
        b = focal.loss_and_grad(xs, labels, None, beta, reduction="sum")
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
        ours = [focal.quality_loss(xs, mixed, beta, reduction="none"),
                *focal.quality_grad_hess(xs, mixed, beta)]
        theirs = [focal.loss(xs, mixed, None, beta, reduction="none"),
                  *focal.grad_hess(xs, mixed, None, beta)]
        for mine, focal_value in zip(ours[:2], theirs[:2]):
            if dtype == np.float64:
                assert np.array_equal(mine[at_hard], focal_value[at_hard])
            else:
                finite = np.isfinite(focal_value) & at_hard
                assert np.array_equal(np.isfinite(mine), np.isfinite(focal_value))
                assert (_ulps(mine[finite], focal_value[finite]) <= 1.0).all()


def test_quality_is_mmdetections_formula():
    # mmdetection's quality_focal_loss: BCE-with-logits(x, y) |y - sigmoid(x)|^beta
    # (negatives are y = 0), written here in NumPy, at moderate logits
    rng = np.random.default_rng(7)
    x = rng.normal(0, 4, (200, 3))
    y = np.where(rng.uniform(size=x.shape) < 0.5, 0.0, rng.uniform(0, 1, x.shape))
    p = 1 / (1 + np.exp(-x))
    bce = np.logaddexp(0, x) - y * x
    for beta in (2.0, 0.5, 1.0, 3.7):
        np.testing.assert_allclose(focal.quality_loss(x, y, beta, reduction="none"),
                                   bce * np.abs(y - p) ** beta, rtol=1e-12)


def test_quality_where_mmdetections_formula_loses_digits():
    def mmdetection(x, y, beta=2.0):
        p = 1 / (1 + np.exp(-x))
        return (np.logaddexp(0, x) - y * x) * np.abs(y - p) ** beta

    # y = 1, x = 40: sigmoid(40) rounds to 1 and the formula gives 0; the
    # loss is (e^-40 / (1 + e^-40))^2 log(1 + e^-40) = 7.66e-53 (mpmath)
    exact = reference.quality_definition_mp(40.0, 1.0, 2.0)
    assert mpmath.almosteq(exact, mpmath.mpf("7.6614e-53"), rel_eps=1e-4)
    assert mmdetection(np.array(40.0), 1.0) == 0.0
    assert ulp_error(focal.quality_loss(np.array([40.0]), np.array([1.0]), reduction="none")[0],
                     exact, np.float64) <= 1.0
    # x = 25 with a target 1.2e-13 from sigmoid(25): 1 - p = 1.39e-11 keeps its
    # digits, 1 / (1 + e^-25) does not (nor does the BCE's 25 - 25 y).  The
    # loss is 5.3e-36 (mpmath); the formula is 1e-4 off, focal within 2 ULP.
    x, y = np.array([25.0]), np.array([1.0 - 1.4e-11])
    exact = reference.quality_definition_mp(x[0], y[0], 2.0)
    assert mpmath.almosteq(exact, mpmath.mpf("5.2858e-36"), rel_eps=1e-3)
    assert abs(mmdetection(x, y)[0] / float(exact) - 1) > 1e-5
    assert ulp_error(focal.quality_loss(x, y, reduction="none")[0], exact, np.float64) <= 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quality_where_p_equals_the_target(dtype):
    # x = 0, y = 1/2: u = p - y = 0 exactly.  The loss is 0 (CE at beta 0),
    # the gradient 0, the second derivative w = 1/4 at beta 0, 2 w^2 CE at
    # beta 2 and 0 for any other beta (focal.quality_loss's Notes)
    x, y = np.zeros(1, dtype), np.full(1, 0.5)
    for beta in (0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 3.7, 12.0):
        loss = focal.quality_loss(x, y, beta, reduction="none")[0]
        grad, hess = (v[0] for v in focal.quality_grad_hess(x, y, beta))
        exact = reference.quality_mp(0.0, 0.5, beta)
        assert loss == dtype(float(exact[0])) and grad == 0.0
        assert hess == dtype(float(exact[2]))
        expected = ((np.log(2), 0.25) if beta == 0 else
                    (0.0, 2 * (1 / 16) * np.log(2)) if beta == 2 else (0.0, 0.0))
        assert (loss, hess) == tuple(dtype(v) for v in expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quality_near_the_target_is_finite(dtype):
    # p -> y: the gradient grows as |u|^(beta - 1), the second derivative as
    # |u|^(beta - 2); at the 41 logits nearest logit(y) both stay finite for
    # every beta.  u = p - y keeps the digits of p's double-double form
    # (about 2^-100 relative) beyond y's: float32 results within 1/2 ULP;
    # float64 ones lose up to log2(p / |u|) - 100 + 53 bits, at |u| ~ 1e-17 p
    # next to logit(y) measured 3.4 ULP (loss and gradient)
    for y in (0.3, 0.9, 1e-6, 0.999999):
        y = float(dtype(y))
        with mpmath.workdps(60):
            centre = dtype(float(mpmath.log(mpmath.mpf(y) / (1 - mpmath.mpf(y)))))
        steps = np.arange(-20, 21)
        x = np.array([centre + dtype(0)] * steps.size, dtype)
        x = np.nextafter(x, np.where(steps < 0, -np.inf, np.inf).astype(dtype))
        for k in range(2, 21):
            far = np.abs(steps) >= k
            x[far] = np.nextafter(x[far], np.where(steps[far] < 0, -np.inf, np.inf).astype(dtype))
        x[steps == 0] = centre
        t = np.full_like(x, y)
        for beta in (0.01, 0.5, 1.0, 1.5, 2.0, 3.7):
            loss = focal.quality_loss(x, t, beta, reduction="none")
            grad, hess = focal.quality_grad_hess(x, t, beta)
            assert np.isfinite(loss).all() and np.isfinite(grad).all() and np.isfinite(hess).all()
            bound = 0.5 if dtype == np.float32 else 4.0
            for i in range(x.size):
                exact = reference.quality_mp(x[i], y, beta)
                assert ulp_error(loss[i], exact[0], dtype) <= bound, (y, beta, x[i])
                assert ulp_error(grad[i], exact[1], dtype) <= bound, (y, beta, x[i])


@pytest.mark.parametrize("beta", [5.0, 8.0, 8.5, 20.0, 100.0])
def test_quality_of_soft_targets_at_a_large_beta(beta):
    # beta multiplies the error of log|u| in |u|^beta = e^(beta log|u|): taken
    # to 2^-56 or so, it gave the float64 loss 1.4 ULP at beta 8 and 12 ULP at
    # beta 100 (y = 0.3, x = 1000), the gradient 1.1 and 6
    x = np.concatenate([np.linspace(-60.0, 60.0, 61), [700.0, 1000.0, 1393.0, 7681.0, 1e4]])
    for y in (0.3, 0.9, 0.01):
        t = np.full(x.shape, y)
        loss = focal.quality_loss(x, t, beta, reduction="none")
        grad = focal.quality_grad(x, t, beta, reduction="none")
        for i, xi in enumerate(x):
            exact = reference.quality_mp(float(xi), y, beta)
            assert ulp_error(loss[i], exact[0], np.float64) <= 1.0, (y, float(xi))
            assert ulp_error(grad[i], exact[1], np.float64) <= 1.0, (y, float(xi))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quality_of_subnormal_targets(dtype):
    # a target below the normal range meets p of its size near x = -710..-745:
    # u = p - y is subnormal there (1 / u and log u's low part would
    # overflow); no NaN, and the values are mpmath's
    x = np.linspace(-760, -690, 7001).astype(dtype)
    for y in (1e-310, 2.5e-312, 5e-324):
        t = np.full(x.shape, y)
        for beta in (0.0, 0.5, 1.0, 2.0, 3.7, 12.0):
            values = [focal.quality_loss(x, t, beta, reduction="none"),
                      *focal.quality_grad_hess(x, t, beta)]
            assert not any(np.isnan(v).any() for v in values), (y, beta)
        for i in range(0, x.size, 500):
            exact = reference.quality_mp(x[i], y, 0.5)
            assert ulp_error(focal.quality_loss(x[i:i + 1], t[i:i + 1], 0.5, reduction="none")[0],
                             exact[0], dtype) <= 1.0
            assert ulp_error(focal.quality_grad(x[i:i + 1], t[i:i + 1], 0.5, reduction="sum")[0],
                             exact[1], dtype) <= 1.0


def _assert_quality_near_mpmath(x, y, beta):
    """float64 loss and gradient at logits x and target y within 1 ULP of
    mpmath, the second derivative within 4 ULP of its scale (as
    worst_errors judges it)."""
    t = np.full(x.shape, y)
    loss = focal.quality_loss(x, t, beta, reduction="none")
    grad, hess = focal.quality_grad_hess(x, t, beta)
    for i, xi in enumerate(x):
        exact = reference.quality_mp(float(xi), y, beta)
        where = (y, beta, float(xi))
        assert ulp_error(loss[i], exact[0], np.float64) <= 1.0, where
        assert ulp_error(grad[i], exact[1], np.float64) <= 1.0, where
        scale = max(abs(float(exact[2])), abs(float(exact[1])), float(np.finfo(np.float64).tiny))
        error = float(abs(mpmath.mpf(float(hess[i])) - exact[2])) / spacing(scale, np.float64)
        assert error <= 4.0, where


@pytest.mark.parametrize("beta", [0.25, 0.5, 0.9, 1.5])
def test_quality_of_tiny_targets_where_p_is_far_smaller_than_one(beta):
    # u = p - y below 2^-200 (the steep region) with w = p (1 - p) and CE of
    # p's size: their product leaves the double range below p ~ 1e-162 while
    # |u|^(beta - 1) brings the gradient's term back (x = -435, y = 1e-300,
    # beta 0.5: 3.6e-284 for 5.4e-284), and the powers beta + 1, beta - 1 and
    # beta - 2 rounded moved the terms by up to 190 ULP (beta 0.9)
    for y in (1e-300, 1e-200, 1e-120, 1e-310, 5e-324):
        x = np.unique(np.concatenate([-np.logspace(0, 2.9, 40),
                                      [np.log(y) + d for d in (-1.0, -0.1, 0.01, 0.1, 1.0, 5.0)]]))
        _assert_quality_near_mpmath(x, y, beta)


@pytest.mark.parametrize("beta", [1e-10, 1e-3, 0.01, 0.03, 0.1])
def test_quality_where_p_and_y_cancel_below_the_normal_range(beta):
    # x next to logit(y) for tiny y: u = p - y keeps only the digits p has
    # beyond y's, and p (with its double-double low part), u, w and CE lie
    # near or below the normal range, where they keep few digits or none; a
    # small beta keeps the values in range (y = 1e-310, x = -713.8, beta 0.03:
    # loss and gradient 0 for 1.4e-317 and 4.7e-305; y = 1e-300, beta 0.01:
    # the gradient 1.6e5 ULP off).  Below p = e^-600 they are taken in units
    # of 2^-600.
    for y in (1e-262, 1e-300, 1e-305, 3e-308, 1e-310, 1e-312, 1e-320, 5e-324):
        centre = float(mpmath.log(y) - mpmath.log1p(-y))  # logit(y), rounded
        near, up, down = [centre], centre, centre
        for _ in range(3):
            up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
            near += [up, down]
        offsets = [centre + d for d in (-1e-3, -1e-6, -1e-9, 1e-9, 1e-6, 1e-3)]
        x = np.unique(np.array(near + offsets))
        _assert_quality_near_mpmath(x, y, beta)


def test_quality_at_logits_far_below_the_scaled_range():
    # the units of 2^-600 serve from x = -600 to -1125 only: further down
    # y 2^600 |x| overflowed and the loss was 0 (x = -1e300, y = 1e-100)
    for x, y, beta in [(-1e300, 1e-100, 2.0), (-1e228, 1e-100, 1e-12), (-1e200, 1e-10, 30.0),
                       (-1e300, 0.5, 1000.0), (-1124.9, 1e-310, 0.01), (-1125.1, 1e-310, 0.01),
                       (-5000.0, 5e-324, 0.5)]:
        exact = reference.quality_mp(x, y, beta)
        loss = focal.quality_loss(np.array([x]), np.array([y]), beta, reduction="none")[0]
        grad = focal.quality_grad(np.array([x]), np.array([y]), beta, reduction="none")[0]
        assert ulp_error(loss, exact[0], np.float64) <= 1.0, (x, y, beta)
        assert ulp_error(grad, exact[1], np.float64) <= 1.0, (x, y, beta)


# ------------------------------------------------------------ asymmetric loss


def _kink(clip, dtype, steps=64):
    """The logits of `dtype` nearest logit(clip) (where p = clip), both sides."""
    exact = mpmath.log(mpmath.mpf(clip) / (1 - mpmath.mpf(clip)))
    centre = dtype(float(exact))
    up, down = [centre], [centre]
    for _ in range(steps):
        up.append(np.nextafter(up[-1], dtype(np.inf)))
        down.append(np.nextafter(down[-1], dtype(-np.inf)))
    offsets = float(exact) + np.concatenate([-np.logspace(-14, 0, 30), np.logspace(-14, 0, 30)])
    return np.unique(np.concatenate([up, down, offsets.astype(dtype)]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", [p for p in FAMILY["asymmetric"][3] if p["clip"] > 0])
def test_asymmetric_loss_near_the_clip(params, dtype):
    # p_m = p - m cancels at p = m: the kernel takes it as m (1 - p)(e^d - 1),
    # d = x - logit(m); the difference from the double-double p was up to 3e14
    # ULP off at the nearest doubles (2^-57 of p is all of p_m there), and
    # above 1 ULP within about 0.4 of logit(m)
    loss_function, grad_hess = FAMILY["asymmetric"][0]
    x = _kink(params["clip"], dtype)
    t = np.zeros_like(x)
    loss = loss_function(x, t, **params, reduction="none")
    grad, hess = grad_hess(x, t, **params)
    # At the double nearest logit(m) itself, d = x - logit(m) is the low part
    # of logit(m)'s double-double, good to 2^-53 of d: P^(g+1) multiplies that
    # (measured: 2.9 ULP at gamma_neg 4, clip 0.05; 1.06 at the next doubles).
    logit = mpmath.log(mpmath.mpf(params["clip"]) / (1 - mpmath.mpf(params["clip"])))
    below = above = 0
    for i, xi in enumerate(x):
        exact = reference.asymmetric_mp(xi, 0.0, **params)
        # d is good to 2^-106 absolute (its low part's rounding), 2^-106 / |d|
        # relative, which P^(g+1) multiplies: (g + 1) 2^-53 / |d| ULP more
        d = abs(float(mpmath.mpf(float(xi)) - logit))
        bound = 1.0 + ((params["gamma_neg"] + 1) * 2.0 ** -53 / d if dtype == np.float64 else 0)
        assert ulp_error(loss[i], exact[0], dtype) <= bound, (xi, loss[i], exact[0])
        assert ulp_error(grad[i], exact[1], dtype) <= bound, (xi, grad[i], exact[1])
        scale = max(abs(float(exact[2])), abs(float(exact[1])), float(np.finfo(dtype).tiny))
        assert float(abs(mpmath.mpf(float(hess[i])) - exact[2])) / spacing(scale, dtype) <= 4.0
        if exact[0] == 0:
            below += 1
            assert loss[i] == 0 and grad[i] == 0 and hess[i] == 0
        else:
            above += 1
    assert below > 30 and above > 30   # both sides of the kink were tested


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", [1 - 2.0**-53, 1 - 2.0**-52, 1 - 1e-13, 1 - 1e-9, 1 - 1e-6, 0.75])
def test_asymmetric_a_clip_near_one(clip, dtype):
    # Beyond the clip's neighbourhood P was p - m, with p rounded near 1: the
    # float32 results of clip 1 - 2^-53 were 2e7 ULP off at x = 37 (5 ULP at
    # clip 1 - 1e-9).  For p and m above 1/2, P is (1 - m) - (1 - p).
    logit = mpmath.log(mpmath.mpf(clip) / (1 - mpmath.mpf(clip)))
    offsets = np.array([-0.4, -1e-3, 1e-3, 0.3, 0.51, 0.6, 1.0, 3.0, 10.0, 30.0])
    x = (float(logit) + offsets).astype(dtype)
    t = np.zeros_like(x)
    nonzero = 0
    for gamma_neg in (0.0, 1.0, 2.5, 4.0):
        params = {"gamma_pos": 0.0, "gamma_neg": gamma_neg, "clip": clip}
        loss = focal.asymmetric_loss(x, t, **params, reduction="none")
        grad, hess = focal.asymmetric_grad_hess(x, t, **params)
        for i, xi in enumerate(x):
            exact = reference.asymmetric_mp(xi, 0.0, **params)
            # (the bound of test_asymmetric_loss_near_the_clip)
            d = abs(float(mpmath.mpf(float(xi)) - logit))
            bound = 1.0 + ((gamma_neg + 1) * 2.0 ** -53 / d if dtype == np.float64 else 0)
            where = (gamma_neg, xi)
            assert ulp_error(loss[i], exact[0], dtype) <= bound, where
            assert ulp_error(grad[i], exact[1], dtype) <= bound, where
            scale = max(abs(float(exact[2])), abs(float(exact[1])), float(np.finfo(dtype).tiny))
            assert float(abs(mpmath.mpf(float(hess[i])) - exact[2])) / spacing(scale, dtype) <= 4.0
            nonzero += loss[i] != 0
    assert nonzero > 10


def test_asymmetric_second_derivative_at_the_kink():
    # From below: 0.  From above, as P -> 0 (d2L/dx2 = w (1 - 2p) dL/dP +
    # w^2 d2L/dP2): w (1 - 2m) + w^2 at gamma_neg 0 (where the gradient
    # itself jumps to w), 2 w^2 at gamma_neg 1, 0 above 1, unbounded for
    # 0 < gamma_neg < 1.  At p = m exactly (P = 0) the values are those from
    # below.
    clip = 0.25
    w = clip * (1 - clip)
    exact = mpmath.log(mpmath.mpf(clip) / (1 - mpmath.mpf(clip)))
    centre = float(exact)
    x_below, x_above = ((np.nextafter(centre, -np.inf), centre) if centre > exact
                        else (centre, np.nextafter(centre, np.inf)))
    x = np.array([x_below, x_above])
    for gamma_neg, limit in ((0.0, w * (1 - 2 * clip) + w * w), (1.0, 2 * w * w), (2.0, 0.0),
                             (4.0, 0.0)):
        g, h = focal.asymmetric_grad_hess(x, np.zeros(2), 0.0, gamma_neg, clip)
        assert g[0] == 0.0 and h[0] == 0.0
        assert h[1] == pytest.approx(limit, rel=1e-12, abs=1e-15), gamma_neg
        assert g[1] == pytest.approx(w if gamma_neg == 0 else 0.0, rel=1e-12, abs=1e-15)
    g, h = focal.asymmetric_grad_hess(x, np.zeros(2), 0.0, 0.5, clip)
    assert h[0] == 0.0 and h[1] > 1e6   # P^(gamma - 1) with P ~ 1e-17


@pytest.mark.parametrize("gamma_neg", [0.0, 0.5, 1.0, 2.0, 4.0])
def test_asymmetric_second_derivative_a_subnormal_distance_above_the_clip(gamma_neg):
    # clip 1/2, logit(m) = 0: x of 1e-310 to 5e-324 puts P = m (1 - p) x below
    # the normal range, where 1 / P overflows.  The term w g (...) P^(g - 1)
    # is formed with P^g and w g before the division: finite (P^(g - 1) is),
    # and 0 at g = 0, where it was inf times 0 (NaN) at gamma_neg 0 to 1.
    # The subnormal P carries fewer digits (half its spacing 2^-1074 is 2^-40
    # of P = 2.5e-311), which P^g and P^(g - 1) multiply by g and |g - 1|.
    x = np.array([1e-300, 1e-308, 1e-310, 1e-315, 1e-320])
    grad, hess = focal.asymmetric_grad_hess(x, np.zeros_like(x), 0.0, gamma_neg, 0.5)
    assert np.isfinite(grad).all() and np.isfinite(hess).all(), (grad, hess)
    for i, xi in enumerate(x):
        with mpmath.workdps(400):   # p - 1/2 = x/4 + ..., x down to 1e-320
            _, exact_grad, exact_hess = reference.asymmetric_mp(xi, 0.0, 0.0, gamma_neg, 0.5)
        digits = 2.0**-1074 / (0.5 * xi)   # P's relative rounding, half its spacing over P
        bound = 4 * 2.0**-53 + (gamma_neg + abs(gamma_neg - 1)) * digits
        for got, exact in ((grad[i], exact_grad), (hess[i], exact_hess)):
            # (a value below the normal range is itself rounded to 2^-1074;
            # at gamma_neg > 1 P^g underflows where P^(g - 1) w (...) does
            # not: test_asymmetric_values_where_p_to_the_gamma_underflows)
            assert abs(got - exact) <= bound * abs(exact) + 2.0**-1074, (xi, gamma_neg, got, exact)


@pytest.mark.parametrize("clip, gamma_neg", [(1e-45, 4.0), (1e-30, 6.0), (1e-100, 2.0),
                                             (8.272705312601621e-122, 0.8528611148320232),
                                             (5.493807173496281e-26, 9.0), (1e-20, 1.0)])
def test_asymmetric_second_derivative_of_tiny_values_above_a_small_clip(clip, gamma_neg):
    # Above a small clip, at x near logit(m), w and P^g are both tiny: the
    # term w g (...) P^g / P, formed as (w g)(...)P^g first, underflowed where
    # the term did not (clip 1e-45, gamma_neg 4, x = -103.6: 8.1e-283 for
    # 9.1e-268, the other terms alone).  Every term is positive here: within
    # 4 ULP of the value.
    centre = float(mpmath.log(mpmath.mpf(clip) / (1 - mpmath.mpf(clip))))
    x = np.array([centre + offset * max(abs(centre), 1.0)
                  for offset in (1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 0.01, 0.3)])
    grad, hess = focal.asymmetric_grad_hess(x, np.zeros_like(x), 0.0, gamma_neg, clip)
    for i, xi in enumerate(x):
        _, exact_grad, exact_hess = reference.asymmetric_mp(xi, 0.0, 0.0, gamma_neg, clip)
        if exact_hess == 0 or abs(exact_hess) < 2.0**-1022:
            continue  # (P at or below the clip, or a subnormal value)
        for got, exact in ((grad[i], exact_grad), (hess[i], exact_hess)):
            assert abs(got - exact) <= 4 * np.spacing(abs(float(exact))), (xi, got, exact)


@pytest.mark.parametrize("clip", [1e-300, 1e-305, 2.5e-308])
@pytest.mark.parametrize("gamma_neg", [1e-8, 1e-3, 0.01])
def test_asymmetric_second_derivative_a_subnormal_p_above_a_normal_clip(clip, gamma_neg):
    # Just above a normal clip below 1e-295, P = p - m is subnormal: its few
    # digits were the divisor of w g (...) P^g / P and gave S = -log(1 - P)
    # (clip 1e-300, gamma_neg 1e-8 at x = -690.7755278972137: 1.0e-300 for
    # 1.1e-299; gamma_neg 0.001: 4.9e-301 for 4.9e-295).  P is now formed
    # 2^600 larger there, and S from it.  Every term is positive for
    # gamma_neg < 1: within 4 ULP of the value.  (At gamma_neg 1/2 the
    # values are already below the normal range.)
    centre = float(mpmath.log(mpmath.mpf(clip) / (1 - mpmath.mpf(clip))))
    x = np.array([np.nextafter(centre, np.inf)]
                 + [centre + offset for offset in (1e-13, 1e-11, 1e-9, 1e-8, 2e-8)])
    _, hess = focal.asymmetric_grad_hess(x, np.zeros_like(x), 0.0, gamma_neg, clip)
    checked = 0
    for i, xi in enumerate(x):
        _, _, exact = reference.asymmetric_mp(xi, 0.0, 0.0, gamma_neg, clip)
        if exact == 0 or abs(exact) < 2.0**-1022:
            continue  # (at or below the clip, or a subnormal value)
        checked += 1
        assert abs(hess[i] - exact) <= 4 * np.spacing(abs(float(exact))), (xi, hess[i], exact)
    assert checked >= 3


@pytest.mark.parametrize("x, clip, gamma_neg", [
    (-713.8013788281542, 1e-310, 0.0), (-713.8013788281542, 1e-310, 1e-8),
    (-723.2659402219787, 7.75520376e-315, 0.0), (-722.3309053114533, 1.975484903e-314, 0.01),
    (-736.8271408909739, 1e-320, 1e-8), (5e-324, 0.5, 1e-8), (5e-324, 0.5, 0.5)])
def test_asymmetric_values_where_p_itself_underflows(x, clip, gamma_neg):
    # Just above the clip P = m (1 - p)(e^d - 1) can underflow to 0 although
    # the loss's derivatives, P^g times 1/P or w, do not: the element was
    # taken as below the clip, all 0 (clip 1e-310 at the double above
    # logit(m): a gradient of 0 for 1.0e-310; clip 1/2 at x = 5e-324, 0 for
    # 0.25).  P is formed 2^600 larger there, and its sign decides.  Below
    # a subnormal clip p itself is subnormal: w = p (1 - p) keeps its few
    # digits (half a spacing 2^-1074 over p, relatively), which the second
    # derivative's w^2 / P brings back into the normal range (left).
    grad, hess = focal.asymmetric_grad_hess(np.array([x]), np.zeros(1), 1.0, gamma_neg, clip)
    with mpmath.workdps(400):   # p - m is x/4 at clip 1/2, down to 1e-324
        _, exact_grad, exact_hess = reference.asymmetric_mp(x, 0.0, 1.0, gamma_neg, clip)
    assert exact_grad > 0
    digits = 4 * 2.0**-1074 / clip if clip < np.finfo(np.float64).tiny else 0.0
    for got, exact in ((grad[0], exact_grad), (hess[0], exact_hess)):
        if exact > np.finfo(np.float64).max:
            assert got == np.inf, (got, exact)
            continue
        bound = 4 * np.spacing(abs(float(exact))) + digits * abs(exact)
        assert abs(got - exact) <= bound, (got, exact)


# (family, x, y, gamma or beta, epsilon): soft targets beyond |x| = 700,
# where w = p (1 - p) is subnormal and gamma, beta or epsilon bring the second
# derivative back into the normal range
FAR_SOFT_CASES = [(family, x, y, gamma, epsilon)
                  for family in ("focal", "poly1", "quality")
                  for x, y, gamma in [(715.0, 1e-3, 200.0), (720.0, 1e-3, 200.0),
                                      (730.0, 0.3, 1000.0), (744.0, 1e-300, 1e13),
                                      (742.0, 1e-300, 1e13), (-725.0, 0.999, 500.0),
                                      (-731.5, 0.6, 30.0), (708.5, 0.25, 3.0)]
                  for epsilon in ((1.0, 0.0) if family == "poly1" else (None,))]
FAR_SOFT_CASES += [("poly1", 730.0, 0.3, 2.0, 1e12), ("poly1", 720.0, 0.5, 0.0, 1e8),
                   ("poly1", -733.0, 0.9, 2.0, -0.5)]
# beyond |x| = 847, where e^-|x| 2^200 was itself subnormal (x = 900, gamma 1e100:
# 0 for -1.2e-288; review 78)
FAR_SOFT_CASES += [(family, x, y, gamma, None if family != "poly1" else 0.0)
                   for family in ("focal", "poly1", "quality")
                   for x, y, gamma in [(860.0, 1e-300, 1e70), (900.0, 1e-300, 1e100),
                                       (-880.0, 0.9, 1e80)]]
FAR_SOFT_CASES += [("poly1", 860.0, 0.3, 0.0, 1e70), ("poly1", 900.0, 0.3, 0.0, 1e100)]


@pytest.mark.parametrize("x, y, gamma, epsilon", [
    (10.0, 1.0000000000000003e-05, 0.0, 1.0), (30.0, 0.00082002983638592, 0.0, 1.0),
    (-12.0, 1 - 1.0000000000000003e-05, 2.0, -1.0), (5.0, 0.1, 0.5, 1.25)])
def test_poly1_second_derivative_where_epsilon_a_is_near_one(x, y, gamma, epsilon):
    """d2C/dx2 = w (1 + epsilon a (1 - 2p)), its factor (1 - c epsilon a) + 2 c
    epsilon a h cancels where epsilon a is near 1: a = 1 - 2y of a soft target
    is not a double, and its low part was left out (x = 10, y = 1e-5 + 3e-21,
    epsilon 1: 1,098 ULP; review 78).  Within 4 ULP."""
    _, hess = focal.poly1_grad_hess(np.array([x]), np.array([y]), None, gamma, epsilon)
    with mpmath.workdps(60):
        exact = reference.poly1_mp(x, y, gamma, epsilon, None)[2]
    assert abs(hess[0] - exact) <= 4 * np.spacing(abs(float(exact))), (hess[0], exact)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("epsilon", [1e3, 1e16, 1e50, 1e155, 1e300])
@pytest.mark.parametrize("gamma", [0.0, 1e-300])
def test_poly1_second_derivative_next_to_zero_under_a_large_epsilon(dtype, epsilon, gamma):
    """Near x = 0 the factor 1 + epsilon a (1 - 2p) is 1 plus a term of 1 - 2p's
    size: written (1 - c epsilon a) + 2 c epsilon a h, it lost the 1 beside
    an epsilon beyond 2^53 (float32 results) or 2^106 (x = 0: 0 for 0.25),
    and p rounded to 1/2 for x in [-2^-53, 0) took the wrong side c
    (epsilon 1e155, x = -1e-20: -1.25e134 for 1.25e134; epsilon 1e3, x =
    -2^-56: 93 ULP; review 83).  Within 4 ULP of the second derivative."""
    x = np.array([0.0, -0.0, 2.0 ** -60, -2.0 ** -60, 1e-20, -1e-20, 2.0 ** -54, -2.0 ** -54,
                  2.0 ** -53, -2.0 ** -53, 1e-10, -1e-10, 1e-3, -1e-3, 0.1, -0.1], dtype)
    for target in (0.0, 1.0, 0.3):
        y = np.full(x.shape, target, dtype)
        hess = focal.poly1_grad_hess(x, y, 0.25, gamma, epsilon)[1]
        assert hess.dtype == dtype
        for xi, h in zip(x, hess):
            exact = reference.poly1_mp(float(xi), target, gamma, epsilon)[2]
            if abs(exact) > float(np.finfo(dtype).max):  # past the dtype: its infinity
                assert h == (np.inf if exact > 0 else -np.inf), (float(xi), target, h)
                continue
            error = ulp_error(h, exact, dtype)
            assert error <= 4.0, (float(xi), target, float(h), float(exact), error)


def _far_soft_values(family, x, y, gamma, epsilon):
    """(computed, exact) lists of the loss, gradient and second derivative."""
    xs, ys = np.array([x]), np.array([y])
    if family == "focal":
        computed = (focal.loss(xs, ys, None, gamma, reduction="none"),
                    *focal.grad_hess(xs, ys, None, gamma))
        exact = reference.sigmoid_focal_mp(x, y, gamma, None)
    elif family == "poly1":
        computed = (focal.poly1_loss(xs, ys, None, gamma, epsilon, reduction="none"),
                    *focal.poly1_grad_hess(xs, ys, None, gamma, epsilon))
        exact = reference.poly1_mp(x, y, gamma, epsilon, None)
    else:
        computed = (focal.quality_loss(xs, ys, gamma, reduction="none"),
                    *focal.quality_grad_hess(xs, ys, gamma))
        exact = reference.quality_mp(x, y, gamma)
    return [c[0] for c in computed], list(exact)[:3]


@pytest.mark.parametrize("family, x, y, gamma, epsilon", FAR_SOFT_CASES)
def test_far_soft_second_derivative_keeps_its_digits(family, x, y, gamma, epsilon):
    """Beyond |x| = 700 a soft target's w = p (1 - p) is e^-|x|, subnormal
    from 708.4, and every term of the second derivative carries it: gamma,
    beta or epsilon multiplied its few digits back into the normal range (x =
    720, y = 1e-3, gamma 200: 41,215 ULP off; Poly-1 at x = 744, y = 1e-300,
    gamma 1e13: 29%).  The scalar path forms it from parts with e^-|x| 2^200:
    within 4 ULP (and 2^-1072 absolute where it is itself subnormal), the loss
    and gradient as before."""
    with mpmath.workdps(450):
        computed, exact = _far_soft_values(family, x, y, gamma, epsilon)
        for got, value, what in zip(computed, exact, ("loss", "gradient", "second derivative")):
            bound = 4 * np.spacing(abs(float(value))) + 2.0**-1072
            assert abs(got - value) <= bound, (what, got, mpmath.nstr(value, 17))


FAR_TAIL_LOGITS = (-1400.0, -800.0, -746.0, -720.0, 709.0, 745.2, 750.0, 1000.0)
FAR_TAIL_TARGETS = (5e-324, 2.0**-1022, 1e-300, 1e-20, 0.3, 0.999)
FAR_TAIL_SETTINGS = [("focal", gamma, None) for gamma in (0.0, 2.0, 1e13, 1.7e308)] + [
    ("poly1", gamma, epsilon) for gamma in (0.0, 1.0, 7.5, 1e300)
    for epsilon in (-1.0, 1.0, 1e100, 1e300)]


@pytest.mark.parametrize("family, gamma, epsilon", FAR_TAIL_SETTINGS)
def test_far_soft_targets_under_extreme_gamma_and_epsilon(family, gamma, epsilon):
    """Beyond |x| = 700 e^-|x| is subnormal (0 from 745), while gamma or
    epsilon up to 1.8e308 bring its products back and a tiny target sits
    beside it in q: Poly-1 at x = -746, y = 1e-300, gamma 0, epsilon 1e300
    had the gradient -1e-300 for 1.04e-24 (review 83), the focal loss at x =
    745, y = 2^-1022, gamma 1.7e308 1,758 ULP, and second derivatives were
    0 for values up to 1e84.  Every value within 1 ULP (a subnormal one
    within its spacing), loss, gradient and second derivative, both sides."""
    for x, y in itertools.product(FAR_TAIL_LOGITS, FAR_TAIL_TARGETS):
        with mpmath.workdps(450 + int(abs(x) / 2.3)):
            computed, exact = _far_soft_values(family, x, y, gamma, epsilon)
            for got, value, what in zip(computed, exact, ("loss", "gradient", "second derivative")):
                if abs(value) > np.finfo(np.float64).max:
                    continue  # (past the doubles: the README's own class)
                bound = max(np.spacing(abs(float(value))), 2.0**-1074)
                assert abs(got - value) <= bound, (what, x, y, got, mpmath.nstr(value, 17))


@pytest.mark.parametrize("x, y, gamma, epsilon", [
    (-500.0, 1e-200, 2.0, 1e300), (-600.0, 1e-200, 2.0, 1e300), (-699.0, 1e-200, 2.0, 1e300),
    (-700.0, 1e-200, 2.0, 1e300), (400.0, 1 - 1e-16, 2.0, 1e300), (-360.0, 1e-150, 3.0, 1e250),
    (700.0, 7.572737264e-315, 7.45e305, 1.7976931348623157e308),
    (699.99999995, 2.0**-1022, 1e307, 1.7976931348623157e308),
    (-500.0, 0.75, 2.0, 2.0), (-100.0, 1e-300, 8.0, 1e300), (-90.0, 1e-250, 7.5, 1e200)])
def test_poly1_soft_targets_whose_power_underflows_within_700(x, y, gamma, epsilon):
    """Within |x| = 700 a tiny target's q^gamma underflows where epsilon
    brings the value back (y = 1e-200, gamma 2, epsilon 1e300: the loss 0
    from x = -500 to -700 for 1.0e-300, beside the right value just beyond
    -700; x = 700, gamma 7.45e305, epsilon 1.8e308: a gradient of 6.5e-28
    for 1.66e278; review 91).  Those elements take the scalar path, whose
    first-order form in e^-|x| holds from |x| = 75 for epsilon >= 0: every
    value within 1 ULP."""
    with mpmath.workdps(450 + int(abs(x) / 2.3)):
        computed, exact = _far_soft_values("poly1", x, y, gamma, epsilon)
        for got, value, what in zip(computed, exact, ("loss", "gradient", "second derivative")):
            if abs(value) > np.finfo(np.float64).max:
                continue  # (past the doubles: the README's own class)
            bound = max(np.spacing(abs(float(value))), 2.0**-1074)
            assert abs(got - value) <= bound, (what, got, mpmath.nstr(value, 17))


@pytest.mark.parametrize("family, x, y, gamma, epsilon", [
    ("poly1", -746.0, 1e-30, 0.0, 1e300), ("poly1", -800.0, 0.3, 2.0, 1e300),
    ("poly1", 750.0, 1e-30, 1.0, 1e300), ("focal", 745.0, 1e-30, 1e30, None),
    ("focal", -720.0, 0.25, 1e13, None)])
def test_far_soft_targets_in_float32(family, x, y, gamma, epsilon):
    """The same far tails for float32 results (the parameters stay doubles):
    within 1 ULP of float32."""
    xs, ys = np.array([x], np.float32), np.array([y], np.float32)
    x, y = float(xs[0]), float(ys[0])
    if family == "focal":
        computed = (focal.loss(xs, ys, None, gamma, reduction="none"), *focal.grad_hess(xs, ys, None, gamma))
        exact = reference.sigmoid_focal_mp(x, y, gamma, None)
    else:
        computed = (focal.poly1_loss(xs, ys, None, gamma, epsilon, reduction="none"),
                    *focal.poly1_grad_hess(xs, ys, None, gamma, epsilon))
        exact = reference.poly1_mp(x, y, gamma, epsilon, None)
    for got, value, what in zip(computed, exact, ("loss", "gradient", "second derivative")):
        assert got.dtype == np.float32
        if abs(value) > np.finfo(np.float32).max:
            assert np.isinf(got[0]), (what, got)
            continue
        assert ulp_error(got[0], value, np.float32) <= 1.0, (what, got[0], mpmath.nstr(value, 9))


@pytest.mark.parametrize("beta", [0.0, 0.5, 7.5, 1e13, 1e307, 1.7e308])
def test_quality_far_right_soft_targets(beta):
    """Beyond x = 700 on the right, 1 - p = e^-x is subnormal from 708.4 (0
    from 745) while beta up to 1.8e308 brings its products back beside a
    target small enough to keep |u|^beta = (1 - y - e^-x)^beta from
    underflowing (y = 1e-307, x = 730, beta 1e307: the gradient 82 ULP off,
    review 83; x = 701: 263 ULP, u's digits holding y + e^-x to 2^-53).
    Every value within 1 ULP (a subnormal one within its spacing)."""
    for x, y in itertools.product((701.0, 709.0, 730.0, 745.2, 1000.0, 6000.0),
                                  (5e-324, 1e-310, 1e-307, 1e-20, 0.3, 1 - 2.0**-53)):
        with mpmath.workdps(450 + int(x / 2.3)):
            computed, exact = _far_soft_values("quality", x, y, beta, None)
            for got, value, what in zip(computed, exact, ("loss", "gradient", "second derivative")):
                bound = max(np.spacing(abs(float(value))), 2.0**-1074)
                assert abs(got - value) <= bound, (what, x, y, got, mpmath.nstr(value, 17))


@pytest.mark.parametrize("beta", [1e10, 1e13, 1e15, 1e17])
def test_quality_targets_near_one_under_a_large_beta(beta):
    """|u| = |p - y| near 1 (y near 1 and p small, or the mirror): beta
    multiplies log|u| = log(1 - c), and |u|'s own digits hold c = 1 - |u| to
    2^-53 of it at best (y = 1 - 2^-53 at x = -650, beta 1e13: the gradient
    1.2e6 ULP off, 1.3e10 at beta 1e17; 3.2 ULP within |x| = 600).  c is
    formed from its parts, (1 - y) + p: loss and gradient within 1 ULP, the
    second derivative within 2."""
    near_one = (1 - 2.0**-53, 1 - 2.0**-50, 1 - 1e-10)
    cases = [(x, y) for x in (-1000.0, -701.0, -650.0, -300.0, -5.0, -0.5) for y in near_one]
    cases += [(-x, 1 - y) for x, y in cases]
    for x, y in cases:
        with mpmath.workdps(450 + int(abs(x) / 2.3)):
            computed, exact = _far_soft_values("quality", x, y, beta, None)
            for got, value, what, ulps in zip(computed, exact, ("loss", "gradient", "hessian"),
                                              (1, 1, 2)):
                bound = ulps * max(np.spacing(abs(float(value))), 2.0**-1074)
                assert abs(got - value) <= bound, (what, x, y, got, mpmath.nstr(value, 17))


@pytest.mark.parametrize("x", [20.0, 80.0, 300.0, 570.0])
def test_quality_second_derivative_where_its_terms_cancel(x):
    """|u| near 1 and beta near 1 / c (c = 1 - |u| = e^-|x| + y's distance):
    beta (beta - 1) rho^2 CE and beta rho (1 - 2p) CE, rho = w / u, nearly
    cancel where beta rho is near 1.  Summed from doubles the second
    derivative was up to 46 ULP off (x = 570, y = 2.4e-251, beta 3.6e247)
    and 2.5 to 5 ULP at beta above 1e17 away from the cancellation (review
    93); the float64 path above beta 4 sums it in double-double and rounds
    once: within 1 ULP on this grid, as the loss and the gradient.  (x = 20:
    its betas, above 850 where |u| rounds below 1, take the steep form, a
    double-double sum already.  Next to the second derivative's own zero,
    beta c near 1 - 2 / CE, the error is judged against its terms' size, as
    every second derivative's: review 94 measured 2.44 ULP there, 1.6e16
    before.)"""
    for y, k in itertools.product((1e-300, 1e-60, 1e-12, 2.0**-53), (0.9, 0.99, 1.01, 1.1, 3.0)):
        for xs, ys in ((x, y), (-x, 1.0 - y)):
            if ys == 1.0:
                continue   # (a hard target: the focal loss's form)
            with mpmath.workdps(450 + int(x / 2.3)):
                beta = float(k / (mpmath.exp(-x) + y))
                computed, exact = _far_soft_values("quality", xs, ys, beta, None)
                for got, value, what in zip(computed, exact, ("loss", "gradient", "hessian")):
                    assert ulp_error(got, value, np.float64) <= 1, (what, xs, ys, beta, got,
                                                                    mpmath.nstr(value, 17))


@pytest.mark.parametrize("family", ["focal", "quality"])
def test_values_scaled_back_into_the_subnormal_range_round_once(family):
    """Where (1 - p_t)^gamma or |u|^beta is below e^-700 the kernels form it
    2^1000 larger and scale the values back last; a value that lands in the
    subnormal range rounded its high part to the subnormal grid and lost the
    low one (two roundings: the quality focal loss's gradient up to 0.98
    subnormal spacings off, 38 of 400 random points beyond 1/2; the focal
    loss's 0.51, review 93), as did the quality focal loss's steep form,
    whose terms were scaled apart.  A first mend added the low part's own
    rounding to a result just above 2^-1022 (0.70 ULP) and rounded the
    quality focal loss's second derivative term by term where |u|^beta was
    not lifted (1.72 spacings, review 94).  Values below 2^-1017 within half
    a spacing (the digits beyond 2^-100 of the double-double aside): loss
    and gradient, and the quality focal loss's second derivative of a soft
    target, a double-double sum (a hard target's, as the focal loss's, is
    summed in double)."""
    # the worst found before: review 93's kind (0.51 and 0.98 spacings),
    # review 94's second derivatives (1.72, 1.66, 1.375) and losses (0.703)
    points = {"focal": [(-18.276616701011648, 1.0, 62332060017.17065)],
              "quality": [(-19.39329323636846, 0.2813235604992792, 563.8389320405474),
                          (581.6836872188699, 0.9999999999993313, 5.0),
                          (300.0, 0.9999999999999998, 12.0), (-700.0, 0.1, 8.0),
                          (24.87171399721683, 0.4341795994808936, 1246.956360998866)]}[family]
    rng = np.random.default_rng(93)
    checked = 0
    while checked < 80:
        if points:
            x, y, gamma = points.pop()
        else:
            x, y = float(rng.uniform(-40.0, 40.0)), float(rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
            p = 1 / (1 + np.exp(-x))
            q = abs(p - y) if family == "quality" else y * (1 - p) + (1 - y) * p
            if not 1e-12 < q < 1 - 1e-9:
                continue
            # a gamma that takes q^gamma |x| (about the loss) to 1e-323..1e-306
            gamma = float((np.log(10 ** rng.uniform(-323, -306)) - np.log(max(abs(x), 0.1)))
                          / np.log(q))
            if gamma <= 8:
                continue
        values = 3 if family == "quality" and 0.0 < y < 1.0 else 2
        with mpmath.workdps(450 + int(abs(x) / 2.3)):
            computed, exact = _far_soft_values(family, x, y, gamma, None)
            for got, value, what in zip(computed[:values], exact[:values],
                                        ("loss", "gradient", "second derivative")):
                if abs(value) < 2.0**-1017:
                    error = ulp_error(got, value, np.float64)
                    assert error <= 0.5 + 2.0**-20, (what, x, y, gamma, got, mpmath.nstr(value, 17))
                    checked += 1


def _steps_above(clip):
    """Logits from the double nearest logit(clip) upwards: 1 to 1,000 of its
    spacings, where P = p - m runs from about 1e-17 of m upwards; at clip
    1/2 (logit 0, where the doubles are dense) x from 1e-320 to 1e-30."""
    if clip == 0.5:
        return [1e-320, 1e-315, 1e-310, 1e-300, 1e-250, 1e-200, 1e-180, 1e-160, 1e-150,
                1e-120, 1e-100, 1e-60, 1e-45, 1e-41, 1e-30]
    centre = float(mpmath.log(mpmath.mpf(clip) / (1 - mpmath.mpf(clip))))
    return [centre + k * np.spacing(abs(centre)) for k in (1, 2, 3, 4, 6, 10, 30, 100, 1000)]


@pytest.mark.parametrize("clip, gamma_neg", [(0.05, 20.0), (0.05, 21.5), (0.3, 20.5), (0.9, 19.5),
                                             (0.5, 2.0), (0.5, 3.0), (0.5, 4.0), (0.5, 7.5),
                                             (0.5, 1.05), (0.5, 1.9), (0.5, 2.5), (0.5, 0.9),
                                             (0.5, 1.0)])
def test_asymmetric_values_where_p_to_the_gamma_underflows(clip, gamma_neg):
    # Just above the clip P^g falls below the normal range, or to 0, where
    # the second derivative's term w g (...) P^(g - 1) is still normal: it
    # was formed from the subnormal P^g (clip 0.05, gamma_neg 20, three
    # doubles above logit(m): 1.34e-307 for 1.05e-307; one above: 0 for
    # 1.1e-310; clip 1/2, gamma_neg 2, x = 1e-300: 0 for 9.4e-302).  P^g is
    # formed 2^1000 larger there (2^600 for gamma_neg < 1) by the power's
    # exponent, or for an integer gamma up to 4 2^600 larger by the products
    # of P 2^(600/g), with P^(g - 1) a product of its own (P^g may underflow
    # even lifted: gamma_neg 2, x = 1e-300, P^2 = 6e-602), and the values
    # scaled back once: within 4 ULP, or 2^-1074 below the normal range (a
    # subnormal result is rounded to its spacing), loss and gradient too.  (At clip 1/2 x below
    # about 1e-307 makes P subnormal, formed 2^600 larger itself: its P^g
    # from that lifted P, 0 for 8.9e-18 in the second derivative at
    # gamma_neg 1.05, x = 1e-323.  Left: at gamma_neg between 1 and 2 and x
    # near 1e-323 P^g 2^1000 is itself subnormal, 7.8e-12 of the second
    # derivative at gamma_neg 1.9, x = 1e-323.)
    x = np.array(_steps_above(clip))
    zeros = np.zeros_like(x)
    loss = focal.asymmetric_loss(x, zeros, 0.0, gamma_neg, clip, reduction="none")
    grad, hess = focal.asymmetric_grad_hess(x, zeros, 0.0, gamma_neg, clip)
    for i, xi in enumerate(x):
        with mpmath.workdps(400):   # p - m down to 1e-301
            exact = reference.asymmetric_mp(xi, 0.0, 0.0, gamma_neg, clip)
        for what, got, value in zip(("loss", "grad", "hess"), (loss[i], grad[i], hess[i]), exact):
            bound = 4 * np.spacing(abs(float(value))) + 2.0**-1074
            assert abs(got - value) <= bound, (what, xi, got, float(value))


@pytest.mark.parametrize("clip", [1e-300, 1e-200, 1e-160, 5e-324])
@pytest.mark.parametrize("gamma_neg", [0.01, 0.3, 0.5, 0.9])
def test_asymmetric_second_derivative_where_w_squared_underflows(clip, gamma_neg):
    # Far below x = 0, w = p (1 - p) ~ e^x and w^2 leaves the doubles from
    # x = -354, while the term w g w (...) P^(g - 1) ~ e^((1 + g) x) does not
    # for gamma_neg < 1: formed as (w g w (...)) P^g / P it was 0 or few
    # digits (clip 1e-300, gamma_neg 0.5, x = -400: 4.0e-261 for 6.0e-261).
    # Above the clip every term is positive: within 4 ULP of the value.
    low = max(-700.0, float(mpmath.log(mpmath.mpf(clip))) + 5.0)
    x = np.linspace(low, -340.0, 9)
    _, hess = focal.asymmetric_grad_hess(x, np.zeros_like(x), 0.0, gamma_neg, clip)
    for i, xi in enumerate(x):
        _, _, exact = reference.asymmetric_mp(xi, 0.0, 0.0, gamma_neg, clip)
        if abs(exact) < 2.0**-1022:
            continue  # (a subnormal value: its spacing is absolute)
        assert abs(hess[i] - exact) <= 4 * np.spacing(abs(float(exact))), (xi, hess[i], exact)


@pytest.mark.parametrize("x", [1e-315, 1.11938682e-315, 1e-318, 1e-320])
def test_asymmetric_second_derivative_beyond_the_double_range_is_inf(x):
    # clip 1/2, gamma_neg 0.01: P = x/4 is subnormal and w g (...) P^(g - 1)
    # exceeds the double range (1.8e309 at x = 1e-315): inf, where the
    # double-double quotient and sum made NaN of it; the gradient is finite
    # (its digits those of the subnormal P: the test above)
    grad, hess = focal.asymmetric_grad_hess(np.array([x]), np.zeros(1), 0.0, 0.01, 0.5)
    with mpmath.workdps(400):
        _, _, exact_hess = reference.asymmetric_mp(x, 0.0, 0.0, 0.01, 0.5)
    assert exact_hess > mpmath.mpf(np.finfo(np.float64).max)
    assert hess[0] == np.inf and np.isfinite(grad[0])


def _authors_formula(x, y, gamma_pos, gamma_neg, clip, eps=1e-8):
    """The ASL authors' loss, written here in NumPy from their formula:
    -(y log(clamp(p)) + (1 - y) log(clamp(1 - p_m))) (1 - p_t)^gamma with
    p_t = p y + (1 - p_m)(1 - y) (their probability of the right answer, so
    that 1 - p_t = p_m for a negative), gamma = gamma_pos y + gamma_neg (1 - y),
    1 - p_m = min(1 - p + m, 1), clamps at eps from below."""
    p = 1 / (1 + np.exp(-x))
    not_p_m = np.minimum(1 - p + clip, 1)
    log_pos = np.log(np.maximum(p, eps))
    log_neg = np.log(np.maximum(not_p_m, eps))
    p_t = p * y + not_p_m * (1 - y)
    gamma = gamma_pos * y + gamma_neg * (1 - y)
    return -(y * log_pos + (1 - y) * log_neg) * (1 - p_t) ** gamma


def test_asymmetric_is_the_authors_formula():
    # at moderate logits, where their clamp does not bite and 1 - p loses
    # nothing that matters at 1e-12
    # (their 1 - (1 - p + m) cancels where p_m is small, 1.5e-12 off at
    # p_m = 1e-4, and their 1 - p where p nears 1: those elements are left out)
    rng = np.random.default_rng(13)
    x = rng.normal(0, 3, (300, 4))
    y = (rng.uniform(size=x.shape) < 0.3).astype(float)
    p = 1 / (1 + np.exp(-x))
    for gamma_pos, gamma_neg, clip in ((0.0, 4.0, 0.05), (1.0, 4.0, 0.05), (0.0, 2.0, 0.0),
                                       (0.5, 3.5, 0.2)):
        accurate = np.where(y == 1, p < 0.99, (p < clip) | ((p - clip > 1e-2) & (1 - p > 1e-2)))
        ours = focal.asymmetric_loss(x, y, gamma_pos, gamma_neg, clip, reduction="none")
        theirs = _authors_formula(x, y, gamma_pos, gamma_neg, clip)
        assert accurate.mean() > 0.75
        np.testing.assert_allclose(ours[accurate], theirs[accurate], rtol=1e-12)


def test_asymmetric_where_the_authors_clamp_bites():
    # A positive at x = -30: -log p = softplus(30) = 30.00000000000009357622968839737
    # (mpmath); their clamp at 1e-8 gives -log(1e-8) = 18.42.  focal gives
    # the mpmath value to the last bit.
    x = np.array([-30.0])
    exact = reference.asymmetric_mp(-30.0, 1.0, 0.0, 4.0, 0.05)[0]
    assert mpmath.almosteq(exact, mpmath.mpf("30.00000000000009357622968839737"), rel_eps=1e-30)
    ours = focal.asymmetric_loss(x, np.ones(1), reduction="none")
    assert ulp_error(ours[0], exact, np.float64) <= 0.5
    assert _authors_formula(x, np.ones(1), 0.0, 4.0, 0.05)[0] == pytest.approx(-np.log(1e-8))


def test_asymmetric_soft_targets_are_refused():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"^targets: the asymmetric loss needs targets in \{0, 1\}"):
        focal.asymmetric_loss(x, np.full((2, 3), 0.5))


def test_asymmetric_clip_zero_negatives_are_the_focal_loss():
    # m = 0: L- = -p^gamma_neg log(1 - p), the focal loss of target 0 at
    # gamma_neg without alpha; positives the focal loss of target 1 at gamma_pos
    rng = np.random.default_rng(6)
    x = rng.normal(0, 8, (64, 5))
    for dtype in (np.float32, np.float64):
        xs = x.astype(dtype)
        zeros, ones = np.zeros_like(xs), np.ones_like(xs)
        for gamma in (0.0, 2.0, 4.0, 2.5):
            ours = focal.asymmetric_loss(xs, zeros, 1.0, gamma, 0.0, reduction="none")
            theirs = focal.loss(xs, zeros, None, gamma, reduction="none")
            np.testing.assert_allclose(ours, theirs, rtol=2 * np.finfo(dtype).eps,
                                       atol=2 * np.finfo(dtype).smallest_subnormal)
            ours = focal.asymmetric_loss(xs, ones, gamma, 4.0, 0.05, reduction="none")
            theirs = focal.loss(xs, ones, None, gamma, reduction="none")
            np.testing.assert_allclose(ours, theirs, rtol=2 * np.finfo(dtype).eps,
                                       atol=2 * np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", [0.0, 5e-324, 1e-300, 1e-100, 1e-30, 1e-10])
def test_asymmetric_small_clip_second_derivative_far_right(dtype, clip):
    # a clip small beside 1 - p far right: the asymmetric form's terms
    # w (1 - 2p)/u and (w/u)^2 are -1 and 1 there and cancelled to e^-x
    # (gamma_neg 4 at x = 100 and clip 0 gave -1.85e-32 for -1.45e-41; clip
    # 1e-300 and gamma_neg 0.5 at x = 96.6, -3.1e-33 for -5.4e-41; float32
    # results at x = 60, the wrong sign).  At clip 0 the focal loss of
    # target 0 serves; otherwise their sum is formed as (w/u)((1 - p) - m p/u).
    x = np.array([-30.0, -1.0, 0.5, 20.0, 40.0, 55.0, 60.0, 96.55726684981495, 100.0, 300.0,
                  700.0, 710.0], dtype=dtype)
    zeros = np.zeros_like(x)
    for gamma in (0.0, 0.5, 2.0, 4.0, 2.5):
        hess = focal.asymmetric_grad_hess(x, zeros, 0.0, gamma, clip)[1]
        for i, xi in enumerate(x):
            with mpmath.workdps(800):   # the reference's own terms cancel to e^-x
                exact = reference.asymmetric_mp(float(xi), 0.0, 0.0, gamma, clip)[2]
            scale = max(abs(float(exact)), float(np.finfo(dtype).tiny))
            error = float(abs(mpmath.mpf(float(hess[i])) - exact)) / spacing(scale, dtype)
            assert error <= 4.0, (xi, gamma, hess[i], exact)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_asymmetric_every_finite_parameter_free_of_nan(dtype):
    info = np.finfo(dtype)
    x = np.array([-info.max, -1e4, -745.0, -701.0, -40, -2.9444, -1, -info.smallest_subnormal, 0.0,
                  info.smallest_subnormal, 1, 2.1972, 40, 701.0, 745.0, 1e4, info.max], dtype=dtype)
    x = np.concatenate([x, _kink(0.05, dtype, steps=3)])
    for gamma_pos in (0.0, 1e-300, 0.5, 4.0, 9.0, 1e3, 1e300, 1.7e308):
        for gamma_neg in (0.0, 1e-300, 0.5, 1.0, 4.0, 9.0, 1e3, 1e300, 1.7e308):
            for clip in (0.0, 5e-324, 1e-300, 0.05, 0.5, 1 - 2.0 ** -53):
                for y in (0.0, 1.0):
                    t = np.full_like(x, y)
                    loss = focal.asymmetric_loss(x, t, gamma_pos, gamma_neg, clip,
                                                 reduction="none")
                    grad, hess = focal.asymmetric_grad_hess(x, t, gamma_pos, gamma_neg, clip)
                    where = (gamma_pos, gamma_neg, clip, y)
                    assert not np.isnan(loss).any(), where
                    assert np.isfinite(grad).all() and np.isfinite(hess).all(), where
                    assert (loss >= 0).all() and (y == 1 or (grad >= 0).all()), where



# The block computes only the positives and the negatives that may lie above
# the clip, each list gathered into a block of its own (src/losses.h): blocks
# mixing both targets, logits on both sides of logit(m) and scalar-path
# logits, against mpmath and against each element computed alone.
ASYMMETRIC_BLOCK_SETTINGS = (
    {"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05},   # the defaults: products
    {"gamma_pos": 2.0, "gamma_neg": 2.5, "clip": 0.2},    # a general power
    {"gamma_pos": 1.0, "gamma_neg": 0.0, "clip": 0.0},    # no clip: every negative listed
    {"gamma_pos": 3.7, "gamma_neg": 9.5, "clip": 0.3},    # the kernel of large gamma
)


def _asymmetric_mixed(clip, dtype):
    """Logits near logit(clip), across the range and beyond 700, shuffled, with
    about a fifth of the targets positive: blocks of both targets (over 256
    elements: more than one block)."""
    rng = np.random.default_rng(21)
    near = _kink(clip, dtype, steps=8) if clip > 0 else np.zeros(0, dtype)
    far = np.array([-1e4, -800.0, -701.0, 701.0, 800.0, 1e4], dtype)
    x = np.concatenate([near, rng.normal(-3.0, 4.0, 400).astype(dtype), far])
    rng.shuffle(x)
    return x, (rng.uniform(size=x.size) < 0.2).astype(dtype)


def _asymmetric_values(x, y, params):
    return (focal.asymmetric_loss(x, y, **params, reduction="none"),
            *focal.asymmetric_grad_hess(x, y, **params))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", ASYMMETRIC_BLOCK_SETTINGS)
def test_asymmetric_mixed_blocks_against_mpmath(params, dtype):
    x, y = _asymmetric_mixed(params["clip"], dtype)
    loss, grad, hess = _asymmetric_values(x, y, params)
    # the bounds of test_hard_targets_every_magnitude and, near the clip, of
    # test_asymmetric_loss_near_the_clip
    logit = (mpmath.log(mpmath.mpf(params["clip"]) / (1 - mpmath.mpf(params["clip"])))
             if params["clip"] > 0 else None)
    base = 1.5 if params["gamma_neg"] > 8 and dtype == np.float64 else 1.0
    nonzero_negatives = 0
    for i, xi in enumerate(x):
        exact = reference.asymmetric_mp(xi, y[i], **params)
        bound = base
        if logit is not None and y[i] == 0 and dtype == np.float64:
            d = abs(float(mpmath.mpf(float(xi)) - logit))
            bound += (params["gamma_neg"] + 1) * 2.0 ** -53 / d
        where = (xi, y[i])
        assert ulp_error(loss[i], exact[0], dtype) <= bound, where
        assert ulp_error(grad[i], exact[1], dtype) <= bound, where
        scale = max(abs(float(exact[2])), abs(float(exact[1])), float(np.finfo(dtype).tiny))
        assert float(abs(mpmath.mpf(float(hess[i])) - exact[2])) / spacing(scale, dtype) <= 4.0
        nonzero_negatives += y[i] == 0 and exact[0] != 0
    assert nonzero_negatives > 20 and y.sum() > 50


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", ASYMMETRIC_BLOCK_SETTINGS)
def test_asymmetric_values_do_not_depend_on_the_block(params, dtype):
    # each element alone (a block of one), in a block of mixed targets, of
    # negatives only and of positives only: the same bits, at every
    # instruction set; a block wholly below the clip is 0
    x, y = _asymmetric_mixed(params["clip"], dtype)
    alone = np.array([[v[0] for v in _asymmetric_values(x[i:i + 1], y[i:i + 1], params)]
                      for i in range(x.size)]).T
    levels = focal._core.supported_simd_levels()
    current = focal._core.simd_level()
    try:
        for level in levels:
            focal._core.set_simd_level(level)
            for value, expected in zip(_asymmetric_values(x, y, params), alone):
                np.testing.assert_array_equal(value, expected.astype(dtype), err_msg=level)
            for target in (0.0, 1.0):
                same = y == target
                for value, expected in zip(_asymmetric_values(x[same], y[same], params),
                                           alone[:, same]):
                    np.testing.assert_array_equal(value, expected.astype(dtype), err_msg=level)
            if params["clip"] > 0:
                logit = np.log(params["clip"] / (1 - params["clip"]))
                below = np.linspace(logit - 20, logit - 1e-6, 600).astype(dtype)
                for value in _asymmetric_values(below, np.zeros_like(below), params):
                    assert not value.any() and not np.signbit(value).any(), level
    finally:
        focal._core.set_simd_level(current)


# ------------------------------------------------- subnormal soft targets, every row


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("entry", [loss for loss in registry.LOSSES
                                   if loss.family == "elementwise" and "soft" in loss.target_forms],
                         ids=repr)
def test_subnormal_soft_targets_give_no_nan(entry, dtype):
    # a subnormal target meets a p of its size beyond x = -700 (the scalar
    # path): 1 - p_t (or |p - y|) is subnormal there, and a quotient or log of
    # it overflowed before it was lifted (NaN gradients in float64)
    x = np.linspace(-760, -690, 701).astype(dtype)[:, None]  # one class
    for y in (1e-310, 2.5e-312, 5e-324):
        t = np.full(x.shape, y)
        for params in entry.valid_params:
            params = registry.params_for(entry, params, 1)
            values = [entry.functions["loss"](x, t, reduction="none", **params),
                      *entry.functions["grad_hess"](x, t, **params)]
            assert not any(np.isnan(v).any() for v in values), (y, params)
        for i in range(0, x.size, 100):
            exact = entry.mp_twin(x[i, 0], y, **entry.params)
            got_loss = entry.functions["loss"](x[i:i + 1], t[i:i + 1], reduction="none",
                                               **entry.params)[0]
            got_grad = entry.functions["grad"](x[i:i + 1], t[i:i + 1], reduction="sum",
                                               **entry.params)[0, 0]
            assert ulp_error(got_loss[0], exact[0], dtype) <= entry.ulp_bound, (y, x[i])
            assert ulp_error(got_grad, exact[1], dtype) <= entry.ulp_bound, (y, x[i])


LARGE_FACTOR_CASES = [
    # Poly-1 within |x| = 700, where q^g underflows at g |x| > 708 in the vector loop
    ("poly1", dict(gamma=2.0, epsilon=1.7e308), [-400.0, -358.0, -480.0, 450.0]),
    ("poly1", dict(gamma=8.0, epsilon=1e290), [-100.0, -90.0]),
    ("poly1", dict(gamma=5.0, epsilon=1e250), [-150.0, -141.0]),
    ("poly1", dict(gamma=1.5, epsilon=1e300), [-489.0, -470.0, 480.0]),
    # varifocal just beyond where its far form holds (38 + log1p(gamma))
    ("varifocal", dict(gamma=18.0, alpha=1.0000001), [-37.01, -41.0, -45.0]),
    ("varifocal", dict(gamma=30.0, alpha=1.7e308), [-41.5, -45.0]),
    # (function family, parameters, logits): a factor above 1 (Poly-1's 1 + epsilon,
    # varifocal's alpha) times values of target 0 that underflow on the right side
    ("poly1", dict(gamma=0.0, epsilon=1e300), [-745.0, -720.0, -705.0, -710.5]),
    ("poly1", dict(gamma=0.5, epsilon=1e300), [-705.0, -745.0, -800.0, -900.0]),
    ("poly1", dict(gamma=1e-20, epsilon=1e250), [-745.0, -1000.0]),
    ("varifocal", dict(gamma=0.5, alpha=1e300), [-700.0, -600.0, -745.0, -900.0]),
    ("varifocal", dict(gamma=2.0, alpha=1e300), [-300.0, -248.0, -400.0, -478.0]),
    ("varifocal", dict(gamma=0.0, alpha=1e300), [-745.0, -710.0, -1000.0]),
    ("varifocal", dict(gamma=9.0, alpha=1.7e308), [-80.0, -100.0, -140.0]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, parameters, logits", LARGE_FACTOR_CASES)
def test_a_large_factor_brings_back_no_lost_digits(name, parameters, logits, dtype):
    """Poly-1 with epsilon 1e300 at x = -745 was 75% off and at gamma 0.5, x = -705, 0 for
    4e-160; varifocal with alpha 1e300 at gamma 2, x = -300, 0 for 5e-92: values below the
    double range times a factor that brings them back.  Within 2 ULP of mpmath now, loss,
    gradient and (float64) second derivative."""
    x = np.array(logits, dtype)
    # the right side: target 0 below 0, target 1 above (Poly-1)
    y = (x > 0).astype(dtype)
    options = dict(parameters)
    if name == "poly1":
        options["alpha"] = 0.25
        exact = [reference.poly1_mp(v, float(v > 0), parameters["gamma"], parameters["epsilon"])
                 for v in logits]
    else:
        exact = [reference.varifocal_mp(v, 0.0, parameters["gamma"], parameters["alpha"])
                 for v in logits]
    loss = getattr(focal, f"{name}_loss")(x, y, reduction="none", **options)
    grad, hess = getattr(focal, f"{name}_grad_hess")(x, y, **options)
    for i, v in enumerate(logits):
        what = f"{name} {parameters} x={v} {np.dtype(dtype).name}"
        assert ulp_error(loss[i], exact[i][0], dtype) <= 2, (what, "loss", loss[i], exact[i][0])
        assert ulp_error(grad[i], exact[i][1], dtype) <= 2, (what, "grad", grad[i], exact[i][1])
        if dtype == np.float64:
            assert ulp_error(hess[i], exact[i][2], dtype) <= 4, (what, "hess", hess[i], exact[i][2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("clip", [5e-324, 1e-320, 1e-310, 1e-300, 1e-281])
@pytest.mark.parametrize("gamma_neg", [4.0, 0.0, 1.0, 2.5])
def test_asymmetric_negatives_with_a_tiny_clip_far_out(clip, gamma_neg, dtype):
    """Beyond x = 700, u = (1 - p) + clip with 1 - p = e^-x and the clip both subnormal or
    near it: the gradient divided a subnormal w by u (clip 1e-320 at x = 745 was 75% off, at
    x = 720 2e4 ULP).  Loss and gradient within 2 ULP of mpmath, the second derivative
    within 4 (float64)."""
    logits = [700.5, 705.0, 715.0, 720.0, 740.0, 745.0, 750.0, 800.0, 1000.0, 1437.0, 1500.0]
    x = np.array(logits, dtype)
    y = np.zeros(len(logits), dtype)
    options = dict(gamma_pos=0.0, gamma_neg=gamma_neg, clip=clip)
    loss = focal.asymmetric_loss(x, y, reduction="none", **options)
    grad, hess = focal.asymmetric_grad_hess(x, y, **options)
    for i, v in enumerate(x):
        exact = reference.asymmetric_mp(float(v), 0, 0.0, gamma_neg, clip)
        what = f"clip {clip} gamma_neg {gamma_neg} x={v} {np.dtype(dtype).name}"
        assert ulp_error(loss[i], exact[0], dtype) <= 2, (what, "loss", loss[i], exact[0])
        assert ulp_error(grad[i], exact[1], dtype) <= 2, (what, "grad", grad[i], exact[1])
        if dtype == np.float64:
            assert ulp_error(hess[i], exact[2], dtype) <= 4, (what, "hess", hess[i], exact[2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_varifocal_with_a_large_alpha_is_never_nan(dtype):
    """Where alpha > 1 sends elements to the scalar path, the wrong side of target 0 keeps the
    vector loop's formula (the far form gave NaN at gamma 1e300, x = 100); a gradient that
    overflows is inf (alpha 1.7e308 at x = 2 gave NaN, also in a mean)."""
    x = np.array([37.5, 100.0, 500.0, 699.0, 2.0, -2.0, 0.0, 40.0, -40.0], dtype)
    for alpha in (1.0000001, 2.0, 1e10, 1.7e308):
        for gamma in (2.0, 1e50, 1e100, 1e300):
            for y in (np.zeros(len(x), dtype), np.ones(len(x), dtype),
                      np.full(len(x), 0.5, dtype)):
                loss, grad = focal.varifocal_loss_and_grad(x, y, alpha, gamma, reduction="none")
                _, hess = focal.varifocal_grad_hess(x, y, alpha, gamma)
                for values in (loss, grad, hess):
                    assert not np.isnan(values).any(), (alpha, gamma, y[0], values)
                if alpha < 1e300 and y[0] == 0 and dtype == np.float64:  # (alpha: target 0 only)
                    reference_loss = focal.varifocal_loss(x, y, 1.0, gamma, reduction="none")
                    np.testing.assert_allclose(loss, reference_loss * dtype(alpha), rtol=1e-6)
    grad = focal.varifocal_grad(np.array([2.0, 0.0, 0.0, 0.0], dtype), np.zeros(4, dtype),
                                1.7e308, 2.0)
    assert grad[0] == np.inf  # (the others, 5e307 each, are finite in float64 only)
    assert np.isfinite(grad[1:]).all() == (dtype == np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alpha", [1e300, 1.7e308, 2.0, 0.75])
def test_varifocal_second_derivative_of_target_0_beyond_700(alpha, dtype):
    """The wrong side of target 0 beyond |x| = 700 (x > 700): its second derivative,
    alpha q^g t (...) with t = e^-x, was scaled back from t 2^1000 before alpha applied, so
    alpha 1e300 gave 0 for 5e-135 at x = 1000 and 75% off at x = 745.  Against mpmath,
    unweighted and, for the large alphas, under a weight that takes it past float32's range
    (a small alpha's value is subnormal before the weight: the README's gap of values a weight
    brings up from below the normal range)."""
    x = np.array([701.0, 745.0, 800.0, 1000.0, 1400.0])
    y = np.zeros_like(x)
    for gamma in (0.0, 0.5, 2.0, 20.0):
        for weight in (1.0, 1e300) if alpha > 1e10 else (1.0,):
            w = np.full(x.shape, weight)
            _, hess = focal.varifocal_grad_hess(x.astype(dtype), y.astype(dtype), alpha, gamma,
                                                weights=w)
            for i in range(len(x)):
                exact = reference.varifocal_mp(float(x[i]), 0.0, gamma, alpha)[2] * mpmath.mpf(weight)
                where = (alpha, gamma, weight, float(x[i]), np.dtype(dtype).name)
                if abs(exact) > mpmath.mpf(float(np.finfo(dtype).max)) * (1 + mpmath.mpf(2) ** -30):
                    assert np.isinf(hess[i]) and (hess[i] > 0) == (exact > 0), (where, hess[i])
                else:
                    assert ulp_error(hess[i], exact, dtype) <= 4, (where, hess[i], float(exact))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("epsilon", [10.0, 100.0, 1000.0, -0.5])
@pytest.mark.parametrize("gamma", [0.0, 1e-8, 0.5, 2.0])
def test_poly1_second_derivative_near_zero(dtype, epsilon, gamma):
    # Near x = 0, 1 - 2p = -tanh(x / 2) is small and p, 1 - p near 1/2 keep
    # an absolute rounding of it, which a large epsilon multiplies: at gamma
    # 0, epsilon 1000, x = -0.001 the float64 value was 1,719 ULP off
    # (condition 3).  Within 4 ULP of (1 + the condition of the terms), the
    # suite's bound for second derivatives, over |x| from 1e-12 to 3.
    magnitudes = np.concatenate([np.logspace(-12, 0.5, 27), [0.1249, 0.1251, 0.25]])
    x = np.concatenate([-magnitudes, magnitudes]).astype(dtype)
    for target in (0.0, 1.0, 0.3, 0.5):
        hess = focal.poly1_grad_hess(x, np.full_like(x, target), 0.25, gamma, epsilon)[1]
        for xi, h in zip(x, hess):
            exact = reference.poly1_mp(float(xi), target, gamma, epsilon)[2]
            terms = _poly1_hess_terms(float(xi), target, gamma, epsilon)
            error = float(abs(mpmath.mpf(float(h)) - exact)) / spacing(abs(float(exact)), dtype)
            condition = float(terms / abs(exact))
            assert error <= 4.0 * (1.0 + condition), (float(xi), target, h, float(exact),
                                                       condition)


def _poly1_hess_terms(x, y, gamma, epsilon):
    """The size of the second derivative's terms, alpha_t q^g [g |g - 1| a^2
    r^2 C + g |a (1 - 2p)| r |C| + 2 g |a| r |dC| + w |1 + epsilon a (1 - 2p)|]
    with |1 + epsilon a (1 - 2p)| taken as 1 + |epsilon a (1 - 2p)| (the
    formula of sigmoid_focal.h; C = CE + epsilon q)."""
    with mpmath.workdps(60):
        x, y, g, e = (mpmath.mpf(v) for v in (x, y, gamma, epsilon))
        p = 1 / (1 + mpmath.exp(-x))
        one_minus_p = 1 / (1 + mpmath.exp(x))
        q = p * (1 - y) + one_minus_p * y
        a = 1 - 2 * y
        w = p * one_minus_p
        r = w / q
        ce = -(y * mpmath.log(p) + (1 - y) * mpmath.log(one_minus_p))
        c = ce + e * q
        d = (p - y) + e * a * w
        alpha_t = mpmath.mpf("0.25") * y + mpmath.mpf("0.75") * (1 - y)
        tanh = abs(one_minus_p - p)
        return alpha_t * q ** g * (g * abs(g - 1) * a * a * r * r * abs(c)
                                   + g * abs(a) * tanh * r * abs(c) + 2 * g * abs(a) * r * abs(d)
                                   + w * (1 + abs(e * a) * tanh))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("epsilon", [1.0, 0.5, 2.0, 1e10])
def test_poly1_second_derivative_at_gamma_zero_far_from_zero(dtype, epsilon):
    # At gamma 0 the second derivative is w (1 + epsilon a (1 - 2p)): with
    # 1 - 2p rounded near -1 or 1 the sum lost the smaller probability's
    # digits, and at epsilon 1 it cancelled to 0 (x = 80 of target 0: 0 for
    # 3.8e-70).  It is formed from min(p, 1 - p), held apart.
    x = np.array([-700.0, -300.0, -80.0, -20.0, -3.0, 3.0, 20.0, 80.0, 300.0, 700.0], dtype)
    for target in (0.0, 1.0):
        y = np.full_like(x, target)
        hess = focal.poly1_grad_hess(x, y, None, 0.0, epsilon)[1]
        for xi, h in zip(x, hess):
            with mpmath.workdps(800):   # the reference's own terms cancel to e^-2|x|
                exact = reference.poly1_mp(float(xi), target, 0.0, epsilon, alpha=None)[2]
            scale = max(abs(float(exact)), float(np.finfo(dtype).tiny))
            error = float(abs(mpmath.mpf(float(h)) - exact)) / spacing(scale, dtype)
            assert error <= 4.0, (xi, target, h, exact)

"""The focal loss's descendants (Poly-1, varifocal, ...): what the registry's matrices
do not reach.  Loss, gradient and second derivative against the mpmath twins
over logits of every magnitude (subnormal to 1e4, beyond the registry's
moderate grid) for hard and soft targets, the closed forms against mpmath's
differentiation of the definitions, the limits at +-inf, and no NaN for any
finite logit or accepted parameter.
"""
import mpmath
import numpy as np
import pytest

import focal
import reference
from reference import spacing, ulp_error

mpmath.mp.prec = 120

# name: (functions, full mpmath twin (loss, grad, hess), definition, parameter settings)
FAMILY = {
    "poly1": (
        (focal.poly1_loss, focal.poly1_grad_hess),
        lambda x, y, alpha, gamma, epsilon: reference.poly1_mp(x, y, gamma, epsilon, alpha),
        lambda x, y, alpha, gamma, epsilon: reference.poly1_definition_mp(x, y, gamma, epsilon,
                                                                          alpha),
        ({"alpha": 0.25, "gamma": 2.0, "epsilon": 1.0}, {"alpha": None, "gamma": 0.0, "epsilon": 1.0},
         {"alpha": 0.75, "gamma": 0.5, "epsilon": 3.0}, {"alpha": None, "gamma": 3.7, "epsilon": 0.5}),
    ),
    "varifocal": (
        (focal.varifocal_loss, focal.varifocal_grad_hess),
        lambda x, y, alpha, gamma: reference.varifocal_mp(x, y, gamma, alpha),
        lambda x, y, alpha, gamma: reference.varifocal_definition_mp(x, y, gamma, alpha),
        ({"alpha": 0.75, "gamma": 2.0}, {"alpha": 1.0, "gamma": 0.0},
         {"alpha": 0.5, "gamma": 0.5}, {"alpha": 2.5, "gamma": 3.7}),
    ),
}


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
    assert worst["loss"][0] <= 1.0, worst
    assert worst["grad"][0] <= 1.0, worst
    assert worst["hess"][0] <= 4.0, worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(FAMILY))
def test_soft_target_loss_every_magnitude(name, dtype):
    # a soft target's gradient p - y cancels where p ~ y (as the focal
    # loss's does); its loss does not.  The focal loss's own float64 loss of a
    # soft target is 1.08 ULP off at worst (its sum of two logs).
    worst = worst_errors(name, FAMILY[name][3][0], float(dtype(0.3)), dtype)
    assert worst["loss"][0] <= 1.5, worst


@pytest.mark.parametrize("name", list(FAMILY))
def test_closed_forms_are_the_derivatives_of_the_definition(name):
    _, mp_twin, definition, settings = FAMILY[name]
    for params in settings:
        for y in ("0", "1", "0.3"):
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
        for y in (0.0, 1.0, 0.5, 1e-300):
            t = np.full_like(finite, y)
            values = [loss_function(finite, t, **params, reduction="none"),
                      *grad_hess(finite, t, **params)]
            assert not any(np.isnan(v).any() for v in values), (params, y, values)
            assert np.isfinite(values[1]).all() and np.isfinite(values[2]).all()
        # x = +-inf: the limits of the formulas, exactly
        x = np.array([-np.inf, np.inf], dtype=dtype)
        for y in (0.0, 1.0):
            t = np.full_like(x, y)
            loss = loss_function(x, t, **params, reduction="none")
            grad, hess = grad_hess(x, t, **params)
            far = np.array([-1e4, 1e4])
            near_loss = [mp_twin(v, y, **params)[0] for v in far]
            near_grad = [float(mp_twin(v, y, **params)[1]) for v in far]
            expected_loss = [np.inf if value > 1 else 0.0 for value in near_loss]
            np.testing.assert_array_equal(loss, np.array(expected_loss, dtype=dtype))
            np.testing.assert_array_equal(grad, np.array(near_grad, dtype=dtype))
            np.testing.assert_array_equal(hess, np.zeros(2, dtype=dtype))


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


@pytest.mark.parametrize("module", ["focal._poly1", "focal._varifocal"])
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

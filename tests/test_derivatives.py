"""Derivatives against central differences of the loss itself.

For every reduction, the gradient returned by focal.grad must be the
derivative of the number returned by focal.loss, including the normalisers
(weights, ignored rows, positives); and grad_hess's second derivative must be
the derivative of its first.
"""
import numpy as np
import pytest

import focal

RNG = np.random.default_rng(20170807)


def central_difference(function, x, index, step=1e-3):
    """d function / d x[index] by the five-point central stencil (error O(h^4)).

    The loss varies on a scale of 1 whatever the logit, so the step is absolute."""
    h = step
    values = []
    for k in (2, 1, -1, -2):
        shifted = x.copy()
        shifted[index] += k * h
        values.append(function(shifted))
    return (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)


def numeric_gradient(function, x):
    """The gradient of a scalar function, or with an array-valued function the
    derivative of each output element with respect to its own input element."""
    gradient = np.empty_like(x)
    for index in np.ndindex(x.shape):
        def component(z, index=index):
            value = function(z)
            return value[index] if np.ndim(value) else value
        gradient[index] = central_difference(component, x, index)
    return gradient


def problems():
    x = RNG.normal(0.0, 3.0, size=(3, 4, 5))
    labels = RNG.integers(-1, 6, size=(3, 4))  # -1 ignored, 5 background
    soft = RNG.uniform(0.0, 1.0, size=(3, 4, 5))
    hard = (RNG.uniform(size=(3, 4, 5)) < 0.3).astype(np.float64)
    weights = RNG.uniform(0.1, 2.0, size=(1, 4, 5))
    yield "labels", x, labels, None
    yield "labels+weights", x, labels, weights
    yield "hard", x, hard, None
    yield "soft+weights", x, soft, weights


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "sum_over_positives"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.3])
@pytest.mark.parametrize("alpha", [None, 0.25, "per-class"])
def test_grad_is_the_derivative_of_the_reduced_loss(reduction, gamma, alpha):
    for name, x, targets, weights in problems():
        alpha_value = np.linspace(0.1, 0.9, x.shape[-1]) if alpha == "per-class" else alpha
        kwargs = dict(alpha=alpha_value, gamma=gamma, weights=weights)
        gradient = focal.grad(x, targets, reduction=reduction, **kwargs)
        numeric = numeric_gradient(
            lambda z: focal.loss(z, targets, reduction=reduction, **kwargs), x)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-10, err_msg=name)
        # loss_and_grad gives the same pair in one pass
        value, gradient_2 = focal.loss_and_grad(x, targets, reduction=reduction, **kwargs)
        np.testing.assert_array_equal(gradient_2, gradient)
        np.testing.assert_array_equal(value, focal.loss(x, targets, reduction=reduction, **kwargs))


@pytest.mark.parametrize("gamma", [0.0, 0.25, 1.0, 2.0, 4.5])
def test_hess_is_the_derivative_of_grad(gamma):
    for name, x, targets, weights in problems():
        gradient, hessian = focal.grad_hess(x, targets, alpha=0.25, gamma=gamma, weights=weights)
        np.testing.assert_array_equal(
            gradient, focal.grad(x, targets, 0.25, gamma, weights=weights, reduction="none"))
        numeric = numeric_gradient(
            lambda z: focal.grad_hess(z, targets, alpha=0.25, gamma=gamma, weights=weights)[0], x)
        np.testing.assert_allclose(hessian, numeric, rtol=1e-7, atol=1e-10, err_msg=name)


def test_hessian_can_be_negative():
    # Not convex for gamma > 0: confidently wrong positives have negative curvature.
    x = np.linspace(-10, 10, 201)
    _, hessian = focal.grad_hess(x, np.ones_like(x), alpha=None, gamma=2.0)
    assert (hessian[x < -3] < 0).all()
    assert (hessian[x > 0] > 0).all()
    # ...while gamma = 0 (cross-entropy) is convex everywhere
    _, hessian_ce = focal.grad_hess(x, np.ones_like(x), alpha=None, gamma=0.0)
    assert (hessian_ce > 0).all()


def test_small_gamma_derivatives_near_saturation():
    # gamma < 1 is where q^(gamma - 1) is infinite at saturation; the kernel
    # must still give finite derivatives that match differences.
    x = np.array([-60.0, -30.0, -12.0, 12.0, 30.0, 60.0])
    for gamma in (0.1, 0.5, 0.9):
        gradient, hessian = focal.grad_hess(x, np.ones_like(x), alpha=None, gamma=gamma)
        assert np.isfinite(gradient).all() and np.isfinite(hessian).all()
        numeric = numeric_gradient(
            lambda z: focal.loss(z, np.ones_like(z), None, gamma, reduction="none"), x)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-300)

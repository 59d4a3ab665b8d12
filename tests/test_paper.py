"""Facts from the paper (Lin et al. 2017) that the implementation must reproduce."""
import math

import numpy as np
import pytest

import focal


def _ratio_fl_over_ce(p_t, gamma=2.0):
    x = np.array([math.log(p_t / (1 - p_t))])  # logit with sigmoid(x) = p_t, target 1
    y = np.ones(1)
    fl = focal.loss(x, y, alpha=None, gamma=gamma, reduction="sum")
    ce = focal.loss(x, y, alpha=None, gamma=0.0, reduction="sum")
    return float(fl / ce)


def test_figure1_hundred_times_lower_at_0_9():
    assert _ratio_fl_over_ce(0.9) == pytest.approx(1 / 100, rel=1e-12)


def test_figure1_thousand_times_lower_near_0_968():
    assert _ratio_fl_over_ce(0.968) == pytest.approx(1 / 1000, rel=0.03)
    assert 1 / _ratio_fl_over_ce(0.968) == pytest.approx(977, rel=1e-3)  # (1 - 0.968)^-2


def test_figure1_at_most_4_times_lower_below_one_half():
    for p_t in np.linspace(0.01, 0.5, 50):
        assert _ratio_fl_over_ce(p_t) >= 0.25 * (1 - 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gamma_0_alpha_none_is_binary_cross_entropy(dtype):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 5, size=(50, 7)).astype(dtype)
    y = rng.uniform(size=(50, 7)).astype(dtype)
    y[:10] = np.round(y[:10])
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    bce = yd * np.logaddexp(0, -xd) + (1 - yd) * np.logaddexp(0, xd)
    bce_grad = (1 - yd) / (1 + np.exp(-xd)) - yd / (1 + np.exp(xd))  # p - y, no 1 - p cancellation
    rtol = 2e-7 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(focal.loss(x, y, None, 0.0, reduction="none"), bce, rtol=rtol)
    np.testing.assert_allclose(focal.loss(x, y, None, 0.0), bce.mean(), rtol=rtol)
    np.testing.assert_allclose(focal.grad(x, y, None, 0.0, reduction="none"), bce_grad,
                               rtol=rtol, atol=4 * float(np.finfo(dtype).eps))
    np.testing.assert_allclose(focal.grad(x, y, None, 0.0), bce_grad / x.size, rtol=rtol)


def test_alpha_weights_positives_and_negatives():
    x = np.array([[0.3, -0.7]])
    y = np.array([[1.0, 0.0]])
    plain = focal.loss(x, y, alpha=None, reduction="none")
    weighted = focal.loss(x, y, alpha=0.25, reduction="none")
    np.testing.assert_allclose(weighted, plain * [[0.25, 0.75]], rtol=1e-15)


def test_prior_bias():
    assert round(focal.prior_bias(0.01), 5) == -4.59512
    assert focal.prior_bias(0.5) == 0.0
    # the bias gives exactly the prior probability
    b = focal.prior_bias(0.01)
    assert 1 / (1 + math.exp(-b)) == pytest.approx(0.01, rel=1e-15)


def test_sum_over_positives_is_the_papers_normaliser():
    # ~100k anchors, a handful assigned to objects: the loss is summed and
    # divided by the number of anchors with a ground-truth box.
    rng = np.random.default_rng(0)
    x = rng.normal(focal.prior_bias(), 1.0, size=(1000, 80))
    labels = np.full(1000, 80)
    labels[:7] = rng.integers(0, 80, 7)
    labels[7:20] = -1  # between IoU 0.4 and 0.5: ignored
    total = focal.loss(x, labels, reduction="sum")
    assert focal.loss(x, labels, reduction="sum_over_positives") == pytest.approx(total / 7, rel=1e-15)

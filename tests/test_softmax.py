"""The multi-class (softmax) focal loss against its NumPy twin (tests/reference.py).

The twin is written from the definition, in float64, with the log-softmax
taken after subtracting the row maximum and 1 - p_c taken as the other
classes' share of the exponential sum (never 1 minus a rounded p_c).
A generated matrix of cases walks every shape, class axis, dtype, byte order,
memory layout, label dtype, target form, alpha form, gamma, weighting and
reduction; the gradient is checked against central differences of the
reduced loss; then the special facts (binary cross-entropy equivalence,
saturation, extreme spreads, out=, the prior bias) and every bad input.
"""
import itertools
import math
import zlib

import mpmath
import numpy as np
import pytest

import focal
from reference import result_dtype, softmax_mp, softmax_reference
from registry import SOFTMAX
from test_derivatives import numeric_gradient  # the five-point stencil, shared

RNG = np.random.default_rng(20171022)
FUNCTIONS = tuple(SOFTMAX.functions.values())   # softmax_loss, softmax_grad, softmax_loss_and_grad


def tolerance(dtype):
    return 1e-12 if result_dtype(dtype) == np.float64 else 2e-6


def assert_close(actual, expected, rtol, scale=None, err_msg=""):
    """Elementwise relative comparison, with an absolute floor of rtol * scale."""
    expected = np.asarray(expected, dtype=np.float64)
    actual_64 = np.asarray(actual, dtype=np.float64)
    if scale is None:
        scale = float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual_64, expected, rtol=rtol, atol=rtol * scale + 1e-300,
                               err_msg=err_msg)


# --------------------------------------------------------------------------
# inputs in any layout


def arrange(values, dtype, layout):
    """values cast to dtype, stored in the given layout (equal as arrays)."""
    v = np.asarray(values).astype(dtype)
    if layout == "C" or v.ndim == 0:
        result = v.copy()
    elif layout == "F":
        result = np.asfortranarray(v)
    elif layout == "strided":
        big = np.zeros(tuple(2 * n + 1 for n in v.shape), v.dtype)
        result = big[tuple(slice(1, None, 2) for _ in v.shape)]
        result[...] = v
    elif layout == "transposed":  # every axis reversed in memory
        result = np.ascontiguousarray(v.T).T
    elif layout == "reversed":  # negative strides on every axis
        result = v[(slice(None, None, -1),) * v.ndim].copy()[(slice(None, None, -1),) * v.ndim]
    elif layout == "misaligned":
        buffer = np.zeros(v.size * v.itemsize + 1, np.uint8)
        result = np.ndarray(v.shape, v.dtype, buffer=buffer, offset=1)
        result[...] = v
        assert v.size == 0 or v.itemsize == 1 or not result.flags.aligned
    else:
        raise ValueError(layout)
    assert result.shape == v.shape and result.dtype == v.dtype
    assert np.array_equal(result, v)
    return result


LOGIT_DTYPES = ("float64", "float32", "float16", ">f8", ">f4", "int64", "int8")
LAYOUTS = ("C", "F", "strided", "transposed", "reversed", "misaligned")
TARGETS = ("int64", "int32", "int8", "uint8", ">i8", ">i4", "int64-ignore", "one-hot",
           "smoothed", "soft")
ALPHAS = (None, 0.25, "per-class", "detectron")
GAMMAS = (0.0, 0.5, 1.0, 2.0, 3.3)
WEIGHTS = (None, "full", "broadcast")
SHAPE_AXES = (
    ((5,), 0), ((5,), -1),
    ((6, 4), 0), ((6, 4), 1), ((6, 4), -1), ((6, 4), -2),
    ((3, 4, 5), 0), ((3, 4, 5), 1), ((3, 4, 5), 2), ((3, 4, 5), -1),
    ((2, 3, 4, 3), 0), ((2, 3, 4, 3), 1), ((2, 3, 4, 3), 2), ((2, 3, 4, 3), -1),
    ((0, 5), -1), ((0, 5), 1), ((5, 0), 0), ((2, 0, 3), 0),
    ((4, 1), -1),
)


def matrix():
    cases = []
    for i, (shape, axis) in enumerate(SHAPE_AXES):
        for k in range(6):
            n = 6 * i + k
            cases.append(dict(
                shape=shape, axis=axis,
                dtype=LOGIT_DTYPES[n % len(LOGIT_DTYPES)],
                layout=LAYOUTS[(i + k) % len(LAYOUTS)],
                target=TARGETS[(3 * n + i) % len(TARGETS)],
                target_layout=LAYOUTS[(n + 2) % len(LAYOUTS)],
                alpha=ALPHAS[(n + i) % len(ALPHAS)],
                gamma=GAMMAS[(2 * n + i) % len(GAMMAS)],
                weights=WEIGHTS[(n + 2 * i) % len(WEIGHTS)],
            ))
    return cases


MATRIX = matrix()


def case_id(case):
    return "{shape}-ax{axis}-{dtype}-{layout}-{target}-{alpha}-g{gamma}-w{weights}".format(
        **{**case, "shape": "x".join(map(str, case["shape"])) or "scalar"})


def build(case, rng):
    """(logits, labels, kwargs) for one case of the matrix."""
    shape, axis = case["shape"], case["axis"]
    axis_ = axis % len(shape)
    num_classes = shape[axis_]
    row_shape = shape[:axis_] + shape[axis_ + 1:]
    values = rng.normal(0.0, 4.0, size=shape)
    if values.size:
        values.reshape(-1)[0] = 25.0  # one saturated row start
    dtype = np.dtype(case["dtype"])
    if dtype.kind == "i":
        values = np.clip(np.round(values), -100, 100)
    logits = arrange(values, dtype, case["layout"])

    target = case["target"]
    ignore_index = -100
    labels_int = rng.integers(0, num_classes, size=row_shape)
    if target in ("int64", "int32", "int8", ">i8", ">i4"):
        labels = labels_int
        if labels.size > 1:
            labels.reshape(-1)[1] = ignore_index
        labels = arrange(labels, target, case["target_layout"])
    elif target == "uint8":
        ignore_index = 255
        labels = labels_int
        if labels.size > 1:
            labels.reshape(-1)[-1] = 255
        labels = arrange(labels, np.uint8, case["target_layout"])
    elif target == "int64-ignore":
        ignore_index = -1
        labels = np.where(rng.uniform(size=row_shape) < 0.4, -1, labels_int)
        labels = arrange(labels, np.int64, case["target_layout"])
    else:
        one_hot = (labels_int[..., None] == np.arange(num_classes)).astype(np.float64)
        if target == "one-hot":
            dense, dense_dtype = one_hot, (np.float32 if case["gamma"] == 1.0 else np.int8)
        elif target == "smoothed":
            dense, dense_dtype = 0.9 * one_hot + 0.1 / num_classes, np.float64
        else:
            raw = rng.uniform(size=row_shape + (num_classes,))
            dense, dense_dtype = raw / raw.sum(axis=-1, keepdims=True), ">f8"
        labels = arrange(np.moveaxis(dense, -1, axis_), dense_dtype, case["target_layout"])

    alpha = case["alpha"]
    if alpha == "per-class":
        alpha = rng.uniform(0.1, 0.9, size=num_classes)
    elif alpha == "detectron":
        alpha = np.array([0.75] + [0.25] * (num_classes - 1))

    weights = case["weights"]
    if weights == "full":
        weights = rng.uniform(0.0, 2.0, size=row_shape)
        if weights.size > 2:
            weights.reshape(-1)[2] = 0.0
        weights = arrange(weights, np.float32 if case["gamma"] == 0.5 else np.float64, "F")
    elif weights == "broadcast":
        weights = rng.uniform(0.5, 2.0, size=(1,) + row_shape[1:]) if row_shape else np.float64(1.5)
    kwargs = dict(alpha=alpha, gamma=case["gamma"], axis=axis, weights=weights,
                  ignore_index=ignore_index)
    return logits, labels, kwargs


def test_matrix_covers_every_option():
    seen = {key: {str(case[key]) for case in MATRIX} for key in MATRIX[0]}
    assert seen["dtype"] == set(LOGIT_DTYPES)
    assert seen["layout"] == set(LAYOUTS)
    assert seen["target"] == set(TARGETS)
    assert seen["alpha"] == set(map(str, ALPHAS))
    assert seen["gamma"] == set(map(str, GAMMAS))
    assert seen["weights"] == set(map(str, WEIGHTS))
    assert len({(c["shape"], c["axis"]) for c in MATRIX}) == len(SHAPE_AXES)


@pytest.mark.parametrize("case", MATRIX, ids=case_id)
def test_matches_reference(case):
    rng = np.random.default_rng(zlib.crc32(case_id(case).encode()))
    logits, labels, kwargs = build(case, rng)
    dtype = result_dtype(logits.dtype)
    rtol = tolerance(logits.dtype)
    axis_ = case["axis"] % logits.ndim
    row_shape = logits.shape[:axis_] + logits.shape[axis_ + 1:]
    before = [np.array(a, copy=True) for a in (logits, labels, kwargs["weights"], kwargs["alpha"])]
    for reduction in ("none", "sum", "mean"):
        expected = softmax_reference(logits, labels, reduction=reduction, **kwargs)
        expected_loss, expected_grad = expected.loss, expected.grad
        loss = focal.softmax_loss(logits, labels, reduction=reduction, **kwargs)
        grad = focal.softmax_grad(logits, labels, reduction=reduction, **kwargs)
        loss_2, grad_2 = focal.softmax_loss_and_grad(logits, labels, reduction=reduction, **kwargs)
        message = f"{reduction}: {case_id(case)}"
        assert grad.dtype == dtype and grad.shape == logits.shape, message
        assert np.asarray(loss).dtype == dtype, message
        if reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.shape == row_shape, message
            assert_close(loss, expected_loss, rtol, err_msg=message)
        elif math.isnan(expected_loss):
            assert math.isnan(loss), message
        else:
            assert np.ndim(loss) == 0, message
            assert_close(loss, expected_loss, rtol, err_msg=message)
        assert_close(grad, expected_grad, rtol, err_msg=message)
        # the one-pass function gives the same numbers
        np.testing.assert_array_equal(grad_2, grad, err_msg=message)
        np.testing.assert_array_equal(loss_2, loss, err_msg=message)
        if np.ndim(labels) == logits.ndim - 1:
            ignored = np.asarray(labels) == kwargs["ignore_index"]
            assert not np.moveaxis(grad, axis_, -1)[ignored].any(), message
            if reduction == "none":
                assert not np.asarray(loss)[ignored].any(), message
    # nothing was written to an input
    for original, now in zip(before, (logits, labels, kwargs["weights"], kwargs["alpha"])):
        np.testing.assert_array_equal(np.asarray(now), original)


# --------------------------------------------------------------------------
# derivatives against central differences


def derivative_problems():
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 2.0, size=(3, 4, 5))  # classes on axis 1 (C = 4)
    labels = rng.integers(0, 4, size=(3, 5))
    labels[0, 1] = labels[2, 3] = -100
    smooth = np.moveaxis(0.85 * np.eye(4)[rng.integers(0, 4, size=(3, 5))] + 0.15 / 4, -1, 1)
    weights = rng.uniform(0.1, 2.0, size=(1, 5))
    yield "labels", x, labels, None
    yield "labels+weights", x, labels, weights
    yield "smoothed+weights", x, smooth, rng.uniform(0.0, 2.0, size=(3, 5))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.3])
@pytest.mark.parametrize("alpha", [None, 0.25, "per-class"])
def test_grad_is_the_derivative_of_the_reduced_loss(reduction, gamma, alpha):
    for name, x, labels, weights in derivative_problems():
        alpha_value = np.linspace(0.2, 0.8, 4) if alpha == "per-class" else alpha
        kwargs = dict(alpha=alpha_value, gamma=gamma, axis=1, weights=weights, reduction=reduction)
        gradient = focal.softmax_grad(x, labels, **kwargs)
        # with 'none' each row's loss depends on its own logits only: the
        # gradient is that of the sum of the row losses
        numeric = numeric_gradient(
            lambda z: float(np.sum(focal.softmax_loss(z, labels, **kwargs))), x)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-10, err_msg=name)


def test_grad_of_the_mean_counts_only_rows_not_ignored():
    x = RNG.normal(size=(6, 3))
    labels = np.array([0, -100, 2, -100, 1, 1])
    gradient = focal.softmax_grad(x, labels, reduction="mean")
    numeric = numeric_gradient(lambda z: float(focal.softmax_loss(z, labels)), x)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-10)
    # the mean is the sum over the 4 rows that count
    assert focal.softmax_loss(x, labels) == pytest.approx(
        focal.softmax_loss(x, labels, reduction="sum") / 4, rel=1e-15)


def test_all_rows_ignored_mean_is_nan_and_grad_zero():
    x = RNG.normal(size=(3, 4))
    labels = np.full(3, -100)
    assert math.isnan(focal.softmax_loss(x, labels))
    assert focal.softmax_loss(x, labels, reduction="sum") == 0.0
    np.testing.assert_array_equal(focal.softmax_grad(x, labels), np.zeros_like(x))
    np.testing.assert_array_equal(focal.softmax_loss(x, labels, reduction="none"), np.zeros(3))


def test_empty_rows():
    for x, labels, axis in ((np.zeros((0, 5)), np.zeros(0, int), -1),
                            (np.zeros((5, 0)), np.zeros(0, int), 0),
                            (np.zeros((0, 5), np.float32), np.zeros((0, 5)), -1)):
        assert math.isnan(focal.softmax_loss(x, labels, axis=axis))
        assert focal.softmax_loss(x, labels, axis=axis, reduction="sum") == 0.0
        assert focal.softmax_loss(x, labels, axis=axis, reduction="none").shape == (0,)
        grad = focal.softmax_grad(x, labels, axis=axis)
        assert grad.shape == x.shape and grad.dtype == x.dtype


# --------------------------------------------------------------------------
# facts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_classes_gamma_0_is_binary_cross_entropy(dtype):
    # softmax over (z0, z1) is the sigmoid of z1 - z0: with gamma 0 and no alpha
    # the loss is the binary cross-entropy of d = z1 - z0 with target [label == 1]
    z1 = np.concatenate([np.linspace(-40, 40, 81), RNG.normal(0, 5, 40)]).astype(dtype)
    logits = np.stack([np.zeros_like(z1), z1], axis=1)
    labels = RNG.integers(0, 2, size=z1.shape)
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    loss, grad = focal.softmax_loss_and_grad(logits, labels, None, 0.0, reduction="none")
    bce = focal.loss(z1, labels.astype(dtype), alpha=None, gamma=0.0, reduction="none")
    bce_grad = focal.grad(z1, labels.astype(dtype), alpha=None, gamma=0.0, reduction="none")
    np.testing.assert_allclose(loss, bce, rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(grad[:, 1], bce_grad, rtol=rtol, atol=1e-300)
    np.testing.assert_array_equal(grad[:, 0], -grad[:, 1])
    # and the reduced forms: the mean over rows of both
    np.testing.assert_allclose(focal.softmax_loss(logits, labels, gamma=0.0),
                               focal.loss(z1, labels.astype(dtype), None, 0.0), rtol=rtol)
    # shifting both logits changes nothing (shift invariance)
    shifted = logits + dtype(3.0)
    np.testing.assert_allclose(focal.softmax_loss(shifted, labels, gamma=0.0, reduction="none"),
                               loss, rtol=rtol * 100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 4.0])
def test_row_gradients_sum_to_zero(dtype, gamma):
    x = RNG.normal(0, 6, size=(50, 7)).astype(dtype)
    labels = RNG.integers(0, 7, size=50)
    for target in (labels, 0.8 * np.eye(7)[labels] + 0.2 / 7):
        grad = focal.softmax_grad(x, target, gamma=gamma, alpha=np.linspace(0.1, 1, 7),
                                  reduction="sum").astype(np.float64)
        eps = np.finfo(dtype).eps
        assert np.all(np.abs(grad.sum(axis=1)) <= 8 * eps * np.abs(grad).sum(axis=1))
        assert np.abs(grad).sum() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.5, 0.9, 1.0, 2.0])
def test_small_gamma_and_saturated_rows_give_finite_gradients(dtype, gamma):
    x = np.array([[60.0, 0.0, -5.0], [800.0, 0.0, -5.0], [0.0, 800.0, 3.0],
                  [12.0, 0.0, -3.0], [30.0, 30.0, -30.0], [5.0, 5.0, 5.0]], dtype=dtype)
    for labels in (np.zeros(6, int), np.array([1, 1, 1, 1, 2, 0])):
        loss, grad = focal.softmax_loss_and_grad(x, labels, gamma=gamma, reduction="none")
        assert np.isfinite(loss).all() and np.isfinite(grad).all(), (loss, grad)
        assert (loss >= 0).all()
        # each row's gradient pushes the true class up and no other class up
        rows = np.arange(6)
        assert (grad[rows, labels] <= 0).all()
        others = np.ones_like(grad, dtype=bool)
        others[rows, labels] = False
        assert (grad[others] >= 0).all()
    # moderately saturated rows in float64 match central differences
    if dtype == np.float64:
        x_moderate = np.array([[12.0, 0.0, -3.0], [-12.0, 0.0, 3.0], [20.0, 1.0, 0.0]])
        labels = np.array([0, 2, 0])
        gradient = focal.softmax_grad(x_moderate, labels, gamma=gamma, reduction="none")
        # row by row: each row's loss is tiny, a sum would drown it in rounding
        for i in range(3):
            numeric = numeric_gradient(
                lambda z: float(focal.softmax_loss(z, labels[i], gamma=gamma)), x_moderate[i])
            np.testing.assert_allclose(gradient[i], numeric, rtol=1e-7, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_extreme_spreads_are_finite_and_right(dtype, gamma):
    rows = np.array([[0.0, 3000.0, -5000.0], [-4000.0, 4000.0, 3990.0], [1000.0, -1000.0, 999.5],
                     [2.0, 1.0, -3000.0], [1e4, -1e4, 0.0], [-700.0, 0.0, 40.0]], dtype=dtype)
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    tiny = float(np.finfo(dtype).smallest_subnormal)  # results may underflow
    for label in range(3):
        labels = np.full(len(rows), label)
        loss, grad = focal.softmax_loss_and_grad(rows, labels, gamma=gamma, reduction="none")
        assert np.isfinite(loss).all() and np.isfinite(grad).all()
        for i, row in enumerate(rows):
            exact_loss, exact_grad, _ = softmax_mp(row, np.eye(3)[label], gamma)
            assert abs(float(loss[i]) - float(exact_loss)) <= rtol * float(exact_loss) + tiny, (
                row, label, loss[i], exact_loss)
            scale = max(abs(float(v)) for v in exact_grad)
            np.testing.assert_allclose(grad[i].astype(float), [float(v) for v in exact_grad],
                                       rtol=rtol, atol=rtol * scale * 1e-3 + tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_logits_of_any_size_give_no_nan(dtype):
    # "any spread of logits is exact: nothing overflows" (the documentation)
    big = float(np.finfo(dtype).max)
    rows = np.array([[0.0, big, -big], [big, big / 2, 0.0], [-big, -big, 0.0],
                     [big, -big, big]], dtype=dtype)
    for label in range(3):
        loss, grad = focal.softmax_loss_and_grad(rows, np.full(4, label), reduction="none")
        assert not np.isnan(loss).any(), (dtype, label, loss)
        assert not np.isnan(grad).any(), (dtype, label, grad)
        assert (loss >= 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_minus_infinity_masks_a_class(dtype, gamma):
    # A logit of -inf (the usual way to mask a class) is a class of probability 0:
    # the same loss and gradient as without it, and zero gradient for it.
    x = RNG.normal(0, 2, size=(5, 4)).astype(dtype)
    labels = np.array([0, 1, 2, 0, 1])
    masked = np.concatenate([x, np.full((5, 1), -np.inf, dtype)], axis=1)
    loss, grad = focal.softmax_loss_and_grad(masked, labels, gamma=gamma, reduction="none")
    loss_ref, grad_ref = focal.softmax_loss_and_grad(x, labels, gamma=gamma, reduction="none")
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(loss, loss_ref, rtol=rtol)
    np.testing.assert_allclose(grad[:, :4], grad_ref, rtol=rtol, atol=1e-300)
    np.testing.assert_array_equal(grad[:, 4], 0.0)
    # the true class at -inf: infinite loss, slope -1 on it, +p_j on the others
    loss, grad = focal.softmax_loss_and_grad(masked, np.full(5, 4), gamma=gamma, reduction="none")
    np.testing.assert_array_equal(loss, np.inf)
    np.testing.assert_array_equal(grad[:, 4], -1.0)
    p = np.exp(x - x.max(axis=1, keepdims=True)).astype(np.float64)
    np.testing.assert_allclose(grad[:, :4], p / p.sum(axis=1, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 9.0])
def test_a_class_weighed_zero_adds_nothing_at_an_infinite_logit(dtype, gamma):
    # The true class's term alpha_c (1 - p_c)^gamma (-log p_c) with alpha_c = 0
    # is 0 at any logit, as its gradient is: at z_c = -inf (or another class at
    # +inf) it was inf, and so the row's mean (review 84).  Per-class and
    # scalar alpha, short rows and rows longer than a vector block, every
    # reduction; the same values as a weight of 0 on that row.
    for classes in (3, 40):
        x = RNG.normal(0, 2, size=(4, classes)).astype(dtype)
        x[0, 0] = -np.inf
        x[1, 1] = np.inf
        labels = np.array([0, 0, 1, 2])
        alpha = np.ones(classes)
        alpha[0] = 0.0
        loss, grad = focal.softmax_loss_and_grad(x, labels, alpha, gamma, reduction="none")
        assert loss[0] == 0.0 and loss[1] == 0.0, (classes, loss)
        assert np.isfinite(loss).all() and np.isfinite(grad).all(), (classes, loss)
        weights = np.array([0.0, 0.0, 1.0, 1.0])
        unmasked = focal.softmax_loss(x, labels, alpha, gamma, reduction="none", weights=weights)
        np.testing.assert_array_equal(loss, unmasked)
        for reduction in ("mean", "sum"):
            value = focal.softmax_loss(x, labels, alpha, gamma, reduction=reduction)
            expected = loss.astype(np.float64).sum() / (4.0 if reduction == "mean" else 1.0)
            assert np.isclose(value, expected, rtol=1e-6), (reduction, value, expected)
        assert focal.softmax_loss(x[:1], labels[:1], 0.0, gamma, reduction="none")[0] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 8.0, 9.0, 50.0])
def test_classes_tied_at_an_infinite_maximum_share_the_row_alike(dtype, gamma):
    """k classes tied at an infinite maximum (two +inf, every class +inf or
    -inf) have p = 1/k each in the limit, the others 0: each tied class as
    the label gives (1 - 1/k)^gamma log k, a gradient -G (1 - p) on itself,
    p G on the other tied classes and 0 elsewhere, G = (1 - p)^gamma
    (gamma h + 1), h = p log k / (1 - p); dense targets split evenly between
    the tied classes give the same loss and a gradient of 0 by symmetry.
    (Once the second tied class of float32 rows at gamma > 8 took z_c - m =
    inf - inf for its E_c and gave a loss of 0.)"""
    inf = np.inf
    for row in ([inf, inf, 0.0], [0.0, inf, 5.0, inf], [inf, inf, inf], [-inf, -inf, -inf]):
        x = np.array([row], dtype)
        tied = [j for j, z in enumerate(row) if z == max(row)]
        k = len(tied)
        with mpmath.workdps(40):
            p = mpmath.mpf(1) / k
            q = 1 - p
            log_k = mpmath.log(k)
            loss_exact = float(q ** gamma * log_k)
            g_exact = q ** gamma * (gamma * p * log_k / q + 1)
            tied_slope, label_slope = float(p * g_exact), float(-g_exact * q)
        for label in tied:
            loss, grad = focal.softmax_loss_and_grad(x, np.array([label]), gamma=gamma,
                                                     reduction="none")
            expected = np.zeros(len(row))
            expected[tied] = tied_slope
            expected[label] = label_slope
            assert abs(loss[0] - loss_exact) <= 2 * np.spacing(dtype(loss_exact)), (row, label)
            np.testing.assert_allclose(grad[0], expected, rtol=4 * np.finfo(dtype).eps, atol=0)
        even = np.zeros((1, len(row)), dtype)
        even[0, tied] = 1 / k
        loss, grad = focal.softmax_loss_and_grad(x, even, gamma=gamma, reduction="none")
        assert abs(loss[0] - loss_exact) <= 4 * np.spacing(dtype(loss_exact)), row
        # (a difference of terms near g_exact / k: zero to their rounding)
        assert np.abs(grad[0]).max() <= 8 * np.finfo(dtype).eps * float(g_exact), (row, grad)


def _float64_rows_with_every_kind_of_maximum():
    """Rows whose maximum is taken every way: NaN anywhere (first class
    included), +-inf, ties (zeros of both signs too), every class -inf, short
    rows of every length up to past a vector, and rows of 5,000 classes, read
    in pieces of 2,048, with their maximum tied across pieces."""
    rng = np.random.default_rng(81)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 745.0]
    rows = []
    for n in (2, 3, 7, 8, 9, 16, 17, 81):
        for k in range(30):
            row = rng.normal(0.0, [0.01, 1.0, 30.0, 300.0][k % 4], n)
            for j in rng.integers(0, n, k % 3):
                row[j] = specials[rng.integers(len(specials))]
            if k % 5 == 1:
                row[:] = specials[k % len(specials)]
            if k % 7 == 2 and not np.isnan(row).all():
                row[rng.integers(n)] = np.nanmax(row)
            rows.append(row)
    long_rows = rng.normal(0.0, 3.0, (6, 5000))
    long_rows[0, [100, 3000]] = 50.0          # a tie across pieces
    long_rows[1, 4000] = np.nan               # NaN in the last piece
    long_rows[2, 0] = np.nan                  # NaN first
    long_rows[3] = -np.inf
    long_rows[3, [2500, 2600]] = [0.0, -0.0]  # zeros of both signs, the only finite logits
    long_rows[4] = np.minimum(long_rows[4], 0.0)
    long_rows[4, [10, 2100]] = [-0.0, 0.0]
    return rows, long_rows


def _general_rows_results(dtype, gamma):
    """The bits of the general rows' results (loss, gradient, hessian) on
    single rows of every kind of maximum and on a batch of 3,100 rows, which
    the threads share in chunks: class indices (float64; float32 takes the
    vectorised rows but for the hessian), dense targets one-hot,
    label-smoothed and sparse, a per-class alpha with zeros."""
    rows, long_rows = _float64_rows_with_every_kind_of_maximum()
    rng = np.random.default_rng(7)
    result = []
    for row in [*rows, *long_rows]:
        with np.errstate(over="ignore"):  # 1e308 is inf in float32
            x = row[None, :].astype(dtype)
        label = np.array([rng.integers(len(row))])
        one_hot = (np.arange(len(row)) == label[0])[None, :].astype(dtype)
        smoothed = np.full(x.shape, 0.1 / len(row), dtype)
        smoothed[0, label] += 0.9
        sparse = rng.dirichlet(np.ones(len(row)))[None, :] * (rng.random(x.shape) < .5)
        alpha = rng.random(len(row)) * (rng.random(len(row)) < .8)
        targets = [one_hot, smoothed, sparse.astype(dtype)] + ([label] if dtype == np.float64 else [])
        for target in targets:
            for class_alpha in (None, alpha):
                loss, grad = focal.softmax_loss_and_grad(x, target, class_alpha, gamma,
                                                         reduction="none")
                result += [loss.tobytes(), grad.tobytes()]
        result.append(focal.softmax_grad_hess(x, label, gamma=gamma)[1].tobytes())
    batch = np.concatenate([rng.normal(0.0, 3.0, (3000, 81)), rng.normal(0.0, 300.0, (100, 81))])
    batch[:50, 7] = 745.0
    batch[50:60] = 0.0
    batch = batch.astype(dtype)
    batch_labels = rng.integers(0, 81, len(batch))
    for target in (batch_labels, rng.dirichlet(np.ones(81), len(batch)).astype(dtype)):
        loss, grad = focal.softmax_loss_and_grad(batch, target, gamma=gamma, reduction="none")
        result += [loss.tobytes(), grad.tobytes()]
    result.append(focal.softmax_grad_hess(batch[:500], batch_labels[:500], gamma=gamma)[1].tobytes())
    return result


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7, 50.0])
def test_general_rows_same_bits_at_every_level_and_thread_count(dtype, gamma):
    """The general rows' loops (maxima, exponentials, dense targets' class
    terms, gradient, hessian) run in kernels compiled for each instruction set
    (no fused operation in them, but the accurate exponentials' above gamma 8,
    which round once anywhere), and the float64 rows themselves in a copy
    built for fused multiply-adds at AVX2 and AVX-512 (whose fma of an exact
    product rounds once as libm's does): every level, and any number of threads, gives
    the same bits (class indices without the hessian take the float32
    vectorised rows, whose baseline may differ in a last bit:
    test_softmax_vectorised.py)."""
    from focal import _core

    previous_level, previous_threads = _core.simd_level(), focal.get_num_threads()
    results = []
    try:
        for level in _core.supported_simd_levels():
            _core.set_simd_level(level)
            for threads in (1, 3):
                focal.set_num_threads(threads)
                results.append(_general_rows_results(dtype, gamma))
    finally:
        _core.set_simd_level(previous_level)
        focal.set_num_threads(previous_threads)
    assert all(result == results[0] for result in results)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
# (0, 1 and 2: the constants the dense rows' loops are compiled for; 3 an
# integer they take as it comes; 3.7 and 50 the other powers)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.0, 3.7, 50.0])
def test_general_rows_kernels_give_the_bits_of_the_scalar_code(dtype, gamma):
    """The general rows' kernels (and the float64 rows' copy for fused
    multiply-adds) against the scalar code that builds without them run
    (another compiler than GCC or Clang), at the best level: the
    same bits, so the kernels change no result, for every kind of maximum,
    target form and alpha."""
    from focal import _core

    try:
        _core.set_softmax_row_kernels(False)
        scalar = _general_rows_results(dtype, gamma)
    finally:
        _core.set_softmax_row_kernels(True)
    kernels = _general_rows_results(dtype, gamma)
    assert len(kernels) == len(scalar)
    differ = [k for k, (a, b) in enumerate(zip(kernels, scalar)) if a != b]
    assert differ == []


def test_float64_row_maximum_with_ties_and_nan():
    """The row's maximum, as the loss shows it (rest = S - 1 leaves out the
    E_j of one class at the maximum, which must be 1): ties in one row and
    across the pieces of a long row, either tied class the label, give the
    exact loss; a NaN first, inside or last in a row read in pieces gives a
    NaN row."""
    row = np.array([[1.0, 3.0, -2.0, 3.0]])
    exact = -math.log(math.exp(3.0) / (2 * math.exp(3.0) + math.exp(1.0) + math.exp(-2.0)))
    p = math.exp(-exact)
    for label in (1, 3):
        loss = focal.softmax_loss(row, np.array([label]), gamma=2.0, reduction="none")
        assert abs(loss[0] - (1 - p) ** 2 * exact) <= 4 * np.spacing((1 - p) ** 2 * exact)
    long_row = np.full((1, 5000), -1.0)
    long_row[0, [100, 3000]] = 2.0
    s = 2 * math.exp(2.0) + 4998 * math.exp(-1.0)
    for label in (100, 3000):
        loss = focal.softmax_loss(long_row, np.array([label]), gamma=0.0, reduction="none")
        assert abs(loss[0] - math.log(s / math.exp(2.0))) <= 4 * np.spacing(loss[0])
    for nan_at in (0, 2, 4999):
        with_nan = long_row.copy()
        with_nan[0, nan_at] = np.nan
        loss, grad = focal.softmax_loss_and_grad(with_nan, np.array([100]), reduction="none")
        assert np.isnan(loss).all() and np.isnan(grad).all()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nan_logit_gives_nan_row(dtype):
    x = np.array([[np.nan, 0.0, 1.0], [0.0, 1.0, 2.0]], dtype=dtype)
    labels = np.array([1, 2])
    loss, grad = focal.softmax_loss_and_grad(x, labels, reduction="none")
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()
    assert np.isfinite(loss[1]) and np.isfinite(grad[1]).all()
    assert math.isnan(focal.softmax_loss(x, labels, reduction="sum"))
    # a zero weight masks it
    assert focal.softmax_loss(x, labels, weights=[0.0, 1.0], reduction="sum") == loss[1]


def test_float16_is_computed_in_float32():
    x16 = RNG.normal(0, 5, size=(20, 6)).astype(np.float16)
    labels = RNG.integers(0, 6, size=20)
    loss, grad = focal.softmax_loss_and_grad(x16, labels, reduction="none")
    assert loss.dtype == grad.dtype == np.float32
    loss32, grad32 = focal.softmax_loss_and_grad(x16.astype(np.float32), labels, reduction="none")
    np.testing.assert_array_equal(loss, loss32)
    np.testing.assert_array_equal(grad, grad32)


def test_alpha_forms():
    x = RNG.normal(0, 2, size=(10, 4))
    labels = RNG.integers(0, 4, size=10)
    plain = focal.softmax_loss(x, labels, reduction="none")
    np.testing.assert_allclose(focal.softmax_loss(x, labels, 0.3, reduction="none"), 0.3 * plain,
                               rtol=1e-15)
    np.testing.assert_array_equal(focal.softmax_loss(x, labels, 1.0, reduction="none"), plain)
    np.testing.assert_array_equal(focal.softmax_loss(x, labels, 0.0, reduction="none"), 0.0)
    per_class = np.array([0.1, 0.4, 0.7, 1.0])
    np.testing.assert_allclose(focal.softmax_loss(x, labels, per_class, reduction="none"),
                               per_class[labels] * plain, rtol=1e-15)
    # Detectron's [1 - a, a, ..., a]: background rows weighted 1 - a
    detectron = [0.75, 0.25, 0.25, 0.25]
    np.testing.assert_allclose(
        focal.softmax_loss(x, labels, detectron, reduction="none"),
        np.where(labels == 0, 0.75, 0.25) * plain, rtol=1e-15)
    # alpha given as a list or a float32 array works the same
    np.testing.assert_array_equal(focal.softmax_loss(x, labels, list(per_class), reduction="none"),
                                  focal.softmax_loss(x, labels, per_class, reduction="none"))


def test_dense_one_hot_equals_class_indices():
    x = RNG.normal(0, 3, size=(4, 6, 5))
    labels = RNG.integers(0, 6, size=(4, 5))
    one_hot = np.moveaxis(np.eye(6)[labels], -1, 1)
    for gamma in (0.0, 2.0):
        for reduction in ("none", "sum", "mean"):
            a = focal.softmax_loss_and_grad(x, labels, 0.5, gamma, axis=1, reduction=reduction)
            b = focal.softmax_loss_and_grad(x, one_hot, 0.5, gamma, axis=1, reduction=reduction)
            np.testing.assert_allclose(a[0], b[0], rtol=1e-15)
            np.testing.assert_allclose(a[1], b[1], rtol=1e-15, atol=1e-300)


def test_gamma_reduces_loss_of_easy_rows():
    # the paper's motivation: well-classified rows lose most of their weight
    x = np.array([[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    labels = np.zeros(3, int)
    ce = focal.softmax_loss(x, labels, gamma=0.0, reduction="none")
    fl = focal.softmax_loss(x, labels, gamma=2.0, reduction="none")
    p = np.exp(x[:, 0]) / np.exp(x).sum(axis=1)
    np.testing.assert_allclose(fl / ce, (1 - p) ** 2, rtol=1e-14)
    assert fl[0] / ce[0] < 0.01 and fl[2] / ce[2] > 0.7


# --------------------------------------------------------------------------
# out= and inputs


def test_out_receives_the_results():
    x = RNG.normal(size=(5, 3, 4))
    labels = RNG.integers(0, 3, size=(5, 4))
    loss_ref, grad_ref = focal.softmax_loss_and_grad(x, labels, axis=1, reduction="none")
    out = np.full((5, 4), np.nan)
    assert focal.softmax_loss(x, labels, axis=1, reduction="none", out=out) is out
    np.testing.assert_array_equal(out, loss_ref)
    out = np.full(x.shape, np.nan)
    assert focal.softmax_grad(x, labels, axis=1, reduction="none", out=out) is out
    np.testing.assert_array_equal(out, grad_ref)
    out = np.full(x.shape, np.nan)
    loss, grad = focal.softmax_loss_and_grad(x, labels, axis=1, reduction="none", out=out)
    assert grad is out
    np.testing.assert_array_equal(out, grad_ref)
    np.testing.assert_array_equal(loss, loss_ref)
    # a transposed view of another array, for the gradient and the loss
    base = np.full(x.shape[::-1], np.nan)
    view = base.T
    assert focal.softmax_grad(x, labels, axis=1, reduction="none", out=view) is view
    np.testing.assert_array_equal(base.T, grad_ref)
    base = np.full((4, 5), np.nan)
    view = base.T
    assert focal.softmax_loss(x, labels, axis=1, reduction="none", out=view) is view
    np.testing.assert_array_equal(base.T, loss_ref)
    # float32 results into a float32 out, from float16 logits
    out32 = np.empty((5, 3, 4), np.float32)
    focal.softmax_grad(x.astype(np.float16), labels, axis=1, out=out32)
    np.testing.assert_array_equal(out32, focal.softmax_grad(x.astype(np.float16), labels, axis=1))


@pytest.mark.parametrize("layout", ["C", "F", "transposed", "strided"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_out_is_logits_in_place(layout, axis, reduction):
    values = RNG.normal(0, 3, size=(4, 5, 6))
    x = arrange(values, np.float64, layout)
    row_shape = tuple(n for i, n in enumerate(x.shape) if i != axis % 3)
    labels = RNG.integers(0, x.shape[axis], size=row_shape)
    labels.reshape(-1)[0] = -100
    weights = RNG.uniform(0.5, 1.5, size=row_shape)
    expected = focal.softmax_grad(x, labels, axis=axis, reduction=reduction, weights=weights)
    result = focal.softmax_grad(x, labels, axis=axis, reduction=reduction, weights=weights, out=x)
    assert result is x
    np.testing.assert_array_equal(x, expected)
    # loss_and_grad in place too, float32
    x32 = arrange(values, np.float32, layout)
    expected_loss, expected_grad = focal.softmax_loss_and_grad(x32, labels, axis=axis)
    loss, grad = focal.softmax_loss_and_grad(x32, labels, axis=axis, out=x32)
    assert grad is x32
    np.testing.assert_array_equal(x32, expected_grad)
    assert loss == expected_loss


def test_out_overlapping_the_logits_in_another_layout():
    x = RNG.normal(size=(4, 4))
    labels = np.array([0, 1, 2, 3])
    expected = focal.softmax_grad(x, labels)
    y = x.copy()
    focal.softmax_grad(y, labels, out=y.T, axis=-1)
    np.testing.assert_array_equal(y.T, expected)
    # the loss written into a column of the logits
    y = x.copy()
    expected_loss = focal.softmax_loss(x, labels, reduction="none")
    focal.softmax_loss(y, labels, reduction="none", out=y[:, 0])
    np.testing.assert_array_equal(y[:, 0], expected_loss)


def test_out_is_logits_and_a_bad_label_leaves_logits_unchanged():
    x = RNG.normal(size=(6, 3))
    original = x.copy()
    labels = np.array([0, 1, 2, 0, 1, 3])  # the last one is out of range
    with pytest.raises(ValueError, match="^labels"):
        focal.softmax_grad(x, labels, out=x)
    np.testing.assert_array_equal(x, original)
    with pytest.raises(ValueError, match="^weights"):
        focal.softmax_grad(x, labels[:5].tolist() + [0], weights=[1, 1, 1, 1, 1, -1.0], out=x)
    np.testing.assert_array_equal(x, original)


def test_inputs_are_unchanged():
    x = arrange(RNG.normal(size=(3, 5, 4)), ">f4", "F")
    labels = arrange(RNG.integers(0, 5, size=(3, 4)), ">i4", "strided")
    dense = np.moveaxis(np.eye(5)[RNG.integers(0, 5, size=(3, 4))] * 0.9 + 0.02, -1, 1)
    weights = RNG.uniform(size=(3, 1))
    alpha = np.linspace(0.1, 0.9, 5)
    copies = [a.copy() for a in (x, labels, dense, weights, alpha)]
    flags = [a.flags.writeable for a in (x, labels, dense, weights, alpha)]
    for target in (labels, dense):
        for function in FUNCTIONS:
            function(x, target, alpha, 2.0, axis=1, weights=weights, reduction="none")
    for array, copy, flag in zip((x, labels, dense, weights, alpha), copies, flags):
        np.testing.assert_array_equal(array, copy)
        assert array.dtype == copy.dtype and array.flags.writeable == flag


def test_read_only_inputs_are_accepted():
    x = RNG.normal(size=(4, 3))
    labels = np.array([0, 1, 2, 1])
    expected = focal.softmax_loss_and_grad(x, labels)
    for a in (x, labels):
        a.flags.writeable = False
    loss, grad = focal.softmax_loss_and_grad(x, labels)
    assert loss == expected[0]
    np.testing.assert_array_equal(grad, expected[1])


def test_one_dimensional_logits_are_a_single_row():
    x = np.array([1.0, 2.0, 3.0])
    loss = focal.softmax_loss(x, 2, reduction="none")
    assert isinstance(loss, np.ndarray) and loss.shape == ()
    assert focal.softmax_loss(x, np.int8(2)) == loss
    assert focal.softmax_loss(x[None], [2]) == loss
    np.testing.assert_array_equal(focal.softmax_grad(x, 2), focal.softmax_grad(x[None], [2])[0])
    # float16 / int8 logits keep float32, int64 logits give float64
    assert focal.softmax_loss(x.astype(np.int8), 2).dtype == np.float32
    assert focal.softmax_loss(x.astype(np.int64), 2).dtype == np.float64


# --------------------------------------------------------------------------
# the prior bias


def test_softmax_prior_bias_facts():
    b = focal.softmax_prior_bias(81)
    assert b.dtype == np.float64 and b.shape == (81,)
    p = np.exp(b - b.max())
    p /= p.sum()
    assert p[0] == pytest.approx(0.99, rel=1e-14)
    np.testing.assert_allclose(p[1:], 0.01 / 80, rtol=1e-13)
    # the paper's form: background log((K - 1)(1 - pi) / pi), others 0
    assert b[0] == pytest.approx(math.log(80 * 0.99 / 0.01), rel=1e-15)
    np.testing.assert_array_equal(b[1:], 0.0)
    for k, pi in ((2, 0.5), (2, 0.01), (3, 1e-6), (1000, 0.3), (5, 0.999)):
        b = focal.softmax_prior_bias(k, pi)
        with mpmath.workprec(120):
            e = [mpmath.exp(mpmath.mpf(float(v))) for v in b]
            total = mpmath.fsum(e)
            # an error of a few 1e-16 in b[0] moves p[0] by that much
            # relative to 1 - p[0] <= 1
            p0, p1 = e[0] / total, e[1] / total
            assert abs(p0 / (1 - mpmath.mpf(pi)) - 1) <= 4e-15, (k, pi)
            assert abs(p1 / (mpmath.mpf(pi) / (k - 1)) - 1) <= 4e-15, (k, pi)
    # the bias starts the softmax focal loss at the prior: a background row's
    # loss is -(pi)^gamma log(1 - pi)
    b = focal.softmax_prior_bias(81)
    loss = focal.softmax_loss(b, 0, gamma=2.0)
    assert loss == pytest.approx(-(0.01 ** 2) * math.log(0.99), rel=1e-12)


@pytest.mark.parametrize("num_classes, pi, error", [
    (1, 0.01, ValueError), (0, 0.01, ValueError), (-3, 0.01, ValueError),
    (2.0, 0.01, TypeError), (True, 0.01, TypeError), ("81", 0.01, TypeError),
    (None, 0.01, TypeError),
])
def test_softmax_prior_bias_bad_num_classes(num_classes, pi, error):
    with pytest.raises(error, match="^num_classes"):
        focal.softmax_prior_bias(num_classes, pi)


@pytest.mark.parametrize("pi, error", [
    (0.0, ValueError), (1.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
    (math.nan, ValueError), (math.inf, ValueError), ("0.01", TypeError), (None, TypeError),
    (True, TypeError), ([0.01], TypeError),
])
def test_softmax_prior_bias_bad_pi(pi, error):
    with pytest.raises(error, match="^pi"):
        focal.softmax_prior_bias(81, pi)


def _ulps(computed, exact):
    return abs(mpmath.mpf(computed) - exact) / mpmath.mpf(np.spacing(abs(float(exact))))


def test_prior_biases_near_zero_keep_their_digits():
    """The biases are logs of ratios, log((K - 1)(1 - pi) / pi) and
    log(pi / (1 - pi)), whose sums of logs cancel near a bias of 0 (K = 11,
    pi = 10/11: 5.7e-16 for 3.7e-16; K = 10^6, pi = 0.999999: 5.7e10 ULP off):
    within 1.5 ULP of mpmath there, at random and at the extremes."""
    rng = np.random.default_rng(3)
    cases = [(11, 10 / 11), (10**6, 0.999999), (5, 0.8), (81, 80 / 81), (1000, 0.999),
             (2, 0.5 + 1e-12), (2, 5e-324), (3, 1 - 2**-53)]
    cases += [(int(k), float((k - 1) / k * (1 + e)))
              for k, e in zip(rng.integers(2, 10**6, 200), rng.normal(0, 1e-9, 200))]
    cases += [(int(k), float(p)) for k, p in zip(rng.integers(2, 10**7, 200), rng.random(200))]
    with mpmath.workdps(60):
        for k, pi in cases:
            exact = mpmath.log((k - 1) * (1 - mpmath.mpf(pi)) / mpmath.mpf(pi))
            computed = focal.softmax_prior_bias(k, pi)[0]
            assert (computed == 0) if exact == 0 else _ulps(computed, exact) <= 1.5, (k, pi)
        for pi in [0.5 + 1e-10, 0.5 - 1e-15, 0.5 + 2**-53, 5e-324, 1e-310, 1 - 2**-53,
                   *rng.uniform(0.5 - 1e-6, 0.5 + 1e-6, 100), *rng.random(100)]:
            exact = mpmath.log(mpmath.mpf(pi) / (1 - mpmath.mpf(pi)))
            assert _ulps(focal.prior_bias(pi), exact) <= 1.5, pi


def test_softmax_prior_bias_accepts_numpy_integers():
    np.testing.assert_array_equal(focal.softmax_prior_bias(np.int32(81), np.float32(0.01)),
                                  focal.softmax_prior_bias(81, float(np.float32(0.01))))


# --------------------------------------------------------------------------
# bad input

X = np.arange(12.0).reshape(4, 3) / 7.0
LABELS = np.array([0, 1, 2, 1])


def bad_calls():
    """(id, argument name, exception, positional args, keyword args)."""
    big = np.iinfo(np.uint64).max
    yield "label=C", "labels", ValueError, (X, [0, 1, 3, 1]), {}
    yield "label=-1", "labels", ValueError, (X, [0, -1, 2, 1]), {}
    yield "label huge", "labels", ValueError, (X, np.array([0, 10 ** 15, 2, 1])), {}
    yield "label uint64 max", "labels", ValueError, (X, np.array([0, big, 2, 1], np.uint64)), {}
    yield "label uint64 max, swapped", "labels", ValueError, (
        X, np.array([0, big - 5, 2, 1], ">u8")), {}
    yield "label int8 -1", "labels", ValueError, (X, np.array([0, -1, 2, 1], np.int8)), {}
    yield "label uint8 255", "labels", ValueError, (X, np.array([0, 255, 2, 1], np.uint8)), {}
    yield "labels short", "labels", ValueError, (X, [0, 1, 2]), {}
    yield "labels 2-D wrong", "labels", ValueError, (X, np.zeros((4, 2), int)), {}
    yield "labels 3-D", "labels", ValueError, (X, np.zeros((4, 3, 1), int)), {}
    yield "labels scalar for 2-D", "labels", ValueError, (X, 1), {}
    yield "float labels", "labels", TypeError, (X, [0.0, 1.0, 2.0, 1.0]), {}
    yield "float labels short", "labels", TypeError, (X, [0.0, 1.0]), {}
    yield "bool labels", "labels", TypeError, (X, np.array([True, False, True, False])), {}
    yield "string labels", "labels", TypeError, (X, "0123"), {}
    yield "object labels", "labels", TypeError, (X, np.array([0, 1, None, 2], object)), {}
    yield "dense > 1", "labels", ValueError, (X, np.full((4, 3), 1.5)), {}
    yield "dense < 0", "labels", ValueError, (X, np.eye(3)[[0, 1, 2, 1]] - 0.25), {}
    yield "dense nan", "labels", ValueError, (X, np.where(np.eye(3)[[0, 1, 2, 1]] > 0, np.nan, 0)), {}
    yield "axis out of range", "axis", ValueError, (X, LABELS), dict(axis=2)
    yield "axis -3", "axis", ValueError, (X, LABELS), dict(axis=-3)
    yield "axis float", "axis", TypeError, (X, LABELS), dict(axis=1.0)
    yield "axis string", "axis", TypeError, (X, LABELS), dict(axis="1")
    yield "axis bool", "axis", TypeError, (X, LABELS), dict(axis=True)
    yield "axis None", "axis", TypeError, (X, LABELS), dict(axis=None)
    yield "alpha short", "alpha", ValueError, (X, LABELS, [0.25, 0.75]), {}
    yield "alpha long", "alpha", ValueError, (X, LABELS, [0.25] * 4), {}
    yield "alpha 2-D", "alpha", ValueError, (X, LABELS, np.full((1, 3), 0.25)), {}
    yield "alpha > 1", "alpha", ValueError, (X, LABELS, 1.5), {}
    yield "alpha < 0", "alpha", ValueError, (X, LABELS, -0.25), {}
    yield "alpha nan", "alpha", ValueError, (X, LABELS, math.nan), {}
    yield "alpha per-class nan", "alpha", ValueError, (X, LABELS, [0.25, math.nan, 0.5]), {}
    yield "alpha per-class > 1", "alpha", ValueError, (X, LABELS, [0.25, 1.25, 0.5]), {}
    yield "alpha bool", "alpha", TypeError, (X, LABELS, True), {}
    yield "alpha string", "alpha", TypeError, (X, LABELS, "0.25"), {}
    yield "gamma < 0", "gamma", ValueError, (X, LABELS, None, -0.5), {}
    yield "gamma nan", "gamma", ValueError, (X, LABELS, None, math.nan), {}
    yield "gamma inf", "gamma", ValueError, (X, LABELS, None, math.inf), {}
    yield "gamma string", "gamma", TypeError, (X, LABELS, None, "2"), {}
    yield "gamma None", "gamma", TypeError, (X, LABELS, None, None), {}
    yield "gamma array", "gamma", TypeError, (X, LABELS, None, [2.0]), {}
    yield "reduction unknown", "reduction", ValueError, (X, LABELS), dict(reduction="avg")
    yield "reduction sum_over_positives", "reduction", ValueError, (X, LABELS), dict(
        reduction="sum_over_positives")
    yield "reduction None", "reduction", TypeError, (X, LABELS), dict(reduction=None)
    yield "weights shape", "weights", ValueError, (X, LABELS), dict(weights=np.ones(3))
    yield "weights too many dims", "weights", ValueError, (X, LABELS), dict(weights=np.ones((4, 3)))
    yield "weights negative", "weights", ValueError, (X, LABELS), dict(weights=[1, 1, -1.0, 1])
    yield "weights nan", "weights", ValueError, (X, LABELS), dict(weights=[1, 1, math.nan, 1])
    yield "weights inf", "weights", ValueError, (X, LABELS), dict(weights=math.inf)
    yield "weights string", "weights", TypeError, (X, LABELS), dict(weights="1")
    yield "ignore_index a class", "ignore_index", ValueError, (X, LABELS), dict(ignore_index=0)
    yield "ignore_index last class", "ignore_index", ValueError, (X, LABELS), dict(ignore_index=2)
    yield "ignore_index float", "ignore_index", TypeError, (X, LABELS), dict(ignore_index=-1.0)
    yield "ignore_index bool", "ignore_index", TypeError, (X, LABELS), dict(ignore_index=False)
    yield "ignore_index huge", "ignore_index", ValueError, (X, LABELS), dict(ignore_index=2 ** 70)
    yield "empty class axis", "logits", ValueError, (np.zeros((4, 0)), np.zeros(4, int)), {}
    yield "empty class axis 0", "logits", ValueError, (np.zeros((0, 4)), np.zeros(4, int)), dict(
        axis=0)
    yield "0-d logits", "logits", ValueError, (np.float64(1.0), 0), {}
    yield "complex logits", "logits", TypeError, (X + 1j, LABELS), {}
    yield "string logits", "logits", TypeError, ("abc", LABELS), {}
    yield "bool logits", "logits", TypeError, (X > 0.5, LABELS), {}


BAD_CALLS = list(bad_calls())


@pytest.mark.parametrize("name, argument, error, args, kwargs", BAD_CALLS,
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_naming_the_argument(name, argument, error, args, kwargs):
    for function in FUNCTIONS:
        with pytest.raises(error, match=f"^{argument}\\b"):
            function(*args, **kwargs)


def bad_outs():
    yield "loss out wrong shape", "none", focal.softmax_loss, np.empty(3), ValueError
    yield "loss out row shape with mean", "mean", focal.softmax_loss, np.empty(4), ValueError
    yield "loss out with sum", "sum", focal.softmax_loss, np.empty(()), ValueError
    yield "loss out wrong dtype", "none", focal.softmax_loss, np.empty(4, np.float32), TypeError
    yield "loss out byte-swapped", "none", focal.softmax_loss, np.empty(4, ">f8"), TypeError
    read_only = np.empty(4)
    read_only.flags.writeable = False
    yield "loss out read-only", "none", focal.softmax_loss, read_only, ValueError
    yield "loss out list", "none", focal.softmax_loss, [0.0] * 4, TypeError
    yield "grad out wrong shape", "mean", focal.softmax_grad, np.empty((3, 4)), ValueError
    yield "grad out row shape", "mean", focal.softmax_grad, np.empty(4), ValueError
    yield "grad out wrong dtype", "mean", focal.softmax_grad, np.empty((4, 3), np.float32), TypeError
    yield "grad out int", "mean", focal.softmax_grad, np.empty((4, 3), np.int64), TypeError
    read_only = np.empty((4, 3))
    read_only.flags.writeable = False
    yield "grad out read-only", "mean", focal.softmax_grad, read_only, ValueError
    yield "both out wrong shape", "none", focal.softmax_loss_and_grad, np.empty(4), ValueError


BAD_OUTS = list(bad_outs())


@pytest.mark.parametrize("name, reduction, function, out, error", BAD_OUTS,
                         ids=[c[0] for c in BAD_OUTS])
def test_bad_out_raises(name, reduction, function, out, error):
    with pytest.raises(error, match="^out\\b"):
        function(X, LABELS, reduction=reduction, out=out)


def test_float16_logits_refuse_a_float16_out():
    with pytest.raises(TypeError, match="^out"):
        focal.softmax_grad(X.astype(np.float16), LABELS, out=np.empty((4, 3), np.float16))


def test_ignore_index_may_be_a_class_with_dense_targets_only():
    # ignore_index only marks class indices; with dense targets it plays no role
    dense = np.eye(3)[LABELS]
    np.testing.assert_array_equal(focal.softmax_loss(X, dense, ignore_index=0, reduction="none"),
                                  focal.softmax_loss(X, LABELS, reduction="none"))
    # and any value outside the classes works for class indices
    labels = np.array([0, 7, 2, 7])
    np.testing.assert_array_equal(
        focal.softmax_loss(X, labels, ignore_index=7, reduction="none"),
        focal.softmax_loss(X, np.array([0, -100, 2, -100]), reduction="none"))


def test_uint64_labels_past_intp_are_refused_whatever_ignore_index():
    # 2**64 - 1 is not ignore_index = 2**63 - 1: it is out of range, not ignored
    big = np.iinfo(np.uint64).max
    intp_max = int(np.iinfo(np.intp).max)
    for labels in (np.array([0, big, 2, 1], np.uint64), np.array([0, 2 ** 63 + 5, 2, 1], ">u8")):
        for function in FUNCTIONS:
            with pytest.raises(ValueError, match="^labels"):
                function(X, labels, ignore_index=intp_max)


def test_broadcast_weights_match_full_weights():
    x = RNG.normal(size=(3, 4, 5))
    labels = RNG.integers(0, 4, size=(3, 5))
    row = RNG.uniform(0.1, 2, size=(1, 5))
    for reduction in ("none", "sum", "mean"):
        a = focal.softmax_loss_and_grad(x, labels, axis=1, weights=row, reduction=reduction)
        b = focal.softmax_loss_and_grad(x, labels, axis=1, weights=np.broadcast_to(row, (3, 5)).copy(),
                                        reduction=reduction)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # a scalar weight cancels in the mean
    np.testing.assert_allclose(focal.softmax_loss(x, labels, axis=1, weights=3.0),
                               focal.softmax_loss(x, labels, axis=1), rtol=1e-15)


def test_every_combination_of_label_dtype_and_byte_order():
    x = RNG.normal(size=(6, 4))
    labels = np.array([0, 3, 1, 2, 2, 0])
    expected_loss, expected_grad = focal.softmax_loss_and_grad(x, labels, reduction="none")
    for dtype, order in itertools.product(
            ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"), "<>"):
        typed = labels.astype(np.dtype(dtype).newbyteorder(order))
        loss, grad = focal.softmax_loss_and_grad(x, typed, reduction="none")
        np.testing.assert_array_equal(loss, expected_loss, err_msg=dtype + order)
        np.testing.assert_array_equal(grad, expected_grad, err_msg=dtype + order)


def test_a_wrong_out_shape_is_named_as_what_it_should_be():
    """The softmax's per-row loss has the rows' shape: the message says so (it said
    "the logits' shape" beside the rows' shape)."""
    logits, labels = np.zeros((4, 3)), np.zeros(4, int)
    with pytest.raises(ValueError, match=r"^out: expected shape \(4,\) \(the rows' shape"):
        focal.softmax_loss(logits, labels, reduction="none", out=np.empty((4, 3)))
    with pytest.raises(ValueError, match=r"^out: expected shape \(4, 3\) \(the logits' shape\)"):
        focal.softmax_grad(logits, labels, out=np.empty(4))
    with pytest.raises(ValueError, match=r"^out: expected shape \(4, 3\) \(the logits' shape\)"):
        focal.loss(logits, np.zeros((4, 3)), reduction="none", out=np.empty(4))

"""Property-based tests (hypothesis): invariants over generated inputs.

Inputs are drawn with hypothesis.extra.numpy: shapes from 0-d and empty to
4-D, float16/32/64 logits in native and swapped byte order, every memory
layout of tests/layouts.py (Fortran, strided, reversed, transposed,
misaligned, read-only), dense targets (bool, integer, float, soft, broadcast)
and class indices (with background and ignored rows), broadcast weights,
alpha (None, scalar, per class), gamma and every reduction.

Invariants, for the sigmoid focal loss (S), the softmax focal loss along any
axis (M) and FL* (F):

* the loss is >= 0 (S, M, F);
* gamma = 0 with alpha = None is binary cross-entropy (S) or softmax
  cross-entropy (M);
* (x, y, alpha) gives the loss of (-x, 1 - y, 1 - alpha), the negated
  gradient and the same second derivative (S, F);
* a strided, transposed, misaligned or byte-swapped view gives bitwise the
  results of its contiguous copy (S, M, F);
* the reduced sum (and the mean, and the sum over positives) equals the
  math.fsum of the float64 per-element output, to rounding (S, M, F);
* the gradient matches central differences of the loss, for every reduction
  (S, M, F), and the second derivative central differences of the gradient
  (S);
* the results are bitwise the same with 1, 2 or 3 threads, on arrays of
  several chunks (65,536 elements, or 65,536 / C softmax rows) (S, M, F);
* every row's softmax gradient sums to 0, and adding a constant to a row of
  logits leaves its loss unchanged to rounding (M);
* under a weight 2^k, one element's loss (and a hard target's gradient) is
  within 2 ULP of 2^k times its exact value (mpmath), also where the
  unweighted value lies far below the normal range (S; and the quality focal,
  asymmetric and varifocal losses' hard targets, within the large-gamma
  allowance);
* every real scalar argument (gamma, beta, alpha, pi, hessian_floor,
  ignore_index, n), given any Python or NumPy number -- huge integers,
  infinities, NaN, bools included -- is taken where valid and otherwise
  refused with a TypeError or ValueError naming it.

Profiles: FOCAL_HYPOTHESIS_PROFILE=ci (the default: 100 examples per test,
25 for the tests on arrays of several chunks, derandomized so CI runs are
reproducible; about 10 s) or FOCAL_HYPOTHESIS_PROFILE=long (2000 examples
per test, 500 on large arrays, random; about 3 minutes on two cores -- run
it before a release or after changing a kernel)::

    FOCAL_HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties.py

The profiles are registered here and applied per test (the global hypothesis
settings of other modules are not touched).
"""
from __future__ import annotations

import contextlib
import math
import os

import hypothesis.extra.numpy as hnp
import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import focal
from layouts import LAYOUTS, arrange
from reference import (asymmetric_mp, expand_targets, focal_reference, quality_mp, result_dtype,
                       sigmoid_focal_mp, tolerance, varifocal_mp)

# --------------------------------------------------------------------------
# profiles

_COMMON = dict(
    deadline=None,  # a shared CI machine makes timings meaningless
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=100, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=2000, **_COMMON)
PROFILE_NAME = os.environ.get("FOCAL_HYPOTHESIS_PROFILE", "ci")
PROFILE = settings.get_profile(PROFILE_NAME)


def examples(share: float = 1.0) -> settings:
    """The chosen profile, with `share` of its examples (for the costly tests)."""
    return settings(PROFILE, max_examples=max(5, round(PROFILE.max_examples * share)))


# --------------------------------------------------------------------------
# strategies

NATIVE = [np.dtype(t) for t in (np.float16, np.float32, np.float64)]
FLOAT_DTYPES = NATIVE + [d.newbyteorder() for d in NATIVE]  # byte-swapped too
REDUCTIONS = ("none", "sum", "mean", "sum_over_positives")
SOFTMAX_REDUCTIONS = ("none", "sum", "mean")
LABEL_DTYPES = [np.dtype(t) for t in (np.int8, np.int32, np.int64, ">i8", np.uint8)]
DENSE_DTYPES = [np.dtype(t) for t in (bool, np.uint8, np.int64, np.float32, np.float64, ">f8")]
CHUNK = 1 << 16  # elements (sigmoid) or elements' worth of rows (softmax) per chunk


def _dyadic(denominator, low, high):
    """Multiples of 1/denominator in [low, high]: exact in every float dtype
    used here, so 1 - y, 1 - alpha and x + constant are exact too."""
    return st.integers(round(low * denominator), round(high * denominator)).map(
        lambda k: k / denominator)


def logit_values(dtype, shape, bound=30.0, dyadic=False):
    """float64 arrays of values exactly representable in `dtype`."""
    if dyadic:
        elements = _dyadic(64, -bound, bound)
    else:
        width = {2: 16, 4: 32, 8: 64}[dtype.itemsize]
        elements = st.floats(-bound, bound, width=width)
    return hnp.arrays(np.float64, shape, elements=elements)


gammas = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]), st.floats(0.0, 5.0))


def dense_shape(draw, shape):
    """As many dimensions as the logits, each equal or 1 (broadcast)."""
    return tuple(draw(st.sampled_from([n, 1])) for n in shape)


def weight_values(draw, shape):
    """None or non-negative weights of a shape that broadcasts to `shape`."""
    if not draw(st.booleans()):
        return None
    kept = draw(st.integers(0, len(shape)))  # trailing dimensions, each equal or 1
    w_shape = dense_shape(draw, shape[len(shape) - kept:])
    return draw(hnp.arrays(np.float64, w_shape, elements=_dyadic(16, 0.0, 4.0)))


@st.composite
def sigmoid_problems(draw, *, hard=False, max_dims=4, max_side=5, float64=False,
                     dyadic_targets=False, dense_only=False, max_size=None):
    """kwargs of a focal.loss call; also 'values' (the logits in float64)."""
    dtype = np.dtype(np.float64) if float64 else draw(st.sampled_from(FLOAT_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    if max_size is not None:
        assume(math.prod(shape) <= max_size)
    values = draw(logit_values(dtype, shape))
    layout = draw(st.sampled_from(LAYOUTS))
    logits = arrange(values, dtype, layout)
    num_classes = shape[-1] if shape else 0
    labels = not dense_only and len(shape) >= 1 and draw(st.booleans())
    if labels:
        label_dtype = draw(st.sampled_from(LABEL_DTYPES))
        low = 0 if label_dtype.kind == "u" else -1  # -1: ignored (unsigned: none)
        label_values = draw(hnp.arrays(np.int64, shape[:-1],
                                       elements=st.integers(low, num_classes)))
        targets = arrange(label_values, label_dtype, draw(st.sampled_from(LAYOUTS)))
    else:
        target_dtype = draw(st.sampled_from(DENSE_DTYPES))
        if hard or target_dtype.kind != "f":
            elements = st.sampled_from([0.0, 1.0])
        elif dyadic_targets or draw(st.booleans()):
            elements = _dyadic(64, 0.0, 1.0)  # 1 - y is exact
        else:
            elements = st.floats(0.0, 1.0)
        target_values = draw(hnp.arrays(np.float64, dense_shape(draw, shape), elements=elements))
        targets = arrange(target_values, target_dtype, draw(st.sampled_from(LAYOUTS)))
    alpha_kind = draw(st.sampled_from(["none", "scalar", "per-class"] if num_classes
                                      else ["none", "scalar"]))
    alpha = None
    if alpha_kind == "scalar":
        alpha = draw(_dyadic(64, 0.0, 1.0))
    elif alpha_kind == "per-class":
        alpha = draw(hnp.arrays(np.float64, (num_classes,), elements=_dyadic(64, 0.0, 1.0)))
    return dict(logits=logits, targets=targets, alpha=alpha, gamma=draw(gammas),
                weights=weight_values(draw, shape), reduction=draw(st.sampled_from(REDUCTIONS)),
                values=values, layout=layout)


def star_problem(draw, problem):
    """Turns a sigmoid problem (with hard targets) into an FL* one."""
    problem = dict(problem)
    problem["gamma"] = draw(st.one_of(st.sampled_from([4.0, 2.0, 1.0]), st.floats(0.25, 5.0)))
    problem["beta"] = draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(-3.0, 3.0)))
    return problem


@st.composite
def star_problems(draw, **options):
    return star_problem(draw, draw(sigmoid_problems(hard=True, **options)))


@st.composite
def softmax_problems(draw, *, max_dims=4, max_side=5, float64=False, dyadic=False,
                     max_size=None):
    dtype = np.dtype(np.float64) if float64 else draw(st.sampled_from(FLOAT_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    num_classes = draw(st.integers(1, max_side))
    shape = shape[:axis % len(shape)] + (num_classes,) + shape[axis % len(shape) + 1:]
    if max_size is not None:
        assume(math.prod(shape) <= max_size)
    values = draw(logit_values(dtype, shape, bound=16.0 if dyadic else 30.0, dyadic=dyadic))
    layout = draw(st.sampled_from(LAYOUTS))
    logits = arrange(values, dtype, layout)
    row_shape = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    if draw(st.booleans()):  # class indices, else dense targets
        label_dtype = draw(st.sampled_from([d for d in LABEL_DTYPES if d.kind == "i"]))
        label_values = draw(hnp.arrays(np.int64, row_shape, elements=st.one_of(
            st.integers(0, num_classes - 1), st.just(-100))))
        targets = arrange(label_values, label_dtype, draw(st.sampled_from(LAYOUTS)))
    else:
        target_values = draw(hnp.arrays(np.float64, shape, elements=_dyadic(64, 0.0, 1.0)))
        targets = arrange(target_values, draw(st.sampled_from(DENSE_DTYPES[3:])),
                          draw(st.sampled_from(LAYOUTS)))
    alpha_kind = draw(st.sampled_from(["none", "scalar", "per-class"]))
    alpha = None
    if alpha_kind == "scalar":
        alpha = draw(_dyadic(64, 0.0, 1.0))
    elif alpha_kind == "per-class":
        alpha = draw(hnp.arrays(np.float64, (num_classes,), elements=_dyadic(64, 0.0, 1.0)))
    return dict(logits=logits, labels=targets, alpha=alpha, gamma=draw(gammas), axis=axis,
                weights=weight_values(draw, row_shape),
                reduction=draw(st.sampled_from(SOFTMAX_REDUCTIONS)), values=values, layout=layout)


# --------------------------------------------------------------------------
# calling


def _split(problem, **changes):
    """(logits, targets, keyword arguments) of a problem, with changes."""
    kwargs = dict(problem, **changes)
    kwargs.pop("values")
    kwargs.pop("layout")
    logits = kwargs.pop("logits")
    targets = kwargs.pop("labels" if "labels" in kwargs else "targets")
    return logits, targets, kwargs


def sigmoid(function, problem, **changes):
    logits, targets, kwargs = _split(problem, **changes)
    if function is focal.grad_hess:
        kwargs.pop("reduction")
    return function(logits, targets, **kwargs)


def star(function, problem, **changes):
    logits, targets, kwargs = _split(problem, **changes)
    return function(logits, targets, kwargs.pop("alpha"), kwargs.pop("gamma"),
                    kwargs.pop("beta"), **kwargs)


def softmax(function, problem, **changes):
    logits, targets, kwargs = _split(problem, **changes)
    return function(logits, targets, **kwargs)


def bits(result):
    """A bitwise fingerprint: type, dtype, shape and bytes of every part."""
    items = result if isinstance(result, tuple) else (result,)
    return [(type(item).__name__, np.asarray(item).dtype.str, np.shape(item),
             np.asarray(item).tobytes()) for item in items]


def effective_weights(problem):
    """The sigmoid weight of every element: the weights, 0 in ignored rows."""
    x = problem["logits"]
    t = expand_targets(problem["targets"], x.shape)
    w = np.ones(x.shape) if problem["weights"] is None else np.broadcast_to(
        problem["weights"], x.shape)
    return np.where(t.valid, w, 0.0), t


def assert_close(actual, expected, allowed, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    bad = ~(np.abs(actual - expected) <= allowed)
    assert not np.any(bad), (
        f"{what}: {np.count_nonzero(bad)} of {bad.size} differ; got {actual[bad][:4]}, "
        f"expected {expected[bad][:4]}")


def assert_sum_close(value, expected, dtype, what="sum"):
    """A reduced value within two roundings of the result dtype of `expected`
    (plus a few subnormal spacings, for sums that underflow)."""
    dtype = np.dtype(dtype)
    allowed = (2 * float(np.finfo(dtype).eps) * abs(expected)
               + 4 * float(np.finfo(dtype).smallest_subnormal))
    assert type(value) is dtype.type, type(value)
    assert abs(float(value) - expected) <= allowed, f"{what}: got {value!r}, expected {expected!r}"


def log_sigmoid(x):
    return -np.logaddexp(0.0, -np.asarray(x, dtype=np.float64))


# --------------------------------------------------------------------------
# sigmoid focal loss


@examples()
@given(sigmoid_problems())
def test_loss_is_non_negative(problem):
    dtype = result_dtype(problem["logits"].dtype)
    value = sigmoid(focal.loss, problem)
    w, _ = effective_weights(problem)
    if problem["reduction"] == "none":
        assert value.dtype == dtype and value.shape == problem["logits"].shape
        assert np.all(value >= 0), value
    else:
        assert type(value) is dtype.type
        if problem["reduction"] == "mean" and not w.sum() > 0:
            assert np.isnan(value)  # nothing to average
        else:
            assert value >= 0, value


@examples()
@given(sigmoid_problems())
def test_gamma_zero_without_alpha_is_binary_cross_entropy(problem):
    dtype = result_dtype(problem["logits"].dtype)
    w, t = effective_weights(problem)
    x = problem["values"]
    bce = -(t.y * log_sigmoid(x) + (1.0 - t.y) * log_sigmoid(-x))
    expected = w * bce
    value = sigmoid(focal.loss, problem, alpha=None, gamma=0.0, reduction="none")
    assert_close(value, expected, tolerance(dtype, expected), "loss")
    # and its derivative: w (sigmoid(x) - y)
    gradient = sigmoid(focal.grad, problem, alpha=None, gamma=0.0, reduction="none")
    p = np.exp(log_sigmoid(x))
    expected_grad = w * (p - t.y)
    assert_close(gradient, expected_grad, tolerance(dtype, expected_grad, w), "grad")


def _complement(problem):
    """(-x, 1 - y, 1 - alpha) of a problem with dense targets."""
    x, y = problem["logits"], problem["targets"]
    alpha = problem["alpha"]
    flipped_y = ~y if y.dtype == bool else (1 - y.astype(np.float64)).astype(y.dtype)
    if alpha is not None:
        alpha = 1.0 - np.asarray(alpha) if np.ndim(alpha) else 1.0 - alpha
    return dict(problem, logits=-x, targets=flipped_y, alpha=alpha)


@examples()
@given(sigmoid_problems(dense_only=True, dyadic_targets=True))
def test_symmetry_of_logits_targets_and_alpha(problem):
    """(x, y, alpha) and (-x, 1 - y, 1 - alpha) describe the same element."""
    mirrored = _complement(problem)
    dtype = result_dtype(problem["logits"].dtype)
    a = sigmoid(focal.loss, problem, reduction="none")
    b = sigmoid(focal.loss, mirrored, reduction="none")
    assert_close(b, a, tolerance(dtype, a), "loss")
    ga, ha = sigmoid(focal.grad_hess, problem)
    gb, hb = sigmoid(focal.grad_hess, mirrored)
    # the error scales of the terms that cancel, from the reference
    ref = focal_reference(problem["values"], problem["targets"], problem["alpha"],
                          problem["gamma"], reduction="none", weights=problem["weights"])
    assert_close(-gb, ga, 2 * tolerance(dtype, ga, ref.elementwise_grad_scale), "grad")
    assert_close(hb, ha, 2 * tolerance(dtype, ha, ref.hess_scale), "hess")
    for reduction in ("sum", "mean"):
        ra = sigmoid(focal.loss, problem, reduction=reduction)
        rb = sigmoid(focal.loss, mirrored, reduction=reduction)
        assert (np.isnan(ra) and np.isnan(rb)) or abs(rb - ra) <= tolerance(dtype, ra), reduction


def _contiguous(array):
    """A C-contiguous copy in native byte order (values equal)."""
    return np.array(array, dtype=array.dtype.newbyteorder("="), order="C", copy=True)


SIGMOID_FUNCTIONS = (focal.loss, focal.grad, focal.loss_and_grad, focal.grad_hess)


@examples()
@given(sigmoid_problems())
def test_any_layout_gives_bitwise_the_contiguous_result(problem):
    copied = dict(problem, logits=_contiguous(problem["logits"]),
                  targets=_contiguous(problem["targets"]),
                  weights=None if problem["weights"] is None
                  else _contiguous(problem["weights"]))
    note(f"layout flags {problem['logits'].flags}, dtype {problem['logits'].dtype}")
    for function in SIGMOID_FUNCTIONS:
        assert bits(sigmoid(function, problem)) == bits(sigmoid(function, copied)), function
    # and out= in the logits' layout receives bitwise the contiguous result
    x = problem["logits"]
    layout = "C" if problem["layout"] == "readonly" else problem["layout"]
    out = arrange(np.full(x.shape, np.nan), result_dtype(x.dtype), layout)
    got = sigmoid(focal.grad, problem, out=out)
    assert got is out
    assert bits(np.array(got, order="C")) == bits(sigmoid(focal.grad, copied))


@examples()
@given(sigmoid_problems(), st.sampled_from(["sum", "mean", "sum_over_positives"]))
def test_reductions_are_fsum_of_the_elements(problem, reduction):
    """The reduced value equals math.fsum of the float64 per-element output
    (computed from the same logits in float64), within the rounding of the
    result dtype."""
    dtype = result_dtype(problem["logits"].dtype)
    value = sigmoid(focal.loss, problem, reduction=reduction)
    elements = sigmoid(focal.loss, problem, logits=problem["values"], reduction="none")
    total = math.fsum(elements.ravel())
    w, t = effective_weights(problem)
    if reduction == "sum":
        expected = total
    elif reduction == "mean":
        weight = math.fsum(w.ravel())
        assume(weight > 0)  # else nan, checked in test_loss_is_non_negative
        expected = total / weight
    else:
        expected = total / max(t.positives, 1.0)
    assert_sum_close(value, expected, dtype, reduction)


def central_difference(function, x, h=1e-3):
    """Five-point stencil along the whole array at once (elementwise functions)."""
    values = [function(x + k * h) for k in (2, 1, -1, -2)]
    return (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)


def partial_derivatives(function, x, h=1e-3):
    """d function / d x[i] for every element i of x, one element at a time."""
    gradient = np.empty_like(x)
    for index in np.ndindex(x.shape):
        def shifted(step, index=index):
            z = x.copy()
            z[index] += step
            return float(function(z))
        values = [shifted(k * h) for k in (2, 1, -1, -2)]
        gradient[index] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
    return gradient


@examples(0.5)
@given(sigmoid_problems(float64=True, max_side=4, max_size=16))
def test_grad_matches_central_differences(problem):
    x = problem["values"].copy()
    reduction = problem["reduction"]
    gradient = sigmoid(focal.grad, problem, logits=x)
    if reduction == "none":
        numeric = central_difference(lambda z: sigmoid(focal.loss, problem, logits=z), x)
        scale = np.abs(sigmoid(focal.loss, problem, logits=x)) + 1.0
    else:
        loss = sigmoid(focal.loss, problem, logits=x)
        assume(not np.isnan(loss))
        numeric = partial_derivatives(lambda z: sigmoid(focal.loss, problem, logits=z), x)
        elements = sigmoid(focal.loss, problem, logits=x, reduction="none")
        scale = float(np.sum(elements)) + 1.0
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8 * np.max(scale, initial=1.0))
    # the second derivative is the derivative of the elementwise gradient
    g, h = sigmoid(focal.grad_hess, problem, logits=x)
    numeric_h = central_difference(lambda z: sigmoid(focal.grad_hess, problem, logits=z)[0], x)
    np.testing.assert_allclose(h, numeric_h, rtol=1e-6, atol=1e-8 * (np.max(np.abs(g), initial=0.0) + 1))


# --------------------------------------------------------------------------
# threads: fixed chunks, bitwise the same results for any thread count


@contextlib.contextmanager
def restoring_threads():
    threads = focal.get_num_threads()
    try:
        yield
    finally:
        focal.set_num_threads(threads)


def _with_threads(call):
    results = []
    with restoring_threads():
        for threads in (1, 2, 3):
            focal.set_num_threads(threads)
            results.append(bits(call()))
    return results


large_common = dict(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(FLOAT_DTYPES),
    layout=st.sampled_from(["C", "F", "strided", "transposed"]),
    labels=st.booleans(),
    weighted=st.booleans(),
    gamma=gammas,
)


def _large_sigmoid(seed, dtype, layout, labels, weighted, num_classes, chunks, hard=False):
    rng = np.random.default_rng(seed)
    rows = (chunks * CHUNK) // num_classes + 7  # a partial last chunk
    values = rng.normal(0.0, 4.0, (rows, num_classes))
    logits = arrange(values, dtype, layout)
    if labels:
        targets = rng.integers(-1, num_classes + 1, rows)
    elif hard:
        targets = (rng.random((rows, num_classes)) < 0.1).astype(np.float32)
    else:
        targets = rng.random((rows, num_classes)) ** 4
    weights = rng.random((rows, 1)) * 2 if weighted else None
    return logits, targets, weights


@examples(0.25)
@given(num_classes=st.sampled_from([1, 3, 80]), chunks=st.integers(2, 4),
       reduction=st.sampled_from(REDUCTIONS), **large_common)
def test_sigmoid_thread_count_does_not_change_results(
        seed, dtype, layout, labels, weighted, gamma, num_classes, chunks,
        reduction):
    x, t, w = _large_sigmoid(seed, dtype, layout, labels, weighted, num_classes, chunks)
    assert x.size > 2 * CHUNK
    for call in (lambda: focal.loss_and_grad(x, t, 0.25, gamma, reduction=reduction, weights=w),
                 lambda: focal.loss(x, t, None, gamma, reduction=reduction, weights=w),
                 lambda: focal.grad_hess(x, t, 0.25, gamma, weights=w)):
        one, two, three = _with_threads(call)
        assert one == two == three


@examples(0.25)
@given(num_classes=st.sampled_from([1, 80]), chunks=st.integers(2, 3),
       reduction=st.sampled_from(REDUCTIONS), beta=st.sampled_from([0.0, 1.0]),
       **large_common)
def test_star_thread_count_does_not_change_results(
        seed, dtype, layout, labels, weighted, gamma, num_classes, chunks,
        reduction, beta):
    x, t, w = _large_sigmoid(seed, dtype, layout, labels, weighted, num_classes, chunks,
                             hard=True)
    one, two, three = _with_threads(lambda: focal.star_loss_and_grad(
        x, t, 0.25, gamma + 0.5, beta, reduction=reduction, weights=w))
    assert one == two == three


@examples(0.25)
@given(num_classes=st.sampled_from([2, 5, 80, 1000]), chunks=st.integers(2, 4),
       axis=st.sampled_from([0, -1]), reduction=st.sampled_from(SOFTMAX_REDUCTIONS),
       **large_common)
def test_softmax_thread_count_does_not_change_results(
        seed, dtype, layout, labels, weighted, gamma, num_classes, chunks,
        axis, reduction):
    rng = np.random.default_rng(seed)
    rows = chunks * (CHUNK // num_classes) + 5
    values = rng.normal(0.0, 4.0, (rows, num_classes))
    if axis == 0:
        values = values.T.copy()
    x = arrange(values, dtype, layout)
    if labels:
        t = rng.integers(0, num_classes, rows)
        t[rng.random(rows) < 0.1] = -100
    else:
        t = rng.random(values.shape) ** 4
    w = rng.random(rows) * 2 if weighted else None
    assert rows > 2 * (CHUNK // num_classes)
    one, two, three = _with_threads(lambda: focal.softmax_loss_and_grad(
        x, t, None, gamma, axis=axis, reduction=reduction, weights=w))
    assert one == two == three


# --------------------------------------------------------------------------
# FL*


@examples()
@given(st.data())
def test_star_invariants(data):
    """FL* >= 0; the (x, y, alpha) <-> (-x, 1 - y, 1 - alpha) symmetry; any
    layout bitwise; the sum is the fsum of the elements."""
    problem = data.draw(star_problems())
    dtype = result_dtype(problem["logits"].dtype)
    elements = star(focal.star_loss, problem, reduction="none")
    assert np.all(elements >= 0)
    # symmetry, with dense targets
    if problem["targets"].ndim == problem["logits"].ndim:
        mirrored = _complement(problem)
        other = star(focal.star_loss, mirrored, reduction="none")
        assert_close(other, elements, tolerance(dtype, elements), "loss")
        g = star(focal.star_grad, problem, reduction="none")
        assert_close(-star(focal.star_grad, mirrored, reduction="none"), g,
                     tolerance(dtype, g), "grad")
    # layouts
    copied = dict(problem, logits=_contiguous(problem["logits"]),
                  targets=_contiguous(problem["targets"]))
    for function in (focal.star_loss, focal.star_grad, focal.star_loss_and_grad):
        assert bits(star(function, problem)) == bits(star(function, copied))
    # the sum
    total = math.fsum(star(focal.star_loss, problem, logits=problem["values"],
                           reduction="none").ravel())
    assert_sum_close(star(focal.star_loss, problem, reduction="sum"), total, dtype)


@examples(0.5)
@given(star_problems(float64=True, max_side=4, max_size=16))
def test_star_grad_matches_central_differences(problem):
    x = problem["values"].copy()
    reduction = problem["reduction"]
    gradient = star(focal.star_grad, problem, logits=x)
    if reduction == "none":
        numeric = central_difference(lambda z: star(focal.star_loss, problem, logits=z), x)
    else:
        loss = star(focal.star_loss, problem, logits=x)
        assume(not np.isnan(loss))
        numeric = partial_derivatives(lambda z: star(focal.star_loss, problem, logits=z), x)
    scale = float(np.sum(star(focal.star_loss, problem, logits=x, reduction="none"))) + 1.0
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8 * scale)


# --------------------------------------------------------------------------
# softmax


def _row_weights(problem):
    x = problem["logits"]
    axis = problem["axis"] % x.ndim
    row_shape = x.shape[:axis] + x.shape[axis + 1:]
    w = np.ones(row_shape) if problem["weights"] is None else np.broadcast_to(
        problem["weights"], row_shape)
    t = np.asarray(problem["labels"])
    if t.ndim == x.ndim - 1:
        w = np.where(t == -100, 0.0, w)
    return w


@examples()
@given(softmax_problems())
def test_softmax_loss_is_non_negative_and_row_gradients_sum_to_zero(problem):
    dtype = result_dtype(problem["logits"].dtype)
    value, gradient = softmax(focal.softmax_loss_and_grad, problem)
    w = _row_weights(problem)
    if problem["reduction"] == "none":
        assert np.all(value >= 0)
    elif problem["reduction"] == "mean" and not w.sum() > 0:
        assert np.isnan(value)
    else:
        assert value >= 0
    # Each component p_j S - G_j (1 - p_j) is accurate to 8 ULP of its terms'
    # magnitude (tests/test_softmax_accuracy.py), and the terms of a row add up
    # to at most 2 S <= 2 (1 + gamma) sum_c alpha_c y_c (times w / the mean's
    # divisor): the bound of the row sum's rounding error.
    axis = problem["axis"] % gradient.ndim
    num_classes = gradient.shape[axis]
    alpha = np.ones(num_classes) if problem["alpha"] is None else np.broadcast_to(
        problem["alpha"], (num_classes,))
    t = np.asarray(problem["labels"])
    if t.ndim == gradient.ndim - 1:
        weight_of_row = alpha[np.where(t == -100, 0, t).astype(np.int64)]
    else:
        shape = [1] * t.ndim
        shape[axis] = num_classes
        weight_of_row = np.sum(t.astype(np.float64) * alpha.reshape(shape), axis=axis)
    divisor = w.sum() if problem["reduction"] == "mean" and w.sum() > 0 else 1.0
    magnitude = 2 * (1 + problem["gamma"]) * weight_of_row * w / divisor
    g = gradient.astype(np.float64)
    row_sums = g.sum(axis=axis)
    eps = float(np.finfo(dtype).eps)
    allowed = 8 * eps * magnitude + 4 * eps * np.abs(g).sum(axis=axis) + 1e-300
    assert np.all(np.abs(row_sums) <= allowed), (row_sums, allowed)


@examples()
@given(softmax_problems(dyadic=True), st.data())
def test_softmax_shift_invariance(problem, data):
    """Adding a constant to every logit of a row leaves the loss unchanged to
    rounding (the shift is exact: dyadic logits, integer constants)."""
    x = problem["values"]
    axis = problem["axis"] % x.ndim
    row_shape = x.shape[:axis] + x.shape[axis + 1:]
    shift = data.draw(hnp.arrays(np.float64, row_shape, elements=st.integers(-8, 8)))
    shifted = x + np.expand_dims(shift, axis)
    dtype = problem["logits"].dtype
    moved = dict(problem, logits=arrange(shifted, dtype, "C"))
    assert np.array_equal(moved["logits"].astype(np.float64), shifted)  # exact
    result_type = result_dtype(dtype)
    a, ga = softmax(focal.softmax_loss_and_grad, problem, reduction="none")
    b, gb = softmax(focal.softmax_loss_and_grad, moved, reduction="none")
    eps = float(np.finfo(result_type).eps)
    assert_close(b, a, 8 * eps * np.abs(a) + 1e-300, "loss")
    assert_close(gb, ga, 8 * eps * np.max(np.abs(ga), axis=axis, keepdims=True) + 1e-300, "grad")


def _log_softmax(z, axis):
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


@examples()
@given(softmax_problems())
def test_softmax_gamma_zero_without_alpha_is_cross_entropy(problem):
    x = problem["values"]
    axis = problem["axis"] % x.ndim
    log_p = _log_softmax(x, axis)
    t = np.asarray(problem["labels"])
    w = _row_weights(problem)
    if t.ndim == x.ndim - 1:
        safe = np.where(t == -100, 0, t).astype(np.int64)
        picked = np.take_along_axis(log_p, np.expand_dims(safe, axis), axis=axis)
        ce = -np.squeeze(picked, axis)
    else:
        ce = -np.sum(t.astype(np.float64) * log_p, axis=axis)
    expected = np.where(w > 0, w * ce, 0.0)
    dtype = result_dtype(problem["logits"].dtype)
    value = softmax(focal.softmax_loss, problem, alpha=None, gamma=0.0, reduction="none")
    # numpy's log-softmax is itself a few ULP off: allow 8 eps of the terms
    terms = np.sum(np.abs(log_p), axis=axis) if t.ndim == x.ndim else np.abs(ce)
    allowed = tolerance(dtype, expected) + 8 * float(np.finfo(dtype).eps) * w * (terms + 1)
    assert_close(value, expected, allowed, "loss")


SOFTMAX_FUNCTIONS = (focal.softmax_loss, focal.softmax_grad, focal.softmax_loss_and_grad)


@examples()
@given(softmax_problems())
def test_softmax_any_layout_gives_bitwise_the_contiguous_result(problem):
    copied = dict(problem, logits=_contiguous(problem["logits"]),
                  labels=_contiguous(problem["labels"]),
                  weights=None if problem["weights"] is None
                  else _contiguous(problem["weights"]))
    for function in SOFTMAX_FUNCTIONS:
        assert bits(softmax(function, problem)) == bits(softmax(function, copied)), function


@examples()
@given(softmax_problems(), st.sampled_from(["sum", "mean"]))
def test_softmax_reductions_are_fsum_of_the_rows(problem, reduction):
    dtype = result_dtype(problem["logits"].dtype)
    value = softmax(focal.softmax_loss, problem, reduction=reduction)
    rows = softmax(focal.softmax_loss, problem, logits=problem["values"], reduction="none")
    total = math.fsum(rows.ravel())
    if reduction == "mean":
        weight = math.fsum(_row_weights(problem).ravel())
        assume(weight > 0)
        total /= weight
    assert_sum_close(value, total, dtype, reduction)


@examples(0.5)
@given(softmax_problems(float64=True, max_side=4, max_size=16))
def test_softmax_grad_matches_central_differences(problem):
    x = problem["values"].copy()
    gradient = softmax(focal.softmax_grad, problem, logits=x)
    if problem["reduction"] == "none":
        # each row's gradient is the derivative of the sum of the row losses
        function = lambda z: np.sum(softmax(focal.softmax_loss, problem, logits=z))  # noqa: E731
    else:
        assume(not np.isnan(softmax(focal.softmax_loss, problem, logits=x)))
        function = lambda z: softmax(focal.softmax_loss, problem, logits=z)  # noqa: E731
    numeric = partial_derivatives(function, x)
    scale = float(np.sum(softmax(focal.softmax_loss, problem, logits=x, reduction="none"))) + 1
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8 * scale)


# --------------------------------------------------------------------------
# settings


def _as_double(value):
    """The value as a double, or None when it has none (a huge integer)."""
    try:
        return float(value)
    except OverflowError:
        return None


SCALAR_X = np.zeros((2, 3))
SCALAR_LABELS = np.array([0, 3])


def scalar_cases(value):
    """(argument, call, whether the value is valid there) for every real
    scalar parameter of the public functions."""
    v = _as_double(value)
    real = v is not None and not isinstance(value, (bool, np.bool_))
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    finite = real and math.isfinite(v)
    x, y = SCALAR_X, SCALAR_LABELS
    return [
        ("gamma", lambda: focal.loss(x, y, gamma=value), finite and v >= 0),
        ("gamma", lambda: focal.softmax_loss(x, y[:1].repeat(2), gamma=value), finite and v >= 0),
        ("gamma", lambda: focal.star_loss(x, y, gamma=value), finite and v > 0),
        ("beta", lambda: focal.star_loss(x, y, beta=value), finite),
        ("alpha", lambda: focal.loss(x, y, alpha=value), finite and 0 <= v <= 1),
        ("pi", lambda: focal.prior_bias(value), finite and 0 < v < 1),
        ("pi", lambda: focal.softmax_prior_bias(3, value), finite and 0 < v < 1),
        # the floor is handed over in float32: it must be a normal float32 number there
        ("hessian_floor", lambda: focal.xgboost_objective(hessian_floor=value),
         finite and float(np.finfo(np.float32).tiny) <= v <= float(np.finfo(np.float32).max)),
        ("ignore_index", lambda: focal.loss(x, y, ignore_index=value),
         integer and not 0 <= value <= 3 and -2**63 <= value < 2**63),
        ("n", lambda: focal.set_num_threads(value), integer and 1 <= value <= 256),
    ]


real_scalars = st.one_of(
    st.integers(-300, 300), st.integers(), st.integers(-2**1100, 2**1100),
    st.sampled_from([2**63, -2**63 - 1, 2**64, 10**308, 2**1024, -2**1024, 2**1024 - 2**970]),
    st.floats(), st.floats(0.0, 1.0), st.floats(width=32).map(np.float32),
    st.integers(-2**63, 2**63 - 1).map(np.int64), st.booleans())


@examples()
@given(real_scalars)
def test_scalar_arguments_are_taken_or_refused_by_name(value):
    """Any Python or NumPy real scalar -- huge integers, infinities and NaN
    included -- is either accepted where valid or refused with a TypeError or
    ValueError whose message starts with the argument's name (never an
    OverflowError from a conversion)."""
    with restoring_threads():
        for name, call, valid in scalar_cases(value):
            if valid:
                call()
            else:
                with pytest.raises((TypeError, ValueError), match=rf"^{name}:"):
                    call()


# --------------------------------------------------------------------------
# values below the normal range that a weight brings back (the robustness
# issue's class 4): the sigmoid focal loss's per-element values under a weight
# 2^k are 2^k times the exact ones, where those lie in the normal range,
# whichever side of the target, hard or soft, at any gamma, within |x| = 700


def _ulps(computed, exact):
    """|computed - exact| in units of the float64 spacing at exact."""
    spacing = float(np.spacing(abs(np.float64(exact))))
    return float(abs(mpmath.mpf(float(computed)) - exact)) / spacing


# the descendants whose hard targets are the focal loss's (the asymmetric
# loss without a clip; the varifocal loss's target 0 times alpha, its target
# 1 the cross-entropy): (public prefix, keyword arguments, mpmath reference)
_HARD_FAMILIES = {
    "quality": ("quality_", lambda g: {"beta": g}, lambda x, y, g: quality_mp(x, y, g)),
    "asymmetric": ("asymmetric_", lambda g: {"gamma_pos": g / 2, "gamma_neg": g, "clip": 0.0},
                   lambda x, y, g: asymmetric_mp(x, y, g / 2, g, 0.0)),
    "varifocal": ("varifocal_", lambda g: {"alpha": 0.75, "gamma": g},
                  lambda x, y, g: varifocal_mp(x, y, g, 0.75)),
}


@examples()
@given(family=st.sampled_from(sorted(_HARD_FAMILIES)), x=st.floats(-700.0, 700.0),
       y=st.sampled_from([0.0, 1.0]),
       gamma=st.one_of(st.sampled_from([0.0, 0.5, 2.0, 30.0, 1000.0, 2000.0]),
                       st.floats(0.0, 3000.0)),
       k=st.integers(1, 1023))
def test_a_heavy_weight_brings_back_the_descendants_hard_values(family, x, y, gamma, k):
    """As the test above, for the descendants whose hard targets are the
    focal loss's: the quality focal loss, the asymmetric loss without a clip
    (gamma_pos = gamma / 2) and the varifocal loss (alpha 0.75).  Their
    float64 forms above gamma 8 keep the large-gamma allowance of the
    README's Accuracy section: 4 ULP plus |g log q| units of 2^-53 (the
    focal loss's own kernels take q^g to about 2^-100)."""
    prefix, parameters, reference = _HARD_FAMILIES[family]
    power = (gamma / 2 if family == "asymmetric" else gamma) if y == 1.0 else gamma
    if family == "varifocal" and y == 1.0:
        power = 0.0  # its target 1 is the cross-entropy
    with mpmath.workdps(30):
        log_q = -mpmath.log1p(mpmath.exp(x if y == 1.0 else -x))  # q = 1 - p_t
    bound = 4 + float(abs(power * log_q))
    logits, targets, weights = np.array([x]), np.array([y]), np.array([2.0 ** k])
    loss = getattr(focal, prefix + "loss")(logits, targets, **parameters(gamma),
                                           weights=weights, reduction="none")[0]
    grad = getattr(focal, prefix + "grad")(logits, targets, **parameters(gamma),
                                           weights=weights, reduction="none")[0]
    exact = reference(x, y, gamma)
    _assert_scaled([("loss", loss, exact[0]), ("grad", grad, exact[1])], k, bound)


def _assert_scaled(checked, k, bound=2.0):
    """Each computed value within `bound` ULP of 2^k times its exact value
    where that is a normal double, inf where it passes the range."""
    for what, computed, value in checked:
        scaled = value * mpmath.mpf(2) ** k
        note(f"{what}: {computed!r} for {mpmath.nstr(scaled, 17)}")
        if abs(scaled) > mpmath.mpf(np.finfo(np.float64).max):
            assert math.isinf(computed) and (computed > 0) == (scaled > 0), what
        elif abs(scaled) >= mpmath.mpf(2) ** -1022:
            assert _ulps(computed, scaled) <= bound, what


@examples()
@given(x=st.floats(-700.0, 700.0), y=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)),
       gamma=st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 30.0, 1000.0, 2000.0]),
                       st.floats(0.0, 3000.0)),
       k=st.integers(1, 1023))
def test_a_heavy_weight_brings_back_values_below_the_normal_range(x, y, gamma, k):
    """focal.loss and focal.grad of one element (float64, alpha None) under a
    weight of 2^k are within 2 ULP of 2^k times the exact values (mpmath) --
    the loss for any target, the gradient for hard ones (a soft target's
    gradient near its zero cancels: the README's Left list) -- wherever that
    product is a normal double, and inf where it passes the range.  The
    unweighted values may lie far below the normal range: q^g underflows on
    either side of a hard target at a large gamma, and e^-(1+g)|x| on the
    right side at a large |x|."""
    weight = 2.0 ** k
    logits, targets, weights = np.array([x]), np.array([y]), np.array([weight])
    loss = focal.loss(logits, targets, None, gamma, weights=weights, reduction="none")[0]
    grad = focal.grad(logits, targets, None, gamma, weights=weights, reduction="none")[0]
    exact = sigmoid_focal_mp(x, y, gamma, None)
    checked = [("loss", loss, exact.loss)] + ([("grad", grad, exact.grad)] if y in (0.0, 1.0) else [])
    _assert_scaled(checked, k)

"""focal against its NumPy twins (tests/reference.py) over a generated matrix.

Every loss of tests/registry.py gets every logits dtype x memory layout x
target form x reduction, and each of its valid parameter examples; the
sigmoid focal loss, in depth, every axis below.

Axes: shapes (0-d, empty, 1-D to 4-D), logits dtypes (float16/32/64, ints,
big-endian), memory layouts (Fortran, strided, reversed, transposed,
misaligned, read-only), dense targets of every kind (bool, ints, floats,
soft, broadcast), class indices (with background and ignored rows, several
integer dtypes), weights, alpha, gamma and every reduction.  Every case
checks loss, grad, loss_and_grad and (for reduction="none") grad_hess, their
dtypes, shapes and scalar types.
"""
from __future__ import annotations

import itertools
import math
import random
import zlib

import mpmath
import numpy as np
import pytest

import focal
from layouts import LAYOUTS, arrange, hard_target_values, label_values, logit_values, soft_target_values
from reference import focal_reference, result_dtype, sigmoid_focal_definition_mp, tolerance
import registry
from registry import LOSSES, SIGMOID, ignore_options, params_for

REDUCTIONS = ("none", "sum", "mean", "sum_over_positives")
GAMMAS = (0.0, 0.5, 1.0, 2.0, 3.7)
LOGIT_DTYPES = ("float16", "float32", "float64", "int32", "int8", "int64", ">f2", ">f4", ">f8")
DENSE_SHAPES = ((), (0,), (3, 0), (0, 5), (7,), (6, 1), (5, 4), (3, 4, 5), (2, 3, 2, 4))
LABEL_SHAPES = DENSE_SHAPES[1:]   # class indices need a class axis


def rng_for(*key) -> np.random.Generator:
    """A generator seeded by the test case, so every case is reproducible alone."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ---------------------------------------------------------------- checking


def assert_close(actual, expected, allowed, what: str) -> None:
    actual64 = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    error = np.abs(actual64 - expected)
    bad = ~(error <= allowed)   # a NaN is bad too
    if np.any(bad):
        ratio = np.where(bad, np.nan_to_num(error / np.maximum(allowed, 1e-300), nan=np.inf), 0.0)
        worst = np.unravel_index(np.argmax(ratio), ratio.shape) if ratio.ndim else ()
        raise AssertionError(
            f"{what}: {np.count_nonzero(bad)} of {bad.size} values off; worst at {worst}: "
            f"got {actual64[worst]!r}, expected {expected[worst]!r}, "
            f"allowed error {np.broadcast_to(allowed, expected.shape)[worst]!r}"
        )


def check_array(actual, expected, scale, dtype, shape, what, tolerance=tolerance) -> None:
    assert isinstance(actual, np.ndarray), f"{what}: expected an ndarray, got {type(actual)}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == shape, f"{what}: shape {actual.shape}, expected {shape}"
    assert_close(actual, expected, tolerance(dtype, expected, scale), what)


def check_loss(value, ref, dtype, shape, reduction, tolerance=tolerance) -> None:
    if reduction == "none":
        check_array(value, ref.loss, 0.0, dtype, shape, "loss", tolerance)
        return
    assert type(value) is dtype.type, f"loss: expected a NumPy {dtype} scalar, got {type(value)}"
    if math.isnan(ref.loss):
        assert np.isnan(value), f"loss: expected nan (nothing to average), got {value!r}"
    else:
        assert_close(value, ref.loss, tolerance(dtype, ref.loss), "loss")


def assert_same(a, b, what) -> None:
    """Bitwise-equal results, including the type of a scalar."""
    assert type(a) is type(b), f"{what}: {type(a)} vs {type(b)}"
    np.testing.assert_array_equal(a, b, err_msg=what, strict=True)


def check_every_function(loss, logits, targets, params, reduction="mean", weights=None, ignore_index=None):
    """Every public function of a registered loss on one input, against its twin."""
    options = dict(reduction=reduction, weights=weights, **ignore_options(loss, ignore_index))
    dtype = result_dtype(np.asarray(logits).dtype)
    shape = np.shape(logits)
    ref = loss.reference(logits, targets, params, **options)
    functions = loss.functions

    value = functions["loss"](logits, targets, **params, **options)
    check_loss(value, ref, dtype, loss.loss_shape(shape), reduction, loss.tolerance)

    gradient = functions["grad"](logits, targets, **params, **options)
    check_array(gradient, ref.grad, ref.grad_scale, dtype, shape, "grad", loss.tolerance)

    both = functions["loss_and_grad"](logits, targets, **params, **options)
    assert isinstance(both, tuple) and len(both) == 2
    assert_same(both[0], value, "loss_and_grad()[0] vs loss()")
    assert_same(both[1], gradient, "loss_and_grad()[1] vs grad()")

    if reduction == "none" and "grad_hess" in functions:
        del options["reduction"]
        g, h = functions["grad_hess"](logits, targets, **params, **options)
        check_array(g, ref.elementwise_grad, ref.elementwise_grad_scale, dtype, shape, "grad_hess grad",
                    loss.tolerance)
        check_array(h, ref.hess, ref.hess_scale, dtype, shape, "grad_hess hess", loss.tolerance)
        assert_same(g, gradient, "grad_hess()[0] vs grad(reduction='none')")
    return ref


def check_all(logits, targets, alpha=0.25, gamma=2.0, reduction="mean", weights=None, ignore_index=-1):
    """Every public function of the sigmoid focal loss on one input, against the reference."""
    return check_every_function(SIGMOID, logits, targets, dict(alpha=alpha, gamma=gamma), reduction,
                                weights, ignore_index)


# ------------------------------------------------------- the reference itself


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3, 0.75])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_reference_derivatives_match_mpmath(y, gamma, alpha):
    """The reference's closed forms are the derivatives of its loss (50 digits)."""
    x_values = np.array([-30.0, -8.0, -2.5, -0.7, 0.0, 0.4, 1.9, 6.0, 29.0])

    def fl(x):
        return sigmoid_focal_definition_mp(x, y, gamma, alpha)

    ref = focal_reference(x_values, np.full(x_values.shape, y), alpha, gamma, reduction="none")
    for i, x in enumerate(x_values):
        with mpmath.workdps(50):   # local: other modules set mpmath's global precision
            xm = mpmath.mpf(x)
            exact = [float(fl(xm)), float(mpmath.diff(fl, xm, 1)), float(mpmath.diff(fl, xm, 2))]
        got = [ref.loss[i], ref.grad[i], ref.hess[i]]
        scale = [0.0, ref.grad_scale[i], ref.hess_scale[i]]
        for name, g, e, s in zip(("loss", "grad", "hess"), got, exact, scale):
            assert abs(g - e) <= 1e-11 * (abs(e) + s) + 1e-300, (name, x, g, e)


# ------------------------------------------------------- dtypes and layouts


def make_targets(rng, form, shape, layout="C"):
    """(targets, ignore_index) of a form: 'dense' soft float64 or 'labels' int64."""
    if form == "dense":
        return arrange(soft_target_values(rng, shape), np.float64, layout), -1
    labels = label_values(rng, shape[:-1], shape[-1], "mixed", -1)
    return arrange(labels, np.int64, layout), -1


def _every_loss(*axes):
    """pytest parameters (loss, form, ...) over the registry: each loss with each
    of its target forms and reductions, crossed with the other `axes`."""
    for loss in LOSSES:
        for form in loss.target_forms:
            for reduction in loss.reductions:
                for values in itertools.product(*axes):
                    yield pytest.param(loss, form, reduction, *values,
                                       id="-".join([loss.name, form, reduction] + [str(v) for v in values]))


@pytest.mark.parametrize("loss, form, reduction, layout, dtype", list(_every_loss(LAYOUTS, LOGIT_DTYPES)))
def test_logit_dtypes_and_layouts(loss, form, reduction, layout, dtype):
    """Every registered loss, logits dtype, memory layout, target form and reduction."""
    shape = (3, 4, 5)
    # the sigmoid loss keeps the seeds (and so the numbers) it had before the registry
    key = (dtype, layout, "dense" if form == "soft" else form) if loss is SIGMOID else (loss.name, dtype, layout, form)
    rng = rng_for(*key)
    logits = registry.make_logits(rng, shape, dtype, layout)
    targets = registry.make_targets(loss, form, rng, shape, layout)
    check_every_function(loss, logits, targets, params_for(loss, loss.valid_params[0], shape[-1]), reduction)


def _valid_parameter_cases():
    for loss in LOSSES:
        for index in range(len(loss.valid_params)):
            for case in _every_loss_cases(loss):
                yield pytest.param(loss, *case, index, id=f"{loss.name}-{case[0]}-{case[1]}-{index}")


def _every_loss_cases(loss):
    return [(form, reduction) for form in loss.target_forms for reduction in loss.reductions]


@pytest.mark.parametrize("loss, form, reduction, index", list(_valid_parameter_cases()))
def test_valid_parameters(loss, form, reduction, index):
    """Every registered example of valid parameters, with weights, against the twin."""
    shape = (6, 5)
    rng = rng_for(loss.name, form, index)
    params = params_for(loss, loss.valid_params[index], shape[-1], rng)
    for dtype in (np.float32, np.float64):
        logits = registry.make_logits(rng, shape, dtype)
        targets = registry.make_targets(loss, form, rng, shape)
        check_every_function(loss, logits, targets, params, reduction,
                             weights=registry.make_weights(loss, rng, shape))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    "shape, form",
    [(s, "dense") for s in DENSE_SHAPES] + [(s, "labels") for s in LABEL_SHAPES],
    ids=lambda v: str(v).replace(" ", ""),
)
def test_shapes(shape, form, layout, reduction):
    rng = rng_for(shape, form, layout)
    logits = arrange(logit_values(rng, shape, np.float32), np.float32, layout)
    targets, ignore_index = make_targets(rng, form, shape, layout)
    ref = check_all(logits, targets, 0.25, 2.0, reduction, ignore_index=ignore_index)
    if math.prod(shape) == 0 and reduction != "none":
        value = focal.loss(logits, targets, reduction=reduction, ignore_index=ignore_index)
        if reduction == "mean":
            assert np.isnan(value), "the mean of no elements is nan"
        else:
            assert value == 0.0
        assert ref.denominator == (0.0 if reduction == "mean" else 1.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32"])
def test_zero_dimensional(dtype, reduction):
    for x, y, w in [(2.5, 1, None), (-3.0, 0.0, 2.0), (0.0, 0.4, 0.0), (-7.0, 1.0, True)]:
        logits = np.array(x).astype(dtype)
        targets = np.array(y)
        weights = None if w is None else np.array(w)
        for alpha in (None, 0.25):
            check_all(logits, targets, alpha, 2.0, reduction, weights=weights)


# ------------------------------------------------------------ dense targets

DENSE_TARGET_KINDS = {
    # name: (values builder(rng, shape) -> float64, dtype, shape transform)
    "bool": (hard_target_values, "bool", None),
    "int8": (hard_target_values, "int8", None),
    "uint8": (hard_target_values, "uint8", None),
    "int64": (hard_target_values, "int64", None),
    "float32-hard": (hard_target_values, "float32", None),
    "float64-hard": (hard_target_values, "float64", None),
    "float16-soft": (soft_target_values, "float16", None),
    "float32-soft": (soft_target_values, "float32", None),
    "float64-soft": (soft_target_values, "float64", None),
    "big-endian-soft": (soft_target_values, ">f8", None),
    "broadcast-rows": (soft_target_values, "float64", lambda s: s[:-1] + (1,)),
    "broadcast-classes": (hard_target_values, "bool", lambda s: (1,) * (len(s) - 1) + s[-1:]),
    "broadcast-all": (lambda rng, s: np.full(s, 0.3), "float32", lambda s: (1,) * len(s)),
    "broadcast-middle": (soft_target_values, "float32", lambda s: s[:1] + (1,) * (len(s) > 1) + s[2:]),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("kind", list(DENSE_TARGET_KINDS))
def test_dense_targets(kind, dtype, shape, reduction):
    build, target_dtype, transform = DENSE_TARGET_KINDS[kind]
    rng = rng_for(kind, dtype, shape)
    logits = arrange(logit_values(rng, shape, dtype), dtype)
    target_shape = transform(shape) if transform else shape
    targets = arrange(build(rng, target_shape), target_dtype)
    check_all(logits, targets, 0.25, 2.0, reduction)


# ------------------------------------------------------------ class indices

LABEL_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", ">i4", ">i8")


def ignore_value(label_dtype) -> int:
    """An ignore_index the dtype can hold and that is not a class."""
    return int(np.iinfo(np.dtype(label_dtype)).max) if np.dtype(label_dtype).kind == "u" else -100


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("content", ["mixed", "positives", "background", "ignored"])
@pytest.mark.parametrize("shape", [(7,), (6, 1), (5, 4), (3, 4, 5), (2, 3, 2, 4)], ids=str)
@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
def test_class_indices(label_dtype, shape, content, reduction):
    rng = rng_for(label_dtype, shape, content)
    ignore_index = ignore_value(label_dtype)
    logits_dtype = np.float64 if LABEL_DTYPES.index(label_dtype) % 2 else np.float32
    logits = arrange(logit_values(rng, shape, logits_dtype), logits_dtype)
    labels = arrange(label_values(rng, shape[:-1], shape[-1], content, ignore_index), label_dtype)
    ref = check_all(logits, labels, 0.25, 2.0, reduction, ignore_index=ignore_index)

    # An ignored row gets exactly 0 (loss with "none", gradient, hessian).
    ignored = np.asarray(labels).astype(np.int64) == ignore_index
    g = focal.grad(logits, labels, reduction=reduction, ignore_index=ignore_index)
    assert np.all(g[ignored] == 0)
    g, h = focal.grad_hess(logits, labels, ignore_index=ignore_index)
    assert np.all(g[ignored] == 0) and np.all(h[ignored] == 0)
    if reduction == "none":
        assert np.all(focal.loss(logits, labels, reduction="none", ignore_index=ignore_index)[ignored] == 0)
    # Class indices give the numbers of the equivalent one-hot targets and 0/1 weights.
    one_hot = (np.asarray(labels).astype(np.int64)[..., None] == np.arange(shape[-1])).astype(np.float64)
    keep = np.broadcast_to(~ignored[..., None], shape)
    from_labels = focal.loss(logits, labels, reduction=reduction, ignore_index=ignore_index)
    from_one_hot = focal.loss(logits, one_hot, reduction=reduction, weights=keep)
    if reduction == "mean" and not np.any(keep):
        assert np.isnan(from_labels) and np.isnan(from_one_hot)
    else:
        dtype = result_dtype(logits.dtype)
        assert_close(from_one_hot, from_labels, tolerance(dtype, from_labels), "one-hot vs class indices")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-1, -100, 4, 2**40])
def test_ignore_index_values(ignore_index, reduction):
    """Any integer outside [0, C] marks ignored rows, including values past C."""
    shape = (6, 3)
    rng = rng_for("ignore", ignore_index)
    logits = logit_values(rng, shape, np.float64)
    labels = np.array([0, 3, ignore_index, 2, ignore_index, 1], dtype=np.int64)
    check_all(logits, labels, 0.25, 2.0, reduction, ignore_index=ignore_index)


# ------------------------------------------------------------------ weights

WEIGHT_KINDS = {
    # name: builder(rng, shape) -> weights
    "float64": lambda rng, s: rng.uniform(0.0, 2.0, s),
    "float32": lambda rng, s: rng.uniform(0.0, 2.0, s).astype(np.float32),
    "float16": lambda rng, s: rng.uniform(0.0, 2.0, s).astype(np.float16),
    "big-endian-misaligned": lambda rng, s: arrange(rng.uniform(0.0, 2.0, s), ">f8", "misaligned"),
    "strided": lambda rng, s: arrange(rng.uniform(0.0, 2.0, s), np.float64, "strided"),
    "fortran": lambda rng, s: arrange(rng.uniform(0.0, 2.0, s), np.float64, "F"),
    "bool": lambda rng, s: rng.uniform(size=s) < 0.7,
    "int": lambda rng, s: rng.integers(0, 4, size=s).astype(np.int32),
    "list": lambda rng, s: rng.uniform(0.0, 2.0, s).tolist(),
    "broadcast-rows": lambda rng, s: rng.uniform(0.0, 2.0, s[:-1] + (1,)),
    "broadcast-classes-1d": lambda rng, s: rng.uniform(0.0, 2.0, s[-1:]),
    "scalar": lambda rng, s: 2.5,
    "0-d": lambda rng, s: np.array(0.75, dtype=np.float32),
    "some-zero-rows": lambda rng, s: np.where(rng.uniform(size=s[:-1] + (1,)) < 0.5, 0.0, 1.5),
    "all-zero": lambda rng, s: np.zeros(s),
    "all-false": lambda rng, s: np.zeros(s, dtype=bool),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("form", ["dense", "labels"])
@pytest.mark.parametrize("kind", list(WEIGHT_KINDS))
def test_weights(kind, form, dtype, reduction):
    shape = (6, 5)
    rng = rng_for(kind, form, dtype)
    logits = arrange(logit_values(rng, shape, dtype), dtype)
    targets, ignore_index = make_targets(rng, form, shape)
    weights = WEIGHT_KINDS[kind](rng, shape)
    ref = check_all(logits, targets, 0.25, 2.0, reduction, weights=weights, ignore_index=ignore_index)
    if kind.startswith("all-") and reduction == "mean":
        assert math.isnan(ref.loss)


def _weight_scale_cases():
    for scale in (1e-40, 1.0, 1e20, 1e39, 1e300):
        for form in ("dense", "labels"):
            for dtype in ("float32", "float64"):
                yield scale, form, dtype


@pytest.mark.parametrize("scale, form, dtype", list(_weight_scale_cases()))
def test_mean_does_not_depend_on_the_scale_of_the_weights(scale, form, dtype):
    """reduction="mean" divides by the sum of the weights: scaling all weights
    by any factor that keeps them finite gives the same loss and gradient."""
    shape = (6, 5)
    rng = rng_for("weight-scale", form, dtype)
    logits = arrange(logit_values(rng, shape, dtype), dtype)
    targets, ignore_index = make_targets(rng, form, shape)
    weights = rng.uniform(0.5, 2.0, shape) * scale
    with np.errstate(over="raise", invalid="raise"):   # an overflow on the way fails too
        check_all(logits, targets, 0.25, 2.0, "mean", weights=weights, ignore_index=ignore_index)


# ------------------------------------------------------------ alpha, gamma

ALPHAS = {
    "None": None,
    "0": 0.0,
    "0.25": 0.25,
    "1": 1,
    "numpy-scalar": np.float32(0.75),
    "per-class": np.array([0.1, 0.25, 0.5, 0.9, 1.0, 0.0]),
    "per-class-list": [0.2, 0.4, 0.6, 0.8, 0.3, 0.7],
    "per-class-float32-strided": np.linspace(0.0, 1.0, 12, dtype=np.float32)[::2],
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("form", ["hard", "soft", "labels"])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", list(ALPHAS))
def test_alpha_and_gamma(alpha, gamma, form, reduction):
    shape = (5, 6)
    rng = rng_for(alpha, gamma, form)
    logits = logit_values(rng, shape, np.float64)
    if form == "labels":
        targets = label_values(rng, shape[:-1], shape[-1], "mixed", -1)
    else:
        targets = (hard_target_values if form == "hard" else soft_target_values)(rng, shape)
    check_all(logits, targets, ALPHAS[alpha], gamma, reduction)
    # float32 logits take the other loop of the C core
    check_all(logits.astype(np.float32), targets, ALPHAS[alpha], gamma, reduction)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_gamma_as_numpy_and_int(gamma):
    rng = rng_for("gamma-types", gamma)
    logits = logit_values(rng, (4, 3), np.float64)
    targets = soft_target_values(rng, (4, 3))
    gammas = [np.float32(gamma), np.float64(gamma), np.array(gamma)]
    if gamma == int(gamma):
        gammas += [int(gamma), np.int64(gamma)]
    for g in gammas:
        expected = focal_reference(logits, targets, 0.25, float(g), reduction="sum").loss
        assert_close(focal.loss(logits, targets, 0.25, g, reduction="sum"), expected,
                     tolerance(np.float64, expected), f"gamma={g!r}")


# ------------------------------------------------------ random combinations

COMBINATION_AXES = dict(
    dtype=LOGIT_DTYPES,
    layout=LAYOUTS,
    shape=((7,), (6, 1), (5, 4), (3, 4, 5), (2, 3, 2, 4), (0, 4)),
    targets=tuple(DENSE_TARGET_KINDS) + tuple(f"labels-{d}" for d in LABEL_DTYPES),
    weights=(None,) + tuple(k for k in WEIGHT_KINDS if k != "list"),
    alpha=("None", "0.25", "1", "per-class"),
    gamma=GAMMAS,
    reduction=REDUCTIONS,
)
_draw = random.Random(20170807)
COMBINATIONS = [tuple(_draw.choice(axis) for axis in COMBINATION_AXES.values()) for _ in range(400)]


def check_combination(case):
    """check_all on one point of COMBINATION_AXES (arrays built from a seed of the case)."""
    dtype, layout, shape, target_kind, weight_kind, alpha_name, gamma, reduction = case
    rng = rng_for(case)
    logits = arrange(logit_values(rng, shape, dtype), dtype, layout)
    ignore_index = -1
    if target_kind.startswith("labels-"):
        label_dtype = target_kind[len("labels-"):]
        ignore_index = ignore_value(label_dtype)
        labels = label_values(rng, shape[:-1], shape[-1], "mixed", ignore_index)
        targets = arrange(labels, label_dtype, layout)
    else:
        build, target_dtype, transform = DENSE_TARGET_KINDS[target_kind]
        target_shape = transform(shape) if transform else shape
        targets = arrange(build(rng, target_shape), target_dtype, layout)
    weights = None if weight_kind is None else WEIGHT_KINDS[weight_kind](rng, shape)
    if alpha_name == "per-class":
        alpha = rng.uniform(0.0, 1.0, shape[-1])
    else:
        alpha = ALPHAS[alpha_name]
    check_all(logits, targets, alpha, gamma, reduction, weights=weights, ignore_index=ignore_index)


@pytest.mark.parametrize("case", COMBINATIONS, ids=lambda c: "-".join(map(str, c)).replace(" ", ""))
def test_random_combinations(case):
    check_combination(case)


# ------------------------------------------------------------- large arrays

LARGE_CASES = [
    # (logits dtype, layout, shape, targets, weights): more elements than NumPy's
    # iterator buffer (8192), so casts and misaligned reads run in several chunks
    ("float16", "misaligned", (3000, 5), "labels-uint8", "broadcast-classes-1d"),
    (">f8", "strided", (1500, 2, 7), "float64-soft", "float32"),
    ("float32", "F", (2500, 6), "labels->i8", "bool"),
    ("int32", "reversed", (900, 3, 4), "float16-soft", None),
    (">f4", "transposed", (4, 2600, 3), "broadcast-rows", "broadcast-rows"),
    ("float64", "C", (20000,), "bool", "big-endian-misaligned"),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", LARGE_CASES, ids=lambda c: "-".join(map(str, c)).replace(" ", ""))
def test_large_arrays(case, reduction):
    dtype, layout, shape, target_kind, weight_kind = case
    check_combination((dtype, layout, shape, target_kind, weight_kind, "per-class", 2.0, reduction))


# ------------------------------------------------------------ result dtypes


@pytest.mark.parametrize(
    "dtype, expected",
    [
        ("float16", np.float32), ("float32", np.float32), ("float64", np.float64),
        (">f2", np.float32), (">f4", np.float32), (">f8", np.float64),
        ("int8", np.float32), ("uint8", np.float32), ("int16", np.float32), ("uint16", np.float32),
        ("int32", np.float64), ("uint32", np.float64), ("int64", np.float64), ("uint64", np.float64),
        (">i4", np.float64),
    ],
)
def test_result_dtype(dtype, expected):
    expected = np.dtype(expected)
    assert result_dtype(dtype) == expected   # the reference agrees with the documentation
    logits = arrange([[1, 0, 3], [2, 5, 0]], dtype)
    for targets in (np.array([[1, 0, 0], [0, 0.5, 1]]), np.array([0, 3])):
        for reduction in ("sum", "mean", "sum_over_positives"):
            value = focal.loss(logits, targets, reduction=reduction)
            assert type(value) is expected.type, (reduction, type(value))
            value, gradient = focal.loss_and_grad(logits, targets, reduction=reduction)
            assert type(value) is expected.type and gradient.dtype == expected
            assert focal.grad(logits, targets, reduction=reduction).dtype == expected
        assert focal.loss(logits, targets, reduction="none").dtype == expected
        g, h = focal.grad_hess(logits, targets)
        assert g.dtype == expected and h.dtype == expected
        assert g.shape == h.shape == (2, 3)


def test_array_likes():
    """Nested lists and Python scalars work like the float64 / int64 arrays they make."""
    logits = [[1.5, -2.0, 0.25], [3.0, 0.0, -0.5]]
    for targets in ([[1, 0, 0], [0, 1, 0]], [[True, False, False], [False, True, False]], [0, 1]):
        for reduction in REDUCTIONS:
            check_all(logits, targets, [0.2, 0.5, 0.8], 2.0, reduction)
    check_all([[1, -2, 0]], [[1, 0, 1]], 0.25, 2.0, "sum")   # int64 logits: float64 result
    check_all(1.5, 1.0, 0.25, 2.0, "sum")
    assert type(focal.loss(1.5, 1.0)) is np.float64


@pytest.mark.parametrize("pi", [1e-300, 1e-8, 0.01, 0.25, 0.5, 0.9, 1 - 1e-9])
def test_prior_bias(pi):
    b = focal.prior_bias(pi)
    assert type(b) is float
    with mpmath.workdps(50):
        exact = float(mpmath.log(mpmath.mpf(pi)) - mpmath.log(1 - mpmath.mpf(pi)))   # logit(pi)
    assert abs(b - exact) <= 4 * np.finfo(float).eps * abs(exact) + 1e-300, (b, exact)
    if pi == 0.01:
        assert round(b, 5) == -4.59512


@pytest.mark.parametrize("case", ["contiguous", "broadcast", "strided", "int32", "wide",
                                  "one-class", "threaded"])
def test_class_indices_row_by_row_equal_one_hot_targets_bitwise(case):
    """Class indices are expanded row by row (a row's targets 0 but at its label,
    its weights 0 when ignored): read in place from contiguous labels, from the
    iterator's run for strided or broadcast ones, or element by element where the
    iterator casts them.  Every path gives the bits of the equivalent one-hot
    targets with 0/1 weights, rows crossing blocks of 256 elements included."""
    rows, classes = {"wide": (9, 300), "one-class": (40, 1), "threaded": (700, 81)}.get(case,
                                                                                      (37, 13))
    rng = np.random.default_rng(len(case))
    logits = rng.normal(0.0, 3.0, (rows, classes)).astype(np.float32)
    labels = rng.integers(-1, classes + 1, rows)  # -1 ignored, classes background
    if case == "broadcast":
        labels = np.broadcast_to(np.array(classes // 2), (rows,))
    elif case == "strided":
        labels = np.repeat(labels, 2)[::2]
    elif case == "int32":
        labels = labels.astype(np.int32)
    ignored = np.asarray(labels) == -1
    one_hot = (np.asarray(labels)[:, None] == np.arange(classes)).astype(np.float32)
    keep = np.broadcast_to((~ignored)[:, None], logits.shape).astype(np.float32)
    for reduction in ("none", "sum"):
        from_labels = focal.loss_and_grad(logits, labels, reduction=reduction)
        from_one_hot = focal.loss_and_grad(logits, one_hot, reduction=reduction, weights=keep)
        for a, b in zip(from_labels, from_one_hot):
            assert np.array_equal(a, b), (case, reduction)
    mean_labels = focal.loss(logits, labels)
    mean_one_hot = focal.loss(logits, one_hot, weights=keep)
    assert np.isclose(mean_labels, mean_one_hot, rtol=1e-6), (mean_labels, mean_one_hot)
    # a bad label in the middle of a block is named, whatever the path
    bad = np.array(labels, dtype=np.asarray(labels).dtype)
    bad[rows // 2] = classes + 3
    with pytest.raises(ValueError, match=f"{classes + 3}"):
        focal.loss(logits, bad)


def _numpy_max_dims() -> int:
    """NumPy's largest number of dimensions: 64 since NumPy 2, 32 before."""
    try:
        np.empty((1,) * 64)
        return 64
    except ValueError:
        return 32


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
@pytest.mark.parametrize("ndim", [32, 33, 64])
def test_many_dimensions_with_weights(loss, ndim):
    """NumPy 2's arrays have up to 64 dimensions; np.broadcast_shapes takes 32,
    which once made every call of more than 32 with weights raise NumPy's
    RuntimeError.  Logits of 32, 33 and 64 dimensions (as many as this NumPy
    makes), with full and broadcast weights, give the bits of the same call
    on their 2-D reshape."""
    if ndim > _numpy_max_dims():
        pytest.skip(f"this NumPy makes arrays of at most {_numpy_max_dims()} dimensions")
    rng = np.random.default_rng(ndim)
    classes = 4
    shape = (1,) * (ndim - 2) + (3, classes)
    x = registry.make_logits(rng, shape)
    params = params_for(loss, loss.valid_params[0], classes)
    for form in loss.target_forms:
        t = registry.make_targets(loss, form, rng, shape)
        full = registry.make_weights(loss, rng, shape)
        for w, flat_w in ((full, full.reshape(3, -1)[:, 0] if loss.family == "softmax"
                           else full.reshape(3, classes)), (np.float64(0.5), np.float64(0.5))):
            flat_t = t.reshape(3, -1) if t.ndim == ndim else t.reshape(3)
            for reduction in ("none", "mean"):
                got = loss.functions["loss_and_grad"](x, t, **params, reduction=reduction,
                                                      weights=w)
                want = loss.functions["loss_and_grad"](x.reshape(3, classes), flat_t, **params,
                                                       reduction=reduction, weights=flat_w)
                for a, b in zip(got, want):
                    assert np.array_equal(np.asarray(a).reshape(-1), np.asarray(b).reshape(-1))

"""Inputs are never modified, and out= writes exactly where it is told.

Every public function reads its arrays in place (no copies, any layout); a
call must leave every input bitwise unchanged, with the same flags, whether
it succeeds or fails.  With out= the result goes into the given array, which
is returned; out may be the logits themselves (in place), and a call that
fails validation must not have written a single element first.  The sigmoid
focal loss in depth; every loss of tests/registry.py in the last section.
"""
from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

import focal
import registry
from layouts import LAYOUTS, arrange, label_values, logit_values, soft_target_values
from registry import LOSSES, SIGMOID

FLAGS = ("C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA", "WRITEABLE", "ALIGNED", "WRITEBACKIFCOPY")
REDUCTIONS = ("none", "sum", "mean", "sum_over_positives")


def owner(a: np.ndarray) -> np.ndarray:
    """The array that owns a view's memory (the whole buffer, gaps included)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


class Snapshot:
    """Everything observable about an argument: its bytes (and its owner's), layout and flags."""

    def __init__(self, value):
        self.value = value
        self.state = self.capture(value)

    @staticmethod
    def capture(value):
        if isinstance(value, np.ndarray):
            memory = owner(value)
            return (
                value.shape, value.strides, value.dtype.str,
                value.__array_interface__["data"][0],
                {flag: bool(value.flags[flag]) for flag in FLAGS},
                memory.tobytes(order="A"),
                {flag: bool(memory.flags[flag]) for flag in FLAGS},
            )
        if isinstance(value, list):
            return repr(value)
        return repr(value), type(value)

    def assert_unchanged(self, name):
        assert self.capture(self.value) == self.state, f"{name} was modified"


def make_case(name):
    """(logits, targets, options) for one kind of input; several share no layout."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "dense-float32":
        shape = (6, 5)
        return (arrange(logit_values(rng, shape, np.float32), np.float32),
                soft_target_values(rng, shape), {})
    if name == "labels-weights-alpha":
        shape = (4, 3, 5)
        labels = label_values(rng, shape[:-1], shape[-1], "mixed", -1)
        return (arrange(logit_values(rng, shape, np.float64), np.float64, "strided"),
                arrange(labels, np.int64, "strided"),
                dict(weights=rng.uniform(0, 2, (1, 1, 5)), alpha=np.linspace(0.1, 0.9, 5)))
    if name == "misaligned-big-endian":
        shape = (7, 4)
        return (arrange(logit_values(rng, shape, ">f4"), ">f4", "misaligned"),
                arrange(rng.uniform(size=shape) < 0.3, bool, "misaligned"),
                dict(weights=arrange(rng.uniform(0, 2, shape), ">f8", "misaligned")))
    if name == "readonly":
        shape = (5, 6)
        labels = label_values(rng, shape[:-1], shape[-1], "mixed", -7)
        alpha = arrange(rng.uniform(0, 1, 6), np.float64, "readonly")
        return (arrange(logit_values(rng, shape, np.float64), np.float64, "readonly"),
                arrange(labels, np.int32, "readonly"),
                dict(weights=arrange(rng.uniform(0, 2, shape), np.float32, "readonly"),
                     alpha=alpha, ignore_index=-7))
    if name == "fortran-float16":
        shape = (3, 4, 5)
        return (arrange(logit_values(rng, shape, np.float16), np.float16, "F"),
                arrange(soft_target_values(rng, shape), np.float32, "F"),
                dict(weights=arrange(rng.integers(0, 3, shape), np.int16, "F"),
                     alpha=arrange(np.linspace(0, 1, 5), np.float32, "strided")))
    if name == "int-logits-uint8-labels":
        shape = (8, 3)
        labels = label_values(rng, shape[:-1], shape[-1], "mixed", 255)
        return (arrange(np.round(logit_values(rng, shape, np.int32)), np.int32, "reversed"),
                arrange(labels, np.uint8, "reversed"),
                dict(ignore_index=255, weights=rng.uniform(size=(8, 1)) < 0.5))
    if name == "specials":
        # NaN (with a payload), infinities and -0.0 must survive bit for bit
        logits = np.array([[np.nan, -np.inf, np.inf, -0.0, 0.0, 3.0]])
        logits.view(np.uint64)[0, 0] |= np.uint64(0x1234)
        return logits, np.array([[1.0, 1.0, 0.0, 0.5, 1.0, 0.0]]), dict(alpha=None, gamma=0.5)
    if name == "0-d":
        return np.array(1.25, dtype=np.float32), np.array(True), dict(weights=np.array(3.0))
    if name == "empty":
        return np.zeros((0, 4)), np.zeros((0,), np.int64), dict(weights=np.ones(4))
    raise ValueError(name)


CASES = ("dense-float32", "labels-weights-alpha", "misaligned-big-endian", "readonly",
         "fortran-float16", "int-logits-uint8-labels", "specials", "0-d", "empty")

CALLS = registry.calls(SIGMOID)


def results_of(value):
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("call", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("case", CASES)
def test_inputs_unchanged(case, call):
    _, function, extra = call
    logits, targets, options = make_case(case)
    snapshots = {"logits": Snapshot(logits), "targets": Snapshot(targets)}
    snapshots.update({key: Snapshot(value) for key, value in options.items()})
    with np.errstate(all="ignore"):
        result = function(logits, targets, **options, **extra)
    for name, snapshot in snapshots.items():
        snapshot.assert_unchanged(name)
    for part in results_of(result):
        assert isinstance(part, (np.ndarray, np.floating))
        if isinstance(part, np.ndarray):
            assert part.shape == np.shape(logits)
            for name, value in [("logits", logits), ("targets", targets)] + list(options.items()):
                if isinstance(value, np.ndarray):
                    assert not np.shares_memory(part, value), f"a result is a view of {name}"
    # A second call on the untouched inputs gives the same numbers.
    with np.errstate(all="ignore"):
        again = function(logits, targets, **options, **extra)
    for first, second in zip(results_of(result), results_of(again)):
        np.testing.assert_array_equal(first, second, strict=True)


@pytest.mark.parametrize("pi", [0.01, np.float32(0.25), np.array(0.5)])
def test_prior_bias_input_unchanged(pi):
    snapshot = Snapshot(pi)
    b = focal.prior_bias(pi)
    snapshot.assert_unchanged("pi")
    assert np.isclose(1 / (1 + np.exp(-b)), float(pi), rtol=1e-14)


# ------------------------------------------------------------------ errors

BAD_INPUTS = {
    # name: a change to (targets, options) that makes the last element invalid
    "target-above-1": lambda t, o: (_set_last(t, 1.5), o),
    "target-nan": lambda t, o: (_set_last(t, np.nan), o),
    "weight-negative": lambda t, o: (t, dict(o, weights=_set_last(np.ones(t.shape), -1.0))),
    "weight-nan": lambda t, o: (t, dict(o, weights=_set_last(np.ones(t.shape), np.nan))),
}


def _set_last(a, value):
    a = np.array(a, dtype=np.float64)
    a.reshape(-1)[-1] = value
    return a


def bad_label_case(dtype=np.float32):
    """Class indices whose last row holds a class that does not exist."""
    rng = np.random.default_rng(5)
    logits = arrange(logit_values(rng, (6, 4), dtype), dtype)
    labels = np.array([0, 4, -1, 2, 3, 5])
    return logits, labels, {}


def bad_dense_case(kind, dtype=np.float32):
    rng = np.random.default_rng(6)
    logits = arrange(logit_values(rng, (6, 4), dtype), dtype)
    targets, options = BAD_INPUTS[kind](soft_target_values(rng, (6, 4)), {})
    return logits, targets, options


BAD_CASES = list(BAD_INPUTS) + ["label-out-of-range"]
OUT_CALLS = [
    ("grad", focal.grad, {}),
    ("grad-mean", focal.grad, dict(reduction="mean")),
    ("loss_and_grad", focal.loss_and_grad, {}),
    ("loss_and_grad-sum", focal.loss_and_grad, dict(reduction="sum")),
    ("loss-none", focal.loss, dict(reduction="none")),
]


def bad_case(kind, dtype=np.float32):
    return bad_label_case(dtype) if kind == "label-out-of-range" else bad_dense_case(kind, dtype)


@pytest.mark.parametrize("call", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("kind", BAD_CASES)
def test_failed_call_leaves_inputs_unchanged(kind, call):
    _, function, extra = call
    logits, targets, options = bad_case(kind)
    snapshots = [Snapshot(logits), Snapshot(targets)] + [Snapshot(v) for v in options.values()]
    with pytest.raises(ValueError, match="targets|weights"):
        function(logits, targets, **options, **extra)
    for snapshot in snapshots:
        snapshot.assert_unchanged("an input of a failed call")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("call", OUT_CALLS, ids=[c[0] for c in OUT_CALLS])
@pytest.mark.parametrize("kind", BAD_CASES)
def test_failed_in_place_call_leaves_logits_untouched(kind, call, dtype):
    """out=logits with an invalid last element: ValueError, and not one element written."""
    _, function, extra = call
    logits, targets, options = bad_case(kind, dtype)
    snapshot = Snapshot(logits)
    with pytest.raises(ValueError, match="targets|weights"):
        function(logits, targets, **options, **extra, out=logits)
    snapshot.assert_unchanged("logits of a failed in-place call")
    # The same with out over the logits in another order.
    with pytest.raises(ValueError, match="targets|weights"):
        function(logits, targets, **options, **extra, out=logits[::-1])
    snapshot.assert_unchanged("logits of a failed call with out=logits[::-1]")


# --------------------------------------------------------------------- out=

OUT_CASES = {
    "dense-float32": lambda rng: (
        arrange(logit_values(rng, (6, 5), np.float32), np.float32),
        soft_target_values(rng, (6, 5)), {}),
    "dense-float64-weights": lambda rng: (
        arrange(logit_values(rng, (6, 5), np.float64), np.float64),
        rng.uniform(size=(6, 5)) < 0.4, dict(weights=rng.uniform(0, 2, (6, 5)))),
    "labels-alpha-weights": lambda rng: (
        arrange(logit_values(rng, (4, 3, 5), np.float32), np.float32),
        label_values(rng, (4, 3), 5, "mixed", -1),
        dict(alpha=np.linspace(0, 1, 5), weights=rng.uniform(0, 2, (4, 1, 5)))),
    "labels-float64": lambda rng: (
        arrange(logit_values(rng, (7, 3), np.float64), np.float64),
        label_values(rng, (7,), 3, "mixed", -1), dict(gamma=0.5)),
}
OUT_FUNCTIONS = [(name, SIGMOID.functions[function], reduction)
                 for name, function, _, reduction in registry.out_calls(SIGMOID)]
OUT_LAYOUTS = ("C", "F", "strided", "reversed", "transposed", "misaligned")


def returned_out(name, result):
    """The part of the result that out= receives."""
    return result[1] if "loss_and_grad" in name else result


def make_out(shape, dtype, layout):
    """An out array of `layout` filled with a sentinel, and its owner (gaps included)."""
    if layout == "strided":
        big = np.full((2 * shape[0],) + shape[1:], -123.0, dtype)
        return big[::2], big
    out = arrange(np.full(shape, -123.0), dtype, layout)
    return out, owner(out)


@pytest.mark.parametrize("layout", OUT_LAYOUTS)
@pytest.mark.parametrize("function", OUT_FUNCTIONS, ids=[f[0] for f in OUT_FUNCTIONS])
@pytest.mark.parametrize("case", list(OUT_CASES))
def test_out_receives_result(case, function, layout):
    name, f, reduction = function
    logits, targets, options = OUT_CASES[case](np.random.default_rng(len(case)))
    expected = f(logits, targets, reduction=reduction, **options)
    out, memory = make_out(logits.shape, logits.dtype, layout)
    before = memory.copy()
    result = f(logits, targets, reduction=reduction, **options, out=out)
    assert returned_out(name, result) is out, "the function must return out itself"
    np.testing.assert_array_equal(out, returned_out(name, expected), strict=True)
    if "loss_and_grad" in name:
        np.testing.assert_array_equal(result[0], expected[0], strict=True)
    if layout == "strided":
        np.testing.assert_array_equal(memory[1::2], before[1::2], err_msg="out's gaps were written")


@pytest.mark.parametrize("logits_layout", ["C", "strided", "F", "misaligned"])
@pytest.mark.parametrize("function", OUT_FUNCTIONS, ids=[f[0] for f in OUT_FUNCTIONS])
@pytest.mark.parametrize("case", list(OUT_CASES))
def test_out_is_logits(case, function, logits_layout):
    """In place: the numbers are those of a call without out."""
    name, f, reduction = function
    logits, targets, options = OUT_CASES[case](np.random.default_rng(len(case)))
    logits = arrange(logits, logits.dtype, logits_layout)
    expected = f(logits.copy(), targets, reduction=reduction, **options)
    memory = owner(logits)
    outside = memory.copy()
    result = f(logits, targets, reduction=reduction, **options, out=logits)
    assert returned_out(name, result) is logits
    np.testing.assert_array_equal(logits, returned_out(name, expected), strict=True)
    if "loss_and_grad" in name:
        np.testing.assert_array_equal(result[0], expected[0], strict=True)
    if logits_layout == "strided":
        # the rest of the owner's memory is untouched
        mask = np.ones(memory.shape, bool)
        mask[tuple(slice(1, None, 2) for _ in memory.shape)] = False
        np.testing.assert_array_equal(memory[mask], outside[mask])


@pytest.mark.parametrize("function", OUT_FUNCTIONS, ids=[f[0] for f in OUT_FUNCTIONS])
@pytest.mark.parametrize("case", list(OUT_CASES))
def test_out_overlapping_inputs(case, function):
    """out over the logits in reverse order, or over float targets or weights."""
    name, f, reduction = function
    logits, targets, options = OUT_CASES[case](np.random.default_rng(len(case)))
    expected = returned_out(name, f(logits.copy(), targets, reduction=reduction, **options))

    reversed_out = logits[::-1]
    result = f(logits, targets, reduction=reduction, **options, out=reversed_out)
    assert returned_out(name, result) is reversed_out
    np.testing.assert_array_equal(reversed_out, expected, strict=True)

    if "weights" in options and np.ndim(options["weights"]) == logits.ndim:
        weights = np.broadcast_to(options["weights"], logits.shape).astype(logits.dtype)
        expected_w = returned_out(name, f(logits, targets, reduction=reduction, **dict(options, weights=weights.copy())))
        result = f(logits, targets, reduction=reduction, **dict(options, weights=weights), out=weights)
        assert returned_out(name, result) is weights
        np.testing.assert_array_equal(weights, expected_w, strict=True)
    if np.ndim(targets) == logits.ndim:
        dense = np.asarray(targets).astype(logits.dtype)
        expected_t = returned_out(name, f(logits, dense.copy(), reduction=reduction, **options))
        result = f(logits, dense, reduction=reduction, **options, out=dense)
        assert returned_out(name, result) is dense
        np.testing.assert_array_equal(dense, expected_t, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_on_a_strided_view_of_a_larger_array(dtype):
    rng = np.random.default_rng(11)
    logits = arrange(logit_values(rng, (5, 4), dtype), dtype)
    labels = np.array([0, 4, -1, 3, 1])
    big = np.full((10, 8), 99.0, dtype)
    out = big[::2, 1::2]
    g = focal.grad(logits, labels, reduction="sum_over_positives", out=out)
    assert g is out
    np.testing.assert_array_equal(big[::2, 1::2], focal.grad(logits, labels, reduction="sum_over_positives"))
    gaps = np.ones(big.shape, bool)
    gaps[::2, 1::2] = False
    assert np.all(big[gaps] == 99.0)
    assert np.all(big[4, 1::2] == 0)   # the ignored row


@pytest.mark.parametrize(
    "out, error",
    [
        (np.zeros((6, 4)), TypeError),               # float64 out for a float32 result
        (np.zeros((6, 4), np.float32).astype(">f4"), TypeError),
        (np.zeros((4, 6), np.float32), ValueError),  # wrong shape
        (np.zeros((6, 1), np.float32), ValueError),  # broadcastable is not enough
        (np.zeros((6, 4), np.float32).tolist(), TypeError),
        ("readonly", ValueError),
    ],
)
def test_bad_out_is_refused_and_untouched(out, error):
    rng = np.random.default_rng(3)
    logits = arrange(logit_values(rng, (6, 4), np.float32), np.float32)
    targets = soft_target_values(rng, (6, 4))
    if isinstance(out, str):
        out = np.zeros((6, 4), np.float32)
        out.flags.writeable = False
    snapshot = Snapshot(out)
    for f in (focal.grad, focal.loss_and_grad):
        with pytest.raises(error, match="out"):
            f(logits, targets, out=out)
        snapshot.assert_unchanged("a refused out")


@pytest.mark.parametrize("reduction", ["sum", "mean", "sum_over_positives"])
def test_loss_out_needs_reduction_none(reduction):
    logits = np.zeros((3, 2), np.float32)
    out = np.full((3, 2), 5.0, np.float32)
    with pytest.raises(ValueError, match="out"):
        focal.loss(logits, np.ones((3, 2)), reduction=reduction, out=out)
    assert np.all(out == 5.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("function", OUT_FUNCTIONS, ids=[f[0] for f in OUT_FUNCTIONS])
@pytest.mark.parametrize("overlap", ["same", "reversed", "strided-same", "misaligned-same"])
def test_out_over_large_logits(overlap, function, dtype):
    """Larger than NumPy's iterator buffer (8192 elements), so the pass runs in
    several chunks: an out that overlaps the logits must still see the original
    logits everywhere."""
    name, f, reduction = function
    rng = np.random.default_rng(17)
    shape = (5000, 7)
    layout = {"same": "C", "reversed": "C", "strided-same": "strided", "misaligned-same": "misaligned"}[overlap]
    logits = arrange(logit_values(rng, shape, dtype), dtype, layout)
    labels = label_values(rng, shape[:-1], shape[-1], "mixed", -1)
    options = dict(reduction=reduction, weights=rng.uniform(0, 2, (1, 7)), alpha=np.linspace(0.1, 0.9, 7))
    expected = f(logits.copy(), labels, **options)
    out = logits[::-1] if overlap == "reversed" else logits
    result = f(logits, labels, **options, out=out)
    assert returned_out(name, result) is out
    np.testing.assert_array_equal(out, returned_out(name, expected), strict=True)
    if "loss_and_grad" in name:
        np.testing.assert_array_equal(result[0], expected[0], strict=True)


@pytest.mark.parametrize("call", OUT_CALLS, ids=[c[0] for c in OUT_CALLS])
def test_failed_in_place_call_on_large_logits(call):
    """The invalid element comes after several buffer chunks: still nothing written."""
    _, function, extra = call
    rng = np.random.default_rng(19)
    logits = arrange(logit_values(rng, (5000, 7), np.float64), np.float64)
    snapshot = Snapshot(logits)
    targets = soft_target_values(rng, (5000, 7))
    targets[-1, -1] = 1.0 + 1e-9
    with pytest.raises(ValueError, match="targets"):
        function(logits, targets, **extra, out=logits)
    snapshot.assert_unchanged("large logits of a failed in-place call")
    labels = label_values(rng, (5000,), 7, "mixed", -1)
    labels[-1] = 8
    with pytest.raises(ValueError, match="targets"):
        function(logits, labels, **extra, out=logits[::-1])
    snapshot.assert_unchanged("large logits of a failed in-place call")


# ------------------------------------------------------- every registered loss


def every_loss_case(loss, form, layout):
    """(logits, targets, options) of `loss`: every array in `layout`, per-class alpha, weights."""
    rng = np.random.default_rng(zlib.crc32(f"{loss.name}-{form}-{layout}".encode()))
    shape = (4, 3, 5)
    logits = registry.make_logits(rng, shape, np.float32 if layout in ("C", "F") else np.float64, layout)
    targets = registry.make_targets(loss, form, rng, shape, layout)
    options = dict(registry.params_for(loss, loss.params, shape[-1]),
                   weights=registry.make_weights(loss, rng, shape, np.float32, layout),
                   **registry.ignore_options(loss))
    if loss.takes_per_class_alpha:
        options["alpha"] = arrange(np.linspace(0.1, 0.9, shape[-1]), np.float64, layout)
    return logits, targets, options


def _every_loss_calls(*axes, forms=True):
    """pytest parameters (loss[, form], *axes, function, keywords) of every call of every loss."""
    for loss in LOSSES:
        for form in loss.target_forms if forms else (None,):
            for values in itertools.product(*axes):
                for call_id, function, extra in registry.calls(loss):
                    head = (loss, form) if forms else (loss,)
                    yield pytest.param(*head, *values, function, extra,
                                       id="-".join([call_id] + [str(v) for v in (form,) * forms + values]))


@pytest.mark.parametrize("loss, form, layout, function, extra", list(_every_loss_calls(LAYOUTS)))
def test_every_loss_leaves_inputs_unchanged(loss, form, layout, function, extra):
    logits, targets, options = every_loss_case(loss, form, layout)
    snapshots = {"logits": Snapshot(logits), "targets": Snapshot(targets)}
    snapshots.update({key: Snapshot(value) for key, value in options.items()})
    result = function(logits, targets, **options, **extra)
    for name, snapshot in snapshots.items():
        snapshot.assert_unchanged(name)
    for part in results_of(result):
        assert isinstance(part, (np.ndarray, np.floating))
        if isinstance(part, np.ndarray):
            for name, value in [("logits", logits), ("targets", targets)] + list(options.items()):
                if isinstance(value, np.ndarray):
                    assert not np.shares_memory(part, value), f"a result is a view of {name}"
    again = function(logits, targets, **options, **extra)
    for first, second in zip(results_of(result), results_of(again)):
        np.testing.assert_array_equal(first, second, strict=True)


EVERY_LOSS_BAD = ("label-out-of-range", "dense-above-1", "dense-nan", "weight-negative", "weight-nan")


def every_loss_bad_case(loss, kind, dtype):
    """(logits, targets, options, argument named): the last element of one input invalid."""
    rng = np.random.default_rng(23)
    shape = (6, 4)
    logits = registry.make_logits(rng, shape, dtype)
    options = registry.ignore_options(loss)
    if kind == "label-out-of-range":
        targets = registry.make_targets(loss, "labels", rng, shape)
        targets[-1] = shape[-1] + 1
        return logits, targets, options, loss.targets_name
    form = next(f for f in loss.target_forms if f != "labels")
    targets = registry.make_targets(loss, form, rng, shape)
    if kind.startswith("dense-"):
        targets[-1, -1] = 1.5 if kind == "dense-above-1" else np.nan
        return logits, targets, options, loss.targets_name
    options["weights"] = np.ones(loss.loss_shape(shape))
    options["weights"].reshape(-1)[-1] = -1.0 if kind == "weight-negative" else np.nan
    return logits, targets, options, "weights"


@pytest.mark.parametrize("loss, kind, function, extra", list(_every_loss_calls(EVERY_LOSS_BAD, forms=False)))
def test_every_loss_failed_call_leaves_inputs_unchanged(loss, kind, function, extra):
    logits, targets, options, argname = every_loss_bad_case(loss, kind, np.float32)
    snapshots = [Snapshot(logits), Snapshot(targets)] + [Snapshot(v) for v in options.values()]
    with pytest.raises(ValueError, match=f"^{argname}:"):
        function(logits, targets, **options, **extra)
    for snapshot in snapshots:
        snapshot.assert_unchanged("an input of a failed call")


def _every_loss_out_calls(*axes):
    for loss in LOSSES:
        for call_id, name, function, reduction in registry.out_calls(loss):
            for values in itertools.product(*axes):
                yield pytest.param(loss, name, function, reduction, *values,
                                   id="-".join([call_id] + [str(v) for v in values]))


@pytest.mark.parametrize("loss, name, function, reduction, layout, dtype",
                         list(_every_loss_out_calls(OUT_LAYOUTS, ("float32", "float64"))))
def test_every_loss_out_receives_result(loss, name, function, reduction, layout, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{loss.name}-{name}-{layout}".encode()))
    shape = (6, 5)
    logits = registry.make_logits(rng, shape, dtype)
    targets = registry.make_targets(loss, "labels", rng, shape)
    options = dict(reduction=reduction, weights=registry.make_weights(loss, rng, shape),
                   **registry.ignore_options(loss))
    expected = function(logits, targets, **options)
    out_shape = loss.loss_shape(shape) if name == "loss" else shape
    out, memory = make_out(out_shape, logits.dtype, layout)
    before = memory.copy()
    result = function(logits, targets, **options, out=out)
    assert returned_out(name, result) is out, "the function must return out itself"
    np.testing.assert_array_equal(out, returned_out(name, expected), strict=True)
    if name == "loss_and_grad":
        np.testing.assert_array_equal(result[0], expected[0], strict=True)
    if layout == "strided":
        np.testing.assert_array_equal(memory[1::2], before[1::2], err_msg="out's gaps were written")


@pytest.mark.parametrize("loss, name, function, reduction, kind",
                         [p for p in _every_loss_out_calls(EVERY_LOSS_BAD) if p.values[1] != "loss"])
def test_every_loss_failed_in_place_call_leaves_logits_untouched(loss, name, function, reduction, kind):
    """out=logits (the gradient's shape) with an invalid last element: nothing written."""
    logits, targets, options, argname = every_loss_bad_case(loss, kind, np.float64)
    snapshot = Snapshot(logits)
    for out in (logits, logits[::-1]):
        with pytest.raises(ValueError, match=f"^{argname}:"):
            function(logits, targets, **options, reduction=reduction, out=out)
        snapshot.assert_unchanged("logits of a failed in-place call")

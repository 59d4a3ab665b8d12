"""Bad arguments: every one raises TypeError or ValueError naming the argument.

Each case calls a public function with exactly one bad argument (the others
valid) and checks that

* the exception is a TypeError (wrong kind of thing) or a ValueError (right
  kind, wrong value or shape), as stated per case;
* its message starts with the argument's name and a colon;
* nothing crashes (a bad class index must never be used to read memory);
* every array handed in -- including the base of a view -- is bitwise
  unchanged afterwards.

Cases are built by small factories so that each test gets fresh arrays.  The
sigmoid focal loss has the full table; every loss of tests/registry.py gets
the generic cases (and its own invalid parameters) in the last section.
"""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import focal
import registry
from registry import LOSSES, SIGMOID

N, C = 6, 5  # rows and classes of the small default problem
LARGE_ROWS = 25_001  # large inputs: 125k elements, many iterator buffers (8192) long

# the sigmoid focal loss's functions; the last section runs the generic cases
# on every loss of the registry
FUNCTIONS = dict(SIGMOID.functions)
KEYWORD_ONLY = ("reduction", "weights", "ignore_index", "out")
EITHER = (TypeError, ValueError)


# --------------------------------------------------------------------------
# valid inputs


def make_logits(rows=N, classes=C, dtype=np.float32):
    return np.linspace(-4.0, 4.0, rows * classes).reshape(rows, classes).astype(dtype)


def make_labels(rows=N, classes=C, dtype=np.int64):
    """Class indices with a positive, a background row and (signed) an ignored row."""
    labels = (np.arange(rows) % (classes + 1)).astype(dtype)
    if np.dtype(dtype).kind == "i" and rows > 2:
        labels[2] = -1
    return labels


def make_dense(rows=N, classes=C, dtype=np.float32):
    return (np.arange(rows * classes).reshape(rows, classes) % 7 == 0).astype(dtype)


def base_call(**overrides):
    """Keyword arguments of a valid call, with `overrides` applied."""
    call = {"logits": make_logits(), "targets": make_labels()}
    call.update(overrides)
    return call


def invoke(function, call):
    call = dict(call)
    logits = call.pop("logits")
    targets = call.pop("targets")
    return function(logits, targets, **call)


# --------------------------------------------------------------------------
# snapshots: inputs must be bitwise unchanged afterwards


def _root(array):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def snapshot(value):
    if isinstance(value, memoryview):
        return ("other", value, value.tobytes())
    if isinstance(value, np.ma.MaskedArray):
        return ("masked", value, value.data.copy(), np.ma.getmaskarray(value).copy())
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return ("object", value, list(value.ravel()))
        root = _root(value)
        return ("array", value, value.copy(), root, root.copy())
    return ("other", value, copy.deepcopy(value))


def assert_unchanged(saved):
    kind, value = saved[0], saved[1]
    if kind == "masked":
        assert value.data.tobytes() == saved[2].tobytes()
        assert np.array_equal(np.ma.getmaskarray(value), saved[3])
    elif kind == "object":
        assert all(a is b for a, b in zip(value.ravel(), saved[2]))
    elif kind == "array":
        assert value.tobytes() == saved[2].tobytes(), "an input array was modified"
        assert saved[3].tobytes() == saved[4].tobytes(), "the base of an input view was modified"
    elif isinstance(value, memoryview):
        assert value.tobytes() == saved[2]
    else:
        assert value is saved[2] or value == saved[2] or _both_nan(value, saved[2])


def _both_nan(a, b):
    try:
        return np.isnan(a) and np.isnan(b)
    except TypeError:
        return False


def check_bad_call(function, call, argname, expected):
    """Calls, expects `expected` naming `argname`, and checks the inputs."""
    saved = [snapshot(value) for value in call.values()]
    with pytest.raises(EITHER, match=rf"^{re.escape(argname)}:") as info:
        invoke(function, call)
    assert isinstance(info.value, expected), (
        f"expected {expected}, got {type(info.value).__name__}: {info.value}"
    )
    for item in saved:
        assert_unchanged(item)
    return info.value


# --------------------------------------------------------------------------
# the case table: (id, argument named, expected exception, factory of the call)

CASES = []


def case(case_id, argname, expected, factory):
    CASES.append((case_id, argname, expected, factory))


def tag(value):
    """A short, distinct test-id fragment for an argument value."""
    if isinstance(value, np.ndarray):
        return f"{type(value).__name__}-{value.dtype.str}-{value.shape}"
    if isinstance(value, (list, tuple, dict)):
        return f"{type(value).__name__}{len(value)}-{tag(next(iter(value), None))}"
    if isinstance(value, np.generic):   # NumPy 1.x reprs np.int64(5) as 5
        return f"{type(value).__name__}({value})"
    return repr(value)


# ---- logits: wrong kinds of thing
case("logits-str", "logits", TypeError, lambda: base_call(logits="1.0 2.0"))
case("logits-bytes", "logits", TypeError, lambda: base_call(logits=b"\x00\x01"))
case("logits-None", "logits", TypeError, lambda: base_call(logits=None))
case("logits-object-array", "logits", TypeError,
     lambda: base_call(logits=make_logits(dtype=np.float64).astype(object)))
case("logits-list-of-dicts", "logits", TypeError,
     lambda: base_call(logits=[{"x": 1.0} for _ in range(N)]))
case("logits-list-of-str", "logits", TypeError,
     lambda: base_call(logits=[["1.0"] * C for _ in range(N)]))
case("logits-complex64", "logits", TypeError,
     lambda: base_call(logits=make_logits().astype(np.complex64)))
case("logits-complex128", "logits", TypeError,
     lambda: base_call(logits=make_logits().astype(np.complex128)))
case("logits-ragged", "logits", EITHER,
     lambda: base_call(logits=[[0.0] * C, [0.0] * (C - 1)] + [[0.0] * C] * (N - 2)))
case("logits-ragged-deep", "logits", EITHER,
     lambda: base_call(logits=[[[0.0, 1.0], [0.0]]] * N))
case("logits-longdouble", "logits", TypeError,
     lambda: base_call(logits=make_logits().astype(np.longdouble)))
case("logits-bool", "logits", TypeError, lambda: base_call(logits=make_logits() > 0))
case("logits-masked", "logits", TypeError,
     lambda: base_call(logits=np.ma.masked_array(make_logits(), mask=make_logits() > 3)))
case("logits-masked-nomask", "logits", TypeError,
     lambda: base_call(logits=np.ma.masked_array(make_logits())))
case("logits-datetime", "logits", TypeError,
     lambda: base_call(logits=np.zeros((N, C), "datetime64[s]")))

# ---- targets: wrong kinds of thing
case("targets-str", "targets", TypeError, lambda: base_call(targets="0 1 2 3 4 5"))
case("targets-None", "targets", TypeError, lambda: base_call(targets=None))
case("targets-object-labels", "targets", TypeError,
     lambda: base_call(targets=make_labels().astype(object)))
case("targets-object-dense", "targets", TypeError,
     lambda: base_call(targets=make_dense().astype(object)))
case("targets-list-of-dicts", "targets", TypeError,
     lambda: base_call(targets=[{"label": 0} for _ in range(N)]))
case("targets-complex-dense", "targets", TypeError,
     lambda: base_call(targets=make_dense().astype(np.complex128)))
case("targets-complex-labels", "targets", TypeError,
     lambda: base_call(targets=make_labels().astype(np.complex64)))
case("targets-ragged", "targets", EITHER,
     lambda: base_call(targets=[[0.0] * C, [1.0] * (C + 1)] + [[0.0] * C] * (N - 2)))
case("targets-longdouble", "targets", TypeError,
     lambda: base_call(targets=make_dense().astype(np.longdouble)))
case("targets-masked-labels", "targets", TypeError,
     lambda: base_call(targets=np.ma.masked_array(make_labels(), mask=make_labels() < 0)))
case("targets-masked-dense", "targets", TypeError,
     lambda: base_call(targets=np.ma.masked_array(make_dense())))

# ---- targets: shapes
case("targets-dense-too-many-classes", "targets", ValueError,
     lambda: base_call(targets=make_dense(N, C + 1)))
case("targets-dense-too-few-classes", "targets", ValueError,
     lambda: base_call(targets=make_dense(N, C - 1)))
case("targets-dense-too-many-rows", "targets", ValueError,
     lambda: base_call(targets=make_dense(N + 1, C)))
case("targets-dense-2-rows", "targets", ValueError,
     lambda: base_call(targets=make_dense(2, C)))
case("targets-dense-transposed", "targets", ValueError,
     lambda: base_call(targets=make_dense(C, N)))
case("targets-one-dim-more", "targets", ValueError,
     lambda: base_call(targets=make_dense()[..., None]))
case("targets-leading-dim-more", "targets", ValueError,
     lambda: base_call(targets=make_dense()[None]))
case("targets-labels-too-long", "targets", ValueError,
     lambda: base_call(targets=make_labels(N + 1)))
case("targets-labels-too-short", "targets", ValueError,
     lambda: base_call(targets=make_labels(N - 1)))
case("targets-labels-length-C", "targets", ValueError,
     lambda: base_call(logits=make_logits(4, 3), targets=make_labels(3, 3)))
case("targets-labels-3d-wrong-shape", "targets", ValueError,
     lambda: base_call(logits=make_logits(N, C).reshape(2, N // 2, C),
                       targets=make_labels(N).reshape(N // 2, 2)))
case("targets-float-one-dim-fewer", "targets", EITHER,
     lambda: base_call(targets=make_labels().astype(np.float64)))
case("targets-float32-one-dim-fewer", "targets", EITHER,
     lambda: base_call(targets=np.zeros(N, np.float32)))
case("targets-bool-one-dim-fewer", "targets", EITHER,
     lambda: base_call(targets=np.zeros(N, bool)))
case("targets-two-dims-fewer-scalar", "targets", ValueError,
     lambda: base_call(targets=np.int64(0)))
case("targets-two-dims-fewer-3d", "targets", ValueError,
     lambda: base_call(logits=make_logits(N, C).reshape(2, N // 2, C),
                       targets=np.zeros(2, np.int64)))
case("targets-two-dims-fewer-3d-float", "targets", ValueError,
     lambda: base_call(logits=make_logits(N, C).reshape(2, N // 2, C),
                       targets=np.zeros(2, np.float32)))


# ---- targets: dense values outside [0, 1]
def _bad_values(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return [-0.5, 1.5, 2.0, np.nan, np.inf, -np.inf, -1e-30 if dtype.itemsize == 8 else -1e-3]
    if dtype.kind == "u":
        return [2, int(np.iinfo(dtype).max)]
    return [2, -1, int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)]


def _dense_bad(logits_dtype, target_dtype, bad, where):
    """Dense targets with one bad value: first element, very end of a large
    array, inside a strided view, or in a byte-swapped array."""
    def factory():
        if where == "small":
            y = make_dense(dtype=target_dtype)
            y[0, 0] = bad
            return base_call(logits=make_logits(dtype=logits_dtype), targets=y)
        if where == "large-end":
            y = np.zeros((LARGE_ROWS, C), target_dtype)
            y[-1, -1] = bad
            return base_call(logits=np.zeros((LARGE_ROWS, C), logits_dtype), targets=y)
        if where == "strided":
            big = np.zeros((2 * LARGE_ROWS, 3 * C), target_dtype)
            big[2 * (LARGE_ROWS - 1), 3 * (C - 1)] = bad  # the view's last element
            return base_call(logits=np.zeros((LARGE_ROWS, C), logits_dtype),
                             targets=big[::2, ::3])
        if where == "byteswapped":
            y = make_dense(dtype=np.dtype(target_dtype).newbyteorder())
            y[-1, -1] = bad
            return base_call(logits=make_logits(dtype=logits_dtype), targets=y)
        if where == "broadcast":
            y = np.zeros((1, C), target_dtype)
            y[0, -1] = bad
            return base_call(logits=make_logits(dtype=logits_dtype), targets=y)
        raise AssertionError(where)
    return factory


for _ldt in (np.float32, np.float64, np.float16):
    for _tdt in (np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64, np.uint64):
        for _bad in _bad_values(_tdt):
            for _where in ("small", "large-end", "strided", "byteswapped", "broadcast"):
                if _ldt is np.float16 and _where not in ("small", "large-end"):
                    continue
                if _where != "small" and not (_bad in (2, 1.5) or _bad != _bad):
                    continue  # the other values only on the small array
                case(f"targets-dense-{np.dtype(_ldt).name}-{np.dtype(_tdt).name}-{_bad!r}-{_where}",
                     "targets", ValueError, _dense_bad(_ldt, _tdt, _bad, _where))


# ---- targets: class indices out of range (and not ignore_index)
def _bad_labels(dtype):
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    values = {C + 1, int(info.max)}
    if dtype.kind == "i":
        values |= {-2, int(info.min)}
    if dtype.itemsize == 8:
        values.add(2**62 if dtype.kind == "i" else 2**63)
    if dtype.itemsize >= 4:
        values.add(2**31 - 1)
    return sorted(values)


def _labels_bad(dtype, bad, where):
    def factory():
        if where == "small":
            y = make_labels(dtype=dtype)
            y[0] = bad
            return base_call(targets=y)
        if where == "large-end":
            y = np.full(LARGE_ROWS, C, dtype)
            y[-1] = bad
            return base_call(logits=np.zeros((LARGE_ROWS, C), np.float32), targets=y)
        if where == "strided":
            big = np.full(3 * LARGE_ROWS, C, dtype)
            big[3 * (LARGE_ROWS - 1)] = bad
            return base_call(logits=np.zeros((LARGE_ROWS, C), np.float64), targets=big[::3])
        if where == "byteswapped":
            y = make_labels(dtype=np.dtype(dtype).newbyteorder())
            y[-1] = bad
            return base_call(targets=y)
        raise AssertionError(where)
    return factory


for _tdt in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
    for _bad in _bad_labels(_tdt):
        for _where in ("small", "large-end", "strided", "byteswapped"):
            case(f"targets-labels-{np.dtype(_tdt).name}-{_bad}-{_where}", "targets", ValueError,
                 _labels_bad(_tdt, _bad, _where))

case("targets-labels-minus-one-not-ignored", "targets", ValueError,
     lambda: base_call(targets=make_labels(), ignore_index=-100))
case("targets-labels-3d-bad-at-end", "targets", ValueError,
     lambda: base_call(logits=np.zeros((3, LARGE_ROWS, C), np.float32),
                       targets=np.concatenate([np.full(3 * LARGE_ROWS - 1, C), [C + 1]])
                       .reshape(3, LARGE_ROWS)))
case("targets-labels-with-per-class-alpha-and-weights", "targets", ValueError,
     lambda: base_call(targets=np.array([0, 1, 2, 3, 4, C + 7]), alpha=np.full(C, 0.5),
                       weights=np.ones((N, 1))))

# ---- ignore_index
for _ignore in (0, 1, C - 1, C, np.int64(C), np.int8(0)):
    case(f"ignore_index-valid-class-{tag(_ignore)}", "ignore_index", ValueError,
         lambda _ignore=_ignore: base_call(ignore_index=_ignore))
case("ignore_index-valid-class-uint8-labels", "ignore_index", ValueError,
     lambda: base_call(targets=make_labels(dtype=np.uint8), ignore_index=C))
case("ignore_index-too-big-for-C", "ignore_index", ValueError,
     lambda: base_call(ignore_index=2**70))
for _ignore in (-1.0, 1.5, np.float64(-1.0), "-1", b"-1", True, False, np.bool_(True), None,
                [-1], np.array([-1, -2]), 1j):
    case(f"ignore_index-type-{tag(_ignore)}", "ignore_index", TypeError,
         lambda _ignore=_ignore: base_call(ignore_index=_ignore))

# ---- alpha
for _alpha in (-0.1, 1.1, 1.0000001, 2, np.nan, np.inf, -np.inf, -1e-300, np.float32(1.5)):
    case(f"alpha-value-{tag(_alpha)}", "alpha", ValueError,
         lambda _alpha=_alpha: base_call(alpha=_alpha))
case("alpha-minus-one", "alpha", ValueError, lambda: base_call(alpha=-1))
case("alpha-minus-one-float", "alpha", ValueError, lambda: base_call(alpha=-1.0))
case("alpha-too-short", "alpha", ValueError, lambda: base_call(alpha=[0.25] * (C - 1)))
case("alpha-too-long", "alpha", ValueError, lambda: base_call(alpha=np.full(C + 1, 0.25)))
case("alpha-length-rows", "alpha", ValueError, lambda: base_call(alpha=np.full(N, 0.25)))
case("alpha-empty", "alpha", ValueError, lambda: base_call(alpha=[]))
case("alpha-2d-row", "alpha", ValueError, lambda: base_call(alpha=np.full((1, C), 0.25)))
case("alpha-2d-full", "alpha", ValueError, lambda: base_call(alpha=np.full((N, C), 0.25)))
case("alpha-per-class-nan", "alpha", ValueError,
     lambda: base_call(alpha=[0.25, np.nan, 0.25, 0.25, 0.25]))
case("alpha-per-class-above-one", "alpha", ValueError,
     lambda: base_call(alpha=np.array([0.25, 0.25, 0.25, 0.25, 1.5], np.float32)))
case("alpha-per-class-negative", "alpha", ValueError,
     lambda: base_call(alpha=np.array([-0.25, 0.25, 0.25, 0.25, 0.25])))
case("alpha-per-class-minus-one", "alpha", ValueError, lambda: base_call(alpha=[-1] * C))
case("alpha-per-class-inf", "alpha", ValueError,
     lambda: base_call(alpha=[0.25, 0.25, np.inf, 0.25, 0.25]))
for _alpha in ("0.25", b"0.25", True, False, np.bool_(False), np.array(True),
               np.ones(C, bool), 0.25j, np.full(C, 0.25, np.complex128), ["a"] * C,
               np.full(C, 0.25, np.longdouble), np.ma.masked_array(np.full(C, 0.25)),
               {"a": 0.25}):
    case(f"alpha-type-{tag(_alpha)}", "alpha",
         TypeError, lambda _alpha=_alpha: base_call(alpha=_alpha))

# ---- gamma
for _gamma in (-1, -0.5, -1e-300, np.nan, np.inf, -np.inf, np.float32(-2.0)):
    case(f"gamma-value-{tag(_gamma)}", "gamma", ValueError,
         lambda _gamma=_gamma: base_call(gamma=_gamma))
for _gamma in ([1.0, 2.0], (2.0, 2.0), np.array([1.0, 2.0]), np.full(C, 2.0), [2.0],
               np.full((1, 1), 2.0)):
    case(f"gamma-several-{tag(_gamma)}", "gamma", EITHER,
         lambda _gamma=_gamma: base_call(gamma=_gamma))
for _gamma in ("2", b"2", None, True, False, np.bool_(True), 2j, {"gamma": 2.0},
               np.ma.masked_array(2.0)):
    case(f"gamma-type-{tag(_gamma)}", "gamma", TypeError,
         lambda _gamma=_gamma: base_call(gamma=_gamma))

# ---- reduction (not an argument of grad_hess)
for _reduction in ("avg", "MEAN", "Mean", "", "mean ", "sum_over_positive", "elementwise"):
    case(f"reduction-value-{_reduction!r}", "reduction", ValueError,
         lambda _reduction=_reduction: base_call(reduction=_reduction))
for _reduction in (None, 1, 0, b"mean", ["mean"], ("sum",), np.bytes_(b"sum"), sum):
    case(f"reduction-type-{tag(_reduction)}", "reduction", TypeError,
         lambda _reduction=_reduction: base_call(reduction=_reduction))

# ---- weights
for _shape in ((N, C + 1), (N + 1, 1), (2, N, C), (C + 1,), (N, 1, 1), (N, 2), (C, N)):
    case(f"weights-shape-{_shape}", "weights", ValueError,
         lambda _shape=_shape: base_call(weights=np.ones(_shape)))
for _weights in ("1.0", b"1", ["a"] * C, np.full((N, C), 1 + 0j), np.ones(C, np.complex64),
                 [{"w": 1.0}] * C, np.ones(C, object), np.ones(C, np.longdouble),
                 np.ma.masked_array(np.ones(C)), np.zeros((N, C), "timedelta64[s]")):
    case(f"weights-type-{tag(_weights)}", "weights",
         TypeError, lambda _weights=_weights: base_call(weights=_weights))


def _bad_weights(bad, where, dtype=np.float64, dense=False):
    def factory():
        targets = make_dense if dense else make_labels
        if where == "small":
            w = np.ones((N, C), dtype)
            w[0, 0] = bad  # row 0 is not ignored
            return base_call(weights=w, targets=targets())
        if where == "large-end":
            w = np.ones((LARGE_ROWS, C), dtype)
            w[-1, -1] = bad
            return base_call(logits=np.zeros((LARGE_ROWS, C), np.float32),
                             targets=targets(LARGE_ROWS), weights=w)
        if where == "strided":
            big = np.ones((LARGE_ROWS, 2 * C), dtype)
            big[-1, -2] = bad
            return base_call(logits=np.zeros((LARGE_ROWS, C), np.float32),
                             targets=targets(LARGE_ROWS), weights=big[:, ::2])
        if where == "broadcast-class":
            w = np.ones(C, dtype)
            w[-1] = bad
            return base_call(weights=w, targets=targets())
        raise AssertionError(where)
    return factory


for _bad in (-1.0, -1e-300, -np.inf, np.nan, np.inf):
    for _where in ("small", "large-end", "strided", "broadcast-class"):
        for _dense in (False, True):
            case(f"weights-value-{_bad!r}-{_where}-{'dense' if _dense else 'labels'}",
                 "weights", ValueError, _bad_weights(_bad, _where, dense=_dense))
case("weights-value-float32-negative", "weights", ValueError,
     _bad_weights(-0.5, "large-end", np.float32))
case("weights-value-int-negative", "weights", ValueError,
     _bad_weights(-3, "small", np.int16))
case("weights-value-float16-nan", "weights", ValueError,
     _bad_weights(np.nan, "small", np.float16))
case("weights-value-byteswapped-nan", "weights", ValueError,
     _bad_weights(np.nan, "small", np.dtype(">f8")))


# ---- out (not an argument of grad_hess; loss takes it with reduction="none")
def _out(make, logits_dtype=np.float32):
    def factory():
        return base_call(logits=make_logits(dtype=logits_dtype), out=make())
    return factory


def _read_only():
    out = np.empty((N, C), np.float32)
    out.flags.writeable = False
    return out


case("out-shape-extra-class", "out", ValueError, _out(lambda: np.empty((N, C + 1), np.float32)))
case("out-shape-flat", "out", ValueError, _out(lambda: np.empty(N * C, np.float32)))
case("out-shape-transposed", "out", ValueError, _out(lambda: np.empty((C, N), np.float32)))
case("out-shape-broadcastable", "out", ValueError, _out(lambda: np.empty((1, C), np.float32)))
case("out-shape-extra-dim", "out", ValueError, _out(lambda: np.empty((1, N, C), np.float32)))
case("out-dtype-float64-for-float32", "out", TypeError, _out(lambda: np.empty((N, C))))
case("out-dtype-float32-for-float64", "out", TypeError,
     _out(lambda: np.empty((N, C), np.float32), np.float64))
case("out-dtype-float16-for-float16", "out", TypeError,
     _out(lambda: np.empty((N, C), np.float16), np.float16))
case("out-dtype-int32", "out", TypeError, _out(lambda: np.empty((N, C), np.int32)))
case("out-dtype-byteswapped", "out", TypeError, _out(lambda: np.empty((N, C), ">f4")))
case("out-dtype-byteswapped-float64", "out", TypeError,
     _out(lambda: np.empty((N, C), ">f8"), np.float64))
case("out-read-only", "out", ValueError, _out(_read_only))
case("out-read-only-view-of-logits", "out", ValueError,
     lambda: (lambda x: base_call(logits=x, out=np.lib.stride_tricks.as_strided(
         x, writeable=False)))(make_logits()))
case("out-list", "out", TypeError, _out(lambda: [[0.0] * C for _ in range(N)]))
case("out-memoryview", "out", TypeError,
     _out(lambda: memoryview(np.empty((N, C), np.float32))))

BAD_CASE_IDS = [c[0] for c in CASES]
assert len(BAD_CASE_IDS) == len(set(BAD_CASE_IDS)), "duplicate case ids"


def _parameters():
    for case_id, argname, expected, factory in CASES:
        for name in FUNCTIONS:
            if not SIGMOID.takes(name, argname):
                continue
            yield pytest.param(name, argname, expected, factory, id=f"{name}-{case_id}")


@pytest.mark.parametrize("name, argname, expected, factory", list(_parameters()))
def test_bad_argument(name, argname, expected, factory):
    call = factory()
    if argname == "out" and name == "loss":
        call["reduction"] = "none"  # out= is only meaningful for the elementwise loss
    check_bad_call(FUNCTIONS[name], call, argname, expected)


def test_alpha_minus_one_points_to_none():
    """torchvision's alpha=-1 is refused with a pointer to alpha=None."""
    for name, function in FUNCTIONS.items():
        error = check_bad_call(function, base_call(alpha=-1), "alpha", ValueError)
        assert "alpha=None" in str(error), (name, str(error))


def test_case_table_covers_every_argument():
    named = {c[1] for c in CASES}
    assert named == {"logits", "targets", "alpha", "gamma", "reduction", "weights",
                     "ignore_index", "out"}
    assert len(CASES) > 300


@pytest.mark.parametrize("reduction", ["mean", "sum", "sum_over_positives"])
@pytest.mark.parametrize("out_kind", ["fresh", "logits", "list"])
def test_loss_out_with_reduced_reduction(reduction, out_kind):
    """loss(out=...) only makes sense elementwise: a reduced reduction is refused."""
    logits = make_logits()
    out = {"fresh": lambda: np.empty((N, C), np.float32), "logits": lambda: logits,
           "list": lambda: [[0.0] * C] * N}[out_kind]()
    call = base_call(logits=logits, out=out, reduction=reduction)
    check_bad_call(focal.loss, call, "out", EITHER)


# --------------------------------------------------------------------------
# in place (out aliasing an input): a bad argument found late must not have
# overwritten anything


def _inplace_cases():
    def dense_bad_end():
        x = np.linspace(-3, 3, LARGE_ROWS * C, dtype=np.float32).reshape(LARGE_ROWS, C)
        y = make_dense(LARGE_ROWS, C)
        y[-1, -1] = 1.5
        return x, dict(targets=y, out=x), "targets"

    def labels_bad_end():
        x = np.linspace(-3, 3, LARGE_ROWS * C, dtype=np.float64).reshape(LARGE_ROWS, C)
        y = make_labels(LARGE_ROWS, C)
        y[-1] = C + 1
        return x, dict(targets=y, out=x), "targets"

    def weights_bad_end():
        x = np.linspace(-3, 3, LARGE_ROWS * C, dtype=np.float32).reshape(LARGE_ROWS, C)
        w = np.ones((LARGE_ROWS, C), np.float32)
        w[-1, -1] = np.nan
        return x, dict(targets=make_labels(LARGE_ROWS, C), weights=w, out=x), "weights"

    def out_is_targets():
        x = np.linspace(-3, 3, N * C, dtype=np.float32).reshape(N, C)
        y = make_dense()
        w = np.ones((N, C))
        w[-1, -1] = -1.0
        return x, dict(targets=y, weights=w, out=y), "weights"

    def out_is_weights():
        x = np.linspace(-3, 3, N * C, dtype=np.float32).reshape(N, C)
        y = make_labels()
        y[-1] = -7
        w = np.ones((N, C), np.float32)
        return x, dict(targets=y, weights=w, out=w), "targets"

    return {"dense-bad-end": dense_bad_end, "labels-bad-end": labels_bad_end,
            "weights-bad-end": weights_bad_end, "out-is-targets": out_is_targets,
            "out-is-weights": out_is_weights}


@pytest.mark.parametrize("name", ["loss", "grad", "loss_and_grad"])
@pytest.mark.parametrize("which", list(_inplace_cases()))
def test_in_place_error_leaves_inputs_unchanged(name, which):
    x, extra, argname = _inplace_cases()[which]()
    call = dict(logits=x, **extra)
    if name == "loss":
        call["reduction"] = "none"
    check_bad_call(FUNCTIONS[name], call, argname, ValueError)


def test_hidden_bad_value_outside_a_view_is_not_read():
    """Only the viewed elements are targets: a bad value the view skips is fine,
    the same value on a viewed element is refused (the view is honoured)."""
    big = np.zeros((2 * N, 3 * C), np.float32)
    big[1, 1] = 2.0  # not in big[::2, ::3]
    logits = make_logits()
    for function in FUNCTIONS.values():
        function(logits, big[::2, ::3])
    big[2, 3] = 2.0  # element (1, 1) of the view
    for function in FUNCTIONS.values():
        check_bad_call(function, dict(logits=logits, targets=big[::2, ::3]), "targets",
                       ValueError)


# --------------------------------------------------------------------------
# every registered loss: the bad arguments that mean the same for each

GENERIC = []   # (id, argument, expected exception, builder(loss) -> call)


def generic(case_id, argname, expected, builder):
    GENERIC.append((case_id, argname, expected, builder))


def loss_call(loss, **overrides):
    """A valid call of `loss` on class indices (with ignored rows), `overrides` applied."""
    rng = np.random.default_rng(41)
    call = {"logits": make_logits(), "targets": registry.make_targets(loss, "labels", rng, (N, C))}
    call.update(registry.ignore_options(loss))
    call.update(overrides)
    return call


def loss_dense(loss, value=None, classes=C, rows=N):
    """Valid dense targets of the loss's first dense form, one element set to `value`."""
    form = next(f for f in loss.target_forms if f != "labels")
    y = registry.target_values(loss, form, np.random.default_rng(43), (rows, classes))
    if value is not None:
        y[0, 0] = value
    return y


def loss_weights(loss, value=None, shape=None):
    w = np.ones(shape or loss.loss_shape((N, C)))
    if value is not None:
        w.reshape(-1)[-1] = value
    return w


for _logits in ("1.0 2.0", None, 3j):
    generic(f"logits-{tag(_logits)}", "logits", TypeError, lambda loss, v=_logits: loss_call(loss, logits=v))
for _dtype in (np.complex64, object, bool, np.longdouble):
    generic(f"logits-{np.dtype(_dtype).name}", "logits", TypeError,
            lambda loss, d=_dtype: loss_call(loss, logits=make_logits(dtype=np.float64).astype(d)))
generic("logits-masked", "logits", TypeError,
        lambda loss: loss_call(loss, logits=np.ma.masked_array(make_logits())))

for _targets in (None, "0 1 2", b"\x00"):
    generic(f"targets-{tag(_targets)}", "targets", TypeError,
            lambda loss, v=_targets: loss_call(loss, targets=v))
for _dtype in (object, np.complex128, np.longdouble):
    generic(f"targets-dense-{np.dtype(_dtype).name}", "targets", TypeError,
            lambda loss, d=_dtype: loss_call(loss, targets=loss_dense(loss).astype(d)))
generic("targets-labels-object", "targets", TypeError,
        lambda loss: loss_call(loss, targets=loss_call(loss)["targets"].astype(object)))
generic("targets-labels-too-long", "targets", ValueError,
        lambda loss: loss_call(loss, targets=np.zeros(N + 1, np.int64)))
generic("targets-labels-out-of-range", "targets", ValueError,
        lambda loss: loss_call(loss, targets=np.r_[np.zeros(N - 1, np.int64), C + 1]))
generic("targets-labels-below-range", "targets", ValueError,
        lambda loss: loss_call(loss, targets=np.r_[np.zeros(N - 1, np.int64), -7]))
generic("targets-dense-extra-class", "targets", ValueError,
        lambda loss: loss_call(loss, targets=loss_dense(loss, classes=C + 1)))
generic("targets-dense-extra-row", "targets", ValueError,
        lambda loss: loss_call(loss, targets=loss_dense(loss, rows=N + 1)))
for _bad in (1.5, -0.5, np.nan, np.inf):
    generic(f"targets-dense-value-{_bad!r}", "targets", ValueError,
            lambda loss, v=_bad: loss_call(loss, targets=loss_dense(loss, v)))

for _reduction in ("avg", "MEAN", ""):
    generic(f"reduction-value-{_reduction!r}", "reduction", ValueError,
            lambda loss, v=_reduction: loss_call(loss, reduction=v))
for _reduction in (None, 1, b"mean"):
    generic(f"reduction-type-{tag(_reduction)}", "reduction", TypeError,
            lambda loss, v=_reduction: loss_call(loss, reduction=v))

for _weights in ("1.0", np.ones(C, np.complex64), np.ones(C, object)):
    generic(f"weights-type-{tag(_weights)}", "weights", TypeError,
            lambda loss, v=_weights: loss_call(loss, weights=v))
generic("weights-shape-extra-row", "weights", ValueError,
        lambda loss: loss_call(loss, weights=np.ones((N + 1, 1))))
generic("weights-shape-extra-dim", "weights", ValueError,
        lambda loss: loss_call(loss, weights=np.ones((2, N, C))))
for _bad in (-1.0, np.nan, np.inf, -np.inf):
    generic(f"weights-value-{_bad!r}", "weights", ValueError,
            lambda loss, v=_bad: loss_call(loss, weights=loss_weights(loss, v)))

for _ignore in (1.5, None, "-1", True, [-1]):
    generic(f"ignore_index-type-{tag(_ignore)}", "ignore_index", TypeError,
            lambda loss, v=_ignore: loss_call(loss, ignore_index=v))


def _read_only(shape, dtype=np.float32):
    out = np.empty(shape, dtype)
    out.flags.writeable = False
    return out


generic("out-dtype-float64", "out", TypeError, lambda loss, shape: loss_call(loss, out=np.empty(shape)))
generic("out-dtype-int32", "out", TypeError,
        lambda loss, shape: loss_call(loss, out=np.empty(shape, np.int32)))
generic("out-dtype-byteswapped", "out", TypeError,
        lambda loss, shape: loss_call(loss, out=np.empty(shape, ">f4")))
generic("out-shape-extra-dim", "out", ValueError,
        lambda loss, shape: loss_call(loss, out=np.empty(shape[::-1] + (2,), np.float32)))
generic("out-shape-flat", "out", ValueError,
        lambda loss, shape: loss_call(loss, out=np.empty(N * C + 1, np.float32)))
generic("out-read-only", "out", ValueError, lambda loss, shape: loss_call(loss, out=_read_only(shape)))
generic("out-list", "out", TypeError, lambda loss, shape: loss_call(loss, out=np.zeros(shape).tolist()))

GENERIC_IDS = [c[0] for c in GENERIC]
assert len(GENERIC_IDS) == len(set(GENERIC_IDS)), "duplicate case ids"


def _generic_parameters():
    for loss in LOSSES:
        cases = list(GENERIC) + [
            (f"{name}-{tag(value)}", name, error, lambda loss, name=name, value=value: loss_call(loss, **{name: value}))
            for name, value, error in loss.invalid_params]
        for case_id, argname, expected, builder in cases:
            if argname == "ignore_index" and not loss.takes_ignore_index:
                continue
            for name in loss.functions:
                if loss.takes(name, argname):
                    yield pytest.param(loss, name, argname, expected, builder,
                                       id=f"{loss.name}-{name}-{case_id}")


@pytest.mark.parametrize("loss, name, argname, expected, builder", list(_generic_parameters()))
def test_every_loss_bad_argument(loss, name, argname, expected, builder):
    if argname == "out":
        # loss(out=) is the elementwise (or per-row) loss; grad(out=) the gradient
        shape = loss.loss_shape((N, C)) if name == "loss" else (N, C)
        call = builder(loss, shape)
        if name == "loss":
            call["reduction"] = "none"
    else:
        call = builder(loss)
    if argname == "targets":
        argname = loss.targets_name
    check_bad_call(loss.functions[name], call, argname, expected)


def test_every_loss_refuses_each_of_its_parameters():
    """Each registered loss lists bad values for each of its parameters."""
    for loss in LOSSES:
        assert {name for name, _, _ in loss.invalid_params} == set(loss.params), loss.name


# --------------------------------------------------------------------------
# prior_bias


@pytest.mark.parametrize("pi", [0, 0.0, 1, 1.0, -0.1, 2, np.nan, np.inf, -np.inf, -0.0,
                                np.float32(1.0), np.int64(0)], ids=repr)
def test_prior_bias_bad_value(pi):
    with pytest.raises(ValueError, match=r"^pi:"):
        focal.prior_bias(pi)


@pytest.mark.parametrize("pi", ["0.01", b"0.01", None, True, False, np.bool_(True), [0.01],
                                np.array([0.01, 0.02]), 0.01j, {"pi": 0.01}], ids=repr)
def test_prior_bias_bad_type(pi):
    with pytest.raises(TypeError, match=r"^pi:"):
        focal.prior_bias(pi)


# --------------------------------------------------------------------------
# scalar parameters given as other real numbers


def _real_forms(value):
    """`value` (a float) as other real scalars that convert exactly to it:
    (scalar, the float it converts to)."""
    import fractions
    forms = [(fractions.Fraction(value), value), (np.float32(value), float(np.float32(value))),
             (np.array(value), value), (np.array(fractions.Fraction(value), dtype=object), value)]
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dtype in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn):
        scalar = dtype(value)
        forms.append((scalar, float(scalar)))
        forms.append((np.array(scalar), float(scalar)))
    return forms


def _float_parameters():
    for loss in LOSSES:
        for params in loss.valid_params:
            for name, value in params.items():
                if type(value) is float and value > 0:
                    yield pytest.param(loss, dict(params), name, id=f"{loss.name}-{name}-{value}")


@pytest.mark.parametrize("loss, params, name", list(_float_parameters()))
def test_every_float_parameter_takes_any_real_scalar(loss, params, name):
    """A Fraction, a bfloat16 or a float8 (ml_dtypes), a NumPy scalar or a 0-d
    array is read as the float it converts to: the same results, bit for bit."""
    params = registry.params_for(loss, params, C)
    for scalar, exact in _real_forms(params[name]):
        call = loss_call(loss, **params, reduction="none")
        expected = invoke(loss.functions["loss"], {**call, name: exact})
        got = invoke(loss.functions["loss"], {**call, name: scalar})
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected, err_msg=f"{name}={scalar!r}")


def test_normalizer_and_prior_bias_take_any_real_scalar():
    import fractions
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x, t = make_logits(), make_dense()
    expected = focal.loss(x, t, reduction="mean", normalizer=2.0)
    for normalizer in (ml_dtypes.bfloat16(2), fractions.Fraction(2),
                       np.array(ml_dtypes.bfloat16(2))):
        assert focal.loss(x, t, reduction="mean", normalizer=normalizer) == expected
    assert focal.prior_bias(fractions.Fraction(1, 4)) == focal.prior_bias(0.25)
    assert focal.prior_bias(ml_dtypes.bfloat16(0.25)) == focal.prior_bias(0.25)


def test_other_real_scalars_are_still_checked():
    """Read as floats, they meet the same checks: NaN, negative and huge values
    are ValueErrors, complex and bool TypeErrors, each naming the argument."""
    import fractions
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x, t = make_logits(), make_dense()
    for gamma in (ml_dtypes.bfloat16(float("nan")), ml_dtypes.bfloat16(-2),
                  fractions.Fraction(-1, 2), ml_dtypes.bfloat16(float("inf")),
                  fractions.Fraction(10**400),
                  np.array(fractions.Fraction(-1), dtype=object)):
        with pytest.raises(ValueError, match=r"^gamma: expected a finite real number >= 0"):
            focal.loss(x, t, gamma=gamma)
    for gamma in (np.array(2j, dtype=object), np.array("2", dtype=object),
                  np.array(True, dtype=object), np.array(None, dtype=object), np.complex64(2)):
        with pytest.raises(TypeError, match=r"^gamma: expected a finite real number >= 0"):
            focal.loss(x, t, gamma=gamma)
    with pytest.raises(ValueError, match=r"^normalizer: expected a finite real number > 0"):
        focal.loss(x, t, reduction="mean", normalizer=ml_dtypes.bfloat16(0))
    with pytest.raises(ValueError, match=r"^alpha: expected a number in \[0, 1\]"):
        focal.loss(x, t, alpha=fractions.Fraction(3, 2))

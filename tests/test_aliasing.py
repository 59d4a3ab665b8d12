"""out= sharing memory with an argument gives the out-of-place result, bit for bit.

For every function of every registered loss that takes out= and
every array argument (logits, dense targets, class indices, weights, a
per-class alpha), the argument and out are laid over one buffer in many ways:
the same elements (in place), shifted by one element or one row (in C or
Fortran order), reversed, Fortran order against C order, interleaved (bounds
that meet without a shared element), strided, and out or the argument
overlapping itself (as_strided rows that share memory).  The call must leave the buffer exactly as computing the
result out of place (on copies of the arguments) and then assigning it to out
would; its other results (a reduced loss) must be the same bits.  The same
holds when out is a subclass whose __array_function__ claims that nothing
shares memory.  A call that fails (a bad label, target or weight in the last
row) must leave the whole buffer untouched.
"""
from __future__ import annotations

import math
import mmap
import sys

import numpy as np
import pytest

import focal
import registry
from focal import _args, _overlap, _pass
from registry import LOSSES

N, C = 6, 4


class LyingArray(np.ndarray):
    """An out= subclass that answers every overlap question with False."""

    def __array_function__(self, func, types, args, kwargs):
        if func in (np.may_share_memory, np.shares_memory):
            return False
        return super().__array_function__(func, types, args, kwargs)

    def view(self, *args, **kwargs):  # the library must not rely on it either
        raise AssertionError("LyingArray.view called")


# --------------------------------------------------------------------------
# the functions: every call of every registered loss that takes out=


def _parameters(loss):
    """The loss's parameters but alpha (an array argument here): the first
    registered example with a fractional gamma, so that q^gamma takes pow."""
    example = next((p for p in loss.valid_params if float(p.get("gamma", 0)) % 1), loss.params)
    return {name: value for name, value in dict(loss.params, **example).items() if name != "alpha"}


def _call(loss, function, reduction):
    params = _parameters(loss)

    def call(a, out=None):
        alpha = {}
        if "alpha" in loss.params:
            alpha["alpha"] = a["alpha"] if loss.takes_per_class_alpha else loss.params["alpha"]
        return function(a["logits"], a["targets"], reduction=reduction,
                        weights=a["weights"], out=out, **alpha, **params)
    return call


# id: (loss, callable, what out receives: "elements" or the softmax loss's "rows")
FUNCTIONS = {
    call_id: (loss, _call(loss, function, reduction),
              "rows" if name == "loss" and loss.family == "softmax" else "elements")
    for loss in LOSSES for call_id, name, function, reduction in registry.out_calls(loss)
}


def split(result):
    """(the array out receives, the other results)."""
    if isinstance(result, tuple):
        loss, grad = result
        return grad, [loss]
    return result, []


# --------------------------------------------------------------------------
# arguments


def values(family, name, form, shape, rng, n):
    """Valid values of one argument (float64, or int64 class indices); `family` is the Loss."""
    loss = family
    if name == "logits":
        return rng.normal(0.0, 3.0, shape)
    if name == "alpha":
        return rng.uniform(0.1, 0.9, shape)
    if name == "weights":
        return rng.uniform(0.25, 2.0, shape)
    if form == "labels":
        # the elementwise family's C marks a background row
        labels = rng.integers(0, C + (loss.family == "elementwise"), shape)
        labels[1] = loss.ignore_index if loss.takes_ignore_index else -1   # ignored
        return labels
    dense = next(f for f in loss.target_forms if f != "labels")
    return registry.target_values(loss, dense, rng, shape)


def argument_shapes(family, name, form, n):
    """The shapes the argument may take (weights: several broadcasts)."""
    if name == "logits":
        return [(n, C)]
    if name == "alpha":
        return [(C,)]
    if name == "targets":
        return [(n,)] if form == "labels" else [(n, C)]
    if family.family == "softmax":
        return [(n,)]
    return [(n, C), (C,), (n, 1)]


def bad_value(family, name, form):
    """A value the checks reject, for the last position of an argument."""
    if name == "weights":
        return -1.0
    if form == "labels":
        return C if family.family == "softmax" else C + 3
    return 1.5


# --------------------------------------------------------------------------
# layouts over one buffer: each a function of the (typed) buffer


def _contiguous(offset, shape):
    return lambda b: b[offset:offset + math.prod(shape)].reshape(shape)


def _strided(offset, step, shape):
    return lambda b: b[offset:offset + step * math.prod(shape):step].reshape(shape)


def _reversed(offset, shape):
    return lambda b: _contiguous(offset, shape)(b)[(slice(None, None, -1),) * len(shape)]


def _rows_reversed(offset, shape):
    return lambda b: _contiguous(offset, shape)(b)[::-1]


def _fortran(offset, shape):
    return lambda b: b[offset:offset + math.prod(shape)].reshape(shape[::-1]).T


def _self_overlapping(offset, shape):
    """Rows sharing half their elements (a 1-D array: every element at one address)."""
    def view(b):
        size = b.itemsize
        strides = (0,) if len(shape) == 1 else ((shape[-1] // 2) * size,) + tuple(
            size * math.prod(shape[k + 1:]) for k in range(1, len(shape)))
        return np.lib.stride_tricks.as_strided(b[offset:], shape, strides)
    return view


def relations(out_shape, arg_shape):
    """{name: (layout of out, layout of the argument)} over one buffer."""
    n_out, n_arg = math.prod(out_shape), math.prod(arg_shape)
    result = {
        "both-at-start": (_contiguous(0, out_shape), _contiguous(0, arg_shape)),
        "argument-shifted-one": (_contiguous(0, out_shape), _contiguous(1, arg_shape)),
        "out-shifted-one": (_contiguous(1, out_shape), _contiguous(0, arg_shape)),
        "argument-at-the-end": (_contiguous(0, out_shape),
                                _contiguous(max(n_out - n_arg, 0) + 1, arg_shape)),
        "argument-strided": (_contiguous(0, out_shape), _strided(1, 2, arg_shape)),
        "out-strided": (_strided(0, 2, out_shape), _contiguous(0, arg_shape)),
        "interleaved": (_strided(1, 2, out_shape), _strided(0, 2, arg_shape)),
        "out-reversed": (_reversed(0, out_shape), _contiguous(0, arg_shape)),
        # out reversed and shifted: a tile's out lands near its mirror, never on a tile
        "out-reversed-shifted-back": (_reversed(0, out_shape), _contiguous(1, arg_shape)),
        "out-reversed-shifted-on": (_reversed(1, out_shape), _contiguous(0, arg_shape)),
        "out-overlapping-itself": (_self_overlapping(0, out_shape), _contiguous(0, arg_shape)),
        "argument-overlapping-itself": (_contiguous(0, out_shape),
                                        _self_overlapping(0, arg_shape)),
    }
    if out_shape == arg_shape:
        result["same-elements"] = (_contiguous(0, out_shape), _contiguous(0, arg_shape))
        result["both-overlapping-themselves"] = (_self_overlapping(0, out_shape),
                                                 _self_overlapping(0, arg_shape))
        if len(out_shape) == 2:
            result["out-fortran"] = (_fortran(0, out_shape), _contiguous(0, arg_shape))
            # a shift that wraps from one column to the next: tile 0's out
            # lands on the last tile's inputs
            result["fortran-out-shifted-back"] = (_fortran(0, out_shape), _fortran(1, arg_shape))
            result["fortran-out-shifted-on"] = (_fortran(1, out_shape), _fortran(0, arg_shape))
            result["out-one-row-on"] = (_contiguous(out_shape[1], out_shape),
                                        _contiguous(0, arg_shape))
            result["out-rows-reversed-one-row-back"] = (_rows_reversed(0, out_shape),
                                                        _contiguous(out_shape[1], arg_shape))
            result["out-rows-reversed-one-row-on"] = (_rows_reversed(out_shape[1], out_shape),
                                                      _contiguous(0, arg_shape))
    return result


def typed(buffer, kind):
    """The buffer as floats of its own dtype, or as integers of the same size."""
    if kind == "labels":
        return buffer.view(np.int64 if buffer.itemsize == 8 else np.int32)
    return buffer


def scenarios(function_name):
    """Every (argument, form, argument shape, relation) for one function."""
    family, _, receives = FUNCTIONS[function_name]
    alpha = ("alpha",) if family.takes_per_class_alpha else ()
    for name in ("logits", "targets", "weights") + alpha:
        for form in ("dense", "labels"):  # the other arguments too, with both target forms
            for shape in argument_shapes(family, name, form, N):
                out_shape = (N,) if receives == "rows" else (N, C)
                for relation in relations(out_shape, shape):
                    yield name, form, shape, relation


def build(function_name, name, form, shape, relation, dtype, n, seed, bad=False):
    """(buffer, out view, arguments, independent copies of the arguments)."""
    family, _, receives = FUNCTIONS[function_name]
    rng = np.random.default_rng(seed)
    out_shape = (n,) if receives == "rows" else (n, C)
    out_layout, arg_layout = relations(out_shape, shape)[relation]
    buffer = rng.normal(size=8 * n * C + 16).astype(dtype)
    arguments = {
        "logits": values(family, "logits", form, (n, C), rng, n).astype(dtype),
        "targets": values(family, "targets", form, (n,) if form == "labels" else (n, C), rng, n),
        "weights": values(family, "weights", form, family.loss_shape((n, C)),
                          rng, n),
        "alpha": values(family, "alpha", form, (C,), rng, n),
    }
    kind = "labels" if (name == "targets" and form == "labels") else "floats"
    view = arg_layout(typed(buffer, kind))
    view[...] = values(family, name, form, shape, rng, n)
    arguments[name] = view
    if bad:
        bad_name = name if name in ("targets", "weights") else "targets"
        target = arguments[bad_name]
        if bad_name != name:
            arguments[bad_name] = target = target.copy()
        target[(-1,) * target.ndim] = bad_value(family, bad_name, form)
    copies = {key: np.array(value, copy=True) for key, value in arguments.items()}
    return buffer, out_layout, arguments, copies


def bits(array):
    return np.ascontiguousarray(array).view(np.uint8)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(bits(a), bits(b))


# --------------------------------------------------------------------------
# the tests


@pytest.fixture(params=["copies", "tiles"])
def tiles(request, monkeypatch):
    """Small arguments that overlap out are copied; "tiles" makes every
    overlapping argument go through the tiles written in a safe order (see
    focal._overlap), tiles of 4 elements (or one row), copies and checks in pieces of 2
    elements (the result computed apart, out overlapping itself included), and
    counts the calls so planned."""
    planned = []
    if request.param == "tiles":
        monkeypatch.setattr(_overlap, "COPY_LIMIT", 0)
        monkeypatch.setattr(_overlap, "BLOCK_ELEMENTS", 4)
        monkeypatch.setattr(_args, "_PIECE", 2)
        plan = _pass._tiled_plan

        def counted(*args):
            result = plan(*args)
            planned.append(result is not None)
            return result
        monkeypatch.setattr(_pass, "_tiled_plan", counted)
    yield request.param
    if request.param == "tiles":
        assert sum(planned) > 20, "too few calls were written by tiles"


@pytest.mark.parametrize("function_name", list(FUNCTIONS))
def test_out_sharing_memory_with_an_argument_gives_the_out_of_place_result(function_name, tiles):
    _, call, _ = FUNCTIONS[function_name]
    checked = 0
    for case, (name, form, shape, relation) in enumerate(scenarios(function_name)):
        for dtype in (np.float64, np.float32):
            for lying in (False, True):
                buffer, out_layout, arguments, copies = build(
                    function_name, name, form, shape, relation, dtype, N, seed=case)
                reference = call(copies)
                reference_out, reference_rest = split(reference)
                expected = buffer.copy()
                out_layout(expected)[...] = reference_out
                out = out_layout(buffer)
                if lying:
                    out = np.ndarray.view(out, LyingArray)
                result_out, result_rest = split(call(arguments, out=out))
                where = (f"{function_name}: {name} ({form}, shape {shape}) {relation}, "
                         f"{np.dtype(dtype).name}{', lying out' if lying else ''}")
                assert result_out is out, where
                assert same_bits(buffer, expected), where
                for got, want in zip(result_rest, reference_rest):
                    assert same_bits(got, want), where
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("function_name", list(FUNCTIONS))
def test_a_failing_call_leaves_the_shared_buffer_untouched(function_name, tiles, monkeypatch):
    """Large enough for several blocks of the elementwise pass, the bad value last.
    Tiles of 128 elements and scans in pieces of 32: still several of each to
    a call, the bad value in the last.  (The previous test keeps tiles of 4 and
    pieces of 2; here their planning in Python cost a sixth of the quick tier.)"""
    if tiles == "tiles":
        monkeypatch.setattr(_overlap, "BLOCK_ELEMENTS", 128)
        monkeypatch.setattr(_args, "_PIECE", 32)
    _, call, _ = FUNCTIONS[function_name]
    n = 300
    checked = 0
    for case, (name, form, shape, relation) in enumerate(scenarios(function_name)):
        shape = tuple(n if k == N else k for k in shape)
        for lying in (False, True):
            buffer, out_layout, arguments, copies = build(
                function_name, name, form, shape, relation, np.float64, n, seed=case, bad=True)
            try:
                call(copies)
            except ValueError:
                pass
            else:
                continue  # the bad value was overwritten by the argument's own overlap
            out = out_layout(buffer)
            if not np.shares_memory(out, arguments[name]):
                continue  # out is not an input here: what it holds after an error is free
            if lying:
                out = np.ndarray.view(out, LyingArray)
            before = buffer.copy()
            with pytest.raises(ValueError):
                call(arguments, out=out)
            assert same_bits(buffer, before), (
                f"{function_name}: {name} ({form}) {relation}"
                f"{', lying out' if lying else ''} was written before the error")
            checked += 1
    assert checked > 20


def test_softmax_alpha_inside_out():
    x = np.random.default_rng(1).normal(size=(6, 4))
    labels = np.array([0, 1, 2, 3, 0, 1])
    for function in (focal.softmax_grad, focal.softmax_loss_and_grad):
        expected = function(x, labels, alpha=np.full(4, 0.3))
        buffer = np.full((6, 4), 0.3)
        result = function(x, labels, alpha=buffer[0], out=buffer)
        for got, want in zip(result if isinstance(result, tuple) else (result,),
                             expected if isinstance(expected, tuple) else (expected,)):
            assert same_bits(got, want)
    # the per-row loss written over the alpha it reads
    expected = focal.softmax_loss(x, labels, alpha=np.full(4, 0.3), reduction="none")
    buffer = np.full(6, 0.3)
    focal.softmax_loss(x, labels, alpha=buffer[:4], reduction="none", out=buffer)
    assert same_bits(buffer, expected)


def test_in_place_softmax_over_rows_sharing_memory():
    base = np.random.default_rng(2).normal(size=16)
    expected_base = base.copy()
    rows = np.lib.stride_tricks.as_strided(base, (7, 4), (2 * 8, 8))
    labels = np.array([0, 1, 2, 3, 0, 1, 2])
    reference = focal.softmax_grad(rows.copy(), labels)
    np.lib.stride_tricks.as_strided(expected_base, (7, 4), (2 * 8, 8))[...] = reference
    focal.softmax_grad(rows, labels, out=rows)
    assert same_bits(base, expected_base)


def test_a_lying_out_is_still_checked_and_returned():
    x = np.random.default_rng(3).normal(size=(300, 4))
    labels = np.random.default_rng(4).integers(0, 5, 300)
    expected = focal.grad(x, labels)
    lying = np.ndarray.view(x, LyingArray)
    assert focal.grad(x, labels, out=lying) is lying
    assert same_bits(x, expected)
    # a bad label in the last row: nothing written
    x = np.random.default_rng(3).normal(size=(300, 4))
    before = x.copy()
    labels[-1] = 9
    for function in (focal.grad, focal.softmax_grad):
        with pytest.raises(ValueError, match="^targets|^labels"):
            function(x, labels, out=np.ndarray.view(x, LyingArray))
        assert same_bits(x, before)


def test_grad_hess_results_share_no_memory_with_the_arguments():
    x = np.random.default_rng(5).normal(size=(5, 3))
    y = (x > 0).astype(np.float64)
    w = np.ones_like(x)
    g, h = focal.grad_hess(x, y, weights=w)
    for result in (g, h):
        for argument in (x, y, w):
            assert not np.shares_memory(result, argument)
    assert not np.shares_memory(g, h)


REVERSED_SHIFTED_CALLS = {  # (function, targets form, keyword arguments)
    "grad-dense": (focal.grad, "dense", {}),
    "grad-labels": (focal.grad, "labels", {"reduction": "sum_over_positives"}),
    "loss_and_grad-labels": (focal.loss_and_grad, "labels", {}),
    "loss-none": (focal.loss, "labels", {"reduction": "none"}),
    "star_grad": (focal.star_grad, "dense", {}),
    "poly1_loss_and_grad": (focal.poly1_loss_and_grad, "dense", {}),
    "softmax_grad": (focal.softmax_grad, "labels", {}),
    "softmax_loss_and_grad": (focal.softmax_loss_and_grad, "labels", {}),
}
REVERSED_SHIFTED_LAYOUTS = {  # (shift of out from the logits in elements, axes reversed)
    "one-element-back": (-1, (0,)),
    "one-element-on": (1, (0,)),
    "far-back": (-40_000, (0,)),  # (1-D only: the tiles beyond the mirror meet nothing)
    "one-row-back-rows-reversed": (-C, (0,)),
    "one-row-on-rows-reversed": (C, (0,)),
    "one-element-back-both-reversed": (-1, (0, 1)),
    "one-element-on-both-reversed": (1, (0, 1)),
}


@pytest.mark.parametrize("rows", [7, 1000, 4099])
@pytest.mark.parametrize("layout", list(REVERSED_SHIFTED_LAYOUTS))
@pytest.mark.parametrize("call", list(REVERSED_SHIFTED_CALLS))
def test_out_reversed_and_shifted_over_the_logits(call, layout, rows):
    """out= over the logits reversed and shifted (written by tiles from both
    ends towards the middle, see focal._overlap): the out-of-place result and
    loss, bit for bit, with one tile and with dozens (tiles of 16,384
    elements); the targets untouched.  One-element layouts of (rows, C) with
    rows reversed only are 1-D logits of rows * C elements."""
    function, form, keywords = REVERSED_SHIFTED_CALLS[call]
    shift, axes = REVERSED_SHIFTED_LAYOUTS[layout]
    classes = 80
    one_axis = axes == (0,) and abs(shift) != C
    if one_axis and call.startswith("softmax"):
        pytest.skip("the softmax needs a class axis")
    if abs(shift) == C:
        shift = shift // C * classes
    shape = (rows * classes,) if one_axis else (rows, classes)
    size = math.prod(shape)
    if size <= abs(shift):
        pytest.skip("out does not meet the logits")
    rng = np.random.default_rng(rows + abs(shift))
    logits = rng.standard_normal(shape, dtype=np.float32) * 3
    if form == "dense":
        targets = (rng.random(shape) < 0.1).astype(np.float32)
    else:
        if call.startswith("softmax"):  # (a row ignored: -100)
            targets = np.where(rng.random(shape[:-1]) < 0.1, -100,
                               rng.integers(0, classes, shape[:-1]))
        else:  # (background: classes; ignored: -1)
            targets = rng.integers(-1, classes + 1, shape[:-1] if len(shape) == 2 else shape)
        if len(shape) == 1:  # 1-D logits take binary targets
            targets = (targets > classes // 2).astype(np.float32)
    expected = function(logits.copy(), targets.copy(), **keywords)
    buffer = np.empty(size + abs(shift), np.float32)
    x = buffer[max(shift, 0):max(shift, 0) + size].reshape(shape)
    x[...] = logits
    out = buffer[max(-shift, 0):max(-shift, 0) + size].reshape(shape)
    out = out[tuple(slice(None, None, -1) if d in axes else slice(None)
                    for d in range(out.ndim))]
    kept = targets.copy()
    result = function(x, targets, out=out, **keywords)
    where = f"{call}, {layout}, {rows} rows"
    if isinstance(expected, tuple):
        assert same_bits(result[0], expected[0]), where
        expected, result = expected[1], result[1]
    assert result is out and same_bits(out, expected), where
    assert same_bits(targets, kept), where


# --------------------------------------------------------------------------
# out= and an argument in two memory mappings of one file: the same bytes at
# other addresses, which no comparison of addresses (NumPy's included) shows

MAPPED_N, MAPPED_C = 64, 80
MAPPED_CALLS = {
    "grad": lambda x, t, out: focal.grad(x, t, out=out),
    "loss_and_grad": lambda x, t, out: focal.loss_and_grad(x, t, out=out),
    "loss, none": lambda x, t, out: focal.loss(x, t, reduction="none", out=out),
    "softmax_grad": lambda x, t, out: focal.softmax_grad(x, t.argmax(axis=-1), out=out),
    "star_grad": lambda x, t, out: focal.star_grad(x, t, out=out),
}


def _mapped_logits(path, how, start, shape):
    """The logits already in the file at element `start`, mapped `how`."""
    count = math.prod(shape)
    if how == "memmap":
        return np.memmap(path, np.float32, "r", offset=4 * start, shape=shape)
    if how == "copy-on-write":  # (pages not written since show the file's bytes)
        return np.memmap(path, np.float32, "c", offset=4 * start, shape=shape)
    with open(path, "r+b") as handle:  # an mmap.mmap seen through a memoryview
        buffer = mmap.mmap(handle.fileno(), 0)
    return np.frombuffer(buffer, np.float32, count=count, offset=4 * start).reshape(shape)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps")
@pytest.mark.parametrize("how", ["memmap", "copy-on-write", "frombuffer"])
@pytest.mark.parametrize("shift", [0, 1, -1, MAPPED_C, -MAPPED_C], ids=lambda s: f"shift {s}")
@pytest.mark.parametrize("name", list(MAPPED_CALLS))
def test_out_in_another_mapping_of_the_logits_file(tmp_path, name, shift, how):
    """The logits in one mapping of a file (`how`), out in a shared np.memmap
    of the same file, `shift` elements further on (a row: MAPPED_C): out=
    gives the out-of-place result, and a call that fails (a bad target in the
    last row) changes neither mapping.  (Many blocks of the pass: a call of
    one block reads every input before it writes.)"""
    call = MAPPED_CALLS[name]
    rng = np.random.default_rng(abs(shift) + len(name))
    shape = (MAPPED_N, MAPPED_C)
    logits = (rng.standard_normal(shape) * 3).astype(np.float32)
    targets = (rng.random(shape) < 0.3).astype(np.float32)
    targets[np.arange(MAPPED_N), rng.integers(0, MAPPED_C, MAPPED_N)] = 1.0  # (a class a row)
    expected = call(logits.copy(), targets, None)
    path = tmp_path / "logits.bin"
    start_x, start_out = max(-shift, 0), max(shift, 0)
    content = np.zeros(MAPPED_N * MAPPED_C + abs(shift), np.float32)
    content[start_x:start_x + logits.size] = logits.ravel()
    content.tofile(path)
    x = _mapped_logits(path, how, start_x, shape)
    out = np.memmap(path, np.float32, "r+", offset=4 * start_out, shape=shape)
    assert _overlap.file_aliases(out, [x])  # (two mappings: other addresses, shift 0 too)

    bad = targets.copy()
    bad[-1, 0] = 2.0
    before = np.fromfile(path, np.float32)
    if not name.startswith("softmax"):
        with pytest.raises(ValueError, match="^targets"):
            call(x, bad, out)
        assert same_bits(np.fromfile(path, np.float32), before), name

    result = call(x, targets, out)
    if isinstance(expected, tuple):
        assert same_bits(result[0], expected[0]), name
        expected, result = expected[1], result[1]
    assert result is out and same_bits(np.asarray(out), expected), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps")
def test_what_is_and_is_not_a_file_alias(tmp_path):
    path = tmp_path / "logits.bin"
    np.arange(24, dtype=np.float32).tofile(path)
    shared = np.memmap(path, np.float32, "r+", shape=(24,))
    private = np.memmap(path, np.float32, "c", shape=(24,))  # its writes stay in its own copy
    assert not _overlap.file_aliases(private, [shared])
    assert _overlap.file_aliases(shared, [private])  # shared writes show where it has none
    assert not _overlap.file_aliases(shared, [np.arange(24, dtype=np.float32)])
    assert not _overlap.file_aliases(shared, [shared[::-1]])  # one mapping: addresses tell
    assert _overlap.file_aliases(shared[1:], [np.memmap(path, np.float32, "r", shape=(23,))])


@pytest.mark.parametrize("family", ["sigmoid", "softmax"])
def test_loss_into_is_used_only_where_it_shares_no_memory(family):
    """_pass.run's loss_into (the memory focal.jax hands over for the loss
    beside a gradient in out=) receives the loss only when it is a plain
    writeable array of the loss's shape and dtype sharing no byte with the
    call's arrays; over an input, out, the wrong shape, dtype or a read-only
    one, the loss is a new array and every input is unchanged."""
    from focal import _sigmoid, _softmax
    from focal._spec import KINDS
    rng = np.random.default_rng(3)
    mode = KINDS["loss_and_grad"][0]
    buffer = rng.normal(size=(2, N, C)).astype(np.float32)
    x, t = buffer[0], buffer[1]
    if family == "sigmoid":
        t[...] = rng.random((N, C)) < 0.5

        def call(out, loss_into):
            return _sigmoid._entry(mode, x, t, 0.25, 2.0, reduction="none", out=out,
                                   loss_into=loss_into)
        loss_shape = (N, C)
    else:
        t[...] = rng.dirichlet(np.ones(C), N)

        def call(out, loss_into):
            return _softmax._entry(mode, x, t, None, 2.0, reduction="none", out=out,
                                   loss_into=loss_into)
        loss_shape = (N,)
    expected_loss, expected_grad, _ = call(None, None)
    kept = buffer.copy()
    free = np.empty(loss_shape, np.float32)
    gradient = np.empty((N, C), np.float32)
    loss, grad, _ = call(gradient, free)
    assert loss is free and grad is gradient
    np.testing.assert_array_equal(loss, expected_loss)
    np.testing.assert_array_equal(grad, expected_grad)
    read_only = np.empty(loss_shape, np.float32)
    read_only.flags.writeable = False
    over_out = gradient[:, 0] if family == "softmax" else gradient
    for into in (x.reshape(-1)[:math.prod(loss_shape)].reshape(loss_shape),  # over the logits
                 t.reshape(-1)[:math.prod(loss_shape)].reshape(loss_shape),  # over the targets
                 over_out, np.empty(loss_shape, np.float64), np.empty((1,) + loss_shape,
                                                                     np.float32), read_only):
        loss, grad, _ = call(gradient, into)
        assert loss is not into and not np.may_share_memory(loss, buffer)
        np.testing.assert_array_equal(loss, expected_loss)
        np.testing.assert_array_equal(grad, expected_grad)
        np.testing.assert_array_equal(buffer, kept)


def test_loss_into_over_an_input_that_out_made_the_call_copy():
    """out= over half of the class indices makes the call read a copy of
    them; a loss_into over their other half must still be refused (it is
    checked against the caller's arrays, not only the copies), and so must a
    loss_into whose rows share memory."""
    from numpy.lib.stride_tricks import as_strided
    from focal import _sigmoid
    from focal._spec import KINDS
    mode = KINDS["loss_and_grad"][0]
    rng = np.random.default_rng(4)
    n, c = 8, 4
    x = rng.normal(size=(n, c)).astype(np.float32)
    raw = np.zeros(4 * n * c * 4 + 64, np.uint8)
    at = 4 * n * c  # the labels' first byte
    labels = raw[at:at + 8 * n].view(np.int64)
    labels[:] = rng.integers(0, c, n)
    kept = labels.copy()
    out = raw[at + 4 * n:at + 4 * n + 4 * n * c].view(np.float32).reshape(n, c)
    into = raw[at + 4 * n - 4 * n * c:at + 4 * n].view(np.float32).reshape(n, c)
    assert np.shares_memory(into, labels) and np.shares_memory(out, labels)
    assert not np.shares_memory(into, out)
    expected_loss, expected_grad, _ = _sigmoid._entry(mode, x, kept, 0.25, 2.0, reduction="none")
    loss, grad, _ = _sigmoid._entry(mode, x, labels, 0.25, 2.0, reduction="none", out=out,
                                    loss_into=into)
    assert loss is not into
    np.testing.assert_array_equal(loss, expected_loss)
    np.testing.assert_array_equal(grad, expected_grad)
    np.testing.assert_array_equal(labels[:n // 2], kept[:n // 2])  # the half out does not cover
    rows_shared = as_strided(np.zeros(c, np.float32), (n, c), (0, 4), writeable=True)
    loss, grad, _ = _sigmoid._entry(mode, x, kept, 0.25, 2.0, reduction="none",
                                    out=np.empty_like(x), loss_into=rows_shared)
    assert loss is not rows_shared
    np.testing.assert_array_equal(loss, expected_loss)


def test_loss_into_over_the_caller_s_bfloat16_logits():
    """bfloat16 logits are read through a float32 copy; a loss_into over the
    caller's bfloat16 memory must still be refused."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    from focal import _softmax
    from focal._spec import KINDS
    n, c = 8, 4
    raw = np.zeros(n * c * 2, np.uint8)
    logits = raw.view(ml_dtypes.bfloat16).reshape(n, c)
    logits[...] = np.random.default_rng(5).normal(size=(n, c))
    kept = logits.view(np.uint16).copy()
    into = raw[:n * 4].view(np.float32)
    labels = np.arange(n) % c
    mode = KINDS["loss_and_grad"][0]
    expected, _, _ = _softmax._entry(mode, logits.copy(), labels, None, 2.0, reduction="none")
    loss, _, _ = _softmax._entry(mode, logits, labels, None, 2.0, reduction="none",
                                 out=np.empty((n, c), np.float32), loss_into=into)
    assert loss is not into
    np.testing.assert_array_equal(logits.view(np.uint16), kept)
    np.testing.assert_array_equal(loss, expected)

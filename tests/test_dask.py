"""focal.dask: the focal loss of chunked dask arrays equals the in-memory call.

Dask comes from the ``dask`` extra (``pip install ".[dask]"``); without it
these tests are skipped, unless the environment variable FOCAL_REQUIRE_DASK
is set (CI sets it, so a missing Dask fails instead).  The arrays here are
computed with Dask's local schedulers; tests/test_dask_cluster.py runs a
real two-process cluster.

Bounds: float64 results within 1e-12 relative of the in-memory call (the
double sums of the denominator and the loss are added in another order);
float32 within one unit in the last place (each block's gradient is divided
by the global denominator inside the pass, as the in-memory call's is: both
are one rounding of double values a few double ulps apart, which differ
only when a rounding boundary falls between them); reduction="none" bit for
bit (each block is the in-memory call on that block).
"""
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import focal

if os.environ.get("FOCAL_REQUIRE_DASK"):
    import dask
    import dask.array as da
else:
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")

import focal.dask as fd  # noqa: E402  (after the skip)
from layouts import assert_warns_once_at  # noqa: E402

REDUCTIONS = ["mean", "sum", "sum_over_positives", "none"]


@pytest.mark.parametrize("softmax", [False, True])
def test_building_a_graph_computes_no_class_axis(softmax):
    """The argument checks run the NumPy function on one row; with the class
    axis whole that row was the whole input for one-dimensional logits (2**26
    margins: 781 MiB traced on the client before any compute, review 90),
    and a row of a long chunked class axis.  Now at most two classes (all of
    them where a per-class alpha or class indices need counting): the graph
    of 2**26 margins, and of rows of 2**24 classes, is built within 16 MiB."""
    import tracemalloc
    n = 2**26
    shapes = [((4, n // 4), {1: 2**20})] if softmax else [((n,), 2**22), ((4, n // 4), {1: 2**20})]
    for shape, chunks in shapes:
        x = da.zeros(shape, chunks=chunks, dtype=np.float32)
        w = da.ones(shape, chunks=chunks, dtype=np.float32)
        tracemalloc.start()
        try:
            if softmax:  # (a split class axis is refused, by name, after the checks)
                with pytest.raises(ValueError, match=r"^logits: the class axis \(1\) is split"):
                    fd.softmax_loss(x, x, weights=w[:, 0])
            else:
                fd.loss(x, x, weights=w)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 * 2**20, (shape, peak / 2**20)


def test_one_class_warnings_come_once_at_the_callers_line():
    """Class indices over one class, and a softmax over one class, warn when
    the graph is built, at the caller's line; the blocks' tasks, which ran
    the checks again in Dask's threads, do not warn again (review 81: nine
    warnings for one call under the "always" filter)."""
    x = da.from_array(np.array([[0.3], [-1.2], [2.0], [0.1]], np.float32), chunks=(2, 1))
    labels = da.from_array(np.array([0, 1, 0, 1]), chunks=2)
    calls = [("targets: class indices over a class axis of one class",
              lambda: fd.loss_and_grad(x, labels)),
             ("logits: the class axis", lambda: fd.softmax_loss_and_grad(x, labels * 0))]
    assert_warns_once_at(__file__, calls, lambda result: dask.compute(*result))


def _close(actual, expected, dtype):
    """The stated bound: float64 within 1e-12 relative, float32 within 1 ulp."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype == dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    finite = ~np.isnan(expected)
    if dtype == np.float64:
        np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_max_ulp(actual[finite], expected[finite], maxulp=1)


def _compare(reduction, actual, expected, dtype):
    if reduction == "none":
        np.testing.assert_array_equal(actual, expected)
        assert np.asarray(actual).dtype == np.asarray(expected).dtype == dtype
    else:
        _close(actual, expected, dtype)


def _sigmoid_case(kind, dtype, rng, n=600, classes=4):
    x = rng.normal(0.0, 3.0, size=(n, classes)).astype(dtype)
    if kind == "indices":
        t = rng.integers(0, classes + 1, n)  # classes + 1 values: C marks background
        t[rng.random(n) < 0.1] = -1  # ignored rows
    elif kind == "hard":
        t = (rng.random((n, classes)) < 0.1).astype(np.float64)
    elif kind == "soft":
        t = rng.random((n, classes))
    else:  # "broadcast": one target per row, for every class
        t = (rng.random((n, 1)) < 0.2).astype(np.float32)
    return x, t


CHUNKINGS = {
    "even": (150, -1),
    "uneven": ((1, 299, 100, 200), -1),
    "classes split": (200, (1, 3)),  # dense targets only
}


@pytest.fixture(autouse=True)
def _synchronous():
    """Dask's single-threaded scheduler (quickest on small graphs); the
    threaded one and a cluster are exercised too (below and in
    test_dask_cluster.py)."""
    with dask.config.set(scheduler="synchronous"):
        yield


# class indices need the class axis in one chunk (refused otherwise: see below)
SIGMOID_CASES = [(kind, chunking) for kind in ["indices", "hard", "soft", "broadcast"]
                 for chunking in CHUNKINGS
                 if not (kind == "indices" and chunking == "classes split")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, chunking", SIGMOID_CASES)
# (scalar alpha, the default, is in the tests below)
@pytest.mark.parametrize("weighted, alpha", [(False, None), (True, "per class")])
def test_sigmoid_equals_in_memory(dtype, kind, chunking, weighted, alpha):
    rng = np.random.default_rng(0)
    x, t = _sigmoid_case(kind, dtype, rng)
    if alpha == "per class":
        alpha = np.array([0.1, 0.25, 0.5, 0.9])
    chunks = CHUNKINGS[chunking]
    X = da.from_array(x, chunks=chunks)
    T = da.from_array(t, chunks=chunks[:1] if kind == "indices" else
                      (chunks[0], 1 if t.shape[1] == 1 else chunks[1]))
    # weights broadcast along the classes (one per row) or per element
    w = rng.uniform(0.0, 3.0, size=(x.shape[0], 1) if kind == "indices" else x.shape)
    W = da.from_array(w, chunks=(chunks[0], 1 if w.shape[1] == 1 else chunks[1]))
    kwargs = dict(weights=w) if weighted else {}
    dask_kwargs = dict(weights=W) if weighted else {}
    for reduction in REDUCTIONS:
        expected_loss, expected_grad = focal.loss_and_grad(x, t, alpha, 2.0, reduction=reduction,
                                                           **kwargs)
        lazy_loss, lazy_grad = fd.loss_and_grad(X, T, alpha, 2.0, reduction=reduction,
                                                **dask_kwargs)
        assert isinstance(lazy_loss, da.Array) and isinstance(lazy_grad, da.Array)
        assert lazy_grad.chunks == X.chunks
        assert lazy_loss.shape == (() if reduction != "none" else x.shape)
        value, gradient = dask.compute(lazy_loss, lazy_grad)
        _compare(reduction, value, expected_loss, np.dtype(dtype))
        _compare(reduction, gradient, expected_grad, np.dtype(dtype))
        if reduction not in ("mean", "none"):
            continue
        # the single functions agree with the pair
        alone = fd.loss(X, T, alpha, 2.0, reduction=reduction, **dask_kwargs).compute()
        np.testing.assert_array_equal(alone, value)
        alone = fd.grad(X, T, alpha, 2.0, reduction=reduction, **dask_kwargs).compute()
        np.testing.assert_array_equal(alone, gradient)


def _softmax_case(kind, dtype, rng, axis, shape=(40, 5, 30)):
    x = rng.normal(0.0, 3.0, size=shape).astype(dtype)
    axis %= len(shape)
    classes = shape[axis]
    rows = shape[:axis] + shape[axis + 1:]
    if kind == "indices":
        t = rng.integers(0, classes, rows)
        t[rng.random(rows) < 0.1] = -100
    else:  # label-smoothed one-hot rows
        t = np.moveaxis(np.eye(classes)[rng.integers(0, classes, rows)], -1, axis)
        t = 0.9 * t + 0.1 / classes
    return x, t


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["indices", "dense"])
@pytest.mark.parametrize("axis", [1, -1])
@pytest.mark.parametrize("weighted, alpha", [(False, None), (True, "per class")])
def test_softmax_equals_in_memory(dtype, kind, axis, weighted, alpha):
    rng = np.random.default_rng(1)
    x, t = _softmax_case(kind, dtype, rng, axis)
    if alpha == "per class":
        alpha = np.linspace(0.1, 0.9, x.shape[axis])
    chunks = [(7, 13, 20), (2, 3), (10, 20)]
    chunks[axis] = -1  # the class axis whole
    X = da.from_array(x, chunks=tuple(chunks))
    row_chunks = tuple(chunks[:axis % 3] + chunks[axis % 3 + 1:])
    T = da.from_array(t, chunks=row_chunks if kind == "indices" else tuple(chunks))
    rows = x.shape[:axis % 3] + x.shape[axis % 3 + 1:]
    w = rng.uniform(0.0, 2.0, size=(1,) + rows[1:])  # broadcast along the first axis
    W = da.from_array(w, chunks=(1,) + row_chunks[1:])
    kwargs = dict(weights=w) if weighted else {}
    dask_kwargs = dict(weights=W) if weighted else {}
    for reduction in ["mean", "sum", "none"]:
        expected = focal.softmax_loss_and_grad(x, t, alpha, 1.5, axis=axis, reduction=reduction,
                                               **kwargs)
        lazy = fd.softmax_loss_and_grad(X, T, alpha, 1.5, axis=axis, reduction=reduction,
                                        **dask_kwargs)
        value, gradient = dask.compute(*lazy)
        _compare(reduction, value, expected[0], np.dtype(dtype))
        _compare(reduction, gradient, expected[1], np.dtype(dtype))
        if reduction != "mean":
            continue
        alone = fd.softmax_loss(X, T, alpha, 1.5, axis=axis, reduction=reduction,
                                **dask_kwargs).compute()
        np.testing.assert_array_equal(alone, value)
        alone = fd.softmax_grad(X, T, alpha, 1.5, axis=axis, reduction=reduction,
                                **dask_kwargs).compute()
        np.testing.assert_array_equal(alone, gradient)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e308, 1e-310, 5e-324])
def test_extreme_weights(dtype, scale):
    """Weights near the ends of the double range: their sum overflows
    (1e308) or their products with the loss go subnormal; scaled by a power
    of two as in memory, the results still equal the in-memory call's."""
    rng = np.random.default_rng(8)
    x, t = _sigmoid_case("hard", dtype, rng, n=400, classes=3)
    w = rng.uniform(0.5, 1.0, size=x.shape) * scale
    w[::7] = 0.0
    X, T, W = (da.from_array(a, chunks=(50, 2)) for a in (x, t, w))
    for reduction in ["mean", "sum", "sum_over_positives"]:
        expected = focal.loss_and_grad(x, t, reduction=reduction, weights=w)
        actual = dask.compute(*fd.loss_and_grad(X, T, reduction=reduction, weights=W))
        for a, e in zip(actual, expected):
            _close(a, e, np.dtype(dtype))
    if scale == 1e308:
        with np.errstate(over="ignore"):
            assert np.isinf(np.sum(w))  # (the case the scaling is for)
    rows = rng.integers(0, 3, 400)
    r = rng.uniform(0.5, 1.0, 400) * scale
    R, S = da.from_array(rows, chunks=60), da.from_array(r, chunks=60)
    expected = focal.softmax_loss_and_grad(x, rows, weights=r)
    actual = dask.compute(*fd.softmax_loss_and_grad(da.from_array(x, chunks=(60, 3)), R,
                                                    weights=S))
    for a, e in zip(actual, expected):
        _close(a, e, np.dtype(dtype))


@pytest.mark.parametrize("scale", [1e307, 1e-310])
def test_extreme_weights_of_zero_dimensions(scale):
    """A weight of no dimensions (one softmax row, or one sigmoid element)
    near the ends of the double range: the block's scaled weight is an
    array as any other's (a NumPy scalar was refused by np.copyto), and the
    results are the in-memory call's."""
    x, rows = np.array([1.0, -2.0, 0.5]), np.array(1)
    w = np.array(scale)
    expected = focal.softmax_loss_and_grad(x, rows, weights=w)
    actual = dask.compute(*fd.softmax_loss_and_grad(da.from_array(x), da.from_array(rows),
                                                    weights=da.from_array(w)))
    for a, e in zip(actual, expected):
        _close(a, e, np.dtype(np.float64))
    x, t = np.array(1.5), np.array(1.0)
    expected = focal.loss_and_grad(x, t, weights=w)
    actual = dask.compute(*fd.loss_and_grad(da.from_array(x), da.from_array(t),
                                            weights=da.from_array(w)))
    for a, e in zip(actual, expected):
        _close(a, e, np.dtype(np.float64))


def test_the_denominator_is_global():
    """Blocks of very different sizes and positive counts: a mean of block means
    (or a gradient divided block by block) would be far off; the result is the
    in-memory one."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 3))
    t = np.zeros(1000, dtype=np.int64) + 3  # background
    t[:10] = 0  # every positive in the first, small block, badly classified
    x[:10, 0] = -6.0
    t[500:] = -1  # half of the rows ignored, all in the last block
    X, T = da.from_array(x, chunks=((10, 490, 500), 3)), da.from_array(t, chunks=((10, 490, 500),))
    for reduction in ["mean", "sum_over_positives"]:
        expected = focal.loss_and_grad(x, t, reduction=reduction)
        value, gradient = dask.compute(*fd.loss_and_grad(X, T, reduction=reduction))
        _close(value, expected[0], np.dtype(np.float64))
        _close(gradient, expected[1], np.dtype(np.float64))
        blockwise = np.mean([focal.loss(x[a:b], t[a:b], reduction=reduction)
                             for a, b in [(0, 10), (10, 500)]])
        assert abs(blockwise / expected[0] - 1) > 0.1  # the comparison can fail


def test_nothing_to_average():
    """Every row ignored: the mean is nan and the gradient 0; no positives:
    sum_over_positives divides by 1; as in memory."""
    x = np.linspace(-3, 3, 24).reshape(8, 3)
    X = da.from_array(x, chunks=(3, 3))
    ignored = da.from_array(np.full(8, -1), chunks=3)
    value, gradient = dask.compute(*fd.loss_and_grad(X, ignored))
    assert np.isnan(value) and not gradient.any()
    background = np.full(8, 3)
    value, gradient = dask.compute(*fd.loss_and_grad(X, da.from_array(background, chunks=3),
                                                     reduction="sum_over_positives"))
    expected = focal.loss_and_grad(x, background, reduction="sum_over_positives")
    _close(value, expected[0], np.dtype(np.float64))
    _close(gradient, expected[1], np.dtype(np.float64))
    zero_weights = da.zeros((8, 3), chunks=(3, 3))
    value, gradient = dask.compute(*fd.loss_and_grad(X, da.from_array(background, chunks=3),
                                                     weights=zero_weights))
    assert np.isnan(value) and not gradient.any()


def test_weights_with_fewer_dimensions_and_another_ignore_index():
    """Per-class weights of shape (C,) broadcast over the rows; ignore_index -100."""
    rng = np.random.default_rng(9)
    x, t = rng.normal(size=(500, 4)), rng.integers(0, 5, 500)
    t[::3] = -100
    w = np.array([0.5, 1.0, 2.0, 4.0])
    X, T = da.from_array(x, chunks=(120, 4)), da.from_array(t, chunks=120)
    for reduction in REDUCTIONS:
        expected = focal.loss_and_grad(x, t, weights=w, ignore_index=-100, reduction=reduction)
        value, gradient = dask.compute(*fd.loss_and_grad(
            X, T, weights=da.from_array(w, chunks=4), ignore_index=-100, reduction=reduction))
        _compare(reduction, value, expected[0], np.dtype(np.float64))
        _compare(reduction, gradient, expected[1], np.dtype(np.float64))
    # split like the logits' class axis, or refused by name
    X = da.from_array(x, chunks=(120, (1, 3)))
    dense = da.from_array((t[:, None] == np.arange(4)).astype(float), chunks=(120, (1, 3)))
    expected = focal.grad(x, dense.compute(), weights=w)
    _close(fd.grad(X, dense, weights=da.from_array(w, chunks=((1, 3),))).compute(), expected,
           np.dtype(np.float64))
    with pytest.raises(ValueError, match=r"^weights: chunks \(4,\) along axis 0 do not match "
                                         r"the chunks \(1, 3\)"):
        fd.grad(X, dense, weights=da.from_array(w, chunks=4))


def test_float16_is_computed_in_float32():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2)).astype(np.float16)
    t = rng.integers(0, 3, 300)
    X, T = da.from_array(x, chunks=(70, 2)), da.from_array(t, chunks=70)
    for reduction in REDUCTIONS:
        expected = focal.loss_and_grad(x, t, reduction=reduction)
        _compare(reduction, fd.loss(X, T, reduction=reduction).compute(), expected[0],
                 np.dtype(np.float32))
        _compare(reduction, fd.grad(X, T, reduction=reduction).compute(), expected[1],
                 np.dtype(np.float32))


# --- lazy, block by block ---------------------------------------------------------------------

class _Counter:
    """Counts the logits' blocks that are computed."""

    def __init__(self):
        self.blocks = 0

    def __call__(self, block):
        self.blocks += 1
        return block


def test_lazy_until_computed():
    rng = np.random.default_rng(4)
    x, t = rng.normal(size=(400, 3)), rng.integers(0, 3, 400)
    counter = _Counter()
    X = da.from_array(x, chunks=(100, 3)).map_blocks(counter, dtype=x.dtype,
                                                     meta=np.empty((0, 0)))
    T = da.from_array(t, chunks=100)
    results = [fd.loss(X, T), fd.grad(X, T), *fd.loss_and_grad(X, T, reduction="none"),
               *fd.softmax_loss_and_grad(X, T)]
    assert counter.blocks == 0
    assert results[0].shape == () and results[0].dtype == np.float64
    assert all(isinstance(r, da.Array) for r in results)
    dask.compute(*fd.loss_and_grad(X, T), scheduler="synchronous")
    assert counter.blocks == 4  # one pass: each block's loss and gradient together


def test_no_task_holds_more_than_a_block():
    """The largest result of any task, the driver's included, is one block's
    gradient (with its loss): nothing gathers the array."""
    rng = np.random.default_rng(5)
    n, block = 4000, 500
    x, t = rng.normal(size=(n, 4)), rng.integers(0, 5, n)
    w = rng.uniform(size=(n, 4))
    X, T = da.from_array(x, chunks=(block, 4)), da.from_array(t, chunks=block)
    W = da.from_array(w, chunks=(block, 4))
    sizes = []

    def record(key, result, dsk, state, worker_id):
        if str(key[0] if isinstance(key, tuple) else key).startswith("finalize"):
            return  # the gradient asked for, gathered into one array for the caller
        parts = result if isinstance(result, tuple) else (result,)
        sizes.append(sum(np.asarray(p).nbytes for p in parts if p is not None))

    from dask.callbacks import Callback
    lazy = fd.loss_and_grad(X, T, reduction="mean", weights=W)
    with Callback(posttask=record):
        value, gradient = dask.compute(*lazy, scheduler="synchronous")
    block_bytes = block * 4 * 8
    assert gradient.nbytes == n * 4 * 8
    assert max(sizes) <= block_bytes + 64  # a block of the inputs or of the gradient, + a sum
    _close(value, focal.loss(x, t, weights=w), np.dtype(np.float64))


def test_deterministic_and_scheduler_independent():
    rng = np.random.default_rng(6)
    x, t = rng.normal(size=(5000, 3)), rng.random((5000, 3))
    X, T = da.from_array(x, chunks=(250, 3)), da.from_array(t, chunks=(250, 3))
    lazy = fd.loss_and_grad(X, T, reduction="sum_over_positives")
    first = dask.compute(*lazy, scheduler="synchronous")
    for scheduler in ["synchronous", "threads"]:
        again = dask.compute(*lazy, scheduler=scheduler)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])


def test_inputs_unchanged():
    rng = np.random.default_rng(7)
    x, t, w = rng.normal(size=(300, 3)), rng.integers(-1, 4, 300), rng.uniform(size=(300, 1))
    copies = [a.copy() for a in (x, t, w)]
    X, T, W = (da.from_array(x, chunks=(50, 3)), da.from_array(t, chunks=50),
               da.from_array(w, chunks=(50, 1)))
    for reduction in REDUCTIONS:
        dask.compute(*fd.loss_and_grad(X, T, weights=W, reduction=reduction))
    for array, copy in zip((x, t, w), copies):
        np.testing.assert_array_equal(array, copy)


def test_the_graph_pickles():
    """What a distributed scheduler ships: the graph, closures included."""
    cloudpickle = pytest.importorskip("cloudpickle")
    x, t = np.linspace(-4, 4, 60).reshape(20, 3), np.arange(20) % 5 - 1
    X, T = da.from_array(x, chunks=(7, 3)), da.from_array(t, chunks=7)
    lazy = fd.loss_and_grad(X, T, weights=da.ones((20, 1), chunks=(7, 1)))
    restored = pickle.loads(cloudpickle.dumps(lazy))
    expected = dask.compute(*lazy)
    got = dask.compute(*restored)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_tasks_carry_no_arrays_but_their_blocks():
    """Every task focal.dask adds pickles small: none holds a copy of an
    input (a closure over a dask array would carry its whole graph, its
    in-memory data included, to every worker)."""
    cloudpickle = pytest.importorskip("cloudpickle")
    rng = np.random.default_rng(8)
    n = 100_000
    x, t, w = rng.normal(size=(n, 2)), rng.integers(0, 3, n), rng.uniform(size=(n, 2))
    X, T, W = (da.from_array(x, chunks=(10_000, 2)), da.from_array(t, chunks=10_000),
               da.from_array(w, chunks=(10_000, 2)))
    inputs = set()
    for array in (X, T, W):
        inputs.update(array.__dask_graph__().layers)
    for lazy in (fd.loss_and_grad(X, T, weights=W),
                 fd.softmax_loss_and_grad(X, T, weights=W[:, 0])):
        layers = {}
        for array in lazy:
            layers.update(array.__dask_graph__().layers)
        sizes = [len(cloudpickle.dumps(task)) for name, layer in layers.items()
                 if name not in inputs for task in layer.values()]
        assert len(sizes) > 20 and max(sizes) < 10_000 < w.nbytes // 100


# --- bad input -------------------------------------------------------------------------------

def _arrays():
    x = da.from_array(np.zeros((12, 3)), chunks=(4, 3))
    return x, da.from_array(np.zeros(12, dtype=np.int64), chunks=4)


def test_refuses_arrays_that_are_not_dask():
    X, T = _arrays()
    with pytest.raises(TypeError, match=r"^logits: expected a dask\.array\.Array, got numpy"):
        fd.loss(np.zeros((12, 3)), T)
    with pytest.raises(TypeError, match=r"^targets: expected a dask\.array\.Array"):
        fd.grad(X, np.zeros(12, dtype=np.int64))
    with pytest.raises(TypeError, match=r"^weights: expected a dask\.array\.Array"):
        fd.loss_and_grad(X, T, weights=np.ones(12))
    with pytest.raises(TypeError, match=r"^labels: expected a dask\.array\.Array"):
        fd.softmax_loss(X, [0] * 12)


def test_refuses_blocks_that_do_not_line_up():
    X, _ = _arrays()
    with pytest.raises(ValueError, match=r"^targets: chunks \(6, 6\) along axis 0 do not match"):
        fd.loss(X, da.from_array(np.zeros(12, dtype=np.int64), chunks=6))
    with pytest.raises(ValueError, match=r"^targets: chunks .* rechunk"):
        fd.loss(X, da.zeros((12, 3), chunks=(6, 3)))
    with pytest.raises(ValueError, match=r"^weights: chunks \(6, 6\) along axis 0"):
        fd.grad(X, da.zeros((12, 1), chunks=(4, 1)), weights=da.ones((12, 3), chunks=(6, 3)))
    with pytest.raises(ValueError, match=r"^labels: chunks"):
        fd.softmax_grad(X, da.from_array(np.zeros(12, dtype=np.int64), chunks=5))
    with pytest.raises(ValueError, match=r"^weights: chunks"):
        fd.softmax_loss(X, _arrays()[1], weights=da.ones(12, chunks=3))
    with pytest.raises(ValueError, match=r"^logits: the chunk sizes are unknown"):
        fd.loss(X[X[:, 0] > 0], da.zeros((12, 3), chunks=(4, 3)))


@pytest.mark.parametrize("case", ["target 2", "target nan", "negative weight", "infinite weight",
                                  "label 7", "label -7", "softmax label 7", "softmax row 2",
                                  "softmax weight nan"])
def test_a_bad_value_in_any_block_refuses_every_block_of_a_divided_result(case):
    """Where a result is divided by a sum over every block (a mean with weights
    or class indices, "sum_over_positives"), a bad target, label or weight in
    one block is refused as the in-memory call refuses it, also when only
    another block is computed (`grad(...)[:4]`).  Each block once checked
    only its own values: the others came out divided by a sum that held the
    bad one (a weight of -5 made it 1), and an infinite weight was refused
    as a normalizer."""
    x = np.linspace(-2.0, 2.0, 24).reshape(8, 3)
    rows = np.full((8, 3), 1 / 3)
    labels = np.array([0, 1, 2, 3, 0, 1, -1, 2])
    weights = np.ones(8)
    dense = (np.arange(24).reshape(8, 3) % 3 == 0).astype(np.float64)
    options = {}
    softmax = case.startswith("softmax")
    if case == "target 2":
        targets, options = dense, {"reduction": "sum_over_positives"}
        targets[7, 1] = 2.0
    elif case == "target nan":
        targets, options = dense, {"reduction": "sum_over_positives"}
        targets[6, 0] = np.nan
    elif case in ("negative weight", "infinite weight"):
        targets = dense
        weights[7] = -5.0 if case == "negative weight" else np.inf
        options = {"weights": np.broadcast_to(weights[:, None], (8, 3))}
    elif case == "label 7":
        targets, labels[7] = labels, 7
    elif case == "label -7":
        targets, options = labels, {"reduction": "sum_over_positives"}
        labels[7] = -7
    elif case == "softmax label 7":
        targets, labels[7] = np.where(labels == 3, 0, labels), 7
    elif case == "softmax row 2":
        targets, options = rows, {"weights": weights}
        rows[7] = [2.0, -1.0, 0.0]
    else:
        targets, options = rows, {"weights": weights}
        weights[7] = np.nan
    in_memory = focal.softmax_grad if softmax else focal.grad
    with pytest.raises(ValueError) as expected:
        in_memory(x, targets, **options)
    lazy = fd.softmax_grad if softmax else fd.grad
    dask_options = {key: da.from_array(np.ascontiguousarray(value), chunks=4) if key == "weights"
                    else value for key, value in options.items()}
    chunks = (4, 3) if targets.ndim == 2 else 4
    gradient = lazy(da.from_array(x, chunks=(4, 3)), da.from_array(targets, chunks=chunks),
                    **dask_options)
    with pytest.raises(ValueError) as got:
        gradient[:4].compute()  # the first block only: the bad value is in the second
    assert str(got.value) == str(expected.value)


def test_refuses_a_split_class_axis():
    x = da.zeros((12, 4), chunks=(4, 2))
    labels = da.zeros(12, dtype=np.int64, chunks=4)
    with pytest.raises(ValueError, match=r"^logits: the class axis \(1\) is split into 2 "
                                         r"chunks .*logits\.rechunk\(\{1: -1\}\)"):
        fd.loss(x, labels)
    with pytest.raises(ValueError, match=r"^logits: the class axis \(0\) is split"):
        fd.softmax_loss(da.zeros((4, 12), chunks=(2, 4)), labels, axis=0)
    # dense sigmoid targets may split it: every element is its own
    fd.loss(x, da.zeros((12, 4), chunks=(4, 2)))


def test_refuses_shapes_and_scalars_by_name():
    X, T = _arrays()
    with pytest.raises(ValueError, match=r"^targets: class indices must have shape"):
        fd.loss(X, da.zeros(11, dtype=np.int64, chunks=4))
    with pytest.raises(ValueError, match=r"^targets: shape \(12, 2\) does not match"):
        fd.loss(X, da.zeros((12, 2), chunks=(4, 2)))
    with pytest.raises(ValueError, match=r"^weights: shape \(12, 2\) is not broadcastable"):
        fd.loss(X, T, weights=da.zeros((12, 2), chunks=(4, 2)))
    with pytest.raises(ValueError, match=r"^labels: dense targets must have"):
        fd.softmax_loss(X, da.zeros((12, 2), chunks=(4, 2)))
    with pytest.raises(ValueError, match=r"^axis: 2 is out of range"):
        fd.softmax_loss(X, T, axis=2)
    # the scalars are checked as the NumPy functions check them, without computing
    with pytest.raises(ValueError, match=r"^gamma"):
        fd.loss(X, T, gamma=-1.0)
    with pytest.raises(ValueError, match=r"^alpha"):
        fd.grad(X, T, alpha=1.5)
    with pytest.raises(ValueError, match=r"^alpha"):
        fd.grad(X, T, alpha=[0.5, 0.5])  # not one per class
    with pytest.raises(ValueError, match=r"^reduction"):
        fd.loss_and_grad(X, T, reduction="average")
    with pytest.raises(ValueError, match=r"^reduction"):
        fd.softmax_loss(X, T, reduction="sum_over_positives")
    with pytest.raises(ValueError, match=r"^ignore_index: 3 is a valid class index"):
        fd.loss(X, T, ignore_index=3)
    with pytest.raises(TypeError, match=r"^targets"):
        fd.loss(X, da.zeros(12, chunks=4))  # class indices must be integers
    with pytest.raises(TypeError, match=r"^logits"):
        fd.loss(X.astype(bool), T)


def test_bad_values_raise_when_computed():
    X, _ = _arrays()
    labels = da.from_array(np.array([0] * 11 + [7]), chunks=4)
    lazy = fd.loss(X, labels)  # nothing read yet
    with pytest.raises(ValueError, match=r"^targets"):
        lazy.compute()
    with pytest.raises(ValueError, match=r"^weights"):
        fd.grad(X, da.zeros((12, 3), chunks=(4, 3)),
                weights=da.full((12, 3), -1.0, chunks=(4, 3))).compute()


# --- the module ------------------------------------------------------------------------------

def test_docstrings():
    import doctest
    result = doctest.testmod(fd, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
    for name in fd.__all__:
        doc = getattr(fd, name).__doc__
        assert "Parameters" in doc and "Returns" in doc and "Examples" in doc, name


def test_import_without_dask_names_the_extra():
    """Dask blocked from import: focal works, focal.dask names the extra."""
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "dask" or name.startswith("dask."):
                    raise ImportError(f"No module named {name!r}")
        sys.meta_path.insert(0, Block())
        import focal
        try:
            import focal.dask
        except ImportError as error:
            print(error)
    """)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=os.path.dirname(os.path.abspath(__file__)), timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "focal[dask]"' in result.stdout


@pytest.mark.parametrize("family", ["sigmoid", "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalizer_as_in_memory(family, dtype):
    # the NumPy functions' normalizer= (a mean's denominator given): the same loss and
    # gradient whatever the chunks, and refused by name as in memory
    rng = np.random.default_rng(11)
    x = rng.normal(size=(50, 4)).astype(dtype)
    y = rng.integers(-1, 5, 50) if family == "sigmoid" else rng.integers(0, 4, 50)
    w = rng.uniform(0.5, 2.0, size=(50, 1) if family == "sigmoid" else 50)
    X, Y = da.from_array(x, chunks=(13, 4)), da.from_array(y, chunks=13)
    W = da.from_array(w, chunks=(13,) + w.shape[1:])
    in_memory = focal.loss_and_grad if family == "sigmoid" else focal.softmax_loss_and_grad
    lazy = fd.loss_and_grad if family == "sigmoid" else fd.softmax_loss_and_grad
    for weights, weights_lazy in [(None, None), (w, W)]:
        expected = in_memory(x, y, weights=weights, normalizer=7.5)
        value, gradient = dask.compute(*lazy(X, Y, weights=weights_lazy, normalizer=7.5))
        _close(value, expected[0], dtype)
        _close(gradient, expected[1], dtype)
    with pytest.raises(ValueError, match="^normalizer: "):
        lazy(X, Y, normalizer=0.0)
    with pytest.raises(ValueError, match="^normalizer: "):
        lazy(X, Y, reduction="sum", normalizer=2.0)


@pytest.mark.parametrize("family", ["sigmoid", "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight, normalizer", [
    (None, 1e-300), (None, 5e-324), (1e300, 1e300), (1.7e308, 1e300), (1e300, 1.7e308),
    (5e-324, 1e-300), (1e-300, 1.7e308)])
def test_extreme_normalizers_as_in_memory(family, dtype, weight, normalizer):
    # a normalizer below 1 lifts each block's sum, huge weights scale it down:
    # the quotient of the added sums is formed as the in-memory call forms it,
    # with the exponents apart (divided first, it overflowed to inf or
    # underflowed to 0 before the scale was put back); mixed weights too
    rng = np.random.default_rng(13)
    x = rng.normal(0, 4, size=(12, 3)).astype(dtype)
    y = rng.integers(-1, 4, 12) if family == "sigmoid" else rng.integers(0, 3, 12)
    w = None if weight is None else np.where(np.arange(12) % 3 == 0, 1.0, weight)
    if w is not None and family == "sigmoid":
        w = w[:, None]
    X, Y = da.from_array(x, chunks=(5, 3)), da.from_array(y, chunks=5)
    W = None if w is None else da.from_array(w, chunks=(5,) + w.shape[1:])
    pairs = [(focal.loss_and_grad, fd.loss_and_grad), (focal.loss, fd.loss)]
    if family == "softmax":
        pairs = [(focal.softmax_loss_and_grad, fd.softmax_loss_and_grad),
                 (focal.softmax_loss, fd.softmax_loss)]
    for in_memory, lazy in pairs:
        expected = in_memory(x, y, weights=w, normalizer=normalizer)
        actual = dask.compute(lazy(X, Y, weights=W, normalizer=normalizer))[0]
        for a, e in zip(actual if isinstance(actual, tuple) else (actual,),
                        expected if isinstance(expected, tuple) else (expected,)):
            _close(a, e, np.dtype(dtype))


def test_block_sums_past_the_double_range_are_added_scaled():
    # two blocks whose loss sums are each near the largest double: added as
    # they are, the total overflowed (inf); the in-memory pass takes its sum's
    # scaled twin and gives their finite mean
    x = np.array([[-1.7e308], [-1.6e308]])
    y = np.ones((2, 1))
    expected = focal.loss(x, y, alpha=None, gamma=0.0)
    assert np.isfinite(expected)
    X, Y = (da.from_array(a, chunks=(1, 1)) for a in (x, y))
    actual = fd.loss(X, Y, alpha=None, gamma=0.0).compute()
    _close(actual, expected, np.dtype(np.float64))


@pytest.mark.parametrize("family", ["sigmoid", "softmax"])
@pytest.mark.parametrize("heavy", [0.5, 1e300, 1.7e308])
@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_heavy_weights_on_ignored_rows_as_in_memory(family, heavy, chunk):
    # the scale of a weighted mean's shares comes from the weights that count
    # (the heavy ones of ignored rows took the others to 0, or, scaled by the
    # others' sum, past the range: refused as inf)
    x = np.array([[0.3, 1.0], [-1.2, 0.1], [2.0, -0.5], [0.7, 0.2]])
    w = np.array([heavy, 5e-324, 5e-324, 1.5e-323])
    if family == "softmax":
        labels = np.array([-100, 0, 0, 1])
        in_memory, lazy, weights = focal.softmax_loss_and_grad, fd.softmax_loss_and_grad, w
    else:
        labels = np.array([-1, 0, 0, 1])
        in_memory, lazy, weights = focal.loss_and_grad, fd.loss_and_grad, np.stack([w, w], 1)
    expected = in_memory(x, labels, weights=weights)
    blocks = (da.from_array(x, chunks=(chunk, 2)), da.from_array(labels, chunks=chunk),
              da.from_array(weights, chunks=(chunk,) + weights.shape[1:]))
    actual = dask.compute(*lazy(*blocks[:2], weights=blocks[2]))
    for a, e in zip(actual, expected):
        _close(a, e, np.dtype(np.float64))


def test_a_block_of_zero_weights_does_not_set_the_scale():
    # a block whose sums are 0 (its weights 0) says exponent 0; taken as the
    # largest, it pushed the other blocks' scaled sums of subnormal weights
    # back below the normal range (0.25 for 0.277)
    x = np.array([[0.3], [-1.2], [2.0], [0.7]])
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    w = np.array([[0.0], [0.0], [5e-324], [1.5e-323]])
    X, Y, W = (da.from_array(a, chunks=(2, 1)) for a in (x, y, w))
    for reduction in ("mean", "sum"):
        expected = focal.loss_and_grad(x, y, weights=w, reduction=reduction)
        actual = dask.compute(*fd.loss_and_grad(X, Y, weights=W, reduction=reduction))
        for a, e in zip(actual, expected):
            _close(a, e, np.dtype(np.float64))


def _family_case(family, rows):
    """Logits (rows, 3), targets of a family (dense, class indices or softmax
    labels), and its in-memory and lazy loss_and_grad."""
    x = np.linspace(-3, 3, 3 * rows).reshape(rows, 3)
    if family == "sigmoid":
        return x, (x > 0).astype(np.float64), focal.loss_and_grad, fd.loss_and_grad
    if family == "sigmoid labels":
        return x, np.arange(rows) % 4, focal.loss_and_grad, fd.loss_and_grad
    return x, np.arange(rows) % 3, focal.softmax_loss_and_grad, fd.softmax_loss_and_grad


@pytest.mark.parametrize("family", ["sigmoid", "sigmoid labels", "softmax"])
@pytest.mark.parametrize("chunks", [((2, 0, 2), (3,)), ((0, 4), (3,)), ((4,), (3,)), ((0,), (3,))])
def test_blocks_of_no_elements_as_in_memory(family, chunks):
    """Zero-size blocks come from slicing and concatenating; with weights and the
    mean, such a block asked for its largest weight and met NumPy's own error
    ("zero-size array to reduction operation maximum").  It shares nothing; an
    array of no elements at all gives the in-memory call's nan."""
    rows = sum(chunks[0])
    x, t, call, lazy = _family_case(family, rows)
    w = np.linspace(0.5, 2.0, 3 * rows).reshape(rows, 3)
    if family == "softmax":
        w = w[:, 0]  # one weight per row
    X = da.from_array(x, chunks=chunks)
    T, W = (da.from_array(a, chunks=chunks if a.ndim == 2 else chunks[:1]) for a in (t, w))
    value, gradient = dask.compute(*lazy(X, T, weights=W))
    expected = call(x, t, weights=w)
    if rows == 0:
        assert np.isnan(value) and np.isnan(expected[0]) and gradient.shape == (0, 3)
    else:
        _close(value, expected[0], np.dtype(np.float64))
        _close(gradient, expected[1], np.dtype(np.float64))


@pytest.mark.parametrize("family", ["sigmoid", "sigmoid labels", "softmax"])
@pytest.mark.parametrize("row_chunks", [(0, 1), (1, 0), (0, 1, 0), (1, 0, 1)])
@pytest.mark.parametrize("reduction", ["mean", "sum_over_positives", "none"])
def test_an_axis_of_one_element_with_empty_blocks_as_in_memory(family, row_chunks, reduction):
    """An axis of length 1 chunked (0, 1), as a mask and compute_chunk_sizes()
    leave one surviving row: Dask's blockwise calls with a second argument
    computed its row twice (x * 2 of shape (1, 2) gave shape (2, 2)), so a
    mean's gradient came out of the wrong shape and its loss twice the
    in-memory one.  Empty blocks are dropped first."""
    if family == "softmax" and reduction == "sum_over_positives":
        pytest.skip("the softmax has no sum_over_positives")
    x, t, call, lazy = _family_case(family, sum(row_chunks))
    X = da.from_array(x, chunks=(row_chunks, (3,)))
    T = da.from_array(t, chunks=(row_chunks, (3,)) if t.ndim == 2 else (row_chunks,))
    value, gradient = lazy(X, T, reduction=reduction)
    assert gradient.shape == x.shape
    computed = dask.compute(value, gradient)
    expected = call(x, t, reduction=reduction)
    for actual, wanted in zip(computed, expected):
        assert np.shape(actual) == np.shape(wanted)
        _compare(reduction, actual, wanted, np.dtype(np.float64))


def test_refuses_dask_arrays_where_a_number_shapes_the_graph():
    """alpha, gamma, ignore_index and normalizer given as dask arrays were
    computed while the graph was built (a normalizer twice), against "nothing
    is computed until asked": refused by name, with the way out."""
    X, T = _arrays()
    count = (T >= 0).sum()
    for family in (fd.loss_and_grad, fd.softmax_loss_and_grad):
        with pytest.raises(TypeError, match=r"^normalizer: expected a number .* dask array"):
            family(X, T, normalizer=count)
        with pytest.raises(TypeError, match=r"^gamma: expected a number .* dask array"):
            family(X, T, gamma=da.from_array(np.float64(2.0)))
        with pytest.raises(TypeError, match=r"^ignore_index: expected a number .* dask array"):
            family(X, T, ignore_index=da.from_array(np.int64(-1)))
        with pytest.raises(TypeError, match=r"^alpha: expected a number .* dask array"):
            family(X, T, alpha=da.from_array(np.array([0.25, 0.5])))
    # computed first, as the message says, the same normalizer is taken
    loss, _ = fd.loss_and_grad(X, T, normalizer=count.compute())
    assert np.isfinite(loss.compute())

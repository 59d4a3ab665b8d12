"""Memory: no hidden copies or temporaries, no reference leaks.

(a) The extra peak memory of one call, beyond the arrays it returns, stays
    under 1 MiB on a (2, 100000, 80) float32 batch (64 MB of logits): neither
    a one-hot array, nor a float64 copy of the logits, nor a temporary of the
    logits' size is ever made, whatever the layout or byte order (NumPy's
    iterator buffers in chunks instead).  Measured with tracemalloc, to which
    NumPy reports its array allocations.
(b) Reference counts of every input (and of the builtin dtypes the C code
    looks up) are unchanged after many successful and many failing calls, and
    the returned arrays are referenced only by the caller.
(c) The extra memory does not grow with the input: not with its size (the
    chunks' sums are held in a fixed number of slots), not with the number of
    classes (softmax rows are read in pieces, class indices need no table of
    classes, per-class alpha is read in place), not with out= over the logits
    in reverse order (written by pairs of mirrored blocks, not through a copy
    of the logits), nor shifted (in C or Fortran order) or transposed, nor
    over shifted targets or weights (tiles computed apart and committed in a
    safe order, generated tile by tile), class-index rows longer than a tile
    included.  Also measured as resident memory, in a subprocess, on
    zero-stride views that occupy none themselves.
"""
from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import focal

MIB = 1 << 20
LIMIT = 1 * MIB
SHAPE = (2, 100_000, 80)
C = SHAPE[-1]


# --------------------------------------------------------------------------
# measurement


def _new_arrays(result, existing):
    """The arrays in `result` (a value or a tuple) not among `existing`."""
    items = result if isinstance(result, tuple) else (result,)
    return [a for a in items if isinstance(a, np.ndarray) and not any(a is e for e in existing)]


def extra_peak(call, existing=()):
    """(peak bytes allocated during call() beyond the new arrays it returns, result)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    returned = sum(a.nbytes for a in _new_arrays(result, existing))
    return peak - before - returned, result


@pytest.fixture(scope="module")
def batch():
    """Logits in three layouts and the two target forms, built once."""
    rng = np.random.default_rng(20170807)
    logits = rng.standard_normal(SHAPE, dtype=np.float32) * 3
    dense = np.zeros(SHAPE, np.float32)
    dense.reshape(-1)[rng.choice(dense.size, dense.size // 1000, replace=False)] = 1.0
    labels = np.full(SHAPE[:-1], C, np.int64)  # background
    positive = rng.random(SHAPE[:-1]) < 0.02
    labels[positive] = rng.integers(0, C, int(positive.sum()))
    labels[rng.random(SHAPE[:-1]) < 0.01] = -1  # ignored
    # a fully transposed view (Fortran order: the class axis has the largest stride)
    transposed = np.ascontiguousarray(logits.T).T
    # a view that is neither C- nor F-contiguous (the two leading axes swapped)
    strided = np.ascontiguousarray(logits.transpose(1, 0, 2)).transpose(1, 0, 2)
    swapped = logits.astype(">f4")
    assert transposed.shape == strided.shape == SHAPE
    assert not transposed.flags.c_contiguous
    assert not strided.flags.c_contiguous and not strided.flags.f_contiguous
    assert swapped.dtype.byteorder == ">" and not swapped.dtype.isnative
    # warm up: the first call imports numpy.ma lazily (a one-time ~1 MiB)
    small = logits[:, :10]
    for targets in (dense[:, :10], labels[:, :10]):
        focal.loss_and_grad(small, targets)
        focal.grad_hess(small.astype(">f4"), targets)
    return dict(logits=logits, transposed=transposed, strided=strided, swapped=swapped, dense=dense,
                labels=labels, out=np.empty(SHAPE, np.float32))


def test_measurement_sees_numpy_temporaries(batch):
    """Self-check of the method: a hidden 4 MiB temporary is seen."""
    def with_temporary():
        np.add(batch["logits"][0, :13_107], 1.0).sum()  # 13107*80*4 bytes ~ 4 MiB
        return focal.loss(batch["logits"][:, :10], batch["labels"][:, :10])

    extra, _ = extra_peak(with_temporary)
    assert extra >= 4 * MIB - 4096


CALLS = {
    "loss-mean": lambda x, t, out: focal.loss(x, t),
    "loss_and_grad-mean": lambda x, t, out: focal.loss_and_grad(x, t),
    "grad-sum_over_positives": lambda x, t, out: focal.grad(x, t, reduction="sum_over_positives"),
    "grad_hess": lambda x, t, out: focal.grad_hess(x, t),
    "loss-none": lambda x, t, out: focal.loss(x, t, reduction="none"),
    "loss_and_grad-out": lambda x, t, out: focal.loss_and_grad(x, t, out=out),
}
EXPECTED_NEW_ARRAYS = {
    "loss-mean": 0, "loss_and_grad-mean": 1, "grad-sum_over_positives": 1,
    "grad_hess": 2, "loss-none": 1, "loss_and_grad-out": 0,
}


@pytest.mark.parametrize("targets", ["dense", "labels"])
@pytest.mark.parametrize("call", list(CALLS))
def test_peak_memory_contiguous(batch, call, targets):
    x, t, out = batch["logits"], batch[targets], batch["out"]
    extra, result = extra_peak(lambda: CALLS[call](x, t, out), existing=(out,))
    new = _new_arrays(result, (out,))
    assert len(new) == EXPECTED_NEW_ARRAYS[call]
    assert all(a.shape == SHAPE and a.dtype == np.float32 for a in new)
    if call == "loss_and_grad-out":
        assert result[1] is out
    assert extra < LIMIT, f"{call} with {targets} targets used {extra / MIB:.2f} MiB extra"


@pytest.mark.parametrize("layout, call, targets", [
    ("transposed", "loss_and_grad-mean", "dense"),
    ("transposed", "loss_and_grad-mean", "labels"),
    ("strided", "loss-none", "dense"),
    ("swapped", "loss_and_grad-mean", "dense"),
    ("swapped", "loss_and_grad-mean", "labels"),
    ("swapped", "grad_hess", "labels"),
])
def test_peak_memory_buffered_layouts(batch, layout, call, targets):
    """A non-contiguous view or a byte-swapped array is read through the
    iterator's small buffers, never copied whole."""
    x, t = batch[layout], batch[targets]
    extra, result = extra_peak(lambda: CALLS[call](x, t, None))
    for a in _new_arrays(result, ()):
        assert a.shape == SHAPE and a.dtype == np.float32 and a.dtype.isnative
    assert extra < LIMIT, f"{call} on {layout} logits used {extra / MIB:.2f} MiB extra"


def test_buffered_layouts_give_the_same_numbers(batch):
    """The buffered reads are reads of the same values (a cheap consistency
    check on a slice, so that the memory tests above measure real work)."""
    rows = slice(0, 2000)
    reference = focal.loss_and_grad(batch["logits"][:, rows], batch["labels"][:, rows])
    for layout in ("transposed", "strided", "swapped"):
        value, grad = focal.loss_and_grad(batch[layout][:, rows], batch["labels"][:, rows])
        assert value == reference[0]
        assert np.array_equal(grad, reference[1])


# --------------------------------------------------------------------------
# (b) reference counts


@pytest.fixture()
def small():
    rng = np.random.default_rng(3)
    n, c = 12, 5
    logits = rng.standard_normal((n, c)).astype(np.float32)
    labels = np.array([0, c, -1, 4, 1, c, c, 2, 3, c, -1, 0])
    dense = (rng.random((n, c)) < 0.2).astype(np.float32)
    weights = rng.random((n, 1))
    alpha = np.linspace(0.1, 0.9, c)
    out = np.empty((n, c), np.float32)
    bad_labels = labels.copy()
    bad_labels[-1] = c + 1
    bad_dense = dense.copy()
    bad_dense[-1, -1] = 2.0
    bad_weights = weights.copy()
    bad_weights[0, 0] = -1.0
    return dict(logits=logits, labels=labels, dense=dense, weights=weights, alpha=alpha,
                out=out, bad_labels=bad_labels, bad_dense=bad_dense, bad_weights=bad_weights,
                swapped=logits.astype(">f4"), float64=logits.astype(np.float64))


def _good_calls(a):
    return [
        lambda: focal.loss(a["logits"], a["labels"]),
        lambda: focal.loss(a["swapped"], a["dense"], reduction="sum"),
        lambda: focal.loss(a["logits"], a["labels"], reduction="none", out=a["out"]),
        lambda: focal.grad(a["logits"], a["labels"], a["alpha"], 0.5, reduction="sum_over_positives"),
        lambda: focal.grad(a["float64"], a["dense"], weights=a["weights"], out=None),
        lambda: focal.loss_and_grad(a["logits"], a["dense"], a["alpha"], weights=a["weights"]),
        lambda: focal.loss_and_grad(a["logits"], a["labels"], out=a["out"]),
        lambda: focal.grad_hess(a["logits"], a["labels"], None, 1.5, weights=a["weights"]),
        lambda: focal.grad_hess(a["float64"], a["dense"], a["alpha"]),
        lambda: focal.prior_bias(0.01),
    ]


def _bad_calls(a):
    return [
        lambda: focal.loss(a["logits"], a["bad_labels"]),  # raised in the C pass
        lambda: focal.loss_and_grad(a["logits"], a["bad_dense"], out=a["out"]),
        lambda: focal.grad(a["logits"], a["labels"], weights=a["bad_weights"]),
        lambda: focal.grad_hess(a["logits"], a["bad_dense"], a["alpha"]),
        lambda: focal.grad(a["logits"], a["labels"], out=a["logits"], weights=a["bad_weights"]),
        lambda: focal.loss(a["logits"], a["labels"], alpha=a["alpha"][:3]),  # Python checks
        lambda: focal.loss(a["logits"], a["labels"], gamma=a["alpha"]),
        lambda: focal.grad(a["logits"], a["labels"], out=a["float64"]),
        lambda: focal.loss(a["logits"], a["labels"], out=a["out"]),
        lambda: focal.loss(a["logits"], a["dense"][:, :2]),
        lambda: focal.loss(a["logits"], a["labels"], ignore_index=0),
        lambda: focal.prior_bias(a["alpha"]),
    ]


def _watched(a):
    dtypes = [np.dtype(t) for t in (np.float32, np.float64, np.intp, np.int64, ">f4")]
    return list(a.values()) + dtypes


def _refcounts(objects):
    return [sys.getrefcount(o) for o in objects]


def _run_many(calls, repeats, expect_error):
    enabled = gc.isenabled()
    gc.disable()  # no collection in between: counts must balance by themselves
    try:
        for _ in range(repeats):
            for call in calls:
                try:
                    call()
                except (TypeError, ValueError):
                    if not expect_error:
                        raise
                else:
                    assert not expect_error, "expected an error"
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("kind", ["success", "error"])
def test_refcounts_of_inputs_unchanged(small, kind):
    calls = _good_calls(small) if kind == "success" else _bad_calls(small)
    watched = _watched(small)
    _run_many(calls, 2, kind == "error")  # warm any caches first
    before = _refcounts(watched)
    _run_many(calls, 300, kind == "error")
    after = _refcounts(watched)
    names = list(small) + ["float32", "float64", "intp", "int64", ">f4"]
    changed = {n: (b, a) for n, b, a in zip(names, before, after) if a != b}
    assert not changed, f"reference counts changed: {changed}"


def test_results_have_no_extra_references(small):
    a = small
    grad = focal.grad(a["logits"], a["labels"])
    assert sys.getrefcount(grad) == 2
    value, grad = focal.loss_and_grad(a["logits"], a["dense"], weights=a["weights"])
    assert sys.getrefcount(grad) == 2 and sys.getrefcount(value) == 2
    grad, hess = focal.grad_hess(a["logits"], a["labels"])
    assert sys.getrefcount(grad) == 2 and sys.getrefcount(hess) == 2
    elementwise = focal.loss(a["logits"], a["labels"], reduction="none")
    assert sys.getrefcount(elementwise) == 2
    out = a["out"]
    baseline = sys.getrefcount(out)
    _, grad = focal.loss_and_grad(a["logits"], a["labels"], out=out)
    holding = sys.getrefcount(out)  # read before any assert (pytest keeps temporaries)
    same = grad is out
    del grad
    released = sys.getrefcount(out)
    assert same
    assert holding == baseline + 1
    assert released == baseline


@pytest.mark.parametrize("kind", ["success", "error"])
def test_no_memory_growth_over_many_calls(small, kind):
    """No per-call leak (of an array, an iterator or a buffer): the traced
    memory in use does not grow over 300 rounds of calls."""
    calls = _good_calls(small) if kind == "success" else _bad_calls(small)
    _run_many(calls, 5, kind == "error")
    gc.collect()
    tracemalloc.start()
    try:
        _run_many(calls, 20, kind == "error")
        gc.collect()
        start, _ = tracemalloc.get_traced_memory()
        _run_many(calls, 300, kind == "error")
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - start < 32 * 1024, f"{(end - start) / 1024:.1f} KiB more in use after 300 rounds"


# --------------------------------------------------------------------------
# (c) memory independent of the input


def test_extra_memory_does_not_grow_with_the_size():
    """A call on 2**27 elements (a zero-stride view: nothing to read) needs
    what a call on 2**20 needs, to a few KiB (a slot per chunk would be 2,048
    slots, over 200 KiB more)."""
    def extra(n):
        x = np.broadcast_to(np.float32(0.5), (n,))
        return extra_peak(lambda: focal.loss(x, np.array([1.0]), reduction="sum"))[0]

    extra(2**20)
    small, large = extra(2**20), extra(2**27)
    assert large - small < 16 * 1024, f"{(large - small) / 1024:.1f} KiB more for 128 times the size"


@pytest.mark.parametrize("dtype, gamma", [(np.float32, 2.0), (np.float64, 10.0)])
@pytest.mark.parametrize("targets", ["labels", "dense"])
def test_softmax_rows_of_millions_of_classes(targets, dtype, gamma):
    """Rows of 2**21 classes are read in pieces (5 doubles per class per thread
    were 80 MiB a thread); float64 above gamma 8 keeps two more pieces."""
    x = np.random.default_rng(5).standard_normal((4, 2**21), dtype=dtype)
    if targets == "labels":
        y = np.array([0, 2**21 - 1, 12345, 2**20])
    else:
        y = np.zeros_like(x)
        y[:, ::4096] = 1.0 / 512
    extra, value = extra_peak(lambda: focal.softmax_loss(x, y, None, gamma))
    assert np.isfinite(value)
    assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"
    extra, _ = extra_peak(lambda: focal.softmax_loss_and_grad(x, y, None, gamma, reduction="sum"))
    assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"


def test_class_indices_with_a_long_class_axis():
    """No table of the classes as long as the class axis (it was 64 MiB here)."""
    x = np.zeros((2, 2**23), np.float32)
    extra, value = extra_peak(lambda: focal.loss(x, np.array([5, 2**23])))
    assert value > 0
    assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"


def test_per_class_alpha_is_read_in_place():
    """A float32 alpha of 2**21 classes: no float64 copy, no temporaries of its
    size to validate it."""
    classes = 2**21
    x = np.zeros((2, classes), np.float32)
    alpha = np.linspace(0.0, 1.0, classes, dtype=np.float32)
    labels = np.array([3, classes - 1])
    for call in (lambda: focal.loss(x, labels, alpha),
                 lambda: focal.softmax_loss(x, labels, alpha)):
        extra, _ = extra_peak(call)
        assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"


def test_float16_weights_and_alpha_are_scanned_in_small_pieces(batch):
    """float16 weights or a float16 per-class alpha are checked for range in
    float32 pieces of 64 KiB (pieces of 2**20 elements took a 4 MiB scratch)."""
    x, labels = batch["logits"], batch["labels"]
    weights = np.ones(x.shape, np.float16)
    extra, _ = extra_peak(lambda: focal.loss_and_grad(x, labels, weights=weights))
    assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"
    classes = 2**21
    logits = np.zeros((2, classes), np.float32)
    alpha = np.full(classes, 0.25, np.float16)
    for call in (lambda: focal.loss(logits, np.array([3, classes - 1]), alpha),
                 lambda: focal.softmax_loss(logits, np.array([3, classes - 1]), alpha)):
        extra, _ = extra_peak(call)
        assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"


@pytest.mark.parametrize("form", ["scalar", "rows", "rows random", "per class", "full",
                                  "all ignored", "heavy on ignored"])
def test_the_largest_weight_that_counts_is_found_in_small_pieces(batch, form):
    """The reductions' scale comes from the largest weight of the rows not
    ignored (_args.largest_counted): its pieces' mask and copies of float64
    weights stay within the limit whatever the weights' form, ties (uniform
    weights: the first rows answer) and the slow case (only ignored rows
    hold the largest: the counted rows reduced on their own) included."""
    x, labels = batch["logits"], batch["labels"]
    rows = x.shape[:-1] + (1,)
    rng = np.random.default_rng(3)
    weights = {"scalar": 1.0, "rows": np.ones(rows), "rows random": rng.random(rows),
               "per class": np.ones(x.shape[-1]), "full": np.ones(x.shape, np.float32),
               "all ignored": np.ones(rows), "heavy on ignored": np.where(
                   (labels == -1)[..., None], 2.0, rng.random(rows))}[form]
    targets = np.full_like(labels, -1) if form == "all ignored" else labels
    extra, _ = extra_peak(lambda: focal.loss_and_grad(x, targets, weights=weights))
    assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"


@pytest.mark.parametrize("heavy", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_largest_weight_that_counts_over_long_rows(dtype, heavy):
    """Rows longer than a piece, one of them ignored, with a weight per
    element: the rows are cut in parts too (a row at a time took temporaries
    of a row's size, 19 MiB for rows of 4 million classes), also where only
    the ignored row holds the largest weight."""
    classes = 2**22
    x = np.ones((4, classes), dtype)
    weights = np.ones((4, classes), dtype)
    if heavy:
        weights[0, 5] = 1e30
    labels = np.array([-1, 0, 1, 2])
    extra, value = extra_peak(lambda: focal.loss(x, labels, weights=weights))
    assert extra < LIMIT, f"{extra / MIB:.2f} MiB extra"
    assert value == focal.loss(x[1:], labels[1:], weights=weights[1:])


@pytest.mark.parametrize("call", ["grad", "loss_and_grad", "loss-none", "star_grad",
                                  "softmax_grad"])
def test_out_over_the_logits_in_reverse_order(batch, call):
    """out=logits[::-1] on the RetinaNet batch: the logits were copied (61 MiB)."""
    x = batch["logits"].copy()
    labels = batch["labels"]
    out = x[::-1]
    classes = np.minimum(labels, C - 1)  # softmax labels: a class or ignored (-1)
    calls = {
        "grad": lambda: focal.grad(x, labels, out=out),
        "loss_and_grad": lambda: focal.loss_and_grad(x, labels, out=out),
        "loss-none": lambda: focal.loss(x, labels, reduction="none", out=out),
        "star_grad": lambda: focal.star_grad(x, labels, out=out),
        "softmax_grad": lambda: focal.softmax_grad(x, classes, out=out, ignore_index=-1),
    }
    extra, result = extra_peak(calls[call], existing=(out,))
    assert (result[1] if call == "loss_and_grad" else result) is out
    assert extra < LIMIT, f"{call} with out=logits[::-1] used {extra / MIB:.2f} MiB extra"


def _run_child(script):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                               capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.split()


def test_a_first_call_imports_nothing():
    """The first call of a process stays under the limit too: looking for masked
    arrays used to import numpy.ma (1.1 MiB traced, 1.6 MiB resident)."""
    extra, imported = _run_child("""
        import sys, tracemalloc
        import numpy as np
        import focal
        x = np.zeros((2, 100_000, 80), np.float32)
        labels = np.full((2, 100_000), 80)
        out = np.empty_like(x)
        modules = set(sys.modules)  # NumPy 1.x imports numpy.ma itself; the stdlib is not counted
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        focal.grad(x, labels, out=out)
        _, peak = tracemalloc.get_traced_memory()
        new = {m for m in set(sys.modules) - modules if m.split(".")[0] not in sys.stdlib_module_names}
        print(peak - before, ",".join(sorted(new)) or "None")
        """)
    assert imported == "None", f"the first call imported {imported}"
    assert int(extra) < LIMIT, f"{int(extra) / MIB:.2f} MiB extra on the first call"


@pytest.mark.skipif(os.environ.get("FOCAL_SANITIZERS") == "1",
                    reason="AddressSanitizer keeps freed memory resident")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_resident_memory_of_calls_on_broadcast_views():
    """The high-water mark of the resident set, around calls on zero-stride
    views (which occupy nothing): softmax rows of 2**22 classes (their scratch
    was 320 MiB on two threads), class indices with 2**24 classes (a 128 MiB
    table), per-class alpha of 2**22 values."""
    growth = _run_child("""
        import resource
        import numpy as np
        import focal
        focal.set_num_threads(2)
        def high_water():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        classes = 2**22
        rows = np.broadcast_to(np.float32(0), (4, classes))
        labels = np.array([0, 1, classes - 1, 7])
        alpha = np.broadcast_to(np.float16(0.25), (classes,))
        wide = np.broadcast_to(np.float32(0), (4, 2**24))
        focal.softmax_loss(rows[:, :10], labels % 10)  # warm up
        focal.loss(wide[:, :10], labels % 10)
        before = high_water()
        focal.softmax_loss(rows, labels)
        focal.softmax_loss(rows, labels, alpha)
        focal.loss(wide, np.array([0, 2**24, 5, 2**24 - 1]))
        print(high_water() - before)
        """)
    assert int(growth[0]) < 8 * MIB, f"the resident set grew by {int(growth[0]) / MIB:.1f} MiB"


# out= over an input shifted, transposed, or over part of the targets or
# weights: tiles computed apart and committed in a safe order (focal._overlap)

SHIFTS = {  # (the argument's offset, out's offset) in one buffer, in elements
    "out-one-row-on": (0, C),
    "out-one-element-on": (0, 1),
    "out-one-element-back": (1, 0),
}
FAMILIES = {
    "grad": lambda x, labels, dense, out: focal.grad(x, labels, out=out),
    "loss_and_grad": lambda x, labels, dense, out: focal.loss_and_grad(x, dense, out=out),
    "loss-none": lambda x, labels, dense, out: focal.loss(x, dense, reduction="none", out=out),
    "star_loss_and_grad": lambda x, labels, dense, out: focal.star_loss_and_grad(x, dense,
                                                                                 out=out),
    # (softmax labels: a class or ignored, -1)
    "softmax_grad": lambda x, labels, dense, out: focal.softmax_grad(
        x, labels, out=out, ignore_index=-1),
    "softmax_loss-none": lambda x, labels, dense, out: focal.softmax_loss(
        x, labels, reduction="none", out=out, ignore_index=-1),
}


def _same_bits(a, b):
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                          np.ascontiguousarray(b).view(np.uint8))


@pytest.mark.parametrize("shift", list(SHIFTS))
@pytest.mark.parametrize("call", list(FAMILIES))
def test_out_over_shifted_logits(batch, shift, call):
    """out= one element or one row on from the logits (16M elements): no copy
    of the logits, and the out-of-place result, bit for bit."""
    source, target = SHIFTS[shift]
    size = batch["logits"].size
    loss_rows = call.endswith("-none") and call.startswith("softmax")
    out_size = size // C if loss_rows else size
    out_shape = SHAPE[:-1] if loss_rows else SHAPE
    buffer = np.empty(size + C, np.float32)
    x = buffer[source:source + size].reshape(SHAPE)
    x[...] = batch["logits"]
    out = buffer[target:target + out_size].reshape(out_shape)
    function = FAMILIES[call]
    labels = np.minimum(batch["labels"], C - 1) if call.startswith("softmax") else batch["labels"]
    expected = function(batch["logits"], labels, batch["dense"], None)
    extra, result = extra_peak(lambda: function(x, labels, batch["dense"], out),
                               existing=(out,))
    assert extra < LIMIT, f"{call}, {shift}: {extra / MIB:.2f} MiB extra"
    if isinstance(expected, tuple):
        assert _same_bits(result[0], expected[0])
        expected = expected[1]
    assert _same_bits(out, expected)


@pytest.mark.parametrize("call", ["grad", "loss_and_grad", "star_grad"])
def test_out_over_the_logits_transposed(call):
    """out=x.T on 4096 x 4096 float32 logits with dense targets (16M elements)."""
    rng = np.random.default_rng(11)
    n = 4096
    x = rng.standard_normal((n, n), dtype=np.float32)
    y = (rng.random((n, n)) < 0.01).astype(np.float32)
    function = {"grad": focal.grad, "loss_and_grad": focal.loss_and_grad,
                "star_grad": focal.star_grad}[call]
    expected = function(x, y)
    out = x.T
    extra, result = extra_peak(lambda: function(x, y, out=out), existing=(out,))
    assert extra < LIMIT, f"{call} with out=logits.T used {extra / MIB:.2f} MiB extra"
    if isinstance(expected, tuple):
        assert _same_bits(result[0], expected[0])
        expected = expected[1]
    assert _same_bits(out, expected)


LONG_ROWS = {  # out= over the logits, (rows, classes): class-index rows longer than a tile
    "rows-reversed": ((4, 2**19), lambda x: x[::-1]),
    "classes-reversed": ((4, 2**19), lambda x: x[:, ::-1]),
    "both-reversed": ((3, 2**19 + 7), lambda x: x[::-1, ::-1]),
    "shifted": ((4, 2**19), None),
    "transposed": ((1500, 1500), lambda x: x.T),
}


@pytest.mark.parametrize("layout", list(LONG_ROWS))
@pytest.mark.parametrize("call", ["grad", "loss_and_grad", "loss-none"])
def test_out_over_the_logits_with_class_indices_and_long_rows(layout, call):
    """Class-index targets no longer keep a row whole under an overlapping
    out= (it was a copy of the logits, 8 MiB here): a block that cuts a row
    takes the row's class as its own, or the background.  Rows with their
    class inside and outside the block, background and ignored rows, and a
    per-class alpha; the out-of-place result, bit for bit."""
    rng = np.random.default_rng(29)
    shape, over = LONG_ROWS[layout]
    rows, classes = shape
    logits = rng.standard_normal(shape, dtype=np.float32) * 3
    labels = rng.integers(0, classes, rows)
    labels[0], labels[1], labels[-1] = classes, -1, classes - 1  # background, ignored
    labels = labels.astype(np.int32)
    alpha = rng.random(classes).astype(np.float32)
    function = {
        "grad": lambda x, out: focal.grad(x, labels, alpha, 1.5, out=out,
                                          reduction="sum_over_positives"),
        "loss_and_grad": lambda x, out: focal.loss_and_grad(x, labels, out=out),
        "loss-none": lambda x, out: focal.loss(x, labels, reduction="none", out=out),
    }[call]
    expected = function(logits, None)
    if over is None:  # out one element back from the logits, in one buffer
        buffer = np.empty(logits.size + 1, np.float32)
        x = buffer[1:].reshape(shape)
        x[...] = logits
        out = buffer[:-1].reshape(shape)
    else:
        x = logits.copy()
        out = over(x)
    extra, result = extra_peak(lambda: function(x, out), existing=(out,))
    assert extra < LIMIT, f"{call}, {layout}: {extra / MIB:.2f} MiB extra"
    if isinstance(expected, tuple):
        assert _same_bits(result[0], expected[0])
        expected = expected[1]
    assert _same_bits(out, expected)


PERMUTED = {  # out= over the logits with axes permuted and reversed: (shape, view)
    "square-transposed": ((1400, 1400), lambda x: x.T),
    "square-rotated": ((1400, 1400), lambda x: x.T[::-1]),
    "square-rotated-back": ((1400, 1400), lambda x: x[::-1].T),
    "square-antitransposed": ((1400, 1400), lambda x: x[::-1, ::-1].T),
    "cube-cycled": ((110, 110, 110), lambda x: x.transpose(1, 2, 0)),
    "cube-cycled-reversed": ((110, 110, 110), lambda x: np.flip(x.transpose(2, 0, 1), 0)),
    "cube-swapped-reversed": ((110, 110, 110), lambda x: np.flip(x.transpose(1, 0, 2), 2)),
}


@pytest.mark.parametrize("layout", list(PERMUTED))
@pytest.mark.parametrize("targets", ["dense", "labels"])
def test_out_over_the_logits_with_axes_permuted_and_reversed(layout, targets):
    """float64 logits whose sides are not powers of two: out= as the logits
    transposed, rotated (transposed and reversed) or with a cube's axes cycled
    and reversed.  Tiles placed symmetrically map onto tiles; a rotation's
    cycles of tiles are held whole (they copied the logits: 15 MiB, 10 MiB)."""
    rng = np.random.default_rng(41)
    shape, over = PERMUTED[layout]
    logits = rng.standard_normal(shape)
    if targets == "dense":
        t = (rng.random(shape) < 0.05).astype(np.float64)
    else:
        t = rng.integers(0, shape[-1] + 1, shape[:-1])
    expected = focal.loss_and_grad(logits, t, reduction="sum")
    x = logits.copy()
    out = over(x)
    extra, result = extra_peak(lambda: focal.loss_and_grad(x, t, reduction="sum", out=out),
                               existing=(out,))
    assert extra < LIMIT, f"{layout}, {targets}: {extra / MIB:.2f} MiB extra"
    assert _same_bits(result[0], expected[0])
    assert _same_bits(out, expected[1])


@pytest.mark.parametrize("argument", ["targets", "weights"])
def test_out_over_shifted_targets_or_weights(batch, argument):
    """out= one element on from the dense targets or the weights."""
    size = batch["logits"].size
    buffer = np.empty(size + 1, np.float32)
    shifted = buffer[:size].reshape(SHAPE)
    shifted[...] = batch["dense"] if argument == "targets" else batch["dense"] + 0.5
    out = buffer[1:].reshape(SHAPE)
    x = batch["logits"]
    if argument == "targets":
        expected = focal.loss_and_grad(x, batch["dense"])
        call = lambda: focal.loss_and_grad(x, shifted, out=out)  # noqa: E731
    else:
        expected = focal.loss_and_grad(x, batch["dense"], weights=batch["dense"] + 0.5)
        call = lambda: focal.loss_and_grad(x, batch["dense"], weights=shifted,  # noqa: E731
                                           out=out)
    extra, result = extra_peak(call, existing=(out,))
    assert extra < LIMIT, f"out over the {argument}: {extra / MIB:.2f} MiB extra"
    assert _same_bits(result[0], expected[0]) and _same_bits(out, expected[1])


FORTRAN_SHIFTED = {  # out= one element back (on) from (N, C) logits laid class by class
    "grad-dense": lambda x, labels, dense, out: focal.grad(x, dense, out=out),
    "grad-labels": lambda x, labels, dense, out: focal.grad(x, labels, out=out),
    "loss_and_grad-labels": lambda x, labels, dense, out: focal.loss_and_grad(x, labels, out=out),
    # the softmax over axis 0 of the C-order (C, N) buffer: rows of C elements N apart
    "softmax_grad-axis0": lambda x, labels, dense, out: focal.softmax_grad(
        x, np.minimum(labels, x.shape[0] - 1), axis=0, out=out),
}


@pytest.mark.parametrize("direction", ["back", "on"])
@pytest.mark.parametrize("call", list(FORTRAN_SHIFTED))
def test_out_shifted_over_fortran_order_logits(call, direction):
    """out= shifted by one element from Fortran-order logits (16M elements):
    the shift wraps around from one class to the next, so tile 0's out lands
    on the last tile's inputs (one cycle through every tile, which the
    depth-first walk could not hold: a copy, 64 MiB).  Streamed with the
    first tile held to the end; the out-of-place result, bit for bit."""
    n, c = 2**16, 256
    rng = np.random.default_rng(43)
    labels = rng.integers(0, c + 1, n)
    buffer = np.empty(n * c + 1, np.float32)
    source, target = (1, 0) if direction == "back" else (0, 1)
    x = buffer[source:source + n * c].reshape(c, n)
    x[...] = rng.standard_normal((c, n), dtype=np.float32) * 3
    out = buffer[target:target + n * c].reshape(c, n)
    if not call.startswith("softmax"):
        x, out = x.T, out.T
    dense = (rng.random(x.shape) < 0.01).astype(np.float32)
    function = FORTRAN_SHIFTED[call]
    expected = function(x.copy(), labels, dense, None)
    extra, result = extra_peak(lambda: function(x, labels, dense, out), existing=(out,))
    assert extra < LIMIT, f"{call}, one element {direction}: {extra / MIB:.2f} MiB extra"
    if isinstance(expected, tuple):
        assert _same_bits(result[0], expected[0])
        expected, result = expected[1], result[1]
    assert result is out and _same_bits(out, expected)


PLANNED = {  # out= over the logits, by the number of elements: (x, out)
    "shifted": lambda size: (lambda b: (b[1:], b[:-1]))(np.full(size + 1, 0.5, np.float32)),
    "fortran-shifted": lambda size: (lambda b: (b[1:].reshape(256, -1).T, b[:-1].reshape(256, -1).T))(
        np.full(size + 1, 0.5, np.float32)),
    "transposed": lambda size: (lambda x: (x, x.T))(
        np.full((int(size ** 0.5),) * 2, 0.5, np.float32)),
}


@pytest.mark.parametrize("layout", list(PLANNED))
def test_the_order_of_tiles_needs_no_memory_per_tile(layout):
    """The order of the tiles is generated as they are written, from their
    numbers: 16 times the tiles take the same memory (a table of every
    tile's extents, the order's events and flags were 0.24 MiB at 2**22
    elements, 17 MiB at 2**31)."""
    def extra(size):
        x, out = PLANNED[layout](size)
        y = np.broadcast_to(np.float32(0), x.shape)
        expected = focal.grad(x.copy(), y)
        used, result = extra_peak(lambda: focal.grad(x, y, out=out), existing=(out,))
        assert result is out and _same_bits(out, expected)
        return used

    extra(2**22)
    small, large = extra(2**22), extra(2**26)
    assert large < LIMIT, f"{large / MIB:.2f} MiB extra"
    # (the tables held 16 int64 a tile: 512 KiB more here; what remains
    # varies by tens of KiB from run to run, not with the size: a bound of
    # 160 KiB sees the tables and leaves that noise room)
    assert large - small < 160 * 1024, f"{(large - small) / 1024:.1f} KiB more for 16 times the tiles"


@pytest.mark.skipif(os.environ.get("FOCAL_SANITIZERS") == "1",
                    reason="AddressSanitizer keeps freed memory resident")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_resident_memory_of_out_shifted_over_large_logits():
    """The high-water mark of the resident set around out= one element back
    from 2**26 float32 logits, contiguous and Fortran-order (256 MiB: a copy,
    or the order's tables, would show)."""
    growth = _run_child("""
        import resource
        import numpy as np
        import focal
        def high_water():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        n = 2**26
        buffer = np.full(n + 1, 0.5, np.float32)
        zeros = np.broadcast_to(np.float32(0), (n // 256, 256))
        focal.grad(buffer[1:1001], zeros.reshape(-1)[:1000], out=buffer[:1000])  # warm up
        before = high_water()
        focal.grad(buffer[1:], zeros.reshape(-1), out=buffer[:-1])
        focal.grad(buffer[1:].reshape(256, -1).T, zeros, out=buffer[:-1].reshape(256, -1).T)
        print(high_water() - before)
        """)
    assert int(growth[0]) < 8 * MIB, f"the resident set grew by {int(growth[0]) / MIB:.1f} MiB"


def _reversed_shifted(shape, shift, axes):
    """(logits, out) over one buffer: out `shift` elements from the logits
    (back when negative), with `axes` reversed."""
    size = math.prod(shape)
    buffer = np.full(size + abs(shift), 0.5, np.float32)
    buffer[::7] = -1.5  # (not one value: a wrong order would show in the bits)
    x = buffer[max(shift, 0):max(shift, 0) + size].reshape(shape)
    out = buffer[max(-shift, 0):max(-shift, 0) + size].reshape(shape)
    return x, out[tuple(slice(None, None, -1) if d in axes else slice(None)
                        for d in range(len(shape)))]


REVERSED_SHIFTED = {  # by the number of elements: (logits, out, targets)
    "1-D, one element back": lambda size: _reversed_shifted((size,), -1, (0,)) + (
        np.zeros(size, np.float32),),
    "rows reversed, one row back, class indices": lambda size: _reversed_shifted(
        (size // C, C), -C, (0,)) + (np.arange(size // C) % C,),
    "both axes reversed, one element on": lambda size: _reversed_shifted(
        (size // C, C), 1, (0, 1)) + (np.broadcast_to(np.float32(0), (size // C, C)),),
}
REVERSED_SHIFTED_CALLS = {
    "grad": lambda x, t, out: focal.grad(x, t, out=out),
    "loss-none": lambda x, t, out: focal.loss(x, t, reduction="none", out=out),
    "star_grad": lambda x, t, out: focal.star_grad(x, t, out=out),
    "softmax_grad": lambda x, t, out: focal.softmax_grad(x, t, out=out),
}


@pytest.mark.parametrize("layout", list(REVERSED_SHIFTED))
@pytest.mark.parametrize("call", list(REVERSED_SHIFTED_CALLS))
def test_out_reversed_and_shifted_over_the_logits(layout, call):
    """out= the logits shifted and reversed (out=b[:-1][::-1] over b[1:]):
    tiles from both ends towards the middle, 3 pending; it was a copy of
    the logits (16 MiB at 2**22 float32 elements).  2**20 and 2**23
    elements take the same memory; the out-of-place result, bit for bit."""
    if call == "softmax_grad" and layout.startswith("1-D"):
        pytest.skip("the softmax needs a class axis")

    def extra(size):
        x, out, t = REVERSED_SHIFTED[layout](size)
        function = REVERSED_SHIFTED_CALLS[call]
        expected = function(x.copy(), t, None)
        used, result = extra_peak(lambda: function(x, t, out), existing=(out,))
        assert result is out and _same_bits(out, expected), f"{call}, {layout}, {size}"
        return used

    small, large = extra(2**20), extra(2**23)
    assert large < LIMIT, f"{call}, {layout}: {large / MIB:.2f} MiB extra"
    assert large - small < 160 * 1024, f"{(large - small) / 1024:.1f} KiB more for 8 times the size"

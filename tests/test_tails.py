"""SIMD tails and buffer ends: every length, every instruction set, no overread.

The elementwise kernels work on blocks of FOCAL_BLOCK = 256 elements that the
compiler vectorises (up to 8 doubles a vector with AVX-512), and the glue
reads the caller's arrays in strided runs; the softmax reads whole rows along
any stride.  The classic bugs there are in the tails: the last, partial vector
or block, a run that is one element too long, a store past the end of `out`.
So, for every public elementwise and softmax function:

(a) every length 0..70 and a few past the block, buffer and lane boundaries,
    at every instruction set the CPU runs (focal._core.set_simd_level), gives
    values that match a plain float64 NumPy reference, and results that are
    bitwise identical across instruction sets (the design promises it:
    -ffp-contract=off, the same operations at every level);
(b) an element's values do not depend on the length of the array it is in or
    on its position in a block: every prefix of a long array gives bitwise the
    prefix of the long array's elementwise results;
(c) arrays placed against a PROT_NONE guard page, at the very end of their
    memory (and, for reversed strides, at its very start), logits, targets,
    weights and out= alike, in several dtypes and layouts, are read and
    written without touching the guard: an overread or overwrite segfaults.
    That runs in a subprocess so a fault fails one test, not the session.
    Under .ci/sanitizers.sh (ASan) the ordinary arrays of (a) and (b), which
    end exactly at the end of their allocation, are checked too.
"""
from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import focal
from focal import _core
from reference import focal_reference, softmax_reference, softmax_tolerance, star_reference, tolerance

LEVELS = tuple(_core.supported_simd_levels())
# 0..70 (AVX-512 holds 8 doubles, the lanes of the sums are 8) and the edges
# of the 256-element blocks and of NumPy's 8192-element iterator buffer
LENGTHS = tuple(range(71)) + (127, 128, 129, 255, 256, 257, 511, 512, 513, 767, 769)
LONG_LENGTHS = (8191, 8192, 8193)

ELEMENTWISE = ("loss", "grad", "loss_and_grad", "grad_hess",
               "star_loss", "star_grad", "star_loss_and_grad")
SOFTMAX = ("softmax_loss", "softmax_grad", "softmax_loss_and_grad")


@contextlib.contextmanager
def simd_level(name):
    previous = _core.simd_level()
    _core.set_simd_level(name)
    try:
        yield
    finally:
        _core.set_simd_level(previous)


def test_levels_are_known_and_restorable():
    assert LEVELS[0] == "baseline"
    assert set(LEVELS) <= {"baseline", "avx2", "avx512"}
    best = _core.simd_level()
    for level in LEVELS:
        with simd_level(level):
            assert _core.simd_level() == level
    assert _core.simd_level() == best


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def same_bits(a, b):
    """Bitwise equality of two results (arrays or NumPy scalars), NaN payloads too."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def results_per_level(call):
    """{level: tuple of results} of call() at every instruction set."""
    out = {}
    for level in LEVELS:
        with simd_level(level):
            out[level] = tuple(np.copy(r) for r in as_tuple(call()))
    return out


def assert_levels_agree(per_level, what):
    base = per_level[LEVELS[0]]
    for level in LEVELS[1:]:
        for k, (a, b) in enumerate(zip(base, per_level[level])):
            if not same_bits(a, b):
                a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
                with np.errstate(invalid="ignore"):
                    where = np.flatnonzero(~((a64 == b64) | (np.isnan(a64) & np.isnan(b64))).reshape(-1))
                pytest.fail(f"{what}: result {k} differs between {LEVELS[0]} and {level} "
                            f"at flat indices {where[:10]} ({a64.reshape(-1)[where[:3]]} vs "
                            f"{b64.reshape(-1)[where[:3]]})")


def assert_close(actual, expected, dtype, scale=0.0, what=""):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    error = np.abs(actual - expected)
    allowed = tolerance(dtype, expected, scale)
    bad = ~(error <= allowed)
    if np.any(bad):
        i = np.flatnonzero(bad.reshape(-1))
        pytest.fail(f"{what}: {i.size} elements off, first at flat indices {i[:8]}: "
                    f"got {actual.reshape(-1)[i[:3]]}, expected {expected.reshape(-1)[i[:3]]}")


# --------------------------------------------------------------------------
# inputs


def logits_for(rng, shape, dtype):
    """Moderate logits (|x| <= 30, so the reference is good), exact in dtype."""
    x = np.clip(rng.normal(0.0, 6.0, size=shape), -30.0, 30.0)
    flat = x.reshape(-1)
    specials = [0.0, 30.0, -30.0, 1e-3, -17.5, 2.5, -0.0]
    flat[-min(flat.size, len(specials)):] = specials[:min(flat.size, len(specials))]
    return x.astype(dtype)


SIGMOID_CASES = {
    # name: (targets kind, alpha, gamma, weights?, reduction)
    "hard-gamma2": ("hard", 0.25, 2.0, False, "mean"),
    "soft-gamma0.5-weights": ("soft", None, 0.5, True, "sum"),
    "labels-gamma3.3-per-class": ("labels", "per-class", 3.3, False, "sum_over_positives"),
    "labels-gamma0-weights": ("labels", 0.75, 0.0, True, "mean"),
    # gamma 1 to 4 have kernels of their own (products instead of exp and log)
    "soft-gamma1": ("soft", 0.25, 1.0, False, "sum"),
    "soft-gamma2-weights": ("soft", 0.25, 2.0, True, "mean"),
    "hard-gamma3-weights": ("hard", None, 3.0, True, "sum_over_positives"),
    "labels-gamma4": ("labels", 0.5, 4.0, False, "mean"),
    "soft-gamma4-per-class": ("soft", "per-class", 4.0, False, "sum"),
}


def sigmoid_inputs(rng, n, dtype, case):
    kind, alpha, gamma, with_weights, reduction = SIGMOID_CASES[case]
    if kind == "labels":
        # n rows of 3 classes: labels, background (3) and ignored (-1) rows
        x = logits_for(rng, (n, 3), dtype)
        t = rng.integers(-1, 4, size=n)
    else:
        x = logits_for(rng, (n,), dtype)
        t = rng.integers(0, 2, size=n).astype(dtype)
        if kind == "soft":
            t = np.where(rng.random(n) < 0.5, rng.random(n), t).astype(dtype)
    if alpha == "per-class":
        alpha = np.linspace(0.1, 0.9, x.shape[-1])
    w = rng.random(x.shape) * 2.0 if with_weights else None
    return x, t, dict(alpha=alpha, gamma=gamma, weights=w, reduction=reduction)


def call_sigmoid(name, x, t, kw):
    alpha, gamma, w, reduction = kw["alpha"], kw["gamma"], kw["weights"], kw["reduction"]
    if name.startswith("star"):
        star_gamma = gamma if gamma > 0 else 4.0
        return getattr(focal, name)(x, t, alpha, star_gamma, 0.5, reduction=reduction, weights=w)
    if name == "grad_hess":
        return focal.grad_hess(x, t, alpha, gamma, weights=w)
    return getattr(focal, name)(x, t, alpha, gamma, reduction=reduction, weights=w)


# --------------------------------------------------------------------------
# (a) every length, every level, against the reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(SIGMOID_CASES))
def test_sigmoid_every_length_every_level(case, dtype):
    rng = np.random.default_rng(5)
    for n in LENGTHS:
        x, t, kw = sigmoid_inputs(rng, n, dtype, case)
        ref = focal_reference(x, t, kw["alpha"], kw["gamma"], reduction=kw["reduction"],
                              weights=kw["weights"])
        ref_none = focal_reference(x, t, kw["alpha"], kw["gamma"], reduction="none",
                                   weights=kw["weights"])
        what = f"{case} {np.dtype(dtype)} n={n}"
        for name in ("loss", "grad", "loss_and_grad", "grad_hess"):
            per_level = results_per_level(lambda: call_sigmoid(name, x, t, kw))
            assert_levels_agree(per_level, f"{name} {what}")
            result = per_level[LEVELS[0]]
            if name == "grad_hess":
                assert_close(result[0], ref_none.elementwise_grad, dtype,
                             ref_none.elementwise_grad_scale, f"grad_hess grad {what}")
                assert_close(result[1], ref_none.hess, dtype, ref_none.hess_scale,
                             f"grad_hess hess {what}")
                continue
            if name in ("loss", "loss_and_grad"):
                loss = result[0]
                assert loss.dtype == np.dtype(dtype) and loss.shape == ()
                if kw["reduction"] == "mean" and ref.denominator == 0:
                    assert np.isnan(loss), what
                else:
                    scale = float(np.sum(np.abs(ref_none.loss))) / max(ref.denominator, 1e-300)
                    assert_close(loss, ref.loss, dtype, scale, f"{name} loss {what}")
            if name in ("grad", "loss_and_grad"):
                assert_close(result[-1], ref.grad, dtype, ref.grad_scale, f"{name} grad {what}")
        # per-element loss, and out= of exactly the logits' size
        out = np.full(x.shape, np.nan, dtype)
        per_level = results_per_level(lambda: focal.loss(x, t, kw["alpha"], kw["gamma"],
                                                         reduction="none", weights=kw["weights"],
                                                         out=out))
        assert_levels_agree(per_level, f"loss none {what}")
        assert_close(out, ref_none.loss, dtype, 0.0, f"loss none {what}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["hard-gamma2", "labels-gamma3.3-per-class"])
def test_star_every_length_every_level(case, dtype):
    rng = np.random.default_rng(6)
    for n in LENGTHS:
        x, t, kw = sigmoid_inputs(rng, n, dtype, case)
        kw["reduction"] = "sum"
        ref = star_reference(x, t, kw["alpha"], kw["gamma"], 0.5, reduction="none", weights=kw["weights"])
        loss_ref, grad_ref = ref.loss, ref.grad
        what = f"{case} {np.dtype(dtype)} n={n}"
        for name in ("star_loss", "star_grad", "star_loss_and_grad"):
            per_level = results_per_level(lambda: call_sigmoid(name, x, t, kw))
            assert_levels_agree(per_level, f"{name} {what}")
            result = per_level[LEVELS[0]]
            if name != "star_grad":
                assert_close(result[0], loss_ref.sum(), dtype, float(np.abs(loss_ref).sum()),
                             f"{name} loss {what}")
            if name != "star_loss":
                assert_close(result[-1], grad_ref, dtype, 0.0, f"{name} grad {what}")
        out = np.full(x.shape, np.nan, dtype)
        per_level = results_per_level(lambda: focal.star_loss(
            x, t, kw["alpha"], kw["gamma"], 0.5, reduction="none", out=out))
        assert_levels_agree(per_level, f"star_loss none {what}")
        assert_close(out, loss_ref, dtype, 0.0, f"star_loss none {what}")


def assert_softmax_close(actual, expected, dtype, scale, what):
    actual = np.asarray(actual, np.float64)
    error = np.abs(actual - expected)
    bad = ~(error <= softmax_tolerance(dtype, expected, scale))
    if np.any(bad):
        i = np.flatnonzero(bad.reshape(-1))
        pytest.fail(f"{what}: {i.size} elements off, first at {i[:8]}: got "
                    f"{actual.reshape(-1)[i[:3]]}, expected {np.reshape(expected, -1)[i[:3]]}")


SOFTMAX_CASES = {
    # name: (shape of n, labels?, alpha, gamma, weights?)
    "classes-labels": (lambda n: (3, n), True, None, 2.0, False),
    "classes-dense": (lambda n: (2, n), False, "per-class", 0.5, True),
    "rows-labels": (lambda n: (n, 5), True, 0.25, 3.3, True),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(SOFTMAX_CASES))
def test_softmax_every_length_every_level(case, dtype):
    rng = np.random.default_rng(7)
    shape_of, with_labels, alpha, gamma, with_weights = SOFTMAX_CASES[case]
    for n in LENGTHS:
        shape = shape_of(n)
        if shape[-1] == 0:
            continue  # no class: refused (tests/test_softmax.py)
        x = logits_for(rng, shape, dtype) / 3.0
        x = x.astype(dtype)
        c = shape[-1]
        if with_labels:
            t = rng.integers(0, c, size=shape[:-1])
            t.reshape(-1)[::4] = -100
        else:
            t = rng.dirichlet(np.ones(c), size=shape[:-1]).astype(dtype)
        a = np.linspace(0.2, 1.0, c) if alpha == "per-class" else alpha
        w = rng.random(shape[:-1]) if with_weights else None
        ref = softmax_reference(x, t, a, gamma, reduction="none", weights=w)
        loss_ref, grad_ref, scale = ref.loss, ref.grad, ref.grad_scale
        what = f"{case} {np.dtype(dtype)} n={n}"
        for name in SOFTMAX:
            per_level = results_per_level(lambda: getattr(focal, name)(
                x, t, a, gamma, reduction="sum", weights=w))
            assert_levels_agree(per_level, f"{name} {what}")
            result = per_level[LEVELS[0]]
            if name != "softmax_grad":
                assert_softmax_close(result[0], loss_ref.sum(), dtype, np.abs(loss_ref).sum(),
                                     f"{name} loss {what}")
            if name != "softmax_loss":
                assert result[-1].shape == x.shape
                assert_softmax_close(result[-1], grad_ref, dtype, scale, f"{name} grad {what}")
        out = np.full(shape[:-1], np.nan, dtype)
        focal.softmax_loss(x, t, a, gamma, reduction="none", weights=w, out=out)
        assert_softmax_close(out, loss_ref, dtype, 0.0, f"softmax_loss none {what}")
        # the class axis first: rows read along a stride of n * itemsize
        moved = np.ascontiguousarray(np.moveaxis(x, -1, 0))
        g = focal.softmax_grad(moved, t if with_labels else np.moveaxis(t, -1, 0), a, gamma,
                               axis=0, reduction="sum", weights=w)
        assert_softmax_close(np.moveaxis(g, 0, -1), grad_ref, dtype, scale,
                             f"softmax_grad axis=0 {what}")


# --------------------------------------------------------------------------
# (b) an element's values do not depend on the array's length


def elementwise_results(x, soft, hard, w, level):
    with simd_level(level):
        loss = focal.loss(x, soft, None, 0.7, reduction="none", weights=w)
        grad, hess = focal.grad_hess(x, soft, None, 0.7, weights=w)
        grad2, hess2 = focal.grad_hess(x, hard, 0.25, 2.0)
        per_gamma = [focal.grad_hess(x, soft, 0.25, gamma, weights=w) for gamma in (1.0, 3.0, 4.0)]
        loss3 = focal.loss(x, hard, None, 3.0, reduction="none")
        star = focal.star_loss(x, hard, 0.25, 2.0, 1.0, reduction="none", weights=w)
        star_grad = focal.star_grad(x, hard, 0.25, 2.0, 1.0, reduction="none", weights=w)
    return (loss, grad, hess, grad2, hess2, star, star_grad, loss3,
            *[array for pair in per_gamma for array in pair])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prefixes_give_the_prefix_of_the_results(dtype):
    """Extreme logits too (+-inf, NaN, huge, subnormal), which take the scalar
    path inside a block: wherever they sit, the other elements are unchanged."""
    rng = np.random.default_rng(8)
    size = max(LONG_LENGTHS)
    x = rng.normal(0.0, 8.0, size)
    specials = np.array([np.inf, -np.inf, np.nan, 1e4, -1e4, 5e-324, -0.0, 700.0, -745.0, 3e38])
    x[rng.choice(size, 400, replace=False)] = rng.choice(specials, 400)
    x = x.astype(dtype)
    hard = rng.integers(0, 2, size).astype(dtype)
    soft = hard.copy()
    soft[::3] = rng.random(soft[::3].size)  # blocks of soft and of hard targets
    w = rng.random(size)
    for level in LEVELS:
        full = elementwise_results(x, soft, hard, w, level)
        for n in LENGTHS + LONG_LENGTHS:
            for start in (0, 1, 7):
                if start > n:
                    continue
                part = elementwise_results(x[start:n], soft[start:n], hard[start:n], w[start:n],
                                           level)
                for k, (a, b) in enumerate(zip(full, part)):
                    if not same_bits(a[start:n], b):
                        pytest.fail(f"{level} result {k} of x[{start}:{n}] differs from the "
                                    f"long array's")


# --------------------------------------------------------------------------
# (c) guard pages: arrays at the very end (and start) of their memory


PROT_NONE = 0
PROT_READ_WRITE = 3


class Guarded:
    """`nbytes` of memory between two PROT_NONE pages (Linux, via mmap + mprotect).

    end(dtype, shape) gives an array whose last byte is the last byte before
    the upper guard; start(...) one that begins right after the lower guard.
    """

    def __init__(self, nbytes):
        page = mmap.PAGESIZE
        self.usable = max(page, -(-nbytes // page) * page)
        self.map = mmap.mmap(-1, self.usable + 2 * page)
        self._anchor = ctypes.c_char.from_buffer(self.map)  # keeps the address valid
        base = ctypes.addressof(self._anchor)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for address in (base, base + page + self.usable):
            if libc.mprotect(address, page, PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "mprotect")
        self.page = page

    def end(self, dtype, shape, strides=None, fill=None):
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        if strides is None:
            extent = count * dtype.itemsize
        else:
            extent = dtype.itemsize + sum((n - 1) * abs(s) for n, s in zip(shape, strides)) if count else 0
        offset = self.page + self.usable - extent
        return self._view(dtype, shape, strides, offset, fill)

    def start(self, dtype, shape, strides=None, fill=None):
        return self._view(np.dtype(dtype), shape, strides, self.page, fill)

    def _view(self, dtype, shape, strides, offset, fill):
        count = int(np.prod(shape))
        if count == 0:
            # an empty array still has a pointer: put it at the guard itself
            offset = self.page + self.usable
            return np.ndarray(shape, dtype, buffer=self.map, offset=min(offset, len(self.map)))
        if strides is not None and any(s < 0 for s in strides):
            # negative strides: the first element is the highest address
            offset += sum((n - 1) * -s for n, s in zip(shape, strides) if s < 0)
        array = np.ndarray(shape, dtype, buffer=self.map, offset=offset, strides=strides)
        if fill is not None:
            array[...] = fill
        return array


GUARDED_SCRIPT = r"""
import sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
sys.path.insert(0, {tests!r})
import test_tails
test_tails.guarded_checks({family!r})
print("guarded checks passed")
"""


def placements(guard, dtype, shape, values):
    """The same logical values in several placements against a guard page."""
    dtype = np.dtype(dtype)
    item = dtype.itemsize
    yield "end", guard.end(dtype, shape, fill=values)
    yield "start", guard.start(dtype, shape, fill=values)
    if len(shape) >= 1 and shape[-1] > 0:
        # reversed last axis: the lowest address is the last element
        strides = tuple(int(s) for s in np.empty(shape, dtype).strides[:-1]) + (-item,)
        a = guard.start(dtype, shape, strides=strides)
        a[...] = values
        yield "reversed-at-start", a
        b = guard.end(dtype, shape, strides=strides)
        b[...] = values
        yield "reversed-at-end", b
        # misaligned: an odd stride (the iterator buffers, the softmax loader memcpys)
        odd = tuple(int(s) for s in (np.empty(shape, dtype).strides[:-1])) + (item + 1,)
        odd = tuple((s // item) * (item + 1) if k < len(shape) - 1 else s
                    for k, s in enumerate(odd))
        c = guard.end(dtype, shape, strides=odd)
        c[...] = values
        yield "odd-stride-at-end", c


def guarded_checks(family):
    """Every function over guarded arrays, compared with ordinary arrays (run in a subprocess)."""
    rng = np.random.default_rng(9)
    guard_x, guard_t, guard_w, guard_o = (Guarded(1 << 16) for _ in range(4))
    lengths = tuple(range(71)) + (255, 256, 257)
    # The gathers and scatters over the caller's arrays are compiled per
    # instruction set too: every placement at every level.  Byte-swapped and
    # float16 logits reach those loops through NumPy's aligned buffers (the
    # softmax reads them in place, with loaders that are the same at every
    # level), so they are tried at the best level only.
    for level in LEVELS[::-1]:
        _core.set_simd_level(level)
        every = level == LEVELS[-1]
        for n in lengths:
            for dtype in ((np.float64, np.float32, ">f8", np.float16) if every
                          else (np.float64, np.float32)):
                result_dtype = np.float64 if np.dtype(dtype).itemsize == 8 else np.float32
                if family == "sigmoid":
                    shape = (n,)
                    x = logits_for(rng, shape, np.float64)
                    t = rng.integers(0, 2, n).astype(np.float64)
                    t[::3] = rng.random(t[::3].size)
                    w = rng.random(shape)
                    calls = {
                        "loss": lambda x, t, w, out: focal.loss(
                            x, t, None, 0.5, reduction="none", weights=w, out=out),
                        "grad": lambda x, t, w, out: focal.grad(
                            x, t, 0.25, 2.0, reduction="mean", weights=w, out=out),
                        "loss_and_grad": lambda x, t, w, out: focal.loss_and_grad(
                            x, t, 0.25, 3.0, reduction="sum_over_positives", weights=w, out=out),
                        "grad_hess": lambda x, t, w, out: focal.grad_hess(x, t, 0.5, 4.0, weights=w),
                        "grad_gamma1": lambda x, t, w, out: focal.grad(
                            x, t, None, 1.0, reduction="none", weights=w, out=out),
                        "star_loss": lambda x, t, w, out: focal.star_loss(
                            x, np.round(t), reduction="none", weights=w, out=out),
                        "star_grad": lambda x, t, w, out: focal.star_grad(
                            x, np.round(t), weights=w, out=out),
                        "star_loss_and_grad": lambda x, t, w, out: focal.star_loss_and_grad(
                            x, np.round(t), reduction="sum", weights=w, out=out),
                    }
                    out_shape = shape
                elif family == "labels":
                    shape = (n, 3)
                    x = logits_for(rng, shape, np.float64)
                    # class indices of several widths and byte orders
                    t = rng.integers(-1, 4, n).astype((np.int64, np.int8, ">i4", np.int16)[n % 4])
                    w = rng.random(shape)
                    calls = {
                        "loss": lambda x, t, w, out: focal.loss(
                            x, t, reduction="none", weights=w, out=out),
                        "loss_and_grad": lambda x, t, w, out: focal.loss_and_grad(
                            x, t, [0.2, 0.5, 0.8], 0.5, weights=w, out=out),
                        "grad_hess": lambda x, t, w, out: focal.grad_hess(x, t, weights=w),
                        "star_grad": lambda x, t, w, out: focal.star_grad(x, t, weights=w, out=out),
                    }
                    out_shape = shape
                else:
                    if n == 0:
                        continue
                    shape = (2, n)
                    x = logits_for(rng, shape, np.float64) / 3
                    t = rng.integers(0, n, 2).astype((np.int64, np.uint16, ">i4", np.int16)[n % 4])
                    w = rng.random(2)
                    calls = {
                        "softmax_loss": lambda x, t, w, out: focal.softmax_loss(
                            x, t, reduction="none", weights=w, out=out),
                        "softmax_grad": lambda x, t, w, out: focal.softmax_grad(
                            x, t, weights=w, out=out),
                        "softmax_loss_and_grad": lambda x, t, w, out: focal.softmax_loss_and_grad(
                            x, t, 0.25, 0.5, reduction="sum", weights=w, out=out),
                        "softmax_dense": lambda x, t, w, out: focal.softmax_loss_and_grad(
                            x, np.eye(n)[t], weights=w, out=out),
                    }
                    out_shape = shape
                x = x.astype(dtype)
                for name, call in calls.items():
                    out_is_rows = name == "softmax_loss"
                    expected = as_tuple(call(x.copy(), t.copy(), w.copy(), None))
                    for where, gx in placements(guard_x, dtype, shape, x):
                        gt = guard_t.end(t.dtype, t.shape, fill=t)
                        gw = guard_w.end(w.dtype, w.shape, fill=w)
                        oshape = shape[:-1] if out_is_rows else out_shape
                        go = guard_o.end(result_dtype, oshape, fill=np.nan)
                        got = as_tuple(call(gx, gt, gw, go))
                        for k, (a, b) in enumerate(zip(expected, got)):
                            if not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True):
                                raise AssertionError(
                                    f"{family} {name} {level} {np.dtype(dtype)} n={n} {where}: "
                                    f"result {k} differs from the ordinary array's")
                    # a guarded out= (with a guarded, reversed one for the elementwise family)
                    if family != "softmax":
                        go = guard_o.start(result_dtype, out_shape,
                                           strides=(-np.dtype(result_dtype).itemsize,)
                                           if len(out_shape) == 1 and n else None)
                        got = as_tuple(call(x, t, w, go))
                        if name in ("loss", "star_loss", "grad", "star_grad", "grad_gamma1"):
                            if not np.array_equal(go, expected[0], equal_nan=True):
                                raise AssertionError(f"{family} {name} {level} n={n}: reversed out=")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mmap + mprotect guard pages")
@pytest.mark.parametrize("family", ["sigmoid", "labels", "softmax"])
def test_guard_pages_never_touched(family):
    tests = os.path.dirname(os.path.abspath(__file__))
    script = GUARDED_SCRIPT.format(tests=tests, family=family)
    completed = subprocess.run([sys.executable, "-c", script], cwd=tests, capture_output=True,
                               text=True, timeout=1800)
    if completed.returncode != 0:
        pytest.fail(f"the guarded run of {family} failed with status {completed.returncode} "
                    f"(a negative status is a signal: -11 is an access to a guard page)\n"
                    f"{completed.stdout[-4000:]}\n{completed.stderr[-8000:]}")
    assert "guarded checks passed" in completed.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mmap + mprotect guard pages")
def _reports_not_to_files():
    """This process's environment, but for the sanitizers' log_path: a
    subprocess's report of a fault that is meant goes to its stderr, not to
    .ci/sanitizers.sh's report folder, which fails the run.  Both variables:
    with clang's runtime (ASan and UBSan in one), either one's log_path counts."""
    env = dict(os.environ)
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        env[name] = ":".join(option for option in env.get(name, "").split(":")
                             if option and not option.startswith("log_path="))
    return env


def test_guard_pages_do_fault():
    """Self-check of the method: reading one element past the end faults."""
    script = textwrap.dedent(f"""
        import sys
        sys.path[:] = [p for p in sys.path if p not in ("", ".")]
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        import numpy as np
        import test_tails
        guard = test_tails.Guarded(4096)
        a = guard.end(np.float64, (4,), fill=1.0)
        print(float(a.sum()), flush=True)
        beyond = np.ndarray((5,), np.float64, buffer=guard.map, offset=a.__array_interface__["data"][0]
                            - test_tails.ctypes.addressof(guard._anchor))
        print(float(beyond.sum()), flush=True)
    """)
    # the fault is meant: keep ASan's report of it (under .ci/sanitizers.sh)
    # out of the report folder, which fails the run
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=600, env=_reports_not_to_files())
    assert completed.stdout.splitlines()[:1] == ["4.0"], completed.stderr[-4000:]
    assert completed.returncode != 0


# --------------------------------------------------------------------------
# regressions: crashes found while hardening


def _run_isolated(script):
    """Runs `script` in a fresh Python (a crash there fails only the test).

    A crash is expected here until the bug is fixed: the sanitizers' report of
    it is kept out of the report folder (_reports_not_to_files).
    """
    tests = os.path.dirname(os.path.abspath(__file__))
    prelude = "import sys\nsys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], cwd=tests,
                          capture_output=True, text=True, timeout=600, env=_reports_not_to_files())


def test_internal_softmax_refuses_grad_out_of_another_ndim():
    completed = _run_isolated("""
        import numpy as np
        from focal import _core
        x, t = np.zeros((2, 2, 3)), np.zeros((2, 2), np.intp)
        for grad_out in (np.zeros(()), np.zeros(3), np.zeros((2, 3))):
            try:
                _core.softmax_focal(x, t, labels=True, grad_out=grad_out, double_precision=True)
            except ValueError:
                pass
            else:
                raise SystemExit("accepted a grad_out of shape %s" % (grad_out.shape,))
        print("refused")
    """)
    assert completed.returncode == 0 and "refused" in completed.stdout, (
        f"status {completed.returncode}\n{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}")


def test_star_loss_overflowing_gives_inf():
    x = np.array([0.1, -0.2, 3.0])
    y = np.array([1.0, 0.0, 1.0])
    for gamma, beta in ((1e-306, -1e4), (2.66e-310, 1.0)):
        loss = focal.star_loss(x, y, None, gamma, beta, reduction="none")
        assert np.all(loss == np.inf), (gamma, beta, loss)
        assert focal.star_loss(x, y, None, gamma, beta, reduction="sum") == np.inf
        # float32 results (plain double inside) are already right
        assert np.all(focal.star_loss(x.astype(np.float32), y, None, gamma, beta,
                                      reduction="none") == np.inf)


def test_float32_mean_gradient_of_tiny_weights():
    x = np.array([[0.5, -1.7, 2.0], [3.0, -0.2, 0.1]])
    y = np.array([[1, 0, 0], [0, 0, 1]])
    for weight in (1e-310, 5e-324):
        w = np.full(x.shape, weight)
        for function in (focal.grad, focal.star_grad):
            expected = function(x, y, weights=w)  # float64: right
            assert np.all(np.isfinite(expected))
            got = function(x.astype(np.float32), y, weights=w)
            assert np.all(np.isfinite(got)), (function.__name__, weight, got)
            if weight > 1e-315:  # w * grad keeps enough bits to compare
                assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)

"""Coverage-guided fuzzing of focal's public functions (atheris / libFuzzer).

The fuzzer's bytes choose a function, shapes, strides, offsets, dtypes, byte
orders, target forms and values, label values, alpha, gamma, beta, weights,
reductions, ignore_index, axis, out= (fresh, wrong, or aliasing an input),
the number of threads and the instruction set.  What counts as a finding (an
uncaught exception, which atheris reports as a crash, saving the input):

- a crash or a sanitizer report in the C core (ASan, with the extension built
  by .ci/fuzz.sh);
- any exception but TypeError or ValueError (bad input is expected to raise
  those); MemoryError included: every input here is small;
- invalid values (a NaN or out-of-range target, a negative weight, a label
  outside [0, C] other than ignore_index) accepted without an error;
- a result of the wrong type, dtype or shape; out= not returned or not filled;
- an input modified when out= does not alias it;
- NaN in a result although every input is finite and valid (sane magnitudes);
- results that differ from a plain NumPy float64 reference beyond tolerance
  (moderate logits, where the reference itself is accurate);
- a call whose out= aliases an argument (logits, targets, weights, or a
  per-class alpha that is a view into out) giving other bits than the same
  call on copies of its arguments;
- NaN from finite arguments at any scale the checks accept (weights from
  5e-324 to 1.7e308, gamma up to 1e300);
- a reduced loss over heavy weights (2^63 to 2^1022) on elements whose loss
  is 0 that is not the light elements' own sum, out of place or in place;
- a weighted mean or sum whose heaviest weights lie on rows ignore_index
  leaves out that is not the counted rows' own (their unweighted mean, or
  their sum times their common weight);
- a call over a huge broadcast shape (more elements than memory, or counts
  near 2**63) that neither gives an error nor stops at the deadline a signal
  handler sets (a long call must notice a pending signal).

Run by .ci/fuzz.sh; without atheris, `python fuzz/fuzz_focal.py --replay
FILE_OR_DIR...` runs saved inputs through the same checks (any Python with
focal installed), which is how a crash is reproduced.
"""
from __future__ import annotations

import functools
import math
import operator
import os
import signal
import struct
import sys
import threading
from typing import NamedTuple

import numpy as np

focal = None  # imported in main(), under atheris' instrumentation when fuzzing
_core = None

MAX_ELEMENTS = 4096
last_success = None  # (function, labels, reduction, out kind, dtype) of the last call that passed
LARGE_ELEMENTS = 140_000  # rare: more than two 65536-element chunks, so threads run


class Finding(AssertionError):
    """A bug found by the harness (raised out of TestOneInput)."""


# --------------------------------------------------------------------------
# the fuzzer's bytes


class Source:
    """Consumes the fuzzer's bytes; past their end every value is 0."""

    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def take(self, n: int) -> bytes:
        chunk = self.data[self.position:self.position + n]
        self.position += n
        return chunk + bytes(n - len(chunk))

    def int(self, n: int) -> int:
        """An integer in [0, n)."""
        if n <= 1:
            return 0
        width = 1 if n <= 256 else 2 if n <= 65536 else 4
        return self._unsigned(self.take(width)) % n

    @staticmethod
    def _unsigned(chunk: bytes) -> int:
        # not int.from_bytes: CPython 3.11's leaves a digit that valgrind
        # takes for uninitialised, and the noise would travel into NumPy
        value = 0
        for k, byte in enumerate(chunk):
            value |= byte << (8 * k)
        return value

    def bool(self) -> bool:
        return self.int(2) == 1

    def choice(self, options):
        return options[self.int(len(options))]

    def float(self) -> float:
        """Any double, with the interesting ones likely."""
        kind = self.int(4)
        if kind == 0:
            return struct.unpack("<d", self.take(8))[0]
        if kind == 1:
            return self.choice(INTERESTING_FLOATS)
        return (self.int(65536) - 32768) / 1024.0

    def seed(self) -> int:
        return self._unsigned(self.take(4))


INTERESTING_FLOATS = (
    0.0, -0.0, 1.0, -1.0, 0.5, 0.25, 2.0, 1e-300, 5e-324, -5e-324, 1e300, -1e300, 1e4, -1e4,
    30.0, -30.0, 700.0, -745.0, 800.0, 1.7976931348623157e308, -1.7976931348623157e308,
    3.4e38, 65504.0, 1e-45, float("inf"), float("-inf"), float("nan"), 1 - 2**-53, 2**-1074,
)
DIMS = (0, 1, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 255, 257)
REAL_DTYPES = ("f8", "f4", "f2", ">f8", ">f4", ">f2", "i1", "i4", "i8", "u1", ">i8", "?", "f16",
               "c16", "U1")
TARGET_DTYPES = ("f8", "f4", "f2", ">f8", "?", "u1", "i1", "i8", ">i4", "f16", "c8")
LABEL_DTYPES = ("i8", "i4", "i2", "i1", "u1", "u2", "u4", "u8", ">i8", ">u4", "f8", "?")
# weights scaled to the ends of the double range: every finite weight must give
# finite, correct values (a mean is the same for any common scale)
EXTREME_SCALES = (1e300, 1.7e308, 1e-300, 5e-324, 1e-310)
EXTREME_GAMMAS = (1e155, 1e300, 1e-300, 1e-20, 700.0)
LAYOUTS = ("C", "C", "F", "reversed", "strided", "misaligned", "tail", "broadcast", "readonly",
           "transposed", "swapped-order")


# --------------------------------------------------------------------------
# building inputs


def make_shape(src: Source, ndim: int, large: bool):
    shape = [src.choice(DIMS) for _ in range(ndim)]
    limit = LARGE_ELEMENTS if large else MAX_ELEMENTS
    if large and ndim:
        shape[0] = max(shape[0], LARGE_ELEMENTS // math.prod(max(n, 1) for n in shape[1:]))
    # bound the sizes of every axis together, empty ones counted as 1: the
    # targets of empty logits (shape[:-1]) must stay small too
    while math.prod(max(n, 1) for n in shape) > limit:
        k = int(np.argmax(shape))
        shape[k] //= 2
    return tuple(shape)


def safe_dtype(code: str) -> np.dtype:
    return np.dtype("longdouble") if code == "f16" else np.dtype(code)


def place(src: Source, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """values (any dtype) cast to dtype and stored in a fuzzer-chosen layout."""
    values = np.asarray(values)
    with np.errstate(all="ignore"):
        v = values.astype(dtype) if dtype.kind != "U" else values.astype(np.float64).astype(dtype)
    layout = src.choice(LAYOUTS)
    if v.ndim == 0 or v.size == 0:
        layout = src.choice(("C", "misaligned", "readonly"))
    if layout == "C":
        return v.copy()
    if layout == "F":
        return np.asfortranarray(v)
    if layout == "reversed":
        axis = src.int(v.ndim)
        return np.flip(np.flip(v, axis).copy(), axis)
    if layout == "strided":
        step = src.choice((2, 3, -1, -2))
        axis = src.int(v.ndim)
        big_shape = list(v.shape)
        big_shape[axis] = v.shape[axis] * abs(step)
        big = np.zeros(big_shape, dtype)
        index = [slice(None)] * v.ndim
        index[axis] = slice(None, None, step)
        view = big[tuple(index)]
        view[...] = v
        return view
    if layout == "misaligned":
        offset = 1 + src.int(7)
        buffer = np.zeros(v.nbytes + offset, np.uint8)
        array = np.ndarray(v.shape, dtype, buffer=buffer, offset=offset)
        array[...] = v
        return array
    if layout == "tail":
        # a slice that ends exactly at the end of its base allocation
        base = np.zeros(v.size + 1 + src.int(9), dtype)
        array = base[base.size - v.size:].reshape(v.shape)
        array[...] = v
        return array
    if layout == "broadcast":
        axis = src.int(v.ndim)
        first = np.take(v, [0], axis=axis).copy()
        return np.broadcast_to(first, v.shape)  # zero stride, read-only
    if layout == "readonly":
        array = v.copy()
        array.flags.writeable = False
        return array
    if layout == "transposed":
        if v.ndim < 2:
            return v.copy()
        return np.swapaxes(np.swapaxes(v, -1, -2).copy(), -1, -2)
    # swapped-order: the same values in the other byte order
    if dtype.itemsize > 1 and dtype.kind in "iuf":
        return v.astype(dtype.newbyteorder())
    return v.copy()


def real_values(src: Source, shape, mode: str) -> np.ndarray:
    rng = np.random.default_rng(src.seed())
    scale = src.choice((0.1, 1.0, 6.0, 30.0, 1e3, 1e300))
    values = rng.normal(0.0, scale, size=shape)
    if mode == "moderate":
        values = np.clip(values, -30.0, 30.0)
    flat = values.reshape(-1)
    for _ in range(src.int(4) if flat.size else 0):
        value = src.float()
        if mode == "moderate" and not (math.isfinite(value) and abs(value) <= 30.0):
            value = 0.0
        flat[src.int(flat.size)] = value
    return values


def dense_targets(src: Source, logits_shape, hard_only: bool):
    shape = tuple(n if src.int(4) else 1 for n in logits_shape)
    rng = np.random.default_rng(src.seed())
    kind = src.choice(("hard", "hard", "soft", "mixed", "invalid"))
    if hard_only and kind in ("soft", "mixed") and src.bool():
        kind = "hard"
    hard = rng.integers(0, 2, size=shape).astype(np.float64)
    if kind == "hard":
        values = hard
    elif kind == "soft":
        values = rng.random(shape)
    elif kind == "mixed":
        values = np.where(rng.random(shape) < 0.5, rng.random(shape), hard)
    else:
        values = hard
        if values.size:
            values.reshape(-1)[src.int(values.size)] = src.choice(
                (-0.5, 1.5, float("nan"), float("inf"), -1e-300, 1 + 2**-52, -0.0))
    return values, shape


def label_values(src: Source, shape, num_classes: int, ignore_index: int):
    """(class indices in [0, C) as int64, [(flat position, special value)])."""
    rng = np.random.default_rng(src.seed())
    values = rng.integers(0, max(num_classes, 1), size=shape)
    specials = []
    for _ in range(src.int(5) if values.size else 0):
        specials.append((src.int(values.size), src.choice((
            num_classes, ignore_index, -1, -100, num_classes + 1, -2, 2**31 - 1, 2**63 - 1,
            -(2**63), 2**64 - 1, 255, 256, -128))))
    return values, specials


def to_label_array(labels, dtype: np.dtype):
    """The labels in dtype; None when a value does not fit (the input is skipped)."""
    values, specials = labels
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if (values.size and int(values.max()) > info.max) or any(
                not info.min <= v <= info.max for _, v in specials):
            return None
        array = values.astype(dtype)
        flat = array.reshape(-1)
        for position, value in specials:
            flat[position] = value
        return array
    array = values.astype(np.float64)
    flat = array.reshape(-1)
    for position, value in specials:
        flat[position] = float(value)
    with np.errstate(all="ignore"):
        return array.astype(dtype)


# --------------------------------------------------------------------------
# reference (float64, straight from the formulas; accurate for |x| <= 50)


def sigmoid_reference(x, y, valid, alpha_t, gamma, w):
    """(per-element weighted loss, its derivative, second derivative, error scale)."""
    log_p = -np.logaddexp(0.0, -x)
    log_1mp = -np.logaddexp(0.0, x)
    p, one_minus_p = np.exp(log_p), np.exp(log_1mp)
    ce = -(y * log_p + (1.0 - y) * log_1mp)
    q = p * (1.0 - y) + one_minus_p * y
    a = 1.0 - 2.0 * y
    s = p * one_minus_p
    d = p * (1.0 - y) - one_minus_p * y
    with np.errstate(all="ignore"):
        q_g = np.where(q > 0, q ** gamma, 0.0 ** gamma)
        r = np.where(q > 0, s / np.where(q > 0, q, 1.0), 0.0)
    fl = alpha_t * q_g * ce
    dfl = alpha_t * q_g * (gamma * a * r * ce + d)
    bracket = (gamma * (gamma - 1.0) * a**2 * r**2 * ce + gamma * a * r * (1.0 - 2.0 * p) * ce
               + 2.0 * gamma * a * r * d + s)
    d2fl = alpha_t * q_g * bracket
    scale = alpha_t * q_g * (gamma * np.abs(a) * r * ce + q)
    hess_scale = alpha_t * q_g * (gamma * abs(gamma - 1.0) * a**2 * r**2 * ce
                                  + gamma * np.abs(a) * r * ce + 2.0 * gamma * np.abs(a) * r * q + s)
    w = np.where(valid, w, 0.0)
    return w * fl, w * dfl, w * d2fl, w * scale, w * hess_scale


def star_reference(x, y, valid, alpha_t, gamma, beta, w):
    s = 2.0 * y - 1.0
    with np.errstate(all="ignore"):
        z = gamma * s * x + beta
        loss = np.logaddexp(0.0, -z) / gamma  # inf for a tiny gamma
        grad = -s / (1.0 + np.exp(z))
        w = np.where(valid, w, 0.0) * alpha_t
        # a zero weight masks the element, an infinite loss included
        weighted = np.where(w == 0, 0.0, w * loss)
    return weighted, w * grad, np.abs(w * grad)


def softmax_reference(z, y, row_valid, class_alpha, gamma, w):
    """(row losses, gradient rows, error scale); class axis last, y dense (one-hot for labels)."""
    c = z.shape[-1]
    d = z - z.max(axis=-1, keepdims=True)
    e = np.exp(d)
    others = (e[..., None, :] * (1.0 - np.eye(c))).sum(axis=-1)
    total = e.sum(axis=-1, keepdims=True)
    rest = np.take_along_axis(others, np.argmax(z, axis=-1)[..., None], axis=-1)
    neg_log_p = np.log1p(rest) - d
    p = e / total
    q = others / total
    with np.errstate(all="ignore"):
        h = np.where(others > 0, e * neg_log_p / np.where(others > 0, others, 1.0), 1.0)
        q_g = np.where(q > 0, q ** gamma, 0.0 ** gamma)
    ay = class_alpha * y
    loss = (ay * q_g * neg_log_p).sum(axis=-1)
    g = ay * q_g * (gamma * h + 1.0)
    g_total = g.sum(axis=-1, keepdims=True)
    w = np.where(row_valid, w, 0.0)
    grad = (p * g_total - g) * w[..., None]
    scale = (p * np.abs(g_total) + np.abs(g)) * w[..., None]
    return loss * w, grad, scale


def check_close(name, actual, expected, scale, dtype):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if dtype == np.float64:
        allowed = 1e-9 * (np.abs(expected) + scale) + 1e-300
    else:
        allowed = 1e-5 * (np.abs(expected) + scale) + 1e-37
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~(np.abs(actual - expected) <= allowed)
        # a value past the result dtype's range is rightly +-inf there
        rounded = expected.astype(dtype)
        bad &= ~(np.isinf(rounded) & (actual == rounded))
    if np.any(bad):
        i = np.flatnonzero(bad.reshape(-1))[:3]
        raise Finding(f"{name}: differs from the reference at flat indices {i}: got "
                      f"{actual.reshape(-1)[i]}, expected {expected.reshape(-1)[i]}")


def tiny_weights(w) -> bool:
    """Subnormal weights: w * loss keeps a few bits, and a mean over them is
    as coarse in any evaluation order, so the reference cannot judge it."""
    w = np.asarray(w)
    return bool(np.any((w != 0) & (np.abs(w) < 1e-290)))


def common_scale_removed(w):
    """w divided by its largest value (a mean, its gradient included, does not
    change when every weight is scaled alike)."""
    w = np.asarray(w, dtype=np.float64)
    peak = float(np.max(w, initial=0.0))
    return w / peak if peak > 0 and math.isfinite(peak) else w


def alpha_inside(out, alpha):
    """A per-class alpha stored in out's own memory: the call must read it
    before it writes out (or read a copy)."""
    if not (isinstance(out, np.ndarray) and isinstance(alpha, np.ndarray) and alpha.ndim == 1
            and out.flags.c_contiguous and 0 < alpha.size <= out.size):
        return alpha, None
    view = out.reshape(-1)[:alpha.size]
    with np.errstate(all="ignore"):
        view[...] = alpha
    if not np.array_equal(view, alpha):  # not representable in out's dtype: keep it apart
        return alpha, None
    return view, "alpha"


def check_same_bits(what, results, function, args, kwargs):
    """A call whose out= aliased an argument gives the bits of the same call on
    copies of its arguments, without out=."""
    try:
        with np.errstate(all="ignore"):
            expected = function(*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise Finding(f"{what}: accepted with out= aliasing an argument, refused on copies: "
                      f"{error}") from None
    expected = expected if isinstance(expected, tuple) else (expected,)
    for k, (got, want) in enumerate(zip(results, expected)):
        if not np.array_equal(np.asarray(got), np.asarray(want), equal_nan=True):
            raise Finding(f"{what}: result {k} with out= aliasing an argument differs from the "
                          f"same call on copies")


def check_no_nan(name, value):
    if np.any(np.isnan(np.asarray(value, dtype=np.float64))):
        raise Finding(f"{name}: NaN although every input is finite and valid")


# --------------------------------------------------------------------------
# one input


def one_input(data: bytes) -> None:
    src = Source(data)
    family = src.choice(("sigmoid", "sigmoid", "star", "softmax", "softmax", "scalar",
                         "descendants"))
    levels = _core.supported_simd_levels()
    _core.set_simd_level(src.choice(levels))
    focal.set_num_threads(1 + src.int(3))
    if family == "scalar":
        return huge_shapes(src) if src.int(4) == 0 else scalar_functions(src)
    if family == "descendants":
        return src.choice((descendants_at_extremes, descendants_at_extremes, scaled_gradients,
                           float32_against_float64, heavy_zero_losses, heavy_ignored_rows))(src)
    large = src.int(64) == 0
    ndim = src.choice((1, 2, 2, 3, 0, 4)) if family != "softmax" else src.choice((1, 2, 2, 3, 4))
    shape = make_shape(src, ndim, large)
    moderate = src.int(3) != 0
    x_values = real_values(src, shape, "moderate" if moderate else "any")
    x_dtype = safe_dtype(src.choice(REAL_DTYPES))
    if family == "softmax":
        return softmax_case(src, shape, x_values, x_dtype)
    return sigmoid_case(src, family == "star", shape, x_values, x_dtype)


def scalar_functions(src: Source) -> None:
    pi = src.choice((src.float(), 0.01, 0.5, 0, 1, -0.1, "0.1", None, True, [0.1], 10**400,
                     np.float32(0.25)))
    try:
        value = focal.prior_bias(pi)
    except (TypeError, ValueError):
        value = None
    if value is not None:
        if not isinstance(value, float) or not math.isfinite(value):
            raise Finding(f"prior_bias({pi!r}) = {value!r}")
    count = src.choice((src.int(300), 2, 81, 1, 0, -1, 2**40, 2.0, "3", True))
    try:
        bias = focal.softmax_prior_bias(count, src.choice((0.01, 0.5, src.float())))
    except (TypeError, ValueError):
        return
    except MemoryError:
        if isinstance(count, int) and count > 2**30:
            return  # asked for a huge array
        raise
    if not (isinstance(bias, np.ndarray) and bias.dtype == np.float64 and bias.shape == (count,)
            and np.all(np.isfinite(bias))):
        raise Finding(f"softmax_prior_bias({count!r}) = {bias!r}")


# the focal loss's descendants and their own parameters, at scales the checks accept
EXTREME_PARAMETERS = (0.0, 1e-300, 0.5, 2.0, 1e4, 1e100, 1e300, 1.7e308)
EXTREME_LOGITS = (0.0, 5e-324, 1e-300, 1e-10, 0.5, 3.0, 40.0, 700.0, 709.0, 745.0, 1e4, 1e308)


# weights and normalizers whose quotient may pass the double range either way
EXTREME_WEIGHTS = (5e-324, 1e-300, 1.0, 1e300, 1.7e308)
EXTREME_NORMALIZERS = (None, 5e-324, 1e-300, 0.5, 1e300)


def descendants_at_extremes(src: Source) -> None:
    """Poly-1, varifocal, asymmetric and quality focal loss with each parameter
    anywhere from 0 to 1.7e308 and logits from 5e-324 to 1e308 of either
    sign, and every family (the focal loss, FL* and the softmax too) with
    weights and a normalizer at the ends of the double range: finite
    arguments the checks accept give no NaN (an infinity is allowed where the
    exact value overflows)."""
    n = 1 + src.int(40)
    dtype = src.choice((np.float64, np.float32))
    largest = float(np.finfo(dtype).max)  # (finite logits in either dtype)
    x = np.array([min(src.choice(EXTREME_LOGITS), largest) * src.choice((1.0, -1.0))
                  for _ in range(n)], dtype)
    y = np.array([src.choice((0.0, 1.0, 0.5, 1e-30, 0.999, src.float())) for _ in range(n)])
    parameter = lambda: src.choice(EXTREME_PARAMETERS)  # noqa: E731
    name = src.choice(("poly1", "varifocal", "asymmetric", "quality", "focal", "star",
                       "softmax"))
    weights = np.array([src.choice(EXTREME_WEIGHTS) for _ in range(n)])
    reduced = {"weights": weights, "reduction": src.choice(("none", "sum", "mean")),
               "normalizer": src.choice(EXTREME_NORMALIZERS)}
    if name in ("focal", "star", "softmax"):
        y = (y > 0.5).astype(np.float64)
        if name == "softmax":
            x = x.reshape(n, 1)[:, [0, 0, 0]] * np.array([1.0, -1.0, 0.5], dtype)
            y = (y * 2).astype(np.intp)
        extra = {"star": (parameter() or 1.0, src.choice((0.0, 1.0, -1e300, 1.7e308)))}
        function = getattr(focal, {"focal": "loss_and_grad"}.get(name, f"{name}_loss_and_grad"))
        try:
            with np.errstate(all="ignore"):
                results = function(x, y, src.choice((0.25, None)),
                                   *extra.get(name, (parameter(),)), **reduced)
        except (TypeError, ValueError):
            return
        for k, value in enumerate(results):
            check_no_nan(f"{name} x={x.tolist()} y={y.tolist()} {reduced} result {k}", value)
        return
    if name == "poly1":
        calls = (lambda f: f(x, y, src.choice((0.25, None)), parameter(),
                             epsilon=src.choice((-1.0,) + EXTREME_PARAMETERS)))
    elif name == "varifocal":
        calls = (lambda f: f(x, y, src.choice((0.75, 1.0, 0.0)), parameter()))
    elif name == "asymmetric":
        y = (y > 0.5).astype(np.float64)
        calls = (lambda f: f(x, y, parameter(), parameter(),
                             src.choice((0.0, 0.05, 1e-300, 0.5, 1 - 2**-53))))
    else:
        calls = (lambda f: f(x, y, parameter()))
    for suffix in ("grad_hess", "loss_and_grad"):
        function = getattr(focal, f"{name}_{suffix}")
        if suffix == "loss_and_grad":
            function = functools.partial(function, **reduced)
        try:
            with np.errstate(all="ignore"):
                results = calls(function)
        except (TypeError, ValueError):
            continue
        for k, value in enumerate(results):
            check_no_nan(f"{name}_{suffix} x={x.tolist()} y={y.tolist()} result {k}", value)



def float32_against_float64(src: Source) -> None:
    """Every elementwise family under reduction "none", at extreme parameters
    and weights: a float32 result is the float64 result of the same logits
    (float32 values, exact in either dtype) rounded, to 2 float32 ULP, and inf
    where that passes float32's range.  float32 results once rounded alpha_t w
    to 0 (0.25 * 5e-324) before Poly-1's epsilon 1e300 or FL*'s 1 / gamma
    brought the product back into their range."""
    n = 1 + src.int(12)
    x64 = np.array([src.choice(EXTREME_LOGITS[:-1]) * src.choice((1.0, -1.0)) for _ in range(n)])
    x64 = x64.astype(np.float32).astype(np.float64)
    y = np.array([src.choice((0.0, 1.0)) for _ in range(n)])
    weights = np.array([src.choice(EXTREME_WEIGHTS + (1e-310, 3 * 5e-324)) for _ in range(n)])
    parameter = lambda: src.choice(EXTREME_PARAMETERS)  # noqa: E731
    alpha = src.choice((0.25, None, 1e-300))
    name, arguments = src.choice((
        ("", (alpha, parameter())),
        ("star_", (alpha, parameter() or 1.0, src.choice((0.0, 1.0, -1e300, 1e300)))),
        # (epsilon down to -1, where CE + epsilon q once cancelled)
        ("poly1_", (alpha, parameter(), src.choice(EXTREME_PARAMETERS + (-1.0, -0.5, -1e-300)))),
        ("varifocal_", (src.choice((0.75, 1.0, 1e300)), parameter())),
        ("asymmetric_", (parameter(), parameter(), src.choice((0.0, 0.05, 1e-300)))),
        ("quality_", (parameter(),)),
    ))
    kind = src.choice(("loss", "grad"))
    function = getattr(focal, f"{name}{kind}")
    try:
        with np.errstate(all="ignore"):
            wide = function(x64, y, *arguments, reduction="none", weights=weights)
            narrow = function(x64.astype(np.float32), y, *arguments, reduction="none",
                              weights=weights)
    except (TypeError, ValueError):
        return
    info = np.finfo(np.float32)
    with np.errstate(all="ignore"):
        rounded = wide.astype(np.float32).astype(np.float64)
        allowed = 2 * np.spacing(np.abs(rounded).astype(np.float32)).astype(np.float64)
        allowed = np.maximum(allowed, float(info.smallest_subnormal))
        close = np.abs(narrow.astype(np.float64) - wide) <= allowed
    same_infinity = np.isinf(rounded) & (narrow.astype(np.float64) == rounded)
    bad = np.isfinite(wide) & ~close & ~same_infinity
    bad |= np.isinf(wide) & ~(narrow.astype(np.float64) == wide)
    if np.any(bad):
        i = np.flatnonzero(bad)[:3]
        raise Finding(f"{name}{kind}{arguments} x={x64[i].tolist()} y={y[i].tolist()} "
                      f"w={weights[i].tolist()}: float32 gives {narrow[i].tolist()}, "
                      f"float64 {wide[i].tolist()}")


# every elementwise family's gradient, with parameters that make it large or tiny
SCALED_FAMILIES = (
    ("grad", {"alpha": 0.25, "gamma": 2.0}), ("grad", {"alpha": None, "gamma": 0.0}),
    ("star_grad", {"alpha": 0.25, "gamma": 4.0, "beta": 0.0}),
    ("poly1_grad", {"alpha": 0.25, "gamma": 1e300, "epsilon": 1e300}),
    ("poly1_grad", {"alpha": None, "gamma": 0.0, "epsilon": 1e300}),
    ("varifocal_grad", {"alpha": 1e300, "gamma": 0.0}), ("quality_grad", {"beta": 2.0}),
    ("asymmetric_grad", {"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05}),
)


def scaled_gradients(src: Source) -> None:
    """A weighted gradient over weights 2^k and a normalizer 2^j is the
    unweighted gradient times 2^(k - j), exactly while that is a normal number
    (and inf where it overflows): an oracle at every scale of the double range,
    where w g or w g / D leave it on the way."""
    n = 1 + src.int(12)
    dtype = src.choice((np.float64, np.float32))
    largest = float(np.finfo(dtype).max)
    x = np.array([min(src.choice(EXTREME_LOGITS), largest) * src.choice((1.0, -1.0))
                  for _ in range(n)], dtype)
    y = np.array([src.choice((0.0, 1.0)) for _ in range(n)], dtype)
    name, parameters = src.choice(SCALED_FAMILIES)
    function = getattr(focal, name)
    k, j = src.int(2098) - 1074, src.int(2098) - 1074
    with np.errstate(all="ignore"):
        base = function(x, y, **parameters, reduction="none")
        got = function(x, y, **parameters, weights=np.full(n, math.ldexp(1.0, k)),
                       normalizer=math.ldexp(1.0, j))
        expected = np.ldexp(base.astype(np.float64), k - j).astype(dtype)
    info = np.finfo(dtype)
    what = f"{name} {parameters} x={x.tolist()} y={y.tolist()} w=2^{k} D=2^{j}"
    check_no_nan(what, got)
    for i in range(n):
        b, e, g = float(base[i]), float(expected[i]), float(got[i])
        if not (math.isfinite(b) and abs(b) >= info.tiny):
            continue  # (a subnormal or infinite base: no digits to scale)
        if math.isinf(e) and g != e:
            raise Finding(f"{what}: element {i} is {g!r}, where the exact value overflows")
        if math.isfinite(e) and abs(e) >= info.tiny and abs(g - e) > 2 * float(info.eps) * abs(e):
            raise Finding(f"{what}: element {i} is {g!r}, exact {e!r}")
        if math.isfinite(e) and abs(e) < info.tiny and abs(g - e) > float(info.smallest_subnormal):
            raise Finding(f"{what}: element {i} is {g!r}, exact {e!r} (subnormal)")
    # the loss side: a mean over uniform weights 2^k is the unweighted mean at
    # every k (the weights' scale brings them to 1/4 exactly, all-subnormal
    # weights included), where every loss is normal and the mean finite
    loss_function = getattr(focal, name.replace("_grad", "_loss") if name != "grad" else "loss")
    with np.errstate(all="ignore"):
        losses = loss_function(x, y, **parameters, reduction="none").astype(np.float64)
        plain = float(loss_function(x, y, **parameters))
        weighted = float(loss_function(x, y, **parameters, weights=np.full(n, math.ldexp(1.0, k))))
    normal = np.all(np.isfinite(losses) & ((losses == 0) | (np.abs(losses) >= 4 * info.tiny)))
    if normal and math.isfinite(plain) and abs(weighted - plain) > 2 * float(info.eps) * abs(plain):
        raise Finding(f"{what}: the mean over weights 2^{k} is {weighted!r}, unweighted {plain!r}")


def heavy_zero_losses(src: Source) -> None:
    """A reduced loss over heavy weights 2^k on elements whose loss is 0 (a
    logit at the far end, target 0) beside light elements of weight 2^-j
    (j = 0 half the time) is the light elements' own sum, 2^-j times their
    unweighted sum (the weights' scale took their terms below the normal
    range: 0 for 6.6e-262; a light weight it took below the smallest
    subnormal stood in as 5e-324, which overstated a large loss), in place
    too where the first pass sums the loss (a largest weight of 2^63 or
    more).  A quarter of the cases are softmax rows (a heavy row's label
    logit the dtype's largest, its other logits 0)."""
    dtype = src.choice((np.float64, np.float32))
    largest = float(np.finfo(dtype).max)
    light = 1 + src.int(4)
    heavy = 1 + src.int(3)
    classes = 2 + src.int(3) if src.int(4) == 0 else 0
    x_light = np.array([src.choice(EXTREME_LOGITS) * src.choice((1.0, -1.0))
                        for _ in range(light * max(classes, 1))],
                       np.float64).clip(-largest, largest).astype(dtype)
    if classes:
        x_heavy = np.zeros((heavy, classes), dtype)
        x_heavy[:, 0] = largest
        x = np.concatenate([x_heavy, x_light.reshape(light, classes)])
        y = np.concatenate([np.zeros(heavy, np.intp), [src.int(classes) for _ in range(light)]])
        name, parameters = "softmax", {"gamma": src.choice((0.0, 2.0, 0.5))}
        loss_function, pair = focal.softmax_loss, focal.softmax_loss_and_grad
    else:
        y_light = np.array([src.choice((0.0, 1.0)) for _ in range(light)], dtype)
        x = np.concatenate([np.full(heavy, -largest, dtype), x_light])
        y = np.concatenate([np.zeros(heavy, dtype), y_light])
        name, parameters = src.choice(SCALED_FAMILIES)
        loss_function = getattr(focal, name.replace("_grad", "_loss") if name != "grad"
                                else "loss")
        pair = getattr(focal, name.replace("_grad", "_loss_and_grad") if name != "grad"
                       else "loss_and_grad")
    x_light, y_light = x[heavy:], y[heavy:]
    k = 63 + src.int(960)
    j = 0 if src.int(2) == 0 else src.int(1075)
    weights = np.concatenate([np.full(heavy, math.ldexp(1.0, k)),
                              np.full(light, math.ldexp(1.0, -j))])
    what = (f"{name} {parameters} x={x.tolist()} y={y.tolist()} heavy weights 2^{k}, "
            f"light 2^-{j}")
    with np.errstate(all="ignore"):
        if np.any(loss_function(x[:heavy], y[:heavy], **parameters, reduction="none") != 0):
            return
        unweighted = float(loss_function(x_light, y_light, **parameters, reduction="sum"))
        expected = float(dtype(math.ldexp(unweighted, -j)))
        got = float(loss_function(x, y, **parameters, reduction="sum", weights=weights))
        inplace = x.copy()
        got_inplace = float(pair(inplace, y, **parameters, reduction="sum", weights=weights,
                                 out=inplace)[0])
    info = np.finfo(dtype)
    if not (math.isfinite(expected) and abs(expected) >= info.tiny):
        return  # (a subnormal or infinite sum: no digits to compare)
    for value, how in ((got, ""), (got_inplace, " in place")):
        if abs(value - expected) > 4 * float(info.eps) * abs(expected):
            raise Finding(f"{what}: the sum{how} is {value!r}, the light elements' {expected!r}")


def heavy_ignored_rows(src: Source) -> None:
    """A reduced loss whose heaviest weights (2^k) lie on rows that
    ignore_index leaves out, beside rows that count of weight 2^-j: the
    ignored rows weigh nothing, so the mean is the counted rows' unweighted
    mean and the sum 2^-j times their sum (the ignored rows' weights set the
    reductions' scale and took the others below the smallest subnormal: a
    mean of 0.25 for 0.283).  Sigmoid class indices or softmax rows."""
    dtype = src.choice((np.float64, np.float32))
    classes = 2 + src.int(4)
    ignored, counted = 1 + src.int(3), 1 + src.int(4)
    rows = ignored + counted
    x = np.array([src.choice(EXTREME_LOGITS[:6] + (0.5, -1.5, 3.0)) * src.choice((1.0, -1.0))
                  for _ in range(rows * classes)], np.float64).reshape(rows, classes)
    x = x.clip(-50.0, 50.0).astype(dtype)
    softmax = src.bool()
    ignore = -100 if softmax else -1
    labels = np.array([ignore] * ignored + [src.int(classes) for _ in range(counted)])
    k, j = src.int(1024), src.int(1075)
    w = np.concatenate([np.full(ignored, math.ldexp(1.0, k)), np.full(counted, math.ldexp(1.0, -j))])
    if softmax:
        loss_function, weights = focal.softmax_loss, w
    else:
        loss_function, weights = focal.loss, w[:, None]
    what = (f"{'softmax' if softmax else 'sigmoid'} x={x.tolist()} labels={labels.tolist()} "
            f"weights 2^{k} on ignored rows, 2^-{j} on the others")
    info = np.finfo(dtype)
    with np.errstate(all="ignore"):
        for reduction in ("mean", "sum"):
            unweighted = float(loss_function(x[ignored:], labels[ignored:], reduction=reduction))
            expected = unweighted if reduction == "mean" else float(
                dtype(math.ldexp(unweighted, -j)))
            got = float(loss_function(x, labels, reduction=reduction, weights=weights))
            if not (math.isfinite(expected) and abs(expected) >= info.tiny):
                continue  # (a subnormal or infinite value: no digits to compare)
            if not abs(got - expected) <= 4 * float(info.eps) * abs(expected):  # (NaN too)
                raise Finding(f"{what}: the {reduction} is {got!r}, the counted rows' "
                              f"{expected!r}")


class Deadline(Exception):
    """Raised by the signal handler that ends a call over a huge shape."""


def _raise_deadline(signum, frame):
    raise Deadline()


HUGE_SHAPES = ((2**62,), (2**63 - 1,), (1, 2**61), (3, 2**61), (2**31, 2**31), (2**40, 80),
               (2**62, 1), (4, 2**59, 2))
DEADLINE_SECONDS = 0.3


class HugeTargets(NamedTuple):
    name: str
    labels: bool
    array: np.ndarray


def name_of(src: Source) -> str:
    return src.choice(("loss", "loss", "grad", "grad_hess", "star_loss", "softmax_loss",
                       "softmax_loss", "softmax_grad"))


def huge_targets(src: Source, name: str, shape) -> HugeTargets:
    """Targets of the huge logits, zero-stride too (ValueError when NumPy cannot
    describe them)."""
    labels = src.bool() and len(shape) > 1
    if labels:
        return HugeTargets(name, True, np.broadcast_to(
            np.int64(src.choice((0, 1, shape[-1] - 1))), shape[:-1]))
    if name.startswith("softmax"):
        return HugeTargets(name, False, np.broadcast_to(np.float64(1.0 / shape[-1]), shape))
    return HugeTargets(name, False, np.broadcast_to(
        np.array(src.choice((0.0, 1.0)), src.choice(("f4", "?"))), shape))


def huge_shapes(src: Source) -> None:
    """Zero-stride views with more elements than memory holds, or counts near
    2**63: every size computed must be checked, and a long call must stop at a
    pending signal.  Acceptable outcomes: a ValueError or MemoryError, the
    deadline's exception (raised by the handler of a signal sent while the
    call runs), or the right value."""
    shape = src.choice(HUGE_SHAPES)
    value = src.choice((0.0, 1.0, -3.0, 30.0))
    try:
        x = np.broadcast_to(np.array(value, src.choice(("f4", "f8", "f2", "i1"))), shape)
        t = huge_targets(src, name_of(src), shape)
    except ValueError:  # more bytes than NumPy lets a view describe
        return
    name, labels = t.name, t.labels
    t = t.array
    kwargs = {}
    if name in ("loss", "star_loss", "softmax_loss"):
        kwargs["reduction"] = src.choice(("mean", "sum", "none"))
    function = getattr(focal, name)
    previous = signal.signal(signal.SIGUSR2, _raise_deadline)
    main = threading.main_thread().ident
    timer = threading.Timer(DEADLINE_SECONDS, signal.pthread_kill, (main, signal.SIGUSR2))
    timer.start()
    try:
        with np.errstate(all="ignore"):
            result = function(x, t, **kwargs)
    except (ValueError, MemoryError, Deadline):
        return
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR2, previous)
    # it finished: only a reduction can have, and (all elements alike) a dense
    # mean must be the value of one element
    what = f"{name}{shape} {x.dtype} labels={labels} {kwargs}"
    if kwargs.get("reduction") not in ("mean",):
        raise Finding(f"{what}: returned {result!r:.100} over {math.prod(shape)} elements")
    if name in ("loss", "star_loss") and not labels:
        corner = (slice(0, 1),) * len(shape)
        one = function(x[corner], t[corner], **kwargs)
        if not np.array_equal(np.asarray(result), np.asarray(one), equal_nan=True):
            raise Finding(f"{what}: {result!r} where one element gives {one!r}")
    elif not np.isfinite(result):
        raise Finding(f"{what}: {result!r}")


def result_dtype_of(x: np.ndarray):
    if x.dtype.kind not in "iuf" or (x.dtype.kind == "f" and x.dtype.itemsize > 8):
        return None
    return np.float64 if np.result_type(x.dtype, np.float16) == np.float64 else np.float32


def make_out(src: Source, kind: str, shape, dtype, inputs):
    """An out= argument: fresh, wrong, or aliasing one of the inputs."""
    if kind == "none" or dtype is None:
        return None, None
    if kind == "fresh":
        return np.full(shape, np.nan, dtype), None
    if kind == "wrong-dtype":
        return np.zeros(shape, np.float16), None
    if kind == "wrong-shape":
        return np.zeros(shape + (1,), dtype), None
    if kind == "list":
        return [0.0] * int(math.prod(shape)), None
    if kind == "readonly":
        out = np.zeros(shape, dtype)
        out.flags.writeable = False
        return out, None
    # aliasing: out is one of the inputs, or a view of the same memory in
    # another order (when the input has the shape and result dtype to allow it)
    name = src.choice(("logits", "logits", "targets", "weights"))
    target = inputs.get(name)
    if isinstance(target, np.ndarray) and target.shape == shape and target.dtype == dtype \
            and target.flags.writeable:
        how = src.choice(("same", "same", "flipped", "swapped"))
        if how == "flipped":
            return np.flip(target), name
        if how == "swapped" and target.ndim >= 2 and target.shape[-1] == target.shape[-2]:
            return np.swapaxes(target, -1, -2), name
        return target, name
    return np.full(shape, np.nan, dtype), None


def sigmoid_case(src: Source, star: bool, shape, x_values, x_dtype) -> None:
    x = place(src, x_values, x_dtype)
    num_classes = shape[-1] if shape else 1
    labels = src.int(3) == 0 and len(shape) >= 1
    ignore_index = -1 if star else src.choice((-1, -1, -100, num_classes, 0, 2**63 - 1, -(2**63),
                                               2**64, "x", 1.5))
    if labels:
        raw = label_values(src, shape[:-1], num_classes,
                           ignore_index if isinstance(ignore_index, int) else -1)
        t = to_label_array(raw, safe_dtype(src.choice(LABEL_DTYPES)))
        if t is None:
            return
        t = place(src, t, t.dtype) if t.dtype.kind in "iu" else t
    else:
        t_values, _ = dense_targets(src, shape, star)
        t = place(src, t_values, safe_dtype(src.choice(TARGET_DTYPES)))
    # (tiny alphas beside the extreme weights: alpha_t w lifted on the way gave NaN sums)
    alpha = src.choice((0.25, None, src.float(), "per-class", "per-class-bad", -1, 1.5, True,
                        10**400, 1, 0, np.float16(0.5), 1e-300, 5e-324))
    if alpha == "per-class":
        alpha = np.random.default_rng(src.seed()).random(num_classes)
    elif alpha == "per-class-bad":
        alpha = np.full(num_classes + src.int(2), src.choice((0.5, -0.1, float("nan"))))
    gamma = src.choice((2.0, 0.0, 0.5, 4.0, 1.0, src.float(), -1.0, "2", None, 3, 10**400,
                        np.float32(2.0), np.array(2.0), src.choice(EXTREME_GAMMAS)))
    beta = src.choice((0.0, 1.0, src.float(), 10**400, -(10**400), 1))
    weights = None
    if src.bool():
        w_shape = tuple(n if src.int(3) else 1 for n in shape)[src.int(2) if shape else 0:]
        rng = np.random.default_rng(src.seed())
        w_values = rng.random(w_shape) * src.choice((1.0, 2.0, 1e3, 0.0) + EXTREME_SCALES)
        if w_values.size and src.int(4) == 0:
            w_values.reshape(-1)[src.int(w_values.size)] = src.choice(
                (-1.0, float("nan"), float("inf"), 0.0, 1e300, 5e-324))
        weights = place(src, w_values, safe_dtype(src.choice(("f8", "f4", "i8", "?", ">f8", "f2"))))
    reductions = ("mean", "sum", "none", "sum_over_positives")
    reduction = src.choice(reductions + ("bad", None))
    if star:
        functions = ("star_loss", "star_grad", "star_loss_and_grad")
    else:
        functions = ("loss", "grad", "loss_and_grad", "grad_hess")
    name = src.choice(functions)
    dtype = result_dtype_of(x)
    out_kind = src.choice(("none", "none", "fresh", "alias", "alias", "wrong-dtype",
                           "wrong-shape", "list", "readonly"))
    if name == "grad_hess":
        out_kind = "none"
    out, aliased = make_out(src, out_kind, shape, dtype, {"logits": x, "targets": t,
                                                          "weights": weights})
    if out_kind == "fresh" and src.bool():
        alpha, aliased = alpha_inside(out, alpha)
    before = {k: np.copy(v) for k, v in (("logits", x), ("targets", t), ("weights", weights),
                                         ("alpha", alpha)) if isinstance(v, np.ndarray)}

    function = getattr(focal, name)
    kwargs = {"weights": weights}
    if name != "grad_hess":
        kwargs["reduction"] = reduction
        kwargs["out"] = out
    args = [x, t, alpha, gamma]
    if star:
        args.append(beta)
    else:
        kwargs["ignore_index"] = ignore_index
    try:
        with np.errstate(all="ignore"):
            result = function(*args, **kwargs)
    except (TypeError, ValueError):
        return
    except MemoryError:
        raise Finding(f"{name}: MemoryError on {x.size} elements")

    # ---- the call succeeded: check what came back
    global last_success
    last_success = (name, labels, reduction, out_kind, str(x.dtype))
    what = f"{name} x{shape} {x.dtype} targets {t.dtype}{'(labels)' if labels else ''} " \
           f"reduction={reduction} out={out_kind}"
    results = result if isinstance(result, tuple) else (result,)
    want_loss = name in ("loss", "loss_and_grad", "star_loss", "star_loss_and_grad")
    if dtype is None:
        raise Finding(f"{what}: logits of dtype {x.dtype} accepted")
    arrays = []
    for k, value in enumerate(results):
        is_loss = want_loss and k == 0
        if is_loss and reduction != "none":
            if not isinstance(value, np.generic) or value.dtype != dtype:
                raise Finding(f"{what}: reduced loss {value!r} is not a {np.dtype(dtype)} scalar")
        else:
            if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != dtype:
                raise Finding(f"{what}: result {k} has the wrong type, shape or dtype: "
                              f"{type(value).__name__} {getattr(value, 'shape', None)} "
                              f"{getattr(value, 'dtype', None)}")
            arrays.append(value)
    if out is not None and isinstance(out, np.ndarray):
        receiver = results[0] if name in ("loss", "star_loss") else results[-1]
        if receiver is not out:
            raise Finding(f"{what}: out= was not returned")
    for key, original in before.items():
        current = {"logits": x, "targets": t, "weights": weights, "alpha": alpha}[key]
        if key != aliased and not np.array_equal(original, current, equal_nan=True):
            raise Finding(f"{what}: {key} modified")
    if aliased is not None:
        again = dict(before)
        rerun = [again["logits"], again["targets"], again.get("alpha", alpha), gamma] + args[4:]
        check_same_bits(what, results, function, rerun, {**kwargs, "out": None,
                                                         "weights": again.get("weights")})
    alpha = before.get("alpha", alpha)

    # ---- validity of what was accepted
    x64 = before["logits"].astype(np.float64) if x.dtype != np.float16 else before["logits"].astype(
        np.float32).astype(np.float64)
    if labels:
        lab = before["targets"]
        if lab.dtype == np.uint64 and lab.size and int(lab.max()) >= 2**63:
            raise Finding(f"{what}: label {int(lab.max())} accepted")
        lab = lab.astype(np.int64)
        ignored = lab == ignore_index
        bad = ~ignored & ((lab < 0) | (lab > num_classes))
        if np.any(bad):
            raise Finding(f"{what}: label {lab[bad].reshape(-1)[0]} accepted")
        y = (np.where(ignored, -1, lab).astype(np.int64)[..., None] == np.arange(num_classes)
             ).astype(np.float64)
        valid = np.broadcast_to(~ignored[..., None], shape)
    else:
        y = np.broadcast_to(before["targets"].astype(np.float64), shape)
        if not np.all((y >= 0) & (y <= 1)):
            raise Finding(f"{what}: target {y[~((y >= 0) & (y <= 1))][0]} accepted")
        if star and not np.all((y == 0) | (y == 1)):
            raise Finding(f"{what}: soft target accepted by FL*")
        valid = np.ones(shape, bool)
    w = np.ones(shape) if weights is None else np.broadcast_to(
        before["weights"].astype(np.float64), shape)
    if not np.all((w >= 0) & np.isfinite(w)):
        raise Finding(f"{what}: weight outside [0, inf) accepted")
    try:
        gamma_f, beta_f = float(gamma), float(beta) if star else 0.0
    except OverflowError:
        raise Finding(f"{what}: gamma {gamma!r} or beta {beta!r} accepted") from None
    alpha_arr = None
    if alpha is not None:
        alpha_arr = np.asarray(alpha, dtype=np.float64)
        if not np.all((alpha_arr >= 0) & (alpha_arr <= 1)):
            raise Finding(f"{what}: alpha {alpha!r} accepted")
    if not (math.isfinite(gamma_f) and gamma_f >= 0 and (gamma_f > 0 or not star)):
        raise Finding(f"{what}: gamma {gamma!r} accepted")

    # ---- NaN with finite, valid, sane inputs
    weight_total = float(np.sum(np.where(valid, w, 0.0)))
    # finite arguments at any scale the checks accept give no NaN
    sane = bool(np.all(np.isfinite(x64)))
    if sane:
        for k, value in enumerate(results):
            if want_loss and k == 0 and reduction == "mean" and weight_total == 0:
                if not np.isnan(value):
                    raise Finding(f"{what}: mean over no weight is {value!r}, not nan")
                continue
            check_no_nan(f"{what} result {k}", value)

    # ---- against the reference, for moderate logits and parameters
    if reduction == "mean" and name != "grad_hess":
        w = common_scale_removed(w)  # a mean is the same for weights at any common scale
        weight_total = float(np.sum(np.where(valid, w, 0.0)))
    if not (sane and np.all(np.abs(x64) <= 50) and gamma_f <= 8 and float(np.max(w, initial=0)) <= 1e3
            and abs(beta_f) <= 10 and not tiny_weights(w)):
        return
    if alpha_arr is None:
        alpha_t = np.ones(shape)
    else:
        alpha_t = alpha_arr * y + (1.0 - alpha_arr) * (1.0 - y)
    if star:
        loss_e, grad_e, scale = star_reference(x64, y, valid, alpha_t, gamma_f, beta_f, w)
        hess_e = hess_scale = None
    else:
        loss_e, grad_e, hess_e, scale, hess_scale = sigmoid_reference(x64, y, valid, alpha_t,
                                                                      gamma_f, w)
    if name == "grad_hess":
        check_close(f"{what} grad", results[0], grad_e, scale, dtype)
        check_close(f"{what} hess", results[1], hess_e, hess_scale, dtype)
        return
    if reduction == "mean":
        denominator = weight_total
    elif reduction == "sum_over_positives":
        denominator = max(float(np.sum(np.where(valid, y, 0.0))), 1.0)
    else:
        denominator = 1.0
    divisor = denominator if denominator > 0 else 1.0
    if want_loss:
        if reduction == "none":
            check_close(f"{what} loss", results[0], loss_e, 0.0, dtype)
        elif denominator > 0:
            check_close(f"{what} loss", results[0], loss_e.sum() / denominator,
                        np.abs(loss_e).sum() / denominator, dtype)
    if name not in ("loss", "star_loss"):
        check_close(f"{what} grad", results[-1], grad_e / divisor, scale / divisor, dtype)


def softmax_case(src: Source, shape, x_values, x_dtype) -> None:
    x = place(src, x_values, x_dtype)
    ndim = len(shape)
    axis = src.choice((-1, 0, 1, ndim - 1, -ndim, ndim, 2, "0", None, 10**30, np.int8(0))) \
        if src.int(4) else -1
    try:
        index = operator.index(axis)
        axis_n = index % ndim if -ndim <= index < ndim and not isinstance(axis, bool) else None
    except TypeError:
        axis_n = None
    num_classes = shape[axis_n] if axis_n is not None else (shape[-1] if shape else 0)
    row_shape = shape[:axis_n] + shape[axis_n + 1:] if axis_n is not None else shape[:-1]
    labels = src.int(3) != 0
    ignore_index = src.choice((-100, -100, -1, num_classes, 0, num_classes - 1, 2**63 - 1, 1.0))
    if labels:
        raw = label_values(src, row_shape, num_classes,
                           ignore_index if isinstance(ignore_index, int) else -100)
        t = to_label_array(raw, safe_dtype(src.choice(LABEL_DTYPES)))
        if t is None:
            return
        t = place(src, t, t.dtype) if t.dtype.kind in "iu" else t
    else:
        rng = np.random.default_rng(src.seed())
        kind = src.choice(("one-hot", "smooth", "invalid"))
        moved = tuple(row_shape) + (num_classes,)
        if kind == "one-hot" and num_classes:
            values = np.zeros(tuple(row_shape) + (num_classes,))
            np.put_along_axis(values, rng.integers(0, num_classes, size=row_shape)[..., None],
                              1.0, axis=-1)
        else:
            values = rng.dirichlet(np.ones(max(num_classes, 1)), size=row_shape)[..., :num_classes]
            if kind == "invalid" and values.size:
                values.reshape(-1)[src.int(values.size)] = src.choice((-0.1, 1.5, float("nan")))
        values = values.reshape(moved)
        if axis_n is not None:
            values = np.moveaxis(values, -1, axis_n)
        t = place(src, values, safe_dtype(src.choice(TARGET_DTYPES)))
    alpha = src.choice((None, 0.25, "per-class", src.float(), "short", -0.5))
    if alpha == "per-class":
        alpha = np.random.default_rng(src.seed()).random(num_classes)
    elif alpha == "short":
        alpha = np.full(max(num_classes - 1, 0), 0.5)
    gamma = src.choice((2.0, 0.0, 0.5, 3.3, src.float(), -1.0, 2, 10**400, np.float64(1.0),
                        src.choice(EXTREME_GAMMAS)))
    weights = None
    if src.bool():
        w_shape = tuple(n if src.int(3) else 1 for n in row_shape)
        w_values = np.random.default_rng(src.seed()).random(w_shape) * src.choice(
            (1.0, 0.0, 5.0) + EXTREME_SCALES)
        if w_values.size and src.int(4) == 0:
            w_values.reshape(-1)[src.int(w_values.size)] = src.choice(
                (-1.0, float("nan"), float("inf"), 0.0))
        weights = place(src, w_values, safe_dtype(src.choice(("f8", "f4", "i8", ">f8"))))
    reduction = src.choice(("mean", "sum", "none", "sum_over_positives", None))
    name = src.choice(("softmax_loss", "softmax_grad", "softmax_loss_and_grad"))
    dtype = result_dtype_of(x)
    out_kind = src.choice(("none", "none", "fresh", "alias", "alias", "wrong-dtype",
                           "wrong-shape", "readonly"))
    out_shape = row_shape if (name == "softmax_loss") else shape
    out, aliased = make_out(src, out_kind, out_shape, dtype, {"logits": x, "targets": t,
                                                              "weights": weights})
    if out_kind == "fresh" and src.bool():
        alpha, aliased = alpha_inside(out, alpha)
    before = {k: np.copy(v) for k, v in (("logits", x), ("targets", t), ("weights", weights),
                                         ("alpha", alpha)) if isinstance(v, np.ndarray)}
    function = getattr(focal, name)
    kwargs = dict(axis=axis, reduction=reduction, weights=weights, ignore_index=ignore_index)
    try:
        with np.errstate(all="ignore"):
            result = function(x, t, alpha, gamma, out=out, **kwargs)
    except (TypeError, ValueError):
        return
    except MemoryError:
        raise Finding(f"{name}: MemoryError on {x.size} elements")

    global last_success
    last_success = (name, labels, reduction, out_kind, str(x.dtype))
    what = f"{name} x{shape} {x.dtype} axis={axis} targets {t.dtype} reduction={reduction} " \
           f"out={out_kind}"
    if dtype is None:
        raise Finding(f"{what}: logits of dtype {x.dtype} accepted")
    results = result if isinstance(result, tuple) else (result,)
    want_loss = name != "softmax_grad"
    for k, value in enumerate(results):
        if want_loss and k == 0:
            if reduction == "none":
                ok = isinstance(value, np.ndarray) and value.shape == row_shape and value.dtype == dtype
            else:
                ok = isinstance(value, np.generic) and value.dtype == dtype
        else:
            ok = isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype
        if not ok:
            raise Finding(f"{what}: result {k} has the wrong type, shape or dtype: {value!r:.200}")
    if isinstance(out, np.ndarray):
        receiver = results[0] if name == "softmax_loss" else results[-1]
        if receiver is not out:
            raise Finding(f"{what}: out= was not returned")
    for key, original in before.items():
        current = {"logits": x, "targets": t, "weights": weights, "alpha": alpha}[key]
        if key != aliased and not np.array_equal(original, current, equal_nan=True):
            raise Finding(f"{what}: {key} modified")
    if aliased is not None:
        again = dict(before)
        check_same_bits(what, results, function,
                        [again["logits"], again["targets"], again.get("alpha", alpha), gamma],
                        {**kwargs, "out": None, "weights": again.get("weights")})
    alpha = before.get("alpha", alpha)

    x64 = np.moveaxis(before["logits"].astype(np.float64), axis_n, -1)
    if labels:
        lab = before["targets"]
        if lab.dtype == np.uint64 and lab.size and int(lab.max()) >= 2**63:
            raise Finding(f"{what}: label {int(lab.max())} accepted")
        lab = lab.astype(np.int64)
        ignored = lab == ignore_index
        bad = ~ignored & ((lab < 0) | (lab >= num_classes))
        if np.any(bad):
            raise Finding(f"{what}: label {lab[bad].reshape(-1)[0]} accepted")
        safe = np.where(ignored, -1, lab).astype(np.int64)
        y = (safe[..., None] == np.arange(num_classes)).astype(np.float64)
        row_valid = ~ignored
    else:
        y = np.moveaxis(before["targets"].astype(np.float64), axis_n, -1)
        if not np.all((y >= 0) & (y <= 1)):
            raise Finding(f"{what}: target outside [0, 1] accepted")
        row_valid = np.ones(row_shape, bool)
    w = np.ones(row_shape) if weights is None else np.broadcast_to(
        before["weights"].astype(np.float64), row_shape)
    if not np.all((w >= 0) & np.isfinite(w)):
        raise Finding(f"{what}: weight outside [0, inf) accepted")
    try:
        gamma_f = float(gamma)
    except OverflowError:
        raise Finding(f"{what}: gamma {gamma!r} accepted") from None
    if not (math.isfinite(gamma_f) and gamma_f >= 0):
        raise Finding(f"{what}: gamma {gamma!r} accepted")
    if alpha is None:
        class_alpha = np.ones(num_classes)
    else:
        class_alpha = np.broadcast_to(np.asarray(alpha, np.float64), (num_classes,))
        if not np.all((class_alpha >= 0) & (class_alpha <= 1)):
            raise Finding(f"{what}: alpha {alpha!r} accepted")

    weight_total = float(np.sum(np.where(row_valid, w, 0.0)))
    sane = bool(np.all(np.isfinite(x64)))  # any finite scale of weights and gamma
    if sane:
        for k, value in enumerate(results):
            if want_loss and k == 0 and reduction == "mean" and weight_total == 0:
                if not np.isnan(value):
                    raise Finding(f"{what}: mean over no weight is {value!r}, not nan")
                continue
            check_no_nan(f"{what} result {k}", value)
    if reduction == "mean":
        w = common_scale_removed(w)
        weight_total = float(np.sum(np.where(row_valid, w, 0.0)))
    if not (sane and np.all(np.abs(x64) <= 50) and gamma_f <= 8 and not tiny_weights(w)
            and float(np.max(w, initial=0)) <= 1e3 and num_classes <= 2000 and x.size * num_classes <= 2_000_000):
        return
    loss_e, grad_e, scale = softmax_reference(x64, y, row_valid, class_alpha, gamma_f, w)
    denominator = weight_total if reduction == "mean" else 1.0
    divisor = denominator if denominator > 0 else 1.0
    if want_loss:
        if reduction == "none":
            check_close(f"{what} loss", results[0], loss_e, 0.0, dtype)
        elif denominator > 0:
            check_close(f"{what} loss", results[0], loss_e.sum() / denominator,
                        np.abs(loss_e).sum() / denominator, dtype)
    if name != "softmax_loss":
        check_close(f"{what} grad", np.moveaxis(results[-1], axis_n, -1), grad_e / divisor,
                    scale / divisor, dtype)


# --------------------------------------------------------------------------
# entry points


def _import_focal(instrument: bool) -> None:
    global focal, _core
    if instrument:
        import atheris
        with atheris.instrument_imports(include=["focal"]):
            import focal as module
    else:
        import focal as module
    from focal import _core as core
    focal, _core = module, core


def replay(paths) -> int:
    """Runs saved inputs (files, or every file in folders) through the checks."""
    _import_focal(False)
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path))
        else:
            files.append(path)
    for path in files:
        with open(path, "rb") as handle:
            one_input(handle.read())
    print(f"replayed {len(files)} inputs: no finding")
    return 0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":
        sys.exit(replay(sys.argv[2:]))
    import atheris
    _import_focal(True)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

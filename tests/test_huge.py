"""Huge arrays: more than 2**31 elements give correct sums, with no overflow in
the index arithmetic (iteration indices, chunk numbers, summation lanes,
counts of elements, rows and positives).

The logits are zero-stride views from np.broadcast_to, so a call reads more
than 2**31 elements from a few kilobytes; the targets are broadcast too or
small (at most 27 MB of int8 labels).  Each reduction is checked against its
closed form: the number of times each distinct element (or row) occurs times
its loss, computed by focal on a small array.  A sum that lost elements, a
count that overflowed a signed 32-bit integer, or plain (uncompensated)
summation over 2**31 terms would each be off by far more than the tolerance.
(Sizes stay below 2**32: an unsigned 32-bit wrap would need twice the time.)

Every test is marked ``huge``: the default run leaves them out,
``python -m pytest -m huge`` runs them (and CI does).  Each test makes one
call over about 2.1e9 elements on two threads (set for the module's
duration): 7 s (softmax) to 21 s (float64), 54 s for the module, measured on
a 2-core machine shared with other work (63 s of CPU time on the two
threads).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import focal

pytestmark = pytest.mark.huge

BIG = 2**31 + 5


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    threads = focal.get_num_threads()
    focal.set_num_threads(2)
    yield
    focal.set_num_threads(threads)


def assert_within_ulps(value, expected, dtype, ulps, what):
    """|value - expected| within `ulps` spacings of the result dtype at expected."""
    allowed = ulps * float(np.spacing(np.abs(np.asarray(expected, dtype=dtype))))
    assert type(value) is np.dtype(dtype).type, type(value)
    assert abs(float(value) - expected) <= allowed, (
        f"{what}: got {float(value)!r}, expected {expected!r} (off by "
        f"{abs(float(value) - expected) / max(allowed / ulps, 1e-300):.3g} ULP)")


def repeat_counts(pattern, m):
    """How often each entry of `pattern` occurs in np.resize(pattern, m)."""
    full, rest = divmod(m, len(pattern))
    return full + (np.arange(len(pattern)) < rest)


def test_one_axis_past_2_31_scalar_broadcast_sum():
    """2**31 + 5 copies of one float32 logit with a scalar-broadcast target:
    the sum is N * loss(v).  (test_pattern_of_values_float64_weighted_mean
    checks thousands of values in one call.)"""
    v, y = np.float32(0.7), 1.0
    x = np.broadcast_to(v, (BIG,))
    assert x.size > 2**31 and x.strides == (0,)
    value = focal.loss(x, np.full(1, y, np.float32), reduction="sum")
    # the element's loss in double (float32 results are summed in double)
    one = float(focal.loss(np.array([v], np.float64), np.array([y]), reduction="sum"))
    assert one > 0
    assert_within_ulps(value, BIG * one, np.float32, 1, f"sum at v={v}")


def test_pattern_of_values_float64_weighted_mean():
    """k logit values repeated over m rows (m * k > 2**31), hard targets and
    weights that vary by row (small real arrays of m values): the weighted
    mean, in float64, is the closed form to a few ULP -- which needs
    compensated summation over 2**31 terms and exact counts."""
    k = 4096
    m = BIG // k + 1
    values = np.linspace(-9.0, 7.0, k)          # a few thousand distinct logits
    x = np.broadcast_to(values, (m, k))
    assert x.size > 2**31
    rows = np.arange(m)
    targets = (rows % 3 == 0).astype(np.float64)[:, None]      # 1 on every third row
    weights = (np.where(rows < m // 2, 0.5, 2.0) * (rows % 7 != 6))[:, None]  # 0: masked
    value = focal.loss(x, targets, weights=weights, reduction="mean")
    # closed form: each distinct (target, weight) row class times its count
    row_loss = {y: math.fsum(focal.loss(values, np.full(k, y), reduction="none"))
                for y in (0.0, 1.0)}
    total, weight = [], []
    for y in (0.0, 1.0):
        for w in (0.5, 2.0):
            count = int(np.count_nonzero((targets[:, 0] == y) & (weights[:, 0] == w)))
            total.append(count * w * row_loss[y])
            weight.append(count * w * k)
    expected = math.fsum(total) / math.fsum(weight)
    assert_within_ulps(value, expected, np.float64, 4, "weighted mean")
    # the masked rows really count for nothing: the unweighted mean differs
    assert abs(float(value) - math.fsum(total) / (m * k)) > 1e-3 * expected


def test_class_indices_past_2_31_sum_over_positives():
    """Class-index targets of shape (2**31 // 80 + 1,) with a logit row
    broadcast over them: positives, background and ignored rows counted
    exactly; the sum over positives is the closed form."""
    c = 80
    m = 2**31 // c + 1
    row = np.linspace(-6.0, 2.0, c).astype(np.float32)
    x = np.broadcast_to(row, (m, c))
    assert x.size > 2**31
    pattern = np.arange(-1, c + 1, dtype=np.int8)      # ignored, every class, background
    labels = np.resize(pattern, m)
    value = focal.loss(x, labels, reduction="sum_over_positives")
    counts = dict(zip(pattern.tolist(), repeat_counts(pattern, m).tolist()))
    row64 = row.astype(np.float64)[None]
    total = math.fsum(
        counts[label] * float(focal.loss(row64, np.array([label]), reduction="sum"))
        for label in range(0, c + 1))
    positives = sum(counts[label] for label in range(c))
    assert positives > 2**24  # more than float32 could count exactly
    assert_within_ulps(value, total / positives, np.float32, 2, "sum over positives")


def test_softmax_past_2_31_elements_mean():
    """A softmax over 1000 classes with a logit row broadcast to 2,147,484
    rows (more than 2**31 elements) and class indices with ignored rows: the
    mean is the closed form."""
    c = 1000
    m = 2**31 // c + 1
    row = np.sin(np.arange(c) * 0.37).astype(np.float32) * 5
    x = np.broadcast_to(row, (m, c))
    assert x.size > 2**31
    pattern = np.concatenate([np.arange(0, c, 7, dtype=np.int16), [-100]])
    labels = np.resize(pattern, m)
    value = focal.softmax_loss(x, labels, reduction="mean")
    counts = dict(zip(pattern.tolist(), repeat_counts(pattern, m).tolist()))
    row64 = row.astype(np.float64)[None]
    total = math.fsum(
        n * float(focal.softmax_loss(row64, np.array([label]), reduction="sum"))
        for label, n in counts.items() if label != -100)
    rows = sum(n for label, n in counts.items() if label != -100)
    assert_within_ulps(value, total / rows, np.float32, 2, "softmax mean")

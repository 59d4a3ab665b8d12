"""Builders of test inputs: the same logical values in any dtype and memory layout."""
from __future__ import annotations

import re
import warnings

import numpy as np

LAYOUTS = ("C", "F", "strided", "reversed", "transposed", "misaligned", "readonly")


def arrange(values, dtype, layout: str = "C") -> np.ndarray:
    """`values` cast to `dtype` and stored in `layout`; equal to values.astype(dtype).

    strided: every other element of a larger array (on every axis);
    reversed: negative strides on the last axis; transposed: the last two
    axes swapped in memory; misaligned: at byte offset 1 of a uint8 buffer;
    readonly: a C-contiguous array with writeable=False.
    """
    v = np.asarray(values).astype(dtype)
    if layout == "C":
        result = v.copy(order="C")
    elif layout == "F":
        result = v.copy(order="F")
    elif layout == "strided":
        if v.ndim == 0:
            return v.copy()
        big = np.zeros(tuple(2 * n + 1 for n in v.shape), v.dtype)
        result = big[tuple(slice(1, None, 2) for _ in v.shape)]
        result[...] = v
        assert v.size < 2 or not (result.flags.c_contiguous or result.flags.f_contiguous)
    elif layout == "reversed":
        if v.ndim == 0:
            return v.copy()
        result = v[..., ::-1].copy()[..., ::-1]
    elif layout == "transposed":
        if v.ndim < 2:
            return v.copy()
        result = np.swapaxes(np.swapaxes(v, -1, -2).copy(), -1, -2)
    elif layout == "misaligned":
        buffer = np.zeros(v.size * v.itemsize + 1, np.uint8)
        result = np.ndarray(v.shape, v.dtype, buffer=buffer, offset=1)
        result[...] = v
        assert v.size == 0 or v.itemsize == 1 or not result.flags.aligned
    elif layout == "readonly":
        result = v.copy()
        result.flags.writeable = False
    else:
        raise ValueError(layout)
    assert result.dtype == v.dtype and result.shape == v.shape
    assert np.array_equal(result, v, equal_nan=v.dtype.kind == "f")
    return result


def logit_values(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Moderate logits (|x| <= 30) as float64, exactly representable in `dtype`.

    A few fixed values (0, +-30, tiny, a half-way one) are placed among the
    random ones so that saturated and central logits always occur.
    """
    v = np.clip(rng.normal(0.0, 6.0, size=shape), -30.0, 30.0)
    flat = v.reshape(-1)
    specials = np.array([0.0, 30.0, -30.0, 1e-3, -17.5, 2.5])
    k = min(flat.size, specials.size)
    flat[rng.permutation(flat.size)[:k]] = specials[:k]
    if np.dtype(dtype).kind in "iu":
        v = np.round(v)
    return v.astype(dtype).astype(np.float64)


def soft_target_values(rng: np.random.Generator, shape) -> np.ndarray:
    """Targets in [0, 1]: a mix of exact 0, exact 1 and soft values."""
    choice = rng.integers(0, 3, size=shape)
    soft = rng.uniform(0.0, 1.0, size=shape)
    return np.where(choice == 0, 0.0, np.where(choice == 1, 1.0, soft))


def hard_target_values(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(0, 2, size=shape).astype(np.float64)


def label_values(rng: np.random.Generator, shape, num_classes: int, content: str, ignore_index: int):
    """Class indices of `shape` (logits.shape[:-1]) as int64.

    mixed: classes, background rows (num_classes) and ignored rows, each
    present when there are enough rows; positives: classes only;
    background: background rows only; ignored: ignored rows only.
    """
    if content == "positives":
        return rng.integers(0, max(num_classes, 1), size=shape) if num_classes else np.full(shape, 0)
    if content == "background":
        return np.full(shape, num_classes, dtype=np.int64)
    if content == "ignored":
        return np.full(shape, ignore_index, dtype=np.int64)
    assert content == "mixed"
    labels = rng.integers(0, num_classes + 1, size=shape).astype(np.int64)
    flat = labels.reshape(-1)
    order = rng.permutation(flat.size)
    fixed = [num_classes, ignore_index] + ([0] if num_classes else [])
    for position, value in zip(order, fixed):
        flat[position] = value
    ignored = rng.uniform(size=flat.size) < 0.2
    flat[ignored] = ignore_index
    return labels


class Index:
    """An integer by `__index__` alone, as `typing.SupportsIndex` promises:
    what the functions take for an axis or an ignore_index."""

    def __init__(self, value: int):
        self.value = value

    def __index__(self) -> int:
        return self.value


def assert_warns_once_at(filename: str, calls, finish) -> None:
    """Each of `calls`, (message pattern, function), gives exactly one warning
    (every warning recorded: the "always" filter), a UserWarning whose
    message matches the pattern, attributed to `filename` (the calling
    test's own line); finish(result) completes the call (a backward pass, a
    Dask compute, JAX's block_until_ready)."""
    for message, call in calls:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            finish(call())
        assert len(record) == 1, [str(w.message) for w in record]
        assert issubclass(record[0].category, UserWarning)
        assert re.match(message, str(record[0].message)), str(record[0].message)
        assert record[0].filename == filename, record[0].filename

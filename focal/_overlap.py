"""out= over an input in reverse order (out=logits[::-1]), in bounded memory.

An elementwise result written over its own input element (out=logits) needs
nothing: each element is read before it is written.  When out views the
input's elements in another order, NumPy's iterator would copy the whole
input first.  The common other order is a reversal of some axes
(logits[::-1], logits[:, ::-1], ...): element I then writes over the input of
its mirror element phi(I), and phi(phi(I)) = I.  So the elements are taken in
pairs of small blocks (B, phi(B)): both blocks' inputs are copied, then both
blocks' results written; a write lands only on the inputs of its own pair,
already copied.  Every other overlap keeps NumPy's copy.

The values written are those of a call without overlap, bit for bit: each
element's result depends on that element alone, and the reductions are taken
from a full pass over the untouched inputs made before anything is written.
"""
from __future__ import annotations

import math
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

# elements of one block: a pair of float64 blocks is 256 KiB
BLOCK_ELEMENTS = 1 << 14

Index = Tuple[slice, ...]


def reflected_axes(out: np.ndarray, inputs: Sequence[np.ndarray]) -> Optional[Tuple[int, ...]]:
    """The axes along which every one of `inputs` is `out` reversed.

    Each input must view exactly out's elements, element for element, in the
    order of out with those axes reversed (same shape and item size).  ()
    means they view them in out's own order (an exact alias); None, that some
    input overlaps out in any other way.
    """
    common: Optional[Tuple[int, ...]] = None
    for a in inputs:
        if a.shape != out.shape or a.itemsize != out.itemsize:
            return None
        axes = []
        index = []
        for d, n in enumerate(out.shape):
            if n > 1 and a.strides[d] != out.strides[d]:
                if a.strides[d] != -out.strides[d]:
                    return None
                axes.append(d)
                index.append(slice(None, None, -1))
            else:
                index.append(slice(None))
        # (ctypes.data, not __array_interface__: reading the latter makes
        # NumPy keep a growing cache)
        # (index + [...]: a view even of a 0-d array, where out[()] is a scalar)
        if out[tuple(index) + (Ellipsis,)].ctypes.data != a.ctypes.data:
            return None
        if common is not None and tuple(axes) != common:
            return None
        common = tuple(axes)
    return common


def paired_blocks(shape: Tuple[int, ...], reflected: Sequence[int], whole_last: bool,
                  limit: int = BLOCK_ELEMENTS) -> Iterator[Tuple[Index, Index]]:
    """Pairs (B, phi(B)) of blocks (tuples of slices, one per axis) covering
    every index of `shape` once, phi reversing the `reflected` axes.

    A block holds at most 2 * limit elements, unless `whole_last` (the last
    axis is never cut: softmax rows, class-index targets) and one row is
    longer.  A block that is its own mirror comes as (B, B).
    """
    ndim = len(shape)
    flips = set(reflected)

    def walk(d: int, block: List[slice], mirror: List[slice],
             same: bool) -> Iterator[Tuple[Index, Index]]:
        rest = math.prod(shape[d:])
        if d == ndim or rest <= limit or (whole_last and d == ndim - 1):
            whole = [slice(None)] * (ndim - d)
            yield tuple(block + whole), tuple(mirror + whole)
            return
        n = shape[d]
        inner = rest // n
        step = max(1, limit // inner)
        split = inner > limit  # one index at a time, cut further inside
        whole = [slice(None)] * (ndim - d - 1)

        def emit(part: slice, mirrored: slice, alike: bool) -> Iterator[Tuple[Index, Index]]:
            if split:
                yield from walk(d + 1, block + [part], mirror + [mirrored], alike)
            else:
                yield tuple(block + [part] + whole), tuple(mirror + [mirrored] + whole)

        if d not in flips:
            for s in range(0, n, step):
                part = slice(s, min(s + step, n))
                yield from emit(part, part, same)
        elif not same:
            # the block and its mirror lie apart: all of this axis, against its reverse
            for s in range(0, n, step):
                e = min(s + step, n)
                yield from emit(slice(s, e), slice(n - e, n - s), False)
        else:
            # one region, its own mirror: its first half against its second
            s = 0
            while s < n - s:
                e = min(s + step, n - s)
                if n - e < e:  # the range meets its mirror: the centre, one block
                    centre = slice(s, n - s)
                    yield from emit(centre, centre, True)
                    break
                yield from emit(slice(s, e), slice(n - e, n - s), False)
                s = e

    yield from walk(0, [], [], True)


def block_of(a: Optional[np.ndarray], index: Index, ndim: int, leading: bool = False):
    """The part of `a` that meets the block `index` of an array of `ndim`
    dimensions: `a` broadcasts against it from the right (dense targets,
    weights; a length-1 axis is taken whole), or with `leading` from the left
    (class indices: the block's axes but the last)."""
    if a is None:
        return None
    if leading:
        return view(a, index[:a.ndim])
    own = index[ndim - a.ndim:]
    return view(a, tuple(slice(None) if n == 1 else part for n, part in zip(a.shape, own)))


def view(a: np.ndarray, index: Index) -> np.ndarray:
    """a[index], an array even when 0-d (a[()] would be a scalar)."""
    return a[index + (Ellipsis,)]

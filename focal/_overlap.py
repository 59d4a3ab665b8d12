"""out= over an input in reverse order (out=logits[::-1]), in bounded memory.

An elementwise result written over its own input element (out=logits) needs
nothing: each element is read before it is written.  When out views the
input's elements in another order, NumPy's iterator would copy the whole
input first.  The common other order is a reversal of some axes
(logits[::-1], logits[:, ::-1], ...): element I then writes over the input of
its mirror element phi(I), and phi(phi(I)) = I.  So the elements are taken in
pairs of small blocks (B, phi(B)): both blocks' inputs are copied, then both
blocks' results written; a write lands only on the inputs of its own pair,
already copied.  Every other overlap is written by tiles in a safe order
(below), or, when none exists in bounded memory, through a copy.

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
    axis is never cut: softmax rows) and one row is longer.  A block that is its own mirror comes as (B, B).
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


def class_block(rows: np.ndarray, index: Index, classes: int, ignore: int) -> np.ndarray:
    """The class indices `rows` of the block `index`'s rows as the targets of
    the block (those rows, classes a to b - 1 of `classes`): a class of the range
    becomes c - a, any other class and the background b - a (the block's
    background), an ignored row stays ignored.  Each element's target is
    then that of the whole row, so a long row is cut like dense targets.
    A new array of the block's rows, unless the block holds whole rows."""
    first, stop, _ = index[-1].indices(classes)
    if first == 0 and stop == classes:
        return rows
    # (int64: the range's start need not fit the labels' own type)
    c = rows.astype(np.int64)
    own = np.where((c >= first) & (c < stop), c - first, stop - first)
    return np.where(c == ignore, ignore, own)


def view(a: np.ndarray, index: Index) -> np.ndarray:
    """a[index], an array even when 0-d (a[()] would be a scalar)."""
    return a[index + (Ellipsis,)]


# ---------------------------------------------------------------------------
# Any other overlap of out= with an input (a shifted or transposed view, out
# over part of the targets or weights): blocks computed apart, committed late.
#
# The iteration is cut into tiles of at most BLOCK_ELEMENTS elements.  Each
# tile's results are computed, from its untouched inputs, into a scratch
# array; the scratch is copied into out= (committed) only once every tile
# whose inputs that part of out covers has been computed.  A depth-first walk
# orders this: computing tile k, then the uncomputed tiles that k's part of
# out would overwrite (and theirs), then committing k.  The tiles held at once
# are the walk's depth: 1 or 2 for a shift (walked from the end it writes
# towards) or a transpose (tile (I, J) against (J, I)), the length of a cycle
# of tiles for other permutations of axes and reversals (4 for a rotation of a
# square, 6 for a rotation of a cube and a reversal), which then take tiles
# of half or a quarter the size, twice or four times as many pending.  A
# layout that would hold more keeps the copy of the inputs instead.

# tiles in scratch at once: 4 float64 tiles of BLOCK_ELEMENTS are 512 KiB
MAX_PENDING = 4

# an overlapping input at most this large is simply copied (per-class alpha,
# short broadcast weights)
COPY_LIMIT = 1 << 16


class Tiling:
    """The tiles of an iteration of `shape`, numbered 0 .. count - 1.

    Tiles hold at most `limit` elements, the last axis whole when
    `whole_last` (softmax rows: one row may then exceed `limit`).  `cubes`:
    cubes of one edge on every axis cut, placed symmetrically (from both
    ends of an axis towards its middle), so that the tiles of an out= that is
    the input with axes permuted or reversed (out=logits.T, logits.T[::-1],
    a rotation) are exactly tiles of the input; otherwise slabs, runs of
    whole trailing axes (a shifted out= meets the next slab only).
    """

    def __init__(self, shape: Tuple[int, ...], whole_last: bool, cubes: bool,
                 limit: Optional[int] = None) -> None:
        limit = BLOCK_ELEMENTS if limit is None else limit
        tile = list(shape)
        cuttable = list(range(len(shape) - 1 if whole_last else len(shape)))
        fixed = math.prod(shape[d] for d in range(len(shape)) if d not in cuttable)
        budget = max(1, limit // max(fixed, 1))
        if cubes:
            self.cuts = _cube_cuts(shape, cuttable, budget)
        else:
            while cuttable and math.prod(tile[d] for d in cuttable) > budget:
                # the first axis cut as finely as needed, then the next
                d = next(d for d in cuttable if tile[d] > 1)
                inner = math.prod(tile[e] for e in cuttable if e > d)
                tile[d] = max(1, budget // max(inner, 1))
            self.cuts = [list(range(0, n, t)) + [n] if n else [0]
                         for n, t in zip(shape, tile)]
        self.shape = shape
        self.counts = [len(c) - 1 for c in self.cuts]
        self.count = math.prod(self.counts)

    def index(self, k: int) -> Index:
        """Tile k's slices (C order of the tile grid)."""
        parts = []
        for cuts, c in zip(reversed(self.cuts), reversed(self.counts)):
            k, i = divmod(k, c)
            parts.append(slice(cuts[i], cuts[i + 1]))
        return tuple(reversed(parts))


def _cube_cuts(shape: Tuple[int, ...], cuttable: List[int], budget: int) -> List[List[int]]:
    """Each axis's tile boundaries for cubes of at most `budget` elements:
    one edge for every axis longer than it (axes of the same length are cut
    alike, so a transpose maps tiles onto tiles), runs of that edge from both
    ends of the axis and the rest in the middle halved around the centre (the
    same cuts seen from either end, so a reversal does too)."""
    whole = set(range(len(shape))) - set(cuttable)
    edge = 1
    while True:
        cut = [d for d in cuttable if d not in whole]
        if not cut:
            break
        edge = max(1, int(budget ** (1.0 / len(cut))))
        while edge > 1 and edge ** len(cut) > budget:
            edge -= 1
        while (edge + 1) ** len(cut) <= budget:
            edge += 1
        short = [d for d in cut if shape[d] <= edge]
        if not short:
            break
        for d in short:  # an axis no longer than the edge stays whole
            whole.add(d)
            budget = max(1, budget // max(shape[d], 1))
    cuts = []
    for d, n in enumerate(shape):
        if d in whole or n <= edge:
            cuts.append([0, n] if n else [0])
            continue
        runs = n // (2 * edge)
        low = [i * edge for i in range(runs + 1)]
        high = [n - i * edge for i in range(runs, -1, -1)]
        middle = high[0] - low[-1]  # < 2 * edge, around the centre
        centre = [] if middle <= edge else sorted({n // 2, n - n // 2})
        cuts.append(sorted(set(low + centre + high)))
    return cuts


def extent(a: Optional[np.ndarray]) -> Tuple[int, int]:
    """[first byte, last byte + 1) that `a` reaches; (0, 0) for none."""
    if a is None or a.size == 0:
        return 0, 0
    start = a.ctypes.data
    low = sum(s * (n - 1) for s, n in zip(a.strides, a.shape) if s < 0)
    high = sum(s * (n - 1) for s, n in zip(a.strides, a.shape) if s > 0)
    return start + low, start + high + a.itemsize


def commit_order(count: int, out_part, in_parts, overlap,
                 max_pending: int = MAX_PENDING) -> Optional[np.ndarray]:
    """The order of computing and committing `count` tiles, or None if every
    order tried holds more than `max_pending` tiles at once.

    out_part(k): tile k's part of out; in_parts(k): its parts of the inputs
    that meet out; overlap(a, b): whether two views share memory.  The order
    is an int64 array: k for "compute tile k", ~k for "commit tile k".
    """
    width = None
    lows: Optional[np.ndarray] = None
    highs: Optional[np.ndarray] = None
    for k in range(count):
        extents = [extent(p) for p in in_parts(k)]
        if lows is None:
            width = len(extents)
            lows = np.empty((count, width), np.int64)
            highs = np.empty((count, width), np.int64)
        lows[k], highs[k] = zip(*extents)  # type: ignore[index]
    if lows is None or highs is None:
        return None
    lows_, highs_ = lows, highs  # (not None from here on, for the closure below)

    def readers(k: int) -> List[int]:
        """The other tiles whose inputs tile k's part of out overwrites."""
        part = out_part(k)
        low, high = extent(part)
        near = np.nonzero(((lows_ < high) & (highs_ > low)).any(axis=1))[0]
        return [int(j) for j in near if j != k and any(
            p is not None and overlap(p, part) for p in in_parts(int(j)))]

    for order in (range(count), range(count - 1, -1, -1)):
        events = _walk(count, order, readers, max_pending)
        if events is not None:
            return events
    return None


def _walk(count: int, order, readers, max_pending: int) -> Optional[np.ndarray]:
    """The depth-first order (see above) from roots in `order`; None if it
    would hold more than `max_pending` tiles."""
    events = np.empty(2 * count, np.int64)
    done = np.zeros(count, bool)
    n = 0
    for root in order:
        if done[root]:
            continue
        done[root] = True
        events[n] = root
        n += 1
        stack = [(root, iter(readers(root)))]
        while stack:
            k, rest = stack[-1]
            for j in rest:
                if not done[j]:
                    if len(stack) == max_pending:
                        return None
                    done[j] = True
                    events[n] = j
                    n += 1
                    stack.append((j, iter(readers(j))))
                    break
            else:
                stack.pop()
                events[n] = ~k
                n += 1
    return events

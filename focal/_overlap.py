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

import itertools
import math
import mmap
import sys
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

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
# whose inputs that part of out covers has been computed.  The orders below
# are generated lazily from the tiles' numbers, so that planning and writing
# keep a fixed amount of state whatever the number of tiles:
#
# - streamed: the tiles in number order, forwards or backwards, each
#   committed as soon as it is computed but for the first few, held to the
#   end.  Valid when no tile committed at once has its out meet the inputs of
#   a tile still to come, which is checked exactly for every tile against
#   all the later tiles' inputs together (a few boxes).  This is memmove's
#   order for out shifted from an input, in any layout: 1 tile pending, or 2
#   where the shift wraps around (out one element back from Fortran-order
#   logits: tile 0's out lands on the last tile's inputs, so tile 0 is held).
# - cycles: each tile's out is exactly the inputs of one tile (out=logits.T,
#   a rotation, a cube's axes cycled: tiles placed symmetrically map onto
#   tiles), found from the address of the out's first element: each cycle
#   of tiles is computed whole, then committed, from its smallest tile; as
#   many pending as the cycle is long (4 for a rotation of a square, 6 for a
#   rotation of a cube and a reversal), which then take tiles of half or a
#   quarter the size, twice or four times as many pending.
# - zipped: out reversed and shifted from an input (out=b[:-1][::-1] over
#   logits b[1:], rows shifted and reversed): a tile's out lands near the
#   mirror of the tile, a tile or two from it, so no tile maps onto a tile.
#   The tiles are computed from both ends of the part of the grid whose out
#   meets an input, alternately, towards the middle, and each is committed
#   as soon as no tile still to compute reads what it covers (checked
#   against the few boxes of the tiles left, a range of tile numbers).  A
#   tile then waits for one or two tiles from the other end: 3 pending.
# - walked: any other layout of at most WALK_TILES tiles: a depth-first walk
#   (compute tile k, then the uncomputed tiles that k's part of out would
#   overwrite, and theirs, then commit k) over a table of the tiles' extents.
#
# A layout that none of these writes within the pending tiles allowed (a
# non-square transpose, out=logits.reshape(n, m).T: an out tile meets the
# inputs of dozens of tiles) keeps the copy of the inputs instead.

# tiles in scratch at once: 4 float64 tiles of BLOCK_ELEMENTS are 512 KiB
MAX_PENDING = 4

# the most tiles the depth-first walk orders (its tables: 72 KiB)
WALK_TILES = 1024

# an overlapping input at most this large is simply copied (per-class alpha,
# short broadcast weights)
COPY_LIMIT = 1 << 16


class _Cuts:
    """One axis's tile boundaries 0 = cut(0) < ... < cut(count) = n, computed
    rather than listed: runs of `step` from the start, or (`symmetric`) runs
    of `step` from both ends and the rest in the middle halved around the
    centre (the same cuts seen from either end)."""

    def __init__(self, n: int, step: int, symmetric: bool) -> None:
        self.n, self.step = n, step
        self.runs = -1  # not symmetric
        if symmetric and n > step:
            self.runs = runs = n // (2 * step)
            middle = n - 2 * runs * step  # < 2 * step, around the centre
            self.centre = [] if middle <= step else sorted({n // 2, n - n // 2})
            self.skip = 1 if middle == 0 else 0  # the last run from the start ends the first from the end
            self.count = 2 * (runs + 1) + len(self.centre) - self.skip - 1
        else:
            self.count = -(-n // step)

    def cut(self, i: int) -> int:
        if self.runs < 0:
            return min(i * self.step, self.n)
        if i <= self.runs:
            return i * self.step
        i -= self.runs + 1
        if i < len(self.centre):
            return self.centre[i]
        i -= len(self.centre)
        return self.n - (self.runs - i - self.skip) * self.step

    def find(self, e: int) -> int:
        """The tile holding element e."""
        low, high = 0, self.count - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self.cut(middle) <= e:
                low = middle
            else:
                high = middle - 1
        return low


class Tiling:
    """The tiles of an iteration of `shape`, numbered 0 .. count - 1 (C order
    of the grid of tiles); each tile's bounds are computed from its number.

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
            self.axes = _cube_cuts(shape, cuttable, budget)
        else:
            while cuttable and math.prod(tile[d] for d in cuttable) > budget:
                # the first axis cut as finely as needed, then the next
                d = next(d for d in cuttable if tile[d] > 1)
                inner = math.prod(tile[e] for e in cuttable if e > d)
                tile[d] = max(1, budget // max(inner, 1))
            self.axes = [_Cuts(n, max(t, 1), False) for n, t in zip(shape, tile)]
        self.shape = shape
        self.counts = [a.count for a in self.axes]
        self.count = math.prod(self.counts)

    def position(self, k: int) -> List[int]:
        """Tile k's place on each axis of the grid."""
        place = []
        for c in reversed(self.counts):
            k, i = divmod(k, c)
            place.append(i)
        return place[::-1]

    def index(self, k: int) -> Index:
        """Tile k's slices."""
        return tuple(slice(a.cut(i), a.cut(i + 1)) for a, i in zip(self.axes, self.position(k)))

    def find(self, element: Sequence[int]) -> int:
        """The number of the tile holding an element (an index per axis)."""
        k = 0
        for a, e in zip(self.axes, element):
            k = k * a.count + a.find(e)
        return k

    def span(self, first: int, last: int) -> List[Index]:
        """Boxes holding exactly the tiles first .. last (numbers in C
        order): those sharing the two ends' places on the leading axes, then
        the rest of first's row of tiles, the rows between, the start of
        last's row (at most 2 * ndim + 1 boxes)."""
        if first > last:
            return []
        low, high = self.position(first), self.position(last)
        ndim = len(self.axes)

        def tiles(d: int, i: int, j: int) -> slice:  # the tiles i .. j - 1 of axis d
            return slice(self.axes[d].cut(i), self.axes[d].cut(j))

        head: List[slice] = []
        d = 0
        while d < ndim and low[d] == high[d]:
            head.append(tiles(d, low[d], low[d] + 1))
            d += 1
        if d == ndim:
            return [tuple(head)]
        boxes = []
        for place, forward in ((low, True), (high, False)):
            # from `place` to the end (start) of its row of tiles along axis d
            fixed = head + [tiles(d, place[d], place[d] + 1)]
            for e in range(d + 1, ndim):
                i = place[e]
                rest = tiles(e, i + 1, self.counts[e]) if forward else tiles(e, 0, i)
                if rest.start < rest.stop:
                    boxes.append(tuple(fixed + [rest] + [slice(None)] * (ndim - e - 1)))
                fixed.append(tiles(e, i, i + 1))
            boxes.append(tuple(fixed))
        if low[d] + 1 < high[d]:
            boxes.append(tuple(head + [tiles(d, low[d] + 1, high[d])]
                               + [slice(None)] * (ndim - d - 1)))
        return boxes

    def beyond(self, k: int, forward: bool) -> List[Index]:
        """Boxes (slices per axis) holding exactly the tiles after k, or
        before k: one for each axis, the tiles that share k's place on the
        axes before it and come after (before) it on that axis."""
        place = self.position(k)
        boxes = []
        for d, (a, i) in enumerate(zip(self.axes, place)):
            rest = slice(a.cut(i + 1), a.n) if forward else slice(0, a.cut(i))
            if rest.start < rest.stop:
                head = tuple(slice(b.cut(j), b.cut(j + 1)) for b, j in zip(self.axes, place[:d]))
                boxes.append(head + (rest,) + (slice(None),) * (len(place) - d - 1))
        return boxes


def _cube_cuts(shape: Tuple[int, ...], cuttable: List[int], budget: int) -> List[_Cuts]:
    """Each axis's tile boundaries for cubes of at most `budget` elements:
    one edge for every axis longer than it (axes of the same length are cut
    alike, so a transpose maps tiles onto tiles), placed symmetrically (so a
    reversal does too)."""
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
    return [_Cuts(n, max(n, 1), False) if d in whole else _Cuts(n, edge, True)
            for d, n in enumerate(shape)]


def extent(a: Optional[np.ndarray]) -> Tuple[int, int]:
    """[first byte, last byte + 1) that `a` reaches; (0, 0) for none."""
    if a is None or a.size == 0:
        return 0, 0
    start = a.ctypes.data
    low = sum(s * (n - 1) for s, n in zip(a.strides, a.shape) if s < 0)
    high = sum(s * (n - 1) for s, n in zip(a.strides, a.shape) if s > 0)
    return start + low, start + high + a.itemsize


def _mapped(a: np.ndarray) -> bool:
    """Whether `a`'s memory is a memory-mapped file's (np.memmap, np.load with
    mmap_mode, np.frombuffer over an mmap.mmap or a memoryview of one): the
    root of its bases, through arrays and memoryviews."""
    base: object = a
    while isinstance(base, (np.ndarray, memoryview)):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    return isinstance(base, mmap.mmap)


# a mapping of a file: (first address, end address, file offset, file id, shared)
_Mapping = Tuple[int, int, int, Tuple[str, str], bool]


def _file_mappings() -> List[_Mapping]:
    """The process's mappings of files, from Linux's /proc/self/maps.  A
    write through a shared one shows in every other mapping of those bytes,
    private (copy-on-write) ones included where they have not been written."""
    mappings = []
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) < 5 or fields[4] == "0":
                continue  # no file (an inode of 0)
            first, end = (int(part, 16) for part in fields[0].split("-"))
            mappings.append((first, end, int(fields[2], 16), (fields[3], fields[4]),
                             fields[1][3:4] == "s"))
    return mappings


def _file_pieces(a: np.ndarray, mappings: Sequence[_Mapping], shared_only: bool
                 ) -> List[Tuple[Tuple[str, str], int, int, int]]:
    """The parts of `a`'s extent that file mappings (shared ones only, with
    shared_only) hold: (file id, first file offset, end file offset, address
    minus file offset)."""
    low, high = extent(a)
    pieces = []
    for first, end, offset, file, shared in mappings:
        if (shared or not shared_only) and first < high and low < end:
            part_low, part_high = max(low, first), min(high, end)
            shift = first - offset
            pieces.append((file, part_low - shift, part_high - shift, shift))
    return pieces


def file_aliases(out: np.ndarray, inputs: Sequence[Optional[np.ndarray]]) -> bool:
    """Whether `out` shares bytes of a file with one of `inputs` through
    another memory mapping of it (two np.memmap of one file): addresses do not
    show such an overlap, which NumPy's may_share_memory misses too.  Linux
    only (/proc/self/maps); False elsewhere, and at once where out or every
    input is ordinary memory."""
    mapped = [a for a in inputs if a is not None and a.size and _mapped(a)]
    if not (mapped and out.size and _mapped(out) and sys.platform.startswith("linux")):
        return False
    try:
        mappings = _file_mappings()
    except OSError:  # (no /proc: nothing to tell)
        return False
    # (out's writes reach other mappings only through a shared mapping)
    out_pieces = _file_pieces(out, mappings, shared_only=True)
    for a in mapped:
        for file, first, end, shift in _file_pieces(a, mappings, shared_only=False):
            for out_file, out_first, out_end, out_shift in out_pieces:
                # the same bytes of one file at another address
                if (file == out_file and first < out_end and out_first < end
                        and shift != out_shift):
                    return True
    return False


def _layout(a: np.ndarray) -> Optional[List[Tuple[int, int, int]]]:
    """(|stride|, length, axis) of the axes of more than one element, by
    decreasing stride; None unless every stride spans everything the smaller
    axes cover (no two elements at one address, each address decoded by
    division)."""
    axes = sorted(((abs(s), n, d) for d, (s, n) in enumerate(zip(a.strides, a.shape)) if n > 1),
                  reverse=True)
    reach = a.itemsize
    for stride, n, _ in reversed(axes):
        if stride < reach:
            return None
        reach += stride * (n - 1)
    return axes


def _element_at(a: np.ndarray, address: int) -> Optional[List[int]]:
    """The index of a's element at byte `address`, or None."""
    axes = _layout(a)
    offset = address - extent(a)[0]
    if axes is None or offset < 0:
        return None
    element = [0] * a.ndim
    for stride, n, d in axes:
        i, offset = divmod(offset, stride)
        if i >= n:
            return None
        element[d] = i if a.strides[d] > 0 else n - 1 - i
    return element if offset == 0 else None


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two views without repeated addresses hold the same bytes."""
    layout_a, layout_b = _layout(a), _layout(b)
    return (layout_a is not None and layout_b is not None and a.itemsize == b.itemsize
            and extent(a) == extent(b)
            and [(s, n) for s, n, _ in layout_a] == [(s, n) for s, n, _ in layout_b])


def commit_order(tiling: Tiling, out_part, box_inputs, overlap,
                 max_pending: int = MAX_PENDING) -> Optional[Iterable[int]]:
    """The order of computing and committing the tiles (see above), or None
    if no order tried holds at most `max_pending` tiles at once.

    out_part(k): tile k's part of out; box_inputs(box): the parts of the
    inputs that meet out (None for the others) over a box of the iteration
    (slices per axis); overlap(a, b): whether two views share memory.  The
    order is an iterable, generated as it is read: k for "compute tile k",
    ~k for "commit tile k".
    """
    count = tiling.count
    for forward in (True, False):
        held = _held(tiling, forward, out_part, box_inputs, overlap, max_pending)
        if held is not None:
            return _streamed(count, forward, held)
    wholes = box_inputs((slice(None),) * len(tiling.shape))

    def step(k: int) -> Optional[int]:
        return _cycle_step(tiling, out_part(k), wholes, overlap)
    if _cycles_hold(count, step, max_pending):
        return _cycled(count, step)

    def zipped() -> Iterator[Optional[int]]:
        return _zipped(tiling, out_part, box_inputs, wholes, overlap, max_pending)
    if all(event is not None for event in zipped()):
        return (event for event in zipped() if event is not None)
    if count <= WALK_TILES:
        return _walked(count, out_part, lambda k: box_inputs(tiling.index(k)), overlap,
                       max_pending)
    return None


def _held(tiling: Tiling, forward: bool, out_part, box_inputs, overlap,
          max_pending: int) -> Optional[int]:
    """How many tiles, first in the order, a stream forwards (backwards)
    holds to the end; None if more than max_pending - 1."""
    count = tiling.count
    held = 0
    for i in range(count - 1):  # (the last tile has none after it)
        k = i if forward else count - 1 - i
        part = out_part(k)
        if any(p is not None and overlap(p, part)
               for box in tiling.beyond(k, forward) for p in box_inputs(box)):
            if i + 2 > max_pending:  # tiles 0 .. i held, and the one computed
                return None
            held = i + 1
    return held


def _streamed(count: int, forward: bool, held: int) -> Iterator[int]:
    tiles = iter(range(count) if forward else range(count - 1, -1, -1))
    first = [next(tiles) for _ in range(held)]
    yield from first
    for k in tiles:
        yield k
        yield ~k
    for k in reversed(first):
        yield ~k


def _cycle_step(tiling: Tiling, part: np.ndarray, wholes: Sequence[Optional[np.ndarray]],
                overlap) -> Optional[int]:
    """The tile whose inputs `part` (a tile's out) is exactly; None if it
    meets no input; -1 if neither."""
    found = None
    for a in wholes:
        if a is None or not overlap(a, part):
            continue
        element = _element_at(a, extent(part)[0]) if a.shape == tiling.shape else None
        if element is None:
            return -1
        j = tiling.find(element)
        if found not in (None, j) or not _same_memory(part, view(a, tiling.index(j))):
            return -1
        found = j
    return found


def _cycles_hold(count: int, step, max_pending: int) -> bool:
    """Whether every tile's out meets no input or lies on a cycle of tiles
    (k, step(k), ...) no longer than max_pending."""
    for k in range(count):
        j, length = step(k), 1
        while j is not None and j != k:
            if j < 0 or length == max_pending:
                return False
            j, length = step(j), length + 1
        if j is None and length > 1:  # a chain ending on a tile that meets nothing
            return False
    return True


def _cycled(count: int, step) -> Iterator[int]:
    for k in range(count):
        cycle = [k]
        j = step(k)
        while j is not None and j != k:
            cycle.append(j)
            j = step(j)
        if min(cycle) == k:
            yield from cycle
            yield from (~j for j in cycle)


def _zipped(tiling: Tiling, out_part, box_inputs, wholes: Sequence[Optional[np.ndarray]],
            overlap, max_pending: int) -> Iterator[Optional[int]]:
    """The zipped order (see above), generated as it is read; a last None
    if it would hold more than max_pending tiles.  Run once to check it, once
    to write: it keeps no table, and it is the same order both times (it
    depends on the layout alone)."""
    count = tiling.count

    def meets(k: int, boxes: Sequence[Index]) -> bool:
        part = out_part(k)
        return any(p is not None and overlap(p, part) for box in boxes for p in box_inputs(box))

    # the tiles whose out meets no input at all: first, each committed at
    # once (before anything is written, so their inputs are still whole)
    first, last = 0, count - 1
    while first <= last and not any(p is not None and overlap(p, out_part(first))
                                    for p in wholes):
        first += 1
    while last >= first and not any(p is not None and overlap(p, out_part(last))
                                    for p in wholes):
        last -= 1
    for k in itertools.chain(range(first), range(last + 1, count)):
        yield k
        yield ~k
    pending: List[int] = []
    from_low = True
    while first <= last:
        if from_low:
            k, first = first, first + 1
        else:
            k, last = last, last - 1
        from_low = not from_low
        yield k
        pending.append(k)
        if len(pending) > max_pending:
            yield None
            return
        left = tiling.span(first, last)  # the tiles still to compute
        for j in list(pending):
            if not meets(j, left):
                pending.remove(j)
                yield ~j
    for j in pending:
        yield ~j


def _walked(count: int, out_part, in_parts, overlap, max_pending: int) -> Optional[np.ndarray]:
    """The depth-first order (see above), from roots in one order or the
    other; its tables hold every tile, hence WALK_TILES."""
    lows = np.empty((count, 0), np.int64)
    highs = lows
    for k in range(count):
        extents = [extent(p) for p in in_parts(k)]
        if k == 0:
            lows = np.empty((count, len(extents)), np.int64)
            highs = np.empty((count, len(extents)), np.int64)
        lows[k], highs[k] = zip(*extents)

    def readers(k: int) -> List[int]:
        """The other tiles whose inputs tile k's part of out overwrites."""
        part = out_part(k)
        low, high = extent(part)
        near = np.nonzero(((lows < high) & (highs > low)).any(axis=1))[0]
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

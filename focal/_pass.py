"""One call of any loss: out= and its overlap with the inputs, the reduction
plan, the C passes, the results.  Shared by every family; a family only
checks its own arguments into `Operands` and says how its C pass is called.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import _args, _overlap
from ._reduce import Plan


class Operands:
    """A call's checked arguments, as a family hands them to `run`.

    x, t: the logits and targets in the caller's axis order (the pass sees the
    class axis last: `axis` moves it there); w: the weights; labels: whether
    t holds class indices; loss_shape: the shape of an unreduced loss (the
    logits' for elementwise losses, the rows' for the softmax); kernel: the
    loss's own arguments of the C pass (gamma, ...).
    """

    __slots__ = ("x", "t", "w", "labels", "num_classes", "ignore", "alpha", "alpha_per_class",
                 "dtype", "loss_shape", "axis", "kernel")

    def __init__(self, x: np.ndarray, t: np.ndarray, w: Optional[np.ndarray], labels: bool,
                 num_classes: int, ignore: int, alpha: Optional[float],
                 alpha_per_class: Optional[np.ndarray], dtype: np.dtype,
                 loss_shape: Tuple[int, ...], axis: Optional[int], kernel: dict) -> None:
        self.x, self.t, self.w, self.labels = x, t, w, labels
        self.num_classes, self.ignore = num_classes, ignore
        self.alpha, self.alpha_per_class = alpha, alpha_per_class
        self.dtype, self.loss_shape, self.axis, self.kernel = dtype, loss_shape, axis, kernel

    def to_pass(self, a: Optional[np.ndarray], targets: bool = False) -> Any:
        """`a` (logits, dense targets, a gradient) with the class axis last."""
        # (np.moveaxis costs a microsecond or two even where the axis is last)
        if a is None or self.axis is None or (targets and self.labels) or self.axis == a.ndim - 1:
            return a
        return np.moveaxis(a, self.axis, -1)


class Family:
    """How a family of losses meets the shared call (see _sigmoid, _softmax).

    rows: the pass works on whole rows (the softmax: a weight and a loss per
    row); in_step: for out= receiving the loss or the gradient, the inputs the
    pass reads just before it writes the same element of out.
    """

    rows = False
    in_step = {"loss": ("logits", "targets", "weights"), "grad": ("logits", "targets", "weights")}

    def mirrors(self, out_receives: str, want_hess: bool) -> bool:
        """Whether an out= that is an input in reverse order is written by
        mirrored blocks (otherwise resolve_out_overlap decides)."""
        raise NotImplementedError

    def count(self, ops: Operands) -> float:
        """A mean's count of elements (or rows) not ignored, without weights."""
        raise NotImplementedError

    def positives(self, ops: Operands) -> Optional[float]:
        """The number of positive targets if known without the pass, else None."""
        return None

    def check_targets(self, ops: Operands) -> None:
        """Checks of the targets no pass makes (none by default)."""

    def call(self, ops: Operands, plan: Plan, x: np.ndarray, t: np.ndarray,
             w: Optional[np.ndarray], alpha_per_class: Optional[np.ndarray], *,
             loss_out: Optional[np.ndarray], grad_out: Optional[np.ndarray],
             hess_out: Optional[np.ndarray], grad_divisor: float, sums_only: bool,
             sum_weights: bool, sum_positives: bool, check_targets: bool = True
             ) -> Tuple[float, float, float, float]:
        """One C pass: (loss sum, weight sum, positive sum, loss sum 2^-64).
        A sums_only pass with check_targets=False may leave dense targets
        unchecked (and unread) where no sum needs them."""
        raise NotImplementedError


def run(family: Family, ops: Operands, reduction: str, normalizer: Any, out: Any, *,
        want_loss: bool, want_grad: bool, want_hess: bool = False,
        out_receives: str = "grad", raw_sum: bool = False,
        loss_into: Optional[np.ndarray] = None, sources: Tuple[Any, ...] = ()
        ) -> Tuple[Any, Any, Any]:
    """The results (loss, gradient, second derivative; None where not wanted)
    of a call whose family-specific arguments `ops` are checked.

    raw_sum: a reduced loss is returned unrounded and undivided, as
    (s, e) with sum(w l) = s 2^e in float64 (`_args.finite_sum`), for a
    caller that adds the sums of several calls (focal.dask).

    loss_into: memory for an unreduced loss while out= receives the gradient
    (focal.jax: XLA's buffer), used where it is a plain writeable ndarray of
    the loss's shape and dtype that shares no byte with the call's other
    arrays, `sources` (the caller's arguments, before any conversion)
    included; otherwise the loss is a new array, as without it."""
    normalizer_ = _args.normalizer_value(normalizer, reduction)
    elementwise_loss = want_loss and reduction == "none"
    out_view = None
    if out is not None:
        if out_receives == "loss" and not elementwise_loss:
            raise ValueError(
                f"out: the loss is a scalar with reduction={reduction!r}; out= is only "
                "used with reduction='none'"
            )
        rows = out_receives == "loss" and ops.loss_shape != ops.x.shape
        out_view = _args.out_array(
            out, ops.loss_shape if out_receives == "loss" else ops.x.shape, ops.dtype,
            "the rows' shape: the logits' without the class axis" if rows else
            "the logits' shape")

    # Writing over an input.  An out= that is an input with axes reversed
    # (out=logits[::-1]) is written by pairs of mirrored blocks (see
    # _overlap), copying no input.  Otherwise each element (softmax: row) is
    # read just before the same element of out is written, so an argument
    # holding exactly out's elements may be overwritten in place (out=logits),
    # after a first pass has validated every value; any other overlap of a
    # large argument is written by tiles in a safe order (_tiled_plan), and
    # what remains is resolved by _args.resolve_out_overlap.
    x, t, w, alpha_per_class = ops.x, ops.t, ops.w, ops.alpha_per_class
    reflected = None
    copied = (False, False, False)
    # An out= that shares a file's bytes with an input through another memory
    # mapping (two np.memmap of one file) overlaps it at other addresses, which
    # no address comparison shows: the results go to a new array, copied into
    # out once the call has succeeded.
    aliased = out_view is not None and _overlap.file_aliases(out_view, (x, t, w, alpha_per_class))
    if out_view is not None and not aliased and family.mirrors(out_receives, want_hess):
        moved = (ops.to_pass(x), ops.to_pass(t, targets=True), w)
        reflected, shared = _args.reflected_out(ops.to_pass(out_view), moved, (alpha_per_class,))
        copied = tuple(any(a is s for s in shared) for a in moved)  # type: ignore[assignment]
    fresh, validate_first = aliased, False
    tiled = None
    if out_view is not None and not reflected and not aliased:
        tiled = _tiled_plan(family, ops, out_view, out_receives)
        if tiled is not None:
            x, t, w, alpha_per_class = tiled[0]
    if not reflected and tiled is None and not aliased:
        inputs, fresh, validate_first = _args.resolve_out_overlap(
            out_view, {"logits": x, "targets": t, "weights": w, "alpha": alpha_per_class},
            in_step=family.in_step[out_receives])
        x, t = inputs["logits"], inputs["targets"]  # type: ignore[assignment]
        w, alpha_per_class = inputs["weights"], inputs["alpha"]
    target = None if fresh else out_view  # where the pass writes out='s result

    loss_out = grad_out = hess_out = None
    if elementwise_loss:
        if out_receives == "loss" and target is not None:
            loss_out = target
        elif _separate(loss_into, ops, (x, t, w, alpha_per_class, out_view) + sources):
            loss_out = loss_into
        else:
            loss_out = _args.new_result(ops.loss_shape, ops.dtype)
    if want_grad:
        grad_out = target if out_receives == "grad" and target is not None else _args.new_result(
            x.shape, ops.dtype)
    if want_hess:
        hess_out = _args.new_result(x.shape, ops.dtype)

    plan = Plan(reduction, normalizer_, w, want_grad, lambda: family.count(ops),
                (lambda: family.positives(ops)) if ops.labels else None,  # type: ignore
                _largest_weight(family, ops))
    family.check_targets(ops)

    x_pass, t_pass, grad_pass = ops.to_pass(x), ops.to_pass(t, targets=True), ops.to_pass(grad_out)
    if not (want_loss or want_grad or want_hess):
        # no result: a pass that checks the targets (labels) and weights as
        # every call does, and computes nothing (focal.dask's blocks of the
        # denominator, before any block of a result is divided by it)
        family.call(ops, plan, x_pass, t_pass, w, alpha_per_class, loss_out=None,
                    grad_out=None, hess_out=None, grad_divisor=1.0, sums_only=True,
                    sum_weights=w is not None, sum_positives=True, check_targets=True)
        return None, None, None

    def call(x: Any, t: Any, w: Any, alpha_per_class: Any, **arguments: Any
             ) -> Tuple[float, float, float, float]:
        return family.call(ops, plan, x, t, w, alpha_per_class, **arguments)

    if reflected or tiled is not None:
        # a first pass over the untouched inputs validates them and takes every
        # sum; then the results are written by pairs of mirrored blocks
        loss_sum, weight_sum, positive_sum, loss_sum_small = call(
            x_pass, t_pass, w, alpha_per_class, loss_out=None, grad_out=None, hess_out=None,
            grad_divisor=1.0, sums_only=elementwise_loss or not want_loss,
            sum_weights=plan.sum_weights, sum_positives=plan.sum_positives)
        plan.take_sums(weight_sum, positive_sum)
        if want_loss and not elementwise_loss:  # (before out= overwrites an input)
            loss_sum, loss_sum_small = _retake(
                call, plan, (x_pass, t_pass, w, alpha_per_class), loss_sum, loss_sum_small)
        if reflected:
            _write_mirrored(call, x_pass, t_pass, w, alpha_per_class, copied, reflected,
                            ops.labels, ops.ignore, family.rows, loss_out, grad_pass,
                            plan.grad_divisor)
        else:
            assert tiled is not None
            _write_tiled(call, tiled[1], tiled[2], out_receives, loss_out, grad_pass,
                         ops.to_pass(hess_out), plan.grad_divisor)
    else:
        # A reduced loss whose weights' scale took its sum tiny, or past the
        # double range, is summed again (Plan.retake) from the inputs.  Where
        # out= overwrites one, the first pass sums the loss before anything is
        # written if the scale can do either: a shift over a normalizer, or
        # a largest weight of 2^63 or more (its scale below 2^-64).  Below that
        # such a call keeps its one sum (README, Accuracy: a first pass that
        # sums the loss would cost every weighted call in place half its time
        # again).
        retake = want_loss and not elementwise_loss
        prepass = validate_first and retake and (plan.shift > 0 or plan.loss_exponent > 64)
        if plan.first_pass or validate_first:
            # no kernel: the denominator's sum, and every value validated
            # before out= overwrites an input (else the pass after this one
            # checks the targets: a weighted mean's first pass reads only
            # the weights then)
            loss_sum, weight_sum, positive_sum, loss_sum_small = call(
                x_pass, t_pass, w, alpha_per_class, loss_out=None, grad_out=None,
                hess_out=None, grad_divisor=1.0, sums_only=not prepass,
                sum_weights=plan.sum_weights, sum_positives=plan.sum_positives,
                check_targets=validate_first)
            if plan.first_pass:
                plan.take_sums(weight_sum, positive_sum)
            if prepass:  # (the pass below then sums it as retaken)
                _retake(call, plan, (x_pass, t_pass, w, alpha_per_class), loss_sum,
                        loss_sum_small)
        retake = retake and not validate_first
        loss_sum, weight_sum, positive_sum, loss_sum_small = call(
            x_pass, t_pass, w, alpha_per_class, loss_out=loss_out, grad_out=grad_pass,
            hess_out=ops.to_pass(hess_out), grad_divisor=plan.grad_divisor, sums_only=False,
            sum_weights=plan.sum_weights and not plan.first_pass,
            sum_positives=plan.sum_positives and not plan.first_pass)
        plan.take_sums(weight_sum, positive_sum)
        if retake:  # (the inputs are untouched: out= shares no memory with them)
            loss_sum, loss_sum_small = _retake(
                call, plan, (x_pass, t_pass, w, alpha_per_class), loss_sum, loss_sum_small)

    if out_view is not None:
        if target is None:  # computed apart (see resolve_out_overlap): out receives it now
            computed = loss_out if out_receives == "loss" else grad_out
            assert computed is not None
            _args.copy_into(out_view, computed)
        if out_receives == "loss":
            loss_out = out
        else:
            grad_out = out
    loss_result: Any = None
    if elementwise_loss:
        loss_result = loss_out
    elif want_loss and raw_sum:
        loss_result = _args.finite_sum(loss_sum, loss_sum_small, plan.loss_exponent)
    elif want_loss:
        loss_result = plan.reduced(loss_sum, loss_sum_small, ops.dtype)
    return loss_result, grad_out, hess_out


def _largest_weight(family: Family, ops: Operands) -> Optional[Callable[[], Any]]:
    """For the plan: the largest weight of the elements not ignored, where
    class indices may ignore some (rows of the softmax's loss shape, of the
    logits' for the elementwise losses); None elsewhere (all the weights count)."""
    weights = ops.w
    if not ops.labels or weights is None:
        return None
    shape = ops.loss_shape if family.rows else ops.x.shape
    return lambda: _args.largest_counted(weights, ops.t, ops.ignore, shape)


def _retake(call: Any, plan: Plan, inputs: Tuple[Any, ...], loss_sum: float,
            loss_sum_small: float) -> Tuple[float, float]:
    """The pass's loss sums, or where the weights' scale took them out of
    range (Plan.retake), those of a pass over `inputs` (logits, targets,
    weights, alpha as the pass reads them) with the plan's new scale."""
    if not plan.retake(loss_sum, loss_sum_small):
        return loss_sum, loss_sum_small
    loss_sum, _, _, loss_sum_small = call(
        *inputs, loss_out=None, grad_out=None, hess_out=None, grad_divisor=1.0,
        sums_only=False, sum_weights=False, sum_positives=False)
    return loss_sum, loss_sum_small


def _separate(into: Optional[np.ndarray], ops: Operands, others: Tuple[Any, ...]) -> bool:
    """Whether `into` can receive the unreduced loss (see run's loss_into):
    a plain writeable array of the loss's shape and dtype whose elements are
    distinct and that shares no byte, at its addresses or through another
    mapping of a file, with the arrays among `others` (the caller's and
    those the call reads)."""
    if not (type(into) is np.ndarray and into.shape == ops.loss_shape
            and into.dtype == ops.dtype and into.flags.writeable):
        return False
    if _args.may_overlap_itself(into):
        return False
    arrays = [_args.base_view(a) for a in others + (ops.x, ops.t, ops.w, ops.alpha_per_class)
              if isinstance(a, np.ndarray)]
    return not (any(_args.overlap(into, a) for a in arrays)
                or _overlap.file_aliases(into, arrays))


def _write_mirrored(call, x, t, w, alpha_per_class, copied, reflected, labels, ignore, rows,
                    loss_out, grad_out, grad_divisor):
    """The per-element (per-row) results into an out= that is an input with
    `reflected` axes reversed (the class axis last), by pairs of mirrored
    blocks (see _overlap): both blocks' inputs that out overlaps (`copied`,
    for x, t and w) are copied before either block is written."""
    ndim = x.ndim

    def part(a, copy, index, size, leading=False):
        piece = _overlap.block_of(a, index, size, leading)
        return np.array(piece) if copy else piece

    def targets(index):
        if labels:  # (a new array where the block cuts the rows)
            return _overlap.class_block(part(t, copy_t, index, ndim, leading=True), index,
                                        x.shape[-1], ignore)
        return part(t, copy_t, index, ndim)

    copy_x, copy_t, copy_w = copied
    for block, mirror in _overlap.paired_blocks(x.shape, reflected, whole_last=rows):
        indices = [block] if mirror == block else [block, mirror]
        # a row's weight and loss: the block's axes but the class axis
        inputs = [(part(x, copy_x, index, ndim), targets(index),
                   part(w, copy_w, index[:-1], ndim - 1) if rows else part(w, copy_w, index, ndim))
                  for index in indices]
        for index, (xs, ts, ws) in zip(indices, inputs):
            call(xs, ts, ws, None if alpha_per_class is None else alpha_per_class[index[-1]],
                 loss_out=None if loss_out is None else _overlap.view(
                     loss_out, index[:-1] if rows else index),
                 grad_out=None if grad_out is None else grad_out[index], hess_out=None,
                 grad_divisor=grad_divisor, sums_only=False, sum_weights=False,
                 sum_positives=False)


def _tiled_plan(family: Family, ops: Operands, out: np.ndarray, out_receives: str) -> Any:
    """For an out= that overlaps an input other than element for element
    (a shifted or transposed view, part of the targets or weights), the
    tiles that write it in bounded memory (see _overlap): ((x, t, w, alpha)
    with the small overlapping ones copied, parts, commit order); None when
    resolve_out_overlap decides instead (no such overlap, only small inputs
    to copy, out overlapping itself, or no order within MAX_PENDING tiles:
    the overlapping inputs are then copied, or the result computed apart)."""
    if out.size == 0 or _args.may_overlap_itself(out):
        return None
    named = {"logits": ops.x, "targets": ops.t, "weights": ops.w, "alpha": ops.alpha_per_class}
    shared, hazards = _args.out_hazards(out, named, family.in_step[out_receives])
    if not any(named[name].nbytes > _overlap.COPY_LIMIT for name in hazards):  # type: ignore
        return None
    inputs: Dict[str, Any] = dict(named)
    for name in hazards:
        if inputs[name].nbytes <= _overlap.COPY_LIMIT:  # type: ignore
            inputs[name] = _args.copy_of(inputs[name])
    meets = tuple(name in shared and inputs[name] is named[name]
                  for name in ("logits", "targets", "weights", "alpha"))
    x, t = ops.to_pass(inputs["logits"]), ops.to_pass(inputs["targets"], targets=True)
    w, alpha = inputs["weights"], inputs["alpha"]
    rows, labels, ndim = family.rows, ops.labels, x.ndim
    row_result = rows and out_receives == "loss"  # one loss per row: no class axis
    out_pass = out if row_result else ops.to_pass(out)

    def box_parts(index: Any, compute: bool = False) -> Tuple[Any, ...]:
        """The parts of x, t, w, alpha and of out over a box of the
        iteration (slices per axis); `compute`: class indices as the box's
        own (a new array where the box cuts the rows), else the part of the
        labels in memory."""
        t_part = _overlap.block_of(t, index, ndim, leading=labels)
        if labels and compute:
            t_part = _overlap.class_block(t_part, index, x.shape[-1], ops.ignore)
        return (_overlap.block_of(x, index, ndim), t_part,
                _overlap.block_of(w, index[:-1], ndim - 1) if rows
                else _overlap.block_of(w, index, ndim),
                None if alpha is None else alpha[index[-1]],
                _overlap.view(out_pass, index[:-1] if row_result else index))

    def parts(k: int, compute: bool = False) -> Tuple[Any, ...]:
        """Tile k's parts (see box_parts)."""
        return box_parts(tiling.index(k), compute)

    def box_inputs(index: Any) -> List[Any]:
        return [p if meet else None for p, meet in zip(box_parts(index)[:4], meets)]

    # slabs suit a shift, cubes a transpose; a permutation of axes whose
    # cycles of tiles are longer than MAX_PENDING (a rotation of a cube and a
    # reversal: 6) takes smaller tiles, more of them pending, in the same memory
    for cubes, split in ((False, 1), (True, 1), (True, 2), (True, 4)):
        tiling = _overlap.Tiling(x.shape, whole_last=rows, cubes=cubes,
                                 limit=_overlap.BLOCK_ELEMENTS // split)
        order = _overlap.commit_order(tiling, lambda k: parts(k)[4], box_inputs,
                                      lambda a, b: _args.overlap(_args.base_view(a), b),
                                      max_pending=_overlap.MAX_PENDING * split)
        if order is not None:
            break
    else:
        return None
    return (inputs["logits"], inputs["targets"], w, alpha), (tiling, parts), order


def _write_tiled(call, tiles, order, out_receives, loss_out, grad_out, hess_out, grad_divisor):
    """The per-element (per-row) results, in `order` (see _overlap): out='s
    part of each tile into scratch, committed later; the other results (new
    arrays) directly."""
    tiling, parts = tiles
    scratch = {}
    for event in order:
        k = int(event)
        if k < 0:
            np.copyto(parts(~k)[4], scratch.pop(~k))
            continue
        xs, ts, ws, alphas, out_part = parts(k, compute=True)
        index = tiling.index(k)
        result = np.empty(out_part.shape, out_part.dtype)
        scratch[k] = result
        # a row's loss (the softmax): the tile's axes but the class axis
        loss_index = index[:-1] if loss_out is not None and loss_out.ndim < xs.ndim else index
        call(xs, ts, ws, alphas,
             loss_out=result if out_receives == "loss" else _part(loss_out, loss_index),
             grad_out=result if out_receives == "grad" else _part(grad_out, index),
             hess_out=_part(hess_out, index), grad_divisor=grad_divisor, sums_only=False,
             sum_weights=False, sum_positives=False)


def _part(a: Optional[np.ndarray], index: Any) -> Optional[np.ndarray]:
    return None if a is None else _overlap.view(a, index)

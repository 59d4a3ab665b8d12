"""The reduction plan: one for every loss family.

A reduced loss is sum(w l) / D and its gradient w (dl/dx) / D.  The C pass
sums w l (and, when asked, the weights w or the positive targets) and applies
a divisor to the gradient before its single rounding.  So the plan decides,
before any pass:

- the denominator D, when it is known from the arguments alone: 1 for "none"
  and "sum"; the normalizer given; a mean's count of elements (or rows) not
  ignored, from the shapes and a count of the class indices; the number of
  positive class indices;
- otherwise which sum the pass keeps to make it (a weighted mean: the weight
  sum; "sum_over_positives" of dense targets: the sum of the targets), and
  whether a first pass without the kernel must take that sum before the
  gradient can be divided by it.

One pass when D is known (or no gradient is wanted), two otherwise.

Extreme weights (1e308 or 5e-324) enter the sums scaled by 2^-exponent
(`_args.weight_exponent`): a weight sum taken as D is scaled alike, so the
scale cancels in that quotient and in the gradient's; every other reduced
value is scaled back at the end (`_args.scale_back`).
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable, Optional

import numpy as np

from . import _args


class Plan:
    """What the passes of one call sum and divide by (see the module's text).

    Attributes read by the caller: sum_weights, sum_positives (the sums the
    pass must keep), first_pass (take them in a first pass, before the
    gradient), grad_divisor, loss_weight_scale, grad_weight_scale,
    weight_prescale, loss_exponent (the loss's sum takes the weights times
    2^-loss_exponent).
    """

    __slots__ = ("reduction", "denominator", "sum_weights", "sum_positives", "first_pass",
                 "grad_divisor", "weight_exponent", "loss_exponent", "loss_weight_scale",
                 "grad_weight_scale", "weight_prescale", "shift")

    def __init__(self, reduction: str, normalizer: Optional[float], weights: Optional[np.ndarray],
                 want_grad: bool, count: Callable[[], float],
                 positives: Optional[Callable[[], float]] = None,
                 largest_weight: Optional[Callable[[], Any]] = None) -> None:
        """`count()`: the mean's number of elements not ignored, when there
        are no weights; `positives()`: the number of positive targets when
        it is known without the pass (class indices), else None;
        `largest_weight()`: the largest weight of the elements not ignored,
        where some may be (class indices; else the weights' largest)."""
        self.reduction = reduction
        denominator: Optional[float] = 1.0
        if normalizer is not None:
            denominator = normalizer
        elif reduction == "mean":
            denominator = count() if weights is None else None
        elif reduction == "sum_over_positives":
            denominator = max(positives(), 1.0) if positives is not None else None
        self.denominator = denominator
        self.sum_weights = reduction == "mean" and denominator is None
        self.sum_positives = reduction == "sum_over_positives" and denominator is None
        self.first_pass = want_grad and denominator is None
        # nothing counted (no element): the gradient is empty or all zeros
        self.grad_divisor = denominator if denominator else 1.0
        exponent = 0
        if reduction != "none" and weights is not None and weights.size:
            exponent = _args.weight_exponent(
                weights, largest_weight() if largest_weight is not None else None)
        self.weight_exponent = exponent
        # The sums take every weight times 2^-exponent.  All weights subnormal,
        # that power of two exceeds the doubles (up to 2^1072): the core
        # multiplies each weight it reads by weight_prescale = 2^prescale first
        # (exact), and the scales below are the rest of it.
        prescale = max(-exponent - 1022, 0)
        self.weight_prescale = math.ldexp(1.0, prescale)
        # A normalizer below 1 brings the loss's terms w l up by 1/D: those
        # below the normal range lost their digits first (weights [1e-230, 1]
        # over D = 1e-230: 0 for 2e-261).  The loss's weights are then taken
        # 2^shift larger, D 2^shift in [1/2, 1), so that the sum keeps them
        # (with weights of 1/4 or more it is then at most the reduced value).
        # At most 2^1000: the largest weight times the scale, below 2^shift,
        # and the scale itself stay finite.
        shift = 0
        if normalizer is not None and reduction != "none" and 0.0 < normalizer < 1.0:
            shift = max(0, min(-math.frexp(normalizer)[1], 1000, 1000 + exponent + prescale))
        self.shift = shift
        self.loss_exponent = exponent - shift  # the loss's weights: times 2^-loss_exponent
        self.loss_weight_scale = math.ldexp(1.0, -exponent - prescale + shift)
        # the gradient's weights carry the scale only where its divisor does
        grad_exponent = -exponent if self.sum_weights else 0
        # A divisor known now (a normalizer, a count) takes the weights' scale
        # too when that scale enlarges them (tiny weights: exact, none lost to
        # underflow) and the scaled divisor stays a normal number: w g / D is
        # then computed as (w 2^-e) g / (D 2^-e), so a subnormal weight times
        # g is not rounded as a subnormal before the division.
        if not self.sum_weights and exponent < 0 and denominator:
            scaled = _args.scale_back(self.grad_divisor, -exponent)
            if sys.float_info.min <= scaled < math.inf:
                self.grad_divisor = scaled
                grad_exponent = -exponent
        self.grad_weight_scale = math.ldexp(1.0, grad_exponent - prescale)

    def take_sums(self, weight_sum: float, positive_sum: float) -> None:
        """The denominator from the sums of a pass, when the plan left it open."""
        if self.denominator is None:
            self.denominator = weight_sum if self.sum_weights else max(positive_sum, 1.0)
            self.grad_divisor = self.denominator if self.denominator > 0 else 1.0

    def retake(self, loss_sum: float, loss_sum_small: float) -> bool:
        """Whether the loss's sum is to be taken again with its weights' scale
        changed (loss_weight_scale and loss_exponent are then the new ones),
        from the pass's sum and its twin.

        - The scale brings the largest weight near 1/2.  A sum it leaves below
          2^-960 (the heaviest elements' losses 0 or tiny) kept few digits of
          lighter terms, each rounded below the normal range (weights [1e100,
          1], the heavier loss 0: 0 for 6.6e-262), where the result is larger
          than the sum (2^loss_exponent > 1, or a normalizer below 1: a
          subnormal alpha under a weight of 1e10 over 1e-10 kept 36 bits of
          2.2e-304).  Its terms, none negative, are each below 2^-960: taken
          with the weights scaled so that the largest is near 2^960 (or
          unscaled, if that is less: 2^loss_exponent larger, at most 2^1025)
          each stays below 2^65, and the scale itself at most 2^1000.  (A
          lift of at most 2^900 left weights of 2^960 beside 1 at 2^-62: 2
          bits of 9.9e-305.)
        - A normalizer's shift took terms past the double range, the twin's
          too (weights of 1e-30 over 1e-30, Poly-1's loss 1e306: inf for
          2e306): taken without it, each term is below the loss itself.
        """
        if self.shift and math.isinf(loss_sum) and not math.isfinite(loss_sum_small):
            self.loss_exponent += self.shift
            self.loss_weight_scale = math.ldexp(self.loss_weight_scale, -self.shift)
            self.shift = 0
            return True
        if (self.loss_exponent > 0 or self.shift) and abs(loss_sum) < _TINY_SUM:
            prescale = max(-self.weight_exponent - 1022, 0)
            lifted = max(min(0, self.weight_exponent - 960), -1000 - prescale)
            if lifted < self.loss_exponent:
                self.loss_weight_scale = math.ldexp(self.loss_weight_scale,
                                                    self.loss_exponent - lifted)
                self.loss_exponent = lifted
                return True
        return False

    def reduced(self, loss_sum: float, loss_sum_small: float, dtype: np.dtype) -> Any:
        """The reduced loss, a NumPy scalar of the result dtype, from the pass's
        loss sum and its twin scaled by 2^-SMALL_SUM_EXPONENT (taken where the
        plain sum of losses near the double range overflowed)."""
        assert self.denominator is not None
        # (a weight sum as the denominator carries the weights' scale)
        return reduced_value(loss_sum, loss_sum_small, self.denominator, self.loss_exponent,
                             self.weight_exponent if self.sum_weights else 0, dtype)


_NORMAL_MIN = sys.float_info.min
_TINY_SUM = 2.0 ** -960
_FLOAT32_MAX = _args.FLOAT32_MAX


def reduced_value(loss_sum: float, loss_sum_small: float, denominator: float,
                  weight_exponent: int, denominator_exponent: int, dtype: np.dtype) -> Any:
    """(sum of w l) / denominator as a NumPy scalar of the result dtype.

    The sum's weights were scaled by 2^-weight_exponent, the denominator's by
    2^-denominator_exponent; loss_sum_small is the pass's sum times
    2^-SMALL_SUM_EXPONENT, taken where the plain sum overflowed."""
    if not (weight_exponent or denominator_exponent) and denominator > 0:
        # the common case first: a quotient in the normal range is the same
        # correctly rounded quotient as the one of fractions below (and one
        # that float32 holds needs no check of its range: a small call's time)
        value = loss_sum / denominator
        if _NORMAL_MIN <= value <= _FLOAT32_MAX:
            return dtype.type(value)
        if _NORMAL_MIN <= value < math.inf or loss_sum == 0.0:
            return _args.result_scalar(value, dtype)
    loss_sum, exponent = _args.finite_sum(loss_sum, loss_sum_small, weight_exponent)
    if not denominator > 0:
        return _args.result_scalar(math.nan, dtype)  # an empty mean
    # divided as fractions in [0.5, 1) and the exponents apart, so that a
    # scaled sum over a tiny denominator cannot overflow before it is scaled back
    sum_fraction, sum_exponent = math.frexp(loss_sum)
    denominator_fraction, denominator_binary_exponent = math.frexp(denominator)
    value = _args.scale_back(sum_fraction / denominator_fraction,
                             sum_exponent - denominator_binary_exponent + exponent
                             - denominator_exponent)
    return _args.result_scalar(value, dtype)

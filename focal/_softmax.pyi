"""Typing stubs of focal._softmax, written by focal._spec from the loss specifications:
do not edit (focal._spec.write_stubs() rewrites them)."""
from typing import Any, Literal, Optional, SupportsIndex, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from ._typing import (
    Array, Real, Reduction, Scalar, ScalarReduction, SoftmaxReduction, SoftmaxScalarReduction,
)

def label_array(labels: Any, x: np.ndarray, axis: int) -> Tuple[np.ndarray, bool]: ...

def softmax_grad(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...

def softmax_grad_hess(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
) -> Tuple[Array, Array]: ...

@overload
def softmax_loss(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: None = ...,
) -> Scalar: ...
@overload
def softmax_loss(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...
@overload
def softmax_loss(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxReduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Union[Scalar, Array]: ...

@overload
def softmax_loss_and_grad(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Scalar, Array]: ...
@overload
def softmax_loss_and_grad(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Array, Array]: ...
@overload
def softmax_loss_and_grad(
    logits: Any,
    labels: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    axis: SupportsIndex = ...,
    reduction: SoftmaxReduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Union[Scalar, Array], Array]: ...

def softmax_prior_bias(num_classes: SupportsIndex, pi: Real = ...) -> npt.NDArray[np.float64]: ...

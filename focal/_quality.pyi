"""Typing stubs of focal._quality, written by focal._spec from the loss specifications:
do not edit (focal._spec.write_stubs() rewrites them)."""
from typing import Any, Literal, Optional, SupportsIndex, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from ._typing import (
    Array, Real, Reduction, Scalar, ScalarReduction, SoftmaxReduction, SoftmaxScalarReduction,
)

def quality_grad(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    reduction: Reduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...

def quality_grad_hess(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
) -> Tuple[Array, Array]: ...

@overload
def quality_loss(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: None = ...,
) -> Scalar: ...
@overload
def quality_loss(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...
@overload
def quality_loss(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Union[Scalar, Array]: ...

@overload
def quality_loss_and_grad(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Scalar, Array]: ...
@overload
def quality_loss_and_grad(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Array, Array]: ...
@overload
def quality_loss_and_grad(
    logits: Any,
    targets: Any,
    beta: Real = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Union[Scalar, Array], Array]: ...

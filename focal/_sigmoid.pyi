"""Typing stubs of focal._sigmoid, written by focal._spec from the loss specifications:
do not edit (focal._spec.write_stubs() rewrites them)."""
from typing import Any, Literal, Optional, SupportsIndex, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from ._typing import (
    Array, Real, Reduction, Scalar, ScalarReduction, SoftmaxReduction, SoftmaxScalarReduction,
)

def grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    reduction: Reduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...

def grad_hess(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
) -> Tuple[Array, Array]: ...

@overload
def loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: None = ...,
) -> Scalar: ...
@overload
def loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...
@overload
def loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Union[Scalar, Array]: ...

@overload
def loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Scalar, Array]: ...
@overload
def loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Array, Array]: ...
@overload
def loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    ignore_index: SupportsIndex = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Union[Scalar, Array], Array]: ...

def prior_bias(pi: Real = ...) -> float: ...

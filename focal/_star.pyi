"""Typing stubs of focal._star, written by focal._spec from the loss specifications:
do not edit (focal._spec.write_stubs() rewrites them)."""
from typing import Any, Literal, Optional, SupportsIndex, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from ._typing import (
    Array, Real, Reduction, Scalar, ScalarReduction, SoftmaxReduction, SoftmaxScalarReduction,
)

def star_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    beta: Real = ...,
    *,
    reduction: Reduction = ...,
    weights: Any = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...

@overload
def star_loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    beta: Real = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    normalizer: Optional[Real] = ...,
    out: None = ...,
) -> Scalar: ...
@overload
def star_loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    beta: Real = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...
@overload
def star_loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    beta: Real = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Union[Scalar, Array]: ...

@overload
def star_loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    beta: Real = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Scalar, Array]: ...
@overload
def star_loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    beta: Real = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Array, Array]: ...
@overload
def star_loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Real = ...,
    beta: Real = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    normalizer: Optional[Real] = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Union[Scalar, Array], Array]: ...

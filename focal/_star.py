"""FL*, the alternative focal loss of the paper's Appendix A."""
from __future__ import annotations

from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np

from ._docs import INTERRUPTION, fill_docstring
from ._sigmoid import _run
from ._typing import Array, Reduction, Scalar, ScalarReduction

_PARAMETERS = """\
logits : array_like
    Raw scores x, any shape; float32 and float64 keep their dtype, float16 is
    computed in float32.
targets : array_like
    Hard targets: dense values in {0, 1} with as many dimensions as `logits`
    (each equal or 1), or integer class indices of shape
    ``logits.shape[:-1]`` with the sigmoid form's conventions (C marks a
    background row, -1 an ignored row).
alpha : None, float or array_like, default 0.25
    alpha_t = alpha for positive targets, 1 - alpha for negative ones (the
    paper uses 0.25 in every FL* run); one value per class, or None.
gamma : float, default 4.0
    Sharpness, > 0.
beta : float, default 0.0
    Shift of the logit.  Table 3's best settings are gamma 4, beta 0 and
    gamma 2, beta 1.
reduction : {"mean", "sum", "none", "sum_over_positives"}, default "mean"
    As for `focal.loss`.
weights : array_like, optional
    Non-negative weights broadcastable to ``logits.shape``."""

_NOTES = """\
Notes
-----
With s = +1 for a positive target and -1 for a negative one,
x_t = s x, p*_t = sigmoid(gamma x_t + beta) and

    FL* = alpha_t (-log p*_t) / gamma,   d(FL*)/dx = alpha_t s (p*_t - 1).

The loss is a softplus and 1 - p*_t a sigmoid of -(gamma x_t + beta), both
computed from one exp and one log1p, exact in the tails.

""" + INTERRUPTION


_document = fill_docstring(parameters=_PARAMETERS, notes=_NOTES)


@overload
def star_loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    beta: Any = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    out: None = ...,
) -> Scalar: ...
@overload
def star_loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    beta: Any = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    out: Optional[np.ndarray] = ...,
) -> Array: ...
@overload
def star_loss(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    beta: Any = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    out: Optional[np.ndarray] = ...,
) -> Union[Scalar, Array]: ...
@_document
def star_loss(
    logits: Any,
    targets: Any,
    alpha: Any = 0.25,
    gamma: Any = 4.0,
    beta: Any = 0.0,
    *,
    reduction: Reduction = "mean",
    weights: Any = None,
    out: Optional[np.ndarray] = None,
) -> Union[Scalar, Array]:
    """FL*, the alternative focal loss of Appendix A of Lin et al. (2017).

    Parameters
    ----------
    {parameters}
    out : ndarray, optional
        With ``reduction="none"``, a writable array of the logits' shape and
        the result dtype that receives the per-element loss.

    Returns
    -------
    numpy scalar or ndarray
        The reduced loss, or with ``reduction="none"`` one value per element.

    See Also
    --------
    star_grad, star_loss_and_grad, loss

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> x = np.array([2.0, -1.0]); y = np.array([1, 0])
    >>> bool(focal.star_loss(x, y) < focal.star_loss(-x, y))
    True
    """
    value, _, _ = _run(logits, targets, alpha, gamma, reduction, weights, -1, out,
                       want_loss=True, want_grad=False, out_receives="loss", star=True, beta=beta)
    return value


@_document
def star_grad(
    logits: Any,
    targets: Any,
    alpha: Any = 0.25,
    gamma: Any = 4.0,
    beta: Any = 0.0,
    *,
    reduction: Reduction = "mean",
    weights: Any = None,
    out: Optional[np.ndarray] = None,
) -> Array:
    """Gradient of the reduced FL* with respect to the logits.

    Parameters
    ----------
    {parameters}
    out : ndarray, optional
        A writable array of the logits' shape and the result dtype that
        receives the gradient; it may be `logits` itself.

    Returns
    -------
    ndarray
        The gradient, of the logits' shape.

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> focal.star_grad(np.zeros(2), np.array([1, 0]), alpha=None, reduction="sum")
    array([-0.5,  0.5])
    """
    _, gradient, _ = _run(logits, targets, alpha, gamma, reduction, weights, -1, out,
                          want_loss=False, want_grad=True, star=True, beta=beta)
    return gradient


@overload
def star_loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    beta: Any = ...,
    *,
    reduction: ScalarReduction = ...,
    weights: Any = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Scalar, Array]: ...
@overload
def star_loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    beta: Any = ...,
    *,
    reduction: Literal["none"],
    weights: Any = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Array, Array]: ...
@overload
def star_loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = ...,
    gamma: Any = ...,
    beta: Any = ...,
    *,
    reduction: Reduction,
    weights: Any = ...,
    out: Optional[np.ndarray] = ...,
) -> Tuple[Union[Scalar, Array], Array]: ...
@_document
def star_loss_and_grad(
    logits: Any,
    targets: Any,
    alpha: Any = 0.25,
    gamma: Any = 4.0,
    beta: Any = 0.0,
    *,
    reduction: Reduction = "mean",
    weights: Any = None,
    out: Optional[np.ndarray] = None,
) -> Tuple[Union[Scalar, Array], Array]:
    """FL* and its gradient, computed together in one pass.

    Parameters
    ----------
    {parameters}
    out : ndarray, optional
        A writable array of the logits' shape and the result dtype that
        receives the gradient.

    Returns
    -------
    loss : numpy scalar or ndarray
        As returned by `star_loss`.
    grad : ndarray
        As returned by `star_grad`.

    {notes}

    Examples
    --------
    >>> import numpy as np, focal
    >>> value, g = focal.star_loss_and_grad(np.zeros((2, 3)), np.array([0, 3]), gamma=2, beta=1)
    >>> g.shape
    (2, 3)
    """
    value, gradient, _ = _run(logits, targets, alpha, gamma, reduction, weights, -1, out,
                              want_loss=True, want_grad=True, star=True, beta=beta)
    return value, gradient

"""focal for PyTorch: the focal loss of CPU tensors, differentiable, in one pass.

A drop-in for ``torchvision.ops.sigmoid_focal_loss`` and a softmax form with
the conventions of ``torch.nn.functional.cross_entropy``, each also as an
``nn.Module``.  The tensors are read in place by focal's C core (no copy for
float16, float32 and float64, any strides); when an input requires a
gradient, the forward pass computes the loss and its gradient together and
the backward pass only scales that gradient by the incoming one.

Functions
---------
sigmoid_focal_loss
    torchvision's signature and conventions (alpha < 0 turns weighting off).
softmax_focal_loss
    Multi-class focal loss with class-index (or probability) targets.

Classes
-------
SigmoidFocalLoss, SoftmaxFocalLoss
    The ``nn.Module`` forms.

Needs PyTorch (the ``torch`` extra): ``pip install "focal[torch]"``; see the
README for a CPU-only PyTorch.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable, Optional, SupportsIndex, Tuple

import numpy as np

try:
    import torch
    from torch.autograd import forward_ad
except ImportError:  # the original error stays attached as the context
    raise ImportError(
        "focal.torch needs PyTorch: pip install \"focal[torch]\" (a CPU-only build: "
        "pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    )

import focal
from focal import _args
from focal._typing import Real, Reduction, SoftmaxReduction

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss", "SigmoidFocalLoss", "SoftmaxFocalLoss"]

# the dtypes whose tensors NumPy can view without a copy (bfloat16 is handled apart)
_VIEWABLE = (torch.float16, torch.float32, torch.float64)


# ----------------------------------------------------------------------------
# Tensors as NumPy arrays, without copies


def _bfloat16_dtype() -> Optional[np.dtype]:
    """ml_dtypes' bfloat16 when it is installed and focal's core accepts it, else None."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    dtype = np.dtype(ml_dtypes.bfloat16)
    try:
        focal.loss(np.zeros(1, dtype), np.zeros(1))
    except TypeError:  # a focal whose core does not read bfloat16 yet
        return None
    return dtype


_BFLOAT16: Any = ...  # found out at the first bfloat16 tensor (the probe imports ml_dtypes)


def _check_tensor(name: str, tensor: "torch.Tensor") -> None:
    if tensor.device.type != "cpu":
        raise TypeError(
            f"{name}: a tensor on device {tensor.device!s}; focal computes on the CPU: "
            f"pass {name}.cpu() (and move the loss back with .to({str(tensor.device)!r}))"
        )
    if tensor.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense (strided) tensor, got layout {tensor.layout}; "
                        f"pass {name}.to_dense()")
    if tensor.is_nested:
        # (a nested tensor of the strided layout has no sizes: reading it
        # raised PyTorch's internal RuntimeError)
        raise TypeError(f"{name}: expected a dense (strided) tensor, got a nested tensor; pass "
                        f"{name}.to_padded_tensor(...) with a padding value and mask or weigh "
                        f"the padding")


def _refuse_transforms(**tensors: Any) -> None:
    """Inside a torch.func transform (vmap, grad, jacrev, ...) focal cannot read
    the tensors: the transform's wrappers have no storage, and any tensor read
    there becomes one (reading raised PyTorch's own RuntimeError).  The message
    names the first argument the transform wrapped; where it wrapped none of
    them (a transform over something else), none is to blame, and the
    message says so."""
    functorch = getattr(torch._C, "_functorch", None)
    level = getattr(functorch, "maybe_current_level", None)
    if level is None or level() is None:
        return
    wrapped = getattr(functorch, "is_functorch_wrapped_tensor", lambda tensor: False)
    name = next((name for name, tensor in tensors.items()
                 if isinstance(tensor, torch.Tensor) and wrapped(tensor)), None)
    advice = ("call focal.torch outside the transform (its functions take any batch shape, "
              "and loss.backward() gives the gradient)")
    if name is None:
        raise TypeError(f"focal.torch cannot run inside a torch.func transform (vmap, grad, "
                        f"jacrev, ...), also where the transform wraps none of its arguments; "
                        f"{advice}")
    raise TypeError(
        f"{name}: a tensor of a torch.func transform (vmap, grad, jacrev, ...), whose values "
        f"focal cannot read; {advice}"
    )


def _as_numpy(name: str, tensor: "torch.Tensor") -> np.ndarray:
    """A NumPy view of a CPU tensor (its strides kept), or for bfloat16 without
    a core that reads it, a float32 copy."""
    global _BFLOAT16
    _check_tensor(name, tensor)
    tensor = tensor.detach().resolve_conj().resolve_neg()  # no-ops unless a lazy bit is set
    if tensor.dtype == torch.bfloat16:
        if _BFLOAT16 is ...:
            _BFLOAT16 = _bfloat16_dtype()
        if _BFLOAT16 is None:
            return tensor.float().numpy()  # computed in float32 in any case
    try:
        if tensor.dtype == torch.bfloat16:
            return tensor.view(torch.int16).numpy().view(_BFLOAT16)
        return tensor.numpy()
    except (TypeError, RuntimeError) as error:  # float8, quantized: PyTorch's message names none
        raise TypeError(f"{name}: a tensor of dtype {tensor.dtype}, which NumPy cannot read; "
                        f"convert it first (for example {name}.float())") from error
    except ValueError as error:  # an expanded tensor of 2**63 bytes or more
        if "too big" not in str(error):  # (NumPy's "array is too big"; any other passes)
            raise
        raise ValueError(f"{name}: a tensor of shape {tuple(tensor.shape)} is larger than the "
                         "largest array NumPy can view") from None


def _argument(name: str, value: Any) -> Any:
    """A tensor argument other than the logits as NumPy; anything else unchanged."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            f"{name}: focal differentiates with respect to the inputs only; pass "
            f"{name}.detach() (a tensor that requires grad would silently get no gradient)"
        )
    if forward_ad.unpack_dual(value).tangent is not None:
        raise ValueError(
            f"{name}: focal differentiates with respect to the inputs only; pass "
            f"forward_ad.unpack_dual({name}).primal (forward mode's tangent of {name} would "
            f"silently be dropped)"
        )
    return _as_numpy(name, value)


def _logits(inputs: Any) -> np.ndarray:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs: expected a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dtype not in _VIEWABLE and inputs.dtype != torch.bfloat16:
        raise TypeError(f"inputs: expected a floating-point tensor (float16, bfloat16, float32 "
                        f"or float64), got {inputs.dtype}")
    return _as_numpy("inputs", inputs)


def _as_tensor(value: Any, dtype: "torch.dtype") -> "torch.Tensor":
    """A result of focal (array or NumPy scalar) as a tensor of the inputs' dtype;
    float32 and float64 arrays are shared, not copied."""
    return torch.from_numpy(np.asarray(value)).to(dtype)


# ----------------------------------------------------------------------------
# The autograd Function


class _FocalFunction(torch.autograd.Function):
    """Loss and gradient from one focal pass; the backward scales the saved gradient.

    `compute(logits)` returns (loss, gradient) as NumPy; `row_axis` is None
    for a loss per element, or the class axis of a loss per row (softmax),
    whose gradient spreads along that axis.
    """

    @staticmethod
    def forward(ctx: Any, inputs: "torch.Tensor", logits: np.ndarray,
                compute: Callable[[np.ndarray], Tuple[Any, Any]],
                row_axis: Optional[int]) -> "torch.Tensor":
        value, gradient = compute(logits)  # logits: a NumPy view of inputs
        # float32 for float16/bfloat16 inputs.  Saved for backward rather than kept on
        # ctx: autograd releases it after a backward without retain_graph, so the
        # gradient handed over becomes the leaf's .grad as it is (a reference still
        # held here made autograd copy it, a second pass over the whole gradient)
        saved = torch.from_numpy(gradient)
        ctx.save_for_backward(saved)
        ctx.save_for_forward(saved, inputs)
        ctx.tangent_taken = False  # (jvp: the inputs carried a forward-mode tangent)
        ctx.handed_out = False
        ctx.row_axis = row_axis
        ctx.dtype = inputs.dtype
        ctx.reduced = np.ndim(value) == 0
        # a mean over nothing (no elements, every one ignored, every weight 0) is
        # nan, and so is its tangent, as F.cross_entropy's (the gradient's sum, of
        # no terms or of zeros, would say 0)
        ctx.undefined = ctx.reduced and bool(np.isnan(value))
        return _as_tensor(value, inputs.dtype)

    @staticmethod
    def jvp(ctx: Any, tangent: "torch.Tensor", *_: Any) -> "torch.Tensor":
        """Forward mode: the saved gradient times the inputs' tangent, summed as
        the loss sums (over every element for a reduced loss, along the class
        axis for a row's loss: the backward's transpose)."""
        gradient, inputs = ctx.saved_tensors
        ctx.tangent_taken = True
        product = gradient * tangent
        if ctx.reduced:
            total = product.sum()
            product = total * math.nan if ctx.undefined else total
        elif ctx.row_axis is not None:
            product = product.sum(dim=ctx.row_axis)
        product = product.to(ctx.dtype)
        if inputs.requires_grad and torch.is_grad_enabled():
            # the tangent's derivative with respect to the inputs is a second
            # derivative (reverse over forward mode), which the saved gradient, a
            # constant here, would silently drop: the graph refuses it instead
            product = _SecondDerivativeRefused.apply(product, inputs)
        return product

    @staticmethod
    def backward(ctx: Any, grad_output: "torch.Tensor") -> Tuple[Any, None, None, None]:
        if torch.is_grad_enabled():  # backward(create_graph=True)
            raise RuntimeError(
                "focal.torch: second derivatives are not available (the backward of a focal "
                "loss is its saved gradient); call backward without create_graph=True"
            )
        if ctx.tangent_taken and getattr(forward_ad, "_current_level", -1) >= 0:
            # forward over reverse mode: the gradient's tangent (a Hessian-vector
            # product) would need the second derivative; the saved gradient has no
            # tangent, which forward mode takes for 0 without a word
            raise RuntimeError(
                "focal.torch: second derivatives are not available: a gradient taken inside "
                "forward_ad.dual_level() of a loss whose inputs carry a tangent would need "
                "one for its own tangent; take the gradient outside the dual level"
            )
        try:
            (gradient,) = ctx.saved_tensors
        except RuntimeError as error:
            # the backward may hand the gradient over as it is (torch.autograd.grad
            # returns it itself): autograd's version check on it names no argument
            if "inplace operation" not in str(error):
                raise
            raise RuntimeError(
                "focal.torch: the gradient this loss handed out has been modified in place "
                "since; clone it before changing it to call backward on this loss again"
            ) from None
        if (grad_output.dim() == 0 and gradient.dtype == ctx.dtype
                and _is_one(grad_output)):
            # loss.backward() of a reduced loss: the saved gradient as it is, no pass
            # over it (after a backward with retain_graph, autograd copies it into .grad:
            # the graph still holds it).  Once only: a later backward through a retained
            # graph hands out a copy, a tensor of its own (two torch.autograd.grad
            # results were one tensor, and changing one in place changed the other)
            if ctx.handed_out:
                return gradient.clone(), None, None, None
            ctx.handed_out = True
            return gradient, None, None, None
        if ctx.row_axis is not None and grad_output.dim() != 0:
            # a row's loss depends on that row's logits only
            grad_output = grad_output.unsqueeze(ctx.row_axis)
        scaled = gradient * grad_output
        return scaled.to(ctx.dtype), None, None, None


class _SecondDerivativeRefused(torch.autograd.Function):
    """The forward-mode tangent of a focal loss as it is, in a graph whose
    backward to the loss's inputs raises (see _FocalFunction.jvp)."""

    @staticmethod
    def forward(ctx: Any, tangent: "torch.Tensor", inputs: "torch.Tensor") -> "torch.Tensor":
        return tangent.view_as(tangent)  # (a view: no copy of the tangent)

    @staticmethod
    def backward(ctx: Any, grad_output: "torch.Tensor") -> Tuple[None, None]:
        raise RuntimeError(
            "focal.torch: second derivatives are not available: the forward-mode tangent of "
            "a focal loss cannot be differentiated with respect to its inputs (the "
            "derivative of the loss's saved gradient)"
        )


def _is_one(grad_output: "torch.Tensor") -> bool:
    """Whether a 0-d incoming gradient is 1; False for the batched tensors of a
    vectorised backward (jacobian(..., vectorize=True), gradcheck's batched check),
    which have no single value to read (item() raised PyTorch's "Batching rule not
    implemented")."""
    try:
        return bool(grad_output.item() == 1.0)
    except RuntimeError:
        return False


# focal's argument names in its messages, and this module's (focal's softmax calls
# the targets `labels`, every family the inputs `logits`)
_TORCH_NAMES = (("logits:", "inputs:"), ("labels:", "targets:"), ("axis:", "dim:"))


def _evaluate(inputs: "torch.Tensor", loss: Callable[[np.ndarray], Any],
              loss_and_grad: Callable[[np.ndarray], Tuple[Any, Any]],
              row_axis: Optional[int]) -> "torch.Tensor":
    logits = _logits(inputs)
    loss = _args.renamed(loss, _TORCH_NAMES)
    loss_and_grad = _args.renamed(loss_and_grad, _TORCH_NAMES)
    # inside Function.forward grad mode is off: decide here whether a gradient is wanted,
    # for the backward or for forward mode (a dual tensor needs no requires_grad: taking
    # the plain path, its tangent was dropped without a word)
    if ((inputs.requires_grad and torch.is_grad_enabled())
            or forward_ad.unpack_dual(inputs).tangent is not None):
        return _FocalFunction.apply(inputs, logits, loss_and_grad, row_axis)
    return _as_tensor(loss(logits), inputs.dtype)


def _alpha(alpha: Any) -> Any:
    """torchvision's convention: a negative alpha turns the weighting off, be it a
    number, a NumPy scalar or a 0-d tensor (torchvision tests alpha >= 0)."""
    value = _argument("alpha", alpha)
    if isinstance(value, bool) or np.ndim(value) != 0:
        return value
    dtype = np.asarray(value).dtype
    # (a bfloat16 tensor arrives as ml_dtypes' bfloat16, of kind "V")
    if (dtype.kind in "iuf" or _args.is_bfloat16(dtype)) and value < 0:
        return None
    return value


# ----------------------------------------------------------------------------
# Public functions


def sigmoid_focal_loss(
    inputs: "torch.Tensor",
    targets: Any,
    alpha: Any = 0.25,
    gamma: Real = 2,
    reduction: Reduction = "none",
    *,
    weights: Any = None,
    ignore_index: SupportsIndex = -1,
) -> "torch.Tensor":
    """Sigmoid focal loss of CPU tensors, a drop-in for torchvision's.

    Same signature, defaults and results as
    ``torchvision.ops.sigmoid_focal_loss``; computed by focal's C core in one
    pass, exactly in the tails.  When `inputs` requires a gradient (and grad
    mode is on), the gradient is computed in the same pass and kept for the
    backward.

    Parameters
    ----------
    inputs : Tensor
        Logits of any shape on the CPU; float16, bfloat16, float32 or float64
        (float16 and bfloat16 are computed in float32; the result has the
        inputs' dtype).  Read in place, any strides.
    targets : Tensor or array_like
        Dense targets in [0, 1] of the inputs' shape (or broadcastable), or
        integer class indices of shape ``inputs.shape[:-1]``: c in [0, C)
        makes class c positive in that row, C is background, `ignore_index`
        an ignored row.
    alpha : float or Tensor, default 0.25
        Weight of the positives, alpha_t = alpha y + (1 - alpha)(1 - y); a
        negative value (torchvision's -1) or None turns the weighting off; one
        value per class is also accepted.
    gamma : float, default 2
        Focusing parameter >= 0.
    reduction : {"none", "mean", "sum", "sum_over_positives"}, default "none"
        "none": the loss of every element; "mean" (over elements not
        ignored, weighted by `weights`); "sum"; "sum_over_positives" (the
        paper's normalisation by the number of positives).
    weights : Tensor or array_like, optional
        Non-negative weights broadcastable to the inputs' shape (keyword only).
    ignore_index : int, default -1
        With class-index targets, the index of an ignored row (keyword only).

    Returns
    -------
    Tensor
        The loss, of the inputs' dtype: a 0-d tensor when reduced, else of
        the inputs' shape.

    Raises
    ------
    TypeError
        For a tensor that is not on the CPU (move it with ``.cpu()``), a
        sparse or nested tensor, a tensor of a ``torch.func`` transform, or
        logits that are not a floating-point tensor.

    See Also
    --------
    focal.loss_and_grad : the same over NumPy arrays.

    Examples
    --------
    >>> import torch, focal.torch
    >>> x = torch.tensor([[2.0, -1.0, 0.5]], requires_grad=True)
    >>> y = torch.tensor([[1.0, 0.0, 0.0]])
    >>> loss = focal.torch.sigmoid_focal_loss(x, y, reduction="sum")
    >>> loss.backward()
    >>> x.grad.shape
    torch.Size([1, 3])
    """
    _refuse_transforms(inputs=inputs, targets=targets, weights=weights, alpha=alpha, gamma=gamma,
                       ignore_index=ignore_index)
    y = _argument("targets", targets)
    options = dict(alpha=_alpha(alpha), gamma=_argument("gamma", gamma), reduction=reduction,
                   weights=_argument("weights", weights),
                   ignore_index=_argument("ignore_index", ignore_index))
    return _evaluate(inputs, lambda x: focal.loss(x, y, **options),
                     lambda x: focal.loss_and_grad(x, y, **options), None)


def _class_dim(dim: Any, ndim: int) -> int:
    """F.cross_entropy's class axis by default: 1 for batched input, 0 for a single row."""
    if dim is None:
        return 1 if ndim >= 2 else 0
    if isinstance(dim, (bool, np.bool_)):
        raise TypeError(f"dim: expected an integer or None, got {dim!r}")
    try:
        dim = operator.index(dim)  # (any integer type, as the core's axis)
    except TypeError:
        raise TypeError(f"dim: expected an integer or None, got {dim!r}") from None
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim: {dim} is out of range for inputs with {ndim} dimensions")
    return int(dim) % ndim


def softmax_focal_loss(
    inputs: "torch.Tensor",
    targets: Any,
    alpha: Any = None,
    gamma: Real = 2.0,
    reduction: SoftmaxReduction = "mean",
    *,
    weights: Any = None,
    ignore_index: SupportsIndex = -100,
    dim: Optional[SupportsIndex] = None,
) -> "torch.Tensor":
    """Softmax focal loss of CPU tensors, with ``F.cross_entropy``'s conventions.

    -alpha_k (1 - p_k)^gamma log p_k for each row whose class is k, p the
    softmax along the class axis; gamma = 0 and no alpha give
    ``F.cross_entropy``.  Differentiable as `sigmoid_focal_loss` is: one pass
    computes the loss and its gradient.

    Parameters
    ----------
    inputs : Tensor
        Logits on the CPU, shape (C,), (N, C) or (N, C, d1, ...) as for
        ``F.cross_entropy`` (or any shape with `dim` naming the class axis);
        float16, bfloat16, float32 or float64.  Read in place, any strides.
    targets : Tensor or array_like
        Integer class indices of the inputs' shape without the class axis
        (`ignore_index` marks an ignored row), or probabilities of the
        inputs' shape.
    alpha : None, float or Tensor, default None
        None: no weighting; a float multiplies every row; one value per class
        weights each row by its class.
    gamma : float, default 2.0
        Focusing parameter >= 0.
    reduction : {"mean", "sum", "none"}, default "mean"
        "none" gives one value per row (the inputs' shape without the class
        axis); "mean" is over rows not ignored, weighted by `weights`.
    weights : Tensor or array_like, optional
        Non-negative row weights, broadcastable to the rows' shape.
    ignore_index : int, default -100
        The class index of an ignored row.
    dim : int, optional
        The class axis; by default 1, or 0 for 1-d inputs (``F.cross_entropy``).

    Returns
    -------
    Tensor
        The loss, of the inputs' dtype: 0-d when reduced, else one per row.

    Raises
    ------
    TypeError
        For a tensor that is not on the CPU (move it with ``.cpu()``), a
        sparse or nested tensor, a tensor of a ``torch.func`` transform, or
        logits that are not a floating-point tensor.

    See Also
    --------
    focal.softmax_loss_and_grad : the same over NumPy arrays.

    Examples
    --------
    >>> import torch, focal.torch
    >>> z = torch.zeros(4, 3, requires_grad=True)
    >>> loss = focal.torch.softmax_focal_loss(z, torch.tensor([0, 1, 2, -100]))
    >>> loss.backward()
    >>> float(z.grad[3].abs().sum())  # the ignored row
    0.0
    """
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs: expected a torch.Tensor, got {type(inputs).__name__}")
    _refuse_transforms(inputs=inputs, targets=targets, weights=weights, alpha=alpha, gamma=gamma,
                       ignore_index=ignore_index)
    axis = _class_dim(dim, inputs.dim())
    labels = _argument("targets", targets)
    options = dict(alpha=_argument("alpha", alpha), gamma=_argument("gamma", gamma), axis=axis,
                   reduction=reduction, weights=_argument("weights", weights),
                   ignore_index=_argument("ignore_index", ignore_index))

    def run() -> "torch.Tensor":
        return _evaluate(inputs, lambda x: focal.softmax_loss(x, labels, **options),
                         lambda x: focal.softmax_loss_and_grad(x, labels, **options), axis)

    # (a tensor not strided, or nested, which has no shape to read, is
    # refused by name in run(), without this warning)
    if (inputs.dim() == 0 or inputs.layout != torch.strided or inputs.is_nested
            or inputs.shape[axis] != 1):
        return run()
    # one class: focal's warning names focal's arguments (logits, axis), this
    # one the caller's
    _args.warn_at_caller(_args.one_class_softmax("inputs", "dim", axis))
    with _args.adapter_warned():
        return run()


# ----------------------------------------------------------------------------
# nn.Module forms


class SigmoidFocalLoss(torch.nn.Module):
    """`sigmoid_focal_loss` as an ``nn.Module``.

    Parameters
    ----------
    alpha, gamma, reduction, ignore_index
        As for `sigmoid_focal_loss` (the same defaults).

    Examples
    --------
    >>> import torch, focal.torch
    >>> criterion = focal.torch.SigmoidFocalLoss(reduction="mean")
    >>> criterion(torch.zeros(2, 3), torch.tensor([0, 3])).shape
    torch.Size([])
    """

    def __init__(self, alpha: Any = 0.25, gamma: Real = 2, reduction: Reduction = "none", *,
                 ignore_index: SupportsIndex = -1) -> None:
        super().__init__()
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction
        self.ignore_index = ignore_index

    def forward(self, inputs: "torch.Tensor", targets: Any, weights: Any = None) -> "torch.Tensor":
        """The loss of `inputs` against `targets` (optional per-element `weights`)."""
        return sigmoid_focal_loss(inputs, targets, self.alpha, self.gamma, self.reduction,
                                  weights=weights, ignore_index=self.ignore_index)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}"


class SoftmaxFocalLoss(torch.nn.Module):
    """`softmax_focal_loss` as an ``nn.Module``.

    Parameters
    ----------
    alpha, gamma, reduction, ignore_index, dim
        As for `softmax_focal_loss` (the same defaults).

    Examples
    --------
    >>> import torch, focal.torch
    >>> criterion = focal.torch.SoftmaxFocalLoss(gamma=2.0)
    >>> criterion(torch.zeros(2, 5), torch.tensor([1, 4])).shape
    torch.Size([])
    """

    def __init__(self, alpha: Any = None, gamma: Real = 2.0,
                 reduction: SoftmaxReduction = "mean", *, ignore_index: SupportsIndex = -100,
                 dim: Optional[SupportsIndex] = None) -> None:
        super().__init__()
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction
        self.ignore_index, self.dim = ignore_index, dim

    def forward(self, inputs: "torch.Tensor", targets: Any, weights: Any = None) -> "torch.Tensor":
        """The loss of `inputs` against `targets` (optional per-row `weights`)."""
        return softmax_focal_loss(inputs, targets, self.alpha, self.gamma, self.reduction,
                                  weights=weights, ignore_index=self.ignore_index, dim=self.dim)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}"

"""Type stubs of the C extension focal._core (internal)."""
from typing import Any, List, Optional, Tuple

import numpy as np

def set_num_threads(n: int, /) -> None: ...
def get_num_threads() -> int: ...
def set_simd_level(level: str, /) -> None: ...
def simd_level() -> str: ...
def supported_simd_levels() -> List[str]: ...
def set_softmax_row_kernels(on: bool, /) -> None: ...

# focal.jax's way into XLA: the FFI handler (a capsule) and its host functions
xla_hosts: List[Any]
def xla_ffi_handler() -> Any: ...
def xla_ffi_exiting() -> int: ...

def sigmoid_focal(
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    labels: bool = ...,
    alpha: Optional[float] = ...,
    alpha_per_class: Optional[np.ndarray] = ...,
    gamma: float = ...,
    weights: Optional[np.ndarray] = ...,
    ignore_index: int = ...,
    loss_out: Optional[np.ndarray] = ...,
    grad_out: Optional[np.ndarray] = ...,
    hess_out: Optional[np.ndarray] = ...,
    grad_divisor: float = ...,
    double_precision: bool = ...,
    star: bool = ...,
    beta: float = ...,
    sums_only: bool = ...,
    sum_weights: bool = ...,
    sum_positives: bool = ...,
    check_targets: bool = ...,
    loss_weight_scale: float = ...,
    grad_weight_scale: float = ...,
    weight_prescale: float = ...,
    loss: int = ...,
    extra: float = ...,
    extra2: float = ...,
    extra3: float = ...,
    extra4: float = ...,
) -> Tuple[float, float, float, float]: ...

# focal._sigmoid._entry's arguments, in its order (mode, logits, targets,
# alpha, gamma, reduction, weights, ignore_index, normalizer, out, beta, star,
# loss, extra, extra2, extra3, extra4, raw_sum): (loss, gradient, second
# derivative) of the common call, NotImplemented for any other
def sigmoid_plain(*arguments: Any) -> Any: ...
# the same for focal._softmax._entry's arguments (mode, logits, labels, alpha,
# gamma, axis, reduction, weights, ignore_index, normalizer, out, raw_sum)
def softmax_plain(*arguments: Any) -> Any: ...

# the rows of the C table of elementwise losses (src/losses.h), by number: the
# `loss` argument of sigmoid_focal
elementwise_losses: Tuple[str, ...]
def count_labels(labels: np.ndarray, num_classes: int, ignore_index: int, /) -> Tuple[int, int]: ...
def chunk_plan(total: int, chunk_size: int, /) -> Tuple[int, int, int]: ...
def softmax_focal(
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    labels: bool,
    alpha: Optional[float],
    alpha_per_class: Optional[np.ndarray],
    gamma: float,
    weights: Optional[np.ndarray],
    ignore_index: int,
    loss_out: Optional[np.ndarray],
    grad_out: Optional[np.ndarray],
    grad_divisor: float,
    double_precision: bool,
    sums_only: bool = ...,
    loss_weight_scale: float = ...,
    grad_weight_scale: float = ...,
    hess_out: Optional[np.ndarray] = ...,
    weight_prescale: float = ...,
    check_targets: bool = ...,
) -> Tuple[float, float, float]: ...

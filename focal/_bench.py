"""python -m focal bench: focal's speed against a copy pass, NumPy, PyTorch and JAX.

One process, one RetinaNet-sized batch (float32 logits of shape
(2, 100000, 80), about 0.1% of the targets positive, alpha 0.25, gamma 2,
mean reduction), with dense and with class-index targets, forward only and
forward + gradient; the softmax form on (2, 100000, 81); and the call
overhead on 1,000 elements.  Every contender is warmed up once (JAX's jit
compilation happens there), then timed in interleaved rounds: round r runs
every contender once, in an order rotated by r, each sample once the
process's other threads are idle (settle: a peer's worker threads may spin on
after its call), and the table shows medians.
A peer that is not installed is listed as skipped.  The summary compares this
run's figures with the core's speed targets; the benchmark never fails on
time (exit code 0).
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import focal

from . import _core
from ._batch import numpy_focal_loss_and_grad

ALPHA = 0.25
GAMMA = 2.0
IMAGES, ANCHORS, CLASSES = 2, 100_000, 80
SMALL = 1_000               # elements of the call-overhead workload
SMALL_CALLS = 2_000         # calls timed together for one sample of it
LOSS_TOLERANCE = 1e-4       # relative agreement of every peer's loss with focal's
GRAD_TOLERANCE = 1e-3       # max |difference| over max |focal's gradient|
TIME_BUDGET = 170.0         # seconds: no round starts that would end later (busy machines)
MIN_ROUNDS = 3              # rounds run whatever the budget

COPY = "memory yardstick"
DENSE = "sigmoid, dense targets"
INDEX = "sigmoid, class indices"
SOFTMAX = "softmax, class indices"
OVERHEAD = "call, 1,000 elements"
ONE_CORE = "one core, dense targets"
FWD, FWD_GRAD = "forward", "forward + gradient"
FWD_GRAD_15 = "forward + gradient, gamma 1.5"
FWD_GRAD_64 = "forward + gradient, float64"
FWD_GRAD_POLY1 = "forward + gradient, Poly-1 focal loss"
FWD_GRAD_VARIFOCAL = "forward + gradient, varifocal loss"
FWD_GRAD_QUALITY = "forward + gradient, quality focal loss"
FWD_GRAD_ASYMMETRIC = "forward + gradient, asymmetric loss"


# ----------------------------------------------------------------------------
# The data


@dataclass
class Batch:
    logits: np.ndarray         # (images, anchors, classes) float32
    labels: np.ndarray         # (images, anchors): class, `classes` (background) or -1 (ignored)
    dense: np.ndarray          # one-hot float32 of the logits' shape (ignored rows all zero)
    valid: np.ndarray          # (images, anchors, 1) float32: 0 for ignored anchors
    softmax_logits: np.ndarray  # (images, anchors, classes + 1) float32
    softmax_labels: np.ndarray  # 0 background, 1..classes objects, -100 ignored
    small_logits: np.ndarray   # (SMALL,) float32
    small_targets: np.ndarray  # (SMALL,) float32


def make_batch(anchors: int) -> Batch:
    """Deterministic (seeded) data shaped like a RetinaNet classification head's output."""
    rng = np.random.default_rng(0)
    shape = (IMAGES, anchors, CLASSES)
    logits = rng.normal(focal.prior_bias(0.01), 1.5, size=shape).astype(np.float32)
    labels = np.full((IMAGES, anchors), CLASSES, dtype=np.int64)       # background
    positive = rng.random((IMAGES, anchors)) < 0.001 * CLASSES         # 0.1% of the targets
    labels[positive] = rng.integers(0, CLASSES, int(positive.sum()))
    labels[rng.random((IMAGES, anchors)) < 0.002] = -1                # ignored
    dense = (labels[..., None] == np.arange(CLASSES)).astype(np.float32)
    valid = (labels >= 0).astype(np.float32)[..., None]

    # the softmax head: Detectron's convention, class 0 is the background
    bias = focal.softmax_prior_bias(CLASSES + 1, 0.01)
    softmax_logits = rng.normal(bias, 1.5, size=(IMAGES, anchors, CLASSES + 1)).astype(np.float32)
    softmax_labels = np.where(labels == CLASSES, 0, labels + 1)
    softmax_labels[labels < 0] = -100

    small_logits = rng.normal(0.0, 2.0, SMALL).astype(np.float32)
    small_targets = (rng.random(SMALL) < 0.05).astype(np.float32)
    return Batch(logits, labels, dense, valid, softmax_logits, softmax_labels,
                 small_logits, small_targets)


# ----------------------------------------------------------------------------
# NumPy as a notebook user writes it (temporaries everywhere)


def numpy_focal_loss(x, y, alpha, gamma, valid=None):
    """The sigmoid focal loss formula; with `valid`, the mean over valid anchors."""
    p = 1 / (1 + np.exp(-x))
    ce = y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    loss = alpha_t * (1 - p_t) ** gamma * ce
    if valid is None:
        return loss.mean()
    return (loss * valid).sum() / (valid.sum() * x.shape[-1])


def numpy_masked_focal_loss_and_grad(x, y, valid, alpha, gamma):
    """focal/_batch.py's formula and paper gradient, ignored anchors masked out."""
    p = 1 / (1 + np.exp(-x))
    ce = y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    count = valid.sum() * x.shape[-1]
    loss = (alpha_t * (1 - p_t) ** gamma * ce * valid).sum() / count
    sign = 2 * y - 1
    grad = alpha_t * sign * (1 - p_t) ** gamma * (gamma * p_t * np.log(p_t) + p_t - 1)
    grad = grad * valid / count
    return loss, grad


def numpy_softmax_focal_loss(z, labels, gamma, ignore_index=-100):
    """-(1 - p_k)^gamma log p_k of each row's class k, mean over rows not ignored."""
    valid = labels != ignore_index
    k = np.where(valid, labels, 0)[..., None]
    shifted = z - z.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=-1))
    log_p = np.take_along_axis(shifted, k, axis=-1)[..., 0] - log_sum
    p = np.exp(log_p)
    loss = -((1 - p) ** gamma) * log_p
    return (loss * valid).sum() / valid.sum()


def numpy_softmax_focal_loss_and_grad(z, labels, gamma, ignore_index=-100):
    """The loss above and its gradient: d FL / d z_j = c (delta_kj - p_j) with
    c = gamma (1 - p_k)^(gamma - 1) p_k log p_k - (1 - p_k)^gamma."""
    valid = labels != ignore_index
    count = valid.sum()
    k = np.where(valid, labels, 0)[..., None]
    shifted = z - z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=-1, keepdims=True)
    probs = e / total
    log_p = (np.take_along_axis(shifted, k, axis=-1) - np.log(total))[..., 0]
    p = np.exp(log_p)
    loss = (-((1 - p) ** gamma) * log_p * valid).sum() / count
    c = (gamma * (1 - p) ** (gamma - 1) * p * log_p - (1 - p) ** gamma) * valid / count
    grad = -probs * c[..., None]
    np.put_along_axis(grad, k, np.take_along_axis(grad, k, axis=-1) + c[..., None], axis=-1)
    return loss, grad


# ----------------------------------------------------------------------------
# Contenders


@dataclass
class Contender:
    workload: str
    mode: str                  # FWD, FWD_GRAD or "" (copy pass, call overhead)
    name: str
    role: str                  # "copy", "focal", "peer", "adapter", "np.add", "call"
    run: Optional[Callable[[], Any]] = None
    skipped: str = ""          # why, when run is None
    calls: int = 1             # calls per timed sample
    elements: int = 0          # elements per call (0: no per-element figure)
    threads: int = 0           # threads the call may use (for per-core figures)
    times: List[float] = field(default_factory=list)
    result: Any = None         # the warm-up's return value: (loss, grad or None)

    @property
    def key(self) -> Tuple[str, str]:
        return self.workload, self.mode

    def median_ms(self) -> float:
        return float(np.median(self.times)) * 1e3 / self.calls

    def ns_per_element_per_core(self) -> float:
        """The median time per element times the threads used: a figure machines of any
        core count can compare."""
        return self.median_ms() * 1e6 / self.elements * max(self.threads, 1)


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _loss_value(value: Any) -> float:
    return float(_as_numpy(value))


def _on_one_core(function: Callable[[], Any]) -> Callable[[], Any]:
    """`function` run with focal limited to one thread (the per-core kernel figures)."""
    def run():
        threads = focal.get_num_threads()
        focal.set_num_threads(1)
        try:
            return function()
        finally:
            focal.set_num_threads(threads)
    return run


def focal_contenders(b: Batch, small_calls: int) -> List[Contender]:
    x, y, labels = b.logits, b.dense, b.labels
    sx, sl = b.softmax_logits, b.softmax_labels
    x64 = x.astype(np.float64)
    copy_out = np.empty_like(x)
    small_x, small_y = b.small_logits, b.small_targets
    add_calls = small_calls
    threads = focal.get_num_threads()
    n = x.size

    def copy():
        np.copyto(copy_out, x)
        return None

    def many(function):
        def run():
            for _ in range(add_calls):
                function()
        return run

    return [
        Contender(COPY, "", f"copy pass (np.copyto, {x.nbytes / 2**20:.0f} MiB)", "copy", copy,
                  elements=n, threads=1),
        Contender(DENSE, FWD, "focal.loss", "focal", lambda: (focal.loss(x, y), None),
                  elements=n, threads=threads),
        Contender(DENSE, FWD_GRAD, "focal.loss_and_grad", "focal",
                  lambda: focal.loss_and_grad(x, y), elements=n, threads=threads),
        Contender(INDEX, FWD, "focal.loss", "focal", lambda: (focal.loss(x, labels), None),
                  elements=n, threads=threads),
        Contender(INDEX, FWD_GRAD, "focal.loss_and_grad", "focal",
                  lambda: focal.loss_and_grad(x, labels), elements=n, threads=threads),
        Contender(SOFTMAX, FWD, "focal.softmax_loss", "focal",
                  lambda: (focal.softmax_loss(sx, sl, gamma=GAMMA), None),
                  elements=sx.size, threads=threads),
        Contender(SOFTMAX, FWD_GRAD, "focal.softmax_loss_and_grad", "focal",
                  lambda: focal.softmax_loss_and_grad(sx, sl, gamma=GAMMA),
                  elements=sx.size, threads=threads),
        Contender(ONE_CORE, FWD, "focal.loss, 1 thread", "core",
                  _on_one_core(lambda: focal.loss(x, y)), elements=n, threads=1),
        Contender(ONE_CORE, FWD_GRAD, "focal.loss_and_grad, 1 thread", "core",
                  _on_one_core(lambda: focal.loss_and_grad(x, y)), elements=n, threads=1),
        Contender(ONE_CORE, FWD_GRAD_15, "focal.loss_and_grad, 1 thread", "core",
                  _on_one_core(lambda: focal.loss_and_grad(x, y, gamma=1.5)),
                  elements=n, threads=1),
        Contender(ONE_CORE, FWD_GRAD_64, "focal.loss_and_grad, 1 thread", "core",
                  _on_one_core(lambda: focal.loss_and_grad(x64, y)), elements=n, threads=1),
        Contender(ONE_CORE, FWD_GRAD_POLY1, "focal.poly1_loss_and_grad, 1 thread", "core",
                  _on_one_core(lambda: focal.poly1_loss_and_grad(x, y)), elements=n, threads=1),
        Contender(ONE_CORE, FWD_GRAD_VARIFOCAL, "focal.varifocal_loss_and_grad, 1 thread", "core",
                  _on_one_core(lambda: focal.varifocal_loss_and_grad(x, y)), elements=n,
                  threads=1),
        Contender(ONE_CORE, FWD_GRAD_ASYMMETRIC, "focal.asymmetric_loss_and_grad, 1 thread",
                  "core", _on_one_core(lambda: focal.asymmetric_loss_and_grad(x, y)), elements=n,
                  threads=1),
        Contender(ONE_CORE, FWD_GRAD_QUALITY, "focal.quality_loss_and_grad, 1 thread", "core",
                  _on_one_core(lambda: focal.quality_loss_and_grad(x, y)), elements=n,
                  threads=1),
        Contender(OVERHEAD, "", "np.add(a, a), bare", "np.add",
                  many(lambda: np.add(small_x, small_x)), calls=add_calls),
        Contender(OVERHEAD, "", "focal.loss(a, y)", "call",
                  many(lambda: focal.loss(small_x, small_y)), calls=add_calls),
        Contender(OVERHEAD, "", "focal.loss_and_grad(a, y)", "call",
                  many(lambda: focal.loss_and_grad(small_x, small_y)), calls=add_calls),
    ]


def numpy_contenders(b: Batch) -> List[Contender]:
    x, y, valid = b.logits, b.dense, b.valid
    sx, sl = b.softmax_logits, b.softmax_labels

    def quiet(function):
        def run():
            with np.errstate(all="ignore"):  # the formula's overflow is harmless here
                return function()
        return run

    name = "NumPy formula (temporaries)"
    return [
        Contender(DENSE, FWD, name, "peer",
                  quiet(lambda: (numpy_focal_loss(x, y, ALPHA, GAMMA), None))),
        Contender(DENSE, FWD_GRAD, name, "peer",
                  quiet(lambda: numpy_focal_loss_and_grad(x, y, ALPHA, GAMMA))),
        Contender(INDEX, FWD, name, "peer",
                  quiet(lambda: (numpy_focal_loss(x, y, ALPHA, GAMMA, valid), None))),
        Contender(INDEX, FWD_GRAD, name, "peer",
                  quiet(lambda: numpy_masked_focal_loss_and_grad(x, y, valid, ALPHA, GAMMA))),
        Contender(SOFTMAX, FWD, name, "peer",
                  quiet(lambda: (numpy_softmax_focal_loss(sx, sl, GAMMA), None))),
        Contender(SOFTMAX, FWD_GRAD, name, "peer",
                  quiet(lambda: numpy_softmax_focal_loss_and_grad(sx, sl, GAMMA))),
    ]


def _skipped(name: str, reason: str) -> List[Contender]:
    return [Contender(workload, mode, name, "peer", skipped=reason)
            for workload in (DENSE, INDEX, SOFTMAX) for mode in (FWD, FWD_GRAD)]


def _import_failure(module: str, error: BaseException) -> str:
    if isinstance(error, ImportError) and getattr(error, "name", None) in (module, None):
        return f"{module} not installed"
    return f"{module} failed to import: {type(error).__name__}: {str(error).splitlines()[0]}"


def torch_contenders(b: Batch, cores: int) -> Tuple[List[Contender], str]:
    """PyTorch eager on all usable cores: torchvision's sigmoid_focal_loss when
    torchvision imports, else its formula written here with torch ops."""
    try:
        import torch
        import torch.nn.functional as F
    except Exception as error:  # noqa: BLE001 - any failure means: no PyTorch peer
        reason = _import_failure("torch", error)
        return _skipped("PyTorch eager", reason), reason
    torch.set_num_threads(cores)
    try:
        from torchvision.ops import sigmoid_focal_loss as torchvision_loss
        name = "PyTorch eager (torchvision)"
    except Exception:  # noqa: BLE001 - the formula below is the same
        torchvision_loss = None
        name = "PyTorch eager (torchvision formula)"

    def sigmoid_focal(x, y):
        if torchvision_loss is not None:
            return torchvision_loss(x, y, alpha=ALPHA, gamma=GAMMA, reduction="none")
        p = torch.sigmoid(x)
        ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * ((1 - p_t) ** GAMMA)
        alpha_t = ALPHA * y + (1 - ALPHA) * (1 - y)
        return alpha_t * loss

    x = torch.from_numpy(b.logits)
    y = torch.from_numpy(b.dense)
    valid = torch.from_numpy(b.valid)
    count = float(b.valid.sum()) * b.logits.shape[-1]
    sx = torch.from_numpy(b.softmax_logits).reshape(-1, CLASSES + 1)
    sl = torch.from_numpy(b.softmax_labels).reshape(-1)
    softmax_count = float((b.softmax_labels != -100).sum())
    x_leaf = torch.from_numpy(b.logits).requires_grad_(True)
    sx_leaf = sx.detach().requires_grad_(True)

    def dense_loss(x):
        return sigmoid_focal(x, y).mean()

    def index_loss(x):
        return (sigmoid_focal(x, y) * valid).sum() / count

    def softmax_loss(z):
        ce = F.cross_entropy(z, sl, reduction="none", ignore_index=-100)
        p_t = torch.exp(-ce)
        return ((1 - p_t) ** GAMMA * ce).sum() / softmax_count

    def forward(function, argument):
        def run():
            with torch.inference_mode():
                return function(argument), None
        return run

    def backward(function, leaf, shape):
        def run():
            value = function(leaf)
            (gradient,) = torch.autograd.grad(value, leaf)
            return value.detach(), gradient.reshape(shape)
        return run

    softmax_name = "PyTorch eager (cross_entropy)"
    return [
        Contender(DENSE, FWD, name, "peer", forward(dense_loss, x)),
        Contender(DENSE, FWD_GRAD, name, "peer", backward(dense_loss, x_leaf, b.logits.shape)),
        Contender(INDEX, FWD, name, "peer", forward(index_loss, x)),
        Contender(INDEX, FWD_GRAD, name, "peer", backward(index_loss, x_leaf, b.logits.shape)),
        Contender(SOFTMAX, FWD, softmax_name, "peer", forward(softmax_loss, sx)),
        Contender(SOFTMAX, FWD_GRAD, softmax_name, "peer",
                  backward(softmax_loss, sx_leaf, b.softmax_logits.shape)),
    ], ""


def jax_contenders(b: Batch) -> Tuple[List[Contender], str]:
    """jax.jit of optax's sigmoid_focal_loss (forward, and value_and_grad)."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except Exception as error:  # noqa: BLE001 - any failure means: no JAX peer
        module = "optax" if "optax" in str(error) else "jax"
        reason = _import_failure(module, error)
        return _skipped("jax.jit", reason), reason

    x = jnp.asarray(b.logits)
    y = jnp.asarray(b.dense)
    valid = jnp.asarray(b.valid)
    count = float(b.valid.sum()) * b.logits.shape[-1]
    sx = jnp.asarray(b.softmax_logits)
    sl = jnp.asarray(b.softmax_labels)
    softmax_count = float((b.softmax_labels != -100).sum())

    # the targets are arguments, not closed-over constants: XLA would fold them
    def dense_loss(x, y):
        return optax.sigmoid_focal_loss(x, y, alpha=ALPHA, gamma=GAMMA).mean()

    def index_loss(x, y, valid):
        return (optax.sigmoid_focal_loss(x, y, alpha=ALPHA, gamma=GAMMA) * valid).sum() / count

    def softmax_loss(z, labels):
        keep = labels != -100
        ce = optax.softmax_cross_entropy_with_integer_labels(z, jnp.where(keep, labels, 0))
        p_t = jnp.exp(-ce)
        return jnp.sum(jnp.where(keep, (1 - p_t) ** GAMMA * ce, 0.0)) / softmax_count

    def forward(function, *arguments):
        compiled = jax.jit(function)

        def run():
            return compiled(*arguments).block_until_ready(), None
        return run

    def value_and_grad(function, *arguments):
        compiled = jax.jit(jax.value_and_grad(function))  # with respect to the logits

        def run():
            value, gradient = compiled(*arguments)
            gradient.block_until_ready()
            return value, gradient
        return run

    name = "jax.jit(optax.sigmoid_focal_loss)"
    softmax_name = "jax.jit(optax softmax CE focal)"
    return [
        Contender(DENSE, FWD, name, "peer", forward(dense_loss, x, y)),
        Contender(DENSE, FWD_GRAD, name + " value_and_grad", "peer",
                  value_and_grad(dense_loss, x, y)),
        Contender(INDEX, FWD, name, "peer", forward(index_loss, x, y, valid)),
        Contender(INDEX, FWD_GRAD, name + " value_and_grad", "peer",
                  value_and_grad(index_loss, x, y, valid)),
        Contender(SOFTMAX, FWD, softmax_name, "peer", forward(softmax_loss, sx, sl)),
        Contender(SOFTMAX, FWD_GRAD, softmax_name + " value_and_grad", "peer",
                  value_and_grad(softmax_loss, sx, sl)),
    ], ""


def adapter_contenders(b: Batch) -> List[Contender]:
    """focal.torch and focal.jax, forward + gradient, with every overhead of
    the adapters (tensor views, the autograd graph, JAX's FFI call)."""
    contenders: List[Contender] = []
    x_shape, softmax_shape = b.logits.shape, b.softmax_logits.shape
    softmax_count = float((b.softmax_labels != -100).sum())
    try:
        import torch
        import focal.torch as focal_torch
    except Exception as error:  # noqa: BLE001 - any failure means: no row
        reason = _import_failure("torch", error)
        contenders += [Contender(workload, FWD_GRAD, "focal.torch forward + backward", "adapter",
                                 skipped=reason) for workload in (DENSE, INDEX, SOFTMAX)]
    else:
        y = torch.from_numpy(b.dense)
        labels = torch.from_numpy(b.labels)
        softmax_labels = torch.from_numpy(b.softmax_labels).reshape(-1)
        x_leaf = torch.from_numpy(b.logits).requires_grad_(True)
        sx_leaf = torch.from_numpy(b.softmax_logits).reshape(-1, CLASSES + 1).requires_grad_(True)

        def backward(loss, leaf, shape):
            def run():
                value = loss(leaf)
                (gradient,) = torch.autograd.grad(value, leaf)
                return value.detach(), gradient.reshape(shape)
            return run

        name = "focal.torch forward + backward"
        contenders += [
            Contender(DENSE, FWD_GRAD, name, "adapter", backward(
                lambda x: focal_torch.sigmoid_focal_loss(x, y, ALPHA, GAMMA, "mean"),
                x_leaf, x_shape)),
            Contender(INDEX, FWD_GRAD, name, "adapter", backward(
                lambda x: focal_torch.sigmoid_focal_loss(x, labels, ALPHA, GAMMA, "mean"),
                x_leaf, x_shape)),
            Contender(SOFTMAX, FWD_GRAD, name, "adapter", backward(
                lambda z: focal_torch.softmax_focal_loss(z, softmax_labels, gamma=GAMMA),
                sx_leaf, softmax_shape)),
        ]
    try:
        import jax
        import jax.numpy as jnp
        import focal.jax as focal_jax
    except Exception as error:  # noqa: BLE001 - any failure means: no row
        reason = _import_failure("jax", error)
        contenders += [Contender(workload, FWD_GRAD, "jax.jit(focal.jax) value_and_grad",
                                 "adapter", skipped=reason) for workload in (DENSE, INDEX, SOFTMAX)]
    else:
        count = float(b.valid.sum()) * b.logits.shape[-1]

        def dense_loss(x, y):
            return focal_jax.sigmoid_focal_loss(x, y, ALPHA, GAMMA).mean()

        def index_loss(x, labels):  # ignored rows (-1) give 0
            return focal_jax.sigmoid_focal_loss(x, labels, ALPHA, GAMMA).sum() / count

        def softmax_loss(z, labels):
            return focal_jax.softmax_focal_loss(z, labels, gamma=GAMMA).sum() / softmax_count

        def value_and_grad(function, *arguments):
            compiled = jax.jit(jax.value_and_grad(function))

            def run():
                value, gradient = compiled(*arguments)
                gradient.block_until_ready()
                return value, gradient
            return run

        name = "jax.jit(focal.jax) value_and_grad"
        contenders += [
            Contender(DENSE, FWD_GRAD, name, "adapter", value_and_grad(
                dense_loss, jnp.asarray(b.logits), jnp.asarray(b.dense))),
            Contender(INDEX, FWD_GRAD, name, "adapter", value_and_grad(
                index_loss, jnp.asarray(b.logits), jnp.asarray(b.labels))),
            Contender(SOFTMAX, FWD_GRAD, name, "adapter", value_and_grad(
                softmax_loss, jnp.asarray(b.softmax_logits), jnp.asarray(b.softmax_labels))),
        ]
    return contenders


# ----------------------------------------------------------------------------
# The machine


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(module: str) -> str:
    """A module's version if it is already imported (no import here)."""
    loaded = sys.modules.get(module)
    return getattr(loaded, "__version__", "?") if loaded is not None else ""


def machine_lines(cores: int, torch_reason: str, jax_reason: str) -> List[str]:
    load = ""
    if hasattr(os, "getloadavg"):
        one_minute = os.getloadavg()[0]
        load = f"; load average {one_minute:.1f} at start"
        if one_minute > cores + 0.5:
            load += " (busy: other processes share these cores, timings are noisy)"
    torch_text = torch_reason or f"torch {_version('torch')} ({cores} threads)"
    if jax_reason:
        jax_text = jax_reason
    else:
        jax_text = (f"jax {_version('jax')} (jaxlib {_version('jaxlib')}, "
                    f"optax {_version('optax')}, {sys.modules['jax'].default_backend()})")
    return [
        f"machine: {cpu_model()}, {cores} usable cores (os.sched_getaffinity){load}",
        f"         {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"focal {focal.__version__}: SIMD level {_core.simd_level()}, "
        f"{focal.get_num_threads()} threads; numpy {np.__version__}; {torch_text}; {jax_text}",
    ]


# ----------------------------------------------------------------------------
# Timing


SETTLE_STEP = 0.01           # seconds: one look at the process's other threads (Linux
                             # counts their CPU time in ticks of 4 ms)
SETTLE_LIMIT = 0.3           # seconds: the longest wait for them before a sample
SETTLE_BUSY = 0.2            # their CPU time over wall time above which they count as busy


def settle() -> float:
    """Wait until this process's other threads are idle; returns the seconds waited.

    A library's worker threads may keep spinning for a while after its call
    returns (XLA's, after a JAX call: about 35 ms of a core on the bench's
    batch), and whichever contender runs next would share its cores with
    them.  While this thread sleeps, the process's CPU time grows only by
    theirs, so the wait ends once a sleep of SETTLE_STEP passes with less
    than SETTLE_BUSY of it, or after SETTLE_LIMIT.  The wait is short on
    purpose: a core idle for long runs the next call slower at first, as on
    any machine between calls.
    """
    begin = time.perf_counter()
    while True:
        cpu, tick = time.process_time(), time.perf_counter()
        time.sleep(SETTLE_STEP)
        now = time.perf_counter()
        if time.process_time() - cpu < SETTLE_BUSY * (now - tick) or now - begin > SETTLE_LIMIT:
            return now - begin


def run_rounds(contenders: List[Contender], rounds: int, deadline: float) -> int:
    """Warm-up once each, then up to `rounds` rounds; round r runs every contender
    once, starting at contender r (a rotating order).  Past the first
    MIN_ROUNDS, no round starts that would end after `deadline` (a
    time.perf_counter() value) on the pace so far.  Returns the rounds run."""
    active = [(c, c.run) for c in contenders if c.run is not None]
    for contender, run in active:
        contender.result = run()
    gc.collect()
    begin = time.perf_counter()
    done = 0
    for r in range(rounds):
        if done >= MIN_ROUNDS:
            pace = (time.perf_counter() - begin) / done
            if time.perf_counter() + pace > deadline:
                break
        start = r % len(active)
        for contender, run in active[start:] + active[:start]:
            settle()
            tick = time.perf_counter()
            run()
            contender.times.append(time.perf_counter() - tick)
        done += 1
    return done


def check_results(contenders: List[Contender]) -> List[str]:
    """Each peer's loss (and gradient) against focal's in the same workload and mode."""
    reference: Dict[Tuple[str, str], Contender] = {
        c.key: c for c in contenders if c.role == "focal" and c.result is not None}
    warnings = []
    checked = 0
    for c in contenders:
        if c.role not in ("peer", "adapter") or c.result is None or c.key not in reference:
            continue
        ours_loss, ours_grad = reference[c.key].result
        peer_loss, peer_grad = c.result
        ours, theirs = _loss_value(ours_loss), _loss_value(peer_loss)
        relative = abs(theirs - ours) / abs(ours) if ours != 0 else abs(theirs)
        checked += 1
        if not relative <= LOSS_TOLERANCE:  # also catches NaN
            warnings.append(f"WARNING: {c.workload}, {c.mode}: {c.name} loss {theirs:.9g} differs "
                            f"from focal's {ours:.9g} by {relative:.1e} relative "
                            f"(tolerance {LOSS_TOLERANCE:g})")
        if ours_grad is not None and peer_grad is not None:
            g_ours, g_peer = _as_numpy(ours_grad), _as_numpy(peer_grad)
            scale = float(np.max(np.abs(g_ours)))
            difference = float(np.max(np.abs(g_peer.astype(np.float64) - g_ours)))
            if not difference <= GRAD_TOLERANCE * scale:
                warnings.append(f"WARNING: {c.workload}, {c.mode}: {c.name} gradient differs from "
                                f"focal's by {difference:.2e} (max |grad| {scale:.2e}, tolerance "
                                f"{GRAD_TOLERANCE:g} of it)")
    if not warnings:
        warnings.append(f"check: all {checked} peer losses agree with focal's within "
                        f"{LOSS_TOLERANCE:g} relative, gradients within {GRAD_TOLERANCE:g} "
                        "of max |grad|")
    return warnings


# ----------------------------------------------------------------------------
# Output


def _format_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.5f}"


def _format_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


def table_lines(contenders: List[Contender]) -> List[str]:
    by_key = {c.key: c for c in contenders if c.role == "focal"}
    copy = next(c for c in contenders if c.role == "copy")
    add = next(c for c in contenders if c.role == "np.add")
    rows = []
    last_group = None
    for c in contenders_in_table_order(contenders):
        group = c.workload + (f", {c.mode}" if c.mode else "")
        label = group if group != last_group else ""
        last_group = group
        if c.run is None:
            rows.append((label, c.name, "-", f"skipped: {c.skipped}"))
            continue
        ms = c.median_ms()
        per_core = (f"; {c.ns_per_element_per_core():.2f} ns/element/core"
                    if c.elements else "")
        if c.role == "copy":
            ratio = f"1.00x copy (yardstick){per_core}"
        elif c.role == "focal":
            ratio = f"{_format_ratio(ms / copy.median_ms())} copy{per_core}"
        elif c.role == "core":
            ratio = per_core.lstrip("; ")
        elif c.role == "np.add":
            ratio = "1.00x np.add"
        elif c.role == "call":
            ratio = f"{_format_ratio(ms / add.median_ms())} np.add"
        else:
            base = by_key.get(c.key)
            ratio = f"{_format_ratio(ms / base.median_ms())} focal" if base else ""
        rows.append((label, c.name, _format_ms(ms), ratio))
    headers = ("workload", "contender", "median ms", "ratio")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    def line(cells):
        return (f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  "
                f"{cells[2]:>{widths[2]}}  {cells[3]}").rstrip()
    out = [line(headers), line(tuple("-" * w for w in widths))]
    previous_workload = None
    for row in rows:
        if row[0] and previous_workload is not None:
            out.append("")
        if row[0]:
            previous_workload = row[0]
        out.append(line(row))
    return out


def contenders_in_table_order(contenders: List[Contender]) -> List[Contender]:
    order = {COPY: 0, DENSE: 1, INDEX: 2, SOFTMAX: 3, ONE_CORE: 4, OVERHEAD: 5}
    modes = {"": 0, FWD: 1, FWD_GRAD: 2, FWD_GRAD_15: 3, FWD_GRAD_64: 4, FWD_GRAD_POLY1: 5,
             FWD_GRAD_VARIFOCAL: 6, FWD_GRAD_ASYMMETRIC: 7, FWD_GRAD_QUALITY: 8}
    roles = {"copy": 0, "np.add": 0, "focal": 1, "core": 1, "call": 1, "peer": 2, "adapter": 3}
    indexed = list(enumerate(contenders))
    indexed.sort(key=lambda item: (order[item[1].workload], modes[item[1].mode],
                                   roles[item[1].role], item[0]))
    return [c for _, c in indexed]


def summary_lines(contenders: List[Contender]) -> List[str]:
    """Each speed target of the second-generation core with PASS, MISS or SKIP, from this
    run's medians (ratios within this run; per-core figures in ns per element)."""
    def find(workload, mode, role, name_start=""):
        for c in contenders:
            if ((c.workload, c.mode, c.role) == (workload, mode, role)
                    and c.name.startswith(name_start)):
                return c
        return None

    copy = find(COPY, "", "copy")
    add = find(OVERHEAD, "", "np.add")
    lines = []
    met = missed = skipped = 0

    def verdict(description, missing, value, shown, target_text, passes):
        nonlocal met, missed, skipped
        if missing:
            reason = missing[0].skipped if missing[0] is not None else "not measured"
            lines.append(f"  SKIP  {description:<56} ({reason})")
            skipped += 1
            return
        ok = passes(value)
        met += ok
        missed += not ok
        lines.append(f"  {'PASS' if ok else 'MISS'}  {description:<56} {shown:>9}   "
                     f"{target_text}")

    def ratio(description, numerator, denominator, target_text, passes):
        missing = [c for c in (numerator, denominator) if c is None or c.run is None]
        value = 0.0 if missing else numerator.median_ms() / denominator.median_ms()
        verdict(description, missing, value, _format_ratio(value), target_text, passes)

    def per_core(description, contender, limit):
        missing = [contender] if contender is None or contender.run is None else []
        value = 0.0 if missing else contender.ns_per_element_per_core()
        verdict(description, missing, value, f"{value:.2f} ns", f"(target <= {limit:g} ns)",
                lambda v: v <= limit)

    per_core("one core, float32, gamma 2, forward, per element", find(ONE_CORE, FWD, "core"),
             2.2)
    per_core("one core, float32, gamma 2, forward + gradient",
             find(ONE_CORE, FWD_GRAD, "core"), 2.5)
    per_core("one core, float32, gamma 1.5, forward + gradient",
             find(ONE_CORE, FWD_GRAD_15, "core"), 3.5)
    per_core("one core, float64, gamma 2, forward + gradient",
             find(ONE_CORE, FWD_GRAD_64, "core"), 8.0)
    for label, workload in (("dense", DENSE), ("class indices", INDEX)):
        ratio(f"forward + gradient vs copy pass, {label}", find(workload, FWD_GRAD, "focal"),
              copy, "(target <= 2.5x)", lambda r: r <= 2.5)
        ratio(f"forward vs copy pass, {label}", find(workload, FWD, "focal"), copy,
              "(target <= 2.0x)", lambda r: r <= 2.0)
    for label, workload in (("dense", DENSE), ("class indices", INDEX)):
        ratio(f"faster than NumPy, {label}, forward + gradient",
              find(workload, FWD_GRAD, "peer", "NumPy"), find(workload, FWD_GRAD, "focal"),
              "(target >= 30x)", lambda r: r >= 30)
        ratio(f"faster than PyTorch eager fwd+bwd, {label}",
              find(workload, FWD_GRAD, "peer", "PyTorch"), find(workload, FWD_GRAD, "focal"),
              "(target >= 25x)", lambda r: r >= 25)
        ratio(f"faster than jax.jit value_and_grad, {label}",
              find(workload, FWD_GRAD, "peer", "jax"), find(workload, FWD_GRAD, "focal"),
              "(target >= 15x)", lambda r: r >= 15)
    ratio("softmax fwd+grad faster than PyTorch eager",
          find(SOFTMAX, FWD_GRAD, "peer", "PyTorch"), find(SOFTMAX, FWD_GRAD, "focal"),
          "(target >= 5x)", lambda r: r >= 5)
    ratio("softmax fwd+grad faster than jax.jit value_and_grad",
          find(SOFTMAX, FWD_GRAD, "peer", "jax"), find(SOFTMAX, FWD_GRAD, "focal"),
          "(target >= 3x)", lambda r: r >= 3)
    ratio("1,000-element call focal.loss vs np.add", find(OVERHEAD, "", "call", "focal.loss("),
          add, "(target <= 5x)", lambda r: r <= 5)
    for label, workload in (("dense", DENSE), ("class indices", INDEX), ("softmax", SOFTMAX)):
        ratio(f"focal.torch fwd+bwd vs PyTorch eager, {label}",
              find(workload, FWD_GRAD, "peer", "PyTorch"),
              find(workload, FWD_GRAD, "adapter", "focal.torch"), "(target >= 10x)",
              lambda r: r >= 10)
    for label, workload in (("dense", DENSE), ("class indices", INDEX), ("softmax", SOFTMAX)):
        ratio(f"jit(focal.jax) vs jit(optax) fwd+grad, {label}",
              find(workload, FWD_GRAD, "peer", "jax"),
              find(workload, FWD_GRAD, "adapter", "jax.jit(focal.jax)"), "(> 1x: ahead)",
              lambda r: r > 1)
    # the focal loss's descendants: forward + gradient within 1.5x of the focal loss's
    for mode in (FWD_GRAD_POLY1, FWD_GRAD_VARIFOCAL, FWD_GRAD_ASYMMETRIC, FWD_GRAD_QUALITY):
        ratio(f"{mode.split(', ', 1)[1]} vs the focal loss, one core", find(ONE_CORE, mode, "core"),
              find(ONE_CORE, FWD_GRAD, "core"), "(target <= 1.5x)", lambda r: r <= 1.5)
    head = [f"targets (second-generation core), from this run: {met} met, {missed} missed, "
            f"{skipped} skipped",
            "  (per element: one thread's time per element; vs copy pass and np.add: focal's "
            "time over theirs; faster than: theirs over focal's)"]
    return head + lines


# ----------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    rounds = int(getattr(args, "rounds", 5))
    quick = bool(getattr(args, "quick", False))
    if rounds < 1:
        print("python -m focal bench: --rounds must be at least 1", file=sys.stderr)
        return 2
    if quick:
        rounds = min(rounds, 2)
    anchors = ANCHORS // 10 if quick else ANCHORS

    started = time.perf_counter()
    cores = usable_cores()
    b = make_batch(anchors)

    contenders = focal_contenders(b, SMALL_CALLS // 10 if quick else SMALL_CALLS)
    contenders += numpy_contenders(b)
    torch_list, torch_reason = torch_contenders(b, cores)
    jax_list, jax_reason = jax_contenders(b)
    contenders += torch_list + jax_list + adapter_contenders(b)

    x = b.logits
    positives = int(b.dense.sum())
    ignored = int((b.labels < 0).sum())
    print(f"python -m focal bench{' --quick' if quick else ''}: focal loss, alpha {ALPHA}, "
          f"gamma {GAMMA:g}, mean reduction, float32")
    for line in machine_lines(cores, torch_reason, jax_reason):
        print(line)
    print(f"batch: logits {x.shape} float32 ({x.nbytes / 2**20:.0f} MiB), {positives} positive "
          f"targets ({100 * positives / x.size:.2f}%), {ignored} of {b.labels.size} anchors "
          f"ignored; softmax: logits {b.softmax_logits.shape}, class 0 background, no alpha")
    print("peers get dense one-hot targets built outside the timing (with class indices, also a "
          "mask of ignored anchors); NumPy runs on one core")
    print(f"timing: warm-up, then {rounds} interleaved rounds ...", flush=True)
    print()

    cpu_started = time.process_time()
    done = run_rounds(contenders, rounds, started + TIME_BUDGET)
    elapsed_rounds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    budget = "" if done == rounds else (
        f" (of {rounds} asked: stopped at the {TIME_BUDGET:.0f} s time budget)")
    print(f"median of {done} interleaved rounds{budget}; every contender warmed up once first "
          "(JIT compilation excluded)")
    print("ratio: to the copy pass, to np.add, or a peer's time over focal's")
    print()
    for line in table_lines(contenders):
        print(line)
    print()
    for line in check_results(contenders):
        print(line)
    print()
    for line in summary_lines(contenders):
        print(line)
    print()
    print(f"benchmark time {time.perf_counter() - started:.0f} s (data, warm-up and rounds "
          f"{elapsed_rounds:.0f} s); this process's CPU time in warm-up and rounds "
          f"{cpu_seconds:.0f} s")
    return 0

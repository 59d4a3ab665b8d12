"""python -m focal batch: the loss and gradient of one RetinaNet-sized batch, timed."""
from __future__ import annotations

import argparse
import time
from typing import Callable, List, Tuple

import numpy as np

import focal


# seconds: no round starts that would end after it (`--rounds 100000000` is
# accepted, as any positive count, but does not run for years)
TIME_BUDGET = 120.0


def median_seconds(function: Callable[[], object], rounds: int,
                   deadline: float) -> Tuple[float, int]:
    """The median time of `rounds` calls, or of those that end by `deadline`
    (time.perf_counter's; at least one), and how many ran."""
    times: List[float] = []
    while len(times) < rounds and (not times or time.perf_counter() + times[-1] <= deadline):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), len(times)


def numpy_focal_loss_and_grad(x: np.ndarray, y: np.ndarray, alpha: float, gamma: float):
    """The focal loss and the paper's gradient (Appendix B) as a notebook user
    writes them with NumPy: clear, with full-size temporaries."""
    p = 1 / (1 + np.exp(-x))
    ce = y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    loss = (alpha_t * (1 - p_t) ** gamma * ce).mean()
    sign = 2 * y - 1
    grad = alpha_t * sign * (1 - p_t) ** gamma * (gamma * p_t * np.log(p_t) + p_t - 1) / x.size
    return loss, grad


def retinanet_batch(seed: int = 0, images: int = 2, anchors: int = 100_000, classes: int = 80):
    """Logits and class indices shaped like a RetinaNet classification head's
    output: about 0.1% of the (anchor, class) targets positive, a few anchors
    ignored, the rest background."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(focal.prior_bias(0.01), 1.5, size=(images, anchors, classes))
    logits = logits.astype(np.float32)
    labels = np.full((images, anchors), classes)  # background
    positive = rng.random((images, anchors)) < 0.001 * classes
    labels[positive] = rng.integers(0, classes, positive.sum())
    labels[rng.random((images, anchors)) < 0.002] = -1  # ignored (IoU in [0.4, 0.5))
    return logits, labels


def demo(args: argparse.Namespace) -> int:
    logits, labels = retinanet_batch()
    images, anchors, classes = logits.shape
    print(f"focal {focal.__version__}: sigmoid focal loss on a RetinaNet-sized batch")
    print(f"  logits {logits.shape} {logits.dtype} ({logits.nbytes / 2**20:.0f} MiB), class-index "
          f"targets: {np.sum((labels >= 0) & (labels < classes))} positive anchors, "
          f"{np.sum(labels == -1)} ignored, the rest background")

    value, gradient = focal.loss_and_grad(logits, labels, alpha=0.25, gamma=2.0,
                                          reduction="sum_over_positives")
    print(f"  loss (sum over positives, alpha 0.25, gamma 2) = {value:.6g}; "
          f"gradient {gradient.shape} {gradient.dtype}, |grad| max {np.abs(gradient).max():.3g}")

    # The NumPy reference needs dense one-hot targets and has no ignore label,
    # so compare on the mean over all anchors with ignored rows made background.
    dense_labels = np.where(labels < 0, classes, labels)
    one_hot = (dense_labels[..., None] == np.arange(classes)).astype(np.float32)
    ref_loss, ref_grad = numpy_focal_loss_and_grad(logits, one_hot, 0.25, 2.0)
    ours_loss, ours_grad = focal.loss_and_grad(logits, one_hot, alpha=0.25, gamma=2.0)
    print(f"  mean loss: focal {ours_loss:.9g}, NumPy formula {ref_loss:.9g} "
          f"(float32 NumPy, rel. diff {abs(ours_loss - ref_loss) / ours_loss:.1e}); gradient max "
          f"rel. diff {np.max(np.abs(ours_grad - ref_grad)) / np.max(np.abs(ours_grad)):.1e}")

    rounds = args.rounds
    def timed(function: Callable[[], object]) -> Tuple[float, int]:
        # (a third of the budget each, so that the last is timed too)
        return median_seconds(function, rounds, time.perf_counter() + TIME_BUDGET / 3)

    t_focal_labels, ran_labels = timed(lambda: focal.loss_and_grad(logits, labels))
    t_focal_dense, ran_dense = timed(lambda: focal.loss_and_grad(logits, one_hot))
    t_numpy, ran_numpy = timed(lambda: numpy_focal_loss_and_grad(logits, one_hot, 0.25, 2.0))
    ran = min(ran_labels, ran_dense, ran_numpy)
    if ran < rounds:
        print(f"  loss + gradient, medians of {ran_labels}, {ran_dense} and {ran_numpy} rounds "
              f"(of {rounds} asked: stopped at the {TIME_BUDGET:g} s time budget):")
    else:
        print(f"  loss + gradient, median of {rounds}:")
    print(f"    focal, class indices  {t_focal_labels * 1e3:8.1f} ms")
    print(f"    focal, dense targets  {t_focal_dense * 1e3:8.1f} ms")
    print(f"    NumPy formula         {t_numpy * 1e3:8.1f} ms   "
          f"({t_numpy / t_focal_labels:.1f}x slower than focal with class indices)")
    return 0


def main(args: argparse.Namespace) -> int:
    return demo(args)

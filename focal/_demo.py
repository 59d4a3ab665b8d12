"""python -m focal (train): why focal loss exists, shown on synthetic data.

The same small NumPy model is trained three times on data shaped like a dense
detector's: about one positive in a thousand candidate anchors, almost all
negatives easy, a few hard negatives next to the positives.  The three runs
differ only in the loss, all computed by focal:

    cross-entropy              alpha None, gamma 0
    alpha-balanced CE          alpha 0.75, gamma 0  (best of the paper's Table 1a)
    focal loss                 alpha 0.25, gamma 2  (the paper's default)

The model is a per-anchor multi-class head with class-index targets (label C
is background), so no one-hot array is ever built.

One run tells little: the three losses reach average precisions a few
hundredths apart, about as far as two seeds of the same loss.  So the three
trainings are repeated for several seeds (each with its own data, initial
weights and batch order), and the table at the end gives, per loss, the mean
and spread over the seeds of the average precision on held-out data, how much
of the loss the easiest 90% of the negatives carry (the point of the paper's
Figure 4), and the time spent inside focal.  The closing sentences call focal
loss ahead of or behind another loss only when the difference exceeds what the
spread across seeds allows (see compare()).  The seeds are fixed; whatever
comes out is printed as it is.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, Final, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

import focal


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """Sizes, seeds and training settings.  The defaults are the demonstration;
    the tests run a smaller copy made with dataclasses.replace."""

    classes: int = 3                  # object classes C (label C is background)
    dims: int = 8                     # features per anchor
    clusters_per_class: int = 4       # each class looks like one of a few prototypes
    train_anchors: int = 300_000
    test_anchors: int = 300_000
    positive_rate: float = 0.001      # one positive anchor in a thousand
    hard_per_positive: int = 10       # hard negatives per positive anchor
    positive_spread: float = 0.3      # std of a positive around its prototype
    hard_spread: float = 0.5          # std of a hard negative around a prototype
    easy_spread: float = 3.0          # std of the easy negatives around the origin
    prototype_spread: float = 2.0     # std of the prototypes around the origin
    hidden: int = 32                  # hidden units of the MLP
    epochs: int = 15
    batch: int = 4096                 # anchors per step (~4 positives)
    learning_rate: float = 1e-2
    decay_at: float = 2 / 3           # learning rate / 10 after this share of the epochs
    report_every: int = 15            # a progress line every this many epochs (each
                                      # one evaluates the held-out AP, which costs time)
    # One run of the three trainings per seed, each seed with its own data
    # (prototypes and anchors), initial weights and batch order.  Four seeds of
    # ~15 s each fit in about a minute on two cores.
    seeds: Tuple[int, ...] = (0, 1, 2, 3)


# The three losses compared: (name, alpha, gamma).
LOSSES: Tuple[Tuple[str, Optional[float], float], ...] = (
    ("cross-entropy", None, 0.0),
    ("alpha-balanced CE", 0.75, 0.0),
    ("focal loss", 0.25, 2.0),
)

# The paper sums the loss over all anchors and divides by the number of
# positive anchors; reduction="sum_over_positives" does exactly that.  The
# loss and its gradient then have the scale of the few positives in a batch,
# whatever the number of negatives, so one learning rate suits all three
# losses: cross-entropy, whose sum over thousands of easy negatives is large,
# and focal loss, where that sum nearly vanishes.  "mean" would divide by
# every (anchor, class) element instead: here 4,096 x 3 per batch against ~4
# positives, so gradients ~3,000 times smaller, and smaller still with every
# easy negative added to the data.  Adam rescales most of that away, but not
# its epsilon, and the printed losses would no longer be comparable.
REDUCTION: Final = "sum_over_positives"


# The random streams of a seed s, independent of each other and of other
# seeds': (DATA, s) draws its prototypes and anchors, (WEIGHTS, s) its initial
# weights, (BATCHES, s) its batch order.  The three losses of one seed thus see
# the same data, start from the same weights and get the same batches: they
# differ only in the loss.
DATA, WEIGHTS, BATCHES = range(3)


def random_stream(use: int, seed: int) -> np.random.Generator:
    """The generator of one use (DATA, WEIGHTS or BATCHES) of a seed."""
    return np.random.default_rng([use, seed])


# --------------------------------------------------------------------------
# Data.  Arrays hold one anchor per column: features (dims, N), activations
# (hidden, N), logits (C, N), so each layer is one small matrix product.
# --------------------------------------------------------------------------

class Data(NamedTuple):
    features: np.ndarray  # (dims, N) float32, one column per anchor
    labels: np.ndarray    # (N,) int64: class in [0, C), or C for background
    hard: np.ndarray      # (N,) bool: the hard negatives (for the description only)


def make_prototypes(config: Config, rng: np.random.Generator) -> np.ndarray:
    """Where each class's objects live in feature space: (C, K, dims)."""
    shape = (config.classes, config.clusters_per_class, config.dims)
    return rng.normal(0.0, config.prototype_spread, shape)


def anchor_counts(config: Config, anchors: int) -> Tuple[int, int, int]:
    """How many of `anchors` are positives, hard negatives and easy negatives
    (at least one positive per class)."""
    positives = max(int(round(anchors * config.positive_rate)), config.classes)
    hard = positives * config.hard_per_positive
    return positives, hard, anchors - positives - hard


def make_data(config: Config, prototypes: np.ndarray, anchors: int,
              rng: np.random.Generator) -> Data:
    """Anchors of a dense detector, reduced to feature vectors.

    - positives: tight clusters around the prototypes (an anchor on an object);
    - hard negatives: background anchors around the same prototypes, a little
      farther out (an anchor that only half covers an object, or clutter that
      looks like one); they overlap the positives, so no model is perfect;
    - easy negatives: everything else, spread over the whole space and nearly
      always far from any prototype.
    """
    classes, clusters, dims = prototypes.shape
    positives, hard, easy = anchor_counts(config, anchors)
    if easy < 0:
        raise ValueError("too few anchors for the requested positives and hard negatives")

    def around_prototypes(count: int, spread: float) -> Tuple[np.ndarray, np.ndarray]:
        cls = rng.integers(0, classes, count)
        cluster = rng.integers(0, clusters, count)
        points = prototypes[cls, cluster] + rng.normal(0.0, spread, (count, dims))
        return points, cls

    positive_x, positive_class = around_prototypes(positives, config.positive_spread)
    hard_x, _ = around_prototypes(hard, config.hard_spread)
    easy_x = rng.normal(0.0, config.easy_spread, (easy, dims))

    features = np.concatenate([positive_x, hard_x, easy_x]).astype(np.float32)
    labels = np.concatenate([positive_class, np.full(hard + easy, classes)]).astype(np.int64)
    is_hard = np.zeros(anchors, dtype=bool)
    is_hard[positives:positives + hard] = True
    order = rng.permutation(anchors)  # anchors come in no particular order
    return Data(np.ascontiguousarray(features[order].T), labels[order], is_hard[order])


def make_datasets(config: Config, seed: int) -> Tuple[Data, Data, np.ndarray]:
    """Training and held-out data of one seed (the same prototypes, independent
    anchors), and the prototypes."""
    rng = random_stream(DATA, seed)
    prototypes = make_prototypes(config, rng)
    train = make_data(config, prototypes, config.train_anchors, rng)
    test = make_data(config, prototypes, config.test_anchors, rng)
    return train, test, prototypes


def best_possible_ap(config: Config, prototypes: np.ndarray, data: Data) -> float:
    """The AP of the ideal ranking: each anchor scored, for each class, by the
    posterior probability of that class under the very densities make_data
    draws from.  No model learnt from samples can expect more; it shows how
    far the overlap of positives and hard negatives lets any model go."""
    classes, clusters, dims = prototypes.shape
    x = data.features.T.astype(np.float64)  # (N, dims)
    positives, hard, easy = anchor_counts(config, x.shape[0])

    def log_normal(centre: np.ndarray, spread: float) -> np.ndarray:
        """log density of N(centre, spread^2 I) at every anchor."""
        squared = ((x - centre) ** 2).sum(axis=1)
        return -squared / (2 * spread ** 2) - dims * np.log(spread * np.sqrt(2 * np.pi))

    # log of (expected count x density) of each component, per anchor; a
    # component with no anchors (a count of 0) gets log 0 = -inf
    share = np.log(1.0 / (classes * clusters))  # every (class, prototype) is equally likely
    with np.errstate(divide="ignore"):
        log_positives, log_hard, log_easy = np.log([positives, hard, easy])
    positive = np.array([np.logaddexp.reduce(
        [log_positives + share + log_normal(centre, config.positive_spread)
         for centre in prototypes[c]]) for c in range(classes)])  # (C, N)
    hard_negative = np.logaddexp.reduce(
        [log_hard + share + log_normal(centre, config.hard_spread)
         for centre in prototypes.reshape(-1, dims)])
    easy_negative = log_easy + log_normal(np.zeros(dims), config.easy_spread)
    everything = np.logaddexp.reduce([*positive, hard_negative, easy_negative])
    return mean_average_precision(positive - everything, data.labels)


# --------------------------------------------------------------------------
# Model: one hidden ReLU layer and a sigmoid output per class,
#     hidden = relu(W1 x + b1),   logits = W2 hidden + b2.
#
# The products are written with np.einsum rather than @ on purpose: they are
# thin (32 x 8 times 8 x 4096), and NumPy's BLAS splits such products over
# threads, which on a small machine shared with other work costs far more
# than it saves (measured: 7 ms instead of 0.04 ms for one product on 2 busy
# cores).  np.einsum (without optimize=) runs single-threaded loops of its own,
# so the timings measure the model and the loss, not BLAS threads.
# --------------------------------------------------------------------------

def init_params(config: Config, seed: int) -> Dict[str, np.ndarray]:
    """The initial weights of one seed, the same for the three losses.

    The output layer follows the paper: small weights (std 0.01) and the bias
    prior_bias(0.01), so every anchor starts with p = 0.01 for every class and
    the flood of easy negatives does not swamp the first steps.
    """
    rng = random_stream(WEIGHTS, seed)
    d, h, c = config.dims, config.hidden, config.classes
    return {
        "W1": rng.normal(0.0, np.sqrt(2.0 / d), (h, d)).astype(np.float32),  # He init
        "b1": np.zeros((h, 1), np.float32),
        "W2": rng.normal(0.0, 0.01, (c, h)).astype(np.float32),
        "b2": np.full((c, 1), focal.prior_bias(0.01), np.float32),
    }


def forward(params: Dict[str, np.ndarray], x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Logits (C, N) for the anchors x (dims, N), and the hidden activations
    (hidden, N) the backward pass needs."""
    hidden = np.einsum("hd,dn->hn", params["W1"], x)
    hidden += params["b1"]
    np.maximum(hidden, 0.0, out=hidden)  # ReLU
    logits = np.einsum("ch,hn->cn", params["W2"], hidden)
    logits += params["b2"]
    return logits, hidden


def backward(params: Dict[str, np.ndarray], x: np.ndarray, hidden: np.ndarray,
             dlogits: np.ndarray) -> Dict[str, np.ndarray]:
    """Gradients of the loss with respect to the weights, given
    d(loss)/d(logits) (C, N) from focal: the chain rule through both layers."""
    dhidden = np.einsum("ch,cn->hn", params["W2"], dlogits)
    dhidden *= hidden > 0  # the ReLU passes the gradient where it was active
    return {
        "W2": np.einsum("cn,hn->ch", dlogits, hidden),
        "b2": dlogits.sum(axis=1, keepdims=True),
        "W1": np.einsum("hn,dn->hd", dhidden, x),
        "b1": dhidden.sum(axis=1, keepdims=True),
    }


class Adam:
    """Adam (Kingma and Ba) on a dict of arrays, updated in place."""

    def __init__(self, params: Dict[str, np.ndarray], lr: float,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: Dict[str, np.ndarray], grads: Dict[str, np.ndarray]) -> None:
        self.t += 1
        correction1 = 1 - self.beta1 ** self.t
        correction2 = 1 - self.beta2 ** self.t
        for k, g in grads.items():
            self.m[k] += (1 - self.beta1) * (g - self.m[k])
            self.v[k] += (1 - self.beta2) * (g * g - self.v[k])
            update = self.lr * (self.m[k] / correction1) / (np.sqrt(self.v[k] / correction2) + self.eps)
            params[k] -= update.astype(params[k].dtype)


# --------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------

def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the precision-recall curve, without interpolation: the mean,
    over the positives, of the precision among the anchors ranked up to and
    including that positive (highest score first).  nan without positives."""
    count = int(np.count_nonzero(positive))
    if count == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    rank_of_hit = np.flatnonzero(hits) + 1          # 1-based ranks of the positives
    precision_at_hit = np.arange(1, count + 1) / rank_of_hit
    return float(precision_at_hit.mean())


def mean_average_precision(logits: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of each class over all anchors, averaged over the
    classes (as COCO averages over categories).  The logits (C, N), not the
    probabilities, are the scores: they rank the same and do not round to 0."""
    return float(np.mean([average_precision(logits[c], labels == c)
                          for c in range(logits.shape[0])]))


def easy_negative_shares(element_loss: np.ndarray, labels: np.ndarray,
                         easiest: float = 0.9) -> Tuple[float, float]:
    """Sorts the negative (anchor, class) elements of a per-element loss (N, C)
    by their loss and returns the share of the loss that the easiest
    `easiest` fraction of them carries: (share of the total loss, positives
    included; share of the loss on negatives, the normalisation of the
    paper's Figure 4)."""
    classes = element_loss.shape[1]
    negative = labels[:, None] != np.arange(classes)  # every element but the anchor's class
    negative_loss = np.sort(element_loss[negative].astype(np.float64))
    easy_sum = negative_loss[: int(easiest * negative_loss.size)].sum()
    return (float(easy_sum / element_loss.sum(dtype=np.float64)),
            float(easy_sum / negative_loss.sum()))


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

class Result(NamedTuple):
    """One training: one loss on one seed's data."""

    name: str
    alpha: Optional[float]
    gamma: float
    seed: int
    ap: float                    # held-out mean average precision
    easy_share_total: float      # easiest 90% of negatives: share of the total loss
    easy_share_negatives: float  # ... of the loss on negatives
    focal_seconds: float         # inside focal.loss_and_grad while training
    total_seconds: float         # the whole training loop


def train_one(config: Config, seed: int, name: str, alpha: Optional[float], gamma: float,
              train: Data, test: Data, log: Callable[[str], None] = print) -> Result:
    """Trains the model from the seed's initial weights with one loss and
    evaluates it on the held-out anchors."""
    params = init_params(config, seed)
    optimizer = Adam(params, config.learning_rate)
    shuffle = random_stream(BATCHES, seed)  # the same batches for the three losses
    n = train.labels.size
    focal_seconds = evaluation_seconds = 0.0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        # as in the paper, the learning rate drops tenfold late in training
        late = epoch > config.decay_at * config.epochs
        optimizer.lr = config.learning_rate * (0.1 if late else 1.0)
        epoch_loss, batches = 0.0, 0
        order = shuffle.permutation(n)
        for first in range(0, n, config.batch):
            index = order[first:first + config.batch]
            x, y = train.features[:, index], train.labels[index]
            logits, hidden = forward(params, x)
            # The loss and d(loss)/d(logits) in one pass.  focal wants the class
            # axis last: logits.T is an (N, C) view of the (C, N) array, read
            # in place, and the gradient is written through dlogits.T into a
            # (C, N) array, the layout backward() uses.  y holds class indices
            # (C = background), so no one-hot array is built.
            dlogits = np.empty_like(logits)
            t0 = time.perf_counter()
            value, _ = focal.loss_and_grad(logits.T, y, alpha=alpha, gamma=gamma,
                                           reduction=REDUCTION, out=dlogits.T)
            focal_seconds += time.perf_counter() - t0
            optimizer.step(params, backward(params, x, hidden, dlogits))
            epoch_loss += float(value)
            batches += 1
        if epoch % config.report_every == 0 or epoch == config.epochs:
            t0 = time.perf_counter()  # held-out AP: not part of the training time
            ap = mean_average_precision(forward(params, test.features)[0], test.labels)
            evaluation_seconds += time.perf_counter() - t0
            log(f"  seed {seed}  {name:<18} epoch {epoch:3d}/{config.epochs}   training loss "
                f"{epoch_loss / batches:8.4f}   held-out AP {ap:.3f}   "
                f"({time.perf_counter() - start - evaluation_seconds:4.1f} s)")
    total_seconds = time.perf_counter() - start - evaluation_seconds

    # Evaluation on the held-out anchors, each model with its own loss.
    logits = forward(params, test.features)[0]
    ap = mean_average_precision(logits, test.labels)
    element_loss = focal.loss(logits.T, test.labels, alpha=alpha, gamma=gamma, reduction="none")
    share_total, share_negatives = easy_negative_shares(element_loss, test.labels)
    return Result(name, alpha, gamma, seed, ap, share_total, share_negatives,
                  focal_seconds, total_seconds)


def run(config: Config, log: Callable[[str], None] = print) -> Tuple[List[Result], List[float]]:
    """For every seed, makes its data and trains the three models.  Returns
    their results (seed by seed, in the order of LOSSES) and, per seed, the AP
    of the ideal ranking of its held-out anchors (best_possible_ap)."""
    results, ideals = [], []
    for seed in config.seeds:
        train, test, prototypes = make_datasets(config, seed)
        results += [train_one(config, seed, name, alpha, gamma, train, test, log=log)
                    for name, alpha, gamma in LOSSES]
        ideals.append(best_possible_ap(config, prototypes, test))
    return results, ideals


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def describe(config: Config) -> List[str]:
    """What is trained, on what data, with which seeds."""
    n = config.train_anchors
    positives, hard, easy = anchor_counts(config, n)
    return [
        f"focal {focal.__version__}: one small model trained with three losses on synthetic "
        f"dense-detection data, for {len(config.seeds)} seeds",
        f"  data:  {n:,} training and {config.test_anchors:,} held-out anchors, "
        f"{config.dims} features, {config.classes} classes (label {config.classes} = background);",
        f"         per set {positives:,} positive anchors (1 in {n // positives:,}) in "
        f"{config.classes * config.clusters_per_class} small clusters, {hard:,} hard negatives "
        f"around them, {easy:,} easy negatives",
        f"  model: MLP {config.dims}-{config.hidden}-{config.classes} (ReLU, a sigmoid per class), "
        f"output bias prior_bias(0.01) = {focal.prior_bias(0.01):.5f};",
        f"         Adam, learning rate {config.learning_rate:g} (/10 for the last "
        f"{config.epochs - int(config.decay_at * config.epochs)} epochs), batches of "
        f"{config.batch:,} anchors, {config.epochs} epochs",
        f"  seeds: {', '.join(str(seed) for seed in config.seeds)}; each draws its own data "
        "(clusters and anchors), initial weights and batch order,",
        "         the same for the three losses",
        f"  loss:  focal.loss_and_grad(logits, class_indices, alpha, gamma, "
        f"reduction={REDUCTION!r})",
        "",
    ]


def by_loss(results: Sequence[Result]) -> Dict[str, Dict[int, Result]]:
    """The results of each loss (in the order they come), by seed."""
    groups: Dict[str, Dict[int, Result]] = {}
    for r in results:
        groups.setdefault(r.name, {})[r.seed] = r
    return groups


def standard_deviation(values: Union[Sequence[float], np.ndarray]) -> float:
    """The sample standard deviation (n - 1 in the denominator); nan for a
    single value, which has no spread to measure."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


# When is focal loss better than another loss?  The three losses of a seed
# share its data, initial weights and batches, so they are compared seed by
# seed: the differences d_s = AP(focal loss, seed s) - AP(other loss, seed s)
# cancel what the losses of one seed have in common (data that are harder than
# usual lower all three).  Focal loss is called ahead (or behind) only when the
# mean of the d_s is further from 0 than T times its standard error
# sd(d_s) / sqrt(n), T being Student's two-sided 5% critical value for n - 1
# degrees of freedom: a paired t-test at the 5% level.  Otherwise the
# difference is within the spread across seeds and neither loss is called
# better.  The table's standard deviations are the spread of each loss's AP
# alone: how far a single run of it can land from its mean.  T for 1 to 10
# degrees of freedom; beyond 10 the value for 10 serves (a little stricter
# than needed).
T_CRITICAL_5_PERCENT = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


class Difference(NamedTuple):
    mean: float   # mean over the seeds of AP(focal loss) - AP(other loss)
    error: float  # its standard error (nan with one seed)
    sign: int     # +1 focal loss ahead, -1 behind, 0 within the spread across seeds


def compare(ours: Sequence[float], theirs: Sequence[float]) -> Difference:
    """The paired comparison described above of two losses' APs, seed by seed
    (ours[i] and theirs[i] come from the same seed)."""
    d = np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64)
    mean = float(d.mean())
    if d.size < 2:
        return Difference(mean, math.nan, 0)
    error = standard_deviation(d) / math.sqrt(d.size)
    critical = T_CRITICAL_5_PERCENT[min(d.size - 1, len(T_CRITICAL_5_PERCENT)) - 1]
    sign = int(np.sign(mean)) if abs(mean) > critical * error else 0
    return Difference(mean, error, sign)


def _percent(share: float) -> str:
    """A share as a percentage with two significant digits (they get small)."""
    return f"{100 * share:.2g}%"


def table(results: Sequence[Result]) -> List[str]:
    """The comparison: one row per loss, over its seeds."""
    groups = by_loss(results)
    seeds = max(len(runs) for runs in groups.values())
    negatives_loss = "of negatives' loss"
    lines = [
        "",
        f"  {'loss':<18} {'alpha':>5}  {'gamma':>5}   {'held-out AP, ' + _seeds(seeds):<31}"
        f"{'easiest 90% of negatives: mean share':<38}time in focal /",
        f"  {'':<18} {'':>5}  {'':>5}   {'mean ± sd':<16}{'min - max':<15}"
        f"{'of all loss':<16}{negatives_loss:<22}training loop (mean)",
    ]
    for name, by_seed in groups.items():
        runs = list(by_seed.values())
        first = runs[0]
        ap = [r.ap for r in runs]
        alpha = "None" if first.alpha is None else f"{first.alpha:g}"
        focal_seconds = float(np.mean([r.focal_seconds for r in runs]))
        total_seconds = float(np.mean([r.total_seconds for r in runs]))
        timing = (f"{focal_seconds:.2f} s / {total_seconds:.2f} s "
                  f"({100 * focal_seconds / total_seconds:.0f}%)")
        share_total = _percent(float(np.mean([r.easy_share_total for r in runs])))
        share_negatives = _percent(float(np.mean([r.easy_share_negatives for r in runs])))
        lines.append(
            f"  {name:<18} {alpha:>5}  {first.gamma:5g}   "
            f"{f'{np.mean(ap):.3f} ± {standard_deviation(ap):.3f}':<16}"
            f"{f'{min(ap):.3f} - {max(ap):.3f}':<15}"
            f"{share_total:<16}{share_negatives:<22}{timing}")
    return lines


def _seeds(count: int) -> str:
    return f"{count} seed" if count == 1 else f"{count} seeds"


def _and(names: Sequence[str]) -> str:
    return " and ".join(names)


def verdict(results: Sequence[Result], ideals: Sequence[float]) -> List[str]:
    """What the table says, worded from the numbers whichever way they go:
    focal loss against each other loss by the rule of compare(), the easy
    negatives' share of the loss (Figure 4), and the ideal AP (the mean of
    `ideals`, one per seed) for scale."""
    groups = by_loss(results)
    focal_name = next(name for name, runs in groups.items()
                      if next(iter(runs.values())).gamma > 0)
    ce_name = next(iter(groups))  # the first loss: plain cross-entropy
    seeds = list(groups[focal_name])

    def per_seed(name: str, field: str) -> List[float]:
        return [getattr(groups[name][seed], field) for seed in seeds]

    others = [name for name in groups if name != focal_name]
    differences = {name: compare(per_seed(focal_name, "ap"), per_seed(name, "ap"))
                   for name in others}
    lines = [
        "",
        "  Held-out AP of focal loss minus that of the other losses on the same seed, mean ± "
        f"standard error over {_seeds(len(seeds))}:",
        "    " + ", ".join(f"against {name} {d.mean:+.3f} ± {d.error:.3f}"
                           for name, d in differences.items()) + ".",
    ]
    if len(seeds) < 2:
        lines.append("  With one seed there is no spread across seeds to judge these differences by.")
    else:
        rule = f"(a paired t-test at the 5% level over {len(seeds)} seeds)"
        ahead = [name for name, d in differences.items() if d.sign > 0]
        behind = [name for name, d in differences.items() if d.sign < 0]
        within = [name for name, d in differences.items() if d.sign == 0]
        if not ahead and not behind:
            lines.append(f"  These differences are smaller than the spread across seeds {rule}:")
            lines.append("    focal loss is neither distinguishably better nor worse than the "
                         "other losses here.")
        else:
            clauses = ([f"ahead of {_and(ahead)}"] if ahead else []) + (
                [f"behind {_and(behind)}"] if behind else [])
            claim = (f"  Focal loss is {' and '.join(clauses)} by more than the spread across "
                     f"seeds {rule}")
            if within:
                lines.append(claim + ";")
                lines.append(f"    against {_and(within)} the difference is within the spread.")
            else:
                lines.append(claim + ".")

    focal_shares = per_seed(focal_name, "easy_share_negatives")
    ce_shares = per_seed(ce_name, "easy_share_negatives")
    if all(f < c for f, c in zip(focal_shares, ce_shares)):
        ratio = float(np.mean(ce_shares)) / max(float(np.mean(focal_shares)), 1e-300)
        ratios = [c / max(f, 1e-300) for f, c in zip(focal_shares, ce_shares)]
        lines.append(
            f"  On every seed the easiest 90% of the negatives carry less of the negatives' loss "
            f"under focal loss than under {ce_name}:")
        lines.append(f"    {ratio:,.0f} times less on average (the ratio of the means; "
                     f"{min(ratios):,.0f} to {max(ratios):,.0f} times on single seeds), "
                     "the point of the paper's Figure 4.")
    else:
        lines.append(
            f"  The easiest 90% of the negatives do not carry less of the negatives' loss under "
            f"focal loss than under {ce_name} on every seed.")
    lines.append(
        f"  For scale: ranking by the true posterior of the densities the data are drawn from "
        f"gives AP {np.mean(ideals):.3f} (mean over the seeds).")
    return lines


def main(args: Optional[argparse.Namespace] = None, config: Optional[Config] = None) -> int:
    """Entry point of ``python -m focal`` and ``python -m focal train``."""
    config = config or Config()

    def log(line: str) -> None:
        print(line, flush=True)  # progress shows while it trains, even into a pipe

    begin = time.perf_counter()
    for line in describe(config):
        log(line)
    results, ideals = run(config, log=log)
    for line in table(results) + verdict(results, ideals):
        log(line)
    log(f"  Run time {time.perf_counter() - begin:.1f} s.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

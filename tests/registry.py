"""The losses under test: one `Loss` entry each, and the inputs every loss is tested with.

The generated test matrices iterate over `LOSSES`; none of them names a
loss.  Registering a new loss therefore takes exactly two things in tests/:

1. its twins in reference.py: a float64 NumPy function
   ``twin(logits, targets, **params, reduction=, weights=, ignore_index=)``
   returning a `reference.Reference` (its hess None without a second
   derivative), and an mpmath function of one element (one row for the
   softmax family) giving the loss and its derivative;
2. one `Loss(...)` entry appended to `LOSSES` below: its public functions
   (names of focal.__all__: test_leaks.py finds a function's table by them),
   both twins, its parameters with their defaults, examples of valid and of
   invalid parameters (with the exception each must raise), the target
   forms and reductions it takes, its ULP bound, and whether it takes
   ``ignore_index=``.

With nothing else changed, the new loss then gets
* test_matrix.py: every logits dtype x memory layout x target form x
  reduction, and every valid parameter example, against its twin: loss, grad,
  loss_and_grad (bitwise equal to the other two) and grad_hess where it has
  one, their dtypes, shapes and scalar types;
* test_accuracy.py: loss and gradient within its ULP bound of the mpmath
  twin, float32 and float64, over logits of every magnitude up to 80 (the
  tails, limits and special values of a loss remain its own module's tests);
* test_bad_input.py: every generic bad argument (logits, targets, weights,
  reduction, ignore_index, out, each of its invalid parameter examples), each
  raising the stated exception with a message that starts with the
  argument's name, and leaving every input bitwise unchanged;
* test_inputs_unchanged.py: every function x reduction x input layout
  leaves its inputs (and their owners' memory and flags) unchanged, a failed
  call in place writes nothing, out= receives the result in any layout;
* test_aliasing.py: out= over the logits, the targets or the weights in any
  overlap gives the numbers of a call on copies;
* test_leaks.py: every function's paths (success with class indices and
  with dense targets and weights, out=, a bad value of each parameter, a bad
  reduction, label and weight) leak no reference, memory block or malloc'd
  byte.

Target forms: "soft" (dense, in [0, 1]), "hard" (dense, 0 or 1), "labels"
(class indices along the last axis; for the elementwise family the value C
marks a background row), "rows" (dense rows of class probabilities, the
softmax family).  The family decides the shape of the per-element loss and
of the weights: the logits' shape (elementwise) or the rows' shape, the
class axis removed (softmax).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Tuple

import numpy as np

import focal
import reference
from layouts import arrange, hard_target_values, label_values, logit_values, soft_target_values

FORMS = ("soft", "hard", "labels", "rows")
FAMILIES = ("elementwise", "softmax")


@dataclass(frozen=True)
class Loss:
    name: str
    family: str                                   # one of FAMILIES
    functions: Mapping[str, Callable]             # "loss", "grad", "loss_and_grad"[, "grad_hess"]
    twin: Callable[..., reference.Reference]      # the NumPy twin in reference.py
    mp_twin: Callable                             # (logit or row, target, **params) -> (loss, grad)
    tolerance: Callable                           # (dtype, expected, scale) -> allowed error
    params: Mapping[str, Any]                     # its own parameters, in order, with defaults
    valid_params: Tuple[Mapping[str, Any], ...]   # examples; the first is the matrix's setting
    invalid_params: Tuple[Tuple[str, Any, type], ...]   # (name, value, exception)
    target_forms: Tuple[str, ...]                 # a subset of FORMS
    reductions: Tuple[str, ...]
    ulp_bound: float                              # worst error against mp_twin, float32 and float64
    targets_name: str = "targets"                 # the second argument's name (in messages)
    ignore_index: Optional[int] = None            # its default, when it takes ignore_index=

    def __post_init__(self):
        assert self.family in FAMILIES, self.family
        assert set(self.target_forms) <= set(FORMS), self.target_forms
        assert {"loss", "grad", "loss_and_grad"} <= set(self.functions), self.name
        assert all(set(p) <= set(self.params) for p in self.valid_params), self.name

    def __repr__(self):   # the test ids
        return self.name

    @property
    def takes_per_class_alpha(self) -> bool:
        """Whether alpha may be one value per class (an array argument)."""
        return any(p.get("alpha") == "per-class" for p in self.valid_params)

    @property
    def takes_ignore_index(self) -> bool:
        return self.ignore_index is not None

    def takes(self, function: str, argument: str) -> bool:
        """Whether `function` ("loss", ...) has the keyword `argument`."""
        if function == "grad_hess":
            return argument not in ("reduction", "out")
        return True

    def loss_shape(self, shape) -> tuple:
        """The shape of the per-element (or per-row) loss and of full weights."""
        return tuple(shape) if self.family == "elementwise" else tuple(shape)[:-1]

    def reference(self, logits, targets, params=None, **options) -> reference.Reference:
        return self.twin(logits, targets, **dict(self.params, **(params or {})), **options)


SIGMOID = Loss(
    name="sigmoid",
    family="elementwise",
    functions={"loss": focal.loss, "grad": focal.grad, "loss_and_grad": focal.loss_and_grad,
               "grad_hess": focal.grad_hess},
    twin=reference.focal_reference,
    tolerance=reference.tolerance,
    params={"alpha": 0.25, "gamma": 2.0},
    valid_params=({"alpha": 0.25, "gamma": 2.0}, {"alpha": None, "gamma": 0.0},
                  {"alpha": 1.0, "gamma": 0.5}, {"alpha": 0.0, "gamma": 3.7},
                  {"alpha": "per-class", "gamma": 1.0}),
    invalid_params=(("alpha", -0.1, ValueError), ("alpha", 1.5, ValueError),
                    ("alpha", np.nan, ValueError), ("alpha", "0.25", TypeError),
                    ("gamma", -1.0, ValueError), ("gamma", np.inf, ValueError),
                    ("gamma", np.nan, ValueError), ("gamma", "2", TypeError)),
    target_forms=("soft", "labels"),
    reductions=("none", "sum", "mean", "sum_over_positives"),
    mp_twin=lambda x, y, alpha, gamma: reference.sigmoid_focal_mp(x, y, gamma, alpha)[:2],
    ulp_bound=4.0,
    ignore_index=-1,
)

STAR = Loss(
    name="star",
    family="elementwise",
    functions={"loss": focal.star_loss, "grad": focal.star_grad,
               "loss_and_grad": focal.star_loss_and_grad},
    twin=reference.star_reference,
    tolerance=reference.tolerance,
    params={"alpha": 0.25, "gamma": 4.0, "beta": 0.0},
    valid_params=({"alpha": 0.25, "gamma": 4.0, "beta": 0.0}, {"alpha": None, "gamma": 2.0, "beta": 1.0},
                  {"alpha": 1.0, "gamma": 0.5, "beta": -2.0}, {"alpha": "per-class", "gamma": 3.3, "beta": 0.7}),
    invalid_params=(("alpha", -0.1, ValueError), ("alpha", 1.5, ValueError),
                    ("alpha", "0.25", TypeError),
                    ("gamma", 0.0, ValueError), ("gamma", -1.0, ValueError),
                    ("gamma", np.inf, ValueError), ("gamma", "4", TypeError),
                    ("beta", np.nan, ValueError), ("beta", np.inf, ValueError),
                    ("beta", "0", TypeError), ("beta", [1.0, 2.0], TypeError)),
    target_forms=("hard", "labels"),
    reductions=("none", "sum", "mean", "sum_over_positives"),
    mp_twin=lambda x, y, alpha, gamma, beta: reference.star_mp(x, y, gamma, beta, alpha),
    ulp_bound=4.0,
)

SOFTMAX = Loss(
    name="softmax",
    family="softmax",
    functions={"loss": focal.softmax_loss, "grad": focal.softmax_grad,
               "loss_and_grad": focal.softmax_loss_and_grad},
    twin=reference.softmax_reference,
    tolerance=reference.softmax_tolerance,
    params={"alpha": None, "gamma": 2.0},
    valid_params=({"alpha": None, "gamma": 2.0}, {"alpha": 0.25, "gamma": 0.0},
                  {"alpha": 1.0, "gamma": 0.5}, {"alpha": "per-class", "gamma": 3.3}),
    invalid_params=(("alpha", -0.1, ValueError), ("alpha", 1.5, ValueError),
                    ("alpha", np.nan, ValueError), ("alpha", "0.25", TypeError),
                    ("gamma", -1.0, ValueError), ("gamma", np.inf, ValueError),
                    ("gamma", np.nan, ValueError), ("gamma", "2", TypeError)),
    target_forms=("labels", "rows"),
    reductions=("none", "sum", "mean"),
    mp_twin=lambda z, y, alpha, gamma: reference.softmax_mp(z, y, gamma, alpha)[:2],
    ulp_bound=8.0,
    targets_name="labels",
    ignore_index=-100,
)

POLY1 = Loss(
    name="poly1",
    family="elementwise",
    functions={"loss": focal.poly1_loss, "grad": focal.poly1_grad,
               "loss_and_grad": focal.poly1_loss_and_grad, "grad_hess": focal.poly1_grad_hess},
    twin=reference.poly1_reference,
    tolerance=reference.tolerance,
    params={"alpha": 0.25, "gamma": 2.0, "epsilon": 1.0},
    valid_params=({"alpha": 0.25, "gamma": 2.0, "epsilon": 1.0},
                  {"alpha": None, "gamma": 0.0, "epsilon": 2.5},
                  {"alpha": 1.0, "gamma": 0.5, "epsilon": -0.5},
                  {"alpha": "per-class", "gamma": 3.7, "epsilon": 0.0}),
    invalid_params=(("alpha", -0.1, ValueError), ("alpha", "0.25", TypeError),
                    ("gamma", -1.0, ValueError), ("gamma", np.nan, ValueError),
                    ("epsilon", -1.5, ValueError), ("epsilon", np.inf, ValueError),
                    ("epsilon", np.nan, ValueError), ("epsilon", "1", TypeError)),
    target_forms=("soft", "labels"),
    reductions=("none", "sum", "mean", "sum_over_positives"),
    mp_twin=lambda x, y, alpha, gamma, epsilon: reference.poly1_mp(x, y, gamma, epsilon, alpha)[:2],
    ulp_bound=4.0,
    ignore_index=-1,
)

VARIFOCAL = Loss(
    name="varifocal",
    family="elementwise",
    functions={"loss": focal.varifocal_loss, "grad": focal.varifocal_grad,
               "loss_and_grad": focal.varifocal_loss_and_grad,
               "grad_hess": focal.varifocal_grad_hess},
    twin=reference.varifocal_reference,
    tolerance=reference.tolerance,
    params={"alpha": 0.75, "gamma": 2.0},
    valid_params=({"alpha": 0.75, "gamma": 2.0}, {"alpha": 0.0, "gamma": 0.0},
                  {"alpha": 1.0, "gamma": 0.5}, {"alpha": 2.5, "gamma": 3.7}),
    invalid_params=(("alpha", -0.1, ValueError), ("alpha", np.inf, ValueError),
                    ("alpha", np.nan, ValueError), ("alpha", None, TypeError),
                    ("alpha", "0.75", TypeError), ("gamma", -1.0, ValueError),
                    ("gamma", np.nan, ValueError), ("gamma", "2", TypeError)),
    target_forms=("soft", "labels"),
    reductions=("none", "sum", "mean", "sum_over_positives"),
    mp_twin=lambda x, y, alpha, gamma: reference.varifocal_mp(x, y, gamma, alpha)[:2],
    ulp_bound=4.0,
    ignore_index=-1,
)

ASYMMETRIC = Loss(
    name="asymmetric",
    family="elementwise",
    functions={"loss": focal.asymmetric_loss, "grad": focal.asymmetric_grad,
               "loss_and_grad": focal.asymmetric_loss_and_grad,
               "grad_hess": focal.asymmetric_grad_hess},
    twin=reference.asymmetric_reference,
    tolerance=reference.tolerance,
    params={"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05},
    valid_params=({"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05},
                  {"gamma_pos": 1.0, "gamma_neg": 0.0, "clip": 0.0},
                  {"gamma_pos": 0.5, "gamma_neg": 2.5, "clip": 0.2},
                  {"gamma_pos": 2.0, "gamma_neg": 1.0, "clip": 0.9}),
    invalid_params=(("gamma_pos", -1.0, ValueError), ("gamma_pos", np.inf, ValueError),
                    ("gamma_pos", "0", TypeError), ("gamma_neg", -0.5, ValueError),
                    ("gamma_neg", np.nan, ValueError), ("gamma_neg", None, TypeError),
                    ("clip", 1.0, ValueError), ("clip", -0.01, ValueError),
                    ("clip", np.nan, ValueError), ("clip", "0.05", TypeError)),
    target_forms=("hard", "labels"),
    reductions=("none", "sum", "mean", "sum_over_positives"),
    mp_twin=lambda x, y, gamma_pos, gamma_neg, clip: reference.asymmetric_mp(
        x, y, gamma_pos, gamma_neg, clip)[:2],
    ulp_bound=4.0,
    ignore_index=-1,
)

QUALITY = Loss(
    name="quality",
    family="elementwise",
    functions={"loss": focal.quality_loss, "grad": focal.quality_grad,
               "loss_and_grad": focal.quality_loss_and_grad,
               "grad_hess": focal.quality_grad_hess},
    twin=reference.quality_reference,
    tolerance=reference.tolerance,
    params={"beta": 2.0},
    valid_params=({"beta": 2.0}, {"beta": 0.0}, {"beta": 0.5}, {"beta": 1.0}, {"beta": 3.7}),
    invalid_params=(("beta", -0.5, ValueError), ("beta", np.inf, ValueError),
                    ("beta", np.nan, ValueError), ("beta", None, TypeError),
                    ("beta", "2", TypeError), ("beta", [1.0, 2.0], TypeError)),
    target_forms=("soft", "labels"),
    reductions=("none", "sum", "mean", "sum_over_positives"),
    mp_twin=lambda x, y, beta: reference.quality_mp(x, y, beta)[:2],
    ulp_bound=4.0,
    ignore_index=-1,
)


LOSSES = (SIGMOID, STAR, SOFTMAX, POLY1, VARIFOCAL, ASYMMETRIC, QUALITY)


# ------------------------------------------------------------------ inputs


def params_for(loss: Loss, params: Mapping[str, Any], num_classes: int, rng=None) -> dict:
    """A valid-parameter example made concrete: "per-class" becomes one alpha per class."""
    concrete = dict(params)
    if concrete.get("alpha") == "per-class":
        concrete["alpha"] = (np.linspace(0.1, 0.9, num_classes) if rng is None
                             else rng.uniform(0.0, 1.0, num_classes))
    return concrete


def ignore_options(loss: Loss, ignore_index: Optional[int] = None) -> dict:
    """The ignore_index= keyword of a call, if the loss takes one."""
    if not loss.takes_ignore_index:
        return {}
    return {"ignore_index": loss.ignore_index if ignore_index is None else ignore_index}


def make_logits(rng, shape, dtype=np.float64, layout="C") -> np.ndarray:
    return arrange(logit_values(rng, shape, dtype), dtype, layout)


def target_values(loss: Loss, form: str, rng, shape, content: str = "mixed") -> np.ndarray:
    """Targets of `form` for logits of `shape` (class axis last), as float64 or int64.

    Class indices hold ignored rows (the loss's ignore_index; -1 for a loss
    without the keyword, which ignores -1) and, in the elementwise family,
    background rows (C).
    """
    assert form in loss.target_forms, (loss, form)
    if form == "soft":
        return soft_target_values(rng, shape)
    if form == "hard":
        return hard_target_values(rng, shape)
    num_classes = shape[-1]
    ignore = loss.ignore_index if loss.takes_ignore_index else -1
    if form == "labels":
        labels = label_values(rng, shape[:-1], num_classes, content, ignore)
        if loss.family == "softmax":   # no background class: those rows become class 0
            labels = np.where(labels == num_classes, 0, labels)
        return labels
    # rows: one-hot rows and soft distributions, half each
    assert num_classes > 0, "dense rows need a class"
    soft = rng.dirichlet(np.ones(num_classes), size=shape[:-1])
    one_hot = np.eye(num_classes)[rng.integers(0, num_classes, size=shape[:-1])]
    return np.where(rng.uniform(size=shape[:-1] + (1,)) < 0.5, one_hot, soft)


def make_targets(loss: Loss, form: str, rng, shape, layout="C", dtype=None) -> np.ndarray:
    """`target_values` stored in `layout` (float64 dense targets, int64 class indices by default)."""
    values = target_values(loss, form, rng, shape)
    if dtype is None:
        dtype = np.int64 if form == "labels" else np.float64
    return arrange(values, dtype, layout)


def make_weights(loss: Loss, rng, shape, dtype=np.float64, layout="C") -> np.ndarray:
    """Weights in [0, 2] of the loss's full weight shape."""
    return arrange(rng.uniform(0.0, 2.0, loss.loss_shape(shape)), dtype, layout)


def calls(loss: Loss, reductions=None):
    """(id, function, keywords) of every public function of `loss` with every reduction."""
    result = []
    for name, function in loss.functions.items():
        if not loss.takes(name, "reduction"):
            result.append((f"{loss.name}-{name}", function, {}))
            continue
        for reduction in reductions or loss.reductions:
            result.append((f"{loss.name}-{name}-{reduction}", function, {"reduction": reduction}))
    return result


def out_calls(loss: Loss):
    """(id, function, reduction, shape of out for logits of shape S) of the calls that take out=."""
    result = []
    for name, function in loss.functions.items():
        if not loss.takes(name, "out"):
            continue
        reductions = ("none",) if name == "loss" else loss.reductions
        for reduction in reductions:
            result.append((f"{loss.name}-{name}-{reduction}", name, function, reduction))
    return result

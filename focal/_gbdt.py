"""Focal-loss objectives and evaluation metrics for gradient boosting: XGBoost and LightGBM.

`xgboost_objective` and `lightgbm_objective` return callables built on
`focal.grad_hess` (`focal.softmax_grad_hess` for multi-class), `xgboost_metric`
and `lightgbm_metric` callables built on `focal.loss` (`focal.softmax_loss`).  One callable serves both of a library's interfaces: the native
``train()`` (called as ``obj(preds, dtrain)``) and the scikit-learn estimator
(called as ``obj(y_true, y_pred[, weights])``); the form is told apart by the
type of the second argument.  Neither library is imported here: a call can
only come from a library that is already loaded.
"""
from __future__ import annotations

import math
import sys
import warnings
from typing import (Any, Dict, Literal, NamedTuple, Optional, Tuple, Type, TypeVar, Union,
                    overload)

import numpy as np

from . import _args
from ._docs import fill_docstring
from ._sigmoid import grad_hess, loss
from ._softmax import softmax_grad_hess, softmax_loss
from ._typing import Real

_DEFAULT_FLOOR = 0.01
# XGBoost and LightGBM store gradients and hessians in float32, whatever
# dtype the objective returns: the floor and every value handed over must be
# a finite float32 number.
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal number
_FLOAT32_MAX = _args.FLOAT32_MAX
# LightGBM stores an infinite init_score as +-1e300 (and a NaN one as 0)
# before any objective sees it; no model has a margin that large otherwise,
# so a margin is accepted when its magnitude is below 1e300.
_MARGIN_LIMIT = float(np.nextafter(1e300, 0.0))

# The bounds are printed in full (the reprs of _FLOAT32_TINY and _FLOAT32_MAX):
# float32's own 3.4028235e+38 is above its largest as a double, and refused.
_COMMON_PARAMETERS = """\
alpha : None, float or array_like, default 0.25 (binary), None (multi-class)
    Binary: the weight of the positive class, alpha_t = alpha y + (1 - alpha)
    (1 - y), as in `focal.loss`; a binary objective has one output, so
    per-class values are refused.  Multi-class: one weight in [0, 1] per
    class (alpha_c of the sample's class c), as in `focal.softmax_loss`.
    None turns the weighting off.
gamma : float, default 2.0
    Focusing parameter >= 0.  ``alpha=None, gamma=0`` is the logistic loss
    (gradient p - y, hessian p (1 - p)); with ``hessian_floor=1e-16`` too,
    the library's own binary objective (the default floor raises hessians
    where |margin| > 4.6).
hessian_floor : float, default 0.01
    Positive lower bound of each sample's unweighted hessian, applied before
    the sample weight multiplies it (as XGBoost floors its own logistic
    hessian at 1e-16), so a zero-weight sample still contributes nothing.
    A number from float32's smallest normal number,
    1.1754943508222875e-38, to its largest, 3.4028234663852886e+38, both
    included (3.4028235e+38, as float32 prints its largest, is a larger
    double and refused): both libraries store hessians in float32, where
    a smaller floor would be 0.  See Notes for the default.
multiclass : bool, default False
    True: K-class training (``num_class=K``), the softmax focal loss of
    `focal.softmax_loss`; the margins have K columns and the labels are
    class indices 0..K-1.  See Notes.
hessian_scale : {"xgboost", "lightgbm"} or float, default 1.0
    Multi-class only: a factor on the hessian before the floor.  The
    built-in objectives scale the softmax hessian p (1 - p): ``"xgboost"``
    (``multi:softprob``) by 2, ``"lightgbm"`` (``multiclass``) by
    K / (K - 1).  With ``alpha=None, gamma=0`` and the library's scale the
    objective trains the built-in objective's trees.  A number is at most
    float32's largest, 3.4028234663852886e+38, as is the floor.
"""

_METRIC_PARAMETERS = """\
alpha : None, float or array_like, default 0.25 (binary), None (multi-class)
    Binary: the weight of the positive class, as in `focal.loss`.
    Multi-class: one weight in [0, 1] per class, as in
    `focal.softmax_loss`.  None turns the weighting off.  Use the
    objective's value.
gamma : float, default 2.0
    Focusing parameter >= 0; use the objective's value.
multiclass : bool, default False
    True: the softmax focal loss of margins of shape (n, K) and class
    indices 0..K-1 (`focal.softmax_loss`), the multi-class objective's.
    Margins whose rows all lie in [0, 1] and sum to 1 (K >= 3, not all
    equal) give a UserWarning naming them: the probabilities a built-in
    objective hands its metrics, whose softmax would be scored.
"""

_NOTES = """\
With p = sigmoid(margin) and labels y in [0, 1] (soft labels are allowed),
the objective of a sample with weight w is w FL(margin, y), FL the focal loss
of `focal.loss`.  Its gradient and hessian come from `focal.grad_hess`, in
double precision and exact in the tails; the hessian is then floored:

    grad = w dFL/dmargin,    hess = w max(d2FL/dmargin2, hessian_floor).

Why a floor, and why 0.01: the focal loss is not convex for gamma > 0. For a
positive sample (y = 1) the second derivative is negative below a margin of
-2.79 for gamma = 2 (-4.02 for gamma 0.5, -3.10 for 1, -2.94 for 5), which
is where every positive starts on imbalanced data (focal.prior_bias(0.05) is
-2.94); symmetrically for y = 0. A well-classified sample's hessian decays
like (1 - p_t)^(gamma + 1), far below the logistic p (1 - p). Newton leaf
values -G / (H + lambda) then divide large gradients by tiny hessian sums.
Measured on imbalanced data (1 % and 5 % positives, gamma 0.5 to 5), floors
of 1e-6 to 1e-3 made LightGBM's margins diverge (to tens, hundreds or
thousands) and left XGBoost unable to split when the hessian sums stayed
below its ``min_child_weight=1``; floors of 0.01 to 0.03 trained stably with
an average precision close to the logistic objective's. The floor also binds
for well-classified samples, whose gradients are as small, so there it only
damps their Newton steps. Pass a tiny floor (say 1e-16, XGBoost's own) to
get the unmodified hessian wherever it is positive.

The model is trained on margins (log-odds).  A model trained with a custom
objective predicts raw margins; turn them into probabilities with
``scipy.special.expit`` (or ``1 / (1 + np.exp(-margin))``).  The library
does not know the loss, so it cannot fit the intercept: start it at the
log-odds of the positive rate, ``focal.prior_bias(y.mean())`` (the paper
uses ``focal.prior_bias(0.01)`` for rare positives).

Every call checks what the library hands over, and raises a ValueError
naming it rather than training on it: a margin that is not finite (a NaN
or infinite starting margin, which would make every prediction of the
model NaN), a label outside [0, 1], a weight that is negative or not
finite.  A gradient or hessian that would not be a finite float32 number
(gamma too large for the derivatives, a hessian_scale or a huge weight
that overflows them) is refused too, naming gamma, hessian_scale or the
weights.

Monitor training with the matching metric (`xgboost_metric`,
`lightgbm_metric`): with a custom objective the libraries' default metrics
score the margins as if they were something else.

Multi-class (``multiclass=True``): a sample of class c with weight w and
margins z_1..z_K has the objective w FL(z, c), FL the softmax focal loss
-alpha_c (1 - p_c)^gamma log p_c of `focal.softmax_loss`.  The gradient is
exact; the hessian is the exact diagonal d2FL/dz_j^2 of
`focal.softmax_grad_hess` (a tree fits each class's margins on its own,
so the diagonal is what Newton's step of that class uses), times
`hessian_scale`, then floored as above:

    grad = w dFL/dz_j,    hess = w max(hessian_scale d2FL/dz_j^2, hessian_floor).

At ``gamma=0, alpha=None`` the hessian is p_j (1 - p_j), softmax
cross-entropy's.  Labels must be class indices 0..K-1 (integral floats, as
the libraries store them) and the margins must have shape (n, K), or a
ValueError names them.  Predictions are margins: apply
``scipy.special.softmax(margins, axis=1)`` for probabilities.  The model
starts at margins 0 (all classes equally likely) unless given starting
margins (XGBoost ``base_margin`` of shape (n, K), LightGBM ``init_score``);
``np.log`` of the class frequencies is the usual start.  Checked with
XGBoost 3.2.0 and LightGBM 4.7.0, which hand a custom objective margins of
shape (n, K) and take (n, K) derivatives back; for LightGBM's built-in
``multiclass`` to start at 0 too, set ``boost_from_average=False``."""


class _Names(NamedTuple):
    """What one call form's arrays are called where the user handed them over."""

    labels: str
    margins: str
    weights: str
    start: str  # where the model's starting margins come from


# Labels and weights are named as the user passed them (a DMatrix's or a
# Dataset's `label` and `weight`, the estimator's `fit(y, sample_weight=)`);
# margins are the library's own, named as in the call it makes.
_XGBOOST_NATIVE = _Names("label", "predt", "weight", "base_margin and base_score")
_XGBOOST_SKLEARN = _Names("y", "y_pred", "sample_weight", "base_margin and base_score")
_LIGHTGBM_NATIVE = _Names("label", "preds", "weight", "init_score")
_LIGHTGBM_SKLEARN = _Names("y", "y_pred", "sample_weight", "init_score")
# the metrics also see the evaluation sets, which the estimators take apart
_XGBOOST_NATIVE_METRIC = _Names("label", "predt", "weight",
                                "the DMatrix's base_margin and base_score")
_XGBOOST_SKLEARN_METRIC = _Names("y_true", "y_pred", "sample_weight_eval_set",
                                 "base_margin_eval_set and base_score")
_LIGHTGBM_NATIVE_METRIC = _Names("label", "preds", "weight", "the Dataset's init_score")
_LIGHTGBM_SKLEARN_METRIC = _Names("y_true", "y_pred", "eval_sample_weight", "eval_init_score")


def _show(value: Any) -> str:
    """A number for a message: 8 significant digits, whatever its NumPy type."""
    return format(float(value), ".8g")


def _first_outside(values: np.ndarray, low: float, high: float) -> Optional[int]:
    """Flat index of the first value outside [low, high] (NaN included), or None.

    The extremes settle the common case, every value inside, without a
    temporary array; only a failing array is searched for the index.  Both
    read the array in pieces (_args.pieces): Ctrl-C is not held up, and the
    search's temporaries are the size of a piece.
    """
    # (bounds as float64 scalars: NumPy would cast a Python float to the
    # array's dtype, and float64's largest number overflows float32)
    low_, high_ = np.float64(low), np.float64(high)
    if values.size == 0:
        return None
    smallest, largest = _args.extremes(values)
    if smallest >= low_ and largest <= high_:
        return None
    start = 0
    for (piece,) in _args.pieces(values, c_order=True):  # runs of consecutive flat indices
        outside = np.flatnonzero(~((piece >= low_) & (piece <= high_)))
        if outside.size:
            return start + int(outside[0])
        start += piece.size
    return None  # (not reached: the extremes saw a value outside)


def _first_fraction(values: np.ndarray) -> Optional[int]:
    """Flat index of the first value that is not a whole number, or None
    (float values, all finite), read in pieces as _first_outside reads them."""
    start = 0
    for (piece,) in _args.pieces(values, c_order=True):
        fractional = np.flatnonzero(piece != np.floor(piece))
        if fractional.size:
            return start + int(fractional[0])
        start += piece.size
    return None


def _check_margins(margins: np.ndarray, names: _Names, library: str) -> None:
    """Refuses margins that are not real and finite, naming them; `library`
    ("XGBoost" or "LightGBM") is the one that handed them over."""
    if margins.dtype.kind not in "iuf":
        raise TypeError(f"{names.margins}: expected real margins, got dtype {margins.dtype}")
    bad = _first_outside(margins, -_MARGIN_LIMIT, _MARGIN_LIMIT)
    if bad is not None:
        value = margins.flat[bad]
        stand_in = ""
        if math.isfinite(value):
            stand_in = (" (LightGBM's stand-in for an infinite init_score)"
                        if library == "LightGBM" else
                        " (a margin of magnitude 1e300 or more is taken for an infinite one)")
        raise ValueError(
            f"{names.margins}: expected finite margins, got {_show(value)} at index "
            f"{bad}{stand_in}; a non-finite margin gives NaN derivatives, which make every "
            f"prediction of the model NaN: check {names.start}"
        )


def _array(name: str, value: Any) -> np.ndarray:
    """np.asarray of what a library hands over, or a ValueError that names it
    (a ragged list gave NumPy's own message).  A masked array is refused by
    name, as the core refuses it: np.asarray drops its mask (the core's advice,
    weights=~mask, is not these callables' to follow)."""
    if _args._is_masked(value):
        raise TypeError(f"{name}: masked arrays are not supported (the mask would be silently "
                        f"dropped); pass the valid elements only")
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}: expected an array of numbers; could not make an array "
                         f"({error})") from None


def _checked_weights(weights: Any, count: int, names: _Names) -> Optional[np.ndarray]:
    """The sample weights as an array of `count` finite non-negative values, or None."""
    if weights is None:
        return None
    weights = _array(names.weights, weights)
    if weights.size == 0:  # XGBoost's DMatrix.get_weight() without weights
        return None
    if weights.size != count:
        raise ValueError(
            f"{names.weights}: expected one weight per label ({count}), got {weights.size}"
        )
    if weights.dtype.kind not in "biuf":
        raise TypeError(
            f"{names.weights}: expected finite non-negative weights, got dtype {weights.dtype}"
        )
    bad = _first_outside(weights, 0, sys.float_info.max)
    if bad is not None:
        raise ValueError(
            f"{names.weights}: expected finite non-negative weights, got "
            f"{_show(weights.flat[bad])} at index {bad}"
        )
    return weights


class _FocalParameters:
    """alpha and gamma, the checks of the arrays a library hands over, and the
    value semantics (equality, hash, repr, pickling) shared by every callable."""

    __slots__ = ("_alpha", "_gamma")
    _library = ""  # "XGBoost" or "LightGBM"
    _kind = ""  # "objective" or "metric"

    def __init__(self, alpha: Any = 0.25, gamma: Any = 2.0):
        if alpha is not None:
            if isinstance(alpha, (str, bytes, bool, np.bool_)):
                raise TypeError(f"alpha: expected None or a number in [0, 1], got {alpha!r}")
            try:
                ndim = np.ndim(alpha)
            except ValueError:  # (a ragged sequence)
                raise TypeError(f"alpha: expected None or a number in [0, 1], got {alpha!r}"
                                ) from None
            if ndim != 0:
                raise TypeError(
                    f"alpha: expected None or a number in [0, 1], got an array of shape "
                    f"{np.shape(alpha)}; a binary objective has a single output, so "
                    "per-class values do not apply"
                )
            alpha, _ = _args.alpha_values(alpha, np.zeros(1, dtype=np.float64))
        self._alpha: Optional[float] = alpha
        self._gamma = _args.gamma_value(gamma)

    @property
    def alpha(self) -> Optional[float]:
        """Weight of the positive class, or None (no weighting)."""
        return self._alpha

    @property
    def gamma(self) -> float:
        """Focusing parameter."""
        return self._gamma

    def _keywords(self) -> Dict[str, Any]:
        return {"alpha": self._alpha, "gamma": self._gamma}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self._keywords().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._keywords() == other._keywords()

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + tuple(self._keywords().values()))

    def _refuse_other_library(self, margins: Any) -> None:
        """The other library's data set (a DMatrix where a LightGBM callable
        was meant, or a Dataset) refused by name, before anything reads it."""
        if not isinstance(margins, np.ndarray) and hasattr(margins, "get_label"):
            other = "lightgbm" if self._library == "XGBoost" else "xgboost"
            # (named as this callable's own call form names its second argument)
            second = {("XGBoost", "objective"): "dtrain", ("XGBoost", "metric"): "dmat",
                      ("LightGBM", "objective"): "train_data",
                      ("LightGBM", "metric"): "eval_data"}[self._library, self._kind]
            raise TypeError(
                f"{second}: this focal {self._kind} is for {self._library}; got a "
                f"{type(margins).__module__}.{type(margins).__name__} "
                f"(use focal.{other}_{self._kind})"
            )

    def _arrays(self, labels: Any, margins: Any, weights: Any,
                names: _Names) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """The labels, margins and weights of one call, checked, in the margins' shape.

        Everything a library hands over is checked here, before anything is
        computed from it, so that a bad value is reported under the name the
        user gave it.  A non-finite margin in particular would give NaN
        derivatives that the library sums into every leaf: one NaN
        base_margin would make every prediction of the model NaN.
        """
        self._refuse_other_library(margins)
        margins = _array(names.margins, margins)
        labels = _array(names.labels, labels)
        if margins.ndim == 2 and margins.shape[1] > 1 and margins.size == labels.size:
            raise ValueError(
                f"{names.margins}: the focal {self._kind} is binary, one margin per row: got "
                f"margins of shape {margins.shape}, several binary labels per row (a "
                f"multi-label or multi-target model), which it does not support; a multi-class "
                f"model (one class per row, a column per class) takes multiclass=True"
            )
        if margins.size != labels.size or (margins.ndim == 2 and margins.shape[1] != 1) or margins.ndim > 2:
            raise ValueError(
                f"{names.margins}: the focal {self._kind} is binary: expected one margin per "
                f"label, got margins of shape {margins.shape} for {labels.size} labels (a "
                f"multi-class model has one column per class: use multiclass=True)"
            )
        _check_margins(margins, names, self._library)
        if labels.dtype.kind not in "biuf":
            raise TypeError(f"{names.labels}: expected labels in [0, 1], got dtype {labels.dtype}")
        bad = _first_outside(labels, 0, 1)
        if bad is not None:
            raise ValueError(
                f"{names.labels}: expected labels in [0, 1], got {_show(labels.flat[bad])} at "
                f"index {bad}"
            )
        labels = labels.reshape(margins.shape)
        weights = _checked_weights(weights, labels.size, names)
        if weights is not None:
            weights = weights.reshape(margins.shape)
        return labels, margins, weights


class _FocalObjective(_FocalParameters):
    """The floored derivatives shared by both libraries' objectives."""

    __slots__ = ("_hessian_floor",)
    _kind = "objective"

    def __init__(self, alpha: Any = 0.25, gamma: Any = 2.0, *, hessian_floor: Any = _DEFAULT_FLOOR):
        super().__init__(alpha, gamma)
        floor = _args.real_scalar("hessian_floor", hessian_floor, "a finite number > 0")
        if not (math.isfinite(floor) and floor > 0):
            raise ValueError(f"hessian_floor: expected a finite number > 0, got {floor!r}")
        # Both libraries store hessians in float32: a smaller floor would be
        # 0 there (or a subnormal, which flush-to-zero arithmetic makes 0),
        # a larger one infinite.
        if not _FLOAT32_TINY <= floor <= _FLOAT32_MAX:
            raise ValueError(
                f"hessian_floor: expected a number from {_FLOAT32_TINY!r} (float32's smallest "
                f"normal number) to {_FLOAT32_MAX!r} (its largest), got {floor!r}; XGBoost and "
                "LightGBM store hessians in float32, where this floor would be "
                f"{'0' if floor < _FLOAT32_TINY else 'infinite'}"
            )
        self._hessian_floor = floor

    @property
    def hessian_floor(self) -> float:
        """Lower bound of each sample's unweighted hessian."""
        return self._hessian_floor

    def _keywords(self) -> Dict[str, Any]:
        return {**super()._keywords(), "hessian_floor": self._hessian_floor}

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (_rebuild, (type(self), self._alpha, self._gamma, self._hessian_floor))

    def _derivatives(self, labels: Any, margins: Any, weights: Any,
                     names: _Names) -> Tuple[np.ndarray, np.ndarray]:
        """Floored (grad, hess) of the weighted focal loss, in the margins' shape."""
        labels, margins, weights = self._arrays(labels, margins, weights, names)
        grad, hess = grad_hess(margins, labels, self._alpha, self._gamma, weights=weights)
        # The library would take a non-finite value (or one past float32's
        # range, which it stores) without a word and sum it into every leaf.
        # The checks above leave two causes: the derivatives themselves (a
        # gamma too large for them) or the product with a huge weight.  The
        # hessian is checked before the floor too, which would hide a -inf.
        bad = _first_outside(hess, -sys.float_info.max, sys.float_info.max)
        if bad is None:
            with np.errstate(over="ignore"):  # a weighted floor past float32: inf, refused below
                floor = self._hessian_floor if weights is None else self._hessian_floor * weights
                np.maximum(hess, floor, out=hess, casting="unsafe")
            bad = _first_outside(grad, -_FLOAT32_MAX, _FLOAT32_MAX)
        if bad is None:
            bad = _first_outside(hess, -_FLOAT32_MAX, _FLOAT32_MAX)
        if bad is not None:
            self._refuse_derivative(labels, margins, weights, names, bad)
        return grad, hess

    def _refuse_derivative(self, labels: np.ndarray, margins: np.ndarray,
                           weights: Optional[np.ndarray], names: _Names, index: int) -> None:
        margin = margins.reshape(-1)[index:index + 1]
        label = labels.reshape(-1)[index:index + 1]
        grad, hess = grad_hess(margin, label, self._alpha, self._gamma)
        raw = np.array([grad[0], hess[0]], dtype=np.float64)
        unweighted = np.array([grad[0], max(hess[0], self._hessian_floor)], dtype=np.float64)
        finite = _first_outside(raw, -sys.float_info.max, sys.float_info.max) is None
        if (weights is not None and finite
                and _first_outside(unweighted, -_FLOAT32_MAX, _FLOAT32_MAX) is None):
            raise ValueError(
                f"{names.weights}: the weight {_show(weights.flat[index])} at index {index} "
                f"makes the weighted gradient or hessian ({_show(unweighted[0])} and "
                f"{_show(unweighted[1])} unweighted) overflow float32, which XGBoost and "
                "LightGBM store them in; scale the weights down"
            )
        raise ValueError(
            f"gamma: the focal gradient and hessian at index {index} (margin "
            f"{_show(margin[0])}, label {_show(label[0])}) are {_show(grad[0])} and "
            f"{_show(hess[0])} with gamma={self._gamma!r}, not both finite float32 numbers; "
            "use a smaller gamma"
        )


_Objective = TypeVar("_Objective", bound=_FocalObjective)


def _rebuild(cls: Type[_Objective], alpha: Optional[float], gamma: float,
             hessian_floor: float) -> _Objective:
    return cls(alpha, gamma, hessian_floor=hessian_floor)


class XGBoostObjective(_FocalObjective):
    """Focal-loss objective for XGBoost; create it with `focal.xgboost_objective`.

    Call forms
    ----------
    ``obj(predt, dtrain)``
        `xgboost.train` (``obj=``): `predt` are the current margins, labels
        and weights are read from the `xgboost.DMatrix` `dtrain`.
    ``obj(y_true, y_pred, sample_weight=None)``
        `xgboost.XGBClassifier` and `xgboost.XGBRegressor` (``objective=``).

    Both return ``(grad, hess)``, arrays of the margins' shape.
    """

    __slots__ = ()
    _library = "XGBoost"

    def __call__(self, predt_or_y_true: Any, dtrain_or_y_pred: Any,
                 sample_weight: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        xgboost = sys.modules.get("xgboost")
        if xgboost is not None and isinstance(dtrain_or_y_pred, xgboost.DMatrix):
            if sample_weight is not None:
                raise TypeError("sample_weight: the native form obj(predt, dtrain) reads the "
                                "weights from dtrain")
            dtrain = dtrain_or_y_pred
            return self._derivatives(dtrain.get_label(), predt_or_y_true, dtrain.get_weight(),
                                     _XGBOOST_NATIVE)
        return self._derivatives(predt_or_y_true, dtrain_or_y_pred, sample_weight,
                                 _XGBOOST_SKLEARN)


class LightGBMObjective(_FocalObjective):
    """Focal-loss objective for LightGBM; create it with `focal.lightgbm_objective`.

    Call forms
    ----------
    ``obj(preds, train_data)``
        `lightgbm.train` (``params={"objective": obj}``): `preds` are the
        current raw scores, labels and weights are read from the
        `lightgbm.Dataset` `train_data`.
    ``obj(y_true, y_pred, weight=None)``
        `lightgbm.LGBMClassifier` and `lightgbm.LGBMRegressor`
        (``objective=``); the three parameters make LightGBM pass the sample
        weights.

    Both return ``(grad, hess)``, arrays of the scores' shape.
    """

    __slots__ = ()
    _library = "LightGBM"

    def __call__(self, preds_or_y_true: Any, train_data_or_y_pred: Any,
                 weight: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        lightgbm = sys.modules.get("lightgbm")
        if lightgbm is not None and isinstance(train_data_or_y_pred, lightgbm.Dataset):
            if weight is not None:
                raise TypeError("weight: the native form obj(preds, train_data) reads the "
                                "weights from train_data")
            data = train_data_or_y_pred
            return self._derivatives(data.get_label(), preds_or_y_true, data.get_weight(),
                                     _LIGHTGBM_NATIVE)
        return self._derivatives(preds_or_y_true, train_data_or_y_pred, weight,
                                 _LIGHTGBM_SKLEARN)


# the built-in multi-class objectives' factor on the hessian p (1 - p), by
# name: XGBoost's multi:softprob doubles it; LightGBM's multiclass multiplies
# it by K / (K - 1) (Friedman's rescaling of the K-output form)
_HESSIAN_SCALES = ("xgboost", "lightgbm")


def _probability_rows(margins: np.ndarray) -> bool:
    """Whether (n, K) margins, K >= 3, look like probabilities: every value in
    [0, 1], every row's sum 1 to float32's rounding, and not every value the
    same (starting margins of 1/K, or two classes' of 1/2, XGBoost's default
    base_score, would pass for probabilities; a built-in objective's first
    round, uniform too, is told apart by the rounds after it)."""
    if margins.ndim != 2 or margins.shape[0] == 0 or margins.shape[1] < 3:
        return False
    if not (margins.min() >= 0.0 and margins.max() <= 1.0) or margins.min() == margins.max():
        return False
    sums = margins.sum(axis=1, dtype=np.float64)
    return bool(np.all(np.abs(sums - 1.0) <= 1e-5))


def _faint_rows(hess: np.ndarray) -> np.ndarray:
    """The rows of float32 hessians with a value below float32's normal range,
    0 included (an underflow; none for float64 hessians)."""
    if hess.dtype != np.float32:
        return np.zeros(0, np.intp)
    return np.flatnonzero((np.abs(hess) < _FLOAT32_TINY).any(axis=1))


def _hessian_scale_value(scale: Any) -> Union[str, float]:
    expected = (f"'xgboost', 'lightgbm' or a number > 0 and at most {_FLOAT32_MAX!r} "
                "(float32's largest)")
    if isinstance(scale, str):
        if scale not in _HESSIAN_SCALES:
            raise ValueError(f"hessian_scale: expected {expected}, got {scale!r}")
        return scale
    value = _args.real_scalar("hessian_scale", scale, expected)
    # Both libraries store hessians in float32: a larger factor would make
    # every hessian of 1 or more infinite there.
    if not 0 < value <= _FLOAT32_MAX:
        raise ValueError(f"hessian_scale: expected {expected}, got {value!r}; XGBoost and "
                         "LightGBM store hessians in float32")
    return value


def _class_alpha(alpha: Any) -> Optional[Tuple[float, ...]]:
    """alpha of a multi-class callable: None, or one value in [0, 1] per class."""
    if alpha is None:
        return None
    if isinstance(alpha, (str, bytes, bool, np.bool_)):
        raise TypeError(f"alpha: expected None or one value in [0, 1] per class, got {alpha!r}")
    values = _args.as_array("alpha", alpha, "iuf", "None or one value in [0, 1] per class")
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"alpha: expected None or one value in [0, 1] per class (at "
                         f"least 2), got shape {values.shape}")
    _args.class_alpha(values, values.size, class_axis=-1)  # each in [0, 1]
    return tuple(float(value) for value in values)


def _class_arrays(caller: _FocalParameters, labels: Any, margins: Any, weights: Any,
                  names: _Names) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """The class indices (intp), margins (n, K) and weights of one call of a
    multi-class objective or metric, checked as _FocalParameters._arrays
    checks a binary one's."""
    caller._refuse_other_library(margins)
    margins = _array(names.margins, margins)
    labels = _array(names.labels, labels)
    if margins.ndim != 2 or margins.shape[0] != labels.size or margins.shape[1] < 2:
        raise ValueError(
            f"{names.margins}: the multi-class focal {caller._kind} expects margins of shape "
            f"(n, K), one column per class (num_class=K >= 2), for the {labels.size} "
            f"labels; got shape {margins.shape}"
        )
    _check_margins(margins, names, caller._library)
    classes = margins.shape[1]
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"{names.labels}: expected class indices 0..{classes - 1}, got "
                        f"dtype {labels.dtype}")
    labels = labels.reshape(-1)
    bad = _first_outside(labels, 0, classes - 1)
    if bad is None and labels.dtype.kind == "f":
        bad = _first_fraction(labels)
    if bad is not None:
        raise ValueError(
            f"{names.labels}: expected class indices 0..{classes - 1} (num_class={classes}), "
            f"got {_show(labels[bad])} at index {bad}"
        )
    alpha: Any = caller.alpha  # (a multi-class callable's: one value per class)
    if alpha is not None and len(alpha) != classes:
        raise ValueError(f"alpha: {len(alpha)} values for {classes} classes; expected "
                         "one value per class")
    weights = _checked_weights(weights, labels.size, names)
    if weights is not None:
        weights = weights.reshape(-1)  # one per row, as the labels (an (n, 1) column too)
    return _args.converted(names.labels, labels, np.dtype(np.intp)), margins, weights


class _MulticlassObjective(_FocalObjective):
    """The floored derivatives of the softmax focal loss, K margins per sample."""

    __slots__ = ("_hessian_scale",)

    def __init__(self, alpha: Any = None, gamma: Any = 2.0, *,
                 hessian_floor: Any = _DEFAULT_FLOOR, hessian_scale: Any = 1.0):
        alpha = _class_alpha(alpha)
        super().__init__(None, gamma, hessian_floor=hessian_floor)
        self._alpha = alpha
        self._hessian_scale = _hessian_scale_value(hessian_scale)

    @property
    def alpha(self) -> Optional[Tuple[float, ...]]:  # type: ignore[override]
        """The weight of each class, or None (no weighting)."""
        return self._alpha  # type: ignore[return-value]

    @property
    def hessian_scale(self) -> Union[str, float]:
        """The factor on the hessian: a number, ``"xgboost"`` or ``"lightgbm"``."""
        return self._hessian_scale

    def _keywords(self) -> Dict[str, Any]:
        return {**super()._keywords(), "hessian_scale": self._hessian_scale}

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (_rebuild_multiclass, (type(self), self._alpha, self._gamma, self._hessian_floor,
                                      self._hessian_scale))

    def _scale(self, num_classes: int) -> float:
        if self._hessian_scale == "xgboost":
            return 2.0
        if self._hessian_scale == "lightgbm":
            return num_classes / (num_classes - 1.0)
        return float(self._hessian_scale)

    def _derivatives(self, labels: Any, margins: Any, weights: Any,
                     names: _Names) -> Tuple[np.ndarray, np.ndarray]:
        """Floored (grad, hess) of the weighted softmax focal loss, shape (n, K)."""
        labels, margins, weights = _class_arrays(self, labels, margins, weights, names)
        classes = margins.shape[1]
        grad, hess = softmax_grad_hess(margins, labels, self.alpha, self._gamma, weights=weights)
        # as for the binary objective: nothing past float32's range is handed over
        bad = _first_outside(hess, -sys.float_info.max, sys.float_info.max)
        if bad is None:
            scale = self._scale(classes)
            # a product past float32's range (or float64's) is inf, refused below
            with np.errstate(over="ignore"):
                if scale != 1.0:
                    # float32 hessians below the normal range keep few digits,
                    # which a large scale would carry into the normal range
                    # (1e30: 1.4e-15 for 9.2e-16): their rows are taken again
                    # in float64 and rounded once, after the scale.  (Without
                    # weights, a floor above scale times float32's smallest
                    # normal number takes them all: the look, 15% of a call's
                    # time, is spared.)
                    floored = weights is None and scale * _FLOAT32_TINY <= self._hessian_floor
                    faint = np.zeros(0, np.intp) if floored else _faint_rows(hess)
                    hess *= scale
                    if faint.size:
                        hess[faint] = scale * softmax_grad_hess(
                            margins[faint].astype(np.float64), labels[faint], self.alpha,
                            self._gamma, weights=None if weights is None else weights[faint])[1]
                floor = (self._hessian_floor if weights is None
                         else self._hessian_floor * weights.reshape(-1, 1))
                np.maximum(hess, floor, out=hess, casting="unsafe")
            bad = _first_outside(grad, -_FLOAT32_MAX, _FLOAT32_MAX)
        if bad is None:
            bad = _first_outside(hess, -_FLOAT32_MAX, _FLOAT32_MAX)
        if bad is not None:
            self._refuse_row(labels, margins, weights, names, bad // classes)
        return grad, hess

    def _refuse_row(self, labels: np.ndarray, margins: np.ndarray,
                    weights: Optional[np.ndarray], names: _Names, row: int) -> None:
        """Names the cause of a sample's derivatives past float32's range: the
        focal derivatives themselves (gamma), the hessian's factor
        (hessian_scale) or the weight, found by recomputing them unweighted
        with the same arithmetic."""
        grad, hess = softmax_grad_hess(margins[row:row + 1], labels[row:row + 1].astype(np.intp),
                                       self.alpha, self._gamma)
        if (_first_outside(grad, -_FLOAT32_MAX, _FLOAT32_MAX) is None
                and _first_outside(hess, -_FLOAT32_MAX, _FLOAT32_MAX) is None):
            scale = self._scale(margins.shape[1])
            with np.errstate(over="ignore"):
                scaled = np.maximum(hess * scale, self._hessian_floor)
            if _first_outside(scaled, -_FLOAT32_MAX, _FLOAT32_MAX) is not None:
                raise ValueError(
                    f"hessian_scale: {self._hessian_scale!r} (a factor of {_show(scale)}) times "
                    f"the focal hessian of sample {row}, up to {_show(hess.max())}, overflows "
                    "float32, which XGBoost and LightGBM store hessians in; use a smaller "
                    "hessian_scale"
                )
            if weights is not None:
                raise ValueError(
                    f"{names.weights}: the weight {_show(weights[row])} at index {row} makes "
                    "the weighted gradient or hessian overflow float32, which XGBoost and "
                    "LightGBM store them in; scale the weights down"
                )
        raise ValueError(
            f"gamma: the focal gradient and hessian of sample {row} are not finite float32 "
            f"numbers with gamma={self._gamma!r}; use a smaller gamma"
        )


def _rebuild_multiclass(cls: Type[_Objective], alpha: Optional[Tuple[float, ...]],
                        gamma: float, hessian_floor: float,
                        hessian_scale: Union[str, float]) -> _Objective:
    return cls(alpha, gamma, hessian_floor=hessian_floor,  # type: ignore[call-arg]
               hessian_scale=hessian_scale)


class XGBoostMulticlassObjective(_MulticlassObjective, XGBoostObjective):
    """Multi-class focal-loss objective for XGBoost; create it with
    ``focal.xgboost_objective(multiclass=True)``.

    Call forms as `XGBoostObjective`; the margins have shape (n, K) and the
    labels are class indices 0..K-1.  Both return ``(grad, hess)`` of shape (n, K).
    """

    __slots__ = ()


class LightGBMMulticlassObjective(_MulticlassObjective, LightGBMObjective):
    """Multi-class focal-loss objective for LightGBM; create it with
    ``focal.lightgbm_objective(multiclass=True)``.

    Call forms as `LightGBMObjective`; the scores have shape (n, K) and the
    labels are class indices 0..K-1.  Both return ``(grad, hess)`` of shape (n, K).
    """

    __slots__ = ()


class _FocalMetric(_FocalParameters):
    """The focal loss of margins, as both libraries' evaluation metrics report it."""

    __slots__ = ()
    _kind = "metric"
    # XGBoost's scikit-learn estimator names a callable metric by its
    # __name__; an instance has none of its own, so the class provides it.
    __name__ = "focal"

    @property
    def name(self) -> str:
        """The name the metric is reported under: ``"focal"``."""
        return "focal"

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (type(self), (self._alpha, self._gamma))

    def _checked(self, labels: Any, margins: Any, weights: Any,
                 names: _Names) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        return self._arrays(labels, margins, weights, names)

    def _mean(self, labels: np.ndarray, margins: np.ndarray,
              weights: Optional[np.ndarray]) -> float:
        return float(loss(_metric_margins(margins), labels, self._alpha, self._gamma,
                          weights=weights))

    def _value(self, labels: Any, margins: Any, weights: Any, names: _Names) -> float:
        if self._library == "XGBoost" and _xgboost_workers() > 1:
            return self._mean_over_workers(labels, margins, weights, names)
        labels, margins, weights = self._checked(labels, margins, weights, names)
        _refuse_undefined_mean(margins.size > 0, weights is None or bool(np.any(weights)), names)
        return self._mean(labels, margins, weights)

    def _mean_over_workers(self, labels: Any, margins: Any, weights: Any,
                           names: _Names) -> float:
        """The weighted mean over every worker's rows (xgboost.dask).

        Each worker's metric sees its own rows, and XGBoost averages the
        workers' values with equal weight: a mean of means (19.54 for the
        set's 21.02 with its rows split 1,700 and 300), and a worker without
        rows had no value to give.  So the workers add their sums themselves:
        each returns the whole set's mean, whose average is itself.  Each
        worker's total weight W (its row count without weights) enters as
        T 2^e, T = W 2^-e at most its row count, and the sums as T 2^(e - E),
        E the largest e: weights near 1e308 do not overflow them.
        """
        import xgboost.collective as collective

        total, exponent, rows = 0.0, 0, 0
        # (a worker without rows of this set is handed margins of shape (0,),
        # also for K classes: nothing to check)
        if np.size(margins) or np.size(labels):
            labels, margins, weights = self._checked(labels, margins, weights, names)
            rows = len(margins)
            if weights is None:
                total = float(rows)
            elif np.any(weights):
                exponent = math.frexp(float(np.max(weights)))[1]
                total = math.fsum(np.ldexp(weights, -exponent).tolist())
        mean = self._mean(labels, margins, weights) if total > 0 else 0.0
        largest, any_rows = collective.allreduce(
            np.array([exponent if total > 0 else -np.inf, float(rows > 0)]), collective.Op.MAX)
        if largest == -np.inf:  # (on every worker alike)
            _refuse_undefined_mean(bool(any_rows), False, names)
        scaled = math.ldexp(total, exponent - int(largest)) if total > 0 else 0.0
        sums = collective.allreduce(np.array([scaled * mean, scaled]), collective.Op.SUM)
        return float(sums[0] / sums[1])


def _xgboost_workers() -> int:
    """The number of workers of the XGBoost training this call is part of (1
    on one machine; xgboost.dask's workers each run theirs in a collective)."""
    xgboost = sys.modules.get("xgboost")
    if xgboost is None:
        return 1
    import xgboost.collective as collective

    return int(collective.get_world_size())


def _metric_margins(margins: np.ndarray) -> np.ndarray:
    """A metric's margins in float64, whatever dtype the library handed over.

    XGBoost hands float32 margins, whose float32 loss underflows where the
    float64 loss of the same margins does not (margins of +-40: a mean of
    5.4e-53 was reported as 0.0, a constant no warning named); the copy is
    of the evaluation set's margins, once a round, made in pieces so that
    Ctrl-C interrupts it (one cast of 2**27 margins held it for seconds).
    """
    if margins.dtype == np.float64:
        return margins
    return _args.converted("margins", margins, np.dtype(np.float64))


def _refuse_undefined_mean(rows: bool, weighed: bool, names: _Names) -> None:
    """A metric's weighted mean over no rows, or over weights that are all 0
    (`weighed` false), is 0/0: NaN, which early stopping would take as a
    value and compare."""
    if not rows:
        raise ValueError(f"{names.margins}: the evaluation set is empty, so the focal loss "
                         "(a mean over its rows) is undefined")
    if not weighed:
        raise ValueError(f"{names.weights}: every weight of the evaluation set is 0, so "
                         "the focal loss (a weighted mean) is undefined")


# XGBoost prints a custom metric's value with "%f" and reads the text back
# (early stopping, evals_result): six decimals, so a value below 1e-3 keeps
# fewer than four significant digits
_XGBOOST_DECIMALS = 6
_FEW_DIGITS = 1e-3


def _metric_scale(scale: Any) -> float:
    value = _args.real_scalar("scale", scale, "a finite number > 0")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"scale: expected a finite number > 0, got {value!r}")
    return value


def _scale_text(scale: float) -> str:
    """The scale as the metric's name shows it: 1e+06, 1000, 2.5, 1234567, in
    the fewest significant digits that give it back."""
    for digits in range(6, 17):
        short = format(scale, f".{digits}g")
        if float(short) == scale:
            return short
    return format(scale, ".17g")


class XGBoostMetric(_FocalMetric):
    """Focal-loss evaluation metric for XGBoost; create it with `focal.xgboost_metric`.

    Call forms
    ----------
    ``metric(predt, dmat)``
        `xgboost.train` (``custom_metric=``): returns ``(metric.name, value)``.
    ``metric(y_true, y_pred, sample_weight=None)``
        `xgboost.XGBClassifier` (``eval_metric=``): returns the value, which
        XGBoost reports under the metric's ``__name__``, its `name`.

    The value is the focal loss times `scale`; the name is ``"focal"``, or
    with a scale other than 1 ``"focal_x"`` and the scale (``"focal_x1e+06"``).
    """

    # (__name__, which XGBoost's scikit-learn estimator names a callable metric
    # by, is the instance's own: it says the scale)
    __slots__ = ("_scale", "_warned", "__name__")
    _library = "XGBoost"

    def __init__(self, alpha: Any = 0.25, gamma: Any = 2.0, *, scale: Any = 1.0):
        super().__init__(alpha, gamma)
        self._scale = _metric_scale(scale)
        self._warned = False  # the few-digits warning is given once
        self.__name__ = self.name

    @property
    def scale(self) -> float:
        """The factor on the focal loss in the value reported."""
        return self._scale

    @property
    def name(self) -> str:
        """The name the metric is reported under: ``"focal"``, or ``"focal_x"``
        and the scale (``"focal_x1e+06"``)."""
        return "focal" if self._scale == 1.0 else f"focal_x{_scale_text(self._scale)}"

    def _keywords(self) -> Dict[str, Any]:
        return {**super()._keywords(), "scale": self._scale}

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (_rebuild_metric, (type(self), self._alpha, self._gamma, self._scale))

    def _value(self, labels: Any, margins: Any, weights: Any, names: _Names) -> float:
        loss = super()._value(labels, margins, weights, names)
        value = loss * self._scale
        if math.isinf(value) and math.isfinite(loss):
            raise ValueError(
                f"scale: {_scale_text(self._scale)} times the focal loss {loss:.6g} is beyond the "
                "double range; pass a smaller scale")
        if value == 0.0 and abs(loss) >= sys.float_info.min:
            # a normal loss taken to 0: a constant for every round, early
            # stopping would see no change (a subnormal loss, 5e-324 at margins
            # near 745, has no digits left to keep: it may round to 0)
            raise ValueError(
                f"scale: {_scale_text(self._scale)} times the focal loss {loss:.6g} is below the "
                "smallest double (0); pass a larger scale")
        if not self._warned and 0 < abs(value) < _FEW_DIGITS:
            self._warned = True
            warnings.warn(self._few_digits(value), UserWarning, stacklevel=3)
        return value

    def _few_digits(self, value: float) -> str:
        """The warning for a reported value that XGBoost's six decimals cut to
        fewer than four significant digits, with a scale that keeps seven."""
        shown = f"{value:.{_XGBOOST_DECIMALS}f}"
        digits = len(shown.replace(".", "").lstrip("0"))
        # the scale times 10^k, k the decades the value lies below 1 (in two
        # factors where 10^k is beyond the doubles: a value below 1e-308);
        # the suggestion stops at 1e308
        decades = math.ceil(-math.log10(abs(value)))
        factor = 10.0 ** min(decades, 308)
        better = self._scale * 10.0 ** (decades - min(decades, 308)) * factor
        better = float(f"{min(better, 1e308):.15g}")
        return (
            f"scale: the {self.name!r} metric is {value:.4g}, which XGBoost logs with six "
            f"decimals as {shown} ({digits} significant digit{'s' if digits != 1 else ''}); "
            "early stopping and evals_result read that rounded text, so rounds that still "
            "lower the loss look equal and training stops too early. Pass "
            f"scale={_scale_text(better)} (focal.xgboost_metric(..., scale={_scale_text(better)}),"
            f" reported as 'focal_x{_scale_text(better)}')"
        )

    def __call__(self, predt_or_y_true: Any, dmat_or_y_pred: Any,
                 sample_weight: Any = None) -> Union[Tuple[str, float], float]:
        xgboost = sys.modules.get("xgboost")
        if xgboost is not None and isinstance(dmat_or_y_pred, xgboost.DMatrix):
            if sample_weight is not None:
                raise TypeError("sample_weight: the native form metric(predt, dmat) reads the "
                                "weights from dmat")
            dmat = dmat_or_y_pred
            return self.name, self._value(dmat.get_label(), predt_or_y_true, dmat.get_weight(),
                                          _XGBOOST_NATIVE_METRIC)
        return self._value(predt_or_y_true, dmat_or_y_pred, sample_weight,
                           _XGBOOST_SKLEARN_METRIC)


def _rebuild_metric(cls: Type[XGBoostMetric], alpha: Optional[float], gamma: float,
                    scale: float) -> XGBoostMetric:
    return cls(alpha, gamma, scale=scale)


class LightGBMMetric(_FocalMetric):
    """Focal-loss evaluation metric for LightGBM; create it with `focal.lightgbm_metric`.

    Call forms
    ----------
    ``metric(preds, eval_data)``
        `lightgbm.train` (``feval=``).
    ``metric(y_true, y_pred, weight=None)``
        `lightgbm.LGBMClassifier.fit` (``eval_metric=``); the three
        parameters make LightGBM pass the sample weights.

    Both return ``("focal", value, False)``: lower is better.
    """

    __slots__ = ()
    _library = "LightGBM"

    def __call__(self, preds_or_y_true: Any, eval_data_or_y_pred: Any,
                 weight: Any = None) -> Tuple[str, float, bool]:
        lightgbm = sys.modules.get("lightgbm")
        if lightgbm is not None and isinstance(eval_data_or_y_pred, lightgbm.Dataset):
            if weight is not None:
                raise TypeError("weight: the native form metric(preds, eval_data) reads the "
                                "weights from eval_data")
            data = eval_data_or_y_pred
            value = self._value(data.get_label(), preds_or_y_true, data.get_weight(),
                                _LIGHTGBM_NATIVE_METRIC)
        else:
            value = self._value(preds_or_y_true, eval_data_or_y_pred, weight,
                                _LIGHTGBM_SKLEARN_METRIC)
        return self.name, value, False


class _MulticlassMetric(_FocalMetric):
    """The softmax focal loss of (n, K) margins: the multi-class objective's."""

    __slots__ = ()

    def __init__(self, alpha: Any = None, gamma: Any = 2.0, **keywords: Any):
        alpha = _class_alpha(alpha)
        super().__init__(None, gamma, **keywords)
        self._alpha = alpha

    @property
    def alpha(self) -> Optional[Tuple[float, ...]]:  # type: ignore[override]
        """The weight of each class, or None (no weighting)."""
        return self._alpha  # type: ignore[return-value]

    def _checked(self, labels: Any, margins: Any, weights: Any,
                 names: _Names) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        labels, margins, weights = _class_arrays(self, labels, margins, weights, names)
        if _probability_rows(margins):
            _args.warn_at_caller(
                f"{names.margins}: every row lies in [0, 1] and sums to 1, as the probabilities "
                "a built-in multi-class objective hands its metrics (XGBoost's multi:softprob, "
                "LightGBM's multiclass); this metric takes the softmax of margins, the raw "
                "scores that focal's multi-class objective leaves, and would report the focal "
                "loss of a softmax of probabilities")
        return labels, margins, weights

    def _mean(self, labels: np.ndarray, margins: np.ndarray,
              weights: Optional[np.ndarray]) -> float:
        return float(softmax_loss(_metric_margins(margins), labels, self.alpha, self._gamma,
                                  weights=weights))


class XGBoostMulticlassMetric(XGBoostMetric, _MulticlassMetric):
    """Multi-class focal-loss evaluation metric for XGBoost; create it with
    ``focal.xgboost_metric(multiclass=True)``.

    Call forms as `XGBoostMetric`; the margins have shape (n, K) and the
    labels are class indices 0..K-1.
    """

    __slots__ = ()


class LightGBMMulticlassMetric(LightGBMMetric, _MulticlassMetric):
    """Multi-class focal-loss evaluation metric for LightGBM; create it with
    ``focal.lightgbm_metric(multiclass=True)``.

    Call forms as `LightGBMMetric`; the scores have shape (n, K) and the
    labels are class indices 0..K-1.
    """

    __slots__ = ()


_document = fill_docstring(parameters=_COMMON_PARAMETERS, notes=_NOTES)


class _AlphaDefault:
    """alpha's default: 0.25 for a binary objective, None for a multi-class one."""

    def __repr__(self) -> str:
        return "0.25 (binary) or None (multiclass)"


_ALPHA_DEFAULT: Any = _AlphaDefault()

# `hessian_scale`: a number, or the library whose built-in multi-class
# hessian the scale follows
_HessianScale = Union[Real, Literal["xgboost", "lightgbm"]]
# (The factories' overloads tell mypy which class `multiclass` gives:
# Literal[True] the multi-class one; a bool it cannot know, such as
# numpy.True_, the base class, which the multi-class one extends.)


def _chosen(multiclass: Any, alpha: Any) -> Any:
    """multiclass checked, and alpha with its default made: 0.25 for a binary
    callable, None for a multi-class one."""
    if not isinstance(multiclass, (bool, np.bool_)):
        raise TypeError(f"multiclass: expected True or False, got {multiclass!r}")
    if alpha is _ALPHA_DEFAULT:
        return None if multiclass else 0.25
    return alpha


def _objective(binary: Type[_FocalObjective], multi: Type[_MulticlassObjective], alpha: Any,
               gamma: Any, hessian_floor: Any, multiclass: Any, hessian_scale: Any) -> Any:
    alpha = _chosen(multiclass, alpha)
    if multiclass:
        return multi(alpha, gamma, hessian_floor=hessian_floor, hessian_scale=hessian_scale)
    if _hessian_scale_value(hessian_scale) != 1.0:
        raise ValueError(f"hessian_scale: applies to multiclass=True only (the binary objective "
                         f"is the built-in's at gamma 0 unscaled), got {hessian_scale!r}")
    return binary(alpha, gamma, hessian_floor=hessian_floor)


@overload
def xgboost_objective(alpha: Any = ..., gamma: Real = ..., *, hessian_floor: Real = ...,
                      multiclass: Literal[False] = ..., hessian_scale: Real = ...
                      ) -> XGBoostObjective: ...
@overload
def xgboost_objective(alpha: Any = ..., gamma: Real = ..., *, hessian_floor: Real = ...,
                      multiclass: Literal[True],
                      hessian_scale: _HessianScale = ...
                      ) -> XGBoostMulticlassObjective: ...
@overload
def xgboost_objective(alpha: Any = ..., gamma: Real = ..., *, hessian_floor: Real = ...,
                      multiclass: Union[bool, np.bool_],
                      hessian_scale: _HessianScale = ...
                      ) -> XGBoostObjective: ...
@_document
def xgboost_objective(alpha: Any = _ALPHA_DEFAULT, gamma: Real = 2.0, *,
                      hessian_floor: Real = _DEFAULT_FLOOR,
                      multiclass: Union[bool, np.bool_] = False,
                      hessian_scale: _HessianScale = 1.0) -> XGBoostObjective:
    """Focal-loss objective for XGBoost, binary or multi-class, native or scikit-learn.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    XGBoostObjective
        (XGBoostMulticlassObjective, a subclass, with ``multiclass=True``.)
        A picklable callable returning ``(grad, hess)``: pass it as
        ``xgboost.train(params, dtrain, num_boost_round, obj=objective)`` (it
        is called as ``objective(predt, dtrain)``, weights read from `dtrain`)
        or as ``xgboost.XGBClassifier(objective=objective)`` (called as
        ``objective(y_true, y_pred, sample_weight=...)``).

    See Also
    --------
    xgboost_metric, lightgbm_objective, grad_hess, prior_bias

    Notes
    -----
    {notes}

    XGBoost details (checked with XGBoost 2.1.0 and 3.2.0):

    - `xgboost.train` with ``obj=`` leaves the objective at its default,
      ``reg:squarederror``, so ``base_score`` is a margin and defaults to 0.5
      (probability 0.62): pass ``base_score=focal.prior_bias(y.mean())``.
      ``Booster.predict`` returns margins.
    - `xgboost.XGBClassifier` with a callable objective configures the
      booster as ``binary:logistic``, so there ``base_score`` is a
      probability (default 0.5, margin 0): pass ``base_score=y.mean()``.
      ``predict_proba`` and ``predict`` then apply the sigmoid to the
      margins, which is right for this objective;
      ``predict(X, output_margin=True)`` gives the margins.
    - With the scikit-learn estimator, sample weights reach the objective
      from XGBoost 2.1 on; older versions drop them silently.

    Examples
    --------
    >>> import numpy as np, xgboost as xgb, focal
    >>> from scipy.special import expit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 5)); y = (X[:, 0] > 1.5).astype(float)
    >>> params = {{"max_depth": 3, "nthread": 1, "base_score": focal.prior_bias(y.mean())}}
    >>> booster = xgb.train(params, xgb.DMatrix(X, y), 20, obj=focal.xgboost_objective())
    >>> p = expit(booster.predict(xgb.DMatrix(X)))   # margins -> probabilities
    >>> clf = xgb.XGBClassifier(n_estimators=20, max_depth=3, base_score=y.mean(),
    ...                         objective=focal.xgboost_objective(alpha=0.25, gamma=2))
    >>> p = clf.fit(X, y).predict_proba(X)[:, 1]
    >>> y4 = np.digitize(X[:, 1], [-1.0, 0.0, 1.0]).astype(float)   # 4 classes
    >>> booster = xgb.train({{"num_class": 4, "max_depth": 3, "nthread": 1}}, xgb.DMatrix(X, y4), 10,
    ...                     obj=focal.xgboost_objective(gamma=2.0, multiclass=True))
    >>> booster.predict(xgb.DMatrix(X), output_margin=True).shape   # margins: apply a softmax
    (1000, 4)
    """
    return _objective(XGBoostObjective, XGBoostMulticlassObjective, alpha, gamma, hessian_floor,
                      multiclass, hessian_scale)


@overload
def lightgbm_objective(alpha: Any = ..., gamma: Real = ..., *, hessian_floor: Real = ...,
                       multiclass: Literal[False] = ..., hessian_scale: Real = ...
                       ) -> LightGBMObjective: ...
@overload
def lightgbm_objective(alpha: Any = ..., gamma: Real = ..., *, hessian_floor: Real = ...,
                       multiclass: Literal[True],
                       hessian_scale: _HessianScale = ...
                       ) -> LightGBMMulticlassObjective: ...
@overload
def lightgbm_objective(alpha: Any = ..., gamma: Real = ..., *, hessian_floor: Real = ...,
                       multiclass: Union[bool, np.bool_],
                       hessian_scale: _HessianScale = ...
                       ) -> LightGBMObjective: ...
@_document
def lightgbm_objective(alpha: Any = _ALPHA_DEFAULT, gamma: Real = 2.0, *,
                       hessian_floor: Real = _DEFAULT_FLOOR,
                       multiclass: Union[bool, np.bool_] = False,
                       hessian_scale: _HessianScale = 1.0) -> LightGBMObjective:
    """Focal-loss objective for LightGBM, binary or multi-class, native or scikit-learn.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    LightGBMObjective
        (LightGBMMulticlassObjective, a subclass, with ``multiclass=True``.)
        A picklable callable returning ``(grad, hess)``: pass it as
        ``lightgbm.train({{"objective": objective, ...}}, train_set)`` (called
        as ``objective(preds, train_data)``, weights read from `train_data`)
        or as ``lightgbm.LGBMClassifier(objective=objective)`` (called as
        ``objective(y_true, y_pred, weight)``).

    See Also
    --------
    lightgbm_metric, xgboost_objective, grad_hess, prior_bias

    Notes
    -----
    {notes}

    LightGBM details (LightGBM >= 4.0, checked with 4.0.0 and 4.7.0; custom
    objectives receive raw scores and must apply the sample weights
    themselves, which this one does):

    - A custom objective gets no ``boost_from_average``: the model starts at
      margin 0 (probability 0.5).  Pass ``init_score=np.full(n,
      focal.prior_bias(y.mean()))`` to the `lightgbm.Dataset` (or to
      ``LGBMClassifier.fit``).  LightGBM does not store an ``init_score`` in
      the model: add the same constant to every prediction.
    - ``Booster.predict`` returns the margins (without the init score).
      ``LGBMClassifier.predict`` returns them too, and ``predict_proba``
      returns them with a warning: call ``predict(X, raw_score=True)``.
    - LightGBM replaces a NaN ``init_score``, label or weight by 0 when it
      builds the Dataset, before any objective sees it (an infinite
      ``init_score`` becomes +-1e300, which this objective refuses): a NaN
      starting margin silently starts that sample at 0.  Check
      ``np.isfinite(init_score).all()`` before training.

    Examples
    --------
    >>> import numpy as np, lightgbm as lgb, focal
    >>> from scipy.special import expit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 5)); y = (X[:, 0] > 1.5).astype(float)
    >>> b0 = focal.prior_bias(y.mean())
    >>> params = {{"objective": focal.lightgbm_objective(), "num_threads": 1, "verbose": -1}}
    >>> train = lgb.Dataset(X, y, init_score=np.full(len(y), b0))
    >>> booster = lgb.train(params, train, num_boost_round=20)
    >>> p = expit(b0 + booster.predict(X))   # margins -> probabilities
    >>> clf = lgb.LGBMClassifier(n_estimators=20, verbose=-1,
    ...                          objective=focal.lightgbm_objective(alpha=0.25, gamma=2))
    >>> p = expit(b0 + clf.fit(X, y, init_score=np.full(len(y), b0)).predict(X, raw_score=True))
    >>> y4 = np.digitize(X[:, 1], [-1.0, 0.0, 1.0])   # 4 classes
    >>> objective = focal.lightgbm_objective(gamma=2.0, multiclass=True, hessian_scale="lightgbm")
    >>> booster = lgb.train({{"objective": objective, "num_class": 4, "num_threads": 1,
    ...                      "verbose": -1}}, lgb.Dataset(X, y4), num_boost_round=10)
    >>> booster.predict(X).shape   # margins: apply a softmax
    (1000, 4)
    """
    return _objective(LightGBMObjective, LightGBMMulticlassObjective, alpha, gamma,
                      hessian_floor, multiclass, hessian_scale)



_METRIC_NOTES = """\
The value is the focal loss of the margins averaged over the samples,
weighted when the data carry weights,

    sum_i w_i FL(margin_i, y_i) / sum_i w_i
        = focal.loss(margins, labels, alpha, gamma, weights=w),

computed in float64 whatever the margins' dtype (XGBoost hands float32
margins, whose float32 loss is 0 from margins of about +-40, where the
float64 loss of the same margins is not).  Lower is better.  It
scores margins, so it goes with the focal objective: a library trained with
a custom objective hands a custom metric the raw margins, starting margins
included, but with a built-in objective such as ``binary:logistic`` it
hands over probabilities, which this metric would read as margins.

Why it is needed: the library does not know a custom objective, so its
default metric scores the margins as something else, and early stopping on
it stops at the wrong round.  `xgboost.train` with ``obj=`` monitors the
RMSE of the margins against the labels; `lightgbm.LGBMClassifier` scores
the margins with ``binary_logloss`` as if they were probabilities.  Turn
the default off (XGBoost: ``disable_default_eval_metric``; LightGBM:
``metric="None"``), so that early stopping watches this metric alone.

Like the objective, the metric refuses what it cannot score, naming it:
margins that are not finite, labels outside [0, 1], negative or non-finite
weights."""

_document_metric = fill_docstring(parameters=_METRIC_PARAMETERS, notes=_METRIC_NOTES)


_Metric = TypeVar("_Metric", bound=_FocalMetric)


def _metric(binary: Type[_Metric], multi: Type[_Metric], alpha: Any, gamma: Any,
            multiclass: Any, **keywords: Any) -> _Metric:
    alpha = _chosen(multiclass, alpha)
    return (multi if multiclass else binary)(alpha, gamma, **keywords)


@overload
def xgboost_metric(alpha: Any = ..., gamma: Real = ..., *, scale: Real = ...,
                   multiclass: Literal[False] = ...) -> XGBoostMetric: ...
@overload
def xgboost_metric(alpha: Any = ..., gamma: Real = ..., *, scale: Real = ...,
                   multiclass: Literal[True]) -> XGBoostMulticlassMetric: ...
@overload
def xgboost_metric(alpha: Any = ..., gamma: Real = ..., *, scale: Real = ...,
                   multiclass: Union[bool, np.bool_]) -> XGBoostMetric: ...
@_document_metric
def xgboost_metric(alpha: Any = _ALPHA_DEFAULT, gamma: Real = 2.0, *, scale: Real = 1.0,
                   multiclass: Union[bool, np.bool_] = False) -> XGBoostMetric:
    """Focal-loss evaluation metric for XGBoost, native or scikit-learn.

    Parameters
    ----------
    {parameters}
    scale : float, default 1.0
        A finite factor > 0 on the value reported, which keeps its digits
        through XGBoost's six decimals (see Notes): the metric reports
        ``scale`` times the focal loss, under the name ``"focal"`` for a
        scale of 1 and ``"focal_x"`` followed by the scale otherwise
        (``scale=1e6``: ``"focal_x1e+06"``), so that a log or an
        ``evals_result`` says which it holds.  A UserWarning naming
        `scale` is given once, the first time a value reported would keep
        fewer than four significant digits (below 0.001); it suggests a
        scale that keeps seven.  A value that the scale takes beyond the
        double range, or from a normal (not subnormal) loss to 0, raises a
        ValueError naming `scale`.

    Returns
    -------
    XGBoostMetric
        A picklable callable: pass it as ``xgboost.train(...,
        obj=objective, custom_metric=metric, maximize=False)`` (called as
        ``metric(predt, dmat)``, it returns ``(metric.name, value)``, such
        as ``("focal", value)``) or as
        ``xgboost.XGBClassifier(objective=objective, eval_metric=metric)``
        (called as ``metric(y_true, y_pred, sample_weight=...)``, it returns
        the value, reported under ``metric.name``).

    See Also
    --------
    xgboost_objective, lightgbm_metric, loss

    Notes
    -----
    {notes}

    XGBoost details (checked with XGBoost 3.2.0): early stopping watches the
    last metric of the last evaluation set, and XGBoost lists a custom
    metric after its built-in ones, so this one decides even when the
    default is not turned off.  XGBoost logs a custom metric's value with
    six decimals (``"%f"``), and early stopping and ``evals_result`` read
    that rounded text back.  The focal loss of a model that separates the
    classes well is often 1e-4 to 1e-5: with six decimals it keeps one or
    two digits and stays the same for tens of rounds while the loss still
    falls, and early stopping stops there.  Pass a `scale` and the value
    reported keeps its digits (``scale=1e6`` keeps four or more of any loss
    down to 1e-9); call the metric for the exact loss.  (LightGBM compares the values
    themselves: `lightgbm_metric` needs no scale.)  Neither name is one
    XGBoost maximizes, so ``maximize=False`` is also its default.

    Examples
    --------
    >>> import numpy as np, xgboost as xgb, focal
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 5)); y = (X[:, 0] > 1.5).astype(float)
    >>> dtrain, dvalid = xgb.DMatrix(X[:1500], y[:1500]), xgb.DMatrix(X[1500:], y[1500:])
    >>> params = {{"max_depth": 3, "nthread": 1, "base_score": focal.prior_bias(y.mean()),
    ...           "disable_default_eval_metric": True}}
    >>> history = {{}}
    >>> metric = focal.xgboost_metric(scale=1e6)   # XGBoost's six decimals keep the digits
    >>> booster = xgb.train(params, dtrain, 200, evals=[(dvalid, "valid")],
    ...                     obj=focal.xgboost_objective(), custom_metric=metric,
    ...                     maximize=False, early_stopping_rounds=10, evals_result=history,
    ...                     verbose_eval=False)
    >>> list(history["valid"])   # the focal loss times 1e6
    ['focal_x1e+06']
    >>> margins = booster.predict(dvalid, iteration_range=(0, booster.best_iteration + 1))
    >>> name, value = metric(margins, dvalid)
    >>> bool(value == 1e6 * float(focal.loss(margins.astype(np.float64), y[1500:])))
    True
    >>> clf = xgb.XGBClassifier(n_estimators=200, max_depth=3, n_jobs=1, base_score=y.mean(),
    ...                         objective=focal.xgboost_objective(), eval_metric=metric,
    ...                         early_stopping_rounds=10, disable_default_eval_metric=True)
    >>> clf = clf.fit(X[:1500], y[:1500], eval_set=[(X[1500:], y[1500:])], verbose=False)
    >>> list(clf.evals_result()["validation_0"])
    ['focal_x1e+06']
    """
    return _metric(XGBoostMetric, XGBoostMulticlassMetric, alpha, gamma, multiclass,
                   scale=scale)


@overload
def lightgbm_metric(alpha: Any = ..., gamma: Real = ..., *,
                    multiclass: Literal[False] = ...) -> LightGBMMetric: ...
@overload
def lightgbm_metric(alpha: Any = ..., gamma: Real = ..., *,
                    multiclass: Literal[True]) -> LightGBMMulticlassMetric: ...
@overload
def lightgbm_metric(alpha: Any = ..., gamma: Real = ..., *,
                    multiclass: Union[bool, np.bool_]) -> LightGBMMetric: ...
@_document_metric
def lightgbm_metric(alpha: Any = _ALPHA_DEFAULT, gamma: Real = 2.0, *,
                    multiclass: Union[bool, np.bool_] = False) -> LightGBMMetric:
    """Focal-loss evaluation metric for LightGBM, native or scikit-learn.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    LightGBMMetric
        A picklable callable returning ``("focal", value, False)`` (False:
        lower is better): pass it as ``lightgbm.train(params, train_set,
        valid_sets=[...], feval=metric)`` (called as ``metric(preds,
        eval_data)``) or as ``lightgbm.LGBMClassifier.fit(...,
        eval_metric=metric)`` (called as ``metric(y_true, y_pred, weight)``).

    See Also
    --------
    lightgbm_objective, xgboost_metric, loss

    Notes
    -----
    {notes}

    LightGBM details (checked with LightGBM 4.7.0): LightGBM does not store
    an init score in the model, but it does add each Dataset's own
    ``init_score`` to the margins a metric sees: give the validation set
    the training set's starting margin (``lightgbm.Dataset(...,
    init_score=...)``, ``LGBMClassifier.fit(..., eval_init_score=[...])``),
    or the metric scores margins without it.  Early stopping
    (`lightgbm.early_stopping`) watches every metric unless
    ``first_metric_only=True``: with ``metric="None"`` this one is alone.

    Examples
    --------
    >>> import numpy as np, lightgbm as lgb, focal
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 5)); y = (X[:, 0] > 1.5).astype(float)
    >>> b0 = focal.prior_bias(y.mean())
    >>> train = lgb.Dataset(X[:1500], y[:1500], init_score=np.full(1500, b0))
    >>> valid = lgb.Dataset(X[1500:], y[1500:], init_score=np.full(500, b0), reference=train)
    >>> params = {{"objective": focal.lightgbm_objective(), "metric": "None",
    ...           "num_threads": 1, "verbose": -1}}
    >>> history = {{}}
    >>> booster = lgb.train(params, train, 200, valid_sets=[valid], feval=focal.lightgbm_metric(),
    ...                     callbacks=[lgb.early_stopping(10, verbose=False),
    ...                                lgb.record_evaluation(history)])
    >>> list(history["valid_0"])
    ['focal']
    >>> margins = b0 + booster.predict(X[1500:])   # at the best iteration
    >>> value = history["valid_0"]["focal"][booster.best_iteration - 1]
    >>> bool(np.isclose(value, focal.loss(margins, y[1500:]), rtol=1e-12))
    True
    """
    return _metric(LightGBMMetric, LightGBMMulticlassMetric, alpha, gamma, multiclass)

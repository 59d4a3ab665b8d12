"""Focal-loss objectives for gradient boosting: XGBoost and LightGBM.

`xgboost_objective` and `lightgbm_objective` return callables built on
`focal.grad_hess`.  One callable serves both of a library's interfaces: the
native ``train()`` (called as ``obj(preds, dtrain)``) and the scikit-learn
estimator (called as ``obj(y_true, y_pred[, weights])``); the form is told
apart by the type of the second argument.  Neither library is imported here:
a call can only come from a library that is already loaded.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Optional, Tuple, Type, TypeVar

import numpy as np

from . import _args
from ._docs import fill_docstring
from ._sigmoid import grad_hess

_DEFAULT_FLOOR = 0.01

_COMMON_PARAMETERS = """\
alpha : None or float, default 0.25
    Weight of the positive class: alpha_t = alpha y + (1 - alpha)(1 - y), as
    in `focal.loss`.  None turns the weighting off.  A binary objective has
    one output, so per-class values are refused.
gamma : float, default 2.0
    Focusing parameter >= 0.  ``alpha=None, gamma=0`` is the logistic loss
    (gradient p - y, hessian p (1 - p)), the library's own binary objective.
hessian_floor : float, default 0.01
    Positive lower bound of each sample's unweighted hessian, applied before
    the sample weight multiplies it (as XGBoost floors its own logistic
    hessian at 1e-16), so a zero-weight sample still contributes nothing.
    A finite number > 0; see Notes for the default.
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
uses ``focal.prior_bias(0.01)`` for rare positives)."""


class _FocalObjective:
    """Parameters, checks and the floored derivatives shared by both libraries."""

    __slots__ = ("_alpha", "_gamma", "_hessian_floor")
    _library = ""
    _weight_name = ""

    def __init__(self, alpha: Any = 0.25, gamma: Any = 2.0, *, hessian_floor: Any = _DEFAULT_FLOOR):
        if alpha is not None:
            if isinstance(alpha, (str, bytes, bool, np.bool_)):
                raise TypeError(f"alpha: expected None or a number in [0, 1], got {alpha!r}")
            if np.ndim(alpha) != 0:
                raise TypeError(
                    f"alpha: expected None or a number in [0, 1], got an array of shape "
                    f"{np.shape(alpha)}; a binary objective has a single output, so "
                    "per-class values do not apply"
                )
            alpha, _ = _args.alpha_values(alpha, np.zeros(1, dtype=np.float64))
        self._alpha: Optional[float] = alpha
        self._gamma = _args.gamma_value(gamma)
        floor = _args.real_scalar("hessian_floor", hessian_floor, "a finite number > 0")
        if not (math.isfinite(floor) and floor > 0):
            raise ValueError(f"hessian_floor: expected a finite number > 0, got {floor!r}")
        self._hessian_floor = floor

    @property
    def alpha(self) -> Optional[float]:
        """Weight of the positive class, or None (no weighting)."""
        return self._alpha

    @property
    def gamma(self) -> float:
        """Focusing parameter."""
        return self._gamma

    @property
    def hessian_floor(self) -> float:
        """Lower bound of each sample's unweighted hessian."""
        return self._hessian_floor

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(alpha={self._alpha!r}, gamma={self._gamma!r}, "
                f"hessian_floor={self._hessian_floor!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._parameters() == other._parameters()

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + self._parameters())

    def _parameters(self) -> Tuple[Any, ...]:
        return (self._alpha, self._gamma, self._hessian_floor)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (_rebuild, (type(self), self._alpha, self._gamma, self._hessian_floor))

    def _derivatives(self, labels: Any, margins: Any, weights: Any) -> Tuple[np.ndarray, np.ndarray]:
        """Floored (grad, hess) of the weighted focal loss, in the margins' shape."""
        if not isinstance(margins, np.ndarray) and hasattr(margins, "get_label"):
            other = "lightgbm_objective" if self._library == "XGBoost" else "xgboost_objective"
            raise TypeError(
                f"this focal objective is for {self._library}; got a "
                f"{type(margins).__module__}.{type(margins).__name__} (use focal.{other})"
            )
        margins = np.asarray(margins)
        labels = np.asarray(labels)
        if margins.size != labels.size or (margins.ndim == 2 and margins.shape[1] != 1) or margins.ndim > 2:
            raise ValueError(
                f"the focal objective is binary: expected one margin per label, got margins "
                f"of shape {margins.shape} for {labels.size} labels (a multi-class model "
                "has one column per class; it is not supported)"
            )
        labels = labels.reshape(margins.shape)
        if weights is not None:
            weights = np.asarray(weights)
            if weights.size == 0:  # XGBoost's DMatrix.get_weight() without weights
                weights = None
            elif weights.size != labels.size:
                raise ValueError(
                    f"{self._weight_name}: expected one weight per label ({labels.size}), "
                    f"got {weights.size}"
                )
            else:
                weights = weights.reshape(margins.shape)
        grad, hess = grad_hess(margins, labels, self._alpha, self._gamma, weights=weights)
        floor = self._hessian_floor if weights is None else self._hessian_floor * weights
        np.maximum(hess, floor, out=hess, casting="unsafe")
        return grad, hess


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
    _weight_name = "sample_weight"

    def __call__(self, predt_or_y_true: Any, dtrain_or_y_pred: Any,
                 sample_weight: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        xgboost = sys.modules.get("xgboost")
        if xgboost is not None and isinstance(dtrain_or_y_pred, xgboost.DMatrix):
            if sample_weight is not None:
                raise TypeError("sample_weight: the native form obj(predt, dtrain) reads the "
                                "weights from dtrain")
            dtrain = dtrain_or_y_pred
            return self._derivatives(dtrain.get_label(), predt_or_y_true, dtrain.get_weight())
        return self._derivatives(predt_or_y_true, dtrain_or_y_pred, sample_weight)


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
    _weight_name = "weight"

    def __call__(self, preds_or_y_true: Any, train_data_or_y_pred: Any,
                 weight: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        lightgbm = sys.modules.get("lightgbm")
        if lightgbm is not None and isinstance(train_data_or_y_pred, lightgbm.Dataset):
            if weight is not None:
                raise TypeError("weight: the native form obj(preds, train_data) reads the "
                                "weights from train_data")
            data = train_data_or_y_pred
            return self._derivatives(data.get_label(), preds_or_y_true, data.get_weight())
        return self._derivatives(preds_or_y_true, train_data_or_y_pred, weight)


_document = fill_docstring(parameters=_COMMON_PARAMETERS, notes=_NOTES)


@_document
def xgboost_objective(alpha: Any = 0.25, gamma: Any = 2.0, *,
                      hessian_floor: Any = _DEFAULT_FLOOR) -> XGBoostObjective:
    """Binary focal-loss objective for XGBoost, native or scikit-learn.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    XGBoostObjective
        A picklable callable returning ``(grad, hess)``: pass it as
        ``xgboost.train(params, dtrain, num_boost_round, obj=objective)`` (it
        is called as ``objective(predt, dtrain)``, weights read from `dtrain`)
        or as ``xgboost.XGBClassifier(objective=objective)`` (called as
        ``objective(y_true, y_pred, sample_weight=...)``).

    See Also
    --------
    lightgbm_objective, grad_hess, prior_bias

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
    """
    return XGBoostObjective(alpha, gamma, hessian_floor=hessian_floor)


@_document
def lightgbm_objective(alpha: Any = 0.25, gamma: Any = 2.0, *,
                       hessian_floor: Any = _DEFAULT_FLOOR) -> LightGBMObjective:
    """Binary focal-loss objective for LightGBM, native or scikit-learn.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    LightGBMObjective
        A picklable callable returning ``(grad, hess)``: pass it as
        ``lightgbm.train({{"objective": objective, ...}}, train_set)`` (called
        as ``objective(preds, train_data)``, weights read from `train_data`)
        or as ``lightgbm.LGBMClassifier(objective=objective)`` (called as
        ``objective(y_true, y_pred, weight)``).

    See Also
    --------
    xgboost_objective, grad_hess, prior_bias

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
    """
    return LightGBMObjective(alpha, gamma, hessian_floor=hessian_floor)


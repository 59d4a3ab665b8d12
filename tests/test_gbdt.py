"""Focal objectives and metrics for XGBoost and LightGBM (focal.xgboost_objective,
focal.lightgbm_objective, focal.xgboost_metric, focal.lightgbm_metric).

The libraries come from the ``gbdt`` extra (``pip install ".[gbdt]"``); a test
that needs one that is not installed is skipped, unless the environment
variable FOCAL_REQUIRE_GBDT is set (CI sets it, so a missing library fails
instead).  Every model is trained single-threaded, so runs are deterministic.
"""
import copy
import importlib
import os
import pickle
import re
import warnings

import numpy as np
import pytest

import focal
from focal import _gbdt
from focal._gbdt import lightgbm_metric, lightgbm_objective, xgboost_metric, xgboost_objective

LIBRARIES = ["xgboost", "lightgbm"]
ROUNDS = 30


def _library(name):
    if os.environ.get("FOCAL_REQUIRE_GBDT"):
        return importlib.import_module(name)
    return pytest.importorskip(name)


def _make_objective(name, *args, **kwargs):
    return {"xgboost": xgboost_objective, "lightgbm": lightgbm_objective}[name](*args, **kwargs)


def _make_metric(name, *args, **kwargs):
    return {"xgboost": xgboost_metric, "lightgbm": lightgbm_metric}[name](*args, **kwargs)


def _version(lib):
    return tuple(int(part) for part in lib.__version__.split(".")[:2])


def _lgbm_eval_set(lib, X, y):
    """LGBMClassifier.fit's validation data: eval_X/eval_y from LightGBM 4.7 on
    (eval_set is deprecated there), eval_set before."""
    if _version(lib) >= (4, 7):
        return {"eval_X": X, "eval_y": y}
    return {"eval_set": [(X, y)]}


def _expit(x):
    """sigmoid(x) in double, accurate in both tails."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _imbalanced(n=3000, seed=0, positive_rate=0.05):
    """Features with a nonlinear signal and about `positive_rate` positives, 1 % label noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    score = X[:, 0] + 0.8 * X[:, 1] * X[:, 2] + 0.5 * np.sin(3 * X[:, 3])
    y = (score > np.quantile(score, 1 - positive_rate)).astype(np.float64)
    flip = rng.random(n) < 0.01
    y[flip] = 1 - y[flip]
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = _imbalanced()
    weights = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    return X, y, weights


def _train(name, form, objective, X, y, weights, init, rounds=ROUNDS):
    """Trains `rounds` rounds and returns the margins on X, init included.

    `objective` is a callable or None for the library's own logistic
    objective; `init` is the starting margin, given per row (XGBoost's
    base_margin, LightGBM's init_score) so both objectives start from the
    same bits.
    """
    lib = _library(name)
    start = np.full(len(y), init)
    if name == "xgboost":
        params = dict(max_depth=4, learning_rate=0.3)
        if form == "native":
            if objective is None:
                params["objective"] = "binary:logistic"
            dtrain = lib.DMatrix(X, y, weight=weights, base_margin=start)
            booster = lib.train({**params, "nthread": 1}, dtrain, rounds, obj=objective)
            return booster.predict(dtrain, output_margin=True).astype(np.float64)
        model = lib.XGBClassifier(n_estimators=rounds, n_jobs=1, **params,
                                  objective=objective or "binary:logistic")
        model.fit(X, y, sample_weight=weights, base_margin=start)
        return model.predict(X, output_margin=True, base_margin=start).astype(np.float64)
    params = dict(learning_rate=0.1, num_leaves=15, verbose=-1, deterministic=True)
    if form == "native":
        params = {**params, "num_threads": 1, "objective": objective or "binary"}
        train_set = lib.Dataset(X, y, weight=weights, init_score=start)
        booster = lib.train(params, train_set, num_boost_round=rounds)
        return init + booster.predict(X, raw_score=True)
    model = lib.LGBMClassifier(n_estimators=rounds, n_jobs=1, **params,
                               objective=objective or "binary")
    model.fit(X, y, sample_weight=weights, init_score=start)
    return init + model.predict(X, raw_score=True)


# --- the objective's values ------------------------------------------------------------------

@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_case_equals_builtin_formulas(name, weighted):
    """alpha=None, gamma=0: the gradient and hessian of the libraries' binary objectives.

    XGBoost (binary:logistic): grad = (p - y) w, hess = max(p (1 - p), 1e-16) w,
    computed in float32.  LightGBM (binary): grad = (p - y) w, hess =
    p (1 - p) w, computed in double and stored as float32.
    """
    lib = _library(name)
    rng = np.random.default_rng(2)
    n = 2000
    margins = rng.normal(0.0, 4.0, n)
    margins[:4] = [-30.0, 30.0, -0.0, 1e-9]
    y = (rng.random(n) < 0.3).astype(np.float64)
    w = rng.uniform(0.0, 3.0, n) if weighted else None
    if w is not None:
        w = w.astype(np.float32)  # what a DMatrix or Dataset stores and hands back
    scale = 1.0 if w is None else w.astype(np.float64)

    def logistic(x):  # p - y and p (1 - p), without cancellation for y = 1
        p, q = _expit(x), _expit(-x)
        return np.where(y == 1, -q, p) * scale, p * q * scale

    expected_grad, expected_hess = logistic(margins)

    objective = _make_objective(name, None, 0.0, hessian_floor=1e-16)
    if name == "xgboost":
        predt = margins.astype(np.float32)  # what xgboost.train hands a custom objective
        data = lib.DMatrix(rng.normal(size=(n, 1)), y, weight=w)
        native = objective(predt, data)
        expected_grad, expected_hess = logistic(predt)
        expected_hess = np.maximum(expected_hess, 1e-16 * scale)
        sklearn_form = objective(y, predt, sample_weight=w)
        tolerance = dict(rtol=2e-7, atol=0)
    else:
        data = lib.Dataset(rng.normal(size=(n, 1)), y, weight=w).construct()
        native = objective(margins, data)
        sklearn_form = objective(y, margins, w)
        tolerance = dict(rtol=1e-13, atol=0)
    for grad, hess in (native, sklearn_form):
        assert grad.shape == hess.shape == (n,)
        np.testing.assert_allclose(grad, expected_grad, **tolerance)
        np.testing.assert_allclose(hess, expected_hess, **tolerance)
    np.testing.assert_array_equal(native[0], sklearn_form[0])
    np.testing.assert_array_equal(native[1], sklearn_form[1])


@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("form", ["native", "sklearn"])
@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_case_trains_the_builtin_model(data, name, form, weighted):
    """End to end: gamma=0, alpha=None trains the same trees as the built-in objective."""
    X, y, w = data
    w = w if weighted else None
    init = focal.prior_bias(y.mean())
    builtin = _train(name, form, None, X, y, w, init)
    custom = _train(name, form, _make_objective(name, None, 0, hessian_floor=1e-16), X, y, w, init)
    assert np.std(builtin) > 1.0  # a real model, not a constant
    # XGBoost's own objective rounds p in float32 (focal rounds once from double)
    np.testing.assert_allclose(custom, builtin, rtol=1e-5, atol=1e-5 * np.abs(builtin).max())
    # and the comparison can fail: the focal loss trains another model
    focal_model = _train(name, form, _make_objective(name, None, 2.0, hessian_floor=1e-16),
                         X, y, w, init)
    assert np.abs(focal_model - builtin).max() > 0.1


@pytest.mark.parametrize("name", LIBRARIES)
def test_objective_is_floored_grad_hess(name):
    """Any alpha and gamma: focal.grad_hess with the hessian floored before weighting."""
    rng = np.random.default_rng(3)
    n = 5000
    margins = rng.normal(0.0, 5.0, n)
    y = rng.random(n)  # soft labels
    y[: n // 2] = np.round(y[: n // 2])
    w = rng.uniform(0.0, 2.0, n)
    w[:10] = 0.0
    floor = 0.02
    objective = _make_objective(name, 0.3, 1.5, hessian_floor=floor)
    grad, hess = objective(y, margins, w)
    raw_grad, raw_hess = focal.grad_hess(margins, y, 0.3, 1.5)
    np.testing.assert_allclose(grad, raw_grad * w, rtol=1e-15, atol=0)
    np.testing.assert_allclose(hess, np.maximum(raw_hess, floor) * w, rtol=1e-15, atol=0)
    assert (raw_hess < 0).any() and (raw_hess > floor).any()  # both branches are exercised
    assert np.all(hess[w > 0] >= floor * w[w > 0] * (1 - 1e-15))
    assert not np.any(grad[:10]) and not np.any(hess[:10])  # zero weight: no contribution
    # without weights the floor is the floor itself
    _, unweighted = objective(y, margins)
    assert unweighted.min() == floor
    np.testing.assert_array_equal(unweighted[raw_hess > floor], raw_hess[raw_hess > floor])


@pytest.mark.parametrize("name", LIBRARIES)
def test_inputs_unchanged_and_shapes(name):
    margins = np.linspace(-6, 6, 13).reshape(13, 1)  # a one-column prediction
    y = (np.arange(13) % 2).astype(np.float32)
    before = margins.copy(), y.copy()
    grad, hess = _make_objective(name)(y, margins)
    assert grad.shape == hess.shape == (13, 1)
    np.testing.assert_array_equal(margins, before[0])
    np.testing.assert_array_equal(y, before[1])
    grad32, _ = _make_objective(name)(y, margins.astype(np.float32))
    assert grad32.dtype == np.float32  # float32 margins (XGBoost's) give float32


# --- training with the focal objective --------------------------------------------------------

@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("form", ["native", "sklearn"])
def test_focal_training_runs_and_predicts(name, form):
    """alpha 0.25, gamma 2 on 5 % positives: the focal loss drops, held-out ranking is good."""
    X, y = _imbalanced(4000, seed=4)
    X_test, y_test = _imbalanced(2000, seed=5)
    init = focal.prior_bias(y.mean())
    objective = _make_objective(name, 0.25, 2.0)
    margins = _train(name, form, objective, X, y, None, init, rounds=60)
    start_loss = float(focal.loss(np.full(len(y), init), y))
    assert float(focal.loss(margins, y)) < 0.3 * start_loss
    assert np.isfinite(margins).all() and np.abs(margins).max() < 10  # stable, no divergence
    lib = _library(name)
    # predict on new data the way the README shows
    if name == "xgboost":
        if form == "native":
            booster = lib.train({"nthread": 1, "max_depth": 4, "base_score": init},
                                lib.DMatrix(X, y), 60, obj=objective)
            test_margins = booster.predict(lib.DMatrix(X_test))
        else:
            model = lib.XGBClassifier(n_estimators=60, max_depth=4, n_jobs=1,
                                      base_score=y.mean(), objective=objective).fit(X, y)
            test_margins = model.predict(X_test, output_margin=True)
            proba = model.predict_proba(X_test)[:, 1]
            np.testing.assert_allclose(proba, _expit(test_margins), rtol=1e-5, atol=1e-7)
            np.testing.assert_array_equal(model.predict(X_test), (proba > 0.5).astype(int))
    else:
        init_score = np.full(len(y), init)
        if form == "native":
            booster = lib.train({"objective": objective, "num_threads": 1, "verbose": -1},
                                lib.Dataset(X, y, init_score=init_score), num_boost_round=60)
            test_margins = init + booster.predict(X_test)
        else:
            model = lib.LGBMClassifier(n_estimators=60, n_jobs=1, verbose=-1, objective=objective)
            model.fit(X, y, init_score=init_score)
            test_margins = init + model.predict(X_test, raw_score=True)
    assert test_margins.shape == (2000,) and np.isfinite(test_margins).all()
    assert _auc(y_test, test_margins) > 0.9


def _auc(y, score):
    """Area under the ROC curve (Mann-Whitney), no ties expected."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@pytest.mark.parametrize("name", LIBRARIES)
def test_weights_reach_the_objective_in_both_forms(data, name):
    """Native and scikit-learn training with sample weights build the same model,
    and the weights matter (a weighted model differs from the unweighted one)."""
    X, y, w = data
    init = focal.prior_bias(y.mean())
    objective = _make_objective(name)
    native = _train(name, "native", objective, X, y, w, init)
    estimator = _train(name, "sklearn", objective, X, y, w, init)
    np.testing.assert_allclose(estimator, native, rtol=1e-6, atol=1e-6)
    unweighted = _train(name, "native", objective, X, y, None, init)
    assert np.abs(unweighted - native).max() > 0.05


def test_xgboost_base_score_conventions(data):
    """Documented: with obj= base_score is a margin; XGBClassifier's is a probability."""
    xgb = _library("xgboost")
    X, y, _ = data
    b0 = focal.prior_bias(y.mean())
    objective = xgboost_objective()
    frozen = {"learning_rate": 0.0, "max_depth": 2}
    booster = xgb.train({**frozen, "nthread": 1, "base_score": b0}, xgb.DMatrix(X, y), 1,
                        obj=objective)
    np.testing.assert_allclose(booster.predict(xgb.DMatrix(X[:5])), b0, rtol=1e-6)
    model = xgb.XGBClassifier(n_estimators=1, n_jobs=1, base_score=y.mean(),
                              objective=objective, **frozen).fit(X, y)
    np.testing.assert_allclose(model.predict(X[:5], output_margin=True), b0, rtol=1e-5)


# --- the objects -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", LIBRARIES)
def test_parameters_repr_pickle(name):
    objective = _make_objective(name, alpha=0.5, gamma=1, hessian_floor=1e-3)
    assert (objective.alpha, objective.gamma, objective.hessian_floor) == (0.5, 1.0, 1e-3)
    assert isinstance(objective.gamma, float)
    assert repr(objective).endswith("Objective(alpha=0.5, gamma=1.0, hessian_floor=0.001)")
    for clone in (pickle.loads(pickle.dumps(objective)), copy.deepcopy(objective)):
        assert clone == objective and clone is not objective and hash(clone) == hash(objective)
    assert objective != _make_objective(name, alpha=0.5, gamma=1)
    defaults = _make_objective(name)
    assert (defaults.alpha, defaults.gamma, defaults.hessian_floor) == (0.25, 2.0, 0.01)
    assert _make_objective(name, None).alpha is None
    with pytest.raises(AttributeError):
        objective.gamma = 3.0


@pytest.mark.parametrize("name", LIBRARIES)
def test_fitted_estimator_pickles_and_clones(data, name):
    lib = _library(name)
    clone = _library("sklearn.base").clone

    X, y, _ = data
    objective = _make_objective(name)
    if name == "xgboost":
        model = lib.XGBClassifier(n_estimators=5, n_jobs=1, objective=objective)
        predict = lambda m: m.predict(X, output_margin=True)  # noqa: E731
    else:
        model = lib.LGBMClassifier(n_estimators=5, n_jobs=1, verbose=-1, objective=objective)
        predict = lambda m: m.predict(X, raw_score=True)  # noqa: E731
    fresh = clone(model)
    assert fresh.get_params()["objective"] == objective
    model.fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(predict(restored), predict(model))
    np.testing.assert_array_equal(predict(fresh.fit(X, y)), predict(model))


@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("value, error", [
    (0, ValueError), (-1e-3, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
    (-float("inf"), ValueError), (True, TypeError), ("0.01", TypeError), ([0.01], TypeError),
    (None, TypeError),
    # outside float32's normal range: 0 (or subnormal) or infinite in the arrays handed over
    (1e-50, ValueError), (1e-39, ValueError), (np.float64(1e-45), ValueError), (1e39, ValueError),
])
def test_bad_hessian_floor(name, value, error):
    with pytest.raises(error, match="^hessian_floor: "):
        _make_objective(name, hessian_floor=value)


@pytest.mark.parametrize("name", LIBRARIES)
def test_float32_range_message(name):
    with pytest.raises(ValueError, match=r"^hessian_floor: .*float32.*got 1e-50.*would be 0$"):
        _make_objective(name, hessian_floor=1e-50)
    with pytest.raises(ValueError, match=r"^hessian_floor: .*got 1e\+39.*would be infinite$"):
        _make_objective(name, hessian_floor=1e39)


@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("parameter", ["hessian_floor", "hessian_scale"])
def test_documented_float32_bounds_are_the_bounds(name, parameter):
    """The bounds the docstring prints are accepted as written, the next
    doubles beyond them are refused, and the message prints the same numbers
    (float32's own 3.4028235e+38 is a double above its largest, refused)."""
    doc = {"xgboost": xgboost_objective, "lightgbm": lightgbm_objective}[name].__doc__
    # the parameter's entry: its line and the more indented ones under it
    entry = re.search(rf"^( *){parameter} :.*?\n(?=\1\S)", doc, re.M | re.S).group(0)
    largest = "3.4028234663852886e+38"
    assert largest in entry
    bounds = [float(largest)]
    if parameter == "hessian_floor":
        assert "1.1754943508222875e-38" in entry
        bounds.append(float("1.1754943508222875e-38"))
    keywords = {"multiclass": True} if parameter == "hessian_scale" else {}
    for bound in bounds:
        _make_objective(name, **{parameter: bound}, **keywords)  # accepted
        beyond = np.nextafter(bound, 0.0 if bound < 1 else np.inf)
        with pytest.raises(ValueError, match=f"^{parameter}: .*{largest.replace('+', '[+]')}"):
            _make_objective(name, **{parameter: float(beyond)}, **keywords)
    with pytest.raises(ValueError, match=f"^{parameter}: "):
        _make_objective(name, **{parameter: 3.4028235e38}, **keywords)


@pytest.mark.parametrize("name", LIBRARIES)
def test_extreme_floors_survive_float32(name):
    """The smallest and largest floors accepted are positive and finite in float32, where
    both libraries store hessians, also where the raw hessian is 0 or negative."""
    tiny, largest = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
    margins = np.array([-200.0, -30.0, -3.0, 0.0, 3.0, 30.0, 200.0])
    y = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    raw = focal.grad_hess(margins, y)[1]
    assert (raw <= 0).any()  # the floor is what keeps those positive
    for floor in (tiny, largest):
        objective = _make_objective(name, hessian_floor=floor)
        for dtype in (np.float32, np.float64):
            _, hess = objective(y, margins.astype(dtype))
            stored = hess.astype(np.float32)
            assert (stored > 0).all() and np.isfinite(stored).all()
            assert stored.min() >= np.float32(min(floor, raw[raw > 0].min()))


@pytest.mark.parametrize("name", LIBRARIES)
def test_bad_alpha_and_gamma(name):
    with pytest.raises(TypeError, match="^alpha: .*per-class"):
        _make_objective(name, alpha=[0.25, 0.75])
    with pytest.raises(ValueError, match="^alpha: "):
        _make_objective(name, alpha=1.5)
    with pytest.raises(ValueError, match="^alpha: .*alpha=None"):
        _make_objective(name, alpha=-1)
    with pytest.raises(TypeError, match="^alpha: "):
        _make_objective(name, alpha="0.25")
    with pytest.raises(ValueError, match="^gamma: "):
        _make_objective(name, gamma=-0.5)
    with pytest.raises(TypeError, match="^gamma: "):
        _make_objective(name, gamma=None)
    with pytest.raises(TypeError, match="^alpha: "):  # (NumPy's own message before)
        _make_objective(name, alpha=[[0.1, 0.2], [0.3]])


@pytest.mark.parametrize("name", LIBRARIES)
def test_bad_calls(name):
    objective = _make_objective(name)
    y = np.array([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="binary.*multi-class"):
        objective(y, np.zeros((3, 3)))  # one column per class
    # several binary labels per row (multi-label): one margin per label, which
    # the message said was expected while refusing it
    with pytest.raises(ValueError, match=r"binary, one margin per row: .*\(3, 2\), several "
                                         r"binary labels per row .* does not support"):
        objective(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="binary"):
        objective(y, np.zeros(4))
    with pytest.raises(ValueError, match="^sample_weight: expected one weight per label"):
        objective(y, np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match=r"^y: expected labels in \[0, 1\], got 2 at index 1"):
        objective(np.array([0.0, 2.0, 1.0]), np.zeros(3))  # not binary labels
    with pytest.raises(ValueError, match=r"^y: .*got nan at index 2"):
        objective(np.array([0.0, 1.0, np.nan]), np.zeros(3))
    with pytest.raises(TypeError, match="^y: "):
        objective(np.array(["a", "b", "c"]), np.zeros(3))
    for weights in ([1.0, -1.0, 1.0], [1.0, np.nan, 1.0], [1.0, np.inf, 1.0]):
        with pytest.raises(ValueError, match="^sample_weight: expected finite non-negative "
                                             "weights, got .* at index 1$"):
            objective(y, np.zeros(3), np.array(weights))
    with pytest.raises(TypeError, match="^y_pred: expected real margins"):
        objective(y, np.array(["0", "1", "2"]))
    # ragged lists: named, not NumPy's "inhomogeneous shape"
    with pytest.raises(ValueError, match="^y_pred: expected an array of numbers"):
        objective(y, [[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="^y: expected an array of numbers"):
        objective([[0.0, 1.0], [1.0]], np.zeros(3))
    with pytest.raises(ValueError, match="^sample_weight: expected an array of numbers"):
        objective(y, np.zeros(3), [[1.0, 1.0], [1.0]])


def test_objective_refuses_the_other_librarys_data():
    """A focal objective or metric handed to the wrong library says which one to use,
    under the name of the argument that holds the other library's data set."""
    xgb, lgb = _library("xgboost"), _library("lightgbm")
    X, y = np.zeros((4, 1)), np.array([0.0, 1.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="^dtrain: .* is for XGBoost.*focal.lightgbm_objective"):
        xgboost_objective()(np.zeros(4), lgb.Dataset(X, y).construct())
    with pytest.raises(TypeError,
                       match="^train_data: .* is for LightGBM.*focal.xgboost_objective"):
        lightgbm_objective()(np.zeros(4), xgb.DMatrix(X, y))
    with pytest.raises(TypeError, match="^dmat: .*metric is for XGBoost.*focal.lightgbm_metric"):
        xgboost_metric()(np.zeros(4), lgb.Dataset(X, y).construct())
    with pytest.raises(TypeError,
                       match="^eval_data: .*metric is for LightGBM.*focal.xgboost_metric"):
        lightgbm_metric()(np.zeros(4), xgb.DMatrix(X, y))
    with pytest.raises(TypeError, match="^sample_weight: "):
        xgboost_metric()(np.zeros(4), xgb.DMatrix(X, y), np.ones(4))
    with pytest.raises(TypeError, match="^weight: "):
        lightgbm_metric()(np.zeros(4), lgb.Dataset(X, y).construct(), np.ones(4))
    with pytest.raises(TypeError, match="^sample_weight: "):
        xgboost_objective()(np.zeros(4), xgb.DMatrix(X, y), np.ones(4))
    with pytest.raises(TypeError, match="^weight: "):
        lightgbm_objective()(np.zeros(4), lgb.Dataset(X, y).construct(), np.ones(4))


def test_docstring_examples():
    """The examples of the objectives and metrics run."""
    _library("xgboost")
    lightgbm = _library("lightgbm")
    if tuple(int(part) for part in lightgbm.__version__.split(".")[:2]) < (4, 5):
        pytest.skip("LightGBM < 4.5 prints log lines despite verbose=-1 with a custom objective")
    import doctest

    result = doctest.testmod(_gbdt, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 40


def test_public_api():
    assert focal.xgboost_objective is _gbdt.xgboost_objective
    assert focal.lightgbm_objective is _gbdt.lightgbm_objective
    assert focal.xgboost_metric is _gbdt.xgboost_metric
    assert focal.lightgbm_metric is _gbdt.lightgbm_metric
    assert {"xgboost_objective", "lightgbm_objective", "xgboost_metric",
            "lightgbm_metric"} <= set(focal.__all__)


# --- what a library hands over: refused by name, never trained on ----------------------------

def _naive_xgboost_objective(predt, dtrain):
    """grad_hess without any check: what a model trains on when nothing refuses NaN."""
    grad, hess = focal.grad_hess(predt, dtrain.get_label())
    return grad, np.maximum(hess, 0.01)


@pytest.mark.parametrize("form", ["native", "sklearn"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_xgboost_refuses_a_non_finite_base_margin(form, bad):
    """One NaN base_margin: XGBoost sums a NaN gradient into every leaf and every
    prediction of the model is NaN, silently (the control below); the focal
    objective refuses it, naming the margin, its index and where it comes from."""
    xgb = _library("xgboost")
    X, y = _imbalanced(600, seed=8)
    start = np.full(len(y), focal.prior_bias(y.mean()))
    start[17] = bad
    params = {"max_depth": 3, "nthread": 1}
    if bad != bad:  # NaN: the model the check prevents
        poisoned = xgb.train(params, xgb.DMatrix(X, y, base_margin=start), 3,
                             obj=_naive_xgboost_objective)
        assert np.isnan(poisoned.predict(xgb.DMatrix(X))).all()
    message = rf"^{'predt' if form == 'native' else 'y_pred'}: expected finite margins, got " \
              rf"-?(nan|inf) at index 17;.*NaN: check base_margin and base_score$"
    with pytest.raises(ValueError, match=message):
        if form == "native":
            xgb.train(params, xgb.DMatrix(X, y, base_margin=start), 3, obj=xgboost_objective())
        else:
            xgb.XGBClassifier(n_estimators=3, max_depth=3, n_jobs=1,
                              objective=xgboost_objective()).fit(X, y, base_margin=start)


@pytest.mark.parametrize("form", ["native", "sklearn"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_lightgbm_refuses_an_infinite_init_score(form, bad):
    """LightGBM stores an infinite init_score as +-1e300: refused as its stand-in."""
    lgb = _library("lightgbm")
    X, y = _imbalanced(600, seed=8)
    start = np.full(len(y), focal.prior_bias(y.mean()))
    start[17] = bad
    message = rf"^{'preds' if form == 'native' else 'y_pred'}: expected finite margins, got " \
              r"-?1e\+300 at index 17 \(LightGBM's stand-in for an infinite init_score\);" \
              r".*check init_score$"
    with pytest.raises(ValueError, match=message):
        if form == "native":
            lgb.train({"objective": lightgbm_objective(), "num_threads": 1, "verbose": -1},
                      lgb.Dataset(X, y, init_score=start), num_boost_round=3)
        else:
            lgb.LGBMClassifier(n_estimators=3, n_jobs=1, verbose=-1,
                               objective=lightgbm_objective()).fit(X, y, init_score=start)


def test_lightgbm_turns_a_nan_init_score_into_zero():
    """LightGBM replaces a NaN init_score by 0 when it builds the Dataset, before any
    objective sees it (documented): that sample starts at margin 0, the model is
    not poisoned.  Should a LightGBM pass the NaN on, the objective refuses it."""
    lgb = _library("lightgbm")
    X, y = _imbalanced(600, seed=8)
    b0 = focal.prior_bias(y.mean())
    start = np.full(len(y), b0)
    start[17] = np.nan
    train_set = lgb.Dataset(X, y, init_score=start)
    booster = lgb.train({"objective": lightgbm_objective(), "num_threads": 1, "verbose": -1},
                        train_set, num_boost_round=5)
    stored = train_set.get_init_score()
    if np.isnan(stored).any():
        pytest.fail("this LightGBM keeps a NaN init_score, yet training did not raise")
    assert stored[17] == 0 and stored[16] == b0
    assert np.isfinite(booster.predict(X)).all()
    with pytest.raises(ValueError, match="^y_pred: .*got nan at index 17.*init_score$"):
        lightgbm_objective()(y, start)


@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300, -1e301])
def test_objective_and_metric_refuse_non_finite_margins(name, bad):
    y = np.array([0.0, 1.0, 0.0, 1.0])
    for dtype in (np.float32, np.float64):
        margins = np.zeros(4, dtype)
        with np.errstate(over="ignore"):
            margins[2] = bad  # 1e300 is inf in float32
        for callable_ in (_make_objective(name), _make_metric(name)):
            with pytest.raises(ValueError, match="^y_pred: expected finite margins.* at index 2"):
                callable_(y, margins)
    assert np.isnan(focal.grad_hess(np.array([np.nan]), np.ones(1))[0]).all()  # unchecked: NaN


@pytest.mark.parametrize("name, form", [("xgboost", "sklearn"), ("lightgbm", "native"),
                                        ("lightgbm", "sklearn")])
def test_bad_weights_are_named_as_passed(name, form):
    """Weights are named as the user passed them: a Dataset's `weight`, or
    `sample_weight` of the estimator's fit.  (XGBoost refuses negative and
    non-finite weights itself, when the DMatrix is built.)"""
    lib = _library(name)
    X, y = _imbalanced(600, seed=8)
    weights = np.ones(len(y))
    weights[5] = -0.5
    objective = _make_objective(name)
    expected = "weight" if form == "native" else "sample_weight"
    with pytest.raises(ValueError, match=rf"^{expected}: expected finite non-negative weights, "
                                         r"got -0.5 at index 5$"):
        if form == "native":
            lib.train({"objective": objective, "num_threads": 1, "verbose": -1},
                      lib.Dataset(X, y, weight=weights), num_boost_round=2)
        elif name == "lightgbm":
            lib.LGBMClassifier(n_estimators=2, n_jobs=1, verbose=-1,
                               objective=objective).fit(X, y, sample_weight=weights)
        else:  # the call XGBClassifier makes
            objective(y, np.zeros(len(y), np.float32), sample_weight=weights)


def test_xgboost_labels_are_named_as_passed():
    xgb = _library("xgboost")
    X = np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"^label: expected labels in \[0, 1\], got 2 at index 1"):
        xgb.train({"nthread": 1}, xgb.DMatrix(X, np.array([0.0, 2.0, 0.0, 1.0])), 1,
                  obj=xgboost_objective())


# --- derivatives the library would store: finite float32 numbers, or an error ----------------

@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
@pytest.mark.parametrize("which", ["grad", "hess"])
def test_non_finite_derivatives_are_never_handed_over(name, bad, which, monkeypatch):
    """Whatever makes a derivative non-finite (or past float32's range, where the
    libraries store it), the objective raises instead of returning it."""
    real = _gbdt.grad_hess

    def faulty(margins, labels, *args, **kwargs):
        grad, hess = real(margins, labels, *args, **kwargs)
        target = grad if which == "grad" else hess
        with np.errstate(over="ignore"):
            target[margins == 0.5] = bad  # 1e39 is inf in float32
        return grad, hess

    monkeypatch.setattr(_gbdt, "grad_hess", faulty)
    margins = np.array([-1.0, 0.0, 0.5, 2.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    for dtype in (np.float32, np.float64):
        for weights in (None, np.array([1.0, 2.0, 0.5, 1.0])):  # not the weights' fault
            with pytest.raises(ValueError, match=r"^gamma: the focal gradient and hessian at "
                                                 r"index 2 \(margin 0.5, label 1\).*use a "
                                                 r"smaller gamma$"):
                _make_objective(name)(y, margins.astype(dtype), weights)


@pytest.mark.parametrize("name", LIBRARIES)
def test_huge_gamma_never_gives_non_finite_derivatives(name):
    """gamma 1e155: grad_hess's gamma (gamma - 1) overflows; the objective
    refuses the result, naming gamma, or (once the derivatives are finite)
    returns finite float32 values."""
    rng = np.random.default_rng(9)
    margins = rng.normal(0.0, 3.0, 200)
    y = (rng.random(200) < 0.3).astype(np.float64)
    objective = _make_objective(name, gamma=1e155)
    for dtype in (np.float32, np.float64):
        try:
            grad, hess = objective(y, margins.astype(dtype))
        except ValueError as error:
            assert str(error).startswith("gamma: ") and "gamma=1e+155" in str(error)
        else:
            assert np.isfinite(grad.astype(np.float32)).all()
            assert np.isfinite(hess.astype(np.float32)).all()


def test_huge_gamma_does_not_train_a_nan_model():
    xgb, lgb = _library("xgboost"), _library("lightgbm")
    X, y = _imbalanced(600, seed=8)
    try:
        booster = xgb.train({"nthread": 1, "max_depth": 3}, xgb.DMatrix(X, y), 3,
                            obj=xgboost_objective(gamma=1e155))
    except ValueError as error:
        assert str(error).startswith("gamma: ")
    else:
        assert np.isfinite(booster.predict(xgb.DMatrix(X))).all()
    try:
        booster = lgb.train({"objective": lightgbm_objective(gamma=1e155), "num_threads": 1,
                             "verbose": -1}, lgb.Dataset(X, y), num_boost_round=3)
    except ValueError as error:
        assert str(error).startswith("gamma: ")
    else:
        assert np.isfinite(booster.predict(X)).all()


@pytest.mark.parametrize("name", LIBRARIES)
def test_weights_that_overflow_float32_are_named(name):
    y = np.array([0.0, 1.0, 1.0, 0.0])
    weights = np.array([1.0, 1.0, 1e300, 1.0])
    with pytest.raises(ValueError, match=r"^sample_weight: the weight 1e\+300 at index 2 makes "
                                         r"the weighted gradient or hessian .* overflow float32"):
        _make_objective(name)(y, np.zeros(4), weights)
    # a large weight that fits is no error
    _, hess = _make_objective(name)(y, np.zeros(4), np.array([1.0, 1.0, 1e30, 1.0]))
    assert np.isfinite(hess.astype(np.float32)).all()


# --- the metrics -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("weighted", [False, True])
def test_metric_is_the_focal_loss_of_the_margins(name, weighted):
    """Both call forms give focal.loss(margins, labels, alpha, gamma, weights=w)
    of the margins in float64: the mean, or the weighted mean sum(w l) / sum(w)."""
    lib = _library(name)
    rng = np.random.default_rng(10)
    n = 3000
    margins = rng.normal(-2.0, 3.0, n)
    y = (rng.random(n) < 0.2).astype(np.float64)
    y[:100] = rng.random(100)  # soft labels
    w = rng.uniform(0.0, 3.0, n).astype(np.float32) if weighted else None
    metric = _make_metric(name, 0.3, 1.5)
    if name == "xgboost":
        margins = margins.astype(np.float32)  # what XGBoost hands a metric
        data = lib.DMatrix(np.zeros((n, 1)), y, weight=w)
        native = metric(margins, data)
        sklearn_form = metric(y, margins) if w is None else metric(y, margins, sample_weight=w)
    else:
        data = lib.Dataset(np.zeros((n, 1)), y, weight=w).construct()
        native = metric(margins, data)
        sklearn_form = metric(y, margins, w)
    # the native form reads the labels the library stores: float32
    stored = data.get_label()
    assert stored.dtype == np.float32
    wide = margins.astype(np.float64)
    expected_native = float(focal.loss(wide, stored, 0.3, 1.5, weights=w))
    expected = float(focal.loss(wide, y, 0.3, 1.5, weights=w))
    elementwise = focal.loss(margins.astype(np.float64), y, 0.3, 1.5, reduction="none")
    scale = np.ones(n) if w is None else w.astype(np.float64)
    by_hand = float(np.sum(scale * elementwise) / np.sum(scale))
    assert expected == pytest.approx(by_hand, rel=1e-6)
    if name == "xgboost":
        assert native == ("focal", expected_native)
        assert sklearn_form == expected and type(sklearn_form) is float
    else:
        assert native == ("focal", expected_native, False)
        assert sklearn_form == ("focal", expected, False)
    assert expected_native == pytest.approx(expected, rel=1e-6)
    if weighted:  # the weights matter
        assert abs(expected - float(focal.loss(margins, y, 0.3, 1.5))) > 1e-4


@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("multiclass", [False, True])
def test_metric_of_float32_margins_is_their_float64_loss(name, multiclass):
    """XGBoost hands a metric float32 margins; their float32 focal loss
    underflows to 0 from margins of about +-40 (a mean of 5.4e-53 was
    reported as 0.0, and no warning said so).  The metric is the float64
    loss of the same margins, and its few-digits warning names scale."""
    lib = _library(name)
    n = 400
    y = (np.arange(n) % 5 == 0).astype(np.float64)
    if multiclass:
        y = (np.arange(n) % 3).astype(np.float64)
        margins = np.where(np.arange(3) == y[:, None], 60.0, -60.0).astype(np.float32)
        metric = _make_metric(name, None, 2.0, multiclass=True)
        exact = float(focal.softmax_loss(margins.astype(np.float64), y.astype(np.int64), None, 2.0))
        assert float(focal.softmax_loss(margins, y.astype(np.int64), None, 2.0)) == 0.0
    else:
        margins = np.where(y == 1, 40.0, -40.0).astype(np.float32)
        metric = _make_metric(name, 0.25, 2.0)
        exact = float(focal.loss(margins.astype(np.float64), y, 0.25, 2.0))
        assert float(focal.loss(margins, y, 0.25, 2.0)) == 0.0
    assert 0.0 < exact < 1e-40
    if name == "xgboost":
        data = lib.DMatrix(np.zeros((n, 1)), y)
        with pytest.warns(UserWarning, match="scale"):
            value = metric(margins, data)[1]
    else:
        value = metric(y, margins)[1]
    assert value == exact


@pytest.mark.parametrize("name", LIBRARIES)
def test_metric_objects(name):
    metric = _make_metric(name, alpha=0.5, gamma=1)
    assert (metric.alpha, metric.gamma) == (0.5, 1.0) and isinstance(metric.gamma, float)
    assert metric.name == metric.__name__ == "focal"
    assert type(metric).__name__ in ("XGBoostMetric", "LightGBMMetric")
    assert repr(metric).endswith("Metric(alpha=0.5, gamma=1.0" +
                                 (", scale=1.0)" if name == "xgboost" else ")"))
    for clone in (pickle.loads(pickle.dumps(metric)), copy.deepcopy(metric)):
        assert clone == metric and clone is not metric and hash(clone) == hash(metric)
    assert metric != _make_metric(name, alpha=0.5, gamma=2)
    assert metric != _make_objective(name, alpha=0.5, gamma=1)
    assert (_make_metric(name).alpha, _make_metric(name).gamma) == (0.25, 2.0)
    with pytest.raises(AttributeError):
        metric.gamma = 3.0
    with pytest.raises(TypeError, match="^alpha: .*per-class"):
        _make_metric(name, alpha=[0.25, 0.75])
    with pytest.raises(ValueError, match="^gamma: "):
        _make_metric(name, gamma=float("nan"))
    with pytest.raises(TypeError):
        _make_metric(name, hessian_floor=0.01)


@pytest.mark.parametrize("name", LIBRARIES)
def test_metric_names_what_it_refuses(name):
    metric = _make_metric(name)
    y = np.array([0.0, 1.0, 1.0])
    weights_name = "sample_weight_eval_set" if name == "xgboost" else "eval_sample_weight"
    with pytest.raises(ValueError, match=rf"^{weights_name}: .*got -1 at index 1$"):
        metric(y, np.zeros(3), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"^y_true: expected labels in \[0, 1\]"):
        metric(np.array([0.0, 1.5, 1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="^y_pred: .*multi-class"):
        metric(y, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=rf"^{weights_name}: every weight .* is 0"):
        metric(y, np.zeros(3), np.zeros(3))  # (NaN before, silently)
    with pytest.raises(ValueError, match="^y_pred: the evaluation set is empty"):
        metric(np.zeros(0), np.zeros(0))  # (NaN before, silently)


@pytest.mark.filterwarnings("ignore:.*Empty dataset:UserWarning")  # (XGBoost's own, logged)
def test_xgboost_metric_refuses_an_empty_evaluation_set():
    # (its NaN went into evals_result and early stopping, with no error)
    xgb = _library("xgboost")
    X, y = _imbalanced(200, seed=9)
    empty = xgb.DMatrix(np.zeros((0, X.shape[1])), label=np.zeros(0))
    with pytest.raises(ValueError, match="^predt: the evaluation set is empty"):
        xgb.train({"nthread": 1, "disable_default_eval_metric": True}, xgb.DMatrix(X, y), 3,
                  evals=[(empty, "valid")], obj=xgboost_objective(),
                  custom_metric=xgboost_metric(), verbose_eval=False)


def test_xgboost_metric_refuses_a_nan_base_margin_of_the_evaluation_set():
    xgb = _library("xgboost")
    X, y = _imbalanced(600, seed=8)
    start = np.full(len(y), focal.prior_bias(y.mean()))
    start[4] = np.nan
    evaluation = xgb.DMatrix(X, y, base_margin=start)
    with pytest.raises(ValueError, match="^predt: .*index 4.*the DMatrix's base_margin"):
        xgb.train({"nthread": 1, "base_score": focal.prior_bias(y.mean())}, xgb.DMatrix(X, y),
                  3, evals=[(evaluation, "valid")], obj=xgboost_objective(),
                  custom_metric=xgboost_metric(), verbose_eval=False)


def test_xgboost_metric_scale():
    """scale multiplies the value reported and names it in the metric's name;
    one warning, naming scale, when a value would keep fewer than four
    significant digits in XGBoost's six decimals."""
    y = np.array([0.0, 1.0, 0.0, 1.0])
    margins = np.array([-5.0, 5.0, -5.5, 4.5])  # a focal loss of 1.7e-7
    loss = float(focal.loss(margins, y))
    metric = xgboost_metric(0.25, 2.0, scale=1e6)
    assert metric.scale == 1e6 and metric.name == metric.__name__ == "focal_x1e+06"
    assert metric(y, margins) == loss * 1e6
    assert repr(metric).endswith("XGBoostMetric(alpha=0.25, gamma=2.0, scale=1000000.0)")
    for clone in (pickle.loads(pickle.dumps(metric)), copy.deepcopy(metric)):
        assert clone == metric and hash(clone) == hash(metric) and clone.name == metric.name
    assert metric != xgboost_metric(0.25, 2.0) and xgboost_metric().scale == 1.0
    assert [xgboost_metric(scale=s).name for s in (1, 1000, 2.5, 1234567, 1e-3)] == \
        ["focal", "focal_x1000", "focal_x2.5", "focal_x1234567", "focal_x0.001"]
    for bad, error in ((0, ValueError), (-1.0, ValueError), (float("inf"), ValueError),
                       (float("nan"), ValueError), (True, TypeError), ("1e6", TypeError),
                       (None, TypeError)):
        with pytest.raises(error, match="^scale: "):
            xgboost_metric(scale=bad)
    with pytest.raises(TypeError):
        xgboost_metric(0.25, 2.0, 1e6)  # keyword-only
    # the warning: once per metric, in both call forms, with a scale that keeps 7 digits
    unscaled = xgboost_metric()
    with pytest.warns(UserWarning, match=r"^scale: .*0\.000000 \(0 significant digits\).*"
                                          r"scale=1e\+07 .*'focal_x1e\+07'") as record:
        assert unscaled(y, margins) == loss
        assert unscaled(y, margins) == loss
    assert len(record) == 1
    assert len(f"{loss * 1e7:.6f}".replace(".", "").lstrip("0")) >= 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xgboost_metric(scale=1e7)(y, margins) == loss * 1e7
        assert xgboost_metric()(y, np.zeros(4)) > 1e-3  # enough digits: no warning
    # a value below 1e-308 (a tiny scale): the warning (10 ** 309 overflowed), with a
    # scale that keeps 7 digits there too (a factor capped at 1e308 suggested 1e+06,
    # which kept 4): 1e-302 * 10 ** 309, found in two factors
    with pytest.warns(UserWarning, match=r"^scale: .*1\.712e-309.*scale=1e\+07 "):
        assert xgboost_metric(scale=1e-302)(y, margins) == loss * 1e-302
    with pytest.warns(UserWarning, match=r"^scale: .*scale=1e\+13 "):
        xgboost_metric(scale=1e-300)(np.array([1.0, 0.0]), np.array([9.0, -9.0]))
    # a scale that takes a finite loss past the double range: refused by name, not inf
    with pytest.raises(ValueError, match=r"^scale: 1e\+308 times the focal loss .* beyond"):
        xgboost_metric(scale=1e308)(np.array([1.0, 0.0]), np.array([-5.0, 5.0]))
    # and one that takes a nonzero loss to 0 (a constant for early stopping): refused too
    with pytest.raises(ValueError, match=r"^scale: 4.94066e-324 times the focal loss .* below"):
        xgboost_metric(scale=5e-324)(np.array([1.0, 0.0]), np.array([5.0, -5.0]))
    # (a subnormal loss has no digits to keep: 5e-324 at margin 247.6, at scale 0.5, rounds to 0
    # and is not refused)
    with pytest.warns(UserWarning, match=r"^scale: "):
        assert xgboost_metric()(np.array([1.0]), np.array([247.6])) == 5e-324
    assert xgboost_metric(scale=0.5)(np.array([1.0]), np.array([247.6])) == 0.0
    with pytest.warns(UserWarning, match=r"^scale: "):  # 1e-320 of a loss near 2: subnormal
        assert xgboost_metric(scale=1e-320)(np.array([1.0, 0.0]), np.array([-5.0, 5.0])) > 0
    xgb = _library("xgboost")
    with pytest.warns(UserWarning, match=r"^scale: .*\(0 significant digits\)"):
        xgboost_metric()(margins, xgb.DMatrix(np.zeros((4, 1)), y))


def test_xgboost_early_stopping_keeps_the_digits_of_a_scaled_metric():
    """A focal loss near 1e-5 keeps one or two digits in XGBoost's six decimals:
    early stopping on the unscaled metric stops while the loss still falls (with
    a warning naming scale); with scale=1e6 it follows the loss itself."""
    xgb = _library("xgboost")
    datasets = _library("sklearn.datasets")
    X, y = datasets.make_classification(3000, 10, n_informative=4, weights=[0.97], flip_y=0.0,
                                        class_sep=6.0, random_state=0)
    dtrain, dvalid = xgb.DMatrix(X[:2000], y[:2000]), xgb.DMatrix(X[2000:], y[2000:])
    params = {"max_depth": 3, "eta": 0.3, "nthread": 1, "disable_default_eval_metric": True,
              "base_score": focal.prior_bias(y[:2000].mean())}
    rounds, patience = 600, 20

    def run(metric):
        exact, history = [], {}

        def recording(predt, dmat):  # the loss of every round, before XGBoost's "%f"
            name, value = metric(predt, dmat)
            exact.append(value / metric.scale)
            return name, value

        booster = xgb.train(params, dtrain, rounds, evals=[(dvalid, "valid")],
                            obj=xgboost_objective(), custom_metric=recording, maximize=False,
                            early_stopping_rounds=patience, evals_result=history,
                            verbose_eval=False)
        return booster.best_iteration, np.array(exact), history["valid"]

    with pytest.warns(UserWarning, match="^scale: ") as record:
        best, exact, history = run(xgboost_metric())
    assert len(record) == 1 and list(history) == ["focal"]
    assert 1e-6 < exact[best] < 1e-4  # the loss of this data set at its stop
    assert len(exact) == best + 1 + patience < rounds  # stopped early ...
    rounded = np.array(history["focal"])
    assert (rounded[best + 1:] >= rounded[best]).all()  # ... on the rounded values
    assert exact[-1] < 0.99 * exact[best]  # while the loss still fell

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        best_scaled, exact_scaled, history = run(xgboost_metric(scale=1e6))
    assert list(history) == ["focal_x1e+06"]
    np.testing.assert_allclose(history["focal_x1e+06"], exact_scaled * 1e6, rtol=0, atol=5.1e-7)
    # the same rounds: the losses of the first run, given back by value / scale
    # (two roundings of the float64 loss: within 2^-52)
    np.testing.assert_allclose(exact_scaled[:len(exact)], exact, rtol=2.3e-16, atol=0)
    assert best_scaled == int(np.argmin(exact_scaled)) > best + patience
    assert exact_scaled[best_scaled] < 0.75 * exact[best]


MAX_ROUNDS, PATIENCE = 300, 10


def _early_stopping_run(name, form, weighted):
    """Trains to overfitting with early stopping on a validation set.

    Returns (the evaluation history: {metric name: values per round}, the best
    round (0-based), a function giving the validation margins after round i,
    the validation labels and weights).
    """
    lib = _library(name)
    X, y = _imbalanced(1000, seed=6)  # small enough to overfit within MAX_ROUNDS
    X_valid, y_valid = _imbalanced(1500, seed=7)
    w_valid = None
    if weighted:  # float32: what both libraries store, so the expected values use the same
        w_valid = np.random.default_rng(11).uniform(0.2, 3.0, len(y_valid)).astype(np.float32)
    b0 = focal.prior_bias(y.mean())
    objective, metric = _make_objective(name), _make_metric(name)
    if name == "xgboost":
        params = dict(max_depth=6, learning_rate=0.5)
        if form == "native":
            history = {}
            valid = lib.DMatrix(X_valid, y_valid, weight=w_valid)
            booster = lib.train({**params, "nthread": 1, "base_score": b0,
                                 "disable_default_eval_metric": True},
                                lib.DMatrix(X, y), MAX_ROUNDS, evals=[(valid, "valid")],
                                obj=objective, custom_metric=metric, maximize=False,
                                early_stopping_rounds=PATIENCE, evals_result=history,
                                verbose_eval=False)
            return (history["valid"], booster.best_iteration,
                    lambda i: booster.predict(valid, output_margin=True,
                                              iteration_range=(0, i + 1)),
                    y_valid, w_valid)
        model = lib.XGBClassifier(n_estimators=MAX_ROUNDS, n_jobs=1, **params,
                                  base_score=y.mean(), objective=objective, eval_metric=metric,
                                  early_stopping_rounds=PATIENCE, disable_default_eval_metric=True)
        model.fit(X, y, eval_set=[(X_valid, y_valid)],
                  sample_weight_eval_set=None if w_valid is None else [w_valid], verbose=False)
        return (model.evals_result()["validation_0"], model.best_iteration,
                lambda i: model.predict(X_valid, output_margin=True, iteration_range=(0, i + 1)),
                y_valid, w_valid)
    params = dict(learning_rate=0.3, num_leaves=63, min_child_samples=5, verbose=-1,
                  deterministic=True)
    init, init_valid = np.full(len(y), b0), np.full(len(y_valid), b0)
    stopping = lib.early_stopping(PATIENCE, verbose=False)
    if form == "native":
        history = {}
        train_set = lib.Dataset(X, y, init_score=init)
        valid = lib.Dataset(X_valid, y_valid, weight=w_valid, init_score=init_valid,
                            reference=train_set)
        booster = lib.train({**params, "objective": objective, "metric": "None",
                             "num_threads": 1}, train_set, MAX_ROUNDS, valid_sets=[valid],
                            feval=metric, callbacks=[stopping, lib.record_evaluation(history)])
        return (history["valid_0"], booster.best_iteration - 1,
                lambda i: b0 + booster.predict(X_valid, num_iteration=i + 1, raw_score=True),
                y_valid, w_valid)
    model = lib.LGBMClassifier(n_estimators=MAX_ROUNDS, n_jobs=1, **params, objective=objective,
                               metric="None")
    model.fit(X, y, init_score=init, eval_metric=metric, eval_init_score=[init_valid],
              eval_sample_weight=None if w_valid is None else [w_valid], callbacks=[stopping],
              **_lgbm_eval_set(lib, X_valid, y_valid))
    return (model.evals_result_["valid_0"], model.best_iteration_ - 1,
            lambda i: b0 + model.predict(X_valid, num_iteration=i + 1, raw_score=True),
            y_valid, w_valid)


@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("form", ["native", "sklearn"])
@pytest.mark.parametrize("weighted", [False, True])
def test_early_stopping_on_the_focal_metric(name, form, weighted):
    """Early stopping watches the focal metric alone, stops at its minimum, and
    every value it saw is the focal loss of that round's validation margins."""
    history, best, margins_after, y_valid, w_valid = _early_stopping_run(name, form, weighted)
    assert list(history) == ["focal"]
    scores = np.array(history["focal"])
    assert len(scores) == best + 1 + PATIENCE < MAX_ROUNDS  # it did stop early, on this metric
    assert best == int(np.argmin(scores)) and scores[-1] > scores[best]
    # XGBoost logs a custom metric with six decimals; LightGBM keeps every digit, and
    # only the trees up to the best round (so the margins of the later rounds are gone)
    tolerance = dict(rel=0, abs=5.1e-7) if name == "xgboost" else dict(rel=1e-12)
    rounds = (0, best // 2, best) + ((len(scores) - 1,) if name == "xgboost" else ())
    for i in rounds:
        expected = float(focal.loss(margins_after(i), y_valid, 0.25, 2.0, weights=w_valid))
        assert scores[i] == pytest.approx(expected, **tolerance), i


def test_default_metrics_do_not_score_the_focal_loss():
    """Why the metrics exist: without them XGBoost's train(obj=) monitors the RMSE
    of the margins and LGBMClassifier scores the margins with binary_logloss."""
    xgb, lgb = _library("xgboost"), _library("lightgbm")
    X, y = _imbalanced(600, seed=8)
    history = {}
    dtrain = xgb.DMatrix(X, y)
    xgb.train({"nthread": 1}, dtrain, 2, evals=[(dtrain, "train")], obj=xgboost_objective(),
              evals_result=history, verbose_eval=False)
    assert list(history["train"]) == ["rmse"]
    model = lgb.LGBMClassifier(n_estimators=2, n_jobs=1, verbose=-1,
                               objective=lightgbm_objective())
    model.fit(X, y, **_lgbm_eval_set(lgb, X, y))
    assert list(model.evals_result_["valid_0"]) == ["binary_logloss"]
    # with the metric, XGBoost lists it after its default, and early stopping takes the last
    history = {}
    booster = xgb.train({"nthread": 1}, dtrain, 2, evals=[(dtrain, "train")],
                        obj=xgboost_objective(), custom_metric=xgboost_metric(),
                        early_stopping_rounds=5, evals_result=history, verbose_eval=False)
    assert list(history["train"]) == ["rmse", "focal"]
    assert booster.best_score == min(history["train"]["focal"])


@pytest.mark.parametrize("name", LIBRARIES)
def test_estimator_with_the_metric_pickles_and_clones(data, name):
    lib = _library(name)
    clone = _library("sklearn.base").clone
    X, y, _ = data
    metric = _make_metric(name, 0.5, 1.0)
    if name == "xgboost":
        model = lib.XGBClassifier(n_estimators=3, n_jobs=1, objective=xgboost_objective(),
                                  eval_metric=metric, disable_default_eval_metric=True)
        assert clone(model).get_params()["eval_metric"] == metric
        model.fit(X, y, eval_set=[(X, y)], verbose=False)
        predict = lambda m: m.predict(X, output_margin=True)  # noqa: E731
    else:
        model = lib.LGBMClassifier(n_estimators=3, n_jobs=1, verbose=-1, metric="None",
                                   objective=lightgbm_objective())
        model.fit(X, y, eval_metric=metric, **_lgbm_eval_set(lib, X, y))
        predict = lambda m: m.predict(X, raw_score=True)  # noqa: E731
    assert list(model.evals_result_["validation_0" if name == "xgboost" else "valid_0"]) == \
        ["focal"]
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(predict(restored), predict(model))
    if name == "xgboost":
        assert restored.get_params()["eval_metric"] == metric


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_weighted_floor_past_float32_names_the_weights_without_a_warning(name):
    """A floor and a weight that each fit float32 but whose product does not:
    the weights are named, and no NumPy overflow warning escapes (float32
    weights make the product in float32)."""
    y = np.array([0.0, 1.0, 1.0, 0.0])
    objective = _make_objective(name, hessian_floor=3e38)
    for dtype in (np.float32, np.float64):
        weights = np.array([1.0, 1.0, 3.4e38, 1.0], dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=r"^sample_weight: the weight 3\.4e\+38 at index 2 "
                                                 r"makes the weighted gradient or hessian"):
                objective(y, np.zeros(4, dtype), weights)
            _, hess = objective(y, np.zeros(4, dtype), np.array([1.0, 1.0, 1.0, 0.5], dtype))
        assert hess.tolist() == [3e38 if dtype == np.float64 else float(np.float32(3e38))] * 3 + [
            float(hess.dtype.type(3e38) * hess.dtype.type(0.5))]


@pytest.mark.parametrize("name", LIBRARIES)
@pytest.mark.parametrize("multiclass", [False, True])
def test_a_margin_past_the_limit_names_the_library_in_use(name, multiclass):
    """A finite margin of magnitude 1e300 or more is refused; only LightGBM's
    refusal speaks of LightGBM's stand-in for an infinite init_score."""
    y = np.array([0.0, 1.0, 1.0, 0.0])
    margins = np.zeros((4, 3) if multiclass else 4)
    margins.flat[6 if multiclass else 2] = -1e308
    callables = [_make_objective(name, multiclass=multiclass)]
    if not multiclass:
        callables.append(_make_metric(name))
    for callable_ in callables:
        with pytest.raises(ValueError) as info:
            callable_(y, margins)
        message = str(info.value)
        assert message.startswith("y_pred: expected finite margins, got -1e+308 at index "
                                  f"{6 if multiclass else 2} (")
        assert ("LightGBM" in message) == (name == "lightgbm"), message
        assert "XGBoost" not in message


@pytest.mark.parametrize("make", [focal.xgboost_objective, focal.lightgbm_objective,
                                  focal.xgboost_metric, focal.lightgbm_metric])
@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_masked_arrays_are_refused_by_name(make, multiclass, which):
    """Called directly (the scikit-learn form), the objectives and metrics took a
    masked array through np.asarray, which drops its mask: a masked margin of 50
    was counted in the metric.  The core refuses masked arrays; so do they, naming
    the argument, whichever of labels, margins and weights is masked."""
    if multiclass:
        arrays = [np.array([0.0, 2.0, 1.0]), np.linspace(-1.0, 1.0, 9).reshape(3, 3),
                  np.ones(3)]
    else:
        arrays = [np.array([1.0, 0.0, 0.0]), np.array([0.5, 50.0, -1.0]), np.ones(3)]
    function = make(multiclass=True) if multiclass else make()
    plain = function(*arrays)
    mask = np.zeros(arrays[which].shape, dtype=bool)
    mask.flat[1] = True
    arrays[which] = np.ma.array(arrays[which], mask=mask)
    with pytest.raises(TypeError, match=r"^\w+: masked arrays are not supported"):
        function(*arrays)
    assert all(np.isfinite(np.asarray(part, dtype=float)).all()
               for part in (plain if isinstance(plain, tuple) else (plain,))
               if not isinstance(part, (str, bool)))


@pytest.mark.parametrize("make", [focal.xgboost_objective, focal.lightgbm_objective,
                                  focal.xgboost_metric, focal.lightgbm_metric])
def test_multiclass_weights_as_a_column(make):
    """An (n, 1) column of sample weights, which the binary callables take, was refused
    by the multi-class ones (not broadcastable to the rows' shape); it gives the values
    of the same weights as a vector."""
    function = make(multiclass=True)
    labels, margins = np.array([0.0, 2.0, 1.0, 2.0]), np.linspace(-2.0, 2.0, 12).reshape(4, 3)
    weights = np.array([0.5, 1.0, 2.0, 0.25])
    expected, column = function(labels, margins, weights), function(labels, margins,
                                                                    weights[:, None])
    if not isinstance(expected, tuple):  # (a metric's value alone)
        expected, column = (expected,), (column,)
    for a, b in zip(expected, column):
        np.testing.assert_array_equal(a, b)

"""Focal objectives for XGBoost and LightGBM (focal.xgboost_objective, focal.lightgbm_objective).

The libraries come from the ``gbdt`` extra (``pip install ".[gbdt]"``); a test
that needs one that is not installed is skipped, unless the environment
variable FOCAL_REQUIRE_GBDT is set (CI sets it, so a missing library fails
instead).  Every model is trained single-threaded, so runs are deterministic.
"""
import copy
import importlib
import os
import pickle

import numpy as np
import pytest

import focal
from focal import _gbdt
from focal._gbdt import lightgbm_objective, xgboost_objective

LIBRARIES = ["xgboost", "lightgbm"]
ROUNDS = 30


def _library(name):
    if os.environ.get("FOCAL_REQUIRE_GBDT"):
        return importlib.import_module(name)
    return pytest.importorskip(name)


def _make_objective(name, *args, **kwargs):
    return {"xgboost": xgboost_objective, "lightgbm": lightgbm_objective}[name](*args, **kwargs)


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
    (True, TypeError), ("0.01", TypeError), ([0.01], TypeError), (None, TypeError),
])
def test_bad_hessian_floor(name, value, error):
    with pytest.raises(error, match="^hessian_floor: "):
        _make_objective(name, hessian_floor=value)


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


@pytest.mark.parametrize("name", LIBRARIES)
def test_bad_calls(name):
    objective = _make_objective(name)
    y = np.array([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="binary.*multi-class"):
        objective(y, np.zeros((3, 3)))  # one column per class
    with pytest.raises(ValueError, match="binary"):
        objective(y, np.zeros(4))
    with pytest.raises(ValueError, match="one weight per label"):
        objective(y, np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        objective(np.array([0.0, 2.0, 1.0]), np.zeros(3))  # not binary labels
    with pytest.raises(ValueError, match="non-negative"):
        objective(y, np.zeros(3), np.array([1.0, -1.0, 1.0]))


def test_objective_refuses_the_other_librarys_data():
    """A focal objective handed to the wrong library says which one to use."""
    xgb, lgb = _library("xgboost"), _library("lightgbm")
    X, y = np.zeros((4, 1)), np.array([0.0, 1.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="for XGBoost.*focal.lightgbm_objective"):
        xgboost_objective()(np.zeros(4), lgb.Dataset(X, y).construct())
    with pytest.raises(TypeError, match="for LightGBM.*focal.xgboost_objective"):
        lightgbm_objective()(np.zeros(4), xgb.DMatrix(X, y))
    with pytest.raises(TypeError, match="^sample_weight: "):
        xgboost_objective()(np.zeros(4), xgb.DMatrix(X, y), np.ones(4))
    with pytest.raises(TypeError, match="^weight: "):
        lightgbm_objective()(np.zeros(4), lgb.Dataset(X, y).construct(), np.ones(4))


def test_docstring_examples():
    """The examples in focal.xgboost_objective and focal.lightgbm_objective run."""
    _library("xgboost")
    lightgbm = _library("lightgbm")
    if tuple(int(part) for part in lightgbm.__version__.split(".")[:2]) < (4, 5):
        pytest.skip("LightGBM < 4.5 prints log lines despite verbose=-1 with a custom objective")
    import doctest

    result = doctest.testmod(_gbdt, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 20


def test_public_api():
    assert focal.xgboost_objective is _gbdt.xgboost_objective
    assert focal.lightgbm_objective is _gbdt.lightgbm_objective
    assert {"xgboost_objective", "lightgbm_objective"} <= set(focal.__all__)

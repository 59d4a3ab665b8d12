"""focal on a real Dask cluster: a LocalCluster of two worker processes.

The boosting objectives ship to the workers (pickled) and train with
`xgboost.dask.train` and `lightgbm.DaskLGBMClassifier` to the held-out
average precision of the single-machine fit; focal.dask's graphs compute on
the workers.  One cluster serves the module.

Needs the ``dask`` and ``gbdt`` extras; skipped without them unless
FOCAL_REQUIRE_DASK is set (CI), which makes a missing library a failure.
Every worker has one thread, so runs are deterministic.
"""
import copy
import importlib
import os
import pickle

import numpy as np
import pytest

import focal

if os.environ.get("FOCAL_REQUIRE_DASK"):
    import cloudpickle
    import dask
    import dask.array as da
    import distributed
else:
    cloudpickle = pytest.importorskip("cloudpickle")
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")

import focal.dask as fd  # noqa: E402  (after the skip)
from test_gbdt import _imbalanced  # noqa: E402

# The held-out AP of the cluster fit may differ from the single-machine fit's
# by at most this much.  Both see the same rows and the same objective, but
# a two-worker fit bins the features from the workers' parts (XGBoost merges
# per-worker quantile sketches; LightGBM builds each feature's bins on one
# worker's rows), so the trees split at slightly different thresholds.
# Measured over 6 data seeds (4000 training rows, 2000 held out, ~100
# positives): gaps up to 0.028 (XGBoost) and 0.044 (LightGBM), no larger than
# between two single-machine fits on 95 % subsamples of the rows (up to
# 0.059).  The bar a fit must clear, 10 times the positive rate, shows the
# comparison can fail: a model that learned nothing scores about 0.05.
AP_TOLERANCE = 0.05
AP_FLOOR = 0.5
N_TRAIN, N_TEST = 4000, 2000


def _library(name):
    if os.environ.get("FOCAL_REQUIRE_DASK"):
        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture(scope="module")
def client():
    # (":0": any free port for the scheduler's HTTP routes; None still takes
    # 8787, which a cluster of another test worker may hold)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=50)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def data():
    X, y = _imbalanced(n=N_TRAIN + N_TEST, seed=0)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def _spread(client, *arrays, split=None):
    """Dask arrays whose halves of rows (or `split`: the first worker's row
    count) live on different workers, so that a fit is really distributed
    (left to the scheduler, both halves may land on one worker).  A worker
    given no rows holds no part."""
    workers = sorted(client.scheduler_info()["workers"])
    assert len(workers) == 2
    count = len(arrays[0])
    split = count // 2 if split is None else split
    rows = [np.arange(split), np.arange(split, count)]
    spread = []
    for array in arrays:
        parts = []
        for part_rows, worker in zip(rows, workers):
            if not len(part_rows):
                continue
            part = array[part_rows]
            future = client.scatter(part, workers=[worker], hash=False)
            parts.append(da.from_delayed(future, shape=part.shape, dtype=part.dtype))
        spread.append(da.concatenate(parts))
    return spread


def _average_precision(y, scores):
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(y, scores))


# --- the objectives travel ------------------------------------------------------------------

OBJECTIVES = [
    lambda: focal.xgboost_objective(0.3, 1.5, hessian_floor=0.02),
    lambda: focal.lightgbm_objective(None, 2.0),
    lambda: focal.xgboost_metric(0.3, 1.5),
    lambda: focal.lightgbm_metric(),
]


@pytest.mark.parametrize("make", OBJECTIVES)
def test_objectives_pickle_round_trip(make):
    """pickle (what multiprocessing uses) and cloudpickle (what Dask uses):
    an equal callable of the same class computing the same values."""
    original = make()
    rng = np.random.default_rng(0)
    y, margins, w = (rng.random(200) < 0.2).astype(float), rng.normal(0, 3, 200), rng.random(200)
    for restored in (pickle.loads(pickle.dumps(original)),
                     pickle.loads(cloudpickle.dumps(original)), copy.deepcopy(original)):
        assert type(restored) is type(original) and restored == original
        assert repr(restored) == repr(original)
        for got, expected in zip(np.atleast_1d(restored(y, margins, w)),
                                 np.atleast_1d(original(y, margins, w))):
            np.testing.assert_array_equal(got, expected)
    other = type(original)(0.5, 1.0)
    assert pickle.loads(pickle.dumps(other)) != original  # the parameters travel


@pytest.mark.parametrize("make", OBJECTIVES[:2])
def test_objective_runs_on_a_worker(client, make):
    """Shipped to another process, the objective computes what it computes here."""
    objective = make()
    rng = np.random.default_rng(1)
    y, margins, w = (rng.random(500) < 0.1).astype(float), rng.normal(0, 3, 500), rng.random(500)
    pid, remote = client.submit(lambda o, *a: (os.getpid(), o(*a)), objective, y, margins, w,
                                pure=False).result()
    assert pid != os.getpid()
    local = objective(y, margins, w)
    np.testing.assert_array_equal(remote[0], local[0])
    np.testing.assert_array_equal(remote[1], local[1])


# --- boosting on the cluster ----------------------------------------------------------------

def test_xgboost_dask_train_matches_single_machine(client, data):
    xgb = _library("xgboost")
    import xgboost.dask  # noqa: F401  (the submodule)

    X, y, X_test, y_test = data
    params = dict(max_depth=4, learning_rate=0.3, tree_method="hist", nthread=1,
                  base_score=focal.prior_bias(y.mean()))
    objective = focal.xgboost_objective()
    dX, dy = _spread(client, X, y)
    dtrain = xgb.dask.DaskDMatrix(client, dX, dy)
    output = xgb.dask.train(client, params, dtrain, 30, obj=objective)
    cluster_margins = output["booster"].predict(xgb.DMatrix(X_test))
    single = xgb.train(params, xgb.DMatrix(X, y), 30, obj=objective)
    single_margins = single.predict(xgb.DMatrix(X_test))
    cluster_ap = _average_precision(y_test, cluster_margins)
    single_ap = _average_precision(y_test, single_margins)
    print(f"XGBoost held-out AP: cluster {cluster_ap:.4f}, single machine {single_ap:.4f}")
    assert single_ap > AP_FLOOR and cluster_ap > AP_FLOOR
    assert abs(cluster_ap - single_ap) <= AP_TOLERANCE
    # the cluster's model is its own (trained on the workers), not a copy
    assert not np.array_equal(cluster_margins, single_margins)


@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("split", [1700, 2000])
def test_xgboost_dask_metric_is_the_whole_evaluation_sets(client, data, split, multiclass):
    """Each worker's metric sees its own rows and XGBoost averages the
    workers' values with equal weight: with the evaluation rows split 1,700
    and 300 the focal metric logged 19.54 for the set's 21.02 (a mean of
    means), and with every row on one worker the other's empty part raised.
    The metric adds the workers' sums itself: each round's logged value is
    the focal loss of the whole set under the model of that round."""
    xgb = _library("xgboost")
    import xgboost.dask  # noqa: F401  (the submodule)

    X, y, X_test, y_test = data
    rounds, scale = 4, 1e3
    weights = np.linspace(0.5, 2.0, len(y_test))
    if multiclass:
        y, y_test = y + (X[:, 0] > 0.5), y_test + (X_test[:, 0] > 0.5)  # three classes
        params = dict(max_depth=3, nthread=1, num_class=3, disable_default_eval_metric=True)
        objective = focal.xgboost_objective(multiclass=True, hessian_scale="xgboost")
        metric = focal.xgboost_metric(multiclass=True, scale=scale)
    else:
        params = dict(max_depth=3, nthread=1, base_score=focal.prior_bias(y.mean()),
                      disable_default_eval_metric=True)
        objective, metric = focal.xgboost_objective(), focal.xgboost_metric(scale=scale)
    dtrain = xgb.dask.DaskDMatrix(client, *_spread(client, X, y))
    dX, dy, dw = _spread(client, X_test, y_test, weights, split=split)
    dvalid = xgb.dask.DaskDMatrix(client, dX, dy, weight=dw)
    output = xgb.dask.train(client, params, dtrain, rounds, obj=objective,
                            evals=[(dvalid, "valid")], custom_metric=metric)
    logged = output["history"]["valid"][metric.name]
    assert len(logged) == rounds
    booster = output["booster"]
    for r in range(rounds):
        margins = booster.predict(xgb.DMatrix(X_test), output_margin=True,
                                  iteration_range=(0, r + 1))
        whole = scale * (focal.softmax_loss(margins.astype(np.float64), y_test.astype(np.intp),
                                            weights=weights) if multiclass
                         else focal.loss(margins.astype(np.float64), y_test, weights=weights))
        # (XGBoost logs a custom metric's value with six decimals)
        assert abs(logged[r] - whole) <= 1e-6 * abs(whole) + 1e-6, (r, logged[r], whole)


# LightGBM's Dask estimator warns that it replaces n_jobs (a parameter of every
# estimator) with the workers' threads, whatever n_jobs is
@pytest.mark.filterwarnings("ignore:Parameter n_jobs will be ignored:UserWarning")
def test_lightgbm_dask_classifier_matches_single_machine(client, data):
    lgb = _library("lightgbm")
    X, y, X_test, y_test = data
    start = focal.prior_bias(y.mean())
    params = dict(n_estimators=30, learning_rate=0.1, num_leaves=15, verbose=-1,
                  deterministic=True)
    dX, dy, dstart = _spread(client, X, y, np.full(len(y), start))
    model = lgb.DaskLGBMClassifier(client=client, objective=focal.lightgbm_objective(),
                                   **params)
    model.fit(dX, dy, init_score=dstart)
    cluster_margins = start + model.to_local().predict(X_test, raw_score=True)
    single = lgb.LGBMClassifier(objective=focal.lightgbm_objective(), n_jobs=1, **params)
    single.fit(X, y, init_score=np.full(len(y), start))
    single_margins = start + single.predict(X_test, raw_score=True)
    cluster_ap = _average_precision(y_test, cluster_margins)
    single_ap = _average_precision(y_test, single_margins)
    print(f"LightGBM held-out AP: cluster {cluster_ap:.4f}, single machine {single_ap:.4f}")
    assert single_ap > AP_FLOOR and cluster_ap > AP_FLOOR
    assert abs(cluster_ap - single_ap) <= AP_TOLERANCE


# --- chunked arrays on the cluster ----------------------------------------------------------

def test_focal_dask_on_the_workers(client):
    """The graphs of focal.dask, closures included, compute on the workers to
    the in-memory result; the driver receives the loss and gradient only."""
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(3000, 4)), rng.integers(-1, 5, 3000)
    w = rng.uniform(size=(3000, 1))
    X, T, W = _spread(client, x, t, w)
    X, T, W = X.rechunk((500, 4)), T.rechunk(500), W.rechunk((500, 1))
    for reduction in ["mean", "sum_over_positives"]:
        lazy = fd.loss_and_grad(X, T, weights=W, reduction=reduction)
        value, gradient = client.compute(list(lazy), sync=True)
        expected = focal.loss_and_grad(x, t, weights=w, reduction=reduction)
        np.testing.assert_allclose(value, expected[0], rtol=1e-12, atol=0)
        np.testing.assert_allclose(gradient, expected[1], rtol=1e-12, atol=0)
    labels = t.clip(0, 3)
    lazy = fd.softmax_loss_and_grad(X, da.from_array(labels, chunks=500), alpha=0.25)
    value, gradient = client.compute(list(lazy), sync=True)
    expected = focal.softmax_loss_and_grad(x, labels, alpha=0.25)
    np.testing.assert_allclose(value, expected[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(gradient, expected[1], rtol=1e-12, atol=0)

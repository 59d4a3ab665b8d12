"""Multi-class boosting: focal.softmax_grad_hess (the diagonal of the softmax
focal loss's hessian) and the objectives made with ``multiclass=True``."""
import copy
import importlib
import inspect
import os
import pickle
import re
import warnings

import mpmath
import numpy as np
import pytest

import focal
from focal import _gbdt


def _library(name):
    if os.environ.get("FOCAL_REQUIRE_GBDT"):
        return importlib.import_module(name)
    return pytest.importorskip(name)


def _make_objective(name, *args, **kwargs):
    return {"xgboost": focal.xgboost_objective,
            "lightgbm": focal.lightgbm_objective}[name](*args, **kwargs)


# --- the second derivative against 50-digit arithmetic --------------------------------------

def _mp_loss(z, c, a, gamma):
    m = max(z)
    total = mpmath.fsum(mpmath.exp(v - m) for v in z)
    p = mpmath.exp(z[c] - m) / total
    q = mpmath.fsum(mpmath.exp(v - m) for j, v in enumerate(z) if j != c) / total
    return -a * q ** gamma * mpmath.log(p)


def _mp_diagonal(z, c, a, gamma):
    """d2FL/dz_j^2 by mpmath's numerical differentiation at 50 digits."""
    with mpmath.workdps(50):
        z = [mpmath.mpf(float(v)) for v in z]
        values = []
        for j in range(len(z)):
            def along(t, j=j):
                return _mp_loss(z[:j] + [t] + z[j + 1:], c, a, mpmath.mpf(gamma))
            values.append(mpmath.diff(along, z[j], 2))
        return np.array([float(v) for v in values])


def _rows():
    rng = np.random.default_rng(7)
    rows = [([30.0, 0.0, -5.0], 0), ([30.0, 0.0, -5.0], 1), ([0.0, 0.0, 0.0, 0.0], 3),
            ([12.0, 12.0, 0.0], 1), ([-20.0, 5.0], 0), ([1e-3, 0.0, 2e-3], 2)]
    for _ in range(40):
        k = int(rng.integers(2, 7))
        rows.append((list(rng.normal(size=k) * rng.choice([0.3, 2.0, 8.0])), int(rng.integers(k))))
    return rows


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0])
@pytest.mark.parametrize("dtype, ulps", [(np.float32, 1), (np.float64, 8)])
def test_hessian_diagonal_matches_mpmath(gamma, dtype, ulps):
    """Within `ulps` ULP of the terms' size: the softmax bound of the issue
    (8) in float64, computed in double and rounded once in float32."""
    eps = float(np.finfo(dtype).eps) / 2
    for z, c in _rows():
        z = list(np.array(z, dtype).astype(float))
        a = 0.7
        alpha = np.full(len(z), 0.3)
        alpha[c] = a
        _, h = focal.softmax_grad_hess(np.array([z], dtype), np.array([c]), alpha, gamma)
        reference = _mp_diagonal(z, c, a, gamma)
        p = np.exp(np.array(z) - max(z))
        p /= p.sum()
        # the terms' size: cancellation near a zero of the diagonal is allowed
        # relative to them, not to the (small) result
        scale = np.abs(reference) + a * p * (1 + gamma * (2 + abs(np.log(p[c]))))
        assert np.all(np.abs(h[0] - reference) <= ulps * eps * scale), (z, c, h[0], reference)


def test_gamma_zero_is_softmax_cross_entropy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)) * 4
    y = rng.integers(6, size=500)
    g, h = focal.softmax_grad_hess(x, y, None, 0.0)
    e = np.exp(x - x.max(1, keepdims=True))
    total = e.sum(1, keepdims=True)
    others = (e[:, None, :] * (1 - np.eye(6))).sum(-1)  # the other classes' share
    p, one_minus_p = e / total, others / total  # 1 - p without rounding p first
    onehot = np.eye(6)[y]
    np.testing.assert_allclose(g, np.where(onehot == 1, -one_minus_p, p), rtol=1e-13, atol=0)
    np.testing.assert_allclose(h, p * one_minus_p, rtol=1e-13, atol=0)


def test_gradient_is_softmax_grad():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5)) * 3
    y = rng.integers(5, size=300)
    w = rng.random(300)
    alpha = rng.random(5)
    for dtype in (np.float32, np.float64):
        g, _ = focal.softmax_grad_hess(x.astype(dtype), y, alpha, 1.5, weights=w)
        expected = focal.softmax_grad(x.astype(dtype), y, alpha, 1.5, weights=w, reduction="sum")
        np.testing.assert_array_equal(g, expected)


def test_hessian_against_jax_where_installed():
    jax = pytest.importorskip("jax")
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # (restored below: other tests run in float32)
    try:
        _check_against_jax(jax)
    finally:
        jax.config.update("jax_enable_x64", x64)


def _check_against_jax(jax):
    jnp = jax.numpy

    def row_loss(z, c, gamma):
        log_p = jax.nn.log_softmax(z)
        return -(1 - jnp.exp(log_p[c])) ** gamma * log_p[c]

    rng = np.random.default_rng(3)
    for gamma in (0.5, 1.0, 2.0, 3.0):
        for _ in range(10):
            z = rng.normal(size=5) * 2
            c = int(rng.integers(5))
            expected = np.diag(np.asarray(jax.hessian(row_loss)(jnp.asarray(z), c, gamma)))
            _, h = focal.softmax_grad_hess(z[None], np.array([c]), None, gamma)
            np.testing.assert_allclose(h[0], expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_nan_for_finite_logits(dtype):
    """q = 1 - p_c -> 0 makes q^(gamma - 1) and q^(gamma - 2) unbounded; the
    products are written bounded, so every finite row gives finite values."""
    big = float(np.finfo(dtype).max)
    rows = [[50.0, 0.0, 0.0], [800.0, 0.0, 0.0], [0.0, 0.0, 800.0], [big, -big, 0.0],
            [40.0, 40.0, 0.0], [-745.0, 0.0, 0.0], [3.0, -800.0], [1e-30, 0.0]]
    for z in rows:
        for c in range(len(z)):
            for gamma in (0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 5.0, 50.0):
                g, h = focal.softmax_grad_hess(np.array([z], dtype), np.array([c]), None, gamma)
                assert np.isfinite(g).all() and np.isfinite(h).all(), (z, c, gamma, g, h)


def test_well_classified_limit():
    """The label's diagonal as 1 - p_c -> 0: p q (G - C) with G -> (gamma + 1) q^gamma."""
    for gamma in (0.5, 1.0, 2.0):
        z = np.array([[40.0, 0.0, 0.0]])
        _, h = focal.softmax_grad_hess(z, np.array([0]), None, gamma)
        q = 2 * np.exp(-40.0)  # 1 - p_0 to 1e-17 relative
        # G - C -> q^gamma (1 + 2 gamma + gamma^2 h - gamma L), h -> 1, L -> q
        expected = q * q ** gamma * (1 + 2 * gamma + gamma ** 2)
        np.testing.assert_allclose(h[0, 0], expected, rtol=1e-12)


def test_float32_is_float64_rounded():
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(2000, 7)) * 5).astype(np.float32)
    y = rng.integers(7, size=2000)
    g32, h32 = focal.softmax_grad_hess(x, y, None, 2.0)
    g64, h64 = focal.softmax_grad_hess(x.astype(np.float64), y, None, 2.0)
    assert h32.dtype == g32.dtype == np.float32
    ulp = np.spacing(np.abs(h64).astype(np.float32))
    assert np.all(np.abs(h32 - h64) <= ulp)


def _numpy_diagonal(x, y, gamma):
    """The diagonal from the derivation's own formula (test reference only)."""
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    rows = np.arange(len(y))
    pc = p[rows, y]
    q, log_p = 1 - pc, np.log(pc)
    g = q ** (gamma - 1) * (-gamma * pc * log_p + q)
    g_prime = (-(gamma - 1) * q ** (gamma - 2) * (-gamma * pc * log_p + q)
               + q ** (gamma - 1) * (-gamma * log_p - gamma - 1))
    e = np.eye(x.shape[1])[y] - p
    return p * (1 - p) * g[:, None] - pc[:, None] * e ** 2 * g_prime[:, None]


def test_rows_longer_than_a_piece():
    """Rows of more classes than the row code holds at once (2048) are read in pieces."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 2100)) * 2
    x[0, 17] = 12.0  # a confident row
    y = np.array([17, 2099, 1000])
    _, h = focal.softmax_grad_hess(x, y, None, 2.0)
    np.testing.assert_allclose(h, _numpy_diagonal(x, y, 2.0), rtol=1e-9, atol=1e-18)
    short = x[:, :1500]
    _, h_short = focal.softmax_grad_hess(short, y % 1500, None, 2.0)
    np.testing.assert_allclose(h_short, _numpy_diagonal(short, y % 1500, 2.0), rtol=1e-9,
                               atol=1e-18)


def test_weights_alpha_ignore_and_axis():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 4)) * 3
    y = rng.integers(4, size=50)
    y[[3, 9]] = -100
    w = rng.random(50) * 3
    alpha = np.array([0.1, 0.2, 0.3, 0.9])
    g, h = focal.softmax_grad_hess(x, y, alpha, 2.0, weights=w)
    g1, h1 = focal.softmax_grad_hess(x, y, None, 2.0)
    factor = (w * alpha[np.where(y >= 0, y, 0)])[:, None]
    np.testing.assert_allclose(h, factor * h1, rtol=1e-14, atol=0)
    np.testing.assert_allclose(g, factor * g1, rtol=1e-14, atol=0)
    assert not h[[3, 9]].any() and not g[[3, 9]].any()
    gt, ht = focal.softmax_grad_hess(np.ascontiguousarray(x.T), y, alpha, 2.0, axis=0, weights=w)
    np.testing.assert_array_equal(ht, h.T)
    np.testing.assert_array_equal(gt, g.T)


def test_hessian_is_deterministic_across_threads():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(40000, 5)).astype(np.float32)
    y = rng.integers(5, size=40000)
    threads = focal.get_num_threads()
    try:
        focal.set_num_threads(1)
        serial = focal.softmax_grad_hess(x, y, None, 2.0)
        focal.set_num_threads(4)
        parallel = focal.softmax_grad_hess(x, y, None, 2.0)
    finally:
        focal.set_num_threads(threads)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_softmax_grad_hess_bad_input():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="^labels: softmax_grad_hess takes integer class"):
        focal.softmax_grad_hess(x, np.eye(4)[:3])
    with pytest.raises(ValueError, match="^labels: "):
        focal.softmax_grad_hess(x, np.array([0, 4, 1]))
    with pytest.raises(TypeError, match="^labels: "):
        focal.softmax_grad_hess(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="^gamma: "):
        focal.softmax_grad_hess(x, np.array([0, 1, 2]), None, -1.0)
    with pytest.raises(ValueError, match="^weights: "):
        focal.softmax_grad_hess(x, np.array([0, 1, 2]), weights=np.array([1.0, -1.0, 1.0]))


def test_inputs_unchanged():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.integers(3, size=20)
    w = rng.random(20)
    copies = [a.copy() for a in (x, y, w)]
    focal.softmax_grad_hess(x, y, [0.2, 0.3, 0.5], 2.0, weights=w)
    focal.xgboost_objective(multiclass=True)(y.astype(np.float32), x, w)
    for a, b in zip((x, y, w), copies):
        np.testing.assert_array_equal(a, b)


# --- the objectives ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("scale", [1.0, "xgboost", "lightgbm", 0.5])
def test_objective_is_scaled_floored_grad_hess(name, scale):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(400, 5)) * 4
    y = rng.integers(5, size=400)
    w = rng.random(400) * 2
    alpha = [0.1, 0.3, 0.5, 0.7, 0.9]
    objective = _make_objective(name, alpha, 1.5, hessian_floor=0.02, multiclass=True,
                                hessian_scale=scale)
    grad, hess = objective(y.astype(float), x, w)
    g, h = focal.softmax_grad_hess(x, y, alpha, 1.5, weights=w)
    factor = {1.0: 1.0, 0.5: 0.5, "xgboost": 2.0, "lightgbm": 5 / 4}[scale]
    np.testing.assert_array_equal(grad, g)
    np.testing.assert_allclose(hess, np.maximum(factor * h, 0.02 * w[:, None]), rtol=1e-15)
    assert (h < 0).any()  # the floor did bind


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_large_scale_keeps_the_digits_of_float32_hessians_below_the_normal_range(name,
                                                                                  weighted):
    """float32 margins: a hessian below float32's normal range kept few digits
    before a scale of 1e30 multiplied it into the normal range (1.4e-15 for
    9.2e-16; review 83).  Such rows are taken in float64 and rounded once,
    after the scale; the others keep the float32 call's values times the
    scale."""
    margins = np.array([[-1e-30, -88.7, 15.0], [0.1, 0.2, 0.3], [-1e-30, -95.0, 14.0]],
                       np.float32)
    labels = np.array([1.0, 2.0, 1.0])
    objective = _make_objective(name, None, 0.0, hessian_floor=float(np.finfo(np.float32).tiny),
                                multiclass=True, hessian_scale=1e30)
    weights = np.array([0.5, 1.0, 0.75]) if weighted else None
    grad, hess = objective(labels, margins, weights)
    hess = np.asarray(hess).reshape(margins.shape)
    assert hess.dtype == np.float32
    for row in (0, 2):
        z = [float(v) for v in margins[row]]
        exact = _mp_diagonal(z, int(labels[row]), mpmath.mpf(1), 0.0)
        for j in range(3):
            expected = np.float32(exact[j] * 1e30 * (weights[row] if weighted else 1.0))
            assert abs(float(hess[row, j]) - float(expected)) <= float(np.spacing(expected)), (
                row, j, hess[row, j], expected)
    plain = focal.softmax_grad_hess(margins[1:2], labels[1:2].astype(np.intp), None, 0.0)[1]
    np.testing.assert_array_equal(hess[1], (plain * np.float32(1e30))[0])


def test_metrics_warn_of_the_probabilities_of_a_built_in_objective():
    """Next to XGBoost's multi:softprob or LightGBM's multiclass, the metric is
    handed probabilities, whose softmax it would score without a word (0.370
    reported for the margins' 0.231; review 84): a UserWarning names the
    array.  Next to focal's objective (margins) there is none."""
    xgboost, lightgbm = _library("xgboost"), _library("lightgbm")
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(200, 4)), rng.integers(0, 3, 200)
    data = xgboost.DMatrix(x, y)
    with pytest.warns(UserWarning, match=r"^predt: every row lies in \[0, 1\] and sums to 1"):
        xgboost.train({"num_class": 3, "objective": "multi:softprob",
                       "disable_default_eval_metric": True}, data, 2, evals=[(data, "train")],
                      custom_metric=focal.xgboost_metric(multiclass=True), verbose_eval=False)
    with pytest.warns(UserWarning, match=r"^preds: every row lies in \[0, 1\] and sums to 1"):
        train = lightgbm.Dataset(x, y)
        lightgbm.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, train, 2,
                       valid_sets=[train], feval=focal.lightgbm_metric(multiclass=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # margins all equal (starting margins of 1/K) are not taken for probabilities
        metric = focal.xgboost_metric(multiclass=True)
        metric(np.full((200, 3), 1 / 3), data)
        xgboost.train({"num_class": 3, "disable_default_eval_metric": True}, data, 2,
                      obj=focal.xgboost_objective(multiclass=True), evals=[(data, "train")],
                      custom_metric=focal.xgboost_metric(multiclass=True), verbose_eval=False)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_objective_repr_equality_pickle(name):
    objective = _make_objective(name, [0.2, 0.8], 1, hessian_floor=1e-3, multiclass=True,
                                hessian_scale="lightgbm")
    kind = {"xgboost": "XGBoost", "lightgbm": "LightGBM"}[name]
    assert type(objective).__name__ == f"{kind}MulticlassObjective"
    assert (objective.alpha, objective.gamma, objective.hessian_floor,
            objective.hessian_scale) == ((0.2, 0.8), 1.0, 1e-3, "lightgbm")
    assert repr(objective) == (f"{kind}MulticlassObjective(alpha=(0.2, 0.8), gamma=1.0, "
                               "hessian_floor=0.001, hessian_scale='lightgbm')")
    x = np.random.default_rng(0).normal(size=(6, 2))
    y = np.array([0, 1, 1, 0, 1, 0.0])
    for clone in (pickle.loads(pickle.dumps(objective)), copy.deepcopy(objective)):
        assert clone == objective and hash(clone) == hash(objective)
        assert type(clone) is type(objective)
        for a, b in zip(clone(y, x), objective(y, x)):
            np.testing.assert_array_equal(a, b)
    defaults = _make_objective(name, multiclass=True)
    assert (defaults.alpha, defaults.gamma, defaults.hessian_floor,
            defaults.hessian_scale) == (None, 2.0, 0.01, 1.0)
    assert defaults != _make_objective(name, multiclass=True, hessian_scale=2.0)
    assert _make_objective(name).alpha == 0.25  # the binary default is unchanged


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_objective_bad_input(name):
    objective = _make_objective(name, multiclass=True)
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"^y_pred: .*shape \(n, K\).*got shape \(12,\)"):
        objective(np.zeros(4), x.reshape(-1))
    with pytest.raises(ValueError, match=r"^y_pred: .*K >= 2.*got shape \(4, 1\)"):
        objective(np.zeros(4), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"^y_pred: .*for the 5 labels"):
        objective(np.zeros(5), x)
    with pytest.raises(ValueError, match=r"^y: expected class indices 0\.\.2 .*got 3 at index 1"):
        objective(np.array([0, 3, 1, 2.0]), x)
    with pytest.raises(ValueError, match=r"^y: expected class indices .*got -1 at index 2"):
        objective(np.array([0, 1, -1, 2.0]), x)
    with pytest.raises(ValueError, match=r"^y: expected class indices .*got 0\.5 at index 0"):
        objective(np.array([0.5, 1, 1, 2.0]), x)
    with pytest.raises(ValueError, match=r"^y_pred: expected finite margins"):
        objective(np.zeros(4), np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match=r"^sample_weight: expected finite non-negative"):
        _gbdt.XGBoostMulticlassObjective()(np.zeros(4), x, np.array([1, -1, 1, 1.0]))
    with pytest.raises(ValueError, match=r"^alpha: 2 values for 3 classes"):
        _make_objective(name, [0.5, 0.5], multiclass=True)(np.zeros(4), x)
    with pytest.raises(ValueError, match=r"^alpha: "):
        _make_objective(name, 0.25, multiclass=True)
    with pytest.raises(ValueError, match=r"^alpha: "):
        _make_objective(name, [0.5, 1.5], multiclass=True)
    with pytest.raises(ValueError, match=r"^hessian_scale: "):
        _make_objective(name, multiclass=True, hessian_scale="catboost")
    with pytest.raises(ValueError, match=r"^hessian_scale: "):
        _make_objective(name, multiclass=True, hessian_scale=0.0)
    with pytest.raises(ValueError, match=r"^hessian_scale: applies to multiclass=True only"):
        _make_objective(name, hessian_scale="xgboost")
    with pytest.raises(TypeError, match=r"^multiclass: "):
        _make_objective(name, multiclass="yes")
    with pytest.raises(ValueError, match=r"^hessian_floor: "):
        _make_objective(name, multiclass=True, hessian_floor=0.0)


def _data(n=600, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = np.argmax(X[:, :k] + 0.7 * rng.normal(size=(n, k)), axis=1).astype(float)
    return X, y, rng.uniform(0.5, 2.0, n)


_LEAF = re.compile(r"leaf=([-0-9.e+]+)")


def test_xgboost_scale_reproduces_softprob():
    """With gamma 0, alpha None and hessian_scale="xgboost", the trees are
    multi:softprob's.  XGBoost computes its softmax in float32 and the
    objective in double from the float32 margins, so gradients differ in
    float32's last bits: the splits are identical, the leaf values agree to
    float32 rounding (1e-5 relative)."""
    xgb = _library("xgboost")
    X, y, w = _data()
    params = {"num_class": 4, "max_depth": 3, "nthread": 1, "base_score": 0.0, "eta": 0.3}
    data = xgb.DMatrix(X, y, weight=w)
    builtin = xgb.train({**params, "objective": "multi:softprob"}, data, 5)
    objective = focal.xgboost_objective(None, 0.0, multiclass=True, hessian_scale="xgboost",
                                        hessian_floor=1e-16)
    custom = xgb.train({**params, "disable_default_eval_metric": True}, data, 5, obj=objective)
    a, b = builtin.get_dump(), custom.get_dump()
    assert [_LEAF.sub("leaf", t) for t in a] == [_LEAF.sub("leaf", t) for t in b]
    leaves_a = np.array([float(v) for t in a for v in _LEAF.findall(t)])
    leaves_b = np.array([float(v) for t in b for v in _LEAF.findall(t)])
    np.testing.assert_allclose(leaves_b, leaves_a, rtol=1e-5)
    np.testing.assert_allclose(custom.predict(data, output_margin=True),
                               builtin.predict(data, output_margin=True), rtol=0, atol=1e-6)
    # without the scale the steps are twice as long: other trees
    unscaled = xgb.train({**params, "disable_default_eval_metric": True}, data, 5,
                         obj=focal.xgboost_objective(None, 0.0, multiclass=True,
                                                     hessian_floor=1e-16))
    assert unscaled.get_dump() != builtin.get_dump()


def test_lightgbm_scale_reproduces_multiclass():
    """With gamma 0, alpha None and hessian_scale="lightgbm", the trees are
    LightGBM's multiclass objective's, bit for bit (both in double)."""
    lgb = _library("lightgbm")
    X, y, w = _data()
    params = {"num_class": 4, "num_leaves": 8, "num_threads": 1, "verbose": -1,
              "boost_from_average": False, "learning_rate": 0.3}
    builtin = lgb.train({**params, "objective": "multiclass"}, lgb.Dataset(X, y, weight=w), 5)
    objective = focal.lightgbm_objective(None, 0.0, multiclass=True, hessian_scale="lightgbm",
                                         hessian_floor=1e-16)
    custom = lgb.train({**params, "objective": objective}, lgb.Dataset(X, y, weight=w), 5)
    trees = [t["tree_structure"] for t in builtin.dump_model()["tree_info"]]
    assert trees == [t["tree_structure"] for t in custom.dump_model()["tree_info"]]
    np.testing.assert_array_equal(custom.predict(X, raw_score=True),
                                  builtin.predict(X, raw_score=True))


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_focal_training_both_forms(name):
    """gamma 2 trains in the native and the scikit-learn form, with weights,
    and the model pickles (as it ships to Dask workers)."""
    lib = _library(name)
    X, y, w = _data(seed=1)
    objective = _make_objective(name, gamma=2.0, multiclass=True)
    if name == "xgboost":
        booster = lib.train({"num_class": 4, "max_depth": 3, "nthread": 1, "base_score": 0.0,
                             "disable_default_eval_metric": True},
                            lib.DMatrix(X, y, weight=w), 10, obj=objective)
        margins = booster.predict(lib.DMatrix(X), output_margin=True)
        model = lib.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1, objective=objective)
        model.fit(X, y.astype(int), sample_weight=w)
        proba = model.predict_proba(X)
    else:
        booster = lib.train({"num_class": 4, "num_leaves": 8, "num_threads": 1, "verbose": -1,
                             "objective": objective}, lib.Dataset(X, y, weight=w), 10)
        margins = booster.predict(X, raw_score=True)
        model = lib.LGBMClassifier(n_estimators=10, num_leaves=8, n_jobs=1, verbose=-1,
                                   objective=objective)
        model.fit(X, y.astype(int), sample_weight=w)
        raw = model.predict(X, raw_score=True)
        proba = np.exp(raw - raw.max(1, keepdims=True))
        proba /= proba.sum(1, keepdims=True)
    assert margins.shape == proba.shape == (600, 4)
    assert np.isfinite(margins).all()
    assert np.mean(margins.argmax(1) == y) > 0.6
    assert np.mean(proba.argmax(1) == y) > 0.6
    restored = pickle.loads(pickle.dumps(model))
    assert restored.get_params()["objective"] == objective


def test_results_are_the_only_allocations():
    """No copy of the logits, also along axis 0 (read in place): the peak is
    the two results and the row buffers."""
    import tracemalloc

    rng = np.random.default_rng(11)
    x = rng.normal(size=(10, 40000)).astype(np.float32)
    y = rng.integers(10, size=40000)
    focal.softmax_grad_hess(x, y, None, 2.0, axis=0)  # warm up
    tracemalloc.start()
    try:
        g, h = focal.softmax_grad_hess(x, y, None, 2.0, axis=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * x.nbytes + (1 << 20)
    for result in (g, h):
        for argument in (x, y):
            assert not np.shares_memory(result, argument)
    assert not np.shares_memory(g, h)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_binary_objective_takes_scale_one_only(name):
    assert _make_objective(name, hessian_scale=np.float64(1.0)) == _make_objective(name)
    with pytest.raises(ValueError, match=r"^hessian_scale: applies to multiclass=True only"):
        _make_objective(name, hessian_scale=2)
    with pytest.raises(ValueError, match=r"^hessian_scale: expected"):
        _make_objective(name, hessian_scale=float("nan"))


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_hessian_scale_past_float32_is_refused_when_made(name):
    """Both libraries store hessians in float32: a factor beyond its largest
    number is refused by name when the objective is made."""
    largest = float(np.finfo(np.float32).max)
    for scale in (1e39, np.nextafter(largest, np.inf), np.float64(1e300), 1e308):
        with pytest.raises(ValueError, match=r"^hessian_scale: expected .*float32's largest"):
            _make_objective(name, multiclass=True, hessian_scale=scale)
    assert _make_objective(name, multiclass=True, hessian_scale=largest).hessian_scale == largest


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflowing_products_name_their_cause_without_a_warning(name, dtype):
    """A scaled hessian past float32 names hessian_scale, a weighted one the
    weights, a floor times a weight the weights; no NumPy warning escapes."""
    largest = float(np.finfo(np.float32).max)
    x = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [-2.5, 0.0, 0.0]], dtype)
    y = np.array([0.0, 1.0, 2.0, 0.0])
    # at gamma 50 the diagonal of the last row is above 1, so the largest scale
    # overflows it (computed apart from the objective)
    _, diagonal = focal.softmax_grad_hess(x, y.astype(np.intp), None, 50.0)
    assert diagonal.max() > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^hessian_scale: .* times the focal hessian of "
                                             r"sample 3, up to .* overflows float32"):
            _make_objective(name, gamma=50.0, multiclass=True, hessian_scale=largest)(y, x)
        # the same factor at gamma 0 (diagonal p (1 - p) <= 1/4) fits
        _, hess = _make_objective(name, gamma=0.0, multiclass=True, hessian_scale=largest)(y, x)
        assert np.isfinite(hess.astype(np.float32)).all()
        with pytest.raises(ValueError, match=r"^sample_weight: the weight 1\.329228e\+36 at "
                                             r"index 3 "):
            _make_objective(name, gamma=50.0, multiclass=True, hessian_scale=1000.0)(
                y, x, np.array([1.0, 1.0, 1.0, 2.0**120], dtype))
        with pytest.raises(ValueError, match=r"^sample_weight: the weight 3\.4e\+38 at index 1 "):
            _make_objective(name, multiclass=True, hessian_floor=3e38)(
                y, x, np.array([1.0, 3.4e38, 1.0, 1.0], dtype))


# --- the multi-class evaluation metrics ------------------------------------------------------

def _make_metric(name, *args, **kwargs):
    return {"xgboost": focal.xgboost_metric,
            "lightgbm": focal.lightgbm_metric}[name](*args, **kwargs)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("alpha", [None, [0.2, 0.3, 0.4, 0.1]])
def test_multiclass_metric_is_the_softmax_focal_loss_of_the_margins(name, alpha):
    """Through each library's native training with weights, and its scikit-learn
    estimator: the value every round reports is the weighted softmax focal loss of
    that round's margins (recomputed from the model cut at that round)."""
    library = _library(name)
    X, y, w = _data()
    metric = _make_metric(name, alpha, 2.0, multiclass=True)
    objective = _make_objective(name, alpha, 2.0, multiclass=True)
    history = {}
    if name == "xgboost":
        train = library.DMatrix(X, y, weight=w)
        booster = library.train({"num_class": 4, "nthread": 1, "max_depth": 3,
                                 "disable_default_eval_metric": True}, train, 6,
                                evals=[(train, "train")], obj=objective, custom_metric=metric,
                                evals_result=history, verbose_eval=False)
        reported = history["train"]["focal"]
        margins = [booster.predict(library.DMatrix(X), output_margin=True,
                                   iteration_range=(0, r + 1)) for r in range(6)]
        decimals = 6  # (XGBoost logs custom metrics with "%f" and reads them back)
    else:
        train = library.Dataset(X, y, weight=w)
        booster = library.train({"num_class": 4, "objective": objective, "metric": "None",
                                 "num_threads": 1, "verbose": -1, "num_leaves": 7}, train, 6,
                                valid_sets=[train], valid_names=["train"], feval=metric,
                                callbacks=[library.record_evaluation(history)])
        reported = history["train"]["focal"]
        margins = [booster.predict(X, raw_score=True, num_iteration=r + 1) for r in range(6)]
        decimals = None
    assert len(reported) == 6 and reported[-1] < reported[0]
    for value, z in zip(reported, margins):
        exact = float(focal.softmax_loss(z, y.astype(np.intp), alpha, 2.0, weights=w))
        if decimals is None:
            assert value == pytest.approx(exact, rel=1e-9)
        else:
            assert value == pytest.approx(exact, abs=0.51 * 10.0 ** -decimals)
    # the scikit-learn form: (y_true, y_pred) of shape (n,) and (n, K)
    if name == "xgboost":
        model = library.XGBClassifier(n_estimators=4, max_depth=3, n_jobs=1, objective=objective,
                                      eval_metric=metric)
        model.fit(X, y, eval_set=[(X, y)], verbose=False)
        value = model.evals_result()["validation_0"]["focal"][-1]
        z = model.predict(X, output_margin=True)
        assert value == pytest.approx(float(focal.softmax_loss(z, y.astype(np.intp), alpha)),
                                      abs=0.51e-6)
    else:
        model = library.LGBMClassifier(n_estimators=4, num_leaves=7, n_jobs=1, verbose=-1,
                                       objective=objective)
        # (eval_X/eval_y from LightGBM 4.7 on, eval_set before, which 4.7 deprecates)
        data = ({"eval_X": X, "eval_y": y} if "eval_X" in inspect.signature(model.fit).parameters
                else {"eval_set": [(X, y)]})
        model.fit(X, y, sample_weight=w, eval_sample_weight=[w], eval_metric=metric, **data)
        value = next(iter(model.evals_result_.values()))["focal"][-1]
        z = model.predict(X, raw_score=True)
        exact = float(focal.softmax_loss(z, y.astype(np.intp), alpha, weights=w))
        assert value == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_multiclass_metric_refuses_by_name(name):
    metric = _make_metric(name, multiclass=True)
    weights = "sample_weight_eval_set" if name == "xgboost" else "eval_sample_weight"
    z = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"^y_true: expected class indices 0\.\.2 .*got 3 at "
                                         r"index 2"):
        metric(np.array([0.0, 1.0, 3.0]), z)
    with pytest.raises(ValueError, match=r"^y_true: .*got 0\.5 at index 1"):
        metric(np.array([0.0, 0.5, 1.0]), z)
    with pytest.raises(ValueError, match=r"^y_pred: the multi-class focal metric expects "
                                         r"margins of shape \(n, K\)"):
        metric(np.array([0.0, 1.0, 1.0]), np.zeros(3))
    with pytest.raises(ValueError, match=r"^y_pred: expected finite margins"):
        metric(np.array([0.0, 1.0, 1.0]), np.array([[0.0, 1.0, 2.0], [0.0, np.nan, 0.0],
                                                     [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=rf"^{weights}: every weight .* is 0"):
        metric(np.array([0.0, 1.0, 1.0]), z, np.zeros(3))
    with pytest.raises(ValueError, match="^y_pred: the evaluation set is empty"):
        metric(np.zeros(0), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"^alpha: 2 values for 3 classes"):
        _make_metric(name, [0.5, 0.5], multiclass=True)(np.array([0.0, 1.0, 2.0]), z)
    with pytest.raises(ValueError, match=r"^alpha: expected None or one value in \[0, 1\] per "
                                         r"class"):
        _make_metric(name, 0.25, multiclass=True)
    with pytest.raises(TypeError, match="^multiclass: expected True or False"):
        _make_metric(name, multiclass="yes")
    # the binary metric names the way to a multi-class one
    with pytest.raises(ValueError, match=r"^y_pred: the focal metric is binary.*use "
                                         r"multiclass=True"):
        _make_metric(name)(np.array([0.0, 1.0, 1.0]), z)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_multiclass_metric_repr_equality_pickle(name):
    metric = _make_metric(name, [0.5, 0.25, 0.25], 1.5, multiclass=True)
    assert metric.alpha == (0.5, 0.25, 0.25) and metric.gamma == 1.5
    assert metric.name == "focal"
    assert repr(metric).startswith(("XGBoostMulticlassMetric(alpha=(0.5, 0.25, 0.25), gamma=1.5",
                                    "LightGBMMulticlassMetric(alpha=(0.5, 0.25, 0.25), gamma=1.5"))
    for copied in (pickle.loads(pickle.dumps(metric)), copy.deepcopy(metric)):
        assert copied == metric and type(copied) is type(metric)
        assert hash(copied) == hash(metric)
    assert metric != _make_metric(name, [0.5, 0.25, 0.25], 2.0, multiclass=True)
    assert _make_metric(name, multiclass=True).alpha is None  # the multi-class default
    assert _make_metric(name).alpha == 0.25
    y = np.array([0.0, 2.0, 1.0, 2.0])
    z = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 2.0, 0.0], [4.0, 0.0, -4.0]])
    result = metric(y, z)
    value = result if name == "xgboost" else result[1]
    assert value == float(focal.softmax_loss(z, y.astype(np.intp), [0.5, 0.25, 0.25], 1.5))

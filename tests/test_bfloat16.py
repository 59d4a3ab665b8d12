"""bfloat16 arrays (ml_dtypes, the dtype of JAX and Keras): accepted where
float16 is, computed in float32, returned as float32."""
import os

import numpy as np
import pytest

import focal
import registry

RNG = np.random.default_rng(16)

if os.environ.get("FOCAL_REQUIRE_ADAPTERS"):  # CI's adapters step (jax brings ml_dtypes)
    import ml_dtypes
else:
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes")
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bfloat16_logits_give_the_float32_result_of_the_upcast(reduction):
    x = RNG.normal(0, 4, size=(6, 5)).astype(BFLOAT16)
    upcast = x.astype(np.float32)
    labels = np.array([0, 1, 5, -1, 2, 4])
    dense = (RNG.uniform(size=(6, 5)) < 0.3)
    for function in (focal.loss, focal.grad, focal.loss_and_grad, focal.star_loss,
                     focal.star_loss_and_grad):
        for t in (labels, dense):
            result, expected = function(x, t, reduction=reduction), function(upcast, t,
                                                                                reduction=reduction)
            for r, e in zip(np.atleast_1d(result) if not isinstance(result, tuple) else result,
                            np.atleast_1d(expected) if not isinstance(expected, tuple)
                            else expected):
                assert np.asarray(r).dtype == np.float32
                np.testing.assert_array_equal(r, e, strict=True)
    g, h = focal.grad_hess(x, labels)
    g32, h32 = focal.grad_hess(upcast, labels)
    assert g.dtype == h.dtype == np.float32
    np.testing.assert_array_equal(g, g32)
    np.testing.assert_array_equal(h, h32)
    rows = np.array([0, 1, 4, -100, 2, 3])
    for axis in (0, 1):
        t = rows[:5] if axis == 0 else rows
        value = focal.softmax_loss_and_grad(x, t, axis=axis, reduction=reduction)
        expected = focal.softmax_loss_and_grad(upcast, t, axis=axis, reduction=reduction)
        for r, e in zip(value, expected):
            np.testing.assert_array_equal(r, e, strict=True)


def test_bfloat16_targets_weights_and_alpha_are_read_like_float16():
    x = RNG.normal(size=(5, 4)).astype(np.float32)
    y = RNG.uniform(size=(5, 4))
    w = RNG.uniform(size=(5, 1))
    a = RNG.uniform(size=4)
    as_b16 = [v.astype(BFLOAT16) for v in (y, w, a)]
    as_f32 = [v.astype(BFLOAT16).astype(np.float32) for v in (y, w, a)]
    for function in (focal.loss_and_grad, focal.softmax_loss_and_grad):
        got = function(x, as_b16[0], alpha=as_b16[2], weights=as_b16[1][:, 0]
                       if function is focal.softmax_loss_and_grad else as_b16[1])
        want = function(x, as_f32[0], alpha=as_f32[2], weights=as_f32[1][:, 0]
                        if function is focal.softmax_loss_and_grad else as_f32[1])
        for r, e in zip(got, want):
            np.testing.assert_array_equal(r, e, strict=True)


def test_bfloat16_out_must_be_float32_and_inputs_are_unchanged():
    x = RNG.normal(size=(4, 3)).astype(BFLOAT16)
    before = x.copy()
    with pytest.raises(TypeError, match="^out: expected dtype float32"):
        focal.grad(x, np.array([0, 1, 2, 3]), out=x)
    out = np.empty((4, 3), np.float32)
    assert focal.grad(x, np.array([0, 1, 2, 3]), out=out) is out
    np.testing.assert_array_equal(out, focal.grad(x.astype(np.float32), np.array([0, 1, 2, 3])))
    assert x.tobytes() == before.tobytes()


def test_other_ml_dtypes_stay_refused():
    x = np.zeros((2, 3), dtype=ml_dtypes.float8_e4m3fn)
    with pytest.raises(TypeError, match="^logits: expected a real array"):
        focal.loss(x, np.zeros((2, 3)))


@pytest.mark.parametrize("function", [focal.loss, focal.loss_and_grad] + [
    entry.functions["loss_and_grad"] for entry in registry.LOSSES
    if entry.family == "elementwise" and entry.name != "sigmoid"], ids=lambda f: f.__name__)
def test_bfloat16_logits_are_cast_in_the_pass_without_a_copy(function):
    """The elementwise pass casts bfloat16 block by block (NumPy's iterator and
    ml_dtypes' registered cast): no float32 copy of the logits, the same bits."""
    import tracemalloc

    n = 1 << 21  # a float32 copy would be 8 MiB
    x = RNG.normal(0, 4, size=n).astype(BFLOAT16)
    y = (RNG.uniform(size=n) < 0.1).astype(np.float32)
    expected = function(x.astype(np.float32), y)
    tracemalloc.start()
    try:
        result = function(x, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    results = result if isinstance(result, tuple) else (result,)
    returned = sum(np.asarray(r).nbytes for r in results)
    assert peak - returned < 1 << 20, (peak - returned) / 2**20
    for r, e in zip(results, expected if isinstance(expected, tuple) else (expected,)):
        np.testing.assert_array_equal(r, e, strict=True)

"""The vectorised rows of the softmax form (float32 results from class
indices: src/softmax_kernels.c) against the general row code, which computes
the same rows from one-hot dense targets.

Both compute the same formulas from the same inputs; they differ in the
exponential (a polynomial sized for float32 results against the full
series) and in the order of the sums, so their float32 results may differ
by a rounding: at most 1 ULP, and exactly where a result is 0, infinite or
NaN.  Contiguous rows are read in place, any other layout or dtype through a
copy of the row; every instruction-set level the CPU runs is checked, the
AVX2 and AVX-512 levels bitwise against each other (the same fused
operations), and every thread count bitwise against one thread.
"""
import numpy as np
import pytest

import focal
from focal import _core

LEVELS = tuple(_core.supported_simd_levels())
RNG = np.random.default_rng(81)


@pytest.fixture
def simd_level():
    """Sets a level for the test; restores the previous one."""
    previous = _core.simd_level()
    yield _core.set_simd_level
    _core.set_simd_level(previous)


def strided(x):
    """The same values with the class axis strided (and byte-swapped)."""
    wide = np.zeros(x.shape + (2,), dtype=x.dtype.newbyteorder())
    wide[..., 0] = x
    view = wide[..., 0]
    assert not view.flags.c_contiguous
    return view


def one_hot(labels, num_classes, ignore_index=-100):
    """Dense targets of the class indices (ignored rows all zero): the general rows."""
    active = labels != ignore_index
    dense = (labels[..., None] == np.arange(num_classes)) & active[..., None]
    return dense.astype(np.float32), active


def ulp_difference(a, b):
    """|a - b| in float32 ULP of the larger; 0 where both are equal (inf, nan included)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float32))
    with np.errstate(invalid="ignore"):
        difference = np.abs(a.astype(np.float64) - b.astype(np.float64)) / scale
    return np.where(same, 0.0, np.where(np.isfinite(difference), difference, np.inf))


def general_rows(x, labels, reduction="none", weights=None, **kwargs):
    """(loss, grad) of the general row code: one-hot targets, ignored rows
    weighted 0 where a reduction counts them."""
    dense, active = one_hot(labels, x.shape[-1])
    if reduction != "none":
        weights = active * (1.0 if weights is None else weights)
    return focal.softmax_loss_and_grad(x, dense, reduction=reduction, weights=weights, **kwargs)


def special_rows(num_classes):
    """Rows that take every branch of the vectorised pass: ties of the maximum,
    infinities, NaN, spreads beyond the exponential's near range, subnormals."""
    rows = [
        np.zeros(num_classes),                                   # all tied
        np.linspace(-3.0, 3.0, num_classes),
        np.full(num_classes, -np.inf),                           # all -inf
        np.r_[np.inf, np.zeros(num_classes - 1)],                # +inf max
        np.r_[np.zeros(num_classes - 1), -np.inf],
        np.r_[np.zeros(num_classes - 1), np.nan],
        np.r_[1e4, -1e4 * np.ones(num_classes - 1)],             # spread far beyond 746
        np.r_[0.0, -720.0 * np.ones(num_classes - 1)],           # beyond the near range
        np.r_[0.0, -699.0 * np.ones(num_classes - 1)],           # within it
        np.r_[1e-45, np.zeros(num_classes - 1)],                 # a subnormal difference
        np.r_[30.0, 30.0, RNG.normal(size=num_classes - 2)],     # a tie at the top
        RNG.normal(scale=20.0, size=num_classes),
    ]
    return np.array([r[:num_classes] for r in rows], dtype=np.float32)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("num_classes", [2, 3, 7, 8, 9, 15, 16, 17, 81, 300])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 4.0, 12.0])
def test_vectorised_rows_agree_with_the_general_rows(simd_level, level, num_classes, gamma):
    simd_level(level)
    x = np.concatenate([special_rows(num_classes),
                        RNG.normal(scale=3.0, size=(40, num_classes)).astype(np.float32)])
    # every label position, among them the tied maxima and the last (a partial register)
    labels = np.arange(len(x)) % num_classes
    labels[:2] = [num_classes - 1, 1]
    loss_ref, grad_ref = general_rows(x, labels, gamma=gamma)
    for logits in (x, strided(x), x.astype(np.float16)):
        if logits.dtype == np.float16:  # the general rows of the same float16 values
            loss_ref, grad_ref = general_rows(logits, labels, gamma=gamma)
        loss, grad = focal.softmax_loss_and_grad(logits, labels, gamma=gamma, reduction="none")
        assert ulp_difference(loss, loss_ref).max() <= 1.0
        assert ulp_difference(grad, grad_ref).max() <= 1.0
        # the rows with NaN give NaN everywhere, as in the general code
        assert np.isnan(loss[5]) and np.isnan(grad[5]).all()


@pytest.mark.parametrize("level", LEVELS)
def test_weights_alpha_ignore_and_reductions(simd_level, level):
    simd_level(level)
    x = RNG.normal(scale=2.0, size=(6, 50, 21)).astype(np.float32)
    labels = RNG.integers(0, 21, size=(6, 50))
    labels[:, ::7] = -100
    weights = RNG.random((6, 50))
    weights[0, :5] = 0.0
    alpha = RNG.random(21)
    for reduction in ("mean", "sum", "none"):
        for kwargs in ({}, {"weights": weights}, {"alpha": alpha}, {"alpha": 0.25}):
            general = general_rows(x, labels, reduction=reduction, **kwargs)
            for logits, axis in ((x, -1), (np.moveaxis(x, -1, 0), 0)):
                fast = focal.softmax_loss_and_grad(logits, labels, reduction=reduction,
                                                   axis=axis, **kwargs)
                grad = np.moveaxis(fast[1], axis, -1)
                assert ulp_difference(fast[0], general[0]).max() <= 1.0
                assert ulp_difference(grad, general[1]).max() <= 1.0
                assert (grad[labels == -100] == 0).all()


@pytest.mark.skipif(not {"avx2", "avx512"} <= set(LEVELS), reason="needs AVX2 and AVX-512")
def test_avx2_and_avx512_agree_bitwise(simd_level):
    x = np.concatenate([special_rows(81), RNG.normal(scale=4.0, size=(500, 81))]).astype(
        np.float32)
    labels = RNG.integers(0, 81, size=len(x))
    results = []
    for level in ("avx2", "avx512"):
        simd_level(level)
        results.append(focal.softmax_loss_and_grad(x, labels, reduction="none"))
    for a, b in zip(*results):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_any_thread_count_gives_the_same_bits(threads):
    x = RNG.normal(scale=2.0, size=(3, 40000, 81)).astype(np.float32)
    labels = RNG.integers(0, 81, size=(3, 40000))
    previous = focal.get_num_threads()
    try:
        focal.set_num_threads(1)
        one = focal.softmax_loss_and_grad(x, labels)
        focal.set_num_threads(threads)
        many = focal.softmax_loss_and_grad(x, labels)
    finally:
        focal.set_num_threads(previous)
    assert one[0].tobytes() == many[0].tobytes()
    assert np.array_equal(one[1].view(np.uint32), many[1].view(np.uint32))


def test_unaligned_logits_and_gradient():
    """The vectorised rows read and write any alignment."""
    buffer = np.frombuffer(bytearray(13 * 81 * 4 + 2), dtype=np.uint8)
    x = np.ndarray((13, 81), dtype=np.float32, buffer=buffer, offset=1)
    assert not x.flags.aligned
    x[...] = RNG.normal(size=(13, 81))
    labels = RNG.integers(0, 81, size=13)
    out = np.ndarray((13, 81), dtype=np.float32,
                     buffer=np.frombuffer(bytearray(13 * 81 * 4 + 2), dtype=np.uint8), offset=2)
    focal.softmax_grad(x, labels, out=out)
    expected = focal.softmax_grad(np.ascontiguousarray(x), labels)
    assert np.array_equal(out, expected)

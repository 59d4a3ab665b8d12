"""focal.jax against the real JAX and optax: values and gradients under jit, grad, vmap.

float64 runs in a subprocess with jax_enable_x64, so the flag cannot leak
into the other tests.  The tests skip without jax and optax unless
FOCAL_REQUIRE_ADAPTERS is set, as in CI, where a missing library fails.
"""
import array
import doctest
import functools
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import focal

if os.environ.get("FOCAL_REQUIRE_ADAPTERS"):
    import jax
    import optax
else:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

import focal.jax as focal_jax  # noqa: E402
from focal._spec import KINDS  # noqa: E402
from layouts import Index, assert_warns_once_at  # noqa: E402

RTOL32 = 4e-7  # optax's float32 formula against focal's result rounded once


@pytest.fixture(params=["ffi", "callback"])
def transport(request, monkeypatch):
    """Both ways focal.jax reaches the host under a transformation: XLA's FFI
    (the default) and the host callback that serves where a JAX has no FFI.
    JAX's caches are cleared on both sides, so that no computation compiled
    for one way is reused by the other."""
    assert focal_jax._ffi_target() is not None  # this JAX has the FFI: the default way is tested
    if request.param == "callback":
        monkeypatch.setattr(focal_jax, "_USE_FFI", False)
    jax.clear_caches()
    yield request.param
    jax.clear_caches()


def _data(shape, seed=0, scale=2.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * scale).astype(dtype)
    y = (rng.random(shape) < 0.3).astype(dtype)
    return jnp.asarray(x), jnp.asarray(y)


def _optax_softmax_focal(z, labels, gamma=2.0, axis=-1, ignore_index=-100):
    """The softmax focal loss written with optax's integer-label cross-entropy."""
    keep = labels != ignore_index
    z = jnp.moveaxis(z, axis, -1)
    ce = optax.softmax_cross_entropy_with_integer_labels(z, jnp.where(keep, labels, 0))
    return jnp.where(keep, (1 - jnp.exp(-ce)) ** gamma * ce, 0.0)


def _close(ours, theirs, rtol=RTOL32, atol=1e-7):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def test_import_without_jax_names_the_extra():
    code = ("import sys\nsys.modules['jax'] = None\n"
            "try:\n    import focal.jax\nexcept ImportError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "focal[jax]"' in result.stdout


def test_docstring_examples():
    result = doctest.testmod(focal_jax, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# ----------------------------------------------------------------------------
# Sigmoid against optax


@pytest.mark.parametrize("alpha, gamma", [(None, 2.0), (0.25, 2.0), (0.5, 0.0), (0.25, 1.5)])
def test_sigmoid_values_and_gradients_match_optax(alpha, gamma, transport):
    x, y = _data((16, 40), scale=1.0)
    for wrap in (lambda f: f, jax.jit):
        _close(wrap(lambda x: focal_jax.sigmoid_focal_loss(x, y, alpha, gamma))(x),
               optax.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma))

    def grad_of(loss):
        return jax.jit(jax.grad(lambda x: loss(x, y, alpha=alpha, gamma=gamma).mean()))(x)
    _close(grad_of(focal_jax.sigmoid_focal_loss), grad_of(optax.sigmoid_focal_loss), atol=1e-9)
    # the way the fixture asked for is the way taken
    lowered = jax.jit(lambda x: focal_jax.sigmoid_focal_loss(x, y, alpha, gamma)).lower(x)
    assert ("focal_host" in lowered.as_text()) == (transport == "ffi")


@pytest.mark.parametrize("in_axes", [(0, 0), (0, None), (None, 0)])
def test_sigmoid_under_vmap(in_axes, transport):
    x, y = _data((5, 12, 7))
    if in_axes[0] is None:
        x = x[0]
    if in_axes[1] is None:
        y = y[0]

    def per_example(loss):
        return jax.jit(jax.vmap(jax.value_and_grad(lambda x, y: loss(x, y, alpha=0.25).sum()),
                                in_axes=in_axes))

    values, grads = per_example(focal_jax.sigmoid_focal_loss)(x, y)
    their_values, their_grads = per_example(optax.sigmoid_focal_loss)(x, y)
    _close(values, their_values)
    _close(grads, their_grads, atol=1e-9)
    assert grads.shape == (5, 12, 7)


def test_one_focal_pass_for_value_and_gradient(monkeypatch):
    calls = []
    original = focal_jax._sigmoid_entry

    def counted(mode, *args, **kwargs):
        calls.append(mode)
        return original(mode, *args, **kwargs)
    monkeypatch.setattr(focal_jax, "_sigmoid_entry", counted)
    x, y = _data((8, 3))
    value, gradient = jax.value_and_grad(lambda x: focal_jax.sigmoid_focal_loss(x, y).sum())(x)
    assert calls == [KINDS["loss_and_grad"][0]]
    focal_jax.sigmoid_focal_loss(x, y)
    assert calls == [KINDS["loss_and_grad"][0], KINDS["loss"][0]]
    expected = focal.grad(np.asarray(x), np.asarray(y), alpha=None, reduction="none")
    np.testing.assert_array_equal(np.asarray(gradient), expected)


def test_a_refused_handler_leaves_the_callback_serving(monkeypatch):
    """Where XLA refuses focal's FFI handler (an API version outside its
    range, say), registration fails at the first traced call and the host
    callback serves; the backend keeps working."""
    def refuse(*args, **kwargs):
        raise RuntimeError("XLA FFI handler registration for focal_host failed: incompatible "
                           "API version")
    monkeypatch.setattr(focal_jax, "_ffi_registered", None)
    monkeypatch.setattr(jax.ffi, "register_ffi_target", refuse)
    jax.clear_caches()
    try:
        assert focal_jax._ffi_target() is None
        x, y = _data((6, 5))
        loss = lambda x: focal_jax.sigmoid_focal_loss(x, y, 0.25).sum()
        assert "focal_host" not in jax.jit(jax.value_and_grad(loss)).lower(x).as_text()
        value, gradient = jax.jit(jax.value_and_grad(loss))(x)
        expected = focal.loss_and_grad(np.asarray(x), np.asarray(y), reduction="sum")
        np.testing.assert_allclose(float(value), float(expected[0]), rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(gradient), expected[1])
    finally:
        jax.clear_caches()


_EXIT_DURING_A_CALL = textwrap.dedent("""
    import numpy as np, jax, jax.numpy as jnp, focal.jax
    x = jnp.asarray(np.random.default_rng(0).normal(size=3_000_000).astype(np.float32))
    y = (x > 0).astype(jnp.float32)
    step = jax.jit(jax.value_and_grad(lambda x: focal.jax.sigmoid_focal_loss(x, y, 0.25).mean()))
    step(x)[1].block_until_ready()  # compiled, so that the next call runs as the script ends
    step(x)                         # dispatched, never waited for
""")


def test_a_script_that_exits_during_a_call_exits():
    """A script that ends while XLA still runs focal's call: the interpreter
    exits (focal.jax's atexit handler waits for the call, the GIL released,
    and any later call fails at once).  Taking the GIL during finalization
    hung the process (5 runs of 5)."""
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", _EXIT_DURING_A_CALL], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_under_jit_focal_writes_into_xla_s_buffers(form):
    """Under jit, focal is an XLA FFI call that writes its loss and gradient
    into XLA's own buffers: NumPy allocates nothing of their size (a host
    callback's results are new arrays, 4 MiB each here, which JAX copies)."""
    x, y = _data((512, 2048))
    labels = jnp.asarray(np.random.default_rng(1).integers(0, 2048, 512))
    if form == "sigmoid":
        loss = lambda x: focal_jax.sigmoid_focal_loss(x, y, 0.25).mean()
        expected = focal.loss_and_grad(np.asarray(x), np.asarray(y), reduction="mean")
    else:
        loss = lambda z: focal_jax.softmax_focal_loss(z, labels).mean()
        expected = focal.softmax_loss_and_grad(np.asarray(x), np.asarray(labels))
    compiled = jax.jit(jax.value_and_grad(loss))
    assert "focal_host" in compiled.lower(x).as_text()
    compiled(x)[1].block_until_ready()  # compiled before the measured call
    tracemalloc.start()
    try:
        value, gradient = compiled(x)
        gradient.block_until_ready()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"{peak} bytes allocated under tracemalloc"
    # XLA's mean and its gradient's factor 1/n round on their own: close, not the same bits
    np.testing.assert_allclose(float(value), float(expected[0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(gradient), expected[1], rtol=1e-6, atol=1e-12)


def test_class_index_labels(transport):
    x, _ = _data((4, 5))
    labels = jnp.array([0, 5, 2, -1])  # 5: background, -1: ignored
    dense = jnp.asarray(np.eye(6, 5, dtype=np.float32)[[0, 5, 2, 5]])
    ours = focal_jax.sigmoid_focal_loss(x, labels, 0.25)
    _close(ours[:3], focal_jax.sigmoid_focal_loss(x, dense, 0.25)[:3], rtol=0, atol=0)
    assert not np.any(np.asarray(ours[3]))
    g = jax.grad(lambda x: focal_jax.sigmoid_focal_loss(x, labels, 0.25).sum())(x)
    assert not np.any(np.asarray(g[3]))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_is_computed_in_float32(dtype, transport):
    x, y = _data((6, 9), scale=1.0)
    low = x.astype(dtype)
    value, gradient = jax.value_and_grad(
        lambda x: focal_jax.sigmoid_focal_loss(x, y, 0.25).sum())(low)
    assert value.dtype == dtype and gradient.dtype == dtype
    exact, exact_grad = focal.loss_and_grad(np.asarray(low.astype(jnp.float32)), np.asarray(y),
                                            reduction="none")
    np.testing.assert_array_equal(np.asarray(focal_jax.sigmoid_focal_loss(low, y, 0.25)),
                                  np.asarray(jnp.asarray(exact).astype(dtype)))
    np.testing.assert_array_equal(np.asarray(gradient),
                                  np.asarray(jnp.asarray(exact_grad).astype(dtype)))


def test_bad_arguments_are_named():
    x, y = _data((3, 4))
    with pytest.raises(TypeError, match="^labels: .*stop_gradient"):
        jax.grad(lambda y: focal_jax.sigmoid_focal_loss(x, y).sum())(y)
    with pytest.raises(TypeError, match="^logits: expected a floating-point array"):
        focal_jax.sigmoid_focal_loss(jnp.zeros(3, jnp.int32), jnp.zeros(3))
    with pytest.raises(TypeError, match="^gamma: expected a real number known before tracing"):
        jax.jit(lambda g: focal_jax.sigmoid_focal_loss(x, y, gamma=g))(2.0)
    with pytest.raises(TypeError, match="^axis: expected an integer"):
        focal_jax.softmax_focal_loss(x, jnp.zeros(3, jnp.int32), axis=1.0)
    with pytest.raises(ValueError, match="^axis: 2 is out of range"):
        focal_jax.softmax_focal_loss(x, jnp.zeros(3, jnp.int32), axis=2)
    # the stop_gradient way out works
    jax.grad(lambda y: focal_jax.sigmoid_focal_loss(x, jax.lax.stop_gradient(y)).sum())(y)


def test_axis_and_ignore_index_take_any_integer_type():
    """What the annotations (SupportsIndex) and the core's functions take:
    NumPy integers and any object with __index__ (review 78: refused)."""
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 4)), jnp.float32)
    labels = jnp.array([1, -100, 3], jnp.int32)
    expected = focal_jax.softmax_focal_loss(x, labels, axis=-1, ignore_index=-100)
    for axis, ignore in ((np.int64(-1), np.int32(-100)), (Index(1), Index(-100))):
        got = focal_jax.softmax_focal_loss(x, labels, axis=axis, ignore_index=ignore)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"])
@pytest.mark.parametrize("jit", [False, True])
def test_float8_and_float4_are_refused_by_name_before_tracing(dtype, jit):
    """JAX's float8 and float4 dtypes reached XLA's handler under jit, whose
    error named no argument ("a buffer of XLA element type 20"), and eagerly
    float8_e5m2 logits were computed: refused by name in both, logits and
    labels alike."""
    if not hasattr(jnp, dtype):
        pytest.skip(f"this JAX has no {dtype}")
    low = getattr(jnp, dtype)
    x, y = _data((2, 3))
    run = jax.jit if jit else (lambda f: f)
    with pytest.raises(TypeError, match=r"^logits: expected a floating-point array \(float16, "
                                        r"bfloat16, float32 or float64\), got dtype " + dtype):
        run(focal_jax.sigmoid_focal_loss)(x.astype(low), y)
    with pytest.raises(TypeError, match=r"^logits: expected a floating-point array"):
        run(focal_jax.softmax_focal_loss)(x.astype(low), jnp.array([0, 1]))
    with pytest.raises(TypeError, match=r"^labels: expected integer, bool, float16, bfloat16, "
                                        r"float32 or float64 labels, got dtype " + dtype):
        run(focal_jax.sigmoid_focal_loss)(x, y.astype(low))
    with pytest.raises(TypeError, match=r"^labels: expected integer"):
        run(focal_jax.softmax_focal_loss)(x, jax.nn.softmax(x).astype(low))


@pytest.mark.parametrize("value", ["a", b"x", None, object(), {}, [[1.0], [1.0, 2.0]],
                                   np.array([object()])],
                         ids=["str", "bytes", "None", "object", "dict", "ragged", "object-array"])
@pytest.mark.parametrize("function", ["sigmoid", "softmax"])
@pytest.mark.parametrize("position", ["logits", "labels"])
def test_what_jax_cannot_take_is_named(value, function, position):
    # what JAX itself refuses (a string, None, a ragged list, objects) gets
    # focal's message naming the argument, not JAX's or NumPy's own
    call = focal_jax.sigmoid_focal_loss if function == "sigmoid" else focal_jax.softmax_focal_loss
    good = (jnp.zeros((4, 3)), jnp.zeros((4, 3)) if function == "sigmoid" else jnp.zeros(4, int))
    arguments = (value, good[1]) if position == "logits" else (good[0], value)
    with pytest.raises((TypeError, ValueError), match=f"^{position}: expected"):
        call(*arguments)


def _second_derivatives(f):
    return {
        "hessian": jax.hessian(f),
        "jit(hessian)": jax.jit(jax.hessian(f)),
        "grad of grad": jax.grad(lambda x: jax.grad(f)(x).sum()),
        "jacfwd of grad": jax.jacfwd(jax.grad(f)),
        "jvp of grad": lambda x: jax.jvp(jax.grad(f), (x,), (x,)),
        "vmap(hessian)": lambda x: jax.vmap(jax.hessian(f))(x[None]),
    }


@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_a_second_derivative_is_refused_by_name(form):
    """First derivatives only: a second one raises focal's TypeError naming
    the logits and focal.grad_hess (JAX's own error about pure callbacks said
    neither), under every way of asking for it; first derivatives still work
    under the same transformations."""
    x, y = _data((3, 4))
    if form == "sigmoid":
        def f(x):
            return focal_jax.sigmoid_focal_loss(x, y, 0.25).sum()
    else:
        labels = jnp.asarray([0, 3, 1])

        def f(x):
            return focal_jax.softmax_focal_loss(x, labels).sum()
    for name, second in _second_derivatives(f).items():
        with pytest.raises(TypeError, match="^logits: focal.jax gives first derivatives only.*"
                                            "focal.grad_hess"):
            second(x)
    expected = jax.grad(f)(x)
    _close(jax.jit(jax.grad(f))(x), expected, rtol=0, atol=0)
    _close(jax.vmap(jax.grad(f))(x[None])[0], expected, rtol=0, atol=0)
    _close(jax.value_and_grad(f)(x)[1], expected, rtol=0, atol=0)


@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_forward_mode_gives_the_gradient_times_the_tangent(form):
    """Forward mode on the loss itself (jax.jvp, jax.jacfwd, also under jit and
    vmap) works: the tangent is focal's derivative times the logits' tangent,
    the same numbers reverse mode gives (with a custom_vjp, JAX refused forward
    mode with its own TypeError)."""
    x, y = _data((3, 5), seed=4)
    direction = jnp.asarray(np.random.default_rng(5).normal(size=x.shape).astype(np.float32))
    if form == "sigmoid":
        def per_element(x):
            return focal_jax.sigmoid_focal_loss(x, y, 0.25)
        _, gradient = focal.loss_and_grad(np.asarray(x), np.asarray(y), 0.25, reduction="none")
        expected = gradient * np.asarray(direction)
    else:
        labels = jnp.asarray([0, 4, 2])

        def per_element(x):
            return focal_jax.softmax_focal_loss(x, labels)
        _, gradient = focal.softmax_loss_and_grad(np.asarray(x), np.asarray(labels),
                                                  reduction="none")
        expected = np.sum(gradient * np.asarray(direction), axis=-1)
    # (the softmax's tangent is a float32 sum along the row, which XLA and
    # NumPy, and XLA under jit, order their own ways: the last bit may differ;
    # the sigmoid's is one product per element, exactly NumPy's)
    same = 0 if form == "sigmoid" else 1e-6
    value, tangent = jax.jvp(per_element, (x,), (direction,))
    _close(value, per_element(x), rtol=0, atol=0)
    _close(tangent, expected.astype(np.float32), rtol=same, atol=0)
    jitted = jax.jit(lambda x, v: jax.jvp(per_element, (x,), (v,)))(x, direction)
    _close(jitted[1], tangent, rtol=same, atol=0)
    batched = jax.vmap(lambda v: jax.jvp(per_element, (x,), (v,))[1])(direction[None])
    _close(batched[0], tangent, rtol=same, atol=0)
    # the full Jacobian both ways: forward and reverse give the same numbers, bit for bit
    _close(jax.jacfwd(per_element)(x), jax.jacrev(per_element)(x), rtol=0, atol=0)
    # a tangent on the labels is refused, as a gradient asked of them is
    with pytest.raises(TypeError, match="^labels: focal.jax differentiates with respect to the "
                                        "logits only"):
        if form == "sigmoid":
            jax.jvp(lambda y: focal_jax.sigmoid_focal_loss(x, y), (y,), (y,))
        else:
            soft = jax.nn.softmax(x)
            jax.jvp(lambda p: focal_jax.softmax_focal_loss(x, p), (soft,), (soft,))


# ----------------------------------------------------------------------------
# Softmax against optax's cross-entropy


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_values_and_gradients_match_optax(axis, transport):
    rng = np.random.default_rng(1)
    shape = [6, 5, 4]
    z = jnp.asarray((rng.normal(size=shape) * 2).astype(np.float32))
    rows = shape[:axis % 3] + shape[axis % 3 + 1:]
    labels = rng.integers(0, shape[axis], rows)
    labels.flat[[0, 7]] = -100
    labels = jnp.asarray(labels)

    ours = jax.jit(lambda z: focal_jax.softmax_focal_loss(z, labels, axis=axis))(z)
    _close(ours, _optax_softmax_focal(z, labels, axis=axis), rtol=2e-6)

    def grad_of(loss):
        return jax.jit(jax.grad(lambda z: loss(z, labels, axis=axis).mean()))(z)
    _close(grad_of(focal_jax.softmax_focal_loss), grad_of(_optax_softmax_focal), rtol=2e-6,
           atol=1e-8)

    # per-example gradients: the batch axis added by vmap does not move the class axis
    batched = jax.vmap(jax.grad(lambda z: focal_jax.softmax_focal_loss(z, labels, axis=axis).sum()))
    their_batched = jax.vmap(jax.grad(lambda z: _optax_softmax_focal(z, labels, axis=axis).sum()))
    _close(batched(jnp.stack([z, -z])), their_batched(jnp.stack([z, -z])), rtol=2e-6, atol=1e-8)


def test_softmax_with_probability_labels_matches_optax():
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.normal(size=(7, 5)).astype(np.float32))
    probabilities = jnp.asarray(rng.dirichlet(np.ones(5), 7).astype(np.float32))
    ours = focal_jax.softmax_focal_loss(z, probabilities, gamma=0.0)
    _close(ours, optax.softmax_cross_entropy(z, probabilities), rtol=2e-6)
    g = jax.grad(lambda z: focal_jax.softmax_focal_loss(z, probabilities, gamma=0.0).sum())(z)
    their = jax.grad(lambda z: optax.softmax_cross_entropy(z, probabilities).sum())(z)
    _close(g, their, rtol=2e-5, atol=1e-7)


# ----------------------------------------------------------------------------
# float64, in a process of its own


_FLOAT64 = textwrap.dedent("""
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp, numpy as np, optax, focal.jax as fj
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(12, 9)) * 2)
    y = jnp.asarray((rng.random((12, 9)) < 0.3).astype(np.float64))
    worst = 0.0
    def check(a, b):
        global worst
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype == np.float64, (a.dtype, b.dtype)
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))))
    for alpha in (None, 0.25):
        check(jax.jit(lambda x: fj.sigmoid_focal_loss(x, y, alpha))(x),
              optax.sigmoid_focal_loss(x, y, alpha=alpha))
        grad = lambda f: jax.jit(jax.grad(lambda x: f(x, y, alpha=alpha).sum()))(x)
        check(grad(fj.sigmoid_focal_loss), grad(optax.sigmoid_focal_loss))
        per_row = lambda f: jax.vmap(jax.grad(lambda x, y: f(x, y, alpha=alpha).sum()))(x, y)
        check(per_row(fj.sigmoid_focal_loss), per_row(optax.sigmoid_focal_loss))
    labels = jnp.asarray(rng.integers(0, 9, 12))
    def eager(z):
        ce = optax.softmax_cross_entropy_with_integer_labels(z, labels)
        return (1 - jnp.exp(-ce)) ** 2 * ce
    check(fj.softmax_focal_loss(x, labels), eager(x))
    check(jax.jit(jax.grad(lambda z: fj.softmax_focal_loss(z, labels).sum()))(x),
          jax.grad(lambda z: eager(z).sum())(x))
    print(worst)
""")


def test_float64_with_jax_enable_x64():
    result = subprocess.run([sys.executable, "-c", _FLOAT64], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) <= 1e-12  # optax's formula is accurate to ~1e-15 here
    assert not jax.config.jax_enable_x64  # and this process is untouched


@pytest.mark.parametrize("function, labels, arguments, name", [
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(gamma=-1.0), "gamma"),
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(alpha=2.0), "alpha"),
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(alpha=[0.1, 0.2]), "alpha"),
    (focal_jax.softmax_focal_loss, [0], dict(gamma=float("nan")), "gamma"),
    (focal_jax.softmax_focal_loss, [0], dict(alpha=[0.1, 0.2]), "alpha"),
    (focal_jax.softmax_focal_loss, [0], dict(ignore_index=1.5), "ignore_index"),
    # beyond a C index: the check before tracing passed it as a row's label,
    # and the message named the labels
    (focal_jax.softmax_focal_loss, [0], dict(ignore_index=2**63), "ignore_index"),
    (focal_jax.softmax_focal_loss, [0], dict(ignore_index=-2**70), "ignore_index"),
    # strings, bytes and bools, as focal refuses them (float() took "2" as 2, True as 1)
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(gamma="2"), "gamma"),
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(gamma=b"2"), "gamma"),
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(gamma=True), "gamma"),
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(alpha="0.25"), "alpha"),
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(alpha=np.True_), "alpha"),
    (focal_jax.softmax_focal_loss, [0], dict(gamma=" 2.5 "), "gamma"),
    (focal_jax.softmax_focal_loss, [0], dict(alpha=["0.2", "0.3", "0.5"]), "alpha"),
    (focal_jax.softmax_focal_loss, [0], dict(alpha=[True, False, True]), "alpha"),
    # per-class alpha of more than one dimension (it was taken flattened)
    (focal_jax.sigmoid_focal_loss, [[1.0, 0.0, 0.0]], dict(alpha=np.full((1, 3), 0.25)), "alpha"),
    (focal_jax.softmax_focal_loss, [0], dict(alpha=np.full((3, 1), 0.3)), "alpha"),
])
@pytest.mark.parametrize("jit", [False, True])
def test_bad_static_arguments_are_named_before_tracing(function, labels, arguments, name, jit):
    # checked by focal on one zero row when the function is called, not inside the host
    # callback (which JAX reports as a runtime error); 1.5 is not truncated to 1
    logits = jnp.array([[2.0, -1.0, 0.5]])
    call = lambda x: function(x, jnp.array(labels), **arguments)  # noqa: E731
    with pytest.raises((TypeError, ValueError), match=f"^{name}: "):
        (jax.jit(call) if jit else call)(logits)


def test_labels_broadcast_to_logits_of_many_dimensions():
    """Targets of fewer dimensions than logits of 33 (NumPy takes 64) gain
    leading axes; np.broadcast_shapes, which takes 32, raised NumPy's
    RuntimeError there."""
    logits = jnp.asarray(np.linspace(-3.0, 3.0, 6).reshape((1,) * 31 + (2, 3)))
    labels = jnp.array([1.0, 0.0, 0.0])
    got = focal_jax.sigmoid_focal_loss(logits, labels, 0.25, 2.0)
    want = focal.loss(np.asarray(logits).reshape(2, 3), np.array([[1.0, 0.0, 0.0]] * 2),
                      0.25, 2.0, reduction="none")
    assert np.array_equal(np.asarray(got).reshape(2, 3), want)


@pytest.mark.parametrize("logits, labels, name", [
    ([[0.5, -1.0]], [[2**40, 0]], "labels"), ([[0.5, -1.0]], [[2**70, 0]], "labels"),
    ([[2**70, 0]], [[1.0, 0.0]], "logits")])
@pytest.mark.parametrize("function", [focal_jax.sigmoid_focal_loss, focal_jax.softmax_focal_loss])
def test_python_integers_past_jax_integers_are_named(function, logits, labels, name):
    """JAX's OverflowError (int32, C long) became a ValueError naming the argument."""
    if function is focal_jax.softmax_focal_loss and name == "labels":
        labels = labels[0]  # class indices of the rows
    with pytest.raises(ValueError, match=f"^{name}: a value does not fit JAX's integer dtype"):
        function(logits, labels)


@pytest.mark.parametrize("function, labels", [
    (focal_jax.sigmoid_focal_loss, np.zeros((2, 3))),         # dense, wrong shape
    (focal_jax.sigmoid_focal_loss, np.array([0, 1])),          # class indices, wrong shape
    (focal_jax.sigmoid_focal_loss, np.array([0.0, 1.0, 0.0, 1.0])),  # float, one axis fewer
    (focal_jax.softmax_focal_loss, np.array([0, 1])),          # class indices, wrong shape
    (focal_jax.softmax_focal_loss, np.zeros((4, 2))),          # dense, wrong shape
])
@pytest.mark.parametrize("jit", [False, True])
def test_labels_of_the_wrong_shape_are_named_before_tracing(function, labels, jit):
    """Their shape is known before tracing: focal's ValueError or TypeError naming `labels`,
    not a JaxRuntimeError from the host callback."""
    logits = jnp.zeros((4, 3))
    call = lambda x: function(x, jnp.asarray(labels))  # noqa: E731
    with pytest.raises((TypeError, ValueError), match="^labels: "):
        (jax.jit(call) if jit else call)(logits)


@pytest.mark.parametrize("function, labels, found", [
    (focal_jax.sigmoid_focal_loss, np.full((4, 3), 2.0), "2.0"),
    (focal_jax.sigmoid_focal_loss, np.array([0, 1, 2, 5]), "5"),
    (focal_jax.softmax_focal_loss, np.array([0, 1, 7, 2]), "7"),
])
def test_bad_label_values_in_an_eager_call_are_named(function, labels, found, transport):
    """An eager call runs focal directly: its ValueError naming `labels`, with the value."""
    with pytest.raises(ValueError, match=f"^labels: .*found {found}"):
        function(jnp.zeros((4, 3)), jnp.asarray(labels))
    # inside a transformation only the host callback sees the values: JAX's error carries
    # focal's message
    with pytest.raises(Exception, match=f"labels: .*found {found}"):
        jax.jit(function)(jnp.zeros((4, 3)), jnp.asarray(labels)).block_until_ready()


@pytest.mark.parametrize("function, labels, found", [
    (focal_jax.sigmoid_focal_loss, np.array([2**32 + 1, -2**32 - 1, 0, 1]), "4294967297"),
    (focal_jax.softmax_focal_loss, np.array([2**32 + 1, 2**32 - 100, 0, 1]), "4294967297"),
    (focal_jax.sigmoid_focal_loss, np.full((4, 3), 1 + 1e-9), "1.000000001"),
])
@pytest.mark.parametrize("jit", [False, True])
def test_labels_that_jax_s_32_bits_would_change_are_refused(function, labels, found, jit):
    """Without jax_enable_x64, JAX turns int64 labels into int32 by wrapping (2**32 + 1
    became class 1) and float64 targets into float32 (1 + 1e-9 became 1), silently; host
    labels that would change so are refused by name before they are converted."""
    call = lambda x: function(x, labels)  # noqa: E731
    with pytest.raises(ValueError, match=f"^labels: .*{found}"):
        (jax.jit(call) if jit else call)(jnp.zeros((4, 3)))
    # labels that convert exactly are taken
    assert function(jnp.zeros((4, 3)), np.array([0, 1, 2, 1])).shape[0] == 4


@pytest.mark.parametrize("function, labels", [
    (focal_jax.sigmoid_focal_loss, np.array([[0.0, 1.0]] * 2)),
    (focal_jax.softmax_focal_loss, np.array([0, 1]))])
@pytest.mark.parametrize("logits, found", [
    (np.array([[1e39, -1.0], [0.5, 2.0]]), "1e+39"),
    ([[0.5, 2.0], [np.inf, -4e38]], "-4e+38")])
def test_host_logits_that_jax_s_32_bits_would_overflow_are_refused(function, labels, logits,
                                                                    found):
    """Without jax_enable_x64, JAX turns float64 logits into float32, and those beyond
    its range into infinities, silently (a loss of inf where focal.loss gives 7.5e38,
    review 80): refused by name before they are converted; an infinity itself, and
    logits that round to float32's range (3.4028235e38, its largest as printed,
    review 81), are taken."""
    with pytest.raises(ValueError, match=f"^logits: {re.escape(found)} overflows JAX's float32"):
        function(logits, labels)
    taken = np.array([[np.inf, -1.0], [3.4028235e38, 2.0]])
    np.testing.assert_array_equal(np.asarray(function(taken, labels)),
                                  np.asarray(function(taken.astype(np.float32), labels)))


def test_one_class_warnings_name_labels_once_at_the_callers_line():
    """Class indices over one class warn naming this module's `labels` (focal's
    own warning named `targets`, from inside JAX's frames or XLA's host call:
    review 81), and a softmax over one class warns likewise, once per call,
    eagerly and under jit and vmap."""
    x = jnp.asarray([[0.3], [-1.2], [2.0]])
    labels = jnp.asarray([0, 1, 0])
    calls = [
        ("labels: class indices over a class axis of one class",
         lambda: focal_jax.sigmoid_focal_loss(x, labels)),
        ("labels: class indices over a class axis of one class",
         lambda: jax.jit(lambda a, b: focal_jax.sigmoid_focal_loss(a, b))(x, labels)),
        ("labels: class indices over a class axis of one class",
         lambda: jax.vmap(lambda a, b: focal_jax.sigmoid_focal_loss(a, b))(x[None],
                                                                          labels[None])),
        (r"logits: the class axis \(axis 1\) has a single class",
         lambda: focal_jax.softmax_focal_loss(x, labels * 0)),
    ]
    assert_warns_once_at(__file__, calls, lambda result: result.block_until_ready())


def test_host_logits_of_any_array_like_are_read_once_and_checked():
    """The overflow check reads any host array-like NumPy reads (an
    array.array, a memoryview: they went through unchecked, review 82), and
    reads it once, handing JAX what it read (a Dask array was computed once
    more, review 81)."""
    labels = np.array([0.0, 1.0])
    for logits in (array.array("d", [1e39, -1.0]), memoryview(np.array([1e39, -1.0]))):
        with pytest.raises(ValueError, match=r"^logits: 1e\+39 overflows JAX's float32"):
            focal_jax.sigmoid_focal_loss(logits, labels)

    class Counted:
        reads = 0

        def __array__(self, dtype=None, copy=None):
            Counted.reads += 1
            return np.array([0.5, -1.0])

    value = focal_jax.sigmoid_focal_loss(Counted(), labels)
    assert Counted.reads == 1
    np.testing.assert_array_equal(np.asarray(value),
                                  np.asarray(focal_jax.sigmoid_focal_loss(
                                      np.array([0.5, -1.0], np.float32), labels)))


@pytest.mark.parametrize("labels", [1.0, np.array([1.0, 0.0, 1.0], np.float32),
                                    np.array([True, False, True]), np.array([[1.0], [0.0], [1.0], [0.0]]),
                                    np.array([0.3, 0.9, 0.0], np.float32),
                                    np.array([1, 0, 1]), jnp.array([0, 0, 1], jnp.int32),
                                    np.array([[1], [0], [1], [0]], np.int8)])
def test_targets_broadcast_as_optax_broadcasts_them(labels, transport):
    """optax broadcasts the labels to the logits' shape; so does focal.jax (a scalar, a
    row of per-class targets, a column), where it refused labels of fewer dimensions.
    Integer labels of shape logits.shape[:-1] stay class indices; an integer row of
    per-class targets of another shape broadcasts (it was taken for class indices
    and refused)."""
    logits = jnp.array(np.random.default_rng(3).normal(size=(4, 3)), jnp.float32)
    ours = lambda x: focal_jax.sigmoid_focal_loss(x, labels)  # noqa: E731
    theirs = lambda x: optax.sigmoid_focal_loss(x, jnp.asarray(labels, jnp.float32))  # noqa: E731
    np.testing.assert_allclose(ours(logits), theirs(logits), rtol=RTOL32, atol=1e-7)
    np.testing.assert_allclose(jax.jit(jax.grad(lambda x: ours(x).sum()))(logits),
                               jax.grad(lambda x: theirs(x).sum())(logits), rtol=1e-6, atol=1e-7)


def test_labels_that_do_not_broadcast_to_the_logits_are_named_in_their_own_shape(transport):
    """Labels of fewer dimensions that broadcast beyond the logits' shape are left to
    focal's check as they are: its message shows the shape the caller gave."""
    with pytest.raises(ValueError, match=r"^labels: .*got shape \(3,\)$"):
        focal_jax.sigmoid_focal_loss(jnp.zeros((2, 2, 1)), jnp.zeros((3,)))


def test_an_eager_call_gives_the_traced_call_s_values(transport):
    x, y = _data((8, 3))
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        eager = focal_jax.sigmoid_focal_loss(x.astype(dtype), y, alpha=0.25)
        traced = jax.jit(functools.partial(focal_jax.sigmoid_focal_loss, alpha=0.25))(
            x.astype(dtype), y)
        assert eager.dtype == traced.dtype == dtype
        np.testing.assert_array_equal(np.asarray(eager, np.float32), np.asarray(traced, np.float32))
    labels = jnp.array([0, 2, 1, -100, 0, 1, 2, 2])
    np.testing.assert_array_equal(focal_jax.softmax_focal_loss(x, labels),
                                  jax.jit(focal_jax.softmax_focal_loss)(x, labels))

"""focal for JAX: optax's focal-loss signature over focal's C core, differentiable.

The loss and its derivative come from one focal pass on the host, inside
``jax.jit``, ``jax.grad`` and ``jax.vmap`` as an XLA FFI call whose handler
(src/xla_ffi.c) has focal write into XLA's own buffers, no copy in or out
(a ``jax.pure_callback``, which copies, where a JAX has no FFI).  A
``jax.custom_jvp`` pairs them: the loss's tangent is that derivative times
the logits' tangent, linear in it, so JAX transposes it for reverse mode
(``jax.grad``, ``jax.vjp``) and forward mode (``jax.jvp``, ``jax.jacfwd``)
works as it is.  First derivatives only: a second one raises a TypeError
that names focal.grad_hess.  The README says what the transport costs.

Functions
---------
sigmoid_focal_loss
    ``optax.sigmoid_focal_loss``'s signature and conventions: elementwise.
softmax_focal_loss
    Multi-class focal loss, one value per row (optax's cross-entropy style).

Needs JAX and optax (the ``jax`` extra): ``pip install "focal[jax]"``.
"""
from __future__ import annotations

import atexit
import functools
import threading
from typing import Any, Dict, List, Optional, SupportsIndex, Tuple

import numpy as np

try:
    import jax
    import jax.numpy as jnp
    from jax.custom_derivatives import SymbolicZero
except ImportError:  # the original error stays attached as the context
    raise ImportError("focal.jax needs JAX: pip install \"focal[jax]\"")

from focal import _args, _core
# the argument checks below call these directly: a check on one zero row, not a pass
from focal._args import target_array as _check_targets
from focal._sigmoid import loss as _check_loss
from focal._softmax import label_array as _check_labels
from focal._softmax import softmax_loss as _check_softmax_loss
# the host runs the families' calls themselves (as focal.dask does), for loss_into
from focal._sigmoid import _entry as _sigmoid_entry  # type: ignore[attr-defined]
from focal._softmax import _entry as _softmax_entry  # type: ignore[attr-defined]
from focal._spec import KINDS
from focal._typing import Real

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]


def _static_number(name: str, value: Any) -> Optional[float]:
    """alpha and gamma are constants of the computation, not traced values: a
    real number (strings, bytes and bools refused, as focal refuses them)."""
    if value is None:
        return None
    try:
        return _args.real_scalar(name, value, _STATIC)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        raise TypeError(f"{name}: expected {_STATIC}, got {value!r}") from None


_STATIC = ("a real number known before tracing (focal.jax does not differentiate with "
           "respect to it nor take it as a traced array)")


def _static_alpha(alpha: Any) -> Any:
    """A number, or one weight per class as a tuple (hashable, for custom_jvp)."""
    if alpha is None or np.ndim(alpha) == 0:
        return _static_number("alpha", alpha)
    try:
        values = np.asarray(alpha)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        raise TypeError(f"alpha: expected numbers known before tracing, got {alpha!r}") from None
    if values.dtype.kind not in "iuf" and not _args._is_ml_dtypes(values.dtype):
        raise TypeError(f"alpha: expected real numbers known before tracing, got an array of "
                        f"dtype {values.dtype}")
    if values.ndim != 1:  # (as focal's own functions: a (2, 3) alpha was taken flattened)
        raise ValueError(f"alpha: expected a scalar or a 1-D array, got shape {values.shape}")
    return tuple(float(a) for a in values.astype(np.float64))


def _check_before_tracing(compute: Any, x: np.ndarray, y: np.ndarray) -> None:
    """The arguments known before tracing (alpha, gamma, axis, ignore_index),
    checked by focal itself on one zero row: a bad one raises its
    TypeError or ValueError here, named, rather than from inside the host
    callback, where JAX would report it as a runtime error."""
    with _args.adapter_warned():  # (the one-class warnings are the caller's)
        compute(x, y)


def _shaped_like(array: Any) -> np.ndarray:
    """A zero of the array's dtype and shape, as a view of one element: what
    focal's shape checks read (no memory of the array's size)."""
    return np.broadcast_to(np.zeros((), np.dtype(array.dtype)), array.shape)


def _labels_named(compute: Any) -> Any:
    """`compute` with focal's messages about its second argument, which the
    sigmoid functions call `targets`, naming this adapter's `labels`."""
    return _args.renamed(compute, (("targets:", "labels:"),))


def _traced(*arrays: Any) -> bool:
    return any(isinstance(a, jax.core.Tracer) for a in arrays)


def _jax_array(name: str, value: Any, kinds: str, what: str) -> Any:
    """`value` as a JAX array; what JAX cannot take (a string, None, a ragged
    list, an object) gets focal's own message, which names the argument."""
    if isinstance(value, (str, bytes)):  # (JAX would take a string for a dtype's name first)
        _args.as_array(name, value, kinds, what)
    try:
        return jnp.asarray(value)
    except OverflowError as error:  # a Python integer past JAX's integers (2**40, 2**70)
        raise ValueError(f"{name}: a value does not fit JAX's integer dtype ({error})") from None
    except (TypeError, ValueError) as error:
        _args.as_array(name, value, kinds, what)  # raises focal's message for such a value
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__}") from error


def _jax_labels(value: Any, what: str) -> Any:
    """The labels as a JAX array.  Host labels that JAX's 32-bit defaults
    change are refused as focal refuses them: an int64 class index past
    int32 wrapped (2**32 + 1 became class 1) and a float64 target just above
    1 rounded to 1, both silently."""
    labels = _jax_array("labels", value, "biuf", what)
    if jnp.issubdtype(labels.dtype, jnp.floating) and jnp.dtype(labels.dtype).name not in _FLOATS:
        raise TypeError(f"labels: expected integer, bool, float16, bfloat16, float32 or float64 "
                        f"labels, got dtype {labels.dtype}")
    if isinstance(value, (jax.Array, jax.core.Tracer)):
        return labels
    original = np.asarray(value)
    if original.dtype == labels.dtype or original.dtype.kind not in "iuf":
        return labels
    if original.dtype.kind in "iu":
        # (against the range of JAX's dtype: under jit the converted labels are a tracer)
        info = np.iinfo(labels.dtype)
        wrapped = (original < info.min) | (original > info.max)
        if wrapped.any():
            raise ValueError(f"labels: class index {original[wrapped].flat[0].item()} does not fit "
                             f"JAX's {labels.dtype} (jax_enable_x64 is off)")
    else:
        outside = ~((original >= 0) & (original <= 1))
        if outside.any():
            raise ValueError(f"labels: values must lie in [0, 1]; found "
                             f"{original[outside].flat[0].item()}")
    return labels


def _broadcast_targets(labels: Any, shape: Tuple[int, ...]) -> Any:
    """optax's rule: targets with fewer dimensions broadcast to the logits' shape
    (a row of per-class targets, a scalar).  They gain leading axes of length 1
    (a reshape, no copy), which focal's core broadcasts as it reads; integer
    labels of shape logits.shape[:-1] stay class indices (an integer row of
    per-class targets, of another shape, broadcasts: it was taken for class
    indices and refused), and labels that do not broadcast to the logits'
    shape are left as they are to focal's checks, which name them in their
    own shape."""
    class_indices = (jnp.issubdtype(labels.dtype, jnp.integer)
                     and tuple(labels.shape) == tuple(shape[:-1]))
    if labels.ndim >= len(shape) or class_indices:
        return labels
    try:
        if _args.broadcast_shape(labels.shape, shape) != tuple(shape):
            return labels
    except ValueError:
        return labels
    return jnp.reshape(labels, (1,) * (len(shape) - labels.ndim) + labels.shape)


# the floating dtypes focal reads; JAX's float8 and float4 ones are refused
# here, by name, before any tracing (under jit they reached XLA's handler,
# whose error named no argument)
_FLOATS = ("float16", "bfloat16", "float32", "float64")


def _floating(logits: Any) -> Any:
    """The logits as a JAX array of a dtype focal reads.  Host logits whose
    finite values JAX's 32-bit default would make infinite (float64 1e39
    under jax_enable_x64 off: a loss of inf where focal.loss gives 7.5e38)
    are refused before they are converted, as the labels' changed values
    are (review 80)."""
    if not isinstance(logits, (jax.Array, jax.core.Tracer)) and not hasattr(logits, "__jax_array__"):
        logits = _host_logits(logits)
    logits = _jax_array("logits", logits, "f", "a floating-point array")
    if jnp.dtype(logits.dtype).name not in _FLOATS:
        raise TypeError(f"logits: expected a floating-point array (float16, bfloat16, float32 "
                        f"or float64), got dtype {logits.dtype}")
    return logits


def _host_logits(value: Any) -> Any:
    """Host logits as NumPy reads them, once (what JAX would read from them
    too: a lazy array-like, a Dask array, is computed once), refused where
    JAX's conversion would make a finite value infinite; the value itself
    where NumPy cannot read it, or reads no floating-point numbers from it
    (refused by name in _jax_array, with JAX's own conversion's message for
    Python integers past its own)."""
    try:
        original = np.asarray(value)
    except Exception:
        return value
    if original.dtype.kind != "f":
        return value
    if not original.size:
        return original
    target = jax.dtypes.canonicalize_dtype(original.dtype)
    if target == original.dtype:
        return original
    # the values that round to an infinity: from the largest finite value
    # plus half its spacing (3.4028235e38, float32's largest as printed,
    # rounds to it and is taken)
    info = np.finfo(target)
    boundary = float(info.max) + 2.0 ** (info.maxexp - 2 - info.nmant)
    # the extremes first, without a temporary; the values themselves only
    # where one lies beyond (an infinity, which stays one, too)
    if (np.fmax.reduce(original, axis=None) >= boundary
            or np.fmin.reduce(original, axis=None) <= -boundary):
        overflows = np.isfinite(original) & (np.abs(original) >= boundary)
        if overflows.any():
            raise ValueError(f"logits: {original[overflows].flat[0].item()} overflows JAX's "
                             f"{np.dtype(target).name} (jax_enable_x64 is off)")
    return original


def _leading_broadcast(x: np.ndarray, y: np.ndarray, batch_dims: int) -> Tuple[np.ndarray, np.ndarray]:
    """Under vmap (vmap_method="expand_dims") an unbatched operand has size-1
    batch axes: broadcast them as views, without copies."""
    if batch_dims == 0:
        return x, y
    batch = _args.broadcast_shape(x.shape[:batch_dims], y.shape[:batch_dims])
    return (np.broadcast_to(x, batch + x.shape[batch_dims:]),
            np.broadcast_to(y, batch + y.shape[batch_dims:]))


def _call_host(key: Tuple[Any, ...], compute: Any, want_grad: bool, logits: Any, labels: Any,
               loss_shape: Tuple[int, ...]):
    """Run `compute(x, y, outs)` on the host, from inside a traced
    computation: the loss (and, with `want_grad`, the gradient of the logits'
    shape), both in the logits' dtype.  `outs` are XLA's buffers for them
    where focal computes in their dtype, else None.  `key` names the
    computation: its static arguments."""
    core_ndim = logits.ndim
    dtype = logits.dtype
    if not _traced(logits, labels):
        # an eager call (no jit, grad or vmap): focal runs here, and a bad
        # label value raises focal's own named error (from inside XLA, JAX
        # reports any error as a JaxRuntimeError)
        return tuple(jnp.asarray(r) for r in _copied(compute, core_ndim, dtype)(logits, labels))
    shapes = [jax.ShapeDtypeStruct(loss_shape, dtype)]
    if want_grad:
        shapes.append(jax.ShapeDtypeStruct(logits.shape, dtype))
    shapes_ = tuple(shapes)

    def callback(x, y):
        return jax.pure_callback(_copied(compute, core_ndim, dtype), shapes_, x, y,
                                 vmap_method="expand_dims")

    target = _ffi_target()
    if target is None:
        run = callback
    else:
        number = _host_number((key, core_ndim, dtype, labels.dtype),
                              lambda: _written(compute, core_ndim, dtype, labels.dtype))
        ffi = jax.ffi.ffi_call(target, shapes_, vmap_method="expand_dims")

        def written(x, y):
            return tuple(ffi(x, y, host=np.int64(number)))

        def run(x, y):
            # the handler is the CPU's; other devices (a GPU) take the callback
            return jax.lax.platform_dependent(x, y, cpu=written, default=callback)

    # A first derivative never differentiates this call (the custom_jvp's rule
    # sees the primal values); a second one would, and JAX's message about
    # custom calls names neither focal nor the way out.
    @jax.custom_jvp
    def host_call(x, y):
        return run(x, y)

    @host_call.defjvp
    def _second_derivative(primals, tangents):
        raise TypeError(
            "logits: focal.jax gives first derivatives only (jax.grad, jax.vjp); a second "
            "derivative (jax.hessian, a gradient of a gradient, jax.jvp of a gradient) is not "
            "available here. The sigmoid form's exact elementwise second derivative is "
            "focal.grad_hess, on NumPy arrays")

    return host_call(logits, labels)


# ----------------------------------------------------------------------------
# The way to the host under a transformation: XLA's FFI, or a host callback


def _written(compute: Any, core_ndim: int, dtype: Any, labels_dtype: Any) -> Any:
    """The host function of XLA's FFI (src/xla_ffi.c): focal's results
    written into XLA's own buffers, with out= where focal computes in the
    logits' dtype (float32, float64), else converted into them."""
    dtype, labels_dtype = np.dtype(dtype), np.dtype(labels_dtype)

    def host(x: np.ndarray, y: np.ndarray, *results: np.ndarray) -> None:
        # bfloat16 buffers arrive as their bits (uint16)
        x, y = x.view(dtype), y.view(labels_dtype)
        results = tuple(r.view(dtype) for r in results)
        x, y = _leading_broadcast(x, y, x.ndim - core_ndim)
        direct = dtype in (np.float32, np.float64)
        with _args.adapter_warned():  # (sigmoid_focal_loss and softmax_focal_loss warned)
            computed = compute(x, y, results if direct else None)
        for buffer, value in zip(results, computed):
            if value is not buffer:
                np.copyto(buffer, np.asarray(value).astype(dtype, copy=False))
    return host


def _copied(compute: Any, core_ndim: int, dtype: Any) -> Any:
    """The host function of an eager call, and of a `jax.pure_callback`
    where XLA's FFI does not serve: new results (which a callback's JAX
    copies into its buffers)."""
    def host(x: Any, y: Any) -> Tuple[np.ndarray, ...]:
        x, y = np.asarray(x), np.asarray(y)  # bfloat16 too: focal reads it
        x, y = _leading_broadcast(x, y, x.ndim - core_ndim)
        with _args.adapter_warned():  # (sigmoid_focal_loss and softmax_focal_loss warned)
            computed = compute(x, y, None)
        return tuple(np.asarray(r).astype(dtype, copy=False) for r in computed)
    return host


# The host functions of XLA's FFI, by number (the calls carry it, which
# therefore mean something in this process only), one per computation: the
# static arguments, the dtypes and the logits' rank.  The list is the
# core's, which its handler reads.
_HOSTS: List[Any] = _core.xla_hosts
_HOST_NUMBERS: Dict[Tuple[Any, ...], int] = {}
_LOCK = threading.Lock()
_FFI_NAME = "focal_host"
# whether the handler is registered: None until the first traced call, then
# the target's name, or "" where XLA refused it (the callback serves then)
_ffi_registered: Optional[str] = None
# tests set this False to run the callback where the FFI would serve
_USE_FFI = True


def _host_number(key: Tuple[Any, ...], make: Any) -> int:
    with _LOCK:
        if key not in _HOST_NUMBERS:
            _HOSTS.append(make())
            _HOST_NUMBERS[key] = len(_HOSTS) - 1
        return _HOST_NUMBERS[key]


def _ffi_target() -> Optional[str]:
    """The FFI target's name, the handler registered with XLA for the CPU at
    the first call; None where this JAX has no FFI or refuses the handler
    (its API version, say): the host callback serves then.  The CPU backend
    is started first: XLA checks a handler registered before it starts only
    when it starts, and a refusal then would stop the backend itself."""
    global _ffi_registered
    if not _USE_FFI:
        return None
    with _LOCK:
        if _ffi_registered is None:
            try:
                jax.devices("cpu")
                jax.ffi.register_ffi_target(_FFI_NAME, _core.xla_ffi_handler(), platform="cpu")
                _ffi_registered = _FFI_NAME
                # (after JAX's own, so run before it: calls in flight end
                # before JAX tears its backends down; see src/xla_ffi.c)
                atexit.register(_core.xla_ffi_exiting)
            except Exception:  # noqa: BLE001 - any failure means: the callback
                _ffi_registered = ""
        return _ffi_registered or None


def _tangent(host: Any, primals: Tuple[Any, Any], tangents: Tuple[Any, Any], contract: Any):
    """A custom_jvp rule of both losses: (value, tangent) from one host call,
    `host(logits, labels)` -> (loss, gradient), the tangent being
    `contract(gradient * logits_dot)`.  The labels are not differentiated: a
    tangent given to them (a gradient asked of them) is refused, where it
    would silently be zero.  JAX calls the rule only when an argument is
    perturbed, so the logits' tangent is never a symbolic zero here."""
    logits, labels = primals
    logits_dot, labels_dot = tangents
    if not isinstance(labels_dot, SymbolicZero) and jnp.issubdtype(labels.dtype, jnp.inexact):
        raise TypeError(
            "labels: focal.jax differentiates with respect to the logits only; wrap the labels "
            "in jax.lax.stop_gradient (their gradient would otherwise silently be zero)"
        )
    value, gradient = host(logits, labels)
    return value, contract(gradient * logits_dot)


def _family_compute(entry: Any, want_grad: bool, alpha: Any, gamma: float, **options: Any):
    """`compute(x, y, outs)` of a family's call: (loss,) or (loss, gradient),
    written into XLA's buffers `outs` where given (out= receives the last
    result, loss_into the loss beside a gradient)."""
    mode = KINDS["loss_and_grad" if want_grad else "loss"][0]
    alpha_ = np.asarray(alpha) if isinstance(alpha, tuple) else alpha  # (one per class)

    def compute(x, y, outs):
        loss_into = outs[0] if outs is not None and want_grad else None
        out = outs[-1] if outs is not None else None
        loss, gradient, _ = entry(mode, x, y, alpha_, gamma, reduction="none", out=out,
                                  loss_into=loss_into, **options)
        return (loss, gradient) if want_grad else (loss,)
    return compute


# ----------------------------------------------------------------------------
# Sigmoid


def _sigmoid_host(want_grad: bool, alpha: Any, gamma: float, logits: Any, labels: Any):
    compute = _labels_named(_family_compute(_sigmoid_entry, want_grad, alpha, gamma))
    return _call_host(("sigmoid", want_grad, alpha, gamma), compute, want_grad, logits, labels,
                      logits.shape)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _sigmoid(logits: Any, labels: Any, alpha: Any, gamma: float) -> Any:
    (value,) = _sigmoid_host(False, alpha, gamma, logits, labels)
    return value


def _sigmoid_tangent(alpha: Any, gamma: float, primals: Tuple[Any, Any],
                     tangents: Tuple[Any, Any]):
    # elementwise: each loss depends on its own logit
    return _tangent(functools.partial(_sigmoid_host, True, alpha, gamma), primals, tangents,
                    lambda products: products)


_sigmoid.defjvp(_sigmoid_tangent, symbolic_zeros=True)


def sigmoid_focal_loss(logits: Any, labels: Any, alpha: Any = None,
                       gamma: Real = 2.0) -> jax.Array:
    """Elementwise sigmoid focal loss, a drop-in for ``optax.sigmoid_focal_loss``.

    Computed by focal's C core on the host, exactly in the tails; inside
    ``jax.jit``, ``jax.grad`` and ``jax.vmap`` as well as eagerly.  Under a
    gradient, one pass computes the loss and its derivative.

    Parameters
    ----------
    logits : array_like
        Raw scores x, any shape; float16, bfloat16, float32 or float64
        (float16 and bfloat16 are computed in float32).
    labels : array_like
        Targets in [0, 1] (binary or soft), broadcastable to the logits'
        shape as in optax (a scalar, a row of per-class targets); or integer
        class indices of shape ``logits.shape[:-1]`` (C marks a background
        row, -1 an ignored row).  Not differentiated.
    alpha : float or sequence of float, optional
        Weight of the positives, alpha_t = alpha y + (1 - alpha)(1 - y); None
        (optax's default) for no weighting; one value per class is also
        accepted.  A number known before tracing.
    gamma : float, default 2.0
        Focusing parameter >= 0, known before tracing.

    Returns
    -------
    jax.Array
        The loss of each element: the logits' shape and dtype.

    Raises
    ------
    TypeError
        For non-floating logits, a traced alpha or gamma, or a gradient
        asked of the labels.

    See Also
    --------
    focal.loss_and_grad : the same over NumPy arrays.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, focal.jax
    >>> x = jnp.array([2.0, -1.0, 0.5])
    >>> y = jnp.array([1.0, 0.0, 0.0])
    >>> g = jax.jit(jax.grad(lambda x: focal.jax.sigmoid_focal_loss(x, y).sum()))(x)
    >>> g.shape
    (3,)
    """
    logits = _floating(logits)
    labels = _jax_labels(labels, "an array of targets in [0, 1] or of class indices")
    labels = _broadcast_targets(labels, logits.shape)
    fixed_alpha, fixed_gamma = _static_alpha(alpha), _static_number("gamma", gamma)
    row = np.zeros(logits.shape[-1:], np.float32)
    _check_before_tracing(functools.partial(_check_loss, alpha=fixed_alpha, gamma=fixed_gamma,
                                            reduction="none"), row, row)
    # the labels' shape is known before tracing too (their values only in an eager call)
    _labels_named(_check_targets)(_shaped_like(labels), _shaped_like(logits))
    if (jnp.issubdtype(labels.dtype, jnp.integer) and logits.ndim
            and tuple(labels.shape) == tuple(logits.shape[:-1]) and logits.shape[-1] == 1):
        _args.warn_at_caller(_args.one_class_indices("labels"))
    return _sigmoid(logits, labels, fixed_alpha, fixed_gamma)


# ----------------------------------------------------------------------------
# Softmax


def _softmax_host(want_grad: bool, alpha: Any, gamma: float, axis: int, ignore_index: int,
                  logits: Any, labels: Any):
    compute = _family_compute(_softmax_entry, want_grad, alpha, gamma, axis=axis,
                              ignore_index=ignore_index)
    rows = logits.shape[:logits.ndim + axis] + logits.shape[logits.ndim + axis + 1:]
    return _call_host(("softmax", want_grad, alpha, gamma, axis, ignore_index), compute,
                      want_grad, logits, labels, rows)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5))
def _softmax(logits: Any, labels: Any, alpha: Any, gamma: float, axis: int,
             ignore_index: int) -> Any:
    (value,) = _softmax_host(False, alpha, gamma, axis, ignore_index, logits, labels)
    return value


def _softmax_tangent(alpha: Any, gamma: float, axis: int, ignore_index: int,
                     primals: Tuple[Any, Any], tangents: Tuple[Any, Any]):
    # a row's loss depends on that row's logits only: its tangent is a sum along
    # the axis (transposed, a row's cotangent spreads along it)
    return _tangent(functools.partial(_softmax_host, True, alpha, gamma, axis, ignore_index),
                    primals, tangents, lambda products: jnp.sum(products, axis=axis))


_softmax.defjvp(_softmax_tangent, symbolic_zeros=True)


def softmax_focal_loss(logits: Any, labels: Any, alpha: Any = None, gamma: Real = 2.0, *,
                       axis: SupportsIndex = -1, ignore_index: SupportsIndex = -100) -> jax.Array:
    """Softmax focal loss of each row, -alpha_k (1 - p_k)^gamma log p_k.

    optax's conventions for a softmax loss (``softmax_cross_entropy`` and its
    ``_with_integer_labels`` twin): one value per row, no reduction; gamma = 0
    without alpha gives their cross-entropy.  Computed by focal's C core in
    one pass with its derivative; usable inside ``jax.jit``, ``jax.grad`` and
    ``jax.vmap``.

    Parameters
    ----------
    logits : array_like
        Raw scores; `axis` is the class axis.  float16, bfloat16, float32 or
        float64 (float16 and bfloat16 are computed in float32).
    labels : array_like
        Integer class indices of the logits' shape without `axis` (rows equal
        to `ignore_index` give 0), or probabilities of the logits' shape.
        Not differentiated.
    alpha : None, float or sequence of float, default None
        None: no weighting; a float multiplies every row; one value per class
        weights each row by its class.  Known before tracing.
    gamma : float, default 2.0
        Focusing parameter >= 0, known before tracing.
    axis : int, default -1
        The class axis.
    ignore_index : int, default -100
        The class index of an ignored row.

    Returns
    -------
    jax.Array
        One loss per row: the logits' shape without `axis`, their dtype.

    Raises
    ------
    TypeError
        For non-floating logits, a traced alpha or gamma, or a gradient
        asked of the labels.

    See Also
    --------
    focal.softmax_loss_and_grad : the same over NumPy arrays.

    Examples
    --------
    >>> import jax.numpy as jnp, focal.jax
    >>> focal.jax.softmax_focal_loss(jnp.zeros((2, 4)), jnp.array([1, -100])).shape
    (2,)
    """
    logits = _floating(logits)
    labels = _jax_labels(labels, "an array of class indices or of probabilities")
    # (any integer type, as the core's: operator.index)
    class_axis = _args.axis_value(axis, logits.ndim)
    # counted from the end: vmap adds leading axes
    from_end = class_axis - logits.ndim
    # (its range first: the check below passes it as a row's label)
    ignore = _args.ignore_index_value(ignore_index, logits.shape[class_axis], False)
    fixed_alpha, fixed_gamma = _static_alpha(alpha), _static_number("gamma", gamma)
    _check_before_tracing(functools.partial(_check_softmax_loss, alpha=fixed_alpha,
                                            gamma=fixed_gamma, reduction="none",
                                            ignore_index=ignore),
                          np.zeros(logits.shape[class_axis], np.float32),
                          np.asarray(ignore, np.intp))
    _check_labels(_shaped_like(labels), _shaped_like(logits), class_axis)
    if logits.shape[class_axis] == 1:
        _args.warn_at_caller(_args.one_class_softmax("logits", "axis", class_axis))
    return _softmax(logits, labels, fixed_alpha, fixed_gamma, from_end, ignore)


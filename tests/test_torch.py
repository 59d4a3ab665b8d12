"""focal.torch against the real PyTorch: gradcheck, torchvision's formula, training, dtypes.

torchvision's sigmoid_focal_loss is compared as fvcore transcribes it
(fvcore.nn.sigmoid_focal_loss, which computes in float32); the tests skip
without torch (and those of the formula without fvcore) unless
FOCAL_REQUIRE_ADAPTERS is set, as in CI, where a missing library fails.
"""
import doctest
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import focal

if os.environ.get("FOCAL_REQUIRE_ADAPTERS"):
    import torch
else:
    torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.autograd import forward_ad  # noqa: E402

import focal.torch as focal_torch  # noqa: E402
from layouts import Index, assert_warns_once_at  # noqa: E402


def _fvcore_loss():
    # fvcore scripts its function with torch.jit.script at import, which newer
    # torch releases deprecate (a DeprecationWarning or FutureWarning): not ours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if os.environ.get("FOCAL_REQUIRE_ADAPTERS"):
            from fvcore.nn import sigmoid_focal_loss
            return sigmoid_focal_loss
        return pytest.importorskip("fvcore.nn").sigmoid_focal_loss


def _batch(shape, dtype=torch.float64, scale=2.0, seed=0, positives=0.3):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(dtype)
    y = (torch.rand(shape, generator=generator) < positives).to(dtype)
    return x, y


def _grad(function, x, *args, **kwargs):
    leaf = x.detach().clone().requires_grad_(True)
    value = function(leaf, *args, **kwargs)
    (gradient,) = torch.autograd.grad(value.sum(), leaf)
    return value.detach(), gradient


def _relative(a, b):
    a, b = a.double(), b.double()
    return float(((a - b).abs() / b.abs().clamp_min(1e-30)).max())


# ----------------------------------------------------------------------------
# Import without torch


def test_import_without_torch_names_the_extra():
    code = ("import sys\nsys.modules['torch'] = None\n"
            "try:\n    import focal.torch\nexcept ImportError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "focal[torch]"' in result.stdout
    assert "download.pytorch.org/whl/cpu" in result.stdout


def test_docstring_examples():
    result = doctest.testmod(focal_torch, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# ----------------------------------------------------------------------------
# gradcheck in float64


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "sum_over_positives"])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
def test_sigmoid_gradcheck(reduction, alpha):
    x, y = _batch((3, 5))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z: focal_torch.sigmoid_focal_loss(z, y, alpha, 2, reduction), (x,))


def test_sigmoid_gradcheck_class_indices_weights_and_strides():
    x, _ = _batch((6, 4))
    labels = torch.tensor([0, 3, 4, -1, 2, 4])
    weights = torch.rand(6, 1, dtype=torch.float64)
    strided = x.t().detach().requires_grad_(True)  # (4, 6): its transpose is not contiguous
    assert torch.autograd.gradcheck(
        lambda z: focal_torch.sigmoid_focal_loss(z.t(), labels, reduction="mean", weights=weights,
                                                 gamma=1.5), (strided,))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape, labels", [((5, 4), [0, 3, -100, 1, 2]),
                                           ((2, 3, 4), [[0, 2, 1, -100], [1, 1, 0, 2]])])
def test_softmax_gradcheck(reduction, shape, labels):
    x, _ = _batch(shape)
    x.requires_grad_(True)
    target = torch.tensor(labels)
    assert torch.autograd.gradcheck(
        lambda z: focal_torch.softmax_focal_loss(z, target, alpha=[0.2, 0.3, 0.5, 0.7][:shape[1]],
                                                 gamma=2.0, reduction=reduction), (x,))


# ----------------------------------------------------------------------------
# torchvision's formula (fvcore), values and autograd gradients


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2), (-1, 2), (0.5, 0), (0.25, 1.5)])
def test_agrees_with_the_torchvision_formula(reduction, alpha, gamma):
    fvcore_loss = _fvcore_loss()
    # moderate logits, where the float32 formula is accurate to ~1e-7
    x, y = _batch((64, 80), torch.float32, scale=0.5, seed=1)
    x = x.clamp(-1, 1)
    ours, ours_grad = _grad(focal_torch.sigmoid_focal_loss, x, y, alpha, gamma, reduction)
    theirs, their_grad = _grad(fvcore_loss, x, y, alpha, gamma, reduction)
    assert ours.dtype == theirs.dtype == torch.float32 and ours.shape == theirs.shape
    assert _relative(ours, theirs) <= 1e-6
    assert _relative(ours_grad, their_grad) <= 1e-6


def test_where_the_formula_drifts_focal_is_the_closer_to_float64():
    fvcore_loss = _fvcore_loss()
    x, y = _batch((20000,), torch.float32, scale=3.0, seed=2)
    ours, ours_grad = _grad(focal_torch.sigmoid_focal_loss, x, y)
    theirs, their_grad = _grad(fvcore_loss, x, y, 0.25, 2)
    # the float64 evaluation of the same formula, accurate here to ~1e-15
    reference, reference_grad = _grad(fvcore_loss_float64, x.double(), y.double())
    assert _relative(ours, reference) <= 1.2e-7            # float32 rounding of the result
    assert _relative(ours_grad, reference_grad) <= 1.2e-7
    assert _relative(theirs, reference) > 10 * _relative(ours, reference)


def fvcore_loss_float64(x, y, alpha=0.25, gamma=2):
    """torchvision's formula with torch ops, in the inputs' dtype (float64 here)."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return alpha_t * ce * (1 - p_t) ** gamma


def test_training_follows_the_formula_loss_curve():
    fvcore_loss = _fvcore_loss()
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(256, 12, generator=generator)
    targets = (torch.rand(256, 6, generator=generator) < 0.1).float()

    def train(loss_function):
        torch.manual_seed(4)
        model = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.Tanh(),
                                    torch.nn.Linear(32, 6))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        curve = []
        for _ in range(8):
            optimizer.zero_grad()
            loss = loss_function(model(features), targets, 0.25, 2, "mean")
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
        return np.array(curve), torch.cat([p.detach().ravel() for p in model.parameters()])

    ours, our_parameters = train(focal_torch.sigmoid_focal_loss)
    theirs, their_parameters = train(fvcore_loss)
    assert ours[-1] < 0.5 * ours[0]  # it learns
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    np.testing.assert_allclose(our_parameters.numpy(), their_parameters.numpy(), atol=1e-5)


# ----------------------------------------------------------------------------
# One pass; the backward scales the saved gradient


@pytest.fixture
def calls(monkeypatch):
    counted = {"loss": 0, "loss_and_grad": 0, "grad": 0}
    for name in counted:
        original = getattr(focal, name)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            counted[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(focal, name, wrapper)
    return counted


def test_one_focal_pass_for_loss_and_gradient(calls):
    x, y = _batch((4, 6))
    x.requires_grad_(True)
    loss = focal_torch.sigmoid_focal_loss(x, y, reduction="mean")
    assert calls == {"loss": 0, "loss_and_grad": 1, "grad": 0}
    (loss * 3).backward()
    assert calls == {"loss": 0, "loss_and_grad": 1, "grad": 0}  # no second pass
    expected = 3 * focal.grad(x.detach().numpy(), y.numpy(), reduction="mean")
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_loss_only_without_a_gradient(calls):
    x, y = _batch((4, 6))
    focal_torch.sigmoid_focal_loss(x, y)
    leaf = x.clone().requires_grad_(True)
    with torch.no_grad():
        value = focal_torch.sigmoid_focal_loss(leaf, y, reduction="sum")
    with torch.inference_mode():
        focal_torch.softmax_focal_loss(leaf, torch.tensor([0, 1, 2, 3]))
    assert calls == {"loss": 2, "loss_and_grad": 0, "grad": 0}
    assert value.grad_fn is None and not value.requires_grad
    assert float(value) == float(focal.loss(x.numpy(), y.numpy(), reduction="sum"))


def test_backward_of_an_unreduced_loss_multiplies_elementwise():
    x, y = _batch((5, 7))
    x.requires_grad_(True)
    upstream = torch.randn(5, 7, dtype=torch.float64)
    focal_torch.sigmoid_focal_loss(x, y).backward(upstream)
    derivative = focal.grad(x.detach().numpy(), y.numpy(), reduction="none")
    np.testing.assert_array_equal(x.grad.numpy(), upstream.numpy() * derivative)


def test_backward_of_an_unreduced_softmax_loss_spreads_along_the_class_axis():
    x, _ = _batch((3, 4, 5))   # (N, C, d): classes on dim 1
    labels = torch.tensor([[0, 1, 2, 3, -100], [3, 3, 0, 1, 2], [1, 0, 0, 0, 2]])
    x.requires_grad_(True)
    upstream = torch.randn(3, 5, dtype=torch.float64)
    focal_torch.softmax_focal_loss(x, labels, reduction="none").backward(upstream)
    rows = focal.softmax_grad(x.detach().numpy(), labels.numpy(), axis=1, reduction="none")
    np.testing.assert_array_equal(x.grad.numpy(), upstream.numpy()[:, None, :] * rows)


def test_a_retained_graph_gives_the_gradient_again():
    x, y = _batch((4, 3))
    x.requires_grad_(True)
    loss = focal_torch.sigmoid_focal_loss(x, y, reduction="sum")
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    x.grad.mul_(3)  # in place, as gradient clipping does: the saved gradient is not touched
    (again,) = torch.autograd.grad(loss, x, retain_graph=True)
    np.testing.assert_array_equal(again.numpy(), first.numpy())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 4 * first.numpy())
    # the graph is released, as for PyTorch's own losses
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_the_gradient_becomes_grad_without_a_copy():
    """loss.backward() of a reduced loss makes focal's gradient the leaf's .grad itself
    (autograd copied it while the Function kept a reference); after retain_graph it
    copies, since the graph still holds it."""
    x, y = _batch((64, 5))
    x.requires_grad_(True)
    saved = []  # where focal wrote each gradient (float32: the tensor shares it)
    original = focal.loss_and_grad

    def loss_and_grad(*arguments, **options):
        value, gradient = original(*arguments, **options)
        saved.append(gradient.ctypes.data)
        return value, gradient

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(focal, "loss_and_grad", loss_and_grad)
        focal_torch.sigmoid_focal_loss(x, y, reduction="mean").backward()
        assert x.grad.data_ptr() == saved[-1]
        x.grad = None
        loss = focal_torch.sigmoid_focal_loss(x, y, reduction="mean")
        loss.backward(retain_graph=True)
        assert x.grad.data_ptr() != saved[-1]


def test_inputs_and_targets_unchanged():
    x, y = _batch((6, 5))
    x.requires_grad_(True)
    before_x, before_y = x.detach().clone(), y.clone()
    focal_torch.sigmoid_focal_loss(x, y, reduction="mean").backward()
    assert torch.equal(x.detach(), before_x) and torch.equal(y, before_y)


# ----------------------------------------------------------------------------
# dtypes, layouts, devices


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_keep_the_inputs_dtype(dtype):
    x, y = _batch((8, 10), scale=1.5)
    low = x.to(dtype).requires_grad_(True)
    value = focal_torch.sigmoid_focal_loss(low, y.to(dtype), reduction="mean")
    value.backward()
    assert value.dtype == dtype and low.grad.dtype == dtype
    # the exact loss of the rounded inputs, computed in float32 (or 64), then in the dtype
    exact, exact_grad = focal.loss_and_grad(low.detach().double().numpy(), y.numpy())
    computed = torch.float64 if dtype == torch.float64 else torch.float32
    assert value.item() == torch.tensor(float(exact), dtype=torch.float64).to(computed).to(dtype).item()
    tolerance = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float32: 2e-7,
                 torch.float64: 1e-15}[dtype]
    spacing = torch.finfo(dtype).tiny * torch.finfo(dtype).eps  # between subnormals
    np.testing.assert_allclose(low.grad.double().numpy(), exact_grad, rtol=tolerance, atol=spacing)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_tensors_are_read_in_place(dtype, monkeypatch):
    x, y = _batch((10, 12), dtype)
    strided = x[::2, 1::3]  # not contiguous
    seen = []
    original = focal.loss

    def spy(logits, *args, **kwargs):
        seen.append(logits)
        return original(logits, *args, **kwargs)
    monkeypatch.setattr(focal, "loss", spy)
    value = focal_torch.sigmoid_focal_loss(strided, y[::2, 1::3])
    assert seen[0].ctypes.data == strided.data_ptr()
    assert seen[0].strides == tuple(s * strided.element_size() for s in strided.stride())
    contiguous = focal_torch.sigmoid_focal_loss(strided.contiguous(), y[::2, 1::3].contiguous())
    assert torch.equal(value, contiguous)


def test_bfloat16_read_in_place_once_the_core_reads_it(monkeypatch):
    x, y = _batch((6, 4), torch.bfloat16)
    # the reference and the probe first (both call focal.loss): the last array the patched
    # focal.loss sees below is then the adapter's
    exact = focal.loss(x.float().numpy(), y.float().numpy(), reduction="none")
    core_reads_bfloat16 = focal_torch._bfloat16_dtype() is not None
    seen = []
    original = focal.loss
    monkeypatch.setattr(focal, "loss", lambda logits, *a, **k: seen.append(logits) or original(logits, *a, **k))
    value = focal_torch.sigmoid_focal_loss(x, y)
    assert torch.equal(value, torch.from_numpy(exact).to(torch.bfloat16))
    if core_reads_bfloat16:
        assert seen[-1].ctypes.data == x.data_ptr()


def test_a_tensor_on_another_device_names_it_and_the_way_out():
    x = torch.zeros(2, 3, device="meta")
    with pytest.raises(TypeError, match=r"^inputs: a tensor on device meta.*inputs\.cpu\(\)"):
        focal_torch.sigmoid_focal_loss(x, torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"^targets: a tensor on device meta.*targets\.cpu\(\)"):
        focal_torch.softmax_focal_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long,
                                                                      device="meta"))


def test_an_expanded_tensor_past_numpys_largest_array_is_named():
    """An expanded tensor of 4 bytes of storage may claim 2**62 elements; NumPy
    refuses to view it with "array is too big", which named no argument
    (review 90): the message names the tensor, whichever argument it is."""
    huge = torch.zeros(1).expand(2**62)
    with pytest.raises(ValueError, match=r"^inputs: a tensor of shape \(4611686018427387904,\) "
                                         "is larger than the largest array NumPy can view"):
        focal_torch.sigmoid_focal_loss(huge, torch.zeros(1), reduction="sum")
    with pytest.raises(ValueError, match="^targets: a tensor of shape"):
        focal_torch.sigmoid_focal_loss(torch.zeros(1), huge, reduction="sum")
    with pytest.raises(ValueError, match="^inputs: a tensor of shape"):
        focal_torch.softmax_focal_loss(torch.zeros(1, 1).expand(2**61, 2),
                                       torch.zeros(1, dtype=torch.long), reduction="sum")


def _not_dense(kind, dense):
    """`dense` as a sparse tensor, or as a nested tensor of its rows (a 1-D
    tensor: one row)."""
    if kind == "sparse":
        return dense.to_sparse()
    rows = list(dense) if dense.ndim == 2 else [dense]
    with warnings.catch_warnings():  # (the strided nested layout is a prototype)
        warnings.simplefilter("ignore")
        layout = torch.jagged if kind == "nested, jagged" else torch.strided
        return torch.nested.nested_tensor(rows, layout=layout)


@pytest.mark.parametrize("kind", ["sparse", "nested, strided", "nested, jagged"])
@pytest.mark.parametrize("name", ["inputs", "targets", "weights"])
@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_a_tensor_that_is_not_dense_is_named(form, kind, name):
    """A sparse or nested tensor raises focal's TypeError naming the argument
    (a nested tensor of the strided layout raised PyTorch's internal
    RuntimeError: it has no sizes)."""
    if form == "sigmoid":
        function = focal_torch.sigmoid_focal_loss
        arguments = {"inputs": torch.zeros(2, 3), "targets": torch.zeros(2, 3),
                     "weights": torch.ones(2, 3)}
    else:  # integer labels and one weight per row
        function = focal_torch.softmax_focal_loss
        arguments = {"inputs": torch.zeros(2, 3), "targets": torch.tensor([0, 2]),
                     "weights": torch.ones(2)}
    arguments[name] = _not_dense(kind, arguments[name])
    with pytest.raises(TypeError, match=f"^{name}: expected a dense \\(strided\\) tensor"):
        function(arguments.pop("inputs"), arguments.pop("targets"), **arguments)


def test_dim_and_ignore_index_take_any_integer_type():
    """What the annotations (SupportsIndex) and the core's functions take:
    NumPy integers and any object with __index__ (review 78: dim refused)."""
    x = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    labels = torch.tensor([[1, -100], [3, 0], [2, 2]])
    expected = focal_torch.softmax_focal_loss(x, labels, reduction="none", dim=1)
    for dim, ignore in ((np.int64(1), np.int32(-100)), (Index(-2), Index(-100))):
        got = focal_torch.softmax_focal_loss(x, labels, reduction="none", dim=dim,
                                             ignore_index=ignore)
        assert torch.equal(got, expected)
        module = focal_torch.SoftmaxFocalLoss(reduction="none", dim=dim, ignore_index=ignore)
        assert torch.equal(module(x, labels), expected)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="^inputs: expected a floating-point tensor"):
        focal_torch.sigmoid_focal_loss(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="^inputs: expected a torch.Tensor"):
        focal_torch.sigmoid_focal_loss(np.zeros((2, 3)), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^targets: .*targets\.detach\(\)"):
        focal_torch.sigmoid_focal_loss(torch.zeros(2, 3), torch.zeros(2, 3, requires_grad=True))
    with pytest.raises(ValueError, match="^dim: 2 is out of range"):
        focal_torch.softmax_focal_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), dim=2)
    with pytest.raises(TypeError, match="^dim: expected an integer"):
        focal_torch.softmax_focal_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), dim=1.0)
    with pytest.raises(ValueError, match="^reduction"):
        focal_torch.sigmoid_focal_loss(torch.zeros(2, 3), torch.zeros(2, 3), reduction="avg")


def test_messages_name_this_modules_arguments():
    """focal's softmax calls the targets `labels` and every family the inputs
    `logits`; here they are `targets` and `inputs`, and the messages say so.  A
    dtype NumPy cannot read (float8, quantized) is named too, not PyTorch's
    "Got unsupported ScalarType"."""
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="^targets: class indices must lie in"):
        focal_torch.softmax_focal_loss(z, torch.tensor([0, 1, 7, 2]))
    with pytest.raises(TypeError, match="^targets: "):
        focal_torch.softmax_focal_loss(z, torch.zeros(4))
    with pytest.raises(ValueError, match="^inputs: "):
        focal_torch.softmax_focal_loss(torch.tensor(1.0), torch.tensor(0))
    # focal's names in the body of a message too (the first word alone was renamed)
    for call in (lambda: focal_torch.sigmoid_focal_loss(z, torch.zeros(4, 5)),
                 lambda: focal_torch.sigmoid_focal_loss(z, torch.zeros(4, 3),
                                                        weights=torch.ones(5)),
                 lambda: focal_torch.softmax_focal_loss(z, torch.zeros(5, dtype=torch.long)),
                 lambda: focal_torch.softmax_focal_loss(z, torch.zeros(4, dtype=torch.long),
                                                        dim=5)):
        with pytest.raises(ValueError) as raised:
            call()
        assert "inputs" in str(raised.value), raised.value
        assert not re.search(r"\b(logits|labels|axis)\b", str(raised.value)), raised.value
    for dtype in ("float8_e4m3fn", "float8_e5m2"):
        if not hasattr(torch, dtype):
            continue
        odd = torch.ones(4, 3).to(getattr(torch, dtype))
        with pytest.raises(TypeError, match=f"^targets: a tensor of dtype torch.{dtype}"):
            focal_torch.sigmoid_focal_loss(z, odd)
        with pytest.raises(TypeError, match=f"^weights: a tensor of dtype torch.{dtype}"):
            focal_torch.sigmoid_focal_loss(z, torch.ones(4, 3), weights=odd)
        with pytest.raises(TypeError, match=f"^alpha: a tensor of dtype torch.{dtype}"):
            focal_torch.sigmoid_focal_loss(z, torch.ones(4, 3), alpha=odd[0])
    with warnings.catch_warnings():  # (PyTorch deprecates quantized tensors)
        warnings.simplefilter("ignore")
        quantized = torch.quantize_per_tensor(torch.ones(4, 3), 0.1, 0, torch.quint8)
    with pytest.raises(TypeError, match="^targets: a tensor of dtype torch.quint8"):
        focal_torch.sigmoid_focal_loss(z, quantized)


def test_every_tensor_argument_that_requires_grad_is_refused_by_name():
    """A gamma tensor that requires grad raised torch's own error ("Can't call numpy() on
    Tensor that requires grad"), or with differentiable inputs got no gradient, silently."""
    x = torch.zeros(2, 3, requires_grad=True)
    dense, labels = torch.zeros(2, 3), torch.tensor([0, 1])
    wanting = {"alpha": torch.tensor(0.25, requires_grad=True),
               "gamma": torch.tensor(2.0, requires_grad=True),
               "weights": torch.ones(2, 3, requires_grad=True)}
    for name, value in wanting.items():
        for inputs in (x, x.detach()):
            with pytest.raises(ValueError, match=rf"^{name}: .*{name}\.detach\(\)"):
                focal_torch.sigmoid_focal_loss(inputs, dense, **{name: value})
            row_value = value[0] if name == "weights" else value
            with pytest.raises(ValueError, match=rf"^{name}: .*{name}\.detach\(\)"):
                focal_torch.softmax_focal_loss(inputs, labels, **{name: row_value})
    # detached (or without grad mode) they are read like numbers
    gamma = torch.tensor(1.5)
    assert torch.equal(focal_torch.sigmoid_focal_loss(x.detach(), dense, gamma=gamma),
                       focal_torch.sigmoid_focal_loss(x.detach(), dense, gamma=1.5))
    with torch.no_grad():
        assert torch.equal(focal_torch.sigmoid_focal_loss(x, dense, gamma=wanting["gamma"]),
                           focal_torch.sigmoid_focal_loss(x, dense, gamma=2.0))
    assert torch.equal(
        focal_torch.softmax_focal_loss(x.detach(), torch.tensor([0, 7]), ignore_index=torch.tensor(7)),
        focal_torch.softmax_focal_loss(x.detach(), torch.tensor([0, 7]), ignore_index=7))
    with pytest.raises(TypeError, match="^ignore_index: a tensor on device meta"):
        focal_torch.softmax_focal_loss(x.detach(), labels,
                                       ignore_index=torch.tensor(-1, device="meta"))


# ----------------------------------------------------------------------------
# Conventions and the module forms


def test_torchvision_conventions():
    x, y = _batch((4, 5))
    assert focal_torch.sigmoid_focal_loss(x, y).shape == (4, 5)  # "none" by default
    # a negative alpha turns the weighting off in every form torchvision's alpha >= 0
    # test takes (a 0-d tensor or a NumPy scalar was refused)
    for negative in (-1, -0.5, torch.tensor(-1.0), np.float32(-1.0), np.int64(-1)):
        np.testing.assert_array_equal(focal_torch.sigmoid_focal_loss(x, y, alpha=negative),
                                      focal_torch.sigmoid_focal_loss(x, y, alpha=None))
    labels = torch.tensor([0, 5, 2, -1])  # class indices: 5 = background, -1 ignored
    dense = F.one_hot(labels.clamp(0, 4), 5).double() * (labels[:, None] < 5) * (labels[:, None] >= 0)
    by_index = focal_torch.sigmoid_focal_loss(x, labels)
    assert torch.equal(by_index[:3], focal_torch.sigmoid_focal_loss(x, dense)[:3])
    assert torch.equal(by_index[3], torch.zeros(5, dtype=torch.float64))


def test_module_forms():
    x, y = _batch((4, 5))
    criterion = focal_torch.SigmoidFocalLoss(alpha=0.5, gamma=1, reduction="sum")
    assert isinstance(criterion, torch.nn.Module) and "reduction='sum'" in repr(criterion)
    weights = torch.rand(4, 1, dtype=torch.float64)
    assert torch.equal(criterion(x, y, weights),
                       focal_torch.sigmoid_focal_loss(x, y, 0.5, 1, "sum", weights=weights))
    labels = torch.tensor([[1, 0, -100], [2, 2, 1]])
    z, _ = _batch((2, 4, 3))
    softmax = focal_torch.SoftmaxFocalLoss(gamma=2.0, ignore_index=-100)
    assert torch.equal(softmax(z, labels), focal_torch.softmax_focal_loss(z, labels))
    last = focal_torch.SoftmaxFocalLoss(reduction="none", dim=-1)
    assert last(z.transpose(1, 2), labels).shape == (2, 3)
    assert torch.equal(last(z.transpose(1, 2), labels), softmax.__class__(reduction="none")(z, labels))


def _eager_softmax_focal(z, labels, gamma, alpha=None, reduction="mean", ignore_index=-100):
    """The softmax focal loss written with F.cross_entropy (classes on dim 1)."""
    ce = F.cross_entropy(z, labels, reduction="none", ignore_index=ignore_index)
    loss = (1 - torch.exp(-ce)) ** gamma * ce
    if alpha is not None:
        loss = loss * torch.as_tensor(alpha, dtype=z.dtype)[labels.clamp(min=0)]
    valid = labels != ignore_index
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / valid.sum()
    return loss


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha", [None, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
def test_softmax_agrees_with_an_eager_formula(reduction, alpha):
    z, _ = _batch((8, 6, 3, 2), scale=3.0)
    generator = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 6, (8, 3, 2), generator=generator)
    labels[0, 0, 0] = labels[3, 2, 1] = -100
    ours, ours_grad = _grad(focal_torch.softmax_focal_loss, z, labels, alpha, 2.0, reduction)
    theirs, their_grad = _grad(_eager_softmax_focal, z, labels, 2.0, alpha, reduction)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ours_grad.numpy(), their_grad.numpy(), rtol=1e-10, atol=1e-14)


def test_second_derivatives_are_refused_not_wrong():
    x, y = _batch((3, 4))
    x.requires_grad_(True)
    loss = focal_torch.sigmoid_focal_loss(x, y, reduction="sum")
    with pytest.raises(RuntimeError, match="second derivatives are not available"):
        torch.autograd.grad(loss, x, create_graph=True)


# (torch's forward mode loads its decompositions with torch.jit.script, which warns)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_mixed_mode_second_derivatives_are_refused_not_wrong(form):
    """A Hessian-vector product by forward over reverse mode (a gradient taken
    inside the dual level) or reverse over forward mode (a backward through the
    loss's tangent to the inputs) came out without focal's part, silently: the
    saved gradient has no tangent, and the tangent's saved gradient no graph.
    Both raise now; the first-order uses beside them stay (the tangent alone, a
    gradient after the dual level, the tangent's derivative with respect to its
    direction: the gradient)."""
    x = torch.tensor([[0.3, -1.2, 2.0], [1.5, 0.0, -0.7]], dtype=torch.float64,
                     requires_grad=True)
    if form == "sigmoid":
        y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 1.0]], dtype=torch.float64)
        f = lambda z: focal_torch.sigmoid_focal_loss(z, y, reduction="sum")  # noqa: E731
    else:
        f = lambda z: focal_torch.softmax_focal_loss(z, torch.tensor([0, 2]),  # noqa: E731
                                                     reduction="sum")
    v = torch.tensor([[1.0, -0.5, 0.25], [2.0, 1.0, -1.0]], dtype=torch.float64)
    with forward_ad.dual_level():
        loss = f(forward_ad.make_dual(x, v))
        with pytest.raises(RuntimeError, match="second derivatives are not available"):
            torch.autograd.grad(loss, x, retain_graph=True)
    with forward_ad.dual_level():
        loss = f(forward_ad.make_dual(x, v)) + (forward_ad.make_dual(x, v) ** 3).sum()
        tangent = forward_ad.unpack_dual(loss).tangent
        with pytest.raises(RuntimeError, match="second derivatives are not available"):
            torch.autograd.grad(tangent, x)
    gradient = torch.autograd.grad(f(x), x)[0]
    with forward_ad.dual_level():
        loss = f(forward_ad.make_dual(x, v))
        tangent = forward_ad.unpack_dual(loss).tangent
    assert torch.equal(tangent, (gradient * v).sum())
    assert torch.equal(torch.autograd.grad(loss, x)[0], gradient)  # after the dual level
    direction = v.clone().requires_grad_(True)
    with forward_ad.dual_level():
        tangent = forward_ad.unpack_dual(f(forward_ad.make_dual(x.detach(), direction))).tangent
        assert torch.equal(torch.autograd.grad(tangent, direction)[0], gradient)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64])
def test_a_negative_0d_alpha_turns_weighting_off_in_every_dtype(dtype):
    """torchvision's alpha=-1 as a 0-d tensor: a bfloat16 one was refused as
    outside [0, 1] (NumPy reads it as ml_dtypes' bfloat16, of kind "V")."""
    x, y = _batch((3, 4))
    expected = focal_torch.sigmoid_focal_loss(x, y, alpha=-1, reduction="sum")
    got = focal_torch.sigmoid_focal_loss(x, y, alpha=torch.tensor(-1, dtype=dtype),
                                         reduction="sum")
    assert torch.equal(got, expected)


@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_each_backward_hands_out_a_gradient_of_its_own(form):
    """torch.autograd.grad returns focal's gradient itself (no pass over it); on a
    retained graph a second call returned the same tensor, so that changing one in
    place changed the other.  Now only the first backward hands it out; later ones
    hand out copies, each a tensor of its own, the same bits.  The first one changed
    in place is never handed out again: an error names what happened (the saved
    gradient is focal's only copy), not the changed values."""
    x = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.2, 1.5]], requires_grad=True)
    if form == "sigmoid":
        y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        loss = focal_torch.sigmoid_focal_loss(x, y, reduction="mean")
    else:
        loss = focal_torch.softmax_focal_loss(x, torch.tensor([0, 2]))
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    expected = first.clone()
    (second,) = torch.autograd.grad(loss, x, retain_graph=True)
    (third,) = torch.autograd.grad(loss, x, retain_graph=True)
    assert len({first.data_ptr(), second.data_ptr(), third.data_ptr()}) == 3
    second.mul_(10)
    assert torch.equal(first, expected) and torch.equal(third, expected)
    loss.backward(retain_graph=True)
    assert torch.equal(x.grad, expected)
    first.zero_()
    with pytest.raises(RuntimeError, match="modified in place"):
        torch.autograd.grad(loss, x)


@pytest.mark.parametrize("transform", ["vmap", "grad", "jacrev"])
@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
@pytest.mark.parametrize("closure", [False, True])
def test_torch_func_transforms_are_refused_by_name(transform, form, closure):
    """torch.func's wrappers have no storage: reading them raised PyTorch's own RuntimeError
    ("Cannot access data pointer ..."); now a TypeError names the logits the transform wrapped,
    also where the targets come from outside the transform (closure: the usual way, whose
    targets the transform wraps only when they are read)."""
    outside = torch.zeros(3) if form == "sigmoid" else torch.zeros(2, dtype=torch.long)

    def targets():
        return outside if closure else outside.clone()
    if form == "sigmoid":
        call = lambda r: focal_torch.sigmoid_focal_loss(r, targets(), reduction="sum")  # noqa: E731
    else:
        call = lambda r: focal_torch.softmax_focal_loss(r, targets(), reduction="sum")  # noqa: E731
    shape = (3,) if form == "sigmoid" else (2, 3)
    if transform == "vmap":
        run = lambda: torch.func.vmap(call)(torch.randn(4, *shape))  # noqa: E731
    else:
        run = lambda: getattr(torch.func, transform)(call)(torch.randn(*shape))  # noqa: E731
    with pytest.raises(TypeError, match=r"^inputs: a tensor of a torch.func "):
        run()
    # outside the transform the same call works
    assert torch.isfinite(call(torch.randn(*shape)))


def test_torch_func_messages_name_the_argument_wrapped_or_none():
    """The message named the inputs whatever the transform wrapped: gamma or
    ignore_index mapped over, or nothing focal reads (a transform over another
    tensor), where no argument is to blame."""
    x, y = torch.randn(3, 4), (torch.rand(3, 4) < 0.3).float()
    with pytest.raises(TypeError, match=r"^gamma: a tensor of a torch.func "):
        torch.func.vmap(lambda g: focal_torch.sigmoid_focal_loss(x, y, gamma=g,
                                                                 reduction="sum"))(
            torch.tensor([1.0, 2.0]))
    labels = torch.tensor([0, 1, 2])
    with pytest.raises(TypeError, match=r"^ignore_index: a tensor of a torch.func "):
        torch.func.vmap(lambda i: focal_torch.softmax_focal_loss(x, labels, ignore_index=i))(
            torch.tensor([-100, 1]))
    with pytest.raises(TypeError, match=r"^focal.torch cannot run inside a torch.func transform "
                                        r".*wraps none of its arguments"):
        torch.func.vmap(lambda z: focal_torch.sigmoid_focal_loss(x, y, reduction="sum") + z)(
            torch.tensor([1.0, 2.0]))


# (torch 2.13's compile machinery warns as it traces: of its own deprecated parts,
# torch.jit's script_method and instantiating the autograd Function, and of reading
# .grad of a non-leaf tensor, which Dynamo's tracing does; none of these is focal's)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_under_torch_compile_the_values_and_gradients_are_eager_ones(form):
    """torch.compile (its default backend) traces the model around focal's call, which
    is a graph break (focal reads the tensors' memory with NumPy): the compiled loss and
    the gradient reaching focal's logits are the eager ones, bit for bit, and the layer
    before the loss compiles and trains (its gradient within rounding: the compiled
    kernels of tanh and the product round on their own)."""
    torch._dynamo.reset()
    layer = torch.nn.Linear(4, 3).double()
    x, _ = _batch((5, 4))
    if form == "sigmoid":
        targets = (torch.rand(5, 3, generator=torch.Generator().manual_seed(1)) < 0.3).double()
        loss_of = lambda z: focal_torch.sigmoid_focal_loss(z, targets, reduction="mean")  # noqa: E731
    else:
        targets = torch.tensor([0, 2, 1, -100, 2])
        loss_of = lambda z: focal_torch.softmax_focal_loss(z, targets, gamma=2.0)  # noqa: E731

    def model(inputs):
        return loss_of(torch.tanh(layer(inputs)) * 3.0)

    def at_the_logits(z):
        return loss_of(z * 1.0)  # (the product's gradient passes the cotangent exactly)

    z = (torch.tanh(layer(x)) * 3.0).detach()
    results = []
    for compiled in (False, True):
        run_model = torch.compile(model) if compiled else model
        run_loss = torch.compile(at_the_logits) if compiled else at_the_logits
        layer.zero_grad()
        run_model(x).backward()
        leaf = z.clone().requires_grad_(True)
        loss = run_loss(leaf)
        loss.backward()
        results.append((loss.detach(), leaf.grad, layer.weight.grad.clone()))
    (eager_loss, eager_grad, eager_layer), (loss, grad, layer_grad) = results
    assert torch.equal(loss, eager_loss) and torch.equal(grad, eager_grad)
    torch.testing.assert_close(layer_grad, eager_layer, rtol=1e-12, atol=1e-15)


# (torch's vectorised forward-mode jacobian warns of its own use of torch.jit.script)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("form, reduction, dim",
                         [("sigmoid", "none", None), ("sigmoid", "sum", None),
                          ("sigmoid", "mean", None), ("softmax", "none", 1),
                          ("softmax", "mean", 1), ("softmax", "none", 0)])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_forward_mode_gives_the_directional_derivative(form, reduction, dim, requires_grad):
    """Forward mode (torch.autograd.forward_ad, jacobian with strategy="forward-mode"): a
    dual tensor's tangent went the no-gradient path and was dropped without a word (a
    tangent of None, a Jacobian of zeros), and one that required grad met PyTorch's own
    NotImplementedError.  The tangent is the saved gradient times the inputs' tangent, summed
    as the loss sums; it equals reverse mode's vector-Jacobian products."""
    x = torch.tensor([[2.0, -1.0, 0.5], [0.3, 4.0, -2.5]], dtype=torch.float64)
    if form == "sigmoid":
        y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 1.0]], dtype=torch.float64)
        f = lambda z: focal_torch.sigmoid_focal_loss(z, y, reduction=reduction)  # noqa: E731
    else:
        y = torch.tensor([0, 2]) if dim == 1 else torch.tensor([1, 0, 1])
        f = lambda z: focal_torch.softmax_focal_loss(z, y, reduction=reduction,  # noqa: E731
                                                     dim=dim)
    tangent = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=torch.float64)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(x.clone().requires_grad_(requires_grad), tangent)
        value, derivative = forward_ad.unpack_dual(f(dual))
    assert torch.equal(value.detach(), f(x))
    assert derivative is not None and derivative.shape == value.shape
    reverse = torch.autograd.functional.jacobian(f, x)
    expected = (reverse * tangent).flatten(start_dim=reverse.dim() - 2).sum(dim=-1)
    torch.testing.assert_close(derivative, expected, rtol=1e-12, atol=1e-15)
    forward = torch.autograd.functional.jacobian(f, x, vectorize=True,
                                                 strategy="forward-mode")
    torch.testing.assert_close(forward, reverse, rtol=1e-12, atol=1e-15)
    # the vectorised backward hands the reduced loss a batched incoming gradient, whose
    # value the backward read with item() (PyTorch's "Batching rule not implemented")
    torch.testing.assert_close(torch.autograd.functional.jacobian(f, x, vectorize=True),
                               reverse, rtol=0, atol=0)


@pytest.mark.parametrize("argument", ["targets", "weights"])
def test_forward_mode_tangents_of_other_arguments_are_refused_by_name(argument):
    """focal differentiates with respect to the inputs only: a dual tensor among the
    targets or weights would have its tangent dropped without a word (as reverse mode
    refuses such a tensor that requires grad)."""
    x = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
    arguments = {"targets": torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64),
                 "weights": torch.tensor([[0.5, 1.0, 2.0]], dtype=torch.float64)}
    with forward_ad.dual_level():
        arguments[argument] = forward_ad.make_dual(arguments[argument],
                                                   torch.ones_like(arguments[argument]))
        with pytest.raises(ValueError, match=f"^{argument}: focal differentiates with respect "
                                             f"to the inputs only"):
            focal_torch.sigmoid_focal_loss(x, arguments["targets"], reduction="sum",
                                           weights=arguments["weights"])


def test_forward_mode_of_a_mean_over_nothing_is_nan():
    """The mean over no elements is nan, its tangent too (as torchvision's formula's)."""
    z = torch.zeros(0, 3, dtype=torch.float64)
    with forward_ad.dual_level():
        value, tangent = forward_ad.unpack_dual(focal_torch.sigmoid_focal_loss(
            forward_ad.make_dual(z, torch.ones_like(z)), torch.zeros(0, 3, dtype=torch.float64),
            reduction="mean"))
    assert torch.isnan(value) and torch.isnan(tangent)


@pytest.mark.parametrize("case", ["every row ignored", "every weight 0", "softmax, every row ignored"])
def test_forward_mode_of_a_mean_over_no_counted_element_is_nan(case):
    """Elements that are all ignored, or all of weight 0, leave a mean over
    nothing too: its value was nan and its tangent 0 (F.cross_entropy: nan)."""
    z = torch.randn(4, 3, dtype=torch.float64)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(z, torch.ones_like(z))
        if case == "every row ignored":
            out = focal_torch.sigmoid_focal_loss(dual, torch.full((4,), -1), reduction="mean")
        elif case == "every weight 0":
            out = focal_torch.sigmoid_focal_loss(dual, torch.zeros(4, 3, dtype=torch.float64),
                                                 reduction="mean", weights=torch.zeros(4, 3))
        else:
            out = focal_torch.softmax_focal_loss(dual, torch.full((4,), -100), reduction="mean")
        value, tangent = forward_ad.unpack_dual(out)
    assert torch.isnan(value) and torch.isnan(tangent)


def test_one_class_warnings_come_once_at_the_callers_line():
    """focal's warnings about one class (class indices over it, a softmax over
    it) name this module's arguments and point at the caller's line, not at
    torch's autograd or this module's forward (review 81), once per call,
    for the functions and the modules."""
    x = torch.tensor([[0.3], [-1.2], [2.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    calls = [
        ("targets: class indices over a class axis of one class",
         lambda: focal_torch.sigmoid_focal_loss(x, labels, reduction="sum")),
        ("targets: class indices over a class axis of one class",
         lambda: focal_torch.SigmoidFocalLoss(reduction="sum")(x, labels)),
        (r"inputs: the class dim \(dim 1\) has a single class",
         lambda: focal_torch.softmax_focal_loss(x, labels * 0, reduction="sum")),
        (r"inputs: the class dim \(dim 1\) has a single class",
         lambda: focal_torch.SoftmaxFocalLoss(reduction="sum")(x, labels * 0)),
    ]
    assert_warns_once_at(__file__, calls, lambda result: result.backward())


def test_the_one_class_warning_names_this_modules_arguments():
    """A softmax over one class warns, as focal does, naming inputs and dim
    (focal's own warning named logits and axis) and only once per call."""
    with pytest.warns(UserWarning) as record:
        value = focal_torch.softmax_focal_loss(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    assert float(value) == 0.0
    messages = [str(w.message) for w in record]
    assert messages == ["inputs: the class dim (dim 1) has a single class; the softmax over it "
                        "is 1 and the focal loss identically 0"], messages
    # a layout that is refused is refused without the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="^inputs: "):
            focal_torch.softmax_focal_loss(torch.randn(3, 1).to_sparse(),
                                           torch.zeros(3, dtype=torch.long))

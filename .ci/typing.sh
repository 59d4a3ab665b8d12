#!/usr/bin/env bash
# Typing: the stubs that ship with focal (py.typed, focal/_core.pyi, and the
# inline annotations of the pure-Python modules, which mypy reads as their
# stubs) must agree with the installed package, as mypy's stubtest sees it;
# then mypy type-checks the package's source, and a user's script against the
# installed package.
#
#   bash .ci/typing.sh            # a fresh venv with focal and mypy
#   bash .ci/typing.sh PYTHON     # reuse a venv where focal is installed
#                                 # (mypy is installed into it when missing)
#
# FOCAL_MYPY_REPORT_ONLY=1 prints the errors of steps 2 and 3 without failing;
# stubtest (step 1) always gates.  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export PIP_DISABLE_PIP_VERSION_CHECK=1
MYPY_SPEC="mypy==2.4.*"   # pinned: a new mypy may find new errors; bump on purpose

start=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ $# -ge 1 ]; then
    py="$1"
else
    python3 -m venv "$work/venv"
    py="$work/venv/bin/python"
    "$py" -m pip install --quiet --upgrade pip
    "$py" -m pip install --quiet ".[dask]"   # focal.dask imports Dask (stubtest imports it)
fi
"$py" -c "import mypy" 2>/dev/null || "$py" -m pip install --quiet "$MYPY_SPEC"
echo "typing: $("$py" -m mypy --version), environment ready in $((SECONDS - start)) s"

# mypy settings for stubtest.  Type errors inside the pure-Python modules are
# the second step's business, not the stubs': stubtest refuses to compare
# anything while mypy reports an error, so they are silenced here, except in
# focal._core, whose .pyi is the one hand-written stub.
cat > "$work/stubtest.ini" <<EOF
[mypy]
cache_dir = $work/stubtest_cache
[mypy-focal.*]
ignore_errors = True
[mypy-focal._core]
ignore_errors = False
EOF

# 1. stubtest, from outside the source tree so that both the runtime import and
#    mypy's module search find the installed package (with its compiled _core).
(cd "$work" && "$py" -m mypy.stubtest --mypy-config-file "$work/stubtest.ini" focal)
echo "typing: stubtest passed in $((SECONDS - start)) s"

# 2. mypy on the source (its .py files and focal/_core.pyi).  The optional
#    peers of the benchmark and figure commands need not be installed.
cat > "$work/mypy.ini" <<EOF
[mypy]
cache_dir = $work/mypy_cache
[mypy-torch.*,torchvision.*,jax.*,optax.*,matplotlib.*]
ignore_missing_imports = True
EOF
status=0
"$py" -m mypy --config-file "$work/mypy.ini" "$root/focal" || status=$?
echo "typing: mypy on the source done in $((SECONDS - start)) s"

# 3. a user's view of the installed package (py.typed and the shipped stubs):
#    the public functions keep their signatures instead of decaying to Any,
#    the reduction picks the return type (a NumPy scalar or an array), and
#    NumPy scalars are accepted where the run time accepts them.
#    Each `type: ignore` marks a call that must be an error; with
#    --warn-unused-ignores an ignore that is not needed is itself an error.
cat > "$work/user.py" <<'EOF'
from fractions import Fraction
from typing import Any, Literal, Tuple

import numpy as np
import numpy.typing as npt

import focal
import focal.dask
import focal.jax
import focal.torch

x = np.zeros((4, 3), np.float32)
labels = np.zeros(4, np.int64)
grad: np.ndarray = focal.grad(x, labels)
value, grad = focal.loss_and_grad(x, labels, reduction="sum_over_positives")
g, h = focal.grad_hess(x, labels)
bias: float = focal.prior_bias(0.01)
biases: np.ndarray = focal.softmax_prior_bias(5)
focal.set_num_threads(focal.get_num_threads())

# reductions give a NumPy scalar, "none" an array: the overloads tell them apart
reduced: np.floating[Any] = focal.loss(x, labels)
elementwise: npt.NDArray[np.floating[Any]] = focal.loss(x, labels, reduction="none")
focal.loss(x, labels, reduction="none", out=np.empty_like(x))
pair: Tuple[np.floating[Any], npt.NDArray[np.floating[Any]]] = focal.loss_and_grad(x, labels)
rows: npt.NDArray[np.floating[Any]] = focal.softmax_loss(x, labels, reduction="none")
reduced = focal.softmax_loss(x, labels, reduction="sum") + focal.star_loss(x, labels)
star_pair: Tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]] = \
    focal.star_loss_and_grad(x, labels, reduction="none")
chosen: Literal["none", "mean"] = "mean"
either = focal.loss(x, labels, reduction=chosen)  # the union of both


def mean_loss(logits: npt.NDArray[np.float32], targets: npt.NDArray[np.int64]) -> np.floating[Any]:
    return focal.loss(logits, targets)  # not Any: --strict's warn_return_any


# NumPy scalars where the run time takes them
focal.prior_bias(np.float32(0.01))
focal.prior_bias(np.float64(0.01))
focal.softmax_prior_bias(np.int64(5), np.float32(0.01))
focal.set_num_threads(np.int64(2))
focal.loss(x, labels, ignore_index=np.int64(-1))
focal.softmax_loss(x, labels, axis=np.intp(-1), ignore_index=np.int32(-100))
# any other numbers.Real the run time takes: a Fraction
focal.prior_bias(Fraction(1, 100))
focal.loss(x, labels, normalizer=Fraction(4))

# gradient boosting
margins = np.zeros(4)
floats = labels.astype(np.float64)
objective_pair: Tuple[np.ndarray, np.ndarray] = focal.xgboost_objective()(floats, margins)
name, score, higher_is_better = focal.lightgbm_metric()(floats, margins)
score = float(focal.lightgbm_objective(hessian_floor=0.02).hessian_floor)
focal.xgboost_metric(alpha=None, gamma=np.float32(1.0))
# multiclass=True gives the multi-class classes, with their own attributes
scale_of = focal.xgboost_objective(multiclass=True).hessian_scale
class_alpha = focal.lightgbm_objective(alpha=[0.2, 0.8], multiclass=True).alpha
total_alpha: float = sum(class_alpha or ())
focal.lightgbm_metric(multiclass=np.True_)
focal.xgboost_objective(hessian_floor=np.float32(0.01), hessian_scale=np.float64(1.0))
# a 0-d array where a number goes, as the run time takes it (SupportsFloat)
focal.loss(x, labels, gamma=np.array(2.0))
focal.xgboost_objective(hessian_floor=np.array(0.01))

# focal.dask keeps its signatures through the docstring decorator
import dask.array as da
lazy_x = da.zeros((4, 3), chunks=2)
lazy: da.Array = focal.dask.loss(lazy_x, lazy_x, reduction="none", ignore_index=np.int64(-1))
lazy_pair: Tuple[da.Array, da.Array] = focal.dask.softmax_loss_and_grad(lazy_x, labels)

# the adapters take NumPy scalars where the run time does, as the core does
tensor: Any = None
focal.torch.sigmoid_focal_loss(tensor, tensor, np.float32(0.25), np.float32(2.0),
                               ignore_index=np.int64(-1))
focal.torch.softmax_focal_loss(tensor, tensor, gamma=np.float32(2.0), dim=np.int64(1),
                               ignore_index=np.int32(-100))
focal.torch.SigmoidFocalLoss(gamma=np.float32(2.0), ignore_index=np.int64(-1))
focal.torch.SoftmaxFocalLoss(gamma=np.int64(2), dim=np.intp(1))
focal.jax.sigmoid_focal_loss(tensor, tensor, alpha=np.float32(0.25), gamma=np.float32(2.0))
focal.jax.softmax_focal_loss(tensor, tensor, np.zeros(3), np.float32(2.0), axis=np.int64(-1),
                             ignore_index=np.int64(-1))

focal.loss(x, labels, nonsense=1)  # type: ignore[call-overload]
focal.grad(x, labels, nonsense=1)  # type: ignore[call-arg]
focal.loss_and_grad(x, labels, nonsense=1)  # type: ignore[call-overload]
focal.grad_hess(x, labels, reduction="sum")  # type: ignore[call-arg]
focal.softmax_loss(x, labels, nonsense=1)  # type: ignore[call-overload]
focal.softmax_grad(x, labels, nonsense=1)  # type: ignore[call-arg]
focal.softmax_loss_and_grad(x, labels, nonsense=1)  # type: ignore[call-overload]
focal.star_loss(x, labels, nonsense=1)  # type: ignore[call-overload]
focal.star_grad(x, labels, nonsense=1)  # type: ignore[call-arg]
focal.star_loss_and_grad(x, labels, nonsense=1)  # type: ignore[call-overload]
focal.loss(x, labels, reduction=1)  # type: ignore[call-overload]
focal.loss(x, labels, reduction="avg")  # type: ignore[call-overload]
focal.grad(x, labels, reduction="avg")  # type: ignore[arg-type]
focal.softmax_loss(x, labels, reduction="sum_over_positives")  # type: ignore[call-overload]
focal.loss(x, labels, out=np.empty_like(x))  # type: ignore[call-overload]
not_an_array: np.ndarray = focal.loss(x, labels)  # type: ignore[assignment]
not_a_scalar: np.floating[Any] = focal.loss(x, labels, reduction="none")  # type: ignore[assignment]
focal.prior_bias("0.01")  # type: ignore[arg-type]
focal.set_num_threads("2")  # type: ignore[arg-type]
focal.set_num_threads(2.0)  # type: ignore[arg-type]
focal.xgboost_metric(hessian_floor=0.01)  # type: ignore[call-overload]
focal.torch.sigmoid_focal_loss(tensor, tensor, reduction="avg")  # type: ignore[arg-type]
focal.torch.softmax_focal_loss(tensor, tensor, reduction="sum_over_positives")  # type: ignore[arg-type]
focal.jax.sigmoid_focal_loss(tensor, tensor, gamma="2")  # type: ignore[arg-type]
focal.loss(x, labels, gamma="2")  # type: ignore[call-overload]
focal.star_grad(x, labels, beta="1")  # type: ignore[arg-type]
focal.asymmetric_loss(x, labels, clip=None)  # type: ignore[call-overload]
focal.xgboost_objective(gamma="2")  # type: ignore[call-overload]
focal.xgboost_metric(scale="1e6")  # type: ignore[call-overload]
focal.lightgbm_objective(hessian_floor=None)  # type: ignore[call-overload]
focal.xgboost_objective().hessian_scale  # type: ignore[attr-defined]
focal.dask.loss(lazy_x, lazy_x, reduction="meen")  # type: ignore[arg-type]
focal.dask.loss(lazy_x)  # type: ignore[call-arg]
focal.dask.loss(lazy_x, lazy_x, 0.25, 2.0, "mean")  # type: ignore[call-arg]
focal.dask.softmax_grad(lazy_x, labels, nonsense=1)  # type: ignore[call-arg]
EOF
(cd "$work" && "$py" -m mypy --cache-dir "$work/user_cache" --strict --warn-unused-ignores \
    user.py) || status=$?
echo "typing: done in $((SECONDS - start)) s"
if [ "$status" -ne 0 ] && [ "${FOCAL_MYPY_REPORT_ONLY:-0}" != 1 ]; then
    exit "$status"
fi

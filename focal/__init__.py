"""focal: the focal loss of Lin et al. (RetinaNet) and its derivatives over NumPy arrays.

The C core computes loss, gradient and second derivative in one pass over the
data, in place, exactly in the tails; this package checks the arguments and
holds the defaults and documentation.

Functions
---------
loss, grad, loss_and_grad
    Sigmoid focal loss (Eq. 5 of the paper), reduced or per element.
grad_hess
    Elementwise first and second derivatives, for gradient boosting.
prior_bias
    The paper's initial bias of the classification layer.
softmax_loss, softmax_grad, softmax_loss_and_grad
    Multi-class (softmax) focal loss along any axis.
softmax_grad_hess
    Its gradient and the diagonal of its hessian, for multi-class boosting.
softmax_prior_bias
    Detectron's initial biases of a softmax head.
star_loss, star_grad, star_loss_and_grad
    FL*, the paper's Appendix A variant.
poly1_loss, poly1_grad, poly1_loss_and_grad, poly1_grad_hess
    Poly-1 focal loss (Leng et al., PolyLoss).
quality_loss, quality_grad, quality_loss_and_grad, quality_grad_hess
    Quality focal loss (Li et al., Generalized Focal Loss) of quality targets.
varifocal_loss, varifocal_grad, varifocal_loss_and_grad, varifocal_grad_hess
    Varifocal loss (Zhang et al., VarifocalNet) of IoU-aware targets.
asymmetric_loss, asymmetric_grad, asymmetric_loss_and_grad, asymmetric_grad_hess
    Asymmetric loss (Ridnik et al., ICCV 2021) of multi-label targets.
xgboost_objective, lightgbm_objective
    Focal-loss objectives for XGBoost and LightGBM, native and scikit-learn
    (the libraries come from the ``gbdt`` extra).
xgboost_metric, lightgbm_metric
    The focal loss of the margins as an evaluation metric, for early stopping.
set_num_threads, get_num_threads
    Threads a large call may use (default: the cores this process may run on,
    or the environment variable FOCAL_NUM_THREADS).
"""
from ._sigmoid import grad, grad_hess, loss, loss_and_grad, prior_bias
from ._settings import get_num_threads, set_num_threads
from ._softmax import (
    softmax_grad, softmax_grad_hess, softmax_loss, softmax_loss_and_grad, softmax_prior_bias,
)
from ._star import star_grad, star_loss, star_loss_and_grad
from ._poly1 import poly1_grad, poly1_grad_hess, poly1_loss, poly1_loss_and_grad
from ._varifocal import (
    varifocal_grad, varifocal_grad_hess, varifocal_loss, varifocal_loss_and_grad,
)
from ._asymmetric import (
    asymmetric_grad, asymmetric_grad_hess, asymmetric_loss, asymmetric_loss_and_grad,
)
from ._quality import quality_grad, quality_grad_hess, quality_loss, quality_loss_and_grad
from ._gbdt import lightgbm_metric, lightgbm_objective, xgboost_metric, xgboost_objective

__version__ = "0.1.0"
__all__ = [
    "loss", "grad", "loss_and_grad", "grad_hess", "prior_bias",
    "softmax_loss", "softmax_grad", "softmax_loss_and_grad", "softmax_grad_hess",
    "softmax_prior_bias",
    "star_loss", "star_grad", "star_loss_and_grad",
    "poly1_loss", "poly1_grad", "poly1_loss_and_grad", "poly1_grad_hess",
    "quality_loss", "quality_grad", "quality_loss_and_grad", "quality_grad_hess",
    "varifocal_loss", "varifocal_grad", "varifocal_loss_and_grad", "varifocal_grad_hess",
    "asymmetric_loss", "asymmetric_grad", "asymmetric_loss_and_grad", "asymmetric_grad_hess",
    "set_num_threads", "get_num_threads",
    "xgboost_objective", "lightgbm_objective", "xgboost_metric", "lightgbm_metric",
]

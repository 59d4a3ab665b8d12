"""Accuracy against a high-precision (mpmath) reference, in units of ULP.

The reference (tests/reference.py) evaluates the closed forms of the loss and
its derivatives with 50-digit arithmetic; the closed forms themselves are
checked against mpmath's numerical differentiation.  The grid spans every magnitude of the logits, from
subnormals to 1e4, for hard targets (the paper's case) and a soft target.
Every loss of tests/registry.py is held to its ULP bound against its own
mpmath twin over moderate logits (the last test).
"""
import math

import mpmath
import numpy as np
import pytest

import focal
import reference
import registry
from reference import sigmoid_focal_definition_mp, sigmoid_focal_mp, spacing, ulp_error
from registry import LOSSES

mpmath.mp.prec = 120

def _grid():
    magnitudes = np.concatenate([
        np.logspace(-320, -30, 40),
        np.logspace(-30, 4, 400),
        np.linspace(0.0, 40.0, 161)[1:],
        [5e-324, 1e-310, 0.5, 1.0, 2.0, 36.7, 88.7, 103.9, 709.0, 745.0, 1e4],
    ])
    grid = np.concatenate([-magnitudes, [0.0], magnitudes])
    return np.unique(grid)


GRID = _grid()


def test_reference_closed_forms_match_numerical_derivatives():
    # The closed forms used below are what the derivation says; check them
    # against mpmath's own differentiation of the loss at a few points.
    for x in (-7.5, -1.25, -0.01, 0.3, 2.0, 11.0):
        for y in ("0", "1", "0.3"):
            for gamma in ("0", "0.5", "2", "3.7"):
                def loss_at(t, y=y, gamma=gamma):
                    return sigmoid_focal_definition_mp(t, y, gamma)

                loss, grad, hess, _ = sigmoid_focal_mp(x, y, gamma)
                assert mpmath.almosteq(loss, loss_at(mpmath.mpf(x)), rel_eps=mpmath.mpf(2) ** -100)
                assert mpmath.almosteq(grad, mpmath.diff(loss_at, mpmath.mpf(x), 1), rel_eps=mpmath.mpf(2) ** -80)
                assert mpmath.almosteq(hess, mpmath.diff(loss_at, mpmath.mpf(x), 2), rel_eps=mpmath.mpf(2) ** -70, abs_eps=mpmath.mpf(2) ** -200)


def _errors(dtype, y, gamma):
    x = GRID.astype(dtype)
    x = np.unique(x[np.isfinite(x)])
    targets = np.full_like(x, y)
    loss = focal.loss(x, targets, alpha=0.25, gamma=gamma, reduction="none")
    grad, hess = focal.grad_hess(x, targets, alpha=0.25, gamma=gamma)
    worst = {"loss": (0.0, None), "grad": (0.0, None), "hess": (0.0, None),
             "subnormal hess, absolute": (0.0, None)}
    tiny = np.finfo(dtype).tiny
    for i, xi in enumerate(x):
        ref_loss, ref_grad, ref_hess, condition = sigmoid_focal_mp(xi, y, gamma)
        for name, computed, exact in (("loss", loss[i], ref_loss), ("grad", grad[i], ref_grad)):
            error = ulp_error(computed, exact, dtype)
            if error > worst[name][0]:
                worst[name] = (error, float(xi))
        # The second derivative sums terms of both signs: judge it relative to
        # the conditioning of that sum (its error cannot be better than that).
        # Where it is subnormal (float64, |x| > 700) its factors are subnormal
        # too and carry only a few bits: it is judged by absolute error there.
        if abs(ref_hess) < tiny:
            error = float(abs(mpmath.mpf(float(hess[i])) - ref_hess))
            key = "subnormal hess, absolute"
        else:
            error = ulp_error(hess[i], ref_hess, dtype) / (1 + float(condition))
            key = "hess"
        if error > worst[key][0]:
            worst[key] = (error, float(xi))
    return worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("y", [0.0, 1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 1.5, 2.0])
def test_hard_targets_within_4_ulp(dtype, y, gamma):
    worst = _errors(dtype, y, gamma)
    assert worst["loss"][0] <= 4, worst
    assert worst["grad"][0] <= 4, worst
    assert worst["hess"][0] <= 4, worst
    # a few thousand subnormal units: 8e-320 in float64
    assert worst["subnormal hess, absolute"][0] <= 2.0 ** 14 * float(np.finfo(dtype).smallest_subnormal), worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [3.0, 4.0, 5.0, 7.3])
def test_larger_gamma_grows_slowly(dtype, gamma):
    worst = _errors(dtype, 1.0, gamma)
    # pow(q, gamma) turns a relative error e of q into gamma * e
    bound = 4 + gamma
    assert worst["loss"][0] <= bound, worst
    assert worst["grad"][0] <= bound, worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_soft_target_within_4_ulp_of_the_loss(dtype, gamma):
    # A soft target's gradient (p - y) cancels where p ~ y; its loss does not.
    y = float(dtype(0.3))
    worst = _errors(dtype, y, gamma)
    assert worst["loss"][0] <= 4, worst


@pytest.mark.parametrize("gamma", [2.5, 5.0, 7.9, 8.0, 12.0])
@pytest.mark.parametrize("alpha", [0.25, None])
def test_soft_targets_float64_within_1_ulp_where_gamma_is_not_a_product(gamma, alpha):
    # q^gamma = e^(gamma log q) for soft targets: gamma multiplied the error
    # of log q (log_positive, 2^-56 or so) into the loss, 2.4 ULP at gamma 8
    # and y = 0.3, and alpha_t took alpha y and 1 - y rounded (up to 1.07 ULP
    # at gamma 50); Poly-1 shares the kernel (2.05 ULP)
    x = np.concatenate([np.linspace(-60.0, 60.0, 61), [-700.0, 300.0, 1000.0, 1e4]])
    for y in (0.3, 0.29737440438930735, 0.9, 0.01, 0.5):
        t = np.full(x.shape, y)
        loss = focal.loss(x, t, alpha, gamma, reduction="none")
        grad = focal.grad(x, t, alpha, gamma, reduction="none")
        poly = focal.poly1_loss(x, t, alpha, gamma, 1.0, reduction="none")
        for i, xi in enumerate(x):
            exact = sigmoid_focal_mp(float(xi), y, gamma, alpha)
            assert ulp_error(loss[i], exact.loss, np.float64) <= 1.0, (y, float(xi))
            assert ulp_error(grad[i], exact.grad, np.float64) <= 1.0, (y, float(xi))
            poly_exact = reference.poly1_mp(float(xi), y, gamma, 1.0, alpha)[0]
            assert ulp_error(poly[i], poly_exact, np.float64) <= 1.0, (y, float(xi))


def _gradient_terms(x, y, gamma, epsilon):
    """The size of the soft-target gradient's terms, q^g (g |a r C| + q +
    |epsilon| (w + q)) with C = CE + epsilon q (the kernel's own measure of
    cancellation; epsilon 0 for the focal loss)."""
    x, y = mpmath.mpf(x), mpmath.mpf(y)
    p, one_minus_p = 1 / (1 + mpmath.exp(-x)), 1 / (1 + mpmath.exp(x))
    q = p * (1 - y) + one_minus_p * y
    ce = y * mpmath.log1p(mpmath.exp(-x)) + (1 - y) * mpmath.log1p(mpmath.exp(x))
    w = p * one_minus_p
    c = ce + epsilon * q
    return q ** gamma * (gamma * abs((1 - 2 * y) * w / q * c) + q + abs(epsilon) * (w + q))


def _assert_within_terms(x, y, gamma, epsilon, computed, exact):
    """Each gradient within 1 ULP plus 2^-102 of its terms' size (measured:
    2^-104.9 beyond the ULP at the doubles around a zero)."""
    for xi, gi, ei in zip(x, computed, exact):
        allowed = reference.spacing(ei, np.float64) + mpmath.mpf(2) ** -102 * _gradient_terms(
            float(xi), y, gamma, epsilon)
        assert abs(mpmath.mpf(float(gi)) - ei) <= allowed, (float(xi), float(gi), float(ei))


def _soft_zero_cases():
    """(y, gamma, epsilon or None) of the focal loss and Poly-1: the review's
    point (y = 0.3, gamma 2), seeded random ones, epsilon of both signs, and
    targets near 0 or 1 whose zero lies at |x| 11 to 13, where the softplus
    log(1 + e^-|x|) of e^-|x| near 2^-17 was good to about 2^-89 only
    (2^-96.3 of the terms at y = 3e-5, gamma 0.5)."""
    rng = np.random.default_rng(53)
    cases = [(0.3, 2.0, None), (0.3, 2.0, 1.0)]
    for _ in range(6):
        y = float(rng.uniform(0.001, 0.999))
        gamma = float(rng.choice([0.1, 0.5, 1.0, 1.5, 3.0, 4.0, 6.5, 9.0, 30.0]))
        cases += [(y, gamma, None), (y, gamma, float(rng.choice([-0.9, -0.3, 0.5, 3.0])))]
    cases += [(3e-5, 0.5, None), (1e-4, 1.5, None), (0.9999, 1.5, None), (1e-4, 1.5, 0.5),
              (1e-5, 0.1, None), (1e-5, 1.5, None), (1e-2, 0.1, 0.5)]
    return cases


@pytest.mark.parametrize("y, gamma, epsilon", _soft_zero_cases())
def test_soft_target_float64_gradient_near_its_zero(y, gamma, epsilon):
    """The float64 gradient of a soft target where its two terms (g a r C and
    p - y) cancel, near the gradient's zero away from logit(y): within 1 ULP of
    mpmath from 1e-13 to 1e-1 away from the zero, and within 1 ULP plus 2^-102
    of the terms' size at the three doubles on each side of it.  Parts good to
    2^-57 left about 2^-61 of the terms (x = -1.9703749202964176, y = 0.3,
    gamma 2: 2.568e-19 for 2.546e-19; 1.3e13 ULP at 1e-15 from a zero); the
    elements whose bracket cancels are computed again from parts good to
    about 2^-100."""
    if epsilon is None:
        def exact(x):
            return sigmoid_focal_mp(x, y, gamma, None).grad

        def computed(x):
            return focal.grad(x, np.full(x.shape, y), None, gamma, reduction="none")
    else:
        def exact(x):
            return reference.poly1_mp(x, y, gamma, epsilon, None)[1]

        def computed(x):
            return focal.poly1_grad(x, np.full(x.shape, y), None, gamma, epsilon,
                                    reduction="none")
    lo, hi = reference.doubles_around_zero(exact)
    around = [lo, hi]
    for _ in range(2):
        around += [float(np.nextafter(around[-2], -np.inf)),
                   float(np.nextafter(around[-1], np.inf))]
    around = np.array(around)
    _assert_within_terms(around, y, gamma, epsilon or 0.0, computed(around),
                         [exact(float(xi)) for xi in around])
    away = np.array([lo + side * 10.0 ** -k for k in range(1, 14) for side in (-1, 1)])
    for xi, gi in zip(away, computed(away)):
        assert ulp_error(gi, exact(float(xi)), np.float64) <= 1.0, (float(xi), float(gi))


@pytest.mark.parametrize("y", [0.3, 0.7, 0.01, 0.999])
@pytest.mark.parametrize("gamma", [0.0, 6.6e-4, 1e-8])
def test_soft_target_float64_gradient_next_to_logit_y(y, gamma):
    """At gamma 0 or near it the gradient is mostly p - y, which cancels next
    to logit(y): within 1 ULP plus 2^-102 of its terms' size at the doubles
    nearest logit(y) and from 1e-15 to 1e-3 away (p good to 2^-61 gave
    -1.086e-18 for -1.098e-18 at the double nearest logit(0.3), gamma 0; 35 ULP
    at gamma 6.6e-4)."""
    centre = float(mpmath.log(mpmath.mpf(y)) - mpmath.log1p(-mpmath.mpf(y)))
    x = [centre, float(np.nextafter(centre, -np.inf)), float(np.nextafter(centre, np.inf))]
    x = np.array(x + [centre + side * 10.0 ** -k for k in range(3, 16) for side in (-1, 1)])
    grad = focal.grad(x, np.full(x.shape, y), None, gamma, reduction="none")
    _assert_within_terms(x, y, gamma, 0.0, grad,
                         [sigmoid_focal_mp(float(xi), y, gamma, None).grad for xi in x])


# float32 logits from 1e-38 to 0.1 on both sides of 0, where logit(1/2) is
TINY_LOGITS = np.array([sign * 10.0 ** -k for k in (38, 34, 30, 20, 12, 10, 9, 8, 6, 4, 3, 1)
                        for sign in (1, -1)] + [2.0**-10, -(2.0**-10), 1.4e-45],
                       dtype=np.float32)


@pytest.mark.parametrize("family, gamma, epsilon", [("focal", 0.0, None), ("focal", 1.5, None),
                                                    ("focal", 2.0, None), ("poly1", 2.0, 1.0),
                                                    ("poly1", 0.5, -0.5)])
def test_float32_gradient_of_the_target_one_half_near_zero(family, gamma, epsilon):
    """At the target 1/2 the gradient is q^g (p - 1/2) (a = 1 - 2y = 0), and
    p - 1/2 = x/4 near x = 0: p in plain double, rounded to 1/2 there, gave 0
    for 3.1e-22 at x = 1e-20 and 1.0 ULP at 1e-10 (review 77).  Float32
    results within 0.5 ULP (plus 2^-20 of one: the double before the
    rounding), the second derivative within 1 ULP.  (The varifocal loss's
    y (p - y): test_float32_soft_target_gradient_next_to_its_zero.)"""
    x = TINY_LOGITS
    y = np.full(x.shape, 0.5, np.float32)
    if family == "focal":
        grad, hess = focal.grad_hess(x, y, None, gamma)
        exact = [sigmoid_focal_mp(float(xi), 0.5, gamma, None) for xi in x]
    else:
        grad, hess = focal.poly1_grad_hess(x, y, None, gamma, epsilon)
        exact = [reference.poly1_mp(float(xi), 0.5, gamma, epsilon, None) for xi in x]
    assert grad.dtype == np.float32
    for xi, gi, hi, values in zip(x, grad, hess, exact):
        assert ulp_error(gi, values[1], np.float32) <= 0.5 + 2.0**-20, (float(xi), gi)
        assert ulp_error(hi, values[2], np.float32) <= 1.0, (float(xi), hi)


def _soft_gradient(family, y, gamma, epsilon):
    """(exact, computed): the soft target y's gradient of one family as an
    mpmath function of x, and focal's over an array of logits (of y's
    dtype, np.float32 or float)."""
    if family == "focal":
        return (lambda x: sigmoid_focal_mp(x, float(y), gamma, None).grad,
                lambda x: focal.grad(x, np.full(x.shape, y), None, gamma, reduction="none"))
    if family == "poly1":
        return (lambda x: reference.poly1_mp(x, float(y), gamma, epsilon, None)[1],
                lambda x: focal.poly1_grad(x, np.full(x.shape, y), None, gamma, epsilon,
                                           reduction="none"))
    return (lambda x: reference.varifocal_mp(x, float(y), gamma)[1],
            lambda x: focal.varifocal_grad(x, np.full(x.shape, y), 0.75, gamma,
                                           reduction="none"))


def _float32_soft_zero_cases():
    """(family, y, gamma, epsilon): float32 targets within 2^-25 to 2^-14 of
    1/2, whose gradients' zeros lie near x = 4 (y - 1/2), where p in double
    keeps none of p - y's digits (at gamma 0 the float32 logit 4 (y - 1/2)
    itself leaves p - y = x^3/48 and less), and seeded random targets, whose
    nearest float32 logits cancel the bracket to a few 2^-24 of its terms."""
    near = [0.5 - 2.0**-25, 0.5 + 2.0**-24, 0.5 - 3 * 2.0**-25, 0.5 + 40 * 2.0**-24,
            0.5 - 300 * 2.0**-25, 0.5 + 2000 * 2.0**-24]
    rng = np.random.default_rng(61)
    targets = near + [float(np.float32(rng.uniform(0.01, 0.99))) for _ in range(6)]
    cases = []
    for i, y in enumerate(targets):
        gamma = [0.0, 2.0, 1.5, 0.5][i % 4]
        cases += [("focal", y, gamma, None), ("poly1", y, gamma, [1.0, -0.5][i % 2]),
                  ("varifocal", y, gamma, None)]
    return cases


@pytest.mark.parametrize("family, y, gamma, epsilon", _float32_soft_zero_cases())
def test_float32_soft_target_gradient_next_to_its_zero(family, y, gamma, epsilon):
    """The float32 gradient of a soft target at the seven float32 logits
    around its zero (and at 4 (y - 1/2)): within 0.5 ULP plus 2^-14 of one.
    p in plain double gave 0 for 3.5e-23 at y = 1/2 - 2^-25, x = -2^-23 (up
    to 1.7e7 ULP next to the zeros of targets near 1/2), and the bracket's
    terms in plain double 2.7 to 4.9 ULP at random targets' nearest logits;
    now p - y near x = 0 comes from its series and the elements whose
    gradient cancels below 2^-12 of its terms are computed again, from parts
    good to about 2^-100 of the terms, which bounds the error where the
    gradient vanishes beyond (Poly-1 at y = 1/2 - 2^-25, epsilon 1, gamma 0
    and x = -6 2^-25, where the terms cancel to third order: 2^-96 of them;
    focal's error there 2^-126 of them)."""
    exact, computed = _soft_gradient(family, np.float32(y), gamma, epsilon)
    lo, _ = reference.doubles_around_zero(exact)
    centre = np.float32(lo)
    x = [centre, np.float32(4 * (y - 0.5))]
    for side in (-np.inf, np.inf):
        xi = centre
        for _ in range(3):
            xi = np.nextafter(xi, np.float32(side))
            x.append(xi)
    x = np.unique(np.array(x, dtype=np.float32))
    grad = computed(x)
    assert grad.dtype == np.float32
    for xi, gi in zip(x, grad):
        terms = (float(y) * _gradient_terms(float(xi), float(y), 0.0, 0.0)
                 if family == "varifocal"
                 else _gradient_terms(float(xi), float(y), gamma, epsilon or 0.0))
        error = abs(mpmath.mpf(float(gi)) - exact(float(xi)))
        assert error <= ((0.5 + 2.0**-14) * spacing(exact(float(xi)), np.float32)
                         + mpmath.mpf(2) ** -98 * terms), (float(xi), gi)


@pytest.mark.parametrize("family, y", [("focal", 0.5 - 2.0**-19), ("focal", 0.5 + 2.0**-20),
                                       ("varifocal", 0.5 + 2.0**-19),
                                       ("varifocal", 0.5 - 2.0**-18)])
def test_float64_soft_target_gradient_around_its_zero_near_one_half(family, y):
    """The four doubles around the gradient's zero (gamma 0) of targets 2^-18 to
    2^-20 from 1/2, where |x| lies just below 2^-16: p - y's series there, its
    cubic term rounded in plain double, left 2^-108.3 of the terms q (y q for
    the varifocal loss), 5.2e4 ULP (review 81), where p in double-double
    leaves at most 2^-110.1 (649 to 1.5e4 ULP at y = 1/2 + 2^-20, below 1 ULP
    at y = 1/2 - 2^-19); the series now serves below 2^-26 only.  Within 1
    ULP plus 2^-109 of the terms."""
    exact, computed = _soft_gradient(family, y, 0.0, None)
    with mpmath.workdps(100):
        lo, hi = reference.doubles_around_zero(exact, -1.0, 1.0)
        x = np.array([np.nextafter(lo, -np.inf), lo, hi, np.nextafter(hi, np.inf)])
        for xi, gi in zip(x, computed(x)):
            terms = (y if family == "varifocal" else 1.0) * _gradient_terms(xi, y, 0.0, 0.0)
            allowed = spacing(exact(float(xi)), np.float64) + mpmath.mpf(2) ** -109 * terms
            assert abs(mpmath.mpf(float(gi)) - exact(float(xi))) <= allowed, (float(xi), gi)


@pytest.mark.parametrize("dtype, family, y, x, gamma, epsilon, weights", [
    (np.float64, "poly1", 0.5 - 2.0**-25, -2.7307699952144644e-06, 50.0, -0.5,
     [2.0, 3.0, 1 + 2.0**-52, 1e100, 1e300]),
    (np.float32, "focal", 0.5 + 2.0**-20, 0.002912376308813691, 1100.0, None,
     [1e280, 1e300, 1e308])])
def test_soft_target_gradient_next_to_its_zero_under_a_weight(dtype, family, y, x, gamma,
                                                               epsilon, weights):
    """An element whose values are faint beside a weight above 1 takes the
    weighted path (sigmoid_focal_times), which did not recover a cancelled
    gradient as the kernels do: Poly-1's log excess in its short form gave
    3% at epsilon -0.5, gamma 50 under any weight above 1; float32 results
    from parts in plain double 31 ULP at gamma 1100 under 1e308 (review 81).
    Within the unweighted bounds times the weight: 1 ULP (float32: 0.5 plus
    2^-14) plus 2^-98 of the terms."""
    xa, ya = np.array([x], dtype), np.array([y], dtype)
    exact, _ = _soft_gradient(family, ya[0], gamma, epsilon)
    terms = _gradient_terms(float(xa[0]), float(ya[0]), gamma, epsilon or 0.0)
    with mpmath.workdps(60):
        value = exact(float(xa[0]))
    ulps = 1.0 if dtype == np.float64 else 0.5 + 2.0**-14
    for w in weights:
        if family == "focal":
            g = focal.grad(xa, ya, None, gamma, reduction="none", weights=np.array([w]))[0]
        else:
            g = focal.poly1_grad(xa, ya, None, gamma, epsilon, reduction="none",
                                 weights=np.array([w]))[0]
        error = abs(mpmath.mpf(float(g)) - w * value)
        assert error <= (ulps * spacing(w * value, dtype)
                         + mpmath.mpf(2) ** -98 * w * terms), (w, float(g))


@pytest.mark.parametrize("family", ["focal", "poly1", "varifocal"])
@pytest.mark.parametrize("y", [0.5 - 2.0**-54, 0.5 + 2.0**-53, 0.5 - 2.0**-30,
                               0.5 - 3 * 2.0**-40])
def test_float64_soft_target_gradient_next_to_logit_y_near_one_half(family, y):
    """At targets near 1/2 the float64 logit 4 (y - 1/2) leaves p - y =
    x^3/48, far below the 2^-101 of 1/2 that p in double-double keeps (y =
    1/2 - 2^-54 at x = -2^-52: 6e15 ULP; y = 1/2 - 2^-30, x = -2^-28: 1.4e9
    ULP): p - y now comes from its series below |x| = 2^-16.  Within 1 ULP
    at gamma 0 and 2, at that logit and its neighbours (the reference at 100
    digits: p - y is 2^-160 / 3 at the first)."""
    centre = 4 * (y - 0.5)
    x = np.array([centre, np.nextafter(centre, -np.inf), np.nextafter(centre, np.inf)])
    for gamma in (0.0, 2.0):
        exact, computed = _soft_gradient(family, y, gamma, 1.0 if family == "poly1" else None)
        for xi, gi in zip(x, computed(x)):
            with mpmath.workdps(100):
                error = ulp_error(gi, exact(float(xi)), np.float64)
            assert error <= 1.0, (float(xi), gi, gamma)


@pytest.mark.parametrize("y", [0.3, 0.7, 0.01, 0.999])
def test_varifocal_float64_gradient_next_to_logit_y(y):
    """The varifocal loss's gradient of a soft target, y (p - y), next to
    logit(y): within 1 ULP plus 2^-102 of its terms' size y q (p good to 2^-57
    gave 7e13 ULP at the double nearest logit(0.3))."""
    centre = float(mpmath.log(mpmath.mpf(y)) - mpmath.log1p(-mpmath.mpf(y)))
    x = [centre, float(np.nextafter(centre, -np.inf)), float(np.nextafter(centre, np.inf))]
    x = np.array(x + [centre + side * 10.0 ** -k for k in range(3, 16) for side in (-1, 1)])
    grad = focal.varifocal_grad(x, np.full(x.shape, y), 0.75, 2.0, reduction="none")
    for xi, gi in zip(x, grad):
        exact = reference.varifocal_mp(float(xi), y, 2.0)[1]
        terms = y * _gradient_terms(float(xi), y, 0.0, 0.0)
        allowed = reference.spacing(exact, np.float64) + mpmath.mpf(2) ** -102 * terms
        assert abs(mpmath.mpf(float(gi)) - exact) <= allowed, (float(xi), float(gi))


@pytest.mark.parametrize("alpha, gamma", [(3.0, 50.0), (3.0, 200.0), (1.5, 200.0), (1e300, 2.0)])
@pytest.mark.parametrize("y", [0.9999999, 0.01, 0.3])
def test_varifocal_float64_gradient_next_to_logit_y_on_the_scalar_path(y, alpha, gamma):
    """The same with an alpha above 1, which sends logits beyond 700 / (1 +
    gamma) - log 2 to the scalar path: it computed the kernel's formula but
    not the cancelling elements again (alpha 3, gamma 50, y = 0.9999999 at
    1e-9 from logit(y): 33,028 ULP off; y = 0.01, gamma 200: 1.0e6).  A
    positive target's gradient y (p - y) does not depend on alpha: the bits
    of alpha 0.75's vector loop too."""
    centre = float(mpmath.log(mpmath.mpf(y)) - mpmath.log1p(-mpmath.mpf(y)))
    x = [centre, float(np.nextafter(centre, -np.inf)), float(np.nextafter(centre, np.inf))]
    x = np.array(x + [centre + side * 10.0 ** -k for k in range(3, 16) for side in (-1, 1)])
    grad = focal.varifocal_grad(x, np.full(x.shape, y), alpha, gamma, reduction="none")
    vector = focal.varifocal_grad(x, np.full(x.shape, y), 0.75, gamma, reduction="none")
    np.testing.assert_array_equal(grad, vector)
    for xi, gi in zip(x, grad):
        exact = reference.varifocal_mp(float(xi), y, gamma)[1]
        terms = y * _gradient_terms(float(xi), y, 0.0, 0.0)
        allowed = reference.spacing(exact, np.float64) + mpmath.mpf(2) ** -102 * terms
        assert abs(mpmath.mpf(float(gi)) - exact) <= allowed, (float(xi), float(gi))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 0.999, 1.0, 2.0, 5.0, 50.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.5, 1e-300])
def test_no_nan_for_any_finite_logit(dtype, gamma, y):
    info = np.finfo(dtype)
    x = np.array([-info.max, -1e4, -800, -100, -40, -1, -info.tiny, -info.smallest_subnormal,
                  0.0, info.smallest_subnormal, info.tiny, 1, 40, 100, 800, 1e4, info.max])
    x = x.astype(dtype)
    targets = np.full_like(x, y)
    loss = focal.loss(x, targets, alpha=0.25, gamma=gamma, reduction="none")
    grad, hess = focal.grad_hess(x, targets, alpha=0.25, gamma=gamma)
    for values in (loss, grad, hess):
        assert not np.isnan(values).any(), (values, x)
    assert (loss >= 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_exact_limits_at_infinity(dtype, gamma):
    x = np.array([np.inf, np.inf, -np.inf, -np.inf], dtype=dtype)
    y = np.array([1.0, 0.0, 1.0, 0.0], dtype=dtype)
    loss = focal.loss(x, y, alpha=None, gamma=gamma, reduction="none")
    grad, hess = focal.grad_hess(x, y, alpha=None, gamma=gamma)
    # right with certainty: no loss, no slope; certainly wrong: infinite loss, slope +-1
    np.testing.assert_array_equal(loss, [0.0, np.inf, np.inf, 0.0])
    np.testing.assert_array_equal(grad, [0.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(hess, [0.0, 0.0, 0.0, 0.0])
    # the limit of a soft target y at +inf: d/dx ~ (1 - y)^(gamma + 1)
    soft = focal.grad(np.array([np.inf, -np.inf], dtype), np.array([0.25, 0.25], dtype),
                      alpha=None, gamma=gamma, reduction="none")
    np.testing.assert_allclose(soft, [0.75 ** (gamma + 1), -(0.25 ** (gamma + 1))], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nan_logit_gives_nan(dtype):
    x = np.array([np.nan, 0.0], dtype=dtype)
    y = np.array([1.0, 1.0], dtype=dtype)
    for alpha in (None, 0.25, 1.0):
        assert np.isnan(focal.loss(x, y, alpha=alpha, reduction="none")[0])
        assert np.isnan(focal.grad(x, y, alpha=alpha, reduction="none")[0])
        assert np.isnan(focal.loss(x, y, alpha=alpha, reduction="sum"))
        g, h = focal.grad_hess(x, y, alpha=alpha)
        assert np.isnan(g[0]) and np.isnan(h[0])
    # a zero weight masks a NaN logit
    assert focal.loss(x, y, weights=np.array([0.0, 1.0]), reduction="sum") == focal.loss(
        x[1:], y[1:], reduction="sum")


def test_float16_is_computed_in_float32():
    x16 = np.linspace(-20, 20, 101).astype(np.float16)
    y = (np.arange(101) % 3 == 0).astype(np.float16)
    result = focal.loss(x16, y, reduction="none")
    assert result.dtype == np.float32
    np.testing.assert_array_equal(
        result, focal.loss(x16.astype(np.float32), y.astype(np.float32), reduction="none"))


def test_sums_are_compensated():
    # 2**24 + many small terms: a naive float64 running sum of float32-sized
    # terms loses them; the compensated sum keeps the exact total.
    x = np.zeros(1_000_001)
    y = np.zeros_like(x)
    weights = np.full_like(x, 1e-3)
    weights[0] = 2.0 ** 60
    total = float(focal.loss(x, y, alpha=None, gamma=0.0, weights=weights, reduction="sum"))
    exact = (mpmath.mpf(2) ** 60 + mpmath.mpf(1e-3) * 1_000_000) * mpmath.log(2)
    assert abs(mpmath.mpf(total) - exact) / exact < 2.0 ** -52
    assert math.isfinite(total)


# ------------------------------------------------------- every registered loss


def _moderate_grid():
    magnitudes = np.concatenate([np.logspace(-8, np.log10(80.0), 40), [0.5, 1.0, 2.0]])
    return np.unique(np.concatenate([-magnitudes, [0.0], magnitudes]))


def _registry_problem(loss, dtype):
    """(logits, targets, [(row index, mpmath target)]) over the moderate grid:
    both hard targets of each logit (elementwise), or rows spread by each
    grid value with each class as the label (softmax)."""
    x = _moderate_grid()
    if loss.family == "elementwise":
        logits = np.stack([x, x], axis=1).astype(dtype)
        targets = np.tile([0.0, 1.0], (x.size, 1))
        return logits, targets, [((i, j), targets[i, j]) for i in range(x.size) for j in range(2)]
    logits = np.stack([x, np.zeros_like(x), -0.5 * x, 0.25 * x], axis=1).astype(dtype)
    labels = np.arange(x.size) % 4
    return logits, labels, [(i, np.eye(4)[labels[i]]) for i in range(x.size)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_every_loss_within_its_ulp_bound(loss, dtype):
    """Loss and gradient of every registered loss against its mpmath twin.

    A gradient component is judged in ULP of max(|g_j|, eps max_j |g_j|) over
    its row (an element of an elementwise loss is its own row)."""
    params = registry.params_for(loss, loss.valid_params[0], 4)
    logits, targets, points = _registry_problem(loss, dtype)
    value, gradient = loss.functions["loss_and_grad"](logits, targets, **params, reduction="none")
    eps = float(np.finfo(dtype).eps)
    worst = {"loss": (0.0, None), "grad": (0.0, None)}
    for where, target in points:
        exact_loss, exact_grad = loss.mp_twin(logits[where], target, **params)
        errors = {"loss": ulp_error(value[where], exact_loss, dtype)}
        exact_grad = np.atleast_1d(np.array(exact_grad, dtype=object))
        computed = np.atleast_1d(gradient[where])
        largest = max(abs(float(g)) for g in exact_grad)
        errors["grad"] = max(
            float(abs(mpmath.mpf(float(c)) - g)) / spacing(max(abs(float(g)), eps * largest), dtype)
            for c, g in zip(computed, exact_grad))
        for name, error in errors.items():
            if error > worst[name][0]:
                worst[name] = (error, (np.asarray(logits[where]).tolist(), np.asarray(target).tolist()))
    assert worst["loss"][0] <= loss.ulp_bound, worst
    assert worst["grad"][0] <= loss.ulp_bound, worst

/*
 * sigmoid_focal.h: the elementwise kernels, the sigmoid focal loss and FL*.
 *
 * Notation (Lin et al., "Focal Loss for Dense Object Detection"):
 *   p      = sigmoid(x)
 *   CE     = -(y log p + (1 - y) log(1 - p))                (Eq. 1, soft y)
 *   q      = 1 - p_t = p (1 - y) + (1 - p) y
 *   FL     = alpha_t q^gamma CE                              (Eq. 5)
 * alpha_t is applied by the caller, together with the element weight.
 *
 * FL* (Appendix A), for y in {0, 1} and s = 2y - 1:
 *   z = gamma s x + beta,   FL* = -log sigmoid(z) / gamma = softplus(-z) / gamma
 */
#ifndef FOCAL_SIGMOID_FOCAL_H
#define FOCAL_SIGMOID_FOCAL_H

#include "numeric.h"

/* Everything one finite logit needs, from a single exp and a single log1p. */
typedef struct {
    dd p;            /* sigmoid(x) */
    dd one_minus_p;  /* sigmoid(-x), computed directly, not as 1 - p */
    dd softplus_x;   /* log(1 + e^x)  = -log(1 - p) */
    dd softplus_mx;  /* log(1 + e^-x) = -log(p) */
} logistic_parts;

FOCAL_INLINE logistic_parts
logistic(double x, int precise)
{
    logistic_parts r;
    /* e^-|x| <= 1 never overflows; log1p keeps the tail digits of softplus. */
    double t = exp(-fabs(x));
    double l = log1p(t);
    dd big = dd_reciprocal(fast_two_sum(1.0, t, precise), precise); /* 1 / (1 + t) */
    dd small = dd_scale(big, t, precise);                            /* t / (1 + t) */
    if (x >= 0) {
        r.p = big;
        r.one_minus_p = small;
        r.softplus_x = two_sum(x, l, precise);
        r.softplus_mx = dd_from(l);
    }
    else {
        r.p = small;
        r.one_minus_p = big;
        r.softplus_x = dd_from(l);
        r.softplus_mx = two_sum(-x, l, precise);
    }
    return r;
}

typedef struct {
    dd loss;      /* q^gamma CE */
    dd grad;      /* d loss / dx */
    double hess;  /* d^2 loss / dx^2 */
} focal_values;

/*
 * The limits at x = +-inf.  With "wrong" = 1 - p_t there (1 - y or y), the
 * loss is 0 or +inf, the gradient +-wrong^(gamma + 1), the curvature 0.
 */
static inline focal_values
sigmoid_focal_at_infinity(double x, double y, double gamma)
{
    focal_values v;
    double wrong = x > 0 ? 1.0 - y : y;
    double wrong_gamma = gamma == 0.0 ? 1.0 : pow(wrong, gamma);
    v.loss = dd_from(wrong == 0.0 ? 0.0 : HUGE_VAL);
    v.grad = dd_from((x > 0 ? 1.0 : -1.0) * wrong_gamma * wrong);
    v.hess = 0.0;
    return v;
}

/*
 * Unweighted focal loss and its first two derivatives for one logit x and
 * one target y in [0, 1].
 *
 * With a = 1 - 2y, w = p (1 - p), r = w / q and d = p - y:
 *   dFL/dx   = q^g [ g a r CE + d ]
 *   d2FL/dx2 = q^g [ g (g - 1) a^2 r^2 CE + g a r (1 - 2p) CE + 2 g a r d + w ]
 * For y in {0, 1} this is Appendix B's dFL/dx.  Writing the derivative with
 * r = w / q instead of q^(g - 1) keeps it finite for 0 <= g < 1 at saturated
 * logits, where the textbook form gives 0 * inf.  For hard targets r is
 * simply p or 1 - p and every sum below adds terms of one sign, so nothing
 * cancels.  The second derivative does cancel near its sign changes; it is
 * computed in plain double from the double-double parts.
 */
FOCAL_INLINE focal_values
sigmoid_focal(double x, double y, double gamma, int want_grad, int want_hess, int precise)
{
    if (x != x) {
        focal_values v = {dd_from(x), dd_from(x), x};
        return v;
    }
    if (isinf(x)) {
        return sigmoid_focal_at_infinity(x, y, gamma);
    }
    focal_values v = {dd_from(0.0), dd_from(0.0), 0.0};
    logistic_parts s = logistic(x, precise);
    dd not_y = two_sum(1.0, -y, precise);
    /* Both terms are non-negative: no cancellation.  Exact for y in {0, 1}. */
    dd q = dd_add(dd_mul(not_y, s.p, precise), dd_scale(s.one_minus_p, y, precise), precise);
    dd ce = dd_add(dd_scale(s.softplus_mx, y, precise), dd_mul(not_y, s.softplus_x, precise),
                   precise);
    dd q_gamma = dd_power(q, gamma, precise);
    if (q_gamma.hi == 0.0) {
        /* fully focused away (q^gamma underflowed): loss and derivatives are 0 */
        return v;
    }
    v.loss = dd_mul(q_gamma, ce, precise);
    if (!want_grad && !want_hess) {
        return v;
    }

    dd a = two_sum(1.0, -2.0 * y, precise);
    dd w = dd_mul(s.p, s.one_minus_p, precise);
    dd r;
    if (y == 1.0) {
        r = s.p;
    }
    else if (y == 0.0) {
        r = s.one_minus_p;
    }
    else {
        /* q >= min(y, 1 - y) > 0 for a soft target, so this never divides by 0 */
        r = dd_divide(w, q, precise);
    }
    /* p - y, exact in sign and digits for y in {0, 1} (-sigmoid(-x), not p - 1) */
    dd d = dd_add(dd_mul(not_y, s.p, precise), dd_scale(s.one_minus_p, -y, precise), precise);
    dd r_ce = dd_mul(r, ce, precise);

    if (want_grad) {
        dd bracket = dd_add(dd_scale(dd_mul(a, r_ce, precise), gamma, precise), d, precise);
        v.grad = dd_mul(q_gamma, bracket, precise);
    }
    if (want_hess) {
        double one_minus_2p = s.one_minus_p.hi - s.p.hi;
        double bracket = gamma * (gamma - 1.0) * a.hi * a.hi * r.hi * r_ce.hi
                         + gamma * a.hi * one_minus_2p * r_ce.hi
                         + 2.0 * gamma * a.hi * r.hi * d.hi + w.hi;
        v.hess = q_gamma.hi * bracket;
    }
    return v;
}

/*
 * FL* and its derivative d(FL*)/dx = s (sigmoid(z) - 1) = -s sigmoid(-z), for a
 * target y in {0, 1} and gamma > 0.  In precise mode z = gamma s x + beta is
 * held in double-double and its low part enters to first order:
 *   softplus(-z) = softplus(-z_hi) - z_lo sigmoid(-z_hi),
 *   sigmoid(-z)  = sigmoid(-z_hi) (1 - z_lo sigmoid(z_hi)).
 */
FOCAL_INLINE focal_values
star_focal(double x, double y, double gamma, double beta, int precise)
{
    focal_values v = {dd_from(0.0), dd_from(0.0), 0.0};
    double s = y == 1.0 ? 1.0 : -1.0;
    dd z = dd_add(two_product(gamma, s * x, precise), dd_from(beta), precise);
    if (z.hi != z.hi) {
        v.loss = v.grad = z;
        return v;
    }
    if (isinf(z.hi)) {
        /* certainly right: nothing to learn; certainly wrong: infinite loss, slope -s */
        v.loss = dd_from(z.hi > 0 ? 0.0 : HUGE_VAL);
        v.grad = dd_from(z.hi > 0 ? 0.0 : -s);
        return v;
    }
    logistic_parts parts = logistic(z.hi, precise);
    dd softplus = parts.softplus_mx;
    dd sigmoid = parts.one_minus_p;
    if (precise) {
        softplus = dd_add(softplus, dd_from(-z.lo * sigmoid.hi), precise);
        sigmoid = dd_add(sigmoid, dd_from(-z.lo * sigmoid.hi * parts.p.hi), precise);
    }
    /* divided, not multiplied by a rounded 1 / gamma */
    v.loss = dd_from(dd_divide_double(softplus, gamma, precise));
    v.grad = dd_scale(sigmoid, -s, precise);
    return v;
}

#endif  /* FOCAL_SIGMOID_FOCAL_H */

/*
 * focal_math.h: the scalar mathematics of the sigmoid focal loss.
 *
 * Plain C with no Python or NumPy in it.  Every quantity is computed in
 * double precision whatever the storage type: a float32 result then carries
 * one rounding at the store, and float64 results rely on the care below.
 *
 * Notation (Lin et al., "Focal Loss for Dense Object Detection"):
 *   p      = sigmoid(x)
 *   CE     = -(y log p + (1 - y) log(1 - p))                (Eq. 1, soft y)
 *   q      = 1 - p_t = p (1 - y) + (1 - p) y
 *   FL     = alpha_t q^gamma CE                              (Eq. 5)
 * alpha_t is applied by the caller, together with the element weight.
 */
#ifndef FOCAL_MATH_H
#define FOCAL_MATH_H

#include <math.h>

/*
 * a * b where a is a factor that vanishes exponentially and b one that grows
 * at most linearly (a probability times a softplus).  At +-inf, or once a has
 * underflowed, IEEE gives 0 * inf = NaN, while the true limit is 0.
 * A NaN in a still propagates.
 */
static inline double
times_vanishing(double a, double b)
{
    return a == 0.0 ? 0.0 : a * b;
}

/* q^gamma with the cheap exact cases spelled out; pow(0, 0) is 1 as wanted. */
static inline double
power_gamma(double q, double gamma)
{
    if (gamma == 2.0) {
        return q * q;
    }
    if (gamma == 1.0) {
        return q;
    }
    if (gamma == 0.0) {
        return 1.0;
    }
    return pow(q, gamma);
}

/* Everything one logit needs, from a single exp and a single log1p. */
typedef struct {
    double p;            /* sigmoid(x) */
    double one_minus_p;  /* sigmoid(-x), computed directly, not as 1 - p */
    double softplus_x;   /* log(1 + e^x)  = -log(1 - p) */
    double softplus_mx;  /* log(1 + e^-x) = -log(p) */
} logistic_parts;

static inline logistic_parts
logistic(double x)
{
    logistic_parts r;
    /* e^-|x| <= 1 never overflows; log1p keeps the tail digits of softplus. */
    double t = exp(-fabs(x));
    double l = log1p(t);
    double big = 1.0 / (1.0 + t);
    double small = t * big;
    if (x >= 0) {
        r.p = big;
        r.one_minus_p = small;
        r.softplus_x = x + l;
        r.softplus_mx = l;
    }
    else {
        r.p = small;
        r.one_minus_p = big;
        r.softplus_x = l;
        r.softplus_mx = l - x;
    }
    if (x != x) {  /* NaN in, NaN out (the branches above would give finite parts) */
        r.p = r.one_minus_p = r.softplus_x = r.softplus_mx = x;
    }
    return r;
}

typedef struct {
    double loss;  /* q^gamma CE */
    double grad;  /* d loss / dx */
    double hess;  /* d^2 loss / dx^2 */
} focal_values;

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
 * simply p or 1 - p, taken directly so no rounding is added.
 */
static inline focal_values
sigmoid_focal(double x, double y, double gamma, int want_grad, int want_hess)
{
    focal_values v;
    logistic_parts s = logistic(x);
    double not_y = 1.0 - y;
    /* Both terms are non-negative: no cancellation.  Exact for y in {0, 1}. */
    double q = not_y * s.p + y * s.one_minus_p;
    double ce = times_vanishing(y, s.softplus_mx) + times_vanishing(not_y, s.softplus_x);
    double q_gamma = power_gamma(q, gamma);

    v.loss = times_vanishing(q_gamma, ce);
    v.grad = 0.0;
    v.hess = 0.0;
    if (!want_grad && !want_hess) {
        return v;
    }

    double a = not_y - y;
    double w = s.p * s.one_minus_p;
    double r;
    if (y == 1.0) {
        r = s.p;
    }
    else if (y == 0.0) {
        r = s.one_minus_p;
    }
    else {
        /* q >= min(y, 1 - y) > 0 for a soft target, so this never divides by 0 */
        r = w / q;
    }
    /* p - y, with the y = 1 case exact (-sigmoid(-x), not p - 1) */
    double d = not_y * s.p - y * s.one_minus_p;
    double r_ce = times_vanishing(r, ce);

    if (want_grad) {
        double bracket = gamma * a * r_ce + d;
        v.grad = q_gamma * bracket;
    }
    if (want_hess) {
        double one_minus_2p = s.one_minus_p - s.p;
        double bracket = gamma * (gamma - 1.0) * a * a * r * r_ce
                         + gamma * a * one_minus_2p * r_ce
                         + 2.0 * gamma * a * r * d + w;
        v.hess = q_gamma * bracket;
    }
    return v;
}

/*
 * Neumaier's compensated sum: the reductions over millions of elements keep
 * the accuracy of one rounding, independent of how the terms are chunked.
 */
typedef struct {
    double sum;
    double compensation;
} compensated_sum;

static inline void
compensated_add(compensated_sum *acc, double value)
{
    double t = acc->sum + value;
    if (!isfinite(t)) {
        /* an infinite loss (x = +-inf, misclassified) stays infinite, not NaN */
        acc->sum = t;
        return;
    }
    if (fabs(acc->sum) >= fabs(value)) {
        acc->compensation += (acc->sum - t) + value;
    }
    else {
        acc->compensation += (value - t) + acc->sum;
    }
    acc->sum = t;
}

static inline double
compensated_total(const compensated_sum *acc)
{
    return isfinite(acc->sum) ? acc->sum + acc->compensation : acc->sum;
}

#endif  /* FOCAL_MATH_H */

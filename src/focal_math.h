/*
 * focal_math.h: the scalar mathematics of the sigmoid focal loss.
 *
 * Plain C with no Python or NumPy in it.  Every quantity is computed in
 * double precision whatever the storage type.  For float32 results that is
 * already ~29 bits more than needed; float64 results carry the intermediate
 * values in double-double ("precise" below).  The kernel is written once: the
 * `precise` argument is a constant at every call site, so the compiler builds
 * a plain-double and a double-double version from the same text.
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

/* The kernel must be inlined where `precise` is a constant, to be specialised. */
#if defined(__GNUC__)
#define FOCAL_INLINE static inline __attribute__((always_inline))
#else
#define FOCAL_INLINE static inline
#endif

/*
 * Double-double arithmetic (a value as an unevaluated sum hi + lo).  The
 * float64 results are built from a few roundings each; carrying the
 * intermediate products in double-double leaves only the error of libm's exp
 * and log1p and the final rounding, which is what keeps the loss and the
 * gradient within a few ULP of the exact value.  With precise = 0 every
 * operation is the plain double one and lo stays 0.
 */
typedef struct {
    double hi, lo;
} dd;

static inline dd
dd_from(double a)
{
    dd r = {a, 0.0};
    return r;
}

/* a + b exactly, for |a| >= |b| (Dekker) */
static inline dd
fast_two_sum(double a, double b, int precise)
{
    if (!precise) {
        return dd_from(a + b);
    }
    dd r;
    r.hi = a + b;
    r.lo = b - (r.hi - a);
    return r;
}

/* a + b exactly, any order (Knuth) */
static inline dd
two_sum(double a, double b, int precise)
{
    if (!precise) {
        return dd_from(a + b);
    }
    dd r;
    r.hi = a + b;
    double b_virtual = r.hi - a;
    r.lo = (a - (r.hi - b_virtual)) + (b - b_virtual);
    return r;
}

/* a * b exactly (barring underflow), with one fused multiply-add */
static inline dd
two_product(double a, double b, int precise)
{
    if (!precise) {
        return dd_from(a * b);
    }
    dd r;
    r.hi = a * b;
    r.lo = fma(a, b, -r.hi);
    return r;
}

static inline dd
dd_add(dd a, dd b, int precise)
{
    if (!precise) {
        return dd_from(a.hi + b.hi);
    }
    dd s = two_sum(a.hi, b.hi, precise);
    return fast_two_sum(s.hi, s.lo + a.lo + b.lo, precise);
}

static inline dd
dd_mul(dd a, dd b, int precise)
{
    if (!precise) {
        return dd_from(a.hi * b.hi);
    }
    dd p = two_product(a.hi, b.hi, precise);
    return fast_two_sum(p.hi, p.lo + a.hi * b.lo + a.lo * b.hi, precise);
}

/* a * b rounded to double; infinities multiply plainly (the dd form gives NaN) */
static inline double
dd_mul_rounded(dd a, dd b, int precise)
{
    double product = a.hi * b.hi;
    return isfinite(product) ? dd_mul(a, b, precise).hi : product;
}

static inline dd
dd_scale(dd a, double b, int precise)
{
    if (!precise) {
        return dd_from(a.hi * b);
    }
    dd p = two_product(a.hi, b, precise);
    return fast_two_sum(p.hi, p.lo + a.lo * b, precise);
}

/* 1 / a, one Newton step from the double reciprocal; a.hi != 0 */
static inline dd
dd_reciprocal(dd a, int precise)
{
    double r = 1.0 / a.hi;
    if (!precise) {
        return dd_from(r);
    }
    double residual = fma(-r, a.hi, 1.0) - r * a.lo;
    return fast_two_sum(r, r * residual, precise);
}

static inline dd
dd_divide(dd a, dd b, int precise)
{
    if (!precise) {
        return dd_from(a.hi / b.hi);
    }
    return dd_mul(a, dd_reciprocal(b, precise), precise);
}

/* (a.hi + a.lo) / b rounded once (nearly): a quotient and its remainder */
static inline double
dd_divide_double(dd a, double b, int precise)
{
    if (b == 1.0) {
        return a.hi;
    }
    double quotient = a.hi / b;
    if (!precise) {
        return quotient;
    }
    dd back = two_product(quotient, b, precise);
    double remainder = (a.hi - back.hi) - back.lo + a.lo;
    return quotient + remainder / b;
}

/* q^gamma with the cheap exact cases spelled out; pow(0, 0) is 1 as wanted. */
static inline dd
dd_power(dd q, double gamma, int precise)
{
    if (gamma == 0.0) {
        return dd_from(1.0);
    }
    if (gamma == 1.0) {
        return q;
    }
    if (gamma == 2.0) {
        return dd_mul(q, q, precise);
    }
    double h = pow(q.hi, gamma);
    if (!precise || h == 0.0 || q.hi == 0.0) {
        return dd_from(h);
    }
    /* (hi + lo)^g = hi^g (1 + g lo / hi) to first order; lo / hi < 2^-52 */
    return fast_two_sum(h, h * gamma * (q.lo / q.hi), precise);
}

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

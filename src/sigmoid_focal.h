/*
 * sigmoid_focal.h: the elementwise kernels, the sigmoid focal loss and FL*.
 *
 * Notation (Lin et al., "Focal Loss for Dense Object Detection"):
 *   p      = sigmoid(x)
 *   CE     = -(y log p + (1 - y) log(1 - p))                (Eq. 1, soft y)
 *   q      = 1 - p_t = p (1 - y) + (1 - p) y
 *   FL     = alpha_t q^gamma CE                              (Eq. 5)
 * alpha_t is applied with the element weight (element_block.h).
 *
 * FL* (Appendix A), for y in {0, 1} and s = 2y - 1:
 *   z = gamma s x + beta,   FL* = -log sigmoid(z) / gamma = softplus(-z) / gamma
 *
 * The functions here take one finite logit and are branch-free but for
 * arguments that are constant across a loop, so a loop over them vectorises.
 * Non-finite logits take the scalar path at the end of the file.
 */
#ifndef FOCAL_SIGMOID_FOCAL_H
#define FOCAL_SIGMOID_FOCAL_H

#include "numeric.h"
#include "vector_math.h"

typedef struct {
    double gamma;
    double beta;     /* FL* only */
} focal_params;

/* Everything one finite logit needs, from one exp and one log1p of -|x|. */
typedef struct {
    dd p;            /* sigmoid(x) */
    dd one_minus_p;  /* sigmoid(-x), computed directly, not as 1 - p */
    dd softplus_x;   /* log(1 + e^x)  = -log(1 - p) */
    dd softplus_mx;  /* log(1 + e^-x) = -log(p) */
} logistic_parts;

/*
 * The parts for float32 results, from e = e^-|x| and t = log1p_unit_f32(e)
 * (relative errors below 2^-43; see vector_math.h).  The block loop of
 * element_block.h computes e and t in loops of their own and comes here.
 */
FOCAL_INLINE logistic_parts
logistic_plain_from(double x, double e, log1p_parts t)
{
    logistic_parts r;
    double a = fabs(x);
    double big = t.reciprocal, small = e * t.reciprocal;
    double softplus_abs = a + t.log1p;
    int positive = x >= 0;
    r.p = dd_from(positive ? big : small);
    r.one_minus_p = dd_from(positive ? small : big);
    r.softplus_x = dd_from(positive ? softplus_abs : t.log1p);
    r.softplus_mx = dd_from(positive ? t.log1p : softplus_abs);
    return r;
}

FOCAL_INLINE logistic_parts
logistic(double x, int precise, int short_series)
{
    logistic_parts r;
    if (!precise && short_series) {
        /* float32 results where nothing cancels afterwards */
        double e = exp_negative_f32(fabs(x));
        return logistic_plain_from(x, e, log1p_unit_f32(e));
    }
    /* e^-|x| <= 1 never overflows; log1p keeps the tail digits of softplus. */
    dd t = exp_series(dd_from(-fabs(x)), precise, short_series);
    dd l = log1p_unit_series(t, precise, short_series);
    dd big = dd_reciprocal(dd_add(dd_from(1.0), t, precise), precise); /* 1 / (1 + t) */
    dd small = dd_mul(big, t, precise);                                 /* t / (1 + t) */
    dd softplus_abs = dd_add(dd_from(fabs(x)), l, precise);             /* softplus(|x|) */
    int positive = x >= 0;
    r.p = positive ? big : small;
    r.one_minus_p = positive ? small : big;
    r.softplus_x = positive ? softplus_abs : l;
    r.softplus_mx = positive ? l : softplus_abs;
    return r;
}

typedef struct {
    dd loss;      /* q^gamma CE */
    dd grad;      /* d loss / dx */
    double hess;  /* d^2 loss / dx^2 */
} focal_values;

FOCAL_INLINE dd
dd_negate(dd a)
{
    dd r = {-a.hi, -a.lo};
    return r;
}

/*
 * gamma log q, the exponent of q^gamma = e^(gamma log q): gamma = 0 gives
 * q^0 = 1 even where log q = -inf; a product that underflows e^ (or
 * overflows to -inf, whose dd form is NaN) gives 0.
 */
FOCAL_INLINE dd
power_exponent(dd log_q, double gamma, int precise)
{
    double plain = gamma * log_q.hi;
    return gamma == 0.0      ? dd_from(0.0)
           : plain < -800.0 ? dd_from(-800.0)
                            : dd_scale(log_q, gamma, precise);
}

/*
 * -gamma log q for float32 results of a hard target (log q is minus a
 * softplus at hand): q^gamma is e^-(this), which the block loop computes in a
 * loop of its own and hands to sigmoid_focal_parts (given_q_gamma).
 */
FOCAL_INLINE double
plain_hard_power_exponent(double y, logistic_parts s, double gamma)
{
    dd log_q = dd_negate(y == 1.0 ? s.softplus_x : s.softplus_mx);
    return -power_exponent(log_q, gamma, 0).hi;
}

/*
 * Unweighted focal loss and its first two derivatives for one finite logit x,
 * given by its logistic parts s, and one target y in [0, 1].
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
 *
 * q^g: gamma_integer (1 to 4, a constant) takes products; otherwise (0)
 * exp(g log q), where log q is minus a
 * softplus already at hand for hard targets (exact at any magnitude) and, in
 * blocks with soft targets (`soft`), a log of q.  A block without soft
 * targets (soft = 0) must hold only y in {0, 1}.  given_q_gamma, for float32
 * results of hard targets and gamma_integer 0, is q^gamma computed
 * beforehand (plain_hard_power_exponent; NULL otherwise).
 */
FOCAL_INLINE focal_values
sigmoid_focal_parts(double y, logistic_parts s, const focal_params *k, int gamma_integer,
                    int soft, int derivatives, int precise, const double *given_q_gamma)
{
    focal_values v;
    double gamma = k->gamma;
    dd not_y = two_sum(1.0, -y, precise);
    /* Both terms are non-negative: no cancellation.  Exact for y in {0, 1}. */
    dd q = dd_add(dd_mul(not_y, s.p, precise), dd_scale(s.one_minus_p, y, precise), precise);
    dd ce = dd_add(dd_scale(s.softplus_mx, y, precise), dd_mul(not_y, s.softplus_x, precise),
                   precise);
    if (!precise && !soft) {
        /* float32 results of hard targets: the same values, by selects */
        q = y == 1.0 ? s.one_minus_p : s.p;
        ce = y == 1.0 ? s.softplus_mx : s.softplus_x;
    }
    int hard = y == 0.0 || y == 1.0;
    dd q_gamma;
    if (gamma_integer >= 1 && gamma_integer <= 4) {
        /* gamma = 1..4: products, no exp (q^4 = (q^2)^2) */
        dd q2 = dd_mul(q, q, precise);
        q_gamma = gamma_integer == 1   ? q
                  : gamma_integer == 2 ? q2
                  : gamma_integer == 3 ? dd_mul(q2, q, precise)
                                       : dd_mul(q2, q2, precise);
    }
    else {
        dd log_q = dd_negate(y == 1.0 ? s.softplus_x : s.softplus_mx);
        if (soft) { /* a constant: only blocks with soft targets pay for the log */
            log_q = hard ? log_q : log_positive(q, precise);
        }
        dd scaled = power_exponent(log_q, gamma, precise);
        q_gamma = precise ? exp_nonpositive(scaled, precise)
                  : given_q_gamma ? dd_from(*given_q_gamma)
                                  : dd_from(exp_negative_f32(-scaled.hi));
    }
    v.loss = dd_mul(q_gamma, ce, precise);
    v.grad = dd_from(0.0);
    v.hess = 0.0;
    if (!derivatives) { /* a constant: the loss-only kernels stop here */
        return v;
    }

    dd a = two_sum(1.0, -2.0 * y, precise);
    dd w = dd_mul(s.p, s.one_minus_p, precise);
    /* q >= min(y, 1 - y) > 0 for a soft target, so w / q never divides by 0;
       blocks of hard targets (soft = 0, a constant) skip the division */
    dd r_hard = y == 1.0 ? s.p : s.one_minus_p;
    dd r = soft ? (hard ? r_hard : dd_divide(w, q, precise)) : r_hard;
    /* p - y, exact in sign and digits for y in {0, 1} (-sigmoid(-x), not p - 1) */
    dd d = dd_add(dd_mul(not_y, s.p, precise), dd_scale(s.one_minus_p, -y, precise), precise);
    if (!precise && !soft) {
        /* float32 results of hard targets: the same values, by selects */
        a = dd_from(y == 1.0 ? -1.0 : 1.0);
        d = dd_from(y == 1.0 ? 0.0 - s.one_minus_p.hi : s.p.hi);
    }
    dd r_ce = dd_mul(r, ce, precise);

    /* both derivatives are always computed: a branch here would stop the
       loop from vectorising, and they cost less than the exp and log */
    dd bracket = dd_add(dd_scale(dd_mul(a, r_ce, precise), gamma, precise), d, precise);
    v.grad = dd_mul(q_gamma, bracket, precise);
    double one_minus_2p = s.one_minus_p.hi - s.p.hi;
    double curvature = gamma * (gamma - 1.0) * a.hi * a.hi * r.hi * r_ce.hi
                       + gamma * a.hi * one_minus_2p * r_ce.hi
                       + 2.0 * gamma * a.hi * r.hi * d.hi + w.hi;
    v.hess = q_gamma.hi * curvature;
    return v;
}

FOCAL_INLINE focal_values
sigmoid_focal(double x, double y, const focal_params *k, int gamma_integer, int soft,
              int derivatives, int precise)
{
    /* float32 results of hard targets: nothing cancels, the float32 functions
       suffice; soft targets' gradients cancel and take the full series */
    return sigmoid_focal_parts(y, logistic(x, precise, !soft), k, gamma_integer, soft,
                               derivatives, precise, NULL);
}

/*
 * FL* and its derivative d(FL*)/dx = s (sigmoid(z) - 1) = -s sigmoid(-z), for
 * a finite logit, a target y in {0, 1} and gamma > 0, where z is finite.  In
 * precise mode z = gamma s x + beta is held in double-double and its low part
 * enters to first order:
 *   softplus(-z) = softplus(-z_hi) - z_lo sigmoid(-z_hi),
 *   sigmoid(-z)  = sigmoid(-z_hi) (1 - z_lo sigmoid(z_hi)).
 */
FOCAL_INLINE focal_values
star_focal(double x, double y, const focal_params *k, int precise)
{
    focal_values v;
    double s = y == 1.0 ? 1.0 : -1.0;
    dd z = dd_add(two_product(k->gamma, s * x, precise), dd_from(k->beta), precise);
    logistic_parts parts = logistic(z.hi, precise, 1);
    dd softplus = parts.softplus_mx;
    dd sigmoid = parts.one_minus_p;
    if (precise) {
        softplus = dd_add(softplus, dd_from(-z.lo * sigmoid.hi), precise);
        sigmoid = dd_add(sigmoid, dd_from(-z.lo * sigmoid.hi * parts.p.hi), precise);
    }
    /* divided, not multiplied by a rounded 1 / gamma */
    v.loss = dd_from(dd_divide_double(softplus, k->gamma, precise));
    v.grad = dd_scale(sigmoid, -s, precise);
    v.hess = 0.0;
    return v;
}

/* Is this element one for the scalar path (a non-finite logit, or for FL* a
   z = gamma s x + beta that overflowed)? */
static inline int
needs_scalar_path(double x, const focal_params *k, int star)
{
    if (!isfinite(x)) {
        return 1;
    }
    return star && !isfinite(k->gamma * x + k->beta);
}

/*
 * The scalar path: the limits at x = +-inf and NaN, and FL* where gamma x
 * overflows.  With "wrong" = 1 - p_t at the limit (1 - y or y), the focal
 * loss is 0 or +inf, its gradient +-wrong^(gamma + 1), its curvature 0.
 */
static inline focal_values
focal_values_scalar_path(double x, double y, const focal_params *k, int star)
{
    focal_values v = {dd_from(0.0), dd_from(0.0), 0.0};
    if (x != x) {
        v.loss = v.grad = dd_from(x);
        v.hess = x;
        return v;
    }
    if (star) {
        double s = y == 1.0 ? 1.0 : -1.0;
        int right = s * x > 0; /* z = +inf: certainly right */
        /* certainly wrong: FL* = softplus(-z) / gamma ~ -z / gamma = -s x - beta / gamma */
        v.loss = dd_from(right ? 0.0 : isinf(x) ? HUGE_VAL : -s * x - k->beta / k->gamma);
        v.grad = dd_from(right ? 0.0 : -s);
        return v;
    }
    double wrong = x > 0 ? 1.0 - y : y;
    double wrong_gamma = k->gamma == 0.0 ? 1.0 : pow(wrong, k->gamma);
    v.loss = dd_from(wrong == 0.0 ? 0.0 : HUGE_VAL);
    v.grad = dd_from((x > 0 ? 1.0 : -1.0) * wrong_gamma * wrong);
    return v;
}

#endif  /* FOCAL_SIGMOID_FOCAL_H */

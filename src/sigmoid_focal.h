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
    dd log_gamma;    /* FL* only: log(gamma), for the far tail (star_focal_far) */
    double extra;    /* a row's own parameter: Poly-1's epsilon, the varifocal
                        loss's alpha, the asymmetric loss's gamma_pos (losses.h) */
    double extra2, extra3, extra4; /* a row's further parameters: the asymmetric
                        loss's clip m and logit(m) as a double-double */
    double near;     /* Poly-1 and varifocal: |x| up to which the vector loop
                        computes an element, the others taking the scalar path
                        (poly1_prepare, varifocal_prepare) */
    int large;       /* the row's unweighted values may pass 2^700 at these
                        parameters (set by its prepare; 0 for the others):
                        float32 results then weigh carefully (weigh_carefully) */
} focal_params;

/* FL*: beyond z = 600, e^-z < 1e-260 and the far-tail form takes over */
#define FOCAL_STAR_FAR 600.0

/* Everything one finite logit needs, from one exp and one log1p of -|x|. */
typedef struct {
    dd p;            /* sigmoid(x) */
    dd one_minus_p;  /* sigmoid(-x), computed directly, not as 1 - p */
    dd softplus_x;   /* log(1 + e^x)  = -log(1 - p) */
    dd softplus_mx;  /* log(1 + e^-x) = -log(p) */
    double x;        /* the logit itself (one_minus_two_p near 0) */
} logistic_parts;

/* -tanh(t) for |t| < 2^-4 by its series to t^13 (the next term is below
   2^-64 of it), rounded to about 2^-53 of it */
FOCAL_INLINE double
minus_tanh_small(double t)
{
    double z = t * t;
    double series = -1382.0 / 155925.0 + z * (21844.0 / 6081075.0);
    series = 62.0 / 2835.0 + z * series;
    series = -17.0 / 315.0 + z * series;
    series = 2.0 / 15.0 + z * series;
    series = -1.0 / 3.0 + z * series;
    return -(t + t * (z * series));
}

/* |x| below which one_minus_two_p takes its series */
FOCAL_INLINE double
one_minus_two_p_series_below(int precise)
{
    return precise ? 0x1p-3 : 0x1p-10;
}

/* |x| below which p_minus_y takes its series */
FOCAL_INLINE double
p_minus_y_series_below(int precise)
{
    return precise ? 0x1p-26 : 0x1p-10;
}

/* 1 - 2p = -tanh(x / 2), which p and 1 - p leave with their absolute
   rounding (2^-53 of 1 from their rounded high parts, 2^-57 from
   logistic()'s double-double parts), all of it where |x| is small: below
   |x| = 2^-3 its series (minus_tanh_small), beyond their difference in
   double-double, a relative 2^-53 where |1 - 2p| >= 1/16.  Poly-1's float64
   second derivative at gamma 0, epsilon 1000, x = -0.001 was 1,719 ULP off.
   Float32 results (precise 0) need it only where p and 1 - p in double keep
   none of its digits (the quality focal loss at y = 1/2, x = 1e-18: 86%
   off): -x/2 + x^3/24, good to 2^-40 of it below |x| = 2^-10, and their
   difference beyond; the long series cost their second derivatives 15%. */
FOCAL_INLINE double
one_minus_two_p(logistic_parts s, int precise)
{
    double far = dd_add(s.one_minus_p, dd_negate(s.p), precise).hi;
    double near = precise ? minus_tanh_small(0.5 * s.x)
                          : s.x * (-0.5 + s.x * s.x * (1.0 / 24.0));
    return fabs(s.x) < one_minus_two_p_series_below(precise) ? near : far;
}

/* p - y as (1 - y) p - y (1 - p), exact in sign and digits for y in {0, 1}.
   Near x = 0 (series: a constant; float32 results below |x| = 2^-10,
   float64 ones below 2^-26) it is taken as (1/2 - y + x/4) + (p - 1/2 -
   x/4): p and 1 - p keep none of its digits where y is near 1/2 and x next
   to logit(y) (review 77: float32, y = 1/2, x = 1e-20, 0 for 3.1e-22; stop
   61's probe: y = 1/2 - 2^-25 at x = -2^-23, 0 for 3.5e-23, and 257 of 720
   float32 logits next to the gradient's zero at targets within 1e-5 of 1/2
   beyond 0.5 ULP, up to 1.7e7).  1/2 - y and x/4 are exact, and so is their
   sum where they cancel (Sterbenz; float64 results add them in
   double-double); p - 1/2 - x/4 = tanh(x/2)/2 - x/4 = -x^3/48 + x^5/480 -
   17 x^7/80640 (the next term below 2^-60 of it), good to 2^-53 of itself.
   That sum, where nonzero, is at least 2^-25 |x| for float32 logits and
   targets (2^-53.6 of it below 2^-10) but may be 2^-54 |x| for float64
   ones: their bound 2^-26 keeps the series' rounding below 2^-56 of it
   (at 2^-16, y = 1/2 - 2^-19 next to the zero was 5.2e4 ULP off, review
   81); beyond, p to about 2^-101 where p - y cancels
   (sigmoid_focal_accurate). */
FOCAL_INLINE dd
p_minus_y(double y, logistic_parts s, int series, int precise)
{
    dd not_y = two_sum(1.0, -y, precise);
    dd d = dd_add(dd_mul(not_y, s.p, precise), dd_scale(s.one_minus_p, -y, precise), precise);
    if (!series) { /* a constant */
        return d;
    }
    double x = s.x, z = x * x;
    double rest = x * z * (-1.0 / 48.0 + z * (1.0 / 480.0 - z * (17.0 / 80640.0)));
    dd near = precise ? dd_add(dd_add(two_sum(0.5, -y, 1), dd_from(0.25 * x), 1), dd_from(rest), 1)
                      : dd_from(((0.5 - y) + 0.25 * x) + rest);
    return fabs(x) < p_minus_y_series_below(precise) ? near : d;
}

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
    r.x = x;
    return r;
}

/* the parts from t = e^-|x| and l = log(1 + t) */
FOCAL_INLINE logistic_parts
logistic_from(double x, dd t, dd l, int precise)
{
    logistic_parts r;
    dd big = dd_reciprocal(dd_add(dd_from(1.0), t, precise), precise); /* 1 / (1 + t) */
    dd small = dd_mul(big, t, precise);                                 /* t / (1 + t) */
    dd softplus_abs = dd_add(dd_from(fabs(x)), l, precise);             /* softplus(|x|) */
    int positive = x >= 0;
    r.p = positive ? big : small;
    r.one_minus_p = positive ? small : big;
    r.softplus_x = positive ? softplus_abs : l;
    r.softplus_mx = positive ? l : softplus_abs;
    r.x = x;
    return r;
}

FOCAL_INLINE logistic_parts
logistic(double x, int precise, int short_series)
{
    if (!precise && short_series) {
        /* float32 results where nothing cancels afterwards */
        double e = exp_negative_f32(fabs(x));
        return logistic_plain_from(x, e, log1p_unit_f32(e));
    }
    /* e^-|x| <= 1 never overflows; log1p keeps the tail digits of softplus. */
    dd t = exp_series(dd_from(-fabs(x)), precise, short_series);
    return logistic_from(x, t, log1p_unit_series(t, precise, short_series), precise);
}

/*
 * The parts to about 2^-100 (logistic()'s are good to about 2^-57), for
 * float64 results at gamma > 8: q^gamma = e^(gamma log q) multiplies the
 * error of log q (minus a softplus, or the log of q = p (1 - y) + (1 - p) y)
 * by gamma, up to |gamma log q| = 1500 (see sigmoid_focal_parts).  Blocks
 * with soft targets (`soft`, a constant) take every log q from q
 * (log_q_of_soft_target): there the softplus enters only CE, which gamma does not
 * multiply, and log1p_unit's 2^-56 suffices (a smaller loop body, which the
 * compiler still vectorises) but where the gradient's terms cancel: those
 * elements are computed again with soft = 0 (sigmoid_focal_accurate).
 */
FOCAL_INLINE logistic_parts
logistic_accurate(double x, int soft)
{
    dd t = exp_accurate(dd_from(-fabs(x)));
    return logistic_from(x, t, soft ? log1p_unit(t, 1) : log1p_accurate(t), 1);
}

/* the gamma_integer of the kernels for gamma > FOCAL_GAMMA_LARGE_FROM */
#define FOCAL_GAMMA_LARGE 5
#define FOCAL_GAMMA_LARGE_FROM 8.0
/* FOCAL_GAMMA_LARGE for float64 results of the focal loss (sigmoid_focal),
   whose logistic parts come from logistic_accurate: log q and q^gamma are
   taken to about 2^-100 as well (sigmoid_focal_parts).  Not a kernel of its
   own: sigmoid_focal chooses it for FOCAL_GAMMA_LARGE and precise = 1. */
#define FOCAL_GAMMA_LARGE_ACCURATE 6
/* or-ed into a gamma_integer: the float64 elements of soft targets whose
   gradient cancelled (sigmoid_focal_accurate), with Poly-1's series of
   CE - q in double-double too (poly1_log_excess).  Not a kernel either. */
#define FOCAL_GAMMA_AGAIN 8

/* the gamma_integer of the kernel that serves gamma */
static inline int
focal_gamma_kernel(double gamma)
{
    if (gamma == 1.0 || gamma == 2.0 || gamma == 3.0 || gamma == 4.0) {
        return (int)gamma;
    }
    return gamma > FOCAL_GAMMA_LARGE_FROM ? FOCAL_GAMMA_LARGE : 0;
}

/* what a kernel computes (its `derivatives` argument, a constant): the loss,
   the loss and gradient, or those and the second derivative */
enum { FOCAL_OUT_LOSS = 0, FOCAL_OUT_GRAD = 1, FOCAL_OUT_HESS = 2 };

typedef struct {
    dd loss;      /* q^gamma CE */
    dd grad;      /* d loss / dx */
    double hess;  /* d^2 loss / dx^2 */
} focal_values;

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
 * log q of a soft target, float64 results: to about 2^-100 with `accurate`
 * (FOCAL_GAMMA_LARGE_ACCURATE), else to an absolute 2^-59 (the general
 * kernel, gamma <= 8: log_positive's 2^-56 or so, which gamma multiplies,
 * took the loss 2.4 ULP off at gamma 8, y = 0.3).  Near q = 1 the digits of q
 * are those of 1 - q = y p + (1 - y) (1 - p), held in double-double only to
 * an absolute 2^-106 in q, so the first value is log1p(-(1 - q)) there,
 * log_positive(q) elsewhere; then one Newton step (log_step, by exp_accurate
 * or exp_series).  e^-y overflows from y = -709.8: a q below 2^-900 (a tiny
 * target's at a far logit) is lifted by 2^600 first (exactly) and 600 ln 2
 * taken off the log after.
 */
FOCAL_INLINE dd
log_q_of_soft_target(double y, logistic_parts s, dd q, int accurate)
{
    dd one_minus_q = dd_add(dd_scale(s.p, y, 1), dd_mul(two_sum(1.0, -y, 1), s.one_minus_p, 1), 1);
    double lift = q.hi < 0x1p-900 ? 600.0 : 0.0;
    double factor = power_of_two(lift);
    dd lifted = {q.hi * factor, q.lo * factor};
    dd first = one_minus_q.hi < 0.25 ? log1p_small(dd_negate(one_minus_q), 1, 0)
                                     : log_positive(lifted, 1);
    return add_ln2_multiple(log_step(first, lifted, accurate), -lift, 1);
}

/*
 * Poly-1's derivatives with the focal loss's part and the poly term's apart,
 * for where epsilon and gamma are both large: there g a r C (C = CE +
 * epsilon q) and g (g - 1) r^2 C overflow although q^g makes the result small
 * (0 times inf gave NaN).  With r q = w, the poly term epsilon q^(g+1) has
 *   dx:  epsilon (g + 1) a (q^g w),
 *   dx2: epsilon (g + 1) (q^g w) (g a^2 r + a (1 - 2p)),
 * formed with q^g in the products first: q^g w <= 1/4 and q^g g r <= 1/e
 * (see sigmoid_focal_parts), so nothing overflows before epsilon, which
 * enters last.  The focal loss's part is bounded as it is for Poly-1's
 * epsilon = 0 (g r CE <= g).  Used only where the plain formula's result is
 * not finite (elsewhere the values keep their bits), and only on the scalar
 * path (poly = POLY1_GUARDED): poly1_prepare sends every element there when
 * the parameters let a product overflow, and the vector loop stays as fast
 * as before for all others.
 */
enum { POLY1_PLAIN = 1, POLY1_GUARDED = 2, POLY1_NEGATIVE = 3 };

FOCAL_INLINE dd
poly1_grad_apart(dd q_gamma, dd a, dd r, dd w, dd ce, dd d_ce, const focal_params *k,
                 int precise)
{
    const double gamma = k->gamma;
    dd focal = dd_mul(q_gamma, dd_add(dd_scale(dd_mul(a, dd_mul(r, ce, precise), precise),
                                               gamma, precise),
                                      d_ce, precise),
                      precise);
    dd poly = dd_mul(dd_mul(dd_mul(q_gamma, w, precise), two_sum(gamma, 1.0, precise), precise), a,
                     precise);
    return dd_add(focal, dd_scale(poly, k->extra, precise), precise);
}

FOCAL_INLINE double
poly1_hess_apart(double qg, double a, double r, double w, double one_minus_2p, double ce,
                 double d_ce, const focal_params *k)
{
    const double gamma = k->gamma;
    double qg_gamma = qg * gamma, qg_gamma_r = qg_gamma * r;
    /* the focal loss's second derivative, as sigmoid_focal_parts forms it
       from gamma 1e150 on, with C = CE */
    double r_ce = r * ce;
    double focal = qg_gamma_r * ((gamma - 1.0) * r_ce) * a * a
                   + qg_gamma * a * one_minus_2p * r_ce + 2.0 * qg_gamma_r * a * d_ce + qg * w;
    double poly = qg_gamma_r * ((gamma + 1.0) * w) * a * a
                  + ((gamma + 1.0) * (qg * w)) * a * one_minus_2p;
    return focal + k->extra * poly;
}

/*
 * -log(1 - u) - u >= 0 for u in [0, 1], given ce = -log(1 - u): what Poly-1
 * with epsilon < 0 adds to (1 + epsilon) u (sigmoid_focal_parts).  For small
 * u it is u^2/2 + u^3/3 + ..., while ce and u agree in most of their digits:
 * their difference would keep only the digits they disagree in.  Up to
 * u = 1/2, with v = u / (2 - u) (so -log(1 - u) = 2 atanh v and
 * u = 2 v / (1 + v)),
 *   -log(1 - u) - u = u^2 / (2 - u) + 2 v^3 (1/3 + v^2 S),
 *   S = 1/5 + v^2/7 + v^4/9 + ...,
 * every term >= 0 and v <= 1/3.  The second term is at most 14% of the
 * result, and v^2 S at most 7% of its bracket: v, v^3 and the bracket are
 * carried in double-double (in double, v and the bracket's roundings left
 * 1.19 ULP), S in double, seventeen of its terms (the rest is below 2^-60
 * of the bracket).  With `accurate` (a constant: FOCAL_GAMMA_AGAIN, with
 * parts good to about 2^-100) S is carried in double-double too, 32 of
 * its terms (v^64 <= 2^-101): in double it left an absolute error of about
 * 2^-63 of the terms where a soft target's gradient cancels.  From u = 1/2
 * the difference itself, where ce + u is at most 6.2 times ce - u (at
 * u = 1/2; less beyond): it loses under 2.7 bits.  (Plain products and
 * sums, no MADD: every instruction-set level rounds alike.)
 */
/* 1 / (2i + 5), i = 0..31, in double-double: hi the quotient rounded to
   nearest, lo the rest rounded (from exact fractions) */
static const dd odd_reciprocals[32] = {
    {0x1.999999999999ap-3, -0x1.999999999999ap-57}, {0x1.2492492492492p-3, 0x1.2492492492492p-57},
    {0x1.c71c71c71c71cp-4, 0x1.c71c71c71c71cp-58}, {0x1.745d1745d1746p-4, -0x1.745d1745d1746p-59},
    {0x1.3b13b13b13b14p-4, -0x1.3b13b13b13b14p-58}, {0x1.1111111111111p-4, 0x1.1111111111111p-60},
    {0x1.e1e1e1e1e1e1ep-5, 0x1.e1e1e1e1e1e1ep-61}, {0x1.af286bca1af28p-5, 0x1.af286bca1af28p-59},
    {0x1.8618618618618p-5, 0x1.8618618618618p-59}, {0x1.642c8590b2164p-5, 0x1.642c8590b2164p-60},
    {0x1.47ae147ae147bp-5, -0x1.eb851eb851eb8p-61}, {0x1.2f684bda12f68p-5, 0x1.2f684bda12f68p-59},
    {0x1.1a7b9611a7b96p-5, 0x1.1a7b9611a7b96p-61}, {0x1.0842108421084p-5, 0x1.0842108421084p-60},
    {0x1.f07c1f07c1f08p-6, -0x1.f07c1f07c1f08p-61}, {0x1.d41d41d41d41dp-6, 0x1.0750750750750p-60},
    {0x1.bacf914c1bad0p-6, -0x1.bacf914c1bad0p-60}, {0x1.a41a41a41a41ap-6, 0x1.0690690690690p-60},
    {0x1.8f9c18f9c18fap-6, -0x1.f3831f3831f38p-61}, {0x1.7d05f417d05f4p-6, 0x1.7d05f417d05f4p-62},
    {0x1.6c16c16c16c17p-6, -0x1.f49f49f49f49fp-61}, {0x1.5c9882b931057p-6, 0x1.310572620ae4cp-61},
    {0x1.4e5e0a72f0539p-6, 0x1.e0a72f0539783p-60}, {0x1.4141414141414p-6, 0x1.4141414141414p-62},
    {0x1.3521cfb2b78c1p-6, 0x1.a90e7d95bc60ap-61}, {0x1.29e4129e4129ep-6, 0x1.04a7904a7904ap-60},
    {0x1.1f7047dc11f70p-6, 0x1.1f7047dc11f70p-60}, {0x1.15b1e5f75270dp-6, 0x1.15b1e5f75270dp-64},
    {0x1.0c9714fbcda3bp-6, -0x1.f79b47582192ep-61}, {0x1.0410410410410p-6, 0x1.0410410410410p-60},
    {0x1.f81f81f81f820p-7, -0x1.f81f81f81f820p-61}, {0x1.e9131abf0b767p-7, 0x1.503d226357e17p-62}};

FOCAL_INLINE dd
poly1_log_excess(dd u, dd ce, int precise, int accurate)
{
    static const dd third = {0x1.5555555555555p-2, 0x1.5555555555555p-56};
    dd two_minus_u = dd_add(dd_from(2.0), dd_negate(u), precise);
    dd head = dd_divide(dd_mul(u, u, precise), two_minus_u, precise);
    dd v = dd_divide(u, two_minus_u, precise);
    dd v2 = dd_mul(v, v, precise);
    double series = odd_reciprocals[16].hi;
    for (int i = 15; i >= 0; i--) {
        series = series * v2.hi + odd_reciprocals[i].hi;
    }
    dd bracket = dd_add(third, dd_from(v2.hi * series), precise);
    if (accurate) {
        /* (unrolled, so that the loop over elements around it still
           vectorises) */
        dd long_series = dd_from(0.0);
#pragma GCC unroll 32
        for (int i = 31; i >= 0; i--) {
            long_series = dd_add(dd_mul(long_series, v2, precise), odd_reciprocals[i], precise);
        }
        bracket = dd_add(third, dd_mul(v2, long_series, precise), precise);
    }
    dd tail = dd_scale(dd_mul(dd_mul(v2, v, precise), bracket, precise), 2.0, precise);
    dd near = dd_add(head, tail, precise);
    dd far = dd_add(ce, dd_negate(u), precise);
    return u.hi <= 0.5 ? near : far;
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
 * poly (a constant: 0, or POLY1_PLAIN, POLY1_NEGATIVE (epsilon < 0) or
 * POLY1_GUARDED for Poly-1, losses.h):
 * the loss q^g C with C = CE + epsilon q (epsilon = k->extra).  The formulas above hold with CE
 * replaced by C, d by dC/dx = d + epsilon a w and w by
 * d2C/dx2 = w (1 + epsilon a (1 - 2p)).  For epsilon >= 0, C and dC/dx add
 * terms of one sign (for a hard target).  For epsilon < 0 (down to -1) they
 * cancel where CE is nearly q, on the right side (CE = q + q^2/2 + ... for a
 * hard target: at epsilon = -1 the loss was 0 for 6.9e-164 at x = -150,
 * gamma 0.5); there, with e = 1 + epsilon >= 0 (CE, q and their derivatives
 * are linear in y):
 *   C        = (CE - q) + e q,  CE - q = y h(1 - p) + (1 - y) h(p),
 *              h(u) = -log(1 - u) - u >= 0 (poly1_log_excess),
 *   dC/dx    = e (p - y) - epsilon ((1 - y) p^2 - y (1 - p)^2)
 *              (a q (e - epsilon q) for a hard target: two terms of one sign;
 *              at y = 1/2 both brackets are exact in double-double),
 *   d2C/dx2  = w (e - 2 epsilon q).
 *
 * q^g: gamma_integer (1 to 4, a constant) takes products; otherwise (0, or
 * FOCAL_GAMMA_LARGE for gamma > 8, see below) exp(g log q), where log q is minus a
 * softplus already at hand for hard targets (exact at any magnitude) and, in
 * blocks with soft targets (`soft`), a log of q.  An error of log q becomes
 * one of g log q, g times larger, and a relative one of q^g: with
 * FOCAL_GAMMA_LARGE_ACCURATE (and s from logistic_accurate) log q and the exp
 * are good to about 2^-100, so that even at |g log q| = 1500 q^g keeps an
 * error far below 2^-53 (exp_nonpositive and log_positive, about 2^-56, left
 * 19 ULP at gamma 1000 and up to 370 ULP where q^g nears underflow).  A block without soft
 * targets (soft = 0) must hold only y in {0, 1}.  given_q_gamma, for float32
 * results of hard targets and gamma_integer 0, is q^gamma computed
 * beforehand (plain_hard_power_exponent; NULL otherwise).
 */
FOCAL_INLINE focal_values
sigmoid_focal_parts_shifted(double y, logistic_parts s, const focal_params *k, int gamma_integer,
                            int soft, int derivatives, int precise, const double *given_q_gamma,
                            int poly, double shift, long long *cancelled)
{
    focal_values v;
    double gamma = k->gamma;
    dd not_y = two_sum(1.0, -y, precise);
    /* Both terms are non-negative: no cancellation.  Exact for y in {0, 1}. */
    dd q = dd_add(dd_mul(not_y, s.p, precise), dd_scale(s.one_minus_p, y, precise), precise);
    dd ce = dd_add(dd_scale(s.softplus_mx, y, precise), dd_mul(not_y, s.softplus_x, precise),
                   precise);
    if (!soft) {
        /* hard targets: the same values, by selects (dd_pick) */
        q = dd_pick(y == 1.0, s.one_minus_p, s.p);
        ce = dd_pick(y == 1.0, s.softplus_mx, s.softplus_x);
    }
    /* Poly-1 (poly, a constant): C = CE + epsilon q takes CE's place below.
       On the scalar path beyond |x| = 700 (soft targets) it may pass the
       double range: then it is that infinity, not NaN (dd_accumulate), and
       the derivatives form CE and the poly term apart (poly1_grad_apart).
       epsilon < 0 (a constant in the vector loop's kernels, Poly-1's form of
       its own): the sums of terms >= 0 above */
    const int again = (gamma_integer & FOCAL_GAMMA_AGAIN) != 0;
    gamma_integer &= ~FOCAL_GAMMA_AGAIN;
    const int accurate = gamma_integer == FOCAL_GAMMA_LARGE_ACCURATE;
    const int poly_negative = poly == POLY1_NEGATIVE || (poly == POLY1_GUARDED && k->extra < 0.0);
    const dd one_plus_epsilon = two_sum(1.0, k->extra, precise);
    dd c = ce;
    if (poly_negative) {
        dd excess = soft ? dd_add(dd_scale(poly1_log_excess(s.one_minus_p, s.softplus_mx, precise,
                                                            again),
                                           y, precise),
                                  dd_mul(not_y, poly1_log_excess(s.p, s.softplus_x, precise, again),
                                         precise),
                                  precise)
                         : poly1_log_excess(q, ce, precise, again);
        c = dd_add(excess, dd_mul(one_plus_epsilon, q, precise), precise);
    }
    else if (poly) {
        dd poly_term = dd_scale(q, k->extra, precise);
        c = poly == POLY1_GUARDED ? dd_accumulate(ce, poly_term, precise)
                                  : dd_add(ce, poly_term, precise);
    }
    int hard = y == 0.0 || y == 1.0;
    const int large = gamma_integer == FOCAL_GAMMA_LARGE || accurate;
    dd q_gamma;
    int boosted = 0; /* q_gamma holds q^g 2^1000 (see below) */
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
            log_q = accurate  ? log_q_of_soft_target(y, s, q, 1)
                    : hard    ? log_q
                    : precise ? log_q_of_soft_target(y, s, q, 0)
                              : log_positive(q, 0);
        }
        if (large) { /* a constant, as everywhere */
            /* shift (0 but for sigmoid_focal_times): q^g 2^shift */
            double plain = shift != 0.0 ? gamma * log_q.hi + shift * LN2 : gamma * log_q.hi;
            /* Below e^-700, q^g is computed as q^g 2^1000 (its argument moved
               by 1000 ln 2) and the results are scaled back once, last: a
               subnormal q^g has few digits, and the gradient's gamma (and CE,
               up to |x|) multiply it back into the normal range (at gamma
               1000 the gradient was 110 ULP off).  Below gamma 8 that factor
               is small: the general kernel does without. */
            dd scaled = plain < -1500.0 ? dd_from(-1500.0)
                        : shift != 0.0
                            ? add_ln2_multiple(dd_scale(log_q, gamma, precise), shift, precise)
                            : dd_scale(log_q, gamma, precise);
            boosted = scaled.hi < -700.0;
            dd argument = boosted ? add_ln2_multiple(scaled, 1000.0, precise) : scaled;
            q_gamma = accurate ? exp_accurate(argument) : exp_nonpositive(argument, precise);
        }
        else {
            /* (power_exponent: gamma = 0 and an underflowing product) */
            dd scaled = power_exponent(log_q, gamma, precise);
            q_gamma = precise ? exp_nonpositive(scaled, precise)
                      : given_q_gamma ? dd_from(*given_q_gamma)
                                      : dd_from(exp_negative_f32(-scaled.hi));
        }
    }
    const double unscale = 0x1p-1000;
    dd loss = dd_mul(q_gamma, c, precise);
    if (poly == POLY1_GUARDED && !isfinite(loss.hi)) {
        /* q^g CE + (epsilon q^g) q: where C overflowed, q^g may be 0 */
        loss = dd_from(q_gamma.hi * ce.hi + (k->extra * q_gamma.hi) * q.hi);
    }
    v.loss = large && boosted ? dd_scale_down(loss, unscale, precise) : loss;
    v.grad = dd_from(0.0);
    v.hess = 0.0;
    if (derivatives < FOCAL_OUT_GRAD) { /* a constant: the loss-only kernels stop here */
        return v;
    }

    dd a = two_sum(1.0, -2.0 * y, precise);
    dd w = dd_mul(s.p, s.one_minus_p, precise);
    /* q >= min(y, 1 - y) > 0 for a soft target, so w / q never divides by 0;
       blocks of hard targets (soft = 0, a constant) skip the division */
    dd r_hard = y == 1.0 ? s.p : s.one_minus_p;
    dd r = soft ? (hard ? r_hard : dd_divide(w, q, precise)) : r_hard;
    /* p - y (for hard targets -sigmoid(-x), not p - 1) */
    dd d = p_minus_y(y, s, soft, precise);
    if (!soft) {
        /* hard targets: the same values, by selects (dd_pick) */
        a = dd_from(y == 1.0 ? -1.0 : 1.0);
        dd minus_one_minus_p = {0.0 - s.one_minus_p.hi, 0.0 - s.one_minus_p.lo};
        d = dd_pick(y == 1.0, minus_one_minus_p, s.p);
    }
    /* Poly-1: dC/dx = d + epsilon a w (dq/dx = a w), of one sign with d for
       epsilon >= 0 */
    const dd d_ce = d;
    if (poly_negative) { /* epsilon < 0: see above */
        dd squares = soft ? dd_add(dd_mul(not_y, dd_mul(s.p, s.p, precise), precise),
                                   dd_scale(dd_mul(s.one_minus_p, s.one_minus_p, precise), -y,
                                            precise),
                                   precise)
                          : dd_scale(dd_mul(q, q, precise), a.hi, precise);
        /* (= d - a w: taken so where d is p_minus_y's series, next to the
           target 1/2, whose squares keep none of d's digits in float32 and,
           in float64, lose those below 2^-1065 (p's low part is x/4 there,
           subnormal from |x| = 2^-1020, and p^2's products of it round
           apart: x = 1.2633e-320, y = 1/2, epsilon -1 gave 2^-1065 for
           x/4, 127 subnormal spacings, review 83); d - a w does not cancel
           there but where the gradient does, and a w is 0 at y = 1/2) */
        const int near_half = soft && fabs(s.x) < p_minus_y_series_below(precise);
        dd d_less_a_w = precise ? dd_add(d_ce, dd_negate(dd_mul(a, w, 1)), 1)
                                : dd_from(d_ce.hi - a.hi * w.hi);
        squares = near_half ? d_less_a_w : squares;
        d = dd_add(dd_mul(one_plus_epsilon, d_ce, precise), dd_scale(squares, -k->extra, precise),
                   precise);
    }
    else if (poly) {
        d = dd_add(d, dd_scale(dd_mul(a, w, precise), k->extra, precise), precise);
    }
    dd r_ce = dd_mul(r, c, precise);

    /* a r CE: for hard targets a = +-1, and the product a sign change */
    dd a_r_ce = soft ? dd_mul(a, r_ce, precise) : dd_times_sign(r_ce, a.hi, precise);
    dd bracket = dd_add(dd_scale(a_r_ce, gamma, precise), d, precise);
    if (cancelled && soft && precise) { /* constants */
        /* float64, a soft target: the bracket cancels near the gradient's
           zero (and d = p - y next to logit(y)), where the parts' relative
           error (about 2^-57, 2^-56 for CE from logistic_accurate(x, 1))
           becomes one of the terms' size, g |a r C| + q (Poly-1: + |epsilon|
           (w + q), which bounds its d's terms): x = -1.9703749202964176,
           y = 0.3, gamma 2 gave 2.568e-19 for 2.546e-19.  Below 1/32 of
           that the element asks for parts good to about 2^-100
           (sigmoid_focal_accurate); above, the gradient stays within
           0.6 ULP (measured against the ratio; 1.1 from 1/32 to 1/64).  2 to
           3% of random soft targets ask (x ~ N(0, 3), y ~ U(0, 1)) */
        double terms = gamma * fabs(a_r_ce.hi) + q.hi +
                       (poly ? fabs(k->extra) * (w.hi + q.hi) : 0.0);
        *cancelled = 32.0 * fabs(bracket.hi) < terms;
    }
    if (cancelled && soft && !precise) { /* constants */
        /* float32 results, a soft target: the same, with parts in plain
           double, good to a few 2^-53 of the terms: a float32 logit next to
           the gradient's zero was 2.7 to 4.9 ULP off (y = 0.70194948, x =
           1.7250714, gamma 1.5).  Below 2^-12 of the terms the element is
           computed again as float64 results are (a few in 10^4 random soft
           targets); above, the bracket keeps about 2^-40 of itself, which
           leaves the float32 gradient within 0.5 ULP plus 2^-14.  Where d is
           p_minus_y's series its error is one of its own size and of the
           series' (x^3/48 < 2^-25 |x| there), with Poly-1's a w (< |a|/4),
           not q's. */
        int series = fabs(s.x) < p_minus_y_series_below(0);
        double d_terms = series ? fabs(d_ce.hi) + 0.25 * fabs(a.hi) + 0x1p-25 * fabs(s.x)
                                : q.hi + w.hi;
        double d_scale = poly ? 1.0 + 2.0 * fabs(k->extra) : 1.0;
        double terms = gamma * fabs(a_r_ce.hi) + d_scale * d_terms;
        *cancelled = 4096.0 * fabs(bracket.hi) < terms;
    }
    dd grad = dd_mul(q_gamma, bracket, precise);
    if (poly == POLY1_GUARDED) {
        grad = isfinite(grad.hi) ? grad : poly1_grad_apart(q_gamma, a, r, w, ce, d_ce, k, precise);
    }
    v.grad = large && boosted ? dd_scale_down(grad, unscale, precise) : grad;
    if (derivatives < FOCAL_OUT_HESS) { /* a constant: no one reads the second derivative */
        return v;
    }
    double one_minus_2p = one_minus_two_p(s, precise);
    /* d2C/dx2: w, and for Poly-1 w (1 + epsilon a (1 - 2p)), or w (e - 2 epsilon q).
       With h the smaller of p and 1 - p (held apart) and its side c (1 for
       1 - p, -1 for p), 1 + epsilon a (1 - 2p) = (1 - c epsilon a) + 2 c
       epsilon a h: 1 - 2p rounded near -1 or 1 lost h's digits, and at
       epsilon 1 (1 - 2p = -1 + 2 e^-80 at x = 80) the sum cancelled to 0 for
       2 e^-80 (the second derivative 0 for 1.9e-70).  (Its own zero, where
       epsilon a (1 - 2p) = -1, is the function's.)  Near h = 1/2 a large
       epsilon a cancels the two terms instead: they are summed in
       double-double, from c epsilon a exactly and h in double-double.
       Where 1 - 2p is its series (near x = 0: |x| below 1/8, float32
       results 2^-10) the factor is 1 + (epsilon a)(1 - 2p) itself, which
       cancels only at its own zero: there h = 1/2 - |1 - 2p|/2 would carry
       no digit more than 1 - 2p does, while 1 - c epsilon a lost the 1
       beside an epsilon beyond 2^106 (2^53 in plain double: the second
       derivative 0 at x = 0 for 0.1875, review 83), and p rounded to 1/2
       for x in [-2^-53, 0) chose the wrong side (epsilon 1e155, x = -1e-20:
       -1.25e134 for 1.25e134). */
    int upper = s.p.hi >= 0.5;
    dd h = upper ? s.one_minus_p : s.p;
    /* (a's low part too: 1 - 2y of a soft target is not a double, and 1 -
       epsilon a cancels where epsilon a is near 1: x = 10, y = 1e-5 + 3e-21,
       epsilon 1 was 1,098 ULP off, review 78) */
    dd epsilon_a = dd_scale(a, (upper ? 1.0 : -1.0) * k->extra, precise);
    dd poly_factor =
        fabs(s.x) < one_minus_two_p_series_below(precise)
            ? dd_add(dd_from(1.0), dd_scale(dd_scale(a, k->extra, precise), one_minus_2p, precise),
                     precise)
            : dd_add(dd_add(dd_from(1.0), dd_negate(epsilon_a), precise),
                     dd_mul(epsilon_a, dd_scale(h, 2.0, precise), precise), precise);
    double c_curvature = poly_negative ? w.hi * (one_plus_epsilon.hi - 2.0 * k->extra * q.hi)
                         : poly          ? w.hi * poly_factor.hi
                                         : w.hi;
    double curvature = gamma * (gamma - 1.0) * a.hi * a.hi * r.hi * r_ce.hi
                       + gamma * a.hi * one_minus_2p * r_ce.hi
                       + 2.0 * gamma * a.hi * r.hi * d.hi + c_curvature;
    /* From gamma 1e150 on, g (g - 1) overflows (from 1.3e154) or nearly, and
       met q^g = 0 as 0 * inf = NaN.  There q^g enters every term first:
         q^g [g (g - 1) a^2 r^2 CE + g a r (1 - 2p) CE + 2 g a r d + w]
           = (q^g g r)(g - 1) a^2 r CE + (q^g g) a (1 - 2p) r CE + 2 (q^g g r) a d + q^g w.
       q^g g r <= 1 and q^g g <= g for any gamma (q^g g r is at most about 1/e:
       r is 1 - q for hard targets, and q^g vanishes where g r grows), and
       (g - 1) r CE <= g / 2, so no product overflows.  Below 1e150 the sum
       is formed first and multiplied once (one rounding fewer). */
    double qg = q_gamma.hi;
    if (!large) {
        v.hess = qg * curvature;
        if (poly == POLY1_GUARDED && !isfinite(v.hess)) {
            v.hess = poly1_hess_apart(qg, a.hi, r.hi, w.hi, one_minus_2p, ce.hi, d_ce.hi, k);
        }
        return v;
    }
    double qg_gamma = qg * gamma;
    double qg_gamma_r = qg_gamma * r.hi;
    double hess = gamma < 1e150 ? qg * curvature
                  : qg_gamma_r * ((gamma - 1.0) * r_ce.hi) * a.hi * a.hi
                        + qg_gamma * a.hi * one_minus_2p * r_ce.hi
                        + 2.0 * qg_gamma_r * a.hi * d.hi + qg * c_curvature;
    if (poly == POLY1_GUARDED && !isfinite(hess)) {
        hess = poly1_hess_apart(qg, a.hi, r.hi, w.hi, one_minus_2p, ce.hi, d_ce.hi, k);
    }
    v.hess = boosted ? hess * unscale : hess;
    return v;
}

FOCAL_INLINE focal_values
sigmoid_focal_parts(double y, logistic_parts s, const focal_params *k, int gamma_integer,
                    int soft, int derivatives, int precise, const double *given_q_gamma,
                    int poly)
{
    return sigmoid_focal_parts_shifted(y, s, k, gamma_integer, soft, derivatives, precise,
                                       given_q_gamma, poly, 0.0, NULL);
}

/*
 * The sigmoid focal loss of a hard target (y in {0, 1}) beyond |x| = 700, on
 * the scalar path.  There t = e^-|x| < 1e-304 and every quantity of
 * sigmoid_focal is 1, |x| or t to a relative 1e-300.  With a = 1 - 2y:
 * - right side (the target's sign): q = CE = w = t, r = 1, d = a t,
 *   1 - 2p = a, so with L = e^-(1 + g)|x|
 *     FL = L,   dFL/dx = a (1 + g) L,   d2FL/dx2 = (1 + g)^2 L;
 * - wrong side: q = 1 - t, log q = -t, CE = |x|, r = w = t, d = a (1 - t),
 *   1 - 2p = -a (1 - 2t), so
 *     FL = q^g |x|,   q^g = e^(-g t),   dFL/dx = a q^g (1 - t + g t |x|),
 *     d2FL/dx2 = q^g t (1 + g (2 - |x|) + g (g - 1) t |x|).
 * t is subnormal from |x| = 708.4 (75% off at |x| = 745), and gamma (or the
 * weight) can bring a product with it back into the normal range: here t
 * enters as t 2^1000, normal up to |x| = 1438, and the second derivative is
 * scaled back last.  The products are ordered so that none overflows:
 * q^g g t <= 1/e.
 */
#define FOCAL_SIGMOID_FAR 700.0

/*
 * sigmoid_focal_far's right side (a hard target, t = e^-|x| = q = CE to
 * within t^2): e^-(1+g)|x| times 1, (1 + g) a and (1 + g)^2, taken 2^raised
 * larger (exact but for the final rounding: e^ of an exponent raised by
 * raised ln 2, an integer up to 2^20).
 */
FOCAL_INLINE focal_values
sigmoid_focal_far_right(double ax, double a, double gamma, double raised, int precise)
{
    focal_values v;
    dd one_plus_gamma = two_sum(1.0, gamma, precise);
    /* (an exponent below -800 underflows; its dd form may be NaN) */
    dd exponent = -(1.0 + gamma) * ax + raised * LN2 < -800.0
                      ? dd_from(-800.0)
                      : add_ln2_multiple(dd_negate(dd_mul(one_plus_gamma, dd_from(ax), precise)),
                                         raised, precise);
    dd loss = exp_nonpositive(exponent, precise);
    v.loss = loss;
    v.grad = dd_scale(dd_mul(loss, one_plus_gamma, precise), a, precise);
    v.hess = loss.hi * one_plus_gamma.hi * one_plus_gamma.hi;
    return v;
}

/*
 * |x| from which the right side's far form (q = CE = t = e^-|x|) holds to
 * 2^-54: its relative error is about (g + 1/2) t.
 */
FOCAL_INLINE double
focal_far_form_from(double gamma)
{
    return 38.0 + log1p(gamma);
}

/*
 * The right side's values times a factor f 2^X > 0 (Poly-1's 1 + epsilon,
 * varifocal's alpha; X > 0 where the factor, alpha w, passes the double
 * range).  They are below the normal range from (1 + g)|x| = 708, where a
 * factor up to 1.8e308 would bring their lost digits back (varifocal's
 * alpha 1e300 at x = -745 was 75% off; gamma 0.5 at x = -705 gave 0 for
 * 1e-157): a factor above 1 takes values formed 2^1000 or 2^2000 larger,
 * scaled back once it is applied; values that 2^X takes above 1 are formed
 * 2^1000 smaller (the exponential's argument stays nonpositive) and scaled
 * back the same way (inf where they pass the range).  2^1000 suffices: the
 * only caller with an X (varifocal_limit_weighted, through focal_hard_times)
 * passes one only where alpha's values are below e^-700, and a weight below
 * 2^1024 (whose mantissas' product 2^X may exceed by up to 4 times) keeps
 * the level below e^12.
 */
FOCAL_INLINE focal_values
sigmoid_focal_far_right_times(double ax, double a, double gamma, dd factor, int extra_exponent,
                              int precise)
{
    double level = extra_exponent * LN2 - (1.0 + gamma) * ax;
    int shift = !(factor.hi > 1.0 || extra_exponent > 0) ? 0
                : level < -1400.0                         ? 2000
                : level < -700.0                          ? 1000
                : level > 0.0                             ? -1000
                                                          : 0;
    focal_values v =
        sigmoid_focal_far_right(ax, a, gamma, (double)(extra_exponent + shift), precise);
    v.loss = dd_mul(v.loss, factor, precise);
    v.grad = dd_mul(v.grad, factor, precise);
    v.hess *= factor.hi;
    for (int k = 0; k < (shift < 0 ? -shift : shift) / 1000; k++) {
        const double back = shift < 0 ? 0x1p1000 : 0x1p-1000;
        v.loss = dd_scale(v.loss, back, precise);
        v.grad = dd_scale(v.grad, back, precise);
        v.hess *= back;
    }
    return v;
}

/*
 * The right side of a hard target within FOCAL_SIGMOID_FAR, exactly (not
 * the far form), times a factor f = m 2^E > 0 that brings back what q^g
 * lost below the normal range (a weight above 1, varifocal's alpha w, below
 * 1 where a tiny alpha meets a heavy weight: alpha 5e-324, gamma 0 at x =
 * -1 under a weight of 1e300 gave 0 for 1.5e-24, review 83): with
 * t = e^-|x|, CE = log(1 + t), q = t / (1 + t), 1 - q = 1 / (1 + t) and
 * P = q^g f = e^(g log q + E ln 2) m, log q = -|x| - CE (Eq. 5 and its
 * derivatives on the side where p_t = 1 - q):
 *   FL = P CE,   dFL/dx = a P B,   B = g (1 - q) CE + q,
 *   d2FL/dx2 = P (1 - q) (g B + q (g (1 - CE) + 1)).
 * Nothing cancels.  x = -30 at gamma 30 under a weight of 1e300 gave 0 for
 * 9.6e-105: below |x| = 38 + log(1 + g) the far form does not hold, and
 * the kernel's q^g underflowed.  The factor may be f 2^X, X > 0 where it
 * passes the double range (varifocal's alpha w: x = -36 at gamma 30, alpha
 * 1e300 and a weight of 1.4e294 gave 0 for 3.0e109).  Returns 0 where P
 * would pass e^600 (then q^g itself is normal, and weighing the kernel's
 * values keeps their digits).
 */
FOCAL_OUTLINED int
sigmoid_focal_right_times(double ax, double a, double gamma, dd factor, int extra_exponent,
                          int precise, focal_values *v)
{
    if (!(ax <= FOCAL_SIGMOID_FAR && factor.hi > 0.0 && isfinite(factor.hi))) {
        return 0;
    }
    /* (float64 results: t and CE to about 2^-100, as logistic_accurate's,
       since g multiplies the error of log q: at gamma 1000 the 2^-59 of
       exp_series took the loss 4.4 ULP off) */
    dd t = precise ? exp_accurate(dd_from(-ax)) : exp_series(dd_from(-ax), 0, 0);
    dd ce = precise ? log1p_accurate(t) : log1p_unit(t, 0);
    dd one_minus_q = dd_reciprocal(dd_add(dd_from(1.0), t, precise), precise);
    dd q = dd_mul(t, one_minus_q, precise);
    dd log_q = dd_negate(dd_add(dd_from(ax), ce, precise));
    int binary_exponent;
    double mantissa = frexp(factor.hi, &binary_exponent);
    dd mantissas = {mantissa, ldexp(factor.lo, -binary_exponent)}; /* f 2^-E, exactly */
    binary_exponent += extra_exponent;
    dd gamma_log_q = dd_mul(dd_from(gamma), log_q, precise);
    /* P below e^-600 is formed 2^1000 larger and the values scaled back
       last: B and g B (up to about 1e8) bring a subnormal P's rounding error
       into normal values (x = -0.5 at gamma 1000 under a weight of 2.3e110,
       a second derivative 217,285 ULP off) */
    int boosted = gamma_log_q.hi + binary_exponent * LN2 < -600.0;
    dd exponent = add_ln2_multiple(gamma_log_q, binary_exponent + (boosted ? 1000.0 : 0.0),
                                   precise);
    if (!(exponent.hi <= 600.0)) {
        return 0;
    }
    dd power = dd_mul(precise ? exp_accurate(exponent) : exp_series(exponent, 0, 0), mantissas,
                      precise);
    focal_values r = {dd_from(0.0), dd_from(0.0), 0.0};
    if (power.hi != 0.0) {
        /* (P is 0 from g |log q| = 1500 on: g below 2200 here, g B finite) */
        dd b = dd_add(dd_mul(dd_scale(one_minus_q, gamma, precise), ce, precise), q, precise);
        r.loss = dd_mul(power, ce, precise);
        r.grad = dd_scale(dd_mul(power, b, precise), a, precise);
        /* (in double-double, as the loss and gradient are: in plain double its
           products and sums each rounded) */
        dd inner = dd_add(dd_scale(dd_add(dd_from(1.0), dd_negate(ce), precise), gamma, precise),
                          dd_from(1.0), precise);
        dd bracket = dd_add(dd_scale(b, gamma, precise), dd_mul(q, inner, precise), precise);
        r.hess = dd_mul(dd_mul(power, one_minus_q, precise), bracket, precise).hi;
    }
    if (boosted) {
        r.loss = dd_scale(r.loss, 0x1p-1000, precise);
        r.grad = dd_scale(r.grad, 0x1p-1000, precise);
        r.hess *= 0x1p-1000;
    }
    *v = r;
    return 1;
}

/* whether a hard target's values on its wrong side, q^g CE with q =
   1 / (1 + e^-|x|) >= 1/2 and CE >= log 2, may lie below the normal range
   (e^-708): where q^g < e^-690, which takes gamma above 995.  Nearer, the
   kernel's values are normal, and a factor keeps their digits. */
FOCAL_INLINE int
wrong_side_underflows(double x, double gamma)
{
    return gamma * log1p(exp(-fabs(x))) > 690.0;
}

/*
 * One element's values times a factor f = m 2^E > 0 (a weight above 1,
 * varifocal's alpha or alpha w, which may be below 1 beside a tiny alpha or
 * f 2^X, X > 0, where it passes the double range), for the elements whose
 * values lie below the normal
 * range where that factor would bring them back: q^g underflows for a soft
 * target (x = 0, y = 1/2 at gamma 1100 under a weight of 1e300 gave 0 for
 * 5.1e-32) and on the wrong side of a hard target from gamma about 1,000,
 * where q >= 1/2 (x = 0.5, y = 0 at gamma 2000 under a weight of 1e300 gave
 * 0 for 1.6e-112).  The accurate form (logistic_accurate, q^g by the exp of
 * g log q to about 2^-100) with q^g formed 2^(E + X) larger, then times m.
 * Returns 0 beyond FOCAL_SIGMOID_FAR, or where a value would pass the
 * double range (q^g itself normal: the kernel's values, weighed, keep their
 * digits).  poly: 0, or POLY1_GUARDED for Poly-1's soft targets (C = CE +
 * epsilon q takes CE's place; only q^g is formed larger).
 */
FOCAL_OUTLINED int
sigmoid_focal_times(double x, double y, const focal_params *k, dd factor, int extra_exponent,
                    int precise, int poly, focal_values *v)
{
    if (!(fabs(x) <= FOCAL_SIGMOID_FAR && y >= 0.0 && y <= 1.0 && factor.hi > 0.0 &&
          isfinite(factor.hi))) {
        return 0;
    }
    int binary_exponent;
    double mantissa = frexp(factor.hi, &binary_exponent);
    dd mantissas = {mantissa, ldexp(factor.lo, -binary_exponent)}; /* f 2^-E, exactly */
    /* (CE to about 2^-100 too, and Poly-1's log excess (FOCAL_GAMMA_AGAIN),
       in double-double for float32 results as well: a soft target's
       gradient may cancel, as sigmoid_focal_accurate's do, and the path is
       rare.  Plain double for float32 results left 31 ULP at x = 0.0029124,
       y = 1/2 + 2^-20, gamma 1100 under a weight of 1e308; Poly-1's plain
       log excess 3% at epsilon -0.5, gamma 50 under any weight above 1,
       review 81) */
    focal_values r = sigmoid_focal_parts_shifted(
        y, logistic_accurate(x, 0), k, FOCAL_GAMMA_LARGE_ACCURATE | FOCAL_GAMMA_AGAIN, 1,
        FOCAL_OUT_HESS, 1, NULL, poly, (double)binary_exponent + (double)extra_exponent, NULL);
    /* (a factor of one double, a weight, by dd_scale: its bits as before
       alpha w took this path) */
    r.loss = factor.lo == 0.0 ? dd_scale(r.loss, mantissa, precise)
                              : dd_mul(r.loss, mantissas, precise);
    r.grad = factor.lo == 0.0 ? dd_scale(r.grad, mantissa, precise)
                              : dd_mul(r.grad, mantissas, precise);
    r.hess *= mantissa;
    if (!(isfinite(r.loss.hi) && isfinite(r.grad.hi) && isfinite(r.hess))) {
        return 0;
    }
    *v = r;
    return 1;
}

/* e^-a 2^1000 for a >= FOCAL_SIGMOID_FAR: normal up to a = 1438, where e^-a
   itself is subnormal from 708.4; to about 2^-100 for float64 results */
FOCAL_INLINE dd
exp_negative_boosted(double a, int precise)
{
    dd exponent = add_ln2_multiple(dd_from(-a), 1000.0, precise);
    return precise ? exp_accurate(exponent) : exp_nonpositive(exponent, precise);
}

/*
 * hess_factor >= 0 multiplies the second derivative (1 but for varifocal's
 * target 0, whose alpha may reach 1.8e308): on the wrong side it enters
 * before the 2^-1000 that brings the boosted value back, where the digits
 * of e^-|x| are still there (alpha 1e300 at x = 1000 gave 0 for 5e-135, at
 * x = 745 a value 75% off).
 */
FOCAL_OUTLINED focal_values
sigmoid_focal_far(double x, double y, double gamma, double hess_factor, int precise)
{
    focal_values v;
    double ax = fabs(x);
    double a = 1.0 - 2.0 * y;
    if ((y == 1.0) == (x > 0.0)) {
        v = sigmoid_focal_far_right(ax, a, gamma, 0.0, precise);
        v.hess *= hess_factor;
        return v;
    }
    /* float64 results: g t is the exponent of q^g and can be large (up to
       745 where q^g is normal), so t and the exp are taken to about 2^-100
       (see sigmoid_focal_parts) */
    dd t_boosted = exp_negative_boosted(ax, precise);
    /* g t, in double-double while normal */
    dd gt = dd_scale(dd_scale(t_boosted, gamma, precise), 0x1p-1000, precise);
    dd q_gamma = precise ? exp_accurate(dd_negate(gt)) : exp_nonpositive(dd_negate(gt), precise);
    v.loss = dd_scale(q_gamma, ax, precise);
    /* (where q^g = 0, g t |x| may overflow: it is not needed) */
    dd bracket = two_sum(1.0, q_gamma.hi > 0.0 ? gt.hi * ax : 0.0, precise);
    v.grad = dd_scale(dd_mul(q_gamma, bracket, precise), a, precise);
    double base = q_gamma.hi * t_boosted.hi; /* q^g t 2^1000 */
    double hess = base + (base * gamma) * (2.0 - ax)
                  + ((q_gamma.hi * gt.hi) * (gamma - 1.0)) * (t_boosted.hi * ax);
    /* (the factor first, unless that overflows where the true value may not) */
    double factored = hess * hess_factor;
    v.hess = isfinite(factored) ? factored * 0x1p-1000 : hess * 0x1p-1000 * hess_factor;
    return v;
}

/* The focal loss's values at x, and *cancelled set where a float64 soft
   target's gradient cancelled (sigmoid_focal_parts_shifted): the block loop
   computes those elements again (sigmoid_focal_accurate) after its pass. */
FOCAL_INLINE focal_values
sigmoid_focal_marked(double x, double y, const focal_params *k, int gamma_integer, int soft,
                     int derivatives, int precise, int poly, long long *cancelled)
{
    /* float32 results of hard targets: nothing cancels, the float32 functions
       suffice; soft targets' gradients cancel and take the full series.
       float64 results at gamma > 8 take everything to about 2^-100. */
    if (precise && gamma_integer == FOCAL_GAMMA_LARGE) { /* constants */
        return sigmoid_focal_parts_shifted(y, logistic_accurate(x, soft), k,
                                           FOCAL_GAMMA_LARGE_ACCURATE, soft, derivatives,
                                           precise, NULL, poly, 0.0, cancelled);
    }
    return sigmoid_focal_parts_shifted(y, logistic(x, precise, !soft), k, gamma_integer, soft,
                                       derivatives, precise, NULL, poly, 0.0, cancelled);
}

/* float64 values of a soft target from logistic parts good to about 2^-100,
   CE's softplus included: for the elements whose gradient cancelled.  q^g
   multiplies the bracket after it cancelled: its own form's digits suffice. */
FOCAL_INLINE focal_values
sigmoid_focal_accurate(double x, double y, const focal_params *k, int gamma_integer,
                       int derivatives, int poly)
{
    int form = gamma_integer == FOCAL_GAMMA_LARGE ? FOCAL_GAMMA_LARGE_ACCURATE : gamma_integer;
    return sigmoid_focal_parts(y, logistic_accurate(x, 0), k, form | FOCAL_GAMMA_AGAIN, 1,
                               derivatives, 1, NULL, poly);
}

/* the above for one element: the scalar paths */
FOCAL_INLINE focal_values
sigmoid_focal(double x, double y, const focal_params *k, int gamma_integer, int soft,
              int derivatives, int precise, int poly)
{
    long long cancelled = 0;
    focal_values v = sigmoid_focal_marked(x, y, k, gamma_integer, soft, derivatives, precise,
                                          poly, &cancelled);
    if (cancelled) {
        /* (the loss keeps its bits, as the block loop's do) */
        dd loss = v.loss;
        v = sigmoid_focal_accurate(x, y, k, gamma_integer, derivatives, poly);
        v.loss = loss;
    }
    return v;
}

/*
 * A soft target's second derivative beyond |x| = FOCAL_SIGMOID_FAR (the
 * scalar path, float64 results and the float32 ones computed so).  There
 * the small side of p, t = e^-|x|, is subnormal from |x| = 708.4, and so are
 * w = p (1 - p) and r = w / q, of which every term of the second derivative
 * carries one factor (the r^2 term two); gamma, beta or epsilon multiply
 * their few digits back into the normal range (x = 720, y = 1e-3, gamma 200:
 * -1.7869988080332416e-308 for -1.7869988080536046e-308, 41,215 ULP; Poly-1
 * at x = 744, y = 1e-300, gamma 1e13: 29% off; at gamma 1e100, x = 900, 0
 * for -1.2e-288).  far_soft_lifted gives the parts with t 2^k, k chosen
 * (from |x|) so that t 2^k lies in (2^-901, 2^-900], good to 2^-100
 * (exp_accurate_shifted): the kernel's second derivative is 2^k
 * times the value, which ldexp takes back with one rounding.  t's other
 * appearances (in q, d, CE, 1 - 2p, beside the target's side 1 - y or y)
 * and the r^2 term, 2^2k times, stay negligible while (|g| + |epsilon| + 1)
 * t 2^k (factor) is below 2^-60 of that side; where it is not (a target as
 * small as 2^-840 of factor, or factor above 2^839) it answers 0 and the
 * parts stay as they were.  Returns k.
 */
FOCAL_INLINE int
far_soft_lifted(double x, double y, double factor, logistic_parts *s)
{
    double ax = fabs(x);
    if (!(ax > FOCAL_SIGMOID_FAR) || !(ax < 2000.0)) {
        return 0; /* (beyond, every value underflows whatever the digits) */
    }
    int k = (int)(ax / LN2) - 900;
    dd t = exp_accurate_shifted(dd_from(-ax), (double)k);
    double side = x > 0.0 ? 1.0 - y : y;
    if (!(factor * t.hi <= 0x1p-60 * side)) {
        return 0;
    }
    if (x > 0.0) {
        s->one_minus_p = t;
    }
    else {
        s->p = t;
    }
    return k;
}

/*
 * A soft target's values on the scalar path from their first-order forms in
 * t = e^-|x|: the focal loss's beyond FOCAL_SIGMOID_FAR, Poly-1's there and,
 * for epsilon >= 0, beyond FOCAL_FAR_SOFT_FROM wherever poly1_prepare sends
 * its elements to this path.  On the left side (x < 0), with u = y and
 * a = 1 - 2u (sigmoid_focal_parts' notation):
 *   p = w = t,  q = u + a t,  CE = u |x| + t,  d = p - y = t - u,
 *   C = CE + epsilon q = u (|x| + epsilon) + t (1 + epsilon a),
 *   dC/dx = t (1 + epsilon a) - u,
 *   d2C/dx2 = t (1 + epsilon a (1 - 2p)) = t ((1 + epsilon a) - 2 epsilon a t),
 * each term to a relative 4t, below 2^-106 from |x| = 75, so that with
 * r = t / q
 *   FL = q^g C,  dFL/dx = q^g [g a r C + dC/dx],
 *   d2FL/dx2 = q^g [(g a r C)(g - 1) a r + g a r C + 2 g a r dC/dx + d2C/dx2].
 * The right side mirrors it: FL(x, y) = FL(-x, 1 - y), u = 1 - y, the
 * gradient's sign turned.  The terms dropped are t^2 times 1 or epsilon:
 * where 1 + epsilon a cancels (it keeps 2u at epsilon = -1, the target's
 * side) they are of the values' size, but only for epsilon < 0 (Poly-1's
 * C and dC/dx there, 0 for 7e-164 at x = -150, y = 1e-200, epsilon -1),
 * which takes this form beyond FOCAL_SIGMOID_FAR alone, where t^2 is below
 * 2^-2000.
 * t is subnormal from |x| = 708.4 and 0 from 745, while gamma or epsilon up
 * to 1.8e308 bring its products back, and a tiny u sits beside t in q,
 * whose complement 1 - q = (1 - u) - a t is formed apart for q^g
 * (wide_power; x = -746, y = 1e-300, epsilon 1e300: the gradient was -1e-300
 * for 1.04e-24; y = 2^-1022 at x = 745 and gamma 1.7e308: 1,758 ULP; review
 * 83); nearer, Poly-1's q^g underflows where epsilon brings the value back
 * (y = 1e-200, gamma 2, epsilon 1e300: the loss 0 from x = -500 to -700 for
 * 1e-300, review 91).  Every part is held as m 2^e (dd_wide), each
 * operation good to about 2^-100, and rounded once (t: far_exp).  Returns 0 where
 * |x| + epsilon or a value passes the double range (the kernel's values
 * stand).
 */
#define FOCAL_FAR_SOFT_FROM 75.0

/* e^-ax for ax >= 0 as m 2^e, good to about 2^-100: taken as t 2^shift,
   near 2^-900 where t is smaller (exp_accurate_shifted); 0 from ax = 5000,
   where t's products lie below 2^-6000 of the values' other terms */
FOCAL_INLINE dd_wide
far_exp(double ax)
{
    dd_wide t = {dd_from(0.0), 0.0};
    if (ax < 5000.0) {
        double shift = fmax(floor(ax * INV_LN2) - 900.0, 0.0);
        t = wide_from(exp_accurate_shifted(dd_from(-ax), shift));
        t.e -= shift;
    }
    return t;
}

FOCAL_OUTLINED int
sigmoid_focal_far_soft(double x, double y, const focal_params *k, int poly, focal_values *v)
{
    const double ax = fabs(x), gamma = k->gamma, epsilon = poly ? k->extra : 0.0;
    const int left = x < 0.0;
    dd abs_x_epsilon = two_sum(ax, epsilon, 1);
    int near = !(ax > FOCAL_SIGMOID_FAR);
    if (!(ax > FOCAL_FAR_SOFT_FROM && !(near && epsilon < 0.0) && isfinite(abs_x_epsilon.hi) &&
          y > 0.0 && y < 1.0)) {
        return 0;
    }
    dd_wide t = far_exp(ax);
    /* u and 1 - u exactly */
    dd_wide u = wide_from(left ? dd_from(y) : two_sum(1.0, -y, 1));
    dd_wide not_u = wide_from(left ? two_sum(1.0, -y, 1) : dd_from(y));
    dd a = left ? two_sum(1.0, -2.0 * y, 1) : two_sum(2.0 * y, -1.0, 1);
    dd_wide wide_a = wide_from(a);
    dd_wide one_epsilon_a = wide_from(dd_add(dd_from(1.0), dd_scale(a, epsilon, 1), 1));
    dd_wide c_slope = wide_mul(t, one_epsilon_a);
    dd_wide a_t = wide_mul(wide_a, t);
    /* (t (1 + epsilon a (1 - 2p)) with its second-order part: 1 + epsilon a
       cancels where epsilon a is -1, and 2 epsilon a t^2 is then the value) */
    dd_wide two_t = {t.m, t.e + 1.0}; /* (2 epsilon itself may overflow) */
    dd_wide c_curvature = wide_mul(t, wide_add(one_epsilon_a,
                                               wide_mul(wide_from(dd_scale(a, -epsilon, 1)), two_t)));
    dd_wide q = wide_add(u, a_t);
    dd_wide c = wide_add(wide_mul(u, wide_from(abs_x_epsilon)), c_slope);
    dd_wide d_c = wide_add(c_slope, wide_negate(u));
    dd_wide g_a_r = wide_mul(wide_mul(wide_from(dd_from(gamma)), wide_a), wide_divide(t, q));
    dd_wide g_a_r_c = wide_mul(g_a_r, c);
    dd_wide q_gamma = wide_power(q, wide_add(not_u, wide_negate(a_t)), gamma);
    dd_wide squared = wide_mul(g_a_r_c, wide_mul(wide_from(two_sum(gamma, -1.0, 1)),
                                                 wide_mul(wide_a, wide_divide(t, q))));
    dd_wide two_g_a_r_d = wide_mul(wide_from(dd_from(2.0)), wide_mul(g_a_r, d_c));
    dd_wide curvature = wide_add(wide_add(squared, g_a_r_c), wide_add(two_g_a_r_d, c_curvature));
    focal_values r;
    r.loss = wide_value(wide_mul(q_gamma, c));
    r.grad = wide_value(wide_mul(q_gamma, wide_add(g_a_r_c, d_c)));
    r.grad = left ? r.grad : dd_negate(r.grad);
    r.hess = wide_value(wide_mul(q_gamma, curvature)).hi;
    if (!(isfinite(r.loss.hi) && isfinite(r.grad.hi) && isfinite(r.hess))) {
        return 0;
    }
    *v = r;
    return 1;
}

/* the scalar path's values of a soft target (sigmoid_focal_limit,
   poly1_focal_limit): the kernel's, and beyond FOCAL_FAR_SOFT_FROM the far
   form's (sigmoid_focal_far_soft; where a value passes the double range,
   the kernel's with the second derivative from lifted parts,
   far_soft_lifted) */
FOCAL_OUTLINED focal_values
sigmoid_focal_soft_limit(double x, double y, const focal_params *k, int precise, int poly)
{
    focal_values far;
    if (sigmoid_focal_far_soft(x, y, k, poly, &far)) {
        return far;
    }
    const int form = focal_gamma_kernel(k->gamma);
    focal_values v = sigmoid_focal(x, y, k, form, 1, FOCAL_OUT_HESS, precise, poly);
    const int large = form == FOCAL_GAMMA_LARGE;
    logistic_parts s = large ? logistic_accurate(x, 1) : logistic(x, 1, 0);
    double factor = fabs(k->gamma) + (poly ? fabs(k->extra) : 0.0) + 1.0;
    int lift = precise ? far_soft_lifted(x, y, factor, &s) : 0;
    if (lift != 0) {
        focal_values lifted = sigmoid_focal_parts(y, s, k, large ? FOCAL_GAMMA_LARGE_ACCURATE : form,
                                                  1, FOCAL_OUT_HESS, 1, NULL, poly);
        v.hess = ldexp(lifted.hess, -lift);
    }
    return v;
}

/* FL*'s z = gamma s x + beta (Appendix A), s = 2y - 1, in double-double
   where precise */
FOCAL_INLINE dd
star_z(double x, double y, const focal_params *k, int precise)
{
    double s = y == 1.0 ? 1.0 : -1.0;
    return dd_add(two_product(k->gamma, s * x, precise), dd_from(k->beta), precise);
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
    dd z = star_z(x, y, k, precise);
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

/*
 * FL* where z = gamma s x + beta > FOCAL_STAR_FAR (the scalar path): there
 * softplus(-z) = log1p(e^-z) = e^-z (1 - e^-z / 2 + ...) is e^-z to a relative
 * 1e-260, and
 *   FL* = e^-z / gamma = e^(-z - log gamma),
 * one exp of an argument held in double-double.  Dividing the softplus by a
 * tiny gamma instead lost everything once e^-z had underflowed (z > 745) or
 * gone subnormal: FL* at gamma 1e-300, beta 1000 is 5.08e-135, not 0.  The
 * argument is at most -600 + 744.4 (gamma >= 5e-324), inside exp_series's
 * range.  The gradient -s sigmoid(-z) = -s e^-z to the same relative order.
 * Nearer z takes star_focal itself, the same operations as the vector kernel.
 */
static inline focal_values
star_focal_far(double x, double y, const focal_params *k, int precise)
{
    double s = y == 1.0 ? 1.0 : -1.0;
    dd z = star_z(x, y, k, precise);
    if (!(z.hi > FOCAL_STAR_FAR)) {
        return star_focal(x, y, k, precise);
    }
    focal_values v;
    dd exponent = dd_add(dd_negate(z), dd_negate(k->log_gamma), precise);
    v.loss = exp_series(exponent, precise, 0);
    v.grad = dd_scale(exp_series(dd_negate(z), precise, 0), -s, precise);
    v.hess = 0.0;
    return v;
}

/*
 * The sigmoid focal loss on the scalar path: the limits at x = +-inf and NaN,
 * and beyond |x| = FOCAL_SIGMOID_FAR (sigmoid_focal_far).  With "wrong" =
 * 1 - p_t at the limit (1 - y or y), the focal loss is 0 or +inf, its
 * gradient +-wrong^(gamma + 1), its curvature 0.
 */
FOCAL_OUTLINED focal_values
sigmoid_focal_limit(double x, double y, const focal_params *k, int precise)
{
    focal_values v = {dd_from(0.0), dd_from(0.0), 0.0};
    if (x != x) {
        v.loss = v.grad = dd_from(x);
        v.hess = x;
        return v;
    }
    if (isfinite(x)) {
        if (y == 0.0 || y == 1.0) {
            return sigmoid_focal_far(x, y, k->gamma, 1.0, precise);
        }
        /* a soft target keeps the kernel's own formula */
        return sigmoid_focal_soft_limit(x, y, k, precise, 0);
    }
    double wrong = x > 0 ? 1.0 - y : y;
    double wrong_gamma = k->gamma == 0.0 ? 1.0 : pow(wrong, k->gamma);
    v.loss = dd_from(wrong == 0.0 ? 0.0 : HUGE_VAL);
    v.grad = dd_from((x > 0 ? 1.0 : -1.0) * wrong_gamma * wrong);
    return v;
}

/*
 * FL* on the scalar path: NaN, x = +-inf or gamma x overflowing, and the far
 * tail z > FOCAL_STAR_FAR (star_focal_far).  Where z is infinite, FL* is 0 on
 * the right side and softplus(-z) / gamma ~ -z / gamma on the wrong one.
 */
static inline focal_values
star_focal_limit(double x, double y, const focal_params *k, int precise)
{
    focal_values v = {dd_from(0.0), dd_from(0.0), 0.0};
    if (x != x) {
        v.loss = v.grad = dd_from(x);
        v.hess = x;
        return v;
    }
    double s = y == 1.0 ? 1.0 : -1.0;
    if (isfinite(x) && isfinite(k->gamma * s * x + k->beta)) {
        return star_focal_far(x, y, k, precise);
    }
    int right = s * x > 0; /* z = +inf: certainly right */
    /* certainly wrong: FL* = softplus(-z) / gamma ~ -z / gamma = -s x - beta / gamma */
    v.loss = dd_from(right ? 0.0 : isinf(x) ? HUGE_VAL : -s * x - k->beta / k->gamma);
    v.grad = dd_from(right ? 0.0 : -s);
    return v;
}

#endif  /* FOCAL_SIGMOID_FOCAL_H */

/*
 * focal_family.h: the formulas of the losses that grew out of the focal loss
 * and that are not the focal loss with a parameter more (Poly-1 is: see
 * sigmoid_focal_parts' poly).  Notation of sigmoid_focal.h: p = sigmoid(x),
 * w = p (1 - p), q = 1 - p_t, a = 1 - 2y, CE the cross-entropy of target y.
 */
#ifndef FOCAL_FAMILY_H
#define FOCAL_FAMILY_H

#include "sigmoid_focal.h"

/*
 * Poly-1 (Leng et al., PolyLoss): q^g C, C = CE + epsilon q, on the scalar
 * path.  x NaN or infinite: the focal loss's limits (the poly term is 0 or
 * finite where the focal loss is 0 or infinite, and its derivatives carry a
 * factor w that vanishes).  Beyond |x| = FOCAL_SIGMOID_FAR, a hard target,
 * with t = e^-|x| (sigmoid_focal_far):
 * - right side: q = CE = t, so C = (1 + epsilon) t and every derivative of C
 *   is (1 + epsilon) times CE's: the focal loss's values times 1 + epsilon;
 * - wrong side: q = 1 - t, C = |x| + epsilon (1 - t), and the poly term
 *   epsilon q^(g+1) adds epsilon q^g (1 - t) to the loss,
 *   epsilon (g + 1) a q^g t to the gradient and
 *   epsilon (g + 1) q^g t (g t - (1 - 2t)) to the second derivative
 *   (d/dx q^(g+1) = (g + 1) q^g a w, d2/dx2 = (g + 1) q^g w (g a^2 w / q + a (1 - 2p))).
 * Soft targets keep the kernel's formula, and so do logits within
 * FOCAL_SIGMOID_FAR (here when poly1_prepare sends every element to this
 * path), both with its guard against overflow (POLY1_GUARDED).
 */
/* whether a finite x of target y takes the right side's far form: beyond
   FOCAL_SIGMOID_FAR, or from focal_far_form_from(gamma) on where the factor
   1 + epsilon > 1 would bring back what q^g lost (see poly1_prepare) */
FOCAL_INLINE int
poly1_far_right(double x, double y, const focal_params *k)
{
    return (y == 0.0 || y == 1.0) && (y == 1.0) == (x > 0.0) &&
           (fabs(x) > FOCAL_SIGMOID_FAR ||
            (k->extra > 0.0 && fabs(x) >= focal_far_form_from(k->gamma)));
}

FOCAL_OUTLINED focal_values
poly1_focal_limit(double x, double y, const focal_params *k, int precise)
{
    if (!isfinite(x)) {
        return sigmoid_focal_limit(x, y, k, precise);
    }
    double epsilon = k->extra, gamma = k->gamma;
    int hard = y == 0.0 || y == 1.0;
    if (poly1_far_right(x, y, k)) {
        return sigmoid_focal_far_right_times(fabs(x), 1.0 - 2.0 * y, gamma,
                                             two_sum(1.0, epsilon, precise), 0, precise);
    }
    if (!hard || !(fabs(x) > FOCAL_SIGMOID_FAR)) {
        /* soft targets, the wrong side within FOCAL_SIGMOID_FAR, and every
           element where poly1_prepare sends them all here: the kernel's
           formulas, guarded against overflow */
        return sigmoid_focal_soft_limit(x, y, k, precise, POLY1_GUARDED);
    }
    focal_values v = sigmoid_focal_far(x, y, gamma, 1.0, precise);
    /* t = e^-|x| is subnormal from |x| = 708.4 (75% off at 745), so it is
       taken as t 2^1000, as sigmoid_focal_far takes it, and every product
       with it is scaled back once, last */
    double t_boosted = exp_negative_boosted(fabs(x), precise).hi;
    double t = t_boosted * 0x1p-1000;
    double gt = (gamma * t_boosted) * 0x1p-1000;
    double q_gamma = exp(-gt);
    double a = 1.0 - 2.0 * y;
    /* (dd_accumulate: a sum beyond the double range is that infinity, not NaN) */
    v.loss = dd_accumulate(v.loss, dd_from(epsilon * q_gamma * (1.0 - t)), precise);
    /* epsilon (g + 1) q^g t 2^1000, then 2^-1000: (g + 1) q^g t 2^1000 is at
       most 1.8e308 e^-700 2^1000 < 1e305, and epsilon enters on the side
       that cannot overflow before the true value does */
    double slope_boosted = ((gamma + 1.0) * t_boosted) * q_gamma;
    double poly_slope = fabs(epsilon) >= 1.0 ? (epsilon * 0x1p-1000) * slope_boosted
                                             : (epsilon * slope_boosted) * 0x1p-1000;
    v.grad = dd_accumulate(v.grad, dd_from(poly_slope * a), precise);
    v.hess += poly_slope * (gt - (1.0 - 2.0 * t));
    return v;
}

/* a focal_values times a factor >= 0; a factor 0 gives 0, the limit even of
   an infinite loss */
static inline focal_values
focal_values_scaled(focal_values v, double factor, int precise)
{
    focal_values r = {dd_from(0.0), dd_from(0.0), 0.0};
    if (factor == 0.0) {
        return r;
    }
    /* (an infinite or overflowing product's double-double form would hold
       inf - inf = NaN) */
    double plain = v.loss.hi * factor;
    r.loss = isfinite(plain) ? dd_scale(v.loss, factor, precise) : dd_from(plain);
    double plain_grad = v.grad.hi * factor;
    r.grad = isfinite(plain_grad) ? dd_scale(v.grad, factor, precise) : dd_from(plain_grad);
    r.hess = v.hess * factor;
    return r;
}

/*
 * The binary cross-entropy of a target y in [0, 1] from the logistic parts:
 *   CE = y softplus(-x) + (1 - y) softplus(x),  dCE/dx = p - y (p_minus_y),
 *   d2CE/dx2 = w.
 */
FOCAL_INLINE focal_values
cross_entropy_parts(double y, logistic_parts s, int precise)
{
    focal_values v;
    dd not_y = two_sum(1.0, -y, precise);
    v.loss = dd_add(dd_scale(s.softplus_mx, y, precise), dd_mul(not_y, s.softplus_x, precise),
                    precise);
    /* (p_minus_y's series near x = 0 for float64 results only: it cost the
       varifocal loss's float32 soft targets a fifth of their time, which
       take it where p - y cancels, from varifocal_accurate) */
    v.grad = p_minus_y(y, s, precise, precise);
    v.hess = s.p.hi * s.one_minus_p.hi;
    return v;
}

/*
 * The varifocal loss (Zhang et al., VarifocalNet), for an IoU-aware target
 * q = y in [0, 1] and alpha = k->extra:
 *   q > 0:  VFL = q CE(q)                = -q (q log p + (1 - q) log(1 - p)),
 *           dVFL/dx = q (p - q),  d2VFL/dx2 = q w;
 *   q = 0:  VFL = alpha p^g softplus(x)  = -alpha p^g log(1 - p),
 * the focal loss of target 0 (q = 1 - p_t = p there) times alpha, whose
 * derivatives sigmoid_focal_parts gives:
 *           dVFL/dx   = alpha p^g [g (1 - p) softplus(x) + p],
 *           d2VFL/dx2 = alpha p^g [g (1 - p)(g (1 - p) - p) softplus(x)
 *                                  + 2 g (1 - p) p + w].
 * Both branches are computed from the same logistic parts and one is
 * selected: no branch in the loop.  given_p_gamma: p^gamma computed
 * beforehand, as sigmoid_focal_parts' given_q_gamma (the float32 staged loop,
 * losses.h), or NULL.
 */
FOCAL_INLINE focal_values
varifocal_parts(double y, logistic_parts s, const focal_params *k, int gamma_integer,
                int derivatives, int precise, const double *given_p_gamma)
{
    focal_values negative = sigmoid_focal_parts(0.0, s, k, gamma_integer, 0, derivatives,
                                                precise, given_p_gamma, 0);
    focal_values positive = cross_entropy_parts(y, s, precise);
    int is_negative = y == 0.0;
    return focal_values_scaled(is_negative ? negative : positive, is_negative ? k->extra : y,
                               precise);
}

FOCAL_INLINE focal_values
varifocal(double x, double y, const focal_params *k, int gamma_integer, int soft,
          int derivatives, int precise)
{
    return varifocal_parts(y, logistic(x, precise, !soft), k, gamma_integer, derivatives,
                           precise, NULL);
}

/* The above, and *again set where a soft target's gradient y (p - y)
   cancels next to logit(y): p - y keeps the digits p has beyond y's, and
   logistic()'s p is good to about 2^-57 of q = p (1 - y) + (1 - p) y (about
   2 y (1 - y) there; at the double nearest logit(0.3) the focal loss's
   gradient at gamma 0, the same p - y, was 1% off), in plain double (float32
   results) to about 2^-53.  Where |p - y| is below 1/32 of that (float32
   results: 2^-13, which leaves 2^-40 of it beyond) the element asks for parts
   good to about 2^-100 (varifocal_accurate), as the focal loss's do
   (sigmoid_focal_marked): float32 results next to logit(y) for a target
   near 1/2 were up to 1.7e7 ULP off (y = 1/2 - 2^-25, x = -2^-23). */
FOCAL_INLINE focal_values
varifocal_marked(double x, double y, const focal_params *k, int gamma_integer, int soft,
                 int derivatives, int precise, long long *again)
{
    focal_values v = varifocal(x, y, k, gamma_integer, soft, derivatives, precise);
    if (soft && derivatives >= FOCAL_OUT_GRAD) { /* constants */
        /* (0 for y in {0, 1}: their gradients do not cancel) */
        *again = (precise ? 16.0 : 4096.0) * fabs(v.grad.hi) < y * y * (1.0 - y);
    }
    return v;
}

FOCAL_INLINE focal_values
varifocal_accurate(double x, double y, const focal_params *k, int gamma_integer,
                   int derivatives)
{
    return varifocal_parts(y, logistic_accurate(x, 0), k, gamma_integer, derivatives, 1, NULL);
}

/*
 * The varifocal loss on the scalar path (NaN, +-inf, |x| > k->near, see
 * varifocal_prepare):
 * the focal loss's scalar path, at gamma for q = 0 and at gamma 0 (the
 * cross-entropy) for q > 0, times alpha or q.
 */
FOCAL_OUTLINED focal_values
varifocal_limit(double x, double y, const focal_params *k, int precise)
{
    if (x != x) {
        return sigmoid_focal_limit(x, y, k, precise);
    }
    if (y == 0.0 && x < 0.0 && isfinite(x) && k->extra > 0.0 &&
        (x < -FOCAL_SIGMOID_FAR || (k->extra > 1.0 && -x >= focal_far_form_from(k->gamma)))) {
        /* the right side of target 0, times alpha (up to 1.8e308) */
        return sigmoid_focal_far_right_times(-x, 1.0, k->gamma, dd_from(k->extra), 0, precise);
    }
    if (isfinite(x) && fabs(x) <= FOCAL_SIGMOID_FAR) {
        /* sent here by varifocal_prepare's reach, but not the right side of
           target 0 far enough for its far form: its exact form times alpha
           where p^g would underflow; on the wrong side (x > 0, p >= 1/2),
           where its values may lie below the normal range
           (wrong_side_underflows, from gamma about 1,000), the accurate
           form times alpha (x = 0.5, gamma 2000, alpha 1e300 gave 0 for
           1.6e-112); else the kernel's formula, computed again where a soft
           target's gradient cancels, as the block loop does (without it,
           alpha 3, gamma 50 at the double nearest logit(0.9999999) gave a
           gradient 33,028 ULP off) */
        focal_values v;
        /* (an alpha above 1 brings values back; below, the kernel's keep
           their digits) */
        int times = y == 0.0 && x <= 0.0
                        ? k->extra > 1.0 && sigmoid_focal_right_times(-x, 1.0, k->gamma,
                                                                      dd_from(k->extra), 0,
                                                                      precise, &v)
                    : y == 0.0 && wrong_side_underflows(x, k->gamma)
                        ? k->extra > 1.0 && sigmoid_focal_times(x, 0.0, k, dd_from(k->extra), 0,
                                                                precise, 0, &v)
                        : 0;
        if (!times) {
            const int form = focal_gamma_kernel(k->gamma);
            long long again = 0;
            v = varifocal_marked(x, y, k, form, 1, FOCAL_OUT_HESS, precise, &again);
            if (again) {
                dd loss = v.loss; /* (the loss keeps its bits, as the block loop's do) */
                v = varifocal_accurate(x, y, k, form, FOCAL_OUT_HESS);
                v.loss = loss;
            }
        }
        return v;
    }
    if (y == 0.0 && isfinite(x)) {
        /* the wrong side beyond FOCAL_SIGMOID_FAR: alpha enters the second
           derivative inside sigmoid_focal_far, before its scale-back */
        focal_values far = sigmoid_focal_far(x, 0.0, k->gamma, k->extra, precise);
        focal_values v = focal_values_scaled(far, k->extra, precise);
        v.hess = k->extra == 0.0 ? 0.0 : far.hess;
        return v;
    }
    if (y == 0.0) {
        return focal_values_scaled(sigmoid_focal_limit(x, 0.0, k, precise), k->extra, precise);
    }
    focal_params cross_entropy = *k;
    cross_entropy.gamma = 0.0;
    return focal_values_scaled(sigmoid_focal_limit(x, y, &cross_entropy, precise), y, precise);
}

/*
 * e^d - 1 for |d| <= 1/2, to a relative 2^-58: d + d^2/2 in double-double
 * and d^3 (1/3! + d/4! + ... + d^13/16!) in double (the first term left out,
 * d^16/17!, is below 2^-64 of the sum); d's low part enters through
 * d(e^d - 1)/dd = e^d ~ 1 + d.
 */
FOCAL_INLINE dd
expm1_small(dd d, int precise)
{
    double t = d.hi, t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    double c01 = 1.0 / 6.0 + t * (1.0 / 24.0);
    double c23 = 1.0 / 120.0 + t * (1.0 / 720.0);
    double c45 = 1.0 / 5040.0 + t * (1.0 / 40320.0);
    double c67 = 1.0 / 362880.0 + t * (1.0 / 3628800.0);
    double c89 = 1.0 / 39916800.0 + t * (1.0 / 479001600.0);
    double c1011 = 1.0 / 6227020800.0 + t * (1.0 / 87178291200.0);
    double c1213 = 1.0 / 1307674368000.0 + t * (1.0 / 20922789888000.0);
    double series = ((c01 + t2 * c23) + t4 * (c45 + t2 * c67))
                    + t8 * ((c89 + t2 * c1011) + t4 * c1213);
    dd value = dd_add(d, two_product(t, 0.5 * t, precise), precise);
    return dd_add(value, dd_from(t2 * t * series + d.lo * t), precise);
}

/*
 * The asymmetric loss (Ridnik et al., ICCV 2021), for a hard target y, with
 * gamma_neg = k->gamma, gamma_pos = k->extra, the clip m = k->extra2 and
 * logit(m) = k->extra3 + k->extra4 (a double-double, computed by Python):
 *   y = 1:  L+ = -(1 - p)^gamma_pos log p,
 *           the focal loss of target 1 at gamma_pos (sigmoid_focal_parts);
 *   y = 0:  L- = -p_m^g log(1 - p_m),  p_m = max(p - m, 0),  g = gamma_neg.
 * For p > m, with P = p_m, u = 1 - P = (1 - p) + m (two positive terms: no
 * cancellation), S = -log u and sigma = S / P (about 1 for small P), and
 * dP/dx = w, dw/dx = w (1 - 2p):
 *   dL-/dP   = P^g (g sigma + 1/u),
 *   d2L-/dP2 = P^(g-1) (g (g - 1) sigma + 2g/u) + P^g / u^2,
 *   dL-/dx   = w P^g (g sigma + 1/u),
 *   d2L-/dx2 = w P^g [(1 - 2p)(g sigma + 1/u) + (w / P)(g (g - 1) sigma + 2g/u)
 *                     + w / u^2].
 * For p <= m the loss and both derivatives are 0.  At p = m the gradient
 * jumps from 0 to w for g = 0, and the second derivative for g <= 1: to
 * w (1 - 2m) + w^2 at g = 0, 2 w^2 at g = 1, without bound for 0 < g < 1 (it
 * tends to 0 for g > 1).  There (P = 0) the values are those of p < m: 0
 * (a subgradient for g = 0).
 *
 * P = p - m cancels near p = m, where p's own error (2^-57 of p: the
 * double-double exp is good to that) would be all of P's digits.  There P
 * is computed without a difference of probabilities: with d = x - logit(m),
 *   P = p - m = m (1 - p)(e^d - 1),
 * for |d| <= 1/2; beyond, p - m loses at most 2 bits.  d is good to 2^-106
 * absolute (logit(m)'s double-double): 2^-53 of d itself at the double
 * nearest logit(m), where P^(g+1) takes its error to 2.9 ULP at g = 4.
 * log u: log1p(-P) while P <= 1/4 (u near 1 would lose P's digits; the
 * series of log1p_small is exact to 2^-106 there, not at P = 1/2), the log
 * of the double-double u beyond (u small keeps its own); for m = 0, u is
 * 1 - p and S is softplus(x), exact.  The forms of the focal loss serve P^g.
 */
FOCAL_INLINE focal_values
asymmetric_negative(double x, logistic_parts s, dd w, const focal_params *k, int gamma_integer,
                    int derivatives, int precise, double weight)
{
    focal_values v = {dd_from(0.0), dd_from(0.0), 0.0};
    const double g = k->gamma, m = k->extra2;
    dd d = dd_add(two_sum(x, -k->extra3, precise), dd_from(-k->extra4), precise);
    int near_clip = m > 0.0 && fabs(d.hi) <= 0.5;
    /* Beyond, for p and m above 1/2, P = (1 - m) - (1 - p): 1 - m is exact
       (Sterbenz) and 1 - p is held apart, where p itself, rounded near 1,
       kept few of P's digits in plain mode (float32 results, clip 1 - 2^-53:
       2e7 ULP off; clip 1 - 1e-9: 5 ULP) */
    int upper = m >= 0.5 && s.p.hi > 0.5;
    /* (next to the clip P 2^600 first, m 2^600 (exact) times 1 - p before
       e^d - 1, which may be subnormal: see lifted_p; its sign says whether
       x is above the clip, where P itself may underflow to 0: clip 1e-310
       at the double above logit(m) gave a gradient of 0 for 1.0e-310, clip
       1/2 at x = 5e-324 0 for 0.25) */
    dd near_lifted = dd_mul(dd_scale(s.one_minus_p, m * 0x1p600, precise),
                            expm1_small(d, precise), precise);
    dd shifted = near_clip ? dd_scale(near_lifted, 0x1p-600, precise)
                 : upper   ? dd_add(dd_from(1.0 - m), dd_negate(s.one_minus_p), precise)
                           : dd_add(s.p, dd_from(-m), precise);
    int above = (near_clip ? near_lifted.hi : shifted.hi) > 0.0;
    /* below the clip every value is 0: P = u = 1/2 there keeps the unused
       arithmetic finite */
    dd big_p = above ? shifted : dd_from(0.5);
    dd u = m == 0.0 ? s.one_minus_p : dd_add(s.one_minus_p, dd_from(m), precise);
    u = above ? u : dd_from(0.5);
    /* a P or u below 2^-900 is lifted by 2^600 wherever a quotient or a log
       takes it: log_positive divides by its high part, and 1 / u overflows,
       for a subnormal one (a subnormal clip).  Next to the clip P is formed
       lifted, from m 2^600 (exact): P itself, subnormal within about 1e-308
       of a normal clip, has few digits, which the second derivative's 1/P
       brought back (clip 1e-300, gamma_neg 1e-8, x = -690.7755278972137:
       1.0e-300 for 1.1e-299) */
    double lift_p = big_p.hi < 0x1p-900 ? 0x1p600 : 1.0;
    double lift_u = u.hi < 0x1p-900 ? 0x1p600 : 1.0;
    dd lifted_p = lift_p == 1.0 ? big_p
                  : near_clip   ? near_lifted
                                : dd_scale(big_p, lift_p, precise);
    int near_one = big_p.hi <= 0.25;
    dd log_u = near_one ? log1p_small(dd_negate(big_p), precise, 0)
                        : add_ln2_multiple(log_positive(dd_scale(u, lift_u, precise), precise),
                                           lift_u != 1.0 ? -600.0 : 0.0, precise);
    dd big_s = m == 0.0 ? s.softplus_x : dd_negate(log_u);
    /* P^g times power_lift (1, or 2^600 or 2^1000 where P^g is tiny:
       below); for an integer g up to 4 also P^(g-1), lifted alike */
    dd p_g, p_g1 = dd_from(0.0);
    double power_lift = 1.0;
    /* (a weight other than 1 takes the exponent's form: below) */
    const int products = gamma_integer >= 1 && gamma_integer <= 4 && weight == 1.0;
    if (products) {
        /* (P 2^(600/g))^g = P^g 2^600 where P^g is below 2^-600 (see below),
           and P^(g-1) 2^600 = (P 2^(600/g))^(g-1) 2^(600/g).  P^(g-1) is a
           product of its own: P^g / P is not, where P^g underflows even
           lifted (clip 1/2, gamma_neg 2, x = 1e-300: P^2 = 6e-602) */
        const double base_lift = gamma_integer == 1   ? 0x1p600
                                 : gamma_integer == 2 ? 0x1p300
                                 : gamma_integer == 3 ? 0x1p200
                                                      : 0x1p150;
        power_lift = big_p.hi * base_lift < 1.0 ? 0x1p600 : 1.0;
        /* (a P below 2^-900 from its lifted form, whose digits it lacks) */
        dd base = lift_p != 1.0 ? dd_scale(lifted_p, base_lift * 0x1p-600, precise)
                                : dd_scale(big_p, power_lift != 1.0 ? base_lift : 1.0, precise);
        dd p2 = dd_mul(base, base, precise);
        dd p3 = dd_mul(p2, base, precise);
        p_g = gamma_integer == 1   ? base
              : gamma_integer == 2 ? p2
              : gamma_integer == 3 ? p3
                                   : dd_mul(p2, p2, precise);
        dd below = gamma_integer == 1   ? dd_from(1.0)
                   : gamma_integer == 2 ? base
                   : gamma_integer == 3 ? p2
                                        : p3;
        p_g1 = dd_scale(below, power_lift != 1.0 ? base_lift : 1.0, precise);
    }
    else {
        /* log P = log p + log(1 - m/p) = -softplus(-x) + log1p(-m/p) while
           m <= p/4: P near 1 keeps its distance from 1 (p rounded to 1 in
           plain double would give log P = 0, and P^g = 1 at any g) */
        int from_p = m <= 0.25 * s.p.hi;
        dd m_over_p = dd_divide(dd_from(m), from_p ? s.p : dd_from(1.0), precise);
        dd log_p_m = from_p ? dd_add(dd_negate(s.softplus_mx),
                                     log1p_small(dd_negate(m_over_p), precise, 0), precise)
                            : add_ln2_multiple(log_positive(lifted_p, precise),
                                               lift_p != 1.0 ? -600.0 : 0.0, precise);
        /* P^g = e^(g log P), and a weight other than 1 inside the power,
           P^g w = e^(g log P + log w) (above 1: asymmetric_limit_weighted;
           below 1 where the second derivative overflowed:
           asymmetric_gathered; else 1, a constant of the block's loops):
           values that lie below the doubles before the weight brings them
           back keep their digits (clip 1/2, gamma_neg 0.5, x = 1e-315 under
           a weight of 1e300: a loss of 0 for 3.95e-174), also where w
           (p (1 - p)) is tiny too (clip 1e-300, gamma_neg 0.5 next to the
           clip: a gradient of 0 for 5.6e-157).
           Below e^-700 (the products above: 2^-600) that power is formed
           2^1000 larger for g >= 1, where P^(g-1) <= 1 keeps every lifted
           value finite (P^g may be far below 2^-1674 where P^(g-1) is
           normal: gamma_neg 1.9 at P = 1e-280), 2^600 below, where P^(g-1)
           exceeds 1; its exponent stops at -1600, the sentinel of a power
           that underflows even lifted.  Every value that it multiplies is
           scaled back once, last: the second derivative's P^(g-1) may be
           normal where P^g is subnormal, and P^g / P took the subnormal's
           few digits to it (clip 0.05, gamma_neg 20, three doubles above
           logit(m): 1.34e-307 for 1.05e-307), or 0 where P^g underflowed
           (one double above: 0 for 1.1e-310; clip 1/2, gamma_neg 2, x =
           1e-300: 0 for 9.4e-302). */
        dd log_weight = weight == 1.0 ? dd_from(0.0)
                                      : log_by_exponent(dd_from(weight), precise,
                                                        precise ? EXP_ACCURATE : NO_LOG_STEP);
        dd exponent = weight == 1.0 ? dd_scale(log_p_m, g, precise)
                                    : dd_add(dd_scale(log_p_m, g, precise), log_weight, precise);
        const double plain = g * log_p_m.hi + log_weight.hi;
        const double lift_bits = g >= 1.0 ? 1000.0 : 600.0;
        power_lift = plain < -700.0 ? (g >= 1.0 ? 0x1p1000 : 0x1p600) : 1.0;
        dd lifted_exponent = add_ln2_multiple(plain < -1600.0 ? dd_from(-1600.0) : exponent,
                                              lift_bits, precise);
        dd scaled = power_lift != 1.0 ? lifted_exponent : exponent;
        /* (P^g w may exceed 1: exp_series takes a positive exponent) */
        p_g = precise || (weight != 1.0 && scaled.hi > 0.0)
                  ? exp_nonpositive(scaled, precise)
                  : dd_from(exp_negative_f32(-scaled.hi));
    }
    /* the values' scale back, once, last */
    const double unlift = 1.0 / power_lift;
    /* a lifted P's S = -log(1 - P) is P (1 + P/2 + ...), P itself to
       2^-900, and taken as the lifted P, not from a subnormal P's few
       digits (but for the clip 0, whose S is softplus(x)) */
    dd lifted_s = lift_p != 1.0 && m != 0.0 ? lifted_p : dd_scale(big_s, lift_p, precise);
    dd loss = dd_scale(dd_scale(dd_mul(p_g, lifted_s, precise), unlift, precise), 1.0 / lift_p,
                       precise);
    v.loss = above ? loss : dd_from(0.0);
    if (derivatives < FOCAL_OUT_GRAD) {
        return v;
    }
    /* w / u (<= 1) rather than 1 / u, both terms of a quotient lifted
       together */
    dd w_sigma = dd_mul(w, dd_divide(lifted_s, lifted_p, precise), precise);
    dd w_over_u = dd_divide(dd_scale(w, lift_u, precise), dd_scale(u, lift_u, precise), precise);
    dd bracket = dd_add(dd_scale(w_sigma, g, precise), w_over_u, precise); /* w (g sigma + 1/u) */
    dd grad = dd_scale(dd_mul(p_g, bracket, precise), unlift, precise);
    /* P^g = 0 (lifted as it is): the derivatives are 0 too (g sigma may
       overflow: no 0 * inf), but for the second derivative's P^(g-1) of
       an integer g, which may not underflow where P^g does */
    int positive = above && (p_g.hi > 0.0 || p_g1.hi > 0.0);
    v.grad = positive ? grad : dd_from(0.0);
    if (derivatives < FOCAL_OUT_HESS) {
        return v;
    }
    /* P^g [w (1 - 2p)(g sigma + 1/u) + (w/u)^2] + (w g)((g - 1) w sigma + 2 w/u) P^g / P,
       in double-double (plain double for float32 results): its terms and
       their many factors, each rounded in double, were 4.6 ULP off.  w g
       <= g / 4 does not overflow.  The last term takes w g and P^g before
       its division by P: P^(g-1) is finite wherever the value is, and g = 0
       makes the term 0, where 1/P alone overflows for a subnormal P (x within
       1e-310 of logit(m): inf, and NaN once g = 0 multiplied it); P's lift
       enters first, so that P^g does not make the product subnormal; a
       lifted P^g (power_lift) keeps its lift to the end. */
    dd one_minus_2p = dd_add(s.one_minus_p, dd_negate(s.p), precise);
    /* (1 - 2p) w/u + (w/u)^2 = (w/u)((1 - p) - m p/u), since (1 - 2p) u + w
       = (1 - p) u - m p: the two terms, near -1/(1 - p) and p/(1 - p) times
       w where m is small beside 1 - p, cancelled to about w, and the second
       derivative kept the rounding of the terms (clip 1e-300, gamma_neg 0.5
       at x = 96.6: -3.1e-33 for -5.4e-41; float32 results at x = 60, the
       wrong sign).  m p/u is formed 2^600 larger on both sides (m may be
       subnormal); it is at most 1, u being at least m. */
    dd m_p_over_u = dd_divide(dd_scale(s.p, m * 0x1p600, precise), dd_scale(u, 0x1p600, precise),
                              precise);
    dd rest = dd_add(s.one_minus_p, dd_negate(m_p_over_u), precise);
    dd sides = dd_add(dd_mul(one_minus_2p, dd_scale(w_sigma, g, precise), precise),
                      dd_mul(w_over_u, rest, precise), precise);
    dd w_g = dd_scale(w, g, precise);
    dd factor = dd_add(dd_scale(w_sigma, g - 1.0, precise), dd_scale(w_over_u, 2.0, precise),
                       precise); /* w ((g - 1) sigma + 2/u) */
    dd coefficient = dd_mul(w_g, factor, precise);
    /* Where coefficient P^g is below 2^-900 (w and P^g both tiny: p and the
       clip far below 1), that product lost its digits or underflowed while
       the term, 1/P times larger, did not (clip 1e-45, gamma_neg 4, x =
       -103.6: the second derivative 8.1e-283 for 9.1e-268, the sides' term
       alone), and w g w itself where w^2 underflows (clip 1e-300, gamma_neg
       0.5, x = -400: 4.0e-261 for 6.0e-261).  There a normal P divides P^g
       first (P^(g - 1) <= 2^1022), and w g multiplies last; a P below
       2^-900 divides lifted, which keeps a subnormal P's digits (clip
       1e-300, gamma_neg 1e-8 at x = -690.7755278972137, P 1e-309: 1.0e-300
       for 1.1e-299, the sides' term alone, where w g w underflowed).  (A
       test on P itself, or the condition in two statements, made GCC's
       float32 loop three times slower, 14 to 41 ms on 10^6 elements.) */
    int small = fabs(coefficient.hi * p_g.hi) < 0x1p-900;
    dd numerator = small ? p_g : dd_mul(dd_scale(coefficient, lift_p, precise), p_g, precise);
    dd quotient = dd_divide(numerator, lifted_p, precise);
    /* (a lifted P: P^(g-1) 2^-600 from the quotient, the lift's 2^600 back
       in halves on the two factors of w g factor P^(g-1), w's before g
       multiplies it: w g is subnormal next to a clip near 1e-305 at a small
       g, which its few digits took to the value, 1e-11 of it.  A subnormal
       P has P^g = 0 from g about 1.05, so w g <= 1/4 there and neither
       overflows.) */
    double half_lift = lift_p == 1.0 ? 1.0 : 0x1p300;
    dd last = small ? dd_mul(dd_scale(dd_scale(w, half_lift, precise), g, precise),
                             dd_scale(dd_mul(factor, quotient, precise), half_lift, precise),
                             precise)
                    : quotient;
    /* (integer g up to 4: w g factor P^(g-1), its own product) */
    last = products ? dd_mul(w_g, dd_mul(factor, p_g1, precise), precise) : last;
    dd hess = dd_add(dd_mul(p_g, sides, precise), last, precise);
    /* a quotient beyond the double range is inf, of the numerator's sign
       (the coefficient's): its low part and the sum's made NaN of it (clip
       1/2, gamma_neg 0.01, x = 1e-315: NaN for 1.8e309), and so may the
       numerator's own, where a weight is inside P^g.  (The test on the
       coefficient alone, in the block's loops too, made GCC's float32 loop
       of a general gamma_neg twice as slow: the weight's, a constant 1
       there, keeps it to the scalar path.) */
    int overflowed = hess.hi != hess.hi && (numerator.hi == numerator.hi || weight != 1.0);
    v.hess = !positive     ? 0.0
             : overflowed ? copysign(HUGE_VAL, weight != 1.0 ? coefficient.hi : numerator.hi)
                          : hess.hi * unlift;
    return v;
}

/*
 * clip_zero: the clip is 0 (a constant of the block's loops, asymmetric_listed).
 * Then the negatives are the focal loss of target 0 at gamma_neg, and that
 * row computes them (sigmoid_focal, in gamma_neg's form): its second
 * derivative keeps the digits that the form above loses, where w (1 - 2p)/u
 * and (w/u)^2, -1 and 1 beyond x = 20, cancel (at x = 100 and gamma_neg 4
 * that sum gave -1.85e-32 for -1.45e-41, the wrong sign at 700), and it
 * costs less (no P, u or log u apart: asymmetric_grad_hess at clip 0 in 60
 * to 70% of the time the asymmetric form took).
 */
FOCAL_INLINE focal_values
asymmetric(double x, double y, const focal_params *k, int gamma_integer, int derivatives,
           int precise, int clip_zero)
{
    if (clip_zero && y == 0.0) {
        return sigmoid_focal(x, 0.0, k, gamma_integer, 0, derivatives, precise, 0);
    }
    /* float32 results: the parts of the short series (relative errors below
       2^-43, vector_math.h).  P = p - m, which cancels near the clip, is
       m (1 - p)(e^d - 1) there (asymmetric_negative), and beyond, where
       d > 1/2, p - m loses under 2 bits; P^(g+1) multiplies that by g + 1. */
    logistic_parts s = logistic(x, precise, 1);
    if (y == 1.0) {
        /* the kernel of gamma > 8 serves any gamma_pos (exp(gamma log(1 - p)),
           no product that overflows at huge gamma_pos) */
        focal_params positive_params = *k;
        positive_params.gamma = k->extra;
        return sigmoid_focal_parts(1.0, s, &positive_params, FOCAL_GAMMA_LARGE, 0, derivatives,
                                   precise, NULL, 0);
    }
    return asymmetric_negative(x, s, dd_mul(s.p, s.one_minus_p, precise), k, gamma_integer,
                               derivatives, precise, 1.0);
}

/*
 * The asymmetric loss on the scalar path (NaN, +-inf, |x| > FOCAL_SIGMOID_FAR):
 * positives are the focal loss of target 1 at gamma_pos, and so are its
 * limits; negatives at m = 0 the focal loss of target 0 at gamma_neg.  For
 * m > 0 the negatives' kernel holds at any logit: P = 0 at x = -inf and
 * w = 0 at +inf.  Beyond x = FOCAL_SIGMOID_FAR, t = e^-x < 1e-304 and, for
 * m > 1e-280, P = 1 - m - t and u = m + t are their values at +inf to a
 * relative 1e-24, but the derivatives carry w = t (1 - t), subnormal from
 * x = 708: the kernel takes the parts of x = +inf with w = t 2^1000 (normal
 * up to x = 1438), and the gradient is scaled back once, last; the second
 * derivative is minus the gradient there (1 - 2p = -1 + 2t, and its other
 * terms carry w^2).
 */
/*
 * A negative beyond x = FOCAL_SIGMOID_FAR with a clip 0 < m <= 1e-280: u =
 * t + m with t = e^-x, both perhaps subnormal and of any ratio, while P = 1 -
 * m - t = 1 - u and w / t = 1 - t are 1 to a relative 1e-280.  With
 * S = -log u, r = w / u = t / (t + m) (at most 1) and P^g = e^(-g u):
 *   L-       = P^g S,
 *   dL-/dx   = P^g w (g S + 1/u)  = P^g (g t S + r),
 *   d2L-/dx2 = P^g (-(g t S + r) + r^2 + 2 g t r + g (g - 1) t^2 S)
 * (the kernel's bracket with 1 - 2p = -1, P = 1 in the quotients).  t and m
 * are taken 2^1200 larger (exact; t stays normal up to x = 1540, beyond the
 * x = 1489 where r = t / m underflows at the smallest clip): the kernel
 * divided a subnormal w by u (clip 1e-320 at x = 745: 75% off), and took
 * the log of a u of few digits.  Products with g are formed at 2^-600 of
 * each side (no overflow at g = 1.8e308; g t S is below g S u of r).
 */
static inline focal_values
asymmetric_tiny_clip(double x, const focal_params *k, int precise)
{
    const double g = k->gamma, boost = 1200.0;
    focal_values v;
    dd t_boosted = exp_nonpositive(add_ln2_multiple(dd_from(-x), boost, precise), precise);
    double m_boosted = k->extra2 * 0x1p600 * 0x1p600;
    dd u_boosted = dd_add(t_boosted, dd_from(m_boosted), precise);
    dd r = dd_divide(t_boosted, u_boosted, precise);
    dd big_s = add_ln2_multiple(dd_negate(log_positive(u_boosted, precise)), boost, precise);
    dd gts = dd_scale(dd_mul(dd_scale(t_boosted, g * 0x1p-600, precise), big_s, precise),
                      0x1p-600, precise);
    double p_g = exp(-(g * 0x1p-600) * (u_boosted.hi * 0x1p-600));
    dd bracket = dd_add(gts, r, precise);
    double gt = (g * 0x1p-600) * (t_boosted.hi * 0x1p-600);
    double t = t_boosted.hi * 0x1p-600 * 0x1p-600;
    v.loss = dd_scale(big_s, p_g, precise);
    v.grad = dd_scale(bracket, p_g, precise);
    /* -r + r^2 = -r (1 - r) = -r m / u, which does not cancel; g t and
       (g - 1) t are small: no inf times a zero t^2 */
    double m_over_u = m_boosted / u_boosted.hi;
    v.hess = p_g * ((-gts.hi - r.hi * m_over_u) + 2.0 * gt * r.hi +
                    (gt * ((g - 1.0) * t)) * big_s.hi);
    return v;
}

FOCAL_OUTLINED focal_values
asymmetric_limit(double x, double y, const focal_params *k, int precise)
{
    if (x != x) {
        return sigmoid_focal_limit(x, y, k, precise);
    }
    if (y == 1.0) {
        focal_params positive_params = *k;
        positive_params.gamma = k->extra;
        return sigmoid_focal_limit(x, y, &positive_params, precise);
    }
    if (k->extra2 == 0.0) {
        return sigmoid_focal_limit(x, y, k, precise);
    }
    if (x > FOCAL_SIGMOID_FAR && x < HUGE_VAL && k->extra2 <= 1e-280) {
        return asymmetric_tiny_clip(x, k, precise);
    }
    if (!(x > FOCAL_SIGMOID_FAR && x < HUGE_VAL)) {
        return asymmetric(x, y, k, focal_gamma_kernel(k->gamma), FOCAL_OUT_HESS, precise, 0);
    }
    logistic_parts at_infinity = logistic(HUGE_VAL, precise, 0);
    dd t_boosted = exp_nonpositive(add_ln2_multiple(dd_from(-x), 1000.0, precise), precise);
    focal_values v = asymmetric_negative(HUGE_VAL, at_infinity, t_boosted, k,
                                         focal_gamma_kernel(k->gamma), FOCAL_OUT_GRAD, precise,
                                         1.0);
    v.grad = dd_scale(v.grad, 0x1p-1000, precise);
    /* 1 - 2p = -1 + 2t and the other terms carry w^2: -dL/dx to 1e-300 */
    v.hess = -v.grad.hi;
    return v;
}


/*
 * The quality focal loss's steep region (soft targets): where |u| is tiny
 * or beta rho huge, the factors |u|^beta, rho and rho^2 CE of quality_parts
 * leave the double range (0 times inf, or subnormal digits) while the
 * values do not.  There each term is written as c |u|^m with c >= 0,
 *   QFL       = CE |u|^beta,
 *   dQFL/dx   = sign(u) [beta w CE |u|^(beta - 1) + |u|^(beta + 1)],
 *   d2QFL/dx2 = beta (beta - 1) w^2 CE |u|^(beta - 2)
 *               + sign(u) beta w (1 - 2p) CE |u|^(beta - 1) + (2 beta + 1) w |u|^beta
 * (the formulas below with rho = w / u), and c e^(m log|u|) = c e^r 2^n is
 * scaled by 2^n last.  log|u| is taken to about 2^-100 (one Newton step):
 * m log|u| reaches a few thousand, and its absolute error is the relative
 * one of the term.  The coefficients c are products of w, CE and beta, each
 * of which may be far from 1: w CE is below 2^-1074 where p and a tiny
 * target are (x = -435, y = 1e-300: w = CE = 5.6e-190), while |u|^(beta - 1)
 * at beta < 1 brings the term back into range (5.4e-284 there; taken as
 * w CE = 0 it was 3.6e-284).  So every factor enters as f 2^k (f in [1, 2),
 * quality_scaled), the products' exponents are summed apart, and the sum
 * joins m log|u| before the one scaling.
 */
typedef struct {
    dd f;     /* in [1, 2), or 0 */
    double k; /* the power of two it stands for */
} quality_scaled;

/* v = f 2^k, exactly, for v >= 0 (f = 0 where v = 0) */
FOCAL_INLINE quality_scaled
quality_scale(dd v)
{
    quality_scaled r = {dd_from(0.0), 0.0};
    if (v.hi != 0.0) {
        int k = ilogb(v.hi);
        r.f.hi = scalbn(v.hi, -k);
        r.f.lo = scalbn(v.lo, -k);
        r.k = (double)k;
    }
    return r;
}

FOCAL_INLINE quality_scaled
quality_times(quality_scaled a, quality_scaled b)
{
    quality_scaled r = quality_scale(dd_mul(a.f, b.f, 1));
    r.k += a.k + b.k;
    return r;
}

/* log(c |u|^m) for c = f 2^k, roughly (f's own log, below ln 2, left out) */
FOCAL_INLINE double
quality_steep_log(quality_scaled c, dd m, dd log_u)
{
    return m.hi * log_u.hi + c.k * LN2_HI;
}

/* c |u|^m 2^lift for c = f 2^k, in double-double (a sum of terms is rounded
   once); m = beta + j in double-double, exactly: rounded, beta + 1 = 1.9
   moved |u|^m by 8e-14 at log|u| = -706 */
FOCAL_INLINE dd
quality_steep_term(quality_scaled c, dd m, dd log_u, double lift)
{
    double plain = quality_steep_log(c, m, log_u);
    if (c.f.hi == 0.0 || plain < -1e4) {
        return dd_from(0.0);  /* (c |u|^m underflows: f is below 2) */
    }
    if (plain > 1e4) {
        return dd_from(HUGE_VAL);
    }
    dd e = add_ln2_multiple(dd_mul(log_u, m, 1), c.k, 1);
    double n = (e.hi * INV_LN2 + ROUNDING_SHIFT) - ROUNDING_SHIFT;
    dd mantissa = dd_mul(c.f, exp_accurate(add_ln2_multiple(e, -n, 1)), 1);
    dd r = {scalbn(mantissa.hi, (int)(n + lift)), scalbn(mantissa.lo, (int)(n + lift))};
    return r;
}

/* A value whose terms all lie below about 2^-990 sums them 2^1000 larger
   (lift) and scales the sum back once (quality_steep_value): each term scaled
   into the subnormal range apart, and the sum rounded again, left gradients
   up to 0.98 subnormal spacings off (as review 93 found of quality_parts') */
FOCAL_INLINE double
quality_steep_lift(double largest_log)
{
    return largest_log < -990.0 * LN2_HI ? 1000.0 : 0.0;
}

FOCAL_INLINE double
quality_steep_value(dd sum, double lift)
{
    return lift != 0.0 ? dd_scale_down(sum, 0x1p-1000, 1).hi : sum.hi;
}

/* log|v| to about 2^-100 for a finite v != 0 */
FOCAL_OUTLINED dd
quality_log_abs(dd v)
{
    return log_by_exponent(v.hi < 0.0 ? dd_negate(v) : v, 1, EXP_ACCURATE);
}

/* c = 1 - |u| for u = p - y != 0, from parts that do not cancel: (1 - y) + p
   where p < y, (1 - p) + y where p > y */
FOCAL_INLINE dd
quality_complement(double u, double y, dd p, dd one_minus_p)
{
    return u < 0.0 ? dd_add(two_sum(1.0, -y, 1), p, 1) : dd_add(one_minus_p, dd_from(y), 1);
}

/*
 * log|u| to about 2^-100 of itself, for |u| = u_scaled 2^-shift and c = 1 -
 * |u| (quality_complement).  Near |u| = 1, u's own digits hold c to 2^-53
 * of c at best, and beta multiplies log|u| = log(1 - c): y = 1e-307 at x =
 * 701, beta 1e307 was 263 ULP off; y = 1 - 2^-53 at x = -650, beta 1e13,
 * 1.2e6 ULP (log 2^600 |u| less 600 ln 2 there).  So up to c = 1/4 it is
 * log1p(-c), as -c (1 + c/2) below 2^-59 (wide_power's forms).
 */
FOCAL_INLINE dd
quality_log_u(dd u_scaled, dd c, double shift)
{
    if (c.hi < 0x1p-59) {
        return dd_negate(dd_mul(c, two_sum(1.0, 0.5 * c.hi, 1), 1));
    }
    if (c.hi <= 0.25) {
        return log1p_accurate(dd_negate(c));
    }
    return add_ln2_multiple(quality_log_abs(u_scaled), -shift, 1);
}

/* where quality_steep takes over (see quality_parts), for a u != 0 and w
   given in units of 2^-shift: |u| = au 2^-shift */
FOCAL_INLINE int
quality_is_steep(double au, double w, int shift, double beta)
{
    const int e = ilogb(au) - shift;
    return e < -200 || beta * e < -850.0 || beta * w > 0x1p400 * au;
}

/* CE and w enter as f 2^k (quality_scale): quality() hands them over
   scaled where they are below the normal range */
FOCAL_OUTLINED focal_values
quality_steep(double beta, quality_scaled ce_, quality_scaled w_, dd one_minus_2p, dd log_u,
              double sign_u, int derivatives)
{
    focal_values v;
    double lift = quality_steep_lift(quality_steep_log(ce_, dd_from(beta), log_u));
    v.loss = dd_from(quality_steep_value(quality_steep_term(ce_, dd_from(beta), log_u, lift), lift));
    v.grad = dd_from(0.0);
    v.hess = 0.0;
    if (derivatives < FOCAL_OUT_GRAD) {
        return v;
    }
    quality_scaled beta_w_ce = quality_times(quality_times(quality_scale(dd_from(beta)), w_), ce_);
    const quality_scaled one = {{1.0, 0.0}, 0.0};
    dd m_less_1 = two_sum(beta, -1.0, 1), m_plus_1 = two_sum(beta, 1.0, 1);
    lift = quality_steep_lift(fmax(quality_steep_log(beta_w_ce, m_less_1, log_u),
                                   quality_steep_log(one, m_plus_1, log_u)));
    /* (dd_accumulate: an infinite term gives inf, not NaN) */
    double g = quality_steep_value(dd_accumulate(quality_steep_term(beta_w_ce, m_less_1, log_u, lift),
                                                 quality_steep_term(one, m_plus_1, log_u, lift), 1),
                                   lift);
    v.grad = dd_from(sign_u * g);
    if (derivatives < FOCAL_OUT_HESS) {
        return v;
    }
    /* beta |beta - 1| w^2 CE, beta w CE |1 - 2p| and (2 beta + 1) w =
       2 (beta + 1/2) w, every product of factors f 2^k (no overflow) */
    quality_scaled c1 = quality_times(
        quality_times(beta_w_ce, w_),
        quality_scale(m_less_1.hi < 0.0 ? dd_negate(m_less_1) : m_less_1));
    quality_scaled c2 = quality_times(
        beta_w_ce, quality_scale(one_minus_2p.hi < 0.0 ? dd_negate(one_minus_2p) : one_minus_2p));
    quality_scaled c3 = quality_times(quality_scale(two_sum(beta, 0.5, 1)), w_);
    c3.k += 1.0;
    double s2 = one_minus_2p.hi < 0.0 ? -sign_u : sign_u;
    dd m_less_2 = two_sum(beta, -2.0, 1);
    lift = quality_steep_lift(fmax(fmax(quality_steep_log(c1, m_less_2, log_u),
                                        quality_steep_log(c2, m_less_1, log_u)),
                                   quality_steep_log(c3, dd_from(beta), log_u)));
    dd t1 = quality_steep_term(c1, m_less_2, log_u, lift);
    dd t2 = quality_steep_term(c2, m_less_1, log_u, lift);
    t1 = beta < 1.0 ? dd_negate(t1) : t1;
    t2 = s2 < 0.0 ? dd_negate(t2) : t2;
    dd t3 = quality_steep_term(c3, dd_from(beta), log_u, lift);
    v.hess = quality_steep_value(dd_accumulate(dd_accumulate(t1, t2, 1), t3, 1), lift);
    return v;
}

/*
 * The quality focal loss (Li et al., Generalized Focal Loss, NeurIPS 2020),
 * for a quality target y in [0, 1] and beta = k->gamma >= 0:
 *   QFL = -|y - p|^beta ((1 - y) log(1 - p) + y log p) = |u|^beta CE,  u = p - y.
 * With w = p (1 - p), du/dx = w and dCE/dx = u, so, writing rho = w / u:
 *   dQFL/dx   = |u|^beta [beta rho CE + u],
 *   d2QFL/dx2 = |u|^beta [beta (beta - 1) rho^2 CE + beta rho (1 - 2p) CE
 *                         + 2 beta rho u + w]
 * (d|u|^beta/dx = beta |u|^beta rho, d rho/dx = w (1 - 2p) / u - rho^2).
 * These are sigmoid_focal_parts' formulas with q = |u| and a r = rho, d = u:
 * for y in {0, 1}, |u| = q and rho = a r exactly, so QFL of a hard target is
 * the focal loss at gamma = beta, computed here by the same operations.
 *
 * u = (1 - y) p - y (1 - p) comes from quality() in double-double, exact in
 * sign and digits for hard targets; for soft ones it cancels where p ~ y,
 * and quality() takes p to more digits there.  |u|^beta
 * by products for beta = 1..4 (form), exp(beta log|u|) otherwise, with the
 * focal loss's scaling by 2^1000 for beta > 8 (form FOCAL_GAMMA_LARGE).
 *
 * Near u = 0 (p -> y, soft targets) the gradient grows as |u|^(beta - 1)
 * and the second derivative as |u|^(beta - 2).  |u| can be as small as x/4
 * (y = 1/2, x -> 0), where |u|^beta underflows and rho^2 CE overflows while
 * the values do not: below |u| = 2^-200, where |u|^beta < 2^-850 or
 * beta |rho| > 2^400, quality_steep forms each term in log space.  At u == 0 exactly (x = 0, y = 1/2) sign(0) = 0 and
 * the unbounded power |u|^(beta - 2) is taken as 0: the loss is 0 (CE at
 * beta 0), the gradient 0 (its limit for beta > 1 and beta = 0; the mean
 * of its one-sided limits for beta = 1; for beta < 1 it has none), the
 * second derivative w at beta 0, 2 w^2 CE at beta 2 (its limits) and 0
 * otherwise (for 0 < beta < 2 it is unbounded there).
 */
FOCAL_INLINE focal_values
quality_parts(double x, double y, logistic_parts s, dd u, const focal_params *k, int form,
              int derivatives, int precise)
{
    focal_values v;
    const double beta = k->gamma;
    dd not_y = two_sum(1.0, -y, precise);
    dd ce = dd_add(dd_scale(s.softplus_mx, y, precise), dd_mul(not_y, s.softplus_x, precise),
                   precise);
    int hard = y == 0.0 || y == 1.0;
    /* y = 1/2 near x = 0: u = tanh(x / 2) / 2 = x/4 to 2^-120, taken from x
       (the double-double u keeps about 2^-106 of p, far more than x/4 there) */
    int half = y == 0.5 && fabs(x) < 0x1p-60;
    double au = fabs(u.hi);
    dd w_steep = dd_mul(s.p, s.one_minus_p, 1);
    /* (not for a NaN logit, whose values the scalar path gives: its u is
       NaN, ilogb of which is FP_ILOGBNAN, INT_MIN on x86's C libraries,
       and quality_log_abs would negate it) */
    if (!hard && (half ? x != 0.0 : au != 0.0 && au == au)
        && (half || quality_is_steep(au, w_steep.hi, 0, beta))) {
        dd log_u = half ? add_ln2_multiple(quality_log_abs(dd_from(x)), -2.0, 1)
                        : quality_log_u(u, quality_complement(u.hi, y, s.p, s.one_minus_p), 0.0);
        double sign_u = (half ? x : u.hi) < 0.0 ? -1.0 : 1.0;
        /* 1 - 2p = -tanh(x / 2) = -x/2 to 2^-120 for the half */
        dd one_minus_2p = half ? dd_from(-0.5 * x) : dd_add(s.one_minus_p, dd_negate(s.p), 1);
        return quality_steep(beta, quality_scale(ce), quality_scale(w_steep), one_minus_2p,
                             log_u, sign_u, derivatives);
    }
    int zero = u.hi == 0.0;
    dd abs_u = u.hi < 0.0 ? dd_negate(u) : u;
    dd u_beta;
    int boosted = 0; /* u_beta holds |u|^beta 2^1000 (as in sigmoid_focal_parts) */
    int fine = 0;    /* float64 soft targets above beta 4: see below */
    if (form >= 1 && form <= 4) {
        dd u2 = dd_mul(abs_u, abs_u, precise);
        u_beta = form == 1   ? abs_u
                 : form == 2 ? u2
                 : form == 3 ? dd_mul(u2, abs_u, precise)
                             : dd_mul(u2, u2, precise);
    }
    else {
        /* log|u|: minus a softplus for hard targets (as the focal loss),
           else a log (of 1 where u == 0, whose power is mended below); a u
           below 2^-900 is scaled by 2^200 first (log_positive's low part
           would take 0 times an overflowing 1 / u) */
        double tiny = abs_u.hi < 0x1p-900 ? 200.0 : 0.0;
        dd scaled_u = dd_scale(zero ? dd_from(1.0) : abs_u, tiny != 0.0 ? 0x1p200 : 1.0, precise);
        /* float64 soft targets above beta 4: log|u| and the exponential to
           about 2^-100 (beta multiplies the error of log|u|: log_positive's
           2^-56 or so and exp_series' gave the loss 1.4 ULP at beta 8 and
           12 at beta 100, y = 0.3; 0.74 at beta 2.5).  It doubles the time
           of these elements (380 ns to 800 on a Zen 4). */
        fine = precise && !hard && !zero && u.hi == u.hi && beta > 4.0;
        dd log_u = hard   ? dd_negate(y == 1.0 ? s.softplus_x : s.softplus_mx)
                   : fine ? quality_log_u(abs_u, quality_complement(u.hi, y, s.p, s.one_minus_p), 0.0)
                          : add_ln2_multiple(log_positive(scaled_u, precise), -tiny, precise);
        if (form == FOCAL_GAMMA_LARGE) {
            double plain = beta * log_u.hi;
            dd scaled = plain < -1500.0 ? dd_from(-1500.0) : dd_scale(log_u, beta, precise);
            boosted = scaled.hi < -700.0;
            scaled = boosted ? add_ln2_multiple(scaled, 1000.0, precise) : scaled;
            u_beta = fine ? exp_accurate(scaled) : exp_nonpositive(scaled, precise);
        }
        else {
            /* (for float32 results the focal loss's exp_negative_f32) */
            dd scaled = power_exponent(log_u, beta, precise);
            u_beta = fine      ? exp_accurate(scaled)
                     : precise ? exp_nonpositive(scaled, precise)
                               : dd_from(exp_negative_f32(-scaled.hi));
        }
        u_beta = zero && beta != 0.0 ? dd_from(0.0) : u_beta;
    }
    const int large = form == FOCAL_GAMMA_LARGE;
    const double unscale = 0x1p-1000;
    dd loss = dd_mul(u_beta, ce, precise);
    v.loss = large && boosted ? dd_scale_down(loss, unscale, precise) : loss;
    v.grad = dd_from(0.0);
    v.hess = 0.0;
    if (derivatives < FOCAL_OUT_GRAD) {
        return v;
    }
    dd w = dd_mul(s.p, s.one_minus_p, precise);
    /* rho = w / u: a r of the focal loss for hard targets (no division),
       0 at u == 0 (see above) */
    dd rho_hard = y == 1.0 ? dd_negate(s.p) : s.one_minus_p;
    /* (both scaled by 2^200 where u is below 2^-900: 1 / u of a subnormal u
       would overflow; u is subnormal where p and y are, near x = -745) */
    double up = fabs(u.hi) < 0x1p-900 ? 0x1p200 : 1.0;
    dd rho_soft = dd_divide(dd_scale(w, up, precise), dd_scale(zero ? dd_from(1.0) : u, up, precise),
                            precise);
    dd rho = hard ? rho_hard : rho_soft;
    rho = zero ? dd_from(0.0) : rho;
    dd rho_ce = dd_mul(rho, ce, precise);
    dd bracket = dd_add(dd_scale(rho_ce, beta, precise), u, precise);
    dd grad = dd_mul(u_beta, bracket, precise);
    v.grad = large && boosted ? dd_scale_down(grad, unscale, precise) : grad;
    if (derivatives < FOCAL_OUT_HESS) {
        return v;
    }
    /* (soft targets: 1 - 2p = -tanh(x / 2) from its series near x = 0
       (one_minus_two_p): float32 results at y = 1/2, beta 1, x = 1e-18 were
       86% off from p and 1 - p in plain double) */
    double one_minus_2p = hard ? s.one_minus_p.hi - s.p.hi : one_minus_two_p(s, precise);
    double curvature = beta * (beta - 1.0) * rho.hi * rho_ce.hi
                       + beta * one_minus_2p * rho_ce.hi + 2.0 * beta * rho.hi * u.hi + w.hi;
    double ub = u_beta.hi;
    double hess;
    if (!large) {
        hess = ub * curvature;
    }
    else {
        /* beta >= 1e150: the focal loss's ordering, no product overflows
           (|u|^beta = 0 for a soft target there) */
        double ub_beta = ub * beta;
        double ub_beta_rho = ub_beta * rho.hi;
        hess = beta < 1e150 ? ub * curvature
               : ub_beta_rho * ((beta - 1.0) * rho_ce.hi) + ub_beta * one_minus_2p * rho_ce.hi
                     + 2.0 * ub_beta_rho * u.hi + ub * w.hi;
        hess = boosted ? hess * unscale : hess;
    }
    if (fine) {
        /* The fine path's bracket in double-double, rounded once: summed
           from doubles, each term's rounding times beta, and terms that
           cancel where beta rho is near 1 / |1 - 2p|, left the second
           derivative 2.5 to 5 ULP off above beta 1e17 where |u| is near 1,
           hundreds where they cancel (review 93).  Below beta 1e150 the
           bracket is formed first and multiplied by |u|^beta once (each term
           times |u|^beta rounded apart where the products are subnormal, 1.7
           spacings, review 94); from 1e150 in the large form's order (no
           product overflows).  1 - 2p from p's parts but near x = 0, where
           they cancel (its series there). */
        dd one_minus_2p_dd = fabs(x) < one_minus_two_p_series_below(precise)
                                 ? dd_from(one_minus_2p)
                                 : dd_add(s.one_minus_p, dd_negate(s.p), precise);
        dd beta_less_1 = two_sum(beta, -1.0, precise);
        dd terms;
        if (beta < 1e150) {
            dd b = dd_mul(dd_mul(dd_from(beta), beta_less_1, precise), dd_mul(rho, rho_ce, precise),
                          precise);
            b = dd_add(b, dd_scale(dd_mul(one_minus_2p_dd, rho_ce, precise), beta, precise), precise);
            b = dd_add(b, dd_scale(dd_mul(rho, u, precise), 2.0 * beta, precise), precise);
            b = dd_add(b, w, precise);
            terms = dd_mul(u_beta, b, precise);
        }
        else {
            dd ub_beta = dd_scale(u_beta, beta, precise);
            dd ub_beta_rho = dd_mul(ub_beta, rho, precise);
            terms = dd_mul(ub_beta_rho, dd_mul(beta_less_1, rho_ce, precise), precise);
            terms = dd_add(terms, dd_mul(ub_beta, dd_mul(one_minus_2p_dd, rho_ce, precise), precise),
                           precise);
            terms = dd_add(terms, dd_scale(dd_mul(ub_beta_rho, u, precise), 2.0, precise), precise);
            terms = dd_add(terms, dd_mul(u_beta, w, precise), precise);
        }
        double fine_hess = large && boosted ? dd_scale_down(terms, unscale, precise).hi : terms.hi;
        /* (an infinite term, which the double-double sums make NaN: the plain sum) */
        hess = isfinite(fine_hess) ? fine_hess : hess;
    }
    /* u == 0: the limits named above (2 w^2 CE at beta 2, w at beta 0) */
    double at_zero = beta == 2.0 ? 2.0 * w.hi * w.hi * ce.hi : beta == 0.0 ? w.hi : 0.0;
    v.hess = zero ? at_zero : hess;
    return v;
}

/*
 * One element of the quality focal loss in the block loop.  Blocks of hard
 * targets are the focal loss's (losses.h).  In blocks with soft targets,
 * u = p - y (given to quality_parts) is formed in double-double from a p with
 * more digits than the rest needs: u cancels where p ~ y and keeps only the
 * digits p has beyond y's.  float64 results take p from exp_accurate
 * (logistic()'s is good to about 2^-58), float32 ones from exp_series in
 * double-double; a hard target keeps the logistic parts (its u does not
 * cancel), so it gets the focal loss's values from the same operations.
 */
FOCAL_INLINE focal_values
quality(double x, double y, const focal_params *k, int form, int soft, int derivatives,
        int precise)
{
    if (!soft) { /* a constant */
        return sigmoid_focal(x, y, k, form, 0, derivatives, precise, 0);
    }
    if (precise && form == FOCAL_GAMMA_LARGE && (y == 0.0 || y == 1.0)) {
        /* the focal loss's float64 kernel above gamma 8 takes its own parts
           (sigmoid_focal): a hard target keeps its values */
        return sigmoid_focal(x, y, k, form, 1, derivatives, precise, 0);
    }
    logistic_parts s = logistic(x, precise, 0);
    dd t = precise ? exp_accurate(dd_from(-fabs(x))) : exp_series(dd_from(-fabs(x)), 1, 0);
    dd big = dd_reciprocal(dd_add(dd_from(1.0), t, 1), 1); /* 1 / (1 + e^-|x|) */
    dd small = dd_mul(big, t, 1);
    int hard = y == 0.0 || y == 1.0;
    dd p = hard ? s.p : x >= 0 ? big : small;
    dd one_minus_p = hard ? s.one_minus_p : x >= 0 ? small : big;
    /* (1 - y) p - y (1 - p) */
    dd not_y = two_sum(1.0, -y, 1);
    dd u = dd_add(dd_mul(not_y, p, 1), dd_scale(one_minus_p, -y, 1), 1);
    if (precise && !hard && x < -600.0 && x > -1125.0) {
        /* p below e^-600 = 2^-865.6: where y is as tiny, u = p - y, p's low
           part and the terms of w and CE are near or below the normal
           range, and keep few digits or none (u rounded to 0 at y = 1e-310,
           x = -713.8).  So p, y, u, w and CE are taken in units of 2^-600
           (t = e^x: p = t / (1 + t) and softplus(x) = log1p(t) are t to
           2^-865 relative), and where u is steep quality_steep gets them so.
           Below x = -1125, p 2^600 leaves the normal range too, but p is
           below 2^-1623 there and u = -y to 2^-549: the plain values hold
           (and y 2^600 |x| would overflow further on: a loss of 0 at
           x = -1e300, y = 1e-100). */
        const double shift = 600.0;
        dd p_s = dd_mul(big, exp_accurate_shifted(dd_from(x), shift), 1);
        double y_s = scalbn(y, (int)shift);
        dd u_s = dd_add(dd_mul(not_y, p_s, 1), dd_scale(one_minus_p, -y_s, 1), 1);
        dd w_s = dd_mul(p_s, one_minus_p, 1);
        if (u_s.hi != 0.0 && quality_is_steep(fabs(u_s.hi), w_s.hi, (int)shift, k->gamma)) {
            dd ce_s = dd_add(dd_scale(s.softplus_mx, y_s, 1), dd_mul(not_y, p_s, 1), 1);
            quality_scaled ce_ = quality_scale(ce_s), w_ = quality_scale(w_s);
            ce_.k -= shift;
            w_.k -= shift;
            return quality_steep(k->gamma, ce_, w_, dd_add(one_minus_p, dd_negate(p), 1),
                                 quality_log_u(u_s, quality_complement(u_s.hi, y, p, one_minus_p),
                                               shift),
                                 u_s.hi < 0.0 ? -1.0 : 1.0, derivatives);
        }
    }
    s.p = precise ? p : s.p;
    s.one_minus_p = precise ? one_minus_p : s.one_minus_p;
    return quality_parts(x, y, s, u, k, form, derivatives, precise);
}

/*
 * A soft target's values beyond x = FOCAL_SIGMOID_FAR on the right, from
 * their first-order forms in t = e^-x (each term to a relative t): there
 *   1 - p = w = t,  u = (1 - y) - t,  1 - |u| = y + t,  CE = (1 - y) x + t,
 *   QFL = u^beta CE,  dQFL/dx = u^beta [beta r CE + u],
 *   d2QFL/dx2 = u^beta [beta (beta - 1) r^2 CE - beta r CE + (2 beta + 1) t]
 * with r = t / u (quality_parts' formulas, 1 - 2p = -1).  t is subnormal
 * from x = 708.4 and 0 from 745, while beta up to 1.8e308 brings its
 * products back beside a target as small as 1 / beta, which keeps u^beta
 * from underflowing (y = 1e-307, x = 730, beta 1e307: the gradient was 82
 * ULP off, review 83).  Every part is held as m 2^e (dd_wide), u^beta from
 * its complement (wide_power), and rounded once.  u >= 2^-53 does not
 * cancel; on the left, where u = t - y can, the kernel's values stand.
 */
FOCAL_OUTLINED focal_values
quality_far_right(double x, double y, double beta)
{
    dd_wide t = far_exp(x);
    dd not_y = two_sum(1.0, -y, 1);
    dd_wide u = wide_add(wide_from(not_y), wide_negate(t));
    dd_wide u_beta = wide_power(u, wide_add(wide_from(dd_from(y)), t), beta);
    dd_wide ce = wide_add(wide_from(dd_mul(not_y, dd_from(x), 1)), t);
    dd_wide r = wide_divide(t, u);
    dd_wide beta_r_ce = wide_mul(wide_mul(wide_from(dd_from(beta)), r), ce);
    dd_wide two_beta_one = wide_from(two_sum(beta, 0.5, 1)); /* (2 beta + 1) / 2 */
    two_beta_one.e += 1.0;
    dd_wide curvature = wide_add(wide_mul(wide_mul(beta_r_ce, wide_from(two_sum(beta, -1.0, 1))), r),
                                 wide_add(wide_negate(beta_r_ce), wide_mul(two_beta_one, t)));
    focal_values v;
    v.loss = wide_value(wide_mul(u_beta, ce));
    v.grad = wide_value(wide_mul(u_beta, wide_add(beta_r_ce, u)));
    v.hess = wide_value(wide_mul(u_beta, curvature)).hi;
    return v;
}

/*
 * The quality focal loss on the scalar path: NaN, +-inf and hard targets
 * beyond FOCAL_SIGMOID_FAR are the focal loss's at gamma = beta (at x = +-inf
 * a soft target's |u| is the focal loss's 1 - p_t, and the limits agree:
 * loss +inf, gradient sign(x) |u|^(beta + 1), second derivative 0); a soft
 * target at a far finite logit takes quality_far_right on the right, the
 * kernel on the left.
 */
FOCAL_OUTLINED focal_values
quality_limit(double x, double y, const focal_params *k, int precise)
{
    if (!isfinite(x) || y == 0.0 || y == 1.0) {
        return sigmoid_focal_limit(x, y, k, precise);
    }
    if (x > FOCAL_SIGMOID_FAR) {
        return quality_far_right(x, y, k->gamma);
    }
    const int form = focal_gamma_kernel(k->gamma);
    focal_values v = quality(x, y, k, form, 1, FOCAL_OUT_HESS, precise);
    /* a far logit's second derivative from lifted parts (far_soft_lifted),
       u = p - y there -y, to 2^-160 of it */
    logistic_parts s = logistic(x, 1, 0);
    int lift = precise ? far_soft_lifted(x, y, fabs(k->gamma) + 1.0, &s) : 0;
    if (lift != 0) {
        dd u = dd_from(-y);
        v.hess = ldexp(quality_parts(x, y, s, u, k, form, FOCAL_OUT_HESS, 1).hess, -lift);
    }
    return v;
}

#endif  /* FOCAL_FAMILY_H */

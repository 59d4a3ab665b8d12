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
 * Soft targets keep the kernel's formula.
 */
static inline focal_values
poly1_focal_limit(double x, double y, const focal_params *k, int precise)
{
    if (!isfinite(x)) {
        return sigmoid_focal_limit(x, y, k, precise);
    }
    if (!(y == 0.0 || y == 1.0)) {
        return sigmoid_focal(x, y, k, focal_gamma_kernel(k->gamma), 1, FOCAL_OUT_HESS, precise, 1);
    }
    focal_values v = sigmoid_focal_far(x, y, k->gamma, precise);
    double epsilon = k->extra, gamma = k->gamma;
    if ((y == 1.0) == (x > 0.0)) {
        dd factor = two_sum(1.0, epsilon, precise);
        v.loss = dd_mul(v.loss, factor, precise);
        v.grad = dd_mul(v.grad, factor, precise);
        v.hess *= factor.hi;
        return v;
    }
    double t = exp(-fabs(x));
    double q_gamma = exp(-gamma * t);
    double a = 1.0 - 2.0 * y;
    v.loss = dd_add(v.loss, dd_from(epsilon * q_gamma * (1.0 - t)), precise);
    v.grad = dd_add(v.grad, dd_from(epsilon * (gamma + 1.0) * a * q_gamma * t), precise);
    v.hess += epsilon * (gamma + 1.0) * q_gamma * t * (gamma * t - (1.0 - 2.0 * t));
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
    r.grad = dd_scale(v.grad, factor, precise);
    r.hess = v.hess * factor;
    return r;
}

/*
 * The binary cross-entropy of a target y in [0, 1] from the logistic parts:
 *   CE = y softplus(-x) + (1 - y) softplus(x),  dCE/dx = p - y,  d2CE/dx2 = w,
 * p - y as (1 - y) p - y (1 - p), exact in sign and digits for y in {0, 1}.
 */
FOCAL_INLINE focal_values
cross_entropy_parts(double y, logistic_parts s, int precise)
{
    focal_values v;
    dd not_y = two_sum(1.0, -y, precise);
    v.loss = dd_add(dd_scale(s.softplus_mx, y, precise), dd_mul(not_y, s.softplus_x, precise),
                    precise);
    v.grad = dd_add(dd_mul(not_y, s.p, precise), dd_scale(s.one_minus_p, -y, precise), precise);
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
 * selected: no branch in the loop.
 */
FOCAL_INLINE focal_values
varifocal(double x, double y, const focal_params *k, int gamma_integer, int soft,
          int derivatives, int precise)
{
    logistic_parts s = logistic(x, precise, !soft);
    focal_values negative =
        sigmoid_focal_parts(0.0, s, k, gamma_integer, 0, derivatives, precise, NULL, 0);
    focal_values positive = cross_entropy_parts(y, s, precise);
    int is_negative = y == 0.0;
    return focal_values_scaled(is_negative ? negative : positive, is_negative ? k->extra : y,
                               precise);
}

/*
 * The varifocal loss on the scalar path (NaN, +-inf, |x| > FOCAL_SIGMOID_FAR):
 * the focal loss's scalar path, at gamma for q = 0 and at gamma 0 (the
 * cross-entropy) for q > 0, times alpha or q.
 */
static inline focal_values
varifocal_limit(double x, double y, const focal_params *k, int precise)
{
    if (x != x) {
        return sigmoid_focal_limit(x, y, k, precise);
    }
    if (y == 0.0) {
        return focal_values_scaled(sigmoid_focal_limit(x, 0.0, k, precise), k->extra, precise);
    }
    focal_params cross_entropy = *k;
    cross_entropy.gamma = 0.0;
    return focal_values_scaled(sigmoid_focal_limit(x, y, &cross_entropy, precise), y, precise);
}

#endif  /* FOCAL_FAMILY_H */

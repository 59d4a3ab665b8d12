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


#endif  /* FOCAL_FAMILY_H */

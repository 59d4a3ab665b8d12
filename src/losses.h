/*
 * losses.h: THE TABLE of the elementwise losses.  Each loss is one row of
 * FOCAL_ELEMENTWISE_LOSSES and a handful of functions named after the row;
 * kernels.c compiles every row for each instruction set, precision, form and
 * set of outputs, and the driver (driver.c) and the I/O (block_io.h) take a
 * row by its number without naming any loss.
 *
 * A row NAME supplies:
 *   NAME_FORMS(F, ...)   the forms it is compiled for: a form is a constant of
 *                        its kernels (the sigmoid focal loss has one per
 *                        integer gamma, computed by products), F(form, ...)
 *   NAME_form(k)         the form that serves the parameters k
 *   NAME_prepare(k)      derived parameters, computed once per call
 *   NAME_special(x, k)   whether x takes the scalar path (non-finite or far
 *                        logits); branch-free, it runs inside the vector loop
 *   NAME_limit(x, y, k, precise)  the scalar path's unweighted values
 *   NAME_limit_weighted(x, y, k, weight, precise, v)
 *                        an element's values times a weight above 1, where
 *                        the row forms them so (returning 1), for values
 *                        below the normal range that the weight brings
 *                        back: asked of special logits, and of elements
 *                        whose weighted loss is faint beside their weight
 *                        (finish_special); no_limit_weighted (returning 0)
 *                        for a row that does not
 *   NAME_values(x, y, k, form, soft, derivatives, precise, again)
 *                        one element's unweighted loss, gradient and second
 *                        derivative (focal_values; derivatives: FOCAL_OUT_*),
 *                        setting *again (0 on entry) where they lost digits
 *                        that NAME_accurate recovers
 *   NAME_accurate(x, y, k, form, derivatives)
 *                        float64 values of a soft target from more accurate
 *                        parts, for the elements that asked (the block
 *                        computes them after its pass); no_accurate for a
 *                        row whose values never ask
 *   NAME_block(bp, b, n, form, soft, derivatives, precise)
 *                        the weighted values of a block (element_block.h),
 *                        returning whether any logit was special; soft: the
 *                        block holds targets strictly inside (0, 1)
 * and, in the table, its number, its name for messages, its target rule and
 * whether it has a second derivative.  NAME_block is FOCAL_GENERIC_BLOCK over
 * NAME_values, but for float32 results of hard targets in the rows whose
 * values come from the logistic parts of x (sigmoid_fl, poly1, varifocal:
 * FOCAL_STAGED_BLOCK over NAME_hard_f32, chosen by
 * FOCAL_STAGED_OR_GENERIC_BLOCK) and for a row that computes only the
 * elements that can be non-zero (asymmetric).  The
 * formulas of the first two rows live in sigmoid_focal.h, each once, with the
 * paper's equation numbers; those of the focal loss's descendants in
 * focal_family.h.  A row's parameters are those of focal_params (gamma, beta
 * and its own `extra`).
 */
#ifndef FOCAL_LOSSES_H
#define FOCAL_LOSSES_H

#include <stddef.h>

#include "element_block.h"
#include "focal_family.h"

/* targets a loss accepts: any value in [0, 1], or only 0 and 1 */
enum { TARGETS_DENSE = 0, TARGETS_HARD = 1 };

/* forms per row at most (the kernels' table has this many columns) */
enum { FOCAL_FORMS = 7 };

/*      name        number                 name in messages  targets        hess */
#define FOCAL_ELEMENTWISE_LOSSES(ROW)                                                    \
    ROW(sigmoid_fl, LOSS_SIGMOID_FOCAL, "the sigmoid focal loss", TARGETS_DENSE, 1)      \
    ROW(fl_star, LOSS_FL_STAR, "FL*", TARGETS_HARD, 0)                                  \
    ROW(poly1, LOSS_POLY1, "the Poly-1 focal loss", TARGETS_DENSE, 1)                    \
    ROW(varifocal, LOSS_VARIFOCAL, "the varifocal loss", TARGETS_DENSE, 1)               \
    ROW(asymmetric, LOSS_ASYMMETRIC, "the asymmetric loss", TARGETS_HARD, 1)             \
    ROW(quality, LOSS_QUALITY, "the quality focal loss", TARGETS_DENSE, 1)

#define FOCAL_LOSS_NUMBER(NAME, NUMBER, TITLE, TARGETS, HESS) NUMBER,
enum { FOCAL_ELEMENTWISE_LOSSES(FOCAL_LOSS_NUMBER) FOCAL_LOSS_COUNT };
#undef FOCAL_LOSS_NUMBER

/*
 * The block loop every row may use: the row's values element by element
 * (VALUES(x, y, k, form, soft, derivatives, precise, again)), weighed by
 * weigh_element, with the scalar-path test SPECIAL(x, k) or-ed into `special`
 * in the same loop; then the elements whose values asked for it, again from
 * ACCURATE (rare: a row whose values never ask leaves the loop as it was,
 * the flags being constants 0).  A macro, not a function taking function
 * pointers, so that the row's functions are inlined into the loop and it
 * vectorises.
 * `special` is a long long in every block function: a flag as wide as the
 * doubles compared, where an int made the vectorised loops pack each vector
 * of comparisons down to 32 bits (six instructions per two vectors at AVX2).
 */
#define FOCAL_GENERIC_BLOCK(VALUES, ACCURATE, SPECIAL, special, bp, b, n, form, soft,      \
                            derivatives, precise)                                       \
    do {                                                                                \
        /* a local copy: the stores into the block cannot alias it, so the              \
           parameters are loop invariants and the loop vectorises */                    \
        const block_params p_ = *(bp);                                                  \
        /* two copies of the loop, with and without weigh_element's careful steps       \
           (weigh_carefully), so that neither tests it per element */                   \
        if (weigh_carefully(&p_, precise)) {                                            \
            FOCAL_GENERIC_LOOP(VALUES, ACCURATE, SPECIAL, special, p_, b, n, form, soft, \
                               derivatives, precise, 1);                                \
        }                                                                               \
        else {                                                                          \
            FOCAL_GENERIC_LOOP(VALUES, ACCURATE, SPECIAL, special, p_, b, n, form, soft, \
                               derivatives, precise, 0);                                \
        }                                                                               \
    } while (0)

#define FOCAL_GENERIC_LOOP(VALUES, ACCURATE, SPECIAL, special, p_, b, n, form, soft,       \
                           derivatives, precise, careful)                               \
    long long again_[FOCAL_BLOCK];                                                      \
    long long any_again_ = 0;                                                           \
    for (ptrdiff_t i = 0; i < (n); i++) {                                               \
        double x = (b)->x[i], y = (b)->y[i];                                            \
        special |= SPECIAL(x, &p_.focal);                                               \
        again_[i] = 0;                                                                  \
        focal_values v = VALUES(x, y, &p_.focal, form, soft, derivatives, precise,      \
                                &again_[i]);                                            \
        any_again_ |= again_[i];                                                        \
        weigh_element(&p_, v, x, y, (b)->alpha[i], (b)->weight[i], &(b)->loss[i],       \
                      &(b)->grad[i], &(b)->hess[i], precise, careful, !(soft));         \
    }                                                                                   \
    if (any_again_) {                                                                   \
        FOCAL_AGAIN_PASS(ACCURATE, p_, b, n, again_, form, soft, derivatives, precise,  \
                         careful);                                                      \
    }

/* the elements that asked again (again_[i] != 0), gathered into a block of
   their own, computed there by ACCURATE in a loop that vectorises, and
   scattered back (as the asymmetric loss's lists; 14 KiB of stack).  The
   gathered count is padded to a multiple of 8 with copies of the first
   element, whose values are not scattered: a vector loop leaves its last
   few iterations to scalar code, which took about 1 us an element here.
   Only the derivatives are scattered: the loss, which does not cancel, keeps
   the first pass's bits, those of the kernels without derivatives (loss()
   and loss_and_grad() agree bit for bit). */
#define FOCAL_AGAIN_PASS(ACCURATE, p_, b, n, again_, form, soft, derivatives, precise,     \
                         careful)                                                       \
    do {                                                                                \
        ptrdiff_t list_[FOCAL_BLOCK], count_ = 0;                                       \
        for (ptrdiff_t i = 0; i < (n); i++) {                                           \
            list_[count_] = i;                                                          \
            count_ += again_[i] != 0;                                                   \
        }                                                                               \
        const ptrdiff_t padded_ = (count_ + 7) / 8 * 8;                                 \
        for (ptrdiff_t j = count_; j < padded_; j++) {                                  \
            list_[j] = list_[0];                                                        \
        }                                                                               \
        element_block c_;                                                               \
        for (ptrdiff_t j = 0; j < padded_; j++) {                                       \
            c_.x[j] = (b)->x[list_[j]];                                                 \
            c_.y[j] = (b)->y[list_[j]];                                                 \
            c_.alpha[j] = (b)->alpha[list_[j]];                                         \
            c_.weight[j] = (b)->weight[list_[j]];                                       \
        }                                                                               \
        for (ptrdiff_t j = 0; j < padded_; j++) {                                       \
            focal_values v = ACCURATE(c_.x[j], c_.y[j], &p_.focal, form, derivatives);  \
            weigh_element(&p_, v, c_.x[j], c_.y[j], c_.alpha[j], c_.weight[j],           \
                          &c_.loss[j], &c_.grad[j], &c_.hess[j], precise, careful,       \
                          !(soft));                                                     \
        }                                                                               \
        for (ptrdiff_t j = 0; j < count_; j++) {                                        \
            (b)->grad[list_[j]] = c_.grad[j];                                           \
            (b)->hess[list_[j]] = c_.hess[j];                                           \
        }                                                                               \
    } while (0)

/*
 * The staged block loop of the rows whose values come from the logistic
 * parts of x (sigmoid_fl, poly1, varifocal), for float32 results of hard
 * targets: e = e^-|x| for the whole block, then log(1 + e) and 1 / (1 + e),
 * then, at a general gamma (form 0), q^gamma (another exp, in loops of its
 * own too), then the rest: PARTS(y, s, k, form, derivatives, q_gamma) from
 * the parts s, weighed by weigh_finite_plain.  Each loop is short, so the
 * processor overlaps many of its iterations, where one loop over everything
 * (FOCAL_GENERIC_BLOCK) waits on its long chain of dependent operations (a
 * third slower; the Poly-1 and varifocal losses took 1.7 times the focal
 * loss's time that way, on one core of a Zen 3).  Q_OF_ZERO (a constant):
 * form 0's q^gamma is that of target 0 (p^gamma) for every element.  The
 * arrays are on the stack: 8 KiB.  A macro for the reason FOCAL_GENERIC_BLOCK
 * is one.
 */
#define FOCAL_STAGED_BLOCK(PARTS, SPECIAL, Q_OF_ZERO, special, bp, b, n, form, derivatives)  \
    do {                                                                                \
        double e_[FOCAL_BLOCK], l_[FOCAL_BLOCK], r_[FOCAL_BLOCK], q_gamma_[FOCAL_BLOCK]; \
        for (ptrdiff_t i = 0; i < (n); i++) {                                           \
            special |= SPECIAL((b)->x[i], &(bp)->focal);                                \
            /* (|x| <= FOCAL_SIGMOID_FAR unless special) */                             \
            e_[i] = exp_negative_f32_normal(fabs((b)->x[i]));                           \
        }                                                                               \
        for (ptrdiff_t i = 0; i < (n); i++) {                                           \
            log1p_parts t_ = log1p_unit_f32(e_[i]);                                     \
            l_[i] = t_.log1p;                                                           \
            r_[i] = t_.reciprocal;                                                      \
        }                                                                               \
        if ((form) == 0) {                                                              \
            const double gamma_ = (bp)->focal.gamma;                                    \
            for (ptrdiff_t i = 0; i < (n); i++) {                                       \
                log1p_parts t_ = {l_[i], r_[i]};                                        \
                q_gamma_[i] = plain_hard_power_exponent(                                \
                    (Q_OF_ZERO) ? 0.0 : (b)->y[i],                                      \
                    logistic_plain_from((b)->x[i], e_[i], t_), gamma_);                 \
            }                                                                           \
            for (ptrdiff_t i = 0; i < (n); i++) {                                       \
                q_gamma_[i] = exp_negative_f32(q_gamma_[i]);                            \
            }                                                                           \
        }                                                                               \
        /* the normaliser's case, and whether the reductions' weight scales    \
           are all 1 (weigh_finite_plain), are constants of the loop, not      \
           selects in it */                                                    \
        if ((bp)->grad_mode == FOCAL_GRAD_FOLDED && weight_scales_unit(bp)) {           \
            FOCAL_STAGED_LOOP(PARTS, bp, b, n, form, derivatives, FOCAL_GRAD_FOLDED, 1);  \
        }                                                                               \
        else if ((bp)->grad_mode == FOCAL_GRAD_FOLDED) {                                \
            FOCAL_STAGED_LOOP(PARTS, bp, b, n, form, derivatives, FOCAL_GRAD_FOLDED, 0);  \
        }                                                                               \
        else {                                                                          \
            FOCAL_STAGED_LOOP(PARTS, bp, b, n, form, derivatives, FOCAL_GRAD_DIVIDED, 0); \
        }                                                                               \
    } while (0)

/* the staged block's last loop (a local copy of the parameters: loop
   invariants, see FOCAL_GENERIC_BLOCK) */
#define FOCAL_STAGED_LOOP(PARTS, bp, b, n, form, derivatives, grad_mode, unit_scales)       \
    do {                                                                                \
        const block_params p_ = *(bp);                                                  \
        for (ptrdiff_t i = 0; i < (n); i++) {                                           \
            log1p_parts t_ = {l_[i], r_[i]};                                            \
            focal_values v_ = PARTS((b)->y[i], logistic_plain_from((b)->x[i], e_[i], t_), \
                                    &p_.focal, form, derivatives,                       \
                                    (form) == 0 ? &q_gamma_[i] : NULL);                 \
            weigh_finite_plain(&p_, v_, (b)->y[i], (b)->alpha[i], (b)->weight[i],         \
                               &(b)->loss[i], &(b)->grad[i], &(b)->hess[i], derivatives, \
                               grad_mode, unit_scales);                                 \
        }                                                                               \
    } while (0)

/* whether a block takes FOCAL_STAGED_BLOCK: float32 results of hard targets,
   unless the row's parameters (focal.large) or a tiny divisor ask for
   weigh_element's careful steps (its last loop has no lift of a tiny
   weighted scale) */
FOCAL_INLINE int
staged_f32(const block_params *bp, int precise, int soft)
{
    return !(precise || soft || bp->grad_divisor < FOCAL_TINY_DIVISOR || bp->focal.large);
}

/* the block of a row that has a staged loop: FOCAL_STAGED_BLOCK where
   STAGED holds (staged_f32, and any condition of the row's own),
   FOCAL_GENERIC_BLOCK otherwise; the row's functions by their names */
#define FOCAL_STAGED_OR_GENERIC_BLOCK(NAME, Q_OF_ZERO, STAGED, special, bp, b, n, form, soft, \
                                      derivatives, precise)                               \
    do {                                                                                \
        if (STAGED) {                                                                   \
            FOCAL_STAGED_BLOCK(NAME##_hard_f32, NAME##_special, Q_OF_ZERO, special, bp, b, \
                               n, form, derivatives);                                   \
        }                                                                               \
        else {                                                                          \
            FOCAL_GENERIC_BLOCK(NAME##_values, NAME##_accurate, NAME##_special, special, bp, \
                                b, n, form, soft, derivatives, precise);                \
        }                                                                               \
    } while (0)

/* the rows whose values never ask to be computed again (NAME_accurate): the
   generic loop's second pass is then dead code */
FOCAL_INLINE focal_values
no_accurate(double x, double y, const focal_params *k, int form, int derivatives)
{
    (void)x, (void)y, (void)k, (void)form, (void)derivatives;
    focal_values v = {dd_from(0.0), dd_from(0.0), 0.0};
    return v;
}

/* ------------------------------------------------------------------------
 * Row sigmoid_fl: the sigmoid focal loss FL = alpha_t q^gamma CE (Eq. 5),
 * dense targets in [0, 1].  Forms: 0 general gamma (exp(gamma log q)), 1..4
 * integer gamma by products, FOCAL_GAMMA_LARGE gamma > 8 (sigmoid_focal.h).
 */
#define sigmoid_fl_FORMS(F, ...) \
    F(0, __VA_ARGS__) F(1, __VA_ARGS__) F(2, __VA_ARGS__) F(3, __VA_ARGS__) F(4, __VA_ARGS__) \
    F(5, __VA_ARGS__)

static inline int
sigmoid_fl_form(const focal_params *k)
{
    return focal_gamma_kernel(k->gamma);
}

static inline void
sigmoid_fl_prepare(focal_params *k)
{
    (void)k;
}

/* one compare: NaN and +-inf fail it too */
FOCAL_INLINE int
sigmoid_fl_special(double x, const focal_params *k)
{
    (void)k;
    return !(fabs(x) <= FOCAL_SIGMOID_FAR);
}

FOCAL_OUTLINED focal_values
sigmoid_fl_limit(double x, double y, const focal_params *k, int precise)
{
    return sigmoid_focal_limit(x, y, k, precise);
}

/* A hard target's values under a weight above 1 that would bring back
   what they lost below the normal range.  The right side beyond
   FOCAL_SIGMOID_FAR: e^-(1+g)|x| times 1, (1 + g) a and (1 + g)^2, below the
   normal range from (1 + g)|x| = 708 (x = -745, gamma 0, weight 1e300 gave
   4.94e-24 for 2.82e-24; x = -760, 0 for 8.6e-31): formed 2^1000 larger,
   times the weight, scaled back (sigmoid_focal_far_right_times).  Times a
   weight above 1 they stay below e^-700 1.8e308 (1 + g)^2 e^-700g: no
   overflow.  Nearer, for the elements whose values are faint beside their
   weight (finish_special; x = -500 at gamma 1 under a weight of 1e300 gave
   0 for 5.1e-135): the same form from focal_far_form_from(g) on, the exact
   one below (sigmoid_focal_right_times).  The wrong side, where q >= 1/2
   and q^g underflows only from gamma about 1,000 (x = 0.5, gamma 2000,
   weight 1e300: 0 for 1.6e-112), within FOCAL_SIGMOID_FAR: the accurate
   form times the weight (sigmoid_focal_times) where the values may lie
   below the normal range (wrong_side_underflows).  The factor may be any
   f 2^X (varifocal's alpha w, varifocal_limit_weighted, below 1 where a tiny
   alpha meets a heavy weight). */
FOCAL_OUTLINED int
focal_hard_times(double x, double y, const focal_params *k, dd factor, int extra_exponent,
                 int precise, focal_values *v)
{
    if (!(isfinite(x) && (y == 0.0 || y == 1.0))) {
        return 0;
    }
    if ((y == 1.0) != (x > 0.0)) {
        return wrong_side_underflows(x, k->gamma) &&
               sigmoid_focal_times(x, y, k, factor, extra_exponent, precise, 0, v);
    }
    if (fabs(x) < focal_far_form_from(k->gamma)) {
        return sigmoid_focal_right_times(fabs(x), 1.0 - 2.0 * y, k->gamma, factor,
                                         extra_exponent, precise, v);
    }
    *v = sigmoid_focal_far_right_times(fabs(x), 1.0 - 2.0 * y, k->gamma, factor, extra_exponent,
                                       precise);
    return 1;
}

/* the above under a weight (the focal loss's, the quality focal loss's and
   the asymmetric loss's hard targets) */
FOCAL_OUTLINED int
focal_hard_limit_weighted(double x, double y, const focal_params *k, double weight,
                          int precise, focal_values *v)
{
    return focal_hard_times(x, y, k, dd_from(weight), 0, precise, v);
}

/* the focal loss's: a hard target's (above), and a soft target's values
   (sigmoid_focal_times); the quality focal loss and the asymmetric loss,
   whose soft targets have forms of their own, take the first only */
FOCAL_OUTLINED int
sigmoid_fl_limit_weighted(double x, double y, const focal_params *k, double weight, int precise,
                          focal_values *v)
{
    return y > 0.0 && y < 1.0 ? sigmoid_focal_times(x, y, k, dd_from(weight), 0, precise, 0, v)
                              : focal_hard_limit_weighted(x, y, k, weight, precise, v);
}

FOCAL_INLINE focal_values
sigmoid_fl_values(double x, double y, const focal_params *k, int form, int soft,
                  int derivatives, int precise, long long *again)
{
    return sigmoid_focal_marked(x, y, k, form, soft, derivatives, precise, 0, again);
}

FOCAL_INLINE focal_values
sigmoid_fl_accurate(double x, double y, const focal_params *k, int form, int derivatives)
{
    return sigmoid_focal_accurate(x, y, k, form, derivatives, 0);
}

/* one element's unweighted values from its logistic parts, for float32
   results of a hard target (FOCAL_STAGED_BLOCK) */
FOCAL_INLINE focal_values
sigmoid_fl_hard_f32(double y, logistic_parts s, const focal_params *k, int form,
                    int derivatives, const double *given_q_gamma)
{
    return sigmoid_focal_parts(y, s, k, form, 0, derivatives, 0, given_q_gamma, 0);
}

FOCAL_INLINE int
sigmoid_fl_block(const block_params *bp, element_block *b, ptrdiff_t n, int form, int soft,
                 int derivatives, int precise)
{
    long long special = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    if (precise && !soft && form != FOCAL_GAMMA_LARGE) {
        /* float64 results of hard targets, in stages as below: t = e^-|x|,
           then log(1 + t), then the rest.  The same functions of the same
           arguments as sigmoid_focal, so the same bits; shorter loops,
           whose iterations the processor overlaps (the three stages and
           the selects of hard targets: 202 to 176 instructions an element
           at AVX2, 35 to 30 ns on one core of a Zen 3) */
        double t_hi[FOCAL_BLOCK], t_lo[FOCAL_BLOCK], l_hi[FOCAL_BLOCK], l_lo[FOCAL_BLOCK];
        for (ptrdiff_t i = 0; i < n; i++) {
            special |= sigmoid_fl_special(b->x[i], &bp->focal);
            dd t = exp_series(dd_from(-fabs(b->x[i])), 1, 1);
            t_hi[i] = t.hi;
            t_lo[i] = t.lo;
        }
        for (ptrdiff_t i = 0; i < n; i++) {
            dd t = {t_hi[i], t_lo[i]};
            dd l = log1p_unit_series(t, 1, 1);
            l_hi[i] = l.hi;
            l_lo[i] = l.lo;
        }
        const block_params p = *bp;
        for (ptrdiff_t i = 0; i < n; i++) {
            dd t = {t_hi[i], t_lo[i]}, l = {l_hi[i], l_lo[i]};
            focal_values v = sigmoid_focal_parts(b->y[i], logistic_from(b->x[i], t, l, 1),
                                                 &p.focal, form, 0, derivatives, 1, NULL, 0);
            weigh_element(&p, v, b->x[i], b->y[i], b->alpha[i], b->weight[i], &b->loss[i],
                          &b->grad[i], &b->hess[i], 1, weigh_carefully(&p, 1), 1);
        }
        return special != 0;
    }
    FOCAL_STAGED_OR_GENERIC_BLOCK(sigmoid_fl, 0, staged_f32(bp, precise, soft), special, bp, b,
                                  n, form, soft, derivatives, precise);
    return special != 0;
}

/* ------------------------------------------------------------------------
 * Row fl_star: FL* (Appendix A), z = gamma s x + beta with s = 2y - 1,
 * FL* = softplus(-z) / gamma; targets in {0, 1}, gamma > 0, no second
 * derivative.  One form.
 */
#define fl_star_FORMS(F, ...) F(0, __VA_ARGS__)

static inline int
fl_star_form(const focal_params *k)
{
    (void)k;
    return 0;
}

/* log(gamma), for the far tail (star_focal_far) */
static inline void
fl_star_prepare(focal_params *k)
{
    k->log_gamma = log_positive(dd_from(k->gamma), 1);
    /* FL* <= |x| + (|beta| + log 2) / gamma; its derivatives are at most 1 */
    k->large = k->gamma < 0x1p-700 || fabs(k->beta) > 0x1p700 * k->gamma;
}

/* x or z = gamma s x + beta possibly not finite (for either s: gamma x + beta
   alone missed s = -1, x = 1e308, beta = -1e308, whose z is -inf: NaN), or z
   possibly past FOCAL_STAR_FAR.  (NaN and infinite x fail the first test.) */
FOCAL_INLINE int
fl_star_special(double x, const focal_params *k)
{
    double reach = k->gamma * fabs(x) + fabs(k->beta); /* |z| at most */
    int far = !(k->gamma * fabs(x) + k->beta <= FOCAL_STAR_FAR);
    return far | !((reach - reach) == 0.0);
}

FOCAL_OUTLINED focal_values
fl_star_limit(double x, double y, const focal_params *k, int precise)
{
    return star_focal_limit(x, y, k, precise);
}

FOCAL_INLINE focal_values
fl_star_values(double x, double y, const focal_params *k, int form, int soft, int derivatives,
               int precise, long long *again)
{
    (void)form, (void)soft, (void)derivatives, (void)again;
    return star_focal(x, y, k, precise);
}

FOCAL_INLINE int
fl_star_block(const block_params *bp, element_block *b, ptrdiff_t n, int form, int soft,
              int derivatives, int precise)
{
    long long special = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    FOCAL_GENERIC_BLOCK(fl_star_values, no_accurate, fl_star_special, special, bp, b, n, form, soft,
                        derivatives, precise);
    return special != 0;
}

/* ------------------------------------------------------------------------
 * Row poly1: the Poly-1 focal loss (Leng et al., PolyLoss)
 *   L = q^gamma CE + epsilon q^(gamma + 1) = q^gamma (CE + epsilon q),
 * epsilon = k->extra >= -1, dense targets in [0, 1].  The focal loss's
 * kernels with poly = 1 (sigmoid_focal_parts), its forms and its tails
 * (focal_family.h).
 */
/* Forms: the focal loss's six for epsilon >= 0, and one of its own for
   epsilon < 0 (gamma up to 8), whose kernels form C and its derivatives as
   sums of terms >= 0 (sigmoid_focal_parts, POLY1_NEGATIVE).  A form is a
   constant of its kernels: those of epsilon >= 0 carry none of that work (a
   test of epsilon's sign inside their vector loop cost them 3.5 times their
   time).  epsilon < 0 with gamma above 8 takes the scalar path
   (poly1_prepare), whose q^gamma is the large gamma's. */
enum { POLY1_NEGATIVE_FORM = 6 };
#define poly1_FORMS(F, ...) sigmoid_fl_FORMS(F, __VA_ARGS__) F(6, __VA_ARGS__)

static inline int
poly1_form(const focal_params *k)
{
    return k->extra < 0.0 ? POLY1_NEGATIVE_FORM : focal_gamma_kernel(k->gamma);
}

/* Where epsilon and gamma are both large, the vector loop's products (g a r C,
   g (g - 1) r^2 C with C up to 701 + |epsilon|, r <= 2) could overflow
   although q^g makes the result small: then every element takes the scalar
   path, which forms them apart (poly1_grad_apart).  From gamma 1e150 the
   kernel's second derivative already puts q^g first (sigmoid_focal_parts),
   which leaves g C. */
static inline void
poly1_prepare(focal_params *k)
{
    double g = k->gamma, c = 701.0 + fabs(k->extra);
    /* epsilon q^(1 + g) and its derivatives, up to |epsilon| (1 + g)^2 */
    k->large = fabs(k->extra) * (1.0 + g) * (1.0 + g) > 0x1p700;
    double largest = g < 1e150 ? 4.0 * (g + 1.0) * (g + 1.0) * c : 4.0 * (g + 1.0) * c;
    k->near = largest < 0x1p1000 ? FOCAL_SIGMOID_FAR : -1.0;
    /* epsilon < 0 above gamma 8: the scalar path for every element (the
       vector loop's negative form has only the general gamma's q^gamma) */
    if (k->extra < 0.0 && g > FOCAL_GAMMA_LARGE_FROM) {
        k->near = -1.0;
    }
    /* epsilon > 0 brings back values of the right side whose q^g the vector
       loop underflowed, from g |x| = 708 (epsilon 1.7e308, gamma 2 at x =
       -400 gave 0 for 9e-214): every element beyond |x| = 700 / g takes the
       scalar path, whose far form applies the factor first
       (sigmoid_focal_far_right_times; it holds from focal_far_form_from(g),
       below 700 / g at these gammas).  gamma > 8 has kernels of its own that
       keep q^g in log space. */
    if (k->near > 0.0 && k->extra > 0.0 && g > 1.0 && g <= 8.0) {
        double reach = FOCAL_SIGMOID_FAR / g, from = focal_far_form_from(g);
        k->near = reach > from ? reach : from;
    }
}

/* the focal loss's test, or every element (poly1_prepare) */
FOCAL_INLINE int
poly1_special(double x, const focal_params *k)
{
    return !(fabs(x) <= k->near);
}

FOCAL_OUTLINED focal_values
poly1_limit(double x, double y, const focal_params *k, int precise)
{
    return poly1_focal_limit(x, y, k, precise);
}

FOCAL_INLINE focal_values
poly1_values(double x, double y, const focal_params *k, int form, int soft, int derivatives,
             int precise, long long *again)
{
    /* (the negative form takes q^gamma as the general gamma does) */
    int negative = form == POLY1_NEGATIVE_FORM;
    return sigmoid_focal_marked(x, y, k, negative ? 0 : form, soft, derivatives, precise,
                                negative ? POLY1_NEGATIVE : POLY1_PLAIN, again);
}

FOCAL_INLINE focal_values
poly1_accurate(double x, double y, const focal_params *k, int form, int derivatives)
{
    int negative = form == POLY1_NEGATIVE_FORM;
    return sigmoid_focal_accurate(x, y, k, negative ? 0 : form, derivatives,
                                  negative ? POLY1_NEGATIVE : POLY1_PLAIN);
}

FOCAL_INLINE focal_values
poly1_hard_f32(double y, logistic_parts s, const focal_params *k, int form, int derivatives,
               const double *given_q_gamma)
{
    return sigmoid_focal_parts(y, s, k, form, 0, derivatives, 0, given_q_gamma, POLY1_PLAIN);
}

FOCAL_INLINE int
poly1_block(const block_params *bp, element_block *b, ptrdiff_t n, int form, int soft,
            int derivatives, int precise)
{
    long long special = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    /* (the negative form keeps the one loop: its C is formed apart) */
    FOCAL_STAGED_OR_GENERIC_BLOCK(poly1, 0,
                                  form != POLY1_NEGATIVE_FORM && staged_f32(bp, precise, soft),
                                  special, bp, b, n, form, soft, derivatives, precise);
    return special != 0;
}

/* ------------------------------------------------------------------------
 * Row varifocal: the varifocal loss (Zhang et al., VarifocalNet), an
 * IoU-aware target q in [0, 1], alpha = k->extra >= 0 weighing q = 0
 * (focal_family.h).  The focal loss's forms serve the q = 0 branch's p^gamma.
 */
#define varifocal_FORMS sigmoid_fl_FORMS

static inline int
varifocal_form(const focal_params *k)
{
    return focal_gamma_kernel(k->gamma);
}

/* alpha above 1 brings back values of target 0 that the vector loop's
   p^g CE underflowed, from (1 + g)|x| = 708 (alpha 1e300, gamma 2 at x =
   -300 gave 0 for 5e-92): there every element beyond |x| = 700 / (1 + g) -
   log 2 takes the scalar path, which applies alpha before the values leave the
   range on the right side of target 0 (sigmoid_focal_far_right_times, or
   below focal_far_form_from(g), which a gamma above 17 puts beyond 700 /
   (1 + g), the exact form: alpha 1e300, gamma 30 at x = -30 gave 0 for
   1.3e-104) and computes the others as the vector loop does. */
static inline void
varifocal_prepare(focal_params *k)
{
    /* alpha p^g BCE and its derivatives, up to alpha (1 + g)^2 times |x|'s */
    k->large = k->extra * (1.0 + k->gamma) * (1.0 + k->gamma) > 0x1p700;
    /* (1 + g)(|x| + log 2) bounds -log(p^g CE) from above: at x = -0.5,
       gamma 1000, p^g is e^-974 (alpha 1e300 gave 0 for 4.4e-124); from
       gamma 1010 on every element may underflow, and takes the scalar path */
    double reach = FOCAL_SIGMOID_FAR / (1.0 + k->gamma) - LN2;
    k->near = !(k->extra > 1.0 && reach < FOCAL_SIGMOID_FAR) ? FOCAL_SIGMOID_FAR
              : reach > 0.0                                 ? reach
                                                            : -1.0;
}

FOCAL_INLINE int
varifocal_special(double x, const focal_params *k)
{
    return !(fabs(x) <= k->near);
}

/* varifocal_limit, varifocal_accurate: focal_family.h */

FOCAL_INLINE focal_values
varifocal_values(double x, double y, const focal_params *k, int form, int soft,
                 int derivatives, int precise, long long *again)
{
    return varifocal_marked(x, y, k, form, soft, derivatives, precise, again);
}

FOCAL_INLINE focal_values
varifocal_hard_f32(double y, logistic_parts s, const focal_params *k, int form,
                   int derivatives, const double *given_p_gamma)
{
    return varifocal_parts(y, s, k, form, derivatives, 0, given_p_gamma);
}

FOCAL_INLINE int
varifocal_block(const block_params *bp, element_block *b, ptrdiff_t n, int form, int soft,
                int derivatives, int precise)
{
    long long special = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    /* (form 0's power is p^gamma, target 0's, for every element) */
    FOCAL_STAGED_OR_GENERIC_BLOCK(varifocal, 1, staged_f32(bp, precise, soft), special, bp, b, n,
                                  form, soft, derivatives, precise);
    return special != 0;
}

/* ------------------------------------------------------------------------
 * Row asymmetric: the asymmetric loss (Ridnik et al., ICCV 2021), targets in
 * {0, 1}.  Its three parameters: gamma_neg in k->gamma, so that the focal
 * loss's forms (integer gamma by products) serve the negatives' p_m^gamma_neg
 * (gamma_neg 4 by default); gamma_pos in k->extra, whose (1 - p)^gamma_pos
 * takes the general power; the clip m in k->extra2 (focal_family.h).
 */
#define asymmetric_FORMS sigmoid_fl_FORMS

static inline int
asymmetric_form(const focal_params *k)
{
    return focal_gamma_kernel(k->gamma);
}

static inline void
asymmetric_prepare(focal_params *k)
{
    (void)k;
}

FOCAL_INLINE int
asymmetric_special(double x, const focal_params *k)
{
    return sigmoid_fl_special(x, k);
}

/* asymmetric_limit: focal_family.h */

FOCAL_INLINE focal_values
asymmetric_values(double x, double y, const focal_params *k, int form, int soft,
                  int derivatives, int precise, long long *again)
{
    (void)soft, (void)again; /* hard targets only */
    return asymmetric(x, y, k, form, derivatives, precise, k->extra2 == 0.0);
}

/* whether a negative's weighted second derivative is infinite under a
   weight in (0, 1) (asymmetric_gathered) */
FOCAL_INLINE int
asymmetric_overflowed(const element_block *c, ptrdiff_t j)
{
    return (c->weight[j] < 1.0) & (c->weight[j] > 0.0) & (fabs(c->hess[j]) == HUGE_VAL);
}

/* a negative above a clip with its weight inside the power (asymmetric_negative):
   for asymmetric_gathered's overflowed elements and asymmetric_limit_weighted */
FOCAL_INLINE focal_values
asymmetric_negative_weighted(double x, const focal_params *k, double weight, int precise)
{
    logistic_parts s = logistic(x, precise, 1);
    return asymmetric_negative(x, s, dd_mul(s.p, s.one_minus_p, precise), k, asymmetric_form(k),
                               FOCAL_OUT_HESS, precise, weight);
}

/* the values of a gathered block of count elements, all of target y */
FOCAL_INLINE void
asymmetric_gathered(const block_params *p, element_block *c, ptrdiff_t count, double y,
                    int form, int derivatives, int precise, int clip_zero)
{
    for (ptrdiff_t j = 0; j < count; j++) {
        double x = c->x[j];
        focal_values v = asymmetric(x, y, &p->focal, form, derivatives, precise, clip_zero);
        weigh_element(p, v, x, y, c->alpha[j], c->weight[j], &c->loss[j], &c->grad[j],
                      &c->hess[j], precise, 1, 1);
    }
    if (derivatives < FOCAL_OUT_HESS || y != 0.0 || clip_zero) {
        return;
    }
    /* Above a clip of 1/2 at a small gamma_neg, the second derivative's
       P^(g - 1) of a subnormal P lies beyond the doubles (x = 5e-324,
       gamma_neg 1e-8: about 2^-4 g P^(g - 1) = 5e314), where a weight below
       1 brings the value back (5e-324: 2.5e-9, which was inf).  Such
       elements, found by a scan that vectorises, are formed again with the
       weight inside the power, as asymmetric_limit_weighted forms those of
       weights above 1, and weighed as a weight of 1 (the weights' sum reads
       b->weight, unchanged).  Their second derivative alone is taken: the
       loss and gradient keep the bits the loss-only and gradient kernels
       give (review 78: grad_hess's gradient 0.5 ULP apart from grad's). */
    long long found = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    for (ptrdiff_t j = 0; j < count; j++) {
        found |= asymmetric_overflowed(c, j);
    }
    for (ptrdiff_t j = 0; found && j < count; j++) {
        if (asymmetric_overflowed(c, j)) {
            double x = c->x[j];
            focal_values v = asymmetric_negative_weighted(x, &p->focal, c->weight[j], precise);
            double loss, grad;
            weigh_element(p, v, x, y, c->alpha[j], 1.0, &loss, &grad, &c->hess[j], precise, 1, 1);
        }
    }
}

/* the listed elements of a block, all of target y (a constant): gathered
   into a block of their own, computed there in a loop that vectorises (the
   row's values and weigh_element, as FOCAL_GENERIC_BLOCK), scattered back.
   Whether the clip is 0 is a constant of that loop: the negatives then take
   the focal loss's values alone (asymmetric). */
FOCAL_INLINE void
asymmetric_listed(const block_params *bp, element_block *b, const ptrdiff_t *list,
                  ptrdiff_t count, double y, int form, int derivatives, int precise)
{
    if (count == 0) {
        return;
    }
    const block_params p = *bp;
    element_block c;
    /* The gathered block runs whole vectors of the widest level (8
       doubles): its last entries repeat the last listed element, so that
       the loop that vectorises leaves no scalar remainder (a detector's
       block lists some 35 negatives and one positive: the remainder's
       scalar elements took a fifth of the block's time).  The repeats'
       values are the same element's and are not scattered back. */
    const ptrdiff_t whole = (count + 7) & ~(ptrdiff_t)7;
    for (ptrdiff_t j = 0; j < whole; j++) {
        ptrdiff_t i = list[j < count ? j : count - 1];
        c.x[j] = b->x[i];
        c.alpha[j] = b->alpha[i];
        c.weight[j] = b->weight[i];
    }
    if (y == 0.0 && p.focal.extra2 == 0.0) {
        asymmetric_gathered(&p, &c, whole, y, form, derivatives, precise, 1);
    }
    else {
        asymmetric_gathered(&p, &c, whole, y, form, derivatives, precise, 0);
    }
    for (ptrdiff_t j = 0; j < count; j++) {
        b->loss[list[j]] = c.loss[j];
        b->grad[list[j]] = c.grad[j];
        b->hess[list[j]] = c.hess[j];
    }
}

/* The indices i < n whose flag is set (flags[i] 0 or 1; or, with flags
   NULL, whose target y[i] is 1), in order, into list; returns how many.  At
   AVX-512 (the file of that level: FOCAL_LEVEL_VECTOR_BYTES 64) eight
   indices at a time are packed by a compress into a register and stored
   whole: entries past the count are stored over or never read, and list
   has room, the count being at most i.  (A compress that stores to memory
   is microcoded on some AMD cores.)  The branch-free loop of the other
   levels carries its count from one element to the next: the asymmetric
   block's two lists took a sixth of its time. */
#if defined(FOCAL_LEVEL_VECTOR_BYTES) && FOCAL_LEVEL_VECTOR_BYTES == 64 && \
    defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define FOCAL_COMPRESSED_LISTS 1
FOCAL_OUTLINED ptrdiff_t
listed_indices(const ptrdiff_t *flags, const double *y, ptrdiff_t n, ptrdiff_t *list)
{
    const __m512i eight = _mm512_set1_epi64(8);
    __m512i index = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    ptrdiff_t count = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __mmask8 set;
        if (flags != NULL) {
            __m512i f = _mm512_loadu_si512((const void *)(flags + i));
            set = _mm512_test_epi64_mask(f, f);
        }
        else {
            set = _mm512_cmp_pd_mask(_mm512_loadu_pd(y + i), _mm512_set1_pd(1.0), _CMP_EQ_OQ);
        }
        _mm512_storeu_si512((void *)(list + count), _mm512_maskz_compress_epi64(set, index));
        count += __builtin_popcount((unsigned)set);
        index = _mm512_add_epi64(index, eight);
    }
    for (; i < n; i++) {
        list[count] = i;
        count += flags != NULL ? flags[i] != 0 : y[i] == 1.0;
    }
    return count;
}
#endif

/*
 * The block: most negatives of a detector's batch lie below the clip
 * (p <= m), where every value is 0, and positives are rare.  So the block is
 * zeroed, and only two lists of its elements are computed
 * (asymmetric_listed): the positives, and the negatives that may lie above
 * the clip (x > logit(m) - 2^-20; the kernel's own test decides, and a
 * negative left out has d = x - logit(m) < 0, so P < 0 and its values are
 * 0).  For m = 0 every negative is listed.  An element's values do not depend
 * on its neighbours: the lists only choose which elements do any work, so
 * the results are those of the element-by-element loop, bit for bit.
 */
FOCAL_INLINE int
asymmetric_block(const block_params *bp, element_block *b, ptrdiff_t n, int form, int soft,
                 int derivatives, int precise)
{
    (void)soft; /* hard targets only */
    /* a local copy: loop invariants (see FOCAL_GENERIC_BLOCK) */
    const block_params p = *bp;
    const double from = p.focal.extra2 > 0.0 ? p.focal.extra3 - 0x1p-20 : -HUGE_VAL;
    long long special = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    int any_positive = 0;
    /* which negatives are listed (0 or 1), in a loop that vectorises */
    ptrdiff_t listed[FOCAL_BLOCK];
    for (ptrdiff_t i = 0; i < n; i++) {
        double x = b->x[i];
        int positive = b->y[i] == 1.0;
        special |= asymmetric_special(x, &p.focal);
        any_positive |= positive;
        listed[i] = !positive & (x > from);
        b->loss[i] = 0.0;
        b->grad[i] = 0.0;
        b->hess[i] = 0.0;
    }
    /* the lists, built without branches (a NaN logit is in neither: the
       scalar path takes it), both in one pass where the block has a
       positive */
    ptrdiff_t negatives[FOCAL_BLOCK], positives[FOCAL_BLOCK];
    ptrdiff_t n_negative = 0, n_positive = 0;
#ifdef FOCAL_COMPRESSED_LISTS
    n_negative = listed_indices(listed, NULL, n, negatives);
    if (any_positive) {
        n_positive = listed_indices(NULL, b->y, n, positives);
    }
#else
    if (any_positive) {
        for (ptrdiff_t i = 0; i < n; i++) {
            negatives[n_negative] = i;
            n_negative += listed[i];
            positives[n_positive] = i;
            n_positive += b->y[i] == 1.0;
        }
    }
    else {
        for (ptrdiff_t i = 0; i < n; i++) {
            negatives[n_negative] = i;
            n_negative += listed[i];
        }
    }
#endif
    /* positives first: with the negatives' loop first, GCC 12 left it
       scalar (a third of the speed) */
    asymmetric_listed(&p, b, positives, n_positive, 1.0, form, derivatives, precise);
    asymmetric_listed(&p, b, negatives, n_negative, 0.0, form, derivatives, precise);
    return special != 0;
}

/* ------------------------------------------------------------------------
 * Row quality: the quality focal loss (Li et al., Generalized Focal Loss),
 * QFL = |p - y|^beta CE for a quality target y in [0, 1], beta = k->gamma
 * (focal_family.h).  The focal loss's forms serve |p - y|^beta; a block of
 * hard targets is the focal loss's block itself (QFL is the focal loss at
 * gamma = beta there, and the entry passes no alpha).
 */
#define quality_FORMS sigmoid_fl_FORMS

static inline int
quality_form(const focal_params *k)
{
    return focal_gamma_kernel(k->gamma);
}

static inline void
quality_prepare(focal_params *k)
{
    (void)k;
}

FOCAL_INLINE int
quality_special(double x, const focal_params *k)
{
    return sigmoid_fl_special(x, k);
}

/* quality_limit: focal_family.h */

FOCAL_INLINE focal_values
quality_values(double x, double y, const focal_params *k, int form, int soft, int derivatives,
               int precise, long long *again)
{
    (void)again; /* (a hard target's gradient does not cancel) */
    return quality(x, y, k, form, soft, derivatives, precise);
}

FOCAL_INLINE int
quality_block(const block_params *bp, element_block *b, ptrdiff_t n, int form, int soft,
              int derivatives, int precise)
{
    if (!soft) {
        return sigmoid_fl_block(bp, b, n, form, 0, derivatives, precise);
    }
    long long special = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    FOCAL_GENERIC_BLOCK(quality_values, no_accurate, quality_special, special, bp, b, n, form, 1,
                        derivatives, precise);
    return special != 0;
}

/* the rows whose scalar path has no weighted form (NAME_limit_weighted) */
FOCAL_INLINE int
no_limit_weighted(double x, double y, const focal_params *k, double weight, int precise,
                  focal_values *v)
{
    (void)x, (void)y, (void)k, (void)weight, (void)precise, (void)v;
    return 0;
}

/* FL*'s far tail (star_focal_far) times a weight above 1: e^-z / gamma and
   -s e^-z are below the normal range from z = 708 (z = 750 at gamma 1 under
   a weight of 1e300 gave 0 for 1.9e-26, z = 720 a loss 3e-12 off), so the
   weight w = m 2^E joins them as E ln 2 in the exponent and m in [1/2, 1)
   as a factor after: no log of w, one rounding more.  A weighted value that
   would pass e^600 (a gamma below e^-490) is left to the unweighted path:
   the value before the weight is then normal, and weighing keeps its digits
   (above e^600 the reductions' scales could overflow what they shrink). */
FOCAL_OUTLINED int
fl_star_limit_weighted(double x, double y, const focal_params *k, double weight, int precise,
                       focal_values *v)
{
    double s = y == 1.0 ? 1.0 : -1.0;
    if (!(isfinite(x) && isfinite(k->gamma * s * x + k->beta))) {
        return 0;
    }
    dd z = star_z(x, y, k, precise);
    if (!(z.hi > FOCAL_STAR_FAR)) {
        return 0;
    }
    int binary_exponent;
    double mantissa = frexp(weight, &binary_exponent);
    dd grad_exponent = add_ln2_multiple(dd_negate(z), (double)binary_exponent, precise);
    dd loss_exponent = dd_add(grad_exponent, dd_negate(k->log_gamma), precise);
    if (!(loss_exponent.hi <= 600.0 && grad_exponent.hi <= 600.0)) {
        return 0;
    }
    v->loss = dd_scale(exp_series(loss_exponent, precise, 0), mantissa, precise);
    v->grad = dd_scale(exp_series(grad_exponent, precise, 0), -s * mantissa, precise);
    v->hess = 0.0;
    return 1;
}

/* Poly-1's far right side (poly1_focal_limit) is the focal loss's times
   1 + epsilon, now (1 + epsilon) w.  1 + epsilon below 2^-200 is left to the
   unweighted path: the far form drops a term t^2 / 2 of C beside
   (1 + epsilon) t, t = e^-|x|, which a weight up to 2^1024 would bring into
   the normal range where 1 + epsilon is 0.  From focal_far_form_from(g) on
   the form holds where epsilon >= -1/2 (its relative error is t (g + 1/2 +
   (1/2 + epsilon) / (1 + epsilon))), for the elements whose values are
   faint beside their weight (finish_special).  A soft target's values, as
   the focal loss's, with q^g formed 2^E larger (sigmoid_focal_times: x =
   -467.36, y = 1e-200 at gamma 2, epsilon -0.5, under a weight of 1e300
   gave a gradient of 0 for -4.67e-311). */
FOCAL_OUTLINED int
poly1_limit_weighted(double x, double y, const focal_params *k, double weight, int precise,
                     focal_values *v)
{
    if (y > 0.0 && y < 1.0) {
        return sigmoid_focal_times(x, y, k, dd_from(weight), 0, precise, POLY1_GUARDED, v);
    }
    dd one_plus_epsilon = two_sum(1.0, k->extra, precise);
    int far = poly1_far_right(x, y, k) ||
              (k->extra >= -0.5 && (y == 0.0 || y == 1.0) && (y == 1.0) == (x > 0.0) &&
               fabs(x) >= focal_far_form_from(k->gamma));
    if (!(isfinite(x) && far && one_plus_epsilon.hi >= 0x1p-200)) {
        return 0;
    }
    double ax = fabs(x), a = 1.0 - 2.0 * y;
    dd factor = dd_mul(one_plus_epsilon, dd_from(weight), precise);
    if (isfinite(factor.hi)) {
        *v = sigmoid_focal_far_right_times(ax, a, k->gamma, factor, 0, precise);
        return 1;
    }
    /* (1 + epsilon) w past the double range (epsilon 1e10 under a weight of
       1.7e308 at x = 720, gamma 0.5, gave 0 for 1.2e-161).  Where the value
       before the weight, e^-(1+g)|x| (1 + epsilon), is above 2^-1000, weighing
       it keeps its digits: the unweighted path.  Below, the weighted value is
       below 2^24: the factor taken 2^-1100 smaller (in two exact halves), the
       values 2^1100 larger, which keeps e^-(1+g)|x| 2^1100 below 2^300 (it is
       below 2^-800 here, 1 + epsilon being at least 2^-200). */
    if ((1.0 + k->gamma) * ax < 690.0 + log(one_plus_epsilon.hi)) {
        return 0;
    }
    dd scaled = dd_mul(dd_scale(one_plus_epsilon, 0x1p-550, precise),
                       dd_from(weight * 0x1p-550), precise);
    *v = sigmoid_focal_far_right(ax, a, k->gamma, 1100.0, precise);
    v->loss = dd_mul(v->loss, scaled, precise);
    v->grad = dd_mul(v->grad, scaled, precise);
    v->hess *= scaled.hi;
    return 1;
}

/* the varifocal loss's: target 0 is the focal loss's times alpha, now
   alpha w (focal_hard_times: both sides), and target 1's right side the
   cross-entropy's far form.  Where alpha w passes the double range, it is
   taken as the product of the two mantissas times 2^X, X the sum of their
   exponents (x = -36, gamma 30, alpha 1e300 under a weight of 1.4e294 gave
   0 for 3.0e109; x = -906, gamma 0, alpha 3 under 1.7e308, 0 for
   1.7e-85) */
FOCAL_OUTLINED int
varifocal_limit_weighted(double x, double y, const focal_params *k, double weight, int precise,
                         focal_values *v)
{
    if (y == 0.0 && isfinite(x) && k->extra > 0.0) {
        dd factor = two_product(k->extra, weight, precise);
        if (!isfinite(factor.hi)) {
            /* where alpha's values are above e^-700, the unweighted path keeps
               their digits and weighs them with the reductions' scale; formed
               here, a weighted value past the double range would be inf before
               that scale brought it back (a finite mean was NaN).  log q and
               CE: -(|x| + l) and l on the right side, -l and |x| + l on the
               wrong one, l = log(1 + e^-|x|) */
            double ax = fabs(x), l = log1p(exp(-ax));
            double log_q = x < 0.0 ? -(ax + l) : -l, ce = x < 0.0 ? l : ax + l;
            if (!(log(k->extra) + k->gamma * log_q + log(ce) < -700.0)) {
                return 0;
            }
        }
        /* alpha w beyond the double range, or far below 1, where it would be
           rounded below the normal range (a subnormal alpha under a weight
           near 1: 5e-324 times 1.5 was 1e-323, the loss 9.9e-322 for
           7.4e-322; review 85): the two mantissas' product times 2^X */
        int extra_exponent = 0;
        if (!isfinite(factor.hi) || factor.hi < 0x1p-900) {
            int alpha_exponent, weight_exponent;
            factor = two_product(frexp(k->extra, &alpha_exponent),
                                 frexp(weight, &weight_exponent), precise);
            extra_exponent = alpha_exponent + weight_exponent;
        }
        if (x > 0.0) {
            /* the wrong side: alpha q^g may lie below the normal range where
               q^g does not (alpha 1e-200, gamma 1000 at x = 0.5 under 1e300:
               0 for 1.3e-98; alpha 5e-324 at gamma 0 under 1e300, review 85):
               the accurate form times alpha w, for every faint element within
               FOCAL_SIGMOID_FAR */
            return sigmoid_focal_times(x, 0.0, k, factor, extra_exponent, precise, 0, v);
        }
        return focal_hard_times(x, 0.0, k, factor, extra_exponent, precise, v);
    }
    if (y == 1.0 && x >= focal_far_form_from(0.0) && isfinite(x)) {
        *v = sigmoid_focal_far_right_times(x, -1.0, 0.0, dd_from(weight), 0, precise);
        return 1;
    }
    return 0;
}

/* the asymmetric loss's positives are the focal loss at gamma_pos, its
   negatives without a clip the focal loss at gamma_neg (asymmetric_limit);
   above a clip the negatives' kernel takes the weight before its values are
   scaled back (clip 1/2, gamma_neg 0.5, x = 1e-315 under a weight of 1e300:
   a loss of 0 for 3.95e-174, P^g S below the doubles before the weight) */
FOCAL_OUTLINED int
asymmetric_limit_weighted(double x, double y, const focal_params *k, double weight,
                          int precise, focal_values *v)
{
    if (y == 0.0 && k->extra2 != 0.0) {
        if (!(fabs(x) <= FOCAL_SIGMOID_FAR)) {
            return 0;
        }
        *v = asymmetric_negative_weighted(x, k, weight, precise);
        return 1;
    }
    focal_params focal = *k;
    focal.gamma = y == 1.0 ? k->extra : k->gamma;
    return focal_hard_limit_weighted(x, y, &focal, weight, precise, v);
}

/* the quality focal loss of a hard target is the focal loss at gamma = beta */
#define quality_limit_weighted focal_hard_limit_weighted

/* ------------------------------------------------------------------------
 * What kernels.c makes of a row, for any row: the block, then the scalar
 * path over the elements the row calls special.  soft is a constant here.
 */

/* whether element i's weight is above 1 and its weighted loss below 2^-960
   of that weight times the reductions' scale (finish_special).  Where that
   bound is itself below the normal range (a weight near 1.8e308 elsewhere
   takes the scale to 2^-1024), the scaled loss underflows whatever its
   value, and the test would take ordinary elements: such elements keep the
   block's values. */
FOCAL_INLINE int
faint(const block_params *bp, const element_block *b, ptrdiff_t i)
{
    double bound = b->weight[i] * bp->loss_weight_scale * 0x1p-960;
    return (b->weight[i] > 1.0) & (bound >= 0x1p-1022) & (b->loss[i] <= bound);
}

/* whether any element of the block is faint: a loop that vectorises, so that
   a block of weights above 1 and ordinary values costs little */
FOCAL_INLINE int
any_faint(const block_params *bp, const element_block *b, ptrdiff_t n)
{
    long long found = 0; /* (64 bits: see FOCAL_GENERIC_BLOCK) */
    for (ptrdiff_t i = 0; i < n; i++) {
        found |= faint(bp, b, i);
    }
    return found != 0;
}
FOCAL_INLINE void
finish_special(const block_params *bp, element_block *b, ptrdiff_t n, int precise, int heavy,
               int (*special)(double, const focal_params *),
               focal_values (*limit)(double, double, const focal_params *, int),
               int (*limit_weighted)(double, double, const focal_params *, double, int,
                                     focal_values *))
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double x = b->x[i];
        double weight = b->weight[i];
        int is_special = special(x, &bp->focal);
        /* a weight above 1 may bring back digits the values lost below the
           normal range: a row that can forms them times the weight, which
           then weighs them as a weight of 1 (the weights' sum reads
           b->weight, unchanged).  Beside the special logits, that asks for
           the elements whose weighted loss is below 2^-960 of the weight
           times the reductions' scale (the values before the weight, times
           alpha_t, below 2^-960: x = -500 at gamma 1 under a weight of 1e300
           gave 0 for 5.1e-135); the row's limit_weighted answers for those
           it has a form of, the others keep the block's values. */
        if (!(is_special || (heavy && faint(bp, b, i)))) {
            continue;
        }
        focal_values v;
        if (weight > 1.0 && limit_weighted(x, b->y[i], &bp->focal, weight, precise, &v)) {
            weight = 1.0;
        }
        else if (is_special) {
            v = limit(x, b->y[i], &bp->focal, precise);
        }
        else {
            continue;
        }
        weigh_element(bp, v, x, b->y[i], b->alpha[i], weight, &b->loss[i], &b->grad[i],
                      &b->hess[i], precise, 1, 0);
        if (isinf(v.loss.hi) && b->loss[i] != b->loss[i]) {
            /* an infinite loss times a weight that the reductions' scale
               took to 0 (weigh_element): still infinite */
            b->loss[i] = v.loss.hi;
        }
    }
}

#endif  /* FOCAL_LOSSES_H */

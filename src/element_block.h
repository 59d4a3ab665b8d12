/*
 * element_block.h: a block of elements and what every elementwise loss
 * shares: alpha_t, weights, the gradient's normaliser and the running sums.
 *
 * The driver gathers up to FOCAL_BLOCK elements (converted to double) into
 * an element_block; a loss's block function (losses.h) then runs loops with
 * no calls and no data-dependent branches, which the compiler vectorises.
 * kernels.c compiles them once per instruction set.
 */
#ifndef FOCAL_ELEMENT_BLOCK_H
#define FOCAL_ELEMENT_BLOCK_H

#include <stddef.h>
#include <string.h>

#include "sigmoid_focal.h"

/* FOCAL_LANES: running sums per kind (element_block.h's lane sums); 32 are
   independent chains of vectors (four of 8 doubles at AVX-512, eight of 4 at
   AVX2), so the additions overlap */
enum { FOCAL_BLOCK = 256, FOCAL_LANES = 32 };

/* what the driver tells a kernel of its block: it holds soft targets
   (strictly inside (0, 1)); it holds a weight above 1, which may bring back
   values below the normal range (finish_special) */
enum { FOCAL_BLOCK_SOFT = 1, FOCAL_BLOCK_HEAVY = 2 };

/* a gradient divisor below this brings a weighted scale below 2^-960 (which
   float32 results take unlifted), or a product g w below the doubles, back
   into float32's range: such calls weigh carefully (weigh_carefully) */
#define FOCAL_TINY_DIVISOR 0x1p-400

/* a gradient divisor above this may bring a float32 result g w / D back
   from a product g w beyond the double range (that needs D > 2^896; the
   rest is margin): such calls weigh carefully */
#define FOCAL_HUGE_DIVISOR 0x1p832

typedef struct {
    double x[FOCAL_BLOCK];      /* finite logits (the scalar path takes the others) */
    double y[FOCAL_BLOCK];      /* targets in [0, 1] */
    double alpha[FOCAL_BLOCK];  /* alpha of the element's class */
    double weight[FOCAL_BLOCK]; /* 0 for ignored elements */
    double loss[FOCAL_BLOCK], grad[FOCAL_BLOCK], hess[FOCAL_BLOCK];
} element_block;

enum { FOCAL_GRAD_FOLDED = 0, FOCAL_GRAD_DIVIDED = 1 };

typedef struct {
    focal_params focal;
    int has_alpha;
    double grad_divisor; /* the gradient is divided by it (a mean's normaliser) */
    double grad_scale;   /* 1 / grad_divisor: plain mode multiplies (float32 results
                            are rounded far coarser than the extra rounding) */
    /* how plain mode normalises the gradient (a constant of the block loop):
       FOCAL_GRAD_FOLDED multiplies the weight once by grad_factor =
       grad_scale_ratio / grad_divisor; FOCAL_GRAD_DIVIDED divides, where
       1 / divisor overflows or that product leaves the normal range */
    int grad_mode;
    double grad_factor;
    /* The reductions' weight scales, powers of two (1 but for extreme
       weights, chosen by the Python layer): the loss and the summed weights
       take weight * loss_weight_scale, the gradient weight * grad_weight_scale.
       weigh_element multiplies the weight by weight_scale_up = max(loss scale,
       1) before alpha_t (a subnormal weight times alpha_t would lose its
       digits), and the product by loss_scale_down = loss scale /
       weight_scale_up and grad_scale_ratio = grad scale / weight_scale_up
       after: exact, both parts of a double-double scale alike. */
    double loss_weight_scale, grad_weight_scale;
    double weight_scale_up, loss_scale_down, grad_scale_ratio;
} block_params;

/*
 * Weighs one element's values: alpha_t = alpha y + (1 - alpha)(1 - y) (with
 * 1 - alpha held exactly) times the weight; the gradient divided by the
 * normaliser.  A zero weight masks the element whatever its logit; a zero
 * alpha_t gives 0 too, the limit even of an infinite loss, but NaN stays NaN.
 * The reductions' weight scales (block_params) enter here.
 */
FOCAL_INLINE void
weigh_element(const block_params *bp, focal_values v, double x, double y, double alpha,
              double weight, double *loss, double *grad, double *hess, int precise,
              int careful, int hard)
{
    /* hard (a constant: y in {0, 1}, or a weight of 0) takes alpha_t by a
       select, the formula's bits */
    dd one_minus_alpha = two_sum(1.0, -alpha, precise);
    /* (a soft target's alpha y and 1 - y exact in double-double: each
       rounded, they took the float64 loss up to 0.5 ULP further off) */
    dd alpha_t = hard ? dd_pick(y == 1.0, dd_from(alpha), one_minus_alpha)
                      : dd_add(two_product(alpha, y, precise),
                               dd_mul(one_minus_alpha, two_sum(1.0, -y, precise), precise),
                               precise);
    double weight_up = weight * bp->weight_scale_up;
    /* Float64 results: where the loss's or the gradient's weighted scale
       (alpha_t w times the reductions' scale) is below 2^-960, w enters
       2^600 larger and that side's results leave 2^600 smaller (exact but for
       the final rounding of a subnormal result): alpha_t w of a subnormal w,
       or of a tiny alpha_t, kept few digits or none (0.25 * 5e-324 is 0,
       which masked an infinite loss to 0, and a finite one lost its digits,
       4x off at 1e-322).  The side that needs no lift is scaled back before
       its product (a loss of 1e300 lifted would overflow).  Float32 results
       take the lift in the careful loop only (weigh_carefully): a value below
       2^-960 comes back into float32's range only times an unweighted value
       above 2^811, which only a row's extreme parameters give (Poly-1's
       epsilon 1e300 times a weight of 5e-324 gave 0 for 1.5e-25: the row's
       `large`, set by its prepare); elsewhere such a result is 0 whatever
       the digits.  precise and careful are constants of the loop. */
    double unlifted = bp->has_alpha ? alpha_t.hi * weight_up : weight_up;
    /* (a zero alpha_t is not lifted: it masks the element, and a weight of
       1e308 times 2^600 was inf, times alpha_t = 0 NaN; a positive alpha_t
       whose product with w underflows is, 0.25 * 5e-324) */
    int some = !bp->has_alpha | (alpha_t.hi != 0.0);
    int liftable = (precise || careful) && some;
    int lift_loss = liftable && unlifted * bp->loss_scale_down < 0x1p-960;
    int lift_grad = liftable && unlifted * bp->grad_scale_ratio < 0x1p-960;
    int lifted = lift_loss | lift_grad;
    double up = lifted ? 0x1p600 : 1.0;
    /* the lift enters through alpha_t (<= 1), not through a weight that may
       be near the double range (alpha 1e-300, w = 1e300: w 2^600 was inf,
       and the sums NaN); without alpha it enters through w, then below
       2^64 (w times the reductions' scale, at least 2^-1024, is below
       2^-960).  The products are those of before, exactly: powers of two. */
    dd alpha_up = {alpha_t.hi * up, alpha_t.lo * up};
    dd scale = bp->has_alpha ? dd_scale(alpha_up, weight_up, precise) : dd_from(weight_up * up);
    int zero = weight == 0.0 || (scale.hi == 0.0 && x == x);
    /* (a weight the scale takes below the smallest subnormal is negligible
       beside the largest, which the scale brings near 1) */
    double loss_down = bp->loss_scale_down * ((lifted & !lift_loss) ? 0x1p-600 : 1.0);
    double grad_down = bp->grad_scale_ratio * ((lifted & !lift_grad) ? 0x1p-600 : 1.0);
    double loss_drop = lift_loss ? 0x1p-600 : 1.0, drop = lift_grad ? 0x1p-600 : 1.0;
    /* the loss's scale 2^600 larger again where the lift leaves it below
       2^-960, as the gradient's below (alpha_t = 1e-300 beside a weight
       2^700 larger: alpha_t w 2^600 2^-701 underflowed, and Poly-1's loss
       of 4.5e295 before alpha_t gave 568 for 4.5e-5).  Tested on scale
       times the block's loss_scale_down alone: unlifted, or lifted for the
       gradient only, that product is at least 2^-960 (a test that took
       lift_loss in kept GCC from vectorising the block loops, float64's 2.4
       times slower: GCC's vectoriser report, compared with the previous
       build's, showed which).  The second lift comes before the scale
       down: the other order rounded alpha_t w 2^600 2^-615 = 0.75 2^-1074
       to 2^-1074 on the way (weights 2^613 and 2^-1059: 4/3 of the light
       term).  scale times 2^600 is below 2^665 then: its product with
       loss_scale_down (at least 2^-1025) is below 2^-960. */
    double lifted_loss_scale = scale.hi * bp->loss_scale_down;
    double loss_up_more = (precise || careful) && lifted_loss_scale < 0x1p-960 ? 0x1p600 : 1.0;
    double loss_drop_more = (precise || careful) && lifted_loss_scale < 0x1p-960 ? 0x1p-600 : 1.0;
    dd loss_scale = {scale.hi * loss_up_more * loss_down, scale.lo * loss_up_more * loss_down};
    /* the gradient's scale 2^600 larger again where the lift leaves it below
       2^-960 (the weight sum's scale 2^-997 of a mean over weights 1e-300
       and 1e300: alpha_t w 2^600 2^-997 underflowed, and Poly-1's g = 1e300
       gave 0 for 2.4e-301), tested on the lifted alpha_t w (alpha_t w itself
       may have underflowed to 0); alpha_t w 2^600 is then below 2^114 (the
       ratio is at least 2^-1074), so that product cannot overflow.  As the
       loss's, the test takes no lift_grad in: unlifted, or lifted for the
       loss only, that product is at least 2^-960; a zero alpha_t w passes it
       and stays masked (an int flag and-ed with it there, beside the loss's
       second lift, kept the block loops from vectorising). */
    double lifted_grad_scale = scale.hi * bp->grad_scale_ratio;
    int lift_more = (precise || careful) && lifted_grad_scale < 0x1p-960;
    double more = lift_more ? 0x1p600 : 1.0, drop_more = lift_more ? 0x1p-600 : 1.0;
    dd grad_scale = {scale.hi * more * grad_down, scale.lo * more * grad_down};
    /* An unweighted loss beyond the double range (varifocal's or FL*'s at
       extreme parameters) is infinite times any weight the element keeps,
       also one that the reductions' scale took below the smallest subnormal
       (inf times that 0 was NaN: a sum over weights [5e-324, 1]); a finite
       loss times such a weight is 0, and the sum that drops it is taken again
       with the weights unscaled where that matters (Plan.retake).  Written
       as arithmetic: the zero scale stands in as 5e-324 and the product is
       taken 2^-1074 smaller again, which leaves an infinity and takes any
       finite product (at most 2^-50) to 0.  (The stand-in alone overstated
       a finite term: Poly-1's float32 loss under weights [1.5e-323, 1e308]
       was inf for 1.3e-149.  A select on the loss's infinity kept GCC from
       vectorising varifocal's and FL*'s block loops, and the rule written
       with && and a second select made them 4 to 6 times slower.) */
    int scale_lost = loss_scale.hi == 0.0;
    loss_scale.hi = scale_lost ? 0x1p-1074 : loss_scale.hi;
    double lost_back = scale_lost ? 0x1p-1074 : 1.0;
    *loss = zero ? 0.0
                 : dd_mul_rounded(v.loss, loss_scale, precise) * loss_drop * loss_drop_more *
                       lost_back;
    /* The gradient g w / D (w: the weighted scale, D the divisor), with
       g w formed smaller or larger by exact powers of two where it would
       leave the range on the way, and the quotient scaled back:
       - float64 results, by the product's own size: 2^600 smaller above
         2^960, 2^1200 smaller above 2^1560, so that a gradient D brings back
         is not lost to an overflow (g = 5e299 from varifocal's alpha 1e300,
         w = D = 1e10, was inf); shrunk only there, the quotient is never
         subnormal on the way (shrinking by w's size took digits from
         g w / D = 6e-304, w = D = 1e300).  2^600 larger below 2^-900 (g =
         1e-304 times w = 2^-52 went subnormal before D = 2^-52 brought it
         back: 4e-5 off); neither w 2^600 nor the quotient can overflow then.
       - float32 results, 2^600 smaller where w exceeds 2^960: two operations
         fewer an element (5 to 10% of a descendant's loop); a quotient it
         takes below the normal range is 0 as a float32.  g w overflows
         unshrunk only where it exceeds 2^1024 while g w / D stays below
         2^128, which needs D > 2^896 (FOCAL_HUGE_DIVISOR; the careful loop):
         there, by the product's size too (varifocal's alpha 1.7e308, w =
         2, D = 1.7e308: inf for 1.54, review 92).
       A product in range takes the same operations as without. */
    double product = fabs(v.grad.hi * grad_scale.hi);
    int huge = precise ? product > 0x1p960 /* (inf: g w overflowed) */
                       : (grad_scale.hi > 0x1p960) |
                             (careful & (bp->grad_divisor > FOCAL_HUGE_DIVISOR) &
                              (product > 0x1p960));
    /* g w 2^600 larger below 2^-900, 2^1200 larger below 2^-1500 (tested
       that much larger: a product that underflowed to 0 is small too, g =
       8e-304 times w = 1e-21 gave 0 for 4e-291 over D = 2e-34, g = 6e-261
       times w = 1e-250 0 for 6e-261 over D = 1e-250; a zero g is not, 0
       times w 2^600 was NaN).  Then g is below 2^-300 or w below 2^-426, and
       w 2^1200 cannot overflow.  Float32 results instead take g w 2^600
       larger over a divisor below 2^-400 (FOCAL_TINY_DIVISOR: such calls
       weigh carefully, and the plain loops carry none of this) where w is
       below 2^-300 and not
       lifted already (w 2^600 finite, 0 times it 0; two lifts took a normal
       result past the double range before D): g = 1.5e-78 times w = 1e-250 gave 0 for
       1.5e-28 over D = 1e-300.  A float32 result below 2^128 is then below
       2^728 before it is scaled back.  (No test of each product there: it
       kept the asymmetric loss's float32 loop from vectorising, 3.5 times
       slower.) */
    double lifted_product = fabs(v.grad.hi) * 0x1p600 * grad_scale.hi;
    int small = precise & (v.grad.hi != 0.0) & (lifted_product < 0x1p-300);
    int smaller = small & (lifted_product < 0x1p-900);
    int tiny = careful && !precise && bp->grad_divisor < FOCAL_TINY_DIVISOR &&
               unlifted * bp->grad_scale_ratio >= 0x1p-960 && grad_scale.hi < 0x1p-300;
    double tiny_divisor = tiny ? 0x1p600 : 1.0, tiny_back = tiny ? 0x1p-600 : 1.0;
    double shrink = huge ? 0x1p-600 : small ? 0x1p600 : 1.0;
    int farther = precise && fabs(v.grad.hi * 0x1p-600 * grad_scale.hi) > 0x1p960;
    /* (a product of two selects, farther and smaller being exclusive: the
       nested select put control flow in the loop, which then did not
       vectorise, float64's loops 3.5 times slower) */
    double shrink_more = (farther ? 0x1p-600 : 1.0) * (smaller ? 0x1p600 : 1.0);
    dd grad_shrunk = {grad_scale.hi * shrink * shrink_more * tiny_divisor,
                      grad_scale.lo * shrink * shrink_more * tiny_divisor};
    dd grad_weighted = dd_mul(v.grad, grad_shrunk, precise);
    /* The factors 2^-600 that bring g w back (a small product's, the lifts'
       drops) are, for float64 results, folded into the divisor one by one
       while it stays finite (exact: powers of two), so that the quotient is
       rounded once and cannot overflow where the result does not (alpha_t w
       = 2.5e-301, lifted, over D = 1e-250: inf for 4.7e248); those left
       apply to the quotient, one after another.  Float32 results multiply by
       1 / D and apply them all after: there two of them mean a result below
       2^-426, 0 as a float32, and one overflows nothing a float32 holds.
       (A loop GCC unrolls, of selects only: a count of the factors, or `|`
       of their flags, kept float64's loops from vectorising, 3.5 times
       slower.) */
    double divisor = bp->grad_divisor;
    double after[4];
    const int downs[4] = {small, smaller, lift_grad, lift_more};
    for (int k = 0; k < 4; k++) {
        double folded = divisor * (downs[k] ? 0x1p600 : 1.0);
        int fold = precise && folded < HUGE_VAL;
        after[k] = fold ? 1.0 : downs[k] ? 0x1p-600 : 1.0;
        divisor = fold ? folded : divisor;
    }
    /* plain mode multiplies by 1 / divisor, unless that reciprocal overflows */
    double grad_normalised = (precise || !isfinite(bp->grad_scale)
                                  ? dd_divide_double(grad_weighted, divisor, precise)
                                  : grad_weighted.hi * bp->grad_scale) *
                             (huge ? 0x1p600 : 1.0) * (farther ? 0x1p600 : 1.0) * after[0] *
                             after[1] * after[2] * after[3] * tiny_back;
    /* a product beyond the double range even so: the double-double's error
       term is inf - inf, NaN, where the plain product is the infinity the
       result is.  An infinite g is that infinity as it is (shrunk twice,
       a weight near 1 underflowed to 0, and inf times 0 was NaN: varifocal's
       alpha 1.7e308 at x = 2).  careful, a constant of the loop, is
       0 only where that select cannot change a result (weigh_carefully):
       it cost Poly-1's and varifocal's float32 loops 2.7 instructions an
       element. */
    if (careful) {
        double beyond = isinf(v.grad.hi) ? v.grad.hi : v.grad.hi * grad_shrunk.hi;
        grad_normalised = isinf(beyond) ? beyond : grad_normalised;
    }
    *grad = zero ? 0.0 : grad_normalised;
    *hess = zero ? 0.0 : v.hess * grad_scale.hi * drop * drop_more;
}

/*
 * Whether weigh_element runs carefully: its select keeping an infinite
 * unweighted gradient (or a product beyond the double range) infinite, and
 * for float32 results its lift of a tiny weighted scale.  Float64 results
 * always do (the double-double's error term of an infinity is NaN; a lift or
 * a second shrink may take the weighted scale to 0).  For float32 results
 * (plain products) an infinity can turn into NaN only through a weighted
 * scale of 0 from a positive one, which needs grad_scale_ratio < 1 (extreme
 * weights): with a ratio >= 1 the scale is at least alpha_t w > 0 (shrunk
 * at most to 2^360), the normaliser's reciprocal is positive, the quotient
 * by a finite divisor of an infinity is infinite, and the other factors are
 * powers of two; a zero alpha_t w gives 0 either way.  The lift matters
 * for a row whose parameters make `large` values (focal_params), and for a
 * divisor below FOCAL_TINY_DIVISOR, which brings a weighted scale below 2^-960 back into
 * float32's range (w = D = 2^-1074 beside w = 2^1023 in one call, where the
 * reductions' scale cannot fold the weights' size into D: 0 for 0.22); its
 * shrink of a product beyond the double range, for a divisor above
 * FOCAL_HUGE_DIVISOR.
 */
static inline int
weigh_carefully(const block_params *bp, int precise)
{
    return precise || !(bp->grad_scale_ratio >= 1.0) || bp->focal.large ||
           bp->grad_divisor < FOCAL_TINY_DIVISOR || bp->grad_divisor > FOCAL_HUGE_DIVISOR;
}

/*
 * weigh_element for float32 results of hard targets (y in {0, 1}) inside the
 * block loop, where the logit is finite and so are the unweighted values: the
 * same results with fewer operations.  alpha_t is a select (equal to the
 * formula for y in {0, 1}), and a zero scale is the only zero test left (a
 * weight of 0 gives one).  The loss-only kernels (derivatives = 0) write no
 * gradient and no second derivative, and the gradient kernels no second
 * derivative: no one reads them.  grad_mode: see block_params.  unit_scales
 * (a constant of the loop, weight_scales_unit): the reductions' weight
 * scales are all 1, and their products, exact, are left out (the loop is
 * bound by multiplications).
 */
FOCAL_INLINE void
weigh_finite_plain(const block_params *bp, focal_values v, double y, double alpha,
                   double weight, double *loss, double *grad, double *hess, int derivatives,
                   int grad_mode, int unit_scales)
{
    double alpha_t = y == 1.0 ? alpha : 1.0 - alpha;
    /* the reductions' weight scales as in weigh_element (exact products by
       powers of two, 1 but for extreme weights) */
    double weight_up = unit_scales ? weight : weight * bp->weight_scale_up;
    double scale = bp->has_alpha ? alpha_t * weight_up : weight_up;
    int zero = scale == 0.0;
    *loss = zero ? 0.0 : v.loss.hi * (unit_scales ? scale : scale * bp->loss_scale_down);
    if (derivatives >= FOCAL_OUT_GRAD) {
        /* the normaliser enters the weight: one rounding of the gradient.
           Divided (a mode few calls take), g w is formed 2^600 smaller
           where the product itself would exceed 2^960 and the quotient
           scaled back, as weigh_element does for float64 results: |g| may
           exceed 1, and g w overflowed where g w / D is finite. */
        double divided_scale = scale * bp->grad_scale_ratio;
        int huge = fabs(v.grad.hi * divided_scale) > 0x1p960;
        double shrink = huge ? 0x1p-600 : 1.0, grow = huge ? 0x1p600 : 1.0;
        double grad_normalised =
            grad_mode == FOCAL_GRAD_FOLDED
                ? v.grad.hi * (scale * bp->grad_factor)
                : v.grad.hi * (divided_scale * shrink) / bp->grad_divisor * grow;
        *grad = zero ? 0.0 : grad_normalised;
    }
    if (derivatives >= FOCAL_OUT_HESS) {
        *hess = zero ? 0.0 : v.hess * (unit_scales ? scale : scale * bp->grad_scale_ratio);
    }
}

/* whether the reductions' weight scales (block_params) are all 1: every
   call but those with extreme weights */
static inline int
weight_scales_unit(const block_params *bp)
{
    return bp->weight_scale_up == 1.0 && bp->loss_scale_down == 1.0 &&
           bp->grad_scale_ratio == 1.0;
}

/*
 * Running sums in FOCAL_LANES interleaved compensated accumulators: element
 * number g of the whole iteration always goes to lane g mod FOCAL_LANES, so
 * the totals do not depend on how NumPy's iterator cut the data into inner
 * loops, and the loop over lanes vectorises.
 */
typedef struct {
    double sum[FOCAL_LANES];
    double compensation[FOCAL_LANES];
} lane_sum;

FOCAL_INLINE void
lane_add_one(lane_sum *acc, ptrdiff_t lane, double value, int compensated)
{
    if (!compensated) {
        acc->sum[lane] += value;
        return;
    }
    /* Knuth's two-sum: the rounding error of s + value, exactly, with no
       comparison */
    double s = acc->sum[lane];
    double t = s + value;
    double value_part = t - s;
    acc->compensation[lane] += (s - (t - value_part)) + (value - value_part);
    acc->sum[lane] = t;
}

#if defined(__GNUC__)
/* Groups of FOCAL_LANES elements as vectors of the level's register width
   (GCC/Clang vector extension): the same two-sum, lane by lane, in registers,
   independent chains.  Compilers do not find this by themselves through the
   struct's arrays.  The width must be the level's own (its file defines
   FOCAL_LEVEL_VECTOR_BYTES; 16 is every baseline's): a vector wider than
   the registers is lowered through the stack, 8 instructions an element at
   AVX2 instead of 2.  The lanes and their additions, hence the bits, are the
   same at every width. */
#ifndef FOCAL_LEVEL_VECTOR_BYTES
#define FOCAL_LEVEL_VECTOR_BYTES 16
#endif
typedef double lane_vector __attribute__((vector_size(FOCAL_LEVEL_VECTOR_BYTES)));
enum { LANE_WIDTH = FOCAL_LEVEL_VECTOR_BYTES / sizeof(double),
       LANE_VECTORS = FOCAL_LANES / LANE_WIDTH };

FOCAL_INLINE void
lane_add_groups(lane_sum *acc, const double *values, ptrdiff_t groups, int compensated)
{
    lane_vector s[LANE_VECTORS], c[LANE_VECTORS];
    memcpy(s, acc->sum, sizeof s);
    memcpy(c, acc->compensation, sizeof c);
    for (ptrdiff_t g = 0; g < groups; g++) {
        for (int k = 0; k < LANE_VECTORS; k++) {
            lane_vector x;
            memcpy(&x, values + FOCAL_LANES * g + LANE_WIDTH * k, sizeof x);
            lane_vector t = s[k] + x;
            if (compensated) { /* a constant */
                lane_vector part = t - s[k];
                c[k] += (s[k] - (t - part)) + (x - part);
            }
            s[k] = t;
        }
    }
    memcpy(acc->sum, s, sizeof s);
    memcpy(acc->compensation, c, sizeof c);
}
#else
FOCAL_INLINE void
lane_add_groups(lane_sum *acc, const double *values, ptrdiff_t groups, int compensated)
{
    for (ptrdiff_t g = 0; g < groups; g++) {
        for (ptrdiff_t lane = 0; lane < FOCAL_LANES; lane++) {
            lane_add_one(acc, lane, values[FOCAL_LANES * g + lane], compensated);
        }
    }
}
#endif

/* adds values[0..n) as elements first_index, first_index + 1, ... */
FOCAL_INLINE void
lane_add(lane_sum *acc, const double *values, ptrdiff_t n, ptrdiff_t first_index,
         int compensated)
{
    ptrdiff_t i = 0;
    for (; i < n && ((first_index + i) % FOCAL_LANES) != 0; i++) {
        lane_add_one(acc, (first_index + i) % FOCAL_LANES, values[i], compensated);
    }
    ptrdiff_t groups = (n - i) / FOCAL_LANES;
    lane_add_groups(acc, values + i, groups, compensated);
    i += groups * FOCAL_LANES;
    for (; i < n; i++) {
        lane_add_one(acc, (first_index + i) % FOCAL_LANES, values[i], compensated);
    }
}

/* the lanes times a power of two, exactly (as long as nothing underflows) */
static inline lane_sum
lane_scaled(const lane_sum *acc, double scale)
{
    lane_sum r;
    for (ptrdiff_t lane = 0; lane < FOCAL_LANES; lane++) {
        r.sum[lane] = acc->sum[lane] * scale;
        r.compensation[lane] = acc->compensation[lane] * scale;
    }
    return r;
}

/* the lanes combined in a fixed order; an infinite or NaN sum stays so */
static inline compensated_sum
lane_total(const lane_sum *acc)
{
    compensated_sum total = {0.0, 0.0};
    double plain = 0.0;
    for (ptrdiff_t lane = 0; lane < FOCAL_LANES; lane++) {
        plain += acc->sum[lane];
    }
    if (!isfinite(plain)) {
        total.sum = plain;
        return total;
    }
    /* compensated_add's additions (the same partial sums as plain's, all
       finite), each with its rounding error by Knuth's two-sum (numeric.h),
       which is exact as compensated_add's is: the same bits, without its
       branch on the operands' sizes, which mispredicts about every other
       lane (32 dependent steps of it were a twentieth of a 1,000-element
       call) */
    for (ptrdiff_t lane = 0; lane < FOCAL_LANES; lane++) {
        dd step = two_sum(total.sum, acc->sum[lane], 1);
        total.compensation += step.lo;
        total.sum = step.hi;
    }
    for (ptrdiff_t lane = 0; lane < FOCAL_LANES; lane++) {
        total.compensation += acc->compensation[lane];
    }
    return total;
}

/* what a chunk of elements adds up, lane by lane; loss_small is the sum of
   the losses times FOCAL_SMALL_SUM, exactly, which stays finite where a sum
   of losses near 1e308 overflows (whose mean, say, does not).  It is kept
   only from the first block holding a loss above FOCAL_LARGE_LOSS on (before
   that, the plain sum scaled is the same): no sum of fewer than 2^64 smaller
   losses overflows. */
typedef struct {
    lane_sum loss, weight, positive, loss_small;
} block_sums;

#define FOCAL_SMALL_SUM 0x1p-64
#define FOCAL_LARGE_LOSS 0x1p959

/* which running sums a call keeps (the others are known before the pass) */
enum { SUM_LOSS = 1, SUM_WEIGHT = 2, SUM_POSITIVE = 4, SUM_LOSS_SMALL = 8 };

/* whether any loss of the block is above FOCAL_LARGE_LOSS, or NaN */
FOCAL_INLINE int
any_large_loss(const element_block *b, ptrdiff_t n)
{
    /* a 64-bit flag, as wide as the doubles compared: an int flag makes the
       vectorised loop pack every comparison down to 32 bits */
    long long large = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        large |= !(b->loss[i] <= FOCAL_LARGE_LOSS);
    }
    return large != 0;
}

/* adds the block's elements, numbered from first_index, to the running sums
   `which`; *small_sums becomes SUM_LOSS_SMALL at the first large loss.
   compensated (a constant): two-sums, for float64 results; float32 results
   take plain sums.  Every term is >= 0 (losses, weights, targets), so a
   lane's plain sum over a chunk (2,048 terms of one lane in a chunk of 2^16
   elements; the chunks' totals are merged compensated) is within 2^11 units
   of 2^-53 of the exact sum, relatively: 2^-42, a 2^-18 part of a float32
   ULP.  The two-sum's four extra operations a vector cost a float32
   forward a tenth of its time (one core, in cache: 2.41 to 2.14 ns per
   element without them). */
FOCAL_INLINE void
accumulate_block(block_sums *sums, const element_block *b, ptrdiff_t n, ptrdiff_t first_index,
                 int which, int *small_sums, int compensated)
{
    if ((which & SUM_LOSS) && !*small_sums && any_large_loss(b, n)) {
        /* from here on, keep the scaled sum too */
        *small_sums = SUM_LOSS_SMALL;
        sums->loss_small = lane_scaled(&sums->loss, FOCAL_SMALL_SUM);
    }
    which |= *small_sums;
    if (which & SUM_LOSS) {
        lane_add(&sums->loss, b->loss, n, first_index, compensated);
    }
    if (which & SUM_LOSS_SMALL) {
        double small[FOCAL_BLOCK];
        for (ptrdiff_t i = 0; i < n; i++) {
            small[i] = b->loss[i] * FOCAL_SMALL_SUM;
        }
        lane_add(&sums->loss_small, small, n, first_index, compensated);
    }
    if (which & SUM_WEIGHT) {
        lane_add(&sums->weight, b->weight, n, first_index, compensated);
    }
    if (which & SUM_POSITIVE) {
        lane_add(&sums->positive, b->y, n, first_index, compensated);
    }
}

#endif  /* FOCAL_ELEMENT_BLOCK_H */

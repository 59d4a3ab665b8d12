/*
 * softmax_focal.h: the multi-class (softmax) focal loss of one row.
 *
 * For logits z_1..z_C, p = softmax(z) and per-class weights a_c y_c (y a
 * one-hot row, or a label-smoothed one):
 *   FL = sum_c a_c y_c (1 - p_c)^gamma L_c,   L_c = -log p_c.
 *
 * Everything is written with m = max z, E_j = e^(z_j - m) <= 1 and
 * S = sum E_j = 1 + rest, where rest sums every E_j but the argmax's:
 *   L_c     = log1p(rest) + (m - z_c)          both terms >= 0
 *   1 - p_c = O_c / S, O_c = S - E_c            the other classes' share,
 *                                               never 1 minus a rounded p_c
 * so no spread of logits overflows and nothing cancels.  The gradient,
 * with G_c = a_c y_c (1 - p_c)^gamma (gamma h_c + 1), h_c = p_c L_c / (1 - p_c):
 *   dFL/dz_j = p_j (sum_c G_c - G_j) - G_j (1 - p_j).
 * h_c = (E_c / O_c) L_c stays finite when 1 - p_c vanishes (for the argmax,
 * h = log1p(rest) / rest -> 1), which is what keeps gamma < 1 free of NaN.
 *
 * The diagonal of the hessian, for a row of class c (weight a = a_c, q = 1 - p_c,
 * r_j = p_j / q = E_j / O_c <= 1 the share of class j among the others):
 *   d2FL/dz_c^2 = q (p_c G_c - P_c)
 *   d2FL/dz_j^2 = p_j ((1 - p_j) G_c - r_j P_c)      j != c
 *   P_c = a gamma q^gamma ((1 - gamma) p_c h_c + p_c L_c - 2 p_c).
 * This is a [p_j (1 - p_j) G - p_c e_j^2 G'] with e_j = [j = c] - p_j and
 * G(p_c) = q^(gamma - 1) (gamma p_c L_c + q), whose derivative in p_c is
 * G' = gamma q^(gamma - 1) ((1 - gamma) h_c + L_c - 2): the negative powers of q
 * in G' cancel against e_j^2 (q^2 for j = c, p_j^2 = r_j^2 q^2 otherwise),
 * and p_c L_c <= 1/e where L_c alone may be near the double range, so every
 * factor stays bounded for gamma >= 0.  At gamma 0, P = 0 and the diagonal
 * is a p_j (1 - p_j), softmax cross-entropy's.
 *
 * Every function takes `precise` (float64 results: double-double) and most
 * take `accurate`, constants at each call site: 0 for float32 results, else
 * one of the two forms below, which keep the E_j in double-double (e and
 * e_low), their sums S and rest as a compensated pair (softmax_add_rest), and
 * G_c and the gradient in double-double, rounded once.
 * FOCAL_ROWS_ACCURATE (float64 results at gamma > FOCAL_POWER_BY_LOG, and
 * the gradient of a row whose component cancels, softmax_gradient_cancelled,
 * but the first recomputation of float32 results up to gamma
 * FOCAL_POWER_BY_LOG, which takes the careful form) takes what q^gamma is
 * made of to about 2^-100: the E_j from exp_accurate, log S and
 * log(1 - p_c) with one Newton step (see power_of_one_minus_p).
 * (softmax_kernels.c compiles the accurate softmax_exponentials_piece for
 * each instruction set: most of its cost.)  FOCAL_ROWS_CAREFUL (float64
 * results at gamma <= FOCAL_POWER_BY_LOG, and the first recomputation of
 * float32 results there) takes the E_j of exp_fine, good to about 2^-76,
 * and q^gamma from them to that accuracy (careful_power); with the E_j of
 * exp_series (2^-59) and log S to 2^-56 its gradient near a component's
 * zero, where two terms cancel, kept 2^-57 of their size (up to 1,000 ULP
 * at 2^-14 of it; rows are computed again below 2^-18 of it now, see
 * softmax_gradient_cancelled).  Kept in double only, the E_j and G_c took
 * the float64 loss to 2.6 ULP and the gradient to 4.3 (two classes at gamma
 * 3 and 4): gamma times the share p_c of the class multiplies the E_j's
 * rounding in q^gamma.
 */
#ifndef FOCAL_SOFTMAX_FOCAL_H
#define FOCAL_SOFTMAX_FOCAL_H

#include <stddef.h>

#include "numeric.h"
#include "vector_math.h"

/* the double-double forms of the rows (`accurate`, above) */
enum { FOCAL_ROWS_ACCURATE = 1, FOCAL_ROWS_CAREFUL = 2 };

/* the exponential of each form (vector_math.h): the accurate rows' to
   2^-100, the careful rows' to 2^-76, the float32 results' exp_series */
FOCAL_INLINE int
softmax_exp_form(int accurate)
{
    return accurate == FOCAL_ROWS_ACCURATE ? EXP_ACCURATE
           : accurate == FOCAL_ROWS_CAREFUL ? EXP_FINE
                                            : EXP_SERIES;
}

FOCAL_INLINE dd
softmax_exp(dd a, int precise, int accurate)
{
    return accurate == FOCAL_ROWS_ACCURATE  ? exp_accurate(a)
           : accurate == FOCAL_ROWS_CAREFUL ? exp_fine(a)
                                            : exp_nonpositive(a, precise);
}

/* The row's shape, computed once: m, its argmax, rest = S - 1 and the E_j
   (e_low: scratch of n doubles). */
typedef struct {
    double max;
    ptrdiff_t argmax;
    dd rest;
    int has_nan;
} softmax_row_shape;

/*
 * A row too long to hold is read in pieces, in three steps (a row held whole
 * is one piece): softmax_scan_max over every piece (or a kernel's largest
 * logit and softmax_merge_max; the first piece starts the shape with its
 * first logit), then softmax_exponentials_piece and
 * softmax_add_rest over every piece, then softmax_row_finish.  The
 * operations, and their order, are those of one pass over the whole row, so
 * the results are the same bits however the row is cut.
 */
FOCAL_INLINE softmax_row_shape
softmax_row_start(double z0)
{
    softmax_row_shape row = {z0, 0, {0.0, 0.0}, 0};
    return row;
}

/* z holds logits first, first + 1, ... of the row */
FOCAL_INLINE void
softmax_scan_max(softmax_row_shape *row, const double *z, ptrdiff_t n, ptrdiff_t first)
{
    double max = row->max;
    ptrdiff_t argmax = row->argmax;
    int has_nan = row->has_nan;
    for (ptrdiff_t j = 0; j < n; j++) {
        if (z[j] != z[j]) {
            has_nan = 1;
        }
        else if (z[j] > max || max != max) {
            max = z[j];
            argmax = first + j;
        }
    }
    row->max = max;
    row->argmax = argmax;
    row->has_nan = has_nan;
}

/* softmax_scan_max from what a vectorised kernel found of z[0..n): the
   largest logit that is not NaN (NaN where none is) and whether one is NaN.
   The same maximum and argmax: the first class that holds the maximum (of
   two zeros, the first, whatever the sign), an earlier piece's on a tie. */
FOCAL_INLINE void
softmax_merge_max(softmax_row_shape *row, const double *z, ptrdiff_t n, ptrdiff_t first,
                  double largest, int has_nan)
{
    row->has_nan |= has_nan;
    if (largest == largest && (largest > row->max || row->max != row->max)) {
        for (ptrdiff_t j = 0; j < n; j++) {
            if (z[j] == largest) {
                row->max = z[j];
                row->argmax = first + j;
                return;
            }
        }
    }
}

/* E_j of the logits z[0..n), once the maximum is known; with `precise` and an
   e_low (scratch of n doubles, NULL where the sum is not taken; never NULL
   with `accurate`), what rounding each E_j to a double drops */
FOCAL_INLINE void
softmax_exponentials_piece(const softmax_row_shape *row, const double *z, double *e,
                           double *e_low, ptrdiff_t n, int precise, int accurate)
{
    const double max = row->max;
    /* The exact difference z_j - m enters exp (an infinite one gives 0).
       What rounding E_j to a double drops (e_low) is summed too, so that
       rest keeps the double-double digits of the exponentials: 1 - p_c may
       be raised to a large gamma, which multiplies its relative error. */
    for (ptrdiff_t j = 0; j < n; j++) {
        dd difference = two_sum(z[j], -max, precise);
        dd value = softmax_exp(difference, precise, accurate);
        e[j] = value.hi + value.lo;
        if (accurate || (precise && e_low != NULL)) { /* accurate, precise: constants */
            e_low[j] = (value.hi - e[j]) + value.lo;
        }
    }
    /* z_j = m is exactly e^0: a finite m's difference 0 gives it (each form
       gives 1 and a low part of 0), an infinite m's NaN is replaced here.
       (A select in the loop above made GCC compute exp_fine under a
       condition, whose table load it then did not vectorise.) */
    if (isinf(max)) {
        for (ptrdiff_t j = 0; j < n; j++) {
            if (z[j] == max) {
                e[j] = 1.0;
                if (accurate || (precise && e_low != NULL)) {
                    e_low[j] = 0.0;
                }
            }
        }
    }
}

/* adds the E_j of classes first, first + 1, ... but the argmax's to `rest`,
   and (precise) their dropped parts e_low to `dropped`.  For positive terms
   the pair's error is about n 2^-106 of the sum (n terms): small enough for
   the accurate rows too (2^-86 at a million classes) */
FOCAL_INLINE void
softmax_add_rest(compensated_sum *rest, double *dropped, const softmax_row_shape *row,
                 const double *e, const double *e_low, ptrdiff_t n, ptrdiff_t first, int precise)
{
    const ptrdiff_t argmax = row->argmax - first;
    compensated_sum sum = *rest; /* locals: the stores into e cannot alias them */
    double low = *dropped;
    for (ptrdiff_t j = 0; j < n; j++) {
        if (j != argmax) {
            if (precise) {
                compensated_add(&sum, e[j]);
                low += e_low[j];
            }
            else {
                sum.sum += e[j];
            }
        }
    }
    *rest = sum;
    *dropped = low;
}

FOCAL_INLINE void
softmax_row_finish(softmax_row_shape *row, compensated_sum rest, double dropped, int precise)
{
    row->rest = fast_two_sum(rest.sum, rest.compensation + dropped, precise);
}

/*
 * The functions below index the classes of the arrays they are given from 0;
 * for a piece that starts at class `first`, pass them a copy of the shape
 * whose argmax is counted from the piece (softmax_shift).
 */
FOCAL_INLINE softmax_row_shape
softmax_shift(const softmax_row_shape *row, ptrdiff_t first)
{
    softmax_row_shape shifted = *row;
    shifted.argmax -= first;
    return shifted;
}

/* O_c = S - E_c = the sum of the other classes' E_j, >= 1 unless c is the
   argmax; e_low: the E_j's low parts (accurate), else NULL */
FOCAL_INLINE dd
others_share(const softmax_row_shape *row, const double *e, const double *e_low, ptrdiff_t c,
             int precise)
{
    /* (the sum formed for the argmax too, and dropped: without a branch the
       loops over the classes that call this vectorise) */
    dd minus_e = {-e[c], e_low != NULL ? -e_low[c] : 0.0};
    dd others = dd_add(dd_add(row->rest, minus_e, precise), dd_from(1.0), precise);
    const int argmax = c == row->argmax;
    others.hi = argmax ? row->rest.hi : others.hi;
    others.lo = argmax ? row->rest.lo : others.lo;
    return others;
}

/* log(1 - p) of a class other than the argmax for FOCAL_ROWS_CAREFUL (p <=
   1/2): log1p_small, whose series is good to 2^-44 only as p nears 1/2, and
   a Newton step by exp_fine (log_step) */
FOCAL_INLINE dd
careful_log_one_minus_p(dd p)
{
    dd log_q = log1p_small(dd_negate(p), 1, 0);
    return log_step(log_q, dd_add(dd_from(1.0), dd_negate(p), 1), EXP_FINE);
}

/*
 * (1 - p_c)^gamma for gamma > FOCAL_POWER_BY_LOG, as e^(gamma log(1 - p_c)).
 * gamma multiplies the relative error of 1 - p_c: O_c / S carries the
 * rounding of E_c to a double (2^-53 p_c), harmless up to gamma 8, 100 ULP at
 * gamma 1000.  And dd_power corrects pow(q_hi, gamma) by gamma q_lo / q_hi
 * to first order only: where q_hi rounds to 1 (p_c < 2^-53) that correction
 * took any value at huge gamma (a loss of -1e284 at gamma 1e300) while in
 * double q_hi^gamma = 1.  So the log is taken of what is known in
 * double-double:
 *   log(1 - p_c) = log(rest) - log S            for the argmax (1 - p = rest / S)
 *   log(1 - p_c) = log1p(-E_c / S)              otherwise, E_c / S <= 1/2,
 * and gamma log(1 - p_c) below -1500 gives 0.  Without `accurate` E_c is
 * computed again in double-double; rest and S are sums of the exp_series
 * values, good to about 2^-57, and the logs to 2^-56, which gamma still
 * multiplies: up to 370 ULP in float64 where q^gamma nears underflow.  With
 * FOCAL_ROWS_ACCURATE (float64 results), E_c (e_c), rest and S are exp_accurate's
 * values summed in double-double, and the log takes one Newton step
 * (log_step), all to about 2^-100, and so does the exp.  A q below
 * e^-700 (whose e^-log q would overflow in that step) keeps its first log:
 * at gamma > 8, q^gamma is then below e^-5600, which gives 0 all the same.
 * FOCAL_ROWS_CAREFUL: E_c, rest and S from exp_fine (2^-76), the log's
 * Newton step and the exp by exp_fine, all to about 2^-76 (careful_power).
 */
#define FOCAL_POWER_BY_LOG 8.0

/* (1 - p_c)^gamma = e^scaled, scaled = gamma log(1 - p_c) in [-1500, 0]:
   below e^-700 as q^g 2^1000 (as in sigmoid_focal), since gamma h
   multiplies it back into the normal range, and a subnormal has few digits */
FOCAL_INLINE dd
power_of_exponent(dd scaled, int *boosted, int precise, int accurate)
{
    *boosted = scaled.hi < -700.0;
    if (*boosted) {
        scaled = add_ln2_multiple(scaled, 1000.0, precise);
    }
    return softmax_exp(scaled, precise, accurate);
}

FOCAL_INLINE dd
power_of_one_minus_p(const softmax_row_shape *row, const double *z, ptrdiff_t c, dd e_c,
                     dd total, double gamma, int *boosted, int precise, int accurate)
{
    const int argmax = c == row->argmax;
    dd p = dd_from(0.0); /* (unused by the argmax, whose 1 - p is rest / S) */
    if (!argmax) {
        if (!accurate) {
            /* z_c = m is exactly e^0, as in softmax_exponentials_piece: a
               class tied with an infinite m has z_c - m NaN (once the loss
               of the second of two +inf classes at gamma > 8 in float32) */
            e_c = z[c] == row->max ? dd_from(1.0)
                                   : exp_nonpositive(two_sum(z[c], -row->max, precise), precise);
        }
        p = dd_divide(e_c, total, precise);
    }
    dd log_q;
    /* 1 - p = O_c / S for the argmax (O_c = rest), and in the accurate form
       for a class of p above 1/4 too, where log1p_small's series is good to
       2^-44 only (as p nears 1/2), which one Newton step took to 2^-84: two
       classes tied at the maximum of [70, 70, 0], targets [1/2, 1/2, 1e-30],
       gamma 9, had gradients of 1.8e-28 and -1.8e-28 for 5.0e-31 each.  (The
       same operations for a class tied with the argmax as for it: their
       values stay equal.) */
    if (argmax || (accurate == FOCAL_ROWS_ACCURATE && p.hi > 0.25)) {
        dd others = argmax ? row->rest
                           : dd_add(dd_add(row->rest, dd_negate(e_c), 1), dd_from(1.0), 1);
        if (!(others.hi > 0.0)) {
            return dd_from(0.0); /* 1 - p = 0 */
        }
        dd q = dd_divide(others, total, precise);
        log_q = log_positive(q, precise);
        if (accurate && log_q.hi > -700.0) {
            log_q = log_step(log_q, q, softmax_exp_form(accurate));
        }
    }
    else {
        log_q = accurate == FOCAL_ROWS_ACCURATE ? log1p_accurate(dd_negate(p))
                : accurate                      ? careful_log_one_minus_p(p)
                                                : log1p_small(dd_negate(p), precise, 0);
    }
    double plain = gamma * log_q.hi;
    /* q <= 1: a rounding above 0 is clamped, a product below -1500 underflows */
    dd scaled = !(plain > -1500.0) ? dd_from(-1500.0)
                : plain >= 0.0     ? dd_from(0.0)
                                   : dd_scale(log_q, gamma, precise);
    return power_of_exponent(scaled, boosted, precise, accurate);
}

/* q^n for an integer 0 <= n <= 15 by products in double-double (squaring).
   Four steps whatever n, a product kept by selects: the loop unrolls, and a
   loop over classes around it vectorises (softmax_term_careful). */
FOCAL_INLINE dd
dd_integer_power(dd q, int n)
{
    dd result = dd_from(1.0), base = q;
    for (int bit = 0; bit < 4; bit++) {
        dd product = dd_mul(result, base, 1);
        const int take = (n >> bit) & 1;
        result.hi = take ? product.hi : result.hi;
        result.lo = take ? product.lo : result.lo;
        base = dd_mul(base, base, 1);
    }
    return result;
}

/*
 * (1 - p_c)^gamma for FOCAL_ROWS_CAREFUL, gamma <= FOCAL_POWER_BY_LOG: pow
 * rounds q_hi^gamma once more before the loss is rounded (1.4 ULP in float64
 * with the E_j in double-double), so an integer gamma takes products in
 * double-double; another gamma, or a q below 2^-100 (whose products' low
 * parts would leave the normal range), power_of_one_minus_p's log and exp of
 * the double-double E_c, rest and S, each log(1 - p_c) with a Newton step by
 * exp_fine (log_step): within an absolute 2^-76 or so, which gamma <= 8
 * multiplies into a relative 2^-73 of q^gamma (by exp_series, 2^-56 of it
 * kept the gradients of gamma 0.5 and 1.5 up to 181 ULP off near their
 * zeros, once the E_j and log S were good to 2^-76).
 */
FOCAL_INLINE dd
careful_power(const softmax_row_shape *row, const double *z, ptrdiff_t c, dd e_c, dd total,
              dd one_minus_p, double gamma, int *boosted, int accurate)
{
    if (gamma == floor(gamma) && one_minus_p.hi >= 0x1p-100) {
        return dd_integer_power(one_minus_p, (int)gamma);
    }
    return power_of_one_minus_p(row, z, c, e_c, total, gamma, boosted, 1, accurate);
}

/*
 * softmax_class_term's values for float32 results (plain double) where
 * gamma <= FOCAL_POWER_BY_LOG, m - z_c is finite and the row holds no NaN,
 * without a branch but on gamma, which is the same for every row: a loop of
 * these over a block of rows vectorises (softmax_rows.h), and gives the bits
 * of softmax_class_term, whose operations these are.  `argmax` is 1 when c
 * is the row's first largest class, else 0.
 */
typedef struct {
    double loss;        /* a_c (1 - p_c)^gamma L_c */
    double g;           /* G_c */
    double one_minus_p; /* O_c / S */
} softmax_plain_term;

/* log S of softmax_term_plain, from rest = S - 1 */
FOCAL_INLINE double
softmax_plain_log_total(double rest)
{
    return rest <= 1.0 ? log1p_unit(dd_from(rest), 0).hi : log_positive(dd_from(rest + 1.0), 0).hi;
}

/* softmax_term_plain given its log S (the classes of one row share it) */
FOCAL_INLINE softmax_plain_term
softmax_term_plain_given(double rest, double log_total, double e_c, double max, double z,
                         double argmax, double target_weight, double gamma)
{
    softmax_plain_term r;
    double total = rest + 1.0;
    double others = argmax != 0.0 ? rest : (rest + -e_c) + 1.0;
    r.one_minus_p = others / total;
    double neg_log_p = z != max ? log_total + (max + -z) : log_total;
    double q_gamma = dd_power(dd_from(r.one_minus_p), gamma, 0).hi;
    r.loss = 0.0 + q_gamma * neg_log_p * target_weight;
    double h = argmax != 0.0 ? (!(rest > 0.0) ? 1.0 : log_total / rest)
               : e_c == 0.0  ? 0.0
                             : e_c / others * neg_log_p;
    r.g = target_weight * q_gamma * (gamma * h + 1.0);
    return r;
}

FOCAL_INLINE softmax_plain_term
softmax_term_plain(double rest, double e_c, double max, double z, double argmax,
                   double target_weight, double gamma)
{
    return softmax_term_plain_given(rest, softmax_plain_log_total(rest), e_c, max, z, argmax,
                                    target_weight, gamma);
}

/* log S, S = 1 + rest, in double-double; with `accurate` (either form)
   with one Newton step, to about 2^-100: L_c and h_c take its error, and log
   S to 2^-56 left the float64 gradient of dense targets near a component's
   zero, where its two terms cancel, 2^-61 of their size off (row
   [0.7037030071470394, 0, -1], targets [0.8, 0.1, 0.1]: 2^-61.6 at gamma
   9), and in the careful rows up to 66 ULP at 1/1,500 of them (gamma 3,
   once their exponentials were good to 2^-76).  A rest up to 1 steps on
   rest itself (log1p_step): from S = 1 + rest (log_step) the step left
   2^-106 / rest of log S, relatively, and the argmax's h = log S / rest
   took it to every component's terms. */
FOCAL_INLINE dd
softmax_log_total(const softmax_row_shape *row, int precise, int accurate)
{
    dd total = dd_add(row->rest, dd_from(1.0), precise);
    dd log_total = row->rest.hi <= 1.0 ? log1p_unit(row->rest, precise)
                                       : log_positive(total, precise);
    if (!accurate) {
        return log_total;
    }
    return row->rest.hi <= 1.0 ? log1p_step(log_total, row->rest)
                                : log_step(log_total, total, 1);
}

/* A class's target weight a_c = alpha_c y_c as its two factors, the larger
   first (both in [0, 1]; both 0 where either is).  Float64 results take
   (1 - p_c)^gamma times the first factor, and the values made from it times
   the second: a product below the normal range is rounded once, at the end,
   and a normal one is not rounded before it weighs the term (alpha_c y_c
   formed first was rounded, which took the loss of soft targets under an
   alpha 1.08 ULP off, and a subnormal one kept few digits: target 5e-324
   under alpha 0.91 gave 4.94e-321 for 4.48e-321).  Float32 results take the
   product, the bits of the vectorised rows.  With class indices or without
   alpha the first factor is 1: the values of a single factor. */
typedef struct {
    double first, second;
} target_weight;

FOCAL_INLINE target_weight
target_weight_of(double alpha, double y)
{
    /* (selects, not fmax and fmin, which are calls: target_weights'
       loops vectorise) */
    const int none = alpha == 0.0 || y == 0.0, alpha_first = alpha >= y;
    target_weight a = {none ? 0.0 : alpha_first ? alpha : y, none ? 0.0 : alpha_first ? y : alpha};
    return a;
}

/* a_c as one double (the products of float32 results, the hessian's P_c) */
FOCAL_INLINE double
target_weight_value(target_weight a)
{
    return a.first * a.second;
}

/* (1 - p_c)^gamma times the first factor (float64 results) */
FOCAL_INLINE dd
weigh_power(dd q_gamma, target_weight a, int precise)
{
    return precise ? dd_scale(q_gamma, a.first, 1) : q_gamma;
}

/* a value made from weigh_power's times the second factor (float64
   results), or one made from (1 - p_c)^gamma times a_c (float32) */
FOCAL_INLINE dd
weigh_value(dd v, target_weight a, int precise)
{
    return precise ? dd_scale(v, a.second, 1) : dd_from(v.hi * target_weight_value(a));
}

/* What every form of class c's term is made of, for a finite m - z_c:
   S = 1 + rest, O_c, 1 - p_c = O_c / S, L_c = log S + (m - z_c) and E_c
   (with its low part where `accurate`) */
typedef struct {
    dd total, others, one_minus_p, neg_log_p, e_c;
} softmax_class_parts;

FOCAL_INLINE softmax_class_parts
softmax_parts(const softmax_row_shape *row, const double *z, const double *e,
              const double *e_low, ptrdiff_t c, dd log_total, int precise, int accurate)
{
    softmax_class_parts k;
    k.total = dd_add(row->rest, dd_from(1.0), precise);
    k.others = others_share(row, e, e_low, c, precise);
    k.one_minus_p = dd_divide(k.others, k.total, precise);
    /* (selects of each half, not a branch: softmax_term_careful's loops
       vectorise) */
    dd spread = dd_add(log_total, two_sum(row->max, -z[c], precise), precise);
    const int at_max = z[c] == row->max;
    k.neg_log_p.hi = at_max ? log_total.hi : spread.hi;
    k.neg_log_p.lo = at_max ? log_total.lo : spread.lo;
    k.e_c.hi = e[c];
    k.e_c.lo = accurate ? e_low[c] : 0.0;
    return k;
}

/* the loss term a_c (1 - p_c)^gamma L_c, from weighed = weigh_power of
   (1 - p_c)^gamma, or of (1 - p_c)^gamma 2^1000 where `boosted` */
FOCAL_INLINE dd
softmax_loss_term(dd weighed, dd neg_log_p, target_weight a, int boosted, int precise)
{
    dd term = dd_mul(weighed, neg_log_p, precise);
    term = boosted ? dd_scale(term, 0x1p-1000, precise) : term;
    return weigh_value(term, a, precise);
}

/* h_c = (E_c / O_c) L_c of a class other than the argmax; E_c = 0 (p_c
   underflowed or z_c = -inf) is the limit h = 0 */
FOCAL_INLINE dd
softmax_share_h(const softmax_class_parts *k, int accurate)
{
    dd h = accurate ? dd_mul(dd_divide(k->e_c, k->others, 1), k->neg_log_p, 1)
                    : dd_from(k->e_c.hi / k->others.hi * k->neg_log_p.hi);
    /* (selects of each half, as in softmax_parts) */
    const int none = k->e_c.hi == 0.0;
    h.hi = none ? 0.0 : h.hi;
    h.lo = none ? 0.0 : h.lo;
    return h;
}

/* G_c = a_c q_gamma (gamma h_c + 1) in double-double (the accurate forms),
   weighed as for softmax_loss_term */
FOCAL_INLINE dd
softmax_big_g(dd weighed, dd gamma_h, target_weight a, int boosted)
{
    dd factor = dd_add(gamma_h, dd_from(1.0), 1);
    dd big_g = weigh_value(dd_mul(weighed, factor, 1), a, 1);
    return boosted ? dd_scale(big_g, 0x1p-1000, 1) : big_g;
}

/*
 * gamma p_c 2^600 for a class whose E_c is below 2^-968 (FAINT_SHARE), as
 * e^(log gamma - L_c + 600 log 2).  Its p_c, a quotient of E_c, has fewer
 * digits there than the double-double forms keep, a subnormal one few at
 * all, and 0 below e^-745; a gamma up to 1.8e308 brings gamma p_c back into
 * the normal range, where it is most of the hessian's P_c (gamma p_c L_c,
 * L_c > 670, which is why gamma p_c itself is kept lifted by 2^600), and of
 * gamma h_c and the power's exponent gamma log(1 - p_c) = -gamma p_c (1 +
 * p_c / 2 + ...) at a large gamma: row [0, -744], label 1, gamma 1e300 had
 * a diagonal of -7.33e-21 for -5.69e-21 (p_c = 5e-324 for 8.3e-324), at
 * gamma 2 [0, -720.3] 704 ULP of a subnormal one, and at gamma 1.7e308
 * [0, -720.3] a gradient 1,334 ULP off.  (log gamma by log_by_exponent:
 * of gamma 1.7e308 itself a Newton step's e^-y is subnormal.)
 */
#define FAINT_SHARE 0x1p-968

FOCAL_INLINE dd
softmax_faint_gamma_p(double gamma, dd neg_log_p, int precise, int accurate)
{
    if (!(gamma > 0.0)) {
        return dd_from(0.0);
    }
    dd log_gamma = log_by_exponent(dd_from(gamma), precise,
                                   accurate ? softmax_exp_form(accurate) : NO_LOG_STEP);
    dd lifted = add_ln2_multiple(dd_add(log_gamma, dd_negate(neg_log_p), precise), 600.0, precise);
    return softmax_exp(lifted, precise, accurate);
}

/*
 * Adds class c's term (target weight a = alpha_c y_c) to the row's loss and returns
 * its G_c (in double-double with `accurate`; else its high part alone).
 * `loss` accumulates in double-double.  With `curvature` (NULL where the
 * hessian is not wanted), also stores P_c of the hessian's diagonal.  e_low:
 * the E_j's low parts with `accurate`, else NULL.  known_log_total: the row's
 * softmax_log_total where a caller with many classes has it, else NULL.
 */
FOCAL_INLINE dd
softmax_class_term(const softmax_row_shape *row, const double *z, const double *e,
                   const double *e_low, ptrdiff_t c, target_weight a, double gamma,
                   dd *loss, double *curvature, int precise, int accurate,
                   const dd *known_log_total)
{
    if (isinf(row->max - z[c])) {
        /* z_c = -inf or m = +inf > z_c: p_c = 0 in the limit, so the loss is
           infinite, 1 - p_c = 1 and h_c = 0.  Finite logits further apart than
           the double range have p_c = 0 and h_c = 0 as well, and a term
           a_c y_c (m - z_c + log S) that may still be finite: it is taken in
           halves (log S <= log C is far below the rounding of m - z_c).  A
           class weighed 0 (alpha_c = 0) adds 0 at any logit, as its
           gradient does (its -inf was inf for 0, and so the mean; review
           84). */
        dd half_spread = dd_from(0.5 * row->max - 0.5 * z[c]);
        double term = a.first == 0.0 ? 0.0
                      : isfinite(row->max) && isfinite(z[c])
                          ? 2.0 * weigh_value(weigh_power(half_spread, a, precise), a, precise).hi
                          : HUGE_VAL;
        *loss = dd_accumulate(*loss, dd_from(term), precise);
        if (curvature != NULL) {
            *curvature = 0.0; /* p_c = 0 and p_c L_c -> 0 */
        }
        return precise ? two_product(a.first, a.second, 1) : dd_from(target_weight_value(a));
    }
    /* (a caller without log S is a row of class indices, whose careful form
       takes it without the step: its gradient has no two terms that cancel,
       and the step cost a third of its time) */
    dd log_total = known_log_total != NULL
                       ? *known_log_total
                       : softmax_log_total(row, precise,
                                           accurate == FOCAL_ROWS_ACCURATE ? accurate : 0);
    softmax_class_parts k = softmax_parts(row, z, e, e_low, c, log_total, precise, accurate);
    int boosted = 0; /* q_gamma holds (1 - p_c)^gamma 2^1000 */
    /* a faint class (softmax_faint_gamma_p): its gamma p_c from its log, in
       the hessian, and at gamma > FOCAL_POWER_BY_LOG in the float64 power
       and G_c (at a gamma up to 8, gamma p_c < 2^-965 is lost beside 1) */
    const int faint = c != row->argmax && k.e_c.hi < FAINT_SHARE;
    const int faint_power = faint && accurate && gamma > FOCAL_POWER_BY_LOG;
    const dd gamma_p_lifted = faint && (faint_power || curvature != NULL)
                                  ? softmax_faint_gamma_p(gamma, k.neg_log_p, precise, accurate)
                                  : dd_from(0.0);
    const dd gamma_p = {gamma_p_lifted.hi * 0x1p-600, gamma_p_lifted.lo * 0x1p-600};
    /* (the accurate form at gamma <= FOCAL_POWER_BY_LOG too, where the
       careful rows' gradients are computed again, gradient_again: an
       integer gamma by products, which are as good as its parts) */
    dd q_gamma = faint_power ? power_of_exponent(gamma_p.hi < 1500.0 ? dd_negate(gamma_p)
                                                                     : dd_from(-1500.0),
                                                 &boosted, precise, accurate)
                 : gamma > FOCAL_POWER_BY_LOG
                     ? power_of_one_minus_p(row, z, c, k.e_c, k.total, gamma, &boosted, precise,
                                            accurate)
                 : accurate ? careful_power(row, z, c, k.e_c, k.total, k.one_minus_p, gamma,
                                            &boosted, accurate)
                            : dd_power(k.one_minus_p, gamma, precise);
    const dd weighed = weigh_power(q_gamma, a, precise);
    *loss = dd_accumulate(*loss, softmax_loss_term(weighed, k.neg_log_p, a, boosted, precise),
                          precise);
    dd h;
    if (c == row->argmax) {
        h = !(row->rest.hi > 0.0) ? dd_from(1.0)
            : accurate            ? dd_divide(log_total, row->rest, 1)
                                  : dd_from(log_total.hi / row->rest.hi);
    }
    else {
        h = softmax_share_h(&k, accurate);
    }
    /* gamma h_c = gamma p_c L_c / (1 - p_c), 1 - p_c within 2^-968 of 1 where faint */
    const dd gamma_h = faint_power ? dd_mul(gamma_p, k.neg_log_p, precise)
                                   : dd_scale(h, gamma, precise);
    const double unscale = boosted ? 0x1p-1000 : 1.0;
    double weighted_power = target_weight_value(a) * q_gamma.hi;
    if (curvature != NULL && faint) {
        /* P_c = a q^gamma gamma p_c ((1 - gamma) h_c + L_c - 2), where
           (1 - gamma) h_c = (1 / gamma - 1) gamma h_c for gamma >= 1, and is
           below 2^-957 of L_c - 2 (L_c > 670) for a smaller one */
        double spread = gamma >= 1.0 ? (1.0 / gamma - 1.0) * (gamma_p.hi * k.neg_log_p.hi)
                                     : (1.0 - gamma) * h.hi;
        *curvature = weighted_power * (gamma_p_lifted.hi * (spread + k.neg_log_p.hi - 2.0))
                     * 0x1p-600 * unscale;
    }
    else if (curvature != NULL) {
        double p = e[c] / k.total.hi;
        /* (accurate: gamma p first, since p h alone underflows where p is
           near 1e-300 and gamma near 1e300) */
        double spread = accurate ? ((1.0 - gamma) * p) * h.hi : (1.0 - gamma) * (p * h.hi);
        *curvature = gamma == 0.0 ? 0.0
                     : weighted_power * gamma * (spread + p * k.neg_log_p.hi - 2.0 * p) * unscale;
    }
    if (accurate) {
        return softmax_big_g(weighed, gamma_h, a, boosted);
    }
    return dd_from(weighted_power * (gamma_h.hi + 1.0) * unscale);
}

/*
 * softmax_class_term's loss term and G_c for FOCAL_ROWS_CAREFUL at a gamma
 * <= FOCAL_POWER_BY_LOG, without a branch: a loop of these over a row's
 * classes vectorises (softmax_rows.h's careful_terms), and gives the bits of
 * softmax_class_term, whose operations these are.  An integer gamma takes
 * its power by products (power_hi NULL), another the power of
 * careful_fractional_power, from power_hi[c] and power_lo[c].  They hold for
 * a class other than the argmax whose m - z_c is finite, whose 1 - p_c is
 * at least 2^-100 and whose power is not NaN (`ordinary`); the caller takes
 * any other through softmax_class_term.
 */
typedef struct {
    dd loss, g;
    int ordinary;
} softmax_careful_term;

/* careful_power at a non-integer gamma for a class other than the argmax,
   with power_of_one_minus_p's operations, for a loop over a row's classes:
   the power's low part is NaN where power_of_one_minus_p selects a constant
   (a gamma log(1 - p) of 0 or more, or below -1500) or boosts the power
   (below -700), a class the loop leaves to it.  (A loop that selected on
   the power's value kept GCC from vectorising exp_fine's table load.) */
FOCAL_INLINE dd
careful_fractional_power(dd e_c, dd total, double gamma)
{
    dd log_q = careful_log_one_minus_p(dd_divide(e_c, total, 1));
    dd scaled = dd_scale(log_q, gamma, 1);
    dd power = exp_fine(scaled);
    power.lo = (gamma * log_q.hi < 0.0) & (scaled.hi >= -700.0) ? power.lo : NAN;
    return power;
}

FOCAL_INLINE softmax_careful_term
softmax_term_careful(const softmax_row_shape *row, const double *z, const double *e,
                     const double *e_low, ptrdiff_t c, target_weight a, double gamma,
                     dd log_total, const double *power_hi, const double *power_lo)
{
    softmax_class_parts k = softmax_parts(row, z, e, e_low, c, log_total, 1, FOCAL_ROWS_CAREFUL);
    /* careful_power's: an integer gamma's products, or the power given */
    dd q_gamma = power_hi == NULL ? dd_integer_power(k.one_minus_p, (int)gamma)
                                  : (dd){power_hi[c], power_lo[c]};
    const dd weighed = weigh_power(q_gamma, a, 1);
    softmax_careful_term r;
    r.loss = softmax_loss_term(weighed, k.neg_log_p, a, 0, 1);
    r.g = softmax_big_g(weighed, dd_scale(softmax_share_h(&k, 1), gamma, 1), a, 0);
    r.ordinary = (c != row->argmax) & (k.one_minus_p.hi >= 0x1p-100) &
                 !isinf(row->max - z[c]) & (q_gamma.lo == q_gamma.lo);
    return r;
}

/* dFL/dz_j = p_j others_g - G_j (1 - p_j) of a class with a target, others_g
   the sum of the other classes' G_c, in double-double (softmax_gradient's
   accurate form), given 1 / S */
FOCAL_INLINE double
gradient_given_others(const softmax_row_shape *row, const double *e, const double *e_low,
                      dd g_j, dd others_g, ptrdiff_t j, dd reciprocal)
{
    dd e_j = {e[j], e_low[j]};
    dd p = dd_mul(e_j, reciprocal, 1);
    dd one_minus_p = dd_mul(others_share(row, e, e_low, j, 1), reciprocal, 1);
    return dd_add(dd_mul(p, others_g, 1), dd_negate(dd_mul(g_j, one_minus_p, 1)), 1).hi;
}

/* the same with others_g = g_total - G_j: at least half of g_total but for
   the class with the largest G_j (softmax_largest_g) */
FOCAL_INLINE double
gradient_with_target(const softmax_row_shape *row, const double *e, const double *e_low,
                     const double *g, const double *g_low, ptrdiff_t j, dd reciprocal,
                     dd g_total)
{
    dd g_j = {g[j], g_low[j]};
    return gradient_given_others(row, e, e_low, g_j, dd_add(g_total, dd_negate(g_j), 1), j,
                                 reciprocal);
}

/*
 * The class with the largest G_c of a row of dense targets, and the sum of
 * the other G_c.  softmax_gradient forms g_total - G_j, which keeps the
 * digits of the others' sum where G_j is at most half of g_total, but rounds
 * them away where it dominates: targets [1, 1e-30] at logits [70, 0] gave
 * the first class's gradient as -3.98e-31 for +6.02e-31 (g_total rounds to
 * 1).  So the row's first pass keeps that sum apart (softmax_track_largest_g,
 * over the pieces in class order: the same bits however the row is cut), and
 * the gradient of that one class is formed again from it
 * (softmax_gradient_of_largest), where it dominates: where it is at most the
 * others' sum (two tied classes), g_total - G_j holds for every class, and
 * tied classes keep the same values.
 */
typedef struct {
    ptrdiff_t index; /* -1 while no class has a target */
    dd largest, others;
} softmax_largest_g;

FOCAL_INLINE void
softmax_track_largest_g(softmax_largest_g *track, const double *g, const double *g_low,
                        ptrdiff_t first, ptrdiff_t n, int accurate)
{
    for (ptrdiff_t c = 0; c < n; c++) {
        if (!(g[c] > 0.0)) {
            continue; /* no target (or NaN, whose row is masked) */
        }
        dd g_c = {g[c], accurate ? g_low[c] : 0.0};
        dd smaller = g_c;
        if (track->index < 0 || g[c] > track->largest.hi) {
            smaller = track->largest;
            track->largest = g_c;
            track->index = first + c;
        }
        track->others = accurate ? dd_add(track->others, smaller, 1)
                                 : dd_from(track->others.hi + smaller.hi);
    }
}

/* dFL/dz_j of the tracked class, j counted from the piece, as softmax_gradient
   forms it but for others_g */
FOCAL_INLINE double
softmax_gradient_of_largest(const softmax_row_shape *row, const double *e, const double *e_low,
                            const softmax_largest_g *track, ptrdiff_t j, int precise,
                            int accurate)
{
    if (accurate) {
        dd reciprocal = dd_reciprocal(dd_add(row->rest, dd_from(1.0), 1), 1);
        return gradient_given_others(row, e, e_low, track->largest, track->others, j,
                                     reciprocal);
    }
    double total = dd_add(row->rest, dd_from(1.0), precise).hi;
    double p = e[j] / total;
    double one_minus_p = others_share(row, e, NULL, j, precise).hi / total;
    return p * track->others.hi - track->largest.hi * one_minus_p;
}

/*
 * dFL/dz_j for the whole row, from the G_c (zero for classes without target)
 * and their sum g_total.  With `accurate`, in double-double from the E_j
 * (e, e_low) and the G_c (g, g_low), and rounded once; `dense`: many classes
 * have a target (dense targets), which chooses the faster of two loops (the
 * same bits).
 */
FOCAL_INLINE void
softmax_gradient(const softmax_row_shape *row, const double *e, const double *e_low,
                 const double *g, const double *g_low, dd g_total, double *grad, ptrdiff_t n,
                 int precise, int accurate, int dense)
{
    if (accurate) {
        dd reciprocal = dd_reciprocal(dd_add(row->rest, dd_from(1.0), 1), 1); /* 1 / S */
        dd coefficient = dd_mul(g_total, reciprocal, 1); /* p_j g_total = E_j (g_total / S) */
        if (dense) {
            /* both values formed for every class and one kept: no branch,
               so that the loop vectorises where the level has fused
               multiply-adds (the row's shape a local copy, which the stores
               cannot change) */
            const softmax_row_shape shape = *row;
            for (ptrdiff_t j = 0; j < n; j++) {
                dd e_j = {e[j], e_low[j]};
                double without_target = dd_mul(e_j, coefficient, 1).hi;
                double with_target =
                    gradient_with_target(&shape, e, e_low, g, g_low, j, reciprocal, g_total);
                grad[j] = g[j] != 0.0 ? with_target : without_target;
            }
            return;
        }
        /* every class as one without target first, then those with one: the
           first loop, without a branch, vectorises; the second runs over
           the few classes with a target alone (class indices: one) */
        for (ptrdiff_t j = 0; j < n; j++) {
            dd e_j = {e[j], e_low[j]};
            grad[j] = dd_mul(e_j, coefficient, 1).hi;
        }
        for (ptrdiff_t j = 0; j < n; j++) {
            if (g[j] != 0.0) {
                grad[j] = gradient_with_target(row, e, e_low, g, g_low, j, reciprocal, g_total);
            }
        }
        return;
    }
    /* S as others_share computes it, so that 1 - p_j is exactly 1 when E_j = 0 */
    double total = dd_add(row->rest, dd_from(1.0), precise).hi;
    /* (both values formed for every class and one kept: no branch, so that
       the loop vectorises, softmax_rows.h compiling it for each instruction
       set; the row's shape a local copy, which the stores cannot change) */
    const softmax_row_shape shape = *row;
    for (ptrdiff_t j = 0; j < n; j++) {
        double p = e[j] / total;
        double one_minus_p = others_share(&shape, e, NULL, j, precise).hi / total;
        double with_target = p * (g_total.hi - g[j]) - g[j] * one_minus_p;
        grad[j] = g[j] == 0.0 ? p * g_total.hi : with_target;
    }
}

/*
 * Whether a component of softmax_gradient's cancels: a class with a target
 * whose two terms p_j (g_total - G_j) and G_j (1 - p_j) nearly agree, which
 * is where dFL/dz_j has a zero: |dFL/dz_j| below 1 / `ratio` of the terms'
 * size p_j g_total + G_j (1 - p_j) (p_j g_total, not G_j (1 - p_j) alone: where
 * p_j nears 1 the errors of g_total and G_j are of its size).  Such a row's
 * gradient is computed again in a finer form (rowwise.c's gradient_again:
 * the accurate form, whose parts are good to about 2^-100, or for float32
 * results first the careful one, 2^-76).  A gradient of
 * exactly 0 is taken as it is: classes tied in logit and target, whose
 * gradients cancel exactly (every row of zero logits and equal targets, at
 * the start of a training), kept their exact 0 and their equal bits, where
 * the accurate form gave 1.2e-32 to all but the argmax (float32 results,
 * gamma 0.5, nine classes).
 *
 * The careful rows' parts were good to 2^-57 of the terms (the E_j by
 * exp_series, log S to 2^-56): over 150 neighbourhoods of zeros (rows of 2
 * to 5 classes, gamma 0 to 8), binned by G_j (1 - p_j) / |dFL/dz_j|, the
 * worst was 0.55 ULP below 8, 15 at 128 to 256, 950 at 10^4.  Their ratio
 * would have been 8 for 1 ULP, but most rows of many soft classes hold a
 * component within 1/8 of its terms (98% of random label-smoothed rows of 81
 * classes), and the accurate row costs 3 (integer gamma) to 5 times the
 * careful one.  So their ratio is 2^14: a row is computed again where a
 * component is within 2^-14 of its terms (0.23% of those rows; 2.6% of rows
 * whose logits are the log of random soft targets plus noise of 0.3).  Their
 * parts are now good to about 2^-76 (exp_fine; log S with a Newton step;
 * the non-integer powers by exp_fine), which leaves 2^-9 ULP at 2^-14 of
 * the terms: the same bins are all within 0.5 ULP.  That left room: rows of
 * thousands of soft classes nearly all held a component within 2^-14 of its
 * terms and took the accurate form, 4 to 5 times the careful one's time
 * (float64, label-smoothed rows of 2^15 classes 119 ns per class, of 81
 * classes 29).  So their ratio is now 2^18, which leaves 2^-5 ULP at 2^-18
 * of the terms.  The plain rows (float32
 * results) leave about 2^-53 of them, which a float32 result shows beyond
 * 2^20 (43 ULP at 2^35): their ratio is 2^20 (softmax_cancel_ratio), but
 * above gamma FOCAL_POWER_BY_LOG, see there.
 *
 * grad: the gradient of the piece before any weight; g: the G_c (0 without
 * a target).  (No division, and a select for the argmax: the loop
 * vectorises.)
 */
FOCAL_INLINE int
softmax_gradient_cancelled(const softmax_row_shape *row, const double *e, const double *g,
                           double g_total, const double *grad, ptrdiff_t n, double ratio)
{
    const double rest = row->rest.hi, total = rest + 1.0;
    const ptrdiff_t argmax = row->argmax;
    int cancelled = 0;
    for (ptrdiff_t j = 0; j < n; j++) {
        double others = j == argmax ? rest : (rest - e[j]) + 1.0; /* O_j */
        /* (p_j g_total + G_j (1 - p_j)) S, without a target 0 */
        double terms = g[j] != 0.0 ? e[j] * g_total + g[j] * others : 0.0;
        cancelled |= grad[j] != 0.0 && ratio * fabs(grad[j]) * total < terms;
    }
    return cancelled;
}

/*
 * softmax_gradient_cancelled's ratio for a row of dense targets in the form
 * `accurate` (0 or FOCAL_ROWS_CAREFUL; FOCAL_ROWS_ACCURATE rows are not
 * looked at), `float64_results` or not.  The careful rows' parts leave about
 * 2^-75 of the terms (2^-9 ULP at 2^-14 of them, measured): float64 results
 * look at 2^-18 (above), float32 results, which reach the careful form only
 * as rowwise.c's gradient_again, at 2^-30, below which that share could
 * show beyond about 2^-22 of a float32 ULP.  The plain rows (float32 results) above
 * gamma FOCAL_POWER_BY_LOG take their power as e^(gamma log(1 - p_c)) from
 * parts sized for float32 (power_of_one_minus_p), good to about 2^-45
 * relatively, which gamma multiplies: their gradient keeps about gamma
 * 2^-45.2 of the terms (measured: 2.8 ULP at gamma 9 and 7.9 at gamma 30
 * where a component was 2^-20 of its terms, 1.5 at gamma 30 at 2^-17).
 * Their ratio is 2^17 / gamma, which leaves 2^-28 of a component, a
 * sixteenth of a float32 ULP, below gamma 2^17; above it every row of dense
 * targets with a non-zero component is computed again.
 */
FOCAL_INLINE double
softmax_cancel_ratio(double gamma, int accurate, int float64_results)
{
    if (accurate) {
        return float64_results ? 0x1p18 : 0x1p30;
    }
    return gamma > FOCAL_POWER_BY_LOG ? 0x1p17 / gamma : 0x1p20;
}

/*
 * The diagonal of the hessian for a row of class `label` (counted from this
 * piece; outside [0, n) when the piece does not hold it), from its G and P
 * (softmax_class_term) and its O_c; e_low as for others_share.
 */
FOCAL_INLINE void
softmax_hessian_diagonal(const softmax_row_shape *row, const double *e, const double *e_low,
                         ptrdiff_t label, double g, double curvature, double others_label,
                         double *hess, ptrdiff_t n, int precise)
{
    double total = dd_add(row->rest, dd_from(1.0), precise).hi;
    /* (both values formed for every class and one kept: no branch, so that
       the loop vectorises; the row's shape a local copy, which the stores
       into hess cannot change) */
    const softmax_row_shape shape = *row;
    for (ptrdiff_t j = 0; j < n; j++) {
        double p = e[j] / total;
        double one_minus_p = others_share(&shape, e, e_low, j, precise).hi / total;
        double at_label = one_minus_p * (p * g - curvature);
        /* E_j = 0 (p_j underflowed) is r_j = 0, also where O_c = 0 */
        double share = e[j] == 0.0 ? 0.0 : e[j] / others_label;
        double elsewhere = p * (one_minus_p * g - share * curvature);
        hess[j] = j == label ? at_label : elsewhere;
    }
}

#endif  /* FOCAL_SOFTMAX_FOCAL_H */

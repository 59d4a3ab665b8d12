/*
 * softmax_rows.h: the per-class loops of softmax rows, compiled for each
 * instruction set (softmax_kernels.c): the blocks of float32 rows with class
 * indices, and the loops of the general rows.
 *
 * A row of the softmax focal loss with a class index needs two passes over
 * its classes (softmax_focal.h): the exponentials E_j = e^(z_j - m) with
 * their sum, and the gradient, which for every class but the label is
 * p_j G = E_j (G / S): the stored exponentials times one coefficient of the
 * row.  The few values of the row in between (log S, 1 - p_label, the power
 * gamma, G) stay with the scalar kernel of softmax_focal.h.
 *
 * The general rows (rowwise.c: float64 results, dense targets, the hessian)
 * take from here their loops over the classes: the maximum (a chain of
 * dependent comparisons in scalar code), the exponentials (in double-double
 * two thirds of the instructions of a float64 row of 81 classes in scalar
 * code), dense targets' class terms (float32 results), the gradient and the
 * hessian's diagonal.
 */
#ifndef FOCAL_SOFTMAX_ROWS_H
#define FOCAL_SOFTMAX_ROWS_H

#include <stddef.h>

#include "softmax_focal.h"

typedef struct {
    double max;   /* m: the largest logit (meaningless when has_nan) */
    double rest;  /* S - 1: the E_j of every class but one of the largest */
    int has_nan;
    int near;     /* every logit finite and within 700 of m */
} softmax_row_summary;

/* the rows whose per-row values are taken together (rowwise.c's blocks) */
enum { SOFTMAX_ROW_BLOCK = 8 };

/* the label terms of a block's rows (softmax_term_plain), one lane per row;
   rows beyond the block's count hold zeros */
typedef struct {
    double rest[SOFTMAX_ROW_BLOCK], e_c[SOFTMAX_ROW_BLOCK], max[SOFTMAX_ROW_BLOCK];
    double z[SOFTMAX_ROW_BLOCK], argmax[SOFTMAX_ROW_BLOCK], weight[SOFTMAX_ROW_BLOCK];
    double loss[SOFTMAX_ROW_BLOCK], g[SOFTMAX_ROW_BLOCK], one_minus_p[SOFTMAX_ROW_BLOCK];
} softmax_block_terms;

/* A row's two passes are separate calls, so that a block of rows can take
   every row's maximum first: the maximum's last steps are a chain of
   dependent operations, which then overlap across rows instead of each
   waiting in front of its row's exponentials. */
typedef struct {
    /* m, has_nan and near of the n float32 logits at `logits` (native order,
       contiguous, any alignment) into *summary */
    void (*extremes)(const char *logits, ptrdiff_t n, softmax_row_summary *summary);
    /* then their E_j into e, which has room for n rounded up to
       SOFTMAX_LANES doubles, and S - 1 into summary->rest */
    void (*exponentials)(const char *logits, ptrdiff_t n, double *e,
                         softmax_row_summary *summary);
    /* loss, g and one_minus_p of every lane of *terms from its inputs, at
       gamma <= FOCAL_POWER_BY_LOG (vectorised across the lanes) */
    void (*label_terms)(softmax_block_terms *terms, double gamma);
    /* softmax_term_plain of the n classes of one row (float32 results,
       dense targets, gamma <= FOCAL_POWER_BY_LOG), given its log S: the
       loss term of class c into loss[c] and G_c into g[c], from E_c, z_c
       and the target weight a_c; every class is computed, and a class
       without a target or whose m - z_c is infinite gets a value the
       caller does not use */
    void (*dense_terms)(const double *e, const double *z, const double *weight, ptrdiff_t n,
                        double rest, double log_total, double max, ptrdiff_t argmax,
                        double gamma, double *loss, double *g);
    /* softmax_term_careful of the n classes of one row (float64 results,
       dense targets, a gamma <= FOCAL_POWER_BY_LOG), given its log
       S, from z, the E_j (e, e_low) and the target weights' factors
       (target_weight: the first in g, the second in g_low): the loss term of
       class c into loss_hi[c] and loss_lo[c], and G_c into g[c] and
       g_low[c].  A class it does not add (no target, or not `ordinary`) gets
       a NaN loss_hi[c] and keeps its factors in g and g_low (0 without a
       target), for the caller to take through softmax_class_term. */
    void (*careful_terms)(const softmax_row_shape *row, dd log_total, const double *z,
                          const double *e, const double *e_low, double *g, double *g_low,
                          ptrdiff_t n, double gamma, double *loss_hi, double *loss_lo);
    /* grad_j = E_j times coefficient, rounded to float32 (contiguous, any
       alignment) */
    void (*scaled)(const double *e, ptrdiff_t n, double coefficient, char *grad);
    /* float64 results at gamma > 8: softmax_focal.h's accurate E_j (and what
       rounding them drops, e_low) of n double logits z given their maximum;
       vectorised with the level's fused multiply-adds (an fma is one
       rounding wherever it runs: the same bits at every level) */
    void (*accurate_exponentials)(const double *z, ptrdiff_t n, double max, double *e,
                                  double *e_low);
    /* The general rows' loops (rowwise.c: float64 results, and float32
       results that the blocks above do not take, such as dense targets),
       compiled for the level.  Each runs softmax_focal.h's operations, none
       fused, vectorised by the compiler: the same bits at every level and as
       the scalar loops.  `precise`: float64 results (double-double).  */
    /* the E_j: with `precise` the careful rows' (exp_fine, and what
       rounding them drops in e_low), else those of float32 results (e_low
       unused); the baseline's loop stays scalar (exp_fine's table wants the
       gathers of AVX2) */
    void (*general_exponentials)(const double *z, ptrdiff_t n, double max, double *e,
                                 double *e_low, int precise);
    /* the largest of n double logits z that are not NaN (NaN where none is),
       and whether any is NaN, into *has_nan: softmax_scan_max's maximum,
       which softmax_merge_max (softmax_focal.h) completes */
    double (*largest)(const double *z, ptrdiff_t n, int *has_nan);
    /* softmax_gradient and softmax_hessian_diagonal, without e_low (all but
       the accurate rows) */
    void (*general_gradient)(const softmax_row_shape *row, const double *e, const double *g,
                             dd g_total, double *grad, ptrdiff_t n, int precise);
    void (*general_hessian_diagonal)(const softmax_row_shape *row, const double *e,
                                     ptrdiff_t label, double g, double curvature,
                                     double others_label, double *hess, ptrdiff_t n,
                                     int precise);
} softmax_row_kernels;

/* the vector width the loops are written in (doubles); every instruction set
   runs the same operations on them, so the results agree bitwise */
enum { SOFTMAX_LANES = 8 };

/* the kernels of an instruction-set level (simd.h), at most
   simd_level_supported(); NULL where the compiler builds none */
const softmax_row_kernels *choose_softmax_row_kernels(int level);

#endif  /* FOCAL_SOFTMAX_ROWS_H */

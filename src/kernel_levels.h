/*
 * kernel_levels.h: how a file kernels_LEVEL.c compiles the table of losses
 * (losses.h) for one instruction set: every row, precision, form and set of
 * outputs, and the block I/O helpers, into the two tables kernels.c chooses
 * among at run time.  One file per level, so that the build compiles the
 * levels in parallel (setup.py); the functions are the same source each time.
 *
 * Every level executes the same floating-point operations (no contraction
 * into FMA: -ffp-contract=off), but for the float32 polynomials, which the
 * levels with FMA fuse (vector_math.h, FOCAL_LEVEL_FMA): float64 results are
 * bitwise the same at every level, float32 results at AVX2 and AVX-512 (the
 * baseline's may differ by one ULP, rarely).  For
 * each row, level, precision (float32 or float64 results), form of the row
 * and outputs (loss; loss and gradient; and second derivative) there is one
 * function; whether the block holds soft targets is a branch at its top, to
 * two specialised loops.  Nothing here names a loss.
 */
#ifndef FOCAL_KERNEL_LEVELS_H
#define FOCAL_KERNEL_LEVELS_H

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FOCAL_X86_DISPATCH 1
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#else
/* other architectures and compilers build no AVX level: its file's
   outlined functions (numeric.h) take no target either */
#undef FOCAL_LEVEL_TARGET
#define FOCAL_LEVEL_TARGET
#endif

/* (after FOCAL_LEVEL_TARGET is settled: the headers define the outlined
   functions) */
#include "simd.h"

#include "block_io.h"

/* the body every kernel shares: the row's block, then its scalar path if any
   logit asked for it, or any weight above 1 (heavy); a row of hard targets
   never sees soft = 1 */
#define KERNEL_BODY(NAME, TARGETS, FORM, OUTPUTS, PRECISE, SOFT)                          \
    if (NAME##_block(bp, b, n, FORM, SOFT, OUTPUTS, PRECISE) |                            \
        (heavy && any_faint(bp, b, n))) {                                                 \
        finish_special(bp, b, n, PRECISE, heavy, NAME##_special, NAME##_limit,            \
                       NAME##_limit_weighted);                                            \
    }

#define DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, OUTPUTS, PRECISE)            \
    ATTRIBUTE static void NAME##_##LEVEL##_##FORM##_##OUTPUTS##_##PRECISE(                \
        const block_params *bp, element_block *b, ptrdiff_t n, int flags)                  \
    {                                                                                     \
        const int heavy = (flags & FOCAL_BLOCK_HEAVY) != 0;                               \
        if ((TARGETS) == TARGETS_DENSE && (flags & FOCAL_BLOCK_SOFT)) {                    \
            KERNEL_BODY(NAME, TARGETS, FORM, OUTPUTS, PRECISE, 1)                         \
        }                                                                                 \
        else {                                                                            \
            KERNEL_BODY(NAME, TARGETS, FORM, OUTPUTS, PRECISE, 0)                         \
        }                                                                                 \
    }

/* one form of a row: every output set at both precisions */
#define DEFINE_FORM(FORM, LEVEL, ATTRIBUTE, NAME, TARGETS)                                 \
    DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, 0, 0)                            \
    DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, 1, 0)                            \
    DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, 2, 0)                            \
    DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, 0, 1)                            \
    DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, 1, 1)                            \
    DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, 2, 1)

/* the row's entries of the level's table: [precise][form][outputs] */
#define FORM_ENTRY(FORM, LEVEL, NAME)                                                     \
    [0][FORM] = {NAME##_##LEVEL##_##FORM##_0_0, NAME##_##LEVEL##_##FORM##_1_0,            \
                 NAME##_##LEVEL##_##FORM##_2_0},                                          \
    [1][FORM] = {NAME##_##LEVEL##_##FORM##_0_1, NAME##_##LEVEL##_##FORM##_1_1,            \
                 NAME##_##LEVEL##_##FORM##_2_1},

#define DEFINE_ROW(LEVEL, ATTRIBUTE, NAME, NUMBER, TITLE, TARGETS, HESS)                   \
    NAME##_FORMS(DEFINE_FORM, LEVEL, ATTRIBUTE, NAME, TARGETS)                            \
    static const row_kernels NAME##_##LEVEL = {NAME##_FORMS(FORM_ENTRY, LEVEL, NAME)};

#define ROW_AT(LEVEL, NAME, NUMBER, TITLE, TARGETS, HESS) [NUMBER] = &NAME##_##LEVEL,

/* the helpers of block_io.h and the running sums, per level */
#define DEFINE_IO(LEVEL, ATTRIBUTE)                                                       \
    ATTRIBUTE static void load_##LEVEL(const char *source, ptrdiff_t stride, ptrdiff_t n,  \
                                       int is_double, double *out)                        \
    {                                                                                     \
        load_reals(source, stride, n, is_double, out);                                    \
    }                                                                                     \
    ATTRIBUTE static void store_##LEVEL(const double *values, char *destination,           \
                                        ptrdiff_t stride, ptrdiff_t n, int is_double)       \
    {                                                                                     \
        store_reals(values, destination, stride, n, is_double);                           \
    }                                                                                     \
    ATTRIBUTE static int labels_##LEVEL(const char *labels, ptrdiff_t row_step,            \
                                        ptrdiff_t element_step, ptrdiff_t in_row,           \
                                        ptrdiff_t n, ptrdiff_t ignore_index,                \
                                        ptrdiff_t num_classes, double *y, double *weight,   \
                                        ptrdiff_t *bad)                                     \
    {                                                                                     \
        return labels_to_targets(labels, row_step, element_step, in_row, n, ignore_index, \
                                 num_classes, y, weight, bad);                            \
    }                                                                                     \
    ATTRIBUTE static int targets_##LEVEL(const char *source, ptrdiff_t stride, ptrdiff_t n, \
                                         int is_double, double *y)                        \
    {                                                                                     \
        return load_targets(source, stride, n, is_double, y);                             \
    }                                                                                     \
    ATTRIBUTE static int weights_##LEVEL(const char *source, ptrdiff_t stride, ptrdiff_t n, \
                                         double *w)                                       \
    {                                                                                     \
        return load_weights(source, stride, n, w);                                        \
    }                                                                                     \
    ATTRIBUTE static void accumulate_##LEVEL(block_sums *sums, const element_block *b,     \
                                             ptrdiff_t n, ptrdiff_t first_index,            \
                                             int which, int *small_sums, int compensated)   \
    {                                                                                     \
        if (compensated) {                                                                \
            accumulate_block(sums, b, n, first_index, which, small_sums, 1);              \
        }                                                                                 \
        else {                                                                            \
            accumulate_block(sums, b, n, first_index, which, small_sums, 0);              \
        }                                                                                 \
    }                                                                                     \
    const block_io focal_io_##LEVEL = {load_##LEVEL,    store_##LEVEL,   labels_##LEVEL,  \
                                        targets_##LEVEL, weights_##LEVEL, accumulate_##LEVEL};

/* a level's tables, the two names kernels.c takes (declared below) */
#define DEFINE_LEVEL(LEVEL, ATTRIBUTE)                                                    \
    FOCAL_ELEMENTWISE_LOSSES(DEFINE_ROW_AT_##LEVEL)                                       \
    const row_kernels *const focal_rows_##LEVEL[FOCAL_LOSS_COUNT] = {                    \
        FOCAL_ELEMENTWISE_LOSSES(ROW_AT_##LEVEL)};                                        \
    DEFINE_IO(LEVEL, ATTRIBUTE)

/* the levels' tables (kernels_baseline.c, kernels_avx2.c, kernels_avx512.c) */
extern const row_kernels *const focal_rows_baseline[FOCAL_LOSS_COUNT];
extern const block_io focal_io_baseline;
#ifdef FOCAL_X86_DISPATCH
extern const row_kernels *const focal_rows_avx2[FOCAL_LOSS_COUNT];
extern const block_io focal_io_avx2;
extern const row_kernels *const focal_rows_avx512[FOCAL_LOSS_COUNT];
extern const block_io focal_io_avx512;
#endif

#endif  /* FOCAL_KERNEL_LEVELS_H */

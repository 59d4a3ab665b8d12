/*
 * simd.h: the kernels of the table of losses (losses.h) compiled for each
 * instruction set (kernels.c), and the run-time choice among them.
 */
#ifndef FOCAL_SIMD_H
#define FOCAL_SIMD_H

#include <stddef.h>

#include "losses.h"

enum { SIMD_BASELINE = 0, SIMD_AVX2 = 1, SIMD_AVX512 = 2 };

/* the weighted values of a block; flags: FOCAL_BLOCK_SOFT, FOCAL_BLOCK_HEAVY */
typedef void (*block_kernel)(const block_params *params, element_block *block, ptrdiff_t n,
                             int flags);

/* one row's kernels at one level: [precise][form][outputs (FOCAL_OUT_*)] */
typedef block_kernel row_kernels[2][FOCAL_FORMS][3];

/* which kernel a call runs */
typedef struct {
    int loss;     /* a row of the table (LOSS_*) */
    int precise;  /* float64 results */
    int form;     /* the row's form for the call's parameters */
    int outputs;  /* FOCAL_OUT_LOSS, FOCAL_OUT_GRAD or FOCAL_OUT_HESS */
} kernel_choice;

/* what the driver knows of a row */
typedef struct {
    const char *title;  /* its name in messages */
    int targets;        /* TARGETS_DENSE or TARGETS_HARD */
    int has_hess;       /* whether it has a second derivative */
    int (*form)(const focal_params *params);
    void (*prepare)(focal_params *params);
} loss_row;

/* the helpers of block_io.h and the running sums, compiled for one level */
typedef struct {
    void (*load)(const char *source, ptrdiff_t stride, ptrdiff_t n, int is_double,
                 double *out);
    void (*store)(const double *values, char *destination, ptrdiff_t stride, ptrdiff_t n,
                  int is_double);
    int (*labels_to_targets)(const char *labels, ptrdiff_t row_step, ptrdiff_t element_step,
                             ptrdiff_t in_row, ptrdiff_t n, ptrdiff_t ignore_index,
                             ptrdiff_t num_classes, double *y, double *weight, ptrdiff_t *bad);
    int (*load_targets)(const char *source, ptrdiff_t stride, ptrdiff_t n, int is_double,
                        double *y);
    int (*load_weights)(const char *source, ptrdiff_t stride, ptrdiff_t n, double *w);
    void (*accumulate)(block_sums *sums, const element_block *block, ptrdiff_t n,
                       ptrdiff_t first_index, int which, int *small_sums, int compensated);
} block_io;

/* the best level this CPU runs */
int simd_level_supported(void);
const char *simd_level_name(int level);
/* the row of a loss number, or NULL */
const loss_row *loss_row_of(int loss);
/* the kernel for a level (at most simd_level_supported()) and a choice */
block_kernel choose_block_kernel(int level, const kernel_choice *choice);
const block_io *choose_block_io(int level);

#endif  /* FOCAL_SIMD_H */

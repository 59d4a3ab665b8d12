/*
 * simd.h: run-time choice of the block kernels compiled for each instruction
 * set (simd.c).
 */
#ifndef FOCAL_SIMD_H
#define FOCAL_SIMD_H

#include <stddef.h>

#include "element_block.h"

enum { SIMD_BASELINE = 0, SIMD_AVX2 = 1, SIMD_AVX512 = 2 };

typedef void (*block_kernel)(const block_params *params, element_block *block, ptrdiff_t n);

/* the helpers of block_io.h and the running sums, compiled for one level */
typedef struct {
    void (*load)(const char *source, ptrdiff_t stride, ptrdiff_t n, int is_double,
                 double *out);
    void (*store)(const double *values, char *destination, ptrdiff_t stride, ptrdiff_t n,
                  int is_double);
    int (*labels_to_targets)(const char *labels, ptrdiff_t label_stride, const char *classes,
                             ptrdiff_t class_stride, ptrdiff_t n, ptrdiff_t ignore_index,
                             ptrdiff_t num_classes, double *y, double *weight);
    int (*check_targets)(const double *y, ptrdiff_t n);
    int (*any_bad_weight)(const double *w, ptrdiff_t n);
    int (*any_special_logit)(const double *x, ptrdiff_t n, double gamma, double beta, int star);
    void (*accumulate)(block_sums *sums, const element_block *block, ptrdiff_t n,
                       ptrdiff_t first_index, int which);
} block_io;

/* the best level this CPU runs */
int simd_level_supported(void);
const char *simd_level_name(int level);
/* the kernel for a level (at most simd_level_supported()) and a variant */
block_kernel choose_block_kernel(int level, int precise, int star, double gamma, int soft,
                                 int derivatives);
const block_io *choose_block_io(int level);

#endif  /* FOCAL_SIMD_H */

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
typedef void (*block_accumulator)(block_sums *sums, const element_block *block, ptrdiff_t n,
                                  ptrdiff_t first_index, int with_loss);

/* the best level this CPU runs */
int simd_level_supported(void);
const char *simd_level_name(int level);
/* the kernel for a level (at most simd_level_supported()) and a variant */
block_kernel choose_block_kernel(int level, int precise, int star, double gamma, int soft);
block_accumulator choose_block_accumulator(int level);

#endif  /* FOCAL_SIMD_H */

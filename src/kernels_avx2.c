/*
 * kernels_avx2.c: the table of losses (kernel_levels.h) compiled with
 * the AVX2 and FMA target attributes.
 */
/* the level's attribute, for the outlined functions too (numeric.h) */
#define FOCAL_LEVEL_TARGET TARGET_AVX2
/* the float32 polynomials fuse their multiply-adds (vector_math.h) */
#define FOCAL_LEVEL_FMA 1
/* the running sums' vectors fill one register (element_block.h) */
#define FOCAL_LEVEL_VECTOR_BYTES 32
#include "kernel_levels.h"

#ifdef FOCAL_X86_DISPATCH
#define DEFINE_ROW_AT_avx2(...) DEFINE_ROW(avx2, TARGET_AVX2, __VA_ARGS__)
#define ROW_AT_avx2(...) ROW_AT(avx2, __VA_ARGS__)
DEFINE_LEVEL(avx2, TARGET_AVX2)
#endif

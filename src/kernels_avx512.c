/*
 * kernels_avx512.c: the table of losses (kernel_levels.h) compiled with
 * the AVX-512 target attributes.
 */
/* the level's attribute, for the outlined functions too (numeric.h) */
#define FOCAL_LEVEL_TARGET TARGET_AVX512
/* the float32 polynomials fuse their multiply-adds (vector_math.h) */
#define FOCAL_LEVEL_FMA 1
/* the running sums' vectors fill one register (element_block.h) */
#define FOCAL_LEVEL_VECTOR_BYTES 64
#include "kernel_levels.h"

#ifdef FOCAL_X86_DISPATCH
#define DEFINE_ROW_AT_avx512(...) DEFINE_ROW(avx512, TARGET_AVX512, __VA_ARGS__)
#define ROW_AT_avx512(...) ROW_AT(avx512, __VA_ARGS__)
DEFINE_LEVEL(avx512, TARGET_AVX512)
#endif

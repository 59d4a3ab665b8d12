/*
 * softmax_kernels.c: the per-class loops of softmax rows (softmax_rows.h),
 * compiled for each instruction set as kernels_LEVEL.c compile the
 * elementwise kernels.
 *
 * softmax_lanes.h is the source, included once per level with that level's
 * register width (GCC's vector extension: 8 doubles for AVX-512, 4 for AVX2,
 * 2 for SSE2).  The sums of a row run in SOFTMAX_LANES lanes at every level
 * (one register, or two, or four) and are added in one fixed order at the
 * end.  The AVX2 and AVX-512 levels fuse the multiply-adds of the
 * exponential (a quarter faster): they agree bitwise with each other; the
 * baseline (nothing fused, as -ffp-contract=off builds everything else)
 * differs from them in the last bits of some double E_j, which a float32
 * result rarely shows (none of the 3.24 million gradient components of
 * 40,000 rows of the benchmark's), and then by one ULP.
 *
 * The exponential is exp_negative_f32 of vector_math.h, operation for
 * operation but for the fusing (relative error below 2^-45.5: what a
 * float32 result needs).
 */
/* vectors passed between inlined functions: GCC's note on their calling
   convention concerns no call that exists */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

#include "numeric.h"
#include "simd.h"
#include "softmax_focal.h"
#include "softmax_rows.h"
#include "vector_math.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FOCAL_X86_DISPATCH 1
/* the attributes of simd.c's levels */
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#endif

/* GCC's vector extension (GCC and Clang); other compilers get no kernels
   (choose_softmax_row_kernels returns NULL) and the rows the general code */
#if defined(__GNUC__)

/* lane masks: from k on, the last k lanes; from 2 SOFTMAX_LANES - k on, the
   first k lanes */
static const long long lane_masks[3 * SOFTMAX_LANES] = {
    0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

#define LEVEL baseline
#define ATTRIBUTE
#define WIDTH 2
#define FUSED 0
#include "softmax_lanes.h"
#undef LEVEL
#undef ATTRIBUTE
#undef WIDTH
#undef FUSED

#ifdef FOCAL_X86_DISPATCH
#define LEVEL avx2
#define ATTRIBUTE TARGET_AVX2
#define WIDTH 4
#define FUSED 1
#include "softmax_lanes.h"
#undef LEVEL
#undef ATTRIBUTE
#undef WIDTH
#undef FUSED

#define LEVEL avx512
#define ATTRIBUTE TARGET_AVX512
#define WIDTH 8
#define FUSED 1
#include "softmax_lanes.h"
#undef LEVEL
#undef ATTRIBUTE
#undef WIDTH
#undef FUSED
#endif

#endif  /* __GNUC__ */

const softmax_row_kernels *
choose_softmax_row_kernels(int level)
{
#if !defined(__GNUC__)
    (void)level;
    return NULL;
#else
#ifdef FOCAL_X86_DISPATCH
    if (level >= SIMD_AVX512) {
        return &kernels_avx512;
    }
    if (level >= SIMD_AVX2) {
        return &kernels_avx2;
    }
#else
    (void)level;
#endif
    return &kernels_baseline;
#endif
}

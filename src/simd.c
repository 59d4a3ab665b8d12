/*
 * simd.c: the block kernels compiled for each instruction set, and the
 * choice among them at run time.
 *
 * The default build targets the baseline of the architecture (no
 * -march=native), so one wheel runs on any x86-64.  The same source of
 * weighted_block is compiled again with AVX2+FMA and with AVX-512 target
 * attributes; the best one the CPU supports is used, unless a lower level is
 * asked for (focal._core.set_simd_level, for tests and comparisons).  Every
 * level executes the same floating-point operations (no contraction into
 * FMA is allowed: -ffp-contract=off), so they give bitwise the same results.
 */
#include "simd.h"

#include "element_block.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FOCAL_X86_DISPATCH 1
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#endif

/* one function per (instruction set, precise, kernel variant) */
#define DEFINE_VARIANT(LEVEL, ATTRIBUTE, NAME, STAR, GAMMA_TWO, SOFT, PRECISE)             \
    ATTRIBUTE static void NAME##_##LEVEL(const block_params *bp, element_block *b,         \
                                         ptrdiff_t n)                                       \
    {                                                                                     \
        weighted_block(bp, b, n, STAR, GAMMA_TWO, SOFT, PRECISE);                          \
    }

#define DEFINE_PRECISION(LEVEL, ATTRIBUTE, PRECISION, PRECISE)                            \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, focal_##PRECISION##_general_hard, 0, 0, 0, PRECISE)  \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, focal_##PRECISION##_general_soft, 0, 0, 1, PRECISE)  \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, focal_##PRECISION##_two_hard, 0, 1, 0, PRECISE)      \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, focal_##PRECISION##_two_soft, 0, 1, 1, PRECISE)      \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, star_##PRECISION, 1, 0, 0, PRECISE)

/* the table is indexed [precise][variant], variant as in choose_block_kernel */
#define DEFINE_LEVEL(LEVEL, ATTRIBUTE)                                                    \
    DEFINE_PRECISION(LEVEL, ATTRIBUTE, plain, 0)                                          \
    DEFINE_PRECISION(LEVEL, ATTRIBUTE, precise, 1)                                        \
    static const block_kernel LEVEL##_kernels[2][5] = {                                   \
        {focal_plain_general_hard_##LEVEL, focal_plain_general_soft_##LEVEL,              \
         focal_plain_two_hard_##LEVEL, focal_plain_two_soft_##LEVEL, star_plain_##LEVEL}, \
        {focal_precise_general_hard_##LEVEL, focal_precise_general_soft_##LEVEL,          \
         focal_precise_two_hard_##LEVEL, focal_precise_two_soft_##LEVEL,                  \
         star_precise_##LEVEL},                                                           \
    };                                                                                    \
    ATTRIBUTE static void accumulate_##LEVEL(block_sums *sums, const element_block *b,     \
                                             ptrdiff_t n, ptrdiff_t first_index,            \
                                             int with_loss)                                 \
    {                                                                                     \
        accumulate_block(sums, b, n, first_index, with_loss);                             \
    }

DEFINE_LEVEL(baseline, )
#ifdef FOCAL_X86_DISPATCH
DEFINE_LEVEL(avx2, TARGET_AVX2)
DEFINE_LEVEL(avx512, TARGET_AVX512)
#endif

int
simd_level_supported(void)
{
#ifdef FOCAL_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("fma")) {
        return SIMD_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return SIMD_AVX2;
    }
#endif
    return SIMD_BASELINE;
}

const char *
simd_level_name(int level)
{
    switch (level) {
    case SIMD_AVX512:
        return "avx512";
    case SIMD_AVX2:
        return "avx2";
    default:
        return "baseline";
    }
}

block_kernel
choose_block_kernel(int level, int precise, int star, int gamma_two, int soft)
{
    int variant = star ? 4 : 2 * (gamma_two != 0) + (soft != 0);
    precise = precise ? 1 : 0;
#ifdef FOCAL_X86_DISPATCH
    if (level >= SIMD_AVX512) {
        return avx512_kernels[precise][variant];
    }
    if (level >= SIMD_AVX2) {
        return avx2_kernels[precise][variant];
    }
#else
    (void)level;
#endif
    return baseline_kernels[precise][variant];
}

block_accumulator
choose_block_accumulator(int level)
{
#ifdef FOCAL_X86_DISPATCH
    if (level >= SIMD_AVX512) {
        return accumulate_avx512;
    }
    if (level >= SIMD_AVX2) {
        return accumulate_avx2;
    }
#else
    (void)level;
#endif
    return accumulate_baseline;
}

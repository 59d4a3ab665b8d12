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

#include "block_io.h"
#include "element_block.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FOCAL_X86_DISPATCH 1
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#endif

/* one function per (instruction set, precise, kernel variant) */
#define DEFINE_VARIANT(LEVEL, ATTRIBUTE, NAME, STAR, GAMMA_INTEGER, SOFT, DERIVATIVES, PRECISE) \
    ATTRIBUTE static void NAME##_##LEVEL(const block_params *bp, element_block *b,         \
                                         ptrdiff_t n)                                       \
    {                                                                                     \
        weighted_block(bp, b, n, STAR, GAMMA_INTEGER, SOFT, DERIVATIVES, PRECISE);         \
    }

/* the focal variants: gamma general (0) or 1..4, hard or soft targets, with the
   derivatives or the loss alone */
#define DEFINE_GAMMA(LEVEL, ATTRIBUTE, PRECISION, PRECISE, G)                              \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, focal_##PRECISION##_##G##_hard, 0, G, 0, 1, PRECISE) \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, focal_##PRECISION##_##G##_soft, 0, G, 1, 1, PRECISE) \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, loss_##PRECISION##_##G##_hard, 0, G, 0, 0, PRECISE)  \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, loss_##PRECISION##_##G##_soft, 0, G, 1, 0, PRECISE)

#define GAMMA_ROW(LEVEL, PRECISION, G)                                                    \
    {{loss_##PRECISION##_##G##_hard_##LEVEL, focal_##PRECISION##_##G##_hard_##LEVEL},     \
     {loss_##PRECISION##_##G##_soft_##LEVEL, focal_##PRECISION##_##G##_soft_##LEVEL}}

#define DEFINE_PRECISION(LEVEL, ATTRIBUTE, PRECISION, PRECISE)                            \
    DEFINE_GAMMA(LEVEL, ATTRIBUTE, PRECISION, PRECISE, 0)                                 \
    DEFINE_GAMMA(LEVEL, ATTRIBUTE, PRECISION, PRECISE, 1)                                 \
    DEFINE_GAMMA(LEVEL, ATTRIBUTE, PRECISION, PRECISE, 2)                                 \
    DEFINE_GAMMA(LEVEL, ATTRIBUTE, PRECISION, PRECISE, 3)                                 \
    DEFINE_GAMMA(LEVEL, ATTRIBUTE, PRECISION, PRECISE, 4)                                 \
    DEFINE_GAMMA(LEVEL, ATTRIBUTE, PRECISION, PRECISE, 5)                                 \
    DEFINE_VARIANT(LEVEL, ATTRIBUTE, star_##PRECISION, 1, 0, 0, 1, PRECISE)

/* per level: focal kernels [precise][gamma 0..4, 5 = FOCAL_GAMMA_LARGE][soft][derivatives],
   FL* [precise] */
#define DEFINE_LEVEL(LEVEL, ATTRIBUTE)                                                    \
    DEFINE_PRECISION(LEVEL, ATTRIBUTE, plain, 0)                                          \
    DEFINE_PRECISION(LEVEL, ATTRIBUTE, precise, 1)                                        \
    static const block_kernel LEVEL##_focal[2][6][2][2] = {                               \
        {GAMMA_ROW(LEVEL, plain, 0), GAMMA_ROW(LEVEL, plain, 1), GAMMA_ROW(LEVEL, plain, 2), \
         GAMMA_ROW(LEVEL, plain, 3), GAMMA_ROW(LEVEL, plain, 4), GAMMA_ROW(LEVEL, plain, 5)}, \
        {GAMMA_ROW(LEVEL, precise, 0), GAMMA_ROW(LEVEL, precise, 1),                      \
         GAMMA_ROW(LEVEL, precise, 2), GAMMA_ROW(LEVEL, precise, 3),                      \
         GAMMA_ROW(LEVEL, precise, 4), GAMMA_ROW(LEVEL, precise, 5)},                     \
    };                                                                                    \
    static const block_kernel LEVEL##_star[2] = {star_plain_##LEVEL, star_precise_##LEVEL}; \
    DEFINE_IO(LEVEL, ATTRIBUTE)

/* the gather/scatter helpers of block_io.h and the running sums, per level */
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
    ATTRIBUTE static int labels_##LEVEL(const char *labels, ptrdiff_t label_stride,        \
                                        const char *classes, ptrdiff_t class_stride,        \
                                        ptrdiff_t n, ptrdiff_t ignore_index,                \
                                        ptrdiff_t num_classes, double *y, double *weight)   \
    {                                                                                     \
        return labels_to_targets(labels, label_stride, classes, class_stride, n,          \
                                 ignore_index, num_classes, y, weight);                   \
    }                                                                                     \
    ATTRIBUTE static int targets_##LEVEL(const double *y, ptrdiff_t n)                     \
    {                                                                                     \
        return check_targets(y, n);                                                       \
    }                                                                                     \
    ATTRIBUTE static int weights_##LEVEL(const double *w, ptrdiff_t n)                     \
    {                                                                                     \
        return any_bad_weight(w, n);                                                      \
    }                                                                                     \
    ATTRIBUTE static int special_##LEVEL(const double *x, ptrdiff_t n, double gamma,       \
                                         double beta, int star)                           \
    {                                                                                     \
        return any_special_logit(x, n, gamma, beta, star);                                \
    }                                                                                     \
    ATTRIBUTE static void accumulate_##LEVEL(block_sums *sums, const element_block *b,     \
                                             ptrdiff_t n, ptrdiff_t first_index,            \
                                             int which)                                     \
    {                                                                                     \
        accumulate_block(sums, b, n, first_index, which);                                 \
    }                                                                                     \
    static const block_io LEVEL##_io = {load_##LEVEL,    store_##LEVEL,   labels_##LEVEL,  \
                                        targets_##LEVEL, weights_##LEVEL, special_##LEVEL, \
                                        accumulate_##LEVEL};

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
choose_block_kernel(int level, int precise, int star, double gamma, int soft, int derivatives)
{
    /* gamma 1 to 4 have kernels of products; any other takes exp(gamma log q),
       gamma > 8 in kernels of their own (sigmoid_focal) */
    int g = focal_gamma_kernel(gamma);
    int p = precise ? 1 : 0, s = soft ? 1 : 0, d = derivatives ? 1 : 0;
#ifdef FOCAL_X86_DISPATCH
    if (level >= SIMD_AVX512) {
        return star ? avx512_star[p] : avx512_focal[p][g][s][d];
    }
    if (level >= SIMD_AVX2) {
        return star ? avx2_star[p] : avx2_focal[p][g][s][d];
    }
#else
    (void)level;
#endif
    return star ? baseline_star[p] : baseline_focal[p][g][s][d];
}

const block_io *
choose_block_io(int level)
{
#ifdef FOCAL_X86_DISPATCH
    if (level >= SIMD_AVX512) {
        return &avx512_io;
    }
    if (level >= SIMD_AVX2) {
        return &avx2_io;
    }
#else
    (void)level;
#endif
    return &baseline_io;
}

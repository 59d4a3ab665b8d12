/*
 * kernels.c: the table of losses (losses.h) compiled for each instruction
 * set, and the choice among the results at run time.
 *
 * The default build targets the baseline of the architecture (no
 * -march=native), so one wheel runs on any x86-64.  The same source is
 * compiled again with AVX2+FMA and with AVX-512 target attributes; the best
 * level the CPU supports is used, unless a lower one is asked for
 * (focal._core.set_simd_level, for tests and comparisons).  Every level
 * executes the same floating-point operations (no contraction into FMA:
 * -ffp-contract=off), so they give bitwise the same results.
 *
 * For each row of the table, level, precision (float32 or float64 results),
 * form of the row and outputs (loss; loss and gradient; and second
 * derivative) there is one function; whether the block holds soft targets is
 * a branch at its top, to two specialised loops.  Nothing below names a loss.
 */
#include "simd.h"

#include "block_io.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FOCAL_X86_DISPATCH 1
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#endif

/* the body every kernel shares: the row's block, then its scalar path if any
   logit asked for it; a row of hard targets never sees soft = 1 */
#define KERNEL_BODY(NAME, TARGETS, FORM, OUTPUTS, PRECISE, SOFT)                          \
    if (NAME##_block(bp, b, n, FORM, SOFT, OUTPUTS, PRECISE)) {                           \
        finish_special(bp, b, n, PRECISE, NAME##_special, NAME##_limit);                  \
    }

#define DEFINE_KERNEL(LEVEL, ATTRIBUTE, NAME, TARGETS, FORM, OUTPUTS, PRECISE)            \
    ATTRIBUTE static void NAME##_##LEVEL##_##FORM##_##OUTPUTS##_##PRECISE(                \
        const block_params *bp, element_block *b, ptrdiff_t n, int soft)                   \
    {                                                                                     \
        if ((TARGETS) == TARGETS_DENSE && soft) {                                          \
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
    ATTRIBUTE static int labels_##LEVEL(const char *labels, ptrdiff_t label_stride,        \
                                        const char *classes, ptrdiff_t class_stride,        \
                                        ptrdiff_t n, ptrdiff_t ignore_index,                \
                                        ptrdiff_t num_classes, double *y, double *weight)   \
    {                                                                                     \
        return labels_to_targets(labels, label_stride, classes, class_stride, n,          \
                                 ignore_index, num_classes, y, weight);                   \
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
                                             int which, int *small_sums)                    \
    {                                                                                     \
        accumulate_block(sums, b, n, first_index, which, small_sums);                     \
    }                                                                                     \
    static const block_io LEVEL##_io = {load_##LEVEL,    store_##LEVEL,   labels_##LEVEL,  \
                                        targets_##LEVEL, weights_##LEVEL, accumulate_##LEVEL};

#define DEFINE_LEVEL(LEVEL, ATTRIBUTE)                                                    \
    FOCAL_ELEMENTWISE_LOSSES(DEFINE_ROW_AT_##LEVEL)                                       \
    static const row_kernels *const LEVEL##_rows[FOCAL_LOSS_COUNT] = {                   \
        FOCAL_ELEMENTWISE_LOSSES(ROW_AT_##LEVEL)};                                        \
    DEFINE_IO(LEVEL, ATTRIBUTE)

/* (the table's ROW takes the row's fields only: one adapter per level) */
#define DEFINE_ROW_AT_baseline(...) DEFINE_ROW(baseline, , __VA_ARGS__)
#define ROW_AT_baseline(...) ROW_AT(baseline, __VA_ARGS__)
DEFINE_LEVEL(baseline, )
#ifdef FOCAL_X86_DISPATCH
#define DEFINE_ROW_AT_avx2(...) DEFINE_ROW(avx2, TARGET_AVX2, __VA_ARGS__)
#define ROW_AT_avx2(...) ROW_AT(avx2, __VA_ARGS__)
DEFINE_LEVEL(avx2, TARGET_AVX2)
#define DEFINE_ROW_AT_avx512(...) DEFINE_ROW(avx512, TARGET_AVX512, __VA_ARGS__)
#define ROW_AT_avx512(...) ROW_AT(avx512, __VA_ARGS__)
DEFINE_LEVEL(avx512, TARGET_AVX512)
#endif

/* what the driver needs to know of each row (losses.h) */
#define ROW_INFO(NAME, NUMBER, TITLE, TARGETS, HESS)                                      \
    [NUMBER] = {TITLE, TARGETS, HESS, NAME##_form, NAME##_prepare},
static const loss_row loss_rows[FOCAL_LOSS_COUNT] = {FOCAL_ELEMENTWISE_LOSSES(ROW_INFO)};

const loss_row *
loss_row_of(int loss)
{
    return loss >= 0 && loss < FOCAL_LOSS_COUNT ? &loss_rows[loss] : NULL;
}

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
choose_block_kernel(int level, const kernel_choice *choice)
{
    const row_kernels *const *rows = baseline_rows;
#ifdef FOCAL_X86_DISPATCH
    rows = level >= SIMD_AVX512 ? avx512_rows : level >= SIMD_AVX2 ? avx2_rows : baseline_rows;
#else
    (void)level;
#endif
    return (*rows[choice->loss])[choice->precise][choice->form][choice->outputs];
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

/*
 * kernels.c: the choice at run time among the table of losses (losses.h)
 * compiled for each instruction set (kernels_LEVEL.c, kernel_levels.h).
 *
 * The default build targets the baseline of the architecture (no
 * -march=native), so one wheel runs on any x86-64.  The same source is
 * compiled again with AVX2+FMA and with AVX-512 target attributes; the best
 * level the CPU supports is used, unless a lower one is asked for
 * (focal._core.set_simd_level, for tests and comparisons).  Nothing below
 * names a loss.
 */
#include "kernel_levels.h"

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
    const row_kernels *const *rows = focal_rows_baseline;
#ifdef FOCAL_X86_DISPATCH
    rows = level >= SIMD_AVX512 ? focal_rows_avx512
           : level >= SIMD_AVX2  ? focal_rows_avx2
                                 : focal_rows_baseline;
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
        return &focal_io_avx512;
    }
    if (level >= SIMD_AVX2) {
        return &focal_io_avx2;
    }
#else
    (void)level;
#endif
    return &focal_io_baseline;
}

/*
 * kernels_baseline.c: the table of losses (kernel_levels.h) compiled for
 * the architecture's baseline (x86-64: SSE2), which every CPU runs.
 */
#include "kernel_levels.h"

#define DEFINE_ROW_AT_baseline(...) DEFINE_ROW(baseline, , __VA_ARGS__)
#define ROW_AT_baseline(...) ROW_AT(baseline, __VA_ARGS__)
DEFINE_LEVEL(baseline, )

/*
 * block_io.h: moving a block between NumPy's strided runs and the double
 * arrays of element_block.h, written so the loops vectorise (kernels.c
 * compiles them once per instruction set, like the kernels).  Nothing here
 * knows which loss runs.
 */
#ifndef FOCAL_BLOCK_IO_H
#define FOCAL_BLOCK_IO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "numeric.h"

/* float32 or float64 storage, strided, to double */
FOCAL_INLINE void
load_reals(const char *source, ptrdiff_t stride, ptrdiff_t n, int is_double, double *out)
{
    if (is_double && stride == (ptrdiff_t)sizeof(double)) {
        memcpy(out, source, (size_t)n * sizeof(double));
    }
    else if (is_double) {
        for (ptrdiff_t i = 0; i < n; i++) {
            memcpy(&out[i], source + i * stride, sizeof(double));
        }
    }
    else if (stride == (ptrdiff_t)sizeof(float)) {
        const float *values = (const float *)source;
        for (ptrdiff_t i = 0; i < n; i++) {
            out[i] = (double)values[i];
        }
    }
    else {
        for (ptrdiff_t i = 0; i < n; i++) {
            float value;
            memcpy(&value, source + i * stride, sizeof(float));
            out[i] = (double)value;
        }
    }
}

/* double to float32 or float64 storage, strided */
FOCAL_INLINE void
store_reals(const double *values, char *destination, ptrdiff_t stride, ptrdiff_t n,
            int is_double)
{
    if (is_double && stride == (ptrdiff_t)sizeof(double)) {
        memcpy(destination, values, (size_t)n * sizeof(double));
    }
    else if (is_double) {
        for (ptrdiff_t i = 0; i < n; i++) {
            memcpy(destination + i * stride, &values[i], sizeof(double));
        }
    }
    else if (stride == (ptrdiff_t)sizeof(float)) {
        float *out = (float *)destination;
        for (ptrdiff_t i = 0; i < n; i++) {
            out[i] = (float)values[i];
        }
    }
    else {
        for (ptrdiff_t i = 0; i < n; i++) {
            float value = (float)values[i];
            memcpy(destination + i * stride, &value, sizeof(float));
        }
    }
}

/*
 * Class indices to targets, one row after the other: a row's targets are 0
 * but at its label, its weights 0 when it is ignored (no compare per element).
 * The n elements start at class in_row of their first row; the label of the
 * row that starts at element i (counted from 0) and is row r of the block
 * lies at labels + r row_step + i element_step (row_step: labels read in
 * place, one per row; element_step: the iterator's run, one per element, or
 * 0 when broadcast).  Returns whether a label was outside [0, num_classes]
 * without being ignore_index, that label in *bad (the first such in order).
 */
FOCAL_INLINE int
labels_to_targets(const char *labels, ptrdiff_t row_step, ptrdiff_t element_step,
                  ptrdiff_t in_row, ptrdiff_t n, ptrdiff_t ignore_index, ptrdiff_t num_classes,
                  double *y, double *weight, ptrdiff_t *bad)
{
    for (ptrdiff_t i = 0, r = 0; i < n; r++, in_row = 0) {
        ptrdiff_t length = num_classes - in_row < n - i ? num_classes - in_row : n - i;
        ptrdiff_t label;
        memcpy(&label, labels + r * row_step + i * element_step, sizeof label);
        int ignored = label == ignore_index;
        if (!ignored && (label < 0 || label > num_classes)) {
            *bad = label;
            return 1;
        }
        for (ptrdiff_t k = 0; k < length; k++) {
            y[i + k] = 0.0;
        }
        if (ignored) {
            for (ptrdiff_t k = 0; k < length; k++) {
                weight[i + k] = 0.0;
            }
        }
        else if (label >= in_row && label < in_row + length) {
            y[i + label - in_row] = 1.0;
        }
        i += length;
    }
    return 0;
}

/*
 * Targets in float32 or float64 storage, strided, to double, checked on the
 * way (contiguous float32 ones as float32, before the conversion): bit 1 of
 * the result, a value outside [0, 1] or NaN; bit 2, a value strictly inside
 * (0, 1) (a soft target).  The caller finds which value is bad only when
 * bit 1 (or, for a loss of hard targets, bit 2) is set.
 */
/* (the check of load_targets, or-ed into bad and soft; integer constants, so
   that a float VALUE is compared as a float, a double as a double) */
#define CHECK_TARGET(VALUE, bad, soft)                                                     \
    do {                                                                                  \
        bad |= !(((VALUE) >= 0) & ((VALUE) <= 1));                                       \
        soft |= ((VALUE) != 0) & ((VALUE) != 1);                                         \
    } while (0)

FOCAL_INLINE int
load_targets(const char *source, ptrdiff_t stride, ptrdiff_t n, int is_double, double *y)
{
    /* (flags as wide as the doubles compared: an int would make the
       vectorised loop pack every comparison down to 32 bits) */
    long long bad = 0, soft = 0;
    if (!is_double && stride == (ptrdiff_t)sizeof(float)) {
        /* the common case: checked as float32 (the same comparisons, the
           conversion being exact), twice the values a vector, with flags as
           wide as they are; then converted.  Converted and checked as
           doubles in one loop, this took 0.31 to 0.38 ns an element beside
           the block kernel's 1.7 (one core, in cache), now 0.12 to 0.13. */
        const float *values = (const float *)source;
        int bad32 = 0, soft32 = 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            CHECK_TARGET(values[i], bad32, soft32);
        }
        for (ptrdiff_t i = 0; i < n; i++) {
            y[i] = (double)values[i];
        }
        bad = bad32;
        soft = soft32;
    }
    else {
        load_reals(source, stride, n, is_double, y);
        for (ptrdiff_t i = 0; i < n; i++) {
            CHECK_TARGET(y[i], bad, soft);
        }
    }
    return (bad != 0) | ((soft != 0) << 1);
}

/* float64 weights, strided, to double: bit 1 of the result, one may be
   negative, infinite or NaN (the caller looks for it); bit 2, one may be
   above 1 (FOCAL_BLOCK_HEAVY).  One unsigned maximum of their bits answers
   both: the bits of a weight in [0, inf) are below those of inf, a negative
   weight's (-0.0's too, which the caller then finds valid) above them, and
   those set bit 2 as well, which costs a scan at most (finish_special).  (Two
   flags, each an or of comparisons, cost a weighted call a twentieth of
   its time.) */
FOCAL_INLINE int
load_weights(const char *source, ptrdiff_t stride, ptrdiff_t n, double *w)
{
    load_reals(source, stride, n, 1, w);
    uint64_t top = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &w[i], sizeof bits);
        top = bits > top ? bits : top;
    }
    const uint64_t one = 0x3ff0000000000000ULL, infinity = 0x7ff0000000000000ULL;
    return (top >= infinity) | ((top > one) << 1);
}

#endif  /* FOCAL_BLOCK_IO_H */

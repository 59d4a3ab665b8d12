/*
 * block_io.h: moving a block between NumPy's strided runs and the double
 * arrays of element_block.h, written so the loops vectorise (kernels.c
 * compiles them once per instruction set, like the kernels).  Nothing here
 * knows which loss runs.
 */
#ifndef FOCAL_BLOCK_IO_H
#define FOCAL_BLOCK_IO_H

#include <stddef.h>
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
 * Class indices to targets: y = 1 where the element's class is the label;
 * an ignored row gets weight 0 (and y 0).  Returns whether any label was out
 * of [0, num_classes] without being ignore_index; the caller finds which.
 */
FOCAL_INLINE int
labels_to_targets(const char *labels, ptrdiff_t label_stride, const char *classes,
                  ptrdiff_t class_stride, ptrdiff_t n, ptrdiff_t ignore_index,
                  ptrdiff_t num_classes, double *y, double *weight)
{
    ptrdiff_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        ptrdiff_t label, class_id;
        memcpy(&label, labels + i * label_stride, sizeof label);
        memcpy(&class_id, classes + i * class_stride, sizeof class_id);
        int ignored = label == ignore_index;
        bad |= (!ignored) & ((label < 0) | (label > num_classes));
        weight[i] = ignored ? 0.0 : weight[i];
        y[i] = ((label == class_id) & !ignored) ? 1.0 : 0.0;
    }
    return bad != 0;
}

/*
 * Targets in float32 or float64 storage, strided, to double, checked in the
 * same loop: bit 1 of the result, a value outside [0, 1] or NaN; bit 2, a
 * value strictly inside (0, 1) (a soft target).  The caller finds which
 * value is bad only when bit 1 (or, for a loss of hard targets, bit 2) is set.
 */
/* (the check of load_targets, or-ed into bad and soft) */
#define CHECK_TARGET(VALUE, bad, soft)                                                     \
    do {                                                                                  \
        bad |= !(((VALUE) >= 0.0) & ((VALUE) <= 1.0));                                   \
        soft |= ((VALUE) != 0.0) & ((VALUE) != 1.0);                                     \
    } while (0)

FOCAL_INLINE int
load_targets(const char *source, ptrdiff_t stride, ptrdiff_t n, int is_double, double *y)
{
    /* (flags as wide as the doubles compared: an int would make the
       vectorised loop pack every comparison down to 32 bits) */
    long long bad = 0, soft = 0;
    if (!is_double && stride == (ptrdiff_t)sizeof(float)) {
        /* the common case, converted and checked in one loop */
        const float *values = (const float *)source;
        for (ptrdiff_t i = 0; i < n; i++) {
            double value = (double)values[i];
            CHECK_TARGET(value, bad, soft);
            y[i] = value;
        }
    }
    else {
        load_reals(source, stride, n, is_double, y);
        for (ptrdiff_t i = 0; i < n; i++) {
            CHECK_TARGET(y[i], bad, soft);
        }
    }
    return (bad != 0) | ((soft != 0) << 1);
}

/* float64 weights, strided, to double; returns whether any is negative,
   infinite or NaN */
FOCAL_INLINE int
load_weights(const char *source, ptrdiff_t stride, ptrdiff_t n, double *w)
{
    load_reals(source, stride, n, 1, w);
    long long bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        bad |= !((w[i] >= 0.0) & (w[i] < HUGE_VAL));
    }
    return bad != 0;
}

#endif  /* FOCAL_BLOCK_IO_H */

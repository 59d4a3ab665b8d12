/*
 * block_io.h: moving a block between NumPy's strided runs and the double
 * arrays of element_block.h, written so the loops vectorise (simd.c compiles
 * them once per instruction set, like the kernels).
 */
#ifndef FOCAL_BLOCK_IO_H
#define FOCAL_BLOCK_IO_H

#include <stddef.h>
#include <string.h>

#include "numeric.h"
#include "sigmoid_focal.h" /* FOCAL_STAR_FAR */

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
    int bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        ptrdiff_t label, class_id;
        memcpy(&label, labels + i * label_stride, sizeof label);
        memcpy(&class_id, classes + i * class_stride, sizeof class_id);
        int ignored = label == ignore_index;
        bad |= (!ignored) & ((label < 0) | (label > num_classes));
        weight[i] = ignored ? 0.0 : weight[i];
        y[i] = ((label == class_id) & !ignored) ? 1.0 : 0.0;
    }
    return bad;
}

/* validation of dense targets: bit 1, a value outside [0, 1] or NaN; bit 2, a
   value strictly inside (0, 1) (a soft target) */
FOCAL_INLINE int
check_targets(const double *y, ptrdiff_t n)
{
    int bad = 0, soft = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        bad |= !((y[i] >= 0.0) & (y[i] <= 1.0));
        soft |= (y[i] != 0.0) & (y[i] != 1.0);
    }
    return bad | (soft << 1);
}

/* whether any weight is negative, infinite or NaN */
FOCAL_INLINE int
any_bad_weight(const double *w, ptrdiff_t n)
{
    int bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        bad |= !((w[i] >= 0.0) & (w[i] < HUGE_VAL));
    }
    return bad;
}

/* whether any logit is infinite or NaN, is beyond FOCAL_SIGMOID_FAR (the
   sigmoid form), or for FL* makes gamma x + beta so or may put
   z = gamma s x + beta past FOCAL_STAR_FAR (needs_scalar_path) */
FOCAL_INLINE int
any_special_logit(const double *x, ptrdiff_t n, double gamma, double beta, int star)
{
    int special = 0;
    if (!star) { /* one compare: NaN and +-inf fail it too */
        for (ptrdiff_t i = 0; i < n; i++) {
            special |= !(fabs(x[i]) <= FOCAL_SIGMOID_FAR);
        }
        return special;
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        double z = gamma * x[i] + beta;
        int far = !(gamma * fabs(x[i]) + beta <= FOCAL_STAR_FAR);
        special |= !((x[i] - x[i]) == 0.0) | !((z - z) == 0.0) | far;
    }
    return special;
}

#endif  /* FOCAL_BLOCK_IO_H */

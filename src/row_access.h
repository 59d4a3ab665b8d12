/*
 * row_access.h: reading and writing one strided row of any NumPy dtype.
 *
 * The softmax kernel needs a whole row (the class axis) at once, wherever
 * that axis lies in memory.  NpyIter hands out the start of each row; these
 * loaders read the row along its stride into a small double buffer, whatever
 * the dtype, byte order or alignment (memcpy makes the unaligned read
 * well-defined and compiles to a plain load), so nothing is copied beyond one
 * row.
 */
#ifndef FOCAL_ROW_ACCESS_H
#define FOCAL_ROW_ACCESS_H

#include <stdint.h>
#include <string.h>

#include "glue.h"

typedef void (*row_loader)(const char *source, npy_intp stride, npy_intp n, double *out);
typedef void (*row_storer)(const double *values, char *destination, npy_intp stride,
                           npy_intp n);

/* IEEE half precision bits to double: sign, 5-bit exponent, 10-bit fraction */
static inline double
half_to_double(uint16_t bits)
{
    int exponent = (bits >> 10) & 0x1f;
    int fraction = bits & 0x3ff;
    double magnitude;
    if (exponent == 0) {
        magnitude = ldexp((double)fraction, -24); /* zero and subnormals */
    }
    else if (exponent == 0x1f) {
        magnitude = fraction ? NAN : HUGE_VAL;
    }
    else {
        magnitude = ldexp((double)(fraction | 0x400), exponent - 25);
    }
    return (bits & 0x8000) ? -magnitude : magnitude;
}

#define AS_DOUBLE(value) ((double)(value))
#define HALF_AS_DOUBLE(value) half_to_double(value)

/* One loader per (storage type, byte order), written once. */
#define DEFINE_ROW_LOADER(NAME, CTYPE, SWAPPED, CONVERT)                               \
    static void NAME(const char *source, npy_intp stride, npy_intp n, double *out)      \
    {                                                                                   \
        for (npy_intp i = 0; i < n; i++) {                                              \
            unsigned char bytes[sizeof(CTYPE)];                                         \
            memcpy(bytes, source + i * stride, sizeof(CTYPE));                          \
            if (SWAPPED) {                                                              \
                for (size_t k = 0; 2 * k + 1 < sizeof(CTYPE); k++) {                     \
                    unsigned char swap = bytes[k];                                      \
                    bytes[k] = bytes[sizeof(CTYPE) - 1 - k];                            \
                    bytes[sizeof(CTYPE) - 1 - k] = swap;                                \
                }                                                                       \
            }                                                                           \
            CTYPE value;                                                                \
            memcpy(&value, bytes, sizeof(CTYPE));                                       \
            out[i] = CONVERT(value);                                                    \
        }                                                                               \
    }

#define DEFINE_ROW_LOADERS(SUFFIX, CTYPE, CONVERT)                                       \
    DEFINE_ROW_LOADER(load_##SUFFIX, CTYPE, 0, CONVERT)                                 \
    DEFINE_ROW_LOADER(load_swapped_##SUFFIX, CTYPE, 1, CONVERT)

DEFINE_ROW_LOADERS(bool, uint8_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(int8, int8_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(uint8, uint8_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(int16, int16_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(uint16, uint16_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(int32, int32_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(uint32, uint32_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(int64, int64_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(uint64, uint64_t, AS_DOUBLE)
DEFINE_ROW_LOADERS(float16, uint16_t, HALF_AS_DOUBLE)
DEFINE_ROW_LOADERS(float32, float, AS_DOUBLE)
DEFINE_ROW_LOADERS(float64, double, AS_DOUBLE)

/* The loader for an array's dtype, or NULL (with no exception set) if none. */
static inline row_loader
find_row_loader(PyArrayObject *array)
{
    PyArray_Descr *descr = PyArray_DESCR(array);
    int swapped = PyArray_ISBYTESWAPPED(array);
    npy_intp size = PyArray_ITEMSIZE(array);
#define PICK(SUFFIX) return swapped ? load_swapped_##SUFFIX : load_##SUFFIX
    switch (descr->kind) {
    case 'b':
        PICK(bool);
    case 'i':
        switch (size) {
        case 1: PICK(int8);
        case 2: PICK(int16);
        case 4: PICK(int32);
        case 8: PICK(int64);
        }
        break;
    case 'u':
        switch (size) {
        case 1: PICK(uint8);
        case 2: PICK(uint16);
        case 4: PICK(uint32);
        case 8: PICK(uint64);
        }
        break;
    case 'f':
        switch (size) {
        case 2: PICK(float16);
        case 4: PICK(float32);
        case 8: PICK(float64);
        }
        break;
    }
#undef PICK
    return NULL;
}

/* A class index of any integer dtype, clamped into npy_intp's range so that a
   huge value is reported as out of range rather than wrapped. */
static inline npy_intp
load_label(PyArrayObject *array, const char *source)
{
    int swapped = PyArray_ISBYTESWAPPED(array);
    unsigned char bytes[8];
    npy_intp size = PyArray_ITEMSIZE(array);
    memcpy(bytes, source, (size_t)size);
    if (swapped) {
        for (npy_intp k = 0; k < size / 2; k++) {
            unsigned char swap = bytes[k];
            bytes[k] = bytes[size - 1 - k];
            bytes[size - 1 - k] = swap;
        }
    }
    int is_signed = PyArray_DESCR(array)->kind == 'i';
    switch (size) {
    case 1: {
        int8_t s; uint8_t u; memcpy(&s, bytes, 1); memcpy(&u, bytes, 1);
        return is_signed ? s : u;
    }
    case 2: {
        int16_t s; uint16_t u; memcpy(&s, bytes, 2); memcpy(&u, bytes, 2);
        return is_signed ? s : u;
    }
    case 4: {
        int32_t s; uint32_t u; memcpy(&s, bytes, 4); memcpy(&u, bytes, 4);
        return is_signed ? (npy_intp)s : (npy_intp)u;
    }
    default: {
        int64_t s; uint64_t u; memcpy(&s, bytes, 8); memcpy(&u, bytes, 8);
        if (is_signed) {
            return (npy_intp)s;
        }
        return u > (uint64_t)NPY_MAX_INTP ? NPY_MAX_INTP : (npy_intp)u;
    }
    }
}

#define DEFINE_ROW_STORER(NAME, CTYPE)                                                   \
    static void NAME(const double *values, char *destination, npy_intp stride, npy_intp n) \
    {                                                                                   \
        for (npy_intp i = 0; i < n; i++) {                                              \
            CTYPE value = (CTYPE)values[i];                                             \
            memcpy(destination + i * stride, &value, sizeof(CTYPE));                    \
        }                                                                               \
    }

DEFINE_ROW_STORER(store_float32, float)
DEFINE_ROW_STORER(store_float64, double)

#endif  /* FOCAL_ROW_ACCESS_H */

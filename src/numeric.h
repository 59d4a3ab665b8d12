/*
 * numeric.h: the arithmetic every kernel of focal is built from.
 *
 * Plain C with no Python or NumPy in it: double-double arithmetic for the
 * float64 kernels and compensated sums for the reductions.  Every kernel is
 * written once and takes a `precise` argument that is a constant at each call
 * site, so the compiler builds a plain-double version (float32 results: double
 * already carries ~29 bits more than needed) and a double-double version
 * (float64 results) from the same text.
 */
#ifndef FOCAL_NUMERIC_H
#define FOCAL_NUMERIC_H

#include <math.h>
#include <float.h>

/* The kernel must be inlined where `precise` is a constant, to be specialised. */
#if defined(__GNUC__)
#define FOCAL_INLINE static inline __attribute__((always_inline))
#else
#define FOCAL_INLINE static inline
#endif

/* A rare path (the scalar path's limits, a steep region): compiled once per
   file, not inlined into each of a level's hundreds of kernels.  Inlined,
   it made the baseline's object nearly half larger (5.96 MB, now 4.09;
   AVX-512's 9.28, now 8.32) and the build 382 s instead of 300 on two
   cores, and the kernels no faster: it runs for the few elements that need
   it, from loops that do not vectorise there.  It takes the target
   attribute of its file's level (FOCAL_LEVEL_TARGET, which kernels_avx2.c
   and kernels_avx512.c define before any include): without it, its fused
   multiply-adds were calls to the C library's fma in those files (the same
   bits, fma being exactly rounded, but a call each). */
#ifndef FOCAL_LEVEL_TARGET
#define FOCAL_LEVEL_TARGET
#endif
#if defined(__GNUC__)
#define FOCAL_OUTLINED static __attribute__((noinline, unused)) FOCAL_LEVEL_TARGET
#else
#define FOCAL_OUTLINED static
#endif

/*
 * Double-double arithmetic (a value as an unevaluated sum hi + lo).  The
 * float64 results are built from a few roundings each; carrying the
 * intermediate products in double-double leaves only the error of libm's exp
 * and log1p and the final rounding, which is what keeps the loss and the
 * gradient within a few ULP of the exact value.  With precise = 0 every
 * operation is the plain double one and lo stays 0.
 */
typedef struct {
    double hi, lo;
} dd;

FOCAL_INLINE dd
dd_from(double a)
{
    dd r = {a, 0.0};
    return r;
}

/* a + b exactly, for |a| >= |b| (Dekker) */
FOCAL_INLINE dd
fast_two_sum(double a, double b, int precise)
{
    if (!precise) {
        return dd_from(a + b);
    }
    dd r;
    r.hi = a + b;
    r.lo = b - (r.hi - a);
    return r;
}

/* a + b exactly, any order (Knuth) */
FOCAL_INLINE dd
two_sum(double a, double b, int precise)
{
    if (!precise) {
        return dd_from(a + b);
    }
    dd r;
    r.hi = a + b;
    double b_virtual = r.hi - a;
    r.lo = (a - (r.hi - b_virtual)) + (b - b_virtual);
    return r;
}

/* a * b exactly (barring underflow), with one fused multiply-add */
FOCAL_INLINE dd
two_product(double a, double b, int precise)
{
    if (!precise) {
        return dd_from(a * b);
    }
    dd r;
    r.hi = a * b;
    r.lo = fma(a, b, -r.hi);
    return r;
}

FOCAL_INLINE dd
dd_add(dd a, dd b, int precise)
{
    if (!precise) {
        return dd_from(a.hi + b.hi);
    }
    dd s = two_sum(a.hi, b.hi, precise);
    return fast_two_sum(s.hi, s.lo + a.lo + b.lo, precise);
}

FOCAL_INLINE dd
dd_mul(dd a, dd b, int precise)
{
    if (!precise) {
        return dd_from(a.hi * b.hi);
    }
    dd p = two_product(a.hi, b.hi, precise);
    return fast_two_sum(p.hi, p.lo + a.hi * b.lo + a.lo * b.hi, precise);
}

/* a + b for running sums: once a term is infinite the sum stays so, not NaN */
FOCAL_INLINE dd
dd_accumulate(dd a, dd b, int precise)
{
    double plain = a.hi + b.hi;
    return isfinite(plain) ? dd_add(a, b, precise) : dd_from(plain);
}

/* a * b rounded to double; infinities multiply plainly (the dd form gives NaN) */
FOCAL_INLINE double
dd_mul_rounded(dd a, dd b, int precise)
{
    double product = a.hi * b.hi;
    return isfinite(product) ? dd_mul(a, b, precise).hi : product;
}

FOCAL_INLINE dd
dd_scale(dd a, double b, int precise)
{
    if (!precise) {
        return dd_from(a.hi * b);
    }
    dd p = two_product(a.hi, b, precise);
    return fast_two_sum(p.hi, p.lo + a.lo * b, precise);
}

/*
 * a b for a power of two b < 1 that may take a into the subnormal range
 * (the kernels' values formed 2^1000 larger, scaled back).  There dd_scale
 * rounds a.hi b to the subnormal grid and drops a.lo, which lies below it:
 * two roundings, up to 1.1 subnormal spacings (review 93).  Rounded once
 * instead: the grid is 2^-1074 / b at a's scale, a.hi - round(a.hi b) / b is
 * exact (both multiples of a.hi's ulp, at most half the grid apart), and
 * with a.lo (below a quarter of the grid) it moves the result one spacing
 * where it passes half the grid.  The high part of a normal result is a.hi b
 * exactly.  Selects: the block loops vectorise.
 */
FOCAL_INLINE dd
dd_scale_down(dd a, double b, int precise)
{
    double rounded = a.hi * b;
    if (!precise) {
        return dd_from(rounded);
    }
    double residual = (a.hi - rounded / b) + a.lo;
    double half = 0.5 * (0x1p-1074 / b); /* (2^-1075 itself is not a double) */
    double step = residual > half ? 0x1p-1074 : residual < -half ? -0x1p-1074 : 0.0;
    dd once = {rounded + step, 0.0};
    /* a normal product is exact, a.hi already a + a.lo rounded; a.lo b is
       not added to it (dd_scale's sum: a.lo b rounded to the subnormal grid
       moved a result below 2^-1020 by its last unit, 0.70 ULP, review 94) */
    dd normal = {rounded, a.lo * b};
    return fabs(rounded) < 0x1p-1022 ? once : normal;
}

FOCAL_INLINE dd
dd_negate(dd a)
{
    dd r = {-a.hi, -a.lo};
    return r;
}

/*
 * c ? a : b, for the kernels' selects that replace a formula whose terms
 * vanish (hard targets: q = y (1 - p) + (1 - y) p is 1 - p or p).  The
 * formula's sums turn a low part of -0 into +0; so does adding 0 here, so
 * that the select gives the formula's bits exactly.
 */
FOCAL_INLINE dd
dd_pick(int c, dd a, dd b)
{
    dd r = c ? a : b;
    r.lo = r.lo + 0.0;
    return r;
}

/* sign * a for sign = +-1: dd_mul's bits (its sums give +0, not -0), in two
   operations instead of a dozen */
FOCAL_INLINE dd
dd_times_sign(dd a, double sign, int precise)
{
    if (!precise) {
        return dd_from(sign * a.hi);
    }
    dd r = {sign * a.hi + 0.0, sign * a.lo + 0.0};
    return r;
}

/* 1 / a, one Newton step from the double reciprocal; a.hi != 0 */
FOCAL_INLINE dd
dd_reciprocal(dd a, int precise)
{
    double r = 1.0 / a.hi;
    if (!precise) {
        return dd_from(r);
    }
    double residual = fma(-r, a.hi, 1.0) - r * a.lo;
    return fast_two_sum(r, r * residual, precise);
}

FOCAL_INLINE dd
dd_divide(dd a, dd b, int precise)
{
    if (!precise) {
        return dd_from(a.hi / b.hi);
    }
    /* a divisor below 2^-1000 (a subnormal q of a subnormal soft target):
       its reciprocal would overflow, and 0 times it be NaN.  Divide by
       b 2^600 instead and scale the quotient back, both exact (selects: this
       sits in loops that must vectorise). */
    double lift = fabs(b.hi) < 0x1p-1000 ? 0x1p600 : 1.0;
    dd quotient = dd_mul(a, dd_reciprocal(dd_scale(b, lift, precise), precise), precise);
    return dd_scale(quotient, lift, precise);
}

/* (a.hi + a.lo) / b rounded once (nearly): a quotient and its remainder */
FOCAL_INLINE double
dd_divide_double(dd a, double b, int precise)
{
    double quotient = a.hi / b;
    if (!precise) {
        return quotient;
    }
    dd back = two_product(quotient, b, precise);
    double rest = (a.hi - back.hi) - back.lo + a.lo;
    /* (selects, not branches: this sits in loops that must vectorise); an
       infinite quotient has no remainder to add (it would be NaN), nor has a
       quotient whose product back with b rounds past the double range (FL*'s
       1.8e308 / 3: inf - inf was NaN): both keep the plain quotient */
    double refined = isfinite(rest) ? quotient + rest / b : quotient;
    return b == 1.0 ? a.hi : refined;
}

/* q^gamma with the cheap exact cases spelled out; pow(0, 0) is 1 as wanted. */
FOCAL_INLINE dd
dd_power(dd q, double gamma, int precise)
{
    if (gamma == 0.0) {
        return dd_from(1.0);
    }
    if (gamma == 1.0) {
        return q;
    }
    if (gamma == 2.0) {
        return dd_mul(q, q, precise);
    }
    double h = pow(q.hi, gamma);
    if (!precise || h == 0.0 || q.hi == 0.0) {
        return dd_from(h);
    }
    /* (hi + lo)^g = hi^g (1 + g lo / hi) to first order; lo / hi < 2^-52 */
    return fast_two_sum(h, h * gamma * (q.lo / q.hi), precise);
}

/*
 * A value of any size, m 2^e with m a double-double in [1, 2) (or 0) and e
 * an integer-valued double: the far tails' parts (e^-|x| from |x| = 745 on,
 * below the doubles, times an epsilon or gamma up to 1.8e308) multiply and
 * add without underflow or overflow, each operation as exact as a
 * double-double one, and the result is rounded to a double once, last.
 * Always double-double (the paths that use it are rare).
 */
typedef struct {
    dd m;
    double e;
} dd_wide;

/* a double-double as m 2^e (0, infinite or NaN as it is, e = 0) */
static inline dd_wide
wide_from(dd a)
{
    dd_wide r = {a, 0.0};
    if (a.hi == 0.0 || !isfinite(a.hi)) {
        return r;
    }
    int k = ilogb(a.hi);
    r.m.hi = scalbn(a.hi, -k);
    r.m.lo = scalbn(a.lo, -k);
    r.e = (double)k;
    return r;
}

static inline dd_wide
wide_mul(dd_wide a, dd_wide b)
{
    dd_wide r = wide_from(dd_mul(a.m, b.m, 1));
    r.e += a.e + b.e;
    return r;
}

/* a / b, b not 0 */
static inline dd_wide
wide_divide(dd_wide a, dd_wide b)
{
    dd_wide r = wide_from(dd_divide(a.m, b.m, 1));
    r.e += a.e - b.e;
    return r;
}

static inline dd_wide
wide_add(dd_wide a, dd_wide b)
{
    if (b.m.hi == 0.0 || (a.m.hi != 0.0 && a.e - b.e > 120.0)) {
        return a; /* (b below 2^-118 of a: beyond the double-double's digits) */
    }
    if (a.m.hi == 0.0 || b.e - a.e > 120.0) {
        return b;
    }
    /* the smaller mantissa moved by at most 2^-120: exact, its low part too
       (nothing nears the subnormals) */
    double top = a.e > b.e ? a.e : b.e;
    dd a_moved = {scalbn(a.m.hi, (int)(a.e - top)), scalbn(a.m.lo, (int)(a.e - top))};
    dd b_moved = {scalbn(b.m.hi, (int)(b.e - top)), scalbn(b.m.lo, (int)(b.e - top))};
    dd_wide r = wide_from(dd_add(a_moved, b_moved, 1));
    r.e += top;
    return r;
}

static inline dd_wide
wide_negate(dd_wide a)
{
    a.m = dd_negate(a.m);
    return a;
}

/* m 2^e as a double-double: both parts where it is normal (the low part
   keeps what digits it can below 2^-1022: a weight may bring them back),
   else the high part rounded once (subnormal, 0 or infinite) */
static inline dd
wide_value(dd_wide a)
{
    if (a.m.hi == 0.0 || (a.e >= -1022.0 && a.e < 1000.0)) {
        dd r = {scalbn(a.m.hi, (int)a.e), scalbn(a.m.lo, (int)a.e)};
        return r;
    }
    double e = a.e < -2000.0 ? -2000.0 : a.e > 2000.0 ? 2000.0 : a.e;
    return dd_from(scalbn(a.m.hi + a.m.lo, (int)e));
}

/*
 * Neumaier's compensated sum: the reductions over millions of elements keep
 * the accuracy of one rounding, independent of how the terms are chunked.
 */
typedef struct {
    double sum;
    double compensation;
} compensated_sum;

static inline void
compensated_add(compensated_sum *acc, double value)
{
    double t = acc->sum + value;
    if (!isfinite(t)) {
        /* an infinite loss (x = +-inf, misclassified) stays infinite, not NaN */
        acc->sum = t;
        return;
    }
    if (fabs(acc->sum) >= fabs(value)) {
        acc->compensation += (acc->sum - t) + value;
    }
    else {
        acc->compensation += (value - t) + acc->sum;
    }
    acc->sum = t;
}

/* adds another compensated sum (a chunk's) */
static inline void
compensated_merge(compensated_sum *total, compensated_sum part)
{
    compensated_add(total, part.sum);
    if (isfinite(total->sum)) {
        total->compensation += part.compensation;
    }
}

static inline double
compensated_total(const compensated_sum *acc)
{
    return isfinite(acc->sum) ? acc->sum + acc->compensation : acc->sum;
}

/*
 * A weight over a divisor, w / d, as a factor of a gradient.  Where the
 * quotient is a double, x times it (the same bits as ever).  Where it passes
 * the double range (weights near 1.7e308 over a normalizer of 1e-300), it is
 * kept as m 2^k (m = w 2^-a / (d 2^-b) in (1/2, 2), k = a - b) and x m
 * scaled by 2^k: finite wherever x w / d is, and 0, not NaN, for an x that
 * underflowed to 0.  (A quotient below the normal range keeps the plain
 * product: one rounding, where m 2^k would round twice into the subnormals.)
 */
typedef struct {
    double plain, m;
    int k, split;
} weight_ratio;

static inline weight_ratio
weight_ratio_of(double w, double d)
{
    weight_ratio r = {w / d, 1.0, 0, 0};
    r.split = !(r.plain <= DBL_MAX);
    if (r.split) {
        int a, b;
        double wm = frexp(w, &a), dm = frexp(d, &b);
        r.m = wm / dm;
        r.k = a - b;
    }
    return r;
}

static inline double
weight_ratio_times(weight_ratio r, double x)
{
    return r.split ? ldexp(x * r.m, r.k) : x * r.plain;
}

#endif  /* FOCAL_NUMERIC_H */

/*
 * vector_math.h: exp and log for the kernels, written so that a loop over
 * them vectorises.
 *
 * libm's exp and log1p are calls the compiler cannot vectorise, and they
 * return one rounded double.  These are branch-free (selects, not jumps),
 * call nothing, and in precise mode return a double-double whose error is far
 * below one ULP of a double, which is what the float64 kernels need; in plain
 * mode they return a double good to about one ULP (the float32 kernels of
 * soft targets use them so).  Only the arguments the kernels need are
 * handled: exp of a non-positive number, log1p of [0, 1] and log of a finite
 * positive number.  exp_accurate and log_step go further, to about
 * 2^-100, at several times the cost: for results that multiply an error of
 * theirs by a large factor (q^gamma = e^(gamma log q) at gamma > 8);
 * exp_fine, by a table, to about 2^-76 at about exp_series' cost.
 *
 * Polynomials are Taylor series cut where the next term is below 2^-60 of
 * the result over the reduced range, evaluated by Estrin's scheme; ln 2 is split
 * Cody-Waite style so that k ln 2 is exact.
 *
 * The functions at the end (exp_negative_f32, log1p_unit_f32) are the
 * float32 kernels' own: minimax polynomials a third shorter than the full
 * series above, accurate to 2^-43: what a float32 result needs, not more.
 */
#ifndef FOCAL_VECTOR_MATH_H
#define FOCAL_VECTOR_MATH_H

#include <stdint.h>
#include <string.h>

#include "numeric.h"

#define LN2 6.93147180559945286227e-01
#define LN2_HI 6.93147180369123816490e-01 /* 32 trailing zero bits: k * LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#define INV_LN2 1.44269504088896338700e+00
#define ROUNDING_SHIFT 6755399441055744.0 /* 1.5 * 2^52: x + it rounds x to an integer */

FOCAL_INLINE uint64_t
bits_of(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

FOCAL_INLINE double
double_of(uint64_t bits)
{
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* 2^k for an integer-valued double k in [-1022, 1023], from its bits */
FOCAL_INLINE double
power_of_two(double k)
{
    uint64_t integer = bits_of(k + ROUNDING_SHIFT) - bits_of(ROUNDING_SHIFT);
    return double_of((integer + 1023) << 52);
}

/* a 2^k for an integer-valued k in [-1077, 1023], in two steps where 2^k
   alone would be subnormal (a value it lifts back keeps its digits) */
FOCAL_INLINE dd
dd_times_power_of_two(dd a, double k)
{
    double deep = k < -1000.0 ? 1.0 : 0.0;
    double scale = power_of_two(k + 600.0 * deep);
    double rescale = deep != 0.0 ? 0x1p-600 : 1.0;
    dd r = {a.hi * scale * rescale, a.lo * scale * rescale};
    return r;
}

/* a + k ln 2 for an integer-valued k of at most 2^20 (k LN2_HI is exact): in
   plain mode too the low part of ln 2 is added, as a double */
FOCAL_INLINE dd
add_ln2_multiple(dd a, double k, int precise)
{
    if (!precise) {
        return dd_from((a.hi + k * LN2_HI) + k * LN2_LO);
    }
    dd shift = {k * LN2_HI, k * LN2_LO};
    return dd_add(a, shift, precise);
}

/*
 * e^a for a = a_hi + a_lo <= 0 (not NaN).  Below -746 the result underflows
 * to 0.  (A positive a up to 709 works as well, 2^k staying a double:
 * star_focal_far passes up to 145.)  a = k ln2 + r with |r| <= ln2 / 2; e^r = 1 + r + r^2 P(r).
 */
FOCAL_INLINE dd
exp_series(dd a, int precise, int short_series)
{
    int underflows = a.hi < -746.0; /* also -inf, whose low part may be NaN */
    double x = underflows ? -746.0 : a.hi;
    double k = (x * INV_LN2 + ROUNDING_SHIFT) - ROUNDING_SHIFT;
    double r_hi = x - k * LN2_HI; /* exact (Sterbenz) */
    double r_lo = (precise && !underflows ? a.lo : 0.0) - k * LN2_LO;
    dd r = two_sum(r_hi, r_lo, precise);
    double t = r.hi;
    double t2 = t * t, t4 = t2 * t2;
    /* P(t) = 1/2! + t/3! + ... + t^11/13!, by Estrin's scheme (a shallow
       dependency chain: the loop is limited by latency, not by count).  The
       short series stops at t^7/9! (relative error below 2^-36): enough where
       nothing cancels afterwards, as in float32 results of hard targets.  Soft
       targets' gradients cancel, and need every term even for float32. */
    /* (precise: P(t) - 1/2, whose rounding is then that of a number below
       0.07 instead of one near 1/2; the 1/2 t^2 enters exactly below) */
    double p01 = (precise ? 0.0 : 0.5) + t * 1.6666666666666666e-01;
    double p23 = 4.1666666666666664e-02 + t * 8.333333333333333e-03;
    double p45 = 1.3888888888888889e-03 + t * 1.984126984126984e-04;
    double p67 = 2.48015873015873e-05 + t * 2.7557319223985893e-06;
    double p;
    if (short_series && !precise) {
        p = (p01 + t2 * p23) + t4 * (p45 + t2 * p67);
    }
    else {
        double t8 = t4 * t4;
        double p89 = 2.755731922398589e-07 + t * 2.505210838544172e-08;
        double p1011 = 2.08767569878681e-09 + t * 1.6059043836821613e-10;
        double q0 = p01 + t2 * p23, q1 = p45 + t2 * p67, q2 = p89 + t2 * p1011;
        p = (q0 + t4 * q1) + t8 * q2;
    }
    dd value;
    if (precise) {
        /* t^2 P = t^2 / 2 (exact in double-double) + t^2 (P - 1/2), the
           latter below 0.0075 with its roundings: e^r to about 2^-60, where
           t t P in double took 2^-56.5 (the float64 softmax's 1 - p_c raised
           to gamma 8 multiplied that into 0.6 ULP) */
        dd square = two_product(t, t, precise);
        dd u = two_sum(t, 0.5 * square.hi, precise);
        double tail = square.hi * p + 0.5 * square.lo;
        value = fast_two_sum(1.0, u.hi, precise);
        /* d(e^r)/dr = e^r ~ 1: the low part of r adds directly */
        value = fast_two_sum(value.hi, value.lo + (u.lo + tail) + r.lo * (1.0 + t), precise);
    }
    else {
        double s = t * t * p;
        value = dd_from(1.0 + (t + s));
    }
    return dd_times_power_of_two(value, k);
}

FOCAL_INLINE dd
exp_nonpositive(dd a, int precise)
{
    return exp_series(a, precise, 0);
}

/* a - k ln 2 for an integer-valued k, in double-double (ln 2 in three parts) */
FOCAL_INLINE dd
reduce_ln2(dd a, double k)
{
    static const double ln2[3] = {0x1.62e42fefa39efp-1, 0x1.abc9e3b39803fp-56,
                                  0x1.7b57a079a1934p-111};
    dd r = dd_add(a, dd_negate(two_product(k, ln2[0], 1)), 1);
    r = dd_add(r, dd_negate(two_product(k, ln2[1], 1)), 1);
    return dd_add(r, dd_from(-k * ln2[2]), 1);
}

/* expm1(r) for |r| <= ln2 / 2 (exp_accurate_shifted's reduced argument),
   to a relative 2^-100 or so: the series at r 2^-10, then ten doublings */
FOCAL_INLINE dd
expm1_reduced(dd r)
{
    static const dd inverse_factorial[3] = {{0x1.5555555555555p-3, 0x1.5555555555555p-57},
                                            {0x1.5555555555555p-5, 0x1.5555555555555p-59},
                                            {0x1.1111111111111p-7, 0x1.1111111111111p-63}};
    dd z = {r.hi * 0x1p-10, r.lo * 0x1p-10};
    double tail = 1.0 / 720.0 + z.hi * (1.0 / 5040.0 + z.hi * (1.0 / 40320.0));
    dd h = dd_from(tail);
    for (int i = 2; i >= 0; i--) {
        h = dd_add(inverse_factorial[i], dd_mul(z, h, 1), 1);
    }
    h = dd_add(dd_from(0.5), dd_mul(z, h, 1), 1);
    h = dd_add(dd_from(1.0), dd_mul(z, h, 1), 1);
    dd e = dd_mul(z, h, 1); /* expm1(r 2^-10) */
    for (int i = 0; i < 10; i++) {
        e = dd_mul(e, dd_add(dd_from(2.0), e, 1), 1);
    }
    return e;
}

/*
 * e^a for a = a_hi + a_lo <= 0 to double-double accuracy (a relative 2^-100
 * or so; exp_series is good to about 2^-59, its polynomial being summed in
 * double), for the quality focal loss's u = p - y, which cancels where p ~ y
 * and keeps only the digits p has beyond y's, and for float64 results at
 * gamma > 8, where q^gamma = e^(gamma log q) turns an error of the exponent
 * into a relative one of the result (a positive a up to 709 works as well:
 * log_q_of_soft_target passes up to 624).  a = k ln2 + r with ln 2 in
 * three parts, r = 2^10 r' (|r'| < 3.4e-4), expm1(r') by its Taylor series
 * in double-double (coefficients 1/3!..1/5! in two parts, the tail from
 * 1/6! in double: its terms are below 2^-106 r' from 1/9! on), then ten
 * doublings expm1(2z) = expm1(z) (2 + expm1(z)), and the scaling by 2^k.
 * exp_accurate_shifted gives e^a 2^shift for an integer shift >= 0 (the
 * quality focal loss's p in units of 2^-600): the power of two joins 2^k
 * before the one scaling, so a value below the normal range that the shift
 * lifts keeps all its digits, which e^a alone would lose in its subnormal
 * high or low part.
 */
FOCAL_INLINE dd
exp_accurate_shifted(dd a, double shift)
{
    const double lowest = -746.0 - shift * LN2; /* (-746 at shift 0) */
    int underflows = a.hi < lowest; /* also -inf */
    dd b = underflows ? dd_from(lowest) : a;
    double k = (b.hi * INV_LN2 + ROUNDING_SHIFT) - ROUNDING_SHIFT;
    dd value = dd_add(dd_from(1.0), expm1_reduced(reduce_ln2(b, k)), 1);
    value = dd_times_power_of_two(value, k + shift);
    return underflows ? dd_from(0.0) : value;
}

FOCAL_INLINE dd
exp_accurate(dd a)
{
    return exp_accurate_shifted(a, 0.0);
}

/* expm1(a) for 2^-30 <= |a| <= 0.75 to a relative 2^-100 or so (a
   subnormal a loses its digits in expm1_reduced's r 2^-10): a = k ln 2 + r
   with k in {-1, 0, 1}, expm1(a) = (2^k - 1) + 2^k expm1(r), a sum of at
   least 0.41 in size where k is not 0, so its parts of opposite sign cancel
   a bit or so at most */
FOCAL_INLINE dd
expm1_accurate(dd a)
{
    double k = (a.hi * INV_LN2 + ROUNDING_SHIFT) - ROUNDING_SHIFT;
    double scale = k > 0.0 ? 2.0 : k < 0.0 ? 0.5 : 1.0;
    dd e = expm1_reduced(reduce_ln2(a, k));
    dd scaled = {e.hi * scale, e.lo * scale};
    return dd_add(dd_from(scale - 1.0), scaled, 1);
}

/*
 * e^a for a = a_hi + a_lo <= 709 (not NaN; below -746 it underflows to 0) to
 * a relative 2^-76 or so down to a = -690 (below, the low part is subnormal:
 * 2^-65 at -700, 2^-53 at -708, and an absolute 2^-1074 below the normal
 * range), at about the cost of exp_series (2^-59): for the float64
 * softmax's careful rows (gamma <= 8), whose gradient near a component's
 * zero keeps the error of its parts relative to its two terms, which cancel
 * (softmax_focal.h; an E_j below e^-690 keeps its subnormal low part's
 * error, as with exp_series and exp_accurate).  a = k ln2/64 + r,
 * |r| <= ln2/128, with ln2/64 in three parts, the first two of 36 bits (k of
 * at most 17 bits times either is exact); e^a = 2^floor(k/64) 2^(j/64) e^r,
 * j = k mod 64, 2^(j/64) from a table in double-double and e^r = 1 + u,
 * u = r + r^2/2 + r^3 (1/3! + ... + r^5/8!): r + r^2/2 in double-double,
 * the rest (below 2^-24) in double, whose rounding is 2^-78 of the result;
 * the first term left out, r^9/9!, is below 2^-86.  (tools/exp_fine_table.py
 * derives the table and the three parts of ln2/64, and checks these.)
 */
static const dd exp_fine_table[64] = { /* 2^(j/64) */
    {0x1.0000000000000p+0, 0x0.0p+0},
    {0x1.02c9a3e778061p+0, -0x1.19083535b085dp-56},
    {0x1.059b0d3158574p+0, 0x1.d73e2a475b465p-55},
    {0x1.0874518759bc8p+0, 0x1.186be4bb284ffp-57},
    {0x1.0b5586cf9890fp+0, 0x1.8a62e4adc610bp-54},
    {0x1.0e3ec32d3d1a2p+0, 0x1.03a1727c57b53p-59},
    {0x1.11301d0125b51p+0, -0x1.6c51039449b3ap-54},
    {0x1.1429aaea92de0p+0, -0x1.32fbf9af1369ep-54},
    {0x1.172b83c7d517bp+0, -0x1.19041b9d78a76p-55},
    {0x1.1a35beb6fcb75p+0, 0x1.e5b4c7b4968e4p-55},
    {0x1.1d4873168b9aap+0, 0x1.e016e00a2643cp-54},
    {0x1.2063b88628cd6p+0, 0x1.dc775814a8495p-55},
    {0x1.2387a6e756238p+0, 0x1.9b07eb6c70573p-54},
    {0x1.26b4565e27cddp+0, 0x1.2bd339940e9d9p-55},
    {0x1.29e9df51fdee1p+0, 0x1.612e8afad1255p-55},
    {0x1.2d285a6e4030bp+0, 0x1.0024754db41d5p-54},
    {0x1.306fe0a31b715p+0, 0x1.6f46ad23182e4p-55},
    {0x1.33c08b26416ffp+0, 0x1.32721843659a6p-54},
    {0x1.371a7373aa9cbp+0, -0x1.63aeabf42eae2p-54},
    {0x1.3a7db34e59ff7p+0, -0x1.5e436d661f5e3p-56},
    {0x1.3dea64c123422p+0, 0x1.ada0911f09ebcp-55},
    {0x1.4160a21f72e2ap+0, -0x1.ef3691c309278p-58},
    {0x1.44e086061892dp+0, 0x1.89b7a04ef80d0p-59},
    {0x1.486a2b5c13cd0p+0, 0x1.3c1a3b69062f0p-56},
    {0x1.4bfdad5362a27p+0, 0x1.d4397afec42e2p-56},
    {0x1.4f9b2769d2ca7p+0, -0x1.4b309d25957e3p-54},
    {0x1.5342b569d4f82p+0, -0x1.07abe1db13cadp-55},
    {0x1.56f4736b527dap+0, 0x1.9bb2c011d93adp-54},
    {0x1.5ab07dd485429p+0, 0x1.6324c054647adp-54},
    {0x1.5e76f15ad2148p+0, 0x1.ba6f93080e65ep-54},
    {0x1.6247eb03a5585p+0, -0x1.383c17e40b497p-54},
    {0x1.6623882552225p+0, -0x1.bb60987591c34p-54},
    {0x1.6a09e667f3bcdp+0, -0x1.bdd3413b26456p-54},
    {0x1.6dfb23c651a2fp+0, -0x1.bbe3a683c88abp-57},
    {0x1.71f75e8ec5f74p+0, -0x1.16e4786887a99p-55},
    {0x1.75feb564267c9p+0, -0x1.0245957316dd3p-54},
    {0x1.7a11473eb0187p+0, -0x1.41577ee04992fp-55},
    {0x1.7e2f336cf4e62p+0, 0x1.05d02ba15797ep-56},
    {0x1.82589994cce13p+0, -0x1.d4c1dd41532d8p-54},
    {0x1.868d99b4492edp+0, -0x1.fc6f89bd4f6bap-54},
    {0x1.8ace5422aa0dbp+0, 0x1.6e9f156864b27p-54},
    {0x1.8f1ae99157736p+0, 0x1.5cc13a2e3976cp-55},
    {0x1.93737b0cdc5e5p+0, -0x1.75fc781b57ebcp-57},
    {0x1.97d829fde4e50p+0, -0x1.d185b7c1b85d1p-54},
    {0x1.9c49182a3f090p+0, 0x1.c7c46b071f2bep-56},
    {0x1.a0c667b5de565p+0, -0x1.359495d1cd533p-54},
    {0x1.a5503b23e255dp+0, -0x1.d2f6edb8d41e1p-54},
    {0x1.a9e6b5579fdbfp+0, 0x1.0fac90ef7fd31p-54},
    {0x1.ae89f995ad3adp+0, 0x1.7a1cd345dcc81p-54},
    {0x1.b33a2b84f15fbp+0, -0x1.2805e3084d708p-57},
    {0x1.b7f76f2fb5e47p+0, -0x1.5584f7e54ac3bp-56},
    {0x1.bcc1e904bc1d2p+0, 0x1.23dd07a2d9e84p-55},
    {0x1.c199bdd85529cp+0, 0x1.11065895048ddp-55},
    {0x1.c67f12e57d14bp+0, 0x1.2884dff483cadp-54},
    {0x1.cb720dcef9069p+0, 0x1.503cbd1e949dbp-56},
    {0x1.d072d4a07897cp+0, -0x1.cbc3743797a9cp-54},
    {0x1.d5818dcfba487p+0, 0x1.2ed02d75b3707p-55},
    {0x1.da9e603db3285p+0, 0x1.c2300696db532p-54},
    {0x1.dfc97337b9b5fp+0, -0x1.1a5cd4f184b5cp-54},
    {0x1.e502ee78b3ff6p+0, 0x1.39e8980a9cc8fp-55},
    {0x1.ea4afa2a490dap+0, -0x1.e9c23179c2893p-54},
    {0x1.efa1bee615a27p+0, 0x1.dc7f486a4b6b0p-54},
    {0x1.f50765b6e4540p+0, 0x1.9d3e12dd8a18bp-54},
    {0x1.fa7c1819e90d8p+0, 0x1.74853f3a5931ep-55}
};

FOCAL_INLINE dd
exp_fine(dd a)
{
    static const double c1 = 0x1.62e42fefa0000p-7, c2 = 0x1.cf79abc9e0000p-46,
                        c3 = 0x1.d9cc01f97b57ap-85; /* ln2/64 = c1 + c2 + c3 */
    /* (a below -746 is not clamped, as exp_series clamps it, but its value
       replaced at the end: a clamped argument made the table's load
       conditional, which kept the loops over exp_fine from vectorising;
       the index stays in the table whatever k is) */
    double k = (a.hi * 0x1.71547652b82fep+6 + ROUNDING_SHIFT) - ROUNDING_SHIFT; /* 64/ln2 */
    double r_hi = a.hi - k * c1; /* exact: k c1 lies within a factor 2 of a.hi */
    dd r = two_sum(r_hi, -(k * c2), 1);
    r = fast_two_sum(r.hi, r.lo + (a.lo - k * c3), 1);
    /* u = e^r - 1 */
    double t = r.hi, t2 = t * t;
    double p = (1.6666666666666666e-01 + t * 4.1666666666666664e-02) +
               t2 * ((8.333333333333333e-03 + t * 1.388888888888889e-03) +
                     t2 * (1.984126984126984e-04 + t * 2.48015873015873e-05));
    dd square = two_product(t, t, 1);
    dd u = two_sum(t, 0.5 * square.hi, 1);
    /* the low parts: r's (times d(e^r)/dr, 1 + r to first order) and the square's */
    u.lo += (r.lo * (1.0 + t) + 0.5 * square.lo) + t2 * t * p;
    /* 2^(j/64) (1 + u), j = k mod 64 (a 64-bit index: with a 32-bit one the
       loops did not vectorise either) */
    uint64_t j = (bits_of(k + ROUNDING_SHIFT) - bits_of(ROUNDING_SHIFT)) & 63;
    dd entry = exp_fine_table[j];
    dd product = two_product(entry.hi, u.hi, 1);
    dd value = fast_two_sum(entry.hi, product.hi, 1);
    value = fast_two_sum(value.hi, value.lo + (product.lo + entry.hi * u.lo +
                                                entry.lo * (1.0 + u.hi)), 1);
    /* times 2^floor(k/64) (k/64 - 63/128 rounds to it, exactly) */
    double e = ((k * 0.015625 - 0.4921875) + ROUNDING_SHIFT) - ROUNDING_SHIFT;
    value = dd_times_power_of_two(value, e);
    return a.hi < -746.0 ? dd_from(0.0) : value; /* also -inf, whose low part may be NaN */
}

/*
 * log(1 + f) for |f| <= 0.5, as f - f^2/2 + s (f^2/2 + R(s^2)) with
 * s = f / (2 + f): the leading part exact in double-double, the rest a small
 * correction (fdlibm's arrangement; R(z) = 2z/3 + 2z^2/5 + ... + 2z^11/23).
 */
FOCAL_INLINE dd
log1p_small(dd f, int precise, int short_series)
{
    double s = f.hi / (2.0 + f.hi);
    double z = s * s, z2 = z * z, z4 = z2 * z2;
    /* R(z) / z = 2/3 + 2z/5 + ... + 2z^10/23, by Estrin's scheme; the short
       series (see exp_series) stops at 2z^5/13, below 2^-36 of the result */
    double p01 = 6.666666666666666e-01 + z * 4.0e-01;
    double p23 = 2.857142857142857e-01 + z * 2.2222222222222222e-01;
    double p45 = 1.8181818181818182e-01 + z * 1.5384615384615385e-01;
    double r;
    if (short_series && !precise) {
        r = z * ((p01 + z2 * p23) + z4 * p45);
    }
    else {
        double z8 = z4 * z4;
        double p67 = 1.3333333333333333e-01 + z * 1.1764705882352941e-01;
        double p89 = 1.0526315789473684e-01 + z * 9.523809523809523e-02;
        double p10 = 8.695652173913043e-02;
        double q0 = p01 + z2 * p23, q1 = p45 + z2 * p67, q2 = p89 + z2 * p10;
        r = z * ((q0 + z4 * q1) + z8 * q2);
    }
    if (!precise) {
        double half_square = 0.5 * f.hi * f.hi;
        return dd_from(f.hi - (half_square - s * (half_square + r)));
    }
    dd half_square = two_product(f.hi, 0.5 * f.hi, precise);
    dd leading = dd_add(dd_from(f.hi), dd_from(-half_square.hi), precise);
    double correction = s * (half_square.hi + r) - half_square.lo;
    /* f's low part enters through d log(1 + f)/df = 1 / (1 + f) */
    correction += f.lo * (1.0 - f.hi);
    return fast_two_sum(leading.hi, leading.lo + correction, precise);
}

/* log(1 + t) for t = t_hi + t_lo in [0, 1] */
FOCAL_INLINE dd
log1p_unit_series(dd t, int precise, int short_series)
{
    /* for t > 1/2, log(1 + t) = ln2 + log(1 + (t - 1)/2); t - 1 is exact */
    double big = t.hi > 0.5 ? 1.0 : 0.0;
    dd f = big != 0.0 ? dd_from(0.5 * (t.hi - 1.0)) : dd_from(t.hi);
    f.lo = big != 0.0 ? 0.5 * t.lo : t.lo;
    if (!precise) {
        f.lo = 0.0;
    }
    dd value = log1p_small(f, precise, short_series);
    if (!precise) {
        return dd_from(big * LN2 + value.hi);
    }
    dd ln2 = {big * LN2_HI, big * LN2_LO};
    return dd_add(ln2, value, precise);
}

FOCAL_INLINE dd
log1p_unit(dd t, int precise)
{
    return log1p_unit_series(t, precise, 0);
}

/* log(q) for a finite q = q_hi + q_lo > 0 */
FOCAL_INLINE dd
log_positive(dd q, int precise)
{
    /* q = m 2^e with m in [sqrt(1/2), sqrt(2)); subnormals are scaled up first */
    double tiny = q.hi < 0x1p-1022 ? 1.0 : 0.0;
    double scaled = tiny != 0.0 ? q.hi * 0x1p54 : q.hi;
    uint64_t bits = bits_of(scaled);
    double biased = double_of(((bits >> 52) & 0x7ff) | 0x4330000000000000ULL) - 0x1p52;
    double m = double_of((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    double high = m > 1.4142135623730951 ? 1.0 : 0.0;
    m = high != 0.0 ? 0.5 * m : m;
    double e = biased - 1023.0 + high - 54.0 * tiny;
    /* q.lo / 2^e, from the scaled q: m / q.hi would overflow for a subnormal
       q.hi, and 0 times inf is NaN */
    double lo = tiny != 0.0 ? q.lo * 0x1p54 : q.lo;
    dd f = {m - 1.0, precise ? lo * (m / scaled) : 0.0}; /* m - 1 is exact */
    dd value = log1p_small(f, precise, 0);
    if (!precise) {
        return dd_from(e * LN2 + value.hi);
    }
    dd e_ln2 = {e * LN2_HI, e * LN2_LO};
    return dd_add(e_ln2, value, precise);
}

/*
 * The logs to about 2^-100 relative (`accurate`), for float64 results at
 * gamma > 8 (exp_accurate).  log_positive and log1p_unit are good to about 2^-56 only
 * (the correction term of log1p_small is a double: a relative 2^-55 f^2,
 * f = v - 1 near 1), and one Newton step on e^y = v,
 *   y' = y + (v e^-y - 1),
 * squares that error.  The step itself is good to an absolute 2^-104 or so
 * (the relative errors of the exp and of the product near 1), more than
 * the first value's own error (an absolute 2^-55 |y|^3) where |y| < 2^-17,
 * so there y is kept as it is.  (From 2^-20, as it was, the step took a
 * softplus of 2.6e-6 to about 2^-86 relative where the first value had
 * 2^-92: a soft target's float64 gradient at gamma 30, next to its zero,
 * was 10 ULP off; from 2^-15 the first value took one at gamma 9 to 2^-100
 * absolute, a hundred times the error the step leaves.)  `form` names the
 * exponential: EXP_ACCURATE, the above; EXP_FINE (exp_fine, 2^-76: the
 * softmax's careful rows, softmax_focal.h), a step good to an absolute
 * 2^-76, taken at any y (the powers that use it, the argmax's as well, need
 * y to an absolute 2^-76, and a loop that selects on the step's value keeps
 * GCC from vectorising exp_fine's table); EXP_SERIES (exp_series, 2^-59),
 * good to an absolute 2^-59, better than the first value's relative 2^-56
 * above |y| = 1/4 only, and kept below.
 */
enum { EXP_SERIES = 0, EXP_ACCURATE = 1, EXP_FINE = 2 };

FOCAL_INLINE dd
log_step(dd y, dd v, int form)
{
    dd minus_y = dd_negate(y);
    dd e = form == EXP_ACCURATE ? exp_accurate(minus_y)
           : form == EXP_FINE   ? exp_fine(minus_y)
                                : exp_series(minus_y, 1, 0);
    dd residual = dd_add(dd_mul(v, e, 1), dd_from(-1.0), 1);
    double kept_below = form == EXP_ACCURATE ? 0x1p-17 : 0.25;
    return form != EXP_FINE && fabs(y.hi) < kept_below ? y : dd_add(y, residual, 1);
}

/*
 * log v for a finite v > 0 of any size, subnormal to 1.8e308, as
 * log f + k log 2 for v = f 2^k, f in [1, 2), with one log_step of `form`
 * on f (none for NO_LOG_STEP): the step's e^-y is then near 1, where on v
 * itself it may be subnormal or 0 (e^-709.7 for v = 1.7e308).  The
 * softmax's log gamma (softmax_faint_gamma_p) and the quality loss's
 * log|u| (quality_log_abs).
 */
enum { NO_LOG_STEP = -1 };

FOCAL_INLINE dd
log_by_exponent(dd v, int precise, int form)
{
    const int k = ilogb(v.hi);
    dd f = {scalbn(v.hi, -k), scalbn(v.lo, -k)};
    dd y = log_positive(f, precise);
    if (form != NO_LOG_STEP) {
        y = log_step(y, f, form);
    }
    return precise ? reduce_ln2(y, -(double)k) : dd_from(y.hi + k * LN2);
}

/*
 * log(1 + t) to a relative 2^-100 or so from a first value y (log1p_unit's,
 * good to 2^-56) for t in [-1/4, 1], by one Newton step on expm1(y) = t,
 *   y' = y + (t - expm1(y)) / (1 + t),
 * whose residual is the difference of two values of t's size, so the step
 * is as good relatively for any t.  The step on e^y = 1 + t (log_step, which
 * this replaced) holds 1 + t to an absolute 2^-106 only, a relative
 * 2^-106 / t of y, and kept y below 2^-17, whose own error is a relative
 * 2^-55 y^2: both about 2^-88 near t = 2^-17.  That reached the gradients
 * near their zeros: the softmax's log S of a row whose argmax holds nearly
 * all of it (h = log S / rest enters every component's terms: 2^-89.5 of
 * them at logits [323.3135349785039, 311.6677340075332], targets
 * [1, 1e-12], gamma 1.5, 42 ULP), and the sigmoid's softplus of a soft
 * target's logit near -12 (2^-96.3 at y = 3e-5, gamma 0.5).  The residual,
 * within about 2^-55 of y, needs no more than a double's division.  Below
 * |t| = 2^-30 the first value is good to 2^-115 and kept (expm1_reduced's
 * r 2^-10 would drop a subnormal t's digits).  Below t = -1/4 the first
 * value's series is good to 2^-44 only as t nears -1/2, and the step leaves
 * 2^-87: no caller goes there (the softmax passes -p for p <= 1/4).
 */
FOCAL_INLINE dd
log1p_step(dd y, dd t)
{
    dd residual = dd_add(t, dd_negate(expm1_accurate(y)), 1);
    return fabs(t.hi) < 0x1p-30 ? y : dd_add(y, dd_from(residual.hi / (1.0 + t.hi)), 1);
}

/* log(1 + t) for t = t_hi + t_lo in [-1/4, 1] (log1p_step) */
FOCAL_INLINE dd
log1p_accurate(dd t)
{
    return log1p_step(log1p_unit(t, 1), t);
}

/*
 * q^g for g >= 0 and q in (0, 1) given with its complement v = 1 - q, both
 * m 2^e (dd_wide): e^(g log q) with log q to about 2^-100 of itself, as
 * -v (1 + v/2) below v = 2^-59 (the next term, v^2/3, is below 2^-118 of
 * it), log1p(-v) up to v = 1/4 (log1p_accurate), log q beyond: near 1, q
 * itself would have lost v (q = 1 - 1e-304 at a far logit: q^g was 1 where
 * it underflows).  g log q is split as n ln 2 + r; below -2^20 q^g is 0
 * whatever multiplies it (the far tails' products stay within 2^6000).
 */
static inline dd_wide
wide_power(dd_wide q, dd_wide complement, double gamma)
{
    dd_wide r = {dd_from(1.0), 0.0};
    if (gamma == 0.0) {
        return r;
    }
    double v = wide_value(complement).hi;
    dd_wide log_q = complement.e < -60.0
                        ? wide_negate(wide_mul(complement, wide_from(two_sum(1.0, 0.5 * v, 1))))
                    : v <= 0.25
                        ? wide_from(log1p_accurate(dd_negate(wide_value(complement))))
                        : wide_from(reduce_ln2(log_by_exponent(q.m, 1, EXP_ACCURATE), -q.e));
    dd_wide product = wide_mul(wide_from(dd_from(gamma)), log_q);
    if (product.m.hi == 0.0 || product.e < -120.0) {
        return r; /* (e^-2^-120 is 1 to the double-double's digits) */
    }
    if (product.e > 20.0) {
        r.m = dd_from(0.0);
        return r;
    }
    dd exponent = wide_value(product);
    double n = nearbyint(exponent.hi * INV_LN2);
    r = wide_from(exp_accurate(reduce_ln2(exponent, n)));
    r.e += n;
    return r;
}

/*
 * Float32 results: plain double with polynomials sized for them.
 *
 * A float32 result rounded from a double carrying a relative error e is off
 * by at most 0.5 ULP + 2^24 e.  The functions below keep e below 2^-43.5;
 * the kernels' results, products of a few such factors (and q^gamma, whose
 * error grows with gamma), stay within about 0.5 ULP + 2^-16 at gamma 8, a
 * tenth of that at gamma 2 and below.  The coefficients are minimax fits of
 * the relative error (tools/float32_polynomials.py derives them and re-checks
 * the bounds with the coefficients rounded to double); every rounding of the
 * evaluation in double adds a unit of 2^-53, a thousand times less.  No
 * table, no branch, one division for both the log and the reciprocal, so a
 * loop over them vectorises at every instruction-set level.  The levels with
 * FMA (AVX2, AVX-512) fuse the polynomials' multiply-adds, as the softmax
 * rows do (softmax_lanes.h: the same exponential, operation for operation):
 * 4 to 5% faster per element, and they agree with each other bit for bit;
 * the baseline rounds each product apart, which changes the double by a few
 * units of 2^-53 and a float32 result at most by one ULP, rarely.
 */

/* a b + c for the float32 polynomials: fused (one rounding) in the levels
   that have FMA (kernels_avx2.c, kernels_avx512.c define FOCAL_LEVEL_FMA),
   two roundings elsewhere */
#if defined(FOCAL_LEVEL_FMA)
#define MADD(a, b, c) __builtin_fma((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* e^r = 1 + r + r^2 P(r) on |r| <= ln2/2 (1 + 2^-40): relative error below 2^-45.8 */
#define EXP_P0 4.99999999996654010e-01
#define EXP_P1 1.66666666672658087e-01
#define EXP_P2 4.16666669615407617e-02
#define EXP_P3 8.33333309446403214e-03
#define EXP_P4 1.38888112660470156e-03
#define EXP_P5 1.98415403713458405e-04
#define EXP_P6 2.48807484830427424e-05
#define EXP_P7 2.74923599042483380e-06

/*
 * e^-b = e^r 2^-k for 0 <= b <= 746 (not NaN): e^r, relative error below
 * 2^-45.5, and k in *k_bits.  -b = -k ln2 + r with k = round(b / ln2),
 * |r| <= ln2/2: k ln2_hi is exact and so is k ln2_hi - b (Sterbenz); k ln2_lo
 * adds the rest.
 */
FOCAL_INLINE double
exp_negative_f32_reduced(double b, uint64_t *k_bits)
{
    double shifted = MADD(b, INV_LN2, ROUNDING_SHIFT); /* k in the low bits */
    double k = shifted - ROUNDING_SHIFT;
    /* k LN2_HI is exact, and so is k LN2_HI - b (fused or not) */
    double r = MADD(k, LN2_LO, MADD(k, LN2_HI, -b));
    /* P by Estrin's scheme: a dependency chain of depth 4, not 8 */
    double r2 = r * r, r4 = r2 * r2;
    double p01 = MADD(r, EXP_P1, EXP_P0), p23 = MADD(r, EXP_P3, EXP_P2);
    double p45 = MADD(r, EXP_P5, EXP_P4), p67 = MADD(r, EXP_P7, EXP_P6);
    double p = MADD(r4, MADD(r2, p67, p45), MADD(r2, p23, p01));
    *k_bits = bits_of(shifted) - bits_of(ROUNDING_SHIFT);
    return 1.0 + MADD(r2, p, r);
}

/*
 * e^-a for a >= 0 (not NaN), relative error below 2^-45.5 down to the least
 * normal double; subnormal results are rounded once from that, and a > 745.2
 * gives 0 (e^-a is then below half the least subnormal).
 */
FOCAL_INLINE double
exp_negative_f32(double a)
{
    uint64_t k_bits;
    double e_r = exp_negative_f32_reduced(a < 746.0 ? a : 746.0, &k_bits);
    /* 2^-k in two steps: e^r 2^(600 - k) is normal for every k <= 1077 and
       is made exactly, in e^r's exponent field (modulo 2^64, k < 600
       included); the product with 2^-600 rounds once if the result is
       subnormal */
    return double_of(bits_of(e_r) - ((k_bits - 600) << 52)) * 0x1p-600;
}

/*
 * exp_negative_f32 where the result is normal, 0 <= a <= 708 (a larger a,
 * or NaN, gives e^-708): the same bits, with 2^-k entering e^r's exponent
 * field directly instead of two multiplications (k <= 1021 and e^r >= 0.7
 * leave the exponent at least 1).  For the block loops' e^-|x|, |x| <=
 * FOCAL_SIGMOID_FAR (the scalar path recomputes the others): the float32
 * kernels are bound by multiplications, 15 of them here before (the
 * forward pass's three loops: 38 and a division per vector at AVX-512).
 */
FOCAL_INLINE double
exp_negative_f32_normal(double a)
{
    uint64_t k_bits;
    double e_r = exp_negative_f32_reduced(a < 708.0 ? a : 708.0, &k_bits);
    return double_of(bits_of(e_r) - (k_bits << 52));
}

/* 2 atanh(s) = 2s + s z Q(z), z = s^2 in [0, 1/9]: relative error below 2^-43.7 */
#define LOG1P_Q0 6.66666666768444771e-01
#define LOG1P_Q1 3.99999976847520200e-01
#define LOG1P_Q2 2.85716062444191399e-01
#define LOG1P_Q3 2.22157858845473011e-01
#define LOG1P_Q4 1.83055598288254018e-01
#define LOG1P_Q5 1.40973388420486678e-01
#define LOG1P_Q6 2.00050440266436508e-01

typedef struct {
    double log1p;      /* log(1 + e) */
    double reciprocal; /* 1 / (1 + e) */
} log1p_parts;

/*
 * log(1 + e) and 1 / (1 + e) for e in [0, 1], relative errors below 2^-43.5
 * and 2^-50.5.  log(1 + e) = 2 atanh(s) with s = e / (2 + e) in [0, 1/3];
 * both quotients come from the one reciprocal 1 / ((1 + e)(2 + e)) (five
 * roundings of 2^-53, no cancellation).
 */
FOCAL_INLINE log1p_parts
log1p_unit_f32(double e)
{
    double u = 1.0 + e, v = 2.0 + e;
    double inverse = 1.0 / (u * v);
    double s = e * (u * inverse);
    double z = s * s, z2 = z * z;
    double q01 = MADD(z, LOG1P_Q1, LOG1P_Q0), q23 = MADD(z, LOG1P_Q3, LOG1P_Q2);
    double q45 = MADD(z, LOG1P_Q5, LOG1P_Q4);
    /* Q by pairs, then Horner's scheme in z^2: one multiplication fewer than
       Estrin's scheme, and this loop is bound by the multiplications */
    double q = MADD(z2, MADD(z2, MADD(z2, LOG1P_Q6, q45), q23), q01);
    log1p_parts r;
    r.log1p = MADD(s * z, q, s + s);
    r.reciprocal = v * inverse;
    return r;
}

#endif  /* FOCAL_VECTOR_MATH_H */

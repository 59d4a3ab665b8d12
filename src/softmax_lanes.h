/*
 * softmax_lanes.h: the per-class loops of softmax_rows.h for one
 * instruction-set level, included by softmax_kernels.c once per level with
 *   LEVEL      the level's name (suffix of every name defined here)
 *   ATTRIBUTE  its target attribute (empty for the baseline)
 *   WIDTH      doubles per register: 2 (SSE2), 4 (AVX2) or 8 (AVX-512)
 *   FUSED      1 where the level has fused multiply-adds (AVX2, AVX-512)
 * No include guard: it is meant to be included again.
 */
#define PASTE_(A, B) A##_##B
#define PASTE(A, B) PASTE_(A, B)
#define NAMED(NAME) PASTE(NAME, LEVEL)
#define PARTS (SOFTMAX_LANES / WIDTH) /* registers per step of SOFTMAX_LANES classes */

#define doubles NAMED(doubles)
#define double_mask NAMED(double_mask)
#define double_bits NAMED(double_bits)
#define floats NAMED(floats)
#define float_mask NAMED(float_mask)
#define narrow_floats NAMED(narrow_floats)

typedef double doubles __attribute__((vector_size(8 * WIDTH)));
typedef long long double_mask __attribute__((vector_size(8 * WIDTH)));
typedef unsigned long long double_bits __attribute__((vector_size(8 * WIDTH)));
/* the maximum is taken on a register of floats, 2 WIDTH of them */
typedef float floats __attribute__((vector_size(8 * WIDTH)));
typedef int float_mask __attribute__((vector_size(8 * WIDTH)));
/* WIDTH floats, converted to one register of doubles */
typedef float narrow_floats __attribute__((vector_size(4 * WIDTH)));

/* (C has no ?: on vectors) A where MASK, else B; macros rather than
   functions, since GCC notes a calling convention for every function
   that takes wide vectors by value */
#define select_doubles(MASK, A, B) \
    ((doubles)(((double_mask)(A) & (MASK)) | ((double_mask)(B) & ~(MASK))))
#define select_floats(MASK, A, B) \
    ((floats)(((float_mask)(A) & (MASK)) | ((float_mask)(B) & ~(MASK))))

/* A B + C, rounded once where the level has FMA: the AVX2 and AVX-512
   levels run the same fused operations, so they agree bitwise */
#if FUSED && WIDTH == 8
#define multiply_add(A, B, C) \
    ((doubles)_mm512_fmadd_pd((__m512d)(A), (__m512d)(B), (__m512d)(C)))
#elif FUSED && WIDTH == 4
#define multiply_add(A, B, C) \
    ((doubles)_mm256_fmadd_pd((__m256d)(A), (__m256d)(B), (__m256d)(C)))
#else
#define multiply_add(A, B, C) ((A) * (B) + (C))
#endif

/* exp_negative_f32 (vector_math.h) on every lane, e^-a for a >= 0: the
   same operations (fused where the level has FMA).  `near` (a constant at
   each call site): every a is at most SOFTMAX_NEAR, so that 2^-k is a
   normal double and the clamp and the two-step scaling change nothing: the
   same bits by fewer operations */
#define SOFTMAX_NEAR 700.0
ATTRIBUTE FOCAL_INLINE doubles
NAMED(exp_negative_lanes)(const doubles *a, int near)
{
    const doubles zero = {0.0};
    doubles b = near ? *a : select_doubles(*a < 746.0, *a, zero + 746.0);
    const doubles one = zero + 1.0;
    doubles shifted = multiply_add(b, zero + INV_LN2, zero + ROUNDING_SHIFT);
    doubles k = shifted - ROUNDING_SHIFT;
    /* k LN2_HI is exact, and so is k LN2_HI - b (fused or not) */
    doubles r = multiply_add(k, zero + LN2_LO, multiply_add(k, zero + LN2_HI, -b));
    doubles r2 = r * r, r4 = r2 * r2;
    doubles p01 = multiply_add(r, zero + EXP_P1, zero + EXP_P0);
    doubles p23 = multiply_add(r, zero + EXP_P3, zero + EXP_P2);
    doubles p45 = multiply_add(r, zero + EXP_P5, zero + EXP_P4);
    doubles p67 = multiply_add(r, zero + EXP_P7, zero + EXP_P6);
    doubles p = multiply_add(r4, multiply_add(r2, p67, p45), multiply_add(r2, p23, p01));
    doubles e_r = one + multiply_add(r2, p, r);
    double_bits k_bits = (double_bits)shifted - bits_of(ROUNDING_SHIFT);
    if (near) {
        return e_r * (doubles)((1023 - k_bits) << 52);
    }
    doubles scale = (doubles)((1023 + 600 - k_bits) << 52);
    return e_r * scale * 0x1p-600;
}

/*
 * The E_j of SOFTMAX_LANES classes (PARTS registers) from `source`, into e,
 * their sums into below and at_max.  z_j = m gives e^0 = 1 also when m is
 * infinite; any other z_j enters as m - z_j (rounded as z_j - m would be).
 * `near`: the row's logits are finite and within SOFTMAX_NEAR of m, where
 * m - z_j is 0 exactly when z_j = m.
 */
ATTRIBUTE FOCAL_INLINE void
NAMED(exponentials_step)(const char *source, const long long *valid_lanes, const doubles *m,
                         double *e, doubles *below, doubles *at_max, int near)
{
    const doubles zero = {0.0};
    for (int part = 0; part < PARTS; part++) {
        narrow_floats x;
        double_mask valid;
        memcpy(&x, source + part * WIDTH * (ptrdiff_t)sizeof(float), sizeof x);
        memcpy(&valid, valid_lanes + part * WIDTH, sizeof valid);
        doubles z = __builtin_convertvector(x, doubles);
        double_mask equal = z == *m;
        doubles difference = near ? *m - z : select_doubles(equal, zero, *m - z);
        doubles value = NAMED(exp_negative_lanes)(&difference, near);
        memcpy(e + part * WIDTH, &value, sizeof value);
        below[part] += select_doubles(~equal & valid, value, zero);
        at_max[part] += select_doubles(equal & valid, zero + 1.0, zero);
    }
}

/* the SOFTMAX_LANES lanes of PARTS registers added in one fixed order */
ATTRIBUTE FOCAL_INLINE double
NAMED(sum_of_lanes)(const doubles *parts)
{
    double lane[SOFTMAX_LANES];
    memcpy(lane, parts, sizeof lane);
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
           ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/*
 * Pass 1 takes the maximum m (and notes NaN); pass 2 the E_j, with the rest
 * S - 1 summed as the E_j of the classes below m plus one for each class at
 * m but the first (those E_j are exactly 1): no E_j is singled out by its
 * index, so the sums stay in lanes.  A row's last, partial register is the
 * register that ends with its last class, its lanes already counted masked
 * (their E_j are written again, the same bits); a row shorter than a
 * register is read from a copy padded with its first logit, which changes
 * neither the maximum nor (masked) the sums.
 */
ATTRIBUTE static void
NAMED(exponentials)(const char *logits, ptrdiff_t n, double *e, softmax_row_summary *summary)
{
    enum { FLOATS = 2 * WIDTH };
    float first;
    memcpy(&first, logits, sizeof first);
#define FLOATS_AT(J) (logits + (J) * (ptrdiff_t)sizeof(float))
    float padded[2 * SOFTMAX_LANES];
    if (n < 2 * SOFTMAX_LANES) { /* (only read for rows shorter than a register) */
        for (int l = 0; l < 2 * SOFTMAX_LANES; l++) {
            padded[l] = first;
        }
        for (ptrdiff_t l = 0; l < n; l++) {
            memcpy(padded + l, FLOATS_AT(l), sizeof(float));
        }
    }

    /* pass 1, FLOATS classes a register */
    const floats no_floats = {0.0f};
    floats largest = no_floats + first, smallest = largest;
    float_mask nan = {0};
    const ptrdiff_t whole_floats = n - n % FLOATS;
    for (ptrdiff_t j = 0; j < n; j += FLOATS) {
        floats x;
        memcpy(&x, j < whole_floats ? FLOATS_AT(j)
                   : n >= FLOATS    ? FLOATS_AT(n - FLOATS)
                                    : (const char *)padded,
               sizeof x);
        nan |= x != x;
        largest = select_floats(x > largest, x, largest);
        smallest = select_floats(x < smallest, x, smallest);
    }
    /* the lanes halved in a tree (4 steps at AVX-512, which the compiler
       vectorises): a chain of 15 dependent scalar comparisons per row was a
       tenth of an 81-class row's time */
    float high[FLOATS], low[FLOATS];
    int any_nan[FLOATS];
    memcpy(high, &largest, sizeof high);
    memcpy(low, &smallest, sizeof low);
    memcpy(any_nan, &nan, sizeof any_nan);
    for (int half = FLOATS / 2; half > 0; half /= 2) {
        for (int l = 0; l < half; l++) {
            high[l] = high[l + half] > high[l] ? high[l + half] : high[l];
            low[l] = low[l + half] < low[l] ? low[l + half] : low[l];
            any_nan[l] |= any_nan[l + half];
        }
    }
    float max = high[0], min = low[0];
    int has_nan = any_nan[0] != 0;
    /* (false for NaN and infinities) */
    const int near = (double)max - (double)min <= SOFTMAX_NEAR;

    /* pass 2, SOFTMAX_LANES classes (PARTS registers) a step */
    const ptrdiff_t whole = n - n % SOFTMAX_LANES;
    const doubles zero = {0.0};
    const doubles m = zero + (double)max;
    doubles below[PARTS], at_max[PARTS];
    for (int part = 0; part < PARTS; part++) {
        below[part] = zero;
        at_max[part] = zero;
    }
    double e_short[SOFTMAX_LANES];
#define STEPS(NEAR)                                                                          \
    for (ptrdiff_t j = 0; j < whole; j += SOFTMAX_LANES) {                                   \
        NAMED(exponentials_step)(FLOATS_AT(j), lane_masks + SOFTMAX_LANES, &m, e + j, below, \
                                 at_max, NEAR);                                              \
    }                                                                                        \
    if (whole < n && n >= SOFTMAX_LANES) {                                                   \
        NAMED(exponentials_step)(FLOATS_AT(n - SOFTMAX_LANES), lane_masks + (n - whole),     \
                                 &m, e + n - SOFTMAX_LANES, below, at_max, NEAR);            \
    }                                                                                        \
    else if (whole < n) {                                                                    \
        NAMED(exponentials_step)((const char *)padded, lane_masks + 2 * SOFTMAX_LANES - n,  \
                                 &m, e_short, below, at_max, NEAR);                          \
        memcpy(e, e_short, (size_t)n * sizeof(double));                                      \
    }
    if (near) {
        STEPS(1)
    }
    else {
        STEPS(0)
    }
#undef STEPS
#undef FLOATS_AT
    summary->max = (double)max;
    summary->rest = NAMED(sum_of_lanes)(below) + (NAMED(sum_of_lanes)(at_max) - 1.0);
    summary->has_nan = has_nan;
}

ATTRIBUTE static void
NAMED(scaled)(const double *e, ptrdiff_t n, double coefficient, char *grad)
{
    const ptrdiff_t whole = n - n % WIDTH;
    for (ptrdiff_t j = 0; j < whole; j += WIDTH) {
        doubles value;
        memcpy(&value, e + j, sizeof value);
        narrow_floats rounded = __builtin_convertvector(value * coefficient, narrow_floats);
        memcpy(grad + j * (ptrdiff_t)sizeof(float), &rounded, sizeof rounded);
    }
    for (ptrdiff_t j = whole; j < n; j++) {
        float rounded = (float)(e[j] * coefficient);
        memcpy(grad + j * (ptrdiff_t)sizeof(float), &rounded, sizeof rounded);
    }
}

/* (softmax_focal.h's loop, compiled for the level) */
ATTRIBUTE static void
NAMED(accurate_exponentials)(const double *z, ptrdiff_t n, double max, double *e, double *e_low)
{
    softmax_row_shape row = softmax_row_start(max);
    softmax_exponentials_piece(&row, z, e, e_low, n, 1, 1);
}

static const softmax_row_kernels NAMED(kernels) = {NAMED(exponentials), NAMED(scaled),
                                                   NAMED(accurate_exponentials)};

#undef doubles
#undef double_mask
#undef double_bits
#undef floats
#undef float_mask
#undef narrow_floats
#undef multiply_add
#undef select_doubles
#undef select_floats
#undef PASTE_
#undef PASTE
#undef NAMED
#undef PARTS
#undef SOFTMAX_NEAR

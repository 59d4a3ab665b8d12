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
    doubles e_r_minus_one = multiply_add(r2, p, r);
    doubles e_r = one + e_r_minus_one;
    double_bits k_bits = (double_bits)shifted - bits_of(ROUNDING_SHIFT);
    if (near) {
        doubles scale = (doubles)((1023 - k_bits) << 52);
#if FUSED
        /* one operation for (1 + t) 2^-k, the same bits: 2^-k is a power of
           two and the result normal, so rounding t + 1 before the scaling or
           after it gives one value */
        return multiply_add(e_r_minus_one, scale, scale);
#else
        return e_r * scale;
#endif
    }
    doubles scale = (doubles)((1023 + 600 - k_bits) << 52);
    return e_r * scale * 0x1p-600;
}

/*
 * Lanes chosen by a comparison.  AVX-512 keeps them in a mask register,
 * which its adds and conversions take directly (GCC's vector extension
 * would turn each mask into a register of ones and blend with it: six
 * instructions a step where two do); the other levels keep a register of
 * all-ones lanes.  Either way the sums get the same operations in the same
 * order, so the levels agree bitwise.
 */
#if WIDTH == 8
typedef __mmask8 NAMED(lane_set);
#define lane_set NAMED(lane_set)
#define lanes_equal(A, B) _mm512_cmp_pd_mask((__m512d)(A), (__m512d)(B), _CMP_EQ_OQ)
#define lanes_loaded(P) _mm512_movepi64_mask(_mm512_loadu_si512((const void *)(P)))
#define lanes_not(SET) ((lane_set)~(SET))
/* SUM + VALUE in the lanes of SET; SUM elsewhere */
#define add_where(SUM, SET, VALUE) \
    ((doubles)_mm512_mask_add_pd((__m512d)(SUM), (SET), (__m512d)(SUM), (__m512d)(VALUE)))
/* VALUE in the lanes of SET, 0 elsewhere */
#define kept_where(SET, VALUE) ((doubles)_mm512_maskz_mov_pd((SET), (__m512d)(VALUE)))
#define doubles_of_floats(P) ((doubles)_mm512_cvtps_pd(_mm256_loadu_ps((const float *)(P))))
#else
#define lane_set double_mask
#define lanes_equal(A, B) ((A) == (B))
#define lanes_loaded(P) NAMED(loaded_mask)(P)
#define lanes_not(SET) (~(SET))
#define add_where(SUM, SET, VALUE) ((SUM) + (doubles)((double_mask)(VALUE) & (SET)))
#define kept_where(SET, VALUE) ((doubles)((double_mask)(VALUE) & (SET)))
#define doubles_of_floats(P) NAMED(converted)((const char *)(P))
ATTRIBUTE FOCAL_INLINE double_mask
NAMED(loaded_mask)(const long long *lanes)
{
    double_mask mask;
    memcpy(&mask, lanes, sizeof mask);
    return mask;
}
ATTRIBUTE FOCAL_INLINE doubles
NAMED(converted)(const char *source)
{
    narrow_floats x;
    memcpy(&x, source, sizeof x);
    return __builtin_convertvector(x, doubles);
}
#endif

/*
 * The E_j of SOFTMAX_LANES classes (PARTS registers) from `source`, or where
 * `loaded` is not NULL (a constant) from its registers, into e, their sums
 * into below and at_max.  z_j = m gives e^0 = 1 also when m is
 * infinite; any other z_j enters as m - z_j (rounded as z_j - m would be).
 * `near`: the row's logits are finite and within SOFTMAX_NEAR of m, where
 * m - z_j is 0 exactly when z_j = m.  `valid_lanes` (NULL, a constant, where
 * every lane counts): the lanes whose classes are summed.
 */
ATTRIBUTE FOCAL_INLINE void
NAMED(exponentials_step)(const char *source, const doubles *loaded,
                         const long long *valid_lanes, const doubles *m, double *e,
                         doubles *below, doubles *at_max, int near)
{
    const doubles zero = {0.0};
    for (int part = 0; part < PARTS; part++) {
        doubles z = loaded != NULL
                        ? loaded[part]
                        : doubles_of_floats(source + part * WIDTH * (ptrdiff_t)sizeof(float));
        lane_set equal = lanes_equal(z, *m);
        doubles difference = near ? *m - z : kept_where(lanes_not(equal), *m - z);
        doubles value = NAMED(exp_negative_lanes)(&difference, near);
        memcpy(e + part * WIDTH, &value, sizeof value);
        lane_set others = lanes_not(equal);
        if (valid_lanes != NULL) {
            lane_set valid = lanes_loaded(valid_lanes + part * WIDTH);
            others &= valid;
            equal &= valid;
        }
        below[part] = add_where(below[part], others, value);
        at_max[part] = add_where(at_max[part], equal, zero + 1.0);
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

#if !(defined(FOCAL_X86_DISPATCH) && (WIDTH == 8 || WIDTH == 4))
/* a row shorter than 2 SOFTMAX_LANES classes, padded with its first logit
   to 2 SOFTMAX_LANES (which changes neither its maximum nor, masked, its
   sums), where the level has no masked load */
ATTRIBUTE static void
NAMED(padded_row)(const char *logits, ptrdiff_t n, float *padded)
{
    float first;
    memcpy(&first, logits, sizeof first);
    for (int l = 0; l < 2 * SOFTMAX_LANES; l++) {
        padded[l] = first;
    }
    memcpy(padded, logits, (size_t)n * sizeof(float));
}
#endif

/* a row shorter than SOFTMAX_LANES classes as PARTS registers of doubles,
   padded with its first logit: by a masked load where the level has one
   (see extremes), else through padded_row */
ATTRIBUTE FOCAL_INLINE void
NAMED(short_row)(const char *logits, ptrdiff_t n, doubles *row)
{
    float first;
    memcpy(&first, logits, sizeof first);
#if defined(FOCAL_X86_DISPATCH) && WIDTH == 8
    row[0] = (doubles)_mm512_cvtps_pd(
        _mm256_mask_loadu_ps(_mm256_set1_ps(first), (__mmask8)((1u << n) - 1u), logits));
#elif defined(FOCAL_X86_DISPATCH) && WIDTH == 4
    __m256i in_row = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 x = _mm256_blendv_ps(_mm256_set1_ps(first),
                                _mm256_maskload_ps((const float *)logits, in_row),
                                _mm256_castsi256_ps(in_row));
    row[0] = (doubles)_mm256_cvtps_pd(_mm256_castps256_ps128(x));
    row[1] = (doubles)_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
#else
    float padded[2 * SOFTMAX_LANES];
    NAMED(padded_row)(logits, n, padded);
    for (int part = 0; part < PARTS; part++) {
        row[part] = doubles_of_floats(padded + part * WIDTH);
    }
#endif
}

#define FLOATS_AT(J) (logits + (J) * (ptrdiff_t)sizeof(float))

/*
 * Pass 1: the maximum m, whether the row holds NaN, and whether its logits
 * lie within SOFTMAX_NEAR of m.  A row's last, partial register is the
 * register that ends with its last class.
 */
ATTRIBUTE static void
NAMED(extremes)(const char *logits, ptrdiff_t n, softmax_row_summary *summary)
{
    enum { FLOATS = 2 * WIDTH };
    float first;
    memcpy(&first, logits, sizeof first);
    const floats no_floats = {0.0f};
    floats largest = no_floats + first, smallest = largest;
    float_mask nan = {0};
    if (n < FLOATS) {
        /* a short row, padded with its first logit: by a masked load where
           the level has one (which reads no byte past the row).  Stored
           into a padded copy and loaded back whole, the row waited on the
           copy's stores (a load cannot take its bytes from several pending
           stores) and the call of memcpy: a fifth of a small call's time
           at 10 classes */
        floats x;
#if defined(FOCAL_X86_DISPATCH) && WIDTH == 8
        x = (floats)_mm512_mask_loadu_ps(_mm512_set1_ps(first), (__mmask16)((1u << n) - 1u),
                                         logits);
#elif defined(FOCAL_X86_DISPATCH) && WIDTH == 4
        __m256i in_row = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        x = (floats)_mm256_blendv_ps(_mm256_set1_ps(first),
                                     _mm256_maskload_ps((const float *)logits, in_row),
                                     _mm256_castsi256_ps(in_row));
#else
        float padded[2 * SOFTMAX_LANES];
        NAMED(padded_row)(logits, n, padded);
        memcpy(&x, padded, sizeof x);
#endif
        nan |= x != x;
        largest = select_floats(x > largest, x, largest);
        smallest = select_floats(x < smallest, x, smallest);
    }
    const ptrdiff_t whole_floats = n - n % FLOATS;
    for (ptrdiff_t j = 0; j < n && n >= FLOATS; j += FLOATS) {
        floats x;
        memcpy(&x, j < whole_floats ? FLOATS_AT(j) : FLOATS_AT(n - FLOATS), sizeof x);
        nan |= x != x;
        largest = select_floats(x > largest, x, largest);
        smallest = select_floats(x < smallest, x, smallest);
    }
    /* the lanes halved in a tree, each step keeping the upper half's value
       where it is larger (smaller): the order of the scalar loop below, in
       registers where the level has them.  A chain of 15 dependent scalar
       comparisons per row was a tenth of an 81-class row's time, and the
       loop's any-lane NaN test through memory a tenth of the forward pass */
    float max, min;
#if defined(FOCAL_X86_DISPATCH) && (WIDTH == 8 || WIDTH == 4)
#if WIDTH == 8
    int has_nan = _mm512_test_epi32_mask((__m512i)nan, (__m512i)nan) != 0;
    __m256 high_8 = _mm256_max_ps(_mm512_extractf32x8_ps((__m512)largest, 1),
                                  _mm512_castps512_ps256((__m512)largest));
    __m256 low_8 = _mm256_min_ps(_mm512_extractf32x8_ps((__m512)smallest, 1),
                                 _mm512_castps512_ps256((__m512)smallest));
#else
    int has_nan = _mm256_movemask_ps((__m256)nan) != 0;
    __m256 high_8 = (__m256)largest, low_8 = (__m256)smallest;
#endif
    __m128 high_4 = _mm_max_ps(_mm256_extractf128_ps(high_8, 1), _mm256_castps256_ps128(high_8));
    __m128 low_4 = _mm_min_ps(_mm256_extractf128_ps(low_8, 1), _mm256_castps256_ps128(low_8));
    __m128 high_2 = _mm_max_ps(_mm_movehl_ps(high_4, high_4), high_4);
    __m128 low_2 = _mm_min_ps(_mm_movehl_ps(low_4, low_4), low_4);
    max = _mm_cvtss_f32(_mm_max_ss(_mm_shuffle_ps(high_2, high_2, 1), high_2));
    min = _mm_cvtss_f32(_mm_min_ss(_mm_shuffle_ps(low_2, low_2, 1), low_2));
#else
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
    int has_nan = any_nan[0] != 0;
    max = high[0];
    min = low[0];
#endif
    summary->max = (double)max;
    summary->has_nan = has_nan;
    /* (false for NaN and infinities) */
    summary->near = (double)max - (double)min <= SOFTMAX_NEAR;
}

/*
 * Pass 2, once extremes() has filled *summary: the E_j, and the rest S - 1
 * summed as the E_j of the classes below m plus one for each class at m but
 * the first (those E_j are exactly 1): no E_j is singled out by its index,
 * so the sums stay in lanes.  The last, partial step is the one that ends
 * with the last class, its lanes already counted masked (their E_j are
 * written again, the same bits); a row shorter than SOFTMAX_LANES is read
 * padded.
 */
ATTRIBUTE static void
NAMED(exponentials)(const char *logits, ptrdiff_t n, double *e, softmax_row_summary *summary)
{
    /* a row shorter than one step: its SOFTMAX_LANES lanes padded with its
       first logit (uncounted), their E_j written whole (e has the room) */
    doubles short_row[PARTS];
    if (n < SOFTMAX_LANES) {
        NAMED(short_row)(logits, n, short_row);
    }
    const ptrdiff_t whole = n - n % SOFTMAX_LANES;
    const doubles zero = {0.0};
    const doubles m = zero + summary->max;
    doubles below[PARTS], at_max[PARTS];
    for (int part = 0; part < PARTS; part++) {
        below[part] = zero;
        at_max[part] = zero;
    }
#define STEPS(NEAR)                                                                          \
    for (ptrdiff_t j = 0; j < whole; j += SOFTMAX_LANES) {                                   \
        NAMED(exponentials_step)(FLOATS_AT(j), NULL, NULL, &m, e + j, below, at_max, NEAR);  \
    }                                                                                        \
    if (whole < n && n >= SOFTMAX_LANES) {                                                   \
        NAMED(exponentials_step)(FLOATS_AT(n - SOFTMAX_LANES), NULL,                         \
                                 lane_masks + (n - whole), &m, e + n - SOFTMAX_LANES, below, \
                                 at_max, NEAR);                                              \
    }                                                                                        \
    else if (whole < n) {                                                                    \
        NAMED(exponentials_step)(NULL, short_row, lane_masks + 2 * SOFTMAX_LANES - n, &m, e,  \
                                 below, at_max, NEAR);                                       \
    }
    if (summary->near) {
        STEPS(1)
    }
    else {
        STEPS(0)
    }
#undef STEPS
    summary->rest = NAMED(sum_of_lanes)(below) + (NAMED(sum_of_lanes)(at_max) - 1.0);
}
#undef FLOATS_AT

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

/* TERMS(GAMMA), a loop over softmax_term_plain, with gamma 0, 1 and 2 as
   constants (dd_power's branches fold away and the loop vectorises; any
   other gamma calls pow, lane by lane) */
#define WITH_GAMMA_CONSTANT(TERMS, gamma) \
    if ((gamma) == 2.0) {                 \
        TERMS(2.0)                        \
    }                                     \
    else if ((gamma) == 1.0) {            \
        TERMS(1.0)                        \
    }                                     \
    else if ((gamma) == 0.0) {            \
        TERMS(0.0)                        \
    }                                     \
    else {                                \
        TERMS(gamma)                      \
    }

/* softmax_term_plain on every lane (a row of the block) */
ATTRIBUTE static void
NAMED(label_terms)(softmax_block_terms *terms, double gamma)
{
#define TERMS(GAMMA)                                                                        \
    for (int k = 0; k < SOFTMAX_ROW_BLOCK; k++) {                                          \
        softmax_plain_term v =                                                             \
            softmax_term_plain(terms->rest[k], terms->e_c[k], terms->max[k], terms->z[k],  \
                               terms->argmax[k], terms->weight[k], GAMMA);                 \
        terms->loss[k] = v.loss;                                                           \
        terms->g[k] = v.g;                                                                 \
        terms->one_minus_p[k] = v.one_minus_p;                                             \
    }
    WITH_GAMMA_CONSTANT(TERMS, gamma)
#undef TERMS
}

/* softmax_term_plain_given over a row's classes, vectorised by the compiler
   as label_terms is (the same operations: the same bits) */
ATTRIBUTE static void
NAMED(dense_terms)(const double *e, const double *z, const double *weight, ptrdiff_t n,
                   double rest, double log_total, double max, ptrdiff_t argmax, double gamma,
                   double *loss, double *g)
{
#define TERMS(GAMMA)                                                                        \
    for (ptrdiff_t c = 0; c < n; c++) {                                                    \
        softmax_plain_term v = softmax_term_plain_given(rest, log_total, e[c], max, z[c],  \
                                                        c == argmax ? 1.0 : 0.0, weight[c], \
                                                        GAMMA);                             \
        loss[c] = v.loss;                                                                  \
        g[c] = v.g;                                                                        \
    }
    WITH_GAMMA_CONSTANT(TERMS, gamma)
#undef TERMS
}

/* softmax_term_careful over a row's classes (the same operations: the same
   bits), vectorised by the compiler where the level has fused multiply-adds.
   A class's target weight comes in as its factors (target_weight), the first
   in g and the second in g_low; a class it adds leaves its G_c there and its
   term in loss_hi and loss_lo, and a class it does not add its factors, with
   a NaN loss_hi.  (nonnull: e_low is read unconditionally; restrict: the
   buffers are distinct, and without it the alias checks are too many to
   vectorise) */
ATTRIBUTE __attribute__((nonnull)) static void
NAMED(careful_terms)(const softmax_row_shape *row, dd log_total, const double *restrict z,
                     const double *restrict e, const double *restrict e_low,
                     double *restrict g, double *restrict g_low, ptrdiff_t n, double gamma,
                     double *restrict loss_hi, double *restrict loss_lo)
{
    const softmax_row_shape shape = *row; /* a local: the stores cannot change it */
#define TERMS(GAMMA, POWER_HI, POWER_LO)                                                  \
    for (ptrdiff_t c = 0; c < n; c++) {                                                  \
        target_weight a = {g[c], g_low[c]};                                              \
        softmax_careful_term v = softmax_term_careful(&shape, z, e, e_low, c, a, GAMMA,  \
                                                      log_total, POWER_HI, POWER_LO);    \
        int added = v.ordinary & (a.first != 0.0);                                       \
        loss_hi[c] = added ? v.loss.hi : NAN;                                            \
        loss_lo[c] = added ? v.loss.lo : 0.0;                                            \
        g[c] = added ? v.g.hi : a.first;                                                 \
        g_low[c] = added ? v.g.lo : a.second;                                            \
    }
#define INTEGER_TERMS(GAMMA) TERMS(GAMMA, NULL, NULL)
    if (gamma == floor(gamma)) {
        WITH_GAMMA_CONSTANT(INTEGER_TERMS, gamma)
    }
    else {
        /* the powers first, into loss_hi and loss_lo (free until the terms
           fill them), in a loop of their own that selects nothing on them:
           GCC computed exp_fine only where a select used it, and did not
           vectorise that conditional table load */
        const dd total = dd_add(shape.rest, dd_from(1.0), 1);
        for (ptrdiff_t c = 0; c < n; c++) {
            dd e_c = {e[c], e_low[c]};
            dd power = careful_fractional_power(e_c, total, gamma);
            loss_hi[c] = power.hi;
            loss_lo[c] = power.lo;
        }
        TERMS(gamma, loss_hi, loss_lo)
    }
#undef INTEGER_TERMS
#undef TERMS
}

/* (softmax_focal.h's loop, compiled for the level) */
ATTRIBUTE static void
NAMED(accurate_exponentials)(const double *z, ptrdiff_t n, double max, double *e, double *e_low)
{
    softmax_row_shape row = softmax_row_start(max);
    softmax_exponentials_piece(&row, z, e, e_low, n, 1, 1);
}

/* (the general rows' loops of softmax_focal.h, compiled for the level, with
   `precise` and a null e_low made constants) */
ATTRIBUTE static void
NAMED(general_exponentials)(const double *z, ptrdiff_t n, double max, double *e, double *e_low,
                            int precise)
{
    softmax_row_shape row = softmax_row_start(max);
    if (precise) {
        softmax_exponentials_piece(&row, z, e, e_low, n, 1, FOCAL_ROWS_CAREFUL);
    }
    else {
        softmax_exponentials_piece(&row, z, e, NULL, n, 0, 0);
    }
}

/* The largest of the doubles that are not NaN: a maximum, the same whatever
   the order in which it is taken (but for the sign of a zero, which
   softmax_merge_max takes from the logit itself).  A chain of dependent
   comparisons, softmax_scan_max took a quarter of the samples of a float64
   row of 81 classes once the exponentials were vectorised. */
ATTRIBUTE static double
NAMED(largest)(const double *z, ptrdiff_t n, int *has_nan)
{
    const doubles zero = {0.0};
    doubles largest = zero - INFINITY;
    double_mask nan = {0}, number = {0};
    const ptrdiff_t whole = n - n % WIDTH;
    for (ptrdiff_t j = 0; j < whole; j += WIDTH) {
        doubles x;
        memcpy(&x, z + j, sizeof x);
        nan |= x != x;
        number |= x == x;
        largest = select_doubles(x > largest, x, largest);
    }
    double lane[WIDTH];
    long long lane_nan[WIDTH], lane_number[WIDTH];
    memcpy(lane, &largest, sizeof lane);
    memcpy(lane_nan, &nan, sizeof lane_nan);
    memcpy(lane_number, &number, sizeof lane_number);
    double max = -INFINITY;
    int any_nan = 0, any_number = 0;
    for (int l = 0; l < WIDTH; l++) {
        max = lane[l] > max ? lane[l] : max;
        any_nan |= lane_nan[l] != 0;
        any_number |= lane_number[l] != 0;
    }
    for (ptrdiff_t j = whole; j < n; j++) {
        max = z[j] > max ? z[j] : max;
        any_nan |= z[j] != z[j];
        any_number |= z[j] == z[j];
    }
    *has_nan = any_nan;
    return any_number ? max : NAN;
}

ATTRIBUTE static void
NAMED(general_gradient)(const softmax_row_shape *row, const double *e, const double *g,
                        dd g_total, double *grad, ptrdiff_t n, int precise)
{
    if (precise) {
        softmax_gradient(row, e, NULL, g, NULL, g_total, grad, n, 1, 0, 0);
    }
    else {
        softmax_gradient(row, e, NULL, g, NULL, g_total, grad, n, 0, 0, 0);
    }
}

ATTRIBUTE static void
NAMED(general_hessian_diagonal)(const softmax_row_shape *row, const double *e, ptrdiff_t label,
                                double g, double curvature, double others_label, double *hess,
                                ptrdiff_t n, int precise)
{
    if (precise) {
        softmax_hessian_diagonal(row, e, NULL, label, g, curvature, others_label, hess, n, 1);
    }
    else {
        softmax_hessian_diagonal(row, e, NULL, label, g, curvature, others_label, hess, n, 0);
    }
}

static const softmax_row_kernels NAMED(kernels) = {
    NAMED(extremes), NAMED(exponentials), NAMED(label_terms), NAMED(dense_terms),
    NAMED(careful_terms), NAMED(scaled),
    NAMED(accurate_exponentials), NAMED(general_exponentials), NAMED(largest),
    NAMED(general_gradient), NAMED(general_hessian_diagonal)};

#undef doubles
#undef double_mask
#undef double_bits
#undef floats
#undef float_mask
#undef narrow_floats
#undef multiply_add
#undef WITH_GAMMA_CONSTANT
#undef select_doubles
#undef select_floats
#undef lane_set
#undef lanes_equal
#undef lanes_loaded
#undef lanes_not
#undef add_where
#undef kept_where
#undef doubles_of_floats
#undef PASTE_
#undef PASTE
#undef NAMED
#undef PARTS
#undef SOFTMAX_NEAR

/*
 * rowwise.c: the NumPy glue of the softmax focal loss (softmax_focal.h).
 *
 * The Python layer moves the class axis last (a view, no copy).  NpyIter
 * then walks the row starts (the views x[..., 0]) of every operand in C
 * order, without buffering; each row is read along its own stride into a
 * small buffer of C doubles by the loaders of row_access.h, so any axis,
 * dtype, byte order or alignment is read in place.  Rows are cut into fixed
 * chunks that threads take in turn (parallel.h); each chunk's sums are kept
 * apart and combined in order, so results do not depend on the threads.
 *
 * Rows of float32 results with class indices (the common case: a detector's
 * or a segmenter's head) take vectorised per-class loops compiled for each
 * instruction set (softmax_rows.h), in blocks of rows; their logits are read
 * in place when they are native float32 along a contiguous class axis, else
 * through a float32 copy of the row.  The rest (float64 results, dense
 * targets, the hessian, rows beyond ROW_PIECE classes) take the row code of
 * softmax_focal.h one row at a time, its loops over the classes compiled for
 * each instruction set too (softmax_rows.h: the same bits as the scalar
 * code, which builds without those kernels run); float64 results at gamma >
 * FOCAL_POWER_BY_LOG take its accurate form, float64 results at smaller
 * gammas its careful form, which keep the E_j and G_c in
 * double-double (two more buffers of a piece).  A row of dense targets whose
 * gradient cancels somewhere takes that gradient from a finer form
 * (gradient_again).
 */
#include "glue.h"
#include "parallel.h"
#include "row_access.h"
#include "simd.h"
#include "softmax_focal.h"
#include "softmax_rows.h"

enum { SOFTMAX_OPERANDS = 6, ROW_CHUNK_ELEMENTS = 1 << 16 };

/*
 * The classes of a row read at a time.  A row of at most ROW_PIECE classes is
 * read once and held; a longer one is read piece by piece in each of its
 * passes (maximum, sum of exponentials, loss, gradient), its exponentials
 * computed again where needed, so a thread's buffers stay 5 * ROW_PIECE
 * doubles (the double-double rows: 7) whatever the number of classes.
 */
enum { ROW_PIECE = 2048 };

/* loss_small: the sum of the row losses times FOCAL_SMALL_SUM, which stays
   finite where a sum of losses near 1e308 overflows */
typedef struct {
    compensated_sum loss, weight, loss_small;
} row_sums;

#define FOCAL_SMALL_SUM 0x1p-64

/* Everything one call needs; read-only while the threads run. */
typedef struct {
    int labels;              /* class indices (else dense probability rows) */
    int precise;             /* float64 results: the double-double kernel */
    double gamma;
    double alpha;            /* the weight of every class when class_alpha is NULL */
    const char *class_alpha; /* one value per class, read in place (any real dtype) */
    npy_intp alpha_stride;
    row_loader load_alpha;
    npy_intp num_classes;
    npy_intp ignore_index;
    double grad_divisor;
    /* powers of two on each row weight where it enters the loss and the summed
       weights, and where it enters the gradient (1 but for extreme weights) */
    double loss_weight_scale, grad_weight_scale;
    double weight_prescale;  /* on every row weight read: see the elementwise task's */
    int want_loss, want_grad, want_hess, has_weights;
    int sums_only;           /* validate and sum the row weights; no kernel */
    int check_targets;       /* a sums_only pass checks dense targets (not when
                                it only sums a weighted mean's row weights) */
    npy_intp logit_stride, target_stride, grad_stride, hess_stride; /* along the class axis */
    PyArrayObject *label_array;                          /* for its dtype */
    row_loader load_logits, load_targets, load_weight;
    row_storer store;
    /* float32 results from class indices: the per-class loops vectorised
       (softmax_rows.h); NULL otherwise */
    const softmax_row_kernels *kernels;
    /* the general rows (not `kernels`'): the instruction set's loops over a
       row's classes (softmax_rows.h); NULL where the compiler builds none */
    const softmax_row_kernels *general_kernels;
    /* the double-double rows take their copy built for fused multiply-adds
       (choose_row): the module's instruction-set level has them */
    int fused_rows;
    /* the vectorised rows read native float32 logits along a contiguous class
       axis in place, and write a contiguous gradient in place; any other row
       is gathered into (or scattered from) a float32 copy of it: native
       float32 logits along a strided class axis (gather_block) a block of
       rows at a time, class by class (gather_rows), others row by row */
    int gather_logits, gather_block, scatter_grad;
    /* CHUNK_SLOTS slots, one per chunk in flight (parallel.h) */
    row_sums *sums;
    loop_problem *problems;
    row_sums total;          /* the chunks merged so far, in order */
} softmax_task;

/*
 * The vectorised rows (softmax_rows.h) go in blocks: the maximum of each of
 * up to ROW_BLOCK rows as it arrives, then for each row its exponentials and
 * per-row values, then their sums and results in row order.  The per-row
 * values are a chain of dependent operations (log S, 1 - p, the power, G,
 * the coefficient), and so are the last steps of a maximum; a block's rows
 * are independent of each other, so their chains overlap the other rows'
 * work instead of each one waiting for the previous.
 */
enum { ROW_BLOCK = SOFTMAX_ROW_BLOCK, ROW_PREFETCH_BYTES = 4096 };

/* a row of a block, between its maximum and its results */
typedef struct {
    char *loss_out, *grad_out;
    const char *logits;      /* its float32 logits: in place, or copy */
    const char *source;      /* its logits in the array, for gather_rows */
    npy_intp label;
    double weight, loss_weight;
    double z;                /* the label's logit */
    softmax_row_summary summary;
    softmax_row_shape shape; /* classes counted from the label (softmax_shift) */
    double *e;               /* its E_j */
    float *copy;             /* room for a row of float32 logits that are not read in place */
    float *grad_copy;        /* room for its gradient, where it is not written in place */
} pending_row;

typedef struct {
    pending_row rows[ROW_BLOCK];
    int count, capacity;
} row_block;

/* a thread's row buffers, min(C, ROW_PIECE) doubles each; the vectorised
   rows use grad, x and the block (its rows' E_j, SOFTMAX_LANES more each,
   and where they are not in place, float32 copies of their logits and
   gradients); e_low and g_low (the low parts of the E_j and G_c) are the
   accurate rows' alone */
typedef struct {
    double *x, *e, *g, *y, *grad, *e_low, *g_low;
    row_block *block;
} row_buffers;

/* operand order in the iterator */
enum { OP_LOGITS, OP_TARGETS, OP_WEIGHTS, OP_LOSS, OP_GRAD, OP_HESS };

/* what a row returns: 0, ROW_FAILED (problem recorded) or ROW_ABANDONED */
enum { ROW_FAILED = -1, ROW_ABANDONED = 1 };

static void
fill(double *values, npy_intp n, double value)
{
    for (npy_intp j = 0; j < n; j++) {
        values[j] = value;
    }
}

/* the length of the piece of a row that starts at class `first` */
static inline npy_intp
piece_length(npy_intp classes, npy_intp first)
{
    return classes - first < ROW_PIECE ? classes - first : ROW_PIECE;
}

/* alpha of class c */
static inline double
class_weight(const softmax_task *t, npy_intp c)
{
    if (t->class_alpha == NULL) {
        return t->alpha;
    }
    double value;
    t->load_alpha(t->class_alpha + c * t->alpha_stride, 0, 1, &value);
    return value;
}

/* the E_j of a piece of a row (softmax_exponentials_piece), by the
   instruction set's kernels where there are (the same bits) */
FOCAL_INLINE void
piece_exponentials(const softmax_task *t, const softmax_row_shape *row, const double *x,
                   double *e, double *e_low, npy_intp n, int precise, int accurate)
{
    if (accurate == FOCAL_ROWS_ACCURATE && t->general_kernels != NULL) {
        t->general_kernels->accurate_exponentials(x, n, row->max, e, e_low);
    }
    else if (t->general_kernels != NULL) {
        t->general_kernels->general_exponentials(x, n, row->max, e, e_low, precise);
    }
    else {
        softmax_exponentials_piece(row, x, e, e_low, n, precise, accurate);
    }
}

/* the target weights a_c = alpha_c y_c of a piece's classes, and how many
   are not zero: float64 results (precise) take their factors (target_weight),
   the first into buffer->g and the second into buffer->g_low; float32 results
   their products, into buffer->g */
FOCAL_INLINE npy_intp
target_weights(const softmax_task *t, const row_buffers *buffer, npy_intp first, npy_intp n,
               int precise)
{
    npy_intp targets = 0;
    double *restrict weight = buffer->g;
    double *restrict second = buffer->g_low;
    const double *restrict y = buffer->y;
    if (t->class_alpha == NULL) {
        /* (one alpha: loops without calls, which vectorise) */
        const double alpha = t->alpha;
        if (precise) {
            for (npy_intp c = 0; c < n; c++) {
                target_weight a = target_weight_of(alpha, y[c]);
                weight[c] = a.first;
                second[c] = a.second;
                targets += a.first != 0.0;
            }
            return targets;
        }
        for (npy_intp c = 0; c < n; c++) {
            weight[c] = y[c] != 0.0 ? alpha * y[c] : 0.0;
            targets += weight[c] != 0.0;
        }
        return targets;
    }
    for (npy_intp c = 0; c < n; c++) {
        /* (alpha is not read for a zero target) */
        target_weight a = target_weight_of(y[c] != 0.0 ? class_weight(t, first + c) : 0.0, y[c]);
        if (precise) {
            weight[c] = a.first;
            second[c] = a.second;
        }
        else {
            weight[c] = target_weight_value(a);
        }
        targets += weight[c] != 0.0;
    }
    return targets;
}

/* dense_terms for float32 results at gamma <= FOCAL_POWER_BY_LOG, in a row
   without NaN: every class's term by the level's loop (dense_terms:
   softmax_term_plain, the bits of softmax_class_term) with the row's log S
   (log_total), into buffer->grad (free until the gradient) and buffer->y
   (read: the target weights a_c are in g, target_weights); then in class
   order the terms of the classes with a target added, but those with an
   infinite m - z_c, which softmax_class_term takes. */
static void
dense_terms_in_lanes(const softmax_task *t, const softmax_row_shape *shifted,
                     const row_buffers *buffer, npy_intp n, dd *loss, dd *g_total,
                     double log_total)
{
    t->general_kernels->dense_terms(buffer->e, buffer->x, buffer->g, n, shifted->rest.hi,
                                    log_total, shifted->max,
                                    shifted->argmax, t->gamma, buffer->grad, buffer->y);
    /* (a local: the stores into the buffers cannot alias it) */
    dd row_loss = *loss;
    for (npy_intp c = 0; c < n; c++) {
        double a = buffer->g[c];
        if (a == 0.0) {
            continue; /* no term: G_c stays +0 */
        }
        if (isinf(shifted->max - buffer->x[c])) {
            /* (row_loss's address not taken: it stays in a register) */
            dd with_term = row_loss;
            buffer->g[c] = softmax_class_term(shifted, buffer->x, buffer->e, NULL, c,
                                              target_weight_of(a, 1.0), t->gamma, &with_term,
                                              NULL, 0, 0, NULL)
                               .hi;
            row_loss = with_term;
        }
        else {
            row_loss = dd_accumulate(row_loss, dd_from(buffer->grad[c]), 0);
            buffer->g[c] = buffer->y[c];
        }
    }
    *loss = row_loss;
    /* the G_c in class order, as dense_terms adds them: those of classes
       without a target are +0, which changes no sum of G_c >= 0 */
    double total = g_total->hi;
    for (npy_intp c = 0; c < n; c++) {
        total += buffer->g[c];
    }
    *g_total = dd_from(total);
}

/* dense_terms for float64 results (FOCAL_ROWS_CAREFUL) in a row without NaN:
   every class's term and G_c by the level's loop (careful_terms:
   softmax_term_careful, the bits of softmax_class_term), then in class order
   the terms of the classes with a target added, and those it leaves (the
   argmax, an infinite m - z_c, a 1 - p_c below 2^-100, a non-integer gamma's
   power of exactly 1, where E_c = 0) taken by softmax_class_term.  The target
   weights' factors are in buffer->g and buffer->g_low (target_weights); the
   loss terms go to buffer->grad and buffer->y, free until the gradient. */
static void
careful_terms_in_lanes(const softmax_task *t, const softmax_row_shape *shifted,
                       const row_buffers *buffer, npy_intp n, dd *loss, dd *g_total,
                       const dd *log_total)
{
    t->general_kernels->careful_terms(shifted, *log_total, buffer->x, buffer->e, buffer->e_low,
                                      buffer->g, buffer->g_low, n, t->gamma, buffer->grad,
                                      buffer->y);
    /* (locals: the stores into the buffers cannot alias them) */
    dd row_loss = *loss, total = *g_total;
    for (npy_intp c = 0; c < n; c++) {
        if (buffer->grad[c] == buffer->grad[c]) {
            /* the kernel's term: its high part in grad, its low part in y */
            dd term = {buffer->grad[c], buffer->y[c]};
            row_loss = dd_accumulate(row_loss, term, 1);
            dd g = {buffer->g[c], buffer->g_low[c]};
            total = dd_add(total, g, 1);
        }
        else if (buffer->g[c] != 0.0) {
            /* a class the kernel left (NaN in grad), its target weight's
               factors in g and g_low (row_loss's address not taken: it stays
               in a register) */
            target_weight a = {buffer->g[c], buffer->g_low[c]};
            dd with_term = row_loss;
            dd g = softmax_class_term(shifted, buffer->x, buffer->e, buffer->e_low, c, a,
                                      t->gamma, &with_term, NULL, 1, FOCAL_ROWS_CAREFUL,
                                      log_total);
            row_loss = with_term;
            buffer->g[c] = g.hi;
            buffer->g_low[c] = g.lo;
            total = dd_add(total, g, 1);
        }
    }
    *loss = row_loss;
    *g_total = total;
}

/* the class terms of a piece of dense targets (y) into g (accurate: and
   g_low), added to *loss and *g_total one class after the other (as for a row
   held whole); returns how many classes of the piece have a target */
FOCAL_INLINE npy_intp
dense_terms(const softmax_task *t, const softmax_row_shape *row, const row_buffers *buffer,
            npy_intp first, npy_intp n, dd *loss, dd *g_total, int precise, int accurate)
{
    softmax_row_shape shifted = softmax_shift(row, first);
    /* (log S once for the row's classes, not once per class) */
    const dd log_total = softmax_log_total(&shifted, precise, accurate);
    const int in_lanes = t->general_kernels != NULL && !row->has_nan &&
                         (precise ? accurate == FOCAL_ROWS_CAREFUL && t->fused_rows
                                  : t->gamma <= FOCAL_POWER_BY_LOG);
    /* the level's loops form every class's term: worth it where at least a
       quarter of the classes have a target (label-smoothed rows, not one-hot
       ones) */
    const npy_intp targets = target_weights(t, buffer, first, n, precise);
    if (in_lanes && 4 * targets >= n) {
        if (precise) {
            careful_terms_in_lanes(t, &shifted, buffer, n, loss, g_total, &log_total);
        }
        else {
            /* (softmax_log_total of plain doubles is softmax_plain_log_total) */
            dense_terms_in_lanes(t, &shifted, buffer, n, loss, g_total, log_total.hi);
        }
        return targets;
    }
    const double *e_low = accurate ? buffer->e_low : NULL;
    for (npy_intp c = 0; c < n; c++) {
        /* (target_weights) */
        target_weight a = precise ? (target_weight){buffer->g[c], buffer->g_low[c]}
                                  : target_weight_of(buffer->g[c], 1.0);
        dd term = dd_from(0.0);
        if (a.first != 0.0) {
            term = softmax_class_term(&shifted, buffer->x, buffer->e, e_low, c, a, t->gamma, loss,
                                      NULL, precise, accurate, &log_total);
            *g_total = accurate ? dd_add(*g_total, term, 1) : dd_from(g_total->hi + term.hi);
        }
        buffer->g[c] = term.hi;
        if (accurate) {
            buffer->g_low[c] = term.lo;
        }
    }
    return targets;
}

/*
 * A row's loss times its weight as the reductions' scale takes it: 0 under a
 * zero weight whatever the logits, NaN for NaN logits.  A weight the scale
 * takes below the smallest subnormal (loss_weight 0) keeps an infinite loss
 * infinite (inf times 0 was NaN) and drops a finite one; the sum that drops
 * it is taken again with the weights unscaled where that matters
 * (Plan.retake).  (Once a stand-in of 5e-324 for such a weight, which
 * overstated a finite loss: row weights [1.2e-252, 1e308] summed to 3.0e293
 * for 2.1e56.)
 */
static double
weighted_row_loss(double weight, double loss_weight, dd loss, int has_nan, int precise)
{
    if (weight == 0.0) {
        return 0.0;
    }
    if (has_nan) {
        return NAN;
    }
    return isinf(loss.hi) ? loss.hi : dd_mul_rounded(loss, dd_from(loss_weight), precise);
}

/*
 * A row of float32 logits with a class index, its weight and label checked,
 * vectorised: its maximum now (softmax_rows.h), the rest when its block is
 * full (finish_block).
 */
static void
start_vectorised_row(const softmax_task *t, const char *logits, npy_intp label, double weight,
                     double loss_weight, char *loss_out, char *grad_out, row_buffers *buffer)
{
    row_block *block = buffer->block;
    pending_row *r = &block->rows[block->count];
    r->loss_out = loss_out;
    r->grad_out = grad_out;
    r->label = label;
    r->weight = weight;
    r->loss_weight = loss_weight;
    if (t->gather_block) {
        /* copied with the block's other rows, and its maximum taken then */
        r->source = logits;
        block->count++;
        return;
    }
    if (t->gather_logits) {
        /* every dtype of float32 results (float16, float32, small integers)
           is exactly a float32 */
        t->load_logits(logits, t->logit_stride, t->num_classes, buffer->x);
        for (npy_intp j = 0; j < t->num_classes; j++) {
            r->copy[j] = (float)buffer->x[j];
        }
        logits = (const char *)r->copy;
    }
    else {
        /* the rows a few ahead, where they follow in memory (the common
           C-ordered (rows, classes) array): the hardware's prefetcher alone
           left the maximum's first loads waiting on memory, a fifth of a row's
           time.  A prefetch does not fault, so rows that lie elsewhere cost
           only the hint. */
        /* (an address, not a pointer: it may lie beyond the array) */
        const uintptr_t ahead = (uintptr_t)logits + ROW_PREFETCH_BYTES;
        const npy_intp bytes = t->num_classes * (npy_intp)sizeof(float);
        for (npy_intp offset = 0; offset < bytes; offset += 64) {
            __builtin_prefetch((const void *)(ahead + (uintptr_t)offset));
        }
    }
    r->logits = logits;
    t->kernels->extremes(logits, t->num_classes, &r->summary);
    block->count++;
}

/*
 * A block's rows of native float32 logits along a strided class axis,
 * copied class by class, then their maxima.  A block's rows are mostly
 * neighbours in memory (the pixels of an (N, C, H, W) array along axis 1,
 * whose classes lie H W floats apart): class by class, the rows' values of
 * one class share a cache line.  Row by row, each row touched one line per
 * class, lines a power of two apart that compete for one set of the
 * first-level cache, and its maximum then read back at once the copy that
 * single stores had just written (a load the processor cannot forward from
 * them: it waits for them to drain).
 */
static void
gather_rows(const softmax_task *t, row_block *block)
{
    /* (the pointers in locals: the copies' stores could alias the block's
       fields, which the compiler would then load again at every class) */
    const char *source[ROW_BLOCK];
    float *copy[ROW_BLOCK];
    const int count = block->count;
    const npy_intp classes = t->num_classes, stride = t->logit_stride;
    for (int k = 0; k < count; k++) {
        source[k] = block->rows[k].source;
        copy[k] = block->rows[k].copy;
    }
    for (npy_intp j = 0; j < classes; j++) {
        for (int k = 0; k < count; k++) {
            memcpy(&copy[k][j], source[k] + j * stride, sizeof(float));
        }
    }
    for (int k = 0; k < block->count; k++) {
        pending_row *r = &block->rows[k];
        r->logits = (const char *)r->copy;
        t->kernels->extremes(r->logits, t->num_classes, &r->summary);
    }
}

/* the gradients of a block's rows, from their copies (where `copied`) into
   the array along its strided class axis, class by class (see gather_rows) */
static void
scatter_rows(const softmax_task *t, const row_block *block, const int *copied)
{
    char *target[ROW_BLOCK];
    const float *copy[ROW_BLOCK];
    int count = 0;
    const npy_intp classes = t->num_classes, stride = t->grad_stride;
    for (int k = 0; k < block->count; k++) {
        if (copied[k]) {
            target[count] = block->rows[k].grad_out;
            copy[count++] = block->rows[k].grad_copy;
        }
    }
    for (npy_intp j = 0; j < classes; j++) {
        for (int k = 0; k < count; k++) {
            memcpy(target[k] + j * stride, &copy[k][j], sizeof(float));
        }
    }
}

/* a block's row: its exponentials, and its shape with the classes counted
   from its label */
static void
row_exponentials(const softmax_task *t, pending_row *r)
{
    t->kernels->exponentials(r->logits, t->num_classes, r->e, &r->summary);
    float label_logit;
    memcpy(&label_logit, r->logits + r->label * (npy_intp)sizeof(float), sizeof label_logit);
    r->z = label_logit;
    /* argmax 0 when the label holds the first largest logit, else -1 */
    const softmax_row_summary *summary = &r->summary;
    softmax_row_shape shape = {summary->max, -1, dd_from(summary->rest), summary->has_nan};
    if (r->z == summary->max) {
        shape.argmax = 0;
        for (npy_intp j = 0; j < r->label; j++) {
            float logit;
            memcpy(&logit, r->logits + j * (npy_intp)sizeof(float), sizeof logit);
            if (logit == label_logit) {
                shape.argmax = -1;
                break;
            }
        }
    }
    r->shape = shape;
}

/*
 * The results of a block's rows, by softmax_row's formulas: the gradient
 * p_j G (j not the label) as the stored E_j times one coefficient of the row,
 * G / S with the weight and the divisor in it, and the label's component
 * patched.
 */
static void
finish_block(const softmax_task *t, row_block *block, row_buffers *buffer, row_sums *sums)
{
    const npy_intp classes = t->num_classes;
    /* the label terms of the rows together, vectorised across them
       (softmax_term_plain), but for a row with NaN or an infinite m - z_c,
       and every row above gamma FOCAL_POWER_BY_LOG: those one by one
       (softmax_class_term) */
    const int together = t->gamma <= FOCAL_POWER_BY_LOG;
    if (t->gather_block) {
        gather_rows(t, block);
    }
    int alone[ROW_BLOCK], copied[ROW_BLOCK] = {0};
    softmax_block_terms terms;
    for (int k = 0; k < ROW_BLOCK; k++) {
        pending_row *r = &block->rows[k];
        if (k < block->count) {
            row_exponentials(t, r);
        }
        alone[k] = k >= block->count || !together || r->shape.has_nan ||
                   isinf(r->shape.max - r->z);
        /* (a lane without a row computes on zeros: no NaN, nothing read) */
        terms.rest[k] = alone[k] ? 0.0 : r->shape.rest.hi;
        terms.e_c[k] = alone[k] ? 0.0 : r->e[r->label];
        terms.max[k] = alone[k] ? 0.0 : r->shape.max;
        terms.z[k] = alone[k] ? 0.0 : r->z;
        terms.argmax[k] = alone[k] ? 1.0 : r->shape.argmax == 0;
        terms.weight[k] = alone[k] ? 0.0 : class_weight(t, r->label);
    }
    if (together) {
        t->kernels->label_terms(&terms, t->gamma);
    }
    double g[ROW_BLOCK], one_minus_p[ROW_BLOCK];
    dd loss[ROW_BLOCK];
    for (int k = 0; k < block->count; k++) {
        const pending_row *r = &block->rows[k];
        if (!alone[k]) {
            loss[k] = dd_from(terms.loss[k]);
            g[k] = terms.g[k];
            one_minus_p[k] = terms.one_minus_p[k];
            continue;
        }
        loss[k] = dd_from(0.0);
        g[k] = 0.0;
        one_minus_p[k] = 0.0;
        if (!r->shape.has_nan) {
            g[k] = softmax_class_term(&r->shape, &r->z, r->e + r->label, NULL, 0,
                                      target_weight_of(class_weight(t, r->label), 1.0), t->gamma,
                                      &loss[k], NULL, 0, 0, NULL)
                       .hi;
            one_minus_p[k] = others_share(&r->shape, r->e + r->label, NULL, 0, 0).hi /
                             (r->shape.rest.hi + 1.0);
        }
    }
    for (int k = 0; k < block->count; k++) {
        const pending_row *r = &block->rows[k];
        double row_loss = weighted_row_loss(r->weight, r->loss_weight, loss[k], r->shape.has_nan, 0);
        compensated_add(&sums->loss, row_loss);
        compensated_add(&sums->loss_small, row_loss * FOCAL_SMALL_SUM);
        compensated_add(&sums->weight, r->loss_weight);
        /* (float32 results: the vectorised rows are the plain kernel's) */
        if (r->loss_out) {
            float rounded = (float)row_loss;
            memcpy(r->loss_out, &rounded, sizeof rounded);
        }
        if (r->grad_out == NULL) {
            continue;
        }
        if (r->weight == 0.0 || r->shape.has_nan) {
            fill(buffer->grad, classes, r->weight == 0.0 ? 0.0 : NAN);
            t->store(buffer->grad, r->grad_out, t->grad_stride, classes);
            continue;
        }
        weight_ratio scale = weight_ratio_of(r->weight * t->grad_weight_scale, t->grad_divisor);
        double total = r->shape.rest.hi + 1.0;
        char *grad_row = t->scatter_grad ? (char *)r->grad_copy : r->grad_out;
        copied[k] = t->scatter_grad;
        double coefficient = g[k] / total * scale.plain;
        if (scale.split || !isfinite(coefficient)) {
            /* a weight over the divisor beyond the double range (numeric.h),
               or a coefficient beyond it (a weight near its top at a huge
               gamma): each p_j G first, then the weight's factor, so that a
               p_j that underflowed gives 0, not 0 times inf (NaN) */
            for (npy_intp j = 0; j < classes; j++) {
                float value = (float)weight_ratio_times(scale, r->e[j] * (g[k] / total));
                memcpy(grad_row + j * (npy_intp)sizeof(float), &value, sizeof value);
            }
        }
        else {
            t->kernels->scaled(r->e, classes, coefficient, grad_row);
        }
        if (g[k] != 0.0) {
            /* p (G - G_label) - G_label (1 - p) with G = G_label */
            float value = (float)weight_ratio_times(scale, 0.0 - g[k] * one_minus_p[k]);
            memcpy(grad_row + r->label * (t->scatter_grad ? (npy_intp)sizeof(float)
                                                          : t->grad_stride),
                   &value, sizeof value);
        }
    }
    if (t->scatter_grad) {
        scatter_rows(t, block, copied);
    }
    block->count = 0;
}

/* the specialisations of the row (below): plain double, double-double or
   accurate, held whole or read in pieces */
typedef int (*softmax_row_function)(const softmax_task *t, chunk_thread *self, char **ptr,
                                    row_buffers *buffer, row_sums *sums,
                                    loop_problem *problem);
static softmax_row_function choose_row(const softmax_task *t, int accurate);

/*
 * A row of dense targets whose gradient cancels somewhere
 * (softmax_gradient_cancelled), found by a row of the form `from`: the
 * row's gradient formed again by a form whose parts are finer, and stored
 * (over pieces stored before, where out= is neither its logits nor its
 * targets).  Float32 results up to gamma FOCAL_POWER_BY_LOG take the
 * careful form (parts good to about 2^-76, far beyond what a float32
 * gradient needs down to 2^-30 of its terms), which looks again and hands
 * a row that cancels further to the accurate form (about 2^-100), as
 * float64 results take it at once: the accurate form is scalar and costs
 * about four times the careful one, which rows of very many soft classes,
 * nearly all holding a component below 2^-20 of its terms, paid at every
 * row.  Its loss, summed and stored already, keeps those bits (loss() and
 * loss_and_grad()[0] agree).
 */
static int
gradient_again(const softmax_task *t, chunk_thread *self, char **ptr, row_buffers *buffer,
               loop_problem *problem, int from)
{
    softmax_task gradient_only = *t;
    gradient_only.want_loss = 0;
    row_sums unused = {{0.0, 0.0}, {0.0, 0.0}, {0.0, 0.0}};
    const int form = from == 0 && t->gamma <= FOCAL_POWER_BY_LOG ? FOCAL_ROWS_CAREFUL
                                                                 : FOCAL_ROWS_ACCURATE;
    return choose_row(&gradient_only, form)(&gradient_only, self, ptr, buffer, &unused, problem);
}

/* One row, at the iterator's pointers.  `whole` (a constant at each call
   site): the row has at most ROW_PIECE classes, held in the buffers from its
   first read.  `accurate` (a constant): 0, FOCAL_ROWS_CAREFUL or
   FOCAL_ROWS_ACCURATE (softmax_focal.h). */
FOCAL_INLINE int
softmax_row(const softmax_task *t, chunk_thread *self, char **ptr, row_buffers *buffer,
            row_sums *sums, loop_problem *problem, int precise, int whole, int vectorised,
            int accurate)
{
    const npy_intp classes = t->num_classes;
    const char *logits = ptr[OP_LOGITS];
    const char *targets = ptr[OP_TARGETS];
    char *loss_out = t->want_loss ? ptr[OP_LOSS] : NULL;
    char *grad_out = t->want_grad ? ptr[OP_GRAD] : NULL;
    char *hess_out = t->want_hess ? ptr[OP_HESS] : NULL; /* class indices only */
#define LOGITS_AT(FIRST) (logits + (FIRST) * t->logit_stride)
#define TARGETS_AT(FIRST) (targets + (FIRST) * t->target_stride)
#define GRAD_AT(FIRST) (grad_out + (FIRST) * t->grad_stride)
#define HESS_AT(FIRST) (hess_out + (FIRST) * t->hess_stride)
/* between the pieces of a long row: give up if the call was interrupted */
#define NEXT_PIECE()                                \
    if (!whole && chunk_abandon(self)) {            \
        return ROW_ABANDONED;                       \
    }
    double weight = 1.0;
    if (t->has_weights) {
        t->load_weight(ptr[OP_WEIGHTS], 0, 1, &weight);
    }
    if (!(weight >= 0.0 && weight < HUGE_VAL)) {
        return report(problem, LOOP_BAD_WEIGHT, weight, 0);
    }
    weight *= t->weight_prescale; /* exact: 1, or a subnormal made larger */
    npy_intp label = 0;
    if (t->labels) {
        label = load_label(t->label_array, targets);
        if (label == t->ignore_index) {
            /* an ignored row contributes nothing and gets zero gradient */
            double zero = 0.0;
            if (loss_out) t->store(&zero, loss_out, 0, 1);
            if (grad_out) {
                fill(buffer->grad, piece_length(classes, 0), 0.0);
                for (npy_intp first = 0; first < classes; first += ROW_PIECE) {
                    t->store(buffer->grad, GRAD_AT(first), t->grad_stride,
                             piece_length(classes, first));
                    if (hess_out) {
                        t->store(buffer->grad, HESS_AT(first), t->hess_stride,
                                 piece_length(classes, first));
                    }
                    NEXT_PIECE();
                }
            }
            return 0;
        }
        if (label < 0 || label >= classes) {
            return report(problem, LOOP_BAD_LABEL, 0.0, label);
        }
    }
    else if (!t->sums_only || t->check_targets) {
        for (npy_intp first = 0; first < classes; first += ROW_PIECE) {
            npy_intp n = piece_length(classes, first);
            t->load_targets(TARGETS_AT(first), t->target_stride, n, buffer->y);
            for (npy_intp c = 0; c < n; c++) {
                if (!(buffer->y[c] >= 0.0 && buffer->y[c] <= 1.0)) {
                    return report(problem, LOOP_BAD_TARGET, buffer->y[c], 0);
                }
            }
            NEXT_PIECE();
        }
    }
    /* exact, or below the smallest subnormal: weighted_row_loss */
    double loss_weight = weight * t->loss_weight_scale;
    if (t->sums_only) {
        compensated_add(&sums->weight, loss_weight);
        return 0;
    }
    if (vectorised) {
        row_block *block = buffer->block;
        start_vectorised_row(t, logits, label, weight, loss_weight, loss_out, grad_out, buffer);
        if (block->count == block->capacity) {
            finish_block(t, block, buffer, sums);
        }
        return 0;
    }

    /* the maximum, then the exponentials and their sum */
    softmax_row_shape row = softmax_row_start(0.0);
    for (npy_intp first = 0; first < classes; first += ROW_PIECE) {
        npy_intp n = piece_length(classes, first);
        t->load_logits(LOGITS_AT(first), t->logit_stride, n, buffer->x);
        if (first == 0) {
            row = softmax_row_start(buffer->x[0]);
        }
        if (t->general_kernels != NULL) {
            int has_nan;
            double largest = t->general_kernels->largest(buffer->x, n, &has_nan);
            softmax_merge_max(&row, buffer->x, n, first, largest, has_nan);
        }
        else {
            softmax_scan_max(&row, buffer->x, n, first);
        }
        NEXT_PIECE();
    }
    /* (but for the accurate rows, which keep them in e_low, g is scratch for
       what rounding drops from the E_j until the class terms fill it) */
    double *e_low = accurate ? buffer->e_low : NULL;
    double *low = accurate ? buffer->e_low : buffer->g;
    compensated_sum rest = {0.0, 0.0};
    double dropped = 0.0;
    for (npy_intp first = 0; first < classes; first += ROW_PIECE) {
        npy_intp n = piece_length(classes, first);
        if (!whole) {
            t->load_logits(LOGITS_AT(first), t->logit_stride, n, buffer->x);
        }
        piece_exponentials(t, &row, buffer->x, buffer->e, low, n, precise, accurate);
        softmax_add_rest(&rest, &dropped, &row, buffer->e, low, n, first, precise);
        NEXT_PIECE();
    }
    softmax_row_finish(&row, rest, dropped, precise);

    /* the loss, and the G_c of the classes with a target; for the hessian,
       the label's P_c and O_c */
    dd loss = dd_from(0.0);
    dd g_total = dd_from(0.0), g_label = dd_from(0.0);
    /* dense targets: the class whose G_c dominates g_total (softmax_largest_g) */
    softmax_largest_g largest = {-1, {0.0, 0.0}, {0.0, 0.0}};
    /* how many classes of the piece have a target (dense targets; 0 with
       class indices): softmax_gradient's choice of loop */
    npy_intp with_target = 0;
    double curvature = 0.0, others_label = 0.0;
    if (t->labels) {
        target_weight a = target_weight_of(class_weight(t, label), 1.0);
        /* the label's class in the buffers: the row held whole, or the
           label's logit alone, a piece of one class */
        npy_intp at = whole ? label : 0;
        softmax_row_shape shifted = softmax_shift(&row, label - at);
        if (whole) {
            fill(buffer->g, classes, 0.0);
            if (accurate) {
                fill(buffer->g_low, classes, 0.0);
            }
        }
        else {
            t->load_logits(LOGITS_AT(label), t->logit_stride, 1, buffer->x);
            piece_exponentials(t, &row, buffer->x, buffer->e, e_low, 1, precise, accurate);
        }
        g_label = softmax_class_term(&shifted, buffer->x, buffer->e, e_low, at, a, t->gamma,
                                     &loss, hess_out ? &curvature : NULL, precise, accurate,
                                     NULL);
        if (hess_out) {
            others_label = others_share(&shifted, buffer->e, e_low, at, precise).hi;
        }
        if (whole) {
            buffer->g[label] = g_label.hi;
            if (accurate) {
                buffer->g_low[label] = g_label.lo;
            }
        }
        g_total = g_label;
    }
    else {
        for (npy_intp first = 0; first < classes; first += ROW_PIECE) {
            npy_intp n = piece_length(classes, first);
            if (!whole) {
                t->load_logits(LOGITS_AT(first), t->logit_stride, n, buffer->x);
                t->load_targets(TARGETS_AT(first), t->target_stride, n, buffer->y);
                piece_exponentials(t, &row, buffer->x, buffer->e, e_low, n, precise, accurate);
            }
            with_target =
                dense_terms(t, &row, buffer, first, n, &loss, &g_total, precise, accurate);
            if (grad_out) {
                softmax_track_largest_g(&largest, buffer->g, buffer->g_low, first, n, accurate);
            }
            NEXT_PIECE();
        }
        if (!(largest.largest.hi > largest.others.hi)) {
            largest.index = -1; /* none dominates (a tie, say): g_total - G_j holds */
        }
    }

    double row_loss = weighted_row_loss(weight, loss_weight, loss, row.has_nan, precise);
    compensated_add(&sums->loss, row_loss);
    compensated_add(&sums->loss_small, row_loss * FOCAL_SMALL_SUM);
    compensated_add(&sums->weight, loss_weight);
    if (loss_out) {
        t->store(&row_loss, loss_out, 0, 1);
    }
    if (grad_out) {
        int masked = weight == 0.0 || row.has_nan;
        weight_ratio scale = weight_ratio_of(weight * t->grad_weight_scale, t->grad_divisor);
        /* rows of dense targets but the accurate ones look for a component
           that cancels (softmax_gradient_cancelled), and where one does
           take a finer row's gradient (gradient_again), which reads
           the row again: a row in pieces whose out= is its logits or its
           targets looks at every piece in a pass of its own before it
           stores the first */
        const int watch = accurate != FOCAL_ROWS_ACCURATE && !t->labels && !masked;
        const int in_place = grad_out == logits || grad_out == targets;
        for (int storing = watch && !whole && in_place ? 0 : 1; storing <= 1; storing++)
        for (npy_intp first = 0; first < classes; first += ROW_PIECE) {
            npy_intp n = piece_length(classes, first);
            if (masked) {
                fill(buffer->grad, n, weight == 0.0 ? 0.0 : NAN);
            }
            else {
                if (!whole) {
                    /* the piece's exponentials and G_c again (the same bits) */
                    t->load_logits(LOGITS_AT(first), t->logit_stride, n, buffer->x);
                    piece_exponentials(t, &row, buffer->x, buffer->e, e_low, n, precise, accurate);
                    if (t->labels) {
                        fill(buffer->g, n, 0.0);
                        if (accurate) {
                            fill(buffer->g_low, n, 0.0);
                        }
                        if (label >= first && label - first < n) {
                            buffer->g[label - first] = g_label.hi;
                            if (accurate) {
                                buffer->g_low[label - first] = g_label.lo;
                            }
                        }
                    }
                    else {
                        dd unused_loss = dd_from(0.0), unused_total = dd_from(0.0);
                        t->load_targets(TARGETS_AT(first), t->target_stride, n, buffer->y);
                        with_target = dense_terms(t, &row, buffer, first, n, &unused_loss,
                                                  &unused_total, precise, accurate);
                    }
                }
                softmax_row_shape shifted = softmax_shift(&row, first);
                /* the instruction set's loops (the same bits), but for the
                   gradient of the double-double rows and the hessian of the
                   accurate ones */
                const softmax_row_kernels *level = accurate ? NULL : t->general_kernels;
                const softmax_row_kernels *hess_level =
                    accurate == FOCAL_ROWS_ACCURATE ? NULL : t->general_kernels;
                if (level != NULL) {
                    level->general_gradient(&shifted, buffer->e, buffer->g, g_total, buffer->grad,
                                            n, precise);
                }
                else {
                    softmax_gradient(&shifted, buffer->e, e_low, buffer->g, buffer->g_low,
                                     g_total, buffer->grad, n, precise, accurate,
                                     4 * with_target >= n);
                }
                if (largest.index >= first && largest.index - first < n) {
                    buffer->grad[largest.index - first] = softmax_gradient_of_largest(
                        &shifted, buffer->e, e_low, &largest, largest.index - first, precise,
                        accurate);
                }
                if (watch && softmax_gradient_cancelled(
                                 &shifted, buffer->e, buffer->g, g_total.hi, buffer->grad, n,
                                 softmax_cancel_ratio(t->gamma, accurate, t->precise))) {
                    return gradient_again(t, self, ptr, buffer, problem, accurate);
                }
                if (!storing) {
                    NEXT_PIECE();
                    continue;
                }
                /* (y, the dense targets' buffer, is free with class indices) */
                if (hess_out && hess_level != NULL) {
                    hess_level->general_hessian_diagonal(&shifted, buffer->e, label - first,
                                                    g_label.hi, curvature, others_label,
                                                    buffer->y, n, precise);
                }
                else if (hess_out) {
                    /* (the careful rows' hessian as the level kernels take it,
                       without the E_j's low parts: the same bits) */
                    softmax_hessian_diagonal(&shifted, buffer->e,
                                             accurate == FOCAL_ROWS_ACCURATE ? e_low : NULL,
                                             label - first,
                                             g_label.hi, curvature, others_label, buffer->y, n,
                                             precise);
                }
                if (scale.split || scale.plain != 1.0) {
                    for (npy_intp j = 0; j < n; j++) {
                        buffer->grad[j] = weight_ratio_times(scale, buffer->grad[j]);
                    }
                    if (hess_out) {
                        for (npy_intp j = 0; j < n; j++) {
                            buffer->y[j] = weight_ratio_times(scale, buffer->y[j]);
                        }
                    }
                }
            }
            t->store(buffer->grad, GRAD_AT(first), t->grad_stride, n);
            if (hess_out) {
                /* masked: the gradient's 0 or NaN */
                t->store(masked ? buffer->grad : buffer->y, HESS_AT(first), t->hess_stride, n);
            }
            NEXT_PIECE();
        }
    }
    return 0;
#undef LOGITS_AT
#undef TARGETS_AT
#undef GRAD_AT
#undef HESS_AT
#undef NEXT_PIECE
}

#define DEFINE_ROW_FUNCTION(NAME, ATTRIBUTE, PRECISE, WHOLE, VECTORISED, ACCURATE)          \
    ATTRIBUTE static int NAME(const softmax_task *t, chunk_thread *self, char **ptr,       \
                              row_buffers *buffer, row_sums *sums, loop_problem *problem)  \
    {                                                                                       \
        return softmax_row(t, self, ptr, buffer, sums, problem, PRECISE, WHOLE, VECTORISED, \
                           ACCURATE);                                                       \
    }
#define DEFINE_SOFTMAX_ROW(NAME, PRECISE, WHOLE, VECTORISED, ACCURATE) \
    DEFINE_ROW_FUNCTION(NAME, , PRECISE, WHOLE, VECTORISED, ACCURATE)
DEFINE_SOFTMAX_ROW(softmax_row_plain, 0, 1, 0, 0)
DEFINE_SOFTMAX_ROW(softmax_row_plain_pieces, 0, 0, 0, 0)
DEFINE_SOFTMAX_ROW(softmax_row_vectorised, 0, 1, 1, 0)

/*
 * The double-double rows (float64 results) once more for the instruction
 * sets with fused multiply-adds (simd.h's AVX2 and AVX-512), which the
 * module's level chooses as it chooses the kernels: there the fma of every
 * exact product (numeric.h's two_product) is one instruction where the
 * baseline calls libm, and the loops over a row's classes without a branch
 * vectorise.  An fma rounds once wherever it runs, and nothing else is
 * fused (-ffp-contract=off): the same bits at every level.  Measured on a
 * Zen 4, one thread, (20000, 81): class indices 16.4 ms to 13.6,
 * label-smoothed targets 188 ms to 122.
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PRECISE_ROWS_FUSED 1
#define DEFINE_PRECISE_ROW(NAME, WHOLE, ACCURATE)                                            \
    DEFINE_ROW_FUNCTION(NAME, , 1, WHOLE, 0, ACCURATE)                                       \
    DEFINE_ROW_FUNCTION(NAME##_fused, __attribute__((target("avx2,fma"))), 1, WHOLE, 0, ACCURATE)
#else
#define DEFINE_PRECISE_ROW(NAME, WHOLE, ACCURATE) DEFINE_ROW_FUNCTION(NAME, , 1, WHOLE, 0, ACCURATE)
#endif
DEFINE_PRECISE_ROW(softmax_row_careful, 1, FOCAL_ROWS_CAREFUL)
DEFINE_PRECISE_ROW(softmax_row_accurate, 1, FOCAL_ROWS_ACCURATE)
DEFINE_PRECISE_ROW(softmax_row_careful_pieces, 0, FOCAL_ROWS_CAREFUL)
DEFINE_PRECISE_ROW(softmax_row_accurate_pieces, 0, FOCAL_ROWS_ACCURATE)

/* the row function of a task: `accurate` as softmax_row takes it */
static softmax_row_function
choose_row(const softmax_task *t, int accurate)
{
    if (t->kernels != NULL) {
        return softmax_row_vectorised;
    }
    int whole = t->num_classes <= ROW_PIECE;
    if (!accurate) {
        return whole ? softmax_row_plain : softmax_row_plain_pieces;
    }
#ifdef PRECISE_ROWS_FUSED
    if (t->fused_rows) {
        return accurate == FOCAL_ROWS_ACCURATE
                   ? (whole ? softmax_row_accurate_fused : softmax_row_accurate_pieces_fused)
                   : (whole ? softmax_row_careful_fused : softmax_row_careful_pieces_fused);
    }
#endif
    return accurate == FOCAL_ROWS_ACCURATE
               ? (whole ? softmax_row_accurate : softmax_row_accurate_pieces)
               : (whole ? softmax_row_careful : softmax_row_careful_pieces);
}

/* One chunk of rows: iteration indices [start, end), on this thread's iterator. */
static int
softmax_chunk(void *shared, chunk_thread *self, NpyIter *iter, int slot, npy_intp start,
              npy_intp end)
{
    softmax_task *t = (softmax_task *)shared;
    loop_problem *problem = &t->problems[slot];
    NpyIter_IterNextFunc *iternext = start_chunk(iter, start, end, problem);
    if (iternext == NULL) {
        return CHUNK_FAILED;
    }
    const int accurate = !t->precise                        ? 0
                         : t->gamma > FOCAL_POWER_BY_LOG ? FOCAL_ROWS_ACCURATE
                                                         : FOCAL_ROWS_CAREFUL;
    /* at most 7 * ROW_PIECE doubles, whatever the number of classes: five
       pieces of a row (the double-double rows: seven), or for the vectorised rows
       two (grad and x) and, for as many rows as 3 * ROW_PIECE doubles hold
       (up to ROW_BLOCK), their E_j and, where the logits or the gradient
       are not in place, a float32 copy of each */
    size_t piece = (size_t)piece_length(t->num_classes, 0);
    size_t row_e = piece + SOFTMAX_LANES, row_float = (piece + 1) / 2;
    size_t row_space = row_e + (t->gather_logits ? row_float : 0) +
                       (t->scatter_grad ? row_float : 0);
    row_block block = {.count = 0, .capacity = 0};
    if (t->kernels != NULL) {
        size_t fit = 3 * ROW_PIECE / row_space;
        block.capacity = fit < 1 ? 1 : fit > ROW_BLOCK ? ROW_BLOCK : (int)fit;
    }
    /* (dense targets' rows may be computed again by the careful or the
       accurate row: gradient_again) */
    const int low_parts = accurate || !t->labels;
    size_t size = t->kernels != NULL ? 2 * piece + (size_t)block.capacity * row_space
                  : low_parts         ? 7 * piece
                                      : 5 * piece;
    double *memory = (double *)allocate_array(size, sizeof(double));
    if (memory == NULL) {
        report(problem, LOOP_NO_MEMORY, 0.0, 0);
        return CHUNK_FAILED;
    }
    row_buffers buffer = {NULL, NULL, NULL, NULL, memory, NULL, NULL, &block};
    if (t->kernels != NULL) {
        buffer.x = memory + piece;
        for (int k = 0; k < block.capacity; k++) {
            double *space = memory + 2 * piece + (size_t)k * row_space;
            double *after_e = space + row_e;
            block.rows[k].e = space;
            block.rows[k].copy = t->gather_logits ? (float *)after_e : NULL;
            block.rows[k].grad_copy =
                t->scatter_grad ? (float *)(after_e + (t->gather_logits ? row_float : 0)) : NULL;
        }
    }
    else {
        buffer.x = memory + piece;
        buffer.e = memory + 2 * piece;
        buffer.g = memory + 3 * piece;
        buffer.y = memory + 4 * piece;
        if (low_parts) {
            buffer.e_low = memory + 5 * piece;
            buffer.g_low = memory + 6 * piece;
        }
    }
    row_sums sums = {{0.0, 0.0}, {0.0, 0.0}, {0.0, 0.0}};
    char **ptr = NpyIter_GetDataPtrArray(iter);
    softmax_row_function row = choose_row(t, accurate);
    int status = 0;
    npy_intp unasked = 0;
    do {
        status = row(t, self, ptr, &buffer, &sums, problem);
        unasked += t->num_classes;
        if (status == 0 && unasked >= CHUNK_ABANDON_ELEMENTS) {
            unasked = 0;
            status = chunk_abandon(self) ? ROW_ABANDONED : 0;
        }
    } while (status == 0 && iternext(iter));
    if (status == 0 && block.count > 0) {
        finish_block(t, &block, &buffer, &sums);
    }
    PyMem_RawFree(memory);
    t->sums[slot] = sums;
    return status == 0 ? CHUNK_DONE : status == ROW_ABANDONED ? CHUNK_ABANDONED : CHUNK_FAILED;
}

/* adds a chunk's sums to the totals (run_chunks calls it in chunk order) */
static void
softmax_merge(void *shared, int slot)
{
    softmax_task *t = (softmax_task *)shared;
    compensated_merge(&t->total.loss, t->sums[slot].loss);
    compensated_merge(&t->total.weight, t->sums[slot].weight);
    compensated_merge(&t->total.loss_small, t->sums[slot].loss_small);
}

/* x[..., 0]: the view of the row starts of an array whose last axis is the class axis */
static PyArrayObject *
row_starts(PyArrayObject *array)
{
    PyArray_Descr *descr = PyArray_DESCR(array);
    Py_INCREF(descr);
    PyObject *view = PyArray_NewFromDescr(
        &PyArray_Type, descr, PyArray_NDIM(array) - 1, PyArray_DIMS(array),
        PyArray_STRIDES(array), PyArray_DATA(array),
        PyArray_FLAGS(array) & NPY_ARRAY_WRITEABLE, NULL);
    if (view == NULL) {
        return NULL;
    }
    Py_INCREF(array);
    if (PyArray_SetBaseObject((PyArrayObject *)view, (PyObject *)array) < 0) {
        Py_DECREF(view);
        return NULL;
    }
    return (PyArrayObject *)view;
}

/* One call of the pass: its arguments as read by softmax_focal_entry, or as
   the common call's short path (softmax_plain_entry) settles them. */
typedef struct {
    PyArrayObject *logits, *targets;
    /* Py_None where absent: a scalar alpha (a float), one alpha per class, the
       row weights, and the outputs (loss_out, grad_out, hess_out) */
    PyObject *alpha, *alpha_per_class, *weights, *outputs[3];
    int labels, double_precision, sums_only, check_targets;
    double gamma, grad_divisor, loss_weight_scale, grad_weight_scale, weight_prescale;
    Py_ssize_t ignore_index;
} softmax_call;

/* Runs the call: its three sums (see softmax_focal_entry) into sums[], 0; or
   -1 with an exception set. */
static int
softmax_run(PyObject *module, const softmax_call *c, double sums[3])
{
    PyArrayObject *logits = c->logits, *targets = c->targets;
    const int labels = c->labels, double_precision = c->double_precision;
    PyObject *weights_obj = c->weights, *loss_obj = c->outputs[0];
    PyObject *grad_obj = c->outputs[1], *hess_obj = c->outputs[2];
    if (!(c->loss_weight_scale > 0.0 && c->loss_weight_scale < HUGE_VAL) ||
        !(c->grad_weight_scale > 0.0 && c->grad_weight_scale < HUGE_VAL)) {
        PyErr_SetString(PyExc_ValueError, "weight scales: expected finite numbers > 0");
        return -1;
    }
    if (!(c->weight_prescale >= 1.0 && c->weight_prescale < HUGE_VAL)) {
        PyErr_SetString(PyExc_ValueError, "weight_prescale: expected a finite number >= 1");
        return -1;
    }
    int ndim = PyArray_NDIM(logits);
    if (ndim < 1 || PyArray_DIM(logits, ndim - 1) < 1) {
        PyErr_SetString(PyExc_ValueError, "logits: the class axis must hold at least one class");
        return -1;
    }
    npy_intp classes = PyArray_DIM(logits, ndim - 1);

    softmax_task task = {0};
    task.labels = labels;
    task.sums_only = c->sums_only;
    task.check_targets = c->check_targets;
    task.precise = double_precision;
    task.gamma = c->gamma;
    task.alpha = 1.0;
    task.num_classes = classes;
    task.ignore_index = (npy_intp)c->ignore_index;
    task.grad_divisor = c->grad_divisor;
    task.loss_weight_scale = c->loss_weight_scale;
    task.grad_weight_scale = c->grad_weight_scale;
    task.weight_prescale = c->weight_prescale;
    task.store = double_precision ? store_float64 : store_float32;
    if (c->alpha != Py_None) {
        task.alpha = PyFloat_AsDouble(c->alpha);
        if (task.alpha == -1.0 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (c->alpha_per_class != Py_None) {
        /* read in place, one class at a time: no copy as long as the class axis */
        PyArrayObject *class_alpha = (PyArrayObject *)c->alpha_per_class;
        if (!PyArray_Check(c->alpha_per_class) || PyArray_NDIM(class_alpha) != 1 ||
            PyArray_DIM(class_alpha, 0) != classes) {
            PyErr_SetString(PyExc_ValueError, "alpha: expected one value per class");
            return -1;
        }
        task.load_alpha = find_row_loader(class_alpha);
        if (task.load_alpha == NULL) {
            PyErr_SetString(PyExc_TypeError, "alpha: unsupported dtype");
            return -1;
        }
        task.class_alpha = PyArray_DATA(class_alpha);
        task.alpha_stride = PyArray_STRIDE(class_alpha, 0);
    }

    PyArrayObject *ops[SOFTMAX_OPERANDS] = {NULL};
    npy_uint32 op_flags[SOFTMAX_OPERANDS];
    int result = -1;
    NpyIter *iter = NULL;
    int nop = 0;

    task.load_logits = find_row_loader(logits);
    task.logit_stride = PyArray_STRIDE(logits, ndim - 1);
    ops[OP_LOGITS] = row_starts(logits);
    op_flags[OP_LOGITS] = NPY_ITER_READONLY;
    if (labels) {
        if (PyArray_DESCR(targets)->kind != 'i' && PyArray_DESCR(targets)->kind != 'u') {
            PyErr_SetString(PyExc_TypeError, "labels: expected integer class indices");
            goto finish;
        }
        task.label_array = targets;
        Py_INCREF(targets);
        ops[OP_TARGETS] = targets;
    }
    else {
        if (PyArray_NDIM(targets) != ndim || PyArray_DIM(targets, ndim - 1) != classes) {
            PyErr_SetString(PyExc_ValueError, "labels: dense targets need the logits' shape");
            goto finish;
        }
        task.load_targets = find_row_loader(targets);
        task.target_stride = PyArray_STRIDE(targets, ndim - 1);
        ops[OP_TARGETS] = row_starts(targets);
    }
    op_flags[OP_TARGETS] = NPY_ITER_READONLY;
    nop = 2;
    if (ops[OP_LOGITS] == NULL || ops[OP_TARGETS] == NULL) {
        goto finish;
    }
    if (task.load_logits == NULL || (!labels && task.load_targets == NULL)) {
        PyErr_SetString(PyExc_TypeError, "logits, labels: unsupported dtype");
        goto finish;
    }
    /* absent operands are stood in for by the logits' row starts, never read */
    if (hess_obj != Py_None && (!labels || grad_obj == Py_None)) {
        PyErr_SetString(PyExc_ValueError,
                        "labels: the hessian is computed for class indices, with the gradient");
        goto finish;
    }
    PyObject *optional[4] = {weights_obj, loss_obj, grad_obj, hess_obj};
    for (int k = 0; k < 4; k++) {
        int index = OP_WEIGHTS + k;
        PyObject *given = optional[k];
        if (given != Py_None && !PyArray_Check(given)) {
            PyErr_SetString(PyExc_TypeError, "weights, out: expected arrays");
            goto finish;
        }
        if (given == Py_None) {
            ops[index] = ops[OP_LOGITS];
            Py_INCREF(ops[index]);
            op_flags[index] = NPY_ITER_READONLY;
        }
        else if (index == OP_GRAD || index == OP_HESS) {
            if (PyArray_NDIM((PyArrayObject *)given) != ndim ||
                PyArray_DIM((PyArrayObject *)given, ndim - 1) != classes) {
                PyErr_SetString(PyExc_ValueError, "out: expected the logits' shape");
                goto finish;
            }
            npy_intp stride = PyArray_STRIDE((PyArrayObject *)given, ndim - 1);
            if (index == OP_GRAD) {
                task.want_grad = 1;
                task.grad_stride = stride;
            }
            else {
                task.want_hess = 1;
                task.hess_stride = stride;
            }
            ops[index] = row_starts((PyArrayObject *)given);
            op_flags[index] = NPY_ITER_WRITEONLY | NPY_ITER_NO_BROADCAST;
        }
        else {
            ops[index] = (PyArrayObject *)given;
            Py_INCREF(given);
            op_flags[index] = index == OP_LOSS ? NPY_ITER_WRITEONLY | NPY_ITER_NO_BROADCAST
                                               : NPY_ITER_READONLY;
        }
        nop++;
        if (ops[index] == NULL) {
            goto finish;
        }
    }
    task.has_weights = weights_obj != Py_None;
    task.want_loss = loss_obj != Py_None;
    if (task.has_weights) {
        task.load_weight = find_row_loader((PyArrayObject *)weights_obj);
        if (task.load_weight == NULL) {
            PyErr_SetString(PyExc_TypeError, "weights: unsupported dtype");
            goto finish;
        }
    }
    int result_type = double_precision ? NPY_DOUBLE : NPY_FLOAT;
    for (int index = OP_LOSS; index <= OP_HESS; index++) {
        int wanted = index == OP_LOSS ? task.want_loss
                     : index == OP_GRAD ? task.want_grad
                                        : task.want_hess;
        if (wanted &&
            (PyArray_TYPE(ops[index]) != result_type || PyArray_ISBYTESWAPPED(ops[index]))) {
            PyErr_SetString(PyExc_TypeError, "out: expected the result dtype");
            goto finish;
        }
    }

    /* (the hessian is the general rows' alone) */
    if (labels && !double_precision && classes <= ROW_PIECE && !task.want_hess) {
        /* (NULL where the compiler builds no kernels: the general rows) */
        task.kernels = choose_softmax_row_kernels(get_module_state(module)->simd_level);
        int native_float = PyArray_TYPE(logits) == NPY_FLOAT && !PyArray_ISBYTESWAPPED(logits);
        task.gather_logits = !(native_float && task.logit_stride == (npy_intp)sizeof(float));
        task.gather_block = task.gather_logits && native_float;
        task.scatter_grad = task.want_grad && task.grad_stride != (npy_intp)sizeof(float);
    }

    task.fused_rows = get_module_state(module)->softmax_row_kernels &&
                      get_module_state(module)->simd_level >= SIMD_AVX2;
    if (task.kernels == NULL && get_module_state(module)->softmax_row_kernels) {
        task.general_kernels = choose_softmax_row_kernels(get_module_state(module)->simd_level);
    }

    /* RANGED: each chunk of rows is iterated on its own, by its own thread */
    iterator_recipe recipe = {nop, ops, NPY_ITER_RANGED | NPY_ITER_ZEROSIZE_OK, NPY_CORDER,
                              NPY_NO_CASTING, op_flags, NULL, -1, NULL};
    iter = make_iterator(&recipe);
    if (iter == NULL) {
        goto finish;
    }
    npy_intp rows_per_chunk = ROW_CHUNK_ELEMENTS / classes > 0 ? ROW_CHUNK_ELEMENTS / classes : 1;
    /* a fixed number of slots, whatever the size */
    task.sums = (row_sums *)PyMem_RawCalloc(CHUNK_SLOTS, sizeof(row_sums));
    task.problems = (loop_problem *)PyMem_RawCalloc(CHUNK_SLOTS, sizeof(loop_problem));
    if (task.sums == NULL || task.problems == NULL) {
        PyErr_NoMemory();
        goto finish;
    }
    int failed = 0;
    int status = run_chunks(&recipe, iter, rows_per_chunk,
                            get_module_state(module)->num_threads, softmax_chunk, softmax_merge,
                            &task, &failed);
    if (status < 0) {
        goto finish;
    }
    if (status > 0) {
        loop_problem problem = task.problems[failed];
        problem.num_classes = classes;
        problem.ignore_index = task.ignore_index;
        problem.argument = "labels";
        raise_loop_problem(&problem);
        goto finish;
    }
    sums[0] = compensated_total(&task.total.loss);
    sums[1] = compensated_total(&task.total.weight);
    sums[2] = compensated_total(&task.total.loss_small);
    result = 0;

finish:
    PyMem_RawFree(task.sums);
    PyMem_RawFree(task.problems);
    if (iter != NULL && NpyIter_Deallocate(iter) != NPY_SUCCEED) {
        result = -1;
    }
    for (int k = 0; k < SOFTMAX_OPERANDS; k++) {
        Py_XDECREF(ops[k]);
    }
    return result;
}

/*
 * _core.softmax_focal(logits, targets, *, labels, alpha, alpha_per_class,
 *                     gamma, weights, ignore_index, loss_out, grad_out,
 *                     grad_divisor, double_precision, sums_only,
 *                     loss_weight_scale, grad_weight_scale, hess_out,
 *                     weight_prescale, check_targets)
 *     -> (sum of weighted row losses, sum of row weights,
 *         sum of weighted row losses times FOCAL_SMALL_SUM: finite where the first overflows)
 *
 * logits, dense targets, grad_out and hess_out have the class axis last;
 * class-index targets, weights and loss_out have the rows' shape (weights
 * broadcast).  hess_out (the diagonal of each row's hessian, scaled as the
 * gradient) takes class indices and a grad_out.
 */
PyObject *
softmax_focal_entry(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"logits", "targets", "labels", "alpha", "alpha_per_class",
                               "gamma", "weights", "ignore_index", "loss_out", "grad_out",
                               "grad_divisor", "double_precision", "sums_only",
                               "loss_weight_scale", "grad_weight_scale", "hess_out",
                               "weight_prescale", "check_targets", NULL};
    softmax_call c = {.alpha = Py_None, .alpha_per_class = Py_None, .weights = Py_None,
                      .outputs = {Py_None, Py_None, Py_None}, .check_targets = 1,
                      .gamma = 2.0, .grad_divisor = 1.0, .loss_weight_scale = 1.0,
                      .grad_weight_scale = 1.0, .weight_prescale = 1.0, .ignore_index = -100};
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "O!O!|$pOOdOnOOdppddOdp", keywords, &PyArray_Type, &c.logits,
            &PyArray_Type, &c.targets, &c.labels, &c.alpha, &c.alpha_per_class, &c.gamma,
            &c.weights, &c.ignore_index, &c.outputs[0], &c.outputs[1], &c.grad_divisor,
            &c.double_precision, &c.sums_only, &c.loss_weight_scale, &c.grad_weight_scale,
            &c.outputs[2], &c.weight_prescale, &c.check_targets)) {
        return NULL;
    }
    double sums[3];
    if (softmax_run(module, &c, sums) < 0) {
        return NULL;
    }
    return Py_BuildValue("(ddd)", sums[0], sums[1], sums[2]);
}

/* the arguments of softmax_plain: those of focal._softmax._entry, in its order */
enum {
    SPLAIN_MODE, SPLAIN_LOGITS, SPLAIN_LABELS, SPLAIN_ALPHA, SPLAIN_GAMMA, SPLAIN_AXIS,
    SPLAIN_REDUCTION, SPLAIN_WEIGHTS, SPLAIN_IGNORE_INDEX, SPLAIN_NORMALIZER, SPLAIN_OUT,
    SPLAIN_RAW_SUM, SPLAIN_COUNT
};

/* whether `value` is an exact int from -2^62 to 2^62 (as focal._args's
   ignore_index_value takes one at once), into *out */
static int
plain_index(PyObject *value, long long *out)
{
    int overflow = 0;
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    *out = PyLong_AsLongLongAndOverflow(value, &overflow);
    return !overflow && *out >= -(1LL << 62) && *out <= (1LL << 62);
}

static PyObject *softmax_plain_call(PyObject *module, PyObject *const *args, softmax_call *c,
                                    int class_axis, PyArrayObject *alpha_array,
                                    const int wanted[3], int reduction,
                                    const plain_numbers *numbers);

/*
 * _core.softmax_plain(mode, logits, labels, alpha, gamma, axis, reduction,
 *                     weights, ignore_index, normalizer, out, raw_sum)
 *     -> (loss, gradient, second derivative), or NotImplemented
 *
 * The common call of the softmax focal loss, whole, for its public functions
 * (focal._spec, LossSpec's plain) and focal._softmax._entry, which hand it
 * the entry's arguments: plain float32 or float64 logits with at least two
 * classes along the axis `axis` (an exact int; the pass reads it moved last,
 * as the full path moves it), class indices (integers, not uint64) of the
 * rows' shape, plain alpha (or one per class: plain_class_alpha), gamma and
 * normalizer (plain_parameters), the reduction "none", "sum" or "mean", an
 * ignore_index outside the classes, out= None or a plain contiguous array
 * apart from the inputs (plain_out_slot), and no weights or raw sum.  Each
 * of these is a check the full path makes, so the two agree on every call;
 * anything else answers NotImplemented, and so does a mean or sum beyond
 * plain_scalar's case, after the pass (the full path then makes the call
 * again).  The results are those of _pass.run.
 */
PyObject *
softmax_plain_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int wanted[3]; /* the loss, the gradient, the second derivative */
    if (plain_mode("softmax_plain", args, nargs, SPLAIN_COUNT, wanted) < 0) {
        return NULL;
    }
    PyObject *alpha = args[SPLAIN_ALPHA];
    softmax_call c = {.alpha = Py_None, .alpha_per_class = Py_None, .weights = Py_None,
                      .outputs = {Py_None, Py_None, Py_None}, .labels = 1,
                      .check_targets = 1, .loss_weight_scale = 1.0, .grad_weight_scale = 1.0,
                      .weight_prescale = 1.0};
    int reduction = plain_reduction(args[SPLAIN_REDUCTION]);
    long long axis, ignore_index;
    plain_numbers numbers;
    /* one alpha per class: read below, once the classes are known */
    int class_alpha = PyArray_CheckExact(alpha) || PyList_CheckExact(alpha);
    if (reduction < 0 || reduction == REDUCE_SUM_OVER_POSITIVES ||
        !plain_parameters(class_alpha ? Py_None : alpha, args[SPLAIN_GAMMA],
                          args[SPLAIN_NORMALIZER], reduction, &numbers) ||
        !plain_index(args[SPLAIN_AXIS], &axis) ||
        !plain_index(args[SPLAIN_IGNORE_INDEX], &ignore_index) ||
        args[SPLAIN_WEIGHTS] != Py_None ||
        args[SPLAIN_RAW_SUM] != Py_False || !PyArray_CheckExact(args[SPLAIN_LOGITS]) ||
        !PyArray_CheckExact(args[SPLAIN_LABELS])) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    c.logits = (PyArrayObject *)args[SPLAIN_LOGITS];
    c.targets = (PyArrayObject *)args[SPLAIN_LABELS];
    int type = PyArray_TYPE(c.logits), ndim = PyArray_NDIM(c.logits);
    PyArray_Descr *label_dtype = PyArray_DESCR(c.targets);
    char kind = label_dtype->kind;
    /* the class axis anywhere (`axis` in range), with two classes or more
       (one is warned about), none of them ignore_index; class indices of the
       rows' shape (the logits' without the class axis), not uint64 (which
       the full path checks against intp's range) */
    if ((type != NPY_FLOAT && type != NPY_DOUBLE) || ndim < 1 || axis < -ndim || axis >= ndim) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int class_axis = (int)(axis < 0 ? axis + ndim : axis);
    npy_intp classes = PyArray_DIM(c.logits, class_axis);
    int rows_shaped = PyArray_NDIM(c.targets) == ndim - 1;
    for (int d = 0; rows_shaped && d < ndim - 1; d++) {
        npy_intp logits_dim = PyArray_DIM(c.logits, d < class_axis ? d : d + 1);
        rows_shaped = PyArray_DIM(c.targets, d) == logits_dim;
    }
    if (classes < 2 || (ignore_index >= 0 && ignore_index < classes) ||
        !(kind == 'i' || (kind == 'u' && PyDataType_ELSIZE(label_dtype) < 8)) || !rows_shaped) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    c.ignore_index = (Py_ssize_t)ignore_index;
    PyArrayObject *alpha_array = NULL;
    if (class_alpha) {
        int taken = plain_class_alpha(alpha, classes, &alpha_array);
        if (taken <= 0) {
            return taken < 0 ? NULL : Py_NewRef(Py_NotImplemented);
        }
        c.alpha_per_class = (PyObject *)alpha_array;
    }
    else {
        c.alpha = numbers.has_alpha ? alpha : Py_None;
    }
    PyObject *answer = softmax_plain_call(module, args, &c, class_axis, alpha_array, wanted,
                                          reduction, &numbers);
    Py_XDECREF(alpha_array);
    return answer;
}

static int softmax_moved_run(PyObject *module, softmax_call *c, int class_axis,
                             double sums[3]);

/* `array` with its axis `axis` moved last, as np.moveaxis(array, axis, -1)
   makes it: a new view */
static PyArrayObject *
class_axis_last(PyArrayObject *array, int axis)
{
    npy_intp order[NPY_MAXDIMS];
    int ndim = PyArray_NDIM(array), k = 0;
    for (int d = 0; d < ndim; d++) {
        if (d != axis) {
            order[k++] = d;
        }
    }
    order[k] = axis;
    PyArray_Dims permutation = {order, ndim};
    return (PyArrayObject *)PyArray_Transpose(array, &permutation);
}

/* softmax_plain's call from its settled arguments c (the logits, labels and
   alphas; alpha_array the alphas per class, or NULL; the classes along
   class_axis), once its out= is found apart from them: its results,
   NotImplemented, or NULL with an exception set */
static PyObject *
softmax_plain_call(PyObject *module, PyObject *const *args, softmax_call *c, int class_axis,
                   PyArrayObject *alpha_array, const int wanted[3], int reduction,
                   const plain_numbers *numbers)
{
    int type = PyArray_TYPE(c->logits), ndim = PyArray_NDIM(c->logits);
    int elementwise_loss = wanted[0] && reduction == REDUCE_NONE;
    /* the loss has the rows' shape (the labels'), the derivatives the logits' */
    PyArrayObject *like[3] = {c->targets, c->logits, c->logits};
    PyArrayObject *inputs[3] = {c->logits, c->targets, alpha_array};
    int out_slot = plain_out_slot(args[SPLAIN_MODE], args[SPLAIN_OUT], wanted, elementwise_loss,
                                  type, like, inputs, alpha_array != NULL ? 3 : 2);
    if (out_slot < -1) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    c->double_precision = type == NPY_DOUBLE;
    c->gamma = numbers->gamma;
    PyObject *results[3];
    int allocated[3] = {elementwise_loss, wanted[1], wanted[2]};
    if (plain_allocate(results, allocated, out_slot, args[SPLAIN_OUT], like, type) < 0) {
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        c->outputs[k] = results[k] != NULL ? results[k] : Py_None;
    }
    /* a mean's denominator, the normalizer given or the rows not ignored, as
       _reduce.Plan makes it (counted after the results exist: see
       sigmoid_plain) */
    double denominator = numbers->normalizer > 0.0 ? numbers->normalizer : 1.0;
    if (reduction == REDUCE_MEAN && numbers->normalizer == 0.0) {
        npy_intp ignored, positive;
        if (count_labels(c->targets, PyArray_DIM(c->logits, class_axis), c->ignore_index,
                         &ignored, &positive) < 0) {
            plain_release(results);
            return NULL;
        }
        denominator = (double)(PyArray_SIZE(c->targets) - ignored);
    }
    c->grad_divisor = denominator > 0.0 ? denominator : 1.0;
    double sums[3];
    int status = class_axis == ndim - 1 ? softmax_run(module, c, sums)
                                        : softmax_moved_run(module, c, class_axis, sums);
    if (status < 0) {
        plain_release(results);
        return NULL;
    }
    return plain_answer(results, wanted[0] && !elementwise_loss, sums[0], denominator,
                        c->double_precision);
}

/* softmax_run over the logits and the derivatives with the class axis moved
   last (views), as the full path hands them to the pass (_pass.Operands's
   to_pass): the same values in the same memory */
static int
softmax_moved_run(PyObject *module, softmax_call *c, int class_axis, double sums[3])
{
    softmax_call moved = *c;
    PyArrayObject *views[3] = {NULL, NULL, NULL}; /* the logits, gradient, second derivative */
    int status = -1;
    views[0] = class_axis_last(c->logits, class_axis);
    if (views[0] == NULL) {
        return -1;
    }
    moved.logits = views[0];
    for (int k = 1; k < 3; k++) {
        if (c->outputs[k] != Py_None) {
            views[k] = class_axis_last((PyArrayObject *)c->outputs[k], class_axis);
            if (views[k] == NULL) {
                goto finish;
            }
            moved.outputs[k] = (PyObject *)views[k];
        }
    }
    status = softmax_run(module, &moved, sums);
finish:
    for (int k = 0; k < 3; k++) {
        Py_XDECREF(views[k]);
    }
    return status;
}

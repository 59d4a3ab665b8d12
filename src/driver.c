/*
 * driver.c: the pass of the elementwise losses over NumPy arrays, for any row
 * of the table in losses.h (it names no loss).
 *
 * One NpyIter per call walks every operand in C order of the logits, with
 * buffering only where a cast, a byte swap or a misalignment needs it.  The
 * iteration is cut into fixed chunks (parallel.h) that threads take in turn;
 * inside a chunk, the iterator's 1-D strided runs are gathered block by block
 * into double arrays (validated as they are loaded), handed to the row's
 * kernel for the CPU's instruction set (simd.h), and scattered back.
 * Problems are recorded per chunk and raised once the GIL is held again; the
 * first in iteration order wins, so the message does not depend on the
 * threads either.
 *
 * Argument checking, defaults and the choice of dtypes live in the Python
 * package; this file trusts what it is handed to be of the documented form
 * but never reads out of bounds whatever the values.
 */
#include "glue.h"
#include "parallel.h"
#include "simd.h"

#include <float.h>

/* DIRECT_WITH_GIL: plain arrays up to this size are computed without
   releasing the GIL or making an iterator (about 40 us of work) */
enum { MAX_OPERANDS = 8, ELEMENT_CHUNK = 1 << 16, DIRECT_WITH_GIL = 1 << 14 };

/* what one chunk adds up */
typedef struct {
    compensated_sum loss, weight, positive, loss_small;
} chunk_sums;

/* Everything one call needs; read-only while the threads run. */
typedef struct {
    block_params params;
    kernel_choice kernel; /* the row, precision, form and outputs */
    int hard_targets;    /* the row takes targets in {0, 1} only */
    int sums_only;       /* validate and sum weights and targets; no kernel */
    int read_targets;    /* a sums_only pass reads the targets (not when it sums
                            the weights of dense targets alone, unchecked) */
    int which_sums;      /* the running sums to keep (SUM_LOSS | ...) */
    int precise;         /* float64 results: the double-double kernels */
    int simd_level;
    double alpha;        /* the scalar alpha when there is no per-class operand */
    int labels;
    int weights_change;  /* the block's weights change from block to block with no
                            weights operand (class indices, the weight scale) */
    /* a power of two >= 1 on every weight read (1 but where all weights are
       subnormal: the part of the reductions' scale beyond 2^1022, the largest
       power of two params.loss_weight_scale leaves room for) */
    double weight_prescale;
    npy_intp num_classes;
    npy_intp ignore_index;
    int logits_double, targets_double;
    /* operand positions in the iterator, -1 when absent */
    int i_alpha, i_weights, i_loss, i_grad, i_hess;
    int nop;             /* operands */
    int direct;          /* the chunks read the operands' memory directly: */
    char *data[MAX_OPERANDS];     /* their first elements */
    npy_intp step[MAX_OPERANDS];  /* their element sizes */
    /* CHUNK_SLOTS slots, one per chunk in flight (parallel.h) */
    chunk_sums *sums;
    loop_problem *problems;
    chunk_sums total;    /* the chunks merged so far, in order */
} elementwise_task;

/*
 * Fills the block with elements [offset, offset + n) of the current inner
 * loop, the first of which is element number `first_index` of the iteration,
 * and validates them (the loaders answer "any bad?" as they convert; only
 * then is the first bad value looked for), setting *flags' FOCAL_BLOCK_SOFT
 * and FOCAL_BLOCK_HEAVY (element_block.h).  The block's alpha, and its
 * weights when no operand or class index changes them, are filled once per
 * chunk: *filled says how many of their first entries are.
 */
static int
gather(const elementwise_task *t, const block_io *io, char **ptr, const npy_intp *stride,
       npy_intp offset, npy_intp first_index, npy_intp n, element_block *b, int *flags,
       npy_intp *filled, loop_problem *problem)
{
#define AT(INDEX) (ptr[INDEX] + offset * stride[INDEX])
    /* a pass without the kernel reads no logits, nor alpha: only what it
       checks and sums */
    if (!t->sums_only) {
        io->load(AT(0), stride[0], n, t->logits_double, b->x);
    }
    if (t->i_weights >= 0) {
        int check = io->load_weights(AT(t->i_weights), stride[t->i_weights], n, b->weight);
        *flags |= check & FOCAL_BLOCK_HEAVY;
        if (check & 1) {
            for (npy_intp i = 0; i < n; i++) {
                if (!(b->weight[i] >= 0.0 && b->weight[i] < HUGE_VAL)) { /* NaN fails too */
                    return report(problem, LOOP_BAD_WEIGHT, b->weight[i], 0);
                }
            }
        }
        if (t->weight_prescale != 1.0) {
            for (npy_intp i = 0; i < n; i++) {
                b->weight[i] *= t->weight_prescale; /* exact: a subnormal made larger */
            }
        }
    }
    else {
        /* only the block's first n entries are read: a small call fills
           n, not FOCAL_BLOCK */
        for (npy_intp i = t->weights_change ? 0 : *filled; i < n; i++) {
            b->weight[i] = 1.0;
        }
    }
    if (t->i_alpha < 0) {
        for (npy_intp i = *filled; i < n; i++) {
            b->alpha[i] = t->alpha;
        }
    }
    *filled = n > *filled ? n : *filled;
    if (t->labels) {
        /* the iteration runs in C order of the logits: element number g
           belongs to row g / C and class g % C.  Labels read in place are one
           per row; the iterator's run has one per element (its stride 0
           within a row, or over labels broadcast, or a buffer of cast ones) */
        const npy_intp classes = t->num_classes;
        const char *labels = t->direct ? t->data[1] + first_index / classes * sizeof(npy_intp)
                                       : AT(1);
        npy_intp bad;
        if (io->labels_to_targets(labels, t->direct ? (npy_intp)sizeof(npy_intp) : 0,
                                  t->direct ? 0 : stride[1], first_index % classes, n,
                                  t->ignore_index, classes, b->y, b->weight, &bad)) {
            return report(problem, LOOP_BAD_LABEL, 0.0, bad);
        }
    }
    else if (t->read_targets) {
        int check = io->load_targets(AT(1), stride[1], n, t->targets_double, b->y);
        int soft = (check >> 1) & 1;
        *flags |= soft ? FOCAL_BLOCK_SOFT : 0;
        if ((check & 1) || (t->hard_targets && soft)) {
            for (npy_intp i = 0; i < n; i++) {
                if (!(b->y[i] >= 0.0 && b->y[i] <= 1.0)) {
                    return report(problem, LOOP_BAD_TARGET, b->y[i], 0);
                }
                if (t->hard_targets && b->y[i] != 0.0 && b->y[i] != 1.0) {
                    return report(problem, LOOP_BAD_HARD_TARGET, b->y[i], 0);
                }
            }
        }
    }
    if (t->i_alpha >= 0 && !t->sums_only) {
        if (t->direct) {
            /* one alpha per class, read in place: element number g's is
               that of class g % C (the iterator's run has one per element) */
            const double *alphas = (const double *)t->data[t->i_alpha];
            npy_intp k = first_index % t->num_classes;
            for (npy_intp i = 0; i < n; i++) {
                b->alpha[i] = alphas[k];
                k = k + 1 == t->num_classes ? 0 : k + 1;
            }
        }
        else {
            io->load(AT(t->i_alpha), stride[t->i_alpha], n, 1, b->alpha);
        }
    }
    return 0;
#undef AT
}

static void
scatter(const elementwise_task *t, const block_io *io, char **ptr, const npy_intp *stride,
        npy_intp offset, npy_intp n, const element_block *b)
{
    int outputs[3] = {t->i_loss, t->i_grad, t->i_hess};
    const double *values[3] = {b->loss, b->grad, b->hess};
    for (int k = 0; k < 3; k++) {
        if (outputs[k] >= 0) {
            int op = outputs[k];
            io->store(values[k], ptr[op] + offset * stride[op], stride[op], n, t->logits_double);
        }
    }
}

/* a chunk's work in progress: its block, running sums and kernel */
typedef struct {
    element_block b;
    block_sums sums;
    int small_sums; /* SUM_LOSS_SMALL once a large loss was seen */
    npy_intp filled; /* see gather */
    const block_io *io;
    block_kernel kernel;
    chunk_thread *self; /* NULL in a small call run with the GIL held: nothing to ask */
    npy_intp unasked;   /* elements since chunk_abandon was last asked */
} chunk_state;

/*
 * Asks for the inputs of elements [next, next + FOCAL_BLOCK) of the run while
 * the kernel computes the blocks before them: large arrays come from memory,
 * and the kernel's time covers the wait.  Only forward runs of adjacent
 * elements.  FOCAL_PREFETCH_BLOCKS ahead, into the second-level cache: one
 * block ahead left most of the wait (the forward pass, one core, the
 * batch's 16M elements: 2.9 to 3.0 ns per element against 2.2 in cache;
 * 8 blocks ahead, 2.3 to 2.5; into the first-level cache, or 4 or 16
 * blocks ahead, measured no better).  Always inlined: a function whose only
 * effect is a prefetch counts as pure for GCC, which then drops the call (it
 * did, until this was found: no prefetch was issued).
 */
enum { FOCAL_PREFETCH_BLOCKS = 8 };

FOCAL_INLINE void
prefetch_block(const elementwise_task *t, char **ptr, const npy_intp *stride, npy_intp next,
               npy_intp n)
{
#if defined(__GNUC__)
    npy_intp m = n - next < FOCAL_BLOCK ? n - next : FOCAL_BLOCK;
    /* (the inputs gather reads) */
    int inputs[3] = {t->sums_only ? -1 : 0, t->read_targets ? 1 : -1, t->i_weights};
    for (int k = 0; k < 3 && m > 0; k++) {
        int op = inputs[k];
        if (op < 0 || stride[op] <= 0 || stride[op] > 8) {
            continue;
        }
        const char *first = ptr[op] + next * stride[op];
        for (npy_intp byte = 0; byte < m * stride[op]; byte += 64) {
            __builtin_prefetch(first + byte, 0, 2);
        }
    }
#else
    (void)t, (void)ptr, (void)stride, (void)next, (void)n;
#endif
}

/* n elements of a strided run (pointers ptr, strides stride), the first of
   which is element number `index` of the iteration.  Returns 0, -1 (a
   problem recorded) or 1: the call was interrupted (chunk_abandon, asked
   between blocks every CHUNK_ABANDON_ELEMENTS elements: one run of a
   transposed out= can touch every page of it) */
static int
run_elements(const elementwise_task *t, chunk_state *c, char **ptr, const npy_intp *stride,
             npy_intp n, npy_intp index, loop_problem *problem)
{
    element_block *b = &c->b;
    for (npy_intp ahead = 1; ahead < FOCAL_PREFETCH_BLOCKS; ahead++) {
        prefetch_block(t, ptr, stride, ahead * FOCAL_BLOCK, n);
    }
    for (npy_intp offset = 0; offset < n; offset += FOCAL_BLOCK) {
        npy_intp m = n - offset < FOCAL_BLOCK ? n - offset : FOCAL_BLOCK;
        int flags = 0;
        if (gather(t, c->io, ptr, stride, offset, index + offset, m, b, &flags, &c->filled,
                   problem)) {
            return -1;
        }
        prefetch_block(t, ptr, stride, offset + FOCAL_PREFETCH_BLOCKS * FOCAL_BLOCK, n);
        if (!t->sums_only) {
            c->kernel(&t->params, b, m, flags);
            scatter(t, c->io, ptr, stride, offset, m, b);
        }
        if ((t->which_sums & SUM_WEIGHT) && t->params.loss_weight_scale != 1.0) {
            /* the summed weights are scaled as the loss's are */
            for (npy_intp i = 0; i < m; i++) {
                b->weight[i] *= t->params.loss_weight_scale;
            }
        }
        c->io->accumulate(&c->sums, b, m, index + offset, t->which_sums, &c->small_sums,
                          t->logits_double);
        c->unasked += m;
        if (c->self != NULL && c->unasked >= CHUNK_ABANDON_ELEMENTS) {
            c->unasked = 0;
            if (chunk_abandon(c->self)) {
                return 1;
            }
        }
    }
    return 0;
}

/* One chunk: iteration indices [start, end), on this thread's iterator, or
   straight from the arrays' memory when the task is direct (then the
   iterator is not used). */
static int
elementwise_chunk(void *shared, chunk_thread *self, NpyIter *iter, int slot, npy_intp start,
                  npy_intp end)
{
    elementwise_task *t = (elementwise_task *)shared;
    loop_problem *problem = &t->problems[slot];
    chunk_state c;
    memset(&c.sums, 0, sizeof c.sums);
    c.small_sums = 0;
    c.filled = 0;
    c.self = self;
    c.unasked = 0;
    c.io = choose_block_io(t->simd_level);
    c.kernel = choose_block_kernel(t->simd_level, &t->kernel);
    if (t->direct) {
        char *ptr[MAX_OPERANDS];
        for (int k = 0; k < t->nop; k++) {
            ptr[k] = t->data[k] + start * t->step[k];
        }
        int status = run_elements(t, &c, ptr, t->step, end - start, start, problem);
        if (status != 0) {
            return status < 0 ? CHUNK_FAILED : CHUNK_ABANDONED;
        }
    }
    else {
        NpyIter_IterNextFunc *iternext = start_chunk(iter, start, end, problem);
        if (iternext == NULL) {
            return CHUNK_FAILED;
        }
        char **ptr = NpyIter_GetDataPtrArray(iter);
        npy_intp *stride = NpyIter_GetInnerStrideArray(iter);
        npy_intp *size = NpyIter_GetInnerLoopSizePtr(iter);
        npy_intp index = start;
        do {
            int status = run_elements(t, &c, ptr, stride, *size, index, problem);
            if (status != 0) {
                return status < 0 ? CHUNK_FAILED : CHUNK_ABANDONED;
            }
            index += *size;
        } while (iternext(iter));
    }
    /* the sums not kept stay zero: their lanes are not added up (32
       dependent compensated additions each, a fifth of a small call) */
    const compensated_sum zero = {0.0, 0.0};
    const int which = t->which_sums;
    t->sums[slot].weight = which & SUM_WEIGHT ? lane_total(&c.sums.weight) : zero;
    t->sums[slot].positive = which & SUM_POSITIVE ? lane_total(&c.sums.positive) : zero;
    t->sums[slot].loss = zero;
    t->sums[slot].loss_small = zero;
    if (which & SUM_LOSS) {
        t->sums[slot].loss = lane_total(&c.sums.loss);
        /* Without a loss above FOCAL_LARGE_LOSS the chunk's twin is its total
           times FOCAL_SMALL_SUM: a power of two, so the same bits as summing
           the scaled lanes, unless those fall below the normal range (a
           difference below 2^-1022 in a twin that is read only where the
           call's loss sum overflowed, at 2^960 and more).  Summed, its 32
           dependent compensated additions were a twentieth of a
           1,000-element call. */
        const compensated_sum total = t->sums[slot].loss;
        t->sums[slot].loss_small =
            c.small_sums ? lane_total(&c.sums.loss_small)
                         : (compensated_sum){total.sum * FOCAL_SMALL_SUM,
                                             total.compensation * FOCAL_SMALL_SUM};
    }
    return CHUNK_DONE;
}

/* adds a chunk's sums to the totals (run_chunks calls it in chunk order) */
static void
elementwise_merge(void *shared, int slot)
{
    elementwise_task *t = (elementwise_task *)shared;
    compensated_merge(&t->total.loss, t->sums[slot].loss);
    compensated_merge(&t->total.weight, t->sums[slot].weight);
    compensated_merge(&t->total.positive, t->sums[slot].positive);
    compensated_merge(&t->total.loss_small, t->sums[slot].loss_small);
}

/* raises the problem a chunk recorded; returns NULL */
static PyObject *
raise_elementwise_problem(const elementwise_task *t, const loop_problem *recorded)
{
    if (recorded->code == LOOP_BAD_HARD_TARGET) { /* the row's rule, in its name */
        PyObject *value = PyFloat_FromDouble(recorded->value);
        if (value != NULL) {
            PyErr_Format(PyExc_ValueError, "targets: %s needs targets in {0, 1}; found %R",
                         loss_row_of(t->kernel.loss)->title, value);
            Py_DECREF(value);
        }
        return NULL;
    }
    loop_problem problem = *recorded;
    problem.num_classes = t->num_classes;
    problem.ignore_index = t->ignore_index;
    problem.background = 1;
    problem.argument = "targets";
    return raise_loop_problem(&problem);
}

/* the call's result: the four sums (see sigmoid_focal_entry) */
static void
elementwise_sums(const elementwise_task *t, double sums[4])
{
    sums[0] = compensated_total(&t->total.loss);
    sums[1] = compensated_total(&t->total.weight);
    sums[2] = compensated_total(&t->total.positive);
    sums[3] = compensated_total(&t->total.loss_small);
}

/*
 * The keywords of _core.sigmoid_focal, in the order of sigmoid_keyword_names;
 * module.c keeps them interned in the module state (sigmoid_keywords_new),
 * so a call's keyword names are matched by pointer.  extra to extra4 follow
 * each other (row_arguments reads them together).
 */
enum {
    KW_LOGITS, KW_TARGETS, KW_LABELS, KW_ALPHA, KW_ALPHA_PER_CLASS, KW_GAMMA, KW_WEIGHTS, KW_IGNORE_INDEX,
    KW_LOSS_OUT, KW_GRAD_OUT, KW_HESS_OUT, KW_GRAD_DIVISOR, KW_DOUBLE_PRECISION, KW_STAR,
    KW_BETA, KW_SUMS_ONLY, KW_SUM_WEIGHTS, KW_SUM_POSITIVES, KW_CHECK_TARGETS, KW_LOSS_WEIGHT_SCALE,
    KW_GRAD_WEIGHT_SCALE, KW_WEIGHT_PRESCALE, KW_LOSS, KW_EXTRA, KW_EXTRA2, KW_EXTRA3,
    KW_EXTRA4, KW_COUNT
};

/* the largest gamma the float32 results' kernels take (see sigmoid_focal_entry) */
#define FOCAL_FLOAT32_GAMMA_MAX 0x1p16

static const char *const sigmoid_keyword_names[KW_COUNT] = {
    "logits", "targets", "labels", "alpha", "alpha_per_class", "gamma", "weights", "ignore_index",
    "loss_out", "grad_out", "hess_out", "grad_divisor", "double_precision", "star",
    "beta", "sums_only", "sum_weights", "sum_positives", "check_targets", "loss_weight_scale",
    "grad_weight_scale", "weight_prescale", "loss", "extra", "extra2", "extra3", "extra4"};

PyObject *
sigmoid_keywords_new(void)
{
    PyObject *names = PyTuple_New(KW_COUNT);
    for (int k = 0; names != NULL && k < KW_COUNT; k++) {
        PyObject *name = PyUnicode_InternFromString(sigmoid_keyword_names[k]);
        if (name == NULL) {
            Py_CLEAR(names);
            break;
        }
        PyTuple_SET_ITEM(names, k, name);
    }
    return names;
}

/* the names of the table's rows, by number: _core.elementwise_losses */
PyObject *
elementwise_loss_names(void)
{
#define ROW_NAME(NAME, NUMBER, TITLE, TARGETS, HESS) #NAME,
    static const char *const names[FOCAL_LOSS_COUNT] = {FOCAL_ELEMENTWISE_LOSSES(ROW_NAME)};
#undef ROW_NAME
    PyObject *tuple = PyTuple_New(FOCAL_LOSS_COUNT);
    for (int k = 0; tuple != NULL && k < FOCAL_LOSS_COUNT; k++) {
        PyObject *name = PyUnicode_FromString(names[k]);
        if (name == NULL) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, k, name);
    }
    return tuple;
}

/* values[k]: the argument of keyword k, or NULL where not given; logits and
   targets may come by position */
static int
match_keywords(PyObject *interned, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
               PyObject **values)
{
    for (int k = 0; k < KW_COUNT; k++) {
        values[k] = k < nargs ? args[k] : NULL;
    }
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "sigmoid_focal() takes 2 positional arguments (logits, targets) but %zd "
                     "were given", nargs);
        return -1;
    }
    Py_ssize_t given = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t j = 0; j < given; j++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, j);
        int found = -1;
        for (int k = 0; k < KW_COUNT && found < 0; k++) {
            found = name == PyTuple_GET_ITEM(interned, k) ? k : -1;
        }
        /* a name built at run time is equal without being the interned one */
        for (int k = 0; k < KW_COUNT && found < 0; k++) {
            found = PyUnicode_Compare(name, PyTuple_GET_ITEM(interned, k)) == 0 ? k : -1;
        }
        if (found < 0 || values[found] != NULL) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError,
                             found < 0 ? "sigmoid_focal() got an unexpected keyword argument %R"
                                       : "sigmoid_focal() got multiple values for argument %R",
                             name);
            }
            return -1;
        }
        values[found] = args[nargs + j];
    }
    if (values[KW_LOGITS] == NULL || values[KW_TARGETS] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        values[KW_LOGITS] == NULL ? "logits: missing (expected a NumPy array)"
                                                  : "targets: missing (expected a NumPy array)");
        return -1;
    }
    return 0;
}

/* a flag argument (any object's truth) into *out, which keeps its default
   when the argument is not given (NULL) */
static int
flag_argument(PyObject *value, int *out)
{
    int truth = value == NULL ? *out : PyObject_IsTrue(value);
    *out = truth;
    return truth < 0 ? -1 : 0;
}

/* a real argument into *out, which keeps its default when not given; the
   message names it */
static int
real_argument(PyObject *value, const char *name, double *out)
{
    *out = value == NULL ? *out : PyFloat_AsDouble(value);
    if (*out == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError, "%s: expected a real number, got %.200s", name,
                         Py_TYPE(value)->tp_name);
        }
        return -1;
    }
    return 0;
}

/* an integer argument into *out, which keeps its default when not given; the
   message names it */
static int
index_argument(PyObject *value, const char *name, Py_ssize_t *out)
{
    *out = value == NULL ? *out : PyNumber_AsSsize_t(value, PyExc_OverflowError);
    if (*out == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError, "%s: expected an integer, got %.200s", name,
                         Py_TYPE(value)->tp_name);
        }
        else if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Format(PyExc_ValueError, "%s: expected an integer that fits an index", name);
        }
        return -1;
    }
    return 0;
}

/* an array argument or None (NULL); the message names it */
static int
array_argument(PyObject *value, const char *name, PyArrayObject **out)
{
    *out = value == NULL || value == Py_None ? NULL : (PyArrayObject *)value;
    if (*out != NULL && !PyArray_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a NumPy array, got %.200s", name,
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    return 0;
}

/*
 * Whether the pass may read and write the arrays' memory directly, with no
 * iterator: every operand C-contiguous, aligned, in native byte order, of the
 * pass's own dtype and of the logits' shape (class indices, operand 1 when
 * `labels`: of the logits' shape without the class axis; one alpha per class,
 * operand `class_operand` if not -1: of the class axis' length), and no output
 * overlapping an input unless it is that very input (each element is read
 * before it is written).  NumPy's iterator handles everything else.
 */
static int
direct_access(PyArrayObject **ops, const int *types, int nop, int first_output, int labels,
              int class_operand)
{
    int ndim = PyArray_NDIM(ops[0]);
    for (int k = 0; k < nop; k++) {
        PyArrayObject *a = ops[k];
        int shaped = PyArray_SAMESHAPE(a, ops[0]);
        if (labels && k == 1) {
            shaped = ndim > 0 && PyArray_NDIM(a) == ndim - 1 &&
                     PyArray_CompareLists(PyArray_DIMS(a), PyArray_DIMS(ops[0]), ndim - 1);
        }
        if (k == class_operand) {
            shaped = ndim > 0 && PyArray_NDIM(a) == 1 &&
                     PyArray_DIM(a, 0) == PyArray_DIM(ops[0], ndim - 1);
        }
        if (PyArray_TYPE(a) != types[k] || !PyArray_IS_C_CONTIGUOUS(a) ||
            !PyArray_ISALIGNED(a) || !PyArray_ISNOTSWAPPED(a) || !shaped ||
            (k >= first_output && !PyArray_ISWRITEABLE(a))) {
            return 0;
        }
    }
    for (int out = first_output; out < nop; out++) {
        char *start = PyArray_BYTES(ops[out]);
        char *end = start + PyArray_NBYTES(ops[out]);
        for (int k = 0; k < nop; k++) {
            if (k == out) {
                continue;
            }
            char *other = PyArray_BYTES(ops[k]);
            char *other_end = other + PyArray_NBYTES(ops[k]);
            int same = other == start && other_end == end && k < first_output;
            if (!same && other < end && start < other_end) {
                return 0;
            }
        }
    }
    return 1;
}

/* One call of the pass: its arguments as read by sigmoid_focal_entry, or as
   the common call's short path (sigmoid_plain_entry) settles them. */
typedef struct {
    PyArrayObject *logits, *targets, *alpha_per_class, *weights; /* NULL: none */
    PyArrayObject *outputs[3]; /* the loss, gradient and second derivative, or NULL */
    int labels, double_precision, sums_only, sum_weights, sum_positives, check_targets;
    int has_alpha;             /* a scalar alpha, in `alpha` */
    double alpha, gamma, grad_divisor, beta, extra, extra2, extra3, extra4;
    double loss_weight_scale, grad_weight_scale, weight_prescale;
    Py_ssize_t ignore_index, loss;
} sigmoid_call;

/* the row's own parameters extra to extra4 (values[0..3], NULL where not
   given) into the call */
static int
row_arguments(PyObject *const *values, sigmoid_call *c)
{
    static const char *const names[4] = {"extra", "extra2", "extra3", "extra4"};
    double *fields[4] = {&c->extra, &c->extra2, &c->extra3, &c->extra4};
    for (int k = 0; k < 4; k++) {
        if (real_argument(values[k], names[k], fields[k]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* the defaults of sigmoid_focal's keywords */
static const sigmoid_call SIGMOID_DEFAULTS = {
    .sum_weights = 1, .sum_positives = 1, .check_targets = 1, .gamma = 2.0, .grad_divisor = 1.0,
    .loss_weight_scale = 1.0, .grad_weight_scale = 1.0, .weight_prescale = 1.0,
    .ignore_index = -1, .loss = LOSS_SIGMOID_FOCAL};

/* Runs the call: its four sums (see sigmoid_focal_entry) into sums[], 0; or
   -1 with an exception set. */
static int
sigmoid_run(module_state *state, const sigmoid_call *c, double sums[4])
{
    const loss_row *row = loss_row_of((int)c->loss);
    if (c->loss < 0 || c->loss >= FOCAL_LOSS_COUNT || row == NULL) {
        PyErr_Format(PyExc_ValueError, "loss: expected a row number from 0 to %d, got %zd",
                     FOCAL_LOSS_COUNT - 1, c->loss);
        return -1;
    }
    /* (Python checked these; a wrong one here would be a silent wrong answer) */
    if (!row->has_hess && c->outputs[2] != NULL) {
        PyErr_Format(PyExc_ValueError, "hess_out: %s has no second derivative here", row->title);
        return -1;
    }
    if (!(c->gamma >= 0.0 && c->gamma < HUGE_VAL)) {
        PyErr_SetString(PyExc_ValueError, "gamma: expected a finite number >= 0");
        return -1;
    }
    if (!(c->grad_divisor > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "grad_divisor: expected a number > 0");
        return -1;
    }
    if (!(c->loss_weight_scale > 0.0 && c->loss_weight_scale < HUGE_VAL) ||
        !(c->grad_weight_scale > 0.0 && c->grad_weight_scale < HUGE_VAL)) {
        PyErr_SetString(PyExc_ValueError,
                        c->loss_weight_scale > 0.0 && c->loss_weight_scale < HUGE_VAL
                            ? "grad_weight_scale: expected a finite number > 0"
                            : "loss_weight_scale: expected a finite number > 0");
        return -1;
    }
    if (!(c->weight_prescale >= 1.0 && c->weight_prescale < HUGE_VAL)) {
        PyErr_SetString(PyExc_ValueError, "weight_prescale: expected a finite number >= 1");
        return -1;
    }

    elementwise_task task;
    memset(&task, 0, sizeof task);
    task.sums_only = c->sums_only;
    /* dense targets enter a pass without the kernel only to be checked or
       summed: a weighted mean's first pass, which only sums the weights,
       reads the weights alone (a third of its bytes for float32 inputs) */
    task.read_targets = !c->sums_only || c->check_targets || c->labels || c->sum_positives;
    /* the sums Python needs; those it knows beforehand (counts) are skipped */
    task.which_sums = (c->sums_only ? 0 : SUM_LOSS) | (c->sum_weights ? SUM_WEIGHT : 0) |
                      (c->sum_positives ? SUM_POSITIVE : 0);
    task.precise = c->double_precision;
    task.simd_level = state->simd_level;
    task.params.focal.gamma = c->gamma;
    task.params.focal.beta = c->beta;
    task.params.focal.log_gamma = dd_from(0.0);
    task.params.focal.extra = c->extra;
    task.params.focal.extra2 = c->extra2;
    task.params.focal.extra3 = c->extra3;
    task.params.focal.extra4 = c->extra4;
    row->prepare(&task.params.focal);
    task.hard_targets = row->targets == TARGETS_HARD;
    task.kernel.loss = (int)c->loss;
    /* float32 results are computed in double, which carries 1 - p_t of a soft
       target to about 2^-53: gamma multiplies that error in (1 - p_t)^gamma,
       2^-37 at most (a ten-thousandth of a float32 ULP) up to gamma 2^16.
       Above (a 1e-30 target at x = 40 and gamma 1e20 gave 30, not 0), they are
       computed by the double-double kernels of float64 results and rounded. */
    task.kernel.precise = c->double_precision != 0 || c->gamma > FOCAL_FLOAT32_GAMMA_MAX;
    task.kernel.form = row->form(&task.params.focal);
    task.kernel.outputs = c->outputs[2] != NULL   ? FOCAL_OUT_HESS
                          : c->outputs[1] != NULL ? FOCAL_OUT_GRAD
                                               : FOCAL_OUT_LOSS;
    task.params.grad_divisor = c->grad_divisor;
    task.params.grad_scale = 1.0 / c->grad_divisor;
    task.params.loss_weight_scale = c->loss_weight_scale;
    task.params.grad_weight_scale = c->grad_weight_scale;
    task.weight_prescale = c->weights != NULL ? c->weight_prescale : 1.0;
    task.params.weight_scale_up = c->loss_weight_scale > 1.0 ? c->loss_weight_scale : 1.0;
    task.params.loss_scale_down = c->loss_weight_scale / task.params.weight_scale_up;
    task.params.grad_scale_ratio = c->grad_weight_scale / task.params.weight_scale_up;
    /* the gradient's normaliser folded into its weight, unless the factor
       leaves the normal range, or could carry a weight beyond it (weights of
       1e308 over a normalizer of 1e-300: the weight times the factor is inf,
       and inf times a gradient that underflowed to 0 NaN, where w g / D is
       finite); then divided, see block_params.  None can: without weights
       (each <= 1), with a factor <= 1, or with the gradient's weights scaled
       by the Python layer (grad_weight_scale != 1: the largest then below
       1/2 over a divisor at least 1/4 of it, or tiny weights over a divisor
       scaled alike, see _reduce.Plan). */
    task.params.grad_factor = task.params.grad_scale_ratio * task.params.grad_scale;
    task.params.grad_mode = isfinite(task.params.grad_scale) &&
                                    task.params.grad_factor >= 0x1p-1000 &&
                                    task.params.grad_factor <= 0x1p1000 &&
                                    (c->weights == NULL || task.params.grad_factor <= 1.0 ||
                                     c->grad_weight_scale != 1.0)
                                ? FOCAL_GRAD_FOLDED
                                : FOCAL_GRAD_DIVIDED;
    task.params.has_alpha = c->has_alpha || c->alpha_per_class != NULL;
    task.alpha = c->alpha;
    task.labels = c->labels;
    task.weights_change =
        c->labels || ((task.which_sums & SUM_WEIGHT) && c->loss_weight_scale != 1.0);
    task.ignore_index = (npy_intp)c->ignore_index;
    task.i_alpha = task.i_weights = -1;
    task.i_loss = task.i_grad = task.i_hess = -1;

    int ndim = PyArray_NDIM(c->logits);
    if (c->labels && ndim == 0) {
        PyErr_SetString(PyExc_ValueError, "targets: class indices need logits with a class axis");
        return -1;
    }
    task.num_classes = ndim > 0 ? PyArray_DIM(c->logits, ndim - 1) : 1;

    int real_type = c->double_precision ? NPY_DOUBLE : NPY_FLOAT;
    int target_type;
    if (c->labels) {
        target_type = NPY_INTP;
    }
    else if (c->double_precision || PyArray_TYPE(c->targets) == NPY_DOUBLE) {
        /* a float64 target is validated at its own precision */
        target_type = NPY_DOUBLE;
    }
    else {
        target_type = NPY_FLOAT;
    }
    task.logits_double = c->double_precision;
    task.targets_double = target_type == NPY_DOUBLE;

    PyArrayObject *ops[MAX_OPERANDS] = {NULL};
    int types[MAX_OPERANDS];
    npy_uint32 op_flags[MAX_OPERANDS];
    int *op_axes[MAX_OPERANDS] = {NULL};
    int label_axes[NPY_MAXDIMS], class_axes[NPY_MAXDIMS];
    int nop = 0;
    const npy_uint32 read = NPY_ITER_READONLY | NPY_ITER_ALIGNED | NPY_ITER_NBO |
                            NPY_ITER_OVERLAP_ASSUME_ELEMENTWISE;
    const npy_uint32 write = NPY_ITER_WRITEONLY | NPY_ITER_ALIGNED | NPY_ITER_NBO |
                             NPY_ITER_OVERLAP_ASSUME_ELEMENTWISE | NPY_ITER_NO_BROADCAST;

    /* class-axis operands are mapped onto the last axis only */
    for (int k = 0; k < ndim; k++) {
        label_axes[k] = k < ndim - 1 ? k : -1;
        class_axes[k] = k < ndim - 1 ? -1 : 0;
    }

    ops[nop] = c->logits;
    types[nop] = real_type;
    op_flags[nop++] = read;

    ops[nop] = c->targets;
    types[nop] = target_type;
    op_axes[nop] = c->labels ? label_axes : NULL;
    op_flags[nop++] = read;

    if (c->alpha_per_class != NULL) {
        /* (read along the class axis: its length is a matter of memory safety) */
        if (PyArray_NDIM(c->alpha_per_class) != 1 || ndim == 0 ||
            PyArray_DIM(c->alpha_per_class, 0) != task.num_classes) {
            PyErr_SetString(PyExc_ValueError, "alpha_per_class: expected one value per class");
            return -1;
        }
        task.i_alpha = nop;
        ops[nop] = c->alpha_per_class;
        types[nop] = NPY_DOUBLE;
        op_axes[nop] = class_axes;
        op_flags[nop++] = read;
    }
    if (c->weights != NULL) {
        task.i_weights = nop;
        ops[nop] = c->weights;
        types[nop] = NPY_DOUBLE;
        op_flags[nop++] = read;
    }
    int first_output = nop;
    int *output_index[3] = {&task.i_loss, &task.i_grad, &task.i_hess};
    for (int k = 0; k < 3; k++) {
        if (c->outputs[k] != NULL) {
            *output_index[k] = nop;
            ops[nop] = c->outputs[k];
            types[nop] = real_type;
            op_flags[nop++] = write;
        }
    }
    task.nop = nop;
    task.direct = direct_access(ops, types, nop, first_output, c->labels, task.i_alpha);
    for (int k = 0; task.direct && k < nop; k++) {
        task.data[k] = PyArray_BYTES(ops[k]);
        /* (class indices, one per row, and alphas, one per class: gather
           finds them from the element's number) */
        task.step[k] = (c->labels && k == 1) || k == task.i_alpha ? 0 : PyArray_ITEMSIZE(ops[k]);
    }

    npy_intp size = PyArray_SIZE(c->logits);
    if (task.direct && size <= DIRECT_WITH_GIL) {
        /* a small call on plain arrays: one chunk, here, with no iterator and
           no thread (releasing the GIL would cost more than it frees) */
        chunk_sums chunk;
        loop_problem problem;
        memset(&problem, 0, sizeof problem);
        task.sums = &chunk;
        task.problems = &problem;
        if (elementwise_chunk(&task, NULL, NULL, 0, 0, size) != CHUNK_DONE) {
            raise_elementwise_problem(&task, &problem);
            return -1;
        }
        elementwise_merge(&task, 0);
        elementwise_sums(&task, sums);
        return 0;
    }

    PyArray_Descr *dtypes[MAX_OPERANDS] = {NULL};
    int result = -1;
    NpyIter *iter = NULL;
    for (int k = 0; k < nop; k++) {
        dtypes[k] = PyArray_DescrFromType(types[k]);
    }
    /* RANGED lets each chunk be iterated on its own (by its own thread) */
    iterator_recipe recipe = {
        nop, ops,
        NPY_ITER_EXTERNAL_LOOP | NPY_ITER_BUFFERED | NPY_ITER_GROWINNER | NPY_ITER_RANGED |
            NPY_ITER_ZEROSIZE_OK | NPY_ITER_COPY_IF_OVERLAP | NPY_ITER_DELAY_BUFALLOC,
        NPY_CORDER, NPY_UNSAFE_CASTING, op_flags, dtypes, ndim > 0 ? ndim : -1,
        ndim > 0 ? op_axes : NULL};
    iter = make_iterator(&recipe);
    if (iter == NULL) {
        goto finish;
    }
    /* a fixed number of slots, whatever the size */
    task.sums = (chunk_sums *)PyMem_RawCalloc(CHUNK_SLOTS, sizeof(chunk_sums));
    task.problems = (loop_problem *)PyMem_RawCalloc(CHUNK_SLOTS, sizeof(loop_problem));
    if (task.sums == NULL || task.problems == NULL) {
        PyErr_NoMemory();
        goto finish;
    }
    int failed = 0;
    int status = run_chunks(&recipe, iter, ELEMENT_CHUNK, state->num_threads, elementwise_chunk,
                            elementwise_merge, &task, &failed);
    if (status > 0) {
        raise_elementwise_problem(&task, &task.problems[failed]);
    }
    else if (status == 0) {
        elementwise_sums(&task, sums);
        result = 0;
    }

finish:
    if (iter != NULL && NpyIter_Deallocate(iter) != NPY_SUCCEED) {
        result = -1;
    }
    PyMem_RawFree(task.sums);
    PyMem_RawFree(task.problems);
    for (int k = 0; k < MAX_OPERANDS; k++) {
        Py_XDECREF(dtypes[k]);
    }
    return result;
}


/*
 * _core.sigmoid_focal(logits, targets, *, labels, alpha, alpha_per_class,
 *                     gamma, weights, ignore_index, loss_out, grad_out,
 *                     hess_out, grad_divisor, double_precision, star, beta,
 *                     sums_only, sum_weights, sum_positives, check_targets,
 *                     loss_weight_scale, grad_weight_scale, weight_prescale,
 *                     loss, extra, extra2, extra3, extra4)
 *     -> (sum of weighted losses, sum of weights, sum of targets,
 *         sum of weighted losses times FOCAL_SMALL_SUM)
 *
 * loss is a row number of the table (losses.h; _core.elementwise_losses
 * names them), the sigmoid focal loss by default; star=True is FL*'s; extra
 * to extra4 are the row's own parameters (focal_params.extra to .extra4),
 * checked by Python.  The
 * middle two sums are 0 unless sum_weights / sum_positives ask for them; the
 * last stays finite where the first overflows.
 *
 * sums_only runs no kernel: it checks the targets and keeps the sums asked
 * for; with check_targets=False it leaves dense targets unread where no sum
 * needs them (a weighted mean's first pass: the pass after it checks them).
 *
 * The sums run over the elements not ignored.  The outputs, when given,
 * receive the per-element weighted loss, gradient (divided by grad_divisor)
 * and second derivative.
 */
PyObject *
sigmoid_focal_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    module_state *state = get_module_state(module);
    PyObject *given[KW_COUNT];
    if (match_keywords(state->sigmoid_keywords, args, nargs, kwnames, given) < 0) {
        return NULL;
    }
    sigmoid_call c = SIGMOID_DEFAULTS;
    int star = 0;
    if (array_argument(given[KW_LOGITS], "logits", &c.logits) < 0 ||
        array_argument(given[KW_TARGETS], "targets", &c.targets) < 0 ||
        array_argument(given[KW_ALPHA_PER_CLASS], "alpha_per_class", &c.alpha_per_class) < 0 ||
        array_argument(given[KW_WEIGHTS], "weights", &c.weights) < 0 ||
        array_argument(given[KW_LOSS_OUT], "loss_out", &c.outputs[0]) < 0 ||
        array_argument(given[KW_GRAD_OUT], "grad_out", &c.outputs[1]) < 0 ||
        array_argument(given[KW_HESS_OUT], "hess_out", &c.outputs[2]) < 0 ||
        flag_argument(given[KW_LABELS], &c.labels) < 0 ||
        flag_argument(given[KW_DOUBLE_PRECISION], &c.double_precision) < 0 ||
        flag_argument(given[KW_STAR], &star) < 0 ||
        flag_argument(given[KW_SUMS_ONLY], &c.sums_only) < 0 ||
        flag_argument(given[KW_SUM_WEIGHTS], &c.sum_weights) < 0 ||
        flag_argument(given[KW_SUM_POSITIVES], &c.sum_positives) < 0 ||
        flag_argument(given[KW_CHECK_TARGETS], &c.check_targets) < 0 ||
        real_argument(given[KW_GAMMA], "gamma", &c.gamma) < 0 ||
        real_argument(given[KW_GRAD_DIVISOR], "grad_divisor", &c.grad_divisor) < 0 ||
        real_argument(given[KW_BETA], "beta", &c.beta) < 0 ||
        row_arguments(given + KW_EXTRA, &c) < 0 ||
        real_argument(given[KW_LOSS_WEIGHT_SCALE], "loss_weight_scale", &c.loss_weight_scale) < 0 ||
        real_argument(given[KW_GRAD_WEIGHT_SCALE], "grad_weight_scale", &c.grad_weight_scale) < 0 ||
        real_argument(given[KW_WEIGHT_PRESCALE], "weight_prescale", &c.weight_prescale) < 0) {
        return NULL;
    }
    if (c.logits == NULL || c.targets == NULL) { /* None */
        PyErr_SetString(PyExc_TypeError, c.logits == NULL ? "logits: expected a NumPy array"
                                                          : "targets: expected a NumPy array");
        return NULL;
    }
    if (index_argument(given[KW_IGNORE_INDEX], "ignore_index", &c.ignore_index) < 0 ||
        index_argument(given[KW_LOSS], "loss", &c.loss) < 0) {
        return NULL;
    }
    c.loss = star ? LOSS_FL_STAR : c.loss;
    PyObject *alpha = given[KW_ALPHA];
    c.has_alpha = alpha != NULL && alpha != Py_None;
    if (c.has_alpha && real_argument(alpha, "alpha", &c.alpha) < 0) {
        return NULL;
    }
    double sums[4];
    if (sigmoid_run(state, &c, sums) < 0) {
        return NULL;
    }
    return Py_BuildValue("(dddd)", sums[0], sums[1], sums[2], sums[3]);
}

/* the arguments of sigmoid_plain: those of focal._sigmoid._entry, in its order
   (extra to extra4 together, as row_arguments reads them) */
enum {
    PLAIN_MODE, PLAIN_LOGITS, PLAIN_TARGETS, PLAIN_ALPHA, PLAIN_GAMMA, PLAIN_REDUCTION,
    PLAIN_WEIGHTS, PLAIN_IGNORE_INDEX, PLAIN_NORMALIZER, PLAIN_OUT, PLAIN_BETA, PLAIN_STAR,
    PLAIN_LOSS, PLAIN_EXTRA, PLAIN_EXTRA2, PLAIN_EXTRA3, PLAIN_EXTRA4, PLAIN_RAW_SUM, PLAIN_COUNT
};

/* the reduction, if `value` is the exact str "none", "sum", "mean" or
   "sum_over_positives"; else -1 */
int
plain_reduction(PyObject *value)
{
    static const char *const names[] = {"none", "sum", "mean", "sum_over_positives"};
    if (!PyUnicode_CheckExact(value)) {
        return -1;
    }
    for (int k = 0; k < 4; k++) {
        if (PyUnicode_CompareWithASCIIString(value, names[k]) == 0) {
            return k;
        }
    }
    return -1;
}

/* whether `value` is a plain number, into *number: an exact float, or a
   NumPy float64 or float32 scalar (each of which focal._args.real_scalar
   reads as the same double), or with `integers` an exact int of at most
   2^53 in size (which a double holds exactly; a bool is no exact int) */
int
plain_number(PyObject *value, int integers, double *number)
{
    if (PyFloat_CheckExact(value)) {
        *number = PyFloat_AS_DOUBLE(value);
        return 1;
    }
    if (Py_IS_TYPE(value, &PyDoubleArrType_Type)) {
        *number = PyArrayScalar_VAL(value, Double);
        return 1;
    }
    if (Py_IS_TYPE(value, &PyFloatArrType_Type)) {
        *number = (double)PyArrayScalar_VAL(value, Float);
        return 1;
    }
    if (integers && PyLong_CheckExact(value)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        *number = (double)n;
        return !overflow && n >= -(1LL << 53) && n <= (1LL << 53);
    }
    return 0;
}

/* whether the short path takes these alpha, gamma and normalizer as the full
   path reads them, into *c: alpha None or a plain float in [0, 1]; gamma a
   plain number (integers too) in [0, inf); the normalizer None, or with the
   reduction "mean" a plain number (integers too) in [1, inf), which is the
   mean's denominator as it is (_reduce.Plan shifts a smaller one) */
int
plain_parameters(PyObject *alpha, PyObject *gamma, PyObject *normalizer, int reduction,
                 plain_numbers *c)
{
    c->has_alpha = alpha != Py_None;
    c->alpha = 0.0;
    c->normalizer = 0.0;
    return (!c->has_alpha || (plain_number(alpha, 0, &c->alpha) && c->alpha >= 0.0 &&
                              c->alpha <= 1.0)) &&
           plain_number(gamma, 1, &c->gamma) && c->gamma >= 0.0 && c->gamma < HUGE_VAL &&
           (normalizer == Py_None ||
            (reduction == REDUCE_MEAN && plain_number(normalizer, 1, &c->normalizer) &&
             c->normalizer >= 1.0 && c->normalizer < HUGE_VAL));
}

/* One alpha per class that the short path takes as the full path reads it
   (focal._args.class_alpha): an exact ndarray of num_classes float32 or
   float64 values in native byte order, or an exact list of num_classes exact
   floats and ints (np.asarray makes of it a float64 or int64 array of the
   same values; here a new float64 array), each in [0, 1] (NaN is not).  A
   new reference into *array, and 1; 0 for any other alpha, the full path's,
   which checks it and says what is wrong; -1 with an exception set.  More
   classes than PLAIN_ALPHA_CLASSES are the full path's too: this loop holds
   the GIL and asks for no signal (an alpha of 8e9 classes kept Ctrl-C
   waiting 3.9 s, one of 2^59 for ever), where the full path reads it in
   pieces that do. */
enum { PLAIN_ALPHA_CLASSES = 1 << 16 };

int
plain_class_alpha(PyObject *alpha, npy_intp num_classes, PyArrayObject **array)
{
    *array = NULL;
    if (num_classes < 1 || num_classes > PLAIN_ALPHA_CLASSES) {
        return 0;
    }
    if (PyList_CheckExact(alpha)) {
        if (PyList_GET_SIZE(alpha) != num_classes) {
            return 0;
        }
        *array = (PyArrayObject *)PyArray_SimpleNew(1, &num_classes, NPY_DOUBLE);
        if (*array == NULL) {
            return -1;
        }
        double *values = (double *)PyArray_DATA(*array);
        for (npy_intp k = 0; k < num_classes; k++) {
            if (!plain_number(PyList_GET_ITEM(alpha, k), 1, &values[k]) ||
                !(values[k] >= 0.0 && values[k] <= 1.0)) {
                Py_CLEAR(*array);
                return 0;
            }
        }
        return 1;
    }
    if (!PyArray_CheckExact(alpha)) {
        return 0;
    }
    PyArrayObject *a = (PyArrayObject *)alpha;
    int type = PyArray_TYPE(a);
    if (PyArray_NDIM(a) != 1 || PyArray_DIM(a, 0) != num_classes ||
        (type != NPY_FLOAT && type != NPY_DOUBLE) || !PyArray_ISNOTSWAPPED(a) ||
        !PyArray_ISALIGNED(a)) {
        return 0;
    }
    const char *value = PyArray_BYTES(a);
    for (npy_intp k = 0; k < num_classes; k++, value += PyArray_STRIDE(a, 0)) {
        double v = type == NPY_FLOAT ? (double)*(const float *)value : *(const double *)value;
        if (!(v >= 0.0 && v <= 1.0)) {
            return 0;
        }
    }
    Py_INCREF(a);
    *array = a;
    return 1;
}

/* the bytes [*low, *high) spanned by an array of any strides (none for an
   empty one: *low == *high) */
static void
memory_extent(PyArrayObject *a, char **low, char **high)
{
    *low = *high = PyArray_BYTES(a);
    if (PyArray_SIZE(a) == 0) {
        return;
    }
    for (int d = 0; d < PyArray_NDIM(a); d++) {
        npy_intp span = (PyArray_DIM(a, d) - 1) * PyArray_STRIDE(a, d);
        *(span < 0 ? low : high) += span;
    }
    *high += PyArray_ITEMSIZE(a);
}

/* whether memory the pass writes, `out` (contiguous), may take the short
   path beside the inputs it reads: its bytes meet theirs nowhere, and they
   are NumPy's own allocation (the base chain ends in an array owning its
   data), which no other mapping of a file can reach at other addresses
   (focal._overlap's file_aliases finds no alias there either).  Anything
   else (out=logits in place, an overlap, a mapped file) is the full path's. */
static int
plain_out_apart(PyArrayObject *out, PyArrayObject *const *inputs, int count)
{
    PyArrayObject *owner = out;
    while (PyArray_BASE(owner) != NULL) {
        if (!PyArray_Check(PyArray_BASE(owner))) {
            return 0;
        }
        owner = (PyArrayObject *)PyArray_BASE(owner);
    }
    if (!PyArray_CHKFLAGS(owner, NPY_ARRAY_OWNDATA)) {
        return 0;
    }
    char *start = PyArray_BYTES(out), *end = start + PyArray_NBYTES(out);
    for (int k = 0; k < count; k++) {
        char *low, *high;
        memory_extent(inputs[k], &low, &high);
        if (low < high && start < end && low < end && start < high) {
            return 0;
        }
    }
    return 1;
}

/* A short path's arguments, `count` of them, the first its mode
   (want_loss, want_grad, want_hess, out_receives): the wanted results into
   wanted[3]; 0, or -1 with an exception set (`name` the function's). */
int
plain_mode(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t count,
           int wanted[3])
{
    if (nargs != count) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments", name, count);
        return -1;
    }
    PyObject *mode = args[0];
    if (!PyTuple_CheckExact(mode) || PyTuple_GET_SIZE(mode) != 4) {
        PyErr_SetString(PyExc_TypeError, "mode: expected a tuple of 4 items");
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        if ((wanted[k] = PyObject_IsTrue(PyTuple_GET_ITEM(mode, k))) < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * The result a short path's out= receives, as _pass.run writes it there: 0
 * the elementwise loss (out_receives "loss", reduction "none"), 1 the
 * gradient; -1 without out= (None).  An out= the short path takes is an
 * exact ndarray of that result's shape (like[slot]'s) and dtype `type`, in
 * native byte order, writeable, whose elements are distinct (C- or
 * Fortran-contiguous) and apart from the inputs (plain_out_apart); any other
 * is the full path's, which checks it and says what is wrong: -2.
 */
int
plain_out_slot(PyObject *mode, PyObject *out, const int wanted[3], int elementwise_loss,
               int type, PyArrayObject *const like[2], PyArrayObject *const *inputs,
               int count)
{
    if (out == Py_None) {
        return -1;
    }
    PyObject *receives = PyTuple_GET_ITEM(mode, 3);
    if (!PyArray_CheckExact(out) || !PyUnicode_CheckExact(receives)) {
        return -2;
    }
    int slot = PyUnicode_CompareWithASCIIString(receives, "grad") == 0 && wanted[1] ? 1
               : PyUnicode_CompareWithASCIIString(receives, "loss") == 0 && elementwise_loss
                   ? 0
                   : -2;
    PyArrayObject *array = (PyArrayObject *)out;
    if (slot < 0 || PyArray_TYPE(array) != type || !PyArray_ISNOTSWAPPED(array) ||
        !PyArray_ISWRITEABLE(array) || !PyArray_SAMESHAPE(array, like[slot]) ||
        !(PyArray_IS_C_CONTIGUOUS(array) || PyArray_IS_F_CONTIGUOUS(array)) ||
        !plain_out_apart(array, inputs, count)) {
        return -2;
    }
    return slot;
}

/* The short path's results before its pass: out= in its slot (out_slot, or
   -1), a new array of like[k]'s shape and dtype `type` for each other result
   wanted (wanted[0]: the elementwise loss), NULL elsewhere.  0, or -1 with an
   exception set and results[] cleared. */
int
plain_allocate(PyObject *results[3], const int wanted[3], int out_slot, PyObject *out,
               PyArrayObject *const like[3], int type)
{
    for (int k = 0; k < 3; k++) {
        results[k] = NULL;
    }
    for (int k = 0; k < 3; k++) {
        if (k == out_slot) {
            Py_INCREF(out);
            results[k] = out;
        }
        else if (wanted[k]) {
            results[k] = PyArray_SimpleNew(PyArray_NDIM(like[k]), PyArray_DIMS(like[k]), type);
            if (results[k] == NULL) {
                plain_release(results);
                return -1;
            }
        }
    }
    return 0;
}

void
plain_release(PyObject *results[3])
{
    for (int k = 0; k < 3; k++) {
        Py_CLEAR(results[k]);
    }
}

/* the reduced loss sum / denominator as a NumPy scalar of the results' dtype,
   where that quotient is the correctly rounded one _reduce.reduced_value
   would give (its first cases: a normal quotient that the dtype holds, or a
   zero sum over a count); NULL with no exception set otherwise (0 / 0 would
   be a NaN with its sign bit set on x86, where the full path gives +NaN) */
static PyObject *
plain_scalar(double sum, double denominator, int double_precision)
{
    if (!(denominator > 0.0)) { /* an empty mean: NaN, as the full path makes it */
        return NULL;
    }
    double value = sum / denominator;
    if (!((value >= DBL_MIN && value <= (double_precision ? DBL_MAX : FLT_MAX)) || sum == 0.0)) {
        return NULL;
    }
    PyObject *scalar;
    if (double_precision) {
        scalar = PyArrayScalar_New(Double);
        if (scalar != NULL) {
            PyArrayScalar_ASSIGN(scalar, Double, value);
        }
    }
    else {
        scalar = PyArrayScalar_New(Float);
        if (scalar != NULL) {
            PyArrayScalar_ASSIGN(scalar, Float, (npy_float)value);
        }
    }
    return scalar;
}

/*
 * The short path's answer after its pass, as _pass.run returns it: (loss,
 * gradient, second derivative) from results[] (taken over), with the loss
 * the reduced sum / denominator where `reduced`, None where not wanted; or
 * NotImplemented where that quotient is beyond plain_scalar's case (the full
 * path then makes the call again); NULL with an exception set.
 */
PyObject *
plain_answer(PyObject *results[3], int reduced, double sum, double denominator,
             int double_precision)
{
    if (reduced) {
        results[0] = plain_scalar(sum, denominator, double_precision);
        if (results[0] == NULL) {
            plain_release(results);
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NOTIMPLEMENTED;
        }
    }
    PyObject *answer = PyTuple_New(3);
    if (answer == NULL) {
        plain_release(results);
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        if (results[k] == NULL) {
            Py_INCREF(Py_None);
            results[k] = Py_None;
        }
        PyTuple_SET_ITEM(answer, k, results[k]); /* (takes the reference) */
        results[k] = NULL;
    }
    return answer;
}

static PyObject *sigmoid_plain_call(PyObject *module, PyObject *const *args, sigmoid_call *c,
                                    const int wanted[3], int reduction,
                                    const plain_numbers *numbers);

/*
 * _core.sigmoid_plain(mode, logits, targets, alpha, gamma, reduction, weights,
 *                     ignore_index, normalizer, out, beta, star, loss, extra,
 *                     extra2, extra3, extra4, raw_sum)
 *     -> (loss, gradient, second derivative), or NotImplemented
 *
 * The common call of an elementwise loss, whole, for the focal loss's public
 * functions (focal._spec, LossSpec's plain) and focal._sigmoid._entry, which
 * hand it the entry's arguments: plain float32 or float64 logits and dense
 * targets (bool, integer or float of at most 8 bytes) of the same shape or
 * class indices (integers, not uint64) of the logits' shape without the class
 * axis, plain alpha (or one per class: plain_class_alpha), gamma and
 * normalizer (plain_parameters), the reduction "none", "sum", "mean" or
 * (class indices) "sum_over_positives", out= None or a plain contiguous array
 * apart from the inputs (plain_out_slot), and every other argument its
 * default. Each of these is a check the full path makes, so the two agree on
 * every call; anything else (a subclass, weights, ...) answers
 * NotImplemented, and so does a mean or sum beyond plain_scalar's case, after
 * the pass: the full path then makes the call again (writing the same values
 * into an out= the inputs do not overlap). mode is (want_loss, want_grad,
 * want_hess, out_receives), from _spec.KINDS; the results are those of
 * _pass.run, None where not wanted; extra to extra4 are the row's own
 * parameters, checked by its caller.
 */
PyObject *
sigmoid_plain_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int wanted[3]; /* the loss, the gradient, the second derivative */
    if (plain_mode("sigmoid_plain", args, nargs, PLAIN_COUNT, wanted) < 0) {
        return NULL;
    }
    PyObject *logits = args[PLAIN_LOGITS], *targets = args[PLAIN_TARGETS];
    PyObject *alpha = args[PLAIN_ALPHA], *ignore_index = args[PLAIN_IGNORE_INDEX];
    sigmoid_call c = SIGMOID_DEFAULTS;
    int reduction = plain_reduction(args[PLAIN_REDUCTION]);
    int overflow = 0;
    plain_numbers numbers;
    /* one alpha per class: read below, once the classes are known */
    int class_alpha = PyArray_CheckExact(alpha) || PyList_CheckExact(alpha);
    if (reduction < 0 ||
        !plain_parameters(class_alpha ? Py_None : alpha, args[PLAIN_GAMMA],
                          args[PLAIN_NORMALIZER], reduction, &numbers) ||
        !PyLong_CheckExact(ignore_index) ||
        PyLong_AsLongLongAndOverflow(ignore_index, &overflow) != -1 || overflow ||
        args[PLAIN_WEIGHTS] != Py_None ||
        args[PLAIN_STAR] != Py_False ||
        args[PLAIN_RAW_SUM] != Py_False || !PyArray_CheckExact(logits) ||
        !PyArray_CheckExact(targets)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    c.logits = (PyArrayObject *)logits;
    c.targets = (PyArrayObject *)targets;
    int type = PyArray_DESCR(c.logits)->type_num;
    PyArray_Descr *target_dtype = PyArray_DESCR(c.targets);
    char kind = target_dtype->kind;
    int ndim = PyArray_NDIM(c.logits);
    /* class indices: integers of the logits' shape without the class axis,
       which holds at least two classes (of one, the full path warns: index
       0 is then the positive, 1 background, the reverse of 0/1 labels; no
       64-bit unsigned ones, which the full path checks against intp's
       range); dense targets: of the logits' shape, and a sum over
       positives, whose count the pass would have to take first, is the
       full path's */
    c.labels = PyArray_NDIM(c.targets) == ndim - 1;
    int plain_targets =
        c.labels ? (kind == 'i' || (kind == 'u' && PyDataType_ELSIZE(target_dtype) < 8)) &&
                       PyArray_CompareLists(PyArray_DIMS(c.logits), PyArray_DIMS(c.targets),
                                            ndim - 1) &&
                       PyArray_DIM(c.logits, ndim - 1) > 1
                 : PyArray_SAMESHAPE(c.logits, c.targets) &&
                       (kind == 'b' || kind == 'i' || kind == 'u' || kind == 'f') &&
                       PyDataType_ELSIZE(target_dtype) <= 8 &&
                       reduction != REDUCE_SUM_OVER_POSITIVES;
    if ((type != NPY_FLOAT && type != NPY_DOUBLE) || !plain_targets) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (class_alpha) {
        int taken = ndim > 0 ? plain_class_alpha(alpha, PyArray_DIM(c.logits, ndim - 1),
                                                 &c.alpha_per_class)
                             : 0;
        if (taken <= 0) {
            return taken < 0 ? NULL : Py_NewRef(Py_NotImplemented);
        }
    }
    PyObject *answer = sigmoid_plain_call(module, args, &c, wanted, reduction, &numbers);
    Py_XDECREF(c.alpha_per_class);
    return answer;
}

/* sigmoid_plain's call from its settled arguments c (the logits and
   targets, one alpha per class or NULL), once its out= is found apart from
   them: its results, NotImplemented, or NULL with an exception set */
static PyObject *
sigmoid_plain_call(PyObject *module, PyObject *const *args, sigmoid_call *c, const int wanted[3],
                   int reduction, const plain_numbers *numbers)
{
    int type = PyArray_TYPE(c->logits), ndim = PyArray_NDIM(c->logits);
    int elementwise_loss = wanted[0] && reduction == REDUCE_NONE;
    /* every result has the logits' shape */
    PyArrayObject *like[3] = {c->logits, c->logits, c->logits};
    PyArrayObject *inputs[3] = {c->logits, c->targets, c->alpha_per_class};
    int out_slot = plain_out_slot(args[PLAIN_MODE], args[PLAIN_OUT], wanted, elementwise_loss,
                                  type, like, inputs, c->alpha_per_class != NULL ? 3 : 2);
    if (out_slot < -1) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (index_argument(args[PLAIN_LOSS], "loss", &c->loss) < 0 ||
        row_arguments(args + PLAIN_EXTRA, c) < 0) {
        return NULL;
    }
    c->has_alpha = numbers->has_alpha;
    c->alpha = numbers->alpha;
    c->gamma = numbers->gamma;
    c->double_precision = type == NPY_DOUBLE;
    c->sum_weights = c->sum_positives = 0; /* (known: no weights; not asked) */
    /* results of the logits' shape, float32 from float32: never larger than
       an array that exists */
    PyObject *results[3];
    int allocated[3] = {elementwise_loss, wanted[1], wanted[2]};
    if (plain_allocate(results, allocated, out_slot, args[PLAIN_OUT], like, type) < 0) {
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        c->outputs[k] = (PyArrayObject *)results[k];
    }
    /* the denominator, known before the pass (one pass), as _reduce.Plan
       makes it: the normalizer given, or a mean's count of elements not ignored (the size, less
       C for each ignored row of class indices), a sum over positives'
       count of positive class indices (at least 1); counted after the
       results exist, so that a call whose results cannot be allocated (huge
       broadcast arguments) fails at once, as the full path does */
    double denominator = numbers->normalizer > 0.0     ? numbers->normalizer
                         : reduction == REDUCE_MEAN ? (double)PyArray_SIZE(c->logits)
                                                    : 1.0;
    if (c->labels && numbers->normalizer == 0.0 &&
        (reduction == REDUCE_MEAN || reduction == REDUCE_SUM_OVER_POSITIVES)) {
        npy_intp num_classes = PyArray_DIM(c->logits, ndim - 1), ignored, positive;
        if (count_labels(c->targets, num_classes, c->ignore_index, &ignored, &positive) < 0) {
            plain_release(results);
            return NULL;
        }
        denominator = reduction == REDUCE_MEAN
                          ? (double)(PyArray_SIZE(c->logits) - ignored * num_classes)
                          : (positive > 1 ? (double)positive : 1.0);
    }
    c->grad_divisor = denominator > 0.0 ? denominator : 1.0;
    double sums[4];
    if (sigmoid_run(get_module_state(module), c, sums) < 0) {
        plain_release(results);
        return NULL;
    }
    return plain_answer(results, wanted[0] && !elementwise_loss, sums[0], denominator,
                        c->double_precision);
}

/*
 * _core.count_labels(labels, num_classes, ignore_index) -> (ignored, positive)
 *
 * A pass over the class indices only (a fraction 1/C of the logits), so the
 * gradient of a mean can be scaled inside the main pass.  Out-of-range values
 * are not judged here: the main pass rejects them.
 */
PyObject *
count_labels_entry(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyArrayObject *labels;
    Py_ssize_t num_classes, ignore_index;
    if (!PyArg_ParseTuple(args, "O!nn", &PyArray_Type, &labels, &num_classes, &ignore_index)) {
        return NULL;
    }
    npy_intp ignored, positive;
    if (count_labels(labels, num_classes, ignore_index, &ignored, &positive) < 0) {
        return NULL;
    }
    return Py_BuildValue("(nn)", (Py_ssize_t)ignored, (Py_ssize_t)positive);
}

/* count_labels_entry's counts into *ignored and *positive: 0, or -1 with an
   exception set */
int
count_labels(PyArrayObject *labels, npy_intp num_classes, npy_intp ignore_index,
             npy_intp *ignored_count, npy_intp *positive_count)
{
    npy_intp ignored = 0, positive = 0;
    *ignored_count = *positive_count = 0;
    if (PyArray_SIZE(labels) == 0) {
        return 0;
    }
    PyArray_Descr *dtype = PyArray_DescrFromType(NPY_INTP);
    NpyIter *iter = NpyIter_New(labels,
                                NPY_ITER_READONLY | NPY_ITER_EXTERNAL_LOOP |
                                    NPY_ITER_BUFFERED | NPY_ITER_GROWINNER |
                                    NPY_ITER_ALIGNED | NPY_ITER_NBO,
                                NPY_KEEPORDER, NPY_UNSAFE_CASTING, dtype);
    Py_DECREF(dtype);
    if (iter == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory(); /* as in make_iterator (parallel.c) */
        }
        return -1;
    }
    NpyIter_IterNextFunc *iternext = NpyIter_GetIterNext(iter, NULL);
    if (iternext == NULL) {
        NpyIter_Deallocate(iter);
        return -1;
    }
    char **ptr = NpyIter_GetDataPtrArray(iter);
    npy_intp *stride = NpyIter_GetInnerStrideArray(iter);
    npy_intp *size = NpyIter_GetInnerLoopSizePtr(iter);
    /* a broadcast view can hold 2**62 labels in one inner loop: counted in
       pieces, with a look at signals in between, so Ctrl-C stops it */
    signal_poll poll;
    signal_poll_init(&poll);
    PyThreadState *saved = PyEval_SaveThread();
    int interrupted = 0;
    do {
        const char *data = ptr[0];
        npy_intp n = *size, step = stride[0];
        for (npy_intp done = 0; done < n && !interrupted;) {
            npy_intp m = n - done < ELEMENT_CHUNK ? n - done : ELEMENT_CHUNK;
            for (npy_intp i = 0; i < m; i++) {
                npy_intp label = *(const npy_intp *)(data + (done + i) * step);
                ignored += label == ignore_index;
                positive += label >= 0 && label < num_classes;
            }
            done += m;
            interrupted = signal_poll_check(&poll, &saved) < 0;
        }
    } while (!interrupted && iternext(iter));
    PyEval_RestoreThread(saved);
    if (NpyIter_Deallocate(iter) != NPY_SUCCEED || PyErr_Occurred()) {
        return -1;
    }
    *ignored_count = ignored;
    *positive_count = positive;
    return 0;
}

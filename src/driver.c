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

enum { MAX_OPERANDS = 8, ELEMENT_CHUNK = 1 << 16 };

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
    int which_sums;      /* the running sums to keep (SUM_LOSS | ...) */
    int precise;         /* float64 results: the double-double kernels */
    int simd_level;
    double alpha;        /* the scalar alpha when there is no per-class operand */
    int labels;
    int weights_change;  /* the block's weights change from block to block with no
                            weights operand (class indices, the weight scale) */
    npy_intp num_classes;
    npy_intp ignore_index;
    int logits_double, targets_double;
    /* operand positions in the iterator, -1 when absent */
    int i_alpha, i_weights, i_loss, i_grad, i_hess;
    /* CHUNK_SLOTS slots, one per chunk in flight (parallel.h) */
    chunk_sums *sums;
    loop_problem *problems;
    chunk_sums total;    /* the chunks merged so far, in order */
    /* class-index targets with C <= FOCAL_BLOCK: j % C for j < FOCAL_BLOCK + C, so
       the classes of a block are a pointer into it */
    npy_intp class_pattern[2 * FOCAL_BLOCK];
} elementwise_task;

/*
 * Fills the block with elements [offset, offset + n) of the current inner
 * loop, the first of which is element number `first_index` of the iteration,
 * and validates them (the loaders answer "any bad?" as they convert; only
 * then is the first bad value looked for).  The block's alpha, and its
 * weights when no operand or class index changes them, are filled once per
 * chunk: *filled says they are.
 */
static int
gather(const elementwise_task *t, const block_io *io, char **ptr, const npy_intp *stride,
       npy_intp offset, npy_intp first_index, npy_intp n, element_block *b, int *soft,
       int *filled, loop_problem *problem)
{
#define AT(INDEX) (ptr[INDEX] + offset * stride[INDEX])
    io->load(AT(0), stride[0], n, t->logits_double, b->x);
    if (t->i_weights >= 0) {
        if (io->load_weights(AT(t->i_weights), stride[t->i_weights], n, b->weight)) {
            for (npy_intp i = 0; i < n; i++) {
                if (!(b->weight[i] >= 0.0 && b->weight[i] < HUGE_VAL)) { /* NaN fails too */
                    return report(problem, LOOP_BAD_WEIGHT, b->weight[i], 0);
                }
            }
        }
    }
    else if (!*filled || t->weights_change) {
        for (npy_intp i = 0; i < FOCAL_BLOCK; i++) {
            b->weight[i] = 1.0;
        }
    }
    if (!*filled && t->i_alpha < 0) {
        for (npy_intp i = 0; i < FOCAL_BLOCK; i++) {
            b->alpha[i] = t->alpha;
        }
    }
    *filled = 1;
    if (t->labels) {
        /* the iteration runs in C order of the logits, so element number g
           belongs to class g % C: counted here, rather than read from an
           operand of C class numbers (which would be as long as the class
           axis) */
        const npy_intp classes = t->num_classes;
        const npy_intp first = first_index % classes;
        npy_intp computed[FOCAL_BLOCK];
        const npy_intp *class_ids = computed;
        if (classes <= FOCAL_BLOCK) {
            class_ids = t->class_pattern + first; /* j % C for j = first, first + 1, ... */
        }
        else {
            /* n <= FOCAL_BLOCK < C: the block meets at most one end of a row;
               two counting loops (they vectorise, a compare per element would not) */
            npy_intp head = classes - first < n ? classes - first : n;
            for (npy_intp i = 0; i < head; i++) {
                computed[i] = first + i;
            }
            for (npy_intp i = head; i < n; i++) {
                computed[i] = i - head;
            }
        }
        const char *labels = AT(1);
        if (io->labels_to_targets(labels, stride[1], (const char *)class_ids,
                                  (npy_intp)sizeof(npy_intp), n, t->ignore_index,
                                  t->num_classes, b->y, b->weight)) {
            for (npy_intp i = 0; i < n; i++) {
                npy_intp label = *(const npy_intp *)(labels + i * stride[1]);
                if (label != t->ignore_index && (label < 0 || label > t->num_classes)) {
                    return report(problem, LOOP_BAD_LABEL, 0.0, label);
                }
            }
        }
    }
    else {
        int check = io->load_targets(AT(1), stride[1], n, t->targets_double, b->y);
        *soft = (check >> 1) & 1;
        if ((check & 1) || (t->hard_targets && *soft)) {
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
    if (t->i_alpha >= 0) {
        io->load(AT(t->i_alpha), stride[t->i_alpha], n, 1, b->alpha);
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

/* One chunk: iteration indices [start, end), on this thread's iterator. */
static int
elementwise_chunk(void *shared, chunk_thread *self, NpyIter *iter, int slot, npy_intp start,
              npy_intp end)
{
    elementwise_task *t = (elementwise_task *)shared;
    loop_problem *problem = &t->problems[slot];
    NpyIter_IterNextFunc *iternext = start_chunk(iter, start, end, problem);
    if (iternext == NULL) {
        return CHUNK_FAILED;
    }
    char **ptr = NpyIter_GetDataPtrArray(iter);
    npy_intp *stride = NpyIter_GetInnerStrideArray(iter);
    npy_intp *size = NpyIter_GetInnerLoopSizePtr(iter);

    element_block b;
    block_sums sums;
    memset(&sums, 0, sizeof sums);
    int small_sums = 0; /* SUM_LOSS_SMALL once a large loss was seen */
    int filled = 0;
    const block_io *io = choose_block_io(t->simd_level);
    block_kernel kernel = choose_block_kernel(t->simd_level, &t->kernel);
    npy_intp index = start;
    do {
        npy_intp n = *size;
        for (npy_intp offset = 0; offset < n; offset += FOCAL_BLOCK) {
            npy_intp m = n - offset < FOCAL_BLOCK ? n - offset : FOCAL_BLOCK;
            int soft = 0;
            if (gather(t, io, ptr, stride, offset, index + offset, m, &b, &soft, &filled,
                       problem)) {
                return CHUNK_FAILED;
            }
            if (!t->sums_only) {
                kernel(&t->params, &b, m, soft);
                scatter(t, io, ptr, stride, offset, m, &b);
            }
            if ((t->which_sums & SUM_LOSS) && !small_sums) {
                int large = 0;
                for (npy_intp i = 0; i < m; i++) {
                    large |= !(b.loss[i] <= FOCAL_LARGE_LOSS);
                }
                if (large) { /* from here on, keep the scaled sum too */
                    small_sums = SUM_LOSS_SMALL;
                    sums.loss_small = lane_scaled(&sums.loss, FOCAL_SMALL_SUM);
                }
            }
            if ((t->which_sums & SUM_WEIGHT) && t->params.loss_weight_scale != 1.0) {
                /* the summed weights are scaled as the loss's are */
                for (npy_intp i = 0; i < m; i++) {
                    b.weight[i] *= t->params.loss_weight_scale;
                }
            }
            io->accumulate(&sums, &b, m, index + offset, t->which_sums | small_sums);
        }
        index += n;
    } while (iternext(iter));
    t->sums[slot].loss = lane_total(&sums.loss);
    t->sums[slot].weight = lane_total(&sums.weight);
    t->sums[slot].positive = lane_total(&sums.positive);
    if (!small_sums) {
        sums.loss_small = lane_scaled(&sums.loss, FOCAL_SMALL_SUM);
    }
    t->sums[slot].loss_small = lane_total(&sums.loss_small);
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

/*
 * _core.sigmoid_focal(logits, targets, *, labels, alpha, alpha_per_class,
 *                     gamma, weights, ignore_index, loss_out, grad_out,
 *                     hess_out, grad_divisor, double_precision, star, beta,
 *                     sums_only, sum_weights, sum_positives, loss, extra)
 *     -> (sum of weighted losses, sum of weights, sum of targets,
 *         sum of weighted losses times FOCAL_SMALL_SUM)
 *
 * The middle two sums are 0 unless sum_weights / sum_positives ask for them;
 * the last stays finite where the first overflows.
 *
 * The sums run over the elements not ignored.  The outputs, when given,
 * receive the per-element weighted loss, gradient (divided by grad_divisor)
 * and second derivative.
 *
 * loss: the row of losses.h by number (FOCAL_LOSS_COUNT rows), or -1 for the
 * sigmoid focal loss (FL* with star); extra: the row's own parameter
 * (focal_params.extra), checked by the Python layer.
 */
PyObject *
sigmoid_focal_entry(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"logits", "targets", "labels", "alpha", "alpha_per_class",
                               "gamma", "weights", "ignore_index", "loss_out",
                               "grad_out", "hess_out", "grad_divisor", "double_precision",
                               "star", "beta", "sums_only", "sum_weights", "sum_positives",
                               "loss_weight_scale", "grad_weight_scale", "loss", "extra",
                               NULL};
    PyArrayObject *logits, *targets;
    int labels = 0, double_precision = 0, star = 0, sums_only = 0;
    int sum_weights = 1, sum_positives = 1;
    PyObject *alpha_obj = Py_None, *alpha_per_class_obj = Py_None, *weights_obj = Py_None;
    PyObject *loss_obj = Py_None, *grad_obj = Py_None, *hess_obj = Py_None;
    double gamma = 2.0, grad_divisor = 1.0, beta = 0.0;
    double loss_weight_scale = 1.0, grad_weight_scale = 1.0;
    Py_ssize_t ignore_index = -1;
    int loss_number = -1;
    double extra = 0.0;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "O!O!|$pOOdOnOOOdppdpppddid", keywords, &PyArray_Type, &logits,
            &PyArray_Type, &targets, &labels, &alpha_obj, &alpha_per_class_obj, &gamma,
            &weights_obj, &ignore_index, &loss_obj, &grad_obj, &hess_obj, &grad_divisor,
            &double_precision, &star, &beta, &sums_only, &sum_weights, &sum_positives,
            &loss_weight_scale, &grad_weight_scale, &loss_number, &extra)) {
        return NULL;
    }
    if (!(loss_weight_scale > 0.0 && loss_weight_scale < HUGE_VAL) ||
        !(grad_weight_scale > 0.0 && grad_weight_scale < HUGE_VAL)) {
        PyErr_SetString(PyExc_ValueError, "weight scales: expected finite numbers > 0");
        return NULL;
    }
    if (loss_number < -1 || loss_number >= FOCAL_LOSS_COUNT) {
        PyErr_SetString(PyExc_ValueError, "loss: expected a row of the table of losses");
        return NULL;
    }
    const int loss = loss_number >= 0 ? loss_number : star ? LOSS_FL_STAR : LOSS_SIGMOID_FOCAL;
    const loss_row *row = loss_row_of(loss);
    if (!row->has_hess && hess_obj != Py_None) {
        PyErr_Format(PyExc_ValueError, "hess_out: %s has no second derivative here", row->title);
        return NULL;
    }
    if (!(gamma >= 0.0 && gamma < HUGE_VAL)) {
        PyErr_SetString(PyExc_ValueError, "gamma: expected a finite number >= 0");
        return NULL;
    }
    if (!(grad_divisor > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "grad_divisor: expected a number > 0");
        return NULL;
    }

    module_state *state = get_module_state(module);
    elementwise_task task;
    memset(&task, 0, sizeof task);
    task.sums_only = sums_only;
    /* the sums Python needs; those it knows beforehand (counts) are skipped */
    task.which_sums = (sums_only ? 0 : SUM_LOSS) | (sum_weights ? SUM_WEIGHT : 0) |
                      (sum_positives ? SUM_POSITIVE : 0);
    task.precise = double_precision;
    task.simd_level = state->simd_level;
    task.params.focal.gamma = gamma;
    task.params.focal.beta = beta;
    task.params.focal.log_gamma = dd_from(0.0);
    task.params.focal.extra = extra;
    row->prepare(&task.params.focal);
    task.hard_targets = row->targets == TARGETS_HARD;
    task.kernel.loss = loss;
    task.kernel.precise = double_precision != 0;
    task.kernel.form = row->form(&task.params.focal);
    task.kernel.outputs = hess_obj != Py_None   ? FOCAL_OUT_HESS
                          : grad_obj != Py_None ? FOCAL_OUT_GRAD
                                                : FOCAL_OUT_LOSS;
    task.params.grad_divisor = grad_divisor;
    task.params.grad_scale = 1.0 / grad_divisor;
    task.params.loss_weight_scale = loss_weight_scale;
    task.params.grad_weight_scale = grad_weight_scale;
    task.params.weight_scale_up = loss_weight_scale > 1.0 ? loss_weight_scale : 1.0;
    task.params.loss_scale_down = loss_weight_scale / task.params.weight_scale_up;
    task.params.grad_scale_ratio = grad_weight_scale / task.params.weight_scale_up;
    /* the gradient's normaliser folded into its weight, unless a factor
       leaves the normal range (then divided, see block_params) */
    task.params.grad_factor = task.params.grad_scale_ratio * task.params.grad_scale;
    task.params.grad_mode = isfinite(task.params.grad_scale) &&
                                    task.params.grad_factor >= 0x1p-1000 &&
                                    task.params.grad_factor <= 0x1p1000
                                ? FOCAL_GRAD_FOLDED
                                : FOCAL_GRAD_DIVIDED;
    task.params.has_alpha = alpha_obj != Py_None || alpha_per_class_obj != Py_None;
    task.labels = labels;
    task.weights_change =
        labels || ((task.which_sums & SUM_WEIGHT) && loss_weight_scale != 1.0);
    task.ignore_index = (npy_intp)ignore_index;
    task.i_alpha = task.i_weights = -1;
    task.i_loss = task.i_grad = task.i_hess = -1;
    if (alpha_obj != Py_None) {
        task.alpha = PyFloat_AsDouble(alpha_obj);
        if (task.alpha == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }

    int ndim = PyArray_NDIM(logits);
    if (labels && ndim == 0) {
        PyErr_SetString(PyExc_ValueError, "targets: class indices need logits with a class axis");
        return NULL;
    }
    task.num_classes = ndim > 0 ? PyArray_DIM(logits, ndim - 1) : 1;
    if (labels && task.num_classes > 0 && task.num_classes <= FOCAL_BLOCK) {
        for (npy_intp j = 0; j < FOCAL_BLOCK + task.num_classes; j++) {
            task.class_pattern[j] = j % task.num_classes;
        }
    }

    int real_type = double_precision ? NPY_DOUBLE : NPY_FLOAT;
    int target_type;
    if (labels) {
        target_type = NPY_INTP;
    }
    else if (double_precision || PyArray_TYPE(targets) == NPY_DOUBLE) {
        /* a float64 target is validated at its own precision */
        target_type = NPY_DOUBLE;
    }
    else {
        target_type = NPY_FLOAT;
    }
    task.logits_double = double_precision;
    task.targets_double = target_type == NPY_DOUBLE;

    PyArrayObject *ops[MAX_OPERANDS] = {NULL};
    PyArray_Descr *dtypes[MAX_OPERANDS] = {NULL};
    npy_uint32 op_flags[MAX_OPERANDS];
    int *op_axes[MAX_OPERANDS] = {NULL};
    int label_axes[NPY_MAXDIMS], class_axes[NPY_MAXDIMS];
    PyObject *result = NULL;
    NpyIter *iter = NULL;
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

    ops[nop] = logits;
    dtypes[nop] = PyArray_DescrFromType(real_type);
    op_flags[nop++] = read;

    ops[nop] = targets;
    dtypes[nop] = PyArray_DescrFromType(target_type);
    op_axes[nop] = labels ? label_axes : NULL;
    op_flags[nop++] = read;

    if (alpha_per_class_obj != Py_None) {
        if (!PyArray_Check(alpha_per_class_obj) ||
            PyArray_NDIM((PyArrayObject *)alpha_per_class_obj) != 1 || ndim == 0 ||
            PyArray_DIM((PyArrayObject *)alpha_per_class_obj, 0) != task.num_classes) {
            PyErr_SetString(PyExc_ValueError, "alpha: expected one value per class");
            goto finish;
        }
        task.i_alpha = nop;
        ops[nop] = (PyArrayObject *)alpha_per_class_obj;
        dtypes[nop] = PyArray_DescrFromType(NPY_DOUBLE);
        op_axes[nop] = class_axes;
        op_flags[nop++] = read;
    }
    if (weights_obj != Py_None) {
        if (!PyArray_Check(weights_obj)) {
            PyErr_SetString(PyExc_TypeError, "weights: expected an array");
            goto finish;
        }
        task.i_weights = nop;
        ops[nop] = (PyArrayObject *)weights_obj;
        dtypes[nop] = PyArray_DescrFromType(NPY_DOUBLE);
        op_flags[nop++] = read;
    }
    PyObject *outputs[3] = {loss_obj, grad_obj, hess_obj};
    int *output_index[3] = {&task.i_loss, &task.i_grad, &task.i_hess};
    for (int k = 0; k < 3; k++) {
        if (outputs[k] == Py_None) {
            continue;
        }
        if (!PyArray_Check(outputs[k])) {
            PyErr_SetString(PyExc_TypeError, "out: expected an array");
            goto finish;
        }
        *output_index[k] = nop;
        ops[nop] = (PyArrayObject *)outputs[k];
        dtypes[nop] = PyArray_DescrFromType(real_type);
        op_flags[nop++] = write;
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
    task.sums = (chunk_sums *)PyMem_Calloc(CHUNK_SLOTS, sizeof(chunk_sums));
    task.problems = (loop_problem *)PyMem_Calloc(CHUNK_SLOTS, sizeof(loop_problem));
    if (task.sums == NULL || task.problems == NULL) {
        PyErr_NoMemory();
        goto finish;
    }
    int failed = 0;
    int status = run_chunks(&recipe, iter, ELEMENT_CHUNK, state->num_threads, elementwise_chunk,
                            elementwise_merge, &task, &failed);
    if (status < 0) {
        goto finish;
    }
    if (status > 0) {
        loop_problem problem = task.problems[failed];
        problem.num_classes = task.num_classes;
        problem.ignore_index = task.ignore_index;
        problem.background = 1;
        problem.argument = "targets";
        raise_loop_problem(&problem);
        goto finish;
    }
    result = Py_BuildValue("(dddd)", compensated_total(&task.total.loss),
                           compensated_total(&task.total.weight),
                           compensated_total(&task.total.positive),
                           compensated_total(&task.total.loss_small));

finish:
    if (iter != NULL && NpyIter_Deallocate(iter) != NPY_SUCCEED) {
        Py_CLEAR(result);
    }
    PyMem_Free(task.sums);
    PyMem_Free(task.problems);
    for (int k = 0; k < MAX_OPERANDS; k++) {
        Py_XDECREF(dtypes[k]);
    }
    return result;
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
    npy_intp ignored = 0, positive = 0;
    if (PyArray_SIZE(labels) == 0) {
        return Py_BuildValue("(nn)", (Py_ssize_t)0, (Py_ssize_t)0);
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
        return NULL;
    }
    NpyIter_IterNextFunc *iternext = NpyIter_GetIterNext(iter, NULL);
    if (iternext == NULL) {
        NpyIter_Deallocate(iter);
        return NULL;
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
        return NULL;
    }
    return Py_BuildValue("(nn)", (Py_ssize_t)ignored, (Py_ssize_t)positive);
}

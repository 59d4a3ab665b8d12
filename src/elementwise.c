/*
 * elementwise.c: the NumPy glue of the elementwise kernels (sigmoid focal
 * loss and FL*, sigmoid_focal.h).
 *
 * One NpyIter per call walks every operand in C order of the logits (so the
 * reductions add terms in the same order whatever the memory layout), with
 * buffering only where a cast, a byte swap or a misalignment needs it.  The
 * element loops below read the iterator's 1-D strided chunks, validate the
 * targets as they go, and accumulate the reductions; problems are recorded
 * and raised once the GIL is held again.
 *
 * Argument checking, defaults and the choice of dtypes live in the Python
 * package; this file trusts what it is handed to be of the documented form
 * but never reads out of bounds whatever the values.
 */
#include "glue.h"
#include "sigmoid_focal.h"

enum { MAX_OPERANDS = 8 };

/* Everything one call needs; lives on the C stack of that call. */
typedef struct {
    int star;              /* FL* instead of the focal loss */
    int sums_only;         /* validate and sum weights and targets; no kernel */
    double gamma;
    double beta;           /* FL* only */
    double alpha;          /* the scalar alpha when has_alpha && i_alpha < 0 */
    int has_alpha;
    double grad_divisor;  /* the gradient is divided by it (a mean's normaliser) */
    npy_intp num_classes;
    npy_intp ignore_index;
    /* operand positions in the iterator, -1 when absent */
    int i_class, i_alpha, i_weights, i_loss, i_grad, i_hess;
    /* results */
    compensated_sum loss_sum, weight_sum, positive_sum;
    loop_problem problem;  /* the first one met */
} sigmoid_task;

#define OPERAND(TYPE, INDEX) (*(const TYPE *)(ptr[INDEX] + i * stride[INDEX]))
#define STORE(TYPE, INDEX, VALUE) (*(TYPE *)(ptr[INDEX] + i * stride[INDEX]) = (TYPE)(VALUE))

/*
 * The part of an element's work that does not depend on the storage types:
 * weight and alpha_t, the kernel, the reductions.  Returns the weighted
 * values to store, or a loop_error.
 */
/* weights are checked on every element, ignored or not */
static inline int
weight_is_valid(sigmoid_task *t, double weight)
{
    if (weight >= 0.0 && weight < HUGE_VAL) { /* NaN fails */
        return 1;
    }
    t->problem.code = LOOP_BAD_WEIGHT;
    t->problem.value = weight;
    return 0;
}

FOCAL_INLINE int
sigmoid_element(sigmoid_task *t, double x, double y, double alpha, double weight,
                double *loss, double *grad, double *hess, int precise)
{
    if (!weight_is_valid(t, weight)) {
        return LOOP_BAD_WEIGHT;
    }
    if (t->star && y != 0.0 && y != 1.0) {
        t->problem.code = LOOP_BAD_HARD_TARGET;
        t->problem.value = y;
        return LOOP_BAD_HARD_TARGET;
    }
    if (t->sums_only) {
        *loss = *grad = *hess = 0.0;
        compensated_add(&t->weight_sum, weight);
        compensated_add(&t->positive_sum, y);
        return LOOP_OK;
    }
    focal_values v;
    if (t->star) {
        v = star_focal(x, y, t->gamma, t->beta, precise);
    }
    else {
        v = sigmoid_focal(x, y, t->gamma, t->i_grad >= 0, t->i_hess >= 0, precise);
    }
    /* alpha_t = alpha y + (1 - alpha)(1 - y), with 1 - alpha held exactly */
    dd scale = dd_from(weight);
    if (t->has_alpha) {
        dd alpha_t = dd_add(dd_from(alpha * y),
                            dd_scale(two_sum(1.0, -alpha, precise), 1.0 - y, precise), precise);
        scale = dd_scale(alpha_t, weight, precise);
    }
    /*
     * A zero weight masks the element whatever its logit.  A zero alpha_t
     * gives 0 too, the limit even of the infinite losses at x = +-inf, but a
     * NaN logit stays NaN.
     */
    int zero = weight == 0.0 || (scale.hi == 0.0 && x == x);
    *loss = zero ? 0.0 : dd_mul_rounded(v.loss, scale, precise);
    *grad = zero ? 0.0 : dd_divide_double(dd_mul(v.grad, scale, precise), t->grad_divisor, precise);
    *hess = zero ? 0.0 : v.hess * scale.hi;
    compensated_add(&t->loss_sum, *loss);
    compensated_add(&t->weight_sum, weight);
    compensated_add(&t->positive_sum, y);
    return LOOP_OK;
}

/*
 * One element loop per (storage type of the logits and results, type of the
 * targets, target form).  The body is written once; the compiler removes the
 * branch on LABELS and on absent operands stays cheap and predictable.
 */
#define DEFINE_SIGMOID_LOOP(NAME, REAL, TARGET, LABELS)                             \
    /* float64 results need the double-double kernel, float32 ones do not */     \
    enum { NAME##_precise = sizeof(REAL) == sizeof(double) };                       \
    static int NAME(sigmoid_task *t, char **ptr, const npy_intp *stride, npy_intp n)  \
    {                                                                               \
        for (npy_intp i = 0; i < n; i++) {                                          \
            double x = (double)OPERAND(REAL, 0);                                     \
            double weight = t->i_weights >= 0 ? OPERAND(double, t->i_weights) : 1.0; \
            double y;                                                               \
            if (LABELS) {                                                           \
                npy_intp label = (npy_intp)OPERAND(TARGET, 1);                       \
                if (label == t->ignore_index) {                                     \
                    /* an ignored row contributes nothing and gets zero gradient */ \
                    if (!weight_is_valid(t, weight)) {                              \
                        return -1;                                                  \
                    }                                                               \
                    if (t->i_loss >= 0) STORE(REAL, t->i_loss, 0.0);                \
                    if (t->i_grad >= 0) STORE(REAL, t->i_grad, 0.0);                \
                    if (t->i_hess >= 0) STORE(REAL, t->i_hess, 0.0);                \
                    continue;                                                       \
                }                                                                   \
                if (label < 0 || label > t->num_classes) {                          \
                    t->problem.code = LOOP_BAD_LABEL;                               \
                    t->problem.label = label;                                       \
                    return -1;                                                      \
                }                                                                   \
                y = (label == OPERAND(npy_intp, t->i_class)) ? 1.0 : 0.0;            \
            }                                                                       \
            else {                                                                  \
                y = (double)OPERAND(TARGET, 1);                                      \
                if (!(y >= 0.0 && y <= 1.0)) { /* NaN fails too */                  \
                    t->problem.code = LOOP_BAD_TARGET;                              \
                    t->problem.value = y;                                           \
                    return -1;                                                      \
                }                                                                   \
            }                                                                       \
            double alpha = t->i_alpha >= 0 ? OPERAND(double, t->i_alpha) : t->alpha; \
            double loss, grad, hess;                                                \
            if (sigmoid_element(t, x, y, alpha, weight, &loss, &grad, &hess,        \
                                NAME##_precise)) {                                  \
                return -1;                                                          \
            }                                                                       \
            if (t->i_loss >= 0) STORE(REAL, t->i_loss, loss);                       \
            if (t->i_grad >= 0) STORE(REAL, t->i_grad, grad);                       \
            if (t->i_hess >= 0) STORE(REAL, t->i_hess, hess);                       \
        }                                                                           \
        return 0;                                                                   \
    }

DEFINE_SIGMOID_LOOP(sigmoid_float_float, float, float, 0)
DEFINE_SIGMOID_LOOP(sigmoid_float_double, float, double, 0)
DEFINE_SIGMOID_LOOP(sigmoid_float_labels, float, npy_intp, 1)
DEFINE_SIGMOID_LOOP(sigmoid_double_double, double, double, 0)
DEFINE_SIGMOID_LOOP(sigmoid_double_labels, double, npy_intp, 1)

typedef int (*sigmoid_loop)(sigmoid_task *, char **, const npy_intp *, npy_intp);

/*
 * Runs `loop` over the iterator.  The GIL is released unless a cast needs
 * Python (it never does for the dtypes the Python layer lets through).
 */
static int
run_iterator(NpyIter *iter, sigmoid_loop loop, sigmoid_task *task)
{
    if (NpyIter_GetIterSize(iter) == 0) {
        return 0;
    }
    NpyIter_IterNextFunc *iternext = NpyIter_GetIterNext(iter, NULL);
    if (iternext == NULL) {
        return -1;
    }
    char **ptr = NpyIter_GetDataPtrArray(iter);
    npy_intp *stride = NpyIter_GetInnerStrideArray(iter);
    npy_intp *size = NpyIter_GetInnerLoopSizePtr(iter);
    int status = 0;

    NPY_BEGIN_THREADS_DEF;
    if (!NpyIter_IterationNeedsAPI(iter)) {
        NPY_BEGIN_THREADS;
    }
    do {
        status = loop(task, ptr, stride, *size);
    } while (status == 0 && iternext(iter));
    NPY_END_THREADS;

    if (PyErr_Occurred()) {
        return -1;
    }
    return status;
}

static PyObject *
optional_array(PyObject *obj)
{
    return obj == Py_None ? NULL : obj;
}

/*
 * _core.sigmoid_focal(logits, targets, *, labels, alpha, alpha_per_class,
 *                     gamma, weights, ignore_index, loss_out, grad_out,
 *                     hess_out, grad_divisor, double_precision)
 *     -> (sum of weighted losses, sum of weights, sum of targets)
 *
 * The sums run over the elements not ignored.  The outputs, when given,
 * receive the per-element weighted loss, gradient (divided by grad_divisor)
 * and second derivative.
 */
PyObject *
sigmoid_focal_entry(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"logits", "targets", "labels", "alpha", "alpha_per_class",
                               "gamma", "weights", "ignore_index", "loss_out",
                               "grad_out", "hess_out", "grad_divisor", "double_precision",
                               "star", "beta", "sums_only", NULL};
    PyArrayObject *logits, *targets;
    int labels = 0, double_precision = 0, star = 0, sums_only = 0;
    PyObject *alpha_obj = Py_None, *alpha_per_class_obj = Py_None, *weights_obj = Py_None;
    PyObject *loss_obj = Py_None, *grad_obj = Py_None, *hess_obj = Py_None;
    double gamma = 2.0, grad_divisor = 1.0, beta = 0.0;
    Py_ssize_t ignore_index = -1;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "O!O!|$pOOdOnOOOdppdp", keywords, &PyArray_Type, &logits,
            &PyArray_Type, &targets, &labels, &alpha_obj, &alpha_per_class_obj, &gamma,
            &weights_obj, &ignore_index, &loss_obj, &grad_obj, &hess_obj, &grad_divisor,
            &double_precision, &star, &beta, &sums_only)) {
        return NULL;
    }
    if (star && (gamma <= 0.0 || hess_obj != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "FL* needs gamma > 0 and has no second derivative here");
        return NULL;
    }

    sigmoid_task task = {0};
    task.star = star;
    task.sums_only = sums_only;
    task.beta = beta;
    task.gamma = gamma;
    task.grad_divisor = grad_divisor;
    task.ignore_index = (npy_intp)ignore_index;
    task.i_class = task.i_alpha = task.i_weights = -1;
    task.i_loss = task.i_grad = task.i_hess = -1;
    task.has_alpha = alpha_obj != Py_None || alpha_per_class_obj != Py_None;
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
    task.problem.num_classes = task.num_classes;
    task.problem.ignore_index = task.ignore_index;
    task.problem.background = 1;

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

    PyArrayObject *ops[MAX_OPERANDS] = {NULL};
    PyArray_Descr *dtypes[MAX_OPERANDS] = {NULL};
    npy_uint32 op_flags[MAX_OPERANDS];
    int *op_axes[MAX_OPERANDS] = {NULL};
    int label_axes[NPY_MAXDIMS], class_axes[NPY_MAXDIMS];
    PyArrayObject *class_ids = NULL;
    PyObject *result = NULL;
    NpyIter *iter = NULL;
    int nop = 0;
    const npy_uint32 read = NPY_ITER_READONLY | NPY_ITER_ALIGNED | NPY_ITER_NBO |
                            NPY_ITER_OVERLAP_ASSUME_ELEMENTWISE;
    const npy_uint32 write = NPY_ITER_WRITEONLY | NPY_ITER_ALIGNED | NPY_ITER_NBO |
                             NPY_ITER_OVERLAP_ASSUME_ELEMENTWISE;

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

    if (labels) {
        /* the class number of each element comes from a small broadcast arange */
        class_ids = (PyArrayObject *)PyArray_Arange(0.0, (double)task.num_classes, 1.0, NPY_INTP);
        if (class_ids == NULL) {
            goto finish;
        }
        task.i_class = nop;
        ops[nop] = class_ids;
        dtypes[nop] = PyArray_DescrFromType(NPY_INTP);
        op_axes[nop] = class_axes;
        op_flags[nop++] = read;
    }
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
    if (optional_array(weights_obj)) {
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
        if (!optional_array(outputs[k])) {
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

    /*
     * Outputs must cover the logits' shape exactly: NO_BROADCAST refuses an
     * output that would be written through a broadcast (zero-stride) axis.
     */
    for (int k = 0; k < 3; k++) {
        if (*output_index[k] >= 0) {
            op_flags[*output_index[k]] |= NPY_ITER_NO_BROADCAST;
        }
    }

    iter = NpyIter_AdvancedNew(
        nop, ops,
        NPY_ITER_EXTERNAL_LOOP | NPY_ITER_BUFFERED | NPY_ITER_GROWINNER |
            NPY_ITER_ZEROSIZE_OK | NPY_ITER_COPY_IF_OVERLAP,
        NPY_CORDER, NPY_UNSAFE_CASTING, op_flags, dtypes, ndim > 0 ? ndim : -1,
        ndim > 0 ? op_axes : NULL, NULL, 0);
    if (iter == NULL) {
        goto finish;
    }

    sigmoid_loop loop;
    if (labels) {
        loop = double_precision ? sigmoid_double_labels : sigmoid_float_labels;
    }
    else if (double_precision) {
        loop = sigmoid_double_double;
    }
    else {
        loop = target_type == NPY_DOUBLE ? sigmoid_float_double : sigmoid_float_float;
    }

    int status = run_iterator(iter, loop, &task);
    if (NpyIter_Deallocate(iter) != NPY_SUCCEED) {
        iter = NULL;
        goto finish;
    }
    iter = NULL;
    if (status != 0) {
        if (!PyErr_Occurred()) {
            raise_loop_problem(&task.problem);
        }
        goto finish;
    }
    result = Py_BuildValue("(ddd)", compensated_total(&task.loss_sum),
                           compensated_total(&task.weight_sum),
                           compensated_total(&task.positive_sum));

finish:
    if (iter != NULL) {
        NpyIter_Deallocate(iter);
    }
    for (int k = 0; k < MAX_OPERANDS; k++) {
        Py_XDECREF(dtypes[k]);
    }
    Py_XDECREF(class_ids);
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
    NPY_BEGIN_THREADS_DEF;
    NPY_BEGIN_THREADS;
    do {
        npy_intp n = *size;
        for (npy_intp i = 0; i < n; i++) {
            npy_intp label = OPERAND(npy_intp, 0);
            ignored += label == ignore_index;
            positive += label >= 0 && label < num_classes;
        }
    } while (iternext(iter));
    NPY_END_THREADS;
    if (NpyIter_Deallocate(iter) != NPY_SUCCEED || PyErr_Occurred()) {
        return NULL;
    }
    return Py_BuildValue("(nn)", (Py_ssize_t)ignored, (Py_ssize_t)positive);
}


/*
 * glue.h: what the C files of focal._core share.
 *
 * The NumPy C-API table is set once, by module.c at import (multi-phase
 * init); the other files see it through PY_ARRAY_UNIQUE_SYMBOL, NumPy's
 * documented way for extensions made of several files.
 */
#ifndef FOCAL_GLUE_H
#define FOCAL_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#define NPY_NO_DEPRECATED_API NPY_1_23_API_VERSION
#define NPY_TARGET_VERSION NPY_1_23_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL focal_ARRAY_API
#ifndef FOCAL_IMPORTS_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>
#include <numpy/npy_2_compat.h>
#include <numpy/arrayscalars.h>

/* Problems found inside a loop, where the GIL is not held; raised after. */
enum loop_error {
    LOOP_OK = 0,
    LOOP_BAD_TARGET,
    LOOP_BAD_HARD_TARGET,
    LOOP_BAD_LABEL,
    LOOP_BAD_WEIGHT,
    LOOP_ITERATOR_FAILED,
    LOOP_NO_MEMORY,
};

typedef struct {
    int code;
    double value;     /* the offending target or weight */
    npy_intp label;   /* the offending class index */
    npy_intp num_classes;
    npy_intp ignore_index;
    int background;   /* class index num_classes allowed (background row) */
    const char *argument; /* the name of the targets argument in messages */
    const char *message;  /* NumPy's message when its iterator failed */
} loop_problem;

/*
 * The module's state (multi-phase init, no C statics): the settings that the
 * Python layer changes with focal.set_num_threads and, for tests,
 * focal._core.set_simd_level and set_softmax_row_kernels, and the interned
 * keyword names of the entries.
 */
typedef struct {
    int num_threads;  /* threads a large call may use */
    int simd_level;   /* the instruction set of the block kernels (simd.h) */
    /* the softmax general rows' loops in the instruction set's kernels, and
       their double-double rows built for its fused multiply-adds (1), or
       in the scalar code that builds without kernels run (0: for tests,
       which compare the two bit for bit) */
    int softmax_row_kernels;
    PyObject *sigmoid_keywords; /* sigmoid_focal's keyword names, interned (a tuple) */
    PyObject *xla_hosts; /* focal.jax's host functions for XLA's FFI (the list xla_hosts) */
} module_state;

static inline module_state *
get_module_state(PyObject *module)
{
    return (module_state *)PyModule_GetState(module);
}

/* Records a problem found in a loop; returns -1 for the loop to stop. */
static inline int
report(loop_problem *problem, int code, double value, npy_intp label)
{
    problem->code = code;
    problem->value = value;
    problem->label = label;
    return -1;
}

/*
 * count * size bytes from PyMem_RawMalloc (callable without the GIL), or
 * NULL when the product overflows size_t or memory is short: every variable
 * size the C code allocates goes through here.
 */
static inline void *
allocate_array(size_t count, size_t size)
{
    size_t bytes;
#if defined(__GNUC__)
    if (__builtin_mul_overflow(count, size, &bytes)) {
        return NULL;
    }
#else
    if (size != 0 && count > (size_t)-1 / size) {
        return NULL;
    }
    bytes = count * size;
#endif
    return PyMem_RawMalloc(bytes > 0 ? bytes : 1);
}

/*
 * The common calls' short paths (sigmoid_plain_entry in driver.c,
 * softmax_plain_entry in rowwise.c): a call whose arguments are each of the
 * plain form the full path (focal._pass) accepts is made whole in C; any
 * other answers NotImplemented.  Their shared checks and steps (driver.c).
 */
enum { REDUCE_NONE, REDUCE_SUM, REDUCE_MEAN, REDUCE_SUM_OVER_POSITIVES };
int plain_reduction(PyObject *value);
typedef struct {
    int has_alpha;
    double alpha, gamma;
    double normalizer; /* 0: none */
} plain_numbers;
int plain_number(PyObject *value, int integers, double *number);
int plain_parameters(PyObject *alpha, PyObject *gamma, PyObject *normalizer, int reduction,
                     plain_numbers *c);
int plain_class_alpha(PyObject *alpha, npy_intp num_classes, PyArrayObject **array);
int plain_mode(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t count,
               int wanted[3]);
int plain_out_slot(PyObject *mode, PyObject *out, const int wanted[3], int elementwise_loss,
                   int type, PyArrayObject *const like[2], PyArrayObject *const *inputs,
                   int count);
int plain_allocate(PyObject *results[3], const int wanted[3], int out_slot, PyObject *out,
                   PyArrayObject *const like[3], int type);
void plain_release(PyObject *results[3]);
PyObject *plain_answer(PyObject *results[3], int reduced, double sum, double denominator,
                       int double_precision);
int count_labels(PyArrayObject *labels, npy_intp num_classes, npy_intp ignore_index,
                 npy_intp *ignored_count, npy_intp *positive_count);

/* Python entry points */
PyObject *sigmoid_focal_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames);
PyObject *sigmoid_plain_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *sigmoid_keywords_new(void);
PyObject *elementwise_loss_names(void);
PyObject *count_labels_entry(PyObject *module, PyObject *args);
PyObject *softmax_focal_entry(PyObject *module, PyObject *args, PyObject *kwargs);
PyObject *softmax_plain_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *xla_ffi_handler_entry(PyObject *module, PyObject *ignored);
PyObject *xla_ffi_exiting_entry(PyObject *module, PyObject *ignored);

#endif  /* FOCAL_GLUE_H */

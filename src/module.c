/*
 * module.c: the module focal._core: initialisation, method table and the
 * messages of problems found inside the loops.
 *
 * Multi-phase initialisation with no module state and no mutable C statics;
 * NumPy's C-API is imported, with error checking, when the module executes.
 */
#define FOCAL_IMPORTS_NUMPY
#include "glue.h"

/* Raises `exception` with a message naming a float value (formatted by repr). */
static PyObject *
raise_with_value(PyObject *exception, const char *format, double value)
{
    PyObject *number = PyFloat_FromDouble(value);
    if (number != NULL) {
        PyErr_Format(exception, format, number);
        Py_DECREF(number);
    }
    return NULL;
}

PyObject *
raise_loop_problem(const loop_problem *problem)
{
    switch (problem->code) {
    case LOOP_BAD_TARGET:
        return raise_with_value(PyExc_ValueError,
                                "targets: values must lie in [0, 1]; found %R", problem->value);
    case LOOP_BAD_HARD_TARGET:
        return raise_with_value(PyExc_ValueError,
                                "targets: FL* needs targets in {0, 1}; found %R", problem->value);
    case LOOP_BAD_LABEL:
        if (problem->background) {
            return PyErr_Format(PyExc_ValueError,
                                "targets: class indices must lie in [0, %zd] (%zd marks a "
                                "background row) or equal ignore_index=%zd; found %zd",
                                (Py_ssize_t)problem->num_classes,
                                (Py_ssize_t)problem->num_classes,
                                (Py_ssize_t)problem->ignore_index, (Py_ssize_t)problem->label);
        }
        return PyErr_Format(PyExc_ValueError,
                            "labels: class indices must lie in [0, %zd) or equal "
                            "ignore_index=%zd; found %zd",
                            (Py_ssize_t)problem->num_classes, (Py_ssize_t)problem->ignore_index,
                            (Py_ssize_t)problem->label);
    case LOOP_BAD_WEIGHT:
        return raise_with_value(PyExc_ValueError,
                                "weights: values must be finite and non-negative; found %R",
                                problem->value);
    }
    return PyErr_Format(PyExc_RuntimeError, "focal: unknown loop problem %d", problem->code);
}

static PyMethodDef core_methods[] = {
    {"sigmoid_focal", (PyCFunction)(void (*)(void))sigmoid_focal_entry,
     METH_VARARGS | METH_KEYWORDS,
     "Internal: the sigmoid focal loss pass. Use focal.loss and friends."},
    {"count_labels", count_labels_entry, METH_VARARGS,
     "Internal: (ignored, positive) counts of a class-index array."},
    {"softmax_focal", (PyCFunction)(void (*)(void))softmax_focal_entry,
     METH_VARARGS | METH_KEYWORDS,
     "Internal: the softmax focal loss pass. Use focal.softmax_loss and friends."},
    {NULL, NULL, 0, NULL},
};

static int
core_exec(PyObject *Py_UNUSED(module))
{
    /* sets NumPy's API table, with a Python exception on failure */
    return PyArray_ImportNumPyAPI();
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* NumPy itself cannot be loaded in several interpreters at once */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* the module has no state: nothing here needs the GIL */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "focal._core",
    .m_doc = "C kernels of the focal package (internal; use the functions of `focal`).",
    .m_size = 0,
    .m_methods = core_methods,
    .m_slots = core_slots,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}

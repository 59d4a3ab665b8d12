/*
 * module.c: the extension module _focal_core (re-exported as focal._core):
 * initialisation, state and method table.
 *
 * Multi-phase initialisation; the settings and the interned keyword names
 * live in the module state, and there are no mutable C statics;
 * NumPy's C-API is imported, with error checking, when the module executes.
 */
#define FOCAL_IMPORTS_NUMPY
#include "glue.h"
#include "parallel.h"
#include "simd.h"

static PyObject *
set_num_threads(PyObject *module, PyObject *argument)
{
    long n = PyLong_AsLong(argument);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 1 || n > 256) {
        PyErr_SetString(PyExc_ValueError, "n: expected a number of threads from 1 to 256");
        return NULL;
    }
    get_module_state(module)->num_threads = (int)n;
    Py_RETURN_NONE;
}

static PyObject *
get_num_threads(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(get_module_state(module)->num_threads);
}

static PyObject *
set_simd_level(PyObject *module, PyObject *argument)
{
    const char *name = PyUnicode_AsUTF8(argument);
    if (name == NULL) {
        return NULL;
    }
    int supported = simd_level_supported();
    for (int level = SIMD_BASELINE; level <= supported; level++) {
        if (strcmp(name, simd_level_name(level)) == 0) {
            get_module_state(module)->simd_level = level;
            Py_RETURN_NONE;
        }
    }
    return PyErr_Format(PyExc_ValueError,
                        "level: %R is not an instruction set this CPU runs (best: %s)",
                        argument, simd_level_name(supported));
}

static PyObject *
set_softmax_row_kernels(PyObject *module, PyObject *argument)
{
    int on = PyObject_IsTrue(argument);
    if (on < 0) {
        return NULL;
    }
    get_module_state(module)->softmax_row_kernels = on;
    Py_RETURN_NONE;
}

static PyObject *
get_simd_level(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(simd_level_name(get_module_state(module)->simd_level));
}

static PyObject *
supported_simd_levels(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    int supported = simd_level_supported();
    PyObject *names = PyList_New(0);
    for (int level = SIMD_BASELINE; names != NULL && level <= supported; level++) {
        PyObject *name = PyUnicode_FromString(simd_level_name(level));
        if (name == NULL || PyList_Append(names, name) < 0) {
            Py_XDECREF(name);
            Py_CLEAR(names);
            break;
        }
        Py_DECREF(name);
    }
    return names;
}

static PyMethodDef core_methods[] = {
    {"set_num_threads", set_num_threads, METH_O, "Internal: see focal.set_num_threads."},
    {"get_num_threads", get_num_threads, METH_NOARGS, "Internal: see focal.get_num_threads."},
    {"set_simd_level", set_simd_level, METH_O,
     "Use the block kernels of this instruction set (a name from supported_simd_levels())."},
    {"simd_level", get_simd_level, METH_NOARGS, "The instruction set of the block kernels."},
    {"set_softmax_row_kernels", set_softmax_row_kernels, METH_O,
     "For tests: the softmax general rows' loops in the instruction set's kernels (True, the "
     "default) or in the scalar code of builds without them (False); the same bits."},
    {"supported_simd_levels", supported_simd_levels, METH_NOARGS,
     "The instruction sets this CPU runs, lowest first."},
    {"sigmoid_focal", (PyCFunction)(void (*)(void))sigmoid_focal_entry,
     METH_FASTCALL | METH_KEYWORDS,
     "Internal: the sigmoid focal loss pass. Use focal.loss and friends."},
    {"sigmoid_plain", (PyCFunction)(void (*)(void))sigmoid_plain_entry, METH_FASTCALL,
     "Internal: the common call of an elementwise loss, or NotImplemented."},
    {"count_labels", count_labels_entry, METH_VARARGS,
     "Internal: (ignored, positive) counts of a class-index array."},
    {"softmax_focal", (PyCFunction)(void (*)(void))softmax_focal_entry,
     METH_VARARGS | METH_KEYWORDS,
     "Internal: the softmax focal loss pass. Use focal.softmax_loss and friends."},
    {"softmax_plain", (PyCFunction)(void (*)(void))softmax_plain_entry, METH_FASTCALL,
     "Internal: the common call of the softmax focal loss, or NotImplemented."},
    {"xla_ffi_handler", xla_ffi_handler_entry, METH_NOARGS,
     "Internal: focal.jax's XLA FFI handler (a capsule), which calls the functions of xla_hosts."},
    {"xla_ffi_exiting", xla_ffi_exiting_entry, METH_NOARGS,
     "Internal: focal.jax's atexit handler: FFI calls stop taking the GIL; those in flight "
     "are waited for."},
    {"chunk_plan", chunk_plan_entry, METH_VARARGS,
     "Internal: (chunks, start, end of the last) for total indices cut into chunk_size."},
    {NULL, NULL, 0, NULL},
};

static int
core_exec(PyObject *module)
{
    /* sets NumPy's API table, with a Python exception on failure */
    if (PyArray_ImportNumPyAPI() < 0) {
        return -1;
    }
    module_state *state = get_module_state(module);
    state->num_threads = 1; /* the Python layer sets the default */
    state->simd_level = simd_level_supported();
    state->softmax_row_kernels = 1;
    /* focal.jax's host functions for XLA's FFI, by number (xla_ffi.c) */
    state->xla_hosts = PyList_New(0);
    if (state->xla_hosts == NULL || PyModule_AddObjectRef(module, "xla_hosts", state->xla_hosts) < 0) {
        return -1;
    }
    state->sigmoid_keywords = sigmoid_keywords_new();
    if (state->sigmoid_keywords == NULL) {
        return -1;
    }
    /* the rows of the table of elementwise losses, by number (the `loss`
       argument of sigmoid_focal) */
    PyObject *losses = elementwise_loss_names();
    int added = losses == NULL ? -1 : PyModule_AddObjectRef(module, "elementwise_losses", losses);
    Py_XDECREF(losses);
    return added < 0 ? -1 : 0;
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    module_state *state = get_module_state(module);
    Py_VISIT(state->sigmoid_keywords);
    Py_VISIT(state->xla_hosts);
    return 0;
}

static int
core_clear(PyObject *module)
{
    module_state *state = get_module_state(module);
    Py_CLEAR(state->sigmoid_keywords);
    Py_CLEAR(state->xla_hosts);
    return 0;
}

static void
core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* NumPy itself cannot be loaded in several interpreters at once */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* no C statics; the state's ints are read and written whole, its
       keyword names only read after exec */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_focal_core",
    .m_doc = "C kernels of the focal package (internal; use the functions of `focal`).",
    .m_size = sizeof(module_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC
PyInit__focal_core(void)
{
    return PyModuleDef_Init(&core_module);
}

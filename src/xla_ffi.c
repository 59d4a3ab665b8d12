/*
 * xla_ffi.c: focal.jax's way into jax.jit without copies, a handler of XLA's
 * foreign function interface (FFI) on the CPU.
 *
 * Under jax.jit, focal.jax calls jax.ffi.ffi_call("focal_host", ...)(logits,
 * labels, host=k).  XLA then calls xla_ffi_execute with its own buffers: the
 * operands, and the memory of the results.  The handler wraps each buffer as
 * a NumPy array of that memory (the operands read-only), takes the GIL and
 * calls host function k of the list _core.xla_hosts (focal.jax's); that
 * function runs focal with out= in the results' memory.  Nothing is copied
 * on the way in or out, where a jax.pure_callback copies the operands out
 * and the results back in (more time than focal's pass on a large batch).
 *
 * The structures below are XLA's FFI C API in the layout of its version 0.1
 * (xla/ffi/api/c_api.h; XLA keeps supporting an old version for at least 12
 * months, and jaxlib 0.10.2 takes 0.1 to 0.3), declared with the fields
 * the handler uses and those before them; focal builds without XLA's
 * headers, and JAX is needed only at run time.  Where XLA refuses the
 * version, focal.jax's registration fails and its host callback serves.
 *
 * An error of the host function (a bad label, say) goes back to XLA as an
 * FFI error carrying focal's message, which JAX raises as a
 * JaxRuntimeError.  The host numbers mean something in this process only
 * (an exported computation carrying one would call another process's
 * numbering).
 */
#include "glue.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if PY_VERSION_HEX >= 0x030D0000
#define python_finalizing() Py_IsFinalizing()
#else
#define python_finalizing() _Py_IsFinalizing()
#endif

/* the API version the handler reports, which XLA checks at registration
   against the range it supports */
#define FFI_API_MAJOR 0
#define FFI_API_MINOR 1

enum { FFI_EXTENSION_METADATA = 1 };
enum { FFI_STAGE_EXECUTE = 3 };
enum { FFI_ATTR_SCALAR = 3 };
/* XLA's error codes (absl's status codes) */
enum { FFI_ERROR_INVALID_ARGUMENT = 3, FFI_ERROR_RESOURCE_EXHAUSTED = 8, FFI_ERROR_INTERNAL = 13 };

/* XLA's element types (xla::PrimitiveType's numbers) */
enum {
    FFI_PRED = 1, FFI_S8 = 2, FFI_S16 = 3, FFI_S32 = 4, FFI_S64 = 5, FFI_U8 = 6, FFI_U16 = 7,
    FFI_U32 = 8, FFI_U64 = 9, FFI_F16 = 10, FFI_F32 = 11, FFI_F64 = 12, FFI_BF16 = 16,
};

typedef struct ffi_extension {
    size_t struct_size;
    int type;
    struct ffi_extension *next;
} ffi_extension;

typedef struct {
    size_t struct_size;
    ffi_extension *extension_start;
    int major_version;
    int minor_version;
} ffi_api_version;

typedef struct {
    size_t struct_size;
    ffi_api_version api_version;
    uint32_t traits;
} ffi_metadata;

typedef struct {
    ffi_extension base;
    ffi_metadata *metadata;
} ffi_metadata_extension;

typedef struct ffi_error ffi_error; /* opaque: made by XLA, destroyed by XLA */

typedef struct {
    size_t struct_size;
    ffi_extension *extension_start;
    const char *message;
    int code;
} ffi_error_create_args;

typedef struct {
    size_t struct_size;
    ffi_extension *extension_start;
    ffi_api_version api_version;
    const void *internal_api;
    ffi_error *(*error_create)(ffi_error_create_args *args);
} ffi_api;

typedef struct {
    size_t struct_size;
    ffi_extension *extension_start;
    int dtype;
    void *data;
    int64_t rank;
    int64_t *dims;
} ffi_buffer;

typedef struct {
    const char *ptr;
    size_t len;
} ffi_byte_span;

typedef struct {
    int dtype;
    void *value;
} ffi_scalar;

typedef struct {
    size_t struct_size;
    ffi_extension *extension_start;
    int64_t size;
    int *types;
    void **buffers;
} ffi_buffers; /* the operands (XLA_FFI_Args) and the results (XLA_FFI_Rets) alike */

typedef struct {
    size_t struct_size;
    ffi_extension *extension_start;
    int64_t size;
    int *types;
    ffi_byte_span **names;
    void **attrs;
} ffi_attrs;

typedef struct {
    size_t struct_size;
    ffi_extension *extension_start;
    const ffi_api *api;
    void *ctx;
    int stage;
    ffi_buffers args;
    ffi_buffers rets;
    ffi_attrs attrs;
} ffi_call_frame;

static ffi_error *
ffi_fail(const ffi_call_frame *frame, int code, const char *message)
{
    ffi_error_create_args args = {sizeof args, NULL, message, code};
    return frame->api->error_create(&args);
}

/* the host function's number: the scalar attribute "host" */
static int
host_number(const ffi_attrs *attrs, int64_t *number)
{
    for (int64_t i = 0; i < attrs->size; i++) {
        const ffi_byte_span *name = attrs->names[i];
        if (attrs->types[i] != FFI_ATTR_SCALAR || name->len != 4 || memcmp(name->ptr, "host", 4)) {
            continue;
        }
        const ffi_scalar *scalar = attrs->attrs[i];
        if (scalar->dtype == FFI_S64 || scalar->dtype == FFI_U64) {
            memcpy(number, scalar->value, sizeof *number);
            return 0;
        }
        if (scalar->dtype == FFI_S32 || scalar->dtype == FFI_U32) {
            int32_t value;
            memcpy(&value, scalar->value, sizeof value);
            *number = value;
            return 0;
        }
    }
    return -1;
}

/* NumPy's type of an XLA element type; bfloat16 as its bits (uint16), which
   the host function views as ml_dtypes' bfloat16; -1 for any other */
static int
numpy_type(int dtype)
{
    switch (dtype) {
    case FFI_PRED: return NPY_BOOL;
    case FFI_S8: return NPY_INT8;
    case FFI_S16: return NPY_INT16;
    case FFI_S32: return NPY_INT32;
    case FFI_S64: return NPY_INT64;
    case FFI_U8: return NPY_UINT8;
    case FFI_U16: return NPY_UINT16;
    case FFI_U32: return NPY_UINT32;
    case FFI_U64: return NPY_UINT64;
    case FFI_F16: return NPY_HALF;
    case FFI_F32: return NPY_FLOAT32;
    case FFI_F64: return NPY_FLOAT64;
    case FFI_BF16: return NPY_UINT16;
    default: return -1;
    }
}

/* A NumPy array of a buffer's memory, C-contiguous (ffi_call's default
   layout), read-only for an operand.  The array owns nothing: the host
   function must not keep it past the call. */
static PyObject *
buffer_array(const ffi_buffer *buffer, int writeable)
{
    int type = numpy_type(buffer->dtype);
    if (type < 0 || buffer->rank < 0 || buffer->rank > NPY_MAXDIMS) {
        PyErr_Format(PyExc_TypeError, "focal.jax: a buffer of XLA element type %d, rank %lld "
                     "(expected a bool, integer or floating-point array)",
                     buffer->dtype, (long long)buffer->rank);
        return NULL;
    }
    npy_intp dims[NPY_MAXDIMS];
    for (int64_t i = 0; i < buffer->rank; i++) {
        dims[i] = (npy_intp)buffer->dims[i];
    }
    int flags = writeable ? NPY_ARRAY_CARRAY : NPY_ARRAY_CARRAY_RO;
    /* NumPy would allocate for a NULL pointer: an empty buffer may have one */
    static char nothing[16];
    void *data = buffer->data != NULL ? buffer->data : nothing;
    return PyArray_New(&PyArray_Type, (int)buffer->rank, dims, type, NULL, data, 0, flags, NULL);
}

/* The host function's arguments: the operands, then the results. */
static PyObject *
buffer_arrays(const ffi_call_frame *frame)
{
    Py_ssize_t operands = (Py_ssize_t)frame->args.size, results = (Py_ssize_t)frame->rets.size;
    PyObject *arrays = PyTuple_New(operands + results);
    for (Py_ssize_t i = 0; arrays != NULL && i < operands + results; i++) {
        int result = i >= operands;
        const ffi_buffer *buffer = result ? frame->rets.buffers[i - operands] : frame->args.buffers[i];
        PyObject *array = buffer_array(buffer, result);
        if (array == NULL) {
            Py_CLEAR(arrays);
            break;
        }
        PyTuple_SET_ITEM(arrays, i, array);
    }
    return arrays;
}

/* The pending Python exception as an FFI error ("ValueError: labels: ...");
   a bad argument (TypeError, ValueError) is INVALID_ARGUMENT, memory
   RESOURCE_EXHAUSTED, anything else INTERNAL. */
static ffi_error *
error_from_exception(const ffi_call_frame *frame)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    int code = FFI_ERROR_INTERNAL;
    if (PyErr_GivenExceptionMatches(type, PyExc_TypeError) ||
        PyErr_GivenExceptionMatches(type, PyExc_ValueError)) {
        code = FFI_ERROR_INVALID_ARGUMENT;
    }
    else if (PyErr_GivenExceptionMatches(type, PyExc_MemoryError)) {
        code = FFI_ERROR_RESOURCE_EXHAUSTED;
    }
    PyObject *text = value != NULL
        ? PyUnicode_FromFormat("%s: %S", ((PyTypeObject *)type)->tp_name, value) : NULL;
    const char *message = text != NULL ? PyUnicode_AsUTF8(text) : NULL;
    /* (a message that cannot be formed, such as a str() that raises, leaves
       an exception of its own: nothing is left set for XLA's call) */
    PyErr_Clear();
    /* XLA copies the message */
    ffi_error *error = ffi_fail(frame, code,
                                message != NULL ? message : "focal.jax: the host call failed");
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return error;
}

/*
 * Exiting.  A call XLA runs while the interpreter exits (a script that ends
 * without waiting for a result) must not wait for the GIL: the main thread
 * holds it through finalization while it waits for XLA's threads, and on
 * CPython 3.11 a thread that gets it during finalization is ended there,
 * leaving XLA's thread pool waiting for ever.  So focal.jax's atexit handler
 * (xla_ffi_exiting) sets python_exiting and waits, the GIL released, for the
 * calls in flight; a call that starts later fails at once.  The handler is
 * the process's (XLA's registry of handlers is), and so is this state: the
 * one mutable state of the core outside its module state.
 */
static atomic_int python_exiting;
static atomic_long calls_in_flight;

static ffi_error *run_host(ffi_call_frame *frame, int64_t number);

static ffi_error *
xla_ffi_execute(ffi_call_frame *frame)
{
    /* Before any call, XLA asks which version of the API the handler speaks. */
    for (ffi_extension *e = frame->extension_start; e != NULL; e = e->next) {
        if (e->type == FFI_EXTENSION_METADATA) {
            ffi_metadata *metadata = ((ffi_metadata_extension *)e)->metadata;
            metadata->api_version.major_version = FFI_API_MAJOR;
            metadata->api_version.minor_version = FFI_API_MINOR;
            metadata->traits = 0;
            return NULL;
        }
    }
    if (frame->stage != FFI_STAGE_EXECUTE) {
        return NULL;
    }
    int64_t number;
    if (host_number(&frame->attrs, &number) < 0) {
        return ffi_fail(frame, FFI_ERROR_INVALID_ARGUMENT,
                        "focal.jax: the call has no integer attribute 'host'");
    }
    /* Counted before the flag is read, and xla_ffi_exiting sets the flag
       before it reads the count: a call either sees the flag or is waited
       for. */
    atomic_fetch_add(&calls_in_flight, 1);
    ffi_error *error = atomic_load(&python_exiting) || python_finalizing()
        ? ffi_fail(frame, FFI_ERROR_INTERNAL, "focal.jax: Python is exiting")
        : run_host(frame, number);
    atomic_fetch_sub(&calls_in_flight, 1);
    return error;
}

/* The host function `number` called on the frame's buffers, under the GIL. */
static ffi_error *
run_host(ffi_call_frame *frame, int64_t number)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    ffi_error *error = NULL;
    PyObject *name = PyUnicode_InternFromString("_focal_core");
    /* the module as imported (a lookup in sys.modules, not an import) */
    PyObject *module = name != NULL ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (module == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_RuntimeError, "focal.jax: _focal_core is not imported");
    }
    PyObject *hosts = module != NULL ? get_module_state(module)->xla_hosts : NULL;
    /* (a new reference, taken under the list's own lock where there is no GIL) */
    PyObject *host = hosts != NULL && number >= 0 && (int64_t)(Py_ssize_t)number == number
        ? PySequence_GetItem(hosts, (Py_ssize_t)number) : NULL;
    if (module != NULL && host == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_RuntimeError, "focal.jax: no host function %lld", (long long)number);
    }
    PyObject *arrays = host != NULL ? buffer_arrays(frame) : NULL;
    PyObject *returned = arrays != NULL ? PyObject_Call(host, arrays, NULL) : NULL;
    if (returned == NULL) {
        error = error_from_exception(frame);
    }
    Py_XDECREF(returned);
    Py_XDECREF(arrays);
    Py_XDECREF(host);
    Py_XDECREF(module);
    PyGILState_Release(gil);
    return error;
}

/* _core.xla_ffi_handler(): the handler, as the capsule that
   jax.ffi.register_ffi_target takes.  The calls carry the number of a host
   function in the list _core.xla_hosts (the module's, so that a second
   import of focal.jax finds the numbers of the first one's calls valid). */
PyObject *
xla_ffi_handler_entry(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    /* a data pointer in a capsule: ISO C has no cast between function and
       object pointers, POSIX (dlsym) does */
    return PyCapsule_New((void *)(uintptr_t)&xla_ffi_execute, NULL, NULL);
}

/* _core.xla_ffi_exiting(): no FFI call takes the GIL from now on; waits, the
   GIL released, up to a minute for those in flight.  Returns how many are
   left (0 but for a call stuck elsewhere). */
PyObject *
xla_ffi_exiting_entry(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    atomic_store(&python_exiting, 1);
    long left;
    Py_BEGIN_ALLOW_THREADS
    for (int waited = 0; (left = atomic_load(&calls_in_flight)) > 0 && waited < 60000; waited++) {
        struct timespec millisecond = {0, 1000000};
        nanosleep(&millisecond, NULL);
    }
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(left);
}

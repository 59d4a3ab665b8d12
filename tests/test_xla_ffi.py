"""The core's XLA FFI handler (src/xla_ffi.c) called as XLA calls it, without JAX.

The call frames are built here with ctypes in the layout of XLA's FFI C API
(version 0.1 of xla/ffi/api/c_api.h, as the handler declares it), with an
error-creating function of the test's own, so that every path of the
handler (the version query, stages it skips, buffers of every element type
it takes, empty ones, missing or bad attributes, errors of the host
function) runs in the quick tier and under the sanitizers, where JAX is not
installed.  test_jax.py runs the handler inside real XLA.
"""
import ctypes
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int32, c_int64, c_size_t,
                    c_uint32, c_void_p, py_object)

import numpy as np
import pytest

from focal import _core


class Extension(Structure):
    _fields_ = [("struct_size", c_size_t), ("type", c_int), ("next", c_void_p)]


class Version(Structure):
    _fields_ = [("struct_size", c_size_t), ("extension_start", c_void_p),
                ("major", c_int), ("minor", c_int)]


class Metadata(Structure):
    _fields_ = [("struct_size", c_size_t), ("api_version", Version), ("traits", c_uint32)]


class MetadataExtension(Structure):
    _fields_ = [("base", Extension), ("metadata", POINTER(Metadata))]


class ErrorArgs(Structure):
    _fields_ = [("struct_size", c_size_t), ("extension_start", c_void_p),
                ("message", c_char_p), ("code", c_int)]


ERROR_CREATE = CFUNCTYPE(c_void_p, POINTER(ErrorArgs))


class Api(Structure):
    _fields_ = [("struct_size", c_size_t), ("extension_start", c_void_p),
                ("api_version", Version), ("internal_api", c_void_p),
                ("error_create", ERROR_CREATE)]


class Buffer(Structure):
    _fields_ = [("struct_size", c_size_t), ("extension_start", c_void_p), ("dtype", c_int),
                ("data", c_void_p), ("rank", c_int64), ("dims", POINTER(c_int64))]


class Buffers(Structure):
    _fields_ = [("struct_size", c_size_t), ("extension_start", c_void_p), ("size", c_int64),
                ("types", POINTER(c_int)), ("buffers", POINTER(c_void_p))]


class ByteSpan(Structure):
    _fields_ = [("ptr", c_char_p), ("len", c_size_t)]


class Scalar(Structure):
    _fields_ = [("dtype", c_int), ("value", c_void_p)]


class Attrs(Structure):
    _fields_ = [("struct_size", c_size_t), ("extension_start", c_void_p), ("size", c_int64),
                ("types", POINTER(c_int)), ("names", POINTER(POINTER(ByteSpan))),
                ("attrs", POINTER(c_void_p))]


class CallFrame(Structure):
    _fields_ = [("struct_size", c_size_t), ("extension_start", c_void_p), ("api", POINTER(Api)),
                ("ctx", c_void_p), ("stage", c_int), ("args", Buffers), ("rets", Buffers),
                ("attrs", Attrs), ("future", c_void_p)]


EXECUTE, INSTANTIATE, SCALAR_ATTR, METADATA = 3, 0, 3, 1
# XLA element types
PRED, S32, S64, F16, F32, F64, BF16, C64 = 1, 4, 5, 10, 11, 12, 16, 15
TYPE_OF = {np.dtype(np.bool_): PRED, np.dtype(np.int32): S32, np.dtype(np.int64): S64,
           np.dtype(np.float16): F16, np.dtype(np.float32): F32, np.dtype(np.float64): F64}
INVALID_ARGUMENT, RESOURCE_EXHAUSTED, INTERNAL = 3, 8, 13


def _handler():
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = c_void_p, (py_object, c_char_p)
    return CFUNCTYPE(c_void_p, POINTER(CallFrame))(get(_core.xla_ffi_handler(), None))


class Call:
    """One call frame, the memory it points to kept alive with it."""

    def __init__(self, operands, results, attrs=None, stage=EXECUTE, types=None):
        self.keep = []
        self.errors = []

        def create(args):
            self.errors.append((args.contents.message.decode(), args.contents.code))
            return 1  # an opaque non-NULL error, which the handler returns

        self.error_create = ERROR_CREATE(create)
        self.api = Api(struct_size=ctypes.sizeof(Api), error_create=self.error_create)
        self.frame = CallFrame(struct_size=ctypes.sizeof(CallFrame), api=ctypes.pointer(self.api),
                               stage=stage)
        types = types or {}
        self.frame.args = self._buffers(operands, types)
        self.frame.rets = self._buffers(results, types)
        self.frame.attrs = self._attrs(attrs or {})

    def _buffers(self, arrays, types):
        pointers = (c_void_p * max(1, len(arrays)))()
        for i, a in enumerate(arrays):
            dims = (c_int64 * max(1, a.ndim))(*a.shape)
            data = a.ctypes.data if a.size else None
            buffer = Buffer(struct_size=ctypes.sizeof(Buffer),
                            dtype=types.get(id(a), TYPE_OF.get(a.dtype, -1)), data=data,
                            rank=a.ndim, dims=dims)
            self.keep += [dims, buffer, a]
            pointers[i] = ctypes.addressof(buffer)
        kinds = (c_int * max(1, len(arrays)))(*([1] * len(arrays)))
        self.keep += [pointers, kinds]
        return Buffers(struct_size=ctypes.sizeof(Buffers), size=len(arrays), types=kinds,
                       buffers=pointers)

    def _attrs(self, attrs):
        n = len(attrs)
        names = (POINTER(ByteSpan) * max(1, n))()
        values = (c_void_p * max(1, n))()
        kinds = (c_int * max(1, n))()
        for i, (name, (dtype, value)) in enumerate(sorted(attrs.items())):
            span = ByteSpan(name.encode(), len(name))
            scalar = Scalar(dtype, ctypes.addressof(value))
            self.keep += [span, scalar, value]
            names[i] = ctypes.pointer(span)
            values[i] = ctypes.addressof(scalar)
            kinds[i] = SCALAR_ATTR
        self.keep += [names, values, kinds]
        return Attrs(struct_size=ctypes.sizeof(Attrs), size=n, types=kinds, names=names,
                     attrs=values)

    def __call__(self):
        return _handler()(ctypes.byref(self.frame))


@pytest.fixture
def host():
    """A host function appended to the core's list, and its number."""
    seen = []

    def record(*arrays):
        seen.append([(a.dtype, a.shape, a.flags.writeable, a.flags.c_contiguous) for a in arrays])
        operands, results = arrays[:2], arrays[2:]
        for r in results:
            if r.shape == operands[0].shape:
                r[...] = operands[0].astype(r.dtype) * 2
    _core.xla_hosts.append(record)
    number = len(_core.xla_hosts) - 1
    yield number, seen
    _core.xla_hosts[number] = None  # the number stays taken; nothing calls it again


def _number(k, dtype=S64):
    return (dtype, (c_int64 if dtype == S64 else c_int32)(k))


def test_the_version_query_is_answered_and_nothing_runs(host):
    number, seen = host
    metadata = Metadata(struct_size=ctypes.sizeof(Metadata), traits=7)
    extension = MetadataExtension(Extension(ctypes.sizeof(MetadataExtension), METADATA, None),
                                  ctypes.pointer(metadata))
    call = Call([np.ones(3, np.float32)], [np.zeros(3, np.float32)], {"host": _number(number)},
                stage=INSTANTIATE)
    call.frame.extension_start = ctypes.addressof(extension)
    assert call() is None
    assert (metadata.api_version.major, metadata.api_version.minor, metadata.traits) == (0, 1, 0)
    assert seen == [] and call.errors == []


def test_other_stages_than_execute_run_nothing(host):
    number, seen = host
    for stage in (0, 1, 2):
        call = Call([np.ones(3, np.float32)], [np.zeros(3, np.float32)], {"host": _number(number)},
                    stage=stage)
        assert call() is None
    assert seen == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64,
                                   np.bool_])
@pytest.mark.parametrize("attribute", [S64, S32])
def test_buffers_are_wrapped_in_place(host, dtype, attribute):
    """Operands read-only, results writeable, both C-contiguous views of the
    buffers' memory: what the host writes is in the result buffer."""
    number, seen = host
    x = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    y = np.ones(4, np.int32)
    out = np.zeros((3, 4), np.float64)
    call = Call([x, y], [out], {"host": _number(number, attribute)})
    assert call() is None and call.errors == []
    assert seen == [[(x.dtype, (3, 4), False, True), (y.dtype, (4,), False, True),
                     (out.dtype, (3, 4), True, True)]]
    np.testing.assert_array_equal(out, x.astype(np.float64) * 2)


def test_bfloat16_arrives_as_its_bits_and_empty_buffers_work(host):
    number, seen = host
    bits = np.array([0x3F80, 0x4000], np.uint16)  # bfloat16 1.0 and 2.0
    empty = np.zeros((0, 5), np.float32)
    result = np.zeros(2, np.uint16)
    call = Call([bits, empty], [result, np.zeros((0, 5), np.float32)],
                {"host": _number(number)}, types={id(bits): BF16, id(result): BF16})
    assert call() is None and call.errors == []
    assert seen[0][0] == (np.dtype(np.uint16), (2,), False, True)
    assert seen[0][1][:2] == (np.dtype(np.float32), (0, 5))
    np.testing.assert_array_equal(result, bits * 2)


def test_a_missing_or_bad_host_attribute_is_an_error(host):
    number, seen = host
    for attrs in ({}, {"hosts": _number(number)}, {"host": (F32, ctypes.c_float(0.0))}):
        call = Call([np.ones(2, np.float32)], [np.zeros(2, np.float32)], attrs)
        assert call() == 1
        assert call.errors == [("focal.jax: the call has no integer attribute 'host'",
                                INVALID_ARGUMENT)]
    assert seen == []


def test_a_host_number_out_of_range_is_an_internal_error():
    for number in (-1, len(_core.xla_hosts), 2**40):
        call = Call([np.ones(2, np.float32)], [np.zeros(2, np.float32)], {"host": _number(number)})
        assert call() == 1
        assert call.errors == [(f"RuntimeError: focal.jax: no host function {number}", INTERNAL)]


class Unprintable(ValueError):
    def __str__(self):
        raise RuntimeError("no text")


_NO_TEXT = "focal.jax: the host call failed"


@pytest.mark.parametrize("raised, code, message", [
    (ValueError("labels: expected 0 or 1, found 2.0"), INVALID_ARGUMENT, None),
    (TypeError("logits: bad"), INVALID_ARGUMENT, None),
    (MemoryError("no memory"), RESOURCE_EXHAUSTED, None),
    (KeyError("k"), INTERNAL, None),
    # a text that cannot be formed (a lone surrogate, a str() that raises): the
    # handler's own message, and nothing left set
    (ValueError("\ud800"), INVALID_ARGUMENT, _NO_TEXT),
    (Unprintable("x"), INVALID_ARGUMENT, _NO_TEXT),
])
def test_the_host_s_exception_becomes_the_error_and_is_cleared(raised, code, message):
    def failing(*arrays):
        raise raised
    _core.xla_hosts.append(failing)
    number = len(_core.xla_hosts) - 1
    try:
        call = Call([np.ones(2, np.float32)], [np.zeros(2, np.float32)], {"host": _number(number)})
        assert call() == 1
        assert call.errors == [(message or f"{type(raised).__name__}: {raised}", code)]
    finally:
        _core.xla_hosts[number] = None


def test_an_element_type_the_handler_does_not_take_is_an_error(host):
    number, seen = host
    x = np.ones(2, np.complex64)
    call = Call([x], [np.zeros(2, np.float32)], {"host": _number(number)}, types={id(x): C64})
    assert call() == 1
    assert call.errors == [("TypeError: focal.jax: a buffer of XLA element type 15, rank 1 "
                            "(expected a bool, integer or floating-point array)", INVALID_ARGUMENT)]
    assert seen == []

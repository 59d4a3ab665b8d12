"""One specification per loss, from which its public functions are made.

A `LossSpec` names a loss, its family (elementwise, like the sigmoid focal
loss and FL*, or softmax, over rows), its parameters with their defaults and
documentation, its reductions, and the parts of its docstrings.  `define`
turns it into the public functions (``loss``, ``grad``, ``loss_and_grad`` and
``grad_hess``, with the spec's prefix) in the module that holds the spec:
plain Python functions whose signatures are the real parameters and defaults
(``inspect.signature``, ``help``) and whose numpydoc docstrings are assembled
from the parts.  Each calls the family's entry, which checks the arguments
(focal._args) and runs the shared call (focal._pass).

The typing stubs of those modules (focal/_sigmoid.pyi, ...) are written from
the same specifications by `stub_text`, with one set of overloads for every
loss (the reduction tells a scalar from an array); a test checks that the
files are up to date, and
``python -c "from focal import _spec; _spec.write_stubs()"`` rewrites them.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple



class _Required:
    """The default of a parameter that has none (a marker)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# the functions a spec can make: which results each wants from the call, and
# which of the call's results it returns
KINDS: Dict[str, Tuple[Tuple[bool, bool, bool, str], str]] = {
    # name: ((want_loss, want_grad, want_hess, out_receives), returned)
    "loss": ((True, False, False, "loss"), "[0]"),
    "grad": ((False, True, False, "grad"), "[1]"),
    "loss_and_grad": ((True, True, False, "grad"), "[:2]"),
    "grad_hess": ((False, True, True, "grad"), "[1:]"),
}
# the parameters of a reduced result, which grad_hess (elementwise, unreduced) has not
REDUCING = ("reduction", "normalizer", "out")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a loss's public functions.

    doc: its numpydoc entry without the name line's indentation ("name : type,
    default ...\\n    text"); stub: its type in the typing stubs.
    """

    name: str
    doc: str
    default: Any = REQUIRED
    keyword_only: bool = False
    stub: str = "Any"


@dataclass(frozen=True)
class FunctionDoc:
    """The parts of one public function's docstring that are its own."""

    summary: str
    out: str           # the out parameter's description ("" for none)
    examples: str
    returns: str = ""  # "": the standard text of its kind (standard_returns)
    extended: str = ""  # paragraphs after the summary
    see_also: str = ""
    notes: Optional[str] = None  # instead of the spec's notes


@dataclass(frozen=True)
class LossSpec:
    """A loss: what the public functions of `define` are made from.

    prefix: of the public names ("", "star_", "softmax_"); entry: the family's
    function that checks and runs a call, entry(mode, logits, targets, ...);
    fixed: arguments the entry gets that the user does not give (FL*:
    star=True); reductions: the accepted values of `reduction`, the first the
    default; docs: one FunctionDoc per function to make, by kind; plain: the
    C function that makes the family's common call whole and answers
    NotImplemented to any other (focal._core.sigmoid_plain, softmax_plain), taking the
    entry's arguments before its `loss_into`: the public functions call it
    first and the entry, with plain_tried=True, only for the other calls
    (a Python frame less on the common call).
    """

    name: str
    family: str
    prefix: str
    parameters: Tuple[Parameter, ...]
    entry: Callable[..., Any]
    docs: Mapping[str, FunctionDoc]
    notes: str
    reductions: Tuple[str, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    plain: Optional[Callable[..., Any]] = None

    def function_name(self, kind: str) -> str:
        return self.prefix + kind

    def signature_parameters(self, kind: str) -> List[Parameter]:
        """The parameters of one function, in signature order."""
        return [p for p in self.parameters if kind != "grad_hess" or p.name not in REDUCING]


NORMALIZER = Parameter(
    "normalizer",
    """normalizer : float, optional
    With ``reduction="mean"``, the denominator of the mean instead of its own
    (the weight sum or the number of elements not ignored): the loss is
    sum(w l) / normalizer and the gradient is divided by it alike, as in
    data-parallel training, where the count of positives is summed over
    every worker first (mmdetection's ``avg_factor``).  A finite number > 0;
    any other reduction refuses it.""",
    default=None, keyword_only=True, stub="Optional[Real]")


def standard_returns(spec: LossSpec, kind: str) -> str:
    """The Returns section of an elementwise loss's function of one kind."""
    if kind == "loss":
        return """\
numpy scalar or ndarray
    The reduced loss as a NumPy scalar of the result dtype, or with
    ``reduction="none"`` an array of the logits' shape."""
    if kind == "grad":
        return """\
ndarray
    d(reduced loss)/d(logits), the logits' shape."""
    if kind == "loss_and_grad":
        return f"""\
loss : numpy scalar or ndarray
    As returned by `{spec.function_name("loss")}`.
grad : ndarray
    As returned by `{spec.function_name("grad")}`."""
    return """\
grad, hess : ndarray
    Arrays of the logits' shape and the result dtype."""


def docstring(spec: LossSpec, kind: str) -> str:
    """The numpydoc docstring of one function (indented as in source)."""
    part = spec.docs[kind]
    parameters = [p.doc for p in spec.signature_parameters(kind) if p.name != "out"]
    if part.out:
        parameters.append("out : ndarray, optional\n" + textwrap.indent(part.out, "    "))
    sections = [part.summary]
    if part.extended:
        sections.append(part.extended)
    sections.append("Parameters\n----------\n" + "\n".join(parameters))
    sections.append("Returns\n-------\n" + (part.returns or standard_returns(spec, kind)))
    if part.see_also:
        sections.append("See Also\n--------\n" + part.see_also)
    notes = spec.notes if part.notes is None else part.notes
    if notes:
        sections.append(notes)
    sections.append("Examples\n--------\n" + part.examples)
    return "\n\n".join(sections) + "\n"


def source(spec: LossSpec, kind: str) -> str:
    """The Python source of one public function: its signature, and a body
    that hands every argument to the family's entry."""
    mode, returned = KINDS[kind]
    parameters = spec.signature_parameters(kind)
    items: List[str] = []
    star_placed = False
    for p in parameters:
        if p.keyword_only and not star_placed:
            items.append("*")
            star_placed = True
        items.append(p.name if p.default is REQUIRED else f"{p.name}={p.default!r}")
    # the entry's arguments, passed by position (a call with keywords costs
    # more): the user's, the spec's fixed ones, and the entry's defaults between
    given = {p.name: p.name for p in parameters}
    given.update((name, repr(value)) for name, value in spec.fixed.items())
    if kind == "grad_hess":
        given["reduction"] = repr("none")
    entry = list(inspect.signature(spec.entry).parameters.values())[1:]  # after mode
    names = [p.name for p in entry]
    unknown = set(given) - set(names)
    if unknown:
        raise TypeError(f"{spec.name}: the entry takes no {sorted(unknown)}")

    def values(upto: int) -> List[str]:
        arguments = []
        for argument in entry[:upto]:
            if argument.name not in given and argument.default is argument.empty:
                raise TypeError(f"{spec.name}: no value for the entry's {argument.name}")
            arguments.append(given.get(argument.name, repr(argument.default)))
        return arguments

    arguments = ", ".join(values(max(names.index(name) for name in given) + 1))
    head = f"def {spec.function_name(kind)}({', '.join(items)}):\n"
    if spec.plain is None:
        return head + f"    return _entry({mode!r}, {arguments}){returned}\n"
    plain_arguments = ", ".join(values(names.index("loss_into")))
    return (head
            + f"    result = _plain({mode!r}, {plain_arguments})\n"
            + "    if result is NotImplemented:\n"
            + f"        result = _entry({mode!r}, {arguments}, plain_tried=True)\n"
            + f"    return result{returned}\n")


def define(spec: LossSpec, namespace: Dict[str, Any]) -> None:
    """Make the spec's public functions in `namespace`, a module's globals.

    The functions are compiled from `source` in that module's namespace: they
    are that module's own functions (doctest, pickle and help find them
    there) and cost a call no more than functions written out by hand.
    """
    entry = namespace.setdefault("_entry", spec.entry)
    if entry is not spec.entry:
        raise ValueError(f"{namespace['__name__']}: two families' entries in one module")
    if spec.plain is not None and namespace.setdefault("_plain", spec.plain) is not spec.plain:
        raise ValueError(f"{namespace['__name__']}: two families' plain calls in one module")
    for kind in spec.docs:
        name = spec.function_name(kind)
        exec(compile(source(spec, kind), f"<focal spec {spec.name}: {name}>", "exec"), namespace)
        function = namespace[name]
        function.__doc__ = docstring(spec, kind) if sys.flags.optimize < 2 else None
        function.__focal_spec__ = spec


# --- typing stubs ---------------------------------------------------------

# the stub overloads of every loss: (reduction's type, its default, out's
# type, returned type).  A reduction that reduces gives a NumPy scalar,
# "none" an array; a reduction not known from the call, the union.
_OVERLOADS = {
    "loss": [("{scalar}", " = ...", "None", "Scalar"),
             ('Literal["none"]', "", "Optional[np.ndarray]", "Array"),
             ("{all}", "", "Optional[np.ndarray]", "Union[Scalar, Array]")],
    "loss_and_grad": [("{scalar}", " = ...", "Optional[np.ndarray]", "Tuple[Scalar, Array]"),
                      ('Literal["none"]', "", "Optional[np.ndarray]", "Tuple[Array, Array]"),
                      ("{all}", "", "Optional[np.ndarray]",
                       "Tuple[Union[Scalar, Array], Array]")],
    "grad": [("{all}", " = ...", "Optional[np.ndarray]", "Array")],
    "grad_hess": [("", "", "", "Tuple[Array, Array]")],
}

_STUB_HEADER = '''"""Typing stubs of {module}, written by focal._spec from the loss specifications:
do not edit (focal._spec.write_stubs() rewrites them)."""
from typing import Any, Literal, Optional, SupportsIndex, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from ._typing import (
    Array, Real, Reduction, Scalar, ScalarReduction, SoftmaxReduction, SoftmaxScalarReduction,
)
'''


def _stub_reduction_types(spec: LossSpec) -> Dict[str, str]:
    if "sum_over_positives" in spec.reductions:
        return {"scalar": "ScalarReduction", "all": "Reduction"}
    return {"scalar": "SoftmaxScalarReduction", "all": "SoftmaxReduction"}


def _stub_function(spec: LossSpec, kind: str) -> str:
    types = _stub_reduction_types(spec)
    variants = _OVERLOADS[kind]
    parts = []
    for reduction_type, reduction_default, out_type, returned in variants:
        lines = []
        star_placed = False
        for p in spec.signature_parameters(kind):
            if p.keyword_only and not star_placed:
                lines.append("*")
                star_placed = True
            if p.name == "reduction":
                lines.append(f"reduction: {reduction_type.format(**types)}{reduction_default}")
            elif p.name == "out":
                lines.append(f"out: {out_type} = ...")
            else:
                default = "" if p.default is REQUIRED else " = ..."
                lines.append(f"{p.name}: {p.stub}{default}")
        decorator = "@overload\n" if len(variants) > 1 else ""
        body = "".join(f"    {line},\n" for line in lines)
        parts.append(f"{decorator}def {spec.function_name(kind)}(\n{body}) -> {returned}: ...\n")
    return "".join(parts)


def _stub_plain(name: str, function: Callable[..., Any]) -> str:
    """The stub of a function written by hand, from its annotations."""
    signature = inspect.signature(function)
    items = []
    for p in signature.parameters.values():
        default = "" if p.default is p.empty else " = ..."
        items.append(f"{p.name}: {p.annotation}{default}")
    return f"def {name}({', '.join(items)}) -> {signature.return_annotation}: ...\n"


def stub_text(module_name: str) -> str:
    """The typing stub of a module that defines losses: its specs' functions
    (with the shared overloads) and its other public functions."""
    module = importlib.import_module(module_name)
    pieces = [_STUB_HEADER.format(module=module_name)]
    for name in sorted(n for n in vars(module) if not n.startswith("_")):
        value = getattr(module, name)
        if not inspect.isfunction(value) or value.__module__ != module_name:
            continue
        spec = getattr(value, "__focal_spec__", None)
        if spec is None:
            pieces.append(_stub_plain(name, value))
        else:
            pieces.append(_stub_function(spec, name[len(spec.prefix):]))
    return "\n".join(pieces)


STUB_MODULES = ("focal._sigmoid", "focal._softmax", "focal._star", "focal._poly1",
                "focal._varifocal", "focal._asymmetric", "focal._quality")


def stub_path(module_name: str) -> str:
    module = importlib.import_module(module_name)
    assert module.__file__ is not None
    return os.path.splitext(module.__file__)[0] + ".pyi"


def write_stubs() -> None:
    for module_name in STUB_MODULES:
        with open(stub_path(module_name), "w", encoding="utf-8") as file:
            file.write(stub_text(module_name))

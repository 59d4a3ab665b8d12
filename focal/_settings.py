"""Process-wide settings of the C core: threads, and the instruction set."""
from __future__ import annotations

import operator
import os
import sys
import warnings
from typing import SupportsIndex

import numpy as np

from . import _core


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_num_threads(n: SupportsIndex) -> None:
    """Set the number of threads a large call may use.

    Parameters
    ----------
    n : int
        1 to 256, a Python or NumPy integer.  Calls on fewer than about
        130,000 elements (or rows) use one thread whatever `n`.  Results are
        bitwise identical for every `n`: the work is cut into fixed chunks
        whose partial sums are combined in a fixed order.

    Examples
    --------
    >>> import focal
    >>> focal.set_num_threads(1); focal.get_num_threads()
    1
    """
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"n: expected an integer number of threads, got {n!r}")
    try:
        count = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected an integer number of threads, got {n!r}") from None
    if not 1 <= count <= 256:
        raise ValueError(f"n: expected a number of threads from 1 to 256, got {count}")
    _core.set_num_threads(count)


def get_num_threads() -> int:
    """The number of threads a large call may use (see `set_num_threads`).

    Returns
    -------
    int
        By default the number of cores this process may run on, or the value
        of the environment variable FOCAL_NUM_THREADS when it is set.

    Examples
    --------
    >>> import focal
    >>> focal.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


# The instruction sets of the C core, lowest first (src/simd.c names them).
_SIMD_LEVELS = ("baseline", "avx2", "avx512")


def _warn(message: str) -> None:
    # Raised at import, a bad setting would break `import focal` and with it
    # the unpickling of every model that holds a focal objective; a warning
    # leaves the process running on the default.  Where warnings are errors
    # (python -W error, pytest's filterwarnings = error) the warning would
    # be raised all the same: it is written to stderr instead.
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    except RuntimeWarning:
        sys.stderr.write(f"focal: RuntimeWarning: {message}\n")


def _threads_from_environment(default: int) -> int:
    """FOCAL_NUM_THREADS, or `default` when it is unset, empty or bad (with a warning)."""
    raw = os.environ.get("FOCAL_NUM_THREADS")
    setting = (raw or "").strip()
    if not setting:  # an empty variable is an unset one, as with OMP_NUM_THREADS
        return default
    # a sign and leading zeros as int() takes them ("+4", "0004": 4); at most
    # three digits after them (int() refuses strings of thousands of digits)
    digits = (setting[1:] if setting.startswith("+") else setting).lstrip("0") or "0"
    if digits.isascii() and digits.isdigit() and len(digits) <= 3 and 1 <= int(digits) <= 256:
        return int(digits)
    _warn(f"FOCAL_NUM_THREADS={raw!r} is not a whole number of threads from 1 to 256; "
          f"using the default, {default} (the cores this process may run on)")
    return default


def _simd_from_environment() -> None:
    """Caps the instruction set at FOCAL_SIMD, in any case; warns when it cannot."""
    raw = os.environ.get("FOCAL_SIMD")
    level = (raw or "").strip().lower()
    if not level:
        return
    supported = _core.supported_simd_levels()
    best = supported[-1]
    if level in supported:
        _core.set_simd_level(level)
    elif level in _SIMD_LEVELS:
        _warn(f"FOCAL_SIMD={raw!r}: this CPU does not run {level}; using the best it runs, {best}")
    else:
        _warn(f"FOCAL_SIMD={raw!r} is not an instruction set (expected one of "
              f"{', '.join(_SIMD_LEVELS)}, in any case); using the best this CPU runs, {best}")


def _initialise() -> None:
    """Applies FOCAL_NUM_THREADS (else the available cores) and FOCAL_SIMD.

    FOCAL_NUM_THREADS=n (1 to 256) sets the threads; FOCAL_SIMD=baseline,
    avx2 or avx512 caps the instruction set (to compare them).  A value that
    cannot be used gives a RuntimeWarning and the default, never an error.
    """
    _core.set_num_threads(_threads_from_environment(min(_available_cores(), 256)))
    _simd_from_environment()


_initialise()

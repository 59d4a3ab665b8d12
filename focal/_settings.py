"""Process-wide settings of the C core: threads, and the instruction set."""
from __future__ import annotations

import operator
import os

import numpy as np

from . import _core


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_num_threads(n: int) -> None:
    """Set the number of threads a large call may use.

    Parameters
    ----------
    n : int
        1 to 256.  Calls on fewer than about 130,000 elements (or rows) use
        one thread whatever `n`.  Results are bitwise identical for every `n`:
        the work is cut into fixed chunks whose partial sums are combined in
        a fixed order.

    Examples
    --------
    >>> import focal
    >>> focal.set_num_threads(1); focal.get_num_threads()
    1
    """
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"n: expected an integer number of threads, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected an integer number of threads, got {n!r}") from None
    if not 1 <= n <= 256:
        raise ValueError(f"n: expected a number of threads from 1 to 256, got {n}")
    _core.set_num_threads(n)


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


def _initialise() -> None:
    """Applies FOCAL_NUM_THREADS (else the available cores) and FOCAL_SIMD."""
    setting = os.environ.get("FOCAL_NUM_THREADS", "").strip()
    if setting:
        try:
            threads = int(setting)
        except ValueError:
            raise ValueError(
                f"FOCAL_NUM_THREADS: expected a whole number of threads, got {setting!r}"
            ) from None
        if not 1 <= threads <= 256:
            raise ValueError(f"FOCAL_NUM_THREADS: expected 1 to 256, got {threads}")
    else:
        threads = min(_available_cores(), 256)
    _core.set_num_threads(threads)
    # FOCAL_SIMD=baseline|avx2|avx512 caps the instruction set (for comparisons)
    level = os.environ.get("FOCAL_SIMD", "").strip()
    if level:
        _core.set_simd_level(level)


_initialise()

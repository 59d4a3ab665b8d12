"""python -m focal figure: the paper's Figure 1, computed with focal.

Figure 1 of Lin et al. (2017) plots the loss of one example against p_t, the
probability the model gives its ground-truth class, for gamma in
{0, 0.5, 1, 2, 5} (gamma = 0 is cross-entropy).  Each curve here is
focal.loss itself, with no alpha, evaluated at the logit
x = log(p_t / (1 - p_t)) with target 1, so sigmoid(x) = p_t.

The figure is drawn with matplotlib (the ``plot`` extra) with no display, as
a PNG, SVG or PDF file as the suffix of its path says.  Without matplotlib, a
bare ``python -m focal figure`` says how to install it and prints the same
curves as a table; asked for a file with ``--out``, it fails (exit status 2)
rather than pretend.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

import focal

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
WELL_CLASSIFIED = 0.6  # the paper marks p_t > 0.6 as well-classified examples
DEFAULT_PATH = "focal_figure1.png"
# what a write into an opened file fails with (no space, quota, size, device)
_WRITE_FAILURES = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO")
                            if hasattr(errno, name))

# The formats savefig writes from the Agg canvas with matplotlib alone (for SVG
# and PDF it hands the figure to its own vector backends), by path suffix.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
INSTALL = ('pip install "focal[plot]"        (or  pip install ".[plot]"  in a source '
           'checkout)')
INSTALL_HINT = (
    'matplotlib is not installed, so no figure was written.  Install it with\n'
    f'    {INSTALL}\n'
    'and run  python -m focal figure  again.  Meanwhile, the curves of Figure 1 as a table:'
)


def curves(p_t: np.ndarray, gammas: Sequence[float] = GAMMAS) -> Dict[float, np.ndarray]:
    """The loss FL(p_t) = -(1 - p_t)^gamma log(p_t) (no alpha) for each gamma,
    computed by focal.loss at the logit whose sigmoid is p_t, target 1.

    p_t = 0 and 1 are allowed: their logits are -inf and +inf, where focal's
    loss is exactly inf and 0.
    """
    p_t = np.asarray(p_t, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logit = np.log(p_t) - np.log1p(-p_t)  # log(p_t / (1 - p_t)) without the division
    target = np.ones_like(logit)
    return {gamma: focal.loss(logit, target, alpha=None, gamma=gamma, reduction="none")
            for gamma in gammas}


def _label(gamma: float) -> str:
    return f"gamma = {gamma:g}"


def text_table(gammas: Sequence[float] = GAMMAS) -> List[str]:
    """The curves at p_t = 0.05, 0.10, ..., 0.95, one column per gamma."""
    p_t = np.round(np.arange(1, 20) * 0.05, 2)
    values = curves(p_t, gammas)
    width = max(len(_label(g)) for g in gammas) + 2
    lines = [
        "loss FL(p_t) = -(1 - p_t)^gamma log(p_t) (alpha None; gamma = 0 is cross-entropy),",
        "computed with focal.loss (Figure 1 of Lin et al. 2017)",
        "",
        "  p_t " + "".join(f"{_label(g):>{width}}" for g in gammas),
    ]
    for i, p in enumerate(p_t):
        # four significant digits: the gamma = 5 column falls to 1e-8
        lines.append(f"  {p:.2f}" + "".join(f"{values[g][i]:>{width}.4g}" for g in gammas))
    return lines


def figure_format(path: str) -> Optional[str]:
    """The format that the suffix of `path` names ("png", "svg" or "pdf", any
    letter case), or None for any other suffix or none."""
    return FORMATS.get(os.path.splitext(path)[1].lower())


def draw(path: str, gammas: Sequence[float] = GAMMAS, file_format: str = "png") -> None:
    """Draws Figure 1, 8 x 6 inches (800 x 600 pixels as a PNG), into `path`
    in `file_format`, one of the values of FORMATS.

    Uses matplotlib's object interface (Figure + the Agg canvas), not pyplot:
    no display, no global backend switched under the caller's feet.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    p_t = np.linspace(0.0, 1.0, 1001)
    values = curves(p_t, gammas)

    figure = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colors = ["tab:blue", "tab:red", "tab:orange", "tab:purple", "tab:green"]
    for gamma, color in zip(gammas, colors * len(gammas)):
        axes.plot(p_t, values[gamma], color=color, linewidth=2, label=_label(gamma))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 5)
    axes.set_xlabel("probability of ground truth class")
    axes.set_ylabel("loss")
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)

    # the paper's annotation: the region of well-classified examples
    axes.axvspan(WELL_CLASSIFIED, 1.0, color="0.85", alpha=0.5, zorder=0)
    axes.annotate("", xy=(WELL_CLASSIFIED, 1.1), xytext=(1.0, 1.1),
                  arrowprops=dict(arrowstyle="<->", color="0.2"))
    axes.text((WELL_CLASSIFIED + 1.0) / 2, 1.2, "well-classified\nexamples",
              ha="center", va="bottom", fontsize=12)
    axes.text(0.33, 2.45, r"$\mathrm{CE}(p_t) = -\log(p_t)$" "\n"
              r"$\mathrm{FL}(p_t) = -(1 - p_t)^\gamma \log(p_t)$",
              fontsize=12, va="bottom")
    axes.set_title("Focal loss against cross-entropy (Lin et al. 2017, Figure 1), "
                   "computed with focal", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, format=file_format)


def main(args: Optional[argparse.Namespace] = None) -> int:
    """Entry point of ``python -m focal figure [--out PATH]``."""
    requested = getattr(args, "out", None)  # None: no --out given
    path = DEFAULT_PATH if requested is None else requested
    file_format = figure_format(path)
    if file_format is None:  # refused before anything is computed or written
        print(f"focal figure: --out {path!r}: expected a path ending in one of "
              f"{', '.join(FORMATS)} (the suffix picks the format)", file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if requested is not None:
            print(f"focal figure: could not write {path}: matplotlib is not installed.  Install "
                  f"it with\n    {INSTALL}\nor run  python -m focal figure  without --out to "
                  "print the curves as a table.", file=sys.stderr)
            return 2
        print(f"focal figure: {INSTALL_HINT}\n")
        print("\n".join(text_table()))
        return 0
    try:
        draw(path, file_format=file_format)
    except Exception as error:
        # a failed write is an OSError, but matplotlib's PDF writer raises
        # another error (zlib's) while it handles one (a full disk): such an
        # OSError in the chain of contexts is the failure too, where it is a
        # write's (another error raised beside an OSError stays itself)
        failed: Optional[BaseException] = error
        while failed is not None and not isinstance(failed, OSError):
            failed = failed.__context__
        if not (failed is error or (isinstance(failed, OSError)
                                    and failed.errno in _WRITE_FAILURES)):
            raise
        print(f"focal figure: could not write {path}: {failed}", file=sys.stderr)
        return 1
    size = "800 x 600 pixels" if file_format == "png" else "8 x 6 inches"
    print(f"focal figure: wrote {path} ({file_format.upper()}, {size}): the loss against p_t "
          f"for gamma in {{{', '.join(f'{g:g}' for g in GAMMAS)}}}, computed with focal.loss")
    return 0

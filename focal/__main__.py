"""python -m focal: the package's demonstrations, figure and benchmark.

Each subcommand lives in its own module, imported only when it runs.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence


def _train(args: argparse.Namespace) -> int:
    from . import _demo

    return _demo.main(args)


def _batch(args: argparse.Namespace) -> int:
    from . import _batch

    return _batch.main(args)


def _figure(args: argparse.Namespace) -> int:
    from . import _figure

    return _figure.main(args)


def _bench(args: argparse.Namespace) -> int:
    from . import _bench

    return _bench.main(args)


def _positive_int(text: str) -> int:
    """argparse type of --rounds: an integer of at least 1 (the median of no
    rounds is undefined)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m focal",
        description=(
            "Focal loss (Lin et al., RetinaNet) over NumPy arrays.  Without a command: "
            "train the same small model on synthetic dense-detection data with "
            "cross-entropy, alpha-balanced cross-entropy and focal loss, and compare."
        ),
    )
    parser.set_defaults(handler=_train)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    train = commands.add_parser(
        "train", help="the default: why focal loss exists, shown on synthetic data")
    train.set_defaults(handler=_train)

    batch = commands.add_parser(
        "batch", help="loss and gradient of one RetinaNet-sized batch, timed against NumPy")
    batch.add_argument("--rounds", type=_positive_int, default=3,
                       help="timing rounds, at least 1 (median shown; the timing stops at a "
                            "120 s budget)")
    batch.set_defaults(handler=_batch)

    figure = commands.add_parser(
        "figure", help="the paper's Figure 1 (loss against p_t for several gammas) as a PNG, "
                       "SVG or PDF")
    # None tells "no --out" from an explicit path: without matplotlib, the first
    # prints the curves as a table, the second is an error (the file is not written).
    figure.add_argument("--out", default=None, metavar="PATH",
                        help="where to write the figure, in the format its suffix names: .png, "
                             ".svg or .pdf (default: focal_figure1.png)")
    figure.set_defaults(handler=_figure)

    bench = commands.add_parser(
        "bench", help="speed against a copy pass, NumPy, PyTorch and JAX (a table)")
    bench.add_argument("--rounds", type=_positive_int, default=5,
                       help="interleaved rounds, at least 1 (median shown)")
    bench.add_argument("--quick", action="store_true",
                       help="a batch 10x smaller and fewer rounds (a smoke test)")
    bench.set_defaults(handler=_bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.handler(args)
        if sys.stdout is not None:  # (None when started with stdout closed)
            sys.stdout.flush()  # (a closed pipe shows here, not at the exit)
        return status
    except KeyboardInterrupt:
        # Ctrl-C ends a long run: a line and the shell's status for SIGINT,
        # not a traceback
        print("focal: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of the output went away (`python -m focal | head -1`):
        # stop quietly with the shell's status for SIGPIPE; what is left in
        # stdout's buffer goes nowhere, or its flush at the exit would fail
        if sys.stdout is not None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

"""python -m focal bench --quick: a smoke test of the benchmark's table.

The benchmark runs in a subprocess from a temporary folder, so the source
tree's ./focal (without its compiled extension) cannot shadow the installed
package.  Times are never checked: only that the table is there, with the
focal and copy-pass rows, and that a peer that is not installed is listed as
skipped rather than dropped.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

# importing these raises ImportError in the subprocess, as if they were not installed
_HIDE_PEERS = """
import sys
for name in ("torch", "torchvision", "jax", "jaxlib", "optax"):
    sys.modules[name] = None
from focal.__main__ import main
sys.exit(main(["bench", "--quick"]))
"""


# the table's workloads (the trailing space tells forward from forward + gradient)
_WORKLOADS = [f"{kind}, {mode}" for kind in ("sigmoid, dense targets", "sigmoid, class indices",
                                             "softmax, class indices")
              for mode in ("forward ", "forward + gradient")]


def _run(tmp_path, arguments):
    completed = subprocess.run(
        [sys.executable, *arguments], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _rows(output: str, workload_start: str):
    """The table's rows of one workload (its first row names it, the next ones continue it)."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(workload_start):
            rows = [line]
            for following in lines[index + 1:]:
                if not following.strip() or not following.startswith(" "):
                    break
                rows.append(following)
            return rows
    raise AssertionError(f"no row starting with {workload_start!r} in:\n{output}")


def _check_common(output: str):
    assert "machine:" in output and "SIMD level" in output
    header = next(line for line in output.splitlines() if line.startswith("workload"))
    assert "contender" in header and "median ms" in header and "ratio" in header
    copy = _rows(output, "memory yardstick")
    assert "copy pass" in copy[0] and "1.00x copy" in copy[0]
    for workload in _WORKLOADS:
        rows = _rows(output, workload)
        assert "focal." in rows[0] and "x copy" in rows[0]
        assert any("NumPy" in row and "x focal" in row for row in rows)
    overhead = _rows(output, "call, 1,000 elements")
    assert "np.add" in overhead[0] and any("focal.loss(" in row for row in overhead)
    assert "targets (second-generation core)" in output
    core = _rows(output, "one core, dense targets")
    assert "ns/element/core" in core[0]
    assert "WARNING" not in output, output


def test_bench_quick_without_peers(tmp_path):
    output = _run(tmp_path, ["-c", _HIDE_PEERS])
    _check_common(output)
    for workload in _WORKLOADS:
        rows = _rows(output, workload)
        assert any("PyTorch" in row and "skipped: torch not installed" in row for row in rows)
        assert any("jax" in row and "skipped: jax not installed" in row for row in rows)
    assert "SKIP  faster than PyTorch eager fwd+bwd" in output
    assert "SKIP  faster than jax.jit value_and_grad" in output


@pytest.mark.skipif(not (_installed("torch") or _installed("jax")),
                    reason="neither torch nor jax is installed: the test above covers the table")
def test_bench_quick_with_installed_peers(tmp_path):
    output = _run(tmp_path, ["-m", "focal", "bench", "--quick"])
    _check_common(output)
    rows = _rows(output, "sigmoid, dense targets, forward + gradient")
    for module, label in (("torch", "PyTorch"), ("jax", "jax")):
        row = next(row for row in rows if label in row)
        if _installed(module) and (module != "jax" or _installed("optax")):
            assert "skipped" not in row and "x focal" in row
        else:
            assert "skipped" in row


class _ScriptedClock:
    """time.perf_counter, time.process_time and time.sleep for settle(): each sleep
    advances the wall clock by its length and the process's CPU time by the next
    share in `busy` (the other threads' CPU time over the sleep's length), 0 once
    the script ends."""

    def __init__(self, busy):
        self.wall = self.cpu = 0.0
        self.busy = list(busy)
        self.sleeps = 0

    def perf_counter(self):
        return self.wall

    def process_time(self):
        return self.cpu

    def sleep(self, seconds):
        self.sleeps += 1
        self.wall += seconds
        self.cpu += seconds * (self.busy.pop(0) if self.busy else 0.0)


@pytest.mark.parametrize("busy, sleeps", [
    ([], 1),                      # nothing else running: one look
    ([1.0, 1.0, 0.9, 0.0], 4),    # a thread spinning for three looks, then idle
    ([2.0, 0.5, 0.25, 0.1], 4),   # winding down: the first look under SETTLE_BUSY ends it
])
def test_settle_waits_for_the_process_other_threads(monkeypatch, busy, sleeps):
    from focal import _bench
    clock = _ScriptedClock(busy)
    monkeypatch.setattr(_bench, "time", clock)
    waited = _bench.settle()
    assert clock.sleeps == sleeps
    assert waited == pytest.approx(sleeps * _bench.SETTLE_STEP)


def test_settle_gives_up_after_its_limit(monkeypatch):
    from focal import _bench
    clock = _ScriptedClock([1.0] * 1000)  # a thread that never stops
    monkeypatch.setattr(_bench, "time", clock)
    waited = _bench.settle()
    assert _bench.SETTLE_LIMIT < waited <= _bench.SETTLE_LIMIT + 2 * _bench.SETTLE_STEP
    assert clock.sleeps == int(round(waited / _bench.SETTLE_STEP))

"""Threads: the GIL is released during the C pass, a second call runs while a
first is in its C pass, set_num_threads(n) runs a call on n threads, and
concurrent calls on shared inputs give bitwise the serial results.

Nothing here measures time (how fast two threads go is for ``python -m
focal bench``).  Release of the GIL is shown by what another Python thread
manages to do during one long call: a thread needs the GIL to end every step
it takes, so a call that held the GIL through its C pass, with no thread
asked to drop it (a long switch interval), would let it end none.
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

import focal

ROWS, C = 100_000, 80  # 8M elements: a call takes tens of milliseconds or more
TICK = 0.0002          # seconds the ticking thread sleeps between two steps
LONG_SWITCH_INTERVAL = 10.0  # seconds: see the fixture long_switch_interval
ATTEMPTS = 3


@pytest.fixture(scope="module")
def large():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((ROWS, C), dtype=np.float32) * 3
    labels = np.full(ROWS, C, np.int64)
    labels[::37] = rng.integers(0, C, labels[::37].size)
    labels[5::101] = -1
    dense = np.zeros((ROWS, C), np.float32)
    dense[np.arange(0, ROWS, 37), labels[::37]] = 1.0
    softmax_labels = np.where(labels == C, 0, labels)  # class 0 for the background rows
    softmax_labels[labels == -1] = -100                # the softmax's ignore_index
    for a in (logits, labels, dense, softmax_labels):
        a.flags.writeable = False
    focal.loss_and_grad(logits[:10], labels[:10])  # warm up (lazy imports)
    return dict(logits=logits, labels=labels, dense=dense, softmax_labels=softmax_labels)


@pytest.fixture()
def long_switch_interval():
    """A thread waiting for the GIL asks its holder to drop it only once the
    switch interval has passed.  With 10 s no holder is asked during these
    tests: the GIL changes hands only where its holder gives it up (a sleep, a
    C call that releases it).  A call that held the GIL through its pass then
    lets no other Python thread run between the two statements around it,
    whatever the machine's speed or load."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(LONG_SWITCH_INTERVAL)
    yield
    sys.setswitchinterval(previous)


class Ticker:
    """A Python thread that takes steps (a call of `work`, if given, then a
    short sleep) and counts those it ends while the main thread is inside a
    call (`inside`, set and cleared by the main thread around it).  Ending a
    step and counting take the GIL."""

    def __init__(self, work=None):
        self.steps = 0
        self.inside = False
        self.steps_inside = 0
        self._work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            if self._work is not None:
                self._work()
            time.sleep(TICK)
            self.steps += 1
            self.steps_inside += self.inside

    def __enter__(self):
        self._thread.start()
        while self.steps < 3:  # it runs
            time.sleep(TICK)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def during(self, call):
        """The steps the thread ended during one call() made in this thread."""
        self.steps_inside = 0
        self.inside = True
        call()
        self.inside = False
        return self.steps_inside


def steps_inside(ticker, call):
    """The ticking thread's steps during call(), made up to ATTEMPTS times
    until some step falls inside one (in case the operating system leaves that
    thread without a CPU for a whole call once).  Under long_switch_interval a
    call that holds the GIL through its pass gets 0 in every attempt, on any
    machine; one that releases it lets the thread step whenever it gets a CPU
    during the pass (tens of milliseconds here)."""
    counts = []
    for _ in range(ATTEMPTS):
        counts.append(ticker.during(call))
        if counts[-1] > 0:
            break
    return counts


def gil_call(a, name):
    x, labels, dense = a["logits"], a["labels"], a["dense"]
    return {
        "loss_and_grad-labels": lambda: focal.loss_and_grad(x, labels),
        "loss_and_grad-dense": lambda: focal.loss_and_grad(x, dense),
        "loss-sum": lambda: focal.loss(x, labels, reduction="sum"),
        "grad-sum_over_positives": lambda: focal.grad(x, labels, reduction="sum_over_positives"),
        "grad_hess": lambda: focal.grad_hess(x, labels),
        "softmax_loss_and_grad": lambda: focal.softmax_loss_and_grad(x, a["softmax_labels"]),
        "star_loss_and_grad": lambda: focal.star_loss_and_grad(x, dense),
    }[name]


GIL_CALLS = ["loss_and_grad-labels", "loss_and_grad-dense", "loss-sum", "grad-sum_over_positives",
             "grad_hess", "softmax_loss_and_grad", "star_loss_and_grad"]


@pytest.mark.parametrize("call", GIL_CALLS)
def test_gil_released_during_the_pass(large, long_switch_interval, call):
    with Ticker() as ticker:
        counts = steps_inside(ticker, gil_call(large, call))
    assert counts[-1] > 0, f"{call}: another Python thread took no step while it ran in " \
                           f"{len(counts)} calls: the GIL looks held during the C pass"


def test_ticker_stops_while_a_call_holds_the_gil(long_switch_interval):
    """Control for the test above: a C call that holds the GIL (sorting a list
    of 300,000 ints, tens of milliseconds) lets the ticking thread end no step
    in any attempt."""
    data = np.random.default_rng(2).integers(0, 2**62, 300_000).tolist()
    with Ticker() as ticker:
        counts = steps_inside(ticker, lambda: sorted(data))
        assert ticker.steps >= 3
    assert counts == [0] * ATTEMPTS


def test_a_second_call_runs_during_the_pass(large, long_switch_interval):
    """Small calls from another thread keep completing while one long call is
    in its C pass: calls are neither serialised by the GIL nor by a lock of
    focal's own (with either, no small call would end inside the pass)."""
    small_x, small_t = np.array(large["logits"][:50]), np.array(large["labels"][:50])
    results = []

    def small_call():
        results.append(focal.loss_and_grad(small_x, small_t)[0])

    x, t = large["logits"], large["labels"]
    with Ticker(small_call) as ticker:
        counts = steps_inside(ticker, lambda: focal.loss_and_grad(x, t))
    assert counts[-1] > 0, f"no call completed in another thread during {len(counts)} long calls"
    expected = focal.loss_and_grad(small_x, small_t)[0]
    assert all(r.tobytes() == expected.tobytes() for r in results)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                    reason="counts the process's threads in /proc/self/task (Linux)")
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_set_num_threads_runs_that_many_threads(large, threads):
    """A call with set_num_threads(n) starts n - 1 threads besides the caller
    (the work is cut into 122 chunks of 65,536 elements), and they are gone when
    it returns.  Counted: a watching thread lists /proc/self/task all through
    the call."""
    x, t = large["logits"], large["labels"]
    box, stop = [set()], threading.Event()

    def watch():
        while not stop.is_set():
            # the set is taken before the listing: a listing made during an
            # earlier call (whose threads are gone) never lands in a later set
            target = box[0]
            target.update(os.listdir("/proc/self/task"))

    watcher = threading.Thread(target=watch, daemon=True)
    initial = focal.get_num_threads()
    counts = []
    try:
        focal.set_num_threads(threads)
        watcher.start()
        for _ in range(ATTEMPTS):  # a watcher left without a CPU may miss them once
            box[0] = seen = set()
            before = set(os.listdir("/proc/self/task"))
            focal.loss_and_grad(x, t)
            started = seen - before
            left = set(os.listdir("/proc/self/task")) - before
            counts.append(len(started))
            assert not left, f"threads still running after the call: {sorted(left)}"
            if len(started) >= threads - 1:
                break
    finally:
        stop.set()
        watcher.join()
        focal.set_num_threads(initial)
    assert counts[-1] == threads - 1, (
        f"threads started per call, by attempt: {counts} (the watcher is a Python thread: "
        "if test_gil_released_during_the_pass fails too, the GIL was held and it could not look)")


# --------------------------------------------------------------------------
# concurrent calls on shared, read-only inputs


@pytest.fixture(scope="module")
def shared():
    rng = np.random.default_rng(7)
    shape = (40, 250, 20)
    logits = rng.standard_normal(shape).astype(np.float32) * 4
    labels = rng.integers(0, shape[-1] + 1, shape[:-1])
    labels[rng.random(shape[:-1]) < 0.05] = -1
    dense = rng.random(shape).astype(np.float32) ** 8  # soft targets
    weights = rng.random(shape[:-1] + (1,))
    alpha = np.linspace(0.05, 0.95, shape[-1])
    inputs = dict(logits=logits, swapped=logits.astype(">f4"), float64=logits.astype(np.float64),
                  labels=labels, dense=dense, weights=weights, alpha=alpha)
    for a in inputs.values():
        a.flags.writeable = False
    return inputs


def _jobs(a):
    """Every public function, over both target forms and several options."""
    return {
        "loss-mean-labels": lambda out: focal.loss(a["logits"], a["labels"]),
        "loss-sum-dense-swapped": lambda out: focal.loss(a["swapped"], a["dense"], reduction="sum"),
        "loss-none-out": lambda out: focal.loss(a["float64"], a["labels"], a["alpha"], 0.5,
                                                reduction="none", out=out["float64"]),
        "grad-sop-labels": lambda out: focal.grad(a["logits"], a["labels"],
                                                  reduction="sum_over_positives"),
        "grad-mean-weights": lambda out: focal.grad(a["logits"], a["dense"], weights=a["weights"]),
        "loss_and_grad-labels": lambda out: focal.loss_and_grad(a["logits"], a["labels"], a["alpha"]),
        "loss_and_grad-dense-out": lambda out: focal.loss_and_grad(
            a["float64"], a["dense"], None, 1.0, weights=a["weights"], out=out["float64b"]),
        "loss_and_grad-swapped-sop": lambda out: focal.loss_and_grad(
            a["swapped"], a["labels"], reduction="sum_over_positives", out=out["float32"]),
        "grad_hess-labels": lambda out: focal.grad_hess(a["logits"], a["labels"], weights=a["weights"]),
        "grad_hess-dense": lambda out: focal.grad_hess(a["float64"], a["dense"], a["alpha"], 3.0),
        "prior_bias": lambda out: focal.prior_bias(0.01),
    }


def _own_outputs(a):
    shape = a["logits"].shape
    return {"float32": np.empty(shape, np.float32), "float64": np.empty(shape),
            "float64b": np.empty(shape)}


def _bits(result):
    """A bitwise fingerprint of a result: dtype, shape and raw bytes of each part
    (copied, since an out= array is refilled by the next call)."""
    items = result if isinstance(result, tuple) else (result,)
    fingerprint = []
    for item in items:
        array = np.asarray(item)
        fingerprint.append((type(item).__name__, array.dtype.str, array.shape, array.tobytes()))
    return fingerprint


def test_eight_threads_bitwise_equal_to_serial(shared):
    jobs = _jobs(shared)
    outputs = _own_outputs(shared)
    serial = {name: _bits(job(outputs)) for name, job in jobs.items()}

    threads_count, rounds = 8, 2
    barrier = threading.Barrier(threads_count)
    errors, mismatches = [], []

    def worker(index):
        try:
            own = _own_outputs(shared)
            names = list(jobs)
            order = names[index % len(names):] + names[:index % len(names)]  # vary the mix
            barrier.wait()
            for _ in range(rounds):
                for name in order:
                    if _bits(jobs[name](own)) != serial[name]:
                        mismatches.append((index, name))
        except BaseException as error:  # reported below: no silent thread deaths
            errors.append((index, repr(error)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    assert not errors, errors
    assert not mismatches, f"results differ from the serial ones: {sorted(set(mismatches))}"
    # the shared inputs were only read
    assert _bits(_jobs(shared)["loss-mean-labels"](outputs)) == serial["loss-mean-labels"]


def test_threads_raise_independently(shared):
    """Errors raised in some threads do not leak into concurrent good calls."""
    a = shared
    bad = np.array(a["labels"])
    bad.reshape(-1)[-1] = a["logits"].shape[-1] + 3
    expected = _bits(focal.loss_and_grad(a["logits"], a["labels"]))
    barrier = threading.Barrier(8)
    outcomes = {}

    def worker(index):
        barrier.wait()
        for _ in range(3):
            try:
                if index % 2:
                    focal.loss_and_grad(a["logits"], bad)
                    outcomes[index] = "no error"
                    return
                if _bits(focal.loss_and_grad(a["logits"], a["labels"])) != expected:
                    outcomes[index] = "mismatch"
                    return
            except ValueError as error:
                if index % 2 == 0 or not str(error).startswith("targets:"):
                    outcomes[index] = repr(error)
                    return
        outcomes[index] = "ok"

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes == {i: "ok" for i in range(8)}

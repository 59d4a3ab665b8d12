"""Concurrency: 16 Python threads calling every public function at once, on
shared read-only inputs, get bitwise the serial results (the boosting
objectives too: created and called in each job).

The inputs are large enough (150,000 elements; 3,000 softmax rows of 50) that
each call is cut into several chunks and runs on the core's own threads too,
so Python threads, chunk threads and the GIL hand-offs all interleave.  The
mix includes out= (each thread its own arrays, and in place on its own copy
of the logits), failing calls (whose messages must be the serial ones) and
set_num_threads / get_num_threads, called while the other threads compute:
since results do not depend on the thread count, changing it mid-flight must
not change a single bit.  tests/test_threads.py covers the sigmoid functions
with 8 threads and the GIL; this module covers every public function.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import focal
import registry

THREADS = 16
ROUNDS = 2
ROWS, C = 600, 250            # 150,000 elements: 3 chunks of 65,536
SOFT_ROWS, SOFT_C = 3_000, 50  # 3 chunks of 1,310 rows
SETTINGS = (1, 2, 3, 4)       # thread counts set while the others compute


@pytest.fixture(scope="module")
def shared():
    rng = np.random.default_rng(16)
    logits = (rng.standard_normal((ROWS, C)) * 4).astype(np.float32)
    labels = rng.integers(0, C + 1, ROWS)
    labels[rng.random(ROWS) < 0.05] = -1
    dense = (rng.random((ROWS, C)) ** 8).astype(np.float32)  # soft targets
    hard = (rng.random((ROWS, C)) < 0.05).astype(np.float32)
    soft_logits = rng.standard_normal((SOFT_ROWS, SOFT_C)) * 3
    soft_labels = rng.integers(0, SOFT_C, SOFT_ROWS)
    soft_labels[rng.random(SOFT_ROWS) < 0.05] = -100
    soft_dense = rng.dirichlet(np.ones(SOFT_C), SOFT_ROWS)
    bad_labels = labels.copy()
    bad_labels[ROWS // 2] = C + 3
    bad_soft = soft_labels.copy()
    bad_soft[-1] = SOFT_C
    inputs = dict(
        logits=logits, swapped=logits.astype(">f4"), float64=logits.astype(np.float64),
        transposed=np.asfortranarray(logits), labels=labels, dense=dense, hard=hard,
        weights=rng.random((ROWS, 1)), alpha=np.linspace(0.05, 0.95, C),
        soft_logits=soft_logits, soft_float32=soft_logits.astype(np.float32),
        soft_labels=soft_labels, soft_dense=soft_dense, row_weights=rng.random(SOFT_ROWS),
        soft_alpha=np.linspace(0.1, 1.0, SOFT_C), bad_labels=bad_labels, bad_soft=bad_soft,
        bad_hard=hard * 0.5 + 0.25, margins=logits.reshape(-1), binary=hard.reshape(-1),
        sample_weights=rng.random(ROWS * C), bad_binary=hard.reshape(-1) * 2)
    for array in inputs.values():
        array.flags.writeable = False
    return inputs


def own_arrays(a):
    """Each thread's outputs and its own writable copy of the logits."""
    return dict(out32=np.empty((ROWS, C), np.float32), out64=np.empty((ROWS, C)),
                rows64=np.empty(SOFT_ROWS), soft_out=np.empty((SOFT_ROWS, SOFT_C)).T,
                scratch=np.array(a["logits"]))


def family_jobs(a):
    """Four calls of each loss the registry adds beside the focal loss, FL* and
    the softmax (a new row of the table needs no line here): class indices,
    targets of the row's kind with weights, float64 with other parameters."""
    table = {}
    for entry in registry.LOSSES:
        if entry.family != "elementwise" or entry.name in ("sigmoid", "star"):
            continue
        kind = "dense" if "soft" in entry.target_forms else "hard"
        f, first = entry.functions, entry.params
        last = registry.params_for(entry, entry.valid_params[-1], C)
        table[f"{entry.name}_loss-labels"] = (
            lambda own, f=f, p=first: f["loss"](a["logits"], a["labels"], **p))
        table[f"{entry.name}_grad-{kind}-weights"] = (
            lambda own, f=f, p=first, kind=kind: f["grad"](a["logits"], a[kind],
                                                           weights=a["weights"], **p))
        table[f"{entry.name}_loss_and_grad-labels"] = (
            lambda own, f=f, p=last: f["loss_and_grad"](a["float64"], a["labels"],
                                                        reduction="sum", **p))
        table[f"{entry.name}_grad_hess-{kind}"] = (
            lambda own, f=f, p=last, kind=kind: f["grad_hess"](a["float64"], a[kind], **p))
    return table


def jobs(a):
    """name -> call(own arrays); every public function, failing calls included."""
    def in_place(own):
        own["scratch"][...] = a["logits"]
        return focal.loss_and_grad(own["scratch"], a["labels"], out=own["scratch"])

    def star_in_place(own):
        own["scratch"][...] = a["logits"]
        return focal.star_grad(own["scratch"], a["hard"], out=own["scratch"])

    return {
        **family_jobs(a),
        "loss-mean-labels": lambda own: focal.loss(a["logits"], a["labels"]),
        "loss-none-dense-swapped": lambda own: focal.loss(
            a["swapped"], a["dense"], None, 0.5, reduction="none"),
        "loss-none-out": lambda own: focal.loss(
            a["float64"], a["labels"], a["alpha"], reduction="none", out=own["out64"]),
        "grad-sop-fortran": lambda own: focal.grad(
            a["transposed"], a["labels"], reduction="sum_over_positives"),
        "grad-mean-weights-out": lambda own: focal.grad(
            a["logits"], a["dense"], weights=a["weights"], out=own["out32"]),
        "loss_and_grad-labels-alpha": lambda own: focal.loss_and_grad(
            a["float64"], a["labels"], a["alpha"], 3.0, reduction="sum"),
        "loss_and_grad-in-place": in_place,
        "grad_hess-labels-weights": lambda own: focal.grad_hess(
            a["logits"], a["labels"], weights=a["weights"]),
        "grad_hess-dense": lambda own: focal.grad_hess(a["float64"], a["dense"], None, 1.5),
        "prior_bias": lambda own: focal.prior_bias(0.03),
        "softmax_loss-mean": lambda own: focal.softmax_loss(a["soft_logits"], a["soft_labels"]),
        "softmax_loss-none-axis-0-out": lambda own: focal.softmax_loss(
            a["soft_logits"].T, a["soft_labels"], 0.25, axis=0, reduction="none",
            out=own["rows64"]),
        "softmax_grad-weights": lambda own: focal.softmax_grad(
            a["soft_float32"], a["soft_labels"], a["soft_alpha"], weights=a["row_weights"]),
        "softmax_grad-out": lambda own: focal.softmax_grad(
            a["soft_logits"].T, a["soft_labels"], axis=0, out=own["soft_out"]),
        "softmax_loss_and_grad-dense": lambda own: focal.softmax_loss_and_grad(
            a["soft_logits"], a["soft_dense"], None, 1.0, reduction="sum"),
        "softmax_grad_hess-weights": lambda own: focal.softmax_grad_hess(
            a["soft_logits"], a["soft_labels"], a["soft_alpha"], 1.5, weights=a["row_weights"]),
        "softmax_prior_bias": lambda own: focal.softmax_prior_bias(81, 0.02),
        "star_loss-labels": lambda own: focal.star_loss(a["logits"], a["labels"]),
        "star_grad-in-place": star_in_place,
        "star_loss_and_grad-hard-weights": lambda own: focal.star_loss_and_grad(
            a["float64"], a["hard"], a["alpha"], 2.0, 1.0, weights=a["weights"],
            reduction="sum_over_positives"),
        "xgboost_objective-weights": lambda own: focal.xgboost_objective(0.25, 2.0)(
            a["binary"], a["margins"], a["sample_weights"]),
        "lightgbm_objective": lambda own: focal.lightgbm_objective(None, 1.0)(
            a["binary"], a["margins"]),
        "xgboost_metric-weights": lambda own: focal.xgboost_metric(0.25, 2.0)(
            a["binary"], a["margins"], sample_weight=a["sample_weights"]),
        "lightgbm_metric": lambda own: focal.lightgbm_metric(None, 1.0)(
            a["binary"], a["margins"]),
        "error-loss-label": lambda own: focal.loss(a["logits"], a["bad_labels"]),
        "error-grad_hess-label": lambda own: focal.grad_hess(a["float64"], a["bad_labels"]),
        "error-softmax-label": lambda own: focal.softmax_loss_and_grad(
            a["soft_logits"], a["bad_soft"]),
        "error-star-target": lambda own: focal.star_loss(a["logits"], a["bad_hard"]),
        "error-in-place-label": lambda own: focal.grad(
            own["scratch"], a["bad_labels"], out=own["scratch"]),
        "error-objective-label": lambda own: focal.xgboost_objective()(
            a["bad_binary"], a["margins"]),
    }


def fingerprint(call, own):
    """A bitwise fingerprint of the result, or the error's type and message
    (copied: an out= array is refilled by the next call)."""
    try:
        result = call(own)
    except (TypeError, ValueError) as error:
        return ("error", type(error).__name__, str(error))
    items = result if isinstance(result, tuple) else (result,)
    return [(type(item).__name__, np.asarray(item).dtype.str, np.shape(item),
             np.asarray(item).tobytes()) for item in items]


def test_sixteen_threads_get_the_serial_results(shared):
    table = jobs(shared)
    called = {job.split("-")[0] for job in table if not job.startswith("error")}
    assert called | {"set_num_threads", "get_num_threads"} >= set(focal.__all__)
    serial = {name: fingerprint(call, own_arrays(shared)) for name, call in table.items()}
    for name, result in serial.items():
        assert (result[0] == "error") == name.startswith("error"), (name, result)
    # the messages name the argument and the first bad value in iteration order
    assert serial["error-loss-label"][2].startswith("targets:")
    assert serial["error-softmax-label"][2].startswith("labels:")
    assert str(C + 3) in serial["error-loss-label"][2]

    initial = focal.get_num_threads()
    barrier = threading.Barrier(THREADS)
    errors, mismatches, seen_settings = [], [], set()

    def worker(index):
        try:
            own = own_arrays(shared)
            names = list(table)
            order = names[index % len(names):] + names[:index % len(names)]
            barrier.wait()
            for round_ in range(ROUNDS):
                for step, name in enumerate(order):
                    if (index + step) % 5 == 0:  # change the thread count mid-flight
                        focal.set_num_threads(SETTINGS[(index + round_ + step) % len(SETTINGS)])
                    seen_settings.add(focal.get_num_threads())
                    if fingerprint(table[name], own) != serial[name]:
                        mismatches.append((index, round_, name))
        except BaseException as error:  # reported below: no silent thread deaths
            errors.append((index, repr(error)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        focal.set_num_threads(initial)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    assert not errors, errors
    assert not mismatches, f"results differ from the serial ones: {sorted(set(mismatches))}"
    assert seen_settings <= set(SETTINGS) | {initial}, seen_settings
    # the shared inputs were only read: the serial results are unchanged
    again = {name: fingerprint(call, own_arrays(shared)) for name, call in table.items()}
    assert again == serial


def test_get_and_set_num_threads_from_many_threads():
    """Concurrent set_num_threads calls leave one of the values set, and every
    get_num_threads in between returns a value that some thread set."""
    initial = focal.get_num_threads()
    barrier = threading.Barrier(THREADS)
    seen, errors = set(), []

    def worker(index):
        try:
            barrier.wait()
            for k in range(2_000):
                focal.set_num_threads(1 + (index * 7 + k) % 256)
                seen.add(focal.get_num_threads())
        except BaseException as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        final = focal.get_num_threads()
    finally:
        focal.set_num_threads(initial)
    assert not errors, errors
    assert seen <= set(range(1, 257)) and len(seen) > 1
    assert 1 <= final <= 256

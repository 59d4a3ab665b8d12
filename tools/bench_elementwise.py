"""One-core timings of the elementwise pass, in ns per element, next to a copy
pass of the same array measured in the same run (the machine is shared: the
copy is the yardstick).  Run pinned: taskset -c 0 python tools/bench_elementwise.py

Times are the calling thread's CPU time (time.thread_time_ns; focal runs on
that thread alone after set_num_threads(1)), so time spent waiting for a
shared core is not counted; --wall measures wall time instead.
"""
import argparse
import time

import numpy as np

import focal
from focal import _core


CLOCK = time.thread_time_ns


def median_ns(function, elements, repeats):
    function()  # first touch of any output
    times = []
    for _ in range(repeats):
        start = CLOCK()
        function()
        times.append(CLOCK() - start)
    return float(np.median(times)) / elements


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--shape", default="2,100000,80")
    parser.add_argument("--wall", action="store_true")
    arguments = parser.parse_args()
    global CLOCK
    if arguments.wall:
        CLOCK = time.perf_counter_ns
    focal.set_num_threads(1)
    shape = tuple(int(n) for n in arguments.shape.split(","))
    rng = np.random.default_rng(0)
    x32 = rng.normal(0.0, 3.0, shape).astype(np.float32)
    y32 = (rng.random(shape) < 0.1).astype(np.float32)
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)
    n = x32.size
    copy32 = np.empty_like(x32)
    copy64 = np.empty_like(x64)
    grad32 = np.empty_like(x32)
    grad64 = np.empty_like(x64)
    small_x, small_y = x32.ravel()[:1000].copy(), y32.ravel()[:1000].copy()
    r = arguments.repeats
    rows = [
        ("copy float32", lambda: np.copyto(copy32, x32), n),
        ("forward, gamma 2", lambda: focal.loss(x32, y32), n),
        ("forward+grad, gamma 2", lambda: focal.loss_and_grad(x32, y32, out=grad32), n),
        ("forward+grad, gamma 1.5", lambda: focal.loss_and_grad(x32, y32, gamma=1.5, out=grad32), n),
        ("core forward, gamma 2", lambda: _core.sigmoid_focal(x32, y32, gamma=2.0, alpha=0.25), n),
        ("core forward+grad, gamma 2", lambda: _core.sigmoid_focal(
            x32, y32, gamma=2.0, alpha=0.25, grad_out=grad32, grad_divisor=float(n)), n),
        ("copy float64", lambda: np.copyto(copy64, x64), n),
        ("float64 forward+grad, gamma 2", lambda: focal.loss_and_grad(x64, y64, out=grad64), n),
    ]
    for name, function, elements in rows:
        print(f"{name:32s} {median_ns(function, elements, r):7.3f} ns/element")
    small = [("small np.add 1000", lambda: np.add(small_x, small_y)),
             ("small focal.loss 1000", lambda: focal.loss(small_x, small_y)),
             ("small core 1000", lambda: _core.sigmoid_focal(small_x, small_y, gamma=2.0))]
    for name, function in small:
        print(f"{name:32s} {median_ns(function, 1, 2000) / 1000:7.3f} us")


if __name__ == "__main__":
    main()

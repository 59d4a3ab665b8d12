"""Prints the README's accuracy table: the worst error of every result against
the high-precision (mpmath) references of the test suite, in ULP.

Run from the repository root with the package installed:
    python tests/accuracy_table.py
The tests assert the bounds; this script only reports the measured worst cases.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))]

import test_accuracy  # noqa: E402
import test_softmax_accuracy  # noqa: E402
import test_star  # noqa: E402

DTYPES = (np.float32, np.float64)


def sigmoid_rows():
    rows = []
    for gammas, label in (((0.0, 0.5, 1.0, 1.5, 2.0), "0 to 2"), ((3.0, 4.0, 5.0), "3 to 5")):
        worst = {(name, dtype): 0.0 for name in ("loss", "grad", "hess") for dtype in DTYPES}
        for dtype in DTYPES:
            for gamma in gammas:
                for y in (0.0, 1.0):
                    errors = test_accuracy._errors(dtype, y, gamma)
                    for name in ("loss", "grad", "hess"):
                        worst[name, dtype] = max(worst[name, dtype], errors[name][0])
        for name, what in (("loss", "loss"), ("grad", "gradient"),
                           ("hess", "second derivative (ULP / (1 + condition))")):
            rows.append((f"sigmoid {what}", label, *(worst[name, d] for d in DTYPES)))
    return rows


def softmax_rows():
    worst = {(k, d): 0.0 for k in ("loss", "grad") for d in DTYPES}
    for dtype in DTYPES:
        for gamma in test_softmax_accuracy.GAMMAS:
            loss, grad = test_softmax_accuracy.class_index_row_errors(dtype, gamma)
            worst["loss", dtype] = max(worst["loss", dtype], loss[0])
            worst["grad", dtype] = max(worst["grad", dtype], grad[0])
    return [("softmax loss (class indices)", "0 to 4", *(worst["loss", d] for d in DTYPES)),
            ("softmax gradient (ULP of the larger of abs(g_j) and eps times the row's largest)", "0 to 4",
             *(worst["grad", d] for d in DTYPES))]


def star_rows():
    worst = {(k, d): 0.0 for k in ("loss", "grad") for d in DTYPES}
    for dtype in DTYPES:
        for gamma, beta in test_star.SETTINGS:
            errors = test_star.grid_errors(dtype, gamma, beta)
            for k in ("loss", "grad"):
                worst[k, dtype] = max(worst[k, dtype], errors[k][0])
    return [("FL* loss", "0.5 to 4", *(worst["loss", d] for d in DTYPES)),
            ("FL* gradient", "0.5 to 4", *(worst["grad", d] for d in DTYPES))]


def main():
    print("| result | gamma | float32 | float64 |")
    print("|---|---|---|---|")
    for name, gammas, f32, f64 in sigmoid_rows() + softmax_rows() + star_rows():
        print(f"| {name} | {gammas} | {f32:.2f} | {f64:.2f} |")


if __name__ == "__main__":
    main()

"""Derives the polynomial coefficients of the float32-result elementary functions
of src/vector_math.h, and checks their error bounds.

    python tools/float32_polynomials.py [--degrees]     (about a minute)

Each polynomial is a weighted minimax (Remez) fit in 200-bit mpmath arithmetic,
with the error measured relative to the function itself; the coefficients are
then rounded to double and the bound re-measured with the rounded coefficients
(exactly, on a dense grid plus the extrema).  Evaluation rounding in double
adds a few units of 2^-53, far below these bounds.

  exp:   e^r = 1 + r + r^2 P(r),   |r| <= ln2/2 (+ a margin for the rounding of
         the reduction), P of degree 7 (total degree 9);
  log1p: log(1 + e) = 2 atanh(s) = 2s + s z Q(z),  s = e / (2 + e), z = s^2,
         e in [0, 1], so z in [0, 1/9]; Q of degree 6.
"""
from __future__ import annotations

import sys

import mpmath
from mpmath import mp, mpf

mp.prec = 200


def remez(h, w, lo, hi, degree, iterations=30, grid=4000):
    """Coefficients c[0..degree] of P minimising max |w(x) (P(x) - h(x))| on [lo, hi]."""
    n = degree + 2
    # Chebyshev points of the first kind: interior, and never where w vanishes
    nodes = [(lo + hi) / 2 - (hi - lo) / 2 * mpmath.cos(mpmath.pi * (2 * i + mpf(0.9)) / (2 * n)) for i in range(n)]
    xs = [lo + (hi - lo) * (mpf(i) + mpf(1) / 3) / (grid + 1) for i in range(grid + 1)]
    for _ in range(iterations):
        # P(x_i) - h(x_i) = (-1)^i E / w(x_i)
        a = mpmath.matrix(n, n)
        b = mpmath.matrix(n, 1)
        for i, x in enumerate(nodes):
            for j in range(degree + 1):
                a[i, j] = x ** j
            a[i, degree + 1] = (-1) ** i / w(x)
            b[i] = h(x)
        sol = mpmath.lu_solve(a, b)
        c = [sol[j] for j in range(degree + 1)]

        def err(x):
            return w(x) * (mpmath.polyval(c[::-1], x) - h(x))

        values = [err(x) for x in xs]
        # the extrema of each run of one sign
        extrema = []
        start = 0
        for i in range(1, len(xs) + 1):
            if i == len(xs) or mpmath.sign(values[i]) != mpmath.sign(values[start]):
                k = max(range(start, i), key=lambda j: abs(values[j]))
                extrema.append(k)
                start = i
        while len(extrema) > n:
            # drop the smaller of the end extrema
            if abs(values[extrema[0]]) < abs(values[extrema[-1]]):
                extrema.pop(0)
            else:
                extrema.pop()
        if len(extrema) < n:
            break
        nodes = [xs[k] for k in extrema]
    return c


def measured_error(h, w, lo, hi, c, grid=20000):
    xs = [lo + (hi - lo) * mpf(i) / grid for i in range(grid + 1)]
    return max(abs(w(x) * (mpmath.polyval(c[::-1], x) - h(x))) for x in xs)


def as_double(c):
    return [mpf(float(v)) for v in c]


def exp_fit(degree=6):
    # the reduction r = -a - k ln2 is off by at most a few ulp of 746 from [-ln2/2, ln2/2]
    half = mpmath.log(2) / 2 + mpf(2) ** -40

    def h(r):
        if abs(r) < mpf(2) ** -30:
            return mpf(1) / 2 + r / 6 + r * r / 24 + r ** 3 / 120
        return (mpmath.exp(r) - 1 - r) / (r * r)

    def w(r):
        return r * r / mpmath.exp(r)

    c = remez(h, w, -half, half, degree)
    cd = as_double(c)
    return c, measured_error(h, w, -half, half, c), measured_error(h, w, -half, half, cd)


def log1p_fit(degree=6):
    top = mpf(1) / 9

    def l(z):
        s = mpmath.sqrt(z)
        return 2 * mpmath.atanh(s)

    def h(z):
        if z < mpf(2) ** -60:
            return mpf(2) / 3 + 2 * z / 5 + 2 * z * z / 7
        s = mpmath.sqrt(z)
        return (l(z) - 2 * s) / (s * z)

    def w(z):
        if z == 0:
            return mpf(0)
        s = mpmath.sqrt(z)
        return s * z / l(z)

    c = remez(h, w, mpf(0), top, degree)
    cd = as_double(c)
    return c, measured_error(h, w, mpf(0), top, c), measured_error(h, w, mpf(0), top, cd)


def main(argv):
    """Prints the #define lines of src/vector_math.h and the bounds; with
    --degrees, the neighbouring degrees too (what one more or one less costs)."""
    chosen = {"EXP_P": (exp_fit, 7), "LOG1P_Q": (log1p_fit, 6)}
    for prefix, (fit, degree) in chosen.items():
        degrees = (degree - 1, degree, degree + 1) if "--degrees" in argv else (degree,)
        for d in degrees:
            c, e, ed = fit(d)
            print(f"/* {prefix}, degree {d}: minimax relative error 2^{float(mpmath.log(e, 2)):.1f}, "
                  f"with the coefficients rounded to double 2^{float(mpmath.log(ed, 2)):.1f} */")
            if d == degree:
                for i, v in enumerate(c):
                    print(f"#define {prefix}{i} {float(v):.17e}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Derives the constants of exp_fine (src/vector_math.h) and checks the header's.

    python tools/exp_fine_table.py          (prints them)
    python tools/exp_fine_table.py --check  (exits 1 unless the header holds them)

exp_fine reduces a = k ln2/64 + r.  ln2/64 = c1 + c2 + c3, c1 and c2 of 36
significant bits each, so that k c1 and k c2 are exact for |k| < 2^17 (|a| <= 746
gives |k| <= 68,900), c3 the rest rounded to double.  The table holds 2^(j/64),
j = 0..63, in double-double: the nearest double, then the nearest double to what
it leaves (together within 2^-106 relatively).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from mpmath import mp, mpf

mp.prec = 300


def rounded(x, bits: int) -> float:
    """x rounded to `bits` significant bits."""
    exponent = int(mp.floor(mp.log(abs(x), 2)))
    unit = mpf(2) ** (exponent - bits + 1)
    return float(mp.nint(x / unit) * unit)


def constants() -> tuple[list[float], list[tuple[float, float]]]:
    step = mp.log(2) / 64
    c1 = rounded(step, 36)
    c2 = rounded(step - c1, 36)
    c3 = float(step - c1 - c2)
    table = []
    for j in range(64):
        value = mpf(2) ** (mpf(j) / 64)
        high = float(value)
        table.append((high, float(value - high)))
    return [c1, c2, c3, float(64 / mp.log(2))], table


def in_header() -> tuple[list[float], list[tuple[float, float]]]:
    text = (Path(__file__).resolve().parent.parent / "src" / "vector_math.h").read_text()
    body = text[text.index("exp_fine(dd a)"):]
    body = body[:body.index("\n}\n")]
    c = [float.fromhex(re.search(name + r" = (\S+?)[,;]", body).group(1))
         for name in ("c1", "c2", "c3")]
    c.append(float.fromhex(re.search(r"a\.hi \* (\S+) \+ ROUNDING_SHIFT", body).group(1)))
    table_text = text[text.index("exp_fine_table[64] = {"):]
    table_text = table_text[:table_text.index("};")]
    pairs = re.findall(r"\{(\S+), (\S+)\}", table_text)
    return c, [(float.fromhex(h), float.fromhex(lo)) for h, lo in pairs]


def main() -> int:
    c, table = constants()
    if "--check" not in sys.argv:
        print("c1, c2, c3, 64/ln2:", ", ".join(v.hex() for v in c))
        for high, low in table:
            print("    {%s, %s}," % (high.hex(), low.hex()))
        return 0
    header_c, header_table = in_header()
    good = header_c == c and header_table == table
    print("the header's constants and table", "match" if good else "DIFFER")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())

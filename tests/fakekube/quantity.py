"""resource.Quantity parsing and canonical printing.

The real API server re-serialises quantities in canonical form ("0.5" -> "500m",
"1024Mi" -> "1Gi"), so a client that compares what it sent with what it read
back must cope with that; the fake does the same to keep such code honest.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {0: ""} | {v: k for k, v in _BINARY.items()}
_RE = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")


class QuantityError(ValueError):
    pass


def parse(text: str) -> tuple[Fraction, str]:
    """Returns (value, format) with format one of BinarySI, DecimalSI, DecimalExponent."""
    m = _RE.match(str(text).strip())
    if not m:
        raise QuantityError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    sign, digits, suffix = m.group(1), m.group(2), m.group(3) or ""
    value = Fraction(digits)
    if suffix in _BINARY:
        value *= 1024 ** _BINARY[suffix]
        fmt = "BinarySI"
    elif suffix[:1] in ("e", "E"):
        value *= Fraction(10) ** int(suffix[1:])
        fmt = "DecimalExponent"
    else:
        value *= Fraction(10) ** _DECIMAL[suffix]
        fmt = "DecimalSI"
    return (-value if sign == "-" else value), fmt


def value_of(text: object) -> Fraction:
    if isinstance(text, (int, float)):
        return Fraction(text)
    return parse(str(text))[0]


def canonical(text: object) -> str:
    """Quantity.String() after a round trip through the API server."""
    if isinstance(text, (int, float)):
        text = str(text)
    return format_quantity(*parse(str(text)))


def format_quantity(value: Fraction, fmt: str = "DecimalSI") -> str:
    """Print ``value`` in canonical form for the format (BinarySI, DecimalSI, DecimalExponent)."""
    negative = value < 0
    value = abs(value)
    # Precision below nano is rounded up (resource.Quantity keeps at most 9 decimals).
    nanos = value * 10**9
    if nanos.denominator != 1:
        value = Fraction(int(nanos) + 1, 10**9)
    if fmt == "BinarySI" and (value < 1024 or value.denominator != 1):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        power = 0
        n = int(value)
        while power < 6 and n and n % 1024 == 0:
            n //= 1024
            power += 1
        out = f"{n}{_BINARY_SUFFIX[power]}"
    else:
        exp = -9
        n = value * 10**9
        while exp < 18 and n and n % 1000 == 0:
            n /= 1000
            exp += 3
        n = int(n)
        if n == 0:
            exp = 0
        out = (f"{n}e{exp}" if exp else str(n)) if fmt == "DecimalExponent" else f"{n}{_DECIMAL_SUFFIX[exp]}"
    return f"-{out}" if negative and out != "0" else out

"""Kubernetes resource quantities ("500m", "8Gi", "1e3") as exact numbers.

Used to compare a request with a profile's maximum and to check memory strings before anything
is sent to the API server, so a typo is refused with a clear line instead of a 422.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_RE = re.compile(r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                 r"(?:(?P<exp>[eE][-+]?[0-9]+)|(?P<suf>[KMGTPE]i|[numkMGTPE]))?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the quantity as a Decimal in base units; ValueError if it is not a quantity."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _RE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"{value!r} is not a quantity")
    try:
        number = Decimal(m.group("num"))
        if m.group("exp"):
            return number * (Decimal(10) ** int(m.group("exp")[1:]))
        return number * _SUFFIX[m.group("suf") or ""]
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a quantity") from None


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def format_bytes(value: Decimal | int) -> str:
    """Shortest exact binary-suffixed form (8589934592 -> '8Gi'); plain bytes otherwise."""
    n = int(value)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIX[suffix])
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)

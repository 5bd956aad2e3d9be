"""Kubernetes times <-> seconds since the epoch, without datetime, calendar or locale.

A pod's times (``creationTimestamp``, ``startedAt``...) are read on every status poll, and
``calendar`` imports ``locale`` (~4 ms), so the Gregorian arithmetic is done here by hand.
Pure functions: the clock is always passed in.
"""

import time
from typing import Any, Optional

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"  # what the API server writes and ExecCredential expects


def timestamp(value: Any) -> Optional[float]:
    """Seconds since the epoch of a Kubernetes RFC 3339 time (``...Z``, optional fraction); None if not one."""
    if not isinstance(value, str) or len(value) < 20 or value[4::3][:5] != "--T::":
        return None
    digits = value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]
    if not (digits.isascii() and digits.isdigit()):
        return None
    year, month, day, hour, minute, second = (int(digits[i:i + n]) for i, n in
                                              ((0, 4), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2)))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60):
        return None
    base = ((days_since_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    frac = value[19:].rstrip("Z")
    if frac.startswith(".") and frac[1:].isdigit():
        return base + float(frac)
    return float(base)


def days_since_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a Gregorian date: calendar.timegm's arithmetic without importing calendar
    (and locale with it: ~4 ms of every status poll).  March-based years put the leap day last."""
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def rfc3339(seconds: float) -> str:
    """``seconds`` since the epoch as a Kubernetes time, e.g. ``2025-01-01T00:00:00Z`` (whole seconds)."""
    return time.strftime(RFC3339, time.gmtime(seconds))

"""Kubernetes times by hand (no calendar, no datetime): the same answers as the standard library's."""

from __future__ import annotations

import calendar
import datetime

from hypothesis import given
from hypothesis import strategies as st

from ood_k8s.core.timefmt import days_since_epoch, rfc3339, timestamp


@given(st.integers(min_value=0, max_value=253402300799))  # 1970 .. 9999-12-31T23:59:59Z
def test_a_written_time_reads_back(seconds: int) -> None:
    assert timestamp(rfc3339(seconds)) == seconds


@given(st.dates())
def test_days_are_calendar_timegm_days(day: datetime.date) -> None:
    assert days_since_epoch(day.year, day.month, day.day) * 86400 == calendar.timegm(day.timetuple())


def test_what_is_not_a_kubernetes_time_is_none() -> None:
    assert [timestamp(v) for v in ("", "2025-13-01T00:00:00Z", "2025-01-01 00:00:00Z", "２０２５-01-01T00:00:00Z",
                                   20250101, None)] == [None] * 6
    assert timestamp("2025-01-01T00:00:00.5Z") == 1735689600.5

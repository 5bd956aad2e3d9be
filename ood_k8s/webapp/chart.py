"""GPU-hour budgets -> the geometry of a small horizontal bar chart, drawn as inline SVG by the
template (no script, no external asset).  Pure: the template only places what this computes.

One bar per budget: the used part filled, the rest of the budget outlined; a budget without a
limit gets a dashed bar scaled to the largest such use shown, and says "no limit".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

WIDTH = 560          # viewBox units; the SVG scales to its container (a phone's width too)
LABEL = 200          # room for the label at the left (longer labels are cut with …)
BAR_HEIGHT = 22
GAP = 14
TOP = 8


class Bar(NamedTuple):
    course: str
    used: float
    limit: float | None   # None: no limit
    left: float | None
    y: int
    used_width: float
    limit_width: float
    over: bool            # used up (or beyond)
    text: str             # what the bar says, also its accessible name


class Chart(NamedTuple):
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


def _hours(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value else "0"


def _field(b: Any, name: str) -> Any:
    return b.get(name) if isinstance(b, dict) else getattr(b, name, None)


def chart(budgets: Iterable[Any]) -> Chart:
    """``budgets``: objects or dicts with ``course`` (the bar's label), ``used_gpu_hours``, ``limit``, ``left``.

    Each limited bar is its own budget's full width (so "how much of mine is left" reads at a glance,
    whatever the sizes of the others); bars without a limit are scaled to the largest use among them.
    """
    items = [(str(_field(b, "course")), float(_field(b, "used_gpu_hours") or 0), _field(b, "limit"),
              _field(b, "left")) for b in budgets]
    span = WIDTH - LABEL - 8
    unlimited_max = max([u for _, u, lim, _ in items if not lim] + [1e-9])
    bars = []
    for i, (course, used, limit, left) in enumerate(items):
        lim = float(limit) if limit else None
        if lim is None:
            text = f"{course}: {_hours(used)} GPU-hours used, no limit"
            fraction, lft = used / unlimited_max, None
        else:
            lft = max(0.0, float(left) if left is not None else lim - used)
            text = f"{course}: {_hours(used)} of {_hours(lim)} GPU-hours used, {_hours(lft)} left"
            fraction = min(used, lim) / lim
        bars.append(Bar(course, used, lim, lft, TOP + i * (BAR_HEIGHT + GAP), used_width=round(span * fraction, 1),
                        limit_width=float(span), over=lim is not None and used >= lim, text=text))
    height = TOP * 2 + max(1, len(bars)) * (BAR_HEIGHT + GAP)
    return Chart(WIDTH, height, LABEL, BAR_HEIGHT, bars)

"""Usage reports: entries in, rows per user and course out, as a table, JSON or CSV (pure functions).

**Cost estimate.**  A session pays its share of its node for as long as it ran:
``usage.prices[instance type] x share x hours``, where the share (recorded with the entry, from the
node's capacity) is the session's GPUs over the node's GPUs -- a GPU is the scarce part and a GPU node
is priced for them -- else its CPU request over the node's CPUs.  A session whose node's instance type
has no price, or whose node was not known when it was recorded (running sessions have none yet), has
no estimate: its row says how many sessions are unpriced rather than pretending they cost nothing.

Windows (``--since``/``--until``) clip each session to the window, so a session running across the
boundary counts the part inside it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from ood_k8s.usage.entry import Entry


class Row(NamedTuple):
    user: str
    course: str
    sessions: int
    running: int
    gpu_hours: float
    cpu_hours: float
    idle_hours: float  # granted time given back by idle reclaims
    cost: float  # estimate of the priced sessions
    unpriced: int  # sessions without an estimate

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self._asdict().items()}


COLUMNS = Row._fields


def window(entries: Iterable[Entry], since: float | None = None, until: float | None = None) -> list[Entry]:
    """The entries overlapping [since, until), each clipped to it."""
    out = []
    lo = since if since is not None else float("-inf")
    hi = until if until is not None else float("inf")
    for e in entries:
        if e.end < lo or e.start >= hi:
            continue
        out.append(e._replace(start=max(e.start, lo), end=min(e.end, hi)) if e.start < lo or e.end > hi else e)
    return out


def select(entries: Iterable[Entry], course: str | None = None, user: str | None = None) -> list[Entry]:
    return [e for e in entries if (course is None or e.course == course) and (user is None or e.user == user)]


def cost(e: Entry, prices: dict[str, float]) -> float | None:
    """The estimate of one session (None: no price or no share known)."""
    price = prices.get(e.instance) if e.instance else None
    if price is None or e.share <= 0:
        return None
    return price * e.share * e.hours


def _row(user: str, course: str, group: list[Entry], prices: dict[str, float]) -> Row:
    # One loop, each session's hours computed once: a term's report sums tens of thousands.
    running = unpriced = 0
    gpu = cpu = idle = spent = 0.0
    for e in group:
        hours = max(0.0, e.end - e.start) / 3600.0
        gpu += e.gpus * hours
        cpu += e.cpu * hours
        idle += e.idle
        running += e.running
        price = prices.get(e.instance) if e.instance and e.share > 0 else None
        if price is None:
            unpriced += 1
        else:
            spent += price * e.share * hours
    return Row(user, course, len(group), running, gpu, cpu, idle / 3600.0, spent, unpriced)


def rows(entries: Iterable[Entry], prices: dict[str, float], by: tuple[str, ...] = ("user", "course")) -> list[Row]:
    """One row per distinct value of ``by`` (fields of Entry: user, course), sorted by them."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        key = (e.user if "user" in by else "", e.course if "course" in by else "")
        groups.setdefault(key, []).append(e)
    return [_row(u, c, g, prices) for (u, c), g in sorted(groups.items())]


def total(entries: Iterable[Entry], prices: dict[str, float]) -> Row:
    return _row("", "", list(entries), prices)


# --- output -------------------------------------------------------------------------------------------


def _hours(value: float) -> str:
    return f"{value:,.1f}"


def table(report_rows: list[Row], overall: Row, currency: str) -> str:
    """Aligned columns, a total line last (what ``-o table`` prints)."""
    head = ["USER", "COURSE", "SESSIONS", "RUNNING", "GPU-HOURS", "CPU-HOURS", "IDLE-RECLAIMED-H", f"COST-{currency}"]
    body = [[r.user or "-", r.course or "-", str(r.sessions), str(r.running), _hours(r.gpu_hours),
             _hours(r.cpu_hours), _hours(r.idle_hours), f"{r.cost:,.2f}" + (f" (+{r.unpriced} unpriced)"
                                                                            if r.unpriced else "")]
            for r in report_rows]
    body.append(["TOTAL", "", str(overall.sessions), str(overall.running), _hours(overall.gpu_hours),
                 _hours(overall.cpu_hours), _hours(overall.idle_hours), f"{overall.cost:,.2f}"
                 + (f" (+{overall.unpriced} unpriced)" if overall.unpriced else "")])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    right = {2, 3, 4, 5, 6}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in [head, *body]]
    return "\n".join(lines) + "\n"


def as_data(report_rows: list[Row], overall: Row, meta: dict[str, Any]) -> dict[str, Any]:
    """What ``-o json`` and ``-o yaml`` print."""
    return {**meta, "rows": [r.as_dict() for r in report_rows], "total": overall.as_dict()}


def to_json(report_rows: list[Row], overall: Row, meta: dict[str, Any]) -> str:
    return json.dumps(as_data(report_rows, overall, meta), indent=2) + "\n"


def to_csv(report_rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report_rows:
        writer.writerow([f"{v:.3f}" if isinstance(v, float) else v for v in r])
    return out.getvalue()

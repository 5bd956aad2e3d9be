"""What a page shows of one session, from OOD's ``Info`` as JSON (the agent's ``json`` answer, or
:meth:`Info.to_dict` on the API path): pure functions, ``now`` passed in.

Only the fields named here ever reach a page or a CSV: ``native`` may carry a session's connection
info (its password), which no page shows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, NamedTuple

from ood_k8s.ood import endnote

# OOD status -> the word a card shows (Batch Connect: queued is "Starting", REFERENCE §1).
STATE_LABELS = {"queued": "Starting", "queued_held": "Held", "running": "Running", "completed": "Ended",
                "suspended": "Suspended", "undetermined": "Unknown"}


class SessionRow(NamedTuple):
    id: str
    name: str
    owner: str
    status: str            # OOD status
    state: str             # its label
    reason: str            # live reason, or why it ended
    profile: str
    gpus: int
    submitted: float | None
    time_left: int | None  # seconds before its deadline (None: not running, or unknown)
    deadline: float | None
    ceiling: float | None  # the latest any extend may reach (None: unknown)
    ended: bool


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def deadline_of(info: Mapping[str, Any]) -> float | None:
    """When the session ends: the agent's deadline, else its start plus the pod's wall time limit."""
    explicit = _number(info.get("deadline"))
    if explicit is not None:
        return explicit
    started, limit = _number(info.get("dispatch_time")), _number(info.get("wallclock_limit"))
    return started + limit if started is not None and limit is not None else None


def time_left(info: Mapping[str, Any], now: float) -> int | None:
    if info.get("status") == "completed":
        return None
    given = _number(info.get("time_left"))
    if given is not None:
        return max(0, int(given))
    end = deadline_of(info)
    return None if end is None else max(0, int(end - now))


def app_name(job_name: str) -> str:
    """``sys/dashboard/sys/jupyter`` -> ``jupyter`` (the app a Batch Connect session came from)."""
    return job_name.rstrip("/").rsplit("/", 1)[-1] or job_name


def row(info: Mapping[str, Any], now: float) -> SessionRow:
    native = info.get("native") or {}
    status = str(info.get("status") or "undetermined")
    ended = status == "completed"
    reason = endnote.cause(SimpleNamespace(native=native)) if ended else str(native.get("reason") or "")
    return SessionRow(
        id=str(info.get("id") or ""),
        name=app_name(str(info.get("job_name") or info.get("id") or "")),
        owner=str(info.get("job_owner") or ""),
        status=status,
        state=STATE_LABELS.get(status, status.capitalize()),
        reason=reason or ("the session has ended" if ended else ""),
        profile=str(native.get("profile") or info.get("queue_name") or ""),
        gpus=int(info.get("gpus") or 0),
        submitted=_number(info.get("submission_time")),
        time_left=time_left(info, now),
        deadline=None if ended else deadline_of(info),
        ceiling=_number(info.get("ceiling")),
        ended=ended,
    )


def rows(infos: Iterable[Mapping[str, Any]], now: float) -> list[SessionRow]:
    """Live sessions first (oldest first), then ended ones (newest first)."""
    out = [row(i, now) for i in infos]
    live = sorted((r for r in out if not r.ended), key=lambda r: (r.submitted or 0, r.id))
    ended = sorted((r for r in out if r.ended), key=lambda r: (-(r.submitted or 0), r.id))
    return live + ended


def by_student(infos: Iterable[Mapping[str, Any]], now: float) -> list[SessionRow]:
    """A course's sessions: live ones first, each student's together (by name), oldest first."""
    return sorted((row(i, now) for i in infos), key=lambda r: (r.ended, r.owner, r.submitted or 0, r.id))


def sentence(text: str) -> str:
    """A one-line message as a page shows it: capitalised (the adapter's messages start lowercase)."""
    return text[:1].upper() + text[1:]


def duration(seconds: int | None) -> str:
    """``1h 05m``, ``12m``, ``under a minute``: how pages state time left."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return "under a minute"
    h, rest = divmod(int(seconds), 3600)
    m = rest // 60
    return f"{h}h {m:02d}m" if h else f"{m}m"


def clock(epoch: float | None) -> str:
    """An instant as UTC ``2027-01-25 14:30 UTC`` (the portal's users span time zones)."""
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_CSV_FIELDS = ("user", "session", "app", "state", "reason", "profile", "gpus", "minutes_left", "submitted_utc")


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ would make it a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(sessions: Iterable[SessionRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_CSV_FIELDS)
    for r in sessions:
        left = "" if r.time_left is None else r.time_left // 60
        submitted = "" if r.submitted is None else clock(r.submitted).removesuffix(" UTC")
        writer.writerow([_cell(v) for v in (r.owner, r.id, r.name, r.state, r.reason, r.profile, r.gpus, left,
                                            submitted)])
    return out.getvalue()

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""How long a session lives: the wall time it is granted, the hard ceiling above it, its deadline.

Decided once, at submit (:func:`granted`): the wall time the request asks for (the site's
``jobs.default_walltime`` when it asks for none), refused above the **ceiling** -- the profile's
``max_walltime``, else the site's ``jobs.max_walltime``.

Three numbers on the pod, all counted from ONE origin, the pod's ``status.startTime`` (when a node
accepted it), so a session that waits 20 minutes in the queue loses none of its time:

* ``spec.activeDeadlineSeconds`` = the ceiling (:func:`pod_deadline`) where the site runs the agent's
  lifecycle; without it nothing would end a session at its deadline, so there it is the granted wall
  time and no extend is possible.  The kubelet counts it from
  ``status.startTime`` and ends the pod when it runs out.  Kubernetes lets a running pod's value be
  lowered, never raised (REFERENCE §11), so it is the hard limit nothing can move past -- not an
  extend, not a student patching their own pod.
* :data:`~ood_k8s.core.vocab.WALLTIME_ANNOTATION` = the granted seconds (:func:`annotations`), written
  at submit and never changed (the admission guard refuses changing it).  Relative, like the
  ceiling: at submit nobody knows when the session will start.
* :data:`~ood_k8s.core.vocab.DEADLINE_ANNOTATION` = an absolute RFC 3339 UTC instant, absent until
  the first extend writes it (:mod:`ood_k8s.sessions.extend`; a session that has not started cannot
  be extended: its clock has not begun).  From then on it replaces ``startTime + walltime``.

:func:`window` reads them back: the deadline the agent's leader ends the session at
(:mod:`ood_k8s.agent.deadline`) is the extended instant, else ``startTime + walltime``, and never
later than ``startTime + activeDeadlineSeconds`` (a pod without the annotations -- made before
extend existed, or by hand -- has its ceiling as its deadline).  :func:`extended` decides how far an
extend may move it.  The status poll reports how long a session has run (:func:`elapsed`) and how
long it has left (:func:`time_left`).

Pure functions; where time matters, ``now`` is an argument.
"""

import time
from typing import Any, Dict, NamedTuple, Optional

from ood_k8s.config import JobsConfig, Profile
from ood_k8s.core import vocab
from ood_k8s.core.errors import NotEntitled
from ood_k8s.core.timefmt import timestamp

# The agent's Event reasons (agent/deadline.py), kept here so an extend can withdraw the deadline's warning.
WARN_REASON = "DeadlineSoon"
END_REASON = "DeadlineReached"


class Lifetime(NamedTuple):
    walltime: int  # seconds granted to the session
    ceiling: int  # the most it may ever run (its profile's maximum), in seconds


class Window(NamedTuple):
    """A session's times, in seconds since the epoch (``None`` until its pod has started)."""

    started: Optional[float]  # status.startTime: the origin of every count
    deadline: Optional[float]  # when the agent ends it (extend moves it)
    ceiling: Optional[float]  # when the kubelet ends it whatever happens (startTime + activeDeadlineSeconds)
    walltime: Optional[int]  # the seconds granted at submit (None: the pod does not say)


def ceiling(jobs: JobsConfig, profile: Optional[Profile] = None) -> int:
    """The hard ceiling of a session: its profile's ``max_walltime``, else ``jobs.max_walltime``."""
    own = profile.max_walltime if profile is not None else 0
    return own or jobs.max_walltime


def default(jobs: JobsConfig) -> int:
    """The wall time of a session that asks for none: ``jobs.default_walltime``."""
    return jobs.default_walltime


def granted(requested: Optional[int], jobs: JobsConfig, profile: Optional[Profile] = None) -> Lifetime:
    """The lifetime of a session asking for ``requested`` seconds (``None``: the site's default, up to the
    profile's ceiling)."""
    top = ceiling(jobs, profile)
    walltime = min(default(jobs), top) if requested is None else requested
    if walltime > top:
        whose = f"profile '{profile.name}'" if profile is not None and profile.max_walltime else "this site"
        raise NotEntitled(f"a wall time of {hours(walltime)} is longer than {whose} allows",
                          f"ask for at most {hours(top)}")
    return Lifetime(walltime, top)


def pod_deadline(life: Lifetime, leader_runs: bool) -> int:
    """The pod's ``activeDeadlineSeconds``: the ceiling where an agent's leader ends sessions at their
    deadline (it can never be raised, so an extend stays under it); else the granted wall time itself,
    so that without an agent no session outlives what it was granted (and none can be extended)."""
    return life.ceiling if leader_runs else life.walltime


def leader_runs(agent: Any) -> bool:
    """Whether this site runs the agent's lifecycle (``agent.enabled`` and ``agent.lifecycle``)."""
    return bool(agent.enabled and agent.lifecycle)


def annotations(life: Lifetime) -> Dict[str, str]:
    """What submit records on the pod: the granted seconds (the deadline's instant is unknown until it starts)."""
    return {vocab.WALLTIME_ANNOTATION: str(life.walltime)}


def _whole(value: Any) -> Optional[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        return int(value)
    return None


def window(pod: Dict[str, Any]) -> Window:
    """The session's start, deadline and ceiling as its pod records them (see the module docstring)."""
    meta = pod.get("metadata") or {}
    ann = meta.get("annotations") or {}
    walltime = _whole(ann.get(vocab.WALLTIME_ANNOTATION))
    started = timestamp((pod.get("status") or {}).get("startTime"))
    if started is None:
        return Window(None, None, None, walltime)
    limit = _whole((pod.get("spec") or {}).get("activeDeadlineSeconds"))
    top = started + limit if limit is not None else None
    moved = timestamp(ann.get(vocab.DEADLINE_ANNOTATION))
    if moved is not None:
        deadline: Optional[float] = moved
    elif walltime is not None:
        deadline = started + walltime
    else:
        deadline = top
    if deadline is not None and top is not None:
        deadline = min(deadline, top)
    return Window(started, deadline, top, walltime)


def time_left(win: Window, now: float) -> Optional[int]:
    """Whole seconds until the deadline (0 once past it); ``None`` before the session started."""
    if win.deadline is None:
        return None
    return max(0, int(win.deadline - now))


def extended(win: Window, seconds: int, now: float) -> float:
    """The deadline ``seconds`` after the current one; NotEntitled past the ceiling."""
    if win.deadline is None or win.ceiling is None:
        raise NotEntitled("the session has not started yet, so its time has not begun to run",
                          "extend it once it is running")
    new = float(int(win.deadline) + seconds)
    if new > win.ceiling:
        room = int(win.ceiling - win.deadline)
        limit = f" (its profile's {hours(int(win.ceiling - win.started))} limit)" if win.started is not None else ""
        at = f"this session can run at most until {clock(win.ceiling, now)}{limit}"
        if room < 60:
            raise NotEntitled(f"{at}, and its deadline is already there",
                              "save your work and start a new session to continue")
        raise NotEntitled(at, f"ask for at most {span(room)}")
    return new


def elapsed(started: Optional[float], finished: Optional[float], now: float) -> Optional[int]:
    """Whole seconds a session has run (until ``finished``, else ``now``); ``None`` before it started."""
    if started is None:
        return None
    end = finished if finished is not None else now
    return max(0, int(end - started))


def hours(seconds: int) -> str:
    """``2h``, ``1h30m``: how refusals state a wall time."""
    h, rest = divmod(seconds, 3600)
    m = rest // 60
    return f"{h}h{m:02d}m" if m else f"{h}h"


def span(seconds: float) -> str:
    """``1h30m``, ``2h``, ``10 min``, ``45 s``: how long is left, for a person."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    return hours(s)


def clock(when: float, now: float) -> str:
    """A deadline in this host's local time: ``16:30`` today, else ``Mon 16:30`` (within a week) or a date."""
    local, today = time.localtime(when), time.localtime(now)
    if local[:3] == today[:3]:
        return time.strftime("%H:%M", local)
    if abs(when - now) < 6 * 86400:
        return time.strftime("%a %H:%M", local)
    return time.strftime("%Y-%m-%d %H:%M", local)

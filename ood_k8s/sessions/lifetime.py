# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""How long a session lives: the wall time it is granted, the hard ceiling above it, its deadline.

Decided once, at submit (:func:`granted`): the wall time the request asks for (the site's
``jobs.default_walltime`` when it asks for none), refused above the ceiling, ``jobs.max_walltime``.
The cluster enforces it: the pod's ``activeDeadlineSeconds`` (:func:`pod_deadline`) counts from the
pod's start, and the kubelet ends the pod when it runs out.  The status poll reports how long a
session has run (:func:`elapsed`) against that deadline.

Extending a session belongs here too, later.  A running pod's ``activeDeadlineSeconds`` may be set
or lowered but never raised (REFERENCE §11), so an extendable session would need the ceiling as the
pod's deadline and its own granted deadline under it, moved by an extend up to the ceiling.  Today
the two coincide: the pod's deadline is the granted wall time.

Pure functions; where time matters, ``now`` is an argument.
"""

from typing import NamedTuple, Optional

from ood_k8s.config import JobsConfig
from ood_k8s.core.errors import NotEntitled


class Lifetime(NamedTuple):
    walltime: int  # seconds granted to the session
    ceiling: int  # the most any session may be granted, in seconds


def ceiling(jobs: JobsConfig) -> int:
    """The hard ceiling of every session: ``jobs.max_walltime`` (no profile sets its own)."""
    return jobs.max_walltime


def default(jobs: JobsConfig) -> int:
    """The wall time of a session that asks for none: ``jobs.default_walltime``."""
    return jobs.default_walltime


def granted(requested: Optional[int], jobs: JobsConfig) -> Lifetime:
    """The lifetime of a session asking for ``requested`` seconds (``None``: the site's default)."""
    top = ceiling(jobs)
    walltime = default(jobs) if requested is None else requested
    if walltime > top:
        raise NotEntitled(f"a wall time of {hours(walltime)} is longer than this site allows",
                          f"ask for at most {hours(top)}")
    return Lifetime(walltime, top)


def pod_deadline(life: Lifetime) -> int:
    """The pod's ``activeDeadlineSeconds``: the granted wall time (nothing can extend a session yet)."""
    return life.walltime


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

"""GPU-hour budgets: what each student (and each course) has left this term, checked at submit and extend.

A course's ``gpu_hours_per_student`` caps each student's GPU-hours in the course's term, and
``gpu_hours_total`` the whole course's (0: no limit).  Used = GPUs x hours of every session labelled
with the course, clipped to the term, the running ones counted up to now (:func:`remaining`).

Three places enforce it:

* **submit** (:func:`check_submit`, called by the adapter before any object exists): the session's
  requested GPU-hours (GPUs x granted wall time) must fit what is left, else one line:
  ``1.5 GPU-hours left this term in cs109b: ask for at most 1 hour``.  The student's own identity cannot
  read the ledger, so the numbers come from the agent's socket (:mod:`.answers`, the caller named by
  the kernel; ~1 ms).  When no agent answers, submit **fails open** with a one-line note: a budget is
  a fairness rule, not a security boundary, and the agent's budget task ends the session when the
  budget runs out whatever submit let through -- refusing every GPU session while the agent restarts
  would be worse.  (A per-user Role reading one's own shard would keep the check up without an agent,
  at the price of one RoleBinding per user in the agents' namespace; not worth it while the agent
  enforces the budget anyway.)
* **extend** (:func:`check_extend`, registered in :data:`ood_k8s.sessions.extend.EXTEND_CHECKS`): the
  time from now to the new deadline, times the session's GPUs, must fit what is left.
* **while running** (:mod:`.budget_task`): warned before, ended when it runs out.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from ood_k8s.config.course import CourseConfig
from ood_k8s.core import vocab
from ood_k8s.core.errors import NotEntitled
from ood_k8s.core.identity import Identity
from ood_k8s.courses import membership
from ood_k8s.usage.index import Index, Overlay, clipped_hours

if TYPE_CHECKING:
    from ood_k8s.config import Config

STUDENT, COURSE = "student", "course"


class Budget(NamedTuple):
    course: str
    used_gpu_hours: float  # this term, running sessions counted up to now
    limit: float
    left: float
    scope: str = STUDENT  # STUDENT: the caller's own; COURSE: the whole course's
    running_gpus: int = 0  # GPUs of running sessions drawing on it now


def as_usage(ledger: Any) -> Index | Overlay:
    """What budgets read: an index (or overlay) as is, a view's index, or a list of entries indexed."""
    if isinstance(ledger, (Index, Overlay)):
        return ledger
    if ledger is None or isinstance(ledger, (list, tuple)):
        return Index(ledger or ())
    return ledger.index()  # a LedgerView


def _budget(course: CourseConfig, used: float, running: int, limit: float, scope: str) -> Budget:
    used = round(used, 4)
    return Budget(course.name, used, limit, round(max(0.0, limit - used), 4), scope, running)


def for_course(course: CourseConfig, user: str | None, ledger: Any) -> list[Budget]:
    """The budgets of ``course``: ``user``'s own (when given and limited) and the course's (when limited)."""
    usage = as_usage(ledger)
    span = membership.term(course)
    out = []
    if user is not None and course.gpu_hours_per_student > 0:
        mine = [e for e in usage.user(user) if e.course == course.name]
        out.append(_budget(course, sum(clipped_hours(e, span) for e in mine), sum(e.gpus for e in mine if e.running),
                           course.gpu_hours_per_student, STUDENT))
    if course.gpu_hours_total > 0:
        used, running = usage.course_used(course.name, span)
        out.append(_budget(course, used, running, course.gpu_hours_total, COURSE))
    return out


def remaining(cfg: Config, ident: Identity, now: float, ledger: Any) -> list[Budget]:
    """``ident``'s budgets in each course they are a student of at ``now`` (limited ones only).
    ``ledger``: entries (running sessions included), or a view of them."""
    usage = as_usage(ledger)
    return [b for c in membership.courses_of(cfg, ident, now) for b in for_course(c, ident.username, usage)]


def course_usage(cfg: Config, course: str, now: float, ledger: Any) -> list[Budget]:
    """The course's own budget (its total), for its instructors; [] when it has none or no such course."""
    c = membership.course_named(cfg, course)
    return for_course(c, None, ledger) if c is not None else []


def limited(cfg: Config, course: str) -> bool:
    c = membership.course_named(cfg, course) if course else None
    return c is not None and (c.gpu_hours_per_student > 0 or c.gpu_hours_total > 0)


# --- the one line -------------------------------------------------------------------------------------


def gpu_hours(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} GPU-hour" + ("" if text == "1" else "s")


def duration(seconds: float) -> str:
    """``1 hour``, ``3 hours``, ``40 minutes``: the most a request may ask for, rounded down."""
    if seconds >= 3600:
        h = int(seconds // 3600)
        return f"{h} hour" + ("" if h == 1 else "s")
    m = int(seconds // 60)
    return f"{m} minute" + ("" if m == 1 else "s")


def refusal(b: Budget, gpus: int, more: bool = False) -> NotEntitled:
    """``1.5 GPU-hours left this term in cs109b: ask for at most 1 hour``."""
    whose = " for the whole course" if b.scope == COURSE else ""
    left = "no GPU-hours" if b.left <= 0 else gpu_hours(b.left)
    message = f"{left} left this term in {b.course}{whose}"
    most = b.left * 3600 / max(1, gpus)
    if most < 60:
        hint = "ask your instructor for more, or choose a session type without GPUs"
    elif gpus > 1 and most < 3600:
        hint = f"ask for 1 GPU for at most {duration(b.left * 3600)}"
    else:
        hint = (f"extend it to at most {duration(most)} from now" if more else f"ask for at most {duration(most)}") \
            + (" or fewer GPUs" if gpus > 1 and not more else "")
    return NotEntitled(message, hint)


def check_request(budgets: Iterable[Budget], course: str, gpus: int, seconds: float, more: bool = False) -> None:
    """Refuse ``gpus`` GPUs for ``seconds`` in ``course`` when a budget has less left (pure)."""
    need = gpus * seconds / 3600.0
    for b in budgets:
        if b.course == course and b.limit > 0 and need > b.left + 1e-9:
            raise refusal(b, gpus, more)


# --- at submit and extend -----------------------------------------------------------------------------


def fetch(cfg: Config, ident: Identity) -> list[Budget] | None:
    """The caller's budgets from the agent (None: it did not answer)."""
    from ood_k8s.usage import answers

    return answers.ask_budgets(cfg, ident)


def _note(message: str) -> None:
    print(f"ood-k8s: {message}", file=sys.stderr)


def check_submit(cfg: Config, ident: Identity, spec: Any, now: float | None = None) -> None:
    """Refuse a GPU session of a budgeted course that does not fit (see the module docstring)."""
    course = (getattr(spec, "labels", None) or {}).get(vocab.COURSE_LABEL, "")
    if not spec.gpus or not limited(cfg, course):
        return
    budgets = fetch(cfg, ident)
    if budgets is None:
        _note(f"the GPU-hour budget of {course} was not checked (the agent did not answer); "
              "the agent ends the session if the budget runs out")
        return
    key = getattr(vocab, "WALLTIME_ANNOTATION", "")
    granted = str((getattr(spec, "annotations", None) or {}).get(key, ""))
    seconds = int(granted) if granted.isdigit() else int(spec.walltime)
    check_request(budgets, course, int(spec.gpus), seconds)


def check_extend(cfg: Config, ident: Identity, pod: dict[str, Any], new_deadline: float, now: float) -> None:
    """EXTEND_CHECKS: the session's GPUs from now to ``new_deadline`` must fit what is left -- the time
    it already ran is in "used"."""
    from ood_k8s.usage.entry import requests

    meta = pod.get("metadata") or {}
    course = (meta.get("labels") or {}).get(vocab.COURSE_LABEL, "")
    gpus = requests(pod)[0]
    if not gpus or not limited(cfg, course):
        return
    budgets = fetch(cfg, ident)
    if budgets is None:
        _note(f"the GPU-hour budget of {course} was not checked (the agent did not answer)")
        return
    check_request(budgets, course, gpus, max(0.0, new_deadline - now), more=True)


def runs_out(b: Budget, now: float) -> float:
    """When ``b`` runs out at the rate of its running sessions (inf: nothing draws on it)."""
    if b.running_gpus <= 0:
        return math.inf
    return now + b.left * 3600.0 / b.running_gpus

"""The leader task ``budget``: a running session ends when its course's GPU-hour budget runs out.

For every running GPU session of a course with a budget, the student's budget (and the course's
total) is computed from the ledger and the running sessions (:func:`ood_k8s.usage.budget.for_course`).
At the rate the budget's running sessions draw on it, it runs out at a known time: within
``usage.budget_warning`` of it each of them is warned once (``budget runs out at 15:10``, the course's
local time); once nothing is left they are ended with reason ``BudgetExhausted``.  Both through
:class:`~ood_k8s.agent.actions.Actions`, so each is an Event, a log line and the session's reason.
A repeated pass warns and ends nothing twice (Actions' own rules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ood_k8s.agent.tasks import PassContext
from ood_k8s.config.course import CourseConfig, duration_seconds
from ood_k8s.core import vocab
from ood_k8s.courses import membership
from ood_k8s.usage import budget, entry
from ood_k8s.usage.index import Overlay
from ood_k8s.usage.view import view_for

LOW, EXHAUSTED = "BudgetLow", "BudgetExhausted"


def local_time(seconds: float, timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.fromtimestamp(seconds, zone).strftime("%H:%M")


def decide(b: budget.Budget, course: CourseConfig, now: float, warn_before: float) -> tuple[str, str] | None:
    """(reason, message) for the sessions drawing on ``b`` at ``now``; None: nothing to do."""
    whose = "the course's" if b.scope == budget.COURSE else "your"
    if b.running_gpus <= 0:
        return None
    if b.left <= 0:
        return EXHAUSTED, (f"ended: {whose} GPU-hour budget in {course.name} ran out "
                           f"({budget.gpu_hours(b.used_gpu_hours)} of {budget.gpu_hours(b.limit)} used)")
    out = budget.runs_out(b, now)
    if out - now <= warn_before:
        return LOW, (f"{whose} GPU-hour budget in {course.name} runs out at {local_time(out, course.timezone)}: "
                     "save your work")
    return None


class BudgetTask:
    name = "budget"

    def __init__(self) -> None:
        # (pod uid, reason) warned by this leader: another task's warning replacing ours on the pod must not
        # make us warn again every pass.
        self.warned: set[tuple[str, str]] = set()

    def run(self, ctx: PassContext) -> None:
        prefix = ctx.cfg.users.namespace_prefix
        running: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for pod in ctx.pods:
            course = ((pod.get("metadata") or {}).get("labels") or {}).get(vocab.COURSE_LABEL, "")
            if course and not entry.ended(pod) and budget.limited(ctx.cfg, course) and entry.requests(pod)[0]:
                running.setdefault((course, entry.user_of(pod, prefix)[0]), []).append(pod)
        live = {(p.get("metadata") or {}).get("uid", "") for pods in running.values() for p in pods}
        self.warned = {w for w in self.warned if w[0] in live}
        if not running:
            return  # no read of the ledger on a pass with nothing to check
        base = view_for(ctx.client, ctx.cfg.agent.namespace, ctx.cfg.usage.refresh).index()
        entries = Overlay(base, [entry.current(p, ctx.now, prefix) for p in ctx.pods
                                 if (p.get("metadata") or {}).get("uid") not in base])
        warn_before = float(duration_seconds(ctx.cfg.usage.budget_warning))
        for (name, user), pods in sorted(running.items()):
            course = membership.course_named(ctx.cfg, name)
            if course is None:
                continue
            for b in budget.for_course(course, user, entries):
                verdict = decide(b, course, ctx.now, warn_before)
                if verdict is None:
                    continue
                reason, message = verdict
                for pod in pods:
                    uid = (pod.get("metadata") or {}).get("uid", "")
                    if reason == EXHAUSTED:
                        ctx.actions.end(pod, reason, message)
                    elif (uid, reason) not in self.warned:
                        ctx.actions.warn(pod, reason, message)
                        self.warned.add((uid, reason))


TASK = BudgetTask()

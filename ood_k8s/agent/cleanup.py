"""Leader task "cleanup": completed sessions' pods are deleted after ``agent.retention_days``.

OOD never deletes a completed session: its pod (and, by ownerReference, its Service and Secret)
stays until someone does, and a term of sessions fills etcd.  The pod is the record of how the
session ended until the usage ledger holds it, so a completed pod is deleted only

* once the ledger task has recorded it (:data:`~ood_k8s.core.vocab.RECORDED_ANNOTATION`) and it
  finished more than ``retention_days`` ago; or
* when it finished more than twice that ago (and at least a day) without being recorded: deleted
  all the same, with a warning in the log, so a broken ledger cannot fill etcd.

Only session pods (ood-k8s's managed-by label and a job label), only terminal ones (Succeeded or
Failed), never one already being deleted.  Home data is never touched: a pod's deletion is all.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.agent.actions import annotations, terminal
from ood_k8s.agent.tasks import PassContext
from ood_k8s.core import vocab
from ood_k8s.core.timefmt import timestamp

DAY = 86400.0


def is_session(pod: dict[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(vocab.MANAGED_BY_KEY) == vocab.MANAGED_BY and bool(labels.get(vocab.JOB_LABEL))


def finished_at(pod: dict[str, Any]) -> float | None:
    """When a terminal pod finished: its last container's end, else the last condition change, else
    its start or creation (a pod that never ran)."""
    st = pod.get("status") or {}
    ends = [timestamp(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or [])]
    ends = [t for t in ends if t is not None]
    if ends:
        return max(ends)
    changes = [t for t in (timestamp(c.get("lastTransitionTime")) for c in st.get("conditions") or [])
               if t is not None]
    if changes:
        return max(changes)
    return timestamp(st.get("startTime")) or timestamp((pod.get("metadata") or {}).get("creationTimestamp"))


def _days(seconds: float) -> str:
    days = seconds / DAY
    return f"{days:g} day" + ("" if days == 1 else "s")


def expired(pod: dict[str, Any], now: float, retention: float) -> tuple[str, str] | None:
    """(code, message) when ``pod`` is a completed session past its retention; None: keep it."""
    if not (is_session(pod) and terminal(pod)) or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    done = finished_at(pod)
    if done is None:
        return None
    age = now - done
    if vocab.RECORDED_ANNOTATION in annotations(pod):
        if age >= retention:
            return "Retention", f"completed session deleted after its retention of {_days(retention)}"
        return None
    if age >= max(2 * retention, DAY):
        return "RetentionUnrecorded", (f"completed session deleted {_days(age // DAY * DAY)} after it ended "
                                       "although the usage ledger has not recorded it")
    return None


class Cleanup:
    name = "cleanup"

    def run(self, ctx: PassContext) -> None:
        retention = ctx.cfg.agent.retention_days * DAY
        for pod in ctx.pods:
            verdict = expired(pod, ctx.now, retention)
            if verdict is None:
                continue
            if verdict[0] == "RetentionUnrecorded":
                meta = pod.get("metadata") or {}
                ctx.log.warning("cleanup: %s/%s is not in the usage ledger; deleted all the same (is the "
                                "ledger task failing?)", meta.get("namespace"), meta.get("name"))
            ctx.actions.delete(pod, *verdict)


TASK = Cleanup()

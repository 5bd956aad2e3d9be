"""Leader task "pending": a session stuck on a permanent cause is ended with that cause.

The status rules (:func:`ood_k8s.sessions.status.pod_state`) already call a session ``completed``
while its pod lingers when the cause cannot go away by waiting: an image that does not exist or
cannot be pulled past ``jobs.pull_failure_grace``, an invalid image name, a container that cannot be
created, an app in a crash loop.  The card says so at once; the pod, though, keeps its node, its
GPU and a place in the user's quota until someone deletes it.  This task ends it (through
:meth:`~ood_k8s.agent.actions.Actions.end`) with the very line the card shows, so the completed view
and the Event say the same.

Events are asked for only when the rules need them, as the job adapter does (they never turn a
wait into a permanent failure, but the line is then the card's to the letter).
"""

from __future__ import annotations

from typing import Any

from ood_k8s.agent.actions import ended, terminal
from ood_k8s.agent.tasks import PassContext
from ood_k8s.sessions import status

# The kubelet's waiting reason -> the code the agent ends the session with (a bounded set, for metrics).
_CODES = {"ErrImagePull": "ImageUnavailable", "ImagePullBackOff": "ImageUnavailable",
          "ErrImageNeverPull": "ImageUnavailable", "RegistryUnavailable": "ImageUnavailable",
          "InvalidImageName": "ImageUnavailable", "CrashLoopBackOff": "CrashLoop"}
_NOT_A_CAUSE = ("ContainerCreating", "PodInitializing")


def _waiting_reason(pod: dict[str, Any]) -> str | None:
    """The first container (init containers first, as the rules look) waiting for a reason of note."""
    st = pod.get("status") or {}
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason and reason not in _NOT_A_CAUSE:
            return str(reason)
    return None


def stuck(pod: dict[str, Any], events: list[dict[str, Any]] | None, now: float,
          grace: int) -> tuple[str, str] | None:
    """(code, the card's line) when ``pod`` is stuck on a permanent cause; None otherwise."""
    if terminal(pod) or ended(pod) or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    waiting = _waiting_reason(pod)
    if waiting is None:
        return None  # no container waits: nothing permanent (an exited app is the kubelet's to settle)
    state = status.pod_state(pod, events, now=now, pull_failure_grace=grace)
    if state.state != status.COMPLETED:
        return None
    return _CODES.get(waiting, "StartFailed"), state.reason


class Pending:
    name = "pending"

    def run(self, ctx: PassContext) -> None:
        grace = ctx.cfg.jobs.pull_failure_grace
        for pod in ctx.pods:
            if _waiting_reason(pod) is None:
                continue  # the common case, decided without the rules
            first = status.pod_state(pod, now=ctx.now, pull_failure_grace=grace)
            events = ctx.events_of(pod) if first.needs_events else None
            verdict = stuck(pod, events, ctx.now, grace)
            if verdict is not None:
                ctx.actions.end(pod, *verdict)


TASK = Pending()

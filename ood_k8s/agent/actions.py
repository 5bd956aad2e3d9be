"""How the leader acts on a session: warn, end, delete -- each an Event on the pod and a log line.

**Ending** a session keeps its pod as the record of how it ended: the reason goes on the pod
(:data:`~ood_k8s.core.vocab.END_REASON_ANNOTATION` and :data:`~ood_k8s.core.vocab.END_MESSAGE_ANNOTATION`,
which the status rules show on the card, in ``ood-k8s job info`` and in the completed view), then
the pod's ``activeDeadlineSeconds`` is lowered to the time it has run, so the kubelet stops it the
way it stops a session at its wall time (SIGTERM, the grace period, then ``DeadlineExceeded``).
Kubernetes lets a running pod's deadline be lowered, never raised (REFERENCE §11).  A pod no node
has started (no ``status.startTime``) has no deadline clock yet: it is deleted instead, with the
reason in its Event.

**Warning** records the one line on the pod (:data:`~ood_k8s.core.vocab.WARNING_ANNOTATION`) with its
code, so a later pass does not warn again, and as a ``Warning`` Event.

**Deleting** removes the pod; its children (Service, Secret) go with it by ownerReference.

All three are idempotent: a repeated pass (a new leader) finds the annotation or the pod gone and
does nothing twice.  The clock is injected (the pass's ``now``).  ``allowed`` (the leader election's
:meth:`~ood_k8s.agent.leader.Elector.leading`) is asked before every write: an agent that lost its
leadership mid-pass raises :class:`~ood_k8s.core.errors.NotLeader` instead of acting.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from ood_k8s.core import vocab
from ood_k8s.core.errors import NotFound, NotLeader
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.timefmt import rfc3339, timestamp


def _meta(pod: dict[str, Any]) -> dict[str, Any]:
    return pod.get("metadata") or {}


def annotations(pod: dict[str, Any]) -> dict[str, str]:
    return _meta(pod).get("annotations") or {}


def ended(pod: dict[str, Any]) -> bool:
    """The agent has already ended this session (whatever the kubelet has done since)."""
    return vocab.END_REASON_ANNOTATION in annotations(pod)


def terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def end_patch(pod: dict[str, Any], code: str, message: str, now: float) -> dict[str, Any]:
    """The merge patch that ends a started pod: its reason, and a deadline of the time it has run."""
    started = timestamp((pod.get("status") or {}).get("startTime"))
    ran = max(1, int(now - started)) if started is not None else 1
    current = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    deadline = min(ran, current) if isinstance(current, int) else ran
    return {"metadata": {"annotations": {vocab.END_REASON_ANNOTATION: code, vocab.END_MESSAGE_ANNOTATION: message}},
            "spec": {"activeDeadlineSeconds": deadline}}


def event(pod: dict[str, Any], reason: str, message: str, now: float, kind: str = "Normal",
          host: str = "") -> dict[str, Any]:
    """A core/v1 Event about ``pod`` from the agent (what ``kubectl describe pod`` lists)."""
    meta = _meta(pod)
    stamp = rfc3339(now)
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'pod')}.", "namespace": meta.get("namespace")},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"),
                           "namespace": meta.get("namespace"), "uid": meta.get("uid")},
        "reason": reason, "message": message[:1024], "type": kind,
        "source": {"component": vocab.AGENT_COMPONENT, **({"host": host} if host else {})},
        "reportingComponent": vocab.AGENT_COMPONENT, "reportingInstance": host or vocab.AGENT_COMPONENT,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


class Actions:
    """The leader's hands.  ``reason`` codes are CamelCase Event reasons (``DeadlineReached``, ``Idle``...)."""

    def __init__(self, client: KubeClient, now: float, log: logging.Logger | None = None,
                 host: str | None = None, allowed: Callable[[], bool] | None = None) -> None:
        self.client = client
        self.now = now
        self.log = log or logging.getLogger("ood_k8s.agent")
        self.host = host if host is not None else socket.gethostname()
        self.allowed = allowed
        self.done: list[tuple[str, str, str]] = []  # (action, namespace/name, reason): what this pass did

    def _may_act(self) -> None:
        if self.allowed is not None and not self.allowed():
            raise NotLeader("this agent no longer leads: the rest of the pass is left to the new leader")

    def _record(self, action: str, pod: dict[str, Any], reason: str, message: str, kind: str) -> None:
        meta = _meta(pod)
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        self.done.append((action, where, reason))
        self.log.info("%s %s: %s (%s)", action, where, message, reason)
        try:
            self.client.create(event(pod, reason, message, self.now, kind, self.host))
        except NotFound:
            pass  # the namespace went away with the pod

    def warn(self, pod: dict[str, Any], reason: str, message: str) -> bool:
        """Warn once per ``reason``; False when this warning was already given."""
        if annotations(pod).get(vocab.WARNING_REASON_ANNOTATION) == reason:
            return False
        self._may_act()
        meta = _meta(pod)
        patch = {"metadata": {"annotations": {vocab.WARNING_ANNOTATION: message,
                                              vocab.WARNING_REASON_ANNOTATION: reason}}}
        try:
            self.client.patch("Pod", meta["name"], patch, meta["namespace"])
        except NotFound:
            return False
        self._record("warned", pod, reason, message, "Warning")
        return True

    def withdraw(self, pod: dict[str, Any], reason: str, message: str) -> bool:
        """Take back the warning ``reason`` gave (the cause went away, e.g. the session is in use again),
        so the next time it comes the warning is given anew; False when that warning is not the one standing."""
        if annotations(pod).get(vocab.WARNING_REASON_ANNOTATION) != reason:
            return False
        self._may_act()
        meta = _meta(pod)
        patch = {"metadata": {"annotations": {vocab.WARNING_ANNOTATION: None, vocab.WARNING_REASON_ANNOTATION: None}}}
        try:
            self.client.patch("Pod", meta["name"], patch, meta["namespace"])
        except NotFound:
            return False
        self._record("withdrew", pod, "WarningWithdrawn", message, "Normal")
        return True

    def end(self, pod: dict[str, Any], reason: str, message: str) -> bool:
        """End a session now (see the module docstring); False when it had already ended, is being
        stopped (a delete is under way) or is gone."""
        if ended(pod) or terminal(pod) or _meta(pod).get("deletionTimestamp"):
            return False
        self._may_act()
        meta = _meta(pod)
        try:
            if (pod.get("status") or {}).get("startTime"):
                self.client.patch("Pod", meta["name"], end_patch(pod, reason, message, self.now), meta["namespace"])
            elif self.client.delete("Pod", meta["name"], meta["namespace"], missing_ok=True) is None:
                return False
        except NotFound:
            return False
        self._record("ended", pod, reason, message, "Warning")
        return True

    def delete(self, pod: dict[str, Any], reason: str, message: str) -> bool:
        """Delete an ended session's pod and (by ownerReference) its children; False when already gone."""
        self._may_act()
        meta = _meta(pod)
        if self.client.delete("Pod", meta["name"], meta["namespace"], missing_ok=True) is None:
            return False
        self._record("deleted", pod, reason, message, "Normal")
        return True

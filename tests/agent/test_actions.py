"""The leader's hands (warn, end, delete) on the fake API: each an Event the fake stores, each idempotent."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.agent import actions
from ood_k8s.agent.actions import Actions
from ood_k8s.core import vocab
from ood_k8s.core.errors import NotLeader
from tests.agent.conftest import World
from tests.conftest import ALICE

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
STARTED = "2025-06-15T15:00:00Z"  # 400 s before NOW
POD = {"metadata": {"name": "jupyter-1", "namespace": "ood-alice", "uid": "u-1"},
       "spec": {"activeDeadlineSeconds": 3600}, "status": {"phase": "Running", "startTime": STARTED}}


def test_end_patch_is_the_reason_and_a_deadline_of_the_time_run() -> None:
    assert actions.end_patch(POD, "Idle", "reclaimed after 60 min idle", NOW) == {
        "metadata": {"annotations": {vocab.END_REASON_ANNOTATION: "Idle",
                                     vocab.END_MESSAGE_ANNOTATION: "reclaimed after 60 min idle"}},
        "spec": {"activeDeadlineSeconds": 400}}
    short = {**POD, "spec": {"activeDeadlineSeconds": 60}}
    assert actions.end_patch(short, "x", "y", NOW)["spec"] == {"activeDeadlineSeconds": 60}, "never raised"
    assert actions.end_patch({**POD, "status": {}}, "x", "y", NOW)["spec"] == {"activeDeadlineSeconds": 1}


def test_event_is_a_core_v1_event_from_the_agent() -> None:
    assert actions.event(POD, "Idle", "reclaimed", NOW, "Warning", host="portal-1") == {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": "jupyter-1.", "namespace": "ood-alice"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "jupyter-1", "namespace": "ood-alice",
                           "uid": "u-1"},
        "reason": "Idle", "message": "reclaimed", "type": "Warning",
        "source": {"component": vocab.AGENT_COMPONENT, "host": "portal-1"},
        "reportingComponent": vocab.AGENT_COMPONENT, "reportingInstance": "portal-1",
        "firstTimestamp": "2025-06-15T15:06:40Z", "lastTimestamp": "2025-06-15T15:06:40Z", "count": 1}


def agent_events(world: World) -> list[tuple[str, str, str, str]]:
    return sorted((e["involvedObject"]["name"], e["type"], e["reason"], e["message"])
                  for e in world.fk.list("events", "ood-alice")
                  if e.get("reportingComponent") == vocab.AGENT_COMPONENT)


def started(world: World, job: str) -> dict[str, Any]:
    world.fk.set_pod_status("ood-alice", job, node_name="n1", phase="Running", startTime=STARTED)
    return world.client.get("Pod", job, "ood-alice")


def test_warn_end_and_delete_on_the_fake(world: World) -> None:
    running, unstarted, done = world.submit(), world.submit(), world.submit()
    pod = started(world, running)
    hands = Actions(world.client, NOW, host="portal-1")
    assert hands.warn(pod, "IdleSoon", "idle: ends in 10 min unless used") is True
    pod = world.client.get("Pod", running, "ood-alice")
    assert hands.warn(pod, "IdleSoon", "idle: ends in 10 min unless used") is False, "once per reason"
    assert hands.end(pod, "Idle", "reclaimed after 60 min idle") is True
    stored = world.client.get("Pod", running, "ood-alice")
    lifecycle_keys = (vocab.WARNING_ANNOTATION, vocab.WARNING_REASON_ANNOTATION, vocab.END_REASON_ANNOTATION,
                      vocab.END_MESSAGE_ANNOTATION)
    assert {k: v for k, v in stored["metadata"]["annotations"].items() if k in lifecycle_keys} == {
        vocab.WARNING_ANNOTATION: "idle: ends in 10 min unless used", vocab.WARNING_REASON_ANNOTATION: "IdleSoon",
        vocab.END_REASON_ANNOTATION: "Idle", vocab.END_MESSAGE_ANNOTATION: "reclaimed after 60 min idle"}
    assert stored["spec"]["activeDeadlineSeconds"] == 400
    assert hands.end(stored, "Idle", "again") is False, "already ended"

    assert hands.end(world.client.get("Pod", unstarted, "ood-alice"), "StartFailed", "no image") is True
    assert world.client.get_or_none("Pod", unstarted, "ood-alice") is None, "no deadline clock yet: deleted"

    world.fk.set_pod_status("ood-alice", done, phase="Succeeded")
    finished = world.client.get("Pod", done, "ood-alice")
    assert hands.end(finished, "Idle", "x") is False, "a finished session is not ended"
    assert hands.delete(finished, "Retention", "kept 7 days") is True
    assert hands.delete(finished, "Retention", "kept 7 days") is False, "already gone"
    assert agent_events(world) == sorted([
        (running, "Warning", "IdleSoon", "idle: ends in 10 min unless used"),
        (running, "Warning", "Idle", "reclaimed after 60 min idle"),
        (unstarted, "Warning", "StartFailed", "no image"),
        (done, "Normal", "Retention", "kept 7 days")])
    assert hands.done == [("warned", f"ood-alice/{running}", "IdleSoon"), ("ended", f"ood-alice/{running}", "Idle"),
                          ("ended", f"ood-alice/{unstarted}", "StartFailed"),
                          ("deleted", f"ood-alice/{done}", "Retention")]


def test_an_agent_that_no_longer_leads_does_nothing(world: World) -> None:
    job = world.submit()
    pod = started(world, job)
    hands = Actions(world.client, NOW, allowed=lambda: False)
    for act in (hands.warn, hands.end, hands.delete):
        with pytest.raises(NotLeader):
            act(pod, "Idle", "x")
    assert world.client.get("Pod", job, "ood-alice")["metadata"].get("annotations", {}).get(
        vocab.END_REASON_ANNOTATION) is None
    assert agent_events(world) == [] and hands.done == []


def test_the_agents_update_passes_the_pod_guard() -> None:
    """The guard (rendered, evaluated with cel-python) applies to every UPDATE in a user's namespace, the
    agent's too: ending a session (annotations, a lower activeDeadlineSeconds) and warning must pass it."""
    import copy

    from ood_k8s.config import Config
    from tests.fakekube.patch import merge_patch  # RFC 7386, as the API server applies the agent's patch
    from tests.security import vap

    cfg = Config()  # the shipped defaults, as tests/security/test_pod_guard.py
    guard = vap.pod_guard(cfg)
    ns = vap.hook_namespace(cfg, ALICE)
    old = vap.session_pod(cfg, ALICE)
    old["spec"]["nodeName"] = "ip-10-0-1-17.ec2.internal"
    old["status"] = {"phase": "Running", "startTime": STARTED}
    ended = merge_patch(copy.deepcopy(old), actions.end_patch(old, "Idle", "reclaimed after 60 min idle", NOW))
    assert ended["spec"]["activeDeadlineSeconds"] == 400
    assert guard.admit(ended, ns, operation="UPDATE", old=old) == []
    warned = merge_patch(copy.deepcopy(old), {"metadata": {"annotations": {
        vocab.WARNING_ANNOTATION: "ends in 10 min", vocab.WARNING_REASON_ANNOTATION: "DeadlineSoon"}}})
    assert guard.admit(warned, ns, operation="UPDATE", old=old) == []

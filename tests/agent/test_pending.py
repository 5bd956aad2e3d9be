"""Leader task "pending": a session stuck on a permanent cause is ended with the card's own line."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.agent import pending
from ood_k8s.agent.actions import Actions
from ood_k8s.agent.tasks import PassContext
from ood_k8s.core import vocab
from tests.agent.conftest import World
from tests.conftest import ALICE

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
JUST_NOW, LONG_AGO = "2025-06-15T15:06:00Z", "2025-06-15T14:00:00Z"
GRACE = 120


def pod(waiting: dict[str, Any] | None = None, created: str = JUST_NOW, phase: str = "Pending",
        last: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "app", "image": "example/app:1", "ready": False, "restartCount": 0,
                          "state": {"waiting": waiting} if waiting else {"running": {}}}
    if last:
        cs["lastState"] = {"terminated": last}
    return {"metadata": {"name": "jupyter-1", "namespace": "ood-alice", "creationTimestamp": created, **meta},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            "status": {"phase": phase, "containerStatuses": [cs]}}


MISSING = {"reason": "ErrImagePull", "message": "manifest unknown"}
BACKOFF = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
CONFIG = {"reason": "CreateContainerConfigError", "message": 'secret "creds" not found'}
CASES: list[tuple[str, dict[str, Any], tuple[str, str] | None]] = [
    ("an image that does not exist", pod(MISSING), ("ImageUnavailable",
     "image example/app:1 does not exist or is not accessible (manifest unknown): check the image name or ask "
     "your administrator")),
    ("a pull failing within the grace", pod(BACKOFF), None),
    ("a pull failing past the grace", pod(BACKOFF, LONG_AGO), ("ImageUnavailable",
     "image example/app:1 could not be pulled (Back-off pulling image): check the image name or ask your "
     "administrator")),
    ("an invalid image name", pod({"reason": "InvalidImageName", "message": "bad"}), ("ImageUnavailable",
     "the session could not start (InvalidImageName: bad)")),
    ("a missing secret, within the grace", pod(CONFIG), None),
    ("a missing secret, past it", pod(CONFIG, LONG_AGO), ("StartFailed",
     'the session could not start (CreateContainerConfigError: secret "creds" not found)')),
    ("a crash loop", pod({"reason": "CrashLoopBackOff"}, phase="Running", last={"exitCode": 3}), ("CrashLoop",
     "the app crashed (exit code 3); see the session's output log")),
    ("being created", pod({"reason": "ContainerCreating"}), None),
    ("running", pod(phase="Running"), None),
    ("already ended by the agent", pod(MISSING, annotations={vocab.END_REASON_ANNOTATION: "Idle"}), None),
    ("being deleted", pod(MISSING, deletionTimestamp=JUST_NOW), None),
    ("finished", pod(MISSING, phase="Failed"), None),
]


@pytest.mark.parametrize(("case", "the_pod", "verdict"), CASES, ids=[c[0] for c in CASES])
def test_stuck(case: str, the_pod: dict[str, Any], verdict: tuple[str, str] | None) -> None:
    assert pending.stuck(the_pod, None, NOW, GRACE) == verdict


def test_the_task_ends_stuck_sessions_once(world: World) -> None:
    import time

    stuck, waiting, fine = world.submit(), world.submit(), world.submit()
    world.fk.set_pod_status("ood-alice", stuck, node_name="n1", startTime=JUST_NOW, containerStatuses=[
        {"name": "app", "image": "x", "ready": False, "restartCount": 0, "state": {"waiting": MISSING}}])
    world.fk.set_pod_status("ood-alice", waiting, conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}])
    world.ready(ALICE, fine)
    asked: list[str] = []

    def events_of(p: dict[str, Any]) -> list[dict[str, Any]]:
        asked.append(p["metadata"]["name"])
        return []

    def one_pass() -> Actions:
        pods = world.client.list("Pod", "ood-alice")
        hands = Actions(world.client, time.time())
        pending.TASK.run(PassContext(world.cfg, world.client, time.time(), pods, hands, events_of=events_of))
        return hands

    assert [(a, r) for a, _, r in one_pass().done] == [("ended", "ImageUnavailable")]
    after = world.client.get("Pod", stuck, "ood-alice")
    assert after["metadata"]["annotations"][vocab.END_MESSAGE_ANNOTATION].startswith("image x does not exist")
    assert after["spec"]["activeDeadlineSeconds"] >= 1
    assert asked == [], "events are asked for only when the rules need them (never for these)"
    assert one_pass().done == [], "a second pass does nothing"
    assert world.client.get("Pod", waiting, "ood-alice")["metadata"].get("annotations", {}).get(
        vocab.END_REASON_ANNOTATION) is None

"""status: each pod situation -> OOD status and a reason a student can act on."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.sessions.status import HOLD_GATE, PodState, one_line, pod_state, timestamp

CREATED = "2025-03-01T10:00:00Z"
T0 = 1740823200.0  # CREATED as epoch seconds


def pod(phase: str = "Pending", *, statuses: list | None = None, inits: list | None = None,
        conditions: list | None = None, gates: list | None = None, deleting: bool = False,
        reason: str | None = None, message: str | None = None, node: str | None = None,
        memory: str = "4Gi", port: int | None = 8888) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "quay.io/jupyter/scipy-notebook:2025-10-20",
                                 "resources": {"limits": {"cpu": "1", "memory": memory}}}
    if port:
        container["ports"] = [{"containerPort": port}]
    p: dict[str, Any] = {
        "metadata": {"name": "jupyter-0a1b2c3d", "creationTimestamp": CREATED},
        "spec": {"containers": [container], "activeDeadlineSeconds": 7200},
        "status": {"phase": phase},
    }
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2025-03-01T10:05:00Z"
    if gates:
        p["spec"]["schedulingGates"] = [{"name": g} for g in gates]
    if node:
        p["spec"]["nodeName"] = node
    for key, value in (("containerStatuses", statuses), ("initContainerStatuses", inits),
                       ("conditions", conditions), ("reason", reason), ("message", message)):
        if value is not None:
            p["status"][key] = value
    return p


def cs(state: dict, ready: bool = False, name: str = "app", last: dict | None = None) -> dict[str, Any]:
    out = {"name": name, "ready": ready, "restartCount": 0, "state": state}
    if last:
        out["lastState"] = last
    return out


def waiting(reason: str, message: str = "") -> dict:
    return {"waiting": {"reason": reason, "message": message}}


def terminated(code: int, reason: str = "Error", message: str = "") -> dict:
    return {"terminated": {"exitCode": code, "reason": reason, "message": message,
                           "startedAt": "2025-03-01T10:01:00Z", "finishedAt": "2025-03-01T10:02:00Z"}}


UNSCHEDULABLE = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                  "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]
SCHEDULED = [{"type": "PodScheduled", "status": "True"}]
RUNNING = {"running": {"startedAt": "2025-03-01T10:01:00Z"}}


def event(reason: str, message: str, at: str = "2025-03-01T10:00:30Z") -> dict[str, Any]:
    return {"reason": reason, "message": message, "lastTimestamp": at}


CASES = [
    # (name, pod, events, now offset, expected state, expected reason fragment, ready, needs_events)
    ("gone", None, None, 0, "completed", "the session has ended", False, False),
    ("terminating is never running", pod("Running", statuses=[cs(RUNNING, True)], deleting=True), None, 0,
     "completed", "being stopped", False, False),
    ("ready", pod("Running", statuses=[cs(RUNNING, True)], node="n1"), None, 0, "running", "ready", True, False),
    ("started, not answering yet", pod("Running", statuses=[cs(RUNNING, False)]), None, 0, "queued",
     "starting the app (waiting for it to answer on port 8888)", False, False),
    ("held", pod(gates=[HOLD_GATE]), None, 0, "queued_held", "held: release the job", False, False),
    ("another gate", pod(gates=["example.com/quota"]), None, 0, "queued", "waiting for the cluster to admit", False,
     False),
    ("unschedulable", pod(conditions=UNSCHEDULABLE), None, 0, "queued",
     "waiting for the scheduler: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", False, True),
    ("karpenter starts a node", pod(conditions=UNSCHEDULABLE),
     [event("FailedScheduling", "0/3 nodes"), event("Nominated", "Pod should schedule on: nodeclaim/gpu-t4-x",
                                                   "2025-03-01T10:00:40Z")], 0,
     "queued", "a new node is being started for this session", False, False),
    ("cluster-autoscaler cannot help", pod(conditions=UNSCHEDULABLE),
     [event("NotTriggerScaleUp", "pod didn't trigger scale-up: 2 max node group size reached")], 0,
     "queued", "no node group can run this session: pod didn't trigger scale-up", False, False),
    ("not yet seen by the scheduler", pod(), None, 0, "queued", "waiting for the scheduler", False, True),
    ("pulling the image", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting("ContainerCreating"))]),
     [event("Scheduled", "assigned"), event("Pulling", 'Pulling image "quay.io/jupyter/scipy-notebook"',
                                            "2025-03-01T10:00:50Z")], 0,
     "queued", 'pulling the image (Pulling image "quay.io/jupyter/scipy-notebook")', False, False),
    ("creating, events not read yet", pod(conditions=SCHEDULED, node="n1",
                                          statuses=[cs(waiting("ContainerCreating"))]), None, 0,
     "queued", "preparing the session on its node", False, True),
    ("storage", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting("ContainerCreating"))]),
     [event("FailedMount", "MountVolume.SetUp failed for volume \"home\": mount failed: timeout")], 0,
     "queued", "waiting for storage: MountVolume.SetUp failed", False, False),
    ("image missing ends at once", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting(
        "ErrImagePull", 'failed to pull "quay.io/x/nope:1": quay.io/x/nope:1: not found'))]), None, 5,
     "completed", "image quay.io/jupyter/scipy-notebook:2025-10-20 does not exist or is not accessible", False, False),
    ("image pull back-off, within grace", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting(
        "ImagePullBackOff", "Back-off pulling image: 429 toomanyrequests"))]), None, 60,
     "queued", "retrying to pull image", False, False),
    ("image pull back-off, grace over", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting(
        "ImagePullBackOff", "Back-off pulling image: 429 toomanyrequests"))]), None, 600,
     "completed", "could not be pulled", False, False),
    ("invalid image name", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting(
        "InvalidImageName", "couldn't parse image reference"))]), None, 0,
     "completed", "the session could not start (InvalidImageName", False, False),
    ("runAsNonRoot violated", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting(
        "CreateContainerConfigError", "container has runAsNonRoot and image will run as root"))]), None, 0,
     "completed", "runAsNonRoot", False, False),
    ("secret not there yet", pod(conditions=SCHEDULED, node="n1", statuses=[cs(waiting(
        "CreateContainerConfigError", 'secret "x-secret" not found'))]), None, 3,
     "queued", "preparing the session", False, False),
    ("init container running", pod(conditions=SCHEDULED, node="n1", inits=[cs(RUNNING, name="prep")],
                                   statuses=[cs(waiting("PodInitializing"))]), None, 0,
     "queued", "init container 'prep'", False, False),
    ("crash loop", pod("Running", statuses=[cs(waiting("CrashLoopBackOff", "back-off 5m0s"),
                                               last=terminated(3))]), None, 0,
     "completed", "the app crashed (exit code 3)", False, False),
    ("out of memory", pod("Failed", memory="4Gi", statuses=[cs(terminated(137, "OOMKilled"))]), None, 0,
     "completed", "the app ran out of memory (limit 4Gi): start a new session with more memory", False, False),
    ("crashed", pod("Failed", statuses=[cs(terminated(2, message="ModuleNotFoundError: torch"))]), None, 0,
     "completed", "the app crashed (exit code 2): ModuleNotFoundError: torch", False, False),
    ("init container failed", pod("Failed", inits=[cs(terminated(1), name="prep")],
                                  statuses=[cs(waiting("PodInitializing"))]), None, 0,
     "completed", "init container 'prep' crashed (exit code 1)", False, False),
    ("walltime", pod("Failed", reason="DeadlineExceeded", message="Pod was active on the node longer than the "
                                                                  "specified deadline"), None, 0,
     "completed", "the session reached its wall time of 2h: start a new one", False, False),
    ("evicted", pod("Failed", reason="Evicted", message="The node was low on resource: ephemeral-storage."), None, 0,
     "completed", "evicted from its node: The node was low on resource", False, False),
    ("exited normally", pod("Succeeded", statuses=[cs(terminated(0, "Completed"))]), None, 0,
     "completed", "exited normally", False, False),
    ("node lost", pod("Unknown"), None, 0, "undetermined", "lost contact with the session's node", False, False),
]


@pytest.mark.parametrize(("name", "p", "events", "offset", "state", "reason", "ready", "needs_events"), CASES,
                         ids=[c[0] for c in CASES])
def test_pod_situation(name: str, p: dict | None, events: list | None, offset: float, state: str, reason: str,
                       ready: bool, needs_events: bool) -> None:
    got = pod_state(p, events, now=T0 + offset, pull_failure_grace=120)
    assert (got.state, got.ready, got.needs_events) == (state, ready, needs_events), got
    assert reason in got.reason, got.reason
    assert "\n" not in got.reason and len(got.reason) <= 240


def test_failures_are_flagged_with_exit_codes() -> None:
    assert pod_state(pod("Failed", statuses=[cs(terminated(2))]), now=T0) == PodState(
        "completed", "the app crashed (exit code 2); see the session's output log", exit_code=2, failed=True)
    assert pod_state(pod("Succeeded", statuses=[cs(terminated(0, "Completed"))]), now=T0).failed is False


def test_timestamps() -> None:
    assert timestamp(CREATED) == T0
    assert timestamp("2025-03-01T10:00:00.250000Z") == T0 + 0.25
    assert timestamp("garbage") is None and timestamp(None) is None


def test_timestamps_agree_with_calendar_timegm_on_every_day_of_three_centuries() -> None:
    import calendar
    import datetime

    day = datetime.date(1900, 1, 1)
    while day.year < 2200:
        text = f"{day.isoformat()}T{day.day % 24:02d}:{day.month * 4:02d}:{day.toordinal() % 61:02d}Z"
        assert timestamp(text) == calendar.timegm((day.year, day.month, day.day, day.day % 24, day.month * 4,
                                                   day.toordinal() % 61, 0, 0, 0)), text
        day += datetime.timedelta(days=1)


@pytest.mark.parametrize("text", ["2025-13-01T00:00:00Z", "2025-00-10T00:00:00Z", "2025-01-32T00:00:00Z",
                                  "2025-01-01T24:00:00Z", "2025-01-01T00:60:00Z", "2025-01-01 00:00:00Z",
                                  "2025/01/01T00:00:00Z", "2025-01-01T00:00:0xZ", "+025-01-01T00:00:00Z",
                                  "2025-01-01T00:00:\u0660\u0661Z", "2_25-01-01T00:00:00Z"])
def test_malformed_timestamps_are_none(text: str) -> None:
    assert timestamp(text) is None


def test_one_line_collapses_and_truncates() -> None:
    assert one_line("a\n b\tc") == "a b c"
    assert len(one_line("x" * 1000)) == 240


# --- issue 15: what the agent's leader recorded says why ------------------------------------------------------

ENDED = {"ood-k8s.io/end-reason": "DeadlineReached", "ood-k8s.io/end-message": "ended at its deadline (2h)"}
WARNED = {"ood-k8s.io/warning-reason": "DeadlineSoon",
          "ood-k8s.io/warning": "ends at 16:30 (in 10 min): save your work, or extend it"}


def annotated(p: dict[str, Any], ann: dict[str, str]) -> dict[str, Any]:
    p["metadata"]["annotations"] = dict(ann)
    return p


AGENT_CASES = [
    ("ended at its deadline, stopped by the kubelet",
     annotated(pod("Failed", reason="DeadlineExceeded", message="Pod was active on the node longer than the "
                                                               "specified deadline"), ENDED),
     PodState("completed", "ended at its deadline (2h)", failed=True)),
    ("reclaimed, exited on SIGTERM",
     annotated(pod("Succeeded", statuses=[cs(terminated(0, "Completed"))]),
               {"ood-k8s.io/end-reason": "Idle", "ood-k8s.io/end-message": "reclaimed after 60 min idle"}),
     PodState("completed", "reclaimed after 60 min idle", exit_code=0)),
    ("ended, the kubelet not there yet",
     annotated(pod("Running", statuses=[cs(RUNNING, True)], node="n1"), ENDED),
     PodState("running", "ending: ended at its deadline (2h)", ready=True)),
    ("ended while pending: deleted",
     annotated(pod(deleting=True), ENDED), PodState("completed", "ending: ended at its deadline (2h)")),
    ("ended with no message", annotated(pod("Failed", reason="DeadlineExceeded"), {"ood-k8s.io/end-reason": "Budget"}),
     PodState("completed", "ended by the site (Budget)", failed=True)),
    ("warned while running",
     annotated(pod("Running", statuses=[cs(RUNNING, True)], node="n1"), WARNED),
     PodState("running", "ready; ends at 16:30 (in 10 min): save your work, or extend it", ready=True)),
    ("a warning on a session not answering yet waits for it",
     annotated(pod("Running", statuses=[cs(RUNNING, False)]), WARNED),
     PodState("queued", "starting the app (waiting for it to answer on port 8888)")),
    ("the end wins over the warning",
     annotated(pod("Failed", reason="DeadlineExceeded"), {**WARNED, **ENDED}),
     PodState("completed", "ended at its deadline (2h)", failed=True)),
]


@pytest.mark.parametrize(("p", "want"), [c[1:] for c in AGENT_CASES], ids=[c[0] for c in AGENT_CASES])
def test_what_the_agent_recorded_is_the_reason(p: dict[str, Any], want: PodState) -> None:
    assert pod_state(p, now=T0) == want

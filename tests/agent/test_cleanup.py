"""Leader task "cleanup": completed sessions go after their retention, once the ledger holds them."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.agent import cleanup
from ood_k8s.agent.actions import Actions
from ood_k8s.agent.tasks import PassContext
from ood_k8s.core import vocab
from ood_k8s.core.timefmt import rfc3339
from tests.agent.conftest import World
from tests.conftest import replace

NOW = 1_750_000_000.0
DAY = 86400
WEEK = 7 * DAY
SESSION = {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY, vocab.JOB_LABEL: "jupyter-1"}
RECORDED = {vocab.RECORDED_ANNOTATION: "2025-06-01T00:00:00Z"}


def pod(ended_days_ago: float | None, phase: str = "Succeeded", labels: dict[str, str] = SESSION,
        annotations: dict[str, str] = RECORDED, **meta: Any) -> dict[str, Any]:
    statuses = [] if ended_days_ago is None else [{"name": "app", "state": {"terminated": {
        "exitCode": 0, "finishedAt": rfc3339(NOW - ended_days_ago * DAY)}}}]
    return {"metadata": {"name": "jupyter-1", "namespace": "ood-alice", "labels": labels,
                         "annotations": annotations, "creationTimestamp": rfc3339(NOW - 30 * DAY), **meta},
            "status": {"phase": phase, "containerStatuses": statuses}}


CASES: list[tuple[str, dict[str, Any], tuple[str, str] | None]] = [
    ("recorded, past retention", pod(8), ("Retention", "completed session deleted after its retention of 7 days")),
    ("recorded, within retention", pod(6.9), None),
    ("failed sessions too", pod(8, "Failed"), ("Retention", "completed session deleted after its retention of 7 days")),
    ("unrecorded, past retention", pod(8, annotations={}), None),
    ("unrecorded, past twice the retention", pod(15, annotations={}), ("RetentionUnrecorded",
     "completed session deleted 15 days after it ended although the usage ledger has not recorded it")),
    ("never ran: its creation counts", pod(None), ("Retention",
                                                   "completed session deleted after its retention of 7 days")),
    ("still running", pod(8, "Running"), None),
    ("not a session", pod(8, labels={vocab.MANAGED_BY_KEY: vocab.MANAGED_BY}), None),
    ("someone else's pod", pod(8, labels={"app": "x"}), None),
    ("already being deleted", pod(8, deletionTimestamp=rfc3339(NOW)), None),
]


@pytest.mark.parametrize(("case", "the_pod", "verdict"), CASES, ids=[c[0] for c in CASES])
def test_expired(case: str, the_pod: dict[str, Any], verdict: tuple[str, str] | None) -> None:
    assert cleanup.expired(the_pod, NOW, WEEK) == verdict


def test_finished_at_reads_the_last_container_to_end() -> None:
    p = pod(3)
    p["status"]["containerStatuses"].append({"name": "side", "state": {"terminated": {
        "finishedAt": rfc3339(NOW - DAY)}}})
    assert cleanup.finished_at(p) == NOW - DAY
    assert cleanup.finished_at(pod(None)) == NOW - 30 * DAY


def test_a_retention_of_zero_still_waits_a_day_for_the_ledger() -> None:
    assert cleanup.expired(pod(0.5, annotations={}), NOW, 0) is None
    assert cleanup.expired(pod(0.5), NOW, 0) == ("Retention", "completed session deleted after its retention of "
                                                 "0 days")


def test_the_task_deletes_the_pod_and_its_children(world: World, caplog: pytest.LogCaptureFixture) -> None:
    import time

    kept, recorded, forgotten = world.submit(), world.submit(), world.submit()
    now = time.time()
    for job, marks in ((kept, RECORDED), (recorded, RECORDED), (forgotten, {})):
        if marks:
            world.client.patch("Pod", job, {"metadata": {"annotations": marks}}, "ood-alice")
        world.fk.set_pod_status("ood-alice", job, phase="Succeeded")
    children = {o["metadata"]["name"] for kind in ("secrets", "services") for o in world.fk.list(kind, "ood-alice")
                if (o["metadata"].get("labels") or {}).get(vocab.JOB_LABEL) == recorded}
    assert children, "submit made children for the session"
    cfg = replace(world.cfg, **{"agent.retention_days": 1.0})
    pods = world.client.list("Pod", "ood-alice")
    ages = {kept: 0.5 * DAY, recorded: 1.5 * DAY, forgotten: 2.5 * DAY}
    for p in pods:  # as if each had finished that long ago
        p["status"]["containerStatuses"] = [{"name": "app", "state": {"terminated": {
            "finishedAt": rfc3339(now - ages[p["metadata"]["name"]])}}}]
    hands = Actions(world.client, now)
    cleanup.TASK.run(PassContext(cfg, world.client, now, pods, hands))
    assert sorted(r for _, _, r in hands.done) == ["Retention", "RetentionUnrecorded"]
    assert [p["metadata"]["name"] for p in world.fk.list("pods", "ood-alice")] == [kept]
    left = {o["metadata"]["name"] for kind in ("secrets", "services") for o in world.fk.list(kind, "ood-alice")}
    assert not children & left, "children went with their pod (ownerReference)"
    assert f"ood-alice/{forgotten} is not in the usage ledger" in caplog.text

"""The ledger records every session exactly once: across passes, agent restarts, leader changes, crashes
between the write and the mark, concurrent writers, full shards and deleted sessions."""

from __future__ import annotations

import contextlib

from ood_k8s.core import vocab
from ood_k8s.core.errors import Unavailable
from ood_k8s.usage import entry
from ood_k8s.usage.ledger import Ledger, fit, month_of_name, shard_name
from ood_k8s.usage.task import LedgerTask, mark_patch
from tests.usage.conftest import AGENT_NS, HOUR, T0, World


def _entries(world: World) -> list[entry.Entry]:
    return sorted(Ledger(world.client, AGENT_NS).read(), key=lambda e: e.job)


def test_an_ended_session_is_recorded_once_with_every_field(world: World) -> None:
    pod = world.session(cpu="4")
    world.start(pod, T0)
    world.finish(pod, T0 + 1.5 * HOUR)
    task = LedgerTask()
    task.run(world.context(T0 + 2 * HOUR))
    task.run(world.context(T0 + 3 * HOUR))  # a repeated pass: nothing more
    [e] = _entries(world)
    assert e == entry.Entry(uid=pod["metadata"]["uid"], user="alice", course="cs109b", profile="gpu-t4",
                            job=pod["metadata"]["name"], start=T0, end=T0 + 1.5 * HOUR, gpus=1,
                            gpu_resource="nvidia.com/gpu", cpu=4.0, memory=16 * 2**30, instance="g4dn.xlarge",
                            share=1.0, idle=0.0, reason="")
    assert list(world.ledger()) == ["usage-alice-2027-02"]
    marked = world.client.get("Pod", pod["metadata"]["name"], "ood-alice")
    assert vocab.RECORDED_ANNOTATION in marked["metadata"]["annotations"]


def test_running_sessions_are_not_written(world: World) -> None:
    world.start(world.session(), T0)
    LedgerTask().run(world.context(T0 + HOUR))
    assert world.ledger() == {}


def test_two_writes_per_session_at_most_and_fewer_when_a_user_ends_several(world: World) -> None:
    pods = [world.session() for _ in range(3)] + [world.session(user="bob")]
    for p in pods:
        world.start(p, T0)
        world.finish(p, T0 + HOUR)
    world.fk.reset_requests()
    LedgerTask().run(world.context(T0 + 2 * HOUR))
    writes = world.writes()
    ledger_writes = [w for w in writes if "/configmaps" in w]
    pod_writes = [w for w in writes if "/pods/" in w]
    assert len(ledger_writes) == 2  # one shard write per user this pass
    assert len(pod_writes) == 4  # one mark per session
    assert len(writes) <= 2 * len(pods)


def test_exact_across_a_crash_between_the_write_and_the_mark_and_a_leader_change(world: World) -> None:
    pod = world.session()
    world.start(pod, T0)
    world.finish(pod, T0 + HOUR)
    # Leader 1 writes the ledger, then dies before marking the pod (its PATCH never lands).
    world.fk.inject(status=503, method="PATCH", path_contains="/pods/", count=10, retry_after=None)
    leader1 = world.new_client()
    with contextlib.suppress(Unavailable):  # the dying leader's error does not matter here
        LedgerTask().run(world.context(T0 + 2 * HOUR, client=leader1))
    world.fk._injections.clear()
    assert len(world.ledger()["usage-alice-2027-02"]) == 1
    # Leader 2 (another portal's agent, its own client and task) finds the pod unmarked: no second entry.
    world.fk.reset_requests()
    leader2 = world.new_client()
    LedgerTask().run(world.context(T0 + 3 * HOUR, client=leader2))
    assert len(world.ledger()["usage-alice-2027-02"]) == 1
    assert not [w for w in world.writes() if "/configmaps" in w]  # the entry was there: nothing written
    assert vocab.RECORDED_ANNOTATION in world.client.get("Pod", pod["metadata"]["name"], "ood-alice")[
        "metadata"]["annotations"]
    # And an agent restarted from nothing, with duplicate passes, changes nothing more.
    for now in (T0 + 4 * HOUR, T0 + 4 * HOUR):
        LedgerTask().run(world.context(now, client=world.new_client()))
    assert [e.uid for e in _entries(world)] == [pod["metadata"]["uid"]]


def test_a_concurrent_writer_is_merged_not_overwritten(world: World) -> None:
    a, b = world.session(), world.session()
    for p in (a, b):
        world.start(p, T0)
        world.finish(p, T0 + HOUR)
    ledger = Ledger(world.client, AGENT_NS)
    ledger.record("alice", [entry.from_pod(world.client.get("Pod", a["metadata"]["name"], "ood-alice"), T0 + 2 * HOUR,
                                           "ood-")])
    # Another writer slips in between our read and our write: our PUT gets 409 once, we re-read and merge.
    world.fk.inject(status=409, method="PUT", path_contains="/configmaps/", count=1, retry_after=None,
                    reason="Conflict", message="the object has been modified")
    added = ledger.record("alice", [entry.from_pod(world.client.get("Pod", b["metadata"]["name"], "ood-alice"),
                                                   T0 + 2 * HOUR, "ood-")])
    assert [e.uid for e in added] == [b["metadata"]["uid"]]
    assert set(world.ledger()["usage-alice-2027-02"]) == {a["metadata"]["uid"], b["metadata"]["uid"]}


def test_a_full_shard_continues_in_the_next_part(world: World) -> None:
    pods = []
    for _ in range(5):
        p = world.session()
        world.start(p, T0)
        world.finish(p, T0 + HOUR)
        pods.append(world.client.get("Pod", p["metadata"]["name"], "ood-alice"))
    ledger = Ledger(world.client, AGENT_NS, cap=450)  # room for two entries (~190 bytes each) a part
    ledger.record("alice", [entry.from_pod(p, T0 + 2 * HOUR, "ood-") for p in pods[:3]])
    ledger.record("alice", [entry.from_pod(p, T0 + 2 * HOUR, "ood-") for p in pods])  # 3 already there
    parts = world.ledger()
    assert sorted(parts) == ["usage-alice-2027-02", "usage-alice-2027-02-2", "usage-alice-2027-02-3"]
    assert sum(len(d) for d in parts.values()) == 5
    assert len(ledger.read("alice")) == 5


def test_a_deleted_session_is_kept_by_the_finalizer_until_recorded(world: World) -> None:
    pod = world.session(finalizer=True)
    world.start(pod, T0)
    name = pod["metadata"]["name"]
    world.client.delete("Pod", name, "ood-alice", grace_period=0)  # OOD's Delete button
    kept = world.client.get("Pod", name, "ood-alice")
    assert kept["metadata"].get("deletionTimestamp")  # still there: the finalizer holds it
    LedgerTask().run(world.context(T0 + 2 * HOUR))
    assert world.client.get_or_none("Pod", name, "ood-alice") is None  # the mark released it
    [e] = _entries(world)
    assert e.start == T0 and e.end <= T0 + 2 * HOUR


def test_the_mark_removes_only_our_finalizer_and_carries_the_resource_version() -> None:
    pod = {"metadata": {"resourceVersion": "42", "finalizers": ["other/keep", vocab.USAGE_FINALIZER]}}
    assert mark_patch(pod, T0) == {"metadata": {"annotations": {vocab.RECORDED_ANNOTATION: "2027-02-01T10:00:00Z"},
                                                "finalizers": ["other/keep"], "resourceVersion": "42"}}
    assert mark_patch({"metadata": {}}, T0) == {"metadata": {"annotations": {
        vocab.RECORDED_ANNOTATION: "2027-02-01T10:00:00Z"}}}


def test_the_pass_tells_cleanup_what_the_ledger_holds(world: World) -> None:
    pod = world.session()
    world.start(pod, T0)
    world.finish(pod, T0 + HOUR)
    ctx = world.context(T0 + 2 * HOUR)
    LedgerTask().run(ctx)
    assert ctx.notes["ledger"] == {pod["metadata"]["uid"]}
    [seen] = [p for p in ctx.pods if p["metadata"]["uid"] == pod["metadata"]["uid"]]
    assert vocab.RECORDED_ANNOTATION in seen["metadata"]["annotations"]  # later tasks of the pass see it


def test_retention_deletes_old_months_only(world: World) -> None:
    ledger = Ledger(world.client, AGENT_NS)
    for when in ("2025-11", "2027-01"):
        world.client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": shard_name("alice", when), "namespace": AGENT_NS,
            "labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY, vocab.USER_LABEL: "alice",
                       vocab.COMPONENT_LABEL: vocab.USAGE_COMPONENT}}, "data": {}})
    assert ledger.prune(T0, 400) == ["usage-alice-2025-11"]
    assert list(world.ledger()) == ["usage-alice-2027-01"]


def test_shard_names_and_fit() -> None:
    assert shard_name("alice", "2027-02") == "usage-alice-2027-02"
    assert shard_name("alice", "2027-02", 3) == "usage-alice-2027-02-3"
    assert month_of_name("usage-a-b-2027-02") == "2027-02"
    assert month_of_name("usage-alice-2027-02-3") == "2027-02"
    assert fit({}, {"a": "x" * 10, "b": "y" * 10}, cap=30) == {"a": "x" * 10}


def test_a_mark_forged_by_the_student_does_not_keep_a_session_out_of_the_ledger(world: World) -> None:
    pod = world.session()
    world.start(pod, T0)
    name = pod["metadata"]["name"]
    world.client.patch("Pod", name, {"metadata": {"annotations": {vocab.RECORDED_ANNOTATION: "yes"}}}, "ood-alice")
    world.finish(pod, T0 + HOUR)
    LedgerTask().run(world.context(T0 + 2 * HOUR))
    assert [e.uid for e in _entries(world)] == [pod["metadata"]["uid"]]


def test_a_leader_that_holds_the_ledger_makes_no_request_for_marked_sessions(world: World) -> None:
    pod = world.session()
    world.start(pod, T0)
    world.finish(pod, T0 + HOUR)
    task = LedgerTask()
    ctx = world.context(T0 + 2 * HOUR)
    task.run(ctx)
    world.fk.reset_requests()
    task.run(world.context(T0 + 3 * HOUR))
    assert world.writes() == []
    assert [r.method for r in world.fk.requests if "/configmaps" in r.path] == []  # the view, not the API

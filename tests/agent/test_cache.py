"""The agent's view: the same Info as the direct path, kept current by an honest list+watch."""

from __future__ import annotations

import json
from typing import Any

from ood_k8s.agent import server
from ood_k8s.agent.cache import CachedClient
from ood_k8s.sessions.adapter import Adapter
from tests.agent.conftest import DictUsers, World, wait_until
from tests.conftest import ALICE, BOB


def agent_infos(world: World, job: str = "-", user: str = "alice") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    assert world.agent is not None
    raw = server.answer(world.agent, 0, f"json {job} {user}\n".encode(), DictUsers(ALICE, BOB))
    head, _, body = raw.partition(b"\n")
    return json.loads(head), json.loads(body) if body else []


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    # The wall clock runs between the two reads: everything else must be identical.
    assert abs((a.pop("wallclock_time") or 0) - (b.pop("wallclock_time") or 0)) <= 1
    assert a == b


def test_every_state_reads_as_the_direct_path_reads_it(world: World) -> None:
    pending, ready, scheduling, oom = (world.submit() for _ in range(4))
    world.ready(ALICE, ready)
    world.fk.set_pod_status("ood-alice", scheduling, conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}])
    pod = world.fk.get("pods", scheduling, "ood-alice")
    world.fk.add_event("ood-alice", pod, "TriggeredScaleUp", "pod triggered scale-up")
    world.fk.set_pod_status("ood-alice", oom, node_name="n1", phase="Failed", containerStatuses=[
        {"name": "app", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
         "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])
    world.start_agent()
    direct = world.adapter(ALICE)
    for job in (pending, ready, scheduling, oom):
        head, infos = agent_infos(world, job)
        assert head["ok"] and head["found"], head
        same(infos[0], direct.info(job).to_dict())
    _, mine = agent_infos(world)
    for got, want in zip(mine, [i.to_dict() for i in direct.info_all()], strict=True):
        same(got, want)
    assert agent_infos(world, ready)[1][0]["native"]["ood_connection_info"]["password"], "from the watched secret"
    assert "node is being started" in agent_infos(world, scheduling)[1][0]["native"]["reason"], "pending: events"
    assert agent_infos(world, oom)[0]["end"]["native"]["reason"].startswith("the app ran out of memory")


def test_changes_arrive_through_the_watch_and_a_vanished_pod_is_not_declared_ended(world: World) -> None:
    world.start_agent()
    job = world.submit()
    world.seen(ALICE, job)
    world.ready(ALICE, job)
    world.seen(ALICE, job, lambda p: p["status"]["phase"] == "Running")
    assert agent_infos(world, job)[1][0]["status"] == "running"
    world.adapter(ALICE).delete(job)  # no node finishes it: graceful deletion, then the kubelet's part
    world.fk.finish_deletion("pods", "ood-alice", job)
    wait_until(lambda: not agent_infos(world, job)[0]["found"])  # the caller asks the API server instead
    assert agent_infos(world)[1] == []


def test_events_are_kept_only_while_their_pod_is_pending(world: World) -> None:
    job = world.submit()
    world.start_agent()
    world.fk.add_event("ood-alice", world.fk.get("pods", job, "ood-alice"), "Pulling", "pulling image x")
    world.fk.add_event("kube-system", {"kind": "Pod", "name": "coredns", "namespace": "kube-system"}, "Pulled", "x")
    assert world.agent is not None
    wait_until(lambda: world.agent.cache.sizes()["events"] == 1)
    world.ready(ALICE, job)
    wait_until(lambda: world.agent.cache.sizes()["events"] == 0)


def test_the_cached_client_answers_only_the_reads_info_makes(world: World) -> None:
    agent = world.start_agent()
    client = agent.cache.client()
    assert isinstance(client, CachedClient)
    adapter = Adapter(world.cfg, ALICE, client)  # type: ignore[arg-type]
    try:
        adapter.delete("jupyter-00000000")
    except Exception as exc:
        assert "submit, delete, hold and release go to the API server" in str(exc.hint)  # type: ignore[attr-defined]
    else:
        raise AssertionError("a write went to the cache")


def test_a_poll_costs_the_api_server_nothing(world: World) -> None:
    jobs = [world.submit() for _ in range(3)]
    agent = world.start_agent()
    wait_until(lambda: all(r.live for r in agent.reflectors))  # the three streams are open
    world.fk.reset_requests()
    for _ in range(20):
        for job in jobs:
            assert agent_infos(world, job)[0]["found"]
        agent_infos(world)
    assert [(r.method, r.path) for r in world.fk.requests] == []


def test_an_ended_sessions_note_through_the_socket_says_why_the_agent_ended_it(world: World) -> None:
    # The agent's leader ended it (deadline, idle...) and the node was reclaimed too: the end note the
    # caller leaves must say what the leader did, as the direct path's does (ood/endnote.py: cause).
    from ood_k8s.ood import endnote

    job = world.submit()
    reclaimed = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    world.fk.set_pod_status("ood-alice", job, node_name="n1", phase="Failed", reason="DeadlineExceeded",
                            conditions=[reclaimed])
    pod = world.fk.get("pods", job, "ood-alice")
    pod["metadata"].setdefault("annotations", {}).update({"ood-k8s.io/end-reason": "Idle",
                                                         "ood-k8s.io/end-message": "reclaimed after 60 min idle"})
    world.fk.store.put("pods", pod, "MODIFIED")
    world.start_agent()
    head, _ = agent_infos(world, job)
    direct = world.adapter(ALICE).info(job)
    assert head["end"]["native"]["end_reason"] == direct.native["end_reason"] == "Idle"

    class Ended:
        native = head["end"]["native"]

    assert endnote.cause(Ended) == endnote.cause(direct) == "reclaimed after 60 min idle"

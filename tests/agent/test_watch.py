"""The reflector against an honest watch: bookmarks, dropped streams, 410 Gone, a hung or dead server."""

from __future__ import annotations

import json
import time

from ood_k8s.agent import client
from ood_k8s.core import vocab
from tests.agent.conftest import World, wait_until
from tests.conftest import ALICE


def test_bookmarks_move_the_resource_version_without_events(world: World) -> None:
    agent = world.start_agent()
    pods = agent.reflectors[0]
    world.client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}})
    current = str(world.fk.store.current_rv)
    wait_until(lambda: pods.rv == current)  # a configmap is no pod event: only a BOOKMARK carries it
    assert agent.age() == 0.0 and pods.lists == 1


def test_a_dropped_stream_resumes_from_its_resource_version_without_listing(world: World) -> None:
    agent = world.start_agent()
    pods = agent.reflectors[0]
    wait_until(lambda: pods.live)
    watches = pods.watches
    world.fk.drop_watches()
    job = world.submit()
    world.seen(ALICE, job)
    assert pods.lists == 1 and pods.watches > watches
    watches = [r for r in world.fk.requests if r.query.get("watch") == "true" and r.path == "/api/v1/pods"]
    assert watches[-1].query["resourceVersion"] not in ("", "0") and watches[-1].query["allowWatchBookmarks"] == "true"


def test_410_gone_lists_again(world: World) -> None:
    agent = world.start_agent()
    pods = agent.reflectors[0]
    wait_until(lambda: pods.live)
    world.fk.hang()  # the agent loses its stream and cannot get another...
    world.fk.drop_watches()
    wait_until(lambda: not pods.live)
    old = pods.rv
    world.fk.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {  # ...while a session starts
        "name": "late-00000000", "namespace": "ood-alice",
        "labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY, vocab.JOB_LABEL: "late-00000000"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]}})
    world.fk.compact()  # and etcd compacts the history it would have resumed from
    world.fk.unhang()
    world.seen(ALICE, "late-00000000")
    assert pods.lists == 2 and int(pods.rv or 0) > int(old or 0)
    assert any(r.query.get("watch") == "true" and r.query.get("resourceVersion") == old for r in world.fk.requests)


def test_a_hung_api_server_is_answered_from_the_cache_with_its_age(world: World) -> None:
    job = world.submit()
    agent = world.start_agent(stall_after=0.3)
    world.fk.hang()
    wait_until(lambda: agent.age() > 0.3)  # silent past stall_after: no longer live
    started = time.monotonic()
    reply = client.ask(world.cfg.agent.socket, "psij", job, "alice")
    assert reply is not None and time.monotonic() - started < 0.1
    assert reply.age > 0.3 and b'"QUEUED"' in reply.body
    world.fk.unhang()
    wait_until(lambda: agent.age() == 0.0)


def test_a_dead_api_server_is_answered_from_the_cache_and_the_watch_retries(world: World) -> None:
    job = world.submit()
    agent = world.start_agent()
    pods = agent.reflectors[0]
    world.fk.stop()
    wait_until(lambda: not pods.live and pods.last_error)
    reply = client.ask(world.cfg.agent.socket, "json", job, "alice")
    assert reply is not None and reply.age >= 0
    first = pods.last_heard
    wait_until(lambda: agent.age() > 0.05)
    assert pods.last_heard == first, "nothing heard from a dead server"
    assert "cannot reach" in pods.last_error or "Connection" in pods.last_error or "Errno" in pods.last_error


def test_an_old_view_says_how_old_it_is(world: World) -> None:
    now = [1000.0]
    job = world.submit()
    agent = world.start_agent(clock=lambda: now[0])
    pods = agent.reflectors[0]
    world.fk.stop()
    wait_until(lambda: not pods.live and pods.last_error)
    now[0] += 125
    reply = client.ask(world.cfg.agent.socket, "psij", job, "alice")
    assert reply is not None and reply.age >= 125
    assert json.loads(reply.body)[0]["cache_age"] == 125

"""``ood-k8s doctor``'s agent checks: socket answering, watch fresh, leader known; nothing while disabled."""

from __future__ import annotations

import socket
from typing import Any

from ood_k8s.agent import checks
from ood_k8s.agent.leader import Record, lease_object
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.doctor import runner
from ood_k8s.doctor.report import Check
from tests.agent.conftest import World, wait_until
from tests.conftest import replace


def ctx(world: World, user: str | None = "alice", now: float | None = None, **agent: Any) -> Any:
    cfg = replace(world.cfg, **{f"agent.{k}": v for k, v in agent.items()})
    made = runner.context(cfg, user, kube=world.client, **({"clock": lambda: now} if now is not None else {}))
    made.reachable = True
    return made


def test_nothing_is_checked_while_the_agent_is_disabled() -> None:
    assert checks.agent(runner.context(Config())) == []
    assert checks.agent in runner.SITE_CHECKS


def test_a_running_agent_that_leads_passes_every_check(world: World) -> None:
    world.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-k8s-system"}})
    world.cfg = replace(world.cfg, **{"agent.lifecycle": True})
    agent = world.start_agent()
    wait_until(lambda: agent.lifecycle is not None and agent.lifecycle.stats()["leader"])
    made = checks.agent(ctx(world))
    assert [(c.name, c.ok) for c in made] == [("agent socket", True), ("agent watch", True), ("agent leader", True)]
    assert made[1].detail == "live" and made[2].detail.startswith(agent.lifecycle.stats()["identity"])


def test_root_without_a_user_is_answered_and_the_age_comes_from_healthz(world: World) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    world.cfg = replace(world.cfg, **{"agent.health_port": port, "agent.lifecycle": False})
    world.start_agent()
    made = checks.agent(ctx(world, user=None))
    assert made[0].ok and "it refused this caller: root has no sessions of its own" in made[0].detail
    assert made[1] == Check("agent watch", True, "live")
    assert made[2] == Check("agent leader", None, "agent.lifecycle is false: no agent runs the lifecycle")


def test_a_stopped_agent_and_no_lease_fail_with_how_to_start_it(world: World) -> None:
    made = checks.agent(ctx(world, lifecycle=True))
    assert made[0] == Check("agent socket", False, f"no answer on {world.cfg.agent.socket}", checks.START)
    assert made[1].ok is None
    assert made[2] == Check("agent leader", False, f"no Lease ood-k8s-system/{vocab.LEASE_NAME}: no agent has led "
                            "yet", checks.START)


def test_an_expired_lease_names_no_leader(world: World) -> None:
    world.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-k8s-system"}})
    world.client.create(lease_object(vocab.LEASE_NAME, "ood-k8s-system",
                                     Record("portal-1_abc", 15, 1_700_000_000.0, 1_700_000_100.0, 0)))
    assert checks.leader_check(ctx(world, now=1_700_000_110.0, lifecycle=True)) == \
        Check("agent leader", True, "portal-1_abc (renewed 10 s ago)")
    assert checks.leader_check(ctx(world, now=1_700_000_200.0, lifecycle=True)) == \
        Check("agent leader", False, f"Lease ood-k8s-system/{vocab.LEASE_NAME} has no live holder (last renewed "
              "100 s ago, held for 15 s)", checks.START)


def test_a_slow_or_stale_agent_fails(world: World) -> None:
    world.start_agent()
    ticks = iter([0.0, 0.5])
    slow, _ = checks.socket_check(world.cfg, "alice", timer=lambda: next(ticks))
    assert slow.ok is False and "answered in 500 ms, more than agent.timeout (100 ms)" in slow.detail
    stale = checks.watch_check(world.cfg, 75.0)
    assert stale.ok is False and "75 s old, more than agent.max_age (60 s)" in stale.detail

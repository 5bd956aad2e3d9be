"""The lifecycle loop: passes only as the leader, every interval; stops mid-pass when the leadership lapses;
in the agent (threads) and as ``ood-k8s agent --once`` (the CLI, end to end) against the fake API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s.agent import tasks
from ood_k8s.agent.leader import Elector
from ood_k8s.agent.lifecycle import Lifecycle
from ood_k8s.agent.tasks import PassContext
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.timefmt import rfc3339
from tests.agent.conftest import World, wait_until
from tests.agent.test_leader import NS, T0
from tests.conftest import ALICE, ROOT, Clock, replace

# A minute ago, by the real clock the agent runs on: well inside the session's deadline (issue 15's "deadline" task
# ends a session started long ago).
STARTED = rfc3339(time.time() - 60)

MISSING = [{"name": "app", "image": "x", "ready": False, "restartCount": 0,
            "state": {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}}]


class Probe:
    """A leader task that records each pass (and, when told, acts after the clock has moved on)."""

    name = "probe"

    def __init__(self) -> None:
        self.runs: list[tuple[float, int]] = []
        self.then: Any = None

    def run(self, ctx: PassContext) -> None:
        self.runs.append((ctx.now, len(ctx.pods)))
        if self.then is not None:
            self.then(ctx)


PROBE = Probe()
AFTER = Probe()


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> tuple[Probe, Probe]:
    PROBE.__init__()  # type: ignore[misc]
    AFTER.__init__()  # type: ignore[misc]
    monkeypatch.setattr(tasks, "TASKS", {"probe": f"{__name__}:PROBE", "after": f"{__name__}:AFTER"})
    return PROBE, AFTER


@pytest.fixture
def system(world: World) -> World:
    world.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return world


def lifecycle(world: World, clock: Clock, name: str, pods: list[dict[str, Any]] | None = None) -> Lifecycle:
    elector = Elector(world.client, NS, f"portal-{name}_0", clock=clock)
    return Lifecycle(world.cfg, world.client, lambda: pods or [], elector=elector, clock=clock)


def test_only_the_leader_passes_every_interval(system: World, probes: tuple[Probe, Probe]) -> None:
    clock = Clock(T0)
    a = lifecycle(system, clock, "a", [{"metadata": {"name": "p"}}])
    b = lifecycle(system, clock, "b")
    for _ in range(31):  # a minute in retry periods: both elect and tick as their threads would
        for lc in (a, b):
            lc.elector.step()
            lc.step()
        clock.advance(2)
    assert probes[0].runs == [(T0, 1), (T0 + 30, 1), (T0 + 60, 1)], "at once on leading, then every 30 s"
    assert a.stats() == {"passes": 3, "last_pass": T0 + 60, "last_pass_seconds": a.last_duration, "failures": 0,
                         "leader": True, "leader_identity": "portal-a_0", "identity": "portal-a_0", "actions": {}}
    assert b.stats()["passes"] == 0 and b.stats()["leader"] is False
    assert b.stats()["leader_identity"] == "portal-a_0"


def test_a_pass_stops_when_the_leadership_lapses(system: World, probes: tuple[Probe, Probe]) -> None:
    clock = Clock(T0)
    a = lifecycle(system, clock, "a")
    job = system.submit()
    pod = system.client.get("Pod", job, "ood-alice")

    def slow_then_act(ctx: PassContext) -> None:
        clock.advance(10)  # the pass outlived renew_deadline without a renewal (a hung API, a long task)
        ctx.actions.warn(pod, "IdleSoon", "x")

    probes[0].then = slow_then_act
    assert a.elector.step() and a.step()
    assert probes[1].runs == [], "the pass ended: the tasks after it are the next leader's"
    assert a.stats()["failures"] == 1 and a.stats()["actions"] == {}
    assert vocab.WARNING_ANNOTATION not in (system.client.get("Pod", job, "ood-alice")["metadata"].get(
        "annotations") or {})


def fast(cfg: Config, **agent: Any) -> Config:
    timing = {"lifecycle": True, "lease_duration": 10, "renew_deadline": 5.0, "retry_period": 0.05, "interval": 0.2,
              **agent}
    return replace(cfg, **{f"agent.{k}": v for k, v in timing.items()})


def test_two_running_agents_one_leader_and_a_graceful_handover(system: World, probes: tuple[Probe, Probe]) -> None:
    cfg = fast(system.cfg)
    a = Lifecycle(cfg, system.client, list).start()
    try:
        wait_until(a.elector.leading)
        b = Lifecycle(cfg, system.client, list).start()
        try:
            wait_until(lambda: b.elector.leader() == a.elector.identity)
            assert not b.elector.leading()
            a.stop(release=True)
            started = time.monotonic()
            wait_until(b.elector.leading)
            assert time.monotonic() - started < 1.0, "at its next attempt, not after the lease duration"
            assert not a.elector.leading()
        finally:
            b.stop()
    finally:
        a.stop()


def test_the_agent_ends_a_stuck_session_and_releases_on_stop(system: World) -> None:
    job = system.submit()
    system.fk.set_pod_status("ood-alice", job, node_name="n1", startTime=STARTED,
                             containerStatuses=MISSING)
    system.cfg = fast(system.cfg)
    agent = system.start_agent()
    wait_until(lambda: (system.client.get("Pod", job, "ood-alice")["metadata"].get("annotations") or {}).get(
        vocab.END_REASON_ANNOTATION) == "ImageUnavailable")
    events = wait_until(lambda: [(e["involvedObject"]["name"], e["reason"]) for e in system.fk.list(
        "events", "ood-alice") if e.get("reportingComponent") == vocab.AGENT_COMPONENT])
    assert events == [(job, "ImageUnavailable")]
    stats = wait_until(lambda: (s := agent.lifecycle.stats())["passes"] and s)  # counted when the pass ends
    assert stats["leader"] and stats["passes"] >= 1 and stats["actions"] == {("ended", "ImageUnavailable"): 1}
    agent.stop()
    system.agent = None
    assert system.fk.get("leases", vocab.LEASE_NAME, NS)["spec"]["holderIdentity"] == ""


def once(world: World, tmp_path: Path, **agent: Any) -> subprocess.CompletedProcess[str]:
    kubeconfig = world.fk.write_kubeconfig(str(tmp_path / "provisioner"))
    config = tmp_path / "once.yml"
    config.write_text(yaml.safe_dump({"cluster": {"provisioner_kubeconfig": kubeconfig},
                                      "agent": {"socket": world.cfg.agent.socket, **agent}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ood_k8s", "--config", str(config), "agent", "--once"],
                          capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=60)


def test_agent_once_end_to_end(system: World, tmp_path: Path) -> None:
    stuck, done, running = system.submit(), system.submit(), system.submit()
    system.fk.set_pod_status("ood-alice", stuck, node_name="n1", startTime=STARTED,
                             containerStatuses=MISSING)
    system.client.patch("Pod", done, {"metadata": {"annotations": {vocab.RECORDED_ANNOTATION: "x"}}}, "ood-alice")
    system.fk.set_pod_status("ood-alice", done, phase="Succeeded")
    system.ready(ALICE, running)
    out = once(system, tmp_path, retention_days=0)
    assert (out.returncode, out.stdout) == (0, "ood-k8s agent --once: one pass over 3 sessions: deleted 1 "
                                               "(Retention), ended 1 (ImageUnavailable)\n"), out.stderr
    assert system.fk.get("pods", done, "ood-alice") is None
    lease = system.fk.get("leases", vocab.LEASE_NAME, NS)
    assert lease["spec"]["holderIdentity"] == "", "it released what it took"
    again = once(system, tmp_path, retention_days=0)
    assert (again.returncode, again.stdout) == (0, "ood-k8s agent --once: one pass over 2 sessions: nothing to do\n")

    other = Elector(system.client, NS, "portal-b_0")
    assert other.step()
    held = once(system, tmp_path)
    assert (held.returncode, held.stdout) == (0, "ood-k8s agent --once: nothing done: agent portal-b_0 leads\n")
    assert system.fk.get("leases", vocab.LEASE_NAME, NS)["spec"]["holderIdentity"] == "portal-b_0", "untouched"


def test_the_lease_timings_are_checked_together() -> None:
    from ood_k8s.config.loader import parse
    from ood_k8s.core.errors import ConfigError

    assert parse({"agent": {"lease_duration": 30, "renew_deadline": 20}}).agent.renew_deadline == 20
    with pytest.raises(ConfigError) as err:
        parse({"agent": {"renew_deadline": 15}})
    assert err.value.problems == ["agent: retry_period (2.0) < renew_deadline (15.0) < lease_duration (15) is "
                                  "required, or two agents could lead at once"]

"""Leader task "warm" and 'ood-k8s capacity' against the fake API server, with an injected clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from ood_k8s.agent.actions import Actions
from ood_k8s.agent.tasks import TASKS, PassContext, load
from ood_k8s.capacity import holds, warm
from ood_k8s.cli import capacity as cli
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.errors import UsageError
from ood_k8s.core.kube import KubeClient
from tests.capacity.test_placeholders import MEETING_END, WARM_FROM
from tests.courses.course_site import site
from tests.fakekube.fake import FakeKube


class World:
    def __init__(self, fk: FakeKube, cfg: Config) -> None:
        self.fk, self.cfg = fk, cfg
        self.client = KubeClient(fk.url, token=fk.token, ca_file=fk.ca_file, sleep=lambda s: None)
        self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cfg.agent.namespace}})
        for name, value in (("ood-placeholder", -10), ("ood-interactive", 1000)):
            self.client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                "metadata": {"name": name}, "value": value})

    def run(self, now: float) -> Actions:
        hands = Actions(self.client, now, host="test")
        warm.TASK.run(PassContext(self.cfg, self.client, now, [], hands))
        return hands

    def placeholders(self) -> list[str]:
        return sorted(p["metadata"]["name"] for p in self.fk.list("pods", self.cfg.agent.namespace))

    def gone(self) -> None:
        """Let the kubelet finish what is being deleted (grace period 0: the fake may have done so)."""
        for p in self.fk.list("pods", self.cfg.agent.namespace):
            if p["metadata"].get("deletionTimestamp"):
                self.fk.finish_deletion("pods", self.cfg.agent.namespace, p["metadata"]["name"])

    def writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.fk.requests if r.method != "GET"]


@pytest.fixture
def world() -> Iterator[World]:
    fk = FakeKube()
    fk.start()
    try:
        yield World(fk, site())
    finally:
        fk.stop()


def test_warm_is_the_last_registered_task() -> None:
    assert list(TASKS)[-1] == "warm" and load("warm") is warm.TASK


def test_a_meeting_is_held_warm_then_released_and_a_repeated_pass_does_nothing_twice(world: World) -> None:
    world.run(WARM_FROM - 1)
    assert world.placeholders() == []
    world.run(WARM_FROM)
    assert world.placeholders() == ["ood-warm-cs109b-0", "ood-warm-cs109b-1", "ood-warm-cs109b-2"]
    world.fk.reset_requests()
    world.run(WARM_FROM + 60)  # a new leader, or the next pass
    assert world.writes() == []
    # a session preempts one: it is made again (pending until the autoscaler adds a node)
    world.client.delete("Pod", "ood-warm-cs109b-1", world.cfg.agent.namespace, grace_period=0)
    world.gone()
    world.run(WARM_FROM + 120)
    assert world.placeholders() == ["ood-warm-cs109b-0", "ood-warm-cs109b-1", "ood-warm-cs109b-2"]
    hands = world.run(MEETING_END)
    assert sorted(r for _, _, r in hands.done) == ["WarmHoldEnded"] * 3
    world.gone()
    assert world.placeholders() == []
    events = [e["reason"] for e in world.fk.list("events", world.cfg.agent.namespace)]
    assert events.count("WarmHoldEnded") == 3


def test_an_ad_hoc_hold_from_the_command_line(world: World) -> None:
    value, line = cli.hold_entry(world.cfg, "gpu-t4", 2, "90m", 1000.0, "root")
    assert line == "holding 2 placeholder(s) of gpu-t4 until 1970-01-01T01:46:40Z (the agent's leader makes them)"
    holds.write(world.client, world.cfg, "gpu-t4", value)
    world.run(1000.0)
    assert world.placeholders() == ["ood-warm-adhoc-gpu-t4-0", "ood-warm-adhoc-gpu-t4-1"]
    data = cli.status_data(world.cfg, world.client, 1000.0)
    [row] = data["holds"]
    assert (row["kind"], row["profile"], row["count"], row["pending"], row["running"]) == ("ad-hoc", "gpu-t4", 2, 2, 0)
    assert row["why"] == "ad-hoc hold by root until 1970-01-01T01:46:40Z"
    world.fk.set_pod_status(world.cfg.agent.namespace, "ood-warm-adhoc-gpu-t4-0", phase="Running", node_name="n1")
    assert cli.status_data(world.cfg, world.client, 1000.0)["holds"][0]["running"] == 1
    # expiry: the placeholders go and the leader drops the hold from the ConfigMap
    world.run(1000.0 + 90 * 60)
    cm = world.fk.get("configmaps", vocab.WARM_HOLDS_CONFIGMAP, world.cfg.agent.namespace)
    assert not (cm.get("data") or {})
    world.gone()
    assert world.placeholders() == []


def test_releasing_and_refusing(world: World) -> None:
    value, _ = cli.hold_entry(world.cfg, "gpu-t4", 1, "1h", 0.0, "root")
    holds.write(world.client, world.cfg, "gpu-t4", value)
    none, line = cli.hold_entry(world.cfg, "gpu-t4", 0, "1h", 0.0, "root")
    assert none is None and line == "released the ad-hoc hold of gpu-t4"
    holds.write(world.client, world.cfg, "gpu-t4", None)
    assert holds.read(world.client, world.cfg) == []
    with pytest.raises(UsageError, match="unknown profile 'tpu'"):
        cli.hold_entry(world.cfg, "tpu", 1, "1h", 0.0, "root")
    with pytest.raises(UsageError, match="--for: got '90'"):
        cli.hold_entry(world.cfg, "gpu-t4", 1, "90", 0.0, "root")


def _node(name: str, pool: str, images: list[str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {vocab.KARPENTER_NODEPOOL_LABEL: pool}},
            "status": {"images": [{"names": [i], "sizeBytes": 1} for i in images]}}


def test_status_shows_which_pools_have_each_profiles_image(world: World) -> None:
    image = world.cfg.profile("gpu-a10g").image
    world.fk.seed(_node("n1", "gpu-a10g", [image]))
    world.fk.seed(_node("n2", "gpu-a10g", ["docker.io/library/busybox:1"]))
    rows = {(r["profile"], r["pool"]): r for r in cli.status_data(world.cfg, world.client, 0.0)["images"]}
    assert (rows[("gpu-a10g", "gpu-a10g")]["nodes"], rows[("gpu-a10g", "gpu-a10g")]["with_image"]) == (2, 1)
    assert rows[("gpu-t4", "gpu-t4")]["nodes"] == 0


def test_the_commands_end_to_end(world: World, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from ood_k8s.cli import main

    kubeconfig = tmp_path / "provisioner.kubeconfig"
    world.fk.write_kubeconfig(str(kubeconfig))
    config = tmp_path / "ood_k8s.yml"
    config.write_text(yaml.safe_dump({"cluster": {"server": world.fk.url, "provisioner_kubeconfig": str(kubeconfig),
                                                  "retries": 0}}))
    assert main(["--config", str(config), "capacity", "warm", "--profile", "gpu-t4", "--count", "2", "--for",
                 "90m", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("dry run, nothing recorded: holding 2 placeholder(s) of gpu-t4 until ")
    assert world.fk.get("configmaps", vocab.WARM_HOLDS_CONFIGMAP, world.cfg.agent.namespace) is None
    assert main(["--config", str(config), "capacity", "warm", "--profile", "gpu-t4", "--count", "2"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "capacity", "status"]) == 0
    out = capsys.readouterr().out
    assert "adhoc-gpu-t4  gpu-t4   2     0        0        2        ad-hoc hold by " in out
    assert "gpu-a10g  gpu-a10g    0/0               no" in out
    assert main(["--config", str(config), "capacity", "status", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["holds"][0]["missing"] == 2
    assert main(["--config", str(config), "capacity", "warm", "--profile", "nope", "--count", "1"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err

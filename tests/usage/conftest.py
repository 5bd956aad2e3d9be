"""The usage tests' world: the fake API, a course with a GPU-hour budget, session pods played by hand.

Pods are created through the API as the adapter makes them (labels, annotations, resources) and then
given the status a kubelet would write; the clock is a number (no sleeps).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from ood_k8s.agent.actions import Actions
from ood_k8s.agent.service import SESSIONS
from ood_k8s.agent.tasks import PassContext
from ood_k8s.config import Config
from ood_k8s.config.course import CourseConfig
from ood_k8s.core import vocab
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.timefmt import rfc3339, timestamp
from ood_k8s.usage import view as view_mod
from tests.conftest import replace
from tests.fakekube import FakeKube

AGENT_NS = "ood-k8s-system"
T0 = timestamp("2027-02-01T10:00:00Z") or 0.0  # a Monday of the term
HOUR = 3600.0
CS109B = CourseConfig(name="cs109b", title="Data Science 2", groups=["students"], instructors="cs109b-staff",
                      profiles=["gpu-t4", "cpu"], term_start="2027-01-25", term_end="2027-05-15",
                      gpu_hours_per_student=20.0)


def config(**changes: Any) -> Config:
    return replace(Config(), **{"courses": [CS109B], **changes})


class World:
    def __init__(self, fk: FakeKube) -> None:
        self.fk = fk
        self.client = self.new_client()
        for ns in ("ood-alice", "ood-bob", AGENT_NS):
            self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for i, (itype, gpus, cpu) in enumerate((("g4dn.xlarge", "1", "4"), ("g4dn.12xlarge", "4", "48"),
                                                 ("m5.2xlarge", "0", "8"))):
            self.fk.seed({"apiVersion": "v1", "kind": "Node",
                          "metadata": {"name": f"n{i + 1}", "labels": {"node.kubernetes.io/instance-type": itype}},
                          "status": {"capacity": {"cpu": cpu, "memory": "64Gi", "nvidia.com/gpu": gpus}}})
        self.cfg = config(**{"cluster.server": fk.url})
        self.count = 0

    def new_client(self) -> KubeClient:
        """Another agent's connection (a restart, another portal)."""
        return KubeClient(self.fk.url, token=self.fk.token, ca_file=self.fk.ca_file, sleep=lambda s: None)

    def session(self, user: str = "alice", course: str = "cs109b", profile: str = "gpu-t4", gpus: int = 1,
                cpu: str = "4", finalizer: bool = False) -> dict[str, Any]:
        """A session pod as submit makes it (not started yet)."""
        self.count += 1
        labels = {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY, vocab.USER_LABEL: user, vocab.JOB_LABEL: "x",
                  vocab.PROFILE_LABEL: profile}
        if course:
            labels[vocab.COURSE_LABEL] = course
        limits = {"cpu": cpu, "memory": "16Gi", **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"jupyter-{self.count:04d}", "namespace": f"ood-{user}", "labels": labels,
                            "annotations": {vocab.USERNAME_ANNOTATION: user},
                            **({"finalizers": [vocab.USAGE_FINALIZER]} if finalizer else {})},
               "spec": {"activeDeadlineSeconds": 8 * 3600, "restartPolicy": "Never",
                        "containers": [{"name": "app", "image": "x",
                                        "resources": {"limits": limits, "requests": {"cpu": cpu, "memory": "16Gi"}}}]}}
        return self.client.create(pod)

    def start(self, pod: dict[str, Any], at: float, node: str = "n1") -> dict[str, Any]:
        meta = pod["metadata"]
        return self.fk.set_pod_status(meta["namespace"], meta["name"], node_name=node, phase="Running",
                                      startTime=rfc3339(at), containerStatuses=[{
                                          "name": "app", "ready": True, "restartCount": 0, "image": "x",
                                          "imageID": "", "state": {"running": {"startedAt": rfc3339(at)}}}])

    def finish(self, pod: dict[str, Any], at: float, phase: str = "Succeeded") -> dict[str, Any]:
        meta = pod["metadata"]
        current = self.fk.get("pods", meta["name"], meta["namespace"]) or pod
        started = current["status"]["startTime"]
        return self.fk.set_pod_status(meta["namespace"], meta["name"], phase=phase, containerStatuses=[{
            "name": "app", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
            "state": {"terminated": {"exitCode": 0, "startedAt": started, "finishedAt": rfc3339(at)}}}])

    def pods(self, client: KubeClient | None = None) -> list[dict[str, Any]]:
        """What an agent's cache holds: every session pod."""
        return (client or self.client).list("Pod", None, label_selector=SESSIONS)

    def context(self, now: float, client: KubeClient | None = None, cfg: Config | None = None) -> PassContext:
        client = client or self.client
        return PassContext(cfg=cfg or self.cfg, client=client, now=now, pods=self.pods(client),
                           actions=Actions(client, now, logging.getLogger("test"), host="portal-1"))

    def ledger(self) -> dict[str, dict[str, str]]:
        """Every shard's data, by name."""
        return {cm["metadata"]["name"]: cm.get("data") or {} for cm in self.fk.list("configmaps", AGENT_NS)}

    def writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.fk.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


@pytest.fixture(autouse=True)
def _fresh_views() -> Iterator[None]:
    view_mod._VIEWS.clear()
    yield
    view_mod._VIEWS.clear()


@pytest.fixture
def world() -> Iterator[World]:
    with FakeKube() as fk:
        yield World(fk)

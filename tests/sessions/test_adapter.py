"""Adapter against the fake API over HTTPS: round trips per verb, no orphans, hold/release, errors."""

from __future__ import annotations

import base64
import itertools
from typing import Any, Callable

import pytest

from ood_k8s.core import errors
from ood_k8s.core.kube import KubeClient
from ood_k8s.sessions.adapter import Adapter
from tests.conftest import ALICE, BOB

NS = "ood-alice"
CHILDREN = ("secrets", "configmaps", "services")


def counter_rand() -> Callable[[int], bytes]:
    seq = itertools.count(1)
    return lambda n: next(seq).to_bytes(n, "big")


@pytest.fixture
def client(fake_kube) -> KubeClient:
    c = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None, retries=1)
    for ns in (NS, "ood-bob"):
        c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    # what 'ood-k8s cluster render' makes: sessions run at ood-interactive (issue 11)
    c.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "ood-interactive"},
              "value": 1000})
    fake_kube.reset_requests()
    c.round_trips = 0
    return c


@pytest.fixture
def make_adapter(client, make_config) -> Callable[..., Adapter]:
    def make(ident=ALICE, **changes: Any) -> Adapter:
        return Adapter(make_config(**{"portal.submit_host": "ood.example.edu", **changes}), ident, client,
                       clock=lambda: 1.9e9, rand=counter_rand())

    return make


JUPYTER = {"content": "#!/bin/bash\njupyter lab\n", "job_name": "sys/dashboard/sys/jupyter", "wall_time": 3600,
           "native": {"container": {"port": 8888}}}


def everything(fk) -> list[tuple[str, str]]:
    return sorted((plural, o["metadata"]["name"]) for plural in ("pods", *CHILDREN) for o in fk.list(plural, NS))


def ready(fk, job: str, node: str = "ip-10-0-1-5.ec2.internal") -> None:
    fk.set_pod_status(NS, job, node_name=node, phase="Running", podIP="10.0.7.9", hostIP="10.0.1.5",
                      conditions=[{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
                      containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
                                          "state": {"running": {"startedAt": "2030-03-17T17:45:00Z"}}}])


def test_submit_is_three_round_trips_and_children_are_owned(make_adapter, client, fake_kube) -> None:
    job = make_adapter().submit(JUPYTER)
    assert job.startswith("jupyter-") and client.round_trips == 3
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in fake_kube.requests] == [
        ("POST", "pods"), ("POST", "secrets"), ("POST", "configmaps")]
    pod = fake_kube.get("pods", job, NS)
    for plural in ("secrets", "configmaps"):
        (child,) = fake_kube.list(plural, NS)
        assert child["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": job,
                                                         "uid": pod["metadata"]["uid"], "controller": True,
                                                         "blockOwnerDeletion": False}]
    secret = fake_kube.get("secrets", f"{job}-secret", NS)
    assert len(base64.b64decode(secret["data"]["password"])) == 32
    assert fake_kube.get("configmaps", f"{job}-files", NS)["data"]["script.sh"] == JUPYTER["content"]
    # issue 15: without the agent's lifecycle the pod's deadline is the granted wall time (also an annotation)
    assert pod["spec"]["automountServiceAccountToken"] is False and pod["spec"]["activeDeadlineSeconds"] == 3600
    assert pod["metadata"]["annotations"]["ood-k8s.io/walltime"] == "3600"


def test_nodeport_submit_is_four_round_trips_and_info_needs_no_service_read(make_adapter, client, fake_kube) -> None:
    adapter = make_adapter(**{"cluster.connection": "nodeport"})
    job = adapter.submit(JUPYTER)
    assert client.round_trips == 4
    node_port = fake_kube.get("services", f"{job}-svc", NS)["spec"]["ports"][0]["nodePort"]
    ready(fake_kube, job)
    client.round_trips = 0
    info = adapter.info(job)
    assert client.round_trips == 2
    assert info.ood_connection_info == {"host": "ip-10-0-1-5.ec2.internal", "port": node_port,
                                        "password": info.ood_connection_info["password"]}
    # The app learns the same address: its node from the downward API, the port from the job's Secret.
    env = {e["name"]: e for e in fake_kube.get("pods", job, NS)["spec"]["containers"][0]["env"]}
    assert env["OOD_K8S_CONNECT_HOST"]["valueFrom"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}
    assert env["OOD_K8S_CONNECT_PORT"]["valueFrom"] == {"secretKeyRef": {"name": f"{job}-secret", "key": "port"}}
    secret = fake_kube.get("secrets", f"{job}-secret", NS)
    assert base64.b64decode(secret["data"]["port"]).decode() == str(node_port)


def test_nodeport_service_without_a_node_port_is_rolled_back(make_adapter, client, fake_kube, monkeypatch) -> None:
    # Should an API server answer without allocating one, the session could never start: refuse it.
    create = client.create

    def no_node_port(obj, *args, **kwargs):
        made = create(obj, *args, **kwargs)
        if made["kind"] == "Service":
            del made["spec"]["ports"][0]["nodePort"]
        return made

    monkeypatch.setattr(client, "create", no_node_port)
    with pytest.raises(errors.KubeError) as exc:
        make_adapter(**{"cluster.connection": "nodeport"}).submit(JUPYTER)
    assert str(exc.value).startswith("the API server gave Service jupyter-") and "no node port" in str(exc.value)
    assert [(r.method, r.path.split("/")[5]) for r in fake_kube.requests] == [
        ("POST", "pods"), ("POST", "services"), ("DELETE", "pods")]
    assert fake_kube.list("secrets", NS) == [] and fake_kube.list("configmaps", NS) == []


def test_info_round_trips_and_connection_info_only_when_ready(make_adapter, client, fake_kube) -> None:
    adapter = make_adapter()
    job = adapter.submit(JUPYTER)
    client.round_trips = 0
    info = adapter.info(job)  # pending, nothing decisive in the pod: one more call for events
    assert (info.status, client.round_trips) == ("queued", 2) and info.ood_connection_info is None
    fake_kube.set_pod_status(NS, job, node_name="n1", phase="Running",
                             containerStatuses=[{"name": "app", "ready": False, "restartCount": 0, "image": "x",
                                                 "imageID": "", "state": {"running": {"startedAt":
                                                                                      "2030-03-17T17:45:00Z"}}}])
    client.round_trips = 0
    info = adapter.info(job)
    assert (info.status, client.round_trips) == ("queued", 1)
    assert info.reason == "starting the app (waiting for it to answer on port 8888)"
    ready(fake_kube, job)
    client.round_trips = 0
    info = adapter.info(job)
    assert client.round_trips == 2
    password = base64.b64decode(fake_kube.get("secrets", f"{job}-secret", NS)["data"]["password"]).decode()
    assert info.status == "running" and info.ood_connection_info == {"host": "10.0.7.9", "port": 8888,
                                                                     "password": password}
    d = info.to_dict()
    assert {k: d[k] for k in ("id", "status", "allocated_nodes", "submit_host", "job_name", "job_owner", "procs",
                              "queue_name", "wallclock_limit", "gpus", "dispatch_time", "wallclock_time")} == {
        "id": job, "status": "running", "allocated_nodes": [{"name": "ip-10-0-1-5.ec2.internal", "procs": 1}],
        "submit_host": "ood.example.edu", "job_name": "sys/dashboard/sys/jupyter", "job_owner": "alice", "procs": 1,
        "queue_name": "cpu", "wallclock_limit": 3600, "gpus": 0, "dispatch_time": 1900000000 - 100,
        "wallclock_time": 100}


def test_pending_reason_comes_from_events(make_adapter, fake_kube) -> None:
    adapter = make_adapter()
    job = adapter.submit(JUPYTER)
    pod = fake_kube.get("pods", job, NS)
    fake_kube.set_pod_status(NS, job, conditions=[{"type": "PodScheduled", "status": "False",
                                                   "reason": "Unschedulable", "message": "0/2 nodes are available"}])
    fake_kube.add_event(NS, pod, "Nominated", "Pod should schedule on: nodeclaim/gpu-t4-8x2kq", component="karpenter")
    assert adapter.info(job).reason == "a new node is being started for this session (usually 1-3 minutes)"


def test_info_all_and_delete_are_one_call_each(make_adapter, client, fake_kube) -> None:
    adapter = make_adapter()
    first = adapter.submit(JUPYTER)
    second = adapter.submit({**JUPYTER, "native": {"profile": "gpu-t4"}})
    make_adapter(BOB).submit(JUPYTER)  # another user's job is not listed
    client.round_trips = 0
    infos = adapter.info_all()
    assert client.round_trips == 1 and [i.id for i in infos] == sorted([first, second])
    assert {i.queue_name for i in infos} == {"cpu", "gpu-t4"} and {i.gpus for i in infos} == {0, 1}
    ready(fake_kube, first)
    client.round_trips = 0
    adapter.delete(first)
    assert client.round_trips == 1
    info = adapter.info(first)
    assert (info.status, info.reason) == ("completed", "the session is being stopped")  # terminating: not running
    fake_kube.finish_deletion("pods", NS, first)
    assert all(not name.startswith(first) for _, name in everything(fake_kube))


def test_info_where_owner(make_adapter, fake_kube) -> None:
    alice, bob = make_adapter(), make_adapter(BOB)
    job = alice.submit(JUPYTER)
    bob.submit(JUPYTER)
    fake_kube.authorize = lambda user, verb, resource, ns: ns != "ood-bob"
    assert [i.id for i in alice.info_where_owner("alice")] == [job]
    assert alice.info_where_owner(["bob", "not a user!"]) == []


@pytest.mark.parametrize("failing", ["secrets", "configmaps"])
def test_failure_half_way_leaves_nothing(make_adapter, fake_kube, failing: str) -> None:
    fake_kube.inject(status=403, method="POST", path_contains=f"/{failing}", retry_after=None,
                     message=f"{failing} is forbidden: exceeded quota", reason="Forbidden")
    with pytest.raises(errors.Forbidden) as exc:
        make_adapter().submit(JUPYTER)
    assert "exceeded quota" in str(exc.value) and "\n" not in str(exc.value)
    assert [r.method for r in fake_kube.requests][-1] == "DELETE"
    for pod in fake_kube.list("pods", NS):
        fake_kube.finish_deletion("pods", NS, pod["metadata"]["name"])
    assert everything(fake_kube) == []


def test_pod_post_without_answer_is_rolled_back(make_adapter, fake_kube) -> None:
    fake_kube.inject(drop=True, method="POST", path_contains="/pods")
    with pytest.raises(errors.Unavailable):
        make_adapter().submit(JUPYTER)
    assert [r.method for r in fake_kube.requests] == ["POST", "DELETE"]
    assert everything(fake_kube) == []


def test_bad_input_sends_nothing(make_adapter, fake_kube) -> None:
    adapter = make_adapter()
    for bad in ({**JUPYTER, "native": {"profile": "nope"}}, {**JUPYTER, "native": {"container": {"memory": "lots"}}},
                {**JUPYTER, "gpus_per_node": 3}, {"contnet": "x"}):
        with pytest.raises(errors.UsageError):
            adapter.submit(bad)
    with pytest.raises(errors.UsageError, match="dependencies"):
        adapter.submit(JUPYTER, afterok=["x"])
    assert fake_kube.requests == []


@pytest.mark.parametrize("mount", [
    {"type": "nfs", "host": "nfs.example.edu", "path": "/export/data"},
    {"type": "host", "path": "/data"},
    {"type": "csi", "driver": "efs.csi.aws.com", "volume_attributes": {"path": "/"}},
    {"type": "pvc", "claim_name": "home-bob"},
], ids=["nfs", "host", "csi", "foreign claim"])
@pytest.mark.parametrize("level", ["restricted", "privileged"])
def test_volumes_the_admission_guard_refuses_create_nothing(make_adapter, fake_kube, mount, level) -> None:
    script = {**JUPYTER, "native": {"container": {"port": 8888},
                                    "mounts": [{"name": "data", "destination_path": "/data", **mount}]}}
    with pytest.raises(errors.NotEntitled) as exc:
        make_adapter(**{"users.pod_security": level}).submit(script)
    assert str(exc.value).startswith("native.mounts[0]") and "storage.extra_mounts" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert [r for r in fake_kube.requests if r.method == "POST"] == [] and everything(fake_kube) == []


def test_hold_and_release_with_scheduling_gates(make_adapter, client, fake_kube) -> None:
    adapter = make_adapter()
    job = adapter.submit(JUPYTER, hold=True)
    assert fake_kube.get("pods", job, NS)["spec"]["schedulingGates"] == [{"name": "ood-k8s.io/hold"}]
    info = adapter.info(job)
    assert (info.status, info.reason) == ("queued_held", "held: release the job to start it")
    adapter.hold(job)  # already held: nothing to do
    client.round_trips = 0
    adapter.release(job)
    assert client.round_trips == 2 and not fake_kube.get("pods", job, NS)["spec"].get("schedulingGates")
    assert adapter.info(job).status == "queued"
    with pytest.raises(errors.UsageError, match="is not held"):
        adapter.release(job)
    with pytest.raises(errors.UsageError, match="can hold a pod only from its creation"):
        adapter.hold(job)
    ready(fake_kube, job)
    with pytest.raises(errors.UsageError, match=r"already scheduled on node \S+ and cannot be held"):
        adapter.hold(job)


def test_unknown_and_malformed_ids(make_adapter, fake_kube) -> None:
    adapter = make_adapter()
    info = adapter.info("jupyter-zzzzzzzz")
    assert (info.status, info.native) == ("completed", {"reason": "the session has ended", "found": False})
    for verb in ("delete", "hold", "release"):
        with pytest.raises(errors.NotFound, match="Invalid job id specified"):
            getattr(adapter, verb)("jupyter-zzzzzzzz")
    for bad in ("../../secrets/x", "UPPER", "", "a" * 64):
        with pytest.raises(errors.UsageError, match="Invalid job id specified"):
            adapter.info(bad)
    fake_kube.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "not-ours", "namespace": NS},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}})
    with pytest.raises(errors.UsageError, match="was not started by ood-k8s"):
        adapter.info("not-ours")


def test_api_down_is_one_line(make_config) -> None:
    client = KubeClient("https://127.0.0.1:9", token="t", retries=0, timeout=1)
    with pytest.raises(errors.Unavailable) as exc:
        Adapter(make_config(), ALICE, client).info("jupyter-0a1b2c3d")
    assert "cannot reach the Kubernetes API" in str(exc.value) and "\n" not in str(exc.value)

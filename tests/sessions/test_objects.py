"""objects: each pod shape pinned by whole-dict comparison, every object strictly schema-valid."""

from __future__ import annotations

import copy
import json

import pytest

from ood_k8s.config import GpuConfig, Profile, Range
from ood_k8s.render import schema
from ood_k8s.sessions import objects
from ood_k8s.sessions.request import Script
from ood_k8s.sessions.resolve import resolve
from tests.conftest import ALICE

JOB = "jupyter-0a1b2c3d"
UID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
OWNER = {"apiVersion": "v1", "kind": "Pod", "name": JOB, "uid": UID, "controller": True,
         "blockOwnerDeletion": False}
HARDENED = {"allowPrivilegeEscalation": False, "privileged": False, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}}
POD_SECURITY = {"runAsUser": 20001, "runAsGroup": 20001, "runAsNonRoot": True, "supplementalGroups": [30001, 30002],
                "seccompProfile": {"type": "RuntimeDefault"},
                "supplementalGroupsPolicy": "Strict"}  # issue 11: the image's /etc/group adds no group
HOME_VOLUME = {"name": "home", "persistentVolumeClaim": {"claimName": "home"}}
HOME_MOUNT = {"name": "home", "mountPath": "/home/alice"}
FILES_VOLUME = {"name": "ood-files", "configMap": {"name": f"{JOB}-files", "defaultMode": 0o755}}
SCRIPT_MOUNT = {"name": "ood-files", "mountPath": "/ood/script.sh", "subPath": "script.sh"}
# issue 15: without the agent's lifecycle (the default) activeDeadlineSeconds is the granted wall time, which
# the walltime annotation records too; tests/sessions/test_extend.py covers the ceiling under an agent.


def downward(port: int | None = None, out: str | None = None, connect_host: str | None = None) -> list[dict]:
    env = [{"name": n, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": p}}} for n, p in (
        ("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"), ("POD_IP", "status.podIP"),
        ("HOST_IP", "status.hostIP"), ("NODE_NAME", "spec.nodeName"))]
    env.append({"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{JOB}-secret", "key": "password"}}})
    if port is not None:
        env.append({"name": "POD_PORT", "value": str(port)})
    if connect_host is not None:  # connection nodeport, main container: where the portal reaches the app
        env += [{"name": "OOD_K8S_CONNECT_HOST", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                            "fieldPath": connect_host}}},
                {"name": "OOD_K8S_CONNECT_PORT", "valueFrom": {"secretKeyRef": {"name": f"{JOB}-secret",
                                                                                "key": "port"}}}]
    if out is not None:
        env += [{"name": "OOD_STDOUT_PATH", "value": out}, {"name": "OOD_STDERR_PATH", "value": out}]
    return env


USER_ENV = [{"name": "USER", "value": "alice"}, {"name": "UID", "value": "20001"},
            {"name": "HOME", "value": "/home/alice"}, {"name": "GROUP", "value": "alice"},
            {"name": "GID", "value": "20001"}, {"name": "KUBECONFIG", "value": "/dev/null"}]


def labels(profile: str, app: str = "app") -> dict:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "ood-k8s", "ood-k8s.io/user": "alice",
            "ood-k8s.io/job": JOB, "ood-k8s.io/profile": profile}


def annotations(job_name: str, walltime: int = 3600, **extra: str) -> dict:
    return {"karpenter.sh/do-not-disrupt": "true", "ood-k8s.io/job-name": job_name, **extra,
            "ood-k8s.io/walltime": str(walltime), "ood-k8s.io/username": "alice"}  # issue 15: the granted wall time


def valid(*objs: dict) -> None:
    for obj in objs:
        schema.validate(obj, "1.33", "test")


def test_cpu_session_pod(make_config) -> None:
    spec = resolve(Script(content="#!/bin/bash\nsleep 1\n", job_name="sys/dashboard/sys/jupyter"), make_config(),
                   ALICE)
    pod = objects.pod(spec, JOB)
    assert pod == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": JOB, "namespace": "ood-alice", "labels": labels("cpu"),
                     "annotations": annotations("sys/dashboard/sys/jupyter")},
        "spec": {
            "restartPolicy": "Never", "activeDeadlineSeconds": 3600, "automountServiceAccountToken": False,
            "enableServiceLinks": False, "securityContext": POD_SECURITY,
            "priorityClassName": "ood-interactive",  # issue 11: every session at its class
            "containers": [{
                "name": "app", "image": "quay.io/jupyter/scipy-notebook:2025-10-20", "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/bash", "/ood/script.sh"], "env": downward() + USER_ENV, "workingDir": "/home/alice",
                "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}},
                "securityContext": HARDENED, "volumeMounts": [HOME_MOUNT, SCRIPT_MOUNT],
            }],
            "volumes": [HOME_VOLUME, FILES_VOLUME],
        },
    }
    valid(pod)


def test_one_gpu_session_pod(make_config) -> None:
    script = Script(content="jupyter lab\n", job_name="jupyter", wall_time=7200, queue_name="gpu-t4",
                    output_path="/home/alice/ondemand/output.log", accounting_id="cs101",
                    native={"container": {"port": 8888}})
    spec = resolve(script, make_config(**{"portal.submit_host": "ood.example.edu"}), ALICE)
    pod = objects.pod(spec, JOB)
    assert pod == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": JOB, "namespace": "ood-alice", "labels": labels("gpu-t4"),
                     "annotations": annotations("jupyter", 7200, **{"ood-k8s.io/account": "cs101",
                                                              "ood-k8s.io/queue": "gpu-t4"})},
        "spec": {
            "restartPolicy": "Never", "activeDeadlineSeconds": 7200, "automountServiceAccountToken": False,
            "enableServiceLinks": False, "securityContext": POD_SECURITY,
            "priorityClassName": "ood-interactive",  # issue 11: every session at its class
            "containers": [{
                "name": "app", "image": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", objects.OUTPUT_WRAPPER, "ood-k8s-job", "/bin/bash", "/ood/script.sh"],
                "env": downward(8888, "/home/alice/ondemand/output.log") + USER_ENV, "workingDir": "/home/alice",
                "resources": {"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                              "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}},
                "securityContext": HARDENED,
                "volumeMounts": [HOME_MOUNT, SCRIPT_MOUNT, {"name": "dshm", "mountPath": "/dev/shm"}],
                "ports": [{"name": "app", "containerPort": 8888, "protocol": "TCP"}],
                "readinessProbe": {"tcpSocket": {"port": 8888}, "initialDelaySeconds": 2, "periodSeconds": 5,
                                   "failureThreshold": 5},
            }],
            "volumes": [HOME_VOLUME, FILES_VOLUME,
                        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}],
            "nodeSelector": {"karpenter.sh/nodepool": "gpu-t4"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }
    valid(pod)


def test_whole_node_pod_is_held_when_asked(make_config) -> None:
    node = Profile(name="a100-node", image="nvcr.io/nvidia/pytorch:25.01-py3", cpu=Range("8", "92"),
                   memory=Range("64Gi", "1000Gi"), gpu=GpuConfig("nvidia.com/gpu", 8, 8), whole_node=True,
                   node_selector={"node.kubernetes.io/instance-type": "p4d.24xlarge"},
                   tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
                   priority_class="interactive", runtime_class="nvidia", groups=["gpu-users"])
    cfg = make_config(profiles=[*make_config().profiles, node], **{"storage.mode": "none"})
    spec = resolve(Script(content="x", native={"profile": "a100-node"}, submit_as_hold=True, job_name="train"),
                   cfg, ALICE)
    pod = objects.pod(spec, JOB)
    assert pod["spec"] == {
        "restartPolicy": "Never", "activeDeadlineSeconds": 3600, "automountServiceAccountToken": False,
        "enableServiceLinks": False, "securityContext": POD_SECURITY,
        "containers": [{
            "name": "app", "image": "nvcr.io/nvidia/pytorch:25.01-py3", "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/bash", "/ood/script.sh"], "env": downward() + USER_ENV, "workingDir": "/home/alice",
            "resources": {"requests": {"cpu": "92", "memory": "1000Gi", "nvidia.com/gpu": "8"},
                          "limits": {"cpu": "92", "memory": "1000Gi", "nvidia.com/gpu": "8"}},
            "securityContext": HARDENED, "volumeMounts": [SCRIPT_MOUNT],
        }],
        "volumes": [FILES_VOLUME],
        "nodeSelector": {"node.kubernetes.io/instance-type": "p4d.24xlarge"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "interactive", "runtimeClassName": "nvidia",
        "schedulingGates": [{"name": "ood-k8s.io/hold"}],
    }
    assert pod["metadata"]["labels"] == labels("a100-node")
    valid(pod)


EVERY_NATIVE_KEY = {
    "profile": "gpu-a10g",
    "gpu_type": "nvidia.com/gpu",
    "container": {
        "name": "rstudio", "image": "rocker/rstudio:4.4", "command": "/init --port 8787", "port": 8787,
        "env": {"RSTUDIO_WHICH_R": "/usr/local/bin/R", "QUOTE": 'say "hi"; rm -rf /'},
        "memory": "8Gi", "cpu": "2", "memory_limit": "12Gi", "memory_request": "6Gi", "cpu_limit": "4",
        "cpu_request": "1", "working_dir": "/home/alice/project", "restart_policy": "OnFailure",
        "image_pull_policy": "Always", "image_pull_secret": "regcred", "supplemental_groups": [30001],
        "startup_probe": {"initial_delay_seconds": 10, "failure_threshold": 30, "period_seconds": 2},
        "labels": {"course": "stat101"},
    },
    "init_containers": [{"name": "prep", "image": "busybox:1.36", "command": ["sh", "-c", "cp /cfg/x /work/"],
                         "env": {"STEP": "1"}}],
    "configmap": {"files": [
        {"filename": "rserver.conf", "data": "www-port=8787\n", "mount_path": "/etc/rstudio/rserver.conf",
         "sub_path": "rserver.conf", "init_mount_path": "/cfg/x", "init_sub_path": "rserver.conf"},
    ]},
    "mounts": [
        {"type": "nfs", "name": "proj", "host": "nfs.example.edu", "path": "/export/proj", "destination_path": "/proj"},
        {"type": "host", "name": "scratch", "path": "/scratch", "host_type": "Directory",
         "destination_path": "/scratch"},
        {"type": "pvc", "name": "data", "claim_name": "course-data", "destination_path": "/data", "read_only": True},
        {"type": "csi", "name": "s3", "driver": "s3.csi.aws.com", "volume_attributes": {"bucketName": "b"},
         "destination_path": "/s3", "sub_path": "alice"},
        {"type": "empty_dir", "name": "tmp", "medium": "Memory", "size_limit": "1Gi", "destination_path": "/tmp"},
        {"type": "configmap", "name": "course", "configmap_name": "stat101", "destination_path": "/course"},
        {"type": "secret", "name": "keys", "secret_name": "api-keys", "destination_path": "/keys", "read_only": True},
    ],
    "node_selector": {"topology.kubernetes.io/zone": "us-east-1a"},
    "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}}]}},
}


def test_every_native_key_of_the_incumbent_and_the_extensions(make_config) -> None:
    # nfs, host and inline csi mounts need a privileged site without the admission guard (before 1.28):
    # the guard refuses them (test_resolve, test_admission_cel).
    cfg = make_config(**{"users.pod_security": "privileged", "cluster.connection": "nodeport",
                         "cluster.kubernetes_version": "1.27", "users.image_pull_secret.name": "site-pull"})
    native = copy.deepcopy(EVERY_NATIVE_KEY)
    spec = resolve(Script(content="echo\n", job_name="rstudio", gpus_per_node=2, native=native), cfg, ALICE)
    assert native == EVERY_NATIVE_KEY  # not mutated
    built = objects.build(spec, JOB, UID, {"password": "s3cret", "port": "31000"})
    pod, svc, secret, cm = built
    user_env = [e if e["name"] != "HOME" else {"name": "HOME", "value": "/home/alice"} for e in USER_ENV]
    main_env = downward(8787, connect_host="spec.nodeName") + user_env + [
        {"name": "RSTUDIO_WHICH_R", "value": "/usr/local/bin/R"}, {"name": "QUOTE", "value": 'say "hi"; rm -rf /'}]
    init_env = downward(8787) + user_env + [{"name": "RSTUDIO_WHICH_R", "value": "/usr/local/bin/R"},
                                            {"name": "QUOTE", "value": 'say "hi"; rm -rf /'},
                                            {"name": "STEP", "value": "1"}]
    native_mounts = [{"name": "proj", "mountPath": "/proj"}, {"name": "scratch", "mountPath": "/scratch"},
                     {"name": "data", "mountPath": "/data", "readOnly": True},
                     {"name": "s3", "mountPath": "/s3", "subPath": "alice"}, {"name": "tmp", "mountPath": "/tmp"},
                     {"name": "course", "mountPath": "/course"},
                     {"name": "keys", "mountPath": "/keys", "readOnly": True}]
    resources_main = {"requests": {"cpu": "1", "memory": "6Gi", "nvidia.com/gpu": "2"},
                      "limits": {"cpu": "4", "memory": "12Gi", "nvidia.com/gpu": "2"}}
    assert pod == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": JOB, "namespace": "ood-alice",
                     "labels": {"course": "stat101", **labels("gpu-a10g", "rstudio")},
                     "annotations": annotations("rstudio")},
        "spec": {
            "restartPolicy": "OnFailure", "activeDeadlineSeconds": 3600, "automountServiceAccountToken": False,
            "enableServiceLinks": False,  # 1.27: no supplementalGroupsPolicy
            "securityContext": {k: v for k, v in POD_SECURITY.items() if k != "supplementalGroupsPolicy"},
            "priorityClassName": "ood-interactive",  # issue 11: every session at its class
            "containers": [{
                "name": "rstudio", "image": "rocker/rstudio:4.4", "imagePullPolicy": "Always",
                "command": ["/init", "--port", "8787"], "env": main_env, "workingDir": "/home/alice/project",
                "resources": resources_main, "securityContext": HARDENED,
                "volumeMounts": [HOME_MOUNT, *native_mounts,
                                 {"name": "ood-files", "mountPath": "/etc/rstudio/rserver.conf",
                                  "subPath": "rserver.conf"}, SCRIPT_MOUNT, {"name": "dshm", "mountPath": "/dev/shm"}],
                "ports": [{"name": "app", "containerPort": 8787, "protocol": "TCP"}],
                "readinessProbe": {"tcpSocket": {"port": 8787}, "initialDelaySeconds": 10, "periodSeconds": 2,
                                   "failureThreshold": 30},
            }],
            "initContainers": [{
                "name": "prep", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "cp /cfg/x /work/"], "env": init_env, "workingDir": "/home/alice",
                "resources": {"requests": {"cpu": "1", "memory": "6Gi"}, "limits": {"cpu": "4", "memory": "12Gi"}},
                "securityContext": HARDENED,
                "volumeMounts": [HOME_MOUNT, *native_mounts,
                                 {"name": "ood-files", "mountPath": "/cfg/x", "subPath": "rserver.conf"}],
            }],
            "volumes": [
                HOME_VOLUME,
                {"name": "proj", "nfs": {"server": "nfs.example.edu", "path": "/export/proj"}},
                {"name": "scratch", "hostPath": {"path": "/scratch", "type": "Directory"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "course-data", "readOnly": True}},
                {"name": "s3", "csi": {"driver": "s3.csi.aws.com", "volumeAttributes": {"bucketName": "b"}}},
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "course", "configMap": {"name": "stat101"}},
                {"name": "keys", "secret": {"secretName": "api-keys"}},
                FILES_VOLUME,
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"}},
            ],
            "nodeSelector": {"karpenter.sh/nodepool": "gpu-a10g", "topology.kubernetes.io/zone": "us-east-1a"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                            {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": EVERY_NATIVE_KEY["affinity"],
            "imagePullSecrets": [{"name": "regcred"}, {"name": "site-pull"}],
        },
    }
    child = {"app.kubernetes.io/managed-by": "ood-k8s", "ood-k8s.io/user": "alice", "ood-k8s.io/job": JOB}
    assert svc == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"{JOB}-svc", "namespace": "ood-alice", "labels": child, "ownerReferences": [OWNER]},
        "spec": {"type": "NodePort", "externalTrafficPolicy": "Local", "selector": {"ood-k8s.io/job": JOB},
                 "ports": [{"name": "app", "protocol": "TCP", "port": 8787, "targetPort": 8787}]},
    }
    assert secret == {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "immutable": True,
        "metadata": {"name": f"{JOB}-secret", "namespace": "ood-alice", "labels": child, "ownerReferences": [OWNER]},
        "data": {"password": "czNjcmV0", "port": "MzEwMDA="},
    }
    assert cm == {
        "apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
        "metadata": {"name": f"{JOB}-files", "namespace": "ood-alice", "labels": child, "ownerReferences": [OWNER]},
        "data": {"rserver.conf": "www-port=8787\n", "script.sh": "echo\n"},
    }
    valid(*built)


@pytest.mark.parametrize(("nodeport_host", "field"), [("node_name", "spec.nodeName"), ("host_ip", "status.hostIP")])
def test_nodeport_session_pod(make_config, nodeport_host: str, field: str) -> None:
    # The pod cannot look up its node port: the main container gets its node and the port the adapter
    # stores in the job's Secret, for the app's connection info (apps/jupyter/template/before.sh.erb).
    cfg = make_config(**{"cluster.connection": "nodeport", "cluster.nodeport_host": nodeport_host})
    script = Script(content="jupyter lab\n", job_name="jupyter", native={
        "container": {"port": 8888},
        "init_containers": [{"name": "prep", "image": "busybox:1.36", "command": ["true"]}]})
    pod = objects.pod(resolve(script, cfg, ALICE), JOB)
    init_env = downward(8888) + USER_ENV
    assert pod == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": JOB, "namespace": "ood-alice", "labels": labels("cpu"),
                     "annotations": annotations("jupyter")},
        "spec": {
            "restartPolicy": "Never", "activeDeadlineSeconds": 3600, "automountServiceAccountToken": False,
            "enableServiceLinks": False, "securityContext": POD_SECURITY,
            "priorityClassName": "ood-interactive",  # issue 11: every session at its class
            "containers": [{
                "name": "app", "image": "quay.io/jupyter/scipy-notebook:2025-10-20", "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/bash", "/ood/script.sh"], "env": downward(8888, connect_host=field) + USER_ENV,
                "workingDir": "/home/alice",
                "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}},
                "securityContext": HARDENED, "volumeMounts": [HOME_MOUNT, SCRIPT_MOUNT],
                "ports": [{"name": "app", "containerPort": 8888, "protocol": "TCP"}],
                "readinessProbe": {"tcpSocket": {"port": 8888}, "initialDelaySeconds": 2, "periodSeconds": 5,
                                   "failureThreshold": 5},
            }],
            "initContainers": [{
                "name": "prep", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent", "command": ["true"],
                "env": init_env, "workingDir": "/home/alice",
                "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}},
                "securityContext": HARDENED, "volumeMounts": [HOME_MOUNT],
            }],
            "volumes": [HOME_VOLUME, FILES_VOLUME],
        },
    }
    valid(pod)


def test_connect_env_only_with_a_node_port(make_config) -> None:
    names = {"OOD_K8S_CONNECT_HOST", "OOD_K8S_CONNECT_PORT"}
    for changes, script in (({}, Script(native={"container": {"port": 8888}})),  # pod_ip
                            ({"cluster.connection": "nodeport"}, Script(content="x"))):  # no port, no Service
        env = objects.pod(resolve(script, make_config(**changes), ALICE), JOB)["spec"]["containers"][0]["env"]
        assert not names & {e["name"] for e in env}
    # An app that sets them itself keeps its own values, once.
    script = Script(native={"container": {"port": 8888, "env": {"OOD_K8S_CONNECT_HOST": "portal.example.edu"}}})
    env = objects.pod(resolve(script, make_config(**{"cluster.connection": "nodeport"}), ALICE), JOB)[
        "spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] in names] == [
        {"name": "OOD_K8S_CONNECT_PORT", "valueFrom": {"secretKeyRef": {"name": f"{JOB}-secret", "key": "port"}}},
        {"name": "OOD_K8S_CONNECT_HOST", "value": "portal.example.edu"}]


def test_service_only_for_nodeport_with_a_port(make_config) -> None:
    spec = resolve(Script(native={"container": {"port": 8888}}), make_config(), ALICE)
    assert objects.service(spec, JOB, OWNER) is None  # pod_ip: the portal reaches the pod directly
    spec = resolve(Script(content="x"), make_config(**{"cluster.connection": "nodeport"}), ALICE)
    assert objects.service(spec, JOB, OWNER) is None  # no port: nothing to expose
    assert [o["kind"] for o in objects.build(spec, JOB, UID, {"password": "p"})] == ["Pod", "Secret", "ConfigMap"]


def test_user_env_wins_over_downward_values_without_duplicates(make_config) -> None:
    spec = resolve(Script(native={"container": {"env": {"POD_IP": "override", "PASSWORD": "mine"}}}), make_config(),
                   ALICE)
    env = objects.pod(spec, JOB)["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert len(names) == len(set(names))
    assert {"name": "POD_IP", "value": "override"} in env and {"name": "PASSWORD", "value": "mine"} in env


def test_building_is_pure(make_config) -> None:
    spec = resolve(Script(content="x", native=copy.deepcopy(EVERY_NATIVE_KEY)),
                   make_config(**{"users.pod_security": "privileged", "cluster.kubernetes_version": "1.27"}), ALICE)
    before = repr(spec)
    first = json.dumps(objects.build(spec, JOB, UID, {"password": "p"}))
    built = objects.build(spec, JOB, UID, {"password": "p"})
    built[0]["spec"]["containers"][0]["env"].clear()
    built[0]["spec"]["volumes"][0]["name"] = "changed"
    assert json.dumps(objects.build(spec, JOB, UID, {"password": "p"})) == first and repr(spec) == before


@pytest.mark.parametrize("payload", ['a"b', "new\nline", "$(rm -rf /)", "`id`", "\\", "{{ 7*7 }}", "é 中文 😀"])
def test_hostile_values_arrive_verbatim(make_config, payload: str) -> None:
    spec = resolve(Script(content=payload, job_name=payload, job_environment={"X": payload},
                          output_path="/home/alice/" + payload.replace("\n", "")), make_config(), ALICE)
    built = objects.build(spec, JOB, UID, {"password": payload})
    pod, _, cm = built
    assert {"name": "X", "value": payload} in pod["spec"]["containers"][0]["env"]
    assert pod["metadata"]["annotations"]["ood-k8s.io/job-name"] == payload
    assert cm["data"]["script.sh"] == payload
    # the output path reaches the wrapper only as an environment value, never in the command line
    assert pod["spec"]["containers"][0]["command"][2] == objects.OUTPUT_WRAPPER
    valid(*built)


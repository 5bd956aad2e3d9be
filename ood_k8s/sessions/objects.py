"""What a job becomes: pure functions from a resolved :class:`~ood_k8s.sessions.spec.JobSpec` to objects.

A job is a Pod plus only what it needs: a Secret (the app's password, read by the container through
an env ``secretKeyRef`` -- no init container, no API access from inside the pod), a ConfigMap (the
job script and app files) and, for ``connection: nodeport`` only, a NodePort Service -- whose node
port the Secret then carries too, for the app to read (``OOD_K8S_CONNECT_PORT``, next to its node in
``OOD_K8S_CONNECT_HOST``) and write into its connection info.  Children carry an ownerReference to
the Pod, so deleting the Pod is the whole delete.

Dicts are built directly in Python (no template rendering, no YAML parsing): OOD can submit a whole
class at once and building must stay in the tens of microseconds.  Every function here is pure --
same spec in, same dict out -- and tests pin each shape by whole-dict comparison.
"""

from __future__ import annotations

import base64
from typing import Any

from ood_k8s.core import names, vocab
from ood_k8s.core.vocab import APP_NAME_LABEL, HOLD_GATE
from ood_k8s.sessions.spec import FILES_VOLUME, SCRIPT_MOUNT, SHM_VOLUME, ContainerSpec, JobSpec

PASSWORD_KEY = "password"  # noqa: S105 (a key name, not a secret)
PORT_KEY = "port"
PASSWORD_ENV = "PASSWORD"  # noqa: S105 (an env name)
# connection nodeport: what the app must put in its connection info, since the pod cannot look up
# its node port (apps/jupyter's before.sh reads these).
CONNECT_HOST_ENV = "OOD_K8S_CONNECT_HOST"
CONNECT_PORT_ENV = "OOD_K8S_CONNECT_PORT"
_CONNECT_HOST_FIELDS = {"node_name": "spec.nodeName", "host_ip": "status.hostIP"}

# Sends the job script's output to OOD's output_path/error_path like a batch system would, but
# only when the file can be opened: a missing directory must not kill the session.  Paths arrive
# as environment variables, never spliced into the command line.
OUTPUT_WRAPPER = (
    'o="$OOD_STDOUT_PATH"; e="${OOD_STDERR_PATH:-$o}"; '
    'if [ -n "$o" ] && true 2>/dev/null >>"$o"; then exec >>"$o"; fi; '
    'if [ -n "$e" ] && true 2>/dev/null >>"$e"; then exec 2>>"$e"; fi; '
    'exec "$@"'
)

_DOWNWARD = (
    ("POD_NAME", "metadata.name"),
    ("POD_NAMESPACE", "metadata.namespace"),
    ("POD_IP", "status.podIP"),
    ("HOST_IP", "status.hostIP"),
    ("NODE_NAME", "spec.nodeName"),
)


def owner_reference(job_id: str, uid: str) -> dict[str, Any]:
    # blockOwnerDeletion would need update rights on pods/finalizers; background GC needs none.
    return {"apiVersion": "v1", "kind": "Pod", "name": job_id, "uid": uid, "controller": True,
            "blockOwnerDeletion": False}


def pod_labels(spec: JobSpec, job_id: str) -> dict[str, str]:
    return {**spec.labels, APP_NAME_LABEL: spec.container.name, **spec.user_labels,
            vocab.JOB_LABEL: job_id, vocab.PROFILE_LABEL: spec.profile}


def child_labels(spec: JobSpec, job_id: str) -> dict[str, str]:
    return {**spec.user_labels, vocab.JOB_LABEL: job_id}


def _child_meta(spec: JobSpec, job_id: str, name: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": spec.namespace, "labels": child_labels(spec, job_id)}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return meta


def exposes_node_port(spec: JobSpec) -> bool:
    """``connection: nodeport`` and an app with a port: the job gets a NodePort Service."""
    return spec.connection == "nodeport" and spec.container.port is not None


def _env(spec: JobSpec, job_id: str, ctr: ContainerSpec, *, main: bool) -> list[dict[str, Any]]:
    own = {name for name, _ in ctr.env}
    secret_name = names.job_children(job_id)["secret"]
    env: list[dict[str, Any]] = [
        {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
        for name, path in _DOWNWARD if name not in own
    ]
    if PASSWORD_ENV not in own:
        env.append({"name": PASSWORD_ENV, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": PASSWORD_KEY}}})
    if spec.container.port is not None and "POD_PORT" not in own:
        env.append({"name": "POD_PORT", "value": str(spec.container.port)})
    if main and exposes_node_port(spec):
        if CONNECT_HOST_ENV not in own:
            env.append({"name": CONNECT_HOST_ENV, "valueFrom": {"fieldRef": {
                "apiVersion": "v1", "fieldPath": _CONNECT_HOST_FIELDS[spec.nodeport_host]}}})
        if CONNECT_PORT_ENV not in own:
            # Not optional: the adapter writes the port before the container can start (its ConfigMap comes last).
            env.append({"name": CONNECT_PORT_ENV, "valueFrom": {"secretKeyRef": {"name": secret_name,
                                                                                "key": PORT_KEY}}})
    if spec.script_mode and spec.stdout_path:
        env.append({"name": "OOD_STDOUT_PATH", "value": spec.stdout_path})
        env.append({"name": "OOD_STDERR_PATH", "value": spec.stderr_path or spec.stdout_path})
    env.extend({"name": name, "value": value} for name, value in ctr.env)
    return env


def _resources(spec: JobSpec, gpus: bool) -> dict[str, Any]:
    requests = {"cpu": spec.cpu_request, "memory": spec.memory_request}
    limits = {"cpu": spec.cpu_limit, "memory": spec.memory_limit}
    if gpus and spec.gpus:
        requests[spec.gpu_resource] = str(spec.gpus)
        limits[spec.gpu_resource] = str(spec.gpus)
    return {"requests": requests, "limits": limits}


_HARDENED = {"allowPrivilegeEscalation": False, "privileged": False, "runAsNonRoot": True,
             "capabilities": {"drop": ["ALL"]}}


def _main_command(spec: JobSpec) -> list[str]:
    if not spec.script_mode:
        return list(spec.container.command)
    if spec.stdout_path:
        return ["/bin/sh", "-c", OUTPUT_WRAPPER, "ood-k8s-job", spec.shell, SCRIPT_MOUNT]
    return [spec.shell, SCRIPT_MOUNT]


def _container(spec: JobSpec, job_id: str, ctr: ContainerSpec, *, main: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": ctr.name,
        "image": ctr.image,
        "imagePullPolicy": ctr.image_pull_policy,
        "command": _main_command(spec) if main else list(ctr.command),
        "env": _env(spec, job_id, ctr, main=main),
        "workingDir": ctr.working_dir or spec.home,
        "resources": _resources(spec, gpus=main),
        "securityContext": {**_HARDENED, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [dict(m) for m in (spec.mounts if main else spec.init_mounts)],
    }
    if main and ctr.port is not None:
        out["ports"] = [{"name": "app", "containerPort": ctr.port, "protocol": "TCP"}]
        # A readiness (not startup) probe: a slow first start is reported as "starting", never killed.
        out["readinessProbe"] = {"tcpSocket": {"port": ctr.port}, **(ctr.probe or {})}
    if not out["volumeMounts"]:
        del out["volumeMounts"]
    return out


def pod(spec: JobSpec, job_id: str) -> dict[str, Any]:
    """The session's Pod (hardened, its ceiling enforced by the cluster, held if asked)."""
    children = names.job_children(job_id)
    pod_spec: dict[str, Any] = {
        "restartPolicy": spec.restart_policy,
        "activeDeadlineSeconds": spec.ceiling or spec.walltime,  # the ceiling: an extend moves the deadline under it
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsUser": spec.uid,
            "runAsGroup": spec.gid,
            "runAsNonRoot": True,
            "supplementalGroups": list(spec.supplemental_groups),
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec, job_id, spec.container, main=True)],
    }
    if spec.init_containers:
        pod_spec["initContainers"] = [_container(spec, job_id, c, main=False) for c in spec.init_containers]
    volumes = [dict(v) for v in spec.volumes]
    uses_files = any(m["name"] == FILES_VOLUME for m in spec.mounts + spec.init_mounts)
    if uses_files:
        volumes.append({"name": FILES_VOLUME, "configMap": {"name": children["configmap"], "defaultMode": 0o755}})
    if spec.shm_size:
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}})
    if volumes:
        pod_spec["volumes"] = volumes
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in spec.tolerations]
    if spec.affinity:
        pod_spec["affinity"] = dict(spec.affinity)
    if spec.priority_class:
        pod_spec["priorityClassName"] = spec.priority_class
    if spec.runtime_class:
        pod_spec["runtimeClassName"] = spec.runtime_class
    if spec.strict_groups:  # only the pod's own groups: the image's /etc/group may add none (guard-enforced)
        pod_spec["securityContext"]["supplementalGroupsPolicy"] = "Strict"
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    if spec.hold:
        pod_spec["schedulingGates"] = [{"name": HOLD_GATE}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": job_id,
            "namespace": spec.namespace,
            "labels": pod_labels(spec, job_id),
            "annotations": {**spec.annotations, vocab.USERNAME_ANNOTATION: spec.username},
        },
        "spec": pod_spec,
    }


def secret(spec: JobSpec, job_id: str, owner: dict[str, Any] | None, data: dict[str, str]) -> dict[str, Any]:
    """The app's credentials; every key becomes part of OOD's connection info once the app is ready."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _child_meta(spec, job_id, names.job_children(job_id)["secret"], owner),
        "type": "Opaque",
        "immutable": True,
        "data": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()},
    }


def configmap(spec: JobSpec, job_id: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    """The job script (``/ood/script.sh``) and the app's files; immutable, so kubelets need not watch it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _child_meta(spec, job_id, names.job_children(job_id)["configmap"], owner),
        "immutable": True,
        "data": {f.filename: f.data for f in spec.files},
    }


def service(spec: JobSpec, job_id: str, owner: dict[str, Any] | None) -> dict[str, Any] | None:
    """A NodePort Service, only for ``connection: nodeport`` and an app with a port."""
    if not exposes_node_port(spec):
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _child_meta(spec, job_id, names.job_children(job_id)["service"], owner),
        "spec": {
            "type": "NodePort",
            # Local: the node port answers on the pod's own node only -- the host the portal is given
            # -- and the portal's source address reaches the pod unchanged, so the user's
            # NetworkPolicy (portal CIDRs) admits it.  Cluster would SNAT it to a node address.
            "externalTrafficPolicy": "Local",
            "selector": {vocab.JOB_LABEL: job_id},
            "ports": [{"name": "app", "protocol": "TCP", "port": spec.container.port,
                       "targetPort": spec.container.port}],
        },
    }


def build(spec: JobSpec, job_id: str, pod_uid: str, secret_data: dict[str, str]) -> list[dict[str, Any]]:
    """Every object of a job, in creation order (dry runs, tests and benchmarks)."""
    owner = owner_reference(job_id, pod_uid)
    objs = [pod(spec, job_id)]
    svc = service(spec, job_id, owner)
    if svc is not None:
        objs.append(svc)
    objs += [secret(spec, job_id, owner, secret_data), configmap(spec, job_id, owner)]
    return objs

"""Attacks on the pod guard from a student's own kubeconfig, evaluated against the RENDERED guard
(``cluster render``) and the hook's own Namespace, as kube-apiserver would: CREATE, UPDATE and the
``pods/ephemeralcontainers`` subresource.  Controls: every pod ood-k8s builds is admitted."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from ood_k8s.config import Config, GpuConfig, Profile
from ood_k8s.core import vocab
from tests.conftest import ALICE, BOB
from tests.security import vap

Change = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config()  # the shipped defaults = the example configuration ('ood-k8s config example')


@pytest.fixture(scope="module")
def guard(cfg: Config) -> vap.Guard:
    return vap.pod_guard(cfg)


def _spec(**fields: Any) -> Change:
    def change(pod: dict[str, Any]) -> None:
        pod["spec"].update(copy.deepcopy(fields))
    return change


def _drop(*path: str) -> Change:
    def change(pod: dict[str, Any]) -> None:
        d = pod
        for key in path[:-1]:
            d = d[key]
        d.pop(path[-1], None)
    return change


def _security(**fields: Any) -> Change:
    def change(pod: dict[str, Any]) -> None:
        pod["spec"]["securityContext"].update(fields)
    return change


def _gpu(resource: str = "nvidia.com/gpu", count: str = "1", where: str = "limits") -> Change:
    def change(pod: dict[str, Any]) -> None:
        pod["spec"]["containers"][0]["resources"][where][resource] = count
    return change


def _all(*changes: Change) -> Change:
    def change(pod: dict[str, Any]) -> None:
        for c in changes:
            c(pod)
    return change


GPU_TAINT = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]

# (attack, change to Alice's own cpu session pod, the denial it must meet)
ATTACKS: list[tuple[str, Change, str]] = [
    ("preempt as a system pod", _spec(priorityClassName="system-node-critical"), "priorityClassName may only"),
    ("preempt as a cluster pod", _spec(priorityClassName="system-cluster-critical"), "priorityClassName may only"),
    ("a class of someone else", _spec(priorityClassName="batch-high"), "priorityClassName may only"),
    ("the placeholders' class", _spec(priorityClassName="ood-placeholder"), "priorityClassName may only"),
    ("skip the scheduler", _spec(nodeName="ip-10-0-1-17.ec2.internal"), "may not name their node"),
    ("GPU taint without a GPU", _spec(tolerations=GPU_TAINT), "must request a GPU"),
    ("tolerate every taint", _spec(tolerations=[{"operator": "Exists"}]), "must request a GPU"),
    ("GPU pool without a GPU", _spec(nodeSelector={vocab.KARPENTER_NODEPOOL_LABEL: "gpu-t4"}), "must request a GPU"),
    ("GPU pool by zero GPUs", _all(_spec(tolerations=GPU_TAINT), _gpu(count="0")), "must request a GPU"),
    ("a GPU outside any profile's placement", _all(_spec(tolerations=GPU_TAINT), _gpu()),
     "must select the node pool of a GPU profile"),
    ("a GPU resource no profile offers", _all(_spec(tolerations=[{"key": "amd.com/gpu", "operator": "Exists"}],
                                                    nodeSelector={vocab.KARPENTER_NODEPOOL_LABEL: "gpu-t4"}),
                                              _gpu("amd.com/gpu")), "must request a GPU"),
    ("no wall time", _drop("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds"),
    ("a wall time past the maximum", _spec(activeDeadlineSeconds=8 * 3600 + 1), "activeDeadlineSeconds"),
    ("a zero wall time", _spec(activeDeadlineSeconds=0), "activeDeadlineSeconds"),
    ("the image's /etc/group (Merge)", _security(supplementalGroupsPolicy="Merge"), "supplementalGroupsPolicy"),
    ("the image's /etc/group (unset)", _drop("spec", "securityContext", "supplementalGroupsPolicy"),
     "supplementalGroupsPolicy"),
    ("privileged ports for any uid", _security(sysctls=[{"name": "net.ipv4.ip_unprivileged_port_start",
                                                         "value": "0"}]), "sysctls may only"),
    ("an unsafe sysctl", _security(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), "sysctls may only"),
    ("a runtime outside the profiles", _spec(runtimeClassName="runc-unconfined"), "runtimeClassName"),
    ("a token for another audience", _spec(volumes=[{"name": "aws", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}]}}]), "audience"),
]


@pytest.mark.parametrize(("change", "denial"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_refused(cfg: Config, guard: vap.Guard, change: Change, denial: str) -> None:
    pod = vap.session_pod(cfg, ALICE)
    change(pod)
    denied = guard.admit(pod, vap.hook_namespace(cfg, ALICE))
    assert any(denial in d for d in denied), denied


@pytest.mark.parametrize(("change", "denial"), [a[1:] for a in ATTACKS if a[0] != "skip the scheduler"],
                         ids=[a[0] for a in ATTACKS if a[0] != "skip the scheduler"])
def test_attack_is_refused_on_update_too(cfg: Config, guard: vap.Guard, change: Change, denial: str) -> None:
    old = vap.session_pod(cfg, ALICE)
    old["spec"]["nodeName"] = "ip-10-0-1-17.ec2.internal"  # a running pod: bound by the scheduler
    pod = copy.deepcopy(old)
    change(pod)
    denied = guard.admit(pod, vap.hook_namespace(cfg, ALICE), operation="UPDATE", old=old)
    assert any(denial in d for d in denied), denied


def test_a_bound_pod_may_be_updated_and_debugged(cfg: Config, guard: vap.Guard) -> None:
    """nodeName is refused on CREATE only: the scheduler's binding sets it; later updates carry it."""
    pod = vap.session_pod(cfg, ALICE)
    pod["spec"]["nodeName"] = "ip-10-0-1-17.ec2.internal"
    ns = vap.hook_namespace(cfg, ALICE)
    assert guard.admit(pod, ns, operation="UPDATE", old=pod) == []
    debug = copy.deepcopy(pod)
    debug["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox", "securityContext": {
        "allowPrivilegeEscalation": False, "runAsNonRoot": True}}]
    assert guard.admit(debug, ns, operation="UPDATE", resource="pods/ephemeralcontainers", old=pod) == []


def test_ephemeral_container_attacks(cfg: Config, guard: vap.Guard) -> None:
    pod = vap.session_pod(cfg, ALICE)
    pod["spec"]["nodeName"] = "ip-10-0-1-17.ec2.internal"
    ns = vap.hook_namespace(cfg, ALICE)
    for security in ({"runAsUser": 0, "allowPrivilegeEscalation": False},
                     {"privileged": True, "allowPrivilegeEscalation": False}, {}):
        debug = copy.deepcopy(pod)
        debug["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox", "securityContext": security}]
        assert guard.admit(debug, ns, operation="UPDATE", resource="pods/ephemeralcontainers", old=pod) != []


# --- entitlements: recorded on the namespace by the hook, enforced by the guard ---------------------------


def test_bob_cannot_land_on_a_profile_he_is_not_entitled_to(cfg: Config, guard: vap.Guard) -> None:
    """gpu-a10g is for gpu-users; Bob is not one.  Submit refuses him (access.check_profile); here he builds the
    very pod Alice's a10g session is, in his own namespace, and the guard refuses it."""
    bobs = vap.hook_namespace(cfg, BOB)
    assert bobs["metadata"]["annotations"][vocab.PROFILES_ANNOTATION] == "cpu,gpu-t4"
    pod = vap.session_pod(cfg, ALICE, "gpu-a10g")
    pod["metadata"]["namespace"] = "ood-bob"
    pod["metadata"]["labels"][vocab.PROFILE_LABEL] = "gpu-t4"  # labels prove nothing
    for key in ("runAsUser", "runAsGroup"):
        pod["spec"]["securityContext"][key] = BOB.uid
    pod["spec"]["securityContext"]["supplementalGroups"] = []
    denied = guard.admit(pod, bobs)
    assert any("entitled to (cpu,gpu-t4)" in d for d in denied), denied
    assert guard.admit(vap.session_pod(cfg, BOB, "gpu-t4"), bobs) == []  # control: what he is entitled to


def test_a_namespace_without_recorded_entitlements_runs_no_gpu(cfg: Config, guard: vap.Guard) -> None:
    ns = vap.hook_namespace(cfg, ALICE)
    del ns["metadata"]["annotations"][vocab.PROFILES_ANNOTATION]
    assert guard.admit(vap.session_pod(cfg, ALICE, "gpu-t4"), ns) != []
    assert guard.admit(vap.session_pod(cfg, ALICE, "cpu"), ns) == []
    ns["metadata"]["annotations"][vocab.PROFILES_ANNOTATION] = "cpu,gpu-t4.*"  # not a list of names: nothing
    assert guard.admit(vap.session_pod(cfg, ALICE, "gpu-t4"), ns) != []


def _site_with_a_reserved_cpu_pool() -> Config:
    cfg = Config()
    cfg.profiles = [*cfg.profiles, Profile(name="bigmem", image="x", node_pool="bigmem", groups=["staff"],
                                           priority_class="ood-bigmem", runtime_class="gvisor",
                                           gpu=GpuConfig("nvidia.com/gpu", 0, 0))]
    return cfg


def test_a_reserved_cpu_pool_is_the_entitled_users_only() -> None:
    cfg = _site_with_a_reserved_cpu_pool()
    guard = vap.pod_guard(cfg)
    pod = vap.session_pod(cfg, ALICE)
    pod["spec"]["nodeSelector"] = {vocab.KARPENTER_NODEPOOL_LABEL: "bigmem"}
    assert any("node pools of profiles" in d for d in guard.admit(pod, vap.hook_namespace(cfg, ALICE)))


# --- controls -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["efs", "nfs", "pvc", "none"])
@pytest.mark.parametrize("version", ["1.30", "1.32", "1.33"])
def test_every_pod_ood_k8s_builds_is_admitted(mode: str, version: str) -> None:
    cfg = Config()
    cfg.storage.mode = mode
    cfg.cluster.kubernetes_version = version
    guard = vap.pod_guard(cfg)
    for ident in (ALICE, BOB):
        ns = vap.hook_namespace(cfg, ident)
        for profile in cfg.profiles:
            if ident is BOB and profile.groups:
                continue  # submit refuses him (test_resolve); the guard too (above)
            pod = vap.session_pod(cfg, ident, profile.name)
            assert guard.admit(pod, ns) == [], (ident.username, profile.name)
            bound = copy.deepcopy(pod)
            bound["spec"]["nodeName"] = "ip-10-0-1-17.ec2.internal"
            assert guard.admit(bound, ns, operation="UPDATE", old=bound) == []


def test_profiles_own_classes_are_admitted() -> None:
    cfg = _site_with_a_reserved_cpu_pool()
    staff = ALICE._replace(groups=(*ALICE.groups, "staff"))
    pod = vap.session_pod(cfg, staff, "bigmem")
    assert pod["spec"]["priorityClassName"] == "ood-bigmem" and pod["spec"]["runtimeClassName"] == "gvisor"
    assert vap.pod_guard(cfg).admit(pod, vap.hook_namespace(cfg, staff)) == []


def test_session_pods_carry_what_the_guard_requires(cfg: Config) -> None:
    pod = vap.session_pod(cfg, ALICE)
    assert pod["spec"]["priorityClassName"] == "ood-interactive"
    assert pod["spec"]["securityContext"]["supplementalGroupsPolicy"] == "Strict"
    assert 0 < pod["spec"]["activeDeadlineSeconds"] <= cfg.jobs.max_walltime
    old = Config()
    old.cluster.kubernetes_version = "1.32"  # 'auto': before 1.33 neither the pods nor the guard use Strict
    assert "supplementalGroupsPolicy" not in vap.session_pod(old, ALICE)["spec"]["securityContext"]


def test_a_safe_sysctl_and_a_plain_projected_volume_are_admitted(cfg: Config, guard: vap.Guard) -> None:
    pod = vap.session_pod(cfg, ALICE)
    pod["spec"]["securityContext"]["sysctls"] = [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]
    pod["spec"]["volumes"].append({"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}})
    assert guard.admit(pod, vap.hook_namespace(cfg, ALICE)) == []


def test_submit_refuses_what_the_guard_would(cfg: Config) -> None:
    from ood_k8s.core.errors import NotEntitled

    with pytest.raises(NotEntitled, match="must request a GPU"):
        vap.session_pod(cfg, ALICE, "cpu", tolerations=[{"operator": "Exists"}])
    with pytest.raises(NotEntitled, match="node pool 'gpu-a10g'"):
        vap.session_pod(cfg, ALICE, "cpu", node_selector={vocab.KARPENTER_NODEPOOL_LABEL: "gpu-a10g"})
    with pytest.raises(NotEntitled, match="request a GPU"):
        vap.session_pod(cfg, ALICE, "gpu-t4", gpus=0)


def test_nodeport_sessions_are_admitted_too() -> None:
    cfg = Config()
    cfg.cluster.connection = "nodeport"
    pod = vap.session_pod(cfg, ALICE, "gpu-t4", container={"name": "jupyter", "port": 8888})
    assert vap.pod_guard(cfg).admit(pod, vap.hook_namespace(cfg, ALICE)) == []


@pytest.mark.parametrize("klass", ["system-node-critical", "ood-placeholder"])
def test_config_check_refuses_a_profile_at_a_system_priority(klass: str) -> None:
    from ood_k8s.config import parse, to_dict
    from ood_k8s.core.errors import ConfigError

    data = to_dict(Config(), redact=False)
    data["profiles"][0]["priority_class"] = klass
    with pytest.raises(ConfigError, match="priority_class"):
        parse(data)

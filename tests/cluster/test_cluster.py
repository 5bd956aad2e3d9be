"""``ood-k8s cluster render``: every cluster-scoped object, pinned whole and validated strictly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s.cluster import manifests as cluster
from ood_k8s.config import ExtraMount, KarpenterConfig
from ood_k8s.core.errors import RenderError
from ood_k8s.policy import cel
from ood_k8s.render import schema
from ood_k8s.render.render import Renderer
from tests.hostile import assert_injection_proof

LABELS = {"app.kubernetes.io/managed-by": "ood-k8s"}


def _by(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


@pytest.fixture(scope="module")
def default_objects() -> list[dict[str, Any]]:
    from ood_k8s.config import Config

    return cluster.objects(Config())


# --- the default site, pinned whole ----------------------------------------------------------------------


def test_default_site_renders_these_objects(default_objects: list[dict[str, Any]]) -> None:
    assert [(o["kind"], o["metadata"]["name"]) for o in default_objects] == [
        ("ClusterRole", "ood-user"),
        ("ClusterRole", "ood-k8s-provisioner"),
        ("ClusterRoleBinding", "ood-k8s-provisioner"),
        ("ValidatingAdmissionPolicy", "ood-k8s-pod-guard"),
        ("ValidatingAdmissionPolicyBinding", "ood-k8s-pod-guard"),
        ("ValidatingAdmissionPolicy", "ood-k8s-service-guard"),
        ("ValidatingAdmissionPolicyBinding", "ood-k8s-service-guard"),
        ("PriorityClass", "ood-interactive"),
        ("PriorityClass", "ood-placeholder"),
        ("NodePool", "gpu-t4"),
        ("EC2NodeClass", "gpu-t4"),
        ("NodePool", "gpu-a10g"),
        ("EC2NodeClass", "gpu-a10g"),
    ]


def test_user_role(default_objects: list[dict[str, Any]]) -> None:
    assert _by(default_objects, "ClusterRole", "ood-user") == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "ood-user", "labels": LABELS},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete", "patch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["secrets", "configmaps"],  # no Services in pod_ip mode (issue 11)
             "verbs": ["get", "list", "create", "delete"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]},
        ],
    }


RW = ["get", "list", "create", "patch", "delete"]


def test_provisioner_role_and_binding(default_objects: list[dict[str, Any]]) -> None:
    assert _by(default_objects, "ClusterRole", "ood-k8s-provisioner") == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "ood-k8s-provisioner", "labels": LABELS},
        "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": RW},
            {"apiGroups": [""], "resources": ["resourcequotas", "limitranges"], "verbs": RW},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": RW},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": RW},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["ood-user"],
             "verbs": ["bind", "get"]},
            {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": RW},
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": RW},
            {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]},
            {"apiGroups": ["admissionregistration.k8s.io"],
             "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
             "resourceNames": ["ood-k8s-pod-guard", "ood-k8s-service-guard"], "verbs": ["get"]},
            {"apiGroups": ["storage.k8s.io"], "resources": ["csidrivers"], "resourceNames": ["efs.csi.aws.com"],
             "verbs": ["get"]},
            # issue 11: doctor reads the VPC CNI's NetworkPolicy settings and the EC2NodeClasses' metadata options
            {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": ["aws-node"], "verbs": ["get"]},
            {"apiGroups": ["karpenter.sh"], "resources": ["nodepools"], "verbs": ["get", "list"]},
            {"apiGroups": ["karpenter.k8s.aws"], "resources": ["ec2nodeclasses"], "verbs": ["get", "list"]},
        ],
    }
    assert _by(default_objects, "ClusterRoleBinding") == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "ood-k8s-provisioner", "labels": LABELS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ood-k8s-provisioner"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "ood-k8s-provisioner"}],
    }


def test_admission_policy_and_binding(default_objects: list[dict[str, Any]]) -> None:
    policy = copy.deepcopy(_by(default_objects, "ValidatingAdmissionPolicy", cluster.POLICY_NAME))
    # The CEL itself is pinned by evaluating it (test_admission_cel.py); here, everything around it.
    variables = {v["name"]: v["expression"] for v in policy["spec"].pop("variables")}
    validations = policy["spec"].pop("validations")
    assert policy == {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "ood-k8s-pod-guard", "labels": LABELS},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": LABELS},
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                                   "resources": ["pods", "pods/ephemeralcontainers"]}],
            },
        },
    }
    assert list(variables) == ["annotations", "uid", "gid", "gids", "username", "home", "minUid", "claims",
                               "readOnlyClaims", "subPaths", "podSecurity", "containers", "volumes",
                               # scheduling (issue 11)
                               "profiles", "nodeSelector", "tolerations", "gpuResources", "gpuProfiles",
                               "gpuSelectors", "gpuResourceOf", "nodePools", "gpuPools", "nodepoolKey",
                               "priorityClasses", "runtimeClasses", "safeSysctls", "maxWalltime",
                               "podAnnotations", "oldAnnotations",  # issue 15: the session's lifetime
                               "gpuAsked",
                               "wantsGpu", "nodeTerms", "placementKeys", "profileSelectors", "affinityGpu"]
    assert {k: variables[k] for k in ("minUid", "claims", "readOnlyClaims", "subPaths")} == {
        "minUid": "1000", "claims": '["home"]', "readOnlyClaims": "[]", "subPaths": "[]"}
    for key in (cluster.UID_ANNOTATION, cluster.GID_ANNOTATION, cluster.GIDS_ANNOTATION, cluster.HOME_ANNOTATION,
                "ood-k8s.io/username"):
        assert f"'{key}' in variables.annotations" in "".join(variables.values())
    assert [v.get("reason") for v in validations] == ["Forbidden"] * (21 + 3 + 2)  # 11 + issue 11's scheduling +
    # affinity + issue 15's wall time and deadline
    assert _by(default_objects, "ValidatingAdmissionPolicyBinding", cluster.POLICY_NAME) == {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "ood-k8s-pod-guard", "labels": LABELS},
        "spec": {"policyName": "ood-k8s-pod-guard", "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": LABELS}}},
    }


def test_priority_classes(default_objects: list[dict[str, Any]]) -> None:
    assert [o for o in default_objects if o["kind"] == "PriorityClass"] == [
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
         "metadata": {"name": "ood-interactive", "labels": LABELS},
         "value": 1000, "globalDefault": False, "preemptionPolicy": "PreemptLowerPriority",
         "description": "Interactive Open OnDemand sessions: scheduled ahead of batch work and allowed to evict "
                        "placeholder pods (priority class ood-placeholder) that hold warm nodes."},
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
         "metadata": {"name": "ood-placeholder", "labels": LABELS},
         "value": -10, "globalDefault": False, "preemptionPolicy": "Never",
         "description": "Placeholder (pause) pods that keep nodes warm before a class; any session evicts them at "
                        "once, and the autoscaler then adds a node for the placeholder."},
    ]


def _req(key: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": list(values)}


REQ_TAIL = [_req("karpenter.k8s.aws/instance-gpu-manufacturer", "nvidia"),
            _req("karpenter.sh/capacity-type", "on-demand"),
            _req("kubernetes.io/arch", "amd64"), _req("kubernetes.io/os", "linux")]


def test_node_pools(default_objects: list[dict[str, Any]]) -> None:
    def pool(name: str, limit: int, requirements: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": name, "labels": LABELS},
            "spec": {
                "weight": 10,
                "limits": {"nvidia.com/gpu": limit},
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"},
                "template": {
                    "metadata": {"labels": {"ood-k8s.io/profile": name}},
                    "spec": {
                        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name},
                        "requirements": requirements,
                        "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
                        "expireAfter": "720h",
                        "terminationGracePeriod": "28800s",
                    },
                },
            },
        }

    assert _by(default_objects, "NodePool", "gpu-t4") == pool(
        "gpu-t4", 40, [_req("node.kubernetes.io/instance-type", "g4dn.xlarge"), *REQ_TAIL])
    assert _by(default_objects, "NodePool", "gpu-a10g") == pool(
        "gpu-a10g", 16, [_req("karpenter.k8s.aws/instance-category", "g"),
                         _req("karpenter.k8s.aws/instance-family", "g5"), *REQ_TAIL])


def _node_class(name: str, data_volume: dict[str, Any], role: str = "KarpenterNodeRole-eks",
                discovery: str = "eks", alias: str = "bottlerocket@latest", profile: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name, "labels": LABELS},
        "spec": {
            "amiSelectorTerms": [{"alias": alias}],
            "role": role,
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": discovery}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": discovery}}],
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [
                {"deviceName": "/dev/xvda", "ebs": {"volumeSize": "4Gi", "volumeType": "gp3", "encrypted": True,
                                                    "deleteOnTermination": True}},
                {"deviceName": "/dev/xvdb", "ebs": data_volume},
            ],
            "tags": {"ood-k8s.io/profile": profile or name},
        },
    }


def test_node_classes(default_objects: list[dict[str, Any]]) -> None:
    encrypted = {"volumeSize": "100Gi", "volumeType": "gp3", "deleteOnTermination": True, "encrypted": True}
    assert _by(default_objects, "EC2NodeClass", "gpu-t4") == _node_class("gpu-t4", encrypted)
    assert _by(default_objects, "EC2NodeClass", "gpu-a10g") == _node_class("gpu-a10g", encrypted)


# --- configuration variants ----------------------------------------------------------------------------------


def _gpu(cfg: Any, name: str = "gpu-t4") -> Any:
    return cfg.profile(name)


def test_pool_from_a_snapshot_with_site_settings(make_config: Any) -> None:
    cfg = make_config(**{"cluster.eks_name": "research-prod", "cluster.karpenter_node_role": "ood-gpu-nodes",
                         "jobs.max_walltime": 7200})
    p = _gpu(cfg)
    p.node_pool = "t4-pool"
    p.node_selector = {"node.kubernetes.io/instance-type": "g4dn.xlarge", "example.edu/rack": "b"}
    p.karpenter = KarpenterConfig(instance_types=["g4dn.xlarge", "g4dn.2xlarge"], capacity_types=["spot"],
                                  weight=0, limit_cpu="64", image_snapshot_id="snap-0123456789abcdef0",
                                  ami_alias="bottlerocket@v1.26.0", data_volume_size="200Gi", consolidate_after="1h")
    objs = cluster.objects(cfg)
    assert _by(objs, "NodePool", "t4-pool")["spec"] == {
        "limits": {"cpu": "64"},
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1h"},
        "template": {
            "metadata": {"labels": {"ood-k8s.io/profile": "gpu-t4", "example.edu/rack": "b"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "t4-pool"},
                "requirements": [_req("node.kubernetes.io/instance-type", "g4dn.xlarge", "g4dn.2xlarge"),
                                 _req("karpenter.k8s.aws/instance-gpu-manufacturer", "nvidia"),
                                 _req("karpenter.sh/capacity-type", "spot"),
                                 _req("kubernetes.io/arch", "amd64"), _req("kubernetes.io/os", "linux"),
                                 _req("node.kubernetes.io/instance-type", "g4dn.xlarge")],
                "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
                "expireAfter": "720h",
                "terminationGracePeriod": "7200s",
            },
        },
    }
    # EBS refuses an encryption flag on a volume restored from a snapshot (it inherits the snapshot's).
    assert _by(objs, "EC2NodeClass", "t4-pool") == _node_class(
        "t4-pool", {"volumeSize": "200Gi", "volumeType": "gp3", "deleteOnTermination": True,
                    "snapshotID": "snap-0123456789abcdef0"},
        role="ood-gpu-nodes", discovery="research-prod", alias="bottlerocket@v1.26.0", profile="gpu-t4")


def test_cluster_autoscaler_site(make_config: Any) -> None:
    cfg = make_config(**{"cluster.autoscaler": "cluster-autoscaler", "cluster.eks_name": "prod"})
    _gpu(cfg, "gpu-a10g").karpenter.weight = 50
    _gpu(cfg).node_selector = {"node.kubernetes.io/instance-type": "g4dn.xlarge"}
    objs = cluster.objects(cfg)
    assert [o["kind"] for o in objs].count("NodePool") == 0
    assert _by(objs, "ConfigMap") == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cluster-autoscaler-priority-expander", "namespace": "kube-system", "labels": LABELS},
        "data": {"priorities": "50:\n- .*gpu-a10g.*\n10:\n- .*gpu-t4.*\n0:\n- .*\n"},
    }
    assert yaml.safe_load(_by(objs, "ConfigMap")["data"]["priorities"]) == {
        50: [".*gpu-a10g.*"], 10: [".*gpu-t4.*"], 0: [".*"]}
    provisioner = _by(objs, "ClusterRole", "ood-k8s-provisioner")
    assert not [r for r in provisioner["rules"] if "nodepools" in r["resources"]]
    assert cluster.node_groups(cfg) == {"nodeGroups": {
        "gpu-t4": {
            "profile": "gpu-t4",
            "instanceTypes": ["g4dn.xlarge"],
            "labels": {"node.kubernetes.io/instance-type": "g4dn.xlarge"},
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
            "tags": {
                "k8s.io/cluster-autoscaler/enabled": "true",
                "k8s.io/cluster-autoscaler/prod": "owned",
                "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "1",
                "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
                "k8s.io/cluster-autoscaler/node-template/label/node.kubernetes.io/instance-type": "g4dn.xlarge",
            },
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        },
        "gpu-a10g": {
            "profile": "gpu-a10g",
            "instanceTypes": [],
            "labels": {},
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
            "tags": {
                "k8s.io/cluster-autoscaler/enabled": "true",
                "k8s.io/cluster-autoscaler/prod": "owned",
                "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "4",
                "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
            },
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        },
    }}


def test_fixed_nodes_and_cpu_only_sites_render_no_capacity(make_config: Any) -> None:
    objs = cluster.objects(make_config(**{"cluster.autoscaler": "none"}))
    assert {o["kind"] for o in objs} == {"ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                                         "ValidatingAdmissionPolicyBinding", "PriorityClass"}
    cfg = make_config()
    cfg.profiles = [p for p in cfg.profiles if p.gpu.max == 0]
    assert "NodePool" not in {o["kind"] for o in cluster.objects(cfg)}
    assert cluster.node_groups(make_config()) == {}


def _provisioner(cfg: Any) -> dict[str, Any]:
    return _by(cluster.objects(cfg), "ClusterRole", "ood-k8s-provisioner")


def _resources(role: dict[str, Any]) -> set[str]:
    return {res for rule in role["rules"] for res in rule["resources"]}


def test_provisioner_gets_secrets_only_for_a_pull_secret(make_config: Any) -> None:
    assert "secrets" not in _resources(_provisioner(make_config()))
    role = _provisioner(make_config(**{"users.image_pull_secret.name": "regcred"}))
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch", "delete"]} \
        in role["rules"]


@pytest.mark.parametrize("mode, pv, driver", [("efs", True, "efs.csi.aws.com"), ("nfs", True, None),
                                              ("pvc", False, None), ("hostpath", False, None), ("none", False, None)])
def test_provisioner_storage_rights_follow_the_mode(make_config: Any, mode: str, pv: bool, driver: str | None) -> None:
    role = _provisioner(make_config(**{"storage.mode": mode, "users.pod_security": "privileged"}))
    assert ("persistentvolumes" in _resources(role)) is pv
    assert ("persistentvolumeclaims" in _resources(role)) is pv
    drivers = [r["resourceNames"] for r in role["rules"] if r["resources"] == ["csidrivers"]]
    assert drivers == ([[driver]] if driver else [])


@pytest.mark.parametrize("value, expected", [
    ("Group:ood-provisioners", {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ood-provisioners"}),
    ("ServiceAccount:ood-system/hook", {"kind": "ServiceAccount", "name": "hook", "namespace": "ood-system"}),
    ("User:arn:aws:iam::123456789012:role/ood", {"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                                                 "name": "arn:aws:iam::123456789012:role/ood"}),
])
def test_provisioner_subject(make_config: Any, value: str, expected: dict[str, str]) -> None:
    objs = cluster.objects(make_config(**{"cluster.provisioner_subject": value}))
    assert _by(objs, "ClusterRoleBinding")["subjects"] == [expected]


def test_least_privilege(default_objects: list[dict[str, Any]], make_config: Any) -> None:
    cfg = make_config(**{"users.image_pull_secret.name": "regcred", "users.cluster_role": "students"})
    for objs in (default_objects, cluster.objects(cfg)):
        user_role = next(o for o in objs
                         if o["kind"] == "ClusterRole" and o["metadata"]["name"] != "ood-k8s-provisioner")
        provisioner = _by(objs, "ClusterRole", "ood-k8s-provisioner")
        for role in (user_role, provisioner):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
                assert not {"escalate", "impersonate", "update", "deletecollection"} & set(rule["verbs"])
        # Users act only on namespaced things, and only where a RoleBinding puts them.
        assert _resources(user_role) == {"pods", "pods/log", "secrets", "configmaps", "events"}  # pod_ip: no services
        # The provisioner can bind exactly the user role and can change no role or cluster binding.
        rbac = [r for r in provisioner["rules"] if r["apiGroups"] == ["rbac.authorization.k8s.io"]]
        assert rbac == [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": RW},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
             "resourceNames": [user_role["metadata"]["name"]], "verbs": ["bind", "get"]},
        ]
        writes = {res for r in provisioner["rules"] if set(r["verbs"]) & {"create", "patch", "delete"}
                  for res in r["resources"]}
        assert writes <= {"namespaces", "resourcequotas", "limitranges", "networkpolicies", "rolebindings",
                          "persistentvolumes", "persistentvolumeclaims", "secrets"}


def test_profile_priority_classes_are_rendered(make_config: Any) -> None:
    cfg = make_config()
    _gpu(cfg).priority_class = "gpu-sessions"
    _gpu(cfg, "gpu-a10g").priority_class = "ood-interactive"
    names = [o["metadata"]["name"] for o in cluster.objects(cfg) if o["kind"] == "PriorityClass"]
    assert names == ["ood-interactive", "gpu-sessions", "ood-placeholder"]


def test_extra_mounts_reach_the_guard(make_config: Any) -> None:
    cfg = make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "home-{user}"})
    cfg.storage.extra_mounts = [
        ExtraMount(name="data", mount_path="/data", claim_name="datasets"),
        ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch-{gid}", read_only=False,
                   sub_path="{user}"),
    ]
    policy = _by(cluster.objects(cfg), "ValidatingAdmissionPolicy", cluster.POLICY_NAME)
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert {k: variables[k] for k in ("claims", "readOnlyClaims", "subPaths")} == {
        "claims": '["home-" + variables.username, "datasets", "scratch-" + string(variables.gid)]',
        "readOnlyClaims": '["datasets"]',
        "subPaths": '[["scratch-" + string(variables.gid), variables.username]]',
    }
    messages = [v.get("message") for v in policy["spec"]["validations"]]
    assert "the only claims a session may mount are the home claim 'home-{user}', 'datasets', 'scratch-{gid}'" \
        in messages


# --- strict validation, every version ----------------------------------------------------------------------


def _kitchen_sink(make_config: Any, **changes: Any) -> Any:
    cfg = make_config(**{"users.image_pull_secret.name": "regcred", "cluster.eks_name": "prod", **changes})
    cfg.storage.extra_mounts = [ExtraMount(name="data", mount_path="/data", claim_name="data-{user}",
                                           sub_path="{uid}")]
    _gpu(cfg).karpenter.image_snapshot_id = "snap-0123456789abcdef0"
    _gpu(cfg).karpenter.limit_cpu = "64"
    _gpu(cfg).priority_class = "gpu-sessions"
    return cfg


@pytest.mark.parametrize("version", schema.supported_versions())
@pytest.mark.parametrize("autoscaler", ["karpenter", "cluster-autoscaler"])
def test_every_object_validates_strictly(make_config: Any, version: str, autoscaler: str) -> None:
    cfg = _kitchen_sink(make_config, **{"cluster.kubernetes_version": version, "cluster.autoscaler": autoscaler})
    objs = cluster.objects(cfg)  # validates; a schema error raises RenderError
    kinds = {o["kind"] for o in objs}
    minor = int(version.split(".")[1])
    assert ("ValidatingAdmissionPolicy" in kinds) is (minor >= 28)
    if minor >= 28:
        assert _by(objs, "ValidatingAdmissionPolicy", cluster.POLICY_NAME)["apiVersion"] == (
            "admissionregistration.k8s.io/v1" if minor >= 30 else "admissionregistration.k8s.io/v1beta1")
    assert ("NodePool" in kinds) is (autoscaler == "karpenter")
    assert ("ConfigMap" in kinds) is (autoscaler == "cluster-autoscaler")
    for obj in objs:
        schema.validate(obj, version)


def _bad(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize("kind, path, value, where", [
    ("NodePool", ["spec", "weight"], 101, "NodePool/gpu-t4: spec.weight"),
    ("NodePool", ["spec", "limts"], {}, "NodePool/gpu-t4: spec"),
    ("NodePool", ["spec", "template", "spec", "nodeClassRef", "group"], KeyError, "NodePool/gpu-t4: spec.template"),
    ("NodePool", ["spec", "disruption", "consolidateAfter"], "10 minutes", "NodePool/gpu-t4: spec.disruption"),
    ("NodePool", ["spec", "template", "spec", "taints", 0, "effect"], "NoScheduling", "NodePool/gpu-t4: spec"),
    ("EC2NodeClass", ["spec", "instanceProfile"], "KarpenterNodeInstanceProfile", "EC2NodeClass/gpu-t4: spec"),
    ("EC2NodeClass", ["spec", "subnetSelectorTerms"], [], "EC2NodeClass/gpu-t4: spec.subnetSelectorTerms"),
    ("EC2NodeClass", ["spec", "amiSelectorTerms", 0, "alias"], "ubuntu@latest", "EC2NodeClass/gpu-t4: spec"),
    ("EC2NodeClass", ["spec", "blockDeviceMappings", 1, "ebs", "volumeSize"], "100Mi", "EC2NodeClass/gpu-t4: spec"),
    ("EC2NodeClass", ["spec", "metadataOptions", "httpTokens"], "off", "EC2NodeClass/gpu-t4: spec"),
    ("EC2NodeClass", ["spec", "userdata"], "#!/bin/sh", "EC2NodeClass/gpu-t4: spec"),
])
def test_karpenter_schemas_are_strict(default_objects: list[dict[str, Any]], kind: str, path: list[Any],
                                      value: Any, where: str) -> None:
    obj = _by(default_objects, kind, "gpu-t4")
    schema.validate(obj, "1.33")
    with pytest.raises(RenderError) as err:
        schema.validate(_bad(obj, path, value), "1.33", "cluster/karpenter.yaml.j2")
    assert str(err.value).startswith(f"cluster/karpenter.yaml.j2: {where}")
    assert "\n" not in str(err.value)


def test_a_bad_weight_is_one_line_naming_the_field(make_config: Any) -> None:
    cfg = make_config()
    _gpu(cfg).karpenter.weight = 150
    with pytest.raises(RenderError, match=r"^cluster/karpenter.yaml.j2: NodePool/gpu-t4: spec.weight: 150 is greater "
                                          r"than the maximum of 100: not valid for Kubernetes 1.33$"):
        cluster.objects(cfg)


def test_schema_files_name_their_kinds() -> None:
    files = sorted(Path(schema.__file__).with_name("schemas").glob("*.json"))
    docs = {(d["apiVersion"], d["kind"]) for d in (json.loads(f.read_text()) for f in files)}
    assert docs == {("karpenter.sh/v1", "NodePool"), ("karpenter.k8s.aws/v1", "EC2NodeClass")}


# --- not Kubernetes objects ------------------------------------------------------------------------------


def test_eksctl_identity_provider_for_cognito(make_config: Any) -> None:
    cfg = make_config(**{"auth.cognito.region": "eu-west-1", "auth.cognito.user_pool_id": "eu-west-1_AbC",
                         "auth.cognito.client_id": "abc123", "cluster.aws_region": "eu-west-1"})
    assert cluster.eksctl_config(cfg) == {
        "apiVersion": "eksctl.io/v1alpha5",
        "kind": "ClusterConfig",
        "metadata": {"name": "eks", "region": "eu-west-1"},
        "identityProviders": [{
            "name": "ood-k8s",
            "type": "oidc",
            "issuerUrl": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
            "clientId": "abc123",
            "usernameClaim": "cognito:username",
            "usernamePrefix": "ood:",
            "groupsClaim": "cognito:groups",
            "groupsPrefix": "ood:",
        }],
    }


def test_eksctl_identity_provider_for_the_portals_oidc(make_config: Any) -> None:
    cfg = make_config(**{"auth.mode": "oidc", "auth.oidc.issuer": "https://idp.example.edu/realms/hpc",
                         "auth.oidc.client_id": "ood-k8s", "auth.oidc.username_claim": "uid",
                         "users.rbac_username_prefix": "hpc:", "users.rbac_groups_prefix": "hpcg:",
                         "cluster.eks_name": "research"})
    assert cluster.eksctl_config(cfg)["identityProviders"] == [{
        "name": "ood-k8s", "type": "oidc", "issuerUrl": "https://idp.example.edu/realms/hpc",
        "clientId": "ood-k8s", "usernameClaim": "uid", "usernamePrefix": "hpc:", "groupsClaim": "groups",
        "groupsPrefix": "hpcg:"}]
    assert cluster.eksctl_config(cfg)["metadata"] == {"name": "research", "region": "us-east-1"}


def test_eksctl_prefix_matches_the_hooks_role_bindings(make_config: Any) -> None:
    from ood_k8s.users import provision
    from tests.conftest import ALICE

    cfg = make_config(**{"users.rbac_username_prefix": "portal:"})
    objs = provision.desired_objects(cfg, ALICE, now="2025-01-01T00:00:00Z")
    subjects = next(o for o in objs if o["kind"] == "RoleBinding")["subjects"]
    provider = cluster.eksctl_config(cfg)["identityProviders"][0]
    # The API server names the user <usernamePrefix><cognito:username>; the hook must bind exactly that.
    assert subjects == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                         "name": provider["usernamePrefix"] + ALICE.username}]


# --- templates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("autoscaler", ["karpenter", "cluster-autoscaler"])
@pytest.mark.parametrize("mode", ["efs", "pvc", "hostpath"])
def test_hostile_values_cannot_change_any_template(make_config: Any, autoscaler: str, mode: str) -> None:
    cfg = _kitchen_sink(make_config, **{"cluster.autoscaler": autoscaler, "storage.mode": mode,
                                        "users.pod_security": "privileged"})
    contexts = cluster.contexts(cfg)
    assert set(contexts) == set(cluster.TEMPLATES) - {"cluster/karpenter.yaml.j2" if autoscaler != "karpenter"
                                                       else "cluster/autoscaler.yaml.j2"}
    for template, context in contexts.items():
        assert_injection_proof(template, context)


@pytest.mark.parametrize("template", ["{home}", "{user!r}", "{uid:>5}", "{", "x}"])
def test_claim_templates_only_use_known_fields(template: str) -> None:
    with pytest.raises(RenderError):
        cel.cel_template(template)


def test_cel_string_refuses_surrogates() -> None:
    with pytest.raises(RenderError):
        cel.cel_string("a\ud800b")


def test_a_site_template_replaces_the_builtin(tmp_path: Path, make_config: Any) -> None:
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "priority.yaml.j2").write_text(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {{ session_classes[0] }}\n"
        "value: 5000\n")
    cfg = make_config(**{"templates.site_dir": str(tmp_path)})
    assert [o["value"] for o in cluster.objects(cfg) if o["kind"] == "PriorityClass"] == [5000]
    (tmp_path / "cluster" / "priority.yaml.j2").write_text(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: x\nvalue: high\n")
    with pytest.raises(RenderError, match=r"^cluster/priority\.yaml\.j2: PriorityClass/x: value: 'high' is not "):
        cluster.objects(cfg, Renderer(str(tmp_path), "1.33"))


# --- the command ---------------------------------------------------------------------------------------


def _config_file(cfg: Any, path: Path) -> str:
    from ood_k8s import config

    path.write_text(yaml.safe_dump(config.to_dict(cfg, redact=False)))
    return str(path)


def test_cli_render_yaml_is_the_objects(default_objects: list[dict[str, Any]],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from ood_k8s import cli

    assert cli.main(["cluster", "render"]) == 0
    out = capsys.readouterr().out
    assert [d for d in yaml.safe_load_all(out) if d] == default_objects
    assert out.startswith("# ood-k8s cluster render: <built-in default>, Kubernetes 1.33\n---\n")
    assert out.endswith("# Not Kubernetes objects, printed separately: --only eksctl (the EKS OIDC identity "
                        "provider, as an eksctl ClusterConfig fragment); --only iam (the IAM policies: the portal's "
                        "role (Cognito, EFS access points, the doctor's EKS, EC2 and Auto Scaling reads) and the EFS "
                        "CSI driver's role)\n")


def test_cli_render_json_and_only(default_objects: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    from ood_k8s import cli

    assert cli.main(["cluster", "render", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"apiVersion": "v1", "kind": "List", "items": default_objects}
    assert cli.main(["cluster", "render", "--only", "nodepool", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == [o for o in default_objects if o["kind"] == "NodePool"]
    assert cli.main(["cluster", "render", "--only", "Deployment"]) == 2
    assert capsys.readouterr().err == (
        "ood-k8s: --only Deployment: nothing of that kind is rendered for this configuration: use one of "
        "ClusterRole, ClusterRoleBinding, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, "
        "PriorityClass, NodePool, EC2NodeClass, eksctl, node-groups, efs-policy, iam\n")


def test_cli_render_the_other_documents(make_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ood_k8s import cli

    cfg = make_config(**{"cluster.autoscaler": "cluster-autoscaler"})
    path = _config_file(cfg, tmp_path / "site.yml")
    assert cli.main(["--config", path, "cluster", "render", "--only", "eksctl"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# the EKS OIDC identity provider, as an eksctl ClusterConfig fragment\n")
    assert yaml.safe_load(out) == cluster.eksctl_config(cfg)
    assert cli.main(["--config", path, "cluster", "render", "--only", "node-groups", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == cluster.node_groups(cfg)
    assert cli.main(["--config", path, "cluster", "render"]) == 0
    assert "; --only node-groups (cluster-autoscaler node groups: tags and settings); --only iam (" in \
        capsys.readouterr().out.splitlines()[-1]
    assert cli.main(["cluster", "render", "--only", "node-groups"]) == 2
    assert capsys.readouterr().err == ("ood-k8s: no cluster-autoscaler node groups: cluster.autoscaler is karpenter: "
                                       "set cluster.autoscaler: cluster-autoscaler\n")


def test_cli_render_reports_a_broken_site_template_in_one_line(make_config: Any, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from ood_k8s import cli

    (tmp_path / "t" / "cluster").mkdir(parents=True)
    (tmp_path / "t" / "cluster" / "rbac.yaml.j2").write_text("kind: ClusterRole\nmetadata: {{ nope }}\n")
    path = _config_file(make_config(**{"templates.site_dir": str(tmp_path / "t")}), tmp_path / "site.yml")
    assert cli.main(["--config", path, "cluster", "render"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("ood-k8s: cluster/rbac.yaml.j2: 'nope' is undefined: the template uses a value that is "
                            "not provided\n")

"""'cluster render' for capacity: GPU sharing (device plugin config + node labels), pre-pullers, the agents'
namespace (outside the pod guard) and the provisioner's right to record holds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ood_k8s.capacity import gpushare, placeholders
from ood_k8s.cluster import manifests
from ood_k8s.config import Config, parse, to_dict
from ood_k8s.core import vocab
from ood_k8s.core.errors import ConfigError
from tests.capacity.test_placeholders import WARM_FROM
from tests.courses.course_site import COURSE


def _site(**profile_changes: dict[str, Any]) -> Config:
    data = to_dict(Config(), redact=False)
    for p in data["profiles"]:
        for key, value in profile_changes.get(p["name"], {}).items():
            if isinstance(value, dict):
                p[key].update(value)
            else:
                p[key] = value
    data["profiles"].append({"name": "a100-slice", "image": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20",
                             "gpu": {"resource": "nvidia.com/mig-1g.5gb", "default": 1, "max": 1,
                                     "mig": "all-1g.5gb"}, "node_pool": "a100",
                             "karpenter": {"instance_types": ["p4d.24xlarge"]}})
    data["courses"] = [{**COURSE, "profiles": ["gpu-t4", "a100-slice"], "node_pool": "", "warm": {"count": 1}}]
    return parse(data)


def _objects(cfg: Config, kind: str) -> list[dict[str, Any]]:
    return [o for o in manifests.objects(cfg) if o["kind"] == kind]


def test_a_site_without_the_features_renders_nothing_of_them() -> None:
    cfg = Config()
    assert not [o for o in manifests.objects(cfg) if o["kind"] in ("ConfigMap", "DaemonSet", "Role")
                and o["metadata"]["name"] != manifests.AGENT_ROLE]


def test_time_slicing_and_mig_give_the_device_plugin_its_config_and_the_pools_their_labels() -> None:
    cfg = _site(**{"gpu-t4": {"gpu": {"time_slicing": 4}}})
    [cm] = _objects(cfg, "ConfigMap")
    assert (cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("ood-k8s-device-plugin", "gpu-operator")
    assert yaml.safe_load(cm["data"]["gpu-t4"]) == {
        "version": "v1", "flags": {"migStrategy": "none"},
        "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}}
    assert yaml.safe_load(cm["data"]["a100-slice"]) == {"version": "v1", "flags": {"migStrategy": "mixed"}}
    assert "gpu-a10g" not in cm["data"]
    pools = {p["metadata"]["name"]: p["spec"]["template"]["metadata"]["labels"] for p in _objects(cfg, "NodePool")}
    assert pools["gpu-t4"][gpushare.CONFIG_LABEL] == "gpu-t4"
    assert pools["a100"][gpushare.CONFIG_LABEL] == "a100-slice" and pools["a100"][gpushare.MIG_CONFIG_LABEL] == \
        "all-1g.5gb"
    assert gpushare.CONFIG_LABEL not in pools["gpu-a10g"]


def test_a_class_of_200_on_50_gpus() -> None:
    cfg = _site(**{"gpu-t4": {"gpu": {"time_slicing": 4}}})
    t4 = cfg.profile("gpu-t4")
    assert 50 * t4.gpu.time_slicing >= 200  # 50 T4 nodes advertise 200 nvidia.com/gpu, one per session
    assert placeholders.requests(t4)["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize(("gpu", "problem"), [
    ({"mig": "all-1g.5gb", "resource": "amd.com/gpu"}, "profiles[0].gpu.resource: got 'amd.com/gpu' with mig"),
    ({"resource": "nvidia.com/mig-2g.10gb", "max": 1}, "profiles[0].gpu.mig: got '' with resource"),
    ({"time_slicing": 4, "max": 0}, "profiles[0].gpu: got GPU sharing"),
])
def test_gpu_sharing_settings_are_checked(gpu: dict[str, Any], problem: str) -> None:
    data = to_dict(Config(), redact=False)
    data["profiles"][0]["gpu"].update(gpu)
    with pytest.raises(ConfigError) as err:
        parse(data)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_pre_pullers_are_opt_in_per_profile_and_land_on_its_pools() -> None:
    cfg = _site(**{"gpu-t4": {"prepull": True}})
    cfg.courses[0].node_pool = "cs109b-t4"
    sets = {d["metadata"]["name"]: d for d in _objects(cfg, "DaemonSet")}
    assert sorted(sets) == ["ood-prepull-gpu-t4", "ood-prepull-gpu-t4-cs109b-t4"]
    pod = sets["ood-prepull-gpu-t4"]["spec"]["template"]["spec"]
    assert sets["ood-prepull-gpu-t4"]["metadata"]["namespace"] == cfg.agent.namespace
    assert pod["nodeSelector"] == {vocab.KARPENTER_NODEPOOL_LABEL: "gpu-t4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    [pull] = pod["initContainers"]
    assert pull["image"] == cfg.profile("gpu-t4").image and pull["command"] == ["true"]
    assert pod["containers"][0]["image"] == cfg.capacity.pause_image
    for c in pod["initContainers"] + pod["containers"]:
        assert c["resources"]["requests"] == {"cpu": "1m", "memory": "16Mi"}
        assert not any("gpu" in k for k in c["resources"].get("limits", {}))
    course_pool = sets["ood-prepull-gpu-t4-cs109b-t4"]["spec"]["template"]["spec"]["nodeSelector"]
    assert course_pool == {vocab.KARPENTER_NODEPOOL_LABEL: "cs109b-t4"}


def test_the_agents_namespace_is_outside_the_pod_guard_and_the_provisioner_may_record_holds() -> None:
    cfg = _site()
    [ns] = [o for o in _objects(cfg, "Namespace") if o["metadata"]["name"] == cfg.agent.namespace]
    guards = [o for o in manifests.objects(cfg) if o["kind"].startswith("ValidatingAdmissionPolicyBinding")]
    for g in guards:
        selector = g["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
        assert not all(ns["metadata"]["labels"].get(k) == v for k, v in selector.items())
    [role] = [o for o in _objects(cfg, "Role") if o["metadata"]["name"] == "ood-k8s-capacity"]
    assert role["metadata"]["namespace"] == cfg.agent.namespace
    assert {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [vocab.WARM_HOLDS_CONFIGMAP],
            "verbs": ["get", "patch"]} in role["rules"]
    for pod in placeholders.desired(cfg, WARM_FROM, []).values():  # restricted Pod Security holds
        ctr = pod["spec"]["containers"][0]
        assert ctr["securityContext"]["allowPrivilegeEscalation"] is False and pod["spec"]["securityContext"][
            "runAsNonRoot"] is True


def test_a_courses_own_pool_is_a_nodepool_of_its_gpu_profile() -> None:
    cfg = _site()
    cfg.courses[0].node_pool = "cs109b-t4"
    pools = {p["metadata"]["name"]: p for p in _objects(cfg, "NodePool")}
    assert "cs109b-t4" in pools and "gpu-t4" in pools
    course, own = pools["cs109b-t4"]["spec"], pools["gpu-t4"]["spec"]
    assert course["template"]["spec"]["requirements"] == own["template"]["spec"]["requirements"]
    assert course["template"]["spec"]["taints"] == own["template"]["spec"]["taints"]
    assert [c["metadata"]["name"] for c in _objects(cfg, "EC2NodeClass")].count("cs109b-t4") == 1
    cfg.courses[0].node_pool = "gpu-a10g"  # another profile's pool: nothing new
    assert sorted(p["metadata"]["name"] for p in _objects(cfg, "NodePool")) == ["a100", "gpu-a10g", "gpu-t4"]

"""Karpenter on AWS (``cluster.autoscaler: karpenter``): a NodePool and an EC2NodeClass per GPU
profile (``templates/cluster/karpenter.yaml.j2``), and doctor's reading of them.

An :class:`ood_k8s.cluster.autoscaler.Autoscaler`, registered there as ``karpenter``.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.capacity import gpushare
from ood_k8s.cloud.aws.eks import eks_name
from ood_k8s.cluster import capacity
from ood_k8s.cluster.facts import gpu_profiles, labels, pool_name
from ood_k8s.config import Config, Profile
from ood_k8s.core import vocab
from ood_k8s.core.errors import NotFound, OodK8sError
from ood_k8s.core.kube import KubeClient
from ood_k8s.courses import session as course_session
from ood_k8s.doctor.report import APPLY_CLUSTER, Check, one_line

TEMPLATE = "cluster/karpenter.yaml.j2"

# Node labels Karpenter derives from the instance: a profile's nodeSelector on them becomes a requirement.
_WELL_KNOWN = ("kubernetes.io/arch", "kubernetes.io/os", "node.kubernetes.io/instance-type",
               "topology.kubernetes.io/zone", "topology.kubernetes.io/region", "karpenter.sh/capacity-type")
_GPU_MAKERS = {"nvidia.com/gpu": "nvidia", "amd.com/gpu": "amd"}


def context(cfg: Config) -> dict[str, Any]:
    """The template's context: one pool per GPU profile, on nodes of the cluster's Karpenter role."""
    eks = eks_name(cfg)
    return {
        "labels": labels(),
        "role": cfg.cluster.karpenter_node_role or f"KarpenterNodeRole-{eks}",
        "discovery": {"karpenter.sh/discovery": eks},
        "pools": [pool(cfg, p) for p in gpu_profiles(cfg) + course_session.pool_profiles(cfg)],  # courses' own
    }


def _requirements(p: Profile) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The NodePool's requirements, and the labels its nodes get (what the profile's pods select)."""
    k = p.karpenter

    def req(key: str, values: list[str]) -> dict[str, Any]:
        return {"key": key, "operator": "In", "values": list(values)}

    requirements = []
    for key, values in (("karpenter.k8s.aws/instance-category", k.instance_categories),
                        ("karpenter.k8s.aws/instance-family", k.instance_families),
                        ("node.kubernetes.io/instance-type", k.instance_types)):
        if values:
            requirements.append(req(key, values))
    if p.gpu.resource in _GPU_MAKERS:
        requirements.append(req("karpenter.k8s.aws/instance-gpu-manufacturer", [_GPU_MAKERS[p.gpu.resource]]))
    requirements.append(req("karpenter.sh/capacity-type", k.capacity_types or ["on-demand"]))
    requirements += [req("kubernetes.io/arch", ["amd64"]), req("kubernetes.io/os", ["linux"])]
    node_labels = {vocab.PROFILE_LABEL: p.name, **gpushare.node_labels(p)}  # GPU sharing selects its config
    for key, value in p.node_selector.items():
        # The pods select these labels, so the pool's nodes must carry them.
        if key in _WELL_KNOWN or key.startswith("karpenter.k8s.aws/"):
            requirements.append(req(key, [value]))
        elif key != vocab.KARPENTER_NODEPOOL_LABEL:
            node_labels[key] = value
    return requirements, node_labels


def pool(cfg: Config, p: Profile) -> dict[str, Any]:
    """One GPU profile's NodePool and EC2NodeClass, as the template's ``pools`` item."""
    k = p.karpenter
    requirements, node_labels = _requirements(p)
    limits: dict[str, Any] = {}
    if k.limit_gpus:
        limits[p.gpu.resource] = k.limit_gpus
    if k.limit_cpu:
        limits["cpu"] = k.limit_cpu
    data_volume: dict[str, Any] = {"volumeSize": k.data_volume_size, "volumeType": "gp3",
                                   "deleteOnTermination": True}
    if k.image_snapshot_id:
        data_volume["snapshotID"] = k.image_snapshot_id  # EBS forbids 'encrypted' with a snapshot
    else:
        data_volume["encrypted"] = True
    return {
        "name": pool_name(p),
        "weight": k.weight,
        "limits": limits,
        "consolidate_after": k.consolidate_after,
        "node_labels": node_labels,
        "requirements": requirements,
        "gpu_resource": p.gpu.resource,
        "grace": f"{cfg.jobs.max_walltime}s",
        "ami_alias": k.ami_alias,
        "data_volume": data_volume,
        "tags": {vocab.PROFILE_LABEL: p.name},
    }


class Karpenter:
    """``karpenter``: pools launched on demand; doctor finds each profile's NodePool and its nodes."""

    def templates(self, cfg: Config) -> dict[str, dict[str, Any]]:
        return {TEMPLATE: context(cfg)} if gpu_profiles(cfg) else {}

    def rbac(self, cfg: Config) -> dict[str, Any]:
        return {"karpenter": bool(gpu_profiles(cfg))}  # the provisioner reads NodePools (doctor)

    def node_groups(self, cfg: Config) -> dict[str, Any]:
        return {}

    def capacity(self, kube: KubeClient, cfg: Config, profiles: list[Profile],
                 nodes: list[dict[str, Any]]) -> list[Check]:
        try:
            pools = {p["metadata"]["name"] for p in kube.list("NodePool")}
        except NotFound:
            return [Check(capacity.title(p), False, "Karpenter is not installed (no NodePool API)",
                          "install Karpenter v1, or set cluster.autoscaler") for p in profiles]
        return [_pool_capacity(p, nodes, pools) for p in profiles]

    def node_metadata(self, kube: KubeClient, cfg: Config) -> list[Check]:
        """Every EC2NodeClass on the cluster, not only those ood-k8s renders: any may carry a session."""
        try:
            classes = kube.list("EC2NodeClass")
        except NotFound:
            return [Check("node metadata options", None, "no EC2NodeClass API (Karpenter not installed)")]
        except OodK8sError as err:
            return [Check("node metadata options", False, one_line(err),
                          f"apply the provisioner RBAC: {APPLY_CLUSTER}")]
        weak = [f"{c['metadata']['name']}: {', '.join(found)}" for c in classes
                if (found := metadata_problems((c.get("spec") or {}).get("metadataOptions") or {}))]
        if weak:
            return [Check("node metadata options", False, "; ".join(weak),
                          "set metadataOptions httpTokens: required and httpPutResponseHopLimit: 1 on each "
                          "EC2NodeClass (pods would otherwise reach the node's IAM role)")]
        return [Check("node metadata options", True, f"{len(classes)} EC2NodeClass(es): tokens required, hop limit 1")]


# Karpenter v1's defaults when an EC2NodeClass sets no metadataOptions: tokens required, one hop.
_METADATA_DEFAULTS = {"httpTokens": "required", "httpPutResponseHopLimit": 1}


def metadata_problems(options: dict[str, Any]) -> list[str]:
    """What makes a node's instance metadata (its IAM role) reachable from pods."""
    opts = {**_METADATA_DEFAULTS, **options}
    out = []
    if opts.get("httpEndpoint", "enabled") == "disabled":
        return out
    if opts["httpTokens"] != "required":
        out.append(f"httpTokens {opts['httpTokens']}")
    if opts["httpPutResponseHopLimit"] != 1:
        out.append(f"hop limit {opts['httpPutResponseHopLimit']}")
    return out


def _pool_capacity(p: Profile, nodes: list[dict[str, Any]], pools: set[str]) -> Check:
    name = pool_name(p)
    broken, count = capacity.survey(p, nodes, {vocab.KARPENTER_NODEPOOL_LABEL: name})
    if broken is not None:
        return broken
    if name not in pools:
        return Check(capacity.title(p), False, f"no NodePool {name}", f"apply it: {APPLY_CLUSTER}")
    return Check(capacity.title(p), True, f"NodePool {name}; {capacity.have(count, p.gpu.resource)}" +
                 ("" if count else " now (launched on demand)"))


KARPENTER = Karpenter()

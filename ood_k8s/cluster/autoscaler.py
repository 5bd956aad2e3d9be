"""What adds GPU nodes (``cluster.autoscaler``): the seam between the cluster render, the doctor and
each autoscaler.

An autoscaler is a :class:`Autoscaler`, registered by its persisted mode string in :data:`AUTOSCALERS`;
cluster code asks :func:`of` and never branches on the mode.  Adding one is a module implementing the
Protocol plus one line here.
"""

from __future__ import annotations

from typing import Any, Protocol

from ood_k8s.cloud.aws import node_groups
from ood_k8s.cloud.aws.eks import CLUSTER_AUTOSCALER
from ood_k8s.cloud.aws.karpenter import KARPENTER
from ood_k8s.cluster import capacity
from ood_k8s.config import Config, Profile
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor.report import Check

# The variables of cluster/rbac.yaml.j2 an autoscaler may set (Autoscaler.rbac), with their defaults.
RBAC_VARIABLES: dict[str, Any] = {"karpenter": False}


class Autoscaler(Protocol):
    def templates(self, cfg: Config) -> dict[str, dict[str, Any]]:
        """Cluster template -> its context, for what this autoscaler needs (``{}``: nothing to render)."""
        ...

    def rbac(self, cfg: Config) -> dict[str, Any]:
        """Its values of :data:`RBAC_VARIABLES` (what the provisioner may read of it)."""
        ...

    def node_groups(self, cfg: Config) -> dict[str, Any]:
        """``ood-k8s cluster render --only node-groups``; ``{}`` when it has no node groups."""
        ...

    def capacity(self, kube: KubeClient, cfg: Config, profiles: list[Profile],
                 nodes: list[dict[str, Any]]) -> list[Check]:
        """Doctor: whether each GPU profile has somewhere to run (may raise OodK8sError)."""
        ...

    def node_metadata(self, kube: KubeClient, cfg: Config) -> list[Check]:
        """Doctor: the instance metadata of every node it launches needs tokens, one hop (pods cannot reach it)."""
        ...


class NoAutoscaler:
    """``none``: fixed GPU nodes; nothing to render, and a profile without a node now has none."""

    def templates(self, cfg: Config) -> dict[str, dict[str, Any]]:
        return {}

    def rbac(self, cfg: Config) -> dict[str, Any]:
        return {}

    def node_groups(self, cfg: Config) -> dict[str, Any]:
        return {}

    def capacity(self, kube: KubeClient, cfg: Config, profiles: list[Profile],
                 nodes: list[dict[str, Any]]) -> list[Check]:
        return [capacity.fixed_nodes(p, nodes) or _no_node(p) for p in profiles]

    def node_metadata(self, kube: KubeClient, cfg: Config) -> list[Check]:
        return node_groups.unread(cfg)  # the node groups themselves: cloud/aws/node_groups.py, its own provider


def _no_node(p: Profile) -> Check:
    selector = capacity.node_selector(p)
    return Check(capacity.title(p), False, f"no node advertises {p.gpu.resource}" +
                 (f" with labels {selector}" if selector else ""), "add GPU nodes with the device plugin, or set "
                 "cluster.autoscaler")


AUTOSCALERS: dict[str, Autoscaler] = {
    "karpenter": KARPENTER,
    "cluster-autoscaler": CLUSTER_AUTOSCALER,
    "none": NoAutoscaler(),
}


def of(cfg: Config) -> Autoscaler:
    """The site's autoscaler (config has checked the mode is one of :data:`AUTOSCALERS`)."""
    return AUTOSCALERS[cfg.cluster.autoscaler]

"""Doctor's reading of GPU nodes, shared by every autoscaler's capacity check: which nodes a profile's
pods can land on, and whether they advertise the GPU (the device plugin runs there)."""

from __future__ import annotations

from typing import Any

from ood_k8s.config import Profile
from ood_k8s.core import vocab
from ood_k8s.doctor.report import Check


def title(profile: Profile) -> str:
    return f"GPU capacity for {profile.name}"


def gpus(node: dict[str, Any], resource: str) -> int:
    value = str(((node.get("status") or {}).get("allocatable") or {}).get(resource, "0"))
    return int(value) if value.isdigit() else 0


def matches(node: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def node_selector(profile: Profile) -> dict[str, str]:
    """The labels the profile's pods select, without the NodePool (no node carries it but Karpenter's)."""
    return {k: v for k, v in profile.node_selector.items() if k != vocab.KARPENTER_NODEPOOL_LABEL}


def survey(profile: Profile, nodes: list[dict[str, Any]], selector: dict[str, str]) -> tuple[Check | None, int]:
    """(a failed Check if a selected node lacks the GPU, else None; how many selected nodes have it).
    With no selector, every node that advertises the GPU is selected."""
    res = profile.gpu.resource
    mine = [n for n in nodes if matches(n, selector) and (selector or gpus(n, res))]
    broken = [n["metadata"]["name"] for n in mine if not gpus(n, res)]
    if broken:
        return Check(title(profile), False, f"node {', '.join(broken[:3])} has no allocatable {res}",
                     "the GPU device plugin is not running there (Bottlerocket's NVIDIA AMIs have it; on other "
                     "AMIs install the NVIDIA device plugin DaemonSet)"), 0
    return None, len(mine)


def have(count: int, resource: str) -> str:
    return f"{count} node{'s' if count != 1 else ''} with {resource}"


def fixed_nodes(profile: Profile, nodes: list[dict[str, Any]]) -> Check | None:
    """The verdict for a profile that lands on nodes by its nodeSelector, or None when no node has its
    GPU now (what that means is the autoscaler's to say)."""
    broken, count = survey(profile, nodes, node_selector(profile))
    if broken is not None:
        return broken
    return Check(title(profile), True, have(count, profile.gpu.resource)) if count else None

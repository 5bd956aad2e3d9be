"""Image pre-pullers: a DaemonSet per profile (``prepull: true``) and node pool, for sites without an image
snapshot (``karpenter.image_snapshot_id``), so a session's image is on the node before a student's pod is.

Each pod pulls the profile's image in an init container that exits at once (``true``), then idles in
the pause image with tiny requests; it lands where the profile's sessions do (its node selector, the
pools of the courses that list it, its tolerations and the GPU taint) and never holds a GPU.  In
``agent.namespace``; no service-account token.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.cluster.facts import labels
from ood_k8s.config import Config, Profile
from ood_k8s.core import vocab
from ood_k8s.sessions import resolve

TINY = {"cpu": "1m", "memory": "16Mi"}
PAUSE_UID = 65535


def pools(cfg: Config, profile: Profile) -> list[str]:
    """The node pools of the profile's sessions: its own, then those of the courses that list it."""
    out = [profile.node_pool] + [c.node_pool for c in cfg.courses if c.node_pool and profile.name in c.profiles]
    return list(dict.fromkeys(out))


def daemonset(cfg: Config, profile: Profile, pool: str) -> dict[str, Any]:
    place = resolve.placement(profile, {}, profile.gpu.resource)
    selector = dict(place.node_selector)
    if pool:
        selector[vocab.KARPENTER_NODEPOOL_LABEL] = pool
    name = f"ood-prepull-{profile.name}" + (f"-{pool}" if pool and pool != profile.node_pool else "")
    match = {vocab.COMPONENT_LABEL: vocab.PREPULL_COMPONENT, "app.kubernetes.io/instance": name[:63]}
    secure = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False, "enableServiceLinks": False, "terminationGracePeriodSeconds": 0,
        "securityContext": {"runAsNonRoot": True, "runAsUser": PAUSE_UID, "runAsGroup": PAUSE_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "tolerations": place.tolerations,
        "initContainers": [{"name": "pull", "image": profile.image, "command": ["true"],
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {"requests": TINY, "limits": {"memory": "64Mi"}}, "securityContext": secure}],
        "containers": [{"name": "pause", "image": cfg.capacity.pause_image,
                        "resources": {"requests": TINY, "limits": {"memory": "16Mi"}},
                        "securityContext": {**secure, "readOnlyRootFilesystem": True}}],
    }
    if selector:
        pod["nodeSelector"] = selector
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name[:63].rstrip("-"), "namespace": cfg.agent.namespace,
                         "labels": {**labels(), **match, vocab.PROFILE_LABEL: profile.name}},
            "spec": {"selector": {"matchLabels": match},
                     "template": {"metadata": {"labels": {**match, vocab.PROFILE_LABEL: profile.name}}, "spec": pod}}}


def daemonsets(cfg: Config) -> list[dict[str, Any]]:
    return [daemonset(cfg, p, pool) for p in cfg.profiles if p.prepull for pool in pools(cfg, p)]

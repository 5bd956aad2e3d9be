"""What ``cluster render`` adds for capacity: the template context of ``cluster/capacity.yaml.j2``.

The agents' namespace and the provisioner's Role there appear once the site uses courses or pre-pullers
(warm capacity and ad-hoc holds act in ``agent.namespace``); the device plugin's sharing ConfigMap once
a profile shares GPUs (:mod:`ood_k8s.capacity.gpushare`); a pre-puller per opted-in profile and pool
(:mod:`ood_k8s.capacity.prepull`).
"""

from __future__ import annotations

from typing import Any

from ood_k8s.capacity import gpushare, prepull
from ood_k8s.cluster.facts import labels
from ood_k8s.config import Config
from ood_k8s.core import vocab

TEMPLATE = "cluster/capacity.yaml.j2"
ROLE = "ood-k8s-capacity"


def agent_namespace_labels() -> dict[str, str]:
    """The agents' namespace's labels: not the managed-by label of user namespaces, which the pod guard and
    the hook's network policies select (placeholders and the agents' objects are not students')."""
    return {vocab.COMPONENT_LABEL: vocab.AGENT_COMPONENT}


def context(cfg: Config, subject: dict[str, str]) -> dict[str, Any]:
    """The template's context (a site that uses none of it renders nothing from it)."""
    objects = [o for o in (gpushare.configmap(cfg),) if o] + prepull.daemonsets(cfg)
    uses_namespace = bool(cfg.courses) or any(p.prepull for p in cfg.profiles)
    return {"labels": labels(), "agent_namespace": cfg.agent.namespace if uses_namespace else "", "role": ROLE,
            "namespace_labels": agent_namespace_labels(),
            "holds_configmap": vocab.WARM_HOLDS_CONFIGMAP, "subject": subject, "objects": objects}

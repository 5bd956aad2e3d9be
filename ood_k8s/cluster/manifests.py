"""What a site applies to the cluster once: ``ood-k8s cluster render``.

Pure functions of the site configuration:

* :func:`objects` -- the cluster-scoped Kubernetes objects, rendered from ``templates/cluster/*.yaml.j2``
  and validated strictly: the user and provisioner RBAC, the admission guard of user namespaces
  (a ValidatingAdmissionPolicy), priority classes, and GPU capacity (Karpenter NodePools and
  EC2NodeClasses, or the cluster autoscaler's priority-expander ConfigMap);
* :func:`eksctl_config` -- the EKS OIDC identity provider as an ``eksctl`` ClusterConfig fragment
  (from :mod:`ood_k8s.cloud.aws.eks`);
* :func:`node_groups` -- the tags and settings of cluster-autoscaler node groups.

The last two are not Kubernetes objects (nothing to ``kubectl apply``), so they are separate.

This module owns the RBAC, the priority classes and the order of the templates; it asks each part
for the rest and never branches on a mode: the home backend (:func:`ood_k8s.storage.backend.of`)
for what the provisioner must be allowed of it, the site's autoscaler
(:func:`ood_k8s.cluster.autoscaler.of`: :mod:`ood_k8s.cloud.aws.karpenter`, :mod:`ood_k8s.cloud.aws.eks`)
for GPU capacity, and :mod:`ood_k8s.policy.cel` for the admission guard's rules.

The admission guard reads the user's ids from annotations the hook records on each user namespace
(the ``*_ANNOTATION`` constants below); it is what stops a user who talks to the API directly from
running a pod as someone else or mounting someone else's files.  Its site-dependent CEL comes from
:mod:`ood_k8s.policy.cel`, generated from the same definitions submit refuses by
(:mod:`ood_k8s.policy.access`, :mod:`ood_k8s.policy.volumes`).
"""

from __future__ import annotations

from typing import Any, Callable

from ood_k8s.capacity import render as capacity_render
from ood_k8s.cloud.aws.eks import eksctl_config  # re-exported: the cluster's documents
from ood_k8s.cluster import autoscaler
from ood_k8s.cluster.facts import gpu_profiles, labels  # noqa: F401  (gpu_profiles re-exported)
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.policy import cel, pods, quota
from ood_k8s.policy.volumes import admission_api_version
from ood_k8s.render.render import Renderer
from ood_k8s.storage import backend as storage
from ood_k8s.usage import guard as usage_guard

PROVISIONER_ROLE = "ood-k8s-provisioner"
POLICY_NAME = "ood-k8s-pod-guard"
SERVICE_POLICY_NAME = "ood-k8s-service-guard"
SESSION_PRIORITY_CLASS = pods.SESSION_PRIORITY_CLASS
PLACEHOLDER_PRIORITY_CLASS = pods.PLACEHOLDER_PRIORITY_CLASS

# Recorded on every user namespace by the hook; the admission policy trusts nothing else.
UID_ANNOTATION = vocab.UID_ANNOTATION
GID_ANNOTATION = vocab.GID_ANNOTATION
GIDS_ANNOTATION = vocab.GIDS_ANNOTATION
HOME_ANNOTATION = vocab.HOME_ANNOTATION

TEMPLATES = ("cluster/rbac.yaml.j2", "cluster/admission.yaml.j2", "cluster/services.yaml.j2",
             "cluster/priority.yaml.j2", "cluster/karpenter.yaml.j2", "cluster/autoscaler.yaml.j2",
             "cluster/capacity.yaml.j2", "cluster/agent.yaml.j2")
AGENT_ROLE = vocab.PRODUCT + "-agent"  # the agent's ClusterRole, Role and their bindings


# --- small derived facts ---------------------------------------------------------------------------


def subject(cfg: Config) -> dict[str, str]:
    """The RBAC subject of ``cluster.provisioner_subject`` ('User:NAME', 'Group:NAME', 'ServiceAccount:NS/NAME')."""
    return _subject(cfg.cluster.provisioner_subject)


def agent_subject(cfg: Config) -> dict[str, str]:
    """The agent's RBAC subject: ``agent.subject``, else the provisioner's (whose kubeconfig it then uses)."""
    return _subject(cfg.agent.subject) if cfg.agent.subject else subject(cfg)


def _subject(text: str) -> dict[str, str]:
    kind, _, name = text.partition(":")
    if kind == "ServiceAccount":
        namespace, _, sa = name.partition("/")
        return {"kind": kind, "name": sa, "namespace": namespace}
    return {"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name}


# --- template contexts -------------------------------------------------------------------------------


def contexts(cfg: Config) -> dict[str, dict[str, Any]]:
    """Template -> plain-data context, for each template that renders something under ``cfg``."""
    out: dict[str, dict[str, Any]] = {"cluster/rbac.yaml.j2": _rbac_context(cfg)}
    api = admission_api_version(cfg.cluster.kubernetes_version)
    if api:
        out["cluster/admission.yaml.j2"] = _admission_context(cfg, api)
        out["cluster/services.yaml.j2"] = {"api_version": api, "labels": labels(),
                                           "policy_name": SERVICE_POLICY_NAME,
                                           "namespace_labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY},
                                           "node_ports": quota.services(cfg) > 0}
    out["cluster/priority.yaml.j2"] = {
        "labels": labels(), "placeholder_class": PLACEHOLDER_PRIORITY_CLASS,
        "session_classes": pods.priority_classes(cfg.profiles),
    }
    out.update(autoscaler.of(cfg).templates(cfg))  # GPU capacity: NodePools, or the expander's priorities
    out[capacity_render.TEMPLATE] = capacity_render.context(cfg, subject(cfg))  # GPU sharing, pre-pullers...
    made = bool(out[capacity_render.TEMPLATE].get("agent_namespace"))
    out["cluster/agent.yaml.j2"] = _agent_context(cfg, namespace_made=made)  # nothing unless agent.enabled
    return out


def _agent_context(cfg: Config, namespace_made: bool) -> dict[str, Any]:
    """The agent's least-privilege RBAC (and its namespace, unless capacity's objects already make it)."""
    agent, provisioner = agent_subject(cfg), subject(cfg)
    return {"enabled": cfg.agent.enabled, "labels": labels(), "role": AGENT_ROLE, "status_role": f"{AGENT_ROLE}-status",
            "namespace": cfg.agent.namespace, "namespace_object": not namespace_made, "subject": agent,
            "namespace_labels": capacity_render.agent_namespace_labels(),
            "lease_name": vocab.LEASE_NAME, "status_subject": provisioner if agent != provisioner else None}


def _rbac_context(cfg: Config) -> dict[str, Any]:
    return {
        "labels": labels(),
        "user_role": cfg.users.cluster_role,
        "provisioner_role": PROVISIONER_ROLE,
        "policy_name": POLICY_NAME,
        "service_policy_name": SERVICE_POLICY_NAME,
        "subject": subject(cfg),
        "pull_secret": bool(cfg.users.image_pull_secret.name),
        "services": quota.services(cfg) > 0,
        **_storage_rbac(cfg),
        **autoscaler.RBAC_VARIABLES, **autoscaler.of(cfg).rbac(cfg),
    }


def _storage_rbac(cfg: Config) -> dict[str, Any]:
    """What the provisioner needs of the home backend: to make static PersistentVolumes, to read a CSIDriver."""
    home = storage.of(cfg)
    return {"static_home_pv": home.static_pv, "storage_driver": home.csi_driver}


def _admission_context(cfg: Config, api_version: str) -> dict[str, Any]:
    return {
        "api_version": api_version,
        "labels": labels(),
        "policy_name": POLICY_NAME,
        "namespace_labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY},
        **cel.admission_rules(cfg),  # the minimum uid and what a session may mount, as CEL
        **cel.pod_rules(cfg),  # placement, priority, wall time, sysctls, runtime classes, groups policy
        "usage_finalizer": cfg.usage.finalizer,  # the usage ledger's finalizer stays until the ledger holds it
        **usage_guard.rules(cfg),
    }


# --- the public surface ----------------------------------------------------------------------------


def objects(cfg: Config, renderer: Renderer | None = None) -> list[dict[str, Any]]:
    """Every cluster-scoped object the site applies, validated against cluster.kubernetes_version."""
    r = renderer or Renderer(cfg.templates.site_dir, cfg.cluster.kubernetes_version)
    out: list[dict[str, Any]] = []
    for template, context in contexts(cfg).items():
        out.extend(r.objects(template, **context))
    return out


def node_groups(cfg: Config) -> dict[str, Any]:
    """For cluster-autoscaler sites: per GPU profile, what its node group (ASG) must carry so the
    autoscaler can scale it from zero and the pods land on it.  Empty for other sites."""
    return autoscaler.of(cfg).node_groups(cfg)


def _efs_policy(cfg: Config) -> dict[str, Any]:
    """``--only efs-policy``: the EFS file-system policy and the CSI driver role's policy (storage.mode efs)."""
    from ood_k8s.cloud.aws import efs_policy
    from ood_k8s.core.errors import UsageError

    if storage.of(cfg).csi_driver != efs_policy.CSI_DRIVER:
        raise UsageError(f"no EFS file-system policy: storage.mode is {cfg.storage.mode}", "set storage.mode: efs")
    return efs_policy.render(cfg)


def _iam(cfg: Config) -> dict[str, Any]:
    """``--only iam``: the portal role's and the EFS CSI driver role's IAM policies."""
    from ood_k8s.cloud.aws import iam

    return iam.render(cfg)


# The documents that are not Kubernetes objects, by their --only name.
EXTRAS: dict[str, Callable[[Config], dict[str, Any]]] = {
    "eksctl": eksctl_config, "node-groups": node_groups, "efs-policy": _efs_policy, "iam": _iam}


def document(cfg: Config, name: str) -> dict[str, Any]:
    """One of :data:`EXTRAS` for ``cfg``."""
    return EXTRAS[name](cfg)

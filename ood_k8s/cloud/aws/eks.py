"""Amazon EKS: the cluster's OIDC identity provider (rendered for ``eksctl``, and checked by the
doctor), and the cluster autoscaler over EKS node groups (``cluster.autoscaler: cluster-autoscaler``:
the ASG tags that let it scale a GPU group from zero, and its priority expander).

:data:`CLUSTER_AUTOSCALER` is an :class:`ood_k8s.cluster.autoscaler.Autoscaler`, registered there.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.auth import provider as auth_provider
from ood_k8s.cloud.aws import errors as aws
from ood_k8s.cluster import capacity
from ood_k8s.cluster.facts import gpu_profiles, labels, pool_name
from ood_k8s.config import Config, Profile
from ood_k8s.core import vocab
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor.report import Check, Context

IDENTITY_PROVIDER = vocab.IDENTITY_PROVIDER
EXPANDER_TEMPLATE = "cluster/autoscaler.yaml.j2"  # the ConfigMap cluster-autoscaler-priority-expander


def eks_name(cfg: Config) -> str:
    return cfg.cluster.eks_name or cfg.cluster.name


def client(cfg: Config) -> Any:
    from ood_k8s.cloud.aws.clients import client as aws_client  # only the doctor's EKS check talks to EKS

    return aws_client("eks", region=cfg.cluster.aws_region, read_timeout=cfg.cluster.request_timeout)


# --- the OIDC identity provider ------------------------------------------------------------------------


def eksctl_config(cfg: Config) -> dict[str, Any]:
    """The cluster's OIDC identity provider as an eksctl ClusterConfig fragment (``eksctl associate
    identityprovider -f``): ID tokens whose username claim is the portal username, prefixed exactly as
    the hook's RoleBindings name the user."""
    identity = auth_provider.of(cfg)
    issuer, claims = identity.issuer(cfg), identity.claims(cfg)
    return {
        "apiVersion": "eksctl.io/v1alpha5",
        "kind": "ClusterConfig",
        "metadata": {"name": eks_name(cfg), "region": cfg.cluster.aws_region},
        "identityProviders": [{
            "name": IDENTITY_PROVIDER,
            "type": "oidc",
            "issuerUrl": issuer.url,
            "clientId": issuer.client_id,
            "usernameClaim": claims.username,
            "usernamePrefix": cfg.users.rbac_username_prefix,
            "groupsClaim": claims.groups,
            "groupsPrefix": cfg.users.rbac_groups_prefix,
        }],
    }


def identity_provider_mismatches(cfg: Config, provider: dict[str, Any]) -> list[str]:
    """Differences between the cluster's OIDC provider (EKS DescribeIdentityProviderConfig's ``oidc``)
    and what the configuration needs (:func:`eksctl_config`)."""
    want = eksctl_config(cfg)["identityProviders"][0]
    out = []
    for key in ("issuerUrl", "clientId", "usernameClaim", "usernamePrefix", "groupsClaim", "groupsPrefix"):
        if provider.get(key, "") != want[key]:
            out.append(f"{key} is {provider.get(key, '')!r}, expected {want[key]!r}")
    if provider.get("status", "ACTIVE") != "ACTIVE":
        out.append(f"status is {provider.get('status')}")
    return out


def check_identity_provider(cfg: Config, eks: Any) -> Check:
    """The EKS cluster's OIDC identity provider matches the configuration (when cluster.eks_name is set)."""
    title = "EKS identity provider"
    if not cfg.cluster.eks_name:
        return Check(title, None, "set cluster.eks_name to compare the cluster's OIDC settings")
    fix = "ood-k8s cluster render --only eksctl > idp.yaml; eksctl associate identityprovider -f idp.yaml " \
          "(EKS has one per cluster: disassociate a wrong one first)"
    try:
        listed = eks.list_identity_provider_configs(clusterName=cfg.cluster.eks_name)["identityProviderConfigs"]
        oidc = [p for p in listed if p.get("type") == "oidc"]
        if not oidc:
            return Check(title, False, f"cluster {cfg.cluster.eks_name} has no OIDC identity provider", fix)
        described = eks.describe_identity_provider_config(
            clusterName=cfg.cluster.eks_name, identityProviderConfig={"type": "oidc", "name": oidc[0]["name"]})
    except aws.client_errors() as err:
        code = aws.code(err)
        if code == "ResourceNotFoundException":
            return Check(title, False, f"no EKS cluster {cfg.cluster.eks_name} in {cfg.cluster.aws_region}",
                         "set cluster.eks_name and cluster.aws_region")
        return Check(title, None, f"cannot read it ({code}); give the portal's AWS role "
                     "eks:ListIdentityProviderConfigs and eks:DescribeIdentityProviderConfig to check")
    provider = (described.get("identityProviderConfig") or {}).get("oidc") or {}
    mismatches = identity_provider_mismatches(cfg, provider)
    if mismatches:
        return Check(title, False, f"{oidc[0]['name']}: " + "; ".join(mismatches), fix)
    return Check(title, True, f"{oidc[0]['name']}: issuer, client and claims match")


def identity_provider_checks(ctx: Context) -> list[Check]:
    """Doctor provider: the EKS identity provider, on sites that name their EKS cluster."""
    return [check_identity_provider(ctx.cfg, ctx.client("eks"))] if ctx.cfg.cluster.eks_name else []


# --- the cluster autoscaler over EKS node groups ----------------------------------------------------------


def node_groups(cfg: Config) -> dict[str, Any]:
    """Per GPU profile, what its node group (ASG) must carry so the autoscaler can scale it from zero
    and the pods land on it."""
    eks = eks_name(cfg)
    groups: dict[str, Any] = {}
    for p in gpu_profiles(cfg):
        res = p.gpu.resource
        node_labels = capacity.node_selector(p)
        tags = {
            "k8s.io/cluster-autoscaler/enabled": "true",
            f"k8s.io/cluster-autoscaler/{eks}": "owned",
            f"k8s.io/cluster-autoscaler/node-template/resources/{res}": str(p.gpu.max),
            f"k8s.io/cluster-autoscaler/node-template/taint/{res}": "true:NoSchedule",
        }
        tags.update({f"k8s.io/cluster-autoscaler/node-template/label/{k}": v for k, v in node_labels.items()})
        groups[pool_name(p)] = {
            "profile": p.name,
            "instanceTypes": list(p.karpenter.instance_types),
            "labels": node_labels,
            "taints": [{"key": res, "value": "true", "effect": "NoSchedule"}],
            "tags": tags,
            # Launch template: IMDSv2 only, one hop -- pods cannot reach the node's IAM role.
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        }
    return {"nodeGroups": groups}


def expander_priorities(cfg: Config) -> str:
    """The expander's YAML: each GPU node group (named after its pool) by weight; every other group at 0."""
    import yaml  # deferred as before: manifests is imported by submit's volume checks, which never get here

    by_weight: dict[int, list[str]] = {}
    for p in gpu_profiles(cfg):
        # Pool names are DNS labels: nothing in them is special in a regular expression.
        by_weight.setdefault(p.karpenter.weight, []).append(f".*{pool_name(p)}.*")
    by_weight.setdefault(0, []).append(".*")
    return yaml.safe_dump(dict(sorted(by_weight.items(), reverse=True)), sort_keys=False)


class ClusterAutoscaler:
    """``cluster-autoscaler``: GPU node groups scaled from zero; a profile without a node now is undecided."""

    def templates(self, cfg: Config) -> dict[str, dict[str, Any]]:
        if not gpu_profiles(cfg):
            return {}
        return {EXPANDER_TEMPLATE: {"labels": labels(), "priorities": expander_priorities(cfg)}}

    def rbac(self, cfg: Config) -> dict[str, Any]:
        return {}

    def node_groups(self, cfg: Config) -> dict[str, Any]:
        return node_groups(cfg)

    def capacity(self, kube: KubeClient, cfg: Config, profiles: list[Profile],
                 nodes: list[dict[str, Any]]) -> list[Check]:
        return [capacity.fixed_nodes(p, nodes) or Check(
            capacity.title(p), None, "no node now; the autoscaler must be able to add one from zero (tags: "
            "'ood-k8s cluster render --only node-groups')") for p in profiles]

    def node_metadata(self, kube: KubeClient, cfg: Config) -> list[Check]:
        from ood_k8s.cloud.aws import node_groups  # read by its own doctor provider when cluster.eks_name is set

        return node_groups.unread(cfg)


CLUSTER_AUTOSCALER = ClusterAutoscaler()

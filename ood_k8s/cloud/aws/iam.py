"""``ood-k8s cluster render --only iam``: the IAM policies of this site, made from what the code calls.

The portal's role (the instance profile of the OOD host, used by the hook and admin commands) needs
the Cognito calls of :mod:`ood_k8s.cloud.aws.cognito_admin`, the EFS calls of
:mod:`ood_k8s.cloud.aws.efs` (access points, and the doctor's reads), the doctor's EKS reads and its
reads of every node group's metadata options (:mod:`ood_k8s.cloud.aws.node_groups`: EKS, EC2, Auto Scaling);
the EFS CSI driver's role needs AWS's managed policy plus :func:`efs_policy.csi_role_policy` for
``iam`` mounts.  Only what this site's modes use is rendered.  Account ids are ``*``: the pool, file
system and cluster names already pin the resources, and no placeholder is left to edit.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.cloud.aws import node_groups
from ood_k8s.config import Config

# The doctor's EKS reads (cloud/aws/eks.py): not a mode of anything, asked whenever the cluster is named.
EKS_ACTIONS = ["eks:DescribeCluster", "eks:ListIdentityProviderConfigs", "eks:DescribeIdentityProviderConfig"]


def _parts(cfg: Config) -> list[Any]:
    """The site's identity provider and home backend: each brings its own IAM (``iam_statements``,
    and ``iam_roles`` for roles other than the portal's) if it calls AWS at all."""
    from ood_k8s.auth import provider
    from ood_k8s.storage import backend

    return [provider.of(cfg), backend.of(cfg)]


def portal_policy(cfg: Config) -> dict[str, Any]:
    """The OOD host's role: what the hook, admin commands and doctor call."""
    statements: list[dict[str, Any]] = []
    for part in _parts(cfg):
        if hasattr(part, "iam_statements"):
            statements += part.iam_statements(cfg)
    if cfg.cluster.eks_name:
        region, name = cfg.cluster.aws_region, cfg.cluster.eks_name
        statements.append({"Sid": "EksDoctor", "Effect": "Allow", "Action": EKS_ACTIONS,
                           "Resource": [f"arn:aws:eks:{region}:*:cluster/{name}",
                                        f"arn:aws:eks:{region}:*:identityproviderconfig/{name}/*"]})
        statements += node_groups.iam_statements(cfg)  # issue 11: every node group's metadata options
    return {"Version": "2012-10-17", "Statement": statements}


def render(cfg: Config) -> dict[str, Any]:
    """What ``--only iam`` prints: each role's policies and how to attach them."""
    out: dict[str, Any] = {"portalRolePolicy": portal_policy(cfg),
                           "apply": ["aws iam put-role-policy --role-name <the OOD host's role> --policy-name ood-k8s "
                                     "--policy-document file://portal-policy.json"]}
    for part in _parts(cfg):
        if hasattr(part, "iam_roles"):
            roles, apply = part.iam_roles(cfg)
            out.update(roles)
            out["apply"] += apply
    return out

"""``ood-k8s cluster render --only iam``: the IAM policies of this site, made from what the code calls.

The portal's role (the instance profile of the OOD host, used by the hook and admin commands) needs
the Cognito calls of :mod:`ood_k8s.cloud.aws.cognito_admin`, the EFS calls of
:mod:`ood_k8s.cloud.aws.efs` (access points, and the doctor's reads) and the doctor's EKS reads;
the EFS CSI driver's role needs AWS's managed policy plus :func:`efs_policy.csi_role_policy` for
``iam`` mounts.  Only what this site's modes use is rendered.  Account ids are ``*``: the pool, file
system and cluster names already pin the resources, and no placeholder is left to edit.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.config import Config

# Each list is what the code calls (grep the module named beside it), as IAM action names.
COGNITO_ACTIONS = [  # cloud/aws/cognito_admin.py
    "cognito-idp:AdminGetUser", "cognito-idp:AdminCreateUser", "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminSetUserPassword", "cognito-idp:AdminInitiateAuth", "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:AdminAddUserToGroup", "cognito-idp:AdminRemoveUserFromGroup", "cognito-idp:CreateGroup",
    "cognito-idp:DescribeUserPool", "cognito-idp:DescribeUserPoolClient"]
EFS_ACTIONS = [  # cloud/aws/efs.py, efs_policy.py
    "elasticfilesystem:CreateAccessPoint", "elasticfilesystem:DescribeAccessPoints",
    "elasticfilesystem:DeleteAccessPoint", "elasticfilesystem:TagResource",
    "elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeFileSystemPolicy"]
EKS_ACTIONS = [  # cloud/aws/eks.py (doctor only)
    "eks:DescribeCluster", "eks:ListIdentityProviderConfigs", "eks:DescribeIdentityProviderConfig"]
EFS_CSI_MANAGED_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
EFS_CSI_SERVICE_ACCOUNT = "kube-system/efs-csi-controller-sa"


def portal_policy(cfg: Config) -> dict[str, Any]:
    """The OOD host's role: what the hook, admin commands and doctor call."""
    region = cfg.cluster.aws_region
    statements: list[dict[str, Any]] = []
    if cfg.auth.mode == "cognito":
        statements.append({"Sid": "CognitoUsers", "Effect": "Allow", "Action": COGNITO_ACTIONS,
                           "Resource": f"arn:aws:cognito-idp:{region}:*:userpool/{cfg.auth.cognito.user_pool_id}"})
    if cfg.storage.mode == "efs":
        fs = f"arn:aws:elasticfilesystem:{region}:*:file-system/{cfg.storage.efs.file_system_id}"
        statements.append({"Sid": "EfsHomes", "Effect": "Allow", "Action": EFS_ACTIONS,
                           "Resource": [fs, f"arn:aws:elasticfilesystem:{region}:*:access-point/*"]})
    if cfg.cluster.eks_name:
        name = cfg.cluster.eks_name
        statements.append({"Sid": "EksDoctor", "Effect": "Allow", "Action": EKS_ACTIONS,
                           "Resource": [f"arn:aws:eks:{region}:*:cluster/{name}",
                                        f"arn:aws:eks:{region}:*:identityproviderconfig/{name}/*"]})
    return {"Version": "2012-10-17", "Statement": statements}


def render(cfg: Config) -> dict[str, Any]:
    """What ``--only iam`` prints: each role's policies and how to attach them."""
    out: dict[str, Any] = {"portalRolePolicy": portal_policy(cfg),
                           "apply": ["aws iam put-role-policy --role-name <the OOD host's role> --policy-name ood-k8s "
                                     "--policy-document file://portal-policy.json"]}
    if cfg.storage.mode == "efs":
        csi: dict[str, Any] = {"serviceAccount": EFS_CSI_SERVICE_ACCOUNT, "managedPolicy": EFS_CSI_MANAGED_POLICY}
        if cfg.storage.efs.client_role_arns:
            from ood_k8s.cloud.aws import efs_policy

            csi["inlinePolicy"] = efs_policy.csi_role_policy(cfg)
        out["efsCsiDriverRole"] = csi
        out["apply"].append(f"eksctl create iamserviceaccount --cluster {cfg.cluster.eks_name or '<cluster>'} "
                            "--namespace kube-system --name efs-csi-controller-sa --role-name "
                            f"AmazonEKS_EFS_CSI_DriverRole --role-only --attach-policy-arn {EFS_CSI_MANAGED_POLICY} "
                            "--approve")
    return out

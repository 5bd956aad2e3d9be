"""The EFS file-system policy that makes access points the only way in, and the doctor check of the live one.

An access point confines only the NFS sessions made through it; EFS's default file-system policy lets any
client that reaches a mount target mount the root as any uid, root included (REFERENCE §11).  The policy
:func:`file_system_policy` renders (``ood-k8s cluster render --only efs-policy``):

* denies everything without TLS (``aws:SecureTransport``);
* denies mounting and writing not made through an access point (``elasticfilesystem:AccessPointArn``
  null) to everyone but the portal hosts' roles (``storage.efs.client_role_arns`` after the first), which
  mount the root for ``$HOME`` on the portal;
* allows mount and write only to those roles, through a mount target -- so an anonymous (non-IAM) NFS
  client, e.g. a userspace one in a session, gets nothing -- and grants ``ClientRootAccess`` to no one.

:func:`csi_role_policy` is the IAM policy the EFS CSI driver's role needs for those ``iam`` mounts.
:func:`weaknesses` judges a live policy (DescribeFileSystemPolicy) against the same three rules;
:func:`check_policy` is the doctor check (registered in :mod:`ood_k8s.cloud.aws.efs`'s storage checks).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ood_k8s.config import Config
from ood_k8s.core.errors import UsageError

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context

MOUNT = "elasticfilesystem:ClientMount"
WRITE = "elasticfilesystem:ClientWrite"
ROOT = "elasticfilesystem:ClientRootAccess"
VIA_ACCESS_POINT = "elasticfilesystem:AccessPointArn"
VIA_MOUNT_TARGET = "elasticfilesystem:AccessedViaMountTarget"
RENDER = "ood-k8s cluster render --only efs-policy"
CSI_DRIVER = "efs.csi.aws.com"  # = efs.CSI_DRIVER; efs.py (hot path) imports this module only for doctor


def file_system_arn(cfg: Config) -> str:
    e = cfg.storage.efs
    if not e.client_role_arns:
        raise UsageError("storage.efs.client_role_arns is empty: the policy names who may mount",
                         "list the EFS CSI driver's IAM role (and the portal hosts' roles)")
    account = e.client_role_arns[0].split(":")[4]
    return f"arn:aws:elasticfilesystem:{e.region}:{account}:file-system/{e.file_system_id}"


def file_system_policy(cfg: Config) -> dict[str, Any]:
    """The file-system policy (PutFileSystemPolicy's Policy, as a document)."""
    arn, roles = file_system_arn(cfg), list(cfg.storage.efs.client_role_arns)
    root_deny: dict[str, Any] = {"Null": {VIA_ACCESS_POINT: "true"}}
    if roles[1:]:
        root_deny["ArnNotEquals"] = {"aws:PrincipalArn": roles[1:]}
    return {
        "Version": "2012-10-17",
        "Id": "ood-k8s-homes",
        "Statement": [
            {"Sid": "DenyWithoutTls", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*",
             "Resource": arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyOutsideAccessPoints", "Effect": "Deny", "Principal": {"AWS": "*"},
             "Action": [MOUNT, WRITE, ROOT], "Resource": arn, "Condition": root_deny},
            {"Sid": "MountThroughMountTargets", "Effect": "Allow", "Principal": {"AWS": roles},
             "Action": [MOUNT, WRITE], "Resource": arn, "Condition": {"Bool": {VIA_MOUNT_TARGET: "true"}}},
        ],
    }


def csi_role_policy(cfg: Config) -> dict[str, Any]:
    """What the EFS CSI driver's role needs for ``iam`` mounts of the homes (beyond its add-on's own policy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "MountHomes", "Effect": "Allow", "Action": [MOUNT, WRITE], "Resource": file_system_arn(cfg),
             "Condition": {"Bool": {VIA_MOUNT_TARGET: "true"}}},
            {"Sid": "FindMountTargets", "Effect": "Allow", "Resource": "*",
             "Action": ["elasticfilesystem:DescribeMountTargets", "elasticfilesystem:DescribeAccessPoints",
                        "elasticfilesystem:DescribeFileSystems", "ec2:DescribeAvailabilityZones"]},
        ],
    }


def render(cfg: Config) -> dict[str, Any]:
    """What ``--only efs-policy`` prints: both documents and how to apply them."""
    return {"fileSystemPolicy": file_system_policy(cfg), "csiDriverRolePolicy": csi_role_policy(cfg),
            "apply": [f"aws efs put-file-system-policy --file-system-id {cfg.storage.efs.file_system_id} "
                      "--policy file://fs-policy.json",
                      "attach csiDriverRolePolicy to the role of the EFS CSI driver's service account"]}


# --- judging the live policy -----------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions(st: dict[str, Any]) -> set[str]:
    return {a.lower() for a in _list(st.get("Action", []))}


def _covers(st: dict[str, Any], action: str) -> bool:
    acts = _actions(st)
    return "*" in acts or "elasticfilesystem:*" in acts or action.lower() in acts


def _everyone(st: dict[str, Any]) -> bool:
    p = st.get("Principal")
    return p == "*" or (isinstance(p, dict) and "*" in _list(p.get("AWS", [])))


def _condition(st: dict[str, Any], op: str, key: str) -> Any:
    for name, body in (st.get("Condition") or {}).items():
        if name.lower() == op.lower():
            for k, v in body.items():
                if k.lower() == key.lower():
                    return v
    return None


def weaknesses(policy: dict[str, Any] | None) -> list[str]:
    """What a live file-system policy lacks of :func:`file_system_policy`'s three rules."""
    if policy is None:
        return ["no file-system policy: any client that reaches a mount target may mount the root as any uid"]
    statements = _list(policy.get("Statement", []))
    deny = [s for s in statements if s.get("Effect") == "Deny" and _everyone(s)]
    allow = [s for s in statements if s.get("Effect") == "Allow"]
    out = []
    if not any(_covers(s, MOUNT) and str(_condition(s, "Bool", "aws:SecureTransport")).lower() == "false"
               for s in deny):
        out.append("nothing denies access without TLS (aws:SecureTransport false)")
    if not any(_covers(s, MOUNT) and str(_condition(s, "Null", VIA_ACCESS_POINT)).lower() == "true" for s in deny):
        out.append("nothing denies mounts not made through an access point (elasticfilesystem:AccessPointArn)")
    if any(_covers(s, ROOT) for s in allow):
        out.append("it grants elasticfilesystem:ClientRootAccess")
    if any(_everyone(s) and _covers(s, MOUNT) for s in allow):
        out.append("it allows every principal to mount (anonymous NFS clients included)")
    return out


def check_policy(ctx: Context) -> Check:
    """doctor: the live file-system policy holds the three rules."""
    from ood_k8s.cloud.aws import errors
    from ood_k8s.doctor.report import Check

    fs = ctx.cfg.storage.efs.file_system_id
    try:
        reply = ctx.client("efs").describe_file_system_policy(FileSystemId=fs)
        policy = json.loads(reply.get("Policy") or "null")
    except errors.client_errors() as err:
        if errors.code(err) != "PolicyNotFound":
            return Check("EFS file-system policy", False, f"{fs}: {errors.code(err)}",
                         errors.fix(err, "allow elasticfilesystem:DescribeFileSystemPolicy to the admin role"))
        policy = None
    found = weaknesses(policy)
    if found:
        return Check("EFS file-system policy", False, f"{fs}: {'; '.join(found)}",
                     f"apply the policy of '{RENDER}' (aws efs put-file-system-policy)")
    return Check("EFS file-system policy", True, f"{fs}: TLS only, access points only, no root access")


# What the portal's role must allow for efs.py's calls and the doctor's reads (``cluster render --only iam``).
PORTAL_ACTIONS = [
    "elasticfilesystem:CreateAccessPoint", "elasticfilesystem:DescribeAccessPoints",
    "elasticfilesystem:DeleteAccessPoint", "elasticfilesystem:TagResource",
    "elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeFileSystemPolicy"]
CSI_MANAGED_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
CSI_SERVICE_ACCOUNT = "kube-system/efs-csi-controller-sa"


def portal_statements(cfg: Config) -> list[dict[str, Any]]:
    region = cfg.cluster.aws_region
    fs = f"arn:aws:elasticfilesystem:{region}:*:file-system/{cfg.storage.efs.file_system_id}"
    return [{"Sid": "EfsHomes", "Effect": "Allow", "Action": PORTAL_ACTIONS,
             "Resource": [fs, f"arn:aws:elasticfilesystem:{region}:*:access-point/*"]}]


def csi_role(cfg: Config) -> tuple[dict[str, Any], list[str]]:
    """The EFS CSI driver's role (its policies) and the command that makes it."""
    csi: dict[str, Any] = {"serviceAccount": CSI_SERVICE_ACCOUNT, "managedPolicy": CSI_MANAGED_POLICY}
    if cfg.storage.efs.client_role_arns:
        csi["inlinePolicy"] = csi_role_policy(cfg)
    apply = (f"eksctl create iamserviceaccount --cluster {cfg.cluster.eks_name or '<cluster>'} "
             "--namespace kube-system --name efs-csi-controller-sa --role-name "
             f"AmazonEKS_EFS_CSI_DriverRole --role-only --attach-policy-arn {CSI_MANAGED_POLICY} --approve")
    return {"efsCsiDriverRole": csi}, [apply]

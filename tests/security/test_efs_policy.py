"""Every home over raw NFS: EFS's default file-system policy lets any client that reaches a mount target mount
the root as uid 0.  The rendered policy denies that (TLS only, access points only, no root access, no anonymous
client), EFS PVs mount with 'iam' and 'tls', and doctor reads the live policy -- here from moto, which
implements Put/DescribeFileSystemPolicy."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ood_k8s.cloud.aws import efs_policy
from ood_k8s.cluster import manifests as cluster
from ood_k8s.config import Config
from ood_k8s.core.errors import UsageError

CSI = "arn:aws:iam::111122223333:role/efs-csi"
PORTAL = "arn:aws:iam::111122223333:role/ood-portal"


def _cfg() -> Config:
    cfg = Config()
    cfg.storage.efs.client_role_arns = [CSI, PORTAL]
    return cfg


class _Ctx:
    def __init__(self, cfg: Config, efs: Any) -> None:
        self.cfg, self._efs = cfg, efs

    def client(self, name: str) -> Any:
        assert name == "efs"
        return self._efs


def test_the_rendered_policy() -> None:
    policy = cluster.document(_cfg(), "efs-policy")["fileSystemPolicy"]
    arn = "arn:aws:elasticfilesystem:us-east-1:111122223333:file-system/fs-0123456789abcdef0"
    deny_tls, deny_root, allow = policy["Statement"]
    assert deny_tls["Effect"] == "Deny" and deny_tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny_root["Condition"] == {"Null": {"elasticfilesystem:AccessPointArn": "true"},
                                      "ArnNotEquals": {"aws:PrincipalArn": [PORTAL]}}
    assert "elasticfilesystem:ClientRootAccess" in deny_root["Action"]
    assert allow == {"Sid": "MountThroughMountTargets", "Effect": "Allow", "Principal": {"AWS": [CSI, PORTAL]},
                     "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"], "Resource": arn,
                     "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}}
    assert efs_policy.weaknesses(policy) == []
    role = cluster.document(_cfg(), "efs-policy")["csiDriverRolePolicy"]
    assert role["Statement"][0]["Action"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]


def test_render_needs_the_roles_and_efs() -> None:
    with pytest.raises(UsageError, match="client_role_arns"):
        cluster.document(Config(), "efs-policy")
    cfg = _cfg()
    cfg.storage.mode = "nfs"
    with pytest.raises(UsageError, match=r"storage\.mode is nfs"):
        cluster.document(cfg, "efs-policy")


def test_efs_pvs_mount_with_iam_and_tls() -> None:
    assert set(Config().storage.efs.mount_options) >= {"iam", "tls"}


WEAKER = [
    ("the default (no policy)", None, "no file-system policy"),
    ("no TLS rule", lambda p: p["Statement"].pop(0), "TLS"),
    ("no access-point rule", lambda p: p["Statement"].pop(1), "access point"),
    ("root access granted", lambda p: p["Statement"][2]["Action"].append("elasticfilesystem:ClientRootAccess"),
     "ClientRootAccess"),
    ("anyone may mount", lambda p: p["Statement"][2].update(Principal={"AWS": "*"}), "every principal"),
]


@pytest.mark.parametrize(("weaken", "found"), [w[1:] for w in WEAKER], ids=[w[0] for w in WEAKER])
def test_doctor_fails_on_a_missing_or_weaker_policy(weaken: Any, found: str) -> None:
    cfg = _cfg()
    with mock_aws():
        efs = boto3.client("efs", region_name="us-east-1")
        fs = efs.create_file_system(CreationToken="homes")["FileSystemId"]
        cfg.storage.efs.file_system_id = fs
        if weaken is not None:
            policy = copy.deepcopy(efs_policy.file_system_policy(cfg))
            weaken(policy)
            efs.put_file_system_policy(FileSystemId=fs, Policy=json.dumps(policy))
        check = efs_policy.check_policy(_Ctx(cfg, efs))
    assert not check.ok and found in check.detail, check


def test_doctor_passes_the_rendered_policy() -> None:
    cfg = _cfg()
    with mock_aws():
        efs = boto3.client("efs", region_name="us-east-1")
        fs = efs.create_file_system(CreationToken="homes")["FileSystemId"]
        cfg.storage.efs.file_system_id = fs
        efs.put_file_system_policy(FileSystemId=fs, Policy=json.dumps(efs_policy.file_system_policy(cfg)))
        check = efs_policy.check_policy(_Ctx(cfg, efs))
    assert check.ok, check


def test_cli_prints_the_policies(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from ood_k8s import cli

    path = tmp_path / "ood_k8s.yml"
    path.write_text(json.dumps({"cluster": {"server": "https://k.example"},
                                "storage": {"efs": {"client_role_arns": [CSI, PORTAL]}}}))
    assert cli.main(["--config", str(path), "cluster", "render", "--only", "efs-policy", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fileSystemPolicy"] == efs_policy.file_system_policy(_cfg())
    assert set(out) == {"fileSystemPolicy", "csiDriverRolePolicy", "apply"}

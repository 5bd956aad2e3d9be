"""``ood-k8s cluster render --only iam`` grants exactly what the code calls (issue 14: install guide)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ood_k8s import cli
from tests.conftest import ROOT

SERVICES = {"cognito_admin.py": "cognito-idp", "efs.py": "elasticfilesystem", "efs_policy.py": "elasticfilesystem",
            "eks.py": "eks"}


def _called() -> set[str]:
    """Every AWS operation the cloud modules call, as an IAM action."""
    out = set()
    for name, service in SERVICES.items():
        text = (ROOT / "ood_k8s" / "cloud" / "aws" / name).read_text()
        ops = set(re.findall(r'_?call\([^,]+, (?:[a-z]+, )?"([a-z_]+)"', text))
        ops |= set(re.findall(r'\.(describe_[a-z_]+|list_[a-z_]+)\(', text))
        out |= {f"{service}:" + "".join(w.title() for w in op.split("_")) for op in ops}
    return out


def test_the_portal_policy_grants_every_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yml"
    site.write_text("cluster: {eks_name: hpc}\n")
    assert cli.main(["--config", str(site), "cluster", "render", "--only", "iam", "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    granted = {a for st in doc["portalRolePolicy"]["Statement"] for a in st["Action"]}
    called = _called()
    assert len(called) >= 10
    assert called - granted == set()
    assert doc["efsCsiDriverRole"]["managedPolicy"].endswith("AmazonEFSCSIDriverPolicy")

"""docs/install.md: every step ends with the doctor (or config check) line that confirms it, and every
doctor line it quotes is a check doctor really prints."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.doctor.test_doctor import HEALTHY, HEALTHY_USER

GUIDE = (ROOT / "docs" / "install.md").read_text()
OTHER_CHECKS = {"EKS identity provider", "node metadata options"}  # not in the moto-backed healthy site


def _steps() -> list[tuple[str, str]]:
    parts = re.split(r"^## ", GUIDE, flags=re.M)[1:]
    return [(p.splitlines()[0], p) for p in parts]


def test_every_step_ends_with_what_confirms_it() -> None:
    steps = _steps()
    assert len(steps) >= 9
    for title, body in steps:
        last = body.strip().split("\n\n")[-1]
        assert last.startswith("Confirm:"), title
        assert "doctor" in last or "config check" in last or "✔" in last, title


def test_quoted_doctor_lines_are_real_checks() -> None:
    quoted = {m.strip() for m in re.findall(r"✔ ([^:`]+)", GUIDE)}
    known = set(HEALTHY) | set(HEALTHY_USER) | OTHER_CHECKS
    known |= {k.split(":")[0] for k in known}  # "home: home directory" is quoted up to its colon
    unknown = {q for q in quoted if q not in known and not any(q.startswith(k.split(" for ")[0]) for k in known)}
    assert unknown == set()


def test_the_guide_covers_what_the_issue_asks() -> None:
    for needle in ("create-access-entry", "aws-auth", "aws eks update-kubeconfig", "cluster render --only iam",
                   "AmazonEFSCSIDriverPolicy", "create-user-pool-client", "Karpenter", "ood config --out",
                   "secrets_file"):
        assert needle in GUIDE, needle

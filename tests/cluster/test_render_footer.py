"""``ood-k8s cluster render``'s footer names the other documents (``--only``) from the one registry of them
(``manifests.EXTRAS``), so a document added there is listed without anyone remembering the footer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s.cli import cluster as cli_cluster
from ood_k8s.cluster import manifests

FOOTER = "# Not Kubernetes objects, printed separately: "


def _footer(cfg: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    from ood_k8s import cli, config

    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(config.to_dict(cfg, redact=False)))
    assert cli.main(["--config", str(path), "cluster", "render"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(FOOTER)
    return [part.split(" (")[0].removeprefix("--only ") for part in last[len(FOOTER):].split("; ")]


def test_every_registered_document_has_a_description_and_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    from ood_k8s import cli

    assert list(cli_cluster.EXTRAS) == list(manifests.EXTRAS)
    with pytest.raises(SystemExit):
        cli.main(["cluster", "render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "or one of the other documents: " + ", ".join(manifests.EXTRAS) in text


def test_an_efs_site_is_told_of_its_file_system_policy(make_config: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(**{"storage.efs.client_role_arns": ["arn:aws:iam::123456789012:role/efs-csi"]})
    assert _footer(cfg, tmp_path, capsys) == ["eksctl", "efs-policy", "iam"]


@pytest.mark.parametrize(("changes", "listed"), [
    ({}, ["eksctl", "iam"]),  # EFS without client roles: --only efs-policy would refuse (and say what to set)
    ({"storage.mode": "nfs"}, ["eksctl", "iam"]),
    ({"cluster.autoscaler": "cluster-autoscaler", "storage.mode": "nfs"}, ["eksctl", "node-groups", "iam"]),
])
def test_the_footer_is_what_builds_for_the_site(make_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                changes: dict[str, Any], listed: list[str]) -> None:
    cfg = make_config(**changes)
    assert _footer(cfg, tmp_path, capsys) == listed == cli_cluster.other_documents(cfg)


def test_a_new_document_is_listed_without_touching_the_footer(make_config: Any, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setitem(manifests.EXTRAS, "new-doc", lambda cfg: {"x": 1})
    assert cli_cluster.other_documents(make_config())[-1] == "new-doc"

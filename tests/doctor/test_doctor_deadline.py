"""``ood-k8s doctor`` prints each check as it runs, ends within its deadline (a firewalled API costs
seconds), ends with what to do, speaks ``-o json|yaml``, and tells a non-root admin to use root."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ood_k8s import cli
from ood_k8s.doctor.runner import Check
from tests.doctor.test_doctor import Site, runnable_plugin, site, user_site  # noqa: F401  (fixtures)


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A socket the kernel accepts connections on and nobody ever answers: a firewalled or hung API."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv.getsockname()[1]
    srv.close()


def test_a_hung_api_ends_within_seconds_with_one_line(site: Site, tmp_path: Path, hung_server: int) -> None:  # noqa: F811
    path = tmp_path / "hung.kubeconfig"
    site.fk.write_kubeconfig(str(path))
    path.write_text(path.read_text().replace(site.fk.url, f"https://127.0.0.1:{hung_server}"))
    site.cfg.cluster.provisioner_kubeconfig = str(path)
    t = time.monotonic()
    checks = site.run(user=None, kube=None, request_timeout=0.3)
    assert time.monotonic() - t < 5
    api = next(c for c in checks if c.name == "Kubernetes API")
    assert api.ok is False and api.detail.endswith(": timed out") and "\n" not in api.detail
    assert next(c for c in checks if c.name == "cluster checks").ok is None  # skipped, not hung on


def test_checks_are_handed_over_as_they_are_made(site: Site) -> None:  # noqa: F811
    seen: list[Check] = []
    checks = site.run(user=None, on_check=seen.append)
    assert seen == checks and len(checks) > 3


def test_providers_after_the_deadline_are_reported_not_run(site: Site) -> None:  # noqa: F811
    ticks = iter(range(0, 10_000, 100))
    checks = site.run(user=None, deadline=150, timer=lambda: next(ticks))
    assert [c.name for c in checks][-1] == "deadline"
    last = checks[-1]
    assert last.ok is False and "doctor stopped after 150s; not run: " in last.detail
    assert len(checks) < 6


def _bad_config(tmp_path: Path) -> str:
    bad = tmp_path / "bad.yml"
    bad.write_text("users:\n  min_uid: -1\n")
    return str(bad)


def test_cli_ends_with_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", _bad_config(tmp_path), "doctor"]) == 1
    out, err = capsys.readouterr()
    assert out.endswith("1 problem found\n")
    assert err.startswith("next: fix 'configuration' first") and err.count("\n") == 1


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_cli_output_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    assert cli.main(["--config", _bad_config(tmp_path), "doctor", "-o", fmt]) == 1
    out = capsys.readouterr().out
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert data["ok"] is False
    assert data["checks"][0]["name"] == "configuration" and "users.min_uid" in data["checks"][0]["detail"]


def test_a_non_root_admin_is_told_to_use_root(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    real = os.access
    kc = site.cfg.cluster.provisioner_kubeconfig
    monkeypatch.setattr(os, "access", lambda p, m, **kw: False if p == kc else real(p, m, **kw))
    check = site.check("Kubernetes API", user=None, kube=None)
    assert check.ok is False
    assert check.fix == "run as root (sudo ood-k8s doctor): the provisioner kubeconfig is root-only"


def test_a_missing_provisioner_kubeconfig_says_how_to_make_one(site: Site, tmp_path: Path) -> None:  # noqa: F811
    site.cfg.cluster.provisioner_kubeconfig = str(tmp_path / "nope")
    check = site.check("Kubernetes API", user=None, kube=None)
    assert "docs/install.md" in check.fix and "aws eks update-kubeconfig" in check.fix


def test_doctor_and_storage_check_agree_on_a_pending_claim(user_site: Site) -> None:  # noqa: F811
    from ood_k8s.storage import backend as storage
    from ood_k8s.users import provision

    names = provision.user_names(user_site.cfg, "alice")
    claim = user_site.fk.get("persistentvolumeclaims", "home", names.namespace)
    claim["status"] = {"phase": "Pending"}
    user_site.fk.seed(claim)
    doctor_says = {c.name: c.ok for c in user_site.run()}
    rows = {f.what: f.status for f in storage.check(user_site.cfg, user_site.ident, names, user_site.kube,
                                                    cloud=user_site.efs)}
    assert doctor_says["home claim"] is False
    assert doctor_says["home: PersistentVolumeClaim"] is False
    assert rows["PersistentVolumeClaim"] == "error"


@pytest.mark.parametrize("content", [None, b"garbage\n"])
def test_doctor_names_a_bad_ca(site: Site, tmp_path: Path, content: bytes | None) -> None:  # noqa: F811
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    site.cfg.cluster.certificate_authority = str(ca)
    check = site.check("configuration", user=None)
    assert check.ok is False and check.detail.startswith("cluster.certificate_authority: ")

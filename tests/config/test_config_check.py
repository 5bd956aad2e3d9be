"""``ood-k8s config check``: everything a student's poll and a login will need, every problem at once,
one line each naming the setting, exit 78 -- and nothing written beside what it checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s import cli, config
from ood_k8s.config import files
from ood_k8s.config.checks import site_problems
from ood_k8s.core.errors import ConfigError

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="root-only files are checked as root")


def _site(tmp_path: Path, fake_kube: Any, **extra: Any) -> Path:
    """A site that passes: a real CA, a root-only provisioner kubeconfig, no placeholder."""
    (tmp_path / "etc").mkdir(mode=0o755)
    kc = tmp_path / "etc" / "provisioner.kubeconfig"
    fake_kube.write_kubeconfig(str(kc))
    kc.chmod(0o600)
    data: dict[str, Any] = {
        "cluster": {"server": "https://api.hpc.university.test:6443", "certificate_authority": fake_kube.ca_file,
                    "provisioner_kubeconfig": str(kc)},
        "auth": {"cognito": {"user_pool_id": "eu-west-1_AbCdEfGhI", "client_id": "3n4b5urk1ft4fl3mg5e62d9ado",
                             "attributes": {"email": "{user}@university.test"}}},
        "storage": {"efs": {"file_system_id": "fs-0a1b2c3d4e5f60718"}},
    }
    for key, value in extra.items():
        head, _, rest = key.partition(".")
        node = data.setdefault(head, {})
        *parents, leaf = rest.split(".") if rest else [head]
        if not rest:
            data[head] = value
            continue
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    site = tmp_path / "etc" / "ood_k8s.yml"
    site.write_text(yaml.safe_dump(data))
    site.chmod(0o644)
    os.chmod(fake_kube.ca_file, 0o644)
    for d in (tmp_path, tmp_path.parent, tmp_path.parent.parent, Path(fake_kube.ca_file).parent):
        d.chmod(0o755)  # temporary directories are 0700; a site's /etc/ood is searchable
    return site


def _check(site: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(["config", "check", "--config", str(site)])
    captured = capsys.readouterr()
    return code, [line.removeprefix(f"{site}: ") for line in captured.err.splitlines()]


@root_only
def test_a_good_site_passes(tmp_path: Path, fake_kube: Any, capsys: pytest.CaptureFixture[str]) -> None:
    site = _site(tmp_path, fake_kube)
    assert _check(site, capsys) == (0, [])


@root_only
@pytest.mark.parametrize(("content", "expected"), [
    (None, "no such file or directory"),
    (b"garbage\n", "holds no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "is not a valid PEM certificate"),
])
def test_a_bad_ca_is_reported_naming_the_setting(tmp_path: Path, fake_kube: Any, capsys: pytest.CaptureFixture[str],
                                                 content: bytes | None, expected: str) -> None:
    ca = tmp_path / "bad-ca.pem"
    if content is not None:
        ca.write_bytes(content)
    site = _site(tmp_path, fake_kube, **{"cluster.certificate_authority": str(ca)})
    code, lines = _check(site, capsys)
    assert code == 78
    assert [line for line in lines if line.startswith("cluster.certificate_authority:")] != []
    assert expected in " ".join(lines)


def test_a_ca_students_cannot_read_is_reported(tmp_path: Path, fake_kube: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(fake_kube.ca_file).read_bytes())
    ca.chmod(0o600)
    assert any("cluster.certificate_authority" in p and "chmod o+r" in p
               for p in files._readable_by_users(str(ca), "cluster.certificate_authority"))


@root_only
def test_every_problem_at_once_and_nothing_written(tmp_path: Path, fake_kube: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    site = _site(tmp_path, fake_kube, **{"cluster.certificate_authority": str(tmp_path / "nope.pem"),
                                         "cluster.server": "https://kubernetes.example.edu:6443",
                                         "users.image_pull_secret": {"name": "pull", "dockerconfigjson": "{}"}})
    kc = Path(yaml.safe_load(site.read_text())["cluster"]["provisioner_kubeconfig"])
    kc.chmod(0o644)
    before = sorted(os.listdir(site.parent))
    code, lines = _check(site, capsys)
    assert code == 78
    keys = [line.split(":", 1)[0] for line in lines]
    assert keys == ["users.image_pull_secret.dockerconfigjson", "cluster.certificate_authority",
                    "cluster.provisioner_kubeconfig", "cluster.server"], lines
    assert sorted(os.listdir(site.parent)) == before  # no <file>.cache.json beside the draft or the kubeconfig


@root_only
def test_only_the_real_load_compiles(tmp_path: Path, fake_kube: Any) -> None:
    site = _site(tmp_path, fake_kube)
    site_problems(str(site))
    assert not Path(str(site) + config.CACHE_SUFFIX).exists()
    config.load(str(site))
    assert Path(str(site) + config.CACHE_SUFFIX).exists()


def test_duplicate_keys_are_refused_naming_the_key_and_line(tmp_path: Path) -> None:
    draft = tmp_path / "draft.yml"
    draft.write_text("cluster:\n  server: https://a.test:6443\n  retries: 2\n  server: https://b.test:6443\n")
    with pytest.raises(ConfigError, match=r"key 'server' appears twice \(lines 2 and 4\)"):
        config.load(str(draft))


def test_no_site_file_is_flagged_and_placeholders_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["config", "check"])
    err = capsys.readouterr().err
    assert code == 78
    assert "no site configuration at" in err
    assert "cluster.server: 'https://kubernetes.example.edu:6443' is the example's placeholder" in err
    assert "nfs.server" not in err  # a section this site does not use


def test_placeholders_of_unused_modes_are_not_named() -> None:
    cfg = config.Config()
    found = files.placeholder_problems(config.to_dict(cfg, redact=False), skip=files.unused_sections(cfg))
    assert [p.split(":")[0] for p in found] == [
        "cluster.server", "auth.cognito.user_pool_id", "auth.cognito.client_id", "auth.cognito.attributes.email",
        "storage.efs.file_system_id"]


# --- secrets: a root-only file the config names -------------------------------------------------------------


def test_secrets_come_from_the_secrets_file_for_root_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets.yml"
    secrets.write_text("users:\n  image_pull_secret:\n    dockerconfigjson: '{\"auths\": {}}'\n")
    secrets.chmod(0o600)
    site = tmp_path / "site.yml"
    site.write_text(f"secrets_file: {secrets}\nusers:\n  image_pull_secret:\n    name: pull\n")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert config.load(str(site)).users.image_pull_secret.dockerconfigjson == '{"auths": {}}'
    monkeypatch.setattr(os, "geteuid", lambda: 30001)  # a student's poll: never reads it, never fails
    secrets.chmod(0)
    assert config.load(str(site)).users.image_pull_secret.dockerconfigjson == ""


def test_a_secrets_file_may_hold_only_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets.yml"
    secrets.write_text("cluster:\n  server: https://evil.test\n")
    site = tmp_path / "site.yml"
    site.write_text(f"secrets_file: {secrets}\n")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(ConfigError, match=r"secrets_file: .* sets 'cluster.server', which is not a secret setting"):
        config.load(str(site))


@root_only
def test_config_check_refuses_a_secret_in_the_main_file_and_a_readable_secrets_file(
        tmp_path: Path, fake_kube: Any, capsys: pytest.CaptureFixture[str]) -> None:
    secrets = tmp_path / "etc-secrets.yml"
    secrets.write_text("users:\n  image_pull_secret:\n    dockerconfigjson: '{}'\n")
    secrets.chmod(0o644)
    site = _site(tmp_path, fake_kube, secrets_file=str(secrets))
    code, lines = _check(site, capsys)
    assert code == 78
    assert lines == [f"secrets_file: {secrets} is owner uid 0, mode 0644, expected root-only: chown root {secrets}; "
                     f"chmod 0600 {secrets}"]


def test_config_check_exit_codes_match_other_commands() -> None:
    res = subprocess.run([sys.executable, "-m", "ood_k8s", "config", "check", "--config", "-"], input="jobs: 3\n",
                         capture_output=True, text=True, check=False)
    assert res.returncode == 78 == ConfigError.exit_code


@pytest.mark.parametrize("content", [None, b"garbage\n"])
def test_the_hook_never_writes_a_bad_ca_into_a_kubeconfig(tmp_path: Path, content: bytes | None) -> None:
    from ood_k8s.core import names
    from ood_k8s.kubeconfig import user as userkubeconfig
    from tests.conftest import ALICE, replace

    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    cfg = replace(config.Config(), **{"cluster.certificate_authority": str(ca)})
    ident = ALICE._replace(home=str(tmp_path / "home"))
    with pytest.raises(ConfigError) as exc:
        userkubeconfig.write(cfg, ident, names.for_user(ident.username))
    assert str(exc.value).startswith(f"cluster.certificate_authority: {'cannot read ' if content is None else ''}{ca}")
    assert not (tmp_path / "home").exists()


def test_a_students_poll_prints_one_line_naming_the_ca_setting(tmp_path: Path) -> None:
    """The poll's client: a missing CA is a ConfigError (exit 78) naming the setting, not an internal error."""
    from ood_k8s.kubeconfig import clients
    from tests.conftest import replace

    cfg = replace(config.Config(), **{"cluster.certificate_authority": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError) as exc:
        clients.as_user(cfg, "alice")
    text = str(exc.value)
    assert "cluster.certificate_authority" in text and "\n" not in text and "FileNotFoundError" not in text
    assert exc.value.exit_code == 78

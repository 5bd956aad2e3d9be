"""The user's kubeconfig: whole-dict entries, merge, written as the user, symlinks refused."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from ood_k8s.config import Config
from ood_k8s.core import errors, names
from ood_k8s.core.identity import Identity
from ood_k8s.kubeconfig import user as userkubeconfig
from tests.conftest import ALICE, ROOT
from tests.fakekube import certs

CMD = "/opt/ood-k8s/bin/ood-k8s"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="writing as another user needs root")


@pytest.fixture
def home() -> Iterator[Identity]:
    """ALICE with a real home owned by her uid, in a directory her uid can traverse."""
    top = tempfile.mkdtemp(prefix="ood-k8s-home-")
    os.chmod(top, 0o711)  # noqa: S103 - traversable, not listable: alice's uid must reach her home
    path = os.path.join(top, "alice")
    os.mkdir(path, 0o700)
    if os.geteuid() == 0:
        os.chown(path, ALICE.uid, ALICE.gid)
        ident = ALICE._replace(home=path)
    else:
        ident = ALICE._replace(home=path, uid=os.getuid(), gid=os.getgid(), gids=())
    try:
        yield ident
    finally:
        shutil.rmtree(top)


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(certs.generate(str(tmp_path)).ca_file).read_bytes())  # a real one: the CA is checked
    os.chmod(ca, 0o600)  # root-only on the portal: the CA must be embedded, not referenced
    return make_config(**{"cluster.server": "https://k8s.example.edu:6443", "cluster.certificate_authority": str(ca),
                          "auth.credential_command": CMD, "users.token_cache_dir": "/var/lib/ood-k8s/tokens"})


def user_names(ident: Identity) -> names.UserNames:
    return names.for_user(ident.username)


def expected_entry(cfg: Config, ident: Identity) -> dict[str, Any]:
    ca = base64.b64encode(Path(cfg.cluster.certificate_authority).read_bytes()).decode()
    return {
        "cluster": {"server": "https://k8s.example.edu:6443", "certificate-authority-data": ca},
        "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": CMD,
            "args": ["credential", "--portal", "ood", "--cluster", "eks", "--user", ident.username,
                     "--cache-dir", "/var/lib/ood-k8s/tokens"],
            "interactiveMode": "Never",
            "provideClusterInfo": False,
        }},
        "context": {"cluster": "ood-eks", "user": "ood-eks", "namespace": "ood-alice"},
    }


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def kubeconfig_path(ident: Identity) -> str:
    return os.path.join(ident.home, ".kube", "config")


def user_file(ident: Identity, text: str) -> None:
    """Put a kubeconfig of the user's own in place (owned by them, as if they had written it)."""
    kube = os.path.dirname(kubeconfig_path(ident))
    os.makedirs(kube, mode=0o700, exist_ok=True)
    Path(kubeconfig_path(ident)).write_text(text)
    for p in (kube, kubeconfig_path(ident)):
        os.chown(p, ident.uid, ident.gid)


def test_pure_entries() -> None:
    assert userkubeconfig.cluster_entry("https://s", b"PEM", insecure=False) == {
        "server": "https://s", "certificate-authority-data": "UEVN"}
    assert userkubeconfig.cluster_entry("https://s", None, insecure=True) == {
        "server": "https://s", "insecure-skip-tls-verify": True}


def test_fresh_kubeconfig_whole_dict_modes_and_owner(cfg: Config, home: Identity) -> None:
    assert userkubeconfig.write(cfg, home, user_names(home)) is True
    e = expected_entry(cfg, home)
    path = kubeconfig_path(home)
    assert load(path) == {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "ood-eks", "cluster": e["cluster"]}],
        "users": [{"name": "ood-eks", "user": e["user"]}],
        "contexts": [{"name": "ood-eks", "context": e["context"]}],
        "current-context": "ood-eks",
    }
    kube_dir = os.path.dirname(path)
    assert stat.S_IMODE(os.lstat(kube_dir).st_mode) == 0o700 and stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert (os.lstat(path).st_uid, os.lstat(path).st_gid) == (home.uid, home.gid)
    assert (os.lstat(kube_dir).st_uid, os.lstat(kube_dir).st_gid) == (home.uid, home.gid)
    assert os.listdir(kube_dir) == ["config"]


def test_unchanged_content_is_not_rewritten(cfg: Config, home: Identity) -> None:
    userkubeconfig.write(cfg, home, user_names(home))
    before = os.stat(kubeconfig_path(home))
    assert userkubeconfig.write(cfg, home, user_names(home)) is False
    after = os.stat(kubeconfig_path(home))
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_other_clusters_are_preserved_and_ours_replaced(cfg: Config, home: Identity) -> None:
    theirs = {
        "apiVersion": "v1", "kind": "Config", "preferences": {"colors": True},
        "clusters": [{"name": "laptop", "cluster": {"server": "https://127.0.0.1:6443"}},
                     {"name": "ood-eks", "cluster": {"server": "https://stale"}}],
        "users": [{"name": "me", "user": {"token": "their-own-token"}}],
        "contexts": [{"name": "laptop", "context": {"cluster": "laptop", "user": "me"}}],
        "current-context": "laptop",
        "extensions": [{"name": "x", "extension": {"k": "v"}}],
    }
    user_file(home, yaml.safe_dump(theirs))
    assert userkubeconfig.write(cfg, home, user_names(home)) is True
    e = expected_entry(cfg, home)
    assert load(kubeconfig_path(home)) == {
        **theirs,
        "clusters": [theirs["clusters"][0], {"name": "ood-eks", "cluster": e["cluster"]}],
        "users": [theirs["users"][0], {"name": "ood-eks", "user": e["user"]}],
        "contexts": [theirs["contexts"][0], {"name": "ood-eks", "context": e["context"]}],
        "current-context": "ood-eks",
    }


def test_dev_and_prod_portals_get_separate_entries(cfg: Config, make_config, home: Identity) -> None:
    userkubeconfig.write(cfg, home, user_names(home))
    dev = make_config(**{**{f"cluster.{k}": getattr(cfg.cluster, k) for k in ("server", "certificate_authority")},
                         "auth.credential_command": CMD, "portal.name": "ood-dev"})
    userkubeconfig.write(dev, home, user_names(home))
    kc = load(kubeconfig_path(home))
    assert [c["name"] for c in kc["contexts"]] == ["ood-eks", "ood-dev-eks"] and kc["current-context"] == "ood-dev-eks"


def test_no_secret_in_the_file(cfg: Config, home: Identity) -> None:
    userkubeconfig.write(cfg, home, user_names(home))
    text = Path(kubeconfig_path(home)).read_text().replace(cfg.users.token_cache_dir, "")
    for word in ("token", "secret", "password", "refresh", "auth-provider"):
        assert word not in text.lower(), word


def test_symlinked_kubeconfig_is_refused_and_nothing_changes(cfg: Config, home: Identity, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious: true\n")
    kube = os.path.join(home.home, ".kube")
    os.mkdir(kube)
    os.symlink(victim, os.path.join(kube, "config"))
    with pytest.raises(errors.SecurityError, match="symbolic link") as exc:
        userkubeconfig.write(cfg, home, user_names(home))
    assert "\n" not in str(exc.value)
    assert victim.read_text() == "precious: true\n" and os.listdir(kube) == ["config"]
    assert os.path.islink(os.path.join(kube, "config"))


def test_symlinked_kube_directory_is_refused(cfg: Config, home: Identity, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, os.path.join(home.home, ".kube"))
    with pytest.raises(errors.SecurityError, match="symbolic link"):
        userkubeconfig.write(cfg, home, user_names(home))
    assert list(elsewhere.iterdir()) == []


def test_invalid_existing_kubeconfig_is_left_alone(cfg: Config, home: Identity) -> None:
    for junk in ("{{{ not yaml", "- a list\n- not a mapping\n"):
        user_file(home, junk)
        with pytest.raises(errors.UsageError, match="not a valid kubeconfig"):
            userkubeconfig.write(cfg, home, user_names(home))
        assert Path(kubeconfig_path(home)).read_text() == junk


@needs_root
def test_written_as_the_user_not_as_root(cfg: Config, home: Identity) -> None:
    # Root could write into a root-owned ~/.kube; the user cannot -- so neither may the hook.
    kube = os.path.join(home.home, ".kube")
    os.mkdir(kube, 0o755)
    with pytest.raises(errors.SecurityError, match="alice may not write") as exc:
        userkubeconfig.write(cfg, home, user_names(home))
    assert "\n" not in str(exc.value) and os.listdir(kube) == []


@needs_root
def test_a_root_identity_is_refused(cfg: Config, home: Identity) -> None:
    with pytest.raises(errors.SecurityError, match="uid 0"):
        userkubeconfig.write(cfg, home._replace(uid=0), user_names(home))


def test_missing_home_is_one_line(cfg: Config, home: Identity) -> None:
    gone = home._replace(home=home.home + "-missing")
    with pytest.raises(errors.UsageError, match=r"home directory .* does not exist"):
        userkubeconfig.write(cfg, gone, user_names(gone))
    assert not os.path.exists(gone.home)


@pytest.mark.parametrize("bad", ["../etc/kubeconfig", "/etc/kubeconfig", "", ".kube/../../x"])
def test_bad_kubeconfig_setting_is_refused(make_config, cfg: Config, home: Identity, bad: str) -> None:
    cfg.users.kubeconfig = bad
    with pytest.raises(errors.ConfigError, match=r"users\.kubeconfig"):
        userkubeconfig.write(cfg, home, user_names(home))
    assert os.listdir(home.home) == []


def test_nested_kubeconfig_path_is_created(cfg: Config, home: Identity) -> None:
    cfg.users.kubeconfig = "ood/kube/config.yaml"
    assert userkubeconfig.write(cfg, home, user_names(home)) is True
    assert stat.S_IMODE(os.lstat(os.path.join(home.home, "ood", "kube")).st_mode) == 0o700
    assert load(os.path.join(home.home, "ood/kube/config.yaml"))["current-context"] == "ood-eks"


def test_concurrent_writers_leave_a_valid_file(cfg: Config, home: Identity) -> None:
    failures: list[BaseException] = []

    def go() -> None:
        try:
            userkubeconfig.write(cfg, home, user_names(home))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert load(kubeconfig_path(home))["users"][0]["name"] == "ood-eks"
    assert os.listdir(os.path.dirname(kubeconfig_path(home))) == ["config"]


def test_cluster_from_admin_kubeconfig_when_no_server(make_config, home: Identity, fake_kube, tmp_path: Path) -> None:
    admin = fake_kube.write_kubeconfig(str(tmp_path / "admin.kubeconfig"))
    cfg = make_config(**{"cluster.server": "", "cluster.kubeconfig": admin, "auth.credential_command": CMD})
    userkubeconfig.write(cfg, home, user_names(home))
    cluster = load(kubeconfig_path(home))["clusters"][0]["cluster"]
    assert cluster == {"server": fake_kube.url,
                       "certificate-authority-data": base64.b64encode(Path(fake_kube.ca_file).read_bytes()).decode()}
    assert "test-token" not in Path(kubeconfig_path(home)).read_text()  # the admin's credentials stay out


def test_credential_command_discovery(make_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert userkubeconfig.credential_command(make_config(**{"auth.credential_command": CMD})) == CMD
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "ood-k8s"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(bindir / "python3"))
    assert userkubeconfig.credential_command(make_config()) == str(script)
    monkeypatch.setattr("sys.executable", "/nonexistent/python3")
    monkeypatch.setenv("PATH", str(bindir))
    assert userkubeconfig.credential_command(make_config()) == str(script)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(errors.ConfigError, match=r"auth\.credential_command"):
        userkubeconfig.credential_command(make_config())


def test_credential_command_must_be_named_ood_k8s() -> None:
    from ood_k8s import config

    with pytest.raises(errors.ConfigError, match="ending in /ood-k8s"):
        config.parse({"auth": {"credential_command": "/usr/bin/evil"}})


def test_our_file_is_json_which_kubectl_and_the_fast_path_read(cfg: Config, home: Identity) -> None:
    userkubeconfig.write(cfg, home, user_names(home))
    text = Path(kubeconfig_path(home)).read_text()
    assert json.loads(text) == load(kubeconfig_path(home))  # JSON, and the same value read as YAML


def test_a_yaml_kubeconfig_of_the_user_still_merges(cfg: Config, home: Identity) -> None:
    theirs = {"apiVersion": "v1", "kind": "Config", "current-context": "laptop",
              "clusters": [{"name": "laptop", "cluster": {"server": "https://127.0.0.1:6443"}}],
              "users": [{"name": "me", "user": {"token": "their-own-token"}}],
              "contexts": [{"name": "laptop", "context": {"cluster": "laptop", "user": "me"}}]}
    user_file(home, yaml.safe_dump(theirs, sort_keys=True))
    assert userkubeconfig.write(cfg, home, user_names(home)) is True
    e = expected_entry(cfg, home)
    assert json.loads(Path(kubeconfig_path(home)).read_text()) == {
        **theirs, "preferences": {},
        "clusters": [theirs["clusters"][0], {"name": "ood-eks", "cluster": e["cluster"]}],
        "users": [theirs["users"][0], {"name": "ood-eks", "user": e["user"]}],
        "contexts": [theirs["contexts"][0], {"name": "ood-eks", "context": e["context"]}],
        "current-context": "ood-eks",
    }
    before = os.stat(kubeconfig_path(home))
    assert userkubeconfig.write(cfg, home, user_names(home)) is False
    assert os.stat(kubeconfig_path(home)).st_mtime_ns == before.st_mtime_ns


def test_a_current_yaml_file_is_left_as_it_is(cfg: Config, home: Identity) -> None:
    # e.g. after 'kubectl config set-context': kubectl writes YAML, with its own key order
    userkubeconfig.write(cfg, home, user_names(home))
    text = yaml.safe_dump(json.loads(Path(kubeconfig_path(home)).read_text()), sort_keys=True)
    user_file(home, text)
    assert userkubeconfig.write(cfg, home, user_names(home)) is False
    assert Path(kubeconfig_path(home)).read_text() == text


def test_yaml_values_json_cannot_hold_are_kept(cfg: Config, home: Identity) -> None:
    # A date and an integer key: JSON would turn them into strings, so such a file is written as YAML.
    user_file(home, '{"apiVersion": "v1", "preferences": {"since": 2024-01-31, 7: "seven"}}\n')
    assert userkubeconfig.write(cfg, home, user_names(home)) is True
    assert load(kubeconfig_path(home))["preferences"] == {"since": datetime.date(2024, 1, 31), 7: "seven"}


def test_a_user_edited_json_kubeconfig_merges_as_json(cfg: Config, home: Identity) -> None:
    theirs = {"apiVersion": "v1", "kind": "Config", "preferences": {},
              "clusters": [{"name": "laptop", "cluster": {"server": "https://127.0.0.1:6443"}}]}
    user_file(home, json.dumps(theirs))
    assert userkubeconfig.write(cfg, home, user_names(home)) is True
    kc = json.loads(Path(kubeconfig_path(home)).read_text())
    assert kc["clusters"] == [theirs["clusters"][0],
                              {"name": "ood-eks", "cluster": expected_entry(cfg, home)["cluster"]}]


def test_an_unchanged_file_of_ours_is_compared_without_importing_yaml(cfg: Config, home: Identity) -> None:
    assert userkubeconfig.write(cfg, home, user_names(home)) is True
    before = os.stat(kubeconfig_path(home))
    code = (  # tests.conftest imports yaml: the configuration is rebuilt here by hand
        "import sys\n"
        "from ood_k8s import config, names\nfrom ood_k8s.kubeconfig import user as userkubeconfig\n"
        "from ood_k8s.config import replace\n"
        "from ood_k8s.core.identity import Identity\n"
        "c = config.Config()\n"
        f"cfg = replace(c, cluster=replace(c.cluster, server={cfg.cluster.server!r}, "
        f"certificate_authority={cfg.cluster.certificate_authority!r}), "
        f"auth=replace(c.auth, credential_command={CMD!r}), "
        f"users=replace(c.users, token_cache_dir={cfg.users.token_cache_dir!r}))\n"
        f"ident = Identity(**{home._asdict()!r})\n"
        "assert 'yaml' not in sys.modules, 'yaml imported before the call'\n"
        "changed = userkubeconfig.write(cfg, ident, names.for_user(ident.username))\n"
        "print(changed, 'yaml' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OOD_K8S_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
    assert os.stat(kubeconfig_path(home)).st_mtime_ns == before.st_mtime_ns

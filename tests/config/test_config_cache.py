"""The compiled cache of YAML files (config.read_yaml): used only when it is as trustworthy as the
file and holds exactly its text; written only by root for root-owned files; never more readable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ood_k8s import config
from ood_k8s.core.errors import ConfigError
from ood_k8s.kubeconfig import read as kubeconfig
from tests.conftest import ROOT

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the cache is written by root for root-owned files")

SITE = "cluster:\n  server: https://a.example.edu:6443\n"


def cache_of(path: Path) -> Path:
    return Path(str(path) + config.CACHE_SUFFIX)


def forge(path: Path, server: str) -> Path:
    """A cache claiming the file's current text but different data."""
    cache = cache_of(path)
    cache.write_text(json.dumps({"version": 1, "yaml": path.read_text(),
                                 "data": {"cluster": {"server": server}}}))
    cache.chmod(0o644)
    return cache


@root_only
def test_root_compiles_and_the_next_process_needs_no_yaml(tmp_path: Path) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text(SITE)
    site.chmod(0o640)
    os.chown(site, 0, 20001)
    assert config.load(str(site)).cluster.server == "https://a.example.edu:6443"
    cache = cache_of(site)
    st = cache.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 20001, 0o640)  # never more readable
    assert json.loads(cache.read_text()) == {"version": 1, "yaml": SITE, "checked": config.last_code_mark(),
                                             "data": {"cluster": {"server": "https://a.example.edu:6443"}}}
    code = ("import sys; from ood_k8s import config; cfg = config.load(sys.argv[1]); "
            "print(cfg.cluster.server, cfg.source, 'yaml' in sys.modules, 'decimal' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out == ["https://a.example.edu:6443", str(site), "False", "False"]


@root_only
def test_any_edit_is_seen_at_once(tmp_path: Path) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text(SITE)
    config.load(str(site))
    inode = site.stat().st_ino
    site.write_text(SITE.replace("a.example", "b.example"))  # same size, same inode, same instant
    assert site.stat().st_ino == inode
    assert config.load(str(site)).cluster.server == "https://b.example.edu:6443"
    assert "b.example" in cache_of(site).read_text()  # and root compiled the new text


@root_only
@pytest.mark.parametrize("spoil", ["other owner", "group writable", "world writable", "symlink", "garbage",
                                   "old version"])
def test_an_untrusted_or_unusable_cache_is_ignored(tmp_path: Path, spoil: str) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text(SITE)
    cache = forge(site, "https://evil.example.com")
    if spoil == "other owner":
        os.chown(cache, 20001, 20001)
    elif spoil == "group writable":
        cache.chmod(0o664)
    elif spoil == "world writable":
        cache.chmod(0o646)
    elif spoil == "symlink":
        target = tmp_path / "forged.json"
        cache.rename(target)
        cache.symlink_to(target)
    elif spoil == "garbage":
        cache.write_text("{not json")
    else:
        cache.write_text(cache.read_text().replace('"version": 1', '"version": 0'))
    assert config.load(str(site)).cluster.server == "https://a.example.edu:6443"
    if spoil == "symlink":
        assert cache.is_symlink()  # root does not write through it either


@root_only
def test_a_cache_checked_by_other_code_is_checked_again(tmp_path: Path) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text("jobs:\n  default_walltime: 60\n  max_walltime: 30\n")
    cache = cache_of(site)
    record = {"version": 1, "yaml": site.read_text(), "checked": "ood-k8s 0.0.1 (another version)",
              "data": {"jobs": {"default_walltime": 60, "max_walltime": 30}}}
    cache.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match=r"jobs.default_walltime: got 60, expected <= jobs.max_walltime"):
        config.load(str(site))
    record["checked"] = config.last_code_mark()  # what root writes once this code accepted the file
    cache.write_text(json.dumps(record))
    assert config.load(str(site)).jobs.max_walltime == 30


@root_only
def test_a_cache_of_the_files_owner_is_trusted_as_the_file(tmp_path: Path) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text(SITE)
    forge(site, "https://b.example.edu")
    assert config.load(str(site)).cluster.server == "https://b.example.edu"  # validated like the YAML
    forge(site, "ftp://b.example.edu")
    with pytest.raises(ConfigError, match=r"cluster.server: got 'ftp://b.example.edu', expected an http"):
        config.load(str(site))


@root_only
def test_only_root_compiles_only_root_owned_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text(SITE)
    os.chown(site, 20001, 20001)
    config.load(str(site))
    assert not cache_of(site).exists()
    os.chown(site, 0, 0)
    monkeypatch.setattr(os, "geteuid", lambda: 20001)
    config.load(str(site))
    assert not cache_of(site).exists()


@root_only
@pytest.mark.parametrize("value", [
    "{note: 2024-01-01}",  # a YAML timestamp: JSON has none
    "{nodeAffinity: {1: x}}",  # an int key JSON would turn into a string
])
def test_data_json_cannot_hold_is_not_compiled(tmp_path: Path, value: str) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text(f"jobs:\n  default_profile: cpu\nprofiles:\n- name: cpu\n  image: i\n  affinity: {value}\n")
    first = config.load(str(site)).profiles[0].affinity
    assert not cache_of(site).exists()
    assert config.load(str(site)).profiles[0].affinity == first


@root_only
def test_an_invalid_file_is_not_compiled(tmp_path: Path) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text("cluster:\n  servr: https://a.example.edu\n")
    with pytest.raises(ConfigError, match="did you mean 'server'"):
        config.load(str(site))
    assert not cache_of(site).exists()


@root_only
def test_a_read_only_directory_only_costs_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "ood_k8s.yml"
    site.write_text(SITE)

    def refuse(*args: object, **kw: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("ood_k8s.core.fsutil.atomic_write", refuse)
    assert config.load(str(site)).cluster.server == "https://a.example.edu:6443"
    assert not cache_of(site).exists()


def test_errors_read_the_same_through_the_cache(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yml: line 2 is not valid YAML"):
        config.load(str(bad))
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"portal:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError, match="is not valid YAML: it is not UTF-8 text"):
        config.load(str(latin))
    with pytest.raises(ConfigError, match=r"cannot read config .*missing.yml: No such file"):
        config.load(str(tmp_path / "missing.yml"))


@root_only
def test_the_provisioner_kubeconfig_is_compiled_and_stays_private(tmp_path: Path) -> None:
    path = tmp_path / "provisioner.kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                    "clusters: [{name: k, cluster: {server: 'https://k.example.edu'}}]\n"
                    "users: [{name: u, user: {token: secret-token}}]\n")
    path.chmod(0o600)
    first = kubeconfig.resolve(kubeconfig.read(str(path)), None, str(path))
    assert cache_of(path).stat().st_mode & 0o777 == 0o600
    again = kubeconfig.resolve(kubeconfig.read(str(path)), None, str(path))
    assert again == first and again.token == "secret-token"
    assert "secret-token" not in repr(again)

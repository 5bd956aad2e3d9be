"""``ood-k8s user sync --course C [--prune] [--dry-run]`` through NSS (nss_wrapper) against the fake API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ood_k8s.core import vocab
from ood_k8s.courses import roster

LABEL = vocab.COURSE_MEMBER_PREFIX + "intro"


def _site(tmp_path: Path, fake_kube: Any, courses: list[dict[str, Any]]) -> Path:
    provisioner = tmp_path / "provisioner.kubeconfig"
    fake_kube.write_kubeconfig(str(provisioner))
    config = tmp_path / "ood_k8s.yml"
    config.write_text(yaml.safe_dump({
        "cluster": {"provisioner_kubeconfig": str(provisioner), "server": fake_kube.url, "retries": 0},
        "auth": {"mode": "oidc", "oidc": {"issuer": "https://idp.example.edu", "client_id": "ood"}},
        "hook": {"lock_dir": str(tmp_path / "locks")}, "users": {"token_cache_dir": str(tmp_path / "tokens")},
        "storage": {"mode": "none", "create_home": False, "home_root": str(tmp_path / "home")},
        "courses": courses}))
    return config


def _sync(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ood_k8s", "--config", str(config), "user", "sync", *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _labelled(fake_kube: Any) -> list[str]:
    return sorted(n["metadata"]["name"] for n in fake_kube.list("namespaces")
                  if (n["metadata"].get("labels") or {}).get(LABEL) == "member"
                  and not n["metadata"].get("deletionTimestamp"))


def test_a_roster_is_provisioned_labelled_and_pruned_keeping_home_data(fake_kube: Any, nss_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    intro = {"name": "intro", "groups": ["students"], "profiles": ["cpu"]}
    config = _site(tmp_path, fake_kube, [intro])
    proc = _sync(config, nss_env, "--course", "intro")
    assert proc.returncode == 0, proc.stderr
    assert "2 users from course intro" in proc.stdout and proc.stdout.endswith(" s: 2 created\n")
    assert _labelled(fake_kube) == ["ood-alice", "ood-bob"]
    # bob drops the course: the roster is now gpu-users (alice only)
    config = _site(tmp_path, fake_kube, [{**intro, "groups": ["gpu-users"]}])
    fake_kube.reset_requests()
    proc = _sync(config, nss_env, "--course", "intro", "--prune", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "bob: would delete namespace ood-bob" in proc.stdout
    assert "prune intro: 1 former student would be removed (home data kept)" in proc.stdout
    assert [r for r in fake_kube.requests if r.method not in ("GET",) and "dryRun" not in r.query] == []
    proc = _sync(config, nss_env, "--course", "intro", "--prune", "--force")  # re-apply: the label stays
    assert proc.returncode == 0, proc.stderr
    assert "bob: deleted namespace ood-bob" in proc.stdout and "prune intro: 1 former student removed" in proc.stdout
    assert fake_kube.get("namespaces", "ood-bob")["status"]["phase"] == "Terminating"
    assert _labelled(fake_kube) == ["ood-alice"]


def test_a_student_still_in_another_course_is_kept(fake_kube: Any, nss_env: dict[str, str], tmp_path: Path) -> None:
    intro = {"name": "intro", "groups": ["students"], "profiles": ["cpu"]}
    config = _site(tmp_path, fake_kube, [intro])
    assert _sync(config, nss_env, "--course", "intro").returncode == 0
    other = {"name": "lab", "groups": ["students"], "profiles": ["cpu"]}
    config = _site(tmp_path, fake_kube, [{**intro, "groups": ["gpu-users"]}, other])
    proc = _sync(config, nss_env, "--course", "intro", "--prune")
    assert proc.returncode == 0, proc.stderr
    assert "prune intro: 0 former students removed" in proc.stdout
    assert fake_kube.get("namespaces", "ood-bob")["status"].get("phase") != "Terminating"


def test_unknown_course_and_prune_without_a_course(fake_kube: Any, nss_env: dict[str, str], tmp_path: Path) -> None:
    config = _site(tmp_path, fake_kube, [])
    proc = _sync(config, nss_env, "--course", "nope")
    assert proc.returncode == 2 and proc.stderr == ("ood-k8s: unknown course 'nope': courses in the site "
                                                    "configuration: none configured\n")
    proc = _sync(config, nss_env, "--group", "students", "--prune")
    assert proc.returncode == 2 and "--prune needs --course" in proc.stderr


def test_to_prune_keeps_the_roster_and_other_courses() -> None:
    assert roster.to_prune(["a", "b", "c", "d"], ["a"], {"c"}) == ["b", "d"]

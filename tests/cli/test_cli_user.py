"""``ood-k8s user setup|teardown|list|sync`` against the fake API (in-process, and once via NSS)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s import cli
from ood_k8s.cli import user as cli_user
from ood_k8s.core.identity import Identity
from ood_k8s.users import provision
from tests.conftest import ALICE, BOB

USERS = {u.username: u for u in (ALICE, BOB)}
USERS.update({f"u{i:02d}": Identity(f"u{i:02d}", 21000 + i, 21000 + i, f"/home/u{i:02d}", (f"u{i:02d}",))
              for i in range(30)})
USERS["svc"] = Identity("svc", 999, 999, "/var/svc")


@pytest.fixture
def site(tmp_path: Path, fake_kube: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    provisioner = tmp_path / "provisioner.kubeconfig"
    fake_kube.write_kubeconfig(str(provisioner))
    config = tmp_path / "ood_k8s.yml"
    config.write_text(yaml.safe_dump({
        # no retries: a failure injected by a test must not cost real backoff sleeps
        "cluster": {"server": fake_kube.url, "provisioner_kubeconfig": str(provisioner), "retries": 0},
        "auth": {"mode": "oidc", "oidc": {"issuer": "https://idp.example.edu", "client_id": "ood"}},
        "hook": {"lock_dir": str(tmp_path / "locks")},
        "users": {"token_cache_dir": str(tmp_path / "tokens")},
        # The users' homes (/home/...) are not the point here: never create them on this machine.
        "storage": {"mode": "none", "create_home": False, "home_root": str(tmp_path / "home")},
    }))

    def lookup(username: str) -> Identity:
        from ood_k8s.core.errors import UsageError

        if username not in USERS:
            raise UsageError(f"user '{username}' is not known to this host (NSS)")
        return USERS[username]

    monkeypatch.setattr(provision.identity_mod, "lookup", lookup)
    return {"config": str(config), "tmp": tmp_path}


def run(site: dict[str, Any], *args: str, capsys: Any) -> tuple[int, str, str]:
    code = cli.main(["--config", site["config"], "user", *args])
    out, err = capsys.readouterr()
    return code, out, err


def writes(fk: Any) -> list[str]:
    return [f"{r.method} {r.path}" for r in fk.requests if r.method != "GET" and "dryRun" not in r.query]


# --- setup -----------------------------------------------------------------------------------------


def test_setup_then_again(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    code, out, err = run(site, "setup", "alice", "bob", capsys=capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "alice: created (namespace ood-alice, 8 API requests)"
    assert "bob: created (namespace ood-bob, 8 API requests)" in out
    assert fake_kube.get("rolebindings", "ood-k8s-user", "ood-bob")["subjects"][0]["name"] == "ood:bob"
    fake_kube.reset_requests()
    code, out, err = run(site, "setup", "alice", "bob", "alice", capsys=capsys)
    assert (code, out, err) == (0, "alice: current (namespace ood-alice, 1 API request)\n"
                                   "bob: current (namespace ood-bob, 1 API request)\n", "")
    assert len(fake_kube.requests) == 2
    code, out, _ = run(site, "setup", "--force", "alice", capsys=capsys)
    assert code == 0 and out.startswith("alice: updated")


def test_setup_dry_run_changes_nothing(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    code, out, err = run(site, "setup", "--dry-run", "alice", capsys=capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == ["alice: would-create (namespace ood-alice, 1 API request)",
                                    "  create Namespace/ood-alice", "  create LimitRange/ood-k8s-limits"]
    assert writes(fake_kube) == []
    assert fake_kube.get("namespaces", "ood-alice") is None


def test_setup_reports_each_failure_and_goes_on(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    code, out, err = run(site, "setup", "../etc", "svc", "nobody-here", "alice", capsys=capsys)
    assert code == 1
    assert out.startswith("alice: created")
    assert err.splitlines() == [
        "../etc: FAILED: username '../etc' is not a valid portal username: use letters, digits, '_', '-', '.', '@' "
        "only (no '/', '..', spaces, control or non-ASCII characters, no leading '-' or '.')",
        "svc: FAILED: user 'svc' has uid 999, below users.min_uid (1000): system accounts get no namespace; "
        "lower users.min_uid if this is a real user",
        "nobody-here: FAILED: user 'nobody-here' is not known to this host (NSS)",
    ]


# --- sync --------------------------------------------------------------------------------------------


def test_sync_a_file_twice(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    roster = site["tmp"] / "class.csv"
    roster.write_text("# CS 101, spring\n" + "".join(f"u{i:02d},Student {i}\n" for i in range(30)) +
                      "\nu00  # listed twice\n")
    code, out, err = run(site, "sync", "--file", str(roster), "--jobs", "4", capsys=capsys)
    assert (code, err) == (0, "")  # stderr is not a terminal: no progress bar
    assert out.startswith(f"30 users from {roster} in ") and out.endswith(" s: 30 created\n")
    assert all(fake_kube.get("namespaces", f"ood-u{i:02d}") is not None for i in range(30))
    fake_kube.reset_requests()
    code, out, _ = run(site, "sync", "--file", str(roster), capsys=capsys)
    assert code == 0 and out.endswith(" s: 30 already current\n")
    assert len(fake_kube.requests) == 30  # one per user


def test_sync_failures_are_summarised_and_the_rest_go_on(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    roster = site["tmp"] / "class.txt"
    roster.write_text("u01\nu02\nsvc\nu03\nBad/Name\n")
    fake_kube.inject(status=500, retry_after=None, count=1000, path_contains="/namespaces/ood-u02")
    code, out, _ = run(site, "sync", "--file", str(roster), capsys=capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith(" s: 2 created, 3 failed")
    assert lines[1].startswith("  u02: the Kubernetes API answered 500")
    assert lines[2].startswith("  svc: user 'svc' has uid 999")
    assert lines[3].startswith("  Bad/Name: username 'Bad/Name' is not a valid portal username")
    assert fake_kube.get("namespaces", "ood-u01") and fake_kube.get("namespaces", "ood-u03")
    fake_kube._injections.clear()
    code, out, _ = run(site, "sync", "--file", str(roster), capsys=capsys)
    assert out.splitlines()[0].endswith(" s: 1 created, 2 already current, 2 failed")


def test_sync_dry_run_shows_who_would_change(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    run(site, "setup", "alice", capsys=capsys)
    roster = site["tmp"] / "users"
    roster.write_text("alice\nbob\n")
    fake_kube.reset_requests()
    code, out, _ = run(site, "sync", "--dry-run", "--file", str(roster), capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("bob: would-create: create Namespace/ood-bob; create LimitRange/ood-k8s-limits")
    assert lines[1].endswith(" s: 1 already current, 1 would-create")
    assert writes(fake_kube) == []


def test_sync_a_group_through_nss(fake_kube: Any, nss_env: dict[str, str], tmp_path: Path) -> None:
    provisioner = tmp_path / "provisioner.kubeconfig"
    fake_kube.write_kubeconfig(str(provisioner))
    config = tmp_path / "ood_k8s.yml"
    config.write_text(yaml.safe_dump({
        "cluster": {"provisioner_kubeconfig": str(provisioner), "server": fake_kube.url},
        "auth": {"mode": "oidc", "oidc": {"issuer": "https://idp.example.edu", "client_id": "ood"}},
        "hook": {"lock_dir": str(tmp_path / "locks")}, "users": {"token_cache_dir": str(tmp_path / "tokens")},
        "storage": {"mode": "none", "create_home": False, "home_root": str(tmp_path / "home")}}))
    proc = subprocess.run([sys.executable, "-m", "ood_k8s", "--config", str(config), "user", "sync", "--group",
                           "students"], env=nss_env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith(" s: 2 created\n") and "2 users from students" in proc.stdout
    assert fake_kube.get("namespaces", "ood-alice") and fake_kube.get("namespaces", "ood-bob")
    proc = subprocess.run([sys.executable, "-m", "ood_k8s", "--config", str(config), "user", "sync", "--group",
                           "no-such-group"], env=nss_env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr == "ood-k8s: group 'no-such-group' is not known to this host (NSS): check the name, or " \
                          "that LDAP/SSSD answers on this machine\n"


def test_sync_needs_exactly_one_source(site: dict[str, Any], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--config", site["config"], "user", "sync"])
    assert exc.value.code == 2
    code, _, err = run(site, "sync", "--file", str(site["tmp"] / "missing"), capsys=capsys)
    assert code == 2 and "cannot read" in err


# --- list ---------------------------------------------------------------------------------------------


def test_list(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    run(site, "setup", "alice", "bob", capsys=capsys)
    labels = {"app.kubernetes.io/managed-by": "ood-k8s", "ood-k8s.io/user": "alice"}
    for name, gpus, phase in (("jupyter-aaaa1111", "2", "Running"), ("jupyter-bbbb2222", "1", "Succeeded"),
                              ("rstudio-cccc3333", None, "Pending")):
        limits = {"cpu": "1", "memory": "1Gi", **({"nvidia.com/gpu": gpus} if gpus else {})}
        fake_kube.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "ood-alice", "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "jupyter", "resources": {"limits": limits}}]}})
        fake_kube.set_pod_status("ood-alice", name, phase=phase)
    fake_kube.reset_requests()
    code, out, _ = run(site, "list", "-o", "json", capsys=capsys)
    assert code == 0
    rows = json.loads(out)
    assert [(r["user"], r["namespace"], r["state"], r["cognito"], r["sessions"], r["gpus"]) for r in rows] == [
        ("alice", "ood-alice", "ready", "-", 2, 2), ("bob", "ood-bob", "ready", "-", 0, 0)]
    assert rows[0]["last_hook_run"].endswith("Z")
    assert len(fake_kube.requests) == 2  # namespaces and pods, one request each
    code, out, _ = run(site, "list", capsys=capsys)
    assert out.splitlines()[0].split() == ["USER", "NAMESPACE", "STATE", "COGNITO", "SESSIONS", "GPUS", "LAST",
                                           "HOOK", "RUN"]
    assert out.splitlines()[1].split()[:6] == ["alice", "ood-alice", "ready", "-", "2", "2"]


def test_user_rows_marks_incomplete_and_deleting(make_config: Any) -> None:
    def ns(name: str, annotations: dict[str, str], **extra: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "annotations": annotations, "labels": {"ood-k8s.io/user": name[4:]},
                             **extra}}

    rows = cli_user.user_rows(make_config(), [
        ns("ood-carol", {"ood-k8s.io/username": "carol"}),
        ns("ood-dave", {"ood-k8s.io/username": "dave", "ood-k8s.io/desired-state": "sha256:x"},
           deletionTimestamp="2025-01-01T00:00:00Z"),
        ns("ood-erin", {})], [])
    assert [(r["user"], r["state"], r["last_hook_run"]) for r in rows] == [
        ("carol", "incomplete", "never"), ("dave", "deleting", "never"), ("erin", "incomplete", "never")]


# --- teardown -----------------------------------------------------------------------------------------


def test_teardown(site: dict[str, Any], fake_kube: Any, capsys: Any) -> None:
    from ood_k8s.auth.tokencache import TokenCache, Tokens

    run(site, "setup", "alice", capsys=capsys)
    cache = TokenCache(str(site["tmp"] / "tokens"), "alice")
    cache.write(Tokens("id", 2e9, "refresh", 2e9, "oidc", "https://idp.example.edu", "ood", ""))
    fake_kube.reset_requests()
    code, out, _ = run(site, "teardown", "--dry-run", "alice", capsys=capsys)
    assert code == 0
    assert out == ("alice:\n  would delete namespace ood-alice and everything in it (0 running sessions would end)\n"
                   f"  would delete the token cache {cache.user_dir}\n")
    assert writes(fake_kube) == [] and cache.read() is not None
    code, out, _ = run(site, "teardown", "alice", capsys=capsys)
    assert (code, out) == (0, f"alice:\n  deleted namespace ood-alice\n  deleted the token cache {cache.user_dir}\n"
                              "  nothing to remove: storage.mode is none\n")
    assert fake_kube.get("namespaces", "ood-alice")["status"]["phase"] == "Terminating"
    assert not Path(cache.user_dir).exists() and (site["tmp"] / "tokens").is_dir()
    code, out, _ = run(site, "teardown", "alice", capsys=capsys)  # again (still Terminating): no tokens to delete
    assert (code, out) == (0, "alice:\n  deleted namespace ood-alice\n  nothing to remove: storage.mode is none\n")
    code, _, err = run(site, "teardown", "--delete-cognito-user", "bob", capsys=capsys)
    assert code == 1 and "--delete-cognito-user needs auth.mode: cognito" in err


# --- helpers ------------------------------------------------------------------------------------------


def test_format_table_escapes_hostile_text() -> None:
    table = cli_user.format_table([("USER", "user")], [{"user": "evil\x1b[2J\nname"}])
    assert table == "USER\nevil\\x1b[2J\\nname"


def test_cognito_side_of_setup_list_and_teardown(site: dict[str, Any], fake_kube: Any, aws: str,
                                                  capsys: Any) -> None:
    import boto3

    idp = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=aws)
    pool = idp.create_user_pool(PoolName="ood")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool, ClientName="ood-k8s")["UserPoolClient"]["ClientId"]
    data = yaml.safe_load(Path(site["config"]).read_text())
    data["auth"] = {"mode": "cognito", "cognito": {"user_pool_id": pool, "client_id": client_id,
                                                   "endpoint_url": aws, "group_map": {"gpu-users": "gpu"}}}
    Path(site["config"]).write_text(yaml.safe_dump(data))
    code, out, _ = run(site, "setup", "--dry-run", "alice", capsys=capsys)
    assert code == 0 and "  Cognito: would create Cognito user alice" in out  # issue 13: not "created"
    assert idp.list_users(UserPoolId=pool)["Users"] == []
    code, out, err = run(site, "setup", "alice", "bob", capsys=capsys)
    assert code == 0, err
    assert "  Cognito: added alice to Cognito group gpu" in out
    code, out, _ = run(site, "list", "-o", "json", capsys=capsys)
    assert {r["user"]: r["cognito"] for r in json.loads(out)} == {"alice": "FORCE_CHANGE_PASSWORD",
                                                                 "bob": "FORCE_CHANGE_PASSWORD"}
    code, out, _ = run(site, "teardown", "--delete-cognito-user", "bob", capsys=capsys)
    assert code == 0 and out.endswith("  deleted Cognito user bob\n")
    code, out, _ = run(site, "list", "-o", "json", capsys=capsys)
    rows = {r["user"]: r for r in json.loads(out)}
    assert (rows["bob"]["state"], rows["bob"]["cognito"]) == ("deleting", "missing")

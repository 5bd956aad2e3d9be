"""The per-login hook as OOD runs it: a root process with --user and OOD_ exports, against the fake
API (HTTPS), moto's Cognito and EFS, real NSS lookups (nss_wrapper) and the real kubectl."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ood_k8s.config import Config
from ood_k8s.core.errors import Unavailable
from ood_k8s.users import hook, provision
from tests.conftest import ROOT, TEST_USERS

LAUNCHER = ROOT / "hooks" / "k8s-bootstrap" / "ood-k8s-pre-hook"
ID_TOKEN = "eyJraWQiOiJ0ZXN0In0.eyJzdWIiOiJzZWNyZXQtcG9ydGFsLXRva2VuIn0.c2lnbmF0dXJlLXNlY3JldA"
EXPORTS = {"OOD_OIDC_ACCESS_TOKEN": "opaque-portal-access-token-0123456789",
           "OOD_OIDC_REFRESH_TOKEN": "portal-refresh-token-abcdefghijklmnop", "OOD_OIDC_ID_TOKEN": ID_TOKEN}


class CountingProxy:
    """A loopback HTTP forwarder in front of moto that records every AWS call (to count them)."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.calls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.calls.append(self.headers.get("X-Amz-Target") or f"{self.command} {self.path}")
                conn = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Portal:
    """A portal host in a box: config file, NSS users with homes, AWS and Kubernetes endpoints."""

    base: Path
    config: Path
    env: dict[str, str]
    fk: Any
    aws: CountingProxy
    moto: str
    pool_id: str
    client_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    def home(self, user: str) -> Path:
        return self.base / "home" / user

    def run(self, user: str, *args: str, env: dict[str, str] | None = None, launcher: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(LAUNCHER)] if launcher else [sys.executable, "-m", "ood_k8s.users.hook"]
        e = {**self.env, **EXPORTS, **(env or {})}
        return subprocess.run([*cmd, "--user", user, *args], env=e, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def load(self) -> Config:
        from ood_k8s import config

        return config.load(str(self.config))

    def write_config(self, **changes: Any) -> None:
        data = yaml.safe_load(self.config.read_text())
        for dotted, value in changes.items():
            node = data
            *parents, last = dotted.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[last] = value
        self.config.write_text(yaml.safe_dump(data))


@pytest.fixture
def portal(fake_kube: Any, aws: str, nss_env: dict[str, str]) -> Iterator[Portal]:
    import boto3

    # Homes and caches must be reachable by the test users, so not under pytest's 0700 tmp dir.
    base = Path(tempfile.mkdtemp(prefix="ood-k8s-hook-"))
    base.chmod(0o755)
    try:
        (base / "home").mkdir(mode=0o755)
        (base / "skel").mkdir()
        (base / "bin").mkdir()
        plugin = base / "bin" / "ood-k8s"
        plugin.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m ood_k8s "$@"\n')
        plugin.chmod(0o755)
        users = [*TEST_USERS]
        passwd = Path(nss_env["NSS_WRAPPER_PASSWD"])
        passwd.write_text("root:x:0:0:root:/root:/bin/bash\nsvc:x:999:999:svc:/var/svc:/bin/false\n" + "".join(
            f"{u.username}:x:{u.uid}:{u.gid}:{u.username}:{base / 'home' / u.username}:/bin/bash\n" for u in users))
        with CountingProxy(aws) as proxy:
            idp = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=aws)
            pool = idp.create_user_pool(PoolName="ood")["UserPool"]["Id"]
            client_id = idp.create_user_pool_client(
                UserPoolId=pool, ClientName="ood-k8s", GenerateSecret=False,
                ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            )["UserPoolClient"]["ClientId"]
            fs = boto3.client("efs", region_name="us-east-1", endpoint_url=aws).create_file_system(
                CreationToken="homes")["FileSystemId"]
            provisioner = base / "provisioner.kubeconfig"
            fake_kube.write_kubeconfig(str(provisioner))
            cfg = {
                "cluster": {"server": fake_kube.url, "certificate_authority": fake_kube.ca_file,
                            "provisioner_kubeconfig": str(provisioner)},
                "users": {"token_cache_dir": str(base / "tokens")},
                "auth": {"mode": "cognito", "credential_command": str(plugin),
                         "cognito": {"region": "us-east-1", "user_pool_id": pool, "client_id": client_id,
                                     "endpoint_url": proxy.url, "group_map": {"gpu-users": "gpu"}}},
                "hook": {"lock_dir": str(base / "locks"), "syslog_ident": "ood-k8s-hook-test"},
                "storage": {"mode": "efs", "home_root": str(base / "home"), "skeleton_dir": str(base / "skel"),
                            "efs": {"file_system_id": fs, "region": "us-east-1", "endpoint_url": proxy.url}},
                "templates": {"site_dir": str(base / "site")},
            }
            config = base / "ood_k8s.yml"
            config.write_text(yaml.safe_dump(cfg))
            env = {**nss_env, "OOD_K8S_CONFIG": str(config), "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
            yield Portal(base, config, env, fake_kube, proxy, aws, pool, client_id)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stderr.strip().splitlines()


def assert_no_secret(text: str) -> None:
    for value in EXPORTS.values():
        assert value not in text
    assert "eyJ" not in text  # no JWT-shaped string at all (Cognito's ID and refresh tokens)


# --- first and second login --------------------------------------------------------------------------


def test_first_login_fast_path_kubectl_and_a_config_change(portal: Portal) -> None:
    import boto3
    import jwt

    # 1. first login: everything is provisioned
    proc = portal.run("alice")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    (line,) = lines(proc)
    assert line.startswith("ood-k8s-hook-test: notice: user 'alice': namespace ood-alice created (")
    assert "credentials minted; kubeconfig written" in line
    assert_no_secret(proc.stderr)
    fk = portal.fk
    for plural, name in (("resourcequotas", "ood-k8s-quota"), ("limitranges", "ood-k8s-limits"),
                         ("networkpolicies", "ood-k8s-ingress"), ("networkpolicies", "ood-k8s-egress"),
                         ("rolebindings", "ood-k8s-user"), ("persistentvolumeclaims", "home")):
        assert fk.get(plural, name, "ood-alice") is not None, (plural, name)
    ns = fk.get("namespaces", "ood-alice")["metadata"]
    access_point = ns["annotations"]["ood-k8s.io/efs-access-point"]
    assert access_point.startswith("fsap-")
    assert ns["annotations"]["ood-k8s.io/desired-state"].startswith("sha256:")
    assert len(fk.requests) <= 12, [f"{r.method} {r.path}" for r in fk.requests]
    idp = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=portal.moto)
    assert idp.admin_get_user(UserPoolId=portal.pool_id, Username="alice")["Enabled"]
    groups = idp.admin_list_groups_for_user(UserPoolId=portal.pool_id, Username="alice")["Groups"]
    assert [g["GroupName"] for g in groups] == ["gpu"]
    home = portal.home("alice")
    assert (home.stat().st_uid, stat.S_IMODE(home.stat().st_mode)) == (20001, 0o700)
    kc_path = home / ".kube" / "config"
    st = kc_path.lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (20001, 20001, 0o600)
    kc = yaml.safe_load(kc_path.read_text())
    assert kc["current-context"] == "ood-eks"
    assert kc["contexts"][0]["context"]["namespace"] == "ood-alice"
    assert kc["users"][0]["user"]["exec"]["args"][:2] == ["credential", "--portal"]
    assert "eyJ" not in kc_path.read_text()

    # 2. second login: one API request, no AWS call at all, nothing written
    fk.reset_requests()
    aws_before = len(portal.aws.calls)
    before = kc_path.stat().st_mtime_ns
    proc = portal.run("alice")
    assert proc.returncode == 0, proc.stderr
    (line,) = lines(proc)
    assert "namespace ood-alice current (1 API request); credentials cached; kubeconfig unchanged" in line
    assert [(r.method, r.path) for r in fk.requests] == [("PATCH", "/api/v1/namespaces/ood-alice")]
    assert portal.aws.calls[aws_before:] == []
    assert kc_path.stat().st_mtime_ns == before

    # 3. the real kubectl, given the written kubeconfig, sends the ID token, which verifies against
    #    moto's JWKS with aud = the app client id
    jwks = jwt.PyJWKClient(f"{portal.moto}/{portal.pool_id}/.well-known/jwks.json")
    seen: list[dict[str, Any]] = []

    def authenticate(token: str) -> str | None:
        try:
            key = jwks.get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=portal.client_id,
                                options={"verify_iss": False})
        except jwt.PyJWTError:
            return None
        seen.append(claims)
        return "ood:" + claims["cognito:username"]

    fk.authenticate = authenticate
    fk.authorize = lambda user, verb, resource, ns: user == "ood:alice" and ns == "ood-alice"
    env = {**portal.env, "KUBECONFIG": str(kc_path), "HOME": str(portal.base / "kubectl-home")}  # its cache
    env.pop("LD_PRELOAD")
    proc = subprocess.run(["kubectl", "get", "resourcequota", "-o", "name"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "resourcequota/ood-k8s-quota"
    assert seen and seen[0]["token_use"] == "id" and seen[0]["aud"] == portal.client_id
    fk.authenticate = lambda token: "admin" if token == fk.token else None
    fk.authorize = lambda user, verb, resource, ns: True

    # 4. a changed site setting re-provisions once, keeping the access point; then fast again,
    #    through a symlinked launcher and through python -m
    portal.write_config(**{"users.quota": {"pods": 7}})
    proc = portal.run("alice", launcher=False)
    assert proc.returncode == 0 and "namespace ood-alice updated" in proc.stderr, proc.stderr
    assert fk.get("resourcequotas", "ood-k8s-quota", "ood-alice")["spec"]["hard"]["pods"] == "7"
    assert fk.get("namespaces", "ood-alice")["metadata"]["annotations"]["ood-k8s.io/efs-access-point"] == access_point
    link = portal.base / "bin" / "pre-hook"
    link.symlink_to(LAUNCHER)
    proc = subprocess.run([str(link), "--user", "alice"], env={**portal.env, **EXPORTS}, capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 0 and " current (1 API request)" in proc.stderr, proc.stderr


def test_two_hooks_for_one_user_at_once(portal: Portal) -> None:
    env = {**portal.env, **EXPORTS}
    procs = [subprocess.Popen([str(LAUNCHER), "--user", "alice"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted("created" if " created (" in err else "current" if " current (" in err else err for _, err in outs)
    assert said == ["created", "current"]
    import boto3

    efs = boto3.client("efs", region_name="us-east-1", endpoint_url=portal.moto)
    assert len(efs.describe_access_points()["AccessPoints"]) == 1  # not one per hook


# --- bad input: refused, nothing changed --------------------------------------------------------------


@pytest.fixture
def inproc(tmp_path: Path, fake_kube: Any) -> dict[str, Any]:
    """A config file for hook.main() in this process (the real /etc/passwd: root, no test users)."""
    provisioner = tmp_path / "provisioner.kubeconfig"
    fake_kube.write_kubeconfig(str(provisioner))
    config = tmp_path / "ood_k8s.yml"
    config.write_text(yaml.safe_dump({
        "cluster": {"server": fake_kube.url, "provisioner_kubeconfig": str(provisioner)},
        "users": {"token_cache_dir": str(tmp_path / "tokens")},
        "hook": {"lock_dir": str(tmp_path / "locks")},
        "storage": {"mode": "none", "home_root": str(tmp_path / "home")}}))
    return {"config": str(config), "base": tmp_path}


BAD_USERNAMES = ["..", "../alice", "a/b", "/etc", "ALICE", "Alice", "alice@example.edu", ".", "@", ".alice",
                 "alicé", "ａlice", "a" * 100, "alice\nroot", "alice\x1b[31m", "al ice", "", "carol", "root",
                 "daemon"]


@pytest.mark.parametrize("username", BAD_USERNAMES)
def test_bad_usernames_are_refused_and_nothing_changes(inproc: dict[str, Any], fake_kube: Any, username: str) -> None:
    fake_kube.reset_requests()
    sink: list[tuple[int, str]] = []
    err = io.StringIO()
    code = hook.main(["--user", username, "--config", inproc["config"]], environ=EXPORTS,
                     syslog=lambda p, m: sink.append((p, m)), stderr=err)
    assert code == 2, err.getvalue()
    ((priority, line),) = sink
    assert priority == 4 and line.startswith("user '") and " refused: " in line
    assert err.getvalue() == f"ood-k8s-hook: warning: {line}\n"
    assert "\x1b" not in line and "\n" not in line
    assert fake_kube.requests == []
    # no lock, home or token cache: only the site's files (and the config loader's parse cache, if any)
    made = {p.name for p in inproc["base"].iterdir()} - {"ood_k8s.yml.cache.json"}
    assert sorted(made) == ["ood_k8s.yml", "provisioner.kubeconfig"]


def test_a_bad_username_through_the_launcher(portal: Portal) -> None:
    for username in ("../alice", "-alice"):
        proc = portal.run(username)
        assert proc.returncode == 2, proc.stderr
        (line,) = lines(proc)
        assert " refused: " in line or "bad arguments" in line
    assert portal.fk.requests == [] and portal.aws.calls == []
    assert os.listdir(portal.base / "home") == []
    assert not (portal.base / "tokens").exists() and not (portal.base / "locks").exists()


def test_a_user_outside_the_allowed_groups_is_refused(portal: Portal) -> None:
    portal.write_config(**{"users.allowed_groups": ["gpu-users"]})
    proc = portal.run("bob")
    assert proc.returncode == 2 and "none of users.allowed_groups" in proc.stderr
    assert portal.fk.get("namespaces", "ood-bob") is None and portal.aws.calls == []


def test_missing_user_argument_and_bad_config(portal: Portal) -> None:
    proc = subprocess.run([str(LAUNCHER)], env=portal.env, capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "bad arguments" in proc.stderr
    portal.config.write_text("users:\n  quota:\n    pods: many\n")
    proc = portal.run("alice")
    assert proc.returncode == 78 and "users.quota.pods" in proc.stderr
    assert len(lines(proc)) == 1


def test_a_symlinked_kubeconfig_is_refused(portal: Portal) -> None:
    home = portal.home("alice")
    (home / ".kube").mkdir(parents=True)
    shutil.chown(home, 20001, 20001)
    shutil.chown(home / ".kube", 20001, 20001)
    home.chmod(0o700)
    target = portal.base / "victim"
    target.write_text("precious\n")
    (home / ".kube" / "config").symlink_to(target)
    proc = portal.run("alice")
    assert proc.returncode == 77, proc.stderr
    assert "symbolic link" in proc.stderr
    assert target.read_text() == "precious\n"
    assert (home / ".kube" / "config").is_symlink()


def test_existing_kubeconfig_keeps_other_clusters(portal: Portal) -> None:
    home = portal.home("alice")
    (home / ".kube").mkdir(parents=True)
    other = {"apiVersion": "v1", "kind": "Config", "current-context": "hpc",
             "clusters": [{"name": "hpc", "cluster": {"server": "https://hpc.example.edu"}}],
             "users": [{"name": "hpc", "user": {"token": "hpc-token"}}],
             "contexts": [{"name": "hpc", "context": {"cluster": "hpc", "user": "hpc"}}]}
    (home / ".kube" / "config").write_text(yaml.safe_dump(other))
    for p in (home, home / ".kube", home / ".kube" / "config"):
        shutil.chown(p, 20001, 20001)
    assert portal.run("alice").returncode == 0
    kc = yaml.safe_load((home / ".kube" / "config").read_text())
    assert [c["name"] for c in kc["clusters"]] == ["hpc", "ood-eks"]
    assert kc["users"][0] == {"name": "hpc", "user": {"token": "hpc-token"}}


# --- faults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("on_failure, code", [("open", 0), ("closed", 69)])
def test_cluster_down(portal: Portal, on_failure: str, code: int) -> None:
    portal.write_config(**{"hook.on_failure": on_failure, "cluster.retries": 1})
    portal.fk.inject(status=503, retry_after=0, count=100)
    proc = portal.run("alice")
    assert proc.returncode == code, proc.stderr
    (line,) = lines(proc)
    assert f"(hook.on_failure: {on_failure})" in line and "503" in line
    assert_no_secret(proc.stderr)
    assert portal.aws.calls == []  # nothing in Cognito before the cluster answered


def test_cluster_failing_half_way_then_the_next_login_converges(portal: Portal) -> None:
    portal.write_config(**{"cluster.retries": 0, "hook.on_failure": "closed"})
    portal.fk.inject(status=500, retry_after=None, count=1, path_contains="/rolebindings/")
    proc = portal.run("alice")
    assert proc.returncode == 69, proc.stderr
    assert "ood-k8s.io/desired-state" not in portal.fk.get("namespaces", "ood-alice")["metadata"]["annotations"]
    proc = portal.run("alice")
    assert proc.returncode == 0 and "namespace ood-alice updated" in proc.stderr, proc.stderr
    assert portal.fk.get("rolebindings", "ood-k8s-user", "ood-alice") is not None
    assert " current (" in portal.run("alice").stderr


@pytest.mark.parametrize("on_failure, code", [("open", 0), ("closed", 69)])
def test_cognito_down(make_config: Any, tmp_path: Path, fake_kube: Any, monkeypatch: pytest.MonkeyPatch,
                      on_failure: str, code: int) -> None:
    # In-process so the provider's own retries need not be waited out (ood_k8s.cloud.aws.cognito tests them).
    from ood_k8s.cloud.aws import cognito_admin as cognito
    from ood_k8s.core.errors import IdentityProviderError
    from ood_k8s.core.kube import KubeClient
    from tests.conftest import ALICE

    cfg = make_config(**{"hook.lock_dir": str(tmp_path), "storage.mode": "none", "storage.create_home": False,
                         "users.token_cache_dir": str(tmp_path / "tokens"), "hook.on_failure": on_failure})
    monkeypatch.setattr(provision.identity_mod, "lookup", lambda u: ALICE)

    def down(*a: Any, **kw: Any) -> list[str]:
        raise IdentityProviderError(f"Cognito is unreachable at https://cognito-idp (token {ID_TOKEN})")

    monkeypatch.setattr(cognito, "ensure_user", down)
    client = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    err = io.StringIO()
    assert hook.run(cfg, "alice", EXPORTS, hook.HookLog(EXPORTS, err, lambda p, m: None), client=client) == code
    text = err.getvalue()
    assert "Cognito is unreachable at https://cognito-idp (token <redacted>)" in text
    assert f"(hook.on_failure: {on_failure})" in text
    assert_no_secret(err.getvalue())
    assert fake_kube.get("namespaces", "ood-alice") is None  # Cognito comes before any cluster change


def test_a_disabled_cognito_user(portal: Portal) -> None:
    import boto3

    idp = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=portal.moto)
    idp.admin_create_user(UserPoolId=portal.pool_id, Username="alice", MessageAction="SUPPRESS")
    idp.admin_disable_user(UserPoolId=portal.pool_id, Username="alice")
    portal.write_config(**{"hook.on_failure": "closed"})
    proc = portal.run("alice")
    assert proc.returncode == 69 and "disabled" in proc.stderr
    assert len(lines(proc)) == 1


# --- in-process: logging and the root check ----------------------------------------------------------


def test_log_lines_mask_every_exported_value_and_any_jwt() -> None:
    sink: list[tuple[int, str]] = []
    err = io.StringIO()
    log = hook.HookLog({**EXPORTS, "OOD_SHORT": "abc", "PATH": "/usr/bin:/bin"}, err, lambda p, m: sink.append((p, m)))
    log.configure("local3", "ident")
    log.emit("err", f"failed with {EXPORTS['OOD_OIDC_ACCESS_TOKEN']} and\n{ID_TOKEN} and eyJhbGciOi.eyJzdWIi.sig abc")
    assert sink == [(3, "failed with <redacted> and <redacted> and <token> abc")]
    assert err.getvalue() == "ident: err: failed with <redacted> and <redacted> and <token> abc\n"


def test_run_refuses_without_root(make_config: Any) -> None:
    err = io.StringIO()
    log = hook.HookLog({}, err, lambda p, m: None)
    assert hook.run(make_config(), "alice", {}, log, geteuid=lambda: 1000) == 77
    assert "must run as root" in err.getvalue()


def test_run_in_process_fast_path_and_failure_modes(make_config: Any, tmp_path: Path, fake_kube: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ood_k8s.auth import login as credential
    from ood_k8s.core.kube import KubeClient
    from ood_k8s.kubeconfig import user as userkubeconfig
    from tests.conftest import ALICE

    cfg = make_config(**{"hook.lock_dir": str(tmp_path / "locks"), "storage.mode": "none", "auth.mode": "oidc",
                         "storage.create_home": False, "users.token_cache_dir": str(tmp_path / "tokens"),
                         "auth.oidc.issuer": "https://idp.example.edu", "auth.oidc.client_id": "ood"})
    monkeypatch.setattr(provision.identity_mod, "lookup", lambda u: ALICE)
    calls: list[str] = []
    monkeypatch.setattr(credential, "ensure_tokens", lambda c, i, env: calls.append(sorted(env)) or "cached")
    monkeypatch.setattr(userkubeconfig, "write_checked", lambda c, i, n: userkubeconfig.Written(False, ""))
    client = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    sink: list[tuple[int, str]] = []
    env = {**EXPORTS, "HOME": "/root"}
    assert hook.run(cfg, "alice", env, hook.HookLog(env, io.StringIO(), lambda p, m: sink.append((p, m))),
                    client=client) == 0
    assert calls == [sorted(EXPORTS)]  # only OOD_ exports reach the credential step
    assert sink[-1][0] == 5 and "created" in sink[-1][1]
    assert hook.run(cfg, "alice", env, hook.HookLog(env, io.StringIO(), lambda p, m: sink.append((p, m))),
                    client=client) == 0
    assert sink[-1][0] == 6 and "current (1 API request)" in sink[-1][1]

    def down(*a: Any) -> str:
        raise Unavailable("cannot reach the Kubernetes API at https://x: connection refused")

    monkeypatch.setattr(credential, "ensure_tokens", down)
    assert hook.run(cfg, "alice", env, hook.HookLog(env, io.StringIO(), lambda p, m: sink.append((p, m))),
                    client=client) == 0
    assert sink[-1][0] == 4 and "hook.on_failure: open" in sink[-1][1]


def test_exit_codes_are_documented() -> None:
    doc = hook.__doc__ or ""
    for code in (hook.EXIT_OK, hook.EXIT_FAILED, hook.EXIT_REFUSED, hook.EXIT_UNAVAILABLE, hook.EXIT_UNSAFE,
                 hook.EXIT_CONFIG):
        assert f"\n{code} " in doc, code
    assert os.access(LAUNCHER, os.X_OK)
    assert json.dumps(hook._PRIORITY)  # plain data

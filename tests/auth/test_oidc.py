"""Portal-OIDC mode: tokens from the hook's environment, refresh at the provider's token endpoint."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

import jwt
import pytest
import responses

from ood_k8s.auth import login, oidc, tokens
from ood_k8s.auth import plugin as credential
from ood_k8s.auth.tokencache import TokenCache
from ood_k8s.config import Config
from ood_k8s.core import errors
from tests.conftest import ALICE

ISSUER = "https://idp.example.edu/realms/hpc"
CLIENT = "ood-public"
TOKEN_URL = ISSUER + "/protocol/openid-connect/token"
DISCOVERY_URL = ISSUER + "/.well-known/openid-configuration"
NOW = 1_800_000_000.0


def id_token(exp: float = NOW + 600, iss: str = ISSUER, aud: Any = CLIENT, sub: str = "alice") -> str:
    return jwt.encode({"iss": iss, "aud": aud, "exp": int(exp), "sub": sub, "preferred_username": "alice"},
                      "test-signing-key-not-verified-here", algorithm="HS256")


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    return make_config(**{"auth.mode": "oidc", "auth.oidc.issuer": ISSUER, "auth.oidc.client_id": CLIENT,
                          "users.token_cache_dir": str(tmp_path / "tokens")})


def env(idt: str | None = None, rt: str | None = "rt-1") -> dict[str, str]:
    out = {"OOD_OIDC_ID_TOKEN": idt if idt is not None else id_token()}
    if rt is not None:
        out["OOD_OIDC_REFRESH_TOKEN"] = rt
    return out


def cache(cfg: Config) -> TokenCache:
    return TokenCache(cfg.users.token_cache_dir, "alice")


def test_claims_reads_payload_and_tolerates_garbage() -> None:
    assert tokens.claims(id_token())["iss"] == ISSUER
    for junk in ("", "abc", "a.%%%.c", "a." + "e30" + ".c"):
        assert tokens.claims(junk) == {}


def test_portal_tokens_are_stored_then_cached(cfg: Config) -> None:
    e = env()
    assert login.ensure_tokens(cfg, ALICE, e, clock=lambda: NOW) == "portal"
    t = cache(cfg).read()
    assert t is not None
    assert (t.mode, t.issuer, t.client_id, t.token_endpoint, t.refresh_token) == ("oidc", ISSUER, CLIENT, "", "rt-1")
    assert t.id_expires_at == int(NOW + 600) and t.refresh_expires_at == NOW + 30 * 86400
    assert login.ensure_tokens(cfg, ALICE, e, clock=lambda: NOW) == "cached"   # same login, no write
    assert login.ensure_tokens(cfg, ALICE, {}, clock=lambda: NOW) == "cached"  # portal passed nothing
    assert login.ensure_tokens(cfg, ALICE, env(rt="rt-2"), clock=lambda: NOW) == "portal"  # a new login


@pytest.mark.parametrize(("environment", "message"), [
    (env(rt=None), "the portal passed no OOD_OIDC_REFRESH_TOKEN: add OIDC_REFRESH_TOKEN to pun_pre_hook_exports"),
    (env(idt="not-a-jwt"), "OOD_OIDC_ID_TOKEN is not a JWT ID token"),
    (env(idt=id_token(iss="https://evil.example")), "issued by 'https://evil.example', not auth.oidc.issuer"),
    (env(idt=id_token(aud=["other"])), "is for ['other'], not auth.oidc.client_id"),
    ({}, "the portal passed no OIDC tokens for alice and none are cached: export OIDC_ID_TOKEN"),
])
def test_bad_portal_tokens_are_refused_with_nothing_stored(cfg: Config, environment: dict, message: str) -> None:
    with pytest.raises(errors.IdentityProviderError) as exc:
        login.ensure_tokens(cfg, ALICE, environment, clock=lambda: NOW)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert cache(cfg).read() is None


def test_audience_list_is_accepted(cfg: Config) -> None:
    assert login.ensure_tokens(cfg, ALICE, env(idt=id_token(aud=["x", CLIENT])), clock=lambda: NOW) == "portal"


@responses.activate
def test_plugin_discovers_endpoint_refreshes_and_keeps_rotated_token(cfg: Config) -> None:
    login.ensure_tokens(cfg, ALICE, env(), clock=lambda: NOW)
    responses.get(DISCOVERY_URL, json={"issuer": ISSUER, "token_endpoint": TOKEN_URL})
    fresh = id_token(exp=NOW + 1200)
    responses.post(TOKEN_URL, json={"id_token": fresh, "access_token": "at", "refresh_token": "rt-2",
                                    "expires_in": 300, "refresh_expires_in": 1800})
    out, err = io.StringIO(), io.StringIO()
    later = NOW + 400  # within the margin of the first token
    code = credential.main(["--user", "alice", "--cache-dir", cfg.users.token_cache_dir], clock=lambda: later,
                           environ={}, stdout=out, stderr=err)
    assert (code, err.getvalue()) == (0, "")
    assert json.loads(out.getvalue())["status"]["token"] == fresh
    form = parse_qs(responses.calls[1].request.body)
    assert form == {"grant_type": ["refresh_token"], "refresh_token": ["rt-1"], "client_id": [CLIENT]}
    assert "client_secret" not in responses.calls[1].request.body
    t = cache(cfg).read()
    assert t is not None
    assert (t.id_token, t.refresh_token, t.token_endpoint, t.id_expires_at, t.refresh_expires_at) == (
        fresh, "rt-2", TOKEN_URL, int(NOW + 1200), later + 1800)
    # The discovered endpoint survives the next login, so the plugin does not discover again.
    login.ensure_tokens(cfg, ALICE, env(rt="rt-3"), clock=lambda: NOW + 500)
    assert cache(cfg).read().token_endpoint == TOKEN_URL  # type: ignore[union-attr]


@responses.activate
@pytest.mark.parametrize(("status", "body", "error", "text"), [
    (400, {"error": "invalid_grant"}, errors.CredentialError, "log out of the portal and log in again"),
    (401, {"error": "invalid_client"}, errors.IdentityProviderError, "must be a public client"),
    (503, {}, errors.IdentityProviderError, "answered HTTP 503"),
    (200, {"access_token": "only"}, errors.IdentityProviderError, "returned no id_token"),
])
def test_refresh_failures(cfg: Config, status: int, body: dict, error: type, text: str) -> None:
    cfg.auth.oidc.token_endpoint = TOKEN_URL
    login.ensure_tokens(cfg, ALICE, env(idt=id_token(exp=NOW - 1)), clock=lambda: NOW)
    responses.post(TOKEN_URL, json=body, status=status)
    with pytest.raises(error) as exc:
        tokens.current_tokens(cache(cfg), clock=lambda: NOW)
    assert text in str(exc.value) and "\n" not in str(exc.value)
    if error is errors.CredentialError:  # a dead refresh token is forgotten
        assert cache(cfg).read().refresh_token == ""  # type: ignore[union-attr]


@responses.activate
def test_discovery_failure_is_one_line() -> None:
    responses.get(DISCOVERY_URL, status=404)
    with pytest.raises(errors.IdentityProviderError, match="answered 404 without a token_endpoint"):
        oidc.discover_token_endpoint(ISSUER)


def test_unreachable_provider_is_one_line() -> None:
    with pytest.raises(errors.IdentityProviderError, match="cannot reach the OIDC provider"):
        oidc.discover_token_endpoint("http://127.0.0.1:9", timeout=2)


def test_cognito_mode_ignores_oidc_variables(make_config: Callable[..., Config], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(**{"users.token_cache_dir": str(tmp_path)})
    from ood_k8s.cloud.aws import cognito_admin as cognito

    monkeypatch.setattr(cognito, "mint_tokens", lambda *a, **k: (_ for _ in ()).throw(
        errors.IdentityProviderError("minting")))
    with pytest.raises(errors.IdentityProviderError, match="minting"):
        login.ensure_tokens(cfg, ALICE, env(), clock=time.time)

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Portal-OIDC mode (``auth.mode: oidc``): the cluster trusts the portal's own OpenID Connect provider.

The hook receives the portal's ID and refresh tokens in the variables named by
``auth.oidc.id_token_env`` / ``refresh_token_env`` (``pun_pre_hook_exports``) and stores them in
the user's token cache; the credential plugin later refreshes them, as the user, at the provider's
token endpoint (``grant_type=refresh_token``).  Only public clients are supported: a client secret
would have to be readable by the user's process, i.e. by every student (the incumbent's defect,
OSC/ondemand issue 3741).  The provider's users are the portal's, not ours: nothing is created,
listed or deleted there.

``requests`` is imported only when a refresh or discovery actually happens.
"""

import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional

from ood_k8s.auth.provider import Claims, Issuer
from ood_k8s.auth.tokencache import Tokens
from ood_k8s.auth.tokens import claims
from ood_k8s.core.errors import ConfigError, CredentialError, IdentityProviderError

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity
    from ood_k8s.doctor.report import Check, Context

MODE = "oidc"
DISCOVERY = "/.well-known/openid-configuration"
HOOK_ENV_PREFIX = "OOD_"  # nginx_stage passes each pun_pre_hook_exports variable NAME as OOD_NAME


def _audiences(value: Any) -> List[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def tokens_from_portal(cfg: "Config", env: Mapping[str, str], *,
                       clock: Callable[[], float] = time.time) -> Optional[Tokens]:
    """The portal's tokens from the hook's environment, checked; None when the portal passed none."""
    o = cfg.auth.oidc
    id_token = (env.get(o.id_token_env) or "").strip()
    refresh_token = (env.get(o.refresh_token_env) or "").strip()
    if not id_token and not refresh_token:
        return None
    if not id_token or not refresh_token:
        missing = o.id_token_env if not id_token else o.refresh_token_env
        raise IdentityProviderError(f"the portal passed no {missing}",
                                    f"add {_export_name(missing)} to pun_pre_hook_exports in ood_portal.yml "
                                    "(and request the offline_access scope for a refresh token)")
    found = claims(id_token)
    if not found:
        raise IdentityProviderError(f"{o.id_token_env} is not a JWT ID token",
                                    "export the ID token (not the access token) in pun_pre_hook_exports")
    iss = str(found.get("iss", ""))
    if iss.rstrip("/") != o.issuer.rstrip("/"):
        raise IdentityProviderError(f"the portal's ID token was issued by {iss!r}, not auth.oidc.issuer "
                                    f"{o.issuer!r}", "set auth.oidc.issuer to the portal's OIDC issuer")
    if o.client_id not in _audiences(found.get("aud")):
        raise IdentityProviderError(f"the portal's ID token is for {found.get('aud')!r}, not auth.oidc.client_id "
                                    f"{o.client_id!r}", "set auth.oidc.client_id to the portal's (public) client id")
    now = clock()
    exp = found.get("exp")
    return Tokens(
        id_token=id_token,
        id_expires_at=float(exp) if isinstance(exp, (int, float)) else now,
        refresh_token=refresh_token,
        refresh_expires_at=now + o.refresh_token_days * 86400,
        mode=MODE,
        issuer=o.issuer,
        client_id=o.client_id,
        token_endpoint=o.token_endpoint,
        margin=cfg.auth.id_token_margin,
        updated_at=now,
    )


def _export_name(env_name: str) -> str:
    # The ood_portal.yml entry is the bare name; the hook sees it prefixed.
    return env_name[len(HOOK_ENV_PREFIX):] if env_name.startswith(HOOK_ENV_PREFIX) else env_name


def discover_token_endpoint(issuer: str, *, session: Any = None, timeout: float = 10.0) -> str:
    """The ``token_endpoint`` from the issuer's discovery document."""
    import requests

    http = session or requests
    url = issuer.rstrip("/") + DISCOVERY
    try:
        response = http.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise IdentityProviderError(f"cannot reach the OIDC provider at {url} ({type(exc).__name__})",
                                    "check auth.oidc.issuer and the network; try again in a minute") from None
    try:
        endpoint = response.json()["token_endpoint"] if response.status_code == 200 else None
    except (ValueError, KeyError, TypeError):
        endpoint = None
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        raise IdentityProviderError(f"{url} answered {response.status_code} without a token_endpoint",
                                    "check auth.oidc.issuer, or set auth.oidc.token_endpoint")
    return endpoint


def refresh(tokens: Tokens, *, clock: Callable[[], float] = time.time, session: Any = None,
            timeout: float = 10.0) -> Tokens:
    """New tokens from the provider's token endpoint.

    Raises :class:`CredentialError` when the provider rejects the refresh token (expired, revoked:
    the user must log in again) and :class:`IdentityProviderError` for everything that may pass
    (unreachable, 5xx) or that an administrator must fix (unknown or confidential client).
    """
    import requests

    http = session or requests
    endpoint = tokens.token_endpoint or discover_token_endpoint(tokens.issuer, session=session, timeout=timeout)
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": tokens.client_id}
    try:
        response = http.post(endpoint, data=form, headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        raise IdentityProviderError(f"cannot reach the OIDC token endpoint {endpoint} ({type(exc).__name__})",
                                    "try again in a minute") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error = str(body.get("error", ""))
    if response.status_code in (400, 401) and error == "invalid_grant":
        raise CredentialError("your portal login session has expired")
    if error in ("invalid_client", "unauthorized_client"):
        raise IdentityProviderError(f"the OIDC provider refused client {tokens.client_id!r} ({error})",
                                    "auth.oidc.client_id must be a public client allowed to refresh tokens")
    if response.status_code != 200:
        raise IdentityProviderError(f"the OIDC token endpoint answered HTTP {response.status_code}"
                                    f"{' (' + error + ')' if error else ''}", "try again in a minute")
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise IdentityProviderError("the OIDC provider returned no id_token on refresh",
                                    "request the openid scope at login so refreshes return ID tokens")
    now = clock()
    exp = claims(id_token).get("exp")
    expires_in = body.get("expires_in")
    if isinstance(exp, (int, float)):
        id_expires_at = float(exp)
    elif isinstance(expires_in, (int, float)):
        id_expires_at = now + float(expires_in)
    else:
        id_expires_at = now
    changes: Dict[str, Any] = {"id_token": id_token, "id_expires_at": id_expires_at, "token_endpoint": endpoint,
                               "updated_at": now}
    new_refresh = body.get("refresh_token")
    if isinstance(new_refresh, str) and new_refresh:  # rotating providers: the old one is now dead
        changes["refresh_token"] = new_refresh
        refresh_in = body.get("refresh_expires_in")
        if isinstance(refresh_in, (int, float)) and refresh_in > 0:
            changes["refresh_expires_at"] = now + float(refresh_in)
    return tokens.replace(**changes)


def hook_exports(cfg: "Config") -> List[str]:
    """The two variables the hook needs, as named in ``pun_pre_hook_exports`` (without OOD_)."""
    names = []
    for key in ("id_token_env", "refresh_token_env"):
        env = getattr(cfg.auth.oidc, key)
        if not env.startswith(HOOK_ENV_PREFIX) or len(env) == len(HOOK_ENV_PREFIX):
            raise ConfigError(f"auth.oidc.{key}: got {env!r}, expected a name starting with "
                              f"{HOOK_ENV_PREFIX} (nginx_stage passes exported variables as OOD_<name>)")
        names.append(env[len(HOOK_ENV_PREFIX):])
    return names


class OidcProvider:
    """The portal's OIDC provider as an :class:`~ood_k8s.auth.provider.IdentityProvider`."""

    mode = MODE
    title = "OIDC"
    manages_users = False

    def issuer(self, cfg: "Config") -> Issuer:
        o = cfg.auth.oidc
        return Issuer(o.issuer, o.client_id, o.token_endpoint or None)

    def claims(self, cfg: "Config") -> Claims:
        return Claims(cfg.auth.oidc.username_claim, cfg.auth.oidc.groups_claim)

    def fingerprint(self, cfg: "Config") -> Any:
        return self.mode  # no user objects at the provider depend on its settings

    def config_problems(self, cfg: "Config") -> List[str]:
        return [f"auth.oidc.{key}: missing, expected a value when auth.mode is oidc"
                for key in ("issuer", "client_id") if not getattr(cfg.auth.oidc, key)]

    def hook_exports(self, cfg: "Config") -> List[str]:
        return hook_exports(cfg)

    def portal_tokens(self, cfg: "Config", env: Mapping[str, str], *,
                      clock: Callable[[], float]) -> Optional[Tokens]:
        return tokens_from_portal(cfg, env, clock=clock)

    def mint(self, cfg: "Config", username: str, *, clock: Callable[[], float],
             sleep: Callable[[float], None]) -> Tokens:
        # Only the portal's login yields tokens: there is no way to make them for a user here.
        o = cfg.auth.oidc
        raise IdentityProviderError(f"the portal passed no OIDC tokens for {username} and none are cached",
                                    f"export {_export_name(o.id_token_env)} and "
                                    f"{_export_name(o.refresh_token_env)} with pun_pre_hook_exports")

    def refresh(self, tokens: Tokens, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> Tokens:
        return refresh(tokens, clock=clock)

    def ensure_user(self, cfg: "Config", ident: "Identity", *, dry_run: bool = False) -> List[str]:
        return []  # the portal's users are the provider's; ours to trust, not to manage

    def user_state(self, cfg: "Config", username: str) -> str:
        return "-"

    def delete_user(self, cfg: "Config", username: str) -> bool:
        return False

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        return []


PROVIDER = OidcProvider()

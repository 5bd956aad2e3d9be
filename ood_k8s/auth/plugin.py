"""``ood-k8s credential``: the kubectl exec credential plugin, and the same tokens in-process.

Every kubectl process runs the plugin, and the adapter asks for a token on every OOD poll, so the
common case is one small file read: the user's ID token from their cache
(:mod:`ood_k8s.auth.tokencache`), served while it is valid for more than ``auth.id_token_margin``
seconds.  Only then is it refreshed with the refresh token, under the cache lock so that many
concurrent kubectl processes cause one refresh.  The refresh parameters (mode, endpoint, client
id, margin) are stored in the cache by the hook, so the plugin needs neither the site config nor
AWS credentials.

Cognito refresh is a plain unsigned HTTPS POST of ``InitiateAuth``/``REFRESH_TOKEN_AUTH``
(``X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth``) with :mod:`urllib.request`:
the call needs no AWS signature, and importing boto3 would cost ~140 ms in a process whose whole
job is to print one token.  urllib honours HTTPS_PROXY/NO_PROXY like boto3 does.

When the refresh token is missing, expired or rejected, the plugin says so in one line on stderr
and exits 1: the remedy (log out of the portal and in again) re-runs the hook, which mints anew.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, TextIO

from ood_k8s.auth.tokencache import TokenCache, Tokens
from ood_k8s.core.errors import CredentialError, IdentityProviderError, OodK8sError, SecurityError

if TYPE_CHECKING:
    import argparse

    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity

EXEC_API = "client.authentication.k8s.io/v1"
EXEC_APIS = (EXEC_API, "client.authentication.k8s.io/v1beta1")
COGNITO_TARGET = "AWSCognitoIdentityProviderService.InitiateAuth"
_TRANSIENT = {"TooManyRequestsException", "LimitExceededException", "ThrottlingException",
              "InternalErrorException", "ServiceUnavailable"}


def _expired(cache: TokenCache) -> CredentialError:
    return CredentialError(f"the Kubernetes credentials of {cache.username} on this portal have expired",
                           "log out of the portal and log in again")


# --- refreshing ----------------------------------------------------------------------------------


def _refresh_cognito(tokens: Tokens, *, clock: Callable[[], float], sleep: Callable[[float], None],
                     timeout: float = 10.0) -> Tokens:
    import urllib.error
    import urllib.request

    from ood_k8s.auth.oidc import claims

    body = json.dumps({"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": tokens.client_id,
                       "AuthParameters": {"REFRESH_TOKEN": tokens.refresh_token}}).encode()
    if not tokens.token_endpoint.startswith(("https://", "http://")):
        raise CredentialError(f"the token cache names no usable Cognito endpoint ({tokens.token_endpoint!r})")
    request = urllib.request.Request(tokens.token_endpoint, data=body, method="POST", headers={  # noqa: S310
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": COGNITO_TARGET})
    code = ""
    status = 0
    for attempt in range(3):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
                status, data = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if attempt < 2:
                sleep(0.5 * 2 ** attempt)
                continue
            raise IdentityProviderError(f"cannot reach Cognito at {tokens.token_endpoint} "
                                        f"({type(reason).__name__})", "try again in a minute") from None
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status == 200:
            break
        code = str(answer.get("__type", "")).rsplit("#", 1)[-1]
        if (code in _TRANSIENT or status >= 500) and attempt < 2:
            sleep(0.5 * 2 ** attempt)
            continue
        if code in ("NotAuthorizedException", "UserNotFoundException"):
            # Expired, revoked (global sign-out), user disabled or deleted: only a new login helps.
            raise CredentialError("your Kubernetes login was refused by Cognito (expired or revoked)")
        if code == "ResourceNotFoundException":
            raise IdentityProviderError(f"Cognito app client {tokens.client_id} or its user pool no longer exists",
                                        "ask your administrator to check auth.cognito")
        raise IdentityProviderError(f"Cognito could not renew the token (HTTP {status}{' ' + code if code else ''})",
                                    "try again in a minute")
    result = answer.get("AuthenticationResult") or {}
    id_token = result.get("IdToken") if isinstance(result, dict) else None
    if not isinstance(id_token, str) or not id_token:
        raise IdentityProviderError("Cognito returned no ID token on refresh", "try again in a minute")
    now = clock()
    exp = claims(id_token).get("exp")
    expires_in = result.get("ExpiresIn", 3600)
    changes: dict[str, object] = {
        "id_token": id_token,
        "id_expires_at": float(exp) if isinstance(exp, (int, float)) else now + float(expires_in),
        "updated_at": now,
    }
    if isinstance(result.get("RefreshToken"), str) and result["RefreshToken"]:
        changes["refresh_token"] = result["RefreshToken"]  # refresh-token rotation enabled on the client
    return tokens.replace(**changes)


def _refresh(tokens: Tokens, clock: Callable[[], float], sleep: Callable[[float], None]) -> Tokens:
    if tokens.mode == "cognito":
        return _refresh_cognito(tokens, clock=clock, sleep=sleep)
    if tokens.mode == "oidc":
        from ood_k8s.auth import oidc

        return oidc.refresh(tokens, clock=clock)
    raise CredentialError(f"unknown token mode {tokens.mode!r} in the token cache")


def current_tokens(cache: TokenCache, *, force: bool = False, clock: Callable[[], float] = time.time,
                   sleep: Callable[[float], None] = time.sleep) -> Tokens:
    """Valid tokens for the cache's user: from the cache, or refreshed (``force``: refresh anyway,
    e.g. after the API server answered 401 to the cached token)."""
    now = clock()
    tokens = cache.read()
    if tokens is None:
        raise CredentialError(f"there are no Kubernetes credentials for {cache.username} on this portal",
                              "log out of the portal and log in again (logging in creates them)")
    if not force and tokens.id_valid(now):
        return tokens
    with cache.locked():
        latest = cache.read() or tokens
        if latest.id_valid(now) and (not force or latest.id_token != tokens.id_token):
            return latest  # another process refreshed while we waited for the lock
        if not latest.refresh_valid(now):
            raise _expired(cache)
        try:
            fresh = _refresh(latest, clock, sleep)
        except CredentialError:
            # Forget the dead refresh token so that the next login mints new tokens instead of
            # finding a "valid" cache.
            cache.write(latest.replace(refresh_token="", refresh_expires_at=0.0))
            raise _expired(cache) from None
        except IdentityProviderError:
            if not force and now < latest.id_expires_at - 5:
                return latest  # the provider is down but the token still works: use it meanwhile
            raise
        cache.write(fresh)
        return fresh


def token_source(cfg: Config, username: str, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> Callable[[bool], str]:
    """A KubeClient token callable for ``username`` (``refresh=True`` after a 401)."""
    return _source(TokenCache(cfg.users.token_cache_dir, username, clock=clock, sleep=sleep), clock, sleep)


def _source(cache: TokenCache, clock: Callable[[], float], sleep: Callable[[float], None]) -> Callable[[bool], str]:
    held: list[Tokens] = []

    def source(refresh: bool = False) -> str:
        if held and not refresh and held[0].id_valid(clock()):
            return held[0].id_token
        tokens = current_tokens(cache, force=refresh, clock=clock, sleep=sleep)
        held[:] = [tokens]
        return tokens.id_token

    return source


# --- the plugin ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(prog="ood-k8s credential", description=(
        "kubectl exec credential plugin: prints an ExecCredential with the user's ID token, "
        "refreshing it when it is about to expire. Written into users' kubeconfigs by the login hook."))
    p.add_argument("--portal", default="", help="portal name (identifies the kubeconfig entry)")
    p.add_argument("--cluster", default="", help="cluster name (identifies the kubeconfig entry)")
    p.add_argument("--user", default="", help="portal username (default: the user running the plugin)")
    p.add_argument("--cache-dir", default="", help="token cache directory (default: users.token_cache_dir)")
    p.add_argument("--config", default=None, help="site configuration (only read without --cache-dir)")
    return p


_OPTIONS = {"--portal": "portal", "--cluster": "cluster", "--user": "user", "--cache-dir": "cache_dir",
            "--config": "config"}


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The plugin's options.  The usual ones (what the hook writes into kubeconfigs) are read here:
    argparse's import and parser cost ~4 ms of a process kubectl starts for every command.
    Anything else (help, a typo, a missing value) gets argparse's usual answer."""
    import types

    values: dict[str, str | None] = {"portal": "", "cluster": "", "user": "", "cache_dir": "", "config": None}
    i = 0
    while i < len(argv):
        key, eq, value = argv[i].partition("=")
        dest = _OPTIONS.get(key)
        if dest is None:
            return _parser().parse_args(argv)
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return _parser().parse_args(argv)
            value = argv[i + 1]
            i += 1
        values[dest] = value
        i += 1
    return types.SimpleNamespace(**values)  # type: ignore[return-value]


def _cache_from_args(args: argparse.Namespace, clock: Callable[[], float],
                     sleep: Callable[[float], None]) -> TokenCache:
    user = args.user
    if not user:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    cache_dir = args.cache_dir
    if not cache_dir:
        from ood_k8s import config

        cache_dir = config.load(args.config).users.token_cache_dir
    return TokenCache(cache_dir, user, clock=clock, sleep=sleep)


def token_source_from_args(args: Sequence[str], *, clock: Callable[[], float] = time.time,
                           sleep: Callable[[float], None] = time.sleep) -> Callable[[bool], str]:
    """The token callable for a kubeconfig exec entry whose args are ``credential ...``."""
    argv = list(args)
    if argv[:1] == ["credential"]:
        argv = argv[1:]
    return _source(_cache_from_args(_parse_args(argv), clock, sleep), clock, sleep)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def exec_credential(tokens: Tokens, now: float, api_version: str = EXEC_API) -> dict[str, object]:
    # Tell kubectl to come back when we would refresh, so it never holds a token inside the margin;
    # a token served despite the margin (provider down) carries its real expiry.
    expires = tokens.id_expires_at - tokens.margin
    if expires <= now:
        expires = tokens.id_expires_at
    return {"apiVersion": api_version, "kind": "ExecCredential",
            "status": {"token": tokens.id_token, "expirationTimestamp": _rfc3339(expires)}}


def _api_version(environ: Mapping[str, str]) -> str:
    info = environ.get("KUBERNETES_EXEC_INFO")
    if info:
        try:
            asked = json.loads(info).get("apiVersion")
        except (ValueError, AttributeError):
            asked = None
        if asked in EXEC_APIS:
            return str(asked)
    return EXEC_API


def main(argv: Sequence[str], *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
         environ: Mapping[str, str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the plugin: print an ExecCredential (exit 0) or one line on stderr (non-zero)."""
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = _parse_args(list(argv))
    try:
        cache = _cache_from_args(args, clock, sleep)
        tokens = current_tokens(cache, clock=clock, sleep=sleep)
    except OodK8sError as err:
        print(f"ood-k8s credential: {err}", file=stderr)
        return err.exit_code
    stdout.write(json.dumps(exec_credential(tokens, clock(), _api_version(environ))) + "\n")
    stdout.flush()
    return 0


# --- the hook's side -----------------------------------------------------------------------------


def _wanted(cfg: Config) -> tuple[str, str, str, str | None]:
    """(mode, issuer, client id, token endpoint or None for "any") the cache must match."""
    if cfg.auth.mode == "oidc":
        o = cfg.auth.oidc
        return "oidc", o.issuer, o.client_id, o.token_endpoint or None
    from ood_k8s.cloud.aws import cognito

    return "cognito", cognito.issuer(cfg), cfg.auth.cognito.client_id, cognito.api_endpoint(cfg)


def _usable(cfg: Config, tokens: Tokens | None, now: float) -> bool:
    if tokens is None:
        return False
    mode, issuer, client_id, endpoint = _wanted(cfg)
    if (tokens.mode, tokens.issuer, tokens.client_id) != (mode, issuer, client_id) or \
            tokens.margin != cfg.auth.id_token_margin:
        return False  # the site changed provider or settings: these tokens no longer fit
    if endpoint is not None and tokens.token_endpoint != endpoint:
        return False
    # The refresh token must outlive any session started now, or its card would stop updating.
    return tokens.refresh_valid(now, ahead=cfg.jobs.max_walltime)


def ensure_tokens(cfg: Config, ident: Identity, env: Mapping[str, str], *,
                  clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> str:
    """Make sure the user's token cache holds usable tokens; say how: "cached", "minted" or "portal".

    * "cached": the cache already fits the config and its refresh token is valid -- zero network
      calls and no boto3 import (the hook's fast path);
    * "minted" (auth.mode cognito): new tokens from Cognito (the user must exist: see
      :func:`ood_k8s.cloud.aws.cognito.ensure_user`);
    * "portal" (auth.mode oidc): the portal's own tokens from ``env`` were stored.
    """
    euid = os.geteuid()
    if euid not in (0, ident.uid):
        raise SecurityError(f"cannot write the token cache of {ident.username} as uid {euid}",
                            "run the hook as root (pun_pre_hook_root_cmd)")
    owner = (ident.uid, ident.gid) if euid == 0 else None
    cache = TokenCache(cfg.users.token_cache_dir, ident.username, clock=clock, owner=owner, sleep=sleep)
    now = clock()
    if cfg.auth.mode == "oidc":
        from ood_k8s.auth import oidc

        portal = oidc.tokens_from_portal(cfg, env, clock=clock)
        current = cache.read()
        if portal is None:
            if _usable(cfg, current, now):
                return "cached"
            o = cfg.auth.oidc
            raise IdentityProviderError(f"the portal passed no OIDC tokens for {ident.username} and none are cached",
                                        f"export {oidc._export_name(o.id_token_env)} and "
                                        f"{oidc._export_name(o.refresh_token_env)} with pun_pre_hook_exports")
        if current is not None and _usable(cfg, current, now) and \
                (current.id_token, current.refresh_token) == (portal.id_token, portal.refresh_token):
            return "cached"
        if current is not None and current.token_endpoint and not portal.token_endpoint and \
                current.issuer == portal.issuer:
            portal = portal.replace(token_endpoint=current.token_endpoint)  # keep what the plugin discovered
        with cache.locked():
            cache.write(portal)
        return "portal"
    if _usable(cfg, cache.read(), now):
        return "cached"
    with cache.locked():
        if _usable(cfg, cache.read(), now):
            return "cached"  # a concurrent hook for the same user minted while we waited
        from ood_k8s.cloud.aws import cognito

        cache.write(cognito.mint_tokens(cfg, ident.username, sleep=sleep, clock=clock))
    return "minted"


def forget_tokens(cfg: Config, username: str, *, dry_run: bool = False) -> str | None:
    """User teardown: delete the user's token cache directory (:meth:`TokenCache.remove`).

    Says what was (or, in a dry run, would be) done; None when the user has no cache.  Without it
    the user's refresh token would outlive their namespace on this portal's disk.
    """
    cache = TokenCache(cfg.users.token_cache_dir, username)
    if dry_run:
        return f"would delete the token cache {cache.user_dir}" if os.path.lexists(cache.user_dir) else None
    return f"deleted the token cache {cache.user_dir}" if cache.remove() else None

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""A user's valid ID token: from their cache, or refreshed through its identity provider.

Every kubectl process runs the credential plugin and the adapter asks for a token on every OOD
poll, so the common case is one small file read: the ID token from the user's cache
(:mod:`ood_k8s.auth.tokencache`), served while it is valid for more than its margin
(``auth.id_token_margin`` when it was stored).  Only then is it refreshed, by the provider the
cache names (:mod:`ood_k8s.auth.provider`), under the cache lock so that many concurrent kubectl
processes cause one refresh.  The cache holds everything a refresh needs, so this side reads
neither the site config nor AWS credentials.
"""

import base64
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List

from ood_k8s.auth.tokencache import TokenCache, Tokens
from ood_k8s.core.errors import CredentialError, IdentityProviderError

if TYPE_CHECKING:
    from ood_k8s.config import Config


def claims(token: str) -> Dict[str, Any]:
    """The payload of a JWT, NOT verified: only to read ``exp``/``iss``/``aud`` of our own tokens.

    The API server verifies signatures; we only need to know when a token expires.  Anything that
    is not a JWT gives an empty dict.
    """
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def expired(cache: TokenCache) -> CredentialError:
    return CredentialError(f"the Kubernetes credentials of {cache.username} on this portal have expired",
                           "log out of the portal and log in again")


def _refresh(tokens: Tokens, clock: Callable[[], float], sleep: Callable[[float], None]) -> Tokens:
    from ood_k8s.auth import provider  # only a refresh needs a provider (~1 ms of import)

    found = provider.find(tokens.mode)
    if found is None:
        raise CredentialError(f"unknown token mode {tokens.mode!r} in the token cache")
    return found.refresh(tokens, clock=clock, sleep=sleep)


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
            raise expired(cache)
        try:
            fresh = _refresh(latest, clock, sleep)
        except CredentialError:
            # Forget the dead refresh token so that the next login mints new tokens instead of
            # finding a "valid" cache.
            cache.write(latest.replace(refresh_token="", refresh_expires_at=0.0))
            raise expired(cache) from None
        except IdentityProviderError:
            if not force and now < latest.id_expires_at - 5:
                return latest  # the provider is down but the token still works: use it meanwhile
            raise
        cache.write(fresh)
        return fresh


def token_source(cfg: "Config", username: str, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> Callable[[bool], str]:
    """A KubeClient token callable for ``username`` (``refresh=True`` after a 401)."""
    return cache_source(TokenCache(cfg.users.token_cache_dir, username, clock=clock, sleep=sleep), clock, sleep)


def cache_source(cache: TokenCache, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> Callable[[bool], str]:
    """The token callable of one cache: the tokens are held in memory until they need refreshing."""
    held: List[Tokens] = []

    def source(refresh: bool = False) -> str:
        if held and not refresh and held[0].id_valid(clock()):
            return held[0].id_token
        tokens = current_tokens(cache, force=refresh, clock=clock, sleep=sleep)
        held[:] = [tokens]
        return tokens.id_token

    return source

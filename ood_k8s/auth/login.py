# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The hook's token step at each login, and the token side of a user's teardown.

At login the user's cache must hold tokens the site's identity provider (:mod:`ood_k8s.auth.provider`)
issued for the current settings, with a refresh token that outlives any session started now.  A
returning user's cache usually does: zero network calls and no provider SDK import (the hook's
fast path).  Otherwise the tokens the portal handed the hook are stored, or the provider mints new
ones -- under the cache lock, so concurrent hooks for one user mint once.
"""

import os
import time
from typing import TYPE_CHECKING, Callable, Mapping, Optional

from ood_k8s.auth import provider
from ood_k8s.auth.tokencache import TokenCache, Tokens
from ood_k8s.core.errors import SecurityError

if TYPE_CHECKING:
    from ood_k8s.auth.provider import IdentityProvider
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity


def usable(cfg: "Config", identity: "IdentityProvider", tokens: Optional[Tokens], now: float) -> bool:
    """``tokens`` were issued for the site's current provider settings and can be refreshed for
    longer than any session started now."""
    if tokens is None:
        return False
    issuer = identity.issuer(cfg)
    if (tokens.mode, tokens.issuer, tokens.client_id) != (identity.mode, issuer.url, issuer.client_id) or \
            tokens.margin != cfg.auth.id_token_margin:
        return False  # the site changed provider or settings: these tokens no longer fit
    if issuer.token_endpoint is not None and tokens.token_endpoint != issuer.token_endpoint:
        return False
    # The refresh token must outlive any session started now, or its card would stop updating.
    return tokens.refresh_valid(now, ahead=cfg.jobs.max_walltime)


def _store_portal(cfg: "Config", identity: "IdentityProvider", cache: TokenCache, portal: Tokens,
                  now: float) -> str:
    current = cache.read()
    if current is not None and usable(cfg, identity, current, now) and \
            (current.id_token, current.refresh_token) == (portal.id_token, portal.refresh_token):
        return "cached"
    if current is not None and current.token_endpoint and not portal.token_endpoint and \
            current.issuer == portal.issuer:
        portal = portal.replace(token_endpoint=current.token_endpoint)  # keep what the plugin discovered
    with cache.locked():
        cache.write(portal)
    return "portal"


def ensure_tokens(cfg: "Config", ident: "Identity", env: Mapping[str, str], *,
                  clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> str:
    """Make sure the user's token cache holds usable tokens; say how: "cached", "minted" or "portal".

    * "cached": the cache already fits the config and its refresh token is valid;
    * "portal": the tokens the portal passed in ``env`` (the OOD_ exports) were stored;
    * "minted": the provider made new ones (for Cognito the user must exist: see
      :meth:`~ood_k8s.auth.provider.IdentityProvider.ensure_user`).
    """
    identity = provider.of(cfg)
    euid = os.geteuid()
    if euid not in (0, ident.uid):
        raise SecurityError(f"cannot write the token cache of {ident.username} as uid {euid}",
                            "run the hook as root (pun_pre_hook_root_cmd)")
    owner = (ident.uid, ident.gid) if euid == 0 else None
    cache = TokenCache(cfg.users.token_cache_dir, ident.username, clock=clock, owner=owner, sleep=sleep)
    if owner is not None:
        cache.ensure_base()  # every login: a wrong mode found later is repaired (or refused), not kept
    now = clock()
    portal = identity.portal_tokens(cfg, env, clock=clock)
    if portal is not None:
        return _store_portal(cfg, identity, cache, portal, now)
    if usable(cfg, identity, cache.read(), now):
        return "cached"
    with cache.locked():
        if usable(cfg, identity, cache.read(), now):
            return "cached"  # a concurrent hook for the same user minted while we waited
        cache.write(identity.mint(cfg, ident.username, clock=clock, sleep=sleep))
    return "minted"


def forget_tokens(cfg: "Config", username: str, *, dry_run: bool = False) -> Optional[str]:
    """User teardown: delete the user's token cache directory (:meth:`TokenCache.remove`).

    Says what was (or, in a dry run, would be) done; None when the user has no cache.  Without it
    the user's refresh token would outlive their namespace on this portal's disk.
    """
    cache = TokenCache(cfg.users.token_cache_dir, username)
    if dry_run:
        return f"would delete the token cache {cache.user_dir}" if os.path.lexists(cache.user_dir) else None
    return f"deleted the token cache {cache.user_dir}" if cache.remove() else None

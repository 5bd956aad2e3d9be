"""``ood-k8s doctor``'s identity checks: the site's identity provider's own (whatever ``auth.mode``
names brings them: :meth:`~ood_k8s.auth.provider.IdentityProvider.doctor_checks`) and, with
``--user``, the user's cached tokens."""

from __future__ import annotations

import os
import time
from typing import Callable

from ood_k8s.auth import provider
from ood_k8s.auth.tokencache import TokenCache
from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.doctor.report import Check, Context, one_line


def identity_provider(ctx: Context) -> list[Check]:
    """Doctor provider: the checks of the site's identity provider."""
    return provider.of(ctx.cfg).doctor_checks(ctx)


def check_tokens(cfg: Config, ident: Identity, clock: Callable[[], float] = time.time) -> Check:
    """The user's cached ID token is fresh, or can be refreshed without a new login."""
    title = "user tokens"
    try:
        tokens = TokenCache(cfg.users.token_cache_dir, ident.username, clock=clock).read()
    except OodK8sError as err:
        return Check(title, False, one_line(err), err.hint if os.geteuid() == 0 else "run ood-k8s doctor as root")
    except OSError as err:
        return Check(title, False, f"{cfg.users.token_cache_dir}: {err.strerror}", "run ood-k8s doctor as root")
    login = "the user must log in to the portal (the hook mints tokens at login)"
    if tokens is None:
        return Check(title, False, f"no tokens cached in {cfg.users.token_cache_dir}", login)
    now = clock()
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(tokens.refresh_expires_at))
    if tokens.id_valid(now):
        return Check(title, True, f"ID token valid for {int(tokens.id_expires_at - now) // 60} more min; "
                     f"refresh token until {until}")
    if tokens.refresh_valid(now):
        return Check(title, True, f"ID token expired, refreshed on next use (refresh token until {until})")
    return Check(title, False, f"ID and refresh tokens expired ({until})",
                 "the user must log out of the portal and log in again")


def user_tokens(ctx: Context) -> list[Check]:
    """Doctor provider (``--user``): the user's cached tokens."""
    return [check_tokens(ctx.cfg, ctx.ident, ctx.clock)] if ctx.ident is not None else []

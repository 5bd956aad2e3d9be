# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Identity providers: where users' ID tokens come from, chosen by the persisted mode string.

``auth.mode`` in the site configuration, and ``mode`` in every user's token cache, name an entry of
:data:`PROVIDERS`: an object implementing :class:`IdentityProvider` in the module that knows that
provider (``cognito`` -> :mod:`ood_k8s.cloud.aws.cognito`, ``oidc`` -> :mod:`ood_k8s.auth.oidc`).
Callers ask :func:`of` (by the site's mode) or :func:`get` (by a cache's mode) and never test the
mode themselves.  Providers are imported on first use, so the credential plugin, which kubectl
starts for every command, imports a provider only when it refreshes a token, and only that one.

Adding a provider is one module with an object implementing the Protocol, one line in
:data:`PROVIDERS`, and its settings section under ``auth`` in the configuration schema.
"""

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Protocol

from ood_k8s.core.errors import ConfigError

if TYPE_CHECKING:
    from ood_k8s.auth.tokencache import Tokens
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity
    from ood_k8s.doctor.report import Check, Context

# mode -> "module:attribute" of its IdentityProvider; loaded lazily by get().
PROVIDERS: Dict[str, str] = {
    "cognito": "ood_k8s.cloud.aws.cognito:PROVIDER",
    "oidc": "ood_k8s.auth.oidc:PROVIDER",
}


class Issuer(NamedTuple):
    """Who issues the ID tokens the API server accepts, and where cached ones must be refreshed."""

    url: str  # the tokens' ``iss``: the API server's issuerURL
    client_id: str  # the tokens' ``aud``: the API server's clientID
    token_endpoint: Optional[str]  # what a usable cache must name; None: any (discovered at refresh)


class Claims(NamedTuple):
    """The ID-token claims the API server reads the Kubernetes user and groups from."""

    username: str  # usernameClaim: its value must equal the portal username
    groups: str  # groupsClaim


class IdentityProvider(Protocol):
    """One identity provider: its settings' meaning, its tokens, its users and its doctor checks.

    Token methods return :class:`~ood_k8s.auth.tokencache.Tokens` whose ``mode`` is :attr:`mode`, so
    the credential plugin finds the provider again from the cache alone (it reads no site config).
    Failures raise :class:`~ood_k8s.core.errors.CredentialError` when only a new login helps and
    :class:`~ood_k8s.core.errors.IdentityProviderError` when the provider failed or refused.
    """

    mode: str  # the persisted name: auth.mode, and Tokens.mode in every cache it fills
    title: str  # how lines about it start: "Cognito: created Cognito user alice"
    manages_users: bool  # it has per-user accounts that ensure_user/user_state/delete_user act on

    def issuer(self, cfg: "Config") -> Issuer:
        """The issuer, audience and token endpoint the site's tokens must have."""

    def claims(self, cfg: "Config") -> Claims:
        """The username and groups claims of its ID tokens."""

    def fingerprint(self, cfg: "Config") -> Any:
        """What of its settings a user's provisioned state depends on (part of the desired-state
        hash): JSON-serialisable; a change re-provisions every user at their next login."""

    def config_problems(self, cfg: "Config") -> List[str]:
        """Problems of its settings that one setting's check cannot see, one line each."""

    def hook_exports(self, cfg: "Config") -> List[str]:
        """The variables the portal must export to the hook (``pun_pre_hook_exports``), without OOD_."""

    def portal_tokens(self, cfg: "Config", env: Mapping[str, str], *,
                      clock: Callable[[], float]) -> "Optional[Tokens]":
        """The tokens the portal handed the hook at login (``env``: the OOD_ exports), checked;
        None when it passed none (always, for a provider that mints)."""

    def mint(self, cfg: "Config", username: str, *, clock: Callable[[], float],
             sleep: Callable[[float], None]) -> "Tokens":
        """New tokens for ``username``, when the cache has none usable and the portal passed none."""

    def refresh(self, tokens: "Tokens", *, clock: Callable[[], float], sleep: Callable[[float], None]) -> "Tokens":
        """``tokens`` with a new ID token, from the cache's own fields (as the user: no site config)."""

    def ensure_user(self, cfg: "Config", ident: "Identity", *, dry_run: bool = False) -> List[str]:
        """Create or update the user at the provider; the changes made (or, dry, to be made)."""

    def user_state(self, cfg: "Config", username: str) -> str:
        """The user's account state at the provider, one word ("missing", "disabled", ...)."""

    def delete_user(self, cfg: "Config", username: str) -> bool:
        """Delete the user at the provider (revoking their tokens); False if there was none."""

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        """Its lines of ``ood-k8s doctor`` (the contract is in :mod:`ood_k8s.doctor.runner`)."""


_LOADED: Dict[str, IdentityProvider] = {}  # mode -> its provider, once imported


def modes() -> List[str]:
    """Every registered mode, in registration order (what ``auth.mode`` accepts)."""
    return list(PROVIDERS)


def _expected() -> str:
    return "one of " + ", ".join(repr(m) for m in PROVIDERS)


def check_mode(value: str) -> Optional[str]:
    """The configuration check of ``auth.mode``: None, or what was expected."""
    return None if value in PROVIDERS else _expected()


def register(mode: str, target: str) -> None:
    """Add (or replace) the provider of ``mode``: ``target`` is ``"module:attribute"``."""
    PROVIDERS[mode] = target
    _LOADED.pop(mode, None)


def unregister(mode: str) -> None:
    """Remove a provider :func:`register` added (tests)."""
    PROVIDERS.pop(mode, None)
    _LOADED.pop(mode, None)


def find(mode: str) -> "Optional[IdentityProvider]":
    """The provider of ``mode``, or None when no provider has that name.

    A token cache is the user's file: its ``mode`` only ever selects among registered providers.
    """
    found = _LOADED.get(mode)
    if found is None and mode in PROVIDERS:
        module, _, attribute = PROVIDERS[mode].partition(":")
        # __import__ with a fromlist returns the module itself; importlib would cost the plugin an import.
        found = _LOADED[mode] = getattr(__import__(module, fromlist=[attribute]), attribute)
    return found


def get(mode: str) -> "IdentityProvider":
    """The provider of ``mode``; a one-line ConfigError when there is none."""
    found = find(mode)
    if found is None:
        raise ConfigError(f"auth.mode: got {mode!r}, expected {_expected()}")
    return found


def of(cfg: "Config", overrides: "Optional[Mapping[str, IdentityProvider]]" = None) -> "IdentityProvider":
    """The site's provider (``auth.mode``); ``overrides`` replace registered ones by mode (tests)."""
    mode = cfg.auth.mode
    if overrides and mode in overrides:
        return overrides[mode]
    return get(mode)

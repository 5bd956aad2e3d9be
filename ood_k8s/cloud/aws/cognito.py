"""Amazon Cognito, admin side: the user, their groups, and tokens minted without any stored password.

Runs as root in the hook and admin commands, with the portal's AWS credentials.  boto3 is imported
lazily (it costs ~140 ms): the hook's fast path never reaches this module.

Minting: the portal already authenticated the user, so there is no password to check.  Harvard's
hook gave every user one hard-coded password; here each mint sets a fresh random password that
exists only in this process's memory between ``AdminSetUserPassword`` and ``AdminInitiateAuth``
(two calls, milliseconds apart), is never written or logged, and is useless afterwards because the
next mint replaces it.  Nobody -- not even root on the portal -- can reuse it to log in as the user.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from ood_k8s.auth.tokencache import Tokens
from ood_k8s.core import names
from ood_k8s.core.errors import IdentityProviderError
from ood_k8s.core.kube import backoff_delay

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity


def _log() -> Any:
    # logging costs ~5 ms to import; the hook's fast path never logs from here.
    import logging

    return logging.getLogger(__name__)


THROTTLED = {"TooManyRequestsException", "LimitExceededException", "ThrottlingException",
             "RequestLimitExceeded", "TooManyFailedAttemptsException"}
MAX_ATTEMPTS = 6
_PASSWORD_ALPHABETS = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "^$*.[]{}()?!@#%&/,><:;|_~=+-")


def issuer(cfg: Config) -> str:
    c = cfg.auth.cognito
    return f"https://cognito-idp.{c.region}.amazonaws.com/{c.user_pool_id}"


def api_endpoint(cfg: Config) -> str:
    c = cfg.auth.cognito
    return c.endpoint_url or f"https://cognito-idp.{c.region}.amazonaws.com/"


_CLIENTS: dict[tuple[str, str, float], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def client(cfg: Config) -> Any:
    """A boto3 ``cognito-idp`` client for the configured pool's region (and endpoint override).

    Clients are kept per (region, endpoint): building one costs ~0.2 s, and boto3 clients are
    thread-safe, so ``user sync`` threads share one.
    """
    # botocore logs request parameters -- passwords and tokens -- at DEBUG: pin its loggers above
    # that whatever the root level is (now or later), so no secret can reach syslog.
    import logging

    for name in ("botocore", "boto3", "urllib3"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET (0) would inherit a DEBUG root
            logger.setLevel(logging.INFO)
    c = cfg.auth.cognito
    key = (c.region, c.endpoint_url, cfg.cluster.request_timeout)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = _new_client(cfg)
        return _CLIENTS[key]


def _new_client(cfg: Config) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    c = cfg.auth.cognito
    # Retries are ours (throttling with an injectable sleep); botocore's would hide them.
    boto_cfg = BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                          read_timeout=cfg.cluster.request_timeout)
    return boto3.client("cognito-idp", region_name=c.region, endpoint_url=c.endpoint_url or None, config=boto_cfg)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", ""))
    return str(exc)


def call(cfg: Config, cli: Any, operation: str, *, sleep: Callable[[float], None] = time.sleep,
         **params: Any) -> dict[str, Any]:
    """``cli.<operation>(**params)``, retrying throttling with jittered exponential backoff.

    Cognito's refusals are re-raised as botocore ``ClientError`` for the caller to handle or
    :func:`explain`; transport failures become one-line :class:`IdentityProviderError`\\ s.  The
    parameters (which may hold a password) are never part of a message.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    for attempt in range(MAX_ATTEMPTS):
        try:
            return getattr(cli, operation)(**params)
        except ClientError as exc:
            code = _code(exc)
            if code in THROTTLED and attempt < MAX_ATTEMPTS - 1:
                delay = backoff_delay(attempt, 0.25, 8.0)
                _log().info("Cognito throttled %s (%s); retrying in %.2f s", operation, code, delay)
                sleep(delay)
                continue
            raise
        except BotoCoreError as exc:
            if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
                raise IdentityProviderError("the portal has no AWS credentials for Cognito's admin API",
                                            "give the portal host an IAM role (or AWS_* credentials for root) "
                                            "allowed cognito-idp:Admin* on the pool") from None
            if attempt < MAX_ATTEMPTS - 1 and type(exc).__name__ in ("EndpointConnectionError",
                                                                       "ConnectTimeoutError", "ReadTimeoutError"):
                sleep(min(8.0, 0.25 * 2 ** attempt))
                continue
            raise IdentityProviderError(f"cannot reach Cognito in {cfg.auth.cognito.region} ({type(exc).__name__})",
                                        "check the portal's network path to Cognito and "
                                        "auth.cognito.region/endpoint_url; try again in a minute") from None
    raise AssertionError("unreachable")


def explain(cfg: Config, exc: BaseException, username: str) -> IdentityProviderError:
    """A one-line error for a Cognito refusal, naming what to fix."""
    c = cfg.auth.cognito
    code, message = _code(exc), _message(exc)
    low = message.lower()
    if code == "ResourceNotFoundException":
        if "client" in low or (c.client_id and message.strip() == c.client_id):
            return IdentityProviderError(f"Cognito app client {c.client_id} does not exist in pool "
                                         f"{c.user_pool_id}", "check auth.cognito.client_id")
        if "pool" in low:
            return IdentityProviderError(f"Cognito user pool {c.user_pool_id} does not exist in {c.region}",
                                         "check auth.cognito.user_pool_id and auth.cognito.region")
    if code == "UserNotFoundException":
        return IdentityProviderError(f"Cognito user {username} does not exist in pool {c.user_pool_id}",
                                     f"run 'ood-k8s user setup {username}' (or log in again)")
    if code == "NotAuthorizedException" and "disabled" in low:
        return IdentityProviderError(f"Cognito user {username} is disabled",
                                     "an administrator disabled the account; re-enable it in the user pool "
                                     "if that was a mistake")
    if code == "NotAuthorizedException" and "secret" in low:
        return IdentityProviderError(f"Cognito app client {c.client_id} has a client secret",
                                     "use a public app client (no secret): users refresh their own tokens")
    if (code == "InvalidParameterException" and "flow" in low) or code == "InvalidUserPoolConfigurationException":
        return IdentityProviderError(f"Cognito app client {c.client_id} does not allow the needed auth flows",
                                     "enable ALLOW_ADMIN_USER_PASSWORD_AUTH and ALLOW_REFRESH_TOKEN_AUTH")
    if code in THROTTLED:
        return IdentityProviderError("Cognito is throttling this portal",
                                     "try again in a minute; for a whole class use 'ood-k8s user sync'")
    if code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
                "ExpiredTokenException"):
        return IdentityProviderError(f"the portal's AWS credentials may not manage Cognito pool {c.user_pool_id} "
                                     f"({code})", "grant the portal role cognito-idp:Admin* on the pool")
    # Cognito messages never contain passwords or tokens, only names; keep them to one line.
    return IdentityProviderError(f"Cognito refused the request for {username}: {code or 'error'} "
                                 f"{' '.join(message.split())[:160]}", "check the auth.cognito settings")


# --- users and groups ----------------------------------------------------------------------------


def _get_user(cfg: Config, cli: Any, username: str, sleep: Callable[[float], None]) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return call(cfg, cli, "admin_get_user", sleep=sleep, UserPoolId=cfg.auth.cognito.user_pool_id,
                    Username=username)
    except ClientError as exc:
        if _code(exc) == "UserNotFoundException":
            return None
        raise explain(cfg, exc, username) from None


def ensure_user(cfg: Config, ident: Identity, *, cli: Any = None,
                sleep: Callable[[float], None] = time.sleep, dry_run: bool = False) -> list[str]:
    """Create the Cognito user if missing and mirror group memberships; return the changes made.

    Only Cognito groups named in ``auth.cognito.group_map`` are managed: a user gains those whose
    Unix group they are in and loses those whose Unix group they left; other groups are untouched.
    A disabled user is refused, not re-enabled: disabling is how an administrator locks someone out.
    """
    from botocore.exceptions import ClientError

    username = names.check_username(ident.username)
    c = cfg.auth.cognito
    cli = cli if cli is not None else client(cfg)
    changes: list[str] = []
    pool = c.user_pool_id
    try:
        user = _get_user(cfg, cli, username, sleep)
        if user is None:
            attributes = [{"Name": k, "Value": v.format(user=username, uid=ident.uid, gid=ident.gid)}
                          for k, v in sorted(c.attributes.items())]
            if not dry_run:
                try:
                    call(cfg, cli, "admin_create_user", sleep=sleep, UserPoolId=pool, Username=username,
                         UserAttributes=attributes, MessageAction="SUPPRESS")
                except ClientError as exc:
                    if _code(exc) != "UsernameExistsException":  # another hook created it meanwhile
                        raise
            changes.append(f"created Cognito user {username}")
        elif not user.get("Enabled", True):
            raise IdentityProviderError(f"Cognito user {username} is disabled",
                                        "an administrator disabled the account; re-enable it in the user pool "
                                        "if that was a mistake")
        wanted = {cg for ug, cg in c.group_map.items() if ug in ident.groups}
        managed = set(c.group_map.values())
        current: set[str] = set()
        if user is not None:
            token: str | None = None
            while True:
                page = call(cfg, cli, "admin_list_groups_for_user", sleep=sleep, UserPoolId=pool, Username=username,
                            **({"NextToken": token} if token else {}))
                current.update(g["GroupName"] for g in page.get("Groups", []))
                token = page.get("NextToken")
                if not token:
                    break
        for group in sorted(wanted - current):
            if not dry_run:
                _add_to_group(cfg, cli, username, group, sleep, changes)
            changes.append(f"added {username} to Cognito group {group}")
        for group in sorted((current & managed) - wanted):
            if not dry_run:
                call(cfg, cli, "admin_remove_user_from_group", sleep=sleep, UserPoolId=pool, Username=username,
                     GroupName=group)
            changes.append(f"removed {username} from Cognito group {group}")
    except ClientError as exc:
        raise explain(cfg, exc, username) from None
    return changes


def _add_to_group(cfg: Config, cli: Any, username: str, group: str, sleep: Callable[[float], None],
                  changes: list[str]) -> None:
    from botocore.exceptions import ClientError

    pool = cfg.auth.cognito.user_pool_id
    try:
        call(cfg, cli, "admin_add_user_to_group", sleep=sleep, UserPoolId=pool, Username=username, GroupName=group)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException" or "pool" in _message(exc).lower():
            raise
        # A mapped group that does not exist yet: create it (the map is the admin's declaration).
        try:
            call(cfg, cli, "create_group", sleep=sleep, UserPoolId=pool, GroupName=group,
                 Description="managed by ood-k8s (auth.cognito.group_map)")
            changes.append(f"created Cognito group {group}")
        except ClientError as exc2:
            if _code(exc2) != "GroupExistsException":
                raise
        call(cfg, cli, "admin_add_user_to_group", sleep=sleep, UserPoolId=pool, Username=username, GroupName=group)


def user_state(cfg: Config, username: str, *, cli: Any = None, sleep: Callable[[float], None] = time.sleep) -> str:
    """"missing", "disabled", or Cognito's UserStatus ("CONFIRMED", "FORCE_CHANGE_PASSWORD", ...)."""
    names.check_username(username)
    cli = cli if cli is not None else client(cfg)
    user = _get_user(cfg, cli, username, sleep)
    if user is None:
        return "missing"
    if not user.get("Enabled", True):
        return "disabled"
    return str(user.get("UserStatus", "UNKNOWN"))


def delete_user(cfg: Config, username: str, *, cli: Any = None, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Delete the Cognito user (which also revokes their refresh tokens). False if there was none."""
    from botocore.exceptions import ClientError

    names.check_username(username)
    cli = cli if cli is not None else client(cfg)
    try:
        call(cfg, cli, "admin_delete_user", sleep=sleep, UserPoolId=cfg.auth.cognito.user_pool_id, Username=username)
    except ClientError as exc:
        if _code(exc) == "UserNotFoundException":
            return False
        raise explain(cfg, exc, username) from None
    return True


# --- tokens --------------------------------------------------------------------------------------


def one_time_password(length: int = 64) -> str:
    """A random password meeting any Cognito password policy (every character class, long)."""
    chars = [secrets.choice(alphabet) for alphabet in _PASSWORD_ALPHABETS]
    everything = "".join(_PASSWORD_ALPHABETS)
    chars += [secrets.choice(everything) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def mint_tokens(cfg: Config, username: str, *, cli: Any = None, sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.time) -> Tokens:
    """Fresh ID and refresh tokens for ``username`` (see the module docstring for why this is safe)."""
    from botocore.exceptions import ClientError

    from ood_k8s.auth.oidc import claims

    names.check_username(username)
    c = cfg.auth.cognito
    cli = cli if cli is not None else client(cfg)
    result: dict[str, Any] | None = None
    # Two hooks for one user on two portals can interleave set/auth; the loser just sets again.
    for attempt in range(3):
        password = one_time_password()
        try:
            call(cfg, cli, "admin_set_user_password", sleep=sleep, UserPoolId=c.user_pool_id, Username=username,
                 Password=password, Permanent=True)
            answer = call(cfg, cli, "admin_initiate_auth", sleep=sleep, UserPoolId=c.user_pool_id,
                          ClientId=c.client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": username, "PASSWORD": password})
        except ClientError as exc:
            code, low = _code(exc), _message(exc).lower()
            if code == "NotAuthorizedException" and "incorrect" in low and attempt < 2:
                continue
            raise explain(cfg, exc, username) from None
        finally:
            del password
        if answer.get("ChallengeName"):
            raise IdentityProviderError(f"Cognito asked {username} for a {answer['ChallengeName']} challenge",
                                        "turn off MFA and custom challenges for this app client's users")
        result = answer.get("AuthenticationResult") or {}
        break
    if not result or not result.get("IdToken") or not result.get("RefreshToken"):
        raise IdentityProviderError(f"Cognito returned no ID and refresh token for {username}",
                                    "check that the app client allows ALLOW_REFRESH_TOKEN_AUTH")
    now = clock()
    id_claims = claims(result["IdToken"])
    got_user = id_claims.get("cognito:username")
    if got_user is not None and got_user != username:
        raise IdentityProviderError(f"Cognito issued a token for {got_user!r} when asked for {username!r}",
                                    "usernames must equal portal usernames (no aliases); check the pool settings")
    exp = id_claims.get("exp")
    return Tokens(
        id_token=result["IdToken"],
        id_expires_at=float(exp) if isinstance(exp, (int, float)) else now + float(result.get("ExpiresIn", 3600)),
        refresh_token=result["RefreshToken"],
        refresh_expires_at=now + c.refresh_token_days * 86400,
        mode="cognito",
        issuer=issuer(cfg),
        client_id=c.client_id,
        token_endpoint=api_endpoint(cfg),
        margin=cfg.auth.id_token_margin,
        updated_at=now,
    )

"""Amazon Cognito, admin side: the user, their groups, and tokens minted without any stored password.

Runs as root in the hook (when a user is new or changed, or their tokens must be minted) and in
admin commands, with the portal's AWS credentials; :mod:`ood_k8s.cloud.aws.cognito` (the identity
provider, on the hot paths) reaches it only then.  boto3 is imported lazily (it costs ~140 ms).

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
from ood_k8s.auth.tokens import claims
from ood_k8s.cloud.aws.cognito import MODE, api_endpoint, issuer
from ood_k8s.core import names
from ood_k8s.core.errors import IdentityProviderError
from ood_k8s.core.kube import backoff_delay

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity
    from ood_k8s.doctor.report import Check, Context


def _log() -> Any:
    # logging costs ~5 ms to import; the hook's fast path never logs from here.
    import logging

    return logging.getLogger(__name__)


THROTTLED = {"TooManyRequestsException", "LimitExceededException", "ThrottlingException",
             "RequestLimitExceeded", "TooManyFailedAttemptsException"}
MAX_ATTEMPTS = 6
_PASSWORD_ALPHABETS = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "^$*.[]{}()?!@#%&/,><:;|_~=+-")


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
    from ood_k8s.cloud.aws.clients import client as aws_client

    c = cfg.auth.cognito
    # Retries are ours (throttling with an injectable sleep); botocore's would hide them.
    return aws_client("cognito-idp", region=c.region, endpoint_url=c.endpoint_url,
                      read_timeout=cfg.cluster.request_timeout, attempts=1)


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
            from ood_k8s.cloud.aws.errors import transport

            raise IdentityProviderError(f"cannot reach Cognito in {cfg.auth.cognito.region}: {transport(exc)}",
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


def _managed(user: dict[str, Any], attribute: str) -> bool:
    return any(a.get("Name") == attribute and a.get("Value") == "1" for a in user.get("UserAttributes", []))


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
            if c.managed_attribute:  # what tells a user ood-k8s made from one a stranger registered
                attributes.append({"Name": c.managed_attribute, "Value": "1"})
            if not dry_run:
                try:
                    call(cfg, cli, "admin_create_user", sleep=sleep, UserPoolId=pool, Username=username,
                         UserAttributes=attributes, MessageAction="SUPPRESS")
                except ClientError as exc:
                    if _code(exc) != "UsernameExistsException":  # another hook created it meanwhile
                        raise
            changes.append(f"{'would create' if dry_run else 'created'} Cognito user {username}")
        elif not user.get("Enabled", True):
            raise IdentityProviderError(f"Cognito user {username} is disabled",
                                        "an administrator disabled the account; re-enable it in the user pool "
                                        "if that was a mistake")
        elif c.managed_attribute and not _managed(user, c.managed_attribute):
            raise IdentityProviderError(
                f"Cognito user {username} exists but was not created by ood-k8s (no {c.managed_attribute}): "
                "someone may have registered the name first", "verify the account; delete it (ood-k8s recreates it) "
                f"or mark it: aws cognito-idp admin-update-user-attributes --user-attributes "
                f"Name={c.managed_attribute},Value=1")
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
            changes.append(f"{'would add' if dry_run else 'added'} {username} to Cognito group {group}")
        for group in sorted((current & managed) - wanted):
            if not dry_run:
                call(cfg, cli, "admin_remove_user_from_group", sleep=sleep, UserPoolId=pool, Username=username,
                     GroupName=group)
            changes.append(f"{'would remove' if dry_run else 'removed'} {username} from Cognito group {group}")
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
        mode=MODE,
        issuer=issuer(cfg),
        client_id=c.client_id,
        token_endpoint=api_endpoint(cfg),
        margin=cfg.auth.id_token_margin,
        updated_at=now,
    )


# --- ood-k8s doctor ------------------------------------------------------------------------------

_FLOWS = ("ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def check_cognito(cfg: Config, client: Any) -> list[Check]:
    """The user pool exists; the app client is public, has the auth flows the hook and plugin use, and
    token lifetimes that fit the configuration."""
    # Deferred: the report's dataclasses cost ~25 ms, and the hook imports this module to mint.
    from ood_k8s.cloud.aws import errors as aws
    from ood_k8s.doctor.report import Check

    c = cfg.auth.cognito
    if cfg.auth.mode != MODE:
        return [Check("Cognito", None, f"auth.mode is {cfg.auth.mode}")]
    try:
        described = client.describe_user_pool(UserPoolId=c.user_pool_id)["UserPool"]
    except aws.client_errors() as err:
        return [Check("Cognito user pool", False, f"{c.user_pool_id} in {c.region}: {aws.code(err)}",
                      aws.fix(err, "set auth.cognito.user_pool_id and auth.cognito.region"))]
    pool = _check_pool(c, described)
    try:
        app = client.describe_user_pool_client(UserPoolId=c.user_pool_id, ClientId=c.client_id)["UserPoolClient"]
    except aws.client_errors() as err:
        return [pool, Check("Cognito app client", False, f"{c.client_id}: {aws.code(err)}",
                            aws.fix(err, "set auth.cognito.client_id to an app client of that pool"))]
    problems, fixes = [], []
    if app.get("ClientSecret"):
        problems.append("it has a client secret")
        fixes.append("create a public app client (no secret): refresh happens as the user, and a secret must "
                     "never be written into a user's kubeconfig")
    flows = app.get("ExplicitAuthFlows") or []
    absent = [f for f in _FLOWS if f not in flows]
    if absent:
        problems.append("auth flows " + ", ".join(absent) + " not enabled")
        fixes.append("enable " + " and ".join(_FLOWS) + " on the app client")
    user_flows = [f for f in flows if f not in _FLOWS]
    if not flows or user_flows:
        problems.append("it allows user-initiated sign-in (" + (", ".join(user_flows) or "no ExplicitAuthFlows: all")
                        + "): with self sign-up a stranger can claim a username")
        fixes.append("allow only " + " and ".join(_FLOWS))
    if c.managed_attribute in (app.get("WriteAttributes") or []):
        problems.append(f"it lets users write {c.managed_attribute}, ood-k8s's mark of the users it made")
        fixes.append(f"remove {c.managed_attribute} from the app client's WriteAttributes")
    units = app.get("TokenValidityUnits") or {}
    refresh_days = app.get("RefreshTokenValidity", 30) * _UNIT_SECONDS[units.get("RefreshToken", "days")] / 86400
    id_seconds = app.get("IdTokenValidity", 60 if units.get("IdToken") == "minutes" else 1) * \
        _UNIT_SECONDS[units.get("IdToken", "hours")]
    if abs(refresh_days - c.refresh_token_days) > 0.01:
        problems.append(f"refresh tokens last {refresh_days:g} days, the configuration says {c.refresh_token_days}")
        fixes.append(f"set auth.cognito.refresh_token_days: {refresh_days:g} (or change the app client)")
    if id_seconds <= cfg.auth.id_token_margin:
        problems.append(f"ID tokens last {id_seconds} s, not more than auth.id_token_margin "
                        f"({cfg.auth.id_token_margin} s): every call would refresh")
        fixes.append("lengthen the app client's ID token validity (1 hour is usual)")
    detail = f"{c.client_id}: " + ("; ".join(problems) if problems else
                                   f"public, {' and '.join(_FLOWS)}, ID tokens {id_seconds // 60} min, "
                                   f"refresh tokens {refresh_days:g} days")
    return [pool, Check("Cognito app client", not problems, detail, "; ".join(fixes))]


def _check_pool(c: Any, pool: dict[str, Any]) -> Check:
    """No self sign-up (a stranger could register a username before its owner's first login), and the
    attribute that marks ood-k8s's users is defined."""
    from ood_k8s.doctor.report import Check

    problems, fixes = [], []
    if not (pool.get("AdminCreateUserConfig") or {}).get("AllowAdminCreateUserOnly"):
        problems.append("it allows self sign-up")
        fixes.append("set AdminCreateUserConfig.AllowAdminCreateUserOnly true (aws cognito-idp update-user-pool)")
    defined = {a["Name"] for a in pool.get("SchemaAttributes") or []}  # custom ones as 'custom:NAME'
    if c.managed_attribute and c.managed_attribute not in defined:
        problems.append(f"it does not define {c.managed_attribute}")
        fixes.append(f"add the custom attribute {c.managed_attribute.removeprefix('custom:')} (String, mutable)")
    detail = f"{c.user_pool_id} in {c.region}" + (": " + "; ".join(problems) if problems else "")
    return Check("Cognito user pool", not problems, detail, "; ".join(fixes))


def doctor_checks(ctx: Context) -> list[Check]:
    """The doctor's Cognito lines, through the run's ``cognito`` client (:func:`client` by default)."""
    return check_cognito(ctx.cfg, ctx.client("cognito"))


# What the portal's role must allow for the calls above (``cluster render --only iam``).
IAM_ACTIONS = [
    "cognito-idp:AdminGetUser", "cognito-idp:AdminCreateUser", "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminSetUserPassword", "cognito-idp:AdminInitiateAuth", "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:AdminAddUserToGroup", "cognito-idp:AdminRemoveUserFromGroup", "cognito-idp:CreateGroup",
    "cognito-idp:DescribeUserPool", "cognito-idp:DescribeUserPoolClient"]


def iam_statements(cfg: Config) -> list[dict[str, Any]]:
    c = cfg.auth.cognito
    return [{"Sid": "CognitoUsers", "Effect": "Allow", "Action": IAM_ACTIONS,
             "Resource": f"arn:aws:cognito-idp:{cfg.cluster.aws_region}:*:userpool/{c.user_pool_id}"}]

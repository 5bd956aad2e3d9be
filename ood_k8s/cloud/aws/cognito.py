# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Amazon Cognito as the identity provider (``auth.mode: cognito``), and its user-side refresh.

The hook reaches this module at every login (is the cached token still Cognito's, for this pool
and app client?) and the credential plugin when a token needs refreshing, so it imports nothing
heavy: what needs boto3 and the portal's AWS credentials -- users, groups, minting, the doctor's
look at the pool -- is :mod:`ood_k8s.cloud.aws.cognito_admin`, imported only when it is used.

Refresh is a plain unsigned HTTPS POST of ``InitiateAuth``/``REFRESH_TOKEN_AUTH``
(``X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth``) with :mod:`urllib.request`:
the call needs no AWS signature, and importing boto3 would cost ~140 ms in a process whose whole
job is to print one token.  urllib honours HTTPS_PROXY/NO_PROXY like boto3 does.
"""

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional

from ood_k8s.auth.provider import Claims, Issuer
from ood_k8s.auth.tokencache import Tokens
from ood_k8s.auth.tokens import claims
from ood_k8s.core.errors import CredentialError, IdentityProviderError

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity
    from ood_k8s.doctor.report import Check, Context

MODE = "cognito"
COGNITO_TARGET = "AWSCognitoIdentityProviderService.InitiateAuth"
_TRANSIENT = {"TooManyRequestsException", "LimitExceededException", "ThrottlingException",
              "InternalErrorException", "ServiceUnavailable"}


def issuer(cfg: "Config") -> str:
    c = cfg.auth.cognito
    return f"https://cognito-idp.{c.region}.amazonaws.com/{c.user_pool_id}"


def api_endpoint(cfg: "Config") -> str:
    c = cfg.auth.cognito
    return c.endpoint_url or f"https://cognito-idp.{c.region}.amazonaws.com/"


# --- refreshing, as the user -----------------------------------------------------------------------


def _answer(data: bytes) -> Dict[str, Any]:
    try:
        answer = json.loads(data) if data else {}
    except ValueError:
        answer = {}
    return answer if isinstance(answer, dict) else {}


def _initiate_auth(tokens: Tokens, sleep: Callable[[float], None], timeout: float) -> Dict[str, Any]:
    """Cognito's answer to REFRESH_TOKEN_AUTH, retrying what may pass; refusals become our errors."""
    import urllib.error
    import urllib.request

    body = json.dumps({"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": tokens.client_id,
                       "AuthParameters": {"REFRESH_TOKEN": tokens.refresh_token}}).encode()
    if not tokens.token_endpoint.startswith(("https://", "http://")):
        raise CredentialError(f"the token cache names no usable Cognito endpoint ({tokens.token_endpoint!r})")
    request = urllib.request.Request(tokens.token_endpoint, data=body, method="POST", headers={  # noqa: S310
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": COGNITO_TARGET})
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
        answer = _answer(data)
        if status == 200:
            return answer
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
    raise AssertionError("unreachable")


def refresh(tokens: Tokens, *, clock: Callable[[], float], sleep: Callable[[float], None],
            timeout: float = 10.0) -> Tokens:
    """``tokens`` with a new ID token from Cognito (and a new refresh token if the client rotates them)."""
    result = _initiate_auth(tokens, sleep, timeout).get("AuthenticationResult") or {}
    id_token = result.get("IdToken") if isinstance(result, dict) else None
    if not isinstance(id_token, str) or not id_token:
        raise IdentityProviderError("Cognito returned no ID token on refresh", "try again in a minute")
    now = clock()
    exp = claims(id_token).get("exp")
    expires_in = result.get("ExpiresIn", 3600)
    changes: Dict[str, object] = {
        "id_token": id_token,
        "id_expires_at": float(exp) if isinstance(exp, (int, float)) else now + float(expires_in),
        "updated_at": now,
    }
    if isinstance(result.get("RefreshToken"), str) and result["RefreshToken"]:
        changes["refresh_token"] = result["RefreshToken"]  # refresh-token rotation enabled on the client
    return tokens.replace(**changes)


# --- the provider ------------------------------------------------------------------------------------


class CognitoProvider:
    """Amazon Cognito as an :class:`~ood_k8s.auth.provider.IdentityProvider`.

    The admin side is imported in each method that needs it (boto3, ~140 ms): a returning user's
    login and the plugin's refresh never do.
    """

    mode = MODE
    title = "Cognito"
    manages_users = True

    def iam_statements(self, cfg: "Config") -> List[Dict[str, Any]]:
        """What the portal's role must allow (``cluster render --only iam``)."""
        from ood_k8s.cloud.aws import cognito_admin

        return cognito_admin.iam_statements(cfg)

    def issuer(self, cfg: "Config") -> Issuer:
        return Issuer(issuer(cfg), cfg.auth.cognito.client_id, api_endpoint(cfg))

    def claims(self, cfg: "Config") -> Claims:
        return Claims("cognito:username", "cognito:groups")

    def fingerprint(self, cfg: "Config") -> Any:
        from ood_k8s.config import to_dict

        return to_dict(cfg.auth.cognito, redact=False)  # the attributes and group map shape the user

    def config_problems(self, cfg: "Config") -> List[str]:
        return []

    def hook_exports(self, cfg: "Config") -> List[str]:
        return []  # the hook mints tokens itself with the admin API: nothing to pass

    def portal_tokens(self, cfg: "Config", env: Mapping[str, str], *,
                      clock: Callable[[], float]) -> Optional[Tokens]:
        return None

    def mint(self, cfg: "Config", username: str, *, clock: Callable[[], float],
             sleep: Callable[[float], None]) -> Tokens:
        from ood_k8s.cloud.aws import cognito_admin

        return cognito_admin.mint_tokens(cfg, username, sleep=sleep, clock=clock)

    def refresh(self, tokens: Tokens, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> Tokens:
        return refresh(tokens, clock=clock, sleep=sleep)

    def ensure_user(self, cfg: "Config", ident: "Identity", *, dry_run: bool = False) -> List[str]:
        from ood_k8s.cloud.aws import cognito_admin

        return cognito_admin.ensure_user(cfg, ident, dry_run=dry_run)

    def user_state(self, cfg: "Config", username: str) -> str:
        from ood_k8s.cloud.aws import cognito_admin

        return cognito_admin.user_state(cfg, username)

    def delete_user(self, cfg: "Config", username: str) -> bool:
        from ood_k8s.cloud.aws import cognito_admin

        return cognito_admin.delete_user(cfg, username)

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        from ood_k8s.cloud.aws import cognito_admin

        return cognito_admin.doctor_checks(ctx)


PROVIDER = CognitoProvider()

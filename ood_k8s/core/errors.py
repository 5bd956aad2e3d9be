"""One exception type per failure kind, each rendered as a single actionable line.

Every error raised on purpose by ood-k8s derives from :class:`OodK8sError`.  Entry points
(CLI, psij shim, hook, credential plugin) catch that base class, print ``str(err)`` -- which is
always one line: what went wrong, then what to do -- and exit with ``err.exit_code``.  Anything
else is a bug, which :func:`ood_k8s.core.process.run_guarded` reports as an internal error.
"""

from typing import List, Optional


class OodK8sError(Exception):
    """Base class. ``message`` says what went wrong, ``hint`` what to do about it."""

    exit_code = 1
    default_hint = ""

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        # Newlines would split the one-line contract (and could forge log lines).
        self.message = " ".join(str(message).split())
        self.hint = " ".join((hint if hint is not None else self.default_hint).split())
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class ConfigError(OodK8sError):
    """The site configuration is missing, unreadable or invalid."""

    exit_code = 78  # EX_CONFIG
    default_hint = "fix the file and check it with 'ood-k8s config check'"

    def __init__(self, message: str, hint: Optional[str] = None, problems: Optional[List[str]] = None):
        super().__init__(message, hint)
        self.problems = problems or []


class UsageError(OodK8sError):
    """A request is malformed: bad job spec, bad username, bad memory string, ..."""

    exit_code = 2


class NotEntitled(UsageError):
    """The request is well-formed but the user's groups or the profile's limits refuse it."""


class RenderError(OodK8sError):
    """A template failed to render or its output is not a valid Kubernetes object."""


class SecurityError(OodK8sError):
    """Refused because acting would be unsafe (a symlink, a foreign owner, a root uid...)."""

    exit_code = 77  # EX_NOPERM


# --- Kubernetes API errors -------------------------------------------------------------------


class KubeError(OodK8sError):
    """Base for answers of the Kubernetes API server (and failures to reach it)."""

    status = 0
    reason = ""

    def __init__(self, message: str, hint: Optional[str] = None, status: int = 0, reason: str = ""):
        super().__init__(message, hint)
        self.status = status or type(self).status
        self.reason = reason or type(self).reason


class NotFound(KubeError):
    status, reason = 404, "NotFound"


class AlreadyExists(KubeError):
    status, reason = 409, "AlreadyExists"


class Conflict(KubeError):
    status, reason = 409, "Conflict"
    default_hint = "someone else changed the object at the same time; run the command again"


class Invalid(KubeError):
    status, reason = 422, "Invalid"


class Forbidden(KubeError):
    status, reason = 403, "Forbidden"
    default_hint = "ask your administrator to run 'ood-k8s doctor' for the missing permission"


class Unauthorized(KubeError):
    status, reason = 401, "Unauthorized"
    default_hint = "log out of the portal and log in again to renew your credentials"


class Unavailable(KubeError):
    """Unreachable, timing out, throttling or failing (5xx) after all retries."""

    status, reason = 503, "ServiceUnavailable"
    default_hint = "the cluster may be down or unreachable; try again in a minute"


class NotLeader(OodK8sError):
    """The agent lost its leadership (its Lease unrenewed past agent.renew_deadline) during a pass."""

    default_hint = "another agent leads now; nothing more is done in this pass"


# --- identity provider / credentials ----------------------------------------------------------


class CredentialError(OodK8sError):
    """No usable token: the refresh token expired or was revoked, the cache is unusable..."""

    default_hint = "log out of the portal and log in again"


class IdentityProviderError(OodK8sError):
    """Cognito or the OIDC provider refused or failed (disabled user, unknown pool, throttled)."""


class CloudError(OodK8sError):
    """An AWS call other than Cognito failed (EFS access points...)."""


class DeadlineExceeded(OodK8sError):
    """A whole operation (the login hook) ran past its deadline, e.g. a dependency that never answers."""

    exit_code = 69  # EX_UNAVAILABLE

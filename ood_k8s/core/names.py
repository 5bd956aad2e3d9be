"""Portal usernames -> Kubernetes names. The same functions serve the adapter, the hook and the CLI.

Guarantees (tested exhaustively in tests/core/test_names.py):

* :func:`slug` always returns a DNS-1123 label of at most ``max_len`` characters.
* A username that already is such a label, has no ``--`` and fits stays as it is (readable).
* Any other username becomes ``<readable stem>--<10 hex of sha256(username)>``.  Only this form
  contains ``--``, so a readable name never equals a hashed one, and two hashed names collide only
  if their stems *and* 40-bit hashes collide.
* :func:`slug` is a pure function of the username: every host computes the same names.

:func:`check_username` decides what may be provisioned at all.  It refuses anything that could act
on a path or a shell (``/``, ``..``, NUL, control characters, white space, a leading ``-``) and
anything outside the portable user-name alphabet; uppercase, ``.`` and ``@`` are allowed (LDAP and
e-mail style names) and simply get a hashed slug.
"""

import re
from typing import NamedTuple

from ood_k8s.core.errors import UsageError
from ood_k8s.core.shapes import MAX_LABEL, is_dns_label
from ood_k8s.core.vocab import MANAGED_BY, MANAGED_BY_KEY, USER_LABEL, USERNAME_ANNOTATION

HASH_LEN = 10
MAX_USERNAME = 64

_USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")


def slug(username: str, max_len: int = 40) -> str:
    """A DNS-1123 label for ``username`` (see the module guarantees)."""
    if max_len < HASH_LEN + 3:
        raise ValueError("max_len too small to hold a hashed slug")
    if is_dns_label(username, max_len) and "--" not in username:
        return username
    import hashlib  # deferred: most usernames are labels already, and every process imports this module

    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]
    stem = re.sub(r"[^a-z0-9]+", "-", username.lower()).strip("-")
    stem = stem[: max_len - HASH_LEN - 2].strip("-")
    return f"{stem}--{digest}" if stem else f"u--{digest}"


def printable(value: str) -> str:
    # Only for refusals: the unicode_escape codec is an import of its own on every poll otherwise.
    return value.encode("unicode_escape").decode("ascii")[:80]


def check_username(username: str) -> str:
    """Return ``username`` if it may be provisioned, else raise UsageError saying why."""
    if not isinstance(username, str) or not username:
        raise UsageError("empty username", "pass the portal username, e.g. --user alice")
    if len(username) > MAX_USERNAME:
        raise UsageError(f"username '{printable(username)}...' is {len(username)} characters long",
                         f"usernames may have at most {MAX_USERNAME} characters")
    if "/" in username or ".." in username or not _USERNAME.fullmatch(username):
        raise UsageError(f"username '{printable(username)}' is not a valid portal username",
                         "use letters, digits, '_', '-', '.', '@' only (no '/', '..', spaces, control or "
                         "non-ASCII characters, no leading '-' or '.')")
    return username


class UserNames(NamedTuple):
    """Every Kubernetes name derived from one portal user.

    A NamedTuple rather than a frozen dataclass: the credential plugin (one process per kubectl
    command) imports this module, and dataclasses would be the largest part of its start-up.
    """

    username: str
    slug: str
    namespace: str
    rbac_user: str

    @property
    def labels(self) -> dict[str, str]:
        return {MANAGED_BY_KEY: MANAGED_BY, USER_LABEL: self.slug}

    @property
    def annotations(self) -> dict[str, str]:
        return {USERNAME_ANNOTATION: self.username}

    @property
    def selector(self) -> str:
        """Label selector matching every object ood-k8s made for this user."""
        return f"{MANAGED_BY_KEY}={MANAGED_BY},{USER_LABEL}={self.slug}"


def for_user(username: str, namespace_prefix: str = "ood-", rbac_prefix: str = "ood:") -> UserNames:
    """Names for ``username`` (which must pass :func:`check_username`)."""
    check_username(username)
    s = slug(username, max_len=MAX_LABEL - len(namespace_prefix))
    return UserNames(username=username, slug=s, namespace=namespace_prefix + s,
                     rbac_user=rbac_prefix + username)


# --- jobs ----------------------------------------------------------------------------------------

JOB_ID_MAX = 40  # leaves room for child suffixes within a 63-character label
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def job_id(job_name: str, random_bytes: bytes) -> str:
    """``<readable name>-<8 base36 chars>``: a DNS label used as the pod's name and the OOD job id."""
    n = int.from_bytes(random_bytes, "big")
    suffix = ""
    for _ in range(8):
        n, r = divmod(n, 36)
        suffix += _B36[r]
    stem = re.sub(r"[^a-z0-9]+", "-", (job_name or "job").lower()).strip("-")[: JOB_ID_MAX - 9].strip("-")
    if not stem or not stem[0].isalpha():
        stem = ("job-" + stem).strip("-")[: JOB_ID_MAX - 9].strip("-")
    return f"{stem}-{suffix}"


def check_job_id(value: str) -> str:
    """Refuse anything that is not a job id before it is put into an API path."""
    if not isinstance(value, str) or not is_dns_label(value, JOB_ID_MAX):
        shown = str(value).encode("unicode_escape").decode("ascii")[:80]
        raise UsageError(f"Invalid job id specified: '{shown}'",
                         "job ids look like 'jupyter-0a1b2c3d' (see 'ood-k8s job list')")
    return value


def job_children(job: str) -> dict[str, str]:
    """Names of the objects a job may own besides its pod."""
    return {"secret": f"{job}-secret", "configmap": f"{job}-files", "service": f"{job}-svc"}

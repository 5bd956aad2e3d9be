"""Per-user EFS access points: found again on every login, created once, never duplicated.

An access point pins every NFS operation made through it to one POSIX identity and one root
directory (REFERENCE §7), so a pod mounting it can neither leave the user's home nor write as
another uid, whatever its securityContext says.

Finding before creating, in order of cost:

1. the id remembered from the last provisioning (``known``) when its recorded key still matches
   -- no AWS call at all (the per-login fast path);
2. ``DescribeAccessPoints`` on the file system, matching our tags (user and key);
3. ``CreateAccessPoint`` with a ClientToken derived from file system, user and key.  Real EFS
   answers a repeated token with ``AccessPointAlreadyExists`` carrying the existing id, which is
   then used; moto creates a second one instead, which step 2 prevents for sequential logins.

The *key* is a digest of what an access point can never change (it is immutable): file system,
uid, gid and root directory.  Secondary gids are set at creation; a later change of a user's groups
is reported by ``ood-k8s storage check`` rather than churning access points and volumes.

boto3 is imported lazily: it costs ~140 ms and the fast path never needs it.
"""

import hashlib
import re
from typing import Any, Mapping, NamedTuple, Optional

from ood_k8s.config import Config
from ood_k8s.core.errors import CloudError, ConfigError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import DOMAIN, MANAGED_BY, MANAGED_BY_KEY

ACCESS_POINT_ANNOTATION = f"{DOMAIN}/efs-access-point"
KEY_ANNOTATION = f"{DOMAIN}/efs-access-point-key"
USER_TAG = f"{DOMAIN}/user"
KEY_TAG = f"{DOMAIN}/key"

_AP_ID = re.compile(r"^fsap-[0-9a-f]{8,40}$")
_FS_ID = re.compile(r"^fs-[0-9a-f]{8,40}$")
# What EFS accepts in a root directory path, minus anything that could climb or confuse.
_PATH = re.compile(r"^(/[A-Za-z0-9_.@+=-]+)+$")
MAX_PATH = 100  # EFS limit for RootDirectory.Path
MAX_SECONDARY_GIDS = 16  # EFS limit for PosixUser.SecondaryGids; 'storage check' reports any beyond


class AccessPointSpec(NamedTuple):
    """Everything CreateAccessPoint is given for one user (pure data; see :func:`spec`).

    A NamedTuple rather than a dataclass: the hook computes one at every login.
    """

    file_system_id: str
    username: str
    uid: int
    gid: int
    secondary_gids: tuple[int, ...]
    path: str
    key: str

    @property
    def client_token(self) -> str:
        # <= 64 characters; the same user and key always give the same token (idempotency).
        raw = f"{self.file_system_id}\0{self.username}\0{self.key}".encode()
        return "ood-k8s-" + hashlib.sha256(raw).hexdigest()[:48]

    @property
    def tags(self) -> list[dict[str, str]]:
        return [{"Key": "Name", "Value": f"ood-home-{self.username}"},
                {"Key": MANAGED_BY_KEY, "Value": MANAGED_BY},
                {"Key": USER_TAG, "Value": self.username},
                {"Key": KEY_TAG, "Value": self.key}]

    def create_kwargs(self) -> dict[str, Any]:
        return {
            "ClientToken": self.client_token,
            "FileSystemId": self.file_system_id,
            "PosixUser": {"Uid": self.uid, "Gid": self.gid, "SecondaryGids": list(self.secondary_gids)},
            "RootDirectory": {"Path": self.path, "CreationInfo": {
                "OwnerUid": self.uid, "OwnerGid": self.gid, "Permissions": "0700"}},
            "Tags": self.tags,
        }


def root_directory(cfg: Config, ident: Identity) -> str:
    """The access point's root directory for ``ident``, refused unless it is a plain absolute path."""
    from ood_k8s.storage.backend import template_fields

    template = cfg.storage.efs.root_directory
    path = template.format(**template_fields(cfg, ident))
    segments = path.split("/")[1:]
    if len(path) > MAX_PATH or not _PATH.match(path) or any(s in (".", "..") for s in segments):
        raise ConfigError(f"storage.efs.root_directory {template!r} gives {path!r} for user "
                          f"'{ident.username}', which is not a plain absolute path of at most {MAX_PATH} "
                          "characters", "use a template such as /home/{user}")
    return path


def spec(cfg: Config, ident: Identity) -> AccessPointSpec:
    """The access point ``ident`` must have (pure)."""
    fs_id = cfg.storage.efs.file_system_id
    if not _FS_ID.match(fs_id):
        raise ConfigError(f"storage.efs.file_system_id: got {fs_id!r}, expected an id such as fs-0123456789abcdef0")
    path = root_directory(cfg, ident)
    digest = hashlib.sha256(f"{fs_id}\0{ident.uid}\0{ident.gid}\0{path}".encode()).hexdigest()[:16]
    gids = tuple(sorted(set(ident.gids) - {ident.gid}))[:MAX_SECONDARY_GIDS]
    return AccessPointSpec(file_system_id=fs_id, username=ident.username, uid=ident.uid, gid=ident.gid,
                           secondary_gids=gids, path=path, key=digest)


def remembered(known: Mapping[str, str], want: AccessPointSpec) -> Optional[str]:
    """The remembered access point id if it was made for exactly ``want``'s key."""
    ap_id = known.get(ACCESS_POINT_ANNOTATION, "")
    if _AP_ID.match(ap_id) and known.get(KEY_ANNOTATION) == want.key:
        return ap_id
    return None


def annotations(ap_id: str, want: AccessPointSpec) -> dict[str, str]:
    return {ACCESS_POINT_ANNOTATION: ap_id, KEY_ANNOTATION: want.key}


# --- AWS ---------------------------------------------------------------------------------------


def client(cfg: Config) -> Any:
    """A boto3 EFS client for the configured region (and endpoint, for VPC endpoints and tests)."""
    import boto3  # deferred: ~140 ms, and the fast path makes no AWS call

    e = cfg.storage.efs
    return boto3.client("efs", region_name=e.region, endpoint_url=e.endpoint_url or None)


def _tags(ap: Mapping[str, Any]) -> dict[str, str]:
    return {t.get("Key", ""): t.get("Value", "") for t in ap.get("Tags") or []}


def _describe(efs: Any, **kwargs: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = _call(efs, "describe_access_points", **kwargs)
        found.extend(page.get("AccessPoints") or [])
        token = page.get("NextToken")
        if not token:
            return found
        kwargs["NextToken"] = token


def find(efs: Any, file_system_id: str, username: str, key: Optional[str] = None) -> list[dict[str, Any]]:
    """Our access points for ``username`` on the file system (only those with ``key`` if given),
    oldest id first so every caller picks the same one if duplicates exist."""
    out = []
    for ap in _describe(efs, FileSystemId=file_system_id):
        tags = _tags(ap)
        if tags.get(MANAGED_BY_KEY) == MANAGED_BY and tags.get(USER_TAG) == username and \
                (key is None or tags.get(KEY_TAG) == key) and ap.get("LifeCycleState") not in ("deleting",
                                                                                               "deleted"):
            out.append(ap)
    return sorted(out, key=lambda ap: ap.get("AccessPointId", ""))


def describe(efs: Any, ap_id: str) -> Optional[dict[str, Any]]:
    """One access point by id, or None if it does not exist."""
    try:
        aps = _describe(efs, AccessPointId=ap_id)
    except EfsError as err:
        if err.code == "AccessPointNotFound":
            return None
        raise
    return aps[0] if aps else None


def ensure(cfg: Config, ident: Identity, known: Mapping[str, str], efs: Any = None) -> tuple[str, dict[str, str]]:
    """(access point id, annotations to remember) for ``ident``; AWS is called only when not known."""
    want = spec(cfg, ident)
    ap_id = remembered(known, want)
    if ap_id:
        return ap_id, annotations(ap_id, want)
    efs = efs if efs is not None else client(cfg)
    existing = find(efs, want.file_system_id, want.username, want.key)
    if existing:
        return existing[0]["AccessPointId"], annotations(existing[0]["AccessPointId"], want)
    try:
        created = _call(efs, "create_access_point", **want.create_kwargs())
        ap_id = created["AccessPointId"]
    except EfsError as err:
        if err.code != "AccessPointAlreadyExists":
            raise
        # A concurrent login won the race with the same ClientToken: use the one it made.
        ap_id = err.access_point_id
        if not _AP_ID.match(ap_id):
            again = find(efs, want.file_system_id, want.username, want.key)
            if not again:
                raise
            ap_id = again[0]["AccessPointId"]
    return ap_id, annotations(ap_id, want)


def delete(efs: Any, ap_id: str) -> bool:
    """Delete an access point (never its data: that stays on the file system). False if absent."""
    try:
        _call(efs, "delete_access_point", AccessPointId=ap_id)
    except EfsError as err:
        if err.code == "AccessPointNotFound":
            return False
        raise
    return True


_HINTS = {
    "FileSystemNotFound": "check storage.efs.file_system_id and storage.efs.region",
    "AccessPointLimitExceeded": "a file system holds at most 10,000 access points; remove unused ones "
                                "(ood-k8s storage teardown) or use a second file system",
    "AccessDeniedException": "grant the portal's IAM role elasticfilesystem:CreateAccessPoint, "
                             "DescribeAccessPoints, DeleteAccessPoint and TagResource",
    "ThrottlingException": "EFS is throttling; the next login retries",
}


class EfsError(CloudError):
    """An EFS call failed; ``code`` is the AWS error code (and ``access_point_id`` the existing
    access point when the code is AccessPointAlreadyExists)."""

    def __init__(self, message: str, hint: Optional[str] = None, code: str = "", access_point_id: str = ""):
        super().__init__(message, hint)
        self.code = code
        self.access_point_id = access_point_id


def _call(efs: Any, op: str, **kwargs: Any) -> dict[str, Any]:
    """One EFS call; every AWS failure becomes a one-line CloudError (an EfsError when AWS answered)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return getattr(efs, op)(**kwargs)
    except ClientError as exc:
        resp = exc.response or {}
        error = resp.get("Error") or {}
        code = error.get("Code", "") or "Unknown"
        message = error.get("Message", "") or str(exc)
        raise EfsError(f"EFS {op} failed: {code}: {message}",
                       _HINTS.get(code, "check the portal's AWS credentials and the EFS settings"), code=code,
                       access_point_id=str(resp.get("AccessPointId") or error.get("AccessPointId") or "")) from None
    except NoCredentialsError:
        raise CloudError(f"EFS {op} failed: no AWS credentials",
                         "give the portal an instance role or AWS credentials for EFS") from None
    except BotoCoreError as exc:
        raise CloudError(f"EFS {op} failed: {exc}", "check storage.efs.region and endpoint_url and the "
                         "network path to EFS") from None

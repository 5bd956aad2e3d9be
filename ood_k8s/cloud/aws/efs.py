# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``storage.mode: efs``: per-user EFS access points, found again on every login, created once, never duplicated.

:data:`BACKEND` is the :class:`~ood_k8s.storage.backend.HomeBackend` of the mode (settings:
``storage.efs``): a static PV for the EFS CSI driver naming the user's access point, bound to the
claim ``home`` (:mod:`ood_k8s.storage.static_pv`); the AWS calls are the functions of this module.

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

boto3 is imported lazily: it costs ~140 ms and the fast path never needs it.  A returning user's
login computes only :func:`spec` (for the storage fingerprint).
"""

import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from ood_k8s.config import Config
from ood_k8s.core.errors import CloudError, ConfigError, KubeError, NotFound, OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.core.vocab import EFS_ACCESS_POINT_ANNOTATION as ACCESS_POINT_ANNOTATION
from ood_k8s.core.vocab import EFS_KEY_ANNOTATION as KEY_ANNOTATION
from ood_k8s.core.vocab import EFS_KEY_TAG as KEY_TAG
from ood_k8s.core.vocab import EFS_USER_TAG as USER_TAG
from ood_k8s.core.vocab import MANAGED_BY, MANAGED_BY_KEY
from ood_k8s.storage.backend import Finding, Objects, StorageResult, template_fields
from ood_k8s.storage.static_pv import StaticPvBackend, check_pair, pv_name

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context

CSI_DRIVER = "efs.csi.aws.com"
# Stands for an access point a dry run does not create; also renders the PV once before AWS is called.
UNMADE_ACCESS_POINT = "fsap-00000000"

# Compiled on first use (re caches them): the per-login path matches one or two.
_AP_ID = r"^fsap-[0-9a-f]{8,40}$"
_FS_ID = r"^fs-[0-9a-f]{8,40}$"
# What EFS accepts in a root directory path, minus anything that could climb or confuse.
_PATH = r"^(/[A-Za-z0-9_.@+=-]+)+$"
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
        import hashlib  # deferred: only a login that calls AWS needs the token

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
    template = cfg.storage.efs.root_directory
    path = template.format(**template_fields(cfg, ident))
    segments = path.split("/")[1:]
    if len(path) > MAX_PATH or not re.match(_PATH, path) or any(s in (".", "..") for s in segments):
        raise ConfigError(f"storage.efs.root_directory {template!r} gives {path!r} for user "
                          f"'{ident.username}', which is not a plain absolute path of at most {MAX_PATH} "
                          "characters", "use a template such as /home/{user}")
    return path


def spec(cfg: Config, ident: Identity) -> AccessPointSpec:
    """The access point ``ident`` must have (pure)."""
    fs_id = cfg.storage.efs.file_system_id
    if not re.match(_FS_ID, fs_id):
        raise ConfigError(f"storage.efs.file_system_id: got {fs_id!r}, expected an id such as fs-0123456789abcdef0")
    import hashlib  # deferred (hot-path rule): only EFS sites compute a key

    path = root_directory(cfg, ident)
    digest = hashlib.sha256(f"{fs_id}\0{ident.uid}\0{ident.gid}\0{path}".encode()).hexdigest()[:16]
    gids = tuple(sorted(set(ident.gids) - {ident.gid}))[:MAX_SECONDARY_GIDS]
    return AccessPointSpec(file_system_id=fs_id, username=ident.username, uid=ident.uid, gid=ident.gid,
                           secondary_gids=gids, path=path, key=digest)


def remembered(known: Mapping[str, str], want: AccessPointSpec) -> Optional[str]:
    """The remembered access point id if it was made for exactly ``want``'s key."""
    ap_id = known.get(ACCESS_POINT_ANNOTATION, "")
    if re.match(_AP_ID, ap_id) and known.get(KEY_ANNOTATION) == want.key:
        return ap_id
    return None


def annotations(ap_id: str, want: AccessPointSpec) -> dict[str, str]:
    return {ACCESS_POINT_ANNOTATION: ap_id, KEY_ANNOTATION: want.key}


# --- AWS ---------------------------------------------------------------------------------------


def client(cfg: Config) -> Any:
    """A boto3 EFS client for the configured region (and endpoint, for VPC endpoints and tests)."""
    from ood_k8s.cloud.aws.clients import client as aws_client  # deferred: boto3, and the fast path makes no AWS call

    e = cfg.storage.efs
    return aws_client("efs", region=e.region, endpoint_url=e.endpoint_url, read_timeout=cfg.cluster.request_timeout)


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
        if not re.match(_AP_ID, ap_id):
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
        from ood_k8s.cloud.aws.errors import transport

        raise CloudError(f"EFS {op} failed: {transport(exc)}", "check storage.efs.region and endpoint_url and the "
                         "network path to EFS") from None


# --- the HomeBackend of storage.mode efs ----------------------------------------------------------


class EfsBackend(StaticPvBackend):
    pv_template = "storage/efs-pv.yaml.j2"
    csi_driver = CSI_DRIVER
    cloud_client = "efs"

    def iam_statements(self, cfg: Config) -> List[Dict[str, Any]]:
        """What the portal's role must allow (``cluster render --only iam``)."""
        from ood_k8s.cloud.aws import efs_policy

        return efs_policy.portal_statements(cfg)

    def iam_roles(self, cfg: Config) -> Tuple[Dict[str, Any], List[str]]:
        """The EFS CSI driver's role, and how to make it."""
        from ood_k8s.cloud.aws import efs_policy

        return efs_policy.csi_role(cfg)

    def source_context(self, cfg: Config, ident: Identity, volume_id: str) -> Dict[str, Any]:
        e = cfg.storage.efs
        return {"file_system_id": e.file_system_id, "access_point_id": volume_id,
                "mount_options": list(e.mount_options)}

    def source(self, cfg: Config, ident: Identity, volume_id: str) -> str:
        return f"csi {cfg.storage.efs.file_system_id}::{volume_id}" if volume_id else ""

    def pv_source(self, spec: Mapping[str, Any]) -> str:
        return f"csi {(spec.get('csi') or {}).get('volumeHandle')}"

    def source_fingerprint(self, cfg: Config, ident: Identity) -> Dict[str, Any]:
        want = spec(cfg, ident)
        return {"file_system_id": want.file_system_id, "access_point_key": want.key,
                "mount_options": list(cfg.storage.efs.mount_options)}

    def plan(self, cfg: Config, ident: Identity, names: UserNames,
             known: Mapping[str, str]) -> Tuple[Objects, List[str]]:
        want = spec(cfg, ident)
        ap_id = remembered(known, want)
        objects = self.volume_objects(cfg, ident, names, ap_id or UNMADE_ACCESS_POINT)
        if ap_id is not None:
            return objects, []
        # Which access point the volume will name is known only once AWS is asked.
        note = (f"find or create the EFS access point of {ident.username} on {want.file_system_id} (root "
                f"{want.path}, uid {want.uid}, gid {want.gid}) and the PersistentVolume {pv_name(names)} naming it")
        return [o for o in objects if o["kind"] != "PersistentVolume"], [note]

    def provision(self, cfg: Config, ident: Identity, names: UserNames, known: Mapping[str, str],
                  cloud: Any) -> StorageResult:
        """Calls AWS only when ``known`` does not already name the right access point."""
        if not remembered(known, spec(cfg, ident)):
            # AWS is about to be called: fail on a bad template or setting before anything is made
            self.volume_objects(cfg, ident, names, UNMADE_ACCESS_POINT)
        ap_id, notes = ensure(cfg, ident, known, cloud)
        return StorageResult(self.volume_objects(cfg, ident, names, ap_id), notes)

    def teardown(self, cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
                 cloud: Any) -> List[str]:
        done = super().teardown(cfg, ident, names, client, delete_data, cloud)
        if delete_data:
            return done + _release(cfg, ident, names, client, cloud)
        return [*done, f"kept the EFS access point of {ident.username} on {cfg.storage.efs.file_system_id} "
                       "(removed only when deleting data)"]

    def check(self, cfg: Config, ident: Identity, names: UserNames, client: Any, cloud: Any) -> List[Finding]:
        finding, ap_id = _check_access_point(cfg, ident, names, client, cloud)
        return [finding, *check_pair(self, names, client, self.source(cfg, ident, ap_id))]

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        from ood_k8s.cloud.aws import efs_policy
        from ood_k8s.storage import checks

        return [_check_file_system(ctx), efs_policy.check_policy(ctx), _check_csi_driver(ctx),
                checks.home_root(ctx.cfg)]


BACKEND = EfsBackend()


def _release(cfg: Config, ident: Identity, names: UserNames, kube: Any, cloud: Any) -> List[str]:
    """Delete the user's access points (their data stays on the file system) and forget the remembered one."""
    fs_id = cfg.storage.efs.file_system_id
    aws = cloud if cloud is not None else client(cfg)
    found = find(aws, fs_id, ident.username)
    done = []
    for ap in found:
        delete(aws, ap["AccessPointId"])
        path = (ap.get("RootDirectory") or {}).get("Path", "?")
        done.append(f"deleted EFS access point {ap['AccessPointId']} (its data stays on {fs_id} under {path}; "
                    "remove it there if it must go)")
    if not found:
        done.append(f"no EFS access point for {ident.username} on {fs_id}")
    # the next provisioning must not trust a remembered id that no longer exists
    try:
        kube.patch("Namespace", names.namespace,
                   {"metadata": {"annotations": {ACCESS_POINT_ANNOTATION: None, KEY_ANNOTATION: None}}})
    except NotFound:
        pass
    return done


def _namespace_annotations(kube: Any, names: UserNames) -> Dict[str, str]:
    if kube is None:
        return {}
    try:
        ns = kube.get_or_none("Namespace", names.namespace) or {}
    except OodK8sError:
        return {}
    return (ns.get("metadata") or {}).get("annotations") or {}


def _find_for_check(aws: Any, want: AccessPointSpec, ap_id: Optional[str]) -> Optional[Dict[str, Any]]:
    """The remembered access point, else the one made for today's identity, else any older one (to
    report what is wrong with it)."""
    if ap_id:
        return describe(aws, ap_id)
    found = find(aws, want.file_system_id, want.username, want.key) or find(aws, want.file_system_id, want.username)
    return found[0] if found else None


def _check_access_point(cfg: Config, ident: Identity, names: UserNames, kube: Any,
                        cloud: Any) -> Tuple[Finding, str]:
    """The access point finding, and the id of the access point found ('' if none)."""
    what = "EFS access point"
    want = spec(cfg, ident)
    portal = f"{ident.home} (uid {ident.uid}, gid {ident.gid})"
    try:
        aws = cloud if cloud is not None else client(cfg)
        ap_id = remembered(_namespace_annotations(kube, names), want)
        ap = _find_for_check(aws, want, ap_id)
    except OodK8sError as err:
        return Finding(what, portal, "unknown", "error", str(err)), ""
    if ap_id and ap is None:
        # logins trust the remembered id without asking AWS, so this must be cleared by hand
        return Finding(what, portal, f"{ap_id}: remembered but gone", "error",
                       f"kubectl annotate namespace {names.namespace} {ACCESS_POINT_ANNOTATION}- "
                       f"{KEY_ANNOTATION}-, then provision the user again (a new one is made)"), ""
    if ap is None:
        return Finding(what, portal, f"none on {want.file_system_id}", "warn",
                       "created at the user's next login (the hook provisions it)"), ""
    return _judge_access_point(ident, names, want, portal, ap), ap["AccessPointId"]


def _judge_access_point(ident: Identity, names: UserNames, want: AccessPointSpec, portal: str,
                        ap: Mapping[str, Any]) -> Finding:
    what = "EFS access point"
    ap_id = ap["AccessPointId"]
    user = ap.get("PosixUser") or {}
    root = ap.get("RootDirectory") or {}
    info = root.get("CreationInfo") or {}
    have_gids = tuple(sorted(user.get("SecondaryGids") or []))
    pod = (f"{ap_id}: writes as {user.get('Uid')}:{user.get('Gid')} +[{','.join(map(str, have_gids))}], "
           f"root {root.get('Path')} (created {info.get('OwnerUid')}:{info.get('OwnerGid')} {info.get('Permissions')})")
    replace = (f"delete access point {ap_id} (aws efs delete-access-point; the data stays) and "
               f"PersistentVolume {pv_name(names)}; the next login creates them anew")
    if (user.get("Uid"), user.get("Gid")) != (ident.uid, ident.gid):
        return Finding(what, portal, pod, "error", f"every write goes out as the wrong uid/gid: {replace}")
    if root.get("Path") != want.path:
        return Finding(what, portal, pod, "error", f"root is not {want.path}: {replace}")
    if have_gids != want.secondary_gids:
        return Finding(what, portal, pod, "warn", f"groups changed since it was made (now "
                       f"[{','.join(map(str, want.secondary_gids))}]); to apply them: {replace}")
    return Finding(what, portal, pod, "ok")


# --- ood-k8s doctor --------------------------------------------------------------------------------


def _check_file_system(ctx: "Context") -> "Check":
    from ood_k8s.cloud.aws import errors
    from ood_k8s.doctor.report import Check

    e = ctx.cfg.storage.efs
    try:
        found = ctx.client("efs").describe_file_systems(FileSystemId=e.file_system_id)["FileSystems"]
    except errors.client_errors() as err:
        return Check("EFS file system", False, f"{e.file_system_id} in {e.region}: {errors.code(err)}",
                     errors.fix(err, "set storage.efs.file_system_id and storage.efs.region"))
    state = found[0].get("LifeCycleState", "?") if found else "missing"
    return Check("EFS file system", state == "available", f"{e.file_system_id} in {e.region}: {state}",
                 "wait for it to become available")


def _check_csi_driver(ctx: "Context") -> "Check":
    from urllib.parse import quote

    from ood_k8s.doctor.report import APPLY_CLUSTER, Check, one_line

    try:
        ctx.kube.request("GET", "/apis/storage.k8s.io/v1/csidrivers/" + quote(CSI_DRIVER, safe=""))
    except NotFound:
        return Check("EFS CSI driver", False, f"CSIDriver {CSI_DRIVER} not registered",
                     "install the EKS add-on aws-efs-csi-driver")
    except KubeError as err:
        return Check("EFS CSI driver", False, one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")
    return Check("EFS CSI driver", True, f"CSIDriver {CSI_DRIVER} registered")

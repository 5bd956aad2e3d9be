# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Home directories in sessions: the same $HOME, owned by the same uid, on the portal and in every pod.

``storage.mode`` names the :class:`HomeBackend` that brings the home to a pod, in :data:`BACKENDS`:

* ``efs``  -- a per-user EFS access point and a static PV for the EFS CSI driver, bound by
  ``claimRef`` to the claim ``home`` in the user's namespace (:mod:`ood_k8s.cloud.aws.efs`);
* ``nfs``  -- a static NFS PV per user, bound the same way (:mod:`ood_k8s.storage.nfs`);
* ``pvc``  -- a claim the site made itself, by name template (:mod:`ood_k8s.storage.pvc`);
* ``hostpath`` -- legacy: nodes mount homes themselves.  Needs Pod Security ``privileged`` and is
  warned about every time it is used (:mod:`ood_k8s.storage.hostpath`);
* ``none`` -- no home volume (:mod:`ood_k8s.storage.none`).

A new mode is one module implementing :class:`HomeBackend`, one line in :data:`BACKENDS` (or a
:func:`register` call from a plugin) and its settings section ``storage.<mode>`` in the config schema.

The functions below are what callers use: the adapter (:func:`pod_volumes`), the hook
(:func:`fingerprint`, :func:`provision`, :func:`ensure_home`), dry runs (:func:`plan`), user removal
(:func:`teardown`) and ``ood-k8s storage check`` (:func:`check`).  Each resolves the backend once; no
caller asks which mode it is.  Building objects is pure; only provisioning (EFS, when the access point
is not yet known), teardown and the checks talk to a cloud or the cluster.

This module is on the hook's per-login path: the registry names backend modules as strings, so a
login imports only its own mode's module (never AWS code on a non-EFS site).
"""

import os
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Literal,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    Union,
    runtime_checkable,
)

from ood_k8s.config import Config, StorageConfig, add_setting, remove_setting, setting
from ood_k8s.core import names as names_mod
from ood_k8s.core.errors import ConfigError, SecurityError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context

HOME_CLAIM = "home"
HOME_VOLUME = "home"
FINGERPRINT_VERSION = 1  # bump when the templates' output changes, so every user is re-provisioned

Objects = List[Dict[str, Any]]


class StorageResult(NamedTuple):
    """What :func:`provision` asks the caller to do: server-side apply ``objects`` (in order) and
    remember ``annotations`` (pass them back as ``known_annotations`` next time)."""

    # NamedTuples rather than dataclasses here: the hook imports this module at every login.
    objects: Sequence[Dict[str, Any]] = ()
    annotations: Mapping[str, str] = MappingProxyType({})


Status = Literal["ok", "info", "warn", "error"]


class Finding(NamedTuple):
    """One row of ``ood-k8s storage check``: what the portal sees beside what the pod gets."""

    what: str
    portal: str
    pod: str
    status: Status
    fix: str = ""


# --- the seam ------------------------------------------------------------------------------------


@runtime_checkable
class HomeBackend(Protocol):
    """What one ``storage.mode`` does.  ``cloud`` is the backend's own cloud client (tests pass one;
    None: the backend makes one when it needs it); ``client`` is the provisioner's KubeClient (None:
    no cluster access).  Every method but :meth:`provision`, :meth:`teardown`, :meth:`check` and
    :meth:`doctor_checks` is pure."""

    static_pv: bool  # the provisioner makes a PersistentVolume and the claim 'home' for every user
    csi_driver: str  # CSI driver of those volumes ('' if none): the provisioner may read its CSIDriver
    host_path: bool  # pods mount the node's directory: the guard allows exactly the user's recorded home
    cloud_client: str  # the doctor's name of the client passed as ``cloud`` ('' if none)

    def claim_template(self, cfg: Config) -> str:
        """The home claim's name template in the user's namespace ('' if the home is not a claim);
        the admission guard allows it and :func:`home_claim_name` fills it in."""

    def pod_volume(self, cfg: Config, ident: Identity) -> Optional[Dict[str, Any]]:
        """The home volume's source for a session pod (``{"persistentVolumeClaim": ...}``), or None."""

    def fingerprint(self, cfg: Config, ident: Identity) -> Dict[str, Any]:
        """What, beyond mode, user and namespace prefix, determines the user's storage (JSON data)."""

    def volume_objects(self, cfg: Config, ident: Identity, names: UserNames, volume_id: str) -> Objects:
        """The rendered, schema-validated objects of the home; ``volume_id`` names the cloud volume
        (an EFS access point) when the backend makes one."""

    def plan(self, cfg: Config, ident: Identity, names: UserNames,
             known: Mapping[str, str]) -> Tuple[Objects, List[str]]:
        """What :meth:`provision` would apply, and notes on what else it would do; no cloud call."""

    def provision(self, cfg: Config, ident: Identity, names: UserNames, known: Mapping[str, str],
                  cloud: Any) -> StorageResult:
        """The objects and remembered annotations of the home, making cloud resources if needed."""

    def teardown(self, cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
                 cloud: Any) -> List[str]:
        """Remove the user's storage objects (home data is never deleted); say what was done."""

    def check(self, cfg: Config, ident: Identity, names: UserNames, client: Any, cloud: Any) -> List[Finding]:
        """The rows of ``storage check`` after the portal's home and the session identity."""

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        """``ood-k8s doctor``'s site checks of this storage (the cluster was reached)."""

    def config_problems(self, cfg: Config) -> List[str]:
        """Cross-key problems of the configuration with this mode, one line each."""


class NothingToProvision:
    """The part of a backend whose home the site made (or that has none): the provisioner renders,
    plans and makes nothing for it."""

    def volume_objects(self, cfg: Config, ident: Identity, names: UserNames, volume_id: str) -> Objects:
        return []

    def plan(self, cfg: Config, ident: Identity, names: UserNames,
             known: Mapping[str, str]) -> Tuple[Objects, List[str]]:
        return [], []

    def provision(self, cfg: Config, ident: Identity, names: UserNames, known: Mapping[str, str],
                  cloud: Any) -> StorageResult:
        return StorageResult()


# --- the registry --------------------------------------------------------------------------------

# storage.mode -> "module:attribute" of its backend, imported on first use (or the backend itself).
BACKENDS: Dict[str, Union[str, HomeBackend]] = {
    "efs": "ood_k8s.cloud.aws.efs:BACKEND",
    "nfs": "ood_k8s.storage.nfs:BACKEND",
    "pvc": "ood_k8s.storage.pvc:BACKEND",
    "hostpath": "ood_k8s.storage.hostpath:BACKEND",
    "none": "ood_k8s.storage.none:BACKEND",
}
_SECTIONS: Set[str] = set()  # modes whose settings section register() added to the schema


def modes() -> Tuple[str, ...]:
    """Every ``storage.mode`` a configuration may name."""
    return tuple(BACKENDS)


def register(mode: str, backend: HomeBackend, settings: Optional[type] = None) -> None:
    """Make ``mode`` name ``backend`` (a plugin's or a test's).  ``settings``, a config section class,
    becomes ``storage.<mode>``.  (The built-in modes' sections are declared in the config schema
    itself: it is read by every process, and their backends are imported only when used.)"""
    if not isinstance(backend, HomeBackend):
        raise TypeError(f"storage backend for {mode!r} does not implement HomeBackend")
    if settings is not None:
        add_setting(StorageConfig, mode, settings, setting(doc=f"storage.mode: {mode}.", factory=settings))
        _SECTIONS.add(mode)
    BACKENDS[mode] = backend


def unregister(mode: str) -> None:
    """Undo :func:`register`."""
    BACKENDS.pop(mode, None)
    if mode in _SECTIONS:
        remove_setting(StorageConfig, mode)
        _SECTIONS.discard(mode)


def get(mode: str) -> HomeBackend:
    """The backend of ``mode``; an unknown mode is a one-line ConfigError."""
    entry = BACKENDS.get(mode)
    if entry is None:
        raise ConfigError(f"storage.mode: got {mode!r}, expected {check_mode(mode)}",
                          "set storage.mode to one of them (or install the plugin that registers it)")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)
        BACKENDS[mode] = entry
    return entry


def of(cfg: Config) -> HomeBackend:
    """The backend of ``cfg.storage.mode``."""
    return get(cfg.storage.mode)


def check_mode(mode: str) -> Optional[str]:
    """The config schema's check of ``storage.mode``: None if a backend is registered for it."""
    if mode in BACKENDS:
        return None
    return "one of " + ", ".join(repr(m) for m in BACKENDS)


# --- shared by the backends ----------------------------------------------------------------------


def template_fields(cfg: Config, ident: Identity) -> Dict[str, Any]:
    """What a storage name template may use: ``{user}`` (the username as it is), ``{slug}`` (its
    DNS-label form, as in the namespace name: safe in Kubernetes names whatever the username),
    ``{uid}`` and ``{gid}``."""
    slug = names_mod.for_user(ident.username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix).slug
    return {"user": ident.username, "slug": slug, "uid": ident.uid, "gid": ident.gid}


def claim_volume(cfg: Config, ident: Identity, template: str) -> Dict[str, Any]:
    """A pod volume source naming the user's claim ``template``."""
    return {"persistentVolumeClaim": {"claimName": template.format(**template_fields(cfg, ident))}}


def check_home_path(ident: Identity) -> None:
    """Refuse a home that is not a normalised absolute path other than '/' (it becomes a mount path)."""
    if not ident.home.startswith("/") or os.path.normpath(ident.home) != ident.home or ident.home == "/":
        raise SecurityError(f"home directory path {ident.home!r} of {ident.username} is not a normalised "
                            "absolute path", "fix the user's home in the directory service (passwd/LDAP)")


# --- what callers use ----------------------------------------------------------------------------


def home_claim_name(cfg: Config, ident: Identity) -> Optional[str]:
    """The claim holding ``ident``'s home in their namespace, or None if the home is not a claim."""
    template = of(cfg).claim_template(cfg)
    return template.format(**template_fields(cfg, ident)) if template else None


def pod_volumes(cfg: Config, ident: Identity, names: UserNames) -> Tuple[Objects, Objects]:
    """(volumes, volumeMounts) putting the user's home at ``ident.home`` plus the site's extra mounts."""
    check_home_path(ident)
    volumes: Objects = []
    mounts: Objects = []
    source = of(cfg).pod_volume(cfg, ident)
    if source is not None:
        volumes.append({"name": HOME_VOLUME, **source})
        mounts.append({"name": HOME_VOLUME, "mountPath": ident.home})
    fmt = template_fields(cfg, ident)
    for i, m in enumerate(cfg.storage.extra_mounts):
        where = f"storage.extra_mounts[{i}]"
        if any(v["name"] == m.name for v in volumes):
            raise ConfigError(f"{where}.name: got {m.name!r} twice (or the home's name)",
                              "give every extra mount its own name, other than 'home'")
        volumes.append({"name": m.name, "persistentVolumeClaim": {
            "claimName": m.claim_name.format(**fmt), "readOnly": m.read_only}})
        mount: Dict[str, Any] = {"name": m.name, "mountPath": m.mount_path, "readOnly": m.read_only}
        if m.sub_path:
            sub = m.sub_path.format(**fmt)
            if sub.startswith("/") or ".." in sub.split("/"):
                raise ConfigError(f"{where}.sub_path: got {sub!r}, expected a relative path without '..'")
            mount["subPath"] = sub
        mounts.append(mount)
    return volumes, mounts


def fingerprint(cfg: Config, ident: Identity) -> Dict[str, Any]:
    """Everything that determines a user's storage objects and cloud resources (pure).

    The hook hashes it: while it is unchanged, a login makes no storage call at all.
    """
    fp: Dict[str, Any] = {"v": FINGERPRINT_VERSION, "mode": cfg.storage.mode, "user": ident.username,
                          "namespace_prefix": cfg.users.namespace_prefix}
    fp.update(of(cfg).fingerprint(cfg, ident))
    return fp


def volume_objects(cfg: Config, ident: Identity, names: UserNames, volume_id: str = "") -> Objects:
    """The home's rendered, schema-validated objects ([] for modes that make none). Pure."""
    return of(cfg).volume_objects(cfg, ident, names, volume_id)


def plan(cfg: Config, ident: Identity, names: UserNames, known_annotations: Mapping[str, str]) -> Tuple[
        Objects, List[str]]:
    """What :func:`provision` and :func:`ensure_home` would do, without doing it or calling a cloud:
    the objects to apply and notes on the rest (an access point to make, a home to create)."""
    check_home_path(ident)
    notes: List[str] = []
    if cfg.storage.create_home:
        from ood_k8s.storage import homedir

        if homedir.would_create(ident, cfg.storage.home_root):
            notes.append(f"create home directory {ident.home} (0700, {ident.uid}:{ident.gid})")
    objects, more = of(cfg).plan(cfg, ident, names, known_annotations)
    return objects, notes + more


def provision(cfg: Config, ident: Identity, names: UserNames, known_annotations: Mapping[str, str],
              *, cloud: Any = None) -> StorageResult:
    """The objects and remembered annotations for ``ident``'s home.

    EFS calls AWS only when ``known_annotations`` do not already name the right access point.
    """
    check_home_path(ident)
    return of(cfg).provision(cfg, ident, names, known_annotations, cloud)


def ensure_home(cfg: Config, ident: Identity) -> bool:
    """Create the user's home on the portal's mount if missing (see :mod:`ood_k8s.storage.homedir`)."""
    if not cfg.storage.create_home:
        return False
    from ood_k8s.storage import homedir

    return homedir.ensure_home(ident, cfg.storage.home_root, cfg.storage.skeleton_dir or None)


def teardown(cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
             *, cloud: Any = None) -> List[str]:
    """Remove a user's storage objects; say what was done.  Home data is never deleted: PVs are
    Retain, and an EFS access point (removed only with ``delete_data``) leaves its directory."""
    return of(cfg).teardown(cfg, ident, names, client, delete_data, cloud)


def check(cfg: Config, ident: Identity, names: UserNames, client: Any = None, *, cloud: Any = None) -> List[Finding]:
    """Compare the portal's view of the home with the identity and volumes sessions will use."""
    from ood_k8s.storage import homedir

    gids = ",".join(str(g) for g in ident.gids) or "none"
    out = [homedir.finding(ident, cfg.storage.home_root, cfg.storage.create_home),
           Finding("session identity", f"{ident.username}: uid {ident.uid}, gid {ident.gid}, groups {gids}",
                   f"runAsUser {ident.uid}, runAsGroup {ident.gid}, supplementalGroups {gids}", "ok")]
    return out + of(cfg).check(cfg, ident, names, client, cloud)

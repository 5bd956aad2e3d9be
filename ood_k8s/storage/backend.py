"""Home directories in sessions: the same $HOME, owned by the same uid, on the portal and in every pod.

``storage.mode`` picks how the home reaches a pod:

* ``efs``  -- a per-user EFS access point (:mod:`ood_k8s.cloud.aws.efs`) and a static PV for the EFS CSI
  driver, bound by ``claimRef`` to the claim ``home`` in the user's namespace;
* ``nfs``  -- a static NFS PV per user, bound the same way;
* ``pvc``  -- a claim the site made itself, by name template;
* ``hostpath`` -- legacy: nodes mount homes themselves.  Needs Pod Security ``privileged`` and is
  warned about every time it is used;
* ``none`` -- no home volume.

Used by the adapter (:func:`pod_volumes`), the hook (:func:`fingerprint`, :func:`provision`,
:func:`ensure_home`), user removal (:func:`teardown`) and ``ood-k8s storage check`` (:func:`check`).
Building objects is pure; only :func:`provision` (EFS, when the access point is not yet known),
:func:`teardown` and :func:`check` talk to AWS or the cluster.
"""

import os
import stat
from types import MappingProxyType
from typing import Any, Literal, Mapping, NamedTuple, Optional, Sequence

from ood_k8s.config import Config
from ood_k8s.core import names as names_mod
from ood_k8s.core.errors import ConfigError, NotFound, OodK8sError, SecurityError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames


def _log() -> Any:
    # logging costs ~5 ms to import; the hook's fast path never logs from here.
    import logging

    return logging.getLogger(__name__)


HOME_CLAIM = "home"
HOME_VOLUME = "home"
FINGERPRINT_VERSION = 1  # bump when the templates' output changes, so every user is re-provisioned

_TEMPLATES = {"efs": ("storage/efs-pv.yaml.j2", "storage/home-pvc.yaml.j2"),
              "nfs": ("storage/nfs-pv.yaml.j2", "storage/home-pvc.yaml.j2")}


# --- names ---------------------------------------------------------------------------------------


def template_fields(cfg: Config, ident: Identity) -> dict[str, Any]:
    """What a storage name template may use: ``{user}`` (the username as it is), ``{slug}`` (its
    DNS-label form, as in the namespace name: safe in Kubernetes names whatever the username),
    ``{uid}`` and ``{gid}``."""
    slug = names_mod.for_user(ident.username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix).slug
    return {"user": ident.username, "slug": slug, "uid": ident.uid, "gid": ident.gid}


def home_claim_name(cfg: Config, ident: Identity) -> Optional[str]:
    mode = cfg.storage.mode
    if mode in ("efs", "nfs"):
        return HOME_CLAIM
    if mode == "pvc":
        return cfg.storage.pvc.claim_name.format(**template_fields(cfg, ident))
    return None


def pv_name(names: UserNames) -> str:
    """The user's home PV. PVs are cluster-scoped: the namespace (portal prefix + slug) keeps two
    portals sharing a cluster apart."""
    return f"{names.namespace}-home"


def _check_home_path(ident: Identity) -> None:
    if not ident.home.startswith("/") or os.path.normpath(ident.home) != ident.home or ident.home == "/":
        raise SecurityError(f"home directory path {ident.home!r} of {ident.username} is not a normalised "
                            "absolute path", "fix the user's home in the directory service (passwd/LDAP)")


def _warn_hostpath(cfg: Config, ident: Identity) -> None:
    if cfg.users.pod_security != "privileged":
        # config.load refuses this too; a Config built in code must not slip past it.
        raise ConfigError("storage.mode: got 'hostpath', expected users.pod_security: privileged to go with it",
                          "Pod Security 'restricted' and 'baseline' forbid hostPath volumes")
    _log().warning("storage.mode is 'hostpath': %s's session mounts the node's %s; every node must mount the "
                    "homes itself and pods need Pod Security 'privileged' -- prefer storage.mode efs or nfs",
                    ident.username, ident.home)


# --- pod side ------------------------------------------------------------------------------------


def pod_volumes(cfg: Config, ident: Identity, names: UserNames) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) putting the user's home at ``ident.home`` plus the site's extra mounts."""
    _check_home_path(ident)
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    claim = home_claim_name(cfg, ident)
    if claim:
        volumes.append({"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": HOME_VOLUME, "mountPath": ident.home})
    elif cfg.storage.mode == "hostpath":
        _warn_hostpath(cfg, ident)
        volumes.append({"name": HOME_VOLUME, "hostPath": {"path": ident.home, "type": "Directory"}})
        mounts.append({"name": HOME_VOLUME, "mountPath": ident.home})
    fmt = template_fields(cfg, ident)
    for i, m in enumerate(cfg.storage.extra_mounts):
        where = f"storage.extra_mounts[{i}]"
        if any(v["name"] == m.name for v in volumes):
            raise ConfigError(f"{where}.name: got {m.name!r} twice (or the home's name)",
                              "give every extra mount its own name, other than 'home'")
        volumes.append({"name": m.name, "persistentVolumeClaim": {
            "claimName": m.claim_name.format(**fmt), "readOnly": m.read_only}})
        mount: dict[str, Any] = {"name": m.name, "mountPath": m.mount_path, "readOnly": m.read_only}
        if m.sub_path:
            sub = m.sub_path.format(**fmt)
            if sub.startswith("/") or ".." in sub.split("/"):
                raise ConfigError(f"{where}.sub_path: got {sub!r}, expected a relative path without '..'")
            mount["subPath"] = sub
        mounts.append(mount)
    return volumes, mounts


# --- provisioning side ---------------------------------------------------------------------------


def fingerprint(cfg: Config, ident: Identity) -> dict[str, Any]:
    """Everything that determines a user's storage objects and cloud resources (pure).

    The hook hashes it: while it is unchanged, a login makes no storage call at all.
    """
    s = cfg.storage
    fp: dict[str, Any] = {"v": FINGERPRINT_VERSION, "mode": s.mode, "user": ident.username,
                          "namespace_prefix": cfg.users.namespace_prefix}
    if s.mode == "efs":
        from ood_k8s.cloud.aws import efs

        want = efs.spec(cfg, ident)
        fp.update(capacity=s.capacity, file_system_id=want.file_system_id, access_point_key=want.key,
                  mount_options=list(s.efs.mount_options), kubernetes_version=cfg.cluster.kubernetes_version,
                  site_templates=cfg.templates.site_dir)
    elif s.mode == "nfs":
        fp.update(capacity=s.capacity, server=s.nfs.server, path=_nfs_path(cfg, ident),
                  mount_options=list(s.nfs.mount_options), kubernetes_version=cfg.cluster.kubernetes_version,
                  site_templates=cfg.templates.site_dir)
    elif s.mode == "pvc":
        fp.update(claim=home_claim_name(cfg, ident))
    return fp


class StorageResult(NamedTuple):
    """What :func:`provision` asks the caller to do: server-side apply ``objects`` (in order) and
    remember ``annotations`` (pass them back as ``known_annotations`` next time)."""

    # NamedTuples rather than dataclasses here: the hook imports this module at every login.
    objects: Sequence[dict[str, Any]] = ()
    annotations: Mapping[str, str] = MappingProxyType({})


def _nfs_path(cfg: Config, ident: Identity) -> str:
    path = cfg.storage.nfs.path.format(**template_fields(cfg, ident))
    if not path.startswith("/") or os.path.normpath(path) != path:
        raise ConfigError(f"storage.nfs.path {cfg.storage.nfs.path!r} gives {path!r}, expected a normalised "
                          "absolute export path", "use a template such as /export/home/{user}")
    return path


def volume_context(cfg: Config, ident: Identity, names: UserNames, access_point_id: str = "") -> dict[str, Any]:
    """The template context of a user's home PV and claim (pure)."""
    s = cfg.storage
    ctx: dict[str, Any] = {
        "pv_name": pv_name(names), "claim_name": HOME_CLAIM, "claim_namespace": names.namespace,
        "namespace": names.namespace, "labels": names.labels, "annotations": names.annotations,
        "capacity": s.capacity,
    }
    if s.mode == "efs":
        ctx.update(file_system_id=s.efs.file_system_id, access_point_id=access_point_id,
                   mount_options=list(s.efs.mount_options))
    elif s.mode == "nfs":
        ctx.update(server=s.nfs.server, path=_nfs_path(cfg, ident), mount_options=list(s.nfs.mount_options))
    return ctx


def volume_objects(cfg: Config, ident: Identity, names: UserNames, access_point_id: str = "") -> list[dict[str, Any]]:
    """The rendered, schema-validated PV and claim for efs/nfs modes ([] for the others). Pure."""
    templates = _TEMPLATES.get(cfg.storage.mode)
    if not templates:
        return []
    from ood_k8s.render.render import for_config

    return for_config(cfg).many(templates, **volume_context(cfg, ident, names, access_point_id))


# Stands for an access point a dry run does not create; also renders the PV once before AWS is called.
UNMADE_ACCESS_POINT = "fsap-00000000"


def plan(cfg: Config, ident: Identity, names: UserNames, known_annotations: Mapping[str, str]) -> tuple[
        list[dict[str, Any]], list[str]]:
    """What :func:`provision` and :func:`ensure_home` would do, without doing it or calling AWS:
    the objects to apply and notes on the rest (an access point to make, a home to create)."""
    _check_home_path(ident)
    notes: list[str] = []
    if cfg.storage.create_home:
        from ood_k8s.storage import homedir

        if homedir.would_create(ident, cfg.storage.home_root):
            notes.append(f"create home directory {ident.home} (0700, {ident.uid}:{ident.gid})")
    mode = cfg.storage.mode
    if mode == "efs":
        from ood_k8s.cloud.aws import efs

        want = efs.spec(cfg, ident)
        ap_id = efs.remembered(known_annotations, want)
        objects = volume_objects(cfg, ident, names, ap_id or UNMADE_ACCESS_POINT)
        if ap_id is None:
            # Which access point the volume will name is known only once AWS is asked.
            notes.append(f"find or create the EFS access point of {ident.username} on {want.file_system_id} "
                         f"(root {want.path}, uid {want.uid}, gid {want.gid}) and the PersistentVolume "
                         f"{pv_name(names)} naming it")
            objects = [o for o in objects if o["kind"] != "PersistentVolume"]
        return objects, notes
    if mode == "nfs":
        return volume_objects(cfg, ident, names), notes
    if mode == "hostpath":
        _warn_hostpath(cfg, ident)
    return [], notes


def provision(cfg: Config, ident: Identity, names: UserNames, known_annotations: Mapping[str, str],
              *, efs_client: Any = None) -> StorageResult:
    """The objects and remembered annotations for ``ident``'s home.

    EFS calls AWS only when ``known_annotations`` do not already name the right access point.
    """
    _check_home_path(ident)
    mode = cfg.storage.mode
    if mode == "efs":
        from ood_k8s.cloud.aws import efs

        if not efs.remembered(known_annotations, efs.spec(cfg, ident)):
            # AWS is about to be called: fail on a bad template or setting before anything is made
            volume_objects(cfg, ident, names, UNMADE_ACCESS_POINT)
        ap_id, notes = efs.ensure(cfg, ident, known_annotations, efs_client)
        return StorageResult(volume_objects(cfg, ident, names, ap_id), notes)
    if mode == "nfs":
        return StorageResult(volume_objects(cfg, ident, names))
    if mode == "hostpath":
        _warn_hostpath(cfg, ident)
    return StorageResult()


def ensure_home(cfg: Config, ident: Identity) -> bool:
    """Create the user's home on the portal's mount if missing (see :mod:`ood_k8s.storage.homedir`)."""
    if not cfg.storage.create_home:
        return False
    from ood_k8s.storage import homedir

    return homedir.ensure_home(ident, cfg.storage.home_root, cfg.storage.skeleton_dir or None)


def teardown(cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
             *, efs_client: Any = None) -> list[str]:
    """Remove a user's storage objects; say what was done.  Home data is never deleted: the PVs
    are Retain, and an EFS access point (removed only with ``delete_data``) leaves its directory
    on the file system."""
    mode = cfg.storage.mode
    done: list[str] = []
    if mode in ("efs", "nfs"):
        gone = client.delete("PersistentVolumeClaim", HOME_CLAIM, names.namespace, missing_ok=True)
        done.append(f"{'deleted' if gone is not None else 'no'} PersistentVolumeClaim {names.namespace}/{HOME_CLAIM}")
        pv = pv_name(names)
        gone = client.delete("PersistentVolume", pv, missing_ok=True)
        done.append(f"deleted PersistentVolume {pv} (reclaim policy Retain: the data stays on the file system)"
                    if gone is not None else f"no PersistentVolume {pv}")
    if mode == "efs":
        from ood_k8s.cloud.aws import efs

        fs_id = cfg.storage.efs.file_system_id
        if delete_data:
            aws = efs_client if efs_client is not None else efs.client(cfg)
            found = efs.find(aws, fs_id, ident.username)
            for ap in found:
                efs.delete(aws, ap["AccessPointId"])
                path = (ap.get("RootDirectory") or {}).get("Path", "?")
                done.append(f"deleted EFS access point {ap['AccessPointId']} (its data stays on {fs_id} under "
                            f"{path}; remove it there if it must go)")
            if not found:
                done.append(f"no EFS access point for {ident.username} on {fs_id}")
            # the next provisioning must not trust a remembered id that no longer exists
            forget = {"metadata": {"annotations": {efs.ACCESS_POINT_ANNOTATION: None, efs.KEY_ANNOTATION: None}}}
            try:
                client.patch("Namespace", names.namespace, forget)
            except NotFound:
                pass
        else:
            done.append(f"kept the EFS access point of {ident.username} on {fs_id} (removed only when deleting data)")
    elif mode == "nfs" and delete_data:
        done.append(f"kept the data under {cfg.storage.nfs.server}:{_nfs_path(cfg, ident)}: ood-k8s never deletes "
                    "a home's contents; remove it on the NFS server if it must go")
    elif mode == "pvc":
        done.append(f"kept PersistentVolumeClaim {names.namespace}/{home_claim_name(cfg, ident)}: it is the site's")
    elif mode in ("hostpath", "none"):
        done.append(f"nothing to remove: storage.mode is {mode}")
    return done


# --- ood-k8s storage check -----------------------------------------------------------------------

Status = Literal["ok", "info", "warn", "error"]


class Finding(NamedTuple):
    """One row of ``ood-k8s storage check``: what the portal sees beside what the pod gets."""

    what: str
    portal: str
    pod: str
    status: Status
    fix: str = ""


def check(cfg: Config, ident: Identity, names: UserNames, client: Any = None, *,
          efs_client: Any = None) -> list[Finding]:
    """Compare the portal's view of the home with the identity and volumes sessions will use."""
    from ood_k8s.storage import homedir

    mode = cfg.storage.mode
    out: list[Finding] = [_check_portal_home(cfg, ident, homedir)]
    gids = ",".join(str(g) for g in ident.gids) or "none"
    out.append(Finding("session identity", f"{ident.username}: uid {ident.uid}, gid {ident.gid}, groups {gids}",
                       f"runAsUser {ident.uid}, runAsGroup {ident.gid}, supplementalGroups {gids}", "ok"))
    if mode == "efs":
        finding, ap_id = _check_access_point(cfg, ident, names, client, efs_client)
        out.append(finding)
        expected = f"csi {cfg.storage.efs.file_system_id}::{ap_id}" if ap_id else ""
        out.extend(_check_volume_pair(cfg, names, client, expected))
    elif mode == "nfs":
        out.extend(_check_volume_pair(cfg, names, client, f"nfs {cfg.storage.nfs.server}:{_nfs_path(cfg, ident)}"))
    elif mode == "pvc":
        out.append(_check_site_claim(cfg, ident, names, client))
    elif mode == "hostpath":
        out.append(Finding("home volume", f"{ident.home} on this portal", f"hostPath {ident.home} on the node",
                           "warn", "every node must mount the same homes; prefer storage.mode efs or nfs"))
    else:
        out.append(Finding("home volume", ident.home, "no home volume (storage.mode none)", "info"))
    return out


def _check_portal_home(cfg: Config, ident: Identity, homedir: Any) -> Finding:
    what = "home directory"
    pod = f"mounted at {ident.home}"
    st = homedir.inspect(ident.home)
    if st is None:
        root = os.path.normpath(cfg.storage.home_root).rstrip("/") + "/"
        if cfg.storage.create_home and ident.home.startswith(root):
            return Finding(what, f"{ident.home}: missing", pod, "warn",
                           "created 0700 at the user's next login (or run the hook for the user now)")
        return Finding(what, f"{ident.home}: missing", pod, "error",
                       f"create it: install -d -o {ident.uid} -g {ident.gid} -m 0700 {ident.home}")
    seen = f"{ident.home}: {homedir.describe_stat(st)}"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return Finding(what, seen, pod, "error", "replace it by a real directory owned by the user (ood-k8s never "
                       "follows a link into a home)")
    if st.st_uid != ident.uid:
        return Finding(what, seen, pod, "error", f"the pod writes as uid {ident.uid}: chown {ident.uid}:{ident.gid} "
                       f"{ident.home} if it is the user's (ood-k8s never chowns an existing home)")
    if st.st_gid != ident.gid:
        return Finding(what, seen, pod, "warn", f"chgrp {ident.gid} {ident.home} so group ownership matches too")
    if st.st_mode & 0o022:
        return Finding(what, seen, pod, "warn", f"others can write into it: chmod go-w {ident.home}")
    return Finding(what, seen, pod, "ok")


def _namespace_annotations(client: Any, names: UserNames) -> dict[str, str]:
    if client is None:
        return {}
    try:
        ns = client.get_or_none("Namespace", names.namespace) or {}
    except OodK8sError:
        return {}
    return (ns.get("metadata") or {}).get("annotations") or {}


def _check_access_point(cfg: Config, ident: Identity, names: UserNames, client: Any,
                        efs_client: Any) -> tuple[Finding, str]:
    """The access point finding, and the id of the access point found ('' if none)."""
    from ood_k8s.cloud.aws import efs

    what = "EFS access point"
    want = efs.spec(cfg, ident)
    portal = f"{ident.home} (uid {ident.uid}, gid {ident.gid})"
    try:
        aws = efs_client if efs_client is not None else efs.client(cfg)
        ap_id = efs.remembered(_namespace_annotations(client, names), want)
        ap = efs.describe(aws, ap_id) if ap_id else None
        if ap_id and ap is None:
            # logins trust the remembered id without asking AWS, so this must be cleared by hand
            return Finding(what, portal, f"{ap_id}: remembered but gone", "error",
                           f"kubectl annotate namespace {names.namespace} {efs.ACCESS_POINT_ANNOTATION}- "
                           f"{efs.KEY_ANNOTATION}-, then provision the user again (a new one is made)"), ""
        if ap is None:
            # the one made for today's identity first, else any older one (to report what is wrong with it)
            found = efs.find(aws, want.file_system_id, want.username, want.key) or \
                efs.find(aws, want.file_system_id, want.username)
            ap = found[0] if found else None
    except OodK8sError as err:
        return Finding(what, portal, "unknown", "error", str(err)), ""
    if ap is None:
        return Finding(what, portal, f"none on {want.file_system_id}", "warn",
                       "created at the user's next login (the hook provisions it)"), ""
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
        return Finding(what, portal, pod, "error", f"every write goes out as the wrong uid/gid: {replace}"), ap_id
    if root.get("Path") != want.path:
        return Finding(what, portal, pod, "error", f"root is not {want.path}: {replace}"), ap_id
    if have_gids != want.secondary_gids:
        return Finding(what, portal, pod, "warn", f"groups changed since it was made (now "
                       f"[{','.join(map(str, want.secondary_gids))}]); to apply them: {replace}"), ap_id
    return Finding(what, portal, pod, "ok"), ap_id


def _check_volume_pair(cfg: Config, names: UserNames, client: Any, expected: str) -> list[Finding]:
    """The home PV and claim as the cluster has them; ``expected`` is the volume source they need."""
    pv = pv_name(names)
    if client is None:
        return [Finding("home volume", "-", f"PersistentVolume {pv}, claim {names.namespace}/{HOME_CLAIM}", "info",
                        "not checked: no cluster access (run as root with the provisioner kubeconfig)")]
    out: list[Finding] = []
    try:
        have_pv = client.get_or_none("PersistentVolume", pv)
        have_pvc = client.get_or_none("PersistentVolumeClaim", HOME_CLAIM, names.namespace)
    except OodK8sError as err:
        return [Finding("home volume", "-", "unknown", "error", str(err))]
    relogin = "the user's next login provisions it (or run the hook for the user now)"
    if have_pv is None:
        out.append(Finding("PersistentVolume", "-", f"{pv}: missing", "warn", relogin))
    else:
        spec = have_pv.get("spec") or {}
        ref = spec.get("claimRef") or {}
        phase = (have_pv.get("status") or {}).get("phase", "?")
        if cfg.storage.mode == "efs":
            source = f"csi {(spec.get('csi') or {}).get('volumeHandle')}"
        else:
            nfs = spec.get("nfs") or {}
            source = f"nfs {nfs.get('server')}:{nfs.get('path')}"
        pod = f"{pv}: {source}, claimRef {ref.get('namespace')}/{ref.get('name')}, " \
              f"{spec.get('persistentVolumeReclaimPolicy')}, {phase}"
        problems = []
        if (ref.get("namespace"), ref.get("name")) != (names.namespace, HOME_CLAIM):
            problems.append(f"claimRef must be {names.namespace}/{HOME_CLAIM}")
        if spec.get("persistentVolumeReclaimPolicy") != "Retain":
            problems.append(f"kubectl patch pv {pv} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"Retain\"}}}}'")
        if expected and source != expected:
            problems.append(f"expected {expected}: delete PersistentVolume {pv} and claim {names.namespace}/"
                            f"{HOME_CLAIM} while no session runs; the next login recreates them")
        out.append(Finding("PersistentVolume", "-", pod, "error" if problems else "ok", "; ".join(problems)))
    if have_pvc is None:
        out.append(Finding("PersistentVolumeClaim", "-", f"{names.namespace}/{HOME_CLAIM}: missing", "warn", relogin))
    else:
        spec = have_pvc.get("spec") or {}
        phase = (have_pvc.get("status") or {}).get("phase", "?")
        pod = f"{names.namespace}/{HOME_CLAIM}: volumeName {spec.get('volumeName')}, {phase}"
        bad = spec.get("volumeName") != pv
        out.append(Finding("PersistentVolumeClaim", "-", pod, "error" if bad else "ok",
                           f"the claim must name volume {pv}: delete it while no session runs; the next "
                           "login recreates it" if bad else ""))
    return out


def _check_site_claim(cfg: Config, ident: Identity, names: UserNames, client: Any) -> Finding:
    claim = home_claim_name(cfg, ident)
    what = "PersistentVolumeClaim"
    if client is None:
        return Finding(what, "-", f"{names.namespace}/{claim}", "info", "not checked: no cluster access")
    try:
        have = client.get_or_none("PersistentVolumeClaim", claim, names.namespace)
    except OodK8sError as err:
        return Finding(what, "-", "unknown", "error", str(err))
    if have is None:
        return Finding(what, "-", f"{names.namespace}/{claim}: missing", "error",
                       f"storage.mode pvc uses claims the site creates: create {claim} in {names.namespace}")
    phase = (have.get("status") or {}).get("phase", "?")
    pod = f"{names.namespace}/{claim}: volume {(have.get('spec') or {}).get('volumeName') or '-'}, {phase}"
    if phase != "Bound":
        return Finding(what, "-", pod, "warn", "sessions wait until the claim is Bound; check its PV/StorageClass")
    return Finding(what, "-", pod, "ok")

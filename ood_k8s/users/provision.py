"""One user's place on the cluster: desired objects, the one-request fast path, apply, teardown.

The per-login hook calls :func:`ensure` on every PUN start; ``ood-k8s user setup|sync`` call it for
many users at once.

Desired state
    :func:`desired_objects` is a pure function of the configuration and the user's identity: it
    renders ``templates/user/*.yaml.j2`` (a site's ``templates.site_dir/user/`` first, where a site
    may also add files) into the user's Namespace, RoleBinding, ResourceQuota, LimitRange,
    NetworkPolicies and optional pull Secret.  :func:`desired_hash` condenses everything those
    objects -- and the Cognito user and the storage -- depend on into one digest *without
    rendering*, so the fast path never imports Jinja2.

Fast path
    One JSON PATCH of the namespace that tests it is this user's (managed-by label, raw username
    annotation), stamps the last-hook-run annotation and returns the namespace, whose stored hash
    says whether anything must be done.  Equal: done, in one round trip.

Full path
    Render first (a broken template touches nothing), then the Cognito user, the home directory,
    server-side apply of the objects (Namespace first), deletion of objects an earlier provisioning
    made that are no longer wanted, the storage objects, and LAST the hash.  A provisioning that
    fails half-way leaves the old hash (or none), so the next login redoes it; every step is
    idempotent, so a re-run converges.
"""

import base64
import hashlib
import json
import os
import stat
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, NamedTuple, Optional, Sequence

from ood_k8s import __version__
from ood_k8s.config import Config, to_dict
from ood_k8s.core import fsutil
from ood_k8s.core import identity as identity_mod
from ood_k8s.core import names as names_mod
from ood_k8s.core.errors import Invalid, NotEntitled, RenderError, SecurityError, Unavailable, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import RESOURCES, KubeClient
from ood_k8s.core.names import (
    DOMAIN,
    GID_ANNOTATION,
    GIDS_ANNOTATION,
    HOME_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_KEY,
    UID_ANNOTATION,
    USER_LABEL,
    USERNAME_ANNOTATION,
    UserNames,
)

if TYPE_CHECKING:
    from pathlib import Path

FORMAT = 2  # bump when this module changes what it creates, so every user is re-provisioned once

LAST_RUN_ANNOTATION = f"{DOMAIN}/last-hook-run"
HASH_ANNOTATION = f"{DOMAIN}/desired-state"
OBJECTS_ANNOTATION = f"{DOMAIN}/provisioned-objects"
COMPONENT_LABEL = f"{DOMAIN}/component"
COMPONENT = "user"

TEMPLATE_DIR = "user"
FIRST_TEMPLATE = "namespace.yaml.j2"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
# The instance metadata service hands out the node's IAM role: no pod may reach it.
BLOCKED_EGRESS_V4 = ("169.254.169.254/32",)
BLOCKED_EGRESS_V6 = ("fd00:ec2::254/128",)
# Kinds an earlier provisioning may have made that a later configuration no longer wants.
PRUNABLE = frozenset({"RoleBinding", "Role", "ResourceQuota", "LimitRange", "NetworkPolicy", "Secret",
                      "ConfigMap", "ServiceAccount"})

_GRANTS = frozenset({"RoleBinding", "Role"})

CURRENT, CREATED, UPDATED = "current", "created", "updated"
WOULD_CREATE, WOULD_UPDATE = "would-create", "would-update"
_MISSING: Any = object()
_VOLATILE_META = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink")


class Outcome(NamedTuple):
    """What :func:`ensure` did (or, in a dry run, would do) for one user.

    A NamedTuple, not a dataclass: the hook builds one at every login, and importing dataclasses
    (with inspect) would be a tenth of a returning user's hook.
    """

    username: str
    namespace: str
    action: str                       # current | created | updated | would-create | would-update
    changes: Sequence[str] = ()
    round_trips: int = 0

    @property
    def changed(self) -> bool:
        return self.action in (CREATED, UPDATED)


# --- who may be provisioned -------------------------------------------------------------------


def user_names(cfg: Config, username: str) -> UserNames:
    return names_mod.for_user(username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix)


def admit(cfg: Config, username: str, lookup: Optional[Callable[[str], Identity]] = None) -> Identity:
    """The user's identity if they may have a namespace at all; else UsageError/NotEntitled."""
    names_mod.check_username(username)
    ident = (lookup or identity_mod.lookup)(username)
    if ident.uid < cfg.users.min_uid:
        raise UsageError(f"user '{username}' has uid {ident.uid}, below users.min_uid ({cfg.users.min_uid})",
                         "system accounts get no namespace; lower users.min_uid if this is a real user")
    if not ident.in_any(cfg.users.allowed_groups):
        raise NotEntitled(f"user '{username}' is in none of users.allowed_groups "
                          f"({', '.join(cfg.users.allowed_groups)})",
                          "add the user to one of them, or change users.allowed_groups")
    return ident


def utc_now(clock: Callable[[], float] = time.time) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock()))


# --- desired state (pure) -----------------------------------------------------------------------


def user_templates(cfg: Config) -> "list[tuple[str, Path]]":
    """(template name, file) of every user template, the site's replacing built-ins of the same name;
    the Namespace first because everything else lives in it."""
    from pathlib import Path  # deferred: a returning user's hook renders nothing

    from ood_k8s.render.render import builtin_template_dir

    found: dict[str, Path] = {}
    for base in (str(builtin_template_dir()), cfg.templates.site_dir):
        directory = Path(base, TEMPLATE_DIR) if base else None
        if directory is not None and directory.is_dir():
            for path in directory.glob("*.yaml.j2"):
                found[path.name] = path
    if FIRST_TEMPLATE not in found:
        raise RenderError(f"template {TEMPLATE_DIR}/{FIRST_TEMPLATE} not found",
                          "reinstall ood-k8s or restore the file in templates.site_dir")
    ordered = sorted(found, key=lambda n: (n != FIRST_TEMPLATE, n))
    return [(f"{TEMPLATE_DIR}/{n}", found[n]) for n in ordered]


def gpu_quota(cfg: Config) -> dict[str, str]:
    """Quota per GPU resource: users.quota.gpus for every resource a profile offers, 0 for the default
    resource when no profile offers it (so kubectl users cannot take GPUs around the profiles)."""
    offered = {p.gpu.resource for p in cfg.profiles if p.gpu.max > 0}
    out = {r: str(cfg.users.quota.gpus) for r in offered}
    out.setdefault(DEFAULT_GPU_RESOURCE, "0")
    return dict(sorted(out.items()))


def template_context(cfg: Config, ident: Identity, now: str) -> dict[str, Any]:
    """Everything the user templates see: plain strings, numbers, lists and mappings."""
    names = user_names(cfg, ident.username)
    users = cfg.users
    q, lim, pull = users.quota, users.limits, users.image_pull_secret
    return {
        "user": {"username": ident.username, "slug": names.slug, "namespace": names.namespace,
                 "rbac_user": names.rbac_user, "uid": ident.uid, "gid": ident.gid, "home": ident.home},
        "labels": {**names.labels, COMPONENT_LABEL: COMPONENT},
        "namespace_annotations": namespace_annotations(ident, now),
        "pod_security": users.pod_security,
        "cluster_role": users.cluster_role,
        "quota": {"pods": str(q.pods), "cpu": q.cpu, "memory": q.memory, "gpus": gpu_quota(cfg),
                  "node_ports": str(q.node_ports), "persistent_volume_claims": str(q.persistent_volume_claims)},
        "limits": {"default_cpu": lim.default_cpu, "default_memory": lim.default_memory,
                   "default_request_cpu": lim.default_request_cpu,
                   "default_request_memory": lim.default_request_memory,
                   "max_cpu": lim.max_cpu, "max_memory": lim.max_memory},
        "portal_cidrs": list(cfg.cluster.portal_cidrs),
        "blocked_egress_v4": list(BLOCKED_EGRESS_V4),
        "blocked_egress_v6": list(BLOCKED_EGRESS_V6),
        "pull_secret": {"name": pull.name,
                        "data": base64.b64encode(pull.dockerconfigjson.encode()).decode() if pull.name else ""},
    }


def namespace_annotations(ident: Identity, now: str) -> dict[str, str]:
    """What the namespace records about its user: everything the admission guard (cluster.py) reads
    -- username, uid, gid, supplementary gids and home -- and when the hook last ran.  All of it
    comes from ``ident``, which :func:`desired_hash` covers, so a change re-provisions."""
    return {USERNAME_ANNOTATION: ident.username, UID_ANNOTATION: str(ident.uid), GID_ANNOTATION: str(ident.gid),
            GIDS_ANNOTATION: ",".join(str(g) for g in ident.gids), HOME_ANNOTATION: ident.home,
            LAST_RUN_ANNOTATION: now}


def desired_objects(cfg: Config, ident: Identity, *, now: str, renderer: Any = None) -> list[dict[str, Any]]:
    """The user's objects, Namespace first, validated against the cluster's schema."""
    names = user_names(cfg, ident.username)
    if renderer is None:
        from ood_k8s.render.render import for_config

        renderer = for_config(cfg)
    context = template_context(cfg, ident, now)
    objects: list[dict[str, Any]] = []
    for name, _path in user_templates(cfg):
        for obj in renderer.objects(name, **context):
            _check_scope(obj, names, name)
            objects.append(obj)
    # Namespace first (everything lives in it); access last, once quota, limits and network
    # policies are in place.  sorted() is stable, so templates keep their order otherwise.
    return sorted(objects, key=lambda o: 0 if o["kind"] == "Namespace" else 2 if o["kind"] in _GRANTS else 1)


def _check_scope(obj: dict[str, Any], names: UserNames, source: str) -> None:
    """A (site) template may only make things inside the user's own namespace."""
    kind = obj.get("kind", "")
    meta = obj.get("metadata") or {}
    res = RESOURCES.get(kind)
    if res is None:
        raise RenderError(f"{source}: kind {kind} is not one ood-k8s can apply",
                          f"use one of {', '.join(sorted(RESOURCES))}")
    if kind == "Namespace":
        ok = meta.get("name") == names.namespace
    else:
        ok = res.namespaced and meta.get("namespace") == names.namespace
    if not ok:
        raise RenderError(f"{source}: {kind}/{meta.get('name')} is outside namespace {names.namespace}",
                          "user templates may only create objects in the user's own namespace")


def desired_hash(cfg: Config, ident: Identity, storage_fingerprint: Mapping[str, Any]) -> str:
    """Digest of everything that determines the user's objects, Cognito user and storage."""
    names = user_names(cfg, ident.username)
    inputs = {
        "format": FORMAT,
        "version": __version__,
        "user": [ident.username, ident.uid, ident.gid, list(ident.groups), list(ident.gids), ident.home,
                 names.namespace, names.rbac_user],
        "users": to_dict(cfg.users, redact=False),
        "cluster": [list(cfg.cluster.portal_cidrs), cfg.cluster.kubernetes_version],
        "gpus": gpu_quota(cfg),
        "auth": to_dict(cfg.auth.cognito, redact=False) if cfg.auth.mode == "cognito" else cfg.auth.mode,
        "storage": storage_fingerprint,
        "templates": {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in user_templates(cfg)},
    }
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


# --- the fast path ----------------------------------------------------------------------------


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def touch(client: KubeClient, names: UserNames, now: str) -> Optional[dict[str, Any]]:
    """Stamp the last hook run on the user's namespace and return it; None if it does not exist.

    One request.  The JSON patch first tests that the namespace is this user's, so a namespace of
    the same name that someone else made is never changed.
    """
    from ood_k8s.core.errors import NotFound

    ops = [
        {"op": "test", "path": f"/metadata/labels/{_pointer(MANAGED_BY_KEY)}", "value": MANAGED_BY},
        {"op": "test", "path": f"/metadata/annotations/{_pointer(USERNAME_ANNOTATION)}", "value": names.username},
        {"op": "add", "path": f"/metadata/annotations/{_pointer(LAST_RUN_ANNOTATION)}", "value": now},
    ]
    try:
        ns = client.patch("Namespace", names.namespace, ops, patch_type="json")
    except NotFound:
        return None
    except Invalid:
        # A test failed: find out why (rare, so the extra request does not matter).
        ns = client.get_or_none("Namespace", names.namespace)
        if ns is None:
            return None
        check_owner(ns, names)
    _check_not_terminating(ns, names)
    return ns


def check_owner(ns: dict[str, Any], names: UserNames) -> None:
    """Refuse a namespace that ood-k8s did not make for exactly this user."""
    meta = ns.get("metadata") or {}
    labels = meta.get("labels") or {}
    owner = (meta.get("annotations") or {}).get(USERNAME_ANNOTATION)
    if labels.get(MANAGED_BY_KEY) != MANAGED_BY or labels.get(USER_LABEL) != names.slug:
        raise SecurityError(f"namespace {names.namespace} exists but was not made by ood-k8s for "
                            f"'{names.username}'", "rename or delete that namespace, or change "
                            "users.namespace_prefix")
    if owner is not None and owner != names.username:
        raise SecurityError(f"namespace {names.namespace} belongs to user '{owner}', not "
                            f"'{names.username}'", "check users.namespace_prefix; names must not collide")


def _check_not_terminating(ns: dict[str, Any], names: UserNames) -> None:
    if (ns.get("metadata") or {}).get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == \
            "Terminating":
        raise Unavailable(f"namespace {names.namespace} is being deleted",
                          "wait until it is gone (ood-k8s user teardown), then log in again")


def _annotations(obj: Optional[dict[str, Any]]) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _ref(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _refs(value: Optional[str]) -> list[str]:
    return [r for r in (value or "").split(",") if r.count("/") == 1]


# --- provisioning -----------------------------------------------------------------------------


def ensure(cfg: Config, ident: Identity, client: KubeClient, *, now: Optional[str] = None, force: bool = False,
           dry_run: bool = False, renderer: Any = None, cognito: Any = None, storage: Any = None) -> Outcome:
    """Make the cluster (and Cognito and storage) match the user's desired state.

    ``ident`` must come from :func:`admit`.  ``cognito`` and ``storage`` default to the modules of
    those names (anything with the same functions will do).  Callers hold :func:`user_lock`.
    """
    storage = storage if storage is not None else _module("storage")
    names = user_names(cfg, ident.username)
    now = now or utc_now()
    start = client.round_trips
    want = desired_hash(cfg, ident, storage.fingerprint(cfg, ident))
    if dry_run:
        outcome = _plan(cfg, ident, client, names, want, now, renderer, cognito, storage)
        return outcome._replace(round_trips=client.round_trips - start)
    ns = touch(client, names, now)
    known = _annotations(ns)
    if ns is not None and not force and known.get(HASH_ANNOTATION) == want:
        return Outcome(ident.username, names.namespace, CURRENT, round_trips=client.round_trips - start)

    objects = desired_objects(cfg, ident, now=now, renderer=renderer)  # before any change: may fail
    changes: list[str] = []
    if cfg.auth.mode == "cognito":
        cognito = cognito if cognito is not None else _module("cognito")
        changes += [f"Cognito: {c}" for c in cognito.ensure_user(cfg, ident)]
    if storage.ensure_home(cfg, ident):
        changes.append(f"created home directory {ident.home}")
    for obj in objects:
        _apply(client, obj)
    applied = [_ref(o) for o in objects]
    for ref in sorted(set(_refs(known.get(OBJECTS_ANNOTATION))) - set(applied)):
        kind, name = ref.split("/")
        if kind in PRUNABLE:
            client.delete(kind, name, names.namespace, missing_ok=True)
            changes.append(f"deleted {ref}")
    result = storage.provision(cfg, ident, names, known)
    for obj in result.objects:
        client.apply(obj)
    applied += [_ref(o) for o in result.objects]
    changes.insert(0, "applied " + ", ".join(applied))
    final = {**dict(result.annotations), HASH_ANNOTATION: want,
             OBJECTS_ANNOTATION: ",".join(_ref(o) for o in objects)}
    client.patch("Namespace", names.namespace, {"metadata": {"annotations": final}})
    return Outcome(ident.username, names.namespace, CREATED if ns is None else UPDATED, changes,
                   client.round_trips - start)


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module({"storage": "ood_k8s.storage.backend", "cognito": "ood_k8s.cloud.aws.cognito"}[name])


def _apply(client: KubeClient, obj: dict[str, Any]) -> None:
    try:
        client.apply(obj)
    except Invalid:
        if obj["kind"] != "RoleBinding":
            raise
        # roleRef is immutable: a changed users.cluster_role needs the binding made anew.
        meta = obj["metadata"]
        current = client.get_or_none("RoleBinding", meta["name"], meta["namespace"])
        if current is None or current.get("roleRef") == obj.get("roleRef"):
            raise
        client.delete("RoleBinding", meta["name"], meta["namespace"], missing_ok=True)
        client.apply(obj)


# --- dry run ------------------------------------------------------------------------------------


def _plan(cfg: Config, ident: Identity, client: KubeClient, names: UserNames, want: str, now: str,
          renderer: Any, cognito: Any, storage: Any) -> Outcome:
    ns = client.get_or_none("Namespace", names.namespace)
    if ns is not None:
        check_owner(ns, names)
        _check_not_terminating(ns, names)
    known = _annotations(ns)
    if ns is not None and known.get(HASH_ANNOTATION) == want:
        return Outcome(ident.username, names.namespace, CURRENT)
    objects = desired_objects(cfg, ident, now=now, renderer=renderer)
    changes: list[str] = []
    if cfg.auth.mode == "cognito":
        cognito = cognito if cognito is not None else _module("cognito")
        changes += [f"Cognito: {c}" for c in cognito.ensure_user(cfg, ident, dry_run=True)]
    volumes, notes = storage.plan(cfg, ident, names, known)
    changes += notes
    for obj in objects + volumes:
        meta = obj["metadata"]
        if obj["kind"] == "Namespace":
            current = ns  # read above
        elif ns is not None or "namespace" not in meta:
            current = client.get_or_none(obj["kind"], meta["name"], meta.get("namespace"))
        else:
            current = None  # nothing exists in a namespace that does not; cluster-scoped objects may
        if current is None:
            changes.append(f"create {_ref(obj)}")
            continue
        if obj["kind"] == "RoleBinding" and current.get("roleRef") != obj.get("roleRef"):
            changes.append(f"recreate {_ref(obj)}: " + "; ".join(diff({"roleRef": current.get("roleRef")},
                                                                        {"roleRef": obj.get("roleRef")})))
            continue
        after = client.apply(obj, dry_run=True)
        diffs = diff(comparable(current), comparable(after), secret=obj["kind"] == "Secret")
        if diffs:
            changes.append(f"update {_ref(obj)}: " + "; ".join(diffs))
    wanted = {_ref(o) for o in objects}
    changes += [f"delete {ref}" for ref in sorted(set(_refs(known.get(OBJECTS_ANNOTATION))) - wanted)
                if ref.split("/")[0] in PRUNABLE]
    return Outcome(ident.username, names.namespace, WOULD_CREATE if ns is None else WOULD_UPDATE, changes)


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without what the server changes on every write (for diffs)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_META}
    if "annotations" in meta:
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_RUN_ANNOTATION}
    out["metadata"] = meta
    return out


def diff(old: Any, new: Any, *, secret: bool = False, limit: int = 8) -> list[str]:
    """Readable differences ``path: old -> new``; values under a Secret's data are never shown."""
    out: list[str] = []

    def show(value: Any, hide: bool) -> str:
        if value is _MISSING:
            return "(none)"
        if hide:
            return "<redacted>"
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
        return text if len(text) <= 60 else text[:57] + "..."

    def walk(a: Any, b: Any, where: str, hide: bool) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                walk(a.get(key, _MISSING), b.get(key, _MISSING), f"{where}.{key}" if where else str(key),
                     hide or (secret and not where and key in ("data", "stringData")))
        elif a != b:
            out.append(f"{where}: {show(a, hide)} -> {show(b, hide)}")

    walk(old, new, "", False)
    return out if len(out) <= limit else [*out[:limit], f"... and {len(out) - limit} more"]


# --- teardown -----------------------------------------------------------------------------------


def teardown(cfg: Config, username: str, client: KubeClient, *, delete_home_data: bool = False,
             delete_cognito_user: bool = False, dry_run: bool = False, cognito: Any = None, storage: Any = None,
             lookup: Optional[Callable[[str], Identity]] = None) -> list[str]:
    """Remove a user's namespace (ending their sessions), token cache on this portal and storage
    objects; home data stays unless ``delete_home_data``.  Returns what was (or, in a dry run, would
    be) done."""
    from ood_k8s.auth.plugin import forget_tokens

    names_mod.check_username(username)
    if delete_cognito_user and cfg.auth.mode != "cognito":
        raise UsageError("--delete-cognito-user needs auth.mode: cognito",
                         f"auth.mode is {cfg.auth.mode}; leave the option out")
    names = user_names(cfg, username)
    ns = client.get_or_none("Namespace", names.namespace)
    if ns is not None:
        check_owner(ns, names)
    ident = _teardown_identity(cfg, username, ns, lookup or identity_mod.lookup)
    if dry_run:
        done = []
        if ns is not None:
            pods = [p for p in client.list("Pod", names.namespace)
                    if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
            done.append(f"would delete namespace {names.namespace} and everything in it "
                        f"({len(pods)} running session{'s' if len(pods) != 1 else ''} would end)")
        else:
            done.append(f"namespace {names.namespace} does not exist")
        tokens = forget_tokens(cfg, username, dry_run=True)
        if tokens:
            done.append(tokens)
        if cfg.storage.mode != "none":
            done.append(f"would release {cfg.storage.mode} home storage, "
                        + ("DELETING the home directory's data" if delete_home_data else "keeping its data"))
        if delete_cognito_user:
            done.append(f"would delete the Cognito user {username}")
        return done
    storage = storage if storage is not None else _module("storage")
    done = []
    if ns is not None:
        client.delete("Namespace", names.namespace, missing_ok=True)
        done.append(f"deleted namespace {names.namespace}")
    tokens = forget_tokens(cfg, username)  # useless without the namespace's RoleBinding: none left behind
    if tokens:
        done.append(tokens)
    done += list(storage.teardown(cfg, ident, names, client, delete_home_data))
    if delete_cognito_user:
        cognito = cognito if cognito is not None else _module("cognito")
        cognito.delete_user(cfg, username)
        done.append(f"deleted Cognito user {username}")
    return done


def _teardown_identity(cfg: Config, username: str, ns: Optional[dict[str, Any]],
                       lookup: Callable[[str], Identity]) -> Identity:
    """The user's identity; for a user who has left (no longer in NSS), what the namespace remembers."""
    try:
        return lookup(username)
    except UsageError:
        ann = _annotations(ns)

        def num(key: str) -> int:
            try:
                return int(ann.get(key, "-1"))
            except ValueError:
                return -1

        home = ann.get(HOME_ANNOTATION, "")
        if not home.startswith("/") or os.path.normpath(home) != home:
            home = os.path.join(cfg.storage.home_root, username)  # a namespace from before FORMAT 2
        return Identity(username=username, uid=num(UID_ANNOTATION), gid=num(GID_ANNOTATION), home=home)


# --- one provisioning per user at a time --------------------------------------------------------


@contextmanager
def user_lock(cfg: Config, username: str, *, timeout: float = 120.0, poll: float = 0.02,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Hold the user's lock file (``hook.lock_dir``) so two hooks, or a hook and a sync, never
    interleave their writes.  A second caller waits; after ``timeout`` it gives up (Unavailable)."""
    names_mod.check_username(username)
    directory = cfg.hook.lock_dir
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
    except OSError as exc:
        raise SecurityError(f"cannot create lock directory {directory}: {exc.strerror}",
                            "run as root, or set hook.lock_dir to a root-owned directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SecurityError(f"lock directory {directory} is not a directory", "remove it or set hook.lock_dir")
    path = os.path.join(directory, names_mod.slug(username, names_mod.MAX_LABEL) + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise SecurityError(f"cannot open lock file {path}: {exc.strerror}",
                            "remove it if it is a symbolic link; check hook.lock_dir") from None
    try:
        fsutil.flock_wait(fd, timeout, lambda: Unavailable(
            f"another ood-k8s run for user '{username}' has held its lock for {timeout:.0f} s",
            "try again later; see the hook's log lines"), clock=clock, sleep=sleep, poll=poll)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (unlinking would race with waiters)

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""One user's place on the cluster: read what is there, compare with what should be, apply.

The per-login hook calls :func:`ensure` on every PUN start; ``ood-k8s user setup|sync`` call it for
many users at once (:mod:`ood_k8s.users.sync`).  What should be is :mod:`ood_k8s.users.desired`:
the objects, and the digest of everything that decides them.

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

import json
import os
import stat
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Optional, Sequence

from ood_k8s.auth import provider as auth_provider
from ood_k8s.config import Config
from ood_k8s.core import fsutil
from ood_k8s.core import identity as identity_mod
from ood_k8s.core import names as names_mod
from ood_k8s.core.errors import Invalid, NotFound, SecurityError, Unavailable, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.names import UserNames
from ood_k8s.core.timefmt import rfc3339
from ood_k8s.core.vocab import (
    GID_ANNOTATION,
    HASH_ANNOTATION,
    HOME_ANNOTATION,
    LAST_RUN_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_KEY,
    OBJECTS_ANNOTATION,
    UID_ANNOTATION,
    USER_LABEL,
    USERNAME_ANNOTATION,
)
from ood_k8s.policy import access
from ood_k8s.users.desired import desired_hash, desired_objects, unresolved_groups, user_names

# Kinds an earlier provisioning may have made that a later configuration no longer wants.
PRUNABLE = frozenset({"RoleBinding", "Role", "ResourceQuota", "LimitRange", "NetworkPolicy", "Secret",
                      "ConfigMap", "ServiceAccount"})

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


def admit(cfg: Config, username: str, lookup: Optional[Callable[[str], Identity]] = None) -> Identity:
    """The user's identity if they may have a namespace at all; else UsageError (the name) or
    NotEntitled (:func:`ood_k8s.policy.access.check_account`)."""
    names_mod.check_username(username)
    ident = (lookup or identity_mod.lookup)(username)
    access.check_account(cfg.users, ident, access.NAMESPACE)
    return ident


def utc_now(clock: Callable[[], float] = time.time) -> str:
    return rfc3339(clock())


# --- the fast path ----------------------------------------------------------------------------


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def touch(client: KubeClient, names: UserNames, now: str) -> Optional[dict[str, Any]]:
    """Stamp the last hook run on the user's namespace and return it; None if it does not exist.

    One request.  The JSON patch first tests that the namespace is this user's, so a namespace of
    the same name that someone else made is never changed.
    """
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
           dry_run: bool = False, renderer: Any = None, providers: Optional[Mapping[str, Any]] = None,
           storage: Any = None) -> Outcome:
    """Make the cluster (and the identity provider and storage) match the user's desired state.

    ``ident`` must come from :func:`admit`.  ``providers`` replace registered identity providers by
    mode, ``storage`` the storage module (anything with the same functions will do).  Callers hold
    :func:`user_lock`.
    """
    storage = storage if storage is not None else _module("storage")
    names = user_names(cfg, ident.username)
    now = now or utc_now()
    start = client.round_trips
    want = desired_hash(cfg, ident, storage.fingerprint(cfg, ident))
    if dry_run:
        outcome = _plan(cfg, ident, client, names, want, now, renderer, auth_provider.of(cfg, providers), storage)
        return outcome._replace(round_trips=client.round_trips - start)
    ns = touch(client, names, now)
    known = _annotations(ns)
    if ns is not None and not force and known.get(HASH_ANNOTATION) == want:
        return Outcome(ident.username, names.namespace, CURRENT, round_trips=client.round_trips - start)
    unresolved = unresolved_groups(ident)
    if ns is not None and not force and known.get(HASH_ANNOTATION) and unresolved:
        # The names decide Cognito groups and entitlements: provisioning with numbers in their place
        # would drop mapped groups.  Keep what was provisioned until NSS answers again.
        return Outcome(ident.username, names.namespace, CURRENT, [
            f"kept as provisioned: NSS gave no name for group {', '.join(unresolved)} (retried at the next login)"],
            client.round_trips - start)

    objects = desired_objects(cfg, ident, now=now, renderer=renderer)  # before any change: may fail
    # Everything local before any remote side effect: a home refused here leaves no identity-provider
    # user (nor any object) behind.
    check_home(cfg, ident)
    made_home = storage.ensure_home(cfg, ident)
    identity = auth_provider.of(cfg, providers)
    changes = [f"{identity.title}: {c}" for c in identity.ensure_user(cfg, ident)]
    if made_home:
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


def check_home(cfg: Config, ident: Identity) -> None:
    """Refuse (SecurityError) a home that is, or is reached through, a symbolic link below
    ``storage.home_root``, whether or not ood-k8s creates homes.  A missing home is left to
    ``storage.ensure_home``; one root cannot search (NFS root_squash) to the user-side write."""
    try:
        fd = fsutil.open_home(ident.home, cfg.storage.home_root)
    except (FileNotFoundError, PermissionError):
        return
    os.close(fd)


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module({"storage": "ood_k8s.storage.backend"}[name])


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
          renderer: Any, identity: Any, storage: Any) -> Outcome:
    ns = client.get_or_none("Namespace", names.namespace)
    if ns is not None:
        check_owner(ns, names)
        _check_not_terminating(ns, names)
    known = _annotations(ns)
    if ns is not None and known.get(HASH_ANNOTATION) == want:
        return Outcome(ident.username, names.namespace, CURRENT)
    objects = desired_objects(cfg, ident, now=now, renderer=renderer)
    changes = [f"{identity.title}: {c}" for c in identity.ensure_user(cfg, ident, dry_run=True)]
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
             delete_cognito_user: bool = False, dry_run: bool = False,
             providers: Optional[Mapping[str, Any]] = None, storage: Any = None,
             lookup: Optional[Callable[[str], Identity]] = None) -> list[str]:
    """Remove a user's namespace (ending their sessions), token cache on this portal and storage
    objects; home data stays unless ``delete_home_data``.  Returns what was (or, in a dry run, would
    be) done."""
    from ood_k8s.auth.login import forget_tokens

    names_mod.check_username(username)
    identity = auth_provider.of(cfg, providers)
    if delete_cognito_user and not identity.manages_users:
        raise UsageError("--delete-cognito-user needs auth.mode: cognito",
                         f"auth.mode is {cfg.auth.mode}; leave the option out")
    names = user_names(cfg, username)
    ns = client.get_or_none("Namespace", names.namespace)
    if ns is not None:
        check_owner(ns, names)
    ident = _teardown_identity(cfg, username, ns, lookup or identity_mod.lookup)
    if ident.uid < 0 and ns is None and forget_tokens(cfg, username, dry_run=True) is None:
        raise UsageError(f"user '{names_mod.printable(username)}' is unknown: not known to this host (NSS), "
                         f"no namespace {names.namespace}, no token cache", "check the username")
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
            done.append(f"would delete the {identity.title} user {username}")
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
        identity.delete_user(cfg, username)
        done.append(f"deleted {identity.title} user {username}")
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

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""What a user should have on the cluster, and one digest of everything that decides it: pure.

:func:`desired_objects` renders ``templates/user/*.yaml.j2`` (a site's ``templates.site_dir/user/``
first, where a site may also add files) into the user's Namespace, RoleBinding, ResourceQuota,
LimitRange, NetworkPolicies and optional pull Secret.  :func:`desired_hash` condenses everything
those objects -- and the Cognito user and the storage -- depend on into one digest *without
rendering*, so a returning user's hook (which computes it at every login) never imports Jinja2.
"""

import base64
import json
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional

from ood_k8s import __version__
from ood_k8s.auth import provider as auth_provider
from ood_k8s.config import Config, to_dict
from ood_k8s.core import names as names_mod
from ood_k8s.core.errors import RenderError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import RESOURCES
from ood_k8s.core.names import UserNames
from ood_k8s.core.vocab import (
    COMPONENT_LABEL,
    GID_ANNOTATION,
    GIDS_ANNOTATION,
    HOME_ANNOTATION,
    LAST_RUN_ANNOTATION,
    PROFILES_ANNOTATION,
    UID_ANNOTATION,
    USER_COMPONENT,
    USERNAME_ANNOTATION,
)
from ood_k8s.policy import access

if TYPE_CHECKING:
    from pathlib import Path

FORMAT = 2  # bump when provisioning changes what it creates, so every user is re-provisioned once

TEMPLATE_DIR = "user"
FIRST_TEMPLATE = "namespace.yaml.j2"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
# The instance metadata service hands out the node's IAM role: no pod may reach it.
BLOCKED_EGRESS_V4 = ("169.254.169.254/32",)
BLOCKED_EGRESS_V6 = ("fd00:ec2::254/128",)

_GRANTS = frozenset({"RoleBinding", "Role"})


def user_names(cfg: Config, username: str) -> UserNames:
    return names_mod.for_user(username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix)


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
        "labels": {**names.labels, COMPONENT_LABEL: USER_COMPONENT},
        "namespace_annotations": {**namespace_annotations(ident, now), **_entitlements(cfg, ident, now)},
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
        **_isolation_context(cfg, ident),
        "pull_secret": {"name": pull.name,
                        "data": base64.b64encode(pull.dockerconfigjson.encode()).decode() if pull.name else ""},
    }


def _isolation_context(cfg: Config, ident: Identity) -> dict[str, Any]:
    """The tenant-isolation rules of policy/: network policy contents and the profiles the guard admits."""
    from ood_k8s.policy import network, quota  # deferred: a returning user's hook renders nothing

    return {**network.template_context(cfg), **quota.template_context(cfg)}


def _entitlements(cfg: Config, ident: Identity, now: str) -> dict[str, str]:
    """The profiles the admission guard lets this user's pods use (policy/pods.py), the courses current at
    ``now`` (the hook's RFC 3339 time) included."""
    from ood_k8s.core.timefmt import timestamp
    from ood_k8s.policy import pods  # deferred: a returning user's hook renders nothing

    granted = access.course_profiles(cfg, ident, timestamp(now) or time.time())
    return {PROFILES_ANNOTATION: pods.entitled_profiles(cfg.profiles, ident, granted)}


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


def hash_inputs(cfg: Config, ident: Identity, storage_fingerprint: Mapping[str, Any],
                now: Optional[float] = None) -> dict[str, Any]:
    """Everything that determines the user's objects, Cognito user and storage (what is hashed).  With
    courses, the profiles they grant at ``now`` (default: the clock): a term's start or end re-provisions."""
    import hashlib  # the hot-path rule keeps it off module level; every login hashes anyway

    names = user_names(cfg, ident.username)
    courses = {"courses": access.course_profiles(cfg, ident, time.time() if now is None else now)} \
        if cfg.courses else {}
    return {**courses,
        "format": FORMAT,
        "version": __version__,
        "user": [ident.username, ident.uid, ident.gid, list(ident.groups), list(ident.gids), ident.home,
                 names.namespace, names.rbac_user],
        "users": to_dict(cfg.users, redact=False),
        "cluster": [list(cfg.cluster.portal_cidrs), cfg.cluster.kubernetes_version],
        "gpus": gpu_quota(cfg),
        "isolation": [list(cfg.cluster.pod_cidrs), [[p.name, list(p.groups)] for p in cfg.profiles],
                      cfg.cluster.connection],
        "auth": auth_provider.of(cfg).fingerprint(cfg),
        "storage": storage_fingerprint,
        "templates": {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in user_templates(cfg)},
    }


def unresolved_groups(ident: Identity) -> list[str]:
    """The user's groups NSS gave no name for (:func:`ood_k8s.core.identity.lookup` then puts the gid
    in the name's place): usually a transient LDAP/SSSD failure, never a reason to change anything."""
    numbers = {str(ident.gid), *(str(g) for g in ident.gids)}
    return [g for g in ident.groups if g in numbers]


def desired_hash(cfg: Config, ident: Identity, storage_fingerprint: Mapping[str, Any],
                 now: Optional[float] = None) -> str:
    """Digest of :func:`hash_inputs`: equal digests mean nothing of the user's needs doing."""
    import hashlib

    blob = json.dumps(hash_inputs(cfg, ident, storage_fingerprint, now), sort_keys=True, separators=(",", ":"),
                      default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

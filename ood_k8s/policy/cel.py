"""The admission guard's CEL, generated from the site's rules as :mod:`ood_k8s.policy` defines them.

The guard (``templates/cluster/admission.yaml.j2``, a ValidatingAdmissionPolicy on user namespaces)
is what stops a user who talks to the API directly from running a pod as someone else or mounting
someone else's files.  Its fixed CEL lives in the template; :func:`admission_rules` supplies the rest:
the namespace annotations it trusts (:func:`recorded`, keys from :mod:`ood_k8s.core.vocab`), the
minimum uid (:mod:`ood_k8s.policy.access`) and what a session may mount (:mod:`ood_k8s.policy.volumes`)
-- the same definitions submit refuses by, so a request the form and submit accept is one the guard
admits.

Values from the configuration reach the CEL only as whole CEL literals built by :func:`cel_string`
and :func:`cel_template`, so a hostile claim name cannot change an expression.
"""

from __future__ import annotations

import string
from typing import Any

from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.errors import RenderError
from ood_k8s.policy import access, pods, volumes
from ood_k8s.sessions import lifetime

_CEL_PLAIN = frozenset(string.ascii_letters + string.digits + " ._/@:+=,~-")
# {slug} is the user label the hook puts on the namespace (names.UserNames.slug); '' when it is missing.
_CEL_SLUG = (f"(has(namespaceObject.metadata.labels) && '{vocab.USER_LABEL}' in namespaceObject.metadata.labels"
             f" ? namespaceObject.metadata.labels['{vocab.USER_LABEL}'] : '')")
_CEL_FIELDS = {"user": "variables.username", "slug": _CEL_SLUG, "uid": "string(variables.uid)",
               "gid": "string(variables.gid)"}


def cel_string(value: str) -> str:
    """A CEL string literal equal to ``value``: anything but plain characters is a \\u/\\U escape."""
    out = []
    for ch in value:
        if ch in _CEL_PLAIN:
            out.append(ch)
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise RenderError(f"value {value[:40]!r} contains a lone UTF-16 surrogate", "fix the configuration")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def cel_template(template: str) -> str:
    """A CEL expression for a ``{user}``/``{uid}``/``{gid}`` name template, evaluated per namespace."""
    parts: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RenderError(f"name template {template!r}: {exc}", "use only {user}, {uid} and {gid}") from None
    for literal, field, spec, conversion in parsed:
        if literal:
            parts.append(cel_string(literal))
        if field is None:
            continue
        if field not in _CEL_FIELDS or spec or conversion:
            raise RenderError(f"name template {template!r} uses {{{field}}}", "use only {user}, {uid} and {gid}")
        parts.append(_CEL_FIELDS[field])
    return " + ".join(parts) or '""'


def cel_list(items: list[str]) -> str:
    """A CEL list of CEL expressions."""
    return "[" + ", ".join(items) + "]"


# --- what the hook records on a user namespace -----------------------------------------------------------


def _key(key: str) -> str:
    """A CEL literal of one of our own keys (a code constant, so plain characters: quoted as is)."""
    if not set(key) <= _CEL_PLAIN:
        raise RenderError(f"key {key!r} needs escaping in CEL", "keys in core/vocab.py are plain ASCII")
    return f"'{key}'"


def _recorded(key: str, pattern: str = "", parse: str = "", missing: str = "''") -> str:
    """CEL reading annotation ``key`` of the namespace; ``missing`` if absent or not matching ``pattern``."""
    k = _key(key)
    value = f"variables.annotations[{k}]"
    test = f"{k} in variables.annotations" + (f" && {value}.matches('{pattern}')" if pattern else "")
    return f"{test} ? {parse}({value}) : {missing}" if parse else f"{test} ? {value} : {missing}"


def recorded() -> dict[str, str]:
    """The guard's variables read from what the hook records on each user namespace: the user's ids
    (-1 when missing: no pod can match them), supplementary gids, username and home ('' when missing)."""
    digits = "^[0-9]{1,10}$"
    return {
        "uid": _recorded(vocab.UID_ANNOTATION, digits, "int", "-1"),
        "gid": _recorded(vocab.GID_ANNOTATION, digits, "int", "-1"),
        "gids": _recorded(vocab.GIDS_ANNOTATION, "^[0-9]{1,10}(,[0-9]{1,10})*$"),
        "username": _recorded(vocab.USERNAME_ANNOTATION),
        "home": _recorded(vocab.HOME_ANNOTATION),
    }


def unrecorded_message() -> str:
    """The guard's messageExpression for a namespace without valid ids."""
    return (f"'namespace ' + namespaceObject.metadata.name + ' has no valid {vocab.UID_ANNOTATION} and "
            f"{vocab.GID_ANNOTATION} annotations: an administrator must run ood-k8s user setup for its user'")


# --- what a session may mount ----------------------------------------------------------------------------


def volume_kinds_rule(cfg: Config) -> str:
    """The guard's CEL for :data:`~ood_k8s.policy.volumes.SESSION_VOLUME_KINDS`, ``jobs.csi_drivers`` and
    the hostPath home (code constants, and driver names checked by config and quoted by :func:`cel_string`)."""
    sources = " || ".join(f"has(s.{k})" for k in volumes.SESSION_PROJECTED_SOURCES)
    special = {"projected": f"(has(v.projected) && (!has(v.projected.sources) || "
                            f"v.projected.sources.all(s, {sources})))"}
    kinds = [special.get(k, f"has(v.{k})") for k in volumes.SESSION_VOLUME_KINDS]
    if cfg.jobs.csi_drivers:
        kinds.append(f"(has(v.csi) && v.csi.driver in {cel_list([cel_string(d) for d in cfg.jobs.csi_drivers])})")
    if volumes.host_path_home(cfg):
        kinds.append("(has(v.hostPath) && variables.home != '' && v.hostPath.path == variables.home)")
    return "variables.volumes.all(v, " + " || ".join(kinds) + ")"


def _volume_kinds_message(cfg: Config) -> str:
    kinds = ", ".join(volumes.SESSION_VOLUME_KINDS)
    if cfg.jobs.csi_drivers:
        kinds += f", inline CSI of the drivers {', '.join(cfg.jobs.csi_drivers)}"
    if volumes.host_path_home(cfg):
        kinds += f" and the hostPath of the user's home (namespace annotation {vocab.HOME_ANNOTATION})"
    return f"volumes may only be of the kinds ood-k8s uses: {kinds}"


def admission_rules(cfg: Config) -> dict[str, Any]:
    """The guard's template context but for its name and labels: what it reads from the namespace, the
    minimum uid, the claims a session may mount (names, read-only ones, fixed sub-paths), the
    volume-kind rule and their messages."""
    claims: list[str] = []
    read_only, sub_paths, allowed = [], [], []
    for c in volumes.session_claims(cfg):
        claim = cel_template(c.claim)
        claims.append(claim)
        allowed.append(f"the home claim '{c.claim}'" if c.home else f"'{c.claim}'")
        if c.read_only:
            read_only.append(claim)
        if c.sub_path:
            sub_paths.append(cel_list([claim, cel_template(c.sub_path)]))
    return {
        "recorded": recorded(),
        "unrecorded_message": unrecorded_message(),
        "min_uid": access.min_uid(cfg.users),
        "claims": cel_list(claims),
        "read_only_claims": cel_list(read_only),
        "sub_paths": cel_list(sub_paths),
        "volume_kinds_rule": volume_kinds_rule(cfg),
        "volume_kinds_message": _volume_kinds_message(cfg),
        "claims_message": ("the only claims a session may mount are " + ", ".join(allowed)) if allowed
        else "sessions may not mount persistent volume claims on this site",
    }


# --- where a session may run, at what priority, for how long ----------------------------------------------


def cel_string_map(values: dict[str, str]) -> str:
    """A CEL map literal of strings (keys and values quoted by :func:`cel_string`)."""
    return "{" + ", ".join(f"{cel_string(k)}: {cel_string(v)}" for k, v in values.items()) + "}"


def _entitled(profile: str) -> str:
    """CEL: whether the namespace's user is entitled to ``profile`` (a CEL string expression)."""
    return f"(',' + variables.profiles + ',').matches(',' + {profile} + ',')"


def _reserved(key: str, value: str) -> str:
    """CEL: whether node label ``key``=``value`` (CEL string expressions) places a pod on nodes reserved for
    profiles the user is not entitled to (:func:`ood_k8s.policy.pods.reserved_for_others`, for every entitled
    profile at once): a node pool only such profiles name, or their node_selector label no entitled one holds."""
    def holds(entitled: str) -> str:
        return (f"variables.profileSelectors.exists(p, {entitled}{_entitled('p')} && {key} in "
                f"variables.profileSelectors[p] && variables.profileSelectors[p][{key}] == {value})")
    return (f"({key} == variables.nodepoolKey ? ({value} in variables.nodePools && "
            f"!variables.nodePools[{value}].exists(p, {_entitled('p')})) : ({holds('!')} && !{holds('')}))")


def pod_rules(cfg: Config) -> dict[str, Any]:
    """The guard's scheduling rules (:mod:`ood_k8s.policy.pods`): the allowed priority and runtime classes,
    the safe sysctls, the walltime ceiling, the GPU resources, each profile's placement and node pool, and
    whether ``supplementalGroupsPolicy: Strict`` is required.  Homogeneous CEL literals only (the API
    server's type checker joins a literal's element types)."""
    gpu = {key: (selector, resource) for key, (_, selector, resource) in
           pods.gpu_placements(cfg.profiles, cfg.courses).items()}
    profile_of = {key: name for key, (name, _, _) in pods.gpu_placements(cfg.profiles, cfg.courses).items()}
    # A course's pool adds placements keyed profile@course; the entitlement is still the profile's.
    gpu_profile = "p" if all(k == v for k, v in profile_of.items()) else f"{cel_string_map(profile_of)}[p]"
    return {
        "profiles_expr": _recorded(vocab.PROFILES_ANNOTATION, "^[a-z0-9-]+(,[a-z0-9-]+)*$"),
        "priority_classes": cel_list([cel_string(c) for c in pods.priority_classes(cfg.profiles)]),
        "runtime_classes": cel_list([cel_string(c) for c in pods.runtime_classes(cfg.profiles)]),
        "safe_sysctls": cel_list([cel_string(s) for s in pods.SAFE_SYSCTLS]),
        "max_walltime": lifetime.ceiling(cfg.jobs),
        "gpu_resources": cel_list([cel_string(r) for r in pods.gpu_resources(cfg.profiles)]),
        "gpu_profiles": cel_list([cel_string(name) for name in gpu]),
        "gpu_selectors": "{" + ", ".join(f"{cel_string(name)}: {cel_string_map(selector)}"
                                         for name, (selector, _) in gpu.items()) + "}",
        "gpu_resource_of": cel_string_map({name: resource for name, (_, resource) in gpu.items()}),
        "node_pools": "{" + ", ".join(f"{cel_string(pool)}: {cel_list([cel_string(n) for n in names])}"
                                      for pool, names in pods.node_pools(cfg.profiles, cfg.courses).items()) + "}",
        "gpu_pools": cel_list([cel_string(pool) for pool in pods.gpu_pools(cfg.profiles, cfg.courses)]),
        "nodepool_key": cel_string(vocab.KARPENTER_NODEPOOL_LABEL),
        "entitled_gpu_placement": ("(!variables.wantsGpu && size(variables.gpuAsked) == 0) || "
                                   "variables.gpuProfiles.exists(p, " + _entitled(gpu_profile) +
                                   " && variables.gpuSelectors[p].all(k, k in variables.nodeSelector && "
                                   "variables.nodeSelector[k] == variables.gpuSelectors[p][k]) && "
                                   "variables.gpuAsked.all(r, r == variables.gpuResourceOf[p]))"),
        "entitled_pool": ("!(variables.nodepoolKey in variables.nodeSelector) || "
                          "!(variables.nodeSelector[variables.nodepoolKey] in variables.nodePools) || "
                          "variables.nodePools[variables.nodeSelector[variables.nodepoolKey]].exists(p, "
                          + _entitled("p") + ")"),
        "placement_keys": cel_list([cel_string(k) for k in pods.placement_keys(cfg.profiles)]),
        "profile_selectors": "{" + ", ".join(f"{cel_string(p.name)}: {cel_string_map(p.node_selector)}"
                                             for p in cfg.profiles if p.node_selector) + "}",
        "entitled_labels": (f"variables.nodeSelector.all(k, !{_reserved('k', 'variables.nodeSelector[k]')}) && "
                            "variables.nodeTerms.all(t, !has(t.matchExpressions) || t.matchExpressions.all(e, "
                            "e.operator != 'In' || !has(e.values) || e.values.all(v, !"
                            + _reserved("e.key", "v") + ")))"),
        "strict_groups": pods.strict_groups_required(cfg),
        "profiles_annotation": vocab.PROFILES_ANNOTATION,
        **lifetime_rules(),
    }


# --- a session's lifetime: what a student may patch on their own pod ---------------------------------------

_INSTANT = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"  # RFC 3339 UTC, whole seconds (timefmt.rfc3339)


def lifetime_rules() -> dict[str, str]:
    """The guard's rules for :data:`~ood_k8s.core.vocab.WALLTIME_ANNOTATION` and
    :data:`~ood_k8s.core.vocab.DEADLINE_ANNOTATION` (:mod:`ood_k8s.sessions.lifetime`), so a student patching
    their own pod gains nothing an extend would not give: the wall time is fixed at submit, at most the ceiling;
    the deadline is set only on a started pod, to an instant no later than its start + activeDeadlineSeconds
    (which Kubernetes only lets fall), and never removed.  An UPDATE that leaves either as it was is not
    judged -- the agent lowers the ceiling below the deadline when it ends a session."""
    new, old = "variables.podAnnotations", "variables.oldAnnotations"
    w, d = _key(vocab.WALLTIME_ANNOTATION), _key(vocab.DEADLINE_ANNOTATION)

    def unchanged(k: str) -> str:
        return f"(({k} in {new}) == ({k} in {old}) && (!({k} in {new}) || {new}[{k}] == {old}[{k}]))"

    walltime = (f"request.operation == 'CREATE' ? (!({w} in {new}) || ({new}[{w}].matches('^[0-9]{{1,10}}$') && "
                f"int({new}[{w}]) <= object.spec.activeDeadlineSeconds)) : {unchanged(w)}")
    deadline = (f"request.operation == 'CREATE' ? !({d} in {new}) : ({unchanged(d)} || ({d} in {new} && "
                f"{new}[{d}].matches('{_INSTANT}') && has(object.status) && has(object.status.startTime) && "
                f"timestamp({new}[{d}]) <= timestamp(object.status.startTime) + "
                "duration(string(object.spec.activeDeadlineSeconds) + 's')))")
    return {
        "walltime_rule": walltime,
        "walltime_message": f"{vocab.WALLTIME_ANNOTATION} is the wall time granted at submit (whole seconds, at "
                            "most activeDeadlineSeconds) and cannot be changed",
        "deadline_rule": deadline,
        "deadline_message": f"{vocab.DEADLINE_ANNOTATION} may only be set on a started session (ood-k8s job "
                            "extend), to an RFC 3339 UTC instant no later than its start + activeDeadlineSeconds, "
                            "and never removed",
    }

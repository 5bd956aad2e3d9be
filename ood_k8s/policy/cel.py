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
from ood_k8s.policy import access, volumes

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

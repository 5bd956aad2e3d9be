"""Object validation with the rules and the exact wording of the real API server
(k8s.io/apimachinery/pkg/util/validation and pkg/apis/core/validation).

Only the checks a client of this project can plausibly trip over are here; the
rest of the real validation is deliberately left out (see README notes in
``__init__``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import lease, quantity
from .errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from .registry import ResourceType

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + "(\\." + _LABEL_FMT + ")*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile("^" + fmt + "$")


_LABEL_RE, _SUBDOMAIN_RE, _DNS1035_RE = _full(_LABEL_FMT), _full(_SUBDOMAIN_FMT), _full(_DNS1035_FMT)
_QNAME_RE, _LABEL_VALUE_RE, _CONFIG_KEY_RE = _full(_QNAME_FMT), _full(_LABEL_VALUE_FMT), _full(_CONFIG_KEY_FMT)


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError – including its odd double space before "or"."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, ex in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += f"'{ex}', "
    return msg + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_RE.match(value):
        if _SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character",
                    _LABEL_FMT,
                    "my-name",
                    "123-abc",
                )
            )
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _SUBDOMAIN_RE.match(value):
        errs.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
                _SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_RE.match(value):
        errs.append(
            regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character",
                _DNS1035_FMT,
                "my-name",
                "abc-123",
            )
        )
    return errs


def is_path_segment_name(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


NAME_RULES = {
    "dns1123-label": is_dns1123_label,
    "dns1123-subdomain": is_dns1123_subdomain,
    "dns1035-label": is_dns1035_label,
    "path-segment": is_path_segment_name,
}

_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)


def is_qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QNAME_RE.match(name):
        errs.append("name part " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


# --- metadata -----------------------------------------------------------------


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(labels, dict):
        return errs
    for k in sorted(labels):
        v = labels[k]
        errs += [invalid(path, k, m) for m in is_qualified_name(k)]
        if not isinstance(v, str):
            errs.append(invalid(path, v, "must be a string"))
            continue
        errs += [invalid(path, v, m) for m in is_valid_label_value(v)]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(annotations, dict):
        return errs
    total = 0
    for k in sorted(annotations):
        errs += [invalid(path, k, m) for m in is_qualified_name(k.lower())]
        total += len(k) + len(str(annotations[k]))
    if total > 256 * 1024:
        errs.append(FieldError("FieldValueTooLong", path, detail=f"must have at most {256 * 1024} bytes"))
    return errs


def validate_object_meta(rt: ResourceType, meta: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    name = meta.get("name") or ""
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs += [invalid("metadata.name", name, m) for m in NAME_RULES[rt.name_rule](name)]
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    errs += validate_annotations(meta.get("annotations"), "metadata.annotations")
    # validateOwnerReference reports without an index, e.g. "metadata.ownerReferences.uid".
    for ref in meta.get("ownerReferences") or []:
        for f, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(f):
                errs.append(invalid(f"metadata.ownerReferences.{f}", ref.get(f, ""), f"{what} must not be empty"))
    return errs


# --- per-kind create validation -------------------------------------------------

_OVERCOMMIT_OK = {"cpu", "memory", "ephemeral-storage"}


def _is_extended(resource: str) -> bool:
    return "/" in resource and not resource.startswith("kubernetes.io/") and not resource.startswith("requests.")


def validate_resources(res: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(res, dict):
        return errs
    limits = res.get("limits") or {}
    requests = res.get("requests") or {}
    parsed: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for part, values in (("limits", limits), ("requests", requests)):
        for rname, q in values.items():
            fp = f"{path}.{part}[{rname}]"
            try:
                v = quantity.value_of(q)
            except quantity.QuantityError as exc:
                errs.append(invalid(fp, q, str(exc)))
                continue
            if v < 0:
                errs.append(invalid(fp, q, "must be greater than or equal to 0"))
            if _is_extended(rname) and v.denominator != 1:
                errs.append(invalid(fp, q, "must be an integer"))
            parsed[part][rname] = v
    for rname, v in parsed["requests"].items():
        if rname in parsed["limits"]:
            lim = parsed["limits"][rname]
            if rname not in _OVERCOMMIT_OK and not rname.startswith("hugepages-") and v != lim:
                errs.append(
                    invalid(
                        f"{path}.requests",
                        quantity.canonical(requests[rname]),
                        f"must be equal to {rname} limit of {quantity.canonical(limits[rname])}",
                    )
                )
            elif v > lim:
                errs.append(
                    invalid(
                        f"{path}.requests",
                        quantity.canonical(requests[rname]),
                        f"must be less than or equal to {rname} limit of {quantity.canonical(limits[rname])}",
                    )
                )
        elif rname not in _OVERCOMMIT_OK and not rname.startswith("hugepages-"):
            errs.append(required(f"{path}.limits", "Limit must be set for non overcommitable resources"))
    return errs


def _validate_containers(
    containers: Any, path: str, volumes: set[str], seen: set[str], need_one: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    if not containers:
        if need_one:
            errs.append(required(path))
        return errs
    for i, c in enumerate(containers):
        p = f"{path}[{i}]"
        if not isinstance(c, dict):
            errs.append(invalid(p, c, "must be an object"))
            continue
        name = c.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        else:
            errs += [invalid(f"{p}.name", name, m) for m in is_dns1123_label(name)]
            if name in seen:
                errs.append(duplicate(f"{p}.name", name))
            seen.add(name)
        if not c.get("image"):
            errs.append(required(f"{p}.image"))
        for j, port in enumerate(c.get("ports") or []):
            pp = f"{p}.ports[{j}].containerPort"
            cp = port.get("containerPort")
            if not cp:
                errs.append(required(pp))
            elif not isinstance(cp, int) or not 1 <= cp <= 65535:
                errs.append(invalid(pp, cp, "must be between 1 and 65535, inclusive"))
        for j, env in enumerate(c.get("env") or []):
            if not env.get("name"):
                errs.append(required(f"{p}.env[{j}].name"))
        for j, vm in enumerate(c.get("volumeMounts") or []):
            vp = f"{p}.volumeMounts[{j}]"
            if not vm.get("name"):
                errs.append(required(f"{vp}.name"))
            elif vm["name"] not in volumes:
                errs.append(FieldError("FieldValueNotFound", f"{vp}.name", vm["name"]))
            if not vm.get("mountPath"):
                errs.append(required(f"{vp}.mountPath"))
        errs += validate_resources(c.get("resources"), f"{p}.resources")
    return errs


def validate_pod_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(f"{path}.containers")]
    volumes: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        n = v.get("name") or ""
        if not n:
            errs.append(required(f"{path}.volumes[{i}].name"))
        elif n in volumes:
            errs.append(duplicate(f"{path}.volumes[{i}].name", n))
        else:
            errs += [invalid(f"{path}.volumes[{i}].name", n, m) for m in is_dns1123_label(n)]
        volumes.add(n)
    seen: set[str] = set()
    errs += _validate_containers(spec.get("containers"), f"{path}.containers", volumes, seen, True)
    errs += _validate_containers(spec.get("initContainers"), f"{path}.initContainers", volumes, seen, False)
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        errs.append(not_supported(f"{path}.restartPolicy", rp, ["Always", "OnFailure", "Never"]))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not isinstance(ads, int) or not 1 <= ads <= 2147483647):
        errs.append(invalid(f"{path}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"))
    gates: set[str] = set()
    for i, g in enumerate(spec.get("schedulingGates") or []):
        n = g.get("name") or ""
        errs += [invalid(f"{path}.schedulingGates[{i}].name", n, m) for m in is_qualified_name(n)]
        if n in gates:
            errs.append(duplicate(f"{path}.schedulingGates[{i}].name", n))
        gates.add(n)
    if spec.get("nodeSelector"):
        errs += validate_labels(spec["nodeSelector"], f"{path}.nodeSelector")
    return errs


def validate_pod_create(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs = validate_pod_spec(spec)
    if spec.get("schedulingGates") and spec.get("nodeName"):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    return errs


def validate_service(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    stype = spec.get("type", "ClusterIP")
    types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    if stype not in types:
        errs.append(not_supported("spec.type", stype, types))
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        errs.append(required("spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        n = port.get("name") or ""
        if len(ports) > 1 and not n:
            errs.append(required(f"{p}.name"))
        elif n:
            errs += [invalid(f"{p}.name", n, m) for m in is_dns1123_label(n)]
            if n in names:
                errs.append(duplicate(f"{p}.name", n))
            names.add(n)
        pv = port.get("port")
        if not isinstance(pv, int) or not 1 <= pv <= 65535:
            errs.append(invalid(f"{p}.port", pv, "must be between 1 and 65535, inclusive"))
    return errs


def validate_config_data(obj: dict[str, Any], fields: tuple[str, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    for f in fields:
        for k in sorted(obj.get(f) or {}):
            if not _CONFIG_KEY_RE.match(k) or len(k) > 253:
                errs.append(
                    invalid(
                        f"{f}[{k}]",
                        k,
                        regex_error(
                            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                            _CONFIG_KEY_FMT,
                            "key.name",
                            "KEY_NAME",
                            "key-name",
                        ),
                    )
                )
    return errs


def validate_create(rt: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(rt, obj.get("metadata") or {})
    if rt.plural == "pods":
        errs += validate_pod_create(obj)
    elif rt.plural == "services":
        errs += validate_service(obj)
    elif rt.plural in ("configmaps", "secrets"):
        errs += validate_config_data(obj, ("data", "binaryData") if rt.plural == "configmaps" else ("data",))
    elif rt.plural == "leases":
        errs += lease.validate(obj)
    elif rt.plural == "priorityclasses" and not isinstance(obj.get("value"), int):
        errs.append(required("value"))
    return errs


# --- updates ----------------------------------------------------------------

POD_UPDATABLE = ",".join(
    [
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    ]
)


def _spec_diff(old: Any, new: Any, path: str = "") -> list[str]:
    """A short description of what changed; the real server prints a Go cmp.Diff here."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _spec_diff(old.get(k), new.get(k), f"{path}.{k}" if path else k)
        return out
    if old != new:
        return [f"  - {path}: {json.dumps(old)}", f"  + {path}: {json.dumps(new)}"]
    return []


def validate_pod_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    errs += validate_pod_spec(ns_)
    old_ads, new_ads = os_.get("activeDeadlineSeconds"), ns_.get("activeDeadlineSeconds")
    if old_ads is not None and new_ads is None:
        errs.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    elif old_ads is not None and isinstance(new_ads, int) and new_ads > old_ads:
        errs.append(invalid("spec.activeDeadlineSeconds", new_ads, "must be less than or equal to previous value"))
    old_gates = {g.get("name") for g in os_.get("schedulingGates") or []}
    for i, g in enumerate(ns_.get("schedulingGates") or []):
        if g.get("name") not in old_gates:
            errs.append(
                forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{g.get('name')}'",
                )
            )
    old_tol = os_.get("tolerations") or []
    new_tol = ns_.get("tolerations") or []

    def _tol_key(t: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in t.items() if k != "tolerationSeconds"}, sort_keys=True)

    new_keys = [_tol_key(t) for t in new_tol]
    if any(_tol_key(t) not in new_keys for t in old_tol):
        errs.append(
            forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")
        )
    # Compare everything else: take the mutable fields from the new spec into a copy of the old one.
    munged = json.loads(json.dumps(os_))
    for key in ("containers", "initContainers"):
        nc, oc = ns_.get(key) or [], munged.get(key) or []
        if len(nc) == len(oc):
            for a, b in zip(oc, nc):
                if "image" in b:
                    a["image"] = b["image"]
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if key in ns_:
            munged[key] = ns_[key]
        else:
            munged.pop(key, None)
    if os_.get("terminationGracePeriodSeconds", 0) < 0 and ns_.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = 1
    if munged != ns_:
        diff = "\n".join(["  core.PodSpec{", *_spec_diff(munged, ns_), "  }"])
        errs.append(forbidden("spec", f"pod updates may not change fields other than {POD_UPDATABLE}\n{diff}"))
    return errs


def validate_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(rt, new.get("metadata") or {})
    if rt.plural == "pods":
        errs += validate_pod_update(old, new)
    elif rt.plural == "services":
        errs += validate_service(new)
        oip, nip = (old.get("spec") or {}).get("clusterIP"), (new.get("spec") or {}).get("clusterIP")
        if oip and nip != oip:
            errs.append(invalid("spec.clusterIPs[0]", [nip] if nip else [], "may not change once set"))
    elif rt.plural in ("configmaps", "secrets"):
        errs += validate_config_data(new, ("data", "binaryData") if rt.plural == "configmaps" else ("data",))
        if old.get("immutable"):
            for f in ("data", "binaryData"):
                if old.get(f) != new.get(f):
                    errs.append(forbidden(f, "field is immutable when `immutable` is set"))
            if not new.get("immutable"):
                errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        if rt.plural == "secrets" and old.get("type") != new.get("type"):
            errs.append(invalid("type", new.get("type"), "field is immutable"))
    elif rt.plural == "leases":
        errs += lease.validate(new)
    elif rt.plural in ("rolebindings", "clusterrolebindings") and old.get("roleRef") != new.get("roleRef"):
        errs.append(invalid("roleRef", new.get("roleRef"), "cannot change roleRef"))
    return errs

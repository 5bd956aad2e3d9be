"""labelSelector / fieldSelector parsing and matching (k8s.io/apimachinery/pkg/labels, pkg/fields).

Unsupported field selectors are rejected per resource with the messages of the
real field-label conversion functions, because clients that typo a selector get
a 400 from a real cluster rather than an unfiltered list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request
from .validation import is_qualified_name, is_valid_label_value

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN_RE = re.compile(r"\s*(\(|\)|,|!=|==|=|!|<|>|\bnotin\b|\bin\b|[^\s(),!=<>]+)")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _parse_requirement(req: str) -> Predicate:
    s = req.strip()
    if not s:
        raise bad_request("unable to parse requirement: found '', expected: identifier")
    m = re.match(r"^!\s*([^\s!=<>(),]+)$", s)
    if m:
        key = _check_key(m.group(1))
        return lambda labels: key not in labels
    m = re.match(r"^([^\s!=<>(),]+)\s+(in|notin)\s*\((.*)\)$", s)
    if m:
        key = _check_key(m.group(1))
        values = {v.strip() for v in m.group(3).split(",") if v.strip()} or set()
        for v in values:
            _check_value(v)
        if m.group(2) == "in":
            return lambda labels: key in labels and labels[key] in values
        return lambda labels: key not in labels or labels[key] not in values
    m = re.match(r"^([^\s!=<>(),]+)\s*(==|=|!=|<|>)\s*([^\s!=<>(),]*)$", s)
    if m:
        key, op, value = _check_key(m.group(1)), m.group(2), m.group(3)
        if op in ("<", ">"):
            try:
                bound = int(value)
            except ValueError:
                raise bad_request(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                ) from None

            def cmp(labels: dict[str, str]) -> bool:
                try:
                    v = int(labels[key])
                except (KeyError, ValueError):
                    return False
                return v > bound if op == ">" else v < bound

            return cmp
        _check_value(value)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    m = re.match(r"^([^\s!=<>(),]+)$", s)
    if m:
        key = _check_key(m.group(1))
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {s!r} is not a valid label selector requirement")


def _check_key(key: str) -> str:
    errs = is_qualified_name(key)
    if errs:
        raise bad_request(f'unable to parse requirement: <nil>: Invalid value: "{key}": {"; ".join(errs)}')
    return key


def _check_value(value: str) -> None:
    errs = is_valid_label_value(value)
    if errs:
        raise bad_request(f'unable to parse requirement: <nil>: Invalid value: "{value}": {"; ".join(errs)}')


def parse_label_selector(text: str | None) -> Predicate:
    if not text or not text.strip():
        return lambda obj: True
    preds = [_parse_requirement(part) for part in _split_top(text)]

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(p(labels) for p in preds)

    return match


def match_label_selector(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector (matchLabels + matchExpressions) against a label map."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# --- field selectors ----------------------------------------------------------


def _get(obj: dict[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


_META = ("metadata.name", "metadata.namespace")

# Resources with their own field-label conversion func: those answer "field label not supported".
CUSTOM_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        *_META,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ),
    "events": (
        *_META,
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "namespaces": ("metadata.name", "status.phase"),
    "secrets": (*_META, "type"),
    "nodes": ("metadata.name", "spec.unschedulable"),
    "persistentvolumeclaims": _META,
    "persistentvolumes": ("metadata.name",),
}

_ALIASES = {("pods", "spec.host"): "spec.nodeName", ("events", "source"): "source.component"}


def _field_value(plural: str, obj: dict[str, Any], field: str) -> str:
    if plural == "pods" and field == "status.podIPs":
        return ",".join(p.get("ip", "") for p in (obj.get("status") or {}).get("podIPs") or [])
    return _get(obj, _ALIASES.get((plural, field), field))


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", r"\1", v)


def parse_field_selector(plural: str, text: str | None) -> Predicate:
    if not text or not text.strip():
        return lambda obj: True
    terms: list[tuple[str, str, str]] = []
    for raw in re.split(r"(?<!\\),", text):
        raw = raw.strip()
        m = re.match(r"^([^=!]+?)\s*(!=|==|=)\s*(.*)$", raw)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{raw}'")
        field, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3))
        if plural == "pods" and field == "spec.host":
            field = "spec.nodeName"
        allowed = CUSTOM_FIELDS.get(plural)
        if allowed is None:
            if field not in _META:
                raise bad_request(
                    f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"'
                )
        elif field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        terms.append((field, op, value))

    def match(obj: dict[str, Any]) -> bool:
        for field, op, value in terms:
            actual = _field_value(plural, obj, field)
            if (actual == value) != (op != "!="):
                return False
        return True

    return match

"""RBAC read rule by rule: what a subject may do in a namespace, from the rendered ClusterRoles and the
hook's RoleBinding (the standard semantics: a rule allows a request when its apiGroups, resources
(with subresource as 'res/sub') and verbs each contain the request's, or '*', and its resourceNames is
empty or names the object)."""

from __future__ import annotations

from typing import Any


def _has(values: list[str], value: str) -> bool:
    return "*" in values or value in values


def rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, name: str = "") -> bool:
    names = rule.get("resourceNames") or []
    return (_has(rule.get("apiGroups", []), group) and _has(rule.get("resources", []), resource)
            and _has(rule.get("verbs", []), verb) and (not names or name in names))


def allowed(roles: dict[str, dict[str, Any]], bindings: list[dict[str, Any]], user: str, namespace: str,
            verb: str, group: str, resource: str, name: str = "") -> bool:
    """Whether ``user`` may ``verb`` ``resource`` in ``namespace`` through the RoleBindings given."""
    for b in bindings:
        if b["metadata"].get("namespace") != namespace:
            continue
        if not any(s["kind"] == "User" and s["name"] == user for s in b.get("subjects", [])):
            continue
        role = roles.get(b["roleRef"]["name"])
        if role and any(rule_allows(r, verb, group, resource, name) for r in role.get("rules", [])):
            return True
    return False

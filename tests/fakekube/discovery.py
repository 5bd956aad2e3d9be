"""Legacy (non-aggregated) discovery documents: /version, /api, /apis, /api/v1, /apis/G, /apis/G/V.

kubectl and client-go ask for aggregated discovery via the Accept header but
fall back to these plain types when the answer's Content-Type is plain JSON.
"""

from __future__ import annotations

import zlib
from typing import Any

from .registry import RESOURCES, group_versions

VERSION_INFO: dict[str, Any] = {
    "major": "1",
    "minor": "33",
    "emulationMajor": "1",
    "emulationMinor": "33",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "32",
    "gitVersion": "v1.33.0",
    "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T13:01:56Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_SUB_VERBS = {"status": ["get", "patch", "update"], "finalize": ["update"]}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


# ``absent``: plurals of resources this server does not serve (an uninstalled CRD); a group none of
# whose resources is served disappears from discovery, as it does when its CRDs are deleted.
NONE: frozenset[str] = frozenset()


def _group(name: str, absent: frozenset[str]) -> dict[str, Any]:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions(absent) if g == name]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list(absent: frozenset[str] = NONE) -> dict[str, Any]:
    names: list[str] = []
    for g, _ in group_versions(absent):
        if g and g not in names:
            names.append(g)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(n, absent) for n in names]}


def api_group(name: str, absent: frozenset[str] = NONE) -> dict[str, Any] | None:
    if not any(g == name for g, _ in group_versions(absent)):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, absent)}


def api_resource_list(group: str, version: str, absent: frozenset[str] = NONE) -> dict[str, Any] | None:
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version) or r.plural in absent:
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in r.subresources:
            resources.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": _SUB_VERBS[sub],
                }
            )
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    body: dict[str, Any] = {"kind": "APIResourceList", "groupVersion": gv, "resources": resources}
    if group:
        body["apiVersion"] = "v1"
    return body


# --- OpenAPI v3, just enough for kubectl ------------------------------------------
# kubectl (apply, create, replace) first checks whether the server supports the
# fieldValidation query parameter by looking for it on the PATCH operations of the
# group-version's OpenAPI v3 document; when it is found kubectl leaves validation to
# the server instead of downloading full schemas. The documents below carry exactly
# that: paths with PATCH operations, their GVK extension and the parameter.


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root(absent: frozenset[str] = NONE) -> dict[str, Any]:
    paths = {
        _gv_key(g, v): {
            "serverRelativeURL": f"/openapi/v3/{_gv_key(g, v)}?hash={zlib.crc32(_gv_key(g, v).encode()):08X}"
        }
        for g, v in group_versions(absent)
    }
    return {"paths": paths}


def openapi_v3_group_version(key: str, absent: frozenset[str] = NONE) -> dict[str, Any] | None:
    params = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
    ]
    paths: dict[str, Any] = {}
    for r in RESOURCES:
        if _gv_key(r.group, r.version) != key or r.plural in absent:
            continue
        root = "/" + key
        item = f"{root}/namespaces/{{namespace}}/{r.plural}/{{name}}" if r.namespaced else f"{root}/{r.plural}/{{name}}"
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        op = {
            "operationId": f"patch{r.kind}",
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        }
        paths[item] = {"patch": op}
    if not paths:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }

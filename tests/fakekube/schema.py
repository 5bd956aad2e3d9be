"""The few schema facts patching and server-side apply need: which lists are
maps keyed by some fields (x-kubernetes-list-map-keys / patchMergeKey) and
which are sets. Every other list is atomic, like in the real OpenAPI schema.

Paths are tuples of field names from the object root with list positions left
out, e.g. ("spec", "containers", "ports").
"""

from __future__ import annotations

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _in_container(path: tuple[str, ...]) -> bool:
    return len(path) >= 2 and path[-2] in _CONTAINER_LISTS


def apply_list_keys(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """Associative-list keys used by server-side apply; None means atomic."""
    last = path[-1] if path else ""
    if last in _CONTAINER_LISTS or last in ("volumes", "imagePullSecrets", "schedulingGates", "resourceClaims"):
        return ("name",)
    if last == "env" and _in_container(path):
        return ("name",)
    if last == "ports":
        return ("containerPort", "protocol") if _in_container(path) else ("port", "protocol")
    if last == "volumeMounts":
        return ("mountPath",)
    if last == "conditions" and len(path) >= 2 and path[-2] == "status":
        return ("type",)
    if path == ("metadata", "ownerReferences"):
        return ("uid",)
    if last == "hostAliases":
        return ("ip",)
    if last == "topologySpreadConstraints":
        return ("topologyKey", "whenUnsatisfiable")
    return None


def is_set_list(path: tuple[str, ...]) -> bool:
    """listType=set lists (items are tracked by value)."""
    return path == ("metadata", "finalizers") or path == ("spec", "finalizers")


def smp_merge_key(path: tuple[str, ...]) -> str | None:
    """patchMergeKey for strategic merge patch; "" marks a merged list of primitives."""
    if is_set_list(path) and path[0] == "metadata":
        return ""
    keys = apply_list_keys(path)
    if keys is None:
        return None
    # SMP merges ports by the port number alone, topology constraints by topologyKey.
    return keys[0]

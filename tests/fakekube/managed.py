"""Field ownership (metadata.managedFields) and server-side apply.

A small re-implementation of what sigs.k8s.io/structured-merge-diff does for the
API server, schema-light: lists are atomic unless ``schema.apply_list_keys``
names their keys. Field sets are Python sets of paths; a path is a tuple of
("f", name) | ("k", key-json) | ("v", value-json) elements – the same element
kinds as the "f:" / "k:" / "v:" keys of the FieldsV1 wire format.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .schema import apply_list_keys, is_set_list

Path = tuple[tuple[str, str], ...]
_MISSING: Any = object()

# Never tracked (stripmeta.go): identity and server-populated metadata.
_STRIPPED: set[Path] = {
    (("f", "apiVersion"),),
    (("f", "kind"),),
    *(
        (("f", "metadata"), ("f", f))
        for f in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        )
    ),
}
# Defaults of list-map key fields (the real schema defaults them before keying).
_KEY_DEFAULTS = {"protocol": "TCP"}


def _key_json(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    k = {name: item.get(name, _KEY_DEFAULTS.get(name)) for name in keys}
    k = {name: v for name, v in k.items() if v is not None}
    return json.dumps(k, sort_keys=True, separators=(",", ":"))


def _is_keyed(value: Any, keys: tuple[str, ...] | None) -> bool:
    return keys is not None and isinstance(value, list) and all(isinstance(x, dict) for x in value)


def field_set(obj: Any, names: tuple[str, ...] = (), prefix: Path = ()) -> set[Path]:
    """The set of leaf fields (and list items) present in ``obj`` (typed ToFieldSet)."""
    out: set[Path] = set()
    if not isinstance(obj, dict):
        return out
    for k, v in obj.items():
        sub_names, p = (*names, k), (*prefix, ("f", k))
        if isinstance(v, dict):
            out |= field_set(v, sub_names, p) if v else {p}
        elif isinstance(v, list):
            keys = apply_list_keys(sub_names)
            if v and _is_keyed(v, keys):
                for item in v:
                    kp = (*p, ("k", _key_json(item, keys)))  # type: ignore[arg-type]
                    out.add(kp)
                    out |= field_set(item, sub_names, kp)
            elif v and is_set_list(sub_names) and all(not isinstance(x, (dict, list)) for x in v):
                out |= {(*p, ("v", json.dumps(x))) for x in v}
            else:
                out.add(p)
        else:
            out.add(p)
    return out


def owned_paths(obj: dict[str, Any] | None, only_status: bool = False, ignore_status: bool = False) -> set[Path]:
    if not obj:
        return set()
    paths = {p for p in field_set(obj) if p[:2] not in _STRIPPED and p[:1] not in _STRIPPED}
    if only_status:
        return {p for p in paths if p[0] == ("f", "status")}
    if ignore_status:
        return {p for p in paths if p[0] != ("f", "status")}
    return paths


def value_at(obj: Any, path: Path, names: tuple[str, ...] = ()) -> Any:
    cur = obj
    for kind, v in path:
        if kind == "f":
            if not isinstance(cur, dict) or v not in cur:
                return _MISSING
            names = (*names, v)
            cur = cur[v]
        elif kind == "k":
            keys = apply_list_keys(names)
            if not isinstance(cur, list) or keys is None:
                return _MISSING
            cur = next((x for x in cur if isinstance(x, dict) and _key_json(x, keys) == v), _MISSING)
            if cur is _MISSING:
                return _MISSING
        elif kind == "v":
            if not isinstance(cur, list) or json.loads(v) not in cur:
                return _MISSING
            cur = json.loads(v)
    return cur


def _remove_path(obj: Any, path: Path, names: tuple[str, ...] = ()) -> None:
    parent_path, (kind, v) = path[:-1], path[-1]
    names = names + tuple(name for k, name in parent_path if k == "f")
    parent = value_at(obj, parent_path)
    if kind == "f" and isinstance(parent, dict):
        parent.pop(v, None)
    elif kind == "k" and isinstance(parent, list):
        keys = apply_list_keys(names)
        if keys is not None:
            parent[:] = [x for x in parent if not (isinstance(x, dict) and _key_json(x, keys) == v)]
    elif kind == "v" and isinstance(parent, list):
        val = json.loads(v)
        parent[:] = [x for x in parent if x != val]


def path_string(path: Path) -> str:
    """fieldpath.Path.String(): .spec.containers[name="c"].image"""
    out = ""
    for kind, v in path:
        if kind == "f":
            out += "." + v
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(x)}" for k, x in json.loads(v).items()) + "]"
        elif kind == "v":
            out += f"[={v}]"
    return out


# --- FieldsV1 wire format -----------------------------------------------------


def _elem_key(e: tuple[str, str]) -> str:
    return f"{e[0]}:{e[1]}"


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for p in paths:
        node = root
        for e in p:
            node = node.setdefault(_elem_key(e), {})
    for p in paths:  # a member that also has children is marked with "."
        node = root
        for e in p:
            node = node[_elem_key(e)]
        if node and "." not in node:
            node["."] = {}

    def _sorted(n: dict[str, Any]) -> dict[str, Any]:
        order = {".": 0, "f": 1, "k": 2, "v": 3, "i": 4}
        return {k: _sorted(n[k]) for k in sorted(n, key=lambda s: (order.get(s[0], 9), s))}

    return _sorted(root)


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for k, child in (tree or {}).items():
        if k == ".":
            out.add(prefix)
            continue
        kind, _, v = k.partition(":")
        p = (*prefix, (kind, v))
        if not child:
            out.add(p)
        else:
            out |= from_fields_v1(child, p)
    return out


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str = ""
    paths: set[Path] = field(default_factory=set)

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager} if self.manager else {}  # omitempty
        out.update({"operation": self.operation, "apiVersion": self.api_version})
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = to_fields_v1(self.paths)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def printable(self) -> str:
        """printManager in fieldmanager/internal/conflict.go."""
        if self.operation == "Update":
            return f'"{self.manager}" using {self.api_version}'
        return f'"{self.manager}"'


def parse_entries(managed: Any) -> list[Entry]:
    out: list[Entry] = []
    for m in managed or []:
        if not isinstance(m, dict):
            continue
        out.append(
            Entry(
                manager=m.get("manager", ""),
                operation=m.get("operation", "Update"),
                api_version=m.get("apiVersion", ""),
                subresource=m.get("subresource", ""),
                time=m.get("time", ""),
                paths=from_fields_v1(m.get("fieldsV1") or {}),
            )
        )
    return out


def encode_entries(entries: list[Entry]) -> list[dict[str, Any]]:
    live = [e for e in entries if e.paths]
    live.sort(key=lambda e: (e.operation, e.time, e.manager, e.api_version))
    return [e.to_json() for e in live]


def _get_entry(entries: list[Entry], ident: tuple[str, str, str], api_version: str) -> Entry:
    for e in entries:
        if e.ident == ident:
            return e
    e = Entry(ident[0], ident[1], api_version, ident[2])
    entries.append(e)
    return e


def _touches(paths: set[Path], target: Path) -> bool:
    """True if ``paths`` holds ``target`` or anything below it."""
    n = len(target)
    return any(p[:n] == target for p in paths)


# --- Update operations (POST, PUT, non-apply PATCH) ------------------------------


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
    status_subresource: bool = False,
) -> None:
    """Record a non-apply write: the manager takes every field it changed, from everyone."""
    meta = new.setdefault("metadata", {})
    if "managedFields" in meta and isinstance(meta["managedFields"], list):
        # A client may send managedFields; an empty list resets tracking (documented API behaviour).
        entries = parse_entries(meta["managedFields"])
    else:
        entries = parse_entries(((old or {}).get("metadata") or {}).get("managedFields"))
    only_status = subresource == "status"
    old_set = owned_paths(old, only_status=only_status, ignore_status=status_subresource and not only_status)
    new_set = owned_paths(new, only_status=only_status, ignore_status=status_subresource and not only_status)
    changed = {p for p in new_set if p not in old_set or value_at(old, p) != value_at(new, p)}
    removed = old_set - new_set
    for e in entries:
        e.paths = {p for p in e.paths if p not in changed and not any(p[: len(r)] == r for r in removed)}
    if changed:
        entry = _get_entry(entries, (manager, "Update", subresource), api_version)
        entry.paths |= changed
        entry.time = now
        entry.api_version = api_version
    meta["managedFields"] = encode_entries(entries)
    if not meta["managedFields"]:
        del meta["managedFields"]


# --- Apply --------------------------------------------------------------------------


def _merge_applied(live: Any, applied: Any, names: tuple[str, ...] = ()) -> Any:
    if isinstance(applied, dict):
        out = copy.deepcopy(live) if isinstance(live, dict) else {}
        for k, v in applied.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge_applied(out.get(k, _MISSING), v, (*names, k))
        return out
    if isinstance(applied, list) and isinstance(live, list):
        keys = apply_list_keys(names)
        if _is_keyed(applied, keys) and _is_keyed(live, keys):
            out = copy.deepcopy(live)
            for item in applied:
                kj = _key_json(item, keys)  # type: ignore[arg-type]
                idx = next((i for i, x in enumerate(out) if _key_json(x, keys) == kj), None)  # type: ignore[arg-type]
                if idx is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[idx] = _merge_applied(out[idx], item, names)
            return out
        if is_set_list(names):
            return list(live) + [x for x in applied if x not in live]
    return copy.deepcopy(applied)


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    causes = [
        {"type": "FieldManagerConflict", "message": f"conflict with {e.printable()}", "field": path_string(p)}
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {e.printable()}: {path_string(p)}"
    else:
        by_manager: dict[str, list[Path]] = {}
        printable: dict[str, str] = {}
        for e, p in conflicts:
            # the real code sorts by the JSON-encoded manager identity, which starts with the name
            ident = json.dumps({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version})
            by_manager.setdefault(ident, []).append(p)
            printable[ident] = e.printable()
        lines: list[str] = []
        for ident in sorted(by_manager):
            lines.append(f"conflicts with {printable[ident]}:")
            lines += [f"- {path_string(p)}" for p in by_manager[ident]]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    api_version: str,
    force: bool,
    now: str,
    subresource: str = "",
    status_subresource: bool = False,
) -> dict[str, Any]:
    """Merge ``applied`` into ``live`` for ``manager``; raise a Conflict ApiError if needed.

    Returns the new object, with metadata.managedFields rewritten.
    """
    only_status = subresource == "status"
    ignore_status = status_subresource and not only_status
    live = copy.deepcopy(live) if live else {}
    applied = copy.deepcopy(applied)
    applied.get("metadata", {}).pop("managedFields", None)
    if ignore_status:
        applied.pop("status", None)  # the main resource silently ignores status (reset fields)
    entries = parse_entries((live.get("metadata") or {}).get("managedFields"))
    ident = (manager, "Apply", subresource)
    mine = next((e for e in entries if e.ident == ident), None)
    previous = set(mine.paths) if mine else set()
    applied_set = owned_paths(applied, only_status=only_status, ignore_status=ignore_status)

    conflicts: list[tuple[Entry, Path]] = []
    for e in entries:
        if e.ident == ident:
            continue
        for p in sorted(applied_set & e.paths):
            if value_at(live, p) != value_at(applied, p):
                conflicts.append((e, p))
    if conflicts and not force:
        raise conflict_error(conflicts)
    for e, p in conflicts:
        e.paths.discard(p)

    result = _merge_applied(live, applied)
    others = [e for e in entries if e.ident != ident]
    # Fields this manager applied before and dropped now are removed, unless someone else owns them.
    # Parents first: once a list item is gone its fields need no removal (and its key stays intact).
    for p in sorted(previous - applied_set, key=len):
        if any(_touches(e.paths, p) for e in others):
            continue
        if any(q[: len(p)] == p for q in applied_set):
            continue
        _remove_path(result, p)
    entry = _get_entry(entries, ident, api_version)
    entry.paths = applied_set
    entry.time = now
    entry.api_version = api_version
    meta = result.setdefault("metadata", {})
    for m in ("labels", "annotations"):
        if m in meta and not meta[m]:
            del meta[m]  # omitempty
    meta["managedFields"] = encode_entries(entries)
    return result

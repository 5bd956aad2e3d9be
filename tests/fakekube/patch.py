"""PATCH bodies: RFC 7386 merge patch, RFC 6902 JSON patch and strategic merge patch."""

from __future__ import annotations

import copy
import json
from typing import Any

from .errors import ApiError, bad_request
from .schema import smp_merge_key

_MISSING = object()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# --- JSON patch ---------------------------------------------------------------


def _invalid_patch(message: str) -> ApiError:
    # patch.go answers a failing JSON patch with NewGenericServerResponse(422, ...),
    # whose message is the generic one and whose details are empty.
    del message
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our request")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid_patch(f"invalid path {path}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise _invalid_patch("missing path")
    return cur, parts[-1]


def _get_at(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent, last = _walk(doc, parts)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise _invalid_patch("missing value")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _walk(doc, parts)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _invalid_patch("index out of bounds")
    else:
        raise _invalid_patch("missing path")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, last = _walk(doc, parts)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise _invalid_patch("missing path")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise bad_request("Unexpected kind: ")
        kind = op["op"]
        parts = _pointer(op.get("path", ""))
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _get_at(doc, parts)  # must exist
            if parts:
                doc = _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "test":
            if _get_at(doc, parts) != op.get("value"):
                raise _invalid_patch("testing value failed")
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = copy.deepcopy(_get_at(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _add(doc, parts, value)
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


# --- strategic merge patch ------------------------------------------------------

_DIRECTIVE = "$patch"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"
_RETAIN_KEYS = "$retainKeys"


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Strategic merge: like merge patch, but lists with a patchMergeKey merge item by item,
    plus the $patch / $deleteFromPrimitiveList / $setElementOrder / $retainKeys directives
    (the last two are accepted and ignored: ordering and retainKeys only matter for kubectl apply)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get(_DIRECTIVE) == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != _DIRECTIVE}
    if patch.get(_DIRECTIVE) == "delete":
        return _MISSING
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k in (_DIRECTIVE, _RETAIN_KEYS) or k.startswith(_SET_ORDER):
            continue
        if k.startswith(_DELETE_PRIMITIVE):
            name = k[len(_DELETE_PRIMITIVE) :]
            if isinstance(result.get(name), list) and isinstance(v, list):
                result[name] = [x for x in result[name] if x not in v]
            continue
        sub = (*path, k)
        if v is None:
            result.pop(k, None)
        elif isinstance(v, list):
            merged = _smp_list(result.get(k), v, sub)
            result[k] = merged
        else:
            merged = strategic_merge_patch(result.get(k), v, sub)
            if merged is _MISSING:
                result.pop(k, None)
            else:
                result[k] = merged
    return result


def _smp_list(current: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    key = smp_merge_key(path)
    if key is None or not isinstance(current, list):
        # replace, but honour a {"$patch": "replace"} marker item
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and x.get(_DIRECTIVE))]
    if key == "":
        # merged list of primitives (finalizers): union, keeping order
        out = list(current)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    if any(isinstance(x, dict) and x.get(_DIRECTIVE) == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and x.get(_DIRECTIVE))]
    out = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {json.dumps(item)} does not contain declared merge key: {key}")
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            merged = strategic_merge_patch({}, item, path)
            out.append(merged)
        else:
            out[idx] = strategic_merge_patch(out[idx], item, path)
    return out

"""Just enough of the Kubernetes protobuf wire format to read request bodies typed
clients send that way. kubectl's typed clients (e.g. ``kubectl auth can-i``) POST
protobuf; the fake answers in JSON, which those clients accept."""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"

# field number -> (json name, nested schema or None for string/bool)
_RESOURCE_ATTRIBUTES = {
    1: ("namespace", None),
    2: ("verb", None),
    3: ("group", None),
    4: ("version", None),
    5: ("resource", None),
    6: ("subresource", None),
    7: ("name", None),
}
_NON_RESOURCE_ATTRIBUTES = {1: ("path", None), 2: ("verb", None)}
_SSAR_SPEC = {1: ("resourceAttributes", _RESOURCE_ATTRIBUTES), 2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES)}
_SSAR = {2: ("spec", _SSAR_SPEC)}
SCHEMAS: dict[str, dict[int, tuple[str, Any]]] = {"SelfSubjectAccessReview": _SSAR}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            val, i = data[i : i + n], i + n
        elif wire == 1:
            val, i = data[i : i + 8], i + 8
        elif wire == 5:
            val, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((num, wire, val))
    return out


def _decode(data: bytes, schema: dict[int, tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for num, _, val in _fields(data):
        if num not in schema:
            continue
        name, sub = schema[num]
        obj[name] = _decode(val, sub) if sub else (val.decode() if isinstance(val, bytes) else bool(val))
    return obj


def decode_unknown(body: bytes) -> dict[str, Any]:
    """Decode a runtime.Unknown envelope into a JSON-style dict (known kinds only)."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf envelope")
    type_meta: dict[str, str] = {}
    raw = b""
    for num, _, val in _fields(body[len(MAGIC) :]):
        if num == 1:
            for n, _, v in _fields(val):
                type_meta["apiVersion" if n == 1 else "kind"] = v.decode()
        elif num == 2:
            raw = val
    kind = type_meta.get("kind", "")
    if kind not in SCHEMAS:
        raise ValueError(f"fakekube cannot decode protobuf {kind or 'objects'}")
    return {"kind": kind, "apiVersion": type_meta.get("apiVersion", ""), **_decode(raw, SCHEMAS[kind])}

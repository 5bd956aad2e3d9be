"""Validation of rendered objects against the official Kubernetes OpenAPI schemas, in strict mode.

The schemas are the ones shipped by ``kubernetes-validate`` (offline, one directory per minor
version); strict means unknown fields are errors, which catches template typos that the API
server would silently drop.  Objects of kinds the core schemas do not cover (Karpenter, ...) are
checked against JSON schemas registered with :func:`register` (ood-k8s ships them in
``ood_k8s/schemas/``).  Validators are built once per (version, apiVersion, kind) and cached, so
validating is cheap enough to do on every render.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

from ood_k8s.core.errors import RenderError

_EXTRA_DIR = Path(__file__).with_name("schemas")
_extra: dict[tuple[str, str], dict[str, Any]] = {}


def register(api_version: str, kind: str, schema: dict[str, Any]) -> None:
    """Add a JSON schema for a kind the Kubernetes schemas lack (e.g. a CRD)."""
    _extra[(api_version, kind)] = schema
    _validator.cache_clear()


def _import_jsonschema() -> Any:
    # jsonschema imports the optional rfc3987_syntax (when installed, e.g. by Jupyter) to check the
    # "iri" format; it builds dozens of grammars at import (~3 s here) for a format Kubernetes
    # schemas never use.  Hide it: format checks are not enabled by this module anyway.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import jsonschema

    return jsonschema


def _schema_root() -> Path:
    import kubernetes_validate  # deferred: only validation needs it

    return Path(kubernetes_validate.__file__).with_name("kubernetes-json-schema")


@cache
def supported_versions() -> tuple[str, ...]:
    found = set()
    for d in _schema_root().iterdir():
        m = re.match(r"^v(\d+\.\d+)\.\d+-local-strict$", d.name)
        if m:
            found.add(m.group(1))
    return tuple(sorted(found, key=lambda v: tuple(int(x) for x in v.split("."))))


def _schema_dir(version: str) -> Path:
    versions = supported_versions()
    if version not in versions:
        raise RenderError(f"no Kubernetes schema for version {version}",
                          f"set cluster.kubernetes_version to one of {versions[0]}..{versions[-1]}")
    return _schema_root() / f"v{version}.0-local-strict"


@cache
def _definitions(version: str) -> Any:
    from referencing import Resource

    with open(_schema_dir(version) / "_definitions.json", encoding="utf-8") as fh:
        return Resource.from_contents(json.load(fh))


def _load_extra() -> None:
    if _EXTRA_DIR.is_dir():
        for path in sorted(_EXTRA_DIR.glob("*.json")):
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
            _extra.setdefault((doc["apiVersion"], doc["kind"]), doc["schema"])


@cache
def _validator(version: str, api_version: str, kind: str) -> Any:
    jsonschema = _import_jsonschema()
    from referencing import Registry, Resource

    if not _extra:
        _load_extra()
    if (api_version, kind) in _extra:
        return jsonschema.Draft202012Validator(_extra[(api_version, kind)])
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _schema_dir(version) / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        raise RenderError(f"no schema for {kind} ({api_version}) in Kubernetes {version}",
                          "check apiVersion and kind, or register a schema for this kind")
    with open(path, encoding="utf-8") as fh:
        schema = json.load(fh)
    registry = _definitions(version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def validate(obj: dict[str, Any], version: str, source: str = "") -> None:
    """Raise RenderError naming ``source``, the object and the field if ``obj`` is not valid."""
    kind = obj.get("kind") if isinstance(obj, dict) else None
    api_version = obj.get("apiVersion") if isinstance(obj, dict) else None
    prefix = f"{source}: " if source else ""
    if not isinstance(kind, str) or not isinstance(api_version, str):
        raise RenderError(f"{prefix}object without apiVersion/kind", "every document must name both")
    name = (obj.get("metadata") or {}).get("name", "?")
    jsonschema = _import_jsonschema()

    errors = list(_validator(version, api_version, kind).iter_errors(obj))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
        raise RenderError(f"{prefix}{kind}/{name}: {_path(err.absolute_path)}: {message}",
                          f"not valid for Kubernetes {version}")

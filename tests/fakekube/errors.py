"""metav1.Status errors, shaped and worded like k8s.io/apimachinery/pkg/api/errors.

Clients (client-go, the Python kubernetes client, kubectl) branch on ``reason``
and ``code`` and often show ``message`` verbatim, so the wording follows the
real constructors (NewNotFound, NewAlreadyExists, NewConflict, NewInvalid, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import ResourceType


def status_body(
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
    status: str = "Failure",
) -> dict[str, Any]:
    """A metav1.Status with the field order of the real JSON encoding."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status}
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    clean = {k: v for k, v in (details or {}).items() if v not in (None, "", [], 0)}
    if clean:
        body["details"] = clean
    if code:
        body["code"] = code  # a Success Status from a delete has none (omitempty)
    return body


class ApiError(Exception):
    """Raised anywhere in request handling; the server turns it into a Status response."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, self.details)


# --- field.Error (k8s.io/apimachinery/pkg/util/validation/field) -------------

_TYPE_TEXT = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueTooLong": "Too long",
    "FieldValueNotFound": "Not found",
}
_NO_VALUE = object()


def go_value(value: Any) -> str:
    """Approximates how field.Error prints a bad value (%q for strings, %v for scalars)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass
class FieldError:
    type: str  # e.g. "FieldValueRequired"
    field: str  # e.g. "spec.containers[0].image"
    bad_value: Any = _NO_VALUE
    detail: str = ""

    def body(self) -> str:
        text = _TYPE_TEXT[self.type]
        if (
            self.type in ("FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong")
            or self.bad_value is _NO_VALUE
        ):
            s = text
        else:
            s = f"{text}: {go_value(self.bad_value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail=detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def forbidden(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueForbidden", path, detail=detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError("FieldValueNotSupported", path, value, detail)


@dataclass
class FieldErrors:
    items: list[FieldError] = field(default_factory=list)

    def add(self, *errs: FieldError) -> None:
        self.items.extend(errs)

    def __bool__(self) -> bool:
        return bool(self.items)


# --- constructors mirroring apimachinery/pkg/api/errors ----------------------


def _details(rt: ResourceType | None, name: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if rt is not None:
        d["group"] = rt.group
        d["kind"] = rt.plural  # NewNotFound & co. put the *resource* here, not the Kind
    d.update(extra)
    return d


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}', _details(rt, name)
    )


OPTIMISTIC_LOCK_MSG = "the object has been modified; please apply your changes to the latest version and try again"


def invalid_object(kind: str, group: str, name: str, errs: list[FieldError]) -> ApiError:
    qualified_kind = f"{kind}.{group}" if group else kind
    if not errs:
        message = f'{qualified_kind} "{name}" is invalid'
    elif len(errs) == 1:
        message = f'{qualified_kind} "{name}" is invalid: {errs[0]}'
    else:
        # utilerrors.NewAggregate prints "[a, b]" and drops duplicate messages
        seen: list[str] = []
        for e in errs:
            if str(e) not in seen:
                seen.append(str(e))
        message = f'{qualified_kind} "{name}" is invalid: ' + (
            seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"
        )
    causes = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errs]
    details = {"name": name, "group": group, "kind": kind, "causes": causes}
    return ApiError(422, "Invalid", message, details)


def invalid_for(rt: ResourceType, name: str, errs: list[FieldError]) -> ApiError:
    return invalid_object(rt.kind, rt.group, name, errs)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden_error(group: str, resource: str, name: str, why: str) -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    if not resource:
        message = f"forbidden: {why}"
    elif not name:
        message = f"{qualified} is forbidden: {why}"
    else:
        message = f'{qualified} "{name}" is forbidden: {why}'
    return ApiError(403, "Forbidden", message, {"name": name, "group": group, "kind": resource})


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_supported(rt: ResourceType, action: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f'{action} is not supported on resources of kind "{rt.qualified}"',
        {"group": rt.group, "kind": rt.plural},
    )


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


# Reasons client libraries expect for a bare status code (NewGenericServerResponse).
REASON_FOR_CODE = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource version is too old"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be processing the request",
    ),
}

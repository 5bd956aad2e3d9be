"""coordination.k8s.io/v1 Lease: what the real decoder and validation refuse.

Decoding (a 400 BadRequest before validation): the spec's fields have Go types -- holderIdentity a
string, leaseDurationSeconds and leaseTransitions int32 -- and acquireTime / renewTime are MicroTime,
which Go parses with exactly the layout ``2006-01-02T15:04:05.000000Z07:00`` (six fraction digits: a
time without them is refused, as client-go never writes one).

Validation (pkg/apis/coordination/validation, a 422 Invalid): leaseDurationSeconds > 0,
leaseTransitions >= 0, preferredHolder only with a strategy.  holderIdentity is free text (client-go
writes ``hostname_uuid``) and may be empty: a released Lease.

Everything else -- compare-and-swap on metadata.resourceVersion (409 Conflict with the optimistic-lock
message), AlreadyExists on a second create -- is the store's, as for every kind.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import FieldError, forbidden, invalid

MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
# Go's layout elements in order, each with what it accepts (time.Parse's std chunks and literals).
_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("2006", r"\d{4}"), ("-", "-"), ("01", r"\d{2}"), ("-", "-"), ("02", r"\d{2}"), ("T", "T"),
    ("15", r"\d{2}"), (":", ":"), ("04", r"\d{2}"), (":", ":"), ("05", r"\d{2}"), (".000000", r"\.\d{6}"),
    ("Z07:00", r"Z|[+-]\d{2}:\d{2}"),
)
_INT32 = (-(2**31), 2**31 - 1)


def _go_parse_error(value: str) -> str | None:
    """time.Parse(RFC3339Micro, value)'s error text, or None when it parses."""
    rest = value
    for element, pattern in _ELEMENTS:
        m = re.match(pattern, rest)
        if m is None:
            return f'parsing time "{value}" as "{MICRO_LAYOUT}": cannot parse "{rest}" as "{element}"'
        rest = rest[m.end():]
    if rest:
        return f'parsing time "{value}": extra text: "{rest}"'
    return None


def _type_error(field: str, value: Any, go_type: str) -> str:
    kind = {bool: "bool", str: "string", list: "array", dict: "object", float: "number", int: "number"}
    return (f"json: cannot unmarshal {kind.get(type(value), 'value')} into Go struct field "
            f"LeaseSpec.spec.{field} of type {go_type}")


def decode_problem(body: dict[str, Any]) -> str | None:
    """Why the decoder refuses this Lease (the text after "cannot be handled as a Lease: "), or None."""
    spec = body.get("spec")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        return _type_error("spec", spec, "v1.LeaseSpec").replace("LeaseSpec.spec.spec", "Lease.spec")
    for name in ("holderIdentity", "strategy", "preferredHolder"):
        value = spec.get(name)
        if value is not None and not isinstance(value, str):
            return _type_error(name, value, "string")
    for name in ("leaseDurationSeconds", "leaseTransitions"):
        value = spec.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not _INT32[0] <= value <= _INT32[1]):
            return _type_error(name, value, "int32")
    for name in ("acquireTime", "renewTime"):
        value = spec.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return _type_error(name, value, "v1.MicroTime")
        why = _go_parse_error(value)
        if why:
            return why
    return None


def validate(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateLeaseSpec's errors."""
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.append(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errs.append(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return errs

"""Checks of one request value each: raw value in, canonical value out, or one refusal naming the key.

Every part of a submission (the Script, ``native``, PSI/J attributes) is checked through these, so
a refusal always reads ``<key>: got '<value>', expected <what>`` with an optional hint, and is one
:class:`~ood_k8s.core.errors.UsageError` line (never a traceback).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ood_k8s.core import shapes
from ood_k8s.core.errors import UsageError
from ood_k8s.sessions.quantity import format_bytes, parse_quantity

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
FILE_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")


def show(value: Any) -> str:
    """``value`` as a refusal quotes it: printable, at most 60 characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


def bad(path: str, value: Any, expected: str, hint: str | None = None) -> UsageError:
    return UsageError(f"{path}: got '{show(value)}', expected {expected}", hint)


def mapping(value: Any, path: str) -> dict[str, Any]:
    """A copy of a mapping with string keys (``None``: empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise bad(path, value, "a mapping")
    return dict(value)


def listing(value: Any, path: str) -> list[Any]:
    """A copy of a list or tuple (``None``: empty)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise bad(path, value, "a list")
    return list(value)


def known(values: Mapping[str, Any], keys: tuple[str, ...] | frozenset[str], path: str) -> None:
    for key in values:
        if key not in keys:
            raise UsageError(f"{path}: unknown key '{show(key)}'", f"known keys: {', '.join(sorted(keys))}")


def text(value: Any, path: str, *, allow_empty: bool = False, max_len: int = 4096) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad(path, value, "a string")
    out = str(value)
    if (not out and not allow_empty) or len(out) > max_len or "\x00" in out:
        raise bad(path, value, f"a non-empty string of at most {max_len} characters")
    return out


def opt_text(value: Any, path: str, **kw: Any) -> str | None:
    return None if value is None or value == "" else text(value, path, **kw)


def whole(value: Any, path: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    """A whole number in [lo, hi]; digit strings and integral floats are accepted."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad(path, value, f"a whole number from {lo} to {hi}")
    return value


def abs_path(value: Any, path: str) -> str:
    out = text(value, path)
    if not out.startswith("/") or any(part == ".." for part in out.split("/")):
        raise bad(path, value, "an absolute path without '..'")
    return out


def rel_path(value: Any, path: str) -> str:
    out = text(value, path)
    if out.startswith("/") or any(part == ".." for part in out.split("/")):
        raise bad(path, value, "a relative path without '..'")
    return out


def dns_label(value: Any, path: str) -> str:
    out = text(value, path)
    if not shapes.is_dns_label(out):
        raise bad(path, value, "a DNS-1123 label (lowercase letters, digits, '-'; at most 63)")
    return out


def dns_subdomain(value: Any, path: str) -> str:
    out = text(value, path, max_len=253)
    if not shapes.is_dns_subdomain(out):
        raise bad(path, value, "a Kubernetes object name")
    return out


def label_value(value: Any, path: str) -> str:
    out = text(value, path, allow_empty=True, max_len=63)
    if not shapes.is_label_value(out):
        raise bad(path, value, "a label value (letters, digits, '-', '_', '.'; at most 63)")
    return out


def env_value(value: Any, path: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return text(value, path, allow_empty=True, max_len=128 * 1024)


def env(values: Any, source: str) -> dict[str, str]:
    """Environment variables of ``source`` (a mapping), names and values checked."""
    out: dict[str, str] = {}
    for k, v in mapping(values, source).items():
        if not ENV_NAME.match(k):
            raise bad(source, k, "environment variable names (letters, digits, '_', '-', '.')")
        out[k] = env_value(v, f"{source}.{k}")
    return out


def cpu_quantity(value: Any, path: str) -> tuple[str, Decimal]:
    """(canonical text, cores) of a CPU amount; refuses anything that is not a quantity."""
    out = text(value, path, max_len=32).strip()
    try:
        amount = parse_quantity(out)
    except ValueError:
        raise bad(path, value, "a CPU amount such as 2 or 500m") from None
    if amount <= 0:
        raise bad(path, value, "a CPU amount greater than 0")
    return out, amount


def memory_quantity(value: Any, path: str) -> tuple[str, Decimal]:
    """(canonical text, bytes) of a memory amount. Bare integers are bytes (PSI/J sends bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise bad(path, value, "a memory size greater than 0")
        return format_bytes(value), Decimal(value)
    out = text(value, path, max_len=32).strip()
    try:
        amount = parse_quantity(out)
    except ValueError:
        if re.match(r"^\d+(\.\d+)?\s*[KMGTPE]?[Bb]$", out) or re.match(r"^\d+\s+\w+$", out):
            # Said once: what is wrong, then the units to use instead.
            raise UsageError(f"{path}: got '{show(value)}', which is not a Kubernetes memory size",
                             "use Kubernetes units such as 4Gi or 512Mi (not '4GB' or '4 G')") from None
        raise bad(path, value, "a memory size such as 4Gi or 512Mi") from None
    if amount < 1024 * 1024:
        raise bad(path, value, "a memory size of at least 1Mi", "did you forget the unit (Gi, Mi)?")
    return out, amount


def show_cpu(amount: Decimal) -> str:
    return str(int(amount)) if amount == amount.to_integral_value() else f"{int(amount * 1000)}m"

"""ResourceQuota for pods: the admission check and the quota controller's status.

Modelled: quotas without scopes, over pods/count/pods, cpu, memory,
requests.* / limits.* (incl. extended resources such as requests.nvidia.com/gpu).
Usage is recomputed from the live, non-terminal pods, so status.used is always
what the quota controller would converge to.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from . import quantity

_COMPUTE = ("cpu", "memory", "ephemeral-storage")


def _sum_resources(containers: list[dict[str, Any]], part: str) -> dict[str, Fraction]:
    total: dict[str, Fraction] = {}
    for c in containers:
        for k, v in ((c.get("resources") or {}).get(part) or {}).items():
            total[k] = total.get(k, Fraction(0)) + quantity.value_of(v)
    return total


def pod_usage(pod: dict[str, Any]) -> dict[str, Fraction]:
    """Resources a pod charges: the sum over containers, or the largest init container if bigger."""
    spec = pod.get("spec") or {}
    usage: dict[str, Fraction] = {"pods": Fraction(1), "count/pods": Fraction(1)}
    for part in ("requests", "limits"):
        total = _sum_resources(spec.get("containers") or [], part)
        for init in spec.get("initContainers") or []:
            for k, v in _sum_resources([init], part).items():
                total[k] = max(total.get(k, Fraction(0)), v)
        for k, v in total.items():
            usage[f"{part}.{k}"] = v
            if part == "requests" and k in _COMPUTE:
                usage[k] = v
    return usage


def counts(pod: dict[str, Any]) -> bool:
    """Terminal pods stop counting against quota."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def applies(quota: dict[str, Any]) -> bool:
    spec = quota.get("spec") or {}
    return not spec.get("scopes") and not spec.get("scopeSelector")


def used(quota: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Fraction]:
    hard = (quota.get("spec") or {}).get("hard") or {}
    total = dict.fromkeys(hard, Fraction(0))
    for p in pods:
        if counts(p):
            for k, v in pod_usage(p).items():
                if k in total:
                    total[k] += v
    return total


def _fmt(name: str, value: Fraction, hard: dict[str, Any]) -> str:
    fmt = "DecimalSI"
    if name in hard:
        try:
            fmt = quantity.parse(str(hard[name]))[1]
        except quantity.QuantityError:
            pass
    return quantity.format_quantity(value, fmt)


def status_for(quota: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    hard = dict((quota.get("spec") or {}).get("hard") or {})
    return {"hard": hard, "used": {k: _fmt(k, v, hard) for k, v in sorted(used(quota, pods).items())}}


def _pretty(values: dict[str, Fraction], keys: list[str], hard: dict[str, Any]) -> str:
    """prettyPrint in the quota admission plugin: sorted "name=value" joined by commas."""
    return ",".join(f"{k}={_fmt(k, values.get(k, Fraction(0)), hard)}" for k in sorted(keys))


def admission_error(quota: dict[str, Any], pod: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
    """The reason a new pod is refused by ``quota`` (the text after 'pods "x" is forbidden: '), or None."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    if not hard or not applies(quota):
        return None
    spec = pod.get("spec") or {}
    containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    missing: dict[str, list[str]] = {}
    for needed, aliases in (
        ("limits.cpu", ("limits.cpu",)),
        ("limits.memory", ("limits.memory",)),
        ("requests.cpu", ("requests.cpu", "cpu")),
        ("requests.memory", ("requests.memory", "memory")),
    ):
        if not any(a in hard for a in aliases):
            continue
        part, res = needed.split(".")
        for c in containers:
            if res not in ((c.get("resources") or {}).get(part) or {}):
                missing.setdefault(needed, []).append(c.get("name", ""))
    if missing:
        parts = [f"{k} for: {','.join(sorted(v))}" for k, v in sorted(missing.items())]
        return f"failed quota: {quota['metadata']['name']}: must specify {'; '.join(parts)}"
    current = used(quota, pods)
    requested = {k: v for k, v in pod_usage(pod).items() if k in hard}
    exceeded = [k for k, v in requested.items() if current.get(k, Fraction(0)) + v > quantity.value_of(hard[k])]
    if not exceeded:
        return None
    hard_values = {k: quantity.value_of(v) for k, v in hard.items()}
    return (
        f"exceeded quota: {quota['metadata']['name']}, requested: {_pretty(requested, exceeded, hard)}, "
        f"used: {_pretty(current, exceeded, hard)}, limited: {_pretty(hard_values, exceeded, hard)}"
    )

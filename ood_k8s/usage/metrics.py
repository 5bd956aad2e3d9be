"""Usage as Prometheus metrics: lines the agent's ``/metrics`` endpoint includes (:func:`usage_metrics`).

Totals per course and profile (a session outside any course has ``course=""``), from the ledger and the
running sessions: GPU-hours, CPU-hours, sessions, idle time reclaimed, GPUs in use now; and each
course's total budget left.  Per-student series are left out on purpose: 200 students x profiles would
swamp a Prometheus for numbers the usage report gives better.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from ood_k8s.usage import budget
from ood_k8s.usage.entry import Entry

if TYPE_CHECKING:
    from ood_k8s.agent.service import Agent
    from ood_k8s.config import Config

_HELP = {
    "ood_k8s_usage_gpu_hours_total": ("counter", "GPU-hours used by sessions (running ones up to now)."),
    "ood_k8s_usage_cpu_hours_total": ("counter", "CPU-hours requested by sessions (running ones up to now)."),
    "ood_k8s_usage_sessions_total": ("counter", "Sessions (recorded and running)."),
    "ood_k8s_usage_idle_reclaimed_hours_total": ("counter", "Hours of granted time given back by idle reclaims."),
    "ood_k8s_usage_running_gpus": ("gauge", "GPUs held by running sessions."),
    "ood_k8s_budget_left_gpu_hours": ("gauge", "GPU-hours left this term of a course's total budget."),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return f"{value:.6g}"


def usage_metrics(cfg: Config, entries: list[Entry]) -> list[str]:
    """Prometheus text-format lines (with HELP and TYPE) for ``entries``."""
    sums: dict[str, dict[tuple[str, str], float]] = {name: defaultdict(float) for name in _HELP}
    for e in entries:
        key = (e.course, e.profile)
        sums["ood_k8s_usage_gpu_hours_total"][key] += e.gpu_hours
        sums["ood_k8s_usage_cpu_hours_total"][key] += e.cpu_hours
        sums["ood_k8s_usage_sessions_total"][key] += 1
        sums["ood_k8s_usage_idle_reclaimed_hours_total"][key] += e.idle / 3600.0
        if e.running:
            sums["ood_k8s_usage_running_gpus"][key] += e.gpus
    lines: list[str] = []
    for name, (kind, doc) in _HELP.items():
        if name == "ood_k8s_budget_left_gpu_hours":
            continue
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
        for (course, profile), value in sorted(sums[name].items()):
            lines.append(f'{name}{{course="{_label(course)}",profile="{_label(profile)}"}} {_num(value)}')
    left = [b for c in cfg.courses for b in budget.for_course(c, None, entries)]
    if left:
        kind, doc = _HELP["ood_k8s_budget_left_gpu_hours"]
        lines += [f"# HELP ood_k8s_budget_left_gpu_hours {doc}", f"# TYPE ood_k8s_budget_left_gpu_hours {kind}"]
        lines += [f'ood_k8s_budget_left_gpu_hours{{course="{_label(b.course)}"}} {_num(b.left)}' for b in left]
    return lines


def agent_usage_metrics(agent: Agent) -> list[str]:
    """:func:`usage_metrics` of everything the agent knows (the ledger as it last read it, its cache)."""
    from ood_k8s.usage.answers import ledger_of

    return usage_metrics(agent.cfg, ledger_of(agent))

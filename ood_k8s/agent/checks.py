"""``ood-k8s doctor``'s checks of the agent: its socket answers, its watch is fresh, a leader is known.

Nothing here applies while ``agent.enabled`` is false.  The socket is asked as the doctor's caller
(the kernel names it: a root doctor asks as root, naming ``--user`` when given); the age of the
agent's view comes from that answer, else from ``/healthz`` when ``agent.health_port`` is set.  The
leader is the holder of the Lease :data:`~ood_k8s.core.vocab.LEASE_NAME` in ``agent.namespace``,
renewed within its duration.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from ood_k8s.agent import fastpoll
from ood_k8s.agent.leader import record
from ood_k8s.core import vocab
from ood_k8s.core.errors import OodK8sError
from ood_k8s.doctor.report import Check, Context, one_line

START = "start it: systemctl enable --now ood-k8s-agent (the unit 'ood-k8s ood config --out' writes)"


def _header(data: bytes | None) -> dict[str, Any] | None:
    try:
        head = json.loads((data or b"").partition(b"\n")[0])
    except ValueError:
        return None
    return head if isinstance(head, dict) else None


def socket_check(cfg: Any, user: str | None, timer: Any = time.monotonic) -> tuple[Check, float | None]:
    """Whether the agent answers on ``agent.socket`` within ``agent.timeout``; and the age it reports."""
    a = cfg.agent
    line = fastpoll.request_line("json", "", user or "")
    started = timer()
    data = fastpoll.exchange(a.socket, line or b"json -\n", max(a.timeout, 1.0))
    took = timer() - started
    head = _header(data)
    if head is None:
        return Check("agent socket", False, f"no answer on {a.socket}", START), None
    if took > a.timeout:
        return Check("agent socket", False, f"{a.socket} answered in {took * 1000:.0f} ms, more than agent.timeout "
                     f"({a.timeout * 1000:.0f} ms): polls give up on it", "see the agent's log "
                     "(journalctl -u ood-k8s-agent); a busy portal may need a larger agent.timeout"), None
    said = "answers" if head.get("ok") else f"answers (it refused this caller: {head.get('error')})"
    age = head.get("age") if head.get("ok") else None
    return Check("agent socket", True, f"{a.socket} {said} in {took * 1000:.1f} ms"), \
        float(age) if isinstance(age, (int, float)) else None


def _health_age(port: int, timeout: float = 2.0) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as resp:
            return float(json.loads(resp.read())["age"])
    except urllib.error.HTTPError as err:  # 503: stale or not synced, and it says how old
        try:
            return float(json.loads(err.read())["age"])
        except (ValueError, KeyError, TypeError):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def watch_check(cfg: Any, age: float | None) -> Check:
    a = cfg.agent
    if age is None and a.health_port:
        age = _health_age(a.health_port)
    if age is None:
        return Check("agent watch", None, "its age could not be read (run the doctor as a portal user, with "
                     "--user, or set agent.health_port)")
    if age > a.max_age:
        return Check("agent watch", False, f"the agent's view is {age:.0f} s old, more than agent.max_age "
                     f"({a.max_age:.0f} s): polls go to the API server", "see the agent's log (journalctl -u "
                     "ood-k8s-agent): it cannot watch the API server (RBAC: 'ood-k8s cluster render')")
    return Check("agent watch", True, "live" if age < 1 else f"{age:.1f} s behind the API server")


def leader_check(ctx: Context) -> Check:
    a = ctx.cfg.agent
    if not a.lifecycle:
        return Check("agent leader", None, "agent.lifecycle is false: no agent runs the lifecycle")
    if ctx.kube is None or not ctx.reachable:
        return Check("agent leader", None, "the Kubernetes API did not answer (above)")
    try:
        lease = ctx.kube.get_or_none("Lease", vocab.LEASE_NAME, a.namespace)
    except OodK8sError as err:
        return Check("agent leader", False, f"cannot read Lease {a.namespace}/{vocab.LEASE_NAME}: {one_line(err)}",
                     "apply the cluster objects: 'ood-k8s cluster render'")
    if lease is None:
        return Check("agent leader", False, f"no Lease {a.namespace}/{vocab.LEASE_NAME}: no agent has led yet", START)
    rec, now = record(lease), ctx.clock()
    if not rec.holder or rec.renewed is None or now >= rec.renewed + rec.duration:
        since = f"last renewed {now - rec.renewed:.0f} s ago" if rec.renewed is not None else "never renewed"
        return Check("agent leader", False, f"Lease {a.namespace}/{vocab.LEASE_NAME} has no live holder ({since}, "
                     f"held for {rec.duration} s)", START)
    return Check("agent leader", True, f"{rec.holder} (renewed {max(0.0, now - rec.renewed):.0f} s ago)")


def agent(ctx: Context) -> list[Check]:
    """The doctor's provider: [] unless the agent is enabled."""
    if not ctx.cfg.agent.enabled:
        return []
    answered, age = socket_check(ctx.cfg, ctx.user)
    return [answered, watch_check(ctx.cfg, age), leader_check(ctx)]

"""One session's usage: what the ledger keeps of it, read from its pod (pure functions).

An :class:`Entry` is the session's start and end, its user, course and profile, what it asked for (GPUs
and their resource, CPU and memory requests), the node's instance type and the session's share of that
node (for the cost estimate), and the time an idle reclaim gave back.  :func:`from_pod` builds it from
the pod the agent's cache holds; :func:`encode` / :func:`decode` are its compact form in a ledger
ConfigMap (a JSON object with short keys, empty values left out: about 200 bytes a session).

The times, in order of trust:

* start: ``status.startTime`` (the kubelet accepted the pod), else the main container's start; a session
  that never started has start = end (it used nothing, but it is still a session someone asked for);
* end: the main container's ``finishedAt``; else, for a deleted pod kept by the ledger's finalizer, its
  ``deletionTimestamp`` (the moment the grace period ends: an upper bound, never later than ``now``);
  else, for a pod that ran out its ``activeDeadlineSeconds``, start + that deadline; else ``now`` (a
  running session counted up to now: ``running`` is True and it is never written).

Idle time reclaimed: for a session the agent ended as idle (:data:`RECLAIM_REASONS`), the time from its
end to the deadline it had been granted -- the GPU time the reclaim gave back to others.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, NamedTuple

from ood_k8s.core import vocab
from ood_k8s.core.timefmt import timestamp
from ood_k8s.sessions.quantity import parse_quantity

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"  # the well-known label (not ours: not in vocab)
RECLAIM_REASONS = frozenset({"Idle", "IdleGpu", "GpuIdle"})  # end reasons of an idle reclaim
_NOT_GPU = ("cpu", "memory", "ephemeral-storage", "pods")


class Entry(NamedTuple):
    uid: str  # the pod's UID: the ledger's key, so a second write of a session changes nothing
    user: str
    course: str
    profile: str
    job: str
    start: float
    end: float
    gpus: int = 0
    gpu_resource: str = ""
    cpu: float = 0.0  # cores requested
    memory: int = 0  # bytes requested
    instance: str = ""  # node.kubernetes.io/instance-type of its node, where known
    share: float = 0.0  # its share of that node (GPUs of the node's, else CPUs); 0: unknown
    idle: float = 0.0  # seconds an idle reclaim gave back
    reason: str = ""  # the agent's end reason, if it ended the session
    running: bool = False  # counted up to now, not yet ended (never written to the ledger)

    @property
    def hours(self) -> float:
        return max(0.0, self.end - self.start) / 3600.0

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.hours

    @property
    def cpu_hours(self) -> float:
        return self.cpu * self.hours


# short key -> field; the order is the order written
_KEYS = {"u": "user", "c": "course", "p": "profile", "j": "job", "s": "start", "e": "end", "g": "gpus",
         "gr": "gpu_resource", "cpu": "cpu", "mem": "memory", "it": "instance", "sh": "share", "idle": "idle",
         "r": "reason"}


def encode(e: Entry) -> str:
    """The ledger's form of ``e`` (its uid is the ConfigMap key)."""
    out: dict[str, Any] = {}
    for key, name in _KEYS.items():
        value = getattr(e, name)
        if value or name in ("start", "end"):
            out[key] = round(value, 4) if isinstance(value, float) else value
    return json.dumps(out, separators=(",", ":"))


def decode(uid: str, text: str) -> Entry | None:
    """The entry written by :func:`encode`; None when it is not one (a hand-edited ConfigMap).
    Field by field rather than through ``_replace``: a term's report decodes tens of thousands."""
    try:
        return _from_raw(uid, json.loads(text))
    except ValueError:
        return None


def _from_raw(uid: str, r: Any) -> Entry | None:
    try:
        g = r.get
        return Entry(uid, str(g("u", "")), str(g("c", "")), str(g("p", "")), str(g("j", "")), float(g("s", 0.0)),
                     float(g("e", 0.0)), int(g("g", 0)), str(g("gr", "")), float(g("cpu", 0.0)), int(g("mem", 0)),
                     str(g("it", "")), float(g("sh", 0.0)), float(g("idle", 0.0)), str(g("r", "")))
    except (ValueError, TypeError, AttributeError):
        return None


def decode_all(data: dict[str, str]) -> list[Entry]:
    """Every entry of a shard's data: parsed as one JSON array (one call, not one per session), falling back
    to entry by entry when a value is not one of ours."""
    try:
        raws = json.loads("[" + ",".join(data.values()) + "]")
    except ValueError:
        raws = None
    if not isinstance(raws, list) or len(raws) != len(data):
        return [e for e in (decode(uid, text) for uid, text in data.items()) if e is not None]
    out = []
    for uid, r in zip(data, raws):
        e = _from_raw(uid, r)
        if e is not None:
            out.append(e)
    return out


def month(seconds: float) -> str:
    """``YYYY-MM`` (UTC) of a time: the ledger's shard of a session is the month it started."""
    return time.strftime("%Y-%m", time.gmtime(seconds))


# --- from a pod ---------------------------------------------------------------------------------------


def _meta(pod: dict[str, Any]) -> dict[str, Any]:
    return pod.get("metadata") or {}


def _main(pod: dict[str, Any]) -> dict[str, Any]:
    return ((pod.get("spec") or {}).get("containers") or [{}])[0]


def _main_status(pod: dict[str, Any]) -> dict[str, Any]:
    name = _main(pod).get("name")
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == name:
            return cs.get("state") or {}
    return {}


def ended(pod: dict[str, Any]) -> bool:
    """The session is over for the ledger: the pod finished, or it is being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed") or bool(_meta(pod).get("deletionTimestamp"))


def recorded(pod: dict[str, Any]) -> bool:
    return vocab.RECORDED_ANNOTATION in (_meta(pod).get("annotations") or {})


def user_of(pod: dict[str, Any], namespace_prefix: str) -> tuple[str, str]:
    """(username, slug) of a session pod's owner."""
    meta = _meta(pod)
    ns = meta.get("namespace") or ""
    slug = (meta.get("labels") or {}).get(vocab.USER_LABEL) or (ns[len(namespace_prefix):]
                                                                 if ns.startswith(namespace_prefix) else ns)
    return (meta.get("annotations") or {}).get(vocab.USERNAME_ANNOTATION) or slug, slug


def requests(pod: dict[str, Any]) -> tuple[int, str, float, int]:
    """(GPUs, their resource, CPU cores, memory bytes) the main container asked for."""
    res = _main(pod).get("resources") or {}
    limits, asked = res.get("limits") or {}, res.get("requests") or {}
    gpus, resource = 0, ""
    for key, value in limits.items():
        if key not in _NOT_GPU and not key.startswith("hugepages-") and str(value).isdigit() and int(value):
            gpus, resource = gpus + int(value), resource or key
    return gpus, resource, float(_amount(asked.get("cpu") or limits.get("cpu"))), \
        int(_amount(asked.get("memory") or limits.get("memory")))


def _amount(value: Any) -> Decimal:
    try:
        return parse_quantity(value) if value not in (None, "") else Decimal(0)
    except ValueError:
        return Decimal(0)


def span(pod: dict[str, Any], now: float) -> tuple[float, float]:
    """(start, end) of the session (see the module docstring)."""
    st = pod.get("status") or {}
    state = _main_status(pod)
    created = timestamp(_meta(pod).get("creationTimestamp")) or now
    start = timestamp(st.get("startTime")) or timestamp((state.get("running") or state.get("terminated")
                                                         or {}).get("startedAt"))
    if start is None:
        return created, created
    end = timestamp((state.get("terminated") or {}).get("finishedAt"))
    deleting = timestamp(_meta(pod).get("deletionTimestamp"))
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    if end is None and deleting is not None:
        end = min(deleting, now)
    if end is None and st.get("phase") == "Failed" and st.get("reason") == "DeadlineExceeded" \
            and isinstance(deadline, int):
        end = start + deadline
    return start, max(start, min(end if end is not None else now, now))


def node_share(node: dict[str, Any] | None, gpus: int, gpu_resource: str, cpu: float) -> tuple[str, float]:
    """(instance type, share of the node) -- by GPUs where the node has them, else by CPUs."""
    if not node:
        return "", 0.0
    instance = ((node.get("metadata") or {}).get("labels") or {}).get(INSTANCE_TYPE_LABEL, "")
    st = node.get("status") or {}
    capacity = st.get("capacity") or st.get("allocatable") or {}
    node_gpus = float(_amount(capacity.get(gpu_resource))) if gpu_resource else 0.0
    if gpus and node_gpus:
        return instance, min(1.0, gpus / node_gpus)
    node_cpu = float(_amount(capacity.get("cpu")))
    return instance, min(1.0, cpu / node_cpu) if node_cpu and cpu else 0.0


def reclaimed(pod: dict[str, Any], reason: str, end: float) -> float:
    """Seconds an idle reclaim gave back: from the end to the session's deadline."""
    if reason not in RECLAIM_REASONS:
        return 0.0
    deadline = timestamp((_meta(pod).get("annotations") or {}).get(vocab.DEADLINE_ANNOTATION))
    return max(0.0, deadline - end) if deadline is not None else 0.0


def from_pod(pod: dict[str, Any], now: float, namespace_prefix: str, node: dict[str, Any] | None = None) -> Entry:
    """The session's entry; ``running`` when it has not ended (counted up to ``now``)."""
    meta = _meta(pod)
    labels, ann = meta.get("labels") or {}, meta.get("annotations") or {}
    user, _ = user_of(pod, namespace_prefix)
    gpus, resource, cpu, memory = requests(pod)
    start, end = span(pod, now)
    reason = ann.get(vocab.END_REASON_ANNOTATION, "")
    instance, share = node_share(node, gpus, resource, cpu)
    return Entry(uid=meta.get("uid", ""), user=user, course=labels.get(vocab.COURSE_LABEL, ""),
                 profile=labels.get(vocab.PROFILE_LABEL, ""), job=meta.get("name", ""), start=start, end=end,
                 gpus=gpus, gpu_resource=resource, cpu=cpu, memory=memory, instance=instance, share=share,
                 idle=reclaimed(pod, reason, end), reason=reason, running=not ended(pod))


_SEEN: dict[tuple[str, str], Entry] = {}  # (uid, resourceVersion) -> its entry: a pod unchanged is not read again


def current(pod: dict[str, Any], now: float, namespace_prefix: str) -> Entry:
    """:func:`from_pod`, remembered per version of the pod (a running session's end moves to ``now``)."""
    meta = _meta(pod)
    key = (meta.get("uid", ""), meta.get("resourceVersion", ""))
    found = _SEEN.get(key) if key[1] else None
    if found is None:
        if len(_SEEN) > 20000:
            _SEEN.clear()
        found = _SEEN[key] = from_pod(pod, now, namespace_prefix)
    started = bool((pod.get("status") or {}).get("startTime")) or found.end > found.start
    return found._replace(end=max(found.start, now)) if found.running and started and found.end != now else found


def merge(ledger: list[Entry], pods: list[dict[str, Any]], now: float, namespace_prefix: str) -> list[Entry]:
    """The ledger's entries and the sessions it does not hold yet (running, or ended and not yet recorded),
    each once: what budgets and reports count."""
    seen = {e.uid for e in ledger}
    extra = [from_pod(p, now, namespace_prefix) for p in pods if _meta(p).get("uid") not in seen]
    return ledger + extra

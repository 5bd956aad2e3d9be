"""``/metrics``: the agent in Prometheus' text exposition format (version 0.0.4), on 127.0.0.1 only.

:func:`collect` reads a :class:`Snapshot` of a running agent (its cache, watches, socket and, when it
runs one, its lifecycle); :func:`render` turns a snapshot into the exposition text -- a pure function,
so every line is pinned by a test.  What it says:

* sessions by OOD state and profile (the status rules of the poll itself), and how many were extended;
* the view: synced, its age, each watch's age, liveness, lists (the first and every relist after a
  410 Gone or a lost stream) and streams opened;
* the socket: answers by result and their latency (a histogram, measured around each answer);
* the lifecycle, when this agent runs one: passes, the last one's time and duration, task failures,
  whether this agent leads and who does, and every action by (action, reason) -- ends by cause,
  reclaims of idle sessions, deletions.

The lifecycle is read through :func:`lifecycle_stats`, which tolerates an agent without one (a
cache-only agent, or one whose lifecycle has not started).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ood_k8s.core import vocab
from ood_k8s.sessions import lifetime, status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "ood_k8s_agent_"
# Seconds: one answer is ~0.1-0.3 ms of Python; 200 pollers at once queue for a few ms.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class Histogram:
    """A Prometheus histogram: counts per upper bound, their sum; observed from any thread."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        i = next((n for n, bound in enumerate(self.buckets) if value <= bound), len(self.buckets))
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for n in counts:
            running += n
            cumulative.append(running)
        return HistogramSnapshot(self.buckets, tuple(cumulative), total)


@dataclass(frozen=True)
class HistogramSnapshot:
    buckets: tuple[float, ...]
    cumulative: tuple[int, ...]  # one per bucket, then +Inf (= the count)
    sum: float


@dataclass(frozen=True)
class WatchStats:
    kind: str
    age: float
    live: bool
    lists: int
    streams: int


@dataclass(frozen=True)
class Snapshot:
    sessions: dict[tuple[str, str], int]  # (OOD state, profile) -> sessions
    extended: int
    cached: dict[str, int]  # pods / secrets / events -> objects held
    synced: bool
    age: float
    watches: list[WatchStats]
    answers: dict[str, int]  # answered / refused -> count
    latency: HistogramSnapshot
    lifecycle: dict[str, Any] | None = None


# --- reading a running agent ----------------------------------------------------------------------------


def lifecycle_stats(agent: Any) -> dict[str, Any] | None:
    """The lifecycle's :meth:`stats`, or None: no lifecycle, not started, or it failed to say."""
    lifecycle = getattr(agent, "lifecycle", None)
    stats = getattr(lifecycle, "stats", None)
    if stats is None:
        return None
    try:
        found = stats()
    except Exception:  # a scrape must never fail because of the lifecycle
        return None
    return found if isinstance(found, dict) else None


def session_counts(pods: Iterable[dict[str, Any]], now: float) -> tuple[dict[tuple[str, str], int], int]:
    """Sessions by (OOD state, profile) as a poll would report them, and how many were extended."""
    counts: dict[tuple[str, str], int] = {}
    extended = 0
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        key = (status.pod_state(pod, now=now).state, labels.get(vocab.PROFILE_LABEL) or "none")
        counts[key] = counts.get(key, 0) + 1
        win = lifetime.window(pod)
        if None not in (win.started, win.walltime, win.deadline) and \
                win.deadline > win.started + win.walltime + 1:  # type: ignore[operator]
            extended += 1
    return counts, extended


def collect(agent: Any, now: float | None = None) -> Snapshot:
    """What the agent can say about itself right now."""
    now = time.time() if now is None else now
    with agent.cache.lock:
        pods = list(agent.cache.pods.values())
    sessions, extended = session_counts(pods, now)
    watches = [WatchStats(r.kind, round(r.age(), 3), bool(r.live), r.lists, r.watches) for r in agent.reflectors]
    return Snapshot(sessions=sessions, extended=extended, cached=agent.cache.sizes(), synced=agent.synced(),
                    age=agent.age(), watches=watches, answers=dict(agent.answers), latency=agent.latency.snapshot(),
                    lifecycle=lifecycle_stats(agent))


# --- the exposition text --------------------------------------------------------------------------------


def _value(v: float | int | bool) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return repr(float(v))


def _escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, doc: str,
               samples: Iterable[tuple[dict[str, str], float | int | bool]]) -> None:
        self.lines += [f"# HELP {PREFIX}{name} {doc}", f"# TYPE {PREFIX}{name} {kind}"]
        self.lines += [f"{PREFIX}{name}{_labels(labels)} {_value(v)}" for labels, v in samples]

    def histogram(self, name: str, doc: str, h: HistogramSnapshot) -> None:
        self.lines += [f"# HELP {PREFIX}{name} {doc}", f"# TYPE {PREFIX}{name} histogram"]
        bounds = [_value(b) for b in h.buckets] + ["+Inf"]
        self.lines += [f'{PREFIX}{name}_bucket{{le="{b}"}} {c}' for b, c in zip(bounds, h.cumulative)]
        self.lines += [f"{PREFIX}{name}_sum {_value(h.sum)}", f"{PREFIX}{name}_count {h.cumulative[-1]}"]


def render(s: Snapshot) -> str:
    """The exposition text of a snapshot (families in a fixed order, samples sorted by label)."""
    t = _Text()
    t.family("sessions", "gauge", "Session pods in the agent's view, by OOD state and profile.",
             (({"state": state, "profile": profile}, n) for (state, profile), n in sorted(s.sessions.items())))
    t.family("sessions_extended", "gauge", "Sessions whose deadline was moved past their granted walltime.",
             [({}, s.extended)])
    t.family("cached_objects", "gauge", "Objects the agent's cache holds, by kind.",
             (({"kind": k}, n) for k, n in sorted(s.cached.items())))
    t.family("synced", "gauge", "1 once every watch has listed its objects.", [({}, s.synced)])
    t.family("view_age_seconds", "gauge", "Seconds the view may lag the API server (the stalest watch).",
             [({}, s.age)])
    _watches(t, s.watches)
    t.family("socket_answers_total", "counter", "Requests answered on the socket, by result.",
             (({"result": r}, n) for r, n in sorted(s.answers.items())))
    t.histogram("socket_answer_seconds", "Seconds the agent took to answer one request on its socket.", s.latency)
    if s.lifecycle is not None:
        _lifecycle(t, s.lifecycle)
    return "\n".join(t.lines) + "\n"


def _watches(t: _Text, watches: list[WatchStats]) -> None:
    by_kind = sorted(watches, key=lambda w: w.kind)
    t.family("watch_age_seconds", "gauge", "Seconds since each watch last heard from the API server (0: live).",
             (({"kind": w.kind}, w.age) for w in by_kind))
    t.family("watch_live", "gauge", "1 while the watch's stream is open.",
             (({"kind": w.kind}, w.live) for w in by_kind))
    t.family("watch_lists_total", "counter", "Full lists of each kind: the first, then every relist.",
             (({"kind": w.kind}, w.lists) for w in by_kind))
    t.family("watch_relists_total", "counter", "Lists after the first (a 410 Gone resourceVersion, a lost stream).",
             (({"kind": w.kind}, max(0, w.lists - 1)) for w in by_kind))
    t.family("watch_streams_total", "counter", "Watch streams opened, by kind.",
             (({"kind": w.kind}, w.streams) for w in by_kind))


def _lifecycle(t: _Text, st: dict[str, Any]) -> None:
    t.family("lifecycle_passes_total", "counter", "Lifecycle passes this agent ran as the leader.",
             [({}, int(st.get("passes") or 0))])
    if st.get("last_pass") is not None:
        t.family("lifecycle_last_pass_timestamp_seconds", "gauge", "When the last pass ran (seconds since the epoch).",
                 [({}, float(st["last_pass"]))])
        t.family("lifecycle_last_pass_duration_seconds", "gauge", "Seconds the last pass took.",
                 [({}, float(st.get("last_pass_seconds") or 0.0))])
    t.family("lifecycle_task_failures_total", "counter", "Leader tasks that failed, over every pass.",
             [({}, int(st.get("failures") or 0))])
    t.family("leader", "gauge", "1 while this agent holds the Lease and runs the lifecycle.",
             [({}, bool(st.get("leader")))])
    t.family("leader_info", "gauge", "This agent's identity and the Lease holder it last saw.",
             [({"identity": str(st.get("identity") or ""), "leader": str(st.get("leader_identity") or "")}, 1)])
    actions = st.get("actions") or {}
    t.family("actions_total", "counter", "What the leader did to sessions, by action and reason "
             "(ended/idle is a reclaim; ended/<deadline> an end at the deadline).",
             (({"action": str(a), "reason": str(r)}, n) for (a, r), n in sorted(actions.items())))

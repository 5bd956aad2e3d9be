"""The lifecycle loop: while this agent leads, a pass of every leader task every ``agent.interval``.

Two threads, so that a long pass never delays a renewal: the leader election
(:meth:`~ood_k8s.agent.leader.Elector.run`, every ``agent.retry_period``) and the passes
(:meth:`Lifecycle.step`, checked as often).  A pass runs when this agent leads, the cache is synced
and fresh (``ready``), and ``interval`` has passed since the last one -- at once on becoming the
leader.  Each pass gets copies of the session pods, one clock reading, and
:class:`~ood_k8s.agent.actions.Actions` that refuse to act the moment the leadership lapses.

:meth:`Lifecycle.stats` is what ``/metrics`` reads; :func:`run_once` is ``ood-k8s agent --once``: the
session pods listed directly (no watch), one pass if this process can lead, the Lease released after.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ood_k8s.agent import tasks
from ood_k8s.agent.actions import Actions
from ood_k8s.agent.leader import Elector
from ood_k8s.core.kube import KubeClient

Pods = Callable[[], list[dict[str, Any]]]
EventsOf = Callable[[dict[str, Any]], list[dict[str, Any]]]


def api_events(client: KubeClient) -> EventsOf:
    """A pending pod's Events read from the API server (the adapter's own query)."""
    def events_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
        meta = pod.get("metadata") or {}
        return client.list("Event", meta.get("namespace"),
                           field_selector=f"involvedObject.kind=Pod,involvedObject.name={meta.get('name')}")
    return events_of


class Lifecycle:
    def __init__(self, cfg: Any, client: KubeClient, pods: Pods, events_of: EventsOf | None = None, *,
                 secrets: Pods | None = None, elector: Elector | None = None, ready: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.time, log: logging.Logger | None = None) -> None:
        self.cfg = cfg
        self.client = client
        self.pods = pods
        self.events_of = events_of or (lambda pod: [])
        self.secrets = secrets
        self.ready = ready
        self.clock = clock
        self.log = log or logging.getLogger("ood_k8s.agent")
        self.elector = elector or Elector.from_config(cfg, client, clock=clock, log=self.log)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.passes = 0
        self.last_pass: float | None = None
        self.last_duration = 0.0
        self.failures = 0  # tasks that failed, over every pass
        self.actions: Counter[tuple[str, str]] = Counter()  # (action, reason) -> count

    # --- one tick, one pass --------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        return self.last_pass is None or now - self.last_pass >= self.cfg.agent.interval

    def step(self) -> bool:
        """Run a pass if this agent leads, its view is ready and one is due; whether it ran one."""
        now = self.clock()
        if not (self.elector.leading() and self.due(now) and self.ready()):
            return False
        self.run_pass(now)
        return True

    def run_pass(self, now: float | None = None) -> list[str]:
        """One pass of every registered task; returns the names of those that failed."""
        now = self.clock() if now is None else now
        actions = Actions(self.client, now, self.log, allowed=self.elector.leading)
        ctx = tasks.PassContext(self.cfg, self.client, now, [copy.deepcopy(p) for p in self.pods()], actions,
                                self.log, events_of=self.events_of, session_secrets=self.secrets)
        started = time.monotonic()
        failed = tasks.run_pass(ctx)
        with self._lock:
            self.passes += 1
            self.last_pass = now
            self.last_duration = time.monotonic() - started
            self.failures += len(failed)
            self.actions.update((action, reason) for action, _, reason in actions.done)
        return failed

    def stats(self) -> dict[str, Any]:
        """For ``/metrics``: passes, the last one's time (epoch s) and duration, task failures, leadership,
        and the actions done by (action, reason) -- e.g. ``("ended", "StartFailed")``."""
        with self._lock:
            return {"passes": self.passes, "last_pass": self.last_pass, "last_pass_seconds": self.last_duration,
                    "failures": self.failures, "leader": self.elector.leading(),
                    "leader_identity": self.elector.leader(), "identity": self.elector.identity,
                    "actions": dict(self.actions)}

    # --- threads -------------------------------------------------------------------------------------

    def start(self) -> Lifecycle:
        self._spawn(lambda: self.elector.run(self.stopping), "leader-election")
        self._spawn(self._loop, "lifecycle")
        return self

    def _spawn(self, target: Callable[[], Any], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception as err:  # a pass must never end the loop (tasks' own errors are caught inside)
                self.log.error("lifecycle pass failed: %s", getattr(err, "message", None) or err)
            self.stopping.wait(self.elector.retry_period)

    def stop(self, release: bool = True) -> None:
        """Stop both threads; ``release`` hands the Lease back at once (a graceful stop)."""
        self.stopping.set()
        if release:
            self.elector.release()  # first: a pass still running stops acting at its next action
        for t in self._threads:
            t.join(timeout=5)


def run_once(cfg: Any, client: KubeClient, clock: Callable[[], float] = time.time,
             log: logging.Logger | None = None) -> tuple[int, str]:
    """``ood-k8s agent --once``: (exit status, one line).  Another agent leading is not an error."""
    from ood_k8s.agent.service import SESSIONS

    elector = Elector.from_config(cfg, client, clock=clock, log=log)
    if not elector.step():
        if elector.last_error:
            return 1, f"ood-k8s agent --once: nothing done: {elector.last_error}"
        return 0, f"ood-k8s agent --once: nothing done: agent {elector.leader() or 'another'} leads"
    pods = client.list("Pod", None, label_selector=SESSIONS)
    lifecycle = Lifecycle(cfg, client, lambda: pods, api_events(client), elector=elector, clock=clock, log=log)
    try:
        failed = lifecycle.run_pass()
    finally:
        elector.release()
    done = lifecycle.actions
    summary = ", ".join(f"{action} {n} ({reason})" for (action, reason), n in sorted(done.items())) or "nothing to do"
    line = f"ood-k8s agent --once: one pass over {len(pods)} sessions: {summary}"
    if failed:
        return 1, f"{line}; failed: {', '.join(failed)}"
    return 0, line

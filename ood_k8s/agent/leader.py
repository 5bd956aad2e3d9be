"""Leader election among the portals' agents: one ``coordination.k8s.io/v1`` Lease, compare-and-swap.

What client-go's ``leaderelection`` does, for one Lease (:data:`~ood_k8s.core.vocab.LEASE_NAME` in
``agent.namespace``).  Each attempt (:meth:`Elector.step`, every ``agent.retry_period`` seconds):

* read the Lease; none: create it naming us (``AlreadyExists``: another agent won the race);
* held by another agent and not expired (``renewTime + leaseDurationSeconds`` is still ahead of our
  clock): stay a follower;
* otherwise (ours, released, or expired): write it with PUT carrying the ``resourceVersion`` we read,
  so exactly one of several agents that saw the same expired Lease wins (the others get ``409
  Conflict`` and stay followers).  Taking it from another (or from nobody) counts a transition.

The leader acts only while its last successful write is younger than ``agent.renew_deadline``
(:meth:`Elector.leading`, judged by the clock alone: a hung API server cannot keep it leading), and
the others wait ``agent.lease_duration`` > ``renew_deadline`` after that write before they take
over: so two leaders never act at once, as long as the portals' clocks agree to within the
difference (NTP does far better).  The time a write carries is the clock read *before* it was sent.

A graceful stop releases the Lease as client-go does (holder cleared, a 1 s duration), so another
agent takes over at its next attempt; a killed agent's Lease lapses after ``lease_duration``.

Identities are ``hostname_random``: two agents on one host (or ``ood-k8s agent --once`` beside a
running agent) are different candidates.  The clock is injected (wall-clock seconds).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ood_k8s.core import vocab
from ood_k8s.core.errors import AlreadyExists, Conflict, KubeError, NotFound
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.timefmt import timestamp

API_VERSION = "coordination.k8s.io/v1"


def micro_time(seconds: float) -> str:
    """A ``metav1.MicroTime`` as the API server requires it: RFC 3339 with exactly six fraction digits."""
    micros = round(seconds * 1_000_000)
    whole, frac = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{frac:06d}Z"


def new_identity(host: str | None = None) -> str:
    return f"{host or socket.gethostname()}_{secrets.token_hex(6)}"


class Record(NamedTuple):
    """What a Lease says about its holder (client-go's LeaderElectionRecord)."""

    holder: str
    duration: int
    acquired: float | None
    renewed: float | None
    transitions: int


def record(lease: dict[str, Any]) -> Record:
    spec = lease.get("spec") or {}
    return Record(spec.get("holderIdentity") or "", int(spec.get("leaseDurationSeconds") or 0),
                  timestamp(spec.get("acquireTime")), timestamp(spec.get("renewTime")),
                  int(spec.get("leaseTransitions") or 0))


def expired(rec: Record, now: float) -> bool:
    """Nobody holds it, or its holder has not renewed it within its duration."""
    return not rec.holder or rec.renewed is None or now >= rec.renewed + rec.duration


def holder_at(lease: dict[str, Any] | None, now: float) -> str | None:
    """The leader a Lease names at ``now``; None when it is missing, released or expired."""
    if lease is None:
        return None
    rec = record(lease)
    return None if expired(rec, now) else rec.holder


def lease_object(name: str, namespace: str, rec: Record, resource_version: str | None = None) -> dict[str, Any]:
    """The Lease carrying ``rec`` (with ``resource_version``: a compare-and-swap update)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace,
                            "labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY}}
    if resource_version:
        meta["resourceVersion"] = resource_version
    spec: dict[str, Any] = {"holderIdentity": rec.holder, "leaseDurationSeconds": rec.duration,
                            "leaseTransitions": rec.transitions}
    if rec.acquired is not None:
        spec["acquireTime"] = micro_time(rec.acquired)
    if rec.renewed is not None:
        spec["renewTime"] = micro_time(rec.renewed)
    return {"apiVersion": API_VERSION, "kind": "Lease", "metadata": meta, "spec": spec}


def leader_of(client: KubeClient, cfg: Any, now: float | None = None) -> str | None:
    """The identity of the agent leading now (for ``doctor`` and status), or None: no leader."""
    lease = client.get_or_none("Lease", vocab.LEASE_NAME, cfg.agent.namespace)
    return holder_at(lease, time.time() if now is None else now)


class Elector:
    """One candidate.  Drive it with :meth:`step` (tests, with a fake clock) or :meth:`run` (a thread)."""

    def __init__(self, client: KubeClient, namespace: str, identity: str | None = None, *,
                 lease_duration: int = 15, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 clock: Callable[[], float] = time.time, log: logging.Logger | None = None,
                 name: str = vocab.LEASE_NAME) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("retry_period < renew_deadline < lease_duration is required")
        self.client, self.namespace, self.name = client, namespace, name
        self.identity = identity or new_identity()
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.clock = clock
        self.log = log or logging.getLogger("ood_k8s.agent")
        self.observed: Record | None = None  # the Lease as last read or written
        self._rv: str | None = None  # its resourceVersion when we last wrote it
        self._renewed: float | None = None  # clock reading before our last successful write as holder
        self._was_leading = False
        self.last_error: str | None = None
        # step() and release() run one at a time (a renewal in flight would make the release conflict),
        # and after a release no step takes the Lease again.
        self._lock = threading.Lock()
        self.resigned = False

    @classmethod
    def from_config(cls, cfg: Any, client: KubeClient, **kw: Any) -> Elector:
        a = cfg.agent
        return cls(client, a.namespace, lease_duration=a.lease_duration, renew_deadline=a.renew_deadline,
                   retry_period=a.retry_period, **kw)

    # --- state ---------------------------------------------------------------------------------------

    def leading(self) -> bool:
        """Whether this agent may act now: it renewed its Lease less than ``renew_deadline`` ago."""
        renewed = self._renewed
        return renewed is not None and self.clock() - renewed < self.renew_deadline

    def leader(self) -> str | None:
        """The leader as this candidate last saw it (itself included); None: none known."""
        if self.leading():
            return self.identity
        rec = self.observed
        return None if rec is None or expired(rec, self.clock()) else rec.holder

    # --- one attempt ---------------------------------------------------------------------------------

    def step(self) -> bool:
        """Acquire or renew once; returns whether this agent leads now."""
        with self._lock:
            if self.resigned:
                return False
            self._step()
        return self.leading()

    def _step(self) -> None:
        now = self.clock()
        try:
            self._attempt(now)
        except (AlreadyExists, Conflict):
            self._renewed = None  # another agent wrote first: it leads
        except KubeError as err:  # the API is down or refuses: leading() lapses by the clock alone
            if err.message != self.last_error:  # once per cause, not every retry_period
                self.log.warning("leader election: %s", err.message)
            self.last_error = err.message
        else:
            self.last_error = None
        self._transition()

    def _attempt(self, now: float) -> None:
        lease = self.client.get_or_none("Lease", self.name, self.namespace)
        if lease is None:
            mine = Record(self.identity, self.lease_duration, now, now, 0)
            self._wrote(self.client.create(lease_object(self.name, self.namespace, mine)), now)
            return
        rec = record(lease)
        self.observed = rec
        if rec.holder != self.identity and not expired(rec, now):
            self._renewed = None
            return
        ours = rec.holder == self.identity
        mine = Record(self.identity, self.lease_duration, rec.acquired if ours and rec.acquired else now, now,
                      rec.transitions if ours else rec.transitions + 1)
        rv = (lease.get("metadata") or {}).get("resourceVersion")
        self._wrote(self.client.replace(lease_object(self.name, self.namespace, mine, rv)), now)

    def _wrote(self, lease: dict[str, Any], now: float) -> None:
        self.observed = record(lease)
        self._rv = (lease.get("metadata") or {}).get("resourceVersion")
        self._renewed = now

    def _transition(self) -> None:
        leading = self.leading()
        if leading != self._was_leading:
            self._was_leading = leading
            if leading:
                self.log.info("leader election: %s leads (Lease %s/%s)", self.identity, self.namespace, self.name)
            else:
                self.log.warning("leader election: %s no longer leads (leader: %s)", self.identity,
                                 self.leader() or "none")

    # --- stopping ------------------------------------------------------------------------------------

    def release(self) -> bool:
        """Stop acting for good and hand the Lease back (a graceful stop); False when it was not ours."""
        self._renewed = None  # stop acting first, whatever the API server says
        with self._lock:
            self.resigned = True
            try:
                return self._release()
            finally:
                self._renewed = None
                self._transition()

    def _release(self) -> bool:
        rec = self.observed
        if rec is None or rec.holder != self.identity or self._rv is None:
            return False
        now = self.clock()
        released = Record("", 1, now, now, rec.transitions)
        try:
            self._wrote(self.client.replace(lease_object(self.name, self.namespace, released, self._rv)), now)
        except (Conflict, NotFound):
            return False  # someone took it meanwhile: nothing of ours to release
        except KubeError as err:
            self.log.warning("leader election: could not release the Lease: %s", err.message)
            return False
        return True

    def run(self, stopping: threading.Event) -> None:
        """Attempt every ``retry_period`` until ``stopping`` is set (the caller releases)."""
        while not stopping.is_set():
            self.step()
            stopping.wait(self.retry_period)

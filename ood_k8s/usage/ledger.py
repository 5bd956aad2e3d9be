"""The usage ledger: every session recorded exactly once, in ConfigMaps every portal's agent reads.

**Where.**  In the cluster, beside the agents' Lease (``agent.namespace``): every portal sees one
ledger, it survives any agent's restart, and no other store needs backing up.  One ConfigMap (a
*shard*) per user per month a session started in (UTC), named ``usage-<user slug>-<YYYY-MM>``,
labelled with the user's slug and :data:`~ood_k8s.core.vocab.USAGE_COMPONENT`.  Per user, so that a
write touches one small object and a user's budget is one label-selected list; per month rather than
per term, because terms are configuration (they change, overlap, and a session belongs to a month
whatever the courses say).  Each entry is keyed by the pod's UID (:mod:`.entry`: ~200 bytes).

**Size.**  A ConfigMap holds at most 1 MiB.  A shard takes :data:`CAP` bytes of entries (about 4,000
sessions: a user starting 130 sessions a day, every day of the month); past it, the writer continues
in part 2 (``…-YYYY-MM-2``), 3, … so nothing is ever refused.  Readers list by label and see all parts.

**Exactly once.**  Only the leader writes (:mod:`.task`).  A write reads the shard (and its full parts
before it), drops the sessions already in it -- a previous leader wrote them and died before marking
the pods -- and updates it carrying the ``resourceVersion`` it read: a concurrent writer makes it fail
with 409 Conflict, and the writer reads again and merges (at most :data:`ATTEMPTS` times).  Then the
pods get :data:`~ood_k8s.core.vocab.RECORDED_ANNOTATION` (cleanup deletes ended pods only once they
carry it).  A crash between the two steps costs a repeated read, never a second entry: the UID is
already there.  Whether a session is recorded is decided from the ledger, never from that mark, which
the session's owner could write (:mod:`.task`).

**Cost.**  Per pass, per user and month with sessions to record: one GET (plus one per full part) and
one write (PUT, or POST for a new shard); per session one PATCH of its pod.  So a session costs at most
two writes -- fewer when several of a user's sessions end in the same pass.

**Who may write.**  The agent's identity (``cluster render``'s agent role: ConfigMaps in
``agent.namespace``).  Users have no binding in that namespace at all: they read their own usage
through the agent's socket (:mod:`.answers`), which names them by the kernel.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ood_k8s.core import vocab
from ood_k8s.core.errors import AlreadyExists, Conflict, KubeError
from ood_k8s.core.kube import KubeClient
from ood_k8s.usage.entry import Entry, decode_all, encode, month

CAP = 900 * 1024  # bytes of entries per shard: below the 1 MiB object limit with room for metadata
ATTEMPTS = 8  # conflicting writers tolerated per shard write before the pass gives up (the next retries)


def shard_name(slug: str, when: str, part: int = 1) -> str:
    return f"usage-{slug}-{when}" + (f"-{part}" if part > 1 else "")


def selector(slug: str | None = None) -> str:
    base = f"{vocab.MANAGED_BY_KEY}={vocab.MANAGED_BY},{vocab.COMPONENT_LABEL}={vocab.USAGE_COMPONENT}"
    return f"{base},{vocab.USER_LABEL}={slug}" if slug else base


def shard(name: str, namespace: str, slug: str, data: dict[str, str]) -> dict[str, Any]:
    """A new shard ConfigMap."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY, vocab.USER_LABEL: slug,
                                    vocab.COMPONENT_LABEL: vocab.USAGE_COMPONENT}},
            "data": data}


def size(data: dict[str, str]) -> int:
    return sum(len(k) + len(v) + 8 for k, v in data.items())


def fit(data: dict[str, str], todo: dict[str, str], cap: int = CAP) -> dict[str, str]:
    """The entries of ``todo`` (in order) that fit in a shard holding ``data``."""
    room, out = cap - size(data), {}
    for uid, text in todo.items():
        need = len(uid) + len(text) + 8
        if need > room:
            break
        out[uid], room = text, room - need
    return out


def month_of_name(name: str) -> str:
    """``YYYY-MM`` of a shard's name (:func:`shard_name`), or "" when it is not one."""
    parts = name.split("-")
    for year, mon in ((parts[-2:-1], parts[-1:]), (parts[-3:-2], parts[-2:-1])):
        if year and mon and len(year[0]) == 4 and year[0].isdigit() and len(mon[0]) == 2 and mon[0].isdigit():
            return f"{year[0]}-{mon[0]}"
    return ""


class Ledger:
    """The ledger in ``namespace`` through ``client`` (the agent's identity for writes)."""

    def __init__(self, client: KubeClient, namespace: str, cap: int = CAP) -> None:
        self.client, self.namespace, self.cap = client, namespace, cap
        self.writes = 0  # API writes this object made (the bench and the tests count them)

    def record(self, slug: str, entries: Iterable[Entry]) -> list[Entry]:
        """Write ``entries`` (one user's) to their month's shard; returns those that were not there yet."""
        by_month: dict[str, dict[str, Entry]] = {}
        for e in entries:
            by_month.setdefault(month(e.start), {})[e.uid] = e
        added: list[Entry] = []
        for when, batch in sorted(by_month.items()):
            added += self._record_month(slug, when, batch)
        return added

    def _record_month(self, slug: str, when: str, batch: dict[str, Entry]) -> list[Entry]:
        todo = {uid: encode(e) for uid, e in batch.items()}
        written: list[str] = []
        part, conflicts = 1, 0
        while todo:
            name = shard_name(slug, when, part)
            current = self.client.get_or_none("ConfigMap", name, self.namespace)
            data = dict((current or {}).get("data") or {})
            for uid in [u for u in todo if u in data]:
                del todo[uid]  # recorded before (a previous leader): never twice
            chunk = fit(data, todo, self.cap)
            if not chunk:
                part += 1 if todo else 0  # this part is full: the next one
                continue
            try:
                self._write(current, name, slug, {**data, **chunk})
            except (Conflict, AlreadyExists):
                conflicts += 1
                if conflicts >= ATTEMPTS:
                    raise KubeError(f"the usage ledger {self.namespace}/{name} kept changing under the leader",
                                    "another writer is busy; the next pass records these sessions") from None
                continue  # read it again and merge
            for uid in chunk:
                del todo[uid]
            written += chunk
        return [batch[uid] for uid in written]

    def _write(self, current: dict[str, Any] | None, name: str, slug: str, data: dict[str, str]) -> None:
        self.writes += 1
        if current is None:
            self.client.create(shard(name, self.namespace, slug, data))
        else:  # carries the resourceVersion read: 409 if someone wrote since
            self.client.replace({**current, "data": data})

    def read(self, slug: str | None = None) -> list[Entry]:
        """Every entry (of one user's shards with ``slug``): one list call."""
        out: list[Entry] = []
        for cm in self.client.list("ConfigMap", self.namespace, label_selector=selector(slug)):
            out += decode_all(cm.get("data") or {})
        return out

    def prune(self, now: float, retention_days: int) -> list[str]:
        """Delete the shards of months that ended more than ``retention_days`` ago; their names."""
        if retention_days <= 0:
            return []
        oldest = month(now - retention_days * 86400)
        gone = []
        for cm in self.client.list("ConfigMap", self.namespace, label_selector=selector()):
            name = (cm.get("metadata") or {}).get("name", "")
            when = month_of_name(name)
            if when and when < oldest:
                self.client.delete("ConfigMap", name, self.namespace, missing_ok=True)
                gone.append(name)
        return gone

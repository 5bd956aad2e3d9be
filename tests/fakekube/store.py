"""Thread-safe object storage with a global resourceVersion counter and a watch log."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from typing import Any

from .registry import RESOURCES

_TOP_ORDER = ("kind", "apiVersion", "metadata")
_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def now_rfc3339(offset_seconds: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_seconds))


def ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """Field order of the Go structs (kind, apiVersion, metadata, ..., status) – cosmetic but
    it keeps dumps readable and diffable against real output."""
    out: dict[str, Any] = {k: obj[k] for k in _TOP_ORDER if k in obj}
    out.update({k: v for k, v in obj.items() if k not in out and k != "status"})
    if "status" in obj:
        out["status"] = obj["status"]
    meta = out.get("metadata")
    if isinstance(meta, dict):
        m = {k: meta[k] for k in _META_ORDER if k in meta}
        m.update({k: v for k, v in meta.items() if k not in m})
        out["metadata"] = m
    return out


@dataclass
class WatchEvent:
    rv: int
    plural: str
    namespace: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]


class Store:
    """Objects keyed by (plural, namespace, name). One re-entrant lock guards everything;
    ``changed`` is notified on every write so watchers can wake up."""

    WATCH_LOG_LIMIT = 20000

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r.plural: {} for r in RESOURCES}
        self._rv = 0
        self.log: list[WatchEvent] = []
        self.log_start = 1  # oldest resourceVersion still answerable by a watch

    @property
    def current_rv(self) -> int:
        return self._rv

    def next_rv(self) -> int:
        with self.lock:
            self._rv += 1
            return self._rv

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self._objects[plural].get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Sorted by namespace then name – the etcd key order a real list has."""
        with self.lock:
            items = self._objects[plural]
            keys = sorted(k for k in items if namespace is None or k[0] == namespace)
            return [copy.deepcopy(items[k]) for k in keys]

    def all_objects(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return [(p, copy.deepcopy(o)) for p, objs in self._objects.items() for o in objs.values()]

    def put(self, plural: str, obj: dict[str, Any], event: str) -> dict[str, Any]:
        """Store ``obj`` with a fresh resourceVersion; returns the stored copy."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.next_rv())
            stored = ordered(copy.deepcopy(obj))
            self._objects[plural][(meta.get("namespace") or "", meta["name"])] = stored
            self._record(plural, event, stored)
            return copy.deepcopy(stored)

    def remove(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self._objects[plural].pop((namespace or "", name), None)
            if obj is None:
                return None
            # The DELETED event carries the resourceVersion of the deletion itself.
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.next_rv())
            self._record(plural, "DELETED", obj)
            return copy.deepcopy(obj)

    def _record(self, plural: str, event: str, obj: dict[str, Any]) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        self.log.append(WatchEvent(rv, plural, obj["metadata"].get("namespace") or "", event, copy.deepcopy(obj)))
        if len(self.log) > self.WATCH_LOG_LIMIT:
            drop = len(self.log) - self.WATCH_LOG_LIMIT
            self.log_start = self.log[drop].rv
            del self.log[:drop]
        self.changed.notify_all()

    def compact(self) -> int:
        """etcd compaction: forget the watch log, so a watch from any older resourceVersion gets 410 Gone.
        Returns the oldest resourceVersion still answerable (the current one)."""
        with self.lock:
            self.log.clear()
            self.log_start = self._rv + 1
            return self._rv

    def events_after(self, rv: int, plural: str, namespace: str | None) -> list[WatchEvent]:
        with self.lock:
            return [
                e
                for e in self.log
                if e.rv > rv and e.plural == plural and (namespace is None or e.namespace == namespace)
            ]

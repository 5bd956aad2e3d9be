"""The agent's view: session pods, their secrets, and the events of pods still pending.

Fed by reflectors (:mod:`ood_k8s.agent.watch`); read through :class:`CachedClient`, a stand-in for
the few :class:`~ood_k8s.core.kube.KubeClient` reads the job adapter makes on ``info`` and
``info_all``.  So a poll answered here runs the very code of the direct path
(:class:`~ood_k8s.sessions.adapter.Adapter` and :mod:`ood_k8s.sessions.status`) on the same
objects, and returns the same :class:`~ood_k8s.sessions.adapter.Info`.

Events are kept only for session namespaces, and only while their pod may still be pending: the
status rules read them for a pending pod alone, and a cluster's events are most of its traffic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ood_k8s.core.errors import UsageError

Key = tuple[str, str]

def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _pending(pod: dict[str, Any] | None) -> bool:
    return pod is None or (pod.get("status") or {}).get("phase", "Pending") == "Pending"


class Cache:
    """Thread-safe objects by kind; the reflectors write, the socket's handlers read."""

    def __init__(self, namespace_prefix: str) -> None:
        self.prefix = namespace_prefix
        self.lock = threading.Lock()
        self.pods: dict[Key, dict[str, Any]] = {}
        self.secrets: dict[Key, dict[str, Any]] = {}
        self.events: dict[Key, dict[str, dict[str, Any]]] = {}  # (namespace, pod) -> event name -> event

    # --- the Sink the reflectors feed ----------------------------------------------------------------

    def replace(self, kind: str, items: list[dict[str, Any]]) -> None:
        with self.lock:
            if kind == "Event":
                self.events = {}
                for e in items:
                    self._event("ADDED", e)
                return
            store = self._store(kind)
            store.clear()
            store.update((_key(o), o) for o in items)
            if kind == "Pod":
                self._prune_events()

    def apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        with self.lock:
            if kind == "Event":
                self._event(event, obj)
                return
            store = self._store(kind)
            key = _key(obj)
            if event == "DELETED":
                store.pop(key, None)
            else:
                store[key] = obj
            if kind == "Pod" and not (event != "DELETED" and _pending(obj)):
                self.events.pop(key, None)

    def _store(self, kind: str) -> dict[Key, dict[str, Any]]:
        return {"Pod": self.pods, "Secret": self.secrets}[kind]

    def _event(self, event: str, obj: dict[str, Any]) -> None:
        involved = obj.get("involvedObject") or {}
        ns, pod = involved.get("namespace") or _key(obj)[0], involved.get("name") or ""
        key = (ns, pod)
        if not ns.startswith(self.prefix) or involved.get("kind") != "Pod":
            return
        name = _key(obj)[1]
        if event == "DELETED":
            self.events.get(key, {}).pop(name, None)
        elif _pending(self.pods.get(key)):
            self.events.setdefault(key, {})[name] = obj

    def _prune_events(self) -> None:
        for key in [k for k in self.events if k in self.pods and not _pending(self.pods[k])]:
            del self.events[key]

    # --- reads -------------------------------------------------------------------------------------

    def sizes(self) -> dict[str, int]:
        with self.lock:
            return {"pods": len(self.pods), "secrets": len(self.secrets),
                    "events": sum(len(v) for v in self.events.values())}

    def client(self) -> CachedClient:
        return CachedClient(self)


def _labels_match(labels: dict[str, str], selector: str | None) -> bool:
    """Equality (``k=v``) and existence (``k``) terms: what the adapter's selectors use."""
    for term in filter(None, (selector or "").split(",")):
        key, eq, value = term.partition("=")
        if (eq and labels.get(key) != value) or (not eq and key not in labels):
            return False
    return True


def _fields(selector: str | None) -> dict[str, str]:
    return dict(term.partition("=")[::2] for term in filter(None, (selector or "").split(",")))


class CachedClient:
    """The reads the job adapter's ``info`` and ``info_all`` make, answered from the cache: 0 requests."""

    round_trips = 0

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def get_or_none(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        with self.cache.lock:
            return self.cache._store(kind).get((namespace or "", name))

    def list(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        with self.cache.lock:
            if kind == "Event":
                fields = _fields(field_selector)
                if fields.get("involvedObject.kind", "Pod") != "Pod":
                    return []
                return list(self.cache.events.get((namespace or "", fields.get("involvedObject.name", "")),
                                                  {}).values())
            items: Iterable[tuple[Key, dict[str, Any]]] = self.cache._store(kind).items()
            return [o for (ns, _), o in items if ns == namespace
                    and _labels_match((o.get("metadata") or {}).get("labels") or {}, label_selector)]

    def __getattr__(self, name: str) -> Any:
        raise UsageError(f"the agent's cache cannot answer '{name}'", "submit, delete, hold and release go to the "
                         "API server directly")

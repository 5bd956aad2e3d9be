"""The ledger as one agent sees it: read whole once, refreshed in the background every ``usage.refresh``
seconds, and its own records added at once.

Budgets (at submit, through the socket; and the leader's budget task) and usage answers read entries
from here (an :class:`~ood_k8s.usage.index.Index`), never from the API server per request: a submit's
budget check then costs a socket round trip.  Only the first read waits; later ones serve the view
they have while a thread reads the ledger again (reading a term's ledger takes longer than a submit may
wait).  A view up to ``usage.refresh`` old misses only sessions another leader recorded meanwhile --
and those still count, from the pods the cache holds (:class:`~ood_k8s.usage.index.Overlay`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ood_k8s.core.kube import KubeClient
from ood_k8s.usage.entry import Entry
from ood_k8s.usage.index import Index
from ood_k8s.usage.ledger import Ledger


class LedgerView:
    def __init__(self, client: KubeClient, namespace: str, refresh: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = Ledger(client, namespace)
        self.refresh, self.clock = refresh, clock
        self._index: Index | None = None
        self._read_at = 0.0
        self._refreshing = False
        self._added: dict[str, Entry] = {}  # what this agent recorded (kept across a refresh that raced it)
        self._lock = threading.Lock()
        self.reads = 0

    def index(self) -> Index:
        with self._lock:
            if self._index is None:
                self._index, self._read_at = Index(self.ledger.read()), self.clock()
                self._index.add(self._added.values())
                self.reads += 1
            elif self.clock() - self._read_at >= self.refresh and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="ledger-view", daemon=True).start()
            return self._index

    def entries(self) -> list[Entry]:
        return self.index().entries()

    def _refresh(self) -> None:
        try:
            fresh = Index(self.ledger.read())
        except Exception:  # keep serving the last view; the next call tries again
            with self._lock:
                self._refreshing = False
            return
        with self._lock:
            self._added = {uid: e for uid, e in self._added.items() if uid not in fresh}
            fresh.add(self._added.values())
            self._index, self._read_at, self._refreshing = fresh, self.clock(), False
            self.reads += 1

    def add(self, entries: list[Entry]) -> None:
        with self._lock:
            for e in entries:
                self._added[e.uid] = e
            if self._index is not None:
                self._index.add(entries)


_VIEWS: dict[tuple[int, str], LedgerView] = {}
_VIEWS_LOCK = threading.Lock()


def view_for(client: Any, namespace: str, refresh: float) -> LedgerView:
    """This process's view of the ledger through ``client`` (one per client and namespace)."""
    with _VIEWS_LOCK:
        key = (id(client), namespace)
        view = _VIEWS.get(key)
        if view is None or view.ledger.client is not client:
            view = _VIEWS[key] = LedgerView(client, namespace, refresh)
        view.refresh = refresh
        return view

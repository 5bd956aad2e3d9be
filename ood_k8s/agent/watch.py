"""List+watch of one resource kind, cluster-wide, into a sink: the reflector of client-go, small.

The protocol (Kubernetes API concepts, "Efficient detection of changes"):

* a paginated **list** gives every object and the collection's resourceVersion;
* a **watch** from that resourceVersion streams ADDED / MODIFIED / DELETED after it, with BOOKMARKs
  (``allowWatchBookmarks``) that only move the resourceVersion forward, so a quiet stream can be
  resumed without replaying anything;
* a stream ends at ``timeoutSeconds`` or when the server or a load balancer drops it: the next watch
  starts from the last resourceVersion seen -- no list;
* **410 Gone** (an ERROR event, or the status of the request) means that resourceVersion was compacted
  away: list again;
* any other failure is retried with capped exponential backoff; a stream silent for longer than
  ``stall_after`` (no event, no bookmark) counts as hung and is reopened.

The reflector knows how fresh its view is: :meth:`Reflector.age` is 0 while the stream is live and
otherwise the seconds since it last was.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ood_k8s.core import kube
from ood_k8s.core.errors import KubeError, OodK8sError
from ood_k8s.core.http import query_string
from ood_k8s.core.kube import KubeClient, backoff_delay
from ood_k8s.core.vocab import PRODUCT

PAGE = 500


class Sink(Protocol):
    """Where a reflector puts what it learns (the cache)."""

    def replace(self, kind: str, items: list[dict[str, Any]]) -> None: ...

    def apply(self, kind: str, event: str, obj: dict[str, Any]) -> None: ...


class Gone(Exception):
    """410: the resourceVersion asked for was compacted away; the view must be listed again."""


class Reflector:
    """Keeps ``sink`` current with every ``kind`` object matching the selectors, until ``stop`` is set."""

    def __init__(self, client: KubeClient, kind: str, sink: Sink, stop: threading.Event, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 stall_after: float = 90.0, watch_timeout: int = 300, backoff_cap: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.kind, self.sink, self.stop = client, kind, sink, stop
        self.selectors = {"labelSelector": label_selector, "fieldSelector": field_selector}
        self.stall_after, self.watch_timeout, self.backoff_cap = stall_after, watch_timeout, backoff_cap
        self.clock = clock
        self.rv: str | None = None
        self.live = False
        self.synced = threading.Event()  # set once the first list is in the sink
        self.last_heard = clock()
        self.last_error = ""
        self.lists = 0
        self.watches = 0
        self._response: http.client.HTTPResponse | None = None

    # --- freshness -------------------------------------------------------------------------------

    def age(self) -> float:
        """Seconds the view may lag the server: 0 while the stream is live."""
        if not self.synced.is_set():
            return float("inf")
        if self.live and self.clock() - self.last_heard <= self.stall_after:
            return 0.0
        return max(0.0, self.clock() - self.last_heard)

    def _heard(self) -> None:
        self.last_heard = self.clock()

    # --- the loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                if self.rv is None:
                    self._list()
                self._watch()
                failures = 0
            except Gone:
                self.rv = None  # relist at once: the server is up, only our version is too old
                self.last_error = "resourceVersion expired (410 Gone): listing again"
            except (OSError, OodK8sError, ValueError, http.client.HTTPException) as exc:
                self._lost(exc)
                self.stop.wait(backoff_delay(failures, 0.2, self.backoff_cap))
                failures += 1

    def close(self) -> None:
        """Cut the open stream (on stop): the loop then sees ``stop`` and ends."""
        response = self._response
        if response is not None and response.fp is not None:
            try:
                response.fp.raw._sock.shutdown(2)  # type: ignore[union-attr]
            except (AttributeError, OSError):
                pass

    def _lost(self, exc: BaseException) -> None:
        if self.live:
            self._heard()  # the view was current up to the moment the stream broke
        self.live = False
        self.last_error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"

    def _list(self) -> None:
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {**self.selectors, "limit": PAGE}
        rv = None
        while True:
            page = self.client.request("GET", self.client.path(self.kind), query=query) or {}
            meta = page.get("metadata") or {}
            rv = rv or meta.get("resourceVersion")
            items.extend(page.get("items") or [])
            if not meta.get("continue"):
                break
            query["continue"] = meta["continue"]
        self.sink.replace(self.kind, items)
        self.rv = rv
        self.lists += 1
        self._heard()
        self.synced.set()

    def _watch(self) -> None:
        query = {**self.selectors, "watch": "true", "allowWatchBookmarks": "true",
                 "resourceVersion": self.rv, "timeoutSeconds": self.watch_timeout}
        conn, self._response = open_stream(self.client, self.client.path(self.kind), query, self.stall_after)
        self.watches += 1
        try:
            self.live = True
            self._heard()
            for event in _events(self._response):
                if self.stop.is_set():
                    return
                self._handle(event)
            self._heard()  # a stream the server ended at its timeout was live to the end
            self.live = False
        finally:
            self._response = None
            conn.close()

    def _handle(self, event: dict[str, Any]) -> None:
        self._heard()
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", ""))
            raise KubeError(f"watch of {self.kind}: {obj.get('message') or obj}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.sink.apply(self.kind, kind, obj)
        if rv:
            self.rv = rv  # BOOKMARKs only move it forward


def open_stream(client: KubeClient, path: str, query: dict[str, Any],
                read_timeout: float) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """A streaming GET with the client's server, TLS trust and token (KubeClient reads whole bodies).

    Reaches into the client's settings by design: one place owns how the agent streams.  The read
    timeout is the stall limit: a stream silent that long raises TimeoutError and is reopened.
    """
    https, host, port, base = client._https, client._host, client._port, client._base
    conn: http.client.HTTPConnection
    if https:
        conn = http.client.HTTPSConnection(host, port, timeout=read_timeout, context=client._ssl)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=read_timeout)
    headers = {"Accept": "application/json", "User-Agent": PRODUCT}
    token = client._token(False)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    q = {k: v for k, v in query.items() if v is not None}
    try:
        conn.request("GET", base + path + "?" + query_string(q), headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            data = response.read()
            if response.status == 410:
                raise Gone(data.decode("utf-8", "replace"))
            raise kube._error(response.status, data, "GET", path)
    except BaseException:
        conn.close()
        raise
    return conn, response


def _events(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    while True:
        line = response.readline()
        if not line:
            return
        if line.strip():
            yield json.loads(line)

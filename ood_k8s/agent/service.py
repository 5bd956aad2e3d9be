"""The agent process: reflectors feeding the cache, the socket answering polls, ``/healthz``.

Threads: one per watched kind (session pods, their secrets, pod events), the socket server (a thread
per connection), the health server, and with ``agent.lifecycle`` the leader election and the
lifecycle's passes (:mod:`ood_k8s.agent.lifecycle`; stop releases the Lease).  :meth:`Agent.reload`
takes a new configuration (SIGHUP); :meth:`Agent.stop` ends every thread and removes the socket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ood_k8s.agent import metrics
from ood_k8s.agent.cache import Cache
from ood_k8s.agent.server import NssUsers, SocketServer, Users
from ood_k8s.agent.watch import Reflector
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.kube import KubeClient

# kind -> (label selector, field selector): session pods and their children carry the job label.
SESSIONS = f"{vocab.MANAGED_BY_KEY}={vocab.MANAGED_BY},{vocab.JOB_LABEL}"
WATCHED: dict[str, tuple[str | None, str | None]] = {
    "Pod": (SESSIONS, None),
    "Secret": (SESSIONS, None),
    "Event": (None, "involvedObject.kind=Pod"),
}


class Agent:
    def __init__(self, cfg: Config, client: KubeClient, *, users: Users | None = None,
                 stall_after: float = 90.0, watch_timeout: int = 300, backoff_cap: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.client = client
        self.users = users or NssUsers()
        self.clock = clock
        self.stopping = threading.Event()
        self.cache = Cache(cfg.users.namespace_prefix)
        self.reflectors = [Reflector(client, kind, self.cache, self.stopping, label_selector=labels,
                                     field_selector=fields, stall_after=stall_after, watch_timeout=watch_timeout,
                                     backoff_cap=backoff_cap, clock=clock)
                           for kind, (labels, fields) in WATCHED.items()]
        self.served = 0
        self.answers: dict[str, int] = {}  # result -> count, and each answer's time: for /metrics
        self.latency = metrics.Histogram()
        self.socket: SocketServer | None = None
        self.health: ThreadingHTTPServer | None = None
        self.lifecycle: Any = None  # ood_k8s.agent.lifecycle.Lifecycle while it runs
        self._threads: list[threading.Thread] = []

    # --- state ---------------------------------------------------------------------------------------

    def age(self) -> float:
        """Seconds the view may lag the API server: the stalest of the watches (0 while all are live)."""
        return round(max(r.age() for r in self.reflectors), 3)

    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors)

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(r.synced.wait(max(0.0, deadline - time.monotonic())) for r in self.reflectors)

    def status(self) -> dict[str, Any]:
        return {"synced": self.synced(), "age": self.age(), "served": self.served, **self.cache.sizes(),
                "watches": {r.kind: {"live": r.live, "resourceVersion": r.rv, "lists": r.lists,
                                     "watches": r.watches, "error": r.last_error} for r in self.reflectors}}

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Agent:
        for r in self.reflectors:
            self._thread(r.run, f"watch-{r.kind}")
        self._serve_socket()
        if self.cfg.agent.health_port:
            self.health = _health_server(self, self.cfg.agent.health_port)
            self._thread(self.health.serve_forever, "healthz")
        if self.cfg.agent.lifecycle:
            self._start_lifecycle()
        return self

    def _start_lifecycle(self) -> None:
        from ood_k8s.agent.lifecycle import Lifecycle

        def pods() -> list[dict[str, Any]]:
            with self.cache.lock:
                return list(self.cache.pods.values())  # the pass copies them

        def events_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
            meta = pod.get("metadata") or {}
            return self.cache.client().list("Event", meta.get("namespace"),
                                            field_selector=f"involvedObject.name={meta.get('name')}")

        def secrets() -> list[dict[str, Any]]:
            with self.cache.lock:
                return list(self.cache.secrets.values())  # read only (decoded by the task)

        def ready() -> bool:  # never act on a partial or stale view
            return self.synced() and self.age() <= self.cfg.agent.max_age

        self.lifecycle = Lifecycle(self.cfg, self.client, pods, events_of, secrets=secrets, ready=ready).start()

    def _thread(self, target: Callable[[], Any], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _serve_socket(self) -> None:
        self.socket = SocketServer(self.cfg.agent.socket, self, self.users)
        self._thread(lambda: self.socket.serve_forever(poll_interval=0.05), "socket")  # type: ignore[union-attr]

    def reload(self, cfg: Config) -> None:
        """A new configuration (SIGHUP): answers use it at once; a new socket path is bound anew."""
        old = self.cfg
        self.cfg = cfg
        if self.lifecycle is not None:
            self.lifecycle.cfg = cfg  # the next pass uses it (the Lease timing stays as it started)
        self.cache.prefix = cfg.users.namespace_prefix
        if cfg.agent.socket != old.agent.socket:
            self._close_socket()
            self._serve_socket()

    def _close_socket(self) -> None:
        if self.socket is not None:
            import os

            self.socket.shutdown()
            self.socket.server_close()
            try:
                os.unlink(self.socket.server_address)  # type: ignore[arg-type]
            except OSError:
                pass
            self.socket = None

    def stop(self) -> None:
        """Graceful stop: no new answers, streams cut, threads joined, the socket file removed."""
        self.stopping.set()
        if self.lifecycle is not None:
            self.lifecycle.stop(release=True)  # step down first: another agent takes over at once
        self._close_socket()
        if self.health is not None:
            self.health.shutdown()
            self.health.server_close()
        for r in self.reflectors:
            r.close()
        for t in self._threads:
            t.join(timeout=5)


def _health_server(agent: Agent, port: int) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            import json

            if self.path == "/metrics":
                self._send(200, metrics.CONTENT_TYPE, metrics.render(metrics.collect(agent)).encode())
                return
            if self.path != "/healthz":
                self.send_error(404)
                return
            state = agent.status()
            ok = state["synced"] and state["age"] <= agent.cfg.agent.max_age
            self._send(200 if ok else 503, "application/json", json.dumps(state).encode())

        def _send(self, code: int, content_type: str, data: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    server.daemon_threads = True
    return server

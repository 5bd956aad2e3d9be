"""FakeKube: the public face of the fake API server (see the package docstring)."""

from __future__ import annotations

import copy
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

import yaml

from . import certs, defaults
from .api import Api, Ctx
from .registry import BY_GVK, BY_PLURAL, lookup
from .server import Injection, RecordedRequest, _Server
from .store import Store, now_rfc3339

_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class FakeKube:
    """An in-process stand-in for kube-apiserver speaking real HTTP(S) on 127.0.0.1."""

    def __init__(self, tls: bool = True, token: str = "test-token") -> None:  # noqa: S107 - a test credential
        self.tls = tls
        self.token = token
        self.authenticate: Callable[[str], str | None] = self._default_authenticate
        self.authorize: Callable[[str, str, str, str | None], bool] = lambda user, verb, resource, namespace: True
        self.requests: list[RecordedRequest] = []
        self.latency = 0.0
        # Seconds between BOOKMARK events on watches with allowWatchBookmarks=true (the real server: ~60).
        self.bookmark_interval = 60.0
        # Cleared by hang(): requests wait unanswered and watch streams go silent (a hung API server).
        self.responsive = threading.Event()
        self.responsive.set()
        # Plurals this cluster does not serve (see uninstall); replaced whole, never mutated.
        self.absent: frozenset[str] = frozenset()
        self.ca_file: str | None = None
        self.url = ""
        self.store = Store()
        # authorize is looked up at call time so tests may replace it after start()
        self.api = Api(self.store, lambda *a: self.authorize(*a))
        self._injections: list[Injection] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        for ns in _SYSTEM_NAMESPACES:
            self.api.create(
                BY_PLURAL["namespaces"],
                None,
                f'{{"metadata":{{"name":"{ns}"}}}}'.encode(),
                Ctx(user_agent="kube-apiserver/v1.33.0"),
            )

    def _default_authenticate(self, token: str) -> str | None:
        return "admin" if token == self.token else None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeKube:
        if self._server is not None:
            return self
        context = None
        if self.tls:
            self._tmpdir = tempfile.mkdtemp(prefix="fakekube-")
            files = certs.generate(self._tmpdir)
            self.ca_file = files.ca_file
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(files.cert_file, files.key_file)
        self._server = _Server(self, context)
        port = self._server.server_address[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name=f"fakekube-{port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        server.stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()  # wake watchers so they end their streams
        server.shutdown()
        server.server_close()
        with server.sockets_lock:
            for s in list(server.open_sockets):
                try:
                    s.shutdown(2)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ recording & faults

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def inject(
        self,
        status: int = 429,
        retry_after: int | None = 1,
        count: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        drop: bool = False,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        """The next ``count`` matching requests fail with ``status`` (a Status body; Retry-After on
        429/503) or, with ``drop=True``, see their connection closed without an answer."""
        with self._lock:
            self._injections.append(Injection(status, retry_after, count, method, path_contains, drop, message, reason))

    def _take_injection(self, method: str, path: str) -> Injection | None:
        with self._lock:
            for inj in self._injections:
                if inj.count > 0 and inj.matches(method, path):
                    inj.count -= 1
                    if inj.count == 0:
                        self._injections.remove(inj)
                    return inj
        return None

    def hang(self) -> None:
        """A hung API server: connections are accepted, nothing is answered, open watches go silent."""
        self.responsive.clear()

    def unhang(self) -> None:
        self.responsive.set()

    def _wait_responsive(self, stopping: threading.Event) -> None:
        while not self.responsive.wait(0.05) and not stopping.is_set():
            pass

    def drop_watches(self) -> None:
        """Every open watch stream is cut (as when an API server restarts or a load balancer times out)."""
        if self._server is not None:
            self._server.drop_watches()

    def compact(self) -> int:
        """etcd compaction: a watch from any older resourceVersion now gets 410 Gone. Returns the current one."""
        return self.store.compact()

    def uninstall(self, *kind_plurals: str) -> None:
        """Make these resource types absent, as on a cluster without their CRDs (e.g. no Karpenter):
        their paths answer "404 page not found", discovery leaves them (and a group left empty) out,
        and their stored objects are gone, as when a CRD is deleted."""
        rts = [lookup(p) for p in kind_plurals]
        self.absent = self.absent | {rt.plural for rt in rts}
        with self.store.lock:
            for rt in rts:
                for obj in self.store.list(rt.plural):
                    meta = obj["metadata"]
                    self.store.remove(rt.plural, meta.get("namespace"), meta["name"])

    # ------------------------------------------------------------------ direct store access

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as is (no validation, no admission), filling what the server would."""
        obj = copy.deepcopy(obj)
        rt = BY_GVK.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if rt is None:
            raise ValueError(f"fakekube cannot seed apiVersion={obj.get('apiVersion')!r} kind={obj.get('kind')!r}")
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError("seeded objects need metadata.name")
        if rt.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        with self.store.lock:
            existing = self.store.get(rt.plural, meta.get("namespace"), meta["name"])
            meta.setdefault("uid", existing["metadata"]["uid"] if existing else str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            if rt.has_generation:
                meta.setdefault("generation", 1)
            # Defaults matter: a client PUTting back a read object must not trip immutability checks.
            defaults.default_object(rt.plural, obj)
            if "status" not in obj:
                status = defaults.initial_status(rt.plural, obj)
                if status is not None:
                    obj["status"] = status
            if rt.plural == "namespaces":
                obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            stored = self.store.put(rt.plural, obj, "MODIFIED" if existing else "ADDED")
            if rt.plural == "namespaces" and not existing:
                self.api._namespace_created(stored)
            if rt.plural in ("pods", "resourcequotas"):
                self.api.refresh_quotas(meta.get("namespace") or "")
                stored = self.store.get(rt.plural, meta.get("namespace"), meta["name"]) or stored
            return stored

    def get(self, kind_plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        rt = lookup(kind_plural)
        return self.store.get(rt.plural, namespace if rt.namespaced else None, name)

    def list(self, kind_plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        rt = lookup(kind_plural)
        return self.store.list(rt.plural, namespace if rt.namespaced else None)

    # ------------------------------------------------------------------ playing kubelet / scheduler

    def set_pod_status(
        self, namespace: str, name: str, node_name: str | None = None, **status_fields: Any
    ) -> dict[str, Any]:
        """Merge ``status_fields`` into the pod's status (top-level keys replaced), optionally
        binding it to ``node_name`` like the scheduler does; bumps resourceVersion."""
        with self.store.lock:
            pod = self.store.get("pods", namespace, name)
            if pod is None:
                raise KeyError(f"pod {namespace}/{name} not found")
            if node_name is not None:
                pod.setdefault("spec", {})["nodeName"] = node_name
            status = pod.setdefault("status", {})
            status.update(copy.deepcopy(status_fields))
            stored = self.store.put("pods", pod, "MODIFIED")
            self.api.refresh_quotas(namespace)  # a pod turning Succeeded/Failed frees its quota
            return stored

    def add_event(
        self,
        namespace: str,
        involved: dict[str, Any],
        reason: str,
        message: str,
        type: str = "Normal",
        component: str | None = None,
    ) -> dict[str, Any]:
        """Record a core/v1 Event about ``involved`` (an object, or {kind,name,namespace,uid})."""
        meta = involved.get("metadata") or {}
        ref = {
            "kind": involved.get("kind", ""),
            "namespace": meta.get("namespace", involved.get("namespace", namespace)),
            "name": meta.get("name", involved.get("name", "")),
            "uid": meta.get("uid", involved.get("uid", "")),
            "apiVersion": involved.get("apiVersion", "v1"),
            "resourceVersion": meta.get("resourceVersion", involved.get("resourceVersion", "")),
        }
        ref = {k: v for k, v in ref.items() if v}
        if component is None:
            component = "default-scheduler" if reason in ("Scheduled", "FailedScheduling") else "kubelet"
        ts = now_rfc3339()
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            # the recorder names events "<object>.<unix nanos in hex>"
            "metadata": {
                "name": f"{ref.get('name', 'event')}.{time.time_ns():x}",
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": ts,
            },
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        return self.store.put("events", event, "ADDED")

    def finish_deletion(self, kind_plural: str, namespace: str | None, name: str) -> None:
        """The kubelet confirms a graceful pod deletion / the namespace controller finalizes a namespace."""
        rt = lookup(kind_plural)
        self.api.finish_deletion(rt.plural, namespace if rt.namespaced else None, name)

    # ------------------------------------------------------------------ client config

    def write_kubeconfig(self, path: str, token: str | None = None, user_exec: dict[str, Any] | None = None) -> str:
        if not self.url:
            raise RuntimeError("start() the FakeKube before writing a kubeconfig")
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls and self.ca_file:
            cluster["certificate-authority"] = self.ca_file
        user: dict[str, Any] = {"exec": user_exec} if user_exec is not None else {"token": token or self.token}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fakekube", "cluster": cluster}],
            "contexts": [{"name": "fakekube", "context": {"cluster": "fakekube", "user": "fakekube-user"}}],
            "current-context": "fakekube",
            "users": [{"name": "fakekube-user", "user": user}],
            "preferences": {},
        }
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        return path

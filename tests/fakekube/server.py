"""HTTP(S) front end: routing, authentication, authorization, fault injection,
request recording and watch streaming. The API semantics live in ``api.py``."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from . import discovery, errors, protobuf
from .api import Ctx, int_param
from .errors import ApiError
from .registry import BY_GVR, ResourceType
from .selectors import parse_field_selector, parse_label_selector

if TYPE_CHECKING:
    from .fake import FakeKube

HEALTH_PATHS = ("/healthz", "/readyz", "/livez")
# Paths the real server lets anonymous users read (system:public-info-viewer).
PUBLIC_PATHS = (*HEALTH_PATHS, "/version")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    user: str | None = None


@dataclass
class Injection:
    status: int = 429
    retry_after: int | None = 1
    count: int = 1
    method: str | None = None
    path_contains: str | None = None
    drop: bool = False
    message: str | None = None
    reason: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path_contains and self.path_contains not in path)


@dataclass
class Route:
    """A parsed resource URL."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str = ""
    extra: list[str] = field(default_factory=list)


@dataclass
class _Stream:
    """A watch in progress: its resource, the last resourceVersion sent, whether BOOKMARKs were asked for."""

    rt: ResourceType
    since: int
    bookmarks: bool
    deadline: float


class _NotFoundPath(Exception):
    """No route: the real server answers with a plain "404 page not found"."""


def parse_resource_path(path: str) -> Route | None:
    """Split /api/v1/... and /apis/G/V/... paths; None when not a resource path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_GVR:
        rt = BY_GVR[(group, version, rest[2])]
        if not rt.namespaced:
            raise _NotFoundPath
        name = rest[3] if len(rest) > 3 else None
        sub = rest[4] if len(rest) > 4 else ""
        return Route(rt, rest[1], name, sub, rest[5:])
    rt = BY_GVR.get((group, version, rest[0]))
    if rt is None:
        raise _NotFoundPath
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    return Route(rt, None, name, sub, rest[3:])


def _verb(method: str, route: Route, query: dict[str, str]) -> str:
    if method == "GET":
        if route.name:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method) or (
        "delete" if route.name else "deletecollection"
    )


BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def _json_body(body: bytes, content_type: str) -> bytes:
    """Create/update bodies may be JSON, YAML or (from typed Go clients) protobuf."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in ("", "application/json", "*/*"):
        return body
    try:
        if ctype == "application/yaml":
            return json.dumps(yaml.safe_load(body)).encode()
        if ctype == "application/vnd.kubernetes.protobuf":
            return json.dumps(protobuf.decode_unknown(body)).encode()
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(str(exc)) from None
    raise errors.unsupported_media_type(ctype, list(BODY_TYPES))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not block stop()
    allow_reuse_address = True

    def __init__(self, fake: FakeKube, ssl_context: ssl.SSLContext | None) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        self.stopping = threading.Event()
        # Bumped by FakeKube.drop_watches(): every watch stream started before it ends abruptly.
        self.watch_generation = 0
        self.watch_sockets: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), Handler)

    def drop_watches(self) -> None:
        with self.sockets_lock:
            self.watch_generation += 1
            socks = list(self.watch_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.fake.store.lock:
            self.fake.store.changed.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # broken/aborted connections (and failed TLS handshakes) are expected in tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # --- connection plumbing ---

    def setup(self) -> None:
        # TLS is wrapped here, in the connection's own thread, so a slow handshake
        # never blocks the accept loop.
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
        # client's delayed ACK would add ~40 ms to every response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.server.ssl_context is not None:
            self.request.settimeout(10)
            self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # --- request pipeline ---

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        path = split.path or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body()
        rec = RecordedRequest(method, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
        fake._wait_responsive(self.server.stopping)  # fk.hang(): the request waits, unanswered
        if fake.latency:
            time.sleep(fake.latency)
        inj = fake._take_injection(method, self.path)
        if inj is not None:
            if inj.drop:
                fake._record(rec)
                self.close_connection = True
                try:
                    self.request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            reason, default_msg = errors.REASON_FOR_CODE.get(inj.status, ("", f"injected status {inj.status}"))
            details: dict[str, Any] = {}
            headers: dict[str, str] = {}
            if inj.status in (429, 503) and inj.retry_after is not None:
                headers["Retry-After"] = str(inj.retry_after)
                details["retryAfterSeconds"] = inj.retry_after
            err = ApiError(inj.status, inj.reason or reason, inj.message or default_msg, details, headers)
            self._send_error(rec, err)
            return
        try:
            self._dispatch(method, path, query, body, rec)
        except ApiError as exc:
            self._send_error(rec, exc)
        except _NotFoundPath:
            self._send(rec, 404, b"404 page not found\n", "text/plain; charset=utf-8")
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake must surface as a 500, not a hung client
            self._send_error(rec, ApiError(500, "InternalError", f"Internal error occurred: fakekube: {exc!r}"))

    def _authenticate(self, path: str) -> str | None:
        auth = self.headers.get("Authorization")
        if auth is None:
            if path in PUBLIC_PATHS or path.startswith(HEALTH_PATHS):
                return "system:anonymous"
            raise errors.unauthorized()
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized()
        user = self.server.fake.authenticate(token.strip())
        if not user:
            raise errors.unauthorized()
        return user

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: bytes, rec: RecordedRequest) -> None:
        fake = self.server.fake
        rec.user = self._authenticate(path)
        if path in HEALTH_PATHS or path.startswith(tuple(p + "/" for p in HEALTH_PATHS)):
            self._send(rec, 200, b"ok", "text/plain; charset=utf-8")
            return
        doc = self._discovery(path)
        if doc is not None:
            if method != "GET":
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            self._send_json(rec, 200, doc)
            return
        route = parse_resource_path(path)
        if route is None or route.rt.plural in fake.absent:
            raise _NotFoundPath
        rt = route.rt
        if route.extra or (route.subresource and route.subresource not in rt.subresources):
            raise _NotFoundPath
        verb = _verb(method, route, query)
        if verb not in rt.verbs or (route.subresource and verb not in ("get", "update", "patch")):
            raise errors.method_not_supported(rt, verb)
        if rt.namespaced and not route.namespace and verb not in ("list", "watch"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        # RBAC's view of the request: for a namespace itself, its name is also "the namespace".
        ns_for_authz = route.namespace or (route.name if rt.plural == "namespaces" else None)
        resource = rt.plural + (f"/{route.subresource}" if route.subresource else "")
        # system:basic-user lets every authenticated user ask "can I?"; only other requests meet authorize.
        if rt.plural != "selfsubjectaccessreviews" and not fake.authorize(rec.user or "", verb, resource, ns_for_authz):
            scope = f'in the namespace "{ns_for_authz}"' if ns_for_authz else "at the cluster scope"
            why = f'User "{rec.user}" cannot {verb} resource "{resource}" in API group "{rt.group}" {scope}'
            raise errors.forbidden_error(rt.group, rt.plural, route.name or "", why)
        if verb in ("create", "update"):
            body = _json_body(body, self.headers.get("Content-Type", ""))
        ctx = Ctx(user=rec.user, user_agent=self.headers.get("User-Agent", ""), query=query)
        api = fake.api
        ns, name, sub = route.namespace, route.name, route.subresource
        if verb == "get":
            status, out = api.get(rt, ns, name or "")
        elif verb == "list":
            status, out = api.list(rt, ns, query)
        elif verb == "watch":
            self._watch(rec, rt, ns, query)
            return
        elif verb == "create":
            if name:
                raise errors.method_not_supported(rt, "create")
            status, out = api.create(rt, ns, body, ctx)
        elif verb == "update":
            status, out = api.update(rt, ns, name or "", body, ctx, sub)
        elif verb == "patch":
            status, out = api.patch(rt, ns, name or "", body, self.headers.get("Content-Type", ""), ctx, sub)
        elif verb == "delete":
            status, out = api.delete(rt, ns, name or "", body, ctx)
        else:
            status, out = api.deletecollection(rt, ns, body, ctx)
        self._send_json(rec, status, out)

    def _discovery(self, path: str) -> dict[str, Any] | None:
        absent = self.server.fake.absent
        p = path.rstrip("/") or "/"
        parts = [x for x in p.split("/") if x]
        if p == "/version":
            return discovery.VERSION_INFO
        if p == "/api":
            return discovery.api_versions(f"127.0.0.1:{self.server.server_address[1]}")
        if p == "/api/v1":
            return discovery.api_resource_list("", "v1", absent)
        if p == "/apis":
            return discovery.api_group_list(absent)
        if p == "/openapi/v3":
            return discovery.openapi_v3_root(absent)
        if p.startswith("/openapi/v3/"):
            doc = discovery.openapi_v3_group_version(p[len("/openapi/v3/") :], absent)
            if doc is None:
                raise _NotFoundPath
            return doc
        if len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(parts[1], absent)
            if doc is None:
                raise _NotFoundPath
            return doc
        if len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(parts[1], parts[2], absent)
            if doc is None:
                raise _NotFoundPath
            return doc
        return None

    # --- watch ---

    def _watch(self, rec: RecordedRequest, rt: ResourceType, ns: str | None, query: dict[str, str]) -> None:
        fake = self.server.fake
        store = fake.store
        label_pred = parse_label_selector(query.get("labelSelector"))
        field_pred = parse_field_selector(rt.plural, query.get("fieldSelector"))
        timeout = float(int_param(query, "timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv_param = query.get("resourceVersion", "")
        if rv_param and not rv_param.isdigit():
            raise errors.bad_request(
                f'invalid resource version: strconv.ParseUint: parsing "{rv_param}": invalid syntax'
            )
        initial: list[dict[str, Any]] = []
        with store.lock:
            if not rv_param or rv_param == "0" or query.get("sendInitialEvents") == "true":
                since = store.current_rv
                initial = [
                    {"type": "ADDED", "object": o} for o in store.list(rt.plural, ns) if label_pred(o) and field_pred(o)
                ]
            else:
                since = int(rv_param)
                if since < store.log_start - 1:
                    initial = [
                        {
                            "type": "ERROR",
                            "object": errors.status_body(
                                410, "Expired", f"too old resource version: {since} ({store.log_start - 1})"
                            ),
                        }
                    ]
                    deadline = 0
        if query.get("sendInitialEvents") == "true":
            initial.append(
                {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": rt.kind,
                        "apiVersion": rt.api_version,
                        "metadata": {
                            "resourceVersion": str(since),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            )
        rec.status = 200
        fake._record(rec)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        with self.server.sockets_lock:
            generation = self.server.watch_generation
            self.server.watch_sockets.add(self.request)
        try:
            for ev in initial:
                self._chunk(ev)
            stream = _Stream(rt, since, query.get("allowWatchBookmarks") == "true", deadline)
            self._stream(stream, generation, ns, lambda o: label_pred(o) and field_pred(o))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with self.server.sockets_lock:
                self.server.watch_sockets.discard(self.request)

    def _stream(self, st: _Stream, generation: int, ns: str | None, pred: Any) -> None:
        """Events after ``st.since`` until the deadline; BOOKMARKs every ``fk.bookmark_interval`` when
        allowed (the real server sends them about once a minute); nothing at all while ``fk.hang()``."""
        fake, store = self.server.fake, self.server.fake.store
        next_bookmark = time.monotonic() + fake.bookmark_interval
        while time.monotonic() < st.deadline and not self.server.stopping.is_set():
            if generation != self.server.watch_generation:
                raise ConnectionResetError("watch dropped")  # fk.drop_watches()
            if not fake.responsive.is_set():
                fake.responsive.wait(0.05)
                continue
            bookmark = None
            with store.lock:
                events = store.events_after(st.since, st.rt.plural, ns)
                if not events:
                    if st.bookmarks and time.monotonic() >= next_bookmark:
                        st.since = bookmark = store.current_rv  # nothing of ours is pending up to here
                    else:
                        wait = min(0.5, max(0.0, st.deadline - time.monotonic()))
                        if st.bookmarks:
                            wait = min(wait, max(0.0, next_bookmark - time.monotonic()))
                        store.changed.wait(timeout=wait)
                        continue
            if bookmark is not None:
                next_bookmark = time.monotonic() + fake.bookmark_interval
                self._chunk({"type": "BOOKMARK", "object": {"kind": st.rt.kind, "apiVersion": st.rt.api_version,
                                                            "metadata": {"resourceVersion": str(bookmark)}}})
                continue
            for e in events:
                st.since = e.rv
                if pred(e.obj):
                    self._chunk({"type": e.type, "object": e.obj})

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # --- responses ---

    def _send_error(self, rec: RecordedRequest, err: ApiError) -> None:
        self._send_json(rec, err.code, err.body(), err.headers)

    def _send_json(
        self, rec: RecordedRequest, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self._send(rec, status, data, "application/json", headers)

    def _send(
        self, rec: RecordedRequest, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        rec.status = status
        # Record before answering so a client never sees a response its request is missing from.
        self.server.fake._record(rec)
        self.send_response(status)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

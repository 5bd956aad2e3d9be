"""The one way ood-k8s talks to the Kubernetes API: a small client on the standard library.

Why not the official ``kubernetes`` package: importing it costs ~240 ms and OOD starts a process
for every status poll (REFERENCE §9).  This module imports ``http.client``, ``ssl`` and ``json``
only, keeps one keep-alive connection per thread, and exposes kubectl-like verbs::

    client.get("Pod", "jupyter-0a1b2c3d", namespace="ood-alice")
    client.list("Pod", namespace="ood-alice", label_selector="ood-k8s.io/job")
    client.create(obj); client.apply(obj); client.patch(...); client.delete(...)

Failures raise the typed errors of :mod:`ood_k8s.errors` (NotFound, AlreadyExists, Conflict,
Invalid, Forbidden, Unauthorized, Unavailable) with one-line messages.  429, 5xx and connection
errors are retried with exponential backoff that honours ``Retry-After``; a 401 makes the client
ask its token source for a fresh token once, as kubectl does with exec plugins.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlencode, urlsplit

from .errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Unauthorized,
    Unavailable,
)

FIELD_MANAGER = "ood-k8s"


@dataclass(frozen=True)
class Resource:
    kind: str
    api_version: str
    plural: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"


def _r(kind: str, api_version: str, plural: str, namespaced: bool = True) -> Resource:
    return Resource(kind, api_version, plural, namespaced)


RESOURCES: dict[str, Resource] = {r.kind: r for r in (
    _r("Namespace", "v1", "namespaces", False),
    _r("Pod", "v1", "pods"),
    _r("Service", "v1", "services"),
    _r("Secret", "v1", "secrets"),
    _r("ConfigMap", "v1", "configmaps"),
    _r("Event", "v1", "events"),
    _r("ServiceAccount", "v1", "serviceaccounts"),
    _r("ResourceQuota", "v1", "resourcequotas"),
    _r("LimitRange", "v1", "limitranges"),
    _r("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
    _r("PersistentVolume", "v1", "persistentvolumes", False),
    _r("Node", "v1", "nodes", False),
    _r("Role", "rbac.authorization.k8s.io/v1", "roles"),
    _r("RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings"),
    _r("ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", False),
    _r("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    _r("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
    _r("PriorityClass", "scheduling.k8s.io/v1", "priorityclasses", False),
    _r("SelfSubjectAccessReview", "authorization.k8s.io/v1", "selfsubjectaccessreviews", False),
    _r("ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1", "validatingadmissionpolicies", False),
    _r("ValidatingAdmissionPolicyBinding", "admissionregistration.k8s.io/v1",
       "validatingadmissionpolicybindings", False),
    _r("NodePool", "karpenter.sh/v1", "nodepools", False),
    _r("EC2NodeClass", "karpenter.k8s.aws/v1", "ec2nodeclasses", False),
)}


def resource(kind: str) -> Resource:
    try:
        return RESOURCES[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}") from None


_REASONS: dict[str, type[KubeError]] = {
    "NotFound": NotFound, "AlreadyExists": AlreadyExists, "Conflict": Conflict, "Invalid": Invalid,
    "Forbidden": Forbidden, "Unauthorized": Unauthorized,
}
_BY_STATUS: dict[int, type[KubeError]] = {
    404: NotFound, 409: Conflict, 422: Invalid, 400: Invalid, 403: Forbidden, 401: Unauthorized,
}
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE", "HEAD"})


def _segment(value: str) -> str:
    """A path segment that cannot climb or add segments, whatever the caller passed.

    Same rule as the API server's path-segment names: not empty, '.' or '..', no '/' or '%'.
    """
    if not value or value in (".", "..") or "/" in value or "%" in value:
        raise Invalid(f"invalid object name {value!r}", "names are DNS-1123 labels or subdomains")
    return quote(value, safe="")


class KubeClient:
    """Kubernetes API client. Thread safe: each thread keeps its own keep-alive connection."""

    def __init__(self, server: str, *, token: Callable[[bool], str] | str | None = None,
                 ca_file: str | None = None, ca_data: bytes | None = None, insecure: bool = False,
                 client_cert: tuple[str, str] | None = None, timeout: float = 10.0, retries: int = 4,
                 field_manager: str = FIELD_MANAGER, sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise Unavailable(f"invalid API server URL {server!r}", "set cluster.server to https://HOST:PORT")
        self.server = server.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._token = (lambda refresh=False: token) if isinstance(token, str) or token is None else token
        self.timeout = timeout
        self.retries = retries
        self.field_manager = field_manager
        self._sleep = sleep
        self._local = threading.local()
        self._lock = threading.Lock()
        self.round_trips = 0
        self._ssl: ssl.SSLContext | None = None
        if self._https:
            ctx = ssl.create_default_context(cafile=ca_file, cadata=ca_data.decode() if ca_data else None)
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if client_cert:
                ctx.load_cert_chain(*client_cert)
            self._ssl = ctx

    # --- transport ---------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                                   context=self._ssl)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        self._drop_connection()

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        conn = self._connection()
        with self._lock:
            self.round_trips += 1
        try:
            conn.request(method, url, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            self._drop_connection()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
                content_type: str = "application/json") -> Any:
        """One API call with retries; returns the decoded JSON body (or None for an empty one)."""
        url = self._base + path
        q = {k: v for k, v in (query or {}).items() if v is not None}
        if q:
            url += "?" + urlencode(q)
        payload = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        refreshed = False
        attempt = 0
        while True:
            headers = {"Accept": "application/json", "User-Agent": "ood-k8s"}
            if payload is not None:
                headers["Content-Type"] = content_type
            token = self._token(False) if not refreshed else self._token(True)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                status, resp_headers, data = self._send(method, url, payload, headers)
            except (OSError, http.client.HTTPException) as exc:
                # A POST is retried only when it cannot have reached the server.
                safe = method in _IDEMPOTENT or isinstance(exc, (ConnectionRefusedError, socket.gaierror))
                if attempt < self.retries and safe:
                    self._sleep(self._backoff(attempt, None))
                    attempt += 1
                    continue
                raise Unavailable(f"cannot reach the Kubernetes API at {self.server}: {_describe_oserror(exc)}")\
                    from None
            if status == 401 and not refreshed:
                refreshed = True  # the token may have expired in flight; ask for a fresh one once
                continue
            if status in RETRY_STATUS and attempt < self.retries and (method in _IDEMPOTENT or status == 429):
                self._sleep(self._backoff(attempt, resp_headers.get("retry-after")))
                attempt += 1
                continue
            if status >= 400:
                raise _error(status, data, method, path)
            return json.loads(data) if data else None

    @staticmethod
    def _backoff(attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), 30.0)
            except ValueError:
                pass
        return min(0.2 * (2 ** attempt), 5.0) * (0.5 + random.random() / 2)  # noqa: S311 (jitter)

    # --- paths ---------------------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None, namespace: str | None = None, sub: str = "") -> str:
        r = resource(kind)
        p = r.prefix
        if r.namespaced and namespace is not None:
            p += f"/namespaces/{_segment(namespace)}"
        p += f"/{r.plural}"
        if name is not None:
            p += f"/{_segment(name)}"
        if sub:
            p += f"/{sub}"
        return p

    # --- verbs ---------------------------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.request("GET", self.path(kind, name, namespace))

    def get_or_none(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.get(kind, name, namespace)
        except NotFound:
            return None

    def list(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        """Items of a list call (all namespaces when ``namespace`` is None for a namespaced kind)."""
        data = self.request("GET", self.path(kind, namespace=namespace),
                            query={"labelSelector": label_selector, "fieldSelector": field_selector})
        return data.get("items") or []

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return self.request("POST", self.path(obj["kind"], namespace=ns), body=obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.request("PUT", self.path(obj["kind"], meta["name"], meta.get("namespace")), body=obj)

    def patch(self, kind: str, name: str, patch: Any, namespace: str | None = None, *,
              patch_type: str = "merge", sub: str = "") -> dict[str, Any]:
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[patch_type]
        return self.request("PATCH", self.path(kind, name, namespace, sub), body=patch, content_type=ctype,
                            query={"fieldManager": self.field_manager})

    def apply(self, obj: dict[str, Any], *, force: bool = True, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply under this client's field manager (creates the object if absent)."""
        meta = obj["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true" if force else "false",
                 "dryRun": "All" if dry_run else None}
        return self.request("PATCH", self.path(obj["kind"], meta["name"], meta.get("namespace")), body=obj,
                            content_type="application/apply-patch+yaml", query=query)

    def delete(self, kind: str, name: str, namespace: str | None = None, *, propagation: str = "Background",
               grace_period: int | None = None, missing_ok: bool = False) -> dict[str, Any] | None:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        try:
            return self.request("DELETE", self.path(kind, name, namespace), body=body)
        except NotFound:
            if missing_ok:
                return None
            raise

    def version(self) -> dict[str, Any]:
        return self.request("GET", "/version")

    def can_i(self, verb: str, kind: str, namespace: str | None = None, name: str | None = None,
              subresource: str | None = None) -> bool:
        r = resource(kind)
        attrs = {"verb": verb, "group": r.api_version.rpartition("/")[0], "resource": r.plural}
        for key, value in (("namespace", namespace), ("name", name), ("subresource", subresource)):
            if value:
                attrs[key] = value
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attrs}}
        return bool(self.create(review).get("status", {}).get("allowed"))


def _describe_oserror(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); check cluster.certificate_authority"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())


def _error(status: int, data: bytes, method: str, path: str) -> KubeError:
    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    if status == 401:
        # Never echo what the server says about the token: it could quote it.
        message = "the Kubernetes API refused the credentials (401 Unauthorized)"
    if not message:
        message = f"{method} {path} failed with HTTP {status}"
    cls = _REASONS.get(reason) or _BY_STATUS.get(status)
    if cls is None:
        cls = Unavailable if status >= 500 or status == 429 else KubeError
    if cls is Unavailable:
        message = f"the Kubernetes API answered {status} {reason or ''}: {message}".replace("  ", " ")
    return cls(message, status=status, reason=reason)


"""The one way ood-k8s talks to the Kubernetes API: a small client on the standard library.

Why not the official ``kubernetes`` package: importing it costs ~240 ms and OOD starts a process
for every status poll (REFERENCE §9).  For the same reason the transport is not ``http.client``
but :class:`ood_k8s.core.http.Connection`.  One keep-alive connection per thread (one TLS
handshake per process on the poll path), a table of the resources ood-k8s touches, and kubectl-like
verbs::

    client.get("Pod", "jupyter-0a1b2c3d", namespace="ood-alice")
    client.list("Pod", namespace="ood-alice", label_selector=vocab.JOB_LABEL)
    client.create(obj); client.apply(obj); client.patch(...); client.delete(...)

Failures raise the typed errors of :mod:`ood_k8s.core.errors` (NotFound, AlreadyExists, Conflict,
Invalid, Forbidden, Unauthorized, Unavailable) with one-line messages.  429, 5xx and connection
errors are retried with exponential backoff that honours ``Retry-After``; a 401 makes the client
ask its token source for a fresh token once, as kubectl does with exec plugins.
"""

import _thread  # threading's own primitives, without importing threading: ~2 ms of every poll
import json
import socket
import ssl
import time
from typing import Any, Callable, NamedTuple, Optional, Union

from ood_k8s.core.errors import (
    AlreadyExists,
    ConfigError,
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from ood_k8s.core.http import (
    Connection,
    describe_oserror,
    is_tls_failure,
    percent,
    proxy_for,
    query_string,
    server_address,
)
from ood_k8s.core.vocab import FIELD_MANAGER, PRODUCT


class Resource(NamedTuple):
    # A NamedTuple: a frozen dataclass costs ~1 ms more at import, on every status poll.
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
    _r("Lease", "coordination.k8s.io/v1", "leases"),
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
    return percent(value)


class KubeClient:
    """Kubernetes API client. Thread safe: each thread keeps its own keep-alive connection.

    ``ca_setting`` names, in messages, the setting an admin edits to fix the CA (the site config's
    key, or a kubeconfig's ``certificate-authority``); ``server_name`` and ``proxy_url`` are a
    kubeconfig's ``tls-server-name`` and ``proxy-url`` (the environment's proxy otherwise)."""

    def __init__(self, server: str, *, token: Optional[Union[Callable[[bool], str], str]] = None,
                 ca_file: Optional[str] = None, ca_data: Optional[bytes] = None, insecure: bool = False,
                 client_cert: Optional[tuple[str, str]] = None, timeout: float = 10.0, retries: int = 4,
                 field_manager: str = FIELD_MANAGER, sleep: Callable[[float], None] = time.sleep,
                 ca_setting: str = "cluster.certificate_authority", server_name: Optional[str] = None,
                 proxy_url: str = "") -> None:
        self._https, self._host, self._port, self._base = server_address(server)
        self.ca_setting = ca_setting
        self._server_name = server_name
        self._proxy = proxy_for(self._https, self._host, proxy_url)
        self.server = server.rstrip("/")
        self._token = (lambda refresh=False: token) if isinstance(token, str) or token is None else token
        self.timeout = timeout
        self.retries = retries
        self.field_manager = field_manager
        self._sleep = sleep
        self._connections: dict[int, Connection] = {}  # by thread: one keep-alive connection each
        self._lock = _thread.allocate_lock()
        self.round_trips = 0
        self._ssl: Optional[ssl.SSLContext] = None
        if self._https:
            self._ssl = _tls_context(ca_file, ca_data, insecure, client_cert, ca_setting)

    # --- transport ---------------------------------------------------------------------------

    def _connection(self) -> Connection:
        # A thread ident is reused only after its thread ended, so a connection is never shared.
        ident = _thread.get_ident()
        conn = self._connections.get(ident)
        if conn is None:
            conn = self._connections[ident] = Connection(self._host, self._port, self._ssl, self.timeout,
                                                         self._server_name, self._proxy)
        return conn

    def _drop_connection(self) -> None:
        conn = self._connections.pop(_thread.get_ident(), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close every thread's connection; call it when no request is in flight."""
        with self._lock:
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            conn.close()

    def _send(self, method: str, url: str, body: Optional[bytes], headers: dict[str, str]) -> tuple[int, dict, bytes]:
        conn = self._connection()
        with self._lock:
            self.round_trips += 1
        try:
            return conn.request(method, url, body, headers)
        except BaseException:
            self._drop_connection()
            raise

    def request(self, method: str, path: str, *, query: Optional[dict[str, Any]] = None, body: Any = None,
                content_type: str = "application/json") -> Any:
        """One API call with retries; returns the decoded JSON body (or None for an empty one)."""
        url = self._base + path
        q = {k: v for k, v in (query or {}).items() if v is not None}
        if q:
            url += "?" + query_string(q)
        payload = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        refreshed = False
        attempt = 0
        while True:
            headers = {"Accept": "application/json", "User-Agent": PRODUCT}
            if payload is not None:
                headers["Content-Type"] = content_type
            token = self._token(False) if not refreshed else self._token(True)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                status, resp_headers, data = self._send(method, url, payload, headers)
            except OSError as exc:
                # A POST is retried only when it cannot have reached the server; a certificate or
                # a server without TLS is the same on every try.
                safe = method in _IDEMPOTENT or isinstance(exc, (ConnectionRefusedError, socket.gaierror))
                if attempt < self.retries and safe and not is_tls_failure(exc):
                    self._sleep(self._backoff(attempt, None))
                    attempt += 1
                    continue
                what, hint = describe_oserror(exc, self.ca_setting)
                raise Unavailable(f"cannot reach the Kubernetes API at {self.server}: {what}", hint or None)\
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
    def _backoff(attempt: int, retry_after: Optional[str]) -> float:
        if retry_after:
            try:
                return min(float(retry_after), 30.0)
            except ValueError:
                pass
        return backoff_delay(attempt, 0.2, 5.0)

    # --- paths ---------------------------------------------------------------------------------

    def path(self, kind: str, name: Optional[str] = None, namespace: Optional[str] = None, sub: str = "") -> str:
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

    def get(self, kind: str, name: str, namespace: Optional[str] = None) -> dict[str, Any]:
        return self.request("GET", self.path(kind, name, namespace))

    def get_or_none(self, kind: str, name: str, namespace: Optional[str] = None) -> Optional[dict[str, Any]]:
        try:
            return self.get(kind, name, namespace)
        except NotFound:
            return None

    def list(self, kind: str, namespace: Optional[str] = None, *, label_selector: Optional[str] = None,
             field_selector: Optional[str] = None) -> list[dict[str, Any]]:
        """Items of a list call (all namespaces when ``namespace`` is None for a namespaced kind)."""
        data = self.request("GET", self.path(kind, namespace=namespace),
                            query={"labelSelector": label_selector, "fieldSelector": field_selector})
        return data.get("items") or []

    def create(self, obj: dict[str, Any], namespace: Optional[str] = None) -> dict[str, Any]:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return self.request("POST", self.path(obj["kind"], namespace=ns), body=obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.request("PUT", self.path(obj["kind"], meta["name"], meta.get("namespace")), body=obj)

    def patch(self, kind: str, name: str, patch: Any, namespace: Optional[str] = None, *,
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

    def delete(self, kind: str, name: str, namespace: Optional[str] = None, *, propagation: str = "Background",
               grace_period: Optional[int] = None, missing_ok: bool = False) -> Optional[dict[str, Any]]:
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

    def can_i(self, verb: str, kind: str, namespace: Optional[str] = None, name: Optional[str] = None,
              subresource: Optional[str] = None) -> bool:
        r = resource(kind)
        attrs = {"verb": verb, "group": r.api_version.rpartition("/")[0], "resource": r.plural}
        for key, value in (("namespace", namespace), ("name", name), ("subresource", subresource)):
            if value:
                attrs[key] = value
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attrs}}
        return bool(self.create(review).get("status", {}).get("allowed"))


_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def ca_problem(path: str, setting: str = "cluster.certificate_authority") -> Optional[str]:
    """Why the CA file ``path`` cannot be used (None: it can): missing, unreadable, or no PEM certificate."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 20)
    except OSError as exc:
        return f"{setting}: cannot read {path}: {(exc.strerror or str(exc)).lower()}"
    if _PEM_BEGIN not in data:
        return f"{setting}: {path} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----')"
    try:
        ssl.create_default_context(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        return f"{setting}: {path} is not a valid PEM certificate"
    return None


def read_ca(path: str, setting: str = "cluster.certificate_authority") -> bytes:
    """The CA file's bytes; a ConfigError naming ``setting`` when it is missing, unreadable or not PEM."""
    problem = ca_problem(path, setting)
    if problem:
        raise ConfigError(problem, "fix the file or the setting; 'ood-k8s config check' checks it")
    with open(path, "rb") as fh:
        return fh.read()


def _tls_context(ca_file: Optional[str], ca_data: Optional[bytes], insecure: bool,
                 client_cert: Optional[tuple[str, str]], ca_setting: str) -> ssl.SSLContext:
    """The TLS context; a CA or client certificate that cannot be used is a ConfigError naming its setting."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file, cadata=ca_data.decode("ascii", "replace") if ca_data
                                         else None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        why = "no PEM certificate in it" if isinstance(exc, (ssl.SSLError, ValueError)) else \
            " ".join(str(getattr(exc, "strerror", None) or exc).split()).lower()
        shown = ca_file or "inline certificate-authority-data"
        raise ConfigError(f"cannot use the CA {shown} ({ca_setting}): {why}",
                          f"ask your administrator to fix {ca_setting} ('ood-k8s config check' checks it)") from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        try:
            ctx.load_cert_chain(*client_cert)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot use the client certificate {client_cert[0]}: "
                              f"{getattr(exc, 'strerror', None) or 'not a PEM certificate and key'}",
                              "fix client-certificate and client-key in the kubeconfig") from None
    return ctx


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


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter", so clients that failed together do not retry together."""
    import random  # deferred: only a failing call waits

    return min(base * (2 ** attempt), cap) * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto

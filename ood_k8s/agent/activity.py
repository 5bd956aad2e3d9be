"""Is a session in use?  What its app says (an activity probe) and what its GPUs say (Prometheus).

**Activity probes.**  A profile names the probe its sessions' app answers (``profiles[].activity_probe``);
:data:`PROBES` maps that name to the probe (``module:attribute``), so an app is added with a module and
one registry line.  A probe returns :class:`Activity` -- when the app last saw its user, whether
something runs right now -- or None when it cannot tell (no answer in time, refused, no credential).
Unknown never counts as idle: the idle task reclaims only on a positive answer.

``jupyter`` asks JupyterLab's REST API the way the portal's Connect button reaches it: at the address
and base URL ``apps/jupyter/template/before.sh`` computes (``OOD_K8S_CONNECT_HOST``/``_PORT``, else the
pod's IP and JupyterLab's port, under ``/node/<host>/<port>/``), read here from the pod's own env
(values, field references, and the job's Secret).  The session accepts its password only (no token,
``jupyter_config.py``), so the probe logs in as the Connect button does -- the password and an XSRF
value it also sends as the ``_xsrf`` cookie -- and keeps the login cookie per pod, so JupyterLab logs
one login per session rather than one per pass.  It then reads ``api/status`` (``last_activity``:
the latest of the server's API, kernel and terminal activity) and, when kernels run, ``api/kernels``
(a ``busy`` kernel is in use however long ago its last output was).  Both carry ``no_track_activity``
so that asking is not itself activity.  The password is never logged.

**GPU idleness.**  NVIDIA's DCGM exporter labels ``DCGM_FI_DEV_GPU_UTIL`` (percent, per GPU) with the
pod using the GPU: ``namespace``/``pod`` when Prometheus keeps the exporter's labels (``honorLabels``),
``exported_namespace``/``exported_pod`` when its own target labels took those names.  One instant query
per pass answers for every session and every window asked (:func:`gpu_query`).
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import logging
import secrets as token_source
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, NamedTuple, Protocol

from ood_k8s.core import vocab
from ood_k8s.core.timefmt import timestamp
from ood_k8s.sessions.objects import CONNECT_HOST_ENV, CONNECT_PORT_ENV, PASSWORD_ENV

log = logging.getLogger("ood_k8s.agent.activity")

POD_IP_ENV = "POD_IP"  # the pod's downward-API env (sessions/objects.py)
POD_PORT_ENV = "POD_PORT"  # the app's port, from the submission's --port
_MAX_BODY = 1 << 20  # an answer larger than this is not JupyterLab's or Prometheus'


class Activity(NamedTuple):
    last_active: float | None  # epoch seconds of the last use the app saw; None: it cannot say
    busy: bool  # something runs now (a busy kernel): in use, whatever last_active says
    detail: str  # one line for the log, e.g. "2 kernels (1 busy), 1 connection"


# name -> (pod's namespace's secrets: name -> decoded data); what a probe may read of the session's own
Secrets = Mapping[str, Mapping[str, str]]


class ActivityProbe(Protocol):
    """How the agent asks one kind of app whether its session is in use."""

    name: str

    def probe(self, pod: dict[str, Any], secrets: Secrets, timeout: float) -> Activity | None:
        """The session's activity, or None when unknown; ``timeout`` bounds each network wait."""
        ...


# The probe a profile names -> "module:attribute".
PROBES: dict[str, str] = {
    "jupyter": "ood_k8s.agent.activity:JUPYTER",
    "none": "ood_k8s.agent.activity:NONE",
}
_LOADED: dict[str, ActivityProbe] = {}


def probe_for(name: str) -> ActivityProbe | None:
    """The registered probe ``name``; None when no probe has that name."""
    if name not in PROBES:
        return None
    if name not in _LOADED:
        module, _, attr = PROBES[name].partition(":")
        _LOADED[name] = getattr(importlib.import_module(module), attr)
    return _LOADED[name]


def register(name: str, target: str) -> None:
    """Add (or replace) the probe ``name`` (``module:attribute``)."""
    PROBES[name] = target
    _LOADED.pop(name, None)


def check_probe(name: str) -> str | None:
    """The configuration check of ``profiles[].activity_probe``: None, or what was expected."""
    return None if name in PROBES else f"one of {', '.join(sorted(PROBES))}"


def decode_secret(secret: dict[str, Any]) -> dict[str, str]:
    """A Secret's ``data`` as text (values that are not UTF-8 are left out)."""
    out = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value).decode("utf-8")
        except (ValueError, TypeError):
            continue
    return out


# --- what the pod's env says (pure) -----------------------------------------------------------------


def main_container(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The container the app runs in: the one given the app's port, else the first."""
    containers = (pod.get("spec") or {}).get("containers") or []
    for ctr in containers:
        if any(e.get("name") == POD_PORT_ENV for e in ctr.get("env") or []):
            return ctr
    return containers[0] if containers else None


def _field(pod: dict[str, Any], path: str) -> str | None:
    node: Any = pod
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, str) and node else None


def env_value(pod: dict[str, Any], ctr: dict[str, Any], name: str, secrets: Secrets) -> str | None:
    """What ``name`` is in the container's environment (the last definition wins, as in Kubernetes)."""
    found = None
    for e in ctr.get("env") or []:
        if e.get("name") == name:
            found = e
    if found is None:
        return None
    if "value" in found:
        return str(found["value"])
    source = found.get("valueFrom") or {}
    if "fieldRef" in source:
        return _field(pod, str(source["fieldRef"].get("fieldPath", "")))
    ref = source.get("secretKeyRef") or {}
    return (secrets.get(str(ref.get("name"))) or {}).get(str(ref.get("key"))) if ref else None


class Endpoint(NamedTuple):
    host: str
    port: int
    base: str  # the app's URL prefix, "/node/<host>/<port>/"


def jupyter_endpoint(pod: dict[str, Any], secrets: Secrets) -> Endpoint | None:
    """Where the portal reaches the session's JupyterLab (before.sh's rule); None before it has an address,
    or when the env names a host that is not the pod's own (its IP, its node's name or IP)."""
    ctr = main_container(pod)
    if ctr is None:
        return None
    host = env_value(pod, ctr, CONNECT_HOST_ENV, secrets) or env_value(pod, ctr, POD_IP_ENV, secrets)
    port = env_value(pod, ctr, CONNECT_PORT_ENV, secrets) or env_value(pod, ctr, POD_PORT_ENV, secrets)
    # Only the pod's own addresses, as the kubelet and scheduler state them: a pod's env may name any host,
    # and the agent must not be sent (with a password) wherever a pod made by hand points it.
    own = {_field(pod, "status.podIP"), _field(pod, "status.hostIP"), _field(pod, "spec.nodeName")} - {None}
    if host not in own or not port or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return Endpoint(host, int(port), f"/node/{host}/{port}/")


def jupyter_activity(status: dict[str, Any], kernels: list[dict[str, Any]]) -> Activity:
    """Activity from ``api/status`` and ``api/kernels`` (the server's last activity already includes
    its kernels'; theirs are read too, in case a kernel is newer than the server's figure)."""
    stamps = [timestamp(status.get("last_activity"))] + [timestamp(k.get("last_activity")) for k in kernels]
    known = [s for s in stamps if s is not None]
    busy = sum(1 for k in kernels if k.get("execution_state") == "busy")
    count = len(kernels) if kernels else int(status.get("kernels") or 0)
    conns = int(status.get("connections") or 0)
    detail = f"{count} kernel{'s' * (count != 1)} ({busy} busy), {conns} connection{'s' * (conns != 1)}"
    return Activity(max(known) if known else None, busy > 0, detail)


# --- JupyterLab ---------------------------------------------------------------------------------------


class _Refused(Exception):
    """JupyterLab answered 403 (the login cookie is no longer good)."""


class _Answer(NamedTuple):
    status: int
    cookies: list[str]  # its Set-Cookie headers
    body: bytes


def _request(ep: Endpoint, method: str, path: str, timeout: float, headers: dict[str, str],
             body: bytes | None = None) -> _Answer:
    conn = http.client.HTTPConnection(ep.host, ep.port, timeout=timeout)
    try:
        conn.request(method, ep.base + path, body=body, headers={"User-Agent": vocab.AGENT_COMPONENT, **headers})
        resp = conn.getresponse()
        return _Answer(resp.status, resp.headers.get_all("Set-Cookie") or [], resp.read(_MAX_BODY))
    finally:
        conn.close()


def login_cookie(ep: Endpoint, password: str, timeout: float) -> str | None:
    """Log in as the Connect button does; the ``Cookie`` header that carries the login, None if refused."""
    xsrf = token_source.token_hex(16)
    form = urllib.parse.urlencode({"_xsrf": xsrf, "password": password}).encode()
    resp = _request(ep, "POST", "login", timeout, {"Cookie": f"_xsrf={xsrf}",
                                                   "Content-Type": "application/x-www-form-urlencoded"}, form)
    jar: SimpleCookie = SimpleCookie()
    for line in resp.cookies:
        try:
            jar.load(line)
        except CookieError:
            continue
    # A good password redirects with the login cookie; a wrong one shows the form again (200, no cookie).
    pairs = [f"{k}={m.value}" for k, m in jar.items() if k != "_xsrf" and m.value]
    return "; ".join(pairs) if resp.status in (301, 302, 303) and pairs else None


def _get_json(ep: Endpoint, path: str, cookie: str, timeout: float) -> Any:
    resp = _request(ep, "GET", f"{path}?no_track_activity=1", timeout, {"Cookie": cookie,
                                                                       "Accept": "application/json"})
    if resp.status == 403:
        raise _Refused(path)
    if resp.status != 200:
        raise ValueError(f"{path} answered HTTP {resp.status}")
    return json.loads(resp.body)


class JupyterProbe:
    name = "jupyter"
    max_cookies = 4096  # sessions end; a long-lived agent must not keep every cookie it ever had

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, int], str] = {}

    def probe(self, pod: dict[str, Any], secrets: Secrets, timeout: float) -> Activity | None:
        ep = jupyter_endpoint(pod, secrets)
        ctr = main_container(pod)
        password = env_value(pod, ctr, PASSWORD_ENV, secrets) if ctr is not None else None
        if ep is None or not password:
            return None
        key = (str((pod.get("metadata") or {}).get("uid")), ep.host, ep.port)
        where = f"{(pod.get('metadata') or {}).get('namespace')}/{(pod.get('metadata') or {}).get('name')}"
        try:
            return self._ask(key, ep, password, timeout, where)
        except (OSError, http.client.HTTPException, ValueError, TypeError, AttributeError) as err:
            log.debug("activity of %s unknown: %s", where, err)  # never the password: it is in no error
            return None

    def _ask(self, key: tuple[str, str, int], ep: Endpoint, password: str, timeout: float,
             where: str) -> Activity | None:
        for _attempt in range(2):  # a kept cookie may have gone stale (JupyterLab restarted): log in once more
            cookie = self._cookies.get(key)
            if cookie is None:
                cookie = login_cookie(ep, password, timeout)
                if cookie is None:
                    log.debug("activity of %s unknown: JupyterLab refused the session's password", where)
                    return None
                if len(self._cookies) >= self.max_cookies:
                    self._cookies.clear()
                self._cookies[key] = cookie
            try:
                status = _get_json(ep, "api/status", cookie, timeout)
                kernels = _get_json(ep, "api/kernels", cookie, timeout) if status.get("kernels") else []
            except _Refused:
                self._cookies.pop(key, None)
                continue
            return jupyter_activity(status, [k for k in kernels if isinstance(k, dict)])
        return None


class NoProbe:
    """For an app that cannot say: its sessions are never idle by activity (GPU idleness still applies)."""

    name = "none"

    def probe(self, pod: dict[str, Any], secrets: Secrets, timeout: float) -> Activity | None:
        return None


JUPYTER = JupyterProbe()
NONE = NoProbe()


# --- GPUs (Prometheus, NVIDIA DCGM exporter) ---------------------------------------------------------

GPU_METRIC = "DCGM_FI_DEV_GPU_UTIL"
_BY = "namespace, pod, exported_namespace, exported_pod"


def gpu_query(windows: Iterable[int]) -> str:
    """One PromQL expression: each GPU pod's highest utilisation over each window (seconds), the window
    in a ``window`` label; ``or`` joins them (their label sets differ by ``window``)."""
    return " or ".join(f'label_replace(max by ({_BY}) (max_over_time({GPU_METRIC}[{w}s])), '
                       f'"window", "{w}", "", "")' for w in sorted(set(windows)))


def gpu_peaks(result: list[dict[str, Any]]) -> dict[tuple[str, str, int], float]:
    """(namespace, pod, window) -> the highest utilisation (percent) of the pod's GPUs over the window."""
    out: dict[tuple[str, str, int], float] = {}
    for sample in result:
        labels = sample.get("metric") or {}
        namespace = labels.get("exported_namespace") or labels.get("namespace")
        pod = labels.get("exported_pod") or labels.get("pod")
        try:
            key = (str(namespace), str(pod), int(labels["window"]))
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if namespace and pod and value == value:  # NaN (no samples) says nothing
            out[key] = max(value, out.get(key, value))
    return out


def query_prometheus(url: str, query: str, at: float, timeout: float) -> list[dict[str, Any]] | None:
    """An instant query's ``data.result`` at time ``at``; None when Prometheus does not answer it."""
    params = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
    req = urllib.request.Request(f"{url.rstrip('/')}/api/v1/query?{params}",  # noqa: S310 - checked http(s)
                                 headers={"Accept": "application/json", "User-Agent": vocab.AGENT_COMPONENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - config checks it is http(s)
            data = json.loads(resp.read(_MAX_BODY * 16))
    except (OSError, http.client.HTTPException, ValueError) as err:
        log.warning("GPU idleness unknown this pass: Prometheus at %s: %s", url, err)
        return None
    body = data.get("data") if isinstance(data, dict) and data.get("status") == "success" else None
    if not isinstance(body, dict) or body.get("resultType") != "vector":
        log.warning("GPU idleness unknown this pass: Prometheus at %s answered no vector", url)
        return None
    return list(body.get("result") or [])

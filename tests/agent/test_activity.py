"""Activity probes and GPU idleness, against a fake JupyterLab and a fake Prometheus on localhost.

The fake JupyterLab behaves as the session's does under ``apps/jupyter/template/jupyter_config.py``:
password login only (no token), the form's ``_xsrf`` must equal the ``_xsrf`` cookie, the login cookie
is scoped to the base URL, and every API call without it is refused with 403.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ood_k8s.agent import activity
from ood_k8s.agent.activity import Activity, Endpoint
from ood_k8s.core.timefmt import rfc3339
from tests.agent.conftest import World
from tests.conftest import ALICE

T0 = 1_800_000_000.0  # the fake's clock: JupyterLab's last activity is stated relative to it
PASSWORD = "s3cret-pw"


class FakeJupyter:
    """JupyterLab's login and the two API calls the probe makes, with a log of what was asked."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.password = password
        self.status: dict[str, Any] = {"started": rfc3339(T0 - 7200), "last_activity": rfc3339(T0),
                                       "kernels": 0, "connections": 0}
        self.kernels: list[dict[str, Any]] = []
        self.logins = 0
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # (method, path, query)
        self.cookies: set[str] = set()  # login cookies given
        self.hang = threading.Event()  # set: accept, then answer nothing until released
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _jupyter_handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"/node/127.0.0.1/{self.port}/"
        self.cookie_name = f"username-127-0-0-1-{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> FakeJupyter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def idle_since(self, when: float) -> None:
        self.status["last_activity"] = rfc3339(when)

    def paths(self) -> list[str]:
        return [f"{m} {p[len(self.base):]}" for m, p, _ in self.requests]


def _jupyter_handler(fake: FakeJupyter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _cookies(self) -> dict[str, str]:
            jar: SimpleCookie = SimpleCookie(self.headers.get("Cookie", ""))
            return {k: m.value for k, m in jar.items()}

        def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _hang(self) -> bool:
            if fake.hang.is_set():
                fake.release.wait(5)
                return True
            return False

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            fake.requests.append(("POST", url.path, urllib.parse.parse_qs(url.query)))
            if self._hang():
                return
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            if url.path != fake.base + "login":
                return self._send(404, {"message": "Not Found"})
            xsrf = form.get("_xsrf", [""])[0]
            if not xsrf or xsrf != self._cookies().get("_xsrf"):
                return self._send(403, {"message": "'_xsrf' argument missing from POST"})
            if form.get("password", [""])[0] != fake.password:
                return self._send(200, {"page": "login", "message": "Invalid credentials"})
            fake.logins += 1
            value = secrets.token_hex(8)
            fake.cookies.add(value)
            self.send_response(302)
            self.send_header("Location", fake.base + "lab")
            self.send_header("Set-Cookie", f"_xsrf=2|abc|def|1; Path={fake.base}")
            self.send_header("Set-Cookie", f"{fake.cookie_name}={value}; HttpOnly; Path={fake.base}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            fake.requests.append(("GET", url.path, urllib.parse.parse_qs(url.query)))
            if self._hang():
                return
            answers = {fake.base + "api/status": fake.status, fake.base + "api/kernels": fake.kernels}
            if url.path not in answers:
                return self._send(404, {"message": "Not Found"})
            if self._cookies().get(fake.cookie_name) not in fake.cookies:
                return self._send(403, {"message": "Forbidden"})
            self._send(200, answers[url.path])

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class FakePrometheus:
    """``/api/v1/query`` answering with a vector in Prometheus' own shape (or an error, when told)."""

    def __init__(self) -> None:
        self.result: list[dict[str, Any]] = []
        self.queries: list[dict[str, list[str]]] = []
        self.fail: tuple[int, dict[str, Any]] | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/api/v1/query":
                    self.send_error(404)
                    return
                fake.queries.append(urllib.parse.parse_qs(url.query))
                code, body = fake.fail or (200, {"status": "success",
                                                 "data": {"resultType": "vector", "result": fake.result}})
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def utilisation(self, namespace: str, pod: str, by_window: dict[int, float], exported: bool = True) -> None:
        """A series per window, labelled as dcgm-exporter's metrics reach Prometheus (honorLabels off:
        ``exported_*``, the target's own ``namespace``/``pod`` being the exporter's)."""
        for window, value in by_window.items():
            labels = {"exported_namespace": namespace, "exported_pod": pod, "namespace": "gpu-operator",
                      "pod": "nvidia-dcgm-exporter-x1"} if exported else {"namespace": namespace, "pod": pod}
            self.result.append({"metric": {**labels, "window": str(window)}, "value": [T0, f"{value:g}"]})


@pytest.fixture
def jupyter() -> Iterator[FakeJupyter]:
    fake = FakeJupyter().start()
    yield fake
    fake.stop()


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    yield fake
    fake.stop()


def session_pod(port: int, host: str = "127.0.0.1", uid: str = "u-1") -> dict[str, Any]:
    """A session pod's parts the probe reads, as sessions/objects.py writes them."""
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
           {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "job-1-secret", "key": "password"}}},
           {"name": "POD_PORT", "value": str(port)}]
    return {"metadata": {"name": "job-1", "namespace": "ood-alice", "uid": uid},
            "spec": {"containers": [{"name": "app", "env": env}]},
            "status": {"phase": "Running", "podIP": host}}


OWN = {"job-1-secret": {"password": PASSWORD}}


# --- where the session is (pure) ---------------------------------------------------------------------


def test_endpoint_and_password_of_a_pod_the_adapter_made(world: World) -> None:
    job = world.submit(ALICE, native={"container": {"port": 8888}})
    world.ready(ALICE, job)
    pod = world.client.get("Pod", job, "ood-alice")
    secret = world.client.get("Secret", f"{job}-secret", "ood-alice")
    own = {secret["metadata"]["name"]: activity.decode_secret(secret)}
    assert activity.jupyter_endpoint(pod, own) == Endpoint("10.0.7.9", 8888, "/node/10.0.7.9/8888/")
    ctr = activity.main_container(pod)
    assert ctr is not None and ctr["name"] == "app"
    assert activity.env_value(pod, ctr, "PASSWORD", own) == base64.b64decode(secret["data"]["password"]).decode()


def test_endpoint_with_connection_nodeport_is_the_node_and_its_node_port() -> None:
    pod = session_pod(8888)
    pod["spec"]["nodeName"] = "ip-10-0-1-5"
    pod["spec"]["containers"][0]["env"] += [
        {"name": "OOD_K8S_CONNECT_HOST", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "OOD_K8S_CONNECT_PORT", "valueFrom": {"secretKeyRef": {"name": "job-1-secret", "key": "port"}}}]
    own = {"job-1-secret": {"password": PASSWORD, "port": "31234"}}
    assert activity.jupyter_endpoint(pod, own) == Endpoint("ip-10-0-1-5", 31234, "/node/ip-10-0-1-5/31234/")


def test_no_endpoint_elsewhere_than_the_pod_itself() -> None:
    pod = session_pod(8888)
    pod["spec"]["containers"][0]["env"].append({"name": "OOD_K8S_CONNECT_HOST", "value": "169.254.169.254"})
    assert activity.jupyter_endpoint(pod, OWN) is None  # a pod made by hand cannot send the agent elsewhere
    pod["spec"]["containers"][0]["env"][-1]["value"] = "127.0.0.1"  # its own IP, however it says so
    assert activity.jupyter_endpoint(pod, OWN) == Endpoint("127.0.0.1", 8888, "/node/127.0.0.1/8888/")


def test_no_endpoint_before_the_pod_has_an_address() -> None:
    pod = session_pod(8888)
    del pod["status"]["podIP"]
    assert activity.jupyter_endpoint(pod, OWN) is None
    assert activity.jupyter_endpoint({"spec": {"containers": []}}, OWN) is None


def test_jupyter_activity_takes_the_latest_time_and_a_busy_kernel() -> None:
    status = {"last_activity": "2027-01-01T10:00:00.500000Z", "kernels": 2, "connections": 1}
    kernels = [{"execution_state": "idle", "last_activity": "2027-01-01T09:00:00Z"},
               {"execution_state": "busy", "last_activity": "2027-01-01T10:05:00.000000Z"}]
    got = activity.jupyter_activity(status, kernels)
    assert got == Activity(1798797900.0, True, "2 kernels (1 busy), 1 connection")  # 2027-01-01T10:05:00Z
    assert activity.jupyter_activity({"kernels": 0}, []) == Activity(None, False, "0 kernels (0 busy), 0 connections")


# --- the jupyter probe against the fake JupyterLab ---------------------------------------------------


def test_the_fake_refuses_the_api_without_a_login(jupyter: FakeJupyter) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", jupyter.port, timeout=2)
    conn.request("GET", jupyter.base + "api/status")
    assert conn.getresponse().status == 403
    conn.close()


def test_probe_logs_in_once_and_reads_status_without_counting_as_activity(jupyter: FakeJupyter) -> None:
    probe = activity.JupyterProbe()
    pod = session_pod(jupyter.port)
    assert probe.probe(pod, OWN, 2.0) == Activity(T0, False, "0 kernels (0 busy), 0 connections")
    assert probe.probe(pod, OWN, 2.0) == Activity(T0, False, "0 kernels (0 busy), 0 connections")
    assert jupyter.logins == 1
    assert jupyter.paths() == ["POST login", "GET api/status", "GET api/status"]
    assert all(q == {"no_track_activity": ["1"]} for m, _, q in jupyter.requests if m == "GET")


def test_probe_reads_kernels_when_there_are_some(jupyter: FakeJupyter) -> None:
    jupyter.status.update(kernels=1, connections=2)
    jupyter.kernels.append({"id": "k1", "name": "python3", "execution_state": "busy",
                            "last_activity": rfc3339(T0 - 3600), "connections": 2})
    got = activity.JupyterProbe().probe(session_pod(jupyter.port), OWN, 2.0)
    assert got == Activity(T0, True, "1 kernel (1 busy), 2 connections")
    assert jupyter.paths() == ["POST login", "GET api/status", "GET api/kernels"]


def test_probe_logs_in_again_when_its_cookie_goes_stale(jupyter: FakeJupyter) -> None:
    probe = activity.JupyterProbe()
    pod = session_pod(jupyter.port)
    probe.probe(pod, OWN, 2.0)
    jupyter.cookies.clear()  # JupyterLab restarted: a new cookie secret
    assert probe.probe(pod, OWN, 2.0) == Activity(T0, False, "0 kernels (0 busy), 0 connections")
    assert jupyter.logins == 2


def test_a_wrong_or_missing_password_is_unknown(jupyter: FakeJupyter) -> None:
    probe = activity.JupyterProbe()
    pod = session_pod(jupyter.port)
    assert probe.probe(pod, {"job-1-secret": {"password": "wrong"}}, 2.0) is None
    assert jupyter.paths() == ["POST login"]
    assert probe.probe(pod, {}, 2.0) is None
    assert jupyter.paths() == ["POST login"]  # no credential: nothing asked


def test_a_session_that_does_not_answer_is_unknown_within_the_timeout(jupyter: FakeJupyter) -> None:
    probe = activity.JupyterProbe()
    jupyter.hang.set()
    started = time.monotonic()
    assert probe.probe(session_pod(jupyter.port), OWN, 0.2) is None
    assert time.monotonic() - started < 2
    jupyter.release.set()
    closed = FakeJupyter()
    closed.server.server_close()  # nothing listens on its port
    assert probe.probe(session_pod(closed.port), OWN, 0.2) is None


def test_probe_registry() -> None:
    for name in activity.PROBES:
        probe = activity.probe_for(name)
        assert probe is not None and probe.name == name
    assert activity.probe_for("rstudio") is None
    assert activity.check_probe("jupyter") is None
    assert activity.check_probe("rstudio") == "one of jupyter, none"
    assert activity.NONE.probe(session_pod(1), OWN, 1.0) is None


def test_config_checks_the_idle_settings(tmp_path: Any) -> None:
    from ood_k8s import config
    from ood_k8s.core.errors import ConfigError

    path = tmp_path / "site.yml"
    path.write_text("profiles: [{name: cpu, image: x, idle_timeout: 3600, activity_probe: jupyterlab}]\n"
                    "agent: {gpu_idle_threshold: 150, prometheus_url: 'ftp://x', idle_warning: -1}\n")
    with pytest.raises(ConfigError) as err:
        config.load(str(path), read_only=True)
    assert err.value.problems == ["profiles[0].activity_probe: got 'jupyterlab', expected one of jupyter, none",
                                  "agent.gpu_idle_threshold: got 150, expected a percentage from 0 to 100",
                                  "agent.prometheus_url: got 'ftp://x', expected an http(s) URL",
                                  "agent.idle_warning: got -1, expected a number >= 0"]
    path.write_text("profiles: [{name: cpu, image: x, idle_timeout: 3600, gpu_idle_timeout: 1800, "
                    "activity_probe: none}]\nagent: {prometheus_url: 'http://prometheus:9090'}\n")
    cfg = config.load(str(path), read_only=True)
    assert (cfg.profiles[0].idle_timeout, cfg.profiles[0].gpu_idle_timeout, cfg.profiles[0].activity_probe) == \
        (3600, 1800, "none")
    assert (cfg.agent.idle_warning, cfg.agent.gpu_idle_threshold) == (600, 5.0)


# --- GPUs ----------------------------------------------------------------------------------------------


def test_gpu_query_is_one_expression_for_every_window() -> None:
    by = "namespace, pod, exported_namespace, exported_pod"
    assert activity.gpu_query([1800, 1200, 1800]) == (
        f'label_replace(max by ({by}) (max_over_time(DCGM_FI_DEV_GPU_UTIL[1200s])), "window", "1200", "", "")'
        f' or label_replace(max by ({by}) (max_over_time(DCGM_FI_DEV_GPU_UTIL[1800s])), "window", "1800", "", "")')


def test_gpu_peaks_reads_both_label_schemes() -> None:
    result = [
        {"metric": {"exported_namespace": "ood-alice", "exported_pod": "a", "namespace": "gpu-operator",
                    "pod": "dcgm-1", "window": "1800"}, "value": [T0, "3"]},
        {"metric": {"namespace": "ood-bob", "pod": "b", "window": "1800"}, "value": [T0, "42.5"]},
        {"metric": {"namespace": "ood-bob", "pod": "b", "window": "1800"}, "value": [T0, "7"]},  # a second GPU
        {"metric": {"namespace": "ood-bob", "pod": "c", "window": "1800"}, "value": [T0, "NaN"]},
        {"metric": {"namespace": "ood-bob", "window": "1800"}, "value": [T0, "1"]},  # a GPU nobody holds
        {"metric": {"namespace": "ood-bob", "pod": "d"}, "value": [T0, "1"]},  # not ours: no window
    ]
    assert activity.gpu_peaks(result) == {("ood-alice", "a", 1800): 3.0, ("ood-bob", "b", 1800): 42.5}


def test_query_prometheus_sends_the_query_at_the_pass_time(prometheus: FakePrometheus) -> None:
    prometheus.utilisation("ood-alice", "a", {1800: 2})
    got = activity.query_prometheus(prometheus.url + "/", "up", T0, 2.0)
    assert got == prometheus.result
    assert prometheus.queries == [{"query": ["up"], "time": [f"{T0:.3f}"]}]


@pytest.mark.parametrize("fail", [(500, {"status": "error", "error": "boom"}),
                                  (200, {"status": "success", "data": {"resultType": "matrix", "result": []}})])
def test_prometheus_errors_are_unknown(prometheus: FakePrometheus, fail: tuple[int, dict[str, Any]]) -> None:
    prometheus.fail = fail
    assert activity.query_prometheus(prometheus.url, "up", T0, 2.0) is None


def test_prometheus_down_is_unknown() -> None:
    down = FakePrometheus()
    down.stop()
    assert activity.query_prometheus(down.url, "up", T0, 0.5) is None


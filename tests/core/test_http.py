"""ood_k8s.core.http: the HTTP/1.1 transport (through KubeClient) against a scripted server, and URLs.

The fake API (tests/core/test_kube.py) answers with Content-Length on one kept-alive connection; real
API servers and the proxies in front of them also send chunked and close-delimited bodies, 100
Continue, folded or repeated headers.  Each test scripts the raw bytes of the answers and checks
what the client decoded, what it sent and how many connections it opened.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ood_k8s.core import errors, http
from ood_k8s.core.kube import KubeClient

POD = b'{"kind": "Pod", "metadata": {"name": "p"}}'


class Scripted:
    """A loopback server: the n-th request on any connection gets the n-th scripted answer.

    An answer of None closes the connection instead of answering.  ``close_after`` closes a
    connection after that answer.  Records the raw requests and the number of connections.
    """

    def __init__(self, answers: list[bytes | None], close_after: set[int] | None = None) -> None:
        self.answers = list(answers)
        self.close_after = close_after or set()
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            reader = conn.makefile("rb")
            try:
                while True:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    self.requests.append(head + reader.read(length))
                    n = len(self.requests) - 1
                    answer = self.answers[n] if n < len(self.answers) else None
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if n in self.close_after:
                        break
            finally:
                reader.close()  # the socket stays open while its file object is
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # the client went first
                conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Scripted]:
    s = Scripted(*request.param)
    yield s
    s.close()


def client(url: str, **kw: object) -> KubeClient:
    return KubeClient(url, token="tok", sleep=lambda s: None, timeout=5.0, **kw)  # type: ignore[arg-type]


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + \
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def chunked(body: bytes, size: int = 7) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
    return out + b"0\r\nX-Trailer: t\r\n\r\n"


@pytest.mark.parametrize("server", [([ok(POD), chunked(POD), ok(POD)],)], indirect=True)
def test_one_connection_for_many_requests_and_chunked_bodies(server: Scripted) -> None:
    c = client(server.url)
    assert [c.get("Pod", "p", "ns")["metadata"]["name"] for _ in range(3)] == ["p", "p", "p"]
    assert server.connections == 1 and c.round_trips == 3
    first = server.requests[0].decode()
    assert first.startswith("GET /api/v1/namespaces/ns/pods/p HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.url.rsplit(':', 1)[1]}\r\n" in first
    assert "Authorization: Bearer tok\r\n" in first and "Content-Length" not in first


@pytest.mark.parametrize("server", [([b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + POD, ok(POD)],
                                     {0})], indirect=True)
def test_close_delimited_body_then_a_new_connection(server: Scripted) -> None:
    c = client(server.url)
    assert c.get("Pod", "p", "ns")["kind"] == "Pod"
    assert c.get("Pod", "p", "ns")["kind"] == "Pod"
    assert server.connections == 2


@pytest.mark.parametrize("server", [([b"HTTP/1.1 100 Continue\r\n\r\n" + ok(POD, b"X-A: 1\r\n X-folded\r\n"
                                                                           b"Warning: a\r\nWarning: b\r\n")],)],
                         indirect=True)
def test_interim_answer_folded_and_repeated_headers(server: Scripted) -> None:
    c = client(server.url)
    status, headers, data = c._connection().request("GET", "/api/v1/pods", None, {})
    assert (status, data) == (200, POD)
    assert headers["x-a"] == "1 X-folded" and headers["warning"] == "a, b"


@pytest.mark.parametrize("server", [([ok(b'{"kind": "Pod"}'), ok(b"{}")],)], indirect=True)
def test_bodies_carry_content_length(server: Scripted) -> None:
    c = client(server.url)
    c.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}})
    c.request("POST", "/api/v1/namespaces/ns/pods")  # a POST without a body still says so
    sent = server.requests[0].decode()
    body = sent.split("\r\n\r\n", 1)[1]
    assert f"Content-Length: {len(body)}\r\n" in sent and body.startswith('{"apiVersion"')
    assert "Content-Length: 0\r\n" in server.requests[1].decode()


@pytest.mark.parametrize("server", [([None, ok(POD)],)], indirect=True)
def test_a_dropped_connection_is_retried_on_a_new_one(server: Scripted) -> None:
    c = client(server.url)
    assert c.get("Pod", "p", "ns")["kind"] == "Pod"
    assert server.connections == 2 and c.round_trips == 2


@pytest.mark.parametrize("server", [([None, ok(POD)],)], indirect=True)
def test_a_post_dropped_unanswered_is_not_retried(server: Scripted) -> None:
    c = client(server.url)
    with pytest.raises(errors.Unavailable, match=r"cannot reach the Kubernetes API .* without answering"):
        c.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}})
    assert len(server.requests) == 1


@pytest.mark.parametrize("server", [([b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}"] * 5, {0, 1, 2, 3, 4})],
                         indirect=True)
def test_a_truncated_body_is_an_error_not_data(server: Scripted) -> None:
    c = client(server.url, retries=1)
    with pytest.raises(errors.Unavailable, match="2 bytes into a 99-byte body"):
        c.get("Pod", "p", "ns")
    assert c.round_trips == 2  # one retry, as for any dropped read


@pytest.mark.parametrize("server", [([b"SSH-2.0-OpenSSH_9.6\r\n"] * 5, set(range(5)))], indirect=True)
def test_not_http_is_one_line(server: Scripted) -> None:
    c = client(server.url, retries=0)
    with pytest.raises(errors.Unavailable) as info:
        c.get("Pod", "p", "ns")
    assert "not an HTTP/1.x response" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("server", [([b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n"] * 5, set(range(5)))],
                         indirect=True)
def test_too_many_headers_are_refused(server: Scripted) -> None:
    with pytest.raises(errors.Unavailable, match="more than 100 response headers"):
        client(server.url, retries=0).get("Pod", "p", "ns")


@pytest.mark.parametrize("server", [([ok(POD)],)], indirect=True)
@pytest.mark.parametrize("token", ["tok\r\nX-Injected: 1", "tok\nGET / HTTP/1.1", "tok\x00", "tok\x7f"])
def test_control_characters_never_reach_the_wire(server: Scripted, token: str) -> None:
    c = KubeClient(server.url, token=token, sleep=lambda s: None)
    with pytest.raises(ValueError, match="control characters"):
        c.get("Pod", "p", "ns")
    assert server.requests == []


def test_host_header_brackets_ipv6_and_omits_the_default_port() -> None:

    assert http.Connection("::1", 6443, None, 1.0).host_header == "[::1]:6443"
    assert http.Connection("api.example.edu", 80, None, 1.0).host_header == "api.example.edu"


@pytest.mark.parametrize("server", [([b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}"] * 5, set(range(5)))],
                         indirect=True)
def test_a_negative_length_is_refused(server: Scripted) -> None:
    with pytest.raises(errors.Unavailable, match="bad Content-Length"):
        client(server.url, retries=0).get("Pod", "p", "ns")


BAD_CHUNK = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n{}\r\n0\r\n\r\n"


@pytest.mark.parametrize("server", [([BAD_CHUNK] * 5, set(range(5)))], indirect=True)
def test_a_bad_chunk_size_is_refused(server: Scripted) -> None:
    with pytest.raises(errors.Unavailable, match="bad chunk size"):
        client(server.url, retries=0).get("Pod", "p", "ns")


# --- URLs without urllib.parse (kept off the poll path) ------------------------------------------


@pytest.mark.parametrize("url", [
    "https://10.0.0.1:6443", "https://API.Example.EDU", "http://127.0.0.1:8080/", "https://[fd00::1]:6443",
    "https://[FD00::1]", "https://proxy.example.edu/k8s/", "https://h:443/a/b", "HTTPS://h:1", "https://h:",
])
def test_server_addresses_read_as_urlsplit_reads_them(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    https = parts.scheme == "https"
    assert http.server_address(url) == (https, parts.hostname, parts.port or (443 if https else 80),
                                        parts.path.rstrip("/"))


@pytest.mark.parametrize("url", [
    "", "10.0.0.1:6443", "ftp://h", "https://", "https://:6443", "https://u:p@h", "https://h?x=1", "https://h#f",
    "https://h:0", "https://h:65536", "https://h:6443x", "https://h:+1", "https://h:１２", "https://[::1",
    "https://[::1]x", "https://[h]:1", "https://h:1:2", "https://h o", "https://h\\@evil",
])
def test_other_server_urls_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(errors.Unavailable, match="invalid API server URL"):
        KubeClient(url)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), st.text(), max_size=4))
def test_queries_are_encoded_as_urlencode_with_quote_encodes_them(params: dict[str, str]) -> None:
    from urllib.parse import quote, urlencode

    assert http.query_string(params) == urlencode(params, quote_via=quote)
    for value in params.values():
        assert http.percent(value) == quote(value, safe="")

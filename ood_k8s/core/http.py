"""HTTP/1.1 as the Kubernetes API server speaks it to a client, on ``socket`` and ``ssl``.

Not ``http.client``: it imports the ``email`` package (~15 ms), and OOD starts a process for every
status poll.  Not ``urllib.parse`` either (~4 ms with ``ipaddress``): an API server URL and a
request target need only :func:`server_address` and :func:`percent`.  The features are frozen at
what the API server and its proxies send -- Content-Length, chunked and close-delimited bodies,
keep-alive, ``100 Continue`` -- and everything else is a :class:`ProtocolError`.

What sits between client and server is honoured as kubectl honours it: an ``http://`` proxy (the
kubeconfig's ``proxy-url``, else ``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` matches) is
asked to ``CONNECT``, and a ``tls-server-name`` replaces the host name for SNI and the certificate
check.  Anything we cannot honour is refused in one line (:class:`Unavailable`), never ignored.
"""

import os
import socket
import ssl
from typing import Any, Optional, Union

from ood_k8s.core.errors import Unavailable

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_MAX_LINE = 65536
_MAX_HEADERS = 100


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.1 as we speak it (an OSError: retried like a dropped connection)."""


class Disconnected(ProtocolError, ConnectionResetError):
    """The server closed the connection before answering (e.g. an idle keep-alive connection)."""


class ProxyRefused(ProtocolError):
    """The proxy would not open a tunnel to the API server."""


class Connection:
    """One HTTP/1.1 keep-alive connection: requests with Content-Length bodies, responses with
    Content-Length, chunked or close-delimited bodies -- all the API server and its proxies send.
    ``proxy``: ``(host, port)`` of an HTTP proxy to tunnel through; ``server_name``: the name TLS
    checks instead of ``host`` (kubeconfig ``tls-server-name``)."""

    def __init__(self, host: str, port: int, context: Optional[ssl.SSLContext], timeout: float,
                 server_name: Optional[str] = None, proxy: Optional[tuple[str, int]] = None) -> None:
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self.server_name, self.proxy = server_name, proxy
        default = 443 if context is not None else 80
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if port == default else f"{shown}:{port}"
        self.sock: Optional[socket.socket] = None
        self.reader: Any = None

    def _connect(self) -> None:
        # An ASCII host goes as bytes: as a str, the resolver and ssl would import the idna codec
        # (and unicodedata) to encode it, ~2 ms of every poll.
        name: Union[str, bytes] = self.host.encode("ascii") if self.host.isascii() else self.host
        first = (self.proxy[0].encode("ascii") if self.proxy[0].isascii() else self.proxy[0],
                 self.proxy[1]) if self.proxy else (name, self.port)
        sock = socket.create_connection(first, self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.proxy:
                _tunnel(sock, (f"[{self.host}]" if ":" in self.host else self.host) + f":{self.port}")
            if self.context is not None:
                # server_hostname: SNI, and the certificate is checked against the host name or IP.
                sni = self.server_name.encode("ascii") if self.server_name and self.server_name.isascii() \
                    else (self.server_name or name)
                sock = self.context.wrap_socket(sock, server_hostname=sni)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        sock, reader, self.sock, self.reader = self.sock, self.reader, None, None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()

    def request(self, method: str, target: str, body: Optional[bytes],
                headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Send one request, read its response; the connection stays open unless the server ends it."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if body is not None or method in _BODY_METHODS:
            lines.append(f"Content-Length: {len(body or b'')}")
        if not all(line.isprintable() for line in lines):
            # A token or path with a line break would smuggle headers or requests.
            raise ValueError("refusing to send a request line or header with control characters")
        head = "\r\n".join(lines)
        if self.sock is None:
            self._connect()
        assert self.sock is not None
        self.sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + (body or b""))
        return self._response(method)

    def _line(self) -> bytes:
        line = self.reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise ProtocolError("response line too long")
        return line

    def _response(self, method: str) -> tuple[int, dict[str, str], bytes]:
        while True:
            line = self._line()
            if not line:
                raise Disconnected("the server closed the connection without answering")
            version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise ProtocolError(f"not an HTTP/1.x response: {line[:40]!r}")
            status = int(code)
            headers = self._headers()
            if status != 100:  # 100 Continue precedes the real answer
                break
        keep = version != "HTTP/1.0" or headers.get("connection", "").lower() == "keep-alive"
        if headers.get("connection", "").lower() == "close":
            keep = False
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            data = self._chunked()
        elif "content-length" in headers:
            length = int(headers["content-length"]) if headers["content-length"].isdigit() else -1
            if length < 0:
                raise ProtocolError("bad Content-Length")
            data = self._exactly(length)
        else:
            data = self.reader.read()  # the body ends with the connection
            keep = False
        if not keep:
            self.close()
        return status, headers, data

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        last = ""
        for _ in range(_MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            text = line.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and last:  # obsolete line folding
                headers[last] += " " + text.strip()
                continue
            name, colon, value = text.partition(":")
            if not colon:
                raise ProtocolError("malformed response header")
            last = name.strip().lower()
            value = value.strip()
            headers[last] = f"{headers[last]}, {value}" if last in headers else value
        raise ProtocolError(f"more than {_MAX_HEADERS} response headers")

    def _exactly(self, n: int) -> bytes:
        data = self.reader.read(n) if n else b""
        if len(data) != n:
            raise Disconnected(f"the server closed the connection {len(data)} bytes into a {n}-byte body")
        return data

    def _chunked(self) -> bytes:
        parts = []
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                raise ProtocolError("bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                self._headers()  # trailer fields: nothing we use
                return b"".join(parts)
            parts.append(self._exactly(size))
            self._exactly(2)  # CRLF after the chunk


def _tunnel(sock: socket.socket, authority: str) -> None:
    """Ask the HTTP proxy at the other end of ``sock`` for a tunnel to ``authority`` (host:port)."""
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head:  # byte by byte: nothing past the proxy's answer may be consumed
        byte = sock.recv(1)
        if not byte or len(head) > _MAX_LINE:
            raise ProxyRefused("the proxy closed the connection instead of opening a tunnel")
        head += byte
    status = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        raise ProxyRefused(f"the proxy refused the tunnel to {authority}: {' '.join(status[1:])[:80]}")


def proxy_for(https: bool, host: str, explicit: str = "",
              env: Optional[dict[str, str]] = None) -> Optional[tuple[str, int]]:
    """``(host, port)`` of the proxy to reach ``host`` through, as kubectl chooses it: ``explicit``
    (kubeconfig ``proxy-url``), else ``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` matches.
    Raises :class:`Unavailable` for a proxy we cannot speak to (HTTPS or SOCKS proxies)."""
    environ = os.environ if env is None else env
    where = "the kubeconfig's proxy-url"
    url = explicit
    if not url:
        names = ("HTTPS_PROXY", "https_proxy") if https else ("HTTP_PROXY", "http_proxy")
        where, url = next(((n, environ[n]) for n in names if environ.get(n)), ("", ""))
        if not url or _no_proxy(host, environ.get("NO_PROXY") or environ.get("no_proxy") or ""):
            return None
    if "://" not in url:
        url = "http://" + url
    scheme = url.partition("://")[0].lower()
    if scheme != "http":
        raise Unavailable(f"{where} is {scheme}://, which ood-k8s cannot tunnel through",
                          "use an http:// proxy, or add the API server to NO_PROXY")
    try:
        _, phost, pport, _ = server_address(url.rstrip("/"))
    except Unavailable:
        raise Unavailable(f"{where} {url!r} is not a proxy URL", "use http://HOST:PORT") from None
    return phost, pport


def _no_proxy(host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts ``host``: ``*``, a domain (and its subdomains), an IP or a CIDR."""
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        if not name:
            continue
        if name == "*" or host == name.lstrip(".") or host.endswith("." + name.lstrip(".")):
            return True
        if "/" in name:
            import ipaddress  # deferred: only with a CIDR entry and a proxy set

            try:
                if ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                continue
    return False


# URLs are built and parsed here rather than with urllib.parse, whose import (with ipaddress) is
# ~4 ms of every OOD status poll; what an API server URL and a request target need is this small.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def percent(value: str) -> str:
    """RFC 3986 percent-encoding of all but unreserved characters (``quote(value, safe="")``)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in value.encode())


def query_string(params: dict[str, Any]) -> str:
    return "&".join(f"{percent(str(k))}={percent(str(v))}" for k, v in params.items())


def server_address(server: str) -> tuple[bool, str, int, str]:
    """``(https, host, port, base path)`` of an API server URL such as ``https://10.0.0.1:6443``,
    ``https://[fd00::1]`` or ``https://proxy.example.edu/k8s``; raises :class:`Unavailable` for
    anything else (another scheme, user info, a query, a bad port)."""
    scheme, sep, rest = server.partition("://")
    authority, _, path = rest.partition("/")
    if authority.startswith("["):  # an IPv6 literal: [addr] or [addr]:port
        host, bracket, port = authority[1:].partition("]")
        ok = bool(bracket) and ":" in host and port[:1] in ("", ":")
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
        ok = ":" not in port
    https = scheme.lower() == "https"
    ok = ok and bool(sep) and scheme.lower() in ("https", "http") and bool(host) and \
        not any(c in server for c in "@?#\\ \t\r\n") and \
        (port == "" or (port.isascii() and port.isdigit() and 0 < int(port) < 65536))
    if not ok:
        raise Unavailable(f"invalid API server URL {server!r}", "set cluster.server to https://HOST:PORT")
    return https, host.lower(), int(port) if port else (443 if https else 80), ("/" + path).rstrip("/")


def is_tls_failure(exc: BaseException) -> bool:
    """A failure that retrying cannot mend: the certificate, or no TLS at all on the other end."""
    return isinstance(exc, ssl.SSLError) and not isinstance(exc, (ssl.SSLZeroReturnError, ssl.SSLEOFError))


def describe_oserror(exc: BaseException, ca_setting: str = "cluster.certificate_authority") -> tuple[str, str]:
    """What went wrong, one line without class names, and what to do (empty: the caller's default)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = " ".join(str(exc.verify_message or "not trusted").split())
        return (f"TLS certificate not trusted ({why})",
                f"set {ca_setting} to the PEM file of the CA that signed the API server's certificate")
    if isinstance(exc, ssl.SSLError):
        reason = str(getattr(exc, "reason", "") or "")
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "HTTP_REQUEST"):
            return ("the server does not speak TLS on that port (plain HTTP on an https:// URL?)",
                    "check the scheme and port of the API server URL")
        return (f"the TLS handshake failed ({reason.lower().replace('_', ' ') or 'no reason given'})",
                f"check the API server URL and {ca_setting}")
    if isinstance(exc, ProxyRefused):
        return str(exc), "check the proxy (proxy-url, HTTPS_PROXY) or add the API server to NO_PROXY"
    return _describe_plain(exc), ""


def _describe_plain(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())

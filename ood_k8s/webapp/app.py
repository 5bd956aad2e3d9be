"""The sessions app as a WSGI application, run by OOD's per-user Passenger as the user.

Who asks is this process's owner, and nobody else: OOD starts one web server per user (the PUN),
running as that user, and its reverse proxy sends each user to their own.  So the user is
``getuid()`` (through NSS), never a name from the URL or a header; a ``REMOTE_USER`` (or
``X-Forwarded-User``) the proxy passes must name that same user, or the request is refused -- a
page of one user's sessions is never shown to another.  Every datum is read with this user's own
identity: the agent's socket (the kernel names the caller) or the API with the user's credentials.

Responses: HTML pages, one CSV; every failure a page with one line (never a traceback; the traceback
goes to the server's log).  A POST carries a CSRF token (double-submit: a ``SameSite=Strict``
cookie and a hidden field, compared in constant time).
"""

from __future__ import annotations

import hmac
import secrets
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.cookies import SimpleCookie
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from ood_k8s import config as config_mod
from ood_k8s.config import Config
from ood_k8s.core import identity
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.webapp import views
from ood_k8s.webapp.pages import Pages

CSRF_COOKIE = "ood_k8s_sessions_csrf"
MAX_FORM = 4096
SECURITY_HEADERS = [
    # Everything is inline (portals are often offline from the internet): no script, no remote asset.
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]


class Request(NamedTuple):
    method: str
    path: str                 # PATH_INFO: below the app's mount point
    base: str                 # SCRIPT_NAME: where OOD mounts the app (/pun/sys/sessions)
    query: dict[str, str]
    form: dict[str, str]
    cookies: dict[str, str]
    https: bool


class Response(NamedTuple):
    status: int
    body: bytes
    headers: list[tuple[str, str]]


def _first(values: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in values.items() if v}


def parse(environ: dict[str, Any]) -> Request:
    method = str(environ.get("REQUEST_METHOD") or "GET").upper()
    form: dict[str, str] = {}
    if method == "POST":
        try:
            size = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_FORM)
        except ValueError:
            size = 0
        raw = environ["wsgi.input"].read(size) if size > 0 else b""
        form = _first(parse_qs(raw.decode("utf-8", "replace")))
    cookies = {k: m.value for k, m in SimpleCookie(str(environ.get("HTTP_COOKIE") or "")).items()}
    https = environ.get("wsgi.url_scheme") == "https" or environ.get("HTTP_X_FORWARDED_PROTO") == "https"
    return Request(method, str(environ.get("PATH_INFO") or "/") or "/", str(environ.get("SCRIPT_NAME") or ""),
                   _first(parse_qs(str(environ.get("QUERY_STRING") or ""))), form, cookies, https)


def claimed_user(environ: dict[str, Any]) -> str:
    """The user OOD's proxy says is asking, if it says (Apache's REMOTE_USER, or the forwarded header)."""
    return str(environ.get("REMOTE_USER") or environ.get("HTTP_X_FORWARDED_USER") or "")


class App:
    """The WSGI callable.  Everything it depends on is injectable for tests; the defaults are OOD's."""

    def __init__(self, *, load_config: Callable[[], Config] = config_mod.load,
                 whoami: Callable[[], Identity] = identity.current, clock: Callable[[], float] = time.time,
                 connect: Callable[[Config, str], Any] | None = None) -> None:
        self.load_config, self.whoami, self.clock, self.connect = load_config, whoami, clock, connect
        self._pages: tuple[str, Pages] | None = None

    def pages(self, cfg: Config) -> Pages:
        site = cfg.templates.site_dir
        if self._pages is None or self._pages[0] != site:
            self._pages = (site, Pages(site))
        return self._pages[1]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.respond(environ)
        body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else response.body
        headers = [*response.headers, *SECURITY_HEADERS, ("Content-Length", str(len(body)))]
        phrase = HTTPStatus(response.status).phrase
        start_response(f"{response.status} {phrase}", headers)
        return [body]

    def respond(self, environ: dict[str, Any]) -> Response:
        pages: Pages | None = None
        req = parse(environ)
        try:
            cfg = self.load_config()
            pages = self.pages(cfg)
            me = self.whoami()
            claimed = claimed_user(environ)
            if claimed and claimed != me.username:
                return error_page(pages, req, 403, f"This page belongs to {me.username}'s portal session, "
                                                   f"not to {claimed}: sign in again.")
            ctx = views.Context(cfg, me, req.base, pages, self.clock(), self.connect,
                                csrf=req.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24))
            if req.method == "POST" and not _csrf_ok(req):
                return error_page(pages, req, 403, "This form has expired: go back, reload the page and try again.")
            status, body, headers = views.dispatch(ctx, req)
            if CSRF_COOKIE not in req.cookies:
                headers = [*headers, ("Set-Cookie", _cookie(ctx.csrf, req))]
            return Response(status, body, headers)
        except OodK8sError as err:
            return error_page(pages, req, 503, err.message + (f": {err.hint}" if err.hint else ""))
        except Exception:  # the page says one line; the server's log gets the traceback
            traceback.print_exc(file=environ.get("wsgi.errors") or sys.stderr)
            return error_page(pages, req, 500, "This page failed: the portal's administrators can find why "
                                               "in the portal's logs.")


def _csrf_ok(req: Request) -> bool:
    sent, kept = req.form.get("csrf", ""), req.cookies.get(CSRF_COOKIE, "")
    return bool(sent and kept) and hmac.compare_digest(sent.encode(), kept.encode())


def _cookie(token: str, req: Request) -> str:
    parts = [f"{CSRF_COOKIE}={token}", f"Path={req.base or '/'}", "HttpOnly", "SameSite=Strict"]
    return "; ".join(parts + (["Secure"] if req.https else []))


def error_page(pages: Pages | None, req: Request, status: int, message: str) -> Response:
    """A page with one line; plain text when even the templates are unavailable."""
    headers = [("Content-Type", "text/html; charset=utf-8")]
    if pages is not None:
        try:
            html = pages.render("error", base=req.base, title=HTTPStatus(status).phrase, message=message,
                                status=status, nav=[], user="", banners=[])
            return Response(status, html.encode("utf-8"), headers)
        except Exception:  # noqa: S110 - fall through to the plain page
            pass
    return Response(status, message.encode("utf-8"), [("Content-Type", "text/plain; charset=utf-8")])


_app: App | None = None


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """What Passenger calls (``apps/sessions/passenger_wsgi.py``): one App per process."""
    global _app
    if _app is None:
        _app = App()
    return _app(environ, start_response)

"""Serve apps/sessions as OOD's Passenger does: its passenger_wsgi.py, mounted at /pun/sys/sessions, in a
real WSGI server (the standard library's wsgiref, a thread per request), in a process running as the user.

    python tests/webapp/serve.py APP_DIR      prints "PORT <n>" once it listens on 127.0.0.1
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

BASE = "/pun/sys/sessions"


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def mounted(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Passenger's base URI: the app sees SCRIPT_NAME=/pun/sys/sessions and the rest as PATH_INFO."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or ""
        if path != BASE and not path.startswith(BASE + "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not this app\n"]
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = BASE, path[len(BASE):]
        return app(environ, start_response)

    return wsgi


def main() -> None:
    app_dir = sys.argv[1]
    os.chdir(app_dir)  # Passenger starts an app in its directory
    app = runpy.run_path(os.path.join(app_dir, "passenger_wsgi.py"))["application"]
    server = make_server("127.0.0.1", 0, mounted(app), server_class=Server, handler_class=Handler)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()

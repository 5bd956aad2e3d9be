"""The socket's transport: one thread, non-blocking, every connection in one selector.

A poll is one short exchange whose answer costs ~0.1 ms of Python; a thread per connection costs
more than that to start, and 200 at once mostly wait for each other's GIL.  So a single loop accepts,
reads the request line, answers and writes, and a caller that connects and says nothing only holds
a slot until ``READ_TIMEOUT`` -- never another caller.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from collections.abc import Callable

MAX_REQUEST = 512
READ_TIMEOUT = 2.0
BACKLOG = 1024  # 200 pollers at once must never find the backlog full


class _Conn:
    __slots__ = ("deadline", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.inbox, self.outbox, self.deadline = sock, b"", b"", deadline


class Listener:
    """Serves ``respond(sock, request line) -> reply bytes`` on the Unix socket ``path`` (mode 0666)."""

    def __init__(self, path: str, respond: Callable[[socket.socket, bytes], bytes]) -> None:
        self.server_address = path
        self.respond = respond
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # noqa: S103 - every portal user connects; the kernel names each caller
        self.sock.listen(BACKLOG)
        self.sock.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._done = threading.Event()

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        try:
            while not self._stop.is_set():
                for key, events in self.selector.select(poll_interval):
                    if key.data is None:
                        self._accept()
                    elif events & selectors.EVENT_READ:
                        self._read(key.data)
                    else:
                        self._write(key.data)
                self._expire()
        finally:
            self._done.set()

    def shutdown(self) -> None:
        self._stop.set()
        self._done.wait(5)

    def server_close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, _Conn(sock, time.monotonic() + READ_TIMEOUT))

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.inbox += data
        if b"\n" not in conn.inbox and data and len(conn.inbox) < MAX_REQUEST:
            return
        if not conn.inbox:
            self._close(conn)
            return
        conn.outbox = self.respond(conn.sock, conn.inbox.partition(b"\n")[0] + b"\n")
        self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)  # the caller gave up (its own timeout)
            return
        conn.outbox = conn.outbox[sent:]
        if not conn.outbox:
            self._close(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in list(self.selector.get_map().values()):
            if key.data is not None and key.data.deadline < now:
                self._close(key.data)

    def _close(self, conn: _Conn) -> None:
        self.selector.unregister(conn.sock)
        conn.sock.close()

"""The agent's Unix socket: each caller learns about its own sessions, and nobody else's.

The kernel names the caller (``SO_PEERCRED``: the uid of the process at the other end, which it
cannot forge); NSS turns the uid into the portal username, and the one name function
(:func:`ood_k8s.core.names.for_user`) into the namespace the answer is read from.  Nothing in the
request can widen that: the only name a request may carry is ``user``, honoured for root alone
(administrators act for a user, as with ``--user`` everywhere else).

The protocol, one exchange per connection::

    request:  <format> <job id, or "-" for all> [<user>]\\n       format: psij | json
    answer:   <header JSON>\\n<body>                            then the agent closes

The header is ``{"ok": true, "age": S, "found": B[, "end": {...}]}`` or ``{"ok": false, "error": "..."}``;
``age`` is how many seconds the view may lag the API server (0 while the watch is live).  The body
is, for ``psij``, exactly what ``ood-k8s-psij get_info`` prints; for ``json``, the Info list of
``ood-k8s job info/list -o json``.  ``found: false`` (a job id the cache does not hold -- just
submitted, or long gone) tells the caller to ask the API server: the agent never declares a session
ended from the absence of a pod alone.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import socket
import stat
import struct
import time
from typing import TYPE_CHECKING, Any, Protocol

from ood_k8s.agent.listener import Listener
from ood_k8s.core import names
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.ood.psij_shim import wire_info
from ood_k8s.sessions.adapter import Adapter, Info

if TYPE_CHECKING:
    from ood_k8s.agent.service import Agent

FORMATS = ("psij", "json")
# More request kinds, each answered by its own module ("module:attr" taking (agent, uid, line, users)):
# an instructor's course (the sessions app), GPU-hour budgets and the usage ledger.
KINDS = {"course": "ood_k8s.agent.course_view:answer",
         "budget": "ood_k8s.usage.answers:answer", "ledger": "ood_k8s.usage.answers:answer"}


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end, from the kernel."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class Users(Protocol):
    """Who a uid is, and who a username is (for root acting for a user)."""

    def by_uid(self, uid: int) -> Identity: ...

    def by_name(self, username: str) -> Identity: ...


class NssUsers:
    """The portal's users through NSS (passwd, LDAP, SSSD): the same source as every other command."""

    def by_uid(self, uid: int) -> Identity:
        try:
            return _identity(pwd.getpwuid(uid))
        except KeyError:
            raise OodK8sError(f"uid {uid} is not known to this host (NSS)") from None

    def by_name(self, username: str) -> Identity:
        try:
            return _identity(pwd.getpwnam(names.check_username(username)))
        except KeyError:
            raise OodK8sError(f"user '{names.printable(username)}' is not known to this host (NSS)") from None


def _identity(pw: pwd.struct_passwd) -> Identity:
    return Identity(username=pw.pw_name, uid=pw.pw_uid, gid=pw.pw_gid, home=pw.pw_dir)


def _header(**fields: Any) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def refusal(message: str) -> bytes:
    return _header(ok=False, error=message)


def _caller(agent: Agent, uid: int, user: str, users: Users) -> Identity:
    """Whose sessions this caller may see: its own; root names a user."""
    if uid == 0:
        if not user:
            raise OodK8sError("root has no sessions of its own: name a user")
        ident = users.by_name(user)
    else:
        ident = users.by_uid(uid)
        if user and user != ident.username:
            raise OodK8sError(f"uid {uid} may not ask about another user's sessions")
    if ident.uid < agent.cfg.users.min_uid:  # as the direct path refuses them, for root's --user too
        raise OodK8sError(f"uid {ident.uid} is a system account without sessions")
    return ident


def _end(info: Info) -> dict[str, Any] | None:
    """What the caller needs to leave the end note (:mod:`ood_k8s.ood.endnote`) of an ended session."""
    if info.status != "completed":
        return None
    keep = ("reason", "output_path", "disruption", "end_reason", "found")  # what endnote.cause reads
    return {"status": info.status, "native": {k: v for k, v in info.native.items() if k in keep}}


def answer(agent: Agent, uid: int, line: bytes, users: Users) -> bytes:
    """The whole reply to one request line from the process ``uid``."""
    parts = line.decode("ascii", "replace").split()
    if parts and parts[0] in KINDS:
        import importlib

        module, _, attr = KINDS[parts[0]].partition(":")
        return getattr(importlib.import_module(module), attr)(agent, uid, line, users)
    if len(parts) not in (2, 3) or parts[0] not in FORMATS:
        return refusal("bad request: expected '<psij|json> <job id|-> [user]'")
    fmt, job, user = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    try:
        ident = _caller(agent, uid, user, users)
        adapter = Adapter(agent.cfg, ident, agent.cache.client())
        if job == "-":
            infos, end = adapter.info_all(), None
        else:
            names.check_job_id(job)
            if adapter.client.get_or_none("Pod", job, adapter.namespace) is None:
                return _header(ok=True, age=agent.age(), found=False)
            info = adapter.info(job)
            infos, end = [info], _end(info)
    except OodK8sError as exc:
        return refusal(exc.message)
    age = agent.age()
    if age >= 1:  # the watch is down or silent: the answer says how old it may be (Info.native, the card's)
        infos = [i._replace(native={**i.native, "cache_age": int(age)}) for i in infos]
    if fmt == "psij":
        body = json.dumps([wire_info(i) for i in infos]) + "\n"
    else:
        body = json.dumps([i.to_dict() for i in infos], indent=2, sort_keys=False) + "\n"
    head = {"ok": True, "age": age, "found": True}
    if end is not None:
        head["end"] = end
    return _header(**head) + body.encode()


class SocketServer(Listener):
    """The agent's socket: each request answered for the caller the kernel names."""

    def __init__(self, path: str, agent: Agent, users: Users) -> None:
        self.agent, self.users = agent, users
        _clear(path)
        super().__init__(path, self._respond)

    def _respond(self, sock: socket.socket, line: bytes) -> bytes:
        try:
            uid = peer_uid(sock)
        except OSError:
            return refusal("the caller could not be identified")
        self.agent.served += 1
        started = time.perf_counter()
        try:
            reply = answer(self.agent, uid, line, self.users)
        except Exception:
            # The caller (a student's poll) gets one line and asks the API server; the detail is the admin's.
            logging.getLogger("ood_k8s.agent").exception("answering uid %d failed", uid)
            reply = refusal("the agent could not answer this request; see its log")
        self.agent.latency.observe(time.perf_counter() - started)  # for /metrics (one thread answers)
        result = "answered" if reply.startswith(b'{"ok":true') else "refused"
        self.agent.answers[result] = self.agent.answers.get(result, 0) + 1
        return reply


def _clear(path: str) -> None:
    """Make room for the socket: its directory exists; a stale socket of a previous run goes."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OodK8sError(f"{path} exists and is not a socket", "set agent.socket to a free path")
    os.unlink(path)

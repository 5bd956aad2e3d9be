# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The poll's side of the agent's socket (:mod:`ood_k8s.agent.server`): ask, check, else fall back.

Every failure here -- no agent, a refused or hung socket, an unknown job, a view older than
``agent.max_age`` -- returns None, and the caller asks the API server itself as it always has.  The
whole exchange is bounded by ``agent.timeout`` (0.1 s): a hung agent costs a poll that much, never
more.  Imports nothing beyond what the poll already has (os, json) and :mod:`socket`.
"""

import json
import os
import socket
from typing import Any, Dict, NamedTuple, Optional

_MAX_ANSWER = 64 << 20


class Reply(NamedTuple):
    age: float                      # seconds the agent's view may lag the API server
    body: bytes                     # what the command prints
    end: Optional[Dict[str, Any]]   # an ended session's status and reason (for its end note)


def ask(path: str, fmt: str, job_id: str, user: str = "", timeout: float = 0.1) -> Optional[Reply]:
    """One exchange with the agent at ``path``; None unless it answered ``ok`` and knew the job."""
    import time

    give_up = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(f"{fmt} {job_id or '-'}{' ' + user if user else ''}\n".encode("ascii"))
        chunks = []
        size = 0
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_ANSWER:
                return None
    except (OSError, UnicodeEncodeError):
        return None  # no agent, refused, or gave up waiting (socket.timeout is an OSError)
    finally:
        sock.close()
    head, _, body = b"".join(chunks).partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError:
        return None
    if not isinstance(header, dict) or not header.get("ok") or not header.get("found"):
        return None
    return Reply(float(header.get("age", 0.0)), body, header.get("end"))


def fresh_reply(agent_cfg: Any, fmt: str, job_id: str, user: str = "") -> Optional[Reply]:
    """The agent's answer if it is enabled, answers in time, and its view is no older than ``max_age``."""
    if not agent_cfg.enabled:
        return None
    reply = ask(agent_cfg.socket, fmt, job_id, user, agent_cfg.timeout)
    if reply is None or reply.age > agent_cfg.max_age:
        return None
    return reply


def psij_info(agent_cfg: Any, job_id: str, ident: Any, admin: bool) -> Optional[str]:
    """``get_info.py``'s stdout from the agent, with the end note of an ended session left as the
    direct path leaves it (:mod:`ood_k8s.ood.endnote`); None: ask the API server."""
    reply = fresh_reply(agent_cfg, "psij", job_id, ident.username if admin or os.geteuid() == 0 else "")
    if reply is None:
        return None
    if reply.end is not None:
        from types import SimpleNamespace

        from ood_k8s.ood import endnote

        endnote.record(SimpleNamespace(status=reply.end.get("status"), native=reply.end.get("native") or {}), ident)
    return reply.body.decode("utf-8")

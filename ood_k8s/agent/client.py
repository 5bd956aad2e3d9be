# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The callers' side of the agent's socket (:mod:`ood_k8s.agent.server`): ask, check, else fall back.

Every failure here -- no agent, a refused or hung socket, an unknown job, a view older than
``agent.max_age`` -- returns None, and the caller asks the API server itself as it always has.  The
whole exchange is bounded by ``agent.timeout`` (0.1 s): a hung agent costs a poll that much, never
more.  The exchange itself is :func:`ood_k8s.agent.fastpoll.exchange`, the one the ``ood-k8s-psij``
launcher uses before anything else is imported; this module reads its answers with :mod:`json`.
"""

import json
import os
from typing import Any, Dict, NamedTuple, Optional

from ood_k8s.agent import fastpoll


class Reply(NamedTuple):
    age: float                      # seconds the agent's view may lag the API server
    body: bytes                     # what the command prints
    end: Optional[Dict[str, Any]]   # an ended session's status and reason (for its end note)


def parse(data: Optional[bytes]) -> Optional[Reply]:
    """An answer of the agent; None unless it says ``ok`` and knew the job."""
    head, _, body = (data or b"").partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError:
        return None
    if not isinstance(header, dict) or not header.get("ok") or not header.get("found"):
        return None
    try:
        return Reply(float(header.get("age", 0.0)), body, header.get("end"))
    except (TypeError, ValueError):
        return None


def ask(path: str, fmt: str, job_id: str, user: str = "", timeout: float = 0.1) -> Optional[Reply]:
    """One exchange with the agent at ``path``; None unless it answered ``ok`` and knew the job."""
    line = fastpoll.request_line(fmt, job_id, user)
    return parse(fastpoll.exchange(path, line, timeout)) if line is not None else None


def fresh_reply(agent_cfg: Any, fmt: str, job_id: str, user: str = "",
                asked: Optional[bytes] = None) -> Optional[Reply]:
    """The agent's answer if it is enabled, answers in time, and its view is no older than ``max_age``.
    ``asked``: the answer the launcher already had (b"": asked, nothing usable) -- never ask twice."""
    if not agent_cfg.enabled:
        return None
    reply = ask(agent_cfg.socket, fmt, job_id, user, agent_cfg.timeout) if asked is None else parse(asked)
    if reply is None or reply.age > agent_cfg.max_age:
        return None
    return reply


def record_end(end: Dict[str, Any], ident: Any) -> None:
    """Leave an ended session's note as the direct path leaves it (:mod:`ood_k8s.ood.endnote`)."""
    from types import SimpleNamespace

    from ood_k8s.ood import endnote

    endnote.record(SimpleNamespace(status=end.get("status"), native=end.get("native") or {}), ident)


def psij_info(agent_cfg: Any, job_id: str, ident: Any, admin: bool,
              asked: Optional[bytes] = None) -> Optional[str]:
    """``get_info.py``'s stdout from the agent, with the end note of an ended session left as the
    direct path leaves it (:mod:`ood_k8s.ood.endnote`); None: ask the API server."""
    user = ident.username if admin or os.geteuid() == 0 else ""
    reply = fresh_reply(agent_cfg, "psij", job_id, user, asked)
    if reply is None:
        return None
    if reply.end is not None:
        record_end(reply.end, ident)
    return reply.body.decode("utf-8")

"""Usage through the agent's socket: the only way a user (not root) reads the ledger.

Users have no access to the agents' namespace, so their budgets (at submit, in the Jupyter form) and
their usage reports come from the agent, which names the caller by the kernel (``SO_PEERCRED``, see
:mod:`ood_k8s.agent.server`) and answers with what that caller may see (:func:`may_see`):

    budget -\\n    the caller's GPU-hour budgets this term        (root: ``budget - <user>``)
    ledger -\\n    the usage entries the caller may see           (root: all of them)

Answers use the socket's framing: a header line (``{"ok": true, "age": S, "found": true}``), then JSON.
The entries are the ledger as this agent last read it (:mod:`.view`) and every session its cache holds
that the ledger does not have yet (running ones counted up to now).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.courses import membership
from ood_k8s.usage import budget
from ood_k8s.usage.entry import Entry, current
from ood_k8s.usage.index import Overlay
from ood_k8s.usage.view import view_for

if TYPE_CHECKING:
    from ood_k8s.agent.server import Users
    from ood_k8s.agent.service import Agent
    from ood_k8s.config import Config

KINDS = ("budget", "ledger")


# --- who may see what (the CLI enforces the same rule on the direct path) -------------------------------


def may_see(cfg: Config, ident: Identity, admin: bool) -> Callable[[Entry], bool]:
    """Root sees every entry; an instructor their courses'; everyone their own."""
    if admin:
        return lambda e: True
    courses = {c.name for c in membership.instructs(cfg, ident)}
    return lambda e: e.user == ident.username or (bool(e.course) and e.course in courses)


# --- the agent's side ---------------------------------------------------------------------------------


def usage_of(agent: Agent, now: float | None = None) -> Overlay:
    """Every session the agent knows: the ledger as its view holds it, and the sessions in its cache the
    ledger does not have yet (running ones counted up to ``now``)."""
    now = time.time() if now is None else now
    base = view_for(agent.client, agent.cfg.agent.namespace, agent.cfg.usage.refresh).index()
    prefix = agent.cfg.users.namespace_prefix
    with agent.cache.lock:
        pods = [p for p in agent.cache.pods.values() if (p.get("metadata") or {}).get("uid") not in base]
    return Overlay(base, [current(p, now, prefix) for p in pods])


def ledger_of(agent: Agent, now: float | None = None) -> list[Entry]:
    """:func:`usage_of` as a list (usage answers, metrics)."""
    return usage_of(agent, now).entries()


def _frame(body: Any, age: float) -> bytes:
    head = json.dumps({"ok": True, "age": age, "found": True}, separators=(",", ":")).encode()
    return head + b"\n" + json.dumps(body, separators=(",", ":")).encode() + b"\n"


def _refuse(message: str) -> bytes:
    return json.dumps({"ok": False, "error": message}, separators=(",", ":")).encode() + b"\n"


def _with_groups(ident: Identity) -> Identity:
    """NSS's passwd entry names no groups: look them up (test users come with theirs)."""
    if ident.groups:
        return ident
    from ood_k8s.core import identity

    return identity.lookup(ident.username)


def answer(agent: Agent, uid: int, line: bytes, users: Users) -> bytes:
    """The reply to ``budget``/``ledger`` from the process ``uid``."""
    from ood_k8s.agent.server import _caller

    parts = line.decode("ascii", "replace").split()
    if len(parts) not in (2, 3) or parts[0] not in KINDS or parts[1] != "-":
        return _refuse("bad request: expected 'budget -' or 'ledger -'")
    try:
        if parts[0] == "ledger" and uid == 0 and len(parts) == 2:
            return _frame([list(e) for e in ledger_of(agent)], agent.age())
        ident = _with_groups(_caller(agent, uid, parts[2] if len(parts) == 3 else "", users))
        now = time.time()
        usage = usage_of(agent, now)
        if parts[0] == "budget":
            return _frame([b._asdict() for b in budget.remaining(agent.cfg, ident, now, usage)], agent.age())
        seen = may_see(agent.cfg, ident, admin=False)
        return _frame([list(e) for e in usage.entries() if seen(e)], agent.age())
    except OodK8sError as exc:
        return _refuse(exc.message)


# --- the caller's side --------------------------------------------------------------------------------


def _ask(cfg: Config, kind: str, user: str, timeout: float) -> Any:
    from ood_k8s.agent.client import ask

    reply = ask(cfg.agent.socket, kind, "-", user, timeout)
    if reply is None:
        return None
    try:
        return json.loads(reply.body)
    except ValueError:
        return None


def ask_budgets(cfg: Config, ident: Identity) -> list[budget.Budget] | None:
    """The budgets of ``ident`` (root asks for a user; a user only for themself), None: no answer."""
    user = ident.username if os.geteuid() == 0 else ""
    found = _ask(cfg, "budget", user, cfg.agent.timeout)
    if not isinstance(found, list):
        return None
    try:
        return [budget.Budget(**b) for b in found]
    except TypeError:
        return None


def ask_entries(cfg: Config, timeout: float = 10.0) -> list[Entry] | None:
    """The entries the caller may see, None: no answer."""
    found = _ask(cfg, "ledger", "", timeout)
    if not isinstance(found, list):
        return None
    try:
        return [Entry(*row) for row in found]
    except TypeError:
        return None

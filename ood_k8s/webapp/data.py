"""Where the pages' data comes from, for one user: the agent's socket first, the API server after.

* Sessions: the agent's ``json`` answer for the caller (the kernel names the caller: this process's
  uid), fresh enough (``agent.max_age``); otherwise the job adapter with the user's own credentials,
  as ``ood-k8s job list`` does.  Either way the user's own namespace and nothing else.
* Extend: the adapter, directly, with the user's credentials (like submit and delete) -- offered
  only where the adapter has ``extend``.
* Budgets and a course's view: the agent alone holds what they need (the usage ledger, every
  student's sessions); when it does not answer, the page says so in one line.

Nothing here raises to the page: every failure becomes a :class:`Loaded` with a ``banner``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ood_k8s.agent import client as agent_client
from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.sessions.adapter import Adapter

AGENT_DOWN = "The session service (ood-k8s agent) is not answering"
# A page waits at most this long for the agent (a poll's agent.timeout is tighter: it runs every 10 s).
PAGE_AGENT_TIMEOUT = 0.25
# ... and for the API server: one retry, a few seconds; a page that hangs helps nobody.
PAGE_API_TIMEOUT = 5.0


class Loaded(NamedTuple):
    value: Any
    banner: str = ""       # one line for the page when something is missing or stale
    source: str = ""       # "agent" or "api"


def extend_supported() -> bool:
    """The adapter can extend sessions (the lifecycle's extend has landed and is installed)."""
    return callable(getattr(Adapter, "extend", None))


def budget_supported() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("ood_k8s.usage.budget") is not None
    except ImportError:
        return False


def _one_line(err: OodK8sError) -> str:
    return f"{err.message}: {err.hint}" if getattr(err, "hint", "") else err.message


class Store:
    """One request's data for the user ``ident`` (this process's owner)."""

    def __init__(self, cfg: Config, ident: Identity, *, clock: Callable[[], float] = time.time,
                 connect: Callable[[Config, str], KubeClient] | None = None) -> None:
        self.cfg, self.ident, self.clock = cfg, ident, clock
        self._connect = connect
        self._adapter: Adapter | None = None

    # --- the two ways in -------------------------------------------------------------------------

    def _ask(self, kind: str, arg: str) -> tuple[Any, float] | None:
        """The agent's JSON answer and its age, or None (disabled, down, refused, unknown)."""
        agent = self.cfg.agent
        if not agent.enabled:
            return None
        reply = agent_client.ask(agent.socket, kind, arg, "", max(agent.timeout, PAGE_AGENT_TIMEOUT))
        if reply is None:
            return None
        try:
            return json.loads(reply.body), reply.age
        except ValueError:
            return None

    def adapter(self) -> Adapter:
        if self._adapter is None:
            if self._connect is not None:
                kube = self._connect(self.cfg, self.ident.username)
            else:
                from ood_k8s.kubeconfig import clients

                kube = clients.as_user(self.cfg, self.ident.username)
            kube.timeout = min(kube.timeout, PAGE_API_TIMEOUT)
            kube.retries = min(kube.retries, 1)
            self._adapter = Adapter(self.cfg, self.ident, kube, clock=self.clock)
        return self._adapter

    def _banner_down(self) -> str:
        return f"{AGENT_DOWN}: showing the cluster's answer directly." if self.cfg.agent.enabled else ""

    # --- sessions ----------------------------------------------------------------------------------

    def sessions(self) -> Loaded:
        """The user's sessions as Info dicts (live and ended pods alike)."""
        got = self._ask("json", "-")
        if got is not None and got[1] <= self.cfg.agent.max_age:
            return Loaded(got[0], source="agent")
        try:
            return Loaded([i.to_dict() for i in self.adapter().info_all()], self._banner_down(), "api")
        except OodK8sError as err:
            return Loaded([], f"Your sessions cannot be read right now: {_one_line(err)}", "")

    def session(self, job_id: str, fresh: bool = False) -> Loaded:
        """One session of the user's (an Info dict), or None: not theirs, or long gone.  ``fresh``: from
        the API server (just after an extend, which the agent's watch may not have seen yet)."""
        from ood_k8s.core import names

        try:
            names.check_job_id(job_id)
        except OodK8sError:
            return Loaded(None)
        got = None if fresh else self._ask("json", job_id)
        if got is not None and got[1] <= self.cfg.agent.max_age and got[0]:
            return Loaded(got[0][0], source="agent")
        try:
            info = self.adapter().info(job_id)
        except OodK8sError as err:
            return Loaded(None, f"This session cannot be read right now: {_one_line(err)}")
        banner = "" if fresh else self._banner_down()
        return Loaded(None if info.native.get("found") is False else info.to_dict(), banner, "api")

    def extend(self, job_id: str, seconds: int) -> None:
        """Moves the session's deadline; raises the adapter's one-line refusal (an OodK8sError)."""
        self.adapter().extend(job_id, seconds)

    # --- what only the agent knows -----------------------------------------------------------------

    def budgets(self) -> Loaded:
        """This term's GPU-hour budgets (dicts of :class:`ood_k8s.usage.budget.Budget`), None: none to show."""
        if not budget_supported() or not self.cfg.agent.enabled:
            return Loaded(None)  # the usage page says budgets are not kept here
        got = self._ask("budget", "-")
        if got is None or not isinstance(got[0], list):
            return Loaded(None, f"{AGENT_DOWN}: your GPU-hour budget cannot be shown right now.")
        # A course's whole budget (scope "course") is labelled so: the student shares it with the class.
        out = [{**b, "course": b.get("course", "") + (" (whole course)" if b.get("scope") == "course" else "")}
               for b in got[0] if isinstance(b, dict)]
        return Loaded(out, source="agent")

    def course(self, name: str) -> Loaded:
        """An instructor's course: ``{"course": {...}, "sessions": [...], "budgets": [...] | None}``."""
        if not self.cfg.agent.enabled:
            return Loaded(None, "Students' sessions are shown through the session service (ood-k8s agent), which "
                                "this portal does not run: ask its administrators to enable it.")
        got = self._ask("course", name)
        if got is None:
            return Loaded(None, f"{AGENT_DOWN}: your students' sessions can only be read through it. "
                                "Try again in a minute, or ask the portal's administrators.")
        body, age = got
        stale = f"This view may be {int(age)} s old: the agent's watch of the cluster is catching up." \
            if age > self.cfg.agent.max_age else ""
        return Loaded(body, stale, "agent")

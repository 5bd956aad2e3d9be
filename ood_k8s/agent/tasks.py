"""What the leader does on each pass of the lifecycle: a registry of tasks, run in order.

One agent per portal runs the poll cache; only the leader (:mod:`ood_k8s.agent.leader`) runs the
lifecycle.  A pass gives every registered task the same :class:`PassContext`: the configuration,
the agent's own API client, one clock reading, the session pods as the cache sees them, and
:class:`~ood_k8s.agent.actions.Actions` -- the only way a task ends, warns about or deletes a
session, so that everything the agent does is an Event on the pod, a line in its log and the
session's reason.

A task is idempotent: a pass may be repeated (a new leader, ``ood-k8s agent --once`` from a timer)
and must then do nothing twice.  Tasks decide with pure functions of the pod and ``ctx.now`` and
act through ``ctx.actions``; a failure of one task is logged and does not stop the others -- except
:class:`~ood_k8s.core.errors.NotLeader` (the agent lost its Lease mid-pass), which ends the pass.

``ctx.events_of(pod)`` gives a pending pod's Events (what the status rules read for a pending pod:
from the agent's cache, or one list call under ``--once``); ask only when
:func:`~ood_k8s.sessions.status.pod_state` says ``needs_events``, as the job adapter does.

The registry maps a task's name to ``module:attribute`` and is loaded lazily, so the cache-only
agent imports no task.  The order is the order of the dict: the usage ledger records an ended
session before cleanup may delete its pod.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ood_k8s.core.errors import NotLeader

if TYPE_CHECKING:
    from ood_k8s.agent.actions import Actions
    from ood_k8s.config import Config
    from ood_k8s.core.kube import KubeClient


@dataclass
class PassContext:
    cfg: Config
    client: KubeClient  # the agent's own identity (the provisioner's kubeconfig)
    now: float  # wall-clock seconds since the epoch, read once for the pass
    pods: list[dict[str, Any]]  # every session pod the cache holds (copies: a task may keep them)
    actions: Actions
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("ood_k8s.agent"))
    # What tasks tell later tasks in the same pass (e.g. the ledger: which ended pods it holds).
    notes: dict[str, Any] = field(default_factory=dict)
    # A pending pod's Events (see the module docstring); none when the caller has no way to get them.
    events_of: Callable[[dict[str, Any]], list[dict[str, Any]]] = field(default=lambda pod: [])
    # The sessions' Secrets (the idle probes' credentials): the running agent's cache holds them already;
    # None (``--once``): the task asks the API server.
    session_secrets: Callable[[], list[dict[str, Any]]] | None = None


class LeaderTask(Protocol):
    """One concern of the lifecycle (deadlines, idle reclaim, cleanup, warm capacity, the ledger...)."""

    name: str

    def run(self, ctx: PassContext) -> None: ...


# name -> "module:attribute" of a LeaderTask.  Order matters (see the module docstring).
TASKS: dict[str, str] = {
    "ledger": "ood_k8s.usage.task:TASK",
    "budget": "ood_k8s.usage.budget_task:TASK",
    "deadline": "ood_k8s.agent.deadline:TASK",
    "idle": "ood_k8s.agent.idle:TASK",
    "pending": "ood_k8s.agent.pending:TASK",
    "cleanup": "ood_k8s.agent.cleanup:TASK",
    "warm": "ood_k8s.capacity.warm:TASK",
}


def register(name: str, target: str) -> None:
    """Add a task (``module:attribute``) at the end of the order; tests register their own."""
    TASKS[name] = target


def load(name: str) -> LeaderTask:
    module, _, attr = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def run_pass(ctx: PassContext, names: list[str] | None = None,
             on_error: Callable[[str, Exception], None] | None = None) -> list[str]:
    """Run every task (or ``names``) in registry order; returns the names of the tasks that failed."""
    failed = []
    for name in [n for n in TASKS if names is None or n in names]:
        try:
            load(name).run(ctx)
        except NotLeader as err:  # another agent leads now: it does the rest
            failed.append(name)
            ctx.log.warning("task %s stopped: %s", name, err.message)
            break
        except Exception as err:  # one task's failure must not stop the lifecycle
            failed.append(name)
            ctx.log.error("task %s failed: %s", name, getattr(err, "message", None) or err)
            if on_error is not None:
                on_error(name, err)
    return failed

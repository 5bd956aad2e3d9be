"""Leader task "deadline": warn before a session's deadline, end it there (issue 15).

A session's deadline (:func:`ood_k8s.sessions.lifetime.window`) is its pod's start plus the wall time
granted at submit, or the instant an extend wrote (``ood-k8s job extend``), never later than its
ceiling.  Per started session, with ``now`` the pass's clock (:func:`decide`, a pure function):

* ``agent.deadline_warning`` seconds before the deadline -> warned once (``DeadlineSoon``): "ends at
  16:30 (in 10 min): save your work, or extend it" -- its status reason (the card, ``ood-k8s job
  info``), an Event, and the file :data:`~ood_k8s.ood.endnote.WARNING_FILE` in the session's folder;
* at the deadline -> ended (``DeadlineReached``): "ended at its deadline (2h)" -- the card's and the
  completed view's reason.  A warning another task gave (idle, say) does not hold the deadline back.

An extend withdraws the deadline's warning (:func:`ood_k8s.sessions.extend.extend_patch`) and, where it
can, its file, so the new deadline is warned anew.  A pass repeated by a new leader does nothing twice
(the actions are idempotent).

The warning file: the session's folder is the directory of its output log (the main container's
``OOD_STDOUT_PATH``, a Batch Connect session's staged root, where the end note goes too).  It is written
by a child process that has dropped to the pod's own uid, gid and groups (which the admission guard
pins to the namespace's user) -- never as root, so a symlink in a home leads nowhere the student could
not write anyway -- and only into a directory that user owns.  A session without an output log, an
agent not running as root, or a folder it cannot write gets no file; the status reason stands anyway.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ood_k8s.agent.actions import ended, terminal
from ood_k8s.agent.tasks import PassContext
from ood_k8s.core.errors import OodK8sError
from ood_k8s.ood import endnote
from ood_k8s.policy import access
from ood_k8s.sessions import lifetime
from ood_k8s.sessions.lifetime import END_REASON, WARN_REASON

WARN, END = "warn", "end"


class Decision(NamedTuple):
    action: str  # WARN or END
    message: str


def decide(pod: dict[str, Any], now: float, warning: int) -> Decision | None:
    """What the deadline asks of this session now, if anything."""
    if ended(pod) or terminal(pod) or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    win = lifetime.window(pod)
    if win.deadline is None or win.started is None:
        return None  # not started: its time has not begun to run
    if now >= win.deadline:
        return Decision(END, f"ended at its deadline ({lifetime.hours(int(win.deadline - win.started))})")
    if warning > 0 and now >= win.deadline - warning:
        return Decision(WARN, f"ends at {lifetime.clock(win.deadline, now)} (in {lifetime.span(win.deadline - now)})"
                              ": save your work, or extend it")
    return None


def leave_note(ctx: PassContext, pod: dict[str, Any], message: str) -> bool:
    """Write the warning into the session's folder as its user (see the module docstring); True if written."""
    where, who = endnote.session_dir(pod), endnote.pod_owner(pod, access.min_uid(ctx.cfg.users))
    if where is None or who is None:
        return False
    try:
        return endnote.write_as(*who, where, endnote.WARNING_FILE, message + "\n")
    except (OSError, OodK8sError) as err:
        ctx.log.info("deadline: no warning file in %s: %s", where, getattr(err, "message", None) or err)
        return False


class DeadlineTask:
    name = "deadline"

    def run(self, ctx: PassContext) -> None:
        for pod in ctx.pods:
            decision = decide(pod, ctx.now, ctx.cfg.agent.deadline_warning)
            if decision is None:
                continue
            if decision.action == END:
                ctx.actions.end(pod, END_REASON, decision.message)
            elif ctx.actions.warn(pod, WARN_REASON, decision.message):
                leave_note(ctx, pod, decision.message)


TASK = DeadlineTask()

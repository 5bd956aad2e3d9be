"""Extending a session: its deadline moves later, never past its ceiling (issue 15).

A session's deadline (:mod:`ood_k8s.sessions.lifetime`) is when the agent's leader ends it; its
ceiling, the pod's ``activeDeadlineSeconds``, is when the kubelet would, whatever happens.
:func:`extend` moves the deadline ``seconds`` later by writing it, as an absolute RFC 3339 instant,
into :data:`~ood_k8s.core.vocab.DEADLINE_ANNOTATION` -- a merge patch made with the caller's own
credentials (the user's, or the provisioner's for an administrator acting with ``--user``) and
carrying the ``resourceVersion`` it read, so two extends at once cannot both add to the same
deadline: the loser reads again and retries once.  A deadline warning already given is withdrawn,
so the leader warns again before the new deadline -- on the pod, and (best effort, as the session's
user: :func:`ood_k8s.ood.endnote.remove_as`) its file in the session's folder.

Refused, each in one line and before anything changes: a session that has ended (or that the
agent is ending), one that has not started (its time has not begun to run), one already at its
deadline, and a deadline past the ceiling (``lifetime.extended`` says until when it may run and
how much to ask for).  Then every check in :data:`EXTEND_CHECKS` runs: a feature that limits
extends (a course's GPU-hour budget) registers one line there and raises
:class:`~ood_k8s.core.errors.NotEntitled`.  The admission guard holds the same line for a student
who patches the annotation directly: never past the ceiling (``templates/cluster/admission.yaml.j2``).
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple, Protocol

from ood_k8s.config import Config
from ood_k8s.core import names, vocab
from ood_k8s.core.errors import Conflict, NotEntitled, NotFound, OodK8sError, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.timefmt import rfc3339
from ood_k8s.ood import endnote
from ood_k8s.policy import access
from ood_k8s.sessions import lifetime


class Extension(NamedTuple):
    job_id: str
    deadline: float  # the new deadline, epoch seconds
    ceiling: float  # the most it may ever run until, epoch seconds
    added: int  # seconds


class ExtendCheck(Protocol):
    """A site rule an extend must pass; raises NotEntitled (one line, with a hint) to refuse it."""

    def __call__(self, cfg: Config, ident: Identity, pod: dict[str, Any], new_deadline: float,
                 now: float) -> None: ...


# name -> "module:attribute" of an ExtendCheck, run in order (e.g. "budget": "ood_k8s.usage.budget:check_extend").
EXTEND_CHECKS: dict[str, str] = {
    "budget": "ood_k8s.usage.budget:check_extend",  # a course's GPU-hour budget
}


def _check(target: str) -> ExtendCheck:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def seconds_of_hours(hours: str | float) -> int:
    """``--hours N`` (fractional allowed: 0.5 is 30 minutes) as whole seconds; UsageError otherwise."""
    try:
        value = float(hours)
    except (TypeError, ValueError):
        raise UsageError(f"--hours: got '{hours}', expected a number of hours such as 1 or 0.5") from None
    if not 0 < value <= 24 * 366:  # also refuses nan and inf
        raise UsageError(f"--hours: got '{hours}', expected a number of hours above 0, such as 1 or 0.5")
    seconds = round(value * 3600)
    if seconds < 60:
        raise UsageError(f"--hours: got '{hours}', expected at least one minute (0.02 hours)")
    return seconds


def _session(client: KubeClient, namespace: str, job_id: str) -> dict[str, Any]:
    pod = client.get_or_none("Pod", job_id, namespace)
    if pod is None:
        raise NotFound(f"Invalid job id specified: no job '{job_id}' in namespace {namespace}",
                       "see 'ood-k8s job list' for your jobs")
    if ((pod.get("metadata") or {}).get("labels") or {}).get(vocab.MANAGED_BY_KEY) != vocab.MANAGED_BY:
        raise UsageError(f"Invalid job id specified: pod '{job_id}' was not started by ood-k8s",
                         "see 'ood-k8s job list' for your jobs")
    return pod


def refusal(pod: dict[str, Any], job_id: str, now: float) -> UsageError | None:
    """Why this session cannot be extended at all (before any arithmetic), or None."""
    meta = pod.get("metadata") or {}
    ann = meta.get("annotations") or {}
    if vocab.END_REASON_ANNOTATION in ann or meta.get("deletionTimestamp") or \
            (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        why = ann.get(vocab.END_MESSAGE_ANNOTATION)
        return UsageError(f"session {job_id} has ended" + (f" ({why})" if why else ""),
                          "start a new session to continue")
    win = lifetime.window(pod)
    if win.deadline is None:
        return UsageError(f"session {job_id} has not started yet: its time runs from its start",
                          "extend it once it is running")
    if win.deadline <= now:
        return UsageError(f"session {job_id} reached its deadline at {lifetime.clock(win.deadline, now)} and is "
                          "being ended", "start a new session to continue")
    return None


def extend_patch(pod: dict[str, Any], deadline: float) -> dict[str, Any]:
    """The merge patch: the new deadline, the resourceVersion read (a precondition), and the deadline warning
    withdrawn (the leader warns again before the new deadline)."""
    meta = pod.get("metadata") or {}
    ann: dict[str, Any] = {vocab.DEADLINE_ANNOTATION: rfc3339(deadline)}
    if (meta.get("annotations") or {}).get(vocab.WARNING_REASON_ANNOTATION) == lifetime.WARN_REASON:
        ann.update({vocab.WARNING_ANNOTATION: None, vocab.WARNING_REASON_ANNOTATION: None})
    return {"metadata": {"resourceVersion": meta.get("resourceVersion"), "annotations": ann}}


def withdraw_file(cfg: Config, pod: dict[str, Any]) -> bool:
    """Remove the deadline's warning file from the session's folder, as its user; False when there was none,
    or it cannot be done from here (another user's process, a folder that is not theirs)."""
    if ((pod.get("metadata") or {}).get("annotations") or {}).get(vocab.WARNING_REASON_ANNOTATION) != \
            lifetime.WARN_REASON:
        return False
    where, who = endnote.session_dir(pod), endnote.pod_owner(pod, access.min_uid(cfg.users))
    if where is None or who is None:
        return False
    try:
        return endnote.remove_as(*who, where, endnote.WARNING_FILE)
    except (OSError, OodK8sError):
        return False


def extend(cfg: Config, client: KubeClient, ident: Identity, job_id: str, seconds: int, now: float) -> Extension:
    """Move ``ident``'s session ``job_id``'s deadline ``seconds`` later (see the module docstring)."""
    names.check_job_id(job_id)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise UsageError(f"an extension must be a positive number of seconds, got {seconds!r}")
    if not lifetime.leader_runs(cfg.agent):
        # Without the agent's leader nothing would end the session at a moved deadline: its pod's own
        # deadline is the wall time granted, and that can never be raised.
        raise NotEntitled("sessions cannot be extended on this site: it does not run the ood-k8s agent's lifecycle",
                          "start a new session to continue, or ask the administrators to enable agent.enabled")
    namespace = names.for_user(ident.username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix).namespace
    for attempt in (1, 2):
        pod = _session(client, namespace, job_id)
        refused = refusal(pod, job_id, now)
        if refused is not None:
            raise refused
        win = lifetime.window(pod)
        new = lifetime.extended(win, seconds, now)
        for target in EXTEND_CHECKS.values():
            _check(target)(cfg, ident, pod, new, now)
        try:
            client.patch("Pod", job_id, extend_patch(pod, new), namespace, patch_type="merge")
        except Conflict:
            if attempt == 2:
                raise Conflict(f"session {job_id} kept changing while it was being extended",
                               "try again in a moment") from None
            continue  # someone else changed the pod (another extend, the agent): read it again
        withdraw_file(cfg, pod)
        return Extension(job_id, new, win.ceiling if win.ceiling is not None else new, seconds)
    raise AssertionError("unreachable")  # pragma: no cover

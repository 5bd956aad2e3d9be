# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Why a session ended, kept beside its output log for the card's completed view (REFERENCE §10).

Once a card has shown ``completed`` the dashboard caches a bare completed Info and never asks
again, so the reason a poll returned is gone by the next refresh.  The poll that sees a session's
end therefore writes it, as the user, to ``ood-k8s-end.txt`` in the directory of the session's
output file -- for a Batch Connect session, its staged root, which the app's ``completed.html.erb``
reads.  One line, the same words the card showed: out of memory (with the limit), wall time
reached, image not found, crashed (with the exit code), evicted or reclaimed, or what the agent
ended it for ("ended at its deadline (2h)", "reclaimed after 60 min idle": sessions/status.py).

Best effort: a note that cannot be written never fails the poll.
"""

import os
from typing import Any, Dict, NamedTuple, Optional, Tuple

NOTE_FILE = "ood-k8s-end.txt"
WARNING_FILE = "ood-k8s-warning.txt"  # the agent's warning before it ends a session (agent/deadline.py)

# Kubernetes' DisruptionTarget condition reasons: the cluster, not the app, ended the session.
_RECLAIMED: Dict[str, str] = {
    "EvictionByEvictionAPI": "its node was drained",
    "DeletionByTaintManager": "its node was taken out of service",
    "TerminationByKubelet": "its node shut down or ran short of resources",
    "DeletionByPodGC": "its node is gone",
    "PreemptionByScheduler": "a higher-priority workload needed the node",
}


class Note(NamedTuple):
    directory: str
    text: str


def cause(info: Any) -> str:
    """The line a student reads about an ended session (empty if there is nothing to say)."""
    disruption = info.native.get("disruption")
    if disruption and not info.native.get("end_reason"):  # the agent's own end (deadline, idle...) says more
        why = _RECLAIMED.get(str(disruption), str(disruption))
        return f"the cluster reclaimed the session's node ({why}): start a new session"
    return str(info.native.get("reason") or "")


def note_for(info: Any) -> Optional[Note]:
    """The note a poll leaves for ``info``, or None (not ended, already gone, no output file)."""
    if info.status != "completed" or not info.native.get("found", True):
        return None
    output = info.native.get("output_path")
    text = " ".join(cause(info).split())
    if not output or not text or not os.path.isabs(str(output)):
        return None
    return Note(os.path.dirname(str(output)), text + "\n")


def _write(directory: str, text: str, name: str = NOTE_FILE) -> bool:
    """Runs as the user: into a directory the user owns, atomically, never through a link; False: not theirs."""
    from ood_k8s.core import fsutil

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return False  # not the user's own session directory
        data = text.encode("utf-8")
        if fsutil.read_at(fd, name, 4096) != data:
            fsutil.atomic_write_at(fd, name, data, mode=0o644)
        return True
    finally:
        os.close(fd)


def write_as(uid: int, gid: int, gids: Tuple[int, ...], directory: str, name: str, text: str) -> bool:
    """Write ``name`` into the session directory ``directory`` as the user ``uid`` (a child that dropped
    root's rights: the kernel decides what it may touch, so a link in a home leads nowhere the user could
    not write anyway), only if the user owns the directory (else False).  Raises OSError/OodK8sError."""
    from ood_k8s.core import fsutil

    return bool(fsutil.run_as(uid, gid, gids, _write, directory, text, name))


def _remove(directory: str, name: str) -> bool:
    """Runs as the user: remove ``name`` (unlink never follows a link) from a directory the user owns."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return False
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return False
        return True
    finally:
        os.close(fd)


def remove_as(uid: int, gid: int, gids: Tuple[int, ...], directory: str, name: str) -> bool:
    """Remove ``name`` from the session directory as the user (as :func:`write_as`); True if it was there."""
    from ood_k8s.core import fsutil

    return bool(fsutil.run_as(uid, gid, gids, _remove, directory, name))


def session_dir(pod: Dict[str, Any]) -> Optional[str]:
    """A session pod's folder: the directory of its main container's output log (absolute), else None."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    out = next((e.get("value") for e in containers[0].get("env") or [] if e.get("name") == "OOD_STDOUT_PATH"), None)
    if not isinstance(out, str) or not os.path.isabs(out):
        return None
    return os.path.dirname(os.path.normpath(out))


def pod_owner(pod: Dict[str, Any], min_uid: int) -> Optional[Tuple[int, int, Tuple[int, ...]]]:
    """(uid, gid, groups) a session pod runs as -- the admission guard holds them to its namespace's user --
    or None when they are missing or a system account's."""
    sc = (pod.get("spec") or {}).get("securityContext") or {}
    uid, gid, groups = sc.get("runAsUser"), sc.get("runAsGroup"), sc.get("supplementalGroups") or []
    if not isinstance(uid, int) or not isinstance(gid, int) or uid < max(1, min_uid) or gid <= 0:
        return None
    return uid, gid, tuple(g for g in groups if isinstance(g, int) and g > 0)


def record(info: Any, ident: Any) -> bool:
    """Leave the note for an ended session; True if there is one now."""
    note = note_for(info)
    if note is None:
        return False
    from ood_k8s.core import fsutil
    from ood_k8s.core.errors import OodK8sError

    try:
        fsutil.run_as(ident.uid, ident.gid, tuple(ident.gids), _write, note.directory, note.text)
    except (OSError, OodK8sError):
        return False
    return True

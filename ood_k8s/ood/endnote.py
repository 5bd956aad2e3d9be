# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Why a session ended, kept beside its output log for the card's completed view (REFERENCE §10).

Once a card has shown ``completed`` the dashboard caches a bare completed Info and never asks
again, so the reason a poll returned is gone by the next refresh.  The poll that sees a session's
end therefore writes it, as the user, to ``ood-k8s-end.txt`` in the directory of the session's
output file -- for a Batch Connect session, its staged root, which the app's ``completed.html.erb``
reads.  One line, the same words the card showed: out of memory (with the limit), wall time
reached, image not found, crashed (with the exit code), evicted or reclaimed.

Best effort: a note that cannot be written never fails the poll.
"""

import os
from typing import Any, Dict, NamedTuple, Optional

NOTE_FILE = "ood-k8s-end.txt"

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
    if disruption:
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


def _write(directory: str, text: str) -> None:
    """Runs as the user: into a directory the user owns, atomically, never through a link."""
    from ood_k8s.core import fsutil

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return  # not the user's own session directory
        data = text.encode("utf-8")
        if fsutil.read_at(fd, NOTE_FILE, 4096) != data:
            fsutil.atomic_write_at(fd, NOTE_FILE, data, mode=0o644)
    finally:
        os.close(fd)


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

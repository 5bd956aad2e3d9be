"""Which script a launch runs: the dashboard's own copy, never another launch's (REFERENCE §10).

psij.rb writes every job script to the one path ``~/ood_tmp/run.sh`` and starts ``ood-k8s-psij`` a
moment later, so two launches at once (two tabs, a double click, two dashboard processes) overwrite
each other there.  Batch Connect writes the exact script to ``<directory>/job_script_content.sh``
first, in a directory of its own for each session (the psij spec's ``directory``): that file is
the script.  ``run.sh`` is used only

* when it holds that very script (then it is taken as psij.rb wrote it, ``#!`` line included), or
* for launches that are not Batch Connect sessions (no such file; the directory is not a staged
  session), where it is all there is.

A session directory without its script, or a script file that is not the user's own regular
file, is refused in one line: it cannot be trusted to be this launch's script.
"""

from __future__ import annotations

import os
import stat
from typing import Any, Callable

from ood_k8s.core.errors import SecurityError, UsageError
from ood_k8s.sessions.request import strip_native_tokens

MAX_SCRIPT = 1024 * 1024
CONTENT_FILE = "job_script_content.sh"
# Files the dashboard writes into every session directory before it submits (Session#submit, #stage).
_SESSION_FILES = ("job_script_options.json", "user_defined_context.json")
_AGAIN = "launch the session again from the dashboard"


def _decode(data: bytes, where: str) -> str:
    if len(data) > MAX_SCRIPT:
        raise UsageError(f"the job script {where} is larger than 1 MiB", "keep large data in files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the job script {where} is not UTF-8 text") from None


def read_script(path: str, uid: int | None) -> str:
    """The job script OOD wrote (``~/ood_tmp/run.sh``); with ``uid``, only a file that user owns."""
    expanded = os.path.expanduser(path)
    try:
        fd = os.open(expanded, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"cannot read the job script {expanded}: {exc.strerror}",
                         "OOD writes it to ~/ood_tmp/run.sh before submitting; check the home directory") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"the job script {expanded} is not a regular file")
        if uid is not None and st.st_uid != uid:
            # An admin acting for a user must not ship a file the user could not have written.
            raise SecurityError(f"the job script {expanded} is not owned by the user", "remove it and submit again")
        data = fh.read(MAX_SCRIPT + 1)
    return _decode(data, expanded)


def read_session_script(directory: str, uid: int) -> str | None:
    """``<directory>/job_script_content.sh`` if the directory has one; refuses one it cannot trust.

    None when there is no such file and the directory is not a Batch Connect session's.
    """
    where = os.path.join(directory, CONTENT_FILE)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # no such directory: not a staged session
    try:
        try:
            fd = os.open(CONTENT_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError:
            if any(os.path.lexists(os.path.join(directory, name)) for name in _SESSION_FILES):
                raise SecurityError(f"the session's job script {where} is missing",
                                    f"{_AGAIN}; this launch cannot be told from another one") from None
            return None
        except OSError as exc:
            raise SecurityError(f"cannot read the session's job script {where}: {exc.strerror}", _AGAIN) from None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or st.st_mode & stat.S_IWOTH:
            raise SecurityError(f"the session's job script {where} is not a file only you can change", _AGAIN)
        data = fh.read(MAX_SCRIPT + 1)
    return _decode(data, where)


def reader(directory: str | None, custom: dict[str, Any], uid: int, admin: bool) -> Callable[[str], str]:
    """``read(executable)`` for :func:`~ood_k8s.sessions.request.script_from_psij`: the script this
    launch runs (see the module doc), before its native tokens are stripped.  ``admin``: an
    administrator acts for the user, so ``run.sh`` too must be the user's own file."""
    staged = read_session_script(str(directory), uid) if directory else None

    def read(executable: str) -> str:
        if staged is None:
            return read_script(executable, uid if admin else None)
        try:
            written = read_script(executable, uid)
        except (UsageError, SecurityError):
            return staged  # run.sh is gone or not the user's: the session's own copy is enough
        body = strip_native_tokens(written, custom)
        first, newline, rest = body.partition("\n")
        if body == staged or (first.startswith("#!") and newline and rest == staged):
            return written  # exactly what psij.rb wrote for this launch
        return staged  # run.sh holds another launch's script

    return read

"""File-system operations that are safe to run as root next to files users control.

Rules enforced here: never follow a symlink at a component a user controls, write atomically
(temporary file in the same directory, fsync, rename), create secrets with their final mode from
the first byte (no window in which they are world-readable), chown only what was just created and
only through its file descriptor (never a path, never recursively).

The ``*_at`` helpers work relative to an open directory descriptor: once a directory is open, a
user renaming or replacing it (or anything above it) cannot redirect the operation elsewhere.
"""

import os
import stat
from typing import Any, Callable, Optional, Union

from ood_k8s.core.errors import OodK8sError, SecurityError

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# For a directory used only as the base of *at() calls: O_PATH needs search (x) permission, not
# read, so a user can start from a 0711 root-owned directory such as the token cache's.
O_SEARCH = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted by a user must not hang a root process.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW


def _refuse_link(where: str) -> SecurityError:
    return SecurityError(f"refusing to use {where}: it is a symbolic link",
                         "remove the link; ood-k8s never reads or writes through one")


def atomic_write_at(dir_fd: int, name: str, data: bytes, mode: int = 0o600, uid: Optional[int] = None,
                    gid: Optional[int] = None, where: Optional[str] = None) -> None:
    """Replace ``name`` in the open directory ``dir_fd`` with ``data``; refuse a symlink or non-file.

    ``uid``/``gid`` are applied to the new file through its descriptor before it becomes visible.
    """
    where = where or name
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise _refuse_link(where)
        if not stat.S_ISREG(st.st_mode):
            raise SecurityError(f"refusing to write {where}: it is not a regular file", "remove it")
    except FileNotFoundError:
        pass
    # Random, not just the pid: two threads of one process may write the same file at once.
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)  # umask may have narrowed or widened the create mode
            if uid is not None or gid is not None:
                os.fchown(fh.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
            os.fsync(fh.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path: str, data: bytes, mode: int = 0o600, uid: Optional[int] = None,
                 gid: Optional[int] = None) -> None:
    """Replace ``path`` with ``data`` atomically; refuse if ``path`` is a symlink."""
    directory = os.path.dirname(path) or "."
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        atomic_write_at(dir_fd, os.path.basename(path), data, mode, uid, gid, where=path)
    finally:
        os.close(dir_fd)


def read_at(dir_fd: int, name: str, max_bytes: int = 1 << 20, where: Optional[str] = None) -> Optional[bytes]:
    """Contents of regular file ``name`` in ``dir_fd``; None if missing; refuse links and non-files."""
    where = where or name
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if _is_link_error(exc, dir_fd, name):
            raise _refuse_link(where) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecurityError(f"refusing to read {where}: it is not a regular file", "remove it")
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise SecurityError(f"refusing to read {where}: larger than {max_bytes} bytes",
                                    "remove or shrink it")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _is_link_error(exc: OSError, dir_fd: Optional[int], name: str) -> bool:
    # O_NOFOLLOW on a symlink fails with ELOOP (Linux) -- confirm, as ELOOP has other causes.
    import errno

    if exc.errno not in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
        return False
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_lock_at(dir_fd: int, name: str, *, uid: Optional[int] = None, gid: Optional[int] = None,
                 where: Optional[str] = None) -> int:
    """Open (creating 0600) a lock file for flock; chown it only if this call created it."""
    where = where or name
    flags = os.O_RDWR | os.O_NONBLOCK | _NOFOLLOW
    try:
        fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except OSError as exc:
            if _is_link_error(exc, dir_fd, name):
                raise _refuse_link(where) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SecurityError(f"refusing to use {where}: it is not a regular file", "remove it") from None
        return fd
    os.fchmod(fd, 0o600)
    if uid is not None or gid is not None:
        os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
    return fd


def open_dir_at(dir_fd: Optional[int], name: str, *, create_mode: Optional[int] = None, uid: Optional[int] = None,
                gid: Optional[int] = None, owner_must_be: Optional[int] = None, where: Optional[str] = None) -> int:
    """Open directory ``name`` (relative to ``dir_fd``, or a path when ``dir_fd`` is None), never via a link.

    With ``create_mode`` a missing directory is created with that mode and, when given, chowned to
    ``uid``/``gid`` through its descriptor; an existing one is left as it is.  ``owner_must_be``
    refuses an existing directory owned by anybody else.  Returns the directory's descriptor.
    """
    where = where or name
    created = False
    if create_mode is not None:
        try:
            os.mkdir(name, create_mode, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            pass
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if _is_link_error(exc, dir_fd, name):
            raise _refuse_link(where) from None
        if isinstance(exc, NotADirectoryError):
            raise SecurityError(f"refusing to use {where}: it is not a directory", "remove it") from None
        raise
    try:
        st = os.fstat(fd)
        # Owned by us but meant for another owner: a concurrent call of ours created it and has not
        # chowned it yet (or died in between).  It is ours, not planted: finish the job if asked to.
        ours_in_progress = not created and owner_must_be is not None and st.st_uid == os.geteuid() != owner_must_be
        if ours_in_progress and create_mode is not None and uid == owner_must_be:
            created = True
        if created:
            os.fchmod(fd, create_mode)  # type: ignore[arg-type]  # umask must not narrow or widen it
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
        elif owner_must_be is not None and st.st_uid != owner_must_be and not ours_in_progress:
            raise SecurityError(f"refusing to use {where}: owned by uid {st.st_uid}, expected {owner_must_be}",
                                "remove it; ood-k8s recreates it with the right owner")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_home(home: str, home_root: str) -> int:
    """A search descriptor of the directory ``home``, reached without following a symlink at it or at
    any component below ``home_root`` (the admin's path, followed like any path an admin names).

    A home outside ``home_root`` is reached through its parent (the directory service's path), the
    home itself never through a link.  A link or non-directory on the way is a one-line refusal.
    """
    if not home.startswith("/") or os.path.normpath(home) != home:
        raise SecurityError(f"home directory path {home!r} is not a normalised absolute path",
                            "fix the user's home in the directory service (passwd/LDAP)")
    root = os.path.normpath(home_root or "/")
    prefix = root.rstrip("/") + "/"
    if home.startswith(prefix):
        base, parts = root, home[len(prefix):].split("/")
    else:
        base, parts = os.path.dirname(home), [os.path.basename(home)]

    def step(fd: int, part: str, where: str) -> int:
        try:
            return os.open(part, O_SEARCH | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            if _is_link_error(exc, fd, part):
                raise SecurityError(f"refusing home {home}: {where} is a symbolic link",
                                    "replace the link by the real directory; ood-k8s never writes "
                                    "into a home through a link") from None
            if isinstance(exc, NotADirectoryError):
                raise SecurityError(f"refusing home {home}: {where} is not a directory",
                                    "move it away; ood-k8s then creates the home") from None
            raise

    return _descend(os.open(base, O_SEARCH), base, parts, step)


def _descend(fd: int, base: str, parts: list[str], step: Callable[[int, str, str], int]) -> int:
    """Walk ``parts`` down from the directory ``fd`` (consumed), ``step(fd, part, path)`` opening each
    next one; the last descriptor.  Nothing leaks when a step raises."""
    where = base.rstrip("/")
    try:
        for part in parts:
            where = f"{where}/{part}"
            nxt = step(fd, part, where)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def walk_dirs(root: str, parts: list[str], *, create_mode: Optional[int] = None, uid: Optional[int] = None,
              gid: Optional[int] = None, root_fd: Optional[int] = None) -> int:
    """Open ``root`` (followed: an admin-controlled path) then each of ``parts`` below it without
    following links, creating missing ones with ``create_mode``.  Returns the last descriptor.

    With ``root_fd`` (a descriptor of ``root`` the caller opened safely, e.g. :func:`open_home`) the
    walk starts from a duplicate of it instead; the caller keeps and closes its own."""
    fd = os.open(root, O_SEARCH) if root_fd is None else os.dup(root_fd)
    return _descend(fd, root, parts, lambda at, part, where: open_dir_at(
        at, part, create_mode=create_mode, uid=uid, gid=gid, where=where))


def check_relative(path: str, what: str) -> list[str]:
    """The components of a relative path that stays below its base (no '..', no absolute path)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or not parts or any(p == ".." for p in parts):
        from ood_k8s.core.errors import ConfigError

        raise ConfigError(f"{what}: got {path!r}, expected a path relative to the home directory without '..'")
    return parts


# --- acting as another user ----------------------------------------------------------------------


def run_as(uid: int, gid: int, groups: Union[tuple[int, ...], list[int]], fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` with the given credentials and return its result (bytes/str/numbers/tuples).

    As root this forks a child that drops to the user (setgroups, setgid, setuid -- in that order,
    irrevocably) so the kernel, not our checks, decides what it may touch: that is the only way that
    also works on NFS homes exported with root_squash, where root is nobody.  The child runs only
    ``os``-level code and sends its result through a pipe with :mod:`marshal`; it never logs, imports
    or returns to the caller's code (``os._exit``), so forking a threaded process is safe.  When
    already running as ``uid``, ``fn`` runs in-process.
    """
    euid = os.geteuid()
    if euid == uid:
        return fn(*args)
    if euid != 0:
        raise SecurityError(f"cannot act as uid {uid} while running as uid {euid}",
                            "run this as root (the hook and admin commands) or as that user")
    import marshal

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            try:
                out: tuple = ("ok", fn(*args))
            except OodK8sError as exc:
                out = ("err", type(exc).__name__, exc.message, exc.hint)
            except OSError as exc:
                out = ("oserror", exc.errno, exc.strerror or "", str(exc.filename or ""))
            os.write(w, marshal.dumps(out))
        except BaseException:  # never let the child run the parent's code
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    try:
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if not chunks:
        raise SecurityError(f"could not switch to uid {uid}", "check that the user's uid and gid exist")
    out = marshal.loads(b"".join(chunks))  # noqa: S302 - written by our own child
    if out[0] == "ok":
        return out[1]
    if out[0] == "oserror":
        raise OSError(out[1], out[2], out[3] or None)
    from ood_k8s.core import errors

    cls = getattr(errors, out[1], errors.OodK8sError)
    raise cls(out[2], out[3])


def flock_wait(fd: int, timeout: float, on_timeout: Callable[[], Exception], *,
               clock: Callable[[], float], sleep: Callable[[float], None], poll: float = 0.01) -> None:
    """Take an exclusive flock on ``fd``, waiting up to ``timeout`` seconds (backing off to 0.5 s).

    Polling with LOCK_NB instead of a blocking flock keeps the wait bounded and the clock injectable.
    """
    import errno
    import fcntl

    deadline = clock() + timeout
    delay = poll
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if clock() >= deadline:
            raise on_timeout()
        sleep(delay)
        delay = min(delay * 2, 0.5)

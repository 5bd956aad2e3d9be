"""Portal side of home directories: create a missing $HOME safely, as root, next to users' files
(:func:`ensure_home`), and report what the portal sees there (:func:`finding`).

The hook runs this as root on every login, in directories users can write to, so every step is
written against a user racing it:

* the path is walked from ``storage.home_root`` one component at a time with
  ``O_NOFOLLOW | O_DIRECTORY`` (openat style), so no symlink anywhere below the root is followed;
* an existing home is never chowned or chmodded; a symlink, a non-directory or a directory owned
  by anyone but the user is refused with a one-line :class:`SecurityError`, changing nothing;
* a new home is made root-owned 0700 first, filled from the skeleton through directory file
  descriptors (files created ``O_EXCL | O_NOFOLLOW``, symlinks in the skeleton copied as links and
  never followed), and handed to the user by ``fchown`` LAST -- until then the user cannot enter
  it, so there is nothing to race.  A failure half-way removes what was made.

Nothing is ever chowned recursively: each file is chowned once, through the descriptor that
created it.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import ExitStack
from typing import Any

from ood_k8s.core.errors import OodK8sError, SecurityError
from ood_k8s.core.identity import Identity
from ood_k8s.storage.backend import Finding


def _log() -> Any:
    # logging costs ~5 ms to import; the hook's fast path never logs from here.
    import logging

    return logging.getLogger(__name__)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RACE_ATTEMPTS = 8  # looks at a home path someone keeps changing before ood-k8s refuses it
MAX_DEPTH = 32  # of the skeleton tree; a deeper one is an admin mistake, not a home
_CHUNK = 1 << 20


def _components(home: str, home_root: str) -> list[str] | None:
    """The path components of ``home`` below ``home_root``, or None if it is not below it."""
    if not home.startswith("/") or os.path.normpath(home) != home:
        raise SecurityError(f"home directory path {home!r} is not a normalised absolute path",
                            "fix the user's home in the directory service (passwd/LDAP)")
    root = os.path.normpath(home_root)
    prefix = root if root.endswith("/") else root + "/"
    if not home.startswith(prefix):
        return None
    return home[len(prefix):].split("/")


def describe_stat(st: os.stat_result) -> str:
    """``uid:gid 0700 directory`` as an admin wants to read it."""
    kind = ("directory" if stat.S_ISDIR(st.st_mode) else "symbolic link" if stat.S_ISLNK(st.st_mode)
            else "regular file" if stat.S_ISREG(st.st_mode) else "special file")
    return f"{st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):04o} {kind}"


def _judge_existing(home: str, st: os.stat_result, ident: Identity) -> None:
    """Accept an existing home as it is, or refuse it; never change it."""
    if stat.S_ISLNK(st.st_mode):
        raise SecurityError(f"refusing home {home}: it is a symbolic link",
                            "replace the link by the real directory; ood-k8s never follows a link into a home")
    if not stat.S_ISDIR(st.st_mode):
        raise SecurityError(f"refusing home {home}: it is not a directory ({describe_stat(st)})",
                            "move it away; ood-k8s then creates the home")
    if st.st_uid != ident.uid:
        raise SecurityError(f"refusing home {home}: it belongs to uid {st.st_uid}, not to "
                            f"{ident.username} (uid {ident.uid})",
                            "check who should own it; ood-k8s never chowns an existing directory")


def would_create(ident: Identity, home_root: str) -> bool:
    """Whether :func:`ensure_home` would create ``ident.home`` now (a dry run's question; no change).
    Raises what :func:`ensure_home` would raise on the way (a missing ``home_root`` or parent), so a
    dry run never promises what the real run then refuses."""
    comps = _components(ident.home, home_root)
    if comps is None or inspect(ident.home) is not None:
        return False
    with ExitStack() as stack:
        _open_parent(ident.home, home_root, comps[:-1], stack)  # opens only: the real run's first step
    return True


def ensure_home(ident: Identity, home_root: str, skeleton_dir: str | None = None) -> bool:
    """Make sure ``ident.home`` exists; True if it was created now (0700, uid:gid, skeleton copied).

    A home outside ``home_root`` is never created (False, logged).  Raises SecurityError when the
    home or a directory on the way is a symlink, not a directory, or owned by someone else.
    """
    if ident.uid <= 0 or ident.gid <= 0:
        raise SecurityError(f"refusing to create a home for {ident.username}: uid/gid {ident.uid}:{ident.gid} "
                            "is root's", "sessions never run as root")
    comps = _components(ident.home, home_root)
    if comps is None:
        _log().info("home %s of %s is not under storage.home_root %s; not creating it",
                     ident.home, ident.username, home_root)
        return False
    with ExitStack() as stack:
        parent = _open_parent(ident.home, home_root, comps[:-1], stack)
        name = comps[-1]
        # Look, then mkdir; a failed mkdir means someone made something there in between, which may be
        # gone again by the next look (a link planted and removed): look again, a bounded number of times.
        for _ in range(RACE_ATTEMPTS):
            try:
                _judge_existing(ident.home, os.stat(name, dir_fd=parent, follow_symlinks=False), ident)
                return False
            except FileNotFoundError:
                pass
            _check_parent(ident.home, parent)
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                continue
            except OSError as exc:
                raise OodK8sError(f"cannot create home {ident.home}: {exc.strerror}",
                                  "check that the home file system is mounted read-write on the portal") from None
            _fill_new_home(ident, parent, name, skeleton_dir)
            _log().info("created home %s for %s (uid %d, gid %d, mode 0700)", ident.home, ident.username,
                         ident.uid, ident.gid)
            return True
    raise SecurityError(f"refusing home {ident.home}: something kept appearing and vanishing there while "
                        "ood-k8s created it", f"check who can write to {os.path.dirname(ident.home)}")


def _open_parent(home: str, home_root: str, comps: list[str], stack: ExitStack) -> int:
    """A descriptor of the home's parent, reached without following any symlink below the root."""
    try:
        fd = os.open(home_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root is the admin's
    except OSError as exc:
        raise OodK8sError(f"cannot open storage.home_root {home_root}: {exc.strerror}",
                          "mount the home file system there or fix storage.home_root") from None
    stack.callback(os.close, fd)
    where = home_root.rstrip("/")
    for comp in comps:
        where = f"{where}/{comp}"
        try:
            fd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SecurityError(f"refusing home {home}: {where} is a symbolic link or not a directory",
                                    "ood-k8s never follows a link on the way to a home") from None
            raise OodK8sError(f"cannot create home {home}: {where}: {exc.strerror}",
                              "create the parent directory first; ood-k8s creates only the home itself") from None
        stack.callback(os.close, fd)
    return fd


def _check_parent(home: str, parent: int) -> None:
    """Creating is safe only where no one but root can rename or replace what we make."""
    st = os.fstat(parent)
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise SecurityError(f"refusing to create home {home}: its parent {os.path.dirname(home)} is writable by "
                            f"others ({describe_stat(st)}) without the sticky bit",
                            "make the parent writable by root only (chmod go-w)")


def _fill_new_home(ident: Identity, parent: int, name: str, skeleton_dir: str | None) -> None:
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:  # our directory was swapped or removed (only possible in a sticky parent)
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise
        raise SecurityError(f"refusing home {ident.home}: it changed while being created",
                            "check who can write to its parent directory") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            # Not the directory our mkdir made: someone with write access to the parent swapped it.
            raise SecurityError(f"refusing home {ident.home}: it changed while being created",
                                "check who can write to its parent directory")
        try:
            os.fchmod(fd, 0o700)  # mkdir's mode was narrowed by the umask, never widened; make it exact
            if skeleton_dir:
                _copy_skeleton(skeleton_dir, fd, ident)
            os.fchown(fd, ident.uid, ident.gid)  # last: only now can the user enter
        except BaseException:
            _empty(fd)
            os.rmdir(name, dir_fd=parent)
            raise
    finally:
        os.close(fd)


def _copy_skeleton(skeleton_dir: str, dst: int, ident: Identity) -> None:
    try:
        src = os.open(skeleton_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the admin's path
    except FileNotFoundError:
        _log().info("skeleton %s does not exist; the new home starts empty", skeleton_dir)
        return
    try:
        _copy_tree(src, dst, ident, 0)
    except OSError as exc:
        raise OodK8sError(f"cannot copy skeleton {skeleton_dir} into {ident.home}: {exc}",
                          "check storage.skeleton_dir; the half-made home was removed") from None
    finally:
        os.close(src)


def _copy_tree(src: int, dst: int, ident: Identity, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise OodK8sError(f"skeleton is nested deeper than {MAX_DEPTH} directories", "flatten storage.skeleton_dir")
    with os.scandir(src) as entries:
        names = sorted(e.name for e in entries)
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode) & 0o777  # never setuid/setgid/sticky in a user's home
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, ident.uid, ident.gid, dir_fd=dst, follow_symlinks=False)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, _DIR_FLAGS, dir_fd=src)
            try:
                d = os.open(name, _DIR_FLAGS, dir_fd=dst)
                try:
                    _copy_tree(s, d, ident, depth + 1)
                    os.fchmod(d, mode)
                    os.fchown(d, ident.uid, ident.gid)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(src, dst, name, mode, ident)
        # sockets, FIFOs and devices have no place in a skeleton: skipped


def _copy_file(src: int, dst: int, name: str, mode: int, ident: Identity) -> None:
    # O_NONBLOCK: if the entry was swapped for a FIFO since the stat, open must not hang.
    s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src)
    try:
        if not stat.S_ISREG(os.fstat(s).st_mode):
            return
        d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst)
        try:
            while True:
                chunk = os.read(s, _CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(d, view):]
            os.fchmod(d, mode)
            os.fchown(d, ident.uid, ident.gid)
        finally:
            os.close(d)
    finally:
        os.close(s)


def _empty(fd: int) -> None:
    """Remove everything inside the directory ``fd`` (ours, still root-only), never following links."""
    with os.scandir(fd) as entries:
        names = [e.name for e in entries]
    for name in names:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                _empty(sub)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)


def inspect(path: str) -> os.stat_result | None:
    """What the portal sees at ``path`` without following a final symlink (None if absent)."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def finding(ident: Identity, home_root: str, create_home: bool) -> Finding:
    """``storage check``'s row for the home as the portal sees it (read only; no link followed)."""
    what = "home directory"
    pod = f"mounted at {ident.home}"
    st = inspect(ident.home)
    if st is None:
        root = os.path.normpath(home_root).rstrip("/") + "/"
        if create_home and ident.home.startswith(root):
            return Finding(what, f"{ident.home}: missing", pod, "warn",
                           "created 0700 at the user's next login (or run the hook for the user now)")
        return Finding(what, f"{ident.home}: missing", pod, "error",
                       f"create it: install -d -o {ident.uid} -g {ident.gid} -m 0700 {ident.home}")
    seen = f"{ident.home}: {describe_stat(st)}"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return Finding(what, seen, pod, "error", "replace it by a real directory owned by the user (ood-k8s never "
                       "follows a link into a home)")
    if st.st_uid != ident.uid:
        return Finding(what, seen, pod, "error", f"the pod writes as uid {ident.uid}: chown {ident.uid}:{ident.gid} "
                       f"{ident.home} if it is the user's (ood-k8s never chowns an existing home)")
    if st.st_gid != ident.gid:
        return Finding(what, seen, pod, "warn", f"chgrp {ident.gid} {ident.home} so group ownership matches too")
    if st.st_mode & 0o022:
        return Finding(what, seen, pod, "warn", f"others can write into it: chmod go-w {ident.home}")
    return Finding(what, seen, pod, "ok")

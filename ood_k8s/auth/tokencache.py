# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Per-user token cache on the portal's local disk: ``<token_cache_dir>/<slug>/tokens.json``.

Layout and ownership (the hook writes as root, the credential plugin and adapter run as the user)::

    <token_cache_dir>/          root, 0711: users may reach their own directory, not list others
    <token_cache_dir>/<slug>/   the user, 0700
        tokens.json             the user, 0600: ID token, refresh token, their expiry, how to refresh
        lock                    the user, 0600: flock'ed while tokens are minted or refreshed

The cache lives off the home directory on purpose: homes are mounted into pods, and a token that
a notebook can read is a token any code the student runs can steal.  Everything is reached through
directory descriptors with O_NOFOLLOW, so a user who controls their own directory cannot make the
root-side hook read or chown anything else.  Writes are atomic renames, so readers never take the
lock; the lock only serialises minting and refreshing (one refresh instead of a thundering herd,
and no lost rotated refresh token).
"""

import contextlib
import json
import os
import stat
import time
from typing import Any, Callable, Iterator, NamedTuple, Optional

from ood_k8s.core import fsutil, names
from ood_k8s.core.errors import CredentialError, OodK8sError, SecurityError

FILE = "tokens.json"
LOCK = "lock"
VERSION = 1
MAX_BYTES = 256 * 1024
MAX_DEPTH = 8  # of sub-directories a user may have made in their cache directory, for remove()


class Tokens(NamedTuple):
    """One user's tokens and what is needed to refresh them without the site config.

    A NamedTuple rather than a dataclass: importing dataclasses (and inspect) would be the largest
    cost of the credential plugin, which kubectl starts for every command.
    """

    id_token: str
    id_expires_at: float
    refresh_token: str
    refresh_expires_at: float
    mode: str                # the identity provider's (ood_k8s.auth.provider): "cognito", "oidc"...
    issuer: str
    client_id: str
    token_endpoint: str      # Cognito API endpoint, or the OIDC token endpoint ("" = discover)
    margin: int = 300        # seconds before expiry at which the ID token is renewed
    updated_at: float = 0.0

    def id_valid(self, now: float) -> bool:
        return bool(self.id_token) and now < self.id_expires_at - self.margin

    def refresh_valid(self, now: float, ahead: float = 0.0) -> bool:
        return bool(self.refresh_token) and now + ahead < self.refresh_expires_at

    def replace(self, **changes: Any) -> "Tokens":
        return self._replace(**changes)

    def __repr__(self) -> str:  # tokens never reach a log line through repr()
        return (f"Tokens(mode={self.mode!r}, issuer={self.issuer!r}, client_id={self.client_id!r}, "
                f"id_expires_at={self.id_expires_at}, refresh_expires_at={self.refresh_expires_at})")


_TYPES: dict[str, type] = {"id_token": str, "id_expires_at": float, "refresh_token": str, "refresh_expires_at": float,
                           "mode": str, "issuer": str, "client_id": str, "token_endpoint": str, "margin": int,
                           "updated_at": float}


def _decode(data: bytes) -> Optional[Tokens]:
    """Parse a cache file; anything malformed (it is user-writable) reads as no cache."""
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        return None
    kwargs: dict[str, Any] = {}
    for name, tp in _TYPES.items():
        value = raw.get(name)
        if value is None and name in ("margin", "updated_at"):
            continue
        if tp is str and isinstance(value, str):
            kwargs[name] = value
        elif tp is not str and isinstance(value, (int, float)) and not isinstance(value, bool):
            kwargs[name] = tp(value)
        else:
            return None
    return Tokens(**kwargs)


class TokenCache:
    """The token cache of one user. ``owner`` (uid, gid) is given when root writes for the user."""

    def __init__(self, directory: str, username: str, *, clock: Callable[[], float] = time.time,
                 owner: Optional[tuple[int, int]] = None, sleep: Callable[[float], None] = time.sleep,
                 lock_timeout: float = 30.0) -> None:
        names.check_username(username)
        self.directory = directory
        self.username = username
        self.slug = names.slug(username)
        self.user_dir = os.path.join(directory, self.slug)
        self.path = os.path.join(self.user_dir, FILE)
        self.clock = clock
        self.owner = owner
        self.sleep = sleep
        self.lock_timeout = lock_timeout
        self._lock_depth = 0

    # --- directories --------------------------------------------------------------------------

    def _open_user_dir(self, create: bool) -> Optional[int]:
        """Descriptor of the user's directory; None if it does not exist and create is False."""
        if create and self.owner is not None:
            self.ensure_base()
        try:
            base = os.open(self.directory, fsutil.O_SEARCH)
        except FileNotFoundError:
            if not create:
                return None
            _make_dirs(self.directory)
            base = os.open(self.directory, fsutil.O_SEARCH)
        except PermissionError:
            raise self._unreachable() from None
        try:
            uid, gid = self.owner if self.owner is not None else (None, None)
            try:
                return fsutil.open_dir_at(base, self.slug, create_mode=0o700 if create else None, uid=uid,
                                          gid=gid, owner_must_be=uid, where=self.user_dir)
            except FileNotFoundError:
                return None
            except PermissionError:
                raise self._unreachable() from None
        finally:
            os.close(base)

    def _unreachable(self) -> CredentialError:
        """Why this process may not open its cache directory: the first directory on the way it may
        not search (a root created with a strict umask, say), else the user directory's owner."""
        where = "/"
        for part in [p for p in self.user_dir.split("/") if p]:
            where = os.path.join(where, part)
            if os.access(where, os.X_OK):
                continue
            try:
                st = os.stat(where)
                seen = f"mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}"
            except OSError as exc:
                seen = exc.strerror or "cannot stat it"
            if where != self.user_dir:
                return CredentialError(f"cannot reach the token cache: {where} is not searchable by uid "
                                       f"{os.geteuid()} ({seen})", f"ask your administrator to run: chmod o+x {where} "
                                       f"({self.directory} must be mode 0711, owned by root)")
            return CredentialError(f"cannot open the token cache {where} ({seen})",
                                   "it belongs to another user; ask your administrator")
        return CredentialError(f"cannot open the token cache {self.user_dir}", "ask your administrator to check "
                               "users.token_cache_dir")

    def ensure_base(self) -> None:
        """Root side: the cache root exists, root-owned, mode 0711 whatever the umask.

        Users must search it to reach their own directory (x) but not list it (no r) nor write it
        (they could swap another user's directory).  A root-owned directory that lacks the search
        bits (made under ``umask 027``, say) is repaired; one writable by others, owned by someone
        else or not a directory is refused: something may have been planted in it.
        """
        _make_dirs(self.directory)
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            raise SecurityError(f"refusing to use token cache {self.directory}: not a directory (or a symbolic "
                                "link)", "fix users.token_cache_dir") from None
        try:
            st = os.fstat(fd)
            mode = stat.S_IMODE(st.st_mode)
            if st.st_uid != os.geteuid() or mode & 0o022:
                raise SecurityError(f"refusing to use token cache {self.directory}: owned by uid {st.st_uid} "
                                    f"with mode {oct(mode)}",
                                    f"make it root-owned and not group/world-writable (chmod 0711 {self.directory})")
            if mode & 0o011 != 0o011:
                os.fchmod(fd, 0o711)  # ours, not a link, writable only by us: safe to repair
        finally:
            os.close(fd)

    # --- reading and writing --------------------------------------------------------------------

    def read(self) -> Optional[Tokens]:
        """The cached tokens, or None when there are none (or the file is unusable)."""
        fd = self._open_user_dir(create=False)
        if fd is None:
            return None
        try:
            data = fsutil.read_at(fd, FILE, MAX_BYTES, where=self.path)
        except PermissionError:
            raise CredentialError(f"cannot read the token cache {self.path}",
                                  "it belongs to another user; ask your administrator") from None
        finally:
            os.close(fd)
        return None if data is None else _decode(data)

    def write(self, tokens: Tokens) -> None:
        """Store ``tokens`` atomically (0600, owned by the user)."""
        record = tokens._asdict()
        record["updated_at"] = self.clock()
        record["version"] = VERSION
        data = json.dumps(record, sort_keys=True).encode()
        fd = self._open_user_dir(create=True)
        assert fd is not None
        try:
            uid, gid = self.owner if self.owner is not None else (None, None)
            if uid is None and os.geteuid() == 0:
                # Root refreshing for a user (an admin running kubectl with the user's kubeconfig):
                # the file must stay the user's, who owns the directory, or their plugin breaks.
                st = os.fstat(fd)
                uid, gid = st.st_uid, st.st_gid
            fsutil.atomic_write_at(fd, FILE, data, 0o600, uid, gid, where=self.path)
        finally:
            os.close(fd)

    def clear(self) -> bool:
        """Forget the user's tokens (teardown). True if there was a cache file."""
        fd = self._open_user_dir(create=False)
        if fd is None:
            return False
        try:
            os.unlink(FILE, dir_fd=fd)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(fd)

    def remove(self) -> bool:
        """Delete the user's cache directory and all in it (user teardown). True if there was one.

        Only ``<token_cache_dir>/<slug>`` is touched, through directory descriptors: the directory
        is the user's, who may have put links, FIFOs or sub-directories in it, and none of that may
        make root delete anything else.  A link (or non-directory) at ``<slug>`` itself is refused.
        """
        try:
            base = os.open(self.directory, fsutil.O_SEARCH)
        except FileNotFoundError:
            return False
        try:
            try:
                st = os.stat(self.slug, dir_fd=base, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if not stat.S_ISDIR(st.st_mode):
                what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise SecurityError(f"refusing to remove the token cache {self.user_dir}: it is {what}",
                                    "look at it and remove it by hand; ood-k8s never deletes through a link")
            try:
                fd = fsutil.open_dir_at(base, self.slug, where=self.user_dir)
                try:
                    _empty_dir(fd, self.user_dir, 0)
                finally:
                    os.close(fd)
                os.rmdir(self.slug, dir_fd=base)
            except FileNotFoundError:
                return True  # gone meanwhile (another teardown)
            except OSError as exc:
                # e.g. a process of the user writing into it right now (ENOTEMPTY)
                raise OodK8sError(f"cannot remove the token cache {self.user_dir}: {exc.strerror}",
                                  "end the user's processes on this portal and run the teardown again") from None
            return True
        finally:
            os.close(base)

    @contextlib.contextmanager
    def locked(self) -> "Iterator[TokenCache]":
        """Hold the user's cache lock (re-entrant within this object).

        Waits at most ``lock_timeout`` seconds: the lock file belongs to the user, and a process of
        theirs holding it forever must not hang the root-side hook.
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield self
            finally:
                self._lock_depth -= 1
            return
        fd = self._open_user_dir(create=True)
        assert fd is not None
        try:
            lock_fd = self._open_lock(fd)
        finally:
            os.close(fd)
        try:
            fsutil.flock_wait(lock_fd, self.lock_timeout, lambda: CredentialError(
                f"the token cache of {self.username} stayed locked for {self.lock_timeout:g} s",
                "try again; if it persists, stop the process holding "
                f"{os.path.join(self.user_dir, LOCK)}"), clock=self.clock, sleep=self.sleep)
            self._lock_depth = 1
            try:
                yield self
            finally:
                self._lock_depth = 0
        finally:
            os.close(lock_fd)  # closing releases the flock

    def _open_lock(self, dir_fd: int) -> int:
        uid, gid = self.owner if self.owner is not None else (None, None)
        return fsutil.open_lock_at(dir_fd, LOCK, uid=uid, gid=gid, where=os.path.join(self.user_dir, LOCK))


def _make_dirs(path: str, mode: int = 0o711) -> None:
    """Create ``path`` (``mode``) and its missing parents (0755) with explicit modes: ``os.makedirs``
    would apply the umask, and a root made 0710 under ``umask 027`` shuts every user out of their
    own cache."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip("/"))
    if parent and parent != path:
        _make_dirs(parent, 0o755)
    try:
        os.mkdir(path, 0o700)  # then chmod: mkdir's mode is narrowed by the umask
    except FileExistsError:
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _empty_dir(fd: int, where: str, depth: int) -> None:
    """Remove everything in the open directory ``fd``; links are unlinked, never followed."""
    if depth > MAX_DEPTH:
        raise SecurityError(f"refusing to remove {where}: directories nested more than {MAX_DEPTH} deep",
                            "look at it and remove it by hand")
    with os.scandir(fd) as entries:
        found = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in found:
        if is_dir:
            sub = fsutil.open_dir_at(fd, name, where=os.path.join(where, name))  # refuses a link swapped in
            try:
                _empty_dir(sub, os.path.join(where, name), depth + 1)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)

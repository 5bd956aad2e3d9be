"""Many users at once (``ood-k8s user setup|sync``): who, in parallel, with progress and a summary.

Each user goes through the same :func:`ood_k8s.users.provision.ensure` as their login would, under
the same per-user lock; one user's failure never stops the rest, and the summary says who failed
and why, so a class of 300 can be made ready before the first lecture and the run repeated safely.
"""

from __future__ import annotations

import grp
import pwd
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Optional, TextIO

from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError, UsageError
from ood_k8s.core.kube import KubeClient
from ood_k8s.users import provision

# (username, what ensure() did or None, error text or None); a runtime alias, so not ``X | None``.
Result = tuple[str, Optional[provision.Outcome], Optional[str]]

_ORDER = ("created", "updated", "current", "would-create", "would-update", "failed")
_WORDS = {"current": "already current"}


def run_many(cfg: Config, usernames: list[str], connect: Callable[[], KubeClient], *, jobs: int = 8,
             dry_run: bool = False, force: bool = False,
             on_done: Callable[[bool], None] | None = None) -> list[Result]:
    """Provision ``usernames`` with at most ``jobs`` at once; one user's failure never stops the rest.

    ``connect()`` makes a client; each worker thread gets its own, so the API requests an outcome
    reports are its user's.  Returns ``[(username, Outcome | None, error text | None)]`` in the
    order given.  ``on_done(ok)`` is called (in the calling thread) as each user finishes.
    """
    local = threading.local()

    def one(username: str) -> Result:
        try:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = connect()
            return username, _ensure_one(cfg, username, client, dry_run=dry_run, force=force), None
        except OodK8sError as err:
            return shown(username), None, str(err)
        except Exception as exc:  # a bug must not stop a class of 300 half-way
            return shown(username), None, f"internal error {type(exc).__name__}: {exc}"

    results: dict[int, Result] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, u): i for i, u in enumerate(usernames)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if on_done is not None:
                on_done(results[futures[future]][2] is None)
    return [results[i] for i in range(len(usernames))]


def _ensure_one(cfg: Config, username: str, client: KubeClient, *, dry_run: bool, force: bool) -> provision.Outcome:
    ident = provision.admit(cfg, username)
    if dry_run:
        return provision.ensure(cfg, ident, client, dry_run=True)
    with provision.user_lock(cfg, username):
        return provision.ensure(cfg, ident, client, force=force)


def summarise(results: list[Result], seconds: float, source: str = "") -> str:
    """One line: how many users, from where, how long, and how many of each outcome."""
    counts: dict[str, int] = {}
    for _, outcome, error in results:
        key = "failed" if error is not None or outcome is None else outcome.action
        counts[key] = counts.get(key, 0) + 1
    parts = [f"{counts[k]} {_WORDS.get(k, k)}" for k in _ORDER if counts.get(k)]
    where = f" from {source}" if source else ""
    return f"{len(results)} users{where} in {seconds:.1f} s: " + (", ".join(parts) or "nothing to do")


def members_of_group(group: str) -> list[str]:
    """Members of a Unix group: its member list plus users whose primary group it is (when NSS
    enumerates users)."""
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        raise UsageError(f"group '{shown(group)}' is not known to this host (NSS)",
                         "check the name, or that LDAP/SSSD answers on this machine") from None
    members = list(dict.fromkeys(entry.gr_mem))
    for pw in pwd.getpwall():
        if pw.pw_gid == entry.gr_gid and pw.pw_name not in members:
            members.append(pw.pw_name)
    return members


def read_user_file(path: str) -> list[str]:
    """Usernames, one per line (first field of a comma- or space-separated line); '#' starts a comment."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", "name a file of usernames, one per line") from None
    users = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            users.append(re.split(r"[,\s]+", line, maxsplit=1)[0])
    return unique(users)


class Progress:
    """A one-line progress bar on a terminal; silent when ``stream`` is not one (logs, cron)."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.done = self.failed = 0
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._clock = time.monotonic
        self._last = float("-inf")

    def step(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        now = self._clock()
        if self._tty and (now - self._last >= 0.05 or self.done == self.total):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        filled = self.width * self.done // max(1, self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r[{bar}] {self.done}/{self.total}{failed}")
        self.stream.flush()

    def finish(self) -> None:
        if self._tty and self.total:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def unique(items: list[str]) -> list[str]:
    """``items`` without repeats, in their first order."""
    return list(dict.fromkeys(items))


def shown(text: str) -> str:
    """Printable form of text that may come from a hostile file or directory."""
    return text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text

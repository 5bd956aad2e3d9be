"""``ood-k8s user setup|teardown|list|sync``: users' namespaces, Cognito users and storage, by an admin.

``setup`` and ``sync`` do what a user's login does (without writing their tokens or kubeconfig,
which need the login), so a whole class can be ready before the first lecture.  Every command
takes ``--dry-run`` and then shows what would change, changing nothing.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Callable, Optional, TextIO, Tuple

if TYPE_CHECKING:  # annotations only: the real imports happen in the handlers
    from ood_k8s.config import Config
    from ood_k8s.core.kube import KubeClient
    from ood_k8s.users.provision import Outcome

    Result = Tuple[str, Optional[Outcome], Optional[str]]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("user", help="provision, list and remove users (namespace, Cognito user, storage)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def common(q: argparse.ArgumentParser, jobs: int = 0) -> None:
        q.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
        if jobs:
            q.add_argument("--jobs", type=_positive_int, default=jobs, metavar="N",
                           help=f"users handled at once (default {jobs})")

    setup = verbs.add_parser("setup", help="provision users now, as their next login would")
    setup.add_argument("users", nargs="+", metavar="USER")
    setup.add_argument("--force", action="store_true", help="re-apply even when the user looks current")
    common(setup, jobs=8)
    setup.set_defaults(handler=_setup)

    teardown = verbs.add_parser("teardown", help="delete users' namespaces (ending their sessions) and their "
                                "token caches on this portal; home directory data is kept unless --delete-home-data")
    teardown.add_argument("users", nargs="+", metavar="USER")
    teardown.add_argument("--delete-home-data", action="store_true",
                          help="also delete the data of the home directory (EFS access point data...)")
    teardown.add_argument("--delete-cognito-user", action="store_true", help="also delete the Cognito user")
    common(teardown)
    teardown.set_defaults(handler=_teardown)

    listing = verbs.add_parser("list", help="users with a namespace: Cognito state, sessions, GPUs, last login")
    listing.add_argument("--output", "-o", choices=("table", "json"), default="table")
    listing.add_argument("--no-cognito", action="store_true", help="do not ask Cognito for each user's state")
    common(listing)
    listing.set_defaults(handler=_list)

    sync = verbs.add_parser("sync", help="provision every member of a Unix group or every user in a file "
                            "(safe to re-run; failures are summarised, the rest go on)")
    source = sync.add_mutually_exclusive_group(required=True)
    source.add_argument("--group", metavar="GROUP", help="Unix group (NSS) whose members to provision")
    source.add_argument("--file", metavar="FILE", help="file with one username per line ('#' comments; '-': stdin)")
    sync.add_argument("--force", action="store_true", help="re-apply even for users that look current")
    common(sync, jobs=16)
    sync.set_defaults(handler=_sync)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# --- handlers -------------------------------------------------------------------------------------


def _client(cfg: Config) -> KubeClient:
    from ood_k8s.kubeconfig.clients import as_provisioner

    return as_provisioner(cfg)


def _setup(args: argparse.Namespace) -> int:
    import sys

    from ood_k8s.cli import load_config

    cfg = load_config(args)
    results = run_many(cfg, _unique(args.users), lambda: _client(cfg), jobs=args.jobs, dry_run=args.dry_run,
                       force=args.force)
    for username, outcome, error in results:
        if error is not None:
            print(f"{username}: FAILED: {error}", file=sys.stderr)
            continue
        n = outcome.round_trips
        print(f"{username}: {outcome.action} (namespace {outcome.namespace}, {n} API request{'s' if n != 1 else ''})")
        for change in outcome.changes:
            print(f"  {change}")
    return 1 if any(e is not None for _, _, e in results) else 0


def _teardown(args: argparse.Namespace) -> int:
    import sys

    from ood_k8s.cli import load_config
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.users import provision

    cfg = load_config(args)
    client = _client(cfg)
    failed = 0
    for username in _unique(args.users):
        try:
            kwargs = {"delete_home_data": args.delete_home_data, "delete_cognito_user": args.delete_cognito_user}
            if args.dry_run:
                done = provision.teardown(cfg, username, client, dry_run=True, **kwargs)
            else:
                with provision.user_lock(cfg, username):
                    done = provision.teardown(cfg, username, client, **kwargs)
        except OodK8sError as err:
            print(f"{_shown(username)}: FAILED: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{username}:")
        for line in done:
            print(f"  {line}")
    return 1 if failed else 0


def _list(args: argparse.Namespace) -> int:
    import json

    from ood_k8s.cli import load_config
    from ood_k8s.core.names import MANAGED_BY, MANAGED_BY_KEY, USER_LABEL

    cfg = load_config(args)
    client = _client(cfg)
    managed = f"{MANAGED_BY_KEY}={MANAGED_BY}"
    namespaces = client.list("Namespace", label_selector=f"{managed},{USER_LABEL}")
    pods = client.list("Pod", label_selector=managed)  # every namespace, one request
    rows = user_rows(cfg, namespaces, pods)
    if cfg.auth.mode == "cognito" and not args.no_cognito and rows:
        states = _cognito_states(cfg, [r["user"] for r in rows])
        for row in rows:
            row["cognito"] = states[row["user"]]
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return 0
    columns = [("USER", "user"), ("NAMESPACE", "namespace"), ("STATE", "state"), ("COGNITO", "cognito"),
               ("SESSIONS", "sessions"), ("GPUS", "gpus"), ("LAST HOOK RUN", "last_hook_run")]
    print(format_table(columns, rows))
    return 0


def _sync(args: argparse.Namespace) -> int:
    import sys
    import time

    from ood_k8s.cli import load_config

    cfg = load_config(args)
    usernames = members_of_group(args.group) if args.group else read_user_file(args.file)
    _client(cfg)  # a bad provisioner kubeconfig is one error, not one per user
    started = time.monotonic()
    progress = Progress(len(usernames), sys.stderr)
    results = run_many(cfg, usernames, lambda: _client(cfg), jobs=args.jobs, dry_run=args.dry_run,
                       force=args.force, on_done=progress.step)
    progress.finish()
    for username, outcome, error in results:
        if error is None and outcome.action.startswith("would-") and outcome.changes:
            print(f"{username}: {outcome.action}: " + "; ".join(outcome.changes))
    print(summarise(results, time.monotonic() - started, args.group or args.file))
    for username, _, error in results:
        if error is not None:
            print(f"  {username}: {error}")
    return 1 if any(e is not None for _, _, e in results) else 0


# --- the work -------------------------------------------------------------------------------------


def run_many(cfg: Config, usernames: list[str], connect: Callable[[], KubeClient], *, jobs: int = 8,
             dry_run: bool = False, force: bool = False,
             on_done: Callable[[bool], None] | None = None) -> list[Result]:
    """Provision ``usernames`` with at most ``jobs`` at once; one user's failure never stops the rest.

    ``connect()`` makes a client; each worker thread gets its own, so the API requests an outcome
    reports are its user's.  Returns ``[(username, Outcome | None, error text | None)]`` in the
    order given.  ``on_done(ok)`` is called (in the calling thread) as each user finishes.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    local = threading.local()

    def one(username: str) -> Result:
        from ood_k8s.core.errors import OodK8sError
        from ood_k8s.users import provision

        try:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = connect()
            ident = provision.admit(cfg, username)
            if dry_run:
                return username, provision.ensure(cfg, ident, client, dry_run=True), None
            with provision.user_lock(cfg, username):
                return username, provision.ensure(cfg, ident, client, force=force), None
        except OodK8sError as err:
            return _shown(username), None, str(err)
        except Exception as exc:  # a bug must not stop a class of 300 half-way
            return _shown(username), None, f"internal error {type(exc).__name__}: {exc}"

    results: dict[int, Result] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, u): i for i, u in enumerate(usernames)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if on_done is not None:
                on_done(results[futures[future]][2] is None)
    return [results[i] for i in range(len(usernames))]


def summarise(results: list[Result], seconds: float, source: str = "") -> str:
    counts: dict[str, int] = {}
    for _, outcome, error in results:
        key = "failed" if error is not None else outcome.action
        counts[key] = counts.get(key, 0) + 1
    order = ("created", "updated", "current", "would-create", "would-update", "failed")
    words = {"current": "already current"}
    parts = [f"{counts[k]} {words.get(k, k)}" for k in order if counts.get(k)]
    where = f" from {source}" if source else ""
    return f"{len(results)} users{where} in {seconds:.1f} s: " + (", ".join(parts) or "nothing to do")


def members_of_group(group: str) -> list[str]:
    """Members of a Unix group: its member list plus users whose primary group it is (when NSS
    enumerates users)."""
    import grp
    import pwd

    from ood_k8s.core.errors import UsageError

    try:
        entry = grp.getgrnam(group)
    except KeyError:
        raise UsageError(f"group '{_shown(group)}' is not known to this host (NSS)",
                         "check the name, or that LDAP/SSSD answers on this machine") from None
    members = list(dict.fromkeys(entry.gr_mem))
    for pw in pwd.getpwall():
        if pw.pw_gid == entry.gr_gid and pw.pw_name not in members:
            members.append(pw.pw_name)
    return members


def read_user_file(path: str) -> list[str]:
    """Usernames, one per line (first field of a comma- or space-separated line); '#' starts a comment."""
    import re
    import sys

    from ood_k8s.core.errors import UsageError

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
    return _unique(users)


def user_rows(cfg: Config, namespaces: list[dict], pods: list[dict]) -> list[dict]:
    """One row per user namespace: sessions (pods not finished) and GPUs they hold."""
    from ood_k8s.core.names import USER_LABEL, USERNAME_ANNOTATION
    from ood_k8s.users import provision

    resources = set(provision.gpu_quota(cfg))
    per_ns: dict[str, list[int]] = {}
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        gpus = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            res = c.get("resources") or {}
            amounts = {**(res.get("requests") or {}), **(res.get("limits") or {})}
            for name in resources:
                try:
                    gpus += int(str(amounts.get(name, 0)))
                except ValueError:
                    pass
        counts = per_ns.setdefault(meta.get("namespace", ""), [0, 0])
        counts[0] += 1
        counts[1] += gpus
    rows = []
    for ns in namespaces:
        meta = ns.get("metadata") or {}
        ann = meta.get("annotations") or {}
        name = meta.get("name", "")
        terminating = bool(meta.get("deletionTimestamp")) or (ns.get("status") or {}).get("phase") == "Terminating"
        state = "deleting" if terminating else "ready" if ann.get(provision.HASH_ANNOTATION) else "incomplete"
        sessions, gpus = per_ns.get(name, [0, 0])
        rows.append({"user": ann.get(USERNAME_ANNOTATION) or (meta.get("labels") or {}).get(USER_LABEL, ""),
                     "namespace": name, "state": state, "cognito": "-", "sessions": sessions, "gpus": gpus,
                     "last_hook_run": ann.get(provision.LAST_RUN_ANNOTATION, "never")})
    return sorted(rows, key=lambda r: r["user"])


def _cognito_states(cfg: Config, usernames: list[str]) -> dict[str, str]:
    from concurrent.futures import ThreadPoolExecutor

    from ood_k8s.cloud.aws import cognito
    from ood_k8s.core.errors import OodK8sError

    def state(username: str) -> str:
        try:
            return str(cognito.user_state(cfg, username))
        except OodK8sError:
            return "error"

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(usernames, pool.map(state, usernames)))


def format_table(columns: list[tuple[str, str]], rows: list[dict]) -> str:
    cells = [[h for h, _ in columns]] + [[_shown(str(r[k])) for _, k in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


class Progress:
    """A one-line progress bar on a terminal; silent when ``stream`` is not one (logs, cron)."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        import time

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


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _shown(text: str) -> str:
    """Printable form of text that may come from a hostile file or directory."""
    return text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text

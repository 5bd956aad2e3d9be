"""``ood-k8s user setup|teardown|list|sync``: users' namespaces, Cognito users and storage, by an admin.

``setup`` and ``sync`` do what a user's login does (without writing their tokens or kubeconfig,
which need the login), so a whole class can be ready before the first lecture.  Every command
takes ``--dry-run`` and then shows what would change, changing nothing.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the real imports happen in the handlers (--help stays light)
    from ood_k8s.auth.provider import IdentityProvider
    from ood_k8s.config import Config
    from ood_k8s.core.kube import KubeClient


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
    listing.add_argument("--output", "-o", choices=("table", "json", "yaml"), default="table")
    listing.add_argument("--no-cognito", action="store_true", help="do not ask Cognito for each user's state")
    common(listing)
    listing.set_defaults(handler=_list)

    sync = verbs.add_parser("sync", help="provision every member of a Unix group or every user in a file "
                            "(safe to re-run; failures are summarised, the rest go on)")
    source = sync.add_mutually_exclusive_group(required=True)
    source.add_argument("--group", metavar="GROUP", help="Unix group (NSS) whose members to provision")
    source.add_argument("--file", metavar="FILE", help="file with one username per line ('#' comments; '-': stdin)")
    source.add_argument("--course", metavar="COURSE", help="the roster of a course (members of its groups); "
                        "their namespaces are labelled as the course's")
    sync.add_argument("--prune", action="store_true", help="with --course: remove the course's users no longer on "
                      "its roster nor on another course's (namespace and sessions; home data is kept)")
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
    from ood_k8s.users.sync import run_many, unique

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    results = run_many(cfg, unique(args.users), lambda: _client(cfg), jobs=args.jobs, dry_run=args.dry_run,
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
    from ood_k8s.users.sync import shown, unique

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    client = _client(cfg)
    failed = 0
    for username in unique(args.users):
        try:
            kwargs = {"delete_home_data": args.delete_home_data, "delete_cognito_user": args.delete_cognito_user}
            if args.dry_run:
                done = provision.teardown(cfg, username, client, dry_run=True, **kwargs)
            else:
                with provision.user_lock(cfg, username):
                    done = provision.teardown(cfg, username, client, **kwargs)
        except OodK8sError as err:
            print(f"{shown(username)}: FAILED: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{username}:")
        for line in done:
            print(f"  {line}")
    return 1 if failed else 0


def _list(args: argparse.Namespace) -> int:
    from ood_k8s.auth import provider as auth_provider
    from ood_k8s.cli import load_config
    from ood_k8s.core.vocab import MANAGED_BY, MANAGED_BY_KEY, USER_LABEL

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    client = _client(cfg)
    managed = f"{MANAGED_BY_KEY}={MANAGED_BY}"
    namespaces = client.list("Namespace", label_selector=f"{managed},{USER_LABEL}")
    pods = client.list("Pod", label_selector=managed)  # every namespace, one request
    rows = user_rows(cfg, namespaces, pods)
    identity = auth_provider.of(cfg)
    if identity.manages_users and not args.no_cognito and rows:
        states = _user_states(cfg, identity, [r["user"] for r in rows])
        for row in rows:
            row["cognito"] = states[row["user"]]
    if args.output in ("json", "yaml"):
        from ood_k8s.cli.output import emit

        emit(rows, args.output)
        return 0
    columns = [("USER", "user"), ("NAMESPACE", "namespace"), ("STATE", "state"), ("COGNITO", "cognito"),
               ("SESSIONS", "sessions"), ("GPUS", "gpus"), ("LAST HOOK RUN", "last_hook_run")]
    print(format_table(columns, rows))
    return 0


def _sync(args: argparse.Namespace) -> int:
    import sys
    import time

    from ood_k8s.cli import load_config
    from ood_k8s.users.sync import Progress, members_of_group, read_user_file, run_many, summarise

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    if args.prune and not args.course:
        from ood_k8s.core.errors import UsageError

        raise UsageError("--prune needs --course", "name the course whose former students to remove")
    if args.course:
        from ood_k8s.courses import roster

        usernames = roster.roster(roster.course(cfg, args.course))
    else:
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
    print(summarise(results, time.monotonic() - started, args.group or args.file or f"course {args.course}"))
    for username, _, error in results:
        if error is not None:
            print(f"  {username}: {error}")
    failed = any(e is not None for _, _, e in results)
    if args.course:
        failed = _course_sync(cfg, args, [u for u, _, e in results if e is None]) or failed
    return 1 if failed else 0


def _course_sync(cfg: Config, args: argparse.Namespace, synced: list[str]) -> bool:
    """``--course``: label the synced users' namespaces; ``--prune``: remove former students. True if any failed."""
    from ood_k8s.courses import roster

    course = roster.course(cfg, args.course)
    client = _client(cfg)
    if not args.dry_run:
        roster.mark(client, cfg, course, synced)
    if not args.prune:
        return False
    gone = roster.to_prune(roster.enrolled(client, course), roster.roster(course), roster.other_rosters(cfg, course))
    results = roster.prune(cfg, client, gone, dry_run=args.dry_run)
    for username, done, error in results:
        print(f"{username}: " + (f"FAILED: {error}" if error is not None else "; ".join(done or [])))
    failures = sum(e is not None for _, _, e in results)
    verb = "would be removed" if args.dry_run else "removed"
    print(f"prune {course.name}: {len(results)} former student{'s' if len(results) != 1 else ''} {verb} "
          f"(home data kept)" + (f", {failures} failed" if failures else ""))
    return failures > 0


# --- user list ------------------------------------------------------------------------------------


def user_rows(cfg: Config, namespaces: list[dict], pods: list[dict]) -> list[dict]:
    """One row per user namespace: sessions (pods not finished) and GPUs they hold."""
    from ood_k8s.core.vocab import HASH_ANNOTATION, LAST_RUN_ANNOTATION, USER_LABEL, USERNAME_ANNOTATION
    from ood_k8s.users.desired import gpu_quota

    resources = set(gpu_quota(cfg))
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
        state = "deleting" if terminating else "ready" if ann.get(HASH_ANNOTATION) else "incomplete"
        sessions, gpus = per_ns.get(name, [0, 0])
        rows.append({"user": ann.get(USERNAME_ANNOTATION) or (meta.get("labels") or {}).get(USER_LABEL, ""),
                     "namespace": name, "state": state, "cognito": "-", "sessions": sessions, "gpus": gpus,
                     "last_hook_run": ann.get(LAST_RUN_ANNOTATION, "never")})
    return sorted(rows, key=lambda r: r["user"])


def _user_states(cfg: Config, identity: IdentityProvider, usernames: list[str]) -> dict[str, str]:
    """Each user's account state at the identity provider (the COGNITO column), asked in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from ood_k8s.core.errors import OodK8sError

    def state(username: str) -> str:
        try:
            return str(identity.user_state(cfg, username))
        except OodK8sError:
            return "error"

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(usernames, pool.map(state, usernames)))


def format_table(columns: list[tuple[str, str]], rows: list[dict]) -> str:
    from ood_k8s.users.sync import shown

    cells = [[h for h, _ in columns]] + [[shown(str(r[k])) for _, k in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)

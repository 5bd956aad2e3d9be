"""``ood-k8s job submit|info|list|delete|hold|release|extend``: the job adapter from a shell.

Runs as the portal user with their credentials, like OOD does.  ``--user NAME`` lets an
administrator (root) act for a user with the provisioner's credentials.  ``--output json`` prints
OOD's Info fields (``native`` holds the reason and, once ready, the connection info).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ood_k8s.sessions.adapter import Adapter


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("job", help="submit, inspect and stop sessions (the OOD job adapter)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--user", metavar="NAME", help="act for this portal user (administrators, as root)")
        q.add_argument("--output", "-o", choices=("table", "json", "yaml"), default="table", help="output format")

    s = verbs.add_parser("submit", help="start a session; prints its job id")
    s.add_argument("script", nargs="?", help="job script to run in the session ('-' reads stdin)")
    s.add_argument("--name", help="job name (default: the script's file name)")
    s.add_argument("--profile", help="session profile (see 'ood-k8s config show')")
    s.add_argument("--image", help="container image (default: the profile's)")
    s.add_argument("--command", help="command line to run instead of a script")
    s.add_argument("--cpu", help="CPU cores, e.g. 2 or 500m")
    s.add_argument("--memory", help="memory, e.g. 8Gi")
    s.add_argument("--gpus", type=int, help="number of GPUs")
    s.add_argument("--port", type=int, help="port the app listens on (connection info)")
    s.add_argument("--walltime", help="wall time: seconds or hh:mm:ss")
    s.add_argument("--account", help="accounting id recorded with the job")
    s.add_argument("--native", metavar="FILE", help="YAML/JSON file with an OOD 'native' mapping")
    s.add_argument("--hold", action="store_true", help="create the session held; start it with 'release'")
    common(s)
    s.set_defaults(handler=_submit)
    for verb, text in (("info", "show one job"), ("delete", "stop a job and remove everything it created"),
                       ("hold", "hold a job (only one submitted with --hold and not released)"),
                       ("release", "release a held job")):
        q = verbs.add_parser(verb, help=text)
        q.add_argument("id", help="job id")
        common(q)
        q.set_defaults(handler={"info": _info, "delete": _action, "hold": _action, "release": _action}[verb])
    q = verbs.add_parser("list", help="list the user's jobs")
    common(q)
    q.set_defaults(handler=_list)
    q = verbs.add_parser("extend", help="give a running session more time (up to its profile's limit)")
    q.add_argument("id", help="job id")
    q.add_argument("--hours", metavar="N", help="hours to add, e.g. 1 or 0.5")
    common(q)
    q.set_defaults(handler=_extend)


def _adapter(args: argparse.Namespace) -> Adapter:
    import os

    from ood_k8s.cli import load_config
    from ood_k8s.core import identity
    from ood_k8s.core.errors import SecurityError
    from ood_k8s.core.names import check_username
    from ood_k8s.kubeconfig import clients as connect
    from ood_k8s.sessions.adapter import Adapter

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    me = None if os.geteuid() == 0 else identity.current()
    if args.user and (me is None or args.user != me.username):
        if os.geteuid() != 0:
            raise SecurityError(f"only root may act for another user ({args.user})", "leave out --user")
        ident = identity.lookup(check_username(args.user))
        return Adapter(cfg, ident, connect.as_provisioner(cfg))
    if me is None:
        from ood_k8s.core.errors import UsageError

        raise UsageError("root has no sessions of its own", "pass --user NAME to act for a portal user")
    return Adapter(cfg, me, connect.as_user(cfg, me.username))


def _read(path: str) -> str:
    from ood_k8s.core.errors import UsageError

    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(1024 * 1024 + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(text) > 1024 * 1024:
        raise UsageError(f"{path} is larger than 1 MiB", "keep large data in files in your home directory")
    return text


def _submit(args: argparse.Namespace) -> int:
    import os

    import yaml

    from ood_k8s.core.errors import UsageError
    from ood_k8s.sessions.request import Script, parse_duration

    native: dict = {}
    if args.native:
        try:
            native = yaml.safe_load(_read(args.native)) or {}
        except yaml.YAMLError:
            raise UsageError(f"{args.native} is not valid YAML or JSON") from None
        if not isinstance(native, dict):
            raise UsageError(f"{args.native} must hold a mapping (OOD's script.native)")
    container = dict(native.get("container") or {})
    for key in ("image", "command", "cpu", "memory", "port"):
        if getattr(args, key) is not None:
            container[key] = getattr(args, key)
    if container:
        native["container"] = container
    if args.profile:
        native["profile"] = args.profile
    if args.gpus is not None:
        native["gpus"] = args.gpus
    content = _read(args.script) if args.script else ""
    if not args.script and not container.get("command"):
        raise UsageError("nothing to run", "give a job script file, or --command")
    name = args.name or (os.path.basename(args.script) if args.script and args.script != "-" else "job")
    script = Script(content=content, job_name=name, wall_time=parse_duration(args.walltime),
                    accounting_id=args.account, native=native or None, submit_as_hold=args.hold)
    job_id = _adapter(args).submit(script)
    _emit(args, {"id": job_id}, lambda: print(job_id))
    return 0


def _emit(args: argparse.Namespace, data: object, table: object) -> None:
    if args.output == "json":
        import json

        print(json.dumps(data, indent=2, sort_keys=False))
    elif args.output == "yaml":
        from ood_k8s.cli.output import emit

        emit(data, "yaml")
    else:
        table()  # type: ignore[operator]


def _table(infos: list) -> None:
    rows = [("ID", "STATUS", "PROFILE", "NODE", "REASON")]
    for i in infos:
        rows.append((i.id, i.status, i.queue_name or "-", (i.allocated_nodes or [{}])[0].get("name") or "-",
                     i.reason))
    widths = [max(len(str(r[c])) for r in rows) for c in range(4)]
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in range(4)) + "  " + str(r[4]))


def _from_agent(args: argparse.Namespace, job_id: str) -> list | None:
    """The agent's answer (its view fresh), as the adapter's Infos; None: ask the API server."""
    import json
    import os

    from ood_k8s.agent import client as agent
    from ood_k8s.cli import load_config
    from ood_k8s.sessions.adapter import Info

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    if os.geteuid() == 0 and not args.user:
        return None  # root has no sessions: the direct path says so
    reply = agent.fresh_reply(cfg.agent, "json", job_id, args.user or "")
    return None if reply is None else [Info(**d) for d in json.loads(reply.body)]


def _info(args: argparse.Namespace) -> int:
    cached = _from_agent(args, args.id)
    info = cached[0] if cached else _adapter(args).info(args.id)

    def table() -> None:
        _table([info])
        conn = info.ood_connection_info
        if conn:
            print("connect: " + " ".join(f"{k}={'<hidden>' if k not in ('host', 'port') else v}"
                                         for k, v in conn.items()))

    _emit(args, info.to_dict(), table)
    return 0


def _list(args: argparse.Namespace) -> int:
    cached = _from_agent(args, "")
    infos = cached if cached is not None else _adapter(args).info_all()
    _emit(args, [i.to_dict() for i in infos], lambda: _table(infos))
    return 0


def _extend(args: argparse.Namespace) -> int:
    import time

    from ood_k8s.core.errors import UsageError
    from ood_k8s.core.timefmt import rfc3339
    from ood_k8s.sessions import lifetime
    from ood_k8s.sessions.extend import seconds_of_hours

    if args.hours is None:
        raise UsageError("how much longer? --hours is missing", f"e.g. 'ood-k8s job extend {args.id} --hours 1'")
    seconds = seconds_of_hours(args.hours)  # before any connection: bad input changes nothing
    ext = _adapter(args).extend(args.id, seconds)
    now = time.time()
    data = {"id": ext.job_id, "added": ext.added, "deadline": rfc3339(ext.deadline), "ceiling": rfc3339(ext.ceiling),
            "time_left": max(0, int(ext.deadline - now))}
    _emit(args, data, lambda: print(f"extended {ext.job_id}: it now ends at {lifetime.clock(ext.deadline, now)} "
                                    f"(in {lifetime.span(ext.deadline - now)}); its limit is "
                                    f"{lifetime.clock(ext.ceiling, now)}"))
    return 0


def _action(args: argparse.Namespace) -> int:
    getattr(_adapter(args), args.verb)(args.id)
    _emit(args, {"id": args.id, "action": args.verb}, lambda: print(f"{args.verb}: {args.id}"))
    return 0

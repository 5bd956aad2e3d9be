"""``ood-k8s capacity warm|status``: warm placeholder capacity on demand, and what is held and why.

``warm`` records an ad-hoc hold (a ConfigMap entry in ``agent.namespace``, see
:mod:`ood_k8s.capacity.holds`); the agent's leader makes the placeholder pods on its next pass.
``status`` lists the holds in force (course meetings and ad-hoc), their placeholders running or
pending, and which node pools hold each profile's image already.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.kube import KubeClient


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("capacity", help="warm capacity: hold nodes ready before a class or on demand; show it")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    warm = verbs.add_parser("warm", help="hold COUNT placeholder pods of a profile for a while (replaces this "
                            "profile's earlier ad-hoc hold; --count 0 releases it)")
    warm.add_argument("--profile", required=True, metavar="P", help="profile whose size and placement to hold")
    warm.add_argument("--count", required=True, type=_count, metavar="N", help="placeholder pods (0: release)")
    warm.add_argument("--for", dest="duration", default="1h", metavar="DURATION",
                      help="how long, e.g. 90m, 2h, 1h30m (default 1h)")
    warm.add_argument("--dry-run", action="store_true", help="show the hold; record nothing")
    warm.set_defaults(handler=_warm)
    status = verbs.add_parser("status", help="what is held and why, placeholders running or pending, images "
                              "pre-pulled per node pool")
    status.add_argument("--output", "-o", choices=("table", "json", "yaml"), default="table")
    status.set_defaults(handler=_status)


def _count(text: str) -> int:
    value = int(text)
    if value < 0 or value > 1000:
        raise argparse.ArgumentTypeError("must be 0 to 1000")
    return value


def _client(cfg: Config) -> KubeClient:
    from ood_k8s.kubeconfig.clients import as_provisioner

    return as_provisioner(cfg)


def hold_entry(cfg: Config, profile: str, count: int, duration: str, now: float, by: str) -> tuple[str | None, str]:
    """(the ConfigMap entry, or None to release; the line to print) for ``capacity warm``.  Refuses an
    unknown profile or duration with one line."""
    from ood_k8s.capacity import holds
    from ood_k8s.config.course import check_duration, duration_seconds
    from ood_k8s.core.errors import UsageError
    from ood_k8s.core.timefmt import rfc3339

    names = [p.name for p in cfg.profiles]
    if profile not in names:
        raise UsageError(f"unknown profile '{profile}'", f"choose one of: {', '.join(names)}")
    if check_duration(duration) is not None:
        raise UsageError(f"--for: got '{duration}', expected {check_duration(duration)}", "e.g. --for 90m")
    if count == 0:
        return None, f"released the ad-hoc hold of {profile}"
    until = now + duration_seconds(duration)
    line = f"holding {count} placeholder(s) of {profile} until {rfc3339(until)} (the agent's leader makes them)"
    return holds.entry(count, until, now, by), line


def _warm(args: argparse.Namespace) -> int:
    import getpass
    import time

    from ood_k8s.capacity import holds
    from ood_k8s.cli import load_config

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    value, line = hold_entry(cfg, args.profile, args.count, args.duration, time.time(), getpass.getuser())
    if args.dry_run:
        print(f"dry run, nothing recorded: {line}")
        return 0
    holds.write(_client(cfg), cfg, args.profile, value)
    print(line)
    return 0


def status_data(cfg: Config, client: KubeClient, now: float) -> dict[str, Any]:
    from ood_k8s.capacity import holds, placeholders, status

    ad_hoc = holds.read(client, cfg)
    pods = client.list("Pod", cfg.agent.namespace, label_selector=placeholders.selector())
    nodes = client.list("Node")
    return {"holds": status.hold_rows(cfg, now, ad_hoc, pods), "stray": status.stray_pods(cfg, now, ad_hoc, pods),
            "images": status.image_rows(cfg, nodes)}


def _status(args: argparse.Namespace) -> int:
    import time

    from ood_k8s.cli import load_config
    from ood_k8s.cli.user import format_table

    cfg = load_config(args, site=True)
    data = status_data(cfg, _client(cfg), time.time())
    if args.output != "table":
        from ood_k8s.cli.output import emit

        emit(data, args.output)
        return 0
    print(format_table([("HOLD", "hold"), ("PROFILE", "profile"), ("WANT", "count"), ("RUNNING", "running"),
                        ("PENDING", "pending"), ("MISSING", "missing"), ("WHY", "why")], data["holds"])
          if data["holds"] else "nothing held now")
    if data["stray"]:
        print(f"placeholders no hold wants (the agent's leader deletes them): {', '.join(data['stray'])}")
    print()
    rows = [{**r, "have": f"{r['with_image']}/{r['nodes']}", "prepull": "yes" if r["prepull"] else "no"}
            for r in data["images"]]
    print(format_table([("PROFILE", "profile"), ("NODE POOL", "pool"), ("NODES WITH IMAGE", "have"),
                        ("PRE-PULLER", "prepull"), ("IMAGE", "image")], rows))
    return 0

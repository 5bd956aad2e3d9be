"""``ood-k8s cluster render`` and ``ood-k8s doctor``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXTRAS = {"eksctl": "the EKS OIDC identity provider, as an eksctl ClusterConfig fragment",
          "node-groups": "cluster-autoscaler node groups: tags and settings",
          "efs-policy": "the EFS file-system policy (TLS and access points only, no root) and the IAM policy "
                        "of the EFS CSI driver's role",
          "iam": "the IAM policies: the portal's role (Cognito, EFS access points, the doctor's EKS, EC2 and "
                 "Auto Scaling reads) and the EFS CSI driver's role"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="what the site applies to the cluster once")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    render = verbs.add_parser(
        "render", help="print the cluster-scoped objects (RBAC, admission guard, priority classes, GPU capacity)",
        description="Print every cluster-scoped object ood-k8s needs, validated against the schema of "
                    "cluster.kubernetes_version; apply with: ood-k8s cluster render | kubectl apply "
                    "--server-side -f -.  '--only eksctl' and '--only node-groups' print the two documents that "
                    "are not Kubernetes objects.")
    render.add_argument("--output", "-o", choices=("yaml", "json"), default="yaml")
    render.add_argument("--only", metavar="WHAT",
                        help="one kind (e.g. ClusterRole, NodePool), or one of the other documents: " +
                        ", ".join(EXTRAS))
    render.set_defaults(handler=_render)
    doctor = sub.add_parser("doctor", help="check the site's setup: a checklist with a fix for each problem",
                            description="Check configuration, API access, the provisioner's permissions, Cognito, "
                                        "the cluster's OIDC settings, GPU capacity and storage (and one user's "
                                        "setup with --user). Exit status 1 if anything is wrong.")
    doctor.add_argument("--user", metavar="USER", help="also check this portal user's namespace, kubeconfig, "
                                                       "tokens and home directory")
    doctor.add_argument("--output", "-o", choices=("table", "json", "yaml"), default="table",
                        help="output format (table: each check printed as it runs)")
    doctor.set_defaults(handler=_doctor)


def _render(args: argparse.Namespace) -> int:
    import json

    import yaml

    from ood_k8s.cli import load_config
    from ood_k8s.cluster import manifests as cluster
    from ood_k8s.core.errors import UsageError

    cfg = load_config(args)
    only = (args.only or "").strip()
    if only.lower() in EXTRAS:
        doc = cluster.document(cfg, only.lower())
        if not doc:
            raise UsageError("no cluster-autoscaler node groups: cluster.autoscaler is "
                             f"{cfg.cluster.autoscaler}", "set cluster.autoscaler: cluster-autoscaler")
        sys.stdout.write(json.dumps(doc, indent=2) + "\n" if args.output == "json"
                         else f"# {EXTRAS[only.lower()]}\n" + yaml.safe_dump(doc, sort_keys=False))
        return 0
    objs = cluster.objects(cfg)
    if only:
        kinds = list(dict.fromkeys(o["kind"] for o in objs))
        match = [k for k in kinds if k.lower() == only.lower()]
        if not match:
            raise UsageError(f"--only {only}: nothing of that kind is rendered for this configuration",
                             f"use one of {', '.join(kinds + list(EXTRAS))}")
        objs = [o for o in objs if o["kind"] == match[0]]
    if args.output == "json":
        sys.stdout.write(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}, indent=2) + "\n")
        return 0
    out = [f"# ood-k8s cluster render: {cfg.source}, Kubernetes {cfg.cluster.kubernetes_version}"]
    for obj in objs:
        out.append("---\n" + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True).rstrip("\n"))
    if not only:
        out.append("# Not Kubernetes objects, printed separately: " +
                   "; ".join(f"--only {e} ({EXTRAS[e]})" for e in other_documents(cfg)))
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def other_documents(cfg: Any) -> list[str]:
    """The ``--only`` documents this site renders, in the order of the one registry of them
    (:data:`ood_k8s.cluster.manifests.EXTRAS`): each is built, and one that is empty or refused (no node
    groups without cluster-autoscaler, no EFS policy off EFS or before its roles are listed) is left out."""
    from ood_k8s.cluster import manifests as cluster
    from ood_k8s.core.errors import UsageError

    out = []
    for name in cluster.EXTRAS:
        try:
            if cluster.document(cfg, name):
                out.append(name)
        except UsageError:
            continue
    return out


def _doctor(args: argparse.Namespace) -> int:
    from ood_k8s.cli import load_config
    from ood_k8s.cli.output import emit
    from ood_k8s.core.errors import ConfigError
    from ood_k8s.doctor import runner as doctor
    from ood_k8s.doctor.report import as_data, summary

    ascii_only = not _can_print("✔✘–")
    table = args.output == "table"

    def show(check: doctor.Check) -> None:
        if table:
            sys.stdout.write("\n".join(check.lines(ascii_only)) + "\n")
            sys.stdout.flush()  # each check as it runs: a slow one is seen to be the slow one

    try:
        cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    except ConfigError as err:
        checks = [doctor.Check("configuration", False, p, "fix the file ('ood-k8s config check' lists every problem)")
                  for p in (err.problems or [err.message])]
        for check in checks:
            show(check)
    else:
        checks = doctor.run(cfg, args.user, on_check=show)
    last, code = summary(checks)
    if table:
        sys.stdout.write(last + "\n")
        sys.stdout.flush()
        print(doctor.next_step(checks), file=sys.stderr)  # advice, not data: stdout stays the checklist
    else:
        emit(as_data(checks), args.output)
    return code


def _can_print(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True

"""``ood-k8s storage check USER``: the home as the portal sees it beside what sessions will use."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("storage", help="home directories: check a user's home on the portal and in sessions")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    check = verbs.add_parser(
        "check", help="show, side by side, the owner and mode the portal sees and the identity and volumes "
                      "a session writes with; exit 1 if anything mismatches")
    check.add_argument("user", metavar="USER", help="portal username")
    check.add_argument("--output", "-o", choices=("table", "json", "yaml"), default="table", help="output format")
    check.add_argument("--no-cluster", action="store_true",
                       help="do not ask the cluster (only the portal's view and the cloud)")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    import sys

    from ood_k8s.cli import load_config
    from ood_k8s.core import identity, names
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.storage import backend as storage

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    user_names = names.for_user(args.user, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix)
    ident = identity.lookup(args.user)
    client = None
    unreachable = ""
    if not args.no_cluster:
        from ood_k8s.kubeconfig import clients as connect

        try:
            client = connect.as_provisioner(cfg)
        except OodK8sError as err:
            unreachable = str(err)
    findings = storage.check(cfg, ident, user_names, client)
    if unreachable:
        findings.append(storage.Finding("cluster", "-", "not asked", "info", unreachable))
    failed = any(f.status == "error" for f in findings)
    if args.output in ("json", "yaml"):
        from ood_k8s.cli.output import emit

        emit({"user": ident.username, "mode": cfg.storage.mode, "ok": not failed,
              "findings": [f._asdict() for f in findings]}, args.output)
    else:
        sys.stdout.write(format_table(findings))
    return 1 if failed else 0


WIDTH = 100  # a terminal's width, as kubectl's tables keep to it


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def format_table(findings: list, width: int = WIDTH) -> str:
    """Findings as aligned columns within ``width`` (rows stay one line each: a long value is cut,
    ``-o yaml`` shows it whole), then the fixes numbered beneath."""
    def clean(text: str) -> str:
        # Values come from NSS, AWS and the API server: never let one move the cursor or recolour.
        return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)

    header = ("WHAT", "PORTAL SEES", "SESSION GETS", "STATUS")
    rows = [header]
    fixes = []
    for f in findings:
        status = f.status.upper() if f.status in ("warn", "error") else f.status
        if f.fix:
            fixes.append(clean(f.fix))
            status += f" [{len(fixes)}]"
        rows.append((clean(f.what), clean(f.portal), clean(f.pod), status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    spare = width - widths[0] - widths[3] - 6
    if widths[1] + widths[2] > spare:  # share what is left between the two long columns
        widths[1] = min(widths[1], max(spare // 2, len(header[1])))
        widths[2] = max(spare - widths[1], len(header[2]))
    lines = ["  ".join(_cut(r[i], widths[i]).ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    import textwrap

    lines.extend(textwrap.fill(f"[{i}] {fix}", width, subsequent_indent="    ", break_on_hyphens=False)
                 for i, fix in enumerate(fixes, 1))
    return "\n".join(lines) + "\n"

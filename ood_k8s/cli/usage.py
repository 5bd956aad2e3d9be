"""``ood-k8s usage``: GPU-hours, CPU-hours, sessions, idle time reclaimed and cost, per person and course.

Who may see what (:func:`ood_k8s.usage.answers.may_see`): root everything; an instructor the courses
they instruct; everyone their own usage.  Root reads the ledger and the sessions from the API server
with the provisioner's credentials; anyone else asks the agent, which names the caller by the kernel
(users have no access to the ledger itself).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ood_k8s.cli.output import add_output, emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("usage", help="usage report: GPU-hours, CPU-hours, sessions, idle time reclaimed, cost")
    p.add_argument("--course", metavar="C", help="one course's sessions")
    p.add_argument("--user", metavar="U", help="one person's sessions")
    p.add_argument("--me", action="store_true", help="your own sessions, with your GPU-hour budgets")
    p.add_argument("--since", metavar="DATE", help="from this day (YYYY-MM-DD, UTC; default: the course's "
                   "term start, else everything)")
    p.add_argument("--until", metavar="DATE", help="up to and including this day (default: now)")
    p.add_argument("--html", metavar="FILE", help="also write a one-page report with charts to FILE")
    add_output(p, ("table", "json", "yaml", "csv"), "table")
    p.set_defaults(handler=_run)


def parse_day(value: str | None, flag: str, days_after: int = 0) -> float | None:
    """Epoch seconds of 00:00 UTC of ``value`` (+ ``days_after`` days)."""
    from ood_k8s.config.course import check_date
    from ood_k8s.core.errors import UsageError
    from ood_k8s.core.timefmt import days_since_epoch

    if value is None:
        return None
    if not value or check_date(value):
        raise UsageError(f"{flag}: got '{value[:40]}', expected a day such as 2027-01-25 (YYYY-MM-DD)")
    y, m, d = (int(x) for x in value.split("-"))
    return (days_since_epoch(y, m, d) + days_after) * 86400.0


def check_scope(cfg: Any, ident: Any, admin: bool, user: str | None, course: str | None) -> None:
    """Refuse asking for someone else's usage without the right to see it (one line)."""
    from ood_k8s.core.errors import NotEntitled
    from ood_k8s.courses import membership

    if admin or user in (None, ident.username):
        return
    taught = [c.name for c in membership.instructs(cfg, ident)]
    if not taught or (course is not None and course not in taught):
        raise NotEntitled(f"{ident.username} may not see {user}'s usage",
                          "ask for your own (--me), or for a course you instruct (--course)")


def entries_direct(cfg: Any, now: float) -> list[Any]:
    """The ledger and every session pod, read with the provisioner's credentials (root)."""
    from ood_k8s.agent.service import SESSIONS
    from ood_k8s.kubeconfig import clients as connect
    from ood_k8s.usage.entry import merge
    from ood_k8s.usage.ledger import Ledger

    client = connect.as_provisioner(cfg)
    pods = client.list("Pod", None, label_selector=SESSIONS)
    return merge(Ledger(client, cfg.agent.namespace).read(), pods, now, cfg.users.namespace_prefix)


def entries_for(cfg: Any, admin: bool) -> list[Any]:
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.usage import answers

    if admin:
        return entries_direct(cfg, time.time())
    found = answers.ask_entries(cfg)
    if found is None:
        raise OodK8sError("the agent did not answer: usage reports come through it ('ood-k8s agent')",
                          f"ask your administrator whether it runs (socket {cfg.agent.socket})")
    return found


def _run(args: argparse.Namespace) -> int:
    from ood_k8s.cli import load_config
    from ood_k8s.core import identity
    from ood_k8s.usage import answers, report

    cfg = load_config(args)
    admin = os.geteuid() == 0
    ident = None if admin and not args.me else identity.current()
    user = ident.username if args.me and ident is not None else args.user
    if ident is not None:
        check_scope(cfg, ident, admin, user, args.course)
    now = time.time()
    since, until = _span(cfg, args, now)
    entries = entries_for(cfg, admin)
    if ident is not None and not admin:
        seen = answers.may_see(cfg, ident, admin=False)
        entries = [e for e in entries if seen(e)]
    chosen = report.window(report.select(entries, args.course, user), since, until)
    prices = dict(cfg.usage.prices)
    rows, overall = report.rows(chosen, prices), report.total(chosen, prices)
    _print(args.output, rows, overall, cfg, _meta(cfg, args, user, since, until, ident, entries, now))
    if args.html:
        _write_html(args, cfg, chosen, rows, overall, since, until, now)
    return 0


def _span(cfg: Any, args: argparse.Namespace, now: float) -> tuple[float | None, float]:
    from ood_k8s.courses import membership

    since = parse_day(args.since, "--since")
    until = parse_day(args.until, "--until", 1)
    course = membership.course_named(cfg, args.course) if args.course else None
    term = membership.term(course) if course is not None else None
    if since is None and term is not None and term[0] != float("-inf"):
        since = term[0]
    return since, until if until is not None else now


def _meta(cfg: Any, args: argparse.Namespace, user: str | None, since: float | None, until: float,
          ident: Any, entries: list[Any], now: float) -> dict[str, Any]:
    from ood_k8s.core.timefmt import rfc3339
    from ood_k8s.usage import budget

    meta: dict[str, Any] = {"course": args.course, "user": user, "since": rfc3339(since) if since else None,
                            "until": rfc3339(until), "currency": cfg.usage.currency}
    if args.me and ident is not None:
        meta["budgets"] = [b._asdict() for b in budget.remaining(cfg, ident, now, entries)]
    return meta


def _print(fmt: str, rows: list[Any], overall: Any, cfg: Any, meta: dict[str, Any]) -> None:
    from ood_k8s.usage import budget, report

    if fmt == "json":
        sys.stdout.write(report.to_json(rows, overall, meta))
    elif fmt == "yaml":
        emit(report.as_data(rows, overall, meta), "yaml")
    elif fmt == "csv":
        sys.stdout.write(report.to_csv(rows))
    else:
        sys.stdout.write(report.table(rows, overall, cfg.usage.currency))
        for b in meta.get("budgets") or []:
            whose = "the course" if b["scope"] == budget.COURSE else "you"
            sys.stdout.write(f"{b['course']}: {budget.gpu_hours(b['left'])} left this term for {whose} "
                             f"({budget.gpu_hours(b['used_gpu_hours'])} of {budget.gpu_hours(b['limit'])} used)\n")


def _write_html(args: argparse.Namespace, cfg: Any, chosen: list[Any], rows: list[Any], overall: Any,
                since: float | None, until: float, now: float) -> None:
    from ood_k8s.courses import membership
    from ood_k8s.usage import html

    course = membership.course_named(cfg, args.course) if args.course else None
    title = f"Usage of {course.title or course.name}" if course is not None else "Usage"
    start = since if since is not None else min((e.start for e in chosen), default=now)
    text = html.page(chosen, rows, overall, title=title, span=(start, until), currency=cfg.usage.currency,
                     limit=course.gpu_hours_per_student if course is not None else 0.0)
    with open(args.html, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {args.html}", file=sys.stderr)

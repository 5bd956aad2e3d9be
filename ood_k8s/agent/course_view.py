"""One more question the agent's socket answers (:mod:`ood_k8s.agent.server`), for the sessions app:

    course <name>\\n   an instructor's course: every student's session (state, profile, time left), read-only,
                       and the course's GPU-hour use -- to a caller in the course's instructors group only

(A user's own GPU-hour budgets are ``budget -``, :mod:`ood_k8s.usage.answers`.)

An instructor's own credentials cannot read students' namespaces, so this view exists only here,
authorised by the kernel-named caller: uid -> NSS -> groups -> the courses they instruct.  A
student's session reaches an instructor without its connection info or paths
(:func:`public`).  Answers use the socket's framing: a header line, then JSON.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ood_k8s.config import Config
from ood_k8s.config.course import CourseConfig
from ood_k8s.core import vocab
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.courses import membership
from ood_k8s.sessions.adapter import Adapter
from ood_k8s.usage import answers, budget

if TYPE_CHECKING:
    from ood_k8s.agent.server import Users
    from ood_k8s.agent.service import Agent


def instructed(cfg: Config, ident: Identity) -> list[str]:
    """Names of the courses ``ident`` instructs (the course's ``instructors`` group)."""
    return [c.name for c in membership.instructs(cfg, ident)]


def course_sessions(agent: Agent, course: str) -> list[dict[str, Any]]:
    """Every session labelled with ``course`` in the agent's cache, as an instructor may see it."""
    with agent.cache.lock:
        pods = [p for p in agent.cache.pods.values()
                if ((p.get("metadata") or {}).get("labels") or {}).get(vocab.COURSE_LABEL) == course]
    by_owner: dict[str, set[str]] = defaultdict(set)
    for p in pods:
        meta = p.get("metadata") or {}
        owner = (meta.get("annotations") or {}).get(vocab.USERNAME_ANNOTATION)
        if owner:
            by_owner[owner].add(meta.get("name") or "")
    out: list[dict[str, Any]] = []
    for owner, ids in sorted(by_owner.items()):
        student = Identity(username=owner, uid=0, gid=0, home="")
        try:
            infos = Adapter(agent.cfg, student, agent.cache.client()).info_all()
        except OodK8sError:
            continue  # a username the name rules refuse owns no session here
        out.extend(public(i.to_dict()) for i in infos if i.id in ids)
    return out


# What an instructor sees of a student's session: no connection info (its password), no paths.
_PUBLIC = ("id", "status", "job_name", "job_owner", "queue_name", "gpus", "submission_time", "dispatch_time",
           "wallclock_limit", "deadline", "ceiling", "time_left")
_PUBLIC_NATIVE = ("reason", "phase", "profile", "failed", "disruption", "exit_code", "cache_age")


def public(info: dict[str, Any]) -> dict[str, Any]:
    native = info.get("native") or {}
    return {**{k: info.get(k) for k in _PUBLIC}, "native": {k: native[k] for k in _PUBLIC_NATIVE if k in native}}


def course_usage(agent: Agent, course: CourseConfig) -> list[dict[str, Any]]:
    """Each student's GPU-hours this term (from the usage ledger and the running sessions), and the
    course's total: rows of the chart, labelled by student (``course`` is the chart's label field)."""
    entries = [e for e in answers.ledger_of(agent) if e.course == course.name]
    span = membership.term(course)
    per_user: dict[str, float] = defaultdict(float)
    for e in entries:
        per_user[e.user] += budget.clipped_hours(e, span)
    limit = course.gpu_hours_per_student
    rows = [{"course": user, "used_gpu_hours": round(used, 4), "limit": limit,
             "left": round(max(0.0, limit - used), 4)} for user, used in sorted(per_user.items())]
    total = [b._asdict() for b in budget.course_usage(agent.cfg, course.name, time.time(), entries)]
    return [{**b, "course": f"{course.name} (all)"} for b in total] + rows


def facts(c: CourseConfig) -> dict[str, Any]:
    """What the course page says of the course itself (all from the site config)."""
    return {"name": c.name, "title": c.title or c.name, "term_start": c.term_start, "term_end": c.term_end,
            "gpu_hours_per_student": c.gpu_hours_per_student, "gpu_hours_total": c.gpu_hours_total}


def answer_course(agent: Agent, ident: Identity, arg: str) -> bytes:
    ident = answers._with_groups(ident)
    known = {c.name: c for c in agent.cfg.courses}
    if arg not in known or arg not in instructed(agent.cfg, ident):
        return answers._refuse(f"{ident.username} does not instruct a course named '{arg[:63]}'")
    c = known[arg]
    body = {"course": facts(c), "sessions": course_sessions(agent, arg), "usage": None}
    try:
        body["usage"] = course_usage(agent, c)
    except OodK8sError:
        pass  # the ledger cannot be read now: the page says the usage is unavailable, the sessions still show
    return answers._frame(body, agent.age())


def answer(agent: Agent, uid: int, line: bytes, users: Users) -> bytes:
    """The reply to ``course <name>`` from the process ``uid`` (an instructor of that course, or a refusal)."""
    from ood_k8s.agent.server import _caller

    parts = line.decode("ascii", "replace").split()
    if len(parts) != 2 or parts[0] != "course":
        return answers._refuse("bad request: expected 'course <name>'")
    try:
        return answer_course(agent, _caller(agent, uid, "", users), parts[1])
    except OodK8sError as exc:
        return answers._refuse(exc.message)

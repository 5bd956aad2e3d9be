"""The sessions app's pages: routing and one function per page (data from :mod:`.data`, HTML from
:mod:`.pages`).  Every page is about the viewer: their sessions, their usage, the courses they instruct.

    GET  /                          my sessions (live ones with their reason, time left and Extend; ended ones)
    GET  /sessions/<job id>         one of my sessions (404 for any id that is not mine)
    POST /sessions/<job id>/extend  move its deadline (+30 min, +1 h), then back to it with the new time
    GET  /usage                     my GPU-hours used and left per course this term
    GET  /courses/<name>            a course I instruct: its students' sessions and its usage (403 otherwise)
    GET  /courses/<name>.csv        the same sessions as CSV
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property
from typing import Any
from urllib.parse import quote

from ood_k8s.agent.course_view import facts, instructed
from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.webapp import chart, data, rows
from ood_k8s.webapp.pages import Pages

HTML = [("Content-Type", "text/html; charset=utf-8")]
_GONE = ("You have no session with that id: the cluster removes sessions some time after they end, "
         "and another user's sessions are never shown here.")
EXTEND_CHOICES = {30: "+30 min", 60: "+1 hour"}

Result = tuple[int, bytes, list[tuple[str, str]]]


class Context:
    """One request: the viewer, their data, and how to render."""

    def __init__(self, cfg: Config, me: Identity, base: str, pages: Pages, now: float,
                 connect: Callable[[Config, str], Any] | None, csrf: str) -> None:
        self.cfg, self.me, self.base, self.pages, self.now, self.csrf = cfg, me, base, pages, now, csrf
        self.store = data.Store(cfg, me, clock=lambda: now, connect=connect)

    @cached_property
    def courses(self) -> list[str]:
        """The courses the viewer instructs (their groups, through NSS)."""
        return instructed(self.cfg, self.me)

    def url(self, *parts: str) -> str:
        return self.base + "/" + "/".join(quote(p, safe="") for p in parts)

    def nav(self, here: str) -> list[dict[str, Any]]:
        items = [("My sessions", self.url("")), ("My usage", self.url("usage"))]
        items += [(f"Course {c}", self.url("courses", c)) for c in self.courses]
        return [{"label": label, "href": href, "current": href == here} for label, href in items]

    def page(self, status: int, name: str, here: str, title: str, banners: list[str], **values: Any) -> Result:
        html = self.pages.render(name, base=self.base, title=title, nav=self.nav(here), user=self.me.username,
                                 banners=[b for b in banners if b], csrf=self.csrf, url=self.url, **values)
        return status, html.encode("utf-8"), HTML


def error(ctx: Context, status: int, title: str, message: str) -> Result:
    """A page with one line (the status says what kind of failure)."""
    return ctx.page(status, "error", "", title, [], message=message)


def not_found(ctx: Context, message: str) -> Result:
    return error(ctx, 404, "Not found", message)


# --- pages ---------------------------------------------------------------------------------------------


def sessions_page(ctx: Context, req: Any) -> Result:
    loaded = ctx.store.sessions()
    every = rows.rows(loaded.value, ctx.now)
    budgets = ctx.store.budgets()
    return ctx.page(200, "sessions", ctx.url(""), "My sessions", [loaded.banner, budgets.banner],
                    live=[r for r in every if not r.ended], ended=[r for r in every if r.ended],
                    can_extend=data.extend_supported(), choices=EXTEND_CHOICES, budgets=budgets.value,
                    source=loaded.source)


def session_page(ctx: Context, req: Any, job: str, refusal: str = "") -> Result:
    try:
        extended = int(req.query.get("extended", "0"))
    except ValueError:
        extended = 0
    # Just extended, or refused: what the API server says now (the agent's watch may lag by a moment).
    loaded = ctx.store.session(job, fresh=bool(extended or refusal))
    if loaded.value is None:
        if loaded.banner and not loaded.source:
            return error(ctx, 503, "Unavailable", loaded.banner)
        return not_found(ctx, _GONE)
    r = rows.row(loaded.value, ctx.now)
    return ctx.page(409 if refusal else 200, "session", "", f"Session {r.id}", [loaded.banner], s=r,
                    can_extend=data.extend_supported(), choices=EXTEND_CHOICES, refusal=refusal,
                    extended=EXTEND_CHOICES.get(extended, ""), source=loaded.source)


def extend(ctx: Context, req: Any, job: str) -> Result:
    try:
        minutes = int(req.form.get("minutes", ""))
    except ValueError:
        minutes = 0
    if minutes not in EXTEND_CHOICES or not data.extend_supported():
        return session_page(ctx, req, job, refusal="Choose +30 min or +1 hour.")
    if ctx.store.session(job).value is None:
        return not_found(ctx, _GONE)
    try:
        ctx.store.extend(job, minutes * 60)
    except OodK8sError as err:
        return session_page(ctx, req, job, refusal=rows.sentence(err.message + (f": {err.hint}" if err.hint else "")))
    # Post/redirect/get: a reload does not extend twice.
    return 303, b"", [("Location", f"{ctx.url('sessions', job)}?extended={minutes}")]


def usage_page(ctx: Context, req: Any) -> Result:
    budgets = ctx.store.budgets()
    drawn = chart.chart(budgets.value) if budgets.value else None
    return ctx.page(200, "usage", ctx.url("usage"), "My usage", [budgets.banner], budgets=budgets.value,
                    chart=drawn, supported=data.budget_supported() and ctx.cfg.agent.enabled)


def _named(ctx: Context, name: str) -> Any:
    return next((c for c in ctx.cfg.courses if c.name == name), None)


def _course(ctx: Context, name: str) -> tuple[Result | None, Any]:
    if _named(ctx, name) is None:
        return not_found(ctx, "There is no course with that name on this portal."), None
    if name not in ctx.courses:
        return error(ctx, 403, "Forbidden", "Only the course's instructors can see its sessions and usage."), None
    return None, ctx.store.course(name)


def course_page(ctx: Context, req: Any, course: str) -> Result:
    refused, loaded = _course(ctx, course)
    if refused is not None:
        return refused
    body = loaded.value or {}
    sessions = rows.by_student(body.get("sessions") or [], ctx.now)
    usage = body.get("usage")
    return ctx.page(200 if loaded.value is not None else 503, "course", ctx.url("courses", course),
                    f"Course {course}", [loaded.banner], course=body.get("course") or facts(_named(ctx, course)),
                    sessions=sessions, available=loaded.value is not None, usage=usage,
                    chart=chart.chart(usage) if usage else None, csv=ctx.url("courses", course + ".csv"))


def course_csv(ctx: Context, req: Any, course: str) -> Result:
    refused, loaded = _course(ctx, course)
    if refused is not None:
        return refused
    if loaded.value is None:
        return error(ctx, 503, "Unavailable", loaded.banner)
    text = rows.to_csv(rows.by_student(loaded.value.get("sessions") or [], ctx.now))
    return 200, text.encode("utf-8"), [("Content-Type", "text/csv; charset=utf-8"),
                                       ("Content-Disposition", f'attachment; filename="{course}-sessions.csv"')]


# --- routing -------------------------------------------------------------------------------------------

_NAME = r"(?P<{}>[A-Za-z0-9][A-Za-z0-9._-]{{0,252}})"
ROUTES: list[tuple[str, re.Pattern[str], Callable[..., Result]]] = [
    ("GET", re.compile(r"/?"), sessions_page),
    ("GET", re.compile(r"/sessions/" + _NAME.format("job") + "/?"), session_page),
    ("POST", re.compile(r"/sessions/" + _NAME.format("job") + r"/extend"), extend),
    ("GET", re.compile(r"/usage/?"), usage_page),
    ("GET", re.compile(r"/courses/(?P<course>[a-z0-9-]{1,63})\.csv"), course_csv),
    ("GET", re.compile(r"/courses/(?P<course>[a-z0-9-]{1,63})/?"), course_page),
]


def dispatch(ctx: Context, req: Any) -> Result:
    method = "GET" if req.method == "HEAD" else req.method
    allowed = False
    for verb, pattern, handler in ROUTES:
        m = pattern.fullmatch(req.path)
        if m is None:
            continue
        if verb == method:
            return handler(ctx, req, **m.groupdict())
        allowed = True
    if allowed:
        return error(ctx, 405, "Method not allowed", "This address does not take that kind of request.")
    return not_found(ctx, "There is no such page in this app.")

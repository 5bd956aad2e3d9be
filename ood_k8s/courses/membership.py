# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Who is in which course, when: the one answer every feature asks (entitlements, submit, usage, roster sync).

* A **student** of a course is a member of one of its roster ``groups`` (names, as NSS lists them in
  :attr:`~ood_k8s.core.identity.Identity.groups`); a course entitles its students only during its
  term (:func:`term`); a course with no term dates is always on.
* An **instructor** is a member of its ``instructors`` group, whatever the date.
* The **course of a session** (:func:`course_for`): among the user's current courses, the first in
  config order whose ``profiles`` include the session's profile.  Config order breaks ties because it
  is the one order an administrator sees and can change; a user in two courses granting the same
  profile is charged to the one listed first.

Term dates are days in the course's ``timezone``: the term runs from 00:00 of ``term_start`` to
00:00 of the day after ``term_end`` (exclusive).  The clock is always passed in (``now``, epoch
seconds).  zoneinfo is imported only when a term is computed (the login hook of a site without
courses never pays for it).
"""

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ood_k8s.config.course import CourseConfig
from ood_k8s.core.identity import Identity
from ood_k8s.core.timefmt import days_since_epoch

if TYPE_CHECKING:
    from ood_k8s.config import Config

OPEN_START = float("-inf")  # a term with no start date
OPEN_END = float("inf")  # a term with no end date
_TERMS: Dict[Tuple[str, str, str], Tuple[float, float]] = {}


def _midnight(date: str, timezone: str, days_after: int = 0) -> float:
    """Epoch seconds of 00:00 (local, ``timezone``) on ``date`` (YYYY-MM-DD) plus ``days_after`` days."""
    if timezone == "UTC":  # the default: plain arithmetic, no zoneinfo (~10 ms at import) on a login
        year, month, day = (int(x) for x in date.split("-"))
        return float((days_since_epoch(year, month, day) + days_after) * 86400)
    from datetime import date as _date
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    day = _date.fromisoformat(date) + timedelta(days=days_after)
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).timestamp()


def term(course: CourseConfig) -> Optional[Tuple[float, float]]:
    """``(start, end)`` epoch seconds of the course's term (end exclusive), or None when it has no dates.
    A missing side is open: :data:`OPEN_START` / :data:`OPEN_END`."""
    if not course.term_start and not course.term_end:
        return None
    key = (course.term_start, course.term_end, course.timezone)
    if key not in _TERMS:  # a usage report asks once per session: compute each term once per process
        start = _midnight(course.term_start, course.timezone) if course.term_start else OPEN_START
        end = _midnight(course.term_end, course.timezone, 1) if course.term_end else OPEN_END
        _TERMS[key] = (start, end)
    return _TERMS[key]


def in_term(course: CourseConfig, now: float) -> bool:
    span = term(course)
    return span is None or span[0] <= now < span[1]


def is_student(course: CourseConfig, ident: Identity) -> bool:
    """In one of the roster groups (a course with no roster groups has no students)."""
    return any(g in ident.groups for g in course.groups)


def courses_of(cfg: "Config", ident: Identity, now: float) -> List[CourseConfig]:
    """The courses ``ident`` is a student of whose term includes ``now``, in config order."""
    return [c for c in _courses(cfg) if is_student(c, ident) and in_term(c, now)]


def instructs(cfg: "Config", ident: Identity) -> List[CourseConfig]:
    """The courses whose instructors group ``ident`` is in, in config order (no term: they prepare it)."""
    return [c for c in _courses(cfg) if c.instructors and c.instructors in ident.groups]


def course_for(cfg: "Config", ident: Identity, profile_name: str, now: float) -> Optional[CourseConfig]:
    """The course a session of ``profile_name`` counts against: the first current course of ``ident``
    (config order) that grants that profile; None when no course does (the profile is the site's)."""
    for c in courses_of(cfg, ident, now):
        if profile_name in c.profiles:
            return c
    return None


def granted_profiles(cfg: "Config", ident: Identity, now: float) -> List[str]:
    """Names of the profiles ``ident``'s current courses grant (config order, no repeats)."""
    return list(dict.fromkeys(p for c in courses_of(cfg, ident, now) for p in c.profiles))


def course_named(cfg: "Config", name: str) -> Optional[CourseConfig]:
    for c in _courses(cfg):
        if c.name == name:
            return c
    return None


def _courses(cfg: "Config") -> List[CourseConfig]:
    return list(cfg.courses)

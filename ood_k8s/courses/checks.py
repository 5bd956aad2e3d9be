"""``config check`` of the courses: what one setting's own check cannot see.

Every course names profiles that exist, a warm profile among its own, a term that ends after it
starts, an IANA time zone (the meetings' local time and the term's days are read in it), meeting
times that exist in that zone, unique names, and datasets with unique names and mount paths.
Wired into the loader's cross-checks (:data:`ood_k8s.config.loader.CROSS_CHECKS`), as the storage,
auth and isolation features are.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ood_k8s.config import Config
from ood_k8s.config.course import CourseConfig


def zone(name: str) -> ZoneInfo | None:
    """The IANA zone ``name``, or None when it is not one (a path, a typo, an empty string)."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def config_problems(cfg: Config) -> list[str]:
    problems: list[str] = []
    names = [c.name for c in cfg.courses]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"courses: got name {dup!r} twice, expected unique course names")
    profiles = [p.name for p in cfg.profiles]
    for i, course in enumerate(cfg.courses):
        problems += _course_problems(f"courses[{i}]", course, profiles)
    return problems


def _course_problems(where: str, c: CourseConfig, profiles: list[str]) -> list[str]:
    out = [f"{where}.profiles: got {p!r}, expected one of {profiles}" for p in c.profiles if p not in profiles]
    if c.warm.count > 0 and not c.profiles and not c.warm.profile:
        out.append(f"{where}.warm: got count {c.warm.count} and no profile, expected warm.profile or the "
                   "course's profiles")
    if c.warm.profile and c.warm.profile not in c.profiles:
        out.append(f"{where}.warm.profile: got {c.warm.profile!r}, expected one of the course's profiles "
                   f"{c.profiles}")
    if c.term_start and c.term_end and c.term_end < c.term_start:
        out.append(f"{where}.term_end: got {c.term_end}, expected a day on or after term_start ({c.term_start})")
    if zone(c.timezone) is None:
        needs = " (its meetings' start times are read in it)" if c.meetings else ""
        out.append(f"{where}.timezone: got {c.timezone!r}, expected an IANA time zone such as "
                   f"America/New_York{needs}")
    for j, m in enumerate(c.meetings):
        if not m.days:
            out.append(f"{where}.meetings[{j}].days: got an empty list, expected at least one day")
    datasets = [d.name for d in c.datasets]
    for dup in sorted({n for n in datasets if datasets.count(n) > 1}):
        out.append(f"{where}.datasets: got name {dup!r} twice, expected unique volume names")
    paths = [d.mount_path for d in c.datasets]
    for dup in sorted({p for p in paths if paths.count(p) > 1}):
        out.append(f"{where}.datasets: got mount_path {dup!r} twice, expected one dataset per path")
    return out

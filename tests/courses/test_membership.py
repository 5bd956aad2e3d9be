"""courses/membership.py: who is in which course when, with an injected clock."""

from __future__ import annotations

import pytest

from ood_k8s.config import Config, parse, to_dict
from ood_k8s.courses import membership
from tests.conftest import ALICE, BOB
from tests.courses.course_site import BEFORE_TERM, MON_10_NY, TERM_END_NY, TERM_START_NY, site

STUDENT = BOB._replace(groups=(*BOB.groups, "cs109b"))
STAFF = ALICE._replace(groups=(*ALICE.groups, "cs109b-staff"))


def test_the_term_is_its_days_in_the_courses_time_zone() -> None:
    c = site().courses[0]
    assert membership.term(c) == (TERM_START_NY, TERM_END_NY)
    utc = site(timezone="UTC").courses[0]
    assert membership.term(utc)[0] == TERM_START_NY - 5 * 3600  # New York's midnight is 05:00 UTC


@pytest.mark.parametrize(("now", "on"), [(BEFORE_TERM, False), (TERM_START_NY, True), (MON_10_NY, True),
                                         (TERM_END_NY - 1, True), (TERM_END_NY, False)])
def test_a_student_is_in_the_course_during_its_term_only(now: float, on: bool) -> None:
    cfg = site()
    assert [c.name for c in membership.courses_of(cfg, STUDENT, now)] == (["cs109b"] if on else [])
    assert membership.courses_of(cfg, BOB, now) == []  # not on the roster
    assert membership.granted_profiles(cfg, STUDENT, now) == (["gpu-a10g"] if on else [])


def test_a_course_without_dates_is_always_on_and_an_open_side_is_open() -> None:
    assert membership.term(site(term_start="", term_end="").courses[0]) is None
    assert membership.courses_of(site(term_start="", term_end=""), STUDENT, 0.0) != []
    start_only = site(term_end="").courses[0]
    assert membership.term(start_only) == (TERM_START_NY, membership.OPEN_END)


def test_instructors_are_their_group_whatever_the_date() -> None:
    cfg = site()
    assert [c.name for c in membership.instructs(cfg, STAFF)] == ["cs109b"]
    assert membership.instructs(cfg, STUDENT) == []
    assert membership.courses_of(cfg, STAFF, MON_10_NY) == []  # instructing is not being a student


def test_a_session_counts_against_the_first_course_in_config_order_that_grants_its_profile() -> None:
    data = to_dict(site(), redact=False)
    second = {**data["courses"][0], "name": "cs1", "profiles": ["gpu-a10g", "gpu-t4"], "groups": ["students"],
              "datasets": [], "warm": {"count": 0}}
    data["courses"].append(second)
    cfg = parse(data)
    both = STUDENT  # in cs109b (roster cs109b) and cs1 (roster students)
    assert membership.course_for(cfg, both, "gpu-a10g", MON_10_NY).name == "cs109b"
    assert membership.course_for(cfg, both, "gpu-t4", MON_10_NY).name == "cs1"
    assert membership.course_for(cfg, both, "cpu", MON_10_NY) is None
    data["courses"].reverse()
    assert membership.course_for(parse(data), both, "gpu-a10g", MON_10_NY).name == "cs1"
    assert membership.course_for(cfg, both, "gpu-a10g", BEFORE_TERM) is None


def test_a_site_without_courses_grants_nothing() -> None:
    assert membership.courses_of(Config(), STUDENT, MON_10_NY) == []
    assert membership.course_named(site(), "cs109b").name == "cs109b"
    assert membership.course_named(site(), "nope") is None


@pytest.mark.parametrize("day", ["2027-01-25", "2024-02-29", "2027-12-31", "1999-03-01"])
def test_a_utc_term_needs_no_zoneinfo_and_agrees_with_it(day: str) -> None:
    from datetime import datetime, timezone

    c = site(timezone="UTC", term_start=day, term_end=day).courses[0]
    start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()
    assert membership.term(c) == (start, start + 86400)

"""courses/checks.py through config check (the loader's cross-checks)."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.config import Config, parse, to_dict
from ood_k8s.core.errors import ConfigError
from tests.courses.course_site import COURSE


def problems(*courses: dict[str, Any]) -> list[str]:
    data = to_dict(Config(), redact=False)
    data["courses"] = list(courses)
    try:
        parse(data)
    except ConfigError as err:
        return err.problems
    return []


def test_the_example_course_is_clean() -> None:
    assert problems(COURSE) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"profiles": ["gpu-a10g", "tpu"]}, "courses[0].profiles: got 'tpu'"),
    ({"warm": {"profile": "cpu", "count": 1}}, "courses[0].warm.profile: got 'cpu'"),
    ({"profiles": [], "warm": {"count": 2}}, "courses[0].warm: got count 2 and no profile"),
    ({"term_start": "2027-05-01", "term_end": "2027-01-01"}, "courses[0].term_end: got 2027-01-01"),
    ({"timezone": "Eastern"}, "courses[0].timezone: got 'Eastern', expected an IANA time zone"),
    ({"timezone": "../../etc/passwd"}, "courses[0].timezone"),
    ({"meetings": [{"days": [], "start": "10:00"}]}, "courses[0].meetings[0].days: got an empty list"),
    ({"datasets": [{"name": "a", "claim": "x", "mount_path": "/d"}, {"name": "a", "claim": "y", "mount_path": "/e"}]},
     "courses[0].datasets: got name 'a' twice"),
])
def test_a_bad_course_is_one_line_naming_its_key(change: dict[str, Any], expected: str) -> None:
    found = problems({**COURSE, **change})
    assert any(p.startswith(expected) for p in found), found


def test_two_courses_of_one_name() -> None:
    assert "courses: got name 'cs109b' twice, expected unique course names" in problems(COURSE, COURSE)


def test_an_unquoted_yaml_date_is_a_term_date() -> None:
    import yaml

    data = to_dict(Config(), redact=False)
    data["courses"] = [{**COURSE, **yaml.safe_load("term_start: 2027-01-25\nterm_end: 2027-05-10")}]
    assert parse(data).courses[0].term_start == "2027-01-25"

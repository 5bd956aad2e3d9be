"""A site with one GPU course (cs109b) and its clock, shared by the courses and capacity tests."""

from __future__ import annotations

from typing import Any

from ood_k8s.config import Config, parse, to_dict
from ood_k8s.core.timefmt import rfc3339

# 2027-02-01 is a Monday.  15:00 UTC is 10:00 in New York (EST, UTC-5).
MON_10_NY = 1801494000.0
TERM_START_NY = 1800853200.0  # 2027-01-25 00:00 EST
TERM_END_NY = 1810008000.0  # 2027-05-11 00:00 EDT (the day after term_end, exclusive)
BEFORE_TERM = TERM_START_NY - 1
HOOK_NOW = rfc3339(MON_10_NY)

COURSE: dict[str, Any] = {
    "name": "cs109b", "title": "Advanced Data Science", "groups": ["cs109b"], "instructors": "cs109b-staff",
    "profiles": ["gpu-a10g"], "term_start": "2027-01-25", "term_end": "2027-05-10", "timezone": "America/New_York",
    "meetings": [{"days": ["mon", "wed"], "start": "10:30", "duration": "1h15m"}],
    "warm": {"count": 3, "before": "15m"},
    "datasets": [{"name": "imagenet", "claim": "imagenet-ro", "mount_path": "/data/imagenet"}],
}


def site(**course: Any) -> Config:
    data = to_dict(Config(), redact=False)
    data["courses"] = [{**COURSE, **course}]
    return parse(data)

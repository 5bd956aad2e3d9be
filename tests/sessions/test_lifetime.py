"""lifetime: the granted wall time, its hard ceiling and the pod's deadline, decided in one place."""

from __future__ import annotations

import pytest

from ood_k8s.core.errors import NotEntitled
from ood_k8s.sessions import lifetime
from ood_k8s.sessions.lifetime import Lifetime


def test_a_request_without_wall_time_gets_the_sites_default(make_config) -> None:
    jobs = make_config(**{"jobs.default_walltime": 1800, "jobs.max_walltime": 7200}).jobs
    assert lifetime.granted(None, jobs) == Lifetime(walltime=1800, ceiling=7200)
    assert lifetime.default(jobs) == 1800 and lifetime.ceiling(jobs) == 7200


def test_the_ceiling_is_granted_and_nothing_above_it(make_config) -> None:
    jobs = make_config(**{"jobs.max_walltime": 5400}).jobs
    assert lifetime.granted(5400, jobs) == Lifetime(5400, 5400)
    with pytest.raises(NotEntitled) as exc:
        lifetime.granted(5401, jobs)
    assert str(exc.value) == "a wall time of 1h30m is longer than this site allows: ask for at most 1h30m"


def test_the_pods_deadline_is_the_granted_wall_time() -> None:
    # activeDeadlineSeconds can never be raised on a running pod: today nothing extends a session.
    assert lifetime.pod_deadline(Lifetime(walltime=3600, ceiling=8 * 3600)) == 3600


@pytest.mark.parametrize(("started", "finished", "now", "seconds"), [
    (None, None, 1000.0, None),         # not started yet
    (100.0, None, 160.9, 60),           # running: until now
    (100.0, 130.0, 5000.0, 30),         # ended: until it finished
    (100.0, None, 90.0, 0),             # clocks disagree: never negative
])
def test_elapsed_takes_now_as_an_argument(started, finished, now, seconds) -> None:
    assert lifetime.elapsed(started, finished, now) == seconds


@pytest.mark.parametrize(("seconds", "text"), [(3600, "1h"), (5400, "1h30m"), (8 * 3600 + 60, "8h01m"), (59, "0h")])
def test_hours(seconds: int, text: str) -> None:
    assert lifetime.hours(seconds) == text


def test_resolve_takes_its_wall_time_from_here(make_config) -> None:
    from ood_k8s.sessions.request import Script
    from ood_k8s.sessions.resolve import requested_walltime, resolve
    from tests.conftest import ALICE

    cfg = make_config(**{"jobs.default_walltime": 1800})
    assert [requested_walltime(Script(wall_time=w)) for w in (None, 0, 60, "120")] == [None, None, 60, 120]
    assert resolve(Script(), cfg, ALICE).walltime == 1800
    assert resolve(Script(wall_time=7200), cfg, ALICE).walltime == 7200

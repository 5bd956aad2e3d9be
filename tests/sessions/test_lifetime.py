"""lifetime: the granted wall time, its hard ceiling and the pod's deadline, decided in one place."""

from __future__ import annotations

import time
from collections.abc import Iterator

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


def test_the_pods_deadline_is_the_ceiling_and_the_wall_time_an_annotation() -> None:
    # issue 15: activeDeadlineSeconds can never be raised on a running pod, so where the agent's leader ends
    # sessions at their deadline it holds the ceiling and an extend moves the deadline under it.
    life = Lifetime(walltime=3600, ceiling=8 * 3600)
    assert lifetime.pod_deadline(life, leader_runs=True) == 8 * 3600
    assert lifetime.annotations(life) == {"ood-k8s.io/walltime": "3600"}


def test_without_the_agents_lifecycle_the_pods_deadline_is_the_granted_wall_time(make_config) -> None:
    # Nothing else would end the session at its deadline: the kubelet must, at the wall time granted.
    assert lifetime.pod_deadline(Lifetime(walltime=3600, ceiling=8 * 3600), leader_runs=False) == 3600
    assert lifetime.leader_runs(make_config().agent) is False
    assert lifetime.leader_runs(make_config(**{"agent.enabled": True}).agent) is True
    assert lifetime.leader_runs(make_config(**{"agent.enabled": True, "agent.lifecycle": False}).agent) is False


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


# --- issue 15: the profile's ceiling, the deadline's origin, extending ---------------------------------------

START = "2026-12-06T14:30:00Z"
T0 = 1796567400.0  # START as epoch seconds


def test_a_profile_sets_its_own_ceiling_under_the_sites(make_config) -> None:
    from ood_k8s.config import Profile

    jobs = make_config(**{"jobs.default_walltime": 7200, "jobs.max_walltime": 8 * 3600}).jobs
    short = Profile(name="gpu-t4", image="x", max_walltime=3600)
    assert lifetime.ceiling(jobs, short) == 3600 and lifetime.ceiling(jobs, Profile(name="cpu", image="x")) == 8 * 3600
    assert lifetime.granted(None, jobs, short) == Lifetime(3600, 3600)  # the site's default, cut to the profile's
    with pytest.raises(NotEntitled) as exc:
        lifetime.granted(5400, jobs, short)
    assert str(exc.value) == "a wall time of 1h30m is longer than profile 'gpu-t4' allows: ask for at most 1h"


def pod(ann: dict | None = None, start: str | None = START, limit: int | None = 8 * 3600) -> dict:
    p: dict = {"metadata": {"annotations": ann or {}}, "spec": {}, "status": {}}
    if limit is not None:
        p["spec"]["activeDeadlineSeconds"] = limit
    if start is not None:
        p["status"]["startTime"] = start
    return p


W = "ood-k8s.io/walltime"
D = "ood-k8s.io/deadline"


@pytest.mark.parametrize(("p", "want"), [
    # queued: its time has not begun (a session waiting 20 min in the queue loses none of it)
    (pod({W: "3600"}, start=None), lifetime.Window(None, None, None, 3600)),
    # started: the granted seconds from the start, under the ceiling
    (pod({W: "3600"}), lifetime.Window(T0, T0 + 3600, T0 + 8 * 3600, 3600)),
    # extended: the instant an extend wrote
    (pod({W: "3600", D: "2026-12-06T17:30:00Z"}), lifetime.Window(T0, T0 + 3 * 3600, T0 + 8 * 3600, 3600)),
    # never past the ceiling, whatever is written (or once the agent lowered it to end the session)
    (pod({W: "3600", D: "2030-01-01T00:00:00Z"}), lifetime.Window(T0, T0 + 8 * 3600, T0 + 8 * 3600, 3600)),
    (pod({W: "3600"}, limit=600), lifetime.Window(T0, T0 + 600, T0 + 600, 3600)),
    # made before extend existed, or by hand: its ceiling is its deadline
    (pod({}, limit=7200), lifetime.Window(T0, T0 + 7200, T0 + 7200, None)),
    # unreadable values are ignored, never trusted
    (pod({W: "1h", D: "tomorrow"}, limit=7200), lifetime.Window(T0, T0 + 7200, T0 + 7200, None)),
    (pod({W: "3600"}, limit=None), lifetime.Window(T0, T0 + 3600, None, 3600)),
])
def test_the_window_counts_from_the_pods_start(p: dict, want: lifetime.Window) -> None:
    assert lifetime.window(p) == want


def test_time_left() -> None:
    win = lifetime.window(pod({W: "3600"}))
    assert [lifetime.time_left(win, T0 + s) for s in (0, 3599.5, 3600, 9000)] == [3600, 0, 0, 0]
    assert lifetime.time_left(lifetime.window(pod({W: "3600"}, start=None)), T0) is None


@pytest.fixture
def utc(monkeypatch) -> Iterator[None]:
    """Local time is UTC for the test (refusals and warnings speak the portal's local time)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_an_extension_moves_the_deadline_up_to_the_ceiling(utc: None) -> None:
    win = lifetime.window(pod({W: "7200"}))  # ends 16:30; the ceiling is 22:30
    assert lifetime.extended(win, 3600, T0) == T0 + 3 * 3600
    assert lifetime.extended(win, 6 * 3600, T0) == T0 + 8 * 3600
    with pytest.raises(NotEntitled) as exc:
        lifetime.extended(win, 6 * 3600 + 1, T0)
    assert str(exc.value) == ("this session can run at most until 22:30 (its profile's 8h limit): "
                              "ask for at most 6h")
    short = lifetime.window(pod({W: "1800"}, limit=7200))
    with pytest.raises(NotEntitled) as exc:
        lifetime.extended(short, 7200, T0 + 60)
    assert str(exc.value) == ("this session can run at most until 16:30 (its profile's 2h limit): "
                              "ask for at most 1h30m")
    full = lifetime.window(pod({W: "7200"}, limit=7200))
    with pytest.raises(NotEntitled) as exc:
        lifetime.extended(full, 60, T0)
    assert str(exc.value) == ("this session can run at most until 16:30 (its profile's 2h limit), and its deadline "
                              "is already there: save your work and start a new session to continue")
    with pytest.raises(NotEntitled):
        lifetime.extended(lifetime.window(pod({W: "60"}, start=None)), 60, T0)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (45, "45 s"), (600, "10 min"), (3599, "59 min"),
                                               (3600, "1h"), (5400, "1h30m")])
def test_span(seconds: int, text: str) -> None:
    assert lifetime.span(seconds) == text


def test_clock_says_the_day_when_it_is_not_today(utc: None) -> None:
    assert lifetime.clock(T0 + 7200, T0) == "16:30"
    assert lifetime.clock(T0 + 86400, T0) == "Mon 14:30"
    assert lifetime.clock(T0 + 30 * 86400, T0) == "2027-01-05 14:30"


def test_config_check_keeps_a_profiles_ceiling_under_the_sites() -> None:
    from tests.config.test_config import problems

    got = problems({"jobs": {"max_walltime": 7200, "default_walltime": 3600, "default_profile": "short"}, "profiles": [
        {"name": "short", "image": "i", "max_walltime": 3600}, {"name": "long", "image": "i", "max_walltime": 7201}]})
    assert got == ["profiles[1].max_walltime: got 7201, expected at most jobs.max_walltime (7200); 0 means the site's"]

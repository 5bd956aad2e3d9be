"""extend: a session's deadline moves later, up to its ceiling, by a merge patch over HTTPS to the fake API;
every refusal is one line and changes nothing; a concurrent writer costs one retry; site checks register."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest

from ood_k8s.core import errors, vocab
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.timefmt import rfc3339
from ood_k8s.sessions import extend as extend_mod
from ood_k8s.sessions.adapter import Adapter
from ood_k8s.sessions.extend import Extension, extend_patch, seconds_of_hours
from tests.conftest import ALICE, BOB, Clock
from tests.sessions.test_adapter import JUPYTER, NS, client, counter_rand  # noqa: F401 - the client fixture
from tests.sessions.test_lifetime import START, T0, utc  # noqa: F401 - the utc fixture

CEILING = 8 * 3600


@pytest.fixture
def make_config(make_config: Callable[..., Any]) -> Callable[..., Any]:
    """A site running the agent's lifecycle: only there are pods given the ceiling and extendable."""
    return lambda **changes: make_config(**{"agent.enabled": True, **changes})


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 600)


@pytest.fixture
def adapter(client: KubeClient, make_config: Callable[..., Any], clock: Clock, utc: None) -> Adapter:  # noqa: F811
    return Adapter(make_config(), ALICE, client, clock=clock, rand=counter_rand())


def start(fake_kube: Any, job: str, at: str = START, **status: Any) -> None:
    fake_kube.set_pod_status(NS, job, node_name="n1", phase="Running", startTime=at, **status)


def pod_of(fake_kube: Any, job: str) -> dict[str, Any]:
    return fake_kube.get("pods", job, NS)


@pytest.fixture
def running(adapter: Adapter, fake_kube: Any) -> str:
    """Alice's Jupyter session, 1 h granted, started at T0 (ends T0 + 1h, its ceiling T0 + 8h)."""
    job = adapter.submit(JUPYTER)
    start(fake_kube, job)
    return job


def test_an_extend_moves_the_deadline_and_the_info_shows_it(adapter: Adapter, running: str, fake_kube: Any,
                                                             client: KubeClient) -> None:  # noqa: F811
    client.round_trips = 0
    assert adapter.extend(running, 1800) == Extension(running, T0 + 5400, T0 + CEILING, 1800)
    assert client.round_trips == 2  # the pod, one patch
    assert pod_of(fake_kube, running)["metadata"]["annotations"][vocab.DEADLINE_ANNOTATION] == "2026-12-06T16:00:00Z"
    info = adapter.info(running)
    assert (info.deadline, info.ceiling, info.time_left) == (T0 + 5400, T0 + CEILING, 5400 - 600)
    assert info.to_dict()["deadline"] == T0 + 5400 and info.to_dict()["time_left"] == 4800
    # ...and a second one adds to the extended deadline
    assert adapter.extend(running, 3600) == Extension(running, T0 + 9000, T0 + CEILING, 3600)
    assert adapter.info(running).deadline == T0 + 9000


def test_up_to_the_ceiling_and_not_a_second_past_it(adapter: Adapter, running: str, fake_kube: Any) -> None:
    before = pod_of(fake_kube, running)["metadata"]["resourceVersion"]
    with pytest.raises(errors.NotEntitled) as exc:
        adapter.extend(running, CEILING - 3600 + 1)
    assert str(exc.value) == ("this session can run at most until 22:30 (its profile's 8h limit): "
                              "ask for at most 7h")
    assert pod_of(fake_kube, running)["metadata"]["resourceVersion"] == before  # nothing changed
    assert adapter.extend(running, CEILING - 3600).deadline == T0 + CEILING


@pytest.mark.parametrize(("change", "message"), [
    ({"status": {"startTime": None}}, "session {job} has not started yet: its time runs from its start: "
                                      "extend it once it is running"),
    ({"annotations": {vocab.END_REASON_ANNOTATION: "Idle", vocab.END_MESSAGE_ANNOTATION: "reclaimed after 60 min "
                                                                                         "idle"}},
     "session {job} has ended (reclaimed after 60 min idle): start a new session to continue"),
    ({"status": {"phase": "Succeeded"}}, "session {job} has ended: start a new session to continue"),
    ({"now": T0 + 3600}, "session {job} reached its deadline at 15:30 and is being ended: start a new session to "
                         "continue"),
])
def test_a_session_that_cannot_be_extended_says_why(adapter: Adapter, running: str, fake_kube: Any, clock: Clock,
                                                    change: dict, message: str) -> None:
    pod = pod_of(fake_kube, running)
    pod["metadata"].setdefault("annotations", {}).update(change.get("annotations", {}))
    for key, value in change.get("status", {}).items():
        if value is None:
            pod["status"].pop(key, None)
        else:
            pod["status"][key] = value
    fake_kube.store.put("pods", pod, "MODIFIED")
    clock.now = change.get("now", clock.now)
    before = pod_of(fake_kube, running)
    with pytest.raises(errors.UsageError) as exc:
        adapter.extend(running, 600)
    assert str(exc.value) == message.format(job=running)
    assert pod_of(fake_kube, running) == before


def test_unknown_foreign_and_malformed_requests(adapter: Adapter, make_config: Callable[..., Any],
                                                client: KubeClient, running: str) -> None:  # noqa: F811
    with pytest.raises(errors.NotFound) as exc:
        adapter.extend("jupyter-zzzzzzzz", 600)
    assert str(exc.value) == ("Invalid job id specified: no job 'jupyter-zzzzzzzz' in namespace ood-alice: "
                              "see 'ood-k8s job list' for your jobs")
    with pytest.raises(errors.NotFound):  # Bob asks in his own namespace: Alice's session is not his
        Adapter(make_config(), BOB, client).extend(running, 600)
    for bad in (0, -60, 1.5, True):
        with pytest.raises(errors.UsageError):
            adapter.extend(running, bad)  # type: ignore[arg-type]
    with pytest.raises(errors.UsageError):
        adapter.extend("../etc", 600)


def test_a_warning_of_the_deadline_is_withdrawn_and_another_kept() -> None:
    pod = {"metadata": {"resourceVersion": "7", "annotations": {
        vocab.WARNING_REASON_ANNOTATION: "DeadlineSoon", vocab.WARNING_ANNOTATION: "ends at 15:30 (in 10 min)"}}}
    assert extend_patch(pod, T0 + 5400) == {"metadata": {"resourceVersion": "7", "annotations": {
        vocab.DEADLINE_ANNOTATION: "2026-12-06T16:00:00Z", vocab.WARNING_ANNOTATION: None,
        vocab.WARNING_REASON_ANNOTATION: None}}}
    pod["metadata"]["annotations"][vocab.WARNING_REASON_ANNOTATION] = "IdleSoon"
    assert extend_patch(pod, T0 + 5400) == {"metadata": {"resourceVersion": "7", "annotations": {
        vocab.DEADLINE_ANNOTATION: "2026-12-06T16:00:00Z"}}}


def test_the_warning_goes_on_the_api_too(adapter: Adapter, running: str, fake_kube: Any) -> None:
    pod = pod_of(fake_kube, running)
    pod["metadata"]["annotations"].update({vocab.WARNING_REASON_ANNOTATION: "DeadlineSoon",
                                           vocab.WARNING_ANNOTATION: "ends at 15:30 (in 10 min)"})
    fake_kube.store.put("pods", pod, "MODIFIED")
    adapter.extend(running, 600)
    ann = pod_of(fake_kube, running)["metadata"]["annotations"]
    assert vocab.WARNING_ANNOTATION not in ann and vocab.WARNING_REASON_ANNOTATION not in ann
    assert ann[vocab.DEADLINE_ANNOTATION] == rfc3339(T0 + 4200)


class Racing(KubeClient):
    """A client behind which another writer changes the pod after each read (``times`` times)."""

    def __init__(self, fk: Any, times: int) -> None:
        super().__init__(fk.url, token=fk.token, ca_file=fk.ca_file, sleep=lambda s: None, retries=1)
        self.fk, self.times = fk, times

    def get_or_none(self, kind: str, name: str, namespace: str | None = None, **kw: Any) -> Any:
        got = super().get_or_none(kind, name, namespace, **kw)
        if self.times > 0:
            self.times -= 1
            pod = self.fk.get("pods", name, namespace)
            pod["metadata"]["annotations"]["example.com/touched"] = str(self.times)
            self.fk.store.put("pods", pod, "MODIFIED")  # a new resourceVersion: the read one is stale
        return got


def test_a_concurrent_writer_costs_one_retry(running: str, fake_kube: Any, make_config: Callable[..., Any]) -> None:
    racing = Racing(fake_kube, times=1)
    ext = Adapter(make_config(), ALICE, racing, clock=lambda: T0 + 600).extend(running, 600)
    assert ext.deadline == T0 + 4200 and racing.round_trips == 4  # read, 409, read, patch
    stubborn = Racing(fake_kube, times=2)
    with pytest.raises(errors.Conflict) as exc:
        Adapter(make_config(), ALICE, stubborn, clock=lambda: T0 + 600).extend(running, 600)
    assert str(exc.value) == f"session {running} kept changing while it was being extended: try again in a moment"
    assert pod_of(fake_kube, running)["metadata"]["annotations"][vocab.DEADLINE_ANNOTATION] == rfc3339(T0 + 4200)


seen: list[tuple[Any, ...]] = []


def at_most_two_hours(cfg: Any, ident: Any, pod: dict[str, Any], new_deadline: float, now: float) -> None:
    """A site check as the budget helper registers one (EXTEND_CHECKS)."""
    seen.append((ident.username, pod["metadata"]["name"], new_deadline, now))
    if new_deadline - now > 2 * 3600:
        raise errors.NotEntitled("your course's GPU hours allow at most 2h more", "ask for less")


@pytest.fixture
def checked() -> Iterator[None]:
    seen.clear()
    extend_mod.EXTEND_CHECKS["test"] = f"{__name__}:at_most_two_hours"
    yield
    del extend_mod.EXTEND_CHECKS["test"]


def test_registered_checks_run_before_anything_changes(adapter: Adapter, running: str, fake_kube: Any,
                                                       checked: None) -> None:
    before = pod_of(fake_kube, running)
    with pytest.raises(errors.NotEntitled) as exc:
        adapter.extend(running, 3 * 3600)
    assert str(exc.value) == "your course's GPU hours allow at most 2h more: ask for less"
    assert pod_of(fake_kube, running) == before
    assert adapter.extend(running, 1800).deadline == T0 + 5400
    assert seen == [("alice", running, T0 + 4 * 3600, T0 + 600), ("alice", running, T0 + 5400, T0 + 600)]


@pytest.mark.parametrize(("text", "seconds"), [("1", 3600), ("0.5", 1800), ("2.25", 8100), (" 1 ", 3600),
                                               ("0.02", 72)])
def test_hours(text: str, seconds: int) -> None:
    assert seconds_of_hours(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("soon", "--hours: got 'soon', expected a number of hours such as 1 or 0.5"),
    ("0", "--hours: got '0', expected a number of hours above 0, such as 1 or 0.5"),
    ("-1", "--hours: got '-1', expected a number of hours above 0, such as 1 or 0.5"),
    ("nan", "--hours: got 'nan', expected a number of hours above 0, such as 1 or 0.5"),
    ("inf", "--hours: got 'inf', expected a number of hours above 0, such as 1 or 0.5"),
    ("0.001", "--hours: got '0.001', expected at least one minute (0.02 hours)"),
])
def test_bad_hours_are_one_line(text: str, message: str) -> None:
    with pytest.raises(errors.UsageError) as exc:
        seconds_of_hours(text)
    assert str(exc.value) == message


def test_ood_shows_the_time_left_to_the_deadline(adapter: Adapter, fake_kube: Any, clock: Clock) -> None:
    """psij's ``duration`` is OOD's wallclock_limit; the card shows limit - wallclock_time as the time remaining."""
    from ood_k8s.ood.psij_shim import wire_info

    job = adapter.submit(JUPYTER)
    assert (adapter.info(job).wallclock_limit, adapter.info(job).time_left) == (3600, None)  # queued: as granted
    start(fake_kube, job, containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x",
                                              "imageID": "", "state": {"running": {"startedAt": rfc3339(T0 + 30)}}}])
    adapter.extend(job, 1800)
    info = adapter.info(job)
    assert (info.wallclock_time, info.wallclock_limit, info.time_left) == (570, 5370, 4800)
    assert info.wallclock_limit - info.wallclock_time == info.time_left
    wire = wire_info(info)
    assert (wire["wall_time"], wire["duration"]) == (570, 5370)
    assert "deadline" not in wire and "time_left" not in wire  # the wire format keeps its keys


def test_the_end_note_prefers_the_agents_reason_to_a_disruption() -> None:
    from ood_k8s.ood.endnote import cause
    from ood_k8s.sessions.adapter import Info

    native = {"reason": "reclaimed after 60 min idle", "disruption": "TerminationByKubelet", "end_reason": "Idle"}
    assert cause(Info(id="j", status="completed", native=native)) == "reclaimed after 60 min idle"
    del native["end_reason"]
    assert cause(Info(id="j", status="completed", native=native)).startswith("the cluster reclaimed")


def test_a_site_without_the_agents_lifecycle_extends_nothing(client: KubeClient,  # noqa: F811
                                                             make_config: Callable[..., Any]) -> None:
    # Its pods' own deadline is the granted wall time, which nothing can raise: one line, nothing changed.
    for off in ({"agent.enabled": False}, {"agent.lifecycle": False}):
        with pytest.raises(errors.NotEntitled) as exc:
            Adapter(make_config(**off), ALICE, client).extend("jupyter-0001", 600)
        assert str(exc.value) == ("sessions cannot be extended on this site: it does not run the ood-k8s agent's "
                                  "lifecycle: start a new session to continue, or ask the administrators to enable "
                                  "agent.enabled")

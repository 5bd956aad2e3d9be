"""``/metrics``: the agent in Prometheus' text format, pinned whole; read from a running agent."""

from __future__ import annotations

import socket
import urllib.request
from types import SimpleNamespace
from typing import Any

from ood_k8s.agent import client, metrics
from ood_k8s.agent.metrics import HistogramSnapshot, Snapshot, WatchStats
from ood_k8s.core import vocab
from tests.agent.conftest import World, wait_until
from tests.conftest import ALICE, replace

SNAPSHOT = Snapshot(
    sessions={("running", "gpu-t4"): 3, ("queued", "cpu"): 1, ("completed", "none"): 2}, extended=1,
    cached={"pods": 6, "secrets": 6, "events": 2}, synced=True, age=0.0,
    watches=[WatchStats("Pod", 0.0, True, 2, 5), WatchStats("Event", 1.5, False, 1, 1)],
    answers={"answered": 10, "refused": 1},
    latency=HistogramSnapshot((0.001, 0.01), (9, 10, 11), 0.0425),
    lifecycle={"passes": 4, "last_pass": 1765000000.5, "last_pass_seconds": 0.25, "failures": 1, "leader": True,
               "leader_identity": "portal-1_abc", "identity": "portal-1_abc",
               "actions": {("ended", "IdleTimeout"): 2, ("warned", "DeadlineSoon"): 1}})

EXPECTED = '''\
# HELP ood_k8s_agent_sessions Session pods in the agent's view, by OOD state and profile.
# TYPE ood_k8s_agent_sessions gauge
ood_k8s_agent_sessions{state="completed",profile="none"} 2
ood_k8s_agent_sessions{state="queued",profile="cpu"} 1
ood_k8s_agent_sessions{state="running",profile="gpu-t4"} 3
# HELP ood_k8s_agent_sessions_extended Sessions whose deadline was moved past their granted walltime.
# TYPE ood_k8s_agent_sessions_extended gauge
ood_k8s_agent_sessions_extended 1
# HELP ood_k8s_agent_cached_objects Objects the agent's cache holds, by kind.
# TYPE ood_k8s_agent_cached_objects gauge
ood_k8s_agent_cached_objects{kind="events"} 2
ood_k8s_agent_cached_objects{kind="pods"} 6
ood_k8s_agent_cached_objects{kind="secrets"} 6
# HELP ood_k8s_agent_synced 1 once every watch has listed its objects.
# TYPE ood_k8s_agent_synced gauge
ood_k8s_agent_synced 1
# HELP ood_k8s_agent_view_age_seconds Seconds the view may lag the API server (the stalest watch).
# TYPE ood_k8s_agent_view_age_seconds gauge
ood_k8s_agent_view_age_seconds 0.0
# HELP ood_k8s_agent_watch_age_seconds Seconds since each watch last heard from the API server (0: live).
# TYPE ood_k8s_agent_watch_age_seconds gauge
ood_k8s_agent_watch_age_seconds{kind="Event"} 1.5
ood_k8s_agent_watch_age_seconds{kind="Pod"} 0.0
# HELP ood_k8s_agent_watch_live 1 while the watch's stream is open.
# TYPE ood_k8s_agent_watch_live gauge
ood_k8s_agent_watch_live{kind="Event"} 0
ood_k8s_agent_watch_live{kind="Pod"} 1
# HELP ood_k8s_agent_watch_lists_total Full lists of each kind: the first, then every relist.
# TYPE ood_k8s_agent_watch_lists_total counter
ood_k8s_agent_watch_lists_total{kind="Event"} 1
ood_k8s_agent_watch_lists_total{kind="Pod"} 2
# HELP ood_k8s_agent_watch_relists_total Lists after the first (a 410 Gone resourceVersion, a lost stream).
# TYPE ood_k8s_agent_watch_relists_total counter
ood_k8s_agent_watch_relists_total{kind="Event"} 0
ood_k8s_agent_watch_relists_total{kind="Pod"} 1
# HELP ood_k8s_agent_watch_streams_total Watch streams opened, by kind.
# TYPE ood_k8s_agent_watch_streams_total counter
ood_k8s_agent_watch_streams_total{kind="Event"} 1
ood_k8s_agent_watch_streams_total{kind="Pod"} 5
# HELP ood_k8s_agent_socket_answers_total Requests answered on the socket, by result.
# TYPE ood_k8s_agent_socket_answers_total counter
ood_k8s_agent_socket_answers_total{result="answered"} 10
ood_k8s_agent_socket_answers_total{result="refused"} 1
# HELP ood_k8s_agent_socket_answer_seconds Seconds the agent took to answer one request on its socket.
# TYPE ood_k8s_agent_socket_answer_seconds histogram
ood_k8s_agent_socket_answer_seconds_bucket{le="0.001"} 9
ood_k8s_agent_socket_answer_seconds_bucket{le="0.01"} 10
ood_k8s_agent_socket_answer_seconds_bucket{le="+Inf"} 11
ood_k8s_agent_socket_answer_seconds_sum 0.0425
ood_k8s_agent_socket_answer_seconds_count 11
# HELP ood_k8s_agent_lifecycle_passes_total Lifecycle passes this agent ran as the leader.
# TYPE ood_k8s_agent_lifecycle_passes_total counter
ood_k8s_agent_lifecycle_passes_total 4
# HELP ood_k8s_agent_lifecycle_last_pass_timestamp_seconds When the last pass ran (seconds since the epoch).
# TYPE ood_k8s_agent_lifecycle_last_pass_timestamp_seconds gauge
ood_k8s_agent_lifecycle_last_pass_timestamp_seconds 1765000000.5
# HELP ood_k8s_agent_lifecycle_last_pass_duration_seconds Seconds the last pass took.
# TYPE ood_k8s_agent_lifecycle_last_pass_duration_seconds gauge
ood_k8s_agent_lifecycle_last_pass_duration_seconds 0.25
# HELP ood_k8s_agent_lifecycle_task_failures_total Leader tasks that failed, over every pass.
# TYPE ood_k8s_agent_lifecycle_task_failures_total counter
ood_k8s_agent_lifecycle_task_failures_total 1
# HELP ood_k8s_agent_leader 1 while this agent holds the Lease and runs the lifecycle.
# TYPE ood_k8s_agent_leader gauge
ood_k8s_agent_leader 1
# HELP ood_k8s_agent_leader_info This agent's identity and the Lease holder it last saw.
# TYPE ood_k8s_agent_leader_info gauge
ood_k8s_agent_leader_info{identity="portal-1_abc",leader="portal-1_abc"} 1
# HELP ood_k8s_agent_actions_total What the leader did to sessions, by action and reason \
(ended/idle is a reclaim; ended/<deadline> an end at the deadline).
# TYPE ood_k8s_agent_actions_total counter
ood_k8s_agent_actions_total{action="ended",reason="IdleTimeout"} 2
ood_k8s_agent_actions_total{action="warned",reason="DeadlineSoon"} 1
'''


def test_a_snapshot_renders_as_prometheus_text() -> None:
    assert metrics.render(SNAPSHOT) == EXPECTED


def test_without_a_lifecycle_its_families_are_left_out_and_labels_are_escaped() -> None:
    plain = metrics.render(replace(SNAPSHOT, lifecycle=None, sessions={("queued", 'a"b\\c\nd'): 1}))
    assert "lifecycle" not in plain and "leader" not in plain and "actions_total" not in plain
    assert 'ood_k8s_agent_sessions{state="queued",profile="a\\"b\\\\c\\nd"} 1\n' in plain
    assert plain == EXPECTED.split("# HELP ood_k8s_agent_lifecycle_passes_total")[0].replace(
        EXPECTED[EXPECTED.index('ood_k8s_agent_sessions{'):EXPECTED.index("# HELP ood_k8s_agent_sessions_extended")],
        'ood_k8s_agent_sessions{state="queued",profile="a\\"b\\\\c\\nd"} 1\n')


def test_the_histogram_counts_each_value_once_in_its_bucket_cumulatively() -> None:
    h = metrics.Histogram((0.001, 0.01))
    for v in (0.0005, 0.001, 0.002, 0.5):
        h.observe(v)
    assert h.snapshot() == HistogramSnapshot((0.001, 0.01), (2, 3, 4), 0.5035)


def test_the_lifecycle_is_read_tolerantly() -> None:
    def failing() -> dict[str, Any]:
        raise RuntimeError("not yet")

    assert metrics.lifecycle_stats(SimpleNamespace()) is None
    assert metrics.lifecycle_stats(SimpleNamespace(lifecycle=None)) is None
    assert metrics.lifecycle_stats(SimpleNamespace(lifecycle=SimpleNamespace(stats=failing))) is None
    assert metrics.lifecycle_stats(SimpleNamespace(lifecycle=SimpleNamespace(stats=lambda: {"passes": 1}))) == \
           {"passes": 1}


def test_sessions_are_counted_by_state_profile_and_extension() -> None:
    def pod(phase: str, profile: str | None, deadline: str | None = None) -> dict[str, Any]:
        ann = {vocab.WALLTIME_ANNOTATION: "3600"}
        if deadline:
            ann[vocab.DEADLINE_ANNOTATION] = deadline
        labels = {vocab.PROFILE_LABEL: profile} if profile else {}
        return {"metadata": {"labels": labels, "annotations": ann},
                "status": {"phase": phase, "startTime": "2026-01-01T00:00:00Z"}, "spec": {}}

    pods = [pod("Pending", "cpu"), pod("Succeeded", "cpu"), pod("Failed", None),
            pod("Succeeded", "gpu", "2026-01-01T03:00:00Z"), pod("Succeeded", "gpu", "2026-01-01T01:00:00Z")]
    assert metrics.session_counts(pods, now=1767229200.0) == (
        {("queued", "cpu"): 1, ("completed", "cpu"): 1, ("completed", "none"): 1, ("completed", "gpu"): 2}, 1)


def test_a_running_agent_serves_its_metrics_on_localhost(world: World) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    world.cfg = replace(world.cfg, **{"agent.health_port": port})
    job = world.submit()
    agent = world.start_agent()
    world.seen(ALICE, job)
    assert client.ask(world.cfg.agent.socket, "psij", job, "alice") is not None
    assert client.ask(world.cfg.agent.socket, "nonsense", "-") is None
    wait_until(lambda: sum(agent.answers.values()) == 2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"] == metrics.CONTENT_TYPE
        text = resp.read().decode()
    lines = set(text.splitlines())
    assert {'ood_k8s_agent_sessions{state="queued",profile="cpu"} 1', "ood_k8s_agent_synced 1",
            'ood_k8s_agent_socket_answers_total{result="answered"} 1',
            'ood_k8s_agent_socket_answers_total{result="refused"} 1',
            "ood_k8s_agent_socket_answer_seconds_count 2", 'ood_k8s_agent_cached_objects{kind="pods"} 1'} <= lines
    assert agent.health is not None and agent.health.server_address[0] == "127.0.0.1"

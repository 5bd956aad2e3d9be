"""Leader task "idle": pure decisions by whole value, then passes over sessions on the fake API (so the
warnings, ends and Events are real HTTP) with a fake JupyterLab, a fake Prometheus and a clock of our own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ood_k8s.agent import tasks
from ood_k8s.agent.actions import Actions
from ood_k8s.agent.activity import Activity, decode_secret
from ood_k8s.agent.idle import (
    ACTIVE,
    END,
    KEEP,
    RESUMED,
    UNKNOWN,
    WARN,
    GpuPeaks,
    Idle,
    Limits,
    Reading,
    Verdict,
    app_reading,
    decide,
    gpu_reading,
    limits_of,
    minutes,
    run_bounded,
    running,
)
from ood_k8s.agent.service import SESSIONS
from ood_k8s.agent.tasks import PassContext
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.timefmt import rfc3339
from tests.agent.conftest import READY, World
from tests.agent.test_activity import T0, FakeJupyter, FakePrometheus, jupyter, prometheus  # noqa: F401 - fixtures
from tests.conftest import ALICE, replace

L = Limits(idle=3600, gpu=0, warning=600, threshold=5.0)
G = Limits(idle=0, gpu=1800, warning=600, threshold=5.0)
WARNED = {vocab.WARNING_REASON_ANNOTATION: "IdleSoon", vocab.WARNING_ANNOTATION: "idle for 50 min: ..."}
OTHER = {vocab.WARNING_REASON_ANNOTATION: "DeadlineSoon", vocab.WARNING_ANNOTATION: "ends in 10 min"}
APP_WARN = "idle for 50 min: it will be stopped in 10 min unless you use it"
APP_LATE = "idle for 60 min: it will be stopped shortly unless you use it"
GPU_WARN = "GPUs under 5% for 20 min: it will be stopped in 10 min unless you use them"
GPU_LATE = "GPUs under 5% for 30 min: it will be stopped shortly unless you use them"


# --- pure decisions ---------------------------------------------------------------------------------


def test_minutes() -> None:
    assert [minutes(s) for s in (0, 59, 3000, 3600, 5400, 7200, 7260)] == \
        ["1 min", "1 min", "50 min", "60 min", "90 min", "2 h", "121 min"]


@pytest.mark.parametrize(("limits", "act", "now", "want"), [
    (L, None, T0, Reading(UNKNOWN)),
    (L, Activity(None, False, ""), T0, Reading(UNKNOWN)),
    (L, Activity(T0 - 9000, True, ""), T0, Reading(ACTIVE)),  # a busy kernel is use, however old its output
    (L, Activity(T0, False, ""), T0 + 2999, Reading(ACTIVE)),
    (L, Activity(T0, False, ""), T0 + 3000, Reading(WARN, APP_WARN)),
    (L, Activity(T0, False, ""), T0 + 3600, Reading(END, APP_LATE, "reclaimed after 60 min idle")),
    (L._replace(idle=0), Activity(T0, False, ""), T0 + 9000, Reading(UNKNOWN)),
    (L._replace(idle=600, warning=900), Activity(T0, False, ""), T0 + 599, Reading(ACTIVE)),
    (L._replace(idle=600, warning=900), Activity(T0, False, ""), T0 + 600,
     Reading(END, "idle for 10 min: it will be stopped shortly unless you use it", "reclaimed after 10 min idle")),
])
def test_app_reading(limits: Limits, act: Activity | None, now: float, want: Reading) -> None:
    assert app_reading(limits, act, now) == want


@pytest.mark.parametrize(("limits", "peaks", "ran", "want"), [
    (G, None, 3600, Reading(UNKNOWN)),
    (G, GpuPeaks(None, None), 3600, Reading(UNKNOWN)),
    (G, GpuPeaks(3, 4), 3600, Reading(END, GPU_LATE, "reclaimed: GPUs under 5% for 30 min")),
    (G, GpuPeaks(3, 5), 3600, Reading(END, GPU_LATE, "reclaimed: GPUs under 5% for 30 min")),
    (G, GpuPeaks(3, 40), 3600, Reading(WARN, GPU_WARN)),
    (G, GpuPeaks(30, 40), 3600, Reading(ACTIVE)),
    (G, GpuPeaks(3, 4), 1500, Reading(WARN, GPU_WARN)),  # 25 min in: the 30-min window is not full yet
    (G, GpuPeaks(3, 4), 600, Reading(UNKNOWN)),  # 10 min in: neither window is
    (G._replace(gpu=0), GpuPeaks(0, 0), 9000, Reading(UNKNOWN)),
])
def test_gpu_reading(limits: Limits, peaks: GpuPeaks | None, ran: float, want: Reading) -> None:
    assert gpu_reading(limits, peaks, T0 - ran, T0) == want


W = Reading(WARN, "w")
E = Reading(END, "late", "ended")
A = Reading(ACTIVE)
U = Reading(UNKNOWN)


@pytest.mark.parametrize(("annots", "readings", "warning", "want"), [
    ({}, [U, U], 600, KEEP),
    ({}, [A, U], 600, KEEP),
    ({}, [W, U], 600, Verdict("warn", "w")),
    ({}, [E, U], 600, Verdict("warn", "late")),  # never ended unwarned: warned now, ended next pass
    ({}, [A, E], 600, Verdict("warn", "late")),  # idle GPUs count, however busy the notebook
    (WARNED, [W, U], 600, KEEP),  # warned: the end comes when it is due
    (WARNED, [E, U], 600, Verdict("end", "ended")),
    (WARNED, [U, E], 600, Verdict("end", "ended")),
    (WARNED, [A, U], 600, Verdict("withdraw", RESUMED)),
    (WARNED, [U, U], 600, KEEP),  # no answer is not activity: the warning stands
    (OTHER, [W, U], 600, KEEP),  # one warning at a time
    (OTHER, [E, U], 600, KEEP),
    (OTHER, [A, U], 600, KEEP),  # not ours to withdraw
    ({}, [E, U], 0, Verdict("end", "ended")),  # no warning asked for
    (OTHER, [E, U], 0, KEEP),
])
def test_decide(annots: dict[str, str], readings: list[Reading], warning: int, want: Verdict) -> None:
    assert decide(annots, readings, warning) == want


def _cfg(**agent: Any) -> Config:
    cfg = Config()
    profiles = [replace(p, idle_timeout=3600) if p.name == "cpu" else
                replace(p, gpu_idle_timeout=1800) if p.name == "gpu-t4" else p for p in cfg.profiles]
    return replace(cfg, profiles=profiles, **{f"agent.{k}": v for k, v in agent.items()})


def _pod(profile: str, gpus: int = 0) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {"metadata": {"labels": {vocab.PROFILE_LABEL: profile}},
            "spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", **limits}}}]}}


def test_limits_of() -> None:
    cfg = _cfg(prometheus_url="http://prometheus:9090")
    assert limits_of(cfg, _pod("cpu")) == (Limits(3600, 0, 600, 5.0), "jupyter")
    assert limits_of(cfg, _pod("gpu-t4", 1)) == (Limits(0, 1800, 600, 5.0), "jupyter")
    assert limits_of(_cfg(), _pod("gpu-t4", 1)) is None  # no Prometheus: nothing to go by
    assert limits_of(cfg, _pod("gpu-t4")) is None  # no GPU held
    assert limits_of(cfg, _pod("gpu-a10g", 1)) is None  # its profile asks for nothing
    assert limits_of(cfg, _pod("gone")) is None


def test_running() -> None:
    pod = {"metadata": {}, "status": {"phase": "Running", "startTime": "2027-01-01T00:00:00Z"}}
    assert running(pod)
    assert not running({**pod, "status": {"phase": "Pending"}})
    assert not running({**pod, "metadata": {"deletionTimestamp": "2027-01-01T00:00:00Z"}})
    assert not running({**pod, "metadata": {"annotations": {vocab.END_REASON_ANNOTATION: "Idle"}}})


def test_run_bounded_keeps_to_its_budget() -> None:
    gate = threading.Event()
    calls = {i: (lambda i=i: i * 10) for i in range(5)}
    calls[5] = lambda: gate.wait(5)  # type: ignore[assignment, return-value]
    calls[6] = lambda: 1 // 0
    started = time.monotonic()
    got = run_bounded(calls, workers=3, budget=0.3, log=logging.getLogger("test"))
    assert time.monotonic() - started < 2
    gate.set()
    assert got == {0: 0, 1: 10, 2: 20, 3: 30, 4: 40}


def test_idle_runs_after_the_deadline_and_before_pending() -> None:
    names = list(tasks.TASKS)
    assert names.index("idle") < names.index("pending")
    assert "deadline" not in names or names.index("deadline") < names.index("idle")
    assert tasks.load("idle").name == "idle"


# --- passes on the fake API ---------------------------------------------------------------------------


class Sessions:
    def __init__(self, world: World, cfg: Config) -> None:
        self.world = world
        self.cfg = cfg

    def start(self, app: FakeJupyter, started: float, **native: Any) -> str:
        """A running session of ALICE's whose app is ``app`` (which takes the password the job was given)."""
        job = self.world.submit(ALICE, native={"container": {"port": app.port}, **native})
        self.world.fk.set_pod_status("ood-alice", job, node_name="n1",
                                     **{**READY, "podIP": "127.0.0.1", "startTime": rfc3339(started)})
        app.password = decode_secret(self.world.client.get("Secret", f"{job}-secret", "ood-alice"))["password"]
        return job

    def ctx(self, now: float) -> PassContext:
        pods = self.world.client.list("Pod", label_selector=SESSIONS)
        return PassContext(self.cfg, self.world.client, now, pods, Actions(self.world.client, now, host="test"))

    def run(self, now: float, task: Idle | None = None) -> list[tuple[str, str, str]]:
        ctx = self.ctx(now)
        (task or Idle(timeout=2.0, budget=10.0)).run(ctx)
        return ctx.actions.done

    def annotations(self, job: str) -> dict[str, str]:
        ann = self.world.client.get("Pod", job, "ood-alice")["metadata"].get("annotations") or {}
        return {k: v for k, v in ann.items() if k in (vocab.WARNING_ANNOTATION, vocab.WARNING_REASON_ANNOTATION,
                                                      vocab.END_REASON_ANNOTATION, vocab.END_MESSAGE_ANNOTATION)}

    def events(self) -> list[tuple[str, str, str]]:
        return [(e["type"], e["reason"], e["message"]) for e in self.world.client.list("Event", "ood-alice")
                if e.get("source", {}).get("component") == vocab.AGENT_COMPONENT]


@pytest.fixture
def sessions(world: World, prometheus: FakePrometheus) -> Iterator[Sessions]:  # noqa: F811 - the fixture
    yield Sessions(world, _cfg(prometheus_url=prometheus.url))


def test_an_unused_session_is_warned_then_ended(sessions: Sessions, jupyter: FakeJupyter) -> None:  # noqa: F811
    job = sessions.start(jupyter, T0 - 7200)
    where = f"ood-alice/{job}"
    assert sessions.run(T0 + 2999) == []
    assert sessions.run(T0 + 3000) == [("warned", where, "IdleSoon")]
    assert sessions.annotations(job) == {vocab.WARNING_ANNOTATION: APP_WARN,
                                         vocab.WARNING_REASON_ANNOTATION: "IdleSoon"}
    assert sessions.run(T0 + 3300) == []  # warned once
    assert sessions.run(T0 + 3600) == [("ended", where, "Idle")]
    pod = sessions.world.client.get("Pod", job, "ood-alice")
    assert sessions.annotations(job) == {vocab.WARNING_ANNOTATION: APP_WARN,
                                         vocab.WARNING_REASON_ANNOTATION: "IdleSoon",
                                         vocab.END_REASON_ANNOTATION: "Idle",
                                         vocab.END_MESSAGE_ANNOTATION: "reclaimed after 60 min idle"}
    assert pod["spec"]["activeDeadlineSeconds"] == 7200 + 3600  # the time it has run: the kubelet stops it
    assert sessions.run(T0 + 3700) == []  # ended: nothing twice
    assert sorted(sessions.events()) == [("Warning", "Idle", "reclaimed after 60 min idle"),
                                         ("Warning", "IdleSoon", APP_WARN)]
    assert jupyter.logins == 1


def test_use_after_the_warning_withdraws_it_and_the_next_spell_is_warned_anew(
        sessions: Sessions, jupyter: FakeJupyter) -> None:  # noqa: F811
    job = sessions.start(jupyter, T0 - 7200)
    where = f"ood-alice/{job}"
    assert sessions.run(T0 + 3000) == [("warned", where, "IdleSoon")]
    jupyter.idle_since(T0 + 3100)  # the student came back
    assert sessions.run(T0 + 3200) == [("withdrew", where, "WarningWithdrawn")]
    assert sessions.annotations(job) == {}
    assert sessions.run(T0 + 3700) == []  # 10 min idle: fine
    assert sessions.run(T0 + 3100 + 3000) == [("warned", where, "IdleSoon")]
    assert sorted(e[:2] for e in sessions.events()) == [("Normal", "WarningWithdrawn"), ("Warning", "IdleSoon"),
                                                        ("Warning", "IdleSoon")]


def test_a_busy_kernel_or_no_answer_is_never_idle(sessions: Sessions, jupyter: FakeJupyter) -> None:  # noqa: F811
    job = sessions.start(jupyter, T0 - 7200)
    jupyter.status.update(kernels=1)
    jupyter.kernels.append({"id": "k", "execution_state": "busy", "last_activity": rfc3339(T0 - 7000)})
    assert sessions.run(T0 + 9000) == []
    jupyter.kernels.clear()
    jupyter.status.update(kernels=0)
    jupyter.password = "changed"  # the probe's credential no longer works
    jupyter.cookies.clear()
    assert sessions.run(T0 + 9000) == []
    jupyter.stop()
    assert sessions.run(T0 + 9000) == []
    assert sessions.annotations(job) == {}


def test_a_pass_over_many_hung_sessions_keeps_to_its_budget(sessions: Sessions, jupyter: FakeJupyter) -> None:  # noqa: F811
    for _ in range(12):
        sessions.start(jupyter, T0 - 7200)
    jupyter.hang.set()
    started = time.monotonic()
    assert sessions.run(T0 + 9000, Idle(workers=2, timeout=0.5, budget=0.5)) == []
    assert time.monotonic() - started < 2  # 12 sessions x 0.5 s / 2 workers: 3 s without the pass's budget
    jupyter.release.set()


def test_gpus_idle_for_the_window_end_the_session(sessions: Sessions, prometheus: FakePrometheus,  # noqa: F811
                                                  jupyter: FakeJupyter) -> None:  # noqa: F811
    job = sessions.start(jupyter, T0, profile="gpu-t4")
    where = f"ood-alice/{job}"
    prometheus.utilisation("ood-alice", job, {1200: 2, 1800: 2})
    prometheus.utilisation("ood-bob", "other", {1200: 0, 1800: 0}, exported=False)
    assert sessions.run(T0 + 1199) == []  # not 20 min in yet
    assert sessions.run(T0 + 1200) == [("warned", where, "IdleSoon")]
    assert sessions.annotations(job)[vocab.WARNING_ANNOTATION] == GPU_WARN
    assert sessions.run(T0 + 1500) == []
    assert sessions.run(T0 + 1800) == [("ended", where, "Idle")]
    assert sessions.annotations(job)[vocab.END_MESSAGE_ANNOTATION] == "reclaimed: GPUs under 5% for 30 min"
    assert len(prometheus.queries) == 4  # one query a pass, for every session and window
    assert prometheus.queries[-1]["time"] == [f"{T0 + 1800:.3f}"]
    assert "[1200s]" in prometheus.queries[0]["query"][0] and "[1800s]" in prometheus.queries[0]["query"][0]
    assert jupyter.requests == []  # gpu-t4 sets no idle_timeout: its app is not asked


def test_busy_gpus_keep_the_session(sessions: Sessions, prometheus: FakePrometheus,  # noqa: F811
                                    jupyter: FakeJupyter) -> None:  # noqa: F811
    job = sessions.start(jupyter, T0, profile="gpu-t4")
    prometheus.utilisation("ood-alice", job, {1200: 80, 1800: 95})
    assert sessions.run(T0 + 3600) == []
    prometheus.result.clear()  # the exporter lost the series: unknown, not idle
    assert sessions.run(T0 + 3600) == []
    prometheus.fail = (503, {"status": "error"})
    assert sessions.run(T0 + 3600) == []


def test_the_registered_task_runs_in_a_pass(sessions: Sessions, jupyter: FakeJupyter) -> None:  # noqa: F811
    job = sessions.start(jupyter, T0 - 7200)
    ctx = sessions.ctx(T0 + 3000)
    assert tasks.run_pass(ctx, ["idle"]) == []
    assert ctx.actions.done == [("warned", f"ood-alice/{job}", "IdleSoon")]


def test_the_running_agent_gives_the_probes_its_cached_secrets(sessions: Sessions,
                                                                jupyter: FakeJupyter) -> None:  # noqa: F811
    # The cache already watches the sessions' Secrets: a pass asks the API for none (--once, which has no
    # cache, lists them once per pass).
    job = sessions.start(jupyter, T0 - 7200)
    cached = sessions.world.client.list("Secret", label_selector=SESSIONS)
    ctx = sessions.ctx(T0 + 3000)
    ctx.session_secrets = lambda: cached
    sessions.world.fk.reset_requests()
    Idle(timeout=2.0, budget=10.0).run(ctx)
    assert ctx.actions.done == [("warned", f"ood-alice/{job}", "IdleSoon")]  # it logged in with the password
    assert not [r for r in sessions.world.fk.requests if "/secrets" in r.path]

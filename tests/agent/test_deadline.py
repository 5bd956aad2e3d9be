"""Leader task "deadline": pure decisions by whole value, then passes over a session on the fake API (real
HTTP warnings, ends, Events) driven by a clock of our own, an extend in between, and the warning file."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ood_k8s.agent import tasks
from ood_k8s.agent.actions import Actions
from ood_k8s.agent.deadline import END, TASK, WARN, Decision, decide
from ood_k8s.agent.service import SESSIONS
from ood_k8s.agent.tasks import PassContext
from ood_k8s.core import vocab
from ood_k8s.ood.endnote import WARNING_FILE, pod_owner, session_dir
from ood_k8s.sessions.adapter import Adapter
from tests.agent.conftest import READY, World
from tests.conftest import ALICE, Clock
from tests.sessions.test_lifetime import START, T0, utc  # noqa: F401 - the utc fixture

W, D = vocab.WALLTIME_ANNOTATION, vocab.DEADLINE_ANNOTATION


def pod(ann: dict[str, str] | None = None, started: str | None = START, phase: str = "Running",
        deleting: bool = False) -> dict[str, Any]:
    p: dict[str, Any] = {"metadata": {"name": "jupyter-0a1b2c3d", "namespace": "ood-alice",
                                      "annotations": {W: "3600", **(ann or {})}},
                         "spec": {"activeDeadlineSeconds": 8 * 3600}, "status": {"phase": phase}}
    if started:
        p["status"]["startTime"] = started
    if deleting:
        p["metadata"]["deletionTimestamp"] = START
    return p


WARNING = "ends at 15:30 (in 10 min): save your work, or extend it"


@pytest.mark.parametrize(("p", "now", "warning", "want"), [
    (pod(), T0 + 2999, 600, None),
    (pod(), T0 + 3000, 600, Decision(WARN, WARNING)),
    (pod(), T0 + 3599, 600, Decision(WARN, "ends at 15:30 (in 1 s): save your work, or extend it")),
    (pod(), T0 + 3600, 600, Decision(END, "ended at its deadline (1h)")),
    (pod(), T0 + 9999, 600, Decision(END, "ended at its deadline (1h)")),  # the agent was down: at once
    (pod(), T0 + 3000, 0, None),  # no warning asked for
    (pod(), T0 + 3599, 0, None),
    (pod({D: "2026-12-06T17:00:00Z"}), T0 + 3600, 600, None),  # extended to 17:00
    (pod({D: "2026-12-06T17:00:00Z"}), T0 + 9000, 600, Decision(END, "ended at its deadline (2h30m)")),
    (pod({D: "2030-01-01T00:00:00Z"}), T0 + 8 * 3600, 600, Decision(END, "ended at its deadline (8h)")),  # ceiling
    (pod(started=None, phase="Pending"), T0 + 9999, 600, None),  # queued: its time has not begun
    (pod({vocab.END_REASON_ANNOTATION: "Idle"}), T0 + 9999, 600, None),  # another task ended it
    (pod(phase="Succeeded"), T0 + 9999, 600, None),
    (pod(deleting=True), T0 + 9999, 600, None),
    (pod({vocab.WARNING_REASON_ANNOTATION: "IdleSoon"}), T0 + 3600, 600, Decision(END, "ended at its deadline (1h)")),
])
def test_decide(utc: None, p: dict[str, Any], now: float, warning: int, want: Decision | None) -> None:  # noqa: F811
    assert decide(p, now, warning) == want


def test_the_deadline_runs_after_the_budget_and_before_idle() -> None:
    names = list(tasks.TASKS)
    assert names.index("budget") < names.index("deadline") < names.index("idle")
    assert tasks.load("deadline") is TASK and TASK.name == "deadline"


def test_session_dir_and_owner() -> None:
    p = {"spec": {"containers": [{"env": [{"name": "OOD_STDOUT_PATH", "value": "/home/alice/s/1/output.log"}]}],
                  "securityContext": {"runAsUser": 20001, "runAsGroup": 20001, "supplementalGroups": [30001, 0]}}}
    assert session_dir(p) == "/home/alice/s/1"
    assert pod_owner(p, 1000) == (20001, 20001, (30001,))
    assert pod_owner(p, 30000) is None  # a system account's: never acted as
    p["spec"]["containers"][0]["env"][0]["value"] = "output.log"
    assert session_dir(p) is None and session_dir({"spec": {"containers": [{}]}}) is None


# --- passes on the fake API ----------------------------------------------------------------------------------


@pytest.fixture
def folder() -> Iterator[str]:
    """A session folder Alice owns, reachable by her uid (not pytest's 0700 tmp_path)."""
    top = tempfile.mkdtemp(prefix="ood-k8s-deadline-")
    os.chmod(top, 0o755)  # noqa: S103 - as the homes' parent
    staged = os.path.join(top, "staged")
    os.mkdir(staged)
    os.chown(staged, ALICE.uid, ALICE.gid)
    yield staged
    shutil.rmtree(top, ignore_errors=True)


def run(world: World, now: float) -> list[tuple[str, str, str]]:
    pods = world.client.list("Pod", label_selector=SESSIONS)
    ctx = PassContext(world.cfg, world.client, now, pods, Actions(world.client, now, host="test"))
    assert tasks.run_pass(ctx, ["deadline"]) == []
    return ctx.actions.done


def lifetime_annotations(world: World, job: str) -> dict[str, str]:
    ann = world.client.get("Pod", job, "ood-alice")["metadata"].get("annotations") or {}
    return {k: v for k, v in ann.items() if k in (vocab.WARNING_ANNOTATION, vocab.WARNING_REASON_ANNOTATION,
                                                  vocab.END_REASON_ANNOTATION, vocab.END_MESSAGE_ANNOTATION, D)}


@pytest.mark.skipif(os.geteuid() != 0, reason="writing as the session's user needs root")
def test_warned_extended_warned_again_then_ended(world: World, folder: str, utc: None) -> None:  # noqa: F811
    job = world.submit(ALICE, output_path=f"{folder}/output.log")
    world.fk.set_pod_status("ood-alice", job, node_name="n1", **{**READY, "startTime": START})
    where = f"ood-alice/{job}"
    assert run(world, T0 + 2999) == []
    assert run(world, T0 + 3000) == [("warned", where, "DeadlineSoon")]
    assert lifetime_annotations(world, job) == {vocab.WARNING_ANNOTATION: WARNING,
                                                vocab.WARNING_REASON_ANNOTATION: "DeadlineSoon"}
    with open(os.path.join(folder, WARNING_FILE)) as fh:
        assert fh.read() == WARNING + "\n"
    assert os.stat(os.path.join(folder, WARNING_FILE)).st_uid == ALICE.uid  # written as Alice, never as root
    clock = Clock(T0 + 3300)
    alice = Adapter(world.site, ALICE, world.client, clock=clock)
    assert alice.info(job).reason == f"ready; {WARNING}"
    assert run(world, T0 + 3300) == []  # warned once

    alice.extend(job, 1800)  # the student extends: the warning is withdrawn, the deadline is 16:00
    assert lifetime_annotations(world, job) == {D: "2026-12-06T16:00:00Z"}
    assert not os.path.exists(os.path.join(folder, WARNING_FILE))  # ...and its file
    assert alice.info(job).reason == "ready"
    assert run(world, T0 + 3600) == []
    assert run(world, T0 + 4800) == [("warned", where, "DeadlineSoon")]  # warned anew before the new one
    with open(os.path.join(folder, WARNING_FILE)) as fh:
        assert fh.read() == "ends at 16:00 (in 10 min): save your work, or extend it\n"
    assert run(world, T0 + 5400) == [("ended", where, "DeadlineReached")]
    ended = world.client.get("Pod", job, "ood-alice")
    assert ended["spec"]["activeDeadlineSeconds"] == 5400  # the kubelet stops it now
    clock.now = T0 + 5400
    assert alice.info(job).reason == "ending: ended at its deadline (1h30m)"
    assert run(world, T0 + 5500) == []  # nothing twice
    events = [(e["type"], e["reason"], e["message"]) for e in world.client.list("Event", "ood-alice")
              if e.get("source", {}).get("component") == vocab.AGENT_COMPONENT]
    assert sorted(events) == [("Warning", "DeadlineReached", "ended at its deadline (1h30m)"),
                              ("Warning", "DeadlineSoon", WARNING),
                              ("Warning", "DeadlineSoon", "ends at 16:00 (in 10 min): save your work, or extend it")]
    world.fk.set_pod_status("ood-alice", job, phase="Failed", reason="DeadlineExceeded")
    assert alice.info(job).reason == "ended at its deadline (1h30m)"


@pytest.mark.skipif(os.geteuid() != 0, reason="writing as the session's user needs root")
def test_no_warning_file_in_a_folder_that_is_not_the_users(world: World, folder: str, utc: None) -> None:  # noqa: F811
    os.chown(folder, 0, 0)  # e.g. a symlink or a path a student pointed at someone else's folder
    job = world.submit(ALICE, output_path=f"{folder}/output.log")
    world.fk.set_pod_status("ood-alice", job, node_name="n1", **{**READY, "startTime": START})
    assert run(world, T0 + 3000) == [("warned", f"ood-alice/{job}", "DeadlineSoon")]  # the reason stands anyway
    assert not os.path.exists(os.path.join(folder, WARNING_FILE))
    link = folder + "-link"
    os.symlink("/root", link)
    job2 = world.submit(ALICE, output_path=f"{link}/output.log")
    world.fk.set_pod_status("ood-alice", job2, node_name="n1", **{**READY, "startTime": START})
    assert run(world, T0 + 3000) == [("warned", f"ood-alice/{job2}", "DeadlineSoon")]
    assert not os.path.exists(os.path.join("/root", WARNING_FILE))


def test_a_session_that_never_started_is_left_alone(world: World) -> None:
    world.submit(ALICE)
    assert run(world, time.time() + 30 * 86400) == []

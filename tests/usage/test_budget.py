"""GPU-hour budgets: what is left, the one-line refusals, and the agent ending a session when it runs out."""

from __future__ import annotations

import pytest

from ood_k8s.core import vocab
from ood_k8s.core.errors import NotEntitled
from ood_k8s.usage import answers, budget, budget_task
from ood_k8s.usage.budget import Budget
from ood_k8s.usage.entry import Entry
from ood_k8s.usage.ledger import Ledger
from tests.conftest import ALICE, BOB, replace
from tests.usage.conftest import AGENT_NS, CS109B, HOUR, T0, World, config


def _e(uid: str, user: str, start: float, hours: float, gpus: int = 1, course: str = "cs109b",
       running: bool = False) -> Entry:
    return Entry(uid, user, course, "gpu-t4", f"j{uid}", start, start + hours * HOUR, gpus, running=running)


def test_remaining_counts_the_term_the_course_and_running_sessions() -> None:
    cfg = config(courses=[replace(CS109B, gpu_hours_total=100.0)])
    entries = [
        _e("1", "alice", T0, 10.0),
        _e("2", "alice", T0 + 86400, 2.0, gpus=2, running=True),
        _e("3", "alice", T0 - 30 * 86400, 50.0),  # before the term: not counted
        _e("4", "alice", T0, 5.0, course=""),  # not a course session
        _e("5", "bob", T0, 7.0),
    ]
    assert budget.remaining(cfg, ALICE, T0, entries) == [
        Budget("cs109b", 14.0, 20.0, 6.0, "student", 2),
        Budget("cs109b", 21.0, 100.0, 79.0, "course", 2),
    ]
    assert budget.remaining(cfg, replace(ALICE, groups=("alice",)), T0, entries) == []  # not a student
    assert budget.course_usage(cfg, "cs109b", T0, entries) == [Budget("cs109b", 21.0, 100.0, 79.0, "course", 2)]


@pytest.mark.parametrize(("left", "gpus", "hours", "line"), [
    (1.5, 1, 2, "1.5 GPU-hours left this term in cs109b: ask for at most 1 hour"),
    (7.25, 1, 8, "7.25 GPU-hours left this term in cs109b: ask for at most 7 hours"),
    (6.0, 2, 4, "6 GPU-hours left this term in cs109b: ask for at most 3 hours or fewer GPUs"),
    (0.5, 1, 1, "0.5 GPU-hours left this term in cs109b: ask for at most 30 minutes"),
    (1.0, 4, 1, "1 GPU-hour left this term in cs109b: ask for 1 GPU for at most 1 hour"),
    (0.0, 1, 1, "no GPU-hours left this term in cs109b: ask your instructor for more, or choose a session type "
                "without GPUs"),
])
def test_the_one_line_refusals(left: float, gpus: int, hours: int, line: str) -> None:
    budgets = [Budget("cs109b", 20.0 - left, 20.0, left)]
    with pytest.raises(NotEntitled) as err:
        budget.check_request(budgets, "cs109b", gpus, hours * HOUR)
    assert str(err.value) == line
    budget.check_request(budgets, "other-course", gpus, hours * HOUR)  # another course's budget: no matter


def test_a_request_that_fits_passes_and_the_course_total_refuses_too() -> None:
    budget.check_request([Budget("cs109b", 18.0, 20.0, 2.0)], "cs109b", 1, 2 * HOUR)
    with pytest.raises(NotEntitled, match=r"^3 GPU-hours left this term in cs109b for the whole course: ask for "
                                          r"at most 3 hours$"):
        budget.check_request([Budget("cs109b", 97.0, 100.0, 3.0, "course")], "cs109b", 1, 4 * HOUR)


def test_extend_checks_the_time_from_now_to_the_new_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config()
    monkeypatch.setattr(answers, "ask_budgets", lambda cfg, ident: [Budget("cs109b", 18.0, 20.0, 2.0)])
    pod = {"metadata": {"labels": {vocab.COURSE_LABEL: "cs109b"}},
           "spec": {"containers": [{"name": "app", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
    budget.check_extend(cfg, ALICE, pod, T0 + 2 * HOUR, T0)  # two more hours: fits
    with pytest.raises(NotEntitled) as err:
        budget.check_extend(cfg, ALICE, pod, T0 + 3 * HOUR, T0)
    assert str(err.value) == "2 GPU-hours left this term in cs109b: extend it to at most 2 hours from now"


def test_extend_and_submit_fail_open_with_a_note_when_no_agent_answers(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config()
    monkeypatch.setattr(answers, "ask_budgets", lambda cfg, ident: None)
    pod = {"metadata": {"labels": {vocab.COURSE_LABEL: "cs109b"}},
           "spec": {"containers": [{"name": "app", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
    budget.check_extend(cfg, ALICE, pod, T0 + 300 * HOUR, T0)
    assert capsys.readouterr().err == ("ood-k8s: the GPU-hour budget of cs109b was not checked (the agent did not "
                                       "answer)\n")


# --- the leader's budget task ---------------------------------------------------------------------------


def _running_session(world: World) -> dict:
    Ledger(world.client, AGENT_NS).record("alice", [_e("old", "alice", T0 - 86400, 18.0)])
    pod = world.session()
    world.start(pod, T0)
    return pod


def _annotations(world: World, pod: dict) -> dict:
    return world.client.get("Pod", pod["metadata"]["name"], "ood-alice")["metadata"].get("annotations") or {}


def test_the_agent_warns_then_ends_a_session_when_its_budget_runs_out(world: World) -> None:
    pod = _running_session(world)  # 18 used before; 1 GPU since T0: runs out at T0 + 2 h (12:00 UTC)
    task = budget_task.BudgetTask()
    task.run(world.context(T0 + 1.5 * HOUR))  # 30 minutes left: more than the 15-minute warning
    assert vocab.WARNING_ANNOTATION not in _annotations(world, pod)
    task.run(world.context(T0 + 1.8 * HOUR))
    assert _annotations(world, pod)[vocab.WARNING_ANNOTATION] == (
        "your GPU-hour budget in cs109b runs out at 12:00: save your work")
    ctx = world.context(T0 + 1.9 * HOUR)
    task.run(ctx)
    assert ctx.actions.done == []  # warned once
    ctx = world.context(T0 + 2 * HOUR + 60)
    task.run(ctx)
    assert ctx.actions.done == [("ended", f"ood-alice/{pod['metadata']['name']}", "BudgetExhausted")]
    ann = _annotations(world, pod)
    assert ann[vocab.END_REASON_ANNOTATION] == "BudgetExhausted"
    assert ann[vocab.END_MESSAGE_ANNOTATION] == "ended: your GPU-hour budget in cs109b ran out (20.02 GPU-hours of " \
                                                "20 GPU-hours used)"
    reasons = [e["reason"] for e in world.client.list("Event", "ood-alice")]
    assert sorted(reasons) == ["BudgetExhausted", "BudgetLow"]
    ctx = world.context(T0 + 3 * HOUR)
    task.run(ctx)
    assert ctx.actions.done == []  # ended once


def test_sessions_outside_a_budgeted_course_are_left_alone(world: World) -> None:
    Ledger(world.client, AGENT_NS).record("bob", [_e("old", "bob", T0 - 86400, 50.0, course="")])
    world.start(world.session(user="bob", course=""), T0)
    world.start(world.session(user="bob", gpus=0, profile="cpu"), T0)  # no GPUs: no GPU-hours
    ctx = world.context(T0 + 10 * HOUR)
    budget_task.BudgetTask().run(ctx)
    assert ctx.actions.done == []


def test_decide_uses_the_course_time_zone() -> None:
    course = replace(CS109B, timezone="America/New_York")
    b = Budget("cs109b", 19.9, 20.0, 0.1, "course", 1)
    assert budget_task.decide(b, course, T0, 900.0) == (
        "BudgetLow", "the course's GPU-hour budget in cs109b runs out at 05:06: save your work")
    assert budget_task.decide(b._replace(running_gpus=0), course, T0, 900.0) is None


def test_bob_is_refused_a_view_of_alice_through_the_scope_rule() -> None:
    cfg = config()
    entries = [_e("1", "alice", T0, 1.0), _e("2", "bob", T0, 1.0)]
    seen = answers.may_see(cfg, BOB, admin=False)
    assert [e.user for e in entries if seen(e)] == ["bob"]
    instructor = replace(BOB, groups=("bob", "cs109b-staff"))
    assert [e.user for e in entries if answers.may_see(cfg, instructor, admin=False)(e)] == ["alice", "bob"]

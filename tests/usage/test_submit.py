"""The budget at submit, end to end: the student's submit asks the running agent (named by the kernel),
and is refused in one line before any object exists; with no agent it goes through with a note."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from ood_k8s.core.errors import NotEntitled
from ood_k8s.usage import answers
from ood_k8s.usage.entry import Entry
from ood_k8s.usage.ledger import Ledger
from tests.agent.conftest import World as AgentWorld
from tests.agent.conftest import running_world, sock_dir  # noqa: F401 - sock_dir is a fixture
from tests.conftest import ALICE, BOB, replace
from tests.usage.conftest import CS109B, HOUR

# No term: the course is on whatever the machine's clock says (submit reads the real clock).
COURSE = replace(CS109B, term_start="", term_end="")
GPU_2H = {"native": {"profile": "gpu-t4"}, "wall_time": 7200}


@pytest.fixture
def world(sock_dir: str) -> Iterator[AgentWorld]:  # noqa: F811 - the imported fixture
    with running_world(sock_dir) as w:
        w.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-k8s-system"}})
        w.cfg = replace(w.cfg, courses=[COURSE])
        now = time.time()
        Ledger(w.client, "ood-k8s-system").record("alice", [
            Entry("u1", "alice", "cs109b", "gpu-t4", "j1", now - 30 * HOUR, now - 11.5 * HOUR, 1)])  # 18.5 used
        yield w


def _pods(w: AgentWorld, ns: str = "ood-alice") -> list[str]:
    return [p["metadata"]["name"] for p in w.client.list("Pod", ns)]


def test_submit_is_refused_in_one_line_when_the_budget_does_not_fit(world: AgentWorld) -> None:
    world.start_agent()
    with pytest.raises(NotEntitled) as err:
        world.submit(ALICE, **GPU_2H)
    assert str(err.value) == "1.5 GPU-hours left this term in cs109b: ask for at most 1 hour"
    assert _pods(world) == []  # refused before any object existed
    job = world.submit(ALICE, **{**GPU_2H, "wall_time": 3600})  # one hour fits
    assert _pods(world) == [job]
    world.submit(BOB, **GPU_2H)  # bob has used nothing


def test_the_budget_check_costs_a_socket_round_trip(world: AgentWorld) -> None:
    world.start_agent()
    assert answers.ask_budgets(world.cfg, ALICE) is not None  # warm: the agent has read the ledger once
    started = time.perf_counter()
    for _ in range(20):
        found = answers.ask_budgets(world.cfg, ALICE)
    per_check = (time.perf_counter() - started) / 20
    assert found is not None and found[0].left == 1.5
    assert per_check < 0.005, f"{per_check * 1000:.1f} ms per budget check"


def test_without_an_agent_submit_goes_through_with_a_note(world: AgentWorld,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    job = world.submit(ALICE, **GPU_2H)
    assert _pods(world) == [job]
    assert capsys.readouterr().err == ("ood-k8s: the GPU-hour budget of cs109b was not checked (the agent did not "
                                       "answer); the agent ends the session if the budget runs out\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to call as other uids")
def test_the_socket_gives_each_uid_its_own_ledger(world: AgentWorld) -> None:
    from ood_k8s.core import fsutil

    Ledger(world.client, "ood-k8s-system").record("bob", [Entry("u2", "bob", "cs109b", "gpu-t4", "j2", 0.0, 3600.0, 1)])
    world.start_agent()

    def mine() -> list[str] | None:
        found = answers.ask_entries(world.cfg, timeout=2.0)
        return None if found is None else sorted(e.user for e in found)

    assert fsutil.run_as(ALICE.uid, ALICE.gid, (), mine) == ["alice"]
    assert fsutil.run_as(BOB.uid, BOB.gid, (), mine) == ["bob"]
    assert mine() == ["alice", "bob"]  # root


def test_with_usage_finalizer_sessions_carry_the_ledgers_finalizer(world: AgentWorld) -> None:
    from ood_k8s.core import vocab

    world.cfg = replace(world.cfg, courses=[], **{"usage.finalizer": True})
    job = world.submit(ALICE)
    assert world.client.get("Pod", job, "ood-alice")["metadata"]["finalizers"] == [vocab.USAGE_FINALIZER]
    world.cfg = replace(world.cfg, **{"usage.finalizer": False})
    other = world.submit(ALICE)
    assert "finalizers" not in world.client.get("Pod", other, "ood-alice")["metadata"]

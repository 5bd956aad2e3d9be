"""A student patching their own session pod's lifetime with kubectl, against the RENDERED pod guard (issue 15).

What they could want: a later deadline than an extend would give (past the ceiling), a deadline the agent
cannot read, no deadline at all, a larger granted wall time.  Each is refused on UPDATE (and on CREATE);
the controls -- the pod submit builds, an extend's patch, the agent's end patch -- are admitted.  The
ceiling (activeDeadlineSeconds) holds whatever happens: Kubernetes never lets it be raised.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ood_k8s.agent.actions import end_patch
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.timefmt import rfc3339, timestamp
from ood_k8s.sessions.extend import extend_patch
from tests.conftest import ALICE, replace
from tests.security import vap

START = "2026-12-06T14:30:00Z"
T0 = timestamp(START) or 0.0
CEILING = 8 * 3600  # the site's jobs.max_walltime (shipped default)
DEADLINE_DENIAL = f"{vocab.DEADLINE_ANNOTATION} may only be set on a started session"
WALLTIME_DENIAL = f"{vocab.WALLTIME_ANNOTATION} is the wall time granted at submit"


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies ``kubectl patch --type merge``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


@pytest.fixture(scope="module")
def cfg() -> Config:
    # A site running the agent's lifecycle: pods carry the ceiling, extends move the deadline under it.
    return replace(Config(), **{"agent.enabled": True})


@pytest.fixture(scope="module")
def guard(cfg: Config) -> vap.Guard:
    return vap.pod_guard(cfg)


@pytest.fixture(scope="module")
def ns(cfg: Config) -> dict[str, Any]:
    return vap.hook_namespace(cfg, ALICE)


@pytest.fixture
def running(cfg: Config) -> dict[str, Any]:
    """Alice's session as submit built it (1 h granted), then started on a node."""
    pod = vap.session_pod(cfg, ALICE)
    pod["metadata"]["resourceVersion"] = "41"
    pod["spec"]["nodeName"] = "ip-10-0-1-17.ec2.internal"
    pod["status"] = {"phase": "Running", "startTime": START}
    return pod


def annotated(pod: dict[str, Any], **values: str | None) -> dict[str, Any]:
    key = {"deadline": vocab.DEADLINE_ANNOTATION, "walltime": vocab.WALLTIME_ANNOTATION}
    return merge(pod, {"metadata": {"annotations": {key[k]: v for k, v in values.items()}}})


# --- controls -------------------------------------------------------------------------------------------


def test_the_submitted_pod_is_admitted_with_its_wall_time(cfg: Config, guard: vap.Guard, ns: dict) -> None:
    pod = vap.session_pod(cfg, ALICE)
    assert pod["metadata"]["annotations"][vocab.WALLTIME_ANNOTATION] == "3600"
    assert pod["spec"]["activeDeadlineSeconds"] == CEILING
    assert guard.admit(pod, ns) == []


def test_an_extend_and_then_another_are_admitted(guard: vap.Guard, ns: dict, running: dict) -> None:
    first = merge(running, extend_patch(running, T0 + 3 * 3600))
    assert first["metadata"]["annotations"][vocab.DEADLINE_ANNOTATION] == "2026-12-06T17:30:00Z"
    assert guard.admit(first, ns, operation="UPDATE", old=running) == []
    to_the_ceiling = merge(first, extend_patch(first, T0 + CEILING))
    assert guard.admit(to_the_ceiling, ns, operation="UPDATE", old=first) == []


def test_the_agents_end_is_admitted_though_the_ceiling_drops_below_the_deadline(guard: vap.Guard, ns: dict,
                                                                                  running: dict) -> None:
    extended = annotated(running, deadline=rfc3339(T0 + 4 * 3600))
    ended = merge(extended, end_patch(extended, "DeadlineReached", "ended at its deadline (4h)", T0 + 4 * 3600))
    assert ended["spec"]["activeDeadlineSeconds"] == 4 * 3600
    assert guard.admit(ended, ns, operation="UPDATE", old=extended) == []
    early = merge(running, end_patch(running, "Idle", "reclaimed after 60 min idle", T0 + 600))
    assert guard.admit(early, ns, operation="UPDATE", old=running) == []


def test_a_pod_made_without_the_wall_time_is_admitted_and_gains_nothing(cfg: Config, guard: vap.Guard,
                                                                        ns: dict) -> None:
    """Its deadline is then its ceiling (sessions/lifetime.py): what submitting with the maximum gives."""
    pod = vap.session_pod(cfg, ALICE)
    del pod["metadata"]["annotations"][vocab.WALLTIME_ANNOTATION]
    assert guard.admit(pod, ns) == []


# --- attacks --------------------------------------------------------------------------------------------

UPDATE_ATTACKS = [
    ("a deadline one second past the ceiling", {"deadline": rfc3339(T0 + CEILING + 1)}, DEADLINE_DENIAL),
    ("a deadline a year away", {"deadline": "2027-12-06T14:30:00Z"}, DEADLINE_DENIAL),
    ("a deadline in words", {"deadline": "never"}, DEADLINE_DENIAL),
    ("a deadline with an offset", {"deadline": "2026-12-06T16:30:00+02:00"}, DEADLINE_DENIAL),
    ("a deadline with a fraction", {"deadline": "2026-12-06T16:30:00.5Z"}, DEADLINE_DENIAL),
    ("a deadline on no calendar", {"deadline": "2026-13-06T16:30:00Z"}, DEADLINE_DENIAL),
    ("an empty deadline", {"deadline": ""}, DEADLINE_DENIAL),
    ("the whole ceiling as wall time", {"walltime": str(CEILING)}, WALLTIME_DENIAL),
    ("no wall time", {"walltime": None}, WALLTIME_DENIAL),
]


@pytest.mark.parametrize(("values", "denial"), [a[1:] for a in UPDATE_ATTACKS], ids=[a[0] for a in UPDATE_ATTACKS])
def test_patching_the_lifetime_is_refused(guard: vap.Guard, ns: dict, running: dict, values: dict,
                                          denial: str) -> None:
    denied = guard.admit(annotated(running, **values), ns, operation="UPDATE", old=running)
    assert any(denial in d or d.startswith("error:") for d in denied) and denied, denied


def test_removing_an_extended_deadline_is_refused(guard: vap.Guard, ns: dict, running: dict) -> None:
    extended = annotated(running, deadline=rfc3339(T0 + 2 * 3600))
    assert guard.admit(annotated(extended, deadline=None), ns, operation="UPDATE", old=extended) == [
        guard.admit(annotated(running, deadline="x"), ns, operation="UPDATE", old=running)[0]]


def test_lowering_the_ceiling_does_not_let_a_deadline_past_it(guard: vap.Guard, ns: dict, running: dict) -> None:
    lowered = merge(running, {"spec": {"activeDeadlineSeconds": 3600}})
    assert guard.admit(annotated(lowered, deadline=rfc3339(T0 + 3601)), ns, operation="UPDATE", old=running)
    assert guard.admit(annotated(lowered, deadline=rfc3339(T0 + 3600)), ns, operation="UPDATE", old=running) == []


def test_a_session_that_has_not_started_gets_no_deadline(cfg: Config, guard: vap.Guard, ns: dict) -> None:
    queued = vap.session_pod(cfg, ALICE)
    denied = guard.admit(annotated(queued, deadline=rfc3339(T0 + 600)), ns, operation="UPDATE", old=queued)
    assert len(denied) == 1 and DEADLINE_DENIAL in denied[0]


@pytest.mark.parametrize(("values", "denial"), [
    ({"deadline": "2026-12-06T15:30:00Z"}, DEADLINE_DENIAL),  # no origin yet: only an extend writes it
    ({"walltime": str(CEILING + 1)}, WALLTIME_DENIAL),
    ({"walltime": "1h"}, WALLTIME_DENIAL),
    ({"walltime": "-1"}, WALLTIME_DENIAL),
], ids=["a deadline", "wall time past the ceiling", "wall time in words", "a negative wall time"])
def test_creating_a_pod_with_a_forged_lifetime_is_refused(cfg: Config, guard: vap.Guard, ns: dict, values: dict,
                                                          denial: str) -> None:
    denied = guard.admit(annotated(vap.session_pod(cfg, ALICE), **values), ns)
    assert len(denied) == 1 and denial in denied[0], denied

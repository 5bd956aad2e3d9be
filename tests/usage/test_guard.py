"""The usage finalizer's guard rule, evaluated with a real CEL implementation as kube-apiserver would."""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from ood_k8s.core import vocab
from ood_k8s.usage import guard
from tests.usage.conftest import config

ENV = celpy.Environment()


def admitted(rule: str, operation: str, user: str, new: list[str] | None, old: list[str] | None = None) -> bool:
    def pod(finalizers: list[str] | None) -> dict[str, Any]:
        return {"metadata": {"name": "j", "labels": {vocab.JOB_LABEL: "j"},
                             **({"finalizers": finalizers} if finalizers is not None else {})}}

    activation = {"object": celpy.json_to_cel(pod(new)),
                  "oldObject": celpy.json_to_cel(pod(old)) if operation == "UPDATE" else celpy.celtypes.BoolType(False),
                  "request": celpy.json_to_cel({"operation": operation, "userInfo": {"username": user}})}
    return ENV.program(ENV.compile(rule)).evaluate(activation) == celpy.celtypes.BoolType(True)


F = vocab.USAGE_FINALIZER


@pytest.mark.parametrize(("operation", "user", "new", "old", "ok"), [
    ("CREATE", "ood:alice", [F], None, True),
    ("CREATE", "ood:alice", None, None, False),  # a pod made around submit must carry it
    ("UPDATE", "ood:alice", [F], [F], True),
    ("UPDATE", "ood:alice", [], [F], False),  # the student removes it
    ("UPDATE", "ood:alice", None, [F], False),
    ("UPDATE", "ood:alice", ["x"], ["x"], True),  # a pod without it (made before the setting)
    ("UPDATE", "system:serviceaccount:ood-k8s-system:agent", [], [F], True),  # the agent, once recorded
    ("CREATE", "admin", None, None, True),
])
def test_only_the_agent_removes_the_finalizer(operation: str, user: str, new: list[str] | None,
                                               old: list[str] | None, ok: bool) -> None:
    rules = guard.rules(config(**{"usage.finalizer": True}))
    assert admitted(rules["usage_rule"], operation, user, new, old) is ok


def test_off_when_the_site_has_no_finalizer() -> None:
    assert guard.rules(config())["usage_rule"] == "true"


def test_the_rendered_pod_guard_keeps_the_finalizer_on_sessions() -> None:
    # The whole policy as 'cluster render' makes it, evaluated as kube-apiserver would (tests/security/vap.py).
    import copy

    from tests.conftest import ALICE
    from tests.security import vap

    cfg = config(**{"usage.finalizer": True})
    guard_ = vap.pod_guard(cfg)
    ns = vap.hook_namespace(cfg, ALICE)
    pod = vap.session_pod(cfg, ALICE)
    pod["metadata"]["finalizers"] = [F]  # what submit adds (sessions/adapter.py)
    assert guard_.admit(pod, ns) == []  # the control: submit's own pod
    bare = copy.deepcopy(pod)
    del bare["metadata"]["finalizers"]
    message = (f"session pods carry the finalizer {F} until the usage ledger has recorded them; "
               "only the agent removes it")
    assert guard_.admit(bare, ns) == [message]
    assert guard_.admit(bare, ns, operation="UPDATE", old=pod) == [message]  # the student removes it
    agent = "system:serviceaccount:ood-k8s-system:ood-k8s-agent"
    assert guard_.admit(bare, ns, operation="UPDATE", old=pod, username=agent) == []  # the agent, once recorded
    other = copy.deepcopy(bare)
    del other["metadata"]["labels"][vocab.JOB_LABEL]
    assert guard_.admit(other, ns) == []  # no session: no finalizer asked for
    assert "usage ledger" not in str(vap.pod_guard(config()).policy)  # off: not rendered

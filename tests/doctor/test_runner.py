"""The doctor runner's contract: providers run in registry order on one shared context, clients are
made once and only when asked for, and the report prints what the providers returned."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from ood_k8s import config
from ood_k8s.doctor import runner
from ood_k8s.doctor.report import Check, Context, report


def _only(monkeypatch: pytest.MonkeyPatch, site: list[Any], user: list[Any]) -> None:
    monkeypatch.setattr(runner, "SITE_CHECKS", site)
    monkeypatch.setattr(runner, "USER_CHECKS", user)


def test_providers_run_in_registry_order_on_one_context(monkeypatch: pytest.MonkeyPatch,
                                                        make_config: Callable[..., config.Config]) -> None:
    seen: list[Context] = []

    def first(ctx: Context) -> list[Check]:
        seen.append(ctx)
        ctx.reachable = True  # a fact for the providers after it
        return [Check("a", True), Check("b", None)]

    def second(ctx: Context) -> list[Check]:
        seen.append(ctx)
        return [Check("c", ctx.reachable)]

    def user(ctx: Context) -> list[Check]:
        return [Check(f"user {ctx.user}", False, "gone", "fix it")]

    _only(monkeypatch, [first, second], [user])
    cfg = make_config()
    assert [c.name for c in runner.run(cfg, None, kube=None)] == ["a", "b", "c"]
    assert seen[0] is seen[1] and seen[0].cfg is cfg
    checks = runner.run(cfg, "alice")
    assert [(c.name, c.ok) for c in checks] == [("a", True), ("b", None), ("c", True), ("user alice", False)]
    assert report(checks) == ("✔ a\n– b\n✔ c\n✘ user alice: gone\n    fix: fix it\n1 problem found\n", 1)


def test_clients_are_made_once_and_only_when_asked(monkeypatch: pytest.MonkeyPatch,
                                                   make_config: Callable[..., config.Config]) -> None:
    made: list[str] = []
    monkeypatch.setitem(runner.CLIENTS, "eks", lambda cfg: made.append("eks") or "an eks client")

    def asks(ctx: Context) -> list[Check]:
        before = list(made)
        later = ctx.lazy("eks")
        assert made == before  # lazy() makes nothing
        return [Check(later(), True), Check(ctx.client("eks"), True)]

    _only(monkeypatch, [asks], [])
    assert [c.name for c in runner.run(make_config())] == ["an eks client", "an eks client"]
    assert made == ["eks"]
    assert [c.name for c in runner.run(make_config(), eks="given")] == ["given", "given"]
    assert made == ["eks"]


def test_unknown_clients_are_refused(make_config: Callable[..., config.Config]) -> None:
    with pytest.raises(TypeError, match="unknown doctor clients"):
        runner.run(make_config(), None, s3=object())  # ec2 is a doctor client now (node groups)


def test_every_registered_provider_and_client_is_callable() -> None:
    assert runner.SITE_CHECKS and runner.USER_CHECKS
    assert all(callable(p) for p in [*runner.SITE_CHECKS, *runner.USER_CHECKS, *runner.CLIENTS.values()])
    assert len(set(runner.SITE_CHECKS + runner.USER_CHECKS)) == len(runner.SITE_CHECKS) + len(runner.USER_CHECKS)

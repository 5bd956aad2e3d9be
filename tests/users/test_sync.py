"""Bulk runs (ood_k8s.users.sync): who is in a group or a file, progress on a terminal, the summary line.

The runs themselves are driven end to end through ``ood-k8s user setup|sync`` in tests/cli/test_cli_user.py.
"""

from __future__ import annotations

import io
from pathlib import Path

from ood_k8s.users import provision, sync


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal() -> None:
    tty = Tty()
    bar = sync.Progress(4, tty, width=8)
    bar._clock = iter([0.0, 1.0, 1.01, 2.0]).__next__
    for ok in (True, False, True, True):
        bar.step(ok)
    bar.finish()
    assert tty.getvalue() == ("\r[##------] 1/4\r[####----] 2/4, 1 failed\r[########] 4/4, 1 failed"
                              "\r[########] 4/4, 1 failed\n")
    plain = io.StringIO()
    bar = sync.Progress(2, plain)
    bar.step(True)
    bar.finish()
    assert plain.getvalue() == ""


def test_read_user_file(tmp_path: Path) -> None:
    f = tmp_path / "users"
    f.write_text("alice\n\n# comment\nbob, Bob Smith\ncarol\talpha\n  dave  # trailing\nalice\n")
    assert sync.read_user_file(str(f)) == ["alice", "bob", "carol", "dave"]


def test_summarise() -> None:
    out = provision.Outcome
    results = [("a", out("a", "ood-a", "created"), None), ("b", out("b", "ood-b", "current"), None),
               ("c", None, "boom"), ("d", out("d", "ood-d", "current"), None)]
    assert sync.summarise(results, 1.25, "students") == \
        "4 users from students in 1.2 s: 1 created, 2 already current, 1 failed"
    assert sync.summarise([], 0.0) == "0 users in 0.0 s: nothing to do"


def test_members_of_a_real_group() -> None:
    assert "root" in sync.members_of_group("root")


def test_run_many_keeps_order_and_one_failure_never_stops_the_rest(monkeypatch) -> None:
    from ood_k8s.core.errors import NotEntitled

    connects: list[int] = []

    def ensure_one(cfg, username, client, *, dry_run, force):
        if username == "bad\x1b":
            raise NotEntitled("not allowed", "ask")
        if username == "bug":
            raise KeyError("x")
        return provision.Outcome(username, f"ood-{username}", "would-create" if dry_run else "created")

    monkeypatch.setattr(sync, "_ensure_one", ensure_one)
    done: list[bool] = []
    results = sync.run_many(None, ["a", "bad\x1b", "bug", "b"], lambda: connects.append(1) or object(), jobs=1,
                            dry_run=True, on_done=done.append)
    assert results == [("a", provision.Outcome("a", "ood-a", "would-create"), None),
                       ("bad\\x1b", None, "not allowed: ask"),
                       ("bug", None, "internal error KeyError: 'x'"),
                       ("b", provision.Outcome("b", "ood-b", "would-create"), None)]
    assert sorted(done) == [False, False, True, True] and connects == [1]  # one worker, one client

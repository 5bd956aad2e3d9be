"""The one hand-written argument reader (what the poll, the hook and the credential plugin read)."""

from __future__ import annotations

import re

import pytest

from ood_k8s.core.errors import UsageError
from ood_k8s.core.process import read_argv, run_guarded

HOOK = {"options": ("user", "config"), "flags": ("force",), "positionals": False}


@pytest.mark.parametrize(("argv", "expected"), [
    ([], ({}, [])),
    (["--id=a-1", "--executor", "ood_k8s"], ({"id": "a-1", "executor": "ood_k8s"}, [])),
    (["ood_k8s", "--id", "-x"], ({"id": "-x"}, ["ood_k8s"])),  # any value, even one like an option
    (["--id=1", "--id=2", "-v"], ({"id": "2"}, ["-v"])),  # last wins; one dash is positional
    (["--id="], ({"id": ""}, [])),
])
def test_open_reading_takes_every_option(argv: list[str], expected: tuple) -> None:
    assert read_argv(argv) == expected


def test_open_reading_refuses_a_missing_value_as_the_psij_shim_did() -> None:
    with pytest.raises(UsageError, match=r"^option --id needs a value$"):
        read_argv(["--executor=x", "--id"])


@pytest.mark.parametrize(("argv", "expected"), [
    (["--user", "alice", "--force"], {"user": "alice", "force": ""}),
    (["--user=a", "--config", "/c", "--user", "b", "--force", "--force"], {"user": "b", "config": "/c", "force": ""}),
])
def test_closed_reading(argv: list[str], expected: dict) -> None:
    assert read_argv(argv, **HOOK) == (expected, [])


@pytest.mark.parametrize(("argv", "message"), [
    (["--user", "alice", "--extra"], "unknown option --extra"),
    (["--user", "--force"], "option --user needs a value"),
    (["--user"], "option --user needs a value"),
    (["--force=yes"], "option --force takes no value"),
    (["alice"], "unexpected argument 'alice'"),
    (["-h"], "unexpected argument '-h'"),
])
def test_closed_reading_refuses_what_argparse_should_answer(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        read_argv(argv, **HOOK)


def test_run_guarded_turns_failures_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse() -> int:
        raise UsageError("no", "try again")

    def crash() -> int:
        raise RuntimeError("secret detail")

    assert run_guarded("prog", refuse) == 2 and capsys.readouterr().err == "prog: no: try again\n"
    assert run_guarded("prog", crash) == 70 and "secret detail" not in capsys.readouterr().err
    assert run_guarded("prog", lambda: None) == 0

"""``ood-k8s --help`` and every command group's help: each answers, and building them loads no real work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ood_k8s import cli
from tests.conftest import ROOT

GROUPS = ["config", "demo", "job", "user", "storage", "cluster", "doctor", "ood"]


def test_top_level_help_lists_every_group(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage: ood-k8s ")
    assert [g for g in [*GROUPS, "credential"] if f"\n    {g} " not in out] == []


@pytest.mark.parametrize("argv", [[g, "--help"] for g in GROUPS] + [
    ["user", verb, "--help"] for verb in ("setup", "teardown", "list", "sync")])
def test_each_group_answers_its_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: ood-k8s {' '.join(argv[:-1])}")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2 and capsys.readouterr().out.startswith("usage: ood-k8s ")


def test_building_the_parser_loads_no_real_work() -> None:
    # Each group's module imports argparse and defers its work to its handlers (cli/__init__.py).
    code = ("import sys\nfrom ood_k8s.cli import build_parser\nbuild_parser()\n"
            "print(' '.join(m for m in ('yaml', 'jinja2', 'boto3', 'ood_k8s.config', 'ood_k8s.users.provision') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.split() == []

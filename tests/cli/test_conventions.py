"""kubectl's conventions on every command (issue 14): ``-o json|yaml``, ``--version`` on all three
entry points, shell completion, tables within 100 columns; commands that act on a cluster refuse
the built-in example rather than use it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ood_k8s import __version__, cli
from ood_k8s.cli.storage import format_table
from ood_k8s.storage import backend as storage


@pytest.mark.parametrize("entry", ["ood_k8s.cli:cli", "ood_k8s.ood.psij_shim:cli", "ood_k8s.hook:main"])
def test_every_entry_point_answers_version(entry: str) -> None:
    module, func = entry.split(":")
    code = f"import sys; sys.argv[1:] = ['--version']; from {module} import {func}; sys.exit({func}())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(__version__)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_list_real_commands(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert "complete -o default -F _ood_k8s ood-k8s" in out
    assert '"storage check") words="' in out and "--output" in out and "doctor" in out
    assert ("bashcompinit" in out) == (shell == "zsh")


def test_bash_completes_a_verb() -> None:
    script = subprocess.run([sys.executable, "-m", "ood_k8s", "completion", "bash"], capture_output=True, text=True,
                            check=True).stdout
    res = subprocess.run(["bash", "-c", script + '\nCOMP_WORDS=(ood-k8s config sh); COMP_CWORD=2; _ood_k8s; '
                                                 'echo "${COMPREPLY[@]}"'], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["show"]


def test_config_show_takes_config_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yml"
    site.write_text("portal: {name: dev}\n")
    assert cli.main(["config", "show", "--config", str(site), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["portal"]["name"] == "dev"
    assert cli.main(["config", "show", "--config", str(site), "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["portal"]["name"] == "dev"


def test_the_storage_table_fits_100_columns() -> None:
    long = "x" * 150
    text = format_table([storage.Finding("home directory", long, long, "error", "fix " + long)])
    assert max(len(line) for line in text.splitlines()) <= 100
    assert len(text.splitlines()[1].split("  ")) >= 3  # still one row, in columns


@pytest.mark.parametrize("argv", [["storage", "check", "alice"], ["ood", "config", "--out", "/tmp/x"],
                                  ["user", "setup", "alice"]])
def test_commands_that_act_refuse_the_built_in_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 78
    err = capsys.readouterr().err
    assert "no site configuration" in err and "ood-k8s config example" in err and err.count("\n") == 1


def test_printing_the_examples_ood_files_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ood", "config", "--psij", "/usr/bin/ood-k8s-psij", "--hook", "/usr/bin/ood-k8s-pre-hook"]) == 0


def test_doctor_without_a_site_file_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("✘ configuration: no site configuration") or out.startswith("FAIL configuration")


def test_the_dry_run_refuses_a_missing_home_root_as_the_real_run_does(tmp_path: Path) -> None:
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.storage import homedir
    from tests.conftest import ALICE

    root = tmp_path / "not-mounted"
    alice = ALICE._replace(home=str(root / "alice"))
    with pytest.raises(OodK8sError) as real:
        homedir.ensure_home(alice, str(root))
    with pytest.raises(OodK8sError) as dry:
        homedir.would_create(alice, str(root))
    assert str(dry.value) == str(real.value) and "storage.home_root" in str(dry.value)


def test_every_output_option_offers_json_and_yaml() -> None:
    from ood_k8s.cli.completion import _subparsers

    parser = cli.build_parser()
    seen = []
    for name, cmd in _subparsers(parser).items():
        for verb, sub in ({"": cmd} | _subparsers(cmd)).items():
            for action in sub._actions:
                if "--output" in action.option_strings:
                    seen.append(f"{name} {verb}".strip())
                    assert {"json", "yaml"} <= set(action.choices or ()), f"{name} {verb}"
    assert {"doctor", "config show", "storage check", "job list", "user list", "cluster render"} <= set(seen)

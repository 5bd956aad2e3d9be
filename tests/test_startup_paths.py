"""What the per-poll, per-kubectl and per-login processes import and how they read their arguments.

Speed itself is measured in bench/; these tests pin the structure that keeps it: the modules each
hot path loads (a heavy import creeping back fails here, not only in a benchmark), and the
hand-read argument fast paths answering exactly as argparse would.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ood_k8s.auth import plugin as credential
from ood_k8s.core.errors import UsageError
from ood_k8s.users import hook
from tests.conftest import ROOT
from tests.users.test_hook import Portal, portal  # noqa: F401 - the portal-in-a-box fixture, reused

HEAVY = ["yaml", "http.client", "email", "argparse", "hashlib", "subprocess", "tempfile", "difflib", "jinja2",
         "boto3", "urllib.request", "decimal", "logging", "encodings.idna", "dataclasses", "inspect", "calendar",
         "urllib.parse", "threading"]


def loaded(code: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "OOD_K8S_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
                          cwd=str(ROOT)).stdout.split()


def test_the_poll_path_modules_import_nothing_heavy() -> None:
    # Everything ood-k8s-psij's info verb imports before it reads the config and calls the API.
    assert loaded("import ood_k8s.ood.psij_shim, ood_k8s.config, ood_k8s.kubeconfig.clients, ood_k8s.sessions.adapter, "
                  "ood_k8s.kubeconfig.read, ood_k8s.auth.plugin, ood_k8s.core.identity") == []


def test_the_poll_launcher_imports_only_builtin_modules() -> None:
    # ood-k8s-psij's console script is ood_k8s.agent.fastpoll:cli: a poll the agent answers must cost
    # the interpreter's start and little more (issue 15: 20 ms), so not even typing, json or socket.
    code = ("import sys\nbefore = set(sys.modules)\nimport ood_k8s.agent.fastpoll\n"
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.split() == ["ood_k8s", "ood_k8s.agent", "ood_k8s.agent.fastpoll"]


def test_the_poll_path_compiles_no_annotation_at_import() -> None:
    # A NamedTuple or config section whose annotations are strings (postponed annotations) makes
    # typing compile each one: ~0.3 ms per field; 63 of them in this probe before it was pinned.
    code = """if True:
        import typing
        compiled = []
        init = typing.ForwardRef.__init__

        def counting(self, arg, *args, **kwargs):
            compiled.append(arg)
            init(self, arg, *args, **kwargs)

        typing.ForwardRef.__init__ = counting
        import ood_k8s.ood.psij_shim, ood_k8s.config, ood_k8s.kubeconfig.clients, ood_k8s.sessions.adapter
        import ood_k8s.auth.plugin
        ood_k8s.config.parse({"cluster": {"server": "https://h"}, "users": {"quota": {"pods": 1}}})
        print(" ".join(compiled))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.split() == []


def test_the_credential_plugin_imports_neither_argparse_nor_dataclasses(tmp_path: Path) -> None:
    code = ("import sys\nfrom ood_k8s.cli import main\n"
            f"assert main(['credential', '--user', 'alice', '--cache-dir', {str(tmp_path)!r}]) == 1\n"
            "assert 'dataclasses' not in sys.modules and 'argparse' not in sys.modules, sorted(sys.modules)")
    assert loaded(code) == []


def test_exit_now_delivers_all_output_and_the_exit_code() -> None:
    code = ("import sys\nfrom ood_k8s.core.process import exit_now\n"
            "sys.stdout.write('x' * (1 << 20))\nsys.stderr.write('last words')\nexit_now(3)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert (out.returncode, len(out.stdout), out.stderr) == (3, 1 << 20, "last words")


def test_exit_now_fails_when_the_output_cannot_be_delivered() -> None:
    code = "import sys\nfrom ood_k8s.core.process import exit_now\nsys.stdout.write('x' * 100)\nexit_now(0)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as under OOD
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, cwd=str(ROOT),
                             env=env)
    assert out.returncode == 120


@pytest.mark.parametrize("argv", [
    [], ["--user", "alice"], ["--user=alice", "--cache-dir=/var/lib/t"],
    ["--portal", "ood", "--cluster", "eks", "--user", "alice", "--cache-dir", "/var/lib/ood-k8s/tokens"],
    ["--config", "/etc/x.yml", "--user", "a", "--user", "b"], ["--user="],
])
def test_credential_options_read_as_argparse_reads_them(argv: list[str]) -> None:
    assert vars(credential._parse_args(argv)) == vars(credential._parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--help"], ["--user"], ["--user", "--cache-dir", "x"], ["--bogus", "1"],
                                  ["alice"], ["-h"]])
def test_anything_else_gets_argparse_answer(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ours:
        credential._parse_args(argv)
    out_ours = capsys.readouterr()
    with pytest.raises(SystemExit) as theirs:
        credential._parser().parse_args(argv)
    assert ours.value.code == theirs.value.code and out_ours == capsys.readouterr()


def _argparse(argv: list[str]) -> tuple[dict, list[str]]:
    args, unknown = hook._parser().parse_known_args(argv)
    return vars(args), unknown


@pytest.mark.parametrize("argv", [
    ["--user", "alice"], ["--user", "alice", "--force"], ["--force", "--config", "/etc/x.yml", "--user", "a.b@c"],
    ["--user=alice"], ["--user", "alice", "--extra"], ["--user", "alice", "--user", "bob"],
])
def test_hook_arguments_read_as_argparse_reads_them(argv: list[str]) -> None:
    args, unknown = hook._parse_args(argv)
    assert (vars(args), unknown) == _argparse(argv)


@pytest.mark.parametrize("argv", [[], ["--user"], ["--user", "--force"], ["--config", "x"]])
def test_bad_hook_arguments_are_refused_as_before(argv: list[str]) -> None:
    with pytest.raises(UsageError, match="bad arguments"):
        hook._parse_args(argv)
    with pytest.raises(UsageError, match="bad arguments"):
        _argparse(argv)


def test_the_hook_reads_common_arguments_without_building_a_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parser() -> argparse.ArgumentParser:
        raise AssertionError("argparse was used")

    monkeypatch.setattr(hook, "_parser", no_parser)
    args, unknown = hook._parse_args(["--user", "alice", "--config", "/etc/ood/config/ood_k8s.yml"])
    assert (args.user, args.config, args.force, unknown) == ("alice", "/etc/ood/config/ood_k8s.yml", False, [])


def test_a_returning_users_hook_imports_neither_yaml_nor_logging_nor_dataclasses(portal: Portal) -> None:  # noqa: F811
    # The whole process, as the launcher runs it, with everything it forks: a returning user's login
    # (namespace current, tokens cached, kubeconfig unchanged) must not pay for PyYAML, logging or
    # dataclasses (with inspect).
    assert portal.run("alice").returncode == 0
    proc = portal.run("alice", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "kubeconfig unchanged" in proc.stderr and "credentials cached" in proc.stderr, proc.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "ood_k8s.kubeconfig.user" in imported  # the probe saw the hook's own imports
    assert {"yaml", "logging", "dataclasses", "inspect"} & imported == set()

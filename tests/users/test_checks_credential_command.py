"""doctor --user: the credential command written into kubeconfigs is runnable by the user."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ood_k8s.doctor import runner
from ood_k8s.users import checks
from tests.conftest import ALICE

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="checks as the user (needs root to switch)")


@pytest.fixture
def top() -> Iterator[Path]:
    t = Path(tempfile.mkdtemp(prefix="ood-k8s-cmd-"))
    t.chmod(0o755)
    try:
        yield t
    finally:
        shutil.rmtree(t)


def plugin_in(directory: Path, mode: int) -> str:
    (directory / "bin").mkdir(parents=True)
    command = directory / "bin" / "ood-k8s"
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    directory.chmod(mode)
    return str(command)


def test_a_command_under_a_private_directory_fails_the_check(make_config, top: Path) -> None:
    venv = top / "venv"
    cfg = make_config(**{"auth.credential_command": plugin_in(venv, 0o700)})
    check = checks.check_credential_command(cfg, ALICE)
    assert check.ok is False
    assert check.detail == f"alice cannot run {venv}/bin/ood-k8s: the directory {venv} is not searchable by the user"
    assert check.fix.startswith(f"chmod o+x {venv}")


def test_a_runnable_command_passes(make_config, top: Path) -> None:
    cfg = make_config(**{"auth.credential_command": plugin_in(top / "venv", 0o755)})
    check = checks.check_credential_command(cfg, ALICE)
    assert (check.ok, check.detail) == (True, f"{top}/venv/bin/ood-k8s runs as alice")


def test_the_check_is_registered_for_doctor_user() -> None:
    assert checks.credential_command in runner.USER_CHECKS
    assert runner.USER_CHECKS.index(checks.credential_command) > runner.USER_CHECKS.index(checks.user)

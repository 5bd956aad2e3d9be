"""ensure_home against a user planting and removing a link at the home path: every interleaving ends
in a clear refusal or a created home, never in an internal error (FileNotFoundError)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ood_k8s.core.errors import SecurityError
from ood_k8s.storage import homedir
from tests.conftest import ALICE, replace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="home creation is done as root (chown)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "home"
    r.mkdir()
    r.chmod(0o1777)  # sticky and world-writable, like /tmp: where a user can plant a link next to homes
    return r


def flicker(monkeypatch: pytest.MonkeyPatch, target: Path, plant_on: set[int]) -> list[int]:
    """Make os.mkdir of the home (the Nth call for N in ``plant_on``) find a link planted just before
    it and removed just after it -- the race, at a chosen step, every time the same."""
    real_mkdir = os.mkdir
    calls: list[int] = []

    def mkdir(path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        calls.append(1)
        if len(calls) not in plant_on:
            return real_mkdir(path, mode, dir_fd=dir_fd)
        os.symlink(str(target), path, dir_fd=dir_fd)
        try:
            return real_mkdir(path, mode, dir_fd=dir_fd)
        finally:
            os.unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir)
    return calls


def test_a_link_planted_and_removed_around_mkdir_then_the_home_is_made(root: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ident = replace(ALICE, home=str(root / "alice"))
    calls = flicker(monkeypatch, tmp_path, {1})
    assert homedir.ensure_home(ident, str(root), None) is True  # looked again, found nothing, made it
    assert len(calls) == 2
    st = os.lstat(ident.home)
    assert (st.st_uid, os.path.islink(ident.home)) == (ALICE.uid, False)


def test_a_link_that_keeps_flickering_is_refused_in_one_line(root: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ident = replace(ALICE, home=str(root / "alice"))
    flicker(monkeypatch, tmp_path, set(range(1, 100)))
    with pytest.raises(SecurityError) as exc:
        homedir.ensure_home(ident, str(root), None)
    assert str(exc.value).startswith(f"refusing home {ident.home}: something kept appearing and vanishing")
    assert not os.path.lexists(ident.home)


def test_a_link_planted_after_the_look_and_kept_is_refused(root: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ident = replace(ALICE, home=str(root / "alice"))
    real_mkdir = os.mkdir

    def mkdir(path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        os.symlink(str(tmp_path), path, dir_fd=dir_fd)
        real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(SecurityError, match="symbolic link"):
        homedir.ensure_home(ident, str(root), None)


def test_our_new_directory_vanishing_before_it_is_filled_is_a_refusal(root: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ident = replace(ALICE, home=str(root / "alice"))
    real_mkdir = os.mkdir

    def mkdir(path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(path, mode, dir_fd=dir_fd)
        os.rmdir(path, dir_fd=dir_fd)  # cannot happen in a sticky parent, but must not be an internal error

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(SecurityError, match="changed while being created"):
        homedir.ensure_home(ident, str(root), None)


ATTACKER = """
import os, sys
home, target = sys.argv[1], sys.argv[2]
while True:
    try:
        os.symlink(target, home)
    except OSError:
        pass
    try:
        os.unlink(home)
    except OSError:
        pass
"""


@pytest.mark.stress
@pytest.mark.skipif(not os.environ.get("OOD_K8S_STRESS"), reason="stress test: set OOD_K8S_STRESS=1 (.ci/run does)")
def test_100000_races_end_in_a_refusal_or_a_home(root: Path, tmp_path: Path) -> None:
    attempts = int(os.environ.get("OOD_K8S_STRESS_ATTEMPTS", "100000"))
    ident = replace(ALICE, home=str(root / "alice"))
    attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, ident.home, str(tmp_path)])
    outcomes = {"created": 0, "refused": 0}
    started = time.monotonic()
    try:
        for _ in range(attempts):
            try:
                if homedir.ensure_home(ident, str(root), None):
                    outcomes["created"] += 1
                    os.rmdir(ident.home)
            except SecurityError:
                outcomes["refused"] += 1
    finally:
        attacker.kill()
        attacker.wait()
    assert sum(outcomes.values()) == attempts, outcomes  # any other exception failed the test above
    assert outcomes["refused"] and outcomes["created"], (outcomes, time.monotonic() - started)

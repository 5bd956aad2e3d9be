"""Portal-side home creation against real temporary directories, including the attacks it must resist.

These run as root (as the hook does), so chown and foreign owners are real.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ood_k8s.core.errors import OodK8sError, SecurityError
from ood_k8s.core.identity import Identity
from ood_k8s.storage import backend as storage
from ood_k8s.storage import homedir
from tests.conftest import ALICE, BOB, replace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="home creation is done as root (chown)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "home"
    r.mkdir()
    r.chmod(0o755)
    return r


@pytest.fixture
def skel(tmp_path: Path) -> Path:
    s = tmp_path / "skel"
    (s / ".config" / "app").mkdir(parents=True)
    (s / ".bashrc").write_text("# bashrc\n")
    (s / ".bashrc").chmod(0o644)
    (s / ".config" / "app" / "settings").write_text("x=1\n")
    (s / ".config" / "app" / "settings").chmod(0o600)
    (s / ".config" / "app").chmod(0o700)
    (s / ".config").chmod(0o750)
    return s


def user(root: Path, base: Identity = ALICE, name: str | None = None) -> Identity:
    return replace(base, home=str(root / (name or base.username)))


def snapshot(path: Path) -> list[tuple[str, int, int, int, str]]:
    """Everything about a tree that an unwanted chown/chmod/write would change (links not followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in sorted(dirnames + filenames) + ([] if dirpath != str(path) else ["."]):
            p = os.path.normpath(os.path.join(dirpath, name))
            st = os.lstat(p)
            body = os.readlink(p) if stat.S_ISLNK(st.st_mode) else (
                Path(p).read_text() if stat.S_ISREG(st.st_mode) else "")
            out.append((os.path.relpath(p, path), st.st_uid, st.st_gid, st.st_mode, body))
    return sorted(out)


# --- creation ----------------------------------------------------------------------------------


def test_creates_home_0700_owned_by_user_with_skeleton(root: Path, skel: Path) -> None:
    ident = user(root)
    assert homedir.ensure_home(ident, str(root), str(skel)) is True
    home = Path(ident.home)
    st = home.lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), stat.S_ISDIR(st.st_mode)) == (20001, 20001, 0o700, True)
    assert snapshot(home) == [
        (".", 20001, 20001, stat.S_IFDIR | 0o700, ""),
        (".bashrc", 20001, 20001, stat.S_IFREG | 0o644, "# bashrc\n"),
        (".config", 20001, 20001, stat.S_IFDIR | 0o750, ""),
        (".config/app", 20001, 20001, stat.S_IFDIR | 0o700, ""),
        (".config/app/settings", 20001, 20001, stat.S_IFREG | 0o600, "x=1\n"),
    ]


def test_second_call_changes_nothing(root: Path, skel: Path) -> None:
    ident = user(root)
    assert homedir.ensure_home(ident, str(root), str(skel)) is True
    home = Path(ident.home)
    home.chmod(0o755)  # the user's own choice: must survive
    (home / ".bashrc").write_text("mine\n")
    before = snapshot(home)
    assert homedir.ensure_home(ident, str(root), str(skel)) is False
    assert snapshot(home) == before


def test_existing_home_is_never_chowned_or_chmodded(root: Path) -> None:
    ident = user(root)
    home = Path(ident.home)
    home.mkdir(mode=0o751)
    os.chown(home, ident.uid, 4242)  # right owner, other group, odd mode
    (home / "f").write_text("data")
    os.chown(home / "f", 0, 0)
    before = snapshot(home)
    assert homedir.ensure_home(ident, str(root), None) is False
    assert snapshot(home) == before


def test_skeleton_symlinks_are_copied_as_links_never_followed(root: Path, skel: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    (skel / "link").symlink_to(secret)
    (skel / "dirlink").symlink_to(tmp_path)
    ident = user(root)
    assert homedir.ensure_home(ident, str(root), str(skel)) is True
    home = Path(ident.home)
    for name, target in (("link", secret), ("dirlink", tmp_path)):
        st = (home / name).lstat()
        assert stat.S_ISLNK(st.st_mode) and os.readlink(home / name) == str(target)
        assert (st.st_uid, st.st_gid) == (20001, 20001)
    # nothing was followed: the targets keep their owner and mode, no copy of the secret exists
    assert (secret.stat().st_uid, stat.S_IMODE(secret.stat().st_mode)) == (0, 0o600)
    assert not any("root only" in body for *_, body in snapshot(home) if body != str(secret))


def test_skeleton_special_files_are_skipped_and_setuid_bits_stripped(root: Path, skel: Path) -> None:
    os.mkfifo(skel / "fifo")  # opening it for reading would hang a naive copy
    (skel / "tool").write_text("#!/bin/sh\n")
    (skel / "tool").chmod(0o4755)
    ident = user(root)
    assert homedir.ensure_home(ident, str(root), str(skel)) is True
    home = Path(ident.home)
    assert not (home / "fifo").exists()
    assert stat.S_IMODE((home / "tool").stat().st_mode) == 0o755


def test_missing_skeleton_gives_an_empty_home(root: Path, tmp_path: Path) -> None:
    ident = user(root)
    assert homedir.ensure_home(ident, str(root), str(tmp_path / "nope")) is True
    assert os.listdir(ident.home) == []


def test_failure_half_way_leaves_nothing(root: Path, skel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = homedir._copy_file
    calls = []

    def failing(*args: object) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(homedir, "_copy_file", failing)
    ident = user(root)
    with pytest.raises(OodK8sError) as err:
        homedir.ensure_home(ident, str(root), str(skel))
    assert "No space left on device" in str(err.value) and "\n" not in str(err.value)
    assert os.listdir(root) == []


# --- attacks -----------------------------------------------------------------------------------


def test_symlink_home_is_refused_and_target_untouched(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "etc"
    target.mkdir(mode=0o755)
    (target / "passwd").write_text("root:x:0:0\n")
    ident = user(root)
    Path(ident.home).symlink_to(target)
    before = snapshot(target)
    with pytest.raises(SecurityError) as err:
        homedir.ensure_home(ident, str(root), None)
    assert str(err.value) == (f"refusing home {ident.home}: it is a symbolic link: replace the link by the real "
                              "directory; ood-k8s never follows a link into a home")
    assert snapshot(target) == before
    assert os.readlink(ident.home) == str(target)


def test_dangling_symlink_home_is_refused_and_nothing_created(root: Path, tmp_path: Path) -> None:
    ident = user(root)
    Path(ident.home).symlink_to(tmp_path / "made-by-attacker")
    with pytest.raises(SecurityError):
        homedir.ensure_home(ident, str(root), None)
    assert not (tmp_path / "made-by-attacker").exists()


def test_home_owned_by_someone_else_is_refused_unchanged(root: Path) -> None:
    ident = user(root)
    home = Path(ident.home)
    home.mkdir(mode=0o700)
    os.chown(home, BOB.uid, BOB.gid)
    with pytest.raises(SecurityError) as err:
        homedir.ensure_home(ident, str(root), None)
    assert "belongs to uid 20002, not to alice (uid 20001)" in str(err.value)
    st = home.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (20002, 20002, 0o700)


def test_root_owned_leftover_is_refused(root: Path) -> None:
    ident = user(root)
    Path(ident.home).mkdir()
    with pytest.raises(SecurityError, match="belongs to uid 0"):
        homedir.ensure_home(ident, str(root), None)


def test_regular_file_home_is_refused(root: Path) -> None:
    ident = user(root)
    Path(ident.home).write_text("x")
    with pytest.raises(SecurityError, match="not a directory"):
        homedir.ensure_home(ident, str(root), None)


def test_symlink_on_the_way_is_not_followed(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "students").symlink_to(elsewhere)
    ident = replace(ALICE, home=str(root / "students" / "alice"))
    with pytest.raises(SecurityError, match="students is a symbolic link"):
        homedir.ensure_home(ident, str(root), None)
    assert os.listdir(elsewhere) == []


def test_nested_home_under_real_directories_is_created(root: Path) -> None:
    (root / "students").mkdir(mode=0o755)
    ident = replace(ALICE, home=str(root / "students" / "alice"))
    assert homedir.ensure_home(ident, str(root), None) is True
    assert os.stat(ident.home).st_uid == 20001


def test_missing_parent_is_not_created(root: Path) -> None:
    ident = replace(ALICE, home=str(root / "students" / "alice"))
    with pytest.raises(OodK8sError, match="create the parent directory first"):
        homedir.ensure_home(ident, str(root), None)
    assert os.listdir(root) == []


def test_user_racing_with_a_symlink_between_look_and_mkdir(root: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ident = user(root)
    real_mkdir = os.mkdir

    def racing_mkdir(path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        os.symlink(str(tmp_path), path, dir_fd=dir_fd)  # the attacker wins the race
        real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    with pytest.raises(SecurityError, match="symbolic link"):
        homedir.ensure_home(ident, str(root), None)
    assert os.stat(tmp_path).st_uid == 0


def test_world_writable_parent_without_sticky_bit_is_refused(root: Path) -> None:
    root.chmod(0o777)
    with pytest.raises(SecurityError, match="writable by others"):
        homedir.ensure_home(user(root), str(root), None)
    assert os.listdir(root) == []
    root.chmod(0o1777)  # like /tmp: others cannot rename or remove what we make
    assert homedir.ensure_home(user(root), str(root), None) is True
    root.chmod(0o777)  # an existing home there is accepted as it is: nothing is created
    assert homedir.ensure_home(user(root), str(root), None) is False


def test_outside_home_root_is_never_created(root: Path, tmp_path: Path) -> None:
    ident = replace(ALICE, home=str(tmp_path / "other" / "alice"))
    (tmp_path / "other").mkdir()
    assert homedir.ensure_home(ident, str(root), None) is False
    assert not os.path.exists(ident.home)


@pytest.mark.parametrize("home", ["relative/alice", "/home/../etc/alice", "/home//alice", "/home/alice/"])
def test_unnormalised_home_paths_are_refused(home: str) -> None:
    with pytest.raises(SecurityError, match="not a normalised absolute path"):
        homedir.ensure_home(replace(ALICE, home=home), "/home", None)


def test_root_uid_is_refused(root: Path) -> None:
    with pytest.raises(SecurityError, match="root's"):
        homedir.ensure_home(replace(ALICE, uid=0, home=str(root / "alice")), str(root), None)
    assert os.listdir(root) == []


def test_umask_does_not_change_the_modes(root: Path, skel: Path) -> None:
    old = os.umask(0o077)
    try:
        assert homedir.ensure_home(user(root), str(root), str(skel)) is True
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(Path(user(root).home) / ".bashrc").st_mode) == 0o644


# --- the storage wrapper ---------------------------------------------------------------------


def test_storage_ensure_home_follows_the_config(root: Path, skel: Path, make_config) -> None:
    ident = user(root)
    off = make_config(**{"storage.create_home": False, "storage.home_root": str(root)})
    assert storage.ensure_home(off, ident) is False
    assert os.listdir(root) == []
    on = make_config(**{"storage.home_root": str(root), "storage.skeleton_dir": str(skel)})
    assert storage.ensure_home(on, ident) is True
    assert (Path(ident.home) / ".bashrc").read_text() == "# bashrc\n"


def test_would_create_answers_as_ensure_home_acts(tmp_path: Path) -> None:
    root = tmp_path / "homes"
    root.mkdir()
    alice = user(root)
    assert homedir.would_create(alice, str(root)) and not Path(alice.home).exists()
    assert not homedir.would_create(user(tmp_path / "elsewhere"), str(root))  # never created outside the root
    homedir.ensure_home(alice, str(root))
    assert not homedir.would_create(alice, str(root))

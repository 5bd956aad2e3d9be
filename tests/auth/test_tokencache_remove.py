"""TokenCache.remove (user teardown): the user's cache directory goes, nothing else, never through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ood_k8s.auth import login
from ood_k8s.auth.tokencache import MAX_DEPTH, TokenCache, Tokens
from ood_k8s.config import Config
from ood_k8s.core.errors import SecurityError

TOKENS = Tokens("id", 2e9, "refresh", 2e9, "oidc", "https://idp.example.edu", "ood", "")


def _cache(tmp_path: Path, username: str = "alice") -> TokenCache:
    cache = TokenCache(str(tmp_path / "tokens"), username)
    cache.write(TOKENS)
    with cache.locked():
        pass  # leaves the lock file, as a real refresh does
    return cache


def _outside(tmp_path: Path) -> tuple[Path, Path]:
    """A file and a directory a hostile link inside the cache could point at."""
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    victim = victim_dir / "precious"
    victim.write_text("keep")
    return victim, victim_dir


def test_nothing_to_remove(tmp_path: Path) -> None:
    assert TokenCache(str(tmp_path / "missing"), "alice").remove() is False
    (tmp_path / "tokens").mkdir()
    assert TokenCache(str(tmp_path / "tokens"), "alice").remove() is False


def test_removes_everything_in_it_and_only_it(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    other = _cache(tmp_path, "Alice.Other")
    victim, victim_dir = _outside(tmp_path)
    user_dir = Path(cache.user_dir)
    # what a user may leave in their own directory
    (user_dir / ".tokens.json.123.abcd.tmp").write_text("half-written")
    os.mkfifo(user_dir / "fifo")
    (user_dir / "sub" / "deeper").mkdir(parents=True)
    (user_dir / "sub" / "deeper" / "f").write_text("x")
    (user_dir / "link-to-file").symlink_to(victim)
    (user_dir / "sub" / "link-to-dir").symlink_to(victim_dir)
    if os.geteuid() == 0:  # the real case: root removing a directory the user owns, mode 0700
        for path in (user_dir, user_dir / "sub"):
            os.chown(path, 20001, 20001)
    assert cache.remove() is True
    assert not os.path.lexists(user_dir)
    assert victim.read_text() == "keep" and sorted(os.listdir(victim_dir)) == ["precious"]
    assert other.read() is not None and (tmp_path / "tokens").is_dir()
    assert cache.remove() is False


def test_a_link_in_place_of_the_directory_is_refused(tmp_path: Path) -> None:
    victim, victim_dir = _outside(tmp_path)
    base = tmp_path / "tokens"
    base.mkdir()
    cache = TokenCache(str(base), "alice")
    Path(cache.user_dir).symlink_to(victim_dir)
    with pytest.raises(SecurityError, match="it is a symbolic link"):
        cache.remove()
    assert victim.read_text() == "keep" and os.path.islink(cache.user_dir)
    os.unlink(cache.user_dir)
    Path(cache.user_dir).write_text("not a directory")
    with pytest.raises(SecurityError, match="it is not a directory"):
        cache.remove()
    assert Path(cache.user_dir).read_text() == "not a directory"


def test_absurd_nesting_is_refused_not_recursed(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    deep = Path(cache.user_dir, *["d"] * (MAX_DEPTH + 2))
    deep.mkdir(parents=True)
    with pytest.raises(SecurityError, match=f"nested more than {MAX_DEPTH} deep"):
        cache.remove()


def test_forget_tokens_for_teardown(tmp_path: Path) -> None:
    cfg = Config()
    cfg.users.token_cache_dir = str(tmp_path / "tokens")
    assert login.forget_tokens(cfg, "alice") is None
    assert login.forget_tokens(cfg, "alice", dry_run=True) is None
    cache = _cache(tmp_path)
    assert login.forget_tokens(cfg, "alice", dry_run=True) == f"would delete the token cache {cache.user_dir}"
    assert cache.read() is not None
    assert login.forget_tokens(cfg, "alice") == f"deleted the token cache {cache.user_dir}"
    assert not os.path.lexists(cache.user_dir)

"""The per-user token cache: layout, ownership, symlink refusal, malformed input, locking."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from ood_k8s.auth.tokencache import TokenCache, Tokens
from ood_k8s.core import errors

UID, GID = 20001, 20001
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root")


def tokens(**changes: object) -> Tokens:
    base = Tokens(id_token="id.tok.en", id_expires_at=2000.0, refresh_token="refresh-secret",
                  refresh_expires_at=9000.0, mode="cognito", issuer="https://issuer", client_id="cid",
                  token_endpoint="https://cognito-idp.us-east-1.amazonaws.com/", margin=300)
    return base.replace(**changes)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_round_trip_layout_and_modes(tmp_path: Path) -> None:
    base = tmp_path / "tokens"
    cache = TokenCache(str(base), "alice", clock=lambda: 1234.0)
    assert cache.read() is None
    cache.write(tokens())
    got = cache.read()
    assert got == tokens(updated_at=1234.0)
    assert mode(base) == 0o711 and mode(base / "alice") == 0o700 and mode(base / "alice" / "tokens.json") == 0o600
    assert sorted(os.listdir(base / "alice")) == ["tokens.json"]  # no temporary file left behind


def test_slug_keeps_odd_usernames_apart(tmp_path: Path) -> None:
    a = TokenCache(str(tmp_path), "Alice.Smith@EDU")
    b = TokenCache(str(tmp_path), "alice-smith-edu")
    assert a.user_dir != b.user_dir and "--" in os.path.basename(a.user_dir)


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 100, "al ice", "é"])
def test_hostile_usernames_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(errors.UsageError):
        TokenCache(str(tmp_path), bad)
    assert list(tmp_path.iterdir()) == []


@needs_root
def test_root_writes_for_the_user_and_chowns_only_new_things(tmp_path: Path) -> None:
    base = tmp_path / "tokens"
    cache = TokenCache(str(base), "alice", owner=(UID, GID))
    cache.write(tokens())
    with cache.locked():
        pass
    for p in (base / "alice", base / "alice" / "tokens.json", base / "alice" / "lock"):
        st = os.lstat(p)
        assert (st.st_uid, st.st_gid) == (UID, GID), p
    assert os.lstat(base).st_uid == 0
    # The user may read their cache back (the plugin runs as them).
    assert cache.read() == tokens(updated_at=cache.read().updated_at)  # type: ignore[union-attr]


@needs_root
def test_root_refresh_without_owner_keeps_the_file_the_users(tmp_path: Path) -> None:
    TokenCache(str(tmp_path), "alice", owner=(UID, GID)).write(tokens())
    TokenCache(str(tmp_path), "alice").write(tokens(id_token="new"))  # e.g. sudo kubectl as root
    st = os.lstat(tmp_path / "alice" / "tokens.json")
    assert (st.st_uid, st.st_gid) == (UID, GID)


@needs_root
def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir(mode=0o700)
    os.chown(tmp_path / "alice", 20002, 20002)
    cache = TokenCache(str(tmp_path), "alice", owner=(UID, GID))
    with pytest.raises(errors.SecurityError, match="owned by uid 20002"):
        cache.write(tokens())
    with pytest.raises(errors.SecurityError):
        cache.read()
    assert os.listdir(tmp_path / "alice") == []


@needs_root
def test_a_world_writable_base_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "tokens"
    base.mkdir()
    os.chmod(base, 0o777)  # noqa: S103 - the misconfiguration under test
    with pytest.raises(errors.SecurityError, match="not group/world-writable"):
        TokenCache(str(base), "alice", owner=(UID, GID)).write(tokens())
    assert list(base.iterdir()) == []


def test_symlinked_cache_file_is_refused_and_target_untouched(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path / "t"), "alice")
    cache.write(tokens())
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.unlink(cache.path)
    os.symlink(victim, cache.path)
    with pytest.raises(errors.SecurityError, match="symbolic link"):
        cache.read()
    with pytest.raises(errors.SecurityError, match="symbolic link"):
        cache.write(tokens())
    assert victim.read_text() == "precious" and os.path.islink(cache.path)


def test_symlinked_user_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "t").mkdir()
    os.symlink(elsewhere, tmp_path / "t" / "alice")
    cache = TokenCache(str(tmp_path / "t"), "alice")
    with pytest.raises(errors.SecurityError, match="symbolic link"):
        cache.write(tokens())
    with pytest.raises(errors.SecurityError):
        cache.read()
    assert list(elsewhere.iterdir()) == []


def test_symlinked_lock_is_refused(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path), "alice")
    cache.write(tokens())
    os.symlink(tmp_path / "victim", os.path.join(cache.user_dir, "lock"))
    with pytest.raises(errors.SecurityError), cache.locked():
        pass
    assert not (tmp_path / "victim").exists()


def test_a_fifo_does_not_hang_the_reader(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path), "alice")
    cache.write(tokens())
    os.unlink(cache.path)
    os.mkfifo(cache.path)
    with pytest.raises(errors.SecurityError, match="not a regular file"):
        cache.read()


@pytest.mark.parametrize("content", [
    b"not json", b"[]", b'{"version": 2}', json.dumps({"version": 1, "id_token": 5}).encode(),
    json.dumps({"version": 1, "id_token": "x", "id_expires_at": True}).encode(), b"\xff\xfe",
])
def test_malformed_cache_reads_as_none(tmp_path: Path, content: bytes) -> None:
    cache = TokenCache(str(tmp_path), "alice")
    cache.write(tokens())
    Path(cache.path).write_bytes(content)
    assert cache.read() is None


def test_oversized_cache_is_refused(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path), "alice")
    cache.write(tokens())
    Path(cache.path).write_bytes(b" " * (300 * 1024))
    with pytest.raises(errors.SecurityError, match="larger than"):
        cache.read()


def test_validity_uses_margin_and_lookahead() -> None:
    t = tokens(id_expires_at=1000.0, margin=300, refresh_expires_at=5000.0)
    assert t.id_valid(699) and not t.id_valid(700)
    assert t.refresh_valid(4999) and not t.refresh_valid(5000) and not t.refresh_valid(1000, ahead=4000)
    assert not tokens(refresh_token="").refresh_valid(0)


def test_repr_never_shows_a_token() -> None:
    text = repr(tokens()) + str(tokens())
    assert "refresh-secret" not in text and "id.tok.en" not in text


def test_clear(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path), "alice")
    assert cache.clear() is False
    cache.write(tokens())
    assert cache.clear() is True and cache.read() is None


def test_lock_times_out_on_an_injected_clock(tmp_path: Path) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    holder = TokenCache(str(tmp_path), "alice")
    waiter = TokenCache(str(tmp_path), "alice", clock=lambda: now[0], sleep=sleep, lock_timeout=2)
    with holder.locked(), pytest.raises(errors.CredentialError, match="stayed locked for 2 s"), waiter.locked():
        pass
    assert slept and sum(slept) >= 2
    with waiter.locked(), waiter.locked():  # re-entrant, and free again once the holder is done
        pass


def _bump(directory: str, rounds: int) -> None:
    cache = TokenCache(directory, "alice")
    for _ in range(rounds):
        with cache.locked():
            current = cache.read()
            assert current is not None
            cache.write(current.replace(id_expires_at=current.id_expires_at + 1))


def test_concurrent_writers_do_not_corrupt_or_lose_updates(tmp_path: Path) -> None:
    TokenCache(str(tmp_path), "alice").write(tokens(id_expires_at=0.0))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(tmp_path), 40)) for _ in range(2)]
    threads = [threading.Thread(target=_bump, args=(str(tmp_path), 40)) for _ in range(2)]
    for w in (*procs, *threads):
        w.start()
    for w in (*procs, *threads):
        w.join()
    assert [p.exitcode for p in procs] == [0, 0]
    final = TokenCache(str(tmp_path), "alice").read()
    assert final is not None and final.id_expires_at == 160.0
    assert sorted(os.listdir(tmp_path / "alice")) == ["lock", "tokens.json"]


def test_decoder_knows_every_field() -> None:
    from ood_k8s.auth import tokencache

    assert tuple(tokencache._TYPES) == Tokens._fields

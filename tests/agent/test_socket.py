"""Socket authorisation: the kernel names the caller; nobody sees another user's sessions."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import pytest

from ood_k8s.agent import client
from tests.agent.conftest import World
from tests.conftest import ALICE, BOB

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to call as other uids")


def as_uid(uid: int, gid: int, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a forked child running as ``uid`` (setgroups, setgid, setuid); its result."""
    from ood_k8s.core import fsutil

    return fsutil.run_as(uid, gid, (), fn, *args)


def poll(path: str, job: str, user: str = "") -> Any:
    reply = client.ask(path, "json", job, user, timeout=2.0)
    return None if reply is None else json.loads(reply.body)


def raw(path: str, line: bytes) -> Any:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(line)
        return json.loads(s.makefile("rb").readline())


def test_each_uid_sees_its_own_sessions_only(world: World) -> None:
    mine, theirs = world.submit(ALICE), world.submit(BOB)
    world.start_agent()
    path = world.cfg.agent.socket
    assert [i["id"] for i in as_uid(ALICE.uid, ALICE.gid, poll, path, "")] == [mine]
    assert [i["id"] for i in as_uid(BOB.uid, BOB.gid, poll, path, "")] == [theirs]
    assert as_uid(ALICE.uid, ALICE.gid, poll, path, mine)[0]["job_owner"] == "alice"
    # Another user's job id is simply not in one's own namespace: the poll falls back to the API server,
    # which refuses bob there too.
    assert as_uid(BOB.uid, BOB.gid, poll, path, mine) is None
    # Naming another user is root's alone; an unknown uid has no sessions.
    refused = as_uid(BOB.uid, BOB.gid, raw, path, b"json - alice\n")
    assert refused == {"ok": False, "error": "uid 20002 may not ask about another user's sessions"}
    assert as_uid(BOB.uid, BOB.gid, raw, path, b"json - bob\n")["ok"] is True
    assert as_uid(30333, 30333, raw, path, b"json -\n") == {"ok": False,
                                                            "error": "uid 30333 is not known to this host (NSS)"}
    assert raw(path, b"json -\n") == {"ok": False, "error": "root has no sessions of its own: name a user"}
    assert [i["id"] for i in poll(path, "", "bob")] == [theirs], "root acts for a user"


def test_system_accounts_and_bad_requests_are_refused(world: World) -> None:
    world.start_agent()
    assert world.agent is not None
    world.agent.users.idents += (ALICE._replace(username="daemon", uid=2),)  # type: ignore[attr-defined]
    path = world.cfg.agent.socket
    assert as_uid(2, 2, raw, path, b"json -\n") == {"ok": False, "error": "uid 2 is a system account without sessions"}
    assert raw(path, b"GET / HTTP/1.1\r\n")["ok"] is False
    assert raw(path, b"json ../x alice\n")["error"].startswith("Invalid job id specified")
    assert raw(path, b"json - ../../etc\n")["ok"] is False


def test_the_socket_is_open_to_every_user_and_replaced_on_restart(world: World) -> None:
    agent = world.start_agent()
    path = world.cfg.agent.socket
    assert os.stat(path).st_mode & 0o777 == 0o666
    agent.stop()
    assert not os.path.exists(path), "a graceful stop removes the socket"
    world.agent = None
    world.start_agent()
    assert raw(path, b"json - alice\n")["ok"] is True


def test_a_slow_caller_holds_no_one_up(world: World) -> None:
    world.start_agent()
    path = world.cfg.agent.socket
    silent = [socket.socket(socket.AF_UNIX) for _ in range(20)]
    for s in silent:
        s.connect(path)  # connected, never speaks
    try:
        started = time.monotonic()
        assert raw(path, b"json - alice\n")["ok"] is True
        assert time.monotonic() - started < 0.5
    finally:
        for s in silent:
            s.close()


def test_many_pollers_at_once(world: World) -> None:
    job = world.submit(ALICE)
    world.start_agent()
    path = world.cfg.agent.socket
    results: list[Any] = []

    def one() -> None:
        results.append(client.ask(path, "psij", job, "alice", timeout=5.0))

    threads = [threading.Thread(target=one) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200 and all(r is not None and r.body.startswith(b'[{"native_id"') for r in results)


def test_a_failure_inside_the_agent_is_one_line_to_the_caller_and_the_detail_in_its_log(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from ood_k8s.agent import server

    world.start_agent()
    monkeypatch.setattr(server, "answer", lambda *a: (_ for _ in ()).throw(KeyError("secret-detail")))
    got = raw(world.cfg.agent.socket, b"json -\n")
    assert got == {"ok": False, "error": "the agent could not answer this request; see its log"}
    assert "secret-detail" in caplog.text and "KeyError" in caplog.text

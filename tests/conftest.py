"""Shared fixtures: the fake Kubernetes API, moto's AWS server, test users through nss_wrapper.

Real parts wherever one runs here: moto's server over HTTP on 127.0.0.1 for AWS, the fake API
over HTTPS for Kubernetes, nss_wrapper so the real NSS calls of subprocesses see test users.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from ood_k8s import config as config_mod
from ood_k8s.core.identity import Identity
from tests.fakekube.fixtures import fake_kube  # noqa: F401  (re-exported fixture)

ROOT = Path(__file__).resolve().parent.parent
NSS_WRAPPER = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"

ALICE = Identity(username="alice", uid=20001, gid=20001, home="/home/alice",
                 groups=("alice", "students", "gpu-users"), gids=(30001, 30002))
BOB = Identity(username="bob", uid=20002, gid=20002, home="/home/bob", groups=("bob", "students"),
               gids=(30001,))
TEST_USERS = (ALICE, BOB)
TEST_GROUPS = {"students": 30001, "gpu-users": 30002}


@pytest.fixture(autouse=True)
def _no_site_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the machine's /etc/ood config unless they say so."""
    monkeypatch.delenv("OOD_K8S_CONFIG", raising=False)
    monkeypatch.setattr(config_mod.loader, "DEFAULT_PATH", "/nonexistent/ood_k8s.yml")


class Clock:
    """An injectable clock a test sets or advances (use cases take ``clock: Callable[[], float]``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of a config section, an Identity or a dataclass with ``changes``; dotted paths reach into
    sections: replace(cfg, **{"cluster.server": url})."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, sub in nested.items():
        flat[head] = replace(getattr(obj, head), **sub)
    if config_mod.is_section(obj):
        return config_mod.replace(obj, **flat)
    if isinstance(obj, tuple):  # a NamedTuple (Identity)
        return obj._replace(**flat)
    return dataclasses.replace(obj, **flat)


@pytest.fixture
def make_config() -> Callable[..., config_mod.Config]:
    """Build a Config from the built-in default with dotted overrides."""

    def make(**changes: Any) -> config_mod.Config:
        return replace(config_mod.Config(), **changes)

    return make


# --- AWS: moto's real server on loopback -------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials and a region; returns the endpoint URL of moto's server (state reset)."""
    import requests

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    return moto_server


# --- users: nss_wrapper for subprocesses ----------------------------------------------------------


@pytest.fixture
def nss_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess whose getpwnam/getgrouplist see ALICE and BOB."""
    if not os.path.exists(NSS_WRAPPER):
        pytest.fail(f"{NSS_WRAPPER} missing: install Debian's libnss-wrapper (.ci/run does)")
    passwd = tmp_path / "passwd"
    group = tmp_path / "group"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n" + "".join(
        f"{u.username}:x:{u.uid}:{u.gid}:{u.username}:{u.home}:/bin/bash\n" for u in TEST_USERS))
    lines = ["root:x:0:\n"] + [f"{u.username}:x:{u.gid}:\n" for u in TEST_USERS]
    for name, gid in TEST_GROUPS.items():
        members = ",".join(u.username for u in TEST_USERS if name in u.groups)
        lines.append(f"{name}:x:{gid}:{members}\n")
    group.write_text("".join(lines))
    env = dict(os.environ)
    env.update({"LD_PRELOAD": NSS_WRAPPER, "NSS_WRAPPER_PASSWD": str(passwd), "NSS_WRAPPER_GROUP": str(group),
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    return env


def python() -> str:
    return sys.executable


@contextlib.contextmanager
def silent(listener: socket.socket) -> Iterator[list[socket.socket]]:
    """Accept on a bound ``listener`` (the kernel's backlog, then ``accept``) and never answer: a hung
    server.  Yields the connections accepted, so a test can count how often it was asked; closes all."""
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield accepted
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()

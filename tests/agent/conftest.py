"""An agent on the fake API: sessions submitted as the adapter submits them, test users by dict."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ood_k8s.agent.service import Agent
from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.sessions.adapter import Adapter
from tests.conftest import ALICE, BOB, replace, silent
from tests.fakekube import FakeKube

JUPYTER = {"content": "jupyter lab\n", "job_name": "sys/dashboard/sys/jupyter", "wall_time": 3600,
           "native": {"container": {"port": 8888}}}
READY = {"phase": "Running", "podIP": "10.0.7.9", "conditions": [{"type": "Ready", "status": "True"}],
         "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
                                "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]}


class DictUsers:
    """The agent's Users for tests: ALICE and BOB by uid and by name (the test process has no nss_wrapper)."""

    def __init__(self, *idents: Identity) -> None:
        self.idents = idents

    def by_uid(self, uid: int) -> Identity:
        for i in self.idents:
            if i.uid == uid:
                return i
        raise OodK8sError(f"uid {uid} is not known to this host (NSS)")

    def by_name(self, username: str) -> Identity:
        for i in self.idents:
            if i.username == username:
                return i
        raise OodK8sError(f"user '{username}' is not known to this host (NSS)")


def wait_until(cond: Callable[[], Any], timeout: float = 5.0) -> Any:
    """A bounded wait on a condition (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


class World:
    def __init__(self, fk: FakeKube, sock_dir: str) -> None:
        self.fk = fk
        self.client = KubeClient(fk.url, token=fk.token, ca_file=fk.ca_file, sleep=lambda s: None)
        self.client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                            "metadata": {"name": "ood-interactive"}, "value": 1000})
        for ns in ("ood-alice", "ood-bob"):
            self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        # The cache alone: tests of the lifecycle turn it on (its Lease traffic would count as API reads).
        self.cfg: Config = replace(Config(), **{"agent.enabled": True, "agent.lifecycle": False,
                                               "agent.socket": os.path.join(sock_dir, "agent.sock"),
                                               "cluster.server": fk.url})
        self.agent: Agent | None = None

    def adapter(self, ident: Identity) -> Adapter:
        return Adapter(self.cfg, ident, self.client)

    @property
    def site(self) -> Config:
        """The site as its users' commands see it: its agents run the lifecycle (pods get the ceiling as their
        deadline; extend works), though this test's agent itself runs only the cache."""
        return replace(self.cfg, **{"agent.lifecycle": True})

    def submit(self, ident: Identity = ALICE, **script: Any) -> str:
        return Adapter(self.site, ident, self.client).submit({**JUPYTER, **script})

    def ready(self, ident: Identity, job: str) -> None:
        self.fk.set_pod_status(f"ood-{ident.username}", job, node_name="n1", **READY)

    def start_agent(self, **kw: Any) -> Agent:
        # Bookmarks every 0.2 s keep a stream live; 2 s of silence is a stall even on a loaded machine.
        opts = {"stall_after": 2.0, "watch_timeout": 60, "backoff_cap": 0.1, **kw}
        self.agent = Agent(self.cfg, self.client, users=DictUsers(ALICE, BOB), **opts).start()
        assert self.agent.wait_synced(5)
        return self.agent

    def seen(self, ident: Identity, job: str, test: Callable[[dict[str, Any]], bool] = lambda p: True) -> Any:
        """Wait until the agent's cache holds the job's pod (passing ``test``)."""
        assert self.agent is not None
        client = self.agent.cache.client()
        return wait_until(lambda: (p := client.get_or_none("Pod", job, f"ood-{ident.username}")) and test(p))


@pytest.fixture
def sock_dir() -> Iterator[str]:
    # Not pytest's tmp_path: test users (another uid) must reach the socket through its directory.
    path = tempfile.mkdtemp(prefix="ood-k8s-agent-")
    os.chmod(path, 0o755)  # noqa: S103 - as /run/ood-k8s
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running_world(sock_dir: str) -> Iterator[World]:
    """A World on a fresh fake API; its agent (if started) and the API stopped afterwards."""
    fk = FakeKube()
    fk.bookmark_interval = 0.2
    fk.start()
    w = World(fk, sock_dir)
    try:
        yield w
    finally:
        if w.agent is not None:
            w.agent.stop()
        fk.unhang()
        fk.stop()


@pytest.fixture
def world(sock_dir: str) -> Iterator[World]:
    with running_world(sock_dir) as w:
        yield w


@contextlib.contextmanager
def hung_agent(path: str) -> Iterator[list[socket.socket]]:
    """A socket at ``path`` that accepts (the kernel's backlog and then ``accept``) and never answers;
    yields the connections it accepted, so a test can count how often it was asked."""
    hung = socket.socket(socket.AF_UNIX)
    hung.bind(path)
    with silent(hung) as accepted:
        yield accepted

"""The Jupyter form shows the remaining budget: apps/_lib asks the agent's socket (Debian's ruby)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT

LIB = ROOT / "apps" / "_lib" / "ood_k8s_form.rb"


def ruby(code: str, env: dict[str, str]) -> object:
    out = subprocess.run(["ruby", "-rjson", "-e", f"require {str(LIB)!r}\n{code}"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def agent() -> Iterator[tuple[str, list[bytes]]]:
    """A stand-in agent socket answering 'budget -' as the agent does; what it was asked."""
    path = os.path.join(tempfile.mkdtemp(prefix="ood-k8s-form-"), "agent.sock")
    asked: list[bytes] = []
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(4)
    body = [{"course": "cs109b", "used_gpu_hours": 18.5, "limit": 20.0, "left": 1.5, "scope": "student",
             "running_gpus": 0},
            {"course": "cs109b", "used_gpu_hours": 900.0, "limit": 1000.0, "left": 100.0, "scope": "course",
             "running_gpus": 3}]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                asked.append(conn.makefile("rb").readline())
                conn.sendall(b'{"ok":true,"age":0,"found":true}\n' + json.dumps(body).encode() + b"\n")

    threading.Thread(target=serve, daemon=True).start()
    yield path, asked
    server.close()


def test_the_gpu_field_says_what_is_left(agent: tuple[str, list[bytes]]) -> None:
    path, asked = agent
    got = ruby("puts JSON.generate([OodK8sForm.budget_note])", {"OOD_K8S_AGENT_SOCKET": path})
    assert got == ["1.5 of 20 GPU-hours left this term in cs109b; 100 of 1000 GPU-hours left this term in cs109b "
                   "(whole course)."]
    assert asked == [b"budget -\n"]


def test_no_agent_no_note() -> None:
    got = ruby("puts JSON.generate([OodK8sForm.budgets, OodK8sForm.budget_note])",
               {"OOD_K8S_AGENT_SOCKET": "/nonexistent/agent.sock"})
    assert got == [[], None]

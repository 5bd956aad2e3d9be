"""The ``ood-k8s-psij`` launcher: a poll answered by the agent with builtin modules only, byte for byte
what the full path prints, and everything else handed to the full path unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s.agent import client, fastpoll
from ood_k8s.agent.server import _header
from ood_k8s.config import loader
from ood_k8s.core import fsutil
from ood_k8s.core.process import read_argv
from tests.agent.conftest import World, hung_agent, wait_until
from tests.conftest import ALICE, ROOT

GEM = "/opt/ood/gems/ood_core/lib/ood_core/job/adapters/psij"
LAUNCHER = "from ood_k8s.agent.fastpoll import cli; cli()"
FULL = "from ood_k8s.ood.psij_shim import cli; cli()"


# --- what it reads, what it leaves to the full path ------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [f"{GEM}/get_info.py", "--id=jupyter-abc", "--executor=ood_k8s"],
    [f"{GEM}/get_info.py", "--id=", "--executor=ood_k8s"],
    [f"{GEM}/get_info.py", "--id= jupyter-abc ", "--executor", "ood_k8s", "--user", "alice"],
    ["info", "--id=x", "--user=alice", "--config=/etc/x.yml", "--owner=bob"],
    [f"{GEM}/get_info.py", "--id=a", "--id=b"],
])
def test_a_plain_poll_is_read_as_the_full_path_reads_it(argv: list[str]) -> None:
    opts, rest = read_argv(argv[1:])
    assert rest == []
    assert fastpoll.poll_request(argv) == (opts.get("id", "").strip(), opts.get("user", ""), opts.get("config"))


@pytest.mark.parametrize("argv", [
    [], ["--version"], [f"{GEM}/submit.py", "ood_k8s"], [f"{GEM}/delete.py", "--id=x", "--executor=ood_k8s"],
    [f"{GEM}/get_info.py", "ood_k8s"], [f"{GEM}/get_info.py", "--id=x", "--bogus=1"],
    [f"{GEM}/get_info.py", "--id"], [f"{GEM}/get_info.py", "--id=a b"], [f"{GEM}/get_info.py", "--id=é"],
    [f"{GEM}/get_info.py", "--id=x", "--user="], [f"{GEM}/get_info.py", "-x"],
])
def test_anything_else_is_left_to_the_full_path(argv: list[str]) -> None:
    assert fastpoll.poll_request(argv) is None


@pytest.mark.parametrize("head", [
    {"ok": True, "age": 0.0, "found": True}, {"ok": True, "age": 12.345, "found": True},
    {"ok": True, "age": 0.0, "found": False}, {"ok": False, "error": "no"},
    {"ok": True, "age": 1.5, "found": True, "end": {"status": "completed", "native": {"reason": "x"}}},
])
def test_the_plain_header_is_read_as_json_reads_it_or_left_to_json(head: dict[str, Any]) -> None:
    data = _header(**head) + b'[{"x": 1}]\n'
    plain, parsed = fastpoll.plain_answer(data), client.parse(data)
    if "end" in head or not head.get("found"):
        assert plain is None  # the full path reads these (an unknown job, a refusal, an ended session)
    else:
        assert parsed is not None and plain == (parsed.age, parsed.body) == (head["age"], b'[{"x": 1}]\n')


def test_the_config_is_looked_for_where_the_full_path_looks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = Path(loader.__file__).read_text()  # the tests move loader.DEFAULT_PATH away from /etc
    assert f'DEFAULT_PATH = "{fastpoll.DEFAULT_CONFIG}"' in source and f'ENV_VAR = "{fastpoll.CONFIG_ENV}"' in source
    monkeypatch.setattr(fastpoll, "DEFAULT_CONFIG", loader.DEFAULT_PATH)
    for explicit, env in ((None, None), ("/a.yml", "/b.yml"), (None, "/b.yml"), ("/a.yml", None)):
        if env:
            monkeypatch.setenv("OOD_K8S_CONFIG", env)
        else:
            monkeypatch.delenv("OOD_K8S_CONFIG", raising=False)
        assert fastpoll.config_path(explicit) == loader.resolve_path(explicit)


# --- the hint ----------------------------------------------------------------------------------------------


def _site(path: Path, **agent: Any) -> Path:
    path.write_text(yaml.safe_dump({"agent": {"enabled": True, "socket": "/run/x/agent.sock", **agent}}))
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="root leaves the hint")
def test_root_loading_the_config_leaves_the_hint_and_any_edit_voids_it(tmp_path: Path) -> None:
    site = _site(tmp_path / "site.yml", max_age=5, timeout=0.25)
    cfg = loader.load(str(site))
    hint = fastpoll.read_hint(str(site))
    assert hint is not None and (hint.socket, hint.timeout, hint.max_age, hint.min_uid) == \
           ("/run/x/agent.sock", 0.25, 5.0, cfg.users.min_uid)
    site.write_text(site.read_text() + "# a comment\n")
    assert fastpoll.read_hint(str(site)) is None  # the hint copies the text it came from
    loader.load(str(site))
    assert fastpoll.read_hint(str(site)) is not None
    disabled = tmp_path / "off.yml"
    disabled.write_text("agent: {enabled: false}\n")
    loader.load(str(disabled))
    assert not Path(str(disabled) + fastpoll.HINT_SUFFIX).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="root leaves the hint")
def test_a_hint_not_trusted_as_much_as_the_config_is_not_read(tmp_path: Path) -> None:
    site = _site(tmp_path / "site.yml")
    loader.load(str(site))
    hint = Path(str(site) + fastpoll.HINT_SUFFIX)
    assert fastpoll.read_hint(str(site)) is not None
    hint.chmod(0o666)
    assert fastpoll.read_hint(str(site)) is None
    hint.chmod(0o644)
    os.chown(hint, ALICE.uid, ALICE.gid)
    assert fastpoll.read_hint(str(site)) is None
    hint.unlink()
    (tmp_path / "elsewhere").write_bytes(fastpoll.hint_text("/s", 0.1, 60, 1000, site.read_bytes()) or b"")
    hint.symlink_to(tmp_path / "elsewhere")
    assert fastpoll.read_hint(str(site)) is None


# --- the whole process --------------------------------------------------------------------------------------


@pytest.fixture
def site(world: World, sock_dir: str, nss_env: dict[str, str]) -> dict[str, Any]:
    kubeconfig = world.fk.write_kubeconfig(os.path.join(sock_dir, "kubeconfig"))
    path = Path(sock_dir) / "site.yml"  # beside the socket: readable by the test users
    path.write_text(yaml.safe_dump({"cluster": {"server": "", "kubeconfig": kubeconfig,
                                                "provisioner_kubeconfig": kubeconfig},
                                    "agent": {"enabled": True, "socket": world.cfg.agent.socket}}))
    path.chmod(0o644)
    loader.load(str(path))  # root leaves the hint (as the hook or the agent would)
    env = {k: v for k, v in nss_env.items() if k not in ("OOD_K8S_CONFIG", "OOD_K8S_DEBUG")}
    return {"env": {**env, "OOD_K8S_CONFIG": str(path)}, "path": str(path), "dir": sock_dir}


def poll(site: dict[str, Any], code: str, job: str, *python: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *python, "-c", code, f"{GEM}/get_info.py", f"--id={job}",
                           "--executor=ood_k8s", "--user=alice"], capture_output=True, cwd=site["dir"], timeout=60,
                          env=site["env"])


def reads(world: World) -> list[str]:
    return [r.path for r in world.fk.requests if r.query.get("watch") != "true"]


def test_the_launcher_prints_what_the_full_path_prints_with_builtin_modules_only(world: World,
                                                                                  site: dict[str, Any]) -> None:
    pending = world.submit()
    world.start_agent()
    for job in (pending, ""):
        world.fk.reset_requests()
        fast, full = poll(site, LAUNCHER, job), poll(site, FULL, job)
        assert (fast.returncode, fast.stderr) == (0, b"") and fast.stdout == full.stdout
        assert reads(world) == []
    out = poll(site, LAUNCHER, pending, "-X", "importtime")
    imported = {line.rsplit("|", 1)[1].strip() for line in out.stderr.decode().splitlines()
                if line.startswith("import time:")}
    ours = {m for m in imported if m.startswith("ood_k8s")}
    assert ours == {"ood_k8s", "ood_k8s.agent", "ood_k8s.agent.fastpoll"}, ours
    assert {"typing", "json", "socket", "re", "enum", "selectors"} & imported == set()


def test_a_caller_without_root_is_named_by_the_kernel(world: World, site: dict[str, Any]) -> None:
    job = world.submit(ALICE)
    world.start_agent()
    os.environ["OOD_K8S_CONFIG"] = site["path"]
    try:
        out, answer = fsutil.run_as(ALICE.uid, ALICE.gid, (), fastpoll._ask,
                                    [f"{GEM}/get_info.py", f"--id={job}", "--executor=ood_k8s"])
        refused = fsutil.run_as(ALICE.uid, ALICE.gid, (), fastpoll._ask,
                                [f"{GEM}/get_info.py", f"--id={job}", "--user=bob"])
    finally:
        del os.environ["OOD_K8S_CONFIG"]
    assert answer is None and json.loads(out)[0]["native_id"] == job
    assert refused == (None, None), "a user naming a user is the full path's to refuse"


def test_an_unknown_job_and_an_ended_session_go_to_the_full_path_asked_once(world: World, site: dict[str, Any],
                                                                            sock_dir: str) -> None:
    session = Path(sock_dir) / "session"
    session.mkdir()
    os.chown(session, ALICE.uid, ALICE.gid)
    job = world.submit(output_path=str(session / "output.log"))
    world.fk.set_pod_status("ood-alice", job, node_name="n1", phase="Failed", containerStatuses=[
        {"name": "app", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
         "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])
    agent = world.start_agent()
    world.fk.reset_requests()
    served = agent.served
    out = poll(site, LAUNCHER, job)
    assert out.returncode == 0 and json.loads(out.stdout)[0]["current_state"] == "COMPLETED"
    assert reads(world) == [] and agent.served == served + 1
    assert "out of memory" in (session / "ood-k8s-end.txt").read_text().lower()
    gone = "jupyter-nosuchjob"
    out = poll(site, LAUNCHER, gone)
    assert out.returncode == 0 and json.loads(out.stdout) == [] and agent.served == served + 2
    assert f"/api/v1/namespaces/ood-alice/pods/{gone}" in reads(world)


def test_a_hung_agent_is_asked_once_then_the_api(world: World, site: dict[str, Any]) -> None:
    job = world.submit()
    with hung_agent(world.cfg.agent.socket) as accepted:
        world.fk.reset_requests()
        out = poll(site, LAUNCHER, job)
        assert out.returncode == 0 and json.loads(out.stdout)[0]["current_state"] == "QUEUED"
        assert f"/api/v1/namespaces/ood-alice/pods/{job}" in reads(world)
        wait_until(lambda: accepted)
        assert len(accepted) == 1, "the full path did not ask the hung agent again"


def test_with_the_agent_stopped_the_launcher_falls_back(world: World, site: dict[str, Any]) -> None:
    job = world.submit()
    world.fk.reset_requests()
    out = poll(site, LAUNCHER, job)
    assert out.returncode == 0 and json.loads(out.stdout)[0]["current_state"] == "QUEUED", out.stderr
    assert f"/api/v1/namespaces/ood-alice/pods/{job}" in reads(world)


def test_the_console_script_is_the_launcher() -> None:
    entry = [line.split("=", 1)[1].strip() for line in (ROOT / "setup.cfg").read_text().splitlines()
             if line.strip().startswith("ood-k8s-psij =")]
    assert entry == ["ood_k8s.agent.fastpoll:cli"]

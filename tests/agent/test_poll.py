"""The poll processes through the agent: answered with no API request when fresh, and transparently
from the API server when the agent is stopped, hung or stale."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s.agent import client
from tests.agent.conftest import World, hung_agent, wait_until
from tests.conftest import ALICE, ROOT, replace

GEM = "/opt/ood/gems/ood_core/lib/ood_core/job/adapters/psij"


@pytest.fixture
def site(world: World, tmp_path: Path, nss_env: dict[str, str]) -> dict[str, Any]:
    kubeconfig = world.fk.write_kubeconfig(str(tmp_path / "kubeconfig"))

    def write(name: str, **agent: Any) -> str:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"cluster": {"server": "", "kubeconfig": kubeconfig,
                                                    "provisioner_kubeconfig": kubeconfig},
                                        "agent": {"socket": world.cfg.agent.socket, **agent}}))
        return str(path)

    env = {k: v for k, v in nss_env.items() if k not in ("OOD_K8S_CONFIG", "OOD_K8S_DEBUG")}
    return {"env": env, "tmp": tmp_path, "agent": write("agent.yml", enabled=True, max_age=0.3),
            "direct": write("direct.yml", enabled=False)}


def run(site: dict[str, Any], config: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=site["tmp"], timeout=60,
                          env={**site["env"], "OOD_K8S_CONFIG": site[config]})


def get_info(site: dict[str, Any], config: str, job: str = "") -> list[dict[str, Any]]:
    out = run(site, config, "-c", "from ood_k8s.ood.psij_shim import cli; cli()", f"{GEM}/get_info.py",
              f"--id={job}", "--executor=ood_k8s", "--user=alice")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return [{k: v for k, v in i.items() if k != "wall_time"} for i in json.loads(out.stdout)]


def strip(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "wallclock_time"}


def api_reads(world: World) -> list[str]:
    return [r.path for r in world.fk.requests if r.query.get("watch") != "true"]


def test_a_fresh_agent_answers_the_poll_with_no_api_request(world: World, site: dict[str, Any]) -> None:
    pending, ready = world.submit(), world.submit()
    world.ready(ALICE, ready)
    world.start_agent()
    world.seen(ALICE, ready, lambda p: p["status"]["phase"] == "Running")
    for job in (pending, ready, ""):
        world.fk.reset_requests()
        through_agent = get_info(site, "agent", job)
        assert api_reads(world) == [], f"get_info --id={job}"
        assert through_agent == get_info(site, "direct", job)
        assert api_reads(world), "the direct path reads the API"
    assert sorted(i["current_state"] for i in get_info(site, "agent")) == ["ACTIVE", "QUEUED"]


def test_job_info_and_list_use_the_agent(world: World, site: dict[str, Any]) -> None:
    job = world.submit()
    world.start_agent()
    cli = ["-m", "ood_k8s", "job"]
    for verb in (["info", job], ["list"]):
        world.fk.reset_requests()
        ours = run(site, "agent", *cli, *verb, "--user", "alice", "-o", "json")
        assert ours.returncode == 0 and api_reads(world) == [], ours.stderr
        direct = run(site, "direct", *cli, *verb, "--user", "alice", "-o", "json")
        assert direct.returncode == 0 and api_reads(world), direct.stderr
        got, want = json.loads(ours.stdout), json.loads(direct.stdout)
        assert [strip(d) for d in (got if verb == ["list"] else [got])] == \
               [strip(d) for d in (want if verb == ["list"] else [want])]


def test_a_stopped_agent_falls_back(world: World, site: dict[str, Any]) -> None:
    job = world.submit()
    world.start_agent().stop()
    world.agent = None
    world.fk.reset_requests()
    assert get_info(site, "agent", job)[0]["current_state"] == "QUEUED"
    assert f"/api/v1/namespaces/ood-alice/pods/{job}" in api_reads(world)


def test_a_hung_agent_costs_a_poll_100_ms_then_falls_back(world: World, site: dict[str, Any]) -> None:
    job = world.submit()
    with hung_agent(world.cfg.agent.socket) as accepted:
        started = time.monotonic()
        assert client.ask(world.cfg.agent.socket, "psij", job, "alice", timeout=0.1) is None
        assert time.monotonic() - started < 0.15
        world.fk.reset_requests()
        assert get_info(site, "agent", job)[0]["current_state"] == "QUEUED"
        assert f"/api/v1/namespaces/ood-alice/pods/{job}" in api_reads(world)
        wait_until(lambda: accepted)


def test_a_stale_agent_falls_back(world: World, site: dict[str, Any]) -> None:
    job = world.submit()
    agent = world.start_agent()
    world.fk.inject(status=503, count=10**6, path_contains="watch=true")  # the watch cannot come back...
    world.fk.drop_watches()
    wait_until(lambda: agent.age() > 0.3)  # ...so the view grows older than agent.max_age (0.3 s here)
    reply = client.ask(world.cfg.agent.socket, "psij", job, "alice")
    assert reply is not None and reply.age > 0.3, "the agent still answers, saying how old its view is"
    world.ready(ALICE, job)  # a change the agent cannot see
    world.fk.reset_requests()
    assert get_info(site, "agent", job)[0]["current_state"] == "ACTIVE"
    assert f"/api/v1/namespaces/ood-alice/pods/{job}" in api_reads(world)


def test_the_agent_command_runs_in_the_foreground_and_stops_gracefully(world: World, site: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    import signal

    provisioner = world.fk.write_kubeconfig(str(tmp_path / "provisioner"))
    config = tmp_path / "agent-cmd.yml"
    # The cache's process alone (its stderr is read line by line); test_lifecycle runs it with the lifecycle.
    config.write_text(yaml.safe_dump({"cluster": {"provisioner_kubeconfig": provisioner},
                                      "agent": {"socket": world.cfg.agent.socket, "lifecycle": False}}))
    proc = subprocess.Popen([sys.executable, "-m", "ood_k8s", "--config", str(config), "agent"], cwd=str(ROOT),
                            env=site["env"], stderr=subprocess.PIPE, text=True)
    try:
        assert "answering on" in (proc.stderr.readline() if proc.stderr else "")
        assert "synced" in (proc.stderr.readline() if proc.stderr else "")
        proc.send_signal(signal.SIGHUP)
        assert "reloaded" in (proc.stderr.readline() if proc.stderr else "")
        reply = client.ask(world.cfg.agent.socket, "json", "", "alice", timeout=2)
        assert reply is not None and json.loads(reply.body) == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not Path(world.cfg.agent.socket).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_ended_session_leaves_its_note_through_the_agent(world: World, site: dict[str, Any],
                                                            sock_dir: str) -> None:
    session = Path(sock_dir) / "session"
    session.mkdir()
    os.chown(session, ALICE.uid, ALICE.gid)  # the staged root is the user's
    job = world.submit(output_path=str(session / "output.log"))
    world.fk.set_pod_status("ood-alice", job, node_name="n1", phase="Failed", containerStatuses=[
        {"name": "app", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
         "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])
    world.start_agent()
    world.fk.reset_requests()
    assert get_info(site, "agent", job)[0]["current_state"] == "COMPLETED"
    assert api_reads(world) == []
    note = session / "ood-k8s-end.txt"
    assert note.read_text().startswith("the app ran out of memory") and note.stat().st_uid == ALICE.uid


def test_healthz_says_whether_the_view_is_fresh(world: World) -> None:
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    world.cfg = replace(world.cfg, **{"agent.health_port": port, "agent.max_age": 0.2})
    agent = world.start_agent()
    wait_until(lambda: all(r.live for r in agent.reflectors))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        state = json.loads(resp.read())
    assert state["synced"] and state["age"] == 0.0 and set(state["watches"]) == {"Pod", "Secret", "Event"}
    world.fk.stop()
    wait_until(lambda: agent.age() > 0.2)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert err.value.code == 503


def test_the_poll_through_the_agent_imports_only_what_the_socket_needs(world: World, site: dict[str, Any]) -> None:
    job = world.submit()
    world.start_agent()
    get_info(site, "agent", job)  # the first load (as root) leaves the configuration's compiled cache
    out = run(site, "agent", "-X", "importtime", "-c", "from ood_k8s.ood.psij_shim import cli; cli()",
              f"{GEM}/get_info.py", f"--id={job}", "--executor=ood_k8s", "--user=alice")
    assert out.returncode == 0 and '"QUEUED"' in out.stdout, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "ood_k8s.agent.client" in imported
    heavy = {"ssl", "http.client", "yaml", "argparse", "dataclasses", "threading", "hashlib", "subprocess",
             "ood_k8s.core.kube", "ood_k8s.core.http", "ood_k8s.sessions.adapter", "ood_k8s.kubeconfig.clients"}
    assert heavy & imported == set()

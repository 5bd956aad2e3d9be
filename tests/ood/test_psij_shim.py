"""ood-k8s-psij as a process, fed exactly what OOD's psij.rb builds (run by Debian's ruby).

The process runs as root with nss_wrapper showing the test users, so it uses the admin-only
``--user=alice`` (a process of uid 20001 could not execute this machine's interpreter under /root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s.core.kube import KubeClient
from ood_k8s.ood.psij_shim import wire_info
from ood_k8s.sessions.request import parse_duration, strip_native_tokens
from tests.conftest import ROOT
from tests.fakekube.seeds import PRIORITY_CLASS

GEM = "/opt/ood/ondemand/root/usr/share/gems/3.3/ondemand/4.0.0/gems/ood_core/lib/ood_core/job/adapters/psij"
NS = "ood-alice"


@pytest.fixture
def site(fake_kube, tmp_path: Path, nss_env: dict[str, str]) -> dict[str, Any]:
    kubeconfig = fake_kube.write_kubeconfig(str(tmp_path / "kubeconfig"))
    cfg = tmp_path / "ood_k8s.yml"
    cfg.write_text(yaml.safe_dump({"cluster": {"server": "", "kubeconfig": kubeconfig},
                                   "portal": {"submit_host": "ood.example.edu"}}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "job.sh").write_text("echo hi\n")
    os.chown(home / "job.sh", 20001, 20001)
    env = dict(nss_env, OOD_K8S_CONFIG=str(cfg), HOME=str(home))
    env.pop("OOD_K8S_DEBUG", None)
    client = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fake_kube.seed(PRIORITY_CLASS)  # what 'cluster render' makes: sessions run at ood-interactive (issue 11)
    return {"env": env, "home": home, "fk": fake_kube, "tmp": tmp_path}


def ood_psij_request(site: dict[str, Any], content: str, **opts: Any) -> dict[str, Any]:
    """What OOD's PSI/J adapter writes (~/ood_tmp/run.sh) and pipes to submit.py, built by ruby."""
    program = ("require 'json'; req = JSON.parse($stdin.read); "
               "opts = req['opts'].transform_keys(&:to_sym); "
               "$stdout.write(JSON.generate(OodHarness.psij_request(req['content'], opts, req['job'])))")
    request = {"content": content, "opts": opts, "job": {"executor": "ood_k8s", "queue_name": None}}
    out = subprocess.run(["ruby", "-r", str(ROOT / "tests" / "ood_harness.rb"), "-e", program],
                         input=json.dumps(request), capture_output=True, text=True, env=site["env"],
                         cwd=site["tmp"], check=True)
    answer = json.loads(out.stdout)
    os.chown(answer["run_sh"], 20001, 20001)  # OOD writes it as the user
    return answer


def shim(site: dict[str, Any], *args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python3 <gem>/psij/<script> args`` with python3 overridden by ood-k8s-psij (bin_overrides)."""
    entry = "from ood_k8s.ood.psij_shim import cli; cli()"
    return subprocess.run([sys.executable, "-c", entry, *args, "--user=alice"], input=stdin, capture_output=True,
                          text=True, env=site["env"], cwd=cwd or site["tmp"], timeout=60)


def info(site: dict[str, Any], job_id: str = "") -> list[dict[str, Any]]:
    out = shim(site, f"{GEM}/get_info.py", f"--id={job_id}", "--executor=ood_k8s")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return json.loads(out.stdout)


def test_batch_connect_session_end_to_end(site: dict[str, Any]) -> None:
    fk = site["fk"]
    workdir = site["tmp"] / "session"
    workdir.mkdir()
    body = "cd /home/alice/ondemand/session\nsource before.sh\n"
    req = ood_psij_request(site, body, job_name="sys/dashboard/sys/jupyter", workdir=str(workdir),
                           output_path=f"{workdir}/output.log", wall_time=7200, gpus_per_node=1, cores=4,
                           native=["--profile", "gpu-t4", "--port", "8888"], job_environment={"COURSE": "cs101"})
    sent = json.loads(req["psij_stdin"])
    assert sent["attributes"] == {"duration": 7200, "custom_attributes": {"profile": "gpu-t4", "port": "8888"}}
    assert Path(req["run_sh"]).read_text().endswith(body + "--profile\ngpu-t4\n--port\n8888")

    out = shim(site, *req["psij_argv"], stdin=req["psij_stdin"], cwd=workdir)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout
    assert job_id.startswith("jupyter-") and "\n" not in job_id and out.stderr == ""

    pod = fk.get("pods", job_id, NS)
    assert pod["metadata"]["labels"]["ood-k8s.io/profile"] == "gpu-t4"
    ctr = pod["spec"]["containers"][0]
    assert ctr["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert ctr["workingDir"] == str(workdir) and pod["spec"]["activeDeadlineSeconds"] == 7200  # no agent: the wall time
    assert pod["metadata"]["annotations"]["ood-k8s.io/walltime"] == "7200"  # issue 15: the wall time under it
    assert {"name": "COURSE", "value": "cs101"} in ctr["env"]
    assert fk.get("configmaps", f"{job_id}-files", NS)["data"]["script.sh"] == body  # tokens stripped

    (listed,) = info(site, job_id)
    assert listed["native_id"] == job_id and listed["current_state"] == "QUEUED"
    assert listed["reason"] == "waiting for the scheduler"
    assert listed["owner"] == "alice" and listed["name"] == "sys/dashboard/sys/jupyter"
    assert listed["duration"] == 7200 and listed["queue_name"] == "gpu-t4" and listed["process_count"] == 4
    assert listed["submit_host"] == "ood.example.edu" and listed["resourcelist"] == []
    assert listed["dispatch_time"] is None and len(listed["submission_time"]) == len("2025-01-01 00:00:00")

    fk.set_pod_status(NS, job_id, node_name="ip-10-0-1-5", phase="Running", podIP="10.0.7.9",
                      conditions=[{"type": "Ready", "status": "True"}],
                      containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x",
                                          "imageID": "", "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}])
    (running,) = info(site, job_id)
    assert running["current_state"] == "ACTIVE" and running["resourcelist"] == [{"name": "ip-10-0-1-5", "procs": 4}]
    assert running["ood_connection_info"]["host"] == "10.0.7.9" and running["ood_connection_info"]["port"] == 8888
    (listed,) = info(site)  # all of the user's jobs: one list call, so no connection info
    assert (listed["native_id"], listed["current_state"]) == (job_id, "ACTIVE") and "ood_connection_info" not in listed

    out = shim(site, f"{GEM}/delete.py", f"--id={job_id}", "--executor=ood_k8s")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    assert info(site, job_id)[0]["current_state"] == "COMPLETED"  # terminating counts as ended


def test_hold_and_release_through_the_shim(site: dict[str, Any]) -> None:
    req = ood_psij_request(site, "sleep 1\n", shell_path="/bin/bash", job_name="batch", native=["--hold"])
    out = shim(site, *req["psij_argv"], stdin=req["psij_stdin"])
    job_id = out.stdout
    assert out.returncode == 0 and info(site, job_id)[0]["current_state"] == "HELD"
    assert shim(site, f"{GEM}/release.py", f"--id={job_id}", "--executor=ood_k8s").returncode == 0
    assert info(site, job_id)[0]["current_state"] == "QUEUED"
    out = shim(site, f"{GEM}/hold.py", f"--id={job_id}", "--executor=ood_k8s")
    assert out.returncode == 2 and out.stdout == "" and "cannot be held now" in out.stderr


def test_unknown_ids_say_invalid_job_id(site: dict[str, Any]) -> None:
    assert info(site, "jupyter-zzzzzzzz") == []  # OOD: an empty list means completed
    # Issue 12: psij.rb re-raises every delete failure, so deleting a session that is gone succeeds.
    out = shim(site, f"{GEM}/delete.py", "--id=jupyter-zzzzzzzz", "--executor=ood_k8s")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    for script in ("hold.py", "release.py"):
        out = shim(site, f"{GEM}/{script}", "--id=jupyter-zzzzzzzz", "--executor=ood_k8s")
        assert out.returncode != 0 and out.stdout == ""
        assert "Invalid job id specified" in out.stderr and out.stderr.count("\n") == 1
    out = shim(site, f"{GEM}/get_info.py", "--id=../../etc", "--executor=ood_k8s")
    assert out.returncode == 2 and "Invalid job id specified" in out.stderr and out.stdout == ""


@pytest.mark.parametrize(("stdin", "needle"), [
    ("not json", "not valid JSON"),
    (json.dumps({"executable": "~/ood_tmp/missing.sh"}), "cannot read the job script"),
    (json.dumps({"executable": "/etc/hostname"}), "is not owned by the user"),
    (json.dumps({"executable": "~/job.sh", "bogus": 1}), "unknown job spec key 'bogus'"),
    (json.dumps({"executable": "~/job.sh", "attributes": {"custom_attributes": {"profile": "nope"}}}),
     "unknown profile 'nope'"),
    (json.dumps({"executable": "~/job.sh", "resources": {"memory": 999 * 2**40}}), "more than profile"),
])
def test_bad_submissions_fail_with_one_line_and_create_nothing(site: dict[str, Any], stdin: str, needle: str) -> None:
    out = shim(site, f"{GEM}/submit.py", "ood_k8s", stdin=stdin)
    assert out.returncode != 0 and out.stdout == "" and needle in out.stderr and out.stderr.count("\n") == 1
    assert site["fk"].list("pods", NS) == []


def test_api_down_is_one_line(site: dict[str, Any], tmp_path: Path) -> None:
    cfg = tmp_path / "down.yml"
    kc = yaml.safe_load(Path(yaml.safe_load(Path(site["env"]["OOD_K8S_CONFIG"]).read_text())["cluster"]["kubeconfig"])
                        .read_text())
    kc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    (tmp_path / "down.kubeconfig").write_text(yaml.safe_dump(kc))
    cfg.write_text(yaml.safe_dump({"cluster": {"server": "", "kubeconfig": str(tmp_path / "down.kubeconfig"),
                                               "retries": 0}}))
    out = shim(site, f"{GEM}/get_info.py", "--id=", "--executor=ood_k8s", f"--config={cfg}")
    assert out.returncode == 1 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "cannot reach the Kubernetes API" in out.stderr and "Traceback" not in out.stderr


def test_poll_path_imports_stay_light(site: dict[str, Any]) -> None:
    heavy = ("psij", "jinja2", "boto3", "botocore", "requests", "kubernetes", "jsonschema", "ood_k8s.sessions.resolve",
             "ood_k8s.sessions.objects", "dataclasses", "inspect", "calendar", "urllib.parse")
    probe = ("import sys; from ood_k8s.ood.psij_shim import main; rc = main(); "
             f"bad = [m for m in {heavy!r} if m in sys.modules]; "
             "sys.stderr.write('HEAVY:' + ','.join(bad)); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", probe, f"{GEM}/get_info.py", "--id=", "--executor=ood_k8s",
                          "--user=alice"], capture_output=True, text=True, env=site["env"], cwd=site["tmp"])
    assert out.returncode == 0 and out.stderr.endswith("HEAVY:"), out.stderr


def test_wire_helpers() -> None:
    assert parse_duration(3600) == 3600 and parse_duration("3600.0 s") == 3600 and parse_duration("01:30:00") == 5400
    assert parse_duration(None) is None
    assert strip_native_tokens("body\n--profile\ngpu-t4\n--hold", {"profile": "gpu-t4", "hold": ""}) == "body\n"
    assert strip_native_tokens("body\n", {"profile": "gpu-t4"}) == "body\n"
    from ood_k8s.sessions.adapter import Info

    wire = wire_info(Info(id="j-1", status="queued_held", native={"reason": "held"}))
    assert (wire["current_state"], wire["reason"], wire["wall_time"], wire["resourcelist"]) == ("HELD", "held", 0, [])


@pytest.mark.parametrize("argv", [[], ["/gem/psij/frobnicate.py"], [f"{GEM}/get_info.py", "--bogus=1"]])
def test_usage_errors(site: dict[str, Any], argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", "from ood_k8s.ood.psij_shim import cli; cli()",
                          *argv], capture_output=True, text=True, env=site["env"], cwd=site["tmp"])
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1


def test_entry_point_is_declared() -> None:
    # The console script's launcher answers from the agent with builtin modules only, then runs
    # ood_k8s.ood.psij_shim:cli (issue 15: the poll's 20 ms target).
    assert "ood-k8s-psij = ood_k8s.agent.fastpoll:cli" in (ROOT / "setup.cfg").read_text()
    assert os.path.exists(ROOT / "psij-descriptors" / "ood_k8s.py")


def test_root_without_user_is_refused(site: dict[str, Any]) -> None:
    out = subprocess.run([sys.executable, "-c", "from ood_k8s.ood.psij_shim import cli; cli()",
                          f"{GEM}/get_info.py", "--id=", "--executor=ood_k8s"], capture_output=True, text=True,
                         env=site["env"], cwd=site["tmp"])
    assert out.returncode == 77 and out.stdout == "" and "system account" in out.stderr

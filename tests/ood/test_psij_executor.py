"""The PSI/J executor with the real psij-python, in a subprocess (psij installs a SIGCHLD handler).

psij discovers ``psij-descriptors/ood_k8s.py`` on sys.path exactly as it would in site-packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.fakekube.seeds import PRIORITY_CLASS

PROGRAM = textwrap.dedent("""
    import contextlib, io, json, sys
    from datetime import timedelta
    args = json.loads(sys.argv[1])
    import psij
    from psij import Job, JobExecutor, JobSpec, JobAttributes, ResourceSpecV1
    from psij.serialize import JSONSerializer
    from ood_k8s.sessions.adapter import Adapter
    from ood_k8s.config import Config
    from ood_k8s.core.kube import KubeClient
    from tests.conftest import ALICE
    out = {"names": sorted(n for n in JobExecutor.get_executor_names() if "k8s" in n)}

    # OOD's stock submit.py: JSONSerializer()._to_spec() of what psij.rb sends (integer duration).
    spec_json = {"name": "sys/dashboard/sys/jupyter", "executable": "/bin/date", "directory": "/home/alice",
                 "attributes": {"duration": 7200, "queue_name": "gpu-t4",
                                "custom_attributes": {"ood_k8s.port": "8888"}},
                 "resources": {"__version": 1, "cpu_cores_per_process": 2}}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        spec = JSONSerializer()._to_spec(spec_json)
        again = JSONSerializer()._to_spec(json.loads(JSONSerializer().dumps(spec)))
    out["printed"] = printed.getvalue()
    out["duration"] = spec.attributes.duration.total_seconds()
    out["round_trip"] = again.attributes.duration.total_seconds()

    ex = JobExecutor.get_instance("ood_k8s")
    client = KubeClient(args["url"], token=args["token"], ca_file=args["ca"], sleep=lambda s: None)
    ex._adapter = Adapter(Config(), ALICE, client)
    job = Job(spec)
    ex.submit(job)
    out["native_id"] = job.native_id
    out["state_after_submit"] = job.status.state.name
    (seen,) = ex.info([job])
    ci = seen.current_info
    out["info"] = {"state": seen.status.state.name, "reason": ci.reason, "owner": ci.owner,
                   "dispatch": ci.dispatch_time.strftime("%Y-%m-%d %H:%M:%S") == ci.submission_time.strftime(
                       "%Y-%m-%d %H:%M:%S"), "wall_time": ci.wall_time}
    held = Job(JobSpec(executable="/bin/sleep", arguments=["60"], name="held",
                       attributes=JobAttributes(custom_attributes={"hold": ""})))
    ex.submit(held)
    out["held_state"] = ex.info([held])[0].status.state.name
    ex.release(held)
    out["released_state"] = ex.info([held])[0].status.state.name
    out["list"] = sorted(ex.list())
    attached = Job()
    ex.attach(attached, job.native_id)
    out["attached"] = attached.status.state.name
    ex.cancel(job)
    out["cancelled"] = job.status.state.name
    gone = Job()
    gone._native_id = "jupyter-zzzzzzzz"
    out["gone"] = ex.info([gone])
    try:
        ex.submit(Job(JobSpec(executable="/bin/true", resources=ResourceSpecV1(node_count=2))))
    except psij.InvalidJobException as exc:
        out["multi_node"] = str(exc)
    try:
        ex.submit(Job(JobSpec(executable="/bin/true", attributes=JobAttributes(
            custom_attributes={"profile": "nope"}))))
    except psij.InvalidJobException as exc:
        out["bad_profile"] = str(exc)
    sys.stdout.write("RESULT" + json.dumps(out))
""")


@pytest.fixture
def result(fake_kube, nss_env) -> dict[str, Any]:
    from ood_k8s.core.kube import KubeClient

    KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file).create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
    fake_kube.seed(PRIORITY_CLASS)  # what 'cluster render' makes: sessions run at ood-interactive (issue 11)
    args = json.dumps({"url": fake_kube.url, "token": fake_kube.token, "ca": fake_kube.ca_file})
    out = subprocess.run([sys.executable, "-c", PROGRAM, args], capture_output=True, text=True, env=nss_env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.split("RESULT", 1)[1])


def test_executor_is_registered_under_both_names(result: dict[str, Any]) -> None:
    assert result["names"] == ["ood-k8s", "ood_k8s"]


def test_psij_serialize_defects_are_worked_around(result: dict[str, Any]) -> None:
    assert result["printed"] == ""  # no spec keys on stdout (OOD would record them as the job id)
    assert result["duration"] == 7200 and result["round_trip"] == 7200


def test_submit_info_hold_release_cancel(result: dict[str, Any], fake_kube) -> None:
    job = result["native_id"]
    assert job.startswith("jupyter-") and result["state_after_submit"] == "QUEUED"
    assert result["info"] == {"state": "QUEUED", "reason": "waiting for the scheduler", "owner": "alice",
                              "dispatch": True, "wall_time": 0}
    assert result["held_state"] == "HELD" and result["released_state"] == "QUEUED"
    assert job in result["list"] and len(result["list"]) == 2
    assert result["attached"] == "QUEUED" and result["cancelled"] == "CANCELED"
    assert result["gone"] == []
    assert "one process on one node" in result["multi_node"]
    assert "unknown profile 'nope'" in result["bad_profile"]


def test_descriptor_has_no_package_marker() -> None:
    assert not (ROOT / "psij-descriptors" / "__init__.py").exists()  # psij needs a namespace directory

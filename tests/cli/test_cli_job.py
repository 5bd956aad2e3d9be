"""``ood-k8s job ...`` in-process against the fake API (an admin, root, acting for alice)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ood_k8s import cli
from ood_k8s.core import identity
from ood_k8s.core.kube import KubeClient
from tests.conftest import ALICE
from tests.fakekube.seeds import PRIORITY_CLASS

NS = "ood-alice"


@pytest.fixture
def run(fake_kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    kubeconfig = fake_kube.write_kubeconfig(str(tmp_path / "provisioner.kubeconfig"))
    cfg = tmp_path / "ood_k8s.yml"
    cfg.write_text(yaml.safe_dump({"cluster": {"server": "", "kubeconfig": kubeconfig,
                                               "provisioner_kubeconfig": kubeconfig}}))
    monkeypatch.setattr(identity, "lookup", lambda name: ALICE if name == "alice" else identity.Identity(
        name, 0, 0, "/"))
    KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file).create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fake_kube.seed(PRIORITY_CLASS)  # what 'cluster render' makes: sessions run at ood-interactive (issue 11)

    def invoke(*args: str, user: bool = True) -> tuple[int, str, str]:
        argv = ["--config", str(cfg), "job", *args] + (["--user", "alice"] if user else [])
        code = cli.main(argv)
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_submit_list_info_hold_release_delete(run, fake_kube, tmp_path: Path) -> None:
    script = tmp_path / "train.sh"
    script.write_text("python train.py\n")
    code, out, err = run("submit", str(script), "--profile", "gpu-t4", "--walltime", "02:00:00", "--hold")
    assert code == 0 and err == ""
    job = out.strip()
    assert job.startswith("train-sh-")
    pod = fake_kube.get("pods", job, NS)
    assert pod["spec"]["activeDeadlineSeconds"] == 7200 and pod["spec"]["schedulingGates"]  # no agent: the wall time
    assert pod["metadata"]["annotations"]["ood-k8s.io/walltime"] == "7200"  # issue 15: the wall time under it

    code, out, _ = run("list")
    header, row = out.splitlines()
    assert header.split()[:5] == ["ID", "STATUS", "PROFILE", "NODE", "REASON"]
    assert row.split()[:4] == [job, "queued_held", "gpu-t4", "-"] and "held: release the job" in row

    code, out, _ = run("info", job, "--output", "json")
    data = json.loads(out)
    assert (data["id"], data["status"], data["queue_name"], data["job_owner"]) == (job, "queued_held", "gpu-t4",
                                                                                   "alice")
    assert run("release", job)[:2] == (0, f"release: {job}\n")
    assert json.loads(run("list", "-o", "json")[1])[0]["status"] == "queued"
    assert run("delete", job, "-o", "json")[:2] == (0, json.dumps({"id": job, "action": "delete"}, indent=2) + "\n")
    assert fake_kube.get("pods", job, NS) is None


def test_submit_with_command_and_json_output(run, fake_kube) -> None:
    _, out, _ = run("submit", "--command", "jupyter lab --port 8888", "--port", "8888", "--cpu", "2",
                       "--memory", "8Gi", "--name", "lab", "-o", "json")
    job = json.loads(out)["id"]
    ctr = fake_kube.get("pods", job, NS)["spec"]["containers"][0]
    assert ctr["command"] == ["jupyter", "lab", "--port", "8888"]
    assert ctr["resources"]["limits"] == {"cpu": "2", "memory": "8Gi"}


@pytest.mark.parametrize(("args", "code", "needle"), [
    (("submit", "--command", "x", "--profile", "nope"), 2, "unknown profile 'nope'"),
    (("submit",), 2, "nothing to run"),
    (("submit", "--command", "x", "--memory", "8GB"), 2, "use Kubernetes units"),
    (("info", "Not/An/Id"), 2, "Invalid job id specified"),
    (("delete", "jupyter-zzzzzzzz"), 1, "Invalid job id specified"),
])
def test_errors_are_one_line(run, fake_kube, args: tuple[str, ...], code: int, needle: str) -> None:
    got, out, err = run(*args)
    assert (got, out) == (code, "") and needle in err and err.count("\n") == 1 and err.startswith("ood-k8s: ")
    assert fake_kube.list("pods", NS) == []


def test_root_needs_user(run) -> None:
    code, _, err = run("list", user=False)
    assert code == 2 and "pass --user NAME" in err

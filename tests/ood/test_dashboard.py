"""What a real Open OnDemand dashboard does with an ood-k8s session beyond the wire format (issue 12).

tests/ood_harness.rb models the dashboard's side from its source (OSC/ondemand's
BatchConnect::Session and the session card views, OSC/ood_core's psij.rb): launches that race on
``~/ood_tmp/run.sh``, the card's status, its info and completed views and the SSH button, the
completed-state cache, how psij.rb wraps a failed delete, and subprocesses run with no timeout. The
tests then check what a student and an admin read.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, silent
from tests.ood.test_app_erb import (
    APP,
    NODE,
    UID,
    Site,
    _gem,
    answers_for,
    as_the_user,
    get_info,
    psij,
    render_form,
    ruby,
    submit,
    submit_request,
)

NS = "ood-alice"
SESSION = "4a0e2f6c-0d1e-4c55-9f1e-5b1f0e7e9c01"
NOTE = "ood-k8s-end.txt"


def dashboard_env(site: Site) -> dict[str, str]:
    """The dashboard's environment: the user's, with the form's options file for the app's form."""
    return {**site.env, "OOD_K8S_FORM_OPTIONS": str(site.etc / "ood_k8s" / "form_options.json")}


def escaped(text: str) -> str:
    """As the views escape it (ERB::Util.html_escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") \
        .replace("'", "&#39;")


def card(site: Site, job_id: str, staged: Path, *, cache: bool = False, cluster_file: Path | None = None
         ) -> dict[str, Any]:
    """One refresh of the session's card, as the dashboard does it (it runs ood-k8s-psij itself)."""
    return ruby({"op": "card", "app": str(APP), "cluster_file": str(cluster_file or site.cluster_file),
                 "extra_args": ["--user", "alice"],
                 "session": {"id": SESSION, "job_id": job_id, "staged_root": str(staged), "cache_completed": cache}},
                env=dashboard_env(site), cwd=site.dash)


def launch(site: Site, profile: str = "cpu") -> tuple[str, Path]:
    job_id, req = submit(site, answers_for(render_form(site)["form"], profile))
    return job_id, Path(req["psij_chdir"])


def main_container(site: Site, job_id: str) -> dict[str, Any]:
    return site.fk.get("pods", job_id, NS)["spec"]["containers"][0]


def terminated(site: Site, job_id: str, **term: Any) -> None:
    """The app's container ended (``term``: its exitCode, reason...); the pod Failed."""
    ctr = main_container(site, job_id)
    state = {"terminated": {"startedAt": "2025-01-01T00:00:00Z", "finishedAt": "2025-01-01T00:05:00Z", **term}}
    site.fk.set_pod_status(NS, job_id, node_name=NODE, phase="Failed",
                           containerStatuses=[{"name": ctr["name"], "ready": False, "restartCount": 0,
                                               "image": ctr["image"], "imageID": "", "state": state}])


def remove(site: Site, job_id: str) -> None:
    """The session's pod deleted through ood-k8s-psij and gone from the API."""
    assert psij(site, [f"{_gem()}/delete.py", f"--id={job_id}", "--executor=ood_k8s"]).returncode == 0
    if site.fk.get("pods", job_id, NS) is not None:
        site.fk.finish_deletion("pods", NS, job_id)
    assert site.fk.get("pods", job_id, NS) is None


def ready(site: Site, job_id: str) -> None:
    """The app answers: the pod runs on NODE at 10.0.7.9, every container ready."""
    ctr = main_container(site, job_id)
    running = {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
    site.fk.set_pod_status(NS, job_id, node_name=NODE, phase="Running", podIP="10.0.7.9",
                           conditions=[{"type": "Ready", "status": "True"}],
                           containerStatuses=[{"name": ctr["name"], "ready": True, "restartCount": 0, "image": "x",
                                               "imageID": "", "state": running}])


# --- 1. two launches at once ---------------------------------------------------------------------------


def test_two_launches_at_once_each_run_their_own_script(site: Site) -> None:
    form = render_form(site)["form"]
    out = site.home / "ondemand/data/sys/dashboard/batch_connect/sys/jupyter/output"
    sessions = [{"answers": answers_for(form, profile), "session_id": sid, "staged_root": str(out / sid)}
                for profile, sid in (("cpu", "s-first"), ("gpu-t4", "s-second"))]
    reqs = ruby({"op": "launch_together", "app": str(APP), "cluster_file": str(site.cluster_file),
                 "cluster_id": "kubernetes", "sessions": sessions}, env=dict(os.environ, HOME=str(site.home)),
                cwd=site.dash)
    assert Path(reqs[0]["run_sh"]).read_text().endswith(reqs[1]["content"])  # run.sh: the last launch's script
    ids = []
    for req in reqs:  # only now does each launch's adapter subprocess run
        as_the_user(req)
        done = psij(site, req["psij_argv"], req["psij_stdin"], cwd=Path(req["psij_chdir"]))
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout)
    scripts = [site.fk.get("configmaps", f"{i}-files", NS)["data"]["script.sh"] for i in ids]
    assert scripts[0] == reqs[0]["content"]  # its own script, from the session's job_script_content.sh
    assert scripts[1] == Path(reqs[1]["run_sh"]).read_text()  # run.sh holds its script: taken as written
    assert f"cd {reqs[0]['psij_chdir']}\n" in scripts[0] and f"cd {reqs[1]['psij_chdir']}\n" in scripts[1]
    limits = [main_container(site, i)["resources"]["limits"] for i in ids]
    assert "nvidia.com/gpu" not in limits[0] and limits[1]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize(("spoil", "message"), [
    ("missing", "the session's job script {where} is missing: launch the session again from the dashboard; this "
                "launch cannot be told from another one"),
    ("foreign", "the session's job script {where} is not a file only you can change: launch the session again from "
                "the dashboard"),
    ("link", "cannot read the session's job script {where}: Too many levels of symbolic links: launch the session "
             "again from the dashboard"),
])
def test_a_launch_whose_script_cannot_be_trusted_is_refused(site: Site, spoil: str, message: str) -> None:
    req = submit_request(site, answers_for(render_form(site)["form"], "cpu"))
    as_the_user(req)
    content = Path(req["content_file"])
    if spoil == "missing":
        content.unlink()
    elif spoil == "foreign":
        os.chown(content, 0, 0)
    else:
        content.unlink()
        content.symlink_to(req["run_sh"])
    done = psij(site, req["psij_argv"], req["psij_stdin"], cwd=Path(req["psij_chdir"]))
    assert (done.returncode, done.stdout) == (77, "")
    assert done.stderr == "ood-k8s-psij: " + message.format(where=content) + "\n"
    assert site.fk.list("pods", NS) == []


# --- 4, 5. the card: the reason while it waits, the cause after the end, no SSH button ----------------


def test_the_card_shows_why_it_waits_then_why_it_ended(site: Site) -> None:
    job_id, staged = launch(site)
    first = card(site, job_id, staged)
    assert (first["status"], first["completed_view"], first["host"], first["cache_completed"]) == \
        ("Queued", None, None, False)
    assert "<strong>Status:</strong> Waiting for the scheduler\n" in first["info_view"]

    site.fk.set_pod_status(NS, job_id, phase="Pending", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient cpu. <script>"}])
    waiting = card(site, job_id, staged)
    assert "<strong>Status:</strong> Waiting for the scheduler: 0/3 nodes are available: 3 Insufficient cpu. " \
           "&lt;script&gt;\n" in waiting["info_view"]

    ready(site, job_id)
    starting = card(site, job_id, staged)
    assert (starting["status"], starting["host"]) == ("Starting", None)
    assert "Status:" not in starting["info_view"]  # the pod is ready: nothing to explain
    (staged / "connection.yml").write_text(yaml.safe_dump({"host": "10.0.7.9", "port": 8888, "password": "pw"}))
    running = card(site, job_id, staged)
    assert (running["status"], running["host"]) == ("Running", {"host": "10.0.7.9", "ssh_button": False})
    assert "Status:" not in running["info_view"]
    # The agent's leader warned it will end the session (issue 15): a running card shows the warning.
    pod = site.fk.get("pods", job_id, NS)
    warning = "ends at 16:30 (in 10 min): save your work, or extend it"
    pod["metadata"].setdefault("annotations", {}).update({"ood-k8s.io/warning": warning,
                                                         "ood-k8s.io/warning-reason": "DeadlineSoon"})
    site.fk.store.put("pods", pod, "MODIFIED")
    warned = card(site, job_id, staged)
    assert warned["status"] == "Running"
    assert "<strong>Status:</strong> Ends at 16:30 (in 10 min): save your work, or extend it\n" in warned["info_view"]
    # OOD's default without ood-k8s's cluster setting: a shell button to the pod's IP.
    plain = yaml.safe_load(site.cluster_file.read_text())
    del plain["v2"]["batch_connect"]["ssh_allow"]
    other = site.root / "plain-cluster.yml"
    other.write_text(yaml.safe_dump(plain))
    assert card(site, job_id, staged, cluster_file=other)["host"] == {"host": "10.0.7.9", "ssh_button": True}

    terminated(site, job_id, exitCode=137, reason="OOMKilled")
    ended = card(site, job_id, staged)
    cause = "The app ran out of memory (limit 4Gi): start a new session with more memory."
    assert (ended["status"], ended["cache_completed"]) == ("Completed", True)
    assert f"<p><strong>Why it ended:</strong> {escaped(cause)}</p>" in ended["completed_view"]
    assert "Its log is <code>output.log</code> in the session's folder" in ended["completed_view"]
    note = staged / NOTE
    assert note.read_text() == cause[0].lower() + cause[1:-1] + "\n" and note.stat().st_uid == UID

    # The dashboard asks no more; the pod may be gone: the cause stays on the card.
    remove(site, job_id)
    cached = card(site, job_id, staged, cache=True)
    assert (cached["polled"], cached["status"]) == (False, "Completed")
    assert cached["completed_view"] == ended["completed_view"] and "Status:" not in cached["info_view"]


def _walltime(site: Site, job_id: str) -> str:
    # Without the agent's lifecycle the kubelet's deadline is the granted wall time.
    site.fk.set_pod_status(NS, job_id, phase="Failed", reason="DeadlineExceeded", message="deadline")
    return "The session reached its wall time of 2h: start a new one to continue."


def _deadline(site: Site, job_id: str) -> str:
    """The agent's leader ended it at its deadline (agent/actions.py: the reason on the pod, then the kubelet)."""
    pod = site.fk.get("pods", job_id, NS)
    pod["metadata"].setdefault("annotations", {}).update({"ood-k8s.io/end-reason": "DeadlineReached",
                                                         "ood-k8s.io/end-message": "ended at its deadline (2h)"})
    site.fk.store.put("pods", pod, "MODIFIED")
    site.fk.set_pod_status(NS, job_id, phase="Failed", reason="DeadlineExceeded", message="deadline")
    return "Ended at its deadline (2h)."


def _image(site: Site, job_id: str) -> str:
    ctr = main_container(site, job_id)
    site.fk.set_pod_status(NS, job_id, node_name=NODE, phase="Pending", containerStatuses=[{
        "name": ctr["name"], "ready": False, "restartCount": 0, "image": ctr["image"], "imageID": "",
        "state": {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}}])
    return f"Image {ctr['image']} does not exist or is not accessible (manifest unknown): check the image name " \
           "or ask your administrator."


def _crash(site: Site, job_id: str) -> str:
    terminated(site, job_id, exitCode=3)
    return "The app crashed (exit code 3); see the session's output log."


def _reclaimed(site: Site, job_id: str) -> str:
    site.fk.set_pod_status(NS, job_id, node_name=NODE, phase="Running", conditions=[
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}])
    assert psij(site, [f"{_gem()}/delete.py", f"--id={job_id}", "--executor=ood_k8s"]).returncode == 0
    return "The cluster reclaimed the session's node (its node was drained): start a new session."


@pytest.mark.parametrize("end", [_walltime, _deadline, _image, _crash, _reclaimed],
                         ids=["walltime", "deadline", "image", "crash", "reclaimed"])
def test_the_completed_view_says_why_the_session_ended(site: Site, end: Any) -> None:
    job_id, staged = launch(site)
    cause = end(site, job_id)
    ended = card(site, job_id, staged)
    assert ended["status"] == "Completed"
    assert f"<p><strong>Why it ended:</strong> {escaped(cause)}</p>" in ended["completed_view"]


def test_a_session_gone_before_any_poll_saw_it_end_says_so_plainly(site: Site) -> None:
    ended = card(site, "jupyter-zzzzzzzz", site.home)
    assert ended["status"] == "Completed" and "Why it ended" not in ended["completed_view"]
    assert "<p>The session has ended.</p>" in ended["completed_view"]
    assert not (site.home / NOTE).exists()


# --- 2. a hung API: every wait has a deadline --------------------------------------------------------


@pytest.fixture
def hung_api() -> Iterator[str]:
    """An API server address that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    with silent(listener):
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"


def destroy(site: Site, job_id: str) -> dict[str, Any]:
    """The card's delete button: BatchConnect::Session#destroy through psij.rb."""
    return ruby({"op": "delete", "app": str(APP), "cluster_file": str(site.cluster_file),
                 "extra_args": ["--user", "alice"],
                 "session": {"id": SESSION, "job_id": job_id, "staged_root": str(site.home)}},
                env=dashboard_env(site), cwd=site.dash)


def point_at(site: Site, server: str, **settings: Any) -> None:
    """The site's config, with its kubeconfig's server replaced and ``settings`` ({"portal.x": v}) set."""
    cfg = yaml.safe_load(site.config.read_text())
    kc = yaml.safe_load(Path(cfg["cluster"]["kubeconfig"]).read_text())
    kc["clusters"][0]["cluster"]["server"] = server
    moved = site.root / "moved.kubeconfig"
    moved.write_text(yaml.safe_dump(kc))
    cfg["cluster"]["kubeconfig"] = str(moved)
    for key, value in settings.items():
        section, name = key.split(".")
        cfg.setdefault(section, {})[name] = value
    site.config.write_text(yaml.safe_dump(cfg))


SLOW = {"cluster.request_timeout": 30, "cluster.retries": 4}  # without a deadline: minutes


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    out = fn(*args, **kwargs)
    return out, time.monotonic() - started


def overhead(site: Site, job_id: str) -> float:
    """Seconds a poll takes against the working API: starting the process, mostly."""
    done, seconds = timed(psij, site, [f"{_gem()}/get_info.py", f"--id={job_id}", "--executor=ood_k8s"])
    assert done.returncode == 0, done.stderr
    return seconds


def test_a_poll_against_a_hung_api_answers_within_its_deadline(site: Site, hung_api: str) -> None:
    job_id, staged = launch(site)
    limit = overhead(site, job_id) + 0.5 + 0.7  # + the deadline + slack; without a deadline: minutes
    point_at(site, hung_api, **SLOW, **{"portal.poll_deadline": 0.5})
    reason = "the cluster did not answer within 0.5 s; the card tries again at its next refresh"
    done, seconds = timed(psij, site, [f"{_gem()}/get_info.py", f"--id={job_id}", "--executor=ood_k8s"])
    assert seconds < limit, (seconds, limit)
    assert (done.returncode, done.stderr) == (0, "")
    [answer] = json.loads(done.stdout)
    assert (answer["native_id"], answer["current_state"], answer["reason"]) == (job_id, "UNDETERMINED", reason)

    listed, seconds = timed(psij, site, [f"{_gem()}/get_info.py", "--id=", "--executor=ood_k8s"])
    assert seconds < limit and (listed.returncode, listed.stdout) == (1, "")
    assert listed.stderr == ("ood-k8s-psij: the cluster did not answer within 0.5 s: the cluster may be overloaded "
                             "or unreachable; try again in a minute\n")

    # The dashboard, which waits for its subprocess as long as it takes: the card says why.
    shown = card(site, job_id, staged)
    assert shown["poll_seconds"] < limit and shown["status"] == "Undetermined"
    assert f"<strong>Status:</strong> {reason[0].upper()}{reason[1:]}\n" in shown["info_view"]


def test_submit_and_delete_against_a_hung_api_give_up_with_one_line(site: Site, hung_api: str) -> None:
    job_id, _ = launch(site)
    limit = overhead(site, job_id) + 0.5 + 0.7
    req = submit_request(site, answers_for(render_form(site)["form"], "cpu"), session_id="second")
    as_the_user(req)
    point_at(site, hung_api, **SLOW, **{"portal.submit_deadline": 0.5, "portal.delete_deadline": 0.5,
                                        "portal.poll_deadline": 0.5})
    done, seconds = timed(psij, site, req["psij_argv"], req["psij_stdin"], cwd=Path(req["psij_chdir"]))
    # The pod's create timed out, so it may exist: the roll-back gets a grace period (0.5 s here), then the
    # process ends.
    assert seconds < limit + 0.5 and (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("ood-k8s-psij: the cluster did not answer within 0.5 s: a session may have been created; "
                           "look for it on the My Interactive Sessions page before launching again\n")
    stuck = "ood-k8s-psij: the cluster did not answer within 0.5 s: the cluster may be overloaded or unreachable; " \
            "try again in a minute\n"
    gone, seconds = timed(psij, site, [f"{_gem()}/delete.py", f"--id={job_id}", "--executor=ood_k8s"])
    assert seconds < limit and (gone.returncode, gone.stdout, gone.stderr) == (1, "", stuck)
    # The card's delete button: the poll says undetermined, the delete fails, psij.rb wraps it for the card.
    assert destroy(site, job_id) == {"deleted": False, "error": stuck}


def test_the_watchdog_ends_a_process_stuck_where_no_signal_reaches() -> None:
    code = ("import signal, time\nfrom ood_k8s.ood.deadline import Deadline, LastWords\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # as if stuck in a C call\n"
            "Deadline(0.2, 'the cluster', lambda said: LastWords('[]\\n', said + '\\n', 3), grace=0.2).start()\n"
            "time.sleep(30)\n")
    done, seconds = timed(subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                          cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (done.returncode, done.stdout, done.stderr) == (3, "[]\n", "the cluster did not answer within 0.2 s\n")
    assert seconds < 3.0


# --- 6, 7. delete of a gone session; a refused connection at submit ------------------------------------


def test_deleting_a_session_that_is_gone_succeeds_in_the_dashboard(site: Site) -> None:
    job_id, _ = launch(site)
    assert destroy(site, job_id) == {"deleted": True}
    remove(site, job_id)
    # Gone: the dashboard still deletes unless its card showed completed, and psij.rb raises every failure.
    done = psij(site, [f"{_gem()}/delete.py", f"--id={job_id}", "--executor=ood_k8s"])
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    # A malformed id: the card's poll already reads psij.rb's "Invalid job id" as completed, so no delete.
    assert destroy(site, "../../etc") == {"deleted": True}


def test_a_refused_connection_at_submit_does_not_talk_of_leftovers(site: Site) -> None:
    req = submit_request(site, answers_for(render_form(site)["form"], "cpu"))
    as_the_user(req)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    point_at(site, f"https://127.0.0.1:{closed}", **{"cluster.retries": 0})
    done = psij(site, req["psij_argv"], req["psij_stdin"], cwd=Path(req["psij_chdir"]))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"ood-k8s-psij: cannot reach the Kubernetes API at https://127.0.0.1:{closed}: connection "
                           "refused: the cluster may be down or unreachable; try again in a minute\n")


# --- 3, 8. output and secrets ------------------------------------------------------------------------------


def test_stderr_goes_to_the_output_log_and_the_poll_shows_no_password(site: Site) -> None:
    job_id, staged = launch(site)
    env = {e["name"]: e.get("value") for e in main_container(site, job_id)["env"]}
    # psij.rb sent <dashboard's cwd>/stderr.txt, which no pod can see: stderr joins the output log.
    assert (env["OOD_STDOUT_PATH"], env["OOD_STDERR_PATH"]) == (f"{staged}/output.log", f"{staged}/output.log")
    ready(site, job_id)
    password = base64.b64decode(site.fk.get("secrets", f"{job_id}-secret", NS)["data"]["password"]).decode()
    [info] = get_info(site, job_id)
    assert info["current_state"] == "ACTIVE" and info["ood_connection_info"] == {"host": "10.0.7.9", "port": 8888}
    assert password not in json.dumps(info)


# --- 9. apps written for OOD's Kubernetes adapter ----------------------------------------------------------

INCUMBENT_SUBMIT = """\
---
batch_connect:
  template: "basic"
  set_host: "host=$(hostname -A | awk '{print $1}')"
script:
  wall_time: <%= bc_num_hours.to_i * 3600 %>
  native:
    container:
      name: "notebook"
      image: "quay.io/jupyter/base-notebook:2025-10-20"
      command: ["/bin/bash", "-l", "<%= staged_root %>/job_script_content.sh"]
      restart_policy: "OnFailure"
      port: "8080"
      cpu: "<%= cpu %>"
      memory: "<%= memory %>Gi"
      env:
        NB_COURSE: "cs101"
      labels:
        course: "cs101"
    mounts:
      - type: host
        name: home
        host_type: Directory
        path: <%= ENV['HOME'] %>
        destination_path: <%= ENV['HOME'] %>
    node_selector:
      karpenter.sh/nodepool: "cpu"
"""


def incumbent_app(root: Path, submit_yml: str = INCUMBENT_SUBMIT) -> Path:
    app = root / "k8s_notebook"
    (app / "template").mkdir(parents=True)
    (app / "form.yml.erb").write_text("---\ncluster: \"kubernetes\"\nform: [bc_num_hours, cpu, memory]\n")
    (app / "submit.yml.erb").write_text(submit_yml)
    (app / "template" / "script.sh.erb").write_text("#!/bin/bash\necho notebook on <%= context.cpu %> CPUs\n")
    return app


def convert_app(site: Site, app: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ood_k8s", "ood", "convert-app", str(app), *extra],
                          capture_output=True, text=True, env=site.env, cwd=str(ROOT), timeout=60)


def incumbent_request(site: Site, app: Path) -> dict[str, Any]:
    staged = site.home / "ondemand/data/sys/dashboard/batch_connect/sys/k8s_notebook/output" / SESSION
    return ruby({"op": "submit", "app": str(app), "staged_root": str(staged), "cluster_file": str(site.cluster_file),
                 "session_id": SESSION, "cluster_id": "kubernetes",
                 "answers": {"bc_num_hours": "1", "cpu": "2", "memory": "4"}},
                env=dict(os.environ, HOME=str(site.home)), cwd=site.dash)


def test_convert_app_makes_an_incumbent_app_launch_through_ood_k8s_psij(site: Site) -> None:
    app = incumbent_app(site.root)
    crashed = incumbent_request(site, app)  # OOD's psij.rb calls native.join on the mapping
    assert crashed["error"].startswith("NoMethodError: undefined method `join'") or \
        crashed["error"].startswith("NoMethodError: undefined method 'join'"), crashed
    done = convert_app(site, app)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"converted {app}/submit.yml.erb (the original is submit.yml.erb.orig)\n"
        "  native: now sent as the tokens [\"--native\", <the same mapping as JSON>]; edit the mapping as before\n"
        "  removed mounts[0] 'home': ood-k8s mounts each user's home at the same path in every session\n"
        "  removed batch_connect.set_host: the cluster file's set_host gives the address OOD's proxy can reach\n")
    assert (app / "submit.yml.erb.orig").read_text() == INCUMBENT_SUBMIT
    again = convert_app(site, app)
    assert (again.returncode, again.stdout) == (0, f"{app}/submit.yml.erb: already converted\n")

    req = incumbent_request(site, app)
    assert "error" not in req, req
    assert req["submit"]["script"]["native"][0] == "--native"
    as_the_user(req)
    out = psij(site, req["psij_argv"], req["psij_stdin"], cwd=Path(req["psij_chdir"]))
    assert out.returncode == 0 and out.stdout.startswith("notebook-"), out.stderr
    pod = site.fk.get("pods", out.stdout, NS)
    ctr = pod["spec"]["containers"][0]
    assert (ctr["image"], ctr["command"]) == ("quay.io/jupyter/base-notebook:2025-10-20",
                                              ["/bin/bash", "-l", f"{req['psij_chdir']}/job_script_content.sh"])
    assert ctr["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"} and ctr["ports"][0]["containerPort"] == 8080
    assert {"name": "NB_COURSE", "value": "cs101"} in ctr["env"] and pod["metadata"]["labels"]["course"] == "cs101"
    assert pod["spec"]["nodeSelector"]["karpenter.sh/nodepool"] == "cpu"
    assert [m["mountPath"] for m in ctr["volumeMounts"] if m["mountPath"] == str(site.home)] == [str(site.home)]
    assert not any("hostPath" in v for v in pod["spec"]["volumes"])
    assert pod["spec"]["restartPolicy"] == "OnFailure"


def test_convert_app_lists_what_it_cannot_convert(site: Site) -> None:
    nfs = INCUMBENT_SUBMIT.replace("    node_selector:", "      - type: nfs\n        name: datasets\n"
                                   "        host: nfs.example.edu\n        path: /export/datasets\n"
                                   "        destination_path: /datasets\n    gpu_count: 1\n    node_selector:")
    app = incumbent_app(site.root, nfs.replace('cluster: "kubernetes"', ""))
    (app / "form.yml.erb").write_text("---\ncluster: \"old-k8s\"\nform: [bc_num_hours]\n")
    done = convert_app(site, app, "--dry-run")
    assert done.returncode == 1 and (app / "submit.yml.erb").read_text() == nfs
    assert done.stdout.splitlines()[0] == f"{app}/submit.yml.erb: would be converted (dry run: nothing written)"
    assert done.stdout.split("to do by hand:\n")[1] == (
        "  mounts[1] 'datasets' is an NFS volume, which sessions may not mount unless the site allows it: provide "
        "/datasets through storage.extra_mounts in ood_k8s.yml and remove it here\n"
        "  native.gpu_count is not a key ood-k8s knows: remove it (known: affinity, configmap, container, gpu_type, "
        "gpus, init_containers, mounts, node_selector, profile, tolerations)\n"
        "  form.yml.erb line 2: cluster is 'old-k8s': name the ood-k8s cluster, 'kubernetes' (portal.cluster_id)\n")


@pytest.mark.parametrize(("error_path", "kept"), [
    ("/home/alice/session/error.log", True),                       # in the home the pod mounts
    ("/var/www/ood/apps/sys/dashboard/stderr.txt", False),          # psij.rb's default: the dashboard's cwd
    ("/home/alicexyz/error.log", False),                            # a neighbour's prefix is not the home
])
def test_an_error_path_no_pod_can_write_joins_the_output(make_config: Any, error_path: str, kept: bool) -> None:
    from ood_k8s.sessions.request import Script
    from ood_k8s.sessions.resolve import resolve
    from tests.conftest import ALICE

    script = Script(content="true\n", output_path="/home/alice/session/output.log", error_path=error_path)
    spec = resolve(script, make_config(**{"storage.mode": "pvc"}), ALICE)
    assert (spec.stdout_path, spec.stderr_path) == ("/home/alice/session/output.log", error_path if kept else None)


def test_convert_app_leaves_token_apps_and_tangled_erb_alone(site: Site) -> None:
    from ood_k8s.ood import convert

    done = convert_app(site, APP, "--dry-run")  # ood-k8s's own app already gives tokens
    assert (done.returncode, done.stdout) == (0, f"{APP}/submit.yml.erb: nothing to convert (native: is already a "
                                                 "list of tokens, or absent)\n")
    tangled = "script:\n<%- if gpu -%>\n  native:\n    container:\n      image: a\n<%- else -%>\n  native:\n" \
              "    container:\n      image: b\n<%- end -%>\n"
    conv = convert.convert_submit(tangled)
    assert conv.text == tangled and not conv.converted
    assert conv.by_hand == ["submit.yml.erb lines 3 and 7: native: is given more than once (ERB branches?): make "
                            "it one block, with the ERB logic inside it, and run this again"]
    opened = "script:\n  native:\n    container:\n<%- if gpu -%>\n      image: a\n"
    assert convert.convert_submit(opened).by_hand == [
        "submit.yml.erb lines 3-5: ERB logic (<% %>) starts or ends outside native:, so it cannot be wrapped; move "
        "it inside native: and run this again"]

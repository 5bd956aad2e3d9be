"""The agent (issue 15, part 1): a status poll answered from its watch-fed cache, beside the direct
path and OOD's own Kubernetes adapter, in the same interleaved rounds.

* one OOD poll as a whole process: ``ood-k8s-psij get_info`` through the agent's socket, the same
  command straight to the API (agent disabled), and the incumbent's three plain ``kubectl get``
  (REFERENCE §12: the versioned binary, not the dispatcher); plus ``python -c pass`` and a bare
  Python socket exchange, the floors;
* the same poll while the API server hangs, and once it is gone (answered from the cache, its age
  reported);
* 200 pollers at once on the socket (p50 / p99 of one exchange), and the API requests they cause;
* the agent's RSS with 2,000 sessions cached.

The agent runs as its own process (``ood-k8s agent``, the installed copy, users through
nss_wrapper), against the fake API over loopback TLS; the polls run as root with ``--user alice``,
as bench_adapter's do.
"""

from __future__ import annotations

import copy
import glob
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml

from bench.bench_adapter import _nss_env
from bench.common import entry_point, installed_python, interleaved_medians

RUNS = 21
SESSIONS = 2000
POLLERS = 200
GEM = "/opt/ood/gems/ood_core/lib/ood_core/job/adapters/psij"

# The least a Python poll through a Unix socket can be: connect, one line out, the answer to stdout.
FLOOR = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
         "s.sendall(('psij ' + sys.argv[2] + ' alice\\n').encode())\ndata = b''\n"
         "while (chunk := s.recv(65536)):\n    data += chunk\nsys.stdout.write(data.decode())\n")


def plain_kubectl() -> str:
    """REFERENCE §12: the plain versioned binary beside the gcloud dispatcher, else whatever is on PATH."""
    found = sorted(glob.glob("/usr/lib/google-cloud-sdk/bin/kubectl.1.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    return found[-1] if found else (shutil.which("kubectl") or "kubectl")


def _seed_sessions(fk: Any, pod: dict[str, Any], secret: dict[str, Any], count: int) -> None:
    """``count`` sessions of 200 users, copies of a real submitted and ready one (pod + secret), a quarter
    of them pending with two events each, straight into the fake's store."""
    from ood_k8s.core import vocab

    for i in range(count):
        user = f"u{i % 200:04d}"
        ns, name = f"ood-{user}", f"jupyter-{i:08d}"
        pending = i % 4 == 0
        for obj, suffix in ((pod, ""), (secret, "-secret")):
            clone = copy.deepcopy(obj)
            meta = clone["metadata"]
            meta.update(name=name + suffix, namespace=ns)
            for key in ("uid", "resourceVersion", "creationTimestamp", "ownerReferences", "managedFields"):
                meta.pop(key, None)
            meta["labels"] = {**meta["labels"], vocab.USER_LABEL: user, vocab.JOB_LABEL: name}
            if pending and suffix == "":
                clone["spec"].pop("nodeName", None)
                clone["status"] = {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
            fk.seed(clone)
        if pending:
            for reason in ("FailedScheduling", "TriggeredScaleUp"):
                fk.add_event(ns, {"kind": "Pod", "name": name, "namespace": ns}, reason, "0/3 nodes are available")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pollers(path: str, job: str, threads: int, start_at: float, period: float, count: int) -> list[float]:
    """One poller process: ``threads`` pollers, each ``count`` exchanges ``period`` s apart from ``start_at``
    (period 0: all at once); ms per exchange."""
    from ood_k8s.agent import client

    samples: list[float] = []

    def poller(offset: float) -> None:
        for n in range(count):
            wait = start_at + offset + n * period - time.time()
            if wait > 0:
                time.sleep(wait)
            t = time.perf_counter()
            reply = client.ask(path, "psij", job, "alice", timeout=5.0)
            samples.append((time.perf_counter() - t) * 1000 if reply is not None else float("inf"))

    workers = [threading.Thread(target=poller, args=(period * i / threads if period else 0.0,))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return samples


def _load(path: str, job: str, pollers: int, period: float, count: int, procs: int = 8) -> list[float]:
    """``pollers`` pollers spread over ``procs`` processes (one process's threads would mostly measure its
    own GIL), started together; every exchange's ms."""
    import multiprocessing

    start_at = time.time() + 0.5
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.starmap(_pollers, [(path, job, pollers // procs, start_at, period, count)] * procs)
    return sorted(s for part in parts for s in part)


def _p99(samples: list[float]) -> float:
    return samples[max(0, int(len(samples) * 0.99) - 1)]


def _start_agent(config: str, env: dict[str, str], sock: str) -> subprocess.Popen[str]:
    agent = subprocess.Popen([*entry_point("ood-k8s"), "--config", config, "agent"], env=env, text=True,
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert agent.stderr is not None
    for _ in range(2):
        line = agent.stderr.readline()
        if not line:
            raise RuntimeError("ood-k8s agent ended before it synced")
    if "synced" not in line:
        raise RuntimeError(f"ood-k8s agent: {line}")
    if not os.path.exists(sock):
        raise RuntimeError("the agent's socket is missing")
    return agent


def run(report: Callable[..., None]) -> None:
    from ood_k8s.config import Config
    from ood_k8s.core.kube import KubeClient
    from ood_k8s.sessions.adapter import Adapter
    from tests.conftest import ALICE
    from tests.fakekube.fake import FakeKube

    fk = FakeKube().start()
    tmp = tempfile.mkdtemp(prefix="bench-agent-")
    agent: subprocess.Popen[str] | None = None
    try:
        client = KubeClient(fk.url, token=fk.token, ca_file=fk.ca_file, sleep=lambda s: None)
        client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                       "metadata": {"name": "ood-interactive"}, "value": 1000})
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
        job = Adapter(Config(), ALICE, client).submit({"content": "jupyter lab\n", "wall_time": 3600,
                                                       "job_name": "sys/dashboard/sys/jupyter",
                                                       "native": {"container": {"port": 8888}}})
        fk.set_pod_status("ood-alice", job, node_name="n1", phase="Running", podIP="10.0.7.9",
                          conditions=[{"type": "Ready", "status": "True"}],
                          containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x",
                                              "imageID": "", "state": {"running": {"startedAt":
                                                                                   "2025-01-01T00:00:00Z"}}}])
        _seed_sessions(fk, fk.get("pods", job, "ood-alice") or {}, fk.get("secrets", f"{job}-secret", "ood-alice")
                       or {}, SESSIONS - 1)
        kubeconfig = fk.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
        sock = os.path.join(tmp, "agent.sock")
        sites = {}
        for name, enabled in (("agent", True), ("direct", False)):
            sites[name] = os.path.join(tmp, f"{name}.yml")
            with open(sites[name], "w") as fh:
                yaml.safe_dump({"cluster": {"server": "", "kubeconfig": kubeconfig,
                                            "provisioner_kubeconfig": kubeconfig},
                                "agent": {"enabled": enabled, "socket": sock}}, fh)
        env = _nss_env(tmp)
        agent = _start_agent(sites["agent"], env, sock)
        rss = _rss_mb(agent.pid)
        shim = [*entry_point("ood-k8s-psij"), f"{GEM}/get_info.py", f"--id={job}", "--executor=ood_k8s",
                "--user=alice"]

        def poll(site: str) -> Callable[[], None]:
            site_env = {**env, "OOD_K8S_CONFIG": sites[site]}

            def once() -> None:
                out = subprocess.run(shim, env=site_env, capture_output=True, cwd=tmp, check=True)
                if b'"ACTIVE"' not in out.stdout:
                    raise RuntimeError(f"ood-k8s-psij ({site}): {out.stderr.decode()[-300:]}")
            return once

        for site in sites:
            subprocess.run(shim, env={**env, "OOD_K8S_CONFIG": sites[site]}, capture_output=True, cwd=tmp)
        kubectl = plain_kubectl()

        def incumbent() -> None:
            for kind, name in (("pod", job), ("service", f"{job}-service"), ("secret", f"{job}-secret")):
                subprocess.run([kubectl, f"--kubeconfig={kubeconfig}", "--namespace=ood-alice", "-o", "json", "get",
                                kind, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

        def floor() -> None:
            subprocess.run([installed_python(), "-c", FLOOR, sock, job], env=env, stdout=subprocess.DEVNULL,
                           check=True)

        def api_requests(fn: Callable[[], None]) -> int:
            fk.reset_requests()
            fn()
            return sum(1 for r in fk.requests if r.query.get("watch") != "true")

        per_poll = {site: api_requests(poll(site)) for site in sites}
        def while_hung() -> None:
            fk.hang()  # requests wait unanswered and the watches go silent for this poll
            try:
                poll("agent")()
            finally:
                fk.unhang()

        contenders: dict[str, Callable[[], object]] = {
            "agent": poll("agent"), "hung": while_hung, "direct": poll("direct"), "incumbent": incumbent,
            "floor": floor,
            "pass": lambda: subprocess.run([installed_python(), "-c", "pass"], env=env, check=True)}
        ms = interleaved_medians(contenders, runs=RUNS)
        report("one OOD info poll, whole process, through the agent", f"{ms['agent']:.0f} ms",
               f"{ms['incumbent']:.0f} ms", f"{ms['incumbent'] / ms['agent']:.1f}x faster; target 20 ms")
        report("  the same poll, direct to the API (agent disabled)", f"{ms['direct']:.0f} ms", "",
               f"agent saves {ms['direct'] - ms['agent']:.0f} ms")
        report("  floors: bare Python socket poll / 'python -c pass'", f"{ms['floor']:.0f} / {ms['pass']:.0f} ms", "",
               f"incumbent: 3 x {os.path.basename(kubectl)}")
        report("  the same poll while the API server hangs (from the cache)", f"{ms['hung']:.0f} ms", "hangs",
               "same rounds; the direct path would wait for portal.poll_deadline")
        report("  API requests per poll (agent / direct)", f"{per_poll['agent']} / {per_poll['direct']}",
               f"{api_requests(incumbent)} (3 kubectl)", "the fake's request log")

        # --- many pollers at once ------------------------------------------------------------------
        fk.reset_requests()
        started = time.monotonic()
        burst = _load(sock, job, POLLERS, period=0.0, count=10)
        steady = _load(sock, job, POLLERS, period=0.5, count=10)
        elapsed = time.monotonic() - started
        reads = [r for r in fk.requests if r.query.get("watch") != "true"]
        report(f"{POLLERS} pollers, all at the same instant: p50 / p99", f"{statistics.median(burst):.1f} / "
               f"{_p99(burst):.1f} ms", "", f"{len(burst)} exchanges (10 bursts); target p99 50 ms")
        report(f"{POLLERS} pollers, each every 0.5 s (20x OOD's rate): p50 / p99",
               f"{statistics.median(steady):.1f} / {_p99(steady):.1f} ms", "", f"{len(steady)} exchanges")
        report(f"  API requests during them ({elapsed:.1f} s)", f"{len(reads)}",
               f"{3 * (len(burst) + len(steady))} kubectl", "the watch alone: 3 streams, reopened every 5 min")
        report(f"agent RSS with {SESSIONS:,} sessions cached", f"{rss:.0f} MB", "", "target 100 MB; "
               f"{SESSIONS} pods + secrets, {SESSIONS // 4 * 2} events")

        # --- the API server gone ---------------------------------------------------------------------
        # A loaded 2-core machine drifts between phases: this one is timed beside 'python -c pass' again.
        def pass_() -> None:
            subprocess.run([installed_python(), "-c", "pass"], env=env, check=True)

        fk.stop()
        down = interleaved_medians({"agent": poll("agent"), "pass": pass_}, runs=11, warmup=1)
        from ood_k8s.agent import client as agent_client

        reply = agent_client.ask(sock, "psij", job, "alice", timeout=1.0)
        age = f"age {reply.age:.1f} s reported" if reply else "no answer"
        report("  the poll with the API server gone (from the cache)", f"{down['agent']:.0f} ms", "fails",
               f"'pass' {down['pass']:.0f} ms in these rounds (above: {ms['pass']:.0f}); {age}")
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=10)
        fk.stop()
        shutil.rmtree(tmp, ignore_errors=True)

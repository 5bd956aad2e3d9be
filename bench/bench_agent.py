"""The agent (issue 15): a status poll answered from its watch-fed cache, beside the direct path and
OOD's own Kubernetes adapter, in the same interleaved rounds.

* one OOD poll as a whole process: ``ood-k8s-psij get_info`` as OOD runs it (the console script: the
  launcher, :mod:`ood_k8s.agent.fastpoll`, answering from the agent's socket), the same poll through
  the full path's agent client (the launcher bypassed), the same command straight to the API (agent
  disabled), and the incumbent's three plain ``kubectl get`` (REFERENCE §12: the versioned binary,
  not the dispatcher); plus ``python -c pass`` and a bare Python socket exchange, the floors;
* the same poll while the API server hangs, and once it is gone (answered from the cache, its age
  reported);
* API requests: per poll, and per minute for a class of 200 polling every 10 s;
* 200 pollers (200 different users) at once and at 20x OOD's rate (p50 / p99 of one exchange);
* the agent's RSS with 2,000 sessions cached.

The agent runs as its own process (``ood-k8s agent``, the installed copy, users through
nss_wrapper), against the fake API over loopback TLS; the polls run as root with ``--user alice``,
as bench_adapter's do.  The agent's lifecycle is off: its API traffic here is the watch alone (the
leader adds its Lease renewals, one per ``agent.retry_period``).
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
from ood_k8s.agent.service import WATCHED

WATCH_TIMEOUT = 300  # ood_k8s.agent.service.Agent's default: a watch stream's server-side timeout

RUNS = 21
SESSIONS = 2000
USERS = 200
POLLERS = 200
CLASS_PERIOD = 10.0  # seconds between a dashboard's refreshes of a session card
GEM = "/opt/ood/gems/ood_core/lib/ood_core/job/adapters/psij"
BENCH_UID = 40000  # the seeded users u0000..u0199

# The least a Python poll through a Unix socket can be: connect, one line out, the answer to stdout.
FLOOR = ("import _socket, os, sys\ns = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)\ns.connect(sys.argv[1])\n"
         "s.sendall(('psij ' + sys.argv[2] + ' alice\\n').encode())\ndata = b''\n"
         "while (chunk := s.recv(65536)):\n    data += chunk\nos.write(1, data.partition(b'\\n')[2])\n")


def plain_kubectl() -> str:
    """REFERENCE §12: the plain versioned binary beside the gcloud dispatcher, else whatever is on PATH."""
    found = sorted(glob.glob("/usr/lib/google-cloud-sdk/bin/kubectl.1.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    return found[-1] if found else (shutil.which("kubectl") or "kubectl")


def _user(i: int) -> str:
    return f"u{i % USERS:04d}"


def _seed_sessions(fk: Any, pod: dict[str, Any], secret: dict[str, Any], count: int) -> dict[str, str]:
    """``count`` sessions of 200 users, copies of a real submitted and ready one (pod + secret), a quarter
    of them pending with two events each, straight into the fake's store; {user: one of its jobs}."""
    from ood_k8s.core import vocab

    jobs: dict[str, str] = {}
    for i in range(count):
        user = _user(i)
        ns, name = f"ood-{user}", f"jupyter-{i:08d}"
        jobs.setdefault(user, name)
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
    return jobs


def _nss_with_class(tmp: str) -> dict[str, str]:
    """nss_wrapper's files with the test users and the 200 seeded ones (the agent looks each caller up)."""
    env = _nss_env(tmp)
    with open(env["NSS_WRAPPER_PASSWD"], "a") as fh:
        fh.writelines(f"{_user(i)}:x:{BENCH_UID + i}:{BENCH_UID + i}::/home/{_user(i)}:/bin/bash\n"
                      for i in range(USERS))
    with open(env["NSS_WRAPPER_GROUP"], "a") as fh:
        fh.writelines(f"{_user(i)}:x:{BENCH_UID + i}:\n" for i in range(USERS))
    return env


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pollers(path: str, jobs: list[tuple[str, str]], start_at: float, period: float, count: int) -> list[float]:
    """One poller process: a thread per (user, job), each ``count`` exchanges ``period`` s apart from
    ``start_at`` (period 0: all at once); ms per exchange."""
    from ood_k8s.agent import client

    samples: list[float] = []

    def poller(offset: float, user: str, job: str) -> None:
        for n in range(count):
            wait = start_at + offset + n * period - time.time()
            if wait > 0:
                time.sleep(wait)
            t = time.perf_counter()
            reply = client.ask(path, "psij", job, user, timeout=5.0)
            samples.append((time.perf_counter() - t) * 1000 if reply is not None else float("inf"))

    workers = [threading.Thread(target=poller, args=(period * i / len(jobs) if period else 0.0, user, job))
               for i, (user, job) in enumerate(jobs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return samples


def _load(path: str, jobs: dict[str, str], period: float, count: int, procs: int = 8) -> list[float]:
    """One poller per user, spread over ``procs`` processes (one process's threads would mostly measure
    its own GIL), started together; every exchange's ms."""
    import multiprocessing

    start_at = time.time() + 0.5
    items = sorted(jobs.items())
    parts_in = [(path, items[i::procs], start_at, period, count) for i in range(procs)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.starmap(_pollers, parts_in)
    return sorted(s for part in parts for s in part)


def _p99(samples: list[float]) -> float:
    return samples[max(0, int(len(samples) * 0.99) - 1)]


def _start_agent(config: str, env: dict[str, str], sock: str) -> subprocess.Popen[str]:
    agent = subprocess.Popen([*entry_point("ood-k8s"), "--config", config, "agent"], env=env, text=True,
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert agent.stderr is not None
    line = ""
    while "synced" not in line:
        line = agent.stderr.readline()
        if not line:
            raise RuntimeError("ood-k8s agent ended before it synced")
    threading.Thread(target=agent.stderr.read, daemon=True).start()  # never let its pipe fill
    if not os.path.exists(sock):
        raise RuntimeError("the agent's socket is missing")
    return agent


class World:
    """The fake API with 2,000 sessions, the site files, the agent process."""

    def __init__(self) -> None:
        from ood_k8s.config import Config
        from ood_k8s.core.kube import KubeClient
        from ood_k8s.sessions.adapter import Adapter
        from tests.conftest import ALICE
        from tests.fakekube.fake import FakeKube

        self.fk = FakeKube().start()
        self.tmp = tempfile.mkdtemp(prefix="bench-agent-")
        self.agent: subprocess.Popen[str] | None = None
        client = KubeClient(self.fk.url, token=self.fk.token, ca_file=self.fk.ca_file, sleep=lambda s: None)
        client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                       "metadata": {"name": "ood-interactive"}, "value": 1000})
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
        self.job = Adapter(Config(), ALICE, client).submit({"content": "jupyter lab\n", "wall_time": 3600,
                                                            "job_name": "sys/dashboard/sys/jupyter",
                                                            "native": {"container": {"port": 8888}}})
        self.fk.set_pod_status("ood-alice", self.job, node_name="n1", phase="Running", podIP="10.0.7.9",
                               conditions=[{"type": "Ready", "status": "True"}],
                               containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x",
                                                   "imageID": "", "state": {"running": {
                                                       "startedAt": "2025-01-01T00:00:00Z"}}}])
        self.jobs = _seed_sessions(self.fk, self.fk.get("pods", self.job, "ood-alice") or {},
                                   self.fk.get("secrets", f"{self.job}-secret", "ood-alice") or {}, SESSIONS - 1)
        self.kubeconfig = self.fk.write_kubeconfig(os.path.join(self.tmp, "kubeconfig"))
        self.sock = os.path.join(self.tmp, "agent.sock")
        self.sites = {name: self._site(name, enabled) for name, enabled in (("agent", True), ("direct", False))}
        self.env = _nss_with_class(self.tmp)

    def _site(self, name: str, enabled: bool) -> str:
        path = os.path.join(self.tmp, f"{name}.yml")
        with open(path, "w") as fh:
            yaml.safe_dump({"cluster": {"server": "", "kubeconfig": self.kubeconfig,
                                        "provisioner_kubeconfig": self.kubeconfig},
                            "agent": {"enabled": enabled, "socket": self.sock, "lifecycle": False}}, fh)
        return path

    def poll(self, site: str, launcher: bool = True) -> Callable[[], None]:
        argv = [*entry_point("ood-k8s-psij")] if launcher else \
            [installed_python(), "-c", "from ood_k8s.ood.psij_shim import cli; cli()"]
        argv += [f"{GEM}/get_info.py", f"--id={self.job}", "--executor=ood_k8s", "--user=alice"]
        site_env = {**self.env, "OOD_K8S_CONFIG": self.sites[site]}

        def once() -> None:
            out = subprocess.run(argv, env=site_env, capture_output=True, cwd=self.tmp, check=True)
            if b'"ACTIVE"' not in out.stdout:
                raise RuntimeError(f"ood-k8s-psij ({site}): {out.stderr.decode()[-300:]}")
        return once

    def api_requests(self, fn: Callable[[], object]) -> int:
        self.fk.reset_requests()
        fn()
        return sum(1 for r in self.fk.requests if r.query.get("watch") != "true")

    def close(self) -> None:
        if self.agent is not None:
            self.agent.terminate()
            self.agent.wait(timeout=10)
        self.fk.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _polls(w: World, report: Callable[..., None]) -> dict[str, float]:
    """The whole-process polls, interleaved; returns the medians."""
    kubectl = plain_kubectl()

    def incumbent() -> None:
        for kind, name in (("pod", w.job), ("service", f"{w.job}-service"), ("secret", f"{w.job}-secret")):
            subprocess.run([kubectl, f"--kubeconfig={w.kubeconfig}", "--namespace=ood-alice", "-o", "json", "get",
                            kind, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def while_hung() -> None:
        w.fk.hang()  # requests wait unanswered and the watches go silent for this poll
        try:
            w.poll("agent")()
        finally:
            w.fk.unhang()

    python = installed_python()
    contenders: dict[str, Callable[[], object]] = {
        "agent": w.poll("agent"), "hung": while_hung, "full": w.poll("agent", launcher=False),
        "direct": w.poll("direct"), "incumbent": incumbent,
        "floor": lambda: subprocess.run([python, "-c", FLOOR, w.sock, w.job], env=w.env, stdout=subprocess.DEVNULL,
                                        check=True),
        "pass": lambda: subprocess.run([python, "-c", "pass"], env=w.env, check=True)}
    ms = interleaved_medians(contenders, runs=RUNS)
    report("one OOD info poll, whole process, through the agent", f"{ms['agent']:.1f} ms",
           f"{ms['incumbent']:.0f} ms", f"{ms['incumbent'] / ms['agent']:.1f}x faster; target 20 ms")
    report("  the same, the launcher bypassed (full path's agent client)", f"{ms['full']:.0f} ms", "",
           f"the launcher saves {ms['full'] - ms['agent']:.0f} ms")
    report("  the same poll, direct to the API (agent disabled)", f"{ms['direct']:.0f} ms", "",
           f"the agent saves {ms['direct'] - ms['agent']:.0f} ms")
    report("  floors: bare Python socket poll / 'python -c pass'", f"{ms['floor']:.1f} / {ms['pass']:.1f} ms", "",
           f"incumbent: 3 x {os.path.basename(kubectl)}")
    report("  the same poll while the API server hangs (from the cache)", f"{ms['hung']:.1f} ms", "hangs",
           "same rounds; the direct path would wait for portal.poll_deadline")
    cpu = {name: _cpu_ms(contenders[name]) for name in ("agent", "pass", "direct", "incumbent")}
    report("  CPU per poll process, user + system (immune to a busy machine)", f"{cpu['agent']:.1f} ms",
           f"{cpu['incumbent']:.0f} ms", f"'python -c pass' {cpu['pass']:.1f} ms; direct {cpu['direct']:.0f} ms")
    return ms


def _cpu_ms(fn: Callable[[], object], runs: int = RUNS) -> float:
    """CPU seconds (user + system) the processes ``fn`` starts use, per call, in ms."""
    import resource

    def used() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    fn()
    before = used()
    for _ in range(runs):
        fn()
    return (used() - before) / runs * 1000


def _traffic(w: World, report: Callable[..., None]) -> None:
    """API requests per poll, and per minute for a class of 200 polling every 10 s; 200 pollers at once."""
    kubectl = plain_kubectl()
    per_poll = {site: w.api_requests(w.poll(site)) for site in w.sites}
    incumbent = w.api_requests(lambda: [subprocess.run(
        [kubectl, f"--kubeconfig={w.kubeconfig}", "--namespace=ood-alice", "-o", "json", "get", kind, name],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        for kind, name in (("pod", w.job), ("service", f"{w.job}-service"), ("secret", f"{w.job}-secret"))])
    report("  API requests per poll (agent / direct)", f"{per_poll['agent']} / {per_poll['direct']}",
           f"{incumbent} (3 kubectl)", "the fake's request log")
    w.fk.reset_requests()
    started = time.monotonic()
    burst = _load(w.sock, w.jobs, period=0.0, count=10)
    steady = _load(w.sock, w.jobs, period=0.5, count=10)
    elapsed = time.monotonic() - started
    seen = list(w.fk.requests)
    reads = [r for r in seen if r.query.get("watch") != "true"]
    report(f"{POLLERS} pollers ({USERS} users), all at the same instant: p50 / p99",
           f"{statistics.median(burst):.1f} / {_p99(burst):.1f} ms", "",
           f"{len(burst)} exchanges (10 bursts); target p99 50 ms")
    report(f"{POLLERS} pollers, each every 0.5 s (20x OOD's rate): p50 / p99",
           f"{statistics.median(steady):.1f} / {_p99(steady):.1f} ms", "", f"{len(steady)} exchanges")
    polls = POLLERS * 60 / CLASS_PERIOD
    streams = len(WATCHED) * 60 / WATCH_TIMEOUT  # each watch stream is reopened every WATCH_TIMEOUT s
    report(f"API requests per minute, a class of {POLLERS} polling every {CLASS_PERIOD:.0f} s",
           f"{streams:.1f} (the watch)", f"{incumbent * polls:,.0f} (kubectl)",
           f"direct path {per_poll['direct'] * polls:,.0f}; measured during {len(burst) + len(steady)} polls "
           f"({elapsed:.0f} s): {len(reads)} reads, {len(seen) - len(reads)} watch opens")


def _down(w: World, report: Callable[..., None], earlier_pass: float) -> None:
    """The API server gone: the cache answers, saying how old it is."""
    from ood_k8s.agent import client as agent_client

    python = installed_python()
    w.fk.stop()
    down = interleaved_medians({"agent": w.poll("agent"),
                                "pass": lambda: subprocess.run([python, "-c", "pass"], env=w.env, check=True)},
                               runs=11, warmup=1)
    reply = agent_client.ask(w.sock, "psij", w.job, "alice", timeout=1.0)
    age = f"age {reply.age:.1f} s reported" if reply else "no answer"
    report("  the poll with the API server gone (from the cache)", f"{down['agent']:.1f} ms", "fails",
           f"'pass' {down['pass']:.1f} ms in these rounds (above: {earlier_pass:.1f}); {age}")


def run(report: Callable[..., None]) -> None:
    w = World()
    try:
        w.agent = _start_agent(w.sites["agent"], w.env, w.sock)
        rss = _rss_mb(w.agent.pid)
        for site in w.sites:  # warm: the first (root) load leaves the compiled config and the polls' hint
            w.poll(site)()
        if not os.path.exists(w.sites["agent"] + ".agent"):
            report("  (the polls' hint is missing: the launcher cannot answer)", "!", "")
        ms = _polls(w, report)
        _traffic(w, report)
        report(f"agent RSS with {SESSIONS:,} sessions cached", f"{rss:.0f} MB", "", "target 100 MB; "
               f"{SESSIONS} pods + secrets, {SESSIONS // 4 * 2} events")
        _down(w, report, ms["pass"])
    finally:
        w.close()

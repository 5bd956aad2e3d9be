"""Usage and budgets (issue 16): the report for a class over a term, the budget check a submit pays, and
the ledger's API writes per session.

* report: 200 students x a term of sessions (20,000) in the ledger on the fake API; read the ledger
  (one list call), clip, group, print the table and write the HTML page -- what ``ood-k8s usage
  --course C --html F`` does.  Target <= 2 s.
* budget check: what a submit adds -- one ``budget -`` exchange with a running agent (in process,
  the ledger of 20,000 sessions read), p50 and p99.  Target <= 5 ms.
* ledger writes: sessions ending over several passes of the leader's ledger task, API writes counted at
  the fake API (shard writes + pod marks) per session.  Target: bounded, at most 2.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

STUDENTS = 200
SESSIONS = 20_000
T0 = 1801900800.0  # 2027-02-01T00:00:00Z


def _entries() -> list[Any]:
    from ood_k8s.usage.entry import Entry

    rng = random.Random(16)
    out = []
    for i in range(SESSIONS):
        user = f"s{i % STUDENTS:03d}"
        start = T0 + rng.uniform(0, 100 * 86400)
        gpus = rng.choice((0, 1, 1, 1, 2))
        out.append(Entry(f"00000000-0000-4000-8000-{i:012d}", user, "cs109b", "gpu-t4" if gpus else "cpu",
                         f"jupyter-{i:06d}", start, start + rng.uniform(600, 4 * 3600), gpus,
                         "nvidia.com/gpu" if gpus else "", 4.0, 16 << 30, "g4dn.xlarge" if gpus else "m5.xlarge",
                         1.0 if gpus else 0.5, rng.choice((0.0, 0.0, 1800.0)), rng.choice(("", "", "Idle"))))
    return out


def _seed_ledger(fk: Any, entries: list[Any], namespace: str) -> None:
    from ood_k8s.usage.entry import encode, month
    from ood_k8s.usage.ledger import shard, shard_name

    shards: dict[tuple[str, str], dict[str, str]] = {}
    for e in entries:
        shards.setdefault((e.user, month(e.start)), {})[e.uid] = encode(e)
    for (user, when), data in shards.items():
        fk.seed(shard(shard_name(user, when), namespace, user, data))


def _report_seconds(client: Any, cfg: Any, runs: int = 5) -> float:
    from ood_k8s.usage import html, report
    from ood_k8s.usage.ledger import Ledger

    def once() -> None:
        entries = report.window(report.select(Ledger(client, cfg.agent.namespace).read(), "cs109b"), T0,
                                T0 + 110 * 86400)
        rows, total = report.rows(entries, {"g4dn.xlarge": 0.526}), report.total(entries, {"g4dn.xlarge": 0.526})
        report.table(rows, total, "USD")
        html.page(entries, rows, total, title="Usage of cs109b", span=(T0, T0 + 110 * 86400), currency="USD",
                  limit=20.0)

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _budget_ms(world: Any, ident: Any, runs: int = 200) -> tuple[float, float]:
    from ood_k8s.usage import answers

    assert answers._ask(world.cfg, "budget", ident.username, 30.0) is not None  # the agent reads the ledger once
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answers.ask_budgets(world.cfg, ident)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def _writes_per_session(fk: Any, client: Any, cfg: Any, sessions: int = 60) -> float:
    from ood_k8s.agent.actions import Actions
    from ood_k8s.agent.service import SESSIONS as SELECTOR
    from ood_k8s.agent.tasks import PassContext
    from ood_k8s.core import vocab
    from ood_k8s.core.timefmt import rfc3339
    from ood_k8s.usage.task import LedgerTask

    task = LedgerTask()
    fk.reset_requests()
    for i in range(sessions):
        user = f"s{i % 20:03d}"
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"w-{i:04d}", "namespace": "ood-bench",
            "labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY, vocab.USER_LABEL: user, vocab.JOB_LABEL: "x"}},
            "spec": {"containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Succeeded", "startTime": rfc3339(T0),
                       "containerStatuses": [{"name": "app", "state": {"terminated": {
                           "startedAt": rfc3339(T0), "finishedAt": rfc3339(T0 + 3600)}}}]}}
        fk.seed(pod)
        if i % 7 == 6:  # a pass every few endings, as sessions end between passes
            pods = client.list("Pod", None, label_selector=SELECTOR)
            task.run(PassContext(cfg, client, T0 + 7200, pods, Actions(client, T0, logging.getLogger("b"), "b")))
    pods = client.list("Pod", None, label_selector=SELECTOR)
    task.run(PassContext(cfg, client, T0 + 7200, pods, Actions(client, T0, logging.getLogger("b"), "b")))
    writes = [r for r in fk.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    return len(writes) / sessions


def run(report: Callable[..., None]) -> None:
    from ood_k8s.core.kube import KubeClient
    from tests.agent.conftest import World
    from tests.conftest import ALICE, replace
    from tests.fakekube import FakeKube
    from tests.usage.conftest import CS109B

    entries = _entries()
    sock_dir = tempfile.mkdtemp(prefix="ood-k8s-bench-usage-")
    os.chmod(sock_dir, 0o755)  # noqa: S103 - as /run/ood-k8s
    fk = FakeKube().start()
    try:
        world = World(fk, sock_dir)
        world.cfg = replace(world.cfg, courses=[replace(CS109B, term_start="", term_end="", gpu_hours_total=1e6)])
        client = KubeClient(fk.url, token=fk.token, ca_file=fk.ca_file, sleep=lambda s: None)
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": world.cfg.agent.namespace}})
        _seed_ledger(fk, [e._replace(user="alice" if e.user == "s000" else e.user) for e in entries],
                     world.cfg.agent.namespace)
        seconds = _report_seconds(client, world.cfg)
        report(f"usage report, {STUDENTS} students x {SESSIONS:,} sessions (read, table, HTML)", f"{seconds:.2f} s",
               "not done", "target <= 2 s")
        world.start_agent()
        p50, p99 = _budget_ms(world, ALICE)
        report(f"budget check per submit (socket, ledger of {SESSIONS:,})", f"{p50:.2f} / {p99:.2f} ms",
               "not done", "p50 / p99; target <= 5 ms")
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-bench"}})
        per = _writes_per_session(fk, client, world.cfg)
        report("usage ledger: API writes per ended session", f"{per:.2f}", "not done", "shard write + pod mark; <= 2")
        world.agent.stop()  # type: ignore[union-attr]
    finally:
        fk.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)

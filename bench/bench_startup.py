"""Start-up cost of each entry point, and template rendering throughput."""

from __future__ import annotations

import shutil
import time

from bench.common import entry_point, fmt_ms, installed_env, installed_python, process_ms


def run(report) -> None:
    env = installed_env()
    python = installed_python()
    base = process_ms([python, "-c", "pass"], env=env)
    report("python -c pass (floor of any Python entry point)", fmt_ms(base), "")
    kubectl = shutil.which("kubectl")
    kubectl_ms = process_ms([kubectl, "version", "--client"]) if kubectl else float("nan")
    report("ood-k8s --help", fmt_ms(process_ms([*entry_point("ood-k8s"), "--help"], env=env)),
           f"kubectl --client {fmt_ms(kubectl_ms)}", "process start to exit")
    for module, what in (("kubernetes.client", "import kubernetes.client (why kube.py is stdlib)"),
                         ("ood_k8s.core.kube", "import ood_k8s.core.kube (our API client)"),
                         ("ood_k8s.config", "import ood_k8s.config")):
        ms = process_ms([python, "-c", f"import {module}"], env=env) - base
        report(what, fmt_ms(ms), "")

    from ood_k8s.config import Config
    from ood_k8s.render.render import Renderer

    cfg = Config()
    renderer = Renderer(None, cfg.cluster.kubernetes_version, validate=False)
    validating = Renderer(None, cfg.cluster.kubernetes_version, validate=True)
    try:
        from ood_k8s.users import provision
    except ImportError:
        return
    from ood_k8s.core.identity import Identity

    ident = Identity("alice", 20001, 20001, "/home/alice", ("alice", "students"), (30001,))
    for label, r in (("user objects rendered per second (parse only)", renderer),
                     ("user objects rendered per second (+ strict schema validation)", validating)):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            n += len(provision.desired_objects(cfg, ident, now=provision.utc_now(), renderer=r))
        rate = n / (time.perf_counter() - start)
        report(label, f"{rate:,.0f}/s", "envsubst + kubectl apply", "templates/user/*.yaml.j2")

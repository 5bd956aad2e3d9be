"""``ood-k8s agent``: the long-running cache that answers status polls (run it under systemd).

In the foreground until SIGTERM or SIGINT (a graceful stop: the leader's Lease is released, the
socket goes, then the watches); SIGHUP reads the configuration again.  ``--once``: one pass of the
session lifecycle if this process can lead (another agent leading: it says so, exit 0), for a
timer or a test.  Runs as root (the socket names callers by uid and
the agent reads the provisioner's kubeconfig).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run the agent: a watch-fed cache answering status polls (foreground)")
    p.add_argument("--socket", metavar="PATH", help="Unix socket to answer on (default: agent.socket)")
    p.add_argument("--health-port", type=int, metavar="PORT", help="serve /healthz on 127.0.0.1:PORT "
                   "(default: agent.health_port)")
    p.add_argument("--once", action="store_true", help="one pass of the session lifecycle (deadlines, idle "
                   "reclaim, cleanup...) as the leader, then exit; nothing when another agent leads")
    p.set_defaults(handler=_run)


def _config(args: argparse.Namespace) -> Any:
    from ood_k8s.cli import load_config
    from ood_k8s.config import replace

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    changes = {k: v for k, v in (("socket", args.socket), ("health_port", args.health_port)) if v is not None}
    return replace(cfg, agent=replace(cfg.agent, **changes)) if changes else cfg


def _client(cfg: Any) -> Any:
    """The agent's own identity (agent.kubeconfig), else the provisioner's."""
    from ood_k8s.config import replace
    from ood_k8s.kubeconfig import clients as connect

    if cfg.agent.kubeconfig:
        cfg = replace(cfg, cluster=replace(cfg.cluster, provisioner_kubeconfig=cfg.agent.kubeconfig))
    return connect.as_provisioner(cfg)


def _run(args: argparse.Namespace) -> int:
    import logging

    from ood_k8s.agent.service import Agent
    from ood_k8s.core.errors import OodK8sError

    cfg = _config(args)
    # What the leader does (every action, each leadership change) goes to stderr: the journal.
    logging.basicConfig(level=logging.INFO, format="ood-k8s agent: %(message)s")
    if args.once:
        from ood_k8s.agent.lifecycle import run_once

        status, line = run_once(cfg, _client(cfg))
        print(line, file=sys.stderr if status else sys.stdout, flush=True)
        return status
    agent = Agent(cfg, _client(cfg)).start()
    done = threading.Event()

    def reload(*_: Any) -> None:
        try:
            agent.reload(_config(args))
            print("ood-k8s agent: configuration reloaded", file=sys.stderr, flush=True)
        except OodK8sError as err:
            print(f"ood-k8s agent: configuration not reloaded: {err.message}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGHUP, reload)
    print(f"ood-k8s agent: answering on {cfg.agent.socket}", file=sys.stderr, flush=True)
    synced = False
    while not done.wait(0.5):
        if not synced and agent.synced():
            synced = True
            print(f"ood-k8s agent: synced ({agent.cache.sizes()['pods']} sessions)", file=sys.stderr, flush=True)
    agent.stop()
    print("ood-k8s agent: stopped", file=sys.stderr, flush=True)
    return 0

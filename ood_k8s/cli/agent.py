"""``ood-k8s agent``: the long-running cache that answers status polls (run it under systemd).

In the foreground until SIGTERM or SIGINT (a graceful stop: the socket goes first, then the
watches); SIGHUP reads the configuration again.  Runs as root (the socket names callers by uid and
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
    p.set_defaults(handler=_run)


def _config(args: argparse.Namespace) -> Any:
    from ood_k8s.cli import load_config
    from ood_k8s.config import replace

    cfg = load_config(args, site=True)  # acts on the cluster: never the built-in example
    changes = {k: v for k, v in (("socket", args.socket), ("health_port", args.health_port)) if v is not None}
    return replace(cfg, agent=replace(cfg.agent, **changes)) if changes else cfg


def _run(args: argparse.Namespace) -> int:
    from ood_k8s.agent.service import Agent
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.kubeconfig import clients as connect

    cfg = _config(args)
    agent = Agent(cfg, connect.as_provisioner(cfg)).start()
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

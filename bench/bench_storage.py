"""Home storage per login: AWS calls and time on the first and every later login (EFS, moto's server).

The incumbents have no per-user EFS: OSC's hook leaves homes to the nodes (hostPath), and FASRC's
runs an ``aws`` CLI process (a Python start, ~140 ms of boto3 import alone) for each call on every login.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Callable

from bench.common import moto_server


def run(report: Callable[..., None]) -> None:
    import boto3

    from ood_k8s import config
    from ood_k8s.config import Config
    from ood_k8s.core import names
    from ood_k8s.core.identity import Identity
    from ood_k8s.storage import backend as storage
    from ood_k8s.storage import homedir

    with moto_server() as url:
        client = boto3.client("efs", region_name="us-east-1", endpoint_url=url)
        fs_id = client.create_file_system(CreationToken="bench")["FileSystemId"]
        calls: list[str] = []
        client.meta.events.register("before-call.efs", lambda model, **kw: calls.append(model.name))
        base = Config()
        cfg = config.replace(base, storage=config.replace(
            base.storage, efs=config.replace(base.storage.efs, file_system_id=fs_id, endpoint_url=url)))
        ident = Identity("alice", 20001, 20001, "/home/alice", ("alice",), (30001,))
        n = names.for_user("alice")

        started = time.perf_counter()
        first = storage.provision(cfg, ident, n, {}, cloud=client)
        first_ms = (time.perf_counter() - started) * 1000
        report("first login: EFS calls / time", f"{len(calls)} / {first_ms:.1f} ms", "n/a (no EFS)")

        calls.clear()
        rounds = 200
        started = time.perf_counter()
        for _ in range(rounds):
            storage.provision(cfg, ident, n, first.annotations, cloud=client)
        per = (time.perf_counter() - started) * 1000 / rounds
        report("later login (hash changed): EFS calls / time", f"{len(calls)} / {per:.2f} ms",
               "1 aws CLI per call", note="renders + validates PV and claim")

        with tempfile.TemporaryDirectory() as tmp:
            home = ident._replace(home=os.path.join(tmp, "alice"))
            started = time.perf_counter()
            homedir.ensure_home(home, tmp, "/etc/skel")
            made_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            for _ in range(rounds):
                homedir.ensure_home(home, tmp, "/etc/skel")
            again_us = (time.perf_counter() - started) * 1e6 / rounds
        report("portal home: create with /etc/skel / check existing", f"{made_ms:.2f} ms / {again_us:.0f} us",
               "not done")

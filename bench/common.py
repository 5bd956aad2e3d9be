"""Small timing helpers shared by the bench modules."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent


def median_ms(fn: Callable[[], object], runs: int = 15, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def process_ms(argv: Sequence[str], runs: int = 15, env: dict[str, str] | None = None,
               stdin: bytes | None = None, cwd: str | None = None) -> float:
    """Median wall time of a whole process, start to exit."""

    def once() -> None:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, env=env, cwd=cwd, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {proc.stderr.decode(errors='replace')[-400:]}")

    return median_ms(once, runs=runs)


def entry_point(name: str) -> list[str]:
    """The console script installed with this interpreter (as OOD runs it), else the module via it.

    Never another interpreter's script from PATH: the figures are this environment's.
    """
    found = shutil.which(name, path=os.path.dirname(sys.executable))
    if found:
        return [found]
    module = {"ood-k8s": "ood_k8s", "ood-k8s-psij": "ood_k8s.psij_shim"}[name]
    return [sys.executable, "-m", module]


def env_with_repo() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def fmt_ms(value: float) -> str:
    return f"{value:.1f} ms"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's AWS server on 127.0.0.1 with fake credentials; yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call otherwise
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()

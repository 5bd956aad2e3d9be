"""Small timing helpers shared by the bench modules."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable

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


def interleaved_medians(fns: dict[str, Callable[[], object]], runs: int = 21, warmup: int = 3) -> dict[str, float]:
    """Median wall ms of each function, measured in rounds that run each once in turn.

    A shared 2-core machine drifts by tens of percent within a minute; taking the samples of every
    contender in the same rounds keeps their comparison fair even when the absolute figures move.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if round_ >= warmup:
                samples[name].append((time.perf_counter() - t) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def process_ms(argv: Sequence[str], runs: int = 15, env: dict[str, str] | None = None,
               stdin: bytes | None = None, cwd: str | None = None) -> float:
    """Median wall time of a whole process, start to exit."""

    def once() -> None:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, env=env, cwd=cwd, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {proc.stderr.decode(errors='replace')[-400:]}")

    return median_ms(once, runs=runs)


# A git revision to time beside this checkout (e.g. the commit before a change): every process figure
# that supports it gets a "before" contender in the same interleaved rounds.  Empty: none.
BASELINE = os.environ.get("OOD_K8S_BENCH_BASELINE", "")

_INSTALLED: dict[str, tuple[Path, Path]] = {}


def _source(where: Path, rev: str) -> Path:
    """A copy of this checkout (rev "") or of a git revision: setuptools' build/ would keep deleted modules."""
    source = where / "src"
    if not rev:
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__"))
        return source
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return source


def _install(rev: str) -> tuple[Path, Path]:
    import atexit
    import sysconfig
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="bench-install-"))
    where.chmod(0o755)  # users run its commands (the hook checks that the credential command is runnable)
    atexit.register(shutil.rmtree, where, True)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "dev-venv-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    source = _source(where, rev)
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(where), str(source)],
                   check=True, env=env, cwd=where, capture_output=True)
    wheel = next(where.glob("ood_k8s-*.whl"))
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, env=env, cwd=where, capture_output=True)
    return python, source


def installed_python(rev: str = "") -> str:
    """The interpreter of a scratch virtualenv holding a plain ``pip install`` of this checkout (or of
    the git revision ``rev``).

    Process figures are taken there because that is what a site runs: byte-compiled modules and
    console scripts.  The development venv's editable install costs every process ~15 ms more (its
    import finder loads pathlib, fnmatch and urllib.parse at start-up), which no site pays.  Third-party
    packages come from the development venv through a ``.pth`` path line (its own ``.pth`` files --
    the editable finder -- are not processed from there).  Built once per bench run, removed at exit.
    """
    if rev not in _INSTALLED:
        _INSTALLED[rev] = _install(rev)
    return str(_INSTALLED[rev][0])


def installed_source(rev: str = "") -> Path:
    """The source tree the installed copy of ``rev`` was built from (its hooks/ launcher, its templates)."""
    installed_python(rev)
    return _INSTALLED[rev][1]


def entry_point(name: str, rev: str = "") -> list[str]:
    """The console script of the installed copy (:func:`installed_python`), as OOD runs it."""
    return [str(Path(installed_python(rev)).parent / name)]


def installed_env() -> dict[str, str]:
    """The environment for the installed copy: its own modules, byte-compiled caches allowed."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}


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

"""A portal in a box for the sessions app, as OOD runs it.

* The fake API with one token per user and RBAC like the hook's: each user may act in their own
  namespace only (an instructor's credentials cannot read a student's namespace).
* A running agent (in this process) whose socket names callers by the kernel.
* The app served for each user by ``serve.py`` -- apps/sessions/passenger_wsgi.py in a real WSGI
  server -- in its own process running as that user's uid, with NSS (nss_wrapper) knowing the users
  and groups, and the user's own kubeconfig: so "the user is the process's owner" is tested for real.
* Sessions in several states, submitted through the job adapter as OOD submits them.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from ood_k8s import config as config_mod
from ood_k8s.agent.service import Agent
from ood_k8s.core import vocab
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.sessions.adapter import Adapter
from tests.agent.conftest import DictUsers, wait_until
from tests.conftest import ALICE, BOB, NSS_WRAPPER, ROOT
from tests.fakekube import FakeKube

CAROL = Identity(username="carol", uid=20003, gid=20003, home="/home/carol", groups=("carol", "cs101-staff"),
                 gids=(30003,))
USERS = (ALICE, BOB, CAROL)
GROUPS = {"students": 30001, "gpu-users": 30002, "cs101-staff": 30003}
COURSE = "cs101"
JUPYTER = {"content": "jupyter lab\n", "job_name": "sys/dashboard/sys/jupyter", "wall_time": 3600,
           "native": {"container": {"port": 8888}}}
APP_DIR = ROOT / "apps" / "sessions"


def rfc3339(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AppServer(NamedTuple):
    url: str                    # http://127.0.0.1:PORT/pun/sys/sessions
    proc: subprocess.Popen[str]
    log: Path


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.fk = FakeKube()
        self.fk.bookmark_interval = 0.2
        self.fk.start()
        tokens = {self.fk.token: "admin", **{f"{u.username}-token": u.username for u in USERS}}
        self.fk.authenticate = tokens.get
        self.fk.authorize = lambda user, verb, resource, ns: user == "admin" or ns == f"ood-{user}"
        self.admin = KubeClient(self.fk.url, token=self.fk.token, ca_file=self.fk.ca_file, sleep=lambda s: None)
        self.admin.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                           "metadata": {"name": "ood-interactive"}, "value": 1000})
        for ns in ("ood-alice", "ood-bob", "ood-carol", "ood-k8s-system"):
            self.admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.ca = root / "ca.crt"
        shutil.copy(str(self.fk.ca_file), self.ca)
        self.ca.chmod(0o644)
        (root / "run").mkdir(mode=0o755)
        self.cfg_path = self._write_config("site", self.fk.write_kubeconfig(str(root / "admin.kubeconfig")))
        self.cfg = config_mod.load(str(self.cfg_path))
        self.passwd, self.group = self._write_nss()
        self.agent: Agent | None = None
        self.apps: dict[str, AppServer] = {}

    # --- the site ---------------------------------------------------------------------------------------

    def _write_config(self, name: str, kubeconfig: str) -> Path:
        """The site config; each user's app gets a copy naming that user's kubeconfig (on a portal every
        user's credentials come from their own kubeconfig or token cache under the one config)."""
        today = datetime.date.today()
        data = {
            "cluster": {"server": "", "kubeconfig": kubeconfig, "request_timeout": 1.5, "retries": 0},
            "portal": {"submit_host": "ood.example.edu"},
            "jobs": {"default_walltime": 3600, "max_walltime": 7200},
            "agent": {"enabled": True, "socket": str(self.root / "run" / "agent.sock"), "timeout": 1.0},
            "courses": [{"name": COURSE, "title": "Deep learning 101", "groups": ["students"],
                         "instructors": "cs101-staff", "profiles": ["cpu", "gpu-t4"],
                         "term_start": str(today - datetime.timedelta(days=60)),
                         "term_end": str(today + datetime.timedelta(days=60)),
                         "gpu_hours_per_student": 10, "gpu_hours_total": 200}],
        }
        path = self.root / f"ood_k8s.{name}.yml"
        path.write_text(yaml.safe_dump(data))
        path.chmod(0o644)
        return path

    def _write_nss(self) -> tuple[Path, Path]:
        passwd, group = self.root / "passwd", self.root / "group"
        passwd.write_text("root:x:0:0:root:/root:/bin/bash\n" + "".join(
            f"{u.username}:x:{u.uid}:{u.gid}:{u.username}:{self.root / 'home' / u.username}:/bin/bash\n"
            for u in USERS))
        lines = ["root:x:0:\n"] + [f"{u.username}:x:{u.gid}:\n" for u in USERS]
        for name, gid in GROUPS.items():
            lines.append(f"{name}:x:{gid}:{','.join(u.username for u in USERS if name in u.groups)}\n")
        group.write_text("".join(lines))
        for p in (passwd, group):
            p.chmod(0o644)
        return passwd, group

    # --- sessions ---------------------------------------------------------------------------------------

    def adapter(self, ident: Identity) -> Adapter:
        return Adapter(self.cfg, ident, self.admin)

    def submit(self, ident: Identity, profile: str = "cpu", hold: bool = False) -> str:
        job = self.adapter(ident).submit({**JUPYTER, "native": {**JUPYTER["native"], "profile": profile}}, hold=hold)
        pod = self.admin.get("Pod", job, f"ood-{ident.username}")
        if (pod["metadata"].get("labels") or {}).get(vocab.COURSE_LABEL) != COURSE:
            # Submit labels a course session itself where the courses feature is wired in; else as it would.
            self.admin.patch("Pod", job, {"metadata": {"labels": {vocab.COURSE_LABEL: COURSE}}},
                             f"ood-{ident.username}", patch_type="merge")
        return job

    def run(self, ident: Identity, job: str, started_ago: float = 600) -> None:
        start = rfc3339(time.time() - started_ago)
        self.fk.set_pod_status(f"ood-{ident.username}", job, node_name="ip-10-0-1-5", phase="Running",
                               podIP="10.0.7.9", hostIP="10.0.1.5", startTime=start,
                               conditions=[{"type": "Ready", "status": "True"}],
                               containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x",
                                                   "imageID": "", "state": {"running": {"startedAt": start}}}])

    def wait_for_gpu(self, ident: Identity, job: str) -> None:
        self.fk.set_pod_status(f"ood-{ident.username}", job, phase="Pending", conditions=[{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}])

    def out_of_memory(self, ident: Identity, job: str) -> None:
        start = rfc3339(time.time() - 3000)
        self.fk.set_pod_status(f"ood-{ident.username}", job, node_name="ip-10-0-1-5", phase="Failed", startTime=start,
                               containerStatuses=[{"name": "app", "ready": False, "restartCount": 0, "image": "x",
                                                   "imageID": "", "state": {"terminated": {
                                                       "exitCode": 137, "reason": "OOMKilled", "startedAt": start,
                                                       "finishedAt": rfc3339(time.time() - 1200)}}}])

    # --- the agent ---------------------------------------------------------------------------------------

    def start_agent(self) -> Agent:
        self.agent = Agent(self.cfg, self.admin, users=DictUsers(*USERS), stall_after=2.0, watch_timeout=60,
                           backoff_cap=0.1).start()
        assert self.agent.wait_synced(5)
        return self.agent

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    def seen(self, ident: Identity, job: str, test: Any = lambda p: True) -> None:
        """Wait until the agent's cache holds the job's pod as it is now (passing ``test``)."""
        assert self.agent is not None
        client = self.agent.cache.client()
        wait_until(lambda: (p := client.get_or_none("Pod", job, f"ood-{ident.username}")) and test(p))

    # --- the app, as each user ---------------------------------------------------------------------------

    def serve(self, ident: Identity) -> AppServer:
        if ident.username in self.apps:
            return self.apps[ident.username]
        home = self.root / "home" / ident.username
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, ident.uid, ident.gid)
        kubeconfig = home / "kubeconfig"
        self.fk.write_kubeconfig(str(kubeconfig), token=f"{ident.username}-token")
        data = yaml.safe_load(kubeconfig.read_text())
        data["clusters"][0]["cluster"]["certificate-authority"] = str(self.ca)
        kubeconfig.write_text(yaml.safe_dump(data))
        kubeconfig.chmod(0o600)
        os.chown(kubeconfig, ident.uid, ident.gid)
        python, src, extra_path = runnable(self.root)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_PRELOAD": NSS_WRAPPER,
               "NSS_WRAPPER_PASSWD": str(self.passwd), "NSS_WRAPPER_GROUP": str(self.group),
               "OOD_K8S_CONFIG": str(self._write_config(ident.username, str(kubeconfig))), "HOME": str(home),
               "PYTHONPATH": os.pathsep.join([str(src), *extra_path]), "PYTHONDONTWRITEBYTECODE": "1"}
        log = self.root / f"app-{ident.username}.log"
        with open(log, "w") as err:
            proc = subprocess.Popen([python, str(src / "tests" / "webapp" / "serve.py"),
                                     str(src / APP_DIR.relative_to(ROOT))],
                                    user=ident.uid, group=ident.gid, extra_groups=list(ident.gids), env=env,
                                    stdout=subprocess.PIPE, stderr=err, text=True, cwd=str(home))
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("PORT "):
            proc.kill()
            raise AssertionError(f"the app did not start as {ident.username}: {log.read_text()[-2000:]}")
        app = AppServer(f"http://127.0.0.1:{int(line.split()[1])}/pun/sys/sessions", proc, log)
        self.apps[ident.username] = app
        return app

    def close(self) -> None:
        self.stop_agent()
        for app in self.apps.values():
            app.proc.terminate()
            try:
                app.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                app.proc.kill()
        self.fk.unhang()
        self.fk.stop()


def _reachable(path: str) -> bool:
    """Every directory above ``path`` lets other users through (a pyenv Python under /root does not)."""
    parts = Path(os.path.realpath(path)).parents
    return all(os.stat(p).st_mode & 0o001 for p in parts)


def interpreter() -> tuple[str, list[str]]:
    """A Python the test users may run, and what it needs on its path: this one where they can reach it,
    else the system's (same minor version) with this environment's site-packages."""
    if _reachable(sys.executable):
        return sys.executable, []
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None or subprocess.run([system, "-c", f"import sys; assert sys.version_info[:2] == "
                                                       f"{tuple(sys.version_info[:2])}"]).returncode != 0:
        pytest.skip(f"no Python {sys.version_info[0]}.{sys.version_info[1]} the test users can run "
                    f"({sys.executable} is under a private directory)")
    import sysconfig

    return system, [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]


# What the app imports from site-packages (a copy needs nothing else: see runnable).
APP_PACKAGES = ("jinja2", "markupsafe", "yaml", "_yaml")


def runnable(root: Path) -> tuple[str, Path, list[str]]:
    """(python, the source tree, its site-packages) the test users can run the app from: the checkout and
    this environment where they can reach them, else copies under ``root`` (a 0755 scratch directory) --
    a CI clone under a 0700 directory (mktemp -d) is unreadable to every other user."""
    python, extra = interpreter()
    if _reachable(str(ROOT / "tests" / "webapp" / "serve.py")) and all(_reachable(p) for p in extra):
        return python, ROOT, extra
    src = root / "src"
    if not src.exists():
        skip = shutil.ignore_patterns("__pycache__", "artifacts")
        for part in ("ood_k8s", "templates", "apps"):
            shutil.copytree(ROOT / part, src / part, ignore=skip)
        (src / "tests" / "webapp").mkdir(parents=True)
        shutil.copy(ROOT / "tests" / "webapp" / "serve.py", src / "tests" / "webapp" / "serve.py")
        for lib in extra:
            for name in APP_PACKAGES:
                if (Path(lib) / name).is_dir() and not (src / "site" / name).exists():
                    shutil.copytree(Path(lib) / name, src / "site" / name, ignore=skip)
        for d in [src, *src.rglob("*")]:
            d.chmod(0o755 if d.is_dir() else 0o644)
    return python, src, [p if _reachable(p) else str(src / "site") for p in extra]


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("serving the app as each test user needs root (CI runs as root)")
    if not os.path.exists(NSS_WRAPPER):
        pytest.skip(f"{NSS_WRAPPER} missing: install Debian's libnss-wrapper (.ci/run does)")


@contextlib.contextmanager
def scratch_site() -> Iterator[Site]:
    """A Site in its own scratch directory -- not pytest's tmp_path (0700): the users' processes read the
    config, NSS files and CA from here, as they read /etc/ood/config -- removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ood-k8s-webapp-"))
    root.chmod(0o755)
    s = Site(root)
    try:
        yield s
    finally:
        s.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    needs_root()
    with scratch_site() as s:
        yield s


from tests.webapp.browser import browser  # noqa: E402,F401 - the module-scoped headless chromium fixture

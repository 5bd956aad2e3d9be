"""The OOD hot path: one ``info`` poll through ood-k8s-psij vs OOD's built-in adapter; round trips; render rate.

Both sides poll the same fake API over loopback HTTPS with a token kubeconfig.  OOD's built-in
Kubernetes adapter spends three ``kubectl get -o json`` processes on one ``info`` (pod, service,
secret: ood_core kubernetes/batch.rb); ood-k8s-psij is one Python process doing at most two
requests.  Ours is the ``ood-k8s-psij`` console script of a plain ``pip install`` (bench.common), as
a site runs it; each side is warmed up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from bench.common import BASELINE, entry_point, installed_python, interleaved_medians

ROOT = Path(__file__).resolve().parent.parent
RUNS = 21
REFERENCE_CALIBRATION_MS = 32.0  # REFERENCE §9: `import json, ssl, http.client`, whole process
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


# The least any Python program can do for one poll: what ood-k8s-psij needs of the standard library
# (json, socket, ssl), one TLS connection, the two GETs of a ready session, JSON out.  No config, no
# identity, no status rules.  Its time is this machine's floor for a Python poll.
FLOOR_POLL = r"""
import json, socket, ssl, sys
host, port, ca, token, pod, secret = sys.argv[1:7]
sock = ssl.create_default_context(cafile=ca).wrap_socket(socket.create_connection((host, int(port))),
                                                         server_hostname=host)
reader = sock.makefile("rb")
answers = []
for path in (pod, secret):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                 "Accept: application/json\r\n\r\n".encode())
    assert reader.readline().split()[1] == b"200"
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    answers.append(json.loads(reader.read(length)))
print(json.dumps(answers))
"""


def _nss_env(tmp: str) -> dict[str, str]:
    from tests.conftest import NSS_WRAPPER, TEST_GROUPS, TEST_USERS

    passwd, group = os.path.join(tmp, "passwd"), os.path.join(tmp, "group")
    with open(passwd, "w") as fh:
        fh.write("root:x:0:0:root:/root:/bin/bash\n")
        fh.writelines(f"{u.username}:x:{u.uid}:{u.gid}:{u.username}:{u.home}:/bin/bash\n" for u in TEST_USERS)
    with open(group, "w") as fh:
        fh.write("root:x:0:\n")
        fh.writelines(f"{u.username}:x:{u.gid}:\n" for u in TEST_USERS)
        fh.writelines(f"{n}:x:{g}:{','.join(u.username for u in TEST_USERS if n in u.groups)}\n"
                      for n, g in TEST_GROUPS.items())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update({"LD_PRELOAD": NSS_WRAPPER, "NSS_WRAPPER_PASSWD": passwd, "NSS_WRAPPER_GROUP": group})
    return env


def run(report: Callable[..., None]) -> None:
    import yaml

    from ood_k8s.config import Config
    from ood_k8s.core.kube import KubeClient
    from ood_k8s.sessions import objects, request, resolve
    from ood_k8s.sessions.adapter import Adapter
    from tests.conftest import ALICE
    from tests.fakekube.fake import FakeKube

    fk = FakeKube().start()
    tmp = tempfile.mkdtemp(prefix="bench-adapter-")
    try:
        client = KubeClient(fk.url, token=fk.token, ca_file=fk.ca_file, sleep=lambda s: None)
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
        # What `ood-k8s cluster render` applies: sessions name their priority class.
        client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                       "metadata": {"name": "ood-interactive"}, "value": 1000})
        cfg = Config()
        adapter = Adapter(cfg, ALICE, client)
        jupyter = {"content": "jupyter lab\n", "job_name": "sys/dashboard/sys/jupyter", "wall_time": 3600,
                   "native": {"profile": "gpu-t4", "container": {"port": 8888}}}

        # --- round trips per verb ---------------------------------------------------------------
        def trips(fn: Callable[[], object]) -> int:
            client.round_trips = 0
            fn()
            return client.round_trips

        job = ""

        def submit() -> None:
            nonlocal job
            job = adapter.submit(jupyter)

        n_submit = trips(submit)
        n_pending = trips(lambda: adapter.info(job))
        fk.set_pod_status("ood-alice", job, node_name="n1", phase="Running", podIP="10.0.7.9",
                          conditions=[{"type": "Ready", "status": "True"}],
                          containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x",
                                              "imageID": "", "state": {"running": {"startedAt":
                                                                                   "2025-01-01T00:00:00Z"}}}])
        n_ready = trips(lambda: adapter.info(job))
        n_all = trips(adapter.info_all)
        report("API round trips: submit", str(n_submit), "1 kubectl (4 objects)", "pod, secret, configmap")
        report("API round trips: info (pending / ready)", f"{n_pending} / {n_ready}", "3 kubectl processes",
               "pod + events / pod + secret")
        report("API round trips: info_all", str(n_all), "1 kubectl process")

        # --- one OOD poll as processes ------------------------------------------------------------
        # Two site configurations: the user's token from the token cache with cluster.server set (how
        # the hook sets users up), and a token kubeconfig (cluster.kubeconfig, as the incumbent uses).
        # Both files are root's, as in /etc/ood/config, so the first (root) run leaves their compiled
        # caches and the polls that follow read no YAML.  Processes run as root with --user alice.
        from ood_k8s.auth.tokencache import TokenCache, Tokens

        kubeconfig = fk.write_kubeconfig(os.path.join(tmp, "kubeconfig"))
        TokenCache(os.path.join(tmp, "tokens"), "alice").write(Tokens(
            fk.token, time.time() + 3600, "refresh", time.time() + 86400, "cognito", "https://issuer", "cid",
            "https://cognito-idp.us-east-1.amazonaws.com/"))
        sites = {
            "token cache": {"cluster": {"server": fk.url, "certificate_authority": fk.ca_file},
                            "users": {"token_cache_dir": os.path.join(tmp, "tokens")}},
            "kubeconfig": {"cluster": {"server": "", "kubeconfig": kubeconfig}},
        }
        env = _nss_env(tmp)
        shim = [*entry_point("ood-k8s-psij"), "/opt/ood/gems/ood_core/lib/ood_core/job/adapters/psij/get_info.py",
                f"--id={job}", "--executor=ood_k8s", "--user=alice"]
        polls = {}
        # With a baseline revision, its poll runs beside ours on its own copy of each site file: the
        # two versions' config caches carry different code marks and would otherwise replace each other.
        shims = {"": shim, **({BASELINE: [*entry_point("ood-k8s-psij", BASELINE), *shim[1:]]} if BASELINE else {})}
        for label, data in sites.items():
            for rev, argv in shims.items():
                site = os.path.join(tmp, f"ood_k8s-{label.replace(' ', '-')}{'-' + rev if rev else ''}.yml")
                with open(site, "w") as fh:
                    yaml.safe_dump(data, fh)
                site_env = {**env, "OOD_K8S_CONFIG": site}
                check = subprocess.run(argv, env=site_env, capture_output=True, text=True, cwd=tmp)
                if check.returncode != 0 or '"ACTIVE"' not in check.stdout:
                    raise RuntimeError(f"ood-k8s-psij {rev or 'of this checkout'} failed ({label}): "
                                       f"{check.stderr.strip()}")
                polls[(label, rev)] = (argv, site_env)

        def run(argv: list[str], run_env: dict[str, str]) -> Callable[[], None]:
            return lambda: subprocess.run(argv, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          cwd=tmp, check=True)

        def incumbent() -> None:
            for kind, name in (("pod", job), ("service", f"{job}-service"), ("secret", f"{job}-secret")):
                subprocess.run([KUBECTL, f"--kubeconfig={kubeconfig}", "--namespace=ood-alice", "-o", "json", "get",
                                kind, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

        host, port = fk.url.rsplit("/", 1)[-1].rsplit(":", 1)
        floor = [installed_python(), "-c", FLOOR_POLL, host, port, fk.ca_file, fk.token,
                 f"/api/v1/namespaces/ood-alice/pods/{job}", f"/api/v1/namespaces/ood-alice/secrets/{job}-secret"]
        contenders: dict[str, Callable[[], object]] = {
            f"{label}@{rev}": run(argv, site_env) for (label, rev), (argv, site_env) in polls.items()}
        contenders["floor"] = run(floor, env)
        contenders["pass"] = run([installed_python(), "-c", "pass"], env)
        contenders["calibration"] = run([installed_python(), "-c", "import json, ssl, http.client"], env)
        contenders["incumbent"] = incumbent
        ms = interleaved_medians(contenders, runs=RUNS)
        theirs_ms = ms["incumbent"]
        ours = [f"{label}@" for label in sites]
        for label in sites:
            now = ms[f"{label}@"]
            report(f"one OOD info poll, process start to JSON ({label})", f"{now:.0f} ms", f"{theirs_ms:.0f} ms",
                   f"{theirs_ms / now:.1f}x faster; target 60 ms")
            if BASELINE:
                before = ms[f"{label}@{BASELINE}"]
                report(f"  same, at {BASELINE} (same rounds)", f"{before:.0f} ms", "",
                       f"this checkout / {BASELINE}: {now / before:.2f}")
        report("  the floor of any Python poll (stdlib TLS + 2 GETs, no logic)", f"{ms['floor']:.0f} ms", "",
               f"ours above it: {min(ms[k] for k in ours) - ms['floor']:.0f} ms; "
               f"'python -c pass': {ms['pass']:.0f} ms")
        # REFERENCE §9 timed this very command at 32 ms on the machine kind the 60 ms target was set on.
        scale = REFERENCE_CALIBRATION_MS / ms["calibration"]
        report("  this machine vs REFERENCE §9 ('import json, ssl, http.client')", f"{ms['calibration']:.0f} ms",
               f"{REFERENCE_CALIBRATION_MS:.0f} ms", f"poll scaled to that machine: "
               f"{min(ms[k] for k in ours) * scale:.0f} ms")
        n_delete = trips(lambda: adapter.delete(job))
        report("API round trips: delete", str(n_delete), "4 kubectl processes", "children go by ownerReference")

        # --- manifests per second -----------------------------------------------------------------
        spec = resolve.resolve(request.Script(**jupyter), cfg, ALICE)
        count = 5000
        started = time.perf_counter()
        for i in range(count):
            objects.build(spec, f"jupyter-{i:08d}", "uid", {"password": "p"})
        built = count / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(count):
            objects.build(resolve.resolve(request.Script(**jupyter), cfg, ALICE), f"jupyter-{i:08d}", "uid",
                          {"password": "p"})
        resolved = count / (time.perf_counter() - started)
        report("job manifests built per second (in-process)", f"{built:,.0f}/s", "ERB + YAML per job",
               f"{resolved:,.0f}/s including checks and profile resolution")
    finally:
        fk.stop()
        shutil.rmtree(tmp, ignore_errors=True)

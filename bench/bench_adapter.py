"""The OOD hot path: one ``info`` poll through ood-k8s-psij vs OOD's built-in adapter; round trips; render rate.

Both sides poll the same fake API over loopback HTTPS with a token kubeconfig.  OOD's built-in
Kubernetes adapter spends three ``kubectl get -o json`` processes on one ``info`` (pod, service,
secret: ood_core kubernetes/batch.rb); ood-k8s-psij is one Python process doing at most two
requests.  Byte-compiled modules are allowed (as after ``pip install``), and each side is warmed up.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def _median_ms(fn: Callable[[], None], runs: int = RUNS, warm: int = 3) -> float:
    for _ in range(warm):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


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
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"LD_PRELOAD": NSS_WRAPPER, "NSS_WRAPPER_PASSWD": passwd, "NSS_WRAPPER_GROUP": group,
                "PYTHONPATH": str(ROOT)})
    return env


def run(report: Callable[..., None]) -> None:
    import yaml

    from ood_k8s import jobspec, objects
    from ood_k8s.adapter import Adapter
    from ood_k8s.config import Config
    from ood_k8s.kube import KubeClient
    from tests.conftest import ALICE
    from tests.fakekube.fake import FakeKube

    fk = FakeKube().start()
    tmp = tempfile.mkdtemp(prefix="bench-adapter-")
    try:
        client = KubeClient(fk.url, token=fk.token, ca_file=fk.ca_file, sleep=lambda s: None)
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
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
        from ood_k8s.tokencache import TokenCache, Tokens

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
        shim = [sys.executable, "-c", "import sys; from ood_k8s.psij_shim import main; sys.exit(main())",
                "/opt/ood/gems/ood_core/lib/ood_core/job/adapters/psij/get_info.py", f"--id={job}",
                "--executor=ood_k8s", "--user=alice"]
        polls = {}
        for label, data in sites.items():
            site = os.path.join(tmp, f"ood_k8s-{label.replace(' ', '-')}.yml")
            with open(site, "w") as fh:
                yaml.safe_dump(data, fh)
            site_env = {**env, "OOD_K8S_CONFIG": site}
            check = subprocess.run(shim, env=site_env, capture_output=True, text=True, cwd=tmp)
            if check.returncode != 0 or '"ACTIVE"' not in check.stdout:
                raise RuntimeError(f"ood-k8s-psij failed ({label}): {check.stderr.strip()}")
            polls[label] = site_env

        def ours(site_env: dict[str, str]) -> Callable[[], None]:
            return lambda: subprocess.run(shim, env=site_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          cwd=tmp, check=True)

        def incumbent() -> None:
            for kind, name in (("pod", job), ("service", f"{job}-service"), ("secret", f"{job}-secret")):
                subprocess.run([KUBECTL, f"--kubeconfig={kubeconfig}", "--namespace=ood-alice", "-o", "json", "get",
                                kind, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

        baseline = _median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, check=True))
        theirs_ms = _median_ms(incumbent)
        for label, site_env in polls.items():
            ours_ms = _median_ms(ours(site_env))
            report(f"one OOD info poll, process start to JSON ({label})", f"{ours_ms:.0f} ms", f"{theirs_ms:.0f} ms",
                   f"{theirs_ms / ours_ms:.1f}x faster; 'python -c pass' here: {baseline:.0f} ms; target 60 ms")
        n_delete = trips(lambda: adapter.delete(job))
        report("API round trips: delete", str(n_delete), "4 kubectl processes", "children go by ownerReference")

        # --- manifests per second -----------------------------------------------------------------
        spec = jobspec.resolve(jobspec.Script(**jupyter), cfg, ALICE)
        count = 5000
        started = time.perf_counter()
        for i in range(count):
            objects.build(spec, f"jupyter-{i:08d}", "uid", {"password": "p"})
        built = count / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(count):
            objects.build(jobspec.resolve(jobspec.Script(**jupyter), cfg, ALICE), f"jupyter-{i:08d}", "uid",
                          {"password": "p"})
        resolved = count / (time.perf_counter() - started)
        report("job manifests built per second (in-process)", f"{built:,.0f}/s", "ERB + YAML per job",
               f"{resolved:,.0f}/s including checks and profile resolution")
    finally:
        fk.stop()
        shutil.rmtree(tmp, ignore_errors=True)

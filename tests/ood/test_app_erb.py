"""The Jupyter Batch Connect app, rendered by Debian's real ruby the way Open OnDemand renders it.

tests/ood_harness.rb plays OOD's dashboard (form.yml.erb, submit.yml.erb, staging template/*.erb,
the "basic" Batch Connect job script, psij.rb building the PSI/J JSON, view.html.erb). The
end-to-end tests then do what OOD does next: run the ``ood-k8s-psij`` named in the generated
clusters.d file, exactly as psij.rb runs ``python3 <gem>/psij/submit.py EXECUTOR`` (JSON on stdin,
cwd = the session directory), into the fake API; run the pod that comes out the way the kubelet
would (its command, working directory and environment, with the job's Secret and downward-API
values); wait for connection.yml; render the Connect button and press it like a browser.
"""

from __future__ import annotations

import base64
import html.parser
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s import config
from ood_k8s.ood import files as oodconfig
from tests.conftest import NSS_WRAPPER
from tests.fakekube.seeds import PRIORITY_CLASS

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "apps" / "jupyter"
HARNESS = ROOT / "tests" / "ood_harness.rb"
HOOK = "/opt/ood-k8s/bin/ood-k8s-pre-hook"
ORIGIN = "https://ood.example.edu"
NODE = "ip-10-0-1-7.ec2.internal"  # where the session's pod runs
UID, GID = 20001, 20001


def ruby(request: dict[str, Any], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    out = subprocess.run(["ruby", str(HARNESS)], input=json.dumps(request), capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a portal: site config, generated OOD files, a user, the fake API -------------------------------


@dataclass
class Site:
    root: Path
    home: Path
    etc: Path
    dash: Path
    config: Path
    psij: str
    env: dict[str, str]
    fk: Any

    @property
    def cluster_file(self) -> Path:
        return self.etc / "clusters.d" / "kubernetes.yml"

    @property
    def form_env(self) -> dict[str, str]:
        return dict(os.environ, OOD_K8S_FORM_OPTIONS=str(self.etc / "ood_k8s" / "form_options.json"))


def write_site(root: Path, fk: Any, extra: dict[str, Any] | None = None) -> Site:
    home = root / "home" / "alice"
    home.mkdir(parents=True)
    (root / "dashboard").mkdir()
    (root / "etc").mkdir()
    passwd = root / "passwd"
    passwd.write_text(f"root:x:0:0:root:/root:/bin/bash\nalice:x:{UID}:{GID}:alice:{home}:/bin/bash\n")
    group = root / "group"
    group.write_text(f"root:x:0:\nalice:x:{GID}:\nstudents:x:30001:alice\n")
    kubeconfig = fk.write_kubeconfig(str(root / "kubeconfig"))
    site_cfg: dict[str, Any] = {
        "cluster": {"server": "", "kubeconfig": kubeconfig},
        "portal": {"url": ORIGIN + "/pun/sys/dashboard", "submit_host": "portal1"},
        "storage": {"mode": "pvc"},
    }
    for key, value in (extra or {}).items():
        if isinstance(value, dict):
            site_cfg.setdefault(key, {}).update(value)
        else:
            site_cfg[key] = value
    config_path = root / "ood_k8s.yml"
    config_path.write_text(yaml.safe_dump(site_cfg))
    # What an admin installs: the ood-k8s-psij command (here: this checkout, this interpreter).
    psij = root / "bin" / "ood-k8s-psij"
    psij.parent.mkdir()
    psij.write_text(f'#!/bin/sh\nexec {sys.executable} -m ood_k8s.ood.psij_shim "$@"\n')
    psij.chmod(0o755)
    env = dict(os.environ, LD_PRELOAD=NSS_WRAPPER, NSS_WRAPPER_PASSWD=str(passwd), NSS_WRAPPER_GROUP=str(group),
               OOD_K8S_CONFIG=str(config_path), PYTHONPATH=str(ROOT), HOME=str(home))
    # 'ood-k8s ood config --out etc' (its command line is tested in test_oodconfig.py)
    cfg = config.load(str(config_path))
    oodconfig.write(oodconfig.files(cfg, str(psij), HOOK), str(root / "etc"))
    fk.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
    fk.seed(PRIORITY_CLASS)  # what 'cluster render' makes: sessions run at ood-interactive (issue 11)
    return Site(root=root, home=home, etc=root / "etc", dash=root / "dashboard", config=config_path, psij=str(psij),
                env=env, fk=fk)


@pytest.fixture
def site_root() -> Iterator[Path]:
    """A directory the test user's uid can traverse (pytest's own are root's alone): ood-k8s-psij,
    run by root for alice, writes into her session directories as alice."""
    top = Path(tempfile.mkdtemp(prefix="ood-k8s-site-"))
    os.chmod(top, 0o711)  # noqa: S103 - traversable, not listable
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def site(request: pytest.FixtureRequest, site_root: Path, fake_kube: Any) -> Site:
    """A portal; parametrize indirectly with site settings ({"cluster": {...}}) to change them."""
    if not os.path.exists(NSS_WRAPPER):
        pytest.fail(f"{NSS_WRAPPER} missing: install Debian's libnss-wrapper")
    return write_site(site_root, fake_kube, getattr(request, "param", None))


# --- the dashboard's side -------------------------------------------------------------------------------


def render_form(site: Site, **env: str) -> dict[str, Any]:
    return ruby({"op": "form", "app": str(APP)}, env={**site.form_env, **env})


def answers_for(form: dict[str, Any], chosen: str, **overrides: str) -> dict[str, str]:
    """What the browser posts after the student picks the profile ``chosen``: its data-set-* values."""
    attrs = form["attributes"]
    option = next(o for o in attrs["profile"]["options"] if o[1] == chosen)
    data = option[2]
    answers = {"profile": chosen, "bc_num_hours": "2", "cpu": str(data["data-set-cpu"]),
               "memory": str(data["data-set-memory"]), "gpus": str(data["data-set-gpus"]),
               "jupyter_port": str(attrs["jupyter_port"]), "portal_origin": str(attrs["portal_origin"]),
               "cluster": form["cluster"]}
    answers.update(overrides)
    return answers


def submit_request(site: Site, answers: dict[str, str], session_id: str = "4a0e2f6c-0d1e-4c55-9f1e-5b1f0e7e9c01"):
    staged = site.home / "ondemand/data/sys/dashboard/batch_connect/sys/jupyter/output" / session_id
    return ruby({"op": "submit", "app": str(APP), "answers": answers, "staged_root": str(staged),
                 "cluster_file": str(site.cluster_file), "session_id": session_id, "cluster_id": "kubernetes"},
                env=dict(os.environ, HOME=str(site.home)), cwd=site.dash)


def psij(site: Site, argv: list[str], stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command OOD would, as configured in the generated clusters.d file.

    The test runs as root, and this interpreter lives where the test user cannot run it, so the
    shim is told the user with its admin option instead of being started as that user."""
    cluster = yaml.safe_load(site.cluster_file.read_text())
    python3 = cluster["v2"]["job"]["bin_overrides"]["python3"]
    return subprocess.run([python3, *argv, "--user", "alice"], input=stdin, capture_output=True, text=True,
                          env=site.env, cwd=cwd, timeout=60)


def as_the_user(req: dict[str, Any]) -> None:
    """The dashboard runs as the user: the session directory and ~/ood_tmp/run.sh are theirs."""
    staged = Path(req["psij_chdir"])
    for path in [staged, *staged.rglob("*"), Path(req["run_sh"])]:
        os.chown(path, UID, GID, follow_symlinks=False)


def submit(site: Site, answers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    req = submit_request(site, answers)
    assert "error" not in req, req.get("error")
    as_the_user(req)
    done = psij(site, req["psij_argv"], req["psij_stdin"], cwd=Path(req["psij_chdir"]))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"jupyter-[0-9a-z]{8}", done.stdout), done.stdout  # all of stdout is the job id
    return done.stdout, req


def get_info(site: Site, job_id: str) -> list[dict[str, Any]]:
    done = psij(site, [f"{_gem()}/get_info.py", f"--id={job_id}", "--executor=ood_k8s"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _gem() -> str:
    return "/opt/ood/ondemand/root/usr/share/gems/3.3/ondemand/4.0.0/gems/ood_core/lib/ood_core/job/adapters/psij"


# --- the kubelet's side: run the pod's container here ---------------------------------------------------

STUB_JUPYTER = r'''#!@PYTHON@
"""`jupyter lab` in a session pod, stood in for: loads the app's jupyter_config.py as Jupyter does
(with jupyter_server.auth.passwd from ./stubs) and answers its login form like jupyter_server:
403 unless the _xsrf field equals the _xsrf cookie, 401 unless the password matches."""
import http.cookies, http.server, json, os, sys, types, urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs"))
from jupyter_server.auth import passwd

class Config:
    def __init__(self):
        self.sections = {}
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.sections.setdefault(name, types.SimpleNamespace())

assert sys.argv[1] == "lab", sys.argv
path = [a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--config=")][0]
c = Config()
for _ in range(2):  # Jupyter may load a config file more than once
    exec(compile(open(path).read(), path, "exec"), {"get_config": lambda: c, "__name__": "config"})
record = {name: vars(ns) for name, ns in c.sections.items()}
record["password_left_in_environment"] = "OOD_K8S_JUPYTER_PASSWORD" in os.environ
with open("stub-jupyter.json", "w") as fh:
    json.dump(record, fh)
app = c.ServerApp

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != app.base_url + "login":
            return self.answer(404)
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        cookies = http.cookies.SimpleCookie(self.headers.get("Cookie", ""))
        xsrf = form.get("_xsrf", [""])[0]
        if not xsrf or "_xsrf" not in cookies or cookies["_xsrf"].value != xsrf:
            return self.answer(403)
        if passwd(form.get("password", [""])[0]) != c.PasswordIdentityProvider.hashed_password:
            return self.answer(401)
        nxt = urllib.parse.parse_qs(url.query).get("next", [app.base_url])[0]
        self.answer(302, {"Location": nxt, "Set-Cookie": "session=ok; Path=" + app.base_url})
    def answer(self, code, headers=()):
        self.send_response(code)
        for k, v in dict(headers).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

print("stub JupyterLab listening on", app.port, flush=True)
print("stub JupyterLab: a warning on stderr", file=sys.stderr, flush=True)
http.server.HTTPServer((app.ip, app.port), Handler).serve_forever()
'''

STUB_PASSWD = '''import hashlib
def passwd(password):
    return "stub-sha256:" + hashlib.sha256(password.encode()).hexdigest()
'''

STUB_NVIDIA_SMI = '''#!/bin/sh
echo "GPU 0: Tesla T4 (UUID: GPU-5a1b2c3d-stub)"
'''


def stub_bin(root: Path, *, real_jupyter: bool = False) -> Path:
    bin_dir = root / "image-bin"
    (bin_dir / "stubs" / "jupyter_server").mkdir(parents=True)
    (bin_dir / "stubs" / "jupyter_server" / "__init__.py").write_text("")
    (bin_dir / "stubs" / "jupyter_server" / "auth.py").write_text(STUB_PASSWD)
    if real_jupyter:
        # Tests run as root; a session pod never does (runAsNonRoot), so only here JupyterLab
        # needs its --allow-root.
        text = f'#!/bin/sh\nexec {sys.executable} -m jupyter "$@" --allow-root\n'
    else:
        text = STUB_JUPYTER.replace("@PYTHON@", sys.executable)
    (bin_dir / "jupyter").write_text(text)
    (bin_dir / "nvidia-smi").write_text(STUB_NVIDIA_SMI)
    for name in ("jupyter", "nvidia-smi"):
        (bin_dir / name).chmod(0o755)
    return bin_dir


def pod_env(fk: Any, pod: dict[str, Any], container: dict[str, Any], pod_ip: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it (downward API, secret references)."""
    ns = pod["metadata"]["namespace"]
    fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns, "status.podIP": pod_ip,
              "status.hostIP": pod_ip, "spec.nodeName": NODE}
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[item["name"]] = fields[source["fieldRef"]["fieldPath"]]
        else:
            ref = source["secretKeyRef"]
            secret = fk.get("secrets", ref["name"], ns)
            env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return env


@pytest.fixture
def kubelet() -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def run(site: Site, job_id: str, bin_dir: Path) -> subprocess.Popen[bytes]:
        pod = site.fk.get("pods", job_id, "ood-alice")
        ctr = pod["spec"]["containers"][0]
        files = site.fk.get("configmaps", f"{job_id}-files", "ood-alice")["data"]
        script = site.root / "ood-script.sh"
        script.write_text(files["script.sh"])
        command = [str(script) if arg == "/ood/script.sh" else arg for arg in ctr["command"]]
        env = pod_env(site.fk, pod, ctr, "127.0.0.1")
        env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
        env["LANG"] = "C.UTF-8"
        proc = subprocess.Popen(command, cwd=ctr["workingDir"], env=env, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc

    yield run
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path, limit: float) -> None:
    """Poll a real process's result (not a fixed delay): until ``path`` exists, it dies or time is up."""
    deadline = time.monotonic() + limit
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{path.name} never appeared; output.log:\n{log.read_text() if log.exists() else ''}")
        time.sleep(0.05)


class ConnectButton(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str] = {}
        self.inputs: dict[str, str] = {}
        self.forms = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms += 1
            self.form = values
        elif tag == "input":
            self.inputs[values["name"]] = values["value"]


def parse_view(html_text: str) -> tuple[ConnectButton, str]:
    button = ConnectButton()
    button.feed(html_text)
    assert button.forms == 1
    m = re.fullmatch(r"document\.cookie = (\".*\") \+ \(location\.protocol === 'https:' \? '; Secure' : ''\);",
                     button.form["onsubmit"])
    assert m, button.form["onsubmit"]
    return button, json.loads(m.group(1))


def press_connect(html_text: str, port: int, *, with_cookie: bool = True) -> tuple[int, dict[str, str]]:
    """What a browser does with the Connect button: run onsubmit (set the cookie), POST the form."""
    button, cookie = parse_view(html_text)
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    path = dict(a.split("=", 1) for a in attributes if "=" in a)["path"]
    action = urllib.parse.urlsplit(button.form["action"])
    assert action.path.startswith(path)  # the browser sends the cookie with this request
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": ORIGIN}
    if with_cookie:
        headers["Cookie"] = name_value
    body = urllib.parse.urlencode(button.inputs)
    # The portal's proxy forwards /node/<host>/<port>/... unchanged to <host>:<port>.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(button.form["method"].upper(), f"{action.path}?{action.query}", body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    result = (resp.status, {k.lower(): v for k, v in resp.getheaders()})
    conn.close()
    return result


# --- form.yml.erb --------------------------------------------------------------------------------------


def test_form_offers_the_site_profiles_with_their_bounds(site):
    form = render_form(site)["form"]
    # The test runs as root, who is not in gpu-users: the A10G profile is not offered.
    assert form == {
        "title": "Jupyter",
        "description": "JupyterLab on the Kubernetes cluster, on CPUs or on GPUs, with your home directory.",
        "cluster": "kubernetes",
        "form": ["profile", "bc_num_hours", "cpu", "memory", "gpus", "jupyter_port", "portal_origin"],
        "attributes": {
            "profile": {
                "widget": "select", "label": "Session type",
                "help": "CPU cores, memory and GPUs below follow the limits of the session type you choose.",
                "value": "cpu",
                "options": [
                    ["CPU only \u2014 1-8 CPUs, 1-32 GiB memory", "cpu", {
                        "data-min-cpu": 1, "data-max-cpu": 8, "data-set-cpu": 1, "data-step-cpu": 1,
                        "data-min-memory": 1, "data-max-memory": 32, "data-set-memory": 4, "data-step-memory": 1,
                        "data-min-gpus": 0, "data-max-gpus": 0, "data-set-gpus": 0, "data-step-gpus": 1,
                        "data-hide-gpus": True}],
                    ["1 NVIDIA T4 (16 GB) \u2014 1-4 CPUs, 1-16 GiB memory, 1 GPU", "gpu-t4", {
                        "data-min-cpu": 1, "data-max-cpu": 4, "data-set-cpu": 4, "data-step-cpu": 1,
                        "data-min-memory": 1, "data-max-memory": 16, "data-set-memory": 16, "data-step-memory": 1,
                        "data-min-gpus": 1, "data-max-gpus": 1, "data-set-gpus": 1, "data-step-gpus": 1,
                        "data-hide-gpus": True}],
                ],
            },
            "bc_num_hours": {"widget": "number_field", "label": "Hours", "value": 1, "min": 1, "max": 8, "step": 1,
                             "required": True,
                             "help": "The session ends after this many hours (at most 8); save your work before."},
            "cpu": {"widget": "number_field", "label": "CPU cores", "value": 1, "min": 1, "max": 8, "step": 1,
                    "required": True},
            "memory": {"widget": "number_field", "label": "Memory (GiB)", "value": 4, "min": 1, "max": 32, "step": 1,
                       "required": True},
            "gpus": {"widget": "number_field", "label": "GPUs", "value": 0, "min": 0, "max": 0, "step": 1,
                     "required": True, "help": "Each GPU is yours alone for the whole session."},
            "jupyter_port": 8888,
            "portal_origin": ORIGIN,
        },
    }


def test_form_follows_the_users_groups_and_hostile_site_text(tmp_path, fake_kube):
    hostile = ('quote " \' newline\n- item: {x} # not a comment &anchor *alias !!python/object \u2028 \u0085 '
               '\x7f \ufeff \u00e9 \U0001f600')
    profiles = [
        {"name": "mine", "image": "img", "description": hostile, "groups": ["root"]},
        {"name": "theirs", "image": "img", "groups": ["staff"]},
        {"name": "open", "image": "img"},
    ]
    site = write_site(tmp_path, fake_kube, {"profiles": profiles, "jobs": {"default_profile": "theirs"}})
    form = render_form(site)["form"]
    options = form["attributes"]["profile"]["options"]
    assert [o[1] for o in options] == ["mine", "open"]
    assert options[0][0] == hostile + " \u2014 1-4 CPUs, 1-16 GiB memory, for root"
    # The site's default is not offered to this user: the first offered one is preselected.
    assert form["attributes"]["profile"]["value"] == "mine"


def test_form_refuses_users_outside_allowed_groups(tmp_path, fake_kube):
    site = write_site(tmp_path, fake_kube, {"users": {"allowed_groups": ["students", "staff"]}})
    form = render_form(site)["form"]
    assert form["attributes"]["profile"]["options"] == []
    assert form["form_header"] == ("**Your account may not start sessions on this cluster; ask your instructor or "
                                   "the help desk to add you to one of: students, staff.**")


def test_form_without_the_options_file_tells_the_admin(site, tmp_path):
    missing = tmp_path / "nowhere.json"
    form = render_form(site, OOD_K8S_FORM_OPTIONS=str(missing), OOD_K8S_BIN=str(tmp_path / "no-ood-k8s"))["form"]
    assert form["form_header"] == (f"**This app is not set up yet (No such file or directory @ rb_sysopen - {missing})."
                                   " Administrators: run 'ood-k8s ood config --out /etc/ood/config'.**")
    assert form["attributes"]["profile"]["options"] == []
    assert form["cluster"] == "kubernetes"


def test_form_asks_ood_k8s_when_the_file_is_missing(site, tmp_path):
    launcher = tmp_path / "ood-k8s"
    launcher.write_text(f'#!/bin/sh\nOOD_K8S_CONFIG={site.config} PYTHONPATH={ROOT} exec {sys.executable} '
                        '-m ood_k8s "$@"\n')
    launcher.chmod(0o755)
    form = render_form(site, OOD_K8S_FORM_OPTIONS=str(tmp_path / "nowhere.json"), OOD_K8S_BIN=str(launcher))["form"]
    assert "form_header" not in form
    assert [o[1] for o in form["attributes"]["profile"]["options"]] == ["cpu", "gpu-t4"]


def test_form_refuses_options_of_another_version(site, tmp_path):
    other = tmp_path / "options.json"
    other.write_text(json.dumps({"version": 99, "profiles": []}))
    form = render_form(site, OOD_K8S_FORM_OPTIONS=str(other))["form"]
    assert form["form_header"].startswith(f"**{other} was written by another version of ood-k8s.")


# --- submit.yml.erb ----------------------------------------------------------------------------------


def test_submit_yml_gives_the_psij_adapter_native_tokens(site):
    req = submit_request(site, answers_for(render_form(site)["form"], "gpu-t4"))
    assert req["submit"] == {
        "batch_connect": {"template": "basic", "conn_params": ["csrf_token"]},
        "script": {"job_name": "jupyter", "wall_time": 7200,
                   "native": ["--profile", "gpu-t4", "--cpu", "4", "--memory", "16Gi", "--gpus", "1",
                              "--port", "8888"]},
    }
    staged = req["psij_chdir"]
    assert json.loads(req["psij_stdin"]) == {
        "directory": staged,
        "name": "jupyter",
        "executable": "~/ood_tmp/run.sh",
        "stdout_path": f"{staged}/output.log",
        "stderr_path": f"{site.dash}/stderr.txt",
        "attributes": {"duration": 7200, "custom_attributes": {"profile": "gpu-t4", "cpu": "4", "memory": "16Gi",
                                                                "gpus": "1", "port": "8888"}},
        "resources": {"__version": 1},
    }


@pytest.mark.parametrize(("field", "value", "message"), [
    ("bc_num_hours", "0", "Hours: got 0, expected at least 1"),
    ("bc_num_hours", "1.5", 'Hours: got "1.5", expected a whole number of hours'),
    ("bc_num_hours", "", 'Hours: got "", expected a whole number of hours'),
    ("profile", 'cpu"\nscript: {native: [x]}',
     'Session type: got "cpu\\"\\nscript: {native: [x]}", expected one of the session types offered'),
    ("profile", "--gpus", 'Session type: got "--gpus", expected one of the session types offered'),
    ("cpu", "-1", 'CPU cores: got "-1", expected a number of cores such as 2'),
    ("cpu", "1e3", 'CPU cores: got "1e3", expected a number of cores such as 2'),
    ("memory", "8Gi", 'Memory (GiB): got "8Gi", expected a number of GiB such as 8'),
    ("gpus", "1 --image evil", 'GPUs: got "1 --image evil", expected a whole number of GPUs'),
    ("jupyter_port", "22; id", 'port: got "22; id", expected a port number'),
])
def test_submit_yml_refuses_bad_answers_in_one_line(site, field, value, message):
    answers = {"profile": "cpu", "bc_num_hours": "1", "cpu": "1", "memory": "4", "gpus": "0", "jupyter_port": "8888",
               "portal_origin": ORIGIN, field: value}
    assert submit_request(site, answers) == {"error": f"ArgumentError: {message}"}
    assert "\n" not in message


# --- the staged templates ----------------------------------------------------------------------------


def test_staged_scripts_are_valid_bash_and_gpu_only_where_asked(site):
    form = render_form(site)["form"]
    for profile, gpu in (("cpu", False), ("gpu-t4", True)):
        req = submit_request(site, answers_for(form, profile), session_id=f"s-{profile}")
        staged = Path(req["psij_chdir"])
        # The staged templates, and the job script and options the dashboard records before it submits.
        assert sorted(p.name for p in staged.iterdir()) == ["after.sh", "before.sh", "job_script_content.sh",
                                                             "job_script_options.json", "jupyter_config.py",
                                                             "script.sh"]
        assert os.access(staged / "script.sh", os.X_OK)
        for name in ("before.sh", "after.sh", "script.sh", "job_script_content.sh"):
            subprocess.run(["bash", "-n", str(staged / name)], check=True)
        subprocess.run(["bash", "-n", req["run_sh"]], check=True)
        assert ("nvidia-smi" in (staged / "script.sh").read_text()) is gpu


def test_before_sh_keeps_hostile_context_values_data(site):
    hostile = "https://x'\"; touch /tmp/pwned-ood-k8s; echo $(id) `id` \\ \n"
    answers = answers_for(render_form(site)["form"], "cpu", portal_origin=hostile)
    req = submit_request(site, answers)
    staged = Path(req["psij_chdir"])
    out = subprocess.run(["bash", "-c", 'create_passwd () { echo pw; }; source before.sh; '
                                        'printf %s "$OOD_K8S_PORTAL_ORIGIN"'],
                         cwd=staged, capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
    assert out.stdout == hostile
    assert not Path("/tmp/pwned-ood-k8s").exists()


# --- view.html.erb ----------------------------------------------------------------------------------


def test_view_escapes_a_hostile_connection_file(site, tmp_path):
    conn = tmp_path / "connection.yml"
    conn.write_text(yaml.safe_dump({"host": '10.0.0.1"><script>alert(1)</script>', "port": 8888,
                                    "password": "p\"w'<&>", "csrf_token": "ab'c\";alert(2);//"}))
    text = ruby({"op": "view", "app": str(APP), "connection_file": str(conn)})["html"]
    assert "<script" not in text
    button, cookie = parse_view(text)
    base = "/node/10.0.0.1%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E/8888/"
    assert button.form["action"] == f"{base}login?next={urllib.parse.quote(base + 'lab', safe='')}"
    assert button.inputs == {"_xsrf": "abcalert2", "password": "p\"w'<&>"}
    assert cookie == f"_xsrf=abcalert2; path={base}; SameSite=Strict"


# --- end to end: a GPU and a CPU session through ood-k8s-psij into the fake API ------------------------------


NODEPORT = {"cluster": {"connection": "nodeport", "nodeport_host": "node_name"}}


@pytest.mark.parametrize(("profile", "site"), [("gpu-t4", None), ("cpu", None), ("cpu", NODEPORT)],
                         ids=["gpu-t4", "cpu", "cpu-nodeport"], indirect=["site"])
def test_session_end_to_end(site, kubelet, profile):
    fk = site.fk
    port = free_port()
    answers = answers_for(render_form(site)["form"], profile, jupyter_port=str(port))
    job_id, req = submit(site, answers)
    staged = Path(req["psij_chdir"])
    # Where the portal's proxy connects: the pod's IP and JupyterLab's port, or (nodeport) the pod's
    # node and the Service's node port, which kube-proxy forwards to JupyterLab's port.
    nodeport = yaml.safe_load(site.config.read_text()).get("cluster", {}).get("connection") == "nodeport"
    if nodeport:
        node_port = fk.get("services", f"{job_id}-svc", "ood-alice")["spec"]["ports"][0]["nodePort"]
        host, proxied_port = NODE, node_port
    else:
        assert fk.list("services", "ood-alice") == []
        host, proxied_port = "127.0.0.1", port
    base = f"/node/{host}/{proxied_port}/"

    # The pod that comes out.
    pod = fk.get("pods", job_id, "ood-alice")
    ctr = pod["spec"]["containers"][0]
    limits = ctr["resources"]["limits"]
    tolerations = pod["spec"].get("tolerations", [])
    if profile == "gpu-t4":
        assert ctr["image"] == "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20"
        assert limits == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
        assert pod["spec"]["nodeSelector"] == {"karpenter.sh/nodepool": "gpu-t4"}
    else:
        assert ctr["image"] == "quay.io/jupyter/scipy-notebook:2025-10-20"
        assert limits == {"cpu": "1", "memory": "4Gi"}
        assert not any("nvidia" in json.dumps(t) for t in tolerations)
        assert "nodeSelector" not in pod["spec"]
    # issue 15: the wall time asked for is an annotation too; without the agent's lifecycle it is the pod's deadline
    assert pod["spec"]["activeDeadlineSeconds"] == 7200
    assert pod["metadata"]["annotations"]["ood-k8s.io/walltime"] == "7200"
    assert pod["spec"]["securityContext"]["runAsUser"] == UID
    assert ctr["workingDir"] == str(staged)
    assert ctr["ports"] == [{"name": "app", "containerPort": port, "protocol": "TCP"}]
    assert ctr["readinessProbe"]["tcpSocket"] == {"port": port}
    files = fk.get("configmaps", f"{job_id}-files", "ood-alice")["data"]
    assert files["script.sh"] == Path(req["run_sh"]).read_text()  # the Batch Connect job script, as OOD wrote it
    assert files["script.sh"].startswith(f"#!/bin/bash\n\ncd {staged}\n")

    # OOD polls: queued until the app answers.
    assert [(i["native_id"], i["current_state"]) for i in get_info(site, job_id)] == [(job_id, "QUEUED")]

    # The kubelet starts the container: OOD's job script, before.sh, script.sh, after.sh.
    proc = kubelet(site, job_id, stub_bin(site.root))
    wait_for_file(staged / "connection.yml", proc, staged / "output.log", limit=60)
    conn = yaml.safe_load((staged / "connection.yml").read_text())
    password = base64.b64decode(fk.get("secrets", f"{job_id}-secret", "ood-alice")["data"]["password"]).decode()
    assert conn == {"host": host, "port": proxied_port, "password": password, "csrf_token": conn["csrf_token"]}
    assert re.fullmatch(r"[A-Za-z0-9]{32}", conn["csrf_token"])
    assert oct((staged / "connection.yml").stat().st_mode & 0o777) == "0o600"
    jupyter = json.loads((staged / "stub-jupyter.json").read_text())
    assert jupyter["ServerApp"] == {
        "ip": "0.0.0.0", "port": port, "port_retries": 0, "base_url": base,
        "root_dir": str(site.home), "open_browser": False, "allow_remote_access": True, "trust_xheaders": True,
        "allow_origin": ORIGIN, "terminado_settings": {"shell_command": ["/bin/bash", "-l"]}}
    assert jupyter["password_left_in_environment"] is False
    log = (staged / "output.log").read_text()
    assert ("GPU 0: Tesla T4" in log) is (profile == "gpu-t4")
    assert f"JupyterLab is listening on port {port}: {base}" in log
    # psij.rb asked for stderr under the dashboard's working directory, which no pod sees: it joins output.log.
    assert "stub JupyterLab: a warning on stderr" in log

    # The pod is ready: OOD sees it running, and the Connect button logs the student in.
    fk.set_pod_status("ood-alice", job_id, node_name=NODE, phase="Running",
                      podIP="127.0.0.1", hostIP="10.0.1.7",
                      conditions=[{"type": "Ready", "status": "True"}],
                      containerStatuses=[{"name": ctr["name"], "ready": True, "restartCount": 0, "image": ctr["image"],
                                          "imageID": "", "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}])
    [info] = get_info(site, job_id)
    assert (info["native_id"], info["current_state"], info["name"]) == (job_id, "ACTIVE", "jupyter")
    html_text = ruby({"op": "view", "app": str(APP), "connection_file": str(staged / "connection.yml")})["html"]
    status, headers = press_connect(html_text, port)
    assert (status, headers["location"]) == (302, f"{base}lab")
    assert press_connect(html_text, port, with_cookie=False)[0] == 403  # XSRF protection stays on

    # Delete: one call; OOD then sees the session end.
    done = psij(site, [f"{_gem()}/delete.py", f"--id={job_id}", "--executor=ood_k8s"])
    assert (done.returncode, done.stdout) == (0, "")
    fk.finish_deletion("pods", "ood-alice", job_id)
    assert get_info(site, job_id) == []


def test_real_jupyterlab_logs_the_student_in(site, kubelet):
    """The same session with the real JupyterLab (slow: it imports for several seconds)."""
    pytest.importorskip("jupyterlab", reason="pip install jupyterlab (test extra) to run the real server")
    port = free_port()
    job_id, req = submit(site, answers_for(render_form(site)["form"], "cpu", jupyter_port=str(port)))
    staged = Path(req["psij_chdir"])
    proc = kubelet(site, job_id, stub_bin(site.root, real_jupyter=True))
    wait_for_file(staged / "connection.yml", proc, staged / "output.log", limit=180)
    html_text = ruby({"op": "view", "app": str(APP), "connection_file": str(staged / "connection.yml")})["html"]
    assert press_connect(html_text, port, with_cookie=False)[0] == 403
    status, headers = press_connect(html_text, port)
    assert (status, headers["location"]) == (302, f"/node/127.0.0.1/{port}/lab")
    session_cookie = headers["set-cookie"].split(";")[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", f"/node/127.0.0.1/{port}/api/kernelspecs", headers={"Cookie": session_cookie})
    resp = conn.getresponse()
    assert resp.status == 200 and "kernelspecs" in json.loads(resp.read())
    conn.request("GET", f"/node/127.0.0.1/{port}/api/kernelspecs")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 403  # nobody else gets in
    conn.close()

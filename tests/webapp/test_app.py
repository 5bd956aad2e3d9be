"""The sessions app without a browser: its pure parts, the WSGI app in-process against the fake API, the
agent's ``course`` answer, the files ``ood config --out`` installs, and the Jupyter cards' links here."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ood_k8s import cli
from ood_k8s.agent import server
from ood_k8s.config import Config
from ood_k8s.core.errors import ConfigError
from ood_k8s.core.kube import KubeClient
from ood_k8s.ood import files as oodconfig
from ood_k8s.webapp import chart, rows
from ood_k8s.webapp.app import CSRF_COOKIE, App
from ood_k8s.webapp.install import APP_DIR, MANIFEST, app_files
from tests.conftest import ALICE, BOB, ROOT
from tests.webapp.conftest import CAROL, COURSE, Site, scratch_site

NOW = 1_800_000_000.0


# --- pure parts ---------------------------------------------------------------------------------------


def test_a_row_says_state_reason_and_time_left() -> None:
    running = {"id": "j-1", "status": "running", "job_name": "sys/dashboard/sys/jupyter", "job_owner": "alice",
               "gpus": 1, "native": {"reason": "ready", "profile": "gpu-t4", "ood_connection_info": {"password": "pw"}},
               "deadline": NOW + 3000, "ceiling": NOW + 6600, "time_left": 3000, "submission_time": NOW - 700}
    r = rows.row(running, NOW)
    assert (r.state, r.name, r.profile, r.time_left, r.deadline, r.ceiling) == \
        ("Running", "jupyter", "gpu-t4", 3000, NOW + 3000, NOW + 6600)
    assert "pw" not in repr(r), "a row never carries connection info"
    # Without the lifecycle's fields: its start plus the pod's limit.
    old = {**running, "deadline": None, "time_left": None, "dispatch_time": NOW - 600, "wallclock_limit": 3600}
    assert rows.row(old, NOW).time_left == 3000
    ended = rows.row({"id": "j-2", "status": "completed", "native": {"reason": "wall time reached",
                                                                     "disruption": "PreemptionByScheduler"}}, NOW)
    assert ended.ended and ended.time_left is None and "reclaimed" in ended.reason
    assert [x.id for x in rows.rows([{"id": "j-2", "status": "completed", "native": {}}, running], NOW)] == \
        ["j-1", "j-2"], "live sessions first"
    assert (rows.duration(6599), rows.duration(59), rows.duration(None)) == ("1h 49m", "under a minute", "—")


def test_the_csv_is_safe_in_a_spreadsheet() -> None:
    evil = {"id": "j-1", "status": "queued", "job_owner": "=HYPERLINK(\"http://x\")",
            "native": {"reason": "@SUM(1)", "profile": "cpu"}, "submission_time": NOW}
    text = rows.to_csv([rows.row(evil, NOW)])
    assert text.splitlines()[1].startswith("\"'=HYPERLINK") and ",'@SUM(1)," in text


def test_the_chart_draws_each_budget_to_its_own_scale() -> None:
    drawn = chart.chart([{"course": "cs101", "used_gpu_hours": 2.5, "limit": 10, "left": 7.5},
                         {"course": "cs102", "used_gpu_hours": 12, "limit": 10, "left": 0},
                         {"course": "lab", "used_gpu_hours": 4, "limit": 0, "left": 0}])
    span = chart.WIDTH - chart.LABEL - 8
    assert [b.used_width for b in drawn.bars] == [span / 4, span, span]
    assert [b.over for b in drawn.bars] == [False, True, False]
    assert drawn.bars[0].text == "cs101: 2.5 of 10 GPU-hours used, 7.5 left"
    assert drawn.bars[2].text == "lab: 4 GPU-hours used, no limit"
    assert drawn.bars[1].y > drawn.bars[0].y and drawn.height > drawn.bars[2].y + drawn.bar_height


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_text_colours_meet_wcag_aa_contrast() -> None:
    css = (ROOT / "templates" / "webapp" / "base.html.j2").read_text()
    var = dict(re.findall(r"--([a-z]+): (#[0-9a-f]{6})", css))
    pairs = [(var["ink"], var["bg"]), (var["muted"], var["bg"]), (var["link"], var["bg"]), (var["ok"], var["bg"]),
             (var["warn"], var["bg"]), ("#ffffff", var["accent"]), ("#ffffff", "#083b86"), ("#ffffff", "#14213d"),
             ("#dfe6f3", "#14213d"), ("#14213d", "#ffffff"), (var["ink"], var["soft"]), (var["muted"], var["soft"]),
             (var["ink"], "#fff4e5"), (var["ink"], "#fdecec"), (var["ink"], "#eaf6ec")]
    for fg, bg in pairs:
        assert fg in css and bg in css, (fg, bg)
        assert contrast(fg, bg) >= 4.5, (fg, bg, contrast(fg, bg))


# --- the WSGI app in-process ------------------------------------------------------------------------------


def call(app: App, path: str, method: str = "GET", body: bytes = b"", **environ: str) -> tuple[int, str, Any, str]:
    """One request: status, body, headers, and what the app logged."""
    got: dict[str, Any] = {}
    errors = io.StringIO()
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "/pun/sys/sessions",
           "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "wsgi.errors": errors,
           "wsgi.url_scheme": "https", **environ}
    out = b"".join(app(env, lambda status, headers: got.update(status=status, headers=dict(headers))))
    return int(got["status"].split()[0]), out.decode(), got["headers"], errors.getvalue()


@pytest.fixture
def portal(fake_kube: Any) -> tuple[App, str, Callable[[], KubeClient]]:
    """The app for alice, with the agent off (the API path); one session of hers."""
    def connect(cfg: Config, user: str) -> KubeClient:
        assert user == "alice", "the app reads with its owner's identity only"
        return KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)

    admin = connect(Config(), "alice")
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
    admin.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                  "metadata": {"name": "ood-interactive"}, "value": 1000})
    from ood_k8s.sessions.adapter import Adapter
    from tests.webapp.conftest import JUPYTER

    job = Adapter(Config(), ALICE, admin).submit(JUPYTER)
    return App(load_config=Config, whoami=lambda: ALICE, connect=connect), job, lambda: admin


def test_pages_over_the_api_when_there_is_no_agent(portal: Any) -> None:
    app, job, _ = portal
    status, html, headers, log = call(app, "/")
    assert (status, log) == (200, "")
    assert job in html and "Starting" in html and "Signed in as alice" in html
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert "Path=/pun/sys/sessions" in headers["Set-Cookie"] and "Secure" in headers["Set-Cookie"]
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert call(app, f"/sessions/{job}")[0] == 200
    assert call(app, "/sessions/jupyter-zzzzzzzz")[0] == 404
    assert 'class="banner"' not in html, "no agent configured: nothing to warn about"
    status, html, _, _ = call(app, "/usage")
    assert status == 200 and "not kept on this portal" in html and 'class="banner"' not in html
    assert call(app, "/nowhere")[0] == 404
    assert call(app, "/", "PUT")[0] == 405
    status, html, _, _ = call(app, "/", "HEAD")
    assert (status, html) == (200, "")


def test_the_proxy_must_name_the_owner_and_forms_need_their_token(portal: Any) -> None:
    app, job, _ = portal
    assert call(app, "/", REMOTE_USER="alice")[0] == 200
    status, html, _, _ = call(app, "/", REMOTE_USER="bob")
    assert status == 403 and job not in html
    assert call(app, "/", HTTP_X_FORWARDED_USER="bob")[0] == 403
    form = b"minutes=60&csrf=abc"
    assert call(app, f"/sessions/{job}/extend", "POST", form)[0] == 403  # no cookie
    assert call(app, f"/sessions/{job}/extend", "POST", form, HTTP_COOKIE=f"{CSRF_COOKIE}=abd")[0] == 403
    # With the token: the adapter's one-line refusal (this site, with the agent off, extends nothing).
    status, html, _, _ = call(app, f"/sessions/{job}/extend", "POST", form, HTTP_COOKIE=f"{CSRF_COOKIE}=abc")
    assert status == 409 and "cannot be extended on this site" in html


def test_a_failure_is_one_line_on_the_page_and_a_traceback_in_the_log() -> None:
    def broken() -> Any:
        raise RuntimeError("boom")

    status, html, _, log = call(App(load_config=Config, whoami=broken), "/")
    assert status == 500 and "Traceback" not in html and "boom" not in html and "portal's logs" in html.replace(
        "&#39;", "'")
    assert "Traceback" in log and "RuntimeError: boom" in log

    def bad_config() -> Config:
        raise ConfigError("/etc/ood/config/ood_k8s.yml: jobs.max_walltime: got -1", "fix the file")

    status, text, headers, _ = call(App(load_config=bad_config, whoami=lambda: ALICE), "/")
    assert status == 503 and text == "/etc/ood/config/ood_k8s.yml: jobs.max_walltime: got -1: fix the file"
    assert headers["Content-Type"].startswith("text/plain")


# --- the agent's course answer ------------------------------------------------------------------------


@pytest.fixture
def course_site() -> Iterator[Site]:
    with scratch_site() as site:
        yield site


def ask_course(site: Site, uid: int, name: str = COURSE) -> tuple[dict[str, Any], Any]:
    assert site.agent is not None
    head, _, body = server.answer(site.agent, uid, f"course {name}\n".encode(), site.agent.users).partition(b"\n")
    return json.loads(head), json.loads(body) if body.strip() else None


def test_the_agent_shows_a_course_to_its_instructors_only(course_site: Site) -> None:
    mine, theirs = course_site.submit(ALICE, "gpu-t4"), course_site.submit(BOB)
    course_site.run(ALICE, mine)
    outsider = course_site.submit(BOB)
    course_site.admin.patch("Pod", outsider, {"metadata": {"labels": {"ood-k8s.io/course": "other"}}}, "ood-bob",
                            patch_type="merge")
    course_site.start_agent()
    course_site.seen(ALICE, mine, lambda p: p["status"].get("phase") == "Running")
    course_site.seen(BOB, outsider, lambda p: p["metadata"]["labels"].get("ood-k8s.io/course") == "other")
    head, body = ask_course(course_site, CAROL.uid)
    assert head["ok"] is True
    assert {s["id"] for s in body["sessions"]} == {mine, theirs}, "the course's sessions, and only them"
    assert all(set(s["native"]) <= {"reason", "phase", "profile", "failed", "disruption", "exit_code", "cache_age"}
               for s in body["sessions"]), "no connection info, no paths"
    assert body["course"]["title"] == "Deep learning 101"
    usage = {u["course"]: u for u in body["usage"]}
    assert set(usage) == {"cs101 (all)", "alice", "bob"} and usage["bob"]["used_gpu_hours"] == 0
    assert 0 < usage["alice"]["used_gpu_hours"] < 0.2 and usage["alice"]["limit"] == 10  # 1 GPU for 10 minutes
    for uid, name in ((ALICE.uid, COURSE), (BOB.uid, COURSE), (CAROL.uid, "other"), (CAROL.uid, "nope")):
        head, body = ask_course(course_site, uid, name)
        assert head["ok"] is False and "does not instruct" in head["error"] and body is None
    head, _ = ask_course(course_site, 0)
    assert head == {"ok": False, "error": "root has no sessions of its own: name a user"}


# --- installing it, and the links from the Jupyter cards --------------------------------------------------


def test_ood_config_out_installs_the_app(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    generated = app_files(oodconfig.MARKER, "/etc/ood/config/ood_k8s.yml", "/opt/ood-k8s/bin/python3")
    manifest = generated[f"{APP_DIR}/manifest.yml"]
    assert manifest.splitlines()[0].startswith(f"# {oodconfig.MARKER}")
    assert manifest.split("\n", 1)[1] == MANIFEST == (ROOT / "apps" / "sessions" / "manifest.yml").read_text()
    shim = generated[f"{APP_DIR}/passenger_wsgi.py"]
    compile(shim, "passenger_wsgi.py", "exec")
    assert "PYTHON = '/opt/ood-k8s/bin/python3'" in shim and "from ood_k8s.webapp.app import application" in shim
    compile((ROOT / "apps" / "sessions" / "passenger_wsgi.py").read_text(), "passenger_wsgi.py", "exec")

    site = tmp_path / "ood_k8s.yml"
    site.write_text("portal: {cluster_id: gpu}\n")
    monkeypatch.setenv("OOD_K8S_CONFIG", str(site))
    (tmp_path / "etc").mkdir()
    assert cli.main(["ood", "config", "--psij", "/usr/local/bin/ood-k8s-psij", "--hook", "/usr/local/bin/hook",
                     "--out", str(tmp_path / "etc")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path}/etc/{APP_DIR}/manifest.yml" in out
    assert f"ln -s {tmp_path}/etc/{APP_DIR} /var/www/ood/apps/sys/sessions" in out
    assert (tmp_path / "etc" / APP_DIR / "passenger_wsgi.py").stat().st_mode & 0o777 == 0o644


RENDER = """
require "erb"; require "pathname"; require "ostruct"
info = OpenStruct.new(native: {"reason" => "waiting for a GPU node"}, status: :queued)
job_id = ARGV[1]
staged_root = Pathname.new("/nonexistent")
print ERB.new(File.read(ARGV[0]), trim_mode: "-").result(binding)
"""


@pytest.mark.parametrize("view", ["info.html.erb", "completed.html.erb"])
def test_the_jupyter_cards_link_to_the_sessions_page(view: str) -> None:
    if shutil.which("ruby") is None:
        pytest.skip("ruby is not installed (make test installs it)")
    out = subprocess.run(["ruby", "-e", RENDER, str(ROOT / "apps" / "jupyter" / view), "jupyter-ab12cd34"],
                         capture_output=True, text=True, check=True).stdout
    assert '<a href="/pun/sys/sessions/sessions/jupyter-ab12cd34">' in out
    empty = subprocess.run(["ruby", "-e", RENDER, str(ROOT / "apps" / "jupyter" / view), ""],
                           capture_output=True, text=True, check=True).stdout
    assert "/pun/sys/sessions" not in empty


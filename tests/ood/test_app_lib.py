"""apps/_lib: the form helper every app requires applies ood-k8s's access rules, with Debian's ruby."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

from ood_k8s.core.identity import Identity
from tests.conftest import ROOT

LIB = ROOT / "apps" / "_lib" / "ood_k8s_form.rb"
HARNESS = ROOT / "tests" / "ood_harness.rb"


def ruby(code: str, data: object) -> object:
    out = subprocess.run(["ruby", "-rjson", "-e", f"require {str(LIB)!r}\ndata = JSON.parse($stdin.read)\n{code}"],
                         input=json.dumps(data), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_forms_entitlement_is_policy_access_rule() -> None:
    # The form runs as the user and decides in Ruby what submit decides in Python: same answers.
    groups = [[], ["students"], ["staff"], ["staff", "gpu-users"], ["other", "more"]]
    mine = [[], ["students"], ["alice", "gpu-users"]]
    cases = list(itertools.product(groups, mine))
    got = ruby("puts JSON.generate(data.map { |g, m| OodK8sForm.entitled?(g, m) })", cases)
    assert got == [Identity("u", 1000, 1000, "/h", tuple(m)).in_any(g) for g, m in cases]


def test_the_shared_submit_checks() -> None:
    got = ruby("puts JSON.generate([OodK8sForm.wall_time(data[0]), "
               "OodK8sForm.session_tokens(profile: data[1], cpu: data[2], memory: data[3], gpus: data[4])])",
               ["2", "gpu-t4", " 4 ", "16", "1"])
    assert got == [7200, ["--profile", "gpu-t4", "--cpu", "4", "--memory", "16Gi", "--gpus", "1"]]


def test_an_app_installed_without_the_helper_says_what_to_install(tmp_path: Path) -> None:
    app = tmp_path / "apps" / "jupyter"
    shutil.copytree(ROOT / "apps" / "jupyter", app)
    out = subprocess.run(["ruby", str(HARNESS)], input=json.dumps({"op": "form", "app": str(app)}),
                         capture_output=True, text=True, timeout=60)
    missing = tmp_path / "apps" / "_lib" / "ood_k8s_form.rb"
    # OOD shows it as the app's validation reason ("LoadError: ..."); the harness lets it through.
    assert f"ood-k8s's shared app helper {missing} is missing: install apps/_lib next to this app" in \
        out.stdout + out.stderr

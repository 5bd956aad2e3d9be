"""``ood-k8s job extend ID --hours N`` in-process against the fake API (an admin, root, acting for alice)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ood_k8s.core import vocab
from ood_k8s.core.timefmt import rfc3339, timestamp
from tests.cli.test_cli_job import NS, run  # noqa: F401 - the run fixture


@pytest.fixture(autouse=True)
def agent_site(run: Any, tmp_path: Path) -> None:  # noqa: F811
    """A site running the agent's lifecycle: only there are pods given the ceiling and extendable."""
    cfg = tmp_path / "ood_k8s.yml"
    cfg.write_text(yaml.safe_dump({**yaml.safe_load(cfg.read_text()), "agent": {"enabled": True}}))


def running(run: Any, fake_kube: Any, started: float) -> str:  # noqa: F811
    code, out, _ = run("submit", "--command", "sleep infinity", "--walltime", "3600")
    assert code == 0
    job = out.strip()
    fake_kube.set_pod_status(NS, job, node_name="n1", phase="Running", startTime=rfc3339(started))
    return job


def test_extend_prints_the_new_deadline_and_the_time_left(run: Any, fake_kube: Any) -> None:  # noqa: F811
    started = float(int(time.time()) - 60)
    job = running(run, fake_kube, started)
    code, out, err = run("extend", job, "--hours", "0.5", "-o", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    left = data.pop("time_left")
    assert data == {"id": job, "added": 1800, "deadline": rfc3339(started + 5400),
                    "ceiling": rfc3339(started + 8 * 3600)}
    assert 5400 - 60 - 5 <= left <= 5400 - 60
    assert fake_kube.get("pods", job, NS)["metadata"]["annotations"][vocab.DEADLINE_ANNOTATION] == \
        rfc3339(started + 5400)
    code, out, err = run("extend", job, "--hours", "1")
    assert (code, err) == (0, "")
    assert re.fullmatch(rf"extended {job}: it now ends at \S+( \S+)? \(in 2h2[89]m\); its limit is \S+( \S+)?\n",
                        out), out
    code, out, _ = run("info", job, "-o", "json")
    info = json.loads(out)
    assert info["deadline"] == timestamp(rfc3339(started + 9000)) and info["ceiling"] == started + 8 * 3600


def test_bad_input_is_one_line_and_changes_nothing(run: Any, fake_kube: Any) -> None:  # noqa: F811
    job = running(run, fake_kube, time.time() - 60)
    before = fake_kube.get("pods", job, NS)
    for args, message in (
        (("--hours", "lots"), "ood-k8s: --hours: got 'lots', expected a number of hours such as 1 or 0.5\n"),
        ((), f"ood-k8s: how much longer? --hours is missing: e.g. 'ood-k8s job extend {job} --hours 1'\n"),
        (("--hours", "8"), None),  # past the ceiling: 1 h granted, 8 h at most
    ):
        code, out, err = run("extend", job, *args)
        assert code != 0 and out == "" and err.count("\n") == 1, err
        if message is not None:
            assert err == message
        else:
            assert "this session can run at most until" in err and "ask for at most 7h" in err
    assert fake_kube.get("pods", job, NS) == before

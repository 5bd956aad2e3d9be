"""``ood-k8s usage`` in-process against the fake API (root), and who may ask for what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ood_k8s import cli
from ood_k8s.cli import usage as usage_cli
from ood_k8s.core.errors import NotEntitled, UsageError
from ood_k8s.usage.entry import Entry
from ood_k8s.usage.ledger import Ledger
from tests.conftest import ALICE, BOB, replace
from tests.usage.conftest import AGENT_NS, HOUR, T0, World, config


@pytest.fixture
def run(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    kubeconfig = world.fk.write_kubeconfig(str(tmp_path / "provisioner.kubeconfig"))
    cfg = tmp_path / "ood_k8s.yml"
    cfg.write_text(yaml.safe_dump({
        "cluster": {"server": "", "kubeconfig": kubeconfig, "provisioner_kubeconfig": kubeconfig},
        "courses": [{"name": "cs109b", "title": "Data Science 2", "groups": ["students"], "profiles": ["gpu-t4"],
                     "term_start": "2027-01-25", "term_end": "2027-05-15", "gpu_hours_per_student": 20}],
        "usage": {"prices": {"g4dn.xlarge": 0.5}}}))
    Ledger(world.client, AGENT_NS).record("alice", [
        Entry("a1", "alice", "cs109b", "gpu-t4", "j1", T0, T0 + 2 * HOUR, 1, instance="g4dn.xlarge", share=1.0),
        Entry("a2", "alice", "", "cpu", "j2", T0, T0 + HOUR, 0, cpu=2.0)])
    Ledger(world.client, AGENT_NS).record("bob", [
        Entry("b1", "bob", "cs109b", "gpu-t4", "j3", T0 + 86400, T0 + 86400 + 4 * HOUR, 1)])

    def invoke(*args: str) -> tuple[int, str, str]:
        code = cli.main(["--config", str(cfg), "usage", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_root_reports_a_course_as_json_csv_and_html(run, tmp_path: Path) -> None:
    code, out, err = run("--course", "cs109b", "--until", "2027-02-28", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert [(r["user"], r["sessions"], r["gpu_hours"], r["cost"], r["unpriced"]) for r in data["rows"]] == [
        ("alice", 1, 2.0, 1.0, 0), ("bob", 1, 4.0, 0.0, 1)]
    assert (data["since"], data["until"]) == ("2027-01-25T00:00:00Z", "2027-03-01T00:00:00Z")
    code, out, _ = run("--user", "alice", "--since", "2027-02-01", "--until", "2027-02-28", "-o", "csv")
    assert out.splitlines() == ["user,course,sessions,running,gpu_hours,cpu_hours,idle_hours,cost,unpriced",
                                "alice,,1,0,0.000,2.000,0.000,0.000,1",
                                "alice,cs109b,1,0,2.000,0.000,0.000,1.000,0"]
    page = tmp_path / "report.html"
    code, _, err = run("--course", "cs109b", "--until", "2027-02-28", "--html", str(page))
    assert code == 0 and err == f"wrote {page}\n"
    text = page.read_text()
    assert "<title>Usage of Data Science 2</title>" in text and "budget 20.0" in text


def test_a_bad_date_is_one_line(run) -> None:
    code, _, err = run("--since", "Feb 1")
    assert code == 2
    assert err.strip().endswith("--since: got 'Feb 1', expected a day such as 2027-01-25 (YYYY-MM-DD)")
    with pytest.raises(UsageError):
        usage_cli.parse_day("2027-13-01", "--until")


def test_who_may_ask_for_whom() -> None:
    cfg = config()
    usage_cli.check_scope(cfg, ALICE, False, "alice", None)  # oneself
    usage_cli.check_scope(cfg, ALICE, True, "bob", None)  # root
    with pytest.raises(NotEntitled) as err:
        usage_cli.check_scope(cfg, BOB, False, "alice", None)
    assert str(err.value) == ("bob may not see alice's usage: ask for your own (--me), or for a course you "
                              "instruct (--course)")
    teacher = replace(BOB, groups=("bob", "cs109b-staff"))
    usage_cli.check_scope(cfg, teacher, False, "alice", "cs109b")
    with pytest.raises(NotEntitled):
        usage_cli.check_scope(cfg, teacher, False, "alice", "cs50")


def test_yaml_is_the_json_data(run) -> None:
    _, as_json, _ = run("--until", "2027-02-28", "-o", "json")
    _, as_yaml, _ = run("--until", "2027-02-28", "-o", "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)

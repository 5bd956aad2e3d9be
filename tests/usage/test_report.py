"""Reports from entries: rows, windows, cost, and each output format, as whole values."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from ood_k8s.usage import html, report
from ood_k8s.usage.entry import Entry, decode, encode
from tests.usage.conftest import HOUR, T0

PRICES = {"g4dn.xlarge": 0.526, "g4dn.12xlarge": 3.912}


def _e(uid: str, user: str, start: float, hours: float, gpus: int = 1, course: str = "cs109b", **kw: object) -> Entry:
    base = {"profile": "gpu-t4", "job": f"j-{uid}", "gpu_resource": "nvidia.com/gpu" if gpus else "", "cpu": 4.0,
            "memory": 16 * 2**30, "instance": "g4dn.xlarge", "share": 1.0}
    return Entry(uid=uid, user=user, course=course, start=start, end=start + hours * HOUR, gpus=gpus,
                 **{**base, **kw})  # type: ignore[arg-type]


ENTRIES = [
    _e("1", "alice", T0, 2.0),
    _e("2", "alice", T0 + 86400, 1.0, idle=1800.0, reason="Idle"),
    _e("3", "bob", T0, 3.0, gpus=2, instance="g4dn.12xlarge", share=0.5),
    _e("4", "bob", T0 + 2 * 86400, 1.0, gpus=0, course="", profile="cpu", instance="", share=0.0),
    _e("5", "carol", T0 + 86400, 0.5, running=True, instance="", share=0.0),
]


def test_rows_per_user_and_course() -> None:
    assert report.rows(ENTRIES, PRICES) == [
        report.Row("alice", "cs109b", 2, 0, 3.0, 12.0, 0.5, 3 * 0.526, 0),
        report.Row("bob", "", 1, 0, 0.0, 4.0, 0.0, 0.0, 1),
        report.Row("bob", "cs109b", 1, 0, 6.0, 12.0, 0.0, 3 * 3.912 * 0.5, 0),
        report.Row("carol", "cs109b", 1, 1, 0.5, 2.0, 0.0, 0.0, 1),
    ]
    assert report.rows(ENTRIES, PRICES, by=("course",)) == [
        report.Row("", "", 1, 0, 0.0, 4.0, 0.0, 0.0, 1),
        report.Row("", "cs109b", 4, 1, 9.5, 26.0, 0.5, 3 * 0.526 + 3 * 3.912 * 0.5, 1),
    ]


def test_a_window_clips_sessions_across_its_edges() -> None:
    inside = report.window(ENTRIES, since=T0 + HOUR, until=T0 + 86400 + 0.5 * HOUR)
    assert [(e.uid, e.start, e.end) for e in inside] == [
        ("1", T0 + HOUR, T0 + 2 * HOUR), ("2", T0 + 86400, T0 + 86400 + 0.5 * HOUR),
        ("3", T0 + HOUR, T0 + 3 * HOUR), ("5", T0 + 86400, T0 + 86400 + 0.5 * HOUR)]
    assert report.select(ENTRIES, course="cs109b", user="bob") == [ENTRIES[2]]


def test_table_json_csv() -> None:
    rows = report.rows(ENTRIES[:2], PRICES)
    total = report.total(ENTRIES[:2], PRICES)
    assert report.table(rows, total, "USD") == (
        "USER   COURSE  SESSIONS  RUNNING  GPU-HOURS  CPU-HOURS  IDLE-RECLAIMED-H  COST-USD\n"
        "alice  cs109b         2        0        3.0       12.0               0.5  1.58\n"
        "TOTAL                 2        0        3.0       12.0               0.5  1.58\n")
    assert json.loads(report.to_json(rows, total, {"course": "cs109b"})) == {
        "course": "cs109b",
        "rows": [{"user": "alice", "course": "cs109b", "sessions": 2, "running": 0, "gpu_hours": 3.0,
                  "cpu_hours": 12.0, "idle_hours": 0.5, "cost": 1.578, "unpriced": 0}],
        "total": {"user": "", "course": "", "sessions": 2, "running": 0, "gpu_hours": 3.0, "cpu_hours": 12.0,
                  "idle_hours": 0.5, "cost": 1.578, "unpriced": 0}}
    assert list(csv.reader(io.StringIO(report.to_csv(rows)))) == [
        ["user", "course", "sessions", "running", "gpu_hours", "cpu_hours", "idle_hours", "cost", "unpriced"],
        ["alice", "cs109b", "2", "0", "3.000", "12.000", "0.500", "1.578", "0"]]


def test_unpriced_sessions_are_counted_not_costed() -> None:
    text = report.table(report.rows(ENTRIES[3:4], PRICES), report.total(ENTRIES[3:4], PRICES), "USD")
    assert "0.00 (+1 unpriced)" in text


def test_the_ledger_form_round_trips() -> None:
    for e in ENTRIES[:4]:
        assert decode(e.uid, encode(e)) == e
    assert decode("x", "not json") is None


class _Strict(HTMLParser):
    """Fails on unbalanced tags (void elements aside): the page is well-formed."""

    VOID = {"meta", "br", "img", "line", "rect"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()


def test_the_html_page_parses_and_its_charts_have_the_right_bars() -> None:
    entries = ENTRIES[:3]
    page = html.page(entries, report.rows(entries, PRICES), report.total(entries, PRICES), title="Usage of cs109b",
                     span=(T0, T0 + 3 * 86400), currency="USD", limit=20.0)
    parser = _Strict()
    parser.feed(page)
    assert parser.stack == []
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    svgs = [ET.fromstring(page[i:page.index("</svg>", i) + 6])  # noqa: S314 - our own page
            for i in range(len(page)) if page.startswith("<svg", i)]
    ns = "{http://www.w3.org/2000/svg}"
    by_title = {s.find(f"{ns}title").text: s for s in svgs}  # type: ignore[union-attr]
    assert sorted(by_title) == ["GPU-hours per day", "GPU-hours per person", "GPU-hours per session type"]
    people = by_title["GPU-hours per person"]
    assert [r.find(f"{ns}title").text for r in people.iter(f"{ns}rect")] == [  # type: ignore[union-attr]
        "bob: 6.0 GPU-hours", "alice: 3.0 GPU-hours"]
    widths = [float(r.get("width") or 0) for r in people.iter(f"{ns}rect")]
    assert abs(widths[0] / widths[1] - 2.0) < 1e-6  # 6 vs 3 GPU-hours: twice as long
    assert people.get("role") == "img" and "Largest: bob with 6.0 GPU-hours" in (
        people.find(f"{ns}desc").text or "")  # type: ignore[union-attr]
    assert "budget 20.0" in ET.tostring(people, encoding="unicode")
    days = [r.find(f"{ns}title").text for r in by_title["GPU-hours per day"].iter(f"{ns}rect")]  # type: ignore
    assert days == ["Feb 01: 8.0 GPU-hours", "Feb 02: 1.0 GPU-hours", "Feb 03: 0.0 GPU-hours",
                    "Feb 04: 0.0 GPU-hours"]  # 10:00 on Feb 01 to 10:00 on Feb 04: four days shown


def test_buckets_split_a_session_across_midnight() -> None:
    late = _e("9", "alice", T0 + 13 * HOUR, 2.0)  # 23:00 to 01:00 UTC
    labels, values = html.buckets([late], T0, T0 + 86400)
    assert labels == ["Feb 01", "Feb 02"]
    assert values == [1.0, 1.0]


def test_a_shard_is_decoded_whole_and_a_hand_edited_value_is_skipped() -> None:
    from ood_k8s.usage.entry import decode_all

    data = {e.uid: encode(e) for e in ENTRIES[:3]}
    assert decode_all(data) == ENTRIES[:3]
    assert decode_all({**data, "x": '{"u":"a"},{"u":"b"}', "y": "oops"}) == ENTRIES[:3]


def test_usage_metrics() -> None:
    from ood_k8s.usage.metrics import usage_metrics
    from tests.conftest import replace
    from tests.usage.conftest import CS109B, config

    cfg = config(courses=[replace(CS109B, gpu_hours_total=100.0, term_start="", term_end="")])
    lines = usage_metrics(cfg, ENTRIES)
    assert 'ood_k8s_usage_gpu_hours_total{course="cs109b",profile="gpu-t4"} 9.5' in lines
    assert 'ood_k8s_usage_sessions_total{course="",profile="cpu"} 1' in lines
    assert 'ood_k8s_usage_idle_reclaimed_hours_total{course="cs109b",profile="gpu-t4"} 0.5' in lines
    assert 'ood_k8s_usage_running_gpus{course="cs109b",profile="gpu-t4"} 1' in lines
    assert 'ood_k8s_budget_left_gpu_hours{course="cs109b"} 90.5' in lines
    assert "# TYPE ood_k8s_usage_gpu_hours_total counter" in lines

"""capacity/placeholders.py: which placeholders the clock wants, and what they are (pure)."""

from __future__ import annotations

import pytest

from ood_k8s.capacity import placeholders
from ood_k8s.capacity.placeholders import AD_HOC, MEETING, Hold
from ood_k8s.cluster import manifests
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.policy import pods
from tests.courses.course_site import BEFORE_TERM, MON_10_NY, site

MIN = 60
HOUR = 3600
# cs109b meets mon/wed 10:30-11:45 New York time, warm from 10:15 (warm.before 15m), 3 placeholders.
WARM_FROM = MON_10_NY + 15 * MIN
MEETING_END = MON_10_NY + 105 * MIN


@pytest.mark.parametrize(("now", "count"), [
    (WARM_FROM - 1, 0), (WARM_FROM, 3), (MON_10_NY + 30 * MIN, 3), (MEETING_END - 1, 3), (MEETING_END, 0),
    (WARM_FROM + 24 * HOUR, 0),  # Tuesday
    (WARM_FROM + 48 * HOUR, 3),  # Wednesday
    # six weeks on (2027-03-15), daylight time: still 10:15-11:45 local, so an hour earlier in UTC
    (WARM_FROM + 6 * 7 * 24 * HOUR - HOUR - 1, 0), (WARM_FROM + 6 * 7 * 24 * HOUR - HOUR, 3),
    (MEETING_END + 6 * 7 * 24 * HOUR - HOUR - 1, 3), (MEETING_END + 6 * 7 * 24 * HOUR - HOUR, 0),
])
def test_meetings_are_warm_from_before_their_start_until_their_end_local_time(now: float, count: int) -> None:
    assert len(placeholders.desired(site(), now, [])) == count


def test_no_warm_capacity_outside_the_term_or_without_a_count() -> None:
    assert placeholders.desired(site(), BEFORE_TERM - 7 * 24 * HOUR + 15 * MIN, []) == {}
    assert placeholders.desired(site(warm={"count": 0}), WARM_FROM, []) == {}


def test_a_meeting_across_midnight_is_warm_on_both_days() -> None:
    cfg = site(meetings=[{"days": ["sun"], "start": "23:30", "duration": "1h"}], warm={"count": 1, "before": "1h"})
    sunday_2330 = MON_10_NY - 10.5 * HOUR
    assert len(placeholders.desired(cfg, sunday_2330 - HOUR, [])) == 1  # 22:30 sunday
    assert len(placeholders.desired(cfg, sunday_2330 + 59 * MIN, [])) == 1  # 00:29 monday
    assert placeholders.desired(cfg, sunday_2330 + HOUR, []) == {}


def test_the_placeholder_is_a_session_of_the_profile_at_the_placeholder_priority() -> None:
    cfg = site(node_pool="cs109b-a10g")
    [pod] = [p for n, p in placeholders.desired(cfg, WARM_FROM, []).items() if n.endswith("-0")]
    assert pod["metadata"]["name"] == "ood-warm-cs109b-0"
    assert pod["metadata"]["namespace"] == cfg.agent.namespace
    assert pod["metadata"]["labels"][vocab.COURSE_LABEL] == "cs109b"
    assert pod["metadata"]["labels"][vocab.COMPONENT_LABEL] == vocab.PLACEHOLDER_COMPONENT
    assert pod["metadata"]["annotations"][
        vocab.WARM_REASON_ANNOTATION] == "course cs109b meets until 2027-02-01T16:45:00Z"
    spec = pod["spec"]
    assert spec["priorityClassName"] == pods.PLACEHOLDER_PRIORITY_CLASS == "ood-placeholder"
    assert spec["terminationGracePeriodSeconds"] == 0 and spec["automountServiceAccountToken"] is False
    assert spec["nodeSelector"] == {vocab.KARPENTER_NODEPOOL_LABEL: "cs109b-a10g"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    [ctr] = spec["containers"]
    assert ctr["image"] == cfg.capacity.pause_image
    assert ctr["resources"] == {"requests": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
                                "limits": {"nvidia.com/gpu": "1"}}


def test_a_whole_node_profile_holds_a_whole_node() -> None:
    cfg = Config()
    big = cfg.profile("gpu-a10g")
    big.whole_node = True
    assert placeholders.requests(big) == {"cpu": "44", "memory": "180Gi", "nvidia.com/gpu": "4"}
    assert placeholders.requests(cfg.profile("cpu")) == {"cpu": "1", "memory": "4Gi"}


def test_ad_hoc_holds_expire_and_need_a_known_profile() -> None:
    cfg = Config()
    hold = Hold(key="adhoc-gpu-t4", kind=AD_HOC, profile="gpu-t4", count=2, until=1000.0, by="root")
    assert sorted(placeholders.desired(cfg, 999.0, [hold])) == ["ood-warm-adhoc-gpu-t4-0", "ood-warm-adhoc-gpu-t4-1"]
    assert placeholders.desired(cfg, 1000.0, [hold]) == {}
    gone = Hold(key="adhoc-tpu", kind=AD_HOC, profile="tpu", count=2, until=1000.0)
    assert placeholders.desired(cfg, 0.0, [gone]) == {}
    assert hold.why() == "ad-hoc hold by root until 1970-01-01T00:16:40Z"
    assert placeholders.wanted(site(), WARM_FROM, [hold])[0].kind == MEETING


def test_names_are_dns_labels_however_long_the_course() -> None:
    name = placeholders.pod_name("c" * 63, 12)
    assert len(name) <= 63 and name.endswith("-12") and name != placeholders.pod_name("c" * 62 + "d", 12)


def test_a_placeholder_never_outranks_a_session() -> None:
    cfg = site()
    classes = {o["metadata"]["name"]: o for o in manifests.objects(cfg) if o["kind"] == "PriorityClass"}
    placeholder = classes.pop("ood-placeholder")
    assert placeholder["value"] < 0 and placeholder["preemptionPolicy"] == "Never"
    assert classes and all(c["value"] > placeholder["value"] and c["preemptionPolicy"] == "PreemptLowerPriority"
                           for c in classes.values())
    for pod in placeholders.desired(cfg, WARM_FROM, []).values():
        assert pod["spec"]["priorityClassName"] not in classes  # never a session's class

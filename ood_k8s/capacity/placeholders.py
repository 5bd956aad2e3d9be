"""Which placeholder pods should exist at ``now``: pure.

A **hold** is a reason to keep nodes warm: a course's meeting (from ``warm.before`` ahead of its start,
local time in the course's time zone, until its end, during the course's term) or an ad-hoc hold
(``ood-k8s capacity warm``, :mod:`ood_k8s.capacity.holds`).  Each hold wants ``count`` placeholder pods:
the pause image at the ``ood-placeholder`` priority class (negative, never preempting: any session
preempts it, and the autoscaler then adds a node for the evicted placeholder), with the profile's
size and placement -- its node selector and pool (the course's pool when it has one), tolerations,
affinity and GPU request -- so the node it holds fits one session of that profile.  The size is
what a default session of the profile requests (its maxima for a whole-node profile), at least one GPU
for a GPU profile.

Names are deterministic (hold key + index), so a repeated pass finds what it made and does nothing
twice; a placeholder is in ``agent.namespace`` and carries no service-account token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ood_k8s.cluster.facts import labels as managed_labels
from ood_k8s.config import Config, Profile
from ood_k8s.config.course import DAYS, CourseConfig, MeetingConfig, duration_seconds
from ood_k8s.core import vocab
from ood_k8s.core.timefmt import rfc3339
from ood_k8s.courses import membership
from ood_k8s.courses import session as course_session
from ood_k8s.policy import pods
from ood_k8s.sessions import resolve

MEETING = "meeting"
AD_HOC = "ad-hoc"
PAUSE_CONTAINER = "pause"
PAUSE_UID = 65535  # the pause image's own user


@dataclass(frozen=True)
class Hold:
    """A reason to hold ``count`` placeholders of ``profile`` until ``until`` (epoch seconds)."""

    key: str  # what names its placeholders: the course's name, or 'adhoc-<profile>'
    kind: str  # MEETING or AD_HOC
    profile: str
    count: int
    until: float
    course: str = ""  # the course (a meeting's; '' for an ad-hoc hold)
    since: float = 0.0  # when the hold began (a meeting: its start minus warm.before)
    by: str = ""  # who asked (an ad-hoc hold)

    def why(self) -> str:
        """One line: what the hold is for and until when."""
        if self.kind == MEETING:
            return f"course {self.course} meets until {rfc3339(self.until)}"
        who = f" by {self.by}" if self.by else ""
        return f"ad-hoc hold{who} until {rfc3339(self.until)}"


# --- meetings ------------------------------------------------------------------------------------------


def _local(day: date, clock: str, zone: ZoneInfo) -> float:
    hour, minute = (int(x) for x in clock.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()


def meeting_windows(course: CourseConfig, meeting: MeetingConfig, now: float) -> list[tuple[float, float, float]]:
    """(warm from, meeting start, meeting end) of the meeting's occurrences around ``now`` (yesterday to
    tomorrow, local time: a late meeting or a long ``before`` crosses midnight)."""
    zone = ZoneInfo(course.timezone)
    today = datetime.fromtimestamp(now, zone).date()
    before, length = duration_seconds(course.warm.before), duration_seconds(meeting.duration)
    out = []
    for offset in (-1, 0, 1):
        day = today + timedelta(days=offset)
        if DAYS[day.weekday()] in meeting.days:
            start = _local(day, meeting.start, zone)
            out.append((start - before, start, start + length))
    return out


def warm_profile(course: CourseConfig) -> str:
    return course.warm.profile or (course.profiles[0] if course.profiles else "")


def meeting_holds(cfg: Config, now: float) -> list[Hold]:
    """One hold per course warm at ``now``: from ``warm.before`` ahead of a meeting until it ends (two
    overlapping meetings of a course: one hold until the later end)."""
    holds = []
    for c in cfg.courses:
        if c.warm.count <= 0 or not warm_profile(c) or not membership.in_term(c, now):
            continue
        windows = [w for m in c.meetings for w in meeting_windows(c, m, now) if w[0] <= now < w[2]]
        if windows:
            holds.append(Hold(key=c.name, kind=MEETING, profile=warm_profile(c), count=c.warm.count,
                              until=max(w[2] for w in windows), course=c.name, since=min(w[0] for w in windows)))
    return holds


def wanted(cfg: Config, now: float, ad_hoc: list[Hold]) -> list[Hold]:
    """Every hold in force at ``now``: the meetings', then the unexpired ad-hoc ones of known profiles."""
    known = {p.name for p in cfg.profiles}
    return meeting_holds(cfg, now) + [h for h in ad_hoc if h.until > now and h.count > 0 and h.profile in known]


# --- the pods -----------------------------------------------------------------------------------------------


def pod_name(key: str, index: int) -> str:
    """``ood-warm-<key>-<index>``, a DNS label (a long key is cut and keeps a digest of itself)."""
    base = f"ood-warm-{key}"
    if len(base) > 55:
        base = base[:46].rstrip("-") + "-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{base}-{index}"


def requests(profile: Profile) -> dict[str, str]:
    """What one default session of ``profile`` requests (whole node: its maxima), at least one GPU for a
    GPU profile."""
    cpu, memory = (profile.cpu.max, profile.memory.max) if profile.whole_node else \
        (profile.cpu.default, profile.memory.default)
    out = {"cpu": cpu, "memory": memory}
    if profile.gpu.max > 0:
        out[profile.gpu.resource] = str(profile.gpu.max if profile.whole_node else max(1, profile.gpu.default))
    return out


def placeholder(cfg: Config, hold: Hold, index: int) -> dict[str, Any]:
    """One placeholder pod of ``hold``."""
    profile = cfg.profile(hold.profile)
    course = membership.course_named(cfg, hold.course) if hold.course else None
    place = resolve.placement(profile, {}, profile.gpu.resource)
    req = requests(profile)
    gpu = {k: v for k, v in req.items() if k not in ("cpu", "memory")}
    spec: dict[str, Any] = {
        "priorityClassName": pods.PLACEHOLDER_PRIORITY_CLASS,
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": course_session.node_selector(course, place.node_selector),
        "tolerations": place.tolerations,
        "securityContext": {"runAsNonRoot": True, "runAsUser": PAUSE_UID, "runAsGroup": PAUSE_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": PAUSE_CONTAINER, "image": cfg.capacity.pause_image,
            "resources": {"requests": req, **({"limits": gpu} if gpu else {})},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
        }],
    }
    if place.affinity:
        spec["affinity"] = place.affinity
    if not spec["nodeSelector"]:
        del spec["nodeSelector"]
    pod_labels = {**managed_labels(), vocab.COMPONENT_LABEL: vocab.PLACEHOLDER_COMPONENT,
                  vocab.PROFILE_LABEL: profile.name, **course_session.labels(course)}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(hold.key, index), "namespace": cfg.agent.namespace, "labels": pod_labels,
                     "annotations": {vocab.WARM_REASON_ANNOTATION: hold.why(),
                                     vocab.WARM_UNTIL_ANNOTATION: rfc3339(hold.until)}},
        "spec": spec,
    }


def desired(cfg: Config, now: float, ad_hoc: list[Hold]) -> dict[str, dict[str, Any]]:
    """Name -> placeholder pod, for every hold in force at ``now``."""
    out: dict[str, dict[str, Any]] = {}
    for hold in wanted(cfg, now, ad_hoc):
        for i in range(hold.count):
            pod = placeholder(cfg, hold, i)
            out[pod["metadata"]["name"]] = pod
    return out


def selector() -> str:
    """The label selector of every placeholder (what the warm task and ``capacity status`` list)."""
    return f"{vocab.COMPONENT_LABEL}={vocab.PLACEHOLDER_COMPONENT}"

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The course as one object (its roster, profiles, pool, term, meetings, budget) and the usage settings.

A course entitles its roster (Unix groups) to its profiles, holds warm capacity before its meetings,
caps each student's GPU-hours per term, and gives its instructors (a group) a read-only view of it.
What follows from a course lives with its feature (entitlements in :mod:`ood_k8s.policy.access`,
warm capacity and the ledger in the agent's tasks); this module only declares and checks it.
"""

import re
from typing import Dict, List, Optional

from ood_k8s.config.section import REQUIRED, section, setting
from ood_k8s.config.values import check_abs_path, check_dns_label, check_non_negative

_DATE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_DURATION = re.compile(r"^([0-9]+h)?([0-9]+m)?$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def check_date(value: str) -> Optional[str]:
    return None if value == "" or _DATE.match(value) else "a date such as 2027-01-25 (YYYY-MM-DD)"


def check_clock(value: str) -> Optional[str]:
    return None if _CLOCK.match(value) else "a time of day such as 14:30 (24-hour HH:MM)"


def check_duration(value: str) -> Optional[str]:
    return None if value and _DURATION.match(value) else "a duration such as 90m, 1h or 1h30m"


def check_day(value: str) -> Optional[str]:
    """Checks each day of a meeting's ``days`` (a list setting's check sees each element)."""
    return None if value in DAYS else f"a day: one of {', '.join(DAYS)}"


def duration_seconds(value: str) -> int:
    """``90m``, ``1h``, ``1h30m`` -> seconds (the value passed :func:`check_duration`)."""
    m = _DURATION.match(value)
    if not m or not value:
        raise ValueError(value)
    hours = int((m.group(1) or "0h")[:-1])
    minutes = int((m.group(2) or "0m")[:-1])
    return hours * 3600 + minutes * 60


@section
class MeetingConfig:
    days: List[str] = setting(REQUIRED, "Days the class meets: mon, tue, wed, thu, fri, sat, sun.",
                              check=check_day)
    start: str = setting(REQUIRED, "When it starts, local time of 'courses[].timezone' (HH:MM).",
                         check=check_clock)
    duration: str = setting("1h15m", "How long it lasts.", check=check_duration)


@section
class WarmConfig:
    profile: str = setting("", "Profile whose size and placement the placeholders take. Empty: the course's "
                           "first profile.")
    count: int = setting(0, "Placeholder pods held for each meeting (0: none). Each holds one session's "
                         "worth of a node warm.", check=check_non_negative)
    before: str = setting("15m", "How long before a meeting the placeholders start.", check=check_duration)


@section
class DatasetConfig:
    name: str = setting(REQUIRED, "Name of the volume in the session pod.", check=check_dns_label)
    claim: str = setting(REQUIRED, "PersistentVolumeClaim holding the data (ReadOnlyMany), in each student's "
                         "namespace.", check=check_dns_label)
    mount_path: str = setting(REQUIRED, "Where sessions see it (read-only).", check=check_abs_path)


@section
class CourseConfig:
    name: str = setting(REQUIRED, "Short name (label value, report key), e.g. cs109b.", check=check_dns_label)
    title: str = setting("", "Shown to students and instructors.")
    groups: List[str] = setting(doc="Unix groups of the roster (students).", factory=list)
    instructors: str = setting("", "Unix group of the instructors: they see the course's sessions and usage.")
    profiles: List[str] = setting(doc="Profiles the roster may use (entitlements follow from these).",
                                  factory=list)
    node_pool: str = setting("", "Node pool the course's sessions land on. Empty: each profile's own.")
    term_start: str = setting("", "First day of the term (YYYY-MM-DD). Budgets count from it.", check=check_date)
    term_end: str = setting("", "Last day of the term (YYYY-MM-DD). After it the course entitles nobody.",
                            check=check_date)
    timezone: str = setting("UTC", "Time zone of the meeting times (IANA name, e.g. America/New_York).")
    meetings: List[MeetingConfig] = setting(doc="When the class meets (warm capacity is held for these).",
                                            factory=list)
    warm: WarmConfig = setting(doc="Warm capacity before each meeting.", factory=WarmConfig)
    gpu_hours_per_student: float = setting(0.0, "GPU-hours each student may use this term (0: no limit).",
                                           check=check_non_negative)
    gpu_hours_total: float = setting(0.0, "GPU-hours the whole course may use this term (0: no limit).",
                                     check=check_non_negative)
    datasets: List[DatasetConfig] = setting(doc="Shared read-only datasets mounted in the course's sessions.",
                                            factory=list)


@section
class CapacityConfig:
    pause_image: str = setting("registry.k8s.io/pause:3.10", "Image of the warm-capacity placeholder pods and of "
                               "the pre-pullers' idle container.")
    device_plugin_namespace: str = setting("gpu-operator", "Namespace of the NVIDIA device plugin (GPU operator): "
                                           "'cluster render' puts the GPU sharing ConfigMap there.",
                                           check=check_dns_label)
    device_plugin_config: str = setting("ood-k8s-device-plugin", "Name of that ConfigMap (the GPU operator's "
                                        "devicePlugin.config.name); each shared profile's nodes select their "
                                        "entry with the label nvidia.com/device-plugin.config.",
                                        check=check_dns_label)


@section
class UsageConfig:
    prices: Dict[str, float] = setting(doc="On-demand price per hour of each instance type (e.g. g5.xlarge: "
                                       "1.006), for the cost estimate of 'ood-k8s usage'.", factory=dict)
    currency: str = setting("USD", "Currency of 'prices'.")
    retention_days: int = setting(400, "Days the ledger keeps ended sessions.", check=check_non_negative)
    finalizer: bool = setting(False, "Sessions carry a finalizer the ledger removes once it has recorded them, so "
                              "a session deleted between the agent's passes (or while no agent runs) is still "
                              "recorded. Turn on only where 'ood-k8s agent' runs: until it does, deleted sessions "
                              "stay Terminating.")
    budget_warning: str = setting("15m", "How long before a course's GPU-hour budget runs out the agent warns the "
                                  "sessions it will end.", check=check_duration)
    refresh: float = setting(60.0, "Seconds the agent reuses its read of the whole ledger (budget checks, usage "
                             "answers); its own records are seen at once.", check=check_non_negative)

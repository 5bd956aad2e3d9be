"""What a course adds to one of its sessions: its label, its node pool, its read-only datasets.

Pure; :func:`ood_k8s.sessions.resolve.resolve` asks :func:`ood_k8s.courses.membership.course_for`
which course a session counts against and applies these.  The admission guard admits the same
datasets read-only (:func:`ood_k8s.policy.volumes.session_claims`) and the course's pool for its
profiles (:func:`ood_k8s.policy.pods.node_pools`).
"""

from __future__ import annotations

from typing import Any

from ood_k8s.config import Config, Profile, replace
from ood_k8s.config.course import CourseConfig
from ood_k8s.core import vocab
from ood_k8s.core.errors import UsageError


def labels(course: CourseConfig | None) -> dict[str, str]:
    """The session's course label (what the ledger, reports and budgets group by)."""
    return {vocab.COURSE_LABEL: course.name} if course is not None else {}


def node_selector(course: CourseConfig | None, selector: dict[str, str]) -> dict[str, str]:
    """The profile's selector with the course's node pool in place of the profile's (when the course has one)."""
    if course is None or not course.node_pool:
        return selector
    return {**selector, vocab.KARPENTER_NODEPOOL_LABEL: course.node_pool}


def dataset_volumes(course: CourseConfig | None, taken: set[str],
                    mount_paths: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, volume mounts) of the course's datasets: each claim read-only, mounted read-only.
    ``taken``/``mount_paths``: the names and paths the session already uses (a clash is the site's to fix)."""
    if course is None:
        return [], []
    vols, mounts = [], []
    for d in course.datasets:
        if d.name in taken or d.mount_path in mount_paths:
            raise UsageError(f"courses: dataset '{d.name}' of course '{course.name}' clashes with a volume or "
                             f"path the session already uses ({d.mount_path})",
                             "rename the dataset or its mount_path in the site configuration")
        vols.append({"name": d.name, "persistentVolumeClaim": {"claimName": d.claim, "readOnly": True}})
        mounts.append({"name": d.name, "mountPath": d.mount_path, "readOnly": True})
    return vols, mounts


def pool_profiles(cfg: Config) -> list[Profile]:
    """A course's own node pool as the autoscaler should make it: the course's first GPU profile moved onto
    the pool (its instance types, limits, taint), for each course whose pool no profile already has."""
    taken = {p.node_pool or p.name for p in cfg.profiles if p.gpu.max > 0}
    out = []
    for c in cfg.courses:
        gpu = [p for p in cfg.profiles if p.name in c.profiles and p.gpu.max > 0]
        if c.node_pool and gpu and c.node_pool not in taken:
            taken.add(c.node_pool)
            out.append(replace(gpu[0], node_pool=c.node_pool))
    return out

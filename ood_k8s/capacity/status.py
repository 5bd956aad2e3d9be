"""What ``ood-k8s capacity status`` shows: pure functions of the holds, the placeholder pods and the nodes.

* **holds** -- every hold in force: why (a course's meeting or an ad-hoc hold, and by whom), the
  profile, how many placeholders it wants, until when, and how many of them run (on a node: the
  capacity is warm) or are pending (the autoscaler is adding the node) or missing (preempted by a
  session a moment ago: the leader makes it again);
* **images** -- per profile, how many nodes of its node pool already hold its image (``status.images``
  of each node), so a cold start's image pull is visible before a student meets it.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.capacity import placeholders
from ood_k8s.capacity.placeholders import Hold
from ood_k8s.config import Config, Profile
from ood_k8s.core import vocab
from ood_k8s.core.timefmt import rfc3339


def _phase(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "terminating"
    return "running" if status.get("phase") == "Running" else "pending" if status.get("phase") in (None, "Pending") \
        else "ended"


def hold_rows(cfg: Config, now: float, ad_hoc: list[Hold], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per hold in force at ``now``, with its placeholders' states."""
    by_name = {(p.get("metadata") or {}).get("name"): p for p in pods}
    rows = []
    for hold in placeholders.wanted(cfg, now, ad_hoc):
        states = [_phase(by_name[n]) if n in by_name else "missing"
                  for n in (placeholders.pod_name(hold.key, i) for i in range(hold.count))]
        rows.append({"hold": hold.key, "kind": hold.kind, "course": hold.course or "-", "profile": hold.profile,
                     "count": hold.count, "running": states.count("running"), "pending": states.count("pending"),
                     "missing": len(states) - states.count("running") - states.count("pending"),
                     "until": rfc3339(hold.until), "why": hold.why()})
    return rows


def stray_pods(cfg: Config, now: float, ad_hoc: list[Hold], pods: list[dict[str, Any]]) -> list[str]:
    """Placeholders no hold wants (the leader's next pass deletes them; many: is the agent's leader up?)."""
    wanted = placeholders.desired(cfg, now, ad_hoc)
    return sorted(n for n in ((p.get("metadata") or {}).get("name") for p in pods) if n not in wanted)


def _pool_selector(profile: Profile, pool: str) -> dict[str, str]:
    selector = dict(profile.node_selector)
    if pool:
        selector[vocab.KARPENTER_NODEPOOL_LABEL] = pool
    return selector


def _has_image(node: dict[str, Any], image: str) -> bool:
    names = {n for i in (node.get("status") or {}).get("images") or [] for n in i.get("names") or []}
    # A node lists an image by its full reference: docker.io/library/x:tag for x:tag, docker.io/a/x for a/x.
    return bool({image, f"docker.io/{image}", f"docker.io/library/{image}"} & names)


def image_rows(cfg: Config, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (profile, node pool): the nodes there and how many hold the profile's image.  A profile's
    pools: its own and those of the courses that list it."""
    rows = []
    for p in cfg.profiles:
        pools = list(dict.fromkeys([p.node_pool, *(c.node_pool for c in cfg.courses
                                                    if c.node_pool and p.name in c.profiles)]))
        for pool in pools:
            selector = _pool_selector(p, pool)
            there = [n for n in nodes if all(((n.get("metadata") or {}).get("labels") or {}).get(k) == v
                                             for k, v in selector.items())]
            rows.append({"profile": p.name, "pool": pool or "(any node)", "image": p.image, "nodes": len(there),
                         "with_image": sum(_has_image(n, p.image) for n in there), "prepull": p.prepull})
    return rows

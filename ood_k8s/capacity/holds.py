"""Ad-hoc warm holds (``ood-k8s capacity warm``), recorded in one ConfigMap in ``agent.namespace``.

Why a ConfigMap and not labels on the placeholders: a placeholder exists to be preempted -- the
scheduler deletes it the moment a session needs its node -- so a hold recorded on its pods would
vanish with them.  The ConfigMap is the intent; the leader's warm task (:mod:`ood_k8s.capacity.warm`)
makes the pods follow it and recreates the evicted ones (the autoscaler then adds a node).  One
entry per profile (its key): asking again replaces the hold, ``--count 0`` releases it.  Entries are
JSON ``{"count", "until", "since", "by"}``, times in epoch seconds.  The leader drops expired entries.
"""

from __future__ import annotations

import json
from typing import Any

from ood_k8s.capacity.placeholders import AD_HOC, Hold
from ood_k8s.cluster.facts import labels as managed_labels
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.errors import AlreadyExists, NotFound
from ood_k8s.core.kube import KubeClient

HOLD_KEY_PREFIX = "adhoc-"


def parse(data: dict[str, str]) -> list[Hold]:
    """The holds of the ConfigMap's ``data``; an entry that does not parse is skipped (and dropped later)."""
    out = []
    for profile, raw in sorted((data or {}).items()):
        try:
            entry = json.loads(raw)
            out.append(Hold(key=HOLD_KEY_PREFIX + profile, kind=AD_HOC, profile=profile, count=int(entry["count"]),
                            until=float(entry["until"]), since=float(entry.get("since", 0)),
                            by=str(entry.get("by", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def entry(count: int, until: float, since: float, by: str) -> str:
    return json.dumps({"count": count, "until": until, "since": since, "by": by}, sort_keys=True)


def configmap(cfg: Config, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": vocab.WARM_HOLDS_CONFIGMAP, "namespace": cfg.agent.namespace,
                         "labels": {**managed_labels(), vocab.COMPONENT_LABEL: vocab.WARM_HOLDS_COMPONENT}},
            "data": data}


def read(client: KubeClient, cfg: Config) -> list[Hold]:
    cm = client.get_or_none("ConfigMap", vocab.WARM_HOLDS_CONFIGMAP, cfg.agent.namespace)
    return parse((cm or {}).get("data") or {})


def write(client: KubeClient, cfg: Config, profile: str, value: str | None) -> None:
    """Set (or, ``value`` None, remove) the hold of ``profile``: one merge patch, creating the ConfigMap
    the first time."""
    try:
        client.patch("ConfigMap", vocab.WARM_HOLDS_CONFIGMAP, {"data": {profile: value}}, cfg.agent.namespace)
    except NotFound:
        if value is None:
            return
        try:
            client.create(configmap(cfg, {profile: value}))
        except AlreadyExists:  # another admin's first hold won the race: patch it
            client.patch("ConfigMap", vocab.WARM_HOLDS_CONFIGMAP, {"data": {profile: value}}, cfg.agent.namespace)


def expired(data: dict[str, str], now: float) -> list[str]:
    """Entries to drop: ended or unreadable."""
    good = {h.profile: h for h in parse(data)}
    return [k for k in data if k not in good or good[k].until <= now or good[k].count <= 0]

"""The leader's warm-capacity task: make the placeholder pods in ``agent.namespace`` what the holds want.

Each pass: read the ad-hoc holds (:mod:`ood_k8s.capacity.holds`), compute the wanted placeholders at
``ctx.now`` (:func:`ood_k8s.capacity.placeholders.desired`), create the missing ones, delete those no
hold wants any more (through :class:`~ood_k8s.agent.actions.Actions`: an Event and a log line) and the
terminal ones (evicted; the next pass makes them again), and drop expired ad-hoc holds.  Names are
deterministic, so a repeated pass (a new leader) does nothing twice; a placeholder that a session
preempted is simply missing and is made again -- pending until the autoscaler adds a node, which is
the point.
"""

from __future__ import annotations

from ood_k8s.agent.actions import terminal
from ood_k8s.agent.tasks import PassContext
from ood_k8s.capacity import holds, placeholders
from ood_k8s.core import vocab
from ood_k8s.core.errors import AlreadyExists, NotFound


class WarmTask:
    name = "warm"

    def run(self, ctx: PassContext) -> None:
        cfg, client = ctx.cfg, ctx.client
        cm = client.get_or_none("ConfigMap", vocab.WARM_HOLDS_CONFIGMAP, cfg.agent.namespace)
        data = (cm or {}).get("data") or {}
        want = placeholders.desired(cfg, ctx.now, holds.parse(data))
        have = {p["metadata"]["name"]: p for p in client.list("Pod", cfg.agent.namespace,
                                                                label_selector=placeholders.selector())}
        made = []
        for name, pod in want.items():
            if name in have:
                continue
            try:
                client.create(pod)
                made.append(name)
            except AlreadyExists:
                pass  # another pass made it meanwhile
        for name, pod in have.items():
            if name not in want:
                ctx.actions.delete(pod, "WarmHoldEnded", "no meeting or ad-hoc hold wants this placeholder now")
            elif terminal(pod):
                ctx.actions.delete(pod, "PlaceholderEnded", "the placeholder stopped; the next pass makes it again")
        if made:
            ctx.log.info("warm: created %d placeholder(s): %s", len(made), ", ".join(made))
        stale = holds.expired(data, ctx.now)
        if stale:
            try:
                client.patch("ConfigMap", vocab.WARM_HOLDS_CONFIGMAP, {"data": dict.fromkeys(stale)},
                             cfg.agent.namespace)
            except NotFound:
                pass
        ctx.notes["warm"] = {"wanted": sorted(want), "created": made}


TASK = WarmTask()

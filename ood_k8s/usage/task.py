"""The leader task ``ledger``: record every ended session once, then mark its pod.

First in the pass (:data:`ood_k8s.agent.tasks.TASKS`), so cleanup -- which deletes an ended pod only
once it carries :data:`~ood_k8s.core.vocab.RECORDED_ANNOTATION` -- never deletes a session the ledger
does not hold.  Sessions the leader never saw end (no agent ran, a leader change) are still there for
the next leader: their pods wait for the mark.

**A session deleted between passes** (OOD's Delete button; the pod goes within seconds) would be gone
before any pass saw it end.  With ``usage.finalizer`` on, submit gives each session the finalizer
:data:`~ood_k8s.core.vocab.USAGE_FINALIZER`: a deleted pod stays (Terminating, its containers stopped)
until this task has recorded it and removes the finalizer in the same patch as the mark.  It is a
setting, off by default, because a site that runs no agent would keep deleted sessions Terminating
forever.  A student holds ``patch`` on their own pods and could remove the finalizer before deleting a
session; that session is then recorded only if a pass sees it end -- what it could gain is one
session's time, and the budget task has counted that session against the budget while it ran.
:mod:`ood_k8s.usage.guard` closes that too, once wired into the pod guard: it refuses portal users
the removal.

**What the ledger holds is the ledger's to say**, not the pod's: a student may write their own pod's
annotations, so a forged :data:`~ood_k8s.core.vocab.RECORDED_ANNOTATION` must not keep a session out
of it.  The task asks the leader's view of the ledger (:mod:`.view`, read once, then kept current by its
own records and a background refresh): an ended pod whose UID it lacks is recorded (the write itself
re-reads the shard, so a view a minute stale costs a GET, never a second entry); one it holds but
unmarked -- the writer died in between -- is only marked.

The mark is a merge patch: the annotation, and the finalizer list without ours carrying the pod's
``resourceVersion`` (so it cannot drop a finalizer someone else added meanwhile; on a conflict the next
pass retries -- the ledger write before it is idempotent).
"""

from __future__ import annotations

from typing import Any

from ood_k8s.agent.tasks import PassContext
from ood_k8s.core import vocab
from ood_k8s.core.errors import Conflict, Forbidden, NotFound
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.timefmt import rfc3339
from ood_k8s.usage import entry
from ood_k8s.usage.ledger import Ledger
from ood_k8s.usage.view import view_for

PRUNE_EVERY = 86400.0  # seconds between the ledger's retention passes


def mark_patch(pod: dict[str, Any], now: float) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    patch: dict[str, Any] = {"metadata": {"annotations": {vocab.RECORDED_ANNOTATION: rfc3339(now)}}}
    finalizers = meta.get("finalizers") or []
    if vocab.USAGE_FINALIZER in finalizers:
        patch["metadata"]["finalizers"] = [f for f in finalizers if f != vocab.USAGE_FINALIZER]
        patch["metadata"]["resourceVersion"] = meta.get("resourceVersion")
    return patch


class LedgerTask:
    name = "ledger"

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any] | None] = {}  # node name -> Node (None: not readable)
        self.pruned_at: float | None = None

    def node(self, client: KubeClient, name: str | None) -> dict[str, Any] | None:
        """The session's node, read once per node name (nodes do not change instance type)."""
        if not name:
            return None
        if name not in self.nodes:
            try:
                found = client.get_or_none("Node", name)
            except Forbidden:
                found = None
            if found is None:
                return None  # gone (scaled down) or not readable: the entry says "unknown"
            self.nodes[name] = {"metadata": {"labels": (found.get("metadata") or {}).get("labels") or {}},
                                "status": {"capacity": (found.get("status") or {}).get("capacity") or {}}}
        return self.nodes[name]

    def run(self, ctx: PassContext) -> None:
        ledger = Ledger(ctx.client, ctx.cfg.agent.namespace)
        prefix = ctx.cfg.users.namespace_prefix
        view = view_for(ctx.client, ctx.cfg.agent.namespace, ctx.cfg.usage.refresh)
        index = view.index()  # the ledger itself says what it holds: the pod's mark is only cleanup's signal
        to_record: dict[str, list[dict[str, Any]]] = {}
        to_mark: list[dict[str, Any]] = []
        for pod in ctx.pods:
            if not entry.ended(pod):
                continue
            if (pod.get("metadata") or {}).get("uid") not in index:
                to_record.setdefault(entry.user_of(pod, prefix)[1], []).append(pod)
            elif not entry.recorded(pod) or vocab.USAGE_FINALIZER in (pod.get("metadata") or {}).get("finalizers", []):
                to_mark.append(pod)  # recorded, then the writer died before marking it
        for slug, pods in sorted(to_record.items()):
            entries = [entry.from_pod(p, ctx.now, prefix, self.node(ctx.client, (p.get("spec") or {})
                                                                     .get("nodeName"))) for p in pods]
            try:
                view.add(ledger.record(slug, entries))
            except (Conflict, NotFound, Forbidden) as err:
                ctx.log.error("usage ledger: %s's sessions not recorded this pass: %s", slug, err)
                continue
            to_mark += [p for p in pods if not entry.recorded(p) or vocab.USAGE_FINALIZER in
                        (p.get("metadata") or {}).get("finalizers", [])]
        for pod in to_mark:
            self.mark(ctx, pod)
        ctx.notes["ledger"] = {(p.get("metadata") or {}).get("uid", "") for p in ctx.pods
                               if (p.get("metadata") or {}).get("uid") in view.index()}
        ctx.notes["ledger_writes"] = ledger.writes
        self.prune(ctx, ledger)

    def mark(self, ctx: PassContext, pod: dict[str, Any]) -> bool:
        """The pod's mark for cleanup, and our finalizer gone (the pod may go now)."""
        meta = pod.get("metadata") or {}
        patch = mark_patch(pod, ctx.now)
        try:
            ctx.client.patch("Pod", meta["name"], patch, meta["namespace"])
        except NotFound:
            return True  # gone (its finalizer was removed by someone else): the ledger has it all the same
        except Conflict:
            return False  # changed meanwhile: the next pass marks it (the ledger already holds it)
        # Later tasks in this pass see the mark (cleanup may delete the pod now).
        meta.setdefault("annotations", {})[vocab.RECORDED_ANNOTATION] = patch["metadata"]["annotations"][
            vocab.RECORDED_ANNOTATION]
        if "finalizers" in patch["metadata"]:
            meta["finalizers"] = patch["metadata"]["finalizers"]
        return True

    def prune(self, ctx: PassContext, ledger: Ledger) -> None:
        if self.pruned_at is not None and ctx.now - self.pruned_at < PRUNE_EVERY:
            return
        self.pruned_at = ctx.now
        for name in ledger.prune(ctx.now, ctx.cfg.usage.retention_days):
            ctx.log.info("usage ledger: %s is older than usage.retention_days: deleted", name)


TASK = LedgerTask()

"""Usage: the ledger of every session (:mod:`.ledger`, written by the leader's :mod:`.task`; an entry per
session, :mod:`.entry`), the agent's view of it (:mod:`.view`, :mod:`.index`), the reports built from it
(:mod:`.report`, :mod:`.html`, ``ood-k8s usage``), GPU-hour budgets (:mod:`.budget`, enforced while
sessions run by :mod:`.budget_task`), the agent's socket answers about them (:mod:`.answers`) and
Prometheus lines (:mod:`.metrics`)."""

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""ood-k8s: Open OnDemand interactive sessions on Kubernetes.

The public surface is small: :mod:`ood_k8s.sessions.adapter` (the OOD job contract), :mod:`ood_k8s.config`
(site configuration), :mod:`ood_k8s.core.names` (usernames -> Kubernetes names) and the ``ood-k8s`` and
``ood-k8s-psij`` commands.  Everything else is an implementation module.  This file imports
nothing: OOD starts a process per status poll and every import costs start-up time.
"""

__version__ = "0.1.0"

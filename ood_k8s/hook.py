# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Facade: ``python -m ood_k8s.hook`` is what the launcher ``hooks/k8s-bootstrap/ood-k8s-pre-hook`` runs
(and the file it tests for); the hook lives in :mod:`ood_k8s.users.hook`."""

from ood_k8s.users.hook import cli, main, run  # noqa: F401

if __name__ == "__main__":
    cli()

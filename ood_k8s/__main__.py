# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``python -m ood_k8s``: the ``ood-k8s`` command (kubeconfigs may run the credential plugin this way)."""

from ood_k8s.cli import cli

cli()

"""Facade: the class path ``ood_k8s.psij_executor.OodK8sJobExecutor`` is registered with psij-python by
``psij-descriptors/ood_k8s.py``; the executor lives in :mod:`ood_k8s.ood.psij_executor`."""
from __future__ import annotations

from ood_k8s.ood.psij_executor import OodK8sJobExecutor  # noqa: F401

"""Registers ood-k8s's PSI/J executor with psij-python (this directory must have no __init__.py).

psij 0.9.11 ignores ``Descriptor(aliases=...)``, so each accepted name gets its own descriptor.
"""
from __future__ import annotations

from packaging.version import Version
from psij.descriptor import Descriptor

__PSI_J_EXECUTORS__ = [
    Descriptor(name=name, nice_name="Open OnDemand on Kubernetes (ood-k8s)", version=Version("0.1.0"),
               cls="ood_k8s.psij_executor.OodK8sJobExecutor")
    for name in ("ood_k8s", "ood-k8s")
]

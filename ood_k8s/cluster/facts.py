"""Small facts derived from the configuration that every part of the cluster render shares: the
labels on what ``ood-k8s cluster render`` makes, the GPU profiles, and the pool each one lands on.

Imported by :mod:`ood_k8s.cluster.manifests` and by each autoscaler (:mod:`ood_k8s.cluster.autoscaler`),
so it imports neither.
"""

from __future__ import annotations

from ood_k8s.config import Config, Profile
from ood_k8s.core import vocab


def labels() -> dict[str, str]:
    """The labels of every cluster object ood-k8s renders."""
    return {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY}


def gpu_profiles(cfg: Config) -> list[Profile]:
    return [p for p in cfg.profiles if p.gpu.max > 0]


def pool_name(profile: Profile) -> str:
    """The NodePool (and node group) of a GPU profile: the one its pods select, else the profile's name."""
    return profile.node_pool or profile.name

"""GPU sharing: MIG slices and time-sliced GPUs, as the NVIDIA device plugin (GPU operator) is told.

A profile shares its nodes' GPUs when ``gpu.time_slicing`` (N sessions per GPU, no memory isolation)
or ``gpu.mig`` (the GPU operator's mig-manager layout, e.g. ``all-1g.5gb``; sessions request the
slice's resource, e.g. ``nvidia.com/mig-1g.5gb``) is set.  ``cluster render`` then gives the device
plugin one ConfigMap (``capacity.device_plugin_config`` in ``capacity.device_plugin_namespace``: the
GPU operator's ``devicePlugin.config.name``) with an entry per shared profile::

    version: v1
    flags: {migStrategy: mixed}            # none without MIG; single when sessions ask nvidia.com/gpu
    sharing:
      timeSlicing:
        resources: [{name: nvidia.com/gpu, replicas: 4}]

and the profile's nodes carry the labels that select it (:func:`node_labels`):
``nvidia.com/device-plugin.config=<profile>`` and, with MIG, ``nvidia.com/mig.config=<layout>``.  So a
class of 200 on 50 GPUs is a profile with ``time_slicing: 4`` that the course lists.
"""

from __future__ import annotations

from typing import Any

import yaml

from ood_k8s.cluster.facts import labels
from ood_k8s.config import Config, Profile

CONFIG_LABEL = "nvidia.com/device-plugin.config"  # the device plugin reads its config entry from this node label
MIG_CONFIG_LABEL = "nvidia.com/mig.config"  # the GPU operator's mig-manager partitions the node's GPUs by it
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"


def shared(profile: Profile) -> bool:
    return profile.gpu.max > 0 and (profile.gpu.time_slicing > 1 or bool(profile.gpu.mig))


def mig_strategy(profile: Profile) -> str:
    if not profile.gpu.mig:
        return "none"
    return "mixed" if profile.gpu.resource.startswith(MIG_RESOURCE_PREFIX) else "single"


def plugin_config(profile: Profile) -> dict[str, Any]:
    """The device plugin's configuration for the profile's nodes."""
    out: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": mig_strategy(profile)}}
    if profile.gpu.time_slicing > 1:
        out["sharing"] = {"timeSlicing": {"resources": [{"name": profile.gpu.resource,
                                                         "replicas": profile.gpu.time_slicing}]}}
    return out


def node_labels(profile: Profile) -> dict[str, str]:
    """Labels the profile's nodes need so the device plugin (and mig-manager) share their GPUs."""
    if not shared(profile):
        return {}
    out = {CONFIG_LABEL: profile.name}
    if profile.gpu.mig:
        out[MIG_CONFIG_LABEL] = profile.gpu.mig
    return out


def configmap(cfg: Config) -> dict[str, Any] | None:
    """The device plugin's ConfigMap, or None when no profile shares GPUs."""
    data = {p.name: yaml.safe_dump(plugin_config(p), sort_keys=False) for p in cfg.profiles if shared(p)}
    if not data:
        return None
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": cfg.capacity.device_plugin_config, "namespace": cfg.capacity.device_plugin_namespace,
                         "labels": labels()},
            "data": data}


def config_problems(cfg: Config) -> list[str]:
    """A MIG layout needs a MIG slice or nvidia.com/gpu; sharing needs a GPU profile."""
    out = []
    for i, p in enumerate(cfg.profiles):
        if (p.gpu.mig or p.gpu.time_slicing > 1) and p.gpu.max == 0:
            out.append(f"profiles[{i}].gpu: got GPU sharing (mig or time_slicing) with max 0, expected a GPU "
                       "profile (gpu.max at least 1)")
        if p.gpu.mig and not (p.gpu.resource.startswith(MIG_RESOURCE_PREFIX) or p.gpu.resource == "nvidia.com/gpu"):
            out.append(f"profiles[{i}].gpu.resource: got {p.gpu.resource!r} with mig {p.gpu.mig!r}, expected a MIG "
                       "slice such as nvidia.com/mig-1g.5gb (strategy mixed) or nvidia.com/gpu (single)")
        if p.gpu.resource.startswith(MIG_RESOURCE_PREFIX) and not p.gpu.mig:
            out.append(f"profiles[{i}].gpu.mig: got '' with resource {p.gpu.resource!r}, expected the layout that "
                       "makes that slice, e.g. all-1g.5gb")
    return out

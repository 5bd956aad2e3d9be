"""What a session pod may ask of the scheduler and the kernel, defined once for submit and the guard.

A student with a kubeconfig can send any pod to their namespace, so everything submit decides about
placement must also hold at admission (REFERENCE §11): the priority class (a session may preempt only
placeholders, never another session or a system pod), the node (no ``spec.nodeName``, which skips the
scheduler), the GPU pools (a pod that tolerates a GPU taint or selects a GPU pool must request a GPU,
and only through a profile the user is entitled to), the wall time (``activeDeadlineSeconds`` at most
``jobs.max_walltime``), the runtime class, the namespaced sysctls (never the one that defeats an NFS
export's privileged-port rule) and ``supplementalGroupsPolicy``.

Submit builds its pods from these definitions (:mod:`ood_k8s.sessions.resolve`); :mod:`ood_k8s.policy.cel`
turns them into the guard's CEL; the hook records each user's entitled profiles on their namespace
(:func:`entitled_profiles`, the annotation :data:`ood_k8s.core.vocab.PROFILES_ANNOTATION`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ood_k8s.config import Config, Profile
from ood_k8s.core import vocab
from ood_k8s.core.errors import NotEntitled
from ood_k8s.core.identity import Identity
from ood_k8s.policy import access

SESSION_PRIORITY_CLASS = "ood-interactive"  # what a session runs at unless its profile names another
PLACEHOLDER_PRIORITY_CLASS = "ood-placeholder"
SYSTEM_PRIORITY_PREFIX = "system-"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
STRICT_GROUPS = "Strict"  # supplementalGroupsPolicy: only the pod's own groups, never the image's /etc/group
STRICT_GROUPS_SINCE = 33  # KEP-3619 is beta and on by default from Kubernetes 1.33

# Namespaced sysctls Kubernetes calls safe, minus net.ipv4.ip_unprivileged_port_start: lowering it lets
# any uid bind a port below 1024 and so defeats a 'secure' NFS export (REFERENCE §11).
SAFE_SYSCTLS = ("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")




def session_priority_class(profile: Profile) -> str:
    """The PriorityClass of the profile's sessions: its own, else ``ood-interactive``."""
    return profile.priority_class or SESSION_PRIORITY_CLASS


def priority_classes(profiles: Sequence[Profile]) -> list[str]:
    """Every PriorityClass a session may name (what ``cluster render`` creates, too)."""
    return list(dict.fromkeys([SESSION_PRIORITY_CLASS, *(session_priority_class(p) for p in profiles)]))


def runtime_classes(profiles: Sequence[Profile]) -> list[str]:
    return list(dict.fromkeys(p.runtime_class for p in profiles if p.runtime_class))


def placement(profile: Profile) -> tuple[dict[str, str], str]:
    """Where a profile's pods land: the node labels they must select, and the GPU resource they may request
    ('' for none).  (A plain tuple: config check imports this module, and a NamedTuple's postponed
    annotations would cost the poll path a typing compile per field, tests/test_startup_paths.py.)"""
    selector = dict(profile.node_selector)
    if profile.node_pool:
        selector[vocab.KARPENTER_NODEPOOL_LABEL] = profile.node_pool
    return selector, profile.gpu.resource if profile.gpu.max > 0 else ""


def gpu_resources(profiles: Sequence[Profile]) -> list[str]:
    """Every GPU resource (and so GPU taint key) the site knows, the default one always included."""
    return sorted({DEFAULT_GPU_RESOURCE, *(p.gpu.resource for p in profiles if p.gpu.max > 0)})


def node_pools(profiles: Sequence[Profile]) -> dict[str, list[str]]:
    """Node pool -> the profiles that land on it."""
    out: dict[str, list[str]] = {}
    for p in profiles:
        if p.node_pool:
            out.setdefault(p.node_pool, []).append(p.name)
    return out


def entitled_profiles(profiles: Sequence[Profile], ident: Identity) -> str:
    """The value of :data:`~ood_k8s.core.vocab.PROFILES_ANNOTATION`: the profiles ``ident`` may use, comma-joined."""
    return ",".join(p.name for p in access.usable_profiles(profiles, ident))


def strict_groups_required(cfg: Config) -> bool:
    """Whether session pods set ``supplementalGroupsPolicy: Strict`` and the guard requires it
    (``cluster.strict_supplemental_groups``; 'auto': from Kubernetes 1.33, where it is on by default)."""
    setting = cfg.cluster.strict_supplemental_groups
    if setting == "auto":
        return int(cfg.cluster.kubernetes_version.split(".")[1]) >= STRICT_GROUPS_SINCE
    return setting == "on"



def config_problems(cfg: Config) -> list[str]:
    """A profile may not run sessions at a system priority or at the placeholders' (which anything preempts)."""
    problems = []
    for i, p in enumerate(cfg.profiles):
        if p.priority_class.startswith(SYSTEM_PRIORITY_PREFIX) or p.priority_class == PLACEHOLDER_PRIORITY_CLASS:
            problems.append(f"profiles[{i}].priority_class: got {p.priority_class!r}, expected a class of the "
                            f"site's sessions such as {SESSION_PRIORITY_CLASS} (never system-*: a session could "
                            "evict system pods)")
    return problems



def check_placement(profiles: Sequence[Profile], profile: Profile, node_selector: dict[str, str],
                    tolerations: list[dict[str, Any]], gpus: int) -> None:
    """Refuse at submit what the guard refuses at admission: another profile's node pool (a pool no profile
    names is the site's business), and a GPU taint toleration or GPU pool without a GPU request."""
    pool = node_selector.get(vocab.KARPENTER_NODEPOOL_LABEL)
    if pool is not None and pool != profile.node_pool and pool in node_pools(profiles):
        raise NotEntitled(f"node pool '{pool}' is not the one of profile '{profile.name}'",
                          "choose the profile of that node pool instead")
    taints = {DEFAULT_GPU_RESOURCE, profile.gpu.resource}
    wants_gpu = (bool(profile.node_pool) and profile.gpu.max > 0) or any(
        t.get("key") in taints or (not t.get("key") and t.get("operator") == "Exists") for t in tolerations)
    if wants_gpu and gpus <= 0:
        raise NotEntitled(f"profile '{profile.name}' runs on GPU nodes, so a session must request a GPU",
                          "ask for at least 1 GPU, or choose a profile without GPUs")

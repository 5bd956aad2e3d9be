"""What a session pod may ask of the scheduler and the kernel, defined once for submit and the guard.

A student with a kubeconfig can send any pod to their namespace, so everything submit decides about
placement must also hold at admission (REFERENCE §11): the priority class (a session may preempt only
placeholders, never another session or a system pod), the node (no ``spec.nodeName``, which skips the
scheduler), the GPU pools (a pod that tolerates a GPU taint or selects a GPU pool must request a GPU,
and only through a profile the user is entitled to), the pools and labels of profiles the user is not
entitled to (by nodeSelector or node affinity, :func:`affinity_problems`), the wall time
(``activeDeadlineSeconds`` at most ``jobs.max_walltime``), the runtime class, the namespaced sysctls
(never the one that defeats an NFS export's privileged-port rule) and ``supplementalGroupsPolicy``.

Submit builds its pods from these definitions (:mod:`ood_k8s.sessions.resolve`); :mod:`ood_k8s.policy.cel`
turns them into the guard's CEL; the hook records each user's entitled profiles on their namespace
(:func:`entitled_profiles`, the annotation :data:`ood_k8s.core.vocab.PROFILES_ANNOTATION`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ood_k8s.config import Config, Profile
from ood_k8s.config.course import CourseConfig
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


def node_pools(profiles: Sequence[Profile], courses: Sequence[CourseConfig] = ()) -> dict[str, list[str]]:
    """Node pool -> the profiles that land on it (a course's pool: the course's profiles)."""
    out: dict[str, list[str]] = {}
    for p in profiles:
        if p.node_pool:
            out.setdefault(p.node_pool, []).append(p.name)
    for c in courses:
        if c.node_pool:
            names = out.setdefault(c.node_pool, [])
            names.extend(n for n in c.profiles if n not in names)
    return out


def gpu_pools(profiles: Sequence[Profile], courses: Sequence[CourseConfig] = ()) -> list[str]:
    """Node pools of GPU sessions: the GPU profiles' pools, then the pools of courses with a GPU profile."""
    own = [p.node_pool for p in profiles if p.node_pool and p.gpu.max > 0]
    gpu = {p.name for p in profiles if p.gpu.max > 0}
    extra = [c.node_pool for c in courses if c.node_pool and gpu & set(c.profiles) and c.node_pool not in own]
    return own + list(dict.fromkeys(extra))


def gpu_placements(profiles: Sequence[Profile], courses: Sequence[CourseConfig] = ()
                   ) -> dict[str, tuple[str, dict[str, str], str]]:
    """Every placement a GPU session may have: key -> (profile, node selector, GPU resource).  The key is the
    profile's name, and ``profile@course`` where a course moves the profile's sessions to its own pool."""
    out = {p.name: (p.name, *placement(p)) for p in profiles if p.gpu.max > 0}
    for c in courses:
        for name in c.profiles if c.node_pool else ():
            if name in out:
                _, selector, resource = out[name]
                out[f"{name}@{c.name}"] = (name, {**selector, vocab.KARPENTER_NODEPOOL_LABEL: c.node_pool}, resource)
    return out


def placement_keys(profiles: Sequence[Profile]) -> list[str]:
    """Node label keys that tell the profiles' nodes apart: the node pool's and every profile's node_selector
    keys.  Node affinity may name them only with ``In``: NotIn, Exists, DoesNotExist, Gt and Lt select by
    exclusion, which can leave a pool reserved for others as the only fit -- and neither submit nor the
    guard knows the nodes' labels to tell."""
    return sorted({vocab.KARPENTER_NODEPOOL_LABEL, *(k for p in profiles for k in p.node_selector)})


def reserved_for_others(profiles: Sequence[Profile], profile: Profile, key: str, value: str) -> bool:
    """Whether node label ``key=value`` places pods on other profiles' nodes than ``profile``'s: a node pool only
    other profiles name, or another profile's node_selector label that ``profile``'s own selector lacks."""
    if key == vocab.KARPENTER_NODEPOOL_LABEL:
        pools = node_pools(profiles)
        return value in pools and profile.name not in pools[value]
    return profile.node_selector.get(key) != value and any(p.node_selector.get(key) == value for p in profiles)


def node_terms(affinity: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node selector term of a pod's node affinity, required and preferred alike: Karpenter provisions
    for a preference as for a requirement (relaxing it only when nothing fits), so either can place a pod."""
    node = affinity.get("nodeAffinity") or {}
    required = (node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    preferred = [w.get("preference") or {} for w in node.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    return [*required, *preferred]


def affinity_problems(profiles: Sequence[Profile], profile: Profile, affinity: dict[str, Any]) -> list[str]:
    """What the guard refuses in a ``profile`` pod's affinity: a node named (matchFields), an operator other
    than In on a placement key, a value placing it on other profiles' nodes, pod affinity to other namespaces."""
    keys, out = placement_keys(profiles), []
    for term in node_terms(affinity):
        if term.get("matchFields"):
            out.append("node affinity may not name nodes (matchFields)")
        for e in term.get("matchExpressions") or []:
            key, op = e.get("key", ""), e.get("operator", "")
            if key in keys and op != "In":
                out.append(f"node affinity on {key} may only use the operator In, not {op}")
            elif op == "In":
                out += [f"node label {key}={v} places pods on another profile's nodes" for v in e.get("values") or []
                        if reserved_for_others(profiles, profile, key, v)]
    pod = affinity.get("podAffinity") or {}
    preferred = pod.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    terms = [*(pod.get("requiredDuringSchedulingIgnoredDuringExecution") or []),
             *((w.get("podAffinityTerm") or {}) for w in preferred)]
    if any(t.get("namespaces") or "namespaceSelector" in t for t in terms):
        out.append("pod affinity may only follow pods of the session's own namespace (no namespaces or "
                   "namespaceSelector)")
    return out


def entitled_profiles(profiles: Sequence[Profile], ident: Identity, granted: Sequence[str] = ()) -> str:
    """The value of :data:`~ood_k8s.core.vocab.PROFILES_ANNOTATION`: the profiles ``ident`` may use (their groups'
    or, ``granted``, their current courses'), comma-joined."""
    return ",".join(p.name for p in access.usable_profiles(profiles, ident, granted))


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
        problems += [f"profiles[{i}].affinity: {problem}" for problem in affinity_problems(cfg.profiles, p, p.affinity)]
    return problems



def check_placement(profiles: Sequence[Profile], profile: Profile, node_selector: dict[str, str],
                    tolerations: list[dict[str, Any]], gpus: int, affinity: dict[str, Any] | None = None,
                    courses: Sequence[CourseConfig] = (), course_pool: str = "") -> None:
    """Refuse at submit what the guard refuses at admission: another profile's node pool or node labels (a pool
    or label no profile names is the site's business), by nodeSelector or affinity (:func:`affinity_problems`),
    and a GPU taint toleration or GPU pool without a GPU request."""
    pool = node_selector.get(vocab.KARPENTER_NODEPOOL_LABEL)
    if pool is not None and pool not in (profile.node_pool, course_pool) and pool in node_pools(profiles, courses):
        raise NotEntitled(f"node pool '{pool}' is not the one of profile '{profile.name}'",
                          "choose the profile of that node pool instead")
    problems = [f"node label {k}={v} places pods on another profile's nodes" for k, v in node_selector.items()
                if k != vocab.KARPENTER_NODEPOOL_LABEL and reserved_for_others(profiles, profile, k, v)]
    problems += affinity_problems(profiles, profile, affinity or {})
    if problems:
        raise NotEntitled(f"profile '{profile.name}': {problems[0]}",
                          "leave placement to the profile: choose the profile of those nodes instead")
    taints = {DEFAULT_GPU_RESOURCE, profile.gpu.resource}
    wants_gpu = (bool(profile.node_pool) and profile.gpu.max > 0) or any(
        t.get("key") in taints or (not t.get("key") and t.get("operator") == "Exists") for t in tolerations)
    if wants_gpu and gpus <= 0:
        raise NotEntitled(f"profile '{profile.name}' runs on GPU nodes, so a session must request a GPU",
                          "ask for at least 1 GPU, or choose a profile without GPUs")

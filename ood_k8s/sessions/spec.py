"""A resolved job: what :func:`ood_k8s.sessions.resolve.resolve` decides and :mod:`ood_k8s.sessions.objects` builds.

Plain data with every default filled in and every check done, so building the objects decides
nothing.  The volume names here are the pod's own (reserved: a native mount may not take them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCRIPT_FILE = "script.sh"
SCRIPT_MOUNT = "/ood/script.sh"
FILES_VOLUME = "ood-files"
SHM_VOLUME = "dshm"
DEFAULT_CONTAINER = "app"
MAX_FILES_BYTES = 1000 * 1024  # a ConfigMap holds at most 1 MiB, keep room for metadata


@dataclass
class ConfigFile:
    filename: str
    data: str
    mount_path: str | None = None
    sub_path: str | None = None
    init_mount_path: str | None = None
    init_sub_path: str | None = None


@dataclass
class ContainerSpec:
    name: str
    image: str
    command: list[str]
    env: list[tuple[str, str]]             # plain values, in order; the adapter's own come first
    port: int | None = None
    working_dir: str | None = None
    image_pull_policy: str = "IfNotPresent"
    probe: dict[str, int] | None = None    # readiness probe timings (OOD's startup_probe keys)


@dataclass
class JobSpec:
    """Everything :mod:`ood_k8s.sessions.objects` needs; no further decisions are made there."""

    username: str
    namespace: str
    user_labels: dict[str, str]
    uid: int
    gid: int
    group: str
    home: str
    supplemental_groups: list[int]
    job_name: str
    name_hint: str                          # readable part of the job id
    profile: str
    container: ContainerSpec
    init_containers: list[ContainerSpec]
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    gpus: int
    gpu_resource: str
    walltime: int                           # seconds granted (sessions.lifetime)
    files: list[ConfigFile]
    volumes: list[dict[str, Any]]
    mounts: list[dict[str, Any]]           # main container (init containers get them too)
    init_mounts: list[dict[str, Any]]
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] = field(default_factory=dict)
    priority_class: str = ""
    runtime_class: str = ""
    strict_groups: bool = False             # supplementalGroupsPolicy Strict (policy.pods.strict_groups_required)
    shm_size: str = ""
    restart_policy: str = "Never"
    image_pull_secrets: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    hold: bool = False
    connection: str = "pod_ip"
    nodeport_host: str = "node_name"       # connection nodeport: the host the portal reaches (cluster.nodeport_host)
    script_mode: bool = True               # run /ood/script.sh (no native command)
    shell: str = "/bin/bash"
    stdout_path: str | None = None
    stderr_path: str | None = None
    accounting_id: str | None = None
    queue_name: str | None = None
    ceiling: int = 0                       # activeDeadlineSeconds: the most it may run, extended (0: walltime)

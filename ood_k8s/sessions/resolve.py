"""A job request, checked and resolved: OOD's Script in, a complete :class:`JobSpec` out.

Everything that can refuse a job lives here and runs before any object is created: the shape of
``native`` (every key of OOD's built-in Kubernetes adapter, REFERENCE §2, plus the ood-k8s
extensions), quantities, the profile and the user's entitlement to it, CPU/memory/GPU bounds and
the wall time.  Each refusal is one :class:`~ood_k8s.core.errors.UsageError` line naming the key.

``native`` is either a mapping (apps written for OOD's Kubernetes adapter) or a list of CLI-like
tokens (apps written for OOD's PSI/J adapter: ``["--profile", "gpu-t4"]``); both end up as the
same mapping.  Keys of that mapping:

* ``container`` -- ``name image command port env memory cpu memory_limit memory_request cpu_limit
  cpu_request working_dir restart_policy image_pull_policy image_pull_secret supplemental_groups
  startup_probe labels`` (OOD's keys, same meaning; ``image`` defaults to the profile's);
* ``init_containers`` (same shape), ``configmap: {files: [...]}``, ``mounts``, ``node_selector``,
  ``gpu_type`` (OOD's keys);
* extensions: ``profile``, ``gpus``, ``tolerations``, ``affinity``, and ``mounts`` of type ``pvc``,
  ``csi``, ``empty_dir``, ``configmap`` and ``secret`` besides OOD's ``nfs`` and ``host``.

A mount is accepted only if the cluster would admit the pod.  Where ``ood-k8s cluster render`` gives
the cluster its admission guard (Kubernetes 1.28 and later), the guard's volume rules decide, read
from their one definition in :mod:`ood_k8s.cluster.manifests`: ``pvc`` only for the user's home claim and the
claims of ``storage.extra_mounts`` (read-only and at the sub-path configured there), ``empty_dir``,
``configmap``, ``secret``, and ``csi`` of the drivers in ``jobs.csi_drivers``; ``nfs``, other
``csi`` and ``host`` are refused whatever ``users.pod_security`` says (with ``storage.mode:
hostpath``, a ``host`` mount of the user's own home passes), so a share reaches sessions through
``storage.extra_mounts`` (a PersistentVolume and claim, which both the guard and this module allow).
``users.pod_security`` is checked too, and is all that limits ``nfs`` (baseline) and ``host``
(privileged) on clusters without the guard.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping

from ood_k8s.config import Config, Profile
from ood_k8s.core import names
from ood_k8s.core.errors import NotEntitled, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.sessions.quantity import format_bytes, parse_quantity
from ood_k8s.sessions.status import HOLD_GATE  # noqa: F401  (re-exported: objects take it from the job spec's module)
from ood_k8s.storage import backend as storage

if TYPE_CHECKING:
    from ood_k8s.cluster.manifests import SessionClaim

SCRIPT_FILE = "script.sh"
SCRIPT_MOUNT = "/ood/script.sh"
FILES_VOLUME = "ood-files"
SHM_VOLUME = "dshm"
DEFAULT_CONTAINER = "app"
MAX_FILES_BYTES = 1000 * 1024  # a ConfigMap holds at most 1 MiB, keep room for metadata
JOB_NAME_ANNOTATION = f"{names.DOMAIN}/job-name"
ACCOUNT_ANNOTATION = f"{names.DOMAIN}/account"
QUEUE_ANNOTATION = f"{names.DOMAIN}/queue"
SUBMIT_HOST_ANNOTATION = f"{names.DOMAIN}/submit-host"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
NODEPOOL_LABEL = "karpenter.sh/nodepool"

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_FILE_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_RESERVED_LABEL_PREFIXES = (f"{names.DOMAIN}/", "app.kubernetes.io/managed-by", "kubernetes.io/", "k8s.io/")
_RESERVED_VOLUMES = frozenset({storage.HOME_VOLUME, FILES_VOLUME, SHM_VOLUME})
_RESTART = ("Never", "OnFailure", "Always")
_PULL = ("IfNotPresent", "Always", "Never")

# Tokens a PSI/J submission may carry (OOD turns script.native ["--key", "value"] into these).
ATTRIBUTE_KEYS = ("profile", "image", "port", "cpu", "memory", "gpus", "command", "working_dir",
                  "image_pull_policy", "hold", "native")

# Script fields OOD may send that have no meaning on Kubernetes; accepted and ignored.
_IGNORED_SCRIPT_KEYS = frozenset({
    "email", "email_on_started", "email_on_terminated", "rerunnable", "priority", "start_time",
    "job_array_request", "qos", "reservation_id", "copy_environment", "input_path", "args",
})


# --- input: OOD's Script ------------------------------------------------------------------------


@dataclass
class Script:
    """The fields of OOD's ``OodCore::Job::Script`` an adapter acts on (ood_core: job/script.rb)."""

    content: str = ""
    job_name: str | None = None
    workdir: str | None = None
    job_environment: dict[str, Any] | None = None
    shell_path: str | None = None
    output_path: str | None = None
    error_path: str | None = None
    input_path: str | None = None
    queue_name: str | None = None
    accounting_id: str | None = None
    reservation_id: str | None = None
    wall_time: int | None = None
    gpus_per_node: int | None = None
    cores: int | None = None
    memory: int | str | None = None       # bytes (PSI/J) or a quantity
    native: Any = None                    # mapping, or list of "--key value" tokens
    submit_as_hold: bool = False
    copy_environment: bool | None = None
    args: list[str] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Script:
        """Build from plain data (JSON/YAML), refusing unknown keys with one line."""
        if not isinstance(data, Mapping):
            raise UsageError("a job script must be a mapping of OOD Script fields")
        known = set(cls.__dataclass_fields__)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                kwargs[key] = value
            elif key not in _IGNORED_SCRIPT_KEYS:
                raise UsageError(f"unknown job script field '{_show(key)}'",
                                 f"known fields: {', '.join(sorted(known))}")
        return cls(**kwargs)


# --- output: the resolved job --------------------------------------------------------------------


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
    walltime: int
    files: list[ConfigFile]
    volumes: list[dict[str, Any]]
    mounts: list[dict[str, Any]]           # main container (init containers get them too)
    init_mounts: list[dict[str, Any]]
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] = field(default_factory=dict)
    priority_class: str = ""
    runtime_class: str = ""
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


# --- helpers -------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(path: str, value: Any, expected: str, hint: str | None = None) -> UsageError:
    return UsageError(f"{path}: got '{_show(value)}', expected {expected}", hint)


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _bad(path, value, "a mapping")
    return dict(value)


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise _bad(path, value, "a list")
    return list(value)


def _known(mapping: Mapping[str, Any], keys: tuple[str, ...] | frozenset[str], path: str) -> None:
    for key in mapping:
        if key not in keys:
            raise UsageError(f"{path}: unknown key '{_show(key)}'", f"known keys: {', '.join(sorted(keys))}")


def _text(value: Any, path: str, *, allow_empty: bool = False, max_len: int = 4096) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _bad(path, value, "a string")
    text = str(value)
    if (not text and not allow_empty) or len(text) > max_len or "\x00" in text:
        raise _bad(path, value, f"a non-empty string of at most {max_len} characters")
    return text


def _opt_text(value: Any, path: str, **kw: Any) -> str | None:
    return None if value is None or value == "" else _text(value, path, **kw)


def _int(value: Any, path: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(path, value, f"a whole number from {lo} to {hi}")
    return value


def _abs_path(value: Any, path: str) -> str:
    text = _text(value, path)
    if not text.startswith("/") or any(part == ".." for part in text.split("/")):
        raise _bad(path, value, "an absolute path without '..'")
    return text


def _rel_path(value: Any, path: str) -> str:
    text = _text(value, path)
    if text.startswith("/") or any(part == ".." for part in text.split("/")):
        raise _bad(path, value, "a relative path without '..'")
    return text


def _dns_label(value: Any, path: str) -> str:
    text = _text(value, path)
    if not names.is_dns_label(text):
        raise _bad(path, value, "a DNS-1123 label (lowercase letters, digits, '-'; at most 63)")
    return text


def cpu_quantity(value: Any, path: str) -> tuple[str, Decimal]:
    """(canonical text, cores) of a CPU amount; refuses anything that is not a quantity."""
    text = _text(value, path, max_len=32).strip()
    try:
        amount = parse_quantity(text)
    except ValueError:
        raise _bad(path, value, "a CPU amount such as 2 or 500m") from None
    if amount <= 0:
        raise _bad(path, value, "a CPU amount greater than 0")
    return text, amount


def memory_quantity(value: Any, path: str) -> tuple[str, Decimal]:
    """(canonical text, bytes) of a memory amount. Bare integers are bytes (PSI/J sends bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise _bad(path, value, "a memory size greater than 0")
        return format_bytes(value), Decimal(value)
    text = _text(value, path, max_len=32).strip()
    try:
        amount = parse_quantity(text)
    except ValueError:
        hint = None
        if re.match(r"^\d+(\.\d+)?\s*[KMGTPE]?[Bb]$", text) or re.match(r"^\d+\s+\w+$", text):
            hint = "use Kubernetes units such as 4Gi or 512Mi (not '4GB' or '4 G')"
        raise _bad(path, value, "a memory size such as 4Gi or 512Mi", hint) from None
    if amount < 1024 * 1024:
        raise _bad(path, value, "a memory size of at least 1Mi", "did you forget the unit (Gi, Mi)?")
    return text, amount


def _show_cpu(amount: Decimal) -> str:
    return str(int(amount)) if amount == amount.to_integral_value() else f"{int(amount * 1000)}m"


# --- PSI/J custom attributes and OOD native tokens -----------------------------------------------


def tokens_to_attributes(tokens: list[Any]) -> dict[str, str]:
    """OOD psij.rb's rule: ['--name', 'value'] -> {name: value}; a flag without value -> ''."""
    out: dict[str, str] = {}
    items = [str(t) for t in tokens]
    i = 0
    while i < len(items):
        token = items[i]
        dashed = token.startswith("-")
        name = token[2:] if token.startswith("--") else token[1:] if dashed else token
        if dashed and i + 1 < len(items) and not items[i + 1].startswith("-"):
            out[name] = items[i + 1]
            i += 2
        else:
            out[name] = ""
            i += 1
    return out


def native_from_attributes(attrs: Mapping[str, Any], executor: str = "") -> tuple[dict[str, Any], bool]:
    """(native mapping, hold) from PSI/J custom attributes; ``<executor>.`` prefixes are dropped."""
    native: dict[str, Any] = {}
    container: dict[str, Any] = {}
    hold = False
    for raw_key, value in attrs.items():
        key = str(raw_key)
        # psij-python's convention is "<executor>.<key>"; OOD's submit.py adds that prefix too.
        for prefix in ({f"{executor}.", "ood_k8s.", "ood-k8s."} if executor else {"ood_k8s.", "ood-k8s."}):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        key = key.replace("-", "_")
        if key not in ATTRIBUTE_KEYS:
            raise UsageError(f"unknown job option '--{_show(key)}'",
                             f"known options: {', '.join('--' + k for k in ATTRIBUTE_KEYS)}")
        if key == "hold":
            hold = str(value).lower() not in ("false", "0", "no")
        elif key == "native":
            try:
                extra = json.loads(value) if isinstance(value, str) else value
            except ValueError:
                raise _bad("--native", value, "a JSON object") from None
            native = _deep_merge(native, _mapping(extra, "--native"))
        elif key in ("profile", "gpus"):
            native[key] = value
        else:
            container[key] = value
    if container:
        native = _deep_merge(native, {"container": container})
    return native, hold


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def normalize_native(native: Any) -> tuple[dict[str, Any], bool]:
    """(mapping, hold) from OOD's ``script.native`` in either of its two shapes."""
    if native is None:
        return {}, False
    if isinstance(native, (list, tuple)):
        return native_from_attributes(tokens_to_attributes(list(native)))
    return _mapping(native, "native"), False


# --- resolution ---------------------------------------------------------------------------------

_NATIVE_KEYS = frozenset({"container", "init_containers", "configmap", "mounts", "node_selector", "gpu_type",
                          "profile", "gpus", "tolerations", "affinity"})
_CONTAINER_KEYS = frozenset({"name", "image", "command", "port", "env", "memory", "cpu", "memory_limit",
                             "memory_request", "cpu_limit", "cpu_request", "working_dir", "restart_policy",
                             "image_pull_policy", "image_pull_secret", "supplemental_groups", "startup_probe",
                             "labels"})
_PROBE_KEYS = frozenset({"initial_delay_seconds", "failure_threshold", "period_seconds"})
_FILE_KEYS = frozenset({"filename", "data", "mount_path", "sub_path", "init_mount_path", "init_sub_path"})
_MOUNT_KEYS = {
    "nfs": frozenset({"host", "path"}),
    "host": frozenset({"path", "host_type"}),
    "pvc": frozenset({"claim_name"}),
    "csi": frozenset({"driver", "volume_attributes", "fs_type"}),
    "empty_dir": frozenset({"medium", "size_limit"}),
    "configmap": frozenset({"configmap_name"}),
    "secret": frozenset({"secret_name"}),
}
_MOUNT_COMMON = frozenset({"type", "name", "destination_path", "sub_path", "read_only"})
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_HOST_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
               "BlockDevice")


def select_profile(cfg: Config, ident: Identity, requested: str | None, queue_name: str | None) -> Profile:
    """The profile a job runs with, refusing unknown ones and those the user's groups lack."""
    available = [p.name for p in cfg.profiles]
    name = requested
    if not name and queue_name and queue_name in available:
        name = queue_name  # a stock OOD form's queue field picks the profile
    name = name or cfg.jobs.default_profile
    try:
        profile = cfg.profile(name)
    except KeyError:
        raise UsageError(f"unknown profile '{_show(name)}'", f"choose one of: {', '.join(available)}") from None
    if not ident.in_any(cfg.users.allowed_groups):
        raise NotEntitled(f"user '{ident.username}' is not allowed to start sessions on this cluster",
                          f"ask your administrator for membership in one of: {', '.join(cfg.users.allowed_groups)}")
    if not ident.in_any(profile.groups):
        raise NotEntitled(f"profile '{profile.name}' is reserved for members of {', '.join(profile.groups)}",
                          "choose another profile or ask your instructor for access")
    return profile


def resolve(script: Script, cfg: Config, ident: Identity, *, hold: bool = False, submit_host: str = "") -> JobSpec:
    """Check ``script`` against the site's rules and resolve every default. Raises UsageError."""
    if not isinstance(script, Script):
        raise UsageError("submit needs an OOD Script (a mapping of its fields)")
    if ident.uid < cfg.users.min_uid:
        raise NotEntitled(f"user '{ident.username}' has uid {ident.uid}, below users.min_uid "
                          f"({cfg.users.min_uid})", "system accounts cannot start sessions")
    user = names.for_user(ident.username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix)
    native, token_hold = normalize_native(script.native)
    _known(native, _NATIVE_KEYS, "native")
    profile = select_profile(cfg, ident, _opt_text(native.get("profile"), "native.profile"), script.queue_name)

    raw_ctr = _mapping(native.get("container"), "native.container")
    _known(raw_ctr, _CONTAINER_KEYS, "native.container")

    # --- resources ---------------------------------------------------------------------------
    cpu_max = parse_quantity(profile.cpu.max)
    mem_max = parse_quantity(profile.memory.max)
    site_cpu = parse_quantity(cfg.users.limits.max_cpu)
    site_mem = parse_quantity(cfg.users.limits.max_memory)
    gpu_resource = profile.gpu.resource
    if native.get("gpu_type") is not None:
        gpu_resource = _text(native["gpu_type"], "native.gpu_type", max_len=253)
        if not _QUALIFIED.match(gpu_resource) or "/" not in gpu_resource:
            raise _bad("native.gpu_type", gpu_resource, "an extended resource name such as nvidia.com/gpu")
    if native.get("gpus") is not None:
        gpus = _int(native["gpus"], "native.gpus", 0, 64)
    elif script.gpus_per_node is not None:
        gpus = _int(script.gpus_per_node, "gpus_per_node", 0, 64)
    else:
        gpus = profile.gpu.default
    if profile.whole_node:
        cpu_req = cpu_lim = profile.cpu.max
        mem_req = mem_lim = profile.memory.max
        gpus = profile.gpu.max
    else:
        cpu_default = raw_ctr.get("cpu", script.cores if script.cores is not None else profile.cpu.default)
        cpu_req, cpu_req_n = cpu_quantity(raw_ctr.get("cpu_request", cpu_default), "native.container.cpu_request"
                                          if "cpu_request" in raw_ctr else "cpu")
        cpu_lim, cpu_lim_n = cpu_quantity(raw_ctr.get("cpu_limit", cpu_default), "native.container.cpu_limit"
                                          if "cpu_limit" in raw_ctr else "cpu")
        mem_default = raw_ctr.get("memory", script.memory if script.memory is not None else profile.memory.default)
        mem_req, mem_req_n = memory_quantity(raw_ctr.get("memory_request", mem_default),
                                             "native.container.memory_request" if "memory_request" in raw_ctr
                                             else "memory")
        mem_lim, mem_lim_n = memory_quantity(raw_ctr.get("memory_limit", mem_default),
                                             "native.container.memory_limit" if "memory_limit" in raw_ctr
                                             else "memory")
        if cpu_req_n > cpu_lim_n:
            raise UsageError(f"CPU request {cpu_req} is above the CPU limit {cpu_lim}", "ask for a request <= limit")
        if mem_req_n > mem_lim_n:
            raise UsageError(f"memory request {mem_req} is above the memory limit {mem_lim}",
                             "ask for a request <= limit")
        top = min(cpu_max, site_cpu)
        if cpu_lim_n > top:
            raise NotEntitled(f"{cpu_lim} CPUs is more than profile '{profile.name}' allows",
                              f"ask for at most {_show_cpu(top)} CPUs")
        top = min(mem_max, site_mem)
        if mem_lim_n > top:
            raise NotEntitled(f"{mem_lim} of memory is more than profile '{profile.name}' allows",
                              f"ask for at most {format_bytes(top)}")
    if gpus > profile.gpu.max:
        if profile.gpu.max == 0:
            gpu_profiles = [p.name for p in cfg.profiles if p.gpu.max > 0 and ident.in_any(p.groups)]
            raise NotEntitled(f"profile '{profile.name}' has no GPUs but {gpus} were asked for",
                              f"choose a GPU profile ({', '.join(gpu_profiles) or 'none available to you'})")
        raise NotEntitled(f"{gpus} GPUs is more than profile '{profile.name}' allows",
                          f"ask for at most {profile.gpu.max}")

    # --- wall time ---------------------------------------------------------------------------
    walltime = cfg.jobs.default_walltime if script.wall_time in (None, 0) else \
        _int(script.wall_time, "wall_time", 1)
    if walltime > cfg.jobs.max_walltime:
        raise NotEntitled(f"a wall time of {_hours(walltime)} is longer than this site allows",
                          f"ask for at most {_hours(cfg.jobs.max_walltime)}")

    # --- files, volumes ---------------------------------------------------------------------
    files = _files(native.get("configmap"), script.content)
    volumes, mounts = storage.pod_volumes(cfg, ident, user)
    volumes = [dict(v) for v in volumes]
    mounts = [dict(m) for m in mounts]
    init_mounts = [dict(m) for m in mounts]
    taken = {v["name"] for v in volumes}
    fields = storage.template_fields(cfg, ident)
    for i, raw in enumerate(_list(native.get("mounts"), "native.mounts")):
        vol, mnt = _mount(raw, f"native.mounts[{i}]")
        if vol["name"] in taken or vol["name"] in _RESERVED_VOLUMES:
            raise UsageError(f"native.mounts[{i}].name: '{vol['name']}' is already used",
                             "give each mount its own name")
        _admissible(raw["type"], vol, mnt, f"native.mounts[{i}]", cfg, ident, fields)
        taken.add(vol["name"])
        volumes.append(vol)
        mounts.append(mnt)
        init_mounts.append(dict(mnt))
    for f in files:
        if f.mount_path:
            mounts.append({"name": FILES_VOLUME, "mountPath": f.mount_path,
                           **({"subPath": f.sub_path} if f.sub_path else {})})
        if f.init_mount_path:
            init_mounts.append({"name": FILES_VOLUME, "mountPath": f.init_mount_path,
                                **({"subPath": f.init_sub_path} if f.init_sub_path else {})})
    if profile.shm_size:
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})  # noqa: S108 (the pod's own shm)

    # --- containers -------------------------------------------------------------------------
    base_env = _base_env(cfg, ident, script)
    container = _container(raw_ctr, "native.container", profile.image, cfg, base_env, default_name=DEFAULT_CONTAINER)
    inits = []
    for i, raw in enumerate(_list(native.get("init_containers"), "native.init_containers")):
        raw = _mapping(raw, f"native.init_containers[{i}]")
        _known(raw, _CONTAINER_KEYS, f"native.init_containers[{i}]")
        init = _container(raw, f"native.init_containers[{i}]", profile.image, cfg, container.env,
                          default_name=f"init-{i}")
        if not init.command:
            raise UsageError(f"native.init_containers[{i}].command: missing", "an init container needs a command")
        inits.append(init)
    all_names = [container.name] + [c.name for c in inits]
    if len(set(all_names)) != len(all_names):
        raise UsageError("native: two containers have the same name", "give each container its own name")

    restart = raw_ctr.get("restart_policy") or "Never"
    if restart not in _RESTART:
        raise _bad("native.container.restart_policy", restart, "one of " + ", ".join(_RESTART))
    groups = [_int(g, f"native.container.supplemental_groups[{i}]", 1)
              for i, g in enumerate(_list(raw_ctr.get("supplemental_groups"), "native.container.supplemental_groups"))]
    foreign = [g for g in groups if g not in ident.gids and g != ident.gid]
    if foreign:
        raise NotEntitled(f"native.container.supplemental_groups: you are not a member of group {foreign[0]}",
                          "list only groups you belong to (see 'id')")
    pull_secrets = []
    if raw_ctr.get("image_pull_secret"):
        pull_secrets.append(_dns_subdomain(raw_ctr["image_pull_secret"], "native.container.image_pull_secret"))
    if cfg.users.image_pull_secret.name and cfg.users.image_pull_secret.name not in pull_secrets:
        pull_secrets.append(cfg.users.image_pull_secret.name)

    # --- placement ----------------------------------------------------------------------------
    node_selector = dict(profile.node_selector)
    if profile.node_pool:
        node_selector[NODEPOOL_LABEL] = profile.node_pool
    for k, v in _mapping(native.get("node_selector"), "native.node_selector").items():
        if not _QUALIFIED.match(k):
            raise _bad("native.node_selector", k, "node label keys such as topology.kubernetes.io/zone")
        node_selector[k] = _label_value(v, f"native.node_selector.{k}")
    tolerations = [dict(t) for t in profile.tolerations]
    if profile.gpu.max > 0 and not any(t.get("key") == gpu_resource for t in tolerations):
        tolerations.append({"key": gpu_resource, "operator": "Exists", "effect": "NoSchedule"})
    for i, t in enumerate(_list(native.get("tolerations"), "native.tolerations")):
        tolerations.append(_toleration(t, f"native.tolerations[{i}]"))
    affinity = dict(profile.affinity)
    extra_affinity = _mapping(native.get("affinity"), "native.affinity")
    _known(extra_affinity, ("nodeAffinity", "podAffinity", "podAntiAffinity"), "native.affinity")
    affinity.update(extra_affinity)

    # --- metadata ---------------------------------------------------------------------------
    labels = dict(cfg.jobs.labels)
    for k, v in _mapping(raw_ctr.get("labels"), "native.container.labels").items():
        if not _QUALIFIED.match(k) or len(k) > 253 or k.startswith(_RESERVED_LABEL_PREFIXES):
            raise _bad("native.container.labels", k, "a label key outside ood-k8s.io/ and kubernetes.io/")
        labels[k] = _label_value(v, f"native.container.labels.{k}")
    job_name = _opt_text(script.job_name, "job_name", max_len=1024) or container.name
    annotations = dict(cfg.jobs.annotations)
    annotations[DO_NOT_DISRUPT] = "true"
    annotations[JOB_NAME_ANNOTATION] = job_name
    accounting_id = _opt_text(script.accounting_id, "accounting_id", max_len=256)
    if accounting_id:
        annotations[ACCOUNT_ANNOTATION] = accounting_id
    queue_name = _opt_text(script.queue_name, "queue_name", max_len=256)
    if queue_name:
        annotations[QUEUE_ANNOTATION] = queue_name
    if submit_host:
        annotations[SUBMIT_HOST_ANNOTATION] = submit_host
    name_hint = container.name if raw_ctr.get("name") else job_name.rstrip("/").rsplit("/", 1)[-1]

    script_mode = not container.command
    shell = _opt_text(script.shell_path, "shell_path") or "/bin/bash"
    if script_mode:
        _abs_path(shell, "shell_path")
    out_path = _opt_text(script.output_path, "output_path")
    err_path = _opt_text(script.error_path, "error_path")
    for key, value in (("output_path", out_path), ("error_path", err_path)):
        if value is not None:
            _abs_path(value, key)
    if script_mode and container.working_dir is None and script.workdir:
        container.working_dir = _abs_path(script.workdir, "workdir")
    if container.working_dir is None:
        container.working_dir = ident.home

    return JobSpec(
        username=ident.username, namespace=user.namespace, user_labels=user.labels, uid=ident.uid,
        gid=ident.gid, group=ident.groups[0] if ident.groups else str(ident.gid), home=ident.home,
        supplemental_groups=sorted(set(ident.gids) | set(groups)), job_name=job_name, name_hint=name_hint,
        profile=profile.name, container=container, init_containers=inits, cpu_request=cpu_req,
        cpu_limit=cpu_lim, memory_request=mem_req, memory_limit=mem_lim, gpus=gpus, gpu_resource=gpu_resource,
        walltime=walltime, files=files, volumes=volumes, mounts=mounts, init_mounts=init_mounts,
        node_selector=node_selector, tolerations=tolerations, affinity=affinity,
        priority_class=profile.priority_class, runtime_class=profile.runtime_class, shm_size=profile.shm_size,
        restart_policy=restart, image_pull_secrets=pull_secrets, labels=labels, annotations=annotations,
        hold=bool(hold or script.submit_as_hold or token_hold), connection=cfg.cluster.connection,
        nodeport_host=cfg.cluster.nodeport_host,
        script_mode=script_mode, shell=shell, stdout_path=out_path, stderr_path=err_path or None,
        accounting_id=accounting_id, queue_name=queue_name,
    )


def _hours(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m = rest // 60
    return f"{h}h{m:02d}m" if m else f"{h}h"


def _dns_subdomain(value: Any, path: str) -> str:
    text = _text(value, path, max_len=253)
    if not all(names.is_dns_label(p) for p in text.split(".")):
        raise _bad(path, value, "a Kubernetes object name")
    return text


def _label_value(value: Any, path: str) -> str:
    text = _text(value, path, allow_empty=True, max_len=63)
    if not _LABEL_VALUE.match(text):
        raise _bad(path, value, "a label value (letters, digits, '-', '_', '.'; at most 63)")
    return text


def _env_value(value: Any, path: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _text(value, path, allow_empty=True, max_len=128 * 1024)


def _file_data(value: Any, path: str) -> str:
    # The total is checked against the ConfigMap limit afterwards, with a clearer message.
    return "" if value is None else _text(value, path, allow_empty=True, max_len=8 * MAX_FILES_BYTES)


def _base_env(cfg: Config, ident: Identity, script: Script) -> list[tuple[str, str]]:
    env: dict[str, str] = {
        "USER": ident.username, "UID": str(ident.uid), "HOME": ident.home,
        "GROUP": ident.groups[0] if ident.groups else str(ident.gid), "GID": str(ident.gid),
        "KUBECONFIG": "/dev/null",
    }
    for source, values in (("jobs.env", cfg.jobs.env), ("job_environment", script.job_environment)):
        for k, v in _mapping(values, source).items():
            if not _ENV_NAME.match(k):
                raise _bad(source, k, "environment variable names (letters, digits, '_', '-', '.')")
            env[k] = _env_value(v, f"{source}.{k}")
    return list(env.items())


def _container(raw: dict[str, Any], path: str, default_image: str, cfg: Config, base_env: list[tuple[str, str]],
               *, default_name: str) -> ContainerSpec:
    name = _dns_label(raw["name"], f"{path}.name") if raw.get("name") else default_name
    image = default_image if raw.get("image") is None else _text(raw["image"], f"{path}.image", allow_empty=True)
    if not image:
        raise UsageError(f"{path}.image: missing", "name a container image, or leave it out to use the profile's")
    if not _IMAGE.match(image) or len(image) > 1024:
        raise _bad(f"{path}.image", image, "an image reference such as quay.io/jupyter/scipy-notebook:2025-10-20")
    command = raw.get("command")
    if command is None or command == "":
        cmd: list[str] = []
    elif isinstance(command, str):
        try:
            cmd = shlex.split(command)
        except ValueError as exc:
            raise _bad(f"{path}.command", command, f"a command line ({exc})") from None
    else:
        cmd = [_text(c, f"{path}.command[{i}]", allow_empty=True)
               for i, c in enumerate(_list(command, f"{path}.command"))]
    env = dict(base_env)
    for k, v in _mapping(raw.get("env"), f"{path}.env").items():
        if not _ENV_NAME.match(k):
            raise _bad(f"{path}.env", k, "environment variable names (letters, digits, '_', '-', '.')")
        env[k] = _env_value(v, f"{path}.env.{k}")
    port = None if raw.get("port") in (None, "") else _int(raw["port"], f"{path}.port", 1, 65535)
    pull = raw.get("image_pull_policy") or cfg.jobs.image_pull_policy
    if pull not in _PULL:
        raise _bad(f"{path}.image_pull_policy", pull, "one of " + ", ".join(_PULL))
    probe = None
    if port is not None:
        raw_probe = _mapping(raw.get("startup_probe"), f"{path}.startup_probe")
        _known(raw_probe, _PROBE_KEYS, f"{path}.startup_probe")
        where = f"{path}.startup_probe"
        probe = {
            "initialDelaySeconds": _int(raw_probe.get("initial_delay_seconds", 2), f"{where}.initial_delay_seconds"),
            "periodSeconds": _int(raw_probe.get("period_seconds", 5), f"{where}.period_seconds", 1),
            "failureThreshold": _int(raw_probe.get("failure_threshold", 5), f"{where}.failure_threshold", 1),
        }
    working_dir = None if not raw.get("working_dir") else _abs_path(raw["working_dir"], f"{path}.working_dir")
    return ContainerSpec(name=name, image=image, command=cmd, env=list(env.items()), port=port,
                         working_dir=working_dir, image_pull_policy=pull, probe=probe)


def _files(raw_configmap: Any, content: str) -> list[ConfigFile]:
    cm = _mapping(raw_configmap, "native.configmap")
    _known(cm, ("files",), "native.configmap")
    files: list[ConfigFile] = []
    seen: set[str] = set()
    for i, raw in enumerate(_list(cm.get("files"), "native.configmap.files")):
        path = f"native.configmap.files[{i}]"
        raw = _mapping(raw, path)
        _known(raw, _FILE_KEYS, path)
        filename = _text(raw.get("filename"), f"{path}.filename", max_len=253)
        if not _FILE_KEY.match(filename) or filename in (".", ".."):
            raise _bad(f"{path}.filename", filename, "a file name (letters, digits, '-', '_', '.')")
        if filename in seen:
            raise UsageError(f"{path}.filename: '{filename}' appears twice", "give each file its own name")
        seen.add(filename)
        f = ConfigFile(filename=filename, data=_file_data(raw.get("data"), f"{path}.data"))
        for key in ("mount_path", "init_mount_path"):
            if raw.get(key):
                setattr(f, key, _abs_path(raw[key], f"{path}.{key}"))
        for key in ("sub_path", "init_sub_path"):
            if raw.get(key):
                setattr(f, key, _rel_path(raw[key], f"{path}.{key}"))
        files.append(f)
    if SCRIPT_FILE not in seen:
        files.append(ConfigFile(filename=SCRIPT_FILE, data=_file_data(content, "content"), mount_path=SCRIPT_MOUNT,
                                sub_path=SCRIPT_FILE))
    size = sum(len(f.filename) + len(f.data.encode("utf-8", "surrogatepass")) for f in files)
    if size > MAX_FILES_BYTES:
        raise UsageError(f"the job script and files total {size} bytes, more than a ConfigMap holds (1 MiB)",
                         "keep large files in your home directory and read them from there")
    return files


def _mount(raw: Any, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    raw = _mapping(raw, path)
    kind = raw.get("type")
    if kind not in _MOUNT_KEYS:
        raise _bad(f"{path}.type", kind, "one of " + ", ".join(_MOUNT_KEYS))
    _known(raw, _MOUNT_COMMON | _MOUNT_KEYS[kind], path)
    name = _dns_label(raw.get("name"), f"{path}.name")
    dest = _abs_path(raw.get("destination_path"), f"{path}.destination_path")
    read_only = raw.get("read_only", False)
    if not isinstance(read_only, bool):
        raise _bad(f"{path}.read_only", read_only, "true or false")
    vol: dict[str, Any] = {"name": name}
    if kind == "nfs":
        vol["nfs"] = {"server": _text(raw.get("host"), f"{path}.host", max_len=253),
                      "path": _abs_path(raw.get("path"), f"{path}.path"), **({"readOnly": True} if read_only else {})}
    elif kind == "host":
        host_type = raw.get("host_type") or ""
        if host_type not in _HOST_TYPES:
            raise _bad(f"{path}.host_type", host_type, "one of " + ", ".join(t for t in _HOST_TYPES if t))
        vol["hostPath"] = {"path": _abs_path(raw.get("path"), f"{path}.path")}
        if host_type:
            vol["hostPath"]["type"] = host_type
    elif kind == "pvc":
        vol["persistentVolumeClaim"] = {"claimName": _dns_subdomain(raw.get("claim_name"), f"{path}.claim_name"),
                                        **({"readOnly": True} if read_only else {})}
    elif kind == "csi":
        attrs = {k: _text(v, f"{path}.volume_attributes.{k}", allow_empty=True)
                 for k, v in _mapping(raw.get("volume_attributes"), f"{path}.volume_attributes").items()}
        csi: dict[str, Any] = {"driver": _dns_subdomain(raw.get("driver"), f"{path}.driver")}
        if read_only:
            csi["readOnly"] = True
        if raw.get("fs_type"):
            csi["fsType"] = _text(raw["fs_type"], f"{path}.fs_type", max_len=32)
        if attrs:
            csi["volumeAttributes"] = attrs
        vol["csi"] = csi
    elif kind == "empty_dir":
        ed: dict[str, Any] = {}
        medium = raw.get("medium") or ""
        if medium not in ("", "Memory"):
            raise _bad(f"{path}.medium", medium, "'' (node disk) or 'Memory'")
        if medium:
            ed["medium"] = medium
        if raw.get("size_limit") is not None:
            ed["sizeLimit"] = memory_quantity(raw["size_limit"], f"{path}.size_limit")[0]
        vol["emptyDir"] = ed
    elif kind == "configmap":
        vol["configMap"] = {"name": _dns_subdomain(raw.get("configmap_name"), f"{path}.configmap_name")}
    else:
        vol["secret"] = {"secretName": _dns_subdomain(raw.get("secret_name"), f"{path}.secret_name")}
    mnt: dict[str, Any] = {"name": name, "mountPath": dest}
    if raw.get("sub_path"):
        mnt["subPath"] = _rel_path(raw["sub_path"], f"{path}.sub_path")
    if read_only:
        mnt["readOnly"] = True
    return vol, mnt


# How refusals name the pod volume kinds a native mount can produce and the admission guard refuses.
_KIND_NAMES = {"nfs": "NFS", "hostPath": "host (hostPath)", "csi": "inline CSI"}


def _admissible(native_type: str, vol: dict[str, Any], mnt: dict[str, Any], path: str, cfg: Config,
                ident: Identity, fields: dict[str, Any]) -> None:
    """Refuse a native mount the cluster would refuse, naming the key: the admission guard's rules
    (one definition, in cluster.py) where the cluster has the guard, then the Pod Security level."""
    from ood_k8s.cluster import manifests as cluster  # only jobs with native mounts pay for this import

    kind = next(k for k in vol if k != "name")
    ask = f"ask the admin to provide {mnt['mountPath']} through storage.extra_mounts"
    if cluster.guarded(cfg):
        own_home = kind == "hostPath" and cluster.host_path_home(cfg) and vol[kind]["path"] == ident.home
        if kind == "csi" and cfg.jobs.csi_drivers:
            if vol[kind]["driver"] not in cfg.jobs.csi_drivers:
                raise NotEntitled(f"{path}.driver: inline CSI driver '{vol[kind]['driver']}' is not allowed in "
                                  "sessions on this site", f"use one of {', '.join(cfg.jobs.csi_drivers)}, or {ask}")
        elif kind not in cluster.SESSION_VOLUME_KINDS and not own_home:
            raise NotEntitled(f"{path}: {_KIND_NAMES.get(kind, kind)} volumes are not allowed in sessions on this site",
                              ask)
        if kind == "persistentVolumeClaim":
            _admissible_claim(vol[kind], mnt, path, cluster.session_claims(cfg), fields, ask)
    level = cfg.users.pod_security
    if (native_type == "host" and level != "privileged") or (native_type == "nfs" and level == "restricted"):
        raise NotEntitled(f"{path}: '{native_type}' volumes are forbidden by the cluster's Pod Security level "
                          f"'{level}'", "use a pvc or csi mount, or ask your administrator")


def _admissible_claim(pvc: dict[str, Any], mnt: dict[str, Any], path: str, claims: list[SessionClaim],
                      fields: dict[str, Any], ask: str) -> None:
    # The guard's three claim rules, in its order: allowed names, read-only claims, fixed sub-paths.
    name = pvc["claimName"]
    resolved = [(c, *c.resolve(**fields)) for c in claims]
    matching = [(c, sub) for c, claim, sub in resolved if claim == name]
    if not matching:
        offered = ", ".join(dict.fromkeys(f"'{claim}'" for _, claim, _ in resolved))
        raise NotEntitled(f"{path}.claim_name: claim '{name}' is not one sessions may mount on this site",
                          f"use {offered} or {ask}" if offered else ask)
    if any(c.read_only for c, _ in matching) and not pvc.get("readOnly"):
        raise NotEntitled(f"{path}.read_only: claim '{name}' may only be mounted read-only on this site",
                          "set read_only: true")
    for c, sub in matching:
        if c.sub_path and mnt.get("subPath") != sub:
            raise NotEntitled(f"{path}.sub_path: claim '{name}' may only be mounted at sub-path '{sub}'",
                              f"set sub_path: {sub}")


def _toleration(raw: Any, path: str) -> dict[str, Any]:
    t = _mapping(raw, path)
    _known(t, _TOLERATION_KEYS, path)
    out: dict[str, Any] = {}
    if t.get("key"):
        key = _text(t["key"], f"{path}.key", max_len=253)
        if not _QUALIFIED.match(key):
            raise _bad(f"{path}.key", key, "a taint key such as nvidia.com/gpu")
        out["key"] = key
    operator = t.get("operator", "Equal")
    if operator not in ("Equal", "Exists"):
        raise _bad(f"{path}.operator", operator, "Equal or Exists")
    out["operator"] = operator
    if t.get("value") not in (None, ""):
        if operator == "Exists":
            raise UsageError(f"{path}.value: must be empty with operator Exists")
        out["value"] = _label_value(t["value"], f"{path}.value")
    if t.get("effect"):
        if t["effect"] not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise _bad(f"{path}.effect", t["effect"], "NoSchedule, PreferNoSchedule or NoExecute")
        out["effect"] = t["effect"]
    if t.get("tolerationSeconds") is not None:
        out["tolerationSeconds"] = _int(t["tolerationSeconds"], f"{path}.tolerationSeconds")
    if "key" not in out and operator != "Exists":
        raise UsageError(f"{path}: a toleration without a key needs operator Exists")
    return out

"""A job request, checked and resolved: OOD's Script in, a complete :class:`~ood_k8s.sessions.spec.JobSpec` out.

Everything that can refuse a job happens here, before any object is created, and each refusal is one
:class:`~ood_k8s.core.errors.UsageError` line naming the key (:class:`~ood_k8s.core.errors.NotEntitled`
when the request is well-formed but the site's rules refuse it).  :func:`resolve` is a short
sequence of pure steps, each deciding one part of the pod:

1. who and which profile -- :func:`ood_k8s.policy.access.check_account`, :func:`select_profile`;
2. :func:`resources` -- CPU, memory and GPUs within the profile's bounds;
3. the lifetime -- :func:`ood_k8s.sessions.lifetime.granted`;
4. :func:`volumes` -- the job's files, the user's home and the request's mounts the site allows
   (:func:`ood_k8s.policy.volumes.check_mount`);
5. :func:`~ood_k8s.sessions.containers.containers` -- image, command, environment, probe, init
   containers, groups, pull secrets;
6. :func:`placement` -- node selector, tolerations, affinity;
7. :func:`metadata` -- labels, annotations, the job's name;
8. :func:`entry` -- how the job script runs: shell, output paths, working directory.

``native`` (see :mod:`ood_k8s.sessions.request`) has every key of OOD's built-in Kubernetes adapter
(REFERENCE §2) -- ``container`` (``name image command port env memory cpu memory_limit memory_request
cpu_limit cpu_request working_dir restart_policy image_pull_policy image_pull_secret
supplemental_groups startup_probe labels``; ``image`` defaults to the profile's), ``init_containers``
(same shape), ``configmap: {files: [...]}``, ``mounts``, ``node_selector``, ``gpu_type`` -- and the
ood-k8s extensions ``profile``, ``gpus``, ``tolerations``, ``affinity``, and ``mounts`` of type
``pvc``, ``csi``, ``empty_dir``, ``configmap`` and ``secret`` besides OOD's ``nfs`` and ``host``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

from ood_k8s.config import Config, Profile
from ood_k8s.core import names, shapes, vocab
from ood_k8s.core.errors import NotEntitled, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.courses import membership
from ood_k8s.courses import session as course_session
from ood_k8s.policy import access, pods
from ood_k8s.policy import volumes as mount_policy
from ood_k8s.sessions import checks, lifetime
from ood_k8s.sessions import mounts as native_mounts
from ood_k8s.sessions.checks import bad
from ood_k8s.sessions.containers import CONTAINER_KEYS, containers
from ood_k8s.sessions.quantity import format_bytes, parse_quantity
from ood_k8s.sessions.request import Script, normalize_native
from ood_k8s.sessions.spec import FILES_VOLUME, SHM_VOLUME, ConfigFile, ContainerSpec, JobSpec
from ood_k8s.storage import backend as storage

NATIVE_KEYS = frozenset({"container", "init_containers", "configmap", "mounts", "node_selector", "gpu_type",
                         "profile", "gpus", "tolerations", "affinity"})
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_RESERVED_LABEL_PREFIXES = (vocab.KEY_PREFIX, vocab.MANAGED_BY_KEY, "kubernetes.io/", "k8s.io/")
_RESERVED_VOLUMES = frozenset({storage.HOME_VOLUME, FILES_VOLUME, SHM_VOLUME})


# --- what each step decides ---------------------------------------------------------------------------


class Resources(NamedTuple):
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    gpus: int
    gpu_resource: str


class Volumes(NamedTuple):
    files: list[ConfigFile]
    volumes: list[dict[str, Any]]
    mounts: list[dict[str, Any]]
    init_mounts: list[dict[str, Any]]


class Placement(NamedTuple):
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    affinity: dict[str, Any]


class Metadata(NamedTuple):
    labels: dict[str, str]
    annotations: dict[str, str]
    job_name: str
    name_hint: str
    accounting_id: str | None
    queue_name: str | None


class Entry(NamedTuple):
    script_mode: bool  # run the job script (no command of its own)
    shell: str
    stdout_path: str | None
    stderr_path: str | None
    working_dir: str


# --- the sequence ---------------------------------------------------------------------------------------


def resolve(script: Script, cfg: Config, ident: Identity, *, hold: bool = False, submit_host: str = "",
            now: float | None = None) -> JobSpec:
    """Check ``script`` against the site's rules and resolve every default. Raises UsageError.
    ``now`` (epoch seconds, default the clock) decides which courses' terms are on."""
    if not isinstance(script, Script):
        raise UsageError("submit needs an OOD Script (a mapping of its fields)")
    access.check_account(cfg.users, ident, access.SESSION)
    user = names.for_user(ident.username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix)
    native, token_hold = normalize_native(script.native)
    checks.known(native, NATIVE_KEYS, "native")
    now = time.time() if now is None else now
    granted = access.course_profiles(cfg, ident, now)
    profile = select_profile(cfg, ident, checks.opt_text(native.get("profile"), "native.profile"), script.queue_name,
                             granted)
    course = membership.course_for(cfg, ident, profile.name, now) if granted else None
    raw_ctr = checks.mapping(native.get("container"), "native.container")
    checks.known(raw_ctr, CONTAINER_KEYS, "native.container")

    res = resources(cfg, ident, profile, native, raw_ctr, script)
    life = lifetime.granted(requested_walltime(script), cfg.jobs, profile)
    vols = _with_datasets(volumes(cfg, ident, user, profile, native, script.content), course)
    ctrs = containers(cfg, ident, profile, native, raw_ctr, script)
    place = placement(profile, native, res.gpu_resource)
    place = place._replace(node_selector=course_session.node_selector(course, place.node_selector))
    pods.check_placement(cfg.profiles, profile, place.node_selector, place.tolerations, res.gpus, place.affinity,
                         cfg.courses, course.node_pool if course else "")
    meta = metadata(cfg, script, raw_ctr, ctrs.main.name, submit_host)
    meta.labels.update(course_session.labels(course))
    run = entry(script, ctrs.main, ident, vols.mounts)

    return JobSpec(
        username=ident.username, namespace=user.namespace, user_labels=user.labels, uid=ident.uid,
        gid=ident.gid, group=ident.groups[0] if ident.groups else str(ident.gid), home=ident.home,
        supplemental_groups=sorted(set(ident.gids) | set(ctrs.supplemental_groups)), job_name=meta.job_name,
        name_hint=meta.name_hint, profile=profile.name,
        container=dataclasses.replace(ctrs.main, working_dir=run.working_dir), init_containers=ctrs.inits,
        cpu_request=res.cpu_request, cpu_limit=res.cpu_limit, memory_request=res.memory_request,
        memory_limit=res.memory_limit, gpus=res.gpus, gpu_resource=res.gpu_resource,
        walltime=life.walltime, ceiling=lifetime.pod_deadline(life, lifetime.leader_runs(cfg.agent)),
        files=vols.files, volumes=vols.volumes,
        mounts=vols.mounts, init_mounts=vols.init_mounts, node_selector=place.node_selector,
        tolerations=place.tolerations, affinity=place.affinity, priority_class=pods.session_priority_class(profile),
        runtime_class=profile.runtime_class, strict_groups=pods.strict_groups_required(cfg),
        shm_size=profile.shm_size, restart_policy=ctrs.restart_policy, image_pull_secrets=ctrs.image_pull_secrets,
        labels=meta.labels, annotations={**meta.annotations, **lifetime.annotations(life)},
        hold=bool(hold or script.submit_as_hold or token_hold),
        connection=cfg.cluster.connection, nodeport_host=cfg.cluster.nodeport_host, script_mode=run.script_mode,
        shell=run.shell, stdout_path=run.stdout_path, stderr_path=run.stderr_path,
        accounting_id=meta.accounting_id, queue_name=meta.queue_name,
    )


def select_profile(cfg: Config, ident: Identity, requested: str | None, queue_name: str | None,
                   granted: list[str] | None = None) -> Profile:
    """The profile a job runs with, refusing unknown ones and those the user's groups (or, ``granted``,
    current courses) lack."""
    available = [p.name for p in cfg.profiles]
    name = requested
    if not name and queue_name and queue_name in available:
        name = queue_name  # a stock OOD form's queue field picks the profile
    name = name or cfg.jobs.default_profile
    try:
        profile = cfg.profile(name)
    except KeyError:
        raise UsageError(f"unknown profile '{checks.show(name)}'", f"choose one of: {', '.join(available)}") from None
    access.check_profile(profile, ident, granted or ())
    return profile


# --- resources ------------------------------------------------------------------------------------------


def _gpu_request(profile: Profile, native: dict[str, Any], script: Script) -> tuple[int, str]:
    """(GPUs asked for, their extended resource): native, else the Script's gpus_per_node, else the profile's."""
    gpu_resource = profile.gpu.resource
    if native.get("gpu_type") is not None:
        gpu_resource = checks.text(native["gpu_type"], "native.gpu_type", max_len=253)
        if not shapes.is_qualified_name(gpu_resource) or "/" not in gpu_resource:
            raise bad("native.gpu_type", gpu_resource, "an extended resource name such as nvidia.com/gpu")
    asked = native.get("gpus") if native.get("gpus") is not None else script.gpus_per_node
    if asked is not None:
        # Bounded by the profile (below), not by a number the user never chose: no internal key names.
        try:
            return checks.whole(asked, "GPUs", 0, 1 << 20), gpu_resource
        except UsageError:
            raise UsageError(f"GPUs: got '{checks.show(asked)}', expected a whole number",
                             _gpu_limit(profile.gpu.max)) from None
    return profile.gpu.default, gpu_resource


def _gpu_limit(top: int) -> str:
    return f"this profile allows at most {top} GPU{'' if top == 1 else 's'}"


def _cpu_memory(cfg: Config, profile: Profile, raw_ctr: dict[str, Any], script: Script) -> tuple[str, str, str, str]:
    """(CPU request, CPU limit, memory request, memory limit) within the profile's and the site's maxima."""
    def where(key: str, fallback: str) -> str:
        return f"native.container.{key}" if key in raw_ctr else fallback

    cpu_default = raw_ctr.get("cpu", script.cores if script.cores is not None else profile.cpu.default)
    cpu_req, cpu_req_n = checks.cpu_quantity(raw_ctr.get("cpu_request", cpu_default), where("cpu_request", "cpu"))
    cpu_lim, cpu_lim_n = checks.cpu_quantity(raw_ctr.get("cpu_limit", cpu_default), where("cpu_limit", "cpu"))
    mem_default = raw_ctr.get("memory", script.memory if script.memory is not None else profile.memory.default)
    mem_req, mem_req_n = checks.memory_quantity(raw_ctr.get("memory_request", mem_default),
                                                where("memory_request", "memory"))
    mem_lim, mem_lim_n = checks.memory_quantity(raw_ctr.get("memory_limit", mem_default),
                                                where("memory_limit", "memory"))
    if cpu_req_n > cpu_lim_n:
        raise UsageError(f"CPU request {cpu_req} is above the CPU limit {cpu_lim}", "ask for a request <= limit")
    if mem_req_n > mem_lim_n:
        raise UsageError(f"memory request {mem_req} is above the memory limit {mem_lim}", "ask for a request <= limit")
    top = min(parse_quantity(profile.cpu.max), parse_quantity(cfg.users.limits.max_cpu))
    if cpu_lim_n > top:
        raise NotEntitled(f"{cpu_lim} CPUs is more than profile '{profile.name}' allows",
                          f"ask for at most {checks.show_cpu(top)} CPUs")
    top = min(parse_quantity(profile.memory.max), parse_quantity(cfg.users.limits.max_memory))
    if mem_lim_n > top:
        raise NotEntitled(f"{mem_lim} of memory is more than profile '{profile.name}' allows",
                          f"ask for at most {format_bytes(top)}")
    return cpu_req, cpu_lim, mem_req, mem_lim


def resources(cfg: Config, ident: Identity, profile: Profile, native: dict[str, Any], raw_ctr: dict[str, Any],
              script: Script) -> Resources:
    """CPU, memory and GPUs: what the request asks for within the profile's bounds (a whole-node
    profile takes its maxima)."""
    gpus, gpu_resource = _gpu_request(profile, native, script)
    if profile.whole_node:
        cpu_req = cpu_lim = profile.cpu.max
        mem_req = mem_lim = profile.memory.max
        gpus = profile.gpu.max
    else:
        cpu_req, cpu_lim, mem_req, mem_lim = _cpu_memory(cfg, profile, raw_ctr, script)
    if gpus > profile.gpu.max:
        if profile.gpu.max == 0:
            offered = [p.name for p in access.usable_profiles(cfg.profiles, ident) if p.gpu.max > 0]
            raise NotEntitled(f"profile '{profile.name}' has no GPUs but {gpus} were asked for",
                              f"choose a GPU profile ({', '.join(offered) or 'none available to you'})")
        raise NotEntitled(f"{gpus} GPUs is more than profile '{profile.name}' allows", _gpu_limit(profile.gpu.max))
    return Resources(cpu_req, cpu_lim, mem_req, mem_lim, gpus, gpu_resource)


def requested_walltime(script: Script) -> int | None:
    """The wall time the Script asks for, in seconds; ``None`` (no wall time, or 0): the site's default."""
    return None if script.wall_time in (None, 0) else checks.whole(script.wall_time, "wall_time", 1)


# --- volumes --------------------------------------------------------------------------------------------


def volumes(cfg: Config, ident: Identity, user: UserNames, profile: Profile, native: dict[str, Any],
            content: str) -> Volumes:
    """The job's files, the user's home (the storage backend's), the request's mounts the site allows
    and the profile's /dev/shm."""
    files = native_mounts.config_files(native.get("configmap"), content)
    home_volumes, home_mounts = storage.pod_volumes(cfg, ident, user)
    pod_volumes = [dict(v) for v in home_volumes]
    mounts = [dict(m) for m in home_mounts]
    init_mounts = [dict(m) for m in mounts]
    taken = {v["name"] for v in pod_volumes}
    fields = storage.template_fields(cfg, ident)
    for i, raw in enumerate(checks.listing(native.get("mounts"), "native.mounts")):
        path = f"native.mounts[{i}]"
        vol, mnt = native_mounts.native_mount(raw, path)
        if vol["name"] in taken or vol["name"] in _RESERVED_VOLUMES:
            raise UsageError(f"{path}.name: '{vol['name']}' is already used", "give each mount its own name")
        mount_policy.check_mount(raw["type"], vol, mnt, path, cfg, ident, fields)
        taken.add(vol["name"])
        pod_volumes.append(vol)
        mounts.append(mnt)
        init_mounts.append(dict(mnt))
    file_mounts, init_file_mounts = native_mounts.file_mounts(files)
    mounts += file_mounts
    init_mounts += init_file_mounts
    if profile.shm_size:
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})  # noqa: S108 (the pod's own shm)
    return Volumes(files, pod_volumes, mounts, init_mounts)


def _with_datasets(vols: Volumes, course: Any) -> Volumes:
    """The course's read-only datasets added to the session's volumes (courses/session.py)."""
    extra, extra_mounts = course_session.dataset_volumes(course, {v["name"] for v in vols.volumes},
                                                         {m["mountPath"] for m in vols.mounts})
    return vols._replace(volumes=vols.volumes + extra, mounts=vols.mounts + extra_mounts)


# --- placement ------------------------------------------------------------------------------------------


def _toleration(raw: Any, path: str) -> dict[str, Any]:
    t = checks.mapping(raw, path)
    checks.known(t, _TOLERATION_KEYS, path)
    out: dict[str, Any] = {}
    if t.get("key"):
        key = checks.text(t["key"], f"{path}.key", max_len=253)
        if not shapes.is_qualified_name(key):
            raise bad(f"{path}.key", key, "a taint key such as nvidia.com/gpu")
        out["key"] = key
    operator = t.get("operator", "Equal")
    if operator not in ("Equal", "Exists"):
        raise bad(f"{path}.operator", operator, "Equal or Exists")
    out["operator"] = operator
    if t.get("value") not in (None, ""):
        if operator == "Exists":
            raise UsageError(f"{path}.value: must be empty with operator Exists")
        out["value"] = checks.label_value(t["value"], f"{path}.value")
    if t.get("effect"):
        if t["effect"] not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise bad(f"{path}.effect", t["effect"], "NoSchedule, PreferNoSchedule or NoExecute")
        out["effect"] = t["effect"]
    if t.get("tolerationSeconds") is not None:
        out["tolerationSeconds"] = checks.whole(t["tolerationSeconds"], f"{path}.tolerationSeconds")
    if "key" not in out and operator != "Exists":
        raise UsageError(f"{path}: a toleration without a key needs operator Exists")
    return out


def placement(profile: Profile, native: dict[str, Any], gpu_resource: str) -> Placement:
    """Where the pod may run: the profile's node selector, node pool, tolerations (a GPU profile
    tolerates its GPU taint) and affinity, plus what the request adds."""
    node_selector = dict(profile.node_selector)
    if profile.node_pool:
        node_selector[vocab.KARPENTER_NODEPOOL_LABEL] = profile.node_pool
    for k, v in checks.mapping(native.get("node_selector"), "native.node_selector").items():
        if not shapes.is_qualified_name(k):
            raise bad("native.node_selector", k, "node label keys such as topology.kubernetes.io/zone")
        node_selector[k] = checks.label_value(v, f"native.node_selector.{k}")
    tolerations = [dict(t) for t in profile.tolerations]
    if profile.gpu.max > 0 and not any(t.get("key") == gpu_resource for t in tolerations):
        tolerations.append({"key": gpu_resource, "operator": "Exists", "effect": "NoSchedule"})
    for i, t in enumerate(checks.listing(native.get("tolerations"), "native.tolerations")):
        tolerations.append(_toleration(t, f"native.tolerations[{i}]"))
    affinity = dict(profile.affinity)
    extra_affinity = checks.mapping(native.get("affinity"), "native.affinity")
    checks.known(extra_affinity, ("nodeAffinity", "podAffinity", "podAntiAffinity"), "native.affinity")
    affinity.update(extra_affinity)
    return Placement(node_selector, tolerations, affinity)


# --- metadata and entry ---------------------------------------------------------------------------------


def metadata(cfg: Config, script: Script, raw_ctr: dict[str, Any], container_name: str,
             submit_host: str) -> Metadata:
    """The pod's labels (the site's and the request's, never ours) and annotations, and the job's name."""
    labels = dict(cfg.jobs.labels)
    for k, v in checks.mapping(raw_ctr.get("labels"), "native.container.labels").items():
        if not shapes.is_qualified_name(k) or len(k) > 253 or k.startswith(_RESERVED_LABEL_PREFIXES):
            raise bad("native.container.labels", k, f"a label key outside {vocab.KEY_PREFIX} and kubernetes.io/")
        labels[k] = checks.label_value(v, f"native.container.labels.{k}")
    job_name = checks.opt_text(script.job_name, "job_name", max_len=1024) or container_name
    annotations = dict(cfg.jobs.annotations)
    annotations[vocab.KARPENTER_DO_NOT_DISRUPT] = "true"
    annotations[vocab.JOB_NAME_ANNOTATION] = job_name
    accounting_id = checks.opt_text(script.accounting_id, "accounting_id", max_len=256)
    if accounting_id:
        annotations[vocab.ACCOUNT_ANNOTATION] = accounting_id
    queue_name = checks.opt_text(script.queue_name, "queue_name", max_len=256)
    if queue_name:
        annotations[vocab.QUEUE_ANNOTATION] = queue_name
    if submit_host:
        annotations[vocab.SUBMIT_HOST_ANNOTATION] = submit_host
    name_hint = container_name if raw_ctr.get("name") else job_name.rstrip("/").rsplit("/", 1)[-1]
    return Metadata(labels, annotations, job_name, name_hint, accounting_id, queue_name)


def _writable_in_pod(path: str, mounts: list[dict[str, Any]]) -> bool:
    """Whether the main container can write ``path``: it lies under one of its writable mounts."""
    return any(not m.get("readOnly") and (path + "/").startswith(m["mountPath"].rstrip("/") + "/") for m in mounts)


def entry(script: Script, main: ContainerSpec, ident: Identity, mounts: list[dict[str, Any]]) -> Entry:
    """How the main container starts: the job script under its shell (no command of its own) or its
    command; where output goes (an error path the pod cannot write joins the output: psij.rb's
    default is under the dashboard's working directory); its working directory (its own, the
    Script's, else the home)."""
    script_mode = not main.command
    shell = checks.opt_text(script.shell_path, "shell_path") or "/bin/bash"
    if script_mode:
        checks.abs_path(shell, "shell_path")
    out_path = checks.opt_text(script.output_path, "output_path")
    err_path = checks.opt_text(script.error_path, "error_path")
    for key, value in (("output_path", out_path), ("error_path", err_path)):
        if value is not None:
            checks.abs_path(value, key)
    if err_path is not None and not _writable_in_pod(err_path, mounts):
        err_path = None
    working_dir = main.working_dir
    if script_mode and working_dir is None and script.workdir:
        working_dir = checks.abs_path(script.workdir, "workdir")
    return Entry(script_mode, shell, out_path, err_path or None, ident.home if working_dir is None else working_dir)

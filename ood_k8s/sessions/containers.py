"""The containers of a session pod, from ``native.container`` and ``native.init_containers``.

The main container runs the profile's image unless the request names one, with OOD's user variables
(``USER UID HOME GROUP GID``, ``KUBECONFIG=/dev/null``), the site's ``jobs.env``, the job's environment
and the container's own ``env``, in that order; a port gets a readiness probe with OOD's
``startup_probe`` timings.  Init containers start from the main container's environment and must
have a command.  One step of :func:`ood_k8s.sessions.resolve.resolve`.
"""

from __future__ import annotations

import shlex
from typing import Any, NamedTuple

from ood_k8s.config import Config, Profile
from ood_k8s.core.errors import UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.policy import access
from ood_k8s.sessions import checks
from ood_k8s.sessions.checks import bad
from ood_k8s.sessions.request import Script
from ood_k8s.sessions.spec import DEFAULT_CONTAINER, ContainerSpec

CONTAINER_KEYS = frozenset({"name", "image", "command", "port", "env", "memory", "cpu", "memory_limit",
                            "memory_request", "cpu_limit", "cpu_request", "working_dir", "restart_policy",
                            "image_pull_policy", "image_pull_secret", "supplemental_groups", "startup_probe",
                            "labels"})
_PROBE_KEYS = frozenset({"initial_delay_seconds", "failure_threshold", "period_seconds"})
_RESTART = ("Never", "OnFailure", "Always")
_PULL = ("IfNotPresent", "Always", "Never")


class Containers(NamedTuple):
    main: ContainerSpec
    inits: list[ContainerSpec]
    restart_policy: str
    supplemental_groups: list[int]  # asked for by the request, on top of the user's own
    image_pull_secrets: list[str]


def _base_env(cfg: Config, ident: Identity, script: Script) -> list[tuple[str, str]]:
    """The environment every container starts with: OOD's user variables, the site's, the job's."""
    env: dict[str, str] = {
        "USER": ident.username, "UID": str(ident.uid), "HOME": ident.home,
        "GROUP": ident.groups[0] if ident.groups else str(ident.gid), "GID": str(ident.gid),
        "KUBECONFIG": "/dev/null",
    }
    env.update(checks.env(cfg.jobs.env, "jobs.env"))
    env.update(checks.env(script.job_environment, "job_environment"))
    return list(env.items())


def _command(command: Any, path: str) -> list[str]:
    if command is None or command == "":
        return []
    if isinstance(command, str):
        try:
            return shlex.split(command)
        except ValueError as exc:
            raise bad(path, command, f"a command line ({exc})") from None
    return [checks.text(c, f"{path}[{i}]", allow_empty=True) for i, c in enumerate(checks.listing(command, path))]


def _probe(raw: dict[str, Any], path: str) -> dict[str, int]:
    """Readiness probe timings from OOD's ``startup_probe`` keys (OOD's defaults)."""
    where = f"{path}.startup_probe"
    raw_probe = checks.mapping(raw.get("startup_probe"), where)
    checks.known(raw_probe, _PROBE_KEYS, where)
    delay = checks.whole(raw_probe.get("initial_delay_seconds", 2), f"{where}.initial_delay_seconds")
    period = checks.whole(raw_probe.get("period_seconds", 5), f"{where}.period_seconds", 1)
    threshold = checks.whole(raw_probe.get("failure_threshold", 5), f"{where}.failure_threshold", 1)
    return {"initialDelaySeconds": delay, "periodSeconds": period, "failureThreshold": threshold}


def _container(raw: dict[str, Any], path: str, default_image: str, cfg: Config, base_env: list[tuple[str, str]],
               *, default_name: str) -> ContainerSpec:
    name = checks.dns_label(raw["name"], f"{path}.name") if raw.get("name") else default_name
    image = default_image if raw.get("image") is None else checks.text(raw["image"], f"{path}.image", allow_empty=True)
    if not image:
        raise UsageError(f"{path}.image: missing", "name a container image, or leave it out to use the profile's")
    if not checks.IMAGE.match(image) or len(image) > 1024:
        raise bad(f"{path}.image", image, "an image reference such as quay.io/jupyter/scipy-notebook:2025-10-20")
    cmd = _command(raw.get("command"), f"{path}.command")
    env = dict(base_env)
    env.update(checks.env(raw.get("env"), f"{path}.env"))
    port = None if raw.get("port") in (None, "") else checks.whole(raw["port"], f"{path}.port", 1, 65535)
    pull = raw.get("image_pull_policy") or cfg.jobs.image_pull_policy
    if pull not in _PULL:
        raise bad(f"{path}.image_pull_policy", pull, "one of " + ", ".join(_PULL))
    probe = None if port is None else _probe(raw, path)
    working_dir = None if not raw.get("working_dir") else checks.abs_path(raw["working_dir"], f"{path}.working_dir")
    return ContainerSpec(name=name, image=image, command=cmd, env=list(env.items()), port=port,
                         working_dir=working_dir, image_pull_policy=pull, probe=probe)


def _init_containers(cfg: Config, profile: Profile, native: dict[str, Any],
                     env: list[tuple[str, str]]) -> list[ContainerSpec]:
    inits = []
    for i, raw in enumerate(checks.listing(native.get("init_containers"), "native.init_containers")):
        path = f"native.init_containers[{i}]"
        raw = checks.mapping(raw, path)
        checks.known(raw, CONTAINER_KEYS, path)
        init = _container(raw, path, profile.image, cfg, env, default_name=f"init-{i}")
        if not init.command:
            raise UsageError(f"{path}.command: missing", "an init container needs a command")
        inits.append(init)
    return inits


def containers(cfg: Config, ident: Identity, profile: Profile, native: dict[str, Any], raw_ctr: dict[str, Any],
               script: Script) -> Containers:
    """The main container (the profile's image unless the request names one), the init containers
    (with the main container's environment), the restart policy, extra groups and pull secrets."""
    main = _container(raw_ctr, "native.container", profile.image, cfg, _base_env(cfg, ident, script),
                      default_name=DEFAULT_CONTAINER)
    inits = _init_containers(cfg, profile, native, main.env)
    all_names = [main.name] + [c.name for c in inits]
    if len(set(all_names)) != len(all_names):
        raise UsageError("native: two containers have the same name", "give each container its own name")
    restart = raw_ctr.get("restart_policy") or "Never"
    if restart not in _RESTART:
        raise bad("native.container.restart_policy", restart, "one of " + ", ".join(_RESTART))
    where = "native.container.supplemental_groups"
    groups = [checks.whole(g, f"{where}[{i}]", 1)
              for i, g in enumerate(checks.listing(raw_ctr.get("supplemental_groups"), where))]
    access.check_supplemental_groups(groups, ident, where)
    pull_secrets: list[str] = []
    if raw_ctr.get("image_pull_secret"):
        pull_secrets.append(checks.dns_subdomain(raw_ctr["image_pull_secret"], "native.container.image_pull_secret"))
    if cfg.users.image_pull_secret.name and cfg.users.image_pull_secret.name not in pull_secrets:
        pull_secrets.append(cfg.users.image_pull_secret.name)
    return Containers(main, inits, restart, groups, pull_secrets)

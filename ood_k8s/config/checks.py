"""``ood-k8s doctor``'s check of the configuration: it loaded (the command reports a file that does
not), and every cluster object it implies renders and validates for ``cluster.kubernetes_version``."""

from __future__ import annotations

from typing import Any

from ood_k8s.cluster import manifests
from ood_k8s.config import Config
from ood_k8s.core.errors import ConfigError, OodK8sError
from ood_k8s.doctor.report import Check, Context, one_line


def check_config(cfg: Config) -> tuple[Check, list[dict[str, Any]]]:
    """The configuration loaded; every cluster object renders and validates (returned for later checks)."""
    try:
        objs = manifests.objects(cfg)
    except OodK8sError as err:
        return Check("configuration", False, one_line(err), "fix the template or the setting it names"), []
    return Check("configuration", True, f"{cfg.source}: {len(objs)} cluster objects valid for Kubernetes "
                                        f"{cfg.cluster.kubernetes_version}"), objs


def check_files(cfg: Config) -> Check | None:
    """What every student's poll and every login read, as ``config check`` checks it: the CA parses
    as PEM, no secret in the world-readable file.  None when all is well (the configuration line stands)."""
    from ood_k8s.config import files
    from ood_k8s.core.kube import ca_problem

    c = cfg.cluster
    problems = [p for p in [ca_problem(c.certificate_authority)] if p] if c.server and c.certificate_authority \
        else []
    problems += files.secret_problems(cfg)
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return Check("configuration", False, problems[0] + more,
                 "fix it before a student meets it; 'sudo ood-k8s config check' lists every problem")


def configuration(ctx: Context) -> list[Check]:
    """Doctor provider: the configuration; records the rendered objects in ``ctx.objects``."""
    check, ctx.objects = check_config(ctx.cfg)
    return [check_files(ctx.cfg) or check] if check.ok else [check]


# --- ``ood-k8s config check``: everything a poll and a login will need, read-only --------------------


def site_problems(path: str | None) -> tuple[Config | None, list[str]]:
    """The configuration (None if it does not load) and every problem ``config check`` reports:
    the schema's, the files the settings name, secrets in the world-readable file, and values still
    the example's.  Nothing is written (no compiled cache beside a draft)."""
    from ood_k8s import config
    from ood_k8s.config import files

    try:
        cfg = config.load(path, read_only=True)
    except ConfigError as err:
        return None, err.problems or [err.message]
    problems = []
    if cfg.source == "<built-in default>":
        problems.append(f"no site configuration at {config.DEFAULT_PATH}: the built-in default is the example "
                        "('ood-k8s config example > FILE', edit, point --config or $OOD_K8S_CONFIG at it)")
    problems += files.secret_problems(cfg)
    problems += files.file_problems(cfg)
    problems += files.placeholder_problems(config.to_dict(cfg, redact=False), skip=files.unused_sections(cfg))
    return cfg, problems

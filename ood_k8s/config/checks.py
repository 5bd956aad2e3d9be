"""``ood-k8s doctor``'s check of the configuration: it loaded (the command reports a file that does
not), and every cluster object it implies renders and validates for ``cluster.kubernetes_version``."""

from __future__ import annotations

from typing import Any

from ood_k8s.cluster import manifests
from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.doctor.report import Check, Context, one_line


def check_config(cfg: Config) -> tuple[Check, list[dict[str, Any]]]:
    """The configuration loaded; every cluster object renders and validates (returned for later checks)."""
    try:
        objs = manifests.objects(cfg)
    except OodK8sError as err:
        return Check("configuration", False, one_line(err), "fix the template or the setting it names"), []
    return Check("configuration", True, f"{cfg.source}: {len(objs)} cluster objects valid for Kubernetes "
                                        f"{cfg.cluster.kubernetes_version}"), objs


def configuration(ctx: Context) -> list[Check]:
    """Doctor provider: the configuration; records the rendered objects in ``ctx.objects``."""
    check, ctx.objects = check_config(ctx.cfg)
    return [check]

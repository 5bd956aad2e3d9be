"""``ood-k8s doctor``'s storage checks: the site's storage (from its backend) and one user's home.

:func:`site` and :func:`home` are check providers (see :mod:`ood_k8s.doctor.runner`); the backends'
``doctor_checks`` build on :func:`home_root`.
"""

from __future__ import annotations

import os

from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.names import UserNames
from ood_k8s.doctor.report import Check, Context, one_line
from ood_k8s.storage import backend as storage


def home_root(cfg: Config) -> Check:
    """The portal mounts the homes where it creates them."""
    root = cfg.storage.home_root
    ok = os.path.isdir(root)
    return Check("portal home root", ok, f"{root} " + ("is a directory" if ok else "is missing"),
                 f"mount the home file system at {root} on the portal")


def site(ctx: Context) -> list[Check]:
    """The home storage backend exists (the EFS file system and its CSI driver, the portal's homes...)."""
    if not ctx.reachable or ctx.kube is None:
        return []
    return storage.of(ctx.cfg).doctor_checks(ctx)


def home_claim(kube: KubeClient, cfg: Config, ident: Identity, names: UserNames) -> list[Check]:
    """The user's home claim is bound, where the provisioner makes it (a static PV per user)."""
    if not storage.of(cfg).static_pv:
        return []
    from ood_k8s.storage.static_pv import claim_finding  # the verdict 'storage check' prints, by construction

    try:
        pvc = kube.get_or_none("PersistentVolumeClaim", storage.HOME_CLAIM, names.namespace)
    except OodK8sError as err:
        return [Check("home claim", False, one_line(err), f"ood-k8s user setup {ident.username}")]
    f = claim_finding(names, pvc)
    return [Check("home claim", f.status != "error" and pvc is not None, f.pod,
                  f.fix or f"ood-k8s user setup {ident.username}")]


def home(ctx: Context) -> list[Check]:
    """``ood-k8s storage check``'s findings: the home as the portal sees it beside what the pod gets."""
    if ctx.ident is None:
        return []
    from ood_k8s.users import provision

    cfg, ident = ctx.cfg, ctx.ident
    try:
        backend = storage.of(cfg)
        cloud = ctx.client(backend.cloud_client) if backend.cloud_client else None
        findings = storage.check(cfg, ident, provision.user_names(cfg, ident.username),
                                 ctx.kube if ctx.reachable else None, cloud=cloud)
    except OodK8sError as err:
        return [Check("home", False, one_line(err), err.hint or "")]
    return [Check(f"home: {f.what}", f.status != "error", f"{f.portal}; pod: {f.pod}", f.fix) for f in findings]

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``storage.mode: nfs``: a static NFS PersistentVolume per user (settings: ``storage.nfs``).

Pod Security "restricted" forbids ``nfs`` volumes in pods, so the home reaches the pod through a PV
the provisioner makes and the claim ``home`` bound to it (:mod:`ood_k8s.storage.static_pv`).  The
export path comes from a template; ood-k8s never deletes anything on the server.
"""

import os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

from ood_k8s.config import Config
from ood_k8s.core.errors import ConfigError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.storage.backend import template_fields
from ood_k8s.storage.static_pv import StaticPvBackend

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context


def export_path(cfg: Config, ident: Identity) -> str:
    """The user's export path on the server, refused unless it is a normalised absolute path."""
    path = cfg.storage.nfs.path.format(**template_fields(cfg, ident))
    if not path.startswith("/") or os.path.normpath(path) != path:
        raise ConfigError(f"storage.nfs.path {cfg.storage.nfs.path!r} gives {path!r}, expected a normalised "
                          "absolute export path", "use a template such as /export/home/{user}")
    return path


class NfsBackend(StaticPvBackend):
    pv_template = "storage/nfs-pv.yaml.j2"

    def source_context(self, cfg: Config, ident: Identity, volume_id: str) -> Dict[str, Any]:
        nfs = cfg.storage.nfs
        return {"server": nfs.server, "path": export_path(cfg, ident), "mount_options": list(nfs.mount_options)}

    def source(self, cfg: Config, ident: Identity, volume_id: str) -> str:
        return f"nfs {cfg.storage.nfs.server}:{export_path(cfg, ident)}"

    def pv_source(self, spec: Mapping[str, Any]) -> str:
        nfs = spec.get("nfs") or {}
        return f"nfs {nfs.get('server')}:{nfs.get('path')}"

    def teardown(self, cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
                 cloud: Any) -> List[str]:
        done = super().teardown(cfg, ident, names, client, delete_data, cloud)
        if delete_data:
            done.append(f"kept the data under {cfg.storage.nfs.server}:{export_path(cfg, ident)}: ood-k8s never "
                        "deletes a home's contents; remove it on the NFS server if it must go")
        return done

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        from ood_k8s.doctor.report import Check
        from ood_k8s.storage import checks

        return [Check("home storage", True, f"NFS {ctx.cfg.storage.nfs.server} (checked per user with --user)"),
                Check("NFS AUTH_SYS", None, "AUTH_SYS trusts the uid a client claims: sessions cannot reach NFS "
                      "(NetworkPolicy blocks 2049 and 111; the guard blocks net.ipv4.ip_unprivileged_port_start), "
                      "but any host or node that reaches the server can read and write every home",
                      "export only to the node subnets with root_squash, keep other hosts off 2049, or use EFS "
                      "access points (storage.mode efs) or sec=krb5"),
                checks.home_root(ctx.cfg)]


BACKEND = NfsBackend()

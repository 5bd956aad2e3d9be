"""What a session pod may mount, defined once: read by submit and by the admission guard.

Where ``ood-k8s cluster render`` gives the cluster its admission guard (a ValidatingAdmissionPolicy,
Kubernetes 1.28 and later: :func:`guarded`), a session's volumes may only be of the kinds ood-k8s
itself uses (:data:`SESSION_VOLUME_KINDS`), inline CSI of the drivers in ``jobs.csi_drivers``, the
claims of :func:`session_claims` (the user's home claim, those of ``storage.extra_mounts``,
read-only and at the sub-path configured there, and the courses' datasets, read-only), and with
``storage.mode: hostpath`` the hostPath of the user's own home.  :mod:`ood_k8s.policy.cel` generates the
guard's CEL from these definitions and
:func:`check_mount` refuses the rest at submit, before any object exists, with a line naming the
request's key -- a student must never meet the API server's CEL message instead.

``users.pod_security`` is checked too, and is all that limits ``nfs`` (baseline) and ``host``
(privileged) mounts on clusters without the guard.  So a share reaches sessions through
``storage.extra_mounts`` (a PersistentVolume and claim, which both the guard and submit allow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ood_k8s.config import Config
from ood_k8s.core.errors import NotEntitled
from ood_k8s.core.identity import Identity
from ood_k8s.storage import backend as storage

SESSION_VOLUME_KINDS = ("persistentVolumeClaim", "configMap", "secret", "emptyDir", "downwardAPI", "projected")
# What a projected volume may combine (the API server's service-account token volume is one).
SESSION_PROJECTED_SOURCES = ("configMap", "secret", "downwardAPI", "serviceAccountToken")

# How refusals name the pod volume kinds a request's mount can produce and the guard refuses.
_KIND_NAMES = {"nfs": "NFS", "hostPath": "host (hostPath)", "csi": "inline CSI"}


def admission_api_version(kubernetes_version: str) -> str | None:
    """ValidatingAdmissionPolicy is GA (v1) from 1.30, beta from 1.28; older clusters have no usable one."""
    minor = int(kubernetes_version.split(".")[1])
    return "admissionregistration.k8s.io/v1" if minor >= 30 else \
        "admissionregistration.k8s.io/v1beta1" if minor >= 28 else None


def guarded(cfg: Config) -> bool:
    """Whether this cluster version gets the admission guard (and so its volume rules apply)."""
    return admission_api_version(cfg.cluster.kubernetes_version) is not None


@dataclass(frozen=True)
class SessionClaim:
    """A claim session pods may mount; names are templates evaluated for the namespace's user."""

    claim: str
    read_only: bool = False  # must be mounted with persistentVolumeClaim.readOnly
    sub_path: str = ""  # when set, the only sub-path a container may mount it at
    home: bool = False

    def resolve(self, **fields: Any) -> tuple[str, str]:
        """(claim name, sub-path) for one user, from :func:`ood_k8s.storage.backend.template_fields`."""
        return self.claim.format(**fields), self.sub_path.format(**fields)


def session_claims(cfg: Config) -> list[SessionClaim]:
    """The claims the guard allows: the user's home claim, the site's ``storage.extra_mounts`` and the
    courses' datasets (read-only; a dataset's claim is a plain name, escaped for the template)."""
    s = cfg.storage
    home = storage.of(cfg).claim_template(cfg)
    out = [SessionClaim(home, home=True)] if home else []
    out += [SessionClaim(m.claim_name, m.read_only, m.sub_path) for m in s.extra_mounts]
    datasets = dict.fromkeys(d.claim for c in cfg.courses for d in c.datasets)
    return out + [SessionClaim(claim, read_only=True) for claim in datasets]


def host_path_home(cfg: Config) -> bool:
    """Whether the user's home (the namespace's home annotation) is the one hostPath allowed."""
    return storage.of(cfg).host_path


# --- at submit ---------------------------------------------------------------------------------------


def check_mount(native_type: str, vol: dict[str, Any], mnt: dict[str, Any], path: str, cfg: Config,
                ident: Identity, fields: dict[str, Any]) -> None:
    """Refuse a requested mount the cluster would refuse, naming the request's key ``path``: the
    admission guard's rules where the cluster has the guard, then the Pod Security level.

    ``native_type`` is the request's mount type (``nfs``, ``host``, ...), ``vol``/``mnt`` the pod
    volume and volume mount it became, ``fields`` the user's name-template fields.
    """
    kind = next(k for k in vol if k != "name")
    ask = f"ask the admin to provide {mnt['mountPath']} through storage.extra_mounts"
    if guarded(cfg):
        own_home = kind == "hostPath" and host_path_home(cfg) and vol[kind]["path"] == ident.home
        if kind == "csi" and cfg.jobs.csi_drivers:
            if vol[kind]["driver"] not in cfg.jobs.csi_drivers:
                raise NotEntitled(f"{path}.driver: inline CSI driver '{vol[kind]['driver']}' is not allowed in "
                                  "sessions on this site", f"use one of {', '.join(cfg.jobs.csi_drivers)}, or {ask}")
        elif kind not in SESSION_VOLUME_KINDS and not own_home:
            raise NotEntitled(f"{path}: {_KIND_NAMES.get(kind, kind)} volumes are not allowed in sessions on this site",
                              ask)
        if kind == "persistentVolumeClaim":
            _check_claim(vol[kind], mnt, path, session_claims(cfg), fields, ask)
    level = cfg.users.pod_security
    if (native_type == "host" and level != "privileged") or (native_type == "nfs" and level == "restricted"):
        raise NotEntitled(f"{path}: '{native_type}' volumes are forbidden by the cluster's Pod Security level "
                          f"'{level}'", "use a pvc or csi mount, or ask your administrator")


def _check_claim(pvc: dict[str, Any], mnt: dict[str, Any], path: str, claims: list[SessionClaim],
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

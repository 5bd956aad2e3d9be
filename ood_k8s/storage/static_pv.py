# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""What the backends that give every user a static PersistentVolume share (efs, nfs).

The PV is cluster-scoped and names exactly one claim, ``home`` in the user's namespace, by
``claimRef``; the claim names the PV by ``volumeName``: the pair binds only to each other, and the
PV is Retain, so deleting it never touches the data.  :class:`StaticPvBackend` implements
:class:`~ood_k8s.storage.backend.HomeBackend` for such a pair; a subclass says only what its PV's
source is (:meth:`StaticPvBackend.source_context`, :meth:`StaticPvBackend.source`) and adds its own
cloud steps by overriding.
"""

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.storage.backend import HOME_CLAIM, Finding, Objects, StorageResult, claim_volume

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context

PVC_TEMPLATE = "storage/home-pvc.yaml.j2"


def pv_name(names: UserNames) -> str:
    """The user's home PV. PVs are cluster-scoped: the namespace (portal prefix + slug) keeps two
    portals sharing a cluster apart."""
    return f"{names.namespace}-home"


class StaticPvBackend(ABC):
    """A home on a static PV bound to the claim ``home``.  Subclasses set :attr:`pv_template` and
    implement the source methods and :meth:`doctor_checks`."""

    static_pv = True
    csi_driver = ""
    host_path = False
    cloud_client = ""
    pv_template = ""

    # --- what a subclass says ---------------------------------------------------------------------

    @abstractmethod
    def source_context(self, cfg: Config, ident: Identity, volume_id: str) -> Dict[str, Any]:
        """The PV template's context for the volume source (server, path, file system...)."""

    @abstractmethod
    def source(self, cfg: Config, ident: Identity, volume_id: str) -> str:
        """The PV's source as ``storage check`` shows it (``nfs server:/path``, ``csi fs::ap``)."""

    @abstractmethod
    def pv_source(self, spec: Mapping[str, Any]) -> str:
        """What a live PV's ``spec`` says its source is, in the form of :meth:`source`."""

    def source_fingerprint(self, cfg: Config, ident: Identity) -> Dict[str, Any]:
        """The settings of the source that the fingerprint must cover (they change the PV): by
        default, its template context."""
        return self.source_context(cfg, ident, "")

    # --- HomeBackend -----------------------------------------------------------------------------

    def claim_template(self, cfg: Config) -> str:
        return HOME_CLAIM

    def pod_volume(self, cfg: Config, ident: Identity) -> Optional[Dict[str, Any]]:
        return claim_volume(cfg, ident, HOME_CLAIM)

    def fingerprint(self, cfg: Config, ident: Identity) -> Dict[str, Any]:
        fp = {"capacity": cfg.storage.capacity}
        fp.update(self.source_fingerprint(cfg, ident))
        fp.update(kubernetes_version=cfg.cluster.kubernetes_version, site_templates=cfg.templates.site_dir)
        return fp

    def volume_context(self, cfg: Config, ident: Identity, names: UserNames, volume_id: str = "") -> Dict[str, Any]:
        """The template context of the user's home PV and claim (pure)."""
        ctx: Dict[str, Any] = {
            "pv_name": pv_name(names), "claim_name": HOME_CLAIM, "claim_namespace": names.namespace,
            "namespace": names.namespace, "labels": names.labels, "annotations": names.annotations,
            "capacity": cfg.storage.capacity,
        }
        ctx.update(self.source_context(cfg, ident, volume_id))
        return ctx

    def volume_objects(self, cfg: Config, ident: Identity, names: UserNames, volume_id: str = "") -> Objects:
        from ood_k8s.render.render import for_config

        return for_config(cfg).many((self.pv_template, PVC_TEMPLATE),
                                    **self.volume_context(cfg, ident, names, volume_id))

    def plan(self, cfg: Config, ident: Identity, names: UserNames,
             known: Mapping[str, str]) -> Tuple[Objects, List[str]]:
        return self.volume_objects(cfg, ident, names, ""), []

    def provision(self, cfg: Config, ident: Identity, names: UserNames, known: Mapping[str, str],
                  cloud: Any) -> StorageResult:
        return StorageResult(self.volume_objects(cfg, ident, names, ""))

    def teardown(self, cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
                 cloud: Any) -> List[str]:
        """Delete the claim and the PV (Retain: the data stays)."""
        done: List[str] = []
        gone = client.delete("PersistentVolumeClaim", HOME_CLAIM, names.namespace, missing_ok=True)
        done.append(f"{'deleted' if gone is not None else 'no'} PersistentVolumeClaim {names.namespace}/{HOME_CLAIM}")
        pv = pv_name(names)
        gone = client.delete("PersistentVolume", pv, missing_ok=True)
        done.append(f"deleted PersistentVolume {pv} (reclaim policy Retain: the data stays on the file system)"
                    if gone is not None else f"no PersistentVolume {pv}")
        return done

    def check(self, cfg: Config, ident: Identity, names: UserNames, client: Any, cloud: Any) -> List[Finding]:
        return check_pair(self, names, client, self.source(cfg, ident, ""))

    @abstractmethod
    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        """The source's site checks (a file system, a server...)."""

    def config_problems(self, cfg: Config) -> List[str]:
        return []


def check_pair(backend: StaticPvBackend, names: UserNames, client: Any, expected: str) -> List[Finding]:
    """The home PV and claim as the cluster has them; ``expected`` is the volume source they need
    ('' when it is not known)."""
    pv = pv_name(names)
    if client is None:
        return [Finding("home volume", "-", f"PersistentVolume {pv}, claim {names.namespace}/{HOME_CLAIM}", "info",
                        "not checked: no cluster access (run as root with the provisioner kubeconfig)")]
    try:
        have_pv = client.get_or_none("PersistentVolume", pv)
        have_pvc = client.get_or_none("PersistentVolumeClaim", HOME_CLAIM, names.namespace)
    except OodK8sError as err:
        return [Finding("home volume", "-", "unknown", "error", str(err))]
    return [_pv_finding(backend, names, have_pv, expected), claim_finding(names, have_pvc)]


_RELOGIN = "the user's next login provisions it (or run the hook for the user now)"


def _pv_finding(backend: StaticPvBackend, names: UserNames, have: Optional[Dict[str, Any]], expected: str) -> Finding:
    pv = pv_name(names)
    if have is None:
        return Finding("PersistentVolume", "-", f"{pv}: missing", "warn", _RELOGIN)
    spec = have.get("spec") or {}
    ref = spec.get("claimRef") or {}
    phase = (have.get("status") or {}).get("phase", "?")
    source = backend.pv_source(spec)
    pod = f"{pv}: {source}, claimRef {ref.get('namespace')}/{ref.get('name')}, " \
          f"{spec.get('persistentVolumeReclaimPolicy')}, {phase}"
    problems = []
    if (ref.get("namespace"), ref.get("name")) != (names.namespace, HOME_CLAIM):
        problems.append(f"claimRef must be {names.namespace}/{HOME_CLAIM}")
    if spec.get("persistentVolumeReclaimPolicy") != "Retain":
        problems.append(f"kubectl patch pv {pv} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"Retain\"}}}}'")
    if expected and source != expected:
        problems.append(f"expected {expected}: delete PersistentVolume {pv} and claim {names.namespace}/"
                        f"{HOME_CLAIM} while no session runs; the next login recreates them")
    return Finding("PersistentVolume", "-", pod, "error" if problems else "ok", "; ".join(problems))


def claim_finding(names: UserNames, have: Optional[Dict[str, Any]]) -> Finding:
    if have is None:
        return Finding("PersistentVolumeClaim", "-", f"{names.namespace}/{HOME_CLAIM}: missing", "warn", _RELOGIN)
    pv = pv_name(names)
    spec = have.get("spec") or {}
    phase = (have.get("status") or {}).get("phase", "?")
    pod = f"{names.namespace}/{HOME_CLAIM}: volumeName {spec.get('volumeName')}, {phase}"
    if spec.get("volumeName") != pv:
        return Finding("PersistentVolumeClaim", "-", pod, "error", f"the claim must name volume {pv}: delete it "
                       "while no session runs; the next login recreates it")
    # Not Bound: sessions would wait for their home; the one verdict doctor and storage check share.
    return Finding("PersistentVolumeClaim", "-", pod, "ok" if phase == "Bound" else "error",
                   "" if phase == "Bound" else f"kubectl describe pvc -n {names.namespace} {HOME_CLAIM} "
                   f"says why it is not bound to {pv}")

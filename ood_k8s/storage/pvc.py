# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``storage.mode: pvc``: the home is a claim the site made in the user's namespace (settings: ``storage.pvc``).

ood-k8s makes and removes nothing: it mounts the claim named by ``storage.pvc.claim_name`` and
``storage check`` says whether it exists and is bound.
"""

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ood_k8s.config import Config
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.storage.backend import Finding, NothingToProvision, claim_volume, home_claim_name

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context


class PvcBackend(NothingToProvision):
    static_pv = False
    csi_driver = ""
    host_path = False
    cloud_client = ""

    def claim_template(self, cfg: Config) -> str:
        return cfg.storage.pvc.claim_name

    def pod_volume(self, cfg: Config, ident: Identity) -> Optional[Dict[str, Any]]:
        return claim_volume(cfg, ident, cfg.storage.pvc.claim_name)

    def fingerprint(self, cfg: Config, ident: Identity) -> Dict[str, Any]:
        return {"claim": home_claim_name(cfg, ident)}

    def teardown(self, cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
                 cloud: Any) -> List[str]:
        return [f"kept PersistentVolumeClaim {names.namespace}/{home_claim_name(cfg, ident)}: it is the site's"]

    def check(self, cfg: Config, ident: Identity, names: UserNames, client: Any, cloud: Any) -> List[Finding]:
        claim = home_claim_name(cfg, ident)
        what = "PersistentVolumeClaim"
        if client is None:
            return [Finding(what, "-", f"{names.namespace}/{claim}", "info", "not checked: no cluster access")]
        try:
            have = client.get_or_none("PersistentVolumeClaim", claim, names.namespace)
        except OodK8sError as err:
            return [Finding(what, "-", "unknown", "error", str(err))]
        if have is None:
            return [Finding(what, "-", f"{names.namespace}/{claim}: missing", "error",
                            f"storage.mode pvc uses claims the site creates: create {claim} in {names.namespace}")]
        phase = (have.get("status") or {}).get("phase", "?")
        pod = f"{names.namespace}/{claim}: volume {(have.get('spec') or {}).get('volumeName') or '-'}, {phase}"
        if phase != "Bound":
            return [Finding(what, "-", pod, "warn", "sessions wait until the claim is Bound; check its "
                            "PV/StorageClass")]
        return [Finding(what, "-", pod, "ok")]

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        from ood_k8s.doctor.report import Check

        return [Check("home storage", True, f"existing claims {ctx.cfg.storage.pvc.claim_name} (checked per user "
                      "with --user)")]

    def config_problems(self, cfg: Config) -> List[str]:
        return []


BACKEND = PvcBackend()

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``storage.mode: none``: sessions get no home volume; nothing is made, kept or removed."""

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ood_k8s.config import Config
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.storage.backend import Finding, NothingToProvision

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context


class NoHome(NothingToProvision):
    """No home volume.  The base of :class:`~ood_k8s.storage.hostpath.HostPathBackend`, which also
    makes no object."""

    static_pv = False
    csi_driver = ""
    host_path = False
    cloud_client = ""

    def claim_template(self, cfg: Config) -> str:
        return ""

    def pod_volume(self, cfg: Config, ident: Identity) -> Optional[Dict[str, Any]]:
        return None

    def fingerprint(self, cfg: Config, ident: Identity) -> Dict[str, Any]:
        return {}

    def teardown(self, cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
                 cloud: Any) -> List[str]:
        return [f"nothing to remove: storage.mode is {cfg.storage.mode}"]

    def check(self, cfg: Config, ident: Identity, names: UserNames, client: Any, cloud: Any) -> List[Finding]:
        return [Finding("home volume", ident.home, "no home volume (storage.mode none)", "info")]

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        from ood_k8s.doctor.report import Check

        return [Check("home storage", None, "storage.mode none: sessions get no home volume")]

    def config_problems(self, cfg: Config) -> List[str]:
        return []


BACKEND = NoHome()

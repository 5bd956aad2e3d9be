"""A toy home backend, written as a site plugin would write one: the home is a claim per user that
the cluster's dynamic provisioner fills from the StorageClass in ``storage.toy``.

Registered from the tests only (``storage.register("toy", BACKEND, settings=ToyConfig)``): nothing in
ood_k8s names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ood_k8s.config import Config, check_dns_label, check_quantity, section, setting
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.doctor.report import Check, Context
from ood_k8s.storage import backend as storage
from ood_k8s.storage.backend import Finding, Objects, StorageResult

CLAIM = "toy-{slug}"


@section
class ToyConfig:
    storage_class: str = setting("standard", "StorageClass of the users' home claims.", check=check_dns_label)
    size: str = setting("1Gi", "Size each home claim requests.", check=check_quantity)


class ToyBackend:
    static_pv = False
    csi_driver = ""
    host_path = False
    cloud_client = ""

    def claim_template(self, cfg: Config) -> str:
        return CLAIM

    def pod_volume(self, cfg: Config, ident: Identity) -> dict[str, Any] | None:
        return storage.claim_volume(cfg, ident, CLAIM)

    def fingerprint(self, cfg: Config, ident: Identity) -> dict[str, Any]:
        return {"storage_class": cfg.storage.toy.storage_class, "size": cfg.storage.toy.size}

    def volume_objects(self, cfg: Config, ident: Identity, names: UserNames, volume_id: str) -> Objects:
        toy = cfg.storage.toy
        return [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": storage.home_claim_name(cfg, ident), "namespace": names.namespace,
                              "labels": dict(names.labels)},
                 "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": toy.storage_class,
                          "resources": {"requests": {"storage": toy.size}}}}]

    def plan(self, cfg: Config, ident: Identity, names: UserNames,
             known: Mapping[str, str]) -> tuple[Objects, list[str]]:
        return self.volume_objects(cfg, ident, names, ""), [f"toy: a {cfg.storage.toy.size} home claim of class "
                                                            f"{cfg.storage.toy.storage_class}"]

    def provision(self, cfg: Config, ident: Identity, names: UserNames, known: Mapping[str, str],
                  cloud: Any) -> StorageResult:
        return StorageResult(self.volume_objects(cfg, ident, names, ""))

    def teardown(self, cfg: Config, ident: Identity, names: UserNames, client: Any, delete_data: bool,
                 cloud: Any) -> list[str]:
        claim = storage.home_claim_name(cfg, ident)
        gone = client.delete("PersistentVolumeClaim", claim, names.namespace, missing_ok=True)
        return [f"toy: {'deleted' if gone is not None else 'no'} claim {names.namespace}/{claim}"]

    def check(self, cfg: Config, ident: Identity, names: UserNames, client: Any, cloud: Any) -> list[Finding]:
        claim = storage.home_claim_name(cfg, ident)
        try:
            have = client.get_or_none("PersistentVolumeClaim", claim, names.namespace) if client else None
        except OodK8sError as err:
            return [Finding("toy claim", "-", "unknown", "error", str(err))]
        if have is None:
            return [Finding("toy claim", "-", f"{names.namespace}/{claim}: missing", "warn", "log in again")]
        return [Finding("toy claim", "-", f"{names.namespace}/{claim}: {have['spec']['storageClassName']}", "ok")]

    def doctor_checks(self, ctx: Context) -> list[Check]:
        return [Check("toy storage", True, f"claims of class {ctx.cfg.storage.toy.storage_class}")]

    def config_problems(self, cfg: Config) -> list[str]:
        size = cfg.storage.toy.size
        return [f"storage.toy.size: got {size!r}, expected more than nothing"] if size in ("0", "") else []


BACKEND = ToyBackend()

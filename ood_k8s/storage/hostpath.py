# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``storage.mode: hostpath`` (legacy): pods mount the node's own copy of the home.

Every node must mount the same homes at the same paths; pods need Pod Security ``privileged``
(``restricted`` and ``baseline`` forbid hostPath volumes), so every use is warned about and a
configuration without ``users.pod_security: privileged`` is refused.  The admission guard allows
exactly the hostPath of the user's recorded home.  Prefer ``efs`` or ``nfs``.
"""

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from ood_k8s.config import Config
from ood_k8s.core.errors import ConfigError
from ood_k8s.core.identity import Identity
from ood_k8s.core.names import UserNames
from ood_k8s.storage.backend import Finding, Objects, StorageResult
from ood_k8s.storage.none import NoHome

if TYPE_CHECKING:
    from ood_k8s.doctor.report import Check, Context

_NEEDS = "storage.mode: got 'hostpath', expected users.pod_security: privileged to go with it"
_WHY = "Pod Security 'restricted' and 'baseline' forbid hostPath volumes"


def _warn(cfg: Config, ident: Identity) -> None:
    if cfg.users.pod_security != "privileged":
        # config.load refuses this too; a Config built in code must not slip past it.
        raise ConfigError(_NEEDS, _WHY)
    import logging  # deferred: ~5 ms, and only hostpath sites log here

    logging.getLogger(__name__).warning(
        "storage.mode is 'hostpath': %s's session mounts the node's %s; every node must mount the homes itself "
        "and pods need Pod Security 'privileged' -- prefer storage.mode efs or nfs", ident.username, ident.home)


class HostPathBackend(NoHome):
    host_path = True

    def pod_volume(self, cfg: Config, ident: Identity) -> Optional[Dict[str, Any]]:
        _warn(cfg, ident)
        return {"hostPath": {"path": ident.home, "type": "Directory"}}

    def plan(self, cfg: Config, ident: Identity, names: UserNames,
             known: Mapping[str, str]) -> Tuple[Objects, List[str]]:
        _warn(cfg, ident)
        return [], []

    def provision(self, cfg: Config, ident: Identity, names: UserNames, known: Mapping[str, str],
                  cloud: Any) -> StorageResult:
        _warn(cfg, ident)
        return StorageResult()

    def check(self, cfg: Config, ident: Identity, names: UserNames, client: Any, cloud: Any) -> List[Finding]:
        return [Finding("home volume", f"{ident.home} on this portal", f"hostPath {ident.home} on the node", "warn",
                        "every node must mount the same homes; prefer storage.mode efs or nfs")]

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        from ood_k8s.doctor.report import Check
        from ood_k8s.storage import checks

        return [Check("home storage", True, "hostPath homes: every node must mount the same homes at the same "
                      "paths (prefer storage.mode efs or nfs)"), checks.home_root(ctx.cfg)]

    def config_problems(self, cfg: Config) -> List[str]:
        return [] if cfg.users.pod_security == "privileged" else [f"{_NEEDS} ({_WHY})"]


BACKEND = HostPathBackend()

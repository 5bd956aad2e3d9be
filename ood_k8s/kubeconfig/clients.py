# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Which API server and which identity: the two ways ood-k8s gets a :class:`KubeClient`.

* :func:`as_user` -- the adapter and ``ood-k8s job`` run as the portal user.  With
  ``cluster.server`` set, the server and CA come from the site config and the user's ID token comes
  straight from their token cache (:mod:`ood_k8s.auth.tokens`), in-process: no kubeconfig parsing
  and no plugin process on the per-poll path.  Without it, the user's kubeconfig is used.
* :func:`as_provisioner` -- the hook and admin commands use the root-only provisioner kubeconfig.
"""

import os
import time
from typing import Callable, Optional

from ood_k8s.config import Config
from ood_k8s.core.kube import KubeClient


def as_user(cfg: Config, username: str, *, sleep: Callable[[float], None] = time.sleep) -> KubeClient:
    c = cfg.cluster
    if c.server:
        from ood_k8s.auth import tokens

        return KubeClient(c.server, token=tokens.token_source(cfg, username),
                          ca_file=c.certificate_authority or None, timeout=c.request_timeout,
                          retries=c.retries, sleep=sleep)
    from ood_k8s.kubeconfig import read as kubeconfig

    path = c.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or \
        os.path.expanduser("~/.kube/config")
    return kubeconfig.client(path, c.context or None, timeout=c.request_timeout, retries=c.retries, sleep=sleep)


EXEC_CACHE_DIR = "/var/lib/ood-k8s/exec-cache"


def as_provisioner(cfg: Config, *, sleep: Callable[[float], None] = time.sleep,
                   timeout: Optional[float] = None, retries: Optional[int] = None) -> KubeClient:
    """``timeout``/``retries``: tighter than the config's (``ood-k8s doctor`` runs under a deadline)."""
    from ood_k8s.kubeconfig import read as kubeconfig

    c = cfg.cluster
    cache = EXEC_CACHE_DIR if os.geteuid() == 0 else None
    return kubeconfig.client(c.provisioner_kubeconfig, None, timeout=c.request_timeout if timeout is None else timeout,
                             retries=c.retries if retries is None else retries, exec_cache_dir=cache, sleep=sleep)

"""What one user may hold besides compute: API objects and node-local scratch (the ResourceQuota and
LimitRange of ``templates/user``).

Secrets, ConfigMaps and Services are counted so that no user can fill etcd (the API server turns
read-only when it is full); load balancers are never allowed (each one is an internet-facing AWS load
balancer); a session Service exists only with ``connection: nodeport``, so in ``pod_ip`` mode a user may
hold no Service and no node port at all (REFERENCE §11).  Ephemeral storage has a default, a maximum
and a total, so a session cannot fill a node's disk and evict everyone on it.
"""

from __future__ import annotations

from typing import Any

from ood_k8s.config import Config


def services(cfg: Config) -> int:
    """Services a user may hold: one per NodePort session in ``nodeport`` mode, none otherwise."""
    return cfg.users.quota.node_ports if cfg.cluster.connection == "nodeport" else 0


def template_context(cfg: Config) -> dict[str, Any]:
    q, lim = cfg.users.quota, cfg.users.limits
    return {
        "object_quota": {"secrets": str(q.objects), "configmaps": str(q.objects), "services": str(services(cfg)),
                         "node_ports": str(services(cfg)), "load_balancers": "0",
                         "ephemeral_storage": q.ephemeral_storage},
        "ephemeral_limits": {"default": lim.default_ephemeral_storage,
                             "default_request": lim.default_request_ephemeral_storage,
                             "max": lim.max_ephemeral_storage},
    }

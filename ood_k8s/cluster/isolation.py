"""``ood-k8s doctor``'s checks of what tenant isolation needs from the cluster itself, beyond what
``cluster render`` applies (REFERENCE §11):

* **NetworkPolicy enforcement** on the EKS VPC CNI: off unless enabled (the network policy agent's
  ``--enable-network-policy=true`` in the ``aws-node`` DaemonSet, set by the add-on's
  ``enableNetworkPolicy``); and in its default "standard" mode a new pod is default-allow until its policies
  are programmed -- ``NETWORK_POLICY_ENFORCING_MODE=strict`` makes it default-deny;
* **node metadata options** of every node the site's autoscaler launches (tokens required, one hop), asked
  of the autoscaler (:meth:`ood_k8s.cluster.autoscaler.Autoscaler.node_metadata`);
* for ``nfs`` homes, what AUTH_SYS cannot guarantee (the storage backend's own checks say so too).
"""

from __future__ import annotations

from typing import Any

from ood_k8s.cluster import autoscaler
from ood_k8s.core.errors import NotFound, OodK8sError
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor.report import APPLY_CLUSTER, Check, Context, one_line

CNI_DAEMONSET = "aws-node"
CNI_NAMESPACE = "kube-system"
AGENT_FLAG = "--enable-network-policy=true"
STRICT_ENV = ("NETWORK_POLICY_ENFORCING_MODE", "strict")
ENABLE_FIX = ("enable network policy in the VPC CNI add-on (configuration values: enableNetworkPolicy: \"true\"); "
              "without it no user NetworkPolicy is enforced")
STRICT_FIX = ("set the VPC CNI add-on's env NETWORK_POLICY_ENFORCING_MODE: strict (new pods start default-deny, "
              "not open until their policies are programmed)")


def _containers(ds: dict[str, Any]) -> list[dict[str, Any]]:
    return (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []


def vpc_cni_checks(ds: dict[str, Any] | None) -> list[Check]:
    """Enforcement and strict mode, judged from the aws-node DaemonSet (None: not the VPC CNI)."""
    if ds is None:
        return [Check("NetworkPolicy enforcement", None, f"no {CNI_NAMESPACE}/{CNI_DAEMONSET} DaemonSet: not the VPC "
                      "CNI; make sure the cluster's CNI enforces NetworkPolicy and starts new pods default-deny")]
    ctrs = _containers(ds)
    args = [a for c in ctrs for a in (c.get("args") or []) + (c.get("command") or [])]
    env = {e.get("name"): e.get("value") for c in ctrs for e in c.get("env") or []}
    enabled = AGENT_FLAG in args
    strict = env.get(STRICT_ENV[0]) == STRICT_ENV[1]
    return [
        Check("NetworkPolicy enforcement", enabled, "the VPC CNI's network policy agent " +
              ("enforces NetworkPolicy" if enabled else f"is off (no {AGENT_FLAG})"), "" if enabled else ENABLE_FIX),
        Check("NetworkPolicy strict mode", strict, f"{STRICT_ENV[0]}=" + (env.get(STRICT_ENV[0]) or "standard"),
              "" if strict else STRICT_FIX),
    ]


def check_network_policy(kube: KubeClient) -> list[Check]:
    try:
        ds = kube.request("GET", f"/apis/apps/v1/namespaces/{CNI_NAMESPACE}/daemonsets/{CNI_DAEMONSET}")
    except NotFound:
        ds = None
    except OodK8sError as err:
        return [Check("NetworkPolicy enforcement", False, one_line(err),
                      f"apply the provisioner RBAC: {APPLY_CLUSTER}")]
    return vpc_cni_checks(ds)


def isolation(ctx: Context) -> list[Check]:
    """Doctor provider: NetworkPolicy enforcement and node metadata options, when the API answered."""
    if not ctx.reachable or ctx.kube is None:
        return []
    return [*check_network_policy(ctx.kube), *autoscaler.of(ctx.cfg).node_metadata(ctx.kube, ctx.cfg)]

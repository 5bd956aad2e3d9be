"""What a session may reach on the network, and what may reach it: the user NetworkPolicies' rules.

Rendered into ``templates/user/networkpolicy.yaml.j2`` (:func:`template_context`) and checked by
``config check`` (:func:`config_problems`):

* **ingress** to a session only from the user's own namespace and the portal's own addresses
  (``cluster.portal_cidrs``), which must not overlap the pod network (``cluster.pod_cidrs``): on the VPC
  CNI an ``ipBlock`` matches pod addresses too, so an overlapping portal CIDR admits every pod;
* **egress** to DNS (kube-system's resolver), to the user's own pods, and to any address outside the pod
  network but the instance metadata service (the node's IAM role) -- on every port but NFS's (2049) and
  the portmapper's (111), TCP and UDP: a userspace NFS client in a session must not reach an EFS mount
  target or the site's NFS server (the CSI driver mounts homes from the node, which NetworkPolicy does not
  govern; REFERENCE §11).  Other users' namespaces are pod addresses, so they are unreachable.

NetworkPolicy can only allow, so "every port but" is written as the port ranges around them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ood_k8s.config import Config

METADATA_V4 = "169.254.169.254/32"
METADATA_V6 = "fd00:ec2::254/128"
BLOCKED_PORTS = (111, 2049)  # portmapper and NFS: no session may talk NFS itself
PROTOCOLS = ("TCP", "UDP")
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}


def allowed_port_ranges(blocked: tuple[int, ...] = BLOCKED_PORTS) -> list[tuple[int, int]]:
    """Inclusive (first, last) port ranges covering 1-65535 but ``blocked``."""
    out, start = [], 1
    for port in sorted(blocked):
        if port > start:
            out.append((start, port - 1))
        start = port + 1
    if start <= 65535:
        out.append((start, 65535))
    return out


def egress_ports() -> list[dict[str, Any]]:
    """The NetworkPolicy ``ports`` of the egress rule: every port but the blocked ones, TCP and UDP."""
    return [{"protocol": proto, "port": first, "endPort": last} if first != last else {"protocol": proto, "port": first}
            for proto in PROTOCOLS for first, last in allowed_port_ranges()]


def _split(cidrs: list[str]) -> tuple[list[str], list[str]]:
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    return [str(n) for n in nets if n.version == 4], [str(n) for n in nets if n.version == 6]


def template_context(cfg: Config) -> dict[str, Any]:
    """What the user NetworkPolicy template needs beyond the portal CIDRs."""
    pods_v4, pods_v6 = _split(list(cfg.cluster.pod_cidrs))
    return {
        "egress_except_v4": [METADATA_V4, *pods_v4],
        "egress_except_v6": [METADATA_V6, *pods_v6],
        "egress_ports": egress_ports(),
        "dns": {"namespace": DNS_NAMESPACE, "pod_labels": dict(DNS_POD_LABELS)},
    }


def config_problems(cfg: Config) -> list[str]:
    """A portal CIDR that overlaps the pod network would let every pod in as if it were the portal."""
    problems = []
    pods = [ipaddress.ip_network(c, strict=False) for c in cfg.cluster.pod_cidrs]
    for i, cidr in enumerate(cfg.cluster.portal_cidrs):
        portal = ipaddress.ip_network(cidr, strict=False)
        for pod in pods:
            if portal.version == pod.version and portal.overlaps(pod):
                problems.append(f"cluster.portal_cidrs[{i}]: got {cidr}, which overlaps the pod network {pod} "
                                "(cluster.pod_cidrs), expected the portal's own addresses (a /32 per portal host): "
                                "otherwise every pod reaches every session")
    return problems

"""A NetworkPolicy evaluator with the standard semantics (networking.k8s.io/v1), for testing the rendered
user policies against attacks.

* A pod is isolated for a direction when any policy in its namespace selects it (``podSelector``) and lists
  that direction in ``policyTypes``; an isolated pod allows only what some rule of those policies allows;
  a pod no policy selects allows everything in that direction.
* A connection needs the source's egress AND the destination's ingress (an endpoint outside the cluster
  has no policies).
* A rule with no ``to``/``from`` matches every peer, with no ``ports`` every port.  A peer is a
  ``podSelector`` (pods of the policy's namespace), a ``namespaceSelector`` (every pod of the selected
  namespaces), both (the selected pods of the selected namespaces), or an ``ipBlock`` (``cidr`` minus
  ``except``) -- which, as on the EKS VPC CNI (REFERENCE §11), matches pod addresses too.
* A port entry matches the protocol (default TCP) and the port, or ``port``..``endPort``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, NamedTuple


class Endpoint(NamedTuple):
    ip: str
    namespace: str = ""  # '' : outside the cluster (no pod, no policies)
    labels: dict[str, str] = {}


class Cluster:
    def __init__(self, policies: list[dict[str, Any]], namespaces: dict[str, dict[str, str]]) -> None:
        self.policies = policies
        self.namespaces = namespaces  # name -> labels

    def allows(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return (self._direction(src, dst, port, protocol, "Egress")
                and self._direction(dst, src, port, protocol, "Ingress"))

    def _direction(self, pod: Endpoint, peer: Endpoint, port: int, protocol: str, kind: str) -> bool:
        if not pod.namespace:
            return True
        selecting = [p for p in self.policies if p["metadata"]["namespace"] == pod.namespace
                     and _selects(p["spec"].get("podSelector", {}), pod.labels)
                     and kind in _types(p["spec"])]
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        return any(self._rule(p, r, peers_key, peer, port, protocol)
                   for p in selecting for r in p["spec"].get(key) or [])

    def _rule(self, policy: dict[str, Any], rule: dict[str, Any], peers_key: str, peer: Endpoint, port: int,
              protocol: str) -> bool:
        ports = rule.get("ports") or []
        if ports and not any(_port(p, port, protocol) for p in ports):
            return False
        peers = rule.get(peers_key) or []
        return not peers or any(self._peer(policy, x, peer) for x in peers)

    def _peer(self, policy: dict[str, Any], peer: dict[str, Any], ep: Endpoint) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            ip = ipaddress.ip_address(ep.ip)
            net = ipaddress.ip_network(block["cidr"], strict=False)
            return (ip.version == net.version and ip in net and not any(
                ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
                if ipaddress.ip_network(e, strict=False).version == ip.version))
        if not ep.namespace:
            return False
        if "namespaceSelector" in peer:
            if not _selects(peer["namespaceSelector"], self.namespaces.get(ep.namespace, {})):
                return False
        elif ep.namespace != policy["metadata"]["namespace"]:
            return False
        return _selects(peer.get("podSelector", {}), ep.labels)


def _types(spec: dict[str, Any]) -> list[str]:
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        has, value = e["key"] in labels, labels.get(e["key"])
        ok = {"In": has and value in e.get("values", []), "NotIn": not has or value not in e.get("values", []),
              "Exists": has, "DoesNotExist": not has}[e["operator"]]
        if not ok:
            return False
    return True


def _port(entry: dict[str, Any], port: int, protocol: str) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    if "port" not in entry:
        return True
    first = entry["port"]
    if not isinstance(first, int):
        return False  # named ports: no session names one
    return first <= port <= entry.get("endPort", first)

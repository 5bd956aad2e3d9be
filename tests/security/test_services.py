"""Services: a student's Service must not capture the portal's traffic (externalIPs, CVE-2020-8554), open a
load balancer or redirect a name -- evaluated against the rendered Service guard -- and in pod_ip mode the
student may not touch Services at all (RBAC read rule by rule).  Controls: ood-k8s's own Services pass."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ood_k8s.cluster import manifests as cluster
from ood_k8s.config import Config
from ood_k8s.render.render import Renderer
from tests.conftest import ALICE
from tests.security import rbac, vap

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def _cfg(connection: str) -> Config:
    cfg = Config()
    cfg.cluster.connection = connection
    return cfg


def _service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "evil", "namespace": "ood-alice"},
            "spec": {"type": "ClusterIP", "selector": {"app": "x"}, "ports": [{"port": 8888, "protocol": "TCP"}],
                     **spec}}


ATTACKS = [
    ("capture another address (CVE-2020-8554)", _service(externalIPs=["10.0.0.10"]), "externalIPs"),
    ("an internet-facing load balancer", _service(type="LoadBalancer"), "load balancers"),
    ("a load balancer address", _service(loadBalancerIP="203.0.113.9"), "load balancers"),
    ("a load balancer class", _service(loadBalancerClass="service.k8s.aws/nlb"), "load balancers"),
    ("a DNS redirect", {**_service(type="ExternalName"), "spec": {"type": "ExternalName",
                                                                  "externalName": "evil.example"}}, "ExternalName"),
]


@pytest.mark.parametrize("connection", ["pod_ip", "nodeport"])
@pytest.mark.parametrize(("service", "denial"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_service_attack_is_refused(connection: str, service: dict[str, Any], denial: str, operation: str) -> None:
    cfg = _cfg(connection)
    denied = vap.service_guard(cfg).admit(service, vap.hook_namespace(cfg, ALICE), operation=operation,
                                          old=_service() if operation == "UPDATE" else None)
    assert any(denial in d for d in denied), denied


def test_node_ports_only_in_nodeport_mode() -> None:
    svc = _service(type="NodePort")
    cfg = _cfg("pod_ip")
    assert vap.service_guard(cfg).admit(svc, vap.hook_namespace(cfg, ALICE)) == [
        "Services may only be of type ClusterIP on this site (cluster.connection pod_ip)"]
    cfg = _cfg("nodeport")
    assert vap.service_guard(cfg).admit(svc, vap.hook_namespace(cfg, ALICE)) == []


def test_ood_k8s_own_service_is_admitted() -> None:
    cfg = _cfg("nodeport")
    (svc,) = [o for o in vap.service_objects(cfg, ALICE) if o["kind"] == "Service"]
    defaulted = copy.deepcopy(svc)  # what the API server stores: an allocated cluster IP and node port
    defaulted["spec"].update(clusterIP="172.20.4.4", clusterIPs=["172.20.4.4"], sessionAffinity="None",
                             ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", internalTrafficPolicy="Cluster")
    defaulted["spec"]["ports"][0]["nodePort"] = 31000
    assert vap.service_guard(cfg).admit(defaulted, vap.hook_namespace(cfg, ALICE)) == []
    assert not [o for o in vap.service_objects(_cfg("pod_ip"), ALICE) if o["kind"] == "Service"]


def _authz(cfg: Config) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    roles = {o["metadata"]["name"]: o for o in cluster.objects(cfg, Renderer(None, validate=False))
             if o["kind"] == "ClusterRole"}
    bindings = [o for o in vap.user_objects(cfg, ALICE) if o["kind"] == "RoleBinding"]
    return roles, bindings


@pytest.mark.parametrize("verb", VERBS)
def test_pod_ip_students_have_no_service_verbs(verb: str) -> None:
    roles, bindings = _authz(_cfg("pod_ip"))
    assert not rbac.allowed(roles, bindings, "ood:alice", "ood-alice", verb, "", "services")
    assert rbac.allowed(roles, bindings, "ood:alice", "ood-alice", "create", "", "pods")  # control: the reader works


def test_nodeport_students_create_and_delete_services_only() -> None:
    roles, bindings = _authz(_cfg("nodeport"))
    may = {v for v in VERBS if rbac.allowed(roles, bindings, "ood:alice", "ood-alice", v, "", "services")}
    assert may == {"get", "list", "create", "delete"}  # never update/patch: an existing Service cannot be turned
    assert not rbac.allowed(roles, bindings, "ood:alice", "ood-bob", "create", "", "services")


def test_students_cannot_write_what_isolates_them() -> None:
    """Quota, limits, network policies, role bindings, the namespace and the guards are the provisioner's."""
    roles, bindings = _authz(_cfg("nodeport"))
    for group, resource in (("", "resourcequotas"), ("", "limitranges"), ("networking.k8s.io", "networkpolicies"),
                            ("rbac.authorization.k8s.io", "rolebindings"), ("", "namespaces"),
                            ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
                            ("scheduling.k8s.io", "priorityclasses"), ("", "pods/ephemeralcontainers"),
                            ("", "serviceaccounts/token")):
        for verb in ("create", "update", "patch", "delete"):
            assert not rbac.allowed(roles, bindings, "ood:alice", "ood-alice", verb, group, resource), (verb, resource)

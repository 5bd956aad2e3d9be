"""The agent's RBAC from 'cluster render', read adversarially: what its identity may do, and nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ood_k8s.cluster import manifests
from ood_k8s.config import Config
from ood_k8s.core import vocab
from tests.conftest import ROOT, replace
from tests.security import vap
from tests.security.rbac import rule_allows

AGENT = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "ood-k8s-agent"}
NS = "ood-k8s-system"


def rendered(**changes: Any) -> list[dict[str, Any]]:
    cfg = replace(Config(), **{"cluster.server": "https://k8s.example", "agent.enabled": True,
                               "agent.subject": "User:ood-k8s-agent", **changes})
    return manifests.objects(cfg)


def bound_roles(objects: list[dict[str, Any]], subject: dict[str, str]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(where the binding applies -- its namespace, None for cluster-wide -- and the role) for each binding
    of ``subject`` among the rendered objects."""
    by_ref = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects
              if o["kind"] in ("Role", "ClusterRole")}
    for b in objects:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding") or subject not in b.get("subjects", []):
            continue
        where = b["metadata"].get("namespace")
        ref = b["roleRef"]
        yield where, by_ref[(ref["kind"], where if ref["kind"] == "Role" else None, ref["name"])]


def may(objects: list[dict[str, Any]], subject: dict[str, str], verb: str, group: str, resource: str,
        namespace: str | None, name: str = "") -> bool:
    """Whether ``subject`` may ``verb`` the resource through any binding rendered (cluster-wide bindings
    everywhere; a RoleBinding in its namespace only)."""
    return any(any(rule_allows(r, verb, group, resource, name) for r in role.get("rules", []))
               for where, role in bound_roles(objects, subject) if where is None or where == namespace)


def grants(objects: list[dict[str, Any]], subject: dict[str, str]) -> set[tuple[str, str, str, str, str]]:
    """Every (scope, group, resource, verb, name) the subject's bindings give."""
    return {(where or "*", g, res, v, n) for where, role in bound_roles(objects, subject) for r in role["rules"]
            for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]
            for n in r.get("resourceNames") or [""]}


def test_the_agent_gets_exactly_what_its_code_asks_for() -> None:
    cluster = {("*", "", "pods", v, "") for v in ("get", "list", "watch", "patch", "delete")} | {
        ("*", "", "secrets", "list", ""), ("*", "", "secrets", "watch", ""), ("*", "", "events", "list", ""),
        ("*", "", "events", "watch", ""), ("*", "", "events", "create", ""), ("*", "events.k8s.io", "events",
                                                                              "create", ""),
        ("*", "", "nodes", "get", "")}
    own = {(NS, "coordination.k8s.io", "leases", "create", ""),
           (NS, "coordination.k8s.io", "leases", "get", vocab.LEASE_NAME),
           (NS, "coordination.k8s.io", "leases", "update", vocab.LEASE_NAME),
           (NS, "", "pods", "create", ""), (NS, "", "pods", "delete", "")} | {
        (NS, "", "configmaps", v, "") for v in ("get", "list", "create", "update", "patch", "delete")}
    assert grants(rendered(), AGENT) == cluster | own


@pytest.mark.parametrize(("verb", "group", "resource", "namespace"), [
    ("create", "", "pods", "ood-alice"),  # no session is ever started by the agent
    ("create", "", "pods", "kube-system"),
    ("create", "", "pods/exec", "ood-alice"), ("get", "", "pods/exec", "ood-alice"),
    ("create", "", "pods/eviction", "ood-alice"), ("update", "", "pods", "ood-alice"),
    ("get", "", "secrets", "kube-system"), ("create", "", "secrets", "ood-alice"),
    ("patch", "", "secrets", "ood-alice"),
    ("delete", "", "secrets", "ood-alice"), ("list", "", "nodes", None), ("patch", "", "nodes", None),
    ("get", "", "nodes/proxy", None), ("create", "", "serviceaccounts/token", "kube-system"),
    ("create", "", "namespaces", None), ("delete", "", "namespaces", None),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", None),
    ("escalate", "rbac.authorization.k8s.io", "roles", NS),
    ("bind", "rbac.authorization.k8s.io", "clusterroles", None),
    ("bind", "rbac.authorization.k8s.io", "roles", NS),
    ("create", "rbac.authorization.k8s.io", "rolebindings", NS),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
    ("impersonate", "", "users", None), ("impersonate", "", "groups", None),
    ("impersonate", "", "serviceaccounts", "kube-system"),
    ("create", "coordination.k8s.io", "leases", "kube-node-lease"),
    ("update", "coordination.k8s.io", "leases", "kube-system"),
    ("get", "", "configmaps", "kube-system"), ("update", "", "configmaps", "ood-alice"),
    ("create", "admissionregistration.k8s.io", "validatingadmissionpolicies", None),
    ("delete", "admissionregistration.k8s.io", "validatingadmissionpolicybindings", None),
])
def test_the_agent_cannot(verb: str, group: str, resource: str, namespace: str | None) -> None:
    assert not may(rendered(), AGENT, verb, group, resource, namespace, "x")


def test_its_lease_is_the_only_one_it_may_take_over() -> None:
    objects = rendered()
    assert may(objects, AGENT, "update", "coordination.k8s.io", "leases", NS, vocab.LEASE_NAME)
    assert not may(objects, AGENT, "update", "coordination.k8s.io", "leases", NS, "another-controller")


def test_what_rbac_cannot_narrow_is_granted_cluster_wide_and_said_so() -> None:
    # Session secrets and pods carry labels RBAC cannot select on: the agent lists every Secret and may
    # patch or delete any pod. The template says so, for whoever guards its identity.
    objects = rendered()
    assert may(objects, AGENT, "list", "", "secrets", "kube-system")
    assert may(objects, AGENT, "delete", "", "pods", "kube-system")
    template = ROOT / "templates" / "cluster" / "agent.yaml.j2"
    assert "RBAC cannot narrow a verb to labelled objects" in template.read_text()


def test_the_namespace_is_rendered_once_and_nothing_without_the_agent() -> None:
    objects = rendered()
    # Not labelled as a user namespace: the pod guard and the users' network policies select those.
    assert [o for o in objects if o["kind"] == "Namespace"] == [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": NS, "labels": {vocab.COMPONENT_LABEL: vocab.AGENT_COMPONENT}}}]
    assert not any("ood-k8s-agent" in o["metadata"]["name"] for o in rendered(**{"agent.enabled": False}))
    profiles = [replace(p, prepull=True) for p in Config().profiles]  # capacity's objects make it too
    with_prepull = rendered(**{"agent.namespace": "agents", "profiles": profiles})
    assert [o["metadata"]["name"] for o in with_prepull if o["kind"] == "Namespace"] == ["agents"]
    for made in (objects, with_prepull):
        [namespace] = [o for o in made if o["kind"] == "Namespace"]
        namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] = namespace["metadata"]["name"]
        assert not vap.pod_guard(Config()).applies(namespace, "pods", "CREATE")


def test_by_default_the_agent_is_the_provisioner_and_a_separate_one_lets_the_provisioner_see_the_leader() -> None:
    provisioner = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "ood-k8s-provisioner"}
    shared = rendered(**{"agent.subject": ""})
    assert may(shared, provisioner, "update", "coordination.k8s.io", "leases", NS, vocab.LEASE_NAME)
    assert not any(o["metadata"]["name"] == "ood-k8s-agent-status" for o in shared)
    separate = rendered()
    assert may(separate, provisioner, "get", "coordination.k8s.io", "leases", NS, vocab.LEASE_NAME)
    assert not may(separate, provisioner, "update", "coordination.k8s.io", "leases", NS, vocab.LEASE_NAME)
    assert not may(separate, provisioner, "patch", "", "pods", "ood-alice")

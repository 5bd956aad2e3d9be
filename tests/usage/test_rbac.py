"""Students cannot write (or read) the usage ledger: read rule by rule from the rendered roles and every
binding a student gets (the hook's RoleBinding) or the cluster manifests make."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.cluster import manifests as cluster
from ood_k8s.render.render import Renderer
from tests.conftest import ALICE
from tests.security import rbac, vap
from tests.usage.conftest import config

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def _authz() -> tuple[Any, dict[str, dict[str, Any]], list[dict[str, Any]]]:
    cfg = config()
    rendered = cluster.objects(cfg, Renderer(None, validate=False))
    roles = {o["metadata"]["name"]: o for o in rendered if o["kind"] in ("ClusterRole", "Role")}
    bindings = [o for o in vap.user_objects(cfg, ALICE) + rendered if o["kind"] == "RoleBinding"]
    return cfg, roles, bindings


@pytest.mark.parametrize("verb", VERBS)
def test_a_student_has_no_access_to_the_ledger(verb: str) -> None:
    cfg, roles, bindings = _authz()
    ns = cfg.agent.namespace
    assert not rbac.allowed(roles, bindings, "ood:alice", ns, verb, "", "configmaps"), verb
    assert not rbac.allowed(roles, bindings, "ood:alice", ns, verb, "", "configmaps", "usage-alice-2027-02"), verb


def test_the_reader_works_and_no_cluster_binding_names_a_student() -> None:
    cfg, roles, bindings = _authz()
    assert rbac.allowed(roles, bindings, "ood:alice", "ood-alice", "create", "", "configmaps")  # control
    rendered = cluster.objects(cfg, Renderer(None, validate=False))
    for b in (o for o in rendered if o["kind"] == "ClusterRoleBinding"):
        for s in b.get("subjects", []):
            assert not s["name"].startswith(cfg.users.rbac_username_prefix), b["metadata"]["name"]
            assert s["kind"] != "Group" or s["name"] not in ("system:authenticated", "system:serviceaccounts")

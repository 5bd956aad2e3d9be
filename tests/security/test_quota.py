"""Denial of service through the API: Secrets, ConfigMaps and Services are counted, load balancers never
allowed, node ports only where sessions use them, node-local scratch bounded -- read from the hook's RENDERED
ResourceQuota and LimitRange.  Control: the objects ood-k8s itself makes for a full quota of sessions fit."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.config import Config
from tests.conftest import ALICE
from tests.security import vap


def _objects(connection: str, pull_secret: str = "") -> tuple[dict[str, Any], dict[str, Any], Config]:
    cfg = Config()
    cfg.cluster.connection = connection
    cfg.users.image_pull_secret.name = pull_secret
    objs = vap.user_objects(cfg, ALICE)
    quota = next(o for o in objs if o["kind"] == "ResourceQuota")["spec"]["hard"]
    limits = next(o for o in objs if o["kind"] == "LimitRange")["spec"]["limits"][0]
    return quota, limits, cfg


@pytest.mark.parametrize("connection", ["pod_ip", "nodeport"])
def test_objects_are_counted(connection: str) -> None:
    quota, _, _ = _objects(connection)
    assert quota["count/secrets"] == quota["count/configmaps"] == "20"
    assert quota["services.loadbalancers"] == "0"
    expected = "0" if connection == "pod_ip" else "2"
    assert quota["services"] == quota["services.nodeports"] == expected


def test_scratch_is_bounded() -> None:
    quota, limits, _ = _objects("pod_ip")
    assert quota["requests.ephemeral-storage"] == quota["limits.ephemeral-storage"] == "80Gi"
    assert limits["default"]["ephemeral-storage"] == "20Gi"
    assert limits["defaultRequest"]["ephemeral-storage"] == "1Gi"
    assert limits["max"]["ephemeral-storage"] == "40Gi"


@pytest.mark.parametrize("connection", ["pod_ip", "nodeport"])
def test_a_full_quota_of_sessions_fits(connection: str) -> None:
    """Every session makes a Secret and a ConfigMap (and a NodePort Service); the namespace holds the
    API server's kube-root-ca.crt ConfigMap and maybe the pull secret."""
    quota, _, cfg = _objects(connection, pull_secret="regcred")
    sessions = int(quota["pods"])
    kinds = [o["kind"] for o in vap.service_objects(cfg, ALICE)]
    assert sessions * kinds.count("Secret") + 1 <= int(quota["count/secrets"])
    assert sessions * kinds.count("ConfigMap") + 1 <= int(quota["count/configmaps"])
    assert kinds.count("Service") * min(sessions, int(cfg.users.quota.node_ports)) <= int(quota["services"])

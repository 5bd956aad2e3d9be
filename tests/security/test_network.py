"""Network attacks from a student's session, through the RENDERED user NetworkPolicies (users.desired, the
hook's own objects) and an evaluator with the standard semantics (netpol.py): NFS and the portmapper
anywhere, the instance metadata service (IPv4 and IPv6), other users' sessions; and the controls: the
portal reaches a session, DNS and the internet answer."""

from __future__ import annotations

import pytest

from ood_k8s.config import Config, parse, to_dict
from ood_k8s.core.errors import ConfigError
from ood_k8s.policy import network
from tests.conftest import ALICE, BOB
from tests.security import netpol, vap
from tests.security.netpol import Endpoint

PORTAL = Endpoint("10.0.0.10")  # the default portal_cidrs: the portal's own /32
ALICE_POD = Endpoint("10.0.64.20", "ood-alice", {"ood-k8s.io/job": "jupyter-1"})
ALICE_OTHER = Endpoint("10.0.64.21", "ood-alice", {"ood-k8s.io/job": "jupyter-2"})
BOB_POD = Endpoint("10.0.70.30", "ood-bob", {"ood-k8s.io/job": "jupyter-3"})
SYSTEM_POD = Endpoint("10.0.90.9", "monitoring", {"app": "agent"})
DNS = Endpoint("10.0.100.2", "kube-system", {"k8s-app": "kube-dns"})
EFS_MOUNT_TARGET = Endpoint("10.0.1.50")
SITE_NFS = Endpoint("192.0.2.10")
METADATA_V4, METADATA_V6 = Endpoint("169.254.169.254"), Endpoint("fd00:ec2::254")
INTERNET = Endpoint("151.101.0.223")


@pytest.fixture(scope="module")
def cluster() -> netpol.Cluster:
    cfg = Config()
    policies, namespaces = [], {"kube-system": {"kubernetes.io/metadata.name": "kube-system"},
                                "monitoring": {"kubernetes.io/metadata.name": "monitoring"}}
    for ident in (ALICE, BOB):
        objs = vap.user_objects(cfg, ident)
        policies += [o for o in objs if o["kind"] == "NetworkPolicy"]
        ns = vap.hook_namespace(cfg, ident)
        namespaces[ns["metadata"]["name"]] = ns["metadata"]["labels"]
    return netpol.Cluster(policies, namespaces)


ATTACKS = [
    ("mount EFS itself", ALICE_POD, EFS_MOUNT_TARGET, 2049, "TCP"),
    ("NFS over UDP", ALICE_POD, EFS_MOUNT_TARGET, 2049, "UDP"),
    ("the portmapper", ALICE_POD, SITE_NFS, 111, "TCP"),
    ("the portmapper over UDP", ALICE_POD, SITE_NFS, 111, "UDP"),
    ("the site's NFS server", ALICE_POD, SITE_NFS, 2049, "TCP"),
    ("the node's IAM role (IPv4)", ALICE_POD, METADATA_V4, 80, "TCP"),
    ("the node's IAM role (IPv6)", ALICE_POD, METADATA_V6, 80, "TCP"),
    ("another student's session", ALICE_POD, BOB_POD, 8888, "TCP"),
    ("another student's session over UDP", ALICE_POD, BOB_POD, 60001, "UDP"),
    ("a pod elsewhere into a session", SYSTEM_POD, ALICE_POD, 8888, "TCP"),
    ("another student's pod into a session", BOB_POD, ALICE_POD, 8888, "TCP"),
    ("another namespace's pods", ALICE_POD, SYSTEM_POD, 9100, "TCP"),
    ("DNS's other ports", ALICE_POD, DNS, 9153, "TCP"),
]

CONTROLS = [
    ("the portal into a session", PORTAL, ALICE_POD, 8888, "TCP"),
    ("the user's own sessions", ALICE_POD, ALICE_OTHER, 8888, "TCP"),
    ("DNS", ALICE_POD, DNS, 53, "UDP"),
    ("DNS over TCP", ALICE_POD, DNS, 53, "TCP"),
    ("the internet (pip, git)", ALICE_POD, INTERNET, 443, "TCP"),
    ("ssh to a site host", ALICE_POD, Endpoint("10.0.1.60"), 22, "TCP"),
]


@pytest.mark.parametrize(("src", "dst", "port", "proto"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_blocked(cluster: netpol.Cluster, src: Endpoint, dst: Endpoint, port: int, proto: str) -> None:
    assert not cluster.allows(src, dst, port, proto)


@pytest.mark.parametrize(("src", "dst", "port", "proto"), [c[1:] for c in CONTROLS], ids=[c[0] for c in CONTROLS])
def test_control_is_allowed(cluster: netpol.Cluster, src: Endpoint, dst: Endpoint, port: int, proto: str) -> None:
    assert cluster.allows(src, dst, port, proto)


def test_every_port_but_nfs_is_open_outside() -> None:
    ranges = network.allowed_port_ranges()
    assert ranges == [(1, 110), (112, 2048), (2050, 65535)]


def test_the_old_portal_cidr_admitted_every_pod() -> None:
    """Regression: the shipped 10.0.0.0/16 covered the pod network, so every pod was 'the portal'."""
    cfg = Config()
    cfg.cluster.portal_cidrs = ["10.0.0.0/16"]
    objs = vap.user_objects(cfg, ALICE)
    ns = {"kubernetes.io/metadata.name": "ood-alice"}
    open_cluster = netpol.Cluster([o for o in objs if o["kind"] == "NetworkPolicy"], {"ood-alice": ns})
    assert open_cluster.allows(BOB_POD._replace(namespace="ood-bob"), ALICE_POD, 8888)
    assert network.config_problems(cfg)  # ... which config check now refuses


def test_config_check_refuses_a_portal_cidr_in_the_pod_network() -> None:
    data = to_dict(Config(), redact=False)
    data["cluster"]["portal_cidrs"] = ["10.0.0.0/16"]
    with pytest.raises(ConfigError, match=r"overlaps the pod network 10\.0\.64\.0/18"):
        parse(data)
    data["cluster"]["portal_cidrs"] = ["10.0.0.10/32", "2001:db8::5/128"]
    assert parse(data).cluster.portal_cidrs == ["10.0.0.10/32", "2001:db8::5/128"]


def test_the_default_portal_is_one_address() -> None:
    assert Config().cluster.portal_cidrs == ["10.0.0.10/32"]
    assert not network.config_problems(Config())

"""What a user should have (ood_k8s.users.desired): the objects and their hash, pinned by whole values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ood_k8s.config import GpuConfig, Profile
from ood_k8s.core.errors import RenderError
from ood_k8s.core.identity import Identity
from ood_k8s.render.schema import supported_versions
from ood_k8s.users import desired, provision
from tests.conftest import ALICE, BOB, replace
from tests.hostile import assert_injection_proof
from tests.users.test_provision import LABELS, NOW

# --- desired objects: whole-dict pins -------------------------------------------------------------


def test_desired_objects_for_alice_with_the_default_config(cfg: Any) -> None:
    objects = desired.desired_objects(cfg, ALICE, now=NOW)
    meta = {"namespace": "ood-alice", "labels": LABELS}
    assert objects == [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "ood-alice",
                      "labels": {**LABELS, "pod-security.kubernetes.io/enforce": "restricted",
                                 "pod-security.kubernetes.io/warn": "restricted",
                                 "pod-security.kubernetes.io/audit": "restricted"},
                      "annotations": {"ood-k8s.io/username": "alice", "ood-k8s.io/uid": "20001",
                                      "ood-k8s.io/gid": "20001", "ood-k8s.io/supplemental-gids": "30001,30002",
                                      "ood-k8s.io/home": "/home/alice", "ood-k8s.io/last-hook-run": NOW,
                                      "ood-k8s.io/profiles": "cpu,gpu-t4,gpu-a10g"}}},  # issue 11: entitlements
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "ood-k8s-limits", **meta},
         "spec": {"limits": [{"type": "Container",
                              "default": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "20Gi"},
                              "defaultRequest": {"cpu": "250m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
                              "max": {"cpu": "96", "memory": "768Gi", "ephemeral-storage": "40Gi"}}]}},
        # issue 11: the portal's own address only; egress to DNS, own pods and outside the pod network, never NFS
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "ood-k8s-ingress", **meta},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.10/32"}}]}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "ood-k8s-egress", **meta},
         "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                  "egress": [{"to": [{"namespaceSelector": {"matchLabels": {
                                          "kubernetes.io/metadata.name": "kube-system"}},
                                      "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                              "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                             {"to": [{"podSelector": {}},
                                     {"ipBlock": {"cidr": "0.0.0.0/0",
                                                  "except": ["169.254.169.254/32", "10.0.64.0/18"]}},
                                     {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128"]}}],
                              "ports": [{"protocol": proto, "port": first, "endPort": last}
                                        for proto in ("TCP", "UDP")
                                        for first, last in ((1, 110), (112, 2048), (2050, 65535))]}]}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "ood-k8s-quota", **meta},
         "spec": {"hard": {"pods": "4", "requests.cpu": "16", "limits.cpu": "16", "requests.memory": "64Gi",
                           "limits.memory": "64Gi", "requests.ephemeral-storage": "80Gi",
                           "limits.ephemeral-storage": "80Gi", "requests.nvidia.com/gpu": "2", "services": "0",
                           "services.nodeports": "0", "services.loadbalancers": "0", "count/secrets": "20",
                           "count/configmaps": "20", "persistentvolumeclaims": "4"}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "ood-k8s-user", **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ood-user"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ood:alice"}]},
    ]


def test_optional_pull_secret_and_site_settings(make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(**{"templates.site_dir": str(tmp_path), "users.image_pull_secret.name": "regcred",
                         "users.image_pull_secret.dockerconfigjson": '{"auths": {}}',
                         "users.pod_security": "baseline", "users.cluster_role": "students",
                         "users.rbac_username_prefix": "oidc:", "users.namespace_prefix": "jh-",
                         "cluster.portal_cidrs": ["10.1.0.0/24", "2001:db8::/64"]})
    objects = {(o["kind"], o["metadata"]["name"]): o for o in desired.desired_objects(cfg, BOB, now=NOW)}
    labels = {**LABELS, "ood-k8s.io/user": "bob"}
    assert objects[("Secret", "regcred")] == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred", "namespace": "jh-bob", "labels": labels},
        "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "eyJhdXRocyI6IHt9fQ=="}}
    assert objects[("Namespace", "jh-bob")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    rb = objects[("RoleBinding", "ood-k8s-user")]
    assert rb["roleRef"]["name"] == "students"
    assert rb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "oidc:bob"}]
    assert objects[("NetworkPolicy", "ood-k8s-ingress")]["spec"]["ingress"] == [{"from": [
        {"podSelector": {}}, {"ipBlock": {"cidr": "10.1.0.0/24"}}, {"ipBlock": {"cidr": "2001:db8::/64"}}]}]


def test_order_namespace_first_and_access_granted_last(cfg: Any) -> None:
    kinds = [o["kind"] for o in desired.desired_objects(cfg, ALICE, now=NOW)]
    assert kinds[0] == "Namespace" and kinds[-1] == "RoleBinding"


def test_hashed_namespace_for_an_email_style_username(cfg: Any) -> None:
    ident = Identity("Jane.Doe@example.edu", 20010, 20010, "/home/jane")
    ns = desired.desired_objects(cfg, ident, now=NOW)[0]
    assert ns["metadata"]["name"].startswith("ood-jane-doe-example-edu--")
    assert ns["metadata"]["annotations"]["ood-k8s.io/username"] == "Jane.Doe@example.edu"


def test_gpu_quota_covers_every_offered_resource_and_zeroes_the_default(make_config: Any) -> None:
    amd = Profile(name="amd", image="img", gpu=GpuConfig("amd.com/gpu", 1, 2))
    assert desired.gpu_quota(make_config(profiles=[amd])) == {"amd.com/gpu": "2", "nvidia.com/gpu": "0"}
    cpu = Profile(name="cpu", image="img")
    assert desired.gpu_quota(make_config(profiles=[cpu], **{"jobs.default_profile": "cpu"})) == \
        {"nvidia.com/gpu": "0"}
    assert desired.gpu_quota(make_config(**{"users.quota.gpus": 3})) == {"nvidia.com/gpu": "3"}


@pytest.mark.parametrize("version", sorted({supported_versions()[0], "1.33", supported_versions()[-1]}))
def test_objects_are_valid_for_each_schema_version(make_config: Any, version: str) -> None:
    cfg = make_config(**{"cluster.kubernetes_version": version, "users.image_pull_secret.name": "regcred",
                         "users.image_pull_secret.dockerconfigjson": "{}"})
    objects = desired.desired_objects(cfg, ALICE, now=NOW)  # validates strictly, raising on any problem
    assert len(objects) == 7


USER_TEMPLATES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "templates/user").glob("*.j2"))


@pytest.mark.parametrize("template", USER_TEMPLATES)
def test_templates_are_injection_proof(make_config: Any, template: str) -> None:
    cfg = make_config(**{"users.image_pull_secret.name": "x", "users.image_pull_secret.dockerconfigjson": "{}"})
    context = desired.template_context(cfg, ALICE, NOW)
    assert_injection_proof(f"user/{template}", context)


def test_a_site_template_replaces_and_adds(cfg: Any, tmp_path: Path) -> None:
    site = Path(cfg.templates.site_dir, "user")
    site.mkdir(parents=True)
    (site / "zz-configmap.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site-motd\n  namespace: {{ user.namespace }}\n"
        "data:\n  motd: {{ 'hello ' ~ user.username }}\n")
    (site / "limitrange.yaml.j2").write_text("")  # a site may drop a built-in object
    objects = desired.desired_objects(cfg, ALICE, now=NOW)
    refs = [provision._ref(o) for o in objects]
    assert "LimitRange/ood-k8s-limits" not in refs
    assert objects[-2] == {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "site-motd", "namespace": "ood-alice"}, "data": {"motd": "hello alice"}}


@pytest.mark.parametrize("doc, needle", [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: kube-system\n", "outside namespace"),
    ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: x\n"
     "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n", "outside namespace"),
    ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n", "outside namespace"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: ood-alice\n  bogus: 1\n", "bogus"),
])
def test_a_site_template_cannot_reach_outside_the_namespace(cfg: Any, doc: str, needle: str) -> None:
    site = Path(cfg.templates.site_dir, "user")
    site.mkdir(parents=True)
    (site / "evil.yaml.j2").write_text(doc)
    with pytest.raises(RenderError, match=needle):
        desired.desired_objects(cfg, ALICE, now=NOW)


# --- the hash ------------------------------------------------------------------------------------


def test_hash_is_stable_and_covers_every_input(cfg: Any, make_config: Any) -> None:
    fp = {"mode": "efs"}
    base = desired.desired_hash(cfg, ALICE, fp)
    assert base == desired.desired_hash(cfg, ALICE, dict(fp)) and base.startswith("sha256:")
    site = cfg.templates.site_dir
    variants = [
        desired.desired_hash(cfg, replace(ALICE, uid=20005), fp),
        desired.desired_hash(cfg, replace(ALICE, gid=1), fp),
        desired.desired_hash(cfg, replace(ALICE, groups=("alice",)), fp),
        # what the namespace records for the admission guard
        desired.desired_hash(cfg, replace(ALICE, gids=(30001,)), fp),
        desired.desired_hash(cfg, replace(ALICE, home="/home2/alice"), fp),
        desired.desired_hash(cfg, ALICE, {"mode": "efs", "access_point_key": "x"}),
        desired.desired_hash(make_config(**{"templates.site_dir": site, "users.quota.pods": 5}), ALICE, fp),
        desired.desired_hash(make_config(**{"templates.site_dir": site, "users.pod_security": "baseline"}),
                               ALICE, fp),
        desired.desired_hash(make_config(**{"templates.site_dir": site, "cluster.portal_cidrs": ["10.9.0.0/16"]}),
                               ALICE, fp),
        desired.desired_hash(make_config(**{"templates.site_dir": site, "auth.cognito.group_map": {"a": "b"}}),
                               ALICE, fp),
        desired.desired_hash(make_config(**{"templates.site_dir": site,
                                              "users.image_pull_secret.dockerconfigjson": "new"}), ALICE, fp),
    ]
    assert len({base, *variants}) == len(variants) + 1
    # a site template edit is a change too
    Path(site, "user").mkdir(parents=True)
    Path(site, "user", "rolebinding.yaml.j2").write_text(
        (Path(__file__).resolve().parents[2] / "templates/user/rolebinding.yaml.j2").read_text() + "\n# edited\n")
    assert desired.desired_hash(cfg, ALICE, fp) != base
    # what does not shape a user's objects does not force a re-provisioning
    assert desired.desired_hash(replace(cfg, jobs=replace(cfg.jobs, default_walltime=60)),
                                  ALICE, fp) == desired.desired_hash(cfg, ALICE, fp)


def test_template_context_is_what_site_templates_may_use(cfg: Any) -> None:
    # Site overrides name these variables: a rename or a dropped key breaks them, so the whole value is pinned.
    assert desired.template_context(cfg, ALICE, NOW) == {
        "user": {"username": "alice", "slug": "alice", "namespace": "ood-alice", "rbac_user": "ood:alice",
                 "uid": 20001, "gid": 20001, "home": "/home/alice"},
        "labels": LABELS,
        "namespace_annotations": {"ood-k8s.io/username": "alice", "ood-k8s.io/uid": "20001",
                                  "ood-k8s.io/gid": "20001", "ood-k8s.io/supplemental-gids": "30001,30002",
                                  "ood-k8s.io/home": "/home/alice", "ood-k8s.io/last-hook-run": NOW,
                                  "ood-k8s.io/profiles": "cpu,gpu-t4,gpu-a10g"},  # issue 11: entitlements
        "pod_security": "restricted",
        "cluster_role": "ood-user",
        "quota": {"pods": "4", "cpu": "16", "memory": "64Gi", "gpus": {"nvidia.com/gpu": "2"}, "node_ports": "2",
                  "persistent_volume_claims": "4"},
        "limits": {"default_cpu": "1", "default_memory": "2Gi", "default_request_cpu": "250m",
                   "default_request_memory": "1Gi", "max_cpu": "96", "max_memory": "768Gi"},
        "portal_cidrs": ["10.0.0.10/32"],
        "blocked_egress_v4": ["169.254.169.254/32"],
        "blocked_egress_v6": ["fd00:ec2::254/128"],
        # issue 11: what policy/network.py and policy/quota.py add, and the recorded entitlements
        "egress_except_v4": ["169.254.169.254/32", "10.0.64.0/18"], "egress_except_v6": ["fd00:ec2::254/128"],
        "egress_ports": [{"protocol": proto, "port": first, "endPort": last} for proto in ("TCP", "UDP")
                         for first, last in ((1, 110), (112, 2048), (2050, 65535))],
        "dns": {"namespace": "kube-system", "pod_labels": {"k8s-app": "kube-dns"}},
        "object_quota": {"secrets": "20", "configmaps": "20", "services": "0", "node_ports": "0",
                         "load_balancers": "0", "ephemeral_storage": "80Gi"},
        "ephemeral_limits": {"default": "20Gi", "default_request": "1Gi", "max": "40Gi"},
        "pull_secret": {"name": "", "data": ""},
    }


def test_hash_inputs_whole_and_the_digest_encoding(cfg: Any) -> None:
    import hashlib
    import json

    from ood_k8s import __version__
    from ood_k8s.config import to_dict

    fp = {"mode": "efs", "access_point_key": "k"}
    builtin = Path(__file__).resolve().parents[2] / "templates" / "user"
    inputs = desired.hash_inputs(cfg, ALICE, fp)
    assert inputs == {
        "format": 2,
        "version": __version__,
        "user": ["alice", 20001, 20001, ["alice", "students", "gpu-users"], [30001, 30002], "/home/alice",
                 "ood-alice", "ood:alice"],
        "users": to_dict(cfg.users, redact=False),
        "cluster": [["10.0.0.10/32"], cfg.cluster.kubernetes_version],
        "isolation": [["10.0.64.0/18"], [["cpu", []], ["gpu-t4", []], ["gpu-a10g", ["gpu-users"]]], "pod_ip"],
        "gpus": {"nvidia.com/gpu": "2"},
        "auth": to_dict(cfg.auth.cognito, redact=False),
        "storage": fp,
        "templates": {f"user/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in builtin.glob("*.yaml.j2")},
    }
    # The encoding is a contract too: every namespace stores a digest of it, and a change re-provisions all.
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str).encode()
    assert desired.desired_hash(cfg, ALICE, fp) == "sha256:" + hashlib.sha256(blob).hexdigest()

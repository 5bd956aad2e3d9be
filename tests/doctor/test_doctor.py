"""``ood-k8s doctor`` against a healthy site -- made by the real hook code, the fake API and moto -- and
against the ways a site breaks.  Every check's verdict and fix are pinned."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from ood_k8s import cli, config
from ood_k8s.auth.tokencache import TokenCache, Tokens
from ood_k8s.cloud.aws import cognito_admin as cognito_checks
from ood_k8s.cloud.aws import eks as eks_checks
from ood_k8s.cluster import checks as cluster_checks
from ood_k8s.cluster import manifests as cluster
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor import runner as doctor
from ood_k8s.doctor.runner import Check
from ood_k8s.kubeconfig import user as userkubeconfig
from ood_k8s.storage import checks as storage_checks
from ood_k8s.users import provision
from tests.conftest import ALICE, ROOT, replace

NOW = 1_800_000_000.0


def _node(name: str, labels: dict[str, str], gpus: int | None) -> dict[str, Any]:
    allocatable = {"cpu": "4", "memory": "16Gi"}
    if gpus is not None:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"allocatable": allocatable, "capacity": allocatable}}


@dataclasses.dataclass
class Site:
    cfg: config.Config
    fk: Any
    kube: KubeClient
    cognito: Any
    efs: Any
    ident: Identity

    def run(self, user: str | None = "alice", **kw: Any) -> list[Check]:
        kw.setdefault("kube", self.kube)
        kw.setdefault("cognito", self.cognito)
        return doctor.run(self.cfg, user, lookup=lambda u: self._lookup(u), clock=lambda: NOW, **kw)

    def _lookup(self, username: str) -> Identity:
        from ood_k8s.core.errors import UsageError

        if username != self.ident.username:
            raise UsageError(f"user '{username}' is not known to this host (NSS)", "check the username")
        return self.ident

    def verdicts(self, **kw: Any) -> dict[str, bool | None]:
        return {c.name: c.ok for c in self.run(**kw)}

    def check(self, name: str, **kw: Any) -> Check:
        return next(c for c in self.run(**kw) if c.name == name)


@pytest.fixture
def runnable_plugin() -> Iterator[str]:
    """The credential command, where every user can run it (issue 13: doctor checks that): pytest's
    own temporary directories are 0700, and so may be the checkout's parent (a CI clone in mktemp -d)."""
    where = Path(tempfile.mkdtemp(prefix="ood-k8s-bin-"))
    where.chmod(0o755)
    plugin = where / "ood-k8s"
    plugin.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m ood_k8s "$@"\n')
    plugin.chmod(0o755)
    yield str(plugin)
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def site(fake_kube: Any, aws: str, make_config: Callable[..., config.Config], tmp_path: Path,
         runnable_plugin: str) -> Site:
    """A healthy site: cluster objects applied, GPU nodes, EFS and its driver, Cognito."""
    cognito = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=aws)
    pool = cognito.create_user_pool(  # issue 11: admin-created users only, with ood-k8s's mark defined
        PoolName="ood", AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        Schema=[{"Name": "ood_k8s", "AttributeDataType": "String", "Mutable": True}])["UserPool"]["Id"]
    app = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="ood-k8s", GenerateSecret=False, RefreshTokenValidity=30, IdTokenValidity=1,
        TokenValidityUnits={"IdToken": "hours", "RefreshToken": "days"},
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]
    efs = boto3.client("efs", region_name="us-east-1", endpoint_url=aws)
    fs_id = efs.create_file_system(CreationToken="homes")["FileSystemId"]
    home_root = tmp_path / "home"
    home_root.mkdir()
    cfg = make_config(**{
        "auth.credential_command": runnable_plugin,
        "cluster.provisioner_kubeconfig": fake_kube.write_kubeconfig(str(tmp_path / "provisioner.kubeconfig")),
        "cluster.server": fake_kube.url, "cluster.certificate_authority": fake_kube.ca_file,
        "auth.cognito.endpoint_url": aws, "auth.cognito.user_pool_id": pool,
        "auth.cognito.client_id": app["ClientId"],
        "storage.efs.endpoint_url": aws, "storage.efs.file_system_id": fs_id,
        "storage.efs.client_role_arns": ["arn:aws:iam::123456789012:role/efs-csi"],
        "storage.home_root": str(home_root), "storage.skeleton_dir": str(tmp_path / "no-skel"),
        "users.token_cache_dir": str(tmp_path / "tokens"), "hook.lock_dir": str(tmp_path / "locks"),
        "templates.site_dir": str(tmp_path / "site")})
    from ood_k8s.cloud.aws import efs_policy  # issue 11: the file-system policy cluster render prints, applied

    efs.put_file_system_policy(FileSystemId=fs_id, Policy=json.dumps(efs_policy.file_system_policy(cfg)))
    kube = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    for obj in cluster.objects(cfg):
        kube.apply(obj)
    fake_kube.seed({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",  # what the EFS CSI driver installs
                    "metadata": {"name": "efs.csi.aws.com"}, "spec": {"attachRequired": False}})
    fake_kube.seed(_node("ip-10-0-1-1", {"karpenter.sh/nodepool": "gpu-t4"}, 1))
    fake_kube.seed(AWS_NODE)  # issue 11: the VPC CNI enforcing NetworkPolicy, strictly
    fake_kube.seed(_node("ip-10-0-1-2", {"kubernetes.io/os": "linux"}, None))
    return Site(cfg, fake_kube, kube, cognito, efs, replace(ALICE, home=str(home_root / "alice")))


@pytest.fixture
def user_site(site: Site) -> Site:
    """The healthy site with Alice provisioned (her home belongs to her: needs root)."""
    if os.geteuid() != 0:
        pytest.skip("homes owned by a test user need root")
    _provision(site.cfg, site.ident, site.kube, site.fk)
    return site


def _provision(cfg: config.Config, ident: Identity, kube: KubeClient, fk: Any) -> None:
    """Alice as the hook's own code provisions her, with her kubeconfig and tokens as the hook writes them."""
    provision.ensure(cfg, ident, kube, now="2027-01-15T08:00:00Z")
    names = provision.user_names(cfg, ident.username)
    for plural, ns, name in (("persistentvolumes", None, f"{names.namespace}-home"),
                             ("persistentvolumeclaims", names.namespace, "home")):
        obj = fk.get(plural, name, ns)  # play the PV controller
        obj["status"] = {"phase": "Bound"}
        fk.seed(obj)
    kc = userkubeconfig.desired(None, cfg, ident.username, names.namespace,
                                userkubeconfig.cluster_entry(cfg.cluster.server), "/usr/local/bin/ood-k8s")
    kube_dir = Path(ident.home, ".kube")
    kube_dir.mkdir(mode=0o700)
    (kube_dir / "config").write_text(yaml.safe_dump(kc))
    for p in (kube_dir, kube_dir / "config"):
        os.chown(p, ident.uid, ident.gid)
    os.chmod(kube_dir / "config", 0o600)
    TokenCache(cfg.users.token_cache_dir, ident.username, owner=(ident.uid, ident.gid)).write(Tokens(
        id_token="h.p.s", id_expires_at=NOW + 3000, refresh_token="r", refresh_expires_at=NOW + 20 * 86400,
        mode="cognito", issuer="https://cognito-idp.us-east-1.amazonaws.com/x", client_id="c", token_endpoint=""))


AWS_NODE = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "aws-node", "namespace": "kube-system"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "aws-node", "image": "vpc-cni", "env": [{"name": "NETWORK_POLICY_ENFORCING_MODE",
                                                                  "value": "strict"}]},
                {"name": "aws-network-policy-agent", "image": "agent", "args": ["--enable-network-policy=true"]}]}}}}

HEALTHY = {
    "configuration": True,
    "Kubernetes API": True,
    "provisioner permissions": True,
    "ClusterRole ood-user": True,
    "ValidatingAdmissionPolicy ood-k8s-pod-guard": True,
    "ValidatingAdmissionPolicyBinding ood-k8s-pod-guard": True,
    "ValidatingAdmissionPolicy ood-k8s-service-guard": True,
    "ValidatingAdmissionPolicyBinding ood-k8s-service-guard": True,
    "NetworkPolicy enforcement": True,
    "NetworkPolicy strict mode": True,
    "node metadata options": True,
    "Cognito user pool": True,
    "Cognito app client": True,
    "GPU capacity for gpu-t4": True,
    "GPU capacity for gpu-a10g": True,
    "EFS file system": True,
    "EFS file-system policy": True,
    "EFS CSI driver": True,
    "portal home root": True,
}
HEALTHY_USER = {
    "user alice": True,
    "namespace ood-alice": True,
    "user role binding": True,
    "user quota": True,
    "home claim": True,
    "user kubeconfig": True,
    "credential command": True,  # issue 13: the user can run what the kubeconfig names
    "user tokens": True,
    "home: home directory": True,
    "home: session identity": True,
    "home: EFS access point": True,
    "home: PersistentVolume": True,
    "home: PersistentVolumeClaim": True,
}


def test_a_healthy_site_without_a_user(site: Site) -> None:
    checks = site.run(user=None)
    assert {c.name: c.ok for c in checks} == HEALTHY
    text, code = doctor.report(checks)
    assert code == 0 and text.endswith("no problems found\n")
    assert text.splitlines()[:3] == [
        f"✔ configuration: {site.cfg.source}: 13 cluster objects valid for Kubernetes 1.33",  # + the Service guard
        f"✔ Kubernetes API: {site.fk.url} answers, version v1.33.0",
        "✔ provisioner permissions: all 51 permissions the hook and admin commands use",  # issue 11: +5
    ]


def test_a_healthy_site_and_user(user_site: Site) -> None:
    checks = user_site.run()
    assert {c.name: c.ok for c in checks} == {**HEALTHY, **HEALTHY_USER}
    assert [c.name for c in checks] == [*HEALTHY, *HEALTHY_USER]  # the order they always printed in
    shown = {c.name: c.detail for c in checks}
    assert shown["GPU capacity for gpu-t4"] == "NodePool gpu-t4; 1 node with nvidia.com/gpu"
    assert shown["GPU capacity for gpu-a10g"] == ("NodePool gpu-a10g; 0 nodes with nvidia.com/gpu now "
                                                  "(launched on demand)")
    assert shown["user role binding"] == "ood-user bound to User ood:alice only"
    assert shown["user tokens"] == "ID token valid for 50 more min; refresh token until 2027-02-04 08:00 UTC"
    assert shown["namespace ood-alice"] == "uid 20001, gid 20001 recorded"
    assert doctor.report(checks)[1] == 0


# --- the cluster side, broken ---------------------------------------------------------------------------


def test_unreachable_api_skips_the_cluster_checks(site: Site, tmp_path: Path) -> None:
    dead = KubeClient("https://127.0.0.1:9", token="t", timeout=1, retries=0, sleep=lambda s: None)
    checks = site.run(user=None, kube=dead)
    assert {c.name: c.ok for c in checks} == {
        "configuration": True, "Kubernetes API": False, "cluster checks": None,
        "Cognito user pool": True, "Cognito app client": True}
    api = checks[1]
    assert api.detail == "cannot reach the Kubernetes API at https://127.0.0.1:9: connection refused"
    assert api.fix == ("check cluster.provisioner_kubeconfig, the network path to the API server and its CA")
    assert doctor.report(checks)[1] == 1


def test_missing_provisioner_kubeconfig(site: Site, tmp_path: Path) -> None:
    site.cfg.cluster.provisioner_kubeconfig = str(tmp_path / "nope.kubeconfig")
    check = site.check("Kubernetes API", user=None, kube=None)
    assert not check.ok and check.detail.startswith(f"cannot read kubeconfig {tmp_path}/nope.kubeconfig")


def test_doctor_uses_the_provisioner_kubeconfig(site: Site) -> None:
    site.fk.reset_requests()
    assert site.check("Kubernetes API", user=None, kube=None).ok
    assert {r.user for r in site.fk.requests} == {"admin"}


def test_kubernetes_version_mismatch(site: Site) -> None:
    site.cfg.cluster.kubernetes_version = "1.31"
    check = site.check("Kubernetes API", user=None)
    assert (check.ok, check.detail, check.fix) == (
        False, f"{site.fk.url} answers, version v1.33.0, but cluster.kubernetes_version is 1.31",
        'set cluster.kubernetes_version: "1.33" so objects are checked against this cluster\'s schema')


def test_missing_permissions_are_named(site: Site) -> None:
    site.fk.authorize = lambda user, verb, resource, ns: not (verb == "bind" or resource == "persistentvolumes")
    check = site.check("provisioner permissions", user=None)
    assert check.ok is False
    assert check.detail == ("missing bind clusterroles/ood-user, get persistentvolumes, list persistentvolumes, "
                            "create persistentvolumes, patch persistentvolumes, delete persistentvolumes")
    assert check.fix.startswith("apply ClusterRole/ClusterRoleBinding ood-k8s-provisioner (ood-k8s cluster render |")


def test_missing_and_stale_cluster_objects(site: Site) -> None:
    site.kube.delete("ValidatingAdmissionPolicyBinding", cluster.POLICY_NAME)
    site.kube.patch("ClusterRole", "ood-user", {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    checks = {c.name: c for c in site.run(user=None)}
    assert (checks["ClusterRole ood-user"].ok, checks["ClusterRole ood-user"].detail) == (
        False, "differs from what 'ood-k8s cluster render' gives")
    binding = checks["ValidatingAdmissionPolicyBinding ood-k8s-pod-guard"]
    assert (binding.ok, binding.detail, binding.fix) == (
        False, "missing (the admission guard's binding)",
        "apply it: ood-k8s cluster render | kubectl apply --server-side -f -")
    assert checks["ValidatingAdmissionPolicy ood-k8s-pod-guard"].ok


def test_server_defaults_are_not_differences() -> None:
    want = {"spec": {"failurePolicy": "Fail", "validations": [{"expression": "true"}]}}
    live = {"spec": {"failurePolicy": "Fail", "matchConstraints": {"matchPolicy": "Equivalent"},
                     "validations": [{"expression": "true", "reason": "Invalid"}]}}
    assert cluster_checks.contains(live, want)
    assert not cluster_checks.contains(live, {"spec": {"validations": [{"expression": "true"}, {"expression": "x"}]}})
    assert not cluster_checks.contains({"spec": {}}, want)


def test_karpenter_missing(site: Site) -> None:
    site.fk.uninstall("nodepools", "ec2nodeclasses")
    checks = [c for c in site.run(user=None) if c.name.startswith("GPU")]
    assert [(c.name, c.ok, c.detail, c.fix) for c in checks] == [
        (f"GPU capacity for {p}", False, "Karpenter is not installed (no NodePool API)",
         "install Karpenter v1, or set cluster.autoscaler") for p in ("gpu-t4", "gpu-a10g")]


def test_node_pool_missing_and_node_without_device_plugin(site: Site) -> None:
    site.kube.delete("NodePool", "gpu-a10g")
    site.fk.seed(_node("ip-10-0-1-3", {"karpenter.sh/nodepool": "gpu-t4"}, None))
    checks = {c.name: c for c in site.run(user=None)}
    t4, a10g = checks["GPU capacity for gpu-t4"], checks["GPU capacity for gpu-a10g"]
    assert (t4.ok, t4.detail) == (False, "node ip-10-0-1-3 has no allocatable nvidia.com/gpu")
    assert t4.fix.startswith("the GPU device plugin is not running there")
    assert (a10g.ok, a10g.detail) == (False, "no NodePool gpu-a10g")


def test_fixed_gpu_nodes_without_autoscaler(site: Site) -> None:
    site.cfg.cluster.autoscaler = "none"
    site.cfg.profile("gpu-t4").node_selector = {"node.kubernetes.io/instance-type": "g4dn.xlarge"}
    checks = {c.name: c for c in site.run(user=None)}
    t4, a10g = checks["GPU capacity for gpu-t4"], checks["GPU capacity for gpu-a10g"]
    assert (t4.ok, t4.detail) == (False, "no node advertises nvidia.com/gpu with labels "
                                         "{'node.kubernetes.io/instance-type': 'g4dn.xlarge'}")
    # gpu-a10g selects no labels: any node with GPUs will do, and there is one.
    assert (a10g.ok, a10g.detail) == (True, "1 node with nvidia.com/gpu")
    site.cfg.cluster.autoscaler = "cluster-autoscaler"
    t4 = site.check("GPU capacity for gpu-t4", user=None)
    assert t4.ok is None and t4.detail.startswith("no node now; the autoscaler must be able to add one from zero")


def test_cpu_only_site_has_no_gpu_check(site: Site) -> None:
    site.cfg.profiles = [p for p in site.cfg.profiles if p.gpu.max == 0]
    assert site.check("GPU capacity", user=None).ok is None


def test_storage_backend_missing(site: Site) -> None:
    site.kube.request("DELETE", "/apis/storage.k8s.io/v1/csidrivers/efs.csi.aws.com")
    site.cfg.storage.efs.file_system_id = "fs-0123456789abcdef0"
    checks = {c.name: c for c in site.run(user=None)}
    assert (checks["EFS file system"].ok, checks["EFS file system"].detail) == (
        False, "fs-0123456789abcdef0 in us-east-1: FileSystemNotFound")
    driver = checks["EFS CSI driver"]
    assert (driver.ok, driver.detail, driver.fix) == (
        False, "CSIDriver efs.csi.aws.com not registered", "install the EKS add-on aws-efs-csi-driver")


@pytest.mark.parametrize("mode, expected", [
    ("nfs", ("home storage", True)), ("pvc", ("home storage", True)), ("none", ("home storage", None))])
def test_other_storage_modes(site: Site, mode: str, expected: tuple[str, bool | None]) -> None:
    site.cfg.storage.mode = mode
    ctx = doctor.context(site.cfg, kube=site.kube, efs=site.efs)
    ctx.reachable = True
    checks = storage_checks.site(ctx)
    assert (checks[0].name, checks[0].ok) == expected


# --- Cognito and the cluster's OIDC settings ------------------------------------------------------------


def test_cognito_client_with_a_secret_and_missing_flows(site: Site) -> None:
    c = site.cfg.auth.cognito
    bad = site.cognito.create_user_pool_client(UserPoolId=c.user_pool_id, ClientName="web", GenerateSecret=True,
                                               ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"], RefreshTokenValidity=7)
    c.client_id = bad["UserPoolClient"]["ClientId"]
    check = site.check("Cognito app client", user=None)
    assert check.ok is False
    assert check.detail == (f"{c.client_id}: it has a client secret; auth flows ALLOW_ADMIN_USER_PASSWORD_AUTH, "
                            "ALLOW_REFRESH_TOKEN_AUTH not enabled; it allows user-initiated sign-in "
                            "(ALLOW_USER_SRP_AUTH): with self sign-up a stranger can claim a username; refresh tokens "
                            "last 7 days, the configuration says 30")  # issue 11: user-initiated flows fail
    assert check.fix.startswith("create a public app client (no secret)")
    assert "set auth.cognito.refresh_token_days: 7" in check.fix


def test_cognito_short_id_tokens(site: Site) -> None:
    c = site.cfg.auth.cognito
    short = site.cognito.create_user_pool_client(
        UserPoolId=c.user_pool_id, ClientName="short", IdTokenValidity=5, TokenValidityUnits={"IdToken": "minutes"},
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    c.client_id = short["UserPoolClient"]["ClientId"]
    check = site.check("Cognito app client", user=None)
    assert check.detail.endswith("ID tokens last 300 s, not more than auth.id_token_margin (300 s): every call "
                                 "would refresh")


def test_cognito_pool_and_client_unknown(site: Site) -> None:
    site.cfg.auth.cognito.client_id = "nosuchclient"
    assert [(c.name, c.ok, c.detail) for c in site.run(user=None) if c.name.startswith("Cognito")] == [
        ("Cognito user pool", True, f"{site.cfg.auth.cognito.user_pool_id} in us-east-1"),
        ("Cognito app client", False, "nosuchclient: ResourceNotFoundException")]
    site.cfg.auth.cognito.user_pool_id = "us-east-1_nosuchpool"
    assert [(c.name, c.ok) for c in site.run(user=None) if c.name.startswith("Cognito")] == [
        ("Cognito user pool", False)]


def test_aws_permission_problems_say_so(make_config: Callable[..., config.Config]) -> None:
    cognito = boto3.client("cognito-idp", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cognito)
    stub.add_client_error("describe_user_pool", service_error_code="AccessDeniedException", http_status_code=400)
    stub.activate()
    assert cognito_checks.check_cognito(make_config(), cognito) == [Check(
        "Cognito user pool", False, "us-east-1_EXAMPLE in us-east-1: AccessDeniedException",
        "allow this call in the policy of the portal's AWS role")]


def test_oidc_sites_skip_cognito(make_config: Callable[..., config.Config]) -> None:
    cfg = make_config(**{"auth.mode": "oidc", "auth.oidc.issuer": "https://idp.example.edu",
                         "auth.oidc.client_id": "x"})
    assert cognito_checks.check_cognito(cfg, None) == [Check("Cognito", None, "auth.mode is oidc")]


def _eks_stub(responses: list[tuple[str, dict[str, Any]]]) -> tuple[Any, Stubber]:
    eks = boto3.client("eks", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(eks)
    for method, response in responses:
        stub.add_response(method, response)
    stub.activate()
    return eks, stub


def _provider(cfg: config.Config, **changes: Any) -> dict[str, Any]:
    want = cluster.eksctl_config(cfg)["identityProviders"][0]
    oidc = {k: want[k] for k in ("issuerUrl", "clientId", "usernameClaim", "usernamePrefix", "groupsClaim",
                                 "groupsPrefix")}
    oidc.update({"identityProviderConfigName": "ood-k8s", "clusterName": "prod", "status": "ACTIVE", **changes})
    return {"identityProviderConfig": {"oidc": oidc}}


def test_eks_identity_provider_matches(make_config: Callable[..., config.Config]) -> None:
    # moto has no EKS identity providers: botocore's Stubber answers with the real API's shapes.
    cfg = make_config(**{"cluster.eks_name": "prod"})
    eks, stub = _eks_stub([("list_identity_provider_configs", {"identityProviderConfigs": [
        {"type": "oidc", "name": "ood-k8s"}]}), ("describe_identity_provider_config", _provider(cfg))])
    assert eks_checks.check_identity_provider(cfg, eks) == Check(
        "EKS identity provider", True, "ood-k8s: issuer, client and claims match")
    stub.assert_no_pending_responses()


def test_eks_identity_provider_differs(make_config: Callable[..., config.Config]) -> None:
    cfg = make_config(**{"cluster.eks_name": "prod"})
    eks, _ = _eks_stub([("list_identity_provider_configs", {"identityProviderConfigs": [
        {"type": "oidc", "name": "cognito"}]}), ("describe_identity_provider_config", _provider(
            cfg, usernamePrefix="", groupsClaim="groups", status="CREATING"))])
    check = eks_checks.check_identity_provider(cfg, eks)
    assert check.ok is False
    assert check.detail == ("cognito: usernamePrefix is '', expected 'ood:'; groupsClaim is 'groups', expected "
                            "'cognito:groups'; status is CREATING")
    assert check.fix.startswith("ood-k8s cluster render --only eksctl > idp.yaml; eksctl associate identityprovider")


def test_eks_without_identity_provider_or_cluster(make_config: Callable[..., config.Config]) -> None:
    cfg = make_config(**{"cluster.eks_name": "prod"})
    eks, _ = _eks_stub([("list_identity_provider_configs", {"identityProviderConfigs": []})])
    assert eks_checks.check_identity_provider(cfg, eks).detail == "cluster prod has no OIDC identity provider"
    eks, stub = _eks_stub([])
    stub.add_client_error("list_identity_provider_configs", service_error_code="ResourceNotFoundException")
    assert eks_checks.check_identity_provider(cfg, eks) == Check(
        "EKS identity provider", False, "no EKS cluster prod in us-east-1", "set cluster.eks_name and "
        "cluster.aws_region")


def test_eks_identity_provider_against_moto_is_undecided(make_config: Callable[..., config.Config], aws: str) -> None:
    cfg = make_config(**{"cluster.eks_name": "prod"})
    eks = boto3.client("eks", region_name="us-east-1", endpoint_url=aws)
    eks.create_cluster(name="prod", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={})
    check = eks_checks.check_identity_provider(cfg, eks)
    assert check.ok is None and check.detail.startswith("cannot read it (404)")


def test_eks_check_needs_a_cluster_name(make_config: Callable[..., config.Config]) -> None:
    assert eks_checks.check_identity_provider(make_config(), None).ok is None


# --- one user, broken -------------------------------------------------------------------------------------


def test_unknown_user(user_site: Site) -> None:
    check = user_site.check("user bob", user="bob")
    assert (check.ok, check.detail) == (False, "user 'bob' is not known to this host (NSS)")
    assert check.fix == "check the username"


def test_user_never_provisioned(user_site: Site) -> None:
    user_site.kube.delete("Namespace", "ood-alice")
    user_site.fk.finish_deletion("namespaces", None, "ood-alice")
    checks = {c.name: c for c in user_site.run()}
    ns = checks["namespace ood-alice"]
    assert (ns.ok, ns.detail, ns.fix) == (False, "missing", "ood-k8s user setup alice (or let the user log in to "
                                                            "the portal)")
    assert "user role binding" not in checks


def test_namespace_records_other_ids(user_site: Site) -> None:
    user_site.kube.patch("Namespace", "ood-alice", {"metadata": {"annotations": {cluster.UID_ANNOTATION: "20002",
                                                                            cluster.GIDS_ANNOTATION: None}}})
    check = user_site.check("namespace ood-alice")
    assert check.ok is False
    assert check.detail == ("records ood-k8s.io/uid='20002' (NSS: '20001'); ood-k8s.io/supplemental-gids=None "
                            "(NSS: '30001,30002'): the admission guard will refuse the user's sessions")
    assert check.fix == "ood-k8s user setup alice"


def test_shared_group_binding_and_missing_quota(user_site: Site) -> None:
    user_site.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": "class", "namespace": "ood-alice"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ood-user"},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ood:students"}]})
    for quota in user_site.kube.list("ResourceQuota", "ood-alice"):
        user_site.kube.delete("ResourceQuota", quota["metadata"]["name"], "ood-alice")
    checks = {c.name: c for c in user_site.run()}
    binding = checks["user role binding"]
    assert (binding.ok, binding.detail) == (False, "ood-user in ood-alice is also bound to Group ood:students")
    assert checks["user quota"].ok is False and checks["user quota"].detail == "no ResourceQuota in ood-alice"


def test_kubeconfig_problems(user_site: Site) -> None:
    path = Path(user_site.ident.home, ".kube", "config")
    good = path.read_text()

    def verdict() -> tuple[bool | None, str]:
        c = user_site.check("user kubeconfig")
        return c.ok, c.detail

    os.chmod(path, 0o644)
    assert verdict() == (False, f"{path}: owner uid 20001, mode 0644")
    os.chmod(path, 0o600)
    path.write_text(good.replace("credential", "get-token"))
    assert verdict() == (False, f"{path} has no 'ood-eks' entry running 'ood-k8s credential' for alice")
    path.write_text(good + "# auth-provider: {name: oidc, config: {client-secret: s3cret}}\n")
    assert verdict() == (False, f"{path} holds a legacy auth-provider entry or a client secret")
    path.unlink()
    path.symlink_to("/etc/shadow")
    ok, detail = verdict()
    assert ok is False and "symbolic link" in detail
    path.unlink()
    assert verdict() == (False, f"{path} missing")


def test_token_freshness(user_site: Site) -> None:
    cache = TokenCache(user_site.cfg.users.token_cache_dir, "alice", owner=(ALICE.uid, ALICE.gid))
    tokens = cache.read()
    assert tokens is not None
    cache.write(tokens.replace(id_expires_at=NOW - 10))
    assert user_site.check("user tokens").detail == ("ID token expired, refreshed on next use (refresh token until "
                                                "2027-02-04 08:00 UTC)")
    cache.write(tokens.replace(id_expires_at=NOW - 10, refresh_expires_at=NOW - 5))
    check = user_site.check("user tokens")
    assert (check.ok, check.fix) == (False, "the user must log out of the portal and log in again")
    cache.clear()
    check = user_site.check("user tokens")
    assert (check.ok, check.detail) == (False, f"no tokens cached in {user_site.cfg.users.token_cache_dir}")


def test_home_owned_by_someone_else(user_site: Site) -> None:
    os.chown(user_site.ident.home, 20002, 20002)
    check = user_site.check("home: home directory")
    assert check.ok is False and check.fix.startswith("the pod writes as uid 20001")


# --- the command ---------------------------------------------------------------------------------------


def _write_config(cfg: config.Config, path: Path) -> str:
    path.write_text(yaml.safe_dump(config.to_dict(cfg, redact=False)))
    return str(path)


def test_cli_exit_codes(user_site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.run
    monkeypatch.setattr(doctor, "run", lambda cfg, user, **kw: real(cfg, user, kube=user_site.kube,
                                                                   cognito=user_site.cognito, lookup=user_site._lookup,
                                                                   clock=lambda: NOW, **kw))
    path = _write_config(user_site.cfg, tmp_path / "ood_k8s.yml")
    assert cli.main(["--config", path, "doctor", "--user", "alice"]) == 0
    assert capsys.readouterr().out.endswith("\nno problems found\n")
    user_site.kube.delete("ClusterRole", "ood-user")
    assert cli.main(["--config", path, "doctor"]) == 1
    out = capsys.readouterr().out
    assert "✘ ClusterRole ood-user: missing (what users may do in their namespaces)\n    fix: apply it: " in out
    assert out.endswith("1 problem found\n")


def test_cli_reports_every_config_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster:\n  autoscaler: kubernetes\nusers:\n  min_uid: -1\n")
    assert cli.main(["--config", str(bad), "doctor"]) == 1
    assert capsys.readouterr().out == (
        "✘ configuration: cluster.autoscaler: got 'kubernetes', expected one of 'karpenter', 'cluster-autoscaler', "
        "'none'\n    fix: fix the file ('ood-k8s config check' lists every problem)\n"
        "✘ configuration: users.min_uid: got -1, expected a number greater than 0\n"
        "    fix: fix the file ('ood-k8s config check' lists every problem)\n2 problems found\n")


def test_ascii_report() -> None:
    text, code = doctor.report([Check("a", True, "fine"), Check("b", False, "broken", "mend it"), Check("c", None)],
                               ascii_only=True)
    assert (text, code) == ("ok   a: fine\nFAIL b: broken\n    fix: mend it\n--   c\n1 problem found\n", 1)


def test_permissions_expand_every_rule() -> None:
    role = {"rules": [{"apiGroups": ["", "apps"], "resources": ["pods"], "verbs": ["get", "list"]},
                      {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                       "resourceNames": ["a", "b"], "verbs": ["bind"]}]}
    assert cluster_checks.permissions(role) == [
        ("get", "", "pods", None), ("list", "", "pods", None), ("get", "apps", "pods", None),
        ("list", "apps", "pods", None), ("bind", "rbac.authorization.k8s.io", "clusterroles", "a"),
        ("bind", "rbac.authorization.k8s.io", "clusterroles", "b")]



# --- the rendered roles are enough: the hook and the adapter under exactly those rules ---------------------


def _rbac(role: dict[str, Any], namespace: str | None = None) -> Callable[[str, str, str, str | None], bool]:
    """The fake's authorizer granting exactly ``role`` (cluster-wide, or in ``namespace`` as a RoleBinding
    would); it sees no API group or object name, so those parts of a rule are not narrowed further."""
    allowed = {(verb, resource) for verb, _, resource, _ in cluster_checks.permissions(role)}

    def authorize(user: str, verb: str, resource: str, ns: str | None) -> bool:
        return (verb, resource) in allowed and (namespace is None or ns == namespace)
    return authorize


def _role(cfg: config.Config, name: str) -> dict[str, Any]:
    return next(o for o in cluster.objects(cfg) if o["kind"] == "ClusterRole" and o["metadata"]["name"] == name)


def test_the_hook_and_teardown_need_nothing_beyond_the_provisioner_role(site: Site) -> None:
    if os.geteuid() != 0:
        pytest.skip("homes owned by a test user need root")
    site.fk.authorize = _rbac(_role(site.cfg, cluster.PROVISIONER_ROLE))
    _provision(site.cfg, site.ident, site.kube, site.fk)
    assert [r for r in site.fk.requests if r.status == 403] == []
    assert provision.ensure(site.cfg, site.ident, site.kube, force=True).action == provision.UPDATED
    provision.teardown(site.cfg, "alice", site.kube, dry_run=True)
    provision.teardown(site.cfg, "alice", site.kube)
    assert [f"{r.method} {r.path}" for r in site.fk.requests if r.status == 403] == []
    assert cluster_checks.check_provisioner(site.kube, cluster.objects(site.cfg)).ok


def test_sessions_need_nothing_beyond_the_user_role(user_site: Site) -> None:
    from ood_k8s.core.errors import Forbidden
    from ood_k8s.sessions import request as jobspec
    from ood_k8s.sessions.adapter import Adapter

    site = user_site
    site.fk.authorize = _rbac(_role(site.cfg, "ood-user"), namespace="ood-alice")
    adapter = Adapter(site.cfg, site.ident, site.kube)
    job = adapter.submit(jobspec.Script.from_dict({"content": "jupyter lab", "job_name": "jupyter",
                                                   "native": ["--profile", "gpu-t4"], "wall_time": 3600}))
    assert adapter.info(job).id == job
    assert [i.id for i in adapter.info_all()] == [job]
    adapter.delete(job)
    assert [f"{r.method} {r.path}" for r in site.fk.requests if r.status == 403] == []
    # ...and nothing beyond it: not another namespace, not the cluster.
    with pytest.raises(Forbidden):
        site.kube.list("Pod", "ood-bob")
    with pytest.raises(Forbidden):
        site.kube.list("Node")

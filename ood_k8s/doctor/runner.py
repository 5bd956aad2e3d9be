"""``ood-k8s doctor [--user USER]``: is this site set up right?  A checklist, each item with a fix.

Every check is a small function returning :class:`Check` (or a list of them), so tests pin each one
against a healthy and a broken setup.  :func:`run` wires them to the real clients: the provisioner's
Kubernetes identity (what the hook uses), boto3 for Cognito, EKS and EFS.  A check that cannot apply
to this site (Cognito on an OIDC site, GPUs on a CPU-only site...) is skipped, never passed.

Checks only read: nothing on the cluster, in AWS or in a home directory is changed, and files under
a home are opened without following links.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import quote

from ood_k8s.cluster import manifests as cluster
from ood_k8s.config import Config, Profile
from ood_k8s.core import names
from ood_k8s.core.errors import KubeError, NotFound, OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient

APPLY_CLUSTER = "ood-k8s cluster render | kubectl apply --server-side -f -"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: does not apply here, or could not be decided (detail says which)
    detail: str = ""
    fix: str = ""

    def mark(self, ascii_only: bool = False) -> str:
        marks = ("ok  ", "FAIL", "--  ") if ascii_only else ("✔", "✘", "–")
        return marks[0 if self.ok else 1 if self.ok is False else 2]

    def lines(self, ascii_only: bool = False) -> list[str]:
        out = [f"{self.mark(ascii_only)} {self.name}" + (f": {self.detail}" if self.detail else "")]
        if self.ok is False and self.fix:
            out.append(f"    fix: {self.fix}")
        return out


def _one_line(err: BaseException) -> str:
    """What went wrong, without the error's own hint: each check gives its own fix."""
    return " ".join(str(getattr(err, "message", err)).split())


# --- configuration and the API -------------------------------------------------------------------------


def check_config(cfg: Config) -> tuple[Check, list[dict[str, Any]]]:
    """The configuration loaded; every cluster object renders and validates (returned for later checks)."""
    try:
        objs = cluster.objects(cfg)
    except OodK8sError as err:
        return Check("configuration", False, _one_line(err), "fix the template or the setting it names"), []
    return Check("configuration", True, f"{cfg.source}: {len(objs)} cluster objects valid for Kubernetes "
                                        f"{cfg.cluster.kubernetes_version}"), objs


def check_api(kube: KubeClient, cfg: Config) -> tuple[Check, bool]:
    """The API answers (second value), at the Kubernetes version objects are validated for."""
    try:
        info = kube.version()
    except OodK8sError as err:
        return Check("Kubernetes API", False, _one_line(err), "check cluster.provisioner_kubeconfig, the "
                     "network path to the API server and its CA"), False
    version = str(info.get("gitVersion", "?"))
    m = re.match(r"^v?(\d+)\.(\d+)", version)
    minor = f"{m.group(1)}.{m.group(2)}" if m else "?"
    detail = f"{kube.server} answers, version {version}"
    if minor != cfg.cluster.kubernetes_version:
        return Check("Kubernetes API", False, f"{detail}, but cluster.kubernetes_version is "
                     f"{cfg.cluster.kubernetes_version}", f"set cluster.kubernetes_version: \"{minor}\" so objects "
                     "are checked against this cluster's schema"), True
    return Check("Kubernetes API", True, detail), True


# --- what the provisioner may do ----------------------------------------------------------------------


def _review(kube: KubeClient, verb: str, group: str, resource: str, name: str | None) -> bool:
    # KubeClient.can_i takes kinds; these rules name resources (csidrivers has no kind in kube.RESOURCES).
    resource, _, sub = resource.partition("/")
    attrs = {"verb": verb, "group": group, "resource": resource}
    if sub:
        attrs["subresource"] = sub
    if name:
        attrs["name"] = name
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attrs}}
    return bool((kube.create(review).get("status") or {}).get("allowed"))


def permissions(role: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """(verb, group, resource, name) of every permission in a ClusterRole's rules."""
    out = []
    for rule in role.get("rules") or []:
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    for name in rule.get("resourceNames") or [None]:
                        out.append((verb, group, resource, name))
    return out


def check_provisioner(kube: KubeClient, objs: list[dict[str, Any]]) -> Check:
    """The provisioner identity holds every permission of the provisioner ClusterRole (cluster-wide)."""
    role = next((o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == cluster.PROVISIONER_ROLE),
                None)
    if role is None:
        return Check("provisioner permissions", None, "no provisioner ClusterRole rendered")
    wanted = permissions(role)
    try:
        missing = [p for p in wanted if not _review(kube, *p)]
    except OodK8sError as err:
        return Check("provisioner permissions", False, _one_line(err), f"apply the RBAC: {APPLY_CLUSTER}")
    if missing:
        shown = ", ".join(f"{v} {r}{'/' + n if n else ''}" for v, _, r, n in missing[:6])
        more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        return Check("provisioner permissions", False, f"missing {shown}{more}",
                     f"apply ClusterRole/ClusterRoleBinding {cluster.PROVISIONER_ROLE} ({APPLY_CLUSTER}) and "
                     "check cluster.provisioner_subject is who the provisioner kubeconfig authenticates as")
    return Check("provisioner permissions", True, f"all {len(wanted)} permissions the hook and admin commands use")


def _contains(live: Any, want: Any) -> bool:
    """``want`` is found in ``live`` (the server may add defaulted fields, never drop ours)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(k in live and _contains(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(map(_contains, live, want))
    return bool(live == want)


def check_installed(kube: KubeClient, objs: list[dict[str, Any]], cfg: Config) -> list[Check]:
    """The user ClusterRole and the admission guard are applied, and as rendered."""
    out = []
    for kind, name, why in (
            ("ClusterRole", cfg.users.cluster_role, "what users may do in their namespaces"),
            ("ValidatingAdmissionPolicy", cluster.POLICY_NAME, "the admission guard"),
            ("ValidatingAdmissionPolicyBinding", cluster.POLICY_NAME, "the admission guard's binding")):
        title = f"{kind} {name}"
        want = next((o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name), None)
        if want is None:
            out.append(Check(title, None, f"not rendered for Kubernetes {cfg.cluster.kubernetes_version} "
                             "(ValidatingAdmissionPolicy needs 1.28 or later)"))
            continue
        try:
            live = kube.get(kind, name)
        except NotFound:
            out.append(Check(title, False, f"missing ({why})", f"apply it: {APPLY_CLUSTER}"))
            continue
        except OodK8sError as err:
            out.append(Check(title, False, _one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}"))
            continue
        body = {k: v for k, v in want.items() if k not in ("apiVersion", "kind", "metadata")}
        if not _contains(live, body):
            out.append(Check(title, False, "differs from what 'ood-k8s cluster render' gives",
                             f"re-apply it: {APPLY_CLUSTER}"))
        else:
            out.append(Check(title, True, "applied and current"))
    return out


# --- identity provider -------------------------------------------------------------------------------------

_FLOWS = ("ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError  # deferred: only AWS checks need botocore

    return (BotoCoreError, ClientError)


def _aws_code(err: BaseException) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", "")) or type(err).__name__


_CREDENTIALS = {"NoCredentialsError", "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                "ExpiredTokenException", "AccessDeniedException", "AccessDenied", "EndpointConnectionError"}


def _aws_fix(err: BaseException, fix: str) -> str:
    """``fix``, unless the portal could not talk to AWS at all (credentials, permissions, network)."""
    code = _aws_code(err)
    if code in ("AccessDeniedException", "AccessDenied"):
        return "allow this call in the policy of the portal's AWS role"
    if code == "EndpointConnectionError":
        return "check the network path to AWS (or the endpoint_url setting)"
    if code in _CREDENTIALS:
        return "give the portal AWS credentials (instance profile, or AWS_PROFILE for root)"
    return fix


def check_cognito(cfg: Config, client: Any) -> list[Check]:
    """The user pool exists; the app client is public, has the auth flows the hook and plugin use, and
    token lifetimes that fit the configuration."""
    c = cfg.auth.cognito
    if cfg.auth.mode != "cognito":
        return [Check("Cognito", None, f"auth.mode is {cfg.auth.mode}")]
    try:
        client.describe_user_pool(UserPoolId=c.user_pool_id)
    except _aws_errors() as err:
        return [Check("Cognito user pool", False, f"{c.user_pool_id} in {c.region}: {_aws_code(err)}",
                      _aws_fix(err, "set auth.cognito.user_pool_id and auth.cognito.region"))]
    pool = Check("Cognito user pool", True, f"{c.user_pool_id} in {c.region}")
    try:
        app = client.describe_user_pool_client(UserPoolId=c.user_pool_id, ClientId=c.client_id)["UserPoolClient"]
    except _aws_errors() as err:
        return [pool, Check("Cognito app client", False, f"{c.client_id}: {_aws_code(err)}",
                            _aws_fix(err, "set auth.cognito.client_id to an app client of that pool"))]
    problems, fixes = [], []
    if app.get("ClientSecret"):
        problems.append("it has a client secret")
        fixes.append("create a public app client (no secret): refresh happens as the user, and a secret must "
                     "never be written into a user's kubeconfig")
    flows = app.get("ExplicitAuthFlows") or []
    absent = [f for f in _FLOWS if f not in flows]
    if absent:
        problems.append("auth flows " + ", ".join(absent) + " not enabled")
        fixes.append("enable " + " and ".join(_FLOWS) + " on the app client")
    units = app.get("TokenValidityUnits") or {}
    refresh_days = app.get("RefreshTokenValidity", 30) * _UNIT_SECONDS[units.get("RefreshToken", "days")] / 86400
    id_seconds = app.get("IdTokenValidity", 60 if units.get("IdToken") == "minutes" else 1) * \
        _UNIT_SECONDS[units.get("IdToken", "hours")]
    if abs(refresh_days - c.refresh_token_days) > 0.01:
        problems.append(f"refresh tokens last {refresh_days:g} days, the configuration says {c.refresh_token_days}")
        fixes.append(f"set auth.cognito.refresh_token_days: {refresh_days:g} (or change the app client)")
    if id_seconds <= cfg.auth.id_token_margin:
        problems.append(f"ID tokens last {id_seconds} s, not more than auth.id_token_margin "
                        f"({cfg.auth.id_token_margin} s): every call would refresh")
        fixes.append("lengthen the app client's ID token validity (1 hour is usual)")
    detail = f"{c.client_id}: " + ("; ".join(problems) if problems else
                                   f"public, {' and '.join(_FLOWS)}, ID tokens {id_seconds // 60} min, "
                                   f"refresh tokens {refresh_days:g} days")
    return [pool, Check("Cognito app client", not problems, detail, "; ".join(fixes))]


def identity_provider_mismatches(cfg: Config, provider: dict[str, Any]) -> list[str]:
    """Differences between the cluster's OIDC provider (EKS DescribeIdentityProviderConfig's ``oidc``)
    and what the configuration needs (:func:`ood_k8s.cluster.manifests.eksctl_config`)."""
    want = cluster.eksctl_config(cfg)["identityProviders"][0]
    out = []
    for key in ("issuerUrl", "clientId", "usernameClaim", "usernamePrefix", "groupsClaim", "groupsPrefix"):
        if provider.get(key, "") != want[key]:
            out.append(f"{key} is {provider.get(key, '')!r}, expected {want[key]!r}")
    if provider.get("status", "ACTIVE") != "ACTIVE":
        out.append(f"status is {provider.get('status')}")
    return out


def check_identity_provider(cfg: Config, eks: Any) -> Check:
    """The EKS cluster's OIDC identity provider matches the configuration (when cluster.eks_name is set)."""
    title = "EKS identity provider"
    if not cfg.cluster.eks_name:
        return Check(title, None, "set cluster.eks_name to compare the cluster's OIDC settings")
    fix = "ood-k8s cluster render --only eksctl > idp.yaml; eksctl associate identityprovider -f idp.yaml " \
          "(EKS has one per cluster: disassociate a wrong one first)"
    try:
        listed = eks.list_identity_provider_configs(clusterName=cfg.cluster.eks_name)["identityProviderConfigs"]
        oidc = [p for p in listed if p.get("type") == "oidc"]
        if not oidc:
            return Check(title, False, f"cluster {cfg.cluster.eks_name} has no OIDC identity provider", fix)
        described = eks.describe_identity_provider_config(
            clusterName=cfg.cluster.eks_name, identityProviderConfig={"type": "oidc", "name": oidc[0]["name"]})
    except _aws_errors() as err:
        code = _aws_code(err)
        if code == "ResourceNotFoundException":
            return Check(title, False, f"no EKS cluster {cfg.cluster.eks_name} in {cfg.cluster.aws_region}",
                         "set cluster.eks_name and cluster.aws_region")
        return Check(title, None, f"cannot read it ({code}); give the portal's AWS role "
                     "eks:ListIdentityProviderConfigs and eks:DescribeIdentityProviderConfig to check")
    provider = (described.get("identityProviderConfig") or {}).get("oidc") or {}
    mismatches = identity_provider_mismatches(cfg, provider)
    if mismatches:
        return Check(title, False, f"{oidc[0]['name']}: " + "; ".join(mismatches), fix)
    return Check(title, True, f"{oidc[0]['name']}: issuer, client and claims match")


# --- capacity and storage ---------------------------------------------------------------------------------


def _gpus(node: dict[str, Any], resource: str) -> int:
    value = str(((node.get("status") or {}).get("allocatable") or {}).get(resource, "0"))
    return int(value) if value.isdigit() else 0


def _matches(node: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def check_gpus(kube: KubeClient, cfg: Config) -> list[Check]:
    """Each GPU profile has somewhere to run: a NodePool (Karpenter) or nodes that advertise the GPU."""
    profiles = cluster.gpu_profiles(cfg)
    if not profiles:
        return [Check("GPU capacity", None, "no GPU profiles")]
    try:
        nodes = kube.list("Node")
        pools = None
        if cfg.cluster.autoscaler == "karpenter":
            try:
                pools = {p["metadata"]["name"] for p in kube.list("NodePool")}
            except NotFound:
                return [Check(f"GPU capacity for {p.name}", False, "Karpenter is not installed (no NodePool API)",
                              "install Karpenter v1, or set cluster.autoscaler") for p in profiles]
    except OodK8sError as err:
        return [Check("GPU capacity", False, _one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")]
    return [_check_profile_capacity(cfg, p, nodes, pools) for p in profiles]


def _check_profile_capacity(cfg: Config, p: Profile, nodes: list[dict[str, Any]], pools: set[str] | None) -> Check:
    title = f"GPU capacity for {p.name}"
    res = p.gpu.resource
    pool = cluster.pool_name(p)
    if pools is not None:
        selector = {"karpenter.sh/nodepool": pool}
    else:
        selector = {k: v for k, v in p.node_selector.items() if k != "karpenter.sh/nodepool"}
    mine = [n for n in nodes if _matches(n, selector) and (selector or _gpus(n, res))]
    broken = [n["metadata"]["name"] for n in mine if not _gpus(n, res)]
    with_gpus = [n for n in mine if _gpus(n, res)]
    if broken:
        return Check(title, False, f"node {', '.join(broken[:3])} has no allocatable {res}",
                     "the GPU device plugin is not running there (Bottlerocket's NVIDIA AMIs have it; on other "
                     "AMIs install the NVIDIA device plugin DaemonSet)")
    have = f"{len(with_gpus)} node{'s' if len(with_gpus) != 1 else ''} with {res}"
    if pools is not None:
        if pool not in pools:
            return Check(title, False, f"no NodePool {pool}", f"apply it: {APPLY_CLUSTER}")
        return Check(title, True, f"NodePool {pool}; {have}" + ("" if with_gpus else " now (launched on demand)"))
    if with_gpus:
        return Check(title, True, have)
    if cfg.cluster.autoscaler == "cluster-autoscaler":
        return Check(title, None, "no node now; the autoscaler must be able to add one from zero (tags: "
                     "'ood-k8s cluster render --only node-groups')")
    return Check(title, False, f"no node advertises {res}" + (f" with labels {selector}" if selector else ""),
                 "add GPU nodes with the device plugin, or set cluster.autoscaler")


def check_storage(kube: KubeClient, cfg: Config, efs: Callable[[], Any]) -> list[Check]:
    """The home storage backend exists: the EFS file system and its CSI driver, or the portal's homes."""
    s = cfg.storage
    out = []
    if s.mode == "efs":
        fs_id = s.efs.file_system_id
        try:
            found = efs().describe_file_systems(FileSystemId=fs_id)["FileSystems"]
            state = found[0].get("LifeCycleState", "?") if found else "missing"
            out.append(Check("EFS file system", state == "available", f"{fs_id} in {s.efs.region}: {state}",
                             "wait for it to become available"))
        except _aws_errors() as err:
            out.append(Check("EFS file system", False, f"{fs_id} in {s.efs.region}: {_aws_code(err)}",
                             _aws_fix(err, "set storage.efs.file_system_id and storage.efs.region")))
        try:
            kube.request("GET", "/apis/storage.k8s.io/v1/csidrivers/" + quote(cluster.EFS_CSI_DRIVER, safe=""))
            out.append(Check("EFS CSI driver", True, f"CSIDriver {cluster.EFS_CSI_DRIVER} registered"))
        except NotFound:
            out.append(Check("EFS CSI driver", False, f"CSIDriver {cluster.EFS_CSI_DRIVER} not registered",
                             "install the EKS add-on aws-efs-csi-driver"))
        except KubeError as err:
            out.append(Check("EFS CSI driver", False, _one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}"))
    elif s.mode == "hostpath":
        out.append(Check("home storage", True, "hostPath homes: every node must mount the same homes at the same "
                         "paths (prefer storage.mode efs or nfs)"))
    elif s.mode == "none":
        out.append(Check("home storage", None, "storage.mode none: sessions get no home volume"))
    else:
        where = f"NFS {s.nfs.server}" if s.mode == "nfs" else f"existing claims {s.pvc.claim_name}"
        out.append(Check("home storage", True, f"{where} (checked per user with --user)"))
    if s.mode in ("efs", "nfs", "hostpath"):
        ok = os.path.isdir(s.home_root)
        out.append(Check("portal home root", ok, f"{s.home_root} " + ("is a directory" if ok else "is missing"),
                         f"mount the home file system at {s.home_root} on the portal"))
    return out


# --- one user --------------------------------------------------------------------------------------------


def check_user_namespace(kube: KubeClient, cfg: Config, ident: Identity) -> list[Check]:
    """The user's namespace is theirs and records the ids the admission guard admits, with the
    RoleBinding of exactly this user, a quota, and (EFS/NFS) a bound home claim."""
    from ood_k8s.users import provision

    n = provision.user_names(cfg, ident.username)
    try:
        ns = kube.get("Namespace", n.namespace)
    except NotFound:
        return [Check(f"namespace {n.namespace}", False, "missing",
                      f"ood-k8s user setup {ident.username} (or let the user log in to the portal)")]
    except OodK8sError as err:
        return [Check(f"namespace {n.namespace}", False, _one_line(err),
                      f"apply the provisioner RBAC: {APPLY_CLUSTER}")]
    setup = f"ood-k8s user setup {ident.username}"
    try:
        provision.check_owner(ns, n)
    except OodK8sError as err:
        return [Check(f"namespace {n.namespace}", False, _one_line(err), err.hint)]
    ann = (ns.get("metadata") or {}).get("annotations") or {}
    want = {cluster.UID_ANNOTATION: str(ident.uid), cluster.GID_ANNOTATION: str(ident.gid),
            cluster.GIDS_ANNOTATION: ",".join(str(g) for g in ident.gids)}
    if cfg.storage.mode == "hostpath":
        want[cluster.HOME_ANNOTATION] = ident.home
    wrong = [f"{k}={ann.get(k)!r} (NSS: {v!r})" for k, v in want.items() if ann.get(k, "") != v]
    out = [Check(f"namespace {n.namespace}", not wrong,
                 ("records " + "; ".join(wrong) + ": the admission guard will refuse the user's sessions") if wrong
                 else f"uid {ident.uid}, gid {ident.gid} recorded", setup)]
    out.append(_check_binding(kube, cfg, n))
    out.append(_check_quota(kube, n))
    if cfg.storage.mode in ("efs", "nfs"):
        from ood_k8s.storage.backend import HOME_CLAIM

        try:
            pvc = kube.get("PersistentVolumeClaim", HOME_CLAIM, n.namespace)
            phase = (pvc.get("status") or {}).get("phase", "Pending")
            out.append(Check("home claim", phase == "Bound", f"{n.namespace}/{HOME_CLAIM}: {phase}",
                             f"see 'ood-k8s storage check {ident.username}'"))
        except OodK8sError as err:
            out.append(Check("home claim", False, _one_line(err), setup))
    return out


def _check_binding(kube: KubeClient, cfg: Config, n: names.UserNames) -> Check:
    role = cfg.users.cluster_role
    try:
        bindings = kube.list("RoleBinding", n.namespace)
    except OodK8sError as err:
        return Check("user role binding", False, _one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")
    subjects = [s for b in bindings if (b.get("roleRef") or {}).get("name") == role
                and (b.get("roleRef") or {}).get("kind") == "ClusterRole" for s in b.get("subjects") or []]
    others = [f"{s.get('kind')} {s.get('name')}" for s in subjects
              if (s.get("kind"), s.get("name")) != ("User", n.rbac_user)]
    if others:
        return Check("user role binding", False, f"{role} in {n.namespace} is also bound to {', '.join(others)}",
                     "remove those subjects: only the user may act in their namespace")
    if not subjects:
        return Check("user role binding", False, f"no RoleBinding of {role} to User {n.rbac_user}",
                     f"ood-k8s user setup {n.username}")
    return Check("user role binding", True, f"{role} bound to User {n.rbac_user} only")


def _check_quota(kube: KubeClient, n: names.UserNames) -> Check:
    try:
        quotas = kube.list("ResourceQuota", n.namespace)
    except OodK8sError as err:
        return Check("user quota", False, _one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")
    if not quotas:
        return Check("user quota", False, f"no ResourceQuota in {n.namespace}", f"ood-k8s user setup {n.username}")
    hard = (quotas[0].get("spec") or {}).get("hard") or {}
    shown = ", ".join(f"{k} {v}" for k, v in sorted(hard.items()) if k in ("pods", "requests.nvidia.com/gpu",
                                                                          "limits.cpu", "requests.cpu"))
    return Check("user quota", True, shown or quotas[0]["metadata"]["name"])


def check_kubeconfig(cfg: Config, ident: Identity) -> Check:
    """The user's kubeconfig exists, is theirs and private, runs our credential plugin, holds no secret."""
    from ood_k8s.core import fsutil
    from ood_k8s.kubeconfig.user import MAX_KUBECONFIG, entry_name

    title = "user kubeconfig"
    parts = fsutil.check_relative(cfg.users.kubeconfig, "users.kubeconfig")
    path = os.path.join(ident.home, *parts)
    fix = "let the user log in to the portal again (the hook rewrites it)"
    try:
        fd = fsutil.walk_dirs(ident.home, parts[:-1])
    except FileNotFoundError:
        return Check(title, False, f"{path} missing", fix)
    except OodK8sError as err:
        return Check(title, False, _one_line(err), err.hint)
    except OSError as err:
        return Check(title, False, f"{path}: {err.strerror}", "run ood-k8s doctor as root")
    try:
        data = fsutil.read_at(fd, parts[-1], MAX_KUBECONFIG, where=path)
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False) if data is not None else None
    except OodK8sError as err:
        return Check(title, False, _one_line(err), err.hint)
    except OSError as err:
        return Check(title, False, f"{path}: {err.strerror}", "run ood-k8s doctor as root")
    finally:
        os.close(fd)
    if data is None or st is None:
        return Check(title, False, f"{path} missing", fix)
    if st.st_uid != ident.uid or stat.S_IMODE(st.st_mode) & 0o077:
        return Check(title, False, f"{path}: owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}",
                     f"chown {ident.uid} {path}; chmod 0600 {path}")
    import yaml

    try:
        kc = yaml.safe_load(data) or {}
    except yaml.YAMLError:
        return Check(title, False, f"{path} is not valid YAML", fix)
    text = data.decode("utf-8", "replace")
    if "client-secret" in text or "auth-provider" in text:
        return Check(title, False, f"{path} holds a legacy auth-provider entry or a client secret",
                     "remove that user entry: the secret would be readable by every session of the user")
    name = entry_name(cfg)
    users = {u.get("name"): u.get("user") or {} for u in kc.get("users") or [] if isinstance(u, dict)}
    args = ((users.get(name) or {}).get("exec") or {}).get("args") or []
    if args[:1] != ["credential"] or "--user" not in args or args[args.index("--user") + 1:][:1] != [ident.username]:
        return Check(title, False, f"{path} has no '{name}' entry running 'ood-k8s credential' for "
                     f"{ident.username}", fix)
    return Check(title, True, f"{path}: 0600, context {name}, exec plugin ood-k8s credential")


def check_tokens(cfg: Config, ident: Identity, clock: Callable[[], float] = time.time) -> Check:
    """The user's cached ID token is fresh, or can be refreshed without a new login."""
    from ood_k8s.auth.tokencache import TokenCache

    title = "user tokens"
    try:
        tokens = TokenCache(cfg.users.token_cache_dir, ident.username, clock=clock).read()
    except OodK8sError as err:
        return Check(title, False, _one_line(err), err.hint if os.geteuid() == 0 else "run ood-k8s doctor as root")
    except OSError as err:
        return Check(title, False, f"{cfg.users.token_cache_dir}: {err.strerror}", "run ood-k8s doctor as root")
    login = "the user must log in to the portal (the hook mints tokens at login)"
    if tokens is None:
        return Check(title, False, f"no tokens cached in {cfg.users.token_cache_dir}", login)
    now = clock()
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(tokens.refresh_expires_at))
    if tokens.id_valid(now):
        return Check(title, True, f"ID token valid for {int(tokens.id_expires_at - now) // 60} more min; "
                     f"refresh token until {until}")
    if tokens.refresh_valid(now):
        return Check(title, True, f"ID token expired, refreshed on next use (refresh token until {until})")
    return Check(title, False, f"ID and refresh tokens expired ({until})",
                 "the user must log out of the portal and log in again")


def check_home(cfg: Config, ident: Identity, kube: KubeClient | None, efs: Callable[[], Any]) -> list[Check]:
    """``ood-k8s storage check``'s findings: the home as the portal sees it beside what the pod gets."""
    from ood_k8s.storage import backend as storage
    from ood_k8s.users import provision

    try:
        findings = storage.check(cfg, ident, provision.user_names(cfg, ident.username), kube,
                                 efs_client=efs() if cfg.storage.mode == "efs" else None)
    except OodK8sError as err:
        return [Check("home", False, _one_line(err), err.hint)]
    return [Check(f"home: {f.what}", f.status != "error", f"{f.portal}; pod: {f.pod}", f.fix) for f in findings]


# --- all of it ------------------------------------------------------------------------------------------


def run(cfg: Config, user: str | None = None, *, kube: KubeClient | None = None, cognito: Any = None,
        eks: Any = None, efs: Any = None, lookup: Callable[[str], Identity] | None = None,
        clock: Callable[[], float] = time.time) -> list[Check]:
    """Every check, in order.  Clients default to the provisioner kubeconfig and boto3 (created only
    when a check needs them)."""
    checks: list[Check] = []
    first, objs = check_config(cfg)
    checks.append(first)
    if kube is None:
        try:
            from ood_k8s.kubeconfig.clients import as_provisioner

            kube = as_provisioner(cfg)
        except OodK8sError as err:
            checks.append(Check("Kubernetes API", False, _one_line(err),
                                "create cluster.provisioner_kubeconfig for the provisioner identity"))
    reachable = False
    if kube is not None:
        api, reachable = check_api(kube, cfg)
        checks.append(api)
    efs_client = _lazy(efs, lambda: __import__("ood_k8s.cloud.aws.efs", fromlist=["client"]).client(cfg))
    if reachable and kube is not None:
        checks.append(check_provisioner(kube, objs))
        checks += check_installed(kube, objs, cfg)
    else:
        checks.append(Check("cluster checks", None, "skipped: the API is not reachable"))
    if cfg.auth.mode == "cognito":
        checks += check_cognito(cfg, cognito if cognito is not None else _cognito_client(cfg))
    if cfg.cluster.eks_name:
        checks.append(check_identity_provider(cfg, eks if eks is not None else _eks_client(cfg)))
    if reachable and kube is not None:
        checks += check_gpus(kube, cfg)
        checks += check_storage(kube, cfg, efs_client)
    if user:
        checks += check_user(cfg, user, kube if reachable else None, efs_client, lookup, clock)
    return checks


def check_user(cfg: Config, user: str, kube: KubeClient | None, efs: Callable[[], Any],
               lookup: Callable[[str], Identity] | None = None, clock: Callable[[], float] = time.time) -> list[Check]:
    from ood_k8s.core import identity
    from ood_k8s.users import provision

    try:
        ident = provision.admit(cfg, user, lookup or identity.lookup)
    except OodK8sError as err:
        return [Check(f"user {user}", False, _one_line(err), err.hint)]
    gids = ",".join(str(g) for g in ident.gids) or "none"
    out = [Check(f"user {user}", True, f"uid {ident.uid}, gid {ident.gid}, groups {gids}, home {ident.home}")]
    if kube is not None:
        out += check_user_namespace(kube, cfg, ident)
    out.append(check_kubeconfig(cfg, ident))
    out.append(check_tokens(cfg, ident, clock))
    out += check_home(cfg, ident, kube, efs)
    return out


def _lazy(given: Any, make: Callable[[], Any]) -> Callable[[], Any]:
    made: list[Any] = [given]

    def get() -> Any:
        if made[0] is None:
            made[0] = make()
        return made[0]
    return get


def _cognito_client(cfg: Config) -> Any:
    from ood_k8s.cloud.aws import cognito

    return cognito.client(cfg)


def _eks_client(cfg: Config) -> Any:
    import boto3

    return boto3.client("eks", region_name=cfg.cluster.aws_region)


def report(checks: Iterable[Check], ascii_only: bool = False) -> tuple[str, int]:
    """The checklist as text, and the exit code (1 if any check failed)."""
    checks = list(checks)
    lines = [line for c in checks for line in c.lines(ascii_only)]
    failed = sum(c.ok is False for c in checks)
    lines.append(f"{failed} problem{'s' if failed != 1 else ''} found" if failed else "no problems found")
    return "\n".join(lines) + "\n", 1 if failed else 0

"""What a site applies to the cluster once: ``ood-k8s cluster render``.

Pure functions of the site configuration:

* :func:`objects` -- the cluster-scoped Kubernetes objects, rendered from ``templates/cluster/*.yaml.j2``
  and validated strictly: the user and provisioner RBAC, the admission guard of user namespaces
  (a ValidatingAdmissionPolicy), priority classes, and GPU capacity (Karpenter NodePools and
  EC2NodeClasses, or the cluster autoscaler's priority-expander ConfigMap);
* :func:`eksctl_config` -- the EKS OIDC identity provider as an ``eksctl`` ClusterConfig fragment;
* :func:`node_groups` -- the tags and settings of cluster-autoscaler node groups.

The last two are not Kubernetes objects (nothing to ``kubectl apply``), so they are separate.

The admission guard reads the user's ids from annotations the hook records on each user namespace
(the ``*_ANNOTATION`` constants below); it is what stops a user who talks to the API directly from
running a pod as someone else or mounting someone else's files.  Values from the configuration reach
its CEL only as whole CEL literals built by :func:`cel_string` / :func:`cel_template`, so a hostile
claim name cannot change an expression.  What it lets a session mount is defined once, below
(:data:`SESSION_VOLUME_KINDS`, ``jobs.csi_drivers``, :func:`session_claims`), and
:mod:`ood_k8s.sessions.resolve` refuses the rest at submit from the same definition.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from ood_k8s.config import Config, Profile
from ood_k8s.core import names
from ood_k8s.core.errors import RenderError
from ood_k8s.render.render import Renderer
from ood_k8s.storage.backend import HOME_CLAIM

PROVISIONER_ROLE = "ood-k8s-provisioner"
POLICY_NAME = "ood-k8s-pod-guard"
SESSION_PRIORITY_CLASS = "ood-interactive"
PLACEHOLDER_PRIORITY_CLASS = "ood-placeholder"
PRIORITY_EXPANDER = "cluster-autoscaler-priority-expander"
IDENTITY_PROVIDER = "ood-k8s"
EFS_CSI_DRIVER = "efs.csi.aws.com"

# Recorded on every user namespace by the hook; the admission policy trusts nothing else.
UID_ANNOTATION = names.UID_ANNOTATION
GID_ANNOTATION = names.GID_ANNOTATION
GIDS_ANNOTATION = names.GIDS_ANNOTATION
HOME_ANNOTATION = names.HOME_ANNOTATION

# Node labels Karpenter derives from the instance: a profile's nodeSelector on them becomes a requirement.
_WELL_KNOWN = ("kubernetes.io/arch", "kubernetes.io/os", "node.kubernetes.io/instance-type",
               "topology.kubernetes.io/zone", "topology.kubernetes.io/region", "karpenter.sh/capacity-type")
_GPU_MAKERS = {"nvidia.com/gpu": "nvidia", "amd.com/gpu": "amd"}

TEMPLATES = ("cluster/rbac.yaml.j2", "cluster/admission.yaml.j2", "cluster/priority.yaml.j2",
             "cluster/karpenter.yaml.j2", "cluster/autoscaler.yaml.j2")


# --- small derived facts ---------------------------------------------------------------------------


def eks_name(cfg: Config) -> str:
    return cfg.cluster.eks_name or cfg.cluster.name


def gpu_profiles(cfg: Config) -> list[Profile]:
    return [p for p in cfg.profiles if p.gpu.max > 0]


def pool_name(profile: Profile) -> str:
    """The NodePool (and node group) of a GPU profile: the one its pods select, else the profile's name."""
    return profile.node_pool or profile.name


def subject(cfg: Config) -> dict[str, str]:
    """The RBAC subject of ``cluster.provisioner_subject`` ('User:NAME', 'Group:NAME', 'ServiceAccount:NS/NAME')."""
    kind, _, name = cfg.cluster.provisioner_subject.partition(":")
    if kind == "ServiceAccount":
        namespace, _, sa = name.partition("/")
        return {"kind": kind, "name": sa, "namespace": namespace}
    return {"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name}


def admission_api_version(kubernetes_version: str) -> str | None:
    """ValidatingAdmissionPolicy is GA (v1) from 1.30, beta from 1.28; older clusters have no usable one."""
    minor = int(kubernetes_version.split(".")[1])
    return "admissionregistration.k8s.io/v1" if minor >= 30 else \
        "admissionregistration.k8s.io/v1beta1" if minor >= 28 else None


def _labels() -> dict[str, str]:
    return {names.MANAGED_BY_KEY: names.MANAGED_BY}


# --- CEL literals ------------------------------------------------------------------------------------

_CEL_PLAIN = frozenset(string.ascii_letters + string.digits + " ._/@:+=,~-")
# {slug} is the user label the hook puts on the namespace (names.UserNames.slug); '' when it is missing.
_CEL_SLUG = (f"(has(namespaceObject.metadata.labels) && '{names.USER_LABEL}' in namespaceObject.metadata.labels"
             f" ? namespaceObject.metadata.labels['{names.USER_LABEL}'] : '')")
_CEL_FIELDS = {"user": "variables.username", "slug": _CEL_SLUG, "uid": "string(variables.uid)",
               "gid": "string(variables.gid)"}


def cel_string(value: str) -> str:
    """A CEL string literal equal to ``value``: anything but plain characters is a \\u/\\U escape."""
    out = []
    for ch in value:
        if ch in _CEL_PLAIN:
            out.append(ch)
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise RenderError(f"value {value[:40]!r} contains a lone UTF-16 surrogate", "fix the configuration")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def cel_template(template: str) -> str:
    """A CEL expression for a ``{user}``/``{uid}``/``{gid}`` name template, evaluated per namespace."""
    parts: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RenderError(f"name template {template!r}: {exc}", "use only {user}, {uid} and {gid}") from None
    for literal, field, spec, conversion in parsed:
        if literal:
            parts.append(cel_string(literal))
        if field is None:
            continue
        if field not in _CEL_FIELDS or spec or conversion:
            raise RenderError(f"name template {template!r} uses {{{field}}}", "use only {user}, {uid} and {gid}")
        parts.append(_CEL_FIELDS[field])
    return " + ".join(parts) or '""'


def _cel_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


# --- what a session pod may mount ----------------------------------------------------------------------
# The ONE definition of the volumes the admission guard admits: the guard's CEL is generated from it, and
# jobspec refuses everything else at submit, before any object exists, with a line naming the native key
# (a student must never meet the API server's CEL message instead).

SESSION_VOLUME_KINDS = ("persistentVolumeClaim", "configMap", "secret", "emptyDir", "downwardAPI", "projected")
# What a projected volume may combine (the API server's service-account token volume is one).
SESSION_PROJECTED_SOURCES = ("configMap", "secret", "downwardAPI", "serviceAccountToken")


@dataclass(frozen=True)
class SessionClaim:
    """A claim session pods may mount; names are templates evaluated for the namespace's user."""

    claim: str
    read_only: bool = False  # must be mounted with persistentVolumeClaim.readOnly
    sub_path: str = ""  # when set, the only sub-path a container may mount it at
    home: bool = False

    def resolve(self, **fields: Any) -> tuple[str, str]:
        """(claim name, sub-path) for one user, from :func:`ood_k8s.storage.backend.template_fields`."""
        return self.claim.format(**fields), self.sub_path.format(**fields)


def session_claims(cfg: Config) -> list[SessionClaim]:
    """The claims the guard allows: the user's home claim and the site's ``storage.extra_mounts``."""
    s = cfg.storage
    home = {"efs": HOME_CLAIM, "nfs": HOME_CLAIM, "pvc": s.pvc.claim_name}.get(s.mode)
    out = [SessionClaim(home, home=True)] if home else []
    return out + [SessionClaim(m.claim_name, m.read_only, m.sub_path) for m in s.extra_mounts]


def host_path_home(cfg: Config) -> bool:
    """Whether the user's home (namespace annotation ``HOME_ANNOTATION``) is the one hostPath allowed."""
    return cfg.storage.mode == "hostpath"


def guarded(cfg: Config) -> bool:
    """Whether this cluster version gets the admission guard (and so its volume rules apply)."""
    return admission_api_version(cfg.cluster.kubernetes_version) is not None


def _volume_kinds_rule(cfg: Config) -> str:
    """The guard's CEL for :data:`SESSION_VOLUME_KINDS` and ``jobs.csi_drivers`` (code constants, and driver
    names checked by config and quoted by :func:`cel_string`)."""
    sources = " || ".join(f"has(s.{k})" for k in SESSION_PROJECTED_SOURCES)
    special = {"projected": f"(has(v.projected) && (!has(v.projected.sources) || "
                            f"v.projected.sources.all(s, {sources})))"}
    kinds = [special.get(k, f"has(v.{k})") for k in SESSION_VOLUME_KINDS]
    if cfg.jobs.csi_drivers:
        kinds.append(f"(has(v.csi) && v.csi.driver in {_cel_list([cel_string(d) for d in cfg.jobs.csi_drivers])})")
    if host_path_home(cfg):
        kinds.append("(has(v.hostPath) && variables.home != '' && v.hostPath.path == variables.home)")
    return "variables.volumes.all(v, " + " || ".join(kinds) + ")"


# --- template contexts -------------------------------------------------------------------------------


def contexts(cfg: Config) -> dict[str, dict[str, Any]]:
    """Template -> plain-data context, for each template that renders something under ``cfg``."""
    out: dict[str, dict[str, Any]] = {"cluster/rbac.yaml.j2": _rbac_context(cfg)}
    api = admission_api_version(cfg.cluster.kubernetes_version)
    if api:
        out["cluster/admission.yaml.j2"] = _admission_context(cfg, api)
    named = [p.priority_class for p in cfg.profiles if p.priority_class]
    out["cluster/priority.yaml.j2"] = {
        "labels": _labels(), "placeholder_class": PLACEHOLDER_PRIORITY_CLASS,
        "session_classes": list(dict.fromkeys([SESSION_PRIORITY_CLASS, *named])),
    }
    if cfg.cluster.autoscaler == "karpenter" and gpu_profiles(cfg):
        out["cluster/karpenter.yaml.j2"] = _karpenter_context(cfg)
    if cfg.cluster.autoscaler == "cluster-autoscaler" and gpu_profiles(cfg):
        out["cluster/autoscaler.yaml.j2"] = {"labels": _labels(), "priorities": _expander_priorities(cfg)}
    return out


def _rbac_context(cfg: Config) -> dict[str, Any]:
    mode = cfg.storage.mode
    return {
        "labels": _labels(),
        "user_role": cfg.users.cluster_role,
        "provisioner_role": PROVISIONER_ROLE,
        "policy_name": POLICY_NAME,
        "subject": subject(cfg),
        "pull_secret": bool(cfg.users.image_pull_secret.name),
        "static_home_pv": mode in ("efs", "nfs"),
        "storage_driver": EFS_CSI_DRIVER if mode == "efs" else "",
        "karpenter": cfg.cluster.autoscaler == "karpenter" and bool(gpu_profiles(cfg)),
    }


def _admission_context(cfg: Config, api_version: str) -> dict[str, Any]:
    claims: list[str] = []
    read_only, sub_paths, allowed = [], [], []
    for c in session_claims(cfg):
        claim = cel_template(c.claim)
        claims.append(claim)
        allowed.append(f"the home claim '{c.claim}'" if c.home else f"'{c.claim}'")
        if c.read_only:
            read_only.append(claim)
        if c.sub_path:
            sub_paths.append(_cel_list([claim, cel_template(c.sub_path)]))
    kinds = ", ".join(SESSION_VOLUME_KINDS)
    if cfg.jobs.csi_drivers:
        kinds += f", inline CSI of the drivers {', '.join(cfg.jobs.csi_drivers)}"
    if host_path_home(cfg):
        kinds += f" and the hostPath of the user's home (namespace annotation {HOME_ANNOTATION})"
    return {
        "api_version": api_version,
        "labels": _labels(),
        "policy_name": POLICY_NAME,
        "namespace_labels": {names.MANAGED_BY_KEY: names.MANAGED_BY},
        "min_uid": cfg.users.min_uid,
        "claims": _cel_list(claims),
        "read_only_claims": _cel_list(read_only),
        "sub_paths": _cel_list(sub_paths),
        "volume_kinds_rule": _volume_kinds_rule(cfg),
        "volume_kinds_message": f"volumes may only be of the kinds ood-k8s uses: {kinds}",
        "claims_message": ("the only claims a session may mount are " + ", ".join(allowed)) if allowed
        else "sessions may not mount persistent volume claims on this site",
    }


def _karpenter_context(cfg: Config) -> dict[str, Any]:
    eks = eks_name(cfg)
    return {
        "labels": _labels(),
        "role": cfg.cluster.karpenter_node_role or f"KarpenterNodeRole-{eks}",
        "discovery": {"karpenter.sh/discovery": eks},
        "pools": [_pool(cfg, p) for p in gpu_profiles(cfg)],
    }


def _pool(cfg: Config, p: Profile) -> dict[str, Any]:
    k = p.karpenter

    def req(key: str, values: list[str]) -> dict[str, Any]:
        return {"key": key, "operator": "In", "values": list(values)}

    requirements = []
    for key, values in (("karpenter.k8s.aws/instance-category", k.instance_categories),
                        ("karpenter.k8s.aws/instance-family", k.instance_families),
                        ("node.kubernetes.io/instance-type", k.instance_types)):
        if values:
            requirements.append(req(key, values))
    if p.gpu.resource in _GPU_MAKERS:
        requirements.append(req("karpenter.k8s.aws/instance-gpu-manufacturer", [_GPU_MAKERS[p.gpu.resource]]))
    requirements.append(req("karpenter.sh/capacity-type", k.capacity_types or ["on-demand"]))
    requirements += [req("kubernetes.io/arch", ["amd64"]), req("kubernetes.io/os", ["linux"])]
    node_labels = {names.PROFILE_LABEL: p.name}
    for key, value in p.node_selector.items():
        # The pods select these labels, so the pool's nodes must carry them.
        if key in _WELL_KNOWN or key.startswith("karpenter.k8s.aws/"):
            requirements.append(req(key, [value]))
        elif key != "karpenter.sh/nodepool":
            node_labels[key] = value
    limits: dict[str, Any] = {}
    if k.limit_gpus:
        limits[p.gpu.resource] = k.limit_gpus
    if k.limit_cpu:
        limits["cpu"] = k.limit_cpu
    data_volume: dict[str, Any] = {"volumeSize": k.data_volume_size, "volumeType": "gp3",
                                   "deleteOnTermination": True}
    if k.image_snapshot_id:
        data_volume["snapshotID"] = k.image_snapshot_id  # EBS forbids 'encrypted' with a snapshot
    else:
        data_volume["encrypted"] = True
    return {
        "name": pool_name(p),
        "weight": k.weight,
        "limits": limits,
        "consolidate_after": k.consolidate_after,
        "node_labels": node_labels,
        "requirements": requirements,
        "gpu_resource": p.gpu.resource,
        "grace": f"{cfg.jobs.max_walltime}s",
        "ami_alias": k.ami_alias,
        "data_volume": data_volume,
        "tags": {names.PROFILE_LABEL: p.name},
    }


def _expander_priorities(cfg: Config) -> str:
    """The expander's YAML: each GPU node group (named after its pool) by weight; every other group at 0."""
    import yaml

    by_weight: dict[int, list[str]] = {}
    for p in gpu_profiles(cfg):
        # Pool names are DNS labels: nothing in them is special in a regular expression.
        by_weight.setdefault(p.karpenter.weight, []).append(f".*{pool_name(p)}.*")
    by_weight.setdefault(0, []).append(".*")
    return yaml.safe_dump(dict(sorted(by_weight.items(), reverse=True)), sort_keys=False)


# --- the public surface ----------------------------------------------------------------------------


def objects(cfg: Config, renderer: Renderer | None = None) -> list[dict[str, Any]]:
    """Every cluster-scoped object the site applies, validated against cluster.kubernetes_version."""
    r = renderer or Renderer(cfg.templates.site_dir, cfg.cluster.kubernetes_version)
    out: list[dict[str, Any]] = []
    for template, context in contexts(cfg).items():
        out.extend(r.objects(template, **context))
    return out


def eksctl_config(cfg: Config) -> dict[str, Any]:
    """The cluster's OIDC identity provider as an eksctl ClusterConfig fragment (``eksctl associate
    identityprovider -f``): ID tokens whose username claim is the portal username, prefixed exactly as
    the hook's RoleBindings name the user."""
    if cfg.auth.mode == "cognito":
        from ood_k8s.cloud.aws.cognito import issuer

        issuer_url, client_id = issuer(cfg), cfg.auth.cognito.client_id
        username_claim, groups_claim = "cognito:username", "cognito:groups"
    else:
        o = cfg.auth.oidc
        issuer_url, client_id, username_claim, groups_claim = o.issuer, o.client_id, o.username_claim, o.groups_claim
    return {
        "apiVersion": "eksctl.io/v1alpha5",
        "kind": "ClusterConfig",
        "metadata": {"name": eks_name(cfg), "region": cfg.cluster.aws_region},
        "identityProviders": [{
            "name": IDENTITY_PROVIDER,
            "type": "oidc",
            "issuerUrl": issuer_url,
            "clientId": client_id,
            "usernameClaim": username_claim,
            "usernamePrefix": cfg.users.rbac_username_prefix,
            "groupsClaim": groups_claim,
            "groupsPrefix": cfg.users.rbac_groups_prefix,
        }],
    }


def node_groups(cfg: Config) -> dict[str, Any]:
    """For cluster-autoscaler sites: per GPU profile, what its node group (ASG) must carry so the
    autoscaler can scale it from zero and the pods land on it.  Empty for other sites."""
    if cfg.cluster.autoscaler != "cluster-autoscaler":
        return {}
    eks = eks_name(cfg)
    groups: dict[str, Any] = {}
    for p in gpu_profiles(cfg):
        res = p.gpu.resource
        labels = {k: v for k, v in p.node_selector.items() if k != "karpenter.sh/nodepool"}
        tags = {
            "k8s.io/cluster-autoscaler/enabled": "true",
            f"k8s.io/cluster-autoscaler/{eks}": "owned",
            f"k8s.io/cluster-autoscaler/node-template/resources/{res}": str(p.gpu.max),
            f"k8s.io/cluster-autoscaler/node-template/taint/{res}": "true:NoSchedule",
        }
        tags.update({f"k8s.io/cluster-autoscaler/node-template/label/{k}": v for k, v in labels.items()})
        groups[pool_name(p)] = {
            "profile": p.name,
            "instanceTypes": list(p.karpenter.instance_types),
            "labels": labels,
            "taints": [{"key": res, "value": "true", "effect": "NoSchedule"}],
            "tags": tags,
            # Launch template: IMDSv2 only, one hop -- pods cannot reach the node's IAM role.
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        }
    return {"nodeGroups": groups}

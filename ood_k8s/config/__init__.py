"""Site configuration: every setting ood-k8s has, declared once, with its documentation.

The file is ``/etc/ood/config/ood_k8s.yml`` unless ``--config`` or ``$OOD_K8S_CONFIG`` names
another; ``-`` reads standard input.  When the default file does not exist the built-in default
below is used, which is complete and valid (it is what ``make demo`` renders).

Each setting is declared with :func:`setting` in a :func:`section` class: its default, ``doc``
(shown by ``ood-k8s config example``), optionally ``check`` (a function returning an error text or
``None``) and ``secret`` (never printed).  :func:`load` reports *every* problem at once, one line
each, naming the key path, the bad value and what was expected.  Unknown keys are errors: a typo
must not silently fall back to a default.

When root loads a root-owned file (the hook at each login, ``ood-k8s config check``), it leaves
``<file>.cache.json`` beside it: the parsed data, the exact text it came from and which code
validated it.  Every later load whose file text is identical reads that instead of parsing YAML --
OOD starts a process per status poll -- and builds the settings from it (skipping only the
cross-key checks that same code already passed); any edit makes the cache stale until root loads
the file again.  Deleting the cache is always safe (see :func:`read_yaml`).

This module does not postpone annotations (no ``from __future__ import annotations``): the loader
reads the section classes' annotations as types, and evaluating them from strings would cost every
poll a compile per setting.  So they are written as Python 3.9 evaluates them: ``Optional[X]``,
not ``X | None``.
"""

import os
import re
import sys
import typing
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Literal, Optional

from ood_k8s.core.errors import ConfigError

DEFAULT_PATH = "/etc/ood/config/ood_k8s.yml"
ENV_VAR = "OOD_K8S_CONFIG"
SECRET_MASK = "<redacted>"  # noqa: S105 - what is printed instead of a secret

# --- value checks ------------------------------------------------------------------------------

# Compiled on first use (re caches them): a process checks only the values its file sets.
_QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_RESOURCE_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


def check_quantity(value: str) -> Optional[str]:
    if value == "" or re.match(_QUANTITY, str(value)):
        return None
    return "a Kubernetes quantity such as 500m, 2, 8Gi"


def check_dns_label(value: str) -> Optional[str]:
    if re.match(_DNS_LABEL, value) and len(value) <= 63:
        return None
    return "a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters"


def check_prefix(value: str) -> Optional[str]:
    if value == "" or (re.match(r"^[a-z0-9][-a-z0-9]*$", value) and len(value) <= 20):
        return None
    return "empty or lowercase letters, digits and '-' (at most 20 characters), e.g. 'ood-'"


def check_csi_driver(value: str) -> Optional[str]:
    if len(value) <= 63 and all(re.match(_DNS_LABEL, part) for part in value.split(".")):
        return None
    return "a CSI driver name such as secrets-store.csi.k8s.io (lowercase, at most 63 characters)"


def check_resource_name(value: str) -> Optional[str]:
    return None if re.match(_RESOURCE_NAME, value) else "an extended resource name such as nvidia.com/gpu"


def check_cidr(value: str) -> Optional[str]:
    import ipaddress  # deferred: only checked when a file sets portal_cidrs

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "a CIDR such as 10.0.0.0/16"
    return None


def check_abs_path(value: str) -> Optional[str]:
    return None if value == "" or value.startswith("/") else "an absolute path"


def check_url(value: str) -> Optional[str]:
    return None if value == "" or re.match(r"^https?://[^\s/]+", value) else "an http(s) URL"


def check_user_template(value: str) -> Optional[str]:
    if value and "{user}" not in value and "{slug}" not in value:
        return "a template containing {user} or {slug}"
    try:
        value.format(user="u", slug="u", uid=1, gid=1)
    except (KeyError, IndexError, ValueError):
        return "a template using only {user}, {slug}, {uid} and {gid}"
    return None


def check_positive(value: float) -> Optional[str]:
    return None if value > 0 else "a number greater than 0"


def check_non_negative(value: float) -> Optional[str]:
    return None if value >= 0 else "a number >= 0"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a setting every entry must give (a profile's name)


class Setting:
    """One setting of a section: default (or a factory of it), documentation, value check, secrecy.

    ``internal`` settings (where a configuration was read from) are neither read from files, nor
    printed, nor compared.
    """

    __slots__ = ("check", "default", "doc", "factory", "internal", "name", "secret")

    def __init__(self, default: Any, doc: str, check: Optional[Callable[[Any], Optional[str]]], secret: bool,
                 factory: Optional[Callable[[], Any]], internal: bool) -> None:
        self.name = ""  # set by @section
        self.default, self.factory, self.doc, self.check = default, factory, doc, check
        self.secret, self.internal = secret, internal

    @property
    def required(self) -> bool:
        return self.factory is None and self.default is REQUIRED

    def initial(self) -> Any:
        """The value of this setting when nothing sets it."""
        if self.factory is not None:
            return self.factory()
        if self.default is REQUIRED:
            raise TypeError(f"missing required argument: '{self.name}'")
        return self.default


def setting(default: Any = REQUIRED, doc: str = "", *, check: Optional[Callable[[Any], Optional[str]]] = None,
            secret: bool = False, factory: Optional[Callable[[], Any]] = None, internal: bool = False) -> Any:
    return Setting(default, doc, check, secret, factory, internal)


if TYPE_CHECKING:
    from dataclasses import dataclass as section
else:

    def section(cls: type) -> type:
        """Make ``cls`` a section of settings: its ``setting(...)`` attributes, in order, become
        ``__settings__``, and it gets a keyword ``__init__``, ``__repr__`` and ``__eq__`` over them.

        The sections were dataclasses; the standard decorator imports ``inspect`` and compiles three
        methods per class from source, ~20 ms of every OOD status poll for the 22 classes below.
        :func:`fields`, :func:`replace` and :func:`is_section` stand in for dataclasses' functions.
        Type checkers see ``dataclass``, which means the same for these classes.
        """
        settings = []
        for name, value in list(vars(cls).items()):
            if isinstance(value, Setting):
                value.name = name
                settings.append(value)
                delattr(cls, name)  # instances hold the values
        unset = set(cls.__annotations__) - {s.name for s in settings}
        if unset:
            raise TypeError(f"{cls.__name__}: {', '.join(sorted(unset))} must be declared with setting()")
        cls.__settings__ = tuple(settings)
        cls.__init__, cls.__repr__, cls.__eq__, cls.__hash__ = _init, _repr, _eq, None
        return cls

    def _init(self: Any, *args: Any, **values: Any) -> None:
        settings = self.__settings__
        if len(args) > len(settings):
            raise TypeError(f"{type(self).__qualname__}() takes {len(settings)} arguments, {len(args)} were given")
        for s, value in zip(settings, args):
            if s.name in values:
                raise TypeError(f"{type(self).__qualname__}() got multiple values for argument '{s.name}'")
            values[s.name] = value
        for s in settings:
            setattr(self, s.name, values.pop(s.name) if s.name in values else s.initial())
        if values:
            raise TypeError(f"{type(self).__qualname__}() got an unexpected keyword argument '{next(iter(values))}'")

    def _repr(self: Any) -> str:
        shown = ", ".join(f"{s.name}={getattr(self, s.name)!r}" for s in self.__settings__ if not s.internal)
        return f"{type(self).__qualname__}({shown})"

    def _eq(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, s.name) == getattr(other, s.name) for s in self.__settings__ if not s.internal)


def fields(obj: Any) -> tuple[Setting, ...]:
    """The settings of a section class or instance, in declaration order."""
    return obj.__settings__  # type: ignore[no-any-return]


def is_section(obj: Any) -> bool:
    """True for a section class or instance (what :func:`section` made)."""
    return hasattr(obj, "__settings__")


_S = typing.TypeVar("_S")


def replace(obj: _S, **changes: Any) -> _S:
    """A copy of the section ``obj`` with ``changes`` (as ``dataclasses.replace``)."""
    values = {s.name: getattr(obj, s.name) for s in fields(obj)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no setting '{sorted(unknown)[0]}'")
    values.update(changes)
    return type(obj)(**values)


# --- the schema --------------------------------------------------------------------------------


@section
class ClusterConfig:
    name: str = setting("eks", "Short name of the cluster; part of kubeconfig context and OOD cluster names.",
                        check=check_dns_label)
    server: str = setting("https://kubernetes.example.edu:6443",
                          "API server URL. Empty: take server and credentials from 'kubeconfig'.",
                          check=check_url)
    certificate_authority: str = setting("", "PEM file of the API server's CA. Empty: system trust store.",
                                         check=check_abs_path)
    kubeconfig: str = setting("", "Kubeconfig used when 'server' is empty (e.g. on an admin workstation).")
    context: str = setting("", "Context in 'kubeconfig' to use. Empty: its current-context.")
    provisioner_kubeconfig: str = setting(
        "/etc/ood/config/ood_k8s/provisioner.kubeconfig",
        "Root-only kubeconfig of the identity the hook and admin commands use to provision users.",
        check=check_abs_path)
    kubernetes_version: str = setting("1.33", "Kubernetes minor version; objects are validated against its "
                                      "OpenAPI schema.", check=lambda v: None if re.match(r"^1\.\d+$", v)
                                      else "a version such as 1.33")
    request_timeout: float = setting(10.0, "Seconds before one API request is abandoned.", check=check_positive)
    retries: int = setting(4, "Retries on 429, 5xx and connection errors (with backoff, honouring Retry-After).",
                           check=check_non_negative)
    connection: Literal["pod_ip", "nodeport"] = setting(
        "pod_ip", "How the portal reaches a session: 'pod_ip' (routable pod IPs, EKS VPC CNI) or 'nodeport' (a "
        "NodePort Service per session with externalTrafficPolicy Local: it answers on the session's node, and the "
        "portal's own address reaches the pod, so portal_cidrs still apply).")
    nodeport_host: Literal["host_ip", "node_name"] = setting(
        "node_name", "With connection: nodeport, the host given to OOD: the node's name or its IP.")
    portal_cidrs: List[str] = setting(doc="Networks the portal's reverse proxy connects from (NetworkPolicy).",
                                      factory=lambda: ["10.0.0.0/16"], check=check_cidr)
    aws_region: str = setting("us-east-1", "AWS region of the cluster (EKS settings, Karpenter).")
    eks_name: str = setting("", "Name of the EKS cluster (Karpenter discovery tags and node role, the eksctl "
                            "fragment, doctor's identity-provider check). Empty: cluster.name.")
    autoscaler: Literal["karpenter", "cluster-autoscaler", "none"] = setting(
        "karpenter", "What adds GPU nodes: Karpenter (a NodePool and EC2NodeClass per GPU profile), the cluster "
        "autoscaler (node-group tags and its priority expander) or none (fixed nodes). See 'ood-k8s cluster render'.")
    karpenter_node_role: str = setting("", "IAM role of the nodes Karpenter launches (EC2NodeClass role). Empty: "
                                       "KarpenterNodeRole-<eks_name>, as Karpenter's getting-started guide names it.")
    provisioner_subject: str = setting(
        "User:ood-k8s-provisioner", "Who provisioner_kubeconfig authenticates as; bound to the provisioner "
        "ClusterRole: 'User:NAME', 'Group:NAME' or 'ServiceAccount:NAMESPACE/NAME' (on EKS: the Kubernetes "
        "username of the portal's IAM access entry).",
        check=lambda v: None if re.match(r"^((User|Group):[^\s:][^\s]*|ServiceAccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?"
                                         r"/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$", v)
        else "'User:NAME', 'Group:NAME' or 'ServiceAccount:NAMESPACE/NAME'")


@section
class PortalConfig:
    name: str = setting("ood", "Short name of this portal; dev and prod portals on one cluster need "
                        "different names so their kubeconfig contexts do not clobber each other.",
                        check=check_dns_label)
    cluster_id: str = setting("kubernetes", "Name of the OOD cluster file (clusters.d/<cluster_id>.yml).",
                              check=check_dns_label)
    host_regex: str = setting(r"10\.\d{1,3}\.\d{1,3}\.\d{1,3}",
                              "OOD's host_regex: the only hosts its /node/ reverse proxy will reach. Keep it to the "
                              "pod network (or node names with connection: nodeport); '[^/]+' would let any user "
                              "proxy to any host the portal can reach.")
    submit_host: str = setting("", "submit_host reported to OOD. Empty: this machine's host name.")
    python: str = setting("", "Interpreter to name in generated OOD files. Empty: the one running ood-k8s.")
    url: str = setting("", "Public URL of the portal (https://ondemand.example.edu). Jupyter sessions accept "
                       "browser connections (kernels, terminals) only from its origin. Empty: from any origin, "
                       "as OOD's own Jupyter app does.", check=check_url)


@section
class QuotaConfig:
    pods: int = setting(4, "Pods per user at once.", check=check_non_negative)
    cpu: str = setting("16", "Total CPU requested by a user's pods.", check=check_quantity)
    memory: str = setting("64Gi", "Total memory requested by a user's pods.", check=check_quantity)
    gpus: int = setting(2, "Total GPUs (of every resource named by a profile) a user may hold.",
                        check=check_non_negative)
    node_ports: int = setting(2, "NodePort services per user (connection: nodeport).", check=check_non_negative)
    persistent_volume_claims: int = setting(4, "Claims per user namespace.", check=check_non_negative)


@section
class LimitsConfig:
    default_cpu: str = setting("1", "CPU limit of a container that sets none.", check=check_quantity)
    default_memory: str = setting("2Gi", "Memory limit of a container that sets none.", check=check_quantity)
    default_request_cpu: str = setting("250m", "CPU request of a container that sets none.", check=check_quantity)
    default_request_memory: str = setting("1Gi", "Memory request of a container that sets none.",
                                          check=check_quantity)
    max_cpu: str = setting("96", "Largest CPU limit of one container.", check=check_quantity)
    max_memory: str = setting("768Gi", "Largest memory limit of one container.", check=check_quantity)


@section
class ImagePullSecretConfig:
    name: str = setting("", "Name of the pull secret created in every user namespace. Empty: none.")
    dockerconfigjson: str = setting("", "Contents of the .dockerconfigjson for that secret.", secret=True)


@section
class UsersConfig:
    namespace_prefix: str = setting("ood-", "Prefix of every user namespace.", check=check_prefix)
    rbac_username_prefix: str = setting("ood:", "Prefix the API server puts before the OIDC username claim; "
                                        "RoleBindings name exactly '<prefix><username>'.")
    rbac_groups_prefix: str = setting("ood:", "Prefix the API server puts before the OIDC groups claim.")
    cluster_role: str = setting("ood-user", "ClusterRole bound to each user in their own namespace.",
                                check=check_dns_label)
    min_uid: int = setting(1000, "Users below this uid are refused (system accounts).", check=check_positive)
    allowed_groups: List[str] = setting(doc="Unix groups allowed to use the cluster. Empty: every user.",
                                        factory=list)
    kubeconfig: str = setting(".kube/config", "Kubeconfig written for each user, relative to their home.")
    token_cache_dir: str = setting("/var/lib/ood-k8s/tokens", "Per-user token caches on the portal's LOCAL "
                                   "disk (never a home directory that pods can see).", check=check_abs_path)
    pod_security: Literal["restricted", "baseline", "privileged"] = setting(
        "restricted", "Pod Security level enforced on user namespaces (hostpath homes need 'privileged').")
    quota: QuotaConfig = setting(doc="ResourceQuota of every user namespace.", factory=QuotaConfig)
    limits: LimitsConfig = setting(doc="LimitRange of every user namespace.", factory=LimitsConfig)
    image_pull_secret: ImagePullSecretConfig = setting(doc="Optional registry credentials.",
                                                       factory=ImagePullSecretConfig)


@section
class CognitoConfig:
    region: str = setting("us-east-1", "Region of the user pool.")
    user_pool_id: str = setting("us-east-1_EXAMPLE", "Cognito user pool id.")
    client_id: str = setting("exampleclientid0123456789", "App client id: a PUBLIC client (no secret) with "
                             "ADMIN_USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH enabled; it is the 'aud' of "
                             "the ID tokens the API server accepts.")
    endpoint_url: str = setting("", "Override of the Cognito endpoint (VPC endpoint; tests).", check=check_url)
    attributes: Dict[str, str] = setting(doc="User attributes set at creation; values may use {user}.",
                                         factory=lambda: {"email": "{user}@example.edu"})
    group_map: Dict[str, str] = setting(doc="Unix group -> Cognito group. Membership is mirrored at each "
                                        "provisioning; the groups reach the API server's groups claim.",
                                        factory=dict)
    refresh_token_days: int = setting(30, "Refresh token validity of the app client, in days.",
                                      check=check_positive)


@section
class OidcConfig:
    issuer: str = setting("", "Issuer URL of the portal's own OIDC provider (auth.mode: oidc).",
                          check=check_url)
    client_id: str = setting("", "Client id the API server expects as 'aud'. It must be a public client: "
                             "refresh happens as the user, and no secret is ever written to a user's file.")
    token_endpoint: str = setting("", "Token endpoint. Empty: discovered from the issuer.", check=check_url)
    id_token_env: str = setting("OOD_OIDC_ID_TOKEN", "Hook variable holding the portal's ID token.")
    refresh_token_env: str = setting("OOD_OIDC_REFRESH_TOKEN", "Hook variable holding the refresh token.")
    refresh_token_days: int = setting(30, "Assumed refresh token lifetime when the provider does not say.",
                                      check=check_positive)
    username_claim: str = setting("preferred_username", "ID-token claim that equals the portal username: the "
                                  "API server's usernameClaim ('ood-k8s cluster render --only eksctl').")
    groups_claim: str = setting("groups", "ID-token claim listing the user's groups: the API server's groupsClaim.")


@section
class AuthConfig:
    mode: Literal["cognito", "oidc"] = setting("cognito", "Where ID tokens come from: Amazon Cognito "
                                               "(EKS) or the portal's own OIDC provider.")
    id_token_margin: int = setting(300, "Seconds before expiry at which a cached ID token is refreshed.",
                                   check=check_non_negative)
    credential_command: str = setting("", "Absolute path of the installed 'ood-k8s' command, written into users' "
                                      "kubeconfigs as their exec credential plugin. Empty: the one next to the "
                                      "running Python, else the one on PATH.",
                                      check=lambda v: None if v == "" or (v.startswith("/") and
                                                                          v.endswith("/ood-k8s"))
                                      else "an absolute path ending in /ood-k8s")
    cognito: CognitoConfig = setting(doc="Amazon Cognito settings (auth.mode: cognito).", factory=CognitoConfig)
    oidc: OidcConfig = setting(doc="Portal OIDC provider settings (auth.mode: oidc).", factory=OidcConfig)


@section
class HookConfig:
    on_failure: Literal["open", "closed"] = setting(
        "open", "When the cluster or identity provider is down: 'open' lets the portal start without "
        "Kubernetes access (exit 0, logged); 'closed' exits non-zero (OOD still starts the PUN; it only logs).")
    syslog_facility: str = setting("authpriv", "Syslog facility of hook messages.")
    syslog_ident: str = setting("ood-k8s-hook", "Syslog identifier.")
    lock_dir: str = setting("/run/lock/ood-k8s", "Root-only directory of per-user lock files, so two hooks "
                            "(or a hook and 'ood-k8s user sync') for one user never interleave.",
                            check=check_abs_path)


@section
class Range:
    default: str = setting("1", "Used when the form asks for nothing.", check=check_quantity)
    max: str = setting("4", "Largest value a user may ask for.", check=check_quantity)


@section
class GpuConfig:
    resource: str = setting("nvidia.com/gpu", "Extended resource name.", check=check_resource_name)
    default: int = setting(0, "GPUs when the form asks for none.", check=check_non_negative)
    max: int = setting(0, "Most GPUs one session may ask for.", check=check_non_negative)


@section
class KarpenterConfig:
    instance_categories: List[str] = setting(doc="karpenter.k8s.aws/instance-category values.", factory=list)
    instance_families: List[str] = setting(doc="karpenter.k8s.aws/instance-family values.", factory=list)
    instance_types: List[str] = setting(doc="node.kubernetes.io/instance-type values.", factory=list)
    capacity_types: List[str] = setting(doc="karpenter.sh/capacity-type values.",
                                        factory=lambda: ["on-demand"])
    weight: int = setting(10, "NodePool weight (higher is tried first).", check=check_non_negative)
    limit_gpus: int = setting(0, "Most GPUs the pool may hold in all (0: no limit).", check=check_non_negative)
    limit_cpu: str = setting("", "Most CPU the pool may hold in all (empty: no limit).", check=check_quantity)
    image_snapshot_id: str = setting("", "EBS snapshot holding pre-pulled notebook images (Bottlerocket "
                                     "data volume), so cold starts take seconds.")
    ami_alias: str = setting("bottlerocket@latest", "EC2NodeClass amiSelectorTerms alias; pin a version "
                             "(e.g. bottlerocket@v1.26.0) in production so new AMIs do not replace nodes.",
                             check=lambda v: None if re.match(r"^(bottlerocket|al2023)@[A-Za-z0-9.\-]+$", v)
                             else "an alias such as bottlerocket@latest or bottlerocket@v1.26.0")
    data_volume_size: str = setting("100Gi", "Size of the node's data volume holding container images (at least "
                                    "the snapshot's size).",
                                    check=lambda v: None if re.match(r"^[1-9][0-9]{0,4}(Gi|G|Ti|T)$", v)
                                    else "a size in Gi, G, Ti or T such as 100Gi")
    consolidate_after: str = setting("10m", "How long an empty GPU node waits for the next session before "
                                     "Karpenter removes it.",
                                     check=lambda v: None if re.match(r"^(([0-9]+(s|m|h))+|Never)$", v)
                                     else "a duration such as 10m, 1h30m or Never")


@section
class Profile:
    name: str = setting(REQUIRED, "Profile name users pick in the form.", check=check_dns_label)
    image: str = setting(REQUIRED, "Container image of the session.")
    description: str = setting("", "Shown in the form.")
    cpu: Range = setting(doc="CPU cores.", factory=lambda: Range("1", "4"))
    memory: Range = setting(doc="Memory.", factory=lambda: Range("4Gi", "16Gi"))
    gpu: GpuConfig = setting(doc="GPUs.", factory=GpuConfig)
    node_selector: Dict[str, str] = setting(doc="Node labels the pod must land on.", factory=dict)
    node_pool: str = setting("", "Karpenter NodePool to land on (adds karpenter.sh/nodepool to the selector).")
    tolerations: List[Dict[str, Any]] = setting(doc="Pod tolerations (GPU pools add nvidia.com/gpu "
                                                "automatically).", factory=list)
    affinity: Dict[str, Any] = setting(doc="Pod affinity, as in a pod spec.", factory=dict)
    priority_class: str = setting("", "PriorityClass of the session pods.")
    runtime_class: str = setting("", "RuntimeClass (e.g. 'nvidia').")
    shm_size: str = setting("", "Size of a memory-backed /dev/shm (deep-learning data loaders). Empty: "
                            "the runtime's 64Mi.", check=check_quantity)
    whole_node: bool = setting(False, "Request the profile's maxima so the pod owns its node.")
    groups: List[str] = setting(doc="Unix groups allowed to use the profile. Empty: every user.",
                                factory=list)
    karpenter: KarpenterConfig = setting(doc="Node pool rendered for this profile by 'ood-k8s cluster "
                                         "render' (GPU profiles).", factory=KarpenterConfig)


def _default_profiles() -> List[Profile]:
    return [
        Profile(name="cpu", description="CPU only", image="quay.io/jupyter/scipy-notebook:2025-10-20",
                cpu=Range("1", "8"), memory=Range("4Gi", "32Gi")),
        Profile(name="gpu-t4", description="1 NVIDIA T4 (16 GB)",
                image="quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20",
                cpu=Range("4", "4"), memory=Range("16Gi", "16Gi"), gpu=GpuConfig("nvidia.com/gpu", 1, 1),
                node_pool="gpu-t4", shm_size="8Gi", runtime_class="",
                karpenter=KarpenterConfig(instance_types=["g4dn.xlarge"], limit_gpus=40,
                                          image_snapshot_id="")),
        Profile(name="gpu-a10g", description="Up to 4 NVIDIA A10G (24 GB), whole node",
                image="quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20",
                cpu=Range("8", "44"), memory=Range("32Gi", "180Gi"), gpu=GpuConfig("nvidia.com/gpu", 1, 4),
                node_pool="gpu-a10g", shm_size="32Gi", whole_node=False, groups=["gpu-users"],
                karpenter=KarpenterConfig(instance_families=["g5"], instance_categories=["g"], limit_gpus=16)),
    ]


@section
class JobsConfig:
    default_profile: str = setting("cpu", "Profile used when the app names none.")
    default_walltime: int = setting(3600, "Seconds a session lasts when the app gives no wall time.",
                                    check=check_positive)
    max_walltime: int = setting(8 * 3600, "Longest session, in seconds (enforced by the cluster).",
                                check=check_positive)
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = setting("IfNotPresent",
                                                                             "Image pull policy.")
    labels: Dict[str, str] = setting(doc="Extra labels on every job object.", factory=dict)
    annotations: Dict[str, str] = setting(doc="Extra annotations on every job pod.", factory=dict)
    env: Dict[str, str] = setting(doc="Extra environment variables in every session.", factory=dict)
    pull_failure_grace: int = setting(120, "Seconds an image may fail to pull before the session is ended "
                                      "with the cause (a missing image ends it at once).",
                                      check=check_non_negative)
    csi_drivers: List[str] = setting(
        doc="Drivers of the inline CSI volumes sessions may mount (native 'csi' mounts), for every user. Empty: "
        "none. The driver decides what its volume attributes can reach: allow only drivers that keep a user "
        "inside their own namespace (secrets-store.csi.k8s.io reads the namespace's SecretProviderClass), never "
        "one whose attributes name any path (efs.csi.aws.com, nfs.csi.k8s.io). The admission guard and submit "
        "both enforce the list.", factory=list, check=check_csi_driver)


@section
class EfsConfig:
    file_system_id: str = setting("fs-0123456789abcdef0", "EFS file system id.")
    region: str = setting("us-east-1", "Region of the file system.")
    endpoint_url: str = setting("", "Override of the EFS endpoint (tests).", check=check_url)
    root_directory: str = setting("/home/{user}", "Access point root directory template.",
                                  check=check_user_template)
    mount_options: List[str] = setting(doc="PV mountOptions (access points need 'tls').", factory=lambda: ["tls"])


@section
class NfsConfig:
    server: str = setting("nfs.example.edu", "NFS server.")
    path: str = setting("/export/home/{user}", "Export path template.", check=check_user_template)
    mount_options: List[str] = setting(doc="PV mountOptions.", factory=lambda: ["nfsvers=4.1", "hard"])


@section
class PvcConfig:
    claim_name: str = setting("home-{user}", "Existing claim per user, by name template: {user} (the "
                              "username as it is), {slug} (its DNS-label form, as in the namespace name: use it "
                              "when usernames may have uppercase, '.' or '@'), {uid}, {gid}.",
                              check=check_user_template)


@section
class ExtraMount:
    name: str = setting(REQUIRED, "Volume name.", check=check_dns_label)
    mount_path: str = setting(REQUIRED, "Where it appears in the session.", check=check_abs_path)
    claim_name: str = setting(REQUIRED, "A claim in the user's namespace (may use {user}, {slug} "
                              "-- the username's DNS-label form, safe in names --, {uid}, {gid}).")
    read_only: bool = setting(True, "Mount read-only.")
    sub_path: str = setting("", "Sub-path of the volume (may use {user}, {slug}, {uid}, {gid}).")


@section
class StorageConfig:
    mode: Literal["efs", "nfs", "pvc", "hostpath", "none"] = setting(
        "efs", "How $HOME reaches the pods: per-user EFS access point, static NFS PV, an existing claim, "
        "node-mounted hostPath (legacy; needs pod_security privileged) or none.")
    capacity: str = setting("100Gi", "Nominal size of home PVs (EFS and NFS do not enforce it).",
                            check=check_quantity)
    create_home: bool = setting(True, "Create a missing home directory on the portal (0700, uid:gid).")
    home_root: str = setting("/home", "Directory under which the portal may create homes; a home "
                             "elsewhere is never created.", check=check_abs_path)
    skeleton_dir: str = setting("/etc/skel", "Copied into a home created by ood-k8s (only then).",
                                check=check_abs_path)
    efs: EfsConfig = setting(doc="storage.mode: efs.", factory=EfsConfig)
    nfs: NfsConfig = setting(doc="storage.mode: nfs.", factory=NfsConfig)
    pvc: PvcConfig = setting(doc="storage.mode: pvc.", factory=PvcConfig)
    extra_mounts: List[ExtraMount] = setting(doc="Site-wide claims mounted in every session (projects, "
                                             "scratch, datasets).", factory=list)


@section
class TemplatesConfig:
    site_dir: str = setting("/etc/ood/config/ood_k8s/templates", "Site templates, searched before the "
                            "built-in ones (same file names).", check=check_abs_path)


@section
class Config:
    cluster: ClusterConfig = setting(doc="The Kubernetes cluster.", factory=ClusterConfig)
    portal: PortalConfig = setting(doc="This Open OnDemand portal.", factory=PortalConfig)
    users: UsersConfig = setting(doc="What every user gets.", factory=UsersConfig)
    auth: AuthConfig = setting(doc="Identity: how users obtain Kubernetes credentials.", factory=AuthConfig)
    hook: HookConfig = setting(doc="The per-login hook.", factory=HookConfig)
    jobs: JobsConfig = setting(doc="Sessions.", factory=JobsConfig)
    profiles: List[Profile] = setting(doc="Session profiles (CPU and each GPU type).",
                                      factory=_default_profiles)
    storage: StorageConfig = setting(doc="Home directories.", factory=StorageConfig)
    templates: TemplatesConfig = setting(doc="Template search path.", factory=TemplatesConfig)
    source: str = setting("<built-in default>", "Where this configuration was read from.", internal=True)

    def profile(self, name: str) -> Profile:
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(name)


# --- loading -------------------------------------------------------------------------------------

def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}s"
    if origin is dict:
        return "a mapping"
    if origin is typing.Union:
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if is_section(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(tp: Any, value: Any, path: str, problems: List[str], check: Optional[Callable] = None) -> Any:
    origin = typing.get_origin(tp)
    bad = object()
    result: Any = bad
    if is_section(tp):
        if isinstance(value, dict):
            return _build(tp, value, path, problems)
    elif origin is Literal:
        if value in typing.get_args(tp):
            result = value
    elif origin is list:
        if isinstance(value, list):
            (item_tp,) = typing.get_args(tp)
            return [_convert(item_tp, v, f"{path}[{i}]", problems, check) for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            _, val_tp = typing.get_args(tp)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    problems.append(f"{path}: key {_show(k)} is not a string")
                    continue
                out[k] = _convert(val_tp, v, f"{path}.{k}", problems)
            return out
    elif tp is Any:
        result = value
    elif tp is bool:
        if isinstance(value, bool):
            result = value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
    elif tp is str:
        # YAML turns 16 or 1.5 into numbers; for quantities and ids a number is what was meant.
        if isinstance(value, str):
            result = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            result = str(value)
    if result is bad:
        problems.append(f"{path}: got {_show(value)}, expected {_describe(tp)}")
        return None
    if check is not None:
        err = check(result)
        if err:
            problems.append(f"{path}: got {_show(value)}, expected {err}")
    return result


def _build(cls: type, data: Dict[str, Any], path: str, problems: List[str]) -> Any:
    hints = cls.__annotations__
    known = {s.name: s for s in fields(cls) if not s.internal}
    kwargs: Dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in known:
            import difflib  # deferred: only for the error message

            close = difflib.get_close_matches(str(key).replace("-", "_").lower(), list(known), n=1)
            suggestion = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{where}: unknown key{suggestion}; expected one of: {', '.join(known)}")
            continue
        kwargs[key] = _convert(hints[key], value, where, problems, known[key].check)
    for name, s in known.items():
        if name not in kwargs and s.required:
            problems.append(f"{path + '.' if path else ''}{name}: missing, expected {_describe(hints[name])}")
            kwargs[name] = None
    return cls(**kwargs)


def _cross_checks(cfg: Config, problems: List[str]) -> None:
    """Rules that involve more than one key."""
    names = [p.name for p in cfg.profiles]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"profiles: got name {dup!r} twice, expected unique profile names")
    if cfg.profiles and cfg.jobs.default_profile not in names:
        problems.append(f"jobs.default_profile: got {cfg.jobs.default_profile!r}, expected one of {names}")
    if not cfg.profiles:
        problems.append("profiles: got an empty list, expected at least one profile")
    from ood_k8s.sessions.quantity import parse_quantity  # local: keeps config import light

    for i, p in enumerate(cfg.profiles):
        for key in ("cpu", "memory"):
            r: Range = getattr(p, key)
            try:
                if parse_quantity(r.default) > parse_quantity(r.max):
                    problems.append(f"profiles[{i}].{key}: got default {r.default} > max {r.max}, "
                                    "expected default <= max")
            except ValueError:
                pass  # already reported as a bad quantity
        if p.gpu.default > p.gpu.max:
            problems.append(f"profiles[{i}].gpu: got default {p.gpu.default} > max {p.gpu.max}, "
                            "expected default <= max")
    if cfg.jobs.default_walltime > cfg.jobs.max_walltime:
        problems.append(f"jobs.default_walltime: got {cfg.jobs.default_walltime}, expected <= "
                        f"jobs.max_walltime ({cfg.jobs.max_walltime})")
    if cfg.storage.mode == "hostpath" and cfg.users.pod_security != "privileged":
        problems.append("storage.mode: got 'hostpath', expected users.pod_security: privileged to go with it "
                        "(Pod Security 'restricted' and 'baseline' forbid hostPath volumes)")
    if cfg.auth.mode == "oidc":
        for key in ("issuer", "client_id"):
            if not getattr(cfg.auth.oidc, key):
                problems.append(f"auth.oidc.{key}: missing, expected a value when auth.mode is oidc")
    if cfg.cluster.server == "" and cfg.cluster.kubeconfig == "":
        problems.append("cluster.server: got '', expected a URL, or cluster.kubeconfig naming a kubeconfig")


def parse(data: Any, source: str = "<string>") -> Config:
    """Build a :class:`Config` from already-parsed YAML, raising one ConfigError listing every problem."""
    return _parse(data, source, cross_checks=True)


def _parse(data: Any, source: str, cross_checks: bool) -> Config:
    problems: List[str] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level is {type(data).__name__}, expected a mapping of settings")
    cfg = _build(Config, data, "", problems)
    if not problems and cross_checks:
        _cross_checks(cfg, problems)
    if problems:
        first = problems[0] if len(problems) == 1 else f"{len(problems)} problems, first: {problems[0]}"
        raise ConfigError(f"{source}: {first}", problems=problems)
    cfg.source = source
    return cfg


def resolve_path(explicit: Optional[str] = None) -> Optional[str]:
    """The config path to read: --config, then $OOD_K8S_CONFIG, then the default if it exists."""
    if explicit:
        return explicit
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    return DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None


def load(path: Optional[str] = None) -> Config:
    """Load the site configuration (see the module docstring for where it is looked for)."""
    resolved = resolve_path(path)
    if resolved is None:
        return Config()
    try:
        if resolved == "-":
            return parse(parse_yaml(sys.stdin.read()), "<stdin>")
        text, st = _read_text(resolved)
        cache = _read_cache(resolved, text, st)
        data = cache["data"] if cache is not None else parse_yaml(text)
    except OSError as exc:
        raise ConfigError(f"cannot read config {resolved}: {exc.strerror}",
                          f"create it (see 'ood-k8s config example') or point {ENV_VAR} at it") from None
    except YamlError as exc:
        where = f" line {exc.line}" if exc.line else ""
        raise ConfigError(f"{resolved}:{where} is not valid YAML: {exc.problem}") from None
    # A cache root wrote after this very code validated the data needs no cross-checks (they import
    # decimal, ~3 ms of every poll); anything else is checked in full.
    mark = _code_mark()
    checked = cache is not None and mark is not None and cache.get("checked") == mark
    cfg = _parse(data, resolved, cross_checks=not checked)
    if cache is None or (mark is not None and not checked):
        _write_cache(resolved, text, data, st, checked=mark)
    return cfg


# --- YAML files, compiled -------------------------------------------------------------------------

CACHE_SUFFIX = ".cache.json"  # /etc/ood/config/ood_k8s.yml -> /etc/ood/config/ood_k8s.yml.cache.json
_CACHE_VERSION = 1
_CACHE_MAX = 4 << 20


class YamlError(ValueError):
    """A file is not UTF-8 YAML: ``problem`` says why, ``line`` (1-based, or None) where."""

    def __init__(self, problem: str, line: Optional[int] = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def parse_yaml(text: str) -> Any:
    """YAML text -> data (safe loader, the C one when PyYAML has it); raises :class:`YamlError`."""
    import yaml  # deferred: read_yaml's cache usually makes it unnecessary

    from ood_k8s.render import yamlsafe

    try:
        return yamlsafe.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlError(str(getattr(exc, "problem", None) or exc), mark.line + 1 if mark else None) from None


def read_yaml(path: str) -> Any:
    """The data of the YAML file ``path``, through its compiled cache ``<path>.cache.json``.

    OOD starts a process per status poll, and importing PyYAML would be a quarter of it: when root
    reads a root-owned file (the hook at each login; ``ood-k8s config check``), the parsed data is
    left beside it with the exact text it came from.  Any process whose file text is identical
    uses the data instead of parsing -- no edit, however quick, is missed -- provided the cache is
    trusted as much as the file: a regular file (not a link) of the file's owner that nobody else
    may write.  Deleting a cache is always safe.  Raises OSError and :class:`YamlError`.
    """
    text, st = _read_text(path)
    cache = _read_cache(path, text, st)
    if cache is not None:
        return cache["data"]
    data = parse_yaml(text)
    _write_cache(path, text, data, st)
    return data


def _read_text(path: str) -> tuple[str, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        raw = fh.read()
    try:
        return raw.decode("utf-8"), st
    except UnicodeDecodeError:
        raise YamlError("it is not UTF-8 text") from None


def _code_mark() -> Optional[str]:
    """Names the code that validates configurations: a cache checked by other code is checked again."""
    from ood_k8s import __version__

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = [__version__]
    for name in ("config/__init__.py", "sessions/quantity.py"):
        try:
            st = os.stat(os.path.join(here, name))
        except OSError:
            return None  # installed without sources: always check
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return " ".join(parts)


def _read_cache(path: str, text: str, st: os.stat_result) -> Optional[Dict[str, Any]]:
    import json
    import stat

    try:
        fd = os.open(path + CACHE_SUFFIX, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        cst = os.fstat(fd)
        if not stat.S_ISREG(cst.st_mode) or cst.st_uid != st.st_uid or cst.st_mode & 0o022 or \
                cst.st_size > _CACHE_MAX:
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        cache = json.loads(b"".join(chunks))
    except ValueError:
        return None
    if not isinstance(cache, dict) or cache.get("version") != _CACHE_VERSION or cache.get("yaml") != text:
        return None
    return cache


def _write_cache(path: str, text: str, data: Any, st: os.stat_result, checked: Optional[str] = None) -> None:
    # Root only, and only for a root-owned file: readers trust a cache of the file's owner.
    # ``checked``: the data passed :func:`parse` with the code so named (_code_mark).
    if os.geteuid() != 0 or st.st_uid != 0:
        return
    import json
    import stat

    record: Dict[str, Any] = {"version": _CACHE_VERSION, "yaml": text, "data": data}
    if checked:
        record["checked"] = checked
    try:
        blob = json.dumps(record)
        if json.loads(blob)["data"] != data:
            return  # e.g. non-string keys inside 'affinity' (JSON would turn them into strings)
    except (TypeError, ValueError):
        return  # YAML timestamps, binary, NaN...
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.core.fsutil import atomic_write

    try:
        # Never more readable than the file: it may hold a secret (a token, image_pull_secret).
        atomic_write(path + CACHE_SUFFIX, blob.encode(), mode=stat.S_IMODE(st.st_mode) & 0o644, gid=st.st_gid)
    except (OSError, OodK8sError):
        pass  # a read-only directory, a link in the way: the YAML is parsed each time, that is all


# --- output --------------------------------------------------------------------------------------


def to_dict(obj: Any, redact: bool = True) -> Any:
    """Plain data for printing; secret settings are masked when set."""
    if is_section(obj):
        out = {}
        for s in fields(obj):
            if s.internal:
                continue
            value = getattr(obj, s.name)
            if redact and s.secret and value:
                out[s.name] = SECRET_MASK
            else:
                out[s.name] = to_dict(value, redact)
        return out
    if isinstance(obj, list):
        return [to_dict(v, redact) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v, redact) for k, v in obj.items()}
    return obj


def example() -> str:
    """A complete, commented configuration equal to the built-in default."""
    import json

    lines = ["# ood-k8s site configuration (/etc/ood/config/ood_k8s.yml).",
             "# Every key is optional; what is shown is the built-in default.",
             "# Check a file with: ood-k8s config check --config FILE"]

    def scalar(v: Any) -> str:
        return json.dumps(v)  # JSON scalars are valid YAML and quote everything that needs it

    def emit(obj: Any, indent: int) -> None:
        pad = "  " * indent
        for f in fields(obj):
            if f.internal:
                continue
            value = getattr(obj, f.name)
            doc = f.doc
            if is_section(value):
                lines.append(f"{pad}# {doc}" if doc else "")
                lines.append(f"{pad}{f.name}:")
                emit(value, indent + 1)
                continue
            if doc:
                lines.append(f"{pad}# {doc}")
            if f.secret:
                value = type(value)()
            if isinstance(value, list) and value and is_section(value[0]):
                lines.append(f"{pad}{f.name}:")
                for item in value:
                    start = len(lines)
                    emit(item, indent + 2)
                    # turn the first key line of the item into a list entry
                    for j in range(start, len(lines)):
                        if not lines[j].lstrip().startswith("#") and lines[j].strip():
                            lines[j] = "  " * (indent + 1) + "- " + lines[j].lstrip()
                            break
            elif isinstance(value, (list, dict)) and not value:
                lines.append(f"{pad}{f.name}: {'[]' if isinstance(value, list) else '{}'}")
            elif isinstance(value, list):
                lines.append(f"{pad}{f.name}:")
                lines.extend(f"{pad}  - {scalar(v)}" for v in value)
            elif isinstance(value, dict):
                lines.append(f"{pad}{f.name}:")
                lines.extend(f"{pad}  {scalar(k)}: {scalar(v)}" for k, v in value.items())
            else:
                lines.append(f"{pad}{f.name}: {scalar(value)}")

    emit(Config(), 0)
    return "\n".join(lines) + "\n"

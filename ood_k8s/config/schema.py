# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Every setting ood-k8s has, declared once: its section, default, documentation and check.

``ood-k8s config example`` prints this schema as a commented file; :mod:`ood_k8s.config.loader`
reads files against it.  A storage backend or identity provider declares its own section (and the
registered mode names are checked through their registries), so a mode is added without editing
the checks here.

Annotations are written as Python 3.9 evaluates them at import (``Optional[X]``, ``List[X]``): the
loader reads them as types (see :mod:`ood_k8s.config.section`).
"""

import re
from typing import Any, Dict, List, Literal

from ood_k8s.config.agent import AgentConfig
from ood_k8s.config.course import CapacityConfig, CourseConfig, UsageConfig
from ood_k8s.config.section import REQUIRED, section, setting
from ood_k8s.config.values import (
    check_abs_path,
    check_activity_probe,
    check_auth_mode,
    check_cidr,
    check_csi_driver,
    check_dns_label,
    check_non_negative,
    check_positive,
    check_prefix,
    check_quantity,
    check_resource_name,
    check_storage_mode,
    check_subject,
    check_url,
    check_user_template,
)


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
    portal_cidrs: List[str] = setting(doc="The portal's own addresses, from which its reverse proxy connects to "
                                      "sessions (NetworkPolicy ingress): a /32 per portal host. Must not overlap "
                                      "pod_cidrs, or every pod could reach every session.",
                                      factory=lambda: ["10.0.0.10/32"], check=check_cidr)
    pod_cidrs: List[str] = setting(doc="The pod network (the VPC subnets pods take addresses from on the VPC CNI). "
                                   "'config check' refuses portal_cidrs that overlap it.",
                                   factory=lambda: ["10.0.64.0/18"], check=check_cidr)
    strict_supplemental_groups: Literal["auto", "on", "off"] = setting(
        "auto", "Session pods set supplementalGroupsPolicy Strict (the image's /etc/group adds no groups) and the "
        "admission guard requires it: 'on' needs Kubernetes 1.31+ with the feature gate (on by default from "
        "1.33) and containerd 2.0+ on the nodes; 'auto' is 'on' from 1.33.")
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
        check=check_subject)


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
    # OOD's psij adapter waits for ood-k8s-psij with no timeout: a dashboard page waits as long as it does.
    poll_deadline: float = setting(5.0, "Seconds a status poll (ood-k8s-psij get_info) may take; then the card "
                                   "shows the session as undetermined, with the reason.", check=check_positive)
    submit_deadline: float = setting(30.0, "Seconds a launch (ood-k8s-psij submit) may take before it gives up "
                                     "with one line.", check=check_positive)
    delete_deadline: float = setting(10.0, "Seconds a delete, hold or release (ood-k8s-psij) may take before it "
                                     "gives up with one line.", check=check_positive)


@section
class QuotaConfig:
    pods: int = setting(4, "Pods per user at once.", check=check_non_negative)
    cpu: str = setting("16", "Total CPU requested by a user's pods.", check=check_quantity)
    memory: str = setting("64Gi", "Total memory requested by a user's pods.", check=check_quantity)
    gpus: int = setting(2, "Total GPUs (of every resource named by a profile) a user may hold.",
                        check=check_non_negative)
    node_ports: int = setting(2, "NodePort services per user (connection: nodeport).", check=check_non_negative)
    persistent_volume_claims: int = setting(4, "Claims per user namespace.", check=check_non_negative)
    objects: int = setting(20, "Secrets and ConfigMaps (each) per user namespace: each session makes one of each; "
                           "the count keeps a user from filling etcd.", check=check_non_negative)
    ephemeral_storage: str = setting("80Gi", "Total node-local scratch (requests and limits of "
                                     "ephemeral-storage) of a user's pods.", check=check_quantity)


@section
class LimitsConfig:
    default_cpu: str = setting("1", "CPU limit of a container that sets none.", check=check_quantity)
    default_memory: str = setting("2Gi", "Memory limit of a container that sets none.", check=check_quantity)
    default_request_cpu: str = setting("250m", "CPU request of a container that sets none.", check=check_quantity)
    default_request_memory: str = setting("1Gi", "Memory request of a container that sets none.",
                                          check=check_quantity)
    max_cpu: str = setting("96", "Largest CPU limit of one container.", check=check_quantity)
    max_memory: str = setting("768Gi", "Largest memory limit of one container.", check=check_quantity)
    default_ephemeral_storage: str = setting("20Gi", "Node-local scratch limit of a container that sets none.",
                                             check=check_quantity)
    default_request_ephemeral_storage: str = setting("1Gi", "Node-local scratch request of a container that "
                                                     "sets none.", check=check_quantity)
    max_ephemeral_storage: str = setting("40Gi", "Largest node-local scratch limit of one container.",
                                         check=check_quantity)


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
    managed_attribute: str = setting(
        "custom:ood_k8s", "Attribute ood-k8s sets (to '1') on the Cognito users it creates; the hook refuses to adopt "
        "a user without it, who may have been registered by someone else. The pool must define it (a custom "
        "attribute the app client cannot write; doctor checks). Empty: adopt any existing user.")


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
    mode: str = setting("cognito", "Where ID tokens come from: Amazon Cognito (EKS) or the portal's own OIDC "
                        "provider.", check=check_auth_mode)  # the modes: ood_k8s.auth.provider
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
    deadline: float = setting(15.0, "Seconds a login's hook may take in all; past them hook.on_failure applies "
                              "(OOD starts the user's portal only after the hook returns, so a hung cluster "
                              "or identity provider must not hold it).",
                              check=lambda v: None if 0 < v <= 300 else "seconds, more than 0 and at most 300")


@section
class Range:
    default: str = setting("1", "Used when the form asks for nothing.", check=check_quantity)
    max: str = setting("4", "Largest value a user may ask for.", check=check_quantity)


@section
class GpuConfig:
    resource: str = setting("nvidia.com/gpu", "Extended resource name.", check=check_resource_name)
    default: int = setting(0, "GPUs when the form asks for none.", check=check_non_negative)
    max: int = setting(0, "Most GPUs one session may ask for.", check=check_non_negative)
    time_slicing: int = setting(0, "Sessions sharing each GPU of the profile's nodes (NVIDIA time-slicing replicas; "
                                "no memory isolation). 0: whole GPUs.", check=check_non_negative)
    mig: str = setting("", "MIG layout of its nodes (GPU operator mig-manager config, e.g. all-1g.5gb); 'resource' "
                       "names the slice, e.g. nvidia.com/mig-1g.5gb. Empty: no MIG.")


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
    prepull: bool = setting(False, "'cluster render' adds a DaemonSet pulling the image onto each node of the "
                            "profile's pools (sites without an image snapshot).")
    idle_timeout: int = setting(0, "Seconds unused (its activity_probe says) before the agent warns, then ends the "
                                "session (never its home data). 0: never.", check=check_non_negative)
    gpu_idle_timeout: int = setting(0, "Seconds its GPUs may stay at or under agent.gpu_idle_threshold before the "
                                    "same. 0: never.", check=check_non_negative)
    activity_probe: str = setting("jupyter", "How the agent asks the app if it is in use: jupyter, none.",
                                  check=check_activity_probe)
    max_walltime: int = setting(0, "Longest a session of this profile may run, in seconds, extensions included "
                                "(its pod's activeDeadlineSeconds). 0: jobs.max_walltime; never more than it.",
                                check=check_non_negative)
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
    mount_options: List[str] = setting(doc="PV mountOptions: 'tls' (access points need it) and 'iam' (the mount is "
                                       "authorised as the CSI driver's role, which the file-system policy of "
                                       "'ood-k8s cluster render --only efs-policy' requires).",
                                       factory=lambda: ["tls", "iam"])
    client_role_arns: List[str] = setting(
        doc="IAM roles that may mount the file system (file-system policy, 'cluster render --only efs-policy'): "
        "the EFS CSI driver's first, then the portal hosts' (which may mount the root, not only access points).",
        factory=list)


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
    mode: str = setting(
        "efs", "How $HOME reaches the pods: per-user EFS access point, static NFS PV, an existing claim, "
        "node-mounted hostPath (legacy; needs pod_security privileged) or none.", check=check_storage_mode)
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
    agent: AgentConfig = setting(doc="The agent: a watch-fed cache answering status polls.", factory=AgentConfig)
    courses: List[CourseConfig] = setting(doc="Courses: a roster, its profiles, term, meetings and GPU-hour budget.",
                                          factory=list)
    usage: UsageConfig = setting(doc="The usage ledger and its reports.", factory=UsageConfig)
    capacity: CapacityConfig = setting(doc="Warm capacity, GPU sharing, image pre-pullers.", factory=CapacityConfig)
    secrets_file: str = setting("", "Root-only YAML file (chmod 0600) holding the secret settings, with the same "
                                "keys (e.g. users: {image_pull_secret: {dockerconfigjson: ...}}). The site "
                                "configuration is read by every user's processes; this file only by root's (hook, "
                                "admin commands).",
                                check=lambda v: None if v == "" or v.startswith("/") else "an absolute path")
    source: str = setting("<built-in default>", "Where this configuration was read from.", internal=True)

    def profile(self, name: str) -> Profile:
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(name)



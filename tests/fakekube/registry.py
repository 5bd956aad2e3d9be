"""The resource types the fake serves, with the facts discovery and the store need."""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core ("legacy") group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    # Subresources reachable with GET/PUT/PATCH; "status" hides status from main-resource writes.
    subresources: tuple[str, ...] = ()
    # Which name rule the real validation uses: dns1123-subdomain | dns1123-label | dns1035-label | path-segment
    name_rule: str = "dns1123-subdomain"
    # Store.ReturnDeletedObject: DELETE answers with the object instead of a Status.
    return_deleted_object: bool = False
    # Whether the real registry maintains metadata.generation (bumped on spec changes).
    has_generation: bool = False
    # Store.AllowCreateOnUpdate: PUT on a missing object creates it.
    create_on_update: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """schema.GroupResource.String(): "pods", "roles.rbac.authorization.k8s.io"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def base_path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


def _core(plural: str, singular: str, kind: str, namespaced: bool = True, **kw: object) -> ResourceType:
    return ResourceType("", "v1", plural, singular, kind, namespaced, **kw)  # type: ignore[arg-type]


RBAC = "rbac.authorization.k8s.io"

RESOURCES: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "namespace",
        "Namespace",
        False,
        short_names=("ns",),
        subresources=("status", "finalize"),
        name_rule="dns1123-label",
        return_deleted_object=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _core(
        "pods",
        "pod",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=("status",),
        return_deleted_object=True,
        has_generation=True,
    ),
    _core(
        "services",
        "service",
        "Service",
        short_names=("svc",),
        categories=("all",),
        subresources=("status",),
        name_rule="dns1035-label",
        return_deleted_object=True,
    ),
    _core("secrets", "secret", "Secret"),
    _core("configmaps", "configmap", "ConfigMap", short_names=("cm",)),
    _core("events", "event", "Event", short_names=("ev",), create_on_update=True),
    _core("serviceaccounts", "serviceaccount", "ServiceAccount", short_names=("sa",)),
    _core("resourcequotas", "resourcequota", "ResourceQuota", short_names=("quota",), subresources=("status",)),
    _core("limitranges", "limitrange", "LimitRange", short_names=("limits",), create_on_update=True),
    _core(
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        subresources=("status",),
        return_deleted_object=True,
    ),
    _core(
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        False,
        short_names=("pv",),
        subresources=("status",),
        return_deleted_object=True,
    ),
    _core("nodes", "node", "Node", False, short_names=("no",), subresources=("status",)),
    ResourceType(RBAC, "v1", "roles", "role", "Role", True, name_rule="path-segment"),
    ResourceType(RBAC, "v1", "rolebindings", "rolebinding", "RoleBinding", True, name_rule="path-segment"),
    ResourceType(RBAC, "v1", "clusterroles", "clusterrole", "ClusterRole", False, name_rule="path-segment"),
    ResourceType(
        RBAC, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False, name_rule="path-segment"
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        True,
        short_names=("netpol",),
        has_generation=True,
    ),
    ResourceType(
        "scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", False, short_names=("pc",)
    ),
    ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, short_names=("ds",),
                 subresources=("status",), has_generation=True),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
    ),
    # The admission guard ood-k8s installs (GA since 1.30); cluster-scoped, stored as sent.
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        "ValidatingAdmissionPolicy",
        False,
        categories=("api-extensions",),
        subresources=("status",),
        has_generation=True,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        "ValidatingAdmissionPolicyBinding",
        False,
        categories=("api-extensions",),
        has_generation=True,
    ),
    # Leader election (the agents' Lease; client-go's leaderelection uses the same kind).
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    # The EFS CSI driver registers itself with one of these.
    ResourceType("storage.k8s.io", "v1", "csidrivers", "csidriver", "CSIDriver", False),
    # Karpenter v1's CRDs (as its Helm chart installs them; fk.uninstall() makes a cluster without them).
    ResourceType(
        "karpenter.sh",
        "v1",
        "nodepools",
        "nodepool",
        "NodePool",
        False,
        categories=("karpenter",),
        subresources=("status",),
        has_generation=True,
    ),
    ResourceType(
        "karpenter.k8s.aws",
        "v1",
        "ec2nodeclasses",
        "ec2nodeclass",
        "EC2NodeClass",
        False,
        short_names=("ec2nc", "ec2ncs"),
        categories=("karpenter",),
        subresources=("status",),
        has_generation=True,
    ),
)

BY_PLURAL: dict[str, ResourceType] = {r.plural: r for r in RESOURCES}
BY_GVR: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_GVK: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}


def group_versions(absent: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(group, version) pairs in a stable order, core first; ``absent`` plurals (not installed) do not count."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if r.plural not in absent and (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def lookup(plural: str) -> ResourceType:
    try:
        return BY_PLURAL[plural]
    except KeyError:
        raise KeyError(f"fakekube does not serve {plural!r}; known: {sorted(BY_PLURAL)}") from None

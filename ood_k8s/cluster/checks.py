"""``ood-k8s doctor``'s checks of what ``ood-k8s cluster render`` made: the provisioner holds every
permission of its ClusterRole, the user ClusterRole and the admission guard are applied as rendered,
and each GPU profile has somewhere to run (asked of the site's autoscaler)."""

from __future__ import annotations

from typing import Any

from ood_k8s.cluster import autoscaler
from ood_k8s.cluster.facts import gpu_profiles
from ood_k8s.cluster.manifests import POLICY_NAME, PROVISIONER_ROLE, SERVICE_POLICY_NAME
from ood_k8s.config import Config
from ood_k8s.core.errors import NotFound, OodK8sError
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor.report import APPLY_CLUSTER, Check, Context, one_line

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
    role = next((o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == PROVISIONER_ROLE),
                None)
    if role is None:
        return Check("provisioner permissions", None, "no provisioner ClusterRole rendered")
    wanted = permissions(role)
    try:
        missing = [p for p in wanted if not _review(kube, *p)]
    except OodK8sError as err:
        return Check("provisioner permissions", False, one_line(err), f"apply the RBAC: {APPLY_CLUSTER}")
    if missing:
        shown = ", ".join(f"{v} {r}{'/' + n if n else ''}" for v, _, r, n in missing[:6])
        more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        return Check("provisioner permissions", False, f"missing {shown}{more}",
                     f"apply ClusterRole/ClusterRoleBinding {PROVISIONER_ROLE} ({APPLY_CLUSTER}) and "
                     "check cluster.provisioner_subject is who the provisioner kubeconfig authenticates as")
    return Check("provisioner permissions", True, f"all {len(wanted)} permissions the hook and admin commands use")


# --- what is applied ------------------------------------------------------------------------------------


def contains(live: Any, want: Any) -> bool:
    """``want`` is found in ``live`` (the server may add defaulted fields, never drop ours)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(map(contains, live, want))
    return bool(live == want)


def _check_applied(kube: KubeClient, want: dict[str, Any], why: str) -> Check:
    kind, name = want["kind"], want["metadata"]["name"]
    title = f"{kind} {name}"
    try:
        live = kube.get(kind, name)
    except NotFound:
        return Check(title, False, f"missing ({why})", f"apply it: {APPLY_CLUSTER}")
    except OodK8sError as err:
        return Check(title, False, one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")
    body = {k: v for k, v in want.items() if k not in ("apiVersion", "kind", "metadata")}
    if not contains(live, body):
        return Check(title, False, "differs from what 'ood-k8s cluster render' gives", f"re-apply it: {APPLY_CLUSTER}")
    return Check(title, True, "applied and current")


def check_installed(kube: KubeClient, objs: list[dict[str, Any]], cfg: Config) -> list[Check]:
    """The user ClusterRole and the admission guard are applied, and as rendered."""
    out = []
    for kind, name, why in (
            ("ClusterRole", cfg.users.cluster_role, "what users may do in their namespaces"),
            ("ValidatingAdmissionPolicy", POLICY_NAME, "the admission guard"),
            ("ValidatingAdmissionPolicyBinding", POLICY_NAME, "the admission guard's binding"),
            ("ValidatingAdmissionPolicy", SERVICE_POLICY_NAME, "the Service guard"),
            ("ValidatingAdmissionPolicyBinding", SERVICE_POLICY_NAME, "the Service guard's binding")):
        want = next((o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name), None)
        if want is None:
            out.append(Check(f"{kind} {name}", None, f"not rendered for Kubernetes {cfg.cluster.kubernetes_version} "
                             "(ValidatingAdmissionPolicy needs 1.28 or later)"))
        else:
            out.append(_check_applied(kube, want, why))
    return out


def cluster(ctx: Context) -> list[Check]:
    """Doctor provider: the provisioner's permissions and the applied objects (or why they were skipped)."""
    if not ctx.reachable or ctx.kube is None:
        return [Check("cluster checks", None, "skipped: the API is not reachable")]
    return [check_provisioner(ctx.kube, ctx.objects), *check_installed(ctx.kube, ctx.objects, ctx.cfg)]


# --- GPU capacity -----------------------------------------------------------------------------------------


def check_gpus(kube: KubeClient, cfg: Config) -> list[Check]:
    """Each GPU profile has somewhere to run, as the site's autoscaler sees it (NodePools, node groups
    or fixed nodes that advertise the GPU)."""
    profiles = gpu_profiles(cfg)
    if not profiles:
        return [Check("GPU capacity", None, "no GPU profiles")]
    try:
        return autoscaler.of(cfg).capacity(kube, cfg, profiles, kube.list("Node"))
    except OodK8sError as err:
        return [Check("GPU capacity", False, one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")]


def gpu_capacity(ctx: Context) -> list[Check]:
    """Doctor provider: GPU capacity, when the API answered."""
    return check_gpus(ctx.kube, ctx.cfg) if ctx.reachable and ctx.kube is not None else []

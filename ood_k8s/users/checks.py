"""``ood-k8s doctor --user USER``'s checks of the user: admitted on this host (NSS and the site's
rules), and their namespace as the hook made it -- theirs, recording the ids the admission guard
admits, with the RoleBinding of exactly this user, a quota, and (static-PV homes) a bound home claim."""

from __future__ import annotations

from ood_k8s.config import Config
from ood_k8s.core import fsutil, identity, vocab
from ood_k8s.core.errors import NotFound, OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.names import UserNames
from ood_k8s.doctor.report import APPLY_CLUSTER, Check, Context, one_line
from ood_k8s.kubeconfig import user as userkubeconfig
from ood_k8s.policy.volumes import host_path_home
from ood_k8s.storage import checks as storage_checks
from ood_k8s.users import provision


def user(ctx: Context) -> list[Check]:
    """Doctor provider (--user), the first of the user phase: the user is admitted; sets ``ctx.ident``."""
    name = ctx.user or ""
    try:
        ident = provision.admit(ctx.cfg, name, ctx.lookup or identity.lookup)
    except OodK8sError as err:
        return [Check(f"user {name}", False, one_line(err), err.hint)]
    ctx.ident = ident
    gids = ",".join(str(g) for g in ident.gids) or "none"
    return [Check(f"user {name}", True, f"uid {ident.uid}, gid {ident.gid}, groups {gids}, home {ident.home}")]


def namespace(ctx: Context) -> list[Check]:
    """Doctor provider (--user): the user's namespace, when the API answered."""
    if ctx.ident is None or not ctx.reachable or ctx.kube is None:
        return []
    return check_user_namespace(ctx.kube, ctx.cfg, ctx.ident)


def check_user_namespace(kube: KubeClient, cfg: Config, ident: Identity) -> list[Check]:
    """The user's namespace is theirs and records the ids the admission guard admits, with the
    RoleBinding of exactly this user, a quota, and (EFS/NFS) a bound home claim."""
    n = provision.user_names(cfg, ident.username)
    try:
        ns = kube.get("Namespace", n.namespace)
    except NotFound:
        return [Check(f"namespace {n.namespace}", False, "missing",
                      f"ood-k8s user setup {ident.username} (or let the user log in to the portal)")]
    except OodK8sError as err:
        return [Check(f"namespace {n.namespace}", False, one_line(err),
                      f"apply the provisioner RBAC: {APPLY_CLUSTER}")]
    setup = f"ood-k8s user setup {ident.username}"
    try:
        provision.check_owner(ns, n)
    except OodK8sError as err:
        return [Check(f"namespace {n.namespace}", False, one_line(err), err.hint)]
    ann = (ns.get("metadata") or {}).get("annotations") or {}
    want = {vocab.UID_ANNOTATION: str(ident.uid), vocab.GID_ANNOTATION: str(ident.gid),
            vocab.GIDS_ANNOTATION: ",".join(str(g) for g in ident.gids)}
    if host_path_home(cfg):
        want[vocab.HOME_ANNOTATION] = ident.home
    wrong = [f"{k}={ann.get(k)!r} (NSS: {v!r})" for k, v in want.items() if ann.get(k, "") != v]
    out = [Check(f"namespace {n.namespace}", not wrong,
                 ("records " + "; ".join(wrong) + ": the admission guard will refuse the user's sessions") if wrong
                 else f"uid {ident.uid}, gid {ident.gid} recorded", setup)]
    out.append(_check_binding(kube, cfg, n))
    out.append(_check_quota(kube, n))
    return out + storage_checks.home_claim(kube, cfg, ident, n)


def _check_binding(kube: KubeClient, cfg: Config, n: UserNames) -> Check:
    role = cfg.users.cluster_role
    try:
        bindings = kube.list("RoleBinding", n.namespace)
    except OodK8sError as err:
        return Check("user role binding", False, one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")
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


def _check_quota(kube: KubeClient, n: UserNames) -> Check:
    try:
        quotas = kube.list("ResourceQuota", n.namespace)
    except OodK8sError as err:
        return Check("user quota", False, one_line(err), f"apply the provisioner RBAC: {APPLY_CLUSTER}")
    if not quotas:
        return Check("user quota", False, f"no ResourceQuota in {n.namespace}", f"ood-k8s user setup {n.username}")
    hard = (quotas[0].get("spec") or {}).get("hard") or {}
    shown = ", ".join(f"{k} {v}" for k, v in sorted(hard.items()) if k in ("pods", "requests.nvidia.com/gpu",
                                                                          "limits.cpu", "requests.cpu"))
    return Check("user quota", True, shown or quotas[0]["metadata"]["name"])


def credential_command(ctx: Context) -> list[Check]:
    """Doctor provider (--user): the user can run the credential command the hook writes into their
    kubeconfig (a virtualenv under a 0700 directory would make every kubectl call "permission denied")."""
    return [check_credential_command(ctx.cfg, ctx.ident)] if ctx.ident is not None else []


def check_credential_command(cfg: Config, ident: Identity) -> Check:
    title = "credential command"
    try:
        command = userkubeconfig.credential_command(cfg)
        gids = sorted({ident.gid, *ident.gids})
        problem = fsutil.run_as(ident.uid, ident.gid, gids, userkubeconfig.command_problem, command)
    except OodK8sError as err:
        return Check(title, False, one_line(err), err.hint)
    except OSError as err:
        return Check(title, None, f"cannot check as uid {ident.uid}: {err.strerror}", "run ood-k8s doctor as root")
    if problem:
        what, _, fix = problem.partition(" (")
        return Check(title, False, f"{ident.username} cannot run {command}: {what}", fix.rstrip(")"))
    return Check(title, True, f"{command} runs as {ident.username}")

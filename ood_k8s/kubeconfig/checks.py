"""``ood-k8s doctor``'s checks of kubeconfigs: the provisioner's (the API answers through it, at the
Kubernetes version objects are validated for) and, with ``--user``, the user's own file (theirs,
private, running our credential plugin, holding no secret).  Files under a home are opened without
following links."""

from __future__ import annotations

import os
import re
import stat

from ood_k8s.config import Config
from ood_k8s.core import fsutil
from ood_k8s.core.errors import OodK8sError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor.report import Check, Context, one_line
from ood_k8s.kubeconfig import untrusted
from ood_k8s.kubeconfig.clients import as_provisioner
from ood_k8s.kubeconfig.user import MAX_KUBECONFIG, entry_name


def check_api(kube: KubeClient, cfg: Config) -> tuple[Check, bool]:
    """The API answers (second value), at the Kubernetes version objects are validated for."""
    try:
        info = kube.version()
    except OodK8sError as err:
        return Check("Kubernetes API", False, one_line(err), "check cluster.provisioner_kubeconfig, the "
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


def api(ctx: Context) -> list[Check]:
    """Doctor provider: the provisioner's kubeconfig and the API; sets ``ctx.kube`` and ``ctx.reachable``."""
    if ctx.kube is None:
        unreadable = _unreadable(ctx.cfg.cluster.provisioner_kubeconfig)
        if unreadable:
            return [unreadable]
        try:
            ctx.kube = as_provisioner(ctx.cfg, timeout=ctx.request_timeout, retries=min(ctx.cfg.cluster.retries, 1))
        except OodK8sError as err:
            return [Check("Kubernetes API", False, one_line(err),
                          "fix cluster.provisioner_kubeconfig (docs/install.md: the provisioner identity)")]
    check, ctx.reachable = check_api(ctx.kube, ctx.cfg)
    return [check]


def _unreadable(path: str) -> Check | None:
    """The provisioner kubeconfig is missing, or root-only and we are not root: say which."""
    title = "Kubernetes API"
    try:
        os.stat(path)
    except FileNotFoundError:
        return Check(title, False, f"cannot read kubeconfig {path}: it is missing (cluster.provisioner_kubeconfig)",
                     "create it for the provisioner identity (docs/install.md: EKS access entry, "
                     "aws eks update-kubeconfig)")
    except PermissionError:
        return Check(title, False, f"cannot read kubeconfig {path} as uid {os.geteuid()}: permission denied",
                     "run as root (sudo ood-k8s doctor): the provisioner kubeconfig is root-only")
    if not os.access(path, os.R_OK):
        return Check(title, False, f"cannot read kubeconfig {path} as uid {os.geteuid()}: permission denied",
                     "run as root (sudo ood-k8s doctor): the provisioner kubeconfig is root-only")
    return None


def _read(home: str, parts: list[str], path: str) -> tuple[bytes | None, os.stat_result | None] | Check:
    """The file's bytes and status (None, None if missing), opened as :mod:`fsutil` does: no links
    followed anywhere under the home; or the failed Check."""
    title = "user kubeconfig"
    try:
        fd = fsutil.walk_dirs(home, parts[:-1])
    except FileNotFoundError:
        return None, None
    except OodK8sError as err:
        return Check(title, False, one_line(err), err.hint)
    except OSError as err:
        return Check(title, False, f"{path}: {err.strerror}", "run ood-k8s doctor as root")
    try:
        data = fsutil.read_at(fd, parts[-1], MAX_KUBECONFIG, where=path)
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False) if data is not None else None
    except OodK8sError as err:
        return Check(title, False, one_line(err), err.hint)
    except OSError as err:
        return Check(title, False, f"{path}: {err.strerror}", "run ood-k8s doctor as root")
    finally:
        os.close(fd)
    return data, st


def check_kubeconfig(cfg: Config, ident: Identity) -> Check:
    """The user's kubeconfig exists, is theirs and private, runs our credential plugin, holds no secret."""
    title = "user kubeconfig"
    parts = fsutil.check_relative(cfg.users.kubeconfig, "users.kubeconfig")
    path = os.path.join(ident.home, *parts)
    fix = "let the user log in to the portal again (the hook rewrites it)"
    read = _read(ident.home, parts, path)
    if isinstance(read, Check):
        return read
    data, st = read
    if data is None or st is None:
        return Check(title, False, f"{path} missing", fix)
    if st.st_uid != ident.uid or stat.S_IMODE(st.st_mode) & 0o077:
        return Check(title, False, f"{path}: owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}",
                     f"chown {ident.uid} {path}; chmod 0600 {path}")
    try:  # the user's file: parsed as the user, anchors refused, bounded (issue 13)
        kc = untrusted.parse_as_user(ident, path, data) or {}
    except OodK8sError as err:
        return Check(title, False, one_line(err), err.hint)
    if not isinstance(kc, dict):
        return Check(title, False, f"{path} is not a valid kubeconfig", fix)
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


def user_kubeconfig(ctx: Context) -> list[Check]:
    """Doctor provider (--user): the user's kubeconfig."""
    return [check_kubeconfig(ctx.cfg, ctx.ident)] if ctx.ident is not None else []

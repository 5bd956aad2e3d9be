# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The user's kubeconfig: one cluster/user/context entry per portal and cluster, with no secret in it.

The entry's user is an exec credential plugin -- the installed ``ood-k8s credential`` -- that
reads the user's token cache on the portal's local disk, so the file itself holds only the
server, its CA and the plugin's command line (OSC's ``auth-provider: oidc`` put the IdP client
secret and the refresh token in every user's file).  It is merged into the user's existing
kubeconfig: entries of other names are kept as they are, and the context is named
``<portal.name>-<cluster.name>`` so that dev and prod portals do not clobber each other.

The file lives in the user's home, which the hook (root) must not trust: the reading and writing
happen in a child process that has dropped to the user's uid, gid and groups
(:func:`ood_k8s.core.fsutil.run_as`).  Why not root with ``openat``/``O_NOFOLLOW`` and ``fchown``: on
NFS homes exported with root_squash -- the norm on HPC clusters -- root is ``nobody`` and could
not write at all, and as the user the kernel guarantees the hook cannot be tricked into touching
anything the user could not touch anyway.  Even so, a symlink at ``~/.kube`` or at the file is
refused with nothing changed (a link may point at a shared or foreign file), the write is an
atomic rename of a 0600 file, and a missing ``~/.kube`` is created 0700.  When the merged content
equals what is there, nothing is written (the hook's fast path).  ood-k8s writes the file as JSON,
which kubectl reads like YAML and which the fast path compares without importing PyYAML; a YAML
file (the user's, or kubectl's after ``kubectl config ...``) is still read and merged, and only
values JSON cannot hold (a YAML date, say) keep a rewritten file YAML.
"""

import base64
import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Tuple

from ood_k8s.core import fsutil
from ood_k8s.core.errors import ConfigError, OodK8sError, SecurityError, UsageError
from ood_k8s.core.vocab import COMMAND, EXEC_API

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity
    from ood_k8s.core.names import UserNames

MAX_KUBECONFIG = 4 * 1024 * 1024


def entry_name(cfg: "Config") -> str:
    """Name of our cluster, user and context entries."""
    return f"{cfg.portal.name}-{cfg.cluster.name}"


def credential_command(cfg: "Config") -> str:
    """Absolute path of the ``ood-k8s`` command to write into kubeconfigs."""
    if cfg.auth.credential_command:
        return cfg.auth.credential_command
    from ood_k8s.core.commands import installed

    found = installed(COMMAND)
    if found:
        return found
    raise ConfigError("cannot find the installed 'ood-k8s' command to write into users' kubeconfigs",
                      "install ood-k8s (pip install) or set auth.credential_command")


def user_entry(command: str, cfg: "Config", username: str) -> Dict[str, Any]:
    """The kubeconfig ``user`` value: our exec plugin, naming portal, cluster, user and cache."""
    return {"exec": {
        "apiVersion": EXEC_API,
        "command": command,
        "args": ["credential", "--portal", cfg.portal.name, "--cluster", cfg.cluster.name, "--user", username,
                 "--cache-dir", cfg.users.token_cache_dir],
        "interactiveMode": "Never",
        "provideClusterInfo": False,
    }}


def cluster_entry(server: str, ca_pem: Optional[bytes] = None, insecure: bool = False) -> Dict[str, Any]:
    """The kubeconfig ``cluster`` value. The CA is embedded: the portal's CA file may be root-only."""
    entry: Dict[str, Any] = {"server": server}
    if ca_pem:
        entry["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    if insecure:
        entry["insecure-skip-tls-verify"] = True
    return entry


def _cluster_from_config(cfg: "Config") -> Dict[str, Any]:
    c = cfg.cluster
    if c.server:
        ca = None
        if c.certificate_authority:
            from ood_k8s.core.kube import read_ca  # refuses a missing, unreadable or non-PEM CA in one line

            ca = read_ca(c.certificate_authority)
        return cluster_entry(c.server, ca)
    from ood_k8s.kubeconfig import read as kubeconfig

    ep = kubeconfig.resolve(kubeconfig.read(c.kubeconfig), c.context or None, c.kubeconfig)
    ca = ep.ca_data
    if ca is None and ep.ca_file:
        try:
            with open(ep.ca_file, "rb") as fh:
                ca = fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read the CA file {ep.ca_file} named in {c.kubeconfig}: {exc.strerror}",
                              "fix the kubeconfig") from None
    return cluster_entry(ep.server, ca, ep.insecure)


def desired(existing: Optional[Dict[str, Any]], cfg: "Config", username: str, namespace: str,
            cluster: Dict[str, Any], command: str) -> Dict[str, Any]:
    """``existing`` with our entry merged in (pure)."""
    from ood_k8s.kubeconfig import read as kubeconfig

    return kubeconfig.merge(existing, name=entry_name(cfg), cluster=cluster,
                            user=user_entry(command, cfg, username), namespace=namespace)


# --- run as the user (in a child that dropped privileges) -----------------------------------------


class Written(NamedTuple):
    """What :func:`write_checked` did: whether the file changed, and why the user's kubectl would
    fail to run the credential command ("" when the user can run it)."""

    changed: bool
    command_problem: str


def _signature(dir_fd: int, name: str) -> Optional[Tuple[int, int, int]]:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read_as_user(home: str, home_root: str, parts: List[str]) -> Tuple[Any, Any, Optional[Tuple[int, int, int]]]:
    """``(kind, content, signature)``: kind "none" (no file), "json" (content parsed: JSON is
    bounded by the size and has no aliases) or "yaml" (content still the bytes, to be parsed by
    :func:`_parse_yaml_as_user`).  Runs as the user; the home is reached without following a link."""
    home_fd = fsutil.open_home(home, home_root)
    try:
        try:
            fd = fsutil.walk_dirs(home, parts[:-1], root_fd=home_fd)
        except FileNotFoundError:
            return "none", None, None  # no ~/.kube yet
    finally:
        os.close(home_fd)
    try:
        where = os.path.join(home, *parts)
        data = fsutil.read_at(fd, parts[-1], MAX_KUBECONFIG, where=where)
        if data is None:
            return "none", None, None
        signature = _signature(fd, parts[-1])
    finally:
        os.close(fd)
    if not data.strip():
        return "json", None, signature
    try:
        return "json", json.loads(data), signature
    except (ValueError, RecursionError):
        return "yaml", data, signature


def _write_as_user(home: str, home_root: str, parts: List[str], data: bytes,
                   expected: Optional[Tuple[int, int, int]], command: str) -> Tuple[bool, str]:
    home_fd = fsutil.open_home(home, home_root)
    try:
        fd = fsutil.walk_dirs(home, parts[:-1], create_mode=0o700, root_fd=home_fd)
    finally:
        os.close(home_fd)
    try:
        if _signature(fd, parts[-1]) != expected:
            return False, ""  # changed since we read it: the caller merges again
        fsutil.atomic_write_at(fd, parts[-1], data, 0o600, where=os.path.join(home, *parts))
    finally:
        os.close(fd)
    return True, command_problem(command)


def command_problem(command: str) -> str:
    """Why the calling user cannot run ``command`` ("" if they can): the first directory on its path
    they may not search, or the file itself.  Call it as the user (in the dropped child)."""
    if os.access(command, os.X_OK):
        return ""
    where = "/"
    for part in [p for p in os.path.dirname(command).split("/") if p]:
        where = os.path.join(where, part)
        if not os.access(where, os.X_OK):
            return f"the directory {where} is not searchable by the user (chmod o+x {where}, or install " \
                   "ood-k8s where users can run it and set auth.credential_command)"
    if not os.path.exists(command):
        return f"{command} does not exist (install ood-k8s there or fix auth.credential_command)"
    return f"{command} is not executable by the user (chmod a+rx {command})"


def _serialise(kc: Dict[str, Any]) -> bytes:
    """``kc`` as JSON when it reads back as exactly that, else as YAML."""
    try:
        text = json.dumps(kc, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError):
        text = None  # a date, bytes, a non-finite float... from a YAML file: only YAML holds it
    if text is not None and json.loads(text) == kc:  # non-str keys would come back as str
        return text.encode()
    import yaml

    return yaml.safe_dump(kc, default_flow_style=False, sort_keys=False).encode()


def _existing(ident: "Identity", path: str, kind: str, content: Any) -> Optional[Dict[str, Any]]:
    """The user's file as a mapping (None when absent or empty); parsed as the user when YAML."""
    if kind == "yaml":
        from ood_k8s.kubeconfig import untrusted

        content = untrusted.parse_as_user(ident, path, content)
    if kind == "none" or content is None:
        return None
    if not isinstance(content, dict):
        raise UsageError(f"{path} is not a valid kubeconfig, so ood-k8s leaves it alone",
                         "fix it or move it away, then log in again")
    return content


def write(cfg: "Config", ident: "Identity", names: "UserNames") -> bool:
    """Merge our entry into the user's kubeconfig, as the user; True if the file changed."""
    return write_checked(cfg, ident, names).changed


def write_checked(cfg: "Config", ident: "Identity", names: "UserNames") -> Written:
    """:func:`write`, also saying whether the user can run the credential command it names."""
    parts = fsutil.check_relative(cfg.users.kubeconfig, "users.kubeconfig")
    path = os.path.join(ident.home, *parts)
    cluster = _cluster_from_config(cfg)
    command = credential_command(cfg)
    root = cfg.storage.home_root
    for _ in range(5):
        kind, content, signature = _as_user(ident, path, _read_as_user, ident.home, root, parts)
        existing = _existing(ident, path, kind, content)
        merged = desired(existing, cfg, ident.username, names.namespace, cluster, command)
        if existing is not None and merged == existing:
            return Written(False, "")
        changed, problem = _as_user(ident, path, _write_as_user, ident.home, root, parts, _serialise(merged),
                                    signature, command)
        if changed:
            return Written(True, problem)
    raise UsageError(f"{path} kept changing while ood-k8s merged its entry", "log in again")


def _as_user(ident: "Identity", path: str, fn: Any, *args: Any) -> Any:
    if ident.uid == 0 or ident.uid < 0:
        raise SecurityError(f"refusing to write a kubeconfig for uid {ident.uid}", "users must not be root")
    gids = sorted({ident.gid, *ident.gids})
    try:
        return fsutil.run_as(ident.uid, ident.gid, gids, fn, *args)
    except FileNotFoundError:
        raise UsageError(f"the home directory {ident.home} of {ident.username} does not exist",
                         "create it first (storage.create_home) or check the user's NSS entry") from None
    except PermissionError:
        raise SecurityError(f"{ident.username} may not write {path}",
                            f"check the ownership and mode of {ident.home} and its .kube directory") from None
    except OodK8sError:
        raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}", "check the home directory") from None

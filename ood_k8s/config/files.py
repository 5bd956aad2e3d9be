"""The files the settings name, checked before any student meets them.

A student's poll reads the site configuration and ``cluster.certificate_authority``; the hook and
admin commands read the provisioner kubeconfig and the secrets file as root.
:func:`ood_k8s.core.kube.read_ca` is what every reader of the CA uses (one line naming the setting
when it is missing, unreadable or not PEM); :func:`file_problems` is what ``ood-k8s config check``
adds to the schema's checks: every file problem, one line each naming its setting -- and nothing is
written while checking.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from ood_k8s.core.errors import ConfigError
from ood_k8s.core.kube import ca_problem

# Markers of the example's placeholder values (config example, built-in default).
PLACEHOLDERS = ("example.edu", "example.com", "example.org", "_EXAMPLE", "exampleclientid", "0123456789abcdef")


def _mode(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _readable_by_users(path: str, setting: str) -> list[str]:
    """Students' processes read it: it must be readable by others, through every directory."""
    st = _mode(path)
    if st is None:
        return []  # reported as missing elsewhere
    problems = []
    if not st.st_mode & stat.S_IROTH:
        problems.append(f"{setting}: {path} is mode {stat.S_IMODE(st.st_mode):04o}, but every user's "
                        f"session poll reads it: chmod o+r {path}")
    parent = os.path.dirname(os.path.abspath(path))
    while parent not in ("/", ""):
        pst = _mode(parent)
        if pst is not None and not pst.st_mode & stat.S_IXOTH:
            problems.append(f"{setting}: directory {parent} is not searchable by users: chmod o+x {parent}")
            break
        parent = os.path.dirname(parent)
    return problems


def _root_only(path: str, setting: str, euid: int) -> list[str]:
    """Root reads it; nobody else may: owned by root, no group or other access."""
    try:
        st = os.stat(path)
    except PermissionError:
        return [f"{setting}: cannot look at {path} as uid {euid}: run 'sudo ood-k8s config check' "
                "(the file is root-only)"]
    except FileNotFoundError:
        return [f"{setting}: {path} is missing: create it (docs/install.md says how)"]
    except OSError as exc:
        return [f"{setting}: cannot look at {path}: {(exc.strerror or '').lower()}"]
    problems = []
    if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
        problems.append(f"{setting}: {path} is owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}, "
                        f"expected root-only: chown root {path}; chmod 0600 {path}")
    if euid == 0 or os.access(path, os.R_OK):
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            problems.append(f"{setting}: cannot read {path}: {(exc.strerror or '').lower()}")
    return problems


def _kubeconfig_problems(path: str, setting: str) -> list[str]:
    """The kubeconfig parses and its current context resolves; parsed without leaving a cache."""
    from ood_k8s.config.yamlcache import YamlError, parse_yaml, read_text
    from ood_k8s.kubeconfig import read as kubeconfig

    try:
        text, _ = read_text(path)
        data = parse_yaml(text)
        ep = kubeconfig.resolve(data if isinstance(data, dict) else {}, None, path)
    except OSError:
        return []  # reported by _root_only
    except YamlError as exc:
        return [f"{setting}: {path} is not valid YAML: {exc.problem}"]
    except ConfigError as err:
        return [f"{setting}: {err.message}"]
    if ep.ca_file:
        problem = ca_problem(ep.ca_file, f"the certificate-authority of {setting}")
        return [problem] if problem else []
    return []


def placeholder_problems(data: Any, path: str = "", skip: frozenset = frozenset()) -> list[str]:
    """Values still the example's (``kubernetes.example.edu``...), outside sections not in use."""
    out: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if where not in skip:
                out.extend(placeholder_problems(value, where, skip))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.extend(placeholder_problems(value, f"{path}[{i}]", skip))
    elif isinstance(data, str) and any(m in data for m in PLACEHOLDERS):
        out.append(f"{path}: {data!r} is the example's placeholder: set this site's value")
    return out


def file_problems(cfg: Any, euid: int | None = None) -> list[str]:
    """Every problem with the files ``cfg`` names, as ``config check`` reports them (writes nothing)."""
    euid = os.geteuid() if euid is None else euid
    c = cfg.cluster
    problems: list[str] = []
    if cfg.source and cfg.source not in ("<built-in default>", "<stdin>", "<string>"):
        problems += _readable_by_users(cfg.source, "the site configuration")
    if c.server and c.certificate_authority:
        problem = ca_problem(c.certificate_authority)
        problems += [problem] if problem else _readable_by_users(c.certificate_authority,
                                                                  "cluster.certificate_authority")
    if not c.server and c.kubeconfig:
        problems += _readable_by_users(c.kubeconfig, "cluster.kubeconfig")
    root_only = _root_only(c.provisioner_kubeconfig, "cluster.provisioner_kubeconfig", euid)
    problems += root_only
    if not root_only:
        problems += _kubeconfig_problems(c.provisioner_kubeconfig, "cluster.provisioner_kubeconfig")
    secrets = getattr(cfg, "secrets_file", "")
    if secrets:
        problems += _root_only(secrets, "secrets_file", euid)
    return problems


def unused_sections(cfg: Any) -> frozenset:
    """Config paths of the auth and storage sections this site's modes do not use."""
    from ood_k8s.config.section import to_dict

    data: dict[str, Any] = to_dict(cfg)
    auth = {f"auth.{k}" for k, v in data.get("auth", {}).items() if isinstance(v, dict) and k != cfg.auth.mode}
    storage = {f"storage.{k}" for k, v in data.get("storage", {}).items()
               if isinstance(v, dict) and k != cfg.storage.mode}
    return frozenset(auth | storage)


# --- secrets: a root-only file beside the world-readable configuration -----------------------------------


def _secret_settings(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"users.image_pull_secret.dockerconfigjson": (section, name)}`` for every secret setting."""
    from ood_k8s.config.section import fields, is_section

    out: dict[str, Any] = {}
    for s in fields(obj):
        value = getattr(obj, s.name)
        if s.secret:
            out[prefix + s.name] = (obj, s.name)
        elif is_section(value):
            out.update(_secret_settings(value, f"{prefix}{s.name}."))
    return out


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_leaves(value, f"{prefix}{key}."))
    return out


def _secrets_data(cfg: Any, read_only: bool = False) -> dict[str, Any]:
    """The secrets file's settings by path; a ConfigError naming ``secrets_file`` if it is unusable.
    ``read_only``: parse it without leaving (or trusting) a compiled cache beside it."""
    from ood_k8s.config.yamlcache import YamlError, parse_yaml, read_text, read_yaml

    try:
        data = parse_yaml(read_text(cfg.secrets_file)[0], strict=True) if read_only else read_yaml(cfg.secrets_file)
    except OSError as exc:
        raise ConfigError(f"secrets_file: cannot read {cfg.secrets_file}: {(exc.strerror or '').lower()}",
                          "create it root-only (chmod 0600) or empty secrets_file") from None
    except YamlError as exc:
        raise ConfigError(f"secrets_file: {cfg.secrets_file} is not valid YAML: {exc.problem}") from None
    leaves = _leaves(data or {}) if isinstance(data, dict) or data is None else {"": data}
    known = _secret_settings(cfg)
    wrong = [k for k in leaves if k not in known]
    if wrong:
        raise ConfigError(f"secrets_file: {cfg.secrets_file} sets {wrong[0]!r}, which is not a secret setting",
                          f"it may set only: {', '.join(known)}")
    return leaves


def merge_secrets(cfg: Any) -> None:
    """Root processes (hook, admin commands) take the secret settings from ``secrets_file``; user-side
    processes never read it (they need no secret), so a student's poll never fails because of it."""
    if not getattr(cfg, "secrets_file", "") or os.geteuid() != 0:
        return
    known = _secret_settings(cfg)
    for path, value in _secrets_data(cfg).items():
        owner, name = known[path]
        setattr(owner, name, value if isinstance(value, str) else str(value))


def secret_problems(cfg: Any) -> list[str]:
    """A secret in the world-readable configuration; a secrets file that does not parse or sets a non-secret."""
    problems = [f"{path}: a secret in the site configuration, which every user can read: move it to the "
                "root-only file that secrets_file names" for path, (owner, name) in _secret_settings(cfg).items()
                if getattr(owner, name)]
    if getattr(cfg, "secrets_file", "") and os.access(cfg.secrets_file, os.R_OK):
        try:
            _secrets_data(cfg, read_only=True)
        except ConfigError as err:
            problems.append(err.message)
    return problems

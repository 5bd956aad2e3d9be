# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Kubeconfig files: reading one into a :class:`~ood_k8s.core.kube.KubeClient`, and merging our entry.

Reading supports what ood-k8s's users and provisioners actually have: server + CA (file or data),
bearer token or token file, client certificates, and exec credential plugins.  An exec entry that
runs ``ood-k8s credential`` is answered in-process (no extra Python start per call); any other
plugin (``aws eks get-token``...) is run as kubectl would, and its ExecCredential is cached in
memory -- and, when ``cache_dir`` is given (the root-side provisioner), on disk until it expires,
so the hook's fast path does not start an ``aws`` process on every login.
"""

import base64
import json
import os
import time
from typing import Any, Callable, NamedTuple, Optional, Union

from ood_k8s.core.errors import ConfigError, CredentialError
from ood_k8s.core.kube import KubeClient
from ood_k8s.core.vocab import COMMAND, EXEC_API


class Endpoint(NamedTuple):
    # A NamedTuple, not a dataclass: cheaper to define in every per-poll process.
    server: str
    ca_file: Optional[str] = None
    ca_data: Optional[bytes] = None
    insecure: bool = False
    token: Optional[str] = None
    token_file: Optional[str] = None
    client_cert: Optional[tuple[str, str]] = None
    exec: Optional[dict[str, Any]] = None
    namespace: Optional[str] = None
    base_dir: str = "."
    server_name: Optional[str] = None  # tls-server-name
    proxy_url: str = ""  # proxy-url

    def __repr__(self) -> str:  # never a token in a log line or traceback
        return f"Endpoint(server={self.server!r}, namespace={self.namespace!r})"


def read(path: str) -> dict[str, Any]:
    # Through the compiled cache root leaves beside root-owned files (the provisioner's, at each
    # login): no PyYAML import on the hook's fast path.
    from ood_k8s.config import YamlError, read_yaml

    try:
        data = read_yaml(path)
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc.strerror}",
                          "check the path (cluster.kubeconfig / cluster.provisioner_kubeconfig)") from None
    except YamlError:
        raise ConfigError(f"kubeconfig {path} is not valid YAML", "fix or regenerate the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"kubeconfig {path} is not a kubeconfig", "fix or regenerate the file")
    return data


def _named(entries: Any, name: str, what: str, path: str) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(what) or {}
    raise ConfigError(f"kubeconfig {path}: no {what} named {name!r}", "fix the context or the file")


def resolve(kc: dict[str, Any], context: Optional[str] = None, path: str = "<kubeconfig>") -> Endpoint:
    """The endpoint and credentials of ``context`` (default: current-context)."""
    ctx_name = context or kc.get("current-context")
    if not ctx_name:
        raise ConfigError(f"kubeconfig {path} has no current-context", "name a context (cluster.context)")
    ctx = _named(kc.get("contexts"), ctx_name, "context", path)
    cluster = _named(kc.get("clusters"), ctx.get("cluster", ""), "cluster", path)
    user = _named(kc.get("users"), ctx.get("user", ""), "user", path) if ctx.get("user") else {}
    base = os.path.dirname(os.path.abspath(path)) if path != "<kubeconfig>" else "."

    def rel(p: Optional[str]) -> Optional[str]:
        return None if not p else (p if os.path.isabs(p) else os.path.join(base, p))

    cert = None
    if user.get("client-certificate") and user.get("client-key"):
        cert = (rel(user["client-certificate"]), rel(user["client-key"]))
    if user.get("client-certificate-data"):
        cert = _materialise_cert(user["client-certificate-data"], user.get("client-key-data", ""))
    return Endpoint(
        server=cluster.get("server", ""),
        ca_file=rel(cluster.get("certificate-authority")),
        ca_data=base64.b64decode(cluster["certificate-authority-data"])
        if cluster.get("certificate-authority-data") else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=user.get("token"),
        token_file=rel(user.get("tokenFile")),
        client_cert=cert,  # type: ignore[arg-type]
        exec=user.get("exec"),
        namespace=ctx.get("namespace"),
        base_dir=base,
        server_name=cluster.get("tls-server-name") or None,
        proxy_url=str(cluster.get("proxy-url") or ""),
    )


def _materialise_cert(cert_b64: str, key_b64: str) -> tuple[str, str]:
    # ssl can only load certificates from files; keep them private and short-lived.
    import tempfile  # deferred, as are hashlib and subprocess: not on the per-poll path

    paths = []
    for data in (cert_b64, key_b64):
        fd, p = tempfile.mkstemp(prefix="ood-k8s-", suffix=".pem")
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(data))
        paths.append(p)
    return paths[0], paths[1]


class ExecPlugin:
    """Runs a client-go exec credential plugin and caches its token until it expires."""

    def __init__(self, spec: dict[str, Any], server: str, cache_dir: Optional[str] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self.server = server
        self.cache_dir = cache_dir
        self.clock = clock
        self._token: Optional[str] = None
        self._expiry = 0.0

    def _cache_path(self) -> Optional[str]:
        if not self.cache_dir:
            return None
        import hashlib

        key = hashlib.sha256(json.dumps([self.spec, self.server], sort_keys=True).encode()).hexdigest()[:32]
        return os.path.join(self.cache_dir, f"exec-{key}.json")

    def __call__(self, refresh: bool = False) -> str:
        now = self.clock()
        if not refresh and self._token and now < self._expiry - 30:
            return self._token
        path = self._cache_path()
        if not refresh and path:
            try:
                with open(path, encoding="utf-8") as fh:
                    cached = json.load(fh)
                if now < cached["expiry"] - 30:
                    self._token, self._expiry = cached["token"], cached["expiry"]
                    return cached["token"]
            except (OSError, ValueError, KeyError):
                pass
        token, expiry = self._run()
        self._token, self._expiry = token, expiry
        if path and expiry:
            os.makedirs(self.cache_dir, mode=0o700, exist_ok=True)  # type: ignore[arg-type]
            from ood_k8s.core.fsutil import atomic_write

            atomic_write(path, json.dumps({"token": token, "expiry": expiry}).encode(), mode=0o600)
        return token

    def _run(self) -> tuple[str, float]:
        import subprocess

        command = self.spec.get("command")
        if not command:
            raise CredentialError("kubeconfig exec entry has no command", "fix the kubeconfig")
        env = dict(os.environ)
        for item in self.spec.get("env") or []:
            env[item["name"]] = item["value"]
        api = self.spec.get("apiVersion", EXEC_API)
        env["KUBERNETES_EXEC_INFO"] = json.dumps({"apiVersion": api, "kind": "ExecCredential",
                                                  "spec": {"interactive": False}})
        try:
            proc = subprocess.run([command, *(self.spec.get("args") or [])], env=env, capture_output=True,
                                  timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CredentialError(f"credential plugin {command} could not run: {exc}") from None
        if proc.returncode != 0:
            last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            raise CredentialError(f"credential plugin {command} failed: {last}")
        try:
            status = json.loads(proc.stdout)["status"]
            token = status["token"]
        except (ValueError, KeyError, TypeError):
            raise CredentialError(f"credential plugin {command} printed no ExecCredential token") from None
        return token, _parse_time(status.get("expirationTimestamp"))


def _parse_time(value: Optional[str]) -> float:
    if not value:
        return 0.0
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def is_ood_k8s_plugin(spec: dict[str, Any]) -> bool:
    return os.path.basename(str(spec.get("command", ""))) == COMMAND and \
        (spec.get("args") or [""])[0] == "credential"


def client(path: str, context: Optional[str] = None, *, timeout: float = 10.0, retries: int = 4,
           exec_cache_dir: Optional[str] = None, sleep: Callable[[float], None] = time.sleep) -> KubeClient:
    """A client for the given kubeconfig context."""
    ep = resolve(read(path), context, path)
    token: Optional[Union[Callable[[bool], str], str]] = ep.token
    if ep.token_file:
        token_file = ep.token_file

        def token(refresh: bool = False) -> str:  # re-read: projected tokens rotate
            with open(token_file, encoding="utf-8") as fh:
                return fh.read().strip()
    elif ep.exec:
        if is_ood_k8s_plugin(ep.exec):
            from ood_k8s.auth import plugin as credential

            token = credential.token_source_from_args(ep.exec.get("args") or [])
        else:
            token = ExecPlugin(ep.exec, ep.server, exec_cache_dir)
    return KubeClient(ep.server, token=token, ca_file=ep.ca_file, ca_data=ep.ca_data, insecure=ep.insecure,
                      client_cert=ep.client_cert, timeout=timeout, retries=retries, sleep=sleep,
                      ca_setting=f"the certificate-authority of {path}", server_name=ep.server_name,
                      proxy_url=ep.proxy_url)


def merge(existing: Optional[dict[str, Any]], *, name: str, cluster: dict[str, Any], user: dict[str, Any],
          namespace: Optional[str] = None, make_current: bool = True) -> dict[str, Any]:
    """``existing`` with a cluster, user and context all called ``name`` added or replaced.

    Entries with other names -- the user's other clusters -- are kept untouched, in order.
    """
    kc: dict[str, Any] = dict(existing or {})
    kc.setdefault("apiVersion", "v1")
    kc.setdefault("kind", "Config")
    kc.setdefault("preferences", {})
    ctx: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        ctx["namespace"] = namespace
    for key, entry_key, value in (("clusters", "cluster", cluster), ("users", "user", user),
                                  ("contexts", "context", ctx)):
        entries = [e for e in (kc.get(key) or []) if isinstance(e, dict)]
        new = {"name": name, entry_key: value}
        for i, e in enumerate(entries):
            if e.get("name") == name:
                entries[i] = new
                break
        else:
            entries.append(new)
        kc[key] = entries
    if make_current or not kc.get("current-context"):
        kc["current-context"] = name
    return kc

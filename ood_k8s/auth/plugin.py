# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``ood-k8s credential``: the kubectl exec credential plugin the hook writes into users' kubeconfigs.

Its argv (``credential --portal P --cluster C --user U --cache-dir D``) is persisted in every
user's kubeconfig and must keep working.  It prints an ExecCredential with the user's ID token
from :func:`ood_k8s.auth.tokens.current_tokens` (refreshed there when it is about to expire), or
one line on stderr and a non-zero exit: when the refresh token is missing, expired or rejected, the
remedy (log out of the portal and in again) re-runs the hook, which obtains new tokens.

The same argv is answered in-process (:func:`token_source_from_args`) when ood-k8s itself reads a
kubeconfig whose user runs this plugin: no extra Python start per API call.
"""

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Optional, Sequence, TextIO

from ood_k8s.auth.tokencache import TokenCache, Tokens
from ood_k8s.auth.tokens import cache_source, current_tokens
from ood_k8s.core.errors import OodK8sError, UsageError
from ood_k8s.core.process import read_argv
from ood_k8s.core.timefmt import rfc3339
from ood_k8s.core.vocab import EXEC_API, EXEC_APIS

if TYPE_CHECKING:
    import argparse


def _parser() -> "argparse.ArgumentParser":
    import argparse

    p = argparse.ArgumentParser(prog="ood-k8s credential", description=(
        "kubectl exec credential plugin: prints an ExecCredential with the user's ID token, "
        "refreshing it when it is about to expire. Written into users' kubeconfigs by the login hook."))
    p.add_argument("--portal", default="", help="portal name (identifies the kubeconfig entry)")
    p.add_argument("--cluster", default="", help="cluster name (identifies the kubeconfig entry)")
    p.add_argument("--user", default="", help="portal username (default: the user running the plugin)")
    p.add_argument("--cache-dir", default="", help="token cache directory (default: users.token_cache_dir)")
    p.add_argument("--config", default=None, help="site configuration (only read without --cache-dir)")
    return p


def _parse_args(argv: Sequence[str]) -> "argparse.Namespace":
    """The plugin's options.  The usual ones (what the hook writes into kubeconfigs) are read here:
    argparse's import and parser cost ~4 ms of a process kubectl starts for every command.
    Anything else (help, a typo, a missing value) gets argparse's usual answer."""
    import types

    try:
        given, _ = read_argv(argv, ("portal", "cluster", "user", "cache-dir", "config"), positionals=False)
    except UsageError:
        return _parser().parse_args(argv)
    values: Dict[str, Optional[str]] = {"portal": "", "cluster": "", "user": "", "cache_dir": "", "config": None}
    values.update((name.replace("-", "_"), value) for name, value in given.items())
    return types.SimpleNamespace(**values)  # type: ignore[return-value]


def _cache_from_args(args: "argparse.Namespace", clock: Callable[[], float],
                     sleep: Callable[[float], None]) -> TokenCache:
    user = args.user
    if not user:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    cache_dir = args.cache_dir
    if not cache_dir:
        from ood_k8s import config

        cache_dir = config.load(args.config).users.token_cache_dir
    return TokenCache(cache_dir, user, clock=clock, sleep=sleep)


def token_source_from_args(args: Sequence[str], *, clock: Callable[[], float] = time.time,
                           sleep: Callable[[float], None] = time.sleep) -> Callable[[bool], str]:
    """The token callable for a kubeconfig exec entry whose args are ``credential ...``."""
    argv = list(args)
    if argv[:1] == ["credential"]:
        argv = argv[1:]
    return cache_source(_cache_from_args(_parse_args(argv), clock, sleep), clock, sleep)


def exec_credential(tokens: Tokens, now: float, api_version: str = EXEC_API) -> Dict[str, object]:
    # Tell kubectl to come back when we would refresh, so it never holds a token inside the margin;
    # a token served despite the margin (provider down) carries its real expiry.
    expires = tokens.id_expires_at - tokens.margin
    if expires <= now:
        expires = tokens.id_expires_at
    return {"apiVersion": api_version, "kind": "ExecCredential",
            "status": {"token": tokens.id_token, "expirationTimestamp": rfc3339(expires)}}


def _api_version(environ: Mapping[str, str]) -> str:
    info = environ.get("KUBERNETES_EXEC_INFO")
    if info:
        try:
            asked = json.loads(info).get("apiVersion")
        except (ValueError, AttributeError):
            asked = None
        if asked in EXEC_APIS:
            return str(asked)
    return EXEC_API


def main(argv: Sequence[str], *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
         environ: Optional[Mapping[str, str]] = None, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None) -> int:
    """Run the plugin: print an ExecCredential (exit 0) or one line on stderr (non-zero)."""
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = _parse_args(list(argv))
    try:
        cache = _cache_from_args(args, clock, sleep)
        tokens = current_tokens(cache, clock=clock, sleep=sleep)
    except OodK8sError as err:
        print(f"ood-k8s credential: {err}", file=stderr)
        return err.exit_code
    stdout.write(json.dumps(exec_credential(tokens, clock(), _api_version(environ))) + "\n")
    stdout.flush()
    return 0

"""Credentials: the exec plugin from cache and on refresh, and the hook's token side (moto's server).

Incumbents: OSC writes ``auth-provider: oidc`` -- no process per kubectl, but the IdP client secret
and refresh token sit in every user's kubeconfig.  Harvard's hook and credential path run ``aws``
CLI processes; ``python -c "import boto3"`` is the floor of one such process.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Callable

from bench.common import (
    BASELINE,
    entry_point,
    fmt_ms,
    installed_env,
    installed_python,
    interleaved_medians,
    median_ms,
    moto_server,
    process_ms,
)

if TYPE_CHECKING:
    from ood_k8s.config import Config


def run(report: Callable[..., None]) -> None:

    from ood_k8s import config
    from ood_k8s.auth import login, tokens
    from ood_k8s.auth.tokencache import TokenCache
    from ood_k8s.cloud.aws import cognito_admin
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity

    with moto_server() as url:
        import boto3

        idp = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=url)
        pool_id = idp.create_user_pool(PoolName="bench")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="bench", GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        with tempfile.TemporaryDirectory() as tmp:
            base = Config()
            cfg = config.replace(base, users=config.replace(base.users, token_cache_dir=tmp),
                                      auth=config.replace(base.auth, cognito=config.replace(
                                          base.auth.cognito, endpoint_url=url, user_pool_id=pool_id,
                                          client_id=client_id)))
            ident = Identity("alice", os.getuid(), os.getgid(), tmp, ("alice",), ())

            started = time.perf_counter()
            cognito_admin.ensure_user(cfg, ident)
            login.ensure_tokens(cfg, ident, {})
            first_ms = (time.perf_counter() - started) * 1000
            report("first login, token side (create user + mint)", fmt_ms(first_ms), "5 aws CLI processes",
                   note="in-process boto3, moto over loopback")
            cached_ms = median_ms(lambda: login.ensure_tokens(cfg, ident, {}), runs=200)
            report("later login, token side (cached: 0 calls)", f"{cached_ms:.3f} ms", "5 aws CLI processes")

            plugin = [*entry_point("ood-k8s"), "credential", "--user", "alice", "--cache-dir", tmp]
            env = installed_env()
            hit_ms = process_ms(plugin, runs=20, env=env)
            boto3_ms = process_ms([installed_python(), "-c", "import boto3"], runs=10, env=env)
            bare_ms = process_ms([installed_python(), "-c", "pass"], runs=10, env=env)
            report("kubectl plugin call, cache hit (process)", fmt_ms(hit_ms),
                   f"{boto3_ms:.1f} ms (boto3 import floor)",
                   note=f"python -c pass: {bare_ms:.1f} ms; OSC: no process but client secret in file")
            if BASELINE:
                before = [*entry_point("ood-k8s", BASELINE), *plugin[1:]]
                ms = interleaved_medians({
                    "now": lambda: subprocess.run(plugin, env=env, capture_output=True, check=True),
                    "before": lambda: subprocess.run(before, env=env, capture_output=True, check=True)}, runs=21)
                report(f"  cache hit, this checkout vs {BASELINE} (same rounds)",
                       f"{ms['now']:.1f} / {ms['before']:.1f} ms", "", note=f"ratio {ms['now'] / ms['before']:.2f}")

            source = tokens.token_source(cfg, "alice")
            report("adapter token per poll, in-process (file + json)",
                   f"{median_ms(lambda: tokens.token_source(cfg, 'alice')(False), runs=200):.3f} ms",
                   "kubectl fork per call", note=f"memoised: {median_ms(lambda: source(False), runs=200):.4f} ms")

            cache = TokenCache(tmp, "alice")

            def expire() -> None:
                cached = cache.read()
                assert cached is not None
                cache.write(cached.replace(id_expires_at=time.time() - 1))

            def refresh_in_process() -> None:
                expire()
                tokens.current_tokens(cache)

            report("token refresh against moto, in-process", fmt_ms(median_ms(refresh_in_process, runs=10)),
                   "n/a", note="REFRESH_TOKEN_AUTH, unsigned POST")
            if os.geteuid() == 0:
                report("user kubeconfig, unchanged (forked child as the user)",
                       fmt_ms(_kubeconfig_unchanged_ms(cfg)), "kubectl config set-credentials",
                       note="OSC: one kubectl process per login")
            samples = []
            for _ in range(10):
                expire()
                samples.append(process_ms(plugin, runs=1, env=env))
            samples.sort()
            report("kubectl plugin call, refresh (process)", fmt_ms(samples[len(samples) // 2]),
                   f"{boto3_ms:.1f} ms + the call", note="no boto3 import in the plugin")


def _kubeconfig_unchanged_ms(cfg: Config) -> float:
    """The hook's kubeconfig step when nothing changed: read as the user in a forked child, compare."""
    import shutil

    from ood_k8s import config
    from ood_k8s.core import names
    from ood_k8s.core.identity import Identity
    from ood_k8s.kubeconfig import user as userkubeconfig

    top = tempfile.mkdtemp(prefix="ood-k8s-bench-")
    try:
        os.chmod(top, 0o711)  # noqa: S103 - the user's uid must reach its home below
        home = os.path.join(top, "alice")
        os.mkdir(home, 0o700)
        os.chown(home, 20001, 20001)
        ident = Identity("alice", 20001, 20001, home, ("alice",), ())
        cfg = config.replace(cfg, auth=config.replace(
            cfg.auth, credential_command="/usr/local/bin/ood-k8s"))
        n = names.for_user("alice")
        userkubeconfig.write(cfg, ident, n)
        return median_ms(lambda: userkubeconfig.write(cfg, ident, n), runs=30)
    finally:
        shutil.rmtree(top)

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The per-login hook: ``ood-k8s-pre-hook --user USERNAME``, named in ``pun_pre_hook_root_cmd``.

nginx_stage runs it as root whenever a user's per-user nginx (PUN) starts, with the variables
listed in ``pun_pre_hook_exports`` prefixed ``OOD_``.  It discards the hook's stdout, only logs a
non-zero exit, and starts the PUN anyway -- so this hook reports to syslog (``hook.syslog_facility``,
``hook.syslog_ident``) and stderr, one line per event, and never writes a token into a line.

Steps, in order: check the username and the user's NSS identity (uid >= ``users.min_uid``,
``users.allowed_groups``); take the user's lock; one API request that says whether the user's
cluster objects are current (:func:`ood_k8s.users.provision.ensure`) and, only if not, the Cognito user,
the home directory, the cluster objects and the storage objects; the user's tokens (no Cognito call
while the refresh token is valid); the user's kubeconfig.

Exit codes:

== ==========================================================================================
0  the user is set up (or already was); or the cluster or identity provider failed (or the hook
   ran past ``hook.deadline``) and ``hook.on_failure`` is ``open``: the portal starts without
   Kubernetes access (a warning line)
1  an unexpected failure, e.g. a broken site template; a refusal after provisioning began (e.g.
   an invalid ``~/.kube/config``), when objects may already have been made; a credential command
   the user cannot run (an error line says which and how to fix it)
2  refused before anything was done, nothing changed: an invalid or unknown username, a uid below
   ``users.min_uid``, a user in none of ``users.allowed_groups``, bad arguments
69 the cluster or identity provider is unreachable, failing or refusing, or the hook ran past
   ``hook.deadline``, and ``hook.on_failure`` is ``closed``
77 refused for safety: not run as root, a symbolic link where a file was to be written, a
   namespace of that name that is not this user's
78 the configuration file is invalid
== ==========================================================================================
"""

import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, TextIO

from ood_k8s.core import names
from ood_k8s.core.alarm import Alarm
from ood_k8s.core.errors import (
    CloudError,
    CredentialError,
    DeadlineExceeded,
    IdentityProviderError,
    KubeError,
    OodK8sError,
    SecurityError,
    UsageError,
)
from ood_k8s.core.process import exit_now, read_argv

if TYPE_CHECKING:
    import argparse

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_UNSAFE, EXIT_CONFIG = 0, 1, 2, 69, 77, 78
EXPORT_PREFIX = "OOD_"
EXIT_CODES_HELP = """exit codes:
  0   set up, or already current; or the cluster/identity provider failed (or hook.deadline passed)
      with hook.on_failure: open
  1   unexpected failure (e.g. a broken site template); a refusal after provisioning began (objects
      may exist, e.g. an invalid ~/.kube/config); a credential command the user cannot run
  2   refused before anything was done, nothing changed: invalid or unknown user, uid below
      users.min_uid, not in users.allowed_groups, bad arguments
  69  cluster or identity provider unreachable or failing, or hook.deadline passed, with
      hook.on_failure: closed
  77  refused for safety: not root, a symbolic link in the way, a namespace that is not this user's
  78  invalid configuration
Every outcome is one line on syslog (hook.syslog_facility, hook.syslog_ident) and stderr."""
# Failures of what the hook depends on, as opposed to bad input or a bad installation.
SERVICE_ERRORS = (KubeError, IdentityProviderError, CloudError, CredentialError, DeadlineExceeded)

# Anything shaped like a JWT (or a JWE refresh token) is a credential, whoever produced the text.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,4}")
_FACILITIES = ("auth", "authpriv", "cron", "daemon", "user", "syslog",
               *(f"local{i}" for i in range(8)))
_PRIORITY = {"err": 3, "warning": 4, "notice": 5, "info": 6}


class HookLog:
    """One-line log records to syslog and stderr, with every exported secret masked."""

    def __init__(self, env: Mapping[str, str], stderr: Optional[TextIO] = None,
                 syslog: Optional[Callable[[int, str], None]] = None) -> None:
        # Every value the portal exported is treated as secret: tokens, cookies, claims.
        self._secrets = sorted({v for k, v in env.items() if k.startswith(EXPORT_PREFIX) and len(v) >= 8},
                               key=len, reverse=True)
        self._stderr = stderr if stderr is not None else sys.stderr
        self._syslog = syslog
        self._injected = syslog is not None
        self.ident = "ood-k8s-hook"
        self.lines: list[str] = []

    def configure(self, facility: str, ident: str) -> None:
        self.ident = ident or self.ident
        if self._injected:
            return
        import syslog

        name = facility.lower()
        if name not in _FACILITIES:
            self.emit("warning", f"hook.syslog_facility {facility!r} is not a syslog facility; using authpriv")
            name = "authpriv"
        syslog.openlog(self.ident, syslog.LOG_PID, getattr(syslog, f"LOG_{name.upper()}"))
        self._syslog = syslog.syslog

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return _JWT.sub("<token>", text)

    def emit(self, level: str, text: str) -> None:
        line = self.redact(" ".join(str(text).split()))
        self.lines.append(line)
        if self._syslog is not None:
            try:
                self._syslog(_PRIORITY[level], line)
            except OSError:
                pass  # no syslog daemon: stderr still has the line
        try:
            print(f"{self.ident}: {level}: {line}", file=self._stderr, flush=True)
        except (OSError, ValueError):
            pass


def _parser() -> "argparse.ArgumentParser":
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # argparse would print its usage and exit 2 unlogged
            raise UsageError(f"bad arguments: {message}", "OOD runs the hook as: ood-k8s-pre-hook --user USERNAME")

    p = _Parser(prog="ood-k8s-pre-hook", description="Per-login hook of ood-k8s (pun_pre_hook_root_cmd).",
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_CODES_HELP)
    p.add_argument("--user", required=True, help="portal username (nginx_stage passes it)")
    p.add_argument("--config", help="site configuration (default: $OOD_K8S_CONFIG, then /etc/ood/config/ood_k8s.yml)")
    p.add_argument("--force", action="store_true", help="re-provision even when the cluster objects look current")
    from ood_k8s import __version__

    p.add_argument("--version", action="version", version=f"ood-k8s-pre-hook {__version__}")
    return p


class _Args:
    def __init__(self, user: str, config: Optional[str], force: bool) -> None:
        self.user, self.config, self.force = user, config, force


def _parse_args(argv: list[str]) -> tuple[Any, list[str]]:
    """``(args, unknown)`` as argparse's parse_known_args would give them.

    What nginx_stage passes -- ``--user NAME``, perhaps ``--config FILE`` and ``--force`` -- is read
    here: building an argparse parser costs ~5 ms (it imports shutil, gettext and locale) on every
    login.  Anything else (help, a typo, a missing value) goes to argparse for its usual answer.
    """
    try:
        values, _ = read_argv(argv, ("user", "config"), ("force",), positionals=False)
    except UsageError:
        values = {}
    if "user" not in values:
        return _parser().parse_known_args(argv)
    return _Args(values["user"], values.get("config"), "force" in values), []


def main(argv: Optional[Sequence[str]] = None, *, environ: Optional[Mapping[str, str]] = None,
         syslog: Optional[Callable[[int, str], None]] = None, stderr: Optional[TextIO] = None) -> int:
    started = time.perf_counter()
    env = dict(os.environ if environ is None else environ)
    log = HookLog(env, stderr, syslog)
    try:
        log.configure("authpriv", "ood-k8s-hook")  # until the configuration names others
        args, unknown = _parse_args(list(sys.argv[1:] if argv is None else argv))
        if unknown:
            log.emit("warning", f"ignoring {len(unknown)} unknown argument(s)")
        from ood_k8s import config

        cfg = config.load_site(args.config)  # never the built-in example (kubernetes.example.edu)
        log.configure(cfg.hook.syslog_facility, cfg.hook.syslog_ident)
        return run(cfg, args.user, env, log, force=args.force, started=started)
    except OodK8sError as err:
        log.emit("err", str(err))
        return err.exit_code
    except ImportError as exc:
        log.emit("err", f"ood-k8s is not completely installed for {sys.executable}: {exc}: install it with pip "
                 "for that interpreter, or point OOD_K8S_PYTHON at the right one")
        return EXIT_FAILED
    except Exception as exc:  # a bug: one line where admins look, not a traceback in nginx's log
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f" at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}" if tb else ""
        log.emit("err", f"internal error {type(exc).__name__}{where}: {exc}: please report it")
        return EXIT_FAILED


def run(cfg: Any, username: str, env: Mapping[str, str], log: HookLog, *, client: Any = None,
        force: bool = False, started: Optional[float] = None,
        geteuid: Callable[[], int] = os.geteuid) -> int:
    """The hook proper, for a loaded configuration; returns the exit code."""
    from ood_k8s.users import provision

    started = time.perf_counter() if started is None else started
    who = f"user '{names.printable(username)}'"
    try:
        if geteuid() != 0:
            raise SecurityError("the hook must run as root", "name it in pun_pre_hook_root_cmd of ood_portal.yml")
        ident = provision.admit(cfg, username)
    except OodK8sError as err:
        log.emit("warning", f"{who} refused: {err}")
        return err.exit_code
    exports = {k: v for k, v in env.items() if k.startswith(EXPORT_PREFIX)}
    timer = deadline(cfg.hook.deadline - (time.perf_counter() - started))
    try:
        with timer, provision.user_lock(cfg, username):
            if client is None:
                from ood_k8s.kubeconfig.clients import as_provisioner

                client = as_provisioner(cfg)
            outcome = provision.ensure(cfg, ident, client, force=force)
            from ood_k8s.auth import login
            from ood_k8s.kubeconfig import user as userkubeconfig

            tokens = login.ensure_tokens(cfg, ident, exports)
            wrote = userkubeconfig.write_checked(cfg, ident, provision.user_names(cfg, username))
    except SERVICE_ERRORS as err:
        if timer.expired and not isinstance(err, DeadlineExceeded):  # a client wrapped our interruption
            err = DeadlineExceeded(f"the hook ran past its deadline of {timer.seconds:g} s ({err.message})",
                                   err.hint)
        if cfg.hook.on_failure == "open":
            log.emit("warning", f"{who}: {err}; the portal starts without Kubernetes access "
                     "(hook.on_failure: open)")
            return EXIT_OK
        log.emit("err", f"{who}: {err} (hook.on_failure: closed)")
        return EXIT_UNAVAILABLE
    except OodK8sError as err:
        log.emit("err", f"{who}: {err}")
        # 2 promises "nothing changed": past admission something may have been, so a late refusal is 1.
        return EXIT_FAILED if err.exit_code == EXIT_REFUSED else err.exit_code
    ms = (time.perf_counter() - started) * 1000
    detail = f"; {'; '.join(outcome.changes)}" if outcome.changes else ""
    log.emit("info" if outcome.action == provision.CURRENT else "notice",
             f"{who}: namespace {outcome.namespace} {outcome.action} ({outcome.round_trips} API "
             f"request{'s' if outcome.round_trips != 1 else ''}){detail}; credentials {tokens}; kubeconfig "
             f"{'written' if wrote.changed else 'unchanged'} ({ms:.0f} ms)")
    if wrote.command_problem:
        log.emit("err", f"{who}: kubectl cannot run the credential command written into the kubeconfig: "
                 f"{wrote.command_problem}")
        return EXIT_FAILED
    return EXIT_OK


def deadline(seconds: float) -> Alarm:
    """The login's overall deadline: a hung API server or Cognito endpoint (a socket that accepts and
    never answers) would otherwise hold the login for every retry's timeout."""
    seconds = max(seconds, 0.001)
    return Alarm(seconds, lambda: DeadlineExceeded(
        f"the hook ran past its deadline of {seconds:g} s",
        "the cluster or identity provider is not answering; raise hook.deadline if it is just slow"))


def cli() -> None:
    """The ``ood-k8s-pre-hook`` command (one process per login: see :func:`~ood_k8s.core.process.exit_now`)."""
    exit_now(main())


if __name__ == "__main__":
    cli()

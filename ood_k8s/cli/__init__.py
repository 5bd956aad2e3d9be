# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``ood-k8s``: the admin and user command line.

Each concern registers its own sub-commands from a module ``ood_k8s.cli.<concern>`` (see
``_COMMAND_MODULES``).  Those modules import only :mod:`argparse` at the top and defer the real
work to their handlers, so ``ood-k8s --help`` and the credential plugin start fast.  Handlers
receive the parsed arguments and return an exit code; an :class:`~ood_k8s.core.errors.OodK8sError`
becomes one line on stderr and its exit code -- never a traceback.
"""

import importlib
import sys
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from ood_k8s import __version__
from ood_k8s.core.process import exit_now, run_guarded
from ood_k8s.core.vocab import COMMAND

if TYPE_CHECKING:
    import argparse

    from ood_k8s.config import Config

# Order is the order in --help.
_COMMAND_MODULES = ("config", "demo", "job", "user", "storage", "cluster", "ood", "agent", "usage", "capacity",
                    "completion")


def build_parser() -> "argparse.ArgumentParser":
    import argparse  # deferred: the credential plugin (below) never builds a parser

    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Open OnDemand interactive sessions on Kubernetes: users, sessions, cluster manifests.")
    parser.add_argument("--version", action="version", version=f"ood-k8s {__version__}")
    parser.add_argument("--config", metavar="FILE",
                        help="site configuration (default: $OOD_K8S_CONFIG, then /etc/ood/config/ood_k8s.yml, "
                             "then the built-in default); '-' reads stdin")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"ood_k8s.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ood_k8s.cli.{name}":
                continue  # a concern that is not installed in this build
            raise
        module.register(sub)
    sub.add_parser("credential", help="kubectl exec credential plugin (used from kubeconfigs)",
                   add_help=False)
    return parser


def _plugin_call(args: Sequence[str]) -> bool:
    return list(args[:1]) == ["credential"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if _plugin_call(args_list):
        # Hot path: every kubectl process runs the plugin; skip building the whole parser.
        from ood_k8s.auth.plugin import main as credential_main

        return _guard(lambda: credential_main(args_list[1:]))
    parser = build_parser()
    args = parser.parse_args(args_list)
    handler: Optional[Callable[[argparse.Namespace], int]] = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return _guard(lambda: handler(args))


def cli() -> None:
    """The ``ood-k8s`` command.  The credential plugin runs once per kubectl command, so it skips
    the interpreter's teardown (:func:`~ood_k8s.core.process.exit_now`); admin commands exit normally."""
    code = main()
    if _plugin_call(sys.argv[1:]):
        exit_now(code)
    sys.exit(code)


def _guard(fn: Callable[[], int]) -> int:
    return run_guarded(COMMAND, fn)


def load_config(args: "argparse.Namespace", site: bool = False) -> "Config":
    """The configuration; ``site``: the command acts on a cluster or AWS, so the built-in default
    (the example: kubernetes.example.edu...) is refused rather than used."""
    from ood_k8s import config

    path = getattr(args, "config", None)
    return config.load_site(path) if site else config.load(path)


if __name__ == "__main__":
    cli()

"""``ood-k8s config example|check|show``."""

from __future__ import annotations

import argparse
import sys

from ood_k8s.cli.output import add_output, emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print an example configuration, check or show the configuration")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("example", help="print a complete, commented example").set_defaults(handler=_example)
    check = verbs.add_parser(
        "check", help="validate a configuration and the files it names; every problem on one line; writes nothing",
        description="Check the schema, the CA file, the provisioner kubeconfig, the secrets file, who can read "
                    "each file, and values still the example's. Exit status 78 if anything is wrong.")
    check.add_argument("--config", dest="check_config", metavar="FILE", help="file to check ('-' for stdin)")
    check.set_defaults(handler=_check)
    show = verbs.add_parser("show", help="print the effective configuration (secrets redacted)")
    show.add_argument("--config", dest="show_config", metavar="FILE", help="file to show ('-' for stdin)")
    add_output(show, ("yaml", "json"), "yaml")
    show.set_defaults(handler=_show)


def _example(args: argparse.Namespace) -> int:
    from ood_k8s import config

    sys.stdout.write(config.example())
    return 0


def _check(args: argparse.Namespace) -> int:
    from ood_k8s import config
    from ood_k8s.config.checks import site_problems
    from ood_k8s.core.errors import ConfigError

    path = args.check_config or args.config
    shown = path or config.resolve_path(None) or "<built-in default>"
    cfg, problems = site_problems(path)
    for line in problems:
        print(f"{shown if shown != '-' else '<stdin>'}: {line}", file=sys.stderr)
    if problems:
        return ConfigError.exit_code
    assert cfg is not None
    print(f"{cfg.source}: OK ({len(cfg.profiles)} profiles, storage {cfg.storage.mode}, auth {cfg.auth.mode})")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ood_k8s import config

    cfg = config.load(args.show_config or args.config)
    header = f"# source: {cfg.source}\n" if args.output == "yaml" else ""
    emit(config.to_dict(cfg), args.output, header=header)
    return 0

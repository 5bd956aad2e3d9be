"""``ood-k8s config example|check|show``."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print an example configuration, check or show the configuration")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("example", help="print a complete, commented example").set_defaults(handler=_example)
    check = verbs.add_parser("check", help="validate a configuration file; every problem on one line")
    check.add_argument("--config", dest="check_config", metavar="FILE", help="file to check ('-' for stdin)")
    check.set_defaults(handler=_check)
    verbs.add_parser("show", help="print the effective configuration (secrets redacted)").set_defaults(
        handler=_show)


def _example(args: argparse.Namespace) -> int:
    from ood_k8s import config

    sys.stdout.write(config.example())
    return 0


def _check(args: argparse.Namespace) -> int:
    from ood_k8s import config
    from ood_k8s.core.errors import ConfigError

    path = args.check_config or args.config
    shown = path or config.resolve_path(None) or "<built-in default>"
    try:
        cfg = config.load(path)
    except ConfigError as err:
        for line in err.problems or [str(err)]:
            print(f"{shown if shown != '-' else '<stdin>'}: {line}" if err.problems else line, file=sys.stderr)
        return 1
    print(f"{cfg.source}: OK ({len(cfg.profiles)} profiles, storage {cfg.storage.mode}, auth {cfg.auth.mode})")
    return 0


def _show(args: argparse.Namespace) -> int:
    import yaml

    from ood_k8s import config

    cfg = config.load(args.config)
    sys.stdout.write(f"# source: {cfg.source}\n")
    sys.stdout.write(yaml.safe_dump(config.to_dict(cfg), sort_keys=False, allow_unicode=True))
    return 0

"""``ood-k8s ood config|form-options|convert-app``: the Open OnDemand files, generated from the site config,
and apps written for OOD's Kubernetes adapter converted for the psij adapter."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ood", help="generate the Open OnDemand cluster file, ood_portal.yml lines and "
                                   "the Jupyter form's options; convert apps written for OOD's Kubernetes adapter")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    cfg = verbs.add_parser("config", help="write (or print) clusters.d/<cluster_id>.yml, the ood_portal.yml "
                                          "lines and ood_k8s/form_options.json")
    cfg.add_argument("--out", metavar="DIR",
                     help="directory to write into, e.g. /etc/ood/config (default: print to stdout)")
    cfg.add_argument("--psij", metavar="PATH", help="installed ood-k8s-psij (default: found beside this "
                                                    "interpreter or on PATH)")
    cfg.add_argument("--hook", metavar="PATH", help="installed ood-k8s-pre-hook (default: found beside this "
                                                    "interpreter, on PATH or in this checkout)")
    cfg.add_argument("--force", action="store_true", help="replace files that ood-k8s did not generate")
    cfg.set_defaults(handler=_config)
    verbs.add_parser("form-options", help="print the Jupyter form's options as JSON").set_defaults(
        handler=_form_options)
    conv = verbs.add_parser("convert-app", help="rewrite the submit.yml.erb of an app written for OOD's Kubernetes "
                                                "adapter (native: as a mapping) so it launches through ood-k8s-psij")
    conv.add_argument("app", metavar="DIR", help="the app's directory, e.g. /var/www/ood/apps/sys/my_app")
    conv.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    conv.set_defaults(handler=_convert_app)


def _config(args: argparse.Namespace) -> int:
    from ood_k8s.cli import load_config
    from ood_k8s.ood import files as oodconfig

    cfg = load_config(args, site=bool(args.out))  # writing OOD's files: never from the built-in example
    psij = args.psij or oodconfig.default_psij_path()
    hook = args.hook or oodconfig.default_hook_path()
    generated = oodconfig.files(cfg, psij, hook)
    if not args.out:
        sys.stdout.write(oodconfig.render_stdout(generated))
        return 0
    generated.update(oodconfig.app_files(cfg))
    for path in oodconfig.write(generated, args.out, force=args.force):
        print(f"wrote {path}")
    print(f"next: merge {oodconfig.PORTAL_SNIPPET_PATH} into ood_portal.yml and run update_ood_portal")
    print(f"once: ln -s {args.out.rstrip('/')}/ood_k8s/apps/sessions /var/www/ood/apps/sys/sessions "
          "(the 'My GPU sessions' app)")
    return 0


def _form_options(args: argparse.Namespace) -> int:
    import json

    from ood_k8s.cli import load_config
    from ood_k8s.ood import files as oodconfig

    json.dump(oodconfig.form_options(load_config(args)), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _convert_app(args: argparse.Namespace) -> int:
    """Exit 0 when the app is ready for ood-k8s, 1 when the report lists something to do by hand."""
    from ood_k8s.cli import load_config
    from ood_k8s.ood import convert

    conversion = convert.convert_app(args.app, load_config(args).portal.cluster_id, dry_run=args.dry_run)
    sys.stdout.write(convert.report(args.app, conversion, dry_run=args.dry_run))
    return 1 if conversion.by_hand else 0

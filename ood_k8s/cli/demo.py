"""``ood-k8s demo``: everything a first login and one GPU Jupyter session create, rendered and validated.

No cluster and no AWS account: the objects are built by the same pure functions the hook and the
adapter use, then validated strictly against the Kubernetes OpenAPI schema of
``cluster.kubernetes_version``.  Values the API server or AWS would assign (the pod's uid, the EFS
access point id) are shown as placeholders.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="render and validate a sample user's first login and GPU Jupyter session "
                                    "(no cluster or AWS account needed)")
    p.add_argument("--user", default="alice", help="sample portal username (default: alice)")
    p.add_argument("--profile", default=None, help="session profile (default: the first GPU profile)")
    p.add_argument("--output", choices=("yaml", "json", "summary"), default="yaml")
    p.set_defaults(handler=_demo)


def sample_identity(username: str):
    from ood_k8s.core.identity import Identity

    return Identity(username=username, uid=20001, gid=20001, home=f"/home/{username}",
                    groups=(username, "students", "gpu-users"), gids=(30001, 30002))


def build(cfg, username: str = "alice", profile: str | None = None) -> list[tuple[str, list[dict]]]:
    """[(section title, objects)] for the demo; every object already schema-validated."""
    from ood_k8s.cluster.manifests import gpu_profiles
    from ood_k8s.core import names
    from ood_k8s.core.errors import ConfigError
    from ood_k8s.kubeconfig import user as userkubeconfig
    from ood_k8s.render import render
    from ood_k8s.sessions import objects
    from ood_k8s.sessions.request import Script
    from ood_k8s.sessions.resolve import resolve
    from ood_k8s.storage import backend as storage
    from ood_k8s.users.desired import desired_objects

    ident = sample_identity(username)
    user = names.for_user(username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix)
    login = desired_objects(cfg, ident, now="2026-01-01T00:00:00Z")
    login += storage.volume_objects(cfg, ident, user, volume_id="fsap-0123456789abcdef0")
    gpu = gpu_profiles(cfg)
    chosen = profile or (gpu[0].name if gpu else cfg.jobs.default_profile)
    script = Script(content="#!/bin/bash\nexec jupyter lab\n", job_name="jupyter", wall_time=2 * 3600,
                    native=["--profile", chosen, "--port", "8888"])
    spec = resolve(script, cfg, ident, submit_host="ood.example.edu")
    job_id = names.job_id("jupyter", b"demo-job")
    secret_data = {"password": "<generated at submit>"}
    if objects.exposes_node_port(spec):
        secret_data["port"] = "<node port assigned by the API server>"
    session = objects.build(spec, job_id, pod_uid="00000000-0000-4000-8000-000000000000", secret_data=secret_data)
    for obj in session:
        render.validate(obj, cfg.cluster.kubernetes_version, "job")  # already valid: proved here, not assumed
    try:
        command = userkubeconfig.credential_command(cfg)
    except ConfigError:  # running from a checkout: show where an installed one would be
        command = "/usr/local/bin/ood-k8s"
    kubeconfig = userkubeconfig.desired(None, cfg, username, user.namespace,
                                        {"server": cfg.cluster.server or "https://<from cluster.kubeconfig>"},
                                        command)
    return [(f"First login of '{username}' (hook: per-user objects and home volume)", login),
            (f"~{username}/{cfg.users.kubeconfig} (0600, written as the user; no secret in it)", [kubeconfig]),
            (f"One '{chosen}' Jupyter session ({job_id})", session)]


def _demo(args: argparse.Namespace) -> int:
    import json
    import sys

    import yaml

    from ood_k8s.cli import load_config

    cfg = load_config(args)
    sections = build(cfg, args.user, args.profile)
    out = sys.stdout
    total = sum(len(objs) for _, objs in sections)
    if args.output == "json":
        json.dump({title: objs for title, objs in sections}, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"# ood-k8s demo -- config: {cfg.source}\n")
    out.write(f"# {total} documents; every Kubernetes object is valid against the Kubernetes "
              f"{cfg.cluster.kubernetes_version} OpenAPI schema (strict)\n")
    for title, objs in sections:
        out.write(f"\n# === {title}: {len(objs)} document{'s' if len(objs) != 1 else ''} ===\n")
        for obj in objs:
            meta = obj.get("metadata", {})
            where = f" in {meta['namespace']}" if meta.get("namespace") else ""
            name = meta.get("name") or obj.get("current-context")
            mark = "✔" if obj["kind"] != "Config" else "·"  # a kubeconfig is not an API object
            out.write(f"#  {mark} {obj['kind']}/{name}{where}\n")
        if args.output == "yaml":
            for obj in objs:
                out.write("---\n")
                out.write(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=110))
    return 0

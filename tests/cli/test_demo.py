"""The README's first command: `ood-k8s demo` renders and validates without a cluster or AWS."""

from __future__ import annotations

import json
import subprocess
import sys

from ood_k8s import config
from ood_k8s.cli import demo as cli_demo
from ood_k8s.render import schema


def test_demo_objects_are_complete_and_valid() -> None:
    cfg = config.Config()
    sections = cli_demo.build(cfg)
    kinds = [o["kind"] for _, objs in sections for o in objs]
    assert kinds == ["Namespace", "LimitRange", "NetworkPolicy", "NetworkPolicy", "ResourceQuota", "RoleBinding",
                     "PersistentVolume", "PersistentVolumeClaim", "Config", "Pod", "Secret", "ConfigMap"]
    for _, objs in sections:
        for obj in objs:
            if obj["kind"] != "Config":
                schema.validate(obj, cfg.cluster.kubernetes_version)
    pod = sections[2][1][0]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    kubeconfig = sections[1][1][0]
    assert "secret" not in json.dumps(kubeconfig).lower()


def test_demo_command_prints_yaml() -> None:
    out = subprocess.run([sys.executable, "-m", "ood_k8s", "demo"], capture_output=True, text=True, check=True)
    assert "✔ Pod/jupyter-" in out.stdout and out.stdout.count("\n---\n") == 12
    assert out.stderr == ""

"""Site configuration: defaults, example round trip, every problem reported, secrets hidden."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from ood_k8s import config
from ood_k8s.core.errors import ConfigError


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as err:
        config.parse(data, "site.yml")
    assert "\n" not in str(err.value)
    return err.value.problems


def test_builtin_default_is_complete_and_valid() -> None:
    cfg = config.Config()
    assert config.parse(config.to_dict(cfg, redact=False)) == cfg
    assert cfg.profile(cfg.jobs.default_profile).name == "cpu"


def test_example_is_the_default_and_commented() -> None:
    text = config.example()
    assert config.parse(yaml.safe_load(text)) == config.Config()
    assert text.count("\n# ") + text.count("  # ") > 50  # every key documented


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    assert problems({"cluster": {"servr": "x"}}) == [
        "cluster.servr: unknown key (did you mean 'server'?); expected one of: name, server, "
        "certificate_authority, kubeconfig, context, provisioner_kubeconfig, kubernetes_version, "
        "request_timeout, retries, connection, nodeport_host, portal_cidrs, pod_cidrs, "
        "strict_supplemental_groups, aws_region, eks_name, autoscaler, "
        "karpenter_node_role, provisioner_subject"]


def test_every_problem_is_reported_with_path_value_and_expectation() -> None:
    got = problems({
        "cluster": {"retries": "many", "connection": "ssh", "portal_cidrs": ["10.0.0.0/33"]},
        "users": {"quota": {"memory": "lots"}, "namespace_prefix": "OOD_"},
        "profiles": [{"name": "gpu", "cpu": {"max": "4 cores"}}],
        "jobs": {"csi_drivers": ["secrets-store.csi.k8s.io", "Efs.CSI", "x\" || true || \""]},
    })
    assert got == [
        "cluster.retries: got 'many', expected an integer",
        "cluster.connection: got 'ssh', expected one of 'pod_ip', 'nodeport'",
        "cluster.portal_cidrs[0]: got '10.0.0.0/33', expected a CIDR such as 10.0.0.0/16",
        "users.quota.memory: got 'lots', expected a Kubernetes quantity such as 500m, 2, 8Gi",
        "users.namespace_prefix: got 'OOD_', expected empty or lowercase letters, digits and '-' (at most 20 "
        "characters), e.g. 'ood-'",
        "profiles[0].cpu.max: got '4 cores', expected a Kubernetes quantity such as 500m, 2, 8Gi",
        "profiles[0].image: missing, expected a string",
        "jobs.csi_drivers[1]: got 'Efs.CSI', expected a CSI driver name such as secrets-store.csi.k8s.io "
        "(lowercase, at most 63 characters)",
        "jobs.csi_drivers[2]: got 'x\" || true || \"', expected a CSI driver name such as secrets-store.csi.k8s.io "
        "(lowercase, at most 63 characters)",
    ]


def test_cross_checks() -> None:
    base = {"name": "p", "image": "i"}
    got = problems({
        "jobs": {"default_profile": "nope", "default_walltime": 10, "max_walltime": 5},
        "profiles": [dict(base, gpu={"default": 2, "max": 1}), dict(base, memory={"default": "8Gi", "max": "4Gi"})],
        "storage": {"mode": "hostpath"},
    })
    assert got == [
        "profiles: got name 'p' twice, expected unique profile names",
        "jobs.default_profile: got 'nope', expected one of ['p', 'p']",
        "profiles[0].gpu: got default 2 > max 1, expected default <= max",
        "profiles[1].memory: got default 8Gi > max 4Gi, expected default <= max",
        "jobs.default_walltime: got 10, expected <= jobs.max_walltime (5)",
        "storage.mode: got 'hostpath', expected users.pod_security: privileged to go with it (Pod Security "
        "'restricted' and 'baseline' forbid hostPath volumes)",
    ]


def test_numbers_are_accepted_where_strings_are_meant() -> None:
    cfg = config.parse({"users": {"quota": {"cpu": 16}}, "profiles": [{"name": "c", "image": "i", "cpu": {
        "default": 1, "max": 2.5}}], "jobs": {"default_profile": "c"}})
    assert cfg.users.quota.cpu == "16" and cfg.profiles[0].cpu.max == "2.5"


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="top level is list"):
        config.parse([1, 2])


def test_secrets_are_redacted() -> None:
    cfg = config.parse({"users": {"image_pull_secret": {"name": "pull", "dockerconfigjson": '{"auths": {}}'}}})
    shown = config.to_dict(cfg)
    assert shown["users"]["image_pull_secret"] == {"name": "pull", "dockerconfigjson": config.SECRET_MASK}
    assert '"auths"' not in config.example()


def test_load_resolution(tmp_path, monkeypatch) -> None:
    f = tmp_path / "c.yml"
    f.write_text("portal: {name: dev}\n")
    monkeypatch.setenv(config.ENV_VAR, str(f))
    assert config.load().portal.name == "dev"
    assert config.load().source == str(f)
    monkeypatch.delenv(config.ENV_VAR)
    assert config.load().source == "<built-in default>"
    with pytest.raises(ConfigError, match=r"cannot read config /nope\.yml"):
        config.load("/nope.yml")
    f.write_text("portal: [\n")
    with pytest.raises(ConfigError, match="line 2 is not valid YAML"):
        config.load(str(f))


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ood_k8s", *args], input=stdin, capture_output=True, text=True,
                          check=False)


def test_cli_example_pipes_into_check() -> None:
    # Issue 14: the example's schema is valid, but its placeholder values are flagged (exit 78).
    example = run_cli("config", "example")
    assert example.returncode == 0
    check = run_cli("config", "check", "--config", "-", stdin=example.stdout)
    assert check.returncode == 78, check.stderr
    assert "got" not in check.stderr and "expected" not in check.stderr.replace("expected root-only", "")
    assert "<stdin>: cluster.server: 'https://kubernetes.example.edu:6443' is the example's placeholder" in check.stderr


def test_cli_check_lists_every_problem_and_exits_1() -> None:
    check = run_cli("config", "check", "--config", "-", stdin="cluster: {retries: x, servr: 1}\njobs: 3\n")
    assert check.returncode == 78  # issue 14: EX_CONFIG, as every other command exits for a config problem
    lines = check.stderr.strip().splitlines()
    assert lines == [
        "<stdin>: cluster.retries: got 'x', expected an integer",
        "<stdin>: cluster.servr: unknown key (did you mean 'server'?); expected one of: name, server, "
        "certificate_authority, kubeconfig, context, provisioner_kubeconfig, kubernetes_version, request_timeout, "
        "retries, connection, nodeport_host, portal_cidrs, pod_cidrs, "
        "strict_supplemental_groups, aws_region, eks_name, autoscaler, karpenter_node_role, "
        "provisioner_subject",
        "<stdin>: jobs: got 3, expected a mapping",
    ]
    assert "Traceback" not in check.stderr


def test_cli_show_redacts(tmp_path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("users: {image_pull_secret: {name: p, dockerconfigjson: TOPSECRET}}\n")
    shown = run_cli("--config", str(f), "config", "show")
    assert shown.returncode == 0 and "TOPSECRET" not in shown.stdout and config.SECRET_MASK in shown.stdout

"""``ood-k8s ood config``: the OOD cluster file, the ood_portal.yml lines and the form's options."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from ood_k8s import cli
from ood_k8s.config import GpuConfig, Profile, Range
from ood_k8s.core.errors import ConfigError, UsageError
from ood_k8s.ood import files as oodconfig

PSIJ = "/opt/ood-k8s/bin/ood-k8s-psij"
HOOK = "/opt/ood-k8s/bin/ood-k8s-pre-hook"
SET_HOST = 'host="${OOD_K8S_CONNECT_HOST:-${POD_IP:-$(hostname -i 2>/dev/null | cut -d" " -f1)}}"'


# --- form options --------------------------------------------------------------------------------


def test_form_options_of_the_default_config(make_config):
    assert oodconfig.form_options(make_config()) == {
        "version": 1,
        "cluster_id": "kubernetes",
        "default_profile": "cpu",
        "allowed_groups": [],
        "portal_origin": "",
        "hours": {"min": 1, "default": 1, "max": 8, "step": 1},
        "profiles": [
            {
                "name": "cpu", "label": "CPU only", "summary": "1-8 CPUs, 1-32 GiB memory", "groups": [],
                "cpu": {"min": 1, "default": 1, "max": 8, "step": 1},
                "memory": {"min": 1, "default": 4, "max": 32, "step": 1},
                "gpus": {"min": 0, "default": 0, "max": 0, "step": 1, "resource": "nvidia.com/gpu"},
                "data": {
                    "data-min-cpu": 1, "data-max-cpu": 8, "data-set-cpu": 1, "data-step-cpu": 1,
                    "data-min-memory": 1, "data-max-memory": 32, "data-set-memory": 4, "data-step-memory": 1,
                    "data-min-gpus": 0, "data-max-gpus": 0, "data-set-gpus": 0, "data-step-gpus": 1,
                    "data-hide-gpus": True,
                },
            },
            {
                "name": "gpu-t4", "label": "1 NVIDIA T4 (16 GB)", "summary": "1-4 CPUs, 1-16 GiB memory, 1 GPU",
                "groups": [],
                "cpu": {"min": 1, "default": 4, "max": 4, "step": 1},
                "memory": {"min": 1, "default": 16, "max": 16, "step": 1},
                "gpus": {"min": 1, "default": 1, "max": 1, "step": 1, "resource": "nvidia.com/gpu"},
                "data": {
                    "data-min-cpu": 1, "data-max-cpu": 4, "data-set-cpu": 4, "data-step-cpu": 1,
                    "data-min-memory": 1, "data-max-memory": 16, "data-set-memory": 16, "data-step-memory": 1,
                    "data-min-gpus": 1, "data-max-gpus": 1, "data-set-gpus": 1, "data-step-gpus": 1,
                    "data-hide-gpus": True,
                },
            },
            {
                "name": "gpu-a10g", "label": "Up to 4 NVIDIA A10G (24 GB), whole node",
                "summary": "1-44 CPUs, 1-180 GiB memory, up to 4 GPUs, for gpu-users", "groups": ["gpu-users"],
                "cpu": {"min": 1, "default": 8, "max": 44, "step": 1},
                "memory": {"min": 1, "default": 32, "max": 180, "step": 1},
                "gpus": {"min": 1, "default": 1, "max": 4, "step": 1, "resource": "nvidia.com/gpu"},
                "data": {
                    "data-min-cpu": 1, "data-max-cpu": 44, "data-set-cpu": 8, "data-step-cpu": 1,
                    "data-min-memory": 1, "data-max-memory": 180, "data-set-memory": 32, "data-step-memory": 1,
                    "data-min-gpus": 1, "data-max-gpus": 4, "data-set-gpus": 1, "data-step-gpus": 1,
                },
            },
        ],
    }


def test_form_options_whole_node_fractional_and_hours(make_config):
    whole = Profile(name="big", image="img", description="", cpu=Range("8", "64"), memory=Range("64Gi", "500Gi"),
                    gpu=GpuConfig("amd.com/gpu", 8, 8), whole_node=True, groups=["staff"])
    small = Profile(name="tiny", image="img", description="Tiny", cpu=Range("500m", "2500m"),
                    memory=Range("512Mi", "1536Mi"))
    cfg = make_config(profiles=[whole, small], **{"jobs.default_profile": "tiny", "jobs.default_walltime": 5400,
                                                   "jobs.max_walltime": 4 * 3600 + 1800,
                                                   "users.allowed_groups": ["students"],
                                                   "portal.url": "HTTPS://OOD.Example.edu:8443/pun/sys/dashboard"})
    opts = oodconfig.form_options(cfg)
    assert opts["hours"] == {"min": 1, "default": 2, "max": 4, "step": 1}
    assert opts["default_profile"] == "tiny"
    assert opts["allowed_groups"] == ["students"]
    assert opts["portal_origin"] == "https://ood.example.edu:8443"
    big, tiny = opts["profiles"]
    assert big == {
        "name": "big", "label": "big", "summary": "64 CPUs, 500 GiB memory, 8 GPUs, for staff", "groups": ["staff"],
        "cpu": {"min": 64, "default": 64, "max": 64, "step": 1},
        "memory": {"min": 500, "default": 500, "max": 500, "step": 1},
        "gpus": {"min": 1, "default": 8, "max": 8, "step": 1, "resource": "amd.com/gpu"},
        "data": {
            "data-min-cpu": 64, "data-max-cpu": 64, "data-set-cpu": 64, "data-step-cpu": 1, "data-hide-cpu": True,
            "data-min-memory": 500, "data-max-memory": 500, "data-set-memory": 500, "data-step-memory": 1,
            "data-hide-memory": True,
            "data-min-gpus": 1, "data-max-gpus": 8, "data-set-gpus": 8, "data-step-gpus": 1,
        },
    }
    assert tiny["cpu"] == {"min": 0.5, "default": 0.5, "max": 2.5, "step": "any"}
    assert tiny["memory"] == {"min": 0.5, "default": 0.5, "max": 1.5, "step": "any"}
    assert tiny["summary"] == "0.5-2.5 CPUs, 0.5-1.5 GiB memory"


def test_cli_form_options_prints_the_same_json(capsys):
    assert cli.main(["ood", "form-options"]) == 0
    from ood_k8s.config import Config

    assert json.loads(capsys.readouterr().out) == oodconfig.form_options(Config())


# --- the cluster file and the portal lines --------------------------------------------------------


def test_cluster_file(make_config):
    assert oodconfig.cluster_file(make_config(**{"cluster.name": "prod"}), PSIJ) == {
        "v2": {
            "metadata": {"title": "Kubernetes (prod)"},
            "job": {"adapter": "psij", "executor": "ood_k8s", "bin_overrides": {"python3": PSIJ}},
            # Issue 12: no SSH button to a pod on the session card.
            "batch_connect": {"ssh_allow": False, "basic": {"set_host": SET_HOST}, "vnc": {"set_host": SET_HOST}},
        }
    }


def test_cluster_file_needs_an_absolute_psij_path(make_config):
    with pytest.raises(UsageError, match="not absolute"):
        oodconfig.cluster_file(make_config(), "bin/ood-k8s-psij")


@pytest.mark.parametrize(("pod_ip", "connect_host", "expected"), [
    ("10.1.2.3", "", "10.1.2.3"),
    ("10.1.2.3", "node-7.example", "node-7.example"),
])
def test_set_host_gives_the_address_ood_k8s_gives_the_pod(pod_ip, connect_host, expected):
    env = {"PATH": os.environ["PATH"], "POD_IP": pod_ip}
    if connect_host:
        env["OOD_K8S_CONNECT_HOST"] = connect_host
    out = subprocess.run(["bash", "-c", SET_HOST + '; printf %s "$host"'], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout == expected


def test_portal_settings_cognito(make_config):
    assert oodconfig.portal_settings(make_config(), HOOK) == {
        "pun_pre_hook_root_cmd": HOOK, "node_uri": "/node", "rnode_uri": "/rnode",
        "host_regex": r"10\.\d{1,3}\.\d{1,3}\.\d{1,3}"}


def test_portal_settings_oidc(make_config):
    cfg = make_config(**{"auth.mode": "oidc", "auth.oidc.issuer": "https://idp.example.edu",
                         "auth.oidc.client_id": "ood", "portal.host_regex": r"ip-[0-9-]+\.ec2\.internal"})
    assert oodconfig.portal_settings(cfg, HOOK) == {
        "pun_pre_hook_root_cmd": HOOK,
        "pun_pre_hook_exports": "OIDC_ID_TOKEN,OIDC_REFRESH_TOKEN",
        "oidc_settings": {"OIDCPassIDTokenAs": "claims serialized", "OIDCPassRefreshToken": "On"},
        "node_uri": "/node", "rnode_uri": "/rnode", "host_regex": r"ip-[0-9-]+\.ec2\.internal",
    }
    snippet = oodconfig.portal_snippet(cfg, HOOK)
    assert yaml.safe_load(snippet) == oodconfig.portal_settings(cfg, HOOK)
    assert "OOD_OIDC_ID_TOKEN, OOD_OIDC_REFRESH_TOKEN" in snippet


def test_portal_snippet_cognito_parses_to_the_settings(make_config):
    cfg = make_config(**{"portal.host_regex": "'quoted' \"host\": #regex"})
    text = oodconfig.portal_snippet(cfg, "/opt/hooks dir/ood-k8s-pre-hook")
    assert yaml.safe_load(text) == oodconfig.portal_settings(cfg, "/opt/hooks dir/ood-k8s-pre-hook")
    assert "pun_pre_hook_exports" not in text.replace("(no pun_pre_hook_exports)", "")


def test_hook_exports_must_be_what_nginx_stage_passes(make_config):
    cfg = make_config(**{"auth.mode": "oidc", "auth.oidc.issuer": "https://idp", "auth.oidc.client_id": "x",
                         "auth.oidc.refresh_token_env": "REFRESH"})
    with pytest.raises(ConfigError, match=r"auth\.oidc\.refresh_token_env: got 'REFRESH'.*OOD_"):
        oodconfig.hook_exports(cfg)


# --- files and writing them ------------------------------------------------------------------------


def test_files_agree_with_each_other(make_config):
    cfg = make_config(**{"portal.cluster_id": "eks-gpu"})
    out = oodconfig.files(cfg, PSIJ, HOOK)
    assert sorted(out) == ["clusters.d/eks-gpu.yml", "ood_k8s/form_options.json", "ood_portal.ood-k8s.yml"]
    cluster = yaml.safe_load(out["clusters.d/eks-gpu.yml"])
    assert cluster == oodconfig.cluster_file(cfg, PSIJ)
    form = json.loads(out["ood_k8s/form_options.json"])
    assert form.pop("generated_by").startswith(oodconfig.MARKER)
    assert form == oodconfig.form_options(cfg)
    assert form["cluster_id"] == "eks-gpu"
    for text in out.values():
        assert oodconfig.MARKER in text.splitlines()[0] or oodconfig.MARKER in text[:200]


def test_cluster_file_is_what_ood_reads_with_ruby(make_config, tmp_path):
    # OOD loads clusters.d files with Ruby's YAML.safe_load.
    path = tmp_path / "c.yml"
    path.write_text(oodconfig.files(make_config(), PSIJ, HOOK)["clusters.d/kubernetes.yml"])
    out = subprocess.run(["ruby", "-ryaml", "-rjson", "-e", "print JSON.generate(YAML.safe_load(File.read(ARGV[0])))",
                          str(path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == oodconfig.cluster_file(make_config(), PSIJ)


def test_write_creates_files_0644_and_rewrites_its_own(make_config, tmp_path):
    generated = oodconfig.files(make_config(), PSIJ, HOOK)
    written = oodconfig.write(generated, str(tmp_path))
    assert sorted(written) == sorted(str(tmp_path / rel) for rel in generated)
    for rel, text in generated.items():
        path = tmp_path / rel
        assert path.read_text() == text
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    again = oodconfig.files(make_config(**{"portal.host_regex": "changed"}), PSIJ, HOOK)
    oodconfig.write(again, str(tmp_path))
    assert "changed" in (tmp_path / oodconfig.PORTAL_SNIPPET_PATH).read_text()


def test_write_refuses_a_foreign_file_and_changes_nothing(make_config, tmp_path):
    (tmp_path / "clusters.d").mkdir()
    foreign = tmp_path / "clusters.d" / "kubernetes.yml"
    foreign.write_text("v2: {job: {adapter: slurm}}\n")
    with pytest.raises(UsageError, match=r"was not generated by ood-k8s.*--force"):
        oodconfig.write(oodconfig.files(make_config(), PSIJ, HOOK), str(tmp_path))
    assert foreign.read_text() == "v2: {job: {adapter: slurm}}\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["clusters.d", "kubernetes.yml"]
    oodconfig.write(oodconfig.files(make_config(), PSIJ, HOOK), str(tmp_path), force=True)
    assert oodconfig.MARKER in foreign.read_text()


@pytest.mark.parametrize("link", ["clusters.d", "ood_portal.ood-k8s.yml"])
def test_write_refuses_symlinks(make_config, tmp_path, link):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / link).symlink_to(target if link == "clusters.d" else target / "file")
    with pytest.raises(UsageError, match="symbolic link"):
        oodconfig.write(oodconfig.files(make_config(), PSIJ, HOOK), str(tmp_path / "out"))
    assert list(target.iterdir()) == []
    assert not (tmp_path / "out" / "ood_k8s").exists()


def test_write_needs_an_existing_directory(make_config, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        oodconfig.write({}, str(tmp_path / "missing"))


# --- the command ------------------------------------------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_every_file(capsys):
    code, out, err = _run(["ood", "config", "--psij", PSIJ, "--hook", HOOK], capsys)
    assert (code, err) == (0, "")
    from ood_k8s.config import Config

    expected = oodconfig.files(Config(), PSIJ, HOOK)
    assert out == "".join(f"# ==> {rel} <==\n{text}\n" for rel, text in expected.items())


def test_cli_writes_from_the_site_config(tmp_path, capsys, monkeypatch):
    site = tmp_path / "ood_k8s.yml"
    site.write_text("portal: {cluster_id: gpu-cluster, url: 'https://ood.example.edu'}\n")
    monkeypatch.setenv("OOD_K8S_CONFIG", str(site))
    out_dir = tmp_path / "etc"
    out_dir.mkdir()
    code, out, err = _run(["ood", "config", "--psij", PSIJ, "--hook", HOOK, "--out", str(out_dir)], capsys)
    assert (code, err) == (0, "")
    assert f"wrote {out_dir}/clusters.d/gpu-cluster.yml" in out
    form = json.loads((out_dir / "ood_k8s" / "form_options.json").read_text())
    assert (form["cluster_id"], form["portal_origin"]) == ("gpu-cluster", "https://ood.example.edu")
    assert str(site) in form["generated_by"]


def test_cli_bad_config_is_one_line(tmp_path, capsys, monkeypatch):
    site = tmp_path / "ood_k8s.yml"
    site.write_text("portal: {cluster_id: 'Not A Label'}\n")
    monkeypatch.setenv("OOD_K8S_CONFIG", str(site))
    code, out, err = _run(["ood", "config", "--psij", PSIJ, "--hook", HOOK, "--out", str(tmp_path)], capsys)
    assert code == 78 and out == ""
    assert err.count("\n") == 1 and "portal.cluster_id" in err
    assert not (tmp_path / "clusters.d").exists()


def test_cli_without_an_installed_psij_says_what_to_do(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(oodconfig.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = _run(["ood", "config", "--hook", HOOK], capsys)
    assert code == 2 and out == ""
    assert err == (f"ood-k8s: cannot find ood-k8s-psij beside {tmp_path}/python or on PATH: install ood-k8s on "
                   "the portal, or pass --psij /path/to/ood-k8s-psij\n")


def test_default_paths_prefer_the_interpreters_directory(monkeypatch, tmp_path):
    for name in ("ood-k8s-psij", "ood-k8s-pre-hook"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)  # a command that cannot be executed is not a command
    monkeypatch.setattr(oodconfig.sys, "executable", str(tmp_path / "python"))
    assert oodconfig.default_psij_path() == str(tmp_path / "ood-k8s-psij")
    assert oodconfig.default_hook_path() == str(tmp_path / "ood-k8s-pre-hook")


def test_default_hook_path_falls_back_to_this_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(oodconfig.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    checkout = Path(oodconfig.__file__).resolve().parents[2] / "hooks" / "k8s-bootstrap" / "ood-k8s-pre-hook"
    assert oodconfig.default_hook_path() == str(checkout)

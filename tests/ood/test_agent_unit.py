"""The agent's systemd unit that ``ood-k8s ood config`` writes: pinned whole, and verified by systemd."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ood_k8s.config import Config
from ood_k8s.ood import files as oodconfig
from ood_k8s.ood import units
from tests.conftest import replace

PSIJ = "/opt/ood-k8s/bin/ood-k8s-psij"
HOOK = "/opt/ood-k8s/bin/ood-k8s-pre-hook"

EXPECTED = """\
# HEADER
# Install: systemctl link <this file, as written by --out>   (or copy it to /etc/systemd/system/)
#          systemctl daemon-reload && systemctl enable --now ood-k8s-agent
# Reload the configuration: systemctl reload ood-k8s-agent (SIGHUP). Health: ood-k8s doctor.
[Unit]
Description=ood-k8s agent: a watch-fed cache answering Open OnDemand's status polls, and the session lifecycle
After=network-online.target nss-user-lookup.target
Wants=network-online.target

[Service]
Type=simple
# In the foreground: systemd keeps it running; SIGTERM stops it gracefully (socket first, Lease released).
ExecStart=/opt/ood-k8s/bin/ood-k8s --config /etc/ood/config/site.yml agent
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s
Environment=PYTHONUNBUFFERED=1
# The socket's directory (/run/ood-k8s): every portal user connects to the socket (mode 0666; the
# kernel names each caller), nobody but root may create or replace anything in it.
RuntimeDirectory=ood-k8s
RuntimeDirectoryMode=0755
UMask=0022

# Hardening. The agent reads the site configuration and the provisioner's kubeconfig, talks to the
# API server (and, where configured, the sessions' activity probes and Prometheus), and writes only
# its socket and, as each student (setuid in a child), the deadline warning in a session's folder
# under the homes: the rest of the file system is read-only to it.
NoNewPrivileges=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ReadWritePaths=-/home
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
# AF_UNIX: its socket and NSS (sssd, nscd); AF_INET/AF_INET6: the API server; AF_NETLINK: glibc's resolver.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
# Root, for reading root-only files of another owner (a kubeconfig) and becoming a student to write
# into their session's folder; nothing else.
CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SETUID CAP_SETGID

[Install]
WantedBy=multi-user.target
"""


def site(**agent: object) -> Config:
    cfg = replace(Config(), **{"agent.enabled": True, **{f"agent.{k}": v for k, v in agent.items()}})
    cfg.source = "/etc/ood/config/site.yml"
    return cfg


def test_the_unit_runs_the_agent_in_the_foreground_hardened() -> None:
    assert units.agent_unit(site(), "/opt/ood-k8s/bin/ood-k8s", "HEADER") == EXPECTED


def test_a_socket_outside_run_is_the_one_writable_path_and_the_health_port_is_noted() -> None:
    unit = units.agent_unit(site(socket="/var/lib/ood k8s/agent.sock", health_port=9100), "/opt/ood-k8s/bin/ood-k8s",
                            "HEADER")
    lines = unit.splitlines()
    assert not any(line.startswith("RuntimeDirectory") for line in lines)
    assert 'ReadWritePaths=-/home "/var/lib/ood k8s"' in lines
    assert "# /healthz and /metrics on 127.0.0.1:9100 only." in lines


@pytest.mark.parametrize(("socket", "directory"), [
    ("/run/ood-k8s/agent.sock", "ood-k8s"), ("/var/run/ood-k8s/a.sock", "ood-k8s"), ("/run/a/b/c.sock", "a/b"),
    ("/run/agent.sock", ""), ("/tmp/x/agent.sock", ""), ("/run/../etc/agent.sock", ""),
])
def test_the_runtime_directory_is_the_sockets_under_run(socket: str, directory: str) -> None:
    assert units.runtime_directory(socket) == directory


@pytest.mark.parametrize(("arg", "quoted"), [
    ("/usr/bin/ood-k8s", "/usr/bin/ood-k8s"), ("/a b/c", '"/a b/c"'), ("100%", "100%%"), ("$HOME", "$$HOME"),
    ('a"b', '"a\\"b"'), ("", '""'),
])
def test_command_words_are_quoted_for_systemd(arg: str, quoted: str) -> None:
    assert units.quote(arg) == quoted


def test_ood_config_writes_the_unit_only_for_a_site_that_runs_the_agent(tmp_path: Path) -> None:
    assert units.UNIT_PATH not in oodconfig.files(Config(), PSIJ, HOOK)
    generated = oodconfig.files(site(), PSIJ, HOOK)
    unit = generated[units.UNIT_PATH]
    assert unit.startswith(f"# {oodconfig.MARKER} from /etc/ood/config/site.yml: edit the ood-k8s config")
    assert "ExecStart=/opt/ood-k8s/bin/ood-k8s --config /etc/ood/config/site.yml agent" in unit.splitlines()
    oodconfig.write(generated, str(tmp_path))
    written = tmp_path / units.UNIT_PATH
    assert written.read_text() == unit and stat.S_IMODE(written.stat().st_mode) == 0o644
    oodconfig.write(oodconfig.files(site(health_port=9), PSIJ, HOOK), str(tmp_path))  # ours: rewritten
    assert "127.0.0.1:9 only" in written.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_every_line(tmp_path: Path) -> None:
    agent = tmp_path / "ood-k8s"  # verify wants ExecStart's program to exist and be executable
    agent.write_text("#!/bin/sh\n")
    agent.chmod(0o755)
    for cfg in (site(), site(socket="/var/lib/ood-k8s/agent.sock", health_port=9100)):
        path = tmp_path / units.UNIT_NAME
        path.write_text(units.agent_unit(cfg, str(agent), "HEADER"))
        out = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                             env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
        assert (out.returncode, out.stderr) == (0, ""), out.stderr

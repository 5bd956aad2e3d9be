"""The user's kubeconfig under a hostile home: an alias bomb, symlinked homes, an unrunnable plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ood_k8s.config import Config
from ood_k8s.core import errors
from ood_k8s.core.identity import Identity
from ood_k8s.kubeconfig import user as userkubeconfig
from tests.conftest import ROOT
from tests.kubeconfig import test_userkubeconfig as base
from tests.kubeconfig.test_userkubeconfig import CMD, kubeconfig_path, needs_root, user_file, user_names

cfg, home = base.cfg, base.home  # the fixtures, shared

# 450 bytes that parse into shared references and expand to 9**9 strings when written back out.
BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
) + "\n"


def test_the_bomb_is_small() -> None:
    assert len(BOMB.encode()) <= 450


@needs_root
def test_an_alias_bomb_is_refused_in_bounded_time_and_memory(cfg: Config, home: Identity) -> None:
    user_file(home, BOMB)
    code = (
        "import json, resource, sys, time\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"  # a blow-up fails fast, not the box
        "from ood_k8s import config, names\nfrom ood_k8s.kubeconfig import user as userkubeconfig\n"
        "from ood_k8s.config import replace\nfrom ood_k8s.core.errors import OodK8sError\n"
        "from ood_k8s.core.identity import Identity\n"
        "c = config.Config()\n"
        f"cfg = replace(c, cluster=replace(c.cluster, server={cfg.cluster.server!r}), "
        f"auth=replace(c.auth, credential_command={CMD!r}))\n"
        f"ident = Identity(**{home._asdict()!r})\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    userkubeconfig.write(cfg, ident, names.for_user(ident.username)); msg = 'written'\n"
        "except OodK8sError as exc:\n"
        "    msg = str(exc)\n"
        "except MemoryError:\n"
        "    msg = 'MemoryError'\n"
        "hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        # ru_maxrss of SELF survives exec (it would be pytest's); VmHWM is this process's own peak
        "rss = [hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]\n"
        "print(json.dumps([msg, time.monotonic() - t, rss]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OOD_K8S_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(ROOT),
                             timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the alias bomb was not refused within 30 s")
    assert out.returncode == 0, out.stderr
    msg, seconds, rss = json.loads(out.stdout)
    rss_kib = max(rss)
    path = kubeconfig_path(home)
    assert msg.startswith(f"{path} uses YAML anchors or aliases"), msg
    assert "\n" not in msg
    assert seconds < 3, seconds
    assert rss_kib < 200 * 1024, (rss_kib, out.stdout)
    assert Path(path).read_text() == BOMB  # nothing written
    assert os.listdir(os.path.dirname(path)) == ["config"]


def test_anchors_and_too_many_nodes_are_refused_in_process(cfg: Config, home: Identity,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from ood_k8s.kubeconfig import untrusted

    with pytest.raises(errors.UsageError, match="anchors or aliases"):
        untrusted.parse(b"a: &x 1\nb: 2\n", "f")
    monkeypatch.setattr(untrusted, "MAX_NODES", 10)
    with pytest.raises(errors.UsageError, match="more than 10 YAML nodes"):
        untrusted.parse(b"[" + b",".join(b"1" for _ in range(20)) + b"]", "f")
    import datetime

    assert untrusted._from_plain(untrusted.parse(b"since: 2024-01-31\n", "f")) == {
        "since": datetime.date(2024, 1, 31)}


# --- never through a link ---------------------------------------------------------------------------


@pytest.fixture
def linked(home: Identity) -> tuple[Identity, str]:
    """``home`` moved aside and a symlink to it put in its place: the user's own directory, by link."""
    real = home.home + "-real"
    os.rename(home.home, real)
    os.symlink(real, home.home)
    return home, real


@needs_root
def test_no_kubeconfig_is_written_through_a_symlinked_home(cfg: Config, linked: tuple[Identity, str]) -> None:
    ident, real = linked
    with pytest.raises(errors.SecurityError) as exc:
        userkubeconfig.write(cfg, ident, user_names(ident))
    assert str(exc.value).startswith(f"refusing home {ident.home}: {ident.home} is a symbolic link")
    assert "\n" not in str(exc.value)
    assert os.listdir(real) == []


@needs_root
def test_no_kubeconfig_is_written_through_a_link_below_the_home_root(cfg: Config, home: Identity) -> None:
    top = os.path.dirname(home.home)
    os.mkdir(os.path.join(top, "real"), 0o755)
    os.rename(home.home, os.path.join(top, "real", "alice"))
    os.symlink(os.path.join(top, "real"), os.path.join(top, "homes"))
    ident = home._replace(home=os.path.join(top, "homes", "alice"))
    cfg.storage.home_root = top
    with pytest.raises(errors.SecurityError, match=r"homes is a symbolic link"):
        userkubeconfig.write(cfg, ident, user_names(ident))
    assert os.listdir(os.path.join(top, "real", "alice")) == []


# --- the credential command must be runnable by the user ---------------------------------------------


@needs_root
def test_an_unrunnable_credential_command_is_reported(cfg: Config, home: Identity) -> None:
    top = os.path.dirname(home.home)
    venv = os.path.join(top, "venv")
    os.makedirs(os.path.join(venv, "bin"))
    os.chmod(venv, 0o700)  # root's virtualenv: the user cannot reach its bin/
    command = os.path.join(venv, "bin", "ood-k8s")
    Path(command).write_text("#!/bin/sh\n")
    os.chmod(command, 0o755)  # noqa: S103 - the plugin users run
    cfg.auth.credential_command = command
    written = userkubeconfig.write_checked(cfg, home, user_names(home))
    assert written.changed
    assert written.command_problem.startswith(f"the directory {venv} is not searchable by the user")
    os.chmod(venv, 0o755)  # noqa: S103 - a virtualenv users may run
    os.unlink(kubeconfig_path(home))
    assert userkubeconfig.write_checked(cfg, home, user_names(home)) == (True, "")

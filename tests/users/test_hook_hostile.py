"""The login hook under a hostile home and a hostile world: never through a link, bounded in time,
exit codes as documented, nothing remote done before everything local is checked."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.users.test_hook import Portal, lines, portal  # noqa: F401 - the portal-in-a-box fixture


def cognito_users(portal: Portal) -> list[str]:  # noqa: F811
    import boto3

    idp = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=portal.moto)
    return [u["Username"] for u in idp.list_users(UserPoolId=portal.pool_id)["Users"]]


def link_home(portal: Portal, user: str) -> Path:  # noqa: F811
    """Move the user's home aside and put a link to it in its place (the user could do this to a
    directory they own); returns the real directory."""
    home = portal.home(user)
    real = home.with_name(user + "-real")
    os.rename(home, real)
    os.symlink(real, home)
    return real


def test_the_fast_path_never_writes_through_a_symlinked_home(portal: Portal) -> None:  # noqa: F811
    assert portal.run("alice").returncode == 0
    real = link_home(portal, "alice")
    (real / ".kube" / "config").unlink()
    proc = portal.run("alice")
    assert proc.returncode == 77, proc.stderr
    (line,) = lines(proc)
    assert f"refusing home {portal.home('alice')}: {portal.home('alice')} is a symbolic link" in line
    assert not (real / ".kube" / "config").exists()


def test_a_first_login_without_create_home_never_writes_through_a_link_nor_calls_cognito(
        portal: Portal) -> None:  # noqa: F811
    portal.write_config(**{"storage.create_home": False})
    target = portal.base / "elsewhere"
    target.mkdir()
    os.chown(target, 20001, 20001)
    portal.home("alice").symlink_to(target)
    proc = portal.run("alice")
    assert proc.returncode == 77, proc.stderr
    (line,) = lines(proc)
    assert "is a symbolic link" in line
    assert os.listdir(target) == []
    assert "alice" not in cognito_users(portal)  # refused before any remote side effect
    assert portal.fk.get("namespaces", "ood-alice") is None


def test_a_first_login_refused_at_the_home_check_leaves_no_cognito_user(portal: Portal) -> None:  # noqa: F811
    portal.home("alice").parent.mkdir(exist_ok=True)
    portal.home("alice").write_text("not a directory")
    proc = portal.run("alice")
    assert proc.returncode == 77, proc.stderr
    assert "is not a directory" in lines(proc)[-1]
    assert "alice" not in cognito_users(portal)


def test_a_late_refusal_is_not_exit_2(portal: Portal) -> None:  # noqa: F811
    # An invalid ~/.kube/config is found after the namespace was made: 2 would claim nothing changed.
    home = portal.home("alice")
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("- not a mapping\n")
    for p in (home, home / ".kube", home / ".kube" / "config"):
        os.chown(p, 20001, 20001)
    proc = portal.run("alice")
    assert "not a valid kubeconfig" in proc.stderr
    assert portal.fk.get("namespaces", "ood-alice") is not None
    assert proc.returncode == 1, proc.stderr


def test_an_unrunnable_credential_command_is_reported_by_the_hook(portal: Portal) -> None:  # noqa: F811
    private = portal.base / "private"
    private.mkdir(mode=0o700)
    plugin = private / "ood-k8s"
    plugin.write_text((portal.base / "bin" / "ood-k8s").read_text())
    plugin.chmod(0o755)
    portal.write_config(**{"auth.credential_command": str(plugin)})
    proc = portal.run("alice")
    assert proc.returncode == 1, proc.stderr
    line = lines(proc)[-1]
    assert line.startswith("ood-k8s-hook-test: err: user 'alice': kubectl cannot run the credential command")
    assert f"the directory {private} is not searchable by the user (chmod o+x {private}" in line


# --- a hung dependency ends a login within hook.deadline ---------------------------------------------


@pytest.fixture
def hung() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    try:
        yield f"127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


def test_a_hung_api_server_ends_the_login_within_the_deadline(portal: Portal, hung: str) -> None:  # noqa: F811
    kc = yaml.safe_load(Path(portal.load().cluster.provisioner_kubeconfig).read_text())
    kc["clusters"][0]["cluster"]["server"] = f"https://{hung}"
    hung_kc = portal.base / "hung.kubeconfig"
    hung_kc.write_text(yaml.safe_dump(kc))
    portal.write_config(**{"cluster.provisioner_kubeconfig": str(hung_kc), "hook.deadline": 1.5})
    started = time.monotonic()
    proc = portal.run("alice")
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    (line,) = lines(proc)
    assert "ran past its deadline of" in line and "hook.on_failure: open" in line
    assert took < 5, took
    portal.write_config(**{"hook.on_failure": "closed"})
    assert portal.run("alice").returncode == 69


def test_a_hung_cognito_ends_a_first_login_within_the_deadline(portal: Portal, hung: str) -> None:  # noqa: F811
    portal.write_config(**{"auth.cognito.endpoint_url": f"http://{hung}", "hook.deadline": 1.5})
    started = time.monotonic()
    proc = portal.run("alice")
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "ran past its deadline" in lines(proc)[-1]
    assert took < 5, took

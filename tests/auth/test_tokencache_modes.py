"""The token cache root under a strict umask: created 0711 whatever the umask, repaired when found
wrong and safe to repair, and a plugin that names the real cause when it cannot reach its cache."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.users.test_hook import Portal, lines, portal  # noqa: F401 - the portal-in-a-box fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the hook runs as root, the plugin as the user")


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def plugin_as(uid: int, argv: list[str]) -> tuple[int, str, str]:
    """``ood-k8s credential ARGS`` in a child that became ``uid`` (as kubectl runs it for the user)."""
    from ood_k8s.auth import plugin
    from ood_k8s.core import fsutil

    def call() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = plugin.main(argv, stdout=out, stderr=err, environ={})
        return code, out.getvalue(), err.getvalue()

    code, out, err = fsutil.run_as(uid, uid, (), call)
    return code, out, err


def exec_args(portal: Portal, user: str) -> list[str]:  # noqa: F811
    kc = json.loads((portal.home(user) / ".kube" / "config").read_text())
    return kc["users"][0]["user"]["exec"]["args"][1:]  # after "credential"


def test_a_new_portal_under_umask_027_gives_every_user_a_working_plugin(portal: Portal,  # noqa: F811
                                                                        strict_umask: None) -> None:
    cache = portal.base / "var" / "lib" / "ood-k8s" / "tokens"  # nothing of it exists yet: a new portal
    portal.write_config(**{"users.token_cache_dir": str(cache)})
    for user, uid in (("alice", 20001), ("bob", 20002)):
        proc = portal.run(user)
        assert proc.returncode == 0, proc.stderr
        code, out, err = plugin_as(uid, exec_args(portal, user))
        assert (code, err) == (0, ""), (user, err)
        assert json.loads(out)["status"]["token"]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o711
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o755


def test_a_wrong_mode_is_repaired_at_the_next_login(portal: Portal) -> None:  # noqa: F811
    assert portal.run("alice").returncode == 0
    cache = Path(portal.load().users.token_cache_dir)
    cache.chmod(0o710)
    code, _, err = plugin_as(20001, exec_args(portal, "alice"))
    assert code != 0
    assert err.startswith(f"ood-k8s credential: cannot reach the token cache: {cache} is not searchable by uid "
                          "20001 (mode 0710, owner uid 0)"), err
    assert f"chmod o+x {cache}" in err and err.count("\n") == 1
    assert portal.run("alice").returncode == 0
    assert stat.S_IMODE(cache.stat().st_mode) == 0o711
    assert plugin_as(20001, exec_args(portal, "alice"))[0] == 0


def test_a_cache_root_others_may_write_is_refused_loudly(portal: Portal) -> None:  # noqa: F811
    assert portal.run("alice").returncode == 0
    cache = Path(portal.load().users.token_cache_dir)
    cache.chmod(0o777)
    proc = portal.run("alice")
    assert proc.returncode == 77, proc.stderr
    assert f"refusing to use token cache {cache}: owned by uid 0 with mode 0o777" in lines(proc)[-1]

"""Provisioning under faults (issue 13): transient NSS failures change nothing, everything local is
checked before any remote side effect, an unknown user's teardown says so."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.core.errors import SecurityError, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.users import desired, provision
from tests.cli import test_cli_user as cli_base
from tests.cli.test_cli_user import run
from tests.conftest import ALICE, replace
from tests.users import test_provision as base
from tests.users.test_provision import FakeCognito, FakeStorage, ensure

client, site = base.client, cli_base.site  # the fixtures, shared


def test_a_group_nss_cannot_name_does_not_reprovision(cfg: Any, client: KubeClient) -> None:
    assert ensure(cfg, client).action == "created"
    flaky = ALICE._replace(groups=("alice", "students", "30002"))  # gpu-users: LDAP did not answer
    assert desired.unresolved_groups(flaky) == ["30002"]
    cognito, storage = FakeCognito(), FakeStorage()
    out = ensure(cfg, client, flaky, cognito=cognito, storage=storage)
    assert out.action == "current" and out.round_trips == 1
    assert out.changes == ["kept as provisioned: NSS gave no name for group 30002 (retried at the next login)"]
    assert cognito.calls == [] and storage.calls == []  # no Cognito call: the mapped group stays
    assert ensure(cfg, client).action == "current"  # and once NSS answers, nothing to do either


def test_a_home_refused_locally_leaves_no_remote_trace(cfg: Any, client: KubeClient, fake_kube: Any,
                                                       tmp_path: Any) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alice").symlink_to(real)
    ident = replace(ALICE, home=str(tmp_path / "alice"))
    cfg = replace(cfg, storage=replace(cfg.storage, home_root=str(tmp_path), create_home=False))
    cognito = FakeCognito()
    with pytest.raises(SecurityError, match="is a symbolic link"):
        ensure(cfg, client, ident, cognito=cognito)
    assert cognito.calls == []
    assert fake_kube.get("namespaces", "ood-alice") is None


def test_teardown_of_an_unknown_user_is_refused(cfg: Any, client: KubeClient) -> None:
    def nobody(username: str) -> Identity:
        raise UsageError(f"user '{username}' is not known to this host (NSS)")

    with pytest.raises(UsageError) as exc:
        provision.teardown(cfg, "nosuchuser", client, lookup=nobody, storage=FakeStorage())
    assert str(exc.value).startswith("user 'nosuchuser' is unknown: not known to this host (NSS), "
                                     "no namespace ood-nosuchuser, no token cache")


def test_user_teardown_of_an_unknown_user_exits_non_zero(site: dict[str, Any], capsys: Any) -> None:
    code, out, err = run(site, "teardown", "nosuchuser", capsys=capsys)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "nosuchuser: FAILED: user 'nosuchuser' is unknown" in err, err

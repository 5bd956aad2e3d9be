"""Cognito pre-claim: a stranger registers 'carol' before carol's first login.  The hook adopts only users
ood-k8s created (nothing is created or changed for one it did not), and doctor fails a pool that allows
self sign-up and an app client with user-initiated flows.  Against moto's Cognito."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ood_k8s.cloud.aws import cognito_admin
from ood_k8s.config import Config
from ood_k8s.core.errors import IdentityProviderError
from tests.conftest import ALICE

ADMIN_FLOWS = ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


@pytest.fixture
def idp() -> Iterator[tuple[Any, Config]]:
    with mock_aws():
        cli = boto3.client("cognito-idp", region_name="us-east-1")
        pool = cli.create_user_pool(PoolName="ood", AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
                                    Schema=[{"Name": "ood_k8s", "AttributeDataType": "String", "Mutable": True}])
        cfg = Config()
        cfg.auth.cognito.user_pool_id = pool["UserPool"]["Id"]
        cfg.auth.cognito.client_id = cli.create_user_pool_client(
            UserPoolId=pool["UserPool"]["Id"], ClientName="ood-k8s", ExplicitAuthFlows=ADMIN_FLOWS,
            RefreshTokenValidity=30)["UserPoolClient"]["ClientId"]
        yield cli, cfg


def _attributes(cli: Any, cfg: Config, username: str) -> dict[str, str]:
    user = cli.admin_get_user(UserPoolId=cfg.auth.cognito.user_pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


def test_the_hook_marks_the_users_it_creates_and_adopts_them(idp: tuple[Any, Config]) -> None:
    cli, cfg = idp
    assert cognito_admin.ensure_user(cfg, ALICE, cli=cli, sleep=lambda s: None) == ["created Cognito user alice"]
    assert _attributes(cli, cfg, "alice")["custom:ood_k8s"] == "1"
    assert cognito_admin.ensure_user(cfg, ALICE, cli=cli, sleep=lambda s: None) == []  # a returning user


def test_the_hook_refuses_a_user_it_did_not_create(idp: tuple[Any, Config]) -> None:
    cli, cfg = idp
    cfg.auth.cognito.group_map = {"students": "students"}
    cli.create_group(UserPoolId=cfg.auth.cognito.user_pool_id, GroupName="students")
    # the stranger's self sign-up (here as an admin call: moto's sign_up needs no pool setting)
    cli.admin_create_user(UserPoolId=cfg.auth.cognito.user_pool_id, Username="alice", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "email", "Value": "stranger@example.net"}])
    with pytest.raises(IdentityProviderError, match="was not created by ood-k8s") as err:
        cognito_admin.ensure_user(cfg, ALICE, cli=cli, sleep=lambda s: None)
    assert "\n" not in err.value.message and "admin-update-user-attributes" in err.value.hint
    groups = cli.admin_list_groups_for_user(UserPoolId=cfg.auth.cognito.user_pool_id, Username="alice")["Groups"]
    assert groups == []  # nothing granted to the stranger's account
    assert "custom:ood_k8s" not in _attributes(cli, cfg, "alice")


def _doctor(cli: Any, cfg: Config) -> dict[str, Any]:
    return {c.name: c for c in cognito_admin.check_cognito(cfg, cli)}


def test_doctor_passes_an_admin_only_pool(idp: tuple[Any, Config]) -> None:
    cli, cfg = idp
    checks = _doctor(cli, cfg)
    assert checks["Cognito user pool"].ok and checks["Cognito app client"].ok, checks


def test_doctor_fails_self_sign_up_and_user_flows(idp: tuple[Any, Config]) -> None:
    cli, cfg = idp
    open_pool = cli.create_user_pool(PoolName="open")["UserPool"]["Id"]
    cfg.auth.cognito.user_pool_id = open_pool
    cfg.auth.cognito.client_id = cli.create_user_pool_client(
        UserPoolId=open_pool, ClientName="web", RefreshTokenValidity=30,
        ExplicitAuthFlows=[*ADMIN_FLOWS, "ALLOW_USER_SRP_AUTH"])["UserPoolClient"]["ClientId"]
    checks = _doctor(cli, cfg)
    pool, app = checks["Cognito user pool"], checks["Cognito app client"]
    assert pool.ok is False and "allows self sign-up" in pool.detail and "does not define custom:ood_k8s" in pool.detail
    assert app.ok is False and "ALLOW_USER_SRP_AUTH" in app.detail

"""access: who may use what, one definition and one exception type, worded for whoever reads it."""

from __future__ import annotations

import pytest

from ood_k8s.config import Profile
from ood_k8s.core.errors import NotEntitled
from ood_k8s.core.identity import Identity
from ood_k8s.policy import access
from tests.conftest import ALICE, BOB

ROOT = Identity("root", 0, 0, "/root", ("root",))


@pytest.mark.parametrize(("audience", "ident", "changes", "text"), [
    (access.SESSION, ROOT, {}, "user 'root' has uid 0, below users.min_uid (1000): system accounts cannot start "
                                "sessions"),
    (access.NAMESPACE, ROOT, {}, "user 'root' has uid 0, below users.min_uid (1000): system accounts get no "
                                  "namespace; lower users.min_uid if this is a real user"),
    (access.SESSION, BOB, {"users.allowed_groups": ["staff", "gpu-users"]},
     "user 'bob' is not allowed to start sessions on this cluster: ask your administrator for membership in one "
     "of: staff, gpu-users"),
    (access.NAMESPACE, BOB, {"users.allowed_groups": ["staff", "gpu-users"]},
     "user 'bob' is in none of users.allowed_groups (staff, gpu-users): add the user to one of them, or change "
     "users.allowed_groups"),
    # the uid is checked first: a system account in no allowed group hears about its uid
    (access.SESSION, ROOT, {"users.allowed_groups": ["staff"]}, "below users.min_uid"),
])
def test_an_account_is_refused_in_the_words_of_its_audience(make_config, audience, ident, changes, text) -> None:
    with pytest.raises(NotEntitled) as exc:
        access.check_account(make_config(**changes).users, ident, audience)
    assert text in str(exc.value) and "\n" not in str(exc.value)


def test_accounts_the_site_admits(make_config) -> None:
    for audience in access.AUDIENCES:
        access.check_account(make_config().users, BOB, audience)  # no allowed_groups: everyone
        access.check_account(make_config(**{"users.allowed_groups": ["gpu-users"]}).users, ALICE, audience)


def test_profiles_are_for_members_of_their_groups() -> None:
    open_, gpu = Profile(name="cpu", image="i"), Profile(name="a10g", image="i", groups=["gpu-users", "staff"])
    assert [p.name for p in access.usable_profiles([open_, gpu], ALICE)] == ["cpu", "a10g"]
    assert [p.name for p in access.usable_profiles([open_, gpu], BOB)] == ["cpu"]
    access.check_profile(gpu, ALICE)
    with pytest.raises(NotEntitled, match=r"^profile 'a10g' is reserved for members of gpu-users, staff: choose "):
        access.check_profile(gpu, BOB)


def test_supplementary_groups_only_of_ones_own() -> None:
    access.check_supplemental_groups([30001, 30002, 20001], ALICE, "groups")
    with pytest.raises(NotEntitled, match=r"^groups: you are not a member of group 30002"):
        access.check_supplemental_groups([30001, 30002], BOB, "groups")


def test_the_form_options_carry_the_same_rules(make_config) -> None:
    from ood_k8s.ood import files

    cfg = make_config(**{"users.allowed_groups": ["students"]})
    options = files.form_options(cfg)
    assert options["allowed_groups"] == access.account_groups(cfg.users) == ["students"]
    assert {p["name"]: p["groups"] for p in options["profiles"]} == {
        p.name: access.profile_groups(p) for p in cfg.profiles}


def test_provisioning_and_submit_refuse_with_the_same_rule(make_config) -> None:
    from ood_k8s.sessions.request import Script
    from ood_k8s.sessions.resolve import resolve
    from ood_k8s.users import provision

    cfg = make_config(**{"users.allowed_groups": ["staff"]})
    with pytest.raises(NotEntitled, match=r"none of users\.allowed_groups"):
        provision.admit(cfg, "bob", {"bob": BOB}.__getitem__)
    with pytest.raises(NotEntitled, match="not allowed to start sessions"):
        resolve(Script(), cfg, BOB)

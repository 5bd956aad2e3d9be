"""cel: what the guard reads from a user namespace, generated from the keys the hook records."""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from ood_k8s.core import vocab
from ood_k8s.core.errors import RenderError
from ood_k8s.policy import cel

_ENV = celpy.Environment()


def read(name: str, annotations: dict[str, str]) -> Any:
    program = _ENV.program(_ENV.compile(cel.recorded()[name]))
    return program.evaluate({"variables": celpy.json_to_cel({"annotations": annotations})})


@pytest.mark.parametrize(("name", "annotations", "value"), [
    ("uid", {vocab.UID_ANNOTATION: "20001"}, 20001),
    ("uid", {}, -1),
    ("uid", {vocab.UID_ANNOTATION: "20001; 0"}, -1),
    ("uid", {vocab.GID_ANNOTATION: "20001"}, -1),
    ("gid", {vocab.GID_ANNOTATION: "20001"}, 20001),
    ("gid", {vocab.GID_ANNOTATION: "-5"}, -1),
    ("gids", {vocab.GIDS_ANNOTATION: "30001,30002"}, "30001,30002"),
    ("gids", {vocab.GIDS_ANNOTATION: "30001,,0"}, ""),
    ("gids", {}, ""),
    ("username", {vocab.USERNAME_ANNOTATION: "alice"}, "alice"),
    ("username", {}, ""),
    ("home", {vocab.HOME_ANNOTATION: "/home/alice"}, "/home/alice"),
    ("home", {vocab.UID_ANNOTATION: "1"}, ""),
])
def test_the_guard_reads_what_the_hook_records(name: str, annotations: dict[str, str], value: Any) -> None:
    assert read(name, annotations) == value


def test_the_keys_are_the_vocabularys() -> None:
    text = " ".join(cel.recorded().values()) + cel.unrecorded_message()
    for key in (vocab.UID_ANNOTATION, vocab.GID_ANNOTATION, vocab.GIDS_ANNOTATION, vocab.USERNAME_ANNOTATION,
                vocab.HOME_ANNOTATION):
        assert f"'{key}'" in text


def test_a_key_cel_would_read_differently_is_refused() -> None:
    with pytest.raises(RenderError):
        cel._key("it's")


def test_the_site_part_of_the_context(make_config) -> None:
    rules = cel.admission_rules(make_config(**{"users.min_uid": 5000, "jobs.csi_drivers": ["x.example.com"]}))
    assert set(rules) == {"recorded", "unrecorded_message", "min_uid", "claims", "read_only_claims", "sub_paths",
                          "volume_kinds_rule", "volume_kinds_message", "claims_message"}
    assert rules["min_uid"] == 5000
    assert '(has(v.csi) && v.csi.driver in ["x.example.com"])' in rules["volume_kinds_rule"]

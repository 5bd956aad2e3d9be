"""request: OOD's Script, its native tokens and PSI/J's custom attributes, before any site rule."""

from __future__ import annotations

import pytest

from ood_k8s.core.errors import UsageError
from ood_k8s.sessions.request import Script, native_from_attributes, tokens_to_attributes


def test_tokens_follow_oods_psij_rule() -> None:
    assert tokens_to_attributes(["--profile", "gpu-t4", "--hold", "-x", "1", "plain"]) == \
        {"profile": "gpu-t4", "hold": "", "x": "1", "plain": ""}
    assert tokens_to_attributes(["--a", "--b", "v"]) == {"a": "", "b": "v"}


def test_attributes_map_to_native_and_drop_executor_prefixes() -> None:
    native, hold = native_from_attributes({"ood_k8s.profile": "gpu-t4", "image": "img:1", "port": "8888",
                                           "native": '{"container": {"env": {"A": "1"}}}', "hold": ""}, "ood_k8s")
    assert hold
    assert native == {"profile": "gpu-t4", "container": {"env": {"A": "1"}, "image": "img:1", "port": "8888"}}
    with pytest.raises(UsageError, match="expected a JSON object"):
        native_from_attributes({"native": "{not json"})


def test_script_from_dict_refuses_unknown_fields_and_ignores_batch_only_ones() -> None:
    assert Script.from_dict({"content": "x", "email": "a@b", "rerunnable": True}).content == "x"
    with pytest.raises(UsageError, match="unknown job script field 'contnet'"):
        Script.from_dict({"contnet": "x"})

"""The autoscaler seam: every ``cluster.autoscaler`` the configuration accepts has an implementation,
and what each contributes to the render and the doctor comes from it alone."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.cluster import autoscaler, facts, manifests
from ood_k8s.config import Config

MODES = ("karpenter", "cluster-autoscaler", "none")


def test_every_mode_the_configuration_accepts_is_registered(make_config: Any) -> None:
    assert set(autoscaler.AUTOSCALERS) == set(MODES)
    for mode in MODES:
        scaler = autoscaler.of(make_config(**{"cluster.autoscaler": mode}))
        assert scaler is autoscaler.AUTOSCALERS[mode]
        for method in ("templates", "rbac", "node_groups", "capacity"):
            assert callable(getattr(scaler, method))


@pytest.mark.parametrize("mode, templates, karpenter_rbac, node_groups", [
    ("karpenter", ["cluster/karpenter.yaml.j2"], True, False),
    ("cluster-autoscaler", ["cluster/autoscaler.yaml.j2"], False, True),
    ("none", [], False, False)])
def test_what_each_autoscaler_contributes(make_config: Any, mode: str, templates: list[str], karpenter_rbac: bool,
                                         node_groups: bool) -> None:
    cfg = make_config(**{"cluster.autoscaler": mode})
    scaler = autoscaler.of(cfg)
    assert list(scaler.templates(cfg)) == templates
    assert manifests.contexts(cfg)["cluster/rbac.yaml.j2"]["karpenter"] is karpenter_rbac
    assert bool(scaler.node_groups(cfg)) is node_groups
    assert manifests.node_groups(cfg) == scaler.node_groups(cfg)


def test_without_gpu_profiles_no_autoscaler_renders_anything(make_config: Any) -> None:
    for mode in MODES:
        cfg = make_config(**{"cluster.autoscaler": mode})
        cfg.profiles = [p for p in cfg.profiles if p.gpu.max == 0]
        assert facts.gpu_profiles(cfg) == []
        assert autoscaler.of(cfg).templates(cfg) == {}
        assert manifests.contexts(cfg)["cluster/rbac.yaml.j2"]["karpenter"] is False


def _node(name: str, labels: dict[str, str], gpus: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}}}


def test_fixed_node_verdicts_differ_only_when_no_node_has_the_gpu() -> None:
    cfg = Config()
    profiles = facts.gpu_profiles(cfg)
    cpu_only = [_node("n1", {}, 0)]
    none = [c.ok for c in autoscaler.AUTOSCALERS["none"].capacity(None, cfg, profiles, cpu_only)]  # type: ignore[arg-type]
    ca = [c.ok for c in autoscaler.AUTOSCALERS["cluster-autoscaler"].capacity(None, cfg, profiles, cpu_only)]  # type: ignore[arg-type]
    assert (none, ca) == ([False] * len(profiles), [None] * len(profiles))
    gpu = [_node("g1", {}, 1)]
    assert [c.detail for c in autoscaler.AUTOSCALERS["none"].capacity(None, cfg, profiles, gpu)] == \
        [c.detail for c in autoscaler.AUTOSCALERS["cluster-autoscaler"].capacity(None, cfg, profiles, gpu)]  # type: ignore[arg-type]

"""doctor's site-side preconditions of isolation: NetworkPolicy enforcement on and strict on the VPC CNI
(the aws-node DaemonSet, read through the fake API server), and the metadata options of every EC2NodeClass."""

from __future__ import annotations

from typing import Any

import pytest

from ood_k8s.cloud.aws import karpenter
from ood_k8s.cluster import isolation
from ood_k8s.core.kube import KubeClient


def _aws_node(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "aws-node", "namespace": "kube-system"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "aws-node", "image": "cni", "env": [{"name": k, "value": v} for k, v in env.items()]},
                {"name": "aws-network-policy-agent", "image": "agent", "args": args}]}}}}


@pytest.mark.parametrize(("args", "env", "verdicts"), [
    (["--enable-network-policy=true"], {"NETWORK_POLICY_ENFORCING_MODE": "strict"}, [True, True]),
    (["--enable-network-policy=true"], {}, [True, False]),  # standard: new pods start open
    (["--enable-network-policy=false"], {"NETWORK_POLICY_ENFORCING_MODE": "strict"}, [False, True]),
    ([], {}, [False, False]),  # the add-on's default: nothing enforced
])
def test_vpc_cni_through_the_api(fake_kube: Any, args: list[str], env: dict[str, str], verdicts: list[bool]) -> None:
    fake_kube.seed(_aws_node(args, env))
    kube = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    checks = isolation.check_network_policy(kube)
    assert [c.ok for c in checks] == verdicts
    assert all(c.fix for c in checks if not c.ok)


def test_another_cni_is_undecided(fake_kube: Any) -> None:
    kube = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    (check,) = isolation.check_network_policy(kube)
    assert check.ok is None and "not the VPC CNI" in check.detail


@pytest.mark.parametrize(("options", "problems"), [
    ({}, []),  # Karpenter's defaults
    ({"httpTokens": "required", "httpPutResponseHopLimit": 1}, []),
    ({"httpTokens": "optional"}, ["httpTokens optional"]),
    ({"httpPutResponseHopLimit": 2}, ["hop limit 2"]),
    ({"httpEndpoint": "disabled", "httpTokens": "optional"}, []),
])
def test_metadata_options(options: dict[str, Any], problems: list[str]) -> None:
    assert karpenter.metadata_problems(options) == problems


def test_every_node_class_is_checked_not_only_ours(fake_kube: Any) -> None:
    for name, opts in (("gpu-t4", {"httpTokens": "required", "httpPutResponseHopLimit": 1}),
                       ("default", {"httpTokens": "optional", "httpPutResponseHopLimit": 2})):
        fake_kube.seed({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": name},
                        "spec": {"metadataOptions": opts}})
    kube = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    (check,) = karpenter.KARPENTER.node_metadata(kube, None)  # type: ignore[arg-type]
    assert check.ok is False and check.detail == "default: httpTokens optional, hop limit 2"

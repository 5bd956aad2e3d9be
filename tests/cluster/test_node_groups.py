"""doctor reads the metadata options of EVERY node group of the EKS cluster (issue 11), not only the Karpenter
EC2NodeClasses: EKS managed node groups (their launch template, else the one EKS generated through their Auto
Scaling group) and self-managed Auto Scaling groups tagged kubernetes.io/cluster/<name> (launch template,
mixed-instances policy and its overrides, launch configuration) -- against moto's server.

What moto lacks: a managed node group gets no Auto Scaling group of its own (its ``resources`` name one that
does not exist), so the test makes that group itself, with EKS's tag, where it plays EKS's generated template."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from ood_k8s.cloud.aws import node_groups
from ood_k8s.config import Config
from ood_k8s.doctor import runner
from ood_k8s.doctor.report import Check
from tests.conftest import ROOT

GOOD = {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}
WEAK = {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}
ROLE = "arn:aws:iam::123456789012:role/node"


@pytest.mark.parametrize(("options", "found"), [
    (GOOD, []),
    (WEAK, ["HttpTokens optional", "hop limit 2"]),
    ({"HttpTokens": "required", "HttpPutResponseHopLimit": 2}, ["hop limit 2"]),
    ({"HttpEndpoint": "disabled"}, []),  # no metadata at all
    ({}, ["HttpTokens unset (the AMI's or account's default: optional unless the AMI is marked IMDSv2-only)",
          "hop limit unset (the AMI's or account's default: 2 for IMDSv2-only AMIs such as AL2023's)"]),
])
def test_what_lets_a_pod_reach_the_metadata(options: dict[str, Any], found: list[str]) -> None:
    assert node_groups.problems(options) == found


class Site:
    """An EKS cluster 'prod' in moto with node groups of every kind."""

    def __init__(self, url: str) -> None:
        def client(service: str) -> Any:
            return boto3.client(service, region_name="us-east-1", endpoint_url=url)

        self.eks, self.ec2, self.asg = client("eks"), client("ec2"), client("autoscaling")
        self.ids: dict[str, str] = {}
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        self.eks.create_cluster(name="prod", roleArn=ROLE, resourcesVpcConfig={"subnetIds": [self.subnet]})

    def template(self, name: str, *versions: dict[str, Any]) -> str:
        data = [{"MetadataOptions": v} if v else {"InstanceType": "m5.large"} for v in versions]
        lt = self.ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data[0])["LaunchTemplate"]
        for more in data[1:]:
            self.ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData=more)
        self.ids[name] = lt["LaunchTemplateId"]
        return str(lt["LaunchTemplateId"])

    def managed(self, group: str, **launch: str) -> dict[str, Any]:
        extra = {"launchTemplate": launch} if launch else {}
        return dict(self.eks.create_nodegroup(clusterName="prod", nodegroupName=group, nodeRole=ROLE,
                                              subnets=[self.subnet], **extra)["nodegroup"])

    def group(self, name: str, tags: dict[str, str], **launch: Any) -> None:
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=1, VPCZoneIdentifier=self.subnet, **launch,
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()])

    def checks(self, cfg: Config) -> list[Check]:
        ctx = runner.context(cfg, eks=self.eks, ec2=self.ec2, autoscaling=self.asg)
        return node_groups.node_group_checks(ctx)


@pytest.fixture
def site(aws: str) -> Site:
    return Site(aws)


@pytest.fixture
def cfg(make_config: Any) -> Config:
    return make_config(**{"cluster.eks_name": "prod"})


def test_managed_node_groups(site: Site, cfg: Config) -> None:
    site.template("nodes", GOOD, WEAK)
    site.managed("system", name="nodes", version="1")
    site.managed("gpu", id=site.ids["nodes"], version="2")  # the same template, a weaker version
    bare = site.managed("bare")  # no launch template of the site's: EKS generates one
    lines = {c.name: c for c in site.checks(cfg)}
    system, gpu, plain = (lines[f"node metadata: node group {g}"] for g in ("system", "gpu", "bare"))
    nodes = f"launch template nodes ({site.ids['nodes']})"
    assert (system.ok, system.detail) == (True, f"{nodes} version 1: tokens required, hop limit 1")
    assert (gpu.ok, gpu.detail) == (False, f"{nodes} version 2: HttpTokens optional, hop limit 2")
    assert gpu.fix == (f"set MetadataOptions HttpTokens=required and HttpPutResponseHopLimit=1 in {nodes} version 2 "
                       "(then update the node group to that version) (pods would otherwise reach the node's IAM role)")
    assert plain.ok is False and plain.detail.startswith(
        "no launch template of the site's (AL2_x86_64): EKS generated one, which could not be found")
    assert plain.fix == node_groups.MANAGED_FIX
    # Where EKS's generated template can be read (here: played by the test), it is judged by what it says.
    site.template("eks-generated", {})
    site.group(bare["resources"]["autoScalingGroups"][0]["name"], {"eks:nodegroup-name": "bare",
                                                                    "kubernetes.io/cluster/prod": "owned"},
               LaunchTemplate={"LaunchTemplateName": "eks-generated", "Version": "1"})
    plain = {c.name: c for c in site.checks(cfg)}["node metadata: node group bare"]
    assert plain.ok is False and plain.detail.startswith(
        f"EKS's generated launch template eks-generated ({site.ids['eks-generated']}) version 1: HttpTokens unset")
    assert "Auto Scaling group" not in " ".join(c.name for c in site.checks(cfg))  # EKS's own: judged as 'bare'


def test_self_managed_groups(site: Site, cfg: Config) -> None:
    site.template("good", GOOD)
    site.template("weak", WEAK)
    tag = {"kubernetes.io/cluster/prod": "owned"}
    site.group("a-fixed", tag, LaunchTemplate={"LaunchTemplateName": "good"})
    site.group("b-mixed", {"kubernetes.io/cluster/prod": "shared"}, MixedInstancesPolicy={"LaunchTemplate": {
        "LaunchTemplateSpecification": {"LaunchTemplateName": "good", "Version": "$Latest"},
        "Overrides": [{"InstanceType": "g5.xlarge", "LaunchTemplateSpecification": {"LaunchTemplateName": "weak"}}]}})
    site.asg.create_launch_configuration(LaunchConfigurationName="old", ImageId="ami-12c6146b",
                                         InstanceType="t3.micro", MetadataOptions={"HttpTokens": "required",
                                                                                   "HttpPutResponseHopLimit": 3})
    site.group("c-legacy", tag, LaunchConfigurationName="old")
    site.group("d-elsewhere", {"kubernetes.io/cluster/other": "owned"}, LaunchTemplate={"LaunchTemplateName": "weak"})
    lines = [(c.name.removeprefix("node metadata: Auto Scaling group "), c.ok, c.detail) for c in site.checks(cfg)]
    assert lines == [
        ("a-fixed", True, f"launch template good ({site.ids['good']}): tokens required, hop limit 1"),
        ("b-mixed", False, "launch template weak: HttpTokens optional, hop limit 2"),  # moto: an override by name
        ("c-legacy", False, "launch configuration old: hop limit 3"),
    ]


def test_a_cluster_without_node_groups_or_readable_node_groups(site: Site, cfg: Config,
                                                              make_config: Any) -> None:
    assert site.checks(cfg) == [Check("node metadata: node groups", None, "prod has no EC2 node groups (managed, "
                                      "or Auto Scaling groups tagged kubernetes.io/cluster/<name>)")]
    (check,) = site.checks(make_config(**{"cluster.eks_name": "nowhere"}))  # moto answers 500, EKS a 404
    assert check.ok is None and check.detail == "cannot list the node groups of nowhere (500)"


def test_an_unknown_cluster(make_config: Any) -> None:
    from botocore.stub import Stubber

    eks = boto3.client("eks", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(eks)
    stub.add_client_error("list_nodegroups", service_error_code="ResourceNotFoundException")
    stub.activate()
    ctx = runner.context(make_config(**{"cluster.eks_name": "nowhere"}), eks=eks, ec2=object(), autoscaling=object())
    assert node_groups.node_group_checks(ctx) == [Check(
        "node metadata: node groups", False, "no EKS cluster nowhere in us-east-1", "set cluster.eks_name and "
        "cluster.aws_region")]


def test_without_an_eks_name_the_other_autoscalers_say_they_did_not_read_them(make_config: Any) -> None:
    from ood_k8s.cluster import autoscaler

    assert node_groups.node_group_checks(runner.context(make_config())) == []
    for mode in ("cluster-autoscaler", "none"):
        cfg = make_config(**{"cluster.autoscaler": mode})
        (line,) = autoscaler.of(cfg).node_metadata(None, cfg)  # type: ignore[arg-type]
        assert line.ok is None and "set cluster.eks_name" in line.detail
        cfg.cluster.eks_name = "prod"
        assert autoscaler.of(cfg).node_metadata(None, cfg) == []  # type: ignore[arg-type]  # read line by line


def test_registered_with_the_doctor() -> None:
    assert node_groups.node_group_checks in runner.SITE_CHECKS
    assert runner.CLIENTS["ec2"] is node_groups.ec2_client
    assert runner.CLIENTS["autoscaling"] is node_groups.autoscaling_client


def test_the_portal_policy_grants_every_read(make_config: Any) -> None:
    from ood_k8s.cloud.aws import iam

    text = (ROOT / "ood_k8s" / "cloud" / "aws" / "node_groups.py").read_text()
    ops = set(re.findall(r'\.(describe_[a-z_]+|list_[a-z_]+)\(', text)) | set(
        re.findall(r'get_paginator\("([a-z_]+)"\)', text))
    called = {"".join(w.title() for w in op.split("_")) for op in ops}
    assert len(called) == 5
    granted = {a for st in iam.portal_policy(make_config(**{"cluster.eks_name": "prod"}))["Statement"]
               for a in st["Action"]}
    assert called == {a.split(":")[1] for a in granted if a.split(":")[1] in called}
    assert {a for a in granted if a.split(":")[1] in called} == {a for acts in node_groups.IAM_ACTIONS.values()
                                                                 for a in acts}
    unnamed = {a for st in iam.portal_policy(make_config())["Statement"] for a in st["Action"]}
    assert not unnamed & {a for acts in node_groups.IAM_ACTIONS.values() for a in acts}  # no cluster: no reads

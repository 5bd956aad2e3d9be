"""``ood-k8s doctor``: the instance metadata options of every EC2 node group of the site's EKS cluster, not
only the Karpenter EC2NodeClasses (:meth:`ood_k8s.cloud.aws.karpenter.Karpenter.node_metadata`): a session
may land on any node, and a pod that reaches the node's instance metadata gets the node's IAM role.

What is read (REFERENCE §11; the IAM actions are :data:`IAM_ACTIONS`):

* **EKS managed node groups** (ListNodegroups, DescribeNodegroup): the launch template the group was made
  with (id or name, and version), else the one EKS generated for it, found through the group's Auto
  Scaling group.  EKS documents no metadata options of its own for a managed group without a launch
  template and offers no setting for them; what its generated template gives is reported to depend on the
  AMI (AL2: tokens optional, hop limit 2; AL2023: tokens required, hop limit 1 in EKS's template but 2 from
  the AMI's own IMDSv2 default), so it is judged by what it says, and unknown when it cannot be read.
* **Self-managed node groups**: Auto Scaling groups tagged ``kubernetes.io/cluster/<name>`` that EKS does not
  manage, by their launch template (also inside a mixed-instances policy, and each override's own) or
  their launch configuration.
* **Launch templates** (DescribeLaunchTemplateVersions): ``MetadataOptions``.  An option the template leaves
  unset falls to the AMI's or the account's default, so it fails: only a template that says so is known.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

from ood_k8s.cloud.aws import errors as aws
from ood_k8s.config import Config
from ood_k8s.doctor.report import Check, Context

TITLE = "node metadata"
CLUSTER_TAG = "kubernetes.io/cluster/"
MANAGED_TAG = "eks:nodegroup-name"  # on the Auto Scaling group of an EKS managed node group
FIX = ("set MetadataOptions HttpTokens=required and HttpPutResponseHopLimit=1 in {where} (pods would otherwise "
       "reach the node's IAM role)")
MANAGED_FIX = ("make the node group from a launch template whose MetadataOptions set HttpTokens=required and "
               "HttpPutResponseHopLimit=1: EKS managed node groups have no metadata setting of their own")
IAM_ACTIONS = {"eks": ["eks:ListNodegroups", "eks:DescribeNodegroup"],
               "describe": ["ec2:DescribeLaunchTemplateVersions", "autoscaling:DescribeAutoScalingGroups",
                            "autoscaling:DescribeLaunchConfigurations"]}


class Template(NamedTuple):
    """Where a node group's instances get their metadata options."""

    kind: str  # "launch template" or "launch configuration"
    name: str  # the template's id (else its name), or the configuration's name: what is asked for
    version: str = ""  # a launch template's version ('' : its default)
    label: str = ""  # the template's name, when the id is what is asked for


def _client(service: str, cfg: Config) -> Any:
    from ood_k8s.cloud.aws.clients import client  # deferred: only the doctor's node group check asks EC2

    return client(service, region=cfg.cluster.aws_region, read_timeout=cfg.cluster.request_timeout)


def ec2_client(cfg: Config) -> Any:
    return _client("ec2", cfg)


def autoscaling_client(cfg: Config) -> Any:
    return _client("autoscaling", cfg)


# --- judging metadata options -----------------------------------------------------------------------------


def problems(options: dict[str, Any]) -> list[str]:
    """What lets a pod reach the instance metadata, from EC2's MetadataOptions (unset: not known to be safe)."""
    if options.get("HttpEndpoint") == "disabled":
        return []
    out = []
    tokens, hops = options.get("HttpTokens"), options.get("HttpPutResponseHopLimit")
    if tokens != "required":
        out.append(f"HttpTokens {tokens}" if tokens else "HttpTokens unset (the AMI's or account's default: "
                   "optional unless the AMI is marked IMDSv2-only)")
    if hops != 1:
        out.append(f"hop limit {hops}" if hops else "hop limit unset (the AMI's or account's default: 2 for "
                   "IMDSv2-only AMIs such as AL2023's)")
    return out


def _spec_template(spec: dict[str, Any]) -> Template:
    """A LaunchTemplateSpecification (EC2 Auto Scaling's or EKS's spelling) as a :class:`Template`."""
    ident = spec.get("LaunchTemplateId") or spec.get("id") or ""
    name = spec.get("LaunchTemplateName") or spec.get("name") or ""
    return Template("launch template", ident or name, str(spec.get("Version") or spec.get("version") or ""),
                    name if ident else "")


def group_templates(group: dict[str, Any]) -> list[Template]:
    """Every template an Auto Scaling group launches from (a mixed-instances policy's overrides may name more)."""
    if group.get("LaunchTemplate"):
        return [_spec_template(group["LaunchTemplate"])]
    mixed = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    if mixed:
        out = [_spec_template(mixed.get("LaunchTemplateSpecification") or {})]
        out += [_spec_template(o["LaunchTemplateSpecification"]) for o in mixed.get("Overrides") or []
                if o.get("LaunchTemplateSpecification")]
        return list(dict.fromkeys(out))
    if group.get("LaunchConfigurationName"):
        return [Template("launch configuration", group["LaunchConfigurationName"])]
    return []


def _options(t: Template, ec2: Any, autoscaling: Any) -> dict[str, Any]:
    """The MetadataOptions ``t`` gives (raises a client error when it cannot be read)."""
    if t.kind == "launch configuration":
        found = autoscaling.describe_launch_configurations(LaunchConfigurationNames=[t.name])["LaunchConfigurations"]
        return (found[0].get("MetadataOptions") or {}) if found else {}
    key = "LaunchTemplateId" if t.name.startswith("lt-") else "LaunchTemplateName"
    versions = ec2.describe_launch_template_versions(**{key: t.name}, Versions=[t.version or "$Default"])
    found = versions["LaunchTemplateVersions"]
    return (found[0].get("LaunchTemplateData") or {}).get("MetadataOptions") or {} if found else {}


def judge(title: str, templates: list[Template], ec2: Any, autoscaling: Any, fix: str) -> Check:
    """One node group's line: every template it launches from holds tokens required and one hop."""
    seen, bad = [], []
    for t in templates:
        shown = f"{t.kind} {t.label or t.name}" + (f" ({t.name})" if t.label else "") + \
            (f" version {t.version}" if t.version else "")
        try:
            found = problems(_options(t, ec2, autoscaling))
        except aws.client_errors() as err:
            return Check(title, None, f"cannot read {shown} ({aws.code(err)})",
                         aws.fix(err, "give the portal's AWS role the reads of 'ood-k8s cluster render --only iam'"))
        seen.append(shown)
        if found:
            bad.append(f"{shown}: {', '.join(found)}")
    if bad:
        return Check(title, False, "; ".join(bad), fix.format(where=" and ".join(seen)))
    return Check(title, True, f"{', '.join(seen)}: tokens required, hop limit 1")


# --- the node groups --------------------------------------------------------------------------------------


def managed_groups(cfg: Config, eks: Any, ec2: Any, autoscaling: Any) -> list[Check]:
    """A line per EKS managed node group: its own launch template, else the one EKS generated for it."""
    name = cfg.cluster.eks_name
    groups = [g for page in eks.get_paginator("list_nodegroups").paginate(clusterName=name)
              for g in page.get("nodegroups") or []]
    out = []
    for group in groups:
        described = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
        title = f"{TITLE}: node group {group}"
        if described.get("launchTemplate"):
            out.append(judge(title, [_spec_template(described["launchTemplate"])], ec2, autoscaling,
                             FIX.replace("{where}", "{where} (then update the node group to that version)")))
            continue
        asg_names = [a["name"] for a in (described.get("resources") or {}).get("autoScalingGroups") or []]
        asgs = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=asg_names)["AutoScalingGroups"] \
            if asg_names else []
        generated = [t for g in asgs for t in group_templates(g)]
        if not generated:
            out.append(Check(title, False, f"no launch template of the site's ({described.get('amiType', 'AMI')}): "
                             "EKS generated one, which could not be found through its Auto Scaling group; EKS "
                             "documents no metadata options for it", MANAGED_FIX))
            continue
        check = judge(title, generated, ec2, autoscaling, MANAGED_FIX)
        out.append(replace(check, detail=f"EKS's generated {check.detail}") if check.ok is not None else check)
    return out


def self_managed_groups(cfg: Config, ec2: Any, autoscaling: Any) -> list[Check]:
    """A line per Auto Scaling group of the cluster (tagged kubernetes.io/cluster/<name>) EKS does not manage."""
    pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": "tag-key", "Values": [CLUSTER_TAG + cfg.cluster.eks_name]}])
    out = []
    for group in (g for page in pages for g in page.get("AutoScalingGroups") or []):
        if any(t.get("Key") == MANAGED_TAG for t in group.get("Tags") or []):
            continue  # an EKS managed node group's: judged as that group
        title = f"{TITLE}: Auto Scaling group {group['AutoScalingGroupName']}"
        templates = group_templates(group)
        out.append(judge(title, templates, ec2, autoscaling, FIX) if templates else
                   Check(title, None, "launches from neither a launch template nor a launch configuration"))
    return out


def unread(cfg: Config) -> list[Check]:
    """For the autoscalers without node classes of their own: nothing, when :func:`node_group_checks` reads the
    node groups; else the line saying they are not read."""
    if cfg.cluster.eks_name:
        return []
    return [Check("node metadata options", None, "not checked for nodes outside Karpenter: set cluster.eks_name for "
                  "doctor to read each node group's launch template (HttpTokens required, HttpPutResponseHopLimit 1)")]


def node_group_checks(ctx: Context) -> list[Check]:
    """Doctor provider: a line per node group of the EKS cluster (when cluster.eks_name names it)."""
    cfg = ctx.cfg
    if not cfg.cluster.eks_name:
        return []
    try:
        ec2, autoscaling = ctx.client("ec2"), ctx.client("autoscaling")
        out = managed_groups(cfg, ctx.client("eks"), ec2, autoscaling) + self_managed_groups(cfg, ec2, autoscaling)
    except aws.client_errors() as err:
        if aws.code(err) == "ResourceNotFoundException":
            return [Check(f"{TITLE}: node groups", False, f"no EKS cluster {cfg.cluster.eks_name} in "
                          f"{cfg.cluster.aws_region}", "set cluster.eks_name and cluster.aws_region")]
        return [Check(f"{TITLE}: node groups", None, f"cannot list the node groups of {cfg.cluster.eks_name} "
                      f"({aws.code(err)})", aws.fix(err, "give the portal's AWS role the reads of 'ood-k8s cluster "
                                                         "render --only iam'"))]
    return out or [Check(f"{TITLE}: node groups", None, f"{cfg.cluster.eks_name} has no EC2 node groups "
                         "(managed, or Auto Scaling groups tagged kubernetes.io/cluster/<name>)")]


def iam_statements(cfg: Config) -> list[dict[str, Any]]:
    """What :func:`node_group_checks` calls, for the portal's role (``--only iam``)."""
    region, name = cfg.cluster.aws_region, cfg.cluster.eks_name
    return [{"Sid": "NodeGroupsDoctor", "Effect": "Allow", "Action": IAM_ACTIONS["eks"],
             "Resource": [f"arn:aws:eks:{region}:*:cluster/{name}", f"arn:aws:eks:{region}:*:nodegroup/{name}/*/*"]},
            # EC2's and Auto Scaling's Describe* calls take no resource-level permissions.
            {"Sid": "NodeMetadataDoctor", "Effect": "Allow", "Action": IAM_ACTIONS["describe"], "Resource": "*"}]

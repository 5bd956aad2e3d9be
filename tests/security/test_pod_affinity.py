"""A student's pod reaching a node pool they are not entitled to through AFFINITY rather than nodeSelector,
evaluated against the RENDERED guard and the hook's own Namespace (CREATE, UPDATE of a gated pod, the
``pods/ephemeralcontainers`` subresource).  The site has an UNTAINTED CPU pool reserved for 'staff'
(nothing but the guard keeps others off it when they name it), and a profile whose affinity is set in the
configuration.  Controls: every pod submit builds is admitted; submit and ``config check`` refuse the same."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from ood_k8s.config import Config, GpuConfig, Profile
from ood_k8s.core import vocab
from tests.conftest import ALICE, BOB
from tests.security import vap

POOL = vocab.KARPENTER_NODEPOOL_LABEL
BIGMEM_TYPE = ("node.kubernetes.io/instance-type", "r6i.8xlarge")  # a label only the reserved pool's profile names
ZONE = "topology.kubernetes.io/zone"
STAFF = ALICE._replace(groups=(*ALICE.groups, "staff"))
Change = Callable[[dict[str, Any]], None]

# A profile with affinity in the site's configuration: its own pool by affinity, a zone preference, and an
# exclusion on a label that places no profile.
ZONED_AFFINITY = {"nodeAffinity": {
    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": POOL, "operator": "In", "values": ["zoned"]},
        {"key": "example.edu/maintenance", "operator": "DoesNotExist"}]}]},
    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {"matchExpressions": [
        {"key": ZONE, "operator": "In", "values": ["us-east-1a"]}]}}]}}


def site() -> Config:
    cfg = Config()
    cfg.profiles = [*cfg.profiles,
                    Profile(name="bigmem", image="x", node_pool="bigmem", groups=["staff"],
                            node_selector=dict([BIGMEM_TYPE]), gpu=GpuConfig("nvidia.com/gpu", 0, 0)),
                    Profile(name="zoned", image="x", node_pool="zoned", affinity=ZONED_AFFINITY,
                            gpu=GpuConfig("nvidia.com/gpu", 0, 0))]
    return cfg


@pytest.fixture(scope="module")
def cfg() -> Config:
    return site()


@pytest.fixture(scope="module")
def guard(cfg: Config) -> vap.Guard:
    return vap.pod_guard(cfg)


def _required(*terms: list[dict[str, Any]], fields: list[dict[str, Any]] | None = None) -> Change:
    def change(pod: dict[str, Any]) -> None:
        node_terms = [{"matchExpressions": t} for t in terms] + ([{"matchFields": fields}] if fields else [])
        pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": node_terms}}}
    return change


def _preferred(expressions: list[dict[str, Any]] | None = None, fields: list[dict[str, Any]] | None = None) -> Change:
    def change(pod: dict[str, Any]) -> None:
        pref = {"matchExpressions": expressions} if expressions else {"matchFields": fields}
        pod["spec"]["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": pref}]}}
    return change


def _pod_affinity(term: dict[str, Any], preferred: bool = False) -> Change:
    def change(pod: dict[str, Any]) -> None:
        full = {"labelSelector": {"matchLabels": {vocab.PROFILE_LABEL: "bigmem"}},
                "topologyKey": "kubernetes.io/hostname", **term}
        pod["spec"]["affinity"] = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": full}]} if preferred else {
            "requiredDuringSchedulingIgnoredDuringExecution": [full]}}
    return change


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, **({"values": list(values)} if values else {})}


def _selector(**labels: str) -> Change:
    def change(pod: dict[str, Any]) -> None:
        pod["spec"]["nodeSelector"] = {k.replace("__", "/").replace("_", "."): v for k, v in labels.items()}
    return change


LABELS = "node pools and labels of profiles its user is entitled to"
OPERATORS = "only the operator In"
NODES = "may not name nodes (matchFields)"
PODS = "pod affinity may only follow pods of the pod's own namespace"
NODE = [{"key": "metadata.name", "operator": "In", "values": ["ip-10-0-1-17.ec2.internal"]}]

# (attack on Alice's own cpu session: she is not in 'staff', bigmem is untainted; the denial it meets)
ATTACKS: list[tuple[str, Change, str]] = [
    ("required In the reserved pool", _required([_expr(POOL, "In", "bigmem")]), LABELS),
    ("one of several values", _required([_expr(POOL, "In", "zoned", "bigmem")]), LABELS),
    ("a second, ORed term", _required([_expr(ZONE, "In", "us-east-1a")], [_expr(POOL, "In", "bigmem")]), LABELS),
    ("preferred In the reserved pool", _preferred([_expr(POOL, "In", "bigmem")]), LABELS),
    ("the pool's own label by affinity", _required([_expr(BIGMEM_TYPE[0], "In", BIGMEM_TYPE[1])]), LABELS),
    ("the pool's own label by nodeSelector", lambda p: p["spec"].__setitem__("nodeSelector", dict([BIGMEM_TYPE])),
     LABELS),
    ("a node by name (matchFields)", _required(fields=NODE), NODES),
    ("a node by name, preferred", _preferred(fields=NODE), NODES),
    ("every other pool excluded (NotIn)", _required([_expr(POOL, "NotIn", "zoned", "gpu-t4", "gpu-a10g")]),
     OPERATORS),
    ("any Karpenter node (Exists)", _required([_expr(POOL, "Exists")]), OPERATORS),
    ("no Karpenter node (DoesNotExist)", _required([_expr(POOL, "DoesNotExist")]), OPERATORS),
    ("a placing label compared (Gt)", _required([_expr(BIGMEM_TYPE[0], "Gt", "1")]), OPERATORS),
    ("follow a bigmem session from any namespace", _pod_affinity({"namespaceSelector": {}}), PODS),
    ("follow a named other namespace", _pod_affinity({"namespaces": ["ood-bob"]}), PODS),
    ("follow, preferred", _pod_affinity({"namespaceSelector": {}}, preferred=True), PODS),
]


def _alice(cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    return vap.session_pod(cfg, ALICE), vap.hook_namespace(cfg, ALICE)


@pytest.mark.parametrize(("change", "denial"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_refused(cfg: Config, guard: vap.Guard, change: Change, denial: str) -> None:
    pod, ns = _alice(cfg)
    change(pod)
    denied = guard.admit(pod, ns)
    assert any(denial in d for d in denied), denied


@pytest.mark.parametrize(("change", "denial"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_on_a_gated_pods_update(cfg: Config, guard: vap.Guard, change: Change, denial: str) -> None:
    """A pod held by scheduling gates may have its node affinity changed (KEP-3838): UPDATE is checked too."""
    old, ns = _alice(cfg)
    old["spec"]["schedulingGates"] = [{"name": "example.edu/hold"}]
    pod = copy.deepcopy(old)
    change(pod)
    assert any(denial in d for d in guard.admit(pod, ns, operation="UPDATE", old=old))


def test_attack_is_refused_through_the_ephemeral_containers_subresource(cfg: Config, guard: vap.Guard) -> None:
    old, ns = _alice(cfg)
    pod = copy.deepcopy(old)
    _required([_expr(POOL, "In", "bigmem")])(pod)
    pod["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox", "securityContext": {
        "allowPrivilegeEscalation": False, "runAsNonRoot": True}}]
    denied = guard.admit(pod, ns, operation="UPDATE", resource="pods/ephemeralcontainers", old=old)
    assert any(LABELS in d for d in denied), denied


# --- GPU pools by affinity (Bob: entitled to cpu and gpu-t4, not gpu-a10g) ---------------------------------


def test_bob_reaches_no_a10g_by_affinity(cfg: Config, guard: vap.Guard) -> None:
    ns = vap.hook_namespace(cfg, BOB)
    pod = vap.session_pod(cfg, BOB, "gpu-t4")  # tolerates the GPU taint, requests a GPU
    del pod["spec"]["nodeSelector"][POOL]
    _required([_expr(POOL, "In", "gpu-a10g")])(pod)
    denied = guard.admit(pod, ns)
    assert any(LABELS in d for d in denied) and any("must select the node pool of a GPU profile" in d
                                                    for d in denied), denied


def test_a_gpu_pool_by_affinity_needs_a_gpu(cfg: Config, guard: vap.Guard) -> None:
    """Even his own gpu-t4 pool: by affinity as by nodeSelector, no GPU pool without a GPU request."""
    pod = vap.session_pod(cfg, BOB)  # cpu: no toleration, no GPU
    _preferred([_expr(POOL, "In", "gpu-t4")])(pod)
    assert any("must request a GPU" in d for d in guard.admit(pod, vap.hook_namespace(cfg, BOB)))


# --- controls -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", [ALICE, BOB, STAFF], ids=["alice", "bob", "staff"])
def test_every_pod_submit_builds_is_admitted(cfg: Config, guard: vap.Guard, ident: Any) -> None:
    from ood_k8s.policy import access

    ns = vap.hook_namespace(cfg, ident)
    usable = [p.name for p in access.usable_profiles(cfg.profiles, ident)]
    assert ("bigmem" in usable) is (ident is STAFF) and "zoned" in usable
    for name in usable:
        pod = vap.session_pod(cfg, ident, name)
        assert guard.admit(pod, ns) == [], (ident.username, name)
    zoned = vap.session_pod(cfg, ident, "zoned")
    assert zoned["spec"]["affinity"] == ZONED_AFFINITY  # the configured affinity reaches the pod as written


def test_what_the_entitled_may_do_by_affinity(cfg: Config, guard: vap.Guard) -> None:
    ns = vap.hook_namespace(cfg, STAFF)
    pod = vap.session_pod(cfg, STAFF)
    _required([_expr(POOL, "In", "bigmem"), _expr(BIGMEM_TYPE[0], "In", BIGMEM_TYPE[1])],
              [_expr(ZONE, "NotIn", "us-east-1c")])(pod)
    assert guard.admit(pod, ns) == []
    own = vap.session_pod(cfg, ALICE)
    _pod_affinity({"namespaces": [own["metadata"]["namespace"]]})(own)  # her own sessions: fine
    assert guard.admit(own, vap.hook_namespace(cfg, ALICE)) == []
    _pod_affinity({})(own)
    assert guard.admit(own, vap.hook_namespace(cfg, ALICE)) == []


def test_submit_refuses_what_the_guard_would(cfg: Config) -> None:
    from ood_k8s.core.errors import NotEntitled

    for native in ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [_expr(POOL, "In", "bigmem")]}]}}}},
                   {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                       {"weight": 1, "preference": {"matchFields": NODE}}]}}},
                   {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                       {"topologyKey": "kubernetes.io/hostname", "namespaceSelector": {}}]}}},
                   {"node_selector": dict([BIGMEM_TYPE])}):
        with pytest.raises(NotEntitled, match="profile 'cpu'"):
            vap.session_pod(cfg, ALICE, "cpu", **native)
    with pytest.raises(NotEntitled, match="only use the operator In"):
        vap.session_pod(cfg, STAFF, "bigmem", affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [_expr(POOL, "Exists")]}]}}})


@pytest.mark.parametrize(("affinity", "problem"), [
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [_expr(POOL, "NotIn", "gpu-t4", "gpu-a10g")]}]}}}, "only use the operator In, not NotIn"),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [_expr(POOL, "In", "bigmem")]}]}}}, f"{POOL}=bigmem places pods on another profile"),
])
def test_config_check_refuses_a_profile_affinity_the_guard_would(affinity: dict[str, Any], problem: str) -> None:
    from ood_k8s.config import parse, to_dict
    from ood_k8s.core.errors import ConfigError

    data = to_dict(site(), redact=False)
    data["profiles"][0]["affinity"] = affinity
    with pytest.raises(ConfigError, match="profiles\\[0\\].affinity: .*" + problem.replace(".", "\\.")):
        parse(data)
    assert parse(to_dict(site(), redact=False)).profiles[-1].affinity == ZONED_AFFINITY  # the control parses

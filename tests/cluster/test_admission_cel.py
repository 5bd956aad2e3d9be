"""The admission guard's CEL, evaluated by a real CEL implementation (cel-python) as the API server would.

:func:`admit` follows the ValidatingAdmissionPolicy semantics: the binding's namespaceSelector and the
policy's resource rules decide whether the policy applies; variables are evaluated in order and are
visible to later ones as ``variables.<name>``; ``object`` is the pod (after the API server's
defaulting) and ``namespaceObject`` its namespace; a validation that is false denies with its
(message)Expression, and one that fails to evaluate denies too (failurePolicy: Fail).  Variables must
never fail -- an error would turn every denial into an unreadable one -- so :func:`admit` asserts it.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import celpy
import pytest

from ood_k8s.cluster import manifests as cluster
from ood_k8s.config import ExtraMount
from ood_k8s.core import names, vocab
from ood_k8s.policy import cel
from ood_k8s.render.render import Renderer
from tests.conftest import ALICE, BOB
from tests.hostile import PAYLOADS

_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def _program(expr: str) -> Any:
    if expr not in _PROGRAMS:
        _PROGRAMS[expr] = _ENV.program(_ENV.compile(expr))
    return _PROGRAMS[expr]


def _eval(expr: str, activation: dict[str, Any]) -> Any:
    return _program(expr).evaluate(activation)


def _policy(cfg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    # Schema validity is test_cluster's concern; here only the CEL matters.
    objs = {(o["kind"], o["metadata"]["name"]): o for o in cluster.objects(cfg, Renderer(None, validate=False))}
    return (objs["ValidatingAdmissionPolicy", cluster.POLICY_NAME],
            objs["ValidatingAdmissionPolicyBinding", cluster.POLICY_NAME])


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def admit(policy: dict[str, Any], binding: dict[str, Any], pod: dict[str, Any], namespace: dict[str, Any],
          resource: str = "pods", operation: str = "CREATE") -> list[str]:
    """Denial messages (empty: admitted), evaluated the way the API server does."""
    labels = namespace["metadata"].get("labels", {})
    spec = policy["spec"]
    if not (_selected(binding["spec"]["matchResources"]["namespaceSelector"], labels)
            and _selected(spec["matchConstraints"]["namespaceSelector"], labels)):
        return []
    if not any(resource in r["resources"] and operation in r["operations"]
               for r in spec["matchConstraints"]["resourceRules"]):
        return []
    base = {"object": celpy.json_to_cel(pod), "namespaceObject": celpy.json_to_cel(namespace),
            "request": celpy.json_to_cel({"operation": operation})}  # the API server always passes it (issue 15)
    variables: dict[Any, Any] = {}
    for var in spec.get("variables", []):
        activation = {**base, "variables": celpy.celtypes.MapType(variables)}
        value = _eval(var["expression"], activation)  # raises on error: variables must never fail
        variables[celpy.celtypes.StringType(var["name"])] = value
    activation = {**base, "variables": celpy.celtypes.MapType(variables)}
    denied = []
    for v in spec["validations"]:
        try:
            ok = _eval(v["expression"], activation)
        except celpy.CELEvalError as exc:
            denied.append(f"error: {exc}")
            continue
        if ok is not True and ok != celpy.celtypes.BoolType(True):
            denied.append(str(_eval(v["messageExpression"], activation)) if "messageExpression" in v
                          else v["message"])
    return denied


# --- what the API server sees ------------------------------------------------------------------------


def namespace(ident: Any = ALICE, **annotations: str | None) -> dict[str, Any]:
    ann = {vocab.USERNAME_ANNOTATION: ident.username, vocab.UID_ANNOTATION: str(ident.uid),
           vocab.GID_ANNOTATION: str(ident.gid),
           vocab.GIDS_ANNOTATION: ",".join(str(g) for g in ident.gids)}
    for key, value in annotations.items():
        key = {"uid": vocab.UID_ANNOTATION, "gid": vocab.GID_ANNOTATION, "gids": vocab.GIDS_ANNOTATION,
               "home": vocab.HOME_ANNOTATION, "username": vocab.USERNAME_ANNOTATION}[key]
        if value is None:
            ann.pop(key, None)
        else:
            ann[key] = value
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": f"ood-{ident.username}", "annotations": ann,
                         "labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY, vocab.USER_LABEL: ident.username,
                                    "pod-security.kubernetes.io/enforce": "restricted",
                                    "kubernetes.io/metadata.name": f"ood-{ident.username}"}}}


def session_pod(ident: Any = ALICE) -> dict[str, Any]:
    """A session pod as the adapter makes it, after the API server's defaulting."""
    hardened = {"allowPrivilegeEscalation": False, "privileged": False, "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "jupyter-0a1b2c3d", "namespace": f"ood-{ident.username}"},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
            "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler", "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30, "preemptionPolicy": "PreemptLowerPriority", "priority": 1000,
            "priorityClassName": "ood-interactive", "activeDeadlineSeconds": 3600,
            "securityContext": {"runAsUser": ident.uid, "runAsGroup": ident.gid, "runAsNonRoot": True,
                                "supplementalGroups": list(ident.gids), "supplementalGroupsPolicy": "Strict",
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "jupyter", "image": "quay.io/jupyter/scipy-notebook:2025-10-20",
                "imagePullPolicy": "IfNotPresent", "command": ["/bin/bash", "/ood/script.sh"],
                "workingDir": ident.home, "securityContext": dict(hardened),
                "ports": [{"name": "app", "containerPort": 8888, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}},
                "volumeMounts": [{"name": "home", "mountPath": ident.home},
                                 {"name": "ood-files", "mountPath": "/ood"},
                                 {"name": "shm", "mountPath": "/dev/shm"}],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            }],
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": "home"}},
                {"name": "ood-files", "configMap": {"name": "jupyter-0a1b2c3d-files", "defaultMode": 493}},
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
            ],
        },
    }


def _ctr(pod: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return pod["spec"]["containers"][i]


def _add_volume(pod: dict[str, Any], volume: dict[str, Any], mount_path: str = "/mnt/x",
                **mount: Any) -> None:
    pod["spec"]["volumes"].append(volume)
    _ctr(pod)["volumeMounts"].append({"name": volume["name"], "mountPath": mount_path, **mount})


def _debug_container(**security: Any) -> Callable[[dict[str, Any]], None]:
    def change(pod: dict[str, Any]) -> None:
        pod["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox", "targetContainerName":
                                               "jupyter", "securityContext": security}]
    return change


# --- the default site (EFS homes) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def guard() -> tuple[dict[str, Any], dict[str, Any]]:
    from ood_k8s.config import Config

    return _policy(Config())


def test_every_expression_compiles(guard: Any) -> None:
    policy, _ = guard
    exprs = [v["expression"] for v in policy["spec"]["variables"]]
    exprs += [v[k] for v in policy["spec"]["validations"] for k in ("expression", "messageExpression") if k in v]
    assert len(exprs) == 55 + 8 + 4  # 27 + issue 11 (scheduling) + issue 11 (affinity: 4 variables, 3 rules, 1 message)
    # + issue 15 (the session's lifetime: 2 variables, 2 rules)
    for expr in exprs:
        _program(expr)


def test_the_session_pod_is_admitted(guard: Any) -> None:
    assert admit(*guard, session_pod(), namespace()) == []


def test_bob_is_admitted_in_his_own_namespace(guard: Any) -> None:
    assert admit(*guard, session_pod(BOB), namespace(BOB)) == []


@pytest.mark.parametrize("change", [
    pytest.param(lambda p: p["spec"].pop("volumes"), id="no volumes"),
    pytest.param(lambda p: _ctr(p)["securityContext"].update(runAsUser=ALICE.uid, runAsGroup=ALICE.gid),
                 id="container repeats the ids"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(fsGroup=ALICE.gid), id="fsGroup = gid"),
    pytest.param(lambda p: p["spec"]["securityContext"].pop("supplementalGroups"), id="no supplementary groups"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(supplementalGroups=[ALICE.gid, 30002]),
                 id="own groups"),
    pytest.param(lambda p: p["spec"].update(initContainers=[{
        "name": "init", "image": "busybox", "securityContext": {"allowPrivilegeEscalation": False}}]),
        id="hardened init container"),
    pytest.param(_debug_container(allowPrivilegeEscalation=False), id="hardened debug container"),
    pytest.param(lambda p: _add_volume(p, {"name": "kube-api-access-x7k2p", "projected": {
        "defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]}}, "/var/run/secrets/kubernetes.io/serviceaccount"), id="service account token volume"),
    pytest.param(lambda p: _add_volume(p, {"name": "pw", "secret": {"secretName": "jupyter-0a1b2c3d-secret"}}),
                 id="secret volume"),
    pytest.param(lambda p: _add_volume(p, {"name": "info", "downwardAPI": {"items": []}}), id="downwardAPI"),
])
def test_allowed_variants(guard: Any, change: Callable[[dict[str, Any]], Any]) -> None:
    pod = session_pod()
    change(pod)
    assert admit(*guard, pod, namespace()) == []


UID = "pods in namespace ood-alice must run as uid 20001 (securityContext.runAsUser)"
GID = "pods in namespace ood-alice must run as gid 20001 (securityContext.runAsGroup and fsGroup)"
GROUPS = "supplementalGroups may only hold the user's own groups"
NONROOT = "pods must set securityContext.runAsNonRoot true"
PRIVILEGE = ("containers may not be privileged, add capabilities or allow privilege escalation "
             "(set allowPrivilegeEscalation false)")
HOST = "pods may not use the node's network, process or IPC namespaces or its ports"
KINDS = ("volumes may only be of the kinds ood-k8s uses: persistentVolumeClaim, configMap, secret, emptyDir, "
         "downwardAPI, projected")
CLAIMS = "the only claims a session may mount are the home claim 'home'"


@pytest.mark.parametrize("change, expected", [
    pytest.param(lambda p: p["spec"]["securityContext"].update(runAsUser=BOB.uid), [UID], id="another uid"),
    pytest.param(lambda p: p["spec"]["securityContext"].pop("runAsUser"), [UID], id="image's own user"),
    pytest.param(lambda p: _ctr(p)["securityContext"].update(runAsUser=BOB.uid), [UID],
                 id="container as another uid"),
    pytest.param(lambda p: p["spec"].update(initContainers=[{
        "name": "init", "image": "busybox",
        "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": 0, "runAsNonRoot": False}}]),
        [UID, NONROOT], id="init container as root"),
    pytest.param(_debug_container(allowPrivilegeEscalation=False, runAsUser=BOB.uid), [UID],
                 id="debug container as another uid"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(runAsGroup=BOB.gid), [GID], id="another gid"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(fsGroup=0), [GID], id="fsGroup root"),
    pytest.param(lambda p: _ctr(p)["securityContext"].update(runAsGroup=0), [GID], id="container gid root"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(supplementalGroups=[0]), [GROUPS],
                 id="supplementary group root"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(supplementalGroups=[30001, 30003]), [GROUPS],
                 id="someone else's group"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(supplementalGroups=[3000]), [GROUPS],
                 id="prefix of an own group"),
    pytest.param(lambda p: p["spec"]["securityContext"].update(runAsNonRoot=False), [NONROOT],
                 id="runAsNonRoot false"),
    pytest.param(lambda p: _ctr(p)["securityContext"].update(privileged=True), [PRIVILEGE],
                 id="privileged container"),
    pytest.param(lambda p: _ctr(p)["securityContext"].update(capabilities={"add": ["SYS_ADMIN"]}), [PRIVILEGE],
                 id="added capability"),
    pytest.param(lambda p: _ctr(p).pop("securityContext"), [PRIVILEGE], id="no container securityContext"),
    pytest.param(_debug_container(allowPrivilegeEscalation=True), [PRIVILEGE], id="debug container escalates"),
    pytest.param(lambda p: p["spec"].update(hostPID=True), [HOST], id="hostPID"),
    pytest.param(lambda p: p["spec"].update(hostNetwork=True), [HOST], id="hostNetwork"),
    pytest.param(lambda p: _ctr(p)["ports"][0].update(hostPort=8888), [HOST], id="hostPort"),
    pytest.param(lambda p: _add_volume(p, {"name": "root", "hostPath": {"path": "/home/bob"}}), [KINDS],
                 id="hostPath volume"),
    pytest.param(lambda p: _add_volume(p, {"name": "nfs", "nfs": {"server": "nfs.example.edu",
                                                                   "path": "/export/home/bob"}}), [KINDS],
                 id="NFS volume"),
    pytest.param(lambda p: _add_volume(p, {"name": "efs", "csi": {"driver": "efs.csi.aws.com",
                                                                   "volumeAttributes": {"path": "/home/bob"}}}),
                 [KINDS], id="inline CSI volume"),
    pytest.param(lambda p: _add_volume(p, {"name": "eph", "ephemeral": {"volumeClaimTemplate": {
        "spec": {"volumeName": "ood-home-bob", "accessModes": ["ReadWriteMany"],
                 "resources": {"requests": {"storage": "1Gi"}}}}}}), [KINDS], id="generic ephemeral volume"),
    pytest.param(lambda p: _add_volume(p, {"name": "trust", "projected": {"sources": [
        {"clusterTrustBundle": {"signerName": "x", "path": "ca"}}]}}), [KINDS], id="projected trust bundle"),
    pytest.param(lambda p: _add_volume(p, {"name": "bob", "persistentVolumeClaim": {"claimName": "home-bob"}}),
                 [CLAIMS], id="another user's claim"),
    pytest.param(lambda p: p["spec"]["volumes"][0]["persistentVolumeClaim"].update(claimName="scratch"),
                 [CLAIMS], id="a claim that is not the home"),
])
def test_forbidden(guard: Any, change: Callable[[dict[str, Any]], Any], expected: list[str]) -> None:
    pod = session_pod()
    change(pod)
    assert admit(*guard, pod, namespace()) == expected


def test_ephemeral_container_subresource_is_guarded(guard: Any) -> None:
    pod = session_pod()
    _debug_container(allowPrivilegeEscalation=False, runAsUser=0)(pod)
    assert admit(*guard, pod, namespace(), resource="pods/ephemeralcontainers", operation="UPDATE") == [UID]


def test_alice_cannot_run_as_bob_even_with_bobs_pod(guard: Any) -> None:
    # Bob's groups are a subset of Alice's: only the ids give him away.
    assert admit(*guard, session_pod(BOB), namespace(ALICE)) == [UID, GID]


INVALID = ("namespace ood-alice has no valid ood-k8s.io/uid and ood-k8s.io/gid annotations: an administrator "
           "must run ood-k8s user setup for its user")


@pytest.mark.parametrize("ns", [
    pytest.param(namespace(uid=None), id="no uid"),
    pytest.param(namespace(gid=None), id="no gid"),
    pytest.param(namespace(uid="20001 || true"), id="uid with CEL"),
    pytest.param(namespace(uid="-20001"), id="negative uid"),
    pytest.param(namespace(uid="999"), id="system uid"),
    pytest.param(namespace(gid="0"), id="root gid"),
])
def test_a_namespace_without_valid_ids_admits_nothing(guard: Any, ns: dict[str, Any]) -> None:
    assert INVALID in admit(*guard, session_pod(), ns)


def test_no_annotations_at_all(guard: Any) -> None:
    ns = namespace()
    del ns["metadata"]["annotations"]
    assert admit(*guard, session_pod(), ns)[0] == INVALID


def test_root_namespace_annotation_does_not_let_root_in(guard: Any) -> None:
    pod = session_pod()
    pod["spec"]["securityContext"].update(runAsUser=0, runAsNonRoot=False)
    assert INVALID in admit(*guard, pod, namespace(uid="0"))


def test_without_recorded_supplementary_groups_only_the_primary_group_passes(guard: Any) -> None:
    assert admit(*guard, session_pod(), namespace(gids=None)) == [GROUPS]
    pod = session_pod()
    pod["spec"]["securityContext"]["supplementalGroups"] = [ALICE.gid]
    assert admit(*guard, pod, namespace(gids=None)) == []


def test_malformed_group_list_is_ignored(guard: Any) -> None:
    assert admit(*guard, session_pod(), namespace(gids="30001,30002,.*")) == [GROUPS]


def test_other_namespaces_are_not_guarded(guard: Any) -> None:
    ns = namespace()
    ns["metadata"]["labels"] = {"kubernetes.io/metadata.name": "jupyterhub"}
    pod = session_pod()
    pod["spec"]["securityContext"]["runAsUser"] = 0
    assert admit(*guard, pod, ns) == []


def test_other_resources_are_not_guarded(guard: Any) -> None:
    pod = session_pod()
    pod["spec"]["securityContext"]["runAsUser"] = 0
    assert admit(*guard, pod, namespace(), resource="pods/status", operation="UPDATE") == []


# --- other storage modes and the site's extra mounts ----------------------------------------------------


def test_pvc_mode_allows_exactly_the_users_claim(make_config: Any) -> None:
    guard = _policy(make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "home-{user}-{uid}"}))
    pod = session_pod()
    pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "home-alice-20001"
    assert admit(*guard, pod, namespace()) == []
    pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "home-bob-20002"
    assert admit(*guard, pod, namespace()) == [
        "the only claims a session may mount are the home claim 'home-{user}-{uid}'"]
    # The name comes from the namespace's annotations, not from anything in the pod.
    bobs = session_pod(BOB)
    bobs["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "home-bob-20002"
    assert admit(*guard, bobs, namespace(BOB)) == []


def test_hostpath_mode_allows_only_the_recorded_home(make_config: Any) -> None:
    guard = _policy(make_config(**{"storage.mode": "hostpath", "users.pod_security": "privileged"}))
    pod = session_pod()
    pod["spec"]["volumes"][0] = {"name": "home", "hostPath": {"path": "/home/alice", "type": "Directory"}}
    assert admit(*guard, pod, namespace(home="/home/alice")) == []
    kinds = (f"{KINDS} and the hostPath of the user's home (namespace annotation ood-k8s.io/home)")
    assert admit(*guard, pod, namespace(home="/home/bob")) == [kinds]
    assert admit(*guard, pod, namespace()) == [kinds]
    assert admit(*guard, pod, namespace(home="")) == [kinds]


def test_inline_csi_is_admitted_only_for_the_sites_drivers(make_config: Any) -> None:
    guard = _policy(make_config(**{"jobs.csi_drivers": ["secrets-store.csi.k8s.io"]}))
    vault, efs = session_pod(), session_pod()
    _add_volume(vault, {"name": "vault", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                                                 "volumeAttributes": {"secretProviderClass": "keys"}}})
    _add_volume(efs, {"name": "efs", "csi": {"driver": "efs.csi.aws.com", "volumeAttributes": {"path": "/home/bob"}}})
    assert admit(*guard, vault, namespace()) == []
    assert admit(*guard, efs, namespace()) == [f"{KINDS}, inline CSI of the drivers secrets-store.csi.k8s.io"]


def test_no_storage_allows_no_claims(make_config: Any) -> None:
    guard = _policy(make_config(**{"storage.mode": "none"}))
    assert admit(*guard, session_pod(), namespace()) == [
        "sessions may not mount persistent volume claims on this site"]


@pytest.fixture(scope="module")
def shared_guard() -> tuple[dict[str, Any], dict[str, Any]]:
    from ood_k8s.config import Config

    cfg = Config()
    cfg.storage.extra_mounts = [
        ExtraMount(name="datasets", mount_path="/datasets", claim_name="datasets", read_only=True),
        ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch", read_only=False,
                   sub_path="users/{user}"),
        ExtraMount(name="project", mount_path="/project", claim_name="project-{gid}", read_only=False),
    ]
    return _policy(cfg)


def _shared_pod(dataset_ro: bool = True, scratch_sub: str | None = "users/alice") -> dict[str, Any]:
    pod = session_pod()
    _add_volume(pod, {"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": dataset_ro}},
                "/datasets", readOnly=True)
    _add_volume(pod, {"name": "scratch", "persistentVolumeClaim": {"claimName": "scratch"}}, "/scratch",
                **({"subPath": scratch_sub} if scratch_sub is not None else {}))
    _add_volume(pod, {"name": "project", "persistentVolumeClaim": {"claimName": "project-20001"}}, "/project")
    return pod


def test_site_mounts_are_allowed_as_configured(shared_guard: Any) -> None:
    assert admit(*shared_guard, _shared_pod(), namespace()) == []


def test_read_only_site_claim_mounted_writable(shared_guard: Any) -> None:
    assert admit(*shared_guard, _shared_pod(dataset_ro=False), namespace()) == [
        "the site's read-only claims must be mounted with persistentVolumeClaim.readOnly true"]


@pytest.mark.parametrize("sub", [None, "users/bob", "users", "users/alice/../bob"])
def test_shared_claim_only_at_the_users_sub_path(shared_guard: Any, sub: str | None) -> None:
    assert admit(*shared_guard, _shared_pod(scratch_sub=sub), namespace()) == [
        "a shared claim may only be mounted at the user's own sub-path"]


def test_shared_claim_with_sub_path_expr_is_refused(shared_guard: Any) -> None:
    pod = _shared_pod(scratch_sub=None)
    _ctr(pod)["volumeMounts"][-2]["subPathExpr"] = "users/$(USER)"
    assert admit(*shared_guard, pod, namespace()) == ["a shared claim may only be mounted at the user's own sub-path"]


def test_shared_claim_through_an_init_container(shared_guard: Any) -> None:
    pod = _shared_pod()
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox",
                                      "securityContext": {"allowPrivilegeEscalation": False},
                                      "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]}]
    assert admit(*shared_guard, pod, namespace()) == ["a shared claim may only be mounted at the user's own sub-path"]


def test_group_claim_of_another_group(shared_guard: Any) -> None:
    pod = _shared_pod()
    pod["spec"]["volumes"][-1]["persistentVolumeClaim"]["claimName"] = "project-20002"
    assert admit(*shared_guard, pod, namespace()) == [
        "the only claims a session may mount are the home claim 'home', 'datasets', 'scratch', 'project-{gid}'"]


# --- hostile configuration values cannot change an expression ----------------------------------------------

_TEXTS = [p for p in PAYLOADS if "\x00" not in p] + ['x", "home-bob', "x' + variables.username + '",
                                                      '\\"] + ["home-bob"] + ["', "😀\U0010fffd"]


@pytest.mark.parametrize("text", _TEXTS, ids=range(len(_TEXTS)))
def test_cel_string_round_trips(text: str) -> None:
    assert _eval(cel.cel_string(text), {}) == text


@pytest.mark.parametrize("text", _TEXTS, ids=range(len(_TEXTS)))
def test_hostile_claim_names_allow_exactly_themselves(text: str) -> None:
    from ood_k8s.config import Config

    cfg = Config()
    # {{ and }} are how a literal brace is written in a name template.
    template = text.replace("{", "{{").replace("}", "}}")
    cfg.storage.extra_mounts = [ExtraMount(name="x", mount_path="/x", claim_name=template, read_only=False)]
    guard = _policy(cfg)
    pod = session_pod()
    _add_volume(pod, {"name": "x", "persistentVolumeClaim": {"claimName": text}})
    assert admit(*guard, pod, namespace()) == []
    evil = copy.deepcopy(pod)
    evil["spec"]["volumes"][-1]["persistentVolumeClaim"]["claimName"] = "home-bob"
    assert len(admit(*guard, evil, namespace())) == 1


def test_username_annotation_is_data_not_code(make_config: Any) -> None:
    guard = _policy(make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "home-{user}"}))
    pod = session_pod()
    pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "home-bob"
    assert len(admit(*guard, pod, namespace(username='alice" || true || "'))) == 1


# --- the real thing: the adapter's pods in the hook's namespaces ------------------------------------------


def _hook_namespace(cfg: Any, ident: Any) -> dict[str, Any]:
    from ood_k8s.users import provision

    objs = provision.desired_objects(cfg, ident, now="2025-01-01T00:00:00Z", renderer=Renderer(None, validate=False))
    return next(o for o in objs if o["kind"] == "Namespace")


def _adapter_pod(cfg: Any, ident: Any, profile: str) -> dict[str, Any]:
    from ood_k8s.sessions import objects
    from ood_k8s.sessions.request import Script
    from ood_k8s.sessions.resolve import resolve

    script = Script.from_dict({"content": "jupyter lab", "job_name": "jupyter", "wall_time": 3600,
                               "native": ["--profile", profile]})
    return objects.pod(resolve(script, cfg, ident), "jupyter-0a1b2c3d")


@pytest.mark.parametrize("profile", ["cpu", "gpu-t4"])
@pytest.mark.parametrize("mode", ["efs", "nfs", "pvc", "hostpath", "none"])
def test_adapter_pods_pass_the_guard(make_config: Any, profile: str, mode: str) -> None:
    changes = {"storage.mode": mode, **({"users.pod_security": "privileged"} if mode == "hostpath" else {})}
    cfg = make_config(**changes)
    cfg.storage.extra_mounts = [ExtraMount(name="datasets", mount_path="/datasets", claim_name="datasets"),
                                ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch",
                                           read_only=False, sub_path="users/{user}")]
    guard = _policy(cfg)
    ns = _hook_namespace(cfg, ALICE)
    assert admit(*guard, _adapter_pod(cfg, ALICE, profile), ns) == []
    assert admit(*guard, _adapter_pod(cfg, BOB, profile), ns) != []


def test_the_hook_records_what_the_guard_reads(make_config: Any) -> None:
    """The hook's own Namespace (provision.desired_objects) through the CEL with the adapter's own pods:
    every id the guard reads is recorded, for each user, and one user's record admits no one else."""
    cfg = make_config(**{"storage.mode": "hostpath", "users.pod_security": "privileged"})
    guard = _policy(cfg)
    ann = _hook_namespace(cfg, ALICE)["metadata"]["annotations"]
    assert ann == {vocab.USERNAME_ANNOTATION: "alice", vocab.UID_ANNOTATION: "20001", vocab.GID_ANNOTATION: "20001",
                   vocab.GIDS_ANNOTATION: "30001,30002", vocab.HOME_ANNOTATION: "/home/alice",
                   "ood-k8s.io/last-hook-run": "2025-01-01T00:00:00Z",
                   vocab.PROFILES_ANNOTATION: "cpu,gpu-t4,gpu-a10g"}
    for ident in (ALICE, BOB):
        pod = _adapter_pod(cfg, ident, "gpu-t4")
        assert pod["spec"]["securityContext"]["supplementalGroups"] == list(ident.gids)  # the guard must see them
        assert admit(*guard, pod, _hook_namespace(cfg, ident)) == []
    alices = _hook_namespace(cfg, ALICE)
    bobs = _adapter_pod(cfg, BOB, "cpu")
    assert admit(*guard, bobs, alices) == [
        "pods in namespace ood-alice must run as uid 20001 (securityContext.runAsUser)",
        "pods in namespace ood-alice must run as gid 20001 (securityContext.runAsGroup and fsGroup)",
        f"{KINDS} and the hostPath of the user's home (namespace annotation ood-k8s.io/home)"]
    # a group Alice is not in (Bob's primary group) is refused by what the hook recorded
    pod = _adapter_pod(cfg, ALICE, "cpu")
    pod["spec"]["securityContext"]["supplementalGroups"].append(BOB.gid)
    assert admit(*guard, pod, alices) == ["supplementalGroups may only hold the user's own groups"]


def test_slug_names_claims_for_any_username(make_config: Any) -> None:
    """{user} in a claim name breaks on 'First.Last' (no uppercase in Kubernetes names); {slug} does not,
    and the guard computes the same name from the hook's namespace as the adapter puts in the pod."""
    import re

    from ood_k8s.core.identity import Identity

    first = Identity("First.Last", 20010, 20010, "/home/First.Last", ("First.Last", "students"), (30001,))
    cfg = make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "home-{slug}"})
    cfg.storage.extra_mounts = [ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch-{slug}",
                                           read_only=False, sub_path="users/{user}")]
    guard = _policy(cfg)
    pod = _adapter_pod(cfg, first, "cpu")
    slug = names.for_user("First.Last").slug
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [f"home-{slug}", f"scratch-{slug}"] and slug.startswith("first-last--")
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", c) for c in claims)
    assert admit(*guard, pod, _hook_namespace(cfg, first)) == []
    # Alice's claim in First.Last's namespace, and First.Last's pod in Alice's namespace, are refused
    alices = copy.deepcopy(pod)
    alices["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "home-alice"
    assert admit(*guard, alices, _hook_namespace(cfg, first)) == [
        "the only claims a session may mount are the home claim 'home-{slug}', 'scratch-{slug}'"]
    assert "the only claims a session may mount are the home claim 'home-{slug}', 'scratch-{slug}'" in \
        admit(*guard, pod, _hook_namespace(cfg, ALICE))

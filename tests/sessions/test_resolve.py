"""resolve: every refusal happens here, with one line naming the key; defaults come from the profile."""

from __future__ import annotations

import pytest

from ood_k8s.config import GpuConfig, Profile, Range
from ood_k8s.core.errors import NotEntitled, UsageError
from ood_k8s.sessions.request import Script
from ood_k8s.sessions.resolve import resolve
from tests.conftest import ALICE, BOB


def test_defaults_come_from_the_default_profile(make_config) -> None:
    spec = resolve(Script(content="echo hi\n", job_name="sys/dashboard/sys/jupyter"), make_config(), ALICE)
    assert (spec.profile, spec.cpu_request, spec.cpu_limit, spec.memory_request, spec.memory_limit, spec.gpus) == \
        ("cpu", "1", "1", "4Gi", "4Gi", 0)
    assert spec.walltime == 3600 and spec.namespace == "ood-alice" and spec.name_hint == "jupyter"
    assert spec.container.image == "quay.io/jupyter/scipy-notebook:2025-10-20"
    assert spec.container.working_dir == "/home/alice" and spec.script_mode
    assert spec.supplemental_groups == [30001, 30002] and spec.tolerations == [] and not spec.hold
    assert [f.filename for f in spec.files] == ["script.sh"] and spec.files[0].data == "echo hi\n"


def test_profile_is_chosen_by_native_then_queue_name_then_default(make_config) -> None:
    cfg = make_config()
    assert resolve(Script(native={"profile": "gpu-t4"}), cfg, ALICE).profile == "gpu-t4"
    assert resolve(Script(queue_name="gpu-t4"), cfg, ALICE).profile == "gpu-t4"
    assert resolve(Script(queue_name="batch"), cfg, ALICE).profile == "cpu"  # not a profile: just recorded
    assert resolve(Script(native=["--profile", "gpu-t4"]), cfg, ALICE).profile == "gpu-t4"


def test_gpu_profile_gets_gpu_toleration_node_pool_and_shm(make_config) -> None:
    spec = resolve(Script(native={"profile": "gpu-t4"}), make_config(), ALICE)
    assert spec.gpus == 1 and spec.gpu_resource == "nvidia.com/gpu" and spec.shm_size == "8Gi"
    assert spec.tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec.node_selector == {"karpenter.sh/nodepool": "gpu-t4"}


def test_whole_node_takes_the_profile_maxima(make_config) -> None:
    big = Profile(name="a100", image="img:1", cpu=Range("8", "92"), memory=Range("64Gi", "1000Gi"),
                  gpu=GpuConfig("nvidia.com/gpu", 8, 8), whole_node=True)
    cfg = make_config(profiles=[*make_config().profiles, big])
    spec = resolve(Script(native={"profile": "a100", "container": {"cpu": "2"}}), cfg, ALICE)
    assert (spec.cpu_request, spec.cpu_limit, spec.memory_request, spec.memory_limit, spec.gpus) == \
        ("92", "92", "1000Gi", "1000Gi", 8)


@pytest.mark.parametrize(("script", "error", "text"), [
    (Script(native={"profile": "nope"}), UsageError, "unknown profile 'nope': choose one of: cpu, gpu-t4, gpu-a10g"),
    (Script(native={"profile": "gpu-t4"}, gpus_per_node=2), NotEntitled, "2 GPUs is more than profile 'gpu-t4'"),
    (Script(gpus_per_node=1), NotEntitled, "profile 'cpu' has no GPUs but 1 were asked for: choose a GPU profile"),
    (Script(native={"container": {"cpu": "9"}}), NotEntitled, "9 CPUs is more than profile 'cpu' allows: ask for "
                                                             "at most 8 CPUs"),
    (Script(native={"container": {"memory": "64Gi"}}), NotEntitled, "ask for at most 32Gi"),
    (Script(native={"container": {"memory": "4GB"}}), UsageError, "use Kubernetes units such as 4Gi"),
    (Script(native={"container": {"memory": "4"}}), UsageError, "did you forget the unit"),
    (Script(native={"container": {"cpu": "lots"}}), UsageError, "expected a CPU amount"),
    (Script(native={"container": {"cpu_request": "2", "cpu_limit": "1"}}), UsageError, "CPU request 2 is above"),
    (Script(wall_time=9 * 3600), NotEntitled, "a wall time of 9h is longer than this site allows: ask for at "
                                              "most 8h"),
    (Script(native={"container": {"image": ""}}), UsageError, "native.container.image: missing"),
    (Script(native={"container": {"image": "bad image;rm"}}), UsageError, "expected an image reference"),
    (Script(native={"container": {"name": "Bad_Name"}}), UsageError, "native.container.name"),
    (Script(native={"container": {"port": 70000}}), UsageError, "native.container.port"),
    (Script(native={"container": {"env": {"BAD NAME": "x"}}}), UsageError, "environment variable names"),
    (Script(native={"container": {"restart_policy": "Sometimes"}}), UsageError, "restart_policy"),
    (Script(native={"container": {"supplemental_groups": [4242]}}), NotEntitled, "not a member of group 4242"),
    (Script(native={"container": {"labels": {"ood-k8s.io/user": "bob"}}}), UsageError, "label key outside"),
    (Script(native={"container": {"bogus": 1}}), UsageError, "native.container: unknown key 'bogus'"),
    (Script(native={"bogus": 1}), UsageError, "native: unknown key 'bogus'"),
    (Script(native={"mounts": [{"type": "host", "name": "h", "destination_path": "/h", "path": "/h"}]}),
     NotEntitled, "native.mounts[0]: host (hostPath) volumes are not allowed in sessions on this site: ask the "
                  "admin to provide /h through storage.extra_mounts"),
    (Script(native={"mounts": [{"type": "pvc", "name": "home", "destination_path": "/x", "claim_name": "c"}]}),
     UsageError, "'home' is already used"),
    (Script(native={"mounts": [{"type": "pvc", "name": "d", "destination_path": "/x/../etc", "claim_name": "c"}]}),
     UsageError, "an absolute path without '..'"),
    (Script(native={"mounts": [{"type": "smb", "name": "d", "destination_path": "/x"}]}), UsageError, "type"),
    (Script(native={"tolerations": [{"operator": "Equal", "value": "x"}]}), UsageError, "without a key"),
    (Script(native={"affinity": {"nodeSelector": {}}}), UsageError, "native.affinity: unknown key"),
    (Script(native={"configmap": {"files": [{"filename": "../x", "data": ""}]}}), UsageError, "a file name"),
    (Script(content="x" * (1024 * 1024)), UsageError, "more than a ConfigMap holds"),
    (Script(native={"init_containers": [{"name": "setup"}]}), UsageError, "an init container needs a command"),
    (Script(native={"gpu_type": "gpu"}), UsageError, "an extended resource name"),
    (Script(output_path="relative/out.log"), UsageError, "output_path"),
    (Script(native=["--frobnicate", "1"]), UsageError, "unknown job option '--frobnicate'"),
])
def test_bad_requests_are_refused_with_one_line(make_config, script: Script, error: type, text: str) -> None:
    with pytest.raises(error) as exc:
        resolve(script, make_config(), ALICE)
    assert text in str(exc.value) and "\n" not in str(exc.value)


def test_profile_groups_are_enforced(make_config) -> None:
    cfg = make_config()
    assert resolve(Script(native={"profile": "gpu-a10g"}), cfg, ALICE).profile == "gpu-a10g"
    with pytest.raises(NotEntitled, match="profile 'gpu-a10g' is reserved for members of gpu-users"):
        resolve(Script(native={"profile": "gpu-a10g"}), cfg, BOB)
    with pytest.raises(NotEntitled, match="choose a GPU profile \\(gpu-t4\\)"):
        resolve(Script(gpus_per_node=1), cfg, BOB)  # bob cannot use gpu-a10g, so it is not offered


def test_site_allowed_groups_and_min_uid(make_config) -> None:
    with pytest.raises(NotEntitled, match="not allowed to start sessions"):
        resolve(Script(), make_config(**{"users.allowed_groups": ["staff"]}), ALICE)
    with pytest.raises(NotEntitled, match=r"below users\.min_uid"):
        resolve(Script(), make_config(**{"users.min_uid": 50000}), ALICE)


def test_resources_from_script_fields_and_native(make_config) -> None:
    cfg = make_config()
    spec = resolve(Script(cores=2, memory=8 * 2**30, native={"profile": "gpu-a10g"}, gpus_per_node=2), cfg, ALICE)
    assert (spec.cpu_limit, spec.memory_limit, spec.gpus) == ("2", "8Gi", 2)
    spec = resolve(Script(cores=2, native={"container": {"cpu": "3", "memory_request": "2Gi", "memory": "6Gi"}}),
                   cfg, ALICE)
    assert (spec.cpu_request, spec.cpu_limit, spec.memory_request, spec.memory_limit) == ("3", "3", "2Gi", "6Gi")


def test_hold_comes_from_script_argument_or_token(make_config) -> None:
    cfg = make_config()
    assert resolve(Script(submit_as_hold=True), cfg, ALICE).hold
    assert resolve(Script(), cfg, ALICE, hold=True).hold
    assert resolve(Script(native=["--hold"]), cfg, ALICE).hold


NFS = {"type": "nfs", "name": "proj", "host": "nfs.example.edu", "path": "/export/proj", "destination_path": "/proj"}
HOST = {"type": "host", "name": "node", "path": "/scratch", "destination_path": "/scratch"}
CSI = {"type": "csi", "name": "efs", "driver": "efs.csi.aws.com", "volume_attributes": {"path": "/home/bob"},
       "destination_path": "/efs"}
UNGUARDED = {"cluster.kubernetes_version": "1.27"}  # no ValidatingAdmissionPolicy: only Pod Security applies


def test_without_the_guard_pod_security_levels_gate_nfs_and_host_mounts(make_config) -> None:
    for level, refused in (("restricted", (NFS, HOST)), ("baseline", (HOST,)), ("privileged", ())):
        cfg = make_config(**UNGUARDED, **{"users.pod_security": level})
        for mount in (NFS, HOST, CSI):
            if mount in refused:
                with pytest.raises(NotEntitled, match=f"^native.mounts\\[0\\]: '{mount['type']}' volumes are "
                                                      f"forbidden by the cluster's Pod Security level '{level}'"):
                    resolve(Script(native={"mounts": [mount]}), cfg, ALICE)
            else:
                assert resolve(Script(native={"mounts": [mount]}), cfg, ALICE).volumes[-1]["name"] == mount["name"]


def _guard_site(make_config, **changes):
    from ood_k8s.config import ExtraMount

    return make_config(**{"storage.extra_mounts": [
        ExtraMount(name="datasets", mount_path="/datasets", claim_name="datasets"),
        ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch", read_only=False,
                   sub_path="users/{user}"),
        ExtraMount(name="project", mount_path="/project", claim_name="project-{gid}", read_only=False),
    ], **changes})


def _pvc(claim: str, **extra) -> dict:
    return {"type": "pvc", "name": "extra", "claim_name": claim, "destination_path": "/mnt/extra", **extra}


ASK = "ask the admin to provide {} through storage.extra_mounts"


@pytest.mark.parametrize(("mount", "message"), [
    (NFS, "native.mounts[0]: NFS volumes are not allowed in sessions on this site: " + ASK.format("/proj")),
    (HOST, "native.mounts[0]: host (hostPath) volumes are not allowed in sessions on this site: "
           + ASK.format("/scratch")),
    ({**HOST, "path": "/home/alice"}, "native.mounts[0]: host (hostPath) volumes are not allowed in sessions on "
                                      "this site: " + ASK.format("/scratch")),
    (CSI, "native.mounts[0]: inline CSI volumes are not allowed in sessions on this site: " + ASK.format("/efs")),
    (_pvc("home-bob"), "native.mounts[0].claim_name: claim 'home-bob' is not one sessions may mount on this site: "
                       "use 'home', 'datasets', 'scratch', 'project-20001' or " + ASK.format("/mnt/extra")),
    (_pvc("project-20002"), "native.mounts[0].claim_name: claim 'project-20002' is not one sessions may mount"),
    (_pvc("datasets"), "native.mounts[0].read_only: claim 'datasets' may only be mounted read-only on this site: "
                       "set read_only: true"),
    (_pvc("scratch"), "native.mounts[0].sub_path: claim 'scratch' may only be mounted at sub-path 'users/alice': "
                      "set sub_path: users/alice"),
    (_pvc("scratch", sub_path="users/bob"), "native.mounts[0].sub_path: claim 'scratch' may only be mounted at "
                                            "sub-path 'users/alice'"),
])
@pytest.mark.parametrize("level", ["restricted", "privileged"])
def test_the_admission_guards_volume_rules_refuse_at_submit(make_config, mount, message, level) -> None:
    # Pod Security 'privileged' does not open what the guard refuses (nor would the API server).
    with pytest.raises(NotEntitled) as exc:
        resolve(Script(native={"mounts": [mount]}), _guard_site(make_config, **{"users.pod_security": level}), ALICE)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


@pytest.mark.parametrize("mount", [
    _pvc("home"), _pvc("datasets", read_only=True), _pvc("scratch", sub_path="users/alice"),
    _pvc("project-20001"),
    {"type": "empty_dir", "name": "tmp", "medium": "Memory", "size_limit": "1Gi", "destination_path": "/tmp"},
    {"type": "configmap", "name": "course", "configmap_name": "stat101", "destination_path": "/course"},
    {"type": "secret", "name": "keys", "secret_name": "api-keys", "destination_path": "/keys"},
])
def test_what_the_guard_allows_is_accepted(make_config, mount) -> None:
    spec = resolve(Script(native={"mounts": [mount]}), _guard_site(make_config), ALICE)
    assert spec.volumes[-1]["name"] == mount["name"]


SECRETS_STORE = {"type": "csi", "name": "vault", "driver": "secrets-store.csi.k8s.io", "read_only": True,
                 "volume_attributes": {"secretProviderClass": "course-keys"}, "destination_path": "/mnt/secrets"}


def test_inline_csi_is_accepted_only_for_the_sites_drivers(make_config) -> None:
    cfg = _guard_site(make_config, **{"jobs.csi_drivers": ["secrets-store.csi.k8s.io"]})
    assert resolve(Script(native={"mounts": [SECRETS_STORE]}), cfg, ALICE).volumes[-1] == {
        "name": "vault", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                                 "volumeAttributes": {"secretProviderClass": "course-keys"}}}
    with pytest.raises(NotEntitled) as exc:
        resolve(Script(native={"mounts": [CSI]}), cfg, ALICE)
    assert str(exc.value) == ("native.mounts[0].driver: inline CSI driver 'efs.csi.aws.com' is not allowed in "
                              "sessions on this site: use one of secrets-store.csi.k8s.io, or " + ASK.format("/efs"))
    with pytest.raises(NotEntitled, match="inline CSI volumes are not allowed"):  # the default: no driver
        resolve(Script(native={"mounts": [SECRETS_STORE]}), _guard_site(make_config), ALICE)


def test_claims_follow_the_storage_mode(make_config) -> None:
    cfg = make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "home-{user}-{uid}"})
    assert resolve(Script(native={"mounts": [_pvc("home-alice-20001")]}), cfg, ALICE).volumes[-1][
        "persistentVolumeClaim"] == {"claimName": "home-alice-20001"}
    with pytest.raises(NotEntitled, match="claim 'home' is not one sessions may mount on this site: use "
                                          "'home-alice-20001' or ask the admin"):
        resolve(Script(native={"mounts": [_pvc("home")]}), cfg, ALICE)
    with pytest.raises(NotEntitled) as exc:
        resolve(Script(native={"mounts": [_pvc("home")]}), make_config(**{"storage.mode": "none"}), ALICE)
    assert str(exc.value) == ("native.mounts[0].claim_name: claim 'home' is not one sessions may mount on this site: "
                              "ask the admin to provide /mnt/extra through storage.extra_mounts")


def test_claim_templates_resolve_as_for_the_sites_own_mounts(make_config) -> None:
    from ood_k8s.config import ExtraMount

    cfg = make_config(**{"storage.extra_mounts": [ExtraMount(name="data", mount_path="/data",
                                                             claim_name="data-{slug}-{uid}", read_only=False)]})
    assert resolve(Script(native={"mounts": [_pvc("data-alice-20001")]}), cfg, ALICE).volumes[-1][
        "persistentVolumeClaim"] == {"claimName": "data-alice-20001"}
    with pytest.raises(NotEntitled, match="claim 'data-bob-20002' is not one"):
        resolve(Script(native={"mounts": [_pvc("data-bob-20002")]}), cfg, ALICE)


def test_hostpath_homes_allow_a_host_mount_of_the_users_own_home_only(make_config) -> None:
    cfg = make_config(**{"storage.mode": "hostpath", "users.pod_security": "privileged"})
    own = {**HOST, "path": "/home/alice", "host_type": "Directory"}
    spec = resolve(Script(native={"mounts": [own]}), cfg, ALICE)
    assert spec.volumes[-1] == {"name": "node", "hostPath": {"path": "/home/alice", "type": "Directory"}}
    for path in ("/home/bob", "/home/alice/sub", "/"):
        with pytest.raises(NotEntitled, match="host \\(hostPath\\) volumes are not allowed"):
            resolve(Script(native={"mounts": [{**own, "path": path}]}), cfg, ALICE)


def test_resolve_does_not_mutate_its_inputs(make_config) -> None:
    native = {"container": {"env": {"A": "1"}, "labels": {"course": "cs101"}}, "node_selector": {"zone": "a"}}
    before = repr(native)
    cfg = make_config()
    profiles_before = repr(cfg.profiles)
    resolve(Script(native=native), cfg, ALICE)
    assert repr(native) == before and repr(cfg.profiles) == profiles_before


def test_env_order_and_override(make_config) -> None:
    cfg = make_config(**{"jobs.env": {"SITE": "1", "USER": "ignored-later"}})
    spec = resolve(Script(job_environment={"JOB": 2, "FLAG": True},
                          native={"container": {"env": {"USER": "override", "EMPTY": None}}}), cfg, ALICE)
    assert spec.container.env == [("USER", "override"), ("UID", "20001"), ("HOME", "/home/alice"),
                                  ("GROUP", "alice"), ("GID", "20001"), ("KUBECONFIG", "/dev/null"), ("SITE", "1"),
                                  ("JOB", "2"), ("FLAG", "true"), ("EMPTY", "")]


def test_hold_gate_constant_is_shared() -> None:
    from ood_k8s.core import vocab as jobspec  # the gate objects put on a held pod
    from ood_k8s.sessions import status

    assert jobspec.HOLD_GATE == status.HOLD_GATE == "ood-k8s.io/hold"

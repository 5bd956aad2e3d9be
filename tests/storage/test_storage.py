"""Home storage in every mode: pod volumes (whole dicts), the PV/PVC pair, EFS access points against
moto's server, NFS and site claims against the fake API, teardown and ``storage check``."""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest

from ood_k8s import cli
from ood_k8s.cloud.aws import efs
from ood_k8s.config import ExtraMount
from ood_k8s.core import names
from ood_k8s.core.errors import CloudError, ConfigError, RenderError, SecurityError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.render import schema
from ood_k8s.storage import backend as storage
from tests.conftest import ALICE, BOB, replace
from tests.hostile import assert_injection_proof

ALICE_NAMES = names.for_user("alice")
BOB_NAMES = names.for_user("bob")
LABELS = {"app.kubernetes.io/managed-by": "ood-k8s", "ood-k8s.io/user": "alice"}
ANNOTATIONS = {"ood-k8s.io/username": "alice"}
HOME_PVC = {
    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
    "metadata": {"name": "home", "namespace": "ood-alice", "labels": LABELS, "annotations": ANNOTATIONS},
    "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Filesystem", "storageClassName": "",
             "volumeName": "ood-alice-home", "resources": {"requests": {"storage": "100Gi"}}},
}


def home_pv(source: dict[str, Any], mount_options: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "ood-alice-home", "labels": LABELS, "annotations": ANNOTATIONS},
        "spec": {"capacity": {"storage": "100Gi"}, "volumeMode": "Filesystem", "accessModes": ["ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "", "mountOptions": mount_options,
                 "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "ood-alice",
                              "name": "home"},
                 **source},
    }


# --- pod side: whole-dict pins for each mode ------------------------------------------------------

EXTRA = [ExtraMount(name="datasets", mount_path="/datasets", claim_name="datasets", read_only=True),
         ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch-{user}", read_only=False,
                    sub_path="{user}")]
EXTRA_VOLUMES = [{"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": True}},
                 {"name": "scratch", "persistentVolumeClaim": {"claimName": "scratch-alice", "readOnly": False}}]
EXTRA_MOUNTS = [{"name": "datasets", "mountPath": "/datasets", "readOnly": True},
                {"name": "scratch", "mountPath": "/scratch", "readOnly": False, "subPath": "alice"}]
HOME_MOUNT = {"name": "home", "mountPath": "/home/alice"}


@pytest.mark.parametrize(("changes", "volumes", "mounts"), [
    ({"storage.mode": "efs"},
     [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}], [HOME_MOUNT]),
    ({"storage.mode": "nfs"},
     [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}], [HOME_MOUNT]),
    ({"storage.mode": "pvc", "storage.pvc.claim_name": "homes-{user}-{uid}"},
     [{"name": "home", "persistentVolumeClaim": {"claimName": "homes-alice-20001"}}], [HOME_MOUNT]),
    ({"storage.mode": "hostpath", "users.pod_security": "privileged"},
     [{"name": "home", "hostPath": {"path": "/home/alice", "type": "Directory"}}], [HOME_MOUNT]),
    ({"storage.mode": "none"}, [], []),
], ids=["efs", "nfs", "pvc", "hostpath", "none"])
def test_pod_volumes_per_mode(make_config, changes: dict[str, Any], volumes: list, mounts: list) -> None:
    cfg = make_config(**changes, **{"storage.extra_mounts": EXTRA})
    assert storage.pod_volumes(cfg, ALICE, ALICE_NAMES) == (volumes + EXTRA_VOLUMES, mounts + EXTRA_MOUNTS)


def test_hostpath_is_warned_about_loudly_every_time(make_config, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(**{"storage.mode": "hostpath", "users.pod_security": "privileged"})
    with caplog.at_level(logging.WARNING, logger="ood_k8s.storage.backend"):
        storage.pod_volumes(cfg, ALICE, ALICE_NAMES)
        storage.provision(cfg, ALICE, ALICE_NAMES, {})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "storage.mode is 'hostpath'" in warnings[0].getMessage()
    assert "/home/alice" in warnings[0].getMessage()


@pytest.mark.parametrize("level", ["restricted", "baseline"])
def test_hostpath_is_refused_without_privileged_pod_security(make_config, level: str) -> None:
    cfg = make_config(**{"storage.mode": "hostpath", "users.pod_security": level})
    with pytest.raises(ConfigError, match=r"users\.pod_security: privileged"):
        storage.pod_volumes(cfg, ALICE, ALICE_NAMES)
    with pytest.raises(ConfigError):
        storage.provision(cfg, ALICE, ALICE_NAMES, {})


def test_pod_volumes_refuse_odd_homes_and_bad_extra_mounts(make_config) -> None:
    cfg = make_config()
    for home in ("relative", "/home/../etc", "/"):
        with pytest.raises(SecurityError):
            storage.pod_volumes(cfg, replace(ALICE, home=home), ALICE_NAMES)
    clash = make_config(**{"storage.extra_mounts": [ExtraMount("home", "/x", "c")]})
    with pytest.raises(ConfigError, match="twice"):
        storage.pod_volumes(clash, ALICE, ALICE_NAMES)
    climb = make_config(**{"storage.extra_mounts": [ExtraMount("s", "/s", "c", sub_path="../{user}")]})
    with pytest.raises(ConfigError, match=r"without '\.\.'"):
        storage.pod_volumes(climb, ALICE, ALICE_NAMES)


# --- the PV/PVC pair: pure, strict, injection proof -------------------------------------------------


def test_efs_volume_objects_whole_dicts(make_config) -> None:
    cfg = make_config()
    objs = storage.volume_objects(cfg, ALICE, ALICE_NAMES, "fsap-0123456789abcdef0")
    assert objs == [home_pv({"csi": {"driver": "efs.csi.aws.com",
                                     "volumeHandle": "fs-0123456789abcdef0::fsap-0123456789abcdef0"}}, ["tls", "iam"]),
                    HOME_PVC]


def test_nfs_volume_objects_whole_dicts(make_config) -> None:
    cfg = make_config(**{"storage.mode": "nfs", "storage.nfs.server": "10.1.2.3",
                         "storage.nfs.path": "/export/homes/{user}"})
    assert storage.volume_objects(cfg, ALICE, ALICE_NAMES) == [
        home_pv({"nfs": {"server": "10.1.2.3", "path": "/export/homes/alice"}}, ["nfsvers=4.1", "hard"]), HOME_PVC]


@pytest.mark.parametrize("mode", ["pvc", "hostpath", "none"])
def test_other_modes_need_no_objects(make_config, mode: str) -> None:
    cfg = make_config(**{"storage.mode": mode, "users.pod_security": "privileged"})
    assert storage.volume_objects(cfg, ALICE, ALICE_NAMES) == []
    assert storage.provision(cfg, ALICE, ALICE_NAMES, {}) == storage.StorageResult()


@pytest.mark.parametrize("version", ["1.25", "1.33", "1.37"])
def test_objects_are_valid_for_every_supported_kubernetes(make_config, version: str) -> None:
    for mode in ("efs", "nfs"):
        cfg = make_config(**{"storage.mode": mode, "cluster.kubernetes_version": version})
        for obj in storage.volume_objects(cfg, ALICE, ALICE_NAMES, "fsap-0123456789abcdef0"):
            schema.validate(obj, version)


def test_a_site_template_with_a_typo_is_refused_strictly(make_config, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "storage").mkdir(parents=True)
    text = (Path(__file__).resolve().parents[2] / "templates" / "storage" / "nfs-pv.yaml.j2").read_text()
    (site / "storage" / "nfs-pv.yaml.j2").write_text(text.replace("persistentVolumeReclaimPolicy",
                                                                  "persistentVolumeReclaimPolicyy"))
    cfg = make_config(**{"storage.mode": "nfs", "templates.site_dir": str(site)})
    with pytest.raises(RenderError, match="PersistentVolume/ood-alice-home"):
        storage.volume_objects(cfg, ALICE, ALICE_NAMES)


def test_hashed_usernames_give_valid_names(make_config) -> None:
    ident = replace(ALICE, username="Alice.Smith@Example.EDU", home="/home/Alice.Smith@Example.EDU")
    n = names.for_user(ident.username)
    for mode in ("efs", "nfs"):
        objs = storage.volume_objects(make_config(**{"storage.mode": mode}), ident, n, "fsap-0123456789abcdef0")
        assert objs[0]["metadata"]["name"] == f"{n.namespace}-home"
        assert objs[0]["spec"]["claimRef"]["namespace"] == objs[1]["metadata"]["namespace"] == n.namespace


def test_slug_placeholder_gives_valid_names_for_any_username(make_config) -> None:
    """{user} keeps the username as it is (invalid in a claim name for 'First.Last'); {slug} is its DNS-label
    form, the one in the namespace name, with every other placeholder still there."""
    from ood_k8s.config import check_user_template

    first = Identity("First.Last", 20010, 20011, "/home/First.Last", ("First.Last",), (30001,))
    n = names.for_user("First.Last")
    assert n.slug.startswith("first-last--") and n.namespace == "ood-" + n.slug
    cfg = make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "home-{slug}"})
    cfg.storage.extra_mounts = [ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch-{slug}-{gid}",
                                           read_only=False, sub_path="{uid}/{user}")]
    assert storage.home_claim_name(cfg, first) == f"home-{n.slug}"
    assert storage.pod_volumes(cfg, first, n) == (
        [{"name": "home", "persistentVolumeClaim": {"claimName": f"home-{n.slug}"}},
         {"name": "scratch", "persistentVolumeClaim": {"claimName": f"scratch-{n.slug}-20011", "readOnly": False}}],
        [{"name": "home", "mountPath": "/home/First.Last"},
         {"name": "scratch", "mountPath": "/scratch", "readOnly": False, "subPath": "20010/First.Last"}])
    assert storage.fingerprint(cfg, first)["claim"] == f"home-{n.slug}"
    # the namespace prefix shortens the slug exactly as it does in the namespace name
    dev = make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "{slug}", "users.namespace_prefix": "x-"})
    assert storage.home_claim_name(dev, first) == names.for_user("First.Last", "x-").slug
    nfs = make_config(**{"storage.mode": "nfs", "storage.nfs.path": "/export/{slug}"})
    assert storage.of(nfs).volume_context(nfs, first, n)["path"] == f"/export/{n.slug}"
    # config accepts {slug} where it takes {user}, and still needs one of them
    assert check_user_template("home-{slug}") is None and check_user_template("home-{user}-{uid}") is None
    assert check_user_template("home-{uid}") == "a template containing {user} or {slug}"
    assert check_user_template("home-{slug}-{nope}") == "a template using only {user}, {slug}, {uid} and {gid}"


def test_storage_renders_with_the_process_wide_renderer(make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    from ood_k8s.render import render

    used: list[Any] = []
    real = render.for_config

    def spy(cfg: Any) -> Any:
        used.append(real(cfg))
        return used[-1]

    monkeypatch.setattr(render, "for_config", spy)
    cfg = make_config(**{"storage.mode": "nfs"})
    storage.volume_objects(cfg, ALICE, ALICE_NAMES)
    storage.volume_objects(cfg, BOB, BOB_NAMES)
    assert len(used) == 2 and used[0] is used[1] is real(cfg)


@pytest.mark.parametrize("template", ["storage/efs-pv.yaml.j2", "storage/nfs-pv.yaml.j2", "storage/home-pvc.yaml.j2"])
def test_templates_are_injection_proof(make_config, template: str) -> None:
    cfg = make_config(**{"storage.mode": "efs" if "efs" in template else "nfs"})
    ctx = storage.of(cfg).volume_context(cfg, ALICE, ALICE_NAMES, "fsap-0123456789abcdef0")
    assert_injection_proof(template, ctx)


@pytest.mark.parametrize("template", ["/home/{user}/../../etc", "home/{user}", "/home/{user} x", "/h//{user}"])
def test_bad_access_point_roots_are_refused(make_config, template: str) -> None:
    with pytest.raises(ConfigError, match="root_directory"):
        efs.spec(make_config(**{"storage.efs.root_directory": template}), ALICE)


def test_bad_nfs_paths_are_refused(make_config) -> None:
    cfg = make_config(**{"storage.mode": "nfs", "storage.nfs.path": "/export/{user}/../x"})
    with pytest.raises(ConfigError, match=r"storage\.nfs\.path"):
        storage.volume_objects(cfg, ALICE, ALICE_NAMES)


# --- fingerprint -------------------------------------------------------------------------------------


def test_fingerprint_changes_exactly_when_the_objects_must(make_config) -> None:
    base = make_config()
    fp = storage.fingerprint(base, ALICE)
    assert fp == storage.fingerprint(make_config(), ALICE)
    json.dumps(fp)  # the hook hashes it
    unrelated = make_config(**{"jobs.default_walltime": 60, "storage.skeleton_dir": "/etc/other-skel"})
    assert storage.fingerprint(unrelated, ALICE) == fp
    for change in ({"storage.efs.file_system_id": "fs-11111111"}, {"storage.efs.root_directory": "/u/{user}"},
                   {"storage.capacity": "5Gi"}, {"storage.efs.mount_options": []},
                   {"storage.mode": "nfs"}, {"users.namespace_prefix": "dev-"}):
        assert storage.fingerprint(make_config(**change), ALICE) != fp, change
    assert storage.fingerprint(base, replace(ALICE, uid=20009)) != fp
    assert storage.fingerprint(base, BOB) != fp
    nfs = make_config(**{"storage.mode": "nfs"})
    assert storage.fingerprint(make_config(**{"storage.mode": "nfs", "storage.nfs.server": "x"}), ALICE) != \
        storage.fingerprint(nfs, ALICE)


@pytest.mark.parametrize(("mode", "source"), [
    ("efs", {"file_system_id": "fs-0123456789abcdef0", "access_point_key": "c13686c1f26147f3",
             "mount_options": ["tls", "iam"]}),  # issue 11: iam mounts
    ("nfs", {"server": "nfs.example.edu", "path": "/export/home/alice", "mount_options": ["nfsvers=4.1", "hard"]}),
    ("pvc", {"claim": "home-alice"}), ("hostpath", {}), ("none", {})])
def test_fingerprints_whole(make_config, mode: str, source: dict[str, Any]) -> None:
    # The hook hashes these: any change re-provisions every user at their next login.
    fp = {"v": 1, "mode": mode, "user": "alice", "namespace_prefix": "ood-", **source}
    if mode in ("efs", "nfs"):
        fp.update(capacity="100Gi", kubernetes_version="1.33", site_templates="/etc/ood/config/ood_k8s/templates")
    assert storage.fingerprint(make_config(**{"storage.mode": mode}), ALICE) == fp


# --- EFS against moto's server ------------------------------------------------------------------------


@pytest.fixture
def efs_env(aws: str, make_config) -> tuple[Any, Any]:
    """(config pointing at a fresh moto file system, a boto3 EFS client counting its calls)."""
    client = boto3.client("efs", region_name="us-east-1", endpoint_url=aws)
    fs_id = client.create_file_system(CreationToken="homes")["FileSystemId"]
    cfg = make_config(**{"storage.efs.endpoint_url": aws, "storage.efs.file_system_id": fs_id})
    client.calls = []  # type: ignore[attr-defined]
    client.meta.events.register("before-call.efs", lambda model, **kw: client.calls.append(model.name))
    return cfg, client


def access_points(client: Any, fs_id: str) -> list[dict[str, Any]]:
    return client.describe_access_points(FileSystemId=fs_id)["AccessPoints"]


def test_first_login_creates_the_access_point_and_the_bound_pair(efs_env) -> None:
    cfg, client = efs_env
    fs_id = cfg.storage.efs.file_system_id
    result = storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    assert client.calls == ["DescribeAccessPoints", "CreateAccessPoint"]
    (ap,) = access_points(client, fs_id)
    want = efs.spec(cfg, ALICE)
    assert ap["PosixUser"] == {"Uid": 20001, "Gid": 20001, "SecondaryGids": [30001, 30002]}
    assert ap["RootDirectory"] == {"Path": "/home/alice",
                                   "CreationInfo": {"OwnerUid": 20001, "OwnerGid": 20001, "Permissions": "0700"}}
    assert ap["ClientToken"] == want.client_token and len(want.client_token) <= 64
    assert sorted((t["Key"], t["Value"]) for t in ap["Tags"]) == sorted([
        ("Name", "ood-home-alice"), ("app.kubernetes.io/managed-by", "ood-k8s"), ("ood-k8s.io/user", "alice"),
        ("ood-k8s.io/key", want.key)])
    ap_id = ap["AccessPointId"]
    assert result.annotations == {"ood-k8s.io/efs-access-point": ap_id, "ood-k8s.io/efs-access-point-key": want.key}
    assert result.objects == [home_pv({"csi": {"driver": "efs.csi.aws.com", "volumeHandle": f"{fs_id}::{ap_id}"}},
                                      ["tls", "iam"]), HOME_PVC]


def test_second_login_reuses_it_without_any_aws_call(efs_env, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, client = efs_env
    first = storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    client.calls.clear()
    # no client passed and none may be built: the remembered id is enough
    monkeypatch.setattr(efs, "client", lambda cfg: pytest.fail("AWS was called on the fast path"))
    again = storage.provision(cfg, ALICE, ALICE_NAMES, first.annotations)
    assert again == first
    assert client.calls == []


def test_lost_annotations_find_the_access_point_again(efs_env) -> None:
    cfg, client = efs_env
    first = storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    client.calls.clear()
    again = storage.provision(cfg, ALICE, ALICE_NAMES, {"unrelated": "x"}, cloud=client)
    assert again == first
    assert client.calls == ["DescribeAccessPoints"]
    assert len(access_points(client, cfg.storage.efs.file_system_id)) == 1


def test_stale_or_forged_annotations_are_not_trusted(efs_env) -> None:
    cfg, client = efs_env
    first = storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    for known in ({"ood-k8s.io/efs-access-point": "fsap-deadbeefdeadbeef0"},  # no key recorded
                  {**first.annotations, "ood-k8s.io/efs-access-point-key": "0" * 16},  # made for another spec
                  {**first.annotations, "ood-k8s.io/efs-access-point": "fsap-../../x"}):
        assert storage.provision(cfg, ALICE, ALICE_NAMES, known, cloud=client) == first


def test_users_get_separate_access_points_and_a_new_uid_gets_a_new_one(efs_env) -> None:
    cfg, client = efs_env
    a = storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    b = storage.provision(cfg, BOB, BOB_NAMES, {}, cloud=client)
    assert a.annotations["ood-k8s.io/efs-access-point"] != b.annotations["ood-k8s.io/efs-access-point"]
    moved = storage.provision(cfg, replace(ALICE, uid=20101), ALICE_NAMES, a.annotations,
                              cloud=client)
    assert moved.annotations["ood-k8s.io/efs-access-point"] not in (a.annotations["ood-k8s.io/efs-access-point"],
                                                                   b.annotations["ood-k8s.io/efs-access-point"])
    assert len(access_points(client, cfg.storage.efs.file_system_id)) == 3


def _canned(status: int, body: dict[str, Any]) -> Any:
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **kwargs: Any) -> Any:
            yield json.dumps(body).encode()

    return AWSResponse("https://efs", status, {"x-amzn-ErrorType": body["ErrorCode"],
                                               "Content-Type": "application/json"}, Raw())


def test_access_point_already_exists_uses_the_existing_one(efs_env, aws: str) -> None:
    """Real EFS answers a repeated ClientToken with AccessPointAlreadyExists (moto does not): emulate it
    exactly as a concurrent login would cause it, on top of moto."""
    cfg, client = efs_env
    other = boto3.client("efs", region_name="us-east-1", endpoint_url=aws)

    def concurrent_login_won(request: Any, **kwargs: Any) -> Any:
        made = other.create_access_point(**json.loads(request.body))  # the other login's identical request
        return _canned(409, {"ErrorCode": "AccessPointAlreadyExists", "Message": "exists",
                             "AccessPointId": made["AccessPointId"]})

    client.meta.events.register("before-send.efs.CreateAccessPoint", concurrent_login_won)
    result = storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    (ap,) = access_points(client, cfg.storage.efs.file_system_id)
    assert result.annotations["ood-k8s.io/efs-access-point"] == ap["AccessPointId"]


def test_aws_failures_are_one_line_cloud_errors(efs_env) -> None:
    cfg, client = efs_env
    client.meta.events.register("before-send.efs.DescribeAccessPoints", lambda request, **kw: _canned(
        403, {"ErrorCode": "AccessDeniedException", "Message": "not\nauthorized"}))
    with pytest.raises(CloudError) as err:
        storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    assert str(err.value) == ("EFS describe_access_points failed: AccessDeniedException: not authorized: grant the "
                              "portal's IAM role elasticfilesystem:CreateAccessPoint, DescribeAccessPoints, "
                              "DeleteAccessPoint and TagResource")


def test_efs_client_uses_the_configured_endpoint(efs_env) -> None:
    cfg, _ = efs_env
    made = efs.client(cfg)
    assert made.meta.endpoint_url == cfg.storage.efs.endpoint_url
    assert made.meta.region_name == "us-east-1"


def test_a_broken_site_template_fails_before_any_access_point_is_made(efs_env, tmp_path: Path) -> None:
    cfg, client = efs_env
    site = tmp_path / "site"
    (site / "storage").mkdir(parents=True)
    (site / "storage" / "home-pvc.yaml.j2").write_text("apiVersion: v1\nkind: PersistentVolumeClaim\nspec: 3\n")
    cfg = replace(cfg, templates=replace(cfg.templates, site_dir=str(site)))
    with pytest.raises(RenderError):
        storage.provision(cfg, ALICE, ALICE_NAMES, {}, cloud=client)
    assert client.calls == []


def test_bad_file_system_id_is_a_config_error(make_config) -> None:
    with pytest.raises(ConfigError, match="file_system_id"):
        storage.provision(make_config(**{"storage.efs.file_system_id": "fs-../x"}), ALICE, ALICE_NAMES, {})


# --- against the fake API: apply, bind, teardown, check ---------------------------------------------


@pytest.fixture
def kube(fake_kube) -> KubeClient:
    client = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
    return client


def apply_all(client: KubeClient, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        client.apply(copy.deepcopy(obj))


def bind(fake_kube: Any) -> None:
    """Play the PV controller: bind the pair the way kube-controller-manager would."""
    for plural, ns, name in (("persistentvolumes", None, "ood-alice-home"),
                             ("persistentvolumeclaims", "ood-alice", "home")):
        obj = fake_kube.get(plural, name, ns)
        obj["status"] = {"phase": "Bound"}
        fake_kube.seed(obj)


@pytest.fixture
def home(tmp_path: Path) -> Identity:
    root = tmp_path / "home"
    root.mkdir()
    h = root / "alice"
    h.mkdir(mode=0o700)
    os.chown(h, ALICE.uid, ALICE.gid)
    return replace(ALICE, home=str(h))


def test_nfs_pair_applies_binds_by_claim_ref_and_reapplies_idempotently(make_config, kube, fake_kube) -> None:
    cfg = make_config(**{"storage.mode": "nfs"})
    result = storage.provision(cfg, ALICE, ALICE_NAMES, {})
    assert result.annotations == {}
    apply_all(kube, result.objects)
    pv = fake_kube.get("persistentvolumes", "ood-alice-home")
    assert pv["spec"]["claimRef"] == {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "ood-alice",
                                      "name": "home"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert fake_kube.get("persistentvolumeclaims", "home", "ood-alice")["spec"]["volumeName"] == "ood-alice-home"
    version = pv["metadata"]["resourceVersion"]
    apply_all(kube, storage.provision(cfg, ALICE, ALICE_NAMES, {}).objects)
    assert fake_kube.get("persistentvolumes", "ood-alice-home")["metadata"]["resourceVersion"] == version


def test_check_nfs_all_ok_then_mismatches_with_fixes(make_config, kube, fake_kube, home: Identity) -> None:
    cfg = make_config(**{"storage.mode": "nfs", "storage.home_root": os.path.dirname(home.home)})
    apply_all(kube, storage.provision(cfg, home, ALICE_NAMES, {}).objects)
    bind(fake_kube)
    findings = storage.check(cfg, home, ALICE_NAMES, kube)
    assert [(f.what, f.status) for f in findings] == [
        ("home directory", "ok"), ("session identity", "ok"), ("PersistentVolume", "ok"),
        ("PersistentVolumeClaim", "ok")]
    assert findings[0].portal == f"{home.home}: 20001:20001 0700 directory"
    assert findings[1].pod == "runAsUser 20001, runAsGroup 20001, supplementalGroups 30001,30002"
    assert findings[2].pod == ("ood-alice-home: nfs nfs.example.edu:/export/home/alice, claimRef ood-alice/home, "
                               "Retain, Bound")
    # the portal's home now belongs to bob, and the server moved: both reported with their fix
    os.chown(home.home, BOB.uid, BOB.gid)
    moved = make_config(**{"storage.mode": "nfs", "storage.nfs.server": "nfs2.example.edu",
                           "storage.home_root": os.path.dirname(home.home)})
    findings = storage.check(moved, home, ALICE_NAMES, kube)
    assert findings[0].status == "error"
    assert findings[0].fix == (f"the pod writes as uid 20001: chown 20001:20001 {home.home} if it is the user's "
                               "(ood-k8s never chowns an existing home)")
    assert findings[2].status == "error" and "expected nfs nfs2.example.edu:/export/home/alice" in findings[2].fix


def test_check_reports_missing_pieces_as_next_login(make_config, kube, tmp_path: Path) -> None:
    ident = replace(ALICE, home=str(tmp_path / "alice"))
    cfg = make_config(**{"storage.mode": "nfs", "storage.home_root": str(tmp_path)})
    findings = storage.check(cfg, ident, ALICE_NAMES, kube)
    assert [(f.what, f.status) for f in findings] == [
        ("home directory", "warn"), ("session identity", "ok"), ("PersistentVolume", "warn"),
        ("PersistentVolumeClaim", "warn")]
    outside = make_config(**{"storage.mode": "nfs", "storage.home_root": "/elsewhere"})
    assert storage.check(outside, ident, ALICE_NAMES, kube)[0].fix == \
        f"create it: install -d -o 20001 -g 20001 -m 0700 {ident.home}"


def test_pvc_mode_checks_the_site_claim(make_config, kube, fake_kube, home: Identity) -> None:
    cfg = make_config(**{"storage.mode": "pvc", "storage.pvc.claim_name": "home-{user}"})
    assert storage.provision(cfg, home, ALICE_NAMES, {}).objects == ()
    (claim,) = [f for f in storage.check(cfg, home, ALICE_NAMES, kube) if f.what == "PersistentVolumeClaim"]
    assert (claim.status, claim.fix) == ("error", "storage.mode pvc uses claims the site creates: create home-alice "
                                                  "in ood-alice")
    kube.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "home-alice", "namespace": "ood-alice"},
                 "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}})
    (claim,) = [f for f in storage.check(cfg, home, ALICE_NAMES, kube) if f.what == "PersistentVolumeClaim"]
    assert claim.status == "warn"  # Pending until the site's provisioner binds it
    obj = fake_kube.get("persistentvolumeclaims", "home-alice", "ood-alice")
    obj["status"] = {"phase": "Bound"}
    obj["spec"]["volumeName"] = "site-pv-1"
    fake_kube.seed(obj)
    (claim,) = [f for f in storage.check(cfg, home, ALICE_NAMES, kube) if f.what == "PersistentVolumeClaim"]
    assert (claim.status, claim.pod) == ("ok", "ood-alice/home-alice: volume site-pv-1, Bound")
    assert storage.teardown(cfg, home, ALICE_NAMES, kube, delete_data=True) == [
        "kept PersistentVolumeClaim ood-alice/home-alice: it is the site's"]
    assert fake_kube.get("persistentvolumeclaims", "home-alice", "ood-alice") is not None


def test_efs_end_to_end_check_and_teardown(efs_env, kube, fake_kube, home: Identity, make_config) -> None:
    cfg, client = efs_env
    cfg = replace(cfg, storage=replace(cfg.storage, home_root=os.path.dirname(home.home)))
    fs_id = cfg.storage.efs.file_system_id
    result = storage.provision(cfg, home, ALICE_NAMES, {}, cloud=client)
    ap_id = result.annotations["ood-k8s.io/efs-access-point"]
    kube.patch("Namespace", "ood-alice", {"metadata": {"annotations": result.annotations}})
    apply_all(kube, result.objects)
    bind(fake_kube)
    client.calls.clear()
    findings = storage.check(cfg, home, ALICE_NAMES, kube, cloud=client)
    assert client.calls == ["DescribeAccessPoints"]  # by the remembered id
    assert [(f.what, f.status) for f in findings] == [
        ("home directory", "ok"), ("session identity", "ok"), ("EFS access point", "ok"),
        ("PersistentVolume", "ok"), ("PersistentVolumeClaim", "ok")]
    assert findings[2].pod == (f"{ap_id}: writes as 20001:20001 +[30001,30002], root /home/alice "
                               "(created 20001:20001 0700)")
    # alice joined a group since: reported, with how to apply it
    joined = replace(home, gids=(30001, 30002, 30003))
    finding = storage.check(cfg, joined, ALICE_NAMES, kube, cloud=client)[2]
    assert finding.status == "warn" and finding.fix.startswith("groups changed since it was made (now "
                                                               "[30001,30002,30003])")

    assert storage.teardown(cfg, home, ALICE_NAMES, kube, delete_data=False, cloud=client) == [
        "deleted PersistentVolumeClaim ood-alice/home",
        "deleted PersistentVolume ood-alice-home (reclaim policy Retain: the data stays on the file system)",
        f"kept the EFS access point of alice on {fs_id} (removed only when deleting data)"]
    assert fake_kube.get("persistentvolumes", "ood-alice-home") is None
    assert len(access_points(client, fs_id)) == 1
    assert storage.teardown(cfg, home, ALICE_NAMES, kube, delete_data=True, cloud=client) == [
        "no PersistentVolumeClaim ood-alice/home", "no PersistentVolume ood-alice-home",
        f"deleted EFS access point {ap_id} (its data stays on {fs_id} under /home/alice; remove it there if it "
        "must go)"]
    assert access_points(client, fs_id) == []
    assert os.path.isdir(home.home)  # nothing on the portal is touched either
    # the remembered id is forgotten with it, so the next login makes a new access point
    assert "ood-k8s.io/efs-access-point" not in (fake_kube.get("namespaces", "ood-alice")["metadata"].get(
        "annotations") or {})


def test_check_reports_a_remembered_access_point_that_is_gone(efs_env, kube, home: Identity) -> None:
    cfg, client = efs_env
    result = storage.provision(cfg, home, ALICE_NAMES, {}, cloud=client)
    kube.patch("Namespace", "ood-alice", {"metadata": {"annotations": result.annotations}})
    client.delete_access_point(AccessPointId=result.annotations["ood-k8s.io/efs-access-point"])
    finding = storage.check(cfg, home, ALICE_NAMES, kube, cloud=client)[2]
    assert finding.status == "error"
    assert finding.fix == ("kubectl annotate namespace ood-alice ood-k8s.io/efs-access-point- "
                           "ood-k8s.io/efs-access-point-key-, then provision the user again (a new one is made)")


def test_efs_check_without_cluster_finds_the_access_point_by_tags(efs_env, home: Identity) -> None:
    cfg, client = efs_env
    storage.provision(cfg, BOB, BOB_NAMES, {}, cloud=client)
    assert storage.check(cfg, home, ALICE_NAMES, None, cloud=client)[2].status == "warn"  # none for alice yet
    storage.provision(cfg, home, ALICE_NAMES, {}, cloud=client)
    findings = storage.check(cfg, home, ALICE_NAMES, None, cloud=client)
    assert findings[2].status == "ok"
    assert (findings[3].what, findings[3].status) == ("home volume", "info")
    # the directory service now gives alice another uid: the old access point would write as the wrong one
    renumbered = storage.check(cfg, replace(home, uid=20101), ALICE_NAMES, None, cloud=client)[2]
    assert renumbered.status == "error"
    assert renumbered.fix.startswith("every write goes out as the wrong uid/gid: delete access point fsap-")


def test_nfs_teardown_keeps_the_data(make_config, kube, fake_kube) -> None:
    cfg = make_config(**{"storage.mode": "nfs"})
    apply_all(kube, storage.provision(cfg, ALICE, ALICE_NAMES, {}).objects)
    assert storage.teardown(cfg, ALICE, ALICE_NAMES, kube, delete_data=True) == [
        "deleted PersistentVolumeClaim ood-alice/home",
        "deleted PersistentVolume ood-alice-home (reclaim policy Retain: the data stays on the file system)",
        "kept the data under nfs.example.edu:/export/home/alice: ood-k8s never deletes a home's contents; remove "
        "it on the NFS server if it must go"]


# --- ood-k8s storage check ----------------------------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_env(tmp_path: Path, home: Identity, fake_kube, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    from ood_k8s.core import identity

    monkeypatch.setattr(identity, "lookup", lambda user: home if user == "alice" else identity.Identity(
        user, 20002, 20002, "/nonexistent/bob"))
    kubeconfig = fake_kube.write_kubeconfig(str(tmp_path / "provisioner.kubeconfig"))

    def write(**storage_cfg: Any) -> str:
        path = tmp_path / "ood_k8s.yml"
        path.write_text(json.dumps({"cluster": {"provisioner_kubeconfig": kubeconfig},
                                    "storage": {"home_root": os.path.dirname(home.home), **storage_cfg}}))
        return str(path)

    return write


def test_cli_check_table(cli_env, kube, fake_kube, capsys: pytest.CaptureFixture[str], make_config) -> None:
    path = cli_env(mode="nfs")
    apply_all(kube, storage.provision(make_config(**{"storage.mode": "nfs"}), ALICE, ALICE_NAMES, {}).objects)
    bind(fake_kube)
    code, out, err = run_cli(["--config", path, "storage", "check", "alice"], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["WHAT", "PORTAL", "SEES", "SESSION", "GETS", "STATUS"]
    assert [line.rsplit(None, 1)[-1] for line in lines[1:]] == ["ok"] * 4
    column = lines[0].index("SESSION GETS")  # every row's session column starts under its header
    assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines[1:])


def test_cli_check_json_and_exit_code_on_mismatch(cli_env, capsys: pytest.CaptureFixture[str], home: Identity) -> None:
    os.chown(home.home, 0, 0)
    code, out, err = run_cli(["--config", cli_env(mode="pvc"), "storage", "check", "alice", "--output", "json"],
                             capsys)
    assert code == 1 and err == ""
    data = json.loads(out)
    assert (data["user"], data["mode"], data["ok"]) == ("alice", "pvc", False)
    assert [(f["what"], f["status"]) for f in data["findings"]] == [
        ("home directory", "error"), ("session identity", "ok"), ("PersistentVolumeClaim", "error")]
    assert set(data["findings"][0]) == {"what", "portal", "pod", "status", "fix"}


def test_cli_check_without_cluster_access_still_reports(cli_env, capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    path = tmp_path / "cfg.yml"
    path.write_text(Path(cli_env(mode="nfs")).read_text().replace("provisioner.kubeconfig", "missing.kubeconfig"))
    code, out, _ = run_cli(["--config", str(path), "storage", "check", "alice", "-o", "json"], capsys)
    assert code == 0
    findings = json.loads(out)["findings"]
    assert findings[-1]["what"] == "cluster" and findings[-1]["status"] == "info"
    assert "\n" not in findings[-1]["fix"]


def test_cli_check_refuses_bad_usernames(cli_env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["--config", cli_env(), "storage", "check", "../root"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("ood-k8s: username '../root' is not a valid portal username") and err.count("\n") == 1


def test_cli_table_escapes_control_characters() -> None:
    from ood_k8s.cli.storage import format_table

    text = format_table([storage.Finding("home directory", "/home/\x1b[31mx", "p", "error", "fix\x07it")])
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[31mx" in text


def test_cli_check_through_real_nss(nss_env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "cfg.yml"
    cfg.write_text(json.dumps({"storage": {"mode": "nfs", "home_root": str(tmp_path / "no-homes")}}))
    res = subprocess.run([sys.executable, "-m", "ood_k8s", "--config", str(cfg), "storage", "check", "alice",
                          "--no-cluster", "-o", "json"], env=nss_env, capture_output=True, text=True, timeout=60,
                         check=False)
    data = json.loads(res.stdout)
    # the identity is the one NSS gives (this machine's /home/alice may or may not exist: not asserted)
    assert data["findings"][1]["portal"] == "alice: uid 20001, gid 20001, groups 30001,30002"
    assert data["findings"][0]["portal"].startswith("/home/alice: ")
    assert data["findings"][2]["status"] == "info"
    assert res.returncode == (1 if any(f["status"] == "error" for f in data["findings"]) else 0), res.stderr

"""The cluster side of a user (ood_k8s.users.provision): desired objects, hash, fast path, convergence."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from ood_k8s.core.errors import NotEntitled, RenderError, SecurityError, Unavailable, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import RESOURCES, KubeClient
from ood_k8s.storage.backend import StorageResult
from ood_k8s.users import provision
from tests.conftest import ALICE, BOB, replace

NOW = "2025-03-01T12:00:00Z"
LABELS = {"app.kubernetes.io/managed-by": "ood-k8s", "ood-k8s.io/user": "alice", "ood-k8s.io/component": "user"}


class FakeStorage:
    """Stands in for ood_k8s.storage.backend: records calls, returns a PV and a claim."""

    def __init__(self, mode: str = "efs") -> None:
        self.mode = mode
        self.calls: list[str] = []
        self.torn_down: list[Identity] = []

    def fingerprint(self, cfg: Any, ident: Identity) -> dict[str, Any]:
        return {"mode": self.mode, "user": ident.username}

    def ensure_home(self, cfg: Any, ident: Identity) -> bool:
        self.calls.append("ensure_home")
        return False

    def provision(self, cfg: Any, ident: Identity, names: Any, known: Any) -> StorageResult:
        self.calls.append(f"provision known={known.get('ood-k8s.io/efs-access-point', '')}")
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": f"ood-home-{names.slug}", "labels": names.labels},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                       "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                       "csi": {"driver": "efs.csi.aws.com", "volumeHandle": "fs-1::fsap-1"}}}
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "home", "namespace": names.namespace, "labels": names.labels},
               "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": pv["metadata"]["name"],
                        "resources": {"requests": {"storage": "1Gi"}}}}
        return StorageResult([pv, pvc], {"ood-k8s.io/efs-access-point": "fsap-1"})

    def plan(self, cfg: Any, ident: Identity, names: Any, known: Any) -> tuple[list[dict[str, Any]], list[str]]:
        result = self.provision(cfg, ident, names, known)
        self.calls.pop()
        return result.objects, ["storage: a plan note"]

    def teardown(self, cfg: Any, ident: Identity, names: Any, client: Any, delete_data: bool) -> list[str]:
        self.calls.append(f"teardown uid={ident.uid} delete_data={delete_data}")
        self.torn_down.append(ident)
        return ["storage released"]


class FakeCognito:
    title = "Cognito"  # an identity provider standing in for mode cognito's
    manages_users = True

    def __init__(self) -> None:
        self.calls: list[str] = []

    def ensure_user(self, cfg: Any, ident: Identity, dry_run: bool = False) -> list[str]:
        self.calls.append(f"ensure_user {ident.username} dry_run={dry_run}")
        return [f"created Cognito user {ident.username}"]

    def delete_user(self, cfg: Any, username: str) -> bool:
        self.calls.append(f"delete_user {username}")
        return True


@pytest.fixture
def client(fake_kube: Any) -> KubeClient:
    return KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)


def ensure(cfg: Any, client: KubeClient, ident: Identity = ALICE, **kw: Any) -> provision.Outcome:
    kw.setdefault("storage", FakeStorage())
    kw["providers"] = {"cognito": kw.pop("cognito", None) or FakeCognito()}
    return provision.ensure(cfg, ident, client, now=kw.pop("now", NOW), **kw)


def writes(fk: Any) -> list[str]:
    return [f"{r.method} {r.path}" for r in fk.requests if r.method != "GET" and "dryRun" not in (r.query or "")]


# --- against the API --------------------------------------------------------------------------------


def test_first_login_provisions_everything_and_writes_the_hash_last(cfg: Any, client: KubeClient,
                                                                    fake_kube: Any) -> None:
    cfg = replace(cfg, users=replace(cfg.users, image_pull_secret=replace(
        cfg.users.image_pull_secret, name="regcred", dockerconfigjson="{}")))
    storage, cognito = FakeStorage(), FakeCognito()
    out = ensure(cfg, client, storage=storage, cognito=cognito)
    assert out.action == "created" and out.changed
    assert out.round_trips <= 12, out.round_trips
    assert cognito.calls == ["ensure_user alice dry_run=False"]
    assert storage.calls == ["ensure_home", "provision known="]
    for obj in provision.desired_objects(cfg, ALICE, now=NOW):
        stored = fake_kube.get(RESOURCES[obj["kind"]].plural, obj["metadata"]["name"],
                               obj["metadata"].get("namespace"))
        assert stored is not None, provision._ref(obj)
        for key in ("spec", "data", "roleRef", "subjects", "type"):
            assert stored.get(key) == obj.get(key) or key not in obj, (provision._ref(obj), key)
        assert obj["metadata"]["labels"].items() <= stored["metadata"]["labels"].items()
    assert fake_kube.get("persistentvolumeclaims", "home", "ood-alice") is not None
    assert fake_kube.get("persistentvolumes", "ood-home-alice") is not None
    ann = fake_kube.get("namespaces", "ood-alice")["metadata"]["annotations"]
    assert ann["ood-k8s.io/desired-state"] == provision.desired_hash(cfg, ALICE, FakeStorage().fingerprint(cfg, ALICE))
    assert ann["ood-k8s.io/efs-access-point"] == "fsap-1"
    assert ann["ood-k8s.io/last-hook-run"] == NOW
    last = fake_kube.requests[-1]
    assert (last.method, last.path) == ("PATCH", "/api/v1/namespaces/ood-alice")
    assert "desired-state" in last.body.decode()
    # every write used server-side apply under our field manager, or a patch of the namespace
    managers = {m["manager"] for m in fake_kube.get("resourcequotas", "ood-k8s-quota", "ood-alice")["metadata"]
                ["managedFields"]}
    assert managers == {"ood-k8s"}


def test_second_login_is_one_request_and_calls_nothing_else(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    ensure(cfg, client)
    fake_kube.reset_requests()
    storage, cognito = FakeStorage(), FakeCognito()
    out = ensure(cfg, client, storage=storage, cognito=cognito, now="2025-03-02T08:00:00Z")
    assert (out.action, out.round_trips, out.changes, out.changed) == ("current", 1, (), False)
    assert len(fake_kube.requests) == 1
    req = fake_kube.requests[0]
    assert (req.method, req.path) == ("PATCH", "/api/v1/namespaces/ood-alice")
    assert req.headers.get("content-type") == "application/json-patch+json"
    assert cognito.calls == [] and storage.calls == []
    assert fake_kube.get("namespaces", "ood-alice")["metadata"]["annotations"]["ood-k8s.io/last-hook-run"] == \
        "2025-03-02T08:00:00Z"


def test_api_failing_half_way_then_a_rerun_converges(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    fake_kube.inject(status=500, retry_after=None, count=100, path_contains="/networkpolicies/")
    with pytest.raises(Unavailable):
        ensure(cfg, client)
    ns = fake_kube.get("namespaces", "ood-alice")
    assert ns is not None and "ood-k8s.io/desired-state" not in ns["metadata"]["annotations"]
    assert fake_kube.get("rolebindings", "ood-k8s-user", "ood-alice") is None  # access only when all is in place
    fake_kube._injections.clear()
    out = ensure(cfg, client)
    assert out.action == "updated"
    assert fake_kube.get("networkpolicies", "ood-k8s-egress", "ood-alice") is not None
    assert fake_kube.get("rolebindings", "ood-k8s-user", "ood-alice") is not None
    assert ensure(cfg, client).action == "current"


def test_dropped_connections_are_retried(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    fake_kube.inject(drop=True, count=2, path_contains="/resourcequotas/")
    fake_kube.inject(status=429, retry_after=1, count=1, path_contains="/limitranges/")
    assert ensure(cfg, client).action == "created"
    assert ensure(cfg, client).action == "current"


def test_a_config_change_updates_and_prunes(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    with_secret = replace(cfg, users=replace(cfg.users, image_pull_secret=replace(
        cfg.users.image_pull_secret, name="regcred", dockerconfigjson="{}")))
    ensure(with_secret, client)
    assert fake_kube.get("secrets", "regcred", "ood-alice") is not None
    changed = replace(cfg, users=replace(cfg.users, cluster_role="ood-student",
                                                                  quota=replace(cfg.users.quota, pods=9)))
    out = ensure(changed, client)
    assert out.action == "updated"
    assert "deleted Secret/regcred" in out.changes
    assert fake_kube.get("secrets", "regcred", "ood-alice") is None
    assert fake_kube.get("resourcequotas", "ood-k8s-quota", "ood-alice")["spec"]["hard"]["pods"] == "9"
    assert fake_kube.get("rolebindings", "ood-k8s-user", "ood-alice")["roleRef"]["name"] == "ood-student"
    assert ensure(changed, client).action == "current"


def test_new_groups_reprovision(cfg: Any, client: KubeClient) -> None:
    ensure(cfg, client)
    cognito = FakeCognito()
    out = ensure(cfg, client, ALICE._replace(groups=("alice", "students")),
                 cognito=cognito)
    assert out.action == "updated" and cognito.calls == ["ensure_user alice dry_run=False"]


def test_oidc_mode_never_calls_cognito(cfg: Any, client: KubeClient) -> None:
    cfg = replace(cfg, auth=replace(cfg.auth, mode="oidc"))
    cognito = FakeCognito()
    assert ensure(cfg, client, cognito=cognito).action == "created"
    assert cognito.calls == []


def test_a_broken_template_changes_nothing(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    site = Path(cfg.templates.site_dir, "user")
    site.mkdir(parents=True)
    (site / "resourcequota.yaml.j2").write_text("apiVersion: v1\nkind: ResourceQuota\nmetadata: {{ nope }}\n")
    cognito = FakeCognito()
    with pytest.raises(RenderError):
        ensure(cfg, client, cognito=cognito)
    assert fake_kube.get("namespaces", "ood-alice") is None and cognito.calls == []


def test_a_foreign_namespace_is_refused_and_left_alone(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    fake_kube.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
    before = fake_kube.get("namespaces", "ood-alice")
    with pytest.raises(SecurityError, match="not made by ood-k8s"):
        ensure(cfg, client)
    assert fake_kube.get("namespaces", "ood-alice")["metadata"] == before["metadata"]
    assert fake_kube.get("resourcequotas", "ood-k8s-quota", "ood-alice") is None


def test_another_users_namespace_is_refused(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    fake_kube.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "ood-alice", "labels": LABELS, "annotations": {"ood-k8s.io/username": "mallory"}}})
    with pytest.raises(SecurityError, match="belongs to user 'mallory'"):
        ensure(cfg, client)
    assert "ood-k8s.io/last-hook-run" not in fake_kube.get("namespaces", "ood-alice")["metadata"]["annotations"]


def test_a_terminating_namespace_is_not_current(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    ensure(cfg, client)
    client.delete("Namespace", "ood-alice")
    with pytest.raises(Unavailable, match="being deleted"):
        ensure(cfg, client)
    fake_kube.finish_deletion("namespaces", None, "ood-alice")
    assert ensure(cfg, client).action == "created"


def test_concurrent_hooks_for_one_user_do_not_interleave(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    fake_kube.latency = 0.002
    barrier = threading.Barrier(3)
    results: list[Any] = []

    def hook() -> None:
        barrier.wait()
        with provision.user_lock(cfg, "alice"):
            results.append(ensure(cfg, client))

    threads = [threading.Thread(target=hook) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.action for r in results) == ["created", "current", "current"]
    assert [r.round_trips for r in results if r.action == "current"] == [1, 1]


def test_different_users_provision_in_parallel(cfg: Any, client: KubeClient) -> None:
    results: list[Any] = []
    threads = [threading.Thread(target=lambda i=i: results.append(ensure(cfg, client, i))) for i in (ALICE, BOB)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted((r.username, r.action) for r in results) == [("alice", "created"), ("bob", "created")]


# --- dry run ----------------------------------------------------------------------------------------


def test_dry_run_on_a_new_user_lists_creations_and_writes_nothing(cfg: Any, client: KubeClient,
                                                                   fake_kube: Any) -> None:
    cognito = FakeCognito()
    out = ensure(cfg, client, dry_run=True, cognito=cognito)
    assert out.action == "would-create" and not out.changed
    assert out.changes == ["Cognito: created Cognito user alice", "storage: a plan note",
                           "create Namespace/ood-alice", "create LimitRange/ood-k8s-limits",
                           "create NetworkPolicy/ood-k8s-ingress", "create NetworkPolicy/ood-k8s-egress",
                           "create ResourceQuota/ood-k8s-quota", "create RoleBinding/ood-k8s-user",
                           "create PersistentVolume/ood-home-alice", "create PersistentVolumeClaim/home"]
    assert cognito.calls == ["ensure_user alice dry_run=True"]
    assert writes(fake_kube) == []


def test_dry_run_shows_the_home_storage_without_calling_aws(cfg: Any, client: KubeClient, fake_kube: Any,
                                                           tmp_path: Path) -> None:
    from ood_k8s.cloud.aws import efs
    from ood_k8s.storage import backend as storage

    home = ALICE._replace(home=str(tmp_path / "alice"))
    out = provision.ensure(cfg, home, client, now=NOW, dry_run=True, providers={"cognito": FakeCognito()})
    assert out.changes[1:3] == [
        f"create home directory {home.home} (0700, 20001:20001)",
        "find or create the EFS access point of alice on fs-0123456789abcdef0 (root /home/alice, uid 20001, "
        "gid 20001) and the PersistentVolume ood-alice-home naming it"]
    assert out.changes[-1] == "create PersistentVolumeClaim/home" and not (tmp_path / "alice").exists()

    # A remembered access point: the volume is known, and compared with what the cluster has.
    names = provision.user_names(cfg, "alice")
    known = efs.annotations("fsap-0123456789abcdef0", efs.spec(cfg, home))
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": names.namespace,
                   "labels": names.labels, "annotations": {**names.annotations, **known}}})
    for obj in storage.volume_objects(cfg, home, names, "fsap-0123456789abcdef0"):
        client.apply(obj)
    fake_kube.reset_requests()
    out = provision.ensure(cfg, home, client, now=NOW, dry_run=True, providers={"cognito": FakeCognito()})
    assert not [c for c in out.changes if "Persistent" in c or "access point" in c], out.changes
    bigger = replace(cfg, **{"storage.capacity": "200Gi"})
    out = provision.ensure(bigger, home, client, now=NOW, dry_run=True, providers={"cognito": FakeCognito()})
    assert 'update PersistentVolume/ood-alice-home: spec.capacity.storage: "100Gi" -> "200Gi"' in out.changes
    assert writes(fake_kube) == []


def test_dry_run_shows_field_changes_and_redacts_secret_data(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    def with_secret(c: Any, data: str, **users: Any) -> Any:
        return replace(c, users=replace(c.users, image_pull_secret=replace(
            c.users.image_pull_secret, name="regcred", dockerconfigjson=data), **users))

    ensure(with_secret(cfg, '{"auths":{"old":{}}}'), client)
    assert ensure(with_secret(cfg, '{"auths":{"old":{}}}'), client, dry_run=True).action == "current"
    fake_kube.reset_requests()
    changed = with_secret(cfg, '{"auths":{"new":{}}}', quota=replace(cfg.users.quota, pods=9),
                          cluster_role="ood-student")
    out = ensure(changed, client, dry_run=True)
    assert out.action == "would-update"
    assert 'update ResourceQuota/ood-k8s-quota: spec.hard.pods: "4" -> "9"' in out.changes
    assert 'recreate RoleBinding/ood-k8s-user: roleRef.name: "ood-user" -> "ood-student"' in out.changes
    assert "update Secret/regcred: data..dockerconfigjson: <redacted> -> <redacted>" in out.changes
    assert not any("Namespace" in c or "NetworkPolicy" in c for c in out.changes), out.changes
    assert writes(fake_kube) == []
    assert fake_kube.get("resourcequotas", "ood-k8s-quota", "ood-alice")["spec"]["hard"]["pods"] == "4"


def test_diff() -> None:
    assert provision.diff({"a": {"b": 1, "c": [1]}}, {"a": {"b": 2, "c": [1], "d": "x"}}) == \
        ["a.b: 1 -> 2", 'a.d: (none) -> "x"']
    assert provision.diff({"data": {"k": "old"}}, {"data": {"k": "new"}}, secret=True) == \
        ["data.k: <redacted> -> <redacted>"]
    many = provision.diff({str(i): i for i in range(12)}, {str(i): -i - 1 for i in range(12)}, limit=3)
    assert len(many) == 4 and many[-1] == "... and 9 more"


# --- who may be provisioned -------------------------------------------------------------------------


def test_admit(make_config: Any) -> None:
    cfg = make_config(**{"users.allowed_groups": ["students"]})
    users = {"alice": ALICE, "root": Identity("root", 0, 0, "/root"),
             "svc": Identity("svc", 999, 999, "/var/svc", ("svc",)), "carol": Identity("carol", 20003, 20003,
                                                                                        "/home/carol", ("carol",))}
    lookup = users.__getitem__
    assert provision.admit(cfg, "alice", lookup) == ALICE
    with pytest.raises(UsageError, match=r"uid 0, below users\.min_uid"):
        provision.admit(cfg, "root", lookup)
    with pytest.raises(UsageError, match=r"uid 999,"):
        provision.admit(cfg, "svc", lookup)
    with pytest.raises(NotEntitled, match=r"none of users\.allowed_groups"):
        provision.admit(cfg, "carol", lookup)
    for bad in ("..", "a/b", "../../etc", ".", "-rf", "al ice", "é", "x" * 100, "a\nb", ""):
        with pytest.raises(UsageError):
            provision.admit(cfg, bad, lookup)


# --- the lock ------------------------------------------------------------------------------------


def test_lock_times_out_and_refuses_symlinks(cfg: Any) -> None:
    ticks = iter(range(1000))
    with provision.user_lock(cfg, "alice"):
        with pytest.raises(Unavailable, match="held its lock"), \
                provision.user_lock(cfg, "alice", timeout=5, sleep=lambda s: None, clock=lambda: next(ticks)):
            pass  # pragma: no cover
        with provision.user_lock(cfg, "bob"):  # other users are not blocked
            pass
    lock = Path(cfg.hook.lock_dir, "alice.lock")
    assert oct(lock.stat().st_mode & 0o777) == "0o600"
    assert oct(Path(cfg.hook.lock_dir).stat().st_mode & 0o777) == "0o700"
    target = Path(cfg.hook.lock_dir).parent / "target"
    target.write_text("keep")
    lock.unlink()
    lock.symlink_to(target)
    with pytest.raises(SecurityError, match="symbolic link"), provision.user_lock(cfg, "alice"):
        pass  # pragma: no cover
    assert target.read_text() == "keep"


# --- teardown ------------------------------------------------------------------------------------


def test_teardown(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    ensure(cfg, client)
    storage, cognito = FakeStorage(), FakeCognito()
    fake_kube.reset_requests()
    plan = provision.teardown(cfg, "alice", client, dry_run=True, delete_cognito_user=True,
                              lookup=lambda u: ALICE, storage=storage, providers={"cognito": cognito})
    assert plan == ["would delete namespace ood-alice and everything in it (0 running sessions would end)",
                    "would release efs home storage, keeping its data", "would delete the Cognito user alice"]
    assert writes(fake_kube) == [] and storage.calls == [] and cognito.calls == []
    done = provision.teardown(cfg, "alice", client, lookup=lambda u: ALICE, storage=storage,
                              providers={"cognito": cognito})
    assert done == ["deleted namespace ood-alice", "storage released"]
    assert storage.calls == ["teardown uid=20001 delete_data=False"] and cognito.calls == []
    assert fake_kube.get("namespaces", "ood-alice")["status"]["phase"] == "Terminating"


def test_the_namespace_records_what_the_admission_guard_reads(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    from ood_k8s.cluster import manifests as cluster
    from ood_k8s.core import vocab

    ensure(cfg, client)
    ann = fake_kube.get("namespaces", "ood-alice")["metadata"]["annotations"]
    # one definition of each key, shared by the hook and the guard
    assert (cluster.UID_ANNOTATION, cluster.GID_ANNOTATION, cluster.GIDS_ANNOTATION, cluster.HOME_ANNOTATION) == (
        vocab.UID_ANNOTATION, vocab.GID_ANNOTATION, vocab.GIDS_ANNOTATION, vocab.HOME_ANNOTATION)
    assert {k: ann[k] for k in (vocab.UID_ANNOTATION, vocab.GID_ANNOTATION, vocab.GIDS_ANNOTATION,
                                vocab.HOME_ANNOTATION)} == {
        "ood-k8s.io/uid": "20001", "ood-k8s.io/gid": "20001", "ood-k8s.io/supplemental-gids": "30001,30002",
        "ood-k8s.io/home": "/home/alice"}
    # a change of groups re-provisions (the hash covers it) and the record follows; none is "" not absent
    out = ensure(cfg, client, replace(ALICE, gids=()))
    assert out.action == "updated"
    assert fake_kube.get("namespaces", "ood-alice")["metadata"]["annotations"][vocab.GIDS_ANNOTATION] == ""


def test_teardown_removes_the_token_cache(cfg: Any, client: KubeClient) -> None:
    from ood_k8s.auth.tokencache import TokenCache, Tokens

    ensure(cfg, client)
    cache = TokenCache(cfg.users.token_cache_dir, "alice")
    cache.write(Tokens("id", 2e9, "refresh", 2e9, "oidc", "https://idp.example.edu", "ood", ""))
    bobs = TokenCache(cfg.users.token_cache_dir, "bob")
    bobs.write(Tokens("id", 2e9, "refresh", 2e9, "oidc", "https://idp.example.edu", "ood", ""))
    plan = provision.teardown(cfg, "alice", client, dry_run=True, lookup=lambda u: ALICE, storage=FakeStorage())
    assert plan[1] == f"would delete the token cache {cache.user_dir}" and cache.read() is not None
    done = provision.teardown(cfg, "alice", client, lookup=lambda u: ALICE, storage=FakeStorage())
    assert done == ["deleted namespace ood-alice", f"deleted the token cache {cache.user_dir}", "storage released"]
    assert not os.path.lexists(cache.user_dir) and bobs.read() is not None  # only Alice's
    assert "token cache" not in " ".join(provision.teardown(cfg, "alice", client, lookup=lambda u: ALICE,
                                                            storage=FakeStorage()))


def test_teardown_of_a_user_who_left(cfg: Any, client: KubeClient) -> None:
    ensure(cfg, client)
    storage, cognito = FakeStorage(), FakeCognito()

    def gone(username: str) -> Identity:
        raise UsageError(f"user '{username}' is not known to this host (NSS)")

    done = provision.teardown(cfg, "alice", client, delete_home_data=True, delete_cognito_user=True, lookup=gone,
                              storage=storage, providers={"cognito": cognito})
    assert done[-1] == "deleted Cognito user alice"
    assert storage.calls == ["teardown uid=20001 delete_data=True"] and cognito.calls == ["delete_user alice"]
    assert storage.torn_down[0].home == "/home/alice"  # as recorded, not guessed from storage.home_root


def test_teardown_refuses_a_foreign_namespace_and_bad_options(cfg: Any, client: KubeClient, fake_kube: Any) -> None:
    fake_kube.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ood-alice"}})
    with pytest.raises(SecurityError):
        provision.teardown(cfg, "alice", client, lookup=lambda u: ALICE, storage=FakeStorage())
    assert fake_kube.get("namespaces", "ood-alice")["status"]["phase"] == "Active"
    oidc = replace(cfg, auth=replace(cfg.auth, mode="oidc"))
    with pytest.raises(UsageError, match=r"needs auth\.mode: cognito"):
        provision.teardown(oidc, "alice", client, delete_cognito_user=True)
    with pytest.raises(UsageError):
        provision.teardown(cfg, "../alice", client)


def test_outcome_is_plain_data() -> None:
    out = provision.Outcome("alice", "ood-alice", "created", ["x"], 3)
    assert json.loads(json.dumps(out._asdict()))["round_trips"] == 3

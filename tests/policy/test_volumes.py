"""volumes: what a session may mount, one definition for submit and the admission guard."""

from __future__ import annotations

import pytest

from ood_k8s.config import ExtraMount
from ood_k8s.core.errors import NotEntitled
from ood_k8s.policy import volumes
from ood_k8s.policy.volumes import SessionClaim
from ood_k8s.storage import backend as storage
from tests.conftest import ALICE


@pytest.mark.parametrize(("version", "api"), [
    ("1.27", None), ("1.28", "admissionregistration.k8s.io/v1beta1"), ("1.29", "admissionregistration.k8s.io/v1beta1"),
    ("1.30", "admissionregistration.k8s.io/v1"), ("1.33", "admissionregistration.k8s.io/v1"),
])
def test_the_guard_exists_from_1_28(make_config, version: str, api: str | None) -> None:
    assert volumes.admission_api_version(version) == api
    assert volumes.guarded(make_config(**{"cluster.kubernetes_version": version})) is (api is not None)


@pytest.mark.parametrize(("mode", "home"), [("efs", "home"), ("nfs", "home"), ("pvc", "home-{user}"),
                                            ("hostpath", None), ("none", None)])
def test_claims_follow_the_storage_mode(make_config, mode: str, home: str | None) -> None:
    extra = ExtraMount(name="scratch", mount_path="/scratch", claim_name="scratch", read_only=False,
                       sub_path="users/{user}")
    cfg = make_config(**{"storage.mode": mode, "storage.extra_mounts": [extra]})
    want = ([SessionClaim(home, home=True)] if home else []) + [SessionClaim("scratch", False, "users/{user}")]
    assert volumes.session_claims(cfg) == want
    assert volumes.host_path_home(cfg) is (mode == "hostpath")
    assert want[-1].resolve(**storage.template_fields(cfg, ALICE)) == ("scratch", "users/alice")


def _check(cfg, native_type: str, vol: dict, mount_path: str = "/mnt/x", **mnt) -> None:
    fields = storage.template_fields(cfg, ALICE)
    volumes.check_mount(native_type, vol, {"name": vol["name"], "mountPath": mount_path, **mnt}, "m", cfg, ALICE,
                        fields)


def test_check_mount_names_the_key_and_the_way_out(make_config) -> None:
    cfg = make_config(**{"users.pod_security": "privileged"})
    _check(cfg, "pvc", {"name": "h", "persistentVolumeClaim": {"claimName": "home"}})
    _check(cfg, "empty_dir", {"name": "t", "emptyDir": {}})
    with pytest.raises(NotEntitled) as exc:
        _check(cfg, "nfs", {"name": "n", "nfs": {"server": "s", "path": "/p"}}, "/proj")
    assert str(exc.value) == ("m: NFS volumes are not allowed in sessions on this site: ask the admin to provide "
                              "/proj through storage.extra_mounts")
    with pytest.raises(NotEntitled, match=r"^m.claim_name: claim 'other' is not one sessions may mount"):
        _check(cfg, "pvc", {"name": "o", "persistentVolumeClaim": {"claimName": "other"}})


def test_without_the_guard_only_pod_security_limits_mounts(make_config) -> None:
    cfg = make_config(**{"cluster.kubernetes_version": "1.27", "users.pod_security": "baseline"})
    _check(cfg, "nfs", {"name": "n", "nfs": {"server": "s", "path": "/p"}})
    with pytest.raises(NotEntitled, match=r"^m: 'host' volumes are forbidden by the cluster's Pod Security level"):
        _check(cfg, "host", {"name": "h", "hostPath": {"path": "/scratch"}})

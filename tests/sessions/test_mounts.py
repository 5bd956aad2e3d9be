"""mounts: each native mount type becomes one pod volume and one volume mount, pinned whole."""

from __future__ import annotations

import pytest

from ood_k8s.core.errors import UsageError
from ood_k8s.sessions import mounts
from ood_k8s.sessions.spec import ConfigFile

BASE = {"name": "v", "destination_path": "/mnt/v"}


@pytest.mark.parametrize(("raw", "source"), [
    ({"type": "nfs", "host": "nfs.example.edu", "path": "/export", "read_only": True},
     {"nfs": {"server": "nfs.example.edu", "path": "/export", "readOnly": True}}),
    ({"type": "host", "path": "/scratch", "host_type": "Directory"},
     {"hostPath": {"path": "/scratch", "type": "Directory"}}),
    ({"type": "host", "path": "/scratch"}, {"hostPath": {"path": "/scratch"}}),
    ({"type": "pvc", "claim_name": "data"}, {"persistentVolumeClaim": {"claimName": "data"}}),
    ({"type": "csi", "driver": "d.example.com", "fs_type": "ext4", "volume_attributes": {"a": "1"}, "read_only": True},
     {"csi": {"driver": "d.example.com", "readOnly": True, "fsType": "ext4", "volumeAttributes": {"a": "1"}}}),
    ({"type": "empty_dir", "medium": "Memory", "size_limit": "1Gi"},
     {"emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}),
    ({"type": "empty_dir"}, {"emptyDir": {}}),
    ({"type": "configmap", "configmap_name": "course"}, {"configMap": {"name": "course"}}),
    ({"type": "secret", "secret_name": "keys"}, {"secret": {"secretName": "keys"}}),
])
def test_each_type_becomes_one_volume(raw: dict, source: dict) -> None:
    vol, mnt = mounts.native_mount({**BASE, **raw}, "m")
    assert vol == {"name": "v", **source}
    assert mnt == {"name": "v", "mountPath": "/mnt/v", **({"readOnly": True} if raw.get("read_only") else {})}
    assert set(mounts.MOUNT_KEYS) == {"nfs", "host", "pvc", "csi", "empty_dir", "configmap", "secret"}


def test_a_mount_keeps_its_sub_path() -> None:
    assert mounts.native_mount({**BASE, "type": "pvc", "claim_name": "c", "sub_path": "u/alice"}, "m")[1] == {
        "name": "v", "mountPath": "/mnt/v", "subPath": "u/alice"}


@pytest.mark.parametrize(("raw", "text"), [
    ({"type": "pvc"}, "m.claim_name"),
    ({"type": "pvc", "claim_name": "c", "driver": "x"}, "m: unknown key 'driver'"),
    ({"type": "host", "path": "/x", "host_type": "Pipe"}, "m.host_type"),
    ({"type": "empty_dir", "medium": "Disk"}, "m.medium"),
    ({"type": "pvc", "claim_name": "c", "read_only": "yes"}, "m.read_only"),
])
def test_bad_mounts_name_the_key(raw: dict, text: str) -> None:
    with pytest.raises(UsageError) as exc:
        mounts.native_mount({**BASE, **raw}, "m")
    assert text in str(exc.value)


def test_files_and_where_they_are_mounted() -> None:
    files = mounts.config_files({"files": [{"filename": "a.py", "data": "x", "mount_path": "/a.py", "sub_path": "a.py",
                                           "init_mount_path": "/init"}]}, "echo hi\n")
    assert files == [ConfigFile("a.py", "x", "/a.py", "a.py", "/init", None),
                     ConfigFile("script.sh", "echo hi\n", "/ood/script.sh", "script.sh")]
    assert mounts.file_mounts(files) == (
        [{"name": "ood-files", "mountPath": "/a.py", "subPath": "a.py"},
         {"name": "ood-files", "mountPath": "/ood/script.sh", "subPath": "script.sh"}],
        [{"name": "ood-files", "mountPath": "/init"}])
    with pytest.raises(UsageError, match=r"files\[1\]\.filename: 'a' appears twice"):
        mounts.config_files({"files": [{"filename": "a"}, {"filename": "a"}]}, "")

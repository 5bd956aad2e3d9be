"""``native.mounts`` and ``native.configmap``: what a request asks to see inside its pod.

:func:`native_mount` turns one mount of the request into a pod volume and a volume mount (OOD's
``nfs`` and ``host`` types, and ``pvc``, ``csi``, ``empty_dir``, ``configmap``, ``secret``); whether the
site lets a session have it is :func:`ood_k8s.policy.volumes.check_mount`'s decision.
:func:`config_files` reads the files a job ships in its ConfigMap, the job script among them, and
:func:`file_mounts` places those that name a mount path.
"""

from __future__ import annotations

from typing import Any, Callable

from ood_k8s.core.errors import UsageError
from ood_k8s.sessions import checks
from ood_k8s.sessions.checks import bad
from ood_k8s.sessions.spec import FILES_VOLUME, MAX_FILES_BYTES, SCRIPT_FILE, SCRIPT_MOUNT, ConfigFile

FILE_KEYS = frozenset({"filename", "data", "mount_path", "sub_path", "init_mount_path", "init_sub_path"})
MOUNT_KEYS = {
    "nfs": frozenset({"host", "path"}),
    "host": frozenset({"path", "host_type"}),
    "pvc": frozenset({"claim_name"}),
    "csi": frozenset({"driver", "volume_attributes", "fs_type"}),
    "empty_dir": frozenset({"medium", "size_limit"}),
    "configmap": frozenset({"configmap_name"}),
    "secret": frozenset({"secret_name"}),
}
MOUNT_COMMON = frozenset({"type", "name", "destination_path", "sub_path", "read_only"})
HOST_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
              "BlockDevice")

Mount = tuple[dict[str, Any], dict[str, Any]]  # (pod volume, volume mount)


# --- the job's files ------------------------------------------------------------------------------


def _file_data(value: Any, path: str) -> str:
    # The total is checked against the ConfigMap limit afterwards, with a clearer message.
    return "" if value is None else checks.text(value, path, allow_empty=True, max_len=8 * MAX_FILES_BYTES)


def _config_file(raw: Any, path: str, seen: set[str]) -> ConfigFile:
    raw = checks.mapping(raw, path)
    checks.known(raw, FILE_KEYS, path)
    filename = checks.text(raw.get("filename"), f"{path}.filename", max_len=253)
    if not checks.FILE_KEY.match(filename) or filename in (".", ".."):
        raise bad(f"{path}.filename", filename, "a file name (letters, digits, '-', '_', '.')")
    if filename in seen:
        raise UsageError(f"{path}.filename: '{filename}' appears twice", "give each file its own name")
    f = ConfigFile(filename=filename, data=_file_data(raw.get("data"), f"{path}.data"))
    for key in ("mount_path", "init_mount_path"):
        if raw.get(key):
            setattr(f, key, checks.abs_path(raw[key], f"{path}.{key}"))
    for key in ("sub_path", "init_sub_path"):
        if raw.get(key):
            setattr(f, key, checks.rel_path(raw[key], f"{path}.{key}"))
    return f


def config_files(raw_configmap: Any, content: str) -> list[ConfigFile]:
    """``native.configmap.files`` plus the job script (unless a file replaces it), within a ConfigMap's size."""
    cm = checks.mapping(raw_configmap, "native.configmap")
    checks.known(cm, ("files",), "native.configmap")
    files: list[ConfigFile] = []
    seen: set[str] = set()
    for i, raw in enumerate(checks.listing(cm.get("files"), "native.configmap.files")):
        f = _config_file(raw, f"native.configmap.files[{i}]", seen)
        seen.add(f.filename)
        files.append(f)
    if SCRIPT_FILE not in seen:
        files.append(ConfigFile(filename=SCRIPT_FILE, data=_file_data(content, "content"), mount_path=SCRIPT_MOUNT,
                                sub_path=SCRIPT_FILE))
    size = sum(len(f.filename) + len(f.data.encode("utf-8", "surrogatepass")) for f in files)
    if size > MAX_FILES_BYTES:
        raise UsageError(f"the job script and files total {size} bytes, more than a ConfigMap holds (1 MiB)",
                         "keep large files in your home directory and read them from there")
    return files


def file_mounts(files: list[ConfigFile]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(main container mounts, init container mounts) of the files that name a mount path."""
    mounts: list[dict[str, Any]] = []
    init_mounts: list[dict[str, Any]] = []
    for f in files:
        if f.mount_path:
            mounts.append({"name": FILES_VOLUME, "mountPath": f.mount_path,
                           **({"subPath": f.sub_path} if f.sub_path else {})})
        if f.init_mount_path:
            init_mounts.append({"name": FILES_VOLUME, "mountPath": f.init_mount_path,
                                **({"subPath": f.init_sub_path} if f.init_sub_path else {})})
    return mounts, init_mounts


# --- native.mounts: one volume source per type ------------------------------------------------------


def _read_only(read_only: bool) -> dict[str, Any]:
    return {"readOnly": True} if read_only else {}


def _nfs(raw: dict[str, Any], path: str, read_only: bool) -> dict[str, Any]:
    return {"nfs": {"server": checks.text(raw.get("host"), f"{path}.host", max_len=253),
                    "path": checks.abs_path(raw.get("path"), f"{path}.path"), **_read_only(read_only)}}


def _host(raw: dict[str, Any], path: str, read_only: bool) -> dict[str, Any]:
    host_type = raw.get("host_type") or ""
    if host_type not in HOST_TYPES:
        raise bad(f"{path}.host_type", host_type, "one of " + ", ".join(t for t in HOST_TYPES if t))
    source: dict[str, Any] = {"path": checks.abs_path(raw.get("path"), f"{path}.path")}
    if host_type:
        source["type"] = host_type
    return {"hostPath": source}


def _pvc(raw: dict[str, Any], path: str, read_only: bool) -> dict[str, Any]:
    return {"persistentVolumeClaim": {"claimName": checks.dns_subdomain(raw.get("claim_name"), f"{path}.claim_name"),
                                      **_read_only(read_only)}}


def _csi(raw: dict[str, Any], path: str, read_only: bool) -> dict[str, Any]:
    attrs = {k: checks.text(v, f"{path}.volume_attributes.{k}", allow_empty=True)
             for k, v in checks.mapping(raw.get("volume_attributes"), f"{path}.volume_attributes").items()}
    csi: dict[str, Any] = {"driver": checks.dns_subdomain(raw.get("driver"), f"{path}.driver"), **_read_only(read_only)}
    if raw.get("fs_type"):
        csi["fsType"] = checks.text(raw["fs_type"], f"{path}.fs_type", max_len=32)
    if attrs:
        csi["volumeAttributes"] = attrs
    return {"csi": csi}


def _empty_dir(raw: dict[str, Any], path: str, read_only: bool) -> dict[str, Any]:
    ed: dict[str, Any] = {}
    medium = raw.get("medium") or ""
    if medium not in ("", "Memory"):
        raise bad(f"{path}.medium", medium, "'' (node disk) or 'Memory'")
    if medium:
        ed["medium"] = medium
    if raw.get("size_limit") is not None:
        ed["sizeLimit"] = checks.memory_quantity(raw["size_limit"], f"{path}.size_limit")[0]
    return {"emptyDir": ed}


def _configmap(raw: dict[str, Any], path: str, read_only: bool) -> dict[str, Any]:
    return {"configMap": {"name": checks.dns_subdomain(raw.get("configmap_name"), f"{path}.configmap_name")}}


def _secret(raw: dict[str, Any], path: str, read_only: bool) -> dict[str, Any]:
    return {"secret": {"secretName": checks.dns_subdomain(raw.get("secret_name"), f"{path}.secret_name")}}


_SOURCES: dict[str, Callable[[dict[str, Any], str, bool], dict[str, Any]]] = {
    "nfs": _nfs, "host": _host, "pvc": _pvc, "csi": _csi, "empty_dir": _empty_dir, "configmap": _configmap,
    "secret": _secret,
}


def native_mount(raw: Any, path: str) -> Mount:
    """(pod volume, volume mount) of one ``native.mounts`` entry, every key checked."""
    raw = checks.mapping(raw, path)
    kind = raw.get("type")
    if kind not in MOUNT_KEYS:
        raise bad(f"{path}.type", kind, "one of " + ", ".join(MOUNT_KEYS))
    checks.known(raw, MOUNT_COMMON | MOUNT_KEYS[kind], path)
    name = checks.dns_label(raw.get("name"), f"{path}.name")
    dest = checks.abs_path(raw.get("destination_path"), f"{path}.destination_path")
    read_only = raw.get("read_only", False)
    if not isinstance(read_only, bool):
        raise bad(f"{path}.read_only", read_only, "true or false")
    vol: dict[str, Any] = {"name": name, **_SOURCES[kind](raw, path, read_only)}
    mnt: dict[str, Any] = {"name": name, "mountPath": dest}
    if raw.get("sub_path"):
        mnt["subPath"] = checks.rel_path(raw["sub_path"], f"{path}.sub_path")
    if read_only:
        mnt["readOnly"] = True
    return vol, mnt

"""A REAL NFSv4 server: the home the portal creates is the home a session writes to, with one owner.

Debian's ``nfs-ganesha`` (userspace, VFS backend) exports a temporary directory on 127.0.0.1; that
directory is the portal's own mount of the home file system.  Sessions are played by ``libnfs-utils``
clients (``nfs-cp``, ``nfs-ls``), which speak NFSv4 over TCP in userspace with the uid/gid given in
the URL -- exactly what a pod's kernel client sends with AUTH_SYS.  A second export with
``All_Squash`` to the user's uid behaves as an EFS access point does (REFERENCE §7): every write
lands as the user whatever uid the client claims.

Needs root (ganesha's VFS backend uses open_by_handle_at).  Skipped, with the reason, only when the
daemon cannot start in this sandbox.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from ood_k8s.core.identity import Identity
from ood_k8s.storage import backend as storage
from tests.conftest import ALICE, BOB, replace

GANESHA = "/usr/bin/ganesha.nfsd"
NEEDED = {GANESHA: "nfs-ganesha and nfs-ganesha-vfs", "nfs-cp": "libnfs-utils", "nfs-ls": "libnfs-utils"}
READY = b"NFS SERVER INITIALIZED"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _export(export_id: int, path: Path, pseudo: str, squash: str, anon: tuple[int, int] | None = None) -> str:
    anon_cfg = f"Anonymous_Uid = {anon[0]}; Anonymous_Gid = {anon[1]};" if anon else ""
    return (f"EXPORT {{ Export_Id = {export_id}; Path = {path}; Pseudo = {pseudo}; Protocols = 4; "
            f"Transports = TCP; Access_Type = RW; Squash = {squash}; {anon_cfg} SecType = sys; "
            "FSAL { Name = VFS; } }\n")


@dataclasses.dataclass
class Nfs:
    port: int
    log: list[bytes]

    def url(self, path: str, uid: int, gid: int) -> str:
        return f"nfs://127.0.0.1{path}?version=4&nfsport={self.port}&uid={uid}&gid={gid}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def ganesha(tmp_path: Path) -> Iterator[Callable[..., Nfs]]:
    """Start ganesha with the exports given (call after the exported directories exist)."""
    missing = [f"{tool} ({pkg})" for tool, pkg in NEEDED.items() if not shutil.which(tool)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: install the Debian packages (.ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("nfs-ganesha's VFS backend needs root (open_by_handle_at)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(exports: str) -> Nfs:
        port = _free_port()
        (tmp_path / "recovery").mkdir(exist_ok=True)
        conf = tmp_path / "ganesha.conf"
        conf.write_text(
            f"NFS_CORE_PARAM {{ NFS_Port = {port}; NFS_Protocols = 4; Enable_NLM = false; Enable_RQUOTA = false; "
            "Bind_addr = 127.0.0.1; }\n"
            f"NFSV4 {{ RecoveryBackend = fs; RecoveryRoot = {tmp_path / 'recovery'}; Graceless = true; "
            "Lease_Lifetime = 10; Only_Numeric_Owners = true; }\n" + exports)
        proc = subprocess.Popen([GANESHA, "-F", "-f", str(conf), "-L", "/dev/stderr", "-p", str(tmp_path / "pid"),
                                 "-N", "NIV_EVENT"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        procs.append(proc)
        log: list[bytes] = []
        ready = threading.Event()

        def drain() -> None:  # keeps the pipe from filling, and tells when the server listens
            assert proc.stderr is not None
            for line in proc.stderr:
                log.append(line)
                if READY in line:
                    ready.set()
            ready.set()  # exited

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(timeout=60) or proc.poll() is not None:
            tail = b"".join(log[-5:]).decode(errors="replace")
            pytest.skip(f"nfs-ganesha cannot start in this sandbox (exit {proc.poll()}): {tail}")
        return Nfs(port, log)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def portal(tmp_path: Path) -> tuple[Path, Identity]:
    """The portal's mount of the home file system, and alice with her home on it."""
    root = tmp_path / "export"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    skel = tmp_path / "skel"
    skel.mkdir()
    (skel / ".bashrc").write_text("# site bashrc\n")
    return root, replace(ALICE, home=str(root / "alice"))


def make_home(root: Path, ident: Identity, make_config: Any) -> None:
    cfg = make_config(**{"storage.mode": "nfs", "storage.home_root": str(root),
                         "storage.skeleton_dir": str(root.parent / "skel")})
    assert storage.ensure_home(cfg, ident) is True


def test_file_written_through_nfs_as_the_user_is_the_users_on_the_portal(ganesha, portal, make_config,
                                                                         tmp_path: Path) -> None:
    root, alice = portal
    make_home(root, alice, make_config)
    nfs = ganesha(_export(1, root, "/export", "Root_Squash"))
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text('{"cells": []}')

    # the session (uid 20001 over NFS) writes into $HOME ...
    put = nfs.run("nfs-cp", str(notebook), nfs.url("/export/alice/analysis.ipynb", alice.uid, alice.gid))
    assert put.returncode == 0, put.stderr
    # ... and the portal sees it in the same $HOME, owned by the same user
    st = os.lstat(os.path.join(alice.home, "analysis.ipynb"))
    assert (st.st_uid, st.st_gid) == (20001, 20001)
    assert Path(alice.home, "analysis.ipynb").read_text() == '{"cells": []}'

    # the other direction: what the portal created (home, skeleton) is the user's inside the session
    listing = nfs.run("nfs-ls", nfs.url("/export/alice", alice.uid, alice.gid))
    assert listing.returncode == 0, listing.stderr
    owners = {line.split()[-1]: tuple(line.split()[2:4]) for line in listing.stdout.splitlines()}
    assert owners == {".bashrc": ("20001", "20001"), "analysis.ipynb": ("20001", "20001")}
    back = tmp_path / "back.txt"
    got = nfs.run("nfs-cp", nfs.url("/export/alice/.bashrc", alice.uid, alice.gid), str(back))
    assert got.returncode == 0 and back.read_text() == "# site bashrc\n"


def test_other_users_and_root_cannot_write_into_the_home(ganesha, portal, make_config, tmp_path: Path) -> None:
    root, alice = portal
    make_home(root, alice, make_config)
    nfs = ganesha(_export(1, root, "/export", "Root_Squash"))
    src = tmp_path / "x"
    src.write_text("intruder")
    for uid, gid in ((BOB.uid, BOB.gid), (0, 0)):  # 0700 keeps bob out; root is squashed to nobody
        res = nfs.run("nfs-cp", str(src), nfs.url("/export/alice/planted", uid, gid))
        assert res.returncode != 0 and "NFS4ERR_ACCESS" in res.stderr
        assert nfs.run("nfs-ls", nfs.url("/export/alice", uid, gid)).returncode != 0
    assert os.listdir(alice.home) == [".bashrc"]


def test_access_point_like_export_writes_as_the_user_whatever_uid_the_pod_claims(ganesha, portal, make_config,
                                                                                 tmp_path: Path) -> None:
    root, alice = portal
    make_home(root, alice, make_config)
    nfs = ganesha(_export(2, Path(alice.home), "/ap-alice", "All_Squash", (alice.uid, alice.gid)))
    src = tmp_path / "out.csv"
    src.write_text("a,b\n")
    for i, (uid, gid) in enumerate(((0, 0), (1000, 100), (alice.uid, alice.gid))):
        res = nfs.run("nfs-cp", str(src), nfs.url(f"/ap-alice/out{i}.csv", uid, gid))
        assert res.returncode == 0, res.stderr
        st = os.lstat(os.path.join(alice.home, f"out{i}.csv"))
        assert (st.st_uid, st.st_gid) == (20001, 20001)
    # the client cannot reach the real parent (where bob's home is): above the export is only the
    # server's pseudo root, as above an access point's root directory
    make_home(root, replace(BOB, home=str(root / "bob")), make_config)
    above = nfs.run("nfs-ls", nfs.url("/ap-alice/..", 0, 0))
    assert above.returncode == 0, above.stderr
    assert [line.split()[-1] for line in above.stdout.splitlines()] == ["ap-alice"]

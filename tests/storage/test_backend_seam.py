"""The home-storage seam (ood_k8s.storage.backend): a backend added from outside -- one module, one
registration, its config section -- works end to end, and every registered mode implements the whole
HomeBackend protocol.  The toy backend is tests/storage/toyhome.py."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ood_k8s import cli, config
from ood_k8s.core.errors import ConfigError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor import runner as doctor
from ood_k8s.sessions import objects
from ood_k8s.sessions.request import Script
from ood_k8s.sessions.resolve import resolve
from ood_k8s.storage import backend as storage
from ood_k8s.users import provision
from tests.conftest import ALICE, ROOT, replace
from tests.storage import toyhome

NOW = "2025-03-01T12:00:00Z"


@pytest.fixture
def toy() -> Iterator[None]:
    storage.register("toy", toyhome.BACKEND, settings=toyhome.ToyConfig)
    try:
        yield
    finally:
        storage.unregister("toy")


@pytest.fixture
def home(tmp_path: Path) -> Identity:
    (tmp_path / "home" / "alice").mkdir(parents=True, mode=0o700)
    os.chown(tmp_path / "home" / "alice", ALICE.uid, ALICE.gid)
    return replace(ALICE, home=str(tmp_path / "home" / "alice"))


def _site(tmp_path: Path, kubeconfig: str, **storage_cfg: Any) -> Path:
    path = tmp_path / "ood_k8s.yml"
    path.write_text(json.dumps({
        "cluster": {"provisioner_kubeconfig": kubeconfig},
        "auth": {"mode": "oidc", "oidc": {"issuer": "https://idp.example.edu", "client_id": "ood"}},
        "hook": {"lock_dir": str(tmp_path / "locks")},
        "users": {"token_cache_dir": str(tmp_path / "tokens")},
        "templates": {"site_dir": str(tmp_path / "site")},
        "storage": {"home_root": str(tmp_path / "home"), "create_home": False, **storage_cfg}}))
    return path


# --- a toy backend from a test, end to end ------------------------------------------------------------


def test_config_accepts_a_registered_mode_and_its_section(toy: None) -> None:
    cfg = config.parse({"storage": {"mode": "toy", "toy": {"storage_class": "fast", "size": "5Gi"}}})
    assert (cfg.storage.mode, cfg.storage.toy.storage_class, cfg.storage.toy.size) == ("toy", "fast", "5Gi")
    with pytest.raises(ConfigError) as err:
        config.parse({"storage": {"mode": "toy", "toy": {"storage_class": "Not A Label"}}})
    assert err.value.problems == [  # the section's own value check
        "storage.toy.storage_class: got 'Not A Label', expected a DNS-1123 label: lowercase letters, digits and "
        "'-', at most 63 characters"]
    with pytest.raises(ConfigError) as err:
        config.parse({"storage": {"mode": "toy", "toy": {"size": "0"}}})
    assert err.value.problems == ["storage.toy.size: got '0', expected more than nothing"]  # the backend's cross-check
    assert "toy:\n    # StorageClass of the users' home claims.\n    storage_class: \"standard\"" in config.example()


def test_unknown_modes_are_refused_naming_the_registered_ones(toy: None) -> None:
    with pytest.raises(ConfigError) as err:
        config.parse({"storage": {"mode": "ceph"}})
    assert err.value.problems == [
        "storage.mode: got 'ceph', expected one of 'efs', 'nfs', 'pvc', 'hostpath', 'none', 'toy'"]
    with pytest.raises(ConfigError) as err:
        storage.get("ceph")
    assert str(err.value) == ("storage.mode: got 'ceph', expected one of 'efs', 'nfs', 'pvc', 'hostpath', 'none', "
                              "'toy': set storage.mode to one of them (or install the plugin that registers it)")


def test_unregistered_the_mode_and_its_section_are_gone() -> None:
    storage.register("toy", toyhome.BACKEND, settings=toyhome.ToyConfig)
    storage.unregister("toy")
    assert "toy" not in storage.modes()
    with pytest.raises(ConfigError, match=r"storage\.mode: got 'toy'"):
        config.parse({"storage": {"mode": "toy"}})
    with pytest.raises(ConfigError, match=r"storage\.toy: unknown key"):
        config.parse({"storage": {"toy": {}}})


def test_only_a_whole_backend_is_registered() -> None:
    class Half:
        static_pv = False

        def pod_volume(self, cfg: Any, ident: Any) -> None:
            return None

    with pytest.raises(TypeError, match="does not implement HomeBackend"):
        storage.register("half", Half())  # type: ignore[arg-type]
    assert "half" not in storage.modes()


def test_a_toy_backend_provisions_mounts_checks_and_tears_down(toy: None, fake_kube: Any, tmp_path: Path,
                                                              home: Identity, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = fake_kube.write_kubeconfig(str(tmp_path / "provisioner.kubeconfig"))
    path = _site(tmp_path, kubeconfig, mode="toy", toy={"storage_class": "fast"})
    cfg = config.load(str(path))
    client = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)

    # the user's provisioning plans, then provisions, through the backend
    planned = provision.ensure(cfg, home, client, now=NOW, dry_run=True)
    assert "toy: a 1Gi home claim of class fast" in planned.changes
    assert "create PersistentVolumeClaim/toy-alice" in planned.changes
    provision.ensure(cfg, home, client, now=NOW)
    claim = fake_kube.get("persistentvolumeclaims", "toy-alice", "ood-alice")
    assert (claim["spec"]["storageClassName"], claim["spec"]["resources"]) == ("fast", {"requests": {"storage": "1Gi"}})
    assert provision.ensure(cfg, home, client, now=NOW).action == "current"  # the fingerprint is stable

    # a session pod mounts the home through it
    pod = objects.pod(resolve(Script(native={}), cfg, home), "job-1")
    assert {"name": "home", "persistentVolumeClaim": {"claimName": "toy-alice"}} in pod["spec"]["volumes"]
    assert {"name": "home", "mountPath": home.home} in pod["spec"]["containers"][0]["volumeMounts"]

    # ood-k8s storage check shows its rows
    from ood_k8s.core import identity

    monkeypatch.setattr(identity, "lookup", lambda user: home)
    assert cli.main(["--config", str(path), "storage", "check", "alice", "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["mode"], report["findings"][-1]) == ("toy", {
        "what": "toy claim", "portal": "-", "pod": "ood-alice/toy-alice: fast", "status": "ok", "fix": ""})

    # the doctor lists its checks
    checks = {c.name: c for c in doctor.run(cfg, "alice", kube=client, lookup=lambda u: home)}
    assert (checks["toy storage"].ok, checks["toy storage"].detail) == (True, "claims of class fast")
    assert checks["home: toy claim"].ok

    # and user removal releases it
    done = provision.teardown(cfg, "alice", client, lookup=lambda u: home)
    assert "toy: deleted claim ood-alice/toy-alice" in done


# --- every registered mode implements the whole protocol ----------------------------------------------


def _protocol() -> tuple[dict[str, Any], dict[str, inspect.Signature]]:
    attributes = dict(storage.HomeBackend.__annotations__)
    methods = {name: inspect.signature(fn) for name, fn in vars(storage.HomeBackend).items()
               if callable(fn) and not name.startswith("_")}
    return attributes, methods


def test_the_protocol_is_what_the_modes_differ_in() -> None:
    attributes, methods = _protocol()
    assert sorted(attributes) == ["cloud_client", "csi_driver", "host_path", "static_pv"]
    assert sorted(methods) == ["check", "claim_template", "config_problems", "doctor_checks", "fingerprint", "plan",
                               "pod_volume", "provision", "teardown", "volume_objects"]


@pytest.mark.parametrize("mode", storage.modes())
def test_every_registered_mode_implements_the_whole_protocol(mode: str) -> None:
    backend = storage.get(mode)
    assert isinstance(backend, storage.HomeBackend)
    attributes, methods = _protocol()
    for name, kind in attributes.items():
        assert isinstance(getattr(backend, name), kind), (mode, name)
    for name, want in methods.items():
        have = inspect.signature(getattr(backend, name))
        assert list(have.parameters) == list(want.parameters)[1:], (mode, name)  # the same, without self


@pytest.mark.parametrize("mode", storage.modes())
def test_a_login_imports_only_its_own_backend(mode: str) -> None:
    # The hook's fingerprint of a returning user resolves the mode's backend and nothing else: no AWS
    # module unless the site is on EFS.
    code = (f"import sys\nfrom ood_k8s import config\nfrom ood_k8s.core.identity import Identity\n"
            f"from ood_k8s.storage import backend\n"
            f"cfg = config.Config()\ncfg.storage.mode = {mode!r}\n"
            f"backend.fingerprint(cfg, Identity('alice', 20001, 20001, '/home/alice', ('alice',), ()))\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.startswith(('ood_k8s.storage.', 'ood_k8s.cloud.')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    loaded = set(out.stdout.split())
    modules = {"efs": "ood_k8s.cloud.aws.efs", "nfs": "ood_k8s.storage.nfs", "pvc": "ood_k8s.storage.pvc",
               "hostpath": "ood_k8s.storage.hostpath", "none": "ood_k8s.storage.none"}
    allowed = {modules[mode], "ood_k8s.storage.backend", "ood_k8s.storage.static_pv", "ood_k8s.storage.none"}
    if mode == "efs":
        allowed.add("ood_k8s.cloud.aws")
    assert modules[mode] in loaded and loaded <= allowed, loaded

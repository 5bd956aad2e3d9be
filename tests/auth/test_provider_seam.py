"""The identity-provider seam: a provider is one module, one registry line and its config section.

The toy provider (:mod:`tests.auth.toyprovider`) is registered from here, with its section under
``auth``, and then the product's own steps -- the config loader, the hook's login, the credential
plugin, the doctor, the eksctl fragment, user teardown -- go through it without knowing its name.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ood_k8s import config
from ood_k8s.auth import plugin, provider, tokens
from ood_k8s.auth.provider import IdentityProvider
from ood_k8s.auth.tokencache import TokenCache
from ood_k8s.cluster import manifests
from ood_k8s.core.errors import ConfigError
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor import runner as doctor
from ood_k8s.kubeconfig import user as userkubeconfig
from ood_k8s.users import hook, provision
from tests.auth import toyprovider
from tests.conftest import ALICE, ROOT

NOW = 1_800_000_000.0
TOY = "tests.auth.toyprovider:PROVIDER"


def _with_section(cls: type, name: str, sub: type, doc: str) -> type:
    """``cls`` plus the setting ``name: sub = setting(doc=doc, factory=sub)``: the one line a provider
    adds to the ``auth`` section of the schema, made here because the toy is not in the product."""
    namespace: dict[str, Any] = {"__annotations__": {**cls.__annotations__, name: sub}, "__module__": cls.__module__,
                                 "__qualname__": cls.__qualname__}
    for f in config.fields(cls):
        namespace[f.name] = config.setting(f.default, f.doc, check=f.check, secret=f.secret, factory=f.factory,
                                           internal=f.internal)
    namespace[name] = config.setting(doc=doc, factory=sub)
    return config.section(type(cls.__name__, (), namespace))  # type: ignore[no-any-return]


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[toyprovider.ToyProvider]:
    """The toy registered (its registry line) with its config section under ``auth``."""
    toy_auth = _with_section(config.AuthConfig, "toy", toyprovider.ToyConfig, "Toy provider (auth.mode: toy).")
    auth = next(f for f in config.fields(config.Config) if f.name == "auth")
    monkeypatch.setitem(config.Config.__annotations__, "auth", toy_auth)
    monkeypatch.setattr(auth, "factory", toy_auth)
    provider.register("toy", TOY)
    toyprovider.PROVIDER.calls.clear()
    toyprovider.PROVIDER.users.clear()
    yield toyprovider.PROVIDER
    provider.unregister("toy")


def toy_config(tmp_path: Path, **toy: Any) -> config.Config:
    return config.parse({
        "auth": {"mode": "toy", "toy": {"realm": "playground", **toy}},
        "users": {"token_cache_dir": str(tmp_path / "tokens")},
        "hook": {"lock_dir": str(tmp_path / "locks")},
        "storage": {"mode": "none", "create_home": False},
    })


def assert_implements_the_protocol(found: Any, mode: str) -> None:
    """Every attribute and method of :class:`IdentityProvider`, each method with its parameters."""
    assert found.mode == mode
    for name, kind in IdentityProvider.__annotations__.items():
        assert isinstance(getattr(found, name), {"str": str, "bool": bool}[str(kind.__name__)]), name
    methods = {n: v for n, v in vars(IdentityProvider).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert len(methods) >= 12
    for name, method in methods.items():
        want = list(inspect.signature(method).parameters.values())[1:]  # without self
        got = list(inspect.signature(getattr(found, name)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in got] == [(p.name, p.kind, p.default) for p in want], name


# --- the registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", provider.modes())
def test_every_registered_mode_implements_the_whole_protocol(mode: str) -> None:
    assert_implements_the_protocol(provider.get(mode), mode)


def test_an_unknown_mode_is_one_config_line() -> None:
    with pytest.raises(ConfigError) as exc:
        provider.get("toy")
    assert str(exc.value).startswith("auth.mode: got 'toy', expected one of 'cognito', 'oidc': ")
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        config.parse({"auth": {"mode": "toy"}})
    assert "auth.mode: got 'toy', expected one of 'cognito', 'oidc'" in exc.value.problems


# --- the toy, through the product's steps --------------------------------------------------------------


def test_the_toy_is_a_mode_with_its_own_section_and_checks(toy: toyprovider.ToyProvider, tmp_path: Path) -> None:
    assert_implements_the_protocol(provider.get("toy"), "toy")
    cfg = toy_config(tmp_path)
    assert cfg.auth.toy.realm == "playground" and provider.of(cfg) is toy
    assert "realm: " in config.example()  # documented with every other setting
    with pytest.raises(ConfigError) as exc:
        toy_config(tmp_path, realm="")
    assert exc.value.problems == ["auth.toy.realm: missing, expected a value when auth.mode is toy"]
    idp = manifests.eksctl_config(cfg)["identityProviders"][0]
    assert (idp["issuerUrl"], idp["clientId"], idp["usernameClaim"], idp["groupsClaim"]) == (
        "https://toy.example/playground", "toy-portal", "toy:user", "toy:teams")


def test_the_hook_logs_in_through_the_toy(toy: toyprovider.ToyProvider, tmp_path: Path, fake_kube: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = toy_config(tmp_path)
    # The hook writes the cache for the user: as root (as OOD runs it), or else as that very user.
    me = ALICE if os.geteuid() == 0 else ALICE._replace(uid=os.geteuid(), gid=os.getegid())
    monkeypatch.setattr(provision.identity_mod, "lookup", lambda u: me)
    monkeypatch.setattr(userkubeconfig, "write_checked", lambda c, i, n: userkubeconfig.Written(False, ""))
    client = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    lines: list[str] = []
    for _ in range(2):
        log = hook.HookLog({}, io.StringIO(), lambda p, m: lines.append(m))
        assert hook.run(cfg, "alice", {}, log, client=client, geteuid=lambda: 0) == 0, lines
    assert "Toy: created toy user alice" in lines[0] and "credentials minted" in lines[0]
    assert " current (" in lines[1] and "credentials cached" in lines[1]
    assert toy.calls == ["ensure_user alice dry_run=False", "mint alice"]
    cached = TokenCache(cfg.users.token_cache_dir, "alice").read()
    assert cached is not None and (cached.mode, cached.issuer) == ("toy", "https://toy.example/playground")
    assert tokens.claims(cached.id_token)["toy:user"] == "alice"


def test_the_plugin_refreshes_through_the_toy(toy: toyprovider.ToyProvider, tmp_path: Path) -> None:
    cfg = toy_config(tmp_path)
    cache = TokenCache(cfg.users.token_cache_dir, "alice")
    cache.write(toy.mint(cfg, "alice", clock=lambda: NOW, sleep=lambda s: None))
    argv = ["--user", "alice", "--cache-dir", cfg.users.token_cache_dir]
    later = NOW + toyprovider.LIFETIME - 10  # inside the margin
    out, err = io.StringIO(), io.StringIO()
    assert plugin.main(argv, clock=lambda: later, environ={}, stdout=out, stderr=err) == 0, err.getvalue()
    token = json.loads(out.getvalue())["status"]["token"]
    assert tokens.claims(token)["refreshed"] == later and cache.read().id_token == token  # type: ignore[union-attr]
    assert toy.calls == ["mint alice", "refresh refresh-alice"]
    cache.write(cache.read().replace(refresh_token="revoked", id_expires_at=later))  # type: ignore[union-attr]
    out, err = io.StringIO(), io.StringIO()
    assert plugin.main(argv, clock=lambda: later + 1, environ={}, stdout=out, stderr=err) == 1
    assert err.getvalue() == ("ood-k8s credential: the Kubernetes credentials of alice on this portal have expired: "
                              "log out of the portal and log in again\n")
    assert cache.read().refresh_token == ""  # type: ignore[union-attr]


def test_doctor_and_teardown_go_through_the_toy(toy: toyprovider.ToyProvider, tmp_path: Path,
                                                fake_kube: Any) -> None:
    cfg = toy_config(tmp_path)
    checks = doctor.run(cfg)
    names = [c.name for c in checks]
    assert doctor.Check("Toy realm", True, "playground") in checks
    assert names.index("Toy realm") > names.index("Kubernetes API")  # where the identity provider's lines print
    toy.users.add("alice")
    client = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=lambda s: None)
    done = provision.teardown(cfg, "alice", client, delete_cognito_user=True, lookup=lambda u: ALICE)
    assert done[-1] == "deleted Toy user alice" and toy.calls[-1] == "delete_user alice"


# --- the hot path ------------------------------------------------------------------------------------


def test_the_plugin_imports_only_the_provider_it_refreshes_with(toy: toyprovider.ToyProvider, tmp_path: Path) -> None:
    cfg = toy_config(tmp_path)
    cache = TokenCache(cfg.users.token_cache_dir, "alice")
    cache.write(toy.mint(cfg, "alice", clock=lambda: NOW, sleep=lambda s: None))
    probe = f"""if True:
        import io, sys
        from ood_k8s.auth import plugin, provider
        provider.register("toy", {TOY!r})
        for when in ({NOW!r}, {NOW + toyprovider.LIFETIME!r}):  # cached, then refreshed
            code = plugin.main(["--user", "alice", "--cache-dir", {cfg.users.token_cache_dir!r}],
                               clock=lambda: when, environ={{}}, stdout=io.StringIO(), stderr=sys.stderr)
            print(code, *sorted(m for m in sys.modules if m.endswith(("cognito", "oidc", "toyprovider"))))
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=str(ROOT), env=env)
    assert out.stdout.splitlines() == ["0", "0 tests.auth.toyprovider"], out.stderr

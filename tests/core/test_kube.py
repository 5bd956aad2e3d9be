"""KubeClient against the fake API over HTTPS: verbs, typed errors, retries, credentials."""

from __future__ import annotations

import socket

import pytest

from ood_k8s.core import errors
from ood_k8s.core.kube import KubeClient


def ns(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def cm(name: str, namespace: str = "team", **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace,
                                                                  "labels": {"app": name}}, "data": data}


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(fake_kube, slept) -> KubeClient:
    c = KubeClient(fake_kube.url, token=fake_kube.token, ca_file=fake_kube.ca_file, sleep=slept.append)
    c.create(ns("team"))
    fake_kube.reset_requests()
    c.round_trips = 0
    return c


def test_verbs_round_trip(client: KubeClient, fake_kube) -> None:
    created = client.create(cm("a", x="1"))
    assert created["metadata"]["uid"] and created["data"] == {"x": "1"}
    assert client.get("ConfigMap", "a", "team")["data"] == {"x": "1"}
    client.create(cm("b"))
    assert [i["metadata"]["name"] for i in client.list("ConfigMap", "team", label_selector="app=b")] == ["b"]
    patched = client.patch("ConfigMap", "a", {"data": {"y": "2"}}, "team")
    assert patched["data"] == {"x": "1", "y": "2"}
    client.delete("ConfigMap", "a", "team")
    assert client.get_or_none("ConfigMap", "a", "team") is None
    assert client.round_trips == len(fake_kube.requests) == 7


def test_typed_errors_are_one_line(client: KubeClient) -> None:
    client.create(cm("a"))
    with pytest.raises(errors.AlreadyExists) as exc:
        client.create(cm("a"))
    assert exc.value.status == 409 and "\n" not in str(exc.value)
    with pytest.raises(errors.NotFound, match='configmaps "zz" not found'):
        client.get("ConfigMap", "zz", "team")
    stale = client.get("ConfigMap", "a", "team")
    client.patch("ConfigMap", "a", {"data": {"k": "v"}}, "team")
    with pytest.raises(errors.Conflict, match="the object has been modified"):
        client.replace(stale)
    with pytest.raises(errors.Invalid):
        client.create(cm("Not_Valid"))
    assert client.delete("ConfigMap", "zz", "team", missing_ok=True) is None


def test_server_side_apply_creates_then_updates(client: KubeClient, fake_kube) -> None:
    first = client.apply(cm("s", a="1"))
    second = client.apply(cm("s", a="2"))
    assert first["data"] == {"a": "1"} and second["data"] == {"a": "2"}
    managers = {m["manager"] for m in second["metadata"]["managedFields"]}
    assert managers == {"ood-k8s"}
    assert fake_kube.requests[-1].query["fieldManager"] == "ood-k8s"
    assert fake_kube.requests[-1].headers["content-type"] == "application/apply-patch+yaml"


def test_retries_honour_retry_after(client: KubeClient, fake_kube, slept) -> None:
    fake_kube.inject(status=429, retry_after=7, count=2)
    client.list("ConfigMap", "team")
    assert slept == [7.0, 7.0]
    fake_kube.inject(status=500, count=1)
    client.get_or_none("ConfigMap", "x", "team")
    assert len(slept) == 3 and slept[-1] <= 0.2


def test_gives_up_after_retries(client: KubeClient, fake_kube) -> None:
    fake_kube.inject(status=503, count=10)
    with pytest.raises(errors.Unavailable, match="answered 503"):
        client.list("ConfigMap", "team")
    assert client.round_trips == client.retries + 1


def test_post_is_not_retried_after_a_5xx(client: KubeClient, fake_kube) -> None:
    # The server may have acted on it: retrying could create a duplicate.
    fake_kube.inject(status=500, count=1)
    with pytest.raises(errors.Unavailable):
        client.create(cm("once"))
    assert client.round_trips == 1


def test_dropped_connection_is_retried_for_reads(client: KubeClient, fake_kube) -> None:
    fake_kube.inject(drop=True, count=1)
    assert client.list("ConfigMap", "team") == []
    assert client.round_trips == 2


def test_401_asks_the_token_source_for_a_fresh_token(fake_kube) -> None:
    asked: list[bool] = []

    def token(refresh: bool = False) -> str:
        asked.append(refresh)
        return fake_kube.token if refresh else "expired"

    c = KubeClient(fake_kube.url, token=token, ca_file=fake_kube.ca_file)
    assert "default" in [n["metadata"]["name"] for n in c.list("Namespace")]
    assert asked == [False, True]


def test_unauthorized_never_echoes_the_token(fake_kube) -> None:
    c = KubeClient(fake_kube.url, token="s3cr3t-token-value", ca_file=fake_kube.ca_file)
    with pytest.raises(errors.Unauthorized) as exc:
        c.list("Namespace")
    assert "s3cr3t" not in str(exc.value) and "log in again" in str(exc.value)


def test_unreachable_server_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = KubeClient(f"https://127.0.0.1:{port}", token="t", retries=2, sleep=lambda s: None)
    with pytest.raises(errors.Unavailable) as exc:
        c.list("Pod", "x")
    assert str(exc.value) == (f"cannot reach the Kubernetes API at https://127.0.0.1:{port}: connection refused: "
                              "the cluster may be down or unreachable; try again in a minute")


def test_untrusted_certificate(fake_kube) -> None:
    c = KubeClient(fake_kube.url, token="t", retries=0)
    with pytest.raises(errors.Unavailable, match="TLS certificate not trusted"):
        c.list("Pod", "x")


@pytest.mark.parametrize("name", ["../../secrets", "a/b", "..", ""])
def test_names_cannot_escape_their_path_segment(client: KubeClient, fake_kube, name: str) -> None:
    try:
        client.get("ConfigMap", name, "team")
    except (errors.NotFound, errors.Invalid):
        pass
    for r in fake_kube.requests:
        assert r.path.startswith("/api/v1/namespaces/team/configmaps/")
        assert r.path.count("/") == 6

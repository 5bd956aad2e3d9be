"""The fake API's watch is honest enough to test a reflector against: bookmarks, 410 Gone, drops, hangs."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

import pytest

from tests.fakekube import FakeKube

CMS = "/api/v1/namespaces/default/configmaps"


def cm(fk: FakeKube, name: str) -> dict[str, Any]:
    return fk.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})


def watch(fk: FakeKube, query: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPSConnection(fk.url.split("//")[1], context=ssl.create_default_context(cafile=fk.ca_file),
                                       timeout=5)
    conn.request("GET", f"{CMS}?watch=true&{query}", headers={"Authorization": f"Bearer {fk.token}"})
    return conn.getresponse()


def event(resp: http.client.HTTPResponse) -> dict[str, Any]:
    return json.loads(resp.readline())


def test_bookmarks_only_when_allowed_and_carry_the_current_version(fake_kube: FakeKube) -> None:
    fake_kube.bookmark_interval = 0.05
    rv = cm(fake_kube, "a")["metadata"]["resourceVersion"]
    resp = watch(fake_kube, f"resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=5")
    fake_kube.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})  # not a configmap
    bookmark = event(resp)
    assert bookmark["type"] == "BOOKMARK" and bookmark["object"]["kind"] == "ConfigMap"
    assert bookmark["object"]["metadata"] == {"resourceVersion": str(fake_kube.store.current_rv)}
    cm(fake_kube, "b")
    while (e := event(resp))["type"] == "BOOKMARK":
        pass
    assert (e["type"], e["object"]["metadata"]["name"]) == ("ADDED", "b")
    plain = watch(fake_kube, f"resourceVersion={fake_kube.store.current_rv}&timeoutSeconds=1")
    assert plain.read() == b"", "no BOOKMARK unless asked for; the stream ends at its timeout"


def test_a_compacted_version_is_410_gone(fake_kube: FakeKube) -> None:
    old = cm(fake_kube, "a")["metadata"]["resourceVersion"]
    cm(fake_kube, "b")
    current = fake_kube.compact()
    gone = event(watch(fake_kube, f"resourceVersion={old}&timeoutSeconds=5"))
    assert gone["type"] == "ERROR" and gone["object"]["code"] == 410 and gone["object"]["reason"] == "Expired"
    resp = watch(fake_kube, f"resourceVersion={current}&timeoutSeconds=5")
    cm(fake_kube, "c")
    assert event(resp)["object"]["metadata"]["name"] == "c", "the current version is still answerable"


def test_dropped_streams_end_abruptly(fake_kube: FakeKube) -> None:
    resp = watch(fake_kube, f"resourceVersion={fake_kube.store.current_rv}&timeoutSeconds=30")
    fake_kube.drop_watches()
    with pytest.raises((http.client.IncompleteRead, ConnectionError, ssl.SSLError, OSError)):
        resp.read()


def test_a_hung_server_accepts_and_answers_nothing(fake_kube: FakeKube) -> None:
    resp = watch(fake_kube, f"resourceVersion={fake_kube.store.current_rv}&timeoutSeconds=30")
    resp.fp.raw._sock.settimeout(0.2)  # type: ignore[union-attr]
    fake_kube.hang()
    cm(fake_kube, "quiet")
    with pytest.raises(TimeoutError):
        resp.readline()
    conn = http.client.HTTPSConnection(fake_kube.url.split("//")[1], timeout=0.2,
                                       context=ssl.create_default_context(cafile=fake_kube.ca_file))
    with pytest.raises(TimeoutError):
        conn.request("GET", "/version")
        conn.getresponse()
    fake_kube.unhang()

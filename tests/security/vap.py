"""ValidatingAdmissionPolicy evaluated as kube-apiserver does, with a real CEL implementation (cel-python).

The binding's and the policy's namespaceSelector and the policy's resourceRules decide whether a policy
applies; variables are evaluated in order, each visible to later ones as ``variables.<name>``; the
activation holds ``object`` (the pod or Service after the API server's defaulting), ``oldObject`` (on
UPDATE), ``namespaceObject`` and ``request`` (its ``operation``, ``subResource``,
``userInfo.username``).  A validation that
is false denies with its message (or messageExpression); one that fails to evaluate denies too
(failurePolicy: Fail).  A variable must never fail: :func:`admit` raises if one does.

Objects come from the real code paths: :func:`guards` renders ``ood-k8s cluster render``'s policies,
:func:`hook_namespace` the hook's own Namespace, :func:`session_pod` the adapter's own pod.
"""

from __future__ import annotations

from typing import Any

import celpy

from ood_k8s.cluster import manifests as cluster
from ood_k8s.render.render import Renderer

_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}
NOW = "2025-01-01T00:00:00Z"


def _program(expr: str) -> Any:
    if expr not in _PROGRAMS:
        _PROGRAMS[expr] = _ENV.program(_ENV.compile(expr))
    return _PROGRAMS[expr]


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


class Guard:
    """One rendered ValidatingAdmissionPolicy and its binding."""

    def __init__(self, policy: dict[str, Any], binding: dict[str, Any]) -> None:
        self.policy, self.binding = policy, binding

    def applies(self, namespace: dict[str, Any], resource: str, operation: str) -> bool:
        labels = namespace["metadata"].get("labels", {})
        spec = self.policy["spec"]
        return (_selected(self.binding["spec"]["matchResources"]["namespaceSelector"], labels)
                and _selected(spec["matchConstraints"]["namespaceSelector"], labels)
                and any(resource in r["resources"] and operation in r["operations"]
                        for r in spec["matchConstraints"]["resourceRules"]))

    def admit(self, obj: dict[str, Any], namespace: dict[str, Any], *, operation: str = "CREATE",
              resource: str = "", old: dict[str, Any] | None = None, username: str = "ood:alice") -> list[str]:
        """Denial messages; empty: admitted.  ``username``: who the API server says sent it (a portal user)."""
        resource = resource or {"Pod": "pods", "Service": "services"}[obj["kind"]]
        if not self.applies(namespace, resource, operation):
            return []
        _, _, sub = resource.partition("/")
        base = {"object": celpy.json_to_cel(obj), "namespaceObject": celpy.json_to_cel(namespace),
                "oldObject": celpy.json_to_cel(old) if old is not None else celpy.celtypes.BoolType(False),
                "request": celpy.json_to_cel({"operation": operation, "subResource": sub,
                                              "userInfo": {"username": username}})}
        variables: dict[Any, Any] = {}
        for var in self.policy["spec"].get("variables", []):
            value = _program(var["expression"]).evaluate({**base, "variables": celpy.celtypes.MapType(variables)})
            if isinstance(value, celpy.CELEvalError):
                raise AssertionError(f"variable {var['name']} failed: {value}")
            variables[celpy.celtypes.StringType(var["name"])] = value
        activation = {**base, "variables": celpy.celtypes.MapType(variables)}
        denied = []
        for v in self.policy["spec"]["validations"]:
            try:
                ok = _program(v["expression"]).evaluate(activation)
            except celpy.CELEvalError as exc:
                denied.append(f"error: {exc}")
                continue
            if ok is not True and ok != celpy.celtypes.BoolType(True):
                denied.append(str(_program(v["messageExpression"]).evaluate(activation))
                              if "messageExpression" in v else v["message"])
        return denied


def guards(cfg: Any) -> dict[str, Guard]:
    """Policy name -> Guard, from ``cluster render``'s objects (schema validation is test_cluster's)."""
    objs = cluster.objects(cfg, Renderer(None, validate=False))
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    return {name: Guard(o, by["ValidatingAdmissionPolicyBinding", name])
            for (kind, name), o in by.items() if kind == "ValidatingAdmissionPolicy"}


def pod_guard(cfg: Any) -> Guard:
    return guards(cfg)[cluster.POLICY_NAME]


def service_guard(cfg: Any) -> Guard:
    return guards(cfg)[cluster.SERVICE_POLICY_NAME]


def user_objects(cfg: Any, ident: Any) -> list[dict[str, Any]]:
    """What the hook applies for ``ident`` (users.desired.desired_objects)."""
    from ood_k8s.users import desired

    return desired.desired_objects(cfg, ident, now=NOW, renderer=Renderer(None, validate=False))


def hook_namespace(cfg: Any, ident: Any) -> dict[str, Any]:
    """The hook's Namespace as the API server stores it (with the name label it adds)."""
    ns = next(o for o in user_objects(cfg, ident) if o["kind"] == "Namespace")
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
    return ns


def session_pod(cfg: Any, ident: Any, profile: str = "cpu", **native: Any) -> dict[str, Any]:
    """The adapter's own pod for ``profile`` (submit's real path: resolve, then objects.pod)."""
    from ood_k8s.sessions import objects
    from ood_k8s.sessions.request import Script
    from ood_k8s.sessions.resolve import resolve

    script = Script.from_dict({"content": "jupyter lab", "job_name": "jupyter", "wall_time": 3600,
                               "native": {"profile": profile, **native}})
    return objects.pod(resolve(script, cfg, ident), "jupyter-0a1b2c3d")


def service_objects(cfg: Any, ident: Any, profile: str = "cpu") -> list[dict[str, Any]]:
    """Every object submit makes for an app with a port (pod, Service in nodeport mode, Secret, ConfigMap)."""
    from ood_k8s.sessions import objects
    from ood_k8s.sessions.request import Script
    from ood_k8s.sessions.resolve import resolve

    script = Script.from_dict({"content": "jupyter lab", "job_name": "jupyter", "wall_time": 3600,
                               "native": {"profile": profile, "container": {"name": "jupyter", "port": 8888}}})
    return objects.build(resolve(script, cfg, ident), "jupyter-0a1b2c3d", "uid-1", {"password": "x"})

"""Defaulting the real API server applies on every write (SetDefaults_* in
pkg/apis/core/v1/defaults.go) plus the canonical re-serialisation of quantities.

Applied to creates *and* updates: the real server defaults the decoded request
body, so a client that PUTs a spec without e.g. terminationGracePeriodSeconds
does not trip the pod-immutability check. Only defaults a client may look at
are modelled.
"""

from __future__ import annotations

import base64
from typing import Any

from . import quantity


def _canonical_resources(res: dict[str, Any]) -> None:
    for part in ("limits", "requests"):
        values = res.get(part)
        if isinstance(values, dict):
            for k, v in list(values.items()):
                try:
                    values[k] = quantity.canonical(v)
                except quantity.QuantityError:
                    pass  # validation reports it


def _image_pull_policy(image: str) -> str:
    # SetDefaults_Container: ":latest" or no tag -> Always, otherwise IfNotPresent.
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_container(c: dict[str, Any]) -> None:
    if not isinstance(c, dict):
        return
    c.setdefault("resources", {})
    res = c["resources"]
    if isinstance(res, dict):
        # SetDefaults_Pod: requests default to limits for every limited resource.
        limits = res.get("limits") or {}
        if limits:
            requests = res.setdefault("requests", {})
            for k, v in limits.items():
                requests.setdefault(k, v)
        _canonical_resources(res)
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if c.get("image"):
        c.setdefault("imagePullPolicy", _image_pull_policy(str(c["image"])))
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for e in c.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("fieldRef") if isinstance(e, dict) else None
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    # The ServiceAccount admission plugin fills both the field and its deprecated alias.
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            default_container(c)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict) and not any(k != "name" for k in v):
            v["emptyDir"] = {}  # a volume without source is an emptyDir
        for src in ("secret", "configMap"):
            if isinstance(v, dict) and isinstance(v.get(src), dict):
                v[src].setdefault("defaultMode", 420)
    for t in spec.get("tolerations") or []:
        if isinstance(t, dict) and "operator" not in t and "key" in t:
            t["operator"] = "Equal"


def qos_class(spec: dict[str, Any]) -> str:
    """v1qos.GetPodQOS, over cpu and memory only."""
    requests: dict[str, bool] = {}
    limits: dict[str, bool] = {}
    guaranteed = True
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    for c in containers:
        res = c.get("resources") or {}
        req = {
            k: v for k, v in (res.get("requests") or {}).items() if k in ("cpu", "memory") and quantity.value_of(v) != 0
        }
        lim = {
            k: v for k, v in (res.get("limits") or {}).items() if k in ("cpu", "memory") and quantity.value_of(v) != 0
        }
        requests.update(dict.fromkeys(req, True))
        limits.update(dict.fromkeys(lim, True))
        if set(lim) != {"cpu", "memory"}:
            guaranteed = False
        for k, v in req.items():
            if k in lim and quantity.value_of(lim[k]) != quantity.value_of(v):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def default_object(plural: str, obj: dict[str, Any]) -> None:
    """Defaults for the main resource (idempotent)."""
    if plural == "pods":
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_pod_spec(spec)
    elif plural == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p:
                    p.setdefault("targetPort", p["port"])
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
    elif plural == "namespaces":
        name = (obj.get("metadata") or {}).get("name")
        if name:
            # Since 1.21 every namespace carries an immutable label with its own name.
            obj.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif plural == "secrets":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif plural == "resourcequotas":
        hard = (obj.get("spec") or {}).get("hard")
        if isinstance(hard, dict):
            for k, v in list(hard.items()):
                try:
                    hard[k] = quantity.canonical(v)
                except quantity.QuantityError:
                    pass
    elif plural == "persistentvolumeclaims":
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        _canonical_resources(spec.get("resources") or {})
    elif plural == "priorityclasses":
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def initial_status(plural: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """What PrepareForCreate puts into .status (the request's own status is dropped)."""
    if plural == "pods":
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    if plural == "namespaces":
        return {"phase": "Active"}
    if plural == "services":
        return {"loadBalancer": {}}
    if plural == "persistentvolumeclaims":
        return {"phase": "Pending"}
    if plural == "persistentvolumes":
        return {"phase": "Pending"}
    if plural == "resourcequotas":
        return {}
    return None

"""The API semantics (create/get/list/update/patch/delete/deletecollection), independent of HTTP.

Every public method takes the already-routed request pieces and returns
``(http_status, body_dict)`` or raises :class:`ApiError`. All state changes
happen under ``store.lock`` so a request is atomic, like an etcd transaction.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import defaults, errors, lease, managed, patch, quota, validation
from .errors import bad_request
from .registry import BY_GVK, BY_PLURAL, ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .store import Store, now_rfc3339, ordered

Result = tuple[int, dict[str, Any]]

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String: no vowels, no confusables
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass
class Ctx:
    """Per-request facts the semantics need."""

    user: str | None = None
    user_agent: str = ""
    query: dict[str, str] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    @property
    def manager(self) -> str:
        """fieldManager, else the User-Agent up to its first "/" (prefixFromUserAgent)."""
        m = self.query.get("fieldManager")
        if m:
            return m
        return "".join(ch for ch in self.user_agent.split("/")[0] if ch.isprintable())[:128]


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def _strip_list_item(obj: dict[str, Any]) -> dict[str, Any]:
    """Items of a real list response carry no apiVersion/kind."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


class Api:
    def __init__(self, store: Store, authorize: Callable[[str, str, str, str | None], bool]) -> None:
        self.store = store
        self.authorize = authorize
        # pods whose kubelet already confirmed termination (fk.finish_deletion) but that still had finalizers
        self._kubelet_done: set[tuple[str, str]] = set()
        self._ips: set[str] = set()
        self._node_ports: set[int] = set()

    # ------------------------------------------------------------------ helpers

    def _decode_body(self, raw: bytes, yaml_ok: bool = False) -> dict[str, Any]:
        if not raw.strip():
            raise bad_request("the body of the request was empty")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            if not yaml_ok:
                raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
            try:
                body = yaml.safe_load(raw)
            except yaml.YAMLError as yexc:
                raise bad_request(f"error converting YAML to JSON: {yexc}") from None
        if not isinstance(body, dict):
            raise bad_request("couldn't get version/kind; json parse error: expected an object")
        return body

    def _check_type(self, rt: ResourceType, body: dict[str, Any]) -> None:
        """The decoder defaults a missing apiVersion/kind from the endpoint and rejects others."""
        kind = body.get("kind") or rt.kind
        api_version = body.get("apiVersion") or rt.api_version
        body["kind"], body["apiVersion"] = kind, api_version
        if (api_version, kind) == (rt.api_version, rt.kind):
            why = lease.decode_problem(body) if rt.plural == "leases" else None
            if why:
                raise bad_request(f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {why}')
            return
        version = api_version.split("/")[-1]
        other = BY_GVK.get((api_version, kind))
        if other is not None:
            why = f"converting ({version}.{kind}) to ({rt.group.split('.')[0] or 'core'}.{rt.kind}): unknown conversion"
        else:
            why = (
                f'no kind "{kind}" is registered for version "{api_version}" in scheme '
                '"k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"'
            )
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {rt.kind}: {why}')

    def _check_namespace(self, rt: ResourceType, namespace: str | None, body: dict[str, Any]) -> None:
        meta = _meta(body)
        if not rt.namespaced:
            meta.pop("namespace", None)  # cluster-scoped: a namespace in the body is cleared
            return
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace

    def _namespace_admission(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        """NamespaceLifecycle admission: the namespace must exist and not be terminating."""
        if not rt.namespaced or not namespace:
            return
        ns = self.store.get("namespaces", None, namespace)
        if ns is None:
            raise errors.not_found(BY_PLURAL["namespaces"], namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating":
            raise errors.forbidden_error(
                rt.group,
                rt.plural,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _pod_admission(self, obj: dict[str, Any]) -> None:
        """Priority admission: resolve priorityClassName into spec.priority."""
        spec = obj.get("spec") or {}
        pc_name = spec.get("priorityClassName")
        name = _meta(obj).get("name", "")
        if pc_name:
            pc = self.store.get("priorityclasses", None, pc_name)
            if pc is None:
                raise errors.forbidden_error("", "pods", name, f"no PriorityClass with name {pc_name} was found")
            spec["priority"] = pc.get("value", 0)
            spec.setdefault("preemptionPolicy", pc.get("preemptionPolicy", "PreemptLowerPriority"))
        else:
            spec.setdefault("priority", 0)

    def _allocate_service(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        if not spec.get("clusterIP"):
            while True:
                ip = f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"
                if ip not in self._ips:
                    break
            spec["clusterIP"] = ip
        self._ips.add(spec["clusterIP"])
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for p in spec.get("ports") or []:
                if not p.get("nodePort"):
                    port = next(n for n in range(30000, 32768) if n not in self._node_ports)
                    p["nodePort"] = port
                self._node_ports.add(p["nodePort"])

    def _ensure_rv_int(self, rv: Any) -> None:
        if rv is not None and not str(rv).isdigit():
            raise bad_request(f'invalid resource version: strconv.ParseUint: parsing "{rv}": invalid syntax')

    # ------------------------------------------------------------------ read

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Result:
        obj = self.store.get(rt.plural, namespace, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return 200, obj

    def list(self, rt: ResourceType, namespace: str | None, query: dict[str, str]) -> Result:
        label_pred = parse_label_selector(query.get("labelSelector"))
        field_pred = parse_field_selector(rt.plural, query.get("fieldSelector"))
        with self.store.lock:
            items = [o for o in self.store.list(rt.plural, namespace) if label_pred(o) and field_pred(o)]
            rv = str(self.store.current_rv)
        meta: dict[str, Any] = {"resourceVersion": rv}
        start = 0
        cont = query.get("continue")
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                start_key = tuple(token["start"])
                meta["resourceVersion"] = token["rv"]
            except (ValueError, KeyError, TypeError):
                raise bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
                ) from None
            start = next((i for i, o in enumerate(items) if _key(o) > start_key), len(items))  # type: ignore[operator]
        limit = int_param(query, "limit")
        page = items[start:]
        if limit > 0 and len(page) > limit:
            page = page[:limit]
            token = {"rv": meta["resourceVersion"], "start": list(_key(page[-1]))}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
            meta["remainingItemCount"] = len(items) - start - limit
        return 200, {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [_strip_list_item(o) for o in page],
        }

    # ------------------------------------------------------------------ create

    def create(self, rt: ResourceType, namespace: str | None, raw: bytes, ctx: Ctx) -> Result:
        body = self._decode_body(raw)
        if rt.plural == "selfsubjectaccessreviews":
            return self._self_subject_access_review(body, ctx)
        self._check_type(rt, body)
        self._check_namespace(rt, namespace, body)
        with self.store.lock:
            return 201, self._create(rt, namespace, body, ctx, track=True)

    def _create(
        self, rt: ResourceType, namespace: str | None, body: dict[str, Any], ctx: Ctx, track: bool
    ) -> dict[str, Any]:
        meta = _meta(body)
        self._namespace_admission(rt, namespace, meta.get("name") or "")
        if not meta.get("name") and meta.get("generateName"):
            base = meta["generateName"][:58]
            meta["name"] = base + "".join(random.choice(_GENERATE_ALPHABET) for _ in range(5))
        name = meta.get("name") or ""
        # System fields are the server's; whatever the client sent is dropped (BeforeCreate).
        for f in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ):
            meta.pop(f, None)
        defaults.default_object(rt.plural, body)
        errs = validation.validate_create(rt, body)
        if errs:
            raise errors.invalid_for(rt, name, errs)
        if rt.plural == "pods":
            self._pod_admission(body)
            self._quota_admission(body, namespace or "", name)
        if self.store.get(rt.plural, namespace, name) is not None:
            raise errors.already_exists(rt, name)
        status = defaults.initial_status(rt.plural, body)
        if status is not None:
            body["status"] = status
        elif rt.has_status:
            body.pop("status", None)
        if rt.plural == "services":
            self._allocate_service(body)
        if rt.plural == "namespaces":
            body.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        if track:
            managed.track_update(
                None, body, ctx.manager, rt.api_version, now_rfc3339(), status_subresource=rt.has_status
            )
        if ctx.dry_run:
            return ordered(body)
        stored = self.store.put(rt.plural, body, "ADDED")
        if rt.plural == "namespaces":
            self._namespace_created(stored)
        if rt.plural in ("pods", "resourcequotas"):
            self.refresh_quotas(namespace or "")
        return stored

    def _quota_admission(self, pod: dict[str, Any], namespace: str, name: str) -> None:
        pods = self.store.list("pods", namespace)
        for q in self.store.list("resourcequotas", namespace):
            why = quota.admission_error(q, pod, pods)
            if why:
                raise errors.forbidden_error("", "pods", name, why)

    def refresh_quotas(self, namespace: str) -> None:
        """The quota controller: keep status.hard/used of every quota in the namespace current."""
        pods = self.store.list("pods", namespace)
        for q in self.store.list("resourcequotas", namespace):
            new = quota.status_for(q, pods)
            if q.get("status") != new:
                q["status"] = new
                self.store.put("resourcequotas", q, "MODIFIED")

    def _namespace_created(self, ns: dict[str, Any]) -> None:
        # The serviceaccount controller gives every namespace a "default" ServiceAccount.
        name = ns["metadata"]["name"]
        if self.store.get("serviceaccounts", name, "default") is None:
            sa = {
                "kind": "ServiceAccount",
                "apiVersion": "v1",
                "metadata": {
                    "name": "default",
                    "namespace": name,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": now_rfc3339(),
                },
            }
            self.store.put("serviceaccounts", sa, "ADDED")

    def _self_subject_access_review(self, body: dict[str, Any], ctx: Ctx) -> Result:
        spec = body.get("spec") or {}
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if ra:
            resource = ra.get("resource", "") + (f"/{ra['subresource']}" if ra.get("subresource") else "")
            allowed = bool(self.authorize(ctx.user or "", ra.get("verb", ""), resource, ra.get("namespace") or None))
        elif nra:
            allowed = bool(self.authorize(ctx.user or "", nra.get("verb", ""), nra.get("path", ""), None))
        else:
            raise errors.invalid_object(
                "SelfSubjectAccessReview",
                "authorization.k8s.io",
                "",
                [
                    errors.required(
                        "spec.resourceAttributes",
                        "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    )
                ],
            )
        status: dict[str, Any] = {"allowed": allowed}
        if not allowed:
            status["reason"] = ""
        return 201, {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {k: v for k, v in status.items() if v != ""},
        }

    # ------------------------------------------------------------------ update

    def update(
        self, rt: ResourceType, namespace: str | None, name: str, raw: bytes, ctx: Ctx, subresource: str = ""
    ) -> Result:
        body = self._decode_body(raw)
        self._check_type(rt, body)
        self._check_namespace(rt, namespace, body)
        meta = _meta(body)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        meta["name"] = name
        self._ensure_rv_int(meta.get("resourceVersion"))
        with self.store.lock:
            old = self.store.get(rt.plural, namespace, name)
            if old is None:
                if rt.create_on_update and not subresource:
                    return 201, self._create(rt, namespace, body, ctx, track=True)
                raise errors.not_found(rt, name)
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name, errors.OPTIMISTIC_LOCK_MSG)
            uid = meta.get("uid")
            if uid and uid != old["metadata"]["uid"]:
                why = f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old['metadata']['uid']}"
                raise errors.conflict(rt, name, why)
            new = self._merge_for_write(rt, old, body, subresource)
            managed.track_update(
                old, new, ctx.manager, rt.api_version, now_rfc3339(), subresource, status_subresource=rt.has_status
            )
            return 200, self._write(rt, old, new, ctx, subresource)

    def _merge_for_write(
        self, rt: ResourceType, old: dict[str, Any], body: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """What the strategy's PrepareForUpdate makes of a request body."""
        om = old["metadata"]
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = body.get("status", {})
            for f in ("labels", "annotations"):
                if f in _meta(body):
                    new["metadata"][f] = _meta(body)[f]
            if "managedFields" in _meta(body):
                new["metadata"]["managedFields"] = _meta(body)["managedFields"]
            else:
                new["metadata"].pop("managedFields", None)
            if rt.plural == "pods":
                new["status"]["qosClass"] = (old.get("status") or {}).get("qosClass")
            return new
        if subresource == "finalize":
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = (body.get("spec") or {}).get("finalizers") or []
            new["metadata"].pop("managedFields", None)
            return new
        new = copy.deepcopy(body)
        nm = _meta(new)
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if f in om:
                nm[f] = om[f]
            else:
                nm.pop(f, None)
        if rt.namespaced:
            nm["namespace"] = om.get("namespace")
        if rt.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if rt.plural == "namespaces":
            new.setdefault("spec", {})["finalizers"] = (old.get("spec") or {}).get("finalizers", [])
        defaults.default_object(rt.plural, new)
        if rt.plural == "services":
            spec, ospec = new.setdefault("spec", {}), old.get("spec") or {}
            # The service registry keeps allocated values a client left out.
            for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if f in ospec and f not in spec:
                    spec[f] = ospec[f]
            old_ports = {p.get("port"): p for p in ospec.get("ports") or []}
            for p in spec.get("ports") or []:
                if "nodePort" not in p and old_ports.get(p.get("port"), {}).get("nodePort"):
                    p["nodePort"] = old_ports[p["port"]]["nodePort"]
        if rt.plural == "pods":
            spec, ospec = new.setdefault("spec", {}), old.get("spec") or {}
            # The Priority admission plugin keeps what it set on create (it does not touch nodeName).
            for f in ("priority", "preemptionPolicy"):
                if f in ospec and f not in spec:
                    spec[f] = ospec[f]
        return new

    def _write(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], ctx: Ctx, subresource: str = ""
    ) -> dict[str, Any]:
        """Validate and store an update of ``old`` to ``new`` (no-op updates are not written)."""
        name = old["metadata"]["name"]
        errs = validation.validate_update(rt, old, new)
        if errs:
            raise errors.invalid_for(rt, name, errs)
        if rt.has_generation and not subresource and old.get("spec") != new.get("spec"):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if _same(old, new):
            return old  # the real server skips the etcd write: same resourceVersion
        if ctx.dry_run:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return ordered(new)
        stored = self.store.put(rt.plural, new, "MODIFIED")
        if rt.plural in ("pods", "resourcequotas"):
            self.refresh_quotas(stored["metadata"].get("namespace") or "")
        return self._maybe_finalize(rt, stored)

    def _maybe_finalize(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """An object marked for deletion goes away once nothing holds it any more."""
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return obj
        if rt.plural == "namespaces":
            if not (obj.get("spec") or {}).get("finalizers"):
                self._remove(rt, obj, "Background")
            return obj
        key = (meta.get("namespace") or "", meta["name"])
        if rt.plural == "pods" and meta.get("deletionGracePeriodSeconds", 0) > 0 and key not in self._kubelet_done:
            return obj  # still waiting for the kubelet
        self._remove(rt, obj, "Background")
        return obj

    # ------------------------------------------------------------------ patch

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        raw: bytes,
        content_type: str,
        ctx: Ctx,
        subresource: str = "",
    ) -> Result:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype not in PATCH_TYPES:
            raise errors.unsupported_media_type(ctype, list(PATCH_TYPES))
        is_apply = ctype == "application/apply-patch+yaml"
        # PatchOptions validation comes before anything else, with its own Invalid error.
        opt_errs = []
        if is_apply and not ctx.query.get("fieldManager"):
            opt_errs.append(errors.required("fieldManager", "is required for apply patch"))
        if not is_apply and "force" in ctx.query:
            opt_errs.append(errors.forbidden("force", "may not be specified for non-apply patch"))
        if len(ctx.query.get("fieldManager", "")) > 128:
            opt_errs.append(
                errors.FieldError("FieldValueTooLong", "fieldManager", detail="must have at most 128 bytes")
            )
        if opt_errs:
            raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", opt_errs)
        if is_apply:
            return self._apply(rt, namespace, name, raw, ctx, subresource)
        try:
            patch_body = json.loads(raw)
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
        with self.store.lock:
            old = self.store.get(rt.plural, namespace, name)
            if old is None:
                raise errors.not_found(rt, name)
            if ctype == "application/json-patch+json":
                patched = patch.json_patch(old, patch_body)
            elif ctype == "application/merge-patch+json":
                if not isinstance(patch_body, dict):
                    raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                patched = patch.merge_patch(old, patch_body)
            else:
                if not isinstance(patch_body, dict):
                    raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                patched = patch.strategic_merge_patch(old, patch_body)
            if not isinstance(patched, dict):
                raise bad_request("the patch produced something that is not an object")
            self._check_type(rt, patched)
            pm = _meta(patched)
            if pm.get("name") != name:
                raise bad_request(
                    f"the name of the object ({pm.get('name')}) does not match the name on the URL ({name})"
                )
            if rt.namespaced and pm.get("namespace") != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            # A resourceVersion in the patch is a precondition.
            rv = pm.get("resourceVersion")
            self._ensure_rv_int(rv)
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name, errors.OPTIMISTIC_LOCK_MSG)
            patch_meta = patch_body.get("metadata") if isinstance(patch_body, dict) else None
            if not (isinstance(patch_meta, dict) and "managedFields" in patch_meta):
                pm.pop("managedFields", None)  # tracking starts from the live entries
            new = self._merge_for_write(rt, old, patched, subresource)
            managed.track_update(
                old, new, ctx.manager, rt.api_version, now_rfc3339(), subresource, status_subresource=rt.has_status
            )
            return 200, self._write(rt, old, new, ctx, subresource)

    def _apply(
        self, rt: ResourceType, namespace: str | None, name: str, raw: bytes, ctx: Ctx, subresource: str
    ) -> Result:
        applied = self._decode_body(raw, yaml_ok=True)
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("invalid object type: /, Kind=")
        self._check_type(rt, applied)
        meta = _meta(applied)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        meta["name"] = name
        self._check_namespace(rt, namespace, applied)
        if meta.get("namespace") is None:
            meta.pop("namespace", None)
        _canonicalize_applied(rt, applied)
        force = ctx.query.get("force") == "true"
        with self.store.lock:
            old = self.store.get(rt.plural, namespace, name)
            if old is None:
                if subresource:
                    raise errors.not_found(rt, name)
                body = managed.server_side_apply(
                    None, applied, ctx.manager, rt.api_version, force, now_rfc3339(), status_subresource=rt.has_status
                )
                if rt.has_status:
                    body.pop("status", None)
                return 201, self._create(rt, namespace, body, ctx, track=False)
            merged = managed.server_side_apply(
                old,
                applied,
                ctx.manager,
                rt.api_version,
                force,
                now_rfc3339(),
                subresource,
                status_subresource=rt.has_status,
            )
            new = self._merge_for_write(rt, old, merged, subresource)
            if subresource:
                new["metadata"]["managedFields"] = merged["metadata"]["managedFields"]
            return 200, self._write(rt, old, new, ctx, subresource)

    # ------------------------------------------------------------------ delete

    def _delete_options(self, raw: bytes, query: dict[str, str]) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if raw and raw.strip():
            try:
                opts = json.loads(raw)
            except ValueError as exc:
                raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
            if not isinstance(opts, dict):
                raise bad_request("DeleteOptions must be an object")
        if "gracePeriodSeconds" in query:
            opts["gracePeriodSeconds"] = int_param(query, "gracePeriodSeconds")
        if "propagationPolicy" in query:
            opts["propagationPolicy"] = query["propagationPolicy"]
        if "orphanDependents" in query:
            opts["orphanDependents"] = query["orphanDependents"] == "true"
        if query.get("dryRun") == "All":
            opts["dryRun"] = ["All"]
        policy = opts.get("propagationPolicy")
        errs = []
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            errs.append(
                errors.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])
            )
        if "orphanDependents" in opts and policy is not None:
            errs.append(
                errors.invalid(
                    "propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set"
                )
            )
        grace = opts.get("gracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or grace < 0):
            errs.append(errors.invalid("gracePeriodSeconds", grace, "must be greater than or equal to 0"))
        if errs:
            raise errors.invalid_object("DeleteOptions", "meta.k8s.io", "", errs)
        if policy is None:
            policy = "Orphan" if opts.get("orphanDependents") else "Background"
        opts["propagationPolicy"] = policy
        return opts

    def delete(self, rt: ResourceType, namespace: str | None, name: str, raw: bytes, ctx: Ctx) -> Result:
        opts = self._delete_options(raw, ctx.query)
        with self.store.lock:
            obj = self.store.get(rt.plural, namespace, name)
            if obj is None:
                raise errors.not_found(rt, name)
            return self._delete(rt, obj, opts)

    def _delete(self, rt: ResourceType, obj: dict[str, Any], opts: dict[str, Any]) -> Result:
        meta = obj["metadata"]
        name = meta["name"]
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(
                rt,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        dry = opts.get("dryRun") == ["All"]
        policy = opts["propagationPolicy"]
        now = now_rfc3339()

        if rt.plural == "namespaces":
            if name in ("default", "kube-system", "kube-public"):
                raise errors.forbidden_error("", "namespaces", name, "this namespace may not be deleted")
            # Namespace deletion only marks it; the namespace controller (fk.finish_deletion) empties it.
            if meta.get("deletionTimestamp"):
                return 200, obj
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = now
            new.setdefault("status", {})["phase"] = "Terminating"
            if dry:
                return 200, new
            return 200, self.store.put(rt.plural, new, "MODIFIED")

        grace = 0
        if rt.plural == "pods":
            grace = self._pod_grace(obj, opts)
        gc_finalizer = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy)
        pending = bool(meta.get("finalizers")) or grace > 0
        if meta.get("deletionTimestamp"):
            # Already terminating: a shorter grace period may be set; grace 0 forces removal.
            if rt.plural == "pods" and grace == 0 and not meta.get("finalizers"):
                if dry:
                    return 200, obj
                return self._deleted_response(rt, self._remove(rt, obj, policy))
            if rt.plural == "pods" and 0 < grace < meta.get("deletionGracePeriodSeconds", grace + 1):
                obj["metadata"]["deletionGracePeriodSeconds"] = grace
                obj = obj if dry else self.store.put(rt.plural, obj, "MODIFIED")
            return 200, obj
        if pending or gc_finalizer:
            new = copy.deepcopy(obj)
            # deletionTimestamp is when the object *will* be gone: now + grace period.
            new["metadata"]["deletionTimestamp"] = now_rfc3339(grace)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            if rt.has_generation:
                new["metadata"]["generation"] = int(meta.get("generation", 1)) + 1
            if gc_finalizer:
                new["metadata"]["finalizers"] = [*list(meta.get("finalizers") or []), gc_finalizer]
            if dry:
                return 200, ordered(new)
            answer = self.store.put(rt.plural, new, "MODIFIED")
            if gc_finalizer:
                # The garbage collector's part, done synchronously: handle dependents, drop its finalizer.
                self._collect_dependents(meta["uid"], policy)
                current = self.store.get(rt.plural, meta.get("namespace"), name)
                if current is not None:
                    current["metadata"]["finalizers"] = [
                        f for f in current["metadata"]["finalizers"] if f != gc_finalizer
                    ]
                    if not current["metadata"]["finalizers"]:
                        del current["metadata"]["finalizers"]
                    self._maybe_finalize(rt, self.store.put(rt.plural, current, "MODIFIED"))
            return 200, answer
        if dry:
            return self._deleted_response(rt, obj)
        return self._deleted_response(rt, self._remove(rt, obj, policy))

    def _pod_grace(self, pod: dict[str, Any], opts: dict[str, Any]) -> int:
        """pod strategy CheckGracefulDelete: unscheduled or finished pods go at once."""
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        grace = opts.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if not spec.get("nodeName") or status.get("phase") in ("Failed", "Succeeded"):
            return 0
        return max(int(grace), 0)

    def _deleted_response(self, rt: ResourceType, obj: dict[str, Any]) -> Result:
        if rt.return_deleted_object:
            return 200, obj
        meta = obj["metadata"]
        return 200, errors.status_body(
            0,
            "",
            "",
            {"name": meta["name"], "group": rt.group, "kind": rt.plural, "uid": meta.get("uid")},
            status="Success",
        )

    def _remove(self, rt: ResourceType, obj: dict[str, Any], policy: str) -> dict[str, Any]:
        meta = obj["metadata"]
        if rt.plural == "namespaces":
            # The namespace controller empties a namespace before its finalizer goes.
            for r in BY_PLURAL.values():
                if r.namespaced:
                    for o in self.store.list(r.plural, meta["name"]):
                        self.store.remove(r.plural, meta["name"], o["metadata"]["name"])
                        self._collect_dependents(o["metadata"].get("uid", ""), "Background")
        removed = self.store.remove(rt.plural, meta.get("namespace"), meta["name"]) or obj
        self._kubelet_done.discard((meta.get("namespace") or "", meta["name"]))
        if rt.plural == "services":
            self._ips.discard((obj.get("spec") or {}).get("clusterIP", ""))
        self._collect_dependents(meta.get("uid", ""), policy)
        if rt.plural == "pods":
            self.refresh_quotas(meta.get("namespace") or "")
        return removed

    def _collect_dependents(self, uid: str, policy: str) -> None:
        """Garbage collection by ownerReferences (synchronous stand-in for the GC controller)."""
        if not uid:
            return
        live_uids = {o["metadata"].get("uid") for _, o in self.store.all_objects()}
        for plural, dep in self.store.all_objects():
            refs = dep["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid for r in refs):
                continue
            rt = BY_PLURAL[plural]
            if policy == "Orphan":
                rest = [r for r in refs if r.get("uid") != uid]
                if rest:
                    dep["metadata"]["ownerReferences"] = rest
                else:
                    del dep["metadata"]["ownerReferences"]
                self.store.put(plural, dep, "MODIFIED")
                continue
            if any(r.get("uid") != uid and r.get("uid") in live_uids for r in refs):
                continue  # another owner still exists
            current = self.store.get(plural, dep["metadata"].get("namespace"), dep["metadata"]["name"])
            if current is not None and not current["metadata"].get("deletionTimestamp"):
                self._delete(rt, current, {"propagationPolicy": "Background"})

    def deletecollection(self, rt: ResourceType, namespace: str | None, raw: bytes, ctx: Ctx) -> Result:
        opts = self._delete_options(raw, ctx.query)
        label_pred = parse_label_selector(ctx.query.get("labelSelector"))
        field_pred = parse_field_selector(rt.plural, ctx.query.get("fieldSelector"))
        with self.store.lock:
            items = [o for o in self.store.list(rt.plural, namespace) if label_pred(o) and field_pred(o)]
            for o in items:
                current = self.store.get(rt.plural, o["metadata"].get("namespace"), o["metadata"]["name"])
                if current is not None:
                    self._delete(rt, current, dict(opts))
            rv = str(self.store.current_rv)
        return 200, {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": rv},
            "items": [_strip_list_item(o) for o in items],
        }

    # ------------------------------------------------------------------ kubelet / controllers

    def finish_deletion(self, plural: str, namespace: str | None, name: str) -> None:
        rt = BY_PLURAL[plural]
        with self.store.lock:
            obj = self.store.get(plural, namespace, name)
            if obj is None:
                raise KeyError(f"{plural} {namespace}/{name} not found")
            if plural == "namespaces":
                self._remove(rt, obj, "Background")
                return
            if not obj["metadata"].get("deletionTimestamp"):
                raise ValueError(f"{plural} {namespace}/{name} is not being deleted")
            if plural == "pods":
                # The kubelet is done; finalizers other controllers put on the pod still hold it.
                self._kubelet_done.add((namespace or "", name))
                self._maybe_finalize(rt, obj)
            else:
                self._remove(rt, obj, "Background")  # the controllers behind its finalizers are done


def int_param(query: dict[str, str], name: str) -> int:
    raw = query.get(name) or "0"
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    m = obj["metadata"]
    return (m.get("namespace") or "", m["name"])


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(o: dict[str, Any]) -> dict[str, Any]:
        o = copy.deepcopy(o)
        o["metadata"].pop("resourceVersion", None)
        for e in o["metadata"].get("managedFields") or []:
            e.pop("time", None)
        return o

    return strip(old) == strip(new)


def _canonicalize_applied(rt: ResourceType, applied: dict[str, Any]) -> None:
    """Quantities compare canonically; only the conversion, no defaulting (the applier owns what it sent)."""
    if rt.plural != "pods":
        return
    for key in ("containers", "initContainers"):
        for c in (applied.get("spec") or {}).get(key) or []:
            if isinstance(c, dict) and isinstance(c.get("resources"), dict):
                defaults._canonical_resources(c["resources"])

"""fakekube – an honest fake Kubernetes API server for tests.

Tests talk to it over real HTTP(S) on 127.0.0.1, with the real wire format:
Status objects, reasons, codes and messages are those of kube-apiserver v1.33.

    from tests.fakekube import FakeKube

    with FakeKube(tls=True, token="test-token") as fk:
        fk.write_kubeconfig("/tmp/kc")           # works with the real kubectl
        ...

Modules: ``server`` (HTTP, auth, faults, watch), ``api`` (verb semantics),
``store`` (objects, resourceVersions, watch log), ``validation`` / ``defaults``
(per-kind rules), ``selectors``, ``patch`` (merge / JSON / strategic),
``managed`` (managedFields and server-side apply), ``discovery``, ``certs``.

Choices and simplifications (see also the docstrings of each module):

* Like a fresh cluster, it starts with the namespaces default, kube-system,
  kube-public and kube-node-lease; every namespace gets a "default"
  ServiceAccount (the serviceaccount controller's job).
* Namespace deletion marks the namespace Terminating (creates in it get 403);
  it disappears, with all its content, only on
  ``fk.finish_deletion("namespaces", None, name)`` – never automatically, so
  tests can observe the Terminating phase deterministically. default,
  kube-system and kube-public cannot be deleted (403, as for real).
* A pod with ``spec.nodeName`` is deleted gracefully (deletionTimestamp =
  now + grace, object stays) until ``fk.finish_deletion("pods", ns, name)`` or
  a delete with gracePeriodSeconds=0; unscheduled or finished pods go at once.
  Objects with metadata.finalizers stay until the finalizers are removed.
* Garbage collection (ownerReferences by uid) runs synchronously. Foreground
  and Orphan deletes answer with the object carrying the GC finalizer, as the
  real server does, but the collector's work is already done when the answer
  arrives.
* Authentication: a bearer token through ``fk.authenticate``; requests without
  credentials are anonymous and may only read /healthz, /readyz, /livez and
  /version. ``fk.authorize`` sees resource requests only: discovery, OpenAPI
  and SelfSubjectAccessReview creation are open to every authenticated user
  (system:discovery / system:basic-user in a real cluster).
* Validation covers metadata (names, labels, annotations, ownerReferences),
  pods (containers, images, ports, volume mounts, resources incl. extended
  resources such as nvidia.com/gpu, scheduling gates, update immutability),
  services, configmaps/secrets, role bindings' roleRef; other kinds are stored
  as sent. fieldValidation=Strict is accepted but unknown fields are kept.
* Besides the core kinds it serves the cluster-scoped ones a site installs:
  ValidatingAdmissionPolicy(Binding) (admissionregistration.k8s.io/v1),
  CSIDriver (storage.k8s.io/v1) and Karpenter v1's NodePool and EC2NodeClass;
  and coordination.k8s.io/v1 Lease (leader election: MicroTime decoding and
  the spec's validation in ``lease.py``; updates compare-and-swap on
  metadata.resourceVersion like every kind).
  ``fk.uninstall("nodepools", "ec2nodeclasses")`` makes a cluster without them
  (404 and gone from discovery, like CRDs that were never installed).
* Admission: NamespaceLifecycle, Priority (priorityClassName -> priority),
  the ServiceAccount default, and ResourceQuota for pods (quotas without
  scopes; status.hard/used kept current like the quota controller does). No
  LimitRange defaulting, no webhooks.
* Server-side apply is schema-light: lists are atomic unless keyed in
  ``schema.py``; Update entries list leaves only (no "." for maps).
* JSON, YAML and (for SelfSubjectAccessReview, which kubectl sends that way)
  protobuf request bodies; answers are always JSON. No Table output (kubectl
  falls back to NAME/AGE columns), no aggregated discovery (clients fall back
  to the legacy documents), a minimal OpenAPI v3 (enough for kubectl to use
  server-side field validation).
* Watch (``?watch=true``) streams ADDED/MODIFIED/DELETED events filtered by the
  selectors on the event's object (no synthetic DELETED when an object stops
  matching); sendInitialEvents=true ends the initial burst with a BOOKMARK.
  From a resourceVersion it sends what came after it; one older than the watch
  log (``fk.compact()``, as etcd compaction) gets an ERROR event with 410
  Expired.  allowWatchBookmarks=true adds a BOOKMARK with the current
  resourceVersion every ``fk.bookmark_interval`` seconds of quiet (the real
  server: about a minute).  ``fk.drop_watches()`` cuts every open stream;
  ``fk.hang()`` makes a hung server (requests wait unanswered, streams go
  silent) until ``fk.unhang()``.
"""
from __future__ import annotations

from .fake import FakeKube
from .server import RecordedRequest

__all__ = ["FakeKube", "RecordedRequest"]

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""OOD's job-adapter contract on the Kubernetes API (REFERENCE §1): submit, info, delete, hold, release.

One implementation behind every way in (Python, ``ood-k8s job``, ``ood-k8s-psij``, the PSI/J
executor).  API round trips per call, the figures OOD's polling cost depends on:

* ``submit``: Pod, Secret, ConfigMap (+ Service with ``connection: nodeport``) -- 3, at most 4.
  The Pod is created first so children can name its uid in an ownerReference; the ConfigMap is
  created last because the container cannot start before its volume exists, and by then the
  Secret it reads its password from exists too -- so no setup gate and no extra patch is needed.
  A failure half-way deletes the Pod, and the garbage collector takes whatever children exist.
  With a NodePort Service the Secret also carries the node port (key ``port``), which the container
  reads as ``OOD_K8S_CONNECT_PORT`` (its node arrives as ``OOD_K8S_CONNECT_HOST``), so the app can
  write the address the portal reaches it by.
* ``info``: the Pod, plus the Secret once the app is ready (connection info), or the Pod's events
  while it waits without a decisive cause -- at most 2.
* ``info_all``: one list.  ``delete``: one call (children go with their owner).
* ``extend``: the Pod, then one patch of its deadline (:mod:`ood_k8s.sessions.extend`) -- 2.
"""

import base64
import math
import os
import time
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Union

from ood_k8s.config import Config
from ood_k8s.core import names, vocab
from ood_k8s.core.errors import Forbidden, KubeError, NotFound, OodK8sError, Unavailable, UsageError
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.sessions import lifetime, status

_NOT_GPU = ("cpu", "memory", "ephemeral-storage", "pods")


class Info(NamedTuple):
    """OOD's ``OodCore::Job::Info``; ``native`` carries the reason and, once ready, connection info.

    A NamedTuple rather than a dataclass: every OOD status poll builds one, and importing
    dataclasses would cost that process more than the API requests do.
    """

    id: str
    status: str
    native: dict[str, Any]
    allocated_nodes: Sequence[Mapping[str, Any]] = ()
    submit_host: Optional[str] = None
    job_name: Optional[str] = None
    job_owner: Optional[str] = None
    accounting_id: Optional[str] = None
    procs: Optional[int] = None
    queue_name: Optional[str] = None
    wallclock_time: Optional[int] = None
    wallclock_limit: Optional[int] = None
    cpu_time: Optional[int] = None
    submission_time: Optional[int] = None
    dispatch_time: Optional[int] = None
    gpus: Optional[int] = None
    tasks: Sequence[Mapping[str, Any]] = ()
    # ood-k8s's own (sessions.lifetime): when the agent ends the session and when the cluster would at the
    # latest (epoch seconds), and the seconds left; None until the session has started.
    deadline: Optional[int] = None
    ceiling: Optional[int] = None
    time_left: Optional[int] = None

    @property
    def reason(self) -> str:
        return str(self.native.get("reason", ""))

    @property
    def ood_connection_info(self) -> Optional[dict[str, Any]]:
        """``host``, ``port`` and every key of the job's secret -- only once the app is ready."""
        return self.native.get("ood_connection_info")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "allocated_nodes": [dict(n) for n in self.allocated_nodes],
            "submit_host": self.submit_host, "job_name": self.job_name, "job_owner": self.job_owner,
            "accounting_id": self.accounting_id, "procs": self.procs, "queue_name": self.queue_name,
            "wallclock_time": self.wallclock_time, "wallclock_limit": self.wallclock_limit,
            "cpu_time": self.cpu_time, "submission_time": self.submission_time,
            "dispatch_time": self.dispatch_time, "native": dict(self.native), "gpus": self.gpus,
            "tasks": [dict(t) for t in self.tasks], "deadline": self.deadline, "ceiling": self.ceiling,
            "time_left": self.time_left,
        }


def _ceil_cpu(value: Any) -> Optional[int]:
    """Whole CPUs of a limit ("500m" -> 1, "2" -> 2); parsed by hand to keep Decimal off the poll path."""
    text = str(value or "").strip()
    try:
        if text.endswith("m"):
            return max(1, -(-int(text[:-1]) // 1000))
        return max(1, math.ceil(float(text)))
    except ValueError:
        return None


def _wallclock_limit(win: "lifetime.Window", started: Optional[float], ceiling: Any) -> Optional[int]:
    """OOD's wallclock_limit (psij's ``duration``): the card shows ``limit - wallclock_time`` as the time
    remaining, so once the app runs it is its deadline less the app's start; before, the granted wall time."""
    if win.deadline is not None and started is not None:
        return max(0, int(win.deadline - started))
    if win.walltime is not None:
        return win.walltime
    return ceiling if isinstance(ceiling, int) else None


def _may_have_reached_the_server(err: Unavailable) -> bool:
    """False when the request provably never reached the API server, so nothing was created."""
    import socket
    import ssl

    if err.status == 429:
        return False  # throttled: the server answered without acting
    # The client raises Unavailable from the OSError that stopped it ("from None" keeps __context__).
    cause = err.__context__
    return not isinstance(cause, (ConnectionRefusedError, socket.gaierror, ssl.SSLCertVerificationError))


class Adapter:
    """The job adapter for one portal user (``ident``) talking to the API through ``client``."""

    def __init__(self, cfg: Config, ident: Identity, client: KubeClient, *, clock: Callable[[], float] = time.time,
                 rand: Callable[[int], bytes] = os.urandom) -> None:
        self.cfg = cfg
        self.ident = ident
        self.client = client
        self.clock = clock
        self.rand = rand
        self.user = names.for_user(ident.username, cfg.users.namespace_prefix, cfg.users.rbac_username_prefix)
        self.namespace = self.user.namespace

    # --- submit ------------------------------------------------------------------------------

    def submit(self, script: Any, after: Sequence[str] = (), afterok: Sequence[str] = (),
               afternotok: Sequence[str] = (), afterany: Sequence[str] = (), hold: bool = False) -> str:
        """Create the job; returns its id. Every refusal happens before any object exists."""
        from ood_k8s.sessions import objects
        from ood_k8s.sessions.request import Script
        from ood_k8s.sessions.resolve import resolve

        if any((after, afterok, afternotok, afterany)):
            raise UsageError("job dependencies (after, afterok, ...) are not supported on Kubernetes",
                             "submit the job without dependencies")
        if isinstance(script, Mapping):
            script = Script.from_dict(script)
        spec = resolve(script, self.cfg, self.ident, hold=hold, submit_host=self._submit_host())
        if self.cfg.courses:  # a course's GPU-hour budget must fit the request (asks the agent: ~1 ms)
            from ood_k8s.usage.budget import check_submit

            check_submit(self.cfg, self.ident, spec, self.clock())
        job_id = names.job_id(spec.name_hint, self.rand(8))
        password = base64.urlsafe_b64encode(self.rand(24)).decode("ascii").rstrip("=")
        pod = objects.pod(spec, job_id)
        if self.cfg.usage.finalizer:  # the usage ledger records it even if deleted between the agent's passes
            pod["metadata"]["finalizers"] = [vocab.USAGE_FINALIZER]
        try:
            created = self.client.create(pod)
        except Unavailable as err:
            # A POST that timed out may still have created the pod: make sure it is not left behind.
            # One that never left (refused, unresolvable, untrusted server, throttled) created nothing.
            if _may_have_reached_the_server(err):
                self._rollback(job_id, err)
            raise
        owner = objects.owner_reference(job_id, created["metadata"]["uid"])
        try:
            data = {objects.PASSWORD_KEY: password}
            svc = objects.service(spec, job_id, owner)
            if svc is not None:
                made = self.client.create(svc)
                node_port = ((made.get("spec") or {}).get("ports") or [{}])[0].get("nodePort")
                if not node_port:
                    # The container reads it (OOD_K8S_CONNECT_PORT, a required secret key): without it
                    # the session could never start.
                    raise KubeError(f"the API server gave Service {svc['metadata']['name']} no node port",
                                    "ask your administrator to check the cluster's NodePort range")
                data[objects.PORT_KEY] = str(node_port)  # for the app, and so info needs no Service read
            self.client.create(objects.secret(spec, job_id, owner, data))
            self.client.create(objects.configmap(spec, job_id, owner))
        except BaseException as err:
            self._rollback(job_id, err)
            raise
        return job_id

    def _rollback(self, job_id: str, cause: BaseException) -> None:
        try:
            self.client.delete("Pod", job_id, self.namespace, grace_period=0, missing_ok=True)
        except OodK8sError as err:
            if isinstance(cause, OodK8sError):
                cause.hint = (f"job {job_id} may be left behind ({err.message}); remove it with "
                              f"'ood-k8s job delete {job_id}'")

    def _submit_host(self) -> str:
        if self.cfg.portal.submit_host:
            return self.cfg.portal.submit_host
        import socket

        return socket.gethostname()

    # --- info ---------------------------------------------------------------------------------

    def _get_pod(self, job_id: str) -> Optional[dict[str, Any]]:
        names.check_job_id(job_id)
        pod = self.client.get_or_none("Pod", job_id, self.namespace)
        if pod is not None and (pod.get("metadata", {}).get("labels") or {}).get(vocab.MANAGED_BY_KEY) != \
                vocab.MANAGED_BY:
            raise UsageError(f"Invalid job id specified: pod '{job_id}' was not started by ood-k8s",
                             "see 'ood-k8s job list' for your jobs")
        return pod

    def info(self, job_id: str) -> Info:
        pod = self._get_pod(job_id)
        if pod is None:
            return Info(id=job_id, status=status.COMPLETED, native={"reason": "the session has ended", "found": False})
        now = self.clock()
        grace = self.cfg.jobs.pull_failure_grace
        state = status.pod_state(pod, now=now, pull_failure_grace=grace)
        if state.needs_events:
            events = self.client.list("Event", self.namespace,
                                      field_selector=f"involvedObject.kind=Pod,involvedObject.name={job_id}")
            state = status.pod_state(pod, events, now=now, pull_failure_grace=grace)
        connection = None
        if state.ready:
            secret = self.client.get_or_none("Secret", names.job_children(job_id)["secret"], self.namespace)
            connection = self._connection(pod, secret)
        return self._info(pod, state, now, connection)

    def status(self, job_id: str) -> str:
        return self.info(job_id).status

    def info_all(self) -> list[Info]:
        """This user's jobs (one list call; no connection info, no events)."""
        return self._list(self.namespace, self.user.selector)

    def info_where_owner(self, owner: Union[str, Sequence[str]]) -> list[Info]:
        owners = [owner] if isinstance(owner, str) else list(owner)
        out: list[Info] = []
        for name in owners:
            if name == self.ident.username:
                out.extend(self.info_all())
                continue
            try:
                other = names.for_user(name, self.cfg.users.namespace_prefix, self.cfg.users.rbac_username_prefix)
            except UsageError:
                continue  # not a valid portal user: owns nothing
            try:
                out.extend(self._list(other.namespace, other.selector))
            except Forbidden:
                continue  # another user's jobs are not visible to this one
        return out

    def _list(self, namespace: str, selector: str) -> list[Info]:
        pods = self.client.list("Pod", namespace, label_selector=f"{selector},{vocab.JOB_LABEL}")
        now = self.clock()
        grace = self.cfg.jobs.pull_failure_grace
        infos = [self._info(p, status.pod_state(p, now=now, pull_failure_grace=grace), now, None) for p in pods]
        infos.sort(key=lambda i: (i.submission_time or 0, i.id))
        return infos

    def _connection(self, pod: dict[str, Any], secret: Optional[dict[str, Any]]) -> dict[str, Any]:
        spec = pod.get("spec") or {}
        st = pod.get("status") or {}
        conn: dict[str, Any] = {}
        if self.cfg.cluster.connection == "nodeport":
            conn["host"] = st.get("hostIP") if self.cfg.cluster.nodeport_host == "host_ip" else spec.get("nodeName")
        else:
            conn["host"] = st.get("podIP")
        for c in (spec.get("containers") or [])[:1]:
            for p in c.get("ports") or []:
                conn.setdefault("port", p.get("containerPort"))
        for key, value in ((secret or {}).get("data") or {}).items():
            try:
                conn[key] = base64.b64decode(value).decode("utf-8")
            except ValueError:
                continue
        if isinstance(conn.get("port"), str) and conn["port"].isdigit():
            conn["port"] = int(conn["port"])
        return conn

    def _info(self, pod: dict[str, Any], state: "status.PodState", now: float,
              connection: Optional[dict[str, Any]]) -> Info:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        st = pod.get("status") or {}
        labels = meta.get("labels") or {}
        ann = meta.get("annotations") or {}
        main = (spec.get("containers") or [{}])[0]
        limits = (main.get("resources") or {}).get("limits") or {}
        procs = _ceil_cpu(limits.get("cpu"))
        gpus = 0
        for key, value in limits.items():
            if key not in _NOT_GPU and not key.startswith("hugepages-") and str(value).isdigit():
                gpus += int(value)
        started = finished = None
        for cs in st.get("containerStatuses") or []:
            if cs.get("name") != main.get("name"):
                continue
            cstate = cs.get("state") or {}
            run = cstate.get("running") or cstate.get("terminated") or {}
            started = status.timestamp(run.get("startedAt"))
            finished = status.timestamp((cstate.get("terminated") or {}).get("finishedAt"))
        submitted = status.timestamp(meta.get("creationTimestamp"))
        node = spec.get("nodeName")
        owner = ann.get(vocab.USERNAME_ANNOTATION)
        if not owner:
            ns = meta.get("namespace") or ""
            prefix = self.cfg.users.namespace_prefix
            owner = ns[len(prefix):] if ns.startswith(prefix) else ns
        native: dict[str, Any] = {
            "reason": state.reason,
            "phase": st.get("phase") or "Pending",
            "namespace": meta.get("namespace"),
            "profile": labels.get(vocab.PROFILE_LABEL),
            "image": main.get("image"),
            "node": node,
            "failed": state.failed,
        }
        if state.exit_code is not None:
            native["exit_code"] = state.exit_code
        # Where the session's output goes (its end is noted beside it) and why the cluster ended it, if it did.
        output = next((e.get("value") for e in main.get("env") or [] if e.get("name") == "OOD_STDOUT_PATH"), None)
        if output:
            native["output_path"] = output
        disruption = next((c for c in st.get("conditions") or [] if c.get("type") == "DisruptionTarget"
                           and c.get("status") == "True"), None)
        if disruption is not None:
            native["disruption"] = disruption.get("reason") or "DisruptionTarget"
        if connection is not None:
            native["ood_connection_info"] = connection
        end_reason = ann.get(vocab.END_REASON_ANNOTATION)
        if end_reason:
            native["end_reason"] = end_reason  # the agent ended it (deadline, idle...): its reason wins
        win = lifetime.window(pod)
        return Info(
            id=meta.get("name", ""),
            status=state.state,
            allocated_nodes=[{"name": node, "procs": procs}] if node else [],
            submit_host=ann.get(vocab.SUBMIT_HOST_ANNOTATION),
            job_name=ann.get(vocab.JOB_NAME_ANNOTATION) or labels.get(vocab.APP_NAME_LABEL) or meta.get("name"),
            job_owner=owner,
            accounting_id=ann.get(vocab.ACCOUNT_ANNOTATION),
            procs=procs,
            queue_name=labels.get(vocab.PROFILE_LABEL),
            wallclock_time=lifetime.elapsed(started, finished, now),
            wallclock_limit=_wallclock_limit(win, started, spec.get("activeDeadlineSeconds")),
            submission_time=int(submitted) if submitted is not None else None,
            dispatch_time=int(started) if started is not None else None,
            native=native,
            gpus=gpus,
            deadline=int(win.deadline) if win.deadline is not None else None,
            ceiling=int(win.ceiling) if win.ceiling is not None else None,
            time_left=lifetime.time_left(win, now),
        )

    # --- delete, hold, release ----------------------------------------------------------------

    def delete(self, job_id: str) -> None:
        """One call: the Pod goes, the garbage collector takes its Secret, ConfigMap and Service."""
        names.check_job_id(job_id)
        try:
            self.client.delete("Pod", job_id, self.namespace, propagation="Background")
        except NotFound:
            raise NotFound(f"Invalid job id specified: no job '{job_id}' in namespace {self.namespace}",
                           "see 'ood-k8s job list' for your jobs") from None

    def hold(self, job_id: str) -> None:
        """Kubernetes can only hold a pod that never reached the scheduler: refuse otherwise."""
        pod = self._require(job_id)
        spec = pod.get("spec") or {}
        if any(g.get("name") == vocab.HOLD_GATE for g in spec.get("schedulingGates") or []):
            return
        if spec.get("nodeName"):
            raise UsageError(f"job {job_id} is already scheduled on node {spec['nodeName']} and cannot be held",
                             "Kubernetes cannot pause a running pod; delete the job instead")
        raise UsageError(f"job {job_id} was not submitted on hold and cannot be held now",
                         "Kubernetes can hold a pod only from its creation: delete it and submit it with hold")

    def release(self, job_id: str) -> None:
        pod = self._require(job_id)
        gates = (pod.get("spec") or {}).get("schedulingGates") or []
        rest = [g for g in gates if g.get("name") != vocab.HOLD_GATE]
        if len(rest) == len(gates):
            raise UsageError(f"job {job_id} is not held", "there is nothing to release")
        # resourceVersion makes the patch fail with Conflict if someone changed the gates meanwhile.
        patch = {"metadata": {"resourceVersion": (pod.get("metadata") or {}).get("resourceVersion")},
                 "spec": {"schedulingGates": rest or None}}
        self.client.patch("Pod", job_id, patch, self.namespace, patch_type="merge")

    def extend(self, job_id: str, seconds: int) -> Any:
        """Move the session's deadline ``seconds`` later, never past its ceiling; returns the
        :class:`~ood_k8s.sessions.extend.Extension` (new deadline, ceiling, seconds added)."""
        from ood_k8s.sessions import extend

        return extend.extend(self.cfg, self.client, self.ident, job_id, seconds, self.clock())

    def _require(self, job_id: str) -> dict[str, Any]:
        pod = self._get_pod(job_id)
        if pod is None:
            raise NotFound(f"Invalid job id specified: no job '{job_id}' in namespace {self.namespace}",
                           "see 'ood-k8s job list' for your jobs")
        return pod

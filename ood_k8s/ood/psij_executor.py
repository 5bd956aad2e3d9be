"""A PSI/J executor (``ood_k8s``) for psij-python users, on the same adapter as everything else.

Registered through ``psij-descriptors/ood_k8s.py`` (installed next to this package in
site-packages), so ``JobExecutor.get_instance("ood_k8s")`` works, including from OOD's stock
``psij/*.py`` scripts.  Known defects of psij-python 0.9.11 (REFERENCE §3) are worked around:

* ``Descriptor(aliases=...)`` is ignored: the descriptor file registers each name separately;
* ``info``, ``hold``, ``release`` and ``current_info`` exist only in an unmerged branch: this
  executor implements them, with the fields and types OOD's ``get_info.py`` reads (datetimes it
  can ``strftime``, an integer ``wall_time``, a spec with attributes and resources);
* ``psij.serialize`` prints every spec key on stdout (OOD then records garbage job ids), asserts
  on the integer ``duration`` OOD always sends, and turns ``"3600.0 s"`` back into 0 s: when this
  module is loaded (psij loads executors at import), :func:`patch_psij_serialize` silences the
  print and parses durations correctly.  The patch is idempotent and touches nothing else.

Cheaper alternative for OOD itself: ``ood-k8s-psij`` (no psij import, ~180 ms saved per poll).
"""

from __future__ import annotations

import contextlib
import io
import shlex
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psij import (
    InvalidJobException,
    Job,
    JobAttributes,
    JobExecutor,
    JobExecutorConfig,
    JobSpec,
    JobState,
    JobStatus,
    ResourceSpecV1,
    SubmitException,
)

from ood_k8s.core.errors import OodK8sError, UsageError

NAME = "ood_k8s"


class _Held:
    """What ``job.status.state`` is for a held job: psij 0.9.11 has no HELD state (OOD maps it)."""

    name = "HELD"
    final = False

    def is_greater_than(self, other: Any) -> bool:
        return False

    def __str__(self) -> str:
        return "HELD"


HELD = _Held()


class CurrentInfo:
    """The unmerged psij branch's ``Job.current_info``: what OOD's get_info.py merges into its JSON."""

    def __init__(self, info: Any) -> None:
        submitted = datetime.fromtimestamp(info.submission_time) if info.submission_time else datetime.now()
        self.owner = info.job_owner
        self.submit_host = info.submit_host
        self.resourcelist = [{"name": n.get("name"), "procs": n.get("procs")} for n in info.allocated_nodes]
        self.wall_time = int(info.wallclock_time or 0)
        self.cpu_time = info.cpu_time
        self.submission_time = submitted
        # get_info.py calls strftime() unconditionally: a job not started yet reports its submission.
        self.dispatch_time = datetime.fromtimestamp(info.dispatch_time) if info.dispatch_time else submitted
        self.process_count = info.procs
        self.status = info.status
        self.reason = info.native.get("reason", "")
        self.ood_connection_info = info.native.get("ood_connection_info")
        self.found = info.native.get("found", True)


def _seconds(value: Any) -> int | None:
    from ood_k8s.sessions.request import parse_duration

    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return parse_duration(value)


def patch_psij_serialize() -> None:
    """Silence psij.serialize's stray print() and read integer/"N.0 s" durations (see module doc)."""
    import psij.serialize as ser

    cls = ser.Serializer
    if getattr(cls, "_ood_k8s_patched", False):
        return
    to_object = cls._to_object
    to_psij_object = cls._to_psij_object

    def _to_object(self: Any, s: object, t: object) -> object:
        if isinstance(t, type) and issubclass(t, timedelta) and isinstance(s, (int, float, str)):
            seconds = _seconds(s)
            return timedelta(seconds=seconds or 0)
        return to_object(self, s, t)

    def _to_psij_object(self: Any, d: Any, expected_type: type) -> object:
        with contextlib.redirect_stdout(io.StringIO()):
            return to_psij_object(self, d, expected_type)

    cls._to_object = _to_object  # type: ignore[method-assign]
    cls._to_psij_object = _to_psij_object  # type: ignore[method-assign]
    cls._ood_k8s_patched = True  # type: ignore[attr-defined]


def script_from_job(spec: JobSpec, executor: str = NAME) -> Any:
    """A psij JobSpec -> OOD Script: the executable and its arguments become the job script."""
    from ood_k8s.sessions.request import Script, native_from_attributes

    if not spec.executable:
        raise InvalidJobException("the job has no executable")
    res = spec.resources if isinstance(spec.resources, ResourceSpecV1) else ResourceSpecV1()
    if (res.node_count or 1) > 1 or (res.process_count or 1) > 1 or (res.processes_per_node or 1) > 1:
        raise InvalidJobException("ood_k8s runs one process on one node (a session pod); ask for one process")
    argv = [str(spec.executable)] + [str(a) for a in spec.arguments or []]
    attrs = spec.attributes or JobAttributes()
    try:
        native, hold = native_from_attributes(attrs.custom_attributes or {}, executor)
    except UsageError as err:
        raise InvalidJobException(str(err)) from None
    return Script(
        content="#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + "\n",
        shell_path="/bin/sh",
        job_name=spec.name,
        workdir=str(spec.directory) if spec.directory else None,
        job_environment=dict(spec.environment or {}),
        output_path=str(spec.stdout_path) if spec.stdout_path else None,
        error_path=str(spec.stderr_path) if spec.stderr_path else None,
        queue_name=attrs.queue_name,
        accounting_id=attrs.account,
        wall_time=_seconds(attrs.duration),
        cores=res.cpu_cores_per_process,
        gpus_per_node=res.gpu_cores_per_process,
        memory=res.memory,
        native=native or None,
        submit_as_hold=hold,
    )


def job_status(info: Any) -> JobStatus:
    message = info.native.get("reason")
    if info.status == "queued_held":
        return JobStatus(HELD, message=message)  # type: ignore[arg-type]
    if info.status == "running":
        return JobStatus(JobState.ACTIVE, message=message)
    if info.status == "completed":
        if info.native.get("failed"):
            return JobStatus(JobState.FAILED, message=message, exit_code=info.native.get("exit_code"))
        return JobStatus(JobState.COMPLETED, message=message, exit_code=info.native.get("exit_code"))
    return JobStatus(JobState.QUEUED, message=message)


class OodK8sJobExecutor(JobExecutor):
    """Submits PSI/J jobs as ood-k8s sessions of the calling user."""

    def __init__(self, url: str | None = None, config: JobExecutorConfig | None = None, *,
                 adapter: Any = None) -> None:
        super().__init__(url=url, config=config or JobExecutorConfig())
        self._adapter = adapter

    @property
    def adapter(self) -> Any:
        if self._adapter is None:
            from ood_k8s import config
            from ood_k8s.core import identity
            from ood_k8s.kubeconfig import clients as connect
            from ood_k8s.sessions.adapter import Adapter

            cfg = config.load(self.url or None)
            ident = identity.current()
            self._adapter = Adapter(cfg, ident, connect.as_user(cfg, ident.username))
        return self._adapter

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except UsageError as err:
            raise InvalidJobException(str(err)) from None
        except OodK8sError as err:
            raise SubmitException(str(err)) from None

    def submit(self, job: Job) -> None:
        spec = self._check_job(job)
        script = script_from_job(spec, self.name if hasattr(type(self), "_NAME_") else NAME)
        job._native_id = self._call(self.adapter.submit, script)
        self._set_job_status(job, JobStatus(JobState.QUEUED))

    def cancel(self, job: Job) -> None:
        if job.native_id is None:
            raise InvalidJobException("the job was never submitted")
        try:
            self._call(self.adapter.delete, job.native_id)
        except InvalidJobException:
            pass  # already gone: cancelling it again is not an error
        if not job.status.final:
            self._set_job_status(job, JobStatus(JobState.CANCELED))

    def list(self) -> list[str]:
        return [i.id for i in self._call(self.adapter.info_all)]

    def attach(self, job: Job, native_id: str) -> None:
        if job.status.state != JobState.NEW:
            raise InvalidJobException("Job must be in the NEW state")
        job.executor = self
        job._native_id = native_id
        self._refresh(job)

    def _refresh(self, job: Job, info: Any = None) -> Job:
        if info is None:
            info = self._call(self.adapter.info, job.native_id)
        status = job_status(info)
        if status.state is HELD:
            job._status = status  # psij's state machine has no HELD; set it directly
        else:
            self._set_job_status(job, status)
        job.current_info = CurrentInfo(info)  # type: ignore[attr-defined]
        if job.spec is None:
            job.spec = JobSpec(name=info.job_name, attributes=JobAttributes(
                duration=timedelta(seconds=info.wallclock_limit or 0), queue_name=info.queue_name,
                account=info.accounting_id))
        if job.spec.resources is None:
            job.spec.resources = ResourceSpecV1(process_count=1, cpu_cores_per_process=info.procs or None,
                                                gpu_cores_per_process=info.gpus or None)
        return job

    def info(self, jobs: Sequence[Job] | None = None, owner: str | None = None) -> list[Job]:
        """Jobs with ``status`` and ``current_info`` (OOD's get_info.py API); all of this user's by default."""
        if jobs:
            out = []
            for job in jobs:
                if job.executor is None:
                    job.executor = self
                try:
                    out.append(self._refresh(job))
                except InvalidJobException:
                    continue
            # OOD reads an empty list as "completed": drop jobs whose pod is gone.
            return [j for j in out if j.current_info.found]  # type: ignore[attr-defined]
        infos = self._call(self.adapter.info_where_owner, owner) if owner else self._call(self.adapter.info_all)
        result = []
        for info in infos:
            job = Job()
            job.executor = self
            job._native_id = info.id
            result.append(self._refresh(job, info))
        return result

    def hold(self, job: Job) -> None:
        self._call(self.adapter.hold, job.native_id)

    def release(self, job: Job) -> None:
        self._call(self.adapter.release, job.native_id)


patch_psij_serialize()

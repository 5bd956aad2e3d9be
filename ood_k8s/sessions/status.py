# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Pod (+ its events) -> OOD status and one line a student can act on.

Rules, in order (REFERENCE §1 and the incumbent's defects in §2):

* no pod -> ``completed``; a pod being deleted -> ``completed`` (never ``running``);
* Succeeded / Failed -> ``completed`` with the cause: wall time reached, evicted, out of memory
  (with the limit), crashed (exit code), failed init container;
* ``running`` only once every container is ready -- Batch Connect shows a Connect button as soon
  as the status is running, so an app that does not answer yet is ``queued`` ("starting the app");
* permanent failures while pending end the session at once (``completed``): an image that does not
  exist, an invalid image name, a container that cannot be created; pull errors that may be
  transient get ``pull_failure_grace`` seconds first; a crash loop ends it too;
* a held pod (our scheduling gate) is ``queued_held``; anything else pending is ``queued`` with the
  scheduler's message, the autoscaler starting a node, the image being pulled, storage being mounted;
* what the agent's leader did says why, over all of the above (:func:`with_agent`): a session it
  ended reports the end message it recorded (``ended at its deadline (2h)``, ``reclaimed after 60 min
  idle``) once terminal, and ``ending: <message>`` until the kubelet has stopped it; a running session
  it warned shows the warning after its reason (``ready; ends at 16:30 (in 10 min): save your work, or
  extend it``).

Pure functions of their inputs (``now`` is passed in), so every situation is a table-driven test.
"""

from typing import Any, NamedTuple, Optional

from ood_k8s.core.timefmt import timestamp  # status.timestamp: the adapter reads pod times with it
from ood_k8s.core.vocab import END_MESSAGE_ANNOTATION, END_REASON_ANNOTATION, HOLD_GATE, WARNING_ANNOTATION

QUEUED, QUEUED_HELD, RUNNING, COMPLETED, UNDETERMINED = "queued", "queued_held", "running", "completed", \
    "undetermined"

MAX_REASON = 240

_MISSING_IMAGE = ("not found", "manifest unknown", "repository does not exist", "name unknown",
                  "no such image", "does not exist or no pull access")
_PULL_WAITING = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "RegistryUnavailable")
_CREATE_ERRORS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError",
                  "InvalidImageName", "ErrImageNeverPull", "PreCreateHookError", "PreStartHookError")


class PodState(NamedTuple):
    state: str                  # OOD status
    reason: str                 # one line for the student
    ready: bool = False         # the app answers: connection info may be given
    exit_code: Optional[int] = None
    failed: bool = False        # ended with an error (PSI/J FAILED)
    needs_events: bool = False  # pending without a decisive cause: events would tell more


def one_line(text: Any, limit: int = MAX_REASON) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _duration(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    m = rest // 60
    if h and m:
        return f"{h}h{m:02d}m"
    return f"{h}h" if h else f"{m}m"


def _limit(pod: dict[str, Any], container: str, key: str) -> Optional[str]:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            return ((c.get("resources") or {}).get("limits") or {}).get(key)
    return None


def _terminated(pod: dict[str, Any], cs: dict[str, Any], term: dict[str, Any], init: bool = False) -> PodState:
    name = cs.get("name", "app")
    code = term.get("exitCode")
    what = f"init container '{name}'" if init else "the app"
    if term.get("reason") == "OOMKilled":
        limit = _limit(pod, name, "memory")
        return PodState(COMPLETED, f"{what} ran out of memory" + (f" (limit {limit})" if limit else "") +
                        ": start a new session with more memory", exit_code=code, failed=True)
    if code == 0:
        return PodState(COMPLETED, f"{what} exited normally", exit_code=0)
    detail = one_line(term.get("message"), 120)
    return PodState(COMPLETED, f"{what} crashed (exit code {code})" + (f": {detail}" if detail else "") +
                    "; see the session's output log", exit_code=code, failed=True)


def _image(pod: dict[str, Any], name: str) -> str:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == name:
            return str(c.get("image", ""))
    return ""


def _waiting(pod: dict[str, Any], cs: dict[str, Any], now: float, grace: int, init: bool) -> Optional[PodState]:
    """A decisive state from a waiting container, or None to keep looking."""
    waiting = (cs.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason") or ""
    message = one_line(waiting.get("message"), 160)
    name = cs.get("name", "app")
    image = cs.get("image") or _image(pod, name)
    if reason in _PULL_WAITING:
        lowered = message.lower()
        missing = any(m in lowered for m in _MISSING_IMAGE) or reason == "ErrImageNeverPull"
        created = timestamp((pod.get("metadata") or {}).get("creationTimestamp"))
        if missing or (created is not None and now - created > grace):
            why = "does not exist or is not accessible" if missing else "could not be pulled"
            return PodState(COMPLETED, f"image {image} {why}" + (f" ({message})" if message else "") +
                            ": check the image name or ask your administrator", failed=True)
        return PodState(QUEUED, f"retrying to pull image {image}" + (f": {message}" if message else ""))
    if reason in _CREATE_ERRORS:
        if reason in ("CreateContainerConfigError", "CreateContainerError") and "not found" in message.lower():
            created = timestamp((pod.get("metadata") or {}).get("creationTimestamp"))
            if created is None or now - created <= grace:
                return PodState(QUEUED, f"preparing the session: {message or reason}")
        return PodState(COMPLETED, f"the session could not start ({reason}" + (f": {message}" if message else "")
                        + ")", failed=True)
    if reason == "CrashLoopBackOff":
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if last:
            return _terminated(pod, cs, last, init)
        return PodState(COMPLETED, "the app keeps crashing; see the session's output log", failed=True)
    return None


def _event_reason(events: list[dict[str, Any]]) -> Optional[str]:
    """The newest event that explains a wait, as a line for the student."""
    def when(e: dict[str, Any]) -> float:
        for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
            t = timestamp(e.get(key))
            if t is not None:
                return t
        return timestamp((e.get("metadata") or {}).get("creationTimestamp")) or 0.0

    for e in sorted(events, key=when, reverse=True):
        reason = e.get("reason") or ""
        message = one_line(e.get("message") or e.get("note"), 160)
        if reason in ("Nominated", "TriggeredScaleUp"):
            return "a new node is being started for this session (usually 1-3 minutes)"
        if reason == "NotTriggerScaleUp":
            return f"no node group can run this session: {message}"
        if reason == "Pulling":
            return f"pulling the image ({message})" if message else "pulling the image"
        if reason in ("Pulled", "Created", "Started"):
            return "starting the app"
        if reason in ("FailedMount", "FailedAttachVolume"):
            return f"waiting for storage: {message}"
        if reason == "FailedCreatePodSandBox":
            return f"setting up the session's network: {message}"
        if reason == "FailedScheduling":
            return f"waiting for a node: {message}"
        if reason == "Scheduled":
            return "assigned to a node, preparing it"
    return None


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return {}


def pod_state(pod: Optional[dict[str, Any]], events: Optional[list[dict[str, Any]]] = None, *, now: float,
              pull_failure_grace: int = 120) -> PodState:
    """The OOD state of a job's pod (``None``: the pod is gone)."""
    if not pod:
        return PodState(COMPLETED, "the session has ended")
    return with_agent(pod, _observed(pod, events, now, pull_failure_grace))


def with_agent(pod: dict[str, Any], state: PodState) -> PodState:
    """``state`` with what the agent's leader recorded on the pod: the end it gave, else its warning."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    code = ann.get(END_REASON_ANNOTATION)
    if code:
        message = one_line(ann.get(END_MESSAGE_ANNOTATION)) or one_line(f"ended by the site ({code})")
        terminal = ((pod.get("status") or {}).get("phase") or "") in ("Succeeded", "Failed")
        return state._replace(reason=message if terminal else one_line("ending: " + message))
    warning = one_line(ann.get(WARNING_ANNOTATION))
    if warning and state.state == RUNNING:
        return state._replace(reason=one_line(f"{state.reason}; {warning}"))
    return state


def _observed(pod: dict[str, Any], events: Optional[list[dict[str, Any]]], now: float,
              pull_failure_grace: int) -> PodState:
    """The state the pod and its events show, before what the agent recorded."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    statuses = status.get("containerStatuses") or []
    inits = status.get("initContainerStatuses") or []
    if meta.get("deletionTimestamp"):
        return PodState(COMPLETED, "the session is being stopped")
    if phase in ("Succeeded", "Failed"):
        if status.get("reason") == "DeadlineExceeded":
            limit = spec.get("activeDeadlineSeconds")
            return PodState(COMPLETED, "the session reached its wall time" +
                            (f" of {_duration(limit)}" if isinstance(limit, int) else "") +
                            ": start a new one to continue", failed=True)
        if status.get("reason") == "Evicted":
            return PodState(COMPLETED, f"the session was evicted from its node: {one_line(status.get('message'), 160)}",
                            failed=True)
        for cs in inits:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term and term.get("exitCode") not in (0, None):
                return _terminated(pod, cs, term, init=True)
        for cs in statuses:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term and (term.get("exitCode") not in (0, None) or term.get("reason") == "OOMKilled"):
                return _terminated(pod, cs, term)
        if phase == "Failed":
            why = one_line(status.get("message") or status.get("reason") or "the session failed", 160)
            return PodState(COMPLETED, why, failed=True)
        return PodState(COMPLETED, "the app exited normally", exit_code=0)
    if phase == "Unknown":
        return PodState(UNDETERMINED, "lost contact with the session's node; try again in a minute")

    # Pending or Running: decisive container failures first (init containers run first).
    for cs in inits:
        decided = _waiting(pod, cs, now, pull_failure_grace, init=True)
        if decided:
            return decided
    for cs in statuses:
        decided = _waiting(pod, cs, now, pull_failure_grace, init=False)
        if decided:
            return decided
        term = (cs.get("state") or {}).get("terminated") or {}
        if term and phase == "Running":
            return _terminated(pod, cs, term)

    if statuses and all(cs.get("ready") for cs in statuses) and phase == "Running":
        return PodState(RUNNING, "ready", ready=True)
    if phase == "Running":
        port = None
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                port = port or p.get("containerPort")
        return PodState(QUEUED, "starting the app" + (f" (waiting for it to answer on port {port})" if port else ""))

    # Pending.
    if any(g.get("name") == HOLD_GATE for g in spec.get("schedulingGates") or []):
        return PodState(QUEUED_HELD, "held: release the job to start it")
    if spec.get("schedulingGates"):
        return PodState(QUEUED, "waiting for the cluster to admit the session")
    scheduled = _condition(pod, "PodScheduled")
    from_events = _event_reason(events) if events else None
    if scheduled.get("status") != "True":
        if from_events and ("node is being started" in from_events or from_events.startswith("no node group")):
            return PodState(QUEUED, from_events)
        if scheduled.get("reason") == "Unschedulable":
            message = one_line(scheduled.get("message"), 160)
            return PodState(QUEUED, "waiting for the scheduler" + (f": {message}" if message else ""),
                            needs_events=events is None)
        return PodState(QUEUED, from_events or "waiting for the scheduler", needs_events=events is None)
    for cs in inits:
        if (cs.get("state") or {}).get("running"):
            return PodState(QUEUED, f"preparing the session (init container '{cs.get('name')}')")
    if from_events:
        return PodState(QUEUED, from_events)
    return PodState(QUEUED, "preparing the session on its node", needs_events=events is None)

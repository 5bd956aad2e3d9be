"""Leader task "idle": a session nobody uses is warned, then ended; its home data is never touched.

Per running session whose profile sets ``idle_timeout`` or ``gpu_idle_timeout`` (seconds; 0: never):

* **Unused**: the app's activity probe (``profiles[].activity_probe``, :mod:`ood_k8s.agent.activity`)
  says when the app last saw its user; a busy kernel is use.  Unused for ``idle_timeout`` -> ended
  ("reclaimed after 60 min idle").
* **GPUs idle** (``agent.prometheus_url`` set, the pod holds GPUs): the pod's GPUs never above
  ``agent.gpu_idle_threshold`` percent for ``gpu_idle_timeout`` -> ended ("reclaimed: GPUs under 5%
  for 30 min"), however busy its notebook is: the GPU is what the class is short of.

``agent.idle_warning`` seconds before either end the session is warned (its status reason, an Event):
"idle for 50 min: it will be stopped in 10 min unless you use it".  A session is ended only once
that warning stands (the warning annotation, so a new leader or a ``--once`` run agrees); one warned
late (the agent was down) is ended at the next pass.  When the session is in use again the warning
is withdrawn (:meth:`~ood_k8s.agent.actions.Actions.withdraw`), so the next idle spell is warned
anew.  A session shows one warning at a time: while another task's warning stands (its deadline,
say), this task neither warns nor ends -- the other's end is near, or its warning will be withdrawn.

An answer nobody gave is never idleness: a probe that fails, times out or has no credential, and a
Prometheus that does not answer or holds no series for the pod, leave the session alone.  Probes
run on a small thread pool under one deadline for the whole pass (``budget``), each network wait
under ``timeout``: 200 sessions never cost 200 timeouts.  The decisions are pure functions of the
pod, the readings and ``ctx.now`` (:func:`decide`), pinned by whole-value tests.

What the agent needs for it: ``list`` on Secrets in the users' namespaces (label-selected, as the
cache's watch already does) to read each session's password, and a network path to the session's
address (the portal's own, which the users' NetworkPolicies admit) and to Prometheus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import Any, NamedTuple, TypeVar

from ood_k8s.agent import activity
from ood_k8s.agent.actions import Actions, annotations, ended, terminal
from ood_k8s.agent.service import SESSIONS
from ood_k8s.agent.tasks import PassContext
from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.errors import KubeError
from ood_k8s.core.timefmt import timestamp

WARN_REASON = "IdleSoon"
END_REASON = "Idle"
# A reading's state.
ACTIVE, UNKNOWN, WARN, END = "active", "unknown", "warn", "end"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Limits(NamedTuple):
    idle: int  # seconds unused before the end; 0: never
    gpu: int  # seconds of GPUs at or under the threshold before the end; 0: never (or no GPUs, no Prometheus)
    warning: int  # seconds of warning before either end
    threshold: float  # GPU utilisation (percent) that counts as idle


class GpuPeaks(NamedTuple):
    warn: float | None  # the pod's highest GPU utilisation over the warning window; None: no series
    end: float | None  # ... over the whole gpu_idle_timeout


class Reading(NamedTuple):
    state: str  # ACTIVE, UNKNOWN, WARN or END
    warning: str = ""  # what the warning says (WARN, END)
    ending: str = ""  # what the end says (END)


class Verdict(NamedTuple):
    action: str  # "keep", "warn", "end" or "withdraw"
    message: str = ""


KEEP = Verdict("keep")
RESUMED = "in use again: the idle warning is withdrawn"


# --- pure decisions ---------------------------------------------------------------------------------


def minutes(seconds: float) -> str:
    """``3000`` -> ``50 min``; whole hours from two on -> ``3 h``."""
    whole = max(1, round(seconds / 60))
    return f"{whole // 60} h" if whole >= 120 and whole % 60 == 0 else f"{whole} min"


def warn_after(total: int, warning: int) -> int:
    """When (seconds into an idle spell of ``total``) the warning is due: all of it when the warning is longer."""
    return total - warning if total > warning else total


def _stops(left: float, what: str) -> str:
    return f"it will be stopped in {minutes(left)} unless you use {what}" if left >= 60 \
        else f"it will be stopped shortly unless you use {what}"


def app_reading(limits: Limits, act: activity.Activity | None, now: float) -> Reading:
    """What the app's activity says about idleness (UNKNOWN when it said nothing or nothing is asked)."""
    if limits.idle <= 0 or act is None:
        return Reading(UNKNOWN)
    if act.busy:
        return Reading(ACTIVE)
    if act.last_active is None:
        return Reading(UNKNOWN)
    idle_for = now - act.last_active
    warning = f"idle for {minutes(idle_for)}: {_stops(limits.idle - idle_for, 'it')}"
    if idle_for >= limits.idle:
        return Reading(END, warning, f"reclaimed after {minutes(limits.idle)} idle")
    if idle_for >= warn_after(limits.idle, limits.warning):
        return Reading(WARN, warning)
    return Reading(ACTIVE)


def gpu_reading(limits: Limits, peaks: GpuPeaks | None, started: float | None, now: float) -> Reading:
    """What the GPUs' utilisation says: idle over a window only counts once the pod has run that long."""
    if limits.gpu <= 0 or peaks is None or started is None:
        return Reading(UNKNOWN)
    ran, early = now - started, warn_after(limits.gpu, limits.warning)
    under = f"GPUs under {limits.threshold:g}%"
    if peaks.end is not None and peaks.end <= limits.threshold and ran >= limits.gpu:
        return Reading(END, f"{under} for {minutes(limits.gpu)}: {_stops(0, 'them')}",
                       f"reclaimed: {under} for {minutes(limits.gpu)}")
    if peaks.warn is not None and peaks.warn <= limits.threshold and ran >= early:
        return Reading(WARN, f"{under} for {minutes(early)}: {_stops(limits.gpu - early, 'them')}")
    if any(p is not None and p > limits.threshold for p in peaks):
        return Reading(ACTIVE)
    return Reading(UNKNOWN)


def decide(annots: dict[str, str], readings: list[Reading], warning: int) -> Verdict:
    """Warn, end, withdraw the warning, or keep: from the pod's annotations and this pass's readings."""
    standing = annots.get(vocab.WARNING_REASON_ANNOTATION)
    warned = standing == WARN_REASON
    ends = [r for r in readings if r.state == END]
    if ends and (warned or (warning <= 0 and not standing)):
        return Verdict("end", ends[0].ending)
    due = [r for r in readings if r.state in (WARN, END)]
    if due:
        # Ours stands: the end comes when it is due.  Another's stands: one warning at a time.
        return KEEP if standing else Verdict("warn", due[0].warning)
    if warned and any(r.state == ACTIVE for r in readings):
        return Verdict("withdraw", RESUMED)
    return KEEP


def running(pod: dict[str, Any]) -> bool:
    """Started, not ended by anyone, not being deleted: a session the idle rules apply to."""
    meta = pod.get("metadata") or {}
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and bool(st.get("startTime")) and not meta.get("deletionTimestamp") \
        and not ended(pod) and not terminal(pod)


def gpus_of(pod: dict[str, Any], resource: str) -> int:
    total = 0
    for ctr in (pod.get("spec") or {}).get("containers") or []:
        value = str(((ctr.get("resources") or {}).get("limits") or {}).get(resource, "0"))
        total += int(value) if value.isdigit() else 0
    return total


def limits_of(cfg: Config, pod: dict[str, Any]) -> tuple[Limits, str] | None:
    """The session's limits and its probe's name; None when its profile asks for no idle reclaim."""
    try:
        profile = cfg.profile(((pod.get("metadata") or {}).get("labels") or {}).get(vocab.PROFILE_LABEL, ""))
    except KeyError:
        return None  # a profile since removed from the configuration: nothing says what to do
    agent = cfg.agent
    gpu = profile.gpu_idle_timeout if agent.prometheus_url and gpus_of(pod, profile.gpu.resource) else 0
    limits = Limits(profile.idle_timeout, gpu, agent.idle_warning, agent.gpu_idle_threshold)
    return (limits, profile.activity_probe) if limits.idle > 0 or limits.gpu > 0 else None


# --- the task ---------------------------------------------------------------------------------------


def run_bounded(calls: dict[K, Callable[[], V]], workers: int, budget: float,
                log: logging.Logger) -> dict[K, V]:
    """Each call's result, run ``workers`` at a time; what has not finished within ``budget`` seconds (or
    raised) is left out.  Late calls end on their own network timeouts; the pass does not wait for them."""
    if not calls:
        return {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls))), thread_name_prefix="idle-probe")
    futures = {pool.submit(fn): key for key, fn in calls.items()}
    done, late = wait(futures, timeout=budget)
    pool.shutdown(wait=False, cancel_futures=True)
    if late:
        log.warning("idle: %d activity probes did not answer within %g s; those sessions count as in use",
                    len(late), budget)
    out: dict[K, V] = {}
    for fut in done:
        try:
            out[futures[fut]] = fut.result()
        except Exception as err:  # a probe's bug must not stop the pass: the session is simply unknown
            log.warning("idle: activity probe of %s failed: %s", futures[fut], err)
    return out


def _key(pod: dict[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))


class Idle:
    name = "idle"

    def __init__(self, workers: int = 16, timeout: float = 3.0, budget: float = 20.0) -> None:
        self.workers = workers  # probes at once
        self.timeout = timeout  # seconds, each network wait (a probe makes up to three requests)
        self.budget = budget  # seconds, all probes of a pass (and at most half of agent.interval)

    def run(self, ctx: PassContext) -> None:
        sessions = [(pod, *found) for pod in ctx.pods if running(pod) and (found := limits_of(ctx.cfg, pod))]
        if not sessions:
            return
        acts = self.activities(ctx, [(pod, probe) for pod, limits, probe in sessions if limits.idle > 0])
        peaks = self.gpu_peaks(ctx, [(pod, limits) for pod, limits, _ in sessions if limits.gpu > 0])
        for pod, limits, _ in sessions:
            key = _key(pod)
            act = acts.get(key)
            readings = [app_reading(limits, act, ctx.now),
                        gpu_reading(limits, peaks.get(key), timestamp((pod.get("status") or {}).get("startTime")),
                                    ctx.now)]
            verdict = decide(annotations(pod), readings, limits.warning)
            if act is not None:
                ctx.log.debug("idle: %s/%s %s -> %s", *key, act.detail, verdict.action)
            ACTS[verdict.action](ctx.actions, pod, verdict.message)

    def activities(self, ctx: PassContext, todo: list[tuple[dict[str, Any], str]]
                   ) -> dict[tuple[str, str], activity.Activity | None]:
        calls: dict[tuple[str, str], Callable[[], activity.Activity | None]] = {}
        secrets = self.secrets(ctx) if todo else {}
        for pod, name in todo:
            probe = activity.probe_for(name)
            if probe is None:
                ctx.log.warning("idle: no activity probe '%s' (profiles[].activity_probe): %s/%s counts as in use",
                                name, *_key(pod))
                continue
            own = secrets.get(_key(pod)[0], {})
            calls[_key(pod)] = partial(probe.probe, pod, own, self.timeout)
        # Half the pass interval at most: a pass must be over before the next is due.
        return run_bounded(calls, self.workers, min(self.budget, max(1.0, ctx.cfg.agent.interval / 2)), ctx.log)

    @staticmethod
    def secrets(ctx: PassContext) -> dict[str, dict[str, dict[str, str]]]:
        """Every session's Secret, by namespace and name, decoded: from the agent's cache where it runs, else
        one list call per pass."""
        try:
            items = ctx.session_secrets() if ctx.session_secrets else ctx.client.list("Secret", label_selector=SESSIONS)
        except KubeError as err:
            ctx.log.warning("idle: cannot read the sessions' Secrets (%s): activity probes have no credential",
                            err.message)
            return {}
        out: dict[str, dict[str, dict[str, str]]] = {}
        for s in items:
            meta = s.get("metadata") or {}
            out.setdefault(str(meta.get("namespace")), {})[str(meta.get("name"))] = activity.decode_secret(s)
        return out

    def gpu_peaks(self, ctx: PassContext, todo: list[tuple[dict[str, Any], Limits]]
                  ) -> dict[tuple[str, str], GpuPeaks]:
        """Every GPU session's peaks, from one Prometheus query for all sessions and windows."""
        if not todo:
            return {}
        windows = {w for _, lim in todo for w in (lim.gpu, warn_after(lim.gpu, lim.warning))}
        result = activity.query_prometheus(ctx.cfg.agent.prometheus_url, activity.gpu_query(windows), ctx.now,
                                           self.timeout)
        if result is None:
            return {}
        peaks = activity.gpu_peaks(result)
        return {key: GpuPeaks(peaks.get((*key, warn_after(lim.gpu, lim.warning))), peaks.get((*key, lim.gpu)))
                for pod, lim in todo for key in [_key(pod)]}


def _warn(actions: Actions, pod: dict[str, Any], message: str) -> None:
    actions.warn(pod, WARN_REASON, message)


def _end(actions: Actions, pod: dict[str, Any], message: str) -> None:
    actions.end(pod, END_REASON, message)


def _withdraw(actions: Actions, pod: dict[str, Any], message: str) -> None:
    actions.withdraw(pod, WARN_REASON, message)


ACTS: dict[str, Callable[[Actions, dict[str, Any], str], None]] = {
    "keep": lambda actions, pod, message: None, "warn": _warn, "end": _end, "withdraw": _withdraw,
}

TASK = Idle()

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``ood-k8s-psij``: a stock Open OnDemand's PSI/J adapter, answered without PSI/J (REFERENCE §3, §10).

Configure the OOD cluster with ``job: {adapter: psij, executor: ood_k8s, bin_overrides: {python3:
/usr/local/bin/ood-k8s-psij}}``.  OOD then runs, as the user, exactly what it would run with
Python -- and this program takes the script's name as the verb::

    ood-k8s-psij <gem>/psij/submit.py ood_k8s            < JSON job spec    -> stdout: the job id
    ood-k8s-psij <gem>/psij/get_info.py --id=ID --executor=ood_k8s         -> stdout: JSON list
    ood-k8s-psij <gem>/psij/{delete,hold,release}.py --id=ID --executor=ood_k8s

stdout carries only the id or the JSON (OOD records all of it); errors are one line on stderr and
a non-zero exit.  An unknown job id says ``Invalid job id specified``, which OOD ignores for
hold/release and reads as "completed" for info; delete of a session that is already gone succeeds
(psij.rb re-raises every delete failure).  ``--id=`` empty lists the calling user's jobs (OOD never
passes an owner).

What the real dashboard needs besides the wire format:

* every verb answers within its deadline (``portal.poll_deadline``, ``submit_deadline``,
  ``delete_deadline``), since psij.rb waits for this process with no timeout: a poll that runs out
  says ``UNDETERMINED`` with the reason (:mod:`ood_k8s.ood.deadline`);
* a launch runs its own script, never a concurrent launch's (:mod:`ood_k8s.ood.jobscript`);
* the poll that sees a session end leaves the cause where the app's completed view reads it
  (:mod:`ood_k8s.ood.endnote`); the session's password never appears in the poll's output.

Per-poll cost matters (OOD runs one process per session card per refresh), so this module
imports only the standard library's json/socket/ssl and the light ood-k8s modules -- never psij,
jinja2, boto3, requests, kubernetes, jsonschema, http.client, or PyYAML while the configuration's
compiled cache is current (:func:`ood_k8s.config.read_yaml`).  Admins (euid 0)
may add ``--user NAME`` to act for a user; ``--config FILE`` overrides the site configuration.
"""

import json
import os
import sys
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

from ood_k8s.agent import client as agent
from ood_k8s.core.errors import NotFound, SecurityError, Unavailable, UsageError
from ood_k8s.core.process import exit_now, read_argv, run_guarded
from ood_k8s.ood.deadline import Deadline, LastWords

VERBS = {"submit.py": "submit", "get_info.py": "info", "delete.py": "delete", "hold.py": "hold",
         "release.py": "release"}
STATES = {"queued": "QUEUED", "queued_held": "HELD", "running": "ACTIVE", "completed": "COMPLETED",
          "suspended": "QUEUED", "undetermined": "UNDETERMINED"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # OOD's psij.rb Time.parse()s this, in the portal's local time
# What a session's connection info may show in the poll's output: psij.rb never reads it, and the
# rest of it (the password) must not sit in the dashboard's memory or logs for nothing.
_SHOWN_CONNECTION = ("host", "port")
_RETRY = "the card tries again at its next refresh"


class Request(NamedTuple):
    verb: str
    job_id: str
    executor: str
    config_path: Optional[str]
    ident: Any
    admin: bool


def script_from_spec(data: Any, executor: str, ident: Any, admin: bool) -> Any:
    """OOD's PSI/J JSON (psij.rb's ``params``) -> :class:`~ood_k8s.sessions.request.Script`, with the
    script of this very launch (see :mod:`ood_k8s.ood.jobscript`), from the user's own files."""
    from ood_k8s.ood import jobscript
    from ood_k8s.sessions.request import script_from_psij

    attributes = data.get("attributes") if isinstance(data, dict) else None
    custom = attributes.get("custom_attributes") if isinstance(attributes, dict) else None
    custom = custom if isinstance(custom, dict) else {}
    directory = data.get("directory") if isinstance(data, dict) else None
    read = jobscript.reader(str(directory) if directory else None, custom, ident.uid, admin)
    return script_from_psij(data, executor, read)


def _when(ts: Optional[int]) -> Optional[str]:
    if ts is None:
        return None
    import time

    return time.strftime(TIME_FORMAT, time.localtime(ts))


def wire_info(info: Any) -> Dict[str, Any]:
    """One element of get_info.py's JSON list; the whole object becomes OOD's ``Info#native``."""
    out: Dict[str, Any] = {
        "native_id": info.id,
        "current_state": STATES.get(info.status, "UNDETERMINED"),
        "name": info.job_name,
        "owner": info.job_owner,
        "submit_host": info.submit_host,
        "resourcelist": [{"name": n.get("name"), "procs": n.get("procs")} for n in info.allocated_nodes],
        "wall_time": info.wallclock_time or 0,
        "cpu_time": info.cpu_time,
        "submission_time": _when(info.submission_time),
        "dispatch_time": _when(info.dispatch_time),
        "duration": info.wallclock_limit,
        "queue_name": info.queue_name,
        "account": info.accounting_id,
        "process_count": info.procs,
        "gpus": info.gpus,
        "status": info.status,
    }
    for key, value in info.native.items():
        if key == "ood_connection_info" and isinstance(value, dict):
            value = {k: value[k] for k in _SHOWN_CONNECTION if k in value}
        out.setdefault(key, value)
    return out


def undetermined(job_id: str, reason: str) -> str:
    """get_info.py's answer for a session whose state could not be learnt in time."""
    from ood_k8s.sessions.adapter import Info

    return json.dumps([wire_info(Info(id=job_id, status="undetermined", native={"reason": reason}))]) + "\n"


def _identity(opts: Dict[str, str]) -> Any:
    from ood_k8s.core import identity

    user = opts.pop("user", None)
    if user is not None:
        if os.geteuid() != 0:
            raise SecurityError("--user is only for administrators (root)", "run ood-k8s-psij as the portal user")
        from ood_k8s.core.names import check_username

        return identity.lookup(check_username(user)), True
    return identity.current(), False


def parse(args: Sequence[str]) -> Request:
    if not args:
        raise UsageError("no PSI/J script given", "OOD runs: ood-k8s-psij <gem>/psij/get_info.py --id=ID --executor=X")
    verb = VERBS.get(os.path.basename(args[0])) or (args[0] if args[0] in VERBS.values() else None)
    if verb is None:
        raise UsageError(f"unknown PSI/J script '{os.path.basename(args[0])[:60]}'",
                         f"expected one of: {', '.join(VERBS)}")
    opts, rest = read_argv(args[1:])  # any --key=value / --key value: unknown keys are refused below
    executor = opts.pop("executor", rest[0] if rest else "ood_k8s")
    job_id = opts.pop("id", "").strip()
    opts.pop("owner", None)  # OOD never passes it; "all" already means this user's jobs
    config_path = opts.pop("config", None)
    ident, admin = _identity(opts)
    if opts:
        raise UsageError(f"unknown option --{next(iter(opts))}", "options are --id, --executor, --user, --config")
    if verb not in ("submit", "info") and not job_id:
        raise UsageError("Invalid job id specified: empty", "pass --id=ID")
    return Request(verb, job_id, executor, config_path, ident, admin)


# --- the verbs: each returns what goes to stdout ---------------------------------------------------


def _submit(req: Request, adapter: Any) -> str:
    raw = sys.stdin.read()
    try:
        data = json.loads(raw)
    except ValueError:
        raise UsageError("the job spec on stdin is not valid JSON", "OOD's psij adapter sends JSON") from None
    return str(adapter.submit(script_from_spec(data, req.executor, req.ident, req.admin)))


def _info(req: Request, adapter: Any) -> str:
    if req.job_id:
        info = adapter.info(req.job_id)
        if info.status == "completed":  # only a poll that sees the end leaves a note: import it then
            from ood_k8s.ood import endnote

            endnote.record(info, req.ident)
        infos = [info] if info.native.get("found", True) else []  # [] is how PSI/J says "gone"
    else:
        infos = adapter.info_all()
    return json.dumps([wire_info(i) for i in infos]) + "\n"


def _delete(req: Request, adapter: Any) -> str:
    try:
        adapter.delete(req.job_id)
    except NotFound:
        pass  # already gone: what was asked for is true (psij.rb would raise on any failure)
    return ""


def _change(req: Request, adapter: Any) -> str:
    getattr(adapter, req.verb)(req.job_id)
    return ""


_BODIES: Dict[str, Callable[[Request, Any], str]] = {
    "submit": _submit, "info": _info, "delete": _delete, "hold": _change, "release": _change,
}


def deadline_for(req: Request, cfg: Any) -> Deadline:
    """The verb's time limit and, should the watchdog have to end the process, its last words."""
    portal = cfg.portal
    seconds = {"info": portal.poll_deadline, "submit": portal.submit_deadline}.get(req.verb, portal.delete_deadline)

    def last_words(said: str) -> LastWords:
        if req.verb == "info" and req.job_id:
            return LastWords(undetermined(req.job_id, f"{said}; {_RETRY}"), "", 0)
        if req.verb == "submit":
            return LastWords("", f"ood-k8s-psij: {said}: a session may have been created; look for it on the "
                             "My Interactive Sessions page before launching again\n", 1)
        return LastWords("", f"ood-k8s-psij: {said}: try again in a minute\n", 1)

    return Deadline(seconds, "the cluster", last_words)


def _answer(req: Request, body: Callable[[], str], deadline: Deadline) -> str:
    """``body()`` within the deadline; an expired single-session poll answers ``UNDETERMINED``."""
    deadline.start()
    try:
        try:
            return body()
        finally:
            deadline.stop()
    except Unavailable as err:
        if deadline.expired and req.verb == "info" and req.job_id:
            return undetermined(req.job_id, f"{err.message}; {_RETRY}")
        deadline.own_output()
        raise
    except BaseException:
        deadline.own_output()
        raise


def run(args: Sequence[str], asked: Optional[bytes] = None) -> int:
    """``asked``: the agent's answer the launcher already had (:mod:`ood_k8s.agent.fastpoll`)."""
    req = parse(args)
    from ood_k8s import config

    cfg = config.load(req.config_path)
    ident = req.ident
    if ident.uid < cfg.users.min_uid:
        raise SecurityError(f"'{ident.username}' (uid {ident.uid}) is a system account without sessions",
                            "run ood-k8s-psij as the portal user (administrators: add --user NAME)")
    if req.verb == "info" and cfg.agent.enabled:  # the agent's cache, when it answers fresh; else the API
        cached = agent.psij_info(cfg.agent, req.job_id, ident, req.admin, asked)
        if cached is not None:
            sys.stdout.write(cached)
            sys.stdout.flush()
            return 0
    deadline = deadline_for(req, cfg)

    def body() -> str:
        from ood_k8s.kubeconfig import clients as connect
        from ood_k8s.sessions.adapter import Adapter

        adapter = Adapter(cfg, ident, connect.as_user(cfg, ident.username))
        return _BODIES[req.verb](req, adapter)

    out = _answer(req, body, deadline)
    deadline.own_output()
    sys.stdout.write(out)
    sys.stdout.flush()
    return 0


def main(argv: Optional[Sequence[str]] = None, asked: Optional[bytes] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # as the other entry points answer it
        from ood_k8s import __version__

        print(f"ood-k8s-psij {__version__}")
        return 0
    return run_guarded("ood-k8s-psij", lambda: run(args, asked))


def cli(argv: Optional[Sequence[str]] = None, asked: Optional[bytes] = None) -> None:
    """The full path of the ``ood-k8s-psij`` command, after its launcher
    (:func:`ood_k8s.agent.fastpoll.cli`; one process per OOD poll: see
    :func:`~ood_k8s.core.process.exit_now`)."""
    exit_now(main(argv, asked))


if __name__ == "__main__":
    cli()

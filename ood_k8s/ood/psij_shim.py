"""``ood-k8s-psij``: a stock Open OnDemand's PSI/J adapter, answered without PSI/J (REFERENCE §3).

Configure the OOD cluster with ``job: {adapter: psij, executor: ood_k8s, bin_overrides: {python3:
/usr/local/bin/ood-k8s-psij}}``.  OOD then runs, as the user, exactly what it would run with
Python -- and this program takes the script's name as the verb::

    ood-k8s-psij <gem>/psij/submit.py ood_k8s            < JSON job spec    -> stdout: the job id
    ood-k8s-psij <gem>/psij/get_info.py --id=ID --executor=ood_k8s         -> stdout: JSON list
    ood-k8s-psij <gem>/psij/{delete,hold,release}.py --id=ID --executor=ood_k8s

stdout carries only the id or the JSON (OOD records all of it); errors are one line on stderr and
a non-zero exit.  An unknown job id says ``Invalid job id specified``, which OOD ignores for
delete/hold/release and reads as "completed" for info.  ``--id=`` empty lists the calling user's
jobs (OOD never passes an owner).

Per-poll cost matters (OOD runs one process per session card per refresh), so this module
imports only the standard library's json/socket/ssl and the light ood-k8s modules -- never psij,
jinja2, boto3, requests, kubernetes, jsonschema, http.client, or PyYAML while the configuration's
compiled cache is current (:func:`ood_k8s.config.read_yaml`).  Admins (euid 0)
may add ``--user NAME`` to act for a user; ``--config FILE`` overrides the site configuration.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

from ood_k8s.core.errors import SecurityError, UsageError, exit_now, run_guarded

VERBS = {"submit.py": "submit", "get_info.py": "info", "delete.py": "delete", "hold.py": "hold",
         "release.py": "release"}
STATES = {"queued": "QUEUED", "queued_held": "HELD", "running": "ACTIVE", "completed": "COMPLETED",
          "suspended": "QUEUED", "undetermined": "UNDETERMINED"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # OOD's psij.rb Time.parse()s this, in the portal's local time
MAX_SCRIPT = 1024 * 1024
_SPEC_KEYS = frozenset({"environment", "directory", "name", "executable", "stdin_path", "stdout_path", "stderr_path",
                        "inherit_environment", "attributes", "resources", "arguments", "pre_launch", "post_launch",
                        "launcher"})


def _options(args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``--key=value`` and ``--key value`` options, and the positional arguments."""
    opts: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"option --{key} needs a value")
                value = args[i + 1]
                i += 1
            opts[key] = value
        else:
            rest.append(arg)
        i += 1
    return opts, rest


def parse_duration(value: Any) -> int | None:
    """OOD sends whole seconds; psij-python's serializer sends "3600.0 s"; people write hh:mm:ss."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UsageError(f"attributes.duration: got {value!r}, expected seconds")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    try:
        if text.endswith("s") and text[:-1].strip().replace(".", "", 1).isdigit():
            return int(float(text[:-1]))
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) == 3:
                return parts[0] * 3600 + parts[1] * 60 + parts[2]
            if len(parts) == 2:
                return parts[0] * 3600 + parts[1] * 60
        return int(float(text))
    except ValueError:
        raise UsageError(f"attributes.duration: got '{text[:40]}', expected seconds or hh:mm:ss") from None


def strip_native_tokens(content: str, custom: dict[str, Any]) -> str:
    """Undo OOD's psij.rb appending ``script.native`` tokens to the script body.

    OOD joins the tokens with newlines and appends them to the content (no separator); they are the
    last entries of custom_attributes (after ``script.args``), so the longest matching suffix goes.
    """
    items = [(str(k), "" if v is None else str(v)) for k, v in custom.items()]
    for start in range(len(items)):
        for dash in ("--", "-"):
            tokens: list[str] = []
            for key, value in items[start:]:
                tokens.append(dash + key)
                if value != "":
                    tokens.append(value)
            suffix = "\n".join(tokens)
            if suffix and content.endswith(suffix):
                return content[: -len(suffix)]
    return content


def read_script(path: str, uid: int | None) -> str:
    """The job script OOD wrote (``~/ood_tmp/run.sh``), read at submit time: a later submit overwrites it."""
    expanded = os.path.expanduser(path)
    try:
        fd = os.open(expanded, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"cannot read the job script {expanded}: {exc.strerror}",
                         "OOD writes it to ~/ood_tmp/run.sh before submitting; check the home directory") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        import stat

        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"the job script {expanded} is not a regular file")
        if uid is not None and st.st_uid != uid:
            # An admin acting for a user must not ship a file the user could not have written.
            raise SecurityError(f"the job script {expanded} is not owned by the user", "remove it and submit again")
        data = fh.read(MAX_SCRIPT + 1)
    if len(data) > MAX_SCRIPT:
        raise UsageError(f"the job script {expanded} is larger than 1 MiB", "keep large data in files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the job script {expanded} is not UTF-8 text") from None


def script_from_spec(data: Any, executor: str, *, owner_uid: int | None = None) -> Any:
    """OOD's PSI/J JSON (psij.rb's ``params``) -> :class:`~ood_k8s.sessions.resolve.Script`."""
    from ood_k8s.sessions.resolve import Script, native_from_attributes

    if not isinstance(data, dict):
        raise UsageError("the job spec on stdin must be a JSON object")
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise UsageError(f"unknown job spec key '{unknown[0]}'", f"known keys: {', '.join(sorted(_SPEC_KEYS))}")
    attributes = data.get("attributes") or {}
    resources = data.get("resources") or {}
    if not isinstance(attributes, dict) or not isinstance(resources, dict):
        raise UsageError("attributes and resources must be JSON objects")
    custom = attributes.get("custom_attributes") or {}
    if not isinstance(custom, dict):
        raise UsageError("attributes.custom_attributes must be a JSON object")
    native, hold = native_from_attributes(custom, executor)
    content = ""
    if data.get("executable"):
        content = strip_native_tokens(read_script(str(data["executable"]), owner_uid), custom)
    return Script(
        content=content, job_name=data.get("name"), workdir=data.get("directory"),
        job_environment=data.get("environment"), output_path=data.get("stdout_path"),
        error_path=data.get("stderr_path"), input_path=data.get("stdin_path"),
        queue_name=attributes.get("queue_name"), accounting_id=attributes.get("account"),
        reservation_id=attributes.get("reservation_id"), wall_time=parse_duration(attributes.get("duration")),
        gpus_per_node=resources.get("gpu_cores_per_process"), cores=resources.get("cpu_cores_per_process"),
        memory=resources.get("memory"), native=native or None, submit_as_hold=hold,
    )


def _when(ts: int | None) -> str | None:
    if ts is None:
        return None
    import time

    return time.strftime(TIME_FORMAT, time.localtime(ts))


def wire_info(info: Any) -> dict[str, Any]:
    """One element of get_info.py's JSON list; the whole object becomes OOD's ``Info#native``."""
    out: dict[str, Any] = {
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
        out.setdefault(key, value)
    return out


def _identity(opts: dict[str, str]) -> Any:
    from ood_k8s.core import identity

    user = opts.pop("user", None)
    if user is not None:
        if os.geteuid() != 0:
            raise SecurityError("--user is only for administrators (root)", "run ood-k8s-psij as the portal user")
        from ood_k8s.core.names import check_username

        return identity.lookup(check_username(user)), True
    return identity.current(), False


def run(args: Sequence[str]) -> int:
    if not args:
        raise UsageError("no PSI/J script given", "OOD runs: ood-k8s-psij <gem>/psij/get_info.py --id=ID --executor=X")
    verb = VERBS.get(os.path.basename(args[0])) or (args[0] if args[0] in VERBS.values() else None)
    if verb is None:
        raise UsageError(f"unknown PSI/J script '{os.path.basename(args[0])[:60]}'",
                         f"expected one of: {', '.join(VERBS)}")
    opts, rest = _options(args[1:])
    executor = opts.pop("executor", rest[0] if rest else "ood_k8s")
    job_id = opts.pop("id", "").strip()
    opts.pop("owner", None)  # OOD never passes it; "all" already means this user's jobs
    config_path = opts.pop("config", None)
    ident, admin = _identity(opts)
    if opts:
        raise UsageError(f"unknown option --{next(iter(opts))}", "options are --id, --executor, --user, --config")

    from ood_k8s import config
    from ood_k8s.kubeconfig import clients as connect
    from ood_k8s.sessions.adapter import Adapter

    cfg = config.load(config_path)
    if ident.uid < cfg.users.min_uid:
        raise SecurityError(f"'{ident.username}' (uid {ident.uid}) is a system account without sessions",
                            "run ood-k8s-psij as the portal user (administrators: add --user NAME)")
    if verb == "submit":
        raw = sys.stdin.read()
        try:
            data = json.loads(raw)
        except ValueError:
            raise UsageError("the job spec on stdin is not valid JSON", "OOD's psij adapter sends JSON") from None
        script = script_from_spec(data, executor, owner_uid=ident.uid if admin else None)
        adapter = Adapter(cfg, ident, connect.as_user(cfg, ident.username))
        sys.stdout.write(adapter.submit(script))
        sys.stdout.flush()
        return 0
    adapter = Adapter(cfg, ident, connect.as_user(cfg, ident.username))
    if verb == "info":
        if job_id:
            info = adapter.info(job_id)
            infos = [info] if info.native.get("found", True) else []  # [] is how PSI/J says "gone"
        else:
            infos = adapter.info_all()
        sys.stdout.write(json.dumps([wire_info(i) for i in infos]))
        sys.stdout.write("\n")
        sys.stdout.flush()
        return 0
    if not job_id:
        raise UsageError("Invalid job id specified: empty", "pass --id=ID")
    getattr(adapter, verb)(job_id)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return run_guarded("ood-k8s-psij", lambda: run(args))


def cli() -> None:
    """The ``ood-k8s-psij`` command (one process per OOD poll: see :func:`~ood_k8s.core.errors.exit_now`)."""
    exit_now(main())


if __name__ == "__main__":
    cli()

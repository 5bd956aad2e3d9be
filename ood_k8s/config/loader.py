# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Reading a site configuration: the file, its compiled cache, every problem at once.

The file is ``/etc/ood/config/ood_k8s.yml`` unless ``--config`` or ``$OOD_K8S_CONFIG`` names
another; ``-`` reads standard input.  When the default file does not exist the built-in default
is used, which is complete and valid (it is what ``make demo`` renders).

:func:`load` reports *every* problem at once, one line each, naming the key path, the bad value and
what was expected.  Unknown keys are errors: a typo must not silently fall back to a default.
Values are checked as they are read (:mod:`ood_k8s.config.values`); rules involving several keys
(:data:`CROSS_CHECKS`, and what each storage backend and identity provider adds) once they all are.
A compiled cache that the code now running already cross-checked skips the latter (see
:mod:`ood_k8s.config.yamlcache`).
"""

import os
import sys
import typing
from typing import Any, Callable, Dict, List, Literal, Optional, Set, Tuple

from ood_k8s.config import yamlcache
from ood_k8s.config.schema import Config
from ood_k8s.config.section import fields, is_section
from ood_k8s.config.yamlcache import YamlError, parse_yaml
from ood_k8s.core.errors import ConfigError

DEFAULT_PATH = "/etc/ood/config/ood_k8s.yml"
ENV_VAR = "OOD_K8S_CONFIG"


# --- values, as the schema declares them ----------------------------------------------------


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}s"
    if origin is dict:
        return "a mapping"
    if origin is typing.Union:
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if is_section(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(tp: Any, value: Any, path: str, problems: List[str], check: Optional[Callable] = None) -> Any:
    origin = typing.get_origin(tp)
    bad = object()
    result: Any = bad
    if is_section(tp):
        if isinstance(value, dict):
            return _build(tp, value, path, problems)
    elif origin is Literal:
        if value in typing.get_args(tp):
            result = value
    elif origin is list:
        if isinstance(value, list):
            (item_tp,) = typing.get_args(tp)
            return [_convert(item_tp, v, f"{path}[{i}]", problems, check) for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            _, val_tp = typing.get_args(tp)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    problems.append(f"{path}: key {_show(k)} is not a string")
                    continue
                out[k] = _convert(val_tp, v, f"{path}.{k}", problems)
            return out
    elif tp is Any:
        result = value
    elif tp is bool:
        if isinstance(value, bool):
            result = value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
    elif tp is str:
        # YAML turns 16 or 1.5 into numbers; for quantities and ids a number is what was meant.
        if isinstance(value, str):
            result = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            result = str(value)
        elif hasattr(value, "isoformat"):  # an unquoted 2027-01-25 is a YAML date: a term date meant as written
            result = value.isoformat()
    if result is bad:
        problems.append(f"{path}: got {_show(value)}, expected {_describe(tp)}")
        return None
    if check is not None:
        err = check(result)
        if err:
            problems.append(f"{path}: got {_show(value)}, expected {err}")
    return result


def _build(cls: type, data: Dict[str, Any], path: str, problems: List[str]) -> Any:
    hints = cls.__annotations__
    known = {s.name: s for s in fields(cls) if not s.internal}
    kwargs: Dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in known:
            import difflib  # deferred: only for the error message

            close = difflib.get_close_matches(str(key).replace("-", "_").lower(), list(known), n=1)
            suggestion = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{where}: unknown key{suggestion}; expected one of: {', '.join(known)}")
            continue
        kwargs[key] = _convert(hints[key], value, where, problems, known[key].check)
    for name, s in known.items():
        if name not in kwargs and s.required:
            problems.append(f"{path + '.' if path else ''}{name}: missing, expected {_describe(hints[name])}")
            kwargs[name] = None
    return cls(**kwargs)


# --- rules involving several keys ----------------------------------------------------------------


def _profile_problems(cfg: Config) -> List[str]:
    problems = []
    names = [p.name for p in cfg.profiles]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"profiles: got name {dup!r} twice, expected unique profile names")
    if cfg.profiles and cfg.jobs.default_profile not in names:
        problems.append(f"jobs.default_profile: got {cfg.jobs.default_profile!r}, expected one of {names}")
    if not cfg.profiles:
        problems.append("profiles: got an empty list, expected at least one profile")
    from ood_k8s.sessions.quantity import parse_quantity  # local: keeps config import light (decimal)

    for i, p in enumerate(cfg.profiles):
        for key in ("cpu", "memory"):
            r = getattr(p, key)
            try:
                if parse_quantity(r.default) > parse_quantity(r.max):
                    problems.append(f"profiles[{i}].{key}: got default {r.default} > max {r.max}, "
                                    "expected default <= max")
            except ValueError:
                pass  # already reported as a bad quantity
        if p.gpu.default > p.gpu.max:
            problems.append(f"profiles[{i}].gpu: got default {p.gpu.default} > max {p.gpu.max}, "
                            "expected default <= max")
    return problems


def _walltime_problems(cfg: Config) -> List[str]:
    problems = []
    if cfg.jobs.default_walltime > cfg.jobs.max_walltime:
        problems.append(f"jobs.default_walltime: got {cfg.jobs.default_walltime}, expected <= "
                        f"jobs.max_walltime ({cfg.jobs.max_walltime})")
    for i, p in enumerate(cfg.profiles):  # the guard holds every pod to the site's maximum (issue 15)
        if p.max_walltime > cfg.jobs.max_walltime:
            problems.append(f"profiles[{i}].max_walltime: got {p.max_walltime}, expected at most jobs.max_walltime "
                            f"({cfg.jobs.max_walltime}); 0 means the site's")
    return problems


def _storage_problems(cfg: Config) -> List[str]:
    from ood_k8s.storage import backend  # deferred: it imports this package

    return backend.of(cfg).config_problems(cfg)


def _auth_problems(cfg: Config) -> List[str]:
    from ood_k8s.auth import provider  # deferred: its Protocol costs every poll ~1 ms at import

    return provider.get(cfg.auth.mode).config_problems(cfg)


def _server_problems(cfg: Config) -> List[str]:
    if cfg.cluster.server == "" and cfg.cluster.kubeconfig == "":
        return ["cluster.server: got '', expected a URL, or cluster.kubeconfig naming a kubeconfig"]
    return []


def _isolation_problems(cfg: Config) -> List[str]:
    from ood_k8s.policy import network, pods  # deferred: ipaddress, and only when a file is checked

    return network.config_problems(cfg) + pods.config_problems(cfg)


def _agent_problems(cfg: Config) -> List[str]:
    a = cfg.agent  # client-go's leaderelection rules: a leader steps down before its Lease can lapse
    if not a.retry_period < a.renew_deadline < a.lease_duration:
        return [f"agent: retry_period ({a.retry_period}) < renew_deadline ({a.renew_deadline}) < lease_duration "
                f"({a.lease_duration}) is required, or two agents could lead at once"]
    return []


def _course_problems(cfg: Config) -> List[str]:
    if not cfg.courses:
        return []
    from ood_k8s.courses import checks  # deferred: zoneinfo, and only for a site with courses

    return checks.config_problems(cfg)


def _gpu_sharing_problems(cfg: Config) -> List[str]:
    if not any(p.gpu.mig or p.gpu.time_slicing or p.gpu.resource.startswith("nvidia.com/mig-") for p in cfg.profiles):
        return []
    from ood_k8s.capacity import gpushare  # deferred: only a site that shares GPUs

    return gpushare.config_problems(cfg)


# Rules that involve more than one key, in the order their problems are reported.
CROSS_CHECKS: Tuple[Callable[[Config], List[str]], ...] = (
    _profile_problems, _walltime_problems, _storage_problems, _auth_problems, _server_problems,
    _isolation_problems, _course_problems, _agent_problems, _gpu_sharing_problems)


def _cross_checks(cfg: Config, problems: List[str]) -> None:
    for rule in CROSS_CHECKS:
        problems.extend(rule(cfg))


def _traced(run: Callable[[], None]) -> Set[str]:
    """Run ``run``; return the source files whose code ran: what a compiled cache's mark must name,
    wherever a rule (or what it calls) lives."""
    ran: Set[str] = set()

    def seen(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            ran.add(frame.f_code.co_filename)

    previous = sys.getprofile()
    sys.setprofile(seen)
    try:
        run()
    finally:
        sys.setprofile(previous)
    return ran


# --- reading -------------------------------------------------------------------------------------


def parse(data: Any, source: str = "<string>") -> Config:
    """Build a :class:`Config` from already-parsed YAML, raising one ConfigError listing every problem."""
    return _parse(data, source, cross_checks=True)


def _parse(data: Any, source: str, cross_checks: bool, mark: bool = False) -> Config:
    """``mark``: record which code cross-checked the data (:func:`yamlcache.record_mark`)."""
    problems: List[str] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level is {type(data).__name__}, expected a mapping of settings")
    cfg = _build(Config, data, "", problems)
    if not problems and cross_checks:
        if mark:
            yamlcache.record_mark(_traced(lambda: _cross_checks(cfg, problems)))
        else:
            _cross_checks(cfg, problems)
    if problems:
        first = problems[0] if len(problems) == 1 else f"{len(problems)} problems, first: {problems[0]}"
        raise ConfigError(f"{source}: {first}", problems=problems)
    cfg.source = source
    return cfg


def resolve_path(explicit: Optional[str] = None) -> Optional[str]:
    """The config path to read: --config, then $OOD_K8S_CONFIG, then the default if it exists."""
    if explicit:
        return explicit
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    return DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None


def load_site(path: Optional[str] = None) -> Config:
    """:func:`load`, for what acts on a cluster or AWS: the built-in default is the example, never a site."""
    if resolve_path(path) is None:
        raise ConfigError(f"no site configuration: {DEFAULT_PATH} does not exist and neither --config nor "
                          f"${ENV_VAR} names one (the built-in default is only an example)",
                          f"create it: ood-k8s config example > {DEFAULT_PATH}; edit; ood-k8s config check")
    return load(path)


def load(path: Optional[str] = None, read_only: bool = False) -> Config:
    """Load the site configuration (see the module docstring for where it is looked for).
    ``read_only``: no compiled cache is read or written (``config check`` writes nothing)."""
    resolved = resolve_path(path)
    if resolved is None:
        return Config()
    try:
        if resolved == "-":
            return parse(parse_yaml(sys.stdin.read(), strict=True), "<stdin>")
        text, st = yamlcache.read_text(resolved)
        cache = None if read_only else yamlcache.read_cache(resolved, text, st)
        data = cache["data"] if cache is not None else parse_yaml(text, strict=True)
    except OSError as exc:
        raise ConfigError(f"cannot read config {resolved}: {exc.strerror}",
                          f"create it (see 'ood-k8s config example') or point {ENV_VAR} at it") from None
    except YamlError as exc:
        where = f" line {exc.line}" if exc.line else ""
        raise ConfigError(f"{resolved}:{where} is not valid YAML: {exc.problem}") from None
    # A cache root wrote after this very code cross-checked the data needs no cross-checks (they
    # import decimal, ~3 ms of every poll); anything else is checked in full -- and compiled by root,
    # with the mark of the code that checked it.
    checked = cache is not None and yamlcache.mark_holds(cache.get("checked"))
    compiles = not read_only and not checked and yamlcache.may_write(st)
    cfg = _parse(data, resolved, cross_checks=not checked, mark=compiles)
    mark = yamlcache.last_code_mark() if compiles else None
    if compiles and (cache is None or mark is not None):
        yamlcache.write_cache(resolved, text, data, st, checked=mark)
    if cfg.agent.enabled and not read_only and yamlcache.may_write(st):  # the polls' way to the agent
        from ood_k8s.agent import fastpoll

        a = cfg.agent
        fastpoll.keep_hint(resolved, text, st, fastpoll.Hint(a.socket, a.timeout, a.max_age, cfg.users.min_uid))
    if cfg.secrets_file and not read_only:
        from ood_k8s.config.files import merge_secrets  # root processes only; students never read it

        merge_secrets(cfg)
    return cfg

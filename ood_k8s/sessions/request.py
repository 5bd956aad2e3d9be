"""What a submission says, before any site rule: OOD's Script, its ``native`` and PSI/J's job spec.

``native`` arrives in one of two shapes and leaves as one mapping (:func:`normalize_native`):

* a mapping, from apps written for OOD's Kubernetes adapter (REFERENCE §2);
* a list of CLI-like tokens, from apps written for OOD's PSI/J adapter (``["--profile", "gpu-t4"]``),
  which psij.rb also turns into PSI/J custom attributes (REFERENCE §3): :func:`tokens_to_attributes`
  follows psij.rb's rule and :func:`native_from_attributes` maps the attributes onto ``native``.

:func:`script_from_psij` turns the JSON OOD's PSI/J adapter pipes to ``submit.py`` into a
:class:`Script`; reading the job script it names is the caller's (the wire side's) business.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from ood_k8s.core.errors import UsageError
from ood_k8s.sessions.checks import bad, mapping, show

# Tokens a PSI/J submission may carry (OOD turns script.native ["--key", "value"] into these).
ATTRIBUTE_KEYS = ("profile", "image", "port", "cpu", "memory", "gpus", "command", "working_dir",
                  "image_pull_policy", "hold", "native")
# Attributes that are keys of ``native`` itself; the others are keys of ``native.container``.
_TOP_LEVEL_ATTRIBUTES = ("profile", "gpus")

# Script fields OOD may send that have no meaning on Kubernetes; accepted and ignored.
_IGNORED_SCRIPT_KEYS = frozenset({
    "email", "email_on_started", "email_on_terminated", "rerunnable", "priority", "start_time",
    "job_array_request", "qos", "reservation_id", "copy_environment", "input_path", "args",
})

# Keys of the JSON psij.rb builds (``params``); nil keys are dropped by OOD.
SPEC_KEYS = frozenset({"environment", "directory", "name", "executable", "stdin_path", "stdout_path", "stderr_path",
                       "inherit_environment", "attributes", "resources", "arguments", "pre_launch", "post_launch",
                       "launcher"})


@dataclass
class Script:
    """The fields of OOD's ``OodCore::Job::Script`` an adapter acts on (ood_core: job/script.rb)."""

    content: str = ""
    job_name: str | None = None
    workdir: str | None = None
    job_environment: dict[str, Any] | None = None
    shell_path: str | None = None
    output_path: str | None = None
    error_path: str | None = None
    input_path: str | None = None
    queue_name: str | None = None
    accounting_id: str | None = None
    reservation_id: str | None = None
    wall_time: int | None = None
    gpus_per_node: int | None = None
    cores: int | None = None
    memory: int | str | None = None       # bytes (PSI/J) or a quantity
    native: Any = None                    # mapping, or list of "--key value" tokens
    submit_as_hold: bool = False
    copy_environment: bool | None = None
    args: list[str] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Script:
        """Build from plain data (JSON/YAML), refusing unknown keys with one line."""
        if not isinstance(data, Mapping):
            raise UsageError("a job script must be a mapping of OOD Script fields")
        known = set(cls.__dataclass_fields__)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                kwargs[key] = value
            elif key not in _IGNORED_SCRIPT_KEYS:
                raise UsageError(f"unknown job script field '{show(key)}'",
                                 f"known fields: {', '.join(sorted(known))}")
        return cls(**kwargs)


# --- native: OOD's tokens and PSI/J's custom attributes -------------------------------------------


def tokens_to_attributes(tokens: list[Any]) -> dict[str, str]:
    """OOD psij.rb's rule: ['--name', 'value'] -> {name: value}; a flag without value -> ''."""
    out: dict[str, str] = {}
    items = [str(t) for t in tokens]
    i = 0
    while i < len(items):
        token = items[i]
        dashed = token.startswith("-")
        name = token[2:] if token.startswith("--") else token[1:] if dashed else token
        if dashed and i + 1 < len(items) and not items[i + 1].startswith("-"):
            out[name] = items[i + 1]
            i += 2
        else:
            out[name] = ""
            i += 1
    return out


def _attribute_key(raw_key: Any, executor: str) -> str:
    """An attribute's name without its ``<executor>.`` prefix, with '-' read as '_'; refuses unknown ones."""
    key = str(raw_key)
    # psij-python's convention is "<executor>.<key>"; OOD's submit.py adds that prefix too.
    for prefix in ({f"{executor}.", "ood_k8s.", "ood-k8s."} if executor else {"ood_k8s.", "ood-k8s."}):
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    key = key.replace("-", "_")
    if key not in ATTRIBUTE_KEYS:
        raise UsageError(f"unknown job option '--{show(key)}'",
                         f"known options: {', '.join('--' + k for k in ATTRIBUTE_KEYS)}")
    return key


def native_from_attributes(attrs: Mapping[str, Any], executor: str = "") -> tuple[dict[str, Any], bool]:
    """(native mapping, hold) from PSI/J custom attributes; ``<executor>.`` prefixes are dropped."""
    native: dict[str, Any] = {}
    container: dict[str, Any] = {}
    hold = False
    for raw_key, value in attrs.items():
        key = _attribute_key(raw_key, executor)
        if key == "hold":
            hold = str(value).lower() not in ("false", "0", "no")
        elif key == "native":
            try:
                extra = json.loads(value) if isinstance(value, str) else value
            except ValueError:
                raise bad("--native", value, "a JSON object") from None
            native = _deep_merge(native, mapping(extra, "--native"))
        elif key in _TOP_LEVEL_ATTRIBUTES:
            native[key] = value
        else:
            container[key] = value
    if container:
        native = _deep_merge(native, {"container": container})
    return native, hold


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def normalize_native(native: Any) -> tuple[dict[str, Any], bool]:
    """(mapping, hold) from OOD's ``script.native`` in either of its two shapes."""
    if native is None:
        return {}, False
    if isinstance(native, (list, tuple)):
        return native_from_attributes(tokens_to_attributes(list(native)))
    return mapping(native, "native"), False


# --- OOD's PSI/J job spec ---------------------------------------------------------------------------


def parse_duration(value: Any) -> int | None:
    """OOD sends whole seconds; psij-python's serializer sends "3600.0 s"; people write hh:mm:ss."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UsageError(f"the session's duration (walltime): got {value!r}, expected seconds")
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
        raise UsageError(f"the session's duration (walltime): got '{text[:40]}', expected seconds or "
                         "hh:mm:ss") from None


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


def script_from_psij(data: Any, executor: str, read: Callable[[str], str]) -> Script:
    """OOD's PSI/J JSON (psij.rb's ``params``) -> :class:`Script`; ``read(path)`` returns the job script."""
    if not isinstance(data, dict):
        raise UsageError("the job spec on stdin must be a JSON object")
    unknown = sorted(set(data) - SPEC_KEYS)
    if unknown:
        raise UsageError(f"unknown job spec key '{unknown[0]}'", f"known keys: {', '.join(sorted(SPEC_KEYS))}")
    attributes = data.get("attributes") or {}
    resources = data.get("resources") or {}
    if not isinstance(attributes, dict) or not isinstance(resources, dict):
        raise UsageError("attributes and resources must be JSON objects")
    custom = attributes.get("custom_attributes") or {}
    if not isinstance(custom, dict):
        raise UsageError("attributes.custom_attributes must be a JSON object")
    native, hold = native_from_attributes(custom, executor)
    content = strip_native_tokens(read(str(data["executable"])), custom) if data.get("executable") else ""
    return Script(
        content=content, job_name=data.get("name"), workdir=data.get("directory"),
        job_environment=data.get("environment"), output_path=data.get("stdout_path"),
        error_path=data.get("stderr_path"), input_path=data.get("stdin_path"),
        queue_name=attributes.get("queue_name"), accounting_id=attributes.get("account"),
        reservation_id=attributes.get("reservation_id"), wall_time=parse_duration(attributes.get("duration")),
        gpus_per_node=resources.get("gpu_cores_per_process"), cores=resources.get("cpu_cores_per_process"),
        memory=resources.get("memory"), native=native or None, submit_as_hold=hold,
    )

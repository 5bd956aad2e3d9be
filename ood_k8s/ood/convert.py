"""``ood-k8s ood convert-app DIR``: an app written for OOD's Kubernetes adapter, made to launch through
the psij adapter (REFERENCE §2, §3, §10).

Such apps give ``script.native`` as a mapping (``container``, ``mounts``, ``node_selector``...).
psij.rb needs a list of tokens -- it calls ``native.join`` and crashes on a mapping before any
executor runs -- while ood-k8s accepts the whole mapping as one token, ``--native <JSON>``.  The
converter therefore leaves the mapping as it is, ERB included, and wraps it: ERB renders it into
its output buffer as before (``_erbout``, ERB's documented default buffer, which OOD's dashboard
uses), the wrapper cuts that text out again and emits it as ``["--native", <the mapping as JSON>]``.
Admins keep editing the same YAML.

Also changed, because ood-k8s does them itself: a ``host`` mount of the user's home is removed (every
session gets the home at the same path), and ``batch_connect.set_host`` is removed (the cluster
file's ``set_host`` gives the address OOD's proxy can reach).  Everything else that needs a person
is listed, one line each: ``nfs``/``host`` mounts (the site's admission guard refuses them; they
belong in ``storage.extra_mounts``), keys ood-k8s does not know, a ``cluster:`` that is not the
ood-k8s cluster, ERB logic the wrapper cannot keep together.

Text in, text out (:func:`convert_submit`); :func:`convert_app` reads and writes the app's files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ood_k8s.core.errors import UsageError
from ood_k8s.sessions.containers import CONTAINER_KEYS
from ood_k8s.sessions.resolve import NATIVE_KEYS

SUBMIT = "submit.yml.erb"
BACKUP_SUFFIX = ".orig"
MARK = "_ood_k8s_at"  # the ERB variable a converted file uses; its presence means "already converted"
_KEY = re.compile(r"^(?P<indent> *)(?:- +)?(?P<key>[A-Za-z_][A-Za-z0-9_-]*) *:(?P<rest>.*)$")
_HOME = re.compile(r"ENV\[\s*['\"]HOME['\"]\s*\]|Dir\.home|getpwnam\([^)]*\)\.dir|\$HOME|\$\{HOME\}|~")
_OPENERS = re.compile(r"(^\s*(if|unless|case|while|until|for|begin)\b)|\bdo\b\s*(\|[^|]*\|)?\s*$")
_ARTICLE = {"nfs": "an NFS", "host": "a host (hostPath)"}
_ERB_CODE = re.compile(r"<%(?!=|#)-?(.*?)-?%>", re.S)


@dataclass
class Conversion:
    text: str
    changed: list[str] = field(default_factory=list)  # what was done, one line each
    by_hand: list[str] = field(default_factory=list)  # what an admin still has to do, one line each

    @property
    def converted(self) -> bool:
        return bool(self.changed)


# --- reading YAML-with-ERB line by line -------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _erb_only(line: str) -> bool:
    """A line that is only ERB logic (``<% ... %>`` or ``<%- ... -%>``): no YAML of its own."""
    s = line.strip()
    return s.startswith("<%") and not s.startswith("<%=") and s.endswith("%>") and s.count("%>") == 1


def _yaml(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#") and not _erb_only(line)


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """End (exclusive) of the block under the key at ``start``: every later line more indented, with
    the ERB logic lines among them; an ERB line after the block's last YAML line belongs to it if it
    is indented like the block or closes an ERB block opened in it."""
    last = start
    for i in range(start + 1, len(lines)):
        if _yaml(lines[i]):
            if _indent(lines[i]) <= indent:
                break
            last = i
    for i in range(last + 1, len(lines)):
        if _yaml(lines[i]):
            break
        if lines[i].strip() and (_indent(lines[i]) > indent or _depth(lines[start + 1:last + 1]) > 0):
            last = i
    return last + 1


def _depth(lines: list[str]) -> int:
    """ERB blocks opened in ``lines`` minus those closed; -1 as soon as one closes what opened before."""
    depth = 0
    for code in _ERB_CODE.findall("\n".join(lines)):
        for part in code.split(";"):
            depth += 1 if _OPENERS.search(part) else 0
            depth -= len(re.findall(r"\bend\b", part))
            if depth < 0:
                return -1
    return depth


def _find_key(lines: list[str], key: str, lo: int = 0, hi: int | None = None,
              indent: int | None = None) -> int | None:
    for i in range(lo, len(lines) if hi is None else hi):
        m = _KEY.match(lines[i])
        if m and m["key"] == key and not lines[i].lstrip().startswith("- ") and \
                (indent is None or len(m["indent"]) == indent):
            return i
    return None


# --- the parts of a conversion ---------------------------------------------------------------------


def _value(text: str, key: str) -> str:
    m = re.search(rf"^\s*(?:- +)?{key} *: *(.*?)\s*$", text, re.M)
    return m.group(1).strip("'\"") if m else ""


def _mounts(lines: list[str], lo: int, hi: int, conv: Conversion) -> list[str]:
    """``lines[lo:hi]`` (the native block) without home mounts; other volume mounts are reported."""
    at = _find_key(lines, "mounts", lo, hi)
    if at is None:
        return lines[lo:hi]
    end = _block_end(lines, at, _indent(lines[at]))
    starts = [i for i in range(at + 1, end) if _yaml(lines[i]) and lines[i].lstrip().startswith("- ")]
    starts = [i for i in starts if _indent(lines[i]) == _indent(lines[starts[0]])]
    items = list(zip(starts, [*starts[1:], end]))
    keep = lines[at + 1:starts[0]] if starts else []
    for n, (a, b) in enumerate(items):
        text = "\n".join(lines[a:b])
        kind, name, dest = _value(text, "type"), _value(text, "name") or f"#{n}", _value(text, "destination_path")
        if kind == "host" and (_HOME.search(_value(text, "path")) or _HOME.search(dest) or name == "home"):
            conv.changed.append(f"removed mounts[{n}] '{name}': ood-k8s mounts each user's home at the same path "
                                "in every session")
            continue
        keep += lines[a:b]
        if kind in ("nfs", "host"):
            conv.by_hand.append(f"mounts[{n}] '{name}' is {_ARTICLE[kind]} volume, which sessions may not mount "
                                f"unless the site allows it: provide {dest or 'it'} through storage.extra_mounts in "
                                "ood_k8s.yml and remove it here")
    head = [lines[at]] if any(_yaml(line) for line in keep) else []
    return lines[lo:at] + head + keep + lines[end:hi]


def _unknown_keys(block: list[str], conv: Conversion) -> None:
    yaml_lines = [line for line in block if _yaml(line)]
    if not yaml_lines:
        return
    top = _indent(yaml_lines[0])
    container_at = next((i for i, line in enumerate(yaml_lines) if _indent(line) == top and
                         (m := _KEY.match(line)) and m["key"] == "container"), None)
    for line in yaml_lines:
        m = _KEY.match(line)
        if m and _indent(line) == top and not line.lstrip().startswith("- ") and m["key"] not in NATIVE_KEYS:
            conv.by_hand.append(f"native.{m['key']} is not a key ood-k8s knows: remove it "
                                f"(known: {', '.join(sorted(NATIVE_KEYS))})")
    if container_at is None:
        return
    inner = None
    for line in yaml_lines[container_at + 1:]:
        if _indent(line) <= top:
            break
        inner = _indent(line) if inner is None else inner
        m = _KEY.match(line)
        if m and _indent(line) == inner and m["key"] not in CONTAINER_KEYS:
            conv.by_hand.append(f"native.container.{m['key']} is not a key ood-k8s knows: remove it")


def _wrap_native(lines: list[str], conv: Conversion) -> list[str]:
    at = _find_key(lines, "native")
    if at is None:
        return lines
    others = [i + 1 for i in range(at + 1, len(lines)) if _find_key(lines, "native", i, i + 1) is not None]
    if others:
        conv.by_hand.append(f"{SUBMIT} lines {at + 1} and {others[0]}: native: is given more than once (ERB "
                            "branches?): make it one block, with the ERB logic inside it, and run this again")
        return lines
    m = _KEY.match(lines[at])
    assert m is not None
    rest = m["rest"].split("#", 1)[0].strip()
    if rest:
        conv.by_hand.append(f"{SUBMIT} line {at + 1}: native: is given inline; write it as a block of YAML under "
                            "native: and run this again")
        return lines
    end = _block_end(lines, at, _indent(lines[at]))
    body = [line for line in lines[at + 1:end] if _yaml(line)]
    if not body:
        return lines
    if body[0].lstrip().startswith("- "):
        return lines  # already a list of tokens: what the psij adapter wants
    if _depth(lines[at + 1:end]) != 0:
        conv.by_hand.append(f"{SUBMIT} lines {at + 2}-{end}: ERB logic (<% %>) starts or ends outside native:, so "
                            "it cannot be wrapped; move it inside native: and run this again")
        return lines
    block = _mounts(lines, at + 1, end, conv)
    _unknown_keys(block, conv)
    pad = " " * _indent(body[0])
    wrapped = [
        f"{pad}# Converted by 'ood-k8s ood convert-app': OOD's psij adapter needs native as a list of tokens.",
        f"{pad}# The mapping below is rendered as before, then sent as one token: --native <it, as JSON>.",
        f"{pad}<%- {MARK} = _erbout.length -%>",
        *block,
        f"{pad}<%- _ood_k8s_native = _erbout.slice!({MARK}..-1) -%>",
        f'{pad}- "--native"',
        f'{pad}- <%= require "json"; require "yaml"; YAML.safe_load(_ood_k8s_native).to_json.to_json %>',
    ]
    conv.changed.insert(0, "native: now sent as the tokens [\"--native\", <the same mapping as JSON>]; "
                        "edit the mapping as before")
    return lines[:at + 1] + wrapped + lines[end:]


def _drop_set_host(lines: list[str], conv: Conversion) -> list[str]:
    bc = _find_key(lines, "batch_connect", indent=0)
    if bc is None:
        return lines
    end = _block_end(lines, bc, 0)
    at = _find_key(lines, "set_host", bc + 1, end)
    if at is None:
        return lines
    if _block_end(lines, at, _indent(lines[at])) != at + 1:
        conv.by_hand.append(f"{SUBMIT} line {at + 1}: remove batch_connect.set_host: the cluster file's set_host "
                            "gives the address OOD's proxy can reach")
        return lines
    conv.changed.append("removed batch_connect.set_host: the cluster file's set_host gives the address OOD's "
                        "proxy can reach")
    return lines[:at] + lines[at + 1:]


def convert_submit(text: str) -> Conversion:
    """A Kubernetes-adapter ``submit.yml.erb`` rewritten for the psij adapter (see the module doc)."""
    conv = Conversion(text)
    if MARK in text:
        return conv
    lines = text.split("\n")
    lines = _drop_set_host(_wrap_native(lines, conv), conv)
    conv.text = "\n".join(lines)
    return conv


def _cluster_notes(app: Path, cluster_id: str) -> list[str]:
    notes = []
    for name in ("form.yml.erb", "form.yml", SUBMIT):
        path = app / name
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            m = _KEY.match(line)
            if m and m["key"] == "cluster" and len(m["indent"]) == 0:
                value = m["rest"].split("#", 1)[0].strip().strip("'\"")
                if value and "<%" not in value and value != cluster_id:
                    notes.append(f"{name} line {n}: cluster is '{value}': name the ood-k8s cluster, '{cluster_id}' "
                                 "(portal.cluster_id)")
    return notes


def convert_app(app: str, cluster_id: str, *, dry_run: bool = False) -> Conversion:
    """Convert ``<app>/submit.yml.erb`` in place (the original kept as ``submit.yml.erb.orig``)."""
    root = Path(app)
    path = root / SUBMIT
    if not path.is_file():
        raise UsageError(f"{path} not found", "give the directory of a Batch Connect app with a submit.yml.erb")
    original = path.read_text(encoding="utf-8")
    conv = convert_submit(original)
    conv.by_hand += _cluster_notes(root, cluster_id)
    if conv.converted and not dry_run:
        backup = path.with_name(SUBMIT + BACKUP_SUFFIX)
        if backup.exists():
            raise UsageError(f"{backup} exists", "move it away first: it may be the only copy of the original")
        backup.write_text(original, encoding="utf-8")
        path.write_text(conv.text, encoding="utf-8")
    return conv


def report(app: str, conv: Conversion, *, dry_run: bool = False) -> str:
    """What the admin reads: what was done, then what is left, one line each."""
    path = Path(app) / SUBMIT
    if MARK in conv.text and not conv.converted:
        head = f"{path}: already converted"
    elif not conv.converted:
        head = f"{path}: nothing to convert (native: is already a list of tokens, or absent)"
    elif dry_run:
        head = f"{path}: would be converted (dry run: nothing written)"
    else:
        head = f"converted {path} (the original is {path.name}{BACKUP_SUFFIX})"
    out = [head] + [f"  {line}" for line in conv.changed]
    if conv.by_hand:
        out += ["to do by hand:"] + [f"  {line}" for line in conv.by_hand]
    return "\n".join(out) + "\n"

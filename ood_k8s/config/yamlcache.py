# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""YAML files, compiled: a file's parsed data beside it, for the processes that read it next.

OOD starts a process per status poll, and importing PyYAML would be a quarter of it.  When root
loads a root-owned file (the hook at each login, ``ood-k8s config check``), it leaves
``<file>.cache.json`` beside it: the parsed data, the exact text it came from and -- for the site
configuration -- the mark of the code that cross-checked it.  Every later load whose file text is
identical reads that instead of parsing YAML, and skips only the cross-checks the marked code
already passed; any edit makes the cache stale until root loads the file again.  Deleting the cache
is always safe (see :func:`read_yaml`).
"""

import os
import sys
from typing import Any, Dict, Iterable, Optional, Tuple

CACHE_SUFFIX = ".cache.json"  # /etc/ood/config/ood_k8s.yml -> /etc/ood/config/ood_k8s.yml.cache.json
_CACHE_VERSION = 1
_CACHE_MAX = 4 << 20


class YamlError(ValueError):
    """A file is not UTF-8 YAML: ``problem`` says why, ``line`` (1-based, or None) where."""

    def __init__(self, problem: str, line: Optional[int] = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def parse_yaml(text: str, strict: bool = False) -> Any:
    """YAML text -> data (safe loader, the C one when PyYAML has it); raises :class:`YamlError`.
    ``strict``: a key given twice in one mapping is an error (YAML keeps the last, silently)."""
    import yaml  # deferred: read_yaml's cache usually makes it unnecessary

    from ood_k8s.render import yamlsafe

    try:
        return _strict_load(text) if strict else yamlsafe.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlError(str(getattr(exc, "problem", None) or exc), mark.line + 1 if mark else None) from None


def _strict_load(text: str) -> Any:
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Strict(base):  # type: ignore[misc,valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: Dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} appears twice (lines {seen[key]} and {line}); "
                            "the first would be silently lost", key_node.start_mark)
                    seen[key] = line
                except TypeError:
                    continue  # an unhashable key: the constructor reports it
            return super().construct_mapping(node, deep)

    return yaml.load(text, Loader=Strict)  # noqa: S506 - a safe loader


def read_yaml(path: str) -> Any:
    """The data of the YAML file ``path``, through its compiled cache ``<path>.cache.json``.

    OOD starts a process per status poll, and importing PyYAML would be a quarter of it: when root
    reads a root-owned file (the hook at each login; ``ood-k8s config check``), the parsed data is
    left beside it with the exact text it came from.  Any process whose file text is identical
    uses the data instead of parsing -- no edit, however quick, is missed -- provided the cache is
    trusted as much as the file: a regular file (not a link) of the file's owner that nobody else
    may write.  Deleting a cache is always safe.  Raises OSError and :class:`YamlError`.
    """
    text, st = read_text(path)
    cache = read_cache(path, text, st)
    if cache is not None:
        return cache["data"]
    data = parse_yaml(text)
    write_cache(path, text, data, st)
    return data


def read_text(path: str) -> Tuple[str, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        raw = fh.read()
    try:
        return raw.decode("utf-8"), st
    except UnicodeDecodeError:
        raise YamlError("it is not UTF-8 text") from None


# --- the mark: which code cross-checked a cache's data ------------------------------------------------

_STDLIB = os.path.dirname(os.__file__) + os.sep  # changes only with the interpreter
_last_mark: Optional[Dict[str, Any]] = None


def record_mark(ran: Iterable[str]) -> Optional[Dict[str, Any]]:
    """Record (and return) the mark of the code that just cross-checked a configuration.

    It names the package version and the size and mtime of each source file in ``ran`` -- every
    file whose code the checks ran (:func:`ood_k8s.config.loader._traced`), the standard library
    left out -- and of every ``ood_k8s.config`` module, which make the settings the checks read.
    So a rule moved to another module, or a backend's rule, is covered without a list to keep.
    None when a file cannot be read (installed without sources): such a cache is always checked.
    """
    global _last_mark
    from ood_k8s import __version__

    files = {os.path.abspath(f) for f in ran if f.endswith(".py") and not f.startswith(_STDLIB)}
    files.update(os.path.abspath(m.__file__) for name, m in list(sys.modules.items())
                 if (name == "ood_k8s.config" or name.startswith("ood_k8s.config.")) and getattr(m, "__file__", None))
    entries = []
    for path in sorted(files):
        try:
            st = os.stat(path)
        except OSError:
            _last_mark = None
            return None
        entries.append([path, st.st_size, st.st_mtime_ns])
    _last_mark = {"version": __version__, "files": entries}
    return _last_mark


def last_code_mark() -> Optional[Dict[str, Any]]:
    """The mark :func:`record_mark` recorded last in this process (None if none was)."""
    return _last_mark


def mark_holds(mark: Any) -> bool:
    """Whether ``mark`` (from a cache) names this version and files exactly as they are now."""
    from ood_k8s import __version__

    if not isinstance(mark, dict) or mark.get("version") != __version__ or not mark.get("files"):
        return False
    try:
        for path, size, mtime_ns in mark["files"]:
            st = os.stat(path)
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                return False
    except (OSError, TypeError, ValueError):
        return False
    return True


def may_write(st: os.stat_result) -> bool:
    """Root only, and only for a root-owned file: readers trust a cache of the file's owner."""
    return os.geteuid() == 0 and st.st_uid == 0


def read_cache(path: str, text: str, st: os.stat_result) -> Optional[Dict[str, Any]]:
    import json
    import stat

    try:
        fd = os.open(path + CACHE_SUFFIX, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        cst = os.fstat(fd)
        if not stat.S_ISREG(cst.st_mode) or cst.st_uid != st.st_uid or cst.st_mode & 0o022 or \
                cst.st_size > _CACHE_MAX:
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        cache = json.loads(b"".join(chunks))
    except ValueError:
        return None
    if not isinstance(cache, dict) or cache.get("version") != _CACHE_VERSION or cache.get("yaml") != text:
        return None
    return cache


def write_cache(path: str, text: str, data: Any, st: os.stat_result,
                checked: Optional[Dict[str, Any]] = None) -> None:
    """Leave ``data`` beside ``path`` (see :func:`read_yaml`), when :func:`may_write`.  ``checked``: the
    data passed the cross-checks of the code so marked (:func:`record_mark`)."""
    if not may_write(st):
        return
    import json
    import stat

    record: Dict[str, Any] = {"version": _CACHE_VERSION, "yaml": text, "data": data}
    if checked:
        record["checked"] = checked
    try:
        blob = json.dumps(record)
        if json.loads(blob)["data"] != data:
            return  # e.g. non-string keys inside 'affinity' (JSON would turn them into strings)
    except (TypeError, ValueError):
        return  # YAML timestamps, binary, NaN...
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.core.fsutil import atomic_write

    try:
        # Never more readable than the file: it may hold a secret (a token, image_pull_secret).
        atomic_write(path + CACHE_SUFFIX, blob.encode(), mode=stat.S_IMODE(st.st_mode) & 0o644, gid=st.st_gid)
    except (OSError, OodK8sError):
        pass  # a read-only directory, a link in the way: the YAML is parsed each time, that is all



"""The layout's structural budget (LAYOUT.md, "Rules that make the budget structural"), as tests.

* What the three one-shot entry points import -- the ``ood-k8s-psij`` poll, the ``ood-k8s credential``
  plugin and a returning user's hook, each started as a real process -- is in ``ood_k8s/core/`` or
  says so on its first line, and keeps the hot-path rules; a module saying so that none imports is
  a stale marker.
* No function over 80 lines, no module over 500.
* Every ``ood-k8s.io/`` key and label is spelled in one module, ``ood_k8s/core/vocab.py``.
* setup.cfg installs every package directory; only the facades sit at the package's top level.
* ruff's per-file list of hot-path modules (pyproject.toml) is exactly the hot-path set.
"""

from __future__ import annotations

import ast
import configparser
import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import ROOT
from tests.ood.test_psij_shim import GEM, site  # noqa: F401 - the fake-API site fixture, reused
from tests.users.test_hook import Portal, portal  # noqa: F401 - the portal-in-a-box fixture, reused

PACKAGE = ROOT / "ood_k8s"
CORE = PACKAGE / "core"
MARKER = "# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations"
# Imported at module level by a hot-path module, these cost every poll, kubectl call or login
# (REFERENCE §9; HELPERS.md rule 5); a module that needs one imports it where it is used.
BANNED_AT_IMPORT = frozenset({
    "argparse", "logging", "yaml", "dataclasses", "inspect", "threading", "urllib.parse", "calendar", "decimal",
    "hashlib", "subprocess", "email", "http.client", "tempfile", "difflib", "urllib.request", "typing_extensions",
})
FACADES = frozenset({"__init__.py", "__main__.py", "adapter.py", "hook.py", "names.py", "psij_executor.py"})
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
VOCAB = PACKAGE / "core" / "vocab.py"
DOMAIN = "ood-k8s.io"


def rel(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:  # the checkers' own tests use files elsewhere
        return str(path)


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_file(name: str) -> Path:
    """``ood_k8s.users.hook`` -> ood_k8s/users/hook.py (a package -> its __init__.py)."""
    base = ROOT.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def marked(path: Path) -> bool:
    with path.open(encoding="utf-8") as fh:
        return fh.readline().rstrip("\n") == MARKER


def is_core(path: Path) -> bool:
    return CORE in path.parents


def trivially_empty(path: Path) -> bool:
    """An empty package file: nothing in it to rule, nowhere to say so."""
    return not path.read_text(encoding="utf-8").strip()


# --- (a) what the one-shot entry points import -----------------------------------------------------


# Put first on a process's PYTHONPATH, this records which ood_k8s modules the process (and every Python
# process it starts) had loaded when it ended -- also through os._exit, which the one-shot entry points
# end with (core.process.exit_now) and which skips atexit.  ``-X importtime`` is not enough: it does
# not see a module loaded with importlib.import_module, which is how the registries load providers
# and storage backends.
PROBE = """import atexit, os, sys
_OUT = os.environ.get("OOD_K8S_IMPORT_PROBE")
def _dump():
    if not _OUT:
        return
    try:  # a child that dropped privileges cannot write here: its parent's list holds its modules
        with open(_OUT, "a") as fh:
            fh.write("".join(m + "\\n" for m in sorted(sys.modules) if m == "ood_k8s" or m.startswith("ood_k8s.")))
    except OSError:
        pass
_exit = os._exit
def _dump_and_exit(code):
    _dump()
    _exit(code)
os._exit = _dump_and_exit
atexit.register(_dump)
"""


class Probe(NamedTuple):
    directory: Path
    out: Path

    @classmethod
    def make(cls, base: Path) -> Probe:
        base.mkdir()
        (base / "sitecustomize.py").write_text(PROBE)
        return cls(base, base / "modules.txt")

    def env(self, env: dict[str, str]) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(self.directory), env.get("PYTHONPATH", str(ROOT))) if p)
        return {**env, "PYTHONPATH": path, "OOD_K8S_IMPORT_PROBE": str(self.out)}

    def modules(self, run_as_main: str = "") -> set[str]:
        """What was loaded; the module run with ``-m`` is loaded as __main__, so the caller names it."""
        found = set(self.out.read_text().split()) if self.out.exists() else set()
        assert found, f"the probe recorded nothing ({self.out})"
        return found | ({run_as_main} if run_as_main else set())


def psij_poll(site: dict[str, Any], probe: Probe) -> set[str]:  # noqa: F811
    """OOD's status polls of a session while it runs and once it has ended (that poll leaves the end
    note): ``get_info.py --id=JOB`` run by ``ood-k8s-psij`` (its console script is
    ood_k8s.agent.fastpoll:cli, then ood_k8s.ood.psij_shim's); the session was submitted as OOD submits one."""
    from tests.ood.test_psij_shim import NS, ood_psij_request, shim

    req = ood_psij_request(site, "exec jupyter lab\n", job_name="sys/dashboard/sys/jupyter", wall_time=3600,
                           native=["--port", "8888"])
    submitted = shim(site, *req["psij_argv"], stdin=req["psij_stdin"])
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout
    site["fk"].set_pod_status(NS, job_id, node_name="ip-10-0-1-5", phase="Running", podIP="10.0.7.9",
                              conditions=[{"type": "Ready", "status": "True"}],
                              containerStatuses=[{"name": "app", "ready": True, "restartCount": 0, "image": "x",
                                                  "imageID": "",
                                                  "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}])

    def poll() -> str:
        out = subprocess.run([sys.executable, "-c", "from ood_k8s.agent.fastpoll import cli; cli()",
                              f"{GEM}/get_info.py", f"--id={job_id}", "--executor=ood_k8s", "--user=alice"],
                             capture_output=True, text=True, env=probe.env(site["env"]), cwd=site["tmp"], timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        return str(json.loads(out.stdout)[0]["current_state"])

    assert poll() == "ACTIVE"
    site["fk"].set_pod_status(NS, job_id, phase="Succeeded", conditions=[{"type": "Ready", "status": "False"}],
                              containerStatuses=[{"name": "app", "ready": False, "restartCount": 0, "image": "x",
                                                  "imageID": "", "state": {"terminated": {
                                                      "exitCode": 0, "reason": "Completed",
                                                      "finishedAt": "2025-01-01T01:00:00Z"}}}])
    assert poll() == "COMPLETED"
    return probe.modules()


def credential_plugin(tmp_path: Path, probe: Probe) -> set[str]:
    """kubectl's exec plugin answered from a valid cache: ``python -m ood_k8s credential ...``."""
    from ood_k8s.auth.tokencache import TokenCache, Tokens

    cache = tmp_path / "tokens"
    cache.mkdir(mode=0o755)
    now = time.time()
    TokenCache(str(cache), "alice").write(Tokens("aaa.bbb.ccc", now + 3600, "r", now + 86400, "cognito", "iss", "cid",
                                                 "http://127.0.0.1:9/", 300))
    env = probe.env({k: v for k, v in os.environ.items() if k not in ("OOD_K8S_CONFIG", "PYTHONPATH")})
    out = subprocess.run([sys.executable, "-m", "ood_k8s", "credential", "--user", "alice", "--cache-dir", str(cache)],
                         capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["status"]["token"] == "aaa.bbb.ccc", out.stderr[-2000:]
    return probe.modules("ood_k8s.__main__")


def returning_users_hook(portal: Portal, probe: Probe) -> set[str]:  # noqa: F811
    """The launcher as nginx_stage runs it, for a user whose namespace, tokens and kubeconfig are current."""
    first = portal.run("bob")
    assert first.returncode == 0, first.stderr
    proc = portal.run("bob", env=probe.env(portal.env))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kubeconfig unchanged" in proc.stderr and "credentials cached" in proc.stderr, proc.stderr[-2000:]
    return probe.modules("ood_k8s.hook")  # the launcher runs python -m ood_k8s.hook


def configured_alternatives(probe: Probe) -> set[str]:
    """What the same entry points load under other configurations: each login loads the identity
    provider ``auth.mode`` names and the storage backend ``storage.mode`` names, and the plugin the
    provider a cache's ``mode`` names when it refreshes -- each through its registry.  Every module
    the registries name, with everything it imports, in one fresh process (tests in this one may
    have registered or replaced modes)."""
    code = ("import importlib\n"
            "from ood_k8s.auth.provider import PROVIDERS\nfrom ood_k8s.storage.backend import BACKENDS\n"
            "targets = [t for t in (*PROVIDERS.values(), *BACKENDS.values()) if isinstance(t, str)]\n"
            "assert targets, 'the registries name their modules as module:attribute'\n"
            "for t in targets:\n    importlib.import_module(t.partition(':')[0])\n")
    env = probe.env({k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(ROOT),
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return probe.modules()


_HOT: dict[str, set[str]] = {}


@pytest.fixture
def hot_paths(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, set[str]]:
    """{entry point: the ood_k8s modules it imported}, measured once per session.

    The hook runs for bob: the poll's site fixture made a plain namespace named after alice."""
    if not _HOT:
        _HOT.update({
            "ood-k8s-psij info": psij_poll(request.getfixturevalue("site"), Probe.make(tmp_path / "poll")),
            "ood-k8s credential": credential_plugin(tmp_path, Probe.make(tmp_path / "plugin")),
            "ood-k8s-pre-hook (returning user)": returning_users_hook(request.getfixturevalue("portal"),
                                                                      Probe.make(tmp_path / "hook")),
            "another auth.mode or storage.mode": configured_alternatives(Probe.make(tmp_path / "modes")),
        })
    return _HOT


class Problem(NamedTuple):
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_time_statements(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported: module level, in ifs, trys, withs and
    class bodies -- not in functions, nor under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            found += import_time_statements(node.orelse if _is_type_checking(node.test) else node.body + node.orelse)
        elif isinstance(node, ast.Try):
            blocks = node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
            found += import_time_statements(blocks)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            found += import_time_statements(node.body)
    return found


def imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Full dotted names a statement imports (``from a import b`` may import module a.b: both count)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        return ["ood_k8s"]  # relative: inside the package
    base = node.module or ""
    return [base] + [f"{base}.{a.name}" for a in node.names]


def hot_path_problems(path: Path) -> list[Problem]:
    """How a hot-path module breaks the rules (HELPERS.md rule 5), read from its source."""
    where = rel(path)
    problems = []
    if not is_core(path) and not trivially_empty(path) and not marked(path):
        problems.append(Problem(where, f"imported by a one-shot entry point: its first line must be {MARKER!r}"))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=where)
    stdlib = getattr(sys, "stdlib_module_names", None)
    for node in import_time_statements(tree.body):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" and \
                any(a.name == "annotations" for a in node.names):
            problems.append(Problem(f"{where}:{node.lineno}", "postponed annotations (from __future__ import "
                                    "annotations): write Optional[X] and keep annotations evaluable on 3.9"))
            continue
        for name in imported_names(node):
            top = name.split(".")[0]
            if name in BANNED_AT_IMPORT:
                problems.append(Problem(f"{where}:{node.lineno}", f"imports {name} at module level: import it "
                                        "where it is used"))
            elif top not in ("ood_k8s", "__future__") and stdlib is not None and top not in stdlib:
                problems.append(Problem(f"{where}:{node.lineno}", f"imports {name} (not the standard library) at "
                                        "module level"))
    return problems


def test_what_the_one_shot_entry_points_import_keeps_the_hot_path_rules(hot_paths: dict[str, set[str]]) -> None:
    assert all(hot_paths.values()), hot_paths  # the probes saw the processes' imports
    modules = set().union(*hot_paths.values())
    assert {"ood_k8s.ood.psij_shim", "ood_k8s.auth.plugin", "ood_k8s.users.hook"} <= modules
    problems = [str(p) for name in sorted(modules) for p in hot_path_problems(module_file(name))]
    assert problems == [], "\n".join(problems)


def test_core_keeps_the_hot_path_rules_whoever_imports_it() -> None:
    problems = [str(p) for path in sources() if is_core(path) for p in hot_path_problems(path)]
    assert problems == [], "\n".join(problems)


def test_no_stale_hot_path_marker(hot_paths: dict[str, set[str]]) -> None:
    hot_files = {module_file(m) for m in set().union(*hot_paths.values())}
    stale = [rel(p) for p in sources() if marked(p) and p not in hot_files]
    assert stale == [], f"marked hot-path, but none of {sorted(hot_paths)} imports them: {stale}"


def test_the_rule_checker_sees_each_kind_of_breach(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from __future__ import annotations\nimport json\nimport logging\nfrom typing import TYPE_CHECKING\n"
                   "if TYPE_CHECKING:\n    import yaml\ntry:\n    import hashlib\nexcept ImportError:\n    pass\n"
                   "class A:\n    from urllib import parse\n"
                   "def f():\n    import argparse\n")
    whats = [p.what.split(" ")[0:2] for p in hot_path_problems(bad)]
    assert whats == [["imported", "by"], ["postponed", "annotations"], ["imports", "logging"],
                     ["imports", "hashlib"], ["imports", "urllib.parse"]]


# --- (b) sizes ------------------------------------------------------------------------------------------


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > limit:
                out.append((f"{rel(path)}:{node.lineno} {node.name}", length))
    return out


def test_no_function_longer_than_80_lines() -> None:
    found = sorted((f for p in sources() for f in long_functions(p)), key=lambda f: -f[1])
    assert found == [], "\n".join(f"{where}: {n} lines" for where, n in found)


def test_no_module_longer_than_500_lines() -> None:
    found = sorted(((rel(p), n) for p in sources() if (n := len(p.read_text(encoding="utf-8").splitlines()))
                    > MAX_MODULE_LINES), key=lambda f: -f[1])
    assert found == [], "\n".join(f"{where}: {n} lines" for where, n in found)


def test_the_size_checker_counts_decorators_and_nested_functions(tmp_path: Path) -> None:
    src = tmp_path / "long.py"
    src.write_text("@decorator\ndef outer():\n    def inner():\n" + "        x = 1\n" * 5 + "    return inner\n")
    assert long_functions(src, limit=9) == []
    assert long_functions(src, limit=6) == [(f"{src}:2 outer", 9)]
    assert long_functions(src, limit=5) == [(f"{src}:2 outer", 9), (f"{src}:3 inner", 6)]


# --- (c) one vocabulary -----------------------------------------------------------------------------------


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def spelled_keys(path: Path) -> list[str]:
    """Where a module spells an ``ood-k8s.io/`` key itself: a string holding the domain (docstrings
    aside), or a key built from the domain's constant (``f"{DOMAIN}/x"``, ``KEY_PREFIX + "x"``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and DOMAIN in node.value and \
                id(node) not in docs:
            out.append(f"{rel(path)}:{node.lineno} {node.value[:60]!r}")
        elif isinstance(node, (ast.JoinedStr, ast.BinOp)) and any(
                isinstance(n, ast.Name) and n.id in ("DOMAIN", "KEY_PREFIX") for n in ast.walk(node)):
            out.append(f"{rel(path)}:{node.lineno} {ast.unparse(node)[:60]}")
    return out


def test_every_ood_k8s_io_key_is_defined_in_vocab_alone() -> None:
    assert spelled_keys(VOCAB), "core/vocab.py defines the keys"
    found = [s for p in sources() if p != VOCAB for s in spelled_keys(p)]
    assert found == [], "spell these with ood_k8s.core.vocab's names:\n" + "\n".join(found)


def test_the_vocabulary_checker_sees_spelled_and_built_keys(tmp_path: Path) -> None:
    src = tmp_path / "keys.py"
    src.write_text('"""Docs may name ood-k8s.io/user."""\n'
                   'A = "ood-k8s.io/user"\nB = f"{DOMAIN}/job"\nC = KEY_PREFIX + "x"\nD = vocab.USER_LABEL\n'
                   'def f():\n    """Here too: ood-k8s.io/job."""\n    return "app.kubernetes.io/name"\n')
    assert [s.split(" ", 1)[0].rsplit(":", 1)[1] for s in spelled_keys(src)] == ["2", "3", "4"]


# --- (d, e) what is installed, and the top level -------------------------------------------------------------


def test_setup_cfg_installs_every_package_directory() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    listed = set(setup["options"]["packages"].split())
    remapped = {line.split("=")[0].strip() for line in setup["options"]["package_dir"].splitlines() if "=" in line}
    on_disk = {".".join(d.relative_to(ROOT).parts) for d in [PACKAGE, *PACKAGE.rglob("*")]
               if d.is_dir() and "__pycache__" not in d.parts and any(d.glob("*.py"))}
    assert {p for p in listed if p.split(".")[0] == "ood_k8s"} - remapped == on_disk
    missing_init = sorted(p for p in on_disk if module_file(p).name != "__init__.py")
    assert missing_init == [], f"package directories without __init__.py: {missing_init}"


def test_nothing_at_the_top_level_but_the_facades() -> None:
    files = {p.name for p in PACKAGE.iterdir() if p.is_file()}
    assert files == FACADES
    for name in FACADES - {"__init__.py", "__main__.py"}:
        tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
        defined = [type(n).__name__ for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Assign))]
        assert defined == [], f"ood_k8s/{name} is a facade: it re-exports, it defines nothing ({defined})"


# --- ruff: the hot-path list in pyproject.toml is the hot-path set ----------------------------------------


def ruff_hot_path_patterns() -> tuple[list[str], list[str]]:
    """(patterns exempt from the modern style, patterns exempt from the hot-path bans) in pyproject.toml."""
    tomllib = pytest.importorskip("tomllib")
    ignores = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["per-file-ignores"]
    hot = [k for k, v in ignores.items() if "I002" in v and not k.startswith(("tests/", "bench/"))]
    negated = [k for k, v in ignores.items() if k.startswith("!") and "TID251" in v]
    return hot, negated


def expand(pattern: str) -> set[Path]:
    """Files a ruff per-file pattern names (``{a,b}`` alternatives, ``**``)."""
    inner = pattern[1:-1].split(",") if pattern.startswith("{") and pattern.endswith("}") else [pattern]
    return {Path(f).resolve() for part in inner for f in glob.glob(str(ROOT / part), recursive=True)
            if f.endswith(".py")}


def test_ruff_hot_path_list_is_the_hot_path_set() -> None:
    hot, negated = ruff_hot_path_patterns()
    assert len(hot) == 1 and negated == ["!" + hot[0]], (hot, negated)  # one list, used both ways
    listed = {p for p in expand(hot[0]) if not trivially_empty(p)}
    expected = {p.resolve() for p in sources() if (is_core(p) or marked(p)) and not trivially_empty(p)}
    unmarked = sorted(rel(p) for p in listed - expected)
    unlisted = sorted(rel(p) for p in expected - listed)
    assert (unmarked, unlisted) == ([], []), (
        f"pyproject.toml's hot-path list names modules without the marker: {unmarked}; "
        f"marked modules it does not name: {unlisted}")

"""Runtime dependencies are what run time imports (issue 14, item 13): each one is imported by
ood_k8s/, and nothing ood_k8s/ never imports is installed with it."""

from __future__ import annotations

import configparser
import re

from tests.conftest import ROOT

# distribution -> the module it provides
MODULES = {"pyyaml": "yaml", "jinja2": "jinja2", "kubernetes-validate": "kubernetes_validate", "requests": "requests",
           "boto3": "boto3", "kubernetes": "kubernetes", "pyjwt": "jwt"}


def _requires(section: str, key: str) -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [ln.strip() for ln in cfg.get(section, key).splitlines() if ln.strip()]
    return [re.split(r"[\[<>=!~ ]", ln, maxsplit=1)[0].lower() for ln in lines]


def _imported(module: str) -> bool:
    pattern = re.compile(rf"^\s*(import {module}\b|from {module}(\.|\s))", re.M)
    return any(pattern.search(p.read_text(encoding="utf-8")) for p in (ROOT / "ood_k8s").rglob("*.py"))


def test_every_runtime_dependency_is_imported_at_run_time() -> None:
    runtime = _requires("options", "install_requires")
    assert [d for d in runtime if not _imported(MODULES[d])] == []


def test_test_only_dependencies_are_in_the_test_extra() -> None:
    runtime = _requires("options", "install_requires")
    assert "kubernetes" not in runtime and "pyjwt" not in runtime
    assert {"kubernetes", "pyjwt"} <= set(_requires("options.extras_require", "test"))


def test_make_demo_installs_only_the_runtime() -> None:
    make = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo: (.*)$", make, re.M)
    assert demo is not None and demo.group(1).strip() == "$(VENV)/.runtime"
    runtime_rule = make.split("$(VENV)/.runtime:", 1)[1].split("\n\n", 1)[0]
    assert "pip install -q -e . " in runtime_rule and "[test]" not in runtime_rule

"""The compiled cache's mark: the code that cross-checked the data, derived from what really ran.

A cache whose mark holds skips the cross-key rules on every poll, so the mark must name every file
those rules run -- including a rule that moves to a module of its own, or a backend's rule -- and
nothing may be left to a hand-kept list of files.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import pytest

from ood_k8s import config
from ood_k8s.config import loader, yamlcache
from ood_k8s.core.errors import ConfigError

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the cache is written by root for root-owned files")

SITE = "cluster:\n  server: https://a.example.edu:6443\n"
ACCEPT = "def problems(cfg):\n    return []\n"
REFUSE = "def problems(cfg):\n    return ['cluster.server: got it, expected the moved rule to refuse it']\n"


def marked_files(site: Path) -> list[str]:
    record = json.loads(Path(str(site) + config.CACHE_SUFFIX).read_text())
    return [path for path, _, _ in record["checked"]["files"]]


@root_only
def test_a_rule_moved_to_a_module_of_its_own_is_part_of_the_mark(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    moved = rules / "moved_rule.py"
    moved.write_text(ACCEPT)
    monkeypatch.syspath_prepend(str(rules))
    module = importlib.import_module("moved_rule")
    monkeypatch.setitem(sys.modules, "moved_rule", module)
    monkeypatch.setattr(loader, "CROSS_CHECKS", (*loader.CROSS_CHECKS, module.problems))
    site = tmp_path / "ood_k8s.yml"
    site.write_text(SITE)

    config.load(str(site))  # root compiles the file, marked with the code that checked it
    assert str(moved) in marked_files(site)
    assert str(Path(loader.__file__).resolve()) in marked_files(site)

    # Unchanged code: the mark holds and the rules are skipped (a refusal only in memory goes unseen).
    monkeypatch.setattr(loader, "CROSS_CHECKS", (*loader.CROSS_CHECKS[:-1], lambda cfg: ["refused in memory"]))
    assert config.load(str(site)).cluster.server == "https://a.example.edu:6443"

    # The rule's module changes (an upgrade): the mark no longer holds, the rules run again.
    moved.write_text(REFUSE)
    monkeypatch.setattr(loader, "CROSS_CHECKS", (*loader.CROSS_CHECKS[:-1], importlib.reload(module).problems))
    with pytest.raises(ConfigError, match="expected the moved rule to refuse it"):
        config.load(str(site))


def test_a_mark_holds_while_its_files_are_as_they_were(tmp_path: Path) -> None:
    rule = tmp_path / "rule.py"
    rule.write_text(ACCEPT)
    mark = yamlcache.record_mark([str(rule), os.__file__, "<frozen importlib._bootstrap>"])
    assert mark is not None and yamlcache.last_code_mark() == mark
    files = [path for path, _, _ in mark["files"]]
    assert str(rule) in files and os.__file__ not in files  # the standard library is left out
    assert {str(Path(m.__file__)) for m in (config, loader, yamlcache)} <= set(files)  # config's own modules
    assert yamlcache.mark_holds(json.loads(json.dumps(mark)))  # as a cache stores it
    rule.write_text(REFUSE)
    assert not yamlcache.mark_holds(mark)


@pytest.mark.parametrize("mark", [None, "ood-k8s 0.0.1", {}, {"version": "0.0.0", "files": [["/x", 1, 1]]},
                                  {"files": "x"}, {"version": None, "files": [[1, 2]]}])
def test_a_mark_that_is_not_this_codes_never_holds(mark: object) -> None:
    assert not yamlcache.mark_holds(mark)


def test_a_file_that_cannot_be_read_gives_no_mark(tmp_path: Path) -> None:
    assert yamlcache.record_mark([str(tmp_path / "gone.py")]) is None

"""Every persisted name is spelt once, in :mod:`ood_k8s.core.vocab`.

A key written by hand somewhere else drifts from the one the rest of the code reads (the hook
records an annotation the admission guard no longer trusts, a label a selector no longer finds), so
these tests fail on any copy: in a module, as a literal; in a template, where ``vocab`` is a global.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ood_k8s.core import vocab
from ood_k8s.render.render import Renderer, builtin_template_dir
from tests.conftest import ROOT

PACKAGE = ROOT / "ood_k8s"
VOCAB_FILE = PACKAGE / "core" / "vocab.py"


def persisted_values() -> dict[str, str]:
    """Each vocab value worth finding: plain words ("user") are too common to be a copy of a key."""
    out: dict[str, str] = {}
    for name, value in vars(vocab).items():
        if name.startswith("_") or not name.isupper():
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, str) and not re.fullmatch(r"[a-z]+", v):
                out.setdefault(v, name)
    return out


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != VOCAB_FILE)


def copies_in(source: str) -> list[str]:
    """Literals of vocab values, and keys built from DOMAIN, in one module's source."""
    values = persisted_values()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in values:
            found.append(f"line {node.lineno}: {node.value!r} (vocab.{values[node.value]})")
        elif isinstance(node, (ast.Name, ast.Attribute)) and \
                (node.id if isinstance(node, ast.Name) else node.attr) == "DOMAIN":
            found.append(f"line {node.lineno}: a key built from DOMAIN")
    return found


def test_only_vocab_spells_the_domain() -> None:
    assert [str(p.relative_to(ROOT)) for p in modules() if vocab.DOMAIN in p.read_text()] == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_copies_a_persisted_name(path: Path) -> None:
    assert copies_in(path.read_text()) == []


@pytest.mark.parametrize("source", [
    'X = "ood-k8s.io/user"', 'X = {"app.kubernetes.io/managed-by": 1}', 'f = "client.authentication.k8s.io/v1"',
    'X = f"{DOMAIN}/hold"', 'X = names.DOMAIN + "/x"', 'prog = "ood-k8s"',
])
def test_a_copy_is_found(source: str) -> None:
    assert copies_in(source) != []


def _without_comments(text: str) -> str:
    # Prose may name a key ("# Sessions carry karpenter.sh/do-not-disrupt"); objects may not.
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    return re.sub(r"(^|\s)#[^\n]*", r"\1", text)


def keys_spelt_in(text: str) -> list[str]:
    body = _without_comments(text)
    return sorted({v for v in persisted_values() if "/" in v and v != vocab.KEY_PREFIX and v in body} |
                  set(re.findall(re.escape(vocab.KEY_PREFIX) + r"[-a-z0-9.]*", body)))


def templates() -> list[Path]:
    return sorted(builtin_template_dir().rglob("*.j2"))


@pytest.mark.parametrize("path", templates(), ids=lambda p: str(p.relative_to(builtin_template_dir())))
def test_no_template_spells_a_key(path: Path) -> None:
    assert keys_spelt_in(path.read_text()) == []


def test_a_key_spelt_in_a_template_is_found() -> None:
    assert keys_spelt_in('labels: {"ood-k8s.io/user": x}') == ["ood-k8s.io/user"]
    assert keys_spelt_in('  "pod-security.kubernetes.io/warn": p') == ["pod-security.kubernetes.io/warn"]
    assert keys_spelt_in("{# ood-k8s.io/user #}\n# karpenter.sh/nodepool\nx: {{ vocab.USER_LABEL }}") == []


def test_templates_read_the_vocabulary() -> None:
    text = Renderer(validate=False).text("user/namespace.yaml.j2", user={"namespace": "ood-a"}, labels={},
                                         pod_security="restricted", namespace_annotations={})
    assert f'"{vocab.POD_SECURITY_ENFORCE}": "restricted"' in text


def test_the_vocabulary_is_stdlib_only_and_flat() -> None:
    tree = ast.parse(VOCAB_FILE.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(v, (str, tuple)) for k, v in vars(vocab).items() if k.isupper())

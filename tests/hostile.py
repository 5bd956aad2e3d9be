"""Injection-proof rendering, checked the same way for every template.

:func:`assert_injection_proof` renders a template twice: once with every string in the context
replaced by a plain marker (``zzmark3zz``), once with each marker replaced by a hostile payload
that contains it.  Mapping the payloads back to their markers in the second result must give
exactly the first: so every hostile value came back byte for byte, in the same place, with no
extra key, document, anchor or tag.
"""

from __future__ import annotations

import itertools
from typing import Any

from ood_k8s.render.render import Renderer

PAYLOADS = (
    'quote " and \' both',
    "new\nline: injected\n- item",
    "{{ 7 * 7 }} {% raw %}",
    "key: value",
    "&anchor *alias",
    "!!python/object/apply:os.system ['id']",
    "unicode é 中文 😀 \u2028 \u0085 \ufeff",
    "# not a comment",
    "--- \n...\n",
    "\x00\x07\x1b[31m",
    "x" * 5000,
    "\\ backslash \\n",
    "%TAG ! tag:evil.com,2000:",
    "@at `backtick` |pipe >fold",
    "null",
    "true",
    "0o777",
    "1e3",
)


def _markers(value: Any, counter: itertools.count) -> Any:
    if isinstance(value, str):
        return f"zzmark{next(counter)}zz"
    if isinstance(value, dict):
        return {k: _markers(v, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_markers(v, counter) for v in value]
    if isinstance(value, tuple):
        return tuple(_markers(v, counter) for v in value)
    return value


def _hostile(value: Any, pick: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("zzmark"):
        payload = PAYLOADS[len(pick) % len(PAYLOADS)]
        hostile = f"{value}{payload}"
        pick[hostile] = value
        return hostile
    if isinstance(value, dict):
        return {k: _hostile(v, pick) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(v, pick) for v in value]
    if isinstance(value, tuple):
        return tuple(_hostile(v, pick) for v in value)
    return value


def _restore(value: Any, pick: dict[str, str]) -> Any:
    if isinstance(value, str):
        # values may be built from several context strings (e.g. prefix + name): undo each one
        for hostile, marker in sorted(pick.items(), key=lambda kv: -len(kv[0])):
            value = value.replace(hostile, marker)
        return value
    if isinstance(value, dict):
        return {_restore(k, pick): _restore(v, pick) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, pick) for v in value]
    return value


def assert_injection_proof(template: str, context: dict[str, Any], *, keep: tuple[str, ...] = (),
                           site_dir: str | None = None) -> None:
    """Check ``template`` against hostile values. Context keys in ``keep`` are left unchanged
    (objects such as a Config whose strings are not plain data)."""
    renderer = Renderer(site_dir, validate=False)
    counter = itertools.count()
    marked = {k: (v if k in keep else _markers(v, counter)) for k, v in context.items()}
    pick: dict[str, str] = {}
    hostile = {k: (v if k in keep else _hostile(v, pick)) for k, v in marked.items()}
    expected = renderer.objects(template, **marked)
    got = renderer.objects(template, **hostile)
    assert pick, f"{template}: the context has no strings to attack"
    assert _restore(got, pick) == expected, f"{template}: a hostile value changed the document"

# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Turn any value into YAML text that parses back to exactly that value -- and nothing more.

This is the only way values reach a template's output (it is the Jinja2 ``finalize`` hook in
:mod:`ood_k8s.render.render`), so a username, an environment value or a form field can never add a key,
an anchor, a tag, a line or a document.  Strings become double-quoted scalars in which every
character YAML could read as a line break or reject as non-printable is escaped; mappings and
lists become flow collections built from the same scalars.
"""

import math
import re
from typing import Any

# Characters PyYAML/libyaml refuse or treat as line breaks (NEL, LS, PS), plus the BOM and the
# escape syntax itself.  Everything else printable, including non-BMP, stays literal.
_NEEDS_ESCAPE = re.compile("[\"\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _SHORT.get(ch) or f"\\u{ord(ch):04x}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def quote(value: str) -> str:
    if _SURROGATE.search(value):
        # Not text: it cannot be sent to the API server as UTF-8 JSON either.
        raise ValueError("value contains a lone UTF-16 surrogate")
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def scalar(value: Any) -> str:
    """YAML text for ``value`` (str, bool, int, float, None, or lists/dicts of them)."""
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("NaN and infinity have no place in a Kubernetes object")
        text = repr(value)
        if "e" in text:  # YAML 1.1 reads '1e5' as a string: it wants a '.' and a signed exponent
            mantissa, exponent = text.split("e")
            text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{'' if exponent[0] in '+-' else '+'}{exponent}"
        return text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote(str(k))}: {scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    raise TypeError(f"cannot put a {type(value).__name__} into YAML")


def load(text: Any) -> Any:
    """Parse YAML with a safe loader (libyaml's when available: ~10x faster than PyYAML's)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loaders only


def load_all(text: Any) -> list[Any]:
    """Every document of a YAML stream, safely parsed."""
    import yaml

    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))

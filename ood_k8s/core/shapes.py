"""The shapes Kubernetes gives its names: one regex and one predicate each.

As the API server validates them (k8s.io/apimachinery/pkg/util/validation):

* DNS label (RFC 1123): namespaces, pod and volume names -- at most 63 characters.
* DNS subdomain: object names such as secrets and CSI drivers -- labels joined by '.', at most 253.
* Qualified name: label, annotation and extended-resource keys -- ``[prefix/]name``, the prefix a
  DNS subdomain, the name at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends.
* Label value: empty, or shaped like a qualified name's name.

Predicates use ``fullmatch``: ``re.match`` with ``$`` would let a trailing newline through.
Every check in the package (config, submissions, usernames) asks these; none spells a pattern.
"""

import re

MAX_LABEL = 63
MAX_SUBDOMAIN = 253

# The two building blocks, kept as text so the four patterns are visibly made of the same parts.
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"

DNS_LABEL = _LABEL
DNS_SUBDOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
QUALIFIED_NAME = rf"(?:({_LABEL}(?:\.{_LABEL})*)/)?({_NAME})"
LABEL_VALUE = rf"(?:{_NAME})?"

# Compiled on first use: a poll needs one of the four, and compiling all at import cost it ~1 ms.
_COMPILED: "dict[str, re.Pattern[str]]" = {}


def _fullmatch(pattern: str, value: str) -> "re.Match[str] | None":
    compiled = _COMPILED.get(pattern)
    if compiled is None:
        compiled = _COMPILED[pattern] = re.compile(pattern)
    return compiled.fullmatch(value)


def is_dns_label(value: str, max_len: int = MAX_LABEL) -> bool:
    """A DNS-1123 label of at most ``max_len`` characters (63 unless a caller needs fewer)."""
    return len(value) <= max_len and _fullmatch(DNS_LABEL, value) is not None


def is_dns_subdomain(value: str, max_len: int = MAX_SUBDOMAIN) -> bool:
    """A DNS-1123 subdomain of at most ``max_len`` characters (253 unless a caller needs fewer)."""
    return len(value) <= max_len and _fullmatch(DNS_SUBDOMAIN, value) is not None


def is_qualified_name(value: str) -> bool:
    """A label or annotation key, or an extended resource name: ``[prefix/]name``."""
    found = _fullmatch(QUALIFIED_NAME, value)
    return found is not None and len(found.group(1) or "") <= MAX_SUBDOMAIN and len(found.group(2)) <= MAX_LABEL


def is_label_value(value: str) -> bool:
    """A label value: empty, or at most 63 characters shaped like a qualified name's name."""
    return len(value) <= MAX_LABEL and _fullmatch(LABEL_VALUE, value) is not None

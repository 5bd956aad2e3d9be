# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Checks of one setting's value each: ``None`` when the value is good, else what was expected.

The schema (:mod:`ood_k8s.config.schema`) names one per setting; the loader quotes the key and the
bad value before the text.  Kubernetes name shapes come from :mod:`ood_k8s.core.shapes`.
"""

import re
from typing import Optional

from ood_k8s.core import shapes

# Compiled on first use (re caches them): a process checks only the values its file sets.
_QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"


def check_quantity(value: str) -> Optional[str]:
    if value == "" or re.match(_QUANTITY, str(value)):
        return None
    return "a Kubernetes quantity such as 500m, 2, 8Gi"


def check_dns_label(value: str) -> Optional[str]:
    if shapes.is_dns_label(value):
        return None
    return "a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters"


def check_prefix(value: str) -> Optional[str]:
    if value == "" or (re.match(r"^[a-z0-9][-a-z0-9]*$", value) and len(value) <= 20):
        return None
    return "empty or lowercase letters, digits and '-' (at most 20 characters), e.g. 'ood-'"


def check_csi_driver(value: str) -> Optional[str]:
    if shapes.is_dns_subdomain(value, max_len=63):  # CSI caps driver names at 63
        return None
    return "a CSI driver name such as secrets-store.csi.k8s.io (lowercase, at most 63 characters)"


def check_resource_name(value: str) -> Optional[str]:
    return None if shapes.is_qualified_name(value) else "an extended resource name such as nvidia.com/gpu"


def check_subject(value: str) -> Optional[str]:
    kind, _, name = value.partition(":")
    if kind in ("User", "Group") and name[:1] not in ("", ":") and not any(c.isspace() for c in name):
        return None
    namespace, _, account = name.partition("/")
    if kind == "ServiceAccount" and shapes.is_dns_label(namespace) and shapes.is_dns_subdomain(account):
        return None
    return "'User:NAME', 'Group:NAME' or 'ServiceAccount:NAMESPACE/NAME'"


def check_cidr(value: str) -> Optional[str]:
    import ipaddress  # deferred: only checked when a file sets portal_cidrs

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "a CIDR such as 10.0.0.0/16"
    return None


def check_abs_path(value: str) -> Optional[str]:
    return None if value == "" or value.startswith("/") else "an absolute path"


def check_url(value: str) -> Optional[str]:
    return None if value == "" or re.match(r"^https?://[^\s/]+", value) else "an http(s) URL"


def check_user_template(value: str) -> Optional[str]:
    if value and "{user}" not in value and "{slug}" not in value:
        return "a template containing {user} or {slug}"
    try:
        value.format(user="u", slug="u", uid=1, gid=1)
    except (KeyError, IndexError, ValueError):
        return "a template using only {user}, {slug}, {uid} and {gid}"
    return None


def check_positive(value: float) -> Optional[str]:
    return None if value > 0 else "a number greater than 0"


def check_non_negative(value: float) -> Optional[str]:
    return None if value >= 0 else "a number >= 0"


def check_percent(value: float) -> Optional[str]:
    return None if 0 <= value <= 100 else "a percentage from 0 to 100"


def check_auth_mode(value: str) -> Optional[str]:
    """``auth.mode`` names a registered identity provider (:mod:`ood_k8s.auth.provider`)."""
    from ood_k8s.auth import provider  # deferred: its Protocol costs every poll ~0.8 ms at import

    return provider.check_mode(value)


def check_storage_mode(value: str) -> Optional[str]:
    """``storage.mode`` names a registered home backend (:mod:`ood_k8s.storage.backend`)."""
    from ood_k8s.storage import backend  # deferred: it imports this module

    return backend.check_mode(value)




def check_activity_probe(value: str) -> Optional[str]:
    """``profiles[].activity_probe`` names a registered probe (:mod:`ood_k8s.agent.activity`)."""
    from ood_k8s.agent import activity  # deferred: the agent's module, checked only when a file names a probe

    return activity.check_probe(value)

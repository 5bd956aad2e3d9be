"""Facade: usernames -> Kubernetes names live in :mod:`ood_k8s.core.names`, the keys they label with in
:mod:`ood_k8s.core.vocab` (a documented import path: ``from ood_k8s import names``)."""
from __future__ import annotations

from ood_k8s.core.names import (  # noqa: F401
    HASH_LEN,
    JOB_ID_MAX,
    MAX_LABEL,
    MAX_USERNAME,
    UserNames,
    check_job_id,
    check_username,
    for_user,
    is_dns_label,
    job_children,
    job_id,
    printable,
    slug,
)
from ood_k8s.core.vocab import (  # noqa: F401  (the keys, for code that read them here)
    DOMAIN,
    FIELD_MANAGER,
    GID_ANNOTATION,
    GIDS_ANNOTATION,
    HOME_ANNOTATION,
    JOB_LABEL,
    MANAGED_BY,
    MANAGED_BY_KEY,
    PROFILE_LABEL,
    UID_ANNOTATION,
    USER_LABEL,
    USERNAME_ANNOTATION,
)

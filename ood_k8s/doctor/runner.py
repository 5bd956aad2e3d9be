"""``ood-k8s doctor [--user USER]``: is this site set up right?  A checklist, each item with a fix.

The runner knows no check: each feature contributes its own from its own module, and :func:`run`
calls them in the order of the registry below, then :func:`ood_k8s.doctor.report.report` prints them.
A check that cannot apply to this site (Cognito on an OIDC site, GPUs on a CPU-only site...) is
skipped, never passed.  Checks only read: nothing on the cluster, in AWS or in a home directory is
changed, and files under a home are opened without following links.

THE PROVIDER CONTRACT
---------------------
A check provider is a function ``provider(ctx: Context) -> list[Check]`` (both from
:mod:`ood_k8s.doctor.report`), living beside its feature (``ood_k8s/<feature>/checks.py``, or the
feature's own module).  It:

* reads ``ctx.cfg``, ``ctx.kube`` (the provisioner's KubeClient, or None), ``ctx.reachable`` (the
  API answered), ``ctx.objects`` (the rendered cluster objects), ``ctx.ident`` (the --user's
  Identity, user phase only), ``ctx.clock``;
* gets a cloud client with ``ctx.client("eks")`` (made on first use by the factory registered in
  :data:`CLIENTS`; tests pass their own to :func:`run`), or ``ctx.lazy("efs")`` to defer it;
* returns its checks in display order, or ``[]`` when it does not apply (nothing it needs is in the
  context: no ``ctx.kube``/``ctx.reachable`` for cluster checks, no ``ctx.ident`` for user checks);
* never raises for a site problem: a failure is a ``Check(name, False, detail, fix)``
  (``report.one_line(err)`` gives an error's detail without its hint).

It registers with ONE line: its function in :data:`SITE_CHECKS` (every run) or :data:`USER_CHECKS`
(with ``--user``; ``ctx.ident`` is set by the first of them), at the place its lines should print,
and, if it needs a new client, one ``name: factory(cfg)`` line in :data:`CLIENTS`.  The few
providers that establish a fact for later ones (``ctx.objects``, ``ctx.kube``/``ctx.reachable``,
``ctx.ident``) are registered before them.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ood_k8s.agent import checks as agent_checks
from ood_k8s.auth import checks as auth_checks
from ood_k8s.cloud.aws import cognito_admin, efs, eks, node_groups
from ood_k8s.cluster import checks as cluster_checks
from ood_k8s.cluster import isolation as cluster_isolation
from ood_k8s.config import Config
from ood_k8s.config import checks as config_checks
from ood_k8s.core.identity import Identity
from ood_k8s.core.kube import KubeClient
from ood_k8s.doctor.report import Check, Context, report
from ood_k8s.kubeconfig import checks as kubeconfig_checks
from ood_k8s.storage import checks as storage_checks
from ood_k8s.users import checks as user_checks

__all__ = ["CLIENTS", "DEADLINE", "SITE_CHECKS", "USER_CHECKS", "Check", "Context", "Provider", "context", "next_step",
           "report", "run"]


# --- the registry: one line per provider, in the order they print ------------------------------------------

Provider = Callable[[Context], "list[Check]"]

SITE_CHECKS: list[Provider] = [
    config_checks.configuration,  # sets ctx.objects
    kubeconfig_checks.api,  # sets ctx.kube, ctx.reachable
    cluster_checks.cluster,
    cluster_isolation.isolation,
    node_groups.node_group_checks,  # issue 11: every node group's metadata options
    auth_checks.identity_provider,
    eks.identity_provider_checks,
    cluster_checks.gpu_capacity,
    storage_checks.site,
    agent_checks.agent,
]

USER_CHECKS: list[Provider] = [
    user_checks.user,  # sets ctx.ident
    user_checks.namespace,
    kubeconfig_checks.user_kubeconfig,
    user_checks.credential_command,
    auth_checks.user_tokens,
    storage_checks.home,
]

CLIENTS: dict[str, Callable[[Config], Any]] = {
    "cognito": cognito_admin.client,
    "eks": eks.client,
    "efs": efs.client,
    "ec2": node_groups.ec2_client,
    "autoscaling": node_groups.autoscaling_client,
}


# --- all of it ------------------------------------------------------------------------------------------

# The whole run ends within DEADLINE seconds; each API request within REQUEST_TIMEOUT, tried once
# more at most -- a firewalled API (a socket that accepts and never answers) costs seconds, not a minute.
DEADLINE = 60.0
REQUEST_TIMEOUT = 5.0


def context(cfg: Config, user: str | None = None, *, kube: KubeClient | None = None,
            lookup: Callable[[str], Identity] | None = None, clock: Callable[[], float] = time.time,
            request_timeout: float = REQUEST_TIMEOUT, **clients: Any) -> Context:
    """A fresh context for one run; ``clients`` are ready clients by :data:`CLIENTS` name."""
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        raise TypeError(f"unknown doctor clients {sorted(unknown)}: known are {sorted(CLIENTS)}")
    return Context(cfg, user, kube=kube, lookup=lookup, clock=clock, given=dict(clients), factories=dict(CLIENTS),
                   request_timeout=min(request_timeout, cfg.cluster.request_timeout))


def run(cfg: Config, user: str | None = None, *, kube: KubeClient | None = None,
        lookup: Callable[[str], Identity] | None = None, clock: Callable[[], float] = time.time,
        on_check: Callable[[Check], None] | None = None, deadline: float = DEADLINE,
        request_timeout: float = REQUEST_TIMEOUT, timer: Callable[[], float] = time.monotonic,
        **clients: Any) -> list[Check]:
    """Every check, in registry order, each handed to ``on_check`` as soon as it is made (the CLI
    prints it then).  Providers not started within ``deadline`` seconds are reported skipped.
    Clients default to the provisioner kubeconfig and the :data:`CLIENTS` factories (made only
    when a check needs them); ``clients`` passes ready ones by name (``cognito=``, ``eks=``, ``efs=``)."""
    ctx = context(cfg, user, kube=kube, lookup=lookup, clock=clock, request_timeout=request_timeout, **clients)
    providers = SITE_CHECKS + (USER_CHECKS if user else [])
    end = timer() + deadline
    checks: list[Check] = []
    for i, provider in enumerate(providers):
        if timer() > end:
            left = ", ".join(p.__name__ for p in providers[i:])
            made = [Check("deadline", False, f"doctor stopped after {deadline:.0f}s; not run: {left}",
                          "fix what failed above (an unreachable API or AWS endpoint is the usual cause), "
                          "then run ood-k8s doctor again")]
        else:
            made = provider(ctx)
        for check in made:
            checks.append(check)
            if on_check is not None:
                on_check(check)
        if made and made[-1].name == "deadline":
            break
    return checks


def next_step(checks: list[Check]) -> str:
    """What to do after the checklist: one line."""
    failed = [c for c in checks if c.ok is False]
    if not failed:
        return "next: log in to the portal as a test user and start a session (ood-k8s doctor --user NAME checks them)"
    return (f"next: fix '{failed[0].name}' first (later problems often follow from it), then run "
            "ood-k8s doctor again; docs/install.md has each step")

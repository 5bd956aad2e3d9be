"""The pod guard's rule for the usage ledger's finalizer (ready to wire into the admission template).

With ``usage.finalizer`` on, a session carries :data:`~ood_k8s.core.vocab.USAGE_FINALIZER` so that it
cannot disappear before the ledger has it.  A student holds ``patch`` on their own pods and could remove
it, then delete the session between two passes of the agent: that session would never be recorded.
This rule refuses that to portal users (whose API usernames carry ``users.rbac_username_prefix``):

* CREATE: a session pod of theirs (one with the job label) must carry the finalizer (a session made
  around submit cannot skip it; a pod without the label is no session, and nothing would ever remove
  the finalizer from it);
* UPDATE: a finalizer the pod had stays.

The agent, which removes it once the ledger holds the session, is not a portal user.  Nothing is
refused when ``usage.finalizer`` is off.  (Forging the pod's recorded mark gains nothing: the ledger task
asks the ledger, not the mark; see :mod:`ood_k8s.usage.task`.)

Wired into the pod guard by :mod:`ood_k8s.cluster.manifests` (the API server gives the policy
``request.userInfo``); ``tests/usage/test_guard.py`` evaluates the rendered policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ood_k8s.core import vocab

if TYPE_CHECKING:
    from ood_k8s.config import Config


def _literal(value: str) -> str:
    if not all(c.isalnum() or c in "-_.:/@" for c in value):
        raise ValueError(f"{value!r} needs escaping in CEL")
    return f"'{value}'"


def rules(cfg: Config) -> dict[str, str]:
    """``usage_rule`` (a CEL expression, true: admitted) and ``usage_message``."""
    if not cfg.usage.finalizer:
        return {"usage_rule": "true", "usage_message": "unused"}
    f = _literal(vocab.USAGE_FINALIZER)
    user = f"request.userInfo.username.startsWith({_literal(cfg.users.rbac_username_prefix)})"
    has_new = f"(has(object.metadata.finalizers) && {f} in object.metadata.finalizers)"
    had_old = f"(has(oldObject.metadata.finalizers) && {f} in oldObject.metadata.finalizers)"
    session = f"(has(object.metadata.labels) && {_literal(vocab.JOB_LABEL)} in object.metadata.labels)"
    rule = f"!{user} || (request.operation == 'CREATE' ? (!{session} || {has_new}) : (!{had_old} || {has_new}))"
    message = (f"session pods carry the finalizer {vocab.USAGE_FINALIZER} until the usage ledger has recorded "
               "them; only the agent removes it")
    return {"usage_rule": rule, "usage_message": message}

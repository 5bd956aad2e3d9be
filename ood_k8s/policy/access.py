# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Who may use what on this site, defined once, with one way to refuse: :class:`NotEntitled`.

The rules:

* an **account** may use the cluster if its uid is at least ``users.min_uid`` (system accounts never
  may) and it is a member of one of ``users.allowed_groups`` (empty: every user);
* a **profile** is open to members of one of its ``groups`` (empty: every user the site admits), and
  to the students of a course that lists it, during the course's term (:func:`course_profiles`,
  from :mod:`ood_k8s.courses.membership`);
* a **supplementary group** may be added to a pod only by a member of it.

Read by submit (:mod:`ood_k8s.sessions.resolve`), by user provisioning (:func:`ood_k8s.users.provision.admit`:
the per-login hook, ``ood-k8s user setup|sync``, ``doctor``), by the admission policy (its minimum
uid, :mod:`ood_k8s.policy.cel`) and by the OOD form: :func:`account_groups` and :func:`profile_groups`
go into the options file ``ood-k8s ood config`` writes, and ``apps/_lib/ood_k8s_form.rb`` applies the
same group rules for the user the dashboard runs as, so the form offers exactly what submit accepts.

Refusals are worded for whoever reads them (:data:`AUDIENCES`): the student whose session is
refused, or the administrator whose provisioning of a namespace is.
"""

from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

from ood_k8s.config import Profile, UsersConfig
from ood_k8s.core.errors import NotEntitled
from ood_k8s.core.identity import Identity
from ood_k8s.courses import membership

if TYPE_CHECKING:
    from ood_k8s.config import Config

SESSION = "session"  # a user starting a session: the refusal reaches the student through OOD
NAMESPACE = "namespace"  # provisioning a user's namespace: the hook's log, 'ood-k8s user', doctor

# (rule, audience) -> (message, hint); str.format fields: user, uid, min_uid, groups.
_WORDING: Dict[Tuple[str, str], Tuple[str, str]] = {
    ("min_uid", SESSION): ("user '{user}' has uid {uid}, below users.min_uid ({min_uid})",
                           "system accounts cannot start sessions"),
    ("min_uid", NAMESPACE): ("user '{user}' has uid {uid}, below users.min_uid ({min_uid})",
                             "system accounts get no namespace; lower users.min_uid if this is a real user"),
    ("allowed_groups", SESSION): ("user '{user}' is not allowed to start sessions on this cluster",
                                  "ask your administrator for membership in one of: {groups}"),
    ("allowed_groups", NAMESPACE): ("user '{user}' is in none of users.allowed_groups ({groups})",
                                    "add the user to one of them, or change users.allowed_groups"),
}
AUDIENCES = (SESSION, NAMESPACE)


def min_uid(users: UsersConfig) -> int:
    """The lowest uid that may use the cluster (the admission policy enforces it on every pod too)."""
    return users.min_uid


def account_groups(users: UsersConfig) -> List[str]:
    """The groups whose members may use the cluster at all; empty: every user."""
    return list(users.allowed_groups)


def profile_groups(profile: Profile) -> List[str]:
    """The groups whose members may use ``profile``; empty: every user the site admits."""
    return list(profile.groups)


def _refused(rule: str, audience: str, users: UsersConfig, ident: Identity) -> NotEntitled:
    message, hint = _WORDING[(rule, audience)]
    fields = {"user": ident.username, "uid": ident.uid, "min_uid": users.min_uid,
              "groups": ", ".join(users.allowed_groups)}
    return NotEntitled(message.format(**fields), hint.format(**fields))


def check_account(users: UsersConfig, ident: Identity, audience: str) -> None:
    """Refuse an account that may not use the cluster at all: a system account, then a user in none
    of ``users.allowed_groups``."""
    if ident.uid < min_uid(users):
        raise _refused("min_uid", audience, users, ident)
    if not ident.in_any(account_groups(users)):
        raise _refused("allowed_groups", audience, users, ident)


def course_profiles(cfg: "Config", ident: Identity, now: float) -> List[str]:
    """Names of the profiles ``ident``'s courses grant at ``now`` (the ``granted`` argument below)."""
    return membership.granted_profiles(cfg, ident, now) if cfg.courses else []


def course_rules(cfg: "Config") -> List[Dict[str, object]]:
    """The course rule as data for the OOD form (apps/_lib/ood_k8s_form.rb applies it for its user): each
    course's roster groups, profiles and term (epoch seconds, end exclusive; None: open)."""
    out: List[Dict[str, object]] = []
    for c in cfg.courses:
        span = membership.term(c)
        start, end = span if span is not None else (membership.OPEN_START, membership.OPEN_END)
        out.append({"name": c.name, "groups": list(c.groups), "profiles": list(c.profiles),
                    "start": None if start == membership.OPEN_START else start,
                    "end": None if end == membership.OPEN_END else end})
    return out


def may_use_profile(profile: Profile, ident: Identity, granted: Sequence[str] = ()) -> bool:
    """A member of the profile's groups, or a student of a current course that lists it (``granted``)."""
    return ident.in_any(profile_groups(profile)) or profile.name in granted


def check_profile(profile: Profile, ident: Identity, granted: Sequence[str] = ()) -> None:
    if not may_use_profile(profile, ident, granted):
        raise NotEntitled(f"profile '{profile.name}' is reserved for members of {', '.join(profile.groups)}",
                          "choose another profile or ask your instructor for access")


def usable_profiles(profiles: Sequence[Profile], ident: Identity, granted: Sequence[str] = ()) -> List[Profile]:
    """The profiles ``ident`` may use, in the site's order."""
    return [p for p in profiles if may_use_profile(p, ident, granted)]


def check_supplemental_groups(gids: Sequence[int], ident: Identity, path: str) -> None:
    """Refuse a supplementary group the user is not a member of (``path`` names the request's key)."""
    foreign = [g for g in gids if g not in ident.gids and g != ident.gid]
    if foreign:
        raise NotEntitled(f"{path}: you are not a member of group {foreign[0]}",
                          "list only groups you belong to (see 'id')")

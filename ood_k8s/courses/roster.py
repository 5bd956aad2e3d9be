"""A course's roster on the cluster: ``ood-k8s user sync --course C [--prune]``.

Provisioning a roster is ``user sync`` over the members of the course's groups (NSS, as ``--group``).
Each user it provisions gets the label :data:`~ood_k8s.core.vocab.COURSE_MEMBER_PREFIX` + the course's
name, value ``member``, on their namespace: the
record of who was synced for the course, kept on the cluster (every portal agrees) and gone with the
namespace.  ``--prune`` removes (:func:`ood_k8s.users.provision.teardown`: the namespace, so their
sessions end, and their token cache on this portal) the labelled users who are on the roster of no
course any more -- a student still in another course keeps their namespace -- and always keeps their
home directory's data.
"""

from __future__ import annotations

from ood_k8s.config import Config
from ood_k8s.config.course import CourseConfig
from ood_k8s.core import vocab
from ood_k8s.core.errors import OodK8sError, UsageError
from ood_k8s.core.kube import KubeClient
from ood_k8s.courses import membership
from ood_k8s.users import provision
from ood_k8s.users.desired import user_names
from ood_k8s.users.sync import members_of_group, shown, unique

MEMBER = "member"


def course(cfg: Config, name: str) -> CourseConfig:
    found = membership.course_named(cfg, name)
    if found is None:
        known = ", ".join(c.name for c in cfg.courses) or "none configured"
        raise UsageError(f"unknown course '{shown(name)}'", f"courses in the site configuration: {known}")
    return found


def label(c: CourseConfig) -> str:
    return vocab.COURSE_MEMBER_PREFIX + c.name


def roster(c: CourseConfig) -> list[str]:
    """The members of the course's groups (NSS), in group order, without repeats."""
    if not c.groups:
        raise UsageError(f"course '{c.name}' has no roster groups", f"set courses[].groups for {c.name}")
    return unique([u for g in c.groups for u in members_of_group(g)])


def enrolled(client: KubeClient, c: CourseConfig) -> list[str]:
    """Usernames whose namespace carries the course's label (synced for it earlier)."""
    namespaces = client.list("Namespace", label_selector=f"{label(c)}={MEMBER}")
    return sorted(((n.get("metadata") or {}).get("annotations") or {}).get(vocab.USERNAME_ANNOTATION, "")
                  for n in namespaces if ((n.get("metadata") or {}).get("annotations") or {}).get(
                      vocab.USERNAME_ANNOTATION))


def mark(client: KubeClient, cfg: Config, c: CourseConfig, usernames: list[str]) -> None:
    """Label the users' namespaces as the course's (a merge patch each, skipped where it is already there)."""
    have = set(enrolled(client, c))
    for username in usernames:
        if username not in have:
            client.patch("Namespace", user_names(cfg, username).namespace,
                         {"metadata": {"labels": {label(c): MEMBER}}})


def to_prune(enrolled_users: list[str], on_roster: list[str], other_rosters: set[str]) -> list[str]:
    """Users synced for the course who are on its roster no more, nor on another course's."""
    keep = set(on_roster) | other_rosters
    return [u for u in enrolled_users if u not in keep]


def other_rosters(cfg: Config, c: CourseConfig) -> set[str]:
    out: set[str] = set()
    for other in cfg.courses:
        if other.name != c.name and other.groups:
            for g in other.groups:
                try:
                    out.update(members_of_group(g))
                except UsageError:
                    continue  # an unknown group of another course keeps nobody
    return out


def prune(cfg: Config, client: KubeClient, usernames: list[str], *,
          dry_run: bool) -> list[tuple[str, list[str] | None, str | None]]:
    """Tear each user down, keeping home data: ``[(username, what was done | None, error | None)]``."""
    out: list[tuple[str, list[str] | None, str | None]] = []
    for username in usernames:
        try:
            if dry_run:
                done = provision.teardown(cfg, username, client, dry_run=True)
            else:
                with provision.user_lock(cfg, username):
                    done = provision.teardown(cfg, username, client)
            out.append((username, done, None))
        except OodK8sError as err:
            out.append((shown(username), None, str(err)))
    return out

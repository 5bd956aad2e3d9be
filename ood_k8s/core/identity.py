"""Who a portal user is on the portal: uid, gid, groups and home, from NSS (passwd/group/LDAP/SSSD).

Sessions run with exactly this identity so files written in a pod belong to the user on the portal
too.  Functions elsewhere take an :class:`Identity`, so tests can pass one directly; subprocess
tests give the real NSS lookup test users through nss_wrapper.
"""

import os
from typing import NamedTuple, Union

from ood_k8s.core.errors import UsageError


class Identity(NamedTuple):
    # A NamedTuple, not a frozen dataclass: importing dataclasses (and with it inspect) would be the
    # largest part of an OOD status poll, which looks the user up.
    username: str
    uid: int
    gid: int
    home: str
    groups: tuple[str, ...] = ()     # names of all groups, primary first
    gids: tuple[int, ...] = ()       # supplementary gids (primary excluded), sorted

    def in_any(self, groups: Union[list[str], tuple[str, ...]]) -> bool:
        """True if ``groups`` is empty (no restriction) or the user is in one of them."""
        return not groups or any(g in self.groups for g in groups)


def lookup(username: str) -> Identity:
    import grp
    import pwd

    try:
        pw = pwd.getpwnam(username)
    except KeyError:
        raise UsageError(f"user '{username}' is not known to this host (NSS)",
                         "check the username, or that LDAP/SSSD answers on the portal") from None
    names = []
    gids = set()
    try:
        names.append(grp.getgrgid(pw.pw_gid).gr_name)
    except KeyError:
        names.append(str(pw.pw_gid))
    for gid in os.getgrouplist(username, pw.pw_gid):
        if gid == pw.pw_gid:
            continue
        gids.add(gid)
        try:
            name = grp.getgrgid(gid).gr_name
        except KeyError:
            name = str(gid)
        if name not in names:
            names.append(name)
    return Identity(username=username, uid=pw.pw_uid, gid=pw.pw_gid, home=pw.pw_dir,
                    groups=tuple(names), gids=tuple(sorted(gids)))


def current() -> Identity:
    """The identity of the calling process (the adapter runs as the portal user)."""
    import pwd

    return lookup(pwd.getpwuid(os.getuid()).pw_name)

"""Entries indexed for budgets: by user, by course, each course's GPU-hours in a term memoized.

A term's ledger holds tens of thousands of sessions; a submit's budget check may not walk them all
(:mod:`ood_k8s.usage.budget` asks a user's entries and a course's total).  :class:`Index` holds the
recorded entries (the agent's view keeps one, updated as it records); :class:`Overlay` reads an index and
the few sessions the ledger does not hold yet (running, or ended and not yet recorded) as one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ood_k8s.usage.entry import Entry


def clipped_hours(e: Entry, span: tuple[float, float] | None) -> float:
    """GPU-hours of ``e`` inside the term ``span`` (None: all of it)."""
    start, end = (e.start, e.end) if span is None else (max(e.start, span[0]), min(e.end, span[1]))
    return max(0.0, end - start) * e.gpus / 3600.0


class Index:
    """Thread safe: the leader adds what it records while the socket's threads read."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, Entry] = {}
        self._by_user: dict[str, list[Entry]] = {}
        self._by_course: dict[str, list[Entry]] = {}
        self._sums: dict[tuple[str, tuple[float, float] | None], tuple[float, int]] = {}
        self.add(entries)

    def add(self, entries: Iterable[Entry]) -> None:
        with self._lock:
            self._add(entries)

    def _add(self, entries: Iterable[Entry]) -> None:
        touched = set()
        for e in entries:
            if e.uid in self._by_uid:
                continue  # a session is recorded once
            self._by_uid[e.uid] = e
            self._by_user.setdefault(e.user, []).append(e)
            self._by_course.setdefault(e.course, []).append(e)
            touched.add(e.course)
        if touched:
            self._sums = {k: v for k, v in self._sums.items() if k[0] not in touched}

    def __contains__(self, uid: object) -> bool:
        return uid in self._by_uid

    def __len__(self) -> int:
        return len(self._by_uid)

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._by_uid.values())

    def user(self, user: str) -> list[Entry]:
        with self._lock:
            return list(self._by_user.get(user, ()))

    def course_used(self, course: str, span: tuple[float, float] | None) -> tuple[float, int]:
        """(GPU-hours in ``span``, GPUs running now) of the course's entries."""
        key = (course, span)
        with self._lock:
            if key not in self._sums:
                mine = self._by_course.get(course, ())
                self._sums[key] = (sum(clipped_hours(e, span) for e in mine), sum(e.gpus for e in mine if e.running))
            return self._sums[key]


class Overlay:
    """An index and a few entries more (those of sessions the index does not hold), read as one."""

    def __init__(self, base: Index, extra: list[Entry]) -> None:
        self.base, self.extra = base, [e for e in extra if e.uid not in base]

    def entries(self) -> list[Entry]:
        return self.base.entries() + self.extra

    def user(self, user: str) -> list[Entry]:
        return self.base.user(user) + [e for e in self.extra if e.user == user]

    def course_used(self, course: str, span: tuple[float, float] | None) -> tuple[float, int]:
        hours, running = self.base.course_used(course, span)
        mine = [e for e in self.extra if e.course == course]
        return hours + sum(clipped_hours(e, span) for e in mine), running + sum(e.gpus for e in mine if e.running)

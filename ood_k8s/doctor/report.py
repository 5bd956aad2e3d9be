"""What every doctor check returns and receives, and the printed checklist.

:class:`Check` is one line of the checklist; :class:`Context` is what the runner hands each check
provider (see :mod:`ood_k8s.doctor.runner` for the contract); :func:`report` prints the list in the
order the runner collected it.  Feature modules import from here, never from the runner, so the
runner can import them without a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity
    from ood_k8s.core.kube import KubeClient

APPLY_CLUSTER = "ood-k8s cluster render | kubectl apply --server-side -f -"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: does not apply here, or could not be decided (detail says which)
    detail: str = ""
    fix: str = ""

    def mark(self, ascii_only: bool = False) -> str:
        marks = ("ok  ", "FAIL", "--  ") if ascii_only else ("✔", "✘", "–")
        return marks[0 if self.ok else 1 if self.ok is False else 2]

    def lines(self, ascii_only: bool = False) -> list[str]:
        out = [f"{self.mark(ascii_only)} {self.name}" + (f": {self.detail}" if self.detail else "")]
        if self.ok is False and self.fix:
            out.append(f"    fix: {self.fix}")
        return out


def one_line(err: BaseException) -> str:
    """What went wrong, without the error's own hint: each check gives its own fix."""
    return " ".join(str(getattr(err, "message", err)).split())


@dataclass
class Context:
    """What the checks of one doctor run share.  Providers read it, and the few that establish a fact
    later providers need (the rendered objects, the API client, the user's identity) record it here."""

    cfg: Config
    user: str | None = None  # --user, when given
    kube: KubeClient | None = None  # the provisioner's client; None when it could not be made
    reachable: bool = False  # the API answered (set by the API check)
    objects: list[dict[str, Any]] = field(default_factory=list)  # rendered cluster objects ([] if they failed)
    ident: Identity | None = None  # --user's identity, once admitted (set by the user check)
    lookup: Callable[[str], Identity] | None = None  # NSS lookup; None: ood_k8s.core.identity.lookup
    clock: Callable[[], float] = time.time
    given: dict[str, Any] = field(default_factory=dict)  # clients passed in (tests), by CLIENTS name
    factories: dict[str, Callable[[Config], Any]] = field(default_factory=dict)
    request_timeout: float = 5.0  # seconds per API request made for the doctor (see runner.DEADLINE)

    def client(self, name: str) -> Any:
        """The named client (``"cognito"``, ``"eks"``, ``"efs"``...), made on first use and then kept."""
        if self.given.get(name) is None:
            self.given[name] = self.factories[name](self.cfg)
        return self.given[name]

    def lazy(self, name: str) -> Callable[[], Any]:
        """:meth:`client` deferred: for code that makes the client only if it gets that far."""
        return lambda: self.client(name)


def summary(checks: Iterable[Check]) -> tuple[str, int]:
    """The checklist's last line, and the exit code (1 if any check failed)."""
    failed = sum(c.ok is False for c in checks)
    return (f"{failed} problem{'s' if failed != 1 else ''} found" if failed else "no problems found"), \
        1 if failed else 0


def report(checks: Iterable[Check], ascii_only: bool = False) -> tuple[str, int]:
    """The checklist as text, and the exit code (1 if any check failed)."""
    checks = list(checks)
    lines = [line for c in checks for line in c.lines(ascii_only)]
    last, code = summary(checks)
    lines.append(last)
    return "\n".join(lines) + "\n", code


def as_data(checks: Iterable[Check]) -> dict[str, Any]:
    """The checklist as data, for ``-o json|yaml``."""
    checks = list(checks)
    return {"ok": not any(c.ok is False for c in checks),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks]}

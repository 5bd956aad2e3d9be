"""YAML from a user's file, parsed without root and within bounds.

A user's ``~/.kube/config`` is the user's to write, so its YAML is hostile input to the root hook.
A 450-byte file of nested anchors and aliases stays small while parsed (aliases are shared
references) and explodes when re-serialised (~10^9 strings).  So the file is parsed:

* in a child that has dropped to the user (:func:`ood_k8s.core.fsutil.run_as`): whatever the parse
  costs, it costs the user's process, never root's;
* with anchors and aliases refused outright (a kubeconfig has no use for them; kubectl never writes
  them), so what is built is at most as large as the text;
* within :data:`MAX_NODES` nodes and :data:`MAX_SECONDS` seconds of parsing.

Only plain data crosses back to the parent (``marshal``); the dates YAML can hold travel as tagged
tuples, which safe YAML never produces otherwise.
"""

from __future__ import annotations

import datetime
import signal
from typing import TYPE_CHECKING, Any

import yaml

from ood_k8s.core.errors import UsageError

if TYPE_CHECKING:
    from ood_k8s.core.identity import Identity

MAX_NODES = 100_000
MAX_SECONDS = 2.0
_HINT = "fix it or move it away (kubectl config view --flatten writes a plain copy), then log in again"


class _Refused(Exception):
    """Raised inside the loader; turned into one UsageError line naming the file."""


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader (the pure-Python one, so its composer can be bounded), refusing anchors,
    aliases and more than :data:`MAX_NODES` nodes."""

    nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused("uses YAML anchors or aliases, which ood-k8s does not read in a user's file")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(f"has more than {MAX_NODES} YAML nodes")
        return super().compose_node(parent, index)


def _timeout(signum: int, frame: Any) -> None:
    raise _Refused(f"took longer than {MAX_SECONDS:g} s to parse")


def _to_plain(value: Any) -> Any:
    """``value`` with dates as tagged tuples, so :mod:`marshal` can carry it."""
    if isinstance(value, dict):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return ("datetime", value.isoformat())
    if isinstance(value, datetime.date):
        return ("date", value.isoformat())
    return value


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {_from_plain(k): _from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if isinstance(value, tuple) and len(value) == 2:
        kind, text = value
        return datetime.datetime.fromisoformat(text) if kind == "datetime" else datetime.date.fromisoformat(text)
    return value


def parse(data: bytes, where: str) -> Any:
    """The YAML document in ``data``, bounded; UsageError if it is not YAML.  Runs in the child."""
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.setitimer(signal.ITIMER_REAL, MAX_SECONDS)
    try:
        return _to_plain(yaml.load(data, Loader=BoundedLoader))  # noqa: S506 - a SafeLoader
    except _Refused as exc:
        raise UsageError(f"{where} {exc}, so ood-k8s leaves it alone", _HINT) from None
    except RecursionError:
        raise UsageError(f"{where} is nested too deeply, so ood-k8s leaves it alone", _HINT) from None
    except yaml.YAMLError:
        raise UsageError(f"{where} is not a valid kubeconfig, so ood-k8s leaves it alone", _HINT) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_as_user(ident: Identity, where: str, data: bytes) -> Any:
    """:func:`parse` in a child that dropped to the user (in-process when already the user)."""
    from ood_k8s.core import fsutil

    gids = sorted({ident.gid, *ident.gids})
    return _from_plain(fsutil.run_as(ident.uid, ident.gid, gids, parse, data, where))

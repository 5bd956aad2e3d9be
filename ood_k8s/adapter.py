"""Facade: OOD's job contract lives in :mod:`ood_k8s.sessions.adapter` (a documented import path)."""
from __future__ import annotations

from ood_k8s.sessions.adapter import Adapter, Info  # noqa: F401

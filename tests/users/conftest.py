"""Shared by the users/ tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def cfg(make_config: Any, tmp_path: Path) -> Any:
    return make_config(**{"hook.lock_dir": str(tmp_path / "locks"), "templates.site_dir": str(tmp_path / "site"),
                          "users.token_cache_dir": str(tmp_path / "tokens"), "storage.home_root": str(tmp_path)})

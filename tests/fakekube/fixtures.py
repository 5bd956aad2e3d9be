"""pytest fixtures; import them into a conftest.py (``from tests.fakekube.fixtures import fake_kube``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake import FakeKube


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    """A fresh, started FakeKube (TLS, token "test-token"); stopped after the test."""
    fk = FakeKube(tls=True, token="test-token")
    fk.start()
    try:
        yield fk
    finally:
        fk.stop()

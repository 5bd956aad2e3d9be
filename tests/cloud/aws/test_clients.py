"""AWS clients give up on a hung endpoint within the site's timeout (no botocore 60 s default)."""

from __future__ import annotations

import socket
import time

import botocore.exceptions
import pytest

from ood_k8s.cloud.aws.clients import client


def test_a_hung_endpoint_fails_within_the_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(key, value)
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # the kernel accepts; nobody ever answers
    host, port = hung.getsockname()
    efs = client("efs", region="us-east-1", endpoint_url=f"http://{host}:{port}", read_timeout=0.3, attempts=2)
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        efs.describe_file_systems()
    assert time.monotonic() - started < 5  # two attempts of 0.3 s plus standard back-off, not minutes
    hung.close()

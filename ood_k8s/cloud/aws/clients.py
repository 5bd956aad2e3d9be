"""boto3 clients with the site's timeouts: one place decides how long an AWS call may wait.

Without a read timeout botocore waits 60 s per attempt and retries; a firewalled endpoint would hold a
login, ``doctor`` or ``user setup`` for minutes whatever their own deadlines say.
"""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT = 5.0


def client(service: str, *, region: str, endpoint_url: str = "", read_timeout: float, attempts: int = 2) -> Any:
    """A boto3 client for ``service``; ``attempts`` counts the first call (1: the caller retries itself)."""
    import boto3  # deferred: ~140 ms, and no per-poll or returning-login path talks to AWS
    from botocore.config import Config as BotoConfig

    config = BotoConfig(retries={"total_max_attempts": attempts, "mode": "standard"},
                        connect_timeout=CONNECT_TIMEOUT, read_timeout=read_timeout)
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url or None, config=config)

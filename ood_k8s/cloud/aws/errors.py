"""What an AWS error means to a doctor check: its code, and the fix when the portal could not talk
to AWS at all (credentials, permissions, network) rather than found something wrong.

botocore is imported only when a check catches an AWS error (it costs ~100 ms).
"""

from __future__ import annotations

_CREDENTIALS = {"NoCredentialsError", "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                "ExpiredTokenException", "AccessDeniedException", "AccessDenied", "EndpointConnectionError"}


def client_errors() -> tuple[type[BaseException], ...]:
    """What a boto3 call raises: for ``except client_errors() as err``."""
    from botocore.exceptions import BotoCoreError, ClientError  # deferred: only AWS checks need botocore

    return (BotoCoreError, ClientError)


def code(err: BaseException) -> str:
    """The AWS error code (``ResourceNotFoundException``...), else the exception's class name."""
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", "")) or type(err).__name__


def fix(err: BaseException, default: str) -> str:
    """``default``, unless the portal could not talk to AWS at all (credentials, permissions, network)."""
    found = code(err)
    if found in ("AccessDeniedException", "AccessDenied"):
        return "allow this call in the policy of the portal's AWS role"
    if found == "EndpointConnectionError":
        return "check the network path to AWS (or the endpoint_url setting)"
    if found in _CREDENTIALS:
        return "give the portal AWS credentials (instance profile, or AWS_PROFILE for root)"
    return default


_TRANSPORT = {"EndpointConnectionError": "cannot connect to its endpoint",
              "ConnectTimeoutError": "connecting timed out", "ReadTimeoutError": "it did not answer in time",
              "ConnectionClosedError": "it closed the connection", "SSLError": "the TLS handshake failed"}


def transport(err: BaseException) -> str:
    """Why a call never reached AWS, in words (no exception class names): for one-line errors."""
    return _TRANSPORT.get(type(err).__name__, " ".join(str(err).split())[:120] or "the call failed")

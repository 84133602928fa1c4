"""A typed Python client of the LATM orchestrator's gRPC API.

``Client`` (blocking) and ``AsyncClient`` (asyncio) wrap the generated stubs
(``latm.orchestrator.v1``, shipped in this distribution): they send the tenant's API key,
decode JSON values, and raise the typed errors of :mod:`latm_client.errors` instead of
``grpc.RpcError``::

    with Client("localhost:50051", api_key, tls=TlsFiles(ca="ca.pem")) as client:
        result = client.execute_tool("add", {"a": 2, "b": 3})
        assert result.value == 5
"""

from latm_client._client import GRANULARITY, AsyncClient, Client
from latm_client._results import Answer, ToolResult
from latm_client._tls import TlsFiles
from latm_client.errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidRequest,
    LatmError,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
    ResourceExhausted,
    ToolNotFound,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "GRANULARITY",
    "Answer",
    "AsyncClient",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "InvalidRequest",
    "LatmError",
    "PermissionDenied",
    "PreconditionFailed",
    "QuotaExceeded",
    "ResourceExhausted",
    "TlsFiles",
    "ToolNotFound",
    "ToolResult",
    "Unauthenticated",
    "Unavailable",
]

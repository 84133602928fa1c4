"""The Python client retries, within the call's deadline, a call that changes nothing when
the server answers UNAVAILABLE (a replica draining to restart); a call that would change
something twice is not retried. The server is a real gRPC server on loopback, started by
the test."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from latm_client import Client
from latm_client.errors import Unavailable

from tests.support.nginx import free_port

pytestmark = pytest.mark.integration


class _Flaky(pb_grpc.OrchestratorServiceServicer):
    """Answers UNAVAILABLE to the first ``failures`` calls of each method, then serves."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def _attempt(self, method: str, context: grpc.ServicerContext) -> None:
        self.calls.append(method)
        if self.calls.count(method) <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")

    def ListTools(
        self, request: pb.ListToolsRequest, context: grpc.ServicerContext
    ) -> pb.ListToolsResponse:
        self._attempt("ListTools", context)
        return pb.ListToolsResponse(tools=[pb.ToolSummary(name="sort_words", version=1)])

    def DeleteTool(
        self, request: pb.DeleteToolRequest, context: grpc.ServicerContext
    ) -> pb.DeleteToolResponse:
        self._attempt("DeleteTool", context)
        return pb.DeleteToolResponse(removed=1)


def _flaky(failures: int) -> _Flaky:
    # The generated base declares every RPC; the ones not overridden answer UNIMPLEMENTED.
    return _Flaky(failures)  # type: ignore[abstract]


@contextmanager
def _serving(servicer: _Flaky) -> Iterator[str]:
    """The servicer on a free loopback port."""
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_OrchestratorServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_a_read_answered_unavailable_is_retried() -> None:
    servicer = _flaky(failures=2)
    with _serving(servicer) as target, Client(target, "key", timeout_s=20) as client:
        assert [t.name for t in client.list_tools()] == ["sort_words"]
    assert servicer.calls == ["ListTools"] * 3


def test_a_call_that_changes_something_is_not_retried() -> None:
    servicer = _flaky(failures=1)
    with (
        _serving(servicer) as target,
        Client(target, "key", timeout_s=20) as client,
        pytest.raises(Unavailable),
    ):
        client.delete_tool("sort_words")
    assert servicer.calls == ["DeleteTool"]

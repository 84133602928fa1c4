"""One table maps errors to gRPC status codes and back; a test per code."""

from __future__ import annotations

import grpc
import pytest

from orchestrator.errors import (
    GRPC_ERRORS,
    InvalidRequest,
    IsolationTooWeak,
    LatmError,
    MissingDependencyError,
    SandboxUnavailable,
    ToolNotFound,
    from_rpc_error,
)


class FakeRpcError(grpc.RpcError):
    """A stand-in for a failed call's error object (code and details only)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
        (ToolNotFound, grpc.StatusCode.NOT_FOUND),
        (SandboxUnavailable, grpc.StatusCode.UNAVAILABLE),
        (IsolationTooWeak, grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_round_trip_through_status_code(cls: type[LatmError], code: grpc.StatusCode) -> None:
    assert cls.code is code
    assert GRPC_ERRORS[code] is cls
    error = from_rpc_error(FakeRpcError(code, "details here"))
    assert type(error) is cls
    assert str(error) == "details here"


def test_unknown_code_becomes_the_root_error() -> None:
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.DATA_LOSS, ""))
    assert type(error) is LatmError
    assert str(error) == "DATA_LOSS"


def test_messages_name_the_remedy() -> None:
    assert "latm[docker]" in str(MissingDependencyError.for_extra("docker", "docker"))
    weak = IsolationTooWeak.for_levels("process", "namespaces")
    assert "'process' is below the configured minimum 'namespaces'" in str(weak)
    assert weak.to_dict()["type"] == "IsolationTooWeak"

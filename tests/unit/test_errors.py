"""One table maps errors to gRPC status codes and back; a test per code."""

from __future__ import annotations

from typing import Any

import grpc
import latm_client.errors
import pytest
from google.rpc import error_details_pb2, status_pb2

import orchestrator.errors
from orchestrator.errors import (
    ERROR_TYPE_KEY,
    GRPC_ERRORS,
    STATUS_DETAILS_KEY,
    Cancelled,
    DeadlineExceeded,
    InvalidRequest,
    IsolationTooWeak,
    LatmError,
    MissingDependencyError,
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelTimeout,
    PermissionDenied,
    PoolExhausted,
    PreconditionFailed,
    QuotaExceeded,
    RegistryUnavailable,
    ResourceExhausted,
    SandboxUnavailable,
    ToolNotFound,
    Unauthenticated,
    Unavailable,
    error_class,
    from_rpc_error,
    retry_after_s,
)


class FakeRpcError(grpc.RpcError):
    """A stand-in for a failed call's error object (code and details only)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeRpcErrorWithType(FakeRpcError):
    """A failed call whose trailing metadata names the server's error class."""

    def __init__(self, code: grpc.StatusCode, details: str, type_name: str) -> None:
        super().__init__(code, details)
        self._trailing = ((ERROR_TYPE_KEY, type_name),)

    def trailing_metadata(self) -> Any:
        return self._trailing


# One case per status code in the table: the class it maps to and back.
@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
        (ToolNotFound, grpc.StatusCode.NOT_FOUND),
        (Unavailable, grpc.StatusCode.UNAVAILABLE),
        (PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
        (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
        (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
        (Cancelled, grpc.StatusCode.CANCELLED),
        (LatmError, grpc.StatusCode.INTERNAL),
    ],
)
def test_round_trip_through_status_code(cls: type[LatmError], code: grpc.StatusCode) -> None:
    assert cls.code is code
    assert GRPC_ERRORS[code] is cls
    error = from_rpc_error(FakeRpcError(code, "details here"))
    assert type(error) is cls
    assert str(error) == "details here"


def test_every_status_code_of_the_table_is_tested() -> None:
    assert len(GRPC_ERRORS) == 10


# Classes that share a code come back exactly when the server names them.
@pytest.mark.parametrize(
    "cls",
    [
        SandboxUnavailable,
        RegistryUnavailable,
        ModelError,
        IsolationTooWeak,
        ModelAuthError,
        MissingDependencyError,
        PoolExhausted,
        QuotaExceeded,
        ModelRateLimited,
        ModelTimeout,
    ],
)
def test_the_named_class_comes_back(cls: type[LatmError]) -> None:
    error = from_rpc_error(FakeRpcErrorWithType(cls.code, "why", cls.__name__))
    assert type(error) is cls
    assert str(error) == "why"


def test_a_named_class_with_another_code_is_not_trusted() -> None:
    # A server (or a proxy) cannot make the client raise a class that contradicts the code.
    error = from_rpc_error(FakeRpcErrorWithType(grpc.StatusCode.NOT_FOUND, "x", "Unauthenticated"))
    assert type(error) is ToolNotFound
    error = from_rpc_error(FakeRpcErrorWithType(grpc.StatusCode.NOT_FOUND, "x", "NoSuchClass"))
    assert type(error) is ToolNotFound
    assert error_class(grpc.StatusCode.DATA_LOSS, "ToolNotFound") is LatmError


def test_unknown_code_becomes_the_root_error() -> None:
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.DATA_LOSS, ""))
    assert type(error) is LatmError
    assert str(error) == "DATA_LOSS"


def test_messages_name_the_remedy() -> None:
    assert "latm[docker]" in str(MissingDependencyError.for_extra("docker", "docker"))
    weak = IsolationTooWeak.for_levels("process", "namespaces")
    assert "'process' is below the configured minimum 'namespaces'" in str(weak)
    assert weak.to_dict()["type"] == "IsolationTooWeak"


def test_the_orchestrator_raises_the_client_packages_classes() -> None:
    # Re-exported, not copied: `except ToolNotFound` catches what either side raises.
    public = [name for name in vars(latm_client.errors) if not name.startswith("_")]
    classes = [name for name in public if isinstance(getattr(latm_client.errors, name), type)]
    assert set(classes) - {"ClassVar", "Any", "DecodeError"} <= set(orchestrator.errors.__all__)
    for name in orchestrator.errors.__all__:
        assert getattr(orchestrator.errors, name) is getattr(latm_client.errors, name), name


class FakeRpcErrorWithTrailing(FakeRpcError):
    """A failed call with the given trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, *trailing: tuple[str, Any]) -> None:
        super().__init__(code, details)
        self._trailing = trailing

    def trailing_metadata(self) -> Any:
        return self._trailing


def test_retry_info_in_the_rich_status_becomes_retry_after_s() -> None:
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromSeconds(7)
    status = status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="slow")
    status.details.add().Pack(info)
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    rich = FakeRpcErrorWithTrailing(code, "slow", (STATUS_DETAILS_KEY, status.SerializeToString()))
    typed = from_rpc_error(rich)
    assert type(typed) is ResourceExhausted
    assert typed.retry_after_s == 7.0
    garbled = FakeRpcErrorWithTrailing(code, "slow", (STATUS_DETAILS_KEY, b"\xff\xff"))
    assert retry_after_s(garbled) is None
    assert retry_after_s(FakeRpcError(code, "slow")) is None

"""Sandbox backends: where model-written code runs, always outside this process."""

from orchestrator.sandboxes.base import Sandbox, SandboxBackend
from orchestrator.sandboxes.client import SandboxClient
from orchestrator.sandboxes.factory import BackendName, create_backend
from orchestrator.sandboxes.values import (
    Described,
    ErrorInfo,
    ExecRequest,
    ExecResult,
    IsolationLevel,
    Status,
    Usage,
)

__all__ = [
    "BackendName",
    "Described",
    "ErrorInfo",
    "ExecRequest",
    "ExecResult",
    "IsolationLevel",
    "Sandbox",
    "SandboxBackend",
    "SandboxClient",
    "Status",
    "Usage",
    "create_backend",
]

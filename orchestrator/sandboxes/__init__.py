"""Sandbox backends: where model-written code runs, always outside this process."""

from orchestrator.sandboxes.base import (
    ErrorInfo,
    ExecRequest,
    ExecResult,
    IsolationLevel,
    Sandbox,
    SandboxBackend,
    Status,
    Usage,
)
from orchestrator.sandboxes.client import SandboxClient
from orchestrator.sandboxes.factory import BackendName, create_backend

__all__ = [
    "BackendName",
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

"""The sandbox backend interface. The values that cross it live in ``values``."""

from __future__ import annotations

import abc
import asyncio
from typing import Self, TypeVar

from orchestrator.deadlines import clamp_timeout_ms
from orchestrator.sandboxes.client import SandboxClient
from orchestrator.sandboxes.pool import WarmPool
from orchestrator.sandboxes.values import Described, ExecRequest, ExecResult, IsolationLevel
from orchestrator.telemetry import SANDBOX_CALLS, SANDBOX_FAULTS, tracer

DESCRIBE_TIMEOUT_S = 30.0  # the transport's wait for a describe without a call deadline


class Sandbox:
    """A running sandbox server that belongs to exactly one tenant."""

    def __init__(self, tenant: str, client: SandboxClient, isolation: str) -> None:
        self.tenant = tenant
        self.client = client
        self.isolation = isolation
        self.uses = 0

    async def execute(self, request: ExecRequest) -> ExecResult:
        self.uses += 1
        return await self.client.execute(request, self.isolation)


S = TypeVar("S", bound=Sandbox)


async def acquire_connected(pool: WarmPool[S]) -> S:
    """A sandbox from ``pool`` whose connection holds: one whose server went away while it
    sat idle (its connection says so) is released as faulted, so replaced, and another
    taken; after three such, whatever the pool gives next."""
    for _ in range(3):
        sandbox = await pool.acquire()
        if not sandbox.client.connection_lost():
            return sandbox
        await pool.release(sandbox, faulted=True)
    return await pool.acquire()


class SandboxBackend(abc.ABC):
    """Where sandboxes come from. Subclasses fill in acquire, release and close.

    Callers use :meth:`execute`; the shared logic (acquire, run, release with the
    fault flag, isolation checks) lives here so backends stay small.
    """

    name: str = "abstract"

    def __init__(self, min_isolation: IsolationLevel = IsolationLevel.RLIMITS) -> None:
        self.min_isolation = min_isolation

    @property
    @abc.abstractmethod
    def isolation(self) -> tuple[str, IsolationLevel]:
        """The isolation this backend provides: a label and its level."""

    @abc.abstractmethod
    async def acquire(self, tenant: str) -> Sandbox:
        """A sandbox for ``tenant``, never shared with another tenant."""

    @abc.abstractmethod
    async def release(self, sandbox: Sandbox, faulted: bool) -> None:
        """Give a sandbox back; ``faulted`` says its last call hit a fault."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every sandbox this backend started."""

    def check_isolation(self) -> None:
        from orchestrator.errors import IsolationTooWeak

        label, level = self.isolation
        if level < self.min_isolation:
            raise IsolationTooWeak.for_levels(label, self.min_isolation.name.lower())

    async def execute(self, tenant: str, request: ExecRequest) -> ExecResult:
        """Run one call for ``tenant`` in one of its sandboxes."""
        from orchestrator.errors import InvalidRequest, ToolNotFound

        timeout_ms = clamp_timeout_ms(request.timeout_ms)
        if timeout_ms != request.timeout_ms:
            request = request.model_copy(update={"timeout_ms": timeout_ms})
        with tracer.start_as_current_span("sandbox.execute") as span:
            span.set_attribute("latm.backend", self.name)
            sandbox = await self.acquire(tenant)
            span.set_attribute("latm.isolation", sandbox.isolation)
            faulted = True
            try:
                result = await sandbox.execute(request)
                faulted = result.status.is_fault
                span.set_attribute("latm.status", result.status.value)
                SANDBOX_CALLS.labels(self.name, result.status.value).inc()
                if faulted:
                    SANDBOX_FAULTS.labels(self.name, result.status.value).inc()
                return result
            except (InvalidRequest, ToolNotFound):
                faulted = False  # the request was refused; the sandbox is unharmed
                raise
            finally:
                # A call cancelled mid-way counts as a fault: its worker may still run.
                await asyncio.shield(self.release(sandbox, faulted))

    async def describe(self, tenant: str, source: str, entrypoint: str) -> Described:
        """``entrypoint``'s parameters as a JSON Schema, read in one of ``tenant``'s
        sandboxes (the module runs there once, under the default limits)."""
        with tracer.start_as_current_span("sandbox.describe") as span:
            span.set_attribute("latm.backend", self.name)
            sandbox = await self.acquire(tenant)
            faulted = True
            try:
                described = await sandbox.client.describe(
                    source, entrypoint, clamp_timeout_ms(0) / 1000 or DESCRIBE_TIMEOUT_S
                )
                faulted = described.status.is_fault
                return described
            finally:
                await asyncio.shield(self.release(sandbox, faulted))

    def stats(self) -> dict[str, int]:
        """Sandboxes by state (e.g. idle, busy), for metrics; empty when not tracked."""
        return {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

"""Errors raised inside the sandbox server. Each maps onto a contract status."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One policy finding, precise enough to be fed back to the maker model."""

    line: int
    message: str
    rule: str = "policy"

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class SandboxError(Exception):
    """Root of the sandbox server's exceptions."""


class PolicyViolation(SandboxError):
    """Code was refused before running: forbidden import, name or construct."""

    def __init__(self, violations: list[Violation], origin: str = "tool") -> None:
        self.violations = violations
        self.origin = origin
        super().__init__("; ".join(str(v) for v in violations))

    @property
    def line(self) -> int:
        return self.violations[0].line if self.violations else 0


class SourceSyntaxError(SandboxError):
    """Code does not parse."""

    def __init__(self, message: str, line: int, origin: str = "tool") -> None:
        self.line = line
        self.origin = origin
        super().__init__(f"line {line}: {message}" if line else message)


class ValueConversionError(SandboxError):
    """A value cannot cross the boundary as JSON."""


class GuardError(SandboxError):
    """Raised into tool code when a guard refuses an operation.

    Subclasses AttributeError-like behaviour is deliberately not inherited: a tool
    that catches ``AttributeError`` must not silently swallow a refusal.
    """

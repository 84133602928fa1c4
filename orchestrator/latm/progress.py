"""What a tool-making job reports as it goes: typed events, each also put in words.

Consumers (the CLI, the gRPC stream, the demo) act on the event's type and fields; its
``message`` is only for people, so rewording one changes no behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.latm.cards import VerificationCase


class Stage(StrEnum):
    """The part of the job an event belongs to."""

    PROPOSE = "propose"  # the maker writes a tool and solves the demos with it
    VERIFY = "verify"  # the maker writes calls for the held-out questions
    WRAP = "wrap"  # the tool is verified and wrapped into a card
    FAILED = "failed"  # no tool: every attempt was spent


@dataclass(frozen=True)
class AttemptStarted:
    """The maker is asked, for the ``number``-th time in ``stage``, about ``questions``."""

    stage: Stage
    number: int
    questions: int

    @property
    def message(self) -> str:
        if self.stage is Stage.PROPOSE:
            return f"attempt {self.number}: asking the maker for a tool"
        return (
            f"attempt {self.number}: the maker writes calls for {self.questions} held-out questions"
        )


@dataclass(frozen=True)
class AttemptFailed:
    """An attempt's reply did not do: ``problem`` is the first thing sent back."""

    stage: Stage
    number: int
    problem: str

    @property
    def message(self) -> str:
        return f"attempt {self.number} failed: {self.problem}"


@dataclass(frozen=True)
class DemosSolved:
    """The proposed tool solved every demo with the maker's calls."""

    signature: str
    demos: int
    number: int
    stage: Stage = Stage.PROPOSE

    @property
    def message(self) -> str:
        return f"tool {self.signature} solves the {self.demos} demos"


@dataclass(frozen=True)
class CaseGraded:
    """One held-out case, run in the sandbox and scored by the orchestrator."""

    case: VerificationCase
    number: int
    stage: Stage = Stage.VERIFY

    @property
    def message(self) -> str:
        verdict = "passed" if self.case.passed else "failed"
        return f"held-out case {verdict}: expected {self.case.expected!r}"


@dataclass(frozen=True)
class Verified:
    """The tool passed ``passed`` of ``total`` held-out cases and was wrapped as ``name``."""

    name: str
    passed: int
    total: int
    stage: Stage = Stage.WRAP

    @property
    def message(self) -> str:
        return f"tool {self.name} verified {self.passed}/{self.total}"


@dataclass(frozen=True)
class MakeFailed:
    """No tool: ``reason`` says why (every attempt spent, the last problems)."""

    reason: str
    stage: Stage = Stage.FAILED

    @property
    def message(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Relayed:
    """A step of a job that runs elsewhere (``latm --server ... make``): what the server's
    stream says of it, its stage, attempt number and words; a held-out case comes as a
    :class:`CaseGraded`, the outcome as the job's result."""

    stage: Stage
    number: int
    message: str


MakeEvent = AttemptStarted | AttemptFailed | DemosSolved | CaseGraded | Verified | MakeFailed
Progress = Callable[[MakeEvent], None]


def ignore(_event: MakeEvent) -> None:
    """A progress sink that drops every event."""

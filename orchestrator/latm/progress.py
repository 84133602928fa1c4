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
    candidate: int = 1  # which of the sampled candidate tools this attempt belongs to

    @property
    def message(self) -> str:
        if self.stage is Stage.PROPOSE:
            return f"{_attempt(self)}: asking the maker for a tool"
        return f"{_attempt(self)}: the maker writes calls for {self.questions} held-out questions"


@dataclass(frozen=True)
class AttemptFailed:
    """An attempt's reply did not do: ``problem`` is the first thing sent back."""

    stage: Stage
    number: int
    problem: str
    candidate: int = 1

    @property
    def message(self) -> str:
        return f"{_attempt(self)} failed: {self.problem}"


@dataclass(frozen=True)
class DemosSolved:
    """The proposed tool solved every demo with the maker's calls."""

    signature: str
    demos: int
    number: int
    stage: Stage = Stage.PROPOSE
    candidate: int = 1

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
class CandidateScored:
    """Candidate tool ``candidate`` is done: whether it solved the demos, how many held-out
    cases it passed at best (0 of ``total`` when it never reached them), and the first
    problem left (None for a tool that passed everything)."""

    candidate: int
    signature: str | None
    solved_demos: bool
    passed: int
    total: int
    problem: str | None
    stage: Stage = Stage.VERIFY

    @property
    def message(self) -> str:
        if not self.solved_demos:
            return f"candidate {self.candidate}: no tool solved the demos ({self.problem})"
        return (
            f"candidate {self.candidate}: {self.signature} passed {self.passed}/{self.total} "
            "held-out cases"
        )


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


MakeEvent = (
    AttemptStarted
    | AttemptFailed
    | DemosSolved
    | CaseGraded
    | CandidateScored
    | Verified
    | MakeFailed
)
Progress = Callable[[MakeEvent], None]


def _attempt(event: AttemptStarted | AttemptFailed) -> str:
    said = f"attempt {event.number}"
    return f"candidate {event.candidate}, {said}" if event.candidate > 1 else said


def ignore(_event: MakeEvent) -> None:
    """A progress sink that drops every event."""

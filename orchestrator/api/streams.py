"""A long job (making or repairing a tool) as a stream: its progress events as they come,
then its result; the job and the wait for its next event are stopped when the caller goes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from latm.orchestrator.v1 import orchestrator_pb2 as pb

from orchestrator.errors import LatmError
from orchestrator.latm.progress import (
    AttemptFailed,
    AttemptStarted,
    CandidateScored,
    CaseGraded,
    DemosSolved,
    MakeEvent,
    Progress,
)

Result = TypeVar("Result")


@dataclass(frozen=True)
class Done(Generic[Result]):
    """The job's result, after its last event."""

    value: Result


def event_fields(event: MakeEvent) -> dict[str, Any] | None:
    """The ``oneof event`` field of a MakeTool or RepairTool message for ``event``; None
    for events the API does not stream."""
    if isinstance(event, CaseGraded):
        case = event.case
        result = pb.CaseResult(
            question=case.question,
            expected=case.expected,
            got=case.got or case.error or "",
            passed=case.passed,
        )
        return {"case_result": result}
    if isinstance(event, AttemptStarted | AttemptFailed | DemosSolved):
        number = 0 if isinstance(event, DemosSolved) else event.number
        return {"attempt": pb.Attempt(stage=event.stage, number=number, message=event.message)}
    if isinstance(event, CandidateScored):
        scored = pb.CandidateResult(
            candidate=event.candidate,
            signature=event.signature or "",
            solved_demos=event.solved_demos,
            passed=event.passed,
            total=event.total,
            problem=event.problem or "",
        )
        return {"candidate": scored}
    return None


def candidate_scored(result: pb.CandidateResult) -> CandidateScored:
    """A streamed candidate's outcome, as the maker reported it."""
    return CandidateScored(
        candidate=result.candidate,
        signature=result.signature or None,
        solved_demos=result.solved_demos,
        passed=result.passed,
        total=result.total,
        problem=result.problem or None,
    )


async def with_progress(
    job: Callable[[Progress], Awaitable[Result]], message: Callable[..., Any]
) -> AsyncIterator[Any]:
    """Run ``job`` with a progress callback; yield ``message(**fields)`` for each event,
    then :class:`Done` with the job's result."""
    events: asyncio.Queue[Any] = asyncio.Queue()

    def progress(event: MakeEvent) -> None:
        fields = event_fields(event)
        if fields is not None:
            events.put_nowait(message(**fields))

    running = asyncio.ensure_future(job(progress))
    getter: asyncio.Future[Any] | None = None
    try:
        while not running.done() or not events.empty():
            getter = asyncio.ensure_future(events.get())
            await asyncio.wait({running, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
            else:
                getter.cancel()
        yield Done(running.result())
    finally:
        # The caller went away or its deadline passed: stop the job, and the wait for its
        # next event, and see both end (no task left pending).
        for left in (getter, running):
            if left is not None and not left.done():
                left.cancel()
                with contextlib.suppress(asyncio.CancelledError, LatmError):
                    await left

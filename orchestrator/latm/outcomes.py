"""Reported outcomes: a tenant says what the right answer was (or that an answer was
wrong), and the case joins the tool's regression suite."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.errors import InvalidRequest
from orchestrator.registry import ToolRegistry
from orchestrator.registry.cases import Case, CaseBook, NewCase, Served


@dataclass(frozen=True)
class Report:
    """One reported outcome: a request id, or a tool and a question; then the right
    ``answer``, or ``wrong`` (the answer given was wrong, the right one is not known)."""

    request_id: str | None = None
    tool: str | None = None
    question: str | None = None
    answer: str | None = None
    wrong: bool = False


@dataclass(frozen=True)
class Reported:
    """The case as kept, the size of the tool's suite, and whether a repair was started."""

    case: Case
    suite: int
    repairing: bool = False


def reported_case(report: Report, served: Served | None, version: int | None) -> NewCase:
    """The case ``report`` adds: from the served request when it names one, else from the
    tool and question it gives.

    Raises:
        InvalidRequest: neither a request id nor a tool and question; no right answer and
            not marked wrong (or both); marked wrong with nothing to mark.
    """
    if (report.answer is None) == (not report.wrong):
        raise InvalidRequest("give the right answer, or mark the answer wrong (not both)")
    if served is not None:
        if report.wrong and served.answer is None:
            raise InvalidRequest(
                f"request {served.request_id!r} gave no answer to mark wrong; "
                "give the right answer instead"
            )
        return NewCase(
            tool=served.tool,
            input=served.input,
            source="reported",
            kind=served.kind,
            expected=report.answer,
            wrong=served.answer if report.wrong else None,
            version=served.version,
            request_id=served.request_id,
        )
    if not report.tool or not report.question:
        raise InvalidRequest("name the request (its id), or the tool and the question")
    if report.wrong:
        raise InvalidRequest("with a tool and a question, give the right answer")
    return NewCase(
        tool=report.tool,
        input=report.question,
        source="reported",
        expected=report.answer,
        version=version,
    )


def record_report(
    registry: ToolRegistry, tenant: str, report: Report, max_cases: int | None = None
) -> Reported:
    """Keep ``report`` in its tool's suite (within ``max_cases``); blocking.

    Raises:
        RequestNotFound: no tool served the request id in this tenant.
        ToolNotFound: the named tool does not exist.
        InvalidRequest: an incomplete or contradictory report.
    """
    book = CaseBook(registry)
    served, version = None, None
    if report.request_id:
        served = book.served(tenant, report.request_id)
    elif report.tool:
        version = registry.get(tenant, report.tool).version
    case = reported_case(report, served, version)
    kept = book.add(tenant, case, max_cases)
    return Reported(kept, len(book.suite(tenant, case.tool)))

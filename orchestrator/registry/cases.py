"""Each tool's regression suite, and the requests tools served.

A suite holds the tool's verification cases, every outcome a tenant reported later (the
right answer, or an answer marked wrong) and every failure that was the tool's own fault.
A repair publishes a new version only when it passes the whole suite. The requests table
maps a request id back to the tool version, the question (or arguments) and the answer.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, delete, func, select

from orchestrator.errors import InvalidRequest, QuotaExceeded, RequestNotFound
from orchestrator.latm.cards import MAX_TEXT, ToolCard
from orchestrator.registry._engine import lock_until_commit
from orchestrator.registry.schema import CaseRow, RequestRow
from orchestrator.registry.store import STORE_LOCK_CLASS, ToolRegistry, _tenant, _utc

REQUESTS_KEPT = timedelta(days=30)  # how long a served request can still be reported
Source = Literal["verification", "reported", "failure"]
Kind = Literal["question", "arguments"]  # arguments: entrypoint keyword arguments as JSON


@dataclass(frozen=True, slots=True)
class NewCase:
    """A case to add: the input, and the right answer, an answer known wrong, or neither
    (a failure: the tool must at least run)."""

    tool: str
    input: str
    source: Source
    kind: Kind = "question"
    expected: str | None = None
    wrong: str | None = None
    version: int | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Case(NewCase):
    """A stored case."""

    id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Served:
    """One request a tool served: enough to turn a reported outcome into a case."""

    request_id: str
    tool: str
    version: int
    input: str
    answer: str | None
    kind: Kind = "question"


class CaseBook:
    """Regression cases and served requests, in the registry's database."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    def remember(self, tenant: str, served: builtins.list[Served]) -> None:
        """Record requests tools served (the engine batches them off the request path);
        those older than :data:`REQUESTS_KEPT` are forgotten."""
        tenant = _tenant(tenant)
        with self.registry.transaction("recording served requests") as session:
            session.execute(
                delete(RequestRow).where(
                    RequestRow.tenant == tenant,
                    RequestRow.created_at < datetime.now(UTC) - REQUESTS_KEPT,
                )
            )
            session.add_all(
                RequestRow(
                    tenant=tenant,
                    request_id=item.request_id,
                    tool=item.tool,
                    version=item.version,
                    kind=item.kind,
                    input=item.input,
                    answer=item.answer,
                )
                for item in served
            )

    def served(self, tenant: str, request_id: str) -> Served:
        """The request ``request_id`` of ``tenant``, as a tool served it.

        Raises:
            RequestNotFound: no tool served a request of that id in this tenant.
        """
        tenant = _tenant(tenant)
        query = (
            select(RequestRow)
            .where(RequestRow.tenant == tenant, RequestRow.request_id == request_id)
            .order_by(RequestRow.id.desc())
            .limit(1)
        )
        with self.registry.transaction("reading a served request") as session:
            row = session.scalars(query).first()
        if row is None:
            raise RequestNotFound(
                f"no request {request_id!r} answered by a tool in tenant {tenant!r} "
                f"(requests are kept {REQUESTS_KEPT.days} days)"
            )
        kind: Kind = "arguments" if row.kind == "arguments" else "question"
        return Served(row.request_id, row.tool, row.version, row.input, row.answer, kind)

    def add(self, tenant: str, case: NewCase, max_cases: int | None = None) -> Case:
        """Add ``case`` to its tool's suite (the same case again is kept once).

        Raises:
            InvalidRequest: an empty or oversize input or answer.
            QuotaExceeded: the suite already holds ``max_cases`` cases.
        """
        tenant = _tenant(tenant)
        _check(case)
        with self.registry.transaction(f"adding a case to {case.tool!r}") as session:
            if max_cases is not None:
                lock_until_commit(session, STORE_LOCK_CLASS, f"{tenant}\ncases\n{case.tool}")
            same = session.scalars(
                select(CaseRow).where(*_same(tenant, case)).order_by(CaseRow.id).limit(1)
            ).first()
            if same is not None:
                return _case(same)
            held = session.scalar(
                select(func.count(CaseRow.id)).where(
                    CaseRow.tenant == tenant, CaseRow.tool == case.tool
                )
            )
            if max_cases is not None and int(held or 0) >= max_cases:
                raise QuotaExceeded(
                    f"tool {case.tool!r} keeps {held} regression cases, this tenant's quota "
                    f"(max_cases); no more can be added"
                )
            row = CaseRow(tenant=tenant, **_fields(case))
            session.add(row)
            session.flush()
            return _case(row)

    def add_verification(self, tenant: str, card: ToolCard, max_cases: int | None = None) -> None:
        """Keep ``card``'s verification cases in its suite (each once)."""
        for case in card.verification.cases:
            self.add(
                tenant,
                NewCase(
                    tool=card.name,
                    input=case.question,
                    expected=case.expected,
                    source="verification",
                    version=card.version,
                ),
                max_cases,
            )

    def suite(self, tenant: str, tool: str) -> builtins.list[Case]:
        """Every case of ``tool``'s suite, oldest first."""
        tenant = _tenant(tenant)
        query = (
            select(CaseRow)
            .where(CaseRow.tenant == tenant, CaseRow.tool == tool)
            .order_by(CaseRow.id)
        )
        with self.registry.transaction(f"reading the suite of {tool!r}") as session:
            return [_case(row) for row in session.scalars(query).all()]


def _check(case: NewCase) -> None:
    if not case.input.strip():
        raise InvalidRequest("a case needs its question (or arguments)")
    for what, text in (("input", case.input), ("expected", case.expected), ("wrong", case.wrong)):
        if text is not None and len(text) > MAX_TEXT:
            raise InvalidRequest(f"a case's {what} is limited to {MAX_TEXT} characters")
    if case.expected is not None and case.wrong is not None:
        raise InvalidRequest("give the right answer or the wrong one, not both")


def _same(tenant: str, case: NewCase) -> builtins.list[ColumnElement[bool]]:
    return [
        CaseRow.tenant == tenant,
        CaseRow.tool == case.tool,
        CaseRow.kind == case.kind,
        CaseRow.input == case.input,
        CaseRow.expected.is_(None) if case.expected is None else CaseRow.expected == case.expected,
        CaseRow.wrong.is_(None) if case.wrong is None else CaseRow.wrong == case.wrong,
    ]


def _fields(case: NewCase) -> dict[str, object]:
    return {
        "tool": case.tool,
        "version": case.version,
        "kind": case.kind,
        "input": case.input,
        "expected": case.expected,
        "wrong": case.wrong,
        "source": case.source,
        "request_id": case.request_id,
    }


def _case(row: CaseRow) -> Case:
    return Case(
        tool=row.tool,
        input=row.input,
        source=row.source,  # type: ignore[arg-type]  # the table's check constraint
        kind=row.kind,  # type: ignore[arg-type]
        expected=row.expected,
        wrong=row.wrong,
        version=row.version,
        request_id=row.request_id,
        id=row.id,
        created_at=_utc(row.created_at) if row.created_at else None,
    )

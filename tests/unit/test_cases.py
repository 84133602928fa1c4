"""Regression cases and served requests in the registry (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from orchestrator.errors import InvalidRequest, QuotaExceeded, RequestNotFound
from orchestrator.registry import ToolRegistry
from orchestrator.registry.cases import REQUESTS_KEPT, CaseBook, NewCase, Served
from orchestrator.registry.schema import RequestRow
from tests.support.cards import make_card


@pytest.fixture
def book(tmp_path: Path) -> CaseBook:
    return CaseBook(ToolRegistry.open(f"sqlite:///{tmp_path}/registry.db"))


def test_a_served_request_is_found_by_its_id_in_its_tenant_only(book: CaseBook) -> None:
    book.remember("acme", [Served("r1", "sort_words", 2, "List: b a", "a b")])
    assert book.served("acme", "r1") == Served("r1", "sort_words", 2, "List: b a", "a b")
    with pytest.raises(RequestNotFound, match="r1"):
        book.served("other", "r1")
    with pytest.raises(RequestNotFound):
        book.served("acme", "r2")


def test_a_suite_keeps_each_case_once_in_order_and_within_the_quota(book: CaseBook) -> None:
    card = make_card().model_copy(update={"version": 1})
    book.add_verification("acme", card)
    verified = len(card.verification.cases)
    reported = NewCase(card.name, "q?", "reported", expected="right", version=1)
    book.add("acme", reported)
    book.add("acme", reported)
    suite = book.suite("acme", card.name)
    assert len(suite) == verified + 1
    assert suite[-1].expected == "right"
    assert suite[-1].source == "reported"
    assert book.suite("other", card.name) == []
    with pytest.raises(QuotaExceeded, match="max_cases"):
        book.add("acme", NewCase(card.name, "q2?", "failure", version=1), max_cases=len(suite))


def test_a_case_needs_an_input_and_not_both_answers(book: CaseBook) -> None:
    with pytest.raises(InvalidRequest, match="question"):
        book.add("acme", NewCase("t", " ", "reported", expected="x"))
    with pytest.raises(InvalidRequest, match="not both"):
        book.add("acme", NewCase("t", "q", "reported", expected="x", wrong="y"))


def test_served_requests_are_forgotten_after_the_time_they_are_kept(book: CaseBook) -> None:
    book.remember("acme", [Served("old", "t", 1, "q", "a")])
    with book.registry.transaction("ageing a request") as session:
        session.execute(
            update(RequestRow).values(created_at=datetime.now(UTC) - REQUESTS_KEPT - timedelta(1))
        )
    book.remember("acme", [Served("new", "t", 1, "q", "a")])
    assert book.served("acme", "new").request_id == "new"
    with pytest.raises(RequestNotFound, match="kept 30 days"):
        book.served("acme", "old")

"""ListTools pages: in name order, after the token, at most the page size, ended before
the page's byte budget, with summaries' texts cut."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.api import service
from orchestrator.errors import InvalidRequest
from orchestrator.registry import ToolSummary


def summaries(count: int, text: int = 10) -> list[ToolSummary]:
    return [
        ToolSummary(
            name=f"tool_{i:05d}",
            version=1,
            description="d" * text,
            signature="s" * text,
            entrypoint=f"tool_{i:05d}",
            sha256="0" * 64,
            created_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
            uses=0,
            cost_usd=0.0,
        )
        for i in range(count)
    ]


def test_pages_follow_one_another_to_the_end() -> None:
    tools = summaries(25)
    names, token = [], ""
    while True:
        page = service._page(tools, 10, token)
        names += [t.name for t in page.tools]
        token = page.next_page_token
        if not token:
            break
    assert names == [t.name for t in tools]


def test_a_page_ends_before_its_byte_budget_and_summaries_are_cut() -> None:
    tools = summaries(5000, text=4000)
    page = service._page(tools, 0, "")
    assert 0 < len(page.tools) < service.PAGE_SIZE
    assert page.ByteSize() <= service.PAGE_BYTES
    assert len(page.tools[0].description) == service.SUMMARY_TEXT
    assert page.next_page_token == page.tools[-1].name


def test_the_page_size_is_capped_and_a_foreign_token_refused() -> None:
    assert len(service._page(summaries(1500), 5000, "").tools) == service.PAGE_SIZE
    with pytest.raises(InvalidRequest, match="page_token"):
        service._page(summaries(3), 0, "../etc")

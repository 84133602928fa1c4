"""ReportOutcome and RepairTool over the real gRPC server (scripted models, a real
sandbox and registry): a request's outcome reported by its id, a tool and a question, or
marked wrong; typed errors for bad reports; a repair streamed to its new version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from latm.orchestrator.v1 import orchestrator_pb2 as pb

from orchestrator.client import AsyncClient
from orchestrator.errors import (
    InvalidRequest,
    LatmError,
    PreconditionFailed,
    RequestNotFound,
    from_rpc_error,
)
from orchestrator.latm.tasks import Example, load_task
from orchestrator.sandboxes import create_backend
from tests.support.api import ADD_CARD, StartApi
from tests.support.cards import card_json
from tests.support.maker import BBH, SORT, calls

pytestmark = pytest.mark.integration

QUESTION = "Sort the following words alphabetically: List: Banana apple cherry"
RIGHT = "apple Banana cherry"
FIXED = SORT.replace("sorted(words)", "sorted(words, key=str.lower)")


async def report(client: AsyncClient, **fields: Any) -> pb.ReportOutcomeResponse:
    try:
        response: pb.ReportOutcomeResponse = await client.stub.ReportOutcome(
            pb.ReportOutcomeRequest(**fields), metadata=client.metadata
        )
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
    return response


async def repair(client: AsyncClient, name: str) -> AsyncIterator[pb.RepairToolResponse]:
    try:
        async for event in client.stub.RepairTool(
            pb.RepairToolRequest(name=name), metadata=client.metadata
        ):
            yield event
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None


async def test_outcomes_reported_by_request_id_and_typed_errors(start_api: StartApi) -> None:
    api = await start_api(user=["ans = add(a=2, b=3)"])
    async with api.client() as client:
        await client.import_tool(ADD_CARD)
        solved = await client.solve("What is 2 plus 3?", tool="add")
        kept = await report(client, request_id=solved.request_id, answer="6")
        assert (kept.tool, kept.tool_version, kept.repairing) == ("add", 1, False)
        assert kept.suite_cases >= 1
        wrong = await report(client, request_id=solved.request_id, wrong=True)
        assert wrong.suite_cases == kept.suite_cases + 1
        executed = await client.stub.ExecuteTool(
            pb.ExecuteToolRequest(tool="add", arguments_json='{"a": 2, "b": 2}'),
            metadata=client.metadata,
        )
        assert executed.request_id
        by_args = await report(client, request_id=executed.request_id, answer="5")
        assert by_args.suite_cases == wrong.suite_cases + 1
        named = await report(client, tool="add", question="What is 1 plus 1?", answer="2")
        assert named.suite_cases == by_args.suite_cases + 1
        with pytest.raises(RequestNotFound):
            await report(client, request_id="no-such-request", answer="5")
        with pytest.raises(InvalidRequest, match="right answer"):
            await report(client, request_id=solved.request_id)
        with pytest.raises(InvalidRequest, match="tool and the question"):
            await report(client, answer="5")
    async with api.client(api.globex) as other:
        with pytest.raises(RequestNotFound):
            await report(other, request_id=solved.request_id, answer="5")


async def test_repair_tool_streams_the_new_version(start_api: StartApi) -> None:
    task = load_task(BBH / "word_sorting.json")
    parts = task.split()
    shown = [*parts.demos, Example(0, QUESTION, RIGHT)]
    api = await start_api(
        maker=[
            f"```python\n{SORT}```\n{calls(list(parts.demos))}",
            calls(list(parts.validation)),
            f"```python\n{FIXED}```\n{calls(shown)}",
            calls(list(parts.validation)),
        ]
    )
    examples = [(e.input, e.target) for e in task.examples[:12]]
    async with api.client() as client:
        with pytest.raises(LatmError):  # no such tool yet
            [event async for event in repair(client, "sort_words")]
        [event async for event in client.make_tool("word_sorting", examples)]
        with pytest.raises(PreconditionFailed, match="nothing to repair"):
            [event async for event in repair(client, "sort_words")]
        await report(client, tool="sort_words", question=QUESTION, answer=RIGHT)
        events = [event async for event in repair(client, "sort_words")]
        kinds = [event.WhichOneof("event") for event in events]
        assert kinds[0] == "attempt"
        assert kinds.count("case_result") == 3
        last = events[-1]
        assert last.WhichOneof("event") == "tool"
        assert (last.tool.version, last.tool.source) == (2, FIXED)
        assert (last.failing_cases, last.suite_cases) == (1, 4)
        assert last.tool.verification.passed == 4
        assert (await client.get_tool("sort_words")).version == 2


DIV = 'def div(a, b):\n    """a over b."""\n    return a / b\n'


async def test_the_tools_own_faults_are_kept_as_failure_cases(start_api: StartApi) -> None:
    card = card_json(DIV, "div", "What is 6 over 3?", "ans = div(a=6, b=3)", "2.0")
    api = await start_api(user=["ans = div(a=1, b=0)"] * 3, backend=create_backend("process"))
    engine = api.server.engine
    async with api.client() as client:
        await client.import_tool(card)
        executed = await client.stub.ExecuteTool(
            pb.ExecuteToolRequest(tool="div", arguments_json='{"a": 1, "b": 0}'),
            metadata=client.metadata,
        )
        assert executed.error.origin == "tool"
        called = await client.stub.ExecuteTool(
            pb.ExecuteToolRequest(tool="div", arguments_json='{"a": 1}'),
            metadata=client.metadata,
        )
        assert called.error.origin != "tool"  # the caller's mistake is no case
        solved = await client.solve("What is 1 over 0?", tool="div")
        assert solved.error
    await engine.flush()
    failures = [c for c in engine.cases.suite("acme", "div") if c.source == "failure"]
    assert [(c.kind, c.input, c.request_id) for c in failures] == [
        ("arguments", '{"a": 1, "b": 0}', executed.request_id),
        ("question", "What is 1 over 0?", solved.request_id),
    ]

"""The public gRPC API over a real server: a Unix socket, TCP with TLS and mutual TLS.

Every RPC, authentication, tenant isolation, quotas, deadlines, cancellation, draining,
metrics, logs and traces. The server runs in the test's event loop with a real sandbox
backend and a real registry; the models are scripted.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from latm_client import TlsFiles
from latm_client._client import _make_request
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from pydantic import SecretStr

from orchestrator.api.observability import setup_logging, start_metrics
from orchestrator.api.server import check_listen
from orchestrator.config import Settings
from orchestrator.errors import (
    DeadlineExceeded,
    InvalidRequest,
    PermissionDenied,
    QuotaExceeded,
    ToolNotFound,
    Unauthenticated,
    Unavailable,
)
from orchestrator.latm.tasks import load_task
from orchestrator.models import open_model
from orchestrator.sandboxes import create_backend
from orchestrator.sandboxes.docker_options import DockerSettings
from orchestrator.sandboxes.pool import PoolConfig
from tests.support.api import ADD, ADD_CARD, FOREVER, SECOND, SPIN_CARD, Api, StartApi
from tests.support.backends import require_docker
from tests.support.maker import BBH, SORT
from tests.support.model_server import DEFAULT_KEY, ModelServer
from tests.support.registry import seed_tools
from tests.support.tls import make_pki

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def api(start_api: StartApi) -> Api:
    return await start_api(user=["ans = add(a=2, b=3)"])


async def test_every_rpc_over_a_unix_socket(api: Api) -> None:
    async with api.client() as client:
        imported = await client.import_tool(ADD_CARD)
        assert (imported.name, imported.version, imported.maker) == ("add", 1, "import")
        assert [tool.name for tool in await client.list_tools()] == ["add"]
        card = await client.get_tool("add")
        assert card.source == ADD
        assert card.usage_demos[0].solution == "ans = add(a=2, b=3)"
        exported = json.loads(await client.export_tool("add"))
        assert exported["format"] == "latm.tool/v1"
        assert exported["version"] == 1

        result = await client.execute_tool("add", {"a": 2, "b": 40})
        assert (result.status, result.value, result.tool, result.version) == ("ok", 42, "add", 1)
        assert result.isolation.startswith("process")
        failed = await client.execute_tool("add", {"a": 2})
        assert failed.status == "error"
        assert failed.error
        assert failed.error["type"] == "TypeError"

        answer = await client.solve("What is 2 plus 3?", tool="add")
        assert (answer.answer, answer.route, answer.tool) == ("5", "tool", "add")
        assert answer.call == "ans = add(a=2, b=3)"
        assert answer.usage["user"]["prompt_tokens"] > 0

        usage = await client.get_usage()
        assert usage.tenant == "acme"
        assert usage.total.calls == 1
        assert usage.total.prompt_tokens > 0
        assert [line.tool for line in usage.by_tool] == ["add"]
        assert len(usage.by_period) == 1
        assert usage.by_model[0].model
        hourly = await client.get_usage(granularity="hour")
        assert hourly.by_period[0].start.seconds % 3600 == 0

        assert await client.delete_tool("add") == 1
        assert await client.list_tools() == []
        with pytest.raises(ToolNotFound):
            await client.execute_tool("add", {"a": 1, "b": 2})


async def test_make_tool_streams_attempts_cases_and_the_card(start_api: StartApi) -> None:
    task = load_task(BBH / "word_sorting.json")
    parts = task.split()

    def calls(examples: Any) -> str:
        return "\n".join(f"```python\nans = sort_words({e.input!r})\n```" for e in examples)

    api = await start_api(
        maker=[f"```python\n{SORT}```\n{calls(parts.demos)}", calls(parts.validation)]
    )
    examples = [(e.input, e.target) for e in task.examples[:12]]
    async with api.client() as client:
        events = [event async for event in client.make_tool("word_sorting", examples)]
        kinds = [event.WhichOneof("event") for event in events]
        assert kinds[0] == "attempt"
        assert kinds[-1] == "tool"
        assert kinds.count("case_result") == 3
        [scored] = [e.candidate for e in events if e.WhichOneof("event") == "candidate"]
        assert (scored.candidate, scored.solved_demos, scored.passed, scored.total) == (
            1,
            True,
            3,
            3,
        )
        assert scored.signature.startswith("sort_words(")
        assert scored.problem == ""
        assert all(e.case_result.passed for e in events if e.WhichOneof("event") == "case_result")
        assert events[-1].tool.name == "sort_words"
        assert events[-1].tool.verification.passed == 3
        assert events[-1].usage.prompt_tokens > 0
        assert [tool.name for tool in await client.list_tools()] == ["sort_words"]
        with pytest.raises(InvalidRequest, match="examples"):
            [event async for event in client.make_tool("empty", [])]


async def test_make_tool_reports_the_reason_when_nothing_is_published(
    start_api: StartApi,
) -> None:
    task = load_task(BBH / "word_sorting.json")
    api = await start_api(maker=["no code here"] * 3)
    examples = [(e.input, e.target) for e in task.examples[:12]]
    async with api.client() as client:
        events = [event async for event in client.make_tool("word_sorting", examples)]
        assert events[-1].WhichOneof("event") == "failure"
        assert "attempt" in events[-1].failure.reason or events[-1].failure.reason
        assert await client.list_tools() == []


async def test_authentication_failures(api: Api) -> None:
    async with api.client("") as client:
        with pytest.raises(Unauthenticated, match=r"no API key|Bearer"):
            await client.list_tools()
    channel = grpc.aio.insecure_channel(api.server.address)
    stub = pb_grpc.OrchestratorServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListTools(pb.ListToolsRequest())
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListTools(pb.ListToolsRequest(), metadata=(("authorization", api.acme),))
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    await channel.close(None)

    forged = api.acme[:-4] + ("AAAA" if not api.acme.endswith("AAAA") else "BBBB")
    for key in (forged, "latm_0123456789abcdef_" + "x" * 43, "not-a-key"):
        async with api.client(key) as client:
            with pytest.raises(Unauthenticated) as error:
                await client.list_tools()
            assert key not in str(error.value)

    new_key = api.tenants.rotate("acme")
    async with api.client() as old, api.client(new_key) as new:
        with pytest.raises(Unauthenticated):
            await old.list_tools()
        assert await new.list_tools() == []
    api.tenants.revoke("acme")
    async with api.client(new_key) as client:
        with pytest.raises(Unauthenticated):
            await client.list_tools()
    async with api.client(api.globex) as client:  # the service keeps serving others
        assert await client.list_tools() == []


async def test_tenants_are_isolated(api: Api) -> None:
    async with api.client() as acme, api.client(api.globex) as globex:
        await acme.import_tool(ADD_CARD)
        assert await globex.list_tools() == []
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: globex.get_tool("add"),
            lambda: globex.export_tool("add"),
            lambda: globex.execute_tool("add", {"a": 1, "b": 2}),
            lambda: globex.delete_tool("add"),
            lambda: globex.solve("What is 2 plus 3?", tool="add"),
        ]
        for call in calls:
            with pytest.raises(ToolNotFound) as missing:
                await call()
            assert "acme" not in str(missing.value)
            assert str(missing.value) == "no tool 'add' in tenant 'globex'"
        assert [tool.name for tool in await acme.list_tools()] == ["add"]
        assert (await acme.get_usage()).tenant == "acme"
        assert (await globex.get_usage()).total.calls == 0


async def test_requests_per_minute_are_limited_with_a_retry_hint(start_api: StartApi) -> None:
    api = await start_api()
    api.tenants.set_quotas("acme", {"requests_per_minute": 3})
    async with api.client() as client, api.client(api.globex) as other:
        for _ in range(3):
            await client.list_tools()
        started = time.monotonic()
        with pytest.raises(QuotaExceeded, match="3 requests a minute") as over:
            await client.list_tools()
        assert time.monotonic() - started < 1.0  # refused at once, never queued
        assert over.value.retry_after_s is not None
        assert 5 < over.value.retry_after_s <= 20
        assert await other.list_tools() == []  # another tenant is not affected


async def test_concurrent_executions_and_limits_are_bounded(start_api: StartApi) -> None:
    api = await start_api()
    api.tenants.set_quotas("acme", {"concurrent_executions": 1, "max_timeout_ms": 2000})
    async with api.client() as client:
        await client.import_tool(SPIN_CARD)
        slow = asyncio.ensure_future(client.execute_tool("spin", {"loops": SECOND}))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(QuotaExceeded, match="calls running") as busy:
            await client.execute_tool("spin", {"loops": 0})
        assert time.monotonic() - started < 1.0
        assert busy.value.retry_after_s is not None
        assert busy.value.retry_after_s > 0
        assert (await slow).status == "ok"
        assert (await client.execute_tool("spin", {"loops": 0})).status == "ok"
        with pytest.raises(QuotaExceeded, match="timeout_ms 5000 is above") as limit:
            await client.execute_tool("spin", {"loops": 0}, timeout_ms=5000)
        assert limit.value.retry_after_s is None
        with pytest.raises(QuotaExceeded, match="memory_mb"):
            await client.execute_tool("spin", {"loops": 0}, memory_mb=100_000)


async def test_bad_requests_get_typed_errors_and_the_server_keeps_serving(api: Api) -> None:
    async with api.client() as client:
        await client.import_tool(ADD_CARD)
        for bad in ("[1, 2]", "{not json", "1" * 10):
            with pytest.raises(InvalidRequest, match="arguments_json"):
                await client._call(
                    client.stub.ExecuteTool,
                    pb.ExecuteToolRequest(tool="add", arguments_json=bad),
                    None,
                )
        with pytest.raises(InvalidRequest):
            await client.import_tool('{"format": "latm.tool/v1"}')
        tampered = json.loads(ADD_CARD)
        tampered["source"] = ADD.replace("a + b", "a - b")
        with pytest.raises(InvalidRequest, match="sha256"):
            await client.import_tool(json.dumps(tampered))
        with pytest.raises(InvalidRequest, match="question"):
            await client.solve("   ")
        assert (await client.execute_tool("add", {"a": 1, "b": 1})).value == 2


async def deadline_exceeded_frees_the_sandbox(api: Api) -> None:
    async with api.client() as client:
        await client.import_tool(SPIN_CARD)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await client.execute_tool("spin", {"loops": FOREVER}, timeout_s=1.0)
        assert time.monotonic() - started < 2.0
        # The sandbox killed the call at the deadline: the next one is served at once.
        started = time.monotonic()
        assert (await client.execute_tool("spin", {"loops": 0})).status == "ok"
        assert time.monotonic() - started < 3.0
        executions, _ = api.server.service.quotas.in_flight("acme")
        assert executions == 0


async def test_deadline_flows_down_to_the_sandbox_process_backend(api: Api) -> None:
    await deadline_exceeded_frees_the_sandbox(api)
    backend = api.server.backend
    pid = backend.server_pid("acme")  # type: ignore[attr-defined]
    assert pid is not None
    await asyncio.sleep(0.5)
    # No worker of the sandbox server is still spinning on the abandoned call.
    children = Path(f"/proc/{pid}/task/{pid}/children")
    spinning = [
        child
        for child in children.read_text().split()
        if _cpu_ticks(int(child)) > 100  # more than a second of CPU
    ]
    assert spinning == []


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0
    return int(fields[11]) + int(fields[12])


async def test_deadline_flows_down_to_the_sandbox_docker_backend(start_api: StartApi) -> None:
    require_docker("runc")
    from orchestrator.sandboxes.docker import DockerBackend

    pool = PoolConfig(min_idle=1, max_size=2)
    backend = create_backend("docker", Settings(docker=DockerSettings(pool=pool)))
    assert isinstance(backend, DockerBackend)
    api = await start_api(backend=backend)
    await deadline_exceeded_frees_the_sandbox(api)
    stats = backend.stats()
    assert stats["busy"] == 0  # the container that ran the spin was returned (and replaced)


async def test_deadline_cuts_a_model_call_short(
    start_api: StartApi, model_server: ModelServer
) -> None:
    """A model that answers late is abandoned at the caller's deadline, not at the model's
    own (much longer) timeout; the next request is served normally."""
    spec = f"openai-compatible:{model_server.openai_url}#fixture-model"
    model = open_model(
        spec, Settings(openai_compatible_api_key=SecretStr(DEFAULT_KEY), model_max_retries=0)
    )
    api = await start_api(user_model=model)
    model_server.hang(20.0)
    async with api.client() as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await client.solve("Sort: pear apple", timeout_s=1.0)
        assert time.monotonic() - started < 2.0
        answer = await client.solve("Sort: pear apple", timeout_s=20.0)
        assert answer.route == "direct"
        assert answer.usage["user"]["completion_tokens"] > 0  # the model answered this time
    assert model_server.attempts() == 2


async def test_cancelling_a_streaming_make_tool_stops_the_job(start_api: StartApi) -> None:
    task = load_task(BBH / "word_sorting.json")
    slow_tool = SORT.replace(
        '    words = question.split("List:", 1)[-1].split()',
        "    while True:\n        pass",
    )
    demos = "\n".join(f"```python\nans = sort_words({e.input!r})\n```" for e in task.split().demos)
    api = await start_api(maker=[f"```python\n{slow_tool}```\n{demos}"] * 3)
    examples = [(e.input, e.target) for e in task.examples[:12]]
    async with api.client() as client:
        stream = client.stub.MakeTool(
            _make_request("word_sorting", examples, ""),
            metadata=client.metadata,
        )
        first: Any = await stream.read()
        assert first.WhichOneof("event") == "attempt"
        assert api.server.service.quotas.in_flight("acme") == (0, 1)
        stream.cancel()
        for _ in range(50):
            if api.server.service.quotas.in_flight("acme") == (0, 0):
                break
            await asyncio.sleep(0.1)
        assert api.server.service.quotas.in_flight("acme") == (0, 0)
        assert await client.list_tools() == []
        # The make slot is free again: a new job is accepted (not RESOURCE_EXHAUSTED).
        again = client.stub.MakeTool(
            _make_request("word_sorting", examples, ""),
            metadata=client.metadata,
        )
        assert (await again.read()).WhichOneof("event") == "attempt"  # type: ignore[attr-defined]
        again.cancel()


async def test_draining_finishes_in_flight_calls_and_refuses_new_ones(api: Api) -> None:
    async with api.client() as client:
        await client.import_tool(SPIN_CARD)
        slow = asyncio.ensure_future(client.execute_tool("spin", {"loops": SECOND}))
        await asyncio.sleep(0.3)
        stopping = asyncio.ensure_future(api.server.stop(grace_s=10.0))
        await asyncio.sleep(0.1)
        with pytest.raises(Unavailable):
            await client.list_tools()
        result = await slow
        assert result.status == "ok"
        assert result.value > 0
        await stopping


async def test_tls_and_mutual_tls_over_tcp(start_api: StartApi, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    api = await start_api(
        listen="127.0.0.1:0", tls_cert_file=pki.server_cert, tls_key_file=pki.server_key
    )
    async with api.client(tls=TlsFiles(ca=pki.ca)) as client:
        assert await client.list_tools() == []
    async with api.client(tls=TlsFiles(ca=pki.other_ca), timeout_s=3) as client:
        with pytest.raises(Unavailable):
            await client.list_tools()
    async with api.client(timeout_s=3) as plaintext:
        with pytest.raises(Unavailable):
            await plaintext.list_tools()

    mutual = await start_api(
        listen="127.0.0.1:0",
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca,
    )
    async with mutual.client(tls=TlsFiles(ca=pki.ca), timeout_s=3) as anonymous:
        with pytest.raises(Unavailable):
            await anonymous.list_tools()
    with_cert = TlsFiles(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    async with mutual.client(tls=with_cert) as client:
        assert await client.list_tools() == []


def test_plaintext_is_refused_beyond_loopback(tmp_path: Path) -> None:
    settings = Settings()
    for listen in ("127.0.0.1:50051", "localhost:1", "[::1]:1", "unix:/tmp/x.sock"):
        check_listen(settings, listen)
    for listen in ("0.0.0.0:50051", "10.1.2.3:50051", "[::]:50051"):
        with pytest.raises(PermissionDenied, match="plaintext"):
            check_listen(settings, listen)
        check_listen(Settings(allow_insecure=True), listen)
    pki = make_pki(tmp_path)
    check_listen(Settings(tls_cert_file=pki.server_cert, tls_key_file=pki.server_key), "0.0.0.0:1")
    with pytest.raises(InvalidRequest, match="both"):
        check_listen(Settings(tls_cert_file=pki.server_cert), "127.0.0.1:1")
    with pytest.raises(InvalidRequest):
        check_listen(settings, "nonsense")


async def test_health_and_reflection_answer_without_a_key(api: Api) -> None:
    channel = grpc.aio.insecure_channel(api.server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "latm.orchestrator.v1.OrchestratorService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await channel.close(None)


async def test_metrics_count_requests_by_method_and_code(api: Api) -> None:
    def count(method: str, code: str) -> float:
        value = REGISTRY.get_sample_value(
            "latm_api_requests_total", {"method": method, "code": code}
        )
        return value or 0.0

    before_ok, before_missing = count("ExecuteTool", "OK"), count("GetTool", "NOT_FOUND")
    async with api.client() as client:
        await client.import_tool(ADD_CARD)
        await client.execute_tool("add", {"a": 1, "b": 2})
        with pytest.raises(ToolNotFound):
            await client.get_tool("nope")
    assert count("ExecuteTool", "OK") == before_ok + 1
    assert count("GetTool", "NOT_FOUND") == before_missing + 1
    assert (REGISTRY.get_sample_value("latm_sandboxes", {"backend": "process", "state": "servers"})
            or 0) >= 1  # fmt: skip
    port = _free_port()
    start_metrics(f"127.0.0.1:{port}")
    text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    )
    assert 'latm_api_request_seconds_bucket{code="OK",le="0.005",method="ExecuteTool"}' in text
    assert "latm_sandbox_calls_total" in text


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_logs_are_json_with_ids_and_no_secrets_or_source(api: Api) -> None:
    stream = io.StringIO()
    setup_logging(Settings(log_format="json", log_level="INFO"), stream)
    try:
        async with api.client() as client:
            await client.import_tool(ADD_CARD)
            await client.execute_tool("add", {"a": 1, "b": 2})
            await client.solve("What is 2 plus 3?", tool="add")
        await asyncio.sleep(0.05)
    finally:
        import logging

        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    calls = [line for line in lines if line.get("logger") == "latm.api" and "method" in line]
    assert {line["method"] for line in calls} >= {"ImportTool", "ExecuteTool", "Solve"}
    assert all(line["tenant"] == "acme" and len(line["request_id"]) == 32 for line in calls)
    text = stream.getvalue()
    assert api.acme not in text
    assert "return a + b" not in text
    assert "2 plus 3" not in text


async def test_traces_span_api_model_and_sandbox(api: Api) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.fail("a tracer provider was installed earlier in this process")
    async with api.client() as client:
        await client.import_tool(ADD_CARD)
        await client.solve("What is 2 plus 3?", tool="add")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    root, model, sandbox = spans["api.Solve"], spans["model.complete"], spans["sandbox.execute"]
    assert model.parent is not None
    assert model.parent.span_id == root.context.span_id
    assert sandbox.parent is not None
    assert sandbox.parent.span_id == root.context.span_id
    assert model.context.trace_id == sandbox.context.trace_id == root.context.trace_id
    assert root.attributes
    assert root.attributes["latm.tenant"] == "acme"
    assert sandbox.attributes
    assert sandbox.attributes["latm.status"] == "ok"


async def test_graceful_stop_removes_the_docker_containers(start_api: StartApi) -> None:
    require_docker("runc")
    import docker

    backend = create_backend("docker", Settings(docker=DockerSettings(pool=PoolConfig(min_idle=1))))
    api = await start_api(backend=backend)
    async with api.client() as client:
        await client.import_tool(ADD_CARD)
        assert (await client.execute_tool("add", {"a": 1, "b": 2})).isolation == "docker+runc"
    owned = [c.id for c in backend.own_containers()]  # type: ignore[attr-defined]
    assert owned
    await api.server.stop(grace_s=2.0)
    engine = docker.from_env()
    alive = {c.id for c in engine.containers.list(all=True, ignore_removed=True)}
    assert not alive & set(owned)


async def test_list_tools_pages_through_thousands_and_always_fits_a_response(
    start_api: StartApi,
) -> None:
    """2,500 tools: before pages, about 1,100 ordinary cards made a tenant's ListTools
    fail for good ("Sent message larger than max")."""
    api = await start_api()
    seed_tools(f"sqlite:///{api.tmp / 'registry.db'}", "acme", 2500)
    async with api.client() as client:
        tools = await client.list_tools()  # follows next_page_token
        assert [t.name for t in tools] == [f"tool_{i:05d}" for i in range(2500)]
        first = await client._call(client.stub.ListTools, pb.ListToolsRequest(page_size=7), None)
        assert [t.name for t in first.tools] == [f"tool_{i:05d}" for i in range(7)]
        assert first.next_page_token == "tool_00006"
        second = await client._call(
            client.stub.ListTools,
            pb.ListToolsRequest(page_size=7, page_token=first.next_page_token),
            None,
        )
        assert second.tools[0].name == "tool_00007"
        with pytest.raises(InvalidRequest, match="page_token"):
            await client._call(
                client.stub.ListTools, pb.ListToolsRequest(page_token="tool_1\n"), None
            )
    async with api.client(api.globex) as other:
        assert await other.list_tools() == []

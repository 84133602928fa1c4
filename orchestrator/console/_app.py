"""The web console's routes: sign-in, tools, one tool, try it, usage, candidates and make.

Every page runs inside :func:`orchestrator.api.service.call_scope` with the session's API
key, exactly as a gRPC call would: the key is authenticated by the API's authenticator, the
tenant's per-minute quota is taken, the call is logged and metered under ``Console.*``, and
the data comes from the service's own work methods (``_list``, ``_execute``, ``_export``,
``_usage_report``, ``_make``) or the registry, always for the key's tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from latm.orchestrator.v1 import orchestrator_pb2 as pb
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from orchestrator.api.auth import Principal
from orchestrator.api.service import OrchestratorService, call_scope
from orchestrator.console import _data, _render
from orchestrator.console._security import SecurityHeaders, check_origin
from orchestrator.console._sessions import (
    COOKIE,
    LOGIN_COOKIE,
    Session,
    Sessions,
    clear_cookie,
    set_cookie,
)
from orchestrator.errors import LatmError, ToolNotFound, Unauthenticated

HERE = Path(__file__).parent
MAX_JOBS = 4  # tool-making jobs a session may have waiting to start
Handler = Callable[[Request], Awaitable[Response]]


class Console:
    """The console over one :class:`OrchestratorService`."""

    def __init__(self, service: OrchestratorService) -> None:
        self.service = service
        self.sessions = Sessions()
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.filters["pretty_json"] = _render.pretty_json
        self.templates.env.filters["percent"] = lambda r: "n/a" if r is None else f"{r:.0%}"
        self.templates.env.filters["usd"] = lambda v: f"${v:,.4f}"

    # --- what every page goes through ---

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    @contextlib.asynccontextmanager
    async def scope(self, session: Session, method: str) -> AsyncIterator[tuple[Any, Principal]]:
        """The API's call scope for ``method`` with the session's key."""
        metadata = [("authorization", f"Bearer {session.key}")]
        async with call_scope(self.service, f"Console.{method}", metadata) as call:
            yield call, await call.begin(None)

    def page(self, request: Request, template: str, code: int = 200, **context: Any) -> Response:
        session = self.session(request)
        context.update(tenant=session.tenant if session else None)
        context.update(csrf=session.csrf if session else None)
        return self.templates.TemplateResponse(request, template, context, status_code=code)

    async def form(self, request: Request, session: Session) -> dict[str, Any]:
        """The posted form, once its origin and CSRF token are checked (403 otherwise)."""
        check_origin(request)
        form = await request.form()
        token = request.headers.get("x-csrf-token") or form.get("csrf")
        if not session.csrf_ok(token if isinstance(token, str) else None):
            raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")
        return {key: form.getlist(key) for key in form}

    # --- sign in and out ---

    async def sign_in_page(self, request: Request) -> Response:
        token = secrets.token_urlsafe(32)
        response = self.page(request, "login.html", login_csrf=token, error=None)
        set_cookie(response, LOGIN_COOKIE, token, max_age=15 * 60)
        return response

    async def sign_in(self, request: Request) -> Response:
        check_origin(request)
        form = await request.form()
        cookie, field = request.cookies.get(LOGIN_COOKIE), form.get("csrf")
        if not cookie or not isinstance(field, str) or not secrets.compare_digest(cookie, field):
            raise HTTPException(403, "the sign-in form's CSRF token is missing or wrong")
        key = str(form.get("key") or "").strip()
        try:
            async with self.scope(Session(key=key, tenant=""), "SignIn") as (_call, who):
                tenant = who.tenant
        except Unauthenticated:
            return self.page(
                request, "login.html", 401, login_csrf=field, error="That API key is not valid."
            )
        sid, _ = self.sessions.open(key, tenant)
        response = RedirectResponse("/ui/tools", status_code=303)
        set_cookie(response, COOKIE, sid)
        clear_cookie(response, LOGIN_COOKIE)
        return response

    async def sign_out(self, request: Request, session: Session) -> Response:
        await self.form(request, session)
        self.sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/ui/login", status_code=303)
        clear_cookie(response, COOKIE)
        return response

    # --- tools ---

    async def tools(self, request: Request, session: Session) -> Response:
        query = request.query_params.get("q", "").strip().lower()
        registry = self.service.engine.registry
        async with self.scope(session, "ListTools") as (call, who):
            listed = await call.run(self._all_tools(who))
            counts = await asyncio.to_thread(_data.version_counts, registry, who.tenant)
            used = await asyncio.to_thread(_data.calls, registry, who.tenant)
        rows = [
            {
                "tool": tool,
                "versions": counts.get(tool.name, 1),
                "calls": used.get(tool.name, _data.Calls()),
            }
            for tool in listed
            if not query or query in tool.name.lower() or query in tool.description.lower()
        ]
        return self.page(request, "tools.html", rows=rows, query=query)

    async def _all_tools(self, who: Principal) -> list[pb.ToolSummary]:
        """ListTools, every page."""
        tools: list[pb.ToolSummary] = []
        token = ""
        while True:
            page = await self.service._list(who, pb.ListToolsRequest(page_token=token))
            tools.extend(page.tools)
            token = page.next_page_token
            if not token:
                return tools

    async def tool(self, request: Request, session: Session) -> Response:
        name, version = _tool_ref(request)
        engine = self.service.engine
        async with self.scope(session, "GetTool") as (call, who):
            card = await call.run(asyncio.to_thread(engine.registry.get, who.tenant, name, version))
            schema = await call.run(engine.input_schema(who.tenant, card))
            history = await asyncio.to_thread(_data.versions, engine.registry, who.tenant, name)
            usage = await asyncio.to_thread(engine.registry.usage, who.tenant, name)
        users, maker = usage["by_role"]["user"], usage["by_role"]["maker"]
        return self.page(
            request,
            "tool.html",
            card=card,
            source=_render.highlighted(card.source),
            schema=schema,
            history=history,
            calls=_data.Calls(users["calls"], users["calls"] - users["ok"]),
            cost={"users": users["cost_usd"], "maker": maker["cost_usd"]},
            provenance=card.provenance.model_dump(exclude_none=True),
        )

    async def diff(self, request: Request, session: Session) -> Response:
        name, _ = _tool_ref(request)
        old, new = _version(request, "from"), _version(request, "to")
        get = self.service.engine.registry.get
        async with self.scope(session, "GetTool") as (call, who):
            before = await call.run(asyncio.to_thread(get, who.tenant, name, old))
            after = await call.run(asyncio.to_thread(get, who.tenant, name, new))
        table = _render.diff_table(
            before.source, after.source, f"v{before.version}", f"v{after.version}"
        )
        return self.page(request, "diff.html", name=name, old=before, new=after, table=table)

    async def export(self, request: Request, session: Session) -> Response:
        name, version = _tool_ref(request)
        async with self.scope(session, "ExportTool") as (call, who):
            reply = await call.run(
                self.service._export(who, pb.ExportToolRequest(name=name, version=version or 0))
            )
        disposition = f'attachment; filename="{name}.json"'  # a NAME_PATTERN name
        return Response(
            reply.card_json,
            media_type="application/json",
            headers={"content-disposition": disposition},
        )

    async def run(self, request: Request, session: Session) -> Response:
        name, _ = _tool_ref(request)
        form = await self.form(request, session)
        arguments = _first(form, "arguments") or "{}"
        version = _first(form, "version")
        number = int(version) if version.isdigit() and len(version) < 10 else 0  # 0: latest
        execute = pb.ExecuteToolRequest(tool=name, version=number, arguments_json=arguments)
        try:
            async with self.scope(session, "ExecuteTool") as (call, who):
                reply = await call.run(self.service._execute(who, execute))
        except (Unauthenticated, ToolNotFound):
            raise
        except LatmError as exc:
            return self.page(request, "run_result.html", reply=None, error=_public(exc))
        status = pb.ExecStatus.Name(reply.status).removeprefix("EXEC_STATUS_").lower()
        return self.page(request, "run_result.html", reply=reply, status=status, error=None)

    # --- usage ---

    async def usage(self, request: Request, session: Session) -> Response:
        registry = self.service.engine.registry
        async with self.scope(session, "GetUsage") as (call, who):
            report = await call.run(self.service._usage_report(who, pb.GetUsageRequest()))
            roles = await asyncio.to_thread(_data.cost_by_role, registry, who.tenant)
        chart = {
            "days": [p.start.ToDatetime().date().isoformat() for p in report.by_period],
            "tokens": [p.usage.prompt_tokens + p.usage.completion_tokens for p in report.by_period],
            "cost": [p.usage.cost_usd for p in report.by_period],
            "models": {m.model: m.usage.cost_usd for m in report.by_model},
            "tools": {t.tool or "(no tool)": t.usage.cost_usd for t in report.by_tool},
            "roles": roles,
        }
        return self.page(request, "usage.html", report=report, chart=chart, roles=roles)

    # --- candidates and making a tool ---

    async def candidates(self, request: Request, session: Session) -> Response:
        registry = self.service.engine.registry
        async with self.scope(session, "ListCandidates") as (_call, who):
            questions = await asyncio.to_thread(registry.candidates, who.tenant, 200)
        return self.page(request, "candidates.html", questions=list(reversed(questions)))

    async def make(self, request: Request, session: Session) -> Response:
        form = await self.form(request, session)
        pairs = zip(form.get("question", []), form.get("answer", []), strict=False)
        examples = [pb.Example(question=q, answer=a.strip()) for q, a in pairs if a.strip()]
        job = pb.MakeToolRequest(
            task=_first(form, "task") or "task", examples=examples, split=_first(form, "split")
        )
        if len(session.jobs) >= MAX_JOBS:
            session.jobs.pop(next(iter(session.jobs)))
        job_id = secrets.token_urlsafe(16)
        session.jobs[job_id] = job
        return self.page(request, "make_progress.html", job_id=job_id, count=len(examples))

    async def make_events(self, request: Request, session: Session) -> Response:
        job = session.jobs.pop(request.path_params["job"], None)
        if job is None:
            raise HTTPException(404, "no such job; start it again from the candidates page")
        return EventSourceResponse(self._make_stream(request, session, job), ping=15)

    async def _make_stream(
        self, request: Request, session: Session, job: pb.MakeToolRequest
    ) -> AsyncIterator[dict[str, str]]:
        def event(kind: str, template: str, **context: Any) -> dict[str, str]:
            html = self.templates.get_template(template).render(**context)
            return {"event": kind, "data": html}

        try:
            async with self.scope(session, "MakeTool") as (call, who):
                async for step in self.service._make(who, job):
                    call.fits(step)
                    kind = (
                        "done" if step.HasField("tool") or step.HasField("failure") else "progress"
                    )
                    yield event(kind, "make_event.html", step=step)
        except LatmError as exc:
            yield event("done", "make_event.html", step=None, error=_public(exc))

    # --- errors ---

    async def on_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, Unauthenticated):
            self.sessions.close(request.cookies.get(COOKIE))
            response = RedirectResponse("/ui/login", status_code=303)
            clear_cookie(response, COOKIE)
            return response
        if isinstance(exc, HTTPException):
            status, message = exc.status_code, exc.detail
        elif isinstance(exc, ToolNotFound):
            status, message = 404, "No such tool in this tenant."
        elif isinstance(exc, LatmError):
            status, message = _http_status(exc), _public(exc)
        else:
            raise exc
        return self.page(request, "error.html", status, status=status, message=message)


def signed_in(
    console: Console, handler: Callable[[Request, Session], Awaitable[Response]]
) -> Handler:
    """``handler`` for a signed-in session; anyone else is sent to the sign-in page."""

    async def endpoint(request: Request) -> Response:
        session = console.session(request)
        if session is None:
            return RedirectResponse("/ui/login", status_code=303)
        return await handler(request, session)

    return endpoint


def console_app(service: OrchestratorService) -> Starlette:
    """The console's ASGI app, to mount at ``/ui`` on the HTTP listener."""
    console = Console(service)

    def private(path: str, handler: Any, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, signed_in(console, handler), methods=list(methods))

    async def home(_request: Request) -> Response:
        return RedirectResponse("/ui/tools", status_code=303)

    async def pygments(_request: Request) -> Response:
        return Response(_render.pygments_css(), media_type="text/css")

    routes = [
        Route("/", home),
        Route("/login", console.sign_in_page, methods=["GET"]),
        Route("/login", console.sign_in, methods=["POST"]),
        private("/logout", console.sign_out, ("POST",)),
        private("/tools", console.tools),
        private("/tools/{name}", console.tool),
        private("/tools/{name}/diff", console.diff),
        private("/tools/{name}/export", console.export),
        private("/tools/{name}/run", console.run, ("POST",)),
        private("/usage", console.usage),
        private("/candidates", console.candidates),
        private("/make", console.make, ("POST",)),
        private("/make/{job}/events", console.make_events),
        Route("/static/pygments.css", pygments),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={LatmError: console.on_error, HTTPException: console.on_error},
    )
    app.add_middleware(SecurityHeaders)
    return app


def _tool_ref(request: Request) -> tuple[str, int | None]:
    return request.path_params["name"], _version(request, "version")


def _version(request: Request, name: str) -> int | None:
    given = request.query_params.get(name, "")
    if not given:
        return None
    if not given.isdigit() or not 0 < int(given) < 2**31:
        raise HTTPException(400, f"{name} must be a version number")
    return int(given)


def _first(form: dict[str, Any], name: str) -> str:
    values = form.get(name) or [""]
    return str(values[0])


def _public(exc: LatmError) -> str:
    return exc.public_message or str(exc)


def _http_status(exc: LatmError) -> int:
    return {
        "INVALID_ARGUMENT": 400,
        "NOT_FOUND": 404,
        "PERMISSION_DENIED": 403,
        "RESOURCE_EXHAUSTED": 429,
        "UNAVAILABLE": 503,
        "FAILED_PRECONDITION": 409,
        "DEADLINE_EXCEEDED": 504,
    }.get(exc.code.name, 500)

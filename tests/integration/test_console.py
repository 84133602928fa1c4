"""The web console at ``/ui`` over HTTP: sign-in and its cookie, one tenant's data only,
CSRF on every post, untrusted text escaped, the Content-Security-Policy, and the pages'
content (what the browser tests then see rendered in Chromium)."""

from __future__ import annotations

import html
import json
import logging
import re
import ssl
from pathlib import Path

import httpx2
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from orchestrator.console._security import CSP
from tests.support.api import Api, StartApi
from tests.support.cards import make_card
from tests.support.console import USAGE_COST, USAGE_TOKENS, Browser, csrf, start_console
from tests.support.maker import word_sorting
from tests.support.tls import make_pki

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PAGES = (
    "/ui/tools",
    "/ui/tools/add",
    "/ui/usage",
    "/ui/candidates",
    "/ui/tools/add/diff?from=1&to=2",
)


@pytest_asyncio.fixture
async def api(start_api: StartApi) -> Api:
    return await start_console(start_api)


async def signed_in(api: Api, key: str | None = None) -> Browser:
    browser = Browser(api)
    reply = await browser.sign_in(api.acme if key is None else key)
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"] == "/ui/tools"
    return browser


async def test_without_a_session_every_page_sends_you_to_sign_in(api: Api) -> None:
    async with Browser(api) as browser:
        for path in (*PAGES, "/ui/tools/add/export"):
            reply = await browser.get(path)
            assert reply.status_code == 303, path
            assert reply.headers["location"] == "/ui/login"
        forged = await browser.get("/ui/tools", headers={"cookie": "latm_console=made-up"})
        assert forged.status_code == 303
        posted = await browser.post("/ui/tools/add/run", data={"arguments": "{}"})
        assert posted.status_code == 303


async def test_the_session_cookie_is_httponly_secure_samesite_and_holds_no_key(api: Api) -> None:
    async with await signed_in(api) as browser:
        (session,) = [c for c in browser.set_cookies if c.startswith("latm_console=")]
        flags = {part.strip().lower() for part in session.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/ui"} <= flags
        assert api.acme not in session
        assert all(api.acme not in cookie for cookie in browser.set_cookies)
        page = await browser.get("/ui/tools")
        assert api.acme not in page.text


async def test_a_wrong_key_is_refused_and_the_login_form_needs_its_token(api: Api) -> None:
    async with Browser(api) as browser:
        reply = await browser.sign_in("latm_nope_" + "0" * 43)
        assert reply.status_code == 401
        assert "not valid" in reply.text
        assert "latm_console" not in browser.cookies
        no_token = await browser.post("/ui/login", data={"key": api.acme})
        assert no_token.status_code == 403
        assert "latm_console" not in browser.cookies


async def test_another_tenants_tool_is_not_found(api: Api) -> None:
    async with await signed_in(api) as browser:
        for path in ("/ui/tools/secret_formula", "/ui/tools/secret_formula/export"):
            reply = await browser.get(path)
            assert reply.status_code == 404, path
            assert "secret_formula" not in reply.text or "No such tool" in reply.text
        listing = await browser.get("/ui/tools")
        assert "secret_formula" not in listing.text
        token = csrf(listing.text)
        ran = await browser.post(
            "/ui/tools/secret_formula/run",
            data={"arguments": '{"x": 1}'},
            headers={"x-csrf-token": token},
        )
        assert ran.status_code == 404
    async with await signed_in(api, api.globex) as globex:
        assert "secret_formula" in (await globex.get("/ui/tools")).text
        assert (await globex.get("/ui/tools/add")).status_code == 404


async def test_every_post_needs_the_sessions_csrf_token(api: Api) -> None:
    async with await signed_in(api) as browser:
        token = csrf((await browser.get("/ui/tools")).text)
        arguments = {"arguments": '{"a": 2, "b": 40}'}
        for headers in ({}, {"x-csrf-token": "wrong"}):
            refused = await browser.post("/ui/tools/add/run", data=arguments, headers=headers)
            assert refused.status_code == 403
        other_site = await browser.post(
            "/ui/tools/add/run",
            data=arguments,
            headers={"x-csrf-token": token, "origin": "https://evil.example"},
        )
        assert other_site.status_code == 403
        assert (await browser.post("/ui/logout")).status_code == 403
        assert (await browser.post("/ui/make", data={"task": "t"})).status_code == 403
        ran = await browser.post(
            "/ui/tools/add/run", data=arguments, headers={"x-csrf-token": token}
        )
        assert ran.status_code == 200
        assert '<pre data-testid="run-value">42</pre>' in ran.text
        out = await browser.post("/ui/logout", data={"csrf": token})
        assert out.status_code == 303
        assert (await browser.get("/ui/tools")).status_code == 303


async def test_html_in_a_docstring_is_shown_as_text(api: Api) -> None:
    async with await signed_in(api) as browser:
        for path in ("/ui/tools", "/ui/tools/evil"):
            page = (await browser.get(path)).text
            assert "<script>document.title" not in page
            assert "<img src=x" not in page
            assert "&lt;script&gt;document.title" in page
        source = (await browser.get("/ui/tools/evil")).text
        assert "&lt;img src=x id=injected onerror=" in source  # shown, as highlighted text
        assert "<img" not in source


async def test_pages_carry_a_strict_content_security_policy(api: Api) -> None:
    async with await signed_in(api) as browser:
        for path in (*PAGES, "/ui/login"):
            reply = await browser.get(path)
            assert reply.status_code == 200, path
            assert reply.headers["content-security-policy"] == CSP
            assert "'unsafe-inline'" not in CSP
            assert "'unsafe-eval'" not in CSP
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert reply.headers["cache-control"] == "no-store"
            assert "style=" not in reply.text
            assert "<script>" not in reply.text  # scripts only by src, data as JSON


async def test_pages_go_through_the_apis_accounting(api: Api) -> None:
    def count(method: str, code: str = "OK") -> float:
        sample = {"method": f"Console.{method}", "code": code}
        return REGISTRY.get_sample_value("latm_api_requests_total", sample) or 0.0

    def counts() -> tuple[float, ...]:
        return (
            count("ListTools"),
            count("GetTool"),
            count("ExecuteTool"),
            count("ExecuteTool", "INVALID_ARGUMENT"),
        )

    before = counts()
    async with await signed_in(api) as browser:
        token = csrf((await browser.get("/ui/tools")).text)
        await browser.get("/ui/tools/add")
        headers = {"x-csrf-token": token}
        ran = await browser.post("/ui/tools/add/run", data={"arguments": "{}"}, headers=headers)
        assert "TypeError" in ran.text  # the tool's own error: the call itself is OK
        bad = await browser.post("/ui/tools/add/run", data={"arguments": "[1"}, headers=headers)
        assert "not valid JSON" in bad.text
    assert counts() == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)


async def test_pages_are_logged_like_api_calls(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="latm.api"):
        async with await signed_in(api) as browser:
            assert (await browser.get("/ui/tools/secret_formula")).status_code == 404
    lines = [(r.method, getattr(r, "code", "")) for r in caplog.records if hasattr(r, "method")]
    assert ("Console.SignIn", "OK") in lines
    assert ("Console.GetTool", "NOT_FOUND") in lines
    assert all(api.acme not in r.getMessage() for r in caplog.records)


async def test_the_tenants_request_quota_applies(api: Api) -> None:
    api.tenants.set_quotas("acme", {"requests_per_minute": 3})
    async with await signed_in(api) as browser:  # one request
        assert (await browser.get("/ui/tools")).status_code == 200
        assert (await browser.get("/ui/tools")).status_code == 200
        over = await browser.get("/ui/tools")
        assert over.status_code == 429
        assert "quota" in over.text


async def test_over_tls_the_console_is_https_only(start_api: StartApi, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    api = await start_console(start_api, tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)
    trusted = ssl.create_default_context(cafile=str(pki.ca))
    async with Browser(api, "https", trusted) as browser:
        reply = await browser.sign_in(api.acme)
        assert reply.status_code == 303
        assert (await browser.get("/ui/tools/add")).status_code == 200
    async with Browser(api) as plain:
        with pytest.raises(httpx2.HTTPError):
            await plain.get("/ui/login")


async def test_a_revoked_key_ends_the_session(api: Api) -> None:
    async with await signed_in(api) as browser:
        assert (await browser.get("/ui/tools")).status_code == 200
        api.tenants.revoke("acme")
        reply = await browser.get("/ui/tools")
        assert reply.status_code == 303
        assert reply.headers["location"] == "/ui/login"
        assert "latm_console" not in browser.cookies


async def test_the_tool_page_shows_versions_verification_and_an_escaped_diff(api: Api) -> None:
    async with await signed_in(api) as browser:
        page = (await browser.get("/ui/tools/add")).text
        assert "v2" in page
        assert 'href="/ui/tools/add?version=1"' in page
        assert "1 of 1 held-out cases passed" in page
        assert '<table class="sourcetable">' in page  # Pygments' highlighted table
        diff = (await browser.get("/ui/tools/add/diff?from=1&to=2")).text
        assert "total&nbsp;=&nbsp;a&nbsp;+&nbsp;b" in diff
        exported = await browser.get("/ui/tools/add/export?version=1")
        assert exported.headers["content-disposition"] == 'attachment; filename="add.json"'
        assert json.loads(exported.text)["version"] == 1


async def test_the_tool_page_shows_the_user_check_and_who_uses_the_tool(api: Api) -> None:
    check = {"model": "local:qwen2.5-coder-0.5b", "correct": 2, "questions": 3}
    verification = {"passed": 3, "total": 3, "cases": [], "user": check}
    api.server.engine.registry.publish("acme", make_card("checked_sort", verification=verification))
    async with await signed_in(api) as browser:
        page = (await browser.get("/ui/tools/checked_sort")).text
        shown = re.search(r'data-testid="user-check">(.*?)</p>', page, re.S)
        assert shown is not None
        text = " ".join(re.sub(r"<[^>]+>", "", shown.group(1)).split())
        assert text == (
            "User check: local:qwen2.5-coder-0.5b answered 2 of 3 of them as questions; "
            "this tool is used by the maker model."
        )


async def test_the_usage_page_totals_only_the_tenants_own(api: Api) -> None:
    async with await signed_in(api) as browser:
        page = (await browser.get("/ui/usage")).text
    assert f'<b data-testid="total-tokens">{USAGE_TOKENS}</b>' in page
    assert f"${USAGE_COST:,.4f}" in page
    async with await signed_in(api, api.globex) as globex:  # acme's usage and candidates
        assert '<b data-testid="total-tokens">0</b>' in (await globex.get("/ui/usage")).text
        assert "No candidates yet." in (await globex.get("/ui/candidates")).text


async def test_a_make_job_streams_once_and_only_to_its_session(api: Api) -> None:
    async with await signed_in(api) as acme, await signed_in(api, api.globex) as globex:
        page = (await acme.get("/ui/candidates")).text
        questions = re.findall(r'name="question" value="([^"]+)"', page)
        answers = dict(word_sorting())
        form = {
            "task": "word_sorting",
            "question": [html.unescape(q) for q in questions],
            "answer": [answers[html.unescape(q)] for q in questions],
        }
        started = await acme.post("/ui/make", data=form, headers={"x-csrf-token": csrf(page)})
        assert started.status_code == 200
        (events,) = re.findall(r'sse-connect="(/ui/make/[^/]+/events)"', started.text)
        assert (await globex.get(events)).status_code == 404
        stream = await acme.get(events)
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.text.count("event: progress") >= 4
        assert "event: done" in stream.text
        assert "Made <a" in stream.text
        assert (await acme.get(events)).status_code == 404  # a job runs once


async def test_uses_failure_rate_and_cost_per_tool(api: Api) -> None:
    async with await signed_in(api) as browser:
        listing = (await browser.get("/ui/tools")).text
        row = re.search(r'<tr data-tool="add">(.*?)</tr>', listing, re.DOTALL)
        assert row is not None
        cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
        assert cells == ["2", "4", "25%", "$0.0200"]  # versions, uses, failure rate, cost
        page = (await browser.get("/ui/tools/add")).text
        assert "4 uses, failure rate 25%" in page
        assert '<span data-testid="cost">$0.0200</span>' in page

"""The web console in headless Chromium (Debian's ``chromium``, driven by Playwright):
sign in, list and open a tool, read its verification, run it, see the usage charts'
totals, make a tool from candidates and watch its progress, compare versions, sign out.

A screenshot of the page is saved when a step fails (under ``LATM_TEST_ARTIFACTS``, else
the test's temporary folder; the path is printed). With ``LATM_CONSOLE_SCREENSHOTS=DIR``
every page is saved there (the README's pictures come from this run).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.support.api import Api, StartApi
from tests.support.console import USAGE_COST, USAGE_TOKENS, base_url, start_console
from tests.support.maker import word_sorting

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
CHROMIUM = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")


def chromium() -> str:
    """Debian's Chromium (scripts/setup_browser.sh installs it); skip, or fail under CI."""
    for path in CHROMIUM:
        if Path(path).exists():
            return path
    found = shutil.which("chromium")
    if found:
        return found
    message = "Chromium is not installed: run scripts/setup_browser.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium())
        try:
            yield launched
        finally:
            await launched.close()


class Shots:
    """Where a page's screenshot goes: every page with ``LATM_CONSOLE_SCREENSHOTS``, and
    the page at hand when a step fails."""

    def __init__(self, page: Page, failures: Path) -> None:
        self.page = page
        self.failures = failures
        wanted = os.environ.get("LATM_CONSOLE_SCREENSHOTS")
        self.every = Path(wanted) if wanted else None
        self.step = "start"

    async def take(self, name: str, part: Locator | None = None) -> None:
        """Note the step reached; with ``LATM_CONSOLE_SCREENSHOTS``, save the page (or
        ``part`` of it)."""
        self.step = name
        if self.every is not None:
            self.every.mkdir(parents=True, exist_ok=True)
            await (part or self.page).screenshot(path=self.every / f"{name}.png")

    @contextlib.asynccontextmanager
    async def on_failure(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            self.failures.mkdir(parents=True, exist_ok=True)
            path = self.failures / f"console-failed-after-{self.step}.png"
            with contextlib.suppress(Exception):
                await self.page.screenshot(path=path, full_page=True)
                print(f"screenshot of the failing page: {path}")
            raise


@pytest_asyncio.fixture
async def api(start_api: StartApi) -> Api:
    return await start_console(start_api)


async def test_the_console_end_to_end(api: Api, browser: Browser, tmp_path: Path) -> None:
    context = await browser.new_context(
        base_url=base_url(api), viewport={"width": 1200, "height": 900}
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    shots = Shots(page, Path(os.environ.get("LATM_TEST_ARTIFACTS") or tmp_path))
    async with shots.on_failure():
        await sign_in(page, api, shots)
        cookie = next(c for c in await context.cookies() if c["name"] == "latm_console")
        assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
        assert api.acme not in cookie["value"]
        await tool_page(page, shots)
        await try_it(page, shots)
        await escaped(page)
        await usage(page, shots)
        await make_from_candidates(page, shots)
        await diff(page, shots)
        await sign_out(page)
        assert problems == []  # nothing refused by the CSP, no script errors
    await context.close()


async def sign_in(page: Page, api: Api, shots: Shots) -> None:
    await page.goto("/ui/tools")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    await shots.take("login")
    await page.get_by_label("API key").fill(api.acme)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/ui/tools$"))
    await expect(page.get_by_test_id("tenant")).to_have_text("acme")
    rows = page.locator("table.tools tbody tr")
    await expect(rows).to_have_count(2)  # add and evil; never globex's secret_formula
    await shots.take("tools")
    await page.get_by_label("Search").fill("two numbers")
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-tool", "add")


async def tool_page(page: Page, shots: Shots) -> None:
    await page.get_by_role("link", name="add", exact=True).click()
    await expect(page.locator("h1")).to_contain_text("add v2")
    await expect(page.get_by_test_id("verified")).to_have_text("1/1")
    cases = page.locator("table.cases tbody tr")
    await expect(cases).to_have_count(1)
    await expect(cases.first).to_contain_text("What is 2 plus 3?")
    await expect(cases.first.locator("td").last).to_have_text("passed")
    await expect(page.locator(".source .k", has_text="def")).to_have_count(1)  # highlighted
    await expect(page.get_by_test_id("schema")).to_contain_text('"required"')
    await expect(page.locator("table.versions tbody tr")).to_have_count(2)
    await shots.take("tool")


async def try_it(page: Page, shots: Shots) -> None:
    await page.get_by_label("Arguments").fill('{"a": 2, "b": 40}')
    await page.get_by_role("button", name="Run in the sandbox").click()
    await expect(page.get_by_test_id("run-status")).to_have_text("ok")
    await expect(page.get_by_test_id("run-value")).to_have_text("42")
    await expect(page.get_by_test_id("run-isolation")).not_to_be_empty()
    await page.get_by_test_id("run-status").scroll_into_view_if_needed()
    await shots.take("try-it")
    await page.get_by_label("Arguments").fill('{"a": 2}')
    await page.get_by_role("button", name="Run in the sandbox").click()
    await expect(page.get_by_test_id("run-status")).to_have_text("error")


async def escaped(page: Page) -> None:
    await page.goto("/ui/tools/evil")
    await expect(page.get_by_test_id("description")).to_contain_text("<script>document.title")
    assert await page.title() == "evil · LATM console"
    await expect(page.locator("#injected")).to_have_count(0)


async def usage(page: Page, shots: Shots) -> None:
    await page.get_by_role("link", name="Usage").click()
    await expect(page.locator("body")).to_have_attribute("data-charts-ready", "true")
    await expect(page.get_by_test_id("total-tokens")).to_have_text(str(USAGE_TOKENS))
    await expect(page.get_by_test_id("total-cost")).to_have_text(f"${USAGE_COST:,.4f}")
    drawn = await page.evaluate(
        """() => ["chart-tokens", "chart-cost", "chart-roles"].map(id => {
               const chart = document.getElementById(id).chart;
               return chart.data.datasets[0].data.reduce((a, b) => a + b, 0);
           })"""
    )
    assert drawn[0] == USAGE_TOKENS
    assert drawn[1] == pytest.approx(USAGE_COST)
    assert drawn[2] == pytest.approx(USAGE_COST)  # maker and users: the same dollars
    box = await page.locator("#chart-tokens").bounding_box()
    assert box is not None
    assert box["height"] > 50
    await shots.take("usage")


async def make_from_candidates(page: Page, shots: Shots) -> None:
    await page.get_by_role("link", name="Candidates").click()
    examples = word_sorting()
    answers = page.locator("table.candidates input[name=answer]")
    await expect(answers).to_have_count(len(examples))
    await page.get_by_label("Task name").fill("word_sorting")
    for index, (_, answer) in enumerate(examples):
        await answers.nth(index).fill(answer)
    await page.get_by_role("button", name="Make a tool from these").click()
    events = page.get_by_test_id("make-events")
    await expect(events.locator("li").first).to_be_visible()
    outcome = page.get_by_test_id("make-outcome")
    await expect(outcome).to_contain_text("Made sort_words v1: verified 3/3", timeout=60_000)
    await expect(events.locator("li.pass")).to_have_count(3)
    await expect(events).to_contain_text("attempt 1")
    await shots.take("make", page.locator("section.progress"))
    await outcome.get_by_role("link").click()
    await expect(page.locator("h1")).to_contain_text("sort_words v1")


async def diff(page: Page, shots: Shots) -> None:
    await page.goto("/ui/tools/add")
    await page.get_by_role("button", name="Diff").click()
    await expect(page.locator("h1")).to_contain_text("add: v1 → v2")
    await expect(page.get_by_test_id("diff").locator(".diff_add")).not_to_have_count(0)
    await shots.take("diff")


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    await page.goto("/ui/tools")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))

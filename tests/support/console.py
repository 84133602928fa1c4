"""The web console under test: a server with its HTTP listener, tools for two tenants
(one with HTML and script in its docstring, one with two versions), candidates, usage,
and a small cookie-keeping HTTP client for the security tests."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx2

from orchestrator.latm.cards import ToolCard
from tests.support.api import ADD, ADD_CARD, Api, StartApi
from tests.support.cards import card_json, tool_card
from tests.support.maker import SORT, maker_script, word_sorting

# A docstring a hostile maker (or importer) could write: it must show as text.
PAYLOAD = (
    '<script>document.title = "pwned"</script>'
    "<img src=x id=injected onerror=\"document.title = 'pwned'\">"
)
EVIL = f'def evil(x):\n    """{PAYLOAD}"""\n    return x\n'
ADD_V2 = ADD.replace("return a + b", "total = a + b\n    return total")
EVIL_CARD = card_json(EVIL, "evil", "Echo 1", "ans = evil(x=1)", "1")
GLOBEX = '''\
def secret_formula(x):
    """Globex's own tool."""
    return x * 7
'''
USAGE = [  # (role, model, tool, prompt, completion, cost): what the usage page must total
    ("user", "scripted:user", "add", 100, 20, 0.0125),
    ("user", "scripted:user", "", 50, 5, 0.0025),
    ("maker", "scripted:maker", "sort_words", 1000, 400, 0.25),
]
USAGE_TOKENS = sum(p + c for _, _, _, p, c, _ in USAGE)
USAGE_COST = sum(cost for *_, cost in USAGE)


async def start_console(start_api: StartApi, **settings: Any) -> Api:
    """A server for the console's tests: acme has ``add`` (two versions) and ``evil``,
    twelve word-sorting candidates and some usage; globex has ``secret_formula``."""
    api = await start_api(user=[], maker=maker_script(SORT), http_listen="127.0.0.1:0", **settings)
    engine = api.server.engine  # ImportTool's path, without a gRPC client (TLS or not)
    for card in (
        ADD_CARD,
        card_json(ADD_V2, "add", "What is 2 plus 3?", "ans = add(a=2, b=3)", "5"),
        EVIL_CARD,
    ):
        await engine.import_card("acme", card)
    registry = api.server.engine.registry
    registry.publish("globex", tool_card(GLOBEX, "secret_formula"))
    for question, _ in word_sorting():
        registry.add_candidate("acme", question)
    for ok in (True, True, True, False):  # the tool user's calls of add: one in four failed
        registry.record_use("acme", "add", None, role="user", ok=ok, cost_usd=0.005)
    at = dt.datetime.now(dt.UTC)
    api.tenants.record_usage(
        {
            "tenant": "acme",
            "role": role,
            "model": model,
            "tool": tool,
            "prompt_tokens": p,
            "completion_tokens": c,
            "cost_usd": cost,
            "at": at,
        }
        for role, model, tool, p, c, cost in USAGE
    )
    return api


def base_url(api: Api, scheme: str = "http") -> str:
    return f"{scheme}://{api.server.http.address}"


class Browser:
    """An HTTP client that keeps the console's cookies itself (they are ``Secure``, which
    a cookie jar would not send over the loopback's plain HTTP) and reads CSRF tokens."""

    def __init__(self, api: Api, scheme: str = "http", verify: Any = True) -> None:
        self.http = httpx2.AsyncClient(base_url=base_url(api, scheme), timeout=30.0, verify=verify)
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.http.aclose()

    async def request(self, method: str, path: str, **options: Any) -> httpx2.Response:
        headers = dict(options.pop("headers", {}))
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        reply = await self.http.request(method, path, headers=headers, **options)
        for header in reply.headers.get_list("set-cookie"):
            self.set_cookies.append(header)
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if "max-age=0" in header.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return reply

    async def get(self, path: str, **options: Any) -> httpx2.Response:
        return await self.request("GET", path, **options)

    async def post(self, path: str, **options: Any) -> httpx2.Response:
        return await self.request("POST", path, **options)

    async def sign_in(self, key: str) -> httpx2.Response:
        page = await self.get("/ui/login")
        return await self.post("/ui/login", data={"csrf": csrf(page.text), "key": key})


def csrf(html: str) -> str:
    """The CSRF token of a page's first form."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def card_of(api: Api, tenant: str, name: str) -> ToolCard:
    return api.server.engine.registry.get(tenant, name)

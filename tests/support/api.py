"""The public gRPC API server in the test's event loop, with a real registry and sandbox
backend and scripted models: the tools the suites import, and :func:`start_server`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from orchestrator.api.server import ApiServer
from orchestrator.client import AsyncClient
from orchestrator.config import Settings
from orchestrator.latm.engine import Engine
from orchestrator.models import MeteredModel, ModelAdapter, open_model
from orchestrator.registry import ToolRegistry
from orchestrator.registry.tenants import TenantStore
from orchestrator.sandboxes import SandboxBackend, create_backend
from tests.support.backends import require_bwrap
from tests.support.cards import card_json
from tests.support.maker import scripted

ADD = '''\
def add(a, b):
    """Add two numbers."""
    return a + b
'''
SPIN = '''\
def spin(loops):
    """Count up to `loops` (about 20 million a second here) and return the sum."""
    total = 0
    for i in range(loops):
        total += i
    return total
'''

# Cards of the two tools, as JSON text for ImportTool.
ADD_CARD = card_json(ADD, "add", "What is 2 plus 3?", "ans = add(a=2, b=3)", "5")
# The second tenant's own tool in the attack suites: add under another name.
PLUS = ADD.replace("def add", "def plus").replace("Add two", "Add up two")
PLUS_CARD = card_json(PLUS, "plus", "What is 1 plus 1?", "ans = plus(a=1, b=1)", "2")
SPIN_CARD = card_json(SPIN, "spin", "Sum below 10", "ans = spin(loops=10)", "45")
SECOND = 20_000_000  # loops in about a second
FOREVER = 10**12


@dataclass
class Api:
    """A running server, its parts, and keys for two tenants."""

    server: ApiServer
    tenants: TenantStore
    acme: str
    globex: str
    tmp: Path

    def client(self, key: str | None = None, **options: Any) -> AsyncClient:
        """A client of the server with ``key`` (acme's by default)."""
        return AsyncClient(self.server.address, self.acme if key is None else key, **options)


StartApi = Callable[..., Awaitable[Api]]  # the start_api fixture: start_server's options


async def start_server(
    folder: Path,
    *,
    user: list[Any] | None = None,
    maker: list[Any] | None = None,
    user_model: Any = None,
    listen: str | None = None,
    backend: SandboxBackend | None = None,
    **settings: Any,
) -> Api:
    """A started server with its own registry in ``folder`` and two tenants' keys; the
    caller stops it (``server.stop``)."""
    folder.mkdir(exist_ok=True)
    options: dict[str, Any] = {"api_key_cache_s": 0.0, **settings}
    config = Settings(database_url=SecretStr(f"sqlite:///{folder / 'registry.db'}"), **options)
    if backend is None:
        require_bwrap()
        backend = create_backend("process")
    registry = ToolRegistry.open(config.database_url.get_secret_value())  # type: ignore[union-attr]
    engine = Engine(
        backend=backend,
        registry=registry,
        user=user_model or open_model(scripted(folder, "user", user or [])),
        maker=open_model(scripted(folder, "maker", maker or [])),
    )
    server = ApiServer(config, engine, backend, registry, listen or f"unix:{folder}/api.sock")
    await server.start()
    tenants = TenantStore(registry)
    return Api(server, tenants, tenants.create("acme"), tenants.create("globex"), folder)


def use_maker(api: Api, model: ModelAdapter) -> None:
    """Give a running server's engine ``model`` as its maker (metered like its own)."""
    engine = api.server.engine
    maker = MeteredModel(model, engine.ledger)
    if engine.stronger_model is engine.maker_model:  # no stronger model of its own
        engine.stronger_model = maker
    engine.maker_model = maker

"""``latm mcp --tenant T``: the MCP server of one tenant's tools over stdio.

A desktop agent starts this process; whoever can start it can already read the
deployment's settings and registry, so it authenticates as the tenant locally (no API
key crosses stdio). The tenant must exist and not be revoked, checked on every request
like a key; its quotas are its own. Everything else is the HTTP endpoint's code path.
"""

from __future__ import annotations

from typing import Any

from mcp.server.stdio import stdio_server

from orchestrator.api.auth import Authenticator, Principal
from orchestrator.api.server import default_quotas
from orchestrator.api.service import OrchestratorService
from orchestrator.config import Settings
from orchestrator.errors import Unauthenticated
from orchestrator.latm.engine import Engine
from orchestrator.mcp.tools import ToolServer
from orchestrator.registry.tenants import Quotas, TenantStore


class LocalAuthenticator(Authenticator):
    """Authenticates every request as one tenant, while it exists and is not revoked."""

    def __init__(self, store: TenantStore, defaults: Quotas, tenant: str) -> None:
        super().__init__(store, defaults, cache_s=0)
        self.tenant = tenant

    async def authenticate(self, metadata: object) -> Principal:
        for tenant in self.store.list():
            if tenant.name == self.tenant and not tenant.revoked:
                return Principal(tenant.name, self.defaults.merged(tenant.overrides))
        raise Unauthenticated(f"no tenant {self.tenant!r} (or it was revoked)")


async def serve_stdio(settings: Settings, engine: Engine, tenant: str) -> None:
    """Serve ``tenant``'s tools over this process's stdin and stdout until EOF."""
    tenants = TenantStore(engine.registry)
    auth = LocalAuthenticator(tenants, default_quotas(settings), tenant)
    await auth.authenticate(None)  # refuse an unknown tenant before serving
    service = OrchestratorService(
        engine, tenants, auth, max_message_bytes=settings.max_message_bytes
    )
    tools = ToolServer(
        service, metadata_of=_no_metadata, call_timeout_s=settings.mcp_call_timeout_s
    )
    try:
        async with stdio_server() as (read, write):
            await tools.server.run(read, write, tools.initialization_options())
    finally:
        await tools.aclose()
        await service.flush_usage()


def _no_metadata(_ctx: Any) -> list[tuple[str, str]]:
    return []

"""``notifications/tools/list_changed`` whichever way a tenant's tools change.

A tool can be published or removed by this MCP server (``make_tool``), by the gRPC API
in the same process (ImportTool, DeleteTool, MakeTool) or by another process on the same
registry (``latm tools import``, another replica). :class:`ToolWatch` keeps, for each
tenant with an open MCP session or ``subscriptions/listen`` stream, a poller of the
registry's revision of that tenant (:meth:`ToolRegistry.revision
<orchestrator.registry.ToolRegistry.revision>`, one cheap query) and announces each
change; a tenant's poller stops when its last session closes. A change made here is
announced at once (:meth:`ToolWatch.changed`) and not again by the poller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from orchestrator.errors import LatmError

log = logging.getLogger("latm.mcp")
POLL_S = 1.0

Revision = Callable[[str], Hashable]
Announce = Callable[[str], Awaitable[None]]


class ToolWatch:
    """Who is listening for each tenant's tool changes, and one poller per such tenant."""

    def __init__(self, revision: Revision, announce: Announce, poll_s: float = POLL_S) -> None:
        self.revision = revision
        self.announce = announce
        self.poll_s = poll_s
        self._members: dict[str, set[Hashable]] = {}
        self._seen: dict[str, Hashable] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}

    def members(self, tenant: str) -> list[Hashable]:
        """What listens for ``tenant``'s changes (sessions' connections, listen streams)."""
        return list(self._members.get(tenant, ()))

    def watching(self) -> set[str]:
        """The tenants whose revision is being polled."""
        return set(self._pollers)

    def hold(self, tenant: str, member: Hashable) -> None:
        """Announce ``tenant``'s changes to ``member`` until :meth:`release`."""
        self._members.setdefault(tenant, set()).add(member)
        if tenant not in self._pollers:
            self._pollers[tenant] = asyncio.get_running_loop().create_task(self._poll(tenant))

    def release(self, tenant: str, member: Hashable) -> None:
        members = self._members.get(tenant, set())
        members.discard(member)
        if not members:
            self._members.pop(tenant, None)

    async def changed(self, tenant: str) -> None:
        """Announce a change made in this process now (and keep the poller from
        announcing it again)."""
        now = await self._read(tenant)
        if tenant in self._pollers and now is not None:
            self._seen[tenant] = now
        await self.announce(tenant)

    async def aclose(self) -> None:
        """Stop every poller."""
        pollers = list(self._pollers.values())
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)

    async def _poll(self, tenant: str) -> None:
        try:
            self._seen[tenant] = await self._read(tenant)
            while True:
                await asyncio.sleep(self.poll_s)
                if not self._members.get(tenant):
                    return
                now = await self._read(tenant)
                if now is None:
                    continue
                if self._seen.get(tenant) not in (None, now):
                    await self.announce(tenant)
                self._seen[tenant] = now
        finally:
            self._pollers.pop(tenant, None)
            self._seen.pop(tenant, None)

    async def _read(self, tenant: str) -> Hashable | None:
        """The revision, or None while the registry cannot be read (tried again next time)."""
        try:
            return await asyncio.to_thread(self.revision, tenant)
        except LatmError:  # the registry's errors are translated (RegistryUnavailable)
            log.warning("could not read the tool revision", extra={"tenant": tenant})
            return None

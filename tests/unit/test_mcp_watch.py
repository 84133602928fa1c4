"""ToolWatch: a tenant's revision is polled while something listens for it, each change
is announced once, and the poller stops with the last listener."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from orchestrator.errors import RegistryUnavailable
from orchestrator.mcp.watch import ToolWatch

POLL_S = 0.01


class Registry:
    def __init__(self) -> None:
        self.revisions = {"acme": 1, "globex": 1}
        self.down = False
        self.reads = 0

    def revision(self, tenant: str) -> int:
        self.reads += 1
        if self.down:
            raise RegistryUnavailable("the registry is down")
        return self.revisions[tenant]


def watch_of(registry: Registry) -> tuple[ToolWatch, list[str]]:
    announced: list[str] = []

    async def announce(tenant: str) -> None:
        announced.append(tenant)

    return ToolWatch(registry.revision, announce, poll_s=POLL_S), announced


async def polls(count: int = 5) -> None:
    await asyncio.sleep(POLL_S * count)


async def until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """Wait for ``condition`` (the revision is read in a thread: a loaded machine is slow)."""
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(POLL_S)


async def test_a_change_is_announced_once_to_its_tenant_only() -> None:
    registry = Registry()
    watch, announced = watch_of(registry)
    watch.hold("acme", "session-1")
    watch.hold("globex", "session-2")
    await until(lambda: registry.reads >= 4)  # past each poller's first read
    await polls()
    assert announced == []
    registry.revisions["acme"] = 2
    await until(lambda: announced != [])
    await polls()
    assert announced == ["acme"]
    await watch.aclose()
    assert watch.watching() == set()


async def test_the_poller_stops_with_the_last_listener_and_restarts_with_the_next() -> None:
    registry = Registry()
    watch, announced = watch_of(registry)
    watch.hold("acme", "session-1")
    watch.hold("acme", "session-2")
    watch.release("acme", "session-1")
    await polls()
    assert watch.watching() == {"acme"}
    assert watch.members("acme") == ["session-2"]
    watch.release("acme", "session-2")
    await until(lambda: watch.watching() == set())
    registry.revisions["acme"] = 2  # while nobody listens: nobody is told
    reads = registry.reads
    watch.hold("acme", "session-3")
    await until(lambda: registry.reads >= reads + 2)  # past the new poller's first read
    await polls()
    assert announced == []
    registry.revisions["acme"] = 3
    await until(lambda: announced == ["acme"])
    await watch.aclose()


async def test_a_change_made_here_is_announced_at_once_and_not_again() -> None:
    registry = Registry()
    watch, announced = watch_of(registry)
    watch.hold("acme", "session-1")
    await until(lambda: registry.reads >= 2)  # past the poller's first read
    registry.revisions["acme"] = 2
    await watch.changed("acme")
    assert announced == ["acme"]
    await polls()
    assert announced == ["acme"]
    await watch.aclose()


async def test_an_unreachable_registry_is_polled_again() -> None:
    registry = Registry()
    watch, announced = watch_of(registry)
    watch.hold("acme", "session-1")
    await until(lambda: registry.reads >= 2)  # past the poller's first read
    registry.down = True
    await polls()
    assert watch.watching() == {"acme"}
    registry.down = False
    registry.revisions["acme"] = 2
    await until(lambda: announced == ["acme"])
    await watch.aclose()

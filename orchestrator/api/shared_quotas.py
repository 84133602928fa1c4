"""Quotas shared by every replica serving one PostgreSQL registry.

- A tenant's request-rate bucket is one row (``quota_buckets``), refilled and taken from in
  one ``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` statement: the row lock orders replicas,
  and the database's clock, not the replicas', measures the refill.
- A concurrency slot is a lease row (``quota_leases``) with an expiry. It is taken in a
  transaction holding an advisory lock on (tenant, kind), which counts the live leases and
  inserts one below the limit; the replica renews its leases every third of
  ``lease_s`` while their calls run and deletes each at the end. A replica that dies stops
  renewing, so its slots are free again at most ``lease_s`` later.

Every decision is made in the database; a database that cannot be reached refuses the call
(UNAVAILABLE) rather than admitting it unmetered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import text

from orchestrator.api.quotas import QuotaGate, over_rate, over_slots
from orchestrator.errors import LatmError
from orchestrator.registry import ToolRegistry, lock_until_commit
from orchestrator.registry.tenants import Quotas

log = logging.getLogger("latm.api")

# The class of the two-key advisory locks taken on (tenant, kind) while a slot is counted
# (two int4 keys never collide with the one-bigint migration lock).
SLOT_LOCK_CLASS = 0x6C61_746D  # "latm"
# The bucket refilled at :rate a second since it was last written, capped at :cap, and
# taken from when that leaves a whole token; no row comes back when it would not.
TAKE = text(
    "INSERT INTO quota_buckets (tenant, tokens, updated_at) "
    "VALUES (:tenant, :cap - 1, clock_timestamp()) "
    "ON CONFLICT (tenant) DO UPDATE SET "
    "tokens = LEAST(:cap, quota_buckets.tokens + :rate * GREATEST(0, "
    "EXTRACT(EPOCH FROM clock_timestamp() - quota_buckets.updated_at))) - 1, "
    "updated_at = clock_timestamp() "
    "WHERE LEAST(:cap, quota_buckets.tokens + :rate * GREATEST(0, "
    "EXTRACT(EPOCH FROM clock_timestamp() - quota_buckets.updated_at))) >= 1 "
    "RETURNING tokens"
)
LEFT = text(
    "SELECT LEAST(:cap, tokens + :rate * GREATEST(0, "
    "EXTRACT(EPOCH FROM clock_timestamp() - updated_at))) FROM quota_buckets "
    "WHERE tenant = :tenant"
)
EXPIRE = text(
    "DELETE FROM quota_leases WHERE tenant = :tenant AND kind = :kind "
    "AND expires_at < clock_timestamp()"
)
COUNT = text("SELECT count(*) FROM quota_leases WHERE tenant = :tenant AND kind = :kind")
LEASE = text(
    "INSERT INTO quota_leases (id, tenant, kind, replica, expires_at) VALUES "
    "(:id, :tenant, :kind, :replica, clock_timestamp() + :lease_s * interval '1 second')"
)
RENEW = text(
    "UPDATE quota_leases SET expires_at = clock_timestamp() + :lease_s * interval '1 second' "
    "WHERE id = ANY(:ids)"
)
RELEASE = text("DELETE FROM quota_leases WHERE id = ANY(:ids)")


def replica_name() -> str:
    """This process as the owner of its leases: host and pid (for an operator reading
    ``quota_leases``; nothing depends on it)."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}"


class SharedQuotaGate(QuotaGate):
    """Request-rate buckets and concurrency slots in the registry's PostgreSQL."""

    def __init__(self, registry: ToolRegistry, lease_s: float) -> None:
        super().__init__()
        self.registry = registry
        self.lease_s = lease_s
        self.replica = replica_name()
        self._held: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        held, self._held = list(self._held), set()
        if held:
            with contextlib.suppress(LatmError):  # they expire anyway
                await asyncio.to_thread(self._release, held)

    async def admit(self, tenant: str, quotas: Quotas) -> None:
        left = await asyncio.to_thread(self._take, tenant, quotas)
        if left is not None:
            raise over_rate(tenant, quotas, left)

    def _take(self, tenant: str, quotas: Quotas) -> float | None:
        """Take a token; None when taken, else the tokens the bucket holds (< 1)."""
        values = {
            "tenant": tenant,
            "cap": float(quotas.requests_per_minute),
            "rate": quotas.requests_per_minute / 60.0,
        }
        with self.registry.transaction("taking a request from the quota") as session:
            if session.execute(TAKE, values).first() is not None:
                return None
            left = session.execute(LEFT, values).scalar()
        return float(left or 0.0)

    @contextlib.asynccontextmanager
    async def _hold(self, tenant: str, kind: str, limit: int) -> AsyncIterator[None]:
        lease = await asyncio.to_thread(self._acquire, tenant, kind, limit)
        if isinstance(lease, int):
            raise over_slots(tenant, kind, lease)
        self._held.add(lease)
        try:
            yield
        finally:
            self._held.discard(lease)
            try:
                await asyncio.shield(asyncio.to_thread(self._release, [lease]))
            except LatmError as exc:  # no longer renewed: it expires by itself
                log.warning("could not give back a concurrency slot: %s", exc)

    def _acquire(self, tenant: str, kind: str, limit: int) -> str | int:
        """A new lease's id, or the number of live leases when they fill ``limit``."""
        where = {"tenant": tenant, "kind": kind}
        with self.registry.transaction("taking a concurrency slot") as session:
            lock_until_commit(session, SLOT_LOCK_CLASS, f"{tenant}\n{kind}")
            session.execute(EXPIRE, where)
            running = int(session.execute(COUNT, where).scalar() or 0)
            if running >= limit:
                return running
            lease = uuid.uuid4().hex
            session.execute(
                LEASE, {**where, "id": lease, "replica": self.replica, "lease_s": self.lease_s}
            )
        return lease

    def _release(self, leases: list[str]) -> None:
        with self.registry.transaction("giving back a concurrency slot") as session:
            session.execute(RELEASE, {"ids": leases})

    async def _renew(self) -> None:
        """Push back the expiry of every lease held, every third of ``lease_s``."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            held = list(self._held)
            if not held:
                continue
            try:
                await asyncio.to_thread(self._extend, held)
            except LatmError as exc:
                log.warning("could not renew %d concurrency slots: %s", len(held), exc)

    def _extend(self, leases: list[str]) -> None:
        with self.registry.transaction("renewing concurrency slots") as session:
            session.execute(RENEW, {"ids": leases, "lease_s": self.lease_s})

"""Who is calling: the tenant behind an ``authorization: Bearer`` API key.

Checked keys are remembered for a few seconds (``api_key_cache_s``), by the key's sha256,
so the database is not read on every call; a revoked key stops working within that time.
Replicas on PostgreSQL also hear of a revocation, rotation or quota change at once (a
notice, see :mod:`orchestrator.registry.notices`) and forget that tenant's keys then.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from orchestrator.errors import Unauthenticated, metadata_value
from orchestrator.registry.tenants import Quotas, TenantStore, hash_key

MAX_CACHED = 10_000


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its tenant and the quotas that apply to it."""

    tenant: str
    quotas: Quotas


class Authenticator:
    def __init__(self, store: TenantStore, defaults: Quotas, cache_s: float = 5.0) -> None:
        self.store = store
        self.defaults = defaults
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, metadata: object) -> Principal:
        """The caller named by the request metadata's bearer key.

        Raises:
            Unauthenticated: no key, a malformed header, or a key that is unknown or revoked.
        """
        header = metadata_value(metadata, "authorization")
        if header is None:
            raise Unauthenticated(
                "no API key: send the metadata 'authorization: Bearer <key>' "
                "(create one with: latm tenants create NAME)"
            )
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthenticated("the authorization metadata must be 'Bearer <key>'")
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        tenant, overrides = await asyncio.to_thread(self.store.authenticate, key)
        principal = Principal(tenant, self.defaults.merged(overrides))
        if self.cache_s > 0:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = (now + self.cache_s, principal)
        return principal

    def forget(self, tenant: str) -> None:
        """Drop the cached keys of ``tenant`` (its keys or quotas changed)."""
        for digest in [d for d, (_, who) in self._cache.items() if who.tenant == tenant]:
            self._cache.pop(digest, None)

    def forget_all(self) -> None:
        self._cache.clear()

"""The engine's cache of tool cards, bounded by bytes as well as by count.

Cards are read on every call of a tool; a version never changes, so it is kept, and
"the latest version" is looked up again after a short time. A card can be large (its
source, demos and verification cases), and one tenant could fill a count-bounded cache
with large cards and hold the server's memory for every tenant: this one evicts the
least recently used cards once their total size passes ``max_bytes``, and publishes
that total as the ``latm_card_cache_bytes`` gauge.
"""

from __future__ import annotations

from collections import OrderedDict

from orchestrator.latm.cards import ToolCard
from orchestrator.telemetry import CARD_CACHE_BYTES

Key = tuple[str, str, int | None]  # tenant, name, version (None: the latest)


def card_bytes(card: ToolCard) -> int:
    """What a card holds, in bytes of its text (its JSON form, as stored)."""
    return len(card.model_dump_json().encode("utf-8"))


class CardCache:
    """Least-recently-used cards, at most ``max_entries`` and ``max_bytes`` in all."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, tuple[float, ToolCard, int]] = OrderedDict()
        self.bytes = 0

    def get(self, key: Key) -> tuple[float, ToolCard] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0], entry[1]

    def put(self, key: Key, expires: float, card: ToolCard) -> None:
        size = card_bytes(card)
        self._drop(key)
        if size > self.max_bytes:
            return  # larger than the whole cache: read from the registry each time
        self._entries[key] = (expires, card, size)
        self.bytes += size
        while self.bytes > self.max_bytes or len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
        CARD_CACHE_BYTES.set(self.bytes)

    def forget(self, tenant: str) -> None:
        for key in [key for key in self._entries if key[0] == tenant]:
            self._drop(key)
        CARD_CACHE_BYTES.set(self.bytes)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
        CARD_CACHE_BYTES.set(0)

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]

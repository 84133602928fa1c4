"""Combine Counters and an OrderedDict-based LRU to report first-seen order and totals."""
from collections import Counter, OrderedDict, ChainMap


def ordered_counter(baskets, capacity=3):
    """Return total counts, first-seen order, and the last `capacity` distinct items (LRU)."""
    totals = Counter()
    lru = OrderedDict()
    for basket in baskets:
        totals.update(basket)
        for item in basket:
            lru[item] = True
            lru.move_to_end(item)
            if len(lru) > capacity:
                lru.popitem(last=False)
    defaults = ChainMap(dict(totals), {"unknown": 0})
    return {"totals": dict(sorted(totals.items())), "recent": list(lru), "unknown": defaults["unknown"],
            "first_seen": list(dict.fromkeys(i for b in baskets for i in b))}

"""Tally votes and name the winner, with the star imports small models write."""

from collections import *
from typing import *


def tally_votes_star(votes: List[str]) -> Dict[str, Any]:
    """Count each name in `votes`; the winner has the most (the earliest on a tie)."""
    counts: Counter = Counter(votes)
    ranked: List[Tuple[str, int]] = counts.most_common()
    winner: Optional[str] = ranked[0][0] if ranked else None
    return {"winner": winner, "counts": dict(OrderedDict(sorted(counts.items())))}

"""Count (and show the first) placements of n non-attacking queens."""
from itertools import permutations


def n_queens(n):
    """Return {'count': number of solutions, 'first': column per row of the first solution}."""
    solutions = [
        cols for cols in permutations(range(n))
        if len({c + r for r, c in enumerate(cols)}) == n
        and len({c - r for r, c in enumerate(cols)}) == n
    ]
    return {"count": len(solutions), "first": list(solutions[0]) if solutions else None}

"""Enumerate 3x3 magic squares using the numbers 1-9."""
from itertools import permutations


def magic_square(corner=None):
    """Return the number of 3x3 magic squares and the first (optionally with a fixed top-left)."""
    lines = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
    found = []
    for cells in permutations(range(1, 10)):
        if cells[4] != 5 or (corner is not None and cells[0] != corner):
            continue
        if all(sum(cells[i] for i in line) == 15 for line in lines):
            found.append([list(cells[0:3]), list(cells[3:6]), list(cells[6:9])])
    return {"count": len(found), "first": found[0] if found else None}

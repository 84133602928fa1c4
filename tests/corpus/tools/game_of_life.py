"""Run Conway's Game of Life on a small grid for a number of generations."""
import copy
from typing import List


def count_neighbours(grid: List[List[int]], r: int, c: int) -> int:
    """Count live cells around (r, c) without wrapping."""
    total = 0
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if (dr or dc) and 0 <= r + dr < len(grid) and 0 <= c + dc < len(grid[0]):
                total += grid[r + dr][c + dc]
    return total


def game_of_life(grid: List[List[int]], generations: int = 1) -> List[List[int]]:
    """Return the grid after the given number of generations."""
    current = copy.deepcopy(grid)
    for step in range(generations):
        nxt = copy.deepcopy(current)
        for r, row in enumerate(current):
            for c, alive in enumerate(row):
                n = count_neighbours(current, r, c)
                nxt[r][c] = 1 if n == 3 or (alive and n == 2) else 0
        current = nxt
    return current

"""Walk a robot on a grid with walls and report its final position and visited cells."""


def grid_walk(grid, commands, start=(0, 0)):
    """grid: list of strings ('#' wall); commands like 'RRDDL'; blocked moves are skipped."""
    deltas = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}
    row, col = start
    visited = {(row, col)}
    for command in commands:
        dr, dc = deltas[command]
        nr, nc = row + dr, col + dc
        if 0 <= nr < len(grid) and 0 <= nc < len(grid[0]) and grid[nr][nc] != "#":
            row, col = nr, nc
            visited.add((row, col))
    return {"position": [row, col], "visited": len(visited)}

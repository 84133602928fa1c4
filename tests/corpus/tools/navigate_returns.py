"""Decide if a list of navigation instructions returns to the start (BBH navigate)."""
import re


def navigate_returns(instructions):
    """Follow 'Take N steps', 'Turn left/right/around', 'Always face forward', directions; return True/False."""
    x = y = 0
    heading = 0  # 0=north, 1=east, 2=south, 3=west
    moves = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0)}
    absolute = {"forward": 0, "right": 1, "backward": 2, "left": 3}
    for step in instructions.split("."):
        step = step.strip().lower()
        if step.startswith("turn"):
            heading = (heading + {"left": 3, "right": 1, "around": 2}[step.split()[-1]]) % 4
            continue
        match = re.search(r"take (\d+) steps?(?: (\w+))?", step)
        if not match:
            continue
        count = int(match.group(1))
        direction = heading if match.group(2) is None else (heading + absolute[match.group(2)]) % 4
        dx, dy = moves[direction]
        x, y = x + dx * count, y + dy * count
    return x == 0 and y == 0

"""Solve BBH logical_deduction ordering puzzles by brute force over permutations."""
from itertools import permutations


def logical_deduction(objects, constraints):
    """constraints: [[kind, a, b_or_position], ...] with kinds 'left_of', 'right_of', 'position', 'adjacent'.

    Positions are 1-based from the left; -1 means last.  Returns every valid left-to-right order.
    """
    checks = {
        "left_of": lambda pos, a, b: pos[a] < pos[b],
        "right_of": lambda pos, a, b: pos[a] > pos[b],
        "adjacent": lambda pos, a, b: abs(pos[a] - pos[b]) == 1,
        "position": lambda pos, a, k: pos[a] == (k - 1 if k > 0 else len(pos) + k),
    }
    solutions = []
    for order in permutations(objects):
        pos = {name: i for i, name in enumerate(order)}
        if all(checks[kind](pos, a, b) for kind, a, b in constraints):
            solutions.append(list(order))
    return solutions

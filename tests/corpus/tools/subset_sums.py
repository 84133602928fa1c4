"""Find all subsets of numbers that add up to a target."""
from itertools import combinations


def subset_sums(numbers, target, max_size=None):
    """Return every combination (as a sorted list) summing to target, smallest subsets first."""
    max_size = max_size or len(numbers)
    found = []
    for size in range(1, max_size + 1):
        for combo in combinations(sorted(numbers), size):
            if sum(combo) == target and list(combo) not in found:
                found.append(list(combo))
    return found

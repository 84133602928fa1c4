"""Solve a small addition cryptarithm like 'AB + BA = CC' by brute force."""
import itertools


def word_value(word, mapping):
    """Turn a word into its number under a letter->digit mapping."""
    value = 0
    for letter in word:
        value = value * 10 + mapping[letter]
    return value


def cryptarithm(puzzle):
    """Return all solutions as {letter: digit} dicts (no leading zeros, distinct digits)."""
    left, right = puzzle.replace(" ", "").split("=")
    words = left.split("+")
    letters = sorted(set("".join(words) + right))
    leading = {w[0] for w in words + [right]}
    solutions = []
    for digits in itertools.permutations(range(10), len(letters)):
        mapping = dict(zip(letters, digits))
        if any(mapping[ch] == 0 for ch in leading):
            continue
        if sum(word_value(w, mapping) for w in words) == word_value(right, mapping):
            solutions.append(mapping)
    return solutions
